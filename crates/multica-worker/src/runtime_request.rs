//! Runtime requests (server HEAD 1cc46b2697): a user opens the model picker,
//! lists or imports the machine's local skills, or asks for a CLI update;
//! the server queues the request and the next heartbeat of the runtime hands
//! it out. The worker asks the [`Agent`](crate::Agent)'s hook and reports the
//! answer in the server's terms, as the Go daemon does, so the UI shows an
//! answer (a "not supported" too) at once instead of waiting for the request
//! to expire.

use std::sync::Arc;

use multica_api::layer::RetryPolicy;
use multica_api::{
    DaemonApiExt, Endpoint, Error, HeartbeatResponse, LocalSkill, LocalSkillsResult, ModelListResult,
    PendingSkillImport, Runtime, RuntimeModel, RuntimeRequestId, SkillFile, SkillImportResult, UpdateResult,
};
use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::event::WorkerEvent;
use crate::worker::Shared;

/// An agent's answer to a runtime request.
#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeAnswer<T> {
    /// The request was carried out: here is the result.
    Answered(T),
    /// This agent cannot do that (the default of every hook): told to the
    /// server as the Go daemon tells it for a runtime without the feature.
    Unsupported,
    /// It was tried and failed, for this reason (shown to the user).
    Failed(String),
}

/// The models a runtime offers, for [`Agent::list_models`](crate::Agent::list_models).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelCatalog {
    /// The models, the CLI's default marked.
    pub models: Vec<RuntimeModel>,
    /// The list is a built-in fallback, not what the CLI itself reported:
    /// shown, but not stored as the runtime's catalog.
    pub fallback: bool,
}

impl ModelCatalog {
    /// A catalog of `models` the CLI reported.
    pub fn new(models: Vec<RuntimeModel>) -> Self {
        Self { models, fallback: false }
    }
}

/// A local skill read for import, for
/// [`Agent::import_local_skill`](crate::Agent::import_local_skill): what the
/// Go daemon sends (`{name, description, content, source_path, provider,
/// files}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportedSkill {
    /// Skill name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The main document (`SKILL.md`).
    pub content: String,
    /// Where it lives on the machine.
    pub source_path: String,
    /// The CLI it belongs to.
    pub provider: String,
    /// Supporting files, paths relative to the skill's folder.
    pub files: Vec<SkillFile>,
}

impl ImportedSkill {
    fn into_json(self) -> Map<String, Value> {
        let mut skill = Map::new();
        skill.insert("name".into(), Value::String(self.name));
        if !self.description.is_empty() {
            skill.insert("description".into(), Value::String(self.description));
        }
        skill.insert("content".into(), Value::String(self.content));
        skill.insert("source_path".into(), Value::String(self.source_path));
        skill.insert("provider".into(), Value::String(self.provider));
        if !self.files.is_empty() {
            let files =
                self.files.into_iter().map(|file| serde_json::json!({"path": file.path, "content": file.content}));
            skill.insert("files".into(), Value::Array(files.collect()));
        }
        skill
    }
}

/// The status the server reads as done.
const COMPLETED: &str = "completed";
/// The status of a request that failed.
const FAILED: &str = "failed";

fn model_list_result(answer: RuntimeAnswer<ModelCatalog>) -> ModelListResult {
    match answer {
        RuntimeAnswer::Answered(catalog) => ModelListResult {
            status: COMPLETED.into(),
            models: catalog.models,
            supported: Some(true),
            fallback: catalog.fallback,
            ..ModelListResult::default()
        },
        // The Go daemon's answer for a provider without model selection.
        RuntimeAnswer::Unsupported => {
            ModelListResult { status: COMPLETED.into(), supported: Some(false), ..ModelListResult::default() }
        }
        RuntimeAnswer::Failed(error) => ModelListResult { status: FAILED.into(), error, ..ModelListResult::default() },
    }
}

