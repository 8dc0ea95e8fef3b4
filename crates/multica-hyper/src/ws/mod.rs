//! The daemon WebSocket control channel of today's server (HEAD 1cc46b2697,
//! `GET /api/daemon/ws`; `../shared/real-server-head/WS-CONTRACT.md`).
//!
//! A [`WsChannel`] is a cheap handle to one task that owns the socket: it
//! dials through the [`HyperClient`]'s own connector (its TLS roots, its
//! proxy by `CONNECT`, its connect timeout) with the client's token,
//! identity and capability headers, upgrades with tokio-tungstenite
//! (messages and frames up to 64 MiB), answers pings, drops a connection
//! silent for 60 s, and reconnects on the Go daemon's schedule (1 s doubling
//! to 30 s, ±20 %, reset after 10 s up; at once when the runtime set
//! changes). Each connection is a new *generation*: RPCs are sent only once
//! a heartbeat acknowledgement read on *this* connection offered `rpc-v1`,
//! pending RPCs are keyed by a random ID and die with their connection, and
//! a queued frame stays cancellable until the writer takes it, so a caller
//! is told [`WsFailure::NotSent`] (safe to do over HTTP at once) from
//! [`WsFailure::Uncertain`] (the server may have acted).
//!
//! Server pushes come out of [`WsChannel::pushes`] as a `Stream` of
//! [`Push`]; [`WsFirst`](crate::WsFirst) puts heartbeats and claims on the
//! channel behind the [`DaemonApi`](multica_api::DaemonApi) trait.

mod backoff;
mod conn;
mod dial;
mod frame;

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use multica_api::{Error, HeartbeatResponse, Push, RuntimeId};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::HyperClient;
pub use dial::MAX_MESSAGE_BYTES;

/// How the channel paces itself; the defaults are the Go daemon's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsConfig {
    /// Connecting and upgrading must finish within this.
    pub handshake_timeout: Duration,
    /// The server-side budget of an RPC (`timeout_ms`): the batch claim's
    /// HTTP timeout.
    pub rpc_budget: Duration,
    /// How much longer than the budget the client waits for an answer.
    pub rpc_grace: Duration,
    /// How long a heartbeat waits for its acknowledgement before the caller
    /// falls back to HTTP.
    pub ack_wait: Duration,
    /// A connection that receives nothing (no frame, no ping) this long is
    /// dropped.
    pub idle_timeout: Duration,
    /// Writing one frame must finish within this.
    pub write_timeout: Duration,
    /// When the server has no channel at all (`404 page not found`: server
    /// 3c93ebaf1c), the wait before asking again.
    pub absent_retry: Duration,
    /// Pushes kept for a slow reader before it gets [`Push::Lagged`].
    pub push_buffer: usize,
}

impl WsConfig {
    /// The Go daemon's handshake timeout.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// The Go daemon's claim budget (`batchClaimRequestTimeout`).
    pub const DEFAULT_RPC_BUDGET: Duration = Duration::from_secs(5);
    /// The Go daemon's `wsRPCResponseGrace`.
    pub const DEFAULT_RPC_GRACE: Duration = Duration::from_secs(2);
    /// Acks come in milliseconds; five seconds is a stalled connection.
    pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(5);
    /// The Go daemon's `taskWakeupPongWait` (the server pings every 54 s).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The Go daemon's `taskWakeupWriteWait`.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Five minutes: an old server is asked a dozen times an hour.
    pub const DEFAULT_ABSENT_RETRY: Duration = Duration::from_secs(300);
    /// Room for bursts of wake-ups.
    pub const DEFAULT_PUSH_BUFFER: usize = 256;
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            rpc_budget: Self::DEFAULT_RPC_BUDGET,
            rpc_grace: Self::DEFAULT_RPC_GRACE,
            ack_wait: Self::DEFAULT_ACK_WAIT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
            absent_retry: Self::DEFAULT_ABSENT_RETRY,
            push_buffer: Self::DEFAULT_PUSH_BUFFER,
        }
    }
}

