//! Calls whose caller gave up: what becomes of their exchange, and the
//! counts a daemon can log.
//!
//! Over HTTP/1.1 an exchange is dropped with its caller, and hyper closes
//! its connection at once (as Go closes the connection of a cancelled
//! request): a closed connection cannot carry a late answer into another
//! call, and connections, fds and tasks stay bounded by the callers. Over
//! HTTP/2 dropping it would reset its stream, and a storm of resets makes a
//! server close the whole connection, failing every call sharing it; so the
//! exchange finishes in the background instead, at most
//! [`MAX_BACKGROUND_EXCHANGES`] of them per client, each for at most
//! [`BACKGROUND_GRACE`] (and never past its call's deadline). Past either
//! bound it is dropped and its stream reset.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::CaptureConnection;
use tokio::time::Instant;

/// The most HTTP/2 exchanges of one client finishing in the background
/// after their callers gave up: a quarter of the 256 concurrent streams a
/// server commonly allows (Go's default is 250, hyper's 200), so live calls
/// keep most of a connection's streams whatever the rate of cancellation.
pub const MAX_BACKGROUND_EXCHANGES: usize = 64;

/// How long an abandoned HTTP/2 exchange may go on in the background before
/// its stream is reset: enough for a server that answers at all to answer,
/// short enough that a silent one cannot hold streams for a call's whole
/// deadline.
pub const BACKGROUND_GRACE: Duration = Duration::from_secs(2);

/// What a client's callers gave up, counted since it was built (all its
/// clones together). Read it with
/// [`HyperClient::abandoned_calls`](crate::HyperClient::abandoned_calls);
/// a daemon logs the growth of [`AbandonedCalls::claims`], since each such
/// claim may have taken a task nobody will run (the server hands it out
/// again once its lease runs out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AbandonedCalls {
    /// Calls given up while their exchange was in flight (before the
    /// call's own deadline; a call that times out is not counted).
    pub calls: u64,
    /// Of these, claims (single or batch): the server may have handed out
    /// tasks to a caller that is gone.
    pub claims: u64,
    /// Exchanges closed with their caller: HTTP/1.1 (the connection is
    /// closed) or a request not yet on a connection.
    pub closed: u64,
    /// HTTP/2 exchanges that finished in the background (their answers
    /// were read and dropped).
    pub finished_in_background: u64,
    /// HTTP/2 exchanges whose stream was reset: more than
    /// [`MAX_BACKGROUND_EXCHANGES`] were running, or one was still running
    /// after [`BACKGROUND_GRACE`].
    pub reset: u64,
    /// HTTP/2 exchanges running in the background now.
    pub in_background: u64,
}

/// The shared counters of one client.
#[derive(Debug, Default)]
pub(crate) struct Abandoned {
    calls: AtomicU64,
    claims: AtomicU64,
    closed: AtomicU64,
    finished_in_background: AtomicU64,
    reset: AtomicU64,
    in_background: AtomicUsize,
}

impl Abandoned {
    pub(crate) fn snapshot(&self) -> AbandonedCalls {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        AbandonedCalls {
            calls: read(&self.calls),
            claims: read(&self.claims),
            closed: read(&self.closed),
            finished_in_background: read(&self.finished_in_background),
            reset: read(&self.reset),
            in_background: self.in_background.load(Ordering::Relaxed) as u64,
        }
    }

    fn count_abandoned(&self, claim: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if claim {
            self.claims.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs an abandoned HTTP/2 exchange to its end in the background
    /// within the bounds, or drops it (resetting its stream) past them.
    fn finish_in_background<T: Send + 'static>(self: &Arc<Self>, exchange: BoxedExchange<T>, deadline: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.reset.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if self.in_background.fetch_add(1, Ordering::Relaxed) >= MAX_BACKGROUND_EXCHANGES {
            self.in_background.fetch_sub(1, Ordering::Relaxed);
            self.reset.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let until = deadline.min(Instant::now() + BACKGROUND_GRACE);
        let counters = Arc::clone(self);
        runtime.spawn(async move {
            let ended = tokio::time::timeout_at(until, exchange).await;
            counters.in_background.fetch_sub(1, Ordering::Relaxed);
            let counter = if ended.is_ok() { &counters.finished_in_background } else { &counters.reset };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// An exchange that may move to the background.
type BoxedExchange<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Which protocol an exchange that may be HTTP/2 runs on.
pub(crate) enum Protocol {
    /// HTTP/2 (prior knowledge).
    Http2,
    /// Negotiated by ALPN: the connection the pool picked tells.
    Negotiated(CaptureConnection),
}

impl Protocol {
    fn is_http2(&self) -> bool {
        match self {
            Self::Http2 => true,
            Self::Negotiated(capture) => capture.connection_metadata().as_ref().is_some_and(|c| c.is_negotiated_h2()),
        }
    }
}

/// Counts a call given up while it ran (dropped before [`Self::finish`]);
/// an HTTP/1.1 exchange is dropped along with it. Costs no allocation.
pub(crate) struct Http1Guard<'a> {
    counters: &'a Abandoned,
    claim: bool,
    deadline: Instant,
    running: bool,
}

impl<'a> Http1Guard<'a> {
    pub(crate) fn new(counters: &'a Abandoned, claim: bool, deadline: Instant) -> Self {
        Self { counters, claim, deadline, running: true }
    }

    pub(crate) fn finish(mut self) {
        self.running = false;
    }
}

impl Drop for Http1Guard<'_> {
    fn drop(&mut self) {
        if self.running && Instant::now() < self.deadline {
            self.counters.count_abandoned(self.claim);
            self.counters.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An exchange that may be HTTP/2, awaited in its caller's task; dropped
/// before it ends (and before its deadline), it moves to the background if
/// it runs on HTTP/2 (see the module's documentation). One allocation per
/// call, the box that lets the running exchange move.
pub(crate) struct Detachable<'a, T: Send + 'static> {
    exchange: Option<BoxedExchange<T>>,
    counters: &'a Arc<Abandoned>,
    protocol: Protocol,
    claim: bool,
    deadline: Instant,
}

impl<'a, T: Send + 'static> Detachable<'a, T> {
    pub(crate) fn new(
        exchange: impl Future<Output = T> + Send + 'static,
        counters: &'a Arc<Abandoned>,
        protocol: Protocol,
        claim: bool,
        deadline: Instant,
    ) -> Self {
        Self { exchange: Some(Box::pin(exchange)), counters, protocol, claim, deadline }
    }
}

impl<T: Send + 'static> Future for Detachable<'_, T> {
    type Output = Option<T>;

    /// `None` only if polled again after it ended.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(exchange) = this.exchange.as_mut() else { return Poll::Ready(None) };
        let answer = std::task::ready!(exchange.as_mut().poll(cx));
        this.exchange = None;
        Poll::Ready(Some(answer))
    }
}

impl<T: Send + 'static> Drop for Detachable<'_, T> {
    fn drop(&mut self) {
        let Some(exchange) = self.exchange.take() else { return };
        if Instant::now() >= self.deadline {
            // The call timed out: its exchange ends here.
            return;
        }
        self.counters.count_abandoned(self.claim);
        if self.protocol.is_http2() {
            self.counters.finish_in_background(exchange, self.deadline);
        } else {
            self.counters.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
