//! Workspace answers a daemon reads at server HEAD 1cc46b2697.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Repo;
use crate::ids::WorkspaceId;
use crate::serde_util::null_as_default as nd;

/// A workspace as `GET /api/daemon/workspaces` lists it (HEAD 1cc46b2697):
/// the user's workspaces for a personal token or JWT, the token's own one for
/// a daemon token (which cannot list `/api/workspaces`). Ordered by ID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DaemonWorkspace {
    /// The workspace's ID.
    #[serde(deserialize_with = "nd")]
    pub id: WorkspaceId,
    /// Display name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
}

impl DaemonWorkspace {
    /// The workspace with this ID and name.
    pub fn new(id: WorkspaceId, name: impl Into<String>) -> Self {
        Self { id, name: name.into() }
    }
}

/// Answer of `GET /api/daemon/workspaces/{wid}/repos` (HEAD 1cc46b2697): the
/// workspace's repositories, as a registration answers them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct WorkspaceRepos {
    /// The workspace.
    #[serde(deserialize_with = "nd")]
    pub workspace_id: WorkspaceId,
    /// Its repositories.
    #[serde(deserialize_with = "nd")]
    pub repos: Vec<Repo>,
    /// SHA-256 (hex) of the sorted repository URLs joined by `\n`.
    #[serde(deserialize_with = "nd")]
    pub repos_version: String,
    /// The workspace's settings object.
    #[serde(deserialize_with = "nd")]
    pub settings: Map<String, Value>,
}

/// Answer of `GET /api/daemon/workspaces/{wid}/runtime-profiles` (HEAD
/// 1cc46b2697): the workspace's custom runtime profiles, which a daemon may
/// start as runtimes (registering them with
/// [`RuntimeSpec::profile_id`](super::RuntimeSpec::profile_id)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct RuntimeProfiles {
    /// The profiles, as JSON objects (their shape was not recorded: passed
    /// through).
    #[serde(deserialize_with = "nd")]
    pub runtime_profiles: Vec<Map<String, Value>>,
    /// The workspace.
    #[serde(deserialize_with = "nd")]
    pub workspace_id: WorkspaceId,
}
