//! What the worker tells its user: typed events and the final summary.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use multica_api::reporter::ReporterStats;
use multica_api::{Endpoint, Error, FailureReason, PingId, Runtime, RuntimeId, RuntimeRequestId, TaskId, TaskProgress};

use crate::agent::CancelReason;
use crate::runtime_request::RuntimeRequestKind;

/// Something the worker did or saw. `Display` gives a one-line log entry
/// with short IDs ([`short_id`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// A runtime was registered at start.
    Registered {
        /// The runtime as the server stores it.
        runtime: Runtime,
    },
    /// The first registration failed with a transient error and is tried
    /// again ([`WorkerConfig::wait_for_server`](crate::WorkerConfig::wait_for_server)).
    RegistrationRetrying {
        /// What the server (or the network) answered.
        error: Error,
        /// Failed tries so far.
        in_a_row: u32,
        /// The wait before the next.
        wait: Duration,
    },
    /// A runtime was registered again after the server forgot one.
    ReRegistered {
        /// The runtime as the server stores it now.
        runtime: Runtime,
    },
    /// Registering again failed; the next heartbeat round tries again.
    ReRegisterFailed {
        /// What the server answered.
        error: Error,
    },
    /// A heartbeat said the server no longer knows the runtime.
    RuntimeGone {
        /// The runtime.
        runtime_id: RuntimeId,
    },
    /// A heartbeat failed.
    HeartbeatFailed {
        /// The runtime.
        runtime_id: RuntimeId,
        /// What went wrong.
        error: Error,
        /// Failed heartbeat rounds in a row, this one included.
        in_a_row: u32,
    },
    /// Heartbeats kept failing: the backend was told to drop its idle
    /// connections ([`DaemonApi::drop_idle_connections`](multica_api::DaemonApi::drop_idle_connections)),
    /// so a stale socket cannot delay recovery.
    ConnectionsReset {
        /// Failed heartbeat rounds in a row.
        in_a_row: u32,
    },
    /// A ping was answered.
    PingAnswered {
        /// The runtime.
        runtime_id: RuntimeId,
        /// The ping.
        ping_id: PingId,
        /// Whether the agent answered (`false`: it reported a failure).
        ok: bool,
        /// How long the agent took.
        took: Duration,
    },
    /// Reporting a ping's result failed.
    PingReportFailed {
        /// The runtime.
        runtime_id: RuntimeId,
        /// What went wrong.
        error: Error,
    },
    /// A runtime request handed out by a heartbeat (server HEAD
    /// 1cc46b2697) was answered.
    RuntimeRequestAnswered {
        /// The runtime.
        runtime_id: RuntimeId,
        /// What was asked.
        kind: RuntimeRequestKind,
        /// The request.
        request_id: RuntimeRequestId,
        /// Whether it was carried out (`false`: reported as failed, or as
        /// not supported where the server takes that as a failure).
        completed: bool,
    },
    /// Reporting a runtime request's answer failed (after a few tries).
    RuntimeRequestReportFailed {
        /// The runtime.
        runtime_id: RuntimeId,
        /// What was asked.
        kind: RuntimeRequestKind,
        /// The request.
        request_id: RuntimeRequestId,
        /// What went wrong.
        error: Error,
    },
    /// At start-up (and after a runtime was registered again) the server
    /// failed what a previous process of this daemon left in flight on the
    /// runtime, with the retryable `runtime_recovery` (server HEAD
    /// 1cc46b2697's recover-orphans).
    OrphansRecovered {
        /// The runtime.
        runtime_id: RuntimeId,
        /// Tasks failed.
        orphaned: i64,
        /// Retries the server created for them.
        retried: i64,
    },
    /// Recovering a runtime's orphaned tasks failed.
    OrphanRecoveryFailed {
        /// The runtime.
        runtime_id: RuntimeId,
        /// What went wrong.
        error: Error,
    },
    /// A claim failed (the worker backs off).
    ClaimFailed {
        /// The runtime.
        runtime_id: RuntimeId,
        /// What went wrong.
        error: Error,
    },
    /// A task was claimed.
    Claimed {
        /// The task.
        task_id: TaskId,
        /// The runtime it was claimed on.
        runtime_id: RuntimeId,
        /// The agent's name (empty when the server sent none).
        agent: String,
        /// The task's priority.
        priority: i64,
    },
    /// The prepare lease of a task that is not started yet was extended
    /// (server HEAD 1cc46b2697), so the server does not hand it out again.
    PrepareLeaseExtended {
        /// The task.
        task_id: TaskId,
    },
    /// Extending a prepare lease failed (tried again at the next interval).
    PrepareLeaseFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// Starting a task failed; it is failed with the reason.
    StartFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// Starting a task failed transiently while it still waits to start;
    /// tried again after `wait`.
    StartRetrying {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
        /// The wait before the next try.
        wait: Duration,
    },
    /// A task is running and its agent started.
    Started {
        /// The task.
        task_id: TaskId,
    },
    /// The agent pinned its session on the task (server HEAD 1cc46b2697).
    SessionPinned {
        /// The task.
        task_id: TaskId,
        /// The session (empty when only a work directory was pinned).
        session_id: String,
    },
    /// Pinning the agent's session failed.
    SessionPinFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// Progress was reported.
    ProgressReported {
        /// The task.
        task_id: TaskId,
        /// What was reported.
        progress: TaskProgress,
    },
    /// Reporting progress failed.
    ProgressFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// Usage was reported.
    UsageReported {
        /// The task.
        task_id: TaskId,
        /// The entries sent.
        entries: usize,
        /// The route that took them: [`Endpoint::ReportTaskUsage`] (per task,
        /// server HEAD 1cc46b2697) or [`Endpoint::ReportUsage`] (per runtime,
        /// 3c93ebaf1c).
        endpoint: Endpoint,
    },
    /// Reporting usage failed.
    UsageFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// A status check of a running task failed (not taken as a cancellation).
    StatusCheckFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// The agent of a task was told to stop.
    CancelSignalled {
        /// The task.
        task_id: TaskId,
        /// Why.
        reason: CancelReason,
    },
    /// The server was told that the agent of a cancelled task has stopped
    /// (server HEAD 1cc46b2697's cancel-ack).
    CancelAcknowledged {
        /// The task.
        task_id: TaskId,
    },
    /// Acknowledging a cancellation failed.
    CancelAckFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// The agent did not stop within the cancel grace; its future was dropped.
    AgentAbandoned {
        /// The task.
        task_id: TaskId,
    },
    /// A task's live output was all sent (or counted as dropped).
    Streamed {
        /// The task.
        task_id: TaskId,
        /// The reporter's final counters.
        stats: ReporterStats,
    },
    /// A task was completed.
    Completed {
        /// The task.
        task_id: TaskId,
    },
    /// A task was failed.
    Failed {
        /// The task.
        task_id: TaskId,
        /// The error text sent.
        reason: String,
        /// The reason in the server's terms sent with it (empty: none, the
        /// server classifies the text).
        failure_reason: FailureReason,
    },
    /// A task was cancelled on the server; nothing was reported for it.
    Cancelled {
        /// The task.
        task_id: TaskId,
    },
    /// Completing or failing a task failed (after the retries).
    ReportFailed {
        /// The task.
        task_id: TaskId,
        /// What went wrong.
        error: Error,
    },
    /// The server refused the credentials: the worker stops.
    Unauthorized {
        /// What the server answered.
        error: Error,
    },
    /// Shutdown began: no more claims; running tasks get the grace period.
    ShuttingDown {
        /// Tasks still running.
        running: usize,
        /// How long they may go on.
        grace: Duration,
    },
    /// The grace period ran out: the agents of these tasks are cancelled.
    GraceExpired {
        /// Tasks still running.
        running: usize,
    },
    /// A one-shot worker found nothing more to do.
    Idle,
    /// The runtimes were deregistered.
    Deregistered {
        /// How many.
        runtimes: usize,
    },
    /// Deregistering failed.
    DeregisterFailed {
        /// What went wrong.
        error: Error,
    },
}

