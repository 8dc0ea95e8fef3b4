//! Configuration of a [`HyperClient`], checked once by [`HyperClientBuilder::build`].

use std::fmt;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use multica_api::{
    ClientCapability, Error, CAPABILITIES_HEADER, CLIENT_OS_HEADER, CLIENT_PLATFORM_HEADER, CLIENT_VERSION_HEADER,
};

use crate::client::{token_header, HyperClient, Settings};
use crate::connect::{self, BoundedConnect, Route};
use crate::headers::FixedHeaders;
use crate::proxy::Proxy;
#[cfg(feature = "tls")]
use crate::tls::TlsRoots;
use crate::transport::{HttpVersions, PoolSettings};
use crate::url::{redacted, BaseUrl};

/// The whole-request deadline: the Go client's `http.Client{Timeout: 30s}`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting (TCP) must finish within this: a server that does not accept
/// in 10 s is down, and a retry still fits in the 30 s deadline.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The cap on a success body: 8 MiB is far above a task with its skills
/// (kilobytes) and far below what could hurt a daemon's memory.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 8 * 1024 * 1024;
/// Idle keep-alive connections are closed after this, as Go's
/// `http.DefaultTransport` (`IdleConnTimeout: 90s`).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// The `User-Agent` sent unless replaced: the crate's name and version.
pub const DEFAULT_USER_AGENT: &str = concat!("multica-hyper/", env!("CARGO_PKG_VERSION"));
/// The `X-Client-Platform` sent unless replaced: this SDK.
pub const DEFAULT_CLIENT_PLATFORM: &str = "multica-rs";
/// The `X-Client-Version` sent unless replaced: this crate's version.
pub const DEFAULT_CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The `X-Client-OS` sent unless replaced: the operating system the client
/// was built for ([`std::env::consts::OS`], e.g. `linux`, `macos`).
pub const DEFAULT_CLIENT_OS: &str = std::env::consts::OS;

/// Builds a [`HyperClient`]. Every setting has a default (the constants of
/// this crate); only the base URL is required. Nothing is checked until
/// [`HyperClientBuilder::build`], which reports the first problem as
/// [`Error::InvalidArgument`].
///
/// ```
/// # mod multica { pub mod hyper { pub use multica_hyper::*; } }
/// use std::time::Duration;
/// use multica::hyper::HyperClient;
///
/// let client = HyperClient::builder("http://127.0.0.1:8080/")
///     .token("mdt_secret")
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// assert!(!format!("{client:?}").contains("mdt_secret"));
/// assert!(HyperClient::builder("localhost:8080").build().is_err());
/// # Ok::<(), multica_api::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct HyperClientBuilder {
    base_url: String,
    token: Option<String>,
    timeout: Duration,
    connect_timeout: Option<Duration>,
    max_body_bytes: u64,
    user_agent: String,
    capabilities: Vec<ClientCapability>,
    client_platform: String,
    client_version: String,
    client_os: String,
    http2: bool,
    http2_prior_knowledge: bool,
    pool_idle_timeout: Duration,
    proxy: Proxy,
    #[cfg(feature = "tls")]
    roots: TlsRoots,
}

