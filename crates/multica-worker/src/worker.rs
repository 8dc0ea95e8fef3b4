//! The [`Worker`]: registration, the claim loop and shutdown.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use multica_api::{ClientCapability, DaemonApi, DaemonApiExt, Endpoint, Error, Runtime, RuntimeId, Task};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{self, Instant};

use crate::agent::{Agent, CancelReason};
use crate::backoff;
use crate::config::{Registration, WorkerConfig};
use crate::event::{EventFn, Events, Summary, WorkerEvent};
use crate::routes::{LaterRoute, ServerRoutes};
use crate::skills::SkillCache;
use crate::usage::DailyUsage;
use crate::wake::{self, PushStream, Wake};
use crate::{heartbeat, task};

/// Why a worker stopped without finishing its run normally.
///
/// `Display` shows this level, the server's answer is the
/// [`source`](std::error::Error::source); [`WorkerError::display_chain`]
/// shows both on one line.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The first registration failed (no workspace, bad request, server
    /// down); nothing else was done.
    #[error("registration failed")]
    Registration(#[source] Error),
    /// The server refused the token (401): the worker stopped claiming,
    /// ended its tasks and tried to deregister.
    #[error("the server refused the token (401); check or renew it")]
    Unauthorized {
        /// The server's answer.
        #[source]
        error: Error,
        /// What the run did before.
        summary: Summary,
    },
}

impl WorkerError {
    /// The server's answer that stopped the worker.
    pub fn error(&self) -> &Error {
        match self {
            Self::Registration(error) | Self::Unauthorized { error, .. } => error,
        }
    }

    /// This error and each of its causes, joined by `: `, for a log line.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; pub mod worker { pub use multica_worker::*; } }
    /// use multica::{Error, Method};
    /// use multica::worker::WorkerError;
    ///
    /// let answer = Error::from_server_message(Method::Post, "/api/daemon/register", 404, "workspace not found");
    /// let error = WorkerError::Registration(answer);
    /// assert_eq!(error.to_string(), "registration failed");
    /// assert_eq!(
    ///     error.display_chain().to_string(),
    ///     r#"registration failed: POST /api/daemon/register returned 404: {"error":"workspace not found"}"#
    /// );
    /// ```
    pub fn display_chain(&self) -> impl std::fmt::Display + '_ {
        struct Chain<'a>(&'a WorkerError);
        impl std::fmt::Display for Chain<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}: {}", self.0, self.0.error().display_chain())
            }
        }
        Chain(self)
    }
}

/// What the worker's parts share.
pub(crate) struct Shared {
    pub(crate) api: Arc<dyn DaemonApi>,
    pub(crate) agent: Arc<dyn Agent>,
    pub(crate) config: WorkerConfig,
    pub(crate) registration: Registration,
    pub(crate) events: Arc<Events>,
    pub(crate) runtimes: Mutex<Vec<Runtime>>,
    pub(crate) routes: Arc<ServerRoutes>,
    pub(crate) skills: SkillCache,
    pub(crate) daily_usage: Arc<DailyUsage>,
}

impl Shared {
    /// The provider of runtime `runtime_id` (empty when unknown).
    pub(crate) fn provider_of(&self, runtime_id: &RuntimeId) -> String {
        let runtimes = self.runtimes.lock().unwrap_or_else(PoisonError::into_inner);
        runtimes
            .iter()
            .find(|runtime| &runtime.id == runtime_id)
            .map(|runtime| runtime.provider.clone())
            .unwrap_or_default()
    }

