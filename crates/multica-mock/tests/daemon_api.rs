//! The server's rules (`docs/protocol-3c93ebaf1c.md`) through the `DaemonApi` trait.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_same_error, register_request, world, world_with};
use multica_api::{
    request, DaemonApiExt, Error, MessageKind, Method, PairingRequest, PairingStatus, PingResult, PingStatus,
    RuntimeId, RuntimeSpec, RuntimeStatus, TaskCompletion, TaskId, TaskMessage, TaskProgress, TaskStatus, UsageEntry,
    WorkspaceId,
};
use multica_mock::MockDaemon;

/// What the hyper client builds from a handler's `{"error": message}` answer.
fn client_error<T>(request: multica_api::Result<request::Request<T>>, status: u16, message: &str) -> Error {
    let mut body = multica_api::error_body(message);
    body.push(b'\n');
    match request.unwrap().decode_response(status, &body) {
        Err(err) => err,
        Ok(_) => panic!("a {status} answer must be an error"),
    }
}

#[tokio::test]
async fn register_rejects_missing_fields_like_the_server() {
    let w = world().await;
    let mut req = register_request(&w.workspace_id, "d1", "claude");
    req.daemon_id = "".into();
    let err = w.mock.register(&req).await.unwrap_err();
    assert_same_error(&err, &client_error(request::register(&req), 400, "daemon_id is required"));

    let mut req = register_request(&WorkspaceId::new(""), "d1", "claude");
    let err = w.mock.register(&req).await.unwrap_err();
    assert_same_error(&err, &client_error(request::register(&req), 400, "workspace_id is required"));

    req.workspace_id = w.workspace_id.clone();
    req.runtimes.clear();
    let err = w.mock.register(&req).await.unwrap_err();
    assert_same_error(&err, &client_error(request::register(&req), 400, "at least one runtime is required"));

    let req = register_request(&"nope".into(), "d1", "claude");
    let err = w.mock.register(&req).await.unwrap_err();
    assert!(err.is_workspace_not_found());
    assert_same_error(&err, &client_error(request::register(&req), 404, "workspace not found"));
}

#[tokio::test]
async fn register_names_runtimes_and_upserts_by_workspace_daemon_provider() {
    let w = world().await;
    let mut req = register_request(&w.workspace_id, "d1", "");
    req.runtimes.push(RuntimeSpec { name: "Mine".into(), provider: "codex".into(), ..Default::default() });
    req.runtimes.push(RuntimeSpec { provider: "gemini".into(), status: RuntimeStatus::Offline, ..Default::default() });
    let answer = w.mock.register(&req).await.unwrap();
    assert_eq!(answer.repos, vec![common::repo()]);
    let [unknown, codex, gemini] = &answer.runtimes[..] else { panic!("three runtimes") };
    assert_eq!((unknown.provider.as_str(), unknown.name.as_str()), ("unknown", "unknown (host)"));
    assert_eq!((codex.provider.as_str(), codex.name.as_str()), ("codex", "Mine"));
    assert_eq!(unknown.status, RuntimeStatus::Online);
    assert_eq!(gemini.status, RuntimeStatus::Offline);
    assert_eq!(codex.runtime_mode, "local");
    assert_eq!(codex.daemon_id, Some("d1".into()));
    assert_eq!(codex.workspace_id, w.workspace_id);

    // Without a device name the name is the bare provider.
    let mut req = register_request(&w.workspace_id, "d2", "claude");
    req.device_name.clear();
    let d2 = w.mock.register(&req).await.unwrap().runtimes.remove(0);
    assert_eq!(d2.name, "claude");
    assert_ne!(d2.id, w.runtime_id, "another daemon gets its own runtime");

    // Same workspace, daemon and provider: the same runtime, updated.
    let again = w.mock.register(&register_request(&w.workspace_id, "d1", "claude")).await.unwrap();
    assert_eq!(again.runtimes[0].id, w.runtime_id);
}

