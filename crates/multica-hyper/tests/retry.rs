//! Retries of the hyper client through the `Retry` layer: safe calls only,
//! claim never sent twice, and however the layers are stacked a call is
//! attempted as often as one policy allows (counted at the server).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use multica_api::layer::Retry;
use multica_api::{DaemonApi, DaemonApiExt, Error, RuntimeId, TaskId, TransportKind};
use multica_hyper::{HyperClient, RetryPolicy};
use support::{Reply, TestServer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Retries at once, so the tests need no waiting.
fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(2))
}

fn plain(url: String) -> HyperClient {
    HyperClient::builder(url).build().unwrap()
}

fn client(url: String) -> Retry<HyperClient> {
    plain(url).with_retry(quick_retries())
}

fn runtime() -> RuntimeId {
    RuntimeId::new("rt-1")
}

fn busy() -> Reply {
    Reply::json(503, r#"{"error":"busy"}"#)
}

#[tokio::test]
async fn a_503_then_200_is_retried_for_a_safe_call() {
    let server = TestServer::queue(vec![busy(), Reply::json(200, r#"{"status":"ok"}"#)]).await;
    let answer = client(server.url()).send_heartbeat(&runtime()).await.unwrap();
    assert_eq!(answer.status, "ok");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_503_is_not_retried_for_claim() {
    let server = TestServer::queue(vec![busy(), Reply::json(200, r#"{"task":null}"#)]).await;
    let err = client(server.url()).claim_task(&runtime()).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn retries_stop_after_max_attempts_and_say_so() {
    let server = TestServer::queue(vec![busy(), busy(), busy(), busy()]).await;
    let err = client(server.url()).get_task_status(&TaskId::new("t-1")).await.unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { attempts: 3, .. }), "{err}");
    assert_eq!(err.status(), Some(503));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn the_client_alone_sends_each_call_once() {
    let server = TestServer::queue(vec![busy(), Reply::json(200, r#"{"status":"ok"}"#)]).await;
    let client = plain(server.url());
    assert_eq!(client.send_heartbeat(&runtime()).await.unwrap_err().status(), Some(503));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_gives_up_at_once() {
    let server = TestServer::queue(vec![
        Reply::with_headers(503, "busy", &[("retry-after", "60")]),
        Reply::json(200, r#"{"status":"ok"}"#),
    ])
    .await;
    let client = plain(server.url()).with_retry(quick_retries().with_budget(Duration::from_secs(5)));
    let started = Instant::now();
    let err = client.send_heartbeat(&runtime()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_short_retry_after_is_waited_for() {
    let server = TestServer::queue(vec![
        Reply::with_headers(429, "slow down", &[("retry-after", "1")]),
        Reply::json(200, r#"{"status":"ok"}"#),
    ])
    .await;
    let started = Instant::now();
    client(server.url()).send_heartbeat(&runtime()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_even_for_claim() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = client(url).claim_task(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { attempts: 3, .. }), "{err}");
    assert!(matches!(err.last_attempt(), Error::Transport { kind: TransportKind::Connect, .. }));
}

/// A server that reads each request and hangs up without answering, so the
/// request may have been acted on; returns its URL and its accept counter.
async fn hang_up_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (accepted, accepts) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted.send(()).unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
        }
    });
    (url, accepts, task)
}

#[tokio::test]
async fn a_claim_that_may_have_reached_the_server_is_never_resent() {
    let (url, mut accepts, server) = hang_up_server().await;
    let err = client(url.clone()).claim_task(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { kind: TransportKind::Request, .. }), "{err}");
    assert!(err.may_have_reached_server());
    assert_eq!(accepts.try_recv(), Ok(()));
    assert!(accepts.try_recv().is_err(), "claim was sent once");

    // The same failure of a heartbeat is retried.
    let err = client(url).send_heartbeat(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { attempts: 3, .. }), "{err}");
    for _ in 0..3 {
        assert_eq!(accepts.try_recv(), Ok(()));
    }
    server.abort();
}

/// Wraps the client into the stack under test.
type Stack = Box<dyn FnOnce(HyperClient) -> Arc<dyn DaemonApi>>;

/// Runs one heartbeat against a server answering 503 to everything and
/// returns how many requests reached it and the error's text.
async fn heartbeat_against_503(stack: Stack) -> (usize, String) {
    let server = TestServer::start(|_| busy()).await;
    let api = stack(plain(server.url()));
    let err = api.send_heartbeat(&runtime()).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    (server.requests().len(), err.display_chain().to_string())
}

fn gave_up_count(text: &str) -> usize {
    text.matches("gave up after").count()
}

#[tokio::test]
async fn every_stacking_attempts_a_call_as_often_as_one_policy_allows() {
    let timeout = Duration::from_secs(10);
    let cases: Vec<(&str, usize, Stack)> = vec![
        ("client alone", 1, Box::new(|client| Arc::new(client))),
        ("client.with_retry", 3, Box::new(|client| Arc::new(client.with_retry(quick_retries())))),
        (
            "client.with_timeout.with_retry",
            3,
            Box::new(move |client| Arc::new(client.with_timeout(timeout).with_retry(quick_retries()))),
        ),
        (
            "retry over retry",
            3,
            Box::new(|client| Arc::new(client.with_retry(quick_retries()).with_retry(quick_retries()))),
        ),
        (
            "retry over timeout over retry",
            3,
            Box::new(move |client| {
                Arc::new(client.with_retry(quick_retries()).with_timeout(timeout).with_retry(quick_retries()))
            }),
        ),
        (
            "retry over Arc<dyn> over retry",
            3,
            Box::new(|client| {
                let inner: Arc<dyn DaemonApi> = Arc::new(client.with_retry(quick_retries()));
                Arc::new(inner.with_retry(quick_retries()))
            }),
        ),
        (
            "README stack over a retrying client, default policies",
            4,
            Box::new(move |client| {
                let inner: Arc<dyn DaemonApi> = Arc::new(client.with_retry(RetryPolicy::default()));
                Arc::new(inner.with_timeout(timeout).with_retry(RetryPolicy::default()))
            }),
        ),
        (
            "the outer policy decides",
            2,
            Box::new(|client| {
                let inner: Arc<dyn DaemonApi> = Arc::new(client.with_retry(quick_retries().with_max_attempts(5)));
                Arc::new(inner.with_retry(quick_retries().with_max_attempts(2)))
            }),
        ),
    ];
    for (name, attempts, stack) in cases {
        let (reached, text) = heartbeat_against_503(stack).await;
        assert_eq!(reached, attempts, "{name}: {text}");
        let expected_notes = usize::from(attempts > 1);
        assert_eq!(gave_up_count(&text), expected_notes, "{name}: {text}");
        if attempts > 1 {
            assert!(text.starts_with(&format!("gave up after {attempts} attempts: ")), "{name}: {text}");
        }
    }
}