/// The channel's state as last seen.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Link {
    /// The current (or last) connection's number; 0 before the first.
    pub generation: u64,
    /// Whether a connection is up.
    pub connected: bool,
    /// Whether this connection's acks offered `rpc-v1`.
    pub rpc_v1: bool,
    /// The runtimes of the connection that is up (empty when none).
    pub runtimes: Vec<RuntimeId>,
    /// Why the last attempt to connect failed.
    pub last_error: Option<Error>,
    /// The server answered `404 page not found`: it has no channel.
    pub absent: bool,
}

/// Why a call over the channel has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsFailure {
    /// The frame was never written (no connection, not negotiated, not
    /// attached, queue full, cancelled while queued): the server did
    /// nothing; do it over HTTP at once.
    #[error("not sent over the control channel ({0})")]
    NotSent(NotSent),
    /// The frame was written and no answer came within the budget and
    /// grace (or the connection dropped): the server may have acted.
    #[error("sent over the control channel, outcome unknown")]
    Uncertain,
}

/// Why a frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotSent {
    /// No connection is up.
    NotConnected,
    /// This connection has not offered `rpc-v1` (yet).
    NotNegotiated,
    /// The runtime is not one of the connection's.
    NotAttached,
    /// The write queue was full.
    QueueFull,
    /// The frame was still queued when the wait ended; it will not be sent.
    Cancelled,
}

impl std::fmt::Display for NotSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotConnected => "not connected",
            Self::NotNegotiated => "rpc-v1 not negotiated on this connection",
            Self::NotAttached => "runtime not attached to this connection",
            Self::QueueFull => "write queue full",
            Self::Cancelled => "cancelled while queued",
        })
    }
}

impl WsFailure {
    /// Whether the server may have acted on the frame.
    pub fn may_have_reached_server(&self) -> bool {
        matches!(self, Self::Uncertain)
    }
}

/// An RPC's answer (WS contract §2.4): decide on `status`, not on `error`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RpcAnswer {
    /// HTTP-style status.
    pub status: u16,
    /// The handler's output (success and handler-level errors alike).
    pub body: Option<Box<RawValue>>,
    /// Set for hub-level failures (unknown method, 429, 503).
    pub error: Option<String>,
}

/// A heartbeat's acknowledgement.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HeartbeatAck {
    /// The runtime is alive: the same answer as the HTTP heartbeat's.
    Alive(Box<HeartbeatResponse>),
    /// The server no longer knows the runtime.
    Gone,
}

/// A cheap handle to the control channel; clones share it. The task that
/// owns the socket ends when the last handle is dropped.
#[derive(Clone)]
pub struct WsChannel {
    handle: Arc<Handle>,
}

struct Handle {
    core: Arc<Core>,
    /// The runtimes to connect for (canonical, sorted): a change reconnects.
    /// Dropping it ends the task.
    runtimes: watch::Sender<Vec<String>>,
}

/// What the handles and the task share.
pub(crate) struct Core {
    config: WsConfig,
    state: Mutex<State>,
    link: watch::Sender<Link>,
    pushes: broadcast::Sender<Push>,
}

#[derive(Default)]
struct State {
    live: Option<Live>,
    /// When each runtime was last acknowledged on the current connection.
    acked: HashMap<String, Instant>,
    /// Heartbeat callers waiting for their runtime's next ack, oldest first.
    waiters: HashMap<String, VecDeque<(u64, oneshot::Sender<frame::Ack>)>>,
    next_waiter: u64,
}

/// The connection that is up.
struct Live {
    generation: u64,
    outbound: mpsc::Sender<Outbound>,
    runtimes: Vec<String>,
    rpc_v1: bool,
    /// The runtime set changed: this connection finishes what is in flight
    /// and takes nothing new.
    draining: bool,
    pending: HashMap<String, oneshot::Sender<frame::RpcResponse>>,
}

/// A frame waiting for the writer.
pub(crate) struct Outbound {
    text: String,
    fate: Arc<Fate>,
}

