//! The `Retry` layer: repeats transient failures of calls safe to repeat.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::hash::BuildHasher;
use std::pin::pin;
use std::time::Duration;

use tokio::time::Instant;

use super::impl_layer;
use crate::error::{Error, Result};
use crate::route::Endpoint;
use crate::{Call, DaemonApi, Reply};

thread_local! {
    /// Set while a retry loop's attempt is being polled: a retry loop
    /// started inside one (a `Retry` layer further in, or a transport's own
    /// loop) runs its call once, so stacked retries never multiply and the
    /// outermost policy alone decides how often a call is attempted.
    ///
    /// Set around each poll, it tells what a task-local would (the attempt
    /// runs in the loop's task), at a fraction of the cost: tokio's
    /// `task_local!` scope cost about 530 instructions a call.
    static IN_RETRY_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// The routes whose calls a repeat cannot harm, so [`Retry`] repeats them
/// after any transient failure:
///
/// - reads: pending tasks, task status, task messages, workspaces, a pairing
///   session;
/// - heartbeat (marks the runtime online again; a ping handed out in a lost
///   answer is lost either way), deregister (offline again), progress (the
///   latest step wins), usage (upserted by runtime, date, provider and
///   model) and ping results (the same answer again);
/// - at HEAD 1cc46b2697: the reads (daemon workspaces, repos, runtime
///   profiles, skill bundles, the gc checks), task usage (upserted by task,
///   provider and model), cancel-ack (recorded once), session pin (the same
///   pointer again), prepare lease (pushed to 45 s from now again) and the
///   runtime request results (a finished request answers ok again).
///
/// Not listed, so repeated only when the failed attempt provably never
/// reached the server (a connect failure, see
/// [`Error::may_have_reached_server`]): claim (a repeat would take a second
/// task and strand the first in `dispatched`), start, complete and fail (a
/// repeat of a call that did land gets 400, as the task has moved on), live
/// messages (a repeat stores them twice), register and the pairing writes;
/// at HEAD 1cc46b2697 also the batch claim, wait-local-directory (a repeat
/// gets 400) and recover-orphans (a repeat would fail the retries the first
/// created).
/// Complete and fail can be opted in with
/// [`RetryPolicy::retry_complete_and_fail`], as the Go daemon does.
pub const SAFE_TO_REPEAT: &[Endpoint] = &[
    Endpoint::Deregister,
    Endpoint::SendHeartbeat,
    Endpoint::ListPendingTasks,
    Endpoint::ReportUsage,
    Endpoint::ReportPingResult,
    Endpoint::GetTaskStatus,
    Endpoint::ReportProgress,
    Endpoint::ListTaskMessages,
    Endpoint::ListWorkspaces,
    Endpoint::GetPairingSession,
    Endpoint::ExtendPrepareLease,
    Endpoint::ResolveSkillBundles,
    Endpoint::ReportModelList,
    Endpoint::ReportLocalSkills,
    Endpoint::ReportSkillImport,
    Endpoint::ReportUpdateResult,
    Endpoint::ReportTaskUsage,
    Endpoint::AckCancel,
    Endpoint::PinSession,
    Endpoint::GetTaskGcCheck,
    Endpoint::GetIssueGcCheck,
    Endpoint::GetChatSessionGcCheck,
    Endpoint::GetAutopilotRunGcCheck,
    Endpoint::CheckIssuesGc,
    Endpoint::ListDaemonWorkspaces,
    Endpoint::GetWorkspaceRepos,
    Endpoint::ListRuntimeProfiles,
];

/// When and how often [`Retry`] repeats a call: plain data with defaults in
/// the associated constants, set with the `with_*` setters (the same style
/// as every config type of the SDK: `#[non_exhaustive]`, `Default`, public
/// fields to read, chainable setters).
///
/// The wait before the `n`-th repeat is drawn uniformly from zero to
/// `min(max_backoff, initial_backoff * 2^(n-1))` ("full jitter", so that
/// daemons failing together do not retry together), or is exactly that
/// value when `full_jitter` is off; it is never shorter than the server's
/// `Retry-After`. Retrying stops after `max_attempts`, or when the next wait
/// would end later than `budget` after the first attempt started; the error
/// is then [`Error::RetriesExhausted`] if a repeat was made (see
/// [`RetryPolicy::run`]). Calls of one route can follow another policy:
/// [`Retry::with_endpoint_policy`].
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use std::time::Duration;
/// use multica::layer::RetryPolicy;
///
/// let patient = RetryPolicy::default().with_max_attempts(8).with_budget(Duration::from_secs(120));
/// assert_eq!(patient.backoff(1), RetryPolicy::DEFAULT_INITIAL_BACKOFF);
/// assert_eq!(patient.backoff(20), RetryPolicy::DEFAULT_MAX_BACKOFF);
///
/// let go = RetryPolicy::go_daemon_schedule();
/// let waits: Vec<u64> = (1..go.max_attempts).map(|n| go.backoff(n).as_secs()).collect();
/// assert_eq!(waits, [4, 8, 16, 32, 64]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `0` counts as `1` (no retry).
    pub max_attempts: u32,
    /// The longest wait before the first repeat.
    pub initial_backoff: Duration,
    /// The cap on the doubling wait.
    pub max_backoff: Duration,
    /// The time from the first attempt after which no repeat starts. An
    /// attempt that started in time can end later: bound attempts with a
    /// [`Timeout`](super::Timeout) inside the retry.
    pub budget: Duration,
    /// Whether waits are drawn at random below the backoff (see above).
    pub full_jitter: bool,
    /// Whether transient failures of complete and fail are repeated even if
    /// the attempt may have reached the server (then a repeat may answer 400
    /// although the first attempt took effect).
    pub retry_complete_and_fail: bool,
}

