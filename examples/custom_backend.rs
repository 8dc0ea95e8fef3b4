//! How to write your own backend: a third transport that passes the
//! conformance suite. `cargo run --example custom_backend`
//!
//! This one speaks HTTP/1.0 by hand over a fresh TCP connection per call —
//! about the smallest transport there is: an HTTP/1.0 answer is never
//! chunked (Go's server chunks large HTTP/1.1 answers), so its body ends
//! where the connection does. Everything protocol-specific
//! (paths, percent-encoding, bodies, parsing answers into values or the
//! server's errors) comes from `multica::request`, so a transport only moves
//! bytes: a real one would add pooling, TLS and deadlines the same way. One
//! `send` function and a three-line `DaemonApi::call` make it a backend; a
//! route added to the SDK later reaches it through `Call::to_request` with no
//! change here.

use std::sync::Arc;

use multica::conformance::{run_all, TESTS};
use multica::mock::{serve, MockDaemon};
use multica::request::Request;
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
    async fn send<T>(&self, request: Request<T>) -> Result<T> {
        let wire = request.wire();
        let transport = |kind, source: std::io::Error| Error::Transport {
            method: wire.method(),
            path: wire.path.clone(),
            kind,
            source: Arc::new(source),
        };
        let mut stream = TcpStream::connect(&self.addr).await.map_err(|e| transport(TransportKind::Connect, e))?;
        let body = wire.body.as_deref().unwrap_or_default();
        let mut head = format!("{} {} HTTP/1.0\r\nHost: {}\r\n", wire.method(), wire.path, self.addr);
        if wire.body.is_some() {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(|e| transport(TransportKind::Request, e))?;
        stream.write_all(body).await.map_err(|e| transport(TransportKind::Request, e))?;

        // HTTP/1.0: the answer ends where the stream does.
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(|e| transport(TransportKind::Response, e))?;
        let (status, body) = split_response(&answer).ok_or_else(|| {
            transport(TransportKind::Response, std::io::Error::new(std::io::ErrorKind::InvalidData, "not HTTP"))
        })?;
        request.decode_response(status, body)
    }
}

/// The status code and body of a close-delimited answer.
fn split_response(answer: &[u8]) -> Option<(u16, &[u8])> {
    let end_of_head = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end_of_head]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, &answer[end_of_head + 4..]))
}

// Every route: the call's request from `multica::request`, sent by `send`.
#[multica::async_trait]
impl DaemonApi for RawTcpBackend {
    async fn call(&self, call: Call) -> Result<Reply> {
        self.send(call.to_request()?).await
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
