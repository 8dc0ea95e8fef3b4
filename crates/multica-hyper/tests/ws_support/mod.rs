//! A small daemon WebSocket server on 127.0.0.1 that follows WS-CONTRACT
//! where a client can tell (handshake, acks, `rpc-v1`, `tasks.claim`,
//! pushes, pings), scripted per test, plus an in-process HTTP backend that
//! records what fell back to it.
#![allow(dead_code, clippy::unwrap_used, clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use multica_api::{async_trait, Call, DaemonApi, Error, HeartbeatResponse, RegisterResponse, Reply, Result, Runtime};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// How the server answers `tasks.claim`.
#[derive(Clone, Debug)]
pub enum ClaimMode {
    /// 200 with this body.
    Answer(Value),
    /// This status with this body (a handler error).
    Status(u16, Value),
    /// Close the connection once the frame is read (the answer is lost).
    Drop,
    /// Never answer.
    Silent,
    /// Answer 200 with this body after a delay.
    Late(Duration, Value),
    /// 200 with a body that is not a claim answer.
    Garbage,
}

/// What the server does; tests change it between steps.
#[derive(Clone, Debug)]
pub struct Script {
    /// Refuse the upgrade with this status and body.
    pub refuse: Option<(u16, String)>,
    /// Acks offer `rpc-v1`.
    pub rpc_v1: bool,
    /// Acks are sent at all.
    pub acks: bool,
    pub claim: ClaimMode,
    /// Runtimes whose ack says `runtime_gone`.
    pub gone: HashSet<String>,
    /// The next ack carries this `pending_model_list` ID.
    pub model_list: Option<String>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            refuse: None,
            rpc_v1: true,
            acks: true,
            claim: ClaimMode::Answer(json!({"tasks": []})),
            gone: HashSet::new(),
            model_list: None,
        }
    }
}

/// Something the server saw.
#[derive(Clone, Debug)]
pub enum Seen {
    /// An upgrade request (refused or not): its URI and headers.
    Handshake {
        uri: String,
        headers: HashMap<String, String>,
        at: Instant,
    },
    /// A text frame on connection `conn` (numbered from 1).
    Frame {
        conn: usize,
        value: Value,
    },
    Pong {
        conn: usize,
    },
    /// A late RPC answer was written.
    LateSent,
    Closed {
        conn: usize,
    },
}

enum Command {
    Send(String),
    SendLate(String),
    Ping,
    Close,
}

struct Shared {
    script: Mutex<Script>,
    seen: mpsc::UnboundedSender<Seen>,
    conns: Mutex<Vec<mpsc::UnboundedSender<Command>>>,
}

pub struct WsServer {
    pub url: String,
    shared: Arc<Shared>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WsServer {
    pub async fn start(script: Script) -> Self {
        Self::start_with(script, |stream| async move { Some(stream) }).await
    }

    /// A server whose connections first go through `accept` (a TLS
    /// handshake, say); its URL is `http://…` (callers swap the scheme).
    pub async fn start_with<S, F>(script: Script, accept: impl Fn(tokio::net::TcpStream) -> F + Send + 'static) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        F: std::future::Future<Output = Option<S>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { script: Mutex::new(script), seen: seen_tx, conns: Mutex::default() });
        let accepting = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (shared, accepted) = (Arc::clone(&accepting), accept(stream));
                connections.spawn(async move {
                    if let Some(stream) = accepted.await {
                        serve(shared, stream).await;
                    }
                });
            }
        });
        Self { url, shared, seen, task }
    }

    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.shared.script.lock().unwrap());
    }

    /// Sends a text frame on every open connection.
    pub fn push(&self, frame: Value) {
        self.each(|| Command::Send(frame.to_string()));
    }

    pub fn ping(&self) {
        self.each(|| Command::Ping);
    }

    /// Drops every connection (no close frame), as a dying server.
    pub fn drop_connections(&self) {
        self.each(|| Command::Close);
    }

    fn each(&self, command: impl Fn() -> Command) {
        for conn in self.shared.conns.lock().unwrap().iter() {
            let _ = conn.send(command());
        }
    }

    /// The next thing seen that `pick` accepts, within 10 s.
    pub async fn next<T>(&mut self, mut pick: impl FnMut(&Seen) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .expect("the server saw it in time")
                .expect("the server runs");
            if let Some(found) = pick(&seen) {
                return found;
            }
        }
    }

    pub async fn next_frame(&mut self, kind: &str) -> (usize, Value) {
        self.next(|seen| match seen {
            Seen::Frame { conn, value } if value["type"] == kind => Some((*conn, value.clone())),
            _ => None,
        })
        .await
    }

    pub async fn next_handshake(&mut self) -> (String, HashMap<String, String>, Instant) {
        self.next(|seen| match seen {
            Seen::Handshake { uri, headers, at } => Some((uri.clone(), headers.clone(), *at)),
            _ => None,
        })
        .await
    }

    /// Everything seen so far, without waiting.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut all = Vec::new();
        while let Ok(seen) = self.seen.try_recv() {
            all.push(seen);
        }
        all
    }
}

