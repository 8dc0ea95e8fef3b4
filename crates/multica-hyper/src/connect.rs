//! Opening connections: TCP with Nagle off, directly or through a proxy,
//! TLS for `https://`, and one deadline over the whole of it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::proxy::ProxyRoute;

/// What opens connections: TCP (direct or through the proxy), wrapped in
/// rustls for `https://`, bounded by the connect timeout.
#[cfg(feature = "tls")]
pub(crate) type Connector = BoundedConnect<hyper_rustls::HttpsConnector<Route>>;
/// What opens connections: plain TCP, direct or through the proxy (built
/// without the `tls` feature), bounded by the connect timeout.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = BoundedConnect<Route>;

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

/// How a TCP connection reaches the server. A client talks to one server,
/// so the route is chosen once, when it is built.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// Straight to the server.
    Direct(HttpConnector),
    /// Plain `http://` through a proxy: every connection goes to the proxy,
    /// which gets each request in absolute form.
    Forward { tcp: HttpConnector, proxy: Uri },
    /// `https://` through a proxy: a `CONNECT` tunnel to the server, with
    /// TLS to the server inside it.
    Tunnel { tunnel: Tunnel<HttpConnector>, proxy: Uri },
}

impl Route {
    /// The route to a server (`https` or not) through `proxy`, if any.
    pub(crate) fn new(tcp: HttpConnector, proxy: Option<&ProxyRoute>, https: bool) -> Self {
        match proxy {
            None => Self::Direct(tcp),
            Some(route) if https => {
                let mut tunnel = Tunnel::new(route.uri.clone(), tcp);
                if let Some(authorization) = &route.authorization {
                    tunnel = tunnel.with_auth(authorization.clone());
                }
                Self::Tunnel { tunnel, proxy: route.uri.clone() }
            }
            Some(route) => Self::Forward { tcp, proxy: route.uri.clone() },
        }
    }
}

impl Service<Uri> for Route {
    type Response = RouteStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<RouteStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Self::Direct(tcp) | Self::Forward { tcp, .. } => tcp.poll_ready(cx).map_err(Into::into),
            Self::Tunnel { tunnel, .. } => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match self {
            Self::Direct(tcp) => {
                let connecting = tcp.call(uri);
                Box::pin(async move { Ok(RouteStream { io: connecting.await?, forwarding: false }) })
            }
            Self::Forward { tcp, proxy } => {
                let connecting = tcp.call(proxy.clone());
                let proxy = proxy.clone();
                Box::pin(async move {
                    let io = connecting.await.map_err(|err| ThroughProxy::boxed(&proxy, err.into()))?;
                    Ok(RouteStream { io, forwarding: true })
                })
            }
            Self::Tunnel { tunnel, proxy } => {
                let connecting = tunnel.call(uri);
                let proxy = proxy.clone();
                Box::pin(async move {
                    let io = connecting.await.map_err(|err| ThroughProxy::boxed(&proxy, err.into()))?;
                    Ok(RouteStream { io, forwarding: false })
                })
            }
        }
    }
}

/// A connect through a proxy failed; the source says how.
#[derive(Debug)]
struct ThroughProxy {
    /// The proxy's address, without credentials.
    proxy: String,
    source: BoxError,
}

impl ThroughProxy {
    fn boxed(proxy: &Uri, source: BoxError) -> BoxError {
        Box::new(Self { proxy: proxy.to_string(), source })
    }
}

impl std::fmt::Display for ThroughProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "through the proxy at {}", self.proxy)
    }
}

impl std::error::Error for ThroughProxy {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A TCP connection that tells hyper whether it goes to a forwarding
/// proxy, so requests on it are sent in absolute form.
#[derive(Debug)]
pub(crate) struct RouteStream {
    io: TokioIo<TcpStream>,
    forwarding: bool,
}

impl Connection for RouteStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarding)
    }
}

impl Read for RouteStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for RouteStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Bounds a whole connect — name lookup, TCP, a proxy's tunnel and the TLS handshake — by
/// one timeout. `HttpConnector`'s own timeout covers TCP alone, so a server
/// that accepts and then never completes the handshake would hold a call
/// until its whole deadline.
///
/// The connector sits behind an `Arc`: hyper-util clones its connector
/// with every request, connection or not, so this clone must cost a
/// reference count, not a copy of the TLS and proxy configuration.
#[derive(Debug)]
pub(crate) struct BoundedConnect<C> {
    inner: Arc<C>,
    timeout: Option<Duration>,
}

impl<C> Clone for BoundedConnect<C> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner), timeout: self.timeout }
    }
}

impl<C> BoundedConnect<C> {
    /// `inner`, its connects ended with [`ConnectTimedOut`] after `timeout`
    /// (`None`: unbounded, the call's deadline still applies).
    pub(crate) fn new(inner: C, timeout: Option<Duration>) -> Self {
        Self { inner: Arc::new(inner), timeout }
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
    C: Service<Uri> + Clone + Send + 'static,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    /// Always ready: each connect readies its own copy of the connector.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut connector = C::clone(&self.inner);
        let timeout = self.timeout;
        let connect = async move {
            std::future::poll_fn(|cx| connector.poll_ready(cx)).await.map_err(Into::into)?;
            connector.call(uri).await.map_err(Into::into)
        };
        Box::pin(async move {
            match timeout {
                Some(limit) => {
                    tokio::time::timeout(limit, connect).await.unwrap_or_else(|_| Err(ConnectTimedOut(limit).into()))
                }
                None => connect.await,
            }
        })
    }
}
