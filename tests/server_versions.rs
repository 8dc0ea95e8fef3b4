//! The fake serves server 3c93ebaf1c: over HTTP and in process, one client
//! detects it and takes its routes, and the HEAD-only calls are harmless.
#![allow(clippy::unwrap_used)]

use multica::hyper::HyperClient;
use multica::mock::{serve, MockDaemon, Seed};
use multica::{
    CancelAck, DaemonApi, DaemonApiExt, Endpoint, RuntimeId, ServerVersion, TaskCompletion, TaskFailure, TaskId,
    TaskUsage,
};

async fn detect_and_use(api: &dyn DaemonApi, fake: &MockDaemon) {
    let version = api.server_version().await.unwrap();
    assert_eq!(version, ServerVersion::V3c93ebaf1c);

    let workspaces = api.list_workspaces_on(version).await.unwrap();
    assert!(!workspaces.is_empty(), "the demo seed has a workspace");
    let runtime = RuntimeId::new("00000000-0000-4000-8000-0000000000aa");
    let task = TaskId::new("00000000-0000-4000-8000-0000000000bb");
    let usage = [TaskUsage { provider: "claude".into(), model: "m".into(), input_tokens: 3, ..TaskUsage::default() }];
    api.report_task_usage_on(version, &runtime, &task, "2026-11-29", &usage).await.unwrap();
    assert_eq!(fake.calls_to(Endpoint::ReportUsage).len(), 1, "the runtime route at 3c93ebaf1c");
    assert!(fake.calls_to(Endpoint::ReportTaskUsage).is_empty());

    assert!(!api.ack_cancel_if_supported(&task, &CancelAck::default()).await.unwrap());
    assert_eq!(api.extend_prepare_lease_if_supported(&runtime, &task).await.unwrap(), None);
    // A task that is not running: the 400 of 3c93ebaf1c, whatever the body.
    let err = api.complete_task(&task, &TaskCompletion::with_output("x")).await.unwrap_err();
    assert!(err.is_task_state_conflict() || err.is_task_not_found(), "{err}");
    let failure = TaskFailure::new("late").with_reason("timeout".into());
    let err = api.fail_task_with(&task, &failure).await.unwrap_err();
    assert!(err.is_task_state_conflict() || err.is_task_not_found(), "{err}");
}

#[tokio::test]
async fn over_http_the_fake_reads_as_3c93ebaf1c() {
    let fake = MockDaemon::builder().seed(Seed::demo()).build().unwrap();
    let server = serve(fake.clone()).await.unwrap();
    let client = HyperClient::builder(format!("http://{}", server.addr())).build().unwrap();
    detect_and_use(&client, &fake).await;
}

#[tokio::test]
async fn in_process_the_fake_reads_as_3c93ebaf1c() {
    let fake = MockDaemon::builder().seed(Seed::demo()).build().unwrap();
    detect_and_use(&fake, &fake).await;
}

#[tokio::test]
async fn a_claimed_task_completes_and_a_second_complete_is_a_state_conflict_on_the_fake() {
    let fake = MockDaemon::builder().seed(Seed::demo()).build().unwrap();
    let server = serve(fake.clone()).await.unwrap();
    let client = HyperClient::builder(format!("http://{}", server.addr())).build().unwrap();
    let runtime = RuntimeId::new("33333333-3333-4333-8333-333333333333"); // the demo seed's
    let task = client.claim_task(&runtime).await.unwrap().expect("a queued task");
    let id = task.record.id.clone();
    client.start_task(&id).await.unwrap();
    client.complete_task(&id, &TaskCompletion::with_output("done")).await.unwrap();
    let err = client.complete_task(&id, &TaskCompletion::with_output("again")).await.unwrap_err();
    assert!(err.is_task_state_conflict(), "{err}");
    let err = fake.fail_task(&id, "late").await.unwrap_err();
    assert!(err.is_task_state_conflict(), "{err}");
}
