//! A daemon on the worker as a full citizen of today's server (issue 21):
//! runtime requests answered, crash recovery, skills, failure reasons, no
//! task lost to a blip, sessions. On the fake of each version and tokio's
//! paused clock.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use multica_api::{Call, DaemonApi, Endpoint, Error, FailureReason, Reply, Runtime, RuntimeModel, TaskId, TaskStatus};
use multica_mock::{MockDaemon, Rerun, RuntimeRequest};
use multica_worker::{
    Agent, AgentOutcome, AgentSkill, ModelCatalog, RuntimeAnswer, TaskContext, Worker, WorkerConfig, WorkerError,
    WorkerEvent,
};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use support::*;

fn one_shot() -> WorkerConfig {
    WorkerConfig { exit_when_idle: true, ..WorkerConfig::default() }
}

/// Completes every task at once; answers the model picker with two models.
#[derive(Clone, Default)]
struct Quick {
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// What an agent saw of one task.
#[derive(Clone, Debug)]
struct Seen {
    task_id: TaskId,
    skills: Vec<AgentSkill>,
    prior_session: Option<String>,
    prior_work_dir: Option<String>,
}

#[multica_api::async_trait]
impl Agent for Quick {
    async fn run(&self, context: TaskContext) -> AgentOutcome {
        self.seen.lock().unwrap().push(Seen {
            task_id: context.task().record.id.clone(),
            skills: context.skills().to_vec(),
            prior_session: context.prior_session_id().map(str::to_owned),
            prior_work_dir: context.prior_work_dir().map(str::to_owned),
        });
        AgentOutcome::completed("done")
    }

    async fn list_models(&self, runtime: &Runtime) -> RuntimeAnswer<ModelCatalog> {
        let model = RuntimeModel { id: "opus".into(), label: "Opus".into(), default: true, ..RuntimeModel::default() };
        assert_eq!(runtime.id.as_str(), RUNTIME);
        RuntimeAnswer::Answered(ModelCatalog::new(vec![model]))
    }
}

/// Works until told to stop, then fails saying so.
struct UntilStopped;

#[multica_api::async_trait]
impl Agent for UntilStopped {
    async fn run(&self, context: TaskContext) -> AgentOutcome {
        let reason = context.cancelled().await;
        AgentOutcome::failed(format!("stopped: {reason}"))
    }
}

/// Waits (polling the paused clock) until `done` holds, at most `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

// ----- 1. runtime requests -------------------------------------------------

#[tokio::test(start_paused = true)]
async fn runtime_requests_are_answered_within_one_heartbeat_and_the_defaults_say_not_supported() {
    let mock = empty_head();
    let recorder = Recorder::default();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), Quick::default()));
    let running = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(1), || recorder.count(|e| matches!(e, WorkerEvent::Registered { .. })) == 1).await;

    // A user opens the model picker, lists and imports local skills, asks for an update.
    for request in [
        RuntimeRequest::model_list(RUNTIME),
        RuntimeRequest::local_skills(RUNTIME),
        RuntimeRequest::skill_import(RUNTIME, "claude:review"),
        RuntimeRequest::skill_import(RUNTIME, "claude:deploy"),
        RuntimeRequest::update(RUNTIME, "v9.9.9"),
    ] {
        mock.request_runtime(&request).unwrap();
    }
    let all_done = || mock.runtime_requests().iter().all(|r| r.status != "pending" && r.status != "running");
    let took = eventually(WorkerConfig::DEFAULT_HEARTBEAT_INTERVAL * 2, all_done).await;
    assert!(took <= WorkerConfig::DEFAULT_HEARTBEAT_INTERVAL, "answered after {took:?}");

    let requests = mock.runtime_requests();
    let by_kind = |kind| requests.iter().filter(move |r| r.request.kind == kind);
    let models = by_kind(multica_mock::RuntimeRequestKind::ModelList).next().unwrap();
    assert_eq!(models.status, "completed");
    assert_eq!(models.result.as_ref().unwrap()["models"][0]["id"], "opus");
    // The defaults: no local skills, imports and updates refused, as the Go daemon words it.
    let skills = by_kind(multica_mock::RuntimeRequestKind::LocalSkills).next().unwrap();
    assert_eq!((skills.status.as_str(), &skills.result.as_ref().unwrap()["supported"]), ("completed", &false.into()));
    let imports: Vec<_> = by_kind(multica_mock::RuntimeRequestKind::LocalSkillImport).collect();
    assert_eq!(imports.len(), 2, "both imports of the batch");
    for import in imports {
        assert_eq!(import.status, "failed");
        assert!(import.error.contains("does not expose runtime local skills"), "{import:?}");
    }
    assert_eq!(by_kind(multica_mock::RuntimeRequestKind::Update).next().unwrap().status, "failed");
    let answered = recorder.count(|e| matches!(e, WorkerEvent::RuntimeRequestAnswered { .. }));
    assert_eq!(answered, 5);

    stop.send(()).unwrap();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.errors, 0);
}

