//! Golden tests against server HEAD 1cc46b2697: every 2xx answer recorded in
//! `fixtures/head-transcript.json` (a copy of
//! `real-server-head/transcript-public.json`) decodes into the SDK's type for
//! its route, and encoding the decoded value gives back every key the server
//! sent, with its value: no field is silently dropped. Every recorded request
//! body of a successful call decodes into the SDK's request type and encodes
//! back the same way. Then the new optional request fields: each encodes as
//! the contract says, and unset they leave the 3c93ebaf1c bodies
//! byte-identical.

#![allow(clippy::unwrap_used)]

use multica_api::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Keys the server sends that the SDK deliberately does not type, each with
/// the reason. Empty: every key HEAD 1cc46b2697 was recorded sending is
/// typed. (Claim-object keys HEAD sends only for kinds of tasks that were not
/// recorded — `remote_mcp_connections`, `plugin_hook_tools`,
/// `connected_apps`, `issue_statuses`, `issue_statuses_omitted`, the
/// trigger/chat/autopilot/quick-create and `initiator_*` fields — are not
/// typed either: their shapes are not in the contract.)
const UNTYPED_KEYS: &[(&str, &str)] = &[];

/// One recorded exchange.
#[derive(Deserialize)]
struct Step {
    name: String,
    request: RecordedRequest,
    real: RecordedAnswer,
}

#[derive(Deserialize)]
struct RecordedRequest {
    method: String,
    path: String,
    json: Option<Value>,
}

#[derive(Deserialize)]
struct RecordedAnswer {
    status: u16,
    body: String,
}

#[derive(Deserialize)]
struct Transcript {
    steps: Vec<Step>,
}

fn transcript() -> Vec<Step> {
    let text = include_str!("fixtures/head-transcript.json");
    serde_json::from_str::<Transcript>(text).unwrap().steps
}

/// The step whose name starts with `label` (`"D5"`).
fn step<'a>(steps: &'a [Step], label: &str) -> &'a Step {
    steps.iter().find(|s| s.name.split_whitespace().next() == Some(label)).unwrap()
}

fn answer(step: &Step) -> Value {
    serde_json::from_str(&step.real.body).unwrap()
}

