//! A claimed task before it starts: the agent's preparation, the server's
//! prepare lease kept alive meanwhile, and a cancellation or shutdown that
//! comes first.

use std::sync::Arc;

use multica_api::{DaemonApiExt, FailureReason, Task, TaskFailure, TaskStatus};
use tokio::sync::watch;
use tokio::time::{self, Instant};

use crate::agent::CancelReason;
use crate::lease::{self, Lease};
use crate::skills::{self, AgentSkill, SkillsUnavailable};
use crate::worker::Shared;

/// How the preparation ended.
pub(crate) enum Prepared {
    /// The task may start; the agent's skills, resolved.
    Ready(Arc<[AgentSkill]>),
    /// The task fails with this, unstarted.
    Failed(TaskFailure),
    /// The server cancelled the task (`true`) or forgot it (`false`).
    Cancelled(bool),
}

/// Resolves the task's skills, then runs the agent's preparation of
/// `task`, extending the task's prepare lease at once and every
/// [`WorkerConfig::prepare_lease_interval`](crate::WorkerConfig::prepare_lease_interval)
/// meanwhile; a shutdown past its grace ends it early.
pub(crate) async fn run(
    shared: &Shared,
    task: &Task,
    cancel_all: &mut watch::Receiver<Option<CancelReason>>,
) -> Prepared {
    // The first extension comes before anything is prepared.
    let mut next_extension = match extend(shared, task).await {
        Ok(next) => next,
        Err(lost) => return lost,
    };
    let preparing = async {
        let skills = match skills::resolve(shared, task).await {
            Ok(skills) => skills,
            Err(unavailable) => {
                let why = match unavailable {
                    SkillsUnavailable::NotPreparing => match lost(shared, task).await {
                        Prepared::Ready(_) => "the server says the task is not preparing".to_owned(),
                        ended => return ended,
                    },
                    SkillsUnavailable::Failed(why) => why,
                };
                let error = format!("the agent's skills could not be fetched: {why}");
                return Prepared::Failed(TaskFailure::new(error).with_reason(FailureReason::SkillBundleUnavailable));
            }
        };
        match shared.agent.prepare(task).await {
            Ok(()) => Prepared::Ready(skills),
            Err(why) => Prepared::Failed(TaskFailure::new(format!("preparing the task failed: {why}"))),
        }
    };
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
                    let error = format!("the daemon shut down before the task started: {reason}");
                    return Prepared::Failed(TaskFailure::new(error).with_reason(FailureReason::Cancelled));
                }
            }
            prepared = &mut preparing => return prepared,
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

/// After the server refused to lease the task (or to resolve its skills):
/// cancelled, gone, or (for any other status) left to the start to decide.
async fn lost(shared: &Shared, task: &Task) -> Prepared {
    match shared.api.get_task_status(&task.record.id).await {
        Ok(TaskStatus::Cancelled) => Prepared::Cancelled(true),
        Err(error) if error.is_task_not_found() => Prepared::Cancelled(false),
        _ => Prepared::Ready(Arc::from(Vec::new())),
    }
}
