//! Garbage-collection checks of server HEAD 1cc46b2697: before deleting a
//! local work directory, the daemon asks whether its task, issue, chat
//! session or autopilot run is finished. A never-set time is written as
//! `0001-01-01T00:00:00Z`.

use serde::{Deserialize, Serialize};

use super::TaskStatus;
use crate::ids::IssueId;
use crate::serde_util::{is_empty_str, null_as_default as nd};

/// Answer of `GET /api/daemon/tasks/{id}/gc-check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TaskGcCheck {
    /// The task's status.
    #[serde(deserialize_with = "nd")]
    pub status: TaskStatus,
    /// When it finished (RFC 3339 with fractional seconds).
    #[serde(deserialize_with = "nd")]
    pub completed_at: String,
}

/// Answer of `GET /api/daemon/issues/{id}/gc-check` and
/// `GET /api/daemon/chat-sessions/{id}/gc-check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct GcCheck {
    /// The object's status (an issue's `done`, `cancelled`…).
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// When it last changed (RFC 3339 with fractional seconds).
    #[serde(deserialize_with = "nd")]
    pub updated_at: String,
}

/// Answer of `GET /api/daemon/autopilot-runs/{id}/gc-check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AutopilotRunGcCheck {
    /// The run's status.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// When it finished (RFC 3339 with fractional seconds).
    #[serde(deserialize_with = "nd")]
    pub completed_at: String,
}

/// Body of `POST /api/daemon/workspaces/{wid}/issues/gc-check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IssueGcCheckRequest {
    /// The issues to check.
    #[serde(deserialize_with = "nd")]
    pub issue_ids: Vec<IssueId>,
}

/// One issue in an [`IssueGcCheckResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct IssueGcStatus {
    /// The issue.
    #[serde(deserialize_with = "nd")]
    pub id: IssueId,
    /// Whether it exists in the workspace.
    #[serde(deserialize_with = "nd")]
    pub found: bool,
    /// Its status; omitted when not found.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub status: String,
    /// When it last changed; omitted when not found.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub updated_at: String,
}

/// Answer of `POST /api/daemon/workspaces/{wid}/issues/gc-check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct IssueGcCheckResponse {
    /// One entry per issue asked about.
    #[serde(deserialize_with = "nd")]
    pub issues: Vec<IssueGcStatus>,
}
