use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Repo, TaskStatus};
use crate::ids::{AgentId, IssueId, RuntimeId, TaskId, WorkspaceId};
use crate::serde_util::{is_empty_str, null_as_default as nd};

/// A task as the server stores it (start, complete, fail and the pending
/// list answer with this).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskRecord {
    /// The task's ID.
    #[serde(deserialize_with = "nd")]
    pub id: TaskId,
    /// The agent that runs it.
    #[serde(deserialize_with = "nd")]
    pub agent_id: AgentId,
    /// The runtime it is queued on.
    #[serde(deserialize_with = "nd")]
    pub runtime_id: RuntimeId,
    /// The issue it works on.
    #[serde(deserialize_with = "nd")]
    pub issue_id: IssueId,
    /// The workspace of the issue.
    #[serde(deserialize_with = "nd")]
    pub workspace_id: WorkspaceId,
    /// Where the task is in its life.
    #[serde(deserialize_with = "nd")]
    pub status: TaskStatus,
    /// Higher runs first.
    #[serde(deserialize_with = "nd")]
    pub priority: i64,
    /// When a daemon claimed it.
    pub dispatched_at: Option<String>,
    /// When the daemon started it.
    pub started_at: Option<String>,
    /// When it completed or failed.
    pub completed_at: Option<String>,
    /// The result the daemon reported (any JSON).
    pub result: Option<Value>,
    /// The error the daemon reported.
    pub error: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub created_at: String,
}

/// A file shipped with a skill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkillFile {
    /// Path relative to the skill's folder.
    #[serde(deserialize_with = "nd")]
    pub path: String,
    /// File content.
    #[serde(deserialize_with = "nd")]
    pub content: String,
}

/// A skill of an agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Skill {
    /// Skill name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// The skill's main document.
    #[serde(deserialize_with = "nd")]
    pub content: String,
    /// Supporting files; omitted when none.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SkillFile>,
}

/// The agent a claimed task runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskAgent {
    /// The agent's ID.
    #[serde(deserialize_with = "nd")]
    pub id: AgentId,
    /// Display name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// Standing instructions.
    #[serde(deserialize_with = "nd")]
    pub instructions: String,
    /// Skills to install before running.
    #[serde(deserialize_with = "nd")]
    pub skills: Vec<Skill>,
}

/// A task handed out by a claim: the stored record plus what the daemon needs
/// to run it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, from = "TaskFields")]
pub struct Task {
    /// The stored task (ID, status, priority…); its fields sit at the top
    /// level of the JSON object.
    #[serde(flatten)]
    pub record: TaskRecord,
    /// The agent to run as; omitted when the server has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<TaskAgent>,
    /// The workspace's repositories; omitted when none.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<Repo>,
    /// Session of the last completed task of the same agent and issue, to resume.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub prior_session_id: String,
    /// Work directory of that task.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub prior_work_dir: String,
}

/// Every field of a [`Task`] side by side, as the JSON has them. `Task`
/// decodes through this instead of through `#[serde(flatten)]`, which buffers
/// the whole object into an intermediate tree first: measured, a claim's
/// answer decodes in 2.5 µs instead of 3.1 µs (`cargo bench -p multica-hyper
/// --bench json`).
#[derive(Default, Deserialize)]
#[serde(default)]
struct TaskFields {
    #[serde(deserialize_with = "nd")]
    id: TaskId,
    #[serde(deserialize_with = "nd")]
    agent_id: AgentId,
    #[serde(deserialize_with = "nd")]
    runtime_id: RuntimeId,
    #[serde(deserialize_with = "nd")]
    issue_id: IssueId,
    #[serde(deserialize_with = "nd")]
    workspace_id: WorkspaceId,
    #[serde(deserialize_with = "nd")]
    status: TaskStatus,
    #[serde(deserialize_with = "nd")]
    priority: i64,
    dispatched_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    result: Option<Value>,
    error: Option<String>,
    #[serde(deserialize_with = "nd")]
    created_at: String,
    agent: Option<TaskAgent>,
    #[serde(deserialize_with = "nd")]
    repos: Vec<Repo>,
    #[serde(deserialize_with = "nd")]
    prior_session_id: String,
    #[serde(deserialize_with = "nd")]
    prior_work_dir: String,
}

