//! What the worker registers and how often it does things.

use std::time::Duration;

use multica_api::layer::RetryPolicy;
use multica_api::reporter::ReporterConfig;
use multica_api::{DaemonId, RegisterRequest, RuntimeSpec, WorkspaceId};

/// What the worker registers: the same request is sent again when the
/// server has forgotten a runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The workspace to register in.
    pub workspace_id: WorkspaceId,
    /// The daemon's stable identity.
    pub daemon_id: DaemonId,
    /// The machine's name, shown to users.
    pub device_name: String,
    /// The runtimes offered (one per provider).
    pub runtimes: Vec<RuntimeSpec>,
}

impl Registration {
    /// A registration of `runtimes` for daemon `daemon_id` on `device_name`.
    pub fn new(
        workspace_id: impl Into<WorkspaceId>,
        daemon_id: impl Into<DaemonId>,
        device_name: impl Into<String>,
        runtimes: Vec<RuntimeSpec>,
    ) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            daemon_id: daemon_id.into(),
            device_name: device_name.into(),
            runtimes,
        }
    }

    pub(crate) fn request(&self) -> RegisterRequest {
        RegisterRequest {
            workspace_id: self.workspace_id.clone(),
            daemon_id: self.daemon_id.clone(),
            device_name: self.device_name.clone(),
            runtimes: self.runtimes.clone(),
            ..Default::default()
        }
    }
}

/// How the worker paces itself; every default is one of the associated
/// constants, most of them the Go daemon's:
///
/// | field | default |
/// |---|---|
/// | [`concurrency`](Self::concurrency) | 4 tasks ([`DEFAULT_CONCURRENCY`](Self::DEFAULT_CONCURRENCY)) |
/// | [`poll_interval`](Self::poll_interval) | 3 s, the Go daemon's ([`DEFAULT_POLL_INTERVAL`](Self::DEFAULT_POLL_INTERVAL)) |
/// | [`heartbeat_interval`](Self::heartbeat_interval) | 15 s, the Go daemon's ([`DEFAULT_HEARTBEAT_INTERVAL`](Self::DEFAULT_HEARTBEAT_INTERVAL)) |
/// | [`status_interval`](Self::status_interval) | 5 s, the Go daemon's status watch ([`DEFAULT_STATUS_INTERVAL`](Self::DEFAULT_STATUS_INTERVAL)) |
/// | [`prepare_lease_interval`](Self::prepare_lease_interval) | 15 s ([`DEFAULT_PREPARE_LEASE_INTERVAL`](Self::DEFAULT_PREPARE_LEASE_INTERVAL)) |
/// | [`shutdown_grace`](Self::shutdown_grace) | 30 s, the Go daemon's ([`DEFAULT_SHUTDOWN_GRACE`](Self::DEFAULT_SHUTDOWN_GRACE)) |
/// | [`cancel_grace`](Self::cancel_grace) | 10 s ([`DEFAULT_CANCEL_GRACE`](Self::DEFAULT_CANCEL_GRACE)) |
/// | [`task_timeout`](Self::task_timeout) | none, the Go daemon's (a [`CommandAgent`](crate::CommandAgent) has its own, 2 h) |
/// | [`max_backoff`](Self::max_backoff) | 60 s ([`DEFAULT_MAX_BACKOFF`](Self::DEFAULT_MAX_BACKOFF)) |
/// | [`heartbeat_failures_before_reset`](Self::heartbeat_failures_before_reset) | 2 rounds ([`DEFAULT_HEARTBEAT_FAILURES_BEFORE_RESET`](Self::DEFAULT_HEARTBEAT_FAILURES_BEFORE_RESET)) |
/// | [`result_retry`](Self::result_retry) | the Go daemon's 4–64 s schedule ([`RetryPolicy::go_daemon_schedule`]) |
/// | [`reporter`](Self::reporter) | the reporter's defaults ([`ReporterConfig::default`]) |
/// | [`exit_when_idle`](Self::exit_when_idle) | `false` |
/// | [`wait_for_server`](Self::wait_for_server) | none |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Tasks run at once, across runtimes; 0 counts as 1.
    pub concurrency: usize,
    /// Wait between claim rounds that found nothing.
    pub poll_interval: Duration,
    /// Wait between heartbeats of every runtime.
    pub heartbeat_interval: Duration,
    /// Wait between status checks of a running task (how soon a
    /// cancellation reaches its agent).
    pub status_interval: Duration,
    /// Wait between extensions of a preparing task's lease
    /// ([`Agent::prepare`](crate::Agent::prepare)), on servers that have one.
    pub prepare_lease_interval: Duration,
    /// How long running tasks may go on after shutdown is asked for.
    pub shutdown_grace: Duration,
    /// How long an agent may take to stop once it is signalled; past it the
    /// agent's future is dropped.
    pub cancel_grace: Duration,
    /// The longest a task may run (from its start): past it the agent is
    /// told to stop ([`CancelReason::Timeout`](crate::CancelReason::Timeout))
    /// and the task fails with the retryable `timeout`, as the Go daemon's
    /// per-task timeout does. `None`, the Go daemon's default, sets no limit.
    pub task_timeout: Option<Duration>,
    /// The longest wait between calls that keep failing (claims, heartbeats).
    pub max_backoff: Duration,
    /// Heartbeat rounds failing in a row before the worker drops the
    /// backend's idle connections
    /// ([`DaemonApi::drop_idle_connections`](multica_api::DaemonApi::drop_idle_connections)),
    /// and again at each failed round after.
    pub heartbeat_failures_before_reset: u32,
    /// Retries of complete and fail.
    pub result_retry: RetryPolicy,
    /// Retries of the other calls a blip must not undo: those safe to
    /// repeat (skill bundles, usage, session pin, cancel-ack, runtime
    /// request results, deregister) and a start while its task still waits
    /// to start.
    pub call_retry: RetryPolicy,
    /// The live-output reporter of each task.
    pub reporter: ReporterConfig,
    /// Stop (and deregister) once a claim round finds nothing and no task
    /// runs: for a one-shot run.
    pub exit_when_idle: bool,
    /// How long the first registration keeps trying while the server is not
    /// reachable or answers 5xx (a daemon started a moment before its
    /// server), waiting 1 s, 2 s, 4 s… up to
    /// [`max_backoff`](WorkerConfig::max_backoff) between tries; each failed
    /// try is a [`WorkerEvent::RegistrationRetrying`](crate::WorkerEvent::RegistrationRetrying).
    /// `None` (the default) fails the run at the first failure.
    pub wait_for_server: Option<Duration>,
}

