//! One client for both server versions: detection, the version-spanning
//! helpers, and the complete/fail answers of HEAD 1cc46b2697 read as those
//! of 3c93ebaf1c.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use multica_api::*;

/// A backend that records each call and answers it with `answer`.
#[derive(Debug)]
struct Scripted {
    calls: Mutex<Vec<Call>>,
    answer: fn(&Call) -> Result<Reply>,
}

impl Scripted {
    fn new(answer: fn(&Call) -> Result<Reply>) -> Self {
        Self { calls: Mutex::new(Vec::new()), answer }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl DaemonApi for Scripted {
    async fn call(&self, call: Call) -> Result<Reply> {
        let answer = (self.answer)(&call);
        self.calls.lock().unwrap().push(call);
        answer
    }
}

fn not_found(call: &Call) -> Error {
    Error::route_not_found(call.endpoint(), call.path().unwrap())
}

fn row(status: &str) -> Box<TaskRecord> {
    let mut record = Box::<TaskRecord>::default();
    record.id = "t-1".into();
    record.status = status.into();
    record
}

/// A backend with the 3c93ebaf1c route list: HEAD-only routes are unknown.
fn old_server(call: &Call) -> Result<Reply> {
    match call.endpoint() {
        Endpoint::ReportUsage | Endpoint::ReportTaskMessages => Ok(Reply::Done),
        Endpoint::ListWorkspaces => {
            let mut workspace = Workspace::default();
            workspace.id = "ws-1".into();
            workspace.name = "Diff".into();
            workspace.slug = "diff".into();
            Ok(Reply::Workspaces(vec![workspace]))
        }
        _ => Err(not_found(call)),
    }
}

/// A backend with the HEAD route list.
fn head_server(call: &Call) -> Result<Reply> {
    Ok(match call.endpoint() {
        Endpoint::ListDaemonWorkspaces => Reply::DaemonWorkspaces(vec![DaemonWorkspace::new("ws-1".into(), "Diff")]),
        Endpoint::ExtendPrepareLease => Reply::TaskRecord(row("dispatched")),
        Endpoint::ListWorkspaces => {
            return Err(Error::from_server_message(Method::Get, "/api/workspaces", 401, "invalid token"))
        }
        _ => Reply::Done,
    })
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
}

#[test]
fn the_probe_tells_the_versions_apart_and_reports_what_tells_nothing() {
    let probe = |answer| ServerVersion::from_probe(answer);
    let path = "/api/daemon/workspaces";
    assert_eq!(probe(Ok(Reply::DaemonWorkspaces(Vec::new()))).unwrap(), ServerVersion::Head);
    assert_eq!(
        probe(Err(Error::route_not_found(Endpoint::ListDaemonWorkspaces, path))).unwrap(),
        ServerVersion::V3c93ebaf1c
    );
    for status in [401, 403] {
        let refused = Error::from_server_message(Method::Get, path, status, "invalid token");
        assert_eq!(probe(Err(refused)).unwrap(), ServerVersion::Head, "{status}");
    }
    let down = Error::from_server_message(Method::Get, path, 503, "unavailable");
    assert_eq!(probe(Err(down)).unwrap_err().status(), Some(503));
    let handler_404 = Error::from_server_message(Method::Get, path, 404, "not found");
    assert!(probe(Err(handler_404)).is_err(), "a handler's 404 is not a missing route");

    let old = Scripted::new(old_server);
    assert_eq!(run(old.server_version()).unwrap(), ServerVersion::V3c93ebaf1c);
    assert_eq!(old.calls(), [Call::ListDaemonWorkspaces]);
    assert_eq!(run(Scripted::new(head_server).server_version()).unwrap(), ServerVersion::Head);
    assert_eq!(ServerVersion::Head.to_string(), "HEAD 1cc46b2697");
}

#[test]
fn usage_takes_the_route_of_each_version() {
    let usage = [TaskUsage {
        provider: "claude".into(),
        model: "m".into(),
        input_tokens: 5,
        output_tokens: 6,
        cache_read_tokens: 7,
        cache_write_tokens: 8,
        cost_usd_ticks: 9,
    }];
    let (runtime, task) = (RuntimeId::new("rt-1"), TaskId::new("t-1"));

    let old = Scripted::new(old_server);
    run(old.report_task_usage_on(ServerVersion::V3c93ebaf1c, &runtime, &task, "2026-11-29", &usage)).unwrap();
    let entry = UsageEntry {
        date: "2026-11-29".into(),
        provider: "claude".into(),
        model: "m".into(),
        input_tokens: 5,
        output_tokens: 6,
        cache_read_tokens: 7,
        cache_write_tokens: 8,
    };
    assert_eq!(old.calls(), [Call::ReportUsage { runtime_id: runtime.clone(), entries: vec![entry].into() }]);

    let head = Scripted::new(head_server);
    run(head.report_task_usage_on(ServerVersion::Head, &runtime, &task, "2026-11-29", &usage)).unwrap();
    assert_eq!(head.calls(), [Call::ReportTaskUsage { task_id: task, usage: usage.into() }]);
}

#[test]
fn workspaces_take_the_route_of_each_version() {
    let expected = vec![DaemonWorkspace::new("ws-1".into(), "Diff")];
    let old = Scripted::new(old_server);
    assert_eq!(run(old.list_workspaces_on(ServerVersion::V3c93ebaf1c)).unwrap(), expected);
    assert_eq!(old.calls(), [Call::ListWorkspaces]);
    let head = Scripted::new(head_server);
    assert_eq!(run(head.list_workspaces_on(ServerVersion::Head)).unwrap(), expected);
    assert_eq!(head.calls(), [Call::ListDaemonWorkspaces]);
}

#[test]
fn head_only_calls_are_harmless_where_the_route_is_missing() {
    let (runtime, task) = (RuntimeId::new("rt-1"), TaskId::new("t-1"));
    let old = Scripted::new(old_server);
    assert!(!run(old.ack_cancel_if_supported(&task, &CancelAck::default())).unwrap());
    assert_eq!(run(old.extend_prepare_lease_if_supported(&runtime, &task)).unwrap(), None);
    assert!(run(old.ack_cancel(&task, &CancelAck::default())).unwrap_err().is_route_not_found());

    let head = Scripted::new(head_server);
    assert!(run(head.ack_cancel_if_supported(&task, &CancelAck::default())).unwrap());
    assert_eq!(run(head.extend_prepare_lease_if_supported(&runtime, &task)).unwrap(), Some(*row("dispatched")));

    // Other errors are not swallowed.
    let broken = Scripted::new(|call| {
        Err(Error::from_server_message(Method::Post, call.path().unwrap(), 404, "task not found"))
    });
    assert!(run(broken.ack_cancel_if_supported(&task, &CancelAck::default())).unwrap_err().is_task_not_found());
    assert!(run(broken.extend_prepare_lease_if_supported(&runtime, &task)).unwrap_err().is_task_not_found());
}

#[test]
fn an_unchanged_row_is_the_state_conflict_of_3c93ebaf1c() {
    let task = TaskId::new("t-1");
    let answering = |status: &'static str| {
        Scripted::new(match status {
            "cancelled" => |_: &Call| Ok(Reply::TaskRecord(row("cancelled"))),
            "running" => |_: &Call| Ok(Reply::TaskRecord(row("running"))),
            "completed" => |_: &Call| Ok(Reply::TaskRecord(row("completed"))),
            "failed" => |_: &Call| Ok(Reply::TaskRecord(row("failed"))),
            _ => |_: &Call| Ok(Reply::Done),
        })
    };
    let completion = TaskCompletion::with_output("done");

    let err = run(answering("cancelled").complete_task(&task, &completion)).unwrap_err();
    assert!(err.is_task_state_conflict(), "{err}");
    assert_eq!(
        err.to_string(),
        r#"POST /api/daemon/tasks/t-1/complete returned 400: {"error":"complete task: no rows in result set"}"#
    );
    let err = run(answering("cancelled").fail_task(&task, "boom")).unwrap_err();
    assert!(err.is_task_state_conflict());
    assert!(err.to_string().contains("fail task: no rows in result set"), "{err}");
    let failure = TaskFailure::new("late").with_reason(FailureReason::Timeout);
    assert!(run(answering("completed").fail_task_with(&task, &failure)).unwrap_err().is_task_state_conflict());
    assert!(run(answering("cancelled").start_task(&task)).unwrap_err().is_task_state_conflict());
    assert!(run(answering("failed").complete_task(&task, &completion)).unwrap_err().is_task_state_conflict());

    // The moves that took effect, and backends that answer without the row.
    assert!(run(answering("completed").complete_task(&task, &completion)).is_ok());
    assert!(run(answering("failed").fail_task(&task, "boom")).is_ok());
    assert!(run(answering("failed").fail_task_with(&task, &failure)).is_ok());
    assert!(run(answering("running").start_task(&task)).is_ok());
    assert!(run(answering("done").complete_task(&task, &completion)).is_ok());
    assert!(run(answering("done").fail_task(&task, "boom")).is_ok());

    // HEAD turns a context-overflow notice sent as complete into a fail.
    let overflow = Scripted::new(|_| {
        let mut record = row("failed");
        record.failure_reason = FailureReason::ContextOverflow;
        Ok(Reply::TaskRecord(record))
    });
    assert!(run(overflow.complete_task(&task, &completion)).is_ok());
}

#[test]
fn start_complete_and_fail_answers_read_as_the_row_or_done() {
    let task = TaskId::new("t-1");
    let calls = [
        Call::StartTask { task_id: task.clone() },
        Call::CompleteTask { task_id: task.clone(), completion: TaskCompletion::default() },
        Call::FailTask { task_id: task.clone(), error: "x".into() },
        Call::FailTaskWith { task_id: task, failure: TaskFailure::new("x").with_reason(FailureReason::Timeout) },
    ];
    for call in calls {
        let request = call.to_request().unwrap();
        let answer = request.decode_response(200, br#"{"id":"t-1","status":"cancelled","error":null}"#).unwrap();
        assert_eq!(answer, Reply::TaskRecord(row("cancelled")), "{call:?}");
        // Bodies that are not a task row are accepted as before.
        for body in [&b""[..], b"ok", b"{\"status\":\"ok\"}", b"null", b"[]"] {
            assert_eq!(request.decode_response(200, body).unwrap(), Reply::Done, "{call:?} {body:?}");
        }
    }
}
