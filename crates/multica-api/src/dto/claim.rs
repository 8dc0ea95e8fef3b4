//! Parts of a claimed task that only server HEAD 1cc46b2697 sends.

use serde::{Deserialize, Serialize};

use super::{SkillSource, TaskStatus};
use crate::ids::{IssueId, TaskId};
use crate::serde_util::{is_empty_str, null_as_default as nd};

/// Another active task of the same agent (`active_sibling_runs` of a claim,
/// HEAD 1cc46b2697), so the agent knows what else it is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SiblingRun {
    /// The other task.
    #[serde(deserialize_with = "nd")]
    pub task_id: TaskId,
    /// Its issue.
    #[serde(deserialize_with = "nd")]
    pub issue_id: IssueId,
    /// The issue's key (`DIF-1`).
    #[serde(deserialize_with = "nd")]
    pub issue_identifier: String,
    /// The issue's title.
    #[serde(deserialize_with = "nd")]
    pub issue_title: String,
    /// The other task's status (dispatched, running or waiting).
    #[serde(deserialize_with = "nd")]
    pub status: TaskStatus,
    /// When the other task was created (RFC 3339).
    #[serde(deserialize_with = "nd")]
    pub created_at: String,
    /// When it started; `None` (omitted) until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// A file of a referenced skill: its digest, not its content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SkillRefFile {
    /// Path relative to the skill's folder.
    #[serde(deserialize_with = "nd")]
    pub path: String,
    /// `sha256:` + 64 hex digits of the content.
    #[serde(deserialize_with = "nd")]
    pub sha256: String,
    /// Size of the content in bytes.
    #[serde(deserialize_with = "nd")]
    pub size_bytes: i64,
}

/// A skill of a claimed agent by reference (`agent.skill_refs`, HEAD
/// 1cc46b2697 claims with the `skill-bundles-v1` capability). The content is
/// fetched with `POST /runtimes/{rid}/tasks/{tid}/skill-bundles/resolve`
/// (see [`SkillBundleRequest`](super::SkillBundleRequest)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SkillRef {
    /// `builtin:<name>` for a built-in skill, the UUID of a workspace skill.
    #[serde(deserialize_with = "nd")]
    pub id: String,
    /// Where the skill comes from.
    #[serde(deserialize_with = "nd")]
    pub source: SkillSource,
    /// Skill name.
    #[serde(deserialize_with = "nd")]
    pub name: String,
    /// What the skill is for; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub description: String,
    /// `sha256:` + 64 hex digits over the whole skill: a daemon may keep a
    /// cache keyed by it.
    #[serde(deserialize_with = "nd")]
    pub hash: String,
    /// Total size in bytes.
    #[serde(deserialize_with = "nd")]
    pub size_bytes: i64,
    /// Number of supporting files.
    #[serde(deserialize_with = "nd")]
    pub file_count: i64,
    /// The supporting files; omitted when none.
    #[serde(deserialize_with = "nd", skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<SkillRefFile>,
}

/// Someone a task is attributed to (`attribution.initiator` / `originator`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AttributionActor {
    /// The actor's ID (a user's, for a task a person caused).
    #[serde(deserialize_with = "nd")]
    pub id: String,
}

impl AttributionActor {
    /// The actor with this ID.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// What a task's attribution rests on (`attribution.evidence`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AttributionEvidence {
    /// The kind of evidence, e.g. `issue_assignment`.
    #[serde(deserialize_with = "nd")]
    pub kind: String,
    /// The object it refers to (the issue, for an assignment).
    #[serde(deserialize_with = "nd")]
    pub ref_id: String,
}

/// Who a task acts for and why (`attribution` of a task row, HEAD
/// 1cc46b2697). Recorded for an assignment:
/// `{"source":"direct_human","precise":true,"initiator":{"id":USER},
/// "originator":{"id":USER},"evidence":{"kind":"issue_assignment","ref_id":ISSUE}}`,
/// plus `retry_of_task_id` on automatic retries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TaskAttribution {
    /// How the task came about, e.g. `direct_human`.
    #[serde(deserialize_with = "nd")]
    pub source: String,
    /// Whether the attribution is exact rather than inferred.
    #[serde(deserialize_with = "nd")]
    pub precise: bool,
    /// Who started this task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator: Option<AttributionActor>,
    /// Who the chain of tasks started with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originator: Option<AttributionActor>,
    /// What the attribution rests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<AttributionEvidence>,
    /// The attribution rule's version; omitted when empty.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub rule_version_id: String,
    /// The task that delegated this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegated_from_task_id: Option<TaskId>,
    /// The failed task this one automatically retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of_task_id: Option<TaskId>,
    /// The task this one reruns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of_task_id: Option<TaskId>,
}
