//! What the server sees of every call: method, path, headers and body.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use multica_api::{
    BatchClaimRequest, Call, CancelAck, DaemonApi, DaemonApiExt, DeregisterRequest, Endpoint, FailureReason,
    HeartbeatRequest, LocalDirectoryWait, LocalSkillsResult, MessageKind, ModelListResult, PairingRequest, PingId,
    PingResult, PingStatus, RegisterRequest, RuntimeId, RuntimeSpec, SessionPin, SkillBundleRef, SkillBundleRequest,
    SkillImportResult, SkillSource, TaskCompletion, TaskFailure, TaskId, TaskMessage, TaskProgress, TaskStatus,
    TaskUsage, UpdateResult, UsageEntry,
};
use multica_hyper::{HyperClient, DEFAULT_USER_AGENT};
use support::{Recorded, Reply, TestServer};

/// A success answer shaped like the server's for each route.
fn server_answer(request: &Recorded) -> Reply {
    let path = request.path.split('?').next().unwrap();
    let Ok((endpoint, _)) = Endpoint::recognize(&request.method, path) else {
        return Reply::json(404, r#"{"error":"not found"}"#);
    };
    let body = match endpoint {
        Endpoint::Register => {
            r#"{"runtimes":[{"id":"rt-1","name":"Claude","provider":"claude","status":"online"}],"repos":[]}"#
        }
        Endpoint::SendHeartbeat => r#"{"status":"ok","pending_ping":{"id":"p-1"}}"#,
        Endpoint::ClaimTask => r#"{"task":null}"#,
        Endpoint::ListPendingTasks | Endpoint::ListTaskMessages | Endpoint::ListWorkspaces => "[]",
        Endpoint::GetTaskStatus => r#"{"status":"running"}"#,
        Endpoint::StartTask => r#"{"id":"t-1","status":"running"}"#,
        Endpoint::CompleteTask => r#"{"id":"t-1","status":"completed"}"#,
        Endpoint::FailTask => r#"{"id":"t-1","status":"failed"}"#,
        Endpoint::ExtendPrepareLease => r#"{"id":"t-1","status":"dispatched"}"#,
        Endpoint::WaitLocalDirectory => r#"{"id":"t-1","status":"waiting_local_directory"}"#,
        Endpoint::ListDaemonWorkspaces => r#"[{"id":"ws-1","name":"Diff"}]"#,
        Endpoint::PinSession => "",
        Endpoint::CreatePairingSession | Endpoint::GetPairingSession | Endpoint::ClaimPairingSession => {
            r#"{"token":"pt-1","status":"pending"}"#
        }
        _ => r#"{"status":"ok"}"#,
    };
    Reply::json(endpoint.success_status(), body)
}

async fn server_and_client() -> (TestServer, HyperClient) {
    let server = TestServer::start(server_answer).await;
    let client = HyperClient::builder(server.url()).build().unwrap();
    (server, client)
}

/// One value of every call, with awkward IDs.
fn every_call() -> Vec<Call> {
    let runtime = RuntimeId::new("rt/1");
    let task = TaskId::new("task 1?#");
    let register = RegisterRequest {
        workspace_id: "ws-1".into(),
        daemon_id: "d-1".into(),
        device_name: "laptop".into(),
        runtimes: vec![RuntimeSpec { name: "Claude".into(), provider: "claude".into(), ..RuntimeSpec::default() }],
        ..Default::default()
    };
    let usage = UsageEntry {
        date: "2026-03-30".into(),
        provider: "claude".into(),
        model: "opus".into(),
        input_tokens: 1,
        output_tokens: 2,
        ..UsageEntry::default()
    };
    let tool_use = TaskMessage { seq: 2, kind: MessageKind::ToolUse, tool: "bash".into(), ..TaskMessage::default() };
    vec![
        Call::Register(register),
        Call::Deregister { runtime_ids: vec![runtime.clone(), "rt-2".into()] },
        Call::SendHeartbeat { runtime_id: runtime.clone() },
        Call::ClaimTask { runtime_id: runtime.clone() },
        Call::ListPendingTasks { runtime_id: runtime.clone() },
        Call::ReportUsage { runtime_id: runtime.clone(), entries: vec![usage].into() },
        Call::ReportPingResult {
            runtime_id: runtime.clone(),
            ping_id: PingId::new("p/1"),
            result: PingResult {
                status: PingStatus::Completed,
                output: "pong".into(),
                duration_ms: 12,
                ..PingResult::default()
            },
        },
        Call::GetTaskStatus { task_id: task.clone() },
        Call::StartTask { task_id: task.clone() },
        Call::ReportProgress {
            task_id: task.clone(),
            progress: TaskProgress { summary: "step".into(), step: 1, total: 2 },
        },
        Call::CompleteTask {
            task_id: task.clone(),
            completion: TaskCompletion { session_id: "s-1".into(), ..TaskCompletion::with_output("done") },
        },
        Call::FailTask { task_id: task.clone(), error: "agent crashed".into() },
        Call::ReportTaskMessages { task_id: task.clone(), messages: vec![TaskMessage::text(1, "hi"), tool_use].into() },
        Call::ListTaskMessages { task_id: task.clone() },
        Call::ListWorkspaces,
        Call::CreatePairingSession(PairingRequest { daemon_id: "d-1".into(), ..PairingRequest::default() }),
        Call::GetPairingSession { token: "pt 1".into() },
        Call::ClaimPairingSession { token: "pt/1".into() },
        // HEAD 1cc46b2697.
        Call::DeregisterWith(DeregisterRequest {
            runtime_ids: vec![runtime.clone()],
            offline_reasons: [("rt/1".to_owned(), serde_json::json!({"code": "auth_expired"}))].into_iter().collect(),
        }),
        Call::SendHeartbeatWith(HeartbeatRequest {
            supports_batch_import: true,
            ..HeartbeatRequest::new(runtime.clone())
        }),
        Call::FailTaskWith {
            task_id: task.clone(),
            failure: TaskFailure::new("late").with_reason(FailureReason::Timeout).with_session("s-1", "/w"),
        },
        Call::ListTaskMessagesSince { task_id: task.clone(), since: 7 },
        Call::ClaimTasks(BatchClaimRequest {
            daemon_id: "d-1".into(),
            runtime_ids: vec![runtime.clone()],
            max_tasks: 4,
        }),
        Call::ExtendPrepareLease { runtime_id: runtime.clone(), task_id: task.clone() },
        Call::ResolveSkillBundles {
            runtime_id: runtime.clone(),
            task_id: task.clone(),
            request: SkillBundleRequest {
                skills: vec![SkillBundleRef {
                    id: "builtin:x".into(),
                    source: SkillSource::Builtin,
                    hash: "sha256:0".into(),
                }],
            },
        },
        Call::RecoverOrphans { runtime_id: runtime.clone() },
        Call::ReportModelList {
            runtime_id: runtime.clone(),
            request_id: "q/1".into(),
            result: ModelListResult { status: "completed".into(), ..ModelListResult::default() },
        },
        Call::ReportLocalSkills {
            runtime_id: runtime.clone(),
            request_id: "q 2".into(),
            result: LocalSkillsResult { status: "failed".into(), error: "no".into(), ..LocalSkillsResult::default() },
        },
        Call::ReportSkillImport {
            runtime_id: runtime.clone(),
            request_id: "import".into(),
            result: SkillImportResult { status: "failed".into(), ..SkillImportResult::default() },
        },
        Call::ReportUpdateResult {
            runtime_id: runtime.clone(),
            update_id: "u-1".into(),
            result: UpdateResult { status: "running".into(), ..UpdateResult::default() },
        },
        Call::WaitLocalDirectory { task_id: task.clone(), wait: LocalDirectoryWait { reason: "demo".into() } },
        Call::ReportTaskUsage {
            task_id: task.clone(),
            usage: vec![TaskUsage { provider: "claude".into(), model: "m".into(), ..TaskUsage::default() }].into(),
        },
        Call::AckCancel { task_id: task.clone(), ack: CancelAck::default() },
        Call::PinSession {
            task_id: task.clone(),
            pin: SessionPin { session_id: "s-1".into(), ..SessionPin::default() },
        },
        Call::GetTaskGcCheck { task_id: task.clone() },
        Call::GetIssueGcCheck { issue_id: "i/1".into() },
        Call::GetChatSessionGcCheck { session_id: "c 1".into() },
        Call::GetAutopilotRunGcCheck { run_id: "a?1".into() },
        Call::CheckIssuesGc { workspace_id: "ws-1".into(), issue_ids: vec!["i-1".into()] },
        Call::ListDaemonWorkspaces,
        Call::GetWorkspaceRepos { workspace_id: "ws/1".into() },
        Call::ListRuntimeProfiles { workspace_id: "ws-1".into() },
    ]
}

/// Makes `call` through the trait, dropping the typed result.
async fn invoke(api: &dyn DaemonApi, call: &Call) -> multica_api::Result<()> {
    match call {
        Call::Register(request) => api.register(request).await.map(drop),
        Call::Deregister { runtime_ids } => api.deregister(runtime_ids).await,
        Call::SendHeartbeat { runtime_id } => api.send_heartbeat(runtime_id).await.map(drop),
        Call::ClaimTask { runtime_id } => api.claim_task(runtime_id).await.map(drop),
        Call::ListPendingTasks { runtime_id } => api.list_pending_tasks(runtime_id).await.map(drop),
        Call::ReportUsage { runtime_id, entries } => api.report_usage(runtime_id, Arc::clone(entries)).await,
        Call::ReportPingResult { runtime_id, ping_id, result } => {
            api.report_ping_result(runtime_id, ping_id, result).await
        }
        Call::GetTaskStatus { task_id } => api.get_task_status(task_id).await.map(drop),
        Call::StartTask { task_id } => api.start_task(task_id).await,
        Call::ReportProgress { task_id, progress } => api.report_progress(task_id, progress).await,
        Call::CompleteTask { task_id, completion } => api.complete_task(task_id, completion).await,
        Call::FailTask { task_id, error } => api.fail_task(task_id, error).await,
        Call::ReportTaskMessages { task_id, messages } => api.report_task_messages(task_id, Arc::clone(messages)).await,
        Call::ListTaskMessages { task_id } => api.list_task_messages(task_id).await.map(drop),
        Call::ListWorkspaces => api.list_workspaces().await.map(drop),
        Call::CreatePairingSession(request) => api.create_pairing_session(request).await.map(drop),
        Call::GetPairingSession { token } => api.get_pairing_session(token).await.map(drop),
        Call::ClaimPairingSession { token } => api.claim_pairing_session(token).await.map(drop),
        Call::DeregisterWith(request) => api.deregister_with(request).await,
        Call::SendHeartbeatWith(request) => api.send_heartbeat_with(request).await.map(drop),
        Call::FailTaskWith { task_id, failure } => api.fail_task_with(task_id, failure).await,
        Call::ListTaskMessagesSince { task_id, since } => api.list_task_messages_since(task_id, *since).await.map(drop),
        Call::ClaimTasks(request) => api.claim_tasks(request).await.map(drop),
        Call::ExtendPrepareLease { runtime_id, task_id } => {
            api.extend_prepare_lease(runtime_id, task_id).await.map(drop)
        }
        Call::ResolveSkillBundles { runtime_id, task_id, request } => {
            api.resolve_skill_bundles(runtime_id, task_id, request).await.map(drop)
        }
        Call::RecoverOrphans { runtime_id } => api.recover_orphans(runtime_id).await.map(drop),
        Call::ReportModelList { runtime_id, request_id, result } => {
            api.report_model_list(runtime_id, request_id, result).await
        }
        Call::ReportLocalSkills { runtime_id, request_id, result } => {
            api.report_local_skills(runtime_id, request_id, result).await
        }
        Call::ReportSkillImport { runtime_id, request_id, result } => {
            api.report_skill_import(runtime_id, request_id, result).await
        }
        Call::ReportUpdateResult { runtime_id, update_id, result } => {
            api.report_update_result(runtime_id, update_id, result).await
        }
        Call::WaitLocalDirectory { task_id, wait } => api.wait_local_directory(task_id, wait).await.map(drop),
        Call::ReportTaskUsage { task_id, usage } => api.report_task_usage(task_id, Arc::clone(usage)).await,
        Call::AckCancel { task_id, ack } => api.ack_cancel(task_id, ack).await,
        Call::PinSession { task_id, pin } => api.pin_session(task_id, pin).await,
        Call::GetTaskGcCheck { task_id } => api.get_task_gc_check(task_id).await.map(drop),
        Call::GetIssueGcCheck { issue_id } => api.get_issue_gc_check(issue_id).await.map(drop),
        Call::GetChatSessionGcCheck { session_id } => api.get_chat_session_gc_check(session_id).await.map(drop),
        Call::GetAutopilotRunGcCheck { run_id } => api.get_autopilot_run_gc_check(run_id).await.map(drop),
        Call::CheckIssuesGc { workspace_id, issue_ids } => api.check_issues_gc(workspace_id, issue_ids).await.map(drop),
        Call::ListDaemonWorkspaces => api.list_daemon_workspaces().await.map(drop),
        Call::GetWorkspaceRepos { workspace_id } => api.get_workspace_repos(workspace_id).await.map(drop),
        Call::ListRuntimeProfiles { workspace_id } => api.list_runtime_profiles(workspace_id).await.map(drop),
        other => panic!("a call this test does not know: {other:?}"),
    }
}

#[tokio::test]
async fn every_call_reaches_the_server_exactly_as_built() {
    let (server, client) = server_and_client().await;
    let calls = every_call();
    let routes: std::collections::BTreeSet<Endpoint> = calls.iter().map(Call::endpoint).collect();
    assert_eq!(routes.len(), Endpoint::ALL.len(), "every route is called");
    for call in &calls {
        invoke(&client, call).await.unwrap_or_else(|err| panic!("{call:?}: {err}"));
    }
    let seen = server.requests();
    assert_eq!(seen.len(), calls.len());
    for (call, request) in calls.iter().zip(&seen) {
        let wire = call.to_wire().unwrap();
        assert_eq!(request.method, wire.method().as_str(), "{call:?}");
        assert_eq!(request.path, wire.path, "{call:?}");
        assert_eq!(Call::decode(&request.method, &request.path, &request.body).unwrap(), *call);
        assert_eq!(request.header("user-agent"), Some(DEFAULT_USER_AGENT));
        assert_eq!(request.header("authorization"), None, "no token, no header");
        match wire.body {
            Some(body) => {
                assert_eq!(request.body, body, "{call:?}");
                assert_eq!(request.header("content-type"), Some("application/json"));
                assert_eq!(request.header("content-length"), Some(body.len().to_string().as_str()));
            }
            None => {
                assert!(request.body.is_empty(), "{call:?}");
                assert_eq!(request.header("content-type"), None);
            }
        }
    }
}

#[tokio::test]
async fn empty_posts_send_an_empty_json_object() {
    let (server, client) = server_and_client().await;
    assert_eq!(client.claim_task(&RuntimeId::new("rt-1")).await.unwrap(), None);
    client.start_task(&TaskId::new("t-1")).await.unwrap();
    for request in server.requests() {
        assert_eq!(request.method, "POST");
        assert_eq!(&request.body[..], b"{}");
        assert_eq!(request.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn answers_are_decoded() {
    let (_server, client) = server_and_client().await;
    let heartbeat = client.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap();
    assert_eq!(heartbeat.pending_ping.unwrap().id, PingId::new("p-1"));
    let status = client.get_task_status(&TaskId::new("t-1")).await.unwrap();
    assert_eq!(status, TaskStatus::Running);
    let registered = client.register(&RegisterRequest::default()).await.unwrap();
    assert_eq!(registered.runtimes[0].id, RuntimeId::new("rt-1"));
}

#[tokio::test]
async fn ids_stay_one_path_segment() {
    let (server, client) = server_and_client().await;
    let ids = ["a/b", "..", ".", "a/../b", "x?y=1", "x#frag", "a b", "é/ü", "100%", "%2F"];
    for id in ids {
        client.get_task_status(&TaskId::new(id)).await.unwrap();
        client.report_ping_result(&RuntimeId::new(id), &PingId::new(id), &PingResult::default()).await.unwrap();
    }
    let seen = server.requests();
    assert_eq!(seen.len(), ids.len() * 2);
    for (pair, id) in seen.chunks(2).zip(ids) {
        assert_eq!(
            Endpoint::recognize("GET", &pair[0].path),
            Ok((Endpoint::GetTaskStatus, vec![id.to_owned()])),
            "{id:?} was sent as {:?}",
            pair[0].path
        );
        assert_eq!(
            Endpoint::recognize("POST", &pair[1].path),
            Ok((Endpoint::ReportPingResult, vec![id.to_owned(), id.to_owned()])),
            "{id:?} was sent as {:?}",
            pair[1].path
        );
    }
}

#[tokio::test]
async fn an_empty_id_is_refused_before_sending() {
    let (server, client) = server_and_client().await;
    let err = client.start_task(&TaskId::new("")).await.unwrap_err();
    assert!(matches!(err, multica_api::Error::InvalidArgument(_)), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn bearer_token_is_sent_only_when_set_and_can_be_replaced() {
    let server = TestServer::start(server_answer).await;
    let client = HyperClient::builder(server.url()).token("first").build().unwrap();
    let shared = client.clone();
    client.list_workspaces().await.unwrap();
    shared.set_token("second").unwrap();
    client.list_workspaces().await.unwrap();
    shared.clear_token();
    client.list_workspaces().await.unwrap();
    shared.set_token(String::new()).unwrap();
    client.list_workspaces().await.unwrap();
    assert!(shared.set_token("bad\ntoken").is_err());
    let auth: Vec<Option<String>> =
        server.requests().iter().map(|r| r.header("authorization").map(str::to_owned)).collect();
    assert_eq!(auth, [Some("Bearer first".to_owned()), Some("Bearer second".to_owned()), None, None]);
    assert!(!client.has_token());
}

#[tokio::test]
async fn base_path_prefix_and_user_agent_are_applied() {
    let server = TestServer::start(server_answer).await;
    let client = HyperClient::builder(format!("{}/multica/", server.url())).user_agent("my-daemon/2").build().unwrap();
    client.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
    let request = server.only_request();
    assert_eq!(request.path, "/multica/api/daemon/heartbeat");
    assert_eq!(request.header("user-agent"), Some("my-daemon/2"));
}

#[tokio::test]
async fn debug_of_the_client_never_shows_the_token() {
    let client = HyperClient::builder("http://127.0.0.1:1").token("mdt_very_secret").build().unwrap();
    client.set_token("mdt_other_secret").unwrap();
    let shown = format!("{client:?} {:?}", client.with_call_timeout(std::time::Duration::from_secs(1)));
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}
