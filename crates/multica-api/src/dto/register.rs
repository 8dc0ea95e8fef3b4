use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::RuntimeStatus;
use crate::ids::{DaemonId, RuntimeId, WorkspaceId};
use crate::serde_util::null_as_default as nd;

/// One agent runtime a daemon offers, as sent in a registration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeSpec {
    /// Display name; the server derives one from the provider when empty.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// Provider, e.g. `claude` or `codex`; empty becomes `unknown`.
    #[serde(rename = "type", deserialize_with = "nd")]
    pub provider: String,
    /// Version of the agent CLI.
    #[serde(deserialize_with = "nd")]
    pub version: String,
    /// `online` unless `offline` is sent.
    #[serde(deserialize_with = "nd")]
    pub status: RuntimeStatus,
}

/// Body of `POST /api/daemon/register`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterRequest {
    /// The workspace to register in.
    #[serde(deserialize_with = "nd")]
    pub workspace_id: WorkspaceId,
    /// The daemon's stable identity.
    #[serde(deserialize_with = "nd")]
    pub daemon_id: DaemonId,
    /// The machine's name, shown to users.
    #[serde(deserialize_with = "nd")]
    pub device_name: String,
    /// At least one runtime.
    #[serde(deserialize_with = "nd")]
    pub runtimes: Vec<RuntimeSpec>,
}

/// A runtime as the server stores it (in the register response).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Runtime {
    /// The runtime's ID, used by every runtime-scoped call.
    #[serde(deserialize_with = "nd")]
    pub id: RuntimeId,
    /// The workspace it belongs to.
    #[serde(deserialize_with = "nd")]
    pub workspace_id: WorkspaceId,
    /// The daemon that registered it; `null` for cloud runtimes.
    pub daemon_id: Option<DaemonId>,
    /// Display name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// `local` for daemon runtimes.
    #[serde(deserialize_with = "nd")]
    pub runtime_mode: String,
    /// Provider (`claude`, `codex`, `unknown`…).
    #[serde(deserialize_with = "nd")]
    pub provider: String,
    /// Online or offline.
    #[serde(deserialize_with = "nd")]
    pub status: RuntimeStatus,
    /// Free-form device description.
    #[serde(deserialize_with = "nd")]
    pub device_info: String,
    /// Free-form metadata object.
    #[serde(deserialize_with = "nd")]
    pub metadata: Map<String, Value>,
    /// Last heartbeat time, `null` if never seen.
    pub last_seen_at: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub created_at: String,
    /// Last update time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub updated_at: String,
}

/// A repository a workspace works on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Repo {
    /// Clone URL.
    #[serde(deserialize_with = "nd")]
    pub url: String,
    /// What the repository is for.
    #[serde(deserialize_with = "nd")]
    pub description: String,
}

/// Response of `POST /api/daemon/register`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegisterResponse {
    /// One runtime per runtime sent, in order.
    #[serde(deserialize_with = "nd")]
    pub runtimes: Vec<Runtime>,
    /// The workspace's repositories.
    #[serde(deserialize_with = "nd")]
    pub repos: Vec<Repo>,
}

impl RegisterResponse {
    /// The registered runtime of `provider` (`claude`, `codex`…): the
    /// server upserts one runtime per provider of a daemon.
    pub fn runtime_of(&self, provider: &str) -> Option<&Runtime> {
        self.runtimes.iter().find(|runtime| runtime.provider == provider)
    }
}

/// A workspace, as listed by `GET /api/workspaces`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workspace {
    /// The workspace's ID.
    #[serde(deserialize_with = "nd")]
    pub id: WorkspaceId,
    /// Display name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// URL slug.
    #[serde(deserialize_with = "nd")]
    pub slug: String,
    /// Description, `null` when never set.
    pub description: Option<String>,
    /// Context given to agents, `null` when never set.
    pub context: Option<String>,
    /// Settings object.
    #[serde(deserialize_with = "nd")]
    pub settings: Map<String, Value>,
    /// Repositories.
    #[serde(deserialize_with = "nd")]
    pub repos: Vec<Repo>,
    /// Prefix of issue keys (`MUL` in `MUL-12`).
    #[serde(deserialize_with = "nd")]
    pub issue_prefix: String,
    /// Creation time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub created_at: String,
    /// Last update time (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub updated_at: String,
}
