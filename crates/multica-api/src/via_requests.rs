//! `impl_daemon_api!`: a transport writes one `send` function, the macro
//! writes the 18 trait methods.

/// Implements [`DaemonApi`](crate::DaemonApi) for a transport that can send
/// any [`Request`](crate::request::Request): every trait method builds its
/// request with the matching [`crate::request`] function and hands it to
/// `$send`, an inherent method of the type with this signature:
///
/// ```text
/// async fn send<T>(&self, request: multica_api::Result<Request<T>>) -> multica_api::Result<T>
/// ```
///
/// (`Err` when the arguments cannot be sent, such as an empty ID; return it
/// unchanged). The impl carries `#[deny(clippy::missing_trait_methods)]`, so
/// a route added to the trait is added here or the build says so.
///
/// ```
/// use multica_api::request::Request;
/// use multica_api::{Error, Result};
///
/// /// A transport that is never connected.
/// #[derive(Debug)]
/// struct Offline;
///
/// impl Offline {
///     async fn send<T>(&self, request: Result<Request<T>>) -> Result<T> {
///         let request = request?;
///         Err(Error::InvalidArgument(format!("offline: cannot send {} {}", request.method(), request.path())))
///     }
/// }
///
/// multica_api::impl_daemon_api!(Offline, send);
/// ```
#[macro_export]
macro_rules! impl_daemon_api {
    ($ty:ty, $send:ident) => {
        #[$crate::async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl $crate::DaemonApi for $ty {
            async fn register(&self, request: &$crate::RegisterRequest) -> $crate::Result<$crate::RegisterResponse> {
                self.$send($crate::request::register(request)).await
            }
            async fn deregister(&self, runtime_ids: &[$crate::RuntimeId]) -> $crate::Result<()> {
                self.$send($crate::request::deregister(runtime_ids)).await
            }
            async fn send_heartbeat(
                &self,
                runtime_id: &$crate::RuntimeId,
            ) -> $crate::Result<$crate::HeartbeatResponse> {
                self.$send($crate::request::send_heartbeat(runtime_id)).await
            }
            async fn claim_task(&self, runtime_id: &$crate::RuntimeId) -> $crate::Result<Option<$crate::Task>> {
                self.$send($crate::request::claim_task(runtime_id)).await
            }
            async fn list_pending_tasks(
                &self,
                runtime_id: &$crate::RuntimeId,
            ) -> $crate::Result<Vec<$crate::TaskRecord>> {
                self.$send($crate::request::list_pending_tasks(runtime_id)).await
            }
            async fn report_usage(
                &self,
                runtime_id: &$crate::RuntimeId,
                entries: &[$crate::UsageEntry],
            ) -> $crate::Result<()> {
                self.$send($crate::request::report_usage(runtime_id, entries)).await
            }
            async fn report_ping_result(
                &self,
                runtime_id: &$crate::RuntimeId,
                ping_id: &$crate::PingId,
                result: &$crate::PingResult,
            ) -> $crate::Result<()> {
                self.$send($crate::request::report_ping_result(runtime_id, ping_id, result)).await
            }
            async fn get_task_status(&self, task_id: &$crate::TaskId) -> $crate::Result<$crate::TaskStatus> {
                self.$send($crate::request::get_task_status(task_id)).await
            }
            async fn start_task(&self, task_id: &$crate::TaskId) -> $crate::Result<()> {
                self.$send($crate::request::start_task(task_id)).await
            }
            async fn report_progress(
                &self,
                task_id: &$crate::TaskId,
                progress: &$crate::TaskProgress,
            ) -> $crate::Result<()> {
                self.$send($crate::request::report_progress(task_id, progress)).await
            }
            async fn complete_task(
                &self,
                task_id: &$crate::TaskId,
                completion: &$crate::TaskCompletion,
            ) -> $crate::Result<()> {
                self.$send($crate::request::complete_task(task_id, completion)).await
            }
            async fn fail_task(&self, task_id: &$crate::TaskId, error: &str) -> $crate::Result<()> {
                self.$send($crate::request::fail_task(task_id, error)).await
            }
            async fn report_task_messages(
                &self,
                task_id: &$crate::TaskId,
                messages: &[$crate::TaskMessage],
            ) -> $crate::Result<()> {
                self.$send($crate::request::report_task_messages(task_id, messages)).await
            }
            async fn list_task_messages(
                &self,
                task_id: &$crate::TaskId,
            ) -> $crate::Result<Vec<$crate::StoredTaskMessage>> {
                self.$send($crate::request::list_task_messages(task_id)).await
            }
            async fn list_workspaces(&self) -> $crate::Result<Vec<$crate::Workspace>> {
                self.$send($crate::request::list_workspaces()).await
            }
            async fn create_pairing_session(
                &self,
                request: &$crate::PairingRequest,
            ) -> $crate::Result<$crate::PairingSession> {
                self.$send($crate::request::create_pairing_session(request)).await
            }
            async fn get_pairing_session(&self, token: &str) -> $crate::Result<$crate::PairingSession> {
                self.$send($crate::request::get_pairing_session(token)).await
            }
            async fn claim_pairing_session(&self, token: &str) -> $crate::Result<$crate::PairingSession> {
                self.$send($crate::request::claim_pairing_session(token)).await
            }
        }
    };
}
