//! [`MockDaemon`]: the fake as a [`DaemonApi`], plus its test controls.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use multica_api::{
    AgentId, Call, Endpoint, Error, IssueId, Method, PairingSession, PingId, Reply, Result, Runtime, RuntimeId,
    TaskMessage, TaskProgress, TaskRecord, TaskStatus, UsageEntry, WorkspaceId,
};

use crate::clock::{Millis, DEFAULT_START_MILLIS};
use crate::faults::{retarget, Fault};
use crate::inspect::{AgentState, Snapshot};
use crate::log::{Transport, DEFAULT_CALL_LOG_CAPACITY};
use crate::requests::{Rerun, RuntimeRequest, RuntimeRequestState};
use crate::seed::{AgentSeed, RuntimeSeed, Seed, TaskSeed, WorkspaceSeed};
use crate::state::{Caller, Rejection, Reply as StateReply, State, ROUTE_NOT_FOUND};
use crate::tokens::MockToken;
use crate::version::ServerVersion;

/// A stateful in-memory fake of the Multica server.
///
/// Cheap to clone (clones share one state) and safe to use from many
/// threads. Every [`multica::DaemonApi`](multica_api::DaemonApi) call follows the server's rules
/// (listed in the crate docs, [Semantics worth knowing](crate#semantics-worth-knowing))
/// and fails with the very [`Error`] value the hyper client would build from the
/// server's answer. Build one with [`MockDaemon::new`] or
/// [`MockDaemon::builder`]; serve it over HTTP with [`crate::serve`].
#[derive(Clone)]
pub struct MockDaemon {
    shared: Arc<Mutex<State>>,
    /// The `Authorization` header value this handle presents (see
    /// [`MockDaemon::with_token`]).
    authorization: Option<Arc<str>>,
    /// The `X-Client-Capabilities` value this handle presents (see
    /// [`MockDaemon::with_capabilities`]).
    capabilities: Option<Arc<str>>,
    /// The state's version, fixed at build time: read without the lock.
    version: ServerVersion,
}

impl fmt::Debug for MockDaemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never shows the token.
        f.debug_struct("MockDaemon").field("presents_token", &self.authorization.is_some()).finish_non_exhaustive()
    }
}

impl Default for MockDaemon {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures a [`MockDaemon`].
#[derive(Clone, Debug, Default)]
pub struct MockDaemonBuilder {
    token: Option<String>,
    call_log_capacity: Option<usize>,
    start_millis: Option<u64>,
    seed: Option<Seed>,
    frontend_url: Option<String>,
    version: Option<ServerVersion>,
    jwt_secret: Option<String>,
}

impl MockDaemonBuilder {
    /// Turns auth on: `GET /api/workspaces` then needs `Authorization:
    /// Bearer <token>` (401 `missing authorization header` / `invalid
    /// token` otherwise). The built handle presents this token itself.
    /// At [`ServerVersion::Head`] it is the personal token of a member of
    /// every workspace, and every daemon route needs a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How many calls the call log keeps, oldest dropped first
    /// (default [`DEFAULT_CALL_LOG_CAPACITY`]; 0 turns the log off).
    pub fn call_log_capacity(mut self, capacity: usize) -> Self {
        self.call_log_capacity = Some(capacity);
        self
    }

    /// Where the fake clock starts, in milliseconds since the Unix epoch
    /// (default [`crate::DEFAULT_START_MILLIS`], 2026-01-01T00:00:00Z).
    pub fn clock_start_millis(mut self, millis: u64) -> Self {
        self.start_millis = Some(millis);
        self
    }

    /// Data to load at build time.
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The server's frontend URL (default [`crate::DEFAULT_FRONTEND_URL`]):
    /// pairing sessions link to `<url>/pair/local?token=…`, and it is the
    /// one origin the HTTP server's CORS policy allows.
    pub fn frontend_url(mut self, url: impl Into<String>) -> Self {
        self.frontend_url = Some(url.into());
        self
    }

    /// The secret login JWTs are signed with (default
    /// [`crate::DEFAULT_JWT_SECRET`], the server's development secret): the
    /// auth middlewares accept an HMAC-signed JWT of it whose `sub` names a
    /// user ([`MockDaemon::login_jwt`] issues one).
    pub fn jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.jwt_secret = Some(secret.into());
        self
    }