#[tokio::test]
async fn deregister_marks_offline_skips_unknown_and_needs_ids() {
    let w = world().await;
    let err = w.mock.deregister(&[]).await.unwrap_err();
    assert_same_error(&err, &client_error(request::deregister(&[]), 400, "runtime_ids is required"));
    w.mock.deregister(&[w.runtime_id.clone(), "unknown".into()]).await.unwrap();
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status, RuntimeStatus::Offline);
    // A heartbeat brings it back online.
    w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status, RuntimeStatus::Online);
    assert_eq!(w.mock.heartbeats(&w.runtime_id), 1);
}

#[tokio::test]
async fn heartbeat_errors_and_pings_handed_out_once_oldest_first() {
    let w = world().await;
    let empty = RuntimeId::new("");
    let err = w.mock.send_heartbeat(&empty).await.unwrap_err();
    assert_same_error(&err, &client_error(request::send_heartbeat(&empty), 400, "runtime_id is required"));
    let ghost = RuntimeId::new("ghost");
    let err = w.mock.send_heartbeat(&ghost).await.unwrap_err();
    assert!(err.is_runtime_not_found());
    assert_same_error(&err, &client_error(request::send_heartbeat(&ghost), 500, "heartbeat failed"));

    let first = w.mock.request_ping(&w.runtime_id).unwrap();
    let second = w.mock.request_ping(&w.runtime_id).unwrap();
    let beat = w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    assert_eq!(beat.status, "ok");
    assert_eq!(beat.pending_ping.map(|p| p.id), Some(first.clone()));
    assert_eq!(w.mock.send_heartbeat(&w.runtime_id).await.unwrap().pending_ping.map(|p| p.id), Some(second));
    assert_eq!(w.mock.send_heartbeat(&w.runtime_id).await.unwrap().pending_ping, None);

    let result =
        PingResult { status: PingStatus::Completed, output: "pong".into(), duration_ms: 12, ..Default::default() };
    w.mock.report_ping_result(&w.runtime_id, &first, &result).await.unwrap();
    let snapshot = w.mock.snapshot();
    assert_eq!(snapshot.pings[0].status, "completed");
    assert_eq!(snapshot.pings[0].result.as_ref(), Some(&result));
    assert_eq!(snapshot.pings[1].status, "sent");
    // Unknown runtime or ping: still ok.
    w.mock.report_ping_result(&"x".into(), &"y".into(), &result).await.unwrap();
}

#[tokio::test]
async fn claim_orders_by_priority_then_creation_and_fills_the_task() {
    let w = world().await;
    let low = w.enqueue("i1", 1);
    let high_a = w.enqueue("i2", 5);
    let high_b = w.enqueue("i3", 5);
    let mut order = Vec::new();
    while let Some(task) = w.mock.claim_task(&w.runtime_id).await.unwrap() {
        assert_eq!(task.record.status, TaskStatus::Dispatched);
        assert!(task.record.dispatched_at.is_some());
        assert_eq!(task.record.workspace_id, w.workspace_id);
        assert_eq!(task.repos, vec![common::repo()]);
        let agent = task.agent.unwrap();
        assert_eq!(
            (agent.id, agent.name.as_str(), agent.skills),
            (w.agent_id.clone(), "Builder", vec![common::skill()])
        );
        order.push(task.record.id);
    }
    assert_eq!(order, vec![high_a, high_b, low]);
    assert_eq!(w.mock.claim_task(&"unknown".into()).await.unwrap(), None);
}

