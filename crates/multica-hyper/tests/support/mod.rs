//! An in-process HTTP server on 127.0.0.1 for the transport tests: answers
//! from a closure or a queue of canned replies, records every request, and
//! counts accepted and closed connections. Dropping it stops everything.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_rustls::rustls;

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query exactly as sent (still percent-encoded).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: Version,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// How the server answers one request.
pub enum Reply {
    Respond(Response<BoxBody<Bytes, Infallible>>),
    /// Never answers (the connection stays open).
    Never,
    /// Answers after a wait, as a server doing some work.
    After(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Self::with_headers(status, body, &[("content-type", "application/json")])
    }

    pub fn with_headers(status: u16, body: &str, headers: &[(&str, &str)]) -> Self {
        let mut builder = Response::builder().status(StatusCode::from_u16(status).unwrap());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        Self::Respond(builder.body(Full::new(Bytes::from(body.to_owned())).boxed()).unwrap())
    }

    /// A 200 whose body streams `total` bytes of `x` without announcing its
    /// length, generated as it is read.
    pub fn streamed(total: u64) -> Self {
        Self::streamed_with_status(200, total)
    }

    /// Like [`Reply::streamed`], with another status.
    pub fn streamed_with_status(status: u16, total: u64) -> Self {
        let body = Generated { remaining: total, chunk: Bytes::from(vec![b'x'; 64 * 1024]) };
        Self::Respond(Response::builder().status(status).body(body.boxed()).unwrap())
    }
}

/// A body generated chunk by chunk, never held whole.
struct Generated {
    remaining: u64,
    chunk: Bytes,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let len = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= len;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..len as usize)))))
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Default)]
struct Counters {
    accepted: AtomicUsize,
    closed: AtomicUsize,
    /// Requests whose handler runs now (its stream or connection open).
    answering: AtomicUsize,
    changed: Notify,
    requests: Mutex<Vec<Recorded>>,
}

pub struct TestServer {
    addr: SocketAddr,
    scheme: &'static str,
    counters: Arc<Counters>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// A plain HTTP server (HTTP/1.1 and h2c) answering with `handler`.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::spawn(None, Arc::new(handler)).await
    }

    /// An HTTPS server (HTTP/1.1 and h2 by ALPN) with `config`.
    pub async fn start_tls(
        config: Arc<rustls::ServerConfig>,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::spawn(Some(tokio_rustls::TlsAcceptor::from(config)), Arc::new(handler)).await
    }

    /// Answers with `replies` in order, then 500 `queue empty`.
    pub async fn queue(replies: Vec<Reply>) -> Self {
        let replies = Mutex::new(VecDeque::from(replies));
        Self::start(move |_| replies.lock().unwrap().pop_front().unwrap_or_else(|| Reply::json(500, "queue empty")))
            .await
    }

    async fn spawn(tls: Option<tokio_rustls::TlsAcceptor>, handler: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let counters = Arc::new(Counters::default());
        let accept_loop = tokio::spawn(accept_loop(listener, tls, handler, Arc::clone(&counters)));
        Self { addr, scheme, counters, accept_loop }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    pub fn closed(&self) -> usize {
        self.counters.closed.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed.
    pub fn open(&self) -> usize {
        self.accepted().saturating_sub(self.closed())
    }

    /// Requests being answered now: over HTTP/2, the streams the client
    /// keeps open.
    pub fn answering(&self) -> usize {
        self.counters.answering.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.counters.requests.lock().unwrap().clone()
    }

    /// The one request received; panics unless exactly one arrived.
    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        requests.into_iter().next().unwrap()
    }

    /// Waits (up to 5 s) until at least `count` connections were closed.
    pub async fn wait_closed(&self, count: usize) {
        self.wait_until(|| self.closed() >= count).await;
    }

    /// Waits (up to 5 s) until at least `count` requests arrived.
    pub async fn wait_requests(&self, count: usize) {
        self.wait_until(|| self.counters.requests.lock().unwrap().len() >= count).await;
    }

    async fn wait_until(&self, done: impl Fn() -> bool) {
        let wait = async {
            loop {
                let changed = self.counters.changed.notified();
                if done() {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.expect("the server got there in time");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Aborting the loop drops its JoinSet, which aborts every connection.
        self.accept_loop.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: Handler,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        counters.accepted.fetch_add(1, Ordering::SeqCst);
        let (tls, handler, counters) = (tls.clone(), Arc::clone(&handler), Arc::clone(&counters));
        connections.spawn(async move {
            let service = {
                let counters = Arc::clone(&counters);
                service_fn(move |request| answer(request, Arc::clone(&handler), Arc::clone(&counters)))
            };
            let server = auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = server.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
                None => {
                    let _ = server.serve_connection(TokioIo::new(stream), service).await;
                }
            }
            counters.closed.fetch_add(1, Ordering::SeqCst);
            counters.changed.notify_waiters();
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    request: http::Request<Incoming>,
    handler: Handler,
    counters: Arc<Counters>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, hyper::Error> {
    let _answering = Answering::new(&counters);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
        headers: parts.headers,
        body,
        version: parts.version,
    };
    counters.requests.lock().unwrap().push(recorded.clone());
    counters.changed.notify_waiters();
    let mut reply = handler(&recorded);
    loop {
        match reply {
            Reply::Respond(response) => return Ok(response),
            Reply::Never => std::future::pending().await,
            Reply::After(wait, then) => {
                tokio::time::sleep(wait).await;
                reply = *then;
            }
        }
    }
}

/// Counts a handler as running until it ends or is dropped.
struct Answering(Arc<Counters>);

impl Answering {
    fn new(counters: &Arc<Counters>) -> Self {
        counters.answering.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counters))
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A self-signed certificate for 127.0.0.1 and a server config offering h2
/// and HTTP/1.1; returns the config and the certificate (DER, PEM).
pub fn self_signed_tls() -> (Arc<rustls::ServerConfig>, Vec<u8>, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_der = certified.cert.der().to_vec();
    let cert_pem = certified.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone().into()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (Arc::new(config), cert_der, cert_pem)
}
