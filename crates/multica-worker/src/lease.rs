//! The prepare lease of a claimed task (server HEAD 1cc46b2697): the claim
//! leases the task for 45 s; a task still unstarted when its lease has run
//! out is handed out again, so the worker extends it while the task prepares.

use multica_api::{DaemonApiExt, Task};

use crate::event::WorkerEvent;
use crate::routes::LaterRoute;
use crate::worker::Shared;

/// What extending the lease found.
pub(crate) enum Lease {
    /// Extended, or failed in a way worth another try at the next interval.
    Held,
    /// The server has no prepare lease (3c93ebaf1c): nothing to extend.
    Unsupported,
    /// The server refused: the task is no longer this daemon's to prepare
    /// (cancelled, gone, or handed out again).
    Refused,
}

/// Extends `task`'s prepare lease once.
pub(crate) async fn extend(shared: &Shared, task: &Task) -> Lease {
    if !shared.routes.may_have(LaterRoute::PrepareLease) {
        return Lease::Unsupported;
    }
    let task_id = &task.record.id;
    match shared.api.extend_prepare_lease_if_supported(&task.record.runtime_id, task_id).await {
        Ok(None) => {
            shared.routes.lacks(LaterRoute::PrepareLease);
            Lease::Unsupported
        }
        Ok(Some(_)) => {
            shared.events.emit(WorkerEvent::PrepareLeaseExtended { task_id: task_id.clone() });
            Lease::Held
        }
        // Not dispatched any more, or not this runtime's task.
        Err(error) if error.is_task_state_conflict() || error.is_task_not_found() => Lease::Refused,
        Err(error) => {
            shared.events.emit(WorkerEvent::PrepareLeaseFailed { task_id: task_id.clone(), error });
            Lease::Held
        }
    }
}
