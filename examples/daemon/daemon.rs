//! The daemon: register, heartbeat, claim with a concurrency limit, run
//! tasks, report, deregister. Written only against `Arc<dyn DaemonApi>`, so
//! it runs unchanged on the fake, the hyper client or any layer stack.

use std::sync::Arc;
use std::time::Duration;

use multica::reporter::{ReporterConfig, TaskMessageReporter};
use multica::{
    DaemonApi, DaemonId, Error, PingResult, PingStatus, RegisterRequest, RuntimeId, RuntimeSpec, Task, TaskCompletion,
    TaskProgress, TaskStatus, WorkspaceId,
};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::agent::{self, short, AgentOutcome};

/// What the daemon does and how often.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub workspace_id: WorkspaceId,
    pub daemon_id: DaemonId,
    pub device_name: String,
    pub runtimes: Vec<RuntimeSpec>,
    /// Tasks run at once, across runtimes.
    pub concurrency: usize,
    /// Wait between claim rounds that found nothing (Go daemon: 3 s).
    pub poll_interval: Duration,
    /// Wait between heartbeats (Go daemon: 15 s).
    pub heartbeat_interval: Duration,
    /// Stop once every queue is empty and no task runs (the demo).
    pub exit_when_idle: bool,
    /// Time the simulated agent takes per step.
    pub agent_step: Duration,
    pub reporter: ReporterConfig,
}

/// How the run went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub completed: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub errors: usize,
}

/// What became of one claimed task.
#[derive(Debug, PartialEq, Eq)]
enum TaskEnd {
    Completed,
    Failed,
    Cancelled,
    Error,
}

/// Prints a line with the time since the daemon started.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    started: Instant,
}

impl Log {
    pub fn new() -> Self {
        Self { started: Instant::now() }
    }

    pub fn say(&self, line: impl std::fmt::Display) {
        println!("[{:>6.2}s] {line}", self.started.elapsed().as_secs_f64());
    }
}

pub struct Daemon {
    api: Arc<dyn DaemonApi>,
    config: DaemonConfig,
    log: Log,
}

impl Daemon {
    pub fn new(api: Arc<dyn DaemonApi>, config: DaemonConfig, log: Log) -> Self {
        Self { api, config, log }
    }

    /// Runs until the queues drain (with `exit_when_idle`) or `shutdown`
    /// resolves, then deregisters. Fails only when registration fails.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<RunSummary, Error> {
        let runtime_ids = self.register().await?;
        let (stop_heartbeats, stopped) = watch::channel(false);
        let heartbeats = tokio::spawn(heartbeat_loop(
            Arc::clone(&self.api),
            runtime_ids.clone(),
            self.config.heartbeat_interval,
            self.log,
            stopped,
        ));

        let mut in_flight = JoinSet::new();
        let summary = tokio::select! {
            summary = self.poll_loop(&runtime_ids, &mut in_flight) => summary,
            () = shutdown => {
                self.log.say(format!("shutting down: abandoning {} running task(s)", in_flight.len()));
                in_flight.shutdown().await;
                RunSummary::default()
            }
        };

        let _ = stop_heartbeats.send(true);
        let _ = heartbeats.await;
        match self.api.deregister(&runtime_ids).await {
            Ok(()) => self.log.say(format!("deregistered {} runtime(s)", runtime_ids.len())),
            Err(err) => self.log.say(format!("deregister failed: {err}")),
        }
        Ok(summary)
    }

    async fn register(&self) -> Result<Vec<RuntimeId>, Error> {
        let request = RegisterRequest {
            workspace_id: self.config.workspace_id.clone(),
            daemon_id: self.config.daemon_id.clone(),
            device_name: self.config.device_name.clone(),
            runtimes: self.config.runtimes.clone(),
            ..Default::default()
        };
        let registered = match self.api.register(&request).await {
            Ok(registered) => registered,
            Err(err) if err.is_workspace_not_found() => {
                self.log.say(format!("workspace {} does not exist on this server", request.workspace_id));
                return Err(err);
            }
            Err(err) => return Err(err),
        };
        for runtime in &registered.runtimes {
            self.log.say(format!(
                "registered runtime {} [{}] ({}, {})",
                runtime.name,
                short(runtime.id.as_str()),
                runtime.provider,
                runtime.status
            ));
        }
        Ok(registered.runtimes.into_iter().map(|runtime| runtime.id).collect())
    }

    /// Claims round-robin over the runtimes while a slot is free.
    async fn poll_loop(&self, runtime_ids: &[RuntimeId], in_flight: &mut JoinSet<TaskEnd>) -> RunSummary {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut summary = RunSummary::default();
        let mut next_runtime = 0;
        loop {
            while let Some(end) = in_flight.try_join_next() {
                tally(&mut summary, end);
            }
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return summary };
            match self.claim_round(runtime_ids, &mut next_runtime).await {
                Some(task) => {
                    let worker = Worker { api: Arc::clone(&self.api), config: self.config.clone(), log: self.log };
                    in_flight.spawn(async move {
                        let end = worker.handle(task).await;
                        drop(slot);
                        end
                    });
                }
                None if self.config.exit_when_idle && in_flight.is_empty() => {
                    self.log.say(format!(
                        "queue drained: {} completed, {} failed, {} cancelled",
                        summary.completed, summary.failed, summary.cancelled
                    ));
                    return summary;
                }
                None => {
                    drop(slot);
                    // Wake early when a task ends: its slot may find more work.
                    tokio::select! {
                        Some(end) = in_flight.join_next() => tally(&mut summary, end),
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
            }
        }
    }

    /// Tries each runtime once, starting after the one served last.
    async fn claim_round(&self, runtime_ids: &[RuntimeId], next_runtime: &mut usize) -> Option<Task> {
        for offset in 0..runtime_ids.len() {
            let index = (*next_runtime + offset) % runtime_ids.len();
            match self.api.claim_task(&runtime_ids[index]).await {
                Ok(Some(task)) => {
                    *next_runtime = index + 1;
                    let agent = task.agent.as_ref().map_or("?", |agent| agent.name.as_str());
                    self.log.say(format!(
                        "claimed task {} (priority {}, agent {agent}) on runtime {}",
                        short(task.record.id.as_str()),
                        task.record.priority,
                        short(runtime_ids[index].as_str())
                    ));
                    return Some(task);
                }
                Ok(None) => {}
                Err(err) => self.log.say(format!("claim failed: {err}")),
            }
        }
        None
    }
}

