use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::RuntimeStatus;
use crate::ids::{DaemonId, ProfileId, RuntimeId, UserId, WorkspaceId};
use crate::serde_util::{is_empty_str, null_as_default as nd};

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
    /// HEAD 1cc46b2697: the workspace's custom runtime profile this runtime
    /// runs (400 `invalid profile_id` / `unknown runtime profile: <id>`
    /// otherwise). Omitted when `None`; 3c93ebaf1c has no profiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<ProfileId>,
}

/// A runtime profile the daemon could not start (`failed_profiles` of a
/// registration, HEAD 1cc46b2697): recorded as an offline runtime when the
/// profile exists, skipped otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedProfile {
    /// The profile.
    #[serde(deserialize_with = "nd")]
    pub profile_id: ProfileId,
    /// The command the profile runs.
    #[serde(deserialize_with = "nd")]
    pub command_name: String,
    /// Why it could not start.
    #[serde(deserialize_with = "nd")]
    pub reason: String,
}

/// Body of `POST /api/daemon/register`. The HEAD 1cc46b2697 fields are
/// omitted when empty, so without them the body is the 3c93ebaf1c one.
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
    /// At least one runtime (at HEAD 1cc46b2697: or one failed profile).
    #[serde(deserialize_with = "nd")]
    pub runtimes: Vec<RuntimeSpec>,
    /// HEAD 1cc46b2697: the daemon's version, stored in each runtime's
    /// `metadata.cli_version`. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub cli_version: String,
    /// HEAD 1cc46b2697: what started the daemon (`desktop`…), stored in
    /// `metadata.launched_by`. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub launched_by: String,
    /// HEAD 1cc46b2697: former IDs of this daemon, whose runtime rows of the
    /// same provider are merged into the new ones. Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub legacy_daemon_ids: Vec<DaemonId>,
    /// HEAD 1cc46b2697: runtime profiles the daemon could not start.
    /// Omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub failed_profiles: Vec<FailedProfile>,
}

/// A runtime as the server stores it (in the register response).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
    /// HEAD 1cc46b2697: a name a user gave the runtime; `None` when unset
    /// (HEAD sends `null`), and from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_name: Option<String>,
    /// `local` for daemon runtimes.
    #[serde(deserialize_with = "nd")]
    pub runtime_mode: String,
    /// Provider (`claude`, `codex`, `unknown`…).
    #[serde(deserialize_with = "nd")]
    pub provider: String,
    /// HEAD 1cc46b2697: how the runtime launches its CLI (`claude
    /// (stream-json)`, `codex app-server`, `""` for others). `None` from
    /// 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_header: Option<String>,
    /// Online or offline.
    #[serde(deserialize_with = "nd")]
    pub status: RuntimeStatus,
    /// Free-form device description (`<device_name> · <version>` at HEAD).
    #[serde(deserialize_with = "nd")]
    pub device_info: String,
    /// Free-form metadata object; at HEAD 1cc46b2697 `{capabilities,
    /// cli_version, launched_by, version}`, `capabilities` being the
    /// registration's `X-Client-Capabilities` as a list (`null` without it).
    #[serde(deserialize_with = "nd")]
    pub metadata: Map<String, Value>,
    /// HEAD 1cc46b2697: the user who registered it (kept when a daemon
    /// token registers again). `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    /// HEAD 1cc46b2697: who may see it (`private`). `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// HEAD 1cc46b2697: the runtime profile it runs; `None` when none (HEAD
    /// sends `null`), and from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<ProfileId>,
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
#[non_exhaustive]
pub struct Repo {
    /// Clone URL.
    #[serde(deserialize_with = "nd")]
    pub url: String,
    /// What the repository is for.
    #[serde(deserialize_with = "nd")]
    pub description: String,
}

impl Repo {
    /// A repository with its URL and description.
    pub fn new(url: impl Into<String>, description: impl Into<String>) -> Self {
        Self { url: url.into(), description: description.into() }
    }
}

/// Response of `POST /api/daemon/register`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RegisterResponse {
    /// One runtime per runtime sent, in order.
    #[serde(deserialize_with = "nd")]
    pub runtimes: Vec<Runtime>,
    /// The workspace's repositories.
    #[serde(deserialize_with = "nd")]
    pub repos: Vec<Repo>,
    /// HEAD 1cc46b2697: SHA-256 (hex) of the sorted repository URLs joined
    /// by `\n`, to tell whether the repositories changed. Omitted when
    /// empty, and always empty from 3c93ebaf1c.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub repos_version: String,
    /// HEAD 1cc46b2697: the workspace's settings object (`{}` when none).
    /// `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Map<String, Value>>,
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
#[non_exhaustive]
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