    /// The server version whose contract the fake answers (default
    /// [`ServerVersion::V3c93ebaf1c`]); see the crate docs for HEAD's rules.
    pub fn server_version(mut self, version: ServerVersion) -> Self {
        self.version = Some(version);
        self
    }

    /// Builds the fake; fails when the seed is inconsistent (a duplicate ID,
    /// an unknown workspace or runtime).
    pub fn build(self) -> Result<MockDaemon> {
        let version = self.version.unwrap_or(ServerVersion::V3c93ebaf1c);
        let mut state = State::new(
            version,
            Millis(self.start_millis.unwrap_or(DEFAULT_START_MILLIS)),
            self.token.as_deref(),
            self.call_log_capacity.unwrap_or(DEFAULT_CALL_LOG_CAPACITY),
        );
        if let Some(url) = self.frontend_url {
            state.frontend_url = url;
        }
        if let Some(secret) = self.jwt_secret {
            state.jwt_secret = secret.into_bytes();
        }
        let mock = MockDaemon {
            shared: Arc::new(Mutex::new(state)),
            authorization: self.token.map(|t| Arc::from(format!("Bearer {t}"))),
            capabilities: None,
            version,
        };
        if let Some(seed) = &self.seed {
            mock.seed(seed)?;
        }
        Ok(mock)
    }
}

/// Why a call did not succeed, before it is turned into an [`Error`] or an
/// HTTP answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server's own answer.
    Rejected(Rejection),
    /// A fault armed by the test.
    Injected(Error),
}

