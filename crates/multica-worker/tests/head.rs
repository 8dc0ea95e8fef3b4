//! What the worker does where server HEAD 1cc46b2697 has more than
//! 3c93ebaf1c (prepare lease, cancel-ack, usage per task), on the fake of
//! each version and tokio's paused clock: used at HEAD, and on 3c93ebaf1c
//! tried once, then left alone, without an error.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use multica_api::{Call, Endpoint, RuntimeId, Task, TaskStatus, TaskUsage};
use multica_mock::MockDaemon;
use multica_worker::{Agent, AgentOutcome, TaskContext, Worker, WorkerConfig, WorkerEvent};
use tokio::time::Instant;

use support::*;

/// Prepares for `prepare` (moving the fake's clock along with tokio's),
/// then works for `work` unless cancelled (then cleans up for `cleanup`),
/// reporting `usage` first.
#[derive(Clone)]
struct Stepwise {
    mock: MockDaemon,
    prepare: Duration,
    work: Duration,
    cleanup: Duration,
    usage: Vec<TaskUsage>,
    stopped_at: Arc<Mutex<Vec<Instant>>>,
}

impl Stepwise {
    fn new(mock: &MockDaemon) -> Self {
        Self {
            mock: mock.clone(),
            prepare: Duration::ZERO,
            work: Duration::from_secs(1),
            cleanup: Duration::ZERO,
            usage: Vec::new(),
            stopped_at: Arc::default(),
        }
    }
}

#[multica_api::async_trait]
impl Agent for Stepwise {
    async fn prepare(&self, _task: &Task) -> Result<(), String> {
        let step = Duration::from_secs(5);
        let mut left = self.prepare;
        while !left.is_zero() {
            let now = step.min(left);
            tokio::time::sleep(now).await;
            self.mock.advance_clock(now);
            left -= now;
        }
        Ok(())
    }

    async fn run(&self, context: TaskContext) -> AgentOutcome {
        for used in &self.usage {
            context.report_usage(std::slice::from_ref(used)).await.unwrap();
        }
        tokio::select! {
            () = tokio::time::sleep(self.work) => AgentOutcome::completed("done"),
            _ = context.cancelled() => {
                tokio::time::sleep(self.cleanup).await;
                self.stopped_at.lock().unwrap().push(Instant::now());
                AgentOutcome::failed("stopped after cleaning up")
            }
        }
    }
}

fn one_shot() -> WorkerConfig {
    WorkerConfig { exit_when_idle: true, ..WorkerConfig::default() }
}

/// Every event with the moment it came.
#[derive(Clone, Default)]
struct Timeline(Arc<Mutex<Vec<(Instant, WorkerEvent)>>>);

impl Timeline {
    fn attach(&self, worker: Worker) -> Worker {
        let events = Arc::clone(&self.0);
        worker.on_event(move |event| events.lock().unwrap().push((Instant::now(), event.clone())))
    }

    fn count(&self, matches: impl Fn(&WorkerEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|(_, event)| matches(event)).count()
    }

    fn first(&self, matches: impl Fn(&WorkerEvent) -> bool) -> Instant {
        self.0.lock().unwrap().iter().find(|(_, event)| matches(event)).unwrap().0
    }
}

fn endpoints(mock: &MockDaemon) -> Vec<Endpoint> {
    mock.calls().iter().map(Call::endpoint).collect()
}

#[tokio::test(start_paused = true)]
async fn at_head_a_preparing_tasks_lease_is_extended_at_once_and_every_interval_until_it_starts() {
    let mock = empty_head();
    let task = add_task(&mock);
    // Longer than the lease (45 s) and than the 90 s after which the server
    // hands an unstarted task whose lease ran out to the next claim.
    let agent = Stepwise { prepare: Duration::from_secs(100), ..Stepwise::new(&mock) };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();

    assert_eq!((summary.claimed, summary.completed, summary.errors), (1, 1, 0));
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed));
    // At 0, 15, 30 … 90 s, each before the start.
    let calls = endpoints(&mock);
    let leases: Vec<usize> = (0..calls.len()).filter(|&i| calls[i] == Endpoint::ExtendPrepareLease).collect();
    assert_eq!(leases.len(), 7);
    let start = calls.iter().position(|e| *e == Endpoint::StartTask).unwrap();
    assert!(leases.iter().all(|&i| i < start));
    assert_eq!(timeline.count(|e| matches!(e, WorkerEvent::PrepareLeaseExtended { .. })), 7);
}

