//! The worker's loop on the fake, on tokio's paused clock.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use multica_api::{Endpoint, RuntimeId, RuntimeStatus, TaskId, TaskStatus};
use multica_worker::{Agent, AgentOutcome, CancelReason, TaskContext, Worker, WorkerConfig, WorkerError, WorkerEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use support::*;

/// Works for `work`, unless told to stop; reports when it starts, how
/// many run at once, and what stopped it.
#[derive(Clone)]
struct TimedAgent {
    work: Duration,
    running: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
    started: Option<mpsc::UnboundedSender<TaskId>>,
    stopped: Option<mpsc::UnboundedSender<(TaskId, CancelReason, Instant)>>,
    ignores_cancel: bool,
}

impl TimedAgent {
    fn new(work: Duration) -> Self {
        Self {
            work,
            running: Arc::default(),
            most_at_once: Arc::default(),
            started: None,
            stopped: None,
            ignores_cancel: false,
        }
    }
}

#[multica_api::async_trait]
impl Agent for TimedAgent {
    async fn run(&self, context: TaskContext) -> AgentOutcome {
        let id = context.task().record.id.clone();
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        if let Some(started) = &self.started {
            started.send(id.clone()).unwrap();
        }
        context.messages().text_message("working");
        context.progress("working", 1, 1).await;
        let outcome = tokio::select! {
            () = tokio::time::sleep(self.work) => AgentOutcome::completed("done"),
            reason = context.cancelled(), if !self.ignores_cancel => {
                if let Some(stopped) = &self.stopped {
                    stopped.send((id, reason, Instant::now())).unwrap();
                }
                AgentOutcome::failed("stopped")
            }
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        outcome
    }
}

fn quick() -> WorkerConfig {
    WorkerConfig { exit_when_idle: true, ..WorkerConfig::default() }
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_is_held_and_every_task_completes() {
    let mock = seeded();
    let extra: Vec<TaskId> = (0..3).map(|_| add_task(&mock)).collect();
    let agent = TimedAgent::new(Duration::from_secs(10));
    let recorder = Recorder::default();
    let worker =
        Worker::new(api(&mock), registration(), agent.clone()).config(WorkerConfig { concurrency: 2, ..quick() });
    let summary = recorder.attach(worker).run(std::future::pending()).await.unwrap();

    assert_eq!(agent.most_at_once.load(Ordering::SeqCst), 2);
    assert_eq!((summary.claimed, summary.completed, summary.failed, summary.errors), (6, 6, 0, 0));
    for task in SEEDED_TASKS.iter().map(|id| TaskId::new(*id)).chain(extra) {
        assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed));
        assert_eq!(mock.messages(&task).len(), 1);
        assert_eq!(mock.progress(&task).unwrap().summary, "working");
    }
    assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 1);
    assert_eq!(mock.runtime_by_id(&RuntimeId::new(RUNTIME)).unwrap().status, RuntimeStatus::Offline);
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_reaches_the_agent_within_the_watch_interval_and_nothing_is_reported() {
    let mock = empty();
    let task = add_task(&mock);
    let (started, mut agent_started) = mpsc::unbounded_channel();
    let (stopped, mut agent_stopped) = mpsc::unbounded_channel();
    let agent =
        TimedAgent { started: Some(started), stopped: Some(stopped), ..TimedAgent::new(Duration::from_secs(3600)) };
    let config = WorkerConfig { status_interval: Duration::from_secs(5), ..quick() };
    let recorder = Recorder::default();
    let run = tokio::spawn(
        recorder.attach(Worker::new(api(&mock), registration(), agent)).config(config).run(std::future::pending()),
    );

    assert_eq!(agent_started.recv().await.unwrap(), task);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let cancelled_at = Instant::now();
    mock.cancel(&task).unwrap();
    let (seen, reason, at) = agent_stopped.recv().await.unwrap();
    assert_eq!((seen, reason), (task.clone(), CancelReason::Server));
    assert!(at - cancelled_at <= Duration::from_secs(5), "seen after {:?}", at - cancelled_at);

    let summary = run.await.unwrap().unwrap();
    assert_eq!((summary.cancelled, summary.completed, summary.failed), (1, 0, 0));
    assert!(mock.calls_to(Endpoint::CompleteTask).is_empty());
    assert!(mock.calls_to(Endpoint::FailTask).is_empty());
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Cancelled));
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::Cancelled { .. })), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_fails_the_task_with_the_reason_and_never_runs_the_agent() {
    let mock = empty();
    let task = add_task(&mock);
    mock.fail_next_with_status(Endpoint::StartTask, 1, 400, "workspace quota exceeded");
    let agent = TimedAgent::new(Duration::from_secs(1));
    let summary = Worker::new(api(&mock), registration(), agent.clone())
        .config(quick())
        .run(std::future::pending())
        .await
        .unwrap();

    assert_eq!(agent.most_at_once.load(Ordering::SeqCst), 0);
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Failed));
    let error = mock.task(&task).unwrap().error.unwrap();
    assert!(error.contains("could not start") && error.contains("workspace quota exceeded"), "{error}");
    assert_eq!((summary.failed, summary.errors), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_that_says_the_runtime_is_gone_registers_again() {
    let mock = empty();
    mock.fail_next_with_status(Endpoint::SendHeartbeat, 1, 404, "runtime not found");
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO)));
    let summary = worker.run(tokio::time::sleep(Duration::from_secs(40))).await.unwrap();

    assert_eq!(mock.calls_to(Endpoint::Register).len(), 2);
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::RuntimeGone { .. })), 1);
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::ReRegistered { .. })), 1);
    // The heartbeats after it succeed: 0 s (gone), 15 s, 30 s.
    assert_eq!(mock.calls_to(Endpoint::SendHeartbeat).len(), 3);
    assert_eq!(summary.errors, 1);
}

