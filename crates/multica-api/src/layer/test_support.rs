//! Test helpers for layers: a probing layer and a way to call any route.

#![allow(dead_code)] // `impl_layer!` adds accessors the tests do not need.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::impl_layer;
use crate::dto::{
    BatchClaimRequest, CancelAck, LocalDirectoryWait, LocalSkillsResult, ModelListResult, PairingRequest, PingResult,
    RegisterRequest, SessionPin, SkillBundleRequest, SkillImportResult, TaskCompletion, TaskProgress, UpdateResult,
};
use crate::error::Result;
use crate::ids::{IssueId, PingId, RuntimeId, RuntimeRequestId, TaskId, WorkspaceId};
use crate::{Call, DaemonApi, DaemonApiExt, Endpoint, Reply};

/// IDs and tokens passed by [`call_endpoint`]: tests assert they never leak.
pub(crate) const SECRET_ID: &str = "secret-task-id";

#[derive(Debug, Default)]
struct Log {
    starts: Vec<(Endpoint, Instant)>,
    running: usize,
}

/// A layer that records when each call starts and how many are running (a
/// call stops running when it finishes or its future is dropped).
#[derive(Clone, Debug)]
pub(crate) struct Probe<A> {
    inner: A,
    log: Arc<Mutex<Log>>,
}

struct Running(Arc<Mutex<Log>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.lock().expect("probe lock").running -= 1;
    }
}

impl<A> Probe<A> {
    pub(crate) fn new(inner: A) -> Self {
        Self { inner, log: Arc::default() }
    }

    /// Calls started and not yet finished or dropped.
    pub(crate) fn running(&self) -> usize {
        self.log.lock().expect("probe lock").running
    }

    /// When each call of `endpoint` started, relative to `origin`.
    pub(crate) fn starts(&self, endpoint: Endpoint, origin: Instant) -> Vec<std::time::Duration> {
        let log = self.log.lock().expect("probe lock");
        log.starts.iter().filter(|(e, _)| *e == endpoint).map(|(_, at)| at.duration_since(origin)).collect()
    }
}

impl<A: DaemonApi> Probe<A> {
    async fn around(&self, call: Call) -> Result<Reply> {
        let endpoint = call.endpoint();
        let running = {
            let mut log = self.log.lock().expect("probe lock");
            log.starts.push((endpoint, Instant::now()));
            log.running += 1;
            Running(Arc::clone(&self.log))
        };
        let result = self.inner.call(call).await;
        drop(running);
        result
    }
}

impl_layer!(Probe);

/// Calls the method of `endpoint` with placeholder arguments (every ID and
/// token is [`SECRET_ID`]), discarding the answer's value.
pub(crate) async fn call_endpoint(api: &dyn DaemonApi, endpoint: Endpoint) -> Result<()> {
    let runtime = RuntimeId::new(SECRET_ID);
    let task = TaskId::new(SECRET_ID);
    match endpoint {
        Endpoint::Register => api.register(&RegisterRequest::default()).await.map(drop),
        Endpoint::Deregister => api.deregister(&[runtime]).await,
        Endpoint::SendHeartbeat => api.send_heartbeat(&runtime).await.map(drop),
        Endpoint::ClaimTask => api.claim_task(&runtime).await.map(drop),
        Endpoint::ListPendingTasks => api.list_pending_tasks(&runtime).await.map(drop),
        Endpoint::ReportUsage => api.report_usage(&runtime, []).await,
        Endpoint::ReportPingResult => {
            api.report_ping_result(&runtime, &PingId::new(SECRET_ID), &PingResult::default()).await
        }
        Endpoint::GetTaskStatus => api.get_task_status(&task).await.map(drop),
        Endpoint::StartTask => api.start_task(&task).await,
        Endpoint::ReportProgress => api.report_progress(&task, &TaskProgress::default()).await,
        Endpoint::CompleteTask => api.complete_task(&task, &TaskCompletion::default()).await,
        Endpoint::FailTask => api.fail_task(&task, "boom").await,
        Endpoint::ReportTaskMessages => api.report_task_messages(&task, []).await,
        Endpoint::ListTaskMessages => api.list_task_messages(&task).await.map(drop),
        Endpoint::ListWorkspaces => api.list_workspaces().await.map(drop),
        Endpoint::CreatePairingSession => api.create_pairing_session(&PairingRequest::default()).await.map(drop),
        Endpoint::GetPairingSession => api.get_pairing_session(SECRET_ID).await.map(drop),
        Endpoint::ClaimPairingSession => api.claim_pairing_session(SECRET_ID).await.map(drop),
        Endpoint::ClaimTasks => api.claim_tasks(&BatchClaimRequest::default()).await.map(drop),
        Endpoint::ExtendPrepareLease => api.extend_prepare_lease(&runtime, &task).await.map(drop),
        Endpoint::ResolveSkillBundles => {
            api.resolve_skill_bundles(&runtime, &task, &SkillBundleRequest::default()).await.map(drop)
        }
        Endpoint::RecoverOrphans => api.recover_orphans(&runtime).await.map(drop),
        Endpoint::ReportModelList => {
            api.report_model_list(&runtime, &RuntimeRequestId::new(SECRET_ID), &ModelListResult::default()).await
        }
        Endpoint::ReportLocalSkills => {
            api.report_local_skills(&runtime, &RuntimeRequestId::new(SECRET_ID), &LocalSkillsResult::default()).await
        }
        Endpoint::ReportSkillImport => {
            api.report_skill_import(&runtime, &RuntimeRequestId::new(SECRET_ID), &SkillImportResult::default()).await
        }
        Endpoint::ReportUpdateResult => {
            api.report_update_result(&runtime, &RuntimeRequestId::new(SECRET_ID), &UpdateResult::default()).await
        }
        Endpoint::WaitLocalDirectory => api.wait_local_directory(&task, &LocalDirectoryWait::default()).await.map(drop),
        Endpoint::ReportTaskUsage => api.report_task_usage(&task, []).await,
        Endpoint::AckCancel => api.ack_cancel(&task, &CancelAck::default()).await,
        Endpoint::PinSession => api.pin_session(&task, &SessionPin::default()).await,
        Endpoint::GetTaskGcCheck => api.get_task_gc_check(&task).await.map(drop),
        Endpoint::GetIssueGcCheck => api.get_issue_gc_check(&IssueId::new(SECRET_ID)).await.map(drop),
        Endpoint::GetChatSessionGcCheck => api.get_chat_session_gc_check(SECRET_ID).await.map(drop),
        Endpoint::GetAutopilotRunGcCheck => api.get_autopilot_run_gc_check(SECRET_ID).await.map(drop),
        Endpoint::CheckIssuesGc => api.check_issues_gc(&WorkspaceId::new(SECRET_ID), &[]).await.map(drop),
        Endpoint::ListDaemonWorkspaces => api.list_daemon_workspaces().await.map(drop),
        Endpoint::GetWorkspaceRepos => api.get_workspace_repos(&WorkspaceId::new(SECRET_ID)).await.map(drop),
        Endpoint::ListRuntimeProfiles => api.list_runtime_profiles(&WorkspaceId::new(SECRET_ID)).await.map(drop),
    }
}
