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
use multica_api::{
    BatchClaimRequest, Call, CancelAck, DaemonApi, DaemonApiExt, FailureReason, LocalDirectoryWait, Reply, SessionPin,
    TaskCompletion, TaskFailure, TaskId, TaskMessage, TaskStatus, TaskUsage, WorkspaceId,
};
use multica_mock::{serve, IssueSeed, MockDaemon, MockToken, Seed, ServerVersion, WorkspaceSeed};

const PAT: &str = "mul_head0000000000000000000000000000000000";
/// The seed's user in the JWT test.
const USER: &str = "ba434649-be0e-4ed6-aadb-a3b483626499";

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
    let complete =
        |output: &str| Call::CompleteTask { task_id: task.clone(), completion: TaskCompletion::with_output(output) };
    let row = |reply: Reply| match reply {
        Reply::TaskRecord(row) => row,
        other => panic!("expected the task row, got {other:?}"),
    };
    // Completing a dispatched task: 200 with the row unchanged, nothing recorded.
    assert_eq!(row(world.mock.call(complete("early")).await.unwrap()).status, TaskStatus::Dispatched);
    // The SDK's typed method reads that as 3c93ebaf1c's state conflict.
    let err = world.mock.complete_task(&task, &TaskCompletion::with_output("early")).await.unwrap_err();
    assert!(err.is_task_state_conflict(), "{err}");
    assert_eq!(world.mock.task_status(&task), Some(TaskStatus::Dispatched));
    world.mock.start_task(&task).await.unwrap();
    world.mock.complete_task(&task, &TaskCompletion::with_output("done")).await.unwrap();
    // Failing or completing it again changes nothing.
    let fail = Call::FailTask { task_id: task.clone(), error: "too late".into() };
    assert_eq!(row(world.mock.call(fail).await.unwrap()).status, TaskStatus::Completed);
    assert_eq!(row(world.mock.call(complete("again")).await.unwrap()).status, TaskStatus::Completed);
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
async fn a_claim_names_its_issue_and_lists_the_agents_other_active_runs() {
    let world = head_world().await;
    let issue = |id: &str, title: &str, number: Option<i64>| IssueSeed {
        id: id.into(),
        title: title.into(),
        number,
        ..IssueSeed::default()
    };
    let seed = Seed {
        issues: vec![issue("issue-a", "Fix login", None), issue("issue-b", "Add docs", Some(7))],
        ..Seed::default()
    };
    world.mock.seed(&seed).unwrap();
    let a = world.enqueue("issue-a", 3);
    let b = world.enqueue("issue-b", 2);
    let c = world.enqueue("issue-c", 1);

    let first = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    assert_eq!((first.record.id.clone(), first.thread_name.as_str()), (a.clone(), "Fix login"));
    assert!(first.active_sibling_runs.is_empty());
    // Without `skill-bundles-v1`: the workspace skill, then the 9 built-ins inline.
    let skills = &first.agent.as_ref().unwrap().skills;
    assert_eq!(skills.len(), 10);
    assert!(skills[1..].iter().all(|s| s.id.as_deref() == Some("") && s.name.starts_with("multica-")));
    assert_eq!(skills[9].name, "multica-working-on-issues");

    world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    let third = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    assert_eq!(third.record.id, c);
    assert_eq!(third.thread_name, "", "an issue without a title");
    let siblings: Vec<(TaskId, &str, &str, TaskStatus)> = third
        .active_sibling_runs
        .iter()
        .map(|r| (r.task_id.clone(), r.issue_identifier.as_str(), r.issue_title.as_str(), r.status.clone()))
        .collect();
    // Newest first; the workspace "Team" numbers its issues `TEA-<n>`: the
    // seeded number kept, the others numbered as their first task is queued.
    assert_eq!(
        siblings,
        vec![
            (b, "TEA-7", "Add docs", TaskStatus::Dispatched),
            (a.clone(), "TEA-1", "Fix login", TaskStatus::Dispatched)
        ]
    );
    world.mock.start_task(&a).await.unwrap();
    let issues = world.mock.snapshot().issues;
    let numbered: Vec<(&str, Option<i64>)> = issues.iter().map(|i| (i.id.as_str(), i.number)).collect();
    assert_eq!(numbered, vec![("issue-a", Some(1)), ("issue-b", Some(7)), ("issue-c", Some(8))]);
}

