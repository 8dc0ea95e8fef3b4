use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    FailureReason, PendingRuntimeRequest, PendingSkillImport, PendingUpdate, Repo, SecretToken, SiblingRun, SkillRef,
    TaskAttribution, TaskKind, TaskStatus,
};
use crate::ids::{AgentId, CommentId, IssueId, RuntimeId, TaskId, WorkspaceId};
use crate::serde_util::{is_empty_str, is_false, null_as_default as nd};

/// A task as the server stores it (start, complete, fail and the pending
/// list answer with this; at HEAD 1cc46b2697 also prepare-lease and
/// wait-local-directory).
///
/// Fields HEAD always sends and 3c93ebaf1c never does are `Option`s (`None`
/// tells the server did not send them); fields HEAD sends only when set are
/// empty when absent. Either way they are omitted when encoded empty, so a
/// 3c93ebaf1c row encodes as 3c93ebaf1c sends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
    /// The error the daemon reported (`""` is possible at HEAD).
    pub error: Option<String>,
    /// HEAD 1cc46b2697: why the task failed, sent by the daemon or
    /// classified by the server; omitted (empty) unless failed, and always
    /// empty from 3c93ebaf1c.
    #[serde(deserialize_with = "nd", skip_serializing_if = "FailureReason::is_empty")]
    pub failure_reason: FailureReason,
    /// HEAD 1cc46b2697: which attempt this task is, from 1 (a retry has
    /// its parent's + 1). `None` from 3c93ebaf1c, which does not retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// HEAD 1cc46b2697: how many attempts the server allows (default 2; at
    /// most 1 disables retries). `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
    /// HEAD 1cc46b2697: the failed task this one retries; `None` for a
    /// first attempt, and always from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<TaskId>,
    /// Creation time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub created_at: String,
    /// HEAD 1cc46b2697: the work directory the daemon reported (complete,
    /// fail); empty until reported, and always from 3c93ebaf1c.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub work_dir: String,
    /// HEAD 1cc46b2697: `work_dir` without its workspaces root or home
    /// prefix (`multica_workspaces/<ws>/<task>/workdir`); empty when unset.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub relative_work_dir: String,
    /// HEAD 1cc46b2697: the durable checkout the daemon reported (a local
    /// directory that outlives the work directory); empty when unset.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub durable_work_dir: String,
    /// HEAD 1cc46b2697: `durable_work_dir` without its home prefix
    /// (`src/demo`); empty when unset.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub relative_durable_work_dir: String,
    /// HEAD 1cc46b2697: the branch the daemon reported; empty when unset.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub branch_name: String,
    /// HEAD 1cc46b2697: comments already delivered to the agent by this
    /// task (`[]` when none). `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_comment_ids: Option<Vec<CommentId>>,
    /// HEAD 1cc46b2697: what started the task. `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<TaskKind>,
    /// HEAD 1cc46b2697: who the task acts for and why. `None` from
    /// 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<TaskAttribution>,
}

/// A file shipped with a skill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SkillFile {
    /// Path relative to the skill's folder.
    #[serde(deserialize_with = "nd")]
    pub path: String,
    /// File content.
    #[serde(deserialize_with = "nd")]
    pub content: String,
}

impl SkillFile {
    /// A file with its path and content.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self { path: path.into(), content: content.into() }
    }
}

/// A skill of an agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Skill {
    /// HEAD 1cc46b2697: the workspace skill's UUID, `Some("")` for a skill
    /// built into the server. `None` from 3c93ebaf1c, which sends no ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Skill name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// HEAD 1cc46b2697: what the skill is for; empty when unset.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub description: String,
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
#[non_exhaustive]
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
    /// Skills to install before running, with their content. At HEAD
    /// 1cc46b2697 only for a claim without the `skill-bundles-v1`
    /// capability (then about 200 KB with the built-in skills); with it the
    /// server sends [`TaskAgent::skill_refs`] instead and omits this.
    #[serde(deserialize_with = "nd")]
    pub skills: Vec<Skill>,
    /// HEAD 1cc46b2697, claims with the `skill-bundles-v1` capability:
    /// references to the skills, whose content is fetched with
    /// `skill-bundles/resolve`. Empty otherwise.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub skill_refs: Vec<SkillRef>,
    /// HEAD 1cc46b2697: environment variables to set for the agent; empty
    /// when none.
    #[serde(deserialize_with = "nd", skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_env: BTreeMap<String, String>,
    /// HEAD 1cc46b2697: extra command-line arguments for the agent CLI;
    /// empty when none.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub custom_args: Vec<String>,
    /// HEAD 1cc46b2697: MCP server configuration for the agent (any JSON,
    /// passed through: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_config: Option<Value>,
    /// HEAD 1cc46b2697: the model to run; empty for the CLI's default.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub model: String,
    /// HEAD 1cc46b2697: the reasoning effort to ask for; empty for the
    /// default.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub thinking_level: String,
    /// HEAD 1cc46b2697: the provider's service tier; empty for the default.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub service_tier: String,
    /// HEAD 1cc46b2697: provider-specific runtime settings (any JSON,
    /// passed through: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<Value>,
    /// HEAD 1cc46b2697: the runtime's local skills the agent must not use
    /// (any JSON, passed through: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_runtime_skills: Option<Value>,
}

