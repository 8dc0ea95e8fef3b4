//! The transport's retries: safe calls only, claim never sent twice.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use multica_api::{DaemonApi, Error, RuntimeId, TaskId, TransportKind};
use multica_hyper::{HyperClient, RetryPolicy};
use support::{Reply, TestServer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Retries at once, so the tests need no waiting.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..RetryPolicy::default()
    }
}

fn client(url: String) -> HyperClient {
    HyperClient::builder(url).retry_policy(quick_retries()).build().unwrap()
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
async fn the_off_switch_disables_retries() {
    let server = TestServer::queue(vec![busy(), Reply::json(200, r#"{"status":"ok"}"#)]).await;
    let client = client(server.url()).with_retry_policy(RetryPolicy::disabled());
    assert_eq!(client.send_heartbeat(&runtime()).await.unwrap_err().status(), Some(503));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_gives_up_at_once() {
    let server = TestServer::queue(vec![
        Reply::with_headers(503, "busy", &[("retry-after", "60")]),
        Reply::json(200, r#"{"status":"ok"}"#),
    ])
    .await;
    let client = client(server.url()).with_call_timeout(Duration::from_secs(5));
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