#[tokio::test]
async fn with_skill_bundles_a_claim_references_the_built_in_skills_and_resolve_answers_them() {
    let world = head_world().await;
    let server = serve(world.mock.clone()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let post = |path: String, body: Value| {
        let request = Request::builder()
            .method("POST")
            .uri(format!("{}{path}", server.base_url()))
            .header("authorization", format!("Bearer {PAT}"))
            .header("x-client-capabilities", "skill-bundles-v1")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                serde_json::from_slice::<Value>(&response.into_body().collect().await.unwrap().to_bytes()).unwrap(),
            )
        }
    };
    let task = world.enqueue("issue-refs", 1);
    let runtime = &world.runtime_id;
    let (status, claim) = post(format!("/api/daemon/runtimes/{runtime}/tasks/claim"), json!({})).await;
    assert_eq!(status, 200);
    let agent = &claim["task"]["agent"];
    assert!(agent.get("skills").is_none());
    let refs = agent["skill_refs"].as_array().unwrap();
    assert_eq!(refs.len(), 10);
    assert_eq!(refs[0]["source"], "workspace");
    let onboarding = refs.iter().find(|r| r["name"] == "multica-onboarding").unwrap();
    assert_eq!(onboarding["id"], "builtin:multica-onboarding");
    assert_eq!(onboarding["source"], "builtin");
    assert_eq!((onboarding["file_count"].as_i64(), onboarding.get("description")), (Some(0), None));
    let autopilots = refs.iter().find(|r| r["name"] == "multica-autopilots").unwrap();
    let file = &autopilots["files"][0];
    assert!(file["sha256"].as_str().unwrap().starts_with("sha256:"));

    let wanted = json!({"skills": [{"id": autopilots["id"], "source": "builtin", "hash": autopilots["hash"]}]});
    let (status, answer) =
        post(format!("/api/daemon/runtimes/{runtime}/tasks/{task}/skill-bundles/resolve"), wanted).await;
    assert_eq!(status, 200, "{answer}");
    let bundle = &answer["bundles"][0];
    assert_eq!(
        (&bundle["id"], &bundle["hash"], &bundle["size_bytes"]),
        (&autopilots["id"], &autopilots["hash"], &autopilots["size_bytes"])
    );
    let content = bundle["content"].as_str().unwrap();
    let files_size: u64 =
        bundle["files"].as_array().unwrap().iter().map(|f| f["content"].as_str().unwrap().len() as u64).sum();
    assert_eq!(content.len() as u64 + files_size, autopilots["size_bytes"].as_u64().unwrap());
    assert!(content.starts_with("---\nname: multica-autopilots"));
    assert_eq!(bundle["files"][0]["sha256"], file["sha256"]);
    let unknown = json!({"skills": [{"id": "builtin:nope", "source": "builtin", "hash": "sha256:00"}]});
    let (status, _) = post(format!("/api/daemon/runtimes/{runtime}/tasks/{task}/skill-bundles/resolve"), unknown).await;
    assert_eq!(status, 404);
    server.shutdown().await;
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

    // The session pin answers 204 without a body; `?since=` must be an integer;
    // `/api/daemon/claim` is the batch claim.
    let task = world.dispatched("issue-http").await;
    let pin = json!({"session_id": "s-1"});
    let (parts, body) = send("POST", &format!("/api/daemon/tasks/{task}/session"), Some(PAT), pin).await;
    assert_eq!((parts.status.as_u16(), body.len()), (204, 0));
    assert!(parts.headers.get("content-type").is_none());
    let (parts, body) =
        send("GET", &format!("/api/daemon/tasks/{task}/messages?since=abc"), Some(PAT), json!(null)).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (400, &b"{\"error\":\"invalid since parameter\"}\n"[..]));
    let batch = json!({"daemon_id": "d1", "runtime_ids": [world.runtime_id], "max_tasks": 0});
    let (parts, body) = send("POST", "/api/daemon/claim", Some(PAT), batch).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"{\"tasks\":[]}\n"[..]));
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

// ----- the routes HEAD added ---------------------------------------------------

fn failure(error: &str, reason: FailureReason) -> TaskFailure {
    TaskFailure { error: error.into(), failure_reason: reason, ..TaskFailure::default() }
}

#[tokio::test]
async fn a_retryable_failure_queues_the_next_attempt_until_attempts_run_out() {
    let world = head_world().await;
    let first = world.dispatched("issue-1").await;
    world.mock.start_task(&first).await.unwrap();
    world.mock.fail_task_with(&first, &failure("agent timed out", FailureReason::Timeout)).await.unwrap();
    let retry = world.mock.claim_task(&world.runtime_id).await.unwrap().expect("the retry is queued at once");
    assert_eq!(retry.record.parent_task_id.as_ref(), Some(&first));
    assert_eq!(retry.record.attempt, Some(2));
    world.mock.start_task(&retry.record.id).await.unwrap();
    world.mock.fail_task_with(&retry.record.id, &failure("again", FailureReason::Timeout)).await.unwrap();
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_none(), "attempt 2 of 2: no retry");
    // Not retryable: nothing either.
    let other = world.dispatched("issue-2").await;
    world.mock.fail_task_with(&other, &failure("bad", FailureReason::from("weird-reason"))).await.unwrap();
    assert_eq!(world.mock.task(&other).unwrap().failure_reason.as_str(), "weird-reason");
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_runtime_offline_retry_is_deferred_one_second() {
    let world = head_world().await;
    let first = world.dispatched("issue-1").await;
    world.mock.fail_task_with(&first, &failure("gone", FailureReason::RuntimeOffline)).await.unwrap();
    assert!(world.mock.list_pending_tasks(&world.runtime_id).await.unwrap().is_empty(), "deferred is not pending");
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_none(), "not due yet");
    world.mock.advance_clock(Duration::from_secs(1));
    world.mock.send_heartbeat(&world.runtime_id).await.unwrap();
    let retry = world.mock.claim_task(&world.runtime_id).await.unwrap().expect("promoted once due");
    assert_eq!(retry.record.parent_task_id, Some(first));
}