fn local_skills_result(answer: RuntimeAnswer<Vec<LocalSkill>>) -> LocalSkillsResult {
    match answer {
        RuntimeAnswer::Answered(skills) => LocalSkillsResult {
            status: COMPLETED.into(),
            skills,
            supported: Some(true),
            mcp_servers: Some(Value::Array(Vec::new())),
            mcp_supported: Some(false),
            ..LocalSkillsResult::default()
        },
        RuntimeAnswer::Unsupported => LocalSkillsResult {
            status: COMPLETED.into(),
            supported: Some(false),
            mcp_servers: Some(Value::Array(Vec::new())),
            mcp_supported: Some(false),
            ..LocalSkillsResult::default()
        },
        RuntimeAnswer::Failed(error) => {
            LocalSkillsResult { status: FAILED.into(), error, ..LocalSkillsResult::default() }
        }
    }
}

fn skill_import_result(runtime: &Runtime, answer: RuntimeAnswer<ImportedSkill>) -> SkillImportResult {
    match answer {
        RuntimeAnswer::Answered(skill) => SkillImportResult {
            status: COMPLETED.into(),
            skill: Some(skill.into_json()),
            ..SkillImportResult::default()
        },
        // The Go daemon's words for a provider without local skills.
        RuntimeAnswer::Unsupported => SkillImportResult {
            status: FAILED.into(),
            error: format!("provider {:?} does not expose runtime local skills", runtime.provider),
            ..SkillImportResult::default()
        },
        RuntimeAnswer::Failed(error) => {
            SkillImportResult { status: FAILED.into(), error, ..SkillImportResult::default() }
        }
    }
}

fn update_result(answer: RuntimeAnswer<String>) -> UpdateResult {
    match answer {
        RuntimeAnswer::Answered(output) => UpdateResult { status: COMPLETED.into(), output, ..UpdateResult::default() },
        RuntimeAnswer::Unsupported => UpdateResult {
            status: FAILED.into(),
            error: "this daemon does not update itself; update the program that runs it".into(),
            ..UpdateResult::default()
        },
        RuntimeAnswer::Failed(error) => UpdateResult { status: FAILED.into(), error, ..UpdateResult::default() },
    }
}

/// What kind of request was answered, for [`WorkerEvent::RuntimeRequestAnswered`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuntimeRequestKind {
    /// The runtime's models.
    ModelList,
    /// The machine's local skills.
    LocalSkills,
    /// An import of one local skill.
    SkillImport,
    /// An update of the daemon's CLI.
    Update,
}

impl std::fmt::Display for RuntimeRequestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ModelList => "model list",
            Self::LocalSkills => "local skills",
            Self::SkillImport => "skill import",
            Self::Update => "update",
        })
    }
}

/// Starts answering every request `answer` handed out for `runtime`, each
/// on its own task so a slow agent cannot delay the next heartbeat. Batch
/// imports (`pending_local_skill_imports`) are preferred over the single one,
/// as the Go daemon does.
pub(crate) fn dispatch(
    shared: &Arc<Shared>,
    requests: &mut JoinSet<()>,
    runtime: &Runtime,
    answer: &HeartbeatResponse,
) {
    if let Some(update) = &answer.pending_update {
        let (shared, runtime, update) = (Arc::clone(shared), runtime.clone(), update.clone());
        requests.spawn(async move {
            let result = update_result(shared.agent.update(&runtime, &update.target_version).await);
            let sent = report(&shared.config.call_retry, Endpoint::ReportUpdateResult, || {
                shared.api.report_update_result(&runtime.id, &update.id, &result)
            })
            .await;
            settle(&shared, &runtime, RuntimeRequestKind::Update, update.id, &result.status, sent);
        });
    }
    if let Some(request) = &answer.pending_model_list {
        let (shared, runtime, id) = (Arc::clone(shared), runtime.clone(), request.id.clone());
        requests.spawn(async move {
            let result = model_list_result(shared.agent.list_models(&runtime).await);
            let sent = report(&shared.config.call_retry, Endpoint::ReportModelList, || {
                shared.api.report_model_list(&runtime.id, &id, &result)
            })
            .await;
            settle(&shared, &runtime, RuntimeRequestKind::ModelList, id, &result.status, sent);
        });
    }
    if let Some(request) = &answer.pending_local_skills {
        let (shared, runtime, id) = (Arc::clone(shared), runtime.clone(), request.id.clone());
        requests.spawn(async move {
            let result = local_skills_result(shared.agent.list_local_skills(&runtime).await);
            let sent = report(&shared.config.call_retry, Endpoint::ReportLocalSkills, || {
                shared.api.report_local_skills(&runtime.id, &id, &result)
            })
            .await;
            settle(&shared, &runtime, RuntimeRequestKind::LocalSkills, id, &result.status, sent);
        });
    }
    let imports: Vec<PendingSkillImport> = if answer.pending_local_skill_imports.is_empty() {
        answer.pending_local_skill_import.iter().cloned().collect()
    } else {
        answer.pending_local_skill_imports.clone()
    };
    for import in imports {
        let (shared, runtime) = (Arc::clone(shared), runtime.clone());
        requests.spawn(async move {
            let answer = shared.agent.import_local_skill(&runtime, &import.skill_key).await;
            let result = skill_import_result(&runtime, answer);
            let sent = report(&shared.config.call_retry, Endpoint::ReportSkillImport, || {
                shared.api.report_skill_import(&runtime.id, &import.id, &result)
            })
            .await;
            settle(&shared, &runtime, RuntimeRequestKind::SkillImport, import.id, &result.status, sent);
        });
    }
}