fn tally(summary: &mut RunSummary, end: Result<TaskEnd, tokio::task::JoinError>) {
    match end {
        Ok(TaskEnd::Completed) => summary.completed += 1,
        Ok(TaskEnd::Failed) => summary.failed += 1,
        Ok(TaskEnd::Cancelled) => summary.cancelled += 1,
        Ok(TaskEnd::Error) | Err(_) => summary.errors += 1,
    }
}

/// Runs one claimed task to its end.
struct Worker {
    api: Arc<dyn DaemonApi>,
    config: DaemonConfig,
    log: Log,
}

impl Worker {
    async fn handle(self, task: Task) -> TaskEnd {
        let id = task.record.id.clone();
        let name = short(id.as_str()).to_owned();
        if let Err(err) = self.api.start_task(&id).await {
            self.log.say(format!("task {name}: start failed: {err}"));
            return TaskEnd::Error;
        }
        self.progress(&task, "Running agent", 1).await;

        let reporter = TaskMessageReporter::start(Arc::clone(&self.api), id.clone(), self.config.reporter.clone());
        let outcome = agent::run(&task, &reporter, self.config.agent_step).await;
        let report = reporter.finish().await;
        self.log.say(format!(
            "task {name}: streamed {} messages in {} batches ({} dropped)",
            report.stats.messages_sent, report.stats.batches_sent, report.stats.dropped
        ));
        self.progress(&task, "Reporting results", 2).await;

        match self.api.get_task_status(&id).await {
            Ok(TaskStatus::Cancelled) => {
                self.log.say(format!("task {name}: cancelled on the server, result dropped"));
                return TaskEnd::Cancelled;
            }
            Ok(_) => {}
            // A failed check is not a cancellation: report the result anyway.
            Err(err) => self.log.say(format!("task {name}: status check failed: {err}")),
        }

        let (reported, what, end) = match outcome {
            AgentOutcome::Completed { output, session_id, work_dir } => {
                let completion = TaskCompletion { output, session_id, work_dir, ..TaskCompletion::default() };
                (self.api.complete_task(&id, &completion).await, "completed".to_owned(), TaskEnd::Completed)
            }
            AgentOutcome::Blocked { reason } => {
                (self.api.fail_task(&id, &reason).await, format!("failed ({reason})"), TaskEnd::Failed)
            }
        };
        match reported {
            Ok(()) => {
                self.log.say(format!("task {name}: {what}"));
                end
            }
            Err(err) => {
                self.log.say(format!("task {name}: reporting the result failed: {err}"));
                TaskEnd::Error
            }
        }
    }

    async fn progress(&self, task: &Task, summary: &str, step: i64) {
        let progress = TaskProgress { summary: summary.into(), step, total: 2 };
        match self.api.report_progress(&task.record.id, &progress).await {
            Ok(()) => self.log.say(format!("task {}: progress {step}/2 {summary}", short(task.record.id.as_str()))),
            Err(err) => self.log.say(format!("task {}: progress failed: {err}", short(task.record.id.as_str()))),
        }
    }
}

/// Heartbeats every runtime each interval and answers pings.
async fn heartbeat_loop(
    api: Arc<dyn DaemonApi>,
    runtime_ids: Vec<RuntimeId>,
    interval: Duration,
    log: Log,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        for runtime_id in &runtime_ids {
            match api.send_heartbeat(runtime_id).await {
                Ok(answer) => {
                    if let Some(ping) = answer.pending_ping {
                        // The simulated agent answers at once; a real daemon
                        // runs its agent CLI here and reports how long it took.
                        let result = PingResult {
                            status: PingStatus::Completed,
                            output: "pong".into(),
                            error: String::new(),
                            duration_ms: 0,
                        };
                        match api.report_ping_result(runtime_id, &ping.id, &result).await {
                            Ok(()) => log.say(format!(
                                "answered ping {} of runtime {}",
                                short(ping.id.as_str()),
                                short(runtime_id.as_str())
                            )),
                            Err(err) => log.say(format!("ping result failed: {err}")),
                        }
                    }
                }
                Err(err) if err.is_runtime_not_found() => {
                    log.say(format!("runtime {} is unknown to the server: re-register", short(runtime_id.as_str())))
                }
                Err(err) => log.say(format!("heartbeat failed: {err}")),
            }
        }
    }
}
