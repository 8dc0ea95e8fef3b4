//! What keeps the fake's server serving when clients hold connections open:
//! a header read timeout, an idle timeout and a cap on open connections
//! that sheds, for a new client, first a connection that serves no one
//! (silent, or a slow head) and only then an idle keep-alive one.
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
/// `max_connections` are open, a newly accepted connection closes one with
/// no request in flight so that a new client is served: first one still
/// waiting for a request head (silent or slow since connecting, or an
/// answered client trickling its next head for over a second), the one
/// that has waited longest; only when there is none, the longest-idle
/// keep-alive connection of an answered client (over HTTP/1.1 that client
/// may lose a request it sends just then). Only while every open connection
/// has a request in flight do new connections wait in the listen backlog,
/// until one of those requests is answered or its connection closes.
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
        self.open.len() < self.cap() || self.open.values().any(|(watch, _)| watch.shed_rank().is_some())
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
        if self.open.len() >= self.cap() && !self.shed_one() {
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

    /// Closes the connection that goes first by [`ShedRank`]; false when
    /// every connection has a request in flight.
    fn shed_one(&mut self) -> bool {
        let first = self
            .open
            .iter()
            .filter_map(|(id, (watch, _))| watch.shed_rank().map(|rank| (rank, *id)))
            .min_by_key(|(rank, _)| *rank);
        match first.and_then(|(_, id)| self.open.remove(&id)) {
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
    // Checked at its deadline, and at least every shortest limit: any
    // deadline set meanwhile (a request answered, a head begun) is at least
    // that far off, so none is missed, and requests need not wake this loop.
    let check_every = limits.header_read_timeout.min(limits.idle_timeout);
    let next_check = tokio::time::sleep(check_every);
    tokio::pin!(next_check);
    let overdue = loop {
        tokio::select! {
            // A connection ending badly (client gone, injected transport
            // fault) is that connection's business only.
            _ = connection.as_mut() => return,
            () = next_check.as_mut() => {
                if let Some(overdue) = watch.overdue(&limits) {
                    break overdue;
                }
                let latest = Instant::now() + check_every;
                next_check.as_mut().reset(watch.deadline(&limits).map_or(latest, |due| due.min(latest)));
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

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overdue {
    /// Its request head did not arrive in time.
    Head,
    /// It had nothing to ask for too long.
    Idle,
}

/// The order in which connections with no request in flight are shed at
/// the cap, the least first. First those waiting for a request head, which
/// hold a descriptor and serve no one: silent or slow since connecting, or
/// trickling a next head for longer than [`SLOW_HEAD`]. Then the idle
/// keep-alive connections of clients that were answered, which may be
/// reused at any moment (over HTTP/1.1, a request sent as its connection
/// closes is lost). Last, an answered client's next head that is still
/// arriving: a request about to be in flight. Within each, the one that
/// has waited longest goes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ShedRank {
    /// Waiting since then for a request head.
    AwaitingHead(Instant),
    /// Idle since its last answer, then.
    Idle(Instant),
    /// A next head began to arrive then.
    HeadArriving(Instant),
}

/// How long the next head on a kept-alive connection may take to arrive
/// before its connection ranks with the slow ones for shedding. A head
/// comes in one write; one still arriving after this is being trickled.
/// Much shorter than the header read timeout, which closes it anyway; much
/// longer than a loaded machine takes to read a head that has arrived
/// (up to 17 ms seen under a flood on 2 cores).
const SLOW_HEAD: Duration = Duration::from_secs(1);

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
        if between_requests {
            // Only the first byte of a head starts its clock.
            let _ = self.head_started.compare_exchange(NEVER, self.now(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Where the connection stands when one must be shed; `None` while a
    /// request is in flight.
    fn shed_rank(&self) -> Option<ShedRank> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        match (self.idle_since.load(Ordering::SeqCst), self.head_started.load(Ordering::SeqCst)) {
            (NEVER, _) => Some(ShedRank::AwaitingHead(self.accepted)),
            (since, NEVER) => Some(ShedRank::Idle(self.at(since))),
            (_, started) if self.at(started) + SLOW_HEAD <= Instant::now() => {
                Some(ShedRank::AwaitingHead(self.at(started)))
            }
            (_, started) => Some(ShedRank::HeadArriving(self.at(started))),
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
