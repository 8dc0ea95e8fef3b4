//! A call with its arguments, as a value: what a server decodes from a
//! request and what the fake records in its call log.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use percent_encoding::percent_decode_str;

use crate::dto::{
    BatchClaimRequest, CancelAck, DeregisterRequest, HeartbeatRequest, LocalDirectoryWait, LocalSkillsResult,
    ModelListResult, PairingRequest, PingResult, RegisterRequest, SessionPin, SkillBundleRequest, SkillImportResult,
    TaskCompletion, TaskFailure, TaskMessage, TaskProgress, TaskUsage, UpdateResult, UsageEntry,
};
use crate::error::Result;
use crate::ids::{IssueId, PingId, RuntimeId, RuntimeRequestId, TaskId, WorkspaceId};
use crate::reply::Reply;
use crate::request::{self, EntriesBody, IssueIdsBody, MessagesBody, Request, UsageBody, WireRequest, SINCE_PARAMETER};
use crate::route::{Endpoint, RouteMismatch};

/// One call of the daemon API with its arguments.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Call {
    /// [`crate::DaemonApiExt::register`].
    Register(RegisterRequest),
    /// [`crate::DaemonApiExt::deregister`].
    Deregister {
        /// Runtimes to take offline.
        runtime_ids: Vec<RuntimeId>,
    },
    /// [`crate::DaemonApiExt::send_heartbeat`].
    SendHeartbeat {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApiExt::claim_task`].
    ClaimTask {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApiExt::list_pending_tasks`].
    ListPendingTasks {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApiExt::report_usage`].
    ReportUsage {
        /// The runtime.
        runtime_id: RuntimeId,
        /// Usage rows, shared: retrying the call or logging it copies no row.
        entries: Arc<[UsageEntry]>,
    },
    /// [`crate::DaemonApiExt::report_ping_result`].
    ReportPingResult {
        /// The runtime.
        runtime_id: RuntimeId,
        /// The ping answered.
        ping_id: PingId,
        /// The answer.
        result: PingResult,
    },
    /// [`crate::DaemonApiExt::get_task_status`].
    GetTaskStatus {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApiExt::start_task`].
    StartTask {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApiExt::report_progress`].
    ReportProgress {
        /// The task.
        task_id: TaskId,
        /// Step and summary.
        progress: TaskProgress,
    },
    /// [`crate::DaemonApiExt::complete_task`].
    CompleteTask {
        /// The task.
        task_id: TaskId,
        /// Output and resume data.
        completion: TaskCompletion,
    },
    /// [`crate::DaemonApiExt::fail_task`].
    FailTask {
        /// The task.
        task_id: TaskId,
        /// Why it failed.
        error: String,
    },
    /// [`crate::DaemonApiExt::report_task_messages`].
    ReportTaskMessages {
        /// The task.
        task_id: TaskId,
        /// The batch, shared: retrying the call or logging it copies no
        /// message, and the transport serializes it straight from here.
        messages: Arc<[TaskMessage]>,
    },
    /// [`crate::DaemonApiExt::list_task_messages`].
    ListTaskMessages {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApiExt::list_workspaces`].
    ListWorkspaces,
    /// [`crate::DaemonApiExt::create_pairing_session`].
    CreatePairingSession(PairingRequest),
    /// [`crate::DaemonApiExt::get_pairing_session`].
    GetPairingSession {
        /// The session's token.
        token: String,
    },
    /// [`crate::DaemonApiExt::claim_pairing_session`].
    ClaimPairingSession {
        /// The session's token.
        token: String,
    },

    // HEAD 1cc46b2697 bodies of 3c93ebaf1c routes. Each is sent to the same
    // route as its 3c93ebaf1c call; a body without the HEAD fields decodes
    // as the 3c93ebaf1c call, so the decoding of a request is unique.
    /// [`crate::DaemonApiExt::deregister_with`]: deregister with HEAD
    /// 1cc46b2697's `offline_reasons` (non-empty; without them the call is
    /// [`Call::Deregister`]).
    DeregisterWith(DeregisterRequest),
    /// [`crate::DaemonApiExt::send_heartbeat_with`]: a heartbeat with HEAD
    /// 1cc46b2697's `supports_batch_import` set (without it the call is
    /// [`Call::SendHeartbeat`]).
    SendHeartbeatWith(HeartbeatRequest),
    /// [`crate::DaemonApiExt::fail_task_with`]: a fail with HEAD
    /// 1cc46b2697's fields (at least one set; with only `error` the call is
    /// [`Call::FailTask`]).
    FailTaskWith {
        /// The task.
        task_id: TaskId,
        /// Why it failed, with the session to resume.
        failure: TaskFailure,
    },
    /// [`crate::DaemonApiExt::list_task_messages_since`]: the listing with
    /// the query `?since=N` (HEAD 1cc46b2697 answers `seq > since`).
    ListTaskMessagesSince {
        /// The task.
        task_id: TaskId,
        /// Only messages with a greater `seq`.
        since: i64,
    },

    // Routes server HEAD 1cc46b2697 added (3c93ebaf1c: `404 page not found`).
    /// [`crate::DaemonApiExt::claim_tasks`].
    ClaimTasks(BatchClaimRequest),
    /// [`crate::DaemonApiExt::extend_prepare_lease`].
    ExtendPrepareLease {
        /// The runtime that claimed the task.
        runtime_id: RuntimeId,
        /// The task being prepared.
        task_id: TaskId,
    },
    /// [`crate::DaemonApiExt::resolve_skill_bundles`].
    ResolveSkillBundles {
        /// The runtime that claimed the task.
        runtime_id: RuntimeId,
        /// The task whose agent's skills are fetched.
        task_id: TaskId,
        /// The skills to fetch.
        request: SkillBundleRequest,
    },
    /// [`crate::DaemonApiExt::recover_orphans`].
    RecoverOrphans {
        /// The runtime starting up.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApiExt::report_model_list`].
    ReportModelList {
        /// The runtime asked.
        runtime_id: RuntimeId,
        /// The request answered.
        request_id: RuntimeRequestId,
        /// The answer.
        result: ModelListResult,
    },
    /// [`crate::DaemonApiExt::report_local_skills`].
    ReportLocalSkills {
        /// The runtime asked.
        runtime_id: RuntimeId,
        /// The request answered.
        request_id: RuntimeRequestId,
        /// The answer.
        result: LocalSkillsResult,
    },
    /// [`crate::DaemonApiExt::report_skill_import`].
    ReportSkillImport {
        /// The runtime asked.
        runtime_id: RuntimeId,
        /// The import answered.
        request_id: RuntimeRequestId,
        /// The answer.
        result: SkillImportResult,
    },
    /// [`crate::DaemonApiExt::report_update_result`].
    ReportUpdateResult {
        /// The runtime updating.
        runtime_id: RuntimeId,
        /// The update reported on.
        update_id: RuntimeRequestId,
        /// Its progress.
        result: UpdateResult,
    },
    /// [`crate::DaemonApiExt::wait_local_directory`].
    WaitLocalDirectory {
        /// The task.
        task_id: TaskId,
        /// What it waits for.
        wait: LocalDirectoryWait,
    },
    /// [`crate::DaemonApiExt::report_task_usage`].
    ReportTaskUsage {
        /// The task.
        task_id: TaskId,
        /// One entry per (provider, model), shared as the messages are.
        usage: Arc<[TaskUsage]>,
    },
    /// [`crate::DaemonApiExt::ack_cancel`].
    AckCancel {
        /// The cancelled task.
        task_id: TaskId,
        /// What the stopped run left behind.
        ack: CancelAck,
    },
    /// [`crate::DaemonApiExt::pin_session`].
    PinSession {
        /// The running task.
        task_id: TaskId,
        /// The session and work directory.
        pin: SessionPin,
    },
    /// [`crate::DaemonApiExt::get_task_gc_check`].
    GetTaskGcCheck {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApiExt::get_issue_gc_check`].
    GetIssueGcCheck {
        /// The issue.
        issue_id: IssueId,
    },
    /// [`crate::DaemonApiExt::get_chat_session_gc_check`].
    GetChatSessionGcCheck {
        /// The chat session's ID.
        session_id: String,
    },
    /// [`crate::DaemonApiExt::get_autopilot_run_gc_check`].
    GetAutopilotRunGcCheck {
        /// The autopilot run's ID.
        run_id: String,
    },
    /// [`crate::DaemonApiExt::check_issues_gc`].
    CheckIssuesGc {
        /// The workspace of the issues.
        workspace_id: WorkspaceId,
        /// The issues to check.
        issue_ids: Vec<IssueId>,
    },
    /// [`crate::DaemonApiExt::list_daemon_workspaces`].
    ListDaemonWorkspaces,
    /// [`crate::DaemonApiExt::get_workspace_repos`].
    GetWorkspaceRepos {
        /// The workspace.
        workspace_id: WorkspaceId,
    },
    /// [`crate::DaemonApiExt::list_runtime_profiles`].
    ListRuntimeProfiles {
        /// The workspace.
        workspace_id: WorkspaceId,
    },
}

/// Why a request is not a call: the server's 404, 405 or 400 `invalid
/// request body`.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallDecodeError {
    /// No route matches the path (404) or the method (405).
    #[error("no route: {0:?}")]
    Route(RouteMismatch),
    /// The body is not the JSON the route expects (400).
    #[error("invalid request body: {0}")]
    InvalidBody(#[source] Arc<serde_json::Error>),
    /// A query parameter the route reads has a bad value (400 with this
    /// message, e.g. `invalid since parameter`).
    #[error("{0}")]
    InvalidQuery(&'static str),
}

impl Call {
    /// The route of this call.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Self::Register(_) => Endpoint::Register,
            Self::Deregister { .. } => Endpoint::Deregister,
            Self::SendHeartbeat { .. } => Endpoint::SendHeartbeat,
            Self::ClaimTask { .. } => Endpoint::ClaimTask,
            Self::ListPendingTasks { .. } => Endpoint::ListPendingTasks,
            Self::ReportUsage { .. } => Endpoint::ReportUsage,
            Self::ReportPingResult { .. } => Endpoint::ReportPingResult,
            Self::GetTaskStatus { .. } => Endpoint::GetTaskStatus,
            Self::StartTask { .. } => Endpoint::StartTask,
            Self::ReportProgress { .. } => Endpoint::ReportProgress,
            Self::CompleteTask { .. } => Endpoint::CompleteTask,
            Self::FailTask { .. } => Endpoint::FailTask,
            Self::ReportTaskMessages { .. } => Endpoint::ReportTaskMessages,
            Self::ListTaskMessages { .. } => Endpoint::ListTaskMessages,
            Self::ListWorkspaces => Endpoint::ListWorkspaces,
            Self::CreatePairingSession(_) => Endpoint::CreatePairingSession,
            Self::GetPairingSession { .. } => Endpoint::GetPairingSession,
            Self::ClaimPairingSession { .. } => Endpoint::ClaimPairingSession,
            Self::DeregisterWith(_) => Endpoint::Deregister,
            Self::SendHeartbeatWith(_) => Endpoint::SendHeartbeat,
            Self::FailTaskWith { .. } => Endpoint::FailTask,
            Self::ListTaskMessagesSince { .. } => Endpoint::ListTaskMessages,
            Self::ClaimTasks(_) => Endpoint::ClaimTasks,
            Self::ExtendPrepareLease { .. } => Endpoint::ExtendPrepareLease,
            Self::ResolveSkillBundles { .. } => Endpoint::ResolveSkillBundles,
            Self::RecoverOrphans { .. } => Endpoint::RecoverOrphans,
            Self::ReportModelList { .. } => Endpoint::ReportModelList,
            Self::ReportLocalSkills { .. } => Endpoint::ReportLocalSkills,
            Self::ReportSkillImport { .. } => Endpoint::ReportSkillImport,
            Self::ReportUpdateResult { .. } => Endpoint::ReportUpdateResult,
            Self::WaitLocalDirectory { .. } => Endpoint::WaitLocalDirectory,
            Self::ReportTaskUsage { .. } => Endpoint::ReportTaskUsage,
            Self::AckCancel { .. } => Endpoint::AckCancel,
            Self::PinSession { .. } => Endpoint::PinSession,
            Self::GetTaskGcCheck { .. } => Endpoint::GetTaskGcCheck,
            Self::GetIssueGcCheck { .. } => Endpoint::GetIssueGcCheck,
            Self::GetChatSessionGcCheck { .. } => Endpoint::GetChatSessionGcCheck,
            Self::GetAutopilotRunGcCheck { .. } => Endpoint::GetAutopilotRunGcCheck,
            Self::CheckIssuesGc { .. } => Endpoint::CheckIssuesGc,
            Self::ListDaemonWorkspaces => Endpoint::ListDaemonWorkspaces,
            Self::GetWorkspaceRepos { .. } => Endpoint::GetWorkspaceRepos,
            Self::ListRuntimeProfiles { .. } => Endpoint::ListRuntimeProfiles,
        }
    }

    /// The IDs and tokens this call puts in its path, in order.
    pub fn path_params(&self) -> Vec<&str> {
        match self {
            Self::ClaimTask { runtime_id }
            | Self::ListPendingTasks { runtime_id }
            | Self::ReportUsage { runtime_id, .. } => {
                vec![runtime_id.as_str()]
            }
            Self::ReportPingResult { runtime_id, ping_id, .. } => vec![runtime_id.as_str(), ping_id.as_str()],
            Self::GetTaskStatus { task_id }
            | Self::StartTask { task_id }
            | Self::ReportProgress { task_id, .. }
            | Self::CompleteTask { task_id, .. }
            | Self::FailTask { task_id, .. }
            | Self::ReportTaskMessages { task_id, .. }
            | Self::ListTaskMessages { task_id }
            | Self::FailTaskWith { task_id, .. }
            | Self::ListTaskMessagesSince { task_id, .. }
            | Self::WaitLocalDirectory { task_id, .. }
            | Self::ReportTaskUsage { task_id, .. }
            | Self::AckCancel { task_id, .. }
            | Self::PinSession { task_id, .. }
            | Self::GetTaskGcCheck { task_id } => vec![task_id.as_str()],
            Self::GetPairingSession { token } | Self::ClaimPairingSession { token } => vec![token.as_str()],
            Self::RecoverOrphans { runtime_id } => vec![runtime_id.as_str()],
            Self::ExtendPrepareLease { runtime_id, task_id }
            | Self::ResolveSkillBundles { runtime_id, task_id, .. } => {
                vec![runtime_id.as_str(), task_id.as_str()]
            }
            Self::ReportModelList { runtime_id, request_id, .. }
            | Self::ReportLocalSkills { runtime_id, request_id, .. }
            | Self::ReportSkillImport { runtime_id, request_id, .. }
            | Self::ReportUpdateResult { runtime_id, update_id: request_id, .. } => {
                vec![runtime_id.as_str(), request_id.as_str()]
            }
            Self::GetIssueGcCheck { issue_id } => vec![issue_id.as_str()],
            Self::GetChatSessionGcCheck { session_id } => vec![session_id.as_str()],
            Self::GetAutopilotRunGcCheck { run_id } => vec![run_id.as_str()],
            Self::CheckIssuesGc { workspace_id, .. }
            | Self::GetWorkspaceRepos { workspace_id }
            | Self::ListRuntimeProfiles { workspace_id } => vec![workspace_id.as_str()],
            Self::Register(_)
            | Self::Deregister { .. }
            | Self::SendHeartbeat { .. }
            | Self::ListWorkspaces
            | Self::CreatePairingSession(_)
            | Self::DeregisterWith(_)
            | Self::SendHeartbeatWith(_)
            | Self::ClaimTasks(_)
            | Self::ListDaemonWorkspaces => Vec::new(),
        }
    }

    /// The query string this call sends after its path (without the `?`),
    /// if any: only [`Call::ListTaskMessagesSince`] has one.
    pub fn query(&self) -> Option<String> {
        match self {
            Self::ListTaskMessagesSince { since, .. } => Some(format!("{SINCE_PARAMETER}={since}")),
            _ => None,
        }
    }

    /// The percent-encoded path this call is sent to, with its query if it
    /// has one; [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for an empty ID.
    pub fn path(&self) -> Result<String> {
        let path = self.endpoint().path(&self.path_params())?;
        Ok(match self.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        })
    }

    /// The request a transport sends for this call, reading the answer as
    /// this route's [`Reply`]: a transport's whole
    /// [`DaemonApi::call`](crate::DaemonApi::call) is sending these bytes
    /// and handing the status and body to [`Request::decode_response`].
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Call, Reply, RuntimeId};
    /// let request = Call::ClaimTask { runtime_id: RuntimeId::new("rt-1") }.to_request()?;
    /// assert_eq!(request.path(), "/api/daemon/runtimes/rt-1/tasks/claim");
    /// assert_eq!(request.decode_response(200, br#"{"task":null}"#)?, Reply::Claimed(None));
    /// # Ok::<(), multica_api::Error>(())
    /// ```
    pub fn to_request(&self) -> Result<Request<Reply>> {
        Ok(match self {
            Self::Register(body) => request::register(body)?.into_reply_request(),
            Self::Deregister { runtime_ids } => request::deregister(runtime_ids)?.into_reply_request(),
            Self::SendHeartbeat { runtime_id } => request::send_heartbeat(runtime_id)?.into_reply_request(),
            Self::ClaimTask { runtime_id } => request::claim_task(runtime_id)?.into_reply_request(),
            Self::ListPendingTasks { runtime_id } => request::list_pending_tasks(runtime_id)?.into_reply_request(),
            Self::ReportUsage { runtime_id, entries } => {
                request::report_usage(runtime_id, entries)?.into_reply_request()
            }
            Self::ReportPingResult { runtime_id, ping_id, result } => {
                request::report_ping_result(runtime_id, ping_id, result)?.into_reply_request()
            }
            Self::GetTaskStatus { task_id } => request::get_task_status(task_id)?.into_reply_request(),
            Self::StartTask { task_id } => request::start_task(task_id)?.into_reply_request(),
            Self::ReportProgress { task_id, progress } => {
                request::report_progress(task_id, progress)?.into_reply_request()
            }
            Self::CompleteTask { task_id, completion } => {
                request::complete_task(task_id, completion)?.into_reply_request()
            }
            Self::FailTask { task_id, error } => request::fail_task(task_id, error)?.into_reply_request(),
            Self::ReportTaskMessages { task_id, messages } => {
                request::report_task_messages(task_id, messages)?.into_reply_request()
            }
            Self::ListTaskMessages { task_id } => request::list_task_messages(task_id)?.into_reply_request(),
            Self::ListWorkspaces => request::list_workspaces()?.into_reply_request(),
            Self::CreatePairingSession(body) => request::create_pairing_session(body)?.into_reply_request(),
            Self::GetPairingSession { token } => request::get_pairing_session(token)?.into_reply_request(),
            Self::ClaimPairingSession { token } => request::claim_pairing_session(token)?.into_reply_request(),
            Self::DeregisterWith(body) => request::deregister_with(body)?.into_reply_request(),
            Self::SendHeartbeatWith(body) => request::send_heartbeat_with(body)?.into_reply_request(),
            Self::FailTaskWith { task_id, failure } => request::fail_task_with(task_id, failure)?.into_reply_request(),
            Self::ListTaskMessagesSince { task_id, since } => {
                request::list_task_messages_since(task_id, *since)?.into_reply_request()
            }
            Self::ClaimTasks(body) => request::claim_tasks(body)?.into_reply_request(),
            Self::ExtendPrepareLease { runtime_id, task_id } => {
                request::extend_prepare_lease(runtime_id, task_id)?.into_reply_request()
            }
            Self::ResolveSkillBundles { runtime_id, task_id, request } => {
                request::resolve_skill_bundles(runtime_id, task_id, request)?.into_reply_request()
            }
            Self::RecoverOrphans { runtime_id } => request::recover_orphans(runtime_id)?.into_reply_request(),
            Self::ReportModelList { runtime_id, request_id, result } => {
                request::report_model_list(runtime_id, request_id, result)?.into_reply_request()
            }
            Self::ReportLocalSkills { runtime_id, request_id, result } => {
                request::report_local_skills(runtime_id, request_id, result)?.into_reply_request()
            }
            Self::ReportSkillImport { runtime_id, request_id, result } => {
                request::report_skill_import(runtime_id, request_id, result)?.into_reply_request()
            }
            Self::ReportUpdateResult { runtime_id, update_id, result } => {
                request::report_update_result(runtime_id, update_id, result)?.into_reply_request()
            }
            Self::WaitLocalDirectory { task_id, wait } => {
                request::wait_local_directory(task_id, wait)?.into_reply_request()
            }
            Self::ReportTaskUsage { task_id, usage } => {
                request::report_task_usage(task_id, usage)?.into_reply_request()
            }
            Self::AckCancel { task_id, ack } => request::ack_cancel(task_id, ack)?.into_reply_request(),
            Self::PinSession { task_id, pin } => request::pin_session(task_id, pin)?.into_reply_request(),
            Self::GetTaskGcCheck { task_id } => request::get_task_gc_check(task_id)?.into_reply_request(),
            Self::GetIssueGcCheck { issue_id } => request::get_issue_gc_check(issue_id)?.into_reply_request(),
            Self::GetChatSessionGcCheck { session_id } => {
                request::get_chat_session_gc_check(session_id)?.into_reply_request()
            }
            Self::GetAutopilotRunGcCheck { run_id } => {
                request::get_autopilot_run_gc_check(run_id)?.into_reply_request()
            }
            Self::CheckIssuesGc { workspace_id, issue_ids } => {
                request::check_issues_gc(workspace_id, issue_ids)?.into_reply_request()
            }
            Self::ListDaemonWorkspaces => request::list_daemon_workspaces()?.into_reply_request(),
            Self::GetWorkspaceRepos { workspace_id } => {
                request::get_workspace_repos(workspace_id)?.into_reply_request()
            }
            Self::ListRuntimeProfiles { workspace_id } => {
                request::list_runtime_profiles(workspace_id)?.into_reply_request()
            }
        })
    }

    /// The request a client sends for this call (the inverse of [`Call::decode`]).
    pub fn to_wire(&self) -> Result<WireRequest> {
        Ok(self.to_request()?.into_wire())
    }

    /// Decodes a request as the server does: the route from the method and
    /// path, then the JSON body for routes that read one, and the query for
    /// the one route that reads it (the messages listing's `since`). `path`
    /// may carry the request's query string (`/api/…?since=3`); without one
    /// no query parameter is read. Routes without a body ignore whatever was
    /// sent.
    ///
    /// A body is read as HEAD 1cc46b2697 reads it, a superset of
    /// 3c93ebaf1c's: a body without HEAD fields decodes as the 3c93ebaf1c
    /// call ([`Call::FailTask`], not [`Call::FailTaskWith`]), so each
    /// request has one decoding; a HEAD field of the wrong JSON type is an
    /// invalid body, as at HEAD.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Call, FailureReason, TaskFailure, TaskId};
    /// let call = Call::decode("POST", "/api/daemon/tasks/t%2F1/fail", br#"{"error":"boom"}"#).unwrap();
    /// assert_eq!(call, Call::FailTask { task_id: TaskId::new("t/1"), error: "boom".into() });
    /// let call = Call::decode("POST", "/api/daemon/tasks/t/fail", br#"{"error":"late","failure_reason":"timeout"}"#);
    /// let failure = TaskFailure::new("late").with_reason(FailureReason::Timeout);
    /// assert_eq!(call.unwrap(), Call::FailTaskWith { task_id: TaskId::new("t"), failure });
    /// let call = Call::decode("GET", "/api/daemon/tasks/t/messages?since=3", b"").unwrap();
    /// assert_eq!(call, Call::ListTaskMessagesSince { task_id: TaskId::new("t"), since: 3 });
    /// ```
    pub fn decode(method: &str, path: &str, body: &[u8]) -> Result<Call, CallDecodeError> {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let (endpoint, params) = Endpoint::recognize(method, path).map_err(CallDecodeError::Route)?;
        let mut params = params.into_iter();
        let mut param = || params.next().unwrap_or_default();
        Ok(match endpoint {
            Endpoint::Register => Self::Register(body_json(body)?),
            Endpoint::Deregister => {
                let request: DeregisterRequest = body_json(body)?;
                if request.offline_reasons.is_empty() {
                    Self::Deregister { runtime_ids: request.runtime_ids }
                } else {
                    Self::DeregisterWith(request)
                }
            }
            Endpoint::SendHeartbeat => {
                let request: HeartbeatRequest = body_json(body)?;
                if request.supports_batch_import {
                    Self::SendHeartbeatWith(request)
                } else {
                    Self::SendHeartbeat { runtime_id: request.runtime_id }
                }
            }
            Endpoint::ClaimTask => Self::ClaimTask { runtime_id: param().into() },
            Endpoint::ListPendingTasks => Self::ListPendingTasks { runtime_id: param().into() },
            Endpoint::ReportUsage => {
                let entries: Vec<_> = body_json::<EntriesBody<_>>(body)?.entries;
                Self::ReportUsage { runtime_id: param().into(), entries: entries.into() }
            }
            Endpoint::ReportPingResult => {
                Self::ReportPingResult { runtime_id: param().into(), ping_id: param().into(), result: body_json(body)? }
            }
            Endpoint::GetTaskStatus => Self::GetTaskStatus { task_id: param().into() },
            Endpoint::StartTask => Self::StartTask { task_id: param().into() },
            Endpoint::ReportProgress => Self::ReportProgress { task_id: param().into(), progress: body_json(body)? },
            Endpoint::CompleteTask => Self::CompleteTask { task_id: param().into(), completion: body_json(body)? },
            Endpoint::FailTask => {
                let failure: TaskFailure = body_json(body)?;
                if failure == TaskFailure::new(failure.error.as_str()) {
                    Self::FailTask { task_id: param().into(), error: failure.error }
                } else {
                    Self::FailTaskWith { task_id: param().into(), failure }
                }
            }
            Endpoint::ReportTaskMessages => {
                let messages: Vec<_> = body_json::<MessagesBody<_>>(body)?.messages;
                Self::ReportTaskMessages { task_id: param().into(), messages: messages.into() }
            }
            Endpoint::ListTaskMessages => match since_parameter(query)? {
                Some(since) => Self::ListTaskMessagesSince { task_id: param().into(), since },
                None => Self::ListTaskMessages { task_id: param().into() },
            },
            Endpoint::ListWorkspaces => Self::ListWorkspaces,
            Endpoint::CreatePairingSession => Self::CreatePairingSession(body_json(body)?),
            Endpoint::GetPairingSession => Self::GetPairingSession { token: param() },
            Endpoint::ClaimPairingSession => Self::ClaimPairingSession { token: param() },
            Endpoint::ClaimTasks => Self::ClaimTasks(body_json(body)?),
            Endpoint::ExtendPrepareLease => {
                Self::ExtendPrepareLease { runtime_id: param().into(), task_id: param().into() }
            }
            Endpoint::ResolveSkillBundles => Self::ResolveSkillBundles {
                runtime_id: param().into(),
                task_id: param().into(),
                request: body_json(body)?,
            },
            Endpoint::RecoverOrphans => Self::RecoverOrphans { runtime_id: param().into() },
            Endpoint::ReportModelList => Self::ReportModelList {
                runtime_id: param().into(),
                request_id: param().into(),
                result: body_json(body)?,
            },
            Endpoint::ReportLocalSkills => Self::ReportLocalSkills {
                runtime_id: param().into(),
                request_id: param().into(),
                result: body_json(body)?,
            },
            Endpoint::ReportSkillImport => Self::ReportSkillImport {
                runtime_id: param().into(),
                request_id: param().into(),
                result: body_json(body)?,
            },
            Endpoint::ReportUpdateResult => Self::ReportUpdateResult {
                runtime_id: param().into(),
                update_id: param().into(),
                result: body_json(body)?,
            },
            // The server accepts an empty body here (`Content-Length: 0`).
            Endpoint::WaitLocalDirectory => Self::WaitLocalDirectory {
                task_id: param().into(),
                wait: if body.is_empty() { LocalDirectoryWait::default() } else { body_json(body)? },
            },
            Endpoint::ReportTaskUsage => {
                let usage: Vec<_> = body_json::<UsageBody<_>>(body)?.usage;
                Self::ReportTaskUsage { task_id: param().into(), usage: usage.into() }
            }
            // The server ignores a cancel-ack body it cannot decode.
            Endpoint::AckCancel => {
                Self::AckCancel { task_id: param().into(), ack: body_json(body).unwrap_or_default() }
            }
            Endpoint::PinSession => Self::PinSession { task_id: param().into(), pin: body_json(body)? },
            Endpoint::GetTaskGcCheck => Self::GetTaskGcCheck { task_id: param().into() },
            Endpoint::GetIssueGcCheck => Self::GetIssueGcCheck { issue_id: param().into() },
            Endpoint::GetChatSessionGcCheck => Self::GetChatSessionGcCheck { session_id: param() },
            Endpoint::GetAutopilotRunGcCheck => Self::GetAutopilotRunGcCheck { run_id: param() },
            Endpoint::CheckIssuesGc => Self::CheckIssuesGc {
                workspace_id: param().into(),
                issue_ids: body_json::<IssueIdsBody<_>>(body)?.issue_ids,
            },
            Endpoint::ListDaemonWorkspaces => Self::ListDaemonWorkspaces,
            Endpoint::GetWorkspaceRepos => Self::GetWorkspaceRepos { workspace_id: param().into() },
            Endpoint::ListRuntimeProfiles => Self::ListRuntimeProfiles { workspace_id: param().into() },
        })
    }
}