#[tokio::test]
async fn prepare_lease_and_waiting_for_a_local_directory_follow_the_state_table() {
    let world = head_world().await;
    let task = world.dispatched("issue-1").await;
    let other_runtime =
        world.mock.register(&register_request(&world.workspace_id, "d1", "codex")).await.unwrap().runtimes[0]
            .id
            .clone();
    let err = world.mock.extend_prepare_lease(&other_runtime, &task).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("task not found"), "a task of another runtime");
    let row = world.mock.extend_prepare_lease(&world.runtime_id, &task).await.unwrap();
    assert_eq!(row.status, TaskStatus::Dispatched);
    let wait = LocalDirectoryWait { reason: "clone the repo".into() };
    let row = world.mock.wait_local_directory(&task, &wait).await.unwrap();
    assert_eq!(row.status, TaskStatus::WaitingLocalDirectory);
    let err = world.mock.wait_local_directory(&task, &wait).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("mark task waiting_local_directory: no rows in result set"));
    assert!(world.mock.list_pending_tasks(&world.runtime_id).await.unwrap().is_empty(), "waiting is not pending");
    world.mock.extend_prepare_lease(&world.runtime_id, &task).await.unwrap();
    world.mock.start_task(&task).await.unwrap();
    let err = world.mock.extend_prepare_lease(&world.runtime_id, &task).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("extend task prepare lease: no rows in result set"));
    // A waiting task fails like a running one.
    let waiting = world.dispatched("issue-2").await;
    world.mock.wait_local_directory(&waiting, &LocalDirectoryWait::default()).await.unwrap();
    world.mock.fail_task(&waiting, "no directory").await.unwrap();
    assert_eq!(world.mock.task_status(&waiting), Some(TaskStatus::Failed));
}

#[tokio::test]
async fn a_prepare_lease_keeps_a_dispatch_from_being_handed_out_again() {
    let world = head_world().await;
    let task = world.dispatched("issue-1").await;
    advance_with_heartbeats(&world, Duration::from_secs(60)).await;
    world.mock.extend_prepare_lease(&world.runtime_id, &task).await.unwrap();
    advance_with_heartbeats(&world, Duration::from_secs(40)).await;
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_none(), "lease runs to 105 s");
    advance_with_heartbeats(&world, Duration::from_secs(10)).await;
    assert_eq!(world.mock.claim_task(&world.runtime_id).await.unwrap().map(|t| t.record.id), Some(task));
}

#[tokio::test]
async fn the_batch_claim_checks_its_daemon_and_hands_out_in_priority_order() {
    let world = head_world().await;
    let codex = world.mock.register(&register_request(&world.workspace_id, "d1", "codex")).await.unwrap().runtimes[0]
        .id
        .clone();
    let low = world.enqueue("issue-low", 1);
    let high = world
        .mock
        .add_task(multica_mock::TaskSeed {
            id: None,
            runtime_id: codex.clone(),
            agent_id: world.agent_id.clone(),
            issue_id: "issue-high".into(),
            priority: 4,
        })
        .unwrap();
    let request = |daemon: &str, max_tasks| BatchClaimRequest {
        daemon_id: daemon.into(),
        runtime_ids: vec![world.runtime_id.clone(), codex.clone(), "not-a-uuid".into(), codex.clone()],
        max_tasks,
    };
    let err = world.mock.claim_tasks(&request("", 1)).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("daemon_id is required"));
    let err = world.mock.claim_tasks(&request("d1", -1)).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("max_tasks must not be negative"));
    assert!(world.mock.claim_tasks(&request("d1", 0)).await.unwrap().is_empty());
    assert!(world.mock.claim_tasks(&request("d2", 5)).await.unwrap().is_empty(), "another daemon's runtimes");
    world.mock.add_token(&MockToken::daemon("mdt_d9", world.workspace_id.clone(), "d9".into())).unwrap();
    let err = world.mock.with_token("mdt_d9").claim_tasks(&request("d1", 5)).await.unwrap_err();
    assert_eq!((err.status(), err.server_message().as_deref()), (Some(403), Some("daemon_id does not match token")));
    let tasks = world.mock.claim_tasks(&request("d1", 5)).await.unwrap();
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.record.id.clone()).collect();
    assert_eq!(ids, vec![high, low]);
    assert!(tasks.iter().all(|t| t.auth_token.is_some()));
}

#[tokio::test]
async fn recover_orphans_fails_in_flight_tasks_and_retries_them() {
    let world = head_world().await;
    let running = world.dispatched("issue-1").await;
    world.mock.start_task(&running).await.unwrap();
    let dispatched = world.dispatched("issue-2").await;
    world.enqueue("issue-3", 0);
    let recovery = world.mock.recover_orphans(&world.runtime_id).await.unwrap();
    assert_eq!((recovery.orphaned, recovery.retried), (2, 2));
    for id in [&running, &dispatched] {
        let row = world.mock.task(id).unwrap();
        assert_eq!(row.error.as_deref(), Some("daemon restarted while task was in flight"));
        assert_eq!(row.failure_reason, FailureReason::RuntimeRecovery);
    }
}

