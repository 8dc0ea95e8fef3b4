//! The production Multica daemon API client, on hyper 1.x, hyper-util and
//! rustls.
//!
//! [`HyperClient`] implements [`multica::DaemonApi`](multica_api::DaemonApi) against a real
//! server: every request is built by [`multica::request`](multica_api::request) and every
//! answer read by it, so this crate only moves bytes. What it adds:
//!
//! - one keep-alive pool per client (clones share it), HTTP/1.1, and HTTP/2
//!   by ALPN over TLS; [`HyperClient::drop_idle_connections`] to start afresh;
//! - TLS by rustls (feature `tls`, on by default) with the web PKI roots and
//!   extra roots for self-hosted servers;
//! - a whole-call deadline (30 s by default, like the Go client), a connect
//!   timeout over TCP and the TLS handshake, a cap on success bodies and
//!   4096 bytes read of error bodies;
//! - failures told apart by where they happened
//!   ([`TransportKind`](multica_api::TransportKind)), so the
//!   [`Retry`](multica_api::layer::Retry) layer can repeat even a claim whose
//!   connection never opened; the client itself sends each call once
//!   (retries are configured in one place, that layer);
//! - a call dropped by its caller (a timeout, a `select!`) closes its
//!   HTTP/1.1 connection at once, as Go does, so abandoned calls never pile
//!   up connections; over HTTP/2 its exchange finishes in the background,
//!   bounded in number and time, so giving up does not reset streams in
//!   storms that would fail the other calls sharing the connection;
//!   [`HyperClient::abandoned_calls`] counts them, claims apart;
//! - HTTP proxies as Go's default transport has them (`HTTPS_PROXY`,
//!   `HTTP_PROXY`, `NO_PROXY`), or as set by [`HyperClientBuilder::proxy`]:
//!   `CONNECT` tunnels for `https://`, absolute-form requests for `http://`;
//! - [`HyperClient::from_env`]: configuration from `MULTICA_SERVER_URL`,
//!   `MULTICA_TOKEN` and timeouts, as a daemon is configured;
//! - IDs percent-encoded as one path segment, `Authorization: Bearer` only
//!   when a token is set, no redirects followed, and a `Debug` that never
//!   shows the token.
//!
//! ```no_run
//! # mod multica { pub use multica_api::*; pub mod hyper { pub use multica_hyper::*; } }
//! use multica::layer::RetryPolicy;
//! use multica::{DaemonApiExt, RuntimeId};
//! use multica::hyper::HyperClient;
//!
//! # async fn run() -> Result<(), multica_api::Error> {
//! let client = HyperClient::builder("https://multica.example.com").token("mdt_…").build()?;
//! let client = client.with_retry(RetryPolicy::default());
//! let runtime = RuntimeId::new("rt-1");
//! client.send_heartbeat(&runtime).await?;
//! if let Some(task) = client.claim_task(&runtime).await? {
//!     client.start_task(&task.record.id).await?;
//! }
//! # Ok(()) }
//! ```

mod abandon;
mod builder;
mod client;
mod connect;
mod env;
mod headers;
mod proxy;
#[cfg(feature = "tls")]
mod tls;
mod transport;
mod url;
pub mod ws;
mod ws_first;

pub use abandon::{AbandonedCalls, BACKGROUND_GRACE, MAX_BACKGROUND_EXCHANGES};
pub use builder::{
    HyperClientBuilder, DEFAULT_CLIENT_OS, DEFAULT_CLIENT_PLATFORM, DEFAULT_CLIENT_VERSION, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
};
pub use client::HyperClient;
pub use env::{CONNECT_TIMEOUT_VAR, DEFAULT_SERVER_URL, SERVER_URL_VAR, TIMEOUT_VAR, TOKEN_VAR};
/// The policy of the [`Retry`](multica_api::layer::Retry) layer, which is
/// where retries of this client are configured.
pub use multica_api::layer::RetryPolicy;
pub use proxy::Proxy;
pub use ws::{WsChannel, WsConfig};
pub use ws_first::WsFirst;