impl MockDaemon {
    /// An empty fake with auth off.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Mutex::new(State::new(
                ServerVersion::V3c93ebaf1c,
                Millis(DEFAULT_START_MILLIS),
                None,
                DEFAULT_CALL_LOG_CAPACITY,
            ))),
            authorization: None,
            capabilities: None,
            version: ServerVersion::V3c93ebaf1c,
        }
    }

    /// Options: auth token, call log size, clock start, seed.
    pub fn builder() -> MockDaemonBuilder {
        MockDaemonBuilder::default()
    }

    /// A handle on the same state that presents `token` to the routes that
    /// check auth — to test what a daemon with a wrong token sees. Takes
    /// `impl Into<String>`, as every token argument of the SDK.
    pub fn with_token(&self, token: impl Into<String>) -> MockDaemon {
        let authorization = Arc::from(format!("Bearer {}", token.into()));
        MockDaemon { authorization: Some(authorization), ..self.clone() }
    }

    /// A handle on the same state that presents no token.
    pub fn without_token(&self) -> MockDaemon {
        MockDaemon { authorization: None, ..self.clone() }
    }

    /// A handle on the same state that sends `capabilities` as its
    /// `X-Client-Capabilities` on every call, as a client built with them
    /// does over HTTP (HEAD reads it at register and on claims: with
    /// `skill-bundles-v1` a claim carries skill references).
    pub fn with_capabilities(&self, capabilities: &[multica_api::ClientCapability]) -> MockDaemon {
        let header = multica_api::ClientCapability::header_value(capabilities);
        MockDaemon { capabilities: Some(Arc::from(header)), ..self.clone() }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should a caller's panic
        // ever poison it, the state is still consistent per call.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one call: logs it, applies an armed fault (delay, then error),
    /// then `op` under the lock. The delay comes before the call takes
    /// effect, so a caller that gives up during it (a timeout) changes nothing.
    pub(crate) async fn run<T>(
        &self,
        endpoint: Endpoint,
        transport: Transport,
        call: impl FnOnce() -> Call,
        op: impl FnOnce(&mut State) -> std::result::Result<T, Rejection>,
    ) -> std::result::Result<T, Failure> {
        let fault = {
            let mut state = self.lock();
            state.calls.count();
            if state.calls.is_recording() {
                state.calls.push(call(), transport);
            }
            match state.faults.take(endpoint) {
                None => return op(&mut state).map_err(Failure::Rejected),
                Some(fault) => fault,
            }
        };
        let Fault { delay, error } = fault;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(error) = error {
            return Err(Failure::Injected(error));
        }
        op(&mut self.lock()).map_err(Failure::Rejected)
    }

    // ----- seeding ---------------------------------------------------------

    /// Loads a fixture (workspaces, agents, runtimes, tasks, in that order).
    /// Items before a failing one stay loaded.
    pub fn seed(&self, seed: &Seed) -> Result<()> {
        self.lock().seed(seed)
    }

    /// Creates a workspace.
    pub fn add_workspace(&self, workspace: WorkspaceSeed) -> Result<WorkspaceId> {
        self.lock().add_workspace(&workspace)
    }

    /// Creates an agent in an existing workspace.
    pub fn add_agent(&self, agent: AgentSeed) -> Result<AgentId> {
        self.lock().add_agent(&agent)
    }

    /// Creates a custom runtime profile of a workspace (HEAD), as a user does:
    /// a daemon that registers a runtime with its `profile_id` gets a runtime
    /// of the profile's protocol family (409 once it is disabled), and
    /// `GET /workspaces/{id}/runtime-profiles` lists it while enabled.
    /// Returns the profile as the server answers it.
    pub fn add_runtime_profile(&self, profile: &crate::seed::RuntimeProfileSeed) -> Result<serde_json::Value> {
        self.lock().add_runtime_profile(profile)
    }

    /// Creates a runtime as if a daemon had registered it (never seen yet).
    pub fn add_runtime(&self, runtime: RuntimeSeed) -> Result<RuntimeId> {
        self.lock().add_runtime(&runtime)
    }

    /// Queues a task on an existing runtime; returns its ID.
    pub fn add_task(&self, task: TaskSeed) -> Result<multica_api::TaskId> {
        self.lock().add_task(&task)
    }

    /// Cancels a task (as reassigning or closing its issue does): a queued
    /// task leaves the queue; dispatched and running ones turn `cancelled`,
    /// which the daemon sees in [`multica::DaemonApiExt::get_task_status`](multica_api::DaemonApiExt::get_task_status). Finished
    /// tasks are left as they are. Returns the task afterwards.
    ///
    /// A user cancelling a task the daemon is running:
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod mock { pub use multica_mock::*; } }
    /// use multica::{DaemonApiExt, RuntimeId, TaskCompletion, TaskStatus};
    /// use multica::mock::{MockDaemon, Seed};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mock = MockDaemon::builder().seed(Seed::demo()).build()?;
    /// let runtime = RuntimeId::new("33333333-3333-4333-8333-333333333333");
    /// let task = mock.claim_task(&runtime).await?.expect("a queued task");
    /// mock.start_task(&task.record.id).await?;
    ///
    /// let record = mock.cancel(&task.record.id)?;
    /// assert_eq!(record.status, TaskStatus::Cancelled);
    /// // The daemon polls the status, sees the cancellation and drops its result;
    /// // completing anyway is the server's 400.
    /// assert_eq!(mock.get_task_status(&task.record.id).await?, TaskStatus::Cancelled);
    /// let late = mock.complete_task(&task.record.id, &TaskCompletion::with_output("done")).await;
    /// assert!(late.unwrap_err().is_task_state_conflict());
    /// # Ok::<(), multica_api::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn cancel(&self, task_id: &multica_api::TaskId) -> Result<TaskRecord> {
        self.lock().cancel_task(task_id)
    }

    /// Sets an issue's status (`done`, `cancelled`, `todo`…). The next claim
    /// that meets a task of a `done` or `cancelled` issue cancels all of
    /// that issue's tasks.
    pub fn set_issue_status(&self, issue_id: &IssueId, status: &str) -> Result<()> {
        self.lock().set_issue_status(issue_id, status)
    }

    /// An issue's status, when one was seeded or set.
    pub fn issue_status(&self, issue_id: &IssueId) -> Option<String> {
        self.lock().issue_status(issue_id)
    }

    /// Deletes a runtime, as a user does in the UI (HEAD): its next
    /// heartbeat on the WebSocket channel is acked `runtime_gone`, an HTTP
    /// one answers 404 `runtime not found`, and a handshake naming it 404.
    /// Its tasks stay. `DELETE /_mock/runtimes/{id}`.
    pub fn remove_runtime(&self, runtime_id: &RuntimeId) -> Result<()> {
        self.lock().remove_runtime(runtime_id)
    }

    /// Deletes a workspace with its agents, runtimes and runtime profiles;
    /// every channel connection of a member hears `daemon:workspaces_changed`
    /// (creating one with [`MockDaemon::add_workspace`] pushes the same).
    /// `DELETE /_mock/workspaces/{id}`.
    pub fn remove_workspace(&self, workspace_id: &WorkspaceId) -> Result<()> {
        self.lock().remove_workspace(workspace_id)
    }

    /// Deletes a custom runtime profile; pushes
    /// `daemon:runtime_profiles_changed`. `DELETE /_mock/runtime-profiles/{id}`.
    pub fn remove_runtime_profile(&self, profile_id: &str) -> Result<()> {
        self.lock().remove_profile(profile_id)
    }

    /// How many daemon WebSocket channel connections are open.
    pub fn channel_connections(&self) -> usize {
        self.lock().hub.connection_count()
    }

    /// Asks a runtime to answer a ping: its next heartbeat hands it out (once).
    pub fn request_ping(&self, runtime_id: &RuntimeId) -> Result<PingId> {
        self.lock().create_ping(runtime_id)
    }

    /// Asks a runtime for its model list, local skills, a skill import or a
    /// CLI update, as a user of the web UI does (HEAD): the runtime's next
    /// heartbeat hands the request out once, and the daemon answers it on
    /// the result routes. Returns the request as stored (its ID generated
    /// when empty). Fails as the user API does: 404 `runtime not found`,
    /// 503 `runtime is offline` (all but an update), 409 `an update is
    /// already in progress for this runtime`, 400 without the `skill_key`
    /// of an import or the `target_version` of an update.
    ///
    /// A daemon asked for its models:
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod mock { pub use multica_mock::*; } }
    /// use multica::{DaemonApiExt, HeartbeatRequest, ModelListResult, RuntimeModel, RuntimeId};
    /// use multica::mock::{MockDaemon, RuntimeRequest, Seed, ServerVersion};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mock = MockDaemon::builder().server_version(ServerVersion::Head).token("mul_test")
    ///     .seed(Seed::demo()).build()?;
    /// let runtime = RuntimeId::new("33333333-3333-4333-8333-333333333333");
    /// let asked = mock.request_runtime(&RuntimeRequest::model_list(runtime.clone()))?;
    ///
    /// let beat = mock.send_heartbeat_with(&HeartbeatRequest::new(runtime.clone())).await?;
    /// let pending = beat.pending_model_list.expect("handed out");
    /// assert_eq!(pending.id, asked.id);
    /// // Handed out once.
    /// assert!(mock.send_heartbeat(&runtime).await?.pending_model_list.is_none());
    ///
    /// let mut result = ModelListResult::default();
    /// result.status = "completed".into();
    /// result.models = vec![RuntimeModel { id: "sonnet".into(), label: "Sonnet".into(), ..Default::default() }];
    /// mock.report_model_list(&runtime, &pending.id, &result).await?;
    /// assert_eq!(mock.runtime_requests()[0].status, "completed");
    /// # Ok::<(), multica_api::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn request_runtime(&self, request: &RuntimeRequest) -> Result<RuntimeRequest> {
        self.lock()
            .enqueue_runtime_request(request)
            .map_err(|r| Error::from_server_message(Method::Post, "/_mock/runtime-requests", r.status, &r.message))
    }

    /// The runtime requests users made, oldest first, each with its status
    /// (`pending`, `running` once handed out, `completed`, `failed`,
    /// `timeout`) and the daemon's report.
    pub fn runtime_requests(&self) -> Vec<RuntimeRequestState> {
        self.lock().runtime_requests()
    }

    /// Reruns a task, as a user does (`POST /api/issues/{id}/rerun` with
    /// its `task_id`, HEAD): queues a new task of the same agent, issue and
    /// runtime (and priority, unless given) whose row carries
    /// `attribution.rerun_of_task_id` and whose claim offers that task's
    /// work dir, and its session when resumable. Returns the new task's ID.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod mock { pub use multica_mock::*; } }
    /// use multica::{DaemonApiExt, RuntimeId, TaskCompletion};
    /// use multica::mock::{MockDaemon, Rerun, Seed, ServerVersion};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mock = MockDaemon::builder().server_version(ServerVersion::Head).token("mul_test")
    ///     .seed(Seed::demo()).build()?;
    /// let runtime = RuntimeId::new("33333333-3333-4333-8333-333333333333");
    /// mock.send_heartbeat(&runtime).await?;
    /// let first = mock.claim_task(&runtime).await?.expect("a queued task");
    /// mock.start_task(&first.record.id).await?;
    /// let mut done = TaskCompletion::with_output("done");
    /// done.session_id = "sess-1".into();
    /// done.work_dir = "/tmp/work".into();
    /// mock.complete_task(&first.record.id, &done).await?;
    ///
    /// let rerun = mock.rerun(&Rerun::of(first.record.id.clone()).with_priority(9))?;
    /// let again = mock.claim_task(&runtime).await?.expect("the rerun");
    /// assert_eq!(again.record.id, rerun);
    /// assert_eq!(again.prior_session_id, "sess-1");
    /// assert_eq!(again.prior_work_dir, "/tmp/work");
    /// let attribution = again.record.attribution.expect("attributed");
    /// assert_eq!(attribution.rerun_of_task_id, Some(first.record.id));
    /// # Ok::<(), multica_api::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn rerun(&self, rerun: &Rerun) -> Result<multica_api::TaskId> {
        self.lock().rerun_task(rerun, None)
    }

    /// Accepts `token` from now on (HEAD's daemon and user routes): a
    /// personal token of a member of some workspaces, or a daemon token of
    /// one workspace and daemon. Fails on a token without its kind's prefix
    /// (`mul_`, `mdt_`) or an `expires_at` that is not RFC 3339.
    pub fn add_token(&self, token: &MockToken) -> Result<()> {
        self.lock().add_token(token)
    }

    /// A login JWT of a user, as the server issues one at sign-in: HS256
    /// with the configured secret, `sub` = `user_id`, valid 30 days on the
    /// fake clock. The seed's user ([`crate::UserSeed`]) is a member of
    /// every workspace; another user of the workspaces of its personal
    /// tokens ([`MockToken::of_user`]). A test authenticates as the web UI
    /// does by sending it as `Authorization: Bearer <jwt>`.
    pub fn login_jwt(&self, user_id: &str) -> String {
        self.lock().issue_login_jwt(user_id)
    }

    /// The server version this fake emulates.
    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    /// Approves a pending pairing session for a workspace, as a user would.
    pub fn approve_pairing(&self, token: &str, workspace_id: &WorkspaceId) -> Result<PairingSession> {
        self.lock().approve_pairing(token, workspace_id)
    }

    /// Moves the fake clock forward (it never moves by itself), running the
    /// server's sweeper at every 30 s tick passed: see the crate docs.
    pub fn advance_clock(&self, by: Duration) {
        self.lock().advance_clock(by);
    }

    // ----- faults ----------------------------------------------------------

    /// The next `count` calls of `endpoint` fail with `error`. The error's
    /// method and path are replaced by the failing request's, so it is the
    /// value a client would have built. Over HTTP an [`Error::Status`] is
    /// answered with its status and body; any other error closes the
    /// connection without an answer.
    ///
    /// A server that is briefly unavailable, and a `Retry` layer riding it
    /// out (on a paused clock, so the backoff takes no real time):
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod mock { pub use multica_mock::*; } }
    /// use multica::layer::RetryPolicy;
    /// use multica::{DaemonApiExt, Endpoint, Error, Method, RuntimeId};
    /// use multica::mock::{MockDaemon, Seed};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
    /// let mock = MockDaemon::builder().seed(Seed::demo()).build()?;
    /// let runtime = RuntimeId::new("33333333-3333-4333-8333-333333333333");
    /// let unavailable = Error::from_server_message(Method::Post, "/api/daemon/heartbeat", 503, "try later");
    ///
    /// mock.fail_next(Endpoint::SendHeartbeat, 1, unavailable.clone());
    /// let err = mock.send_heartbeat(&runtime).await.unwrap_err();
    /// assert_eq!(err.status(), Some(503));
    /// assert!(err.is_transient());
    /// mock.send_heartbeat(&runtime).await?; // the fault is spent
    ///
    /// // Two failures, then the third attempt of the retry layer succeeds.
    /// mock.fail_next(Endpoint::SendHeartbeat, 2, unavailable);
    /// let api = mock.clone().with_retry(RetryPolicy::default());
    /// api.send_heartbeat(&runtime).await?;
    /// assert_eq!(mock.calls_to(Endpoint::SendHeartbeat).len(), 5); // every attempt reached the fake
    /// # Ok::<(), multica_api::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn fail_next(&self, endpoint: Endpoint, count: u32, error: Error) {
        self.lock().faults.fail_next(endpoint, count, error);
    }

    /// The next `count` calls of `endpoint` answer `status` with
    /// `{"error": message}`, as a server handler would.
    pub fn fail_next_with_status(&self, endpoint: Endpoint, count: u32, status: u16, message: &str) {
        let error = Error::from_server_message(endpoint.method(), endpoint.template(), status, message);
        self.fail_next(endpoint, count, error);
    }

    /// The next `count` calls of `endpoint` wait `delay` (on tokio's clock,
    /// so `tokio::time::pause` applies) before taking effect.
    pub fn delay_next(&self, endpoint: Endpoint, count: u32, delay: Duration) {
        self.lock().faults.delay_next(endpoint, count, delay);
    }

    /// The next `count` WebSocket handshakes that pass auth are refused
    /// with `status` and `{"error": message}` instead of upgraded.
    /// `POST /_mock/faults` `{"endpoint":"ws_upgrade","status":…}`.
    pub fn refuse_channel_upgrades(&self, count: u32, status: u16, message: &str) {
        if count > 0 {
            self.lock().hub.refuse_upgrades(count, status, message);
        }
    }

    /// The next `count` `tasks.claim` RPCs take effect (their tasks are
    /// dispatched) and then the connection is dropped instead of answered:
    /// the client's uncertain claim. `{"endpoint":"ws_claim","close_connection":true}`.
    pub fn drop_channel_after_claims(&self, count: u32) {
        self.lock().hub.drop_after_claims(count);
    }

    /// The next `count` `tasks.claim` RPCs wait `delay` (tokio's clock)
    /// before taking effect; past the request's `timeout_ms` the answer is
    /// 500 and nothing is claimed. `{"endpoint":"ws_claim","delay_ms":N}`.
    pub fn delay_channel_claims(&self, count: u32, delay: Duration) {
        if count > 0 {
            self.lock().hub.delay_claims(count, delay);
        }
    }

    /// Disarms every fault, the channel's too.
    pub fn clear_faults(&self) {
        let mut state = self.lock();
        state.faults.clear();
        state.hub.clear_faults();
    }

    // ----- inspection ------------------------------------------------------

    /// The calls received, oldest first (bounded, see
    /// [`MockDaemonBuilder::call_log_capacity`]). Calls with an empty ID are
    /// refused before they are sent, so they are not here.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.calls().cloned().collect()
    }

    /// The calls received with the transport that carried each (HTTP, the
    /// WebSocket channel, or in process), oldest first.
    pub fn calls_with_transport(&self) -> Vec<(Call, Transport)> {
        self.lock().calls.entries().cloned().collect()
    }

    /// The logged calls of one route, oldest first.
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<Call> {
        self.lock().calls.calls().filter(|c| c.endpoint() == endpoint).cloned().collect()
    }

    /// How many calls were received since the start, logged or not.
    pub fn call_count(&self) -> u64 {
        self.lock().calls.total()
    }

    /// Empties the call log (the count keeps running).
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// A stored task.
    pub fn task(&self, task_id: &multica_api::TaskId) -> Option<TaskRecord> {
        self.lock().task(task_id)
    }

    /// A task's status, `None` if unknown.
    pub fn task_status(&self, task_id: &multica_api::TaskId) -> Option<TaskStatus> {
        self.lock().task_status(task_id).ok()
    }

    /// A task's stored messages, by seq ascending.
    pub fn messages(&self, task_id: &multica_api::TaskId) -> Vec<TaskMessage> {
        self.lock().list_messages(task_id).into_iter().map(|m| m.message).collect()
    }

    /// A task's last progress report.
    pub fn progress(&self, task_id: &multica_api::TaskId) -> Option<TaskProgress> {
        self.lock().progress(task_id)
    }

    /// A task's usage rows (HEAD's `POST /tasks/{id}/usage`), by (provider, model).
    pub fn task_usage(&self, task_id: &multica_api::TaskId) -> Vec<multica_api::TaskUsage> {
        self.lock().task_usage_of(task_id)
    }

    /// A runtime's stored usage rows, by (date, provider, model).
    pub fn usage_of(&self, runtime_id: &RuntimeId) -> Vec<UsageEntry> {
        self.lock().usage_of(runtime_id)
    }

    /// A stored runtime.
    pub fn runtime_by_id(&self, runtime_id: &RuntimeId) -> Option<Runtime> {
        self.lock().runtime(runtime_id)
    }

    /// How many successful heartbeats a runtime sent.
    pub fn heartbeats(&self, runtime_id: &RuntimeId) -> u64 {
        self.lock().heartbeats(runtime_id)
    }

    /// A workspace's repositories, `None` if the workspace is unknown.
    pub fn repos_of(&self, workspace_id: &WorkspaceId) -> Option<Vec<multica_api::Repo>> {
        self.lock().repos_of(workspace_id)
    }

    /// A stored agent.
    pub fn agent(&self, agent_id: &AgentId) -> Option<AgentState> {
        self.lock().agent(agent_id)
    }

    /// Everything at once (also served at `GET /_mock/state`).
    pub fn snapshot(&self) -> Snapshot {
        self.lock().snapshot()
    }
}