#[tokio::test]
async fn task_usage_cancel_ack_session_pin_and_messages_since() {
    let world = head_world().await;
    let task = world.dispatched("issue-1").await;
    let usage = |provider: &str, input_tokens| TaskUsage {
        provider: provider.into(),
        model: "opus".into(),
        input_tokens,
        ..TaskUsage::default()
    };
    world.mock.report_task_usage(&task, [usage("Claude", 5)]).await.unwrap();
    world.mock.report_task_usage(&task, [usage("", 7)]).await.unwrap();
    assert_eq!(world.mock.task_usage(&task), vec![usage("claude", 7)], "upserted; empty provider is the runtime's");

    let err = world.mock.pin_session(&task, &SessionPin::default()).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("session_id or work_dir required"));
    world.mock.pin_session(&task, &SessionPin { session_id: "s-1".into(), work_dir: "/w".into() }).await.unwrap();

    let messages: Vec<TaskMessage> = (1..=4).map(|seq| TaskMessage::text(seq, format!("m{seq}"))).collect();
    world.mock.report_task_messages(&task, messages.as_slice()).await.unwrap();
    let since: Vec<i64> =
        world.mock.list_task_messages_since(&task, 2).await.unwrap().iter().map(|m| m.message.seq).collect();
    assert_eq!(since, vec![3, 4]);

    world.mock.cancel(&task).unwrap();
    world.mock.ack_cancel(&task, &CancelAck { branch_name: "b".into(), ..CancelAck::default() }).await.unwrap();
    let err = world.mock.ack_cancel(&"00000000-0000-4000-8000-0000000000ff".into(), &CancelAck::default()).await;
    assert_eq!(err.unwrap_err().server_message().as_deref(), Some("task not found"));
}

#[tokio::test]
async fn workspaces_repos_and_gc_checks_answer_for_accessible_objects() {
    let world = head_world().await;
    world.mock.add_workspace(WorkspaceSeed { name: "Other".into(), ..Default::default() }).unwrap();
    world.mock.add_token(&MockToken::daemon("mdt_d1", world.workspace_id.clone(), "d1".into())).unwrap();
    let mine = world.mock.with_token("mdt_d1").list_daemon_workspaces().await.unwrap();
    assert_eq!(mine.iter().map(|w| w.id.clone()).collect::<Vec<_>>(), vec![world.workspace_id.clone()]);
    assert_eq!(world.mock.list_daemon_workspaces().await.unwrap().len(), 2, "the configured token sees every one");
    let repos = world.mock.get_workspace_repos(&world.workspace_id).await.unwrap();
    assert_eq!(repos.repos.len(), 1);
    assert_eq!(repos.repos_version.len(), 64);
    let err = world.mock.get_workspace_repos(&"not-a-uuid".into()).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("not found"));

    let task = world.dispatched("00000000-0000-4000-8000-00000000abcd").await;
    let check = world.mock.get_task_gc_check(&task).await.unwrap();
    assert_eq!((check.status, check.completed_at.as_str()), (TaskStatus::Dispatched, "0001-01-01T00:00:00Z"));
    let err = world.mock.get_chat_session_gc_check("00000000-0000-4000-8000-000000000001").await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("chat session not found"));
}

#[tokio::test]
async fn the_3c93ebaf1c_fake_has_none_of_the_head_routes() {
    let world = world_with(MockDaemon::new()).await;
    let task = world.dispatched("issue-1").await;
    let err = world.mock.extend_prepare_lease(&world.runtime_id, &task).await.unwrap_err();
    assert!(err.is_route_not_found(), "{err}");
    let request =
        BatchClaimRequest { daemon_id: "d1".into(), runtime_ids: vec![world.runtime_id.clone()], max_tasks: 1 };
    assert!(world.mock.claim_tasks(&request).await.unwrap_err().is_route_not_found());
    // A HEAD fail body is a plain fail there: no retry.
    world.mock.fail_task_with(&task, &failure("t", FailureReason::Timeout)).await.unwrap();
    assert!(world.mock.claim_task(&world.runtime_id).await.unwrap().is_none());
}

#[tokio::test]
async fn a_task_token_opens_the_user_api_until_its_task_ends() {
    let world = head_world().await;
    world.mock.add_workspace(WorkspaceSeed { name: "Other".into(), ..Default::default() }).unwrap();
    world.enqueue("issue-1", 1);
    let task = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    let token = task.auth_token.unwrap().expose().to_owned();
    let agent = world.mock.with_token(token.as_str());
    // It acts as the runtime's owner, the fake's user: a member of every workspace.
    assert_eq!(agent.list_workspaces().await.unwrap().len(), 2);
    // Not a daemon credential.
    let err = agent.send_heartbeat(&world.runtime_id).await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("invalid token"));
    world.mock.start_task(&task.record.id).await.unwrap();
    world.mock.complete_task(&task.record.id, &TaskCompletion::with_output("done")).await.unwrap();
    let err = agent.list_workspaces().await.unwrap_err();
    assert_eq!((err.status(), err.server_message().as_deref()), (Some(401), Some("invalid token")));
    // A daemon token is no user credential; a personal token of no workspace lists none.
    world.mock.add_token(&MockToken::daemon("mdt_d1", world.workspace_id.clone(), "d1".into())).unwrap();
    assert_eq!(world.mock.with_token("mdt_d1").list_workspaces().await.unwrap_err().status(), Some(401));
    world.mock.add_token(&MockToken::member_of("mul_nobody", [])).unwrap();
    assert!(world.mock.with_token("mul_nobody").list_workspaces().await.unwrap().is_empty());
}

