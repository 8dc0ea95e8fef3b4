//! The `Timeout` layer: a deadline per call.

use std::collections::HashMap;
use std::time::Duration;

use super::impl_layer;
use crate::error::{Error, Result};
use crate::route::Endpoint;
use crate::{Call, DaemonApi, Reply};

/// Gives every call a deadline; a call still running at its deadline is
/// dropped (cancelling the inner request) and fails with [`Error::Timeout`].
///
/// The deadline is the same for every route unless overridden with
/// [`Timeout::with_endpoint_timeout`]. A layer sees calls, not requests, so
/// the error's `path` is the route's template
/// (`/api/daemon/tasks/{taskId}/start`), never the encoded path with IDs.
/// Put it inside a [`Retry`](super::Retry) so that each attempt gets its own
/// deadline.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use std::time::Duration;
/// use multica::layer::Timeout;
/// use multica::{DaemonApi, Endpoint};
///
/// fn with_deadlines<A: DaemonApi>(backend: A) -> Timeout<A> {
///     // Claims may long-poll on some servers: give them longer.
///     Timeout::new(backend, Duration::from_secs(30))
///         .with_endpoint_timeout(Endpoint::ClaimTask, Duration::from_secs(60))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Timeout<A> {
    inner: A,
    default: Duration,
    per_endpoint: HashMap<Endpoint, Duration>,
}

impl<A> Timeout<A> {
    /// Wraps `inner`, giving each call at most `per_call`.
    pub fn new(inner: A, per_call: Duration) -> Self {
        Self { inner, default: per_call, per_endpoint: HashMap::new() }
    }

    /// Gives calls of `endpoint` their own deadline instead of the default.
    pub fn with_endpoint_timeout(mut self, endpoint: Endpoint, after: Duration) -> Self {
        self.per_endpoint.insert(endpoint, after);
        self
    }

    /// The deadline of a call of `endpoint`.
    pub fn timeout_for(&self, endpoint: Endpoint) -> Duration {
        self.per_endpoint.get(&endpoint).copied().unwrap_or(self.default)
    }
}

impl<A: DaemonApi> Timeout<A> {
    async fn around(&self, call: Call) -> Result<Reply> {
        let endpoint = call.endpoint();
        let after = self.timeout_for(endpoint);
        // On expiry `timeout` drops the call's future, which cancels it.
        tokio::time::timeout(after, self.inner.call(call)).await.unwrap_or_else(|_elapsed| {
            Err(Error::Timeout { method: endpoint.method(), path: endpoint.template().to_owned(), after })
        })
    }
}

impl_layer!(Timeout);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::test_support::{call_endpoint, Probe};
    use crate::test_double::{unavailable, Outcome, ScriptedApi};
    use crate::{DaemonApiExt, RuntimeId};
    use tokio::time::Instant;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn expiry_is_a_timeout_error_and_drops_the_inner_call() {
        let backend = ScriptedApi::new();
        backend.script(Endpoint::SendHeartbeat, [Outcome::Delay(60 * SECOND)]);
        let probe = Probe::new(backend.clone());
        let api = Timeout::new(probe.clone(), SECOND);

        let started = Instant::now();
        let err = api.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();

        assert_eq!(started.elapsed(), SECOND);
        assert!(err.is_timeout() && err.is_transient());
        assert_eq!(err.to_string(), "POST /api/daemon/heartbeat: timed out after 1s");
        assert_eq!(probe.running(), 0, "the inner call must be dropped at the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn every_method_gets_the_deadline_of_its_own_route() {
        let backend = ScriptedApi::new();
        let api = Timeout::new(backend.clone(), SECOND);
        for &endpoint in Endpoint::ALL {
            backend.script(endpoint, [Outcome::Delay(2 * SECOND)]);
            match call_endpoint(&api, endpoint).await {
                Err(Error::Timeout { method, path, after }) => {
                    assert_eq!((method, path.as_str(), after), (endpoint.method(), endpoint.template(), SECOND));
                }
                other => panic!("{endpoint}: expected a timeout, got {other:?}"),
            }
            assert_eq!(backend.count(endpoint), 1, "{endpoint}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_override_replaces_the_default() {
        let backend = ScriptedApi::new();
        backend.script(Endpoint::ClaimTask, [Outcome::Delay(3 * SECOND)]);
        backend.script(Endpoint::SendHeartbeat, [Outcome::Delay(3 * SECOND)]);
        let api = Timeout::new(backend, SECOND).with_endpoint_timeout(Endpoint::ClaimTask, 5 * SECOND);
        assert_eq!(api.timeout_for(Endpoint::ClaimTask), 5 * SECOND);
        assert_eq!(api.timeout_for(Endpoint::StartTask), SECOND);

        let runtime = RuntimeId::new("rt-1");
        assert_eq!(api.claim_task(&runtime).await.expect("within 5 s"), None);
        assert!(api.send_heartbeat(&runtime).await.unwrap_err().is_timeout());
    }

    #[tokio::test(start_paused = true)]
    async fn answers_and_errors_within_the_deadline_pass_through_unchanged() {
        let backend = ScriptedApi::new();
        backend.script(
            Endpoint::SendHeartbeat,
            [Outcome::Delay(SECOND / 2), Outcome::Fail(unavailable(Endpoint::SendHeartbeat))],
        );
        let api = Timeout::new(backend, SECOND);
        let runtime = RuntimeId::new("rt-1");

        assert!(api.send_heartbeat(&runtime).await.is_ok());
        let err = api.send_heartbeat(&runtime).await.unwrap_err();
        assert_eq!(err.status(), Some(503));
    }
}
