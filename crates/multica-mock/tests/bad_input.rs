//! The fake's HTTP server under bad input (raw bytes over TCP): garbage,
//! truncated requests, huge headers and bodies, thousands of dropped
//! connections. After each abuse the server still answers, its state is
//! what it was (only the valid calls were logged), no connection task is
//! left behind, and nothing panicked anywhere in the process.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};

use common::{world, World};
use multica_api::{Endpoint, TaskId};
use multica_mock::{serve_with, MockServer, ServerConfig, Snapshot, DEFAULT_MAX_BODY_BYTES};

/// How long any single answer may take: a deadline, never waited out when
/// the server behaves.
const DEADLINE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Panic watch: hyper runs each connection in its own task, so a panicking
// handler would not stop the server; a process-wide hook sees it anyway.

/// Panics raised outside this file (the server, hyper, tokio) since the
/// binary started. The tests here share it, so each one asserts it empty.
static FOREIGN_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_panics() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A failing assertion of a test here is that test's failure,
            // not a server panic: only record the others.
            let location = info.location().map(|l| l.to_string()).unwrap_or_default();
            if !location.contains("bad_input.rs") {
                FOREIGN_PANICS.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{location}: {info}"));
            }
            previous(info);
        }));
    });
}

fn assert_no_panics() {
    let panics = FOREIGN_PANICS.lock().unwrap_or_else(|p| p.into_inner());
    assert!(panics.is_empty(), "the server panicked: {panics:?}");
}

// ---------------------------------------------------------------------------
// A served fake with seeded state, and the bookkeeping to prove it intact.

struct Served {
    world: World,
    server: MockServer,
    /// A queued task whose status the valid probe reads.
    probe_task: TaskId,
    before: Snapshot,
    /// Valid calls this test sent over HTTP (each must be logged once).
    valid_calls: AtomicU64,
    /// Tasks alive on this test's runtime while the server idles.
    idle_tasks: usize,
}

impl Served {
    async fn start() -> Served {
        Self::start_with(DEFAULT_MAX_BODY_BYTES).await
    }

    async fn start_with(max_body_bytes: usize) -> Served {
        watch_panics();
        let world = world().await;
        let probe_task = world.enqueue("issue-1", 1);
        world.enqueue("issue-2", 5);
        world.dispatched("issue-3").await;
        let before = world.mock.snapshot();
        // Idle, the server is one task: its accept loop.
        let idle_tasks = alive_tasks() + 1;
        let config = ServerConfig { max_body_bytes, ..ServerConfig::default() };
        let server = serve_with(world.mock.clone(), config).await.unwrap();
        let served = Served { world, server, probe_task, before, valid_calls: AtomicU64::new(0), idle_tasks };
        served.assert_serves().await;
        served.assert_no_connection_left().await;
        served
    }

    /// A valid call on a fresh connection is answered correctly.
    async fn assert_serves(&self) {
        let request = format!(
            "GET /api/daemon/tasks/{}/status HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
            self.probe_task.as_str()
        );
        self.valid_calls.fetch_add(1, Ordering::SeqCst);
        let answer = send(self.server.addr(), request.as_bytes(), false).await;
        assert_eq!(status(&answer), Some(200), "{}", String::from_utf8_lossy(&answer));
        assert!(answer.ends_with(b"\r\n\r\n{\"status\":\"queued\"}\n"), "{}", String::from_utf8_lossy(&answer));
    }

    /// Every connection task ended once its client went away.
    async fn assert_no_connection_left(&self) {
        wait_for("connection tasks to end", || alive_tasks() <= self.idle_tasks).await;
    }

    /// The server still answers, holds the state it had (plus exactly the
    /// valid calls), leaked no connection, panicked nowhere; then stops.
    async fn finish(self) {
        self.assert_serves().await;
        self.assert_no_connection_left().await;
        let after = self.world.mock.snapshot();
        let valid_calls = self.valid_calls.load(Ordering::SeqCst);
        assert_eq!(after.call_count, self.before.call_count + valid_calls, "garbage must not be logged as calls");
        let calls = self.world.mock.calls();
        let new_calls = &calls[calls.len() - valid_calls as usize..];
        assert!(
            new_calls.iter().all(|c| matches!(c.endpoint(), Endpoint::GetTaskStatus | Endpoint::SendHeartbeat)),
            "only the valid calls are logged: {new_calls:?}"
        );
        assert_eq!(Snapshot { call_count: self.before.call_count, ..after }, self.before);
        assert_no_panics();
        self.server.shutdown().await;
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Polls `done` until it holds, failing after [`DEADLINE`].
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(2));
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what} ({} tasks alive)", alive_tasks());
        poll.tick().await;
    }
}

// ---------------------------------------------------------------------------
// Raw TCP helpers.

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(DEADLINE, TcpStream::connect(addr)).await.expect("connect in time").unwrap()
}