/// Over HTTP: the daemon workspace list's ETag and 304, the WebSocket route
/// without an upgrade, plugin routes while plugins are off, CORS at HEAD.
#[tokio::test]
async fn over_http_etags_websocket_plugins_and_cors_follow_head() {
    let world = head_world().await;
    let server = serve(world.mock.clone()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |method: &str, path: &str, headers: &[(&str, &str)]| {
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", server.base_url()));
        builder = builder.header("authorization", format!("Bearer {PAT}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(Bytes::new())).unwrap();
        let client = client.clone();
        async move {
            let (parts, body) = client.request(request).await.unwrap().into_parts();
            (parts, body.collect().await.unwrap().to_bytes())
        }
    };
    let (parts, body) = send("GET", "/api/daemon/workspaces", &[]).await;
    assert_eq!(parts.status, 200);
    let listed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed, json!([{ "id": world.workspace_id, "name": "Team" }]));
    let etag = parts.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\"") && etag.len() == 64 + 4, "{etag}");
    assert_eq!(parts.headers["cache-control"], "private, no-cache");
    let (parts, body) = send("GET", "/api/daemon/workspaces", &[("if-none-match", &etag)]).await;
    assert_eq!((parts.status.as_u16(), body.len()), (304, 0));
    assert_eq!(parts.headers["etag"].to_str().unwrap(), etag);

    let (parts, body) = send("GET", "/api/daemon/ws", &[]).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (400, &b"Bad Request\n"[..]));
    assert_eq!(parts.headers["sec-websocket-version"], "13");
    let (parts, body) = send("POST", "/api/daemon/tasks/t/plugin-hooks", &[]).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (503, &b"{\"error\":\"Plugin management is not enabled\"}\n"[..]));

    let origin = ("origin", multica_mock::DEFAULT_FRONTEND_URL);
    let (parts, _) = send("GET", "/api/daemon/workspaces", &[origin]).await;
    assert_eq!(parts.headers["access-control-expose-headers"], "X-Comments-Truncated, X-Timeline-Truncated");
    let preflight = [
        origin,
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "x-client-capabilities"),
    ];
    let (parts, _) = send("OPTIONS", "/api/daemon/heartbeat", &preflight).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.headers["access-control-allow-headers"], "X-Client-Capabilities");
    server.shutdown().await;
}

#[tokio::test]
async fn a_claim_resumes_the_newest_session_not_poisoned_and_only_on_its_runtime() {
    let world = head_world().await;
    let first = world.dispatched("issue-1").await;
    world.mock.start_task(&first).await.unwrap();
    let done =
        TaskCompletion { output: "ok".into(), session_id: "s-1".into(), work_dir: "/w/1".into(), ..Default::default() };
    world.mock.complete_task(&first, &done).await.unwrap();
    // A context-exhausted run's session is never offered.
    let second = world.dispatched("issue-1").await;
    world.mock.start_task(&second).await.unwrap();
    let overflow = TaskCompletion {
        output: "Prompt is too long: this conversation cannot be compacted any further.".into(),
        session_id: "s-2".into(),
        ..Default::default()
    };
    world.mock.complete_task(&second, &overflow).await.unwrap();
    let row = world.mock.task(&second).unwrap();
    assert_eq!((row.status, row.failure_reason), (TaskStatus::Failed, FailureReason::ContextOverflow));
    world.enqueue("issue-1", 0);
    let third = world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap();
    assert_eq!((third.prior_session_id.as_str(), third.prior_work_dir.as_str()), ("s-1", "/w/1"));
    // Another runtime of the same agent resumes nothing.
    let codex = world.mock.register(&register_request(&world.workspace_id, "d1", "codex")).await.unwrap().runtimes[0]
        .id
        .clone();
    world.mock.start_task(&third.record.id).await.unwrap();
    world.mock.complete_task(&third.record.id, &TaskCompletion::with_output("done")).await.unwrap();
    let seed = multica_mock::TaskSeed {
        id: None,
        runtime_id: codex.clone(),
        agent_id: world.agent_id.clone(),
        issue_id: "issue-1".into(),
        priority: 0,
    };
    world.mock.add_task(seed).unwrap();
    let elsewhere = world.mock.claim_task(&codex).await.unwrap().unwrap();
    assert_eq!(elsewhere.prior_session_id, "");
}

