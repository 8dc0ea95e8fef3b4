//! A stateful in-memory fake of the Multica server.
//!
//! [`MockDaemon`] implements [`multica::DaemonApi`](multica_api::DaemonApi) with the server's
//! semantics (listed below, [Semantics worth knowing](#semantics-worth-knowing);
//! the whole wire contract is in the repository's `docs/protocol-3c93ebaf1c.md`):
//! register upserts runtimes, claims hand out queued
//! tasks by priority, the task status machine answers the server's 400/404
//! errors, messages and usage are stored, pings are handed out once. Tests
//! seed data, inspect every call and the resulting state, and inject faults.
//! [`serve`] puts the same fake on `127.0.0.1` over HTTP, and the
//! `multica-mock-server` binary does it for clients in any language.
//!
//! ```
//! # mod multica { pub use multica_api::*; pub mod mock { pub use multica_mock::*; } }
//! use multica::{DaemonApi, DaemonApiExt, RegisterRequest, RuntimeSpec, TaskCompletion, TaskStatus};
//! use multica::mock::{MockDaemon, Seed};
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
//! Every rule below is the real server's (commit 3c93ebaf1c), checked by
//! replaying its recorded answers (`tests/replay.rs`).
//!
//! - **IDs** are generated from a counter as UUIDs
//!   (`00000000-0000-4000-8000-000000000001`…): runs are deterministic.
//!   IDs are read as the database reads a `uuid`: upper case, `{…}` and the
//!   32-digit form without hyphens name the same row, and answers show the
//!   canonical lower-case form. A string that is not a UUID names no row
//!   (unless a fixture gave a row that very non-UUID ID), so it is "not
//!   found" wherever the server says so: 404 `task not found` for a task's
//!   status or messages, 400 `… no rows in result set` for start, complete
//!   and fail, 404 `workspace not found` at registration, 500 `heartbeat
//!   failed`, an empty pending list, a `null` claim. Ping IDs and pairing
//!   tokens are 32 lowercase hex digits.
//! - **Time** is a fake clock starting at 2026-01-01T00:00:00Z that moves
//!   only when a test calls [`MockDaemon::advance_clock`] (or
//!   `POST /_mock/clock/advance`). Timestamps are RFC 3339 in UTC, to the
//!   second, as the server writes them.
//! - **Input strings are trimmed** of surrounding white space before they
//!   are validated and stored (register, heartbeat, pairing): `"   "` is a
//!   missing `daemon_id`, `" <workspace id> "` is that workspace.
//! - **Runtimes** are upserted by (workspace, daemon, provider). An empty
//!   provider becomes `unknown`; an empty name becomes the provider, or
//!   `provider (device_name)` when a device name was sent. Status is
//!   `online` unless `offline` is sent. `device_info` is
//!   `"<device_name> · <version>"`, just the version without a device name,
//!   just the device name without a version; `metadata` is `{"version": …}`.
//! - **Claims** follow the server's walk: the runtime's queued and
//!   dispatched tasks by priority (highest first), then age. A task whose
//!   issue is `done` or `cancelled` cancels every task of that issue and is
//!   skipped. For each agent met the first time, that agent's own next
//!   queued task (on any runtime) is dispatched if the agent has room — its
//!   dispatched plus running tasks below its `max_concurrent_tasks`
//!   ([`DEFAULT_MAX_CONCURRENT_TASKS`] = 6 unless seeded) — and handed out
//!   if it is on this runtime. *Server quirk, reproduced:* when that task is
//!   on another runtime it is dispatched all the same, nobody receives it
//!   (that runtime's own claims skip dispatched tasks), and the walk goes on.
//!   The task comes with its agent (when the agent exists), the workspace's
//!   repos, and `prior_session_id` / `prior_work_dir` from the newest
//!   completion of the same agent and issue that reported a session ID.
//!   Issues are open unless seeded or set ([`MockDaemon::set_issue_status`],
//!   `POST /_mock/issues/{issueId}`).
//! - **The sweeper** runs every 30 s of fake time, counted from the clock's
//!   start; advancing the clock runs every sweep it passes, in order. A
//!   runtime whose last heartbeat is more than 45 s old goes `offline` and
//!   its dispatched and running tasks fail with `runtime went offline`
//!   (queued ones wait); a task dispatched for more than 300 s, or running
//!   for more than 9,000 s, fails with `task timed out`. A seeded runtime
//!   that no daemon has seen yet is never swept.
//! - **Task records** answered by start, complete, fail and the pending list
//!   carry `"workspace_id": ""` (the server's query does not fill it; the
//!   claim's does). **Completion** stores `result` as
//!   `{"output", "pr_url", "session_id", "work_dir"}`, every key present
//!   (empty strings for what was not sent).
//! - **Messages** are listed by `seq`; `seq` is a 32-bit column, so a larger
//!   value is stored and listed as its low 32 bits (two's complement).
//! - **Usage** rows are upserted by (runtime, date, provider, model): a
//!   later report replaces the counts. Rows with a date that is not a real
//!   `YYYY-MM-DD` day, or for an unknown runtime, are dropped (answer ok).
//! - **Auth** covers the user routes (`/api/workspaces`, approving a
//!   pairing) only, and only when a token is configured
//!   ([`MockDaemonBuilder::token`]): no header gives 401 `missing
//!   authorization header`, a value that is not `Bearer <non-empty>` 401
//!   `invalid authorization format`, another token 401 `invalid token`. In
//!   process, a handle presents the configured token;
//!   [`MockDaemon::with_token`] makes one that presents another and
//!   [`MockDaemon::without_token`] one that presents none.
//! - **Pairing**: create needs `daemon_id`, `device_name`, `runtime_name`
//!   and `runtime_type` (400 `<field> is required`) and answers 201 with a
//!   pending session expiring 10 minutes later on the fake clock, whose
//!   `link_url` is `<frontend URL>/pair/local?token=<token>`
//!   ([`MockDaemonBuilder::frontend_url`], default [`DEFAULT_FRONTEND_URL`]).
//!   A user approves with `POST /api/daemon/pairing-sessions/{token}/approve`
//!   and `{"workspace_id": …}` (authenticated like `/api/workspaces`), or a
//!   test with [`MockDaemon::approve_pairing`]. Claim needs an approved
//!   session (400 `pairing session is not approved`); claiming a claimed
//!   session answers it again (200). A pending session past `expires_at`
//!   reads `expired` and cannot be claimed; an approved one stays
//!   claimable. Unknown tokens get 404 `pairing session not found`.
//! - **Faults** ([`MockDaemon::fail_next`], [`MockDaemon::delay_next`])
//!   apply to the next N calls of one [`multica::Endpoint`](multica_api::Endpoint). A delay
//!   happens before the call takes effect.
//! - **Call log**: every call received, in order, as [`multica::Call`](multica_api::Call)
//!   values, including calls answered by an injected fault. It keeps the
//!   newest [`DEFAULT_CALL_LOG_CAPACITY`] calls by default.
//!
//! ## At server HEAD 1cc46b2697
//!
//! Built with [`MockDaemonBuilder::server_version`]`(`[`ServerVersion::Head`]`)`
//! (`multica-mock-server --server-version head`), the fake answers HEAD's
//! contract (`docs/protocol-head.md`), checked by replaying its recorded
//! answers (`tests/replay_head.rs`). What changes from the rules above:
//!
//! - **Auth on every `/api/daemon/*` request**, known route or not, before
//!   routing: no header → 401 `missing authorization header`; not
//!   `Bearer <non-empty>` → `invalid authorization format`; an unknown or
//!   expired `mdt_` daemon token → `invalid daemon token`; a `mul_` token
//!   the fake does not know, a `mcn_` cloud node token (no cloud fleet) →
//!   `invalid token`; anything else is read as a login JWT: HMAC-signed
//!   (`HS256`/`384`/`512`) with the configured secret
//!   ([`MockDaemonBuilder::jwt_secret`], default [`DEFAULT_JWT_SECRET`],
//!   the server's development secret), `exp`/`nbf` checked on the fake
//!   clock, else `invalid token` (so are `mat_` task tokens); without a
//!   non-blank string `sub` → `invalid claims`. A JWT of the seed's user
//!   ([`MockDaemon::login_jwt`]) acts on every workspace; of another user,
//!   on the workspaces of that user's personal tokens
//!   ([`MockToken::of_user`]). The server's temporarily disabled accounts (a
//!   fixed list of two user IDs and two e-mails) get 403 `account disabled`
//!   whatever their credential. These answers are `application/json`
//!   without a trailing newline. [`MockDaemonBuilder::token`] is the
//!   personal token of the seed's user, a member of every workspace;
//!   [`MockDaemon::add_token`] (`POST /_mock/tokens`) adds personal tokens
//!   of members of some workspaces ([`MockToken`]) and daemon tokens bound
//!   to a workspace and daemon ID, optionally expiring on the fake clock.
//!   `/api/workspaces` (HEAD's user middleware: no `Bearer <token>` is 401
//!   `missing authorization`, plain text) takes personal tokens (listing the
//!   user's workspaces), login JWTs and a claimed task's `auth_token` until
//!   the task completes or fails (as the runtime owner), never a daemon
//!   token.
//! - **Workspace access**: a runtime or task outside the caller's workspaces
//!   is 404 `not found` (a task: `task not found`); registering in one is 404
//!   `workspace not found`; deregister skips such runtimes.
//! - **IDs** are read as HEAD's handlers read them (pgx): 32 hex digits, or
//!   36 characters whose hyphen positions are not read, any case, nothing
//!   trimmed (but a registration's `workspace_id` and a workspace path) and no
//!   braces. A path or body ID that is not one is 400 `invalid
//!   runtime_id` / `invalid task_id` / `invalid workspace_id` / `invalid
//!   runtime_ids`; an unknown runtime is 404 `runtime not found` (heartbeat,
//!   claim, pending), an unknown task 404 `task not found` (every task
//!   route, start, complete and fail included).
//! - **Register** needs a runtime or a failed profile (400 `at least one
//!   runtime or failed profile is required`); providers are lower-cased;
//!   runtimes carry `owner_id` (the seed's [`UserSeed`] for personal tokens; a
//!   daemon token keeps the owner), `launch_header`, `visibility: private`,
//!   `custom_name`/`profile_id` `null`, and `metadata` `{capabilities,
//!   cli_version, launched_by, version}` with the request's
//!   `X-Client-Capabilities`; the answer adds `repos_version` (SHA-256 of the
//!   sorted repo URLs) and `settings`. Runtimes are registered one after the
//!   other (an error answers at once; those before it stay registered).
//!   With a `profile_id` a runtime is an instance of that custom runtime
//!   profile ([`MockDaemon::add_runtime_profile`], seed `runtime_profiles`):
//!   upserted by (workspace, daemon, profile), its provider the profile's
//!   protocol family; 400 `invalid profile_id`, 400 `unknown runtime
//!   profile: <id>` (no such profile in the workspace), 409 `runtime profile
//!   is disabled: <id>`. A `failed_profiles` entry of a known, enabled
//!   profile records an offline runtime of it (`metadata` says why);
//!   others are skipped. `legacy_daemon_ids`: runtimes of the same provider
//!   registered under one of those daemon IDs (ignoring case) are merged
//!   into the registered one — their tasks move to it and they are deleted.
//!   `GET /workspaces/{id}/runtime-profiles` lists the enabled profiles.
//!   Heartbeats hand out no pings.
//! - **Task rows** carry `workspace_id`, `attempt`/`max_attempts` (1 and 2),
//!   `parent_task_id` on retries, work dirs with their relative forms,
//!   `delivered_comment_ids: []`, `kind: direct` and the assignment's
//!   `attribution` by the seed's user.
//! - **Claims** hand a runtime nothing unless it is online with a heartbeat
//!   in the last 150 s. A runtime needs an owner to mint a task's token
//!   (seeded runtimes belong to the seed's user; a user's registration
//!   makes that user the owner, a daemon token's keeps it): without one the
//!   task is cancelled and the claim is 500 `runtime owner required to mint
//!   task token` (a batch claim skips it). A dispatched task of the runtime that never started,
//!   dispatched 90 s ago or more with its 45 s prepare lease expired, is
//!   handed out again (same ID, new `dispatched_at`, new token); otherwise
//!   the first queued task by priority, then age, whose agent has room
//!   (dispatched, running and waiting tasks count) and no other active task
//!   on the same issue. Deferred retries whose time has come are queued
//!   first. The claim adds `workspace_context`, `leader_role_resolved`,
//!   `requesting_user_name` (the seed user's name), the newest session of the
//!   same agent and issue from any attempt on the same runtime (not one a
//!   context-exhaustion failure poisoned), a fresh `auth_token`
//!   (`mat_` + 40 hex digits), `thread_name` (the issue's title) and
//!   `active_sibling_runs` (the agent's other dispatched, running or waiting
//!   tasks, newest first, each with its issue's title and identifier
//!   `<issue_prefix>-<number>`; omitted when none).
//! - **Skills of a claim**: the agent's workspace skills followed by the 9
//!   skills built into the server binary (`multica-autopilots` …
//!   `multica-working-on-issues`), shipped as data in the fake's
//!   `builtin_skills.json` (content as the recorded server answered it).
//!   Without `skill-bundles-v1` they are inline (`agent.skills`, built-ins
//!   with `"id": ""`); with it `agent.skill_refs` lists references: a
//!   built-in as `builtin:<name>`, source `builtin`, no description. A
//!   file's `sha256` and every `size_bytes` (content plus files) are
//!   computed; the bundle `hash` is no digest of the content and files
//!   alone, so built-ins carry the recorded one and a workspace skill the
//!   one its seed pins (`skill_hashes`), else the fake's own digest.
//!   skill-bundles/resolve answers built-ins and workspace skills alike.
//! - **Start** takes `dispatched` or `waiting_local_directory`; **complete**
//!   acts on `running` only and **fail** on `dispatched`, `running` or
//!   `waiting_local_directory`: any other status answers **200 with the row
//!   unchanged**. Complete stores `branch_name`, `durable_work_dir`,
//!   `session_rollout_missing`, `retired_session_id` in `result` when set, and
//!   an output that is a context-exhaustion notice fails the task
//!   (`agent_error.context_overflow`; at most 320 bytes once trimmed). Fail
//!   without a `failure_reason` records the class of its error text, as the
//!   server's classifier finds it (context overflow, missing config,
//!   provider auth / quota / capacity / server error / network, model not
//!   found, empty output, agent timeout, missing executable, unsupported
//!   version, process failure, else `agent_error.unknown`: `""` and `agent
//!   crashed` are unknown); a legacy daemon label is upgraded from its text
//!   (`resolve skill bundles:` → `skill_bundle_unavailable`, …); any other
//!   reason is kept verbatim. A failure that poisons the session
//!   (`agent_error.context_overflow`, `iteration_limit`, …, or an error text
//!   with `400` and `invalid_request_error`, an unresolved authentication
//!   method, an empty history message) is never resumed. NULs are removed
//!   from stored strings.
//! - **Retries**: a failure with a retryable reason (`runtime_offline`,
//!   `runtime_recovery`, `timeout`, `codex_semantic_inactivity`,
//!   `agent_error.provider_network`, `skill_bundle_unavailable`) creates the
//!   next attempt when attempts remain (provider-network: at least 3) and the
//!   (issue, agent) has nothing else runnable: queued at once, or `deferred`
//!   for 1 s after `runtime_offline` (5 s before the last provider-network
//!   attempt).
//! - **Messages** are redacted when stored (`Bearer [REDACTED]`, `[REDACTED
//!   CREDENTIAL]` for `PASSWORD=…`-style assignments and provider keys) and
//!   listed with `issue_id` and a `created_at`.
//! - **Timestamps**: task and runtime rows are RFC 3339 to the second;
//!   database times that HEAD marshals as Go `time.Time` (a message's
//!   `created_at`, gc checks) are RFC 3339 with the fraction's trailing
//!   zeros dropped (none on a whole second), as Go's `time.RFC3339Nano`.
//!   The fake's database stamps a write at the fake time plus 2 µs per
//!   write since the clock last moved (the first 1 µs in), so its stamps
//!   carry a fraction as the server's do, and stay ordered.
//!   Progress and non-empty message batches look the task up first.
//! - **The sweeper** (every 30 s): a runtime silent for more than 150 s goes
//!   offline, its tasks untouched; a task dispatched more than 300 s ago,
//!   never started, lease expired, on a fresh runtime (or one gone for the
//!   3 h reconnect grace) fails `task timed out` (`timeout`); a task running
//!   more than 9,000 s on a runtime gone for the grace fails the same way;
//!   active tasks of a runtime gone for the grace fail `runtime went
//!   offline` (`runtime_offline`); a deferred retry whose runtime is not back
//!   3 h after it was due fails (`runtime_reconnect_timeout`); a queued task
//!   older than 2 h (not an offline retry) fails `task expired in queue`
//!   (`queued_expired`). Each retryable failure creates its retry. A
//!   runtime offline and last seen more than 7 days ago, with no unfinished
//!   task, is deleted with its tasks (the server also keeps runtimes its
//!   agents name; the fake's agents name none).
//! - **HEAD's new routes**: the batch claim (`/tasks/claim` and its alias
//!   `/claim`: `daemon_id` required, 403 `daemon_id does not match token`
//!   for a daemon token of another daemon, `max_tasks` not negative, capped
//!   at 32, malformed, unknown, repeated, inaccessible runtimes and another
//!   daemon's skipped, tasks in priority order across the runtimes);
//!   prepare-lease (45 s more for a dispatched or waiting task that has not
//!   started, 404 `task not found` for a task of another runtime);
//!   wait-local-directory (`dispatched` only); skill-bundles/resolve (the
//!   agent's workspace skills and the built-ins by reference, 409 `task is not preparing`, 404
//!   `skill bundle not found`); recover-orphans (in-flight tasks fail with
//!   `runtime_recovery` and are retried); task usage (upserted per provider
//!   and model, provider lower-cased, an empty one the runtime's:
//!   [`MockDaemon::task_usage`]); cancel-ack (recorded once, on a cancelled
//!   task only); the session pin (204, 400 `session_id or work_dir
//!   required`); `?since=N` on the message list (400 `invalid since
//!   parameter`); gc checks (a null `completed_at` is
//!   `0001-01-01T00:00:00Z`; an issue found but outside the caller's
//!   workspaces is 404 `not found`; the batch check parses its workspace
//!   first, 400 `invalid workspace_id`, takes at most 500 issues, 400 `too
//!   many issue_ids`, and names each as it was sent; chat sessions and
//!   autopilot runs are never found); a daemon token's workspace is compared
//!   with a workspace path's text as sent, a member's with the parsed ID; `GET /workspaces` (the caller's, by ID), `/workspaces/{id}/repos`
//!   and `/runtime-profiles` (the enabled ones). At 3c93ebaf1c every one of these
//!   routes is `404 page not found`, and HEAD bodies of old routes (a fail
//!   with `failure_reason`) are read as 3c93ebaf1c reads them.
//! - **Runtime requests** (what a user asks a runtime for in the web UI:
//!   [`MockDaemon::request_runtime`], `POST /_mock/runtime-requests`) are
//!   kept per kind, as the server's in-memory stores: a heartbeat of the
//!   runtime hands out, once each, the oldest pending update
//!   (`pending_update`), model list, local-skills list and import
//!   (`pending_local_skill_import`; with `supports_batch_import` up to 10
//!   imports in `pending_local_skill_imports`, the first repeated in the
//!   singular field). A request still pending turns `timeout` after 30 s
//!   (model list), 3 min (local skills, imports), 120 s (update); one handed
//!   out and not answered after 60 s (150 s for an update). Creating a
//!   request forgets those of its kind older than 2 min (model list) or
//!   5 min. A result route finds the request by its ID among its kind's
//!   (404 `request not found`, `update not found` for updates), with the
//!   path's runtime ID exactly as the server stored it; a finished request
//!   answers 200 without its body being read; `completed` completes it,
//!   anything else fails it (an import `completed` without a skill fails
//!   with `daemon returned an empty skill bundle`; an update takes
//!   `running`, `completed`, `failed`, else 400 `invalid status: <s>`).
//!   [`MockDaemon::runtime_requests`] shows each with its report.
//! - **Reruns** ([`MockDaemon::rerun`], `POST /_mock/tasks` with
//!   `rerun_of_task_id`): the queued, dispatched and deferred tasks of the
//!   source's issue and agent are cancelled, then a task of that agent and
//!   issue is queued (another issue or agent is refused); its row carries
//!   `attribution.rerun_of_task_id`; its claim offers the source task's work
//!   dir and, when the source ran on the same runtime and its failure does
//!   not poison the session, its session; a source of another agent or
//!   issue, or whose completion withheld its session
//!   (`session_rollout_missing`), sets `prior_session_resume_unavailable`.
//! - **Undecodable bodies**: complete, fail, task usage,
//!   wait-local-directory and skill-bundles/resolve look their task (and
//!   runtime) up before they read the body, so those errors come first; the
//!   result routes acknowledge a finished request whatever the body.
//! - **Removed routes** (runtime usage, ping results, pairing) answer 404
//!   `404 page not found` after auth; the in-process API answers them with
//!   [`multica::Error::route_not_found`](multica_api::Error::route_not_found).
//! - **Around the routes**: `GET /api/daemon/workspaces` answers with `ETag:
//!   W/"<SHA-256 of the JSON array>"` and `Cache-Control: private,
//!   no-cache`, and 304 without a body to a matching `If-None-Match`;
//!   the plugin routes answer 503
//!   `Plugin management is not enabled`. CORS also allows the
//!   `X-Client-Capabilities` request header and exposes
//!   `X-Comments-Truncated, X-Timeline-Truncated` to the allowed origin.
//! - **Every answer** carries HEAD's `Content-Security-Policy` header (but
//!   a WebSocket upgrade's bare 101).
//!
//! ## The daemon WebSocket channel (HEAD)
//!
//! Served wherever HTTP is: on loopback ([`serve`], the binary) and in
//! process over any byte stream ([`serve_stream`], e.g. a
//! `tokio::io::duplex`): `GET /api/daemon/ws?runtime_ids=<id>,<id>` (also
//! repeated `runtime_id`),
//! checked by the repository's WS contract (`WS-CONTRACT.md`, replayed
//! in `tests/replay_ws.rs`, its scenarios in `tests/channel.rs`):
//!
//! - **Handshake**, first failure wins, nothing upgraded: the daemon auth
//!   middleware's 401s; 405 with `Allow: GET`; 400 `runtime_ids or user
//!   identity required` (a daemon token without runtimes; a personal token
//!   without any connects "account-only"); per ID in order, all or nothing,
//!   400 `invalid runtime_id`, 404 `runtime not found` (also another daemon's
//!   runtime for a daemon token), 404 `not found` (a workspace the token
//!   cannot reach); then a request that is no WebSocket upgrade gets 400
//!   `Bad Request` (plain text, `Sec-Websocket-Version: 13`). The 101 has
//!   only `Upgrade`, `Connection`, `Sec-WebSocket-Accept`: no subprotocol, no
//!   compression. The connection holds the IDs **as sent** (upper case
//!   included) and the identity and `X-Client-Capabilities` of the handshake.
//! - **Frames** are `{"type","payload"}` JSON, text or binary alike, at most
//!   64 KiB (a larger message is closed with 1009, empty reason); anything
//!   unusable (not JSON, unknown type, a heartbeat for a runtime not held as
//!   sent, an RPC without `request_id`) is dropped silently.
//! - **`daemon:heartbeat`** runs the HTTP heartbeat in order on the read
//!   loop and answers `daemon:heartbeat_ack` with the canonical
//!   `runtime_id`, `status:"ok"`, `server_capabilities:["rpc-v1"]` and the
//!   pending runtime requests it hands out; a deleted runtime
//!   ([`MockDaemon::remove_runtime`]) gets `status:"runtime_gone"`,
//!   `runtime_gone:true`.
//! - **`daemon:rpc_request`** `tasks.claim` is the batch claim as the
//!   connection's identity with the handshake's capabilities (`status` and
//!   `body`, a refusal as its status and `{"error"}`); another method is 404
//!   `error: unknown rpc method "<m>"`; eight run at once, the ninth is 429
//!   `too many in-flight rpc requests` at once; `timeout_ms` bounds a claim
//!   (500 `failed to claim tasks: promote deferred tasks: context deadline exceeded`, its first stage).
//! - **Pushes**: `task_available {runtime_id, task_id}` when a task is queued
//!   (enqueue, retry, deferred task due), `{runtime_id}` when one ends
//!   (complete, fail, cancel); `pending_work {runtime_id, kind:"model_list"}`
//!   on a model-list request; `runtime_profiles_changed` to connections with
//!   a runtime in the workspace; `workspaces_changed {}` to personal-token
//!   connections of a member when a workspace is created or deleted
//!   ([`MockDaemon::add_workspace`], [`MockDaemon::remove_workspace`]).
//! - **Liveness**: a ping every 54 s; the read deadline is 60 s from connect
//!   or the last pong (heartbeats do not extend it), then an empty close
//!   frame; each write must finish within 10 s; a client close is echoed
//!   with its code and no reason; runtime status never depends on the
//!   socket. A push that finds the 16-frame send queue full evicts the
//!   connection; an ack or answer that does not fit is dropped.
//! - **Faults**: [`MockDaemon::refuse_channel_upgrades`],
//!   [`MockDaemon::drop_channel_after_claims`] (claimed, then dropped:
//!   the uncertain claim), [`MockDaemon::delay_channel_claims`] (past the
//!   budget). Heartbeats and claims over the socket are logged with
//!   [`Transport::Ws`] ([`MockDaemon::calls_with_transport`]). Shutting a
//!   [`MockServer`] down ends its fake's channel connections.
//!
//! # Over HTTP
//!
//! [`serve`] answers the wire contract as the server's router (chi) and
//! handlers do:
//!
//! - JSON bodies end in a newline (Go's `json.Encoder`) with
//!   `Content-Type: application/json`; errors are `{"error":"…"}`.
//! - `Content-Length` as Go's `net/http` sends it: it sets the length of an
//!   answer that fit in its 2048-byte write buffer, and chunks a larger one
//!   whose handler set none (HTTP/1.1). 3c93ebaf1c's handlers stream their
//!   JSON, so its answers above 2048 bytes are `Transfer-Encoding: chunked`;
//!   HEAD's set `Content-Length` on every JSON answer.
//! - Request bodies are read as Go's `encoding/json` decoder reads them into
//!   a struct ([`multica::go_json`](multica_api::go_json)): only the first JSON value counts
//!   (trailing bytes are ignored), `null` is an empty object, keys match
//!   ignoring case, a repeated key takes its last value, and an array (or
//!   any non-object) where an object belongs is 400 `invalid request body`,
//!   as is a value of the wrong type, an integer written as `2.0`, an empty
//!   or malformed body. Routes without a body (claim, start, pairing claim)
//!   ignore whatever is sent. There is no size cap by default, as on the
//!   server ([`ServerConfig::max_body_bytes`] sets one: 413 `request body too
//!   large`).
//! - Routing: an unknown path is 404 `404 page not found` and a 401 from the
//!   auth middleware is its JSON, both `text/plain; charset=utf-8` with
//!   `X-Content-Type-Options: nosniff`; a known path with another method
//!   (including `HEAD` and `OPTIONS` without CORS) is 405 with one `Allow`
//!   header per accepted method. Paths are case-sensitive and trailing or
//!   doubled slashes do not match, except `/api/workspaces/`. An empty ID
//!   inside a path is routed (`/api/daemon/tasks//status` is 404 `task not
//!   found`); a path with escapes Go would not write (`%2F`, `%2D`) is routed
//!   raw, its IDs undecoded. Under `/api/workspaces` the auth check runs
//!   before routing. `GET /health` answers `{"status":"ok"}` (no newline).
//!   Query strings are ignored.
//! - CORS: every answer has `Vary: Origin`; the one allowed origin is the
//!   frontend URL, which gets `Access-Control-Allow-Origin` and
//!   `Access-Control-Allow-Credentials: true`; a preflight (`OPTIONS` with
//!   `Access-Control-Request-Method`) answers 200 with the allowed method
//!   and `Access-Control-Max-Age: 300`.
//! - HTTP/1.1 and HTTP/2 (h2c).
//! - Clients cannot lock the server up by holding connections: slow heads,
//!   silent and idle connections are closed, and a cap on open connections
//!   sheds one for a new client: first a silent or slow connection, the
//!   longest-waiting, and only when there is none the longest-idle
//!   keep-alive connection of an answered client ([`ConnectionLimits`]).
//!   Over HTTP/2 a client may have 200 streams open, and its connection is
//!   ended (GOAWAY `ENHANCE_YOUR_CALM`) once 20 streams it reset wait to be
//!   taken: a rapid-reset client must reconnect every few dozen streams.
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
//! | `POST /_mock/tasks` | one seed task (enqueue); with `"rerun_of_task_id"` a user's rerun of that task ([`Rerun`]: its runtime, agent, issue and priority unless given) | the task record |
//! | `POST /_mock/tasks/{taskId}/cancel` | — | the task record |
//! | `POST /_mock/issues/{issueId}` | `{"status":"done"}` (or any status) | `{"id":…,"status":…}` |
//! | `POST /_mock/runtimes/{runtimeId}/pings` | — | `{"id":…}` |
//! | `POST /_mock/pairing-sessions/{token}/approve` | `{"workspace_id":…}` | the session |
//! | `POST /_mock/clock/advance` | `{"seconds":N}` or `{"millis":N}` | `{"now":…}` |
//! | `POST /_mock/faults` | `{"endpoint":"claim_task","count":N,"status":503,"message":"busy"}` and/or `"delay_ms":N`; for the WebSocket channel `{"endpoint":"ws_upgrade","status":503,"message":…}` (refuse the upgrade), `{"endpoint":"ws_claim","close_connection":true}` (claim, then drop the connection unanswered), `{"endpoint":"ws_claim","delay_ms":N}` (claim late: past `timeout_ms` answered 500, nothing claimed) | `{"status":"ok"}` |
//! | `DELETE /_mock/faults` | — | `{"status":"ok"}` |
//! | `GET /_mock/calls` | — | `[{"endpoint","method","path","body","transport"}…]` (body as JSON, `null` for GET; `transport`: `http`, `ws` or `in_process`) |
//! | `DELETE /_mock/calls` | — | `{"status":"ok"}` |
//! | `GET /_mock/state` | — | a [`Snapshot`] |
//! | `DELETE /_mock/runtimes/{runtimeId}` | — (HEAD: the next channel heartbeat for it is acked `runtime_gone`) | `{"status":"ok"}` |
//! | `DELETE /_mock/workspaces/{workspaceId}` | — (with its agents, runtimes, profiles; pushes `workspaces_changed`, as creating one does) | `{"status":"ok"}` |
//! | `DELETE /_mock/runtime-profiles/{profileId}` | — (pushes `runtime_profiles_changed`) | `{"status":"ok"}` |
//! | `POST /_mock/runtime-requests` | a [`RuntimeRequest`]: `{"id"?, "runtime_id", "kind": "model_list" \| "local_skills" \| "local_skill_import" \| "update", "skill_key"?, "target_version"?}` | 201, the request as stored (`id`: 32 hex digits, generated when absent); 404 `runtime not found`, 503 `runtime is offline` (all but `update`), 409 `an update is already in progress for this runtime`, 400 `skill_key is required` / `target_version is required` |
//! | `GET /_mock/runtime-requests` | — | every [`RuntimeRequestState`], oldest first |
//! | `POST /_mock/runtime-profiles` | a [`RuntimeProfileSeed`]: `{"id"?, "workspace_id", "display_name", "protocol_family", "command_name", "description"?, "fixed_args"?, "enabled"?}` (HEAD: pushes `runtime_profiles_changed`) | the profile as the server answers it |
//! | `POST /_mock/tokens` | a [`MockToken`]: `{"token":"mul_…","kind":"personal","member_of":[…]}` (`member_of` omitted: every workspace) or `{"token":"mdt_…","kind":"daemon","workspace_id":…,"daemon_id":…,"expires_at":"<RFC 3339>"}` | `{"status":"ok"}` |
//!
//! What a user does in the web UI, staged for a daemon under test (HEAD):
//!
//! ```text
//! POST /_mock/runtime-requests {"runtime_id": RT, "kind": "model_list"}
//!   → 201 {"id": "b75b…d401", "runtime_id": RT, "kind": "model_list"}
//! POST /api/daemon/heartbeat {"runtime_id": RT}        (the daemon)
//!   → {"status": "ok", "pending_model_list": {"id": "b75b…d401"}}
//! POST /api/daemon/runtimes/RT/models/b75b…d401/result {"status": "completed", "models": […]}
//! GET  /_mock/runtime-requests → [{…, "status": "completed", "result": {…}}]
//!
//! POST /_mock/tasks {"rerun_of_task_id": T1}
//!   → the new task's row, "attribution": {…, "rerun_of_task_id": T1}
//! POST /api/daemon/runtimes/RT/tasks/claim              (the daemon)
//!   → T1's work dir (and session, when resumable) as prior_work_dir / prior_session_id
//! ```
//!
//! In process: [`MockDaemon::request_runtime`], [`MockDaemon::runtime_requests`],
//! [`MockDaemon::rerun`].
//!
//! `endpoint` names a route by its trait method (`claim_task`) or variant
//! (`ClaimTask`).
//!
//! # Seed format
//!
//! A JSON object with five optional lists, applied in this order; IDs are
//! optional (generated when absent) and unknown fields are refused:
//!
//! - `workspaces`: `{id?, name, slug?, description?, context?, issue_prefix?, repos: [{url, description}]}`
//! - `agents`: `{id?, workspace_id, name, instructions, skills: [{id?, name, description?, content, files?: [{path, content}]}], max_concurrent_tasks?, skill_hashes?: {<skill name>: "sha256:<64 hex>"}}`
//!   — `skill_hashes` pins the bundle hash HEAD reports for a workspace skill.
//! - `runtimes`: `{id?, workspace_id, daemon_id?, name?, provider?, version?, status?, device_name?}`
//!   — with a `daemon_id`, that daemon's registration with the same provider
//!   updates this runtime and keeps its ID.
//! - `issues`: `{id, status?, title?, number?}` — a status such as `done`
//!   or `cancelled` (issues not listed are open); the title (a HEAD claim's
//!   `thread_name`) and the number within its workspace (identifier
//!   `<issue_prefix>-<number>`); an issue without a number gets the next
//!   free one of its workspace when its first task is queued.
//! - `tasks`: `{id?, runtime_id, agent_id, issue_id, priority?}` — queued;
//!   among equal priorities, listed order is claim order.
//! - `user`: `{id, name}` — the user the configured token belongs to
//!   (HEAD's `attribution`, `owner_id`, `requesting_user_name`); applied first.
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
mod requests;
mod router;
mod seed;
mod server;
mod state;
mod stream;
mod tokens;
mod version;
mod ws;

pub use clock::DEFAULT_START_MILLIS;
pub use daemon::{MockDaemon, MockDaemonBuilder};
pub use inspect::{AgentState, PingState, RuntimeState, Snapshot, TaskState, UsageRow};
pub use log::{Transport, DEFAULT_CALL_LOG_CAPACITY};
pub use requests::{Rerun, RuntimeRequest, RuntimeRequestKind, RuntimeRequestState};
pub use seed::{AgentSeed, IssueSeed, RuntimeProfileSeed, RuntimeSeed, Seed, TaskSeed, UserSeed, WorkspaceSeed};
pub use server::{
    serve, serve_with, ConnectionLimits, MockServer, ServerConfig, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS,
};
pub use state::{DEFAULT_FRONTEND_URL, DEFAULT_JWT_SECRET, DEFAULT_MAX_CONCURRENT_TASKS};
pub use stream::serve_stream;
pub use tokens::MockToken;
pub use version::{parse_server_version, ServerVersion, UnknownServerVersion};
