//! The worker on a control channel (today's server: the daemon WebSocket):
//! server pushes wake the claim loop, heartbeat a runtime with pending
//! work, and re-sync; while the channel is up the worker claims across all
//! its runtimes in one batch and polls every 30 s, as the Go daemon does.
//! Without a channel, or while it is down, nothing here changes anything.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use multica_api::{BatchClaimRequest, DaemonApiExt, HeartbeatRequest, Push, Runtime, RuntimeId, Task};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::event::WorkerEvent;
use crate::runtime_request;
use crate::worker::Shared;

/// The Go daemon's poll interval while pushes wake it (`DefaultPollInterval`).
pub const CHANNEL_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// At most one pending-work heartbeat per runtime this often (the Go
/// daemon's `pendingWorkHintMinInterval`).
const PENDING_WORK_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The server's pushes, as handed to [`Worker::wake_on`](crate::Worker::wake_on).
pub(crate) type PushStream = Pin<Box<dyn Stream<Item = Push> + Send>>;

/// What the push listener tells the claim loop.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    /// One stored permit: any number of hints before the loop looks is one claim.
    claim_now: Notify,
    /// The channel is connected: batch claims, the long poll interval.
    up: AtomicBool,
}

impl Wake {
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Resolves when a hint asked for a claim since the last claim round.
    pub(crate) async fn claim_requested(&self) {
        self.claim_now.notified().await;
    }

    /// How long the claim loop waits after an empty round.
    pub(crate) fn poll_interval(&self, without_channel: Duration) -> Duration {
        if self.is_up() {
            CHANNEL_POLL_INTERVAL.max(without_channel)
        } else {
            without_channel
        }
    }
}

/// Reads pushes until `stopped`, acting on each (all are idempotent hints).
pub(crate) async fn listen(
    shared: Arc<Shared>,
    wake: Arc<Wake>,
    mut pushes: PushStream,
    mut stopped: watch::Receiver<bool>,
) {
    let mut requests = JoinSet::new();
    let mut last_pending_work: HashMap<String, Instant> = HashMap::new();
    loop {
        while requests.try_join_next().is_some() {}
        let push = tokio::select! {
            push = std::future::poll_fn(|cx| pushes.as_mut().poll_next(cx)) => match push {
                Some(push) => push,
                None => break,
            },
            _ = stopped.changed() => break,
        };
        match push {
            Push::Connected { .. } => {
                wake.up.store(true, Ordering::Release);
                // Catch up: nothing is replayed to a new connection.
                wake.claim_now.notify_one();
            }
            Push::Disconnected { .. } => {
                wake.up.store(false, Ordering::Release);
                // Back to polling as without a channel, from now.
                wake.claim_now.notify_one();
            }
            Push::Lagged | Push::TaskAvailable { .. } => wake.claim_now.notify_one(),
            Push::PendingWork { runtime_id, .. } => {
                let key = runtime_id.as_str().to_ascii_lowercase();
                let now = Instant::now();
                if last_pending_work.get(&key).is_some_and(|at| now - *at < PENDING_WORK_MIN_INTERVAL) {
                    continue;
                }
                last_pending_work.insert(key, now);
                if let Some(runtime) = runtime_of(&shared, &runtime_id) {
                    // On its own task, so a slow heartbeat delays no wake-up.
                    let shared = Arc::clone(&shared);
                    requests.spawn(async move {
                        let request = HeartbeatRequest { runtime_id: runtime.id.clone(), supports_batch_import: true };
                        if let Ok(answer) = shared.api.send_heartbeat_with(&request).await {
                            let mut answering = JoinSet::new();
                            runtime_request::dispatch(&shared, &mut answering, &runtime, &answer);
                            while answering.join_next().await.is_some() {}
                        }
                    });
                }
            }
            Push::PendingRequests { runtime_id, answer } => {
                if let Some(runtime) = runtime_of(&shared, &runtime_id) {
                    runtime_request::dispatch(&shared, &mut requests, &runtime, &answer);
                }
            }
            Push::RuntimeGone { runtime_id } if runtime_of(&shared, &runtime_id).is_some() => {
                shared.events.emit(WorkerEvent::RuntimeGone { runtime_id });
                resync(&shared).await;
            }
            Push::RuntimeProfilesChanged { workspace_id, .. }
                if workspace_id.as_str().eq_ignore_ascii_case(shared.registration.workspace_id.as_str()) =>
            {
                resync(&shared).await;
            }
            Push::WorkspacesChanged => resync(&shared).await,
            _ => {}
        }
    }
    requests.shutdown().await;
}

/// Registers again: the worker's runtimes and their profiles as the server
/// has them now.
async fn resync(shared: &Shared) {
    match shared.register().await {
        Ok(runtimes) => {
            runtimes.into_iter().for_each(|runtime| shared.events.emit(WorkerEvent::ReRegistered { runtime }));
        }
        Err(error) => shared.events.emit(WorkerEvent::ReRegisterFailed { error }),
    }
}

fn runtime_of(shared: &Shared, runtime_id: &RuntimeId) -> Option<Runtime> {
    shared.runtimes().into_iter().find(|runtime| runtime.id.as_str().eq_ignore_ascii_case(runtime_id.as_str()))
}

/// One batch claim across every runtime, for up to `max_tasks` tasks.
pub(crate) async fn claim_batch(shared: &Shared, max_tasks: usize) -> Result<Vec<Task>, multica_api::Error> {
    let runtime_ids: Vec<RuntimeId> = shared.runtimes().into_iter().map(|runtime| runtime.id).collect();
    if runtime_ids.is_empty() {
        return Ok(Vec::new());
    }
    let request = BatchClaimRequest {
        daemon_id: shared.registration.daemon_id.clone(),
        runtime_ids,
        max_tasks: i64::try_from(max_tasks).unwrap_or(i64::MAX),
    };
    let tasks = shared.api.claim_tasks(&request).await?;
    for task in &tasks {
        shared.events.emit(WorkerEvent::Claimed {
            task_id: task.record.id.clone(),
            runtime_id: task.record.runtime_id.clone(),
            agent: task.agent.as_ref().map(|agent| agent.name.clone()).unwrap_or_default(),
            priority: task.record.priority,
        });
    }
    Ok(tasks)
}
