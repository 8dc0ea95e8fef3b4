//! What keeps the fake's server serving when clients hold connections open:
//! a header read timeout, an idle timeout and a cap on open connections
//! that sheds the longest-idle connection to make room for a new client.
//!
//! hyper's own HTTP/1 header timeout needs a timer, also runs while a
//! keep-alive connection waits for its next request (so it cannot be longer
//! than the idle timeout), and does not cover hyper-util's protocol
//! detection, which waits for the first bytes with no timeout at all;
//! HTTP/2 has none. So each connection is watched here instead, from what
//! its bytes and its requests do.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::Instant;

use crate::MockDaemon;

/// How long a client may take to send a whole request head (default): the
/// first one from connecting, a later one from its first byte.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may wait with no request in flight after its last
/// answer (default). Longer than the 90 s for which Go's and
/// `multica-hyper`'s pools keep an idle connection, so that a client drops
/// an idle connection before the server does and never sends a request
/// into one the server is closing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Open connections at most (default): half of the usual 1,024 file
/// descriptors, so that the process never runs out of them.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// How long an idle connection told to close (an HTTP/2 GOAWAY) gets to do
/// so before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The limits on connections of [`crate::serve_with`].
///
/// A connection is closed when it has no request in flight and
/// - sent no complete request head within `header_read_timeout` of
///   connecting (a slow or silent client), or
/// - over HTTP/1.1, started a next request head and did not finish it
///   within `header_read_timeout` of its first byte (slowloris), or
/// - sent no new request within `idle_timeout` of its last answer.
///
/// A connection with a request in flight is never cut by these. When
/// `max_connections` are open, a newly accepted connection closes the
/// open one with no request in flight that has waited longest (a silent or
/// slow client, or the longest-idle keep-alive connection), so that a new
/// client is served; only while every open connection has a request in
/// flight do new connections wait in the listen backlog, until one of
/// those requests is answered or its connection closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Default [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Default [`DEFAULT_IDLE_TIMEOUT`].
    pub idle_timeout: Duration,
    /// Default [`DEFAULT_MAX_CONNECTIONS`]; at least one is always allowed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The open connections of one server, owned by its accept loop: aborting
/// that loop drops this, which aborts every connection.
pub(super) struct Connections {
    limits: ConnectionLimits,
    tasks: JoinSet<()>,
    open: HashMap<Id, (Arc<Watch>, AbortHandle)>,
    /// Woken when a connection's last request in flight is answered.
    room: Arc<Notify>,
    /// A connection accepted at the cap just as every open one took a
    /// request: it is served as soon as there is room.
    parked: Option<TcpStream>,
}

impl Connections {
    pub(super) fn new(limits: ConnectionLimits) -> Self {
        Self { limits, tasks: JoinSet::new(), open: HashMap::new(), room: Arc::new(Notify::new()), parked: None }
    }

    /// Whether a new connection can be accepted now: none is parked, and
    /// there is room for one.
    pub(super) fn may_accept(&self) -> bool {
        self.parked.is_none() && self.has_room()
    }

    /// Whether a new connection can be served now: the cap is not reached,
    /// or an open connection has no request in flight and can make room.
    fn has_room(&self) -> bool {
        self.open.len() < self.cap() || self.open.values().any(|(watch, _)| watch.waiting_since().is_some())
    }

    /// Serves the parked connection if there is room for it now.
    pub(super) fn admit_parked(&mut self, mock: &MockDaemon, max_body_bytes: usize) {
        if self.parked.is_some() && self.has_room() {
            if let Some(stream) = self.parked.take() {
                self.admit(stream, mock.clone(), max_body_bytes);
            }
        }
    }

    /// Woken when [`Connections::has_room`] may have turned true without a
    /// connection ending.
    pub(super) fn room(&self) -> Arc<Notify> {
        Arc::clone(&self.room)
    }

    fn cap(&self) -> usize {
        self.limits.max_connections.max(1)
    }

    /// Serves a newly accepted connection, first making room for it. Should
    /// every open connection have taken a request since
    /// [`Connections::may_accept`] said yes, it is parked until one is
    /// answered.
    pub(super) fn admit(&mut self, stream: TcpStream, mock: MockDaemon, max_body_bytes: usize) {
        if self.open.len() >= self.cap() && !self.shed_longest_waiting() {
            self.parked = Some(stream);
            return;
        }
        let watch = Arc::new(Watch::new(Arc::clone(&self.room)));
        let task = self.tasks.spawn(serve(stream, mock, max_body_bytes, self.limits, Arc::clone(&watch)));
        self.open.insert(task.id(), (watch, task));
    }

    /// Waits until a connection ends and forgets it; never ends when none
    /// is open.
    pub(super) async fn reap(&mut self) {
        match self.tasks.join_next_with_id().await {
            Some(Ok((id, ()))) => {
                self.open.remove(&id);
            }
            Some(Err(err)) => {
                self.open.remove(&err.id());
            }
            None => std::future::pending().await,
        }
    }

    /// Closes the connection with no request in flight that has waited
    /// longest; false when every connection has one.
    fn shed_longest_waiting(&mut self) -> bool {
        let oldest = self
            .open
            .iter()
            .filter_map(|(id, (watch, _))| watch.waiting_since().map(|since| (since, *id)))
            .min_by_key(|(since, _)| *since);
        match oldest.and_then(|(_, id)| self.open.remove(&id)) {
            Some((_, task)) => {
                task.abort();
                true
            }
            None => false,
        }
    }
}

