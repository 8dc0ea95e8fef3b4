//! A call with its arguments, as a value: what a server decodes from a
//! request and what the fake records in its call log.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::dto::{PairingRequest, PingResult, RegisterRequest, TaskCompletion, TaskMessage, TaskProgress, UsageEntry};
use crate::error::Result;
use crate::ids::{PingId, RuntimeId, TaskId};
use crate::request::{self, EntriesBody, FailBody, HeartbeatBody, MessagesBody, RuntimeIdsBody, WireRequest};
use crate::route::{Endpoint, RouteMismatch};

/// One call of the daemon API with its arguments.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Call {
    /// [`crate::DaemonApi::register`].
    Register(RegisterRequest),
    /// [`crate::DaemonApi::deregister`].
    Deregister {
        /// Runtimes to take offline.
        runtime_ids: Vec<RuntimeId>,
    },
    /// [`crate::DaemonApi::send_heartbeat`].
    SendHeartbeat {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApi::claim_task`].
    ClaimTask {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApi::list_pending_tasks`].
    ListPendingTasks {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// [`crate::DaemonApi::report_usage`].
    ReportUsage {
        /// The runtime.
        runtime_id: RuntimeId,
        /// Usage rows.
        entries: Vec<UsageEntry>,
    },
    /// [`crate::DaemonApi::report_ping_result`].
    ReportPingResult {
        /// The runtime.
        runtime_id: RuntimeId,
        /// The ping answered.
        ping_id: PingId,
        /// The answer.
        result: PingResult,
    },
    /// [`crate::DaemonApi::get_task_status`].
    GetTaskStatus {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApi::start_task`].
    StartTask {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApi::report_progress`].
    ReportProgress {
        /// The task.
        task_id: TaskId,
        /// Step and summary.
        progress: TaskProgress,
    },
    /// [`crate::DaemonApi::complete_task`].
    CompleteTask {
        /// The task.
        task_id: TaskId,
        /// Output and resume data.
        completion: TaskCompletion,
    },
    /// [`crate::DaemonApi::fail_task`].
    FailTask {
        /// The task.
        task_id: TaskId,
        /// Why it failed.
        error: String,
    },
    /// [`crate::DaemonApi::report_task_messages`].
    ReportTaskMessages {
        /// The task.
        task_id: TaskId,
        /// The batch.
        messages: Vec<TaskMessage>,
    },
    /// [`crate::DaemonApi::list_task_messages`].
    ListTaskMessages {
        /// The task.
        task_id: TaskId,
    },
    /// [`crate::DaemonApi::list_workspaces`].
    ListWorkspaces,
    /// [`crate::DaemonApi::create_pairing_session`].
    CreatePairingSession(PairingRequest),
    /// [`crate::DaemonApi::get_pairing_session`].
    GetPairingSession {
        /// The session's token.
        token: String,
    },
    /// [`crate::DaemonApi::claim_pairing_session`].
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

    /// The request a client sends for this call (the inverse of [`Call::decode`]).
    pub fn to_wire(&self) -> Result<WireRequest> {
        Ok(match self {
            Self::Register(body) => request::register(body)?.into_wire(),
            Self::Deregister { runtime_ids } => request::deregister(runtime_ids)?.into_wire(),
            Self::SendHeartbeat { runtime_id } => request::send_heartbeat(runtime_id)?.into_wire(),
            Self::ClaimTask { runtime_id } => request::claim_task(runtime_id)?.into_wire(),
            Self::ListPendingTasks { runtime_id } => request::list_pending_tasks(runtime_id)?.into_wire(),
            Self::ReportUsage { runtime_id, entries } => request::report_usage(runtime_id, entries)?.into_wire(),
            Self::ReportPingResult { runtime_id, ping_id, result } => {
                request::report_ping_result(runtime_id, ping_id, result)?.into_wire()
            }
            Self::GetTaskStatus { task_id } => request::get_task_status(task_id)?.into_wire(),
            Self::StartTask { task_id } => request::start_task(task_id)?.into_wire(),
            Self::ReportProgress { task_id, progress } => request::report_progress(task_id, progress)?.into_wire(),
            Self::CompleteTask { task_id, completion } => request::complete_task(task_id, completion)?.into_wire(),
            Self::FailTask { task_id, error } => request::fail_task(task_id, error)?.into_wire(),
            Self::ReportTaskMessages { task_id, messages } => {
                request::report_task_messages(task_id, messages)?.into_wire()
            }
            Self::ListTaskMessages { task_id } => request::list_task_messages(task_id)?.into_wire(),
            Self::ListWorkspaces => request::list_workspaces()?.into_wire(),
            Self::CreatePairingSession(body) => request::create_pairing_session(body)?.into_wire(),
            Self::GetPairingSession { token } => request::get_pairing_session(token)?.into_wire(),
            Self::ClaimPairingSession { token } => request::claim_pairing_session(token)?.into_wire(),
        })
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
