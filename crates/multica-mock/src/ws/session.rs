//! One upgraded connection (WS contract §2-§4, §6): frames in (64 KiB at
//! most), heartbeats answered in order on the read loop, RPCs each on a
//! task of their own (8 at a time), the send queue written out, a ping
//! every 54 s and the read deadline that only a pong extends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use multica_api::{go_json, Call, HeartbeatRequest};

use super::hub::{frame, Outbound, Registration};
use super::{MAX_IN_FLIGHT_RPC, PING_PERIOD, PONG_WAIT, READ_LIMIT, SERVER_CAPABILITIES, WRITE_WAIT};
use crate::log::Transport;
use crate::state::{Caller, ChannelHeartbeat, Identity, Reply};
use crate::MockDaemon;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Messages read in a row before queued frames get their turn.
const READS_BEFORE_WRITES: u32 = 32;

/// Who is on the other end, fixed at connect.
pub(super) struct Peer {
    /// The runtime IDs as sent (a heartbeat must name one exactly).
    pub(super) runtime_ids: Vec<String>,
    pub(super) identity: Identity,
    /// The handshake's `X-Client-Capabilities`, replayed on every claim.
    pub(super) capabilities: Option<String>,
}

/// How a connection ends.
enum End {
    /// The server tears it down: an empty close frame, then the socket.
    Teardown,
    /// The socket is just closed (peer gone, write failure, injected fault).
    Drop,
    /// The client closed: its code echoed with an empty reason.
    Echo(Option<u16>),
    /// A frame the server refuses (1009 too big, 1002 protocol error).
    Refuse(CloseCode),
}

/// Serves the connection until it ends; unregisters it then.
pub(super) async fn run(mock: MockDaemon, upgraded: Upgraded, registration: Registration, peer: Peer) {
    let Registration { id, outbox, mut inbox, close } = registration;
    let hub = Arc::clone(&mock.lock().hub);
    let config = WebSocketConfig::default().max_message_size(Some(READ_LIMIT)).max_frame_size(Some(READ_LIMIT));
    let mut socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let channel = Channel { mock, peer: Arc::new(peer), outbox, in_flight: Arc::new(AtomicUsize::new(0)) };
    // An RPC whose armed fault drops the connection says so here.
    let (drop_tx, mut drop_rx) = mpsc::channel::<()>(1);
    let connected = Instant::now();
    let mut read_deadline = connected + PONG_WAIT;
    let mut ping = tokio::time::interval_at(connected + PING_PERIOD, PING_PERIOD);
    let mut reads_in_a_row = 0;
    let end = loop {
        tokio::select! {
            biased;
            () = close.notified() => break End::Teardown,
            _ = drop_rx.recv() => break End::Drop,
            () = tokio::time::sleep_until(read_deadline) => break End::Teardown,
            // Frames already here are read before answers are written, as
            // the server's reader and writer run side by side: nine RPCs in
            // one write are nine in flight. A flood still lets writes through.
            message = socket.next(), if reads_in_a_row < READS_BEFORE_WRITES => {
                reads_in_a_row += 1;
                match message {
                    Some(Ok(Message::Text(text))) => channel.handle(text.as_bytes(), &drop_tx),
                    // The server does not look at the opcode: JSON is JSON.
                    Some(Ok(Message::Binary(data))) => channel.handle(&data, &drop_tx),
                    Some(Ok(Message::Pong(_))) => read_deadline = Instant::now() + PONG_WAIT,
                    // Pings are answered by the protocol layer.
                    Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => break End::Echo(frame.map(|f| u16::from(f.code))),
                    Some(Err(WsError::Capacity(_))) => break End::Refuse(CloseCode::Size),
                    Some(Err(WsError::Protocol(_))) => break End::Refuse(CloseCode::Protocol),
                    Some(Err(_)) | None => break End::Drop,
                }
            }
            queued = inbox.recv() => {
                reads_in_a_row = 0;
                let Some(Outbound { text, rpc }) = queued else { break End::Drop };
                let written = write(&mut socket, Message::text(text)).await;
                if rpc {
                    channel.in_flight.fetch_sub(1, Ordering::SeqCst);
                }
                if written.is_err() {
                    break End::Drop;
                }
            }
            // Nothing queued after a run of reads: read on.
            () = std::future::ready(()), if reads_in_a_row >= READS_BEFORE_WRITES => reads_in_a_row = 0,
            _ = ping.tick() => {
                reads_in_a_row = 0;
                if write(&mut socket, Message::Ping(Bytes::new())).await.is_err() {
                    break End::Drop;
                }
            }
        }
    };

    hub.unregister(id);
    match end {
        End::Teardown => {
            let _ = write(&mut socket, Message::Close(None)).await;
        }
        End::Refuse(code) => {
            let _ = write(&mut socket, Message::Close(Some(CloseFrame { code, reason: "".into() }))).await;
        }
        End::Echo(code) => {
            // The protocol layer would echo the client's reason too; the
            // server echoes the code alone, written here by hand.
            let mut bytes = vec![0x88, 0];
            if let Some(code) = code {
                bytes[1] = 2;
                bytes.extend_from_slice(&code.to_be_bytes());
            }
            let io = socket.get_mut();
            let _ = tokio::time::timeout(WRITE_WAIT, async {
                io.write_all(&bytes).await?;
                io.shutdown().await
            })
            .await;
        }
        End::Drop => {}
    }
}