impl HyperClientBuilder {
    pub(crate) fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            capabilities: Vec::new(),
            client_platform: DEFAULT_CLIENT_PLATFORM.to_owned(),
            client_version: DEFAULT_CLIENT_VERSION.to_owned(),
            client_os: DEFAULT_CLIENT_OS.to_owned(),
            http2: true,
            http2_prior_knowledge: false,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            proxy: Proxy::default(),
            #[cfg(feature = "tls")]
            roots: TlsRoots::default(),
        }
    }

    /// The bearer token sent as `Authorization: Bearer <token>`; an empty
    /// token sends no header, as the Go client. Replaceable later with
    /// [`HyperClient::set_token`].
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The deadline of a whole call: connecting, sending and the answer's
    /// body (default [`DEFAULT_TIMEOUT`]). Under a
    /// [`Retry`](multica_api::layer::Retry) layer it bounds each attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The deadline of opening a connection — name lookup, TCP and the TLS
    /// handshake together (default [`DEFAULT_CONNECT_TIMEOUT`]); `None`
    /// leaves it to the call's deadline.
    /// A connection that times out never carried the request, so even a
    /// claim may be retried after it.
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The largest success body accepted (default
    /// [`DEFAULT_MAX_BODY_BYTES`]); a larger one fails the call with
    /// [`Error::BodyTooLarge`] without being buffered.
    pub fn max_body_bytes(mut self, limit: u64) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Replaces the `User-Agent` (default [`DEFAULT_USER_AGENT`]).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The capabilities announced in `X-Client-Capabilities` on every
    /// request (server HEAD 1cc46b2697 reads it at register and on claims;
    /// 3c93ebaf1c ignores it). Default: none, and then no header is sent.
    ///
    /// Announce only what the daemon built on this client really does: the
    /// server shapes its answers by it. With
    /// [`ClientCapability::SkillBundles`] a claim carries skill references
    /// (`agent.skill_refs`) instead of the ~200 KB of inline skills, and the
    /// daemon must fetch them with
    /// [`resolve_skill_bundles`](multica_api::DaemonApiExt::resolve_skill_bundles);
    /// with [`ClientCapability::CoalescedComments`] comment-triggered tasks
    /// carry objects instead of a text bundle; without
    /// [`ClientCapability::LocalWorktree`] a task bound to a worktree-mode
    /// local directory is failed before launch, as it should be for a
    /// daemon that cannot run it. [`ClientCapability::GO_DAEMON`] is what
    /// the Go daemon sends.
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = ClientCapability>) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// The client's identity sent in `X-Client-Platform`, `X-Client-Version`
    /// and `X-Client-OS` on every request, which server HEAD 1cc46b2697
    /// logs and counts (and 3c93ebaf1c ignores). Defaults:
    /// [`DEFAULT_CLIENT_PLATFORM`], [`DEFAULT_CLIENT_VERSION`],
    /// [`DEFAULT_CLIENT_OS`]; an empty value sends no such header. A daemon
    /// built on the SDK sets its own name and version here.
    pub fn client_identity(
        mut self,
        platform: impl Into<String>,
        version: impl Into<String>,
        os: impl Into<String>,
    ) -> Self {
        self.client_platform = platform.into();
        self.client_version = version.into();
        self.client_os = os.into();
        self
    }

    /// Whether HTTP/2 is offered to TLS servers by ALPN (default on). Plain
    /// `http://` uses HTTP/1.1 unless [`Self::http2_prior_knowledge`] is set.
    pub fn http2(mut self, enabled: bool) -> Self {
        self.http2 = enabled;
        self
    }

    /// Speak only HTTP/2, also on plain TCP (h2c), for servers known to
    /// support it (default off).
    pub fn http2_prior_knowledge(mut self, enabled: bool) -> Self {
        self.http2_prior_knowledge = enabled;
        self
    }

    /// How long an unused keep-alive connection stays open (default
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`]).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Which proxy to go through (default [`Proxy::from_env`]: the
    /// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` variables, as the Go
    /// client). [`HyperClient::proxy`] tells the one in use.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = proxy;
        self
    }

    /// Connects directly, whatever the environment says: the same as
    /// `.proxy(Proxy::none())`.
    pub fn no_proxy(self) -> Self {
        self.proxy(Proxy::none())
    }

    /// Also trusts this DER-encoded root certificate (a self-hosted
    /// server's CA).
    #[cfg(feature = "tls")]
    pub fn add_root_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.der.push(der.into());
        self
    }

    /// Also trusts every certificate of this PEM text (one or more
    /// `-----BEGIN CERTIFICATE-----` blocks).
    #[cfg(feature = "tls")]
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.pem.push(pem.into());
        self
    }

    /// Whether Mozilla's web PKI roots are trusted (default on). Turn off to
    /// trust only the roots added here.
    #[cfg(feature = "tls")]
    pub fn web_pki_roots(mut self, enabled: bool) -> Self {
        self.roots.web_pki = enabled;
        self
    }

    /// Checks the configuration and creates the client with an empty pool.
    /// Must be called within a Tokio runtime only when the client is used.
    pub fn build(self) -> Result<HyperClient, Error> {
        let base = BaseUrl::parse(&self.base_url)?;
        #[cfg(not(feature = "tls"))]
        if base.is_https() {
            return Err(Error::InvalidArgument(format!(
                "base URL {base}: https:// needs the `tls` feature of multica-hyper"
            )));
        }
        let token = token_header(self.token.as_deref())?;
        let user_agent = http::HeaderValue::try_from(self.user_agent.as_str())
            .map_err(|_| Error::InvalidArgument("the user agent must be visible ASCII".into()))?;
        let client_headers = client_headers(
            &self.capabilities,
            [
                (CLIENT_PLATFORM_HEADER, &self.client_platform),
                (CLIENT_VERSION_HEADER, &self.client_version),
                (CLIENT_OS_HEADER, &self.client_os),
            ],
        )?;
        let versions = match (self.http2_prior_knowledge, self.http2) {
            (true, _) => HttpVersions::Http2PriorKnowledge,
            (false, true) => HttpVersions::Http1AndAlpnH2,
            (false, false) => HttpVersions::Http1Only,
        };
        let proxy = self.proxy.route(&base)?;
        if proxy.is_some() && versions == HttpVersions::Http2PriorKnowledge && !base.is_https() {
            return Err(Error::InvalidArgument(
                "HTTP/2 prior knowledge cannot go through an HTTP proxy; set no proxy or turn it off".into(),
            ));
        }
        let route = Route::new(connect::tcp_connector(self.connect_timeout), proxy.as_ref(), base.is_https());
        // The WebSocket always tunnels through a proxy (a forwarding proxy
        // cannot carry an upgrade) and speaks HTTP/1.1 (RFC 6455 upgrades
        // only there), with the same roots and connect timeout.
        let ws_route = Route::new(connect::tcp_connector(self.connect_timeout), proxy.as_ref(), true);
        #[cfg(feature = "tls")]
        let connector = BoundedConnect::new(self.roots.wrap(route, versions)?, self.connect_timeout);
        #[cfg(feature = "tls")]
        let ws_connector =
            BoundedConnect::new(self.roots.wrap(ws_route, HttpVersions::Http1Only)?, self.connect_timeout);
        #[cfg(not(feature = "tls"))]
        let connector = BoundedConnect::new(route, self.connect_timeout);
        #[cfg(not(feature = "tls"))]
        let ws_connector = BoundedConnect::new(ws_route, self.connect_timeout);
        // Plain http sends the credentials with each request; a tunnel
        // sends them once, with its CONNECT.
        let proxy_authorization =
            proxy.as_ref().filter(|_| !base.is_https()).and_then(|route| route.authorization.clone());
        let settings = Settings {
            base,
            headers: FixedHeaders { user_agent, client: client_headers, proxy_authorization, host: None },
            max_body_bytes: self.max_body_bytes,
            pool: PoolSettings { versions, idle_timeout: self.pool_idle_timeout },
            proxy: proxy.map(|route| route.uri.to_string()),
        };
        Ok(HyperClient::new(settings, connector, ws_connector, token, self.timeout))
    }
}

