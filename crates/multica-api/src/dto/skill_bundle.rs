//! `POST /api/daemon/runtimes/{rid}/tasks/{tid}/skill-bundles/resolve`
//! (server HEAD 1cc46b2697): the content of the skills a claim referenced.

use serde::{Deserialize, Serialize};

use super::SkillSource;
use crate::serde_util::{is_empty_str, null_as_default as nd};

/// One skill to fetch, as the claim's [`SkillRef`](super::SkillRef) names it.
/// All three fields are required (400 `invalid skill ref`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkillBundleRef {
    /// The skill's ID from the reference.
    #[serde(deserialize_with = "nd")]
    pub id: String,
    /// Its source from the reference.
    #[serde(deserialize_with = "nd")]
    pub source: SkillSource,
    /// Its hash from the reference.
    #[serde(deserialize_with = "nd")]
    pub hash: String,
}

impl From<&super::SkillRef> for SkillBundleRef {
    fn from(skill: &super::SkillRef) -> Self {
        Self { id: skill.id.clone(), source: skill.source.clone(), hash: skill.hash.clone() }
    }
}

/// Body of the resolve call. Allowed only while the task is dispatched or
/// waiting (409 `task is not preparing`); a skill not of the agent is 404
/// `skill bundle not found`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SkillBundleRequest {
    /// The skills to fetch; empty answers no bundles.
    #[serde(deserialize_with = "nd")]
    pub skills: Vec<SkillBundleRef>,
}

/// A file of a fetched skill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SkillBundleFile {
    /// Path relative to the skill's folder.
    #[serde(deserialize_with = "nd")]
    pub path: String,
    /// File content.
    #[serde(deserialize_with = "nd")]
    pub content: String,
    /// `sha256:` + 64 hex digits of the content.
    #[serde(deserialize_with = "nd")]
    pub sha256: String,
    /// Size of the content in bytes.
    #[serde(deserialize_with = "nd")]
    pub size_bytes: i64,
}

/// A fetched skill with its content. A workspace skill whose hash changed
/// since the claim comes with its current content (and hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SkillBundle {
    /// The skill's ID.
    #[serde(deserialize_with = "nd")]
    pub id: String,
    /// Where it comes from.
    #[serde(deserialize_with = "nd")]
    pub source: SkillSource,
    /// Skill name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// What it is for; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub description: String,
    /// `sha256:` + 64 hex digits over the whole skill.
    #[serde(deserialize_with = "nd")]
    pub hash: String,
    /// Total size in bytes.
    #[serde(deserialize_with = "nd")]
    pub size_bytes: i64,
    /// The skill's main document.
    #[serde(deserialize_with = "nd")]
    pub content: String,
    /// Supporting files.
    #[serde(deserialize_with = "nd")]
    pub files: Vec<SkillBundleFile>,
}

/// Answer of the resolve call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SkillBundleResponse {
    /// One bundle per requested skill.
    #[serde(deserialize_with = "nd")]
    pub bundles: Vec<SkillBundle>,
}
