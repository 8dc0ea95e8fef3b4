//! Golden tests: every DTO decodes the server's JSON (with unknown fields and
//! nulls, as the Go client tolerates) and every request body encodes as the
//! Go client's, compared as JSON values.

#![allow(clippy::unwrap_used)]

use multica_api::*;
use serde_json::{json, Value};

/// The body a request builder produces, as a JSON value.
fn body<T>(request: Result<request::Request<T>>) -> Value {
    let request = request.unwrap();
    serde_json::from_slice(request.wire().body.as_deref().unwrap()).unwrap()
}

/// Decodes a 200 answer through the builder's own parser.
fn answer<T>(request: Result<request::Request<T>>, json: &Value) -> T {
    request.unwrap().decode_response(200, &serde_json::to_vec(json).unwrap()).unwrap()
}

/// Every field of every object set to `null`, keeping the structure of
/// nested objects and arrays (their leaves become `null`).
fn null_leaves(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), null_leaves(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(null_leaves).collect()),
        _ => Value::Null,
    }
}

/// Every top-level field set to `null`.
fn null_fields(value: &Value) -> Value {
    let Value::Object(map) = value else { panic!("not an object") };
    Value::Object(map.keys().map(|k| (k.clone(), Value::Null)).collect())
}

fn runtime_json() -> Value {
    json!({
        "id": "rt-1", "workspace_id": "ws-1", "daemon_id": "d-1", "name": "Claude (mac)",
        "runtime_mode": "local", "provider": "claude", "status": "online",
        "device_info": "mac", "metadata": {"os": "darwin"}, "last_seen_at": "2026-03-30T12:00:00Z",
        "created_at": "2026-03-30T11:00:00Z", "updated_at": "2026-03-30T12:00:00Z",
        "future_field": [1, 2, 3]
    })
}

fn record_json() -> Value {
    json!({
        "id": "t-1", "agent_id": "a-1", "runtime_id": "rt-1", "issue_id": "i-1", "workspace_id": "ws-1",
        "status": "dispatched", "priority": 2, "dispatched_at": "2026-03-30T12:00:00Z",
        "started_at": null, "completed_at": null, "result": {"output": "done"}, "error": null,
        "created_at": "2026-03-30T11:00:00Z", "trigger_comment_id": "unknown-to-us"
    })
}

fn task_json() -> Value {
    let mut task = record_json();
    let extra = json!({
        "agent": {"id": "a-1", "name": "Coder", "instructions": "Be careful",
                  "skills": [{"name": "git", "content": "# git", "files": [{"path": "a.md", "content": "x"}]}]},
        "repos": [{"url": "https://git.example/r.git", "description": "main repo"}],
        "prior_session_id": "sess-9", "prior_work_dir": "/tmp/w"
    });
    task.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    task
}

