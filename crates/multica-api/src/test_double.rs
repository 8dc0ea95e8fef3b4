//! A scripted `DaemonApi` for this crate's unit tests: records every call and
//! answers from a per-route script of outcomes (then success with empty values).

#![allow(dead_code)] // Each test module uses a different part of it.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::dto::*;
use crate::error::{Error, Result};
use crate::{Call, DaemonApi, Endpoint, Reply};

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
    async fn call(&self, call: Call) -> Result<Reply> {
        let reply = match &call {
            Call::Register(_) => Reply::Registered(RegisterResponse::default()),
            Call::SendHeartbeat { .. } => Reply::Heartbeat(HeartbeatResponse::default()),
            Call::ClaimTask { .. } => Reply::Claimed(None),
            Call::ListPendingTasks { .. } => Reply::PendingTasks(Vec::new()),
            Call::GetTaskStatus { .. } => Reply::TaskStatus(TaskStatus::Running),
            Call::ListTaskMessages { .. } => Reply::Messages(Vec::new()),
            Call::ListWorkspaces => Reply::Workspaces(Vec::new()),
            Call::CreatePairingSession(_) | Call::GetPairingSession { .. } | Call::ClaimPairingSession { .. } => {
                Reply::PairingSession(Box::default())
            }
            Call::ClaimTasks(_) => Reply::ClaimedTasks(Vec::new()),
            Call::ExtendPrepareLease { .. } | Call::WaitLocalDirectory { .. } => Reply::TaskRecord(Box::default()),
            Call::ResolveSkillBundles { .. } => Reply::SkillBundles(Vec::new()),
            Call::RecoverOrphans { .. } => Reply::OrphansRecovered(OrphanRecovery::default()),
            Call::GetTaskGcCheck { .. } => Reply::TaskGcCheck(TaskGcCheck::default()),
            Call::GetIssueGcCheck { .. } | Call::GetChatSessionGcCheck { .. } => Reply::GcCheck(GcCheck::default()),
            Call::GetAutopilotRunGcCheck { .. } => Reply::AutopilotRunGcCheck(AutopilotRunGcCheck::default()),
            Call::CheckIssuesGc { .. } => Reply::IssueGcChecks(Vec::new()),
            Call::ListDaemonWorkspaces => Reply::DaemonWorkspaces(Vec::new()),
            Call::GetWorkspaceRepos { .. } => Reply::WorkspaceRepos(WorkspaceRepos::default()),
            Call::ListRuntimeProfiles { .. } => Reply::RuntimeProfiles(RuntimeProfiles::default()),
            _ => Reply::Done,
        };
        self.answer(call).await.map(|()| reply)
    }
}
