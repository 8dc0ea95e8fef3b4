//! A stateful in-memory fake of the Multica server.
//!
//! [`MockDaemon`] implements [`multica_api::DaemonApi`] with the server's
//! semantics (SPEC §2): register upserts runtimes, claims hand out queued
//! tasks by priority, the task status machine answers the server's 400/404
//! errors, messages and usage are stored, pings are handed out once. Tests
//! seed data, inspect every call and the resulting state, and inject faults.
//! [`serve`] puts the same fake on `127.0.0.1` over HTTP, and the
//! `multica-mock-server` binary does it for clients in any language.
//!
//! ```
//! use multica_api::{DaemonApi, RegisterRequest, RuntimeSpec, TaskCompletion, TaskStatus};
//! use multica_mock::{MockDaemon, Seed};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mock = MockDaemon::builder().seed(Seed::demo()).build()?;
//! let registered = mock
//!     .register(&RegisterRequest {
//!         workspace_id: "11111111-1111-4111-8111-111111111111".into(),
//!         daemon_id: "demo-daemon".into(),
//!         device_name: "demo-host".into(),
//!         runtimes: vec![RuntimeSpec { provider: "claude".into(), ..RuntimeSpec::default() }],
//!         ..RegisterRequest::default()
//!     })
//!     .await?;
//! // Same workspace, daemon and provider: the seeded runtime, updated.
//! let runtime = &registered.runtimes[0];
//! assert_eq!(runtime.id, "33333333-3333-4333-8333-333333333333");
//!
//! // The highest-priority task comes first, with its agent and repos.
//! let task = mock.claim_task(&runtime.id).await?.expect("a queued task");
//! assert_eq!(task.record.priority, 5);
//! assert_eq!(task.agent.as_ref().map(|a| a.name.as_str()), Some("Builder"));
//!
//! // Completing a task that was never started is the server's 400.
//! let err = mock.complete_task(&task.record.id, &TaskCompletion::with_output("done")).await.unwrap_err();
//! assert_eq!(err.status(), Some(400));
//! mock.start_task(&task.record.id).await?;
//! mock.complete_task(&task.record.id, &TaskCompletion::with_output("done")).await?;
//! assert_eq!(mock.task_status(&task.record.id), Some(TaskStatus::Completed));
//! # Ok::<(), multica_api::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Semantics worth knowing
//!
//! - **IDs** are generated from a counter as UUID-looking strings
//!   (`00000000-0000-4000-8000-000000000001`…): runs are deterministic.
//! - **Time** is a fake clock starting at 2026-01-01T00:00:00Z that moves
//!   only when a test calls [`MockDaemon::advance_clock`] (or
//!   `POST /_mock/clock/advance`). Timestamps are RFC 3339 in UTC.
//! - **Runtimes** are upserted by (workspace, daemon, provider). An empty
//!   provider becomes `unknown`; an empty name becomes the provider, or
//!   `provider (device_name)` when a device name was sent. Status is
//!   `online` unless `offline` is sent. `device_info` is the device name and
//!   `metadata` is `{"version": …}`.
//! - **Claims** take the runtime's queued task with the highest priority,
//!   oldest first among equals, in O(log n). The task comes with its agent
//!   (when the agent exists), the workspace's repos, and `prior_session_id`
//!   / `prior_work_dir` from the newest completion of the same agent and
//!   issue that reported a session ID.
//! - **Completion** stores `{"output": …}` as the task's `result`.
//! - **Usage** rows are upserted by (runtime, date, provider, model): a
//!   later report replaces the counts. Rows with a date that is not a real
//!   `YYYY-MM-DD` day, or for an unknown runtime, are dropped (answer ok).
//! - **Auth** covers `GET /api/workspaces` only, and only when a token is
//!   configured ([`MockDaemonBuilder::token`]): no header gives 401
//!   `missing authorization header`, anything but `Bearer <token>` gives 401
//!   `invalid token`. In process, a handle presents the configured token;
//!   [`MockDaemon::with_token`] makes one that presents another (or none).
//! - **Pairing**: create answers 201 with a pending session expiring 10
//!   minutes later on the fake clock; [`MockDaemon::approve_pairing`] plays
//!   the user; claim needs an approved session (400 `pairing session is not
//!   approved`, 400 `pairing session expired`); unknown tokens get 404
//!   `pairing session not found`. `link_url` is omitted.
//! - **Faults** ([`MockDaemon::fail_next`], [`MockDaemon::delay_next`])
//!   apply to the next N calls of one [`multica_api::Endpoint`]. A delay
//!   happens before the call takes effect.
//! - **Call log**: every call received, in order, as [`multica_api::Call`]
//!   values, including calls answered by an injected fault. It keeps the
//!   newest [`DEFAULT_CALL_LOG_CAPACITY`] calls by default.
//!
//! # Over HTTP
//!
//! [`serve`] answers exactly the wire contract of SPEC §2: JSON bodies
//! ending in a newline (as Go's `json.Encoder` writes them) with
//! `Content-Type: application/json`; errors as `{"error":"…"}`; the auth
//! middleware's 401 with `Content-Type: text/plain`. A body that is not the
//! expected JSON gets 400 `invalid request body`; an unknown path 404
//! (`404 page not found`, as Go's router); a known path with another method
//! 405; a body above the cap ([`DEFAULT_MAX_BODY_BYTES`]) 413 `request body
//! too large`. Query strings are ignored. HTTP/1.1 and HTTP/2 (h2c).
//!
//! ## Control routes
//!
//! Under `/_mock/`, never clashing with the API (all JSON in and out; a bad
//! request is 400 `{"error":…}`, an unknown route 404):
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /_mock/seed` | a seed (format below) | `{"status":"ok"}` |
//! | `POST /_mock/workspaces` | one seed workspace | `{"id":…}` |
//! | `POST /_mock/agents` | one seed agent | `{"id":…}` |
//! | `POST /_mock/runtimes` | one seed runtime | `{"id":…}` |
//! | `POST /_mock/tasks` | one seed task (enqueue) | the task record |
//! | `POST /_mock/tasks/{taskId}/cancel` | — | the task record |
//! | `POST /_mock/runtimes/{runtimeId}/pings` | — | `{"id":…}` |
//! | `POST /_mock/pairing-sessions/{token}/approve` | `{"workspace_id":…}` | the session |
//! | `POST /_mock/clock/advance` | `{"seconds":N}` or `{"millis":N}` | `{"now":…}` |
//! | `POST /_mock/faults` | `{"endpoint":"claim_task","count":N,"status":503,"message":"busy"}` and/or `"delay_ms":N` | `{"status":"ok"}` |
//! | `DELETE /_mock/faults` | — | `{"status":"ok"}` |
//! | `GET /_mock/calls` | — | `[{"endpoint","method","path","body"}…]` (body as JSON, `null` for GET) |
//! | `DELETE /_mock/calls` | — | `{"status":"ok"}` |
//! | `GET /_mock/state` | — | a [`Snapshot`] |
//!
//! `endpoint` names a route by its trait method (`claim_task`) or variant
//! (`ClaimTask`).
//!
//! # Seed format
//!
//! A JSON object with four optional lists, applied in this order; IDs are
//! optional (generated when absent) and unknown fields are refused:
//!
//! - `workspaces`: `{id?, name, slug?, description?, context?, issue_prefix?, repos: [{url, description}]}`
//! - `agents`: `{id?, workspace_id, name, instructions, skills: [{name, content, files?: [{path, content}]}]}`
//! - `runtimes`: `{id?, workspace_id, daemon_id?, name?, provider?, version?, status?, device_name?}`
//!   — with a `daemon_id`, that daemon's registration with the same provider
//!   updates this runtime and keeps its ID.
//! - `tasks`: `{id?, runtime_id, agent_id, issue_id, priority?}` — queued;
//!   among equal priorities, listed order is claim order.
//!
//! The built-in demo ([`Seed::demo`]) is this crate's `examples/seed.json`:
//!
//! ```json
#![doc = include_str!("../examples/seed.json")]
//! ```

mod clock;
mod control;
mod daemon;
mod faults;
mod fixture;
mod inspect;
mod log;
mod seed;
mod server;
mod state;
mod stream;

pub use clock::DEFAULT_START_MILLIS;
pub use daemon::{MockDaemon, MockDaemonBuilder};
pub use inspect::{AgentState, PingState, RuntimeState, Snapshot, TaskState, UsageRow};
pub use log::DEFAULT_CALL_LOG_CAPACITY;
pub use seed::{AgentSeed, RuntimeSeed, Seed, TaskSeed, WorkspaceSeed};
pub use server::{serve, serve_with, MockServer, ServerConfig, DEFAULT_MAX_BODY_BYTES};
pub use stream::serve_stream;
