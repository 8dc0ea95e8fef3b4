//! What a server pushes to a daemon over a control channel (today's server:
//! the daemon WebSocket, `GET /api/daemon/ws`).

use crate::dto::HeartbeatResponse;
use crate::ids::{ProfileId, RuntimeId, TaskId, WorkspaceId};

/// One server push, or news about the channel that carries them.
///
/// Every push is a hint: HTTP stays the correctness path, a push may be
/// lost, repeated or stale, so what it triggers must be idempotent (a claim,
/// a heartbeat, a re-sync). [`Push::Connected`] and [`Push::Lagged`] both
/// mean "some hints may have been missed: catch up" (claim, heartbeat,
/// re-list), as the Go daemon does on every (re)connect.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Push {
    /// A connection was established: its number, counting from 1. Hints of
    /// earlier connections are not replayed.
    Connected {
        /// The connection's number.
        generation: u64,
    },
    /// The connection ended; the channel reconnects by itself.
    Disconnected {
        /// The connection's number.
        generation: u64,
    },
    /// The reader fell behind and hints were dropped.
    Lagged,
    /// A task was queued for the runtime (`task_id` set), or a task of it
    /// ended and a slot may have freed (`task_id` absent): claim now.
    TaskAvailable {
        /// The runtime.
        runtime_id: RuntimeId,
        /// The queued task, when one was queued.
        task_id: Option<TaskId>,
    },
    /// The runtime has pending requests (a model list): heartbeat it now.
    PendingWork {
        /// The runtime.
        runtime_id: RuntimeId,
        /// Advisory (`model_list` today).
        kind: Option<String>,
    },
    /// A workspace's custom runtime profiles changed: refetch them.
    RuntimeProfilesChanged {
        /// The workspace.
        workspace_id: WorkspaceId,
        /// The profile that changed, when the server named it.
        runtime_profile_id: Option<ProfileId>,
    },
    /// The user's set of workspaces changed: list them again.
    WorkspacesChanged,
    /// A heartbeat acknowledgement no caller waited for (the channel's own
    /// heartbeat at connect, or an answer that came late) handed out
    /// pending requests: act on them as on a heartbeat's answer, since the
    /// server hands each out once.
    PendingRequests {
        /// The runtime.
        runtime_id: RuntimeId,
        /// The acknowledgement as a heartbeat's answer.
        answer: Box<HeartbeatResponse>,
    },
    /// The server no longer knows the runtime: register again.
    RuntimeGone {
        /// The runtime.
        runtime_id: RuntimeId,
    },
}
