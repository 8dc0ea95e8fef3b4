//! What runs a task: the [`Agent`] trait and the [`TaskContext`] it gets.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use multica_api::layer::RetryPolicy;
use multica_api::reporter::ReporterSink;
use multica_api::{
    DaemonApi, DaemonApiExt, Endpoint, Error, FailureReason, LocalSkill, Runtime, SecretToken, SessionPin, Task,
    TaskCompletion, TaskFailure, TaskProgress, TaskUsage,
};
use tokio::sync::watch;

use crate::event::{Events, WorkerEvent};
use crate::routes::{LaterRoute, ServerRoutes};
use crate::runtime_request::{ImportedSkill, ModelCatalog, RuntimeAnswer};
use crate::skills::AgentSkill;
use crate::usage::{DailyUsage, TaskUsageSums};

/// Runs tasks (and answers pings) for a [`Worker`](crate::Worker).
///
/// Object-safe: the worker holds it as `Arc<dyn Agent>`.
#[async_trait]
pub trait Agent: Send + Sync + 'static {
    /// Runs one task to its end. Streams live output through
    /// [`TaskContext::messages`], and should stop soon after
    /// [`TaskContext::cancelled`] resolves (the worker drops the future
    /// after [`WorkerConfig::cancel_grace`](crate::WorkerConfig::cancel_grace)).
    async fn run(&self, context: TaskContext) -> AgentOutcome;

    /// Gets a claimed task ready before it starts (a checkout, a download
    /// of skills): `Err(reason)` fails the task without starting it. While
    /// this runs the task is still `dispatched`, and on a server that leases
    /// preparing tasks (HEAD 1cc46b2697: 45 s from the claim) the worker
    /// keeps the lease alive, every
    /// [`WorkerConfig::prepare_lease_interval`](crate::WorkerConfig::prepare_lease_interval).
    /// A shutdown whose grace runs out drops this future. By default the
    /// task is ready at once.
    async fn prepare(&self, task: &Task) -> Result<(), String> {
        let _ = task;
        Ok(())
    }

    /// Answers a ping of `runtime` (the server's liveness test of an agent
    /// CLI): `Ok(output)` or `Err(why)`; the worker measures how long it
    /// took. By default answers `pong` at once.
    async fn ping(&self, runtime: &Runtime) -> Result<String, String> {
        let _ = runtime;
        Ok("pong".to_owned())
    }

    /// Answers a user's request for the models `runtime` offers (the model
    /// picker; server HEAD 1cc46b2697 hands it out with a heartbeat). By
    /// default [`RuntimeAnswer::Unsupported`]: the server is told the
    /// runtime has no model selection, and the UI shows that at once.
    async fn list_models(&self, runtime: &Runtime) -> RuntimeAnswer<ModelCatalog> {
        let _ = runtime;
        RuntimeAnswer::Unsupported
    }

    /// Answers a request for the skills installed on this machine for
    /// `runtime`'s CLI. By default [`RuntimeAnswer::Unsupported`] (the
    /// runtime has no local skills).
    async fn list_local_skills(&self, runtime: &Runtime) -> RuntimeAnswer<Vec<LocalSkill>> {
        let _ = runtime;
        RuntimeAnswer::Unsupported
    }

    /// Answers a request to import the local skill `skill_key` (a key
    /// [`Agent::list_local_skills`] listed) into the workspace. Several
    /// imports may run at once (the worker takes them in batches). By
    /// default [`RuntimeAnswer::Unsupported`], which the server records as
    /// a failed import, as the Go daemon words it.
    async fn import_local_skill(&self, runtime: &Runtime, skill_key: &str) -> RuntimeAnswer<ImportedSkill> {
        let _ = (runtime, skill_key);
        RuntimeAnswer::Unsupported
    }

    /// Answers a request to update the daemon's CLI to `target_version`:
    /// `Answered(output)` once updated. By default
    /// [`RuntimeAnswer::Unsupported`], a failed update (a library daemon is
    /// updated by whoever built it).
    async fn update(&self, runtime: &Runtime, target_version: &str) -> RuntimeAnswer<String> {
        let _ = (runtime, target_version);
        RuntimeAnswer::Unsupported
    }
}

/// How an agent's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentOutcome {
    /// Done: the task completes with this.
    Completed(TaskCompletion),
    /// The task fails with this: the error text and, in the server's terms,
    /// why ([`TaskFailure::failure_reason`], which decides whether server
    /// HEAD 1cc46b2697 retries the task; left empty, the server classifies
    /// the text itself), plus the session and work directory to resume.
    Failed(TaskFailure),
}

impl AgentOutcome {
    /// A completion with only an output.
    pub fn completed(output: impl Into<String>) -> Self {
        Self::Completed(TaskCompletion::with_output(output))
    }