#[tokio::test(start_paused = true)]
async fn at_head_a_long_preparation_without_extensions_loses_its_task_to_the_next_claim() {
    // The shape of the fault the lease prevents: the same run with the
    // extensions too rare to matter.
    let mock = empty_head();
    add_task(&mock);
    let agent = Stepwise { prepare: Duration::from_secs(100), ..Stepwise::new(&mock) };
    let config = WorkerConfig { prepare_lease_interval: Duration::from_secs(3600), ..one_shot() };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(config));
    worker.run(std::future::pending()).await.unwrap();
    assert!(timeline.count(|e| matches!(e, WorkerEvent::Claimed { .. })) >= 2);
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_the_lease_is_tried_once_then_never_and_counts_no_error() {
    let mock = empty();
    add_task(&mock);
    add_task(&mock);
    let agent = Stepwise { prepare: Duration::from_secs(40), ..Stepwise::new(&mock) };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.errors), (2, 0));
    assert_eq!(mock.calls_to(Endpoint::ExtendPrepareLease).len(), 1);
    assert_eq!(timeline.count(|e| matches!(e, WorkerEvent::PrepareLeaseExtended { .. })), 0);
}

#[tokio::test(start_paused = true)]
async fn at_head_a_cancellation_is_acknowledged_once_after_the_agent_stopped() {
    let mock = empty_head();
    let task = add_task(&mock);
    let agent = Stepwise { work: Duration::from_secs(3600), cleanup: Duration::from_secs(2), ..Stepwise::new(&mock) };
    let stopped_at = Arc::clone(&agent.stopped_at);
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(one_shot()));
    let canceller = {
        let (mock, task) = (mock.clone(), task.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            mock.cancel(&task).unwrap();
        }
    };
    let (summary, ()) = tokio::join!(worker.run(std::future::pending()), canceller);
    let summary = summary.unwrap();

    assert_eq!((summary.cancelled, summary.completed, summary.failed, summary.errors), (1, 0, 0, 0));
    let acks = mock.calls_to(Endpoint::AckCancel);
    assert_eq!(acks.len(), 1);
    let Call::AckCancel { task_id, ack } = &acks[0] else { panic!("{acks:?}") };
    assert_eq!(task_id, &task);
    // As the Go daemon: the error of a run stopped by a cancellation is noise, not recorded.
    assert_eq!(ack, &multica_api::CancelAck::default());
    let acknowledged = timeline.first(|e| matches!(e, WorkerEvent::CancelAcknowledged { .. }));
    assert!(acknowledged >= stopped_at.lock().unwrap()[0]);
    assert!(mock.calls_to(Endpoint::CompleteTask).is_empty() && mock.calls_to(Endpoint::FailTask).is_empty());
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Cancelled));
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_cancellations_are_not_acknowledged_and_count_no_error() {
    let mock = empty();
    let tasks = [add_task(&mock), add_task(&mock)];
    let agent = Stepwise { work: Duration::from_secs(3600), ..Stepwise::new(&mock) };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(one_shot()));
    let canceller = {
        let (mock, tasks) = (mock.clone(), tasks.clone());
        async move {
            for task in tasks {
                tokio::time::sleep(Duration::from_secs(20)).await;
                mock.cancel(&task).unwrap();
            }
        }
    };
    let (summary, ()) = tokio::join!(worker.run(std::future::pending()), canceller);
    let summary = summary.unwrap();

    assert_eq!((summary.cancelled, summary.errors), (2, 0));
    // The first try finds no route; the second cancellation is not acknowledged.
    assert_eq!(mock.calls_to(Endpoint::AckCancel).len(), 1);
    assert_eq!(timeline.count(|e| matches!(e, WorkerEvent::CancelAcknowledged { .. })), 0);
}

/// Two reports of one model (what it used, then what it used since).
fn usage(input: [i64; 2]) -> Vec<TaskUsage> {
    let used = |input_tokens| TaskUsage {
        provider: "claude".into(),
        model: "opus".into(),
        input_tokens,
        output_tokens: 10,
        cost_usd_ticks: input_tokens * 1_000,
        ..TaskUsage::default()
    };
    input.into_iter().filter(|input| *input > 0).map(used).collect()
}