impl WorkerConfig {
    /// Four tasks at once: agents are heavy, and a laptop runs a few well.
    pub const DEFAULT_CONCURRENCY: usize = 4;
    /// The Go daemon's poll interval.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(3);
    /// The Go daemon's heartbeat interval.
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
    /// The Go daemon's status-watch interval.
    pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(5);
    /// A third of server HEAD 1cc46b2697's 45 s prepare lease: two lost
    /// extensions in a row still leave the task leased.
    pub const DEFAULT_PREPARE_LEASE_INTERVAL: Duration = Duration::from_secs(15);
    /// The Go daemon's shutdown grace.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// Long enough for a process group to take SIGTERM, then SIGKILL.
    pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(10);
    /// A minute: a server that is down is asked about once a minute.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
    /// The first wait between registration tries with
    /// [`wait_for_server`](WorkerConfig::wait_for_server).
    pub const REGISTRATION_RETRY_BASE: Duration = Duration::from_secs(1);
    /// Two failed rounds: one can be a blip, two suggest a stale connection.
    pub const DEFAULT_HEARTBEAT_FAILURES_BEFORE_RESET: u32 = 2;
}

impl Default for WorkerConfig {
    /// The `DEFAULT_*` constants, no per-task timeout, [`RetryPolicy::default`]
    /// for calls, the Go daemon's 4–64 s schedule for
    /// results ([`RetryPolicy::go_daemon_schedule`]), the reporter's
    /// defaults, and no exit when idle.
    fn default() -> Self {
        Self {
            concurrency: Self::DEFAULT_CONCURRENCY,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            heartbeat_interval: Self::DEFAULT_HEARTBEAT_INTERVAL,
            status_interval: Self::DEFAULT_STATUS_INTERVAL,
            prepare_lease_interval: Self::DEFAULT_PREPARE_LEASE_INTERVAL,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            cancel_grace: Self::DEFAULT_CANCEL_GRACE,
            task_timeout: None,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            heartbeat_failures_before_reset: Self::DEFAULT_HEARTBEAT_FAILURES_BEFORE_RESET,
            result_retry: RetryPolicy::go_daemon_schedule(),
            call_retry: RetryPolicy::default(),
            reporter: ReporterConfig::default(),
            exit_when_idle: false,
            wait_for_server: None,
        }
    }
}