/// Sends one message within the write deadline.
async fn write(socket: &mut Socket, message: Message) -> Result<(), ()> {
    match tokio::time::timeout(WRITE_WAIT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// What a frame's handlers share.
struct Channel {
    mock: MockDaemon,
    peer: Arc<Peer>,
    outbox: mpsc::Sender<Outbound>,
    in_flight: Arc<AtomicUsize>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    payload: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RpcRequest {
    request_id: String,
    method: String,
    body: Value,
    timeout_ms: i64,
}

impl Channel {
    /// One message from the client; anything the server cannot use is
    /// dropped silently (§2.5).
    fn handle(&self, data: &[u8], drop_tx: &mpsc::Sender<()>) {
        let Ok(envelope) = go_json::from_body::<Envelope>(data) else { return };
        let Ok(payload) = serde_json::to_vec(&envelope.payload) else { return };
        match envelope.kind.as_str() {
            "daemon:heartbeat" => {
                if let Ok(request) = go_json::from_body::<HeartbeatRequest>(&payload) {
                    self.heartbeat(&request);
                }
            }
            "daemon:rpc_request" => {
                if let Ok(request) = go_json::from_body::<RpcRequest>(&payload) {
                    self.rpc(request, drop_tx);
                }
            }
            _ => {}
        }
    }

    /// Answered on the read loop, in order; no ack for a runtime the
    /// connection does not hold (as sent) or may no longer reach.
    fn heartbeat(&self, request: &HeartbeatRequest) {
        let sent = request.runtime_id.as_str();
        if sent.is_empty() || !self.peer.runtime_ids.iter().any(|r| r == sent) {
            return;
        }
        let ack = {
            let mut state = self.mock.lock();
            state.log_call(Call::SendHeartbeatWith(request.clone()), Transport::Ws);
            let caller = Caller { capabilities: self.peer.capabilities.as_deref(), ..Caller::default() };
            state.channel_heartbeat(request, &self.peer.identity, caller)
        };
        let payload = match ack {
            ChannelHeartbeat::Silent => return,
            ChannelHeartbeat::Gone => json!({ "runtime_id": sent, "status": "runtime_gone", "runtime_gone": true }),
            ChannelHeartbeat::Ack(id, answer) => {
                let mut payload = serde_json::to_value(answer).unwrap_or_else(|_| json!({}));
                if let Some(object) = payload.as_object_mut() {
                    object.insert("runtime_id".into(), json!(id));
                    object.insert("status".into(), json!("ok"));
                    object.insert("server_capabilities".into(), json!(SERVER_CAPABILITIES));
                }
                payload
            }
        };
        // A full send queue drops the ack (the pending requests it carried
        // are lost until they time out, as on the server).
        let _ = self.outbox.try_send(Outbound::frame(frame("daemon:heartbeat_ack", payload)));
    }

    /// Each RPC on a task of its own; the ninth at once gets 429.
    fn rpc(&self, request: RpcRequest, drop_tx: &mpsc::Sender<()>) {
        if request.request_id.is_empty() {
            return;
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT_RPC {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let answer = rpc_error(&request.request_id, 429, "too many in-flight rpc requests");
            let _ = self.outbox.try_send(Outbound::frame(answer));
            return;
        }
        let (mock, peer, outbox, in_flight) =
            (self.mock.clone(), Arc::clone(&self.peer), self.outbox.clone(), Arc::clone(&self.in_flight));
        let drop_tx = drop_tx.clone();
        tokio::spawn(async move {
            let answer = match request.method.as_str() {
                "tasks.claim" => claim(&mock, &peer, &request, &drop_tx).await,
                method => {
                    let message = format!("unknown rpc method {}", json!(method));
                    Some(rpc_error(&request.request_id, 404, &message))
                }
            };
            // The slot is freed once the answer is written (or dropped).
            let queued = answer.is_some_and(|text| {
                // Dropped when the queue is full: the caller's timeout decides.
                outbox.try_send(Outbound { text, rpc: true }).is_ok()
            });
            if !queued {
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
}

/// A hub-level failure: `status` and `error`, no `body`.
fn rpc_error(request_id: &str, status: u16, error: &str) -> String {
    frame("daemon:rpc_response", json!({ "request_id": request_id, "status": status, "error": error }))
}

/// A handler's answer: `status` and `body`.
fn rpc_answer(request_id: &str, status: u16, body: Value) -> String {
    frame("daemon:rpc_response", json!({ "request_id": request_id, "status": status, "body": body }))
}

/// `tasks.claim`: the HTTP batch claim run as the connection's identity
/// with the handshake's capabilities, within `timeout_ms` when given.
/// `None`: no answer (an armed fault dropped the connection).
async fn claim(mock: &MockDaemon, peer: &Peer, request: &RpcRequest, drop_tx: &mpsc::Sender<()>) -> Option<String> {
    let hub = Arc::clone(&mock.lock().hub);
    let (delay, drop_after) = hub.take_claim_faults();
    let work = async {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let body = match &request.body {
            Value::Null => b"{}".to_vec(),
            body => serde_json::to_vec(body).unwrap_or_default(),
        };
        let Ok(call) = Call::decode("POST", multica_api::Endpoint::ClaimTasks.template(), &body) else {
            return (400, json!({ "error": "invalid request body" }));
        };
        let mut state = mock.lock();
        state.log_call(call.clone(), Transport::Ws);
        let caller = Caller { capabilities: peer.capabilities.as_deref(), ..Caller::default() };
        match state.apply_head_as(&call, &peer.identity, caller) {
            Ok(Reply::Api(reply)) => match crate::server::api_reply_json(&reply) {
                Some(body) => (200, body),
                None => (500, json!({ "error": "internal error" })),
            },
            Ok(_) => (500, json!({ "error": "internal error" })),
            Err(rejection) => (rejection.status, json!({ "error": rejection.message })),
        }
    };
    let budget = u64::try_from(request.timeout_ms).ok().filter(|ms| *ms > 0).map(std::time::Duration::from_millis);
    let (status, body) = match budget {
        Some(budget) => match tokio::time::timeout(budget, work).await {
            Ok(answer) => answer,
            Err(_) => {
                (500, json!({ "error": "failed to claim tasks: promote deferred tasks: context deadline exceeded" }))
            }
        },
        None => work.await,
    };
    if drop_after {
        let _ = drop_tx.try_send(());
        return None;
    }
    Some(rpc_answer(&request.request_id, status, body))
}