/// The messages listing's `since`, as the server reads it: the first value
/// of the parameter, absent when missing or empty, a 400 `invalid since
/// parameter` when not an integer.
fn since_parameter(query: Option<&str>) -> Result<Option<i64>, CallDecodeError> {
    let Some(value) = query.and_then(|query| query_value(query, SINCE_PARAMETER)) else { return Ok(None) };
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| CallDecodeError::InvalidQuery("invalid since parameter"))
}

/// The first value of `name` in a query string, decoded as a form value
/// (`+` is a space, `%XX` a byte).
fn query_value(query: &str, name: &str) -> Option<String> {
    let decode = |part: &str| percent_decode_str(&part.replace('+', " ")).decode_utf8_lossy().into_owned();
    query.split('&').filter(|pair| !pair.is_empty()).find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

/// Reads a body as the server's Go decoder does (see [`crate::go_json`]).
fn body_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, CallDecodeError> {
    crate::go_json::from_body(body).map_err(|err| CallDecodeError::InvalidBody(Arc::new(err)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dto::FailureReason;

    fn messages(path: &str) -> Result<Call, CallDecodeError> {
        Call::decode("GET", path, b"")
    }

    #[test]
    fn the_messages_query_is_read_as_the_server_reads_it() {
        let task = || TaskId::new("t");
        assert_eq!(messages("/api/daemon/tasks/t/messages").unwrap(), Call::ListTaskMessages { task_id: task() });
        assert_eq!(messages("/api/daemon/tasks/t/messages?").unwrap(), Call::ListTaskMessages { task_id: task() });
        assert_eq!(
            messages("/api/daemon/tasks/t/messages?since=").unwrap(),
            Call::ListTaskMessages { task_id: task() }
        );
        assert_eq!(messages("/api/daemon/tasks/t/messages?x=1").unwrap(), Call::ListTaskMessages { task_id: task() });
        assert_eq!(
            messages("/api/daemon/tasks/t/messages?x=1&since=-4&since=9").unwrap(),
            Call::ListTaskMessagesSince { task_id: task(), since: -4 }
        );
        assert_eq!(
            messages("/api/daemon/tasks/t/messages?since=%32").unwrap(),
            Call::ListTaskMessagesSince { task_id: task(), since: 2 }
        );
        for bad in ["abc", "1.5", "99999999999999999999", "+"] {
            let err = messages(&format!("/api/daemon/tasks/t/messages?since={bad}")).unwrap_err();
            assert!(matches!(err, CallDecodeError::InvalidQuery(_)), "{bad}: {err:?}");
            assert_eq!(err.to_string(), "invalid since parameter");
        }
        // The query never changes which route a path is.
        assert!(matches!(
            Call::decode("GET", "/api/daemon/nope?since=1", b""),
            Err(CallDecodeError::Route(RouteMismatch::NotFound))
        ));
    }

    #[test]
    fn head_bodies_without_head_fields_decode_as_the_3c93ebaf1c_calls() {
        let decode = |path: &str, body: &str| Call::decode("POST", path, body.as_bytes()).unwrap();
        assert_eq!(
            decode("/api/daemon/heartbeat", r#"{"runtime_id":"r","supports_batch_import":false}"#),
            Call::SendHeartbeat { runtime_id: "r".into() }
        );
        assert_eq!(
            decode("/api/daemon/heartbeat", r#"{"runtime_id":"r","supports_batch_import":true}"#),
            Call::SendHeartbeatWith(HeartbeatRequest {
                supports_batch_import: true,
                ..HeartbeatRequest::new("r".into())
            })
        );
        assert_eq!(
            decode("/api/daemon/deregister", r#"{"runtime_ids":["r"],"offline_reasons":{}}"#),
            Call::Deregister { runtime_ids: vec!["r".into()] }
        );
        assert_eq!(
            decode("/api/daemon/tasks/t/fail", r#"{"error":"x","failure_reason":""}"#),
            Call::FailTask { task_id: "t".into(), error: "x".into() }
        );
        assert_eq!(
            decode("/api/daemon/tasks/t/fail", r#"{"error":"x","failure_reason":"timeout"}"#),
            Call::FailTaskWith {
                task_id: "t".into(),
                failure: TaskFailure::new("x").with_reason(FailureReason::Timeout)
            }
        );
        // As at HEAD, a HEAD field of the wrong type is an invalid body.
        assert!(matches!(
            Call::decode("POST", "/api/daemon/deregister", br#"{"runtime_ids":["r"],"offline_reasons":[1]}"#),
            Err(CallDecodeError::InvalidBody(_))
        ));
    }

    #[test]
    fn head_routes_with_optional_or_ignored_bodies() {
        let wait = Call::decode("POST", "/api/daemon/tasks/t/wait-local-directory", b"").unwrap();
        assert_eq!(wait, Call::WaitLocalDirectory { task_id: "t".into(), wait: LocalDirectoryWait::default() });
        assert!(Call::decode("POST", "/api/daemon/tasks/t/wait-local-directory", b"{").is_err());
        let ack = Call::decode("POST", "/api/daemon/tasks/t/cancel-ack", b"not json").unwrap();
        assert_eq!(ack, Call::AckCancel { task_id: "t".into(), ack: CancelAck::default() });
        let lease = Call::decode("POST", "/api/daemon/runtimes/r/tasks/t/prepare-lease", b"garbage").unwrap();
        assert_eq!(lease, Call::ExtendPrepareLease { runtime_id: "r".into(), task_id: "t".into() });
    }

    #[test]
    fn the_session_pin_reads_its_empty_204() {
        let call = Call::PinSession {
            task_id: "t".into(),
            pin: SessionPin { session_id: "s".into(), ..SessionPin::default() },
        };
        let request = call.to_request().unwrap();
        assert_eq!(request.wire().body.as_deref(), Some(&br#"{"session_id":"s"}"#[..]));
        assert_eq!(request.decode_response(204, b"").unwrap(), Reply::Done);
    }
}
