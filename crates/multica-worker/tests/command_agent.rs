//! The command agent with real subprocesses, on real time (a paused clock
//! cannot wait for a process): short intervals and deadlines, no sleeps.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use multica_api::{Endpoint, MessageKind, TaskStatus};
use multica_worker::{CommandAgent, Worker, WorkerConfig};
use tokio::time::Instant;

use support::*;

fn fast() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(50),
        status_interval: Duration::from_millis(50),
        exit_when_idle: true,
        reporter: multica_api::reporter::ReporterConfig::default().with_flush_interval(Duration::from_millis(20)),
        ..WorkerConfig::default()
    }
}

fn sh(script: &str) -> CommandAgent {
    CommandAgent::new("sh").args(["-c", script]).kill_grace(Duration::from_millis(500))
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn each_line_is_one_message_the_task_goes_in_and_exit_0_completes_with_the_tail() {
    let mock = empty();
    let task = add_task(&mock);
    let script =
        r#"echo "task $MULTICA_TASK_ID"; echo "runtime $MULTICA_RUNTIME_ID"; grep -o '"priority":[0-9]*' ; echo last"#;
    let summary =
        Worker::new(api(&mock), registration(), sh(script)).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.failed), (1, 0));
    let lines: Vec<String> = mock.messages(&task).into_iter().map(|m| m.content).collect();
    assert_eq!(
        lines,
        [format!("task {task}"), format!("runtime {RUNTIME}"), "\"priority\":0".to_owned(), "last".to_owned()]
    );
    assert!(mock.messages(&task).iter().all(|m| m.kind == MessageKind::Text));
    let output = mock.task(&task).unwrap().result.unwrap()["output"].as_str().unwrap().to_owned();
    assert!(output.ends_with("\"priority\":0\nlast"), "{output:?}");
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_task_with_the_status_and_stderr() {
    let mock = empty();
    let task = add_task(&mock);
    let agent = sh("echo some progress; echo 'cannot find the repository' >&2; exit 3");
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.failed), (0, 1));
    let error = mock.task(&task).unwrap().error.unwrap();
    assert!(error.contains("exit status: 3") && error.contains("cannot find the repository"), "{error}");
}

#[tokio::test]
async fn a_program_that_cannot_start_fails_the_task() {
    let mock = empty();
    let task = add_task(&mock);
    let agent = CommandAgent::new("/nonexistent/agent-cli");
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
    assert_eq!(summary.failed, 1);
    assert!(mock.task(&task).unwrap().error.unwrap().contains("cannot run /nonexistent/agent-cli"));
}

#[tokio::test]
async fn cancellation_kills_the_whole_process_group_and_reports_nothing() {
    let mock = empty();
    let task = add_task(&mock);
    // A child that ignores SIGTERM, in the background, then the shell waits.
    let agent = sh("trap '' TERM; (trap '' TERM; sleep 300) & echo child $!; wait");
    let run = tokio::spawn(Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()));

    let mut child = None;
    eventually("the child's PID", || {
        child = mock.messages(&task).iter().find_map(|m| m.content.strip_prefix("child ")?.parse::<u32>().ok());
        child.is_some()
    })
    .await;
    let child = child.unwrap();
    assert!(alive(child));
    mock.cancel(&task).unwrap();

    let summary = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap().unwrap();
    assert_eq!((summary.cancelled, summary.completed, summary.failed), (1, 0, 0));
    eventually("the child to be killed", || !alive(child)).await;
    assert!(mock.calls_to(Endpoint::CompleteTask).is_empty() && mock.calls_to(Endpoint::FailTask).is_empty());
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Cancelled));
}

