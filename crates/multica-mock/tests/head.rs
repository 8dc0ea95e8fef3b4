//! The fake built as server HEAD 1cc46b2697 (`ServerVersion::Head`): its
//! auth, state rules and timers, in process and over HTTP, each checked
//! with other requests than the recorded ones (`replay_head.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use common::{register_request, world_with, World};
use multica_api::{DaemonApiExt, FailureReason, TaskCompletion, TaskId, TaskStatus, WorkspaceId};
use multica_mock::{serve, MockDaemon, MockToken, ServerVersion, WorkspaceSeed};

const PAT: &str = "mul_head0000000000000000000000000000000000";

fn head() -> MockDaemon {
    MockDaemon::builder().server_version(ServerVersion::Head).token(PAT).build().unwrap()
}

async fn head_world() -> World {
    world_with(head()).await
}

/// Keeps the runtime fresh while the clock moves, as a daemon heartbeating
/// every 30 s would.
async fn advance_with_heartbeats(world: &World, by: Duration) {
    let step = Duration::from_secs(30);
    let mut left = by;
    while !left.is_zero() {
        let now = left.min(step);
        world.mock.advance_clock(now);
        world.mock.send_heartbeat(&world.runtime_id).await.unwrap();
        left -= now;
    }
}

#[tokio::test]
async fn every_daemon_route_needs_a_credential_of_the_contract() {
    let world = head_world().await;
    let runtime = &world.runtime_id;
    let status = |mock: MockDaemon| {
        let runtime = runtime.clone();
        async move { mock.send_heartbeat(&runtime).await.map(|_| ()).map_err(|e| (e.status(), e.server_message())) }
    };
    let body = |m: &str| Some(m.to_owned());
    assert_eq!(status(world.mock.without_token()).await, Err((Some(401), body("missing authorization header"))));
    assert_eq!(status(world.mock.with_token("mul_unknown")).await, Err((Some(401), body("invalid token"))));
    assert_eq!(status(world.mock.with_token("mdt_unknown")).await, Err((Some(401), body("invalid daemon token"))));
    // A task token is no daemon credential; neither is a cloud node PAT without a fleet.
    assert_eq!(status(world.mock.with_token("mat_0123")).await, Err((Some(401), body("invalid token"))));
    assert_eq!(status(world.mock.with_token("mcn_0123")).await, Err((Some(401), body("invalid token"))));
    assert_eq!(status(world.mock.clone()).await, Ok(()));
}

#[tokio::test]
async fn tokens_act_only_on_their_workspaces() {
    let world = head_world().await;
    let other = world.mock.add_workspace(WorkspaceSeed { name: "Other".into(), ..Default::default() }).unwrap();
    world.mock.add_token(&MockToken::member_of("mul_outsider", [])).unwrap();
    world.mock.add_token(&MockToken::member_of("mul_other", [other.clone()])).unwrap();
    world.mock.add_token(&MockToken::daemon("mdt_d1", world.workspace_id.clone(), "d1".into())).unwrap();
    world.mock.add_token(&MockToken::daemon("mdt_other", other.clone(), "d9".into())).unwrap();

    for token in ["mul_outsider", "mul_other", "mdt_other"] {
        let err = world.mock.with_token(token).send_heartbeat(&world.runtime_id).await.unwrap_err();
        assert_eq!((err.status(), err.server_message().as_deref()), (Some(404), Some("not found")), "{token}");
        let err = world.mock.with_token(token).register(&register_request(&world.workspace_id, "d1", "claude")).await;
        assert_eq!(err.unwrap_err().server_message().as_deref(), Some("workspace not found"), "{token}");
    }
    assert!(world.mock.with_token("mdt_d1").send_heartbeat(&world.runtime_id).await.is_ok());
    assert!(world.mock.with_token("mul_other").register(&register_request(&other, "d2", "codex")).await.is_ok());
}

