//! What a test stages in place of a user of the web UI (HEAD 1cc46b2697):
//! runtime requests ([`RuntimeRequest`]) and reruns ([`Rerun`]).

use serde::{Deserialize, Serialize};

use multica_api::{RuntimeId, RuntimeRequestId, TaskId};

/// What a user asks a runtime for; the heartbeat hands it out as
/// `pending_model_list`, `pending_local_skills`,
/// `pending_local_skill_import(s)` or `pending_update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeRequestKind {
    /// The runtime's model list (`POST /api/runtimes/{id}/models`).
    ModelList,
    /// The skills installed on the daemon's machine
    /// (`POST /api/runtimes/{id}/local-skills`).
    LocalSkills,
    /// The import of one local skill, named by `skill_key`
    /// (`POST /api/runtimes/{id}/local-skills/import`).
    LocalSkillImport,
    /// A CLI update to `target_version` (`POST /api/runtimes/{id}/update`).
    Update,
}

/// A runtime request, as `POST /_mock/runtime-requests` takes it and
/// answers it: `{"id"?, "runtime_id", "kind", "skill_key"?, "target_version"?}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeRequest {
    /// 32 lowercase hex digits, as the server's; generated when empty.
    #[serde(default, skip_serializing_if = "is_empty_id")]
    pub id: RuntimeRequestId,
    /// The runtime asked.
    pub runtime_id: RuntimeId,
    /// What it is asked for.
    pub kind: RuntimeRequestKind,
    /// The local skill to import (`claude:review`); required for an import,
    /// ignored otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub skill_key: String,
    /// The version to update to (`v9.9.9`); required for an update, ignored
    /// otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_version: String,
}

fn is_empty_id(id: &RuntimeRequestId) -> bool {
    id.as_str().is_empty()
}

impl RuntimeRequest {
    /// A request of `kind` for a runtime, its ID generated.
    pub fn new(runtime_id: impl Into<RuntimeId>, kind: RuntimeRequestKind) -> Self {
        Self {
            id: RuntimeRequestId::default(),
            runtime_id: runtime_id.into(),
            kind,
            skill_key: String::new(),
            target_version: String::new(),
        }
    }

    /// A model-list request for a runtime.
    pub fn model_list(runtime_id: impl Into<RuntimeId>) -> Self {
        Self::new(runtime_id, RuntimeRequestKind::ModelList)
    }

    /// A local-skills request for a runtime.
    pub fn local_skills(runtime_id: impl Into<RuntimeId>) -> Self {
        Self::new(runtime_id, RuntimeRequestKind::LocalSkills)
    }

    /// The import of the local skill `skill_key` from a runtime.
    pub fn skill_import(runtime_id: impl Into<RuntimeId>, skill_key: impl Into<String>) -> Self {
        Self { skill_key: skill_key.into(), ..Self::new(runtime_id, RuntimeRequestKind::LocalSkillImport) }
    }

    /// An update of a runtime's CLI to `target_version`.
    pub fn update(runtime_id: impl Into<RuntimeId>, target_version: impl Into<String>) -> Self {
        Self { target_version: target_version.into(), ..Self::new(runtime_id, RuntimeRequestKind::Update) }
    }

    /// The same request with this ID.
    pub fn with_id(mut self, id: impl Into<RuntimeRequestId>) -> Self {
        self.id = id.into();
        self
    }
}

/// A stored runtime request and where it is: `pending`, `running` (handed
/// out), `completed`, `failed` or `timeout`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RuntimeRequestState {
    /// The request.
    #[serde(flatten)]
    pub request: RuntimeRequest,
    /// `pending`, `running`, `completed`, `failed` or `timeout`.
    pub status: String,
    /// Why it failed or timed out; empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The daemon's completed report (the result route's body), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

/// A rerun of a task, as a user asks for it (`POST /api/issues/{id}/rerun`
/// with `{"task_id"}`): a new queued task of the same agent, issue and
/// runtime that resumes from the source task (see the crate docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Rerun {
    /// The new task's ID; generated when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<TaskId>,
    /// The task rerun.
    pub rerun_of_task_id: TaskId,
    /// The new task's priority; the source task's when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
}

impl Rerun {
    /// A rerun of `task_id`, its ID generated.
    pub fn of(task_id: impl Into<TaskId>) -> Self {
        Self { id: None, rerun_of_task_id: task_id.into(), priority: None }
    }

    /// The same rerun, creating the task with this ID.
    pub fn with_id(mut self, id: impl Into<TaskId>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The same rerun, queued with this priority.
    pub fn with_priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }
}
