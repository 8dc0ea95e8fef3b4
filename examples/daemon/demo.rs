//! The demo world: the fake server seeded with a workspace, agents, two
//! runtimes and five tasks, one of which a "user" cancels mid-run and one
//! whose agent is blocked.

use std::time::Duration;

use multica::mock::{AgentSeed, MockDaemon, RuntimeRequest, RuntimeSeed, Seed, TaskSeed};
use multica::ServerVersion;
use multica::{Error, RuntimeId, RuntimeStatus, TaskId, TaskStatus, WorkspaceId};

use multica::worker::{short_id, Registration};

use crate::agent::BLOCKED_MARKER;
use crate::daemon::Log;

/// IDs the demo refers to; they come from the fake's built-in seed.
pub const WORKSPACE: &str = "11111111-1111-4111-8111-111111111111";
pub const DAEMON: &str = "demo-daemon";
pub const DEVICE: &str = "demo-host";
const CLAUDE_RUNTIME: &str = "33333333-3333-4333-8333-333333333333";
const CODEX_RUNTIME: &str = "33333333-3333-4333-8333-333333333334";
const BUILDER_AGENT: &str = "22222222-2222-4222-8222-222222222222";
/// The demo user's personal token: a server at HEAD wants one on every call.
pub const TOKEN: &str = "mul_demo";
/// The seeded task the demo user cancels while it runs.
pub const CANCELLED_TASK: &str = "44444444-4444-4444-8444-000000000003";

/// What the demo daemon registers: a claude and a codex runtime.
pub fn registration() -> Registration {
    Registration::new(WORKSPACE, DAEMON, DEVICE, crate::runtimes())
}

/// The demo fake and what the demo user will do to it.
pub struct Demo {
    pub mock: MockDaemon,
    pub blocked_task: TaskId,
    pub codex_task: TaskId,
}

/// Builds the seeded fake of server `version`: the crate's demo seed plus a
/// codex runtime with a task, and a deploy agent that is blocked. At HEAD
/// the fake wants [`TOKEN`], which the returned handle presents.
pub fn build(version: ServerVersion) -> Result<Demo, Error> {
    let mut builder = MockDaemon::builder().seed(Seed::demo()).server_version(version);
    if version == ServerVersion::Head {
        builder = builder.token(TOKEN);
    }
    let mock = builder.build()?;
    let workspace_id = WorkspaceId::new(WORKSPACE);
    let codex = mock.add_runtime(RuntimeSeed {
        id: Some(CODEX_RUNTIME.into()),
        workspace_id: workspace_id.clone(),
        daemon_id: Some(DAEMON.into()),
        name: format!("codex ({DEVICE})"),
        provider: "codex".into(),
        version: "0.9.0".into(),
        status: RuntimeStatus::Offline,
        device_name: DEVICE.into(),
    })?;
    let codex_task = mock.add_task(TaskSeed {
        runtime_id: codex,
        agent_id: BUILDER_AGENT.into(),
        issue_id: "55555555-5555-4555-8555-000000000004".into(),
        priority: 2,
        ..TaskSeed::default()
    })?;
    let deployer = mock.add_agent(AgentSeed {
        workspace_id,
        name: "Deployer".into(),
        instructions: format!("Deploy the release. {BLOCKED_MARKER}: no deploy credentials on this machine."),
        ..AgentSeed::default()
    })?;
    let blocked_task = mock.add_task(TaskSeed {
        runtime_id: CLAUDE_RUNTIME.into(),
        agent_id: deployer,
        issue_id: "55555555-5555-4555-8555-000000000005".into(),
        priority: 3,
        ..TaskSeed::default()
    })?;
    // The server asks the runtime to prove it is alive; the first heartbeat
    // answers. (HEAD has no pings.) At HEAD a user opens the model picker:
    // the next heartbeat hands the request out and the agent answers.
    if version == ServerVersion::Head {
        mock.request_runtime(&RuntimeRequest::model_list(CLAUDE_RUNTIME))?;
    } else {
        mock.request_ping(&RuntimeId::new(CLAUDE_RUNTIME))?;
    }
    Ok(Demo { mock, blocked_task, codex_task })
}

/// Plays the user who closes an issue while its task runs: cancels
/// [`CANCELLED_TASK`] as soon as it is running.
pub async fn cancel_when_running(mock: MockDaemon, log: Log) {
    let task = TaskId::new(CANCELLED_TASK);
    loop {
        match mock.task_status(&task) {
            Some(TaskStatus::Running) => {
                if mock.cancel(&task).is_ok() {
                    log.say(format!("(demo) the issue of task {} was closed: task cancelled", short_id(task.as_str())));
                }
                return;
            }
            Some(TaskStatus::Queued | TaskStatus::Dispatched) => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => return,
        }
    }
}

/// Prints what the users' runtime requests came to (HEAD).
pub fn show_runtime_requests(mock: &MockDaemon, log: Log) {
    for request in mock.runtime_requests() {
        let models = request
            .result
            .as_ref()
            .and_then(|result| result.get("models"))
            .and_then(|models| models.as_array())
            .map(|models| models.iter().filter_map(|model| model.get("id")?.as_str()).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        log.say(format!("(demo) the model picker's request is {}: {models}", request.status));
    }
}
