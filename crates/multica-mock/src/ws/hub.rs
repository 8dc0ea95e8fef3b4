//! The open channel connections and where each push goes (WS contract §5):
//! by runtime (the exact strings sent at connect), by workspace, by user.
//! A push that finds a connection's 16-frame send queue full evicts it;
//! acks and RPC answers are dropped instead (§4.6, §6.3).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

use multica_api::{RuntimeId, TaskId, WorkspaceId};

use super::SEND_QUEUE;

/// One registered connection.
struct Connection {
    /// The runtime IDs as sent at connect (deduplicated, in order).
    runtime_ids: Vec<String>,
    /// The distinct workspaces of those runtimes.
    workspace_ids: Vec<WorkspaceId>,
    /// A user's ID and workspaces (`None`: every one); `None` for a daemon
    /// token, which never hears `workspaces_changed`.
    user: Option<ChannelUser>,
    outbox: mpsc::Sender<Outbound>,
    close: Arc<Notify>,
}

/// A frame queued for a connection.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) text: String,
    /// The answer of an RPC, whose in-flight slot is freed once written.
    pub(crate) rpc: bool,
}

impl Outbound {
    pub(crate) fn frame(text: String) -> Outbound {
        Outbound { text, rpc: false }
    }
}

/// The user a connection authenticated as.
#[derive(Clone, Debug)]
pub(crate) struct ChannelUser {
    pub(crate) id: String,
    pub(crate) member_of: Option<HashSet<WorkspaceId>>,
}

/// What a registered connection's session needs from the hub.
pub(crate) struct Registration {
    pub(crate) id: u64,
    pub(crate) outbox: mpsc::Sender<Outbound>,
    pub(crate) inbox: mpsc::Receiver<Outbound>,
    /// Notified when the hub evicts the connection (slow consumer,
    /// server shutdown).
    pub(crate) close: Arc<Notify>,
}

/// Faults armed for the channel (see [`crate::MockDaemon::refuse_channel_upgrades`]).
#[derive(Debug, Default)]
struct Faults {
    refuse_upgrade: Option<(u32, u16, String)>,
    drop_after_claim: u32,
    delay_claim: Option<(u32, Duration)>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    connections: BTreeMap<u64, Connection>,
    faults: Faults,
}

/// The hub of the fake's channel connections.
#[derive(Default)]
pub(crate) struct Hub {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("connections", &self.lock().connections.len()).finish()
    }
}