#[test]
fn register_request_encodes_as_go() {
    let request = RegisterRequest {
        workspace_id: "ws-1".into(),
        daemon_id: "d-1".into(),
        device_name: "mac".into(),
        runtimes: vec![RuntimeSpec {
            name: "Claude".into(),
            provider: "claude".into(),
            version: "1.0.3".into(),
            status: RuntimeStatus::Online,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        body(request::register(&request)),
        json!({"workspace_id": "ws-1", "daemon_id": "d-1", "device_name": "mac",
               "runtimes": [{"name": "Claude", "type": "claude", "version": "1.0.3", "status": "online"}]})
    );
}

#[test]
fn register_response_decodes_server_json() {
    let json =
        json!({"runtimes": [runtime_json()], "repos": [{"url": "u", "description": "d", "x": 1}], "extra": true});
    let response = answer(request::register(&RegisterRequest::default()), &json);
    let runtime = &response.runtimes[0];
    assert_eq!(runtime.id, "rt-1");
    assert_eq!(runtime.daemon_id, Some(DaemonId::new("d-1")));
    assert_eq!(runtime.name, "Claude (mac)");
    assert_eq!(runtime.runtime_mode, "local");
    assert_eq!(runtime.provider, "claude");
    assert_eq!(runtime.status, RuntimeStatus::Online);
    assert_eq!(runtime.metadata["os"], "darwin");
    assert_eq!(runtime.last_seen_at.as_deref(), Some("2026-03-30T12:00:00Z"));
    assert_eq!(
        response.repos,
        vec![{
            let mut built = Repo::default();
            built.url = "u".into();
            built.description = "d".into();
            built
        }]
    );
}

#[test]
fn register_response_reads_nulls_as_empty() {
    let all_null = answer(request::register(&RegisterRequest::default()), &json!({"runtimes": null, "repos": null}));
    assert_eq!(all_null, RegisterResponse::default());
    let json = json!({"runtimes": [null_leaves(&runtime_json())], "repos": []});
    let runtime = &answer(request::register(&RegisterRequest::default()), &json).runtimes[0];
    let expected_metadata = serde_json::from_value(json!({"os": null})).unwrap();
    assert_eq!(runtime, &{
        let mut built = Runtime::default();
        built.metadata = expected_metadata;
        built
    });
    assert_eq!(runtime.status, RuntimeStatus::Other(String::new()));
}

#[test]
fn deregister_and_heartbeat_bodies() {
    let ids = [RuntimeId::new("a"), RuntimeId::new("b")];
    assert_eq!(body(request::deregister(&ids)), json!({"runtime_ids": ["a", "b"]}));
    assert_eq!(body(request::send_heartbeat(&"rt-1".into())), json!({"runtime_id": "rt-1"}));
}

#[test]
fn heartbeat_response_with_and_without_ping() {
    let hb = |json: Value| answer(request::send_heartbeat(&"rt".into()), &json);
    let with_ping = hb(json!({"status": "ok", "pending_ping": {"id": "p-1", "created_at": "x"}}));
    assert_eq!(with_ping.status, "ok");
    assert_eq!(
        with_ping.pending_ping,
        Some({
            let mut built = PendingPing::default();
            built.id = "p-1".into();
            built
        })
    );
    assert_eq!(hb(json!({"status": "ok"})).pending_ping, None);
    assert_eq!(hb(json!({"status": null, "pending_ping": null})), HeartbeatResponse::default());
}

#[test]
fn claim_decodes_full_task() {
    let task = answer(request::claim_task(&"rt-1".into()), &json!({"task": task_json()})).unwrap();
    assert_eq!(task.record.id, "t-1");
    assert_eq!(task.record.status, TaskStatus::Dispatched);
    assert_eq!(task.record.priority, 2);
    assert_eq!(task.record.workspace_id, "ws-1");
    assert_eq!(task.record.result, Some(json!({"output": "done"})));
    assert_eq!(task.record.started_at, None);
    let agent = task.agent.unwrap();
    assert_eq!(agent.name, "Coder");
    assert_eq!(agent.skills[0].files[0], {
        let mut built = SkillFile::default();
        built.path = "a.md".into();
        built.content = "x".into();
        built
    });
    assert_eq!(task.repos[0].description, "main repo");
    assert_eq!(task.prior_session_id, "sess-9");
    assert_eq!(task.prior_work_dir, "/tmp/w");
}

#[test]
fn claim_null_task_is_none() {
    assert_eq!(answer(request::claim_task(&"rt".into()), &json!({"task": null})), None);
    assert_eq!(answer(request::claim_task(&"rt".into()), &json!({})), None);
}

#[test]
fn claim_reads_null_fields_as_empty() {
    let task = answer(request::claim_task(&"rt".into()), &json!({"task": null_fields(&task_json())})).unwrap();
    assert_eq!(task, Task::default());
    let task = answer(request::claim_task(&"rt".into()), &json!({"task": null_leaves(&task_json())})).unwrap();
    let agent = task.agent.unwrap();
    assert_eq!(agent.skills[0].files[0], SkillFile::default());
    assert_eq!(task.record.status, TaskStatus::Other(String::new()));
}

#[test]
fn task_encodes_back_to_server_shape() {
    let task: Task = serde_json::from_value(task_json()).unwrap();
    let mut expected = task_json();
    expected.as_object_mut().unwrap().remove("trigger_comment_id");
    assert_eq!(serde_json::to_value(&task).unwrap(), expected);
    // Optional claim fields are omitted when empty, as the server's omitempty.
    let bare = serde_json::to_value(Task::default()).unwrap();
    for key in ["agent", "repos", "prior_session_id", "prior_work_dir"] {
        assert!(bare.get(key).is_none(), "{key}");
    }
}

#[test]
fn pending_tasks_decode_and_null_list() {
    let list = answer(request::list_pending_tasks(&"rt".into()), &json!([record_json(), null_fields(&record_json())]));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].status, TaskStatus::Dispatched);
    assert_eq!(list[1], TaskRecord::default());
    assert!(answer(request::list_pending_tasks(&"rt".into()), &Value::Null).is_empty());
}