/// Whether a path matches a route template: `*` stands for one segment.
fn matches(path: &str, template: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (mut got, mut want) = (path.split('/'), template.split('/'));
    loop {
        match (got.next(), want.next()) {
            (None, None) => return true,
            (Some(_), Some("*")) => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Which HEAD route a request is, by method and path template.
fn route(method: &str, path: &str) -> Option<&'static str> {
    const ROUTES: &[(&str, &str)] = &[
        ("POST", "/api/daemon/register"),
        ("POST", "/api/daemon/deregister"),
        ("POST", "/api/daemon/heartbeat"),
        ("POST", "/api/daemon/runtimes/*/models/*/result"),
        ("POST", "/api/daemon/runtimes/*/local-skills/*/result"),
        ("POST", "/api/daemon/runtimes/*/update/*/result"),
        ("GET", "/api/daemon/runtimes/*/tasks/pending"),
        ("POST", "/api/daemon/runtimes/*/tasks/claim"),
        ("POST", "/api/daemon/runtimes/*/tasks/*/prepare-lease"),
        ("POST", "/api/daemon/tasks/claim"),
        ("POST", "/api/daemon/claim"),
        ("GET", "/api/daemon/tasks/*/status"),
        ("POST", "/api/daemon/tasks/*/start"),
        ("POST", "/api/daemon/tasks/*/wait-local-directory"),
        ("POST", "/api/daemon/tasks/*/progress"),
        ("POST", "/api/daemon/tasks/*/messages"),
        ("GET", "/api/daemon/tasks/*/messages"),
        ("POST", "/api/daemon/tasks/*/complete"),
        ("POST", "/api/daemon/tasks/*/fail"),
        ("POST", "/api/daemon/tasks/*/usage"),
        ("POST", "/api/daemon/tasks/*/cancel-ack"),
        ("POST", "/api/daemon/tasks/*/session"),
    ];
    ROUTES.iter().find(|(m, t)| *m == method && matches(path, t)).map(|(_, t)| *t)
}

/// A JSON value the server and Go treat as absent.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

/// Differences between what was sent and what the SDK encodes back: a key
/// sent with a value (not `null`) and missing from the encoding, a value
/// that differs, or a key the encoding adds with a non-empty value.
fn differences(at: &str, sent: &Value, back: &Value, out: &mut Vec<String>) {
    match (sent, back) {
        (Value::Object(sent), Value::Object(back)) => {
            for (key, value) in sent {
                let here = format!("{at}.{key}");
                match back.get(key) {
                    Some(encoded) => differences(&here, value, encoded, out),
                    None if value.is_null() => {}
                    None if UNTYPED_KEYS.iter().any(|(k, _)| k == key) => {}
                    None => out.push(format!("{here}: dropped (sent {})", short(value))),
                }
            }
            for (key, value) in back {
                if !sent.contains_key(key) && !is_empty(value) {
                    out.push(format!("{at}.{key}: added {}", short(value)));
                }
            }
        }
        (Value::Array(sent), Value::Array(back)) => {
            if sent.len() != back.len() {
                out.push(format!("{at}: {} items sent, {} encoded", sent.len(), back.len()));
            }
            for (i, (a, b)) in sent.iter().zip(back).enumerate() {
                differences(&format!("{at}[{i}]"), a, b, out);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{at}: sent {}, encoded {}", short(a), short(b))),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    text.chars().take(80).collect()
}

/// Decodes `json` as `T` and lists what its encoding lost or changed.
fn roundtrip<T: DeserializeOwned + Serialize>(json: &Value) -> Vec<String> {
    let decoded: T = match serde_json::from_value(json.clone()) {
        Ok(decoded) => decoded,
        Err(err) => return vec![format!("does not decode as {}: {err}", std::any::type_name::<T>())],
    };
    let mut out = Vec::new();
    differences("$", json, &serde_json::to_value(&decoded).unwrap(), &mut out);
    out
}

/// The answer type of each route, checked against one recorded answer.
fn check_answer(route: &str, json: &Value) -> Vec<String> {
    match route {
        "/api/daemon/register" => roundtrip::<RegisterResponse>(json),
        "/api/daemon/heartbeat" => roundtrip::<HeartbeatResponse>(json),
        "/api/daemon/runtimes/*/tasks/pending" => roundtrip::<Vec<TaskRecord>>(json),
        "/api/daemon/runtimes/*/tasks/claim" => roundtrip::<ClaimResponse>(json),
        "/api/daemon/tasks/claim" | "/api/daemon/claim" => roundtrip::<BatchClaimResponse>(json),
        "/api/daemon/tasks/*/status" => roundtrip::<TaskStatusResponse>(json),
        "/api/daemon/runtimes/*/tasks/*/prepare-lease"
        | "/api/daemon/tasks/*/start"
        | "/api/daemon/tasks/*/wait-local-directory"
        | "/api/daemon/tasks/*/complete"
        | "/api/daemon/tasks/*/fail" => roundtrip::<TaskRecord>(json),
        "/api/daemon/tasks/*/messages" if json.is_array() => roundtrip::<Vec<StoredTaskMessage>>(json),
        _ => roundtrip::<OkResponse>(json),
    }
}

#[test]
fn every_recorded_success_answer_decodes_without_losing_a_field() {
    let steps = transcript();
    let mut checked = 0;
    let mut problems = Vec::new();
    for step in &steps {
        if !(200..300).contains(&step.real.status) {
            continue;
        }
        let Some(route) = route(&step.request.method, &step.request.path) else {
            problems.push(format!("{}: no typed route", step.name));
            continue;
        };
        if step.real.status == 204 {
            assert!(step.real.body.is_empty(), "{}", step.name);
            continue;
        }
        let json: Value = serde_json::from_str(&step.real.body).unwrap();
        checked += 1;
        problems.extend(check_answer(route, &json).into_iter().map(|p| format!("{}: {p}", step.name)));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Of the 189 steps, 108 answered 2xx: one 204 without a body (session
    // pin) and these 107 with JSON.
    assert_eq!(checked, 107);
}

/// The request type of each route; `None` for bodies the server does not read.
fn check_request(route: &str, json: &Value) -> Option<Vec<String>> {
    #[derive(Serialize, Deserialize)]
    struct Messages {
        messages: Vec<TaskMessage>,
    }
    Some(match route {
        "/api/daemon/register" => roundtrip::<RegisterRequest>(json),
        "/api/daemon/deregister" => roundtrip::<DeregisterRequest>(json),
        "/api/daemon/heartbeat" => roundtrip::<HeartbeatRequest>(json),
        "/api/daemon/runtimes/*/models/*/result" => roundtrip::<ModelListResult>(json),
        "/api/daemon/runtimes/*/local-skills/*/result" => roundtrip::<LocalSkillsResult>(json),
        "/api/daemon/runtimes/*/update/*/result" => roundtrip::<UpdateResult>(json),
        "/api/daemon/tasks/claim" | "/api/daemon/claim" => roundtrip::<BatchClaimRequest>(json),
        "/api/daemon/tasks/*/wait-local-directory" => roundtrip::<LocalDirectoryWait>(json),
        "/api/daemon/tasks/*/progress" => roundtrip::<TaskProgress>(json),
        "/api/daemon/tasks/*/messages" => roundtrip::<Messages>(json),
        "/api/daemon/tasks/*/complete" => roundtrip::<TaskCompletion>(json),
        "/api/daemon/tasks/*/fail" => roundtrip::<TaskFailure>(json),
        "/api/daemon/tasks/*/usage" => roundtrip::<TaskUsageReport>(json),
        "/api/daemon/tasks/*/cancel-ack" => roundtrip::<CancelAck>(json),
        "/api/daemon/tasks/*/session" => roundtrip::<SessionPin>(json),
        _ => return None,
    })
}

#[test]
fn every_recorded_successful_request_body_is_typed() {
    // Bodies the server accepted although they are not what a daemon sends.
    const NOT_DAEMON_BODIES: &[(&str, &str)] =
        &[("F10", "the 3c93ebaf1c runtime-usage body {\"entries\":…}, accepted as an empty report")];
    let steps = transcript();
    let mut checked = 0;
    let mut problems = Vec::new();
    for step in &steps {
        let label = step.name.split_whitespace().next().unwrap_or_default();
        let (Some(json), Some(route)) = (&step.request.json, route(&step.request.method, &step.request.path)) else {
            continue;
        };
        if !(200..300).contains(&step.real.status) || NOT_DAEMON_BODIES.iter().any(|(l, _)| *l == label) {
            continue;
        }
        if let Some(found) = check_request(route, json) {
            checked += 1;
            problems.extend(found.into_iter().map(|p| format!("{}: {p}", step.name)));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The 91 successful requests with a JSON body, less the `{}` of claims,
    // starts and prepare-leases (not read by the server) and F10.
    assert_eq!(checked, 69);
}

#[test]
fn claim_without_capabilities_carries_inline_skills_and_the_task_token() {
    let steps = transcript();
    let task = serde_json::from_value::<ClaimResponse>(answer(step(&steps, "D5"))).unwrap().task.unwrap();
    assert_eq!(task.record.status, TaskStatus::Dispatched);
    assert_eq!(task.record.attempt, Some(1));
    assert_eq!(task.record.max_attempts, Some(2));
    assert_eq!(task.record.kind, Some(TaskKind::Direct));
    assert_eq!(task.record.delivered_comment_ids, Some(Vec::new()));
    assert_eq!(task.record.parent_task_id, None);
    assert!(task.leader_role_resolved);
    assert_eq!(task.thread_name, "diff task 1");
    assert_eq!(task.workspace_context, "Use <b>care</b> & test");
    assert_eq!(task.requesting_user_name, "tester");
    let token = task.auth_token.as_ref().unwrap();
    assert_eq!(token.expose(), "mat_feedfacefeedfacefeedfacefeedface00000001");
    let attribution = task.record.attribution.as_ref().unwrap();
    assert_eq!(attribution.source, "direct_human");
    assert!(attribution.precise);
    assert_eq!(attribution.evidence.as_ref().unwrap().kind, "issue_assignment");
    assert_eq!(attribution.evidence.as_ref().unwrap().ref_id, task.record.issue_id.as_str());
    let agent = task.agent.as_ref().unwrap();
    assert!(agent.skill_refs.is_empty());
    assert_eq!(agent.skills.len(), 10, "one workspace skill and the 9 built-in ones");
    assert_eq!(agent.skills[0].description, "how to test");
    assert_eq!(agent.skills[0].id.as_deref(), Some("0edb3b03-9043-46a1-ad4d-c4124afa1395"));
    assert!(agent.skills[1..].iter().all(|s| s.id.as_deref() == Some("") && s.name.starts_with("multica-")));
}

#[test]
fn claim_with_skill_bundles_carries_references_and_siblings() {
    let steps = transcript();
    let task = serde_json::from_value::<ClaimResponse>(answer(step(&steps, "D10"))).unwrap().task.unwrap();
    let agent = task.agent.as_ref().unwrap();
    assert!(agent.skills.is_empty());
    assert_eq!(agent.skill_refs.len(), 10);
    let workspace_skill = &agent.skill_refs[0];
    assert_eq!(workspace_skill.source, SkillSource::Workspace);
    assert_eq!(workspace_skill.size_bytes, 57);
    assert_eq!(workspace_skill.file_count, 1);
    assert_eq!(workspace_skill.files[0].path, "checklist.md");
    assert!(workspace_skill.files[0].sha256.starts_with("sha256:"));
    assert!(agent.skill_refs[1..].iter().all(|s| s.source == SkillSource::Builtin && s.id.starts_with("builtin:")));
    let reference = SkillBundleRef::from(workspace_skill);
    assert_eq!(reference.hash, workspace_skill.hash);
    let sibling = &task.active_sibling_runs[0];
    assert_eq!(sibling.issue_identifier, "DIF-1");
    assert_eq!(sibling.status, TaskStatus::Dispatched);
    assert_eq!(sibling.started_at, None);
}

#[test]
fn retries_carry_their_attempt_parent_and_prior_session() {
    let steps = transcript();
    let retry = serde_json::from_value::<ClaimResponse>(answer(step(&steps, "E41"))).unwrap().task.unwrap();
    let failed: TaskRecord = serde_json::from_value(answer(step(&steps, "E39"))).unwrap();
    assert_eq!(failed.failure_reason, FailureReason::Timeout);
    assert!(failed.failure_reason.is_retryable());
    assert_eq!(retry.record.attempt, Some(2));
    assert_eq!(retry.record.parent_task_id.as_ref(), Some(&failed.id));
    assert_eq!(retry.prior_session_id, "sess-4");
    let pending: Vec<TaskRecord> = serde_json::from_value(answer(step(&steps, "E40"))).unwrap();
    assert_eq!(pending[0].parent_task_id.as_ref(), Some(&failed.id));
    let rerun = serde_json::from_value::<ClaimResponse>(answer(step(&steps, "E57"))).unwrap().task.unwrap();
    assert_eq!(rerun.prior_session_id, "sess-1");
    assert!(rerun.prior_work_dir.ends_with("/workdir"));
}

#[test]
fn failure_reasons_decode_known_and_unknown() {
    let steps = transcript();
    let reason = |label| serde_json::from_value::<TaskRecord>(answer(step(&steps, label))).unwrap().failure_reason;
    assert_eq!(reason("E29"), FailureReason::AgentErrorUnknown);
    assert_eq!(reason("E37"), FailureReason::ContextOverflow);
    assert_eq!(reason("E72"), FailureReason::RuntimeOffline);
    assert_eq!(reason("E78"), FailureReason::Other("weird-reason".into()));
    assert!(!reason("E78").is_retryable());
    assert!(!FailureReason::ContextOverflow.is_retryable());
    assert_eq!(reason("E24"), FailureReason::default(), "a completed task has none");
}

#[test]
fn completed_rows_carry_work_dirs_and_the_stored_result() {
    let steps = transcript();
    let row: TaskRecord = serde_json::from_value(answer(step(&steps, "E22"))).unwrap();
    assert_eq!(row.status, TaskStatus::Completed);
    assert_eq!(row.branch_name, "agent/builder/fix-1");
    assert_eq!(row.durable_work_dir, "/Users/dev/src/demo");
    assert_eq!(row.relative_durable_work_dir, "src/demo");
    assert!(row.relative_work_dir.starts_with("multica_workspaces/"));
    assert_eq!(row.result.as_ref().unwrap()["pr_url"], "https://github.com/example/demo/pull/1");
}

#[test]
fn new_statuses_are_known_variants() {
    let steps = transcript();
    let status: TaskStatusResponse = serde_json::from_value(answer(step(&steps, "E60"))).unwrap();
    assert_eq!(status.status, TaskStatus::WaitingLocalDirectory);
    let row: TaskRecord = serde_json::from_value(answer(step(&steps, "E58"))).unwrap();
    assert_eq!(row.status, TaskStatus::WaitingLocalDirectory);
    assert!(!row.status.is_terminal());
    assert_eq!(TaskStatus::from("deferred"), TaskStatus::Deferred);
    assert_eq!(TaskStatus::Deferred.as_str(), "deferred");
    assert!(!TaskStatus::Deferred.is_terminal());
    assert_eq!(TaskStatus::from("paused"), TaskStatus::Other("paused".into()));
    assert_eq!(serde_json::to_value(TaskStatus::Other("paused".into())).unwrap(), json!("paused"));
}

#[test]
fn batch_claim_answers_claim_objects() {
    let steps = transcript();
    let batch: BatchClaimResponse = serde_json::from_value(answer(step(&steps, "D18"))).unwrap();
    assert_eq!(batch.tasks.len(), 1);
    assert_eq!(batch.tasks[0].record.runtime_id, "28b0f16b-a297-4f21-aad7-b90cd4774da8");
    assert!(batch.tasks[0].auth_token.is_some());
    let empty: BatchClaimResponse = serde_json::from_value(answer(step(&steps, "D14"))).unwrap();
    assert!(empty.tasks.is_empty());
}

#[test]
fn register_answer_carries_owner_capabilities_and_repos_version() {
    let steps = transcript();
    let response: RegisterResponse = serde_json::from_value(answer(step(&steps, "B15"))).unwrap();
    assert_eq!(response.repos_version.len(), 64);
    assert_eq!(response.settings, Some(serde_json::Map::new()));
    let runtime = &response.runtimes[0];
    assert_eq!(runtime.launch_header.as_deref(), Some("claude (stream-json)"));
    assert_eq!(runtime.visibility.as_deref(), Some("private"));
    assert!(runtime.owner_id.is_some());
    assert_eq!(runtime.custom_name, None);
    assert_eq!(runtime.profile_id, None);
    assert_eq!(runtime.metadata["capabilities"][0], "skill-bundles-v1");
    assert_eq!(runtime.metadata["cli_version"], "0.4.30");
}

#[test]
fn heartbeat_answer_carries_runtime_requests() {
    let steps = transcript();
    let response: HeartbeatResponse = serde_json::from_value(answer(step(&steps, "C15"))).unwrap();
    assert_eq!(response.pending_update.as_ref().unwrap().target_version, "v9.9.9");
    assert_eq!(response.pending_local_skills.as_ref().unwrap().id.as_str().len(), 32);
    assert_eq!(response.pending_local_skill_import.as_ref().unwrap().skill_key, "claude:review");
    assert_eq!(response.pending_local_skill_imports.len(), 2);
    assert_eq!(response.pending_local_skill_imports[0], *response.pending_local_skill_import.as_ref().unwrap());
    let models: HeartbeatResponse = serde_json::from_value(answer(step(&steps, "C9"))).unwrap();
    assert!(models.pending_model_list.is_some());
    assert_eq!(models.pending_ping, None);
}

#[test]
fn stored_messages_carry_issue_and_time_at_head() {
    let steps = transcript();
    let list: Vec<StoredTaskMessage> = serde_json::from_value(answer(step(&steps, "E18"))).unwrap();
    assert!(list[0].issue_id.is_some());
    assert!(list[0].created_at.as_deref().unwrap().contains('.'), "fractional seconds");
    assert_eq!(list[0].message.kind, MessageKind::Text);
}

#[test]
fn task_token_is_redacted_in_debug_and_kept_by_serde() {
    let steps = transcript();
    let json = answer(step(&steps, "D10"));
    let task = serde_json::from_value::<ClaimResponse>(json.clone()).unwrap().task.unwrap();
    let shown = format!("{task:?}");
    assert!(!shown.contains("mat_"), "token leaked into Debug");
    assert!(shown.contains("auth_token: Some(SecretToken(<redacted>))"), "{}", &shown[shown.len() - 300..]);
    let encoded = serde_json::to_value(&task).unwrap();
    assert_eq!(encoded["auth_token"], json["task"]["auth_token"]);
    let mut mdt = Task::default();
    mdt.remote_mcp_daemon_token = Some("mdt_secret".into());
    assert!(!format!("{mdt:?}").contains("mdt_secret"));
    assert_eq!(serde_json::to_value(&mdt).unwrap()["remote_mcp_daemon_token"], "mdt_secret");
}

// ---- request bodies: new optional fields, and byte-identical when unset ----

fn bytes<T: Serialize>(value: &T) -> String {
    String::from_utf8(serde_json::to_vec(value).unwrap()).unwrap()
}

/// The body the SDK's 3c93ebaf1c request builder sends, as text.
fn built<T>(request: Result<request::Request<T>>) -> String {
    String::from_utf8(request.unwrap().wire().body.clone().unwrap()).unwrap()
}

#[test]
fn unset_head_fields_leave_3c93ebaf1c_bodies_byte_identical() {
    let register = RegisterRequest {
        workspace_id: "ws".into(),
        daemon_id: "d".into(),
        device_name: "mac".into(),
        runtimes: vec![RuntimeSpec { name: "C".into(), provider: "claude".into(), ..RuntimeSpec::default() }],
        ..RegisterRequest::default()
    };
    let register_3c93 = r#"{"workspace_id":"ws","daemon_id":"d","device_name":"mac","runtimes":[{"name":"C","type":"claude","version":"","status":""}]}"#;
    assert_eq!(bytes(&register), register_3c93);
    assert_eq!(built(request::register(&register)), register_3c93);

    let completion = TaskCompletion { session_id: "s".into(), ..TaskCompletion::with_output("done") };
    assert_eq!(bytes(&completion), r#"{"output":"done","session_id":"s"}"#);
    assert_eq!(built(request::complete_task(&"t".into(), &completion)), bytes(&completion));

    assert_eq!(bytes(&TaskFailure::new("agent crashed")), r#"{"error":"agent crashed"}"#);
    assert_eq!(built(request::fail_task(&"t".into(), "agent crashed")), bytes(&TaskFailure::new("agent crashed")));

    let heartbeat = HeartbeatRequest::new("rt".into());
    assert_eq!(built(request::send_heartbeat(&"rt".into())), bytes(&heartbeat));
    assert_eq!(bytes(&heartbeat), r#"{"runtime_id":"rt"}"#);

    let deregister = DeregisterRequest { runtime_ids: vec!["a".into()], ..DeregisterRequest::default() };
    assert_eq!(built(request::deregister(&["a".into()])), bytes(&deregister));
}

#[test]
fn register_head_fields_encode_as_the_contract() {
    let request = RegisterRequest {
        workspace_id: "ws".into(),
        daemon_id: "d".into(),
        device_name: "mac".into(),
        runtimes: vec![RuntimeSpec {
            provider: "claude".into(),
            profile_id: Some("00000000-0000-4000-8000-0000000000ff".into()),
            ..RuntimeSpec::default()
        }],
        cli_version: "0.4.30".into(),
        launched_by: "desktop".into(),
        legacy_daemon_ids: vec!["old-host".into()],
        failed_profiles: vec![FailedProfile {
            profile_id: "p".into(),
            command_name: "mycli".into(),
            reason: "not found".into(),
        }],
    };
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"workspace_id": "ws", "daemon_id": "d", "device_name": "mac",
               "runtimes": [{"name": "", "type": "claude", "version": "", "status": "",
                             "profile_id": "00000000-0000-4000-8000-0000000000ff"}],
               "cli_version": "0.4.30", "launched_by": "desktop", "legacy_daemon_ids": ["old-host"],
               "failed_profiles": [{"profile_id": "p", "command_name": "mycli", "reason": "not found"}]})
    );
}

#[test]
fn complete_and_fail_head_fields_encode_as_the_contract() {
    let completion = TaskCompletion {
        pr_url: "https://pr/1".into(),
        durable_work_dir: "/src/demo".into(),
        session_rollout_missing: true,
        retired_session_id: "old".into(),
        ..TaskCompletion::with_output("done")
    };
    assert_eq!(
        serde_json::to_value(&completion).unwrap(),
        json!({"output": "done", "pr_url": "https://pr/1", "durable_work_dir": "/src/demo",
               "session_rollout_missing": true, "retired_session_id": "old"})
    );
    let failure = TaskFailure {
        durable_work_dir: "/src/demo".into(),
        branch_name: "b".into(),
        session_rollout_missing: true,
        retired_session_id: "old".into(),
        ..TaskFailure::new("boom").with_reason(FailureReason::ProviderNetwork).with_session("s", "/w")
    };
    assert_eq!(
        serde_json::to_value(&failure).unwrap(),
        json!({"error": "boom", "failure_reason": "agent_error.provider_network", "session_id": "s",
               "work_dir": "/w", "durable_work_dir": "/src/demo", "branch_name": "b",
               "session_rollout_missing": true, "retired_session_id": "old"})
    );
    let unknown = TaskFailure::new("").with_reason("weird-reason".into());
    assert_eq!(bytes(&unknown), r#"{"error":"","failure_reason":"weird-reason"}"#);
}

#[test]
fn new_route_bodies_encode_as_the_contract() {
    assert_eq!(bytes(&CancelAck::default()), "{}");
    let ack = CancelAck {
        branch_name: "agent/t5".into(),
        durable_work_dir: "/src/demo".into(),
        error_message: "kept".into(),
        failure_reason: "worktree_finalize_aborted".into(),
    };
    assert_eq!(
        serde_json::to_value(&ack).unwrap(),
        json!({"branch_name": "agent/t5", "durable_work_dir": "/src/demo", "error_message": "kept",
               "failure_reason": "worktree_finalize_aborted"})
    );
    let usage = TaskUsageReport {
        usage: vec![
            TaskUsage {
                provider: "claude".into(),
                model: "m".into(),
                input_tokens: 5_000_000_000,
                ..TaskUsage::default()
            },
            TaskUsage { model: "auto".into(), cost_usd_ticks: 123_456_789, ..TaskUsage::default() },
        ],
    };
    assert_eq!(
        serde_json::to_value(&usage).unwrap(),
        json!({"usage": [
            {"provider": "claude", "model": "m", "input_tokens": 5_000_000_000_i64, "output_tokens": 0,
             "cache_read_tokens": 0, "cache_write_tokens": 0},
            {"provider": "", "model": "auto", "input_tokens": 0, "output_tokens": 0,
             "cache_read_tokens": 0, "cache_write_tokens": 0, "cost_usd_ticks": 123_456_789}
        ]})
    );
    let batch = BatchClaimRequest { daemon_id: "d".into(), runtime_ids: vec!["r1".into()], max_tasks: 0 };
    assert_eq!(bytes(&batch), r#"{"daemon_id":"d","runtime_ids":["r1"],"max_tasks":0}"#);
    assert_eq!(bytes(&LocalDirectoryWait::default()), "{}");
    assert_eq!(bytes(&LocalDirectoryWait { reason: "demo".into() }), r#"{"reason":"demo"}"#);
    assert_eq!(bytes(&SessionPin { session_id: "s".into(), ..SessionPin::default() }), r#"{"session_id":"s"}"#);
    let heartbeat = HeartbeatRequest { supports_batch_import: true, ..HeartbeatRequest::new("rt".into()) };
    assert_eq!(bytes(&heartbeat), r#"{"runtime_id":"rt","supports_batch_import":true}"#);
    let mut reasons = serde_json::Map::new();
    reasons.insert("rt".into(), json!({"code": "auth_expired"}));
    let deregister = DeregisterRequest { runtime_ids: vec!["rt".into()], offline_reasons: reasons };
    assert_eq!(bytes(&deregister), r#"{"runtime_ids":["rt"],"offline_reasons":{"rt":{"code":"auth_expired"}}}"#);
    let resolve = SkillBundleRequest {
        skills: vec![SkillBundleRef { id: "builtin:x".into(), source: SkillSource::Builtin, hash: "sha256:0".into() }],
    };
    assert_eq!(bytes(&resolve), r#"{"skills":[{"id":"builtin:x","source":"builtin","hash":"sha256:0"}]}"#);
}

#[test]
fn new_answer_types_decode_the_contract_shapes() {
    let workspaces: Vec<DaemonWorkspace> =
        serde_json::from_value(json!([{"id": "ws-1", "name": "Diff"}, {"id": null, "name": null}])).unwrap();
    assert_eq!(workspaces[0], DaemonWorkspace::new("ws-1".into(), "Diff"));
    assert_eq!(workspaces[1], DaemonWorkspace::default());
    let recovery: OrphanRecovery = serde_json::from_value(json!({"orphaned": 3, "retried": 2})).unwrap();
    assert_eq!((recovery.orphaned, recovery.retried), (3, 2));
    let bundles: SkillBundleResponse = serde_json::from_value(json!({"bundles": [{
        "id": "builtin:x", "source": "builtin", "name": "x", "hash": "sha256:1", "size_bytes": 3, "content": "abc",
        "files": [{"path": "a.md", "content": "z", "sha256": "sha256:2", "size_bytes": 1}]}]}))
    .unwrap();
    assert_eq!(bundles.bundles[0].content, "abc");
    assert_eq!(bundles.bundles[0].files[0].sha256, "sha256:2");
    let repos: WorkspaceRepos = serde_json::from_value(json!({
        "workspace_id": "ws", "repos": [{"url": "u", "description": "d"}], "repos_version": "v", "settings": {}}))
    .unwrap();
    assert_eq!(repos.repos[0].url, "u");
    let profiles: RuntimeProfiles =
        serde_json::from_value(json!({"runtime_profiles": [{"id": "p", "name": "mine"}], "workspace_id": "ws"}))
            .unwrap();
    assert_eq!(profiles.runtime_profiles[0]["name"], "mine");
    let task: TaskGcCheck =
        serde_json::from_value(json!({"status": "completed", "completed_at": "0001-01-01T00:00:00Z"})).unwrap();
    assert_eq!(task.status, TaskStatus::Completed);
    let issues: IssueGcCheckResponse = serde_json::from_value(json!({"issues": [
        {"id": "i1", "found": true, "status": "done", "updated_at": "2026-11-29T16:35:05.985789Z"},
        {"id": "i2", "found": false}]}))
    .unwrap();
    assert!(issues.issues[0].found && !issues.issues[1].found);
    assert_eq!(issues.issues[0].status, "done");
    assert_eq!(bytes(&IssueGcCheckRequest { issue_ids: vec!["i1".into()] }), r#"{"issue_ids":["i1"]}"#);
    let chat: GcCheck = serde_json::from_value(json!({"status": "archived", "updated_at": "t"})).unwrap();
    assert_eq!(chat.updated_at, "t");
}

#[test]
fn answers_of_3c93ebaf1c_decode_with_head_fields_unset_and_encode_back_exactly() {
    // Recorded from server 3c93ebaf1c (`real-server/transcript-public.json`, D5 and E32).
    let claim = r#"{"task":{"id":"aad20d7d-996a-4258-ae5d-7b8a725ace3c","agent_id":"9e3acd62-ffe9-40de-b7bb-c265d8eb5c84","runtime_id":"4d56ec02-624c-408f-abc0-42388ef3cb5b","issue_id":"b3094ed3-5463-46be-a686-00b4a49e7869","workspace_id":"1d6df46c-f03a-4a39-ac20-61410bdd73ae","status":"dispatched","priority":4,"dispatched_at":"2026-11-29T16:05:15Z","started_at":null,"completed_at":null,"result":null,"error":null,"agent":{"id":"9e3acd62-ffe9-40de-b7bb-c265d8eb5c84","name":"Builder","instructions":"Fix the issue, run the tests, open a pull request.","skills":[{"name":"rust-testing-diff","content":"Run `cargo test` before you finish.","files":[{"path":"checklist.md","content":"- fmt\n- clippy\n- test\n"}]}]},"repos":[{"url":"https://github.com/example/demo.git","description":"The demo application"}],"created_at":"2026-11-29T16:00:39Z"}}"#;
    let failed = r#"{"id":"27de079a-a668-47b4-8e41-7e024f02df8b","agent_id":"9e3acd62-ffe9-40de-b7bb-c265d8eb5c84","runtime_id":"4d56ec02-624c-408f-abc0-42388ef3cb5b","issue_id":"e787a231-ac02-4ebf-94bd-d9c9cb9923ad","workspace_id":"","status":"failed","priority":3,"dispatched_at":"2026-11-29T16:05:15Z","started_at":null,"completed_at":"2026-11-29T16:05:15Z","result":null,"error":"agent crashed","created_at":"2026-11-29T16:00:39Z"}"#;

    let decoded: ClaimResponse = serde_json::from_str(claim).unwrap();
    let task = decoded.task.as_ref().unwrap();
    assert_eq!((task.record.attempt, task.record.max_attempts, &task.record.kind), (None, None, &None));
    assert_eq!(task.auth_token, None);
    assert!(!task.leader_role_resolved && task.thread_name.is_empty());
    let agent = task.agent.as_ref().unwrap();
    assert_eq!(agent.skills[0].id, None);
    assert!(agent.skill_refs.is_empty());
    assert_eq!(serde_json::to_value(&decoded).unwrap(), serde_json::from_str::<Value>(claim).unwrap());

    let row: TaskRecord = serde_json::from_str(failed).unwrap();
    assert_eq!(row.failure_reason, FailureReason::default());
    assert_eq!(row.delivered_comment_ids, None);
    assert_eq!(serde_json::to_value(&row).unwrap(), serde_json::from_str::<Value>(failed).unwrap());
}