async fn serve<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let refuse = shared.script.lock().unwrap().refuse.clone();
    let seen = shared.seen.clone();
    let check = |request: &Request, response: Response| -> std::result::Result<Response, ErrorResponse> {
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
            .collect();
        let _ = seen.send(Seen::Handshake { uri: request.uri().to_string(), headers, at: Instant::now() });
        match refuse {
            Some((status, body)) => {
                let mut refusal = ErrorResponse::new(Some(body));
                *refusal.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Err(refusal)
            }
            None => Ok(response),
        }
    };
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config)).await else {
        return;
    };
    let (commands, mut inbox) = mpsc::unbounded_channel();
    let conn = {
        let mut conns = shared.conns.lock().unwrap();
        conns.push(commands.clone());
        conns.len()
    };
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                    // Recorded and answered under one lock: a script change
                    // between the two would blur which frame it applies to.
                    let answered = {
                        let mut script = shared.script.lock().unwrap();
                        let _ = shared.seen.send(Seen::Frame { conn, value: value.clone() });
                        answer(&mut script, &value, &commands)
                    };
                    match answered {
                        Answer::Send(frame) => {
                            if socket.send(Message::text(frame)).await.is_err() {
                                break;
                            }
                        }
                        Answer::Nothing => {}
                        Answer::Drop => break,
                    }
                }
                Some(Ok(Message::Pong(_))) => {
                    let _ = shared.seen.send(Seen::Pong { conn });
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            Some(command) = inbox.recv() => match command {
                Command::Send(text) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Command::SendLate(text) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break;
                    }
                    let _ = shared.seen.send(Seen::LateSent);
                }
                Command::Ping => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        break;
                    }
                }
                Command::Close => break,
            },
        }
    }
    let _ = shared.seen.send(Seen::Closed { conn });
}

enum Answer {
    Send(String),
    Nothing,
    Drop,
}

fn answer(script: &mut Script, frame: &Value, commands: &mpsc::UnboundedSender<Command>) -> Answer {
    let payload = &frame["payload"];
    match frame["type"].as_str() {
        Some("daemon:heartbeat") if script.acks => {
            let runtime_id = payload["runtime_id"].as_str().unwrap_or_default().to_owned();
            let ack = if script.gone.contains(&runtime_id) {
                json!({"runtime_id": runtime_id, "status": "runtime_gone", "runtime_gone": true})
            } else {
                let mut ack = json!({"runtime_id": runtime_id.to_ascii_lowercase(), "status": "ok"});
                if script.rpc_v1 {
                    ack["server_capabilities"] = json!(["rpc-v1"]);
                }
                if let Some(id) = script.model_list.take() {
                    ack["pending_model_list"] = json!({ "id": id });
                }
                ack
            };
            Answer::Send(json!({"type": "daemon:heartbeat_ack", "payload": ack}).to_string())
        }
        Some("daemon:rpc_request") => {
            let request_id = payload["request_id"].clone();
            let response = |status: u16, body: Value| {
                json!({"type": "daemon:rpc_response", "payload": {"request_id": request_id, "status": status, "body": body}})
                    .to_string()
            };
            match script.claim.clone() {
                ClaimMode::Answer(body) => Answer::Send(response(200, body)),
                ClaimMode::Status(status, body) => Answer::Send(response(status, body)),
                ClaimMode::Garbage => Answer::Send(response(200, json!({"tasks": "not a list"}))),
                ClaimMode::Drop => Answer::Drop,
                ClaimMode::Silent => Answer::Nothing,
                ClaimMode::Late(after, body) => {
                    let (commands, late) = (commands.clone(), response(200, body));
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = commands.send(Command::SendLate(late));
                    });
                    Answer::Nothing
                }
            }
        }
        _ => Answer::Nothing,
    }
}

/// One claimed task as the server's claim object (the fields a decode needs).
pub fn claim_answer(task_id: &str, runtime_id: &str) -> Value {
    json!({"tasks": [{
        "id": task_id, "agent_id": "agent-1", "runtime_id": runtime_id, "issue_id": "issue-1",
        "status": "dispatched", "priority": 0, "auth_token": "mat_x",
        "agent": {"id": "agent-1", "name": "Agent"}
    }]})
}

/// The HTTP side: records every call, answers claims with nothing,
/// heartbeats ok, registrations with the runtimes it is told.
#[derive(Debug, Default, Clone)]
pub struct RecordingHttp {
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub runtimes: Arc<Mutex<Vec<String>>>,
}

impl RecordingHttp {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn claims(&self) -> usize {
        self.calls().iter().filter(|call| matches!(call, Call::ClaimTasks(_) | Call::ClaimTask { .. })).count()
    }

    pub fn heartbeats(&self) -> usize {
        self.calls()
            .iter()
            .filter(|call| matches!(call, Call::SendHeartbeat { .. } | Call::SendHeartbeatWith(_)))
            .count()
    }
}

#[async_trait]
impl DaemonApi for RecordingHttp {
    async fn call(&self, call: Call) -> Result<Reply> {
        self.calls.lock().unwrap().push(call.clone());
        Ok(match call {
            Call::ClaimTasks(_) => Reply::ClaimedTasks(Vec::new()),
            Call::ClaimTask { .. } => Reply::Claimed(None),
            Call::SendHeartbeat { .. } | Call::SendHeartbeatWith(_) => {
                let mut answer = HeartbeatResponse::default();
                answer.status = "ok".into();
                Reply::Heartbeat(answer)
            }
            Call::Register(_) => {
                let mut answer = RegisterResponse::default();
                answer.runtimes = self
                    .runtimes
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|id| serde_json::from_value::<Runtime>(json!({"id": id})).unwrap())
                    .collect();
                Reply::Registered(answer)
            }
            Call::Deregister { .. } => Reply::Done,
            other => return Err(Error::route_not_found(other.endpoint(), other.endpoint().template())),
        })
    }
}