#[tokio::test]
async fn tasks_of_a_runtime_gone_past_the_reconnect_grace_fail_and_are_retried_deferred() {
    let world = head_world().await;
    let task = world.dispatched("issue-1").await;
    world.mock.wait_local_directory(&task, &LocalDirectoryWait::default()).await.unwrap();
    // Silent: offline after 150 s, the waiting task untouched for 3 h.
    world.mock.advance_clock(Duration::from_secs(3 * 3600));
    assert_eq!(world.mock.task_status(&task), Some(TaskStatus::WaitingLocalDirectory));
    world.mock.advance_clock(Duration::from_secs(60));
    let row = world.mock.task(&task).unwrap();
    assert_eq!((row.status, row.failure_reason), (TaskStatus::Failed, FailureReason::RuntimeOffline));
    assert_eq!(row.error.as_deref(), Some("runtime went offline"));
    let retry = || {
        let tasks = world.mock.snapshot().tasks.into_iter().map(|t| t.record);
        tasks.into_iter().find(|t| t.parent_task_id.as_ref() == Some(&task)).unwrap()
    };
    assert_eq!(retry().status, TaskStatus::Deferred);
    // The runtime does not come back within the grace: the retry fails too.
    world.mock.advance_clock(Duration::from_secs(3 * 3600 + 60));
    assert_eq!((retry().status, retry().failure_reason), (TaskStatus::Failed, FailureReason::RuntimeReconnectTimeout));
    // A year later (the jump skips idle ticks) the runtime, offline for more
    // than 7 days with nothing unfinished, is deleted with its tasks.
    world.mock.advance_clock(Duration::from_secs(365 * 24 * 3600));
    assert!(world.mock.runtime_by_id(&world.runtime_id).is_none());
    assert_eq!(world.mock.snapshot().tasks.len(), 0);
}

#[tokio::test]
async fn the_sdk_detects_the_head_fake_as_head_and_the_default_fake_as_3c93ebaf1c() {
    let world = head_world().await;
    assert_eq!(DaemonApiExt::server_version(&world.mock).await.unwrap(), ServerVersion::Head);
    // Even without a credential: only HEAD authenticates /api/daemon/*.
    assert_eq!(DaemonApiExt::server_version(&world.mock.without_token()).await.unwrap(), ServerVersion::Head);
    let old = MockDaemon::new();
    assert_eq!(DaemonApiExt::server_version(&old).await.unwrap(), ServerVersion::V3c93ebaf1c);
}

/// Login JWTs as the web UI sends them: signed with the server's secret,
/// the user in `sub`; disabled accounts are refused whatever the credential.
#[tokio::test]
async fn login_jwts_authenticate_users_and_disabled_accounts_are_refused() {
    let mock = MockDaemon::builder()
        .server_version(ServerVersion::Head)
        .token(PAT)
        .seed(Seed { user: Some(multica_mock::UserSeed { id: USER.into(), name: "tester".into() }), ..Seed::default() })
        .build()
        .unwrap();
    let world = world_with(mock).await;
    let runtime = &world.runtime_id;
    let beat = |token: String| {
        let mock = world.mock.with_token(token);
        let runtime = runtime.clone();
        async move { mock.send_heartbeat(&runtime).await.map(|_| ()).map_err(|e| (e.status(), e.server_message())) }
    };
    assert_eq!(beat(world.mock.login_jwt(USER)).await, Ok(()));
    // Another user reaches the workspaces of its personal tokens only.
    let stranger = "7b4b7d2e-43a4-4c1c-9a57-3b1f63a1c0de";
    assert_eq!(beat(world.mock.login_jwt(stranger)).await, Err((Some(404), Some("not found".into()))));
    world
        .mock
        .add_token(&MockToken::member_of("mul_stranger", [world.workspace_id.clone()]).of_user(stranger))
        .unwrap();
    assert_eq!(beat(world.mock.login_jwt(stranger)).await, Ok(()));
    // Signed with another secret, or expired on the fake clock: invalid.
    let other = MockDaemon::builder().jwt_secret("not the server's").build().unwrap().login_jwt(USER);
    assert_eq!(beat(other).await, Err((Some(401), Some("invalid token".into()))));
    let expiring = world.mock.login_jwt(USER);
    world.mock.advance_clock(Duration::from_secs(30 * 24 * 3600));
    let expired = world.mock.with_token(expiring).list_daemon_workspaces().await.unwrap_err();
    assert_eq!((expired.status(), expired.server_message().as_deref()), (Some(401), Some("invalid token")));
    let registered = world.mock.register(&register_request(&world.workspace_id, "d1", "claude")).await.unwrap();
    let runtime = &registered.runtimes[0].id;
    let beat = |token: String| {
        let mock = world.mock.with_token(token);
        let runtime = runtime.clone();
        async move { mock.send_heartbeat(&runtime).await.map(|_| ()).map_err(|e| (e.status(), e.server_message())) }
    };
    // Without `sub`: HS256 `{"name":"x"}` signed with the development secret.
    let no_sub = "eyJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoieCJ9.r_Vp0kfwiDUlAtLuoung0ruPube0CkmwDVjEPklgCxc";
    assert_eq!(beat(no_sub.into()).await, Err((Some(401), Some("invalid claims".into()))));
    // A cloud node PAT without a cloud fleet.
    assert_eq!(beat("mcn_0123456789".into()).await, Err((Some(401), Some("invalid token".into()))));
    // The server's disabled accounts, by ID.
    let disabled = "514492f7-b30f-4147-bd33-c0e8ce5d6d4f";
    assert_eq!(beat(world.mock.login_jwt(disabled)).await, Err((Some(403), Some("account disabled".into()))));
    world.mock.add_token(&MockToken::personal("mul_disabled").of_user(disabled)).unwrap();
    assert_eq!(beat("mul_disabled".into()).await, Err((Some(403), Some("account disabled".into()))));
}

