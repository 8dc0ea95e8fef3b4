//! A call's answer as a value: what [`DaemonApi::call`](crate::DaemonApi::call) returns.

use crate::dto::{
    HeartbeatResponse, PairingSession, RegisterResponse, StoredTaskMessage, Task, TaskRecord, TaskStatus, Workspace,
};

/// The answer to one [`Call`](crate::Call): one variant per answer shape,
/// not per route (every route whose result the Go client drops answers
/// [`Reply::Done`]). A route added later either reuses a shape or adds a
/// variant, which is why the enum is `#[non_exhaustive]`.
///
/// The typed methods of [`DaemonApiExt`](crate::DaemonApiExt) unwrap it; a
/// backend answering with the wrong shape makes them fail with
/// [`Error::UnexpectedReply`](crate::Error::UnexpectedReply).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
// A reply is moved once from the backend to the typed method; boxing the
// claimed task would cost an allocation per claim to save a move.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// The call succeeded and its answer carries nothing the client reads
    /// (deregister, usage, ping result, start, progress, complete, fail,
    /// task messages).
    Done,
    /// [`DaemonApiExt::register`](crate::DaemonApiExt::register).
    Registered(RegisterResponse),
    /// [`DaemonApiExt::send_heartbeat`](crate::DaemonApiExt::send_heartbeat).
    Heartbeat(HeartbeatResponse),
    /// [`DaemonApiExt::claim_task`](crate::DaemonApiExt::claim_task): `None` when nothing is queued.
    Claimed(Option<Task>),
    /// [`DaemonApiExt::list_pending_tasks`](crate::DaemonApiExt::list_pending_tasks).
    PendingTasks(Vec<TaskRecord>),
    /// [`DaemonApiExt::get_task_status`](crate::DaemonApiExt::get_task_status).
    TaskStatus(TaskStatus),
    /// [`DaemonApiExt::list_task_messages`](crate::DaemonApiExt::list_task_messages).
    Messages(Vec<StoredTaskMessage>),
    /// [`DaemonApiExt::list_workspaces`](crate::DaemonApiExt::list_workspaces).
    Workspaces(Vec<Workspace>),
    /// The pairing routes: create, get and claim.
    PairingSession(PairingSession),
}
