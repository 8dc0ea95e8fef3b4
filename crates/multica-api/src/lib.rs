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
//! # mod multica { pub use multica_api::*; }
//! use multica::{request, TaskId};
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
//! # Server versions
//!
//! One client speaks both server versions the SDK knows, 3c93ebaf1c and
//! HEAD 1cc46b2697 ([`ServerVersion`]). Request bodies without HEAD fields
//! are byte-identical to the Go client's at 3c93ebaf1c, and 3c93ebaf1c
//! ignores the HEAD fields, so most calls need no version at all. Where the
//! versions differ:
//!
//! - [`DaemonApiExt::server_version`] tells them apart with one probe
//!   (`GET /api/daemon/workspaces`: HEAD answers it, or refuses the
//!   credential; 3c93ebaf1c has no such route). Detect once, keep the
//!   answer, and hand it to the `*_on` helpers of calls that **moved**
//!   (usage, workspaces): each takes the route of that version, so no call
//!   costs a failed request first.
//! - Calls that exist **only at HEAD** and mean nothing before have
//!   `*_if_supported` helpers that try and answer "not supported"
//!   (`false`/`None`) on `404 page not found`: no version needed.
//! - HEAD **bodies of old routes** (`*_with`) are sent to the same route;
//!   a backend that does not know the HEAD [`Call`] gets the plain one.
//! - **Complete/fail**: HEAD answers 200 with the row unchanged when the
//!   task is not in a state to move; the typed methods read the row and
//!   report the 400 `… no rows in result set` 3c93ebaf1c gives
//!   ([`Error::is_task_state_conflict`]) on both versions.
//!
//! | call | 3c93ebaf1c | HEAD 1cc46b2697 | on the other version |
//! |---|---|---|---|
//! | `register`, `claim_task`, `list_pending_tasks`, `get_task_status`, `start_task`, `report_progress`, `report_task_messages`, `list_task_messages`, `complete_task` | yes | yes | HEAD adds fields to answers (typed in [`dto`]); `complete_task` detects HEAD's unchanged row |
//! | `deregister`, `send_heartbeat`, `fail_task` | yes | yes | the same body on both |
//! | `deregister_with`, `send_heartbeat_with`, `fail_task_with` | route yes, HEAD fields ignored | yes | 3c93ebaf1c acts as for the plain call |
//! | `list_task_messages_since` | route yes, `since` ignored | yes | filtered in the SDK too: the same messages on both |
//! | `report_usage` (per runtime and day) | yes | **removed** (404) | use `report_task_usage_on` |
//! | `report_task_usage` (per task) | 404 | yes | use `report_task_usage_on` |
//! | `report_task_usage_on(version, …)` | runtime route, dated entries, no cost | task route | — |
//! | `list_workspaces` (`/api/workspaces`, user token) | yes | yes, but not with a daemon token | use `list_workspaces_on` |
//! | `list_daemon_workspaces` | 404 | yes, any credential | use `list_workspaces_on` |
//! | `list_workspaces_on(version)` | `/api/workspaces` | `/api/daemon/workspaces` | — |
//! | `report_ping_result`, the three pairing calls | yes | **removed** (404) | HEAD has no pings (runtime requests instead) and no pairing |
//! | `ack_cancel` | 404 | yes | `ack_cancel_if_supported`: `false`, nothing to acknowledge |
//! | `extend_prepare_lease` | 404 | yes | `extend_prepare_lease_if_supported`: `None`, no lease to keep |
//! | `server_version` | `V3c93ebaf1c` | `Head` | — |
//! | `claim_tasks`, `wait_local_directory`, `pin_session`, `recover_orphans`, `resolve_skill_bundles`, `report_task_usage`, the runtime request results, the gc checks, `get_workspace_repos`, `list_runtime_profiles` | 404 | yes | `404 page not found` ([`Error::is_route_not_found`]); nothing at 3c93ebaf1c asks for them (no `waiting_local_directory`, no skill refs, no runtime requests) |
//!
//! # Evolution policy
//!
//! The server grows; the SDK absorbs what it adds in minor releases, and
//! code written against it keeps compiling:
//!
//! - **New response fields** are ignored by decoding until the SDK adds
//!   them (no type denies unknown fields), so an older SDK reads a newer
//!   server. The structs of [`dto`] gain fields in minor releases, and which
//!   way they travel decides how they are built:
//!   - **Answers** (what the server sends: [`RegisterResponse`], [`Runtime`],
//!     [`Task`], [`TaskRecord`], [`HeartbeatResponse`], [`StoredTaskMessage`],
//!     the gc-check, skill-bundle, workspace and claim answers and every
//!     struct nested in them) are `#[non_exhaustive]`: callers read their
//!     public fields; only test doubles build them, from `Default` and field
//!     assignment or a constructor ([`Repo::new`],
//!     [`StoredTaskMessage::new`]…). A struct
//!     literal of an answer does not compile outside this crate, so a new
//!     field breaks nobody:
//!
//!     ```compile_fail,E0639
//!     # mod multica { pub use multica_api::*; }
//!     let ping = multica::dto::PendingPing { id: "p-1".into() };
//!     ```
//!
//!     ```
//!     # mod multica { pub use multica_api::*; }
//!     let mut ping = multica::dto::PendingPing::default();
//!     ping.id = "p-1".into();
//!     assert_eq!(ping, multica::dto::PendingPing::new("p-1".into()));
//!     ```
//!   - **Requests** (what a caller sends: [`RegisterRequest`],
//!     [`RuntimeSpec`], [`TaskCompletion`], [`TaskMessage`], [`TaskFailure`],
//!     [`UsageEntry`], the HEAD request bodies…) stay plain structs with
//!     public fields and `Default`. Build them with their
//!     constructors or a literal ending in `..Default::default()`, never a
//!     literal naming every field: a field the SDK adds is optional (the
//!     server reads request bodies leniently, absent means default) and is
//!     sent as its default by code that does not set it.
//!
//!     ```
//!     # mod multica { pub use multica_api::*; }
//!     use multica::dto::RuntimeSpec;
//!     let spec = RuntimeSpec { name: "Claude".into(), provider: "claude".into(), ..Default::default() };
//!     assert_eq!(spec.version, "");
//!     ```
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
//! - **A new body of an existing route** (the HEAD fields of fail,
//!   heartbeat, deregister; the messages' `since`) is a new [`Call`]
//!   variant on the same [`Endpoint`] (`FailTaskWith` beside `FailTask`),
//!   never a changed variant: backends matching the old variant keep
//!   compiling, [`Call::decode`] picks the old variant when the HEAD fields
//!   are empty, and the typed `*_with` method falls back to the old call
//!   when a backend answers the new one with [`Error::route_not_found`].
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
mod push;
mod reply;
pub mod reporter;
pub mod request;
mod route;
mod serde_util;
#[cfg(test)]
mod test_double;
mod version;
mod wire_enum;

pub use api::{CallFuture, DaemonApi};
pub use call::{Call, CallDecodeError};
pub use dto::*;
pub use error::{error_body, DisplayChain, Error, Result, SharedSource, TransportKind, MAX_ERROR_BODY_BYTES};
pub use ext::DaemonApiExt;
pub use ids::{AgentId, DaemonId, IssueId, PingId, RuntimeId, TaskId, WorkspaceId};
pub use ids::{CommentId, ProfileId, RuntimeRequestId, UserId};
pub use push::Push;
pub use reply::Reply;
pub use route::{Endpoint, Method, RouteMismatch};
pub use version::ServerVersion;

/// Re-exported so implementors write `#[multica::async_trait]` without
/// adding the dependency themselves.
pub use async_trait::async_trait;