impl RetryPolicy {
    /// Four attempts: three repeats ride out a restart of the server or a
    /// proxy without delaying a daemon's loop for long.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
    /// Half a second: long enough not to hammer a struggling server.
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
    /// Eight seconds: about half the heartbeat period of the Go daemon.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(8);
    /// Thirty seconds, the Go client's whole-request timeout: a retried call
    /// gives up no later than one hung request would have.
    pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

    /// The Go daemon's schedule for reporting a task's result: complete and
    /// fail included, repeated after 4, 8, 16, 32 and 64 s without jitter.
    /// The budget lets all five waits and six attempts of the Go client's
    /// 30 s each run.
    pub fn go_daemon_schedule() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(4),
            max_backoff: Duration::from_secs(64),
            budget: Duration::from_secs(4 + 8 + 16 + 32 + 64 + 6 * 30),
            full_jitter: false,
            retry_complete_and_fail: true,
        }
    }

    /// Whether a call of `endpoint` that failed with `err` may be repeated:
    /// `err` is transient, and the route is in [`SAFE_TO_REPEAT`] (or is
    /// complete/fail with [`RetryPolicy::retry_complete_and_fail`]), or the
    /// attempt never reached the server.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::layer::RetryPolicy;
    /// use multica::{Endpoint, Error, Method};
    ///
    /// let busy = Error::from_status(Method::Post, "/api/daemon/runtimes/r/tasks/claim", 503, b"");
    /// let policy = RetryPolicy::default();
    /// assert!(policy.may_retry(Endpoint::SendHeartbeat, &busy));
    /// assert!(!policy.may_retry(Endpoint::ClaimTask, &busy)); // it may have taken a task
    /// ```
    pub fn may_retry(&self, endpoint: Endpoint, err: &Error) -> bool {
        let safe = SAFE_TO_REPEAT.contains(&endpoint)
            || (self.retry_complete_and_fail && matches!(endpoint, Endpoint::CompleteTask | Endpoint::FailTask));
        err.is_transient() && (safe || !err.may_have_reached_server())
    }

    /// The longest wait before the `retry`-th repeat (from 1), before jitter
    /// and `Retry-After`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// A policy that never repeats a call.
    pub fn disabled() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait before the next repeat after `attempts` failed ones, the
    /// last with `err`, `elapsed` after the first started; `None` to give
    /// up. Whether `err` may be retried at all is [`RetryPolicy::may_retry`].
    /// Transports with their own retry loop use this too, so every retry in
    /// the SDK follows one schedule.
    pub fn next_wait(&self, attempts: u32, err: &Error, elapsed: Duration) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let backoff = self.backoff(attempts);
        let drawn = if self.full_jitter { backoff.mul_f64(random_unit()) } else { backoff };
        let wait = drawn.max(err.retry_after().unwrap_or_default());
        (elapsed.saturating_add(wait) <= self.budget).then_some(wait)
    }

    /// The SDK's one retry loop: runs `attempt` for a call of `endpoint`
    /// until it succeeds, its error may not be retried
    /// ([`RetryPolicy::may_retry`]) or no wait is left
    /// ([`RetryPolicy::next_wait`]). Once more than one attempt was made,
    /// the error is [`Error::RetriesExhausted`] with the count, because a
    /// repeat changes what the last error means (a 400 from complete after
    /// a timed-out first attempt says the first one landed); after a single
    /// attempt it is that attempt's error, unchanged.
    ///
    /// Loops do not nest: run inside another run (a [`Retry`] layer inside
    /// another, or under a transport's own loop), it makes one attempt and
    /// returns its error unchanged, so a call is attempted at most as often
    /// as the outermost policy allows and the error says `gave up after`
    /// once.
    pub async fn run<T, F, Fut>(&self, endpoint: Endpoint, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = attempt;
        self.run_numbered(endpoint, move |_| attempt()).await
    }

    /// [`RetryPolicy::run`] telling each attempt its number (from 1) and
    /// whether another may follow it (`false` for the last the policy
    /// allows, and for the one attempt of a nested loop).
    async fn run_numbered<T, F, Fut>(&self, endpoint: Endpoint, mut attempt: F) -> Result<T>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if retry_loop_running() {
            return attempt(Attempt { last: true }).await;
        }
        let mut outermost = pin!(self.run_outermost(endpoint, attempt));
        poll_fn(|cx| {
            let _restore = RetryLoopFlag::set();
            outermost.as_mut().poll(cx)
        })
        .await
    }

    async fn run_outermost<T, F, Fut>(&self, endpoint: Endpoint, mut attempt: F) -> Result<T>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut attempts = 0;
        let gave_up = |attempts, last| match attempts {
            1 => last,
            _ => Error::RetriesExhausted { attempts, last: Box::new(last) },
        };
        loop {
            attempts += 1;
            let err = match attempt(Attempt { last: attempts >= self.max_attempts }).await {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            if !self.may_retry(endpoint, &err) {
                return Err(gave_up(attempts, err));
            }
            match self.next_wait(attempts, &err, started.elapsed()) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(gave_up(attempts, err)),
            }
        }
    }
}

