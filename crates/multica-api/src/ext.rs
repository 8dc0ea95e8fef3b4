//! `DaemonApiExt`: stacking layers on any backend.

use std::time::Duration;

use crate::layer::{Retry, RetryPolicy, Timeout};
use crate::DaemonApi;

/// Builder-style stacking of [layers](crate::layer) on any [`DaemonApi`]
/// (implemented for every one, `Arc<dyn DaemonApi>` included). Each method
/// wraps `self`, so the first call is the innermost layer: write the
/// timeout before the retry, so each attempt gets its own deadline.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use multica_api::layer::RetryPolicy;
/// use multica_api::{DaemonApi, DaemonApiExt};
///
/// fn stack(backend: Arc<dyn DaemonApi>) -> Arc<dyn DaemonApi> {
///     Arc::new(backend.with_timeout(Duration::from_secs(30)).with_retry(RetryPolicy::default()))
/// }
/// ```
pub trait DaemonApiExt: DaemonApi + Sized {
    /// Gives each call at most `per_call` ([`Timeout`]).
    fn with_timeout(self, per_call: Duration) -> Timeout<Self> {
        Timeout::new(self, per_call)
    }

    /// Repeats transient failures of calls safe to repeat ([`Retry`]).
    fn with_retry(self, policy: RetryPolicy) -> Retry<Self> {
        Retry::new(self, policy)
    }

    /// Opens one span per call ([`Tracing`](crate::layer::Tracing)).
    #[cfg(feature = "tracing")]
    fn with_tracing(self) -> crate::layer::Tracing<Self> {
        crate::layer::Tracing::new(self)
    }
}

impl<T: DaemonApi> DaemonApiExt for T {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::*;
    use crate::test_double::{Outcome, ScriptedApi};
    use crate::{Endpoint, RuntimeId};

    #[tokio::test(start_paused = true)]
    async fn a_timeout_inside_a_retry_gives_each_attempt_its_own_deadline_over_a_dyn_backend() {
        let backend = ScriptedApi::new();
        backend.script(Endpoint::SendHeartbeat, [Outcome::Delay(Duration::from_secs(60))]);
        let shared: Arc<dyn DaemonApi> = Arc::new(backend.clone());
        let policy =
            RetryPolicy { initial_backoff: Duration::from_secs(1), full_jitter: false, ..RetryPolicy::default() };
        let api: Arc<dyn DaemonApi> = Arc::new(shared.with_timeout(Duration::from_secs(2)).with_retry(policy));
        let origin = Instant::now();

        assert!(api.send_heartbeat(&RuntimeId::new("rt-1")).await.is_ok());
        // The hung first attempt timed out at 2 s, the retry after 1 s more succeeded.
        assert_eq!(origin.elapsed(), Duration::from_secs(3));
        assert_eq!(backend.count(Endpoint::SendHeartbeat), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_inside_a_timeout_is_cut_by_the_one_deadline() {
        let backend = ScriptedApi::new();
        backend.script(Endpoint::SendHeartbeat, [Outcome::Delay(Duration::from_secs(60))]);
        let api = backend.clone().with_retry(RetryPolicy::default()).with_timeout(Duration::from_secs(2));

        let err = api.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(err.is_timeout());
        assert_eq!(backend.count(Endpoint::SendHeartbeat), 1);
    }
}