    /// A failure with its error text and no reason: the server classifies
    /// the text (as the Go daemon does for an agent's error).
    pub fn failed(error: impl Into<String>) -> Self {
        Self::Failed(TaskFailure::new(error))
    }

    /// A failure with its error text and the reason in the server's terms,
    /// e.g. [`FailureReason::Timeout`] for a run that hit its time limit
    /// (retried by the server).
    pub fn failed_with(error: impl Into<String>, reason: FailureReason) -> Self {
        Self::Failed(TaskFailure::new(error).with_reason(reason))
    }
}

/// Why an agent was told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The server cancelled the task (its issue was closed or reassigned);
    /// nothing is reported for it.
    Server,
    /// The worker is shutting down and the grace period ran out; the task
    /// fails (reason [`FailureReason::Cancelled`], as the Go daemon sends)
    /// unless the agent still completes it.
    Shutdown,
    /// The task ran longer than
    /// [`WorkerConfig::task_timeout`](crate::WorkerConfig::task_timeout); it
    /// fails with [`FailureReason::Timeout`] (retried by the server) unless
    /// the agent still completes it.
    Timeout,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "cancelled on the server",
            Self::Shutdown => "the daemon is shutting down",
            Self::Timeout => "the task ran out of time",
        })
    }
}

/// What an agent gets for one task: the task, live output, progress and
/// usage reporting, and the cancellation signal.
pub struct TaskContext {
    pub(crate) task: Task,
    pub(crate) messages: ReporterSink,
    pub(crate) cancel: watch::Receiver<Option<CancelReason>>,
    pub(crate) api: Arc<dyn DaemonApi>,
    pub(crate) events: Arc<Events>,
    pub(crate) routes: Arc<ServerRoutes>,
    pub(crate) auth_token: Option<SecretToken>,
    pub(crate) skills: Arc<[AgentSkill]>,
    pub(crate) pinned: Arc<Mutex<SessionPin>>,
    pub(crate) runtime_provider: String,
    pub(crate) usage: TaskUsageSums,
    pub(crate) daily: Arc<DailyUsage>,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never shows the token.
        f.debug_struct("TaskContext")
            .field("task", &self.task.record.id)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// The claimed task (the record, agent, repositories, prior session).
    /// Its `auth_token` is always `None`: the worker moves the token to
    /// [`TaskContext::auth_token`].
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The task's live output: add text, tool calls and results here; the
    /// worker sends them in batches and finishes before the final call.
    pub fn messages(&self) -> &ReporterSink {
        &self.messages
    }

    /// The token scoped to this task (`mat_…`), for the agent's own calls
    /// to the server's user API, acting as the task's agent. Server HEAD
    /// 1cc46b2697 hands one out with each claim and revokes it when the
    /// task completes or fails; 3c93ebaf1c has none (`None`). Its `Debug`
    /// is redacted: call [`SecretToken::expose`] only where it is used.
    pub fn auth_token(&self) -> Option<&SecretToken> {
        self.auth_token.as_ref()
    }

    /// The session the server offers to resume (`prior_session_id`): at
    /// HEAD 1cc46b2697 the latest session of this agent and issue on this
    /// runtime (a retry's failed attempt, a follow-up) or a rerun's source
    /// task; at 3c93ebaf1c the last completed task's. `None` when there is
    /// none. Resume it if the agent can; when the server withheld a newer
    /// session as unsafe, `task().prior_session_resume_unavailable` is set.
    pub fn prior_session_id(&self) -> Option<&str> {
        Some(self.task.prior_session_id.as_str()).filter(|id| !id.is_empty())
    }

    /// The work directory of that session (`prior_work_dir`), to run in
    /// again; `None` when there is none.
    pub fn prior_work_dir(&self) -> Option<&str> {
        Some(self.task.prior_work_dir.as_str()).filter(|dir| !dir.is_empty())
    }

    /// The agent's skills, with their content, ready to use: at HEAD
    /// 1cc46b2697 the claim's skill references resolved during preparation
    /// (cached by hash across tasks), at 3c93ebaf1c the claim's inline
    /// skills. Write them where the agent's CLI looks with
    /// [`AgentSkill::write_all`]. Empty when the agent has none.
    pub fn skills(&self) -> &[AgentSkill] {
        &self.skills
    }

