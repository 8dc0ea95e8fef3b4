//! Sending: one batch per flush, the ticker task, and the final drain.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{self, Instant, MissedTickBehavior};

use super::buffer::Buffer;
use super::ReporterConfig;
use crate::error::Error;
use crate::ids::TaskId;
use crate::{DaemonApi, DaemonApiExt, Endpoint};

/// What one flush did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Nothing was waiting; nothing was sent.
    Idle,
    /// The batch reached the server.
    Sent,
    /// The send failed (kept or dropped, as the buffer decided).
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
    /// Sends everything waiting as one `ReportTaskMessages` call within
    /// `budget`. The lock is held only to take the batch and to record the
    /// outcome, never across the send.
    pub(super) async fn flush(&self, budget: Duration) -> Flushed {
        let Some(batch) = lock(&self.buffer).start_batch() else {
            return Flushed::Idle;
        };
        let sent = match time::timeout(budget, self.api.report_task_messages(&self.task_id, &batch)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.timeout_error(budget)),
        };
        let mut buffer = lock(&self.buffer);
        match sent {
            Ok(()) => {
                buffer.batch_sent();
                Flushed::Sent
            }
            Err(error) => {
                // Transient failures and a refused token may pass later; any
                // other answer (404 task not found, 400) would refuse the
                // same batch forever and hold back every newer message.
                let keep = error.is_transient() || error.is_unauthorized();
                #[cfg(feature = "tracing")]
                tracing::warn!(task_id = %self.task_id, messages = batch.len(), kept = keep, error = %error,
                    "reporting task messages failed");
                buffer.batch_failed(error, keep);
                Flushed::Failed
            }
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
            match self.flush(self.config.send_timeout.min(deadline - now)).await {
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
                    if self.flush(self.config.send_timeout).await == Flushed::Failed {
                        // Give the server one full interval before trying again,
                        // however long the failed send took.
                        ticks.reset();
                    }
                }
            }
        }
    }

    fn timeout_error(&self, after: Duration) -> Error {
        let endpoint = Endpoint::ReportTaskMessages;
        let path = endpoint.path(&[self.task_id.as_str()]).unwrap_or_else(|_| endpoint.template().to_owned());
        Error::Timeout { method: endpoint.method(), path, after }
    }
}
