//! The fake's HTTP server fed raw bytes: the input is written as is to one
//! connection of `multica_mock::serve_stream` (HTTP/1.1 or h2c, in process
//! over `tokio::io::duplex`), with a fresh demo-seeded fake per input.
//!
//! Checks: nothing panics or hangs (hyper's parsing, the router, the control
//! routes, the state machine); an HTTP/1 answer starts with a status line;
//! and afterwards the same fake still answers a fresh `GET /_mock/state` with
//! 200 (a request cannot kill or wedge it).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use multica_mock::{serve_stream, MockDaemon, Seed};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

/// Small, so that the 413 path is reachable with fuzz-sized inputs.
const MAX_BODY_BYTES: usize = 1024;
const TOKEN: &str = "fuzz-token";
/// Virtual time (the clock is paused and jumps when all is idle): longer
/// than any delay a fuzzed fault is likely to inject, costing nothing.
const IDLE: Duration = Duration::from_secs(3600);
const HEALTH: &[u8] = b"GET /_mock/state HTTP/1.1\r\nhost: mock\r\nconnection: close\r\n\r\n";

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    // Paused time: injected delays (`/_mock/faults` with `delay_ms`) elapse
    // at once instead of stalling the fuzzer.
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mock = MockDaemon::builder().seed(Seed::demo()).token(TOKEN).build().expect("demo seed loads");
        let answer = exchange(&mock, data).await;
        if !answer.is_empty() && !data.starts_with(b"PRI ") {
            assert!(
                answer.starts_with(b"HTTP/1.0 ") || answer.starts_with(b"HTTP/1.1 "),
                "not a status line: {:?}",
                String::from_utf8_lossy(&answer)
            );
        }
        let health = exchange(&mock, HEALTH).await;
        assert!(health.starts_with(b"HTTP/1.1 200 "), "fake died: {:?}", String::from_utf8_lossy(&health));
    });
});

/// Sends `request` on a new connection and reads what the server writes
/// until it closes, or until it has been idle for [`IDLE`] (a keep-alive
/// connection waiting for the next request); then hangs up. The client never
/// half-closes: the server drops a request whose client did (hyper's
/// `half_close` is off).
async fn exchange(mock: &MockDaemon, request: &[u8]) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (mut from_server, mut to_server) = tokio::io::split(client);
    let client = async move {
        let mut answer = Vec::new();
        // The server may close before reading everything: not an error here.
        if to_server.write_all(request).await.is_ok() {
            let _ = tokio::time::timeout(IDLE, from_server.read_to_end(&mut answer)).await;
        }
        answer
    };
    let ((), answer) = tokio::join!(serve_stream(mock.clone(), server, MAX_BODY_BYTES), client);
    answer
}
