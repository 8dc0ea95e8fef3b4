//! The Multica daemon API, independent of any transport.
//!
//! A Multica daemon registers its agent runtimes with a server, heartbeats,
//! claims tasks, streams live agent output and reports results. This crate
//! holds what every backend shares:
//!
//! - [`DaemonApi`], the trait a backend implements: one method,
//!   [`DaemonApi::call`], taking a [`Call`] and answering a [`Reply`];
//! - [`DaemonApiExt`], what callers use: one typed async method per route
//!   (`api.claim_task(&runtime).await`) on every backend, and layer stacking;
//! - the typed bodies in [`dto`] and the ID newtypes;
//! - [`Error`], the Go client's `requestError` plus transport cases, with
//!   classifiers such as [`Error::is_task_not_found`];
//! - [`Endpoint`] (the route table), [`request`] (pure request building and
//!   response parsing) and [`Call`] (a call as a value: what a transport
//!   sends with [`Call::to_request`], what a server decodes, what logs keep);
//! - helpers for every backend: the live-output [`reporter`], the [`layer`]s
//!   (timeout, retry, tracing) stacked with [`DaemonApiExt`], and the
//!   `conformance` suite (feature `conformance`) that proves a backend.
//!
//! Backends: `multica-hyper` (the production HTTP client) and `multica-mock`
//! (a stateful fake of the server). Code written against `&dyn DaemonApi`
//! runs unchanged on either.
//!
//! ```
//! use multica_api::{request, TaskId};
//!
//! // What the hyper client sends for a fail, built without any IO:
//! let req = request::fail_task(&TaskId::new("t-1"), "agent crashed")?;
//! assert_eq!(req.path(), "/api/daemon/tasks/t-1/fail");
//! assert_eq!(req.wire().body.as_deref(), Some(&br#"{"error":"agent crashed"}"#[..]));
//! // …and how it reads the server's answer:
//! let err = req.decode_response(400, b"{\"error\":\"fail task: no rows in result set\"}\n").unwrap_err();
//! assert_eq!(err.to_string(),
//!     r#"POST /api/daemon/tasks/t-1/fail returned 400: {"error":"fail task: no rows in result set"}"#);
//! # Ok::<(), multica_api::Error>(())
//! ```
//!
//! # Evolution policy
//!
//! The server grows; the SDK absorbs what it adds in minor releases, and
//! code written against it keeps compiling:
//!
//! - **New response fields** are ignored by decoding until the SDK adds
//!   them (no type denies unknown fields), so an older SDK reads a newer
//!   server. The structs of [`dto`] gain fields in minor releases: build the
//!   ones you send from `Default` (`..Default::default()`) or their
//!   constructors, never with a literal naming every field. The server reads
//!   request bodies leniently (absent means default), so a field the SDK
//!   adds is sent as its default by code that does not set it.
//!   (`#[non_exhaustive]` with constructors and `with_*` setters is where
//!   these structs are going; config types have it already.)
//! - **New enum values** are kept, not rejected: every wire enum
//!   ([`TaskStatus`], [`MessageKind`]…) has an `Other(String)` variant that
//!   holds a value this SDK does not know and sends it back unchanged. The
//!   SDK's own enums ([`Error`], [`Call`], [`Reply`], [`Endpoint`],
//!   [`TransportKind`]…) are `#[non_exhaustive]`: match them with a `_` arm.
//!   A value promoted from `Other` to a named variant is a minor change too,
//!   so match wire enums with a `_` arm as well.
//! - **New routes** are a new [`Call`] variant, an [`Endpoint`] row, a
//!   [`Reply`] variant when the answer has a new shape, and a typed method
//!   on [`DaemonApiExt`]. [`DaemonApi`] itself names no route, so a new
//!   route breaks no backend and no layer: layers pass every call through
//!   by its [`Endpoint`]; a transport built on [`Call::to_request`] sends the
//!   new route unchanged; a backend that matches on calls answers the ones
//!   it does not know with [`Error::route_not_found`], which is exactly what
//!   an older server answers (`404 page not found`), so callers detect a
//!   missing route the same way on every backend
//!   ([`Error::is_route_not_found`]) and can fall back.
//! - **Configuration** types (the layers' [`RetryPolicy`](layer::RetryPolicy),
//!   the [`reporter`]'s config) are `#[non_exhaustive]` with `Default` and
//!   chainable `with_*` setters, so a new setting is never a breaking change;
//!   layers are configured the same way
//!   ([`Timeout::with_endpoint_timeout`](layer::Timeout::with_endpoint_timeout),
//!   [`Retry::with_endpoint_policy`](layer::Retry::with_endpoint_policy));
//!   the hyper client, which checks its settings once, has a builder. Every
//!   token a client or fake is given (`token`, `set_token`, `with_token`)
//!   takes `impl Into<String>`.
//!
//! Adding a route to the SDK is therefore one edit per place, each next to
//! the same kind of code: the [`Call`] variant with its path parameters,
//! request and decoding (`call.rs`, [`request`]), the [`Endpoint`] row, the
//! [`Reply`] decoder of its shape, the typed method, and the fake's handling
//! in `multica-mock`.

mod api;
mod call;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dto;
mod error;
mod ext;
pub mod go_json;
mod ids;
pub mod layer;
mod reply;
pub mod reporter;
pub mod request;
mod route;
mod serde_util;
#[cfg(test)]
mod test_double;
mod wire_enum;

pub use api::DaemonApi;
pub use call::{Call, CallDecodeError};
pub use dto::*;
pub use error::{error_body, DisplayChain, Error, Result, SharedSource, TransportKind, MAX_ERROR_BODY_BYTES};
pub use ext::DaemonApiExt;
pub use ids::{AgentId, DaemonId, IssueId, PingId, RuntimeId, TaskId, WorkspaceId};
pub use ids::{CommentId, ProfileId, RuntimeRequestId, UserId};
pub use reply::Reply;
pub use route::{Endpoint, Method, RouteMismatch};

/// Re-exported so implementors write `#[multica_api::async_trait]` without
/// adding the dependency themselves.
pub use async_trait::async_trait;
