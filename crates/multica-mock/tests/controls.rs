//! Test controls: call log, faults, seeding, inspection, concurrency.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{assert_same_error, world};
use multica_api::conformance::{Fixture, NewTask};
use multica_api::{request, Call, DaemonApiExt, Endpoint, Error, Method, RuntimeId, TaskCompletion, TaskStatus};
use multica_mock::{AgentSeed, MockDaemon, RuntimeSeed, Seed, TaskSeed, WorkspaceSeed};

#[tokio::test]
async fn call_log_records_every_call_with_its_arguments_in_order() {
    let w = world().await;
    w.mock.clear_calls();
    let id = w.enqueue("i", 0);
    w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    w.mock.claim_task(&w.runtime_id).await.unwrap();
    w.mock.fail_task(&id, "broke").await.unwrap();
    let _ = w.mock.start_task(&id).await; // rejected calls are logged too
    assert_eq!(
        w.mock.calls(),
        vec![
            Call::SendHeartbeat { runtime_id: w.runtime_id.clone() },
            Call::ClaimTask { runtime_id: w.runtime_id.clone() },
            Call::FailTask { task_id: id.clone(), error: "broke".into() },
            Call::StartTask { task_id: id.clone() },
        ]
    );
    assert_eq!(w.mock.calls_to(Endpoint::FailTask).len(), 1);
    assert_eq!(w.mock.call_count(), 5, "the register of the set-up counts too");
}

#[tokio::test]
async fn call_log_is_bounded_and_can_be_off() {
    let mock = MockDaemon::builder().call_log_capacity(2).build().unwrap();
    for _ in 0..3 {
        let _ = mock.send_heartbeat(&"r".into()).await;
    }
    let _ = mock.claim_task(&"r".into()).await;
    assert_eq!(mock.calls().len(), 2);
    assert_eq!(mock.calls()[1].endpoint(), Endpoint::ClaimTask);
    assert_eq!(mock.call_count(), 4);
    let silent = MockDaemon::builder().call_log_capacity(0).build().unwrap();
    let _ = silent.send_heartbeat(&"r".into()).await;
    assert!(silent.calls().is_empty());
    assert_eq!(silent.call_count(), 1);
}

