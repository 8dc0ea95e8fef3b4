//! The conformance suite: contract tests written once against
//! `&dyn DaemonApi`, run on every backend (feature `conformance`).
//!
//! A backend passes when [`run_all`] returns without panicking. The tests need a little
//! help to set up state that only the server's admin side can create
//! (workspaces, agents, queued tasks, pings): that is the [`Fixture`] trait,
//! which the fake implements; a third-party transport runs the suite over the
//! fake's HTTP server and passes the fake as the fixture.
//!
//! The fixture also says which [`ServerVersion`] the backend speaks: where
//! server HEAD 1cc46b2697 has another rule than 3c93ebaf1c (complete and
//! fail of a task they cannot act on answer 200 with the row unchanged, IDs
//! that are not UUIDs are 400 `invalid <field>`, unknown ones 404, usage,
//! ping results and pairing are gone), the suite asserts that version's rule.

use async_trait::async_trait;

use crate::api::DaemonApi;
use crate::dto::{
    MessageKind, PairingRequest, PairingStatus, PingResult, PingStatus, RegisterRequest, RuntimeSpec, RuntimeStatus,
    Skill, TaskCompletion, TaskMessage, TaskProgress, TaskStatus,
};
use crate::dto::{Repo, Runtime, TaskAgent, UsageEntry};
use crate::error::Error;
use crate::error::Result;
use crate::ids::{AgentId, IssueId, PingId, RuntimeId, TaskId, WorkspaceId};
use crate::{Call, DaemonApiExt, Reply, ServerVersion};

/// A task to put in a runtime's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewTask {
    /// The runtime whose queue it joins.
    pub runtime_id: RuntimeId,
    /// The agent that runs it.
    pub agent_id: AgentId,
    /// The issue it works on.
    pub issue_id: IssueId,
    /// Higher is claimed first.
    pub priority: i64,
}

/// Server-side set-up and inspection the suite needs beyond the daemon API.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The server version whose rules the backend behind this fixture
    /// follows (default 3c93ebaf1c).
    fn version(&self) -> ServerVersion {
        ServerVersion::V3c93ebaf1c
    }
    /// Creates a workspace with these repositories.
    async fn create_workspace(&self, name: &str, repos: &[Repo]) -> Result<WorkspaceId>;
    /// Creates an agent in a workspace (`agent.id` is ignored; the new ID is returned).
    async fn create_agent(&self, workspace_id: &WorkspaceId, agent: &TaskAgent) -> Result<AgentId>;
    /// Queues a task; its workspace is the runtime's.
    async fn enqueue_task(&self, task: &NewTask) -> Result<TaskId>;
    /// Cancels a task, as reassigning or closing its issue does.
    async fn cancel_task(&self, task_id: &TaskId) -> Result<()>;
    /// Asks a runtime to answer a ping at its next heartbeat.
    async fn create_ping(&self, runtime_id: &RuntimeId) -> Result<PingId>;
    /// The stored usage rows of a runtime, in any order.
    async fn usage(&self, runtime_id: &RuntimeId) -> Result<Vec<UsageEntry>>;
    /// The stored runtime, if it exists.
    async fn runtime(&self, runtime_id: &RuntimeId) -> Result<Option<Runtime>>;
}

/// Runs every contract test in order, each on fresh state (its own
/// workspace). A failing check panics, like `assert!` in a `#[test]`, with
/// a message naming the call that misbehaved.
pub async fn run_all(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    for (_, test) in TESTS {
        test(api, fixture).await;
    }
}

/// A contract test: a plain async function of the backend and the fixture.
pub type ContractTest = for<'a> fn(&'a dyn DaemonApi, &'a dyn Fixture) -> BoxFuture<'a>;

/// The future a [`ContractTest`] returns.
pub type BoxFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

macro_rules! contract_tests {
    ($($name:ident),+ $(,)?) => {
        /// Every contract test with its name, for runners that report each.
        pub const TESTS: &[(&str, ContractTest)] = &[$((stringify!($name), |api, fixture| Box::pin($name(api, fixture))),)+];
    };
}

