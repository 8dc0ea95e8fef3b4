//! What a test can read back from the fake: the whole state as one value
//! (also served as JSON at `GET /_mock/state`).

use serde::{Deserialize, Serialize};

use crate::seed::IssueSeed;

use multica_api::{
    AgentId, PairingSession, PingId, PingResult, Runtime, RuntimeId, Skill, TaskMessage, TaskProgress, TaskRecord,
    TaskUsage, UsageEntry, Workspace, WorkspaceId,
};

/// Everything the fake holds, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The fake clock's current time (RFC 3339).
    pub now: String,
    /// Workspaces, in creation order.
    pub workspaces: Vec<Workspace>,
    /// Agents, in creation order.
    pub agents: Vec<AgentState>,
    /// Runtimes, in creation order.
    pub runtimes: Vec<RuntimeState>,
    /// Tasks, in creation order.
    pub tasks: Vec<TaskState>,
    /// Usage rows, by runtime then (date, provider, model).
    pub usage: Vec<UsageRow>,
    /// Pings, in creation order.
    pub pings: Vec<PingState>,
    /// Pairing sessions, in creation order.
    pub pairing_sessions: Vec<PairingSession>,
    /// Issues whose status was seeded or set, by ID.
    pub issues: Vec<IssueSeed>,
    /// Calls received since the start (including those no longer in the
    /// bounded call log).
    pub call_count: u64,
}

/// A stored agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// The agent's ID.
    pub id: AgentId,
    /// How many of its tasks may be dispatched or running at once.
    pub max_concurrent_tasks: u32,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Display name.
    pub name: String,
    /// Standing instructions.
    pub instructions: String,
    /// Skills with files.
    pub skills: Vec<Skill>,
}

/// A stored runtime and what the daemon did with it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeState {
    /// The runtime as the server answers it.
    #[serde(flatten)]
    pub runtime: Runtime,
    /// Successful heartbeats received.
    pub heartbeats: u64,
    /// Pings not yet handed out by a heartbeat, oldest first.
    pub pending_pings: Vec<PingId>,
}

/// A stored task with what the daemon reported about it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    /// The task record as the server answers it.
    #[serde(flatten)]
    pub record: TaskRecord,
    /// The session ID reported at completion (empty if none).
    pub session_id: String,
    /// The work directory reported at completion (empty if none).
    pub work_dir: String,
    /// The last progress report.
    pub progress: Option<TaskProgress>,
    /// Stored live-output messages, by seq ascending.
    pub messages: Vec<TaskMessage>,
    /// Server HEAD 1cc46b2697: the task's usage rows (one per provider and
    /// model, the last report of each), by provider then model; 3c93ebaf1c
    /// keeps usage per runtime only ([`Snapshot::usage`]).
    #[serde(default)]
    pub usage: Vec<TaskUsage>,
}

/// One stored usage row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The runtime it was reported for.
    pub runtime_id: RuntimeId,
    /// The row.
    #[serde(flatten)]
    pub entry: UsageEntry,
}

/// A ping and its outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingState {
    /// The ping's ID.
    pub id: PingId,
    /// The runtime asked to answer it.
    pub runtime_id: RuntimeId,
    /// `pending` (not handed out), `sent` (handed out by a heartbeat), or the
    /// reported status (`completed`, `failed`).
    pub status: String,
    /// The reported result, once answered.
    pub result: Option<PingResult>,
}
