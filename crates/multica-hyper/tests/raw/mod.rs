//! A raw TCP server on 127.0.0.1 for hostile-server tests: every accepted
//! connection is handed to a script that reads the request and then writes
//! any bytes it likes (broken HTTP included), stalls, closes or resets.
//! Counts connections and keeps every request head. Dropping it stops the
//! accept loop and every connection.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

type Script = Arc<dyn Fn(Conn) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Default)]
struct Seen {
    accepted: AtomicUsize,
    /// Connections whose script ended (the server's side closed).
    closed: AtomicUsize,
    heads: Mutex<Vec<String>>,
}

pub struct RawServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl RawServer {
    /// Runs `script` on every accepted connection.
    pub async fn start<F, Fut>(script: F) -> Self
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let script: Script = Arc::new(move |conn| Box::pin(script(conn)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let accept_loop = tokio::spawn(accept_loop(listener, script, Arc::clone(&seen)));
        Self { addr, seen, accept_loop }
    }

    /// Reads one request, writes `bytes`, and ends the connection as
    /// `ending` says.
    pub async fn answering(bytes: Vec<u8>, ending: Ending) -> Self {
        let bytes = Arc::new(bytes);
        Self::start(move |mut conn| {
            let bytes = Arc::clone(&bytes);
            async move {
                conn.read_request().await;
                conn.write(&bytes).await;
                match ending {
                    Ending::Close => {}
                    Ending::Reset => conn.reset(),
                    Ending::Stall => conn.stall().await,
                }
            }
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn accepted(&self) -> usize {
        self.seen.accepted.load(Ordering::SeqCst)
    }

    /// Connections accepted whose script has not ended yet.
    pub fn open(&self) -> usize {
        self.accepted().saturating_sub(self.seen.closed.load(Ordering::SeqCst))
    }

    /// The head (request line and headers) of every request read so far.
    pub fn heads(&self) -> Vec<String> {
        self.seen.heads.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        // Aborting the loop drops its JoinSet, which aborts every connection.
        self.accept_loop.abort();
    }
}

async fn accept_loop(listener: TcpListener, script: Script, seen: Arc<Seen>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        seen.accepted.fetch_add(1, Ordering::SeqCst);
        let conn = Conn { stream, buffered: Vec::new(), seen: Arc::clone(&seen) };
        let (script, seen) = (script(conn), Arc::clone(&seen));
        connections.spawn(async move {
            script.await;
            seen.closed.fetch_add(1, Ordering::SeqCst);
        });
        while connections.try_join_next().is_some() {}
    }
}

/// How a connection ends after the scripted bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// An orderly close (FIN).
    Close,
    /// A TCP reset (RST).
    Reset,
    /// Open and silent until the server is dropped.
    Stall,
}

/// One accepted connection, as a script sees it.
pub struct Conn {
    stream: TcpStream,
    buffered: Vec<u8>,
    seen: Arc<Seen>,
}

impl Conn {
    /// Reads one request (head, then a `Content-Length` body) and returns
    /// its head; `None` when the client closed first.
    pub async fn read_request(&mut self) -> Option<String> {
        let head_end = loop {
            if let Some(at) = self.buffered.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).into_owned();
        let body_len = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while self.buffered.len() < head_end + body_len {
            self.fill().await?;
        }
        self.buffered.drain(..head_end + body_len);
        self.seen.heads.lock().unwrap().push(head.clone());
        Some(head)
    }

    /// Reads a request head and then at most `limit` bytes of its body, as
    /// a server with a body cap does before it refuses the rest.
    pub async fn read_head_and(&mut self, limit: usize) -> Option<String> {
        let head_end = loop {
            if let Some(at) = self.buffered.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).into_owned();
        while self.buffered.len() < head_end + limit {
            self.fill().await?;
        }
        self.buffered.clear();
        Some(head)
    }

    /// Half-closes (FIN) and reads on, discarding, for up to `linger`
    /// before closing: Go's server does this after refusing a body, so
    /// that its answer is not lost to a reset.
    pub async fn shutdown_write_and_drain(mut self, linger: std::time::Duration) {
        let _ = self.stream.shutdown().await;
        let drain = async {
            let mut chunk = [0u8; 65536];
            while matches!(self.stream.read(&mut chunk).await, Ok(read) if read > 0) {}
        };
        let _ = tokio::time::timeout(linger, drain).await;
    }

    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(read) => {
                self.buffered.extend_from_slice(&chunk[..read]);
                Some(())
            }
        }
    }

    /// Writes `bytes`; false once the client is gone.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    /// Writes `chunk` over and over: `Some(n)` times, or until the client
    /// goes away for `None`.
    pub async fn write_repeated(&mut self, chunk: &[u8], times: Option<u64>) {
        let mut written = 0;
        while times.is_none_or(|times| written < times) {
            if !self.write(chunk).await {
                return;
            }
            written += 1;
        }
    }

    /// Stays silent until the client closes the connection (or the server
    /// is dropped), then closes it too.
    pub async fn until_the_client_closes(mut self) {
        let mut chunk = [0u8; 8192];
        while matches!(self.stream.read(&mut chunk).await, Ok(read) if read > 0) {}
    }

    /// Keeps the connection open and silent until the server is dropped.
    pub async fn stall(self) {
        let _open = self;
        std::future::pending::<()>().await;
    }

    /// Closes with a TCP reset (RST) instead of an orderly close (FIN).
    pub fn reset(self) {
        self.stream.set_zero_linger().unwrap();
    }
}

/// A complete HTTP/1.1 response with `Content-Length`.
pub fn response(status_line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("HTTP/1.1 {status_line}\r\ncontent-length: {}\r\n", body.len()).into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// A JSON 200 response.
pub fn json_ok(body: &str) -> Vec<u8> {
    response("200 OK", &[("content-type", "application/json")], body.as_bytes())
}

/// One chunk of a chunked body, framed.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    framed
}
