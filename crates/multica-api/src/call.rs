//! A call with its arguments, as a value: what a server decodes from a
//! request and what the fake records in its call log.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::dto::{PairingRequest, PingResult, RegisterRequest, TaskCompletion, TaskMessage, TaskProgress, UsageEntry};
use crate::error::Result;
use crate::ids::{PingId, RuntimeId, TaskId};
use crate::reply::Reply;
use crate::request::{self, EntriesBody, FailBody, HeartbeatBody, MessagesBody, Request, RuntimeIdsBody, WireRequest};
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
        /// Usage rows.
        entries: Vec<UsageEntry>,
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
        /// The batch.
        messages: Vec<TaskMessage>,
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
            | Self::ListTaskMessages { task_id } => vec![task_id.as_str()],
            Self::GetPairingSession { token } | Self::ClaimPairingSession { token } => vec![token.as_str()],
            Self::Register(_)
            | Self::Deregister { .. }
            | Self::SendHeartbeat { .. }
            | Self::ListWorkspaces
            | Self::CreatePairingSession(_) => Vec::new(),
        }
    }

    /// The percent-encoded path this call is sent to;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an empty ID.
    pub fn path(&self) -> Result<String> {
        self.endpoint().path(&self.path_params())
    }

    /// The request a transport sends for this call, reading the answer as
    /// this route's [`Reply`]: a transport's whole
    /// [`DaemonApi::call`](crate::DaemonApi::call) is sending these bytes
    /// and handing the status and body to [`Request::decode_response`].
    ///
    /// ```
    /// use multica_api::{Call, Reply, RuntimeId};
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
        })
    }

    /// The request a client sends for this call (the inverse of [`Call::decode`]).
    pub fn to_wire(&self) -> Result<WireRequest> {
        Ok(self.to_request()?.into_wire())
    }

    /// Decodes a request as the server does: the route from the method and
    /// path (without query string), then the JSON body for routes that read
    /// one. Routes without a body ignore whatever was sent.
    ///
    /// ```
    /// use multica_api::{Call, TaskId};
    /// let call = Call::decode("POST", "/api/daemon/tasks/t%2F1/fail", br#"{"error":"boom"}"#).unwrap();
    /// assert_eq!(call, Call::FailTask { task_id: TaskId::new("t/1"), error: "boom".into() });
    /// ```
    pub fn decode(method: &str, path: &str, body: &[u8]) -> Result<Call, CallDecodeError> {
        let (endpoint, params) = Endpoint::recognize(method, path).map_err(CallDecodeError::Route)?;
        let mut params = params.into_iter();
        let mut param = || params.next().unwrap_or_default();
        Ok(match endpoint {
            Endpoint::Register => Self::Register(body_json(body)?),
            Endpoint::Deregister => Self::Deregister { runtime_ids: body_json::<RuntimeIdsBody<_>>(body)?.runtime_ids },
            Endpoint::SendHeartbeat => {
                Self::SendHeartbeat { runtime_id: body_json::<HeartbeatBody<_>>(body)?.runtime_id }
            }
            Endpoint::ClaimTask => Self::ClaimTask { runtime_id: param().into() },
            Endpoint::ListPendingTasks => Self::ListPendingTasks { runtime_id: param().into() },
            Endpoint::ReportUsage => {
                Self::ReportUsage { runtime_id: param().into(), entries: body_json::<EntriesBody<_>>(body)?.entries }
            }
            Endpoint::ReportPingResult => {
                Self::ReportPingResult { runtime_id: param().into(), ping_id: param().into(), result: body_json(body)? }
            }
            Endpoint::GetTaskStatus => Self::GetTaskStatus { task_id: param().into() },
            Endpoint::StartTask => Self::StartTask { task_id: param().into() },
            Endpoint::ReportProgress => Self::ReportProgress { task_id: param().into(), progress: body_json(body)? },
            Endpoint::CompleteTask => Self::CompleteTask { task_id: param().into(), completion: body_json(body)? },
            Endpoint::FailTask => {
                Self::FailTask { task_id: param().into(), error: body_json::<FailBody<_>>(body)?.error }
            }
            Endpoint::ReportTaskMessages => Self::ReportTaskMessages {
                task_id: param().into(),
                messages: body_json::<MessagesBody<_>>(body)?.messages,
            },
            Endpoint::ListTaskMessages => Self::ListTaskMessages { task_id: param().into() },
            Endpoint::ListWorkspaces => Self::ListWorkspaces,
            Endpoint::CreatePairingSession => Self::CreatePairingSession(body_json(body)?),
            Endpoint::GetPairingSession => Self::GetPairingSession { token: param() },
            Endpoint::ClaimPairingSession => Self::ClaimPairingSession { token: param() },
        })
    }
}

/// Reads a body as the server's Go decoder does (see [`crate::go_json`]).
fn body_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, CallDecodeError> {
    crate::go_json::from_body(body).map_err(|err| CallDecodeError::InvalidBody(Arc::new(err)))
}