/// The in-process API runs each call as the HTTP server does
/// (the fault injection, then the state's dispatch), with the failures a
/// client would build from the answer: IDs are checked as the hyper client
/// checks them (nothing is sent for an empty ID), and a call the fake does
/// not know answers as a server without the route.
#[async_trait]
impl multica_api::DaemonApi for MockDaemon {
    async fn call(&self, call: Call) -> Result<Reply> {
        let endpoint = call.endpoint();
        let params = call.path_params();
        let path = || endpoint.path(&params);
        if params.iter().any(|p| p.is_empty()) {
            path()?;
        }
        let authorization = self.authorization.as_deref();
        let capabilities = self.capabilities.as_deref();
        let outcome = self
            .run(
                endpoint,
                Transport::InProcess,
                || call.clone(),
                |state| state.apply(&call, Caller { authorization, capabilities, if_none_match: None }),
            )
            .await;
        match outcome {
            Ok(reply) => Ok(api_reply(reply)),
            Err(Failure::Injected(error)) => Err(retarget(error, endpoint.method(), &path()?)),
            Err(Failure::Rejected(rejection)) if rejection.message == ROUTE_NOT_FOUND.message => {
                Err(Error::route_not_found(endpoint, path()?))
            }
            Err(Failure::Rejected(rejection)) => {
                Err(Error::from_server_message(endpoint.method(), path()?, rejection.status, &rejection.message))
            }
        }
    }
}

/// The API's reply for the state's answer: the task record that start,
/// complete and fail return comes back as the HTTP server sends it, so the
/// typed methods read it the same way on both.
fn api_reply(reply: StateReply) -> Reply {
    match reply {
        StateReply::Register(answer) => Reply::Registered(answer),
        StateReply::Ok => Reply::Done,
        StateReply::Record(record) => Reply::TaskRecord(Box::new(record)),
        StateReply::Heartbeat(answer) => Reply::Heartbeat(answer),
        StateReply::Claim(task) => Reply::Claimed(task.map(Box::new)),
        StateReply::Records(records) => Reply::PendingTasks(records),
        StateReply::Status(status) => Reply::TaskStatus(status),
        StateReply::Messages(messages) => Reply::Messages(messages),
        StateReply::Workspaces(workspaces) => Reply::Workspaces(workspaces),
        StateReply::Pairing(session) => Reply::PairingSession(Box::new(session)),
        StateReply::Api(reply) => reply,
    }
}
