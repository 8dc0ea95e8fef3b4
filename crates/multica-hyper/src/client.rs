//! The client: one pool, a replaceable token, one attempt per call, `DaemonApi`.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Full;
use multica_api::layer::RetryPolicy;
use multica_api::request::EMPTY_BODY;
use multica_api::{Call, CallFuture, DaemonApi, Endpoint, Error, Method, Reply, Result};

use crate::abandon::{Abandoned, AbandonedCalls};
use crate::builder::HyperClientBuilder;
use crate::connect::Connector;
use crate::headers::{FixedHeaders, RequestHeaders};
use crate::transport::{self, CallName, Deadline, Exchange, HttpVersions, Pool, PoolSettings, Versions};
use crate::url::BaseUrl;

/// The production [`DaemonApi`](multica_api::DaemonApi) client: HTTP/1.1 and HTTP/2 over hyper,
/// TLS by rustls, keep-alive pooling, deadlines and body caps.
///
/// It sends each call once: retries are policy, configured in one place, the
/// [`Retry`](multica_api::layer::Retry) layer
/// (`client.with_retry(RetryPolicy::default())`), which works the same on
/// every backend and never multiplies when stacked.
///
/// Cloning is cheap and clones share the pool and the token. Create one per
/// server with [`HyperClient::builder`] and share it.
#[derive(Clone)]
pub struct HyperClient {
    shared: Arc<Shared>,
    timeout: Duration,
}

/// What the clones of a client share.
struct Shared {
    settings: Settings,
    connector: Connector,
    /// Opens the control channel's connections (HTTP/1.1, proxies by `CONNECT`).
    ws_connector: Connector,
    /// Replaced whole by [`HyperClient::drop_idle_connections`]; each call
    /// takes its own `Arc`, so a swap never disturbs calls in flight.
    pool: RwLock<Arc<Pool>>,
    /// The token and the headers built with it, replaced together.
    headers: RwLock<RequestHeaders>,
    /// Which versions the exchanges may speak, from the settings and the scheme.
    versions: Versions,
    abandoned: Arc<Abandoned>,
}

/// The fixed part of a client's configuration.
pub(crate) struct Settings {
    pub(crate) base: BaseUrl,
    pub(crate) headers: FixedHeaders,
    pub(crate) max_body_bytes: u64,
    pub(crate) pool: PoolSettings,
    /// The proxy's address (without credentials), when one is used.
    pub(crate) proxy: Option<String>,
}

/// The `Authorization` value for a token; none for no or an empty token.
pub(crate) fn token_header(token: Option<&str>) -> Result<Option<HeaderValue>> {
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Ok(None);
    };
    let mut value = HeaderValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Error::InvalidArgument("the token must be visible ASCII".into()))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

impl HyperClient {
    /// Starts configuring a client for the server at `base_url`
    /// (`http(s)://host[:port][/prefix]`).
    pub fn builder(base_url: impl Into<String>) -> HyperClientBuilder {
        HyperClientBuilder::new(base_url)
    }

    pub(crate) fn new(
        mut settings: Settings,
        connector: Connector,
        ws_connector: Connector,
        token: Option<HeaderValue>,
        timeout: Duration,
    ) -> Self {
        let pool = RwLock::new(transport::new_pool(connector.clone(), settings.pool));
        let versions = match settings.pool.versions {
            HttpVersions::Http1Only => Versions::Http1,
            HttpVersions::Http2PriorKnowledge => Versions::Http2,
            HttpVersions::Http1AndAlpnH2 if settings.base.is_https() => Versions::Negotiated,
            HttpVersions::Http1AndAlpnH2 => Versions::Http1,
        };
        if versions == Versions::Http1 {
            settings.headers.host = FixedHeaders::host_of(&settings.base);
        }
        let headers = RwLock::new(RequestHeaders::new(&settings.headers, token));
        let abandoned = Arc::default();
        let shared = Shared { settings, connector, ws_connector, pool, headers, versions, abandoned };
        Self { shared: Arc::new(shared), timeout }
    }