impl WorkerEvent {
    /// Whether the event is a failed call (counted in [`Summary::errors`]).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Self::ReRegisterFailed { .. }
                | Self::RegistrationRetrying { .. }
                | Self::RuntimeGone { .. }
                | Self::HeartbeatFailed { .. }
                | Self::PingReportFailed { .. }
                | Self::RuntimeRequestReportFailed { .. }
                | Self::OrphanRecoveryFailed { .. }
                | Self::SessionPinFailed { .. }
                | Self::ClaimFailed { .. }
                | Self::PrepareLeaseFailed { .. }
                | Self::StartFailed { .. }
                | Self::StartRetrying { .. }
                | Self::ProgressFailed { .. }
                | Self::UsageFailed { .. }
                | Self::CancelAckFailed { .. }
                | Self::StatusCheckFailed { .. }
                | Self::ReportFailed { .. }
                | Self::Unauthorized { .. }
                | Self::DeregisterFailed { .. }
        )
    }
}

/// A short form of an ID for logs: the first four and last four characters
/// (`4444…0003`), enough to tell apart IDs that share a prefix (a seed's)
/// or a suffix (a counter's); IDs of up to 12 characters are shown whole.
pub fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 12 {
        return id.to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

impl fmt::Display for WorkerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = |id: &str| short_id(id);
        match self {
            Self::Registered { runtime } | Self::ReRegistered { runtime } => {
                let again = if matches!(self, Self::ReRegistered { .. }) { "re-registered" } else { "registered" };
                write!(
                    f,
                    "{again} runtime {} [{}] ({}, {})",
                    runtime.name,
                    id(runtime.id.as_str()),
                    runtime.provider,
                    runtime.status
                )
            }
            Self::RegistrationRetrying { error, in_a_row, wait } => write!(
                f,
                "registration failed ({in_a_row} in a row), trying again in {} ms: {error}",
                wait.as_millis(),
                error = error.display_chain()
            ),
            Self::ReRegisterFailed { error } => {
                write!(f, "re-registering failed: {error}", error = error.display_chain())
            }
            Self::RuntimeGone { runtime_id } => {
                write!(f, "runtime {} is unknown to the server: registering again", id(runtime_id.as_str()))
            }
            Self::HeartbeatFailed { runtime_id, error, in_a_row } => {
                write!(
                    f,
                    "heartbeat of runtime {} failed ({in_a_row} in a row): {error}",
                    id(runtime_id.as_str()),
                    error = error.display_chain()
                )
            }
            Self::ConnectionsReset { in_a_row } => {
                write!(f, "{in_a_row} heartbeat rounds failed in a row: dropping idle connections")
            }
            Self::PingAnswered { runtime_id, ping_id, ok, took } => write!(
                f,
                "answered ping {} of runtime {} ({}, {} ms)",
                id(ping_id.as_str()),
                id(runtime_id.as_str()),
                if *ok { "ok" } else { "failed" },
                took.as_millis()
            ),
            Self::PingReportFailed { runtime_id, error } => {
                write!(
                    f,
                    "ping result of runtime {} failed: {error}",
                    id(runtime_id.as_str()),
                    error = error.display_chain()
                )
            }
            Self::RuntimeRequestAnswered { runtime_id, kind, request_id, completed } => write!(
                f,
                "answered {kind} request {} of runtime {} ({})",
                id(request_id.as_str()),
                id(runtime_id.as_str()),
                if *completed { "completed" } else { "failed" }
            ),
            Self::RuntimeRequestReportFailed { runtime_id, kind, request_id, error } => write!(
                f,
                "answering {kind} request {} of runtime {} failed: {error}",
                id(request_id.as_str()),
                id(runtime_id.as_str()),
                error = error.display_chain()
            ),
            Self::OrphansRecovered { runtime_id, orphaned, retried } => write!(
                f,
                "runtime {}: {orphaned} task(s) left in flight by an earlier run failed for recovery, {retried} retried",
                id(runtime_id.as_str())
            ),
            Self::OrphanRecoveryFailed { runtime_id, error } => write!(
                f,
                "recovering orphaned tasks of runtime {} failed: {error}",
                id(runtime_id.as_str()),
                error = error.display_chain()
            ),
            Self::SessionPinned { task_id, session_id } => {
                write!(f, "task {}: session {session_id} pinned", id(task_id.as_str()))
            }
            Self::SessionPinFailed { task_id, error } => {
                write!(f, "task {}: pinning the session failed: {error}", id(task_id.as_str()), error = error.display_chain())
            }
            Self::ClaimFailed { runtime_id, error } => {
                write!(f, "claim on runtime {} failed: {error}", id(runtime_id.as_str()), error = error.display_chain())
            }
            Self::Claimed { task_id, runtime_id, agent, priority } => write!(
                f,
                "claimed task {} (priority {priority}, agent {}) on runtime {}",
                id(task_id.as_str()),
                if agent.is_empty() { "?" } else { agent },
                id(runtime_id.as_str())
            ),
            Self::StartFailed { task_id, error } => {
                write!(f, "task {}: start failed: {error}", id(task_id.as_str()), error = error.display_chain())
            }
            Self::PrepareLeaseExtended { task_id } => {
                write!(f, "task {}: preparing, lease extended", id(task_id.as_str()))
            }
            Self::PrepareLeaseFailed { task_id, error } => write!(
                f,
                "task {}: extending the prepare lease failed: {error}",
                id(task_id.as_str()),
                error = error.display_chain()
            ),
            Self::StartRetrying { task_id, error, wait } => write!(
                f,
                "task {}: start failed, trying again in {} ms: {error}",
                id(task_id.as_str()),
                wait.as_millis(),
                error = error.display_chain()
            ),
            Self::Started { task_id } => write!(f, "task {}: started", id(task_id.as_str())),
            Self::ProgressReported { task_id, progress } => write!(
                f,
                "task {}: progress {}/{} {}",
                id(task_id.as_str()),
                progress.step,
                progress.total,
                progress.summary
            ),
            Self::ProgressFailed { task_id, error } => {
                write!(f, "task {}: progress failed: {error}", id(task_id.as_str()), error = error.display_chain())
            }
            Self::UsageReported { task_id, entries, endpoint } => {
                let per = if *endpoint == Endpoint::ReportUsage { "runtime" } else { "task" };
                write!(f, "task {}: reported {entries} usage entries per {per}", id(task_id.as_str()))
            }
            Self::UsageFailed { task_id, error } => {
                write!(f, "task {}: usage failed: {error}", id(task_id.as_str()), error = error.display_chain())
            }
            Self::StatusCheckFailed { task_id, error } => {
                write!(f, "task {}: status check failed: {error}", id(task_id.as_str()), error = error.display_chain())
            }
            Self::CancelSignalled { task_id, reason } => {
                write!(f, "task {}: {reason}: stopping its agent", id(task_id.as_str()))
            }
            Self::CancelAcknowledged { task_id } => {
                write!(f, "task {}: cancellation acknowledged", id(task_id.as_str()))
            }
            Self::CancelAckFailed { task_id, error } => write!(
                f,
                "task {}: acknowledging the cancellation failed: {error}",
                id(task_id.as_str()),
                error = error.display_chain()
            ),
            Self::AgentAbandoned { task_id } => {
                write!(f, "task {}: the agent did not stop in time; abandoned", id(task_id.as_str()))
            }
            Self::Streamed { task_id, stats } => write!(
                f,
                "task {}: streamed {} messages in {} batches ({} dropped)",
                id(task_id.as_str()),
                stats.messages_sent,
                stats.batches_sent,
                stats.dropped
            ),
            Self::Completed { task_id } => write!(f, "task {}: completed", id(task_id.as_str())),
            Self::Failed { task_id, reason, failure_reason } if !failure_reason.is_empty() => {
                write!(f, "task {}: failed, {failure_reason} ({reason})", id(task_id.as_str()))
            }
            Self::Failed { task_id, reason, .. } => write!(f, "task {}: failed ({reason})", id(task_id.as_str())),
            Self::Cancelled { task_id } => {
                write!(f, "task {}: cancelled on the server, result dropped", id(task_id.as_str()))
            }
            Self::ReportFailed { task_id, error } => {
                write!(
                    f,
                    "task {}: reporting the result failed: {error}",
                    id(task_id.as_str()),
                    error = error.display_chain()
                )
            }
            Self::Unauthorized { error } => {
                write!(f, "the server refused the token, stopping: {error}", error = error.display_chain())
            }
            Self::ShuttingDown { running, grace } => {
                write!(f, "shutting down: {running} task(s) running, {} s grace", grace.as_secs())
            }
            Self::GraceExpired { running } => write!(f, "grace period over: cancelling {running} task(s)"),
            Self::Idle => f.write_str("queue drained"),
            Self::Deregistered { runtimes } => write!(f, "deregistered {runtimes} runtime(s)"),
            Self::DeregisterFailed { error } => write!(f, "deregister failed: {error}", error = error.display_chain()),
        }
    }
}