// ----- 2. crash recovery ---------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_task_left_running_by_a_killed_worker_is_failed_for_recovery_and_retried_by_the_next() {
    let mock = empty_head();
    let task = add_task(&mock);
    // The first worker dies mid-task: no fail, no deregister.
    let first = tokio::spawn(Worker::new(api(&mock), registration(), UntilStopped).run(std::future::pending()));
    eventually(Duration::from_secs(5), || mock.task_status(&task) == Some(TaskStatus::Running)).await;
    first.abort();
    let _ = first.await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Running), "stranded");

    let agent = Quick::default();
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), agent.clone()).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();

    let recovered = recorder.events().into_iter().find_map(|e| match e {
        WorkerEvent::OrphansRecovered { orphaned, retried, .. } => Some((orphaned, retried)),
        _ => None,
    });
    assert_eq!(recovered, Some((1, 1)));
    let orphan = mock.task(&task).unwrap();
    assert_eq!((orphan.status, orphan.failure_reason), (TaskStatus::Failed, FailureReason::RuntimeRecovery));
    let seen = agent.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let retry = mock.task(&seen[0].task_id).unwrap();
    assert_eq!((retry.parent_task_id.as_ref(), retry.status), (Some(&task), TaskStatus::Completed));
    assert_eq!((summary.completed, summary.errors), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_there_is_nothing_to_recover_and_no_error() {
    let mock = empty();
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), Quick::default()).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();
    assert_eq!(summary.errors, 0);
    assert_eq!(mock.calls_to(Endpoint::RecoverOrphans).len(), 1, "tried once");
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::OrphansRecovered { .. })), 0);
}

// ----- 3. skills -----------------------------------------------------------

/// The HEAD fake as a client with the worker's capabilities sees it.
fn head_with_capabilities(mock: &MockDaemon) -> Arc<dyn DaemonApi> {
    Arc::new(mock.with_capabilities(&Worker::CAPABILITIES))
}

#[tokio::test(start_paused = true)]
async fn skill_references_are_resolved_while_preparing_and_cached_by_hash_across_tasks() {
    let mock = empty_head();
    let tasks = [add_task(&mock), add_task(&mock)];
    let agent = Quick::default();
    let config = WorkerConfig { concurrency: 1, ..one_shot() };
    let summary = Worker::new(head_with_capabilities(&mock), registration(), agent.clone())
        .config(config)
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!((summary.completed, summary.errors), (2, 0));

    let seen = agent.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|s| &s.task_id).collect::<Vec<_>>(), tasks.iter().collect::<Vec<_>>());
    for task in &seen {
        let names: Vec<&str> = task.skills.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"multica-working-on-issues"), "{names:?}");
        assert!(task.skills.iter().all(|s| !s.content.is_empty() && s.hash.starts_with("sha256:")));
    }
    assert_eq!(seen[0].skills, seen[1].skills);
    // The second task's skills all came from the cache.
    let resolves = mock.calls_to(Endpoint::ResolveSkillBundles);
    assert_eq!(resolves.len(), 1, "{resolves:?}");
    let Call::ResolveSkillBundles { request, .. } = &resolves[0] else { unreachable!() };
    assert_eq!(request.skills.len(), seen[0].skills.len());
}

