//! The ready interpreters with real processes through the worker and the
//! fake, on replayed recordings: what the server ends up with.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use multica_api::{MessageKind, RuntimeId, TaskStatus};
use multica_mock::MockDaemon;
use multica_worker::agents::{Acp, ClaudeCode};
use multica_worker::{CommandAgent, Worker, WorkerConfig, WorkerEvent};
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

fn script(name: &str) -> String {
    format!("{}/tests/fixtures/agents/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Waits up to 10 s for `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn kinds(mock: &MockDaemon, task: &multica_api::TaskId) -> Vec<(String, String)> {
    mock.messages(task).into_iter().map(|m| (m.kind.to_string(), m.tool)).collect()
}

fn pair(kind: &str, tool: &str) -> (String, String) {
    (kind.to_owned(), tool.to_owned())
}

const SONNET: &str = "claude-sonnet-4-5-20250929";

#[tokio::test]
async fn a_replayed_claude_code_run_reaches_the_server_on_both_versions() {
    for mock in [empty(), empty_head()] {
        let head = mock.server_version() == multica_api::ServerVersion::Head;
        let task = add_task(&mock);
        let agent = CommandAgent::new(script("replay.sh")).interpreter(ClaudeCode);
        let recorder = Recorder::default();
        let worker = recorder.attach(Worker::new(api(&mock), registration(), agent).config(fast()));
        let summary = worker.run(std::future::pending()).await.unwrap();

        assert_eq!((summary.completed, summary.failed, summary.errors), (1, 0, 0), "head: {head}");
        assert_eq!(
            kinds(&mock, &task),
            [
                pair("thinking", ""),
                pair("text", ""),
                pair("tool_use", "Bash"),
                pair("tool_result", "Bash"),
                pair("tool_use", "Edit"),
                pair("tool_result", "Edit"),
                pair("text", "")
            ]
        );
        let messages = mock.messages(&task);
        assert_eq!(messages[2].input["command"], "cargo test");
        assert!(messages[3].output.contains("11 passed; 1 failed"), "{:?}", messages[3]);
        let record = mock.task(&task).unwrap();
        let result = record.result.unwrap();
        assert!(result["output"].as_str().unwrap().starts_with("Fixed the off-by-one"), "{result}");
        let state = mock.snapshot().tasks.into_iter().find(|t| t.record.id == task).unwrap();
        assert_eq!(state.session_id, "5b0f6e2a-93c1-4c1e-9d57-2f4e8b6a1c11");
        let rows: Vec<(String, String, i64, i64, i64, i64)> = if head {
            mock.task_usage(&task)
                .into_iter()
                .map(|u| {
                    (u.provider, u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
                })
                .collect()
        } else {
            mock.usage_of(&RuntimeId::new(RUNTIME))
                .into_iter()
                .map(|u| {
                    (u.provider, u.model, u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
                })
                .collect()
        };
        assert_eq!(rows, [("claude".to_owned(), SONNET.to_owned(), 12, 296, 50380, 6144)], "head: {head}");
        // Pinned as soon as the `system` line named it, where the route is.
        let pinned = recorder.count(|event| matches!(event, WorkerEvent::SessionPinned { .. }));
        assert_eq!(pinned, usize::from(head), "head: {head}");
    }
}

#[tokio::test]
async fn a_claude_code_failure_reaches_the_server_with_the_go_daemons_reason() {
    let mock = empty_head();
    let task = add_task(&mock);
    let agent = CommandAgent::new(script("replay.sh"))
        .interpreter(ClaudeCode)
        .env("REPLAY", script("claude-code-2.1.220-context-exhausted-resume.jsonl"));
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
    assert_eq!(summary.failed, 1);
    let record = mock.task(&task).unwrap();
    assert!(record.error.as_deref().unwrap().contains("terminal_reason=prompt_too_long"), "{record:?}");
    assert_eq!(record.failure_reason.as_str(), "agent_error.context_overflow");
}

#[tokio::test]
async fn an_acp_agent_turn_reaches_the_server() {
    let mock = empty_head();
    let task = add_task(&mock);
    let agent = CommandAgent::new(script("fake-acp-agent.sh")).interpreter(Acp::new());
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.failed), (1, 0));
    assert_eq!(
        kinds(&mock, &task),
        [
            pair("thinking", ""),
            pair("text", ""),
            pair("tool_use", "Run cargo test"),
            pair("tool_result", "Run cargo test"),
            pair("tool_use", "Edit src/range.rs"),
            pair("tool_result", "Edit src/range.rs"),
            pair("text", "")
        ]
    );
    let result = mock.task(&task).unwrap().result.unwrap();
    assert_eq!(result["output"], "All 12 tests pass now.");
    let usage = mock.task_usage(&task);
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(
        (usage[0].model.as_str(), usage[0].input_tokens, usage[0].output_tokens, usage[0].cache_read_tokens),
        ("kimi-k2-turbo", 1200, 340, 800)
    );
}

#[tokio::test]
async fn a_cancelled_acp_agent_is_cancelled_by_the_protocol_before_any_signal() {
    let mock = empty();
    let task = add_task(&mock);
    let marker = std::env::temp_dir().join(format!("multica-acp-cancel-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    // The fake agent ignores SIGINT and SIGTERM: a long kill grace makes a
    // signal-driven stop take far longer than the test's deadline.
    let agent = CommandAgent::new(script("fake-acp-agent.sh"))
        .interpreter(Acp::new())
        .env("FAKE_ACP_HANG", &marker)
        .kill_grace(Duration::from_secs(30));
    let config = WorkerConfig { cancel_grace: Duration::from_secs(60), ..fast() };
    let run = tokio::spawn(Worker::new(api(&mock), registration(), agent).config(config).run(std::future::pending()));
    eventually("the prompt to stream", || !mock.messages(&task).is_empty()).await;
    mock.cancel(&task).unwrap();

    let started = Instant::now();
    let summary = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(summary.cancelled, 1);
    let sent = std::fs::read_to_string(&marker).unwrap();
    let _ = std::fs::remove_file(&marker);
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "sess_8f2c1e"}})
    );
    assert_eq!(mock.task_status(&task), Some(TaskStatus::Cancelled));
}