/// Custom runtime profiles: a daemon registers instances of them, reports
/// those it could not start, and lists the enabled ones.
#[tokio::test]
async fn runtime_profiles_are_registered_by_profile_and_listed_while_enabled() {
    let world = head_world().await;
    let profile = world
        .mock
        .add_runtime_profile(&multica_mock::RuntimeProfileSeed {
            workspace_id: world.workspace_id.clone(),
            display_name: "Claude probe".into(),
            protocol_family: "claude".into(),
            command_name: "claude-probe".into(),
            ..Default::default()
        })
        .unwrap();
    let profile_id = profile["id"].as_str().unwrap().to_owned();
    let mut request = register_request(&world.workspace_id, "d1", "claude");
    request.runtimes[0].profile_id = Some(profile_id.to_uppercase().into());
    let registered = world.mock.register(&request).await.unwrap();
    let custom = &registered.runtimes[0];
    assert_ne!(custom.id, world.runtime_id, "a profile's runtime is not the built-in one of the same provider");
    assert_eq!(
        (custom.provider.as_str(), custom.profile_id.as_ref().map(|p| p.as_str())),
        ("claude", Some(profile_id.as_str()))
    );
    assert_eq!(world.mock.register(&request).await.unwrap().runtimes[0].id, custom.id, "upserted by profile");

    let listed = world.mock.list_runtime_profiles(&world.workspace_id).await.unwrap();
    assert_eq!(listed.runtime_profiles.len(), 1);
    assert_eq!(listed.runtime_profiles[0]["command_name"], "claude-probe");

    let unknown = "7b4b7d2e-43a4-4c1c-9a57-3b1f63a1c0de";
    request.runtimes[0].profile_id = Some(unknown.into());
    let err = world.mock.register(&request).await.unwrap_err();
    assert_eq!(err.server_message(), Some(format!("unknown runtime profile: {unknown}")));
    request.runtimes[0].profile_id = Some("{nope}".into());
    assert_eq!(
        world.mock.register(&request).await.unwrap_err().server_message().as_deref(),
        Some("invalid profile_id")
    );

    // A profile the daemon could not start: an offline runtime of it.
    let mut failed = register_request(&world.workspace_id, "d2", "codex");
    failed.failed_profiles = vec![multica_api::FailedProfile {
        profile_id: profile_id.clone().into(),
        reason: "claude-probe not on PATH".into(),
        ..Default::default()
    }];
    world.mock.register(&failed).await.unwrap();
    let snapshot = world.mock.snapshot();
    let offline = snapshot
        .runtimes
        .iter()
        .find(|r| r.runtime.daemon_id.as_ref().map(|d| d.as_str()) == Some("d2") && r.runtime.provider == "claude")
        .unwrap();
    assert_eq!(offline.runtime.status, multica_api::RuntimeStatus::Offline);
    assert_eq!(offline.runtime.name, "Claude probe (host)");
}

/// A daemon that changed its ID names the old ones: their runtimes of the
/// same provider are merged into the new one, tasks included.
#[tokio::test]
async fn legacy_daemon_ids_merge_older_runtimes_into_the_new_one() {
    let world = head_world().await;
    let task = world.enqueue("issue-legacy", 1);
    let mut request = register_request(&world.workspace_id, "uuid-daemon", "claude");
    request.legacy_daemon_ids = vec!["D1".into()];
    let registered = world.mock.register(&request).await.unwrap();
    let new_id = registered.runtimes[0].id.clone();
    assert_ne!(new_id, world.runtime_id);
    assert!(world.mock.runtime_by_id(&world.runtime_id).is_none(), "the old runtime is gone");
    assert_eq!(world.mock.task(&task).unwrap().runtime_id, new_id, "its task moved");
    world.mock.send_heartbeat(&new_id).await.unwrap();
    assert_eq!(world.mock.claim_task(&new_id).await.unwrap().unwrap().record.id, task);
}

/// The sweeper deletes a runtime offline for 7 days with nothing unfinished.
#[tokio::test]
async fn runtimes_offline_for_seven_days_are_deleted() {
    let world = head_world().await;
    let busy = world.mock.register(&register_request(&world.workspace_id, "d9", "codex")).await.unwrap().runtimes[0]
        .id
        .clone();
    let queued = world
        .mock
        .add_task(multica_mock::TaskSeed {
            id: None,
            runtime_id: busy.clone(),
            agent_id: world.agent_id.clone(),
            issue_id: "issue-busy".into(),
            priority: 0,
        })
        .unwrap();
    world.mock.deregister(&[world.runtime_id.clone(), busy.clone()]).await.unwrap();
    world.mock.advance_clock(Duration::from_secs(7 * 24 * 3600));
    assert!(world.mock.runtime_by_id(&world.runtime_id).is_some(), "not more than 7 days yet");
    world.mock.advance_clock(Duration::from_secs(30));
    assert!(world.mock.runtime_by_id(&world.runtime_id).is_none());
    // Its queued task expired after 2 h (finished): the runtime goes, and
    // its tasks with it.
    assert!(world.mock.runtime_by_id(&busy).is_none());
    assert!(world.mock.task(&queued).is_none());
}