    /// Pins the agent's session (and work directory) on the task as soon
    /// as the agent has one, so that a retry or follow-up resumes it even
    /// if this run dies (HEAD 1cc46b2697's session route). `Ok(true)` when
    /// the server stored it; `Ok(false)` when the server has no such route
    /// (3c93ebaf1c: it learns the session from the final report only). Either
    /// way the worker remembers the pin and sends it with the task's
    /// complete or fail when the outcome names no session of its own.
    /// Empty values are not sent (the server needs at least one).
    pub async fn pin_session(&self, session_id: &str, work_dir: &str) -> Result<bool, Error> {
        let pin = SessionPin { session_id: session_id.to_owned(), work_dir: work_dir.to_owned() };
        if pin.session_id.is_empty() && pin.work_dir.is_empty() {
            return Ok(false);
        }
        {
            let mut pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
            if !pin.session_id.is_empty() {
                pinned.session_id.clone_from(&pin.session_id);
            }
            if !pin.work_dir.is_empty() {
                pinned.work_dir.clone_from(&pin.work_dir);
            }
        }
        if !self.routes.may_have(LaterRoute::SessionPin) {
            return Ok(false);
        }
        let task_id = self.task.record.id.clone();
        let answer = self.retry.run(Endpoint::PinSession, || self.api.pin_session(&task_id, &pin)).await;
        match self.routes.answer(LaterRoute::SessionPin, answer) {
            None => Ok(false),
            Some(Ok(())) => {
                self.events.emit(WorkerEvent::SessionPinned { task_id, session_id: pin.session_id });
                Ok(true)
            }
            Some(Err(error)) => {
                self.events.emit(WorkerEvent::SessionPinFailed { task_id, error: error.clone() });
                Err(error)
            }
        }
    }

    /// Reports step `step` of `total`; a failure is a
    /// [`WorkerEvent::ProgressFailed`], never fatal.
    pub async fn progress(&self, summary: impl Into<String>, step: i64, total: i64) {
        let progress = TaskProgress::new(summary, step, total);
        let task_id = self.task.record.id.clone();
        match self.api.report_progress(&task_id, &progress).await {
            Ok(()) => self.events.emit(WorkerEvent::ProgressReported { task_id, progress }),
            Err(error) => self.events.emit(WorkerEvent::ProgressFailed { task_id, error }),
        }
    }

    /// Reports token usage of this task: what the agent used since its last
    /// report (call once at the end with the totals, or as it goes), per
    /// provider and model, with the cost where known. The worker adds the
    /// reports up and sends the sums the server stores: per task at HEAD
    /// 1cc46b2697 (with `cost_usd_ticks`), per runtime and day (today, UTC)
    /// at 3c93ebaf1c, where the row is the sum over every task of the day
    /// (3c93ebaf1c has no cost). An empty provider is the runtime's.
    /// Transient failures are repeated; a report that still fails is a
    /// [`WorkerEvent::UsageFailed`] and an `Err`, and its usage is sent with
    /// the next report.
    pub async fn report_usage(&self, usage: &[TaskUsage]) -> Result<(), Error> {
        if usage.is_empty() {
            return Ok(());
        }
        let task_id = self.task.record.id.clone();
        let rows = self.usage.add(usage, &self.runtime_provider);
        let sent = if self.routes.may_have(LaterRoute::TaskUsage) {
            let answer = self
                .retry
                .run(Endpoint::ReportTaskUsage, || self.api.report_task_usage(&task_id, rows.as_slice()))
                .await;
            self.routes
                .answer(LaterRoute::TaskUsage, answer)
                .map(|answer| (answer.map(|()| rows.len()), Endpoint::ReportTaskUsage))
        } else {
            None
        };
        let (answer, endpoint) = match sent {
            Some(sent) => sent,
            // Server 3c93ebaf1c has no task route.
            None => {
                let runtime_id = &self.task.record.runtime_id;
                let answer =
                    self.daily.report(self.api.as_ref(), &self.retry, runtime_id, &self.runtime_provider, usage).await;
                (answer, Endpoint::ReportUsage)
            }
        };
        match answer {
            Ok(entries) => {
                self.events.emit(WorkerEvent::UsageReported { task_id, entries, endpoint });
                Ok(())
            }
            Err(error) => {
                self.events.emit(WorkerEvent::UsageFailed { task_id, error: error.clone() });
                Err(error)
            }
        }
    }

    /// Whether the agent was told to stop, and why.
    pub fn is_cancelled(&self) -> Option<CancelReason> {
        *self.cancel.borrow()
    }

    /// Resolves when the agent is told to stop (at once if it was); never
    /// resolves if it is not. Cancel-safe: select on it beside the work.
    pub async fn cancelled(&self) -> CancelReason {
        let mut cancel = self.cancel.clone();
        loop {
            if let Some(reason) = *cancel.borrow_and_update() {
                return reason;
            }
            if cancel.changed().await.is_err() {
                // The worker let go of the task without a signal: none will come.
                std::future::pending::<()>().await;
            }
        }
    }
}
