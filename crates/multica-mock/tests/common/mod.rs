//! Shared set-up for the integration tests.
#![allow(dead_code, clippy::unwrap_used)] // Each test file uses a different part.

use multica_api::{
    AgentId, DaemonApiExt, Error, IssueId, RegisterRequest, Repo, RuntimeId, RuntimeSpec, Skill, SkillFile, TaskId,
    WorkspaceId,
};
use multica_mock::{AgentSeed, MockDaemon, TaskSeed, WorkspaceSeed};

/// A fake with one workspace (one repo), one agent (one skill) and one
/// registered `claude` runtime of daemon `d1`.
pub struct World {
    pub mock: MockDaemon,
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub runtime_id: RuntimeId,
}

pub fn repo() -> Repo {
    Repo::new("https://example.com/app.git", "the app")
}

pub fn skill() -> Skill {
    let mut skill = Skill::default();
    skill.name = "testing".into();
    skill.content = "run the tests".into();
    skill.files = vec![SkillFile::new("a.md", "A")];
    skill
}

pub async fn world_with(mock: MockDaemon) -> World {
    let workspace_id = mock
        .add_workspace(WorkspaceSeed { name: "Team".into(), repos: vec![repo()], ..WorkspaceSeed::default() })
        .unwrap();
    let agent_id = mock
        .add_agent(AgentSeed {
            workspace_id: workspace_id.clone(),
            name: "Builder".into(),
            instructions: "be careful".into(),
            skills: vec![skill()],
            ..AgentSeed::default()
        })
        .unwrap();
    let registered = mock.register(&register_request(&workspace_id, "d1", "claude")).await.unwrap();
    let runtime_id = registered.runtimes[0].id.clone();
    World { mock, workspace_id, agent_id, runtime_id }
}

pub async fn world() -> World {
    world_with(MockDaemon::new()).await
}

pub fn register_request(workspace_id: &WorkspaceId, daemon: &str, provider: &str) -> RegisterRequest {
    RegisterRequest {
        workspace_id: workspace_id.clone(),
        daemon_id: daemon.into(),
        device_name: "host".into(),
        runtimes: vec![RuntimeSpec {
            name: String::new(),
            provider: provider.into(),
            version: "1.2".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

impl World {
    pub fn enqueue(&self, issue: &str, priority: i64) -> TaskId {
        self.mock
            .add_task(TaskSeed {
                id: None,
                runtime_id: self.runtime_id.clone(),
                agent_id: self.agent_id.clone(),
                issue_id: IssueId::new(issue),
                priority,
            })
            .unwrap()
    }

    /// Enqueues and claims one task; returns its ID.
    pub async fn dispatched(&self, issue: &str) -> TaskId {
        let id = self.enqueue(issue, 1000);
        let task = self.mock.claim_task(&self.runtime_id).await.unwrap().unwrap();
        assert_eq!(task.record.id, id);
        id
    }
}

/// Asserts two errors are the same value as far as a caller can tell.
pub fn assert_same_error(actual: &Error, expected: &Error) {
    assert_eq!(actual.to_string(), expected.to_string());
    assert_eq!(actual.status(), expected.status());
    assert_eq!(actual.body(), expected.body());
    assert_eq!(actual.method(), expected.method());
    assert_eq!(actual.path(), expected.path());
}