/// A task handed out by a claim: the stored record plus what the daemon needs
/// to run it (the claim object). Fields of server HEAD 1cc46b2697 are empty
/// or `None` from 3c93ebaf1c and omitted when encoded empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, from = "TaskFields")]
#[non_exhaustive]
pub struct Task {
    /// The stored task (ID, status, priority…); its fields sit at the top
    /// level of the JSON object.
    #[serde(flatten)]
    pub record: TaskRecord,
    /// HEAD 1cc46b2697: the workspace's context (a system prompt shared by
    /// its agents); empty when unset.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub workspace_context: String,
    /// HEAD 1cc46b2697: the agent's other active tasks; empty when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active_sibling_runs: Vec<SiblingRun>,
    /// HEAD 1cc46b2697: the issue's title, for naming the agent's thread;
    /// empty for tasks without an issue.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub thread_name: String,
    /// HEAD 1cc46b2697: `true` on every claim (the agent's leader role was
    /// resolved server-side); `false` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "is_false")]
    pub leader_role_resolved: bool,
    /// The agent to run as; omitted when the server has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<TaskAgent>,
    /// The workspace's repositories; omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<Repo>,
    /// Session to resume: at 3c93ebaf1c of the last completed task of the
    /// same agent and issue; at HEAD 1cc46b2697 the latest session of that
    /// pair on this runtime (a retry resumes its failed attempt), or the
    /// source task's on a rerun. Empty when there is none.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub prior_session_id: String,
    /// Work directory of that task.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub prior_work_dir: String,
    /// HEAD 1cc46b2697: `true` when a newer session exists but was withheld
    /// as unsafe to resume.
    #[serde(skip_serializing_if = "is_false")]
    pub prior_session_resume_unavailable: bool,
    /// HEAD 1cc46b2697: the runtime owner's name; empty when unknown.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub requesting_user_name: String,
    /// HEAD 1cc46b2697: the runtime owner's profile description; empty when
    /// unset.
    #[serde(skip_serializing_if = "is_empty_str")]
    pub requesting_user_profile_description: String,
    /// HEAD 1cc46b2697: the task token (`mat_` + 40 hex digits), minted by
    /// every successful claim and valid until the task completes or fails
    /// (at most 24 h). The daemon gives it to the agent as `MULTICA_TOKEN`;
    /// it authenticates the user API as the agent, not the daemon API.
    /// `None` from 3c93ebaf1c. Redacted in `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<SecretToken>,
    /// HEAD 1cc46b2697: a daemon token (`mdt_…`) for the daemon's Remote
    /// MCP broker, sent only for tasks with remote MCP connections; never
    /// for the agent. Redacted in `Debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_mcp_daemon_token: Option<SecretToken>,
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
    failure_reason: FailureReason,
    attempt: Option<i64>,
    max_attempts: Option<i64>,
    parent_task_id: Option<TaskId>,
    #[serde(deserialize_with = "nd")]
    created_at: String,
    #[serde(deserialize_with = "nd")]
    work_dir: String,
    #[serde(deserialize_with = "nd")]
    relative_work_dir: String,
    #[serde(deserialize_with = "nd")]
    durable_work_dir: String,
    #[serde(deserialize_with = "nd")]
    relative_durable_work_dir: String,
    #[serde(deserialize_with = "nd")]
    branch_name: String,
    delivered_comment_ids: Option<Vec<CommentId>>,
    kind: Option<TaskKind>,
    attribution: Option<TaskAttribution>,
    #[serde(deserialize_with = "nd")]
    workspace_context: String,
    #[serde(deserialize_with = "nd")]
    active_sibling_runs: Vec<SiblingRun>,
    #[serde(deserialize_with = "nd")]
    thread_name: String,
    #[serde(deserialize_with = "nd")]
    leader_role_resolved: bool,
    agent: Option<TaskAgent>,
    #[serde(deserialize_with = "nd")]
    repos: Vec<Repo>,
    #[serde(deserialize_with = "nd")]
    prior_session_id: String,
    #[serde(deserialize_with = "nd")]
    prior_work_dir: String,
    #[serde(deserialize_with = "nd")]
    prior_session_resume_unavailable: bool,
    #[serde(deserialize_with = "nd")]
    requesting_user_name: String,
    #[serde(deserialize_with = "nd")]
    requesting_user_profile_description: String,
    auth_token: Option<SecretToken>,
    remote_mcp_daemon_token: Option<SecretToken>,
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
            failure_reason: fields.failure_reason,
            attempt: fields.attempt,
            max_attempts: fields.max_attempts,
            parent_task_id: fields.parent_task_id,
            created_at: fields.created_at,
            work_dir: fields.work_dir,
            relative_work_dir: fields.relative_work_dir,
            durable_work_dir: fields.durable_work_dir,
            relative_durable_work_dir: fields.relative_durable_work_dir,
            branch_name: fields.branch_name,
            delivered_comment_ids: fields.delivered_comment_ids,
            kind: fields.kind,
            attribution: fields.attribution,
        };
        Self {
            record,
            workspace_context: fields.workspace_context,
            active_sibling_runs: fields.active_sibling_runs,
            thread_name: fields.thread_name,
            leader_role_resolved: fields.leader_role_resolved,
            agent: fields.agent,
            repos: fields.repos,
            prior_session_id: fields.prior_session_id,
            prior_work_dir: fields.prior_work_dir,
            prior_session_resume_unavailable: fields.prior_session_resume_unavailable,
            requesting_user_name: fields.requesting_user_name,
            requesting_user_profile_description: fields.requesting_user_profile_description,
            auth_token: fields.auth_token,
            remote_mcp_daemon_token: fields.remote_mcp_daemon_token,
        }
    }
}