impl From<TaskFields> for Task {
    fn from(fields: TaskFields) -> Self {
        let record = TaskRecord {
            id: fields.id,
            agent_id: fields.agent_id,
            runtime_id: fields.runtime_id,
            issue_id: fields.issue_id,
            workspace_id: fields.workspace_id,
            status: fields.status,
            priority: fields.priority,
            dispatched_at: fields.dispatched_at,
            started_at: fields.started_at,
            completed_at: fields.completed_at,
            result: fields.result,
            error: fields.error,
            created_at: fields.created_at,
        };
        Self {
            record,
            agent: fields.agent,
            repos: fields.repos,
            prior_session_id: fields.prior_session_id,
            prior_work_dir: fields.prior_work_dir,
        }
    }
}

/// Response of a claim: `{"task": null}` when nothing is queued.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimResponse {
    /// The claimed task, if any.
    pub task: Option<Task>,
}

/// Response of `GET /api/daemon/tasks/{taskId}/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskStatusResponse {
    /// The task's current status.
    #[serde(deserialize_with = "nd")]
    pub status: TaskStatus,
}

/// The `{"status":"ok"}` answer of calls that report something.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OkResponse {
    /// `ok`.
    #[serde(deserialize_with = "nd")]
    pub status: String,
}

impl OkResponse {
    /// `{"status":"ok"}`.
    pub fn ok() -> Self {
        Self { status: "ok".to_owned() }
    }
}

/// A ping the server asks the runtime to answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PendingPing {
    /// The ping's ID, to report its result under.
    #[serde(deserialize_with = "nd")]
    pub id: crate::PingId,
}

/// Response of `POST /api/daemon/heartbeat`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeartbeatResponse {
    /// `ok`.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// The oldest pending ping of the runtime, handed out once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_ping: Option<PendingPing>,
}

/// Body of `POST /api/daemon/tasks/{taskId}/progress`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskProgress {
    /// What the agent is doing.
    #[serde(deserialize_with = "nd")]
    pub summary: String,
    /// Current step, from 1.
    #[serde(deserialize_with = "nd")]
    pub step: i64,
    /// Number of steps.
    #[serde(deserialize_with = "nd")]
    pub total: i64,
}

/// Body of `POST /api/daemon/tasks/{taskId}/complete`. `output` is always
/// sent; the other fields only when non-empty, as the Go client does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskCompletion {
    /// The agent's final output.
    #[serde(deserialize_with = "nd")]
    pub output: String,
    /// Branch the agent pushed (ignored by server 3c93ebaf1c, sent as Go does).
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub branch_name: String,
    /// URL of the pull request the agent opened (stored in the task's result).
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub pr_url: String,
    /// Agent session to resume in a later task.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub session_id: String,
    /// Work directory to resume in.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub work_dir: String,
}

impl TaskCompletion {
    /// A completion with only an output.
    pub fn with_output(output: impl Into<String>) -> Self {
        Self { output: output.into(), ..Self::default() }
    }
}

/// Body of `POST /api/daemon/runtimes/{runtimeId}/ping/{pingId}/result`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PingResult {
    /// Completed or failed.
    #[serde(deserialize_with = "nd")]
    pub status: super::PingStatus,
    /// What the agent answered; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub output: String,
    /// Why the ping failed; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub error: String,
    /// How long the ping took.
    #[serde(deserialize_with = "nd")]
    pub duration_ms: i64,
}

impl PingResult {
    /// A ping the runtime answered with `output`, after `took`.
    pub fn completed(output: impl Into<String>, took: Duration) -> Self {
        Self {
            status: super::PingStatus::Completed,
            output: output.into(),
            error: String::new(),
            duration_ms: millis(took),
        }
    }

    /// A ping the runtime could not answer, with why, after `took`.
    pub fn failed(error: impl Into<String>, took: Duration) -> Self {
        Self {
            status: super::PingStatus::Failed,
            output: String::new(),
            error: error.into(),
            duration_ms: millis(took),
        }
    }
}

/// Whole milliseconds, saturating (a duration past `i64::MAX` ms is not a ping's).
fn millis(took: Duration) -> i64 {
    i64::try_from(took.as_millis()).unwrap_or(i64::MAX)
}

impl TaskProgress {
    /// Step `step` of `total`, doing `summary`.
    pub fn new(summary: impl Into<String>, step: i64, total: i64) -> Self {
        Self { summary: summary.into(), step, total }
    }
}