/// What a run did, counted from its events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Tasks claimed.
    pub claimed: usize,
    /// Tasks completed.
    pub completed: usize,
    /// Tasks failed (by their agent, a failed start or shutdown).
    pub failed: usize,
    /// Tasks cancelled on the server.
    pub cancelled: usize,
    /// Pings answered.
    pub pings: usize,
    /// Failed calls of any kind ([`WorkerEvent::is_error`]).
    pub errors: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} completed, {} failed, {} cancelled, {} errors",
            self.completed, self.failed, self.cancelled, self.errors
        )
    }
}

/// The user's event callback.
pub(crate) type EventFn = Arc<dyn Fn(&WorkerEvent) + Send + Sync>;

/// Counts events into the summary and hands them to the user's callback.
pub(crate) struct Events {
    summary: Mutex<Summary>,
    sink: Option<EventFn>,
}

impl Events {
    pub(crate) fn new(sink: Option<EventFn>) -> Self {
        Self { summary: Mutex::new(Summary::default()), sink }
    }

    pub(crate) fn emit(&self, event: WorkerEvent) {
        {
            let mut summary = self.summary.lock().unwrap_or_else(PoisonError::into_inner);
            match &event {
                WorkerEvent::Claimed { .. } => summary.claimed += 1,
                WorkerEvent::Completed { .. } => summary.completed += 1,
                WorkerEvent::Failed { .. } => summary.failed += 1,
                WorkerEvent::Cancelled { .. } => summary.cancelled += 1,
                WorkerEvent::PingAnswered { .. } => summary.pings += 1,
                _ => {}
            }
            if event.is_error() {
                summary.errors += 1;
            }
        }
        #[cfg(feature = "tracing")]
        if event.is_error() {
            tracing::warn!(target: "multica_worker", "{event}");
        } else {
            tracing::info!(target: "multica_worker", "{event}");
        }
        if let Some(sink) = &self.sink {
            sink(&event);
        }
    }

    pub(crate) fn summary(&self) -> Summary {
        *self.summary.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use multica_api::{Endpoint, Error, RuntimeId, TaskId};

    use super::WorkerEvent;

    #[test]
    fn an_event_shows_every_cause_of_its_error() {
        let busy = Error::from_server_message(
            Endpoint::ClaimTask.method(),
            "/api/daemon/runtimes/rt-1/tasks/claim",
            503,
            "busy",
        );
        let error = Error::RetriesExhausted { attempts: 3, last: Box::new(busy) };
        let claim = WorkerEvent::ClaimFailed { runtime_id: RuntimeId::new("rt-1"), error: error.clone() };
        assert_eq!(
            claim.to_string(),
            r#"claim on runtime rt-1 failed: gave up after 3 attempts: POST /api/daemon/runtimes/rt-1/tasks/claim returned 503: {"error":"busy"}"#
        );
        let progress = WorkerEvent::ProgressFailed { task_id: TaskId::new("t-1"), error };
        assert!(progress.to_string().ends_with(
            r#"gave up after 3 attempts: POST /api/daemon/runtimes/rt-1/tasks/claim returned 503: {"error":"busy"}"#
        ));
    }
}