#[tokio::test]
async fn an_over_long_line_is_one_cut_message_bad_utf8_is_replaced_and_the_output_drained() {
    let mock = empty();
    let task = add_task(&mock);
    let script = r"head -c 100000 /dev/zero | tr '\0' x; echo; printf 'a\377b\n'; echo after";
    let agent = CommandAgent::new("sh").args(["-c", script]).max_line_bytes(64);
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
    assert_eq!(summary.completed, 1);
    let lines: Vec<String> = mock.messages(&task).into_iter().map(|m| m.content).collect();
    assert_eq!(lines, ["x".repeat(64), "a\u{fffd}b".to_owned(), "after".to_owned()]);
    assert!(mock.messages(&task).iter().all(|m| m.kind == MessageKind::Text));
}

#[tokio::test]
async fn the_agents_skills_are_written_for_the_program_and_named_in_its_environment() {
    for mock in [empty(), empty_head()] {
        let task = add_task(&mock);
        let script = r#"echo "dir $MULTICA_SKILLS_DIR"; ls "$MULTICA_SKILLS_DIR"; cat "$MULTICA_SKILLS_DIR"/*/SKILL.md | grep -q . && echo has-skill-md"#;
        let agent = CommandAgent::new("sh").args(["-c", script]);
        let summary =
            Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
        let lines: Vec<String> = mock.messages(&task).into_iter().map(|m| m.content).collect();
        assert_eq!(summary.completed, 1, "{lines:?}");
        let dir = lines[0].strip_prefix("dir ").unwrap().to_owned();
        assert!(dir.contains(&format!("multica-skills-{task}")), "{lines:?}");
        assert!(lines.contains(&"has-skill-md".to_owned()), "{lines:?}");
        // Without a work directory the skills lived in the run's own one.
        assert!(!std::path::Path::new(&dir).exists());
    }
}

