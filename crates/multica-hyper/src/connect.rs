//! Opening connections: TCP with Nagle off, TLS for `https://`, and one
//! deadline over the whole of it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// What opens connections: TCP, wrapped in rustls for `https://`, bounded
/// by the connect timeout.
#[cfg(feature = "tls")]
pub(crate) type Connector = BoundedConnect<hyper_rustls::HttpsConnector<HttpConnector>>;
/// What opens connections: plain TCP (built without the `tls` feature),
/// bounded by the connect timeout.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = BoundedConnect<HttpConnector>;

/// A TCP connector with Nagle off: with it on, small requests wait for
/// delayed ACKs (HTTP/2 drops to ~1.5k requests/s). Its own timeout is
/// shared among a host's addresses, so a dead first address leaves time to
/// try the next; [`BoundedConnect`] bounds the whole connect on top.
pub(crate) fn tcp_connector(connect_timeout: Option<Duration>) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(connect_timeout);
    // The TLS wrapper hands `https://` URIs to this connector.
    http.enforce_http(false);
    http
}

/// Bounds a whole connect — name lookup, TCP and the TLS handshake — by
/// one timeout. `HttpConnector`'s own timeout covers TCP alone, so a server
/// that accepts and then never completes the handshake would hold a call
/// until its whole deadline.
#[derive(Clone, Debug)]
pub(crate) struct BoundedConnect<C> {
    inner: C,
    timeout: Option<Duration>,
}

impl<C> BoundedConnect<C> {
    /// `inner`, its connects ended with [`ConnectTimedOut`] after `timeout`
    /// (`None`: unbounded, the call's deadline still applies).
    pub(crate) fn new(inner: C, timeout: Option<Duration>) -> Self {
        Self { inner, timeout }
    }
}

/// A connect that did not finish within the connect timeout.
#[derive(Debug)]
pub(crate) struct ConnectTimedOut(Duration);

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connecting took longer than the connect timeout of {:?}", self.0)
    }
}

impl std::error::Error for ConnectTimedOut {}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> Service<Uri> for BoundedConnect<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match timeout {
                Some(limit) => match tokio::time::timeout(limit, connecting).await {
                    Ok(connected) => connected.map_err(Into::into),
                    Err(_elapsed) => Err(ConnectTimedOut(limit).into()),
                },
                None => connecting.await.map_err(Into::into),
            }
        })
    }
}