contract_tests![
    register_names_runtimes_like_the_server,
    register_is_an_upsert_by_workspace_daemon_and_provider,
    register_rejects_missing_fields,
    register_returns_workspace_repos,
    deregister_marks_runtimes_offline_and_skips_unknown,
    heartbeat_marks_online_and_rejects_unknown_runtimes,
    pings_are_handed_out_once_oldest_first,
    claim_returns_none_when_queue_empty,
    claim_orders_by_priority_then_creation,
    claim_fills_agent_repos_and_workspace,
    task_lifecycle_end_to_end,
    transitions_from_wrong_states_are_rejected,
    fail_works_from_dispatched_and_running,
    unknown_tasks_are_not_found,
    messages_are_stored_and_listed_by_seq,
    usage_is_upserted_and_bad_dates_skipped,
    claim_resumes_prior_session_of_same_agent_and_issue,
    cancelled_tasks_are_never_claimed_or_started,
    reports_for_unknown_ids_answer_ok,
    pending_lists_queued_and_dispatched_only,
    list_workspaces_includes_the_workspace,
    pairing_sessions_are_created_and_read,
    empty_ids_are_invalid_arguments,
    retryable_failures_create_the_next_attempt_at_head,
    batch_claim_prepare_lease_and_waiting_are_head_routes,
];

/// A workspace with one agent and one registered runtime.
struct Env {
    workspace_id: WorkspaceId,
    agent_id: AgentId,
    runtime_id: RuntimeId,
    daemon_id: String,
}

fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what}: unexpected error: {err}"),
    }
}

fn err<T: std::fmt::Debug>(result: Result<T>, what: &str) -> Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(err) => err,
    }
}

fn assert_server_error(err: &Error, status: u16, message: &str, what: &str) {
    assert_eq!(err.status(), Some(status), "{what}: {err}");
    assert_eq!(err.server_message().as_deref(), Some(message), "{what}: {err}");
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An ID nobody has: any string at 3c93ebaf1c (where a non-UUID names no
/// row), a fresh UUID at HEAD (where a non-UUID is its own 400).
fn unknown_id(fixture: &dyn Fixture, prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    if is_head(fixture) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("ffffffff-{:04x}-4fff-8fff-{n:012x}", std::process::id() & 0xffff)
    } else {
        unique(prefix)
    }
}

fn is_head(fixture: &dyn Fixture) -> bool {
    fixture.version() == ServerVersion::Head
}

/// A call to a route HEAD removed: Go's router 404.
fn assert_route_removed<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    let error = err(result, what);
    assert!(error.is_route_not_found(), "{what}: {error}");
}

fn runtime_spec(provider: &str) -> RuntimeSpec {
    RuntimeSpec {
        name: String::new(),
        provider: provider.into(),
        version: "1.0.0".into(),
        status: RuntimeStatus::Online,
        ..Default::default()
    }
}

async fn setup(api: &dyn DaemonApi, fixture: &dyn Fixture) -> Env {
    let repos = [Repo { url: "https://git.example/app.git".into(), description: "the app".into() }];
    let workspace_id = ok(fixture.create_workspace(&unique("ws"), &repos).await, "create workspace");
    let agent = TaskAgent {
        name: "Coder".into(),
        instructions: "Fix the issue.".into(),
        skills: vec![Skill { name: "git".into(), content: "# git".into(), files: Vec::new(), ..Default::default() }],
        ..TaskAgent::default()
    };
    let agent_id = ok(fixture.create_agent(&workspace_id, &agent).await, "create agent");
    let daemon_id = unique("daemon");
    let request = RegisterRequest {
        workspace_id: workspace_id.clone(),
        daemon_id: daemon_id.as_str().into(),
        device_name: "devbox".into(),
        runtimes: vec![runtime_spec("claude")],
        ..Default::default()
    };
    let response = ok(api.register(&request).await, "register");
    assert_eq!(response.runtimes.len(), 1, "register answers one runtime per runtime sent");
    let runtime_id = response.runtimes[0].id.clone();
    Env { workspace_id, agent_id, runtime_id, daemon_id }
}

impl Env {
    async fn enqueue(&self, fixture: &dyn Fixture, issue: &str, priority: i64) -> TaskId {
        let task = NewTask {
            runtime_id: self.runtime_id.clone(),
            agent_id: self.agent_id.clone(),
            issue_id: issue.into(),
            priority,
        };
        ok(fixture.enqueue_task(&task).await, "enqueue task")
    }

    async fn claim(&self, api: &dyn DaemonApi) -> crate::dto::Task {
        match ok(api.claim_task(&self.runtime_id).await, "claim") {
            Some(task) => task,
            None => panic!("claim: expected a task, got none"),
        }
    }
}

