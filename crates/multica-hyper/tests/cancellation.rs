//! A storm of cancellations on one shared client: callers that give up
//! (a timeout, a `select!` that picks another branch) must never fail the
//! calls of the callers that did not.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use multica_api::{DaemonApiExt, Error, RuntimeId};
use multica_hyper::HyperClient;
use support::{Reply, TestServer};

const CALLERS: usize = 16;
const CALLS_PER_CALLER: usize = 600;

/// A small deterministic generator: the storm is the same shape every run
/// without a dependency on `rand`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The most a claim server waits before answering, and the most a caller
/// gives a call it cancels by a timeout: cancellations land before, while
/// and after the server answers.
const MAX_WAIT_MICROS: u64 = 1_000;

/// A claim server answering `{"task":null}` after 0–1 ms, as a server doing
/// a little work, on a thread and runtime of its own as a separate process
/// would be. Dropping it stops the server and its thread.
struct ClaimServer {
    server: Option<TestServer>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClaimServer {
    fn start() -> Self {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let counter = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
                let server = TestServer::start(move |_| {
                    let mut random = XorShift(counter.fetch_add(0x9E37_79B9, Ordering::Relaxed) | 1);
                    let wait = Duration::from_micros(random.below(MAX_WAIT_MICROS + 1));
                    Reply::After(wait, Box::new(Reply::json(200, r#"{"task":null}"#)))
                })
                .await;
                started_tx.send(server).unwrap();
                // Serving goes on as long as this runtime runs.
                let _ = stopped.await;
            });
        });
        let server = started_rx.recv().unwrap();
        Self { server: Some(server), stop: Some(stop), thread: Some(thread) }
    }

    fn server(&self) -> &TestServer {
        self.server.as_ref().unwrap()
    }
}