/// Sends `bytes` (while reading, so a server that stops reading cannot
/// block us), ends the write side, and returns everything answered before
/// the server closed. A reset counts as a close: the bytes read so far are
/// the answer.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    send(addr, bytes, true).await
}

/// [`exchange`] with the write side left open, for a complete request: a
/// hyper server takes a half-close for a client gone and may not answer.
async fn send(addr: SocketAddr, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let (mut reader, mut writer) = connect(addr).await.into_split();
    let bytes = bytes.to_vec();
    let sending = tokio::spawn(async move {
        // The server may answer and close before taking all of it.
        if writer.write_all(&bytes).await.is_ok() && close_write {
            let _ = writer.shutdown().await;
        }
        writer
    });
    let answer = timeout(DEADLINE, read_until_closed(&mut reader)).await.expect("an answer or a close in time");
    drop(sending.await.unwrap());
    answer
}

async fn read_until_closed(reader: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return answer,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status of an HTTP/1.1 answer, `None` for no answer.
fn status(answer: &[u8]) -> Option<u16> {
    let rest = answer.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

/// Asserts the server refused with one of `allowed` or closed silently.
fn assert_refused(answer: &[u8], allowed: &[u16], what: &str) {
    if !answer.is_empty() {
        let code = status(answer);
        assert!(
            code.is_some_and(|c| allowed.contains(&c)),
            "{what}: expected {allowed:?} or a close, got {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }
}

// ---------------------------------------------------------------------------
// Garbage.

/// splitmix64: deterministic, seeded per case, good enough to shuffle bytes.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces that look like parts of HTTP, so the parser gets past its first
/// byte before choking.
const HTTP_PIECES: &[&[u8]] = &[
    b"GET /api/daemon/tasks/%ZZ/status HTTP/1.1\r\n",
    b"POST /api/daemon/heartbeat HTTP/1.1\r\n",
    b"GET /_mock/state HTTP/1.1\r\n",
    b"host: 127.0.0.1\r\n",
    b"content-length: 18446744073709551616\r\n",
    b"content-length: -1\r\n",
    b"transfer-encoding: chunked\r\n",
    b"HTTP/1.1",
    b": \r\n",
    b"\r\n\r\n",
];

/// Random garbage, partial HTTP, NULs, non-UTF-8, CRLF storms, in random
/// order. A NUL goes into the first line, which no HTTP/1 request line
/// accepts: whatever follows, this is never a request the fake could log.
fn garbage(seed: u64) -> Vec<u8> {
    let mut rng = Prng(seed);
    let mut bytes = Vec::new();
    for _ in 0..1 + rng.below(8) {
        match rng.below(5) {
            0 => bytes.extend((0..rng.below(300)).map(|_| rng.next() as u8)),
            1 => bytes.extend_from_slice(HTTP_PIECES[rng.below(HTTP_PIECES.len())]),
            2 => bytes.resize(bytes.len() + 1 + rng.below(64), 0),
            3 => bytes.extend((0..1 + rng.below(64)).map(|_| 0x80 | rng.next() as u8)),
            _ => bytes.extend(b"\r\n".repeat(1 + rng.below(500))),
        }
    }
    let first_line_end = bytes.iter().position(|b| *b == b'\n').unwrap_or(bytes.len());
    bytes.insert(rng.below(first_line_end + 1), 0);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_refused_and_the_server_keeps_serving() {
    let served = Served::start().await;
    let addr = served.server.addr();
    let mut cases = JoinSet::new();
    for seed in 0..300u64 {
        cases.spawn(async move { (seed, exchange(addr, &garbage(seed)).await) });
    }
    let mut refused = 0;
    while let Some(case) = cases.join_next().await {
        let (seed, answer) = case.unwrap();
        assert_refused(&answer, &[400], &format!("garbage seed {seed}"));
        refused += usize::from(status(&answer) == Some(400));
    }
    // The rest were cut by a reset racing the answer: most must get it.
    assert!(refused >= 150, "only {refused} of 300 got a 400");
    // An HTTP/2 preface followed by garbage: a connection error, not a panic.
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2.extend(garbage(7));
    exchange(addr, &h2).await;
    served.finish().await;
}

// ---------------------------------------------------------------------------
// Truncated requests.

/// Requests that stop before the server has all it needs.
const TRUNCATED: &[(&str, &[u8])] = &[
    (
        "body shorter than its content-length",
        b"POST /api/daemon/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"runtime_",
    ),
    ("headers never ended", b"GET /api/daemon/tasks/x/status HTTP/1.1\r\nhost: x\r\n"),
    (
        "chunked body cut mid-chunk",
        b"POST /api/daemon/heartbeat HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n40\r\n{\"runtime_id\":",
    ),
    ("request line cut", b"POST /api/daemon/hea"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_requests_hold_up_nobody() {
    let served = Served::start().await;
    let addr = served.server.addr();
    // Held open: the server waits for the rest of each…
    let mut held = Vec::new();
    for (_, bytes) in TRUNCATED {
        let mut stream = connect(addr).await;
        stream.write_all(bytes).await.unwrap();
        held.push(stream);
    }
    wait_for("the server to take the held connections", || alive_tasks() >= served.idle_tasks + TRUNCATED.len()).await;
    // …and meanwhile answers everyone else, concurrently.
    let mut probes = JoinSet::new();
    for _ in 0..4 {
        probes.spawn(async move {
            let request =
                "POST /api/daemon/heartbeat HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
            send(addr, request.as_bytes(), false).await
        });
    }
    served.assert_serves().await;
    while let Some(answer) = probes.join_next().await {
        served.valid_calls.fetch_add(1, Ordering::SeqCst);
        let answer = answer.unwrap();
        assert!(answer.ends_with(b"{\"error\":\"runtime_id is required\"}\n"), "{}", String::from_utf8_lossy(&answer));
    }
    drop(held);
    // Ended by the client instead: refused or closed, never waited on.
    for (what, bytes) in TRUNCATED {
        assert_refused(&exchange(addr, bytes).await, &[400], what);
    }
    served.finish().await;
}

// ---------------------------------------------------------------------------
// Huge headers and bodies.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_headers_are_refused() {
    let served = Served::start().await;
    let addr = served.server.addr();
    let head = "GET /api/daemon/tasks/x/status HTTP/1.1\r\nhost: x\r\n";
    let one_mib_header = format!("{head}x-big: {}\r\n\r\n", "a".repeat(1 << 20));
    let many_headers = format!("{head}{}\r\n", (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect::<String>());
    let long_path = format!("GET /api/daemon/tasks/{}/status HTTP/1.1\r\nhost: x\r\n\r\n", "t".repeat(1 << 20));
    for (what, request) in
        [("a 1 MiB header", one_mib_header), ("10,000 headers", many_headers), ("a 1 MiB path", long_path)]
    {
        let answer = exchange(addr, request.as_bytes()).await;
        assert_refused(&answer, &[400, 414, 431], what);
    }
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_without_being_read() {
    let served = Served::start_with(1024).await;
    let addr = served.server.addr();
    let heartbeat = "POST /api/daemon/heartbeat HTTP/1.1\r\nhost: x\r\n";
    let cases = [
        // Announced far above the cap, and only a little of it ever sent.
        ("content-length 1 GiB", format!("{heartbeat}content-length: 1073741824\r\n\r\n{}", "x".repeat(100))),
        ("content-length cap + 1", format!("{heartbeat}content-length: 1025\r\n\r\n{}", "x".repeat(100))),
        // The client waits for 100 Continue before sending: it must not get it.
        ("expect 100-continue", format!("{heartbeat}content-length: 1073741824\r\nexpect: 100-continue\r\n\r\n")),
        // No length announced: refused once the chunks pass the cap.
        (
            "chunked past the cap",
            format!(
                "{heartbeat}transfer-encoding: chunked\r\n\r\n{}",
                format!("100\r\n{}\r\n", "x".repeat(256)).repeat(5)
            ),
        ),
    ];
    for (what, request) in cases {
        let answer = send(addr, request.as_bytes(), false).await;
        assert_eq!(status(&answer), Some(413), "{what}: {}", String::from_utf8_lossy(&answer));
        assert!(answer.ends_with(b"{\"error\":\"request body too large\"}\n"), "{what}");
    }
    served.finish().await;
}

// ---------------------------------------------------------------------------
// Many connections.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_dropped_connections_leave_nothing_behind() {
    let served = Served::start().await;
    let addr = served.server.addr();
    let half_request: &[u8] = b"POST /api/daemon/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-le";
    // In waves, to stay far below the file descriptor limit.
    for wave in 0..50 {
        let mut connections = JoinSet::new();
        for i in 0..200 {
            connections.spawn(async move {
                let mut stream = connect(addr).await;
                match (wave + i) % 3 {
                    0 => {}
                    1 => {
                        let _ = stream.write_all(half_request).await;
                    }
                    _ => {
                        let _ = stream.write_all(half_request).await;
                        let _ = stream.shutdown().await;
                        let answer = timeout(DEADLINE, read_until_closed(&mut stream)).await.expect("closed in time");
                        assert_refused(&answer, &[400], "half a request");
                    }
                }
            });
        }
        while let Some(done) = connections.join_next().await {
            done.unwrap();
        }
        if wave % 10 == 9 {
            served.assert_no_connection_left().await;
        }
    }
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_then_a_half_close_is_still_answered() {
    let served = Served::start().await;
    let request = format!("GET /api/daemon/tasks/{}/status HTTP/1.1\r\nhost: x\r\n\r\n", served.probe_task.as_str());
    served.valid_calls.fetch_add(1, Ordering::SeqCst);
    let answer = exchange(served.server.addr(), request.as_bytes()).await;
    assert_eq!(status(&answer), Some(200), "{}", String::from_utf8_lossy(&answer));
    served.finish().await;
}
