use serde::{Deserialize, Serialize};

use super::PairingStatus;
use crate::ids::{DaemonId, WorkspaceId};
use crate::serde_util::null_as_default as nd;

/// Body of `POST /api/daemon/pairing-sessions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PairingRequest {
    /// The daemon's stable identity.
    #[serde(deserialize_with = "nd")]
    pub daemon_id: DaemonId,
    /// The machine's name.
    #[serde(deserialize_with = "nd")]
    pub device_name: String,
    /// Name of the runtime to pair.
    #[serde(deserialize_with = "nd")]
    pub runtime_name: String,
    /// Provider of the runtime.
    #[serde(deserialize_with = "nd")]
    pub runtime_type: String,
    /// Version of the runtime.
    #[serde(deserialize_with = "nd")]
    pub runtime_version: String,
}

/// A pairing session: how a daemon gets attached to a workspace by a user
/// who opens `link_url` and approves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PairingSession {
    /// The session's secret token (also its ID in paths).
    #[serde(deserialize_with = "nd")]
    pub token: String,
    /// The daemon that asked.
    #[serde(deserialize_with = "nd")]
    pub daemon_id: DaemonId,
    /// The machine's name.
    #[serde(deserialize_with = "nd")]
    pub device_name: String,
    /// Name of the runtime.
    #[serde(deserialize_with = "nd")]
    pub runtime_name: String,
    /// Provider of the runtime.
    #[serde(deserialize_with = "nd")]
    pub runtime_type: String,
    /// Version of the runtime.
    #[serde(deserialize_with = "nd")]
    pub runtime_version: String,
    /// The workspace chosen by the approving user; `null` until approved.
    pub workspace_id: Option<WorkspaceId>,
    /// Pending, approved, claimed or expired.
    #[serde(deserialize_with = "nd")]
    pub status: PairingStatus,
    /// When a user approved it.
    pub approved_at: Option<String>,
    /// When the daemon claimed it.
    pub claimed_at: Option<String>,
    /// When it expires (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub expires_at: String,
    /// Creation time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub created_at: String,
    /// Last update time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub updated_at: String,
    /// Where a user approves the session; omitted when the server has no web URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_url: Option<String>,
}