impl Drop for ClaimServer {
    fn drop(&mut self) {
        drop(self.server.take());
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How the storm went for the calls that were let finish.
#[derive(Default)]
struct Tally {
    cancelled: usize,
    finished: usize,
    failures: Vec<Error>,
}

/// One caller: `CALLS_PER_CALLER` claims, two thirds of them raced with a
/// cancellation that drops the call's future — after a few polls (before
/// or while the request is written) or after a random wait (while the
/// answer is due). A call whose answer wins the race counts as finished.
async fn caller(client: HyperClient, seed: u64) -> Tally {
    let mut random = XorShift(seed);
    let runtime = RuntimeId::new("rt-1");
    let mut tally = Tally::default();
    for _ in 0..CALLS_PER_CALLER {
        let call = client.claim_task(&runtime);
        let outcome = match random.below(4) {
            0 => {
                let polls = random.below(8);
                tokio::select! {
                    biased;
                    outcome = call => Some(outcome),
                    () = yield_times(polls) => None,
                }
            }
            1 | 2 => {
                let wait = Duration::from_micros(random.below(MAX_WAIT_MICROS + 1));
                tokio::time::timeout(wait, call).await.ok()
            }
            _ => Some(call.await),
        };
        match outcome {
            None => tally.cancelled += 1,
            Some(result) => {
                tally.finished += 1;
                if let Err(err) = result {
                    tally.failures.push(err);
                }
            }
        }
    }
    tally
}

async fn yield_times(times: u64) {
    for _ in 0..times {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_never_fail_their_neighbours_over_h2c() {
    let claim_server = ClaimServer::start();
    let server = claim_server.server();
    // No retries: a failure shows as it is, as a claim's would anyway.
    let client = HyperClient::builder(server.url())
        .http2_prior_knowledge(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    client.claim_task(&RuntimeId::new("rt-1")).await.unwrap();

    let mut callers = tokio::task::JoinSet::new();
    for index in 0..CALLERS {
        callers.spawn(caller(client.clone(), 0x2545_F491_4F6C_DD1D ^ (index as u64 + 1)));
    }
    let mut tally = Tally::default();
    while let Some(done) = callers.join_next().await {
        let one = done.unwrap();
        tally.cancelled += one.cancelled;
        tally.finished += one.finished;
        tally.failures.extend(one.failures);
    }
    let mut kinds: Vec<String> = tally.failures.iter().map(ToString::to_string).collect();
    kinds.sort();
    kinds.dedup();
    println!(
        "storm: {} calls, {} cancelled, {} let finish, {} of them failed; {} connection(s), {} requests seen",
        CALLERS * CALLS_PER_CALLER,
        tally.cancelled,
        tally.finished,
        tally.failures.len(),
        server.accepted(),
        server.requests().len()
    );
    for kind in &kinds {
        println!("  {kind}");
    }
    assert!(tally.cancelled > CALLERS * CALLS_PER_CALLER / 10, "the storm cancelled {} calls", tally.cancelled);
    assert!(tally.failures.is_empty(), "{} of {} calls failed: {kinds:#?}", tally.failures.len(), tally.finished);

    // The pool is still usable: more calls on the same client all succeed,
    // on the connections it already has.
    let before = server.accepted();
    let mut after = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let client = client.clone();
        after.spawn(async move {
            for _ in 0..20 {
                client.claim_task(&RuntimeId::new("rt-1")).await.unwrap();
            }
        });
    }
    while let Some(done) = after.join_next().await {
        done.unwrap();
    }
    assert!(server.accepted() <= before + 1, "{before} connection(s) before, {} after", server.accepted());
    assert!(server.accepted() <= 3, "{} connections for one h2c client", server.accepted());
}

/// A call given up while its exchange is in flight over HTTP/1.1 closes its
/// connection at once, as Go's client does: nothing holds a connection for
/// a caller that is gone, and a late answer cannot reach another call. The
/// claim is counted as abandoned.
#[tokio::test]
async fn an_abandoned_http1_exchange_closes_its_connection_at_once() {
    const DEADLINE: Duration = Duration::from_secs(30);
    let server = TestServer::start(|_| Reply::Never).await;
    let client = HyperClient::builder(server.url()).http2(false).timeout(DEADLINE).build().unwrap();
    let started = tokio::time::Instant::now();
    let runtime = RuntimeId::new("rt-1");
    let mut call = Box::pin(client.claim_task(&runtime));
    // Give up once the server has the request, as a caller's `select!` would.
    tokio::select! {
        outcome = &mut call => panic!("the server never answers, yet the call ended: {outcome:?}"),
        () = server.wait_requests(1) => {}
    }
    drop(call);
    server.wait_closed(1).await;
    assert!(started.elapsed() < DEADLINE, "closed after {:?}", started.elapsed());
    let abandoned = client.abandoned_calls();
    assert_eq!((abandoned.calls, abandoned.claims, abandoned.closed), (1, 1, 1), "{abandoned:?}");
}

/// Over h2c an abandoned exchange goes on in the background (its stream is
/// not reset at once), and is reset once the grace has passed when the
/// server does not answer.
#[tokio::test]
async fn an_abandoned_h2c_exchange_ends_within_the_grace() {
    let server = TestServer::start(|_| Reply::Never).await;
    let client = HyperClient::builder(server.url()).http2_prior_knowledge(true).build().unwrap();
    let started = tokio::time::Instant::now();
    let runtime = RuntimeId::new("rt-1");
    let mut call = Box::pin(client.claim_task(&runtime));
    tokio::select! {
        outcome = &mut call => panic!("the server never answers, yet the call ended: {outcome:?}"),
        () = server.wait_requests(1) => {}
    }
    drop(call);
    assert_eq!(client.abandoned_calls().in_background, 1, "{:?}", client.abandoned_calls());
    assert_eq!(server.answering(), 1, "the stream stays open for now");
    let deadline = started + multica_hyper::BACKGROUND_GRACE + Duration::from_secs(3);
    while client.abandoned_calls().in_background > 0 || server.answering() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", client.abandoned_calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started.elapsed() >= multica_hyper::BACKGROUND_GRACE, "reset after {:?}", started.elapsed());
    let abandoned = client.abandoned_calls();
    assert_eq!((abandoned.claims, abandoned.reset), (1, 1), "{abandoned:?}");
    assert_eq!(server.accepted(), 1, "the connection is kept");
}
