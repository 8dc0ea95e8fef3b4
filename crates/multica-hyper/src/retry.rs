//! The transport's retry policy: which failures are tried again, and when.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use multica_api::layer::SAFE_TO_REPEAT;
use multica_api::{Endpoint, Error};

/// How the client retries transient failures (connection errors, timeouts,
/// 5xx, 408, 429).
///
/// A failure is retried when it is transient *and* either the call is safe
/// to repeat ([`RetryPolicy::is_safe_to_repeat`]) or the request provably
/// never reached the server ([`Error::may_have_reached_server`] is false, as
/// for a refused connection). So a claim is re-sent only when it was never
/// sent. Waits grow exponentially from [`RetryPolicy::base_backoff`] up to
/// [`RetryPolicy::max_backoff`] with full jitter, are at least the server's
/// `Retry-After`, and never run past the call's deadline: the whole-request
/// timeout bounds all attempts together.
///
/// ```
/// use std::time::Duration;
/// use multica_hyper::RetryPolicy;
///
/// let policy = RetryPolicy::default().with_max_attempts(5).with_max_backoff(Duration::from_secs(2));
/// assert_eq!(policy.max_attempts, 5);
/// assert_eq!(RetryPolicy::disabled().max_attempts, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The wait bound before the first retry; doubled for each next one.
    pub base_backoff: Duration,
    /// The largest wait bound between two attempts (before `Retry-After`).
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// Three attempts: rides out a server restart or a dropped keep-alive
    /// socket without stretching a 30 s heartbeat period.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    /// 100 ms: long enough for a load balancer to pick another backend.
    pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_millis(100);
    /// 5 s: a sixth of the default deadline, so a retry still fits in it.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);

    /// A policy that never retries.
    pub fn disabled() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// Sets the number of attempts in total (0 is read as 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the wait bound before the first retry.
    pub fn with_base_backoff(mut self, backoff: Duration) -> Self {
        self.base_backoff = backoff;
        self
    }

    /// Sets the largest wait bound between two attempts.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Whether repeating the call cannot change the outcome: reads, the
    /// heartbeat, and reports that the server upserts or ignores when
    /// repeated — [`multica_api::layer::SAFE_TO_REPEAT`], shared with the
    /// retry layer. Claim, start, complete, fail, register, messages and the
    /// pairing writes are not: a repeat could take a second task, fail a
    /// state transition that already happened, or store messages twice.
    pub fn is_safe_to_repeat(endpoint: Endpoint) -> bool {
        SAFE_TO_REPEAT.contains(&endpoint)
    }

    /// Whether `error`, the failure of attempt number `attempt` (from 1) of
    /// a call to `endpoint`, may be tried again under this policy.
    pub fn should_retry(&self, endpoint: Endpoint, attempt: u32, error: &Error) -> bool {
        attempt < self.max_attempts
            && error.is_transient()
            && (Self::is_safe_to_repeat(endpoint) || !error.may_have_reached_server())
    }

    /// The wait after failed attempt number `attempt` (from 1): a random
    /// duration up to `min(max_backoff, base_backoff × 2^(attempt-1))`, and
    /// at least the server's `Retry-After`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubling = 2u32.saturating_pow(attempt.saturating_sub(1));
        let bound = self.base_backoff.saturating_mul(doubling).min(self.max_backoff);
        full_jitter(bound).max(retry_after.unwrap_or_default())
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            base_backoff: Self::DEFAULT_BASE_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
        }
    }
}

/// A uniformly random duration in `[0, bound]`. Each `RandomState` is keyed
/// afresh, which is random enough to spread clients' retries apart without a
/// PRNG dependency.
fn full_jitter(bound: Duration) -> Duration {
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(nanos);
    Duration::from_nanos(hasher.finish() % nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use multica_api::{Method, TransportKind};

    use super::*;

    fn status(code: u16) -> Error {
        Error::from_status(Method::Post, "/x", code, b"")
    }

    fn transport(kind: TransportKind) -> Error {
        let source = Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        Error::Transport { method: Method::Post, path: "/x".into(), kind, source }
    }

    #[test]
    fn transient_failures_of_safe_calls_are_retried() {
        let policy = RetryPolicy::default();
        for err in [status(503), status(429), status(408), transport(TransportKind::Request)] {
            assert!(policy.should_retry(Endpoint::SendHeartbeat, 1, &err), "{err}");
        }
        assert!(!policy.should_retry(Endpoint::SendHeartbeat, 1, &status(400)));
        assert!(!policy.should_retry(Endpoint::SendHeartbeat, 3, &status(503)), "attempts are bounded");
    }

    #[test]
    fn claim_is_retried_only_when_it_never_left() {
        let policy = RetryPolicy::default();
        assert!(!policy.should_retry(Endpoint::ClaimTask, 1, &status(503)));
        assert!(!policy.should_retry(Endpoint::ClaimTask, 1, &transport(TransportKind::Request)));
        assert!(policy.should_retry(Endpoint::ClaimTask, 1, &transport(TransportKind::Connect)));
    }

    #[test]
    fn disabled_never_retries() {
        assert!(!RetryPolicy::disabled().should_retry(Endpoint::SendHeartbeat, 1, &transport(TransportKind::Connect)));
    }

    #[test]
    fn only_the_listed_calls_are_safe_to_repeat() {
        let unsafe_calls = [
            Endpoint::Register,
            Endpoint::ClaimTask,
            Endpoint::StartTask,
            Endpoint::CompleteTask,
            Endpoint::FailTask,
            Endpoint::ReportTaskMessages,
            Endpoint::CreatePairingSession,
            Endpoint::ClaimPairingSession,
        ];
        for endpoint in Endpoint::ALL {
            assert_eq!(RetryPolicy::is_safe_to_repeat(*endpoint), !unsafe_calls.contains(endpoint), "{endpoint}");
        }
    }

    #[test]
    fn backoff_is_capped_jittered_and_honours_retry_after() {
        let policy = RetryPolicy::default()
            .with_base_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(250));
        for _ in 0..200 {
            assert!(policy.backoff(1, None) <= Duration::from_millis(100));
            assert!(policy.backoff(2, None) <= Duration::from_millis(200));
            assert!(policy.backoff(30, None) <= Duration::from_millis(250));
            assert!(policy.backoff(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        }
        let spread: std::collections::HashSet<Duration> = (0..50).map(|_| policy.backoff(3, None)).collect();
        assert!(spread.len() > 10, "waits are jittered: {spread:?}");
        assert_eq!(policy.with_base_backoff(Duration::ZERO).backoff(1, None), Duration::ZERO);
    }
}
