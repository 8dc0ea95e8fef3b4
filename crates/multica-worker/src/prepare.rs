//! A claimed task before it starts: the agent's preparation, the server's
//! prepare lease kept alive meanwhile, and a cancellation or shutdown that
//! comes first.

use multica_api::{DaemonApiExt, Task, TaskStatus};
use tokio::sync::watch;
use tokio::time::{self, Instant};

use crate::agent::CancelReason;
use crate::lease::{self, Lease};
use crate::worker::Shared;

/// How the preparation ended.
pub(crate) enum Prepared {
    /// The task may start.
    Ready,
    /// The task fails with this reason, unstarted.
    Failed(String),
    /// The server cancelled the task (`true`) or forgot it (`false`).
    Cancelled(bool),
}

/// Runs the agent's preparation of `task` until it ends, extending the
/// task's prepare lease at once and every
/// [`WorkerConfig::prepare_lease_interval`](crate::WorkerConfig::prepare_lease_interval)
/// meanwhile; a shutdown past its grace ends it early.
pub(crate) async fn run(
    shared: &Shared,
    task: &Task,
    cancel_all: &mut watch::Receiver<Option<CancelReason>>,
) -> Prepared {
    // The first extension comes before the agent prepares anything.
    let mut next_extension = match extend(shared, task).await {
        Ok(next) => next,
        Err(lost) => return lost,
    };
    let preparing = shared.agent.prepare(task);
    tokio::pin!(preparing);
    loop {
        tokio::select! {
            () = time::sleep_until(next_extension.unwrap_or_else(Instant::now)), if next_extension.is_some() => {
                next_extension = match extend(shared, task).await {
                    Ok(next) => next,
                    Err(lost) => return lost,
                };
            }
            Ok(()) = cancel_all.changed() => {
                if let Some(reason) = *cancel_all.borrow_and_update() {
                    return Prepared::Failed(format!("the daemon shut down before the task started: {reason}"));
                }
            }
            ready = &mut preparing => {
                return match ready {
                    Ok(()) => Prepared::Ready,
                    Err(why) => Prepared::Failed(format!("preparing the task failed: {why}")),
                };
            }
        }
    }
}

/// Extends the lease once: when to extend it next (`None`: never, the
/// server has no lease), or how the preparation ends when the server refused.
async fn extend(shared: &Shared, task: &Task) -> Result<Option<Instant>, Prepared> {
    match lease::extend(shared, task).await {
        Lease::Held => Ok(Some(Instant::now() + shared.config.prepare_lease_interval)),
        Lease::Unsupported => Ok(None),
        Lease::Refused => Err(lost(shared, task).await),
    }
}

/// After the server refused to lease the task: cancelled, gone, or (for any
/// other status) left to the start to decide.
async fn lost(shared: &Shared, task: &Task) -> Prepared {
    match shared.api.get_task_status(&task.record.id).await {
        Ok(TaskStatus::Cancelled) => Prepared::Cancelled(true),
        Err(error) if error.is_task_not_found() => Prepared::Cancelled(false),
        _ => Prepared::Ready,
    }
}