/// Sends a result, repeating transient failures with
/// [`WorkerConfig::call_retry`](crate::WorkerConfig::call_retry) (by default
/// within 30 s, like the Go daemon's 0.5–4 s schedule): the server gives up
/// on a request after 60 s.
async fn report<F, Fut>(retry: &RetryPolicy, endpoint: Endpoint, send: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    retry.run(endpoint, send).await
}

fn settle(
    shared: &Shared,
    runtime: &Runtime,
    kind: RuntimeRequestKind,
    request_id: RuntimeRequestId,
    status: &str,
    sent: Result<(), Error>,
) {
    let runtime_id = runtime.id.clone();
    match sent {
        Ok(()) => shared.events.emit(WorkerEvent::RuntimeRequestAnswered {
            runtime_id,
            kind,
            request_id,
            completed: status == COMPLETED,
        }),
        Err(error) => {
            shared.events.emit(WorkerEvent::RuntimeRequestReportFailed { runtime_id, kind, request_id, error })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> Runtime {
        serde_json::from_value(serde_json::json!({"id": "rt-1", "provider": "claude"})).unwrap_or_default()
    }

    #[test]
    fn unsupported_answers_say_so_in_the_go_daemons_terms() {
        let models = serde_json::to_value(model_list_result(RuntimeAnswer::Unsupported)).ok();
        assert_eq!(models, Some(serde_json::json!({"status": "completed", "models": [], "supported": false})));
        let skills = serde_json::to_value(local_skills_result(RuntimeAnswer::Unsupported)).ok();
        assert_eq!(
            skills,
            Some(serde_json::json!({"status": "completed", "skills": [], "supported": false,
                "mcp_servers": [], "mcp_supported": false}))
        );
        let import = serde_json::to_value(skill_import_result(&runtime(), RuntimeAnswer::Unsupported)).ok();
        assert_eq!(
            import,
            Some(serde_json::json!({"status": "failed",
                "error": "provider \"claude\" does not expose runtime local skills"}))
        );
        let update = update_result(RuntimeAnswer::Unsupported);
        assert_eq!(update.status, "failed");
        assert!(!update.error.is_empty());
    }

    #[test]
    fn an_answered_import_carries_the_skill_as_the_go_daemon_sends_it() {
        let skill = ImportedSkill {
            name: "review".into(),
            content: "# Review".into(),
            source_path: "/home/u/.claude/skills/review".into(),
            provider: "claude".into(),
            files: vec![SkillFile::new("a.md", "a")],
            ..ImportedSkill::default()
        };
        let result = skill_import_result(&runtime(), RuntimeAnswer::Answered(skill));
        assert_eq!(
            serde_json::to_value(result).ok(),
            Some(serde_json::json!({"status": "completed", "skill": {"name": "review", "content": "# Review",
                "source_path": "/home/u/.claude/skills/review", "provider": "claude",
                "files": [{"path": "a.md", "content": "a"}]}}))
        );
    }
}