#[tokio::test(start_paused = true)]
async fn a_401_stops_the_worker_with_a_clear_error_instead_of_spinning() {
    let mock = empty();
    mock.fail_next_with_status(Endpoint::ClaimTask, 1000, 401, "invalid token");
    let started = Instant::now();
    let result =
        Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO)).run(std::future::pending()).await;

    let Err(WorkerError::Unauthorized { error, summary }) = result else { panic!("{result:?}") };
    assert!(error.is_unauthorized());
    assert!(summary.errors >= 1);
    assert_eq!(mock.calls_to(Endpoint::ClaimTask).len(), 1);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_401_on_the_heartbeat_stops_the_worker_too() {
    let mock = empty();
    mock.fail_next_with_status(Endpoint::SendHeartbeat, 1000, 401, "invalid token");
    let result =
        Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO)).run(std::future::pending()).await;
    assert!(matches!(result, Err(WorkerError::Unauthorized { .. })), "{result:?}");
    assert_eq!(mock.calls_to(Endpoint::SendHeartbeat).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn repeated_503s_back_off_instead_of_polling_every_interval() {
    let mock = empty();
    mock.fail_next_with_status(Endpoint::ClaimTask, 1000, 503, "service unavailable");
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO)));
    let summary = worker.run(tokio::time::sleep(Duration::from_secs(300))).await.unwrap();

    // Without backoff: 100 claims in 300 s at the 3 s poll. With it the
    // waits are at least 1.5, 3, 6, 12, 24, then 30 s (half the 60 s cap).
    let claims = mock.calls_to(Endpoint::ClaimTask).len();
    assert!((5..=16).contains(&claims), "{claims} claims");
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::ClaimFailed { .. })), claims);
    assert_eq!(summary.errors, claims);

    // Once the server recovers, the normal poll comes back.
    mock.clear_faults();
    let task = add_task(&mock);
    let summary = Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO))
        .config(quick())
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(summary.completed, 1);
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed));
}

#[tokio::test(start_paused = true)]
async fn repeated_heartbeat_failures_drop_idle_connections() {
    let mock = empty();
    mock.fail_next_with_status(Endpoint::SendHeartbeat, 3, 503, "service unavailable");
    let probe = Probe::new(&mock);
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(probe.clone(), registration(), TimedAgent::new(Duration::ZERO)));
    worker.run(tokio::time::sleep(Duration::from_secs(300))).await.unwrap();
    // Rounds 2 and 3 failed with at least one before them.
    assert_eq!(probe.drops(), 2);
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::ConnectionsReset { .. })), 2);
    assert!(mock.heartbeats(&RuntimeId::new(RUNTIME)) >= 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_the_grace_then_cancels_fails_and_deregisters() {
    let mock = empty();
    let short = add_task(&mock);
    let long = add_task(&mock);
    let (stopped, mut agent_stopped) = mpsc::unbounded_channel();
    let (started, mut agent_started) = mpsc::unbounded_channel();
    let agent =
        TimedAgent { stopped: Some(stopped), started: Some(started), ..TimedAgent::new(Duration::from_secs(3600)) };
    // The first task's agent works 10 s, the second one an hour.
    struct Mixed(TimedAgent, TaskId);
    #[multica_api::async_trait]
    impl Agent for Mixed {
        async fn run(&self, context: TaskContext) -> AgentOutcome {
            if context.task().record.id == self.1 {
                let quick = TimedAgent { work: Duration::from_secs(10), ..self.0.clone() };
                return quick.run(context).await;
            }
            self.0.run(context).await
        }
    }
    let (shutdown, asked) = tokio::sync::oneshot::channel::<()>();
    let config = WorkerConfig { shutdown_grace: Duration::from_secs(30), ..WorkerConfig::default() };
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), Mixed(agent, short.clone())).config(config));
    let run = tokio::spawn(worker.run(async {
        let _ = asked.await;
    }));
    agent_started.recv().await.unwrap();
    agent_started.recv().await.unwrap();
    let asked_at = Instant::now();
    shutdown.send(()).unwrap();

    let (task, reason, at) = agent_stopped.recv().await.unwrap();
    assert_eq!((task, reason), (long.clone(), CancelReason::Shutdown));
    assert!(at - asked_at >= Duration::from_secs(30));
    let summary = run.await.unwrap().unwrap();

    assert_eq!(mock.task_status(&short), Some(TaskStatus::Completed));
    assert_eq!(mock.task_status(&long), Some(TaskStatus::Failed));
    assert!(mock.task(&long).unwrap().error.unwrap().contains("shut down"));
    assert_eq!((summary.completed, summary.failed, summary.errors), (1, 1, 0));
    assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 1);
    assert_eq!(mock.calls_to(Endpoint::ClaimTask).len(), 3, "no claim after shutdown");
    let order: Vec<String> = recorder.events().iter().map(|e| format!("{e}")).collect();
    let position = |prefix: &str| order.iter().position(|line| line.starts_with(prefix)).unwrap();
    assert!(position("shutting down") < position("grace period over"));
    assert!(position("grace period over") < position("deregistered"));
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_ignores_the_signal_is_abandoned_after_the_cancel_grace_and_its_task_failed() {
    let mock = empty();
    let task = add_task(&mock);
    let (started, mut agent_started) = mpsc::unbounded_channel();
    let agent =
        TimedAgent { started: Some(started), ignores_cancel: true, ..TimedAgent::new(Duration::from_secs(3600)) };
    let config = WorkerConfig {
        shutdown_grace: Duration::from_secs(1),
        cancel_grace: Duration::from_secs(2),
        ..WorkerConfig::default()
    };
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), agent).config(config));
    let summary = worker
        .run(async {
            agent_started.recv().await;
        })
        .await
        .unwrap();
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::AgentAbandoned { .. })), 1);
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Failed));
    assert_eq!(summary.failed, 1);
}

