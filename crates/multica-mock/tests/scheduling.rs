//! The server's scheduling rules on the fake's clock: the claim walk
//! (priority, age, one look per agent, agent limits, closed issues, the
//! cross-runtime quirk) and the sweeper (offline runtimes, timeouts).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::World;
use multica_api::{AgentId, DaemonApiExt, IssueId, RuntimeId, TaskId, TaskStatus};
use multica_mock::{AgentSeed, IssueSeed, MockDaemon, Seed, TaskSeed, DEFAULT_MAX_CONCURRENT_TASKS};

async fn world() -> World {
    common::world().await
}

fn agent(w: &World, name: &str, limit: Option<u32>) -> AgentId {
    let seed = AgentSeed {
        workspace_id: w.workspace_id.clone(),
        name: name.into(),
        max_concurrent_tasks: limit,
        ..AgentSeed::default()
    };
    w.mock.add_agent(seed).unwrap()
}

fn enqueue(w: &World, runtime: &RuntimeId, agent: &AgentId, issue: &str, priority: i64) -> TaskId {
    let seed = TaskSeed {
        id: None,
        runtime_id: runtime.clone(),
        agent_id: agent.clone(),
        issue_id: IssueId::new(issue),
        priority,
    };
    w.mock.add_task(seed).unwrap()
}

async fn claim(w: &World, runtime: &RuntimeId) -> Option<TaskId> {
    w.mock.claim_task(runtime).await.unwrap().map(|task| task.record.id)
}

fn status(w: &World, task: &TaskId) -> TaskStatus {
    w.mock.task_status(task).unwrap()
}

/// A second runtime of the world's workspace (another daemon).
async fn second_runtime(w: &World) -> RuntimeId {
    let request = common::register_request(&w.workspace_id, "d2", "codex");
    w.mock.register(&request).await.unwrap().runtimes[0].id.clone()
}

#[tokio::test(start_paused = true)]
async fn claims_go_by_priority_then_age() {
    let w = world().await;
    let a = agent(&w, "A", None);
    let low = enqueue(&w, &w.runtime_id, &a, "i1", 1);
    let high_old = enqueue(&w, &w.runtime_id, &a, "i2", 5);
    let high_new = enqueue(&w, &w.runtime_id, &a, "i3", 5);
    assert_eq!(claim(&w, &w.runtime_id).await, Some(high_old));
    assert_eq!(claim(&w, &w.runtime_id).await, Some(high_new));
    assert_eq!(claim(&w, &w.runtime_id).await, Some(low));
    assert_eq!(claim(&w, &w.runtime_id).await, None);
}

#[tokio::test(start_paused = true)]
async fn an_agent_never_holds_more_than_its_limit() {
    let w = world().await;
    let a = agent(&w, "A", Some(2));
    let tasks: Vec<TaskId> = (0..3).map(|i| enqueue(&w, &w.runtime_id, &a, &format!("i{i}"), 0)).collect();
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&tasks[0]));
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&tasks[1]));
    assert_eq!(claim(&w, &w.runtime_id).await, None, "two dispatched: the agent is full");
    assert_eq!(status(&w, &tasks[2]), TaskStatus::Queued);
    // Running counts as well; finishing one makes room.
    w.mock.start_task(&tasks[0]).await.unwrap();
    assert_eq!(claim(&w, &w.runtime_id).await, None, "one running + one dispatched: still full");
    w.mock.fail_task(&tasks[0], "boom").await.unwrap();
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&tasks[2]));
}

#[tokio::test(start_paused = true)]
async fn the_default_limit_is_six_and_other_agents_still_get_their_turn() {
    let w = world().await;
    let busy = agent(&w, "Busy", None);
    let other = agent(&w, "Other", None);
    let busy_tasks: Vec<TaskId> =
        (0..=DEFAULT_MAX_CONCURRENT_TASKS).map(|i| enqueue(&w, &w.runtime_id, &busy, &format!("b{i}"), 9)).collect();
    let other_task = enqueue(&w, &w.runtime_id, &other, "o", 0);
    for expected in &busy_tasks[..6] {
        assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(expected));
    }
    // The busy agent's seventh task is skipped; the walk reaches the other agent.
    assert_eq!(claim(&w, &w.runtime_id).await, Some(other_task));
    assert_eq!(claim(&w, &w.runtime_id).await, None);
    assert_eq!(status(&w, &busy_tasks[6]), TaskStatus::Queued);
    assert_eq!(w.mock.agent(&busy).unwrap().max_concurrent_tasks, DEFAULT_MAX_CONCURRENT_TASKS);
}