/// Empty names become the provider plus the device; type and status keep
/// the server's defaults.
pub async fn register_names_runtimes_like_the_server(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let request = RegisterRequest {
        workspace_id: env.workspace_id.clone(),
        daemon_id: unique("daemon").as_str().into(),
        device_name: "devbox".into(),
        runtimes: vec![
            runtime_spec("codex"),
            RuntimeSpec { name: "Mine".into(), ..runtime_spec("claude") },
            RuntimeSpec { status: RuntimeStatus::Offline, ..runtime_spec("") },
        ],
        ..Default::default()
    };
    let runtimes = ok(api.register(&request).await, "register").runtimes;
    assert_eq!(runtimes.len(), 3);
    assert_eq!(runtimes[0].name, "codex (devbox)");
    assert_eq!(runtimes[0].provider, "codex");
    assert_eq!(runtimes[0].status, RuntimeStatus::Online);
    assert_eq!(runtimes[0].runtime_mode, "local");
    assert_eq!(runtimes[0].workspace_id, env.workspace_id);
    assert_eq!(runtimes[0].daemon_id.as_ref().map(|d| d.as_str()), Some(request.daemon_id.as_str()));
    assert_eq!(runtimes[1].name, "Mine");
    assert_eq!(runtimes[2].provider, "unknown");
    assert_eq!(runtimes[2].status, RuntimeStatus::Offline);
}

/// Registering again with the same workspace, daemon and provider keeps the
/// runtime's ID.
pub async fn register_is_an_upsert_by_workspace_daemon_and_provider(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let request = RegisterRequest {
        workspace_id: env.workspace_id.clone(),
        daemon_id: env.daemon_id.as_str().into(),
        device_name: "devbox".into(),
        runtimes: vec![runtime_spec("claude"), runtime_spec("codex")],
        ..Default::default()
    };
    let runtimes = ok(api.register(&request).await, "register again").runtimes;
    assert_eq!(runtimes[0].id, env.runtime_id, "same provider keeps its runtime");
    assert_ne!(runtimes[1].id, env.runtime_id, "another provider is another runtime");
}

/// The server's 400s and 404 for bad registrations.
pub async fn register_rejects_missing_fields(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let good = RegisterRequest {
        workspace_id: env.workspace_id.clone(),
        daemon_id: "d".into(),
        device_name: "devbox".into(),
        runtimes: vec![runtime_spec("claude")],
        ..Default::default()
    };
    let no_runtime = if is_head(fixture) {
        "at least one runtime or failed profile is required"
    } else {
        "at least one runtime is required"
    };
    let mut cases = vec![
        (RegisterRequest { daemon_id: "".into(), ..good.clone() }, 400, "daemon_id is required"),
        (RegisterRequest { workspace_id: "".into(), ..good.clone() }, 400, "workspace_id is required"),
        (RegisterRequest { runtimes: Vec::new(), ..good.clone() }, 400, no_runtime),
        (
            RegisterRequest { workspace_id: unknown_id(fixture, "missing").into(), ..good.clone() },
            404,
            "workspace not found",
        ),
    ];
    if is_head(fixture) {
        cases.push((
            RegisterRequest { workspace_id: "not-a-uuid".into(), ..good.clone() },
            400,
            "invalid workspace_id",
        ));
    }
    for (request, status, message) in cases {
        let error = err(api.register(&request).await, message);
        assert_server_error(&error, status, message, "register");
    }
    let gone = unknown_id(fixture, "gone");
    let error = err(api.register(&RegisterRequest { workspace_id: gone.into(), ..good }).await, "404");
    assert!(error.is_workspace_not_found(), "{error}");
}

/// The register answer carries the workspace's repositories.
pub async fn register_returns_workspace_repos(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let request = RegisterRequest {
        workspace_id: env.workspace_id.clone(),
        daemon_id: env.daemon_id.as_str().into(),
        device_name: "devbox".into(),
        runtimes: vec![runtime_spec("claude")],
        ..Default::default()
    };
    let repos = ok(api.register(&request).await, "register").repos;
    assert_eq!(repos, vec![Repo { url: "https://git.example/app.git".into(), description: "the app".into() }]);
}

/// Deregister takes runtimes offline, skips unknown IDs and needs at least one.
pub async fn deregister_marks_runtimes_offline_and_skips_unknown(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    ok(api.deregister(&[env.runtime_id.clone(), unknown_id(fixture, "unknown").into()]).await, "deregister");
    let runtime = ok(fixture.runtime(&env.runtime_id).await, "inspect runtime");
    assert_eq!(runtime.map(|r| r.status), Some(RuntimeStatus::Offline));
    let error = err(api.deregister(&[]).await, "empty deregister");
    assert_server_error(&error, 400, "runtime_ids is required", "deregister");
    if is_head(fixture) {
        let error = err(api.deregister(&["not-a-uuid".into()]).await, "malformed deregister");
        assert_server_error(&error, 400, "invalid runtime_ids", "deregister");
    }
}

