//! The one task that owns the socket: dials, reads every frame, writes the
//! queue, and tears down and reconnects (WS contract §6, §7).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use multica_api::{Push, RuntimeId, TaskId, WorkspaceId};
use tokio::sync::{mpsc, watch};
use tokio::time::{self, Instant};
use tokio_tungstenite::tungstenite::Message;

use super::backoff::{self, Backoff};
use super::dial::{self, Socket};
use super::frame::{self, ServerFrame};
use super::{canonical, Core, Live, Outbound};
use crate::HyperClient;

/// Why a connection ended.
enum End {
    /// Every handle was dropped.
    Closed,
    /// The runtime set changed: reconnect at once.
    RuntimesChanged,
    /// Read or write failed, the server closed, or it went silent.
    Lost,
}

/// Connects, serves, reconnects, until every handle is dropped.
pub(crate) async fn run(client: HyperClient, core: Arc<Core>, mut runtimes: watch::Receiver<Vec<String>>) {
    let mut backoff = Backoff::new();
    let mut generation = 0u64;
    loop {
        let wanted = runtimes.borrow_and_update().clone();
        let dialed = tokio::select! {
            dialed = dial::dial(&client, &wanted, core.config.handshake_timeout) => dialed,
            changed = runtimes.changed() => {
                if changed.is_err() {
                    return;
                }
                backoff.reset();
                continue;
            }
        };
        let wait = match dialed {
            Ok(socket) => {
                generation += 1;
                let up_since = Instant::now();
                match serve(&core, socket, generation, wanted, &mut runtimes).await {
                    End::Closed => return,
                    End::RuntimesChanged => {
                        backoff.reset();
                        continue;
                    }
                    End::Lost => {
                        if up_since.elapsed() >= backoff::RESET_AFTER {
                            backoff.reset();
                        }
                        backoff.next_delay()
                    }
                }
            }
            Err(error) => {
                let absent = error.is_route_not_found();
                core.link.send_modify(|link| {
                    link.last_error = Some(error);
                    link.absent = absent;
                });
                if absent {
                    core.config.absent_retry
                } else {
                    backoff.next_delay()
                }
            }
        };
        tokio::select! {
            () = time::sleep(wait) => {}
            changed = runtimes.changed() => {
                if changed.is_err() {
                    return;
                }
                backoff.reset();
            }
        }
    }
}

/// One connection, from attach to teardown.
async fn serve(
    core: &Arc<Core>,
    mut socket: Socket,
    generation: u64,
    attached: Vec<String>,
    runtimes: &mut watch::Receiver<Vec<String>>,
) -> End {
    // The Go daemon's queue: room for a heartbeat per runtime and claims.
    let (outbound, mut queue) = mpsc::channel::<Outbound>((2 * attached.len()).max(16));
    {
        let mut state = core.lock();
        state.acked.clear();
        state.live = Some(Live {
            generation,
            outbound,
            runtimes: attached.clone(),
            rpc_v1: false,
            draining: false,
            pending: Default::default(),
        });
    }
    core.link.send_modify(|link| {
        let runtimes = attached.iter().map(|id| RuntimeId::new(id.clone())).collect();
        *link = super::Link { generation, connected: true, runtimes, ..super::Link::default() };
    });
    core.push(Push::Connected { generation });

    let config = &core.config;
    // The set changed while dialling: leave before heartbeating runtimes
    // that may be on their way out (`WsChannel::release` waits for this).
    let mut end = match runtimes.has_changed() {
        Ok(false) => None,
        Ok(true) => Some(End::RuntimesChanged),
        Err(_) => Some(End::Closed),
    };
    // A heartbeat per runtime at once: liveness, pending requests, and the
    // ack that may offer rpc-v1 on this connection.
    for runtime in attached.iter().filter(|_| end.is_none()) {
        if write(&mut socket, frame::heartbeat(runtime, true), config.write_timeout).await.is_err() {
            end = Some(End::Lost);
            break;
        }
    }
    let mut last_heard = Instant::now();
    // After a runtime-set change: until when answers in flight may still
    // come before this connection closes (closing now would make our own
    // claim uncertain and hold every claim for nothing).
    let mut draining_until: Option<Instant> = None;
    while end.is_none() {
        if let Some(until) = draining_until {
            if Instant::now() >= until || !core.has_pending(generation) {
                end = Some(End::RuntimesChanged);
                break;
            }
        }
        tokio::select! {
            // Cancel-safe: a message is never half-read when another branch wins.
            message = socket.next() => match message {
                Some(Ok(message)) => {
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => on_frame(core, generation, text.as_bytes()),
                        // The server reads binary JSON as text; accept the same.
                        Message::Binary(bytes) => on_frame(core, generation, &bytes),
                        // tungstenite queues the pong and flushes it on the next read.
                        Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {}
                    }
                }
                Some(Err(_)) | None => end = Some(End::Lost),
            },
            Some(frame) = queue.recv() => {
                // A frame its caller gave up on is never sent late.
                if frame.fate.begin_write()
                    && write(&mut socket, frame.text, config.write_timeout).await.is_err()
                {
                    end = Some(End::Lost);
                }
            }
            () = time::sleep_until(last_heard + config.idle_timeout) => end = Some(End::Lost),
            () = time::sleep_until(draining_until.unwrap_or(last_heard)), if draining_until.is_some() => {}
            changed = runtimes.changed(), if draining_until.is_none() => match changed {
                Err(_) => end = Some(End::Closed),
                Ok(()) => {
                    core.drain(generation);
                    draining_until = Some(Instant::now() + config.rpc_budget + config.rpc_grace);
                }
            },
        }
    }
    // Close the socket first, then fail what is pending: a frame still
    // queued can no longer be written, so its caller's cancel wins and it
    // learns "not sent"; one already written is "uncertain".
    drop(socket);
    queue.close();
    while queue.try_recv().is_ok() {}
    {
        let mut state = core.lock();
        if state.live.as_ref().is_some_and(|live| live.generation == generation) {
            state.live = None;
        }
        state.acked.clear();
        // Heartbeat callers fall back to HTTP now rather than at their timeout.
        state.waiters.clear();
    }
    core.link.send_modify(|link| {
        if link.generation == generation {
            link.connected = false;
            link.rpc_v1 = false;
            link.runtimes.clear();
        }
    });
    core.push(Push::Disconnected { generation });
    end.unwrap_or(End::Lost)
}