    pub(crate) fn runtimes(&self) -> Vec<Runtime> {
        self.runtimes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Registers (again), replacing the runtimes the loops use.
    pub(crate) async fn register(&self) -> Result<Vec<Runtime>, Error> {
        let registered = self.api.register(&self.registration.request()).await?;
        *self.runtimes.lock().unwrap_or_else(PoisonError::into_inner) = registered.runtimes.clone();
        Ok(registered.runtimes)
    }
}

/// A whole daemon over any [`DaemonApi`]; see the [crate docs](crate).
pub struct Worker {
    api: Arc<dyn DaemonApi>,
    registration: Registration,
    agent: Arc<dyn Agent>,
    config: WorkerConfig,
    on_event: Option<EventFn>,
    pushes: Option<PushStream>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("api", &self.api)
            .field("registration", &self.registration)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the claim loop ended.
enum Stop {
    Shutdown,
    Idle,
    Unauthorized(Error),
}

impl Worker {
    /// The capabilities whose contract the worker honours, to announce in
    /// `X-Client-Capabilities` on every call (build the client with them:
    /// `HyperClient::builder(url).capabilities(Worker::CAPABILITIES)`):
    /// `skill-bundles-v1`, since the worker resolves a claim's skill
    /// references while the task prepares; at HEAD 1cc46b2697 a claim then
    /// carries references (a few KB) instead of every skill's content
    /// (about 200 KB). Not announced: `coalesced-comments-v1` and
    /// `local-worktree-v1` (the worker has no comment bundles or local
    /// directories to handle: without them the server keeps such tasks from
    /// it or explains), `rpc-v1` (WebSocket only), and the three the server
    /// does not read. The worker works without any of them too.
    pub const CAPABILITIES: [ClientCapability; 1] = [ClientCapability::SkillBundles];

    /// A worker that registers `registration` through `api` and runs
    /// `agent` per task, with [`WorkerConfig::default`].
    pub fn new(api: Arc<dyn DaemonApi>, registration: Registration, agent: impl Agent) -> Self {
        Self::with_shared_agent(api, registration, Arc::new(agent))
    }

    /// [`Worker::new`] with an agent already shared.
    pub fn with_shared_agent(api: Arc<dyn DaemonApi>, registration: Registration, agent: Arc<dyn Agent>) -> Self {
        Self { api, registration, agent, config: WorkerConfig::default(), on_event: None, pushes: None }
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Calls `on_event` for every [`WorkerEvent`], from the worker's tasks
    /// (keep it quick: print, count, send on a channel).
    pub fn on_event(mut self, on_event: impl Fn(&WorkerEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(on_event));
        self
    }

    /// Wakes the worker on a control channel's pushes (today's server: the
    /// daemon WebSocket, e.g. `WsFirst::pushes` of multica-hyper). While
    /// the channel is connected the worker claims across all its runtimes in
    /// one batch claim as soon as a task is announced (bursts coalesce into
    /// one claim), catches up on every (re)connect, polls every
    /// [`CHANNEL_POLL_INTERVAL`](crate::CHANNEL_POLL_INTERVAL) otherwise,
    /// heartbeats a runtime at once when the server has pending work for it,
    /// and registers again when its runtimes or profiles changed. While the
    /// channel is down (or was refused: server 3c93ebaf1c) it runs as
    /// without one.
    pub fn wake_on(mut self, pushes: impl futures_core::Stream<Item = multica_api::Push> + Send + 'static) -> Self {
        self.pushes = Some(Box::pin(pushes));
        self
    }

    /// Runs the daemon until `shutdown` resolves (or, with
    /// [`WorkerConfig::exit_when_idle`], the queues are empty), then ends
    /// the running tasks and deregisters. Fails when the first
    /// registration fails or the server refuses the token.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Summary, WorkerError> {
        self.run_until(shutdown, std::future::pending).await
    }

    /// [`Worker::run`] until the first `signal()` resolves; once shutdown
    /// has begun, `signal()` is called again and, when that resolves too
    /// (a second Ctrl-C), the grace period ends at once: running agents
    /// are told to stop and their tasks fail.
    ///
    /// ```no_run
    /// # async fn daemon(worker: multica_worker::Worker) -> Result<(), multica_worker::WorkerError> {
    /// let summary = worker.run_with_signal(|| async { let _ = tokio::signal::ctrl_c().await; }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_with_signal<F, S>(self, mut signal: F) -> Result<Summary, WorkerError>
    where
        F: FnMut() -> S,
        S: Future<Output = ()>,
    {
        let first = signal();
        self.run_until(first, signal).await
    }

