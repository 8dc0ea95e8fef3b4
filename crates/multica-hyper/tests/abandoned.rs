//! Calls given up must not pile up connections, fds or tasks: after a storm
//! of cancellations, and after 10 s of callers giving up at 100 ms on a
//! server that never answers, the client holds at most one connection per
//! caller plus a constant over HTTP/1.1, and a bounded number of streams
//! over h2c; claims given up are counted.
//!
//! The servers run on threads of their own, so the test's runtime counts the
//! client's tasks only. Linux only (fds are counted in `/proc/self/fd`); the
//! tests take a lock so that one runs at a time and fd counts are theirs.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod on_thread;
mod raw;
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use multica_api::{DaemonApiExt, RuntimeId};
use multica_hyper::{HyperClient, MAX_BACKGROUND_EXCHANGES};
use on_thread::OnThread;
use raw::RawServer;
use support::{Reply, TestServer};

/// Callers sharing one client, as the issue's attacks had them.
const CALLERS: usize = 16;
/// What one connection may add on top of the callers' own (the warm-up
/// connection, a connect racing a checkout).
const SLACK: usize = 4;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` on a runtime of its own with no other test of this file
/// running, and shuts the runtime down (closing its connections) before
/// the next one starts, so fd counts are this test's.
fn alone(test: impl std::future::Future<Output = ()>) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(test);
    drop(runtime);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Polls `done` every 10 ms until it holds or `within` has passed; whether
/// it held.
async fn eventually(within: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// A small deterministic generator, as in `cancellation.rs`.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// A claim server answering `{"task":null}` after 0–1 ms.
fn claim_server() -> OnThread<TestServer> {
    OnThread::start(|| async {
        let counter = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
        TestServer::start(move |_| {
            let mut random = XorShift(counter.fetch_add(0x9E37_79B9, Ordering::Relaxed) | 1);
            Reply::After(Duration::from_micros(random.below(1_001)), Box::new(Reply::json(200, r#"{"task":null}"#)))
        })
        .await
    })
}

/// 16 callers making 300 claims each, two thirds of them dropped before,
/// while or after the server answers.
async fn storm(client: &HyperClient) {
    let mut callers = tokio::task::JoinSet::new();
    for index in 0..CALLERS {
        let client = client.clone();
        callers.spawn(async move {
            let mut random = XorShift(0x2545_F491_4F6C_DD1D ^ (index as u64 + 1));
            let runtime = RuntimeId::new("rt-1");
            for _ in 0..300 {
                let call = client.claim_task(&runtime);
                match random.below(4) {
                    0 => {
                        let polls = random.below(8);
                        tokio::select! {
                            biased;
                            _ = call => {}
                            () = async { for _ in 0..polls { tokio::task::yield_now().await } } => {}
                        }
                    }
                    1 | 2 => drop(tokio::time::timeout(Duration::from_micros(random.below(1_001)), call).await),
                    _ => drop(call.await),
                }
            }
        });
    }
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }
}

#[test]
fn after_a_cancellation_storm_http1_holds_a_connection_per_caller_at_most() {
    alone(async {
        let server = claim_server();
        let server = server.server();
        let client = HyperClient::builder(server.url()).http2(false).build().unwrap();
        client.claim_task(&RuntimeId::new("rt-1")).await.unwrap();
        let (fds, tasks) = (open_fds(), alive_tasks());

        storm(&client).await;

        let abandoned = client.abandoned_calls();
        // Connections closed by the client are closed by the server soon after.
        let settled = eventually(Duration::from_secs(5), || server.open() <= CALLERS + SLACK).await;
        println!(
            "HTTP/1.1 storm: {} connections accepted, {} open; fds {fds} -> {}; tasks {tasks} -> {}; {abandoned:?}",
            server.accepted(),
            server.open(),
            open_fds(),
            alive_tasks()
        );
        assert!(settled, "{} connections still open after the storm", server.open());
        assert!(abandoned.claims > 0 && abandoned.claims == abandoned.calls, "{abandoned:?}");
        assert_eq!(abandoned.closed, abandoned.calls, "every abandoned HTTP/1.1 exchange closes: {abandoned:?}");
        // Client and server ends of each connection are both in this process.
        assert!(open_fds() <= fds + 2 * (CALLERS + SLACK), "fds {fds} -> {}", open_fds());
        // One task per pooled connection at most.
        assert!(alive_tasks() <= tasks + CALLERS + SLACK, "tasks {tasks} -> {}", alive_tasks());
    });
}

#[test]
fn after_a_cancellation_storm_h2c_holds_one_connection_and_bounded_streams() {
    alone(async {
        let server = claim_server();
        let server = server.server();
        let client = HyperClient::builder(server.url()).http2_prior_knowledge(true).build().unwrap();
        client.claim_task(&RuntimeId::new("rt-1")).await.unwrap();
        let (fds, tasks) = (open_fds(), alive_tasks());

        storm(&client).await;

        let abandoned = client.abandoned_calls();
        println!(
            "h2c storm: {} connections accepted, {} open; fds {fds} -> {}; tasks {tasks} -> {}; {abandoned:?}",
            server.accepted(),
            server.open(),
            open_fds(),
            alive_tasks()
        );
        assert!(abandoned.in_background <= MAX_BACKGROUND_EXCHANGES as u64, "{abandoned:?}");
        assert!(abandoned.claims > 0, "{abandoned:?}");
        // The background exchanges end, each within the grace.
        let drained = eventually(Duration::from_secs(5), || client.abandoned_calls().in_background == 0).await;
        assert!(drained, "{:?}", client.abandoned_calls());
        assert!(server.open() <= 2, "{} connections open", server.open());
        assert!(open_fds() <= fds + 4, "fds {fds} -> {}", open_fds());
        assert!(alive_tasks() <= tasks + SLACK, "tasks {tasks} -> {}", alive_tasks());
    });
}

/// 16 callers each making claims they give up after 100 ms, until `stop`.
fn give_up_at_100_ms(client: &HyperClient, stop: &Arc<AtomicBool>) -> tokio::task::JoinSet<()> {
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let (client, stop) = (client.clone(), Arc::clone(stop));
        callers.spawn(async move {
            let runtime = RuntimeId::new("rt-1");
            while !stop.load(Ordering::Relaxed) {
                let outcome = tokio::time::timeout(Duration::from_millis(100), client.claim_task(&runtime)).await;
                assert!(outcome.is_err(), "the server never answers: {outcome:?}");
            }
        });
    }
    callers
}

const SILENT_FOR: Duration = Duration::from_secs(10);

#[test]
fn ten_seconds_of_calls_given_up_on_a_silent_http1_server_hold_a_connection_per_caller() {
    alone(async {
        // Reads each request and never answers; closes when the client does.
        let server = OnThread::start(|| {
            RawServer::start(|mut conn| async move {
                conn.read_request().await;
                conn.until_the_client_closes().await;
            })
        });
        let server = server.server();
        let client = HyperClient::builder(server.url()).http2(false).build().unwrap();
        let (fds, tasks) = (open_fds(), alive_tasks());
        let stop = Arc::new(AtomicBool::new(false));
        let mut callers = give_up_at_100_ms(&client, &stop);

        tokio::time::sleep(SILENT_FOR).await;
        let (open, fds_now, tasks_now) = (server.open(), open_fds(), alive_tasks());
        let abandoned = client.abandoned_calls();
        stop.store(true, Ordering::Relaxed);
        while let Some(done) = callers.join_next().await {
            done.unwrap();
        }
        println!(
            "HTTP/1.1 silent server, {SILENT_FOR:?}: {} connections accepted, {open} open; fds {fds} -> {fds_now}; \
             tasks {tasks} -> {tasks_now}; {abandoned:?}",
            server.accepted()
        );
        assert!(abandoned.claims >= (CALLERS * 50) as u64, "the callers gave up often: {abandoned:?}");
        assert!(open <= CALLERS + SLACK, "{open} connections open");
        assert!(fds_now <= fds + 2 * (CALLERS + SLACK), "fds {fds} -> {fds_now}");
        // The callers themselves, and one task per connection.
        assert!(tasks_now <= tasks + 2 * CALLERS + SLACK, "tasks {tasks} -> {tasks_now}");
    });
}

#[test]
fn ten_seconds_of_calls_given_up_on_a_silent_h2c_server_hold_bounded_streams() {
    alone(async {
        let server = OnThread::start(|| TestServer::start(|_| Reply::Never));
        let server = server.server();
        let client = HyperClient::builder(server.url()).http2_prior_knowledge(true).build().unwrap();
        let (fds, tasks) = (open_fds(), alive_tasks());
        let stop = Arc::new(AtomicBool::new(false));
        let mut callers = give_up_at_100_ms(&client, &stop);

        tokio::time::sleep(SILENT_FOR).await;
        let (open, streams, fds_now, tasks_now) = (server.open(), server.answering(), open_fds(), alive_tasks());
        let abandoned = client.abandoned_calls();
        stop.store(true, Ordering::Relaxed);
        while let Some(done) = callers.join_next().await {
            done.unwrap();
        }
        println!(
            "h2c silent server, {SILENT_FOR:?}: {} connections accepted, {open} open, {streams} streams answering; \
             fds {fds} -> {fds_now}; tasks {tasks} -> {tasks_now}; {abandoned:?}",
            server.accepted()
        );
        assert!(abandoned.claims >= (CALLERS * 50) as u64, "the callers gave up often: {abandoned:?}");
        assert!(abandoned.reset > 0, "past the bounds, streams are reset: {abandoned:?}");
        assert!(open <= 2, "{open} connections open");
        assert!(streams <= MAX_BACKGROUND_EXCHANGES + CALLERS, "{streams} streams open at the server");
        assert!(fds_now <= fds + 4, "fds {fds} -> {fds_now}");
        // The callers, the background exchanges, and hyper's task per open
        // stream (live or in the background).
        let most = tasks + CALLERS + MAX_BACKGROUND_EXCHANGES + (MAX_BACKGROUND_EXCHANGES + CALLERS) + SLACK;
        assert!(tasks_now <= most, "tasks {tasks} -> {tasks_now}");
    });
}