/// A queued frame's fate, decided once: written by the writer or cancelled
/// by its caller, whichever comes first.
pub(crate) struct Fate(AtomicU8);

const QUEUED: u8 = 0;
const WRITTEN: u8 = 1;
const CANCELLED: u8 = 2;

impl Fate {
    fn new() -> Arc<Self> {
        Arc::new(Self(AtomicU8::new(QUEUED)))
    }

    /// The writer takes the frame; false when it was cancelled.
    pub(crate) fn begin_write(&self) -> bool {
        self.0.compare_exchange(QUEUED, WRITTEN, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The caller gives up; false when the writer already took it.
    fn cancel(&self) -> bool {
        self.0.compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn failure(&self) -> WsFailure {
        if self.cancel() || self.0.load(Ordering::Acquire) == CANCELLED {
            WsFailure::NotSent(NotSent::Cancelled)
        } else {
            WsFailure::Uncertain
        }
    }
}

/// A runtime ID as the server keys its wake-ups: lower case (WS contract
/// §1.2: an upper-case ID never gets a `task_available`).
pub(crate) fn canonical(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

impl WsChannel {
    /// Opens the channel for `runtimes` over `client`'s connections and
    /// headers, with `config`. Spawns the task that owns the socket: call
    /// within a Tokio runtime. Connecting happens in the background; see
    /// [`WsChannel::link`].
    pub fn open(client: &HyperClient, runtimes: impl IntoIterator<Item = RuntimeId>, config: WsConfig) -> Self {
        let (pushes, _) = broadcast::channel(config.push_buffer.max(1));
        let core =
            Arc::new(Core { config, state: Mutex::default(), link: watch::Sender::new(Link::default()), pushes });
        let (runtimes_tx, runtimes_rx) =
            watch::channel(normalized(runtimes.into_iter().map(|id| canonical(id.as_str()))));
        tokio::spawn(conn::run(client.clone(), Arc::clone(&core), runtimes_rx));
        Self { handle: Arc::new(Handle { core, runtimes: runtimes_tx }) }
    }

    /// The channel's configuration.
    pub fn config(&self) -> &WsConfig {
        &self.handle.core.config
    }

    /// Tells every reader of the pushes to catch up ([`Push::Lagged`]).
    pub(crate) fn hint_catch_up(&self) {
        self.handle.core.push(Push::Lagged);
    }

    /// The channel's state now.
    pub fn link(&self) -> Link {
        self.handle.core.link.borrow().clone()
    }

    /// The channel's state, to wait for a change (`changed`, `wait_for`).
    pub fn link_changes(&self) -> watch::Receiver<Link> {
        self.handle.core.link.subscribe()
    }

    /// The server's pushes from now on, with [`Push::Connected`] and
    /// [`Push::Disconnected`] for each connection and [`Push::Lagged`] when
    /// this reader fell behind. Each call is an independent reader.
    pub fn pushes(&self) -> Pushes {
        let receiver = self.handle.core.pushes.subscribe();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(push) => Some((push, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Push::Lagged, receiver)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Pushes { inner: Box::pin(stream) }
    }

    /// The runtimes the channel connects for (canonical, sorted).
    pub fn runtimes(&self) -> Vec<RuntimeId> {
        self.handle.runtimes.borrow().iter().map(|id| RuntimeId::new(id.clone())).collect()
    }

    /// Connects for exactly `runtimes` from now on: a different set
    /// reconnects at once (the set is fixed per connection).
    pub fn set_runtimes(&self, runtimes: impl IntoIterator<Item = RuntimeId>) {
        let wanted = normalized(runtimes.into_iter().map(|id| canonical(id.as_str())));
        self.handle.runtimes.send_if_modified(|current| {
            let changed = *current != wanted;
            *current = wanted;
            changed
        });
    }

    /// Adds runtimes to the set (reconnecting if any is new).
    pub fn add_runtimes<'a>(&self, runtimes: impl IntoIterator<Item = &'a RuntimeId>) {
        let added: Vec<String> = runtimes.into_iter().map(|id| canonical(id.as_str())).collect();
        self.handle.runtimes.send_if_modified(|current| {
            let before = current.len();
            let merged = normalized(current.drain(..).chain(added));
            *current = merged;
            current.len() != before
        });
    }

    /// Removes runtimes from the set (reconnecting if any was in it).
    pub fn remove_runtimes<'a>(&self, runtimes: impl IntoIterator<Item = &'a RuntimeId>) {
        let removed: Vec<String> = runtimes.into_iter().map(|id| canonical(id.as_str())).collect();
        self.handle.runtimes.send_if_modified(|current| {
            let before = current.len();
            current.retain(|id| !removed.contains(id));
            current.len() != before
        });
    }

    /// Removes runtimes from the set and waits (at most the write timeout)
    /// until no connection holds them any more, so the channel sends
    /// nothing more for them: call it before deregistering them, or a
    /// heartbeat of a connection still holding them could bring them back
    /// online.
    pub async fn release(&self, runtimes: &[RuntimeId]) {
        self.remove_runtimes(runtimes);
        let released: Vec<String> = runtimes.iter().map(|id| canonical(id.as_str())).collect();
        let mut link = self.link_changes();
        let held = |link: &Link| link.runtimes.iter().any(|id| released.contains(&canonical(id.as_str())));
        let _ = tokio::time::timeout(self.config().write_timeout, link.wait_for(|link| !held(link))).await;
    }

    /// Whether `runtime` was acknowledged on the current connection within
    /// `within` (the Go daemon skips the HTTP heartbeat of a runtime acked
    /// within two heartbeat intervals).
    pub fn acked_within(&self, runtime: &RuntimeId, within: Duration) -> bool {
        let state = self.handle.core.lock();
        state.acked.get(&canonical(runtime.as_str())).is_some_and(|at| at.elapsed() <= within)
    }

    /// Sends one heartbeat of `runtime` and waits up to
    /// [`WsConfig::ack_wait`] for its acknowledgement.
    pub async fn heartbeat(&self, runtime: &RuntimeId, supports_batch_import: bool) -> Result<HeartbeatAck, WsFailure> {
        let core = &self.handle.core;
        let id = canonical(runtime.as_str());
        let fate = Fate::new();
        let (answer, answered) = oneshot::channel();
        let token = {
            let mut state = core.lock();
            let live = state.live.as_ref().ok_or(WsFailure::NotSent(NotSent::NotConnected))?;
            if !live.runtimes.contains(&id) {
                return Err(WsFailure::NotSent(NotSent::NotAttached));
            }
            let text = frame::heartbeat(&id, supports_batch_import);
            live.outbound
                .try_send(Outbound { text, fate: Arc::clone(&fate) })
                .map_err(|_| WsFailure::NotSent(NotSent::QueueFull))?;
            state.next_waiter += 1;
            let token = state.next_waiter;
            state.waiters.entry(id.clone()).or_default().push_back((token, answer));
            token
        };
        let guard = Waiting { core, on_drop: Some(Leave::Heartbeat { runtime: id, token }), fate: &fate };
        match tokio::time::timeout(core.config.ack_wait, answered).await {
            Ok(Ok(ack)) => {
                guard.disarm();
                Ok(if ack.is_gone() {
                    HeartbeatAck::Gone
                } else {
                    HeartbeatAck::Alive(Box::new(ack.into_heartbeat_response()))
                })
            }
            _ => Err(guard.fail()),
        }
    }

    /// Calls `method` with `body` under the server-side budget
    /// ([`WsConfig::rpc_budget`]) and waits the budget plus the grace.
    /// Sent only when this connection negotiated `rpc-v1`.
    pub async fn rpc(&self, method: &str, body: &RawValue) -> Result<RpcAnswer, WsFailure> {
        let core = &self.handle.core;
        let request_id = request_id();
        let fate = Fate::new();
        let (answer, answered) = oneshot::channel();
        {
            let mut state = core.lock();
            let live = state.live.as_mut().ok_or(WsFailure::NotSent(NotSent::NotConnected))?;
            if !live.rpc_v1 {
                return Err(WsFailure::NotSent(NotSent::NotNegotiated));
            }
            let budget_ms = u64::try_from(core.config.rpc_budget.as_millis()).unwrap_or(u64::MAX).max(1);
            let text = frame::rpc_request(&request_id, method, body, budget_ms);
            live.outbound
                .try_send(Outbound { text, fate: Arc::clone(&fate) })
                .map_err(|_| WsFailure::NotSent(NotSent::QueueFull))?;
            live.pending.insert(request_id.clone(), answer);
        }
        let guard = Waiting { core, on_drop: Some(Leave::Rpc { request_id }), fate: &fate };
        let wait = core.config.rpc_budget + core.config.rpc_grace;
        match tokio::time::timeout(wait, answered).await {
            Ok(Ok(response)) => {
                guard.disarm();
                Ok(RpcAnswer { status: response.status, body: response.body, error: response.error })
            }
            _ => Err(guard.fail()),
        }
    }
}

impl std::fmt::Debug for WsChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsChannel")
            .field("runtimes", &*self.handle.runtimes.borrow())
            .field("link", &*self.handle.core.link.borrow())
            .finish()
    }
}

/// Sorted, deduplicated, without empties.
fn normalized(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.into_iter().filter(|id| !id.is_empty()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A random version-4 UUID, as the Go daemon's request IDs.
fn request_id() -> String {
    let (high, low) = (backoff::random_u64(), backoff::random_u64());
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// What a caller that stops waiting must take back.
enum Leave {
    Heartbeat { runtime: String, token: u64 },
    Rpc { request_id: String },
}

/// Takes a caller's entry back out of the state, and cancels its frame if
/// still queued, when the caller stops waiting for any reason (timeout, a
/// dropped future).
struct Waiting<'a> {
    core: &'a Core,
    on_drop: Option<Leave>,
    fate: &'a Fate,
}

impl Waiting<'_> {
    fn disarm(mut self) {
        self.on_drop = None;
    }

    fn fail(mut self) -> WsFailure {
        self.leave();
        self.fate.failure()
    }

    fn leave(&mut self) {
        let Some(leave) = self.on_drop.take() else { return };
        let mut state = self.core.lock();
        match leave {
            Leave::Heartbeat { runtime, token } => {
                if let Some(queue) = state.waiters.get_mut(&runtime) {
                    queue.retain(|(waiting, _)| *waiting != token);
                }
            }
            Leave::Rpc { request_id } => {
                if let Some(live) = state.live.as_mut() {
                    live.pending.remove(&request_id);
                }
            }
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.on_drop.is_some() {
            self.leave();
            self.fate.cancel();
        }
    }
}

impl Core {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, push: Push) {
        // No reader is no error: pushes are hints.
        let _ = self.pushes.send(push);
    }
}

/// The server's pushes: a `Stream` of [`Push`] (see [`WsChannel::pushes`]).
pub struct Pushes {
    inner: Pin<Box<dyn Stream<Item = Push> + Send>>,
}

impl Pushes {
    /// The next push; `None` once the channel is gone. The same as
    /// `StreamExt::next`, without needing futures-util.
    pub async fn recv(&mut self) -> Option<Push> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await
    }
}

impl Stream for Pushes {
    type Item = Push;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Push>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for Pushes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pushes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn a_frame_is_written_or_cancelled_never_both() {
        let fate = Fate::new();
        assert!(fate.begin_write());
        assert!(!fate.cancel());
        assert_eq!(fate.failure(), WsFailure::Uncertain);
        let fate = Fate::new();
        assert!(fate.cancel());
        assert!(!fate.begin_write());
        assert_eq!(fate.failure(), WsFailure::NotSent(NotSent::Cancelled));
    }

    #[test]
    fn runtime_sets_are_canonical() {
        assert_eq!(canonical(" ABC-d "), "abc-d");
        assert_eq!(normalized(["b".into(), "a".into(), "b".into(), String::new()]), ["a", "b"]);
    }
}
