//! What runs a task: the [`Agent`] trait and the [`TaskContext`] it gets.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use multica_api::reporter::ReporterSink;
use multica_api::{
    DaemonApi, DaemonApiExt, Endpoint, Runtime, SecretToken, Task, TaskCompletion, TaskProgress, TaskUsage, UsageEntry,
};
use tokio::sync::watch;

use crate::event::{Events, WorkerEvent};
use crate::routes::{LaterRoute, ServerRoutes};

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
}

/// How an agent's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentOutcome {
    /// Done: the task completes with this.
    Completed(TaskCompletion),
    /// The task fails with this reason.
    Failed(String),
}

impl AgentOutcome {
    /// A completion with only an output.
    pub fn completed(output: impl Into<String>) -> Self {
        Self::Completed(TaskCompletion::with_output(output))
    }

    /// A failure with its reason.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed(reason.into())
    }
}

/// Why an agent was told to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The server cancelled the task (its issue was closed or reassigned);
    /// nothing is reported for it.
    Server,
    /// The worker is shutting down and the grace period ran out; the task
    /// fails unless the agent still completes it.
    Shutdown,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server => "cancelled on the server",
            Self::Shutdown => "the daemon is shutting down",
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

    /// Reports token usage of this task: per task where the server takes
    /// that (HEAD 1cc46b2697, upserted by task, provider and model), else
    /// per runtime (3c93ebaf1c, upserted by runtime, date, provider and
    /// model). Each success is a [`WorkerEvent::UsageReported`] naming the
    /// route; a failure is a [`WorkerEvent::UsageFailed`], never fatal.
    pub async fn report_usage(&self, entries: &[UsageEntry]) {
        if entries.is_empty() {
            return;
        }
        let task_id = self.task.record.id.clone();
        let sent = if self.routes.may_have(LaterRoute::TaskUsage) {
            let answer = self.api.report_task_usage(&task_id, per_model(entries)).await;
            self.routes.answer(LaterRoute::TaskUsage, answer).map(|answer| (answer, Endpoint::ReportTaskUsage))
        } else {
            None
        };
        let (answer, endpoint) = match sent {
            Some(sent) => sent,
            // Server 3c93ebaf1c has no task route.
            None => (self.api.report_usage(&self.task.record.runtime_id, entries).await, Endpoint::ReportUsage),
        };
        match answer {
            Ok(()) => self.events.emit(WorkerEvent::UsageReported { task_id, entries: entries.len(), endpoint }),
            Err(error) => self.events.emit(WorkerEvent::UsageFailed { task_id, error }),
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

/// The task's usage per (provider, model), as the task route takes it: the
/// entries of one model on several days summed, since a later row of the
/// same model replaces an earlier one.
fn per_model(entries: &[UsageEntry]) -> Vec<TaskUsage> {
    let mut usage: Vec<TaskUsage> = Vec::new();
    for entry in entries {
        let index = match usage.iter().position(|row| row.provider == entry.provider && row.model == entry.model) {
            Some(index) => index,
            None => {
                let row =
                    TaskUsage { provider: entry.provider.clone(), model: entry.model.clone(), ..TaskUsage::default() };
                usage.push(row);
                usage.len() - 1
            }
        };
        let row = &mut usage[index];
        row.input_tokens = row.input_tokens.saturating_add(entry.input_tokens);
        row.output_tokens = row.output_tokens.saturating_add(entry.output_tokens);
        row.cache_read_tokens = row.cache_read_tokens.saturating_add(entry.cache_read_tokens);
        row.cache_write_tokens = row.cache_write_tokens.saturating_add(entry.cache_write_tokens);
    }
    usage
}