#[tokio::test(start_paused = true)]
async fn pings_are_answered_with_pong_and_the_measured_duration() {
    let mock = empty();
    mock.request_ping(&RuntimeId::new(RUNTIME)).unwrap();
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO)));
    let summary = worker.run(tokio::time::sleep(Duration::from_secs(1))).await.unwrap();
    assert_eq!(summary.pings, 1);
    let calls = mock.calls_to(Endpoint::ReportPingResult);
    assert_eq!(calls.len(), 1);
    let body = format!("{:?}", calls[0]);
    assert!(body.contains("pong") && body.contains("Completed"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_slot_freed_by_a_task_claims_again_at_once_not_at_the_next_poll() {
    let mock = empty();
    add_task(&mock);
    add_task(&mock);
    let (started, mut agent_started) = mpsc::unbounded_channel();
    let agent = TimedAgent { started: Some(started), ..TimedAgent::new(Duration::from_secs(10)) };
    let config = WorkerConfig { concurrency: 1, ..quick() };
    let run = tokio::spawn(Worker::new(api(&mock), registration(), agent).config(config).run(std::future::pending()));
    agent_started.recv().await.unwrap();
    let first = Instant::now();
    agent_started.recv().await.unwrap();
    // The first task ran 10 s; the poll interval (3 s) added nothing.
    assert!(first.elapsed() < Duration::from_millis(10_500), "{:?}", first.elapsed());
    assert_eq!(run.await.unwrap().unwrap().completed, 2);
}

#[tokio::test(start_paused = true)]
async fn complete_is_retried_on_the_go_daemons_schedule() {
    let mock = empty();
    let task = add_task(&mock);
    mock.fail_next_with_status(Endpoint::CompleteTask, 2, 503, "service unavailable");
    let started = Instant::now();
    let summary = Worker::new(api(&mock), registration(), TimedAgent::new(Duration::ZERO))
        .config(quick())
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!((summary.completed, summary.errors), (1, 0));
    assert_eq!(mock.calls_to(Endpoint::CompleteTask).len(), 3);
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed));
    // 4 s, then 8 s.
    assert!(started.elapsed() >= Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn an_agent_reports_usage_of_its_runtime() {
    struct Counting;
    #[multica_api::async_trait]
    impl Agent for Counting {
        async fn run(&self, context: TaskContext) -> AgentOutcome {
            let used = multica_api::TaskUsage {
                provider: "claude".into(),
                model: "opus".into(),
                input_tokens: 1200,
                ..multica_api::TaskUsage::default()
            };
            context.report_usage(&[used]).await.unwrap();
            AgentOutcome::completed("counted")
        }
    }
    let mock = empty();
    add_task(&mock);
    let summary =
        Worker::new(api(&mock), registration(), Counting).config(quick()).run(std::future::pending()).await.unwrap();
    assert_eq!((summary.completed, summary.errors), (1, 0));
    let usage = mock.usage_of(&RuntimeId::new(RUNTIME));
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].input_tokens, 1200);
}