#[tokio::test(start_paused = true)]
async fn at_head_usage_goes_to_the_task_route_summed_per_model_with_cost() {
    let mock = empty_head();
    let task = add_task(&mock);
    let agent = Stepwise { usage: usage([1200, 300]), ..Stepwise::new(&mock) };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.errors), (1, 0));
    assert!(mock.calls_to(Endpoint::ReportUsage).is_empty());
    let reports = mock.calls_to(Endpoint::ReportTaskUsage);
    let [_, Call::ReportTaskUsage { task_id, usage }] = reports.as_slice() else { panic!("{reports:?}") };
    assert_eq!(task_id, &task);
    // The server replaces the row on each report: the second carries the sum.
    let sum = (usage[0].input_tokens, usage[0].output_tokens, usage[0].cost_usd_ticks);
    assert_eq!((usage.len(), sum), (1, (1500, 20, 1_500_000)));
    let stored = mock.task_usage(&task);
    assert_eq!((stored.len(), stored[0].input_tokens, stored[0].cost_usd_ticks), (1, 1500, 1_500_000));
    let reported =
        |e: &WorkerEvent| matches!(e, WorkerEvent::UsageReported { endpoint: Endpoint::ReportTaskUsage, .. });
    assert_eq!(timeline.count(reported), 2);
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_three_tasks_usage_adds_up_in_the_runtimes_row_of_today() {
    let mock = empty();
    for _ in 0..3 {
        add_task(&mock);
    }
    let agent = Stepwise { usage: usage([1200, 0]), ..Stepwise::new(&mock) };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(&mock), registration(), agent).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.errors), (3, 0));
    // The task route is tried once, then the runtime route takes every report.
    assert_eq!(mock.calls_to(Endpoint::ReportTaskUsage).len(), 1);
    assert_eq!(mock.calls_to(Endpoint::ReportUsage).len(), 3);
    let stored = mock.usage_of(&RuntimeId::new(RUNTIME));
    assert_eq!(stored.len(), 1, "one row for the day: {stored:?}");
    assert_eq!((stored[0].input_tokens, stored[0].output_tokens), (3600, 30));
    let today = httpdate::fmt_http_date(std::time::SystemTime::now());
    assert!(today.contains(&stored[0].date[8..10]) && today.contains(&stored[0].date[..4]), "{stored:?} {today}");
    let reported = |e: &WorkerEvent| matches!(e, WorkerEvent::UsageReported { endpoint: Endpoint::ReportUsage, .. });
    assert_eq!(timeline.count(reported), 3);
}

/// Runs one task whose agent prepares for 20 s while a user cancels it at 10 s.
async fn cancelled_while_preparing(mock: &MockDaemon) -> (multica_worker::Summary, Timeline) {
    let task = add_task(mock);
    let agent = Stepwise { prepare: Duration::from_secs(20), ..Stepwise::new(mock) };
    let timeline = Timeline::default();
    let worker = timeline.attach(Worker::new(api(mock), registration(), agent).config(one_shot()));
    let canceller = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        mock.cancel(&task).unwrap();
    };
    let (summary, ()) = tokio::join!(worker.run(std::future::pending()), canceller);
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Cancelled));
    (summary.unwrap(), timeline)
}