#[tokio::test]
async fn in_a_work_directory_the_skills_go_where_claude_code_finds_them() {
    let mock = empty();
    let task = add_task(&mock);
    let work = std::env::temp_dir().join(format!("multica-work-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let agent = CommandAgent::new("sh")
        .args([
            "-c",
            r#"echo "$MULTICA_SKILLS_DIR"; read -r _; echo '{"type":"result","result":"ok","session_id":"s"}'"#,
        ])
        .interpreter(ClaudeCode)
        .current_dir(&work);
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
    assert_eq!(summary.completed, 1);
    let first = mock.messages(&task)[0].content.clone();
    assert_eq!(first, work.join(".claude/skills").to_string_lossy());
    assert!(std::fs::read_dir(work.join(".claude/skills")).unwrap().count() > 0);
    let result = mock.task(&task).unwrap().result.unwrap();
    assert_eq!(result["output"], "ok");
    let _ = std::fs::remove_dir_all(&work);
}

#[tokio::test]
async fn a_replayed_codex_run_reaches_the_server() {
    let mock = empty_head();
    let task = add_task(&mock);
    let agent = CommandAgent::new(script("replay.sh"))
        .interpreter(multica_worker::agents::Codex)
        .env("REPLAY", script("codex-exec-json.jsonl"));
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();

    assert_eq!((summary.completed, summary.failed), (1, 0));
    assert_eq!(
        kinds(&mock, &task),
        [
            pair("thinking", ""),
            pair("tool_use", "exec_command"),
            pair("tool_result", "exec_command"),
            pair("tool_use", "patch_apply"),
            pair("tool_result", "patch_apply"),
            pair("tool_use", "issue_comment"),
            pair("tool_result", "issue_comment"),
            pair("text", "")
        ]
    );
    let result = mock.task(&task).unwrap().result.unwrap();
    assert_eq!(result["output"], "The range end is inclusive now; `cargo test` passes.");
    assert_eq!(result["session_id"], "019a2d7a-41c4-78b1-b7cc-a45d62a89cd5");
    let usage = mock.task_usage(&task);
    assert_eq!(usage.len(), 1, "{usage:?}");
    // No model on the task's agent: Codex's stream names none.
    assert_eq!((usage[0].model.as_str(), usage[0].input_tokens, usage[0].cache_read_tokens), ("unknown", 315, 24448));
}

#[tokio::test]
async fn a_claude_code_provider_error_is_classified_by_the_server_as_the_go_daemons_text_is() {
    let mock = empty_head();
    let task = add_task(&mock);
    let recording = std::env::temp_dir().join(format!("multica-claude-provider-error-{}.jsonl", std::process::id()));
    std::fs::write(
        &recording,
        concat!(
            r#"{"type":"system","subtype":"init","session_id":"sess-cut"}"#,
            "\n",
            r#"{"type":"result","subtype":"error","is_error":true,"session_id":"sess-cut","result":"API Error: Connection closed mid-response"}"#,
            "\n"
        ),
    )
    .unwrap();
    let agent = CommandAgent::new(script("replay.sh")).interpreter(ClaudeCode).env("REPLAY", &recording);
    let summary =
        Worker::new(api(&mock), registration(), agent).config(fast()).run(std::future::pending()).await.unwrap();
    let _ = std::fs::remove_file(&recording);
    // Retryable: the server queued a second attempt, which failed the same way.
    assert_eq!(summary.failed, 2);
    let record = mock.task(&task).unwrap();
    assert_eq!(record.error.as_deref(), Some("API Error: Connection closed mid-response"));
    // The session goes with it for the retry to resume.
    assert_eq!(record.failure_reason.as_str(), "agent_error.provider_network");
    let state = mock.snapshot().tasks.into_iter().find(|t| t.record.id == task).unwrap();
    assert_eq!(state.session_id, "sess-cut");
}