#[tokio::test]
async fn the_per_task_timeout_stops_the_program_and_fails_the_task() {
    let mock = empty();
    let task = add_task(&mock);
    let agent = sh("echo started; sleep 300").timeout(Duration::from_millis(300));
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
    assert_eq!(summary.failed, 1);
    let error = mock.task(&task).unwrap().error.unwrap();
    assert!(error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn shutdown_stops_the_program_after_the_grace_and_fails_the_task() {
    let mock = empty();
    let task = add_task(&mock);
    let config = WorkerConfig { shutdown_grace: Duration::from_millis(100), exit_when_idle: false, ..fast() };
    let agent = sh("echo started; exec sleep 300");
    let shutdown = {
        let mock = mock.clone();
        let task = task.clone();
        async move { eventually("the program to start", || !mock.messages(&task).is_empty()).await }
    };
    let summary = Worker::new(api(&mock), registration(), agent).config(config).run(shutdown).await.unwrap();
    assert_eq!(summary.failed, 1);
    let error = mock.task(&task).unwrap().error.unwrap();
    assert!(error.contains("shut down") && error.contains("was stopped"), "{error}");
    assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 1);
}

/// What the program saw of the token: its environment and its stdin.
const SHOW_TOKEN: &str = r#"if [ -n "${MULTICA_TOKEN+x}" ]; then echo "token $MULTICA_TOKEN"; else echo "no token"; fi; grep -c mat_ || true"#;

#[tokio::test]
async fn the_claims_token_is_the_programs_multica_token_and_never_on_its_stdin() {
    let mock = empty();
    let task = add_task(&mock);
    let token = "mat_0123456789abcdef0123456789abcdef01234567";
    let recorder = Recorder::default();
    let worker = Worker::new(Probe::with_claim_token(&mock, token), registration(), sh(SHOW_TOKEN)).config(fast());
    let summary = recorder.attach(worker).run(std::future::pending()).await.unwrap();

    assert_eq!(summary.completed, 1);
    let lines: Vec<String> = mock.messages(&task).into_iter().map(|m| m.content).collect();
    assert_eq!(lines, [format!("token {token}"), "0".to_owned()]);
    for event in recorder.events() {
        assert!(!format!("{event} {event:?}").contains("mat_"), "{event:?}");
    }
}

#[tokio::test]
async fn without_a_token_in_the_claim_multica_token_is_not_set() {
    let mock = empty();
    let task = add_task(&mock);
    let summary = Worker::new(Probe::new(&mock), registration(), sh(SHOW_TOKEN))
        .config(fast())
        .run(std::future::pending())
        .await
        .unwrap();

    assert_eq!(summary.completed, 1);
    let lines: Vec<String> = mock.messages(&task).into_iter().map(|m| m.content).collect();
    assert_eq!(lines, ["no token", "0"]);
}

#[tokio::test]
async fn on_a_head_server_each_program_gets_its_claims_mat_token() {
    let mock = empty_head();
    let task = add_task(&mock);
    let script = r#"echo "${MULTICA_TOKEN%%_*} ${#MULTICA_TOKEN}""#;
    let summary =
        Worker::new(api(&mock), registration(), sh(script)).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.errors), (1, 0));
    let lines: Vec<String> = mock.messages(&task).into_iter().map(|m| m.content).collect();
    // `mat_` and 40 hex digits.
    assert_eq!(lines, ["mat 44"]);
}

#[tokio::test]
async fn a_stopped_program_gets_sigint_first_so_it_can_save_its_session() {
    let mock = empty();
    let task = add_task(&mock);
    let marker = std::env::temp_dir().join(format!("multica-sigint-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let script = r#"trap 'echo INT > "$MARKER"; exit 130' INT; trap 'echo TERM > "$MARKER"; exit 143' TERM; echo started; while :; do sleep 0.05; done"#;
    let agent = sh(script).env("MARKER", &marker).kill_grace(Duration::from_secs(5));
    let run = tokio::spawn(Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()));
    eventually("the program to start", || !mock.messages(&task).is_empty()).await;
    mock.cancel(&task).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap().unwrap();
    assert_eq!(summary.cancelled, 1);
    let got = std::fs::read_to_string(&marker).unwrap();
    let _ = std::fs::remove_file(&marker);
    assert_eq!(got.trim(), "INT");
}
