//! A client of the daemon WebSocket channel for the tests: a HEAD fake with
//! two registered runtimes, handshakes with tokio-tungstenite, JSON frames
//! with deadlines, and a raw client for what tungstenite will not do (never
//! answer a ping, send a frame with the handshake).
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use multica_api::{DaemonApiExt, RegisterRequest, RuntimeId, RuntimeSpec, WorkspaceId};
use multica_mock::{serve, AgentSeed, MockDaemon, MockServer, MockToken, ServerVersion, WorkspaceSeed};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The fake's token: a personal token of a member of every workspace.
pub const PAT: &str = "mul_channel000000000000000000000000000000000";
/// A personal token of a user in no workspace.
pub const PAT2: &str = "mul_channel000000000000000000000000000000002";
/// A daemon token of the workspace and daemon `d1`.
pub const MDT: &str = "mdt_channel000000000000000000000000000000000";
/// A daemon token of the workspace and another daemon.
pub const MDT_OTHER: &str = "mdt_channel000000000000000000000000000000001";
/// The capabilities the Go daemon sends on both transports.
pub const CAPABILITIES: &str =
    "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A served HEAD fake with a workspace, an agent and runtimes `claude`
/// and `codex` of daemon `d1`, registered (fresh).
pub struct Head {
    pub mock: MockDaemon,
    pub server: MockServer,
    pub workspace_id: WorkspaceId,
    pub agent_id: multica_api::AgentId,
    pub rt1: RuntimeId,
    pub rt2: RuntimeId,
}

impl Head {
    pub async fn new() -> Head {
        let mock = MockDaemon::builder().server_version(ServerVersion::Head).token(PAT).build().unwrap();
        let workspace_id =
            mock.add_workspace(WorkspaceSeed { name: "Team".into(), ..WorkspaceSeed::default() }).unwrap();
        mock.add_token(&MockToken::member_of(PAT2, [])).unwrap();
        mock.add_token(&MockToken::daemon(MDT, workspace_id.clone(), "d1".into())).unwrap();
        mock.add_token(&MockToken::daemon(MDT_OTHER, workspace_id.clone(), "d2".into())).unwrap();
        let agent_id = mock
            .add_agent(AgentSeed {
                workspace_id: workspace_id.clone(),
                name: "Builder".into(),
                instructions: "fix it".into(),
                max_concurrent_tasks: Some(6),
                ..AgentSeed::default()
            })
            .unwrap();
        let request = RegisterRequest {
            workspace_id: workspace_id.clone(),
            daemon_id: "d1".into(),
            device_name: "host".into(),
            runtimes: ["claude", "codex"]
                .iter()
                .map(|p| RuntimeSpec { provider: (*p).into(), version: "1.0.0".into(), ..RuntimeSpec::default() })
                .collect(),
            ..RegisterRequest::default()
        };
        let registered = mock.register(&request).await.unwrap();
        let (rt1, rt2) = (registered.runtimes[0].id.clone(), registered.runtimes[1].id.clone());
        let server = serve(mock.clone()).await.unwrap();
        Head { mock, server, workspace_id, agent_id, rt1, rt2 }
    }

    /// `ws://…/api/daemon/ws` with `query` (e.g. `?runtime_ids=…`).
    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/api/daemon/ws{query}", self.server.addr())
    }

    /// The Go daemon's query: both runtimes, sorted, `%2C`-joined.
    pub fn both(&self) -> String {
        let mut ids = [self.rt1.as_str(), self.rt2.as_str()];
        ids.sort_unstable();
        format!("?runtime_ids={}%2C{}", ids[0], ids[1])
    }

    /// Connects as the Go daemon does (PAT, capabilities), both runtimes.
    pub async fn connect(&self) -> Ws {
        connect(&self.url(&self.both()), &[("Authorization", &format!("Bearer {PAT}"))]).await.unwrap().0
    }

    /// Queues a task for RT1 on a fresh issue.
    pub fn enqueue(&self) -> multica_api::TaskId {
        let issue = format!("99999999-0000-4000-8000-{:012x}", rand_u48());
        self.mock
            .add_task(multica_mock::TaskSeed {
                id: None,
                runtime_id: self.rt1.clone(),
                agent_id: self.agent_id.clone(),
                issue_id: issue.into(),
                priority: 0,
            })
            .unwrap()
    }
}

fn rand_u48() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A refused handshake: status, lower-case headers, body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Refused {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Handshakes with the capabilities header plus `headers`; the socket
/// and the 101's headers, or the refusal.
pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<(Ws, Vec<(String, String)>), Refused> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("x-client-capabilities", CAPABILITIES.parse().unwrap());
    for (name, value) in headers {
        request.headers_mut().insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    let lower = |h: &http::HeaderMap| -> Vec<(String, String)> {
        h.iter().map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect()
    };
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, response)) => Ok((ws, lower(response.headers()))),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(Refused {
            status: response.status().as_u16(),
            headers: lower(response.headers()),
            body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        }),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

pub async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

pub fn heartbeat(runtime_id: &str) -> Value {
    json!({ "type": "daemon:heartbeat", "payload": { "runtime_id": runtime_id, "supports_batch_import": true } })
}

pub fn claim(request_id: &str, body: Value) -> Value {
    json!({ "type": "daemon:rpc_request", "payload": {
        "request_id": request_id, "method": "tasks.claim", "body": body, "timeout_ms": 5000 } })
}

/// The next message that is not a ping/pong, within `within`; `None`
/// when nothing came.
pub async fn next(ws: &mut Ws, within: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(None) => return None,
            Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(Some(Ok(message))) => return Some(message),
        }
    }
}

/// The next JSON frame within 5 s.
pub async fn recv(ws: &mut Ws) -> Value {
    match next(ws, Duration::from_secs(5)).await {
        Some(Message::Text(text)) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

/// Asserts nothing arrives for `quiet`.
pub async fn silence(ws: &mut Ws, quiet: Duration) {
    if let Some(message) = next(ws, quiet).await {
        panic!("expected nothing, got {message:?}");
    }
}

/// A raw RFC 6455 client: what tungstenite will not do.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    /// Sends a handshake (and `extra` bytes in the same write); returns the
    /// answer's head, or `None` when the server closed without one.
    pub async fn handshake(addr: std::net::SocketAddr, path: &str, extra: &[u8]) -> (Raw, Option<String>) {
        Raw::handshake_with(addr, path, "", extra).await
    }

    /// [`Raw::handshake`] with more header lines (each ending in `\r\n`).
    pub async fn handshake_with(
        addr: std::net::SocketAddr,
        path: &str,
        headers: &str,
        extra: &[u8],
    ) -> (Raw, Option<String>) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut bytes = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {PAT}\r\n{headers}\r\n"
        )
        .into_bytes();
        bytes.extend_from_slice(extra);
        stream.write_all(&bytes).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return (Raw { stream }, None),
            }
        }
        (Raw { stream }, Some(String::from_utf8_lossy(&head).into_owned()))
    }

    /// A masked client frame.
    pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len < 65536 {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [1u8, 2, 3, 4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.write_all(&Raw::frame(1, text.as_bytes())).await.unwrap();
    }

    /// The next server frame: opcode and payload; `None` at EOF.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head).await.ok()?;
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut ext = [0u8; 2];
            self.stream.read_exact(&mut ext).await.ok()?;
            len = u64::from(u16::from_be_bytes(ext));
        } else if len == 127 {
            let mut ext = [0u8; 8];
            self.stream.read_exact(&mut ext).await.ok()?;
            len = u64::from_be_bytes(ext);
        }
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x0f, payload))
    }
}