#[tokio::test(start_paused = true)]
async fn a_task_of_a_closed_issue_cancels_the_issues_tasks_and_is_skipped() {
    let w = world().await;
    let elsewhere = second_runtime(&w).await;
    let a = agent(&w, "A", None);
    let b = agent(&w, "B", None);
    let closed_first = enqueue(&w, &w.runtime_id, &a, "closed", 9);
    let closed_elsewhere = enqueue(&w, &elsewhere, &b, "closed", 0);
    let dispatched_elsewhere = enqueue(&w, &elsewhere, &b, "closed", 9);
    assert_eq!(claim(&w, &elsewhere).await.as_ref(), Some(&dispatched_elsewhere));
    let open = enqueue(&w, &w.runtime_id, &b, "open", 1);
    w.mock.set_issue_status(&IssueId::new("closed"), "done").unwrap();

    assert_eq!(claim(&w, &w.runtime_id).await, Some(open), "the closed issue's task is skipped");
    for task in [&closed_first, &closed_elsewhere, &dispatched_elsewhere] {
        assert_eq!(status(&w, task), TaskStatus::Cancelled, "every task of the closed issue");
    }
    // An issue set back to an open status is claimed again.
    w.mock.set_issue_status(&IssueId::new("again"), "cancelled").unwrap();
    let again = enqueue(&w, &w.runtime_id, &a, "again", 0);
    w.mock.set_issue_status(&IssueId::new("again"), "todo").unwrap();
    assert_eq!(claim(&w, &w.runtime_id).await, Some(again));
}

#[tokio::test(start_paused = true)]
async fn an_agents_next_task_on_another_runtime_is_dispatched_and_nobody_gets_it() {
    // Server quirk: the walk on runtime 1 meets agent A through a dispatched
    // task; A's next queued task is on runtime 2, so it is dispatched there
    // and this claim goes on to the next agent.
    let w = world().await;
    let elsewhere = second_runtime(&w).await;
    let a = agent(&w, "A", None);
    let b = agent(&w, "B", None);
    let here = enqueue(&w, &w.runtime_id, &a, "i1", 9);
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&here));
    let stranded = enqueue(&w, &elsewhere, &a, "i2", 5);
    let for_b = enqueue(&w, &w.runtime_id, &b, "i3", 0);

    assert_eq!(claim(&w, &w.runtime_id).await, Some(for_b));
    assert_eq!(status(&w, &stranded), TaskStatus::Dispatched, "dispatched by a claim of another runtime");
    assert_eq!(claim(&w, &elsewhere).await, None, "and its own runtime never receives it");
    let pending = w.mock.list_pending_tasks(&elsewhere).await.unwrap();
    assert_eq!(pending.iter().map(|t| (&t.id, &t.status)).collect::<Vec<_>>(), [(&stranded, &TaskStatus::Dispatched)]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_runtime_goes_offline_at_the_next_sweep_and_its_tasks_fail() {
    let w = world().await;
    let a = agent(&w, "A", None);
    let dispatched = enqueue(&w, &w.runtime_id, &a, "i1", 9);
    let running = enqueue(&w, &w.runtime_id, &a, "i2", 8);
    let queued = enqueue(&w, &w.runtime_id, &a, "i3", 0);
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&dispatched));
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&running));
    w.mock.start_task(&running).await.unwrap();

    // Last seen at 0 s: the sweep at 30 s finds 30 s of silence, not more than 45.
    w.mock.advance_clock(Duration::from_secs(45));
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status.to_string(), "online");
    assert_eq!(status(&w, &dispatched), TaskStatus::Dispatched);
    // The sweep at 60 s does.
    w.mock.advance_clock(Duration::from_secs(15));
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status.to_string(), "offline");
    for task in [&dispatched, &running] {
        let record = w.mock.task(task).unwrap();
        assert_eq!((record.status, record.error.as_deref()), (TaskStatus::Failed, Some("runtime went offline")));
        assert_eq!(record.completed_at.as_deref(), Some("2026-01-01T00:01:00Z"), "failed by the 60 s sweep");
    }
    assert_eq!(status(&w, &queued), TaskStatus::Queued, "queued tasks wait");
    // A heartbeat brings the runtime back.
    w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status.to_string(), "online");
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_runtime_online() {
    let w = world().await;
    for _ in 0..20 {
        w.mock.advance_clock(Duration::from_secs(40));
        w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    }
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status.to_string(), "online");
}

