//! Injected faults: the next N calls of a route fail with a given error, or
//! are delayed.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use multica_api::{Endpoint, Error, Method};

/// What happens to one call: wait first (on tokio's clock), then fail or go on.
#[derive(Debug, Default)]
pub(crate) struct Fault {
    pub(crate) delay: Option<Duration>,
    pub(crate) error: Option<Error>,
}

/// A value applied to the next `remaining` calls.
#[derive(Debug)]
struct Armed<T> {
    remaining: u32,
    value: T,
}

/// Faults armed per route; several arms on one route apply one after the other.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    failures: HashMap<Endpoint, VecDeque<Armed<Error>>>,
    delays: HashMap<Endpoint, VecDeque<Armed<Duration>>>,
}

impl Faults {
    pub(crate) fn fail_next(&mut self, endpoint: Endpoint, count: u32, error: Error) {
        if count > 0 {
            self.failures.entry(endpoint).or_default().push_back(Armed { remaining: count, value: error });
        }
    }

    pub(crate) fn delay_next(&mut self, endpoint: Endpoint, count: u32, delay: Duration) {
        if count > 0 {
            self.delays.entry(endpoint).or_default().push_back(Armed { remaining: count, value: delay });
        }
    }

    pub(crate) fn clear(&mut self) {
        self.failures.clear();
        self.delays.clear();
    }

    /// Consumes the fault for one call of `endpoint`, if any is armed.
    pub(crate) fn take(&mut self, endpoint: Endpoint) -> Option<Fault> {
        if self.failures.is_empty() && self.delays.is_empty() {
            return None;
        }
        let fault =
            Fault { delay: take_one(&mut self.delays, endpoint), error: take_one(&mut self.failures, endpoint) };
        (fault.delay.is_some() || fault.error.is_some()).then_some(fault)
    }
}

fn take_one<T: Clone>(armed: &mut HashMap<Endpoint, VecDeque<Armed<T>>>, endpoint: Endpoint) -> Option<T> {
    let queue = armed.get_mut(&endpoint)?;
    let front = queue.front_mut()?;
    front.remaining -= 1;
    let value = if front.remaining == 0 { queue.pop_front().map(|a| a.value) } else { Some(front.value.clone()) };
    if queue.is_empty() {
        armed.remove(&endpoint);
    }
    value
}

/// The injected error as the call's own: the method and path of the request
/// that failed replace whatever the test wrote, so an injected error is the
/// value a real client would have produced for this very request.
pub(crate) fn retarget(error: Error, method: Method, path: &str) -> Error {
    match error {
        Error::Status { status, body, retry_after, .. } => {
            Error::Status { method, path: path.to_owned(), status, body, retry_after }
        }
        Error::Transport { kind, source, .. } => Error::Transport { method, path: path.to_owned(), kind, source },
        Error::Timeout { after, .. } => Error::Timeout { method, path: path.to_owned(), after },
        Error::Decode { source, .. } => Error::Decode { method, path: path.to_owned(), source },
        Error::BodyTooLarge { limit, .. } => Error::BodyTooLarge { method, path: path.to_owned(), limit },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_apply_to_exactly_the_next_n_calls() {
        let mut faults = Faults::default();
        let err = Error::from_server_message(Method::Post, "/x", 503, "busy");
        faults.fail_next(Endpoint::ClaimTask, 2, err);
        assert!(faults.take(Endpoint::SendHeartbeat).is_none());
        assert!(faults.take(Endpoint::ClaimTask).and_then(|f| f.error).is_some());
        assert!(faults.take(Endpoint::ClaimTask).and_then(|f| f.error).is_some());
        assert!(faults.take(Endpoint::ClaimTask).is_none());
    }

    #[test]
    fn delay_and_failure_combine() {
        let mut faults = Faults::default();
        faults.delay_next(Endpoint::StartTask, 1, Duration::from_secs(3));
        faults.fail_next(Endpoint::StartTask, 1, Error::InvalidArgument("x".into()));
        let fault = faults.take(Endpoint::StartTask).expect("armed");
        assert_eq!(fault.delay, Some(Duration::from_secs(3)));
        assert!(fault.error.is_some());
        assert!(faults.take(Endpoint::StartTask).is_none());
    }

    #[test]
    fn retarget_sets_the_real_path() {
        let err = Error::from_server_message(Method::Get, "/anything", 500, "boom");
        let err = retarget(err, Method::Post, "/api/daemon/heartbeat");
        assert_eq!(err.to_string(), r#"POST /api/daemon/heartbeat returned 500: {"error":"boom"}"#);
    }
}
