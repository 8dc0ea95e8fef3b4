//! How to write your own backend: a third transport that passes the
//! conformance suite. `cargo run --example custom_backend`
//!
//! This one speaks HTTP/1.1 by hand over a fresh TCP connection per call —
//! about the smallest transport there is. Everything protocol-specific
//! (paths, percent-encoding, bodies, parsing answers into values or the
//! server's errors) comes from `multica::request`, so a transport only moves
//! bytes: a real one would add pooling, TLS and deadlines the same way.

use std::sync::Arc;

use multica::conformance::{run_all, TESTS};
use multica::mock::{serve, MockDaemon};
use multica::request::{self, Request};
use multica::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `DaemonApi` over raw TCP. `addr` is `host:port` of an http:// server.
#[derive(Debug)]
struct RawTcpBackend {
    addr: String,
}

impl RawTcpBackend {
    /// Sends one request and reads the answer through the request's own parser.
    async fn send<T>(&self, request: Result<Request<T>>) -> Result<T> {
        let request = request?;
        let wire = request.wire();
        let transport = |kind, source: std::io::Error| Error::Transport {
            method: wire.method(),
            path: wire.path.clone(),
            kind,
            source: Arc::new(source),
        };
        let mut stream = TcpStream::connect(&self.addr).await.map_err(|e| transport(TransportKind::Connect, e))?;
        let body = wire.body.as_deref().unwrap_or_default();
        let mut head =
            format!("{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", wire.method(), wire.path, self.addr);
        if wire.body.is_some() {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(|e| transport(TransportKind::Request, e))?;
        stream.write_all(body).await.map_err(|e| transport(TransportKind::Request, e))?;

        // `Connection: close`: the answer ends where the stream does.
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(|e| transport(TransportKind::Response, e))?;
        let (status, body) = split_response(&answer).ok_or_else(|| {
            transport(TransportKind::Response, std::io::Error::new(std::io::ErrorKind::InvalidData, "not HTTP/1.1"))
        })?;
        request.decode_response(status, body)
    }
}

/// The status code and body of a `Content-Length` (or close-delimited) answer.
fn split_response(answer: &[u8]) -> Option<(u16, &[u8])> {
    let end_of_head = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end_of_head]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, &answer[end_of_head + 4..]))
}

/// Every method is one line: build with `request::*`, send, parse.
#[async_trait]
impl DaemonApi for RawTcpBackend {
    async fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse> {
        self.send(request::register(req)).await
    }
    async fn deregister(&self, runtime_ids: &[RuntimeId]) -> Result<()> {
        self.send(request::deregister(runtime_ids)).await
    }
    async fn send_heartbeat(&self, runtime_id: &RuntimeId) -> Result<HeartbeatResponse> {
        self.send(request::send_heartbeat(runtime_id)).await
    }
    async fn claim_task(&self, runtime_id: &RuntimeId) -> Result<Option<Task>> {
        self.send(request::claim_task(runtime_id)).await
    }
    async fn list_pending_tasks(&self, runtime_id: &RuntimeId) -> Result<Vec<TaskRecord>> {
        self.send(request::list_pending_tasks(runtime_id)).await
    }
    async fn report_usage(&self, runtime_id: &RuntimeId, entries: &[UsageEntry]) -> Result<()> {
        self.send(request::report_usage(runtime_id, entries)).await
    }
    async fn report_ping_result(&self, runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) -> Result<()> {
        self.send(request::report_ping_result(runtime_id, ping_id, result)).await
    }
    async fn get_task_status(&self, task_id: &TaskId) -> Result<TaskStatus> {
        self.send(request::get_task_status(task_id)).await
    }
    async fn start_task(&self, task_id: &TaskId) -> Result<()> {
        self.send(request::start_task(task_id)).await
    }
    async fn report_progress(&self, task_id: &TaskId, progress: &TaskProgress) -> Result<()> {
        self.send(request::report_progress(task_id, progress)).await
    }
    async fn complete_task(&self, task_id: &TaskId, completion: &TaskCompletion) -> Result<()> {
        self.send(request::complete_task(task_id, completion)).await
    }
    async fn fail_task(&self, task_id: &TaskId, error: &str) -> Result<()> {
        self.send(request::fail_task(task_id, error)).await
    }
    async fn report_task_messages(&self, task_id: &TaskId, messages: &[TaskMessage]) -> Result<()> {
        self.send(request::report_task_messages(task_id, messages)).await
    }
    async fn list_task_messages(&self, task_id: &TaskId) -> Result<Vec<StoredTaskMessage>> {
        self.send(request::list_task_messages(task_id)).await
    }
    async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        self.send(request::list_workspaces()).await
    }
    async fn create_pairing_session(&self, req: &PairingRequest) -> Result<PairingSession> {
        self.send(request::create_pairing_session(req)).await
    }
    async fn get_pairing_session(&self, token: &str) -> Result<PairingSession> {
        self.send(request::get_pairing_session(token)).await
    }
    async fn claim_pairing_session(&self, token: &str) -> Result<PairingSession> {
        self.send(request::claim_pairing_session(token)).await
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The fake's HTTP server is the counterpart; the fake itself is the
    // fixture the suite uses to queue tasks and inspect state.
    let fake = MockDaemon::new();
    let server = serve(fake.clone()).await?;
    let backend = RawTcpBackend { addr: server.addr().to_string() };

    run_all(&backend, &fake).await;
    println!("RawTcpBackend passed all {} contract tests against {}", TESTS.len(), server.base_url());
    server.shutdown().await;
    Ok(())
}