#[tokio::test]
async fn injected_failures_hit_the_next_n_calls_with_the_requests_own_path() {
    let w = world().await;
    w.mock.fail_next_with_status(Endpoint::ClaimTask, 2, 503, "busy");
    w.enqueue("i", 0);
    for _ in 0..2 {
        let err = w.mock.claim_task(&w.runtime_id).await.unwrap_err();
        let expected = request::claim_task(&w.runtime_id).unwrap().decode_response(503, b"{\"error\":\"busy\"}\n");
        assert_same_error(&err, &expected.unwrap_err());
        assert!(err.is_transient());
    }
    // The failed claims did not take the task; the third one does.
    assert!(w.mock.claim_task(&w.runtime_id).await.unwrap().is_some());
    assert_eq!(w.mock.calls_to(Endpoint::ClaimTask).len(), 3);

    // Any error value can be injected; its method and path become the call's.
    let timeout = Error::Timeout { method: Method::Get, path: "/elsewhere".into(), after: Duration::from_secs(30) };
    w.mock.fail_next(Endpoint::SendHeartbeat, 1, timeout);
    let err = w.mock.send_heartbeat(&w.runtime_id).await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!((err.method(), err.path()), (Some(Method::Post), Some("/api/daemon/heartbeat")));
    assert_eq!(w.mock.heartbeats(&w.runtime_id), 0, "a failed call has no effect");
    w.mock.send_heartbeat(&w.runtime_id).await.unwrap();

    w.mock.fail_next_with_status(Endpoint::SendHeartbeat, 5, 500, "x");
    w.mock.clear_faults();
    w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn delays_wait_on_tokios_clock_before_the_call_takes_effect() {
    let w = world().await;
    let id = w.dispatched("i").await;
    w.mock.delay_next(Endpoint::StartTask, 1, Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let timed_out = tokio::time::timeout(Duration::from_secs(1), w.mock.start_task(&id)).await;
    assert!(timed_out.is_err());
    assert_eq!(w.mock.task_status(&id), Some(TaskStatus::Dispatched), "dropped during the delay: no effect");
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    // The delay was used up by that call.
    w.mock.start_task(&id).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));

    w.mock.delay_next(Endpoint::CompleteTask, 1, Duration::from_secs(10));
    w.mock.complete_task(&id, &TaskCompletion::with_output("ok")).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(11));
    assert_eq!(w.mock.task_status(&id), Some(TaskStatus::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_hand_each_task_out_exactly_once() {
    let w = world().await;
    const TASKS: usize = 2_000;
    // An agent with room for every task: by default an agent holds at most 6.
    let agent_id = w
        .mock
        .add_agent(AgentSeed {
            workspace_id: w.workspace_id.clone(),
            name: "Many".into(),
            max_concurrent_tasks: Some(TASKS as u32),
            ..AgentSeed::default()
        })
        .unwrap();
    let queued: HashSet<_> = (0..TASKS)
        .map(|i| {
            let seed = TaskSeed {
                id: None,
                runtime_id: w.runtime_id.clone(),
                agent_id: agent_id.clone(),
                issue_id: format!("issue-{i}").into(),
                priority: (i % 7) as i64,
            };
            w.mock.add_task(seed).unwrap()
        })
        .collect();
    let mock = Arc::new(w.mock.clone());
    let claimers: Vec<_> = (0..32)
        .map(|_| {
            let mock = Arc::clone(&mock);
            let runtime_id = w.runtime_id.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(task) = mock.claim_task(&runtime_id).await.unwrap() {
                    mine.push(task.record.id);
                    tokio::task::yield_now().await;
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.unwrap());
    }
    assert_eq!(claimed.len(), TASKS, "no task handed out twice, none lost");
    assert_eq!(claimed.into_iter().collect::<HashSet<_>>(), queued);
}

#[tokio::test]
async fn the_example_seed_file_loads_with_fixed_ids() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.json")).unwrap();
    let seed = Seed::from_json(&text).unwrap();
    assert_eq!(seed, Seed::demo());
    let mock = MockDaemon::builder().seed(seed).build().unwrap();
    let runtime_id = RuntimeId::new("33333333-3333-4333-8333-333333333333");
    let snapshot = mock.snapshot();
    assert_eq!(snapshot.workspaces[0].id, "11111111-1111-4111-8111-111111111111");
    assert_eq!(snapshot.runtimes[0].runtime.id, runtime_id);
    assert_eq!(snapshot.runtimes[0].runtime.last_seen_at, None);
    let mut order = Vec::new();
    while let Some(task) = mock.claim_task(&runtime_id).await.unwrap() {
        order.push(task.record.id.into_string());
    }
    assert_eq!(
        order,
        [
            "44444444-4444-4444-8444-000000000002",
            "44444444-4444-4444-8444-000000000001",
            "44444444-4444-4444-8444-000000000003"
        ]
    );
}

#[test]
fn bad_seeds_are_refused_with_a_clear_error() {
    let dup = Seed {
        workspaces: vec![
            WorkspaceSeed { id: Some("w".into()), ..Default::default() },
            WorkspaceSeed { id: Some("w".into()), ..Default::default() },
        ],
        ..Default::default()
    };
    assert!(
        matches!(MockDaemon::builder().seed(dup).build(), Err(Error::InvalidArgument(m)) if m.contains("already exists"))
    );
    let orphan =
        Seed { tasks: vec![TaskSeed { runtime_id: "nope".into(), ..Default::default() }], ..Default::default() };
    assert!(MockDaemon::builder().seed(orphan).build().is_err());
    let runtime = Seed {
        runtimes: vec![RuntimeSeed { workspace_id: "nope".into(), ..Default::default() }],
        ..Default::default()
    };
    assert!(MockDaemon::builder().seed(runtime).build().is_err());
}

#[tokio::test]
async fn fixture_trait_sets_up_and_inspects_through_the_fake() {
    let mock = MockDaemon::new();
    let fixture: &dyn Fixture = &mock;
    let workspace_id = fixture.create_workspace("Team", &[common::repo()]).await.unwrap();
    let mut agent = multica_api::TaskAgent::default();
    agent.name = "A".into();
    agent.skills = vec![common::skill()];
    let agent_id = fixture.create_agent(&workspace_id, &agent).await.unwrap();
    let registered = mock.register(&common::register_request(&workspace_id, "d", "claude")).await.unwrap();
    let runtime_id = registered.runtimes[0].id.clone();
    assert_eq!(fixture.runtime(&runtime_id).await.unwrap().unwrap().provider, "claude");
    assert_eq!(fixture.runtime(&"nope".into()).await.unwrap(), None);
    let new_task = NewTask { runtime_id: runtime_id.clone(), agent_id, issue_id: "i".into(), priority: 1 };
    let task_id = fixture.enqueue_task(&new_task).await.unwrap();
    fixture.cancel_task(&task_id).await.unwrap();
    assert_eq!(mock.get_task_status(&task_id).await.unwrap(), TaskStatus::Cancelled);
    let ping = fixture.create_ping(&runtime_id).await.unwrap();
    assert_eq!(mock.send_heartbeat(&runtime_id).await.unwrap().pending_ping.unwrap().id, ping);
    assert!(fixture.create_ping(&"nope".into()).await.is_err());
    assert!(fixture.usage(&runtime_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn ids_and_timestamps_are_deterministic() {
    let a = world().await;
    let b = world().await;
    assert_eq!(a.runtime_id, b.runtime_id);
    assert_eq!(a.workspace_id.as_str(), "00000000-0000-4000-8000-000000000001");
    let runtime = a.mock.runtime_by_id(&a.runtime_id).unwrap();
    assert_eq!(runtime.created_at, "2026-01-01T00:00:00Z");
    a.mock.advance_clock(Duration::from_millis(1500));
    a.mock.send_heartbeat(&a.runtime_id).await.unwrap();
    assert_eq!(a.mock.runtime_by_id(&a.runtime_id).unwrap().last_seen_at.as_deref(), Some("2026-01-01T00:00:01Z"));
}

#[tokio::test]
async fn clones_share_state_across_threads() {
    let w = world().await;
    let clone = w.mock.clone();
    let id = w.enqueue("i", 0);
    let claimed = tokio::spawn(async move { clone.claim_task(&common_runtime(&clone)).await.unwrap() }).await.unwrap();
    assert_eq!(claimed.unwrap().record.id, id);
    assert_eq!(w.mock.task_status(&id), Some(TaskStatus::Dispatched));
}

fn common_runtime(mock: &MockDaemon) -> RuntimeId {
    mock.snapshot().runtimes[0].runtime.id.clone()
}