/// HEAD's user middleware reads only `Bearer <token>`: anything else is no
/// token (`missing authorization`), a daemon token is no user credential.
#[tokio::test]
async fn the_user_api_middleware_answers_as_heads() {
    let world = head_world().await;
    let list = |token: Option<&str>| {
        let mock = match token {
            Some(token) => world.mock.with_token(token),
            None => world.mock.without_token(),
        };
        async move { mock.list_workspaces().await.map(|_| ()).map_err(|e| (e.status(), e.server_message())) }
    };
    let missing = Err((Some(401), Some("missing authorization".to_owned())));
    assert_eq!(list(None).await, missing);
    world.mock.add_token(&MockToken::daemon("mdt_user_api", world.workspace_id.clone(), "d1".into())).unwrap();
    assert_eq!(list(Some("mdt_user_api")).await, Err((Some(401), Some("invalid token".to_owned()))));
    assert_eq!(list(Some("mcn_cloud")).await, Err((Some(401), Some("invalid token".to_owned()))));
    assert_eq!(list(Some(&world.mock.login_jwt("00000000-0000-4000-a000-000000000001"))).await, Ok(()));
    assert_eq!(list(Some(PAT)).await, Ok(()));
}

/// The batch gc check as HEAD's handler reads it: its workspace parsed
/// first, a daemon token's workspace compared as sent (a member's parsed), at most 500 issues,
/// each item naming its issue as sent.
#[tokio::test]
async fn the_batch_gc_check_reads_its_ids_as_heads_handler() {
    let world = head_world().await;
    let issue = "0b5a3c4e-8a6f-4f0a-9d4e-2b7c1d9e8f10";
    world.enqueue(issue, 1);
    let message = |result: Result<Vec<multica_api::IssueGcStatus>, multica_api::Error>| {
        result.map(|items| items.len()).map_err(|e| (e.status(), e.server_message().unwrap_or_default()))
    };
    let bad = WorkspaceId::new("nope");
    assert_eq!(message(world.mock.check_issues_gc(&bad, &[]).await), Err((Some(400), "invalid workspace_id".into())));
    let many: Vec<multica_api::IssueId> = (0..501).map(|_| issue.into()).collect();
    let too_many = world.mock.check_issues_gc(&world.workspace_id, &many).await;
    assert_eq!(message(too_many), Err((Some(400), "too many issue_ids".into())));
    let items = world.mock.check_issues_gc(&world.workspace_id, &[issue.to_uppercase().into()]).await.unwrap();
    assert_eq!((items[0].id.as_str(), items[0].found), (issue.to_uppercase().as_str(), true));

    world.mock.add_token(&MockToken::daemon("mdt_gc", world.workspace_id.clone(), "d1".into())).unwrap();
    let daemon = world.mock.with_token("mdt_gc");
    // The same workspace written without hyphens: the token's is compared as text.
    let unhyphenated = WorkspaceId::new(world.workspace_id.as_str().replace('-', ""));
    assert_eq!(message(daemon.check_issues_gc(&unhyphenated, &[]).await), Err((Some(404), "not found".into())));
    assert_eq!(message(world.mock.check_issues_gc(&unhyphenated, &[]).await), Ok(0), "a member's is parsed");
    assert_eq!(message(daemon.check_issues_gc(&world.workspace_id, &[]).await), Ok(0));
}

/// A runtime only a daemon token registered has no owner to mint a task's
/// token for: its claim cancels the task and answers 500.
#[tokio::test]
async fn a_runtime_without_an_owner_cannot_hand_out_tasks() {
    let world = head_world().await;
    world.mock.add_token(&MockToken::daemon("mdt_owner", world.workspace_id.clone(), "fresh".into())).unwrap();
    let daemon = world.mock.with_token("mdt_owner");
    let runtime =
        daemon.register(&register_request(&world.workspace_id, "fresh", "codex")).await.unwrap().runtimes[0].id.clone();
    let task = world
        .mock
        .add_task(multica_mock::TaskSeed {
            id: None,
            runtime_id: runtime.clone(),
            agent_id: world.agent_id.clone(),
            issue_id: "issue-unowned".into(),
            priority: 1,
        })
        .unwrap();
    let err = daemon.claim_task(&runtime).await.unwrap_err();
    assert_eq!(
        (err.status(), err.server_message().as_deref()),
        (Some(500), Some("runtime owner required to mint task token"))
    );
    assert_eq!(world.mock.task_status(&task), Some(TaskStatus::Cancelled));
    // A user's registration makes it the owner.
    world.mock.register(&register_request(&world.workspace_id, "fresh", "codex")).await.unwrap();
    let again = world.enqueue("issue-owned", 1);
    assert_eq!(world.mock.claim_task(&world.runtime_id).await.unwrap().unwrap().record.id, again);
}