#[tokio::test(start_paused = true)]
async fn a_skill_bundle_that_cannot_be_had_fails_the_task_unstarted_for_the_servers_retry() {
    let mock = empty_head();
    let task = add_task(&mock);
    mock.fail_next_with_status(Endpoint::ResolveSkillBundles, 1, 404, "skill bundle not found");
    let agent = Quick::default();
    let summary = Worker::new(head_with_capabilities(&mock), registration(), agent.clone())
        .config(one_shot())
        .run(std::future::pending())
        .await
        .unwrap();

    let failed = mock.task(&task).unwrap();
    assert_eq!((failed.status, failed.failure_reason), (TaskStatus::Failed, FailureReason::SkillBundleUnavailable));
    assert!(failed.started_at.is_none(), "never started");
    // The server's retry got its skills and ran.
    let seen = agent.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(mock.task(&seen[0].task_id).unwrap().parent_task_id, Some(task));
    assert!(!seen[0].skills.is_empty());
    assert_eq!((summary.completed, summary.failed), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_the_claims_inline_skills_reach_the_agent_the_same_way() {
    let mock = empty();
    add_task(&mock);
    let agent = Quick::default();
    Worker::new(api(&mock), registration(), agent.clone())
        .config(one_shot())
        .run(std::future::pending())
        .await
        .unwrap();
    let seen = agent.seen.lock().unwrap().clone();
    let inline = mock.agent(&AGENT.into()).unwrap().skills;
    assert!(!inline.is_empty(), "the demo agent has skills");
    assert_eq!(seen[0].skills.len(), inline.len());
    assert_eq!(seen[0].skills[0].content, inline[0].content);
    assert!(mock.calls_to(Endpoint::ResolveSkillBundles).is_empty());
}

// ----- 4. failure reasons --------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_task_past_its_time_limit_fails_with_timeout_and_the_server_retries_it() {
    let mock = empty_head();
    let task = add_task(&mock);
    let config = WorkerConfig { task_timeout: Some(Duration::from_secs(600)), concurrency: 1, ..one_shot() };
    let started = Instant::now();
    let summary =
        Worker::new(api(&mock), registration(), UntilStopped).config(config).run(std::future::pending()).await.unwrap();

    let first = mock.task(&task).unwrap();
    assert_eq!(first.failure_reason, FailureReason::Timeout);
    assert!(first.error.unwrap().starts_with("the task timed out after 600 s"));
    // The retry (attempt 2 of 2) timed out too; no third attempt.
    let retries: Vec<_> =
        mock.snapshot().tasks.into_iter().filter(|t| t.record.parent_task_id.as_ref() == Some(&task)).collect();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].record.failure_reason, FailureReason::Timeout);
    assert_eq!(summary.failed, 2);
    assert!(started.elapsed() >= Duration::from_secs(1200));
}

#[tokio::test(start_paused = true)]
async fn a_run_ended_by_shutdown_fails_with_the_go_daemons_cancelled() {
    let mock = empty_head();
    let task = add_task(&mock);
    let config = WorkerConfig { shutdown_grace: Duration::from_secs(5), ..WorkerConfig::default() };
    let summary = Worker::new(api(&mock), registration(), UntilStopped)
        .config(config)
        .run(tokio::time::sleep(Duration::from_secs(10)))
        .await
        .unwrap();
    let failed = mock.task(&task).unwrap();
    assert_eq!((failed.status, failed.failure_reason), (TaskStatus::Failed, FailureReason::Cancelled));
    assert!(failed.error.unwrap().starts_with("the daemon shut down before the task finished"));
    assert_eq!(summary.failed, 1);
}

// ----- 5. no task lost to a blip -------------------------------------------

/// The fake, but the answer of the next `lose` call of `endpoint` is lost
/// after the server applied it (a 502 from a proxy on the way back).
#[derive(Debug)]
struct LosesAnswers {
    mock: MockDaemon,
    endpoint: Endpoint,
    lose: Mutex<u32>,
}

