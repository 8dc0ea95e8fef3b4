//! The conformance suite's [`Fixture`] on the fake: server-side set-up the
//! daemon API cannot do.

use async_trait::async_trait;

use multica_api::conformance::{Fixture, NewTask};
use multica_api::ServerVersion;
use multica_api::{AgentId, PingId, Repo, Result, Runtime, RuntimeId, TaskAgent, TaskId, UsageEntry, WorkspaceId};

use crate::seed::{AgentSeed, TaskSeed, WorkspaceSeed};
use crate::MockDaemon;

#[async_trait]
impl Fixture for MockDaemon {
    fn version(&self) -> ServerVersion {
        self.server_version()
    }

    async fn create_workspace(&self, name: &str, repos: &[Repo]) -> Result<WorkspaceId> {
        self.add_workspace(WorkspaceSeed { name: name.to_owned(), repos: repos.to_vec(), ..WorkspaceSeed::default() })
    }

    async fn create_agent(&self, workspace_id: &WorkspaceId, agent: &TaskAgent) -> Result<AgentId> {
        self.add_agent(AgentSeed {
            id: None,
            workspace_id: workspace_id.clone(),
            name: agent.name.clone(),
            instructions: agent.instructions.clone(),
            skills: agent.skills.clone(),
            max_concurrent_tasks: None,
            skill_hashes: Default::default(),
        })
    }

    async fn enqueue_task(&self, task: &NewTask) -> Result<TaskId> {
        self.add_task(TaskSeed {
            id: None,
            runtime_id: task.runtime_id.clone(),
            agent_id: task.agent_id.clone(),
            issue_id: task.issue_id.clone(),
            priority: task.priority,
        })
    }

    async fn cancel_task(&self, task_id: &TaskId) -> Result<()> {
        self.cancel(task_id).map(drop)
    }

    async fn create_ping(&self, runtime_id: &RuntimeId) -> Result<PingId> {
        self.request_ping(runtime_id)
    }

    async fn usage(&self, runtime_id: &RuntimeId) -> Result<Vec<UsageEntry>> {
        Ok(self.usage_of(runtime_id))
    }

    async fn runtime(&self, runtime_id: &RuntimeId) -> Result<Option<Runtime>> {
        Ok(self.runtime_by_id(runtime_id))
    }
}