#[tokio::test(start_paused = true)]
async fn at_head_a_task_cancelled_while_it_prepares_never_starts_and_is_acknowledged() {
    let mock = empty_head();
    let (summary, timeline) = cancelled_while_preparing(&mock).await;
    assert_eq!((summary.cancelled, summary.failed, summary.errors), (1, 0, 0));
    // The lease extension at 15 s was refused: the agent never ran.
    assert!(mock.calls_to(Endpoint::StartTask).is_empty());
    assert_eq!(mock.calls_to(Endpoint::AckCancel).len(), 1);
    assert_eq!(timeline.count(|e| matches!(e, WorkerEvent::CancelAcknowledged { .. })), 1);
    assert!(mock.calls_to(Endpoint::FailTask).is_empty());
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_a_task_cancelled_while_it_prepares_is_dropped_without_an_error() {
    let mock = empty();
    let (summary, timeline) = cancelled_while_preparing(&mock).await;
    // The start was refused; the status said why.
    assert_eq!((summary.cancelled, summary.failed, summary.errors), (1, 0, 0));
    assert_eq!(timeline.count(|e| matches!(e, WorkerEvent::StartFailed { .. })), 0);
    assert!(mock.calls_to(Endpoint::FailTask).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_preparation_fails_the_task_unstarted() {
    struct CannotPrepare;
    #[multica_api::async_trait]
    impl Agent for CannotPrepare {
        async fn prepare(&self, _task: &Task) -> Result<(), String> {
            Err("the repository cannot be cloned".into())
        }
        async fn run(&self, _context: TaskContext) -> AgentOutcome {
            AgentOutcome::completed("never")
        }
    }
    for mock in [empty(), empty_head()] {
        let task = add_task(&mock);
        let summary =
            Worker::new(api(&mock), registration(), CannotPrepare).config(one_shot()).run(std::future::pending()).await;
        assert_eq!(summary.unwrap().failed, 1);
        assert!(mock.calls_to(Endpoint::StartTask).is_empty());
        let error = mock.task(&task).unwrap().error.unwrap();
        assert_eq!(error, "preparing the task failed: the repository cannot be cloned");
    }
}

#[tokio::test(start_paused = true)]
async fn the_agent_gets_the_claims_token_beside_the_task_not_inside_it() {
    /// Per task: whether the task itself had no token, and the context's.
    type Seen = Arc<Mutex<Vec<(bool, Option<String>)>>>;
    struct Checks(Seen);
    #[multica_api::async_trait]
    impl Agent for Checks {
        async fn run(&self, context: TaskContext) -> AgentOutcome {
            let token = context.auth_token().map(|token| token.expose().to_owned());
            self.0.lock().unwrap().push((context.task().auth_token.is_none(), token));
            AgentOutcome::completed("checked")
        }
    }
    let mock = empty_head();
    add_task(&mock);
    let seen = Arc::default();
    Worker::new(api(&mock), registration(), Checks(Arc::clone(&seen)))
        .config(one_shot())
        .run(std::future::pending())
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let [(true, Some(token))] = seen.as_slice() else { panic!("{seen:?}") };
    assert!(token.starts_with("mat_") && token.len() == 44, "{token}");
}

/// The fake, with a user who cancels each task just before its result
/// arrives (after the worker's last status check).
#[derive(Debug)]
struct CancelsBeforeTheResult(MockDaemon);

#[multica_api::async_trait]
impl multica_api::DaemonApi for CancelsBeforeTheResult {
    async fn call(&self, call: Call) -> multica_api::Result<multica_api::Reply> {
        if let Call::CompleteTask { task_id, .. } = &call {
            let _ = self.0.cancel(task_id);
        }
        self.0.call(call).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_result_refused_because_the_task_was_just_cancelled_ends_it_as_cancelled_on_both_servers() {
    for (mock, acks) in [(empty(), 0), (empty_head(), 1)] {
        let task = add_task(&mock);
        let timeline = Timeline::default();
        let api = Arc::new(CancelsBeforeTheResult(mock.clone()));
        let worker = timeline.attach(Worker::new(api, registration(), Stepwise::new(&mock)).config(one_shot()));
        let summary = worker.run(std::future::pending()).await.unwrap();

        assert_eq!((summary.completed, summary.cancelled, summary.errors), (0, 1, 0), "{}", mock.server_version());
        assert_eq!(mock.task_status(&task), Some(TaskStatus::Cancelled));
        assert_eq!(timeline.count(|e| matches!(e, WorkerEvent::CancelAcknowledged { .. })), acks);
    }
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_whose_grace_runs_out_during_a_preparation_fails_the_task_unstarted() {
    let mock = empty_head();
    let task = add_task(&mock);
    let agent = Stepwise { prepare: Duration::from_secs(3600), ..Stepwise::new(&mock) };
    let config = WorkerConfig { shutdown_grace: Duration::from_secs(10), ..WorkerConfig::default() };
    let summary = Worker::new(api(&mock), registration(), agent)
        .config(config)
        .run(tokio::time::sleep(Duration::from_secs(40)))
        .await
        .unwrap();

    assert_eq!((summary.failed, summary.errors), (1, 0));
    assert!(mock.calls_to(Endpoint::StartTask).is_empty());
    // Leased at 0, 15, 30 and 45 s, while it prepared until the grace ran out at 50 s.
    assert_eq!(mock.calls_to(Endpoint::ExtendPrepareLease).len(), 4);
    let error = mock.task(&task).unwrap().error.unwrap();
    assert_eq!(error, "the daemon shut down before the task started: the daemon is shutting down");
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Failed));
}