#[test]
fn usage_body_encodes_as_go() {
    let entry = UsageEntry {
        date: "2026-03-30".into(),
        provider: "claude".into(),
        model: "opus".into(),
        input_tokens: 10,
        output_tokens: 20,
        cache_read_tokens: 3,
        cache_write_tokens: i64::MAX,
    };
    assert_eq!(
        body(request::report_usage(&"rt".into(), &[entry])),
        json!({"entries": [{"date": "2026-03-30", "provider": "claude", "model": "opus", "input_tokens": 10,
                            "output_tokens": 20, "cache_read_tokens": 3, "cache_write_tokens": i64::MAX}]})
    );
}

#[test]
fn ping_result_omits_empty_output_and_error() {
    let ok = PingResult { status: PingStatus::Completed, output: "pong".into(), error: String::new(), duration_ms: 42 };
    assert_eq!(
        body(request::report_ping_result(&"rt".into(), &"p".into(), &ok)),
        json!({"status": "completed", "output": "pong", "duration_ms": 42})
    );
    let failed = PingResult { status: PingStatus::Failed, output: String::new(), error: "boom".into(), duration_ms: 0 };
    assert_eq!(
        body(request::report_ping_result(&"rt".into(), &"p".into(), &failed)),
        json!({"status": "failed", "error": "boom", "duration_ms": 0})
    );
}