/// Response of a claim: `{"task": null}` when nothing is queued.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClaimResponse {
    /// The claimed task, if any.
    pub task: Option<Task>,
}

/// Response of `GET /api/daemon/tasks/{taskId}/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TaskStatusResponse {
    /// The task's current status.
    #[serde(deserialize_with = "nd")]
    pub status: TaskStatus,
}

impl TaskStatusResponse {
    /// The answer for a task in this status.
    pub fn new(status: TaskStatus) -> Self {
        Self { status }
    }
}

/// The `{"status":"ok"}` answer of calls that report something.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct PendingPing {
    /// The ping's ID, to report its result under.
    #[serde(deserialize_with = "nd")]
    pub id: crate::PingId,
}

impl PendingPing {
    /// The ping with this ID.
    pub fn new(id: crate::PingId) -> Self {
        Self { id }
    }
}

/// Response of `POST /api/daemon/heartbeat`. Each pending request is
/// handed out once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HeartbeatResponse {
    /// `ok`.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// 3c93ebaf1c only: the oldest pending ping of the runtime (HEAD
    /// 1cc46b2697 removed pings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_ping: Option<PendingPing>,
    /// HEAD 1cc46b2697: a user asked the daemon to update itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<PendingUpdate>,
    /// HEAD 1cc46b2697: a user asked for the runtime's model list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_model_list: Option<PendingRuntimeRequest>,
    /// HEAD 1cc46b2697: a user asked for the runtime's local skills.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_local_skills: Option<PendingRuntimeRequest>,
    /// HEAD 1cc46b2697: a user asked to import one local skill (the first
    /// of [`HeartbeatResponse::pending_local_skill_imports`] when that is
    /// sent too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_local_skill_import: Option<PendingSkillImport>,
    /// HEAD 1cc46b2697, heartbeats with `supports_batch_import`: up to 10
    /// pending imports. Empty otherwise.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub pending_local_skill_imports: Vec<PendingSkillImport>,
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
/// sent; the other fields only when non-empty, as the Go client does, so a
/// completion without the HEAD 1cc46b2697 fields is the 3c93ebaf1c body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskCompletion {
    /// The agent's final output.
    #[serde(deserialize_with = "nd")]
    pub output: String,
    /// Branch the agent pushed (ignored by server 3c93ebaf1c, sent as Go does).
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub branch_name: String,
    /// Agent session to resume in a later task.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub session_id: String,
    /// Work directory to resume in.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub work_dir: String,
    /// HEAD 1cc46b2697: the pull request the agent opened (stored in the
    /// task's `result`). Omitted when empty; 3c93ebaf1c ignores it.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub pr_url: String,
    /// HEAD 1cc46b2697: the durable local checkout the agent worked in
    /// (becomes the row's `durable_work_dir`). Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub durable_work_dir: String,
    /// HEAD 1cc46b2697: the agent's session could not be saved, so it must
    /// not be resumed. Omitted when `false`.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub session_rollout_missing: bool,
    /// HEAD 1cc46b2697: a session the agent replaced and that must not be
    /// resumed again. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub retired_session_id: String,
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