#[tokio::test]
async fn a_daemon_token_expires_on_the_fake_clock() {
    let world = head_world().await;
    let expires = "2026-01-01T00:01:00Z".to_owned();
    let token = MockToken::Daemon {
        token: "mdt_soon".into(),
        workspace_id: world.workspace_id.clone(),
        daemon_id: "d1".into(),
        expires_at: Some(expires),
    };
    world.mock.add_token(&token).unwrap();
    let daemon = world.mock.with_token("mdt_soon");
    assert!(daemon.send_heartbeat(&world.runtime_id).await.is_ok());
    world.mock.advance_clock(Duration::from_secs(60));
    let err = daemon.send_heartbeat(&world.runtime_id).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("invalid daemon token"));
    // Bad tokens are refused when added.
    assert!(world.mock.add_token(&MockToken::personal("mdt_wrong_kind")).is_err());
    let bad_expiry = MockToken::Daemon {
        token: "mdt_x".into(),
        workspace_id: WorkspaceId::new("w"),
        daemon_id: "d".into(),
        expires_at: Some("tomorrow".into()),
    };
    assert!(world.mock.add_token(&bad_expiry).is_err());
}

#[tokio::test]
async fn malformed_and_unknown_ids_have_their_own_errors() {
    let world = head_world().await;
    let err = world.mock.start_task(&TaskId::new("not-a-uuid")).await.unwrap_err();
    assert_eq!((err.status(), err.server_message().as_deref()), (Some(400), Some("invalid task_id")));
    let err = world.mock.get_task_status(&TaskId::new("00000000-0000-4000-8000-0000000000ff")).await.unwrap_err();
    assert_eq!((err.status(), err.server_message().as_deref()), (Some(404), Some("task not found")));
    let err = world.mock.send_heartbeat(&"nope".into()).await.unwrap_err();
    assert_eq!((err.status(), err.server_message().as_deref()), (Some(400), Some("invalid runtime_id")));
    let err = world.mock.claim_task(&"00000000-0000-4000-8000-0000000000ff".into()).await.unwrap_err();
    assert_eq!((err.status(), err.server_message().as_deref()), (Some(404), Some("runtime not found")));
}

#[tokio::test]
async fn complete_and_fail_leave_a_task_they_cannot_act_on_unchanged() {
    let world = head_world().await;
    let task = world.dispatched("issue-1").await;
    // Completing a dispatched task: 200, nothing recorded.
    world.mock.complete_task(&task, &TaskCompletion::with_output("early")).await.unwrap();
    assert_eq!(world.mock.task_status(&task), Some(TaskStatus::Dispatched));
    world.mock.start_task(&task).await.unwrap();
    world.mock.complete_task(&task, &TaskCompletion::with_output("done")).await.unwrap();
    // Failing or completing it again changes nothing.
    world.mock.fail_task(&task, "too late").await.unwrap();
    world.mock.complete_task(&task, &TaskCompletion::with_output("again")).await.unwrap();
    let record = world.mock.task(&task).unwrap();
    assert_eq!(record.status, TaskStatus::Completed);
    assert_eq!(record.error, None);
    assert_eq!(record.result.unwrap()["output"], "done");
    // Start is still refused outside dispatched / waiting.
    let err = world.mock.start_task(&task).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("start task: no rows in result set"));
}

#[tokio::test]
async fn a_claim_carries_the_head_fields_and_a_new_task_token() {
    let world = head_world().await;
    let id = world.enqueue("issue-1", 3);
    let task = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    assert_eq!(task.record.id, id);
    assert_eq!(task.record.workspace_id, world.workspace_id);
    assert_eq!((task.record.attempt, task.record.max_attempts), (Some(1), Some(2)));
    assert!(task.leader_role_resolved);
    let token = task.auth_token.unwrap();
    assert!(token.expose().starts_with("mat_") && token.expose().len() == 44, "{}", token.expose());
    assert!(token.expose()[4..].bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn a_stale_dispatch_is_handed_out_again_with_a_new_token() {
    let world = head_world().await;
    world.enqueue("issue-1", 3);
    let first = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    // Within 90 s nothing is handed out (the agent's issue is busy).
    advance_with_heartbeats(&world, Duration::from_secs(60)).await;
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_none());
    advance_with_heartbeats(&world, Duration::from_secs(31)).await;
    let again = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    assert_eq!(again.record.id, first.record.id);
    assert_ne!(again.auth_token.unwrap().expose(), first.auth_token.unwrap().expose());
    assert_ne!(again.record.dispatched_at, first.record.dispatched_at);
}

#[tokio::test]
async fn a_silent_runtime_gets_no_tasks_and_goes_offline_after_150_s() {
    let world = head_world().await;
    world.enqueue("issue-1", 3);
    world.mock.advance_clock(Duration::from_secs(150));
    assert_eq!(world.mock.runtime_by_id(&world.runtime_id).unwrap().status, multica_api::RuntimeStatus::Online);
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_some(), "fresh at exactly 150 s");
    world.mock.advance_clock(Duration::from_secs(30));
    assert_eq!(world.mock.runtime_by_id(&world.runtime_id).unwrap().status, multica_api::RuntimeStatus::Offline);
}