#[multica_api::async_trait]
impl DaemonApi for LosesAnswers {
    async fn call(&self, call: Call) -> multica_api::Result<Reply> {
        let endpoint = call.endpoint();
        let path = call.path()?;
        let reply = self.mock.call(call).await?;
        let mut lose = self.lose.lock().unwrap();
        if endpoint == self.endpoint && *lose > 0 {
            *lose -= 1;
            return Err(Error::from_server_message(endpoint.method(), path, 502, "bad gateway"));
        }
        Ok(reply)
    }
}

#[tokio::test(start_paused = true)]
async fn a_503_on_start_is_tried_again_and_the_task_runs() {
    let mock = empty_head();
    let task = add_task(&mock);
    mock.fail_next_with_status(Endpoint::StartTask, 1, 503, "busy");
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), Quick::default()).config(one_shot()));
    let summary = worker.run(std::future::pending()).await.unwrap();
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed));
    assert_eq!(mock.calls_to(Endpoint::StartTask).len(), 2);
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::StartRetrying { .. })), 1);
    assert_eq!(summary.completed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_of_start_and_of_complete_is_settled_from_the_tasks_status() {
    for (version, endpoint) in [("head", Endpoint::StartTask), ("3c93ebaf1c", Endpoint::CompleteTask)] {
        let mock = if version == "head" { empty_head() } else { empty() };
        let task = add_task(&mock);
        let api = Arc::new(LosesAnswers { mock: mock.clone(), endpoint, lose: Mutex::new(1) });
        let recorder = Recorder::default();
        let worker = recorder.attach(Worker::new(api, registration(), Quick::default()).config(one_shot()));
        let summary = worker.run(std::future::pending()).await.unwrap();
        assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed), "{version}");
        assert_eq!((summary.completed, summary.failed), (1, 0), "{version}");
        assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::ReportFailed { .. })), 0, "{version}");
        assert_eq!(mock.calls_to(Endpoint::StartTask).len(), 1, "{version}: a landed start is not repeated");
    }
}

#[tokio::test(start_paused = true)]
async fn registration_waits_for_a_server_that_is_not_up_yet_when_asked_to() {
    let mock = empty_head();
    mock.fail_next_with_status(Endpoint::Register, 3, 503, "starting");
    let recorder = Recorder::default();
    let config = WorkerConfig { wait_for_server: Some(Duration::from_secs(60)), ..one_shot() };
    let worker = recorder.attach(Worker::new(api(&mock), registration(), Quick::default()).config(config));
    worker.run(std::future::pending()).await.unwrap();
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::RegistrationRetrying { .. })), 3);
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::Registered { .. })), 1);

    // Without the option the first failure ends the run.
    mock.fail_next_with_status(Endpoint::Register, 1, 503, "starting");
    let outcome =
        Worker::new(api(&mock), registration(), Quick::default()).config(one_shot()).run(std::future::pending()).await;
    assert!(matches!(outcome, Err(WorkerError::Registration(_))));
}

#[tokio::test(start_paused = true)]
async fn a_second_signal_ends_the_grace_period_at_once() {
    let mock = empty_head();
    let task = add_task(&mock);
    let signals = Arc::new(Notify::new());
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), UntilStopped));
    let signal = {
        let signals = Arc::clone(&signals);
        move || {
            let signals = Arc::clone(&signals);
            async move { signals.notified().await }
        }
    };
    let started = Instant::now();
    let sender = async {
        eventually(Duration::from_secs(5), || mock.task_status(&task) == Some(TaskStatus::Running)).await;
        signals.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
        signals.notify_one();
    };
    let (summary, ()) = tokio::join!(worker.run_with_signal(signal), sender);
    summary.unwrap();
    assert!(started.elapsed() < WorkerConfig::DEFAULT_SHUTDOWN_GRACE, "{:?}", started.elapsed());
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::GraceExpired { .. })), 1);
    assert_eq!(mock.task(&task).unwrap().failure_reason, FailureReason::Cancelled);
}

// ----- 7. sessions ---------------------------------------------------------

/// Pins its session as soon as it has one, then completes without naming it.
#[derive(Clone, Default)]
struct Pinning {
    pinned: Arc<Mutex<Vec<bool>>>,
    seen: Quick,
}