/// `{"type": kind, "payload": payload}` as one text message.
pub(crate) fn frame(kind: &str, payload: Value) -> String {
    json!({ "type": kind, "payload": payload }).to_string()
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection before its 101 is sent, so that no push
    /// raised meanwhile is lost.
    pub(crate) fn register(
        &self,
        runtime_ids: Vec<String>,
        workspace_ids: Vec<WorkspaceId>,
        user: Option<ChannelUser>,
    ) -> Registration {
        let (outbox, inbox) = mpsc::channel(SEND_QUEUE);
        let close = Arc::new(Notify::new());
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let connection =
            Connection { runtime_ids, workspace_ids, user, outbox: outbox.clone(), close: Arc::clone(&close) };
        inner.connections.insert(id, connection);
        Registration { id, outbox, inbox, close }
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.lock().connections.remove(&id);
    }

    /// How many connections are open.
    pub(crate) fn connection_count(&self) -> usize {
        self.lock().connections.len()
    }

    /// Ends every connection (the server is going away).
    pub(crate) fn close_all(&self) {
        let mut inner = self.lock();
        for (_, connection) in std::mem::take(&mut inner.connections) {
            connection.close.notify_one();
        }
    }

    /// Queues `frame` on every connection `to` selects; a full queue evicts.
    fn push(&self, frame: &str, to: impl Fn(&Connection) -> bool) {
        let mut inner = self.lock();
        let mut evicted = Vec::new();
        for (id, connection) in inner.connections.iter().filter(|(_, c)| to(c)) {
            match connection.outbox.try_send(Outbound::frame(frame.to_owned())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    connection.close.notify_one();
                    evicted.push(*id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => evicted.push(*id),
            }
        }
        for id in evicted {
            inner.connections.remove(&id);
        }
    }

    /// `daemon:task_available` to every connection holding the runtime:
    /// with the task when one was queued, without when one ended.
    pub(crate) fn task_available(&self, runtime_id: &RuntimeId, task_id: Option<&TaskId>) {
        let payload = match task_id {
            Some(task) => json!({ "runtime_id": runtime_id, "task_id": task }),
            None => json!({ "runtime_id": runtime_id }),
        };
        self.push(&frame("daemon:task_available", payload), |c| c.runtime_ids.iter().any(|r| r == runtime_id.as_str()));
    }

    /// `daemon:pending_work` to every connection holding the runtime.
    pub(crate) fn pending_work(&self, runtime_id: &RuntimeId, kind: &str) {
        let payload = json!({ "runtime_id": runtime_id, "kind": kind });
        self.push(&frame("daemon:pending_work", payload), |c| c.runtime_ids.iter().any(|r| r == runtime_id.as_str()));
    }

    /// `daemon:runtime_profiles_changed` to every connection with a runtime
    /// in the workspace.
    pub(crate) fn runtime_profiles_changed(&self, workspace_id: &WorkspaceId, profile_id: &str) {
        let payload = json!({ "workspace_id": workspace_id, "runtime_profile_id": profile_id });
        self.push(&frame("daemon:runtime_profiles_changed", payload), |c| c.workspace_ids.contains(workspace_id));
    }

    /// `daemon:workspaces_changed` to every connection of the user (a
    /// workspace they created).
    pub(crate) fn workspaces_changed_for_user(&self, user_id: &str) {
        self.push(&frame("daemon:workspaces_changed", json!({})), |c| c.user.as_ref().is_some_and(|u| u.id == user_id));
    }

    /// `daemon:workspaces_changed` to every connection of a member of the
    /// workspace (it is deleted).
    pub(crate) fn workspaces_changed_for_members(&self, workspace_id: &WorkspaceId) {
        self.push(&frame("daemon:workspaces_changed", json!({})), |c| {
            c.user.as_ref().is_some_and(|u| u.member_of.as_ref().is_none_or(|m| m.contains(workspace_id)))
        });
    }

    // ----- faults --------------------------------------------------------------

    pub(crate) fn refuse_upgrades(&self, count: u32, status: u16, message: &str) {
        self.lock().faults.refuse_upgrade = Some((count, status, message.to_owned()));
    }

    pub(crate) fn drop_after_claims(&self, count: u32) {
        self.lock().faults.drop_after_claim = count;
    }

    pub(crate) fn delay_claims(&self, count: u32, delay: Duration) {
        self.lock().faults.delay_claim = Some((count, delay));
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// The refusal the next upgrade gets, if one is armed.
    pub(crate) fn take_upgrade_refusal(&self) -> Option<(u16, String)> {
        let mut inner = self.lock();
        let (count, status, message) = inner.faults.refuse_upgrade.as_mut()?;
        let refusal = (*status, message.clone());
        *count -= 1;
        if *count == 0 {
            inner.faults.refuse_upgrade = None;
        }
        Some(refusal)
    }

    /// The faults the next claim meets: a delay before it takes effect,
    /// and whether the connection drops instead of answering.
    pub(crate) fn take_claim_faults(&self) -> (Option<Duration>, bool) {
        let mut inner = self.lock();
        let faults = &mut inner.faults;
        let delay = faults.delay_claim.as_mut().map(|(count, delay)| {
            *count -= 1;
            (*count, *delay)
        });
        if delay.is_some_and(|(left, _)| left == 0) {
            faults.delay_claim = None;
        }
        let drop = faults.drop_after_claim > 0;
        faults.drop_after_claim = faults.drop_after_claim.saturating_sub(1);
        (delay.map(|(_, d)| d), drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> RuntimeId {
        RuntimeId::new("abcdef00-0000-4000-8000-0000000000aa")
    }

    #[test]
    fn a_push_into_a_full_queue_evicts_the_connection() {
        let hub = Hub::default();
        let registration = hub.register(vec![runtime().as_str().to_owned()], Vec::new(), None);
        for _ in 0..SEND_QUEUE {
            hub.task_available(&runtime(), None);
        }
        assert_eq!(hub.connection_count(), 1, "sixteen frames fit");
        // An ack that does not fit is dropped; the connection stays.
        assert!(registration.outbox.try_send(Outbound::frame("ack".to_owned())).is_err());
        assert_eq!(hub.connection_count(), 1);
        hub.task_available(&runtime(), None);
        assert_eq!(hub.connection_count(), 0, "the seventeenth push evicts");
    }

    #[test]
    fn pushes_go_to_the_exact_runtime_strings_and_to_members() {
        let hub = Hub::default();
        let workspace = WorkspaceId::new("11111111-1111-4111-8111-111111111111");
        let mut lower = hub.register(vec![runtime().as_str().to_owned()], vec![workspace.clone()], None);
        let user = |member_of| Some(ChannelUser { id: "u".into(), member_of });
        let mut upper = hub.register(vec![runtime().as_str().to_ascii_uppercase()], Vec::new(), user(None));
        let mut stranger = hub.register(Vec::new(), Vec::new(), user(Some(HashSet::new())));
        hub.task_available(&runtime(), Some(&TaskId::new("t")));
        hub.workspaces_changed_for_members(&workspace);
        hub.runtime_profiles_changed(&workspace, "p");
        let kinds = |r: &mut Registration| {
            std::iter::from_fn(|| r.inbox.try_recv().ok())
                .map(|f| serde_json::from_str::<Value>(&f.text).unwrap_or_default()["type"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&mut lower), [json!("daemon:task_available"), json!("daemon:runtime_profiles_changed")]);
        assert_eq!(kinds(&mut upper), [json!("daemon:workspaces_changed")]);
        assert!(kinds(&mut stranger).is_empty());
        hub.workspaces_changed_for_user("u");
        assert_eq!(kinds(&mut upper), [json!("daemon:workspaces_changed")]);
        assert_eq!(kinds(&mut stranger), [json!("daemon:workspaces_changed")]);
        assert!(kinds(&mut lower).is_empty());
    }
}