#[tokio::test]
async fn claim_resumes_from_the_last_completed_task_of_the_same_agent_and_issue() {
    let w = world().await;
    for (session, dir) in [("s1", "/w1"), ("s2", "/w2")] {
        let id = w.dispatched("issue-1").await;
        w.mock.start_task(&id).await.unwrap();
        let completion = TaskCompletion {
            output: "ok".into(),
            session_id: session.into(),
            work_dir: dir.into(),
            ..Default::default()
        };
        w.mock.complete_task(&id, &completion).await.unwrap();
    }
    w.enqueue("issue-1", 0);
    let task = w.mock.claim_task(&w.runtime_id).await.unwrap().unwrap();
    assert_eq!((task.prior_session_id.as_str(), task.prior_work_dir.as_str()), ("s2", "/w2"));
    w.enqueue("issue-2", 0);
    let other = w.mock.claim_task(&w.runtime_id).await.unwrap().unwrap();
    assert_eq!((other.prior_session_id.as_str(), other.prior_work_dir.as_str()), ("", ""));
}

#[tokio::test]
async fn status_machine_answers_the_servers_400s() {
    let w = world().await;
    let queued = w.enqueue("i", 0);
    let err = w.mock.start_task(&queued).await.unwrap_err();
    assert_same_error(&err, &client_error(request::start_task(&queued), 400, "start task: no rows in result set"));
    let done = TaskCompletion::with_output("x");
    let err = w.mock.complete_task(&queued, &done).await.unwrap_err();
    let expected = client_error(request::complete_task(&queued, &done), 400, "complete task: no rows in result set");
    assert_same_error(&err, &expected);
    let err = w.mock.fail_task(&queued, "e").await.unwrap_err();
    assert_same_error(&err, &client_error(request::fail_task(&queued, "e"), 400, "fail task: no rows in result set"));
    // Unknown IDs match no row either.
    let ghost = TaskId::new("ghost");
    assert_eq!(w.mock.start_task(&ghost).await.unwrap_err().status(), Some(400));

    let id = w.mock.claim_task(&w.runtime_id).await.unwrap().unwrap().record.id;
    assert_eq!(w.mock.complete_task(&id, &done).await.unwrap_err().status(), Some(400), "complete needs running");
    w.mock.start_task(&id).await.unwrap();
    assert_eq!(w.mock.get_task_status(&id).await.unwrap(), TaskStatus::Running);
    assert_eq!(w.mock.start_task(&id).await.unwrap_err().status(), Some(400), "start needs dispatched");
    w.mock.complete_task(&id, &done).await.unwrap();
    let record = w.mock.task(&id).unwrap();
    assert_eq!(record.status, TaskStatus::Completed);
    // The server stores every key of its result, empty when not sent (recorded: E54).
    assert_eq!(record.result, Some(serde_json::json!({"output": "x", "pr_url": "", "session_id": "", "work_dir": ""})));
    assert!(record.started_at.is_some() && record.completed_at.is_some());
    assert_eq!(w.mock.fail_task(&id, "late").await.unwrap_err().status(), Some(400));

    // Fail works from dispatched and from running.
    let dispatched = w.dispatched("j").await;
    w.mock.fail_task(&dispatched, "boom").await.unwrap();
    assert_eq!(w.mock.task(&dispatched).unwrap().error.as_deref(), Some("boom"));
    let running = w.dispatched("k").await;
    w.mock.start_task(&running).await.unwrap();
    w.mock.fail_task(&running, "boom").await.unwrap();
    assert_eq!(w.mock.get_task_status(&running).await.unwrap(), TaskStatus::Failed);
}

#[tokio::test]
async fn cancelled_tasks_leave_the_queue_and_refuse_transitions() {
    let w = world().await;
    let queued = w.enqueue("a", 9);
    let next = w.enqueue("b", 1);
    w.mock.cancel(&queued).unwrap();
    assert_eq!(w.mock.get_task_status(&queued).await.unwrap(), TaskStatus::Cancelled);
    assert_eq!(w.mock.claim_task(&w.runtime_id).await.unwrap().unwrap().record.id, next);
    w.mock.cancel(&next).unwrap();
    assert_eq!(w.mock.get_task_status(&next).await.unwrap(), TaskStatus::Cancelled);
    assert_eq!(w.mock.start_task(&next).await.unwrap_err().status(), Some(400));
    assert_eq!(w.mock.fail_task(&next, "x").await.unwrap_err().status(), Some(400));
    assert!(w.mock.cancel(&"ghost".into()).is_err());
}