    async fn run_until<S, F, G>(self, shutdown: S, force: F) -> Result<Summary, WorkerError>
    where
        S: Future<Output = ()>,
        F: FnOnce() -> G,
        G: Future<Output = ()>,
    {
        let events = Arc::new(Events::new(self.on_event));
        let shared = Arc::new(Shared {
            api: self.api,
            agent: self.agent,
            config: self.config,
            registration: self.registration,
            events: Arc::clone(&events),
            runtimes: Mutex::new(Vec::new()),
            routes: Arc::default(),
            skills: SkillCache::default(),
            daily_usage: Arc::default(),
        });
        tokio::pin!(shutdown);
        match register_first(&shared, &mut shutdown).await {
            Ok(Some(runtimes)) => {
                runtimes.iter().for_each(|runtime| events.emit(WorkerEvent::Registered { runtime: runtime.clone() }));
                recover_orphans(&shared, &runtimes).await;
            }
            // Shut down while waiting for the server: nothing was registered.
            Ok(None) => return Ok(events.summary()),
            Err(error) if error.is_unauthorized() => {
                events.emit(WorkerEvent::Unauthorized { error: error.clone() });
                return Err(WorkerError::Unauthorized { error, summary: events.summary() });
            }
            Err(error) => return Err(WorkerError::Registration(error)),
        }

        let (unauthorized, mut refused) = mpsc::channel(1);
        let (stop_heartbeats, heartbeats_stopped) = watch::channel(false);
        let wake = self.pushes.map(|pushes| {
            let wake = Arc::new(Wake::default());
            let listening = wake::listen(Arc::clone(&shared), Arc::clone(&wake), pushes, heartbeats_stopped.clone());
            (wake, tokio::spawn(listening))
        });
        let heartbeats = tokio::spawn(heartbeat::run(Arc::clone(&shared), heartbeats_stopped, unauthorized));
        let (cancel_all, cancel_signal) = watch::channel(None);
        let mut tasks = JoinSet::new();

        let waker = wake.as_ref().map(|(wake, _)| &**wake);
        let stop = claim_loop(&shared, &mut tasks, &cancel_signal, &mut shutdown, &mut refused, waker).await;
        let stop_asked = matches!(stop, Stop::Shutdown);
        let grace = match &stop {
            Stop::Unauthorized(error) => {
                events.emit(WorkerEvent::Unauthorized { error: error.clone() });
                std::time::Duration::ZERO
            }
            Stop::Idle => {
                events.emit(WorkerEvent::Idle);
                shared.config.shutdown_grace
            }
            Stop::Shutdown => {
                events.emit(WorkerEvent::ShuttingDown { running: tasks.len(), grace: shared.config.shutdown_grace });
                shared.config.shutdown_grace
            }
        };
        let deadline = Instant::now() + grace;
        // A second signal ends the grace at once; only a shutdown asks for one.
        let force = async move {
            match stop_asked {
                true => force().await,
                false => std::future::pending().await,
            }
        };
        tokio::pin!(force);
        while !tasks.is_empty() {
            let ended = tokio::select! {
                joined = time::timeout_at(deadline, tasks.join_next()) => joined.is_ok(),
                () = &mut force => false,
            };
            if !ended {
                events.emit(WorkerEvent::GraceExpired { running: tasks.len() });
                // Each task ends itself within the cancel grace once signalled.
                let _ = cancel_all.send(Some(CancelReason::Shutdown));
                while tasks.join_next().await.is_some() {}
            }
        }

        let _ = stop_heartbeats.send(true);
        let _ = heartbeats.await;
        if let Some((_, listening)) = wake {
            let _ = listening.await;
        }
        let runtime_ids: Vec<RuntimeId> = shared.runtimes().into_iter().map(|runtime| runtime.id).collect();
        if !runtime_ids.is_empty() {
            // Safe to repeat (offline again): a blip does not leave the runtimes online.
            let retry = &shared.config.call_retry;
            match retry.run(Endpoint::Deregister, || shared.api.deregister(&runtime_ids)).await {
                Ok(()) => events.emit(WorkerEvent::Deregistered { runtimes: runtime_ids.len() }),
                Err(error) => events.emit(WorkerEvent::DeregisterFailed { error }),
            }
        }
        let summary = events.summary();
        match stop {
            Stop::Unauthorized(error) => Err(WorkerError::Unauthorized { error, summary }),
            Stop::Shutdown | Stop::Idle => Ok(summary),
        }
    }
}

/// What a claim round found.
enum Round {
    Claimed(Box<Task>),
    Empty,
    Failed(Error),
}

/// Claims while a slot is free until shutdown, idleness (one-shot) or 401.
async fn claim_loop(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<()>,
    cancel_signal: &watch::Receiver<Option<CancelReason>>,
    mut shutdown: impl Future<Output = ()> + Unpin,
    refused: &mut mpsc::Receiver<Error>,
    wake: Option<&Wake>,
) -> Stop {
    let config = &shared.config;
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut next_runtime = 0;
    let mut failures = 0u32;
    loop {
        while tasks.try_join_next().is_some() {}
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => return Stop::Shutdown,
            Some(error) = refused.recv() => return Stop::Unauthorized(error),
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return Stop::Shutdown,
            },
            // A task ending frees a slot; reap it so `is_empty` stays true.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let round = match wake.filter(|wake| wake.is_up()) {
            Some(_) => batch_round(shared, &slots, tasks, cancel_signal).await,
            None => claim_round(shared, &mut next_runtime).await,
        };
        let wait = match round {
            Round::Claimed(task) => {
                failures = 0;
                let (shared, cancel_signal) = (Arc::clone(shared), cancel_signal.clone());
                tasks.spawn(async move {
                    task::run(shared, *task, cancel_signal).await;
                    drop(slot);
                });
                continue;
            }
            Round::Empty if config.exit_when_idle && tasks.is_empty() => return Stop::Idle,
            Round::Empty => {
                failures = 0;
                wake.map_or(config.poll_interval, |wake| wake.poll_interval(config.poll_interval))
            }
            Round::Failed(error) if error.is_unauthorized() => return Stop::Unauthorized(error),
            Round::Failed(_) => {
                failures += 1;
                backoff::delay(config.poll_interval, failures, config.max_backoff)
            }
        };
        drop(slot);
        tokio::select! {
            biased;
            () = &mut shutdown => return Stop::Shutdown,
            Some(error) = refused.recv() => return Stop::Unauthorized(error),
            // A task ended: its slot may find more work at once.
            Some(_) = tasks.join_next(), if failures == 0 && !tasks.is_empty() => {}
            // A pushed hint: claim now, not at the next poll.
            () = async { if let Some(wake) = wake { wake.claim_requested().await } }, if wake.is_some() => {}
            () = time::sleep(wait) => {}
        }
    }
}