/// A heartbeat brings a runtime back online; unknown runtimes are classified.
pub async fn heartbeat_marks_online_and_rejects_unknown_runtimes(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    ok(api.deregister(std::slice::from_ref(&env.runtime_id)).await, "deregister");
    let answer = ok(api.send_heartbeat(&env.runtime_id).await, "heartbeat");
    assert_eq!(answer.status, "ok");
    assert_eq!(answer.pending_ping, None);
    let runtime = ok(fixture.runtime(&env.runtime_id).await, "inspect runtime");
    assert_eq!(runtime.map(|r| r.status), Some(RuntimeStatus::Online));
    let error = err(api.send_heartbeat(&unknown_id(fixture, "unknown").into()).await, "unknown runtime");
    assert!(error.is_runtime_not_found(), "{error}");
    if is_head(fixture) {
        assert_server_error(&error, 404, "runtime not found", "heartbeat");
        let error = err(api.send_heartbeat(&"not-a-uuid".into()).await, "malformed runtime");
        assert_server_error(&error, 400, "invalid runtime_id", "heartbeat");
    }
    let error = err(api.send_heartbeat(&"".into()).await, "empty runtime");
    assert_server_error(&error, 400, "runtime_id is required", "heartbeat");
}

/// Each ping is handed out by exactly one heartbeat, oldest first.
pub async fn pings_are_handed_out_once_oldest_first(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    if is_head(fixture) {
        // HEAD removed pings: no heartbeat hands one out, and results are 404.
        let answer = ok(api.send_heartbeat(&env.runtime_id).await, "heartbeat");
        assert_eq!(answer.pending_ping, None);
        let result = PingResult { status: PingStatus::Completed, ..PingResult::default() };
        assert_route_removed(api.report_ping_result(&env.runtime_id, &"0".repeat(32).into(), &result).await, "ping");
        return;
    }
    let first = ok(fixture.create_ping(&env.runtime_id).await, "create ping");
    let second = ok(fixture.create_ping(&env.runtime_id).await, "create ping");
    let ping = |answer: crate::dto::HeartbeatResponse| answer.pending_ping.map(|p| p.id);
    assert_eq!(ping(ok(api.send_heartbeat(&env.runtime_id).await, "hb 1")), Some(first.clone()));
    assert_eq!(ping(ok(api.send_heartbeat(&env.runtime_id).await, "hb 2")), Some(second));
    assert_eq!(ping(ok(api.send_heartbeat(&env.runtime_id).await, "hb 3")), None);
    let result =
        PingResult { status: PingStatus::Completed, output: "pong".into(), error: String::new(), duration_ms: 12 };
    ok(api.report_ping_result(&env.runtime_id, &first, &result).await, "ping result");
}

/// Nothing queued, or an unknown runtime: `{"task": null}`.
pub async fn claim_returns_none_when_queue_empty(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    assert_eq!(ok(api.claim_task(&env.runtime_id).await, "claim"), None);
    let unknown = unknown_id(fixture, "unknown").into();
    if is_head(fixture) {
        let error = err(api.claim_task(&unknown).await, "claim unknown");
        assert_server_error(&error, 404, "runtime not found", "claim");
    } else {
        assert_eq!(ok(api.claim_task(&unknown).await, "claim unknown"), None);
    }
}

/// Higher priority first; equal priorities in creation order.
pub async fn claim_orders_by_priority_then_creation(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let low = env.enqueue(fixture, "issue-low", 0).await;
    let high_a = env.enqueue(fixture, "issue-a", 5).await;
    let high_b = env.enqueue(fixture, "issue-b", 5).await;
    let order: Vec<TaskId> = [env.claim(api).await, env.claim(api).await, env.claim(api).await]
        .into_iter()
        .map(|task| task.record.id)
        .collect();
    assert_eq!(order, vec![high_a, high_b, low]);
    assert_eq!(ok(api.claim_task(&env.runtime_id).await, "claim drained"), None);
}

/// A claimed task is dispatched and carries agent, repos and workspace.
pub async fn claim_fills_agent_repos_and_workspace(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let id = env.enqueue(fixture, "issue-1", 1).await;
    let task = env.claim(api).await;
    assert_eq!(task.record.id, id);
    assert_eq!(task.record.status, TaskStatus::Dispatched);
    assert!(task.record.dispatched_at.is_some(), "dispatched_at is set");
    assert_eq!(task.record.workspace_id, env.workspace_id);
    assert_eq!(task.record.runtime_id, env.runtime_id);
    assert_eq!(task.record.issue_id, "issue-1");
    let agent = task.agent.expect("claim carries the agent");
    assert_eq!(agent.id, env.agent_id);
    assert_eq!(agent.name, "Coder");
    assert_eq!(agent.instructions, "Fix the issue.");
    assert_eq!(agent.skills[0].name, "git");
    if is_head(fixture) {
        // HEAD follows the agent's skills with those built into the server (`"id": ""`).
        assert!(agent.skills[1..].iter().all(|s| s.id.as_deref() == Some("")), "built-in skills follow");
    } else {
        assert_eq!(agent.skills.len(), 1);
    }
    assert_eq!(task.repos.len(), 1);
    assert_eq!(task.prior_session_id, "");
    if is_head(fixture) {
        assert_eq!((task.record.attempt, task.record.max_attempts), (Some(1), Some(2)));
        let token = task.auth_token.expect("HEAD mints a task token per claim");
        assert!(token.expose().starts_with("mat_"), "auth_token is a task token");
    }
}