#[test]
fn task_status_decodes_known_unknown_and_null() {
    let status = |json: Value| answer(request::get_task_status(&"t".into()), &json);
    assert_eq!(status(json!({"status": "cancelled"})), TaskStatus::Cancelled);
    assert_eq!(status(json!({"status": "paused"})), TaskStatus::Other("paused".into()));
    assert_eq!(status(json!({"status": null})), TaskStatus::Other(String::new()));
    assert_eq!(TaskStatus::Other("paused".into()).to_string(), "paused");
    // An escape makes serde_json hand over a copied string, not a borrowed one.
    let escaped =
        request::get_task_status(&"t".into()).unwrap().decode_response(200, br#"{"status":"cancel\u006ced"}"#);
    assert_eq!(escaped.unwrap(), TaskStatus::Cancelled);
    let number = request::get_task_status(&"t".into()).unwrap().decode_response(200, br#"{"status":5}"#);
    assert!(matches!(number, Err(Error::Decode { .. })), "{number:?}");
}

#[test]
fn start_and_claim_send_empty_object() {
    assert_eq!(body(request::start_task(&"t".into())), json!({}));
    assert_eq!(body(request::claim_task(&"rt".into())), json!({}));
    assert_eq!(body(request::claim_pairing_session("tok")), json!({}));
    assert_eq!(request::get_task_status(&"t".into()).unwrap().wire().body, None);
}

#[test]
fn progress_fail_bodies() {
    let progress = TaskProgress { summary: "Running agent".into(), step: 1, total: 2 };
    assert_eq!(
        body(request::report_progress(&"t".into(), &progress)),
        json!({"summary": "Running agent", "step": 1, "total": 2})
    );
    assert_eq!(body(request::fail_task(&"t".into(), "agent blocked")), json!({"error": "agent blocked"}));
}

#[test]
fn complete_sends_optional_keys_only_when_set() {
    assert_eq!(body(request::complete_task(&"t".into(), &TaskCompletion::with_output(""))), json!({"output": ""}));
    let full = TaskCompletion {
        output: "done".into(),
        branch_name: "fix/x".into(),
        session_id: "s".into(),
        work_dir: "/w".into(),
        pr_url: "https://example.com/pr/1".into(),
        ..Default::default()
    };
    assert_eq!(
        body(request::complete_task(&"t".into(), &full)),
        json!({"output": "done", "branch_name": "fix/x", "pr_url": "https://example.com/pr/1", "session_id": "s", "work_dir": "/w"})
    );
}

#[test]
fn messages_omit_empty_fields_as_go() {
    let mut input = serde_json::Map::new();
    input.insert("command".into(), json!("ls"));
    let messages = [
        TaskMessage::text(1, "hello"),
        TaskMessage { seq: 2, kind: MessageKind::ToolUse, tool: "Bash".into(), input, ..TaskMessage::default() },
        TaskMessage {
            seq: 3,
            kind: MessageKind::ToolResult,
            tool: "Bash".into(),
            output: "a\nb".into(),
            ..Default::default()
        },
        TaskMessage { seq: 4, kind: MessageKind::Error, content: "boom".into(), ..TaskMessage::default() },
    ];
    assert_eq!(
        body(request::report_task_messages(&"t".into(), &messages)),
        json!({"messages": [
            {"seq": 1, "type": "text", "content": "hello"},
            {"seq": 2, "type": "tool_use", "tool": "Bash", "input": {"command": "ls"}},
            {"seq": 3, "type": "tool_result", "tool": "Bash", "output": "a\nb"},
            {"seq": 4, "type": "error", "content": "boom"}
        ]})
    );
}

#[test]
fn stored_messages_decode() {
    let json = json!([
        {"id": "m1", "task_id": "t", "seq": 1, "type": "text", "content": "hi", "created_at": "x"},
        {"task_id": "t", "seq": 2, "type": "tool_use", "tool": "Read", "input": {"path": "a"}, "output": null},
        {"task_id": null, "seq": null, "type": null, "tool": null, "content": null, "input": null, "output": null}
    ]);
    let list = answer(request::list_task_messages(&"t".into()), &json);
    assert_eq!(list[0].task_id, "t");
    assert_eq!(list[0].message, TaskMessage::text(1, "hi"));
    assert_eq!(list[1].message.kind, MessageKind::ToolUse);
    assert_eq!(list[1].message.input["path"], "a");
    assert_eq!(list[2], StoredTaskMessage::default());
}

#[test]
fn workspaces_decode() {
    let workspace = json!({
        "id": "ws-1", "name": "Acme", "slug": "acme", "description": null, "context": "ctx",
        "settings": {"theme": "dark"}, "repos": [{"url": "u", "description": "d"}], "issue_prefix": "ACM",
        "created_at": "c", "updated_at": "u", "member_count": 3
    });
    let list = answer(request::list_workspaces(), &json!([workspace.clone(), null_fields(&workspace)]));
    assert_eq!(list[0].id, "ws-1");
    assert_eq!(list[0].name, "Acme");
    assert_eq!(list[0].description, None);
    assert_eq!(list[0].context.as_deref(), Some("ctx"));
    assert_eq!(list[0].settings["theme"], "dark");
    assert_eq!(list[0].issue_prefix, "ACM");
    assert_eq!(list[1], Workspace::default());
}

#[test]
fn pairing_request_and_session() {
    let request = PairingRequest {
        daemon_id: "d".into(),
        device_name: "mac".into(),
        runtime_name: "Claude".into(),
        runtime_type: "claude".into(),
        runtime_version: "1.0".into(),
    };
    assert_eq!(
        body(request::create_pairing_session(&request)),
        json!({"daemon_id": "d", "device_name": "mac", "runtime_name": "Claude",
               "runtime_type": "claude", "runtime_version": "1.0"})
    );
    let session = json!({
        "token": "tok", "daemon_id": "d", "device_name": "mac", "runtime_name": "Claude",
        "runtime_type": "claude", "runtime_version": "1.0", "workspace_id": null, "status": "pending",
        "approved_at": null, "claimed_at": null, "expires_at": "e", "created_at": "c", "updated_at": "u",
        "link_url": "https://app/pair/tok"
    });
    let req = request::create_pairing_session(&request).unwrap();
    let decoded = req.decode_response(201, &serde_json::to_vec(&session).unwrap()).unwrap();
    assert_eq!(decoded.status, PairingStatus::Pending);
    assert_eq!(decoded.workspace_id, None);
    assert_eq!(decoded.link_url.as_deref(), Some("https://app/pair/tok"));
    assert_eq!(serde_json::to_value(&decoded).unwrap(), session);
    assert_eq!(answer(request::get_pairing_session("tok"), &null_fields(&session)), PairingSession::default());
}

#[test]
fn ignored_results_accept_any_success_body() {
    for request in [
        request::start_task(&"t".into()),
        request::deregister(&["r".into()]),
        request::report_progress(&"t".into(), &TaskProgress::default()),
    ] {
        let request = request.unwrap();
        assert!(request.decode_response(200, b"not json at all").is_ok());
        assert!(request.decode_response(204, b"").is_ok());
    }
}

#[test]
fn bad_json_is_a_decode_error_naming_the_call() {
    let err = request::claim_task(&"rt 1".into()).unwrap().decode_response(200, b"{\"task\":").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().starts_with("POST /api/daemon/runtimes/rt%201/tasks/claim: cannot decode"), "{err}");
    let err = request::get_task_status(&"t".into()).unwrap().decode_response(200, b"[1]").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }));
}

#[test]
fn error_status_is_the_go_request_error() {
    let request = request::register(&RegisterRequest::default()).unwrap();
    let err = request.decode_response(404, b"{\"error\":\"workspace not found\"}\n").unwrap_err();
    assert_eq!(err.to_string(), r#"POST /api/daemon/register returned 404: {"error":"workspace not found"}"#);
    assert!(err.is_workspace_not_found());
    let redirect = request.decode_response(302, b"").unwrap_err();
    assert_eq!(redirect.status(), Some(302));
}
