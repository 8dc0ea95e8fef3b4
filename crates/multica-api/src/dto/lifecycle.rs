//! Request and answer bodies of the task lifecycle routes that server HEAD
//! 1cc46b2697 added or extended (fail, cancel-ack, wait-local-directory,
//! session pin, orphan recovery, batch claim, deregister reasons).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FailureReason, Task};
use crate::ids::{DaemonId, RuntimeId};
use crate::serde_util::{is_empty_str, is_false, null_as_default as nd};

/// Body of `POST /api/daemon/tasks/{taskId}/fail`. `error` is always sent;
/// the HEAD 1cc46b2697 fields only when set, so [`TaskFailure::new`] alone
/// is the 3c93ebaf1c body `{"error": …}`.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::{FailureReason, TaskFailure};
///
/// let failure = TaskFailure::new("agent timed out").with_reason(FailureReason::Timeout);
/// assert_eq!(serde_json::to_string(&failure)?,
///     r#"{"error":"agent timed out","failure_reason":"timeout"}"#);
/// assert_eq!(serde_json::to_string(&TaskFailure::new("boom"))?, r#"{"error":"boom"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskFailure {
    /// What went wrong, stored as sent (`""` too).
    #[serde(deserialize_with = "nd")]
    pub error: String,
    /// HEAD 1cc46b2697: why, which decides whether the server retries (see
    /// [`FailureReason::is_retryable`]); when omitted the server classifies
    /// `error` itself. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "FailureReason::is_empty")]
    pub failure_reason: FailureReason,
    /// HEAD 1cc46b2697: the agent session, for a retry to resume (kept when
    /// not sent). Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub session_id: String,
    /// HEAD 1cc46b2697: the work directory. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub work_dir: String,
    /// HEAD 1cc46b2697: the durable local checkout. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub durable_work_dir: String,
    /// HEAD 1cc46b2697: the branch the agent worked on. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub branch_name: String,
    /// HEAD 1cc46b2697: the session could not be saved and must not be
    /// resumed. Omitted when `false`.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub session_rollout_missing: bool,
    /// HEAD 1cc46b2697: a session that must not be resumed again. Omitted
    /// when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub retired_session_id: String,
}

impl TaskFailure {
    /// A failure with only an error text: the body both server versions
    /// take.
    pub fn new(error: impl Into<String>) -> Self {
        Self { error: error.into(), ..Self::default() }
    }

    /// The same failure with a reason (HEAD 1cc46b2697).
    pub fn with_reason(mut self, reason: FailureReason) -> Self {
        self.failure_reason = reason;
        self
    }

    /// The same failure with the agent's session and work directory, so a
    /// retry can resume it (HEAD 1cc46b2697).
    pub fn with_session(mut self, session_id: impl Into<String>, work_dir: impl Into<String>) -> Self {
        self.session_id = session_id.into();
        self.work_dir = work_dir.into();
        self
    }
}

/// Body of `POST /api/daemon/tasks/{taskId}/cancel-ack` (HEAD 1cc46b2697):
/// the daemon saw `cancelled` and stopped the run. On a cancelled task the
/// non-empty values are recorded once; the body is optional (`{}` is the
/// default) and never an error. Every field is omitted when empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CancelAck {
    /// The branch the agent left behind.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub branch_name: String,
    /// The durable local checkout it left behind.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub durable_work_dir: String,
    /// What the daemon wants recorded about the stop.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub error_message: String,
    /// A reason for the stop (e.g. `worktree_finalize_aborted`).
    #[serde(deserialize_with = "nd", skip_serializing_if = "FailureReason::is_empty")]
    pub failure_reason: FailureReason,
}

/// Body of `POST /api/daemon/tasks/{taskId}/wait-local-directory` (HEAD
/// 1cc46b2697): a dispatched task waits for a local directory another task
/// holds. The server also accepts an empty body; `reason` is omitted when
/// empty. Answered with the task row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalDirectoryWait {
    /// What the task waits for, shown to users (`demo (held by task
    /// 1234abcd)`); a legacy absolute path is not kept.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub reason: String,
}

/// Body of `POST /api/daemon/tasks/{taskId}/session` (HEAD 1cc46b2697): pins
/// the agent's session and work directory on a running task, so it can be
/// resumed later. At least one must be non-empty (400 `session_id or
/// work_dir required`); each is omitted when empty. Answered 204 without a
/// body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionPin {
    /// The agent's session ID.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub session_id: String,
    /// The work directory.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub work_dir: String,
}

/// Answer of `POST /api/daemon/runtimes/{rid}/recover-orphans` (HEAD
/// 1cc46b2697, meant for daemon start-up): the runtime's in-flight tasks
/// were failed with `runtime_recovery`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct OrphanRecovery {
    /// How many dispatched, running or waiting tasks were failed.
    #[serde(deserialize_with = "nd")]
    pub orphaned: i64,
    /// How many of them got a retry.
    #[serde(deserialize_with = "nd")]
    pub retried: i64,
}

/// Body of `POST /api/daemon/tasks/claim` (alias `POST /api/daemon/claim`),
/// the batch claim of HEAD 1cc46b2697: up to `max_tasks` tasks (at most 32)
/// across the daemon's runtimes, in priority order. The server skips runtime
/// IDs that are malformed, unknown, duplicated, inaccessible or another
/// daemon's; `max_tasks` 0 answers no tasks, negative is a 400. With a daemon
/// token, `daemon_id` must be the token's (403 otherwise). Every field is
/// always sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchClaimRequest {
    /// The claiming daemon (required).
    #[serde(deserialize_with = "nd")]
    pub daemon_id: DaemonId,
    /// The runtimes to claim for.
    #[serde(deserialize_with = "nd")]
    pub runtime_ids: Vec<RuntimeId>,
    /// How many tasks at most.
    #[serde(deserialize_with = "nd")]
    pub max_tasks: i64,
}

/// Answer of the batch claim: the claimed tasks (claim objects, each with its
/// `runtime_id` and `auth_token`), `[]` when none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BatchClaimResponse {
    /// The claimed tasks.
    #[serde(deserialize_with = "nd")]
    pub tasks: Vec<Task>,
}

/// Body of `POST /api/daemon/deregister`. Without reasons it is the
/// 3c93ebaf1c body `{"runtime_ids": […]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeregisterRequest {
    /// The runtimes going offline.
    #[serde(deserialize_with = "nd")]
    pub runtime_ids: Vec<RuntimeId>,
    /// HEAD 1cc46b2697: why, per runtime ID (any JSON each, e.g. `{"code":
    /// "auth_expired", "message": …, "repair": "codex login"}`), stored with
    /// the runtime. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Map::is_empty")]
    pub offline_reasons: Map<String, Value>,
}