/// queued → dispatched → running → completed, seen through status calls.
pub async fn task_lifecycle_end_to_end(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let id = env.enqueue(fixture, "issue-1", 0).await;
    assert_eq!(ok(api.get_task_status(&id).await, "status"), TaskStatus::Queued);
    env.claim(api).await;
    assert_eq!(ok(api.get_task_status(&id).await, "status"), TaskStatus::Dispatched);
    ok(api.start_task(&id).await, "start");
    assert_eq!(ok(api.get_task_status(&id).await, "status"), TaskStatus::Running);
    for step in 1..=2 {
        let progress = TaskProgress { summary: format!("step {step}"), step, total: 2 };
        ok(api.report_progress(&id, &progress).await, "progress");
    }
    let completion = TaskCompletion { output: "done".into(), session_id: "s-1".into(), ..TaskCompletion::default() };
    ok(api.complete_task(&id, &completion).await, "complete");
    assert_eq!(ok(api.get_task_status(&id).await, "status"), TaskStatus::Completed);
}

/// Start needs dispatched, complete needs running, fail needs either; the
/// server answers 400 with its SQL error otherwise.
pub async fn transitions_from_wrong_states_are_rejected(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let queued = env.enqueue(fixture, "issue-q", 0).await;
    let error = err(api.start_task(&queued).await, "start queued");
    assert_server_error(&error, 400, "start task: no rows in result set", "start");
    let dispatched = env.enqueue(fixture, "issue-d", 9).await;
    env.claim(api).await;
    let complete = Call::CompleteTask { task_id: dispatched.clone(), completion: TaskCompletion::with_output("x") };
    assert_unchanged_at_head(api, fixture, complete, TaskStatus::Dispatched, "complete dispatched").await;
    // The typed method reads both versions' answers as the same state conflict.
    let error = err(api.complete_task(&dispatched, &TaskCompletion::with_output("x")).await, "complete dispatched");
    assert_server_error(&error, 400, "complete task: no rows in result set", "complete");
    assert!(error.is_task_state_conflict(), "{error}");
    assert_eq!(ok(api.get_task_status(&dispatched).await, "status"), TaskStatus::Dispatched);
    ok(api.start_task(&dispatched).await, "start");
    let error = err(api.start_task(&dispatched).await, "start twice");
    assert_server_error(&error, 400, "start task: no rows in result set", "start");
    ok(api.complete_task(&dispatched, &TaskCompletion::with_output("x")).await, "complete");
    for (task, what, status) in
        [(&dispatched, "fail completed", TaskStatus::Completed), (&queued, "fail queued", TaskStatus::Queued)]
    {
        let fail = Call::FailTask { task_id: task.clone(), error: "late".into() };
        assert_unchanged_at_head(api, fixture, fail, status.clone(), what).await;
        let error = err(api.fail_task(task, "late").await, what);
        assert_server_error(&error, 400, "fail task: no rows in result set", "fail");
        assert_eq!(ok(api.get_task_status(task).await, "status"), status, "{what} leaves the task as it was");
    }
}

/// On the wire, HEAD answers a complete or fail it cannot act on with 200
/// and the row unchanged (3c93ebaf1c: the 400 the typed methods give on
/// both versions, checked by the caller).
async fn assert_unchanged_at_head(
    api: &dyn DaemonApi,
    fixture: &dyn Fixture,
    call: Call,
    status: TaskStatus,
    what: &str,
) {
    if !is_head(fixture) {
        return;
    }
    match ok(api.call(call).await, what) {
        Reply::TaskRecord(row) => assert_eq!(row.status, status, "{what}: HEAD answers the row unchanged"),
        other => panic!("{what}: expected the unchanged row, got {other:?}"),
    }
}

/// Fail is accepted from dispatched and from running.
pub async fn fail_works_from_dispatched_and_running(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let first = env.enqueue(fixture, "issue-1", 2).await;
    let second = env.enqueue(fixture, "issue-2", 1).await;
    env.claim(api).await;
    ok(api.fail_task(&first, "agent blocked").await, "fail dispatched");
    env.claim(api).await;
    ok(api.start_task(&second).await, "start");
    ok(api.fail_task(&second, "agent crashed").await, "fail running");
    assert_eq!(ok(api.get_task_status(&first).await, "status"), TaskStatus::Failed);
    assert_eq!(ok(api.get_task_status(&second).await, "status"), TaskStatus::Failed);
}

