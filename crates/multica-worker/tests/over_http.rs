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