#[multica_api::async_trait]
impl Agent for Pinning {
    async fn run(&self, context: TaskContext) -> AgentOutcome {
        let stored = context.pin_session("sess-1", "/work/one").await.unwrap();
        self.pinned.lock().unwrap().push(stored);
        self.seen.run(context).await
    }
}

#[tokio::test(start_paused = true)]
async fn the_agent_pins_its_session_and_the_rerun_sees_it_as_the_prior_session() {
    let mock = empty_head();
    let first = add_task(&mock);
    let agent = Pinning::default();
    let run = || Worker::new(api(&mock), registration(), agent.clone()).config(one_shot()).run(std::future::pending());
    run().await.unwrap();
    assert_eq!(mock.calls_to(Endpoint::PinSession).len(), 1);
    // The completion carries the pinned session, which the agent did not name again.
    let result = mock.task(&first).unwrap().result.unwrap();
    assert_eq!((result["session_id"].as_str(), result["work_dir"].as_str()), (Some("sess-1"), Some("/work/one")));

    let rerun = mock.rerun(&Rerun::of(first.clone())).unwrap();
    run().await.unwrap();
    let seen = agent.seen.seen.lock().unwrap().clone();
    assert_eq!(seen[0].prior_session, None);
    assert_eq!(seen[1].task_id, rerun);
    assert_eq!(
        (seen[1].prior_session.as_deref(), seen[1].prior_work_dir.as_deref()),
        (Some("sess-1"), Some("/work/one"))
    );
    assert_eq!(*agent.pinned.lock().unwrap(), [true, true]);
}

#[tokio::test(start_paused = true)]
async fn on_3c93ebaf1c_a_pin_is_not_stored_but_still_reaches_the_final_report() {
    let mock = empty();
    let task = add_task(&mock);
    let agent = Pinning::default();
    let summary = Worker::new(api(&mock), registration(), agent.clone())
        .config(one_shot())
        .run(std::future::pending())
        .await
        .unwrap();
    assert_eq!(*agent.pinned.lock().unwrap(), [false]);
    assert_eq!(summary.errors, 0);
    let completed = mock.snapshot().tasks.into_iter().find(|t| t.record.id == task).unwrap();
    assert_eq!(completed.session_id, "sess-1");
}

#[tokio::test(start_paused = true)]
async fn a_503_on_deregister_is_tried_again_so_the_runtimes_go_offline() {
    let mock = empty_head();
    mock.fail_next_with_status(Endpoint::Deregister, 1, 503, "busy");
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api(&mock), registration(), Quick::default()).config(one_shot()));
    worker.run(std::future::pending()).await.unwrap();
    assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 2);
    assert_eq!(recorder.count(|e| matches!(e, WorkerEvent::Deregistered { .. })), 1);
    assert_eq!(mock.runtime_by_id(&RUNTIME.into()).unwrap().status, multica_api::RuntimeStatus::Offline);
}

#[tokio::test(start_paused = true)]
async fn a_command_agent_given_models_answers_the_model_picker() {
    let mock = empty_head();
    let models =
        vec![RuntimeModel { id: "sonnet".into(), label: "Sonnet".into(), default: true, ..Default::default() }];
    let agent = multica_worker::CommandAgent::new("true").models(models);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(Worker::new(api(&mock), registration(), agent).run(async {
        let _ = stopped.await;
    }));
    mock.request_runtime(&RuntimeRequest::model_list(RUNTIME)).unwrap();
    let answered = || mock.runtime_requests().iter().all(|r| r.status == "completed");
    let took = eventually(WorkerConfig::DEFAULT_HEARTBEAT_INTERVAL * 2, answered).await;
    assert!(took <= WorkerConfig::DEFAULT_HEARTBEAT_INTERVAL, "answered after {took:?}");
    let result = mock.runtime_requests()[0].result.clone().unwrap();
    assert_eq!((&result["models"][0]["id"], &result["models"][0]["default"]), (&"sonnet".into(), &true.into()));
    stop.send(()).unwrap();
    assert_eq!(running.await.unwrap().unwrap().errors, 0);
}
