//! Layers: wrappers that take any [`DaemonApi`](crate::DaemonApi) and are
//! one, so the fake, the hyper client and your own transport all get the
//! same cross-cutting behaviour (as opendal layers or object_store's wrapper
//! stores).
//!
//! - [`Timeout`]: a deadline per call, overridable per route.
//! - [`Retry`]: retries transient failures of calls that are safe to repeat,
//!   as [`RetryPolicy`] says.
//! - `Tracing` (feature `tracing`): one span per call.
//!
//! Stack them with [`DaemonApiExt`](crate::DaemonApiExt), innermost first.
//! Put the timeout inside the retry, so that each attempt gets its own
//! deadline and an attempt that hangs becomes a retryable timeout; put
//! tracing outermost for one span per logical call, or innermost for one
//! span per attempt:
//!
//! ```
//! use std::time::Duration;
//! use multica_api::layer::RetryPolicy;
//! use multica_api::{DaemonApi, DaemonApiExt};
//!
//! fn production_stack<A: DaemonApi>(backend: A) -> impl DaemonApi {
//!     backend
//!         .with_timeout(Duration::from_secs(30)) // each attempt
//!         .with_retry(RetryPolicy::default()) // around the attempts
//! }
//! ```

mod retry;
#[cfg(test)]
mod test_support;
mod timeout;
#[cfg(feature = "tracing")]
mod tracing;

#[cfg(feature = "tracing")]
pub use self::tracing::Tracing;
pub use retry::{Retry, RetryPolicy, SAFE_TO_REPEAT};
pub use timeout::Timeout;

/// Makes `$layer<A>`, whose field `inner: A` is the wrapped backend, a
/// layer: `inner()` and `into_inner()` accessors, and `DaemonApi` by sending
/// every method through the layer's `around(endpoint, make_call)`.
/// `make_call` creates the inner call's future and may be called again for
/// another attempt. The lint makes a new trait method a compile error until
/// it is forwarded here.
macro_rules! impl_layer {
    ($layer:ident) => {
        impl<A> $layer<A> {
            /// The wrapped backend.
            pub fn inner(&self) -> &A {
                &self.inner
            }

            /// Unwraps the backend.
            pub fn into_inner(self) -> A {
                self.inner
            }
        }

        #[$crate::async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<A: $crate::DaemonApi> $crate::DaemonApi for $layer<A> {
            async fn register(&self, request: &$crate::RegisterRequest) -> $crate::Result<$crate::RegisterResponse> {
                self.around($crate::Endpoint::Register, move || self.inner.register(request)).await
            }
            async fn deregister(&self, runtime_ids: &[$crate::RuntimeId]) -> $crate::Result<()> {
                self.around($crate::Endpoint::Deregister, move || self.inner.deregister(runtime_ids)).await
            }
            async fn send_heartbeat(
                &self,
                runtime_id: &$crate::RuntimeId,
            ) -> $crate::Result<$crate::HeartbeatResponse> {
                self.around($crate::Endpoint::SendHeartbeat, move || self.inner.send_heartbeat(runtime_id)).await
            }
            async fn claim_task(&self, runtime_id: &$crate::RuntimeId) -> $crate::Result<Option<$crate::Task>> {
                self.around($crate::Endpoint::ClaimTask, move || self.inner.claim_task(runtime_id)).await
            }
            async fn list_pending_tasks(
                &self,
                runtime_id: &$crate::RuntimeId,
            ) -> $crate::Result<Vec<$crate::TaskRecord>> {
                self.around($crate::Endpoint::ListPendingTasks, move || self.inner.list_pending_tasks(runtime_id)).await
            }
            async fn report_usage(
                &self,
                runtime_id: &$crate::RuntimeId,
                entries: &[$crate::UsageEntry],
            ) -> $crate::Result<()> {
                self.around($crate::Endpoint::ReportUsage, move || self.inner.report_usage(runtime_id, entries)).await
            }
            async fn report_ping_result(
                &self,
                runtime_id: &$crate::RuntimeId,
                ping_id: &$crate::PingId,
                result: &$crate::PingResult,
            ) -> $crate::Result<()> {
                self.around($crate::Endpoint::ReportPingResult, move || {
                    self.inner.report_ping_result(runtime_id, ping_id, result)
                })
                .await
            }
            async fn get_task_status(&self, task_id: &$crate::TaskId) -> $crate::Result<$crate::TaskStatus> {
                self.around($crate::Endpoint::GetTaskStatus, move || self.inner.get_task_status(task_id)).await
            }
            async fn start_task(&self, task_id: &$crate::TaskId) -> $crate::Result<()> {
                self.around($crate::Endpoint::StartTask, move || self.inner.start_task(task_id)).await
            }
            async fn report_progress(
                &self,
                task_id: &$crate::TaskId,
                progress: &$crate::TaskProgress,
            ) -> $crate::Result<()> {
                self.around($crate::Endpoint::ReportProgress, move || self.inner.report_progress(task_id, progress))
                    .await
            }
            async fn complete_task(
                &self,
                task_id: &$crate::TaskId,
                completion: &$crate::TaskCompletion,
            ) -> $crate::Result<()> {
                self.around($crate::Endpoint::CompleteTask, move || self.inner.complete_task(task_id, completion)).await
            }
            async fn fail_task(&self, task_id: &$crate::TaskId, error: &str) -> $crate::Result<()> {
                self.around($crate::Endpoint::FailTask, move || self.inner.fail_task(task_id, error)).await
            }
            async fn report_task_messages(
                &self,
                task_id: &$crate::TaskId,
                messages: &[$crate::TaskMessage],
            ) -> $crate::Result<()> {
                self.around($crate::Endpoint::ReportTaskMessages, move || {
                    self.inner.report_task_messages(task_id, messages)
                })
                .await
            }
            async fn list_task_messages(
                &self,
                task_id: &$crate::TaskId,
            ) -> $crate::Result<Vec<$crate::StoredTaskMessage>> {
                self.around($crate::Endpoint::ListTaskMessages, move || self.inner.list_task_messages(task_id)).await
            }
            async fn list_workspaces(&self) -> $crate::Result<Vec<$crate::Workspace>> {
                self.around($crate::Endpoint::ListWorkspaces, move || self.inner.list_workspaces()).await
            }
            async fn create_pairing_session(
                &self,
                request: &$crate::PairingRequest,
            ) -> $crate::Result<$crate::PairingSession> {
                self.around($crate::Endpoint::CreatePairingSession, move || self.inner.create_pairing_session(request))
                    .await
            }
            async fn get_pairing_session(&self, token: &str) -> $crate::Result<$crate::PairingSession> {
                self.around($crate::Endpoint::GetPairingSession, move || self.inner.get_pairing_session(token)).await
            }
            async fn claim_pairing_session(&self, token: &str) -> $crate::Result<$crate::PairingSession> {
                self.around($crate::Endpoint::ClaimPairingSession, move || self.inner.claim_pairing_session(token))
                    .await
            }
        }
    };
}
pub(crate) use impl_layer;
