//! Heartbeats and the runtime requests they hand out (server HEAD
//! 1cc46b2697; 3c93ebaf1c has none of this but the ping).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{RuntimeId, RuntimeRequestId};
use crate::serde_util::{is_empty_str, is_false, null_as_default as nd};

/// Body of `POST /api/daemon/heartbeat`. Without `supports_batch_import` it
/// is the 3c93ebaf1c body `{"runtime_id": …}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeartbeatRequest {
    /// The runtime that is alive.
    #[serde(deserialize_with = "nd")]
    pub runtime_id: RuntimeId,
    /// HEAD 1cc46b2697: the daemon takes several skill imports at once
    /// ([`HeartbeatResponse::pending_local_skill_imports`](super::HeartbeatResponse::pending_local_skill_imports)).
    /// Omitted when `false`.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub supports_batch_import: bool,
}

impl HeartbeatRequest {
    /// A heartbeat of one runtime, as 3c93ebaf1c knows it.
    pub fn new(runtime_id: RuntimeId) -> Self {
        Self { runtime_id, supports_batch_import: false }
    }
}

/// A pending runtime request that carries only its ID (`pending_model_list`,
/// `pending_local_skills`); answer it under that ID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PendingRuntimeRequest {
    /// The request's ID, to report its result under.
    #[serde(deserialize_with = "nd")]
    pub id: RuntimeRequestId,
}

/// A pending update of the daemon (`pending_update`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PendingUpdate {
    /// The update's ID, to report its progress under.
    #[serde(deserialize_with = "nd")]
    pub id: RuntimeRequestId,
    /// The version to update to (`v9.9.9`).
    #[serde(deserialize_with = "nd")]
    pub target_version: String,
}

/// A pending import of one local skill (`pending_local_skill_import(s)`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PendingSkillImport {
    /// The import's ID, to report its result under.
    #[serde(deserialize_with = "nd")]
    pub id: RuntimeRequestId,
    /// The local skill to import (`claude:review`).
    #[serde(deserialize_with = "nd")]
    pub skill_key: String,
}

/// A model a runtime offers, in a [`ModelListResult`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeModel {
    /// The model's ID as the CLI takes it.
    #[serde(deserialize_with = "nd")]
    pub id: String,
    /// Display name.
    #[serde(deserialize_with = "nd")]
    pub label: String,
    /// Provider; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub provider: String,
    /// Whether the CLI uses it by default; omitted when `false`.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub default: bool,
    /// Reasoning levels it supports (any JSON, passed through: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    /// Service tiers it supports (any JSON, passed through: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tiers: Option<Value>,
}

/// Body of `POST /api/daemon/runtimes/{rid}/models/{req}/result` (HEAD
/// 1cc46b2697).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelListResult {
    /// `completed`, or anything else for a failure.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// The models.
    #[serde(deserialize_with = "nd")]
    pub models: Vec<RuntimeModel>,
    /// Whether the runtime can list models; the server reads an absent
    /// value as `true`. Omitted when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported: Option<bool>,
    /// Why listing failed; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub error: String,
    /// The list is a built-in fallback, not the CLI's own; omitted when
    /// `false`.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub fallback: bool,
}

/// A skill installed on the daemon's machine, in a [`LocalSkillsResult`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalSkill {
    /// `<provider>:<name>`, what an import names.
    #[serde(deserialize_with = "nd")]
    pub key: String,
    /// Skill name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// What it is for; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub description: String,
    /// Where it lives on the machine.
    #[serde(deserialize_with = "nd")]
    pub source_path: String,
    /// The CLI it belongs to.
    #[serde(deserialize_with = "nd")]
    pub provider: String,
    /// Its skills root; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub root: String,
    /// The CLI plugin that ships it; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub plugin: String,
    /// Whether a user may disable it for an agent; omitted when `false`.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub can_disable: bool,
    /// Number of files.
    #[serde(deserialize_with = "nd")]
    pub file_count: i64,
}

/// Body of `POST /api/daemon/runtimes/{rid}/local-skills/{req}/result` (HEAD
/// 1cc46b2697).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalSkillsResult {
    /// `completed`, or anything else for a failure.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// The skills found.
    #[serde(deserialize_with = "nd")]
    pub skills: Vec<LocalSkill>,
    /// Whether the runtime has local skills at all; omitted when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported: Option<bool>,
    /// Local MCP servers (any JSON, passed through: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_servers: Option<Value>,
    /// Whether the runtime has local MCP servers; omitted when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_supported: Option<bool>,
    /// Why listing failed; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub error: String,
}

/// Body of `POST /api/daemon/runtimes/{rid}/local-skills/import/{req}/result`
/// (HEAD 1cc46b2697). `completed` without a skill fails the import.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkillImportResult {
    /// `completed`, or anything else for a failure.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// The imported skill `{name, description, content, source_path,
    /// provider, files}` (passed through as JSON: not recorded); omitted when
    /// `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skill: Option<Map<String, Value>>,
    /// Why the import failed; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub error: String,
}

/// Body of `POST /api/daemon/runtimes/{rid}/update/{upd}/result` (HEAD
/// 1cc46b2697). The server answers 400 `invalid status: <status>` for a
/// status other than `running`, `completed`, `failed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateResult {
    /// `running`, `completed` or `failed`.
    #[serde(deserialize_with = "nd")]
    pub status: String,
    /// What the updater printed; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub output: String,
    /// Why it failed; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub error: String,
}