/// One batch claim across every runtime for as many tasks as there are free
/// slots (the one held and the others): all but the first start here, each
/// with a slot of its own; the first is returned to start as any claim.
async fn batch_round(
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    cancel_signal: &watch::Receiver<Option<CancelReason>>,
) -> Round {
    match wake::claim_batch(shared, 1 + slots.available_permits()).await {
        Ok(claimed) => {
            let mut claimed = claimed.into_iter();
            let Some(first) = claimed.next() else { return Round::Empty };
            for task in claimed {
                // Counted above; only this loop takes slots.
                let Ok(slot) = Arc::clone(slots).try_acquire_owned() else { break };
                let (shared, cancel_signal) = (Arc::clone(shared), cancel_signal.clone());
                tasks.spawn(async move {
                    task::run(shared, task, cancel_signal).await;
                    drop(slot);
                });
            }
            Round::Claimed(Box::new(first))
        }
        Err(error) => {
            for runtime in shared.runtimes() {
                shared.events.emit(WorkerEvent::ClaimFailed { runtime_id: runtime.id, error: error.clone() });
            }
            Round::Failed(error)
        }
    }
}

/// Tries each runtime once, starting after the one served last.
async fn claim_round(shared: &Shared, next_runtime: &mut usize) -> Round {
    let runtimes = shared.runtimes();
    let mut failure = None;
    for offset in 0..runtimes.len() {
        let index = (*next_runtime + offset) % runtimes.len();
        let runtime_id = &runtimes[index].id;
        match shared.api.claim_task(runtime_id).await {
            Ok(Some(task)) => {
                *next_runtime = index + 1;
                shared.events.emit(WorkerEvent::Claimed {
                    task_id: task.record.id.clone(),
                    runtime_id: runtime_id.clone(),
                    agent: task.agent.as_ref().map(|agent| agent.name.clone()).unwrap_or_default(),
                    priority: task.record.priority,
                });
                return Round::Claimed(Box::new(task));
            }
            Ok(None) => {}
            Err(error) => {
                shared.events.emit(WorkerEvent::ClaimFailed { runtime_id: runtime_id.clone(), error: error.clone() });
                if error.is_unauthorized() {
                    return Round::Failed(error);
                }
                failure = Some(error);
            }
        }
    }
    failure.map_or(Round::Empty, Round::Failed)
}