#[tokio::test]
async fn a_dispatch_that_never_starts_times_out_and_is_retried() {
    let world = head_world().await;
    let id = world.enqueue("issue-1", 3);
    world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    // Re-dispatches at 90 s keep it from timing out only while claimed again;
    // here nobody claims, so the 300 s dispatch timeout fires.
    advance_with_heartbeats(&world, Duration::from_secs(330)).await;
    let failed = world.mock.task(&id).unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("task timed out"));
    assert_eq!(failed.failure_reason, FailureReason::Timeout);
    let retry =
        world.mock.snapshot().tasks.into_iter().map(|t| t.record).find(|t| t.parent_task_id.as_ref() == Some(&id));
    let retry = retry.expect("a retry of a timeout");
    assert_eq!((retry.status, retry.attempt), (TaskStatus::Queued, Some(2)));
    assert_eq!(retry.attribution.unwrap().retry_of_task_id, Some(id));
}

#[tokio::test]
async fn a_queued_task_expires_after_two_hours() {
    let world = head_world().await;
    // Another runtime of the workspace, never claimed from.
    let id = world.enqueue("issue-1", 3);
    world.mock.advance_clock(Duration::from_secs(2 * 3600 + 30));
    let record = world.mock.task(&id).unwrap();
    assert_eq!(record.status, TaskStatus::Failed);
    assert_eq!(record.failure_reason, FailureReason::QueuedExpired);
}

/// Over HTTP: `POST /_mock/tokens`, the daemon middleware's bytes, the CSP
/// header on every answer, and removed routes.
#[tokio::test]
async fn over_http_tokens_are_added_and_every_answer_carries_the_csp() {
    let world = head_world().await;
    let server = serve(world.mock.clone()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |method: &str, path: &str, token: Option<&str>, body: Value| {
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", server.base_url()));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = builder.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    };
    let heartbeat = json!({ "runtime_id": world.runtime_id });

    let (parts, body) = send("POST", "/api/daemon/heartbeat", None, heartbeat.clone()).await;
    assert_eq!(parts.status, 401);
    assert_eq!(parts.headers["content-type"], "application/json");
    assert_eq!(&body[..], br#"{"error":"missing authorization header"}"#, "the middleware writes no newline");
    assert!(parts.headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'self';"));

    let token = json!({"token": "mdt_http", "kind": "daemon", "workspace_id": world.workspace_id, "daemon_id": "d1"});
    let (parts, _) = send("POST", "/_mock/tokens", None, token).await;
    assert_eq!(parts.status, 200);
    let (parts, body) = send("POST", "/api/daemon/heartbeat", Some("mdt_http"), heartbeat.clone()).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"{\"status\":\"ok\"}\n"[..]));
    let bad = json!({"token": "abc", "kind": "personal"});
    assert_eq!(send("POST", "/_mock/tokens", None, bad).await.0.status, 400);

    // Removed routes: 401 without a token, 404 with one.
    let usage = format!("/api/daemon/runtimes/{}/usage", world.runtime_id);
    assert_eq!(send("POST", &usage, None, json!({})).await.0.status, 401);
    let (parts, body) = send("POST", &usage, Some(PAT), json!({})).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (404, &b"404 page not found\n"[..]));
    assert_eq!(send("POST", "/api/daemon/pairing-sessions", Some(PAT), json!({})).await.0.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn the_3c93ebaf1c_fake_keeps_its_open_daemon_routes_and_no_csp() {
    let mock = MockDaemon::builder().token(PAT).build().unwrap();
    assert_eq!(mock.server_version(), ServerVersion::V3c93ebaf1c);
    let world = world_with(mock).await;
    assert!(world.mock.without_token().send_heartbeat(&world.runtime_id).await.is_ok());
    let server = serve(world.mock.clone()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(format!("{}/health", server.base_url())).body(Full::new(Bytes::new())).unwrap();
    let response = client.request(request).await.unwrap();
    assert!(response.headers().get("content-security-policy").is_none());
    server.shutdown().await;
}