async fn write(socket: &mut Socket, text: String, limit: std::time::Duration) -> Result<(), ()> {
    match time::timeout(limit, socket.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

impl Core {
    /// Whether RPCs of connection `generation` wait for answers.
    fn has_pending(&self, generation: u64) -> bool {
        self.lock().live.as_ref().is_some_and(|live| live.generation == generation && !live.pending.is_empty())
    }

    /// Connection `generation` takes no new work (RPCs and heartbeats go
    /// elsewhere, as not sent) and holds no runtime any more.
    fn drain(&self, generation: u64) {
        {
            let mut state = self.lock();
            if let Some(live) = state.live.as_mut().filter(|live| live.generation == generation) {
                live.rpc_v1 = false;
                live.draining = true;
                live.runtimes.clear();
            }
        }
        self.link.send_modify(|link| {
            if link.generation == generation {
                link.rpc_v1 = false;
                link.runtimes.clear();
            }
        });
    }
}

/// Applies one server message read on connection `generation`.
fn on_frame(core: &Core, generation: u64, bytes: &[u8]) {
    let Some(frame) = frame::decode(bytes) else { return };
    match frame {
        ServerFrame::Ack(mut ack) => {
            if ack.runtime_id.is_empty() {
                return;
            }
            ack.runtime_id = canonical(&ack.runtime_id);
            on_ack(core, generation, ack);
        }
        ServerFrame::RpcResponse(response) => {
            let mut state = core.lock();
            // Unknown IDs (timed out, or of another connection) are dropped.
            let waiting = state
                .live
                .as_mut()
                .filter(|live| live.generation == generation)
                .and_then(|live| live.pending.remove(&response.request_id));
            if let Some(waiting) = waiting {
                let _ = waiting.send(response);
            }
        }
        ServerFrame::TaskAvailable { runtime_id, task_id } => core.push(Push::TaskAvailable {
            runtime_id: RuntimeId::new(canonical(&runtime_id)),
            task_id: task_id.map(TaskId::new),
        }),
        ServerFrame::PendingWork { runtime_id, kind } => {
            core.push(Push::PendingWork { runtime_id: RuntimeId::new(canonical(&runtime_id)), kind });
        }
        ServerFrame::RuntimeProfilesChanged { workspace_id, runtime_profile_id } => {
            core.push(Push::RuntimeProfilesChanged {
                workspace_id: WorkspaceId::new(workspace_id),
                runtime_profile_id: runtime_profile_id.map(Into::into),
            });
        }
        ServerFrame::WorkspacesChanged => core.push(Push::WorkspacesChanged),
    }
}

fn on_ack(core: &Core, generation: u64, ack: frame::Ack) {
    let mut negotiated = false;
    let unclaimed = {
        let mut state = core.lock();
        let Some(live) = state.live.as_mut().filter(|live| live.generation == generation) else {
            // A stale connection's ack enables nothing.
            return;
        };
        if !ack.is_gone() && ack.offers_rpc() && !live.rpc_v1 && !live.draining {
            live.rpc_v1 = true;
            negotiated = true;
        }
        if ack.is_gone() {
            state.acked.remove(&ack.runtime_id);
        } else {
            state.acked.insert(ack.runtime_id.clone(), Instant::now());
        }
        let waiter = state.waiters.get_mut(&ack.runtime_id).and_then(|queue| queue.pop_front());
        match waiter {
            Some((_, waiter)) => waiter.send(ack).err(),
            None => Some(ack),
        }
    };
    if negotiated {
        core.link.send_modify(|link| {
            if link.generation == generation {
                link.rpc_v1 = true;
            }
        });
    }
    // An ack nobody waited for must not lose what it hands out (hazard H8).
    if let Some(ack) = unclaimed {
        let runtime_id = RuntimeId::new(ack.runtime_id.clone());
        if ack.is_gone() {
            core.push(Push::RuntimeGone { runtime_id });
        } else if ack.has_requests() {
            core.push(Push::PendingRequests { runtime_id, answer: Box::new(ack.into_heartbeat_response()) });
        }
    }
}
