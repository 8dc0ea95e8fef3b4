//! The worker over HTTP: the hyper client against the fake's server on
//! 127.0.0.1, with a real subprocess per task (real time, short intervals).
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use multica_api::{DaemonApi, Endpoint, RuntimeId, TaskId, TaskStatus};
use multica_hyper::HyperClient;
use multica_worker::{CommandAgent, Worker, WorkerConfig, WorkerError};

use support::*;

fn fast() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(50),
        status_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(200),
        exit_when_idle: true,
        ..WorkerConfig::default()
    }
}

#[tokio::test]
async fn the_worker_runs_every_seeded_task_over_http_and_deregisters() {
    let mock = seeded();
    mock.request_ping(&RuntimeId::new(RUNTIME)).unwrap();
    let server = multica_mock::serve(mock.clone()).await.unwrap();
    let api: Arc<dyn DaemonApi> = Arc::new(HyperClient::builder(server.base_url()).build().unwrap());
    let agent = CommandAgent::new("sh").args(["-c", "echo working on $MULTICA_TASK_ID"]);

    let summary = Worker::new(api, registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.failed, summary.cancelled, summary.errors), (3, 0, 0, 0));
    for task in SEEDED_TASKS.map(TaskId::new) {
        assert_eq!(mock.task_status(&task), Some(TaskStatus::Completed));
        assert_eq!(mock.messages(&task)[0].content, format!("working on {task}"));
    }
    assert_eq!(mock.calls_to(Endpoint::ReportPingResult).len(), 1);
    assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_401_over_http_stops_the_worker() {
    let mock = seeded();
    mock.fail_next_with_status(Endpoint::ClaimTask, 100, 401, "invalid token");
    let server = multica_mock::serve(mock.clone()).await.unwrap();
    let api: Arc<dyn DaemonApi> = Arc::new(HyperClient::builder(server.base_url()).build().unwrap());
    let result =
        Worker::new(api, registration(), CommandAgent::new("true")).config(fast()).run(std::future::pending()).await;
    let Err(WorkerError::Unauthorized { error, .. }) = result else { panic!("{result:?}") };
    assert_eq!(error.status(), Some(401));
    assert_eq!(mock.calls_to(Endpoint::ClaimTask).len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn over_http_at_head_leases_are_extended_in_real_time_and_programs_get_their_tokens() {
    let mock = seeded_head();
    let server = multica_mock::serve(mock.clone()).await.unwrap();
    let client = HyperClient::builder(server.base_url()).token("mul_worker_tests").build().unwrap();
    let api: Arc<dyn DaemonApi> = Arc::new(client);
    let agent = CommandAgent::new("sh").args(["-c", r#"echo "${MULTICA_TOKEN%%_*} for $MULTICA_TASK_ID""#]);
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api, registration(), agent).config(fast()));
    let summary = worker.run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.failed, summary.errors), (3, 0, 0));
    for task in SEEDED_TASKS.map(TaskId::new) {
        assert_eq!(mock.messages(&task)[0].content, format!("mat for {task}"));
    }
    // On the real clock too, each claim's lease is extended before its start.
    let extended = recorder.count(|e| matches!(e, multica_worker::WorkerEvent::PrepareLeaseExtended { .. }));
    assert_eq!(extended, 3);
    server.shutdown().await;
}

/// Records how many skills each task's agent got and answers the model picker.
#[derive(Clone, Default)]
struct SkillCounter(Arc<std::sync::Mutex<Vec<usize>>>);

#[multica_api::async_trait]
impl multica_worker::Agent for SkillCounter {
    async fn run(&self, context: multica_worker::TaskContext) -> multica_worker::AgentOutcome {
        self.0.lock().unwrap().push(context.skills().iter().filter(|skill| !skill.content.is_empty()).count());
        multica_worker::AgentOutcome::completed("done")
    }

    async fn list_models(
        &self,
        _runtime: &multica_api::Runtime,
    ) -> multica_worker::RuntimeAnswer<multica_worker::ModelCatalog> {
        let model = multica_api::RuntimeModel { id: "opus".into(), label: "Opus".into(), ..Default::default() };
        multica_worker::RuntimeAnswer::Answered(multica_worker::ModelCatalog::new(vec![model]))
    }
}

#[tokio::test]
async fn over_http_at_head_claims_carry_skill_references_and_a_model_list_request_is_answered() {
    let mock = seeded_head();
    let server = multica_mock::serve(mock.clone()).await.unwrap();
    let client = HyperClient::builder(server.base_url())
        .token("mul_worker_tests")
        .capabilities(Worker::CAPABILITIES)
        .build()
        .unwrap();
    let api: Arc<dyn DaemonApi> = Arc::new(client);
    // A user opened the model picker before the daemon came up.
    mock.request_runtime(&multica_mock::RuntimeRequest::model_list(RUNTIME)).unwrap();
    let agent = SkillCounter::default();
    let summary =
        Worker::new(api, registration(), agent.clone()).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.errors), (3, 0));
    // Every task's agent got the ten skills (workspace + built-in), fetched by reference.
    assert_eq!(*agent.0.lock().unwrap(), [10, 10, 10]);
    assert!(!mock.calls_to(Endpoint::ResolveSkillBundles).is_empty());
    let requests = mock.runtime_requests();
    assert_eq!(requests[0].status, "completed");
    assert_eq!(requests[0].result.as_ref().unwrap()["models"][0]["id"], "opus");
    server.shutdown().await;
}

#[tokio::test]
async fn a_daemon_started_before_its_server_waits_for_it_and_then_runs_the_queue() {
    // A port nobody listens on yet: connections are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let client = HyperClient::builder(format!("http://{addr}")).build().unwrap();
    let api: Arc<dyn DaemonApi> = Arc::new(client);
    let config = WorkerConfig { wait_for_server: Some(Duration::from_secs(30)), ..fast() };
    let recorder = Recorder::default();
    let worker = recorder.attach(Worker::new(api, registration(), CommandAgent::new("true")).config(config));
    let running = tokio::spawn(worker.run(std::future::pending()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while recorder.count(|e| matches!(e, multica_worker::WorkerEvent::RegistrationRetrying { .. })) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no retry");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mock = seeded();
    let server_config = multica_mock::ServerConfig { addr, ..multica_mock::ServerConfig::default() };
    let server = multica_mock::serve_with(mock.clone(), server_config).await.unwrap();

    let summary = running.await.unwrap().unwrap();
    assert_eq!((summary.completed, summary.failed), (3, 0));
    let retry = recorder.events().into_iter().find_map(|e| match e {
        multica_worker::WorkerEvent::RegistrationRetrying { error, .. } => Some(error),
        _ => None,
    });
    assert!(retry.unwrap().is_transport(), "connection refused");
    server.shutdown().await;
}