/// Unknown tasks: 404 for status and non-empty message batches, 400 for
/// transitions (the server's update matches no row).
pub async fn unknown_tasks_are_not_found(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let unknown: TaskId = unknown_id(fixture, "no-such-task").into();
    let error = err(api.get_task_status(&unknown).await, "status");
    assert!(error.is_task_not_found(), "{error}");
    assert_server_error(&error, 404, "task not found", "status");
    let error = err(api.report_task_messages(&unknown, [TaskMessage::text(1, "x")]).await, "messages");
    assert!(error.is_task_not_found(), "{error}");
    let start = err(api.start_task(&unknown).await, "start");
    let complete = err(api.complete_task(&unknown, &TaskCompletion::default()).await, "complete");
    let fail = err(api.fail_task(&unknown, "x").await, "fail");
    if is_head(fixture) {
        // HEAD looks the task up first: 404, and 400 for an ID that is no UUID.
        for (error, what) in [(start, "start"), (complete, "complete"), (fail, "fail")] {
            assert_server_error(&error, 404, "task not found", what);
        }
        let malformed: TaskId = "not-a-uuid".into();
        let error = err(api.start_task(&malformed).await, "start malformed");
        assert_server_error(&error, 400, "invalid task_id", "start");
        let error = err(api.get_task_status(&malformed).await, "status malformed");
        assert_server_error(&error, 400, "invalid task_id", "status");
    } else {
        assert_server_error(&start, 400, "start task: no rows in result set", "start");
        assert_server_error(&complete, 400, "complete task: no rows in result set", "complete");
        assert_server_error(&fail, 400, "fail task: no rows in result set", "fail");
    }
}

/// Messages are stored with every field and listed by seq ascending.
pub async fn messages_are_stored_and_listed_by_seq(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let id = env.enqueue(fixture, "issue-1", 0).await;
    env.claim(api).await;
    let mut input = serde_json::Map::new();
    input.insert("command".into(), serde_json::Value::from("ls"));
    let tool_use = TaskMessage { seq: 2, kind: MessageKind::ToolUse, tool: "Bash".into(), input, ..Default::default() };
    let tool_result = TaskMessage {
        seq: 3,
        kind: MessageKind::ToolResult,
        tool: "Bash".into(),
        output: "a.rs".into(),
        ..Default::default()
    };
    ok(api.report_task_messages(&id, [tool_result.clone(), tool_use.clone()]).await, "batch 1");
    ok(api.report_task_messages(&id, [TaskMessage::text(1, "hello")]).await, "batch 2");
    ok(api.report_task_messages(&id, []).await, "empty batch");
    let stored = ok(api.list_task_messages(&id).await, "list");
    assert!(stored.iter().all(|m| m.task_id == id));
    let messages: Vec<TaskMessage> = stored.into_iter().map(|m| m.message).collect();
    assert_eq!(messages, vec![TaskMessage::text(1, "hello"), tool_use, tool_result]);
    ok(api.report_task_messages(&unknown_id(fixture, "unknown").into(), []).await, "empty batch of unknown task");
}

/// Usage rows are upserted by (date, provider, model); bad dates are skipped.
pub async fn usage_is_upserted_and_bad_dates_skipped(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    if is_head(fixture) {
        // HEAD moved usage to the task (`POST /tasks/{id}/usage`).
        assert_route_removed(api.report_usage(&env.runtime_id, []).await, "runtime usage");
        return;
    }
    let entry = |date: &str, model: &str, input_tokens| crate::dto::UsageEntry {
        date: date.into(),
        provider: "claude".into(),
        model: model.into(),
        input_tokens,
        output_tokens: 2,
        cache_read_tokens: 3,
        cache_write_tokens: 4,
    };
    ok(
        api.report_usage(&env.runtime_id, [entry("2026-03-30", "opus", 10), entry("2026-03-30", "haiku", 1)]).await,
        "usage",
    );
    ok(
        api.report_usage(&env.runtime_id, [entry("2026-03-30", "opus", 25), entry("30/03/2026", "opus", 99)]).await,
        "usage",
    );
    let mut rows = ok(fixture.usage(&env.runtime_id).await, "inspect usage");
    rows.sort_by(|a, b| a.model.cmp(&b.model));
    assert_eq!(rows, vec![entry("2026-03-30", "haiku", 1), entry("2026-03-30", "opus", 25)]);
}

