//! The `DaemonApi` trait: one method per route of the daemon API.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::dto::{
    HeartbeatResponse, PairingRequest, PairingSession, PingResult, RegisterRequest, RegisterResponse,
    StoredTaskMessage, Task, TaskCompletion, TaskMessage, TaskProgress, TaskRecord, TaskStatus, UsageEntry, Workspace,
};
use crate::error::Result;
use crate::ids::{PingId, RuntimeId, TaskId};

/// The Multica daemon API, whatever carries it: the hyper client, the
/// in-memory fake, a layer wrapping either, or your own transport.
///
/// Object-safe (use `Arc<dyn DaemonApi>`) and implemented for `&T`, `Box<T>`
/// and `Arc<T>`. Every method maps to exactly one route; errors are the
/// server's answers as [`crate::Error`] values, whichever backend you use.
/// The methods have no default bodies, so a wrapper can never silently skip
/// the inner backend's own version.
#[async_trait]
pub trait DaemonApi: Send + Sync + Debug {
    /// Registers the daemon's runtimes in a workspace (upserted by workspace,
    /// daemon and provider). Fails with 404 `workspace not found` and 400 for
    /// a missing `daemon_id`, `workspace_id` or runtime.
    async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse>;

    /// Marks runtimes offline; unknown IDs are skipped. 400 when empty.
    async fn deregister(&self, runtime_ids: &[RuntimeId]) -> Result<()>;

    /// Marks a runtime online and hands out its oldest pending ping, once.
    async fn send_heartbeat(&self, runtime_id: &RuntimeId) -> Result<HeartbeatResponse>;

    /// Takes the runtime's next queued task (highest priority, then oldest),
    /// moving it to `dispatched`; `None` when nothing is queued or the
    /// runtime is unknown. Never retried once it may have reached the server.
    async fn claim_task(&self, runtime_id: &RuntimeId) -> Result<Option<Task>>;

    /// The runtime's tasks that are queued or dispatched.
    async fn list_pending_tasks(&self, runtime_id: &RuntimeId) -> Result<Vec<TaskRecord>>;

    /// Upserts token usage rows by (runtime, date, provider, model).
    async fn report_usage(&self, runtime_id: &RuntimeId, entries: &[UsageEntry]) -> Result<()>;

    /// Answers a ping handed out by a heartbeat.
    async fn report_ping_result(&self, runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) -> Result<()>;

    /// The task's current status (to notice a cancellation). 404 `task not found`.
    async fn get_task_status(&self, task_id: &TaskId) -> Result<TaskStatus>;

    /// Moves a dispatched task to `running`; 400 otherwise.
    async fn start_task(&self, task_id: &TaskId) -> Result<()>;

    /// Reports step `step` of `total`.
    async fn report_progress(&self, task_id: &TaskId, progress: &TaskProgress) -> Result<()>;

    /// Moves a running task to `completed` with its output; 400 otherwise.
    async fn complete_task(&self, task_id: &TaskId, completion: &TaskCompletion) -> Result<()>;

    /// Moves a dispatched or running task to `failed`; 400 otherwise.
    async fn fail_task(&self, task_id: &TaskId, error: &str) -> Result<()>;

    /// Stores a batch of live-output messages. 404 `task not found` for a
    /// non-empty batch of an unknown task.
    async fn report_task_messages(&self, task_id: &TaskId, messages: &[TaskMessage]) -> Result<()>;

    /// The task's stored messages by `seq` ascending.
    async fn list_task_messages(&self, task_id: &TaskId) -> Result<Vec<StoredTaskMessage>>;

    /// The workspaces of the token's user (needs a token; 401 otherwise).
    async fn list_workspaces(&self) -> Result<Vec<Workspace>>;

    /// Opens a pairing session for a user to approve.
    async fn create_pairing_session(&self, request: &PairingRequest) -> Result<PairingSession>;

    /// Reads a pairing session.
    async fn get_pairing_session(&self, token: &str) -> Result<PairingSession>;

    /// Claims an approved pairing session.
    async fn claim_pairing_session(&self, token: &str) -> Result<PairingSession>;
}

/// Implements `DaemonApi` for a pointer type by forwarding every method.
macro_rules! forward_pointer {
    ($($pointer:ty),+) => {$(
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<T: DaemonApi + ?Sized> DaemonApi for $pointer {
            async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse> {
                (**self).register(request).await
            }
            async fn deregister(&self, runtime_ids: &[RuntimeId]) -> Result<()> {
                (**self).deregister(runtime_ids).await
            }
            async fn send_heartbeat(&self, runtime_id: &RuntimeId) -> Result<HeartbeatResponse> {
                (**self).send_heartbeat(runtime_id).await
            }
            async fn claim_task(&self, runtime_id: &RuntimeId) -> Result<Option<Task>> {
                (**self).claim_task(runtime_id).await
            }
            async fn list_pending_tasks(&self, runtime_id: &RuntimeId) -> Result<Vec<TaskRecord>> {
                (**self).list_pending_tasks(runtime_id).await
            }
            async fn report_usage(&self, runtime_id: &RuntimeId, entries: &[UsageEntry]) -> Result<()> {
                (**self).report_usage(runtime_id, entries).await
            }
            async fn report_ping_result(&self, runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) -> Result<()> {
                (**self).report_ping_result(runtime_id, ping_id, result).await
            }
            async fn get_task_status(&self, task_id: &TaskId) -> Result<TaskStatus> {
                (**self).get_task_status(task_id).await
            }
            async fn start_task(&self, task_id: &TaskId) -> Result<()> {
                (**self).start_task(task_id).await
            }
            async fn report_progress(&self, task_id: &TaskId, progress: &TaskProgress) -> Result<()> {
                (**self).report_progress(task_id, progress).await
            }
            async fn complete_task(&self, task_id: &TaskId, completion: &TaskCompletion) -> Result<()> {
                (**self).complete_task(task_id, completion).await
            }
            async fn fail_task(&self, task_id: &TaskId, error: &str) -> Result<()> {
                (**self).fail_task(task_id, error).await
            }
            async fn report_task_messages(&self, task_id: &TaskId, messages: &[TaskMessage]) -> Result<()> {
                (**self).report_task_messages(task_id, messages).await
            }
            async fn list_task_messages(&self, task_id: &TaskId) -> Result<Vec<StoredTaskMessage>> {
                (**self).list_task_messages(task_id).await
            }
            async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
                (**self).list_workspaces().await
            }
            async fn create_pairing_session(&self, request: &PairingRequest) -> Result<PairingSession> {
                (**self).create_pairing_session(request).await
            }
            async fn get_pairing_session(&self, token: &str) -> Result<PairingSession> {
                (**self).get_pairing_session(token).await
            }
            async fn claim_pairing_session(&self, token: &str) -> Result<PairingSession> {
                (**self).claim_pairing_session(token).await
            }
        }
    )+};
}

forward_pointer!(&T, Box<T>, Arc<T>);
