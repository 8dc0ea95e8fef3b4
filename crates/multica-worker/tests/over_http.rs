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
