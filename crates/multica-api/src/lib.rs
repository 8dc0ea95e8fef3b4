//! The Multica daemon API, independent of any transport.
//!
//! A Multica daemon registers its agent runtimes with a server, heartbeats,
//! claims tasks, streams live agent output and reports results. This crate
//! holds what every backend shares:
//!
//! - [`DaemonApi`], the trait with one async method per route;
//! - the typed bodies in [`dto`] and the ID newtypes;
//! - [`Error`], the Go client's `requestError` plus transport cases, with
//!   classifiers such as [`Error::is_task_not_found`];
//! - [`Endpoint`] (the route table), [`request`] (pure request building and
//!   response parsing) and [`Call`] (a call as a value, for servers and logs);
//!   [`impl_daemon_api!`] turns a transport's one `send` function into a
//!   `DaemonApi`;
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

mod api;
mod call;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod dto;
mod error;
mod ext;
mod ids;
pub mod layer;
pub mod reporter;
pub mod request;
mod route;
mod serde_util;
#[cfg(test)]
mod test_double;
mod via_requests;
mod wire_enum;

pub use api::DaemonApi;
pub use call::{Call, CallDecodeError};
pub use dto::*;
pub use error::{error_body, Error, Result, SharedSource, TransportKind, MAX_ERROR_BODY_BYTES};
pub use ext::DaemonApiExt;
pub use ids::{AgentId, DaemonId, IssueId, PingId, RuntimeId, TaskId, WorkspaceId};
pub use ids::{CommentId, ProfileId, RuntimeRequestId, UserId};
pub use route::{Endpoint, Method, RouteMismatch};

/// Re-exported so implementors write `#[multica_api::async_trait]` without
/// adding the dependency themselves.
pub use async_trait::async_trait;
