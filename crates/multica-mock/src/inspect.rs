//! What a test can read back from the fake: the whole state as one value
//! (also served as JSON at `GET /_mock/state`).

use serde::{Deserialize, Serialize};

use crate::seed::IssueSeed;

use multica_api::{
    AgentId, PairingSession, PingId, PingResult, Runtime, RuntimeId, Skill, TaskMessage, TaskProgress, TaskRecord,
    TaskUsage, UsageEntry, Workspace, WorkspaceId,
};

/// Everything the fake holds, at one moment: [`MockDaemon::snapshot`], and
/// the JSON answer of `GET /_mock/state` (keys sorted), field by field:
///
/// | field | JSON | what |
/// |---|---|---|
/// | `now` | string | the fake clock, RFC 3339 (`2026-01-01T00:00:00Z` unless moved) |
/// | `workspaces` | array | each workspace as the server answers it (`id`, `name`, `slug`, `description`, `context`, `issue_prefix`, `settings`, `repos`, `created_at`, `updated_at`), in creation order |
/// | `agents` | array of [`AgentState`] | `id`, `workspace_id`, `name`, `instructions`, `max_concurrent_tasks`, `skills` (each with `name`, `content`, `files`) |
/// | `runtimes` | array of [`RuntimeState`] | the runtime as the server answers it (`id`, `workspace_id`, `daemon_id`, `name`, `provider`, `runtime_mode`, `status`, `device_info`, `metadata`, `last_seen_at`, `created_at`, `updated_at`), plus `heartbeats` (successful heartbeats received) and `pending_pings` (ping IDs not yet handed out) |
/// | `tasks` | array of [`TaskState`] | the task row as the server answers it (`id`, `agent_id`, `runtime_id`, `issue_id`, `workspace_id`, `status`, `priority`, `dispatched_at`, `started_at`, `completed_at`, `result`: the completion's `output`, `session_id`, `work_dir`, `pr_url`…, `error`, `created_at`, and what the version adds: `failure_reason`, `attempt`… at HEAD 1cc46b2697), plus what the daemon reported: `session_id` and `work_dir` (pinned or reported at the end), `progress` (the last `{summary, step, total}` or `null`), `messages` (the live output, by `seq`: each `{seq, type, tool?, content?, input?, output?}` with `type` `text`, `thinking`, `tool_use`, `tool_result` or `error`) and `usage` (HEAD 1cc46b2697: the per-task rows `{provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd_ticks?}`) |
/// | `usage` | array of [`UsageRow`] | the per-runtime usage rows (both versions take them): `{runtime_id, date, provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens}`, by runtime then date, provider and model |
/// | `pings` | array of [`PingState`] | `id`, `runtime_id`, `status` (`pending`, `sent`, `completed`, `failed`) and `result` once answered |
/// | `pairing_sessions` | array | each pairing session as the server answers it |
/// | `issues` | array | issues whose status or number was seeded or set: `id`, `status`, `title`, `number` (absent fields omitted) |
/// | `call_count` | number | calls received since the start, beyond the bounded call log |
///
/// [`MockDaemon::snapshot`]: crate::MockDaemon::snapshot
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
    /// HEAD: the runtime requests users made, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime_requests: Vec<crate::RuntimeRequestState>,
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
