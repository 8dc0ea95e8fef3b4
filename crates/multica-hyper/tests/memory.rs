//! Memory under hostile bodies: a 50 MB body and an endless one, read with a
//! 1 MiB cap, must raise the process's peak resident memory by no more than
//! the cap plus a small constant. Its own test binary, so no other test
//! allocates meanwhile; Linux only (reads `/proc/self/status`).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod raw;

use multica_api::{DaemonApiExt, Error, RuntimeId};
use multica_hyper::HyperClient;
use raw::{chunk, RawServer};

const MIB: u64 = 1024 * 1024;
const CAP: u64 = MIB;
/// What reading up to the cap may cost beyond it: the collected frames and
/// their copy into one buffer (2 × cap at worst), hyper's read buffer, the
/// allocator's slack. Measured growth is ~1 MiB; 16 MiB leaves room for
/// another allocator or runtime.
const ALLOWANCE: u64 = 16 * MIB;
const FIFTY_MB: u64 = 50 * MIB;
const CHUNK: usize = 64 * 1024;

/// A `VmHWM`/`VmRSS` line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Starts a new peak measurement: resets `VmHWM` to the current RSS
/// (`clear_refs` value 5, Linux 4.0+) and returns that RSS.
fn start_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    status_bytes("VmHWM:")
}

/// A server streaming `total` bytes (`None`: without end) of chunked body
/// from one reused buffer, so the server side allocates nothing per byte.
async fn streaming_server(total: Option<u64>) -> RawServer {
    RawServer::start(move |mut conn| async move {
        conn.read_request().await;
        conn.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").await;
        let framed = chunk(&[b' '; CHUNK]);
        conn.write_repeated(&framed, total.map(|total| total / CHUNK as u64)).await;
        conn.write(b"0\r\n\r\n").await;
    })
    .await
}

/// Claims against `server` with `cap` and returns the result and the peak
/// RSS growth during the call.
async fn peak_growth(server: &RawServer, cap: u64) -> (Result<Option<multica_api::Task>, Error>, u64) {
    let client = HyperClient::builder(server.url()).max_body_bytes(cap).build().unwrap();
    let before = start_peak();
    let result = client.claim_task(&RuntimeId::new("rt-1")).await;
    let growth = status_bytes("VmHWM:").saturating_sub(before);
    (result, growth)
}

#[tokio::test]
async fn capped_bodies_keep_memory_within_the_cap_plus_a_constant() {
    // Warm up: the runtime, the connector and the allocator's arenas exist
    // before anything is measured.
    let small = streaming_server(Some(4 * CHUNK as u64)).await;
    let _ = peak_growth(&small, CAP).await;

    let fifty = streaming_server(Some(FIFTY_MB)).await;
    let (result, fifty_growth) = peak_growth(&fifty, CAP).await;
    assert!(matches!(result, Err(Error::BodyTooLarge { limit: CAP, .. })), "{result:?}");

    let endless = streaming_server(None).await;
    let (result, endless_growth) = peak_growth(&endless, CAP).await;
    assert!(matches!(result, Err(Error::BodyTooLarge { limit: CAP, .. })), "{result:?}");

    // Control: with a cap above the body the same 50 MB is buffered, which
    // the measurement must see, or it could not catch a missing cap.
    let (result, control_growth) = peak_growth(&fifty, 64 * MIB).await;
    assert!(matches!(result, Err(Error::Decode { .. })), "50 MB of spaces is no JSON value: {result:?}");

    println!("| body (cap) | peak RSS growth |");
    println!("|---|---|");
    for (case, growth) in [
        ("50 MB chunked (1 MiB cap)", fifty_growth),
        ("endless chunked (1 MiB cap)", endless_growth),
        ("control: 50 MB chunked (64 MiB cap)", control_growth),
    ] {
        println!("| {case} | {:.1} MiB |", growth as f64 / MIB as f64);
    }
    assert!(fifty_growth < CAP + ALLOWANCE, "50 MB body: {fifty_growth} bytes");
    assert!(endless_growth < CAP + ALLOWANCE, "endless body: {endless_growth} bytes");
    assert!(control_growth >= FIFTY_MB, "the control buffered the body: {control_growth} bytes");
}