#[tokio::test(start_paused = true)]
async fn a_task_dispatched_for_more_than_300_s_times_out() {
    let w = world().await;
    let a = agent(&w, "A", None);
    let task = enqueue(&w, &w.runtime_id, &a, "i1", 0);
    assert_eq!(claim(&w, &w.runtime_id).await.as_ref(), Some(&task));
    // Heartbeats every 30 s keep the runtime online; the task is never started.
    for _ in 0..10 {
        w.mock.advance_clock(Duration::from_secs(30));
        w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    }
    assert_eq!(status(&w, &task), TaskStatus::Dispatched, "300 s is not more than 300 s");
    w.mock.advance_clock(Duration::from_secs(30));
    let record = w.mock.task(&task).unwrap();
    assert_eq!((record.status, record.error.as_deref()), (TaskStatus::Failed, Some("task timed out")));
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status.to_string(), "online");
}

#[tokio::test(start_paused = true)]
async fn a_task_running_for_more_than_9000_s_times_out() {
    let w = world().await;
    let a = agent(&w, "A", None);
    let task = enqueue(&w, &w.runtime_id, &a, "i1", 0);
    claim(&w, &w.runtime_id).await.unwrap();
    w.mock.start_task(&task).await.unwrap();
    for _ in 0..300 {
        w.mock.advance_clock(Duration::from_secs(30));
        w.mock.send_heartbeat(&w.runtime_id).await.unwrap();
    }
    assert_eq!(status(&w, &task), TaskStatus::Running, "9,000 s is not more than 9,000 s");
    w.mock.advance_clock(Duration::from_secs(30));
    assert_eq!(w.mock.task(&task).unwrap().error.as_deref(), Some("task timed out"));
}

#[tokio::test(start_paused = true)]
async fn one_long_jump_runs_every_sweep_it_passes() {
    let w = world().await;
    let a = agent(&w, "A", None);
    let task = enqueue(&w, &w.runtime_id, &a, "i1", 0);
    claim(&w, &w.runtime_id).await.unwrap();
    // A year at once: the 60 s sweep takes the runtime offline first, so the
    // task fails for that reason, not for the later timeout.
    w.mock.advance_clock(Duration::from_secs(365 * 86_400));
    let record = w.mock.task(&task).unwrap();
    assert_eq!(record.error.as_deref(), Some("runtime went offline"));
    assert_eq!(record.completed_at.as_deref(), Some("2026-01-01T00:01:00Z"));
    assert_eq!(w.mock.snapshot().now, "2027-01-01T00:00:00Z");
}

#[tokio::test(start_paused = true)]
async fn issues_and_agent_limits_come_from_the_seed() {
    // Shared with the binary's test, which loads the same file with `--seed`.
    let seed = Seed::from_json(include_str!("fixtures/scheduling-seed.json")).unwrap();
    assert_eq!(seed.issues, [IssueSeed { id: "closed".into(), status: "done".into(), ..IssueSeed::default() }]);
    let mock = MockDaemon::builder().seed(seed).build().unwrap();
    let runtime = RuntimeId::new("33333333-3333-4333-8333-333333333333");
    let first = mock.claim_task(&runtime).await.unwrap().unwrap().record.id;
    assert_eq!(first, "44444444-4444-4444-8444-444444444402");
    assert_eq!(mock.task_status(&"44444444-4444-4444-8444-444444444401".into()), Some(TaskStatus::Cancelled));
    assert!(mock.claim_task(&runtime).await.unwrap().is_none(), "the agent's limit is 1");
    // Every issue a task works on is known, numbered in queueing order.
    let issue = |id: &str, status: &str, number: i64| IssueSeed {
        id: id.into(),
        status: status.into(),
        title: String::new(),
        number: Some(number),
    };
    assert_eq!(mock.snapshot().issues, [issue("closed", "done", 1), issue("open", "", 2)]);
}