/// Serves one connection until it ends or overstays its limits.
async fn serve(
    stream: TcpStream,
    mock: MockDaemon,
    max_body_bytes: usize,
    limits: ConnectionLimits,
    watch: Arc<Watch>,
) {
    // Latency over throughput: small JSON answers must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched { inner: stream, watch: Arc::clone(&watch), preface_seen: 0 });
    let service = {
        let watch = Arc::clone(&watch);
        service_fn(move |request| {
            let in_flight = watch.begin_request();
            let answer = crate::server::handle(mock.clone(), request, max_body_bytes);
            async move {
                let answer = answer.await;
                drop(in_flight);
                answer
            }
        })
    };
    let builder = crate::stream::http_builder();
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let overdue = loop {
        let changed = watch.changed.notified();
        let deadline = watch.deadline(&limits);
        tokio::select! {
            // A connection ending badly (client gone, injected transport
            // fault) is that connection's business only.
            _ = connection.as_mut() => return,
            () = changed => {}
            () = sleep_until(deadline) => {
                if let Some(overdue) = watch.overdue(&limits) {
                    break overdue;
                }
            }
        }
    };
    if overdue == Overdue::Idle {
        // Between requests: say so where the protocol can (HTTP/2 GOAWAY),
        // then close. A slow head gets no such courtesy.
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(CLOSE_GRACE, connection).await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overdue {
    /// Its request head did not arrive in time.
    Head,
    /// It had nothing to ask for too long.
    Idle,
}

/// What one connection is doing, as its bytes and requests show.
struct Watch {
    /// When the connection was accepted; the other times count from it.
    accepted: Instant,
    /// Requests being answered.
    in_flight: AtomicUsize,
    /// When the last answer was given; [`NEVER`] before the first.
    idle_since: AtomicU64,
    /// When the first byte of an unfinished HTTP/1 request head arrived
    /// after the last answer; [`NEVER`] if none did.
    head_started: AtomicU64,
    /// Whether the client opened with the HTTP/2 preface. HTTP/2 sends
    /// frames that are no request (settings, pings, window updates) between
    /// requests, so bytes alone do not start a head there.
    http2: AtomicBool,
    /// Woken when the deadline may have moved earlier or become due.
    changed: Notify,
    /// The server's, woken when this connection can make room.
    room: Arc<Notify>,
}

/// A time that has not happened, in [`Watch`]'s microsecond fields.
const NEVER: u64 = u64::MAX;

impl Watch {
    fn new(room: Arc<Notify>) -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(NEVER),
            head_started: AtomicU64::new(NEVER),
            http2: AtomicBool::new(false),
            changed: Notify::new(),
            room,
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_micros()).unwrap_or(NEVER - 1)
    }

    fn at(&self, micros: u64) -> Instant {
        self.accepted + Duration::from_micros(micros)
    }

    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.head_started.store(NEVER, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        let between_requests = self.in_flight.load(Ordering::SeqCst) == 0
            && self.idle_since.load(Ordering::SeqCst) != NEVER
            && !self.http2.load(Ordering::SeqCst);
        if between_requests
            && self.head_started.compare_exchange(NEVER, self.now(), Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// Since when the connection has had no request in flight, for
    /// choosing whom to shed: a connection never served counts from its
    /// accept. `None` while a request is in flight.
    fn waiting_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        match self.idle_since.load(Ordering::SeqCst) {
            NEVER => Some(self.accepted),
            since => Some(self.at(since)),
        }
    }

    /// When the connection is to be closed and why, if nothing changes;
    /// `None` while a request is in flight.
    fn due(&self, limits: &ConnectionLimits) -> Option<(Instant, Overdue)> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        match (self.idle_since.load(Ordering::SeqCst), self.head_started.load(Ordering::SeqCst)) {
            (NEVER, _) => Some((self.accepted + limits.header_read_timeout, Overdue::Head)),
            (_, started) if started != NEVER => Some((self.at(started) + limits.header_read_timeout, Overdue::Head)),
            (since, _) => Some((self.at(since) + limits.idle_timeout, Overdue::Idle)),
        }
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        self.due(limits).map(|(at, _)| at)
    }

    fn overdue(&self, limits: &ConnectionLimits) -> Option<Overdue> {
        self.due(limits).filter(|(at, _)| *at <= Instant::now()).map(|(_, why)| why)
    }
}

/// A request being answered; dropped when its answer is ready.
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let watch = &self.0;
        watch.idle_since.store(watch.now(), Ordering::SeqCst);
        if watch.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            watch.changed.notify_one();
            watch.room.notify_one();
        }
    }
}

/// The HTTP/2 connection preface a client opens with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The connection's socket, telling its [`Watch`] about arriving bytes.
struct Watched {
    inner: TcpStream,
    watch: Arc<Watch>,
    /// How many bytes of [`H2_PREFACE`] have matched so far;
    /// `usize::MAX` once decided.
    preface_seen: usize,
}

impl Watched {
    fn saw(&mut self, bytes: &[u8]) {
        if self.preface_seen < H2_PREFACE.len() {
            let wanted = &H2_PREFACE[self.preface_seen..];
            let n = bytes.len().min(wanted.len());
            if bytes[..n] != wanted[..n] {
                self.preface_seen = usize::MAX;
            } else {
                self.preface_seen += n;
                if self.preface_seen == H2_PREFACE.len() {
                    self.watch.http2.store(true, Ordering::SeqCst);
                    self.preface_seen = usize::MAX;
                }
            }
        }
        self.watch.on_read();
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let this = &mut *self;
            this.saw(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