#[tokio::test]
async fn pending_lists_queued_and_dispatched_by_priority() {
    let w = world().await;
    let a = w.enqueue("a", 1);
    let b = w.enqueue("b", 3);
    let c = w.enqueue("c", 2);
    let claimed = w.mock.claim_task(&w.runtime_id).await.unwrap().unwrap().record.id;
    assert_eq!(claimed, b);
    let d = w.enqueue("d", 0);
    w.mock.cancel(&d).unwrap();
    let pending: Vec<_> = w.mock.list_pending_tasks(&w.runtime_id).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(pending, vec![b.clone(), c, a]);
    w.mock.start_task(&b).await.unwrap();
    assert_eq!(w.mock.list_pending_tasks(&w.runtime_id).await.unwrap().len(), 2, "running is not pending");
    assert!(w.mock.list_pending_tasks(&"ghost".into()).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_task_status_and_messages_are_404() {
    let w = world().await;
    let ghost = TaskId::new("ghost");
    let err = w.mock.get_task_status(&ghost).await.unwrap_err();
    assert!(err.is_task_not_found());
    assert_same_error(&err, &client_error(request::get_task_status(&ghost), 404, "task not found"));
    let batch = [TaskMessage::text(1, "hi")];
    let err = w.mock.report_task_messages(&ghost, batch.as_slice()).await.unwrap_err();
    assert_same_error(&err, &client_error(request::report_task_messages(&ghost, &batch), 404, "task not found"));
    // An empty batch is fine, whatever the task.
    w.mock.report_task_messages(&ghost, []).await.unwrap();
    assert!(w.mock.list_task_messages(&ghost).await.unwrap().is_empty());
    // Progress of an unknown task is ok too.
    w.mock.report_progress(&ghost, &TaskProgress::default()).await.unwrap();
}

#[tokio::test]
async fn messages_are_stored_per_task_and_listed_by_seq() {
    let w = world().await;
    let id = w.dispatched("i").await;
    let tool = TaskMessage { seq: 2, kind: MessageKind::ToolUse, tool: "bash".into(), ..Default::default() };
    w.mock.report_task_messages(&id, [TaskMessage::text(3, "c"), tool.clone()]).await.unwrap();
    w.mock.report_task_messages(&id, [TaskMessage::text(1, "a")]).await.unwrap();
    let listed = w.mock.list_task_messages(&id).await.unwrap();
    assert_eq!(listed.iter().map(|m| m.message.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(listed.iter().all(|m| m.task_id == id));
    assert_eq!(listed[1].message, tool);
    let other = w.dispatched("j").await;
    assert!(w.mock.list_task_messages(&other).await.unwrap().is_empty());
    w.mock.report_progress(&id, &TaskProgress { summary: "half".into(), step: 1, total: 2 }).await.unwrap();
    assert_eq!(w.mock.progress(&id).unwrap().step, 1);
}

fn usage(date: &str, model: &str, input: i64) -> UsageEntry {
    UsageEntry {
        date: date.into(),
        provider: "claude".into(),
        model: model.into(),
        input_tokens: input,
        ..Default::default()
    }
}

#[tokio::test]
async fn usage_upserts_by_runtime_date_provider_model_and_skips_bad_dates() {
    let w = world().await;
    let first = [usage("2026-03-01", "opus", 10), usage("2026-03-01", "sonnet", 5), usage("2026-02-30", "opus", 1)];
    w.mock.report_usage(&w.runtime_id, first.as_slice()).await.unwrap();
    w.mock.report_usage(&w.runtime_id, [usage("2026-03-01", "opus", 42), usage("03/01/2026", "x", 1)]).await.unwrap();
    let rows = w.mock.usage_of(&w.runtime_id);
    assert_eq!(rows, vec![usage("2026-03-01", "opus", 42), usage("2026-03-01", "sonnet", 5)]);
    w.mock.report_usage(&"ghost".into(), first.as_slice()).await.unwrap();
    assert!(w.mock.usage_of(&"ghost".into()).is_empty());
}

#[tokio::test]
async fn list_workspaces_needs_the_token_when_auth_is_on() {
    let open = world().await;
    assert_eq!(open.mock.list_workspaces().await.unwrap().len(), 1);
    assert_eq!(open.mock.without_token().list_workspaces().await.unwrap().len(), 1, "auth off");

    let w = world_with(MockDaemon::builder().token("secret").build().unwrap()).await;
    let listed = w.mock.list_workspaces().await.unwrap();
    assert_eq!((listed[0].id.clone(), listed[0].repos.clone()), (w.workspace_id.clone(), vec![common::repo()]));
    assert_eq!(w.mock.with_token("secret").list_workspaces().await.unwrap().len(), 1);
    let err = w.mock.without_token().list_workspaces().await.unwrap_err();
    assert!(err.is_unauthorized());
    let expected = request::list_workspaces()
        .unwrap()
        .decode_response(401, b"{\"error\":\"missing authorization header\"}\n")
        .unwrap_err();
    assert_same_error(&err, &expected);
    let err = w.mock.with_token("wrong").list_workspaces().await.unwrap_err();
    assert_eq!(err.server_message().as_deref(), Some("invalid token"));
    assert!(!format!("{:?}", w.mock).contains("secret"), "Debug never shows the token");
}

#[tokio::test]
async fn pairing_sessions_go_pending_approved_claimed() {
    let w = world().await;
    let request = PairingRequest {
        daemon_id: "d1".into(),
        device_name: "host".into(),
        runtime_name: "Claude".into(),
        runtime_type: "claude".into(),
        ..Default::default()
    };
    let created = w.mock.create_pairing_session(&request).await.unwrap();
    assert_eq!(created.status, PairingStatus::Pending);
    assert_eq!(
        (created.created_at.as_str(), created.expires_at.as_str()),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z")
    );
    assert_eq!(created.workspace_id, None);
    assert_eq!(w.mock.get_pairing_session(&created.token).await.unwrap(), created);
    let err = w.mock.claim_pairing_session(&created.token).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    let err = w.mock.get_pairing_session("nope").await.unwrap_err();
    assert_same_error(&err, &client_error(request::get_pairing_session("nope"), 404, "pairing session not found"));

    w.mock.approve_pairing(&created.token, &w.workspace_id).unwrap();
    let claimed = w.mock.claim_pairing_session(&created.token).await.unwrap();
    assert_eq!((claimed.status, claimed.workspace_id), (PairingStatus::Claimed, Some(w.workspace_id.clone())));
    assert!(claimed.claimed_at.is_some());

    let late = w.mock.create_pairing_session(&request).await.unwrap();
    w.mock.advance_clock(std::time::Duration::from_secs(601));
    assert_eq!(w.mock.get_pairing_session(&late.token).await.unwrap().status, PairingStatus::Expired);
    assert_eq!(w.mock.claim_pairing_session(&late.token).await.unwrap_err().status(), Some(400));
}

#[tokio::test]
async fn empty_ids_are_invalid_arguments_and_never_reach_the_server() {
    let w = world().await;
    w.mock.clear_calls();
    let empty = TaskId::new("");
    assert!(matches!(w.mock.start_task(&empty).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(w.mock.claim_task(&"".into()).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(w.mock.get_pairing_session("").await, Err(Error::InvalidArgument(_))));
    assert!(w.mock.calls().is_empty());
}

#[tokio::test]
async fn ids_are_encoded_in_error_paths_like_the_client() {
    let w = world().await;
    let odd = TaskId::new("a/../b?x");
    let err = w.mock.get_task_status(&odd).await.unwrap_err();
    assert_eq!(err.path(), Some("/api/daemon/tasks/a%2F..%2Fb%3Fx/status"));
    assert_eq!(err.method(), Some(Method::Get));
}
