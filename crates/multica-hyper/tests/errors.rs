//! How answers and failures become `multica_api::Error` values.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use multica_api::{DaemonApiExt, Error, RuntimeId, TaskId, TaskProgress, TransportKind, MAX_ERROR_BODY_BYTES};
use multica_hyper::HyperClient;
use support::{Reply, TestServer};

fn client_for(server: &TestServer) -> HyperClient {
    HyperClient::builder(server.url()).build().unwrap()
}

fn runtime() -> RuntimeId {
    RuntimeId::new("rt-1")
}

#[tokio::test]
async fn error_statuses_keep_the_go_request_error_and_classify() {
    let server = TestServer::queue(vec![
        Reply::json(400, "{\"error\":\"start task: no rows in result set\"}\n"),
        Reply::with_headers(401, "{\"error\":\"invalid token\"}\n", &[("content-type", "text/plain")]),
        Reply::json(404, r#"{"error":"task not found"}"#),
        Reply::json(500, r#"{"error":"heartbeat failed"}"#),
    ])
    .await;
    let client = client_for(&server);
    let task = TaskId::new("t-1");

    let bad_request = client.start_task(&task).await.unwrap_err();
    assert_eq!(
        bad_request.to_string(),
        r#"POST /api/daemon/tasks/t-1/start returned 400: {"error":"start task: no rows in result set"}"#
    );
    assert_eq!(bad_request.server_message().as_deref(), Some("start task: no rows in result set"));
    assert!(!bad_request.is_transient());

    let unauthorized = client.list_workspaces().await.unwrap_err();
    assert!(unauthorized.is_unauthorized());
    assert_eq!(unauthorized.body(), Some(r#"{"error":"invalid token"}"#));

    let not_found = client.get_task_status(&task).await.unwrap_err();
    assert!(not_found.is_task_not_found());
    assert_eq!(not_found.path(), Some("/api/daemon/tasks/t-1/status"));

    let server_error = client.send_heartbeat(&runtime()).await.unwrap_err();
    assert_eq!(server_error.status(), Some(500));
    assert!(server_error.is_transient() && server_error.is_runtime_not_found());
}

#[tokio::test]
async fn error_bodies_are_cut_at_4096_bytes() {
    let long = format!("{{\"error\":\"{}\"}}", "e".repeat(10_000));
    let server = TestServer::queue(vec![Reply::json(500, &long)]).await;
    let err = client_for(&server).send_heartbeat(&runtime()).await.unwrap_err();
    assert_eq!(err.body().unwrap().len(), MAX_ERROR_BODY_BYTES);
    assert!(long.starts_with(err.body().unwrap()));
}

#[tokio::test]
async fn an_endless_error_body_is_not_read_to_its_end() {
    let server = TestServer::queue(vec![Reply::streamed_with_status(502, u64::MAX)]).await;
    let err = client_for(&server).send_heartbeat(&runtime()).await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert_eq!(err.body().unwrap().len(), MAX_ERROR_BODY_BYTES);
}

#[tokio::test]
async fn retry_after_seconds_are_kept_on_the_error() {
    let server = TestServer::queue(vec![Reply::with_headers(503, "busy", &[("retry-after", "7")])]).await;
    let err = client_for(&server).send_heartbeat(&runtime()).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = TestServer::start(|request| {
        if request.path.starts_with("/elsewhere") {
            Reply::json(200, r#"{"status":"ok"}"#)
        } else {
            Reply::with_headers(302, "", &[("location", "/elsewhere/api/daemon/heartbeat")])
        }
    })
    .await;
    let client = HyperClient::builder(server.url()).token("secret").build().unwrap();
    let err = client.send_heartbeat(&runtime()).await.unwrap_err();
    assert_eq!(err.status(), Some(302));
    assert_eq!(server.only_request().path, "/api/daemon/heartbeat");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_deadline() {
    let server = TestServer::start(|_| Reply::Never).await;
    let timeout = Duration::from_millis(200);
    // The default client waits 30 s; the per-call handle overrides it.
    let client = client_for(&server).with_call_timeout(timeout);
    let started = Instant::now();
    let err = client.claim_task(&runtime()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(err.may_have_reached_server());
    assert!(elapsed >= timeout && elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
    assert!(matches!(err, Error::Timeout { after, .. } if after == timeout));
}

#[tokio::test]
async fn a_huge_body_is_refused_without_buffering_it() {
    let server = TestServer::queue(vec![Reply::streamed(50 * 1024 * 1024)]).await;
    let client = HyperClient::builder(server.url()).max_body_bytes(64 * 1024).build().unwrap();
    let err = client.claim_task(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { limit: 65_536, .. }), "{err}");
    assert!(!err.is_transient(), "retrying cannot shrink the body");
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_reading() {
    let body = format!("{{\"task\":null,\"pad\":\"{}\"}}", "x".repeat(4096));
    let server = TestServer::queue(vec![Reply::json(200, &body)]).await;
    let client = HyperClient::builder(server.url()).max_body_bytes(1024).build().unwrap();
    let err = client.claim_task(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::BodyTooLarge { limit: 1024, .. }), "{err}");
}

#[tokio::test]
async fn bad_json_is_a_decode_error_naming_the_call() {
    let server = TestServer::queue(vec![Reply::json(200, r#"{"status":"#), Reply::json(200, "not json")]).await;
    let client = client_for(&server);
    let err = client.send_heartbeat(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().starts_with("POST /api/daemon/heartbeat: cannot decode"), "{err}");
    // Progress's answer is drained and dropped, as the Go client does.
    client.report_progress(&TaskId::new("t-1"), &TaskProgress::default()).await.unwrap();
}

#[tokio::test]
async fn a_null_task_is_none_and_a_task_is_decoded() {
    let task = r#"{"task":{"id":"t-9","agent_id":"a-1","runtime_id":"rt-1","issue_id":"i-1","workspace_id":"w-1",
        "status":"dispatched","priority":2,"agent":{"id":"a-1","name":"Coder","instructions":"be nice","skills":[]},
        "prior_session_id":"s-0","unknown_field":true}}"#;
    let server = TestServer::queue(vec![Reply::json(200, r#"{"task": null}"#), Reply::json(200, task)]).await;
    let client = client_for(&server);
    assert_eq!(client.claim_task(&runtime()).await.unwrap(), None);
    let claimed = client.claim_task(&runtime()).await.unwrap().unwrap();
    assert_eq!(claimed.record.id, TaskId::new("t-9"));
    assert_eq!(claimed.agent.unwrap().name, "Coder");
    assert_eq!(claimed.prior_session_id, "s-0");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = HyperClient::builder(url).build().unwrap();
    let err = client.claim_task(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { kind: TransportKind::Connect, .. }), "{err}");
    assert!(err.is_transient());
    assert!(!err.may_have_reached_server());
}

#[tokio::test]
async fn a_server_without_the_route_gives_the_same_error_as_every_backend() {
    let server = TestServer::queue(vec![Reply::with_headers(
        404,
        "404 page not found\n",
        &[("content-type", "text/plain; charset=utf-8")],
    )])
    .await;
    let err = client_for(&server).list_pending_tasks(&runtime()).await.unwrap_err();
    assert!(err.is_route_not_found() && !err.is_task_not_found(), "{err}");
    let path = "/api/daemon/runtimes/rt-1/tasks/pending";
    let built = Error::route_not_found(multica_api::Endpoint::ListPendingTasks, path);
    assert_eq!(err.to_string(), built.to_string());
    assert_eq!((err.status(), err.body()), (built.status(), built.body()));
}

/// Every message of `err`'s source chain, outermost first.
fn chain(err: &Error) -> Vec<String> {
    let mut messages = vec![err.to_string()];
    let mut cause = std::error::Error::source(err);
    while let Some(next) = cause {
        messages.push(next.to_string());
        cause = next.source();
    }
    messages
}

fn assert_no_message_repeats(err: &Error) {
    let messages = chain(err);
    for (at, outer) in messages.iter().enumerate() {
        for inner in &messages[at + 1..] {
            assert!(!outer.contains(inner.as_str()), "{outer:?} repeats its cause {inner:?} in {messages:?}");
        }
    }
}

#[tokio::test]
async fn real_errors_show_each_cause_once_and_retries_keep_the_last_as_source() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let quick = multica_api::layer::RetryPolicy::default()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(1));
    let client = HyperClient::builder(refused_url).build().unwrap().with_retry(quick);
    let err = client.send_heartbeat(&runtime()).await.unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { attempts: 2, .. }), "{err:?}");
    assert_eq!(err.to_string(), "gave up after 2 attempts");
    let messages = chain(&err);
    assert_eq!(messages[1], "POST /api/daemon/heartbeat: connect failed", "{messages:?}");
    assert!(messages.len() >= 4, "down to the OS error: {messages:?}");
    assert!(err.is_transport() && err.transport_kind() == Some(TransportKind::Connect));
    assert_no_message_repeats(&err);

    let server = TestServer::queue(vec![Reply::json(200, "{not json")]).await;
    let decode = client_for(&server).send_heartbeat(&runtime()).await.unwrap_err();
    assert!(decode.is_decode() && !decode.is_transport(), "{decode:?}");
    assert_eq!(chain(&decode).len(), 2);
    assert_no_message_repeats(&decode);
}