    /// Replaces the bearer token for every clone of this client, from the
    /// next request on; an empty token sends no `Authorization`, as
    /// [`HyperClient::clear_token`]. A token that cannot be a header value
    /// is an [`Error::InvalidArgument`] and leaves the current one in place.
    /// Takes `impl Into<String>`, as every token argument of the SDK.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod hyper { pub use multica_hyper::*; } }
    /// use multica::Error;
    /// use multica::hyper::HyperClient;
    ///
    /// let client = HyperClient::builder("https://multica.example.com").build()?;
    /// let same_pool = client.clone();
    /// // The daemon was paired and received its token: every clone sends it.
    /// client.set_token("mul_0123456789abcdef")?;
    /// assert!(same_pool.has_token());
    /// // Refused, and the token in place stays.
    /// assert!(matches!(client.set_token("two\nlines"), Err(Error::InvalidArgument(_))));
    /// assert!(same_pool.has_token());
    /// // Empty: no `Authorization` header any more.
    /// client.set_token("")?;
    /// assert!(!same_pool.has_token());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_token(&self, token: impl Into<String>) -> Result<()> {
        let value = token_header(Some(&token.into()))?;
        self.replace_token(value);
        Ok(())
    }

    fn replace_token(&self, token: Option<HeaderValue>) {
        let headers = RequestHeaders::new(&self.shared.settings.headers, token);
        *self.shared.headers.write().unwrap_or_else(PoisonError::into_inner) = headers;
    }

    /// Stops sending a token, for every clone of this client.
    pub fn clear_token(&self) {
        self.replace_token(None);
    }

    /// Whether a token is set.
    pub fn has_token(&self) -> bool {
        self.shared.headers.read().unwrap_or_else(PoisonError::into_inner).token().is_some()
    }

    /// Closes the pooled keep-alive connections, so the next call connects
    /// afresh — what the Go daemon does after repeated heartbeat failures so
    /// a stale socket cannot delay recovery.
    ///
    /// A new, empty pool replaces the old one for every clone. Calls in
    /// flight finish on the old pool; its connections close as soon as the
    /// last of them is done.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod hyper { pub use multica_hyper::*; } }
    /// use multica::{DaemonApiExt, RuntimeId};
    /// use multica::hyper::HyperClient;
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # use std::sync::Arc;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # // A server answering every request `{"status":"ok"}`, counting connections.
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # let connections = Arc::new(AtomicUsize::new(0));
    /// # let accepted = connections.clone();
    /// # tokio::spawn(async move {
    /// #     while let Ok((stream, _)) = listener.accept().await {
    /// #         accepted.fetch_add(1, Ordering::SeqCst);
    /// #         let ok = hyper::service::service_fn(|_| async {
    /// #             let body = http_body_util::Full::new(bytes::Bytes::from_static(b"{\"status\":\"ok\"}"));
    /// #             Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
    /// #         });
    /// #         let io = hyper_util::rt::TokioIo::new(stream);
    /// #         tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, ok));
    /// #     }
    /// # });
    /// let client = HyperClient::builder(url).build()?;
    /// let runtime = RuntimeId::new("rt-1");
    /// client.send_heartbeat(&runtime).await?;
    /// client.send_heartbeat(&runtime).await?;
    /// assert_eq!(connections.load(Ordering::SeqCst), 1, "kept alive and reused");
    ///
    /// // Heartbeats kept failing: start afresh rather than trust a stale socket.
    /// client.drop_idle_connections();
    /// client.send_heartbeat(&runtime).await?;
    /// assert_eq!(connections.load(Ordering::SeqCst), 2, "connected again");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn drop_idle_connections(&self) {
        let fresh = transport::new_pool(self.shared.connector.clone(), self.shared.settings.pool);
        *self.shared.pool.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }

    /// A handle with another whole-call deadline, sharing this client's pool
    /// and token (for one slow call, or a short-lived heartbeat). Named apart
    /// from `DaemonApiExt::with_timeout`, which wraps any backend in a
    /// `Timeout` layer and would otherwise win method resolution.
    pub fn with_call_timeout(&self, timeout: Duration) -> Self {
        Self { timeout, ..self.clone() }
    }

    /// This handle's whole-call deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The address of the proxy requests go through (credentials left
    /// out), or `None` for direct connections.
    pub fn proxy(&self) -> Option<&str> {
        self.shared.settings.proxy.as_deref()
    }

    /// What the control channel dials with: the connector, the base URL and
    /// the headers every HTTP call carries (token read at each dial).
    pub(crate) fn ws_connector(&self) -> Connector {
        self.shared.ws_connector.clone()
    }

    pub(crate) fn base(&self) -> &BaseUrl {
        &self.shared.settings.base
    }

    /// `User-Agent`, capabilities, identity and `Authorization`, as on
    /// every HTTP call.
    pub(crate) fn identity_headers(&self) -> Vec<(http::HeaderName, HeaderValue)> {
        let headers = self.shared.headers.read().unwrap_or_else(PoisonError::into_inner);
        headers.identity().map(|(name, value)| (name.clone(), value.clone())).collect()
    }

    /// What this client's callers gave up (all clones together): calls
    /// dropped while their exchange ran, claims among them, and what became
    /// of their exchanges. Over HTTP/1.1 an abandoned exchange closes its
    /// connection at once; over HTTP/2 it finishes in the background, at
    /// most [`MAX_BACKGROUND_EXCHANGES`](crate::MAX_BACKGROUND_EXCHANGES)
    /// at a time for at most [`BACKGROUND_GRACE`](crate::BACKGROUND_GRACE)
    /// each, then is reset. A daemon logs the growth of
    /// [`AbandonedCalls::claims`]: each may have taken a task nobody runs.
    pub fn abandoned_calls(&self) -> AbandonedCalls {
        self.shared.abandoned.snapshot()
    }

    /// Sends a call once within the deadline and decodes the answer.
    ///
    /// Everything up to handing the request to the pool happens before the
    /// returned future exists, so the future holds neither the call nor
    /// the HTTP request: boxed per call, it stays within glibc's per-thread
    /// cache of small blocks (at most 1,032 bytes): 1,008 bytes in a
    /// release build, where it was 2,248. Under the `Retry` layer it is
    /// boxed inside the retry loop's future instead: 1,392 bytes.
    fn send(&self, call: &Call) -> impl Future<Output = Result<Reply>> + Send + '_ {
        let prepared = self.prepare(call);
        async move {
            let deadline = Deadline { at: tokio::time::Instant::now() + self.timeout, after: self.timeout };
            let Prepared { request, sent } = prepared?;
            let wire = request.wire();
            let exchange = Exchange {
                name: CallName { method: wire.method(), path: &wire.path },
                max_body: self.shared.settings.max_body_bytes,
                deadline,
                claim: matches!(wire.endpoint, Endpoint::ClaimTask | Endpoint::ClaimTasks),
                abandoned: &self.shared.abandoned,
            };
            let answer = transport::exchange(sent, exchange).await?;
            request.decode_response(answer.status, &answer.body).map_err(|err| err.with_retry_after(answer.retry_after))
        }
    }

    /// Encodes a call and hands its request to the pool.
    fn prepare(&self, call: &Call) -> Result<Prepared> {
        let shared = &*self.shared;
        let mut request = call.to_request()?;
        // Moved, not copied, into a reference-counted buffer. The common
        // `{}` needs no buffer at all.
        let body = match request.take_body() {
            Some(body) if body == EMPTY_BODY => Bytes::from_static(EMPTY_BODY),
            Some(body) => Bytes::from(body),
            None => Bytes::new(),
        };
        let method = request.method();
        let headers = shared.headers.read().unwrap_or_else(PoisonError::into_inner).for_request(method, body.len());
        let mut http_request = http::Request::new(Full::new(body));
        *http_request.method_mut() = match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        };
        *http_request.uri_mut() = shared.settings.base.join(request.path())?;
        *http_request.headers_mut() = headers;
        let pool = shared.pool.read().unwrap_or_else(PoisonError::into_inner);
        let sent = transport::send(&pool, http_request, shared.versions);
        Ok(Prepared { request, sent })
    }
}

/// A call handed to the pool: what is left to await and decode.
struct Prepared {
    request: multica_api::request::Request<Reply>,
    sent: transport::Sent,
}

impl fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.shared.settings;
        f.debug_struct("HyperClient")
            .field("base_url", &format_args!("{}", settings.base))
            .field("token", &self.has_token().then_some("<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &settings.max_body_bytes)
            .field("versions", &settings.pool.versions)
            .field("proxy", &settings.proxy)
            .finish_non_exhaustive()
    }
}

// Written out rather than with `#[async_trait]`, which would keep the call
// in the boxed future for its whole life (see `HyperClient::send`).
impl DaemonApi for HyperClient {
    fn call<'life0, 'async_trait>(&'life0 self, call: Call) -> CallFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send(&call))
    }

    fn drop_idle_connections(&self) {
        HyperClient::drop_idle_connections(self);
    }

    /// The retry loop in the exchange's own future: each attempt builds
    /// its request from the one call this future holds, so the call is
    /// never copied and the `Retry` layer boxes no future of its own.
    fn call_retrying<'a>(&'a self, call: Call, policy: &'a RetryPolicy) -> CallFuture<'a> {
        Box::pin(async move { policy.run(call.endpoint(), || self.send(&call)).await })
    }
}