/// What an attempt of [`RetryPolicy::run_numbered`] knows about itself.
#[derive(Clone, Copy)]
struct Attempt {
    /// No attempt can follow this one, so it may consume what it sends.
    last: bool,
}

/// Whether this task is inside a retry loop's attempt.
fn retry_loop_running() -> bool {
    IN_RETRY_LOOP.get()
}

/// Sets [`IN_RETRY_LOOP`] for one poll; puts back what was there when
/// dropped, after the poll or while unwinding from a panic in it.
struct RetryLoopFlag {
    previous: bool,
}

impl RetryLoopFlag {
    fn set() -> Self {
        Self { previous: IN_RETRY_LOOP.replace(true) }
    }
}

impl Drop for RetryLoopFlag {
    fn drop(&mut self) {
        IN_RETRY_LOOP.set(self.previous);
    }
}

/// Chainable setters for the policy's fields.
macro_rules! setters {
    ($($(#[$doc:meta])* $setter:ident => $field:ident: $ty:ty;)+) => {
        impl RetryPolicy {
            $(
                $(#[$doc])*
                #[must_use]
                pub fn $setter(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )+
        }
    };
}

setters! {
    /// Sets the attempts in all, the first included (`0` counts as `1`).
    with_max_attempts => max_attempts: u32;
    /// Sets the longest wait before the first repeat.
    with_initial_backoff => initial_backoff: Duration;
    /// Sets the cap on the doubling wait.
    with_max_backoff => max_backoff: Duration;
    /// Sets the time from the first attempt after which no repeat starts.
    with_budget => budget: Duration;
    /// Sets whether waits are drawn at random below the backoff.
    with_full_jitter => full_jitter: bool;
    /// Sets whether complete and fail are repeated even if the attempt may
    /// have reached the server.
    with_retry_complete_and_fail => retry_complete_and_fail: bool;
}

impl Default for RetryPolicy {
    /// The `DEFAULT_*` constants, full jitter, complete and fail not repeated.
    fn default() -> Self {
        Self {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            budget: Self::DEFAULT_BUDGET,
            full_jitter: true,
            retry_complete_and_fail: false,
        }
    }
}

/// A uniform draw from `[0, 1)`. std's `RandomState` is seeded from the OS
/// once per thread and changes with every instance, which is random enough
/// to spread retries without a dependency.
fn random_unit() -> f64 {
    let bits = RandomState::new().hash_one(0u8);
    // The top 53 bits fill an f64's mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Repeats calls that failed transiently when a repeat is safe, as its
/// [`RetryPolicy`] says; errors of calls made once are returned unchanged.
/// This layer is the one place where the SDK retries: transports (the
/// hyper client included) make one attempt per [`DaemonApi::call`]. The
/// loop itself, [`RetryPolicy::run`], runs in the wrapped backend's
/// [`DaemonApi::call_retrying`]: the hyper client runs it in its
/// exchange's own future and never copies the call; other backends run
/// the default, the loop around their `call`.
///
/// Stacking cannot multiply attempts: a `Retry` inside another `Retry`
/// (however deep, through `Arc<dyn DaemonApi>` or other layers) makes one
/// attempt per attempt of the outer one, so the outermost layer's policy
/// alone decides, and [`Error::RetriesExhausted`] wraps the error once.
/// A running loop marks its thread while it polls: a custom layer that
/// moves the inner call onto another task (`tokio::spawn`) hides it from
/// retries further in, so such a layer belongs inside every `Retry` or
/// nowhere near one.
///
/// Claim is never repeated once it may have reached the server (see
/// [`SAFE_TO_REPEAT`] for every route). The error of a repeated call is
/// [`Error::RetriesExhausted`] with the attempt count and the last error
/// (the classifiers look through it). Dropping a call's future while it
/// waits or runs stops it: no attempt is started in the background. Put a
/// [`Timeout`](super::Timeout) inside, so each attempt has its own deadline.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use std::time::Duration;
/// use multica::layer::{Retry, RetryPolicy};
/// use multica::{DaemonApi, DaemonApiExt, Endpoint};
///
/// fn reliable<A: DaemonApi>(backend: A) -> Retry<impl DaemonApi> {
///     backend
///         .with_timeout(Duration::from_secs(30))
///         .with_retry(RetryPolicy::default())
///         // Results are precious: wait as long as the Go daemon does
///         // (the same as `.with_go_daemon_result_schedule()`).
///         .with_endpoint_policy(Endpoint::CompleteTask, RetryPolicy::go_daemon_schedule())
///         .with_endpoint_policy(Endpoint::FailTask, RetryPolicy::go_daemon_schedule())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Retry<A> {
    inner: A,
    policy: RetryPolicy,
    per_endpoint: HashMap<Endpoint, RetryPolicy>,
}

impl<A> Retry<A> {
    /// Wraps `inner`, retrying every route by `policy`.
    pub fn new(inner: A, policy: RetryPolicy) -> Self {
        Self { inner, policy, per_endpoint: HashMap::new() }
    }

    /// Retries calls of `endpoint` by their own policy instead.
    pub fn with_endpoint_policy(mut self, endpoint: Endpoint, policy: RetryPolicy) -> Self {
        self.per_endpoint.insert(endpoint, policy);
        self
    }

    /// Retries complete and fail on the Go daemon's schedule
    /// ([`RetryPolicy::go_daemon_schedule`]: 4, 8, 16, 32, 64 s, even when an
    /// attempt may have reached the server), other routes by this layer's
    /// policy: what the Go daemon does to report a task's result.
    pub fn with_go_daemon_result_schedule(self) -> Self {
        let go = RetryPolicy::go_daemon_schedule();
        self.with_endpoint_policy(Endpoint::CompleteTask, go).with_endpoint_policy(Endpoint::FailTask, go)
    }

    /// The policy for calls of `endpoint`.
    pub fn policy_for(&self, endpoint: Endpoint) -> &RetryPolicy {
        self.per_endpoint.get(&endpoint).unwrap_or(&self.policy)
    }
}

/// The default [`DaemonApi::call_retrying`]: the retry loop around
/// `api.call`. A call is copied only for an attempt another may follow (a
/// call is owned, and the backend consumes it): the last attempt the policy
/// allows, the one attempt of a one-attempt policy and the one attempt
/// inside another retry loop send the call itself. A copy is cheap: bulk
/// payloads are shared `Arc`s.
pub(crate) async fn retry_around_calls<A: DaemonApi + ?Sized>(
    api: &A,
    call: Call,
    policy: &RetryPolicy,
) -> Result<Reply> {
    let endpoint = call.endpoint();
    // Held once: taken by the attempt that sends it, copied for the others.
    let mut spare = Some(call);
    policy
        .run_numbered(endpoint, |attempt| {
            let call = if attempt.last { spare.take() } else { spare.clone() };
            let sent = call.map(|call| api.call(call));
            async move {
                match sent {
                    Some(sent) => sent.await,
                    // The loop makes no attempt after the last.
                    None => Err(Error::InvalidArgument(format!("{endpoint}: no call left to repeat"))),
                }
            }
        })
        .await
}

// The loop runs in the wrapped backend's `call_retrying`, so that a
// transport can run it in the future of its own exchange.
#[deny(clippy::missing_trait_methods)]
impl<A: DaemonApi> DaemonApi for Retry<A> {
    fn call<'life0, 'async_trait>(&'life0 self, call: Call) -> crate::CallFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let policy = self.policy_for(call.endpoint());
        self.inner.call_retrying(call, policy)
    }

    fn drop_idle_connections(&self) {
        self.inner.drop_idle_connections()
    }

    // Under another `Retry`: its loop around this layer's `call`, whose own
    // loop then makes one attempt per attempt of the outer one.
    fn call_retrying<'a>(&'a self, call: Call, policy: &'a RetryPolicy) -> crate::CallFuture<'a> {
        Box::pin(retry_around_calls(self, call, policy))
    }
}

impl_layer!(Retry, accessors only);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::layer::test_support::{call_endpoint, Probe};
    use crate::test_double::{unavailable, Outcome, ScriptedApi};
    use crate::{DaemonApi, DaemonApiExt, Method, RuntimeId, TaskCompletion, TaskId, TransportKind};

    const SECOND: Duration = Duration::from_secs(1);

    fn secs(list: &[u64]) -> Vec<Duration> {
        list.iter().copied().map(Duration::from_secs).collect()
    }

    /// A policy without jitter, so waits are exact.
    fn fixed(max_attempts: u32, initial_backoff: Duration) -> RetryPolicy {
        RetryPolicy::default()
            .with_max_attempts(max_attempts)
            .with_initial_backoff(initial_backoff)
            .with_full_jitter(false)
    }

    fn transport(endpoint: Endpoint, kind: TransportKind) -> Error {
        let source = Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        Error::Transport { method: endpoint.method(), path: endpoint.template().into(), kind, source }
    }

    /// A probed backend whose calls of `endpoint` fail with `errors` first.
    fn failing(endpoint: Endpoint, errors: impl IntoIterator<Item = Error>) -> (ScriptedApi, Probe<ScriptedApi>) {
        let backend = ScriptedApi::new();
        backend.script(endpoint, errors.into_iter().map(Outcome::Fail));
        (backend.clone(), Probe::new(backend))
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_of_safe_routes_are_retried_until_success() {
        let (backend, probe) = failing(Endpoint::SendHeartbeat, vec![unavailable(Endpoint::SendHeartbeat); 2]);
        let api = Retry::new(probe, RetryPolicy::default());

        assert!(api.send_heartbeat(&RuntimeId::new("rt-1")).await.is_ok());
        assert_eq!(backend.count(Endpoint::SendHeartbeat), 3);
    }

    /// Records, per attempt, where the batch of messages lives and how many
    /// handles share it, and fails as a connection that never opened.
    #[derive(Debug, Default)]
    struct BatchPointers(std::sync::Mutex<Vec<(usize, usize)>>);

    #[crate::async_trait]
    impl DaemonApi for BatchPointers {
        async fn call(&self, call: Call) -> Result<Reply> {
            if let Call::ReportTaskMessages { messages, .. } = &call {
                let at = Arc::as_ptr(messages).cast::<()>() as usize;
                self.0.lock().unwrap().push((at, Arc::strong_count(messages)));
            }
            Err(transport(call.endpoint(), TransportKind::Connect))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_share_the_callers_batch_and_the_last_takes_the_call_itself() {
        let batch: Arc<[crate::TaskMessage]> = vec![crate::TaskMessage::text(1, "a")].into();
        let at = Arc::as_ptr(&batch).cast::<()>() as usize;
        let api = Retry::new(BatchPointers::default(), fixed(3, SECOND));
        let result = api.report_task_messages(&TaskId::new("t"), Arc::clone(&batch)).await;
        assert!(matches!(result, Err(Error::RetriesExhausted { attempts: 3, .. })), "{result:?}");
        let seen = api.inner().0.lock().unwrap().clone();
        // Every attempt sends the caller's allocation; before the last, the
        // caller, the layer's spare and the attempt hold it; the last
        // attempt is sent the spare itself.
        assert_eq!(seen, [(at, 3), (at, 3), (at, 2)]);

        let once = Retry::new(BatchPointers::default(), RetryPolicy::disabled());
        let _ = once.report_task_messages(&TaskId::new("t"), Arc::clone(&batch)).await;
        assert_eq!(*once.inner().0.lock().unwrap(), [(at, 2)], "a one-attempt policy copies nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn every_route_is_retried_only_if_safe_to_repeat() {
        let backend = ScriptedApi::new();
        let api = Retry::new(backend.clone(), RetryPolicy::default());
        for &endpoint in Endpoint::ALL {
            backend.script(endpoint, [Outcome::Fail(unavailable(endpoint))]);
            let result = call_endpoint(&api, endpoint).await;
            if SAFE_TO_REPEAT.contains(&endpoint) {
                assert!(result.is_ok(), "{endpoint}: {result:?}");
                assert_eq!(backend.count(endpoint), 2, "{endpoint}");
            } else {
                assert!(matches!(result, Err(Error::Status { status: 503, .. })), "{endpoint}: {result:?}");
                assert_eq!(backend.count(endpoint), 1, "{endpoint}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn complete_follows_the_go_daemon_schedule_then_gives_up() {
        let (backend, probe) = failing(Endpoint::CompleteTask, vec![unavailable(Endpoint::CompleteTask); 10]);
        let api = Retry::new(probe.clone(), RetryPolicy::go_daemon_schedule());
        let origin = Instant::now();

        let err = api.complete_task(&TaskId::new("t-1"), &TaskCompletion::default()).await.unwrap_err();

        assert_eq!(probe.starts(Endpoint::CompleteTask, origin), secs(&[0, 4, 12, 28, 60, 124]));
        assert!(matches!(&err, Error::RetriesExhausted { attempts: 6, last } if last.status() == Some(503)));
        assert_eq!(origin.elapsed(), 124 * SECOND, "no wait after the last attempt");
        assert_eq!(backend.count(Endpoint::CompleteTask), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn fail_is_retried_with_the_go_preset_but_not_by_default() {
        let task = TaskId::new("t-1");
        let (backend, _) = failing(Endpoint::FailTask, vec![unavailable(Endpoint::FailTask); 2]);
        let by_default = Retry::new(backend.clone(), RetryPolicy::default());
        assert_eq!(by_default.fail_task(&task, "boom").await.unwrap_err().status(), Some(503));
        assert_eq!(backend.count(Endpoint::FailTask), 1);

        let go = by_default.with_endpoint_policy(Endpoint::FailTask, RetryPolicy::go_daemon_schedule());
        assert!(go.fail_task(&task, "boom").await.is_ok());
        assert_eq!(backend.count(Endpoint::FailTask), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn claim_is_never_retried_once_it_may_have_reached_the_server() {
        let claim = Endpoint::ClaimTask;
        let timeout = Error::Timeout { method: Method::Post, path: claim.template().into(), after: SECOND };
        let policy = RetryPolicy { retry_complete_and_fail: true, ..fixed(5, SECOND) };
        let runtime = RuntimeId::new("rt-1");
        for err in [unavailable(claim), timeout, transport(claim, TransportKind::Request)] {
            let (backend, _) = failing(claim, [err.clone()]);
            let api = Retry::new(backend.clone(), policy);
            let got = api.claim_task(&runtime).await.unwrap_err();
            assert_eq!(got.to_string(), err.to_string(), "returned unchanged");
            assert_eq!(backend.count(claim), 1, "{err}");
        }

        let (backend, _) = failing(claim, [transport(claim, TransportKind::Connect)]);
        let api = Retry::new(backend.clone(), policy);
        assert_eq!(api.claim_task(&runtime).await.unwrap(), None, "a connect failure sent nothing");
        assert_eq!(backend.count(claim), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn non_transient_errors_are_returned_unchanged() {
        let status = Endpoint::GetTaskStatus;
        let not_found = Error::from_server_message(Method::Get, status.template(), 404, "task not found");
        let (backend, _) = failing(status, [not_found]);
        let api = Retry::new(backend.clone(), RetryPolicy::default());

        let err = api.get_task_status(&TaskId::new("t-1")).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 404, .. }) && err.is_task_not_found());
        assert_eq!(backend.count(status), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_error_after_a_repeat_says_a_repeat_was_made() {
        let complete = Endpoint::CompleteTask;
        // The first attempt may have landed: the 400 of the second says so.
        let not_running = Error::from_server_message(Method::Post, complete.template(), 400, "task is not running");
        let (backend, _) = failing(complete, [unavailable(complete), not_running]);
        let api = Retry::new(backend.clone(), RetryPolicy::go_daemon_schedule());

        let err = api.complete_task(&TaskId::new("t-1"), &TaskCompletion::default()).await.unwrap_err();
        assert!(matches!(&err, Error::RetriesExhausted { attempts: 2, last } if last.status() == Some(400)), "{err:?}");
        assert_eq!(err.status(), Some(400), "classifiers look through it");
        assert_eq!(backend.count(complete), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_stops_retries_before_a_wait_would_exceed_it() {
        let (_, probe) = failing(Endpoint::CompleteTask, vec![unavailable(Endpoint::CompleteTask); 10]);
        let policy = RetryPolicy { budget: 10 * SECOND, ..RetryPolicy::go_daemon_schedule() };
        let api = Retry::new(probe.clone(), policy);
        let origin = Instant::now();

        let err = api.complete_task(&TaskId::new("t-1"), &TaskCompletion::default()).await.unwrap_err();

        // Waits of 4 s then 8 s: the second would end at 12 s > 10 s.
        assert_eq!(probe.starts(Endpoint::CompleteTask, origin), secs(&[0, 4]));
        assert!(matches!(err, Error::RetriesExhausted { attempts: 2, .. }));
        assert_eq!(origin.elapsed(), 4 * SECOND, "gives up without waiting in vain");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_at_least() {
        let heartbeat = Endpoint::SendHeartbeat;
        let busy = Error::from_status(Method::Post, heartbeat.template(), 429, b"").with_retry_after(Some(7 * SECOND));
        let (_, probe) = failing(heartbeat, [busy]);
        let api = Retry::new(probe.clone(), fixed(3, Duration::from_millis(100)));
        let origin = Instant::now();

        assert!(api.send_heartbeat(&RuntimeId::new("rt-1")).await.is_ok());
        assert_eq!(probe.starts(heartbeat, origin), secs(&[0, 7]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_budget_gives_up_at_once() {
        let heartbeat = Endpoint::SendHeartbeat;
        let busy = Error::from_status(Method::Post, heartbeat.template(), 503, b"").with_retry_after(Some(60 * SECOND));
        let (backend, _) = failing(heartbeat, [busy]);
        let api = Retry::new(backend.clone(), RetryPolicy::default());
        let origin = Instant::now();

        let err = api.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 503, .. }), "one attempt: its own error, {err:?}");
        assert_eq!(err.retry_after(), Some(60 * SECOND), "the caller can still honour it");
        assert_eq!((backend.count(heartbeat), origin.elapsed()), (1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn full_jitter_waits_stay_below_the_capped_backoff() {
        let heartbeat = Endpoint::SendHeartbeat;
        let attempts = 12;
        let (_, probe) = failing(heartbeat, vec![unavailable(heartbeat); 20]);
        let policy = RetryPolicy {
            max_attempts: attempts,
            initial_backoff: SECOND,
            max_backoff: 4 * SECOND,
            budget: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let api = Retry::new(probe.clone(), policy);
        let origin = Instant::now();

        let err = api.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(matches!(err, Error::RetriesExhausted { attempts: 12, .. }));
        let starts = probe.starts(heartbeat, origin);
        let waits: Vec<Duration> = starts.windows(2).map(|pair| pair[1] - pair[0]).collect();
        let caps: Vec<Duration> = (1..attempts).map(|retry| policy.backoff(retry)).collect();
        assert_eq!(caps[..3], secs(&[1, 2, 4]));
        // The paused clock fires timers on whole milliseconds.
        let tick = Duration::from_millis(1);
        for (wait, cap) in waits.iter().zip(&caps) {
            assert!(*wait <= *cap + tick, "{wait:?} > {cap:?}");
        }
        assert!(waits.iter().sum::<Duration>() < caps.iter().sum::<Duration>(), "waits are drawn, not fixed");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_a_retrying_call_stops_it() {
        let (backend, probe) = failing(Endpoint::CompleteTask, vec![unavailable(Endpoint::CompleteTask); 10]);
        let api = Retry::new(probe.clone(), RetryPolicy::go_daemon_schedule());

        let (task, completion) = (TaskId::new("t-1"), TaskCompletion::default());
        let call = api.complete_task(&task, &completion);
        // Dropped during the 8 s wait after the second attempt.
        assert!(tokio::time::timeout(6 * SECOND, call).await.is_err());
        tokio::time::sleep(Duration::from_secs(600)).await;

        assert_eq!(backend.count(Endpoint::CompleteTask), 2);
        assert_eq!(probe.running(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn nested_retries_attempt_as_often_as_the_outer_policy_allows() {
        let heartbeat = Endpoint::SendHeartbeat;
        let (backend, _) = failing(heartbeat, vec![unavailable(heartbeat); 50]);
        let inner: Arc<dyn DaemonApi> = Arc::new(Retry::new(backend.clone(), fixed(5, SECOND)));
        let api = Retry::new(crate::layer::Timeout::new(inner, 60 * SECOND), fixed(3, SECOND));

        let err = api.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert_eq!(backend.count(heartbeat), 3);
        assert!(
            matches!(&err, Error::RetriesExhausted { attempts: 3, last } if matches!(**last, Error::Status { .. }))
        );
        assert_eq!(err.to_string().matches("gave up after").count(), 1, "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_inner_retry_still_retries_calls_made_outside_any_loop() {
        let heartbeat = Endpoint::SendHeartbeat;
        let (backend, _) = failing(heartbeat, vec![unavailable(heartbeat); 2]);
        let inner = Retry::new(backend.clone(), fixed(3, SECOND));
        let outer = Retry::new(&inner, fixed(3, SECOND));

        // A call through the outer layer, then one straight to the inner:
        // the marker of the first loop does not outlive its call.
        assert!(outer.send_heartbeat(&RuntimeId::new("rt-1")).await.is_ok());
        assert_eq!(backend.count(heartbeat), 3);
        backend.script(heartbeat, vec![Outcome::Fail(unavailable(heartbeat)); 2]);
        assert!(inner.send_heartbeat(&RuntimeId::new("rt-1")).await.is_ok());
        assert_eq!(backend.count(heartbeat), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn go_daemon_result_schedule_applies_to_complete_and_fail_only() {
        let api = Retry::new(ScriptedApi::new(), RetryPolicy::default()).with_go_daemon_result_schedule();
        assert_eq!(*api.policy_for(Endpoint::CompleteTask), RetryPolicy::go_daemon_schedule());
        assert_eq!(*api.policy_for(Endpoint::FailTask), RetryPolicy::go_daemon_schedule());
        assert_eq!(*api.policy_for(Endpoint::SendHeartbeat), RetryPolicy::default());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_without_overflow() {
        let policy = fixed(100, Duration::from_millis(500));
        assert_eq!(policy.backoff(1), Duration::from_millis(500));
        assert_eq!(policy.backoff(2), SECOND);
        assert_eq!(policy.backoff(5), RetryPolicy::DEFAULT_MAX_BACKOFF);
        assert_eq!(policy.backoff(u32::MAX), RetryPolicy::DEFAULT_MAX_BACKOFF);
    }

    #[test]
    fn random_units_are_in_range_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|unit| (0.0..1.0).contains(unit)));
        assert!(draws.windows(2).any(|pair| pair[0] != pair[1]));
    }
}
