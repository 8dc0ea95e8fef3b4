//! A scripted `DaemonApi` for this crate's unit tests: records every call and
//! answers from a per-route script of outcomes (then success with empty values).

#![allow(dead_code)] // Each test module uses a different part of it.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::dto::*;
use crate::error::{Error, Result};
use crate::ids::{PingId, RuntimeId, TaskId};
use crate::{Call, DaemonApi, Endpoint};

/// What one call does before answering.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// Fail with this error.
    Fail(Error),
    /// Wait (on tokio's clock), then succeed.
    Delay(Duration),
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    script: HashMap<Endpoint, VecDeque<Outcome>>,
}

/// Cheap to clone; clones share the log and script.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScriptedApi {
    inner: Arc<Mutex<Inner>>,
}

impl ScriptedApi {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues outcomes for the next calls of `endpoint`.
    pub(crate) fn script(&self, endpoint: Endpoint, outcomes: impl IntoIterator<Item = Outcome>) {
        let mut inner = self.inner.lock().expect("test double lock");
        inner.script.entry(endpoint).or_default().extend(outcomes);
    }

    /// Every call so far, in order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("test double lock").calls.clone()
    }

    /// How many calls of `endpoint` were made.
    pub(crate) fn count(&self, endpoint: Endpoint) -> usize {
        self.calls().iter().filter(|call| call.endpoint() == endpoint).count()
    }

    async fn answer(&self, call: Call) -> Result<()> {
        let outcome = {
            let mut inner = self.inner.lock().expect("test double lock");
            let endpoint = call.endpoint();
            inner.calls.push(call);
            inner.script.get_mut(&endpoint).and_then(VecDeque::pop_front)
        };
        match outcome {
            Some(Outcome::Fail(err)) => Err(err),
            Some(Outcome::Delay(after)) => {
                tokio::time::sleep(after).await;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A 503 as the hyper client would build it.
pub(crate) fn unavailable(endpoint: Endpoint) -> Error {
    Error::from_server_message(endpoint.method(), endpoint.template(), 503, "unavailable")
}

#[async_trait]
impl DaemonApi for ScriptedApi {
    async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse> {
        self.answer(Call::Register(request.clone())).await.map(|()| RegisterResponse::default())
    }
    async fn deregister(&self, runtime_ids: &[RuntimeId]) -> Result<()> {
        self.answer(Call::Deregister { runtime_ids: runtime_ids.to_vec() }).await
    }
    async fn send_heartbeat(&self, runtime_id: &RuntimeId) -> Result<HeartbeatResponse> {
        self.answer(Call::SendHeartbeat { runtime_id: runtime_id.clone() }).await.map(|()| HeartbeatResponse::default())
    }
    async fn claim_task(&self, runtime_id: &RuntimeId) -> Result<Option<Task>> {
        self.answer(Call::ClaimTask { runtime_id: runtime_id.clone() }).await.map(|()| None)
    }
    async fn list_pending_tasks(&self, runtime_id: &RuntimeId) -> Result<Vec<TaskRecord>> {
        self.answer(Call::ListPendingTasks { runtime_id: runtime_id.clone() }).await.map(|()| Vec::new())
    }
    async fn report_usage(&self, runtime_id: &RuntimeId, entries: &[UsageEntry]) -> Result<()> {
        self.answer(Call::ReportUsage { runtime_id: runtime_id.clone(), entries: entries.to_vec() }).await
    }
    async fn report_ping_result(&self, runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) -> Result<()> {
        let call =
            Call::ReportPingResult { runtime_id: runtime_id.clone(), ping_id: ping_id.clone(), result: result.clone() };
        self.answer(call).await
    }
    async fn get_task_status(&self, task_id: &TaskId) -> Result<TaskStatus> {
        self.answer(Call::GetTaskStatus { task_id: task_id.clone() }).await.map(|()| TaskStatus::Running)
    }
    async fn start_task(&self, task_id: &TaskId) -> Result<()> {
        self.answer(Call::StartTask { task_id: task_id.clone() }).await
    }
    async fn report_progress(&self, task_id: &TaskId, progress: &TaskProgress) -> Result<()> {
        self.answer(Call::ReportProgress { task_id: task_id.clone(), progress: progress.clone() }).await
    }
    async fn complete_task(&self, task_id: &TaskId, completion: &TaskCompletion) -> Result<()> {
        self.answer(Call::CompleteTask { task_id: task_id.clone(), completion: completion.clone() }).await
    }
    async fn fail_task(&self, task_id: &TaskId, error: &str) -> Result<()> {
        self.answer(Call::FailTask { task_id: task_id.clone(), error: error.to_owned() }).await
    }
    async fn report_task_messages(&self, task_id: &TaskId, messages: &[TaskMessage]) -> Result<()> {
        self.answer(Call::ReportTaskMessages { task_id: task_id.clone(), messages: messages.to_vec() }).await
    }
    async fn list_task_messages(&self, task_id: &TaskId) -> Result<Vec<StoredTaskMessage>> {
        self.answer(Call::ListTaskMessages { task_id: task_id.clone() }).await.map(|()| Vec::new())
    }
    async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        self.answer(Call::ListWorkspaces).await.map(|()| Vec::new())
    }
    async fn create_pairing_session(&self, request: &PairingRequest) -> Result<PairingSession> {
        self.answer(Call::CreatePairingSession(request.clone())).await.map(|()| PairingSession::default())
    }
    async fn get_pairing_session(&self, token: &str) -> Result<PairingSession> {
        self.answer(Call::GetPairingSession { token: token.to_owned() }).await.map(|()| PairingSession::default())
    }
    async fn claim_pairing_session(&self, token: &str) -> Result<PairingSession> {
        self.answer(Call::ClaimPairingSession { token: token.to_owned() }).await.map(|()| PairingSession::default())
    }
}