/// A new task of the same agent and issue resumes the last completed one.
pub async fn claim_resumes_prior_session_of_same_agent_and_issue(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let first = env.enqueue(fixture, "issue-1", 0).await;
    env.claim(api).await;
    ok(api.start_task(&first).await, "start");
    let completion = TaskCompletion {
        output: "done".into(),
        session_id: "sess-1".into(),
        work_dir: "/w/1".into(),
        ..Default::default()
    };
    ok(api.complete_task(&first, &completion).await, "complete");
    env.enqueue(fixture, "issue-1", 0).await;
    env.enqueue(fixture, "issue-2", 0).await;
    let same_issue = env.claim(api).await;
    assert_eq!(same_issue.prior_session_id, "sess-1");
    assert_eq!(same_issue.prior_work_dir, "/w/1");
    let other_issue = env.claim(api).await;
    assert_eq!(other_issue.prior_session_id, "");
    assert_eq!(other_issue.prior_work_dir, "");
}

/// Cancelled tasks leave the queue, and a cancelled dispatched task cannot start.
pub async fn cancelled_tasks_are_never_claimed_or_started(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let queued = env.enqueue(fixture, "issue-1", 5).await;
    let dispatched = env.enqueue(fixture, "issue-2", 1).await;
    ok(fixture.cancel_task(&queued).await, "cancel queued");
    assert_eq!(env.claim(api).await.record.id, dispatched);
    ok(fixture.cancel_task(&dispatched).await, "cancel dispatched");
    assert_eq!(ok(api.get_task_status(&dispatched).await, "status"), TaskStatus::Cancelled);
    let error = err(api.start_task(&dispatched).await, "start cancelled");
    assert_server_error(&error, 400, "start task: no rows in result set", "start");
    assert_eq!(ok(api.claim_task(&env.runtime_id).await, "claim"), None);
}

/// Progress, usage and ping results answer ok for IDs the server does not know.
pub async fn reports_for_unknown_ids_answer_ok(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let task: TaskId = unknown_id(fixture, "task").into();
    let runtime: RuntimeId = unknown_id(fixture, "runtime").into();
    if is_head(fixture) {
        // HEAD looks the task up before a progress report; the other two routes are gone.
        let progress = TaskProgress { summary: "x".into(), step: 1, total: 1 };
        assert_server_error(
            &err(api.report_progress(&task, &progress).await, "progress"),
            404,
            "task not found",
            "progress",
        );
        assert_route_removed(api.report_usage(&runtime, []).await, "usage");
        let result = PingResult { status: PingStatus::Failed, error: "x".into(), ..PingResult::default() };
        assert_route_removed(api.report_ping_result(&runtime, &unique("ping").into(), &result).await, "ping");
        return;
    }
    ok(api.report_progress(&task, &TaskProgress { summary: "x".into(), step: 1, total: 1 }).await, "progress");
    ok(api.report_usage(&runtime, []).await, "usage");
    let result = PingResult { status: PingStatus::Failed, error: "x".into(), ..PingResult::default() };
    ok(api.report_ping_result(&runtime, &unique("ping").into(), &result).await, "ping result");
}

/// Pending tasks are the queued and dispatched ones.
pub async fn pending_lists_queued_and_dispatched_only(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let running = env.enqueue(fixture, "issue-1", 3).await;
    let dispatched = env.enqueue(fixture, "issue-2", 2).await;
    let queued = env.enqueue(fixture, "issue-3", 1).await;
    env.claim(api).await;
    ok(api.start_task(&running).await, "start");
    env.claim(api).await;
    let mut pending: Vec<(TaskId, TaskStatus)> = ok(api.list_pending_tasks(&env.runtime_id).await, "pending")
        .into_iter()
        .map(|task| (task.id, task.status))
        .collect();
    pending.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![(dispatched, TaskStatus::Dispatched), (queued, TaskStatus::Queued)];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(pending, expected);
}

/// The workspace the fixture created is listed.
pub async fn list_workspaces_includes_the_workspace(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let workspaces = ok(api.list_workspaces().await, "list workspaces");
    let found = workspaces.iter().find(|w| w.id == env.workspace_id).expect("the workspace is listed");
    assert!(found.name.starts_with("ws-"), "{found:?}");
    assert_eq!(found.repos.len(), 1);
}

/// A new pairing session is pending and readable by its token.
pub async fn pairing_sessions_are_created_and_read(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    if is_head(fixture) {
        // HEAD has no pairing: a daemon needs a credential first.
        assert_route_removed(api.get_pairing_session(&unique("token")).await, "get pairing");
        return;
    }
    let request = PairingRequest {
        daemon_id: unique("daemon").as_str().into(),
        device_name: "devbox".into(),
        runtime_name: "Claude".into(),
        runtime_type: "claude".into(),
        runtime_version: "1.0.0".into(),
    };
    let session = ok(api.create_pairing_session(&request).await, "create pairing");
    assert_eq!(session.status, PairingStatus::Pending);
    assert!(!session.token.is_empty());
    assert_eq!(session.daemon_id, request.daemon_id);
    assert_eq!(session.workspace_id, None);
    let read = ok(api.get_pairing_session(&session.token).await, "get pairing");
    assert_eq!(read.token, session.token);
    assert_eq!(read.status, PairingStatus::Pending);
    let error = err(api.get_pairing_session(&unique("no-such-token")).await, "unknown token");
    assert_eq!(error.status(), Some(404), "{error}");
}

