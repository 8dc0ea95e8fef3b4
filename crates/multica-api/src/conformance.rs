//! The conformance suite: contract tests written once against
//! `&dyn DaemonApi`, run on every backend (feature `conformance`).
//!
//! A backend passes when [`run_all`] returns `Ok`. The tests need a little
//! help to set up state that only the server's admin side can create
//! (workspaces, agents, queued tasks, pings): that is the [`Fixture`] trait,
//! which the fake implements; a third-party transport runs the suite over the
//! fake's HTTP server and passes the fake as the fixture.

use async_trait::async_trait;

use crate::dto::{Repo, Runtime, TaskAgent, UsageEntry};
use crate::error::Result;
use crate::ids::{AgentId, IssueId, PingId, RuntimeId, TaskId, WorkspaceId};

/// A task to put in a runtime's queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewTask {
    /// The runtime whose queue it joins.
    pub runtime_id: RuntimeId,
    /// The agent that runs it.
    pub agent_id: AgentId,
    /// The issue it works on.
    pub issue_id: IssueId,
    /// Higher is claimed first.
    pub priority: i64,
}

/// Server-side set-up and inspection the suite needs beyond the daemon API.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Creates a workspace with these repositories.
    async fn create_workspace(&self, name: &str, repos: &[Repo]) -> Result<WorkspaceId>;
    /// Creates an agent in a workspace (`agent.id` is ignored; the new ID is returned).
    async fn create_agent(&self, workspace_id: &WorkspaceId, agent: &TaskAgent) -> Result<AgentId>;
    /// Queues a task; its workspace is the runtime's.
    async fn enqueue_task(&self, task: &NewTask) -> Result<TaskId>;
    /// Cancels a task, as reassigning or closing its issue does.
    async fn cancel_task(&self, task_id: &TaskId) -> Result<()>;
    /// Asks a runtime to answer a ping at its next heartbeat.
    async fn create_ping(&self, runtime_id: &RuntimeId) -> Result<PingId>;
    /// The stored usage rows of a runtime, in any order.
    async fn usage(&self, runtime_id: &RuntimeId) -> Result<Vec<UsageEntry>>;
    /// The stored runtime, if it exists.
    async fn runtime(&self, runtime_id: &RuntimeId) -> Result<Option<Runtime>>;
}