/// The capability and identity headers, in the order sent; empty values
/// are left out. A value that is not visible ASCII (a control character
/// could split the request, other bytes are read differently by servers)
/// is an [`Error::InvalidArgument`] naming the header.
fn client_headers(
    capabilities: &[ClientCapability],
    identity: [(&'static str, &String); 3],
) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let capabilities = ClientCapability::header_value(capabilities);
    std::iter::once((CAPABILITIES_HEADER, &capabilities))
        .chain(identity)
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            let bad = || Error::InvalidArgument(format!("the {name} header must be visible ASCII, got {value:?}"));
            if !value.bytes().all(|byte| byte == b' ' || byte.is_ascii_graphic()) {
                return Err(bad());
            }
            let value = HeaderValue::try_from(value.as_str()).map_err(|_| bad())?;
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
            Ok((name, value))
        })
        .collect()
}

impl fmt::Debug for HyperClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("HyperClientBuilder");
        debug
            .field("base_url", &redacted(&self.base_url))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("user_agent", &self.user_agent)
            .field("capabilities", &self.capabilities)
            .field("client_identity", &(&self.client_platform, &self.client_version, &self.client_os))
            .field("http2", &self.http2)
            .field("http2_prior_knowledge", &self.http2_prior_knowledge)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("proxy", &self.proxy);
        #[cfg(feature = "tls")]
        debug
            .field("extra_roots", &(self.roots.der.len() + self.roots.pem.len()))
            .field("web_pki_roots", &self.roots.web_pki);
        debug.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let builder = HyperClientBuilder::new("http://h").token("s3cret-token");
        assert!(!format!("{builder:?}").contains("s3cret"));
        assert!(format!("{builder:?}").contains("<redacted>"));
    }

    #[test]
    fn header_unsafe_values_are_invalid_arguments() {
        let bad_token = HyperClientBuilder::new("http://h").token("a\nb").build();
        assert!(matches!(bad_token, Err(Error::InvalidArgument(_))));
        let bad_agent = HyperClientBuilder::new("http://h").user_agent("x\r\ny").build();
        assert!(matches!(bad_agent, Err(Error::InvalidArgument(_))));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_needs_the_tls_feature() {
        assert!(matches!(HyperClientBuilder::new("https://h").build(), Err(Error::InvalidArgument(_))));
    }
}