/// An empty ID in a path is refused before anything is sent.
pub async fn empty_ids_are_invalid_arguments(api: &dyn DaemonApi, _fixture: &dyn Fixture) {
    let empty_task = TaskId::default();
    let empty_runtime = RuntimeId::default();
    let results = [
        api.start_task(&empty_task).await.err(),
        api.get_task_status(&empty_task).await.err(),
        api.claim_task(&empty_runtime).await.err(),
        api.report_ping_result(&empty_runtime, &"p".into(), &PingResult::default()).await.err(),
    ];
    for error in results {
        assert!(matches!(error, Some(Error::InvalidArgument(_))), "{error:?}");
    }
}

/// HEAD creates the next attempt of a task failed with a retryable reason
/// (attempt 2 of 2, `parent_task_id` the failed task); 3c93ebaf1c takes the
/// fail without the HEAD fields and retries nothing.
pub async fn retryable_failures_create_the_next_attempt_at_head(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let id = env.enqueue(fixture, "issue-1", 1).await;
    env.claim(api).await;
    ok(api.start_task(&id).await, "start");
    let failure = crate::dto::TaskFailure {
        error: "agent timed out".into(),
        failure_reason: crate::dto::FailureReason::Timeout,
        session_id: "sess-1".into(),
        ..Default::default()
    };
    ok(api.fail_task_with(&id, &failure).await, "fail with a retryable reason");
    assert_eq!(ok(api.get_task_status(&id).await, "status"), TaskStatus::Failed);
    let next = ok(api.claim_task(&env.runtime_id).await, "claim the retry");
    if is_head(fixture) {
        let retry = next.expect("HEAD queues the retry at once");
        assert_ne!(retry.record.id, id);
        assert_eq!(retry.record.parent_task_id.as_ref(), Some(&id));
        assert_eq!((retry.record.attempt, retry.record.max_attempts), (Some(2), Some(2)));
        assert_eq!(retry.prior_session_id, "sess-1", "the retry resumes the failed attempt's session");
    } else {
        assert_eq!(next, None, "3c93ebaf1c has no retries");
    }
}

/// The batch claim, the prepare lease and waiting for a local directory:
/// HEAD's state rules; 3c93ebaf1c does not have the routes.
pub async fn batch_claim_prepare_lease_and_waiting_are_head_routes(api: &dyn DaemonApi, fixture: &dyn Fixture) {
    let env = setup(api, fixture).await;
    let id = env.enqueue(fixture, "issue-1", 1).await;
    let batch = crate::dto::BatchClaimRequest {
        daemon_id: env.daemon_id.as_str().into(),
        runtime_ids: vec![env.runtime_id.clone()],
        max_tasks: 5,
    };
    let wait = crate::dto::LocalDirectoryWait { reason: "clone".into() };
    if !is_head(fixture) {
        assert_route_removed(api.claim_tasks(&batch).await, "batch claim");
        assert_route_removed(api.extend_prepare_lease(&env.runtime_id, &id).await, "prepare lease");
        assert_route_removed(api.wait_local_directory(&id, &wait).await, "wait local directory");
        return;
    }
    let tasks = ok(api.claim_tasks(&batch).await, "batch claim");
    assert_eq!(tasks.iter().map(|t| t.record.id.clone()).collect::<Vec<_>>(), vec![id.clone()]);
    assert!(ok(api.claim_tasks(&batch).await, "batch claim again").is_empty());
    let row = ok(api.extend_prepare_lease(&env.runtime_id, &id).await, "prepare lease");
    assert_eq!(row.status, TaskStatus::Dispatched);
    let row = ok(api.wait_local_directory(&id, &wait).await, "wait");
    assert_eq!(row.status, TaskStatus::WaitingLocalDirectory);
    let error = err(api.wait_local_directory(&id, &wait).await, "wait twice");
    assert_server_error(&error, 400, "mark task waiting_local_directory: no rows in result set", "wait");
    ok(api.start_task(&id).await, "start a waiting task");
    let error = err(api.extend_prepare_lease(&env.runtime_id, &id).await, "lease of a running task");
    assert_server_error(&error, 400, "extend task prepare lease: no rows in result set", "prepare lease");
}