/// Has the server fail what an earlier process of this daemon left in
/// flight on `runtimes` (HEAD 1cc46b2697's recover-orphans, as the Go daemon
/// calls it after registering): such a task is failed with the retryable
/// `runtime_recovery`, so a retry is queued, instead of staying `running`
/// while this process keeps the runtime fresh. Called before this process
/// claims anything on them, so a repeat after a lost answer fails nothing of
/// its own (the retries are queued, not in flight): transient failures are
/// repeated a few times. Skipped on servers without the route.
pub(crate) async fn recover_orphans(shared: &Shared, runtimes: &[Runtime]) {
    const ATTEMPTS: u32 = 3;
    for runtime in runtimes {
        let mut attempt = 1;
        let answer = loop {
            if !shared.routes.may_have(LaterRoute::RecoverOrphans) {
                return;
            }
            let answer = shared.api.recover_orphans(&runtime.id).await;
            match shared.routes.answer(LaterRoute::RecoverOrphans, answer) {
                None => return,
                Some(Err(error)) if error.is_transient() && attempt < ATTEMPTS => {
                    time::sleep(backoff::delay(shared.config.poll_interval, attempt, shared.config.max_backoff)).await;
                    attempt += 1;
                }
                Some(answer) => break answer,
            }
        };
        let runtime_id = runtime.id.clone();
        match answer {
            Ok(recovery) => shared.events.emit(WorkerEvent::OrphansRecovered {
                runtime_id,
                orphaned: recovery.orphaned,
                retried: recovery.retried,
            }),
            Err(error) => shared.events.emit(WorkerEvent::OrphanRecoveryFailed { runtime_id, error }),
        }
    }
}

/// The first registration: at once, or, with
/// [`WorkerConfig::wait_for_server`], again after transient failures (a
/// server not up yet: connection refused, 5xx) with a doubling wait, until
/// it succeeds, the wait is used up or `shutdown` resolves (`Ok(None)`).
async fn register_first(
    shared: &Shared,
    mut shutdown: impl Future<Output = ()> + Unpin,
) -> Result<Option<Vec<Runtime>>, Error> {
    let started = Instant::now();
    let mut failures = 0;
    loop {
        let error = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(None),
            registered = shared.register() => match registered {
                Ok(runtimes) => return Ok(Some(runtimes)),
                Err(error) => error,
            },
        };
        let patience = shared.config.wait_for_server.unwrap_or_default();
        failures += 1;
        let wait = backoff::delay(WorkerConfig::REGISTRATION_RETRY_BASE, failures, shared.config.max_backoff);
        if !error.is_transient() || started.elapsed() + wait > patience {
            return Err(error);
        }
        shared.events.emit(WorkerEvent::RegistrationRetrying { error, in_a_row: failures, wait });
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(None),
            () = time::sleep(wait) => {}
        }
    }
}
