//! Sending: one batch per flush, the ticker task, and the final drain.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{self, Instant, MissedTickBehavior};

use super::buffer::{Buffer, Failure};
use super::ReporterConfig;
use crate::dto::MessageKind;
use crate::error::{Error, Result};
use crate::ids::TaskId;
use crate::{DaemonApi, DaemonApiExt, Endpoint};

/// What one flush did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Nothing was waiting; nothing was sent.
    Idle,
    /// Batches reached the server, or a reconciliation learned what it holds.
    Sent,
    /// A send or a reconciliation failed (kept or dropped, as the buffer
    /// decided): wait an interval before the next.
    Failed,
}

/// Sends the buffer's batches for one task. Only one flush runs at a time
/// (the ticker, then the drain), which keeps batches in `seq` order.
#[derive(Debug)]
pub(super) struct Flusher {
    pub(super) api: Arc<dyn DaemonApi>,
    pub(super) task_id: TaskId,
    pub(super) buffer: Arc<Mutex<Buffer>>,
    pub(super) config: ReporterConfig,
}

/// Locks the buffer. Nothing panics while holding it, but a poisoned lock
/// still holds consistent counters, so it is used as is.
pub(super) fn lock(buffer: &Mutex<Buffer>) -> MutexGuard<'_, Buffer> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Flusher {
    /// Sends everything waiting when called, in batches, each call within
    /// its budget (and before `deadline`, if given). A batch of unknown
    /// outcome is reconciled first. The lock is held only to take a batch
    /// and to record an outcome, never across a call.
    pub(super) async fn flush(&self, deadline: Option<Instant>) -> Flushed {
        let upto = lock(&self.buffer).begin_flush();
        let mut flushed = Flushed::Idle;
        let unknown = lock(&self.buffer).unknown_range();
        if let Some((first, _last)) = unknown {
            if !self.reconcile(first, deadline).await {
                return Flushed::Failed;
            }
            flushed = Flushed::Sent;
        }
        loop {
            let Some(batch) = lock(&self.buffer).start_batch(upto) else {
                return flushed;
            };
            let sent = self.within_budget(deadline, Endpoint::ReportTaskMessages, async {
                self.api.report_task_messages(&self.task_id, Arc::clone(&batch)).await
            });
            let sent = sent.await;
            #[cfg(feature = "tracing")]
            let count = batch.len();
            // The buffer takes the batch back without copying it once this
            // handle is gone.
            drop(batch);
            let mut buffer = lock(&self.buffer);
            match sent {
                Ok(()) => {
                    buffer.batch_sent();
                    flushed = Flushed::Sent;
                }
                Err(error) => {
                    let failure = failure_of(&error);
                    #[cfg(feature = "tracing")]
                    tracing::warn!(task_id = %self.task_id, messages = count, kept = failure != Failure::Refused,
                        outcome_unknown = failure == Failure::Unknown, error = %error,
                        "reporting task messages failed");
                    buffer.batch_failed(error, failure);
                    return Flushed::Failed;
                }
            }
        }
    }

    /// Finds out which messages of unknown outcome the server holds (from
    /// `first` on); true when known, false when the listing must be tried
    /// again later.
    async fn reconcile(&self, first: i64, deadline: Option<Instant>) -> bool {
        let listed = self.within_budget(deadline, Endpoint::ListTaskMessages, self.stored_from(first)).await;
        let mut buffer = lock(&self.buffer);
        match listed {
            Ok(stored) => {
                buffer.reconciled(&stored);
                true
            }
            Err(error) if error.is_transient() || error.is_unauthorized() => {
                #[cfg(feature = "tracing")]
                tracing::warn!(task_id = %self.task_id, error = %error,
                    "listing task messages to reconcile failed; will retry");
                buffer.reconcile_failed(error);
                false
            }
            Err(error) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(task_id = %self.task_id, error = %error,
                    "listing task messages to reconcile was refused; messages of unknown outcome dropped");
                buffer.reconcile_refused(error);
                true
            }
        }
    }

    /// The `(seq, kind)` of every message the server holds for the task
    /// with a `seq` of at least `first`. Server 3c93ebaf1c lists the whole
    /// task, filtered here; a server with the `since` parameter (`seq >
    /// since`) can be asked for `since = first - 1` here instead.
    async fn stored_from(&self, first: i64) -> Result<Vec<(i64, MessageKind)>> {
        let stored = self.api.list_task_messages(&self.task_id).await?;
        Ok(stored
            .into_iter()
            .filter(|stored| stored.message.seq >= first)
            .map(|stored| (stored.message.seq, stored.message.kind))
            .collect())
    }

    /// Runs `call` within one call's budget, cut short by `deadline`.
    async fn within_budget<T>(
        &self,
        deadline: Option<Instant>,
        endpoint: Endpoint,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut budget = self.config.send_timeout;
        if let Some(deadline) = deadline {
            budget = budget.min(deadline.saturating_duration_since(Instant::now()));
        }
        match time::timeout(budget, call).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.timeout_error(endpoint, budget)),
        }
    }

    /// Sends what is left until nothing waits or `deadline` passes, waiting
    /// one flush interval after a failure; whatever is still unsent then is
    /// counted as dropped. Closes the buffer first.
    pub(super) async fn drain(&self, deadline: Instant) {
        lock(&self.buffer).close();
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.flush(Some(deadline)).await {
                Flushed::Idle => break,
                Flushed::Sent => {}
                Flushed::Failed => time::sleep_until(deadline.min(Instant::now() + self.config.flush_interval)).await,
            }
        }
        lock(&self.buffer).abandon_rest();
    }

    /// Flushes every interval from `started` until `stop` fires. If the reporter was
    /// dropped without `finish` (the sender is gone), drains what is left
    /// within the finish timeout, so nothing is lost by forgetting to finish.
    pub(super) async fn run_ticker(self: Arc<Self>, started: Instant, mut stop: oneshot::Receiver<()>) {
        let period = self.config.effective_flush_interval();
        // From the caller's start, not from whenever this task first runs.
        let mut ticks = time::interval_at(started + period, period);
        // After a slow send, flush what piled up once, then keep the cadence.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                signal = &mut stop => {
                    if signal.is_err() {
                        self.drain(Instant::now() + self.config.finish_timeout).await;
                    }
                    return;
                }
                _ = ticks.tick() => {
                    if self.flush(None).await == Flushed::Failed {
                        // Give the server one full interval before trying again,
                        // however long the failed send took.
                        ticks.reset();
                    }
                }
            }
        }
    }

    fn timeout_error(&self, endpoint: Endpoint, after: Duration) -> Error {
        let path = endpoint.path(&[self.task_id.as_str()]).unwrap_or_else(|_| endpoint.template().to_owned());
        Error::Timeout { method: endpoint.method(), path, after }
    }
}

/// What a failed send means for its batch. Transient failures and a refused
/// token may pass later; any other answer (404 task not found, 400) would
/// refuse the same batch forever and hold back every newer message. Of
/// those that may pass, only a definite answer (401, 408, 429) or a failure
/// to connect proves nothing was stored; after a timeout, a connection lost
/// after sending, or a 5xx, the server may hold the batch.
fn failure_of(error: &Error) -> Failure {
    if !(error.is_transient() || error.is_unauthorized()) {
        Failure::Refused
    } else if error.may_have_reached_server() && error.status().is_none_or(|status| status >= 500) {
        Failure::Unknown
    } else {
        Failure::NotStored
    }
}
