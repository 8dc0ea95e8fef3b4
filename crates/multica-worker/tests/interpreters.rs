//! The ready interpreters on recorded outputs, no process: each line of a
//! transcript through the parser, then the exit.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use multica_api::{FailureReason, TaskCompletion, TaskFailure, TaskUsage};
use multica_worker::agents::{AcpParser, AcpResume, ClaudeCode, ClaudeParser, Codex, CodexParser};
use multica_worker::{AgentEvent, AgentOutcome, Interpreter, LineParser, ProcessExit, RunInput};
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/agents/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every line of `transcript` through `parser`: the events in order.
fn replay(parser: &mut dyn LineParser, transcript: &str) -> Vec<AgentEvent> {
    transcript.lines().flat_map(|line| parser.on_line(line)).collect()
}

fn exit(program: &str, code: i32, stderr: &str) -> ProcessExit {
    ProcessExit { program: program.to_owned(), status: Ok(ExitStatus::from_raw(code << 8)), stderr: stderr.to_owned() }
}

/// A failure with the session a retry may resume.
fn failed(error: &str, session: &str) -> AgentOutcome {
    AgentOutcome::Failed(TaskFailure { session_id: session.to_owned(), ..TaskFailure::new(error) })
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn stdin_json(event: &AgentEvent) -> Value {
    match event {
        AgentEvent::Stdin(bytes) => {
            assert_eq!(bytes.last(), Some(&b'\n'), "one line");
            serde_json::from_slice(bytes).unwrap()
        }
        other => panic!("not a stdin write: {other:?}"),
    }
}

const CLAUDE_SESSION: &str = "5b0f6e2a-93c1-4c1e-9d57-2f4e8b6a1c11";

#[test]
fn claude_sends_the_prompt_as_one_stream_json_user_message_and_keeps_stdin_open() {
    let mut parser = ClaudeParser::new("fix the range bug", String::new());
    let start = parser.start();
    assert_eq!(start.len(), 1, "{start:?}");
    assert_eq!(
        stdin_json(&start[0]),
        json!({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "fix the range bug"}]}})
    );
}

#[test]
fn claude_tool_use_run_maps_to_messages_usage_session_and_the_result() {
    let mut parser = ClaudeParser::new("fix it", String::new());
    let events = replay(&mut parser, &fixture("claude-code-2.1.220-tool-use.jsonl"));
    let expected = vec![
        AgentEvent::Session(CLAUDE_SESSION.to_owned()),
        AgentEvent::Thinking("The issue says the range parser drops the last element. Run the tests first.".into()),
        AgentEvent::Text("I'll run the test suite to see what fails.".into()),
        AgentEvent::ToolUse {
            tool: "Bash".into(),
            input: object(json!({"command": "cargo test", "description": "Run the test suite"})),
        },
        AgentEvent::ToolResult {
            tool: "Bash".into(),
            output: "error: running 12 tests\ntest range::tests::inclusive_end ... FAILED\ntest result: FAILED. 11 passed; 1 failed"
                .into(),
        },
        AgentEvent::ToolUse {
            tool: "Edit".into(),
            input: object(json!({
                "file_path": "/home/dev/work/demo/src/range.rs",
                "old_string": "start..end",
                "new_string": "start..=end"
            })),
        },
        AgentEvent::ToolResult {
            tool: "Edit".into(),
            output: "The file /home/dev/work/demo/src/range.rs has been updated.".into(),
        },
        AgentEvent::Text("Fixed the off-by-one in `range.rs`: the end is inclusive now, and all 12 tests pass.".into()),
        AgentEvent::Usage(TaskUsage {
            provider: "claude".into(),
            model: "claude-sonnet-4-5-20250929".into(),
            input_tokens: 12,
            output_tokens: 296,
            cache_read_tokens: 50380,
            cache_write_tokens: 6144,
            cost_usd_ticks: 426_280_500,
        }),
        AgentEvent::CloseStdin,
    ];
    assert_eq!(events, expected);
    let outcome = parser.finish(&exit("claude", 0, ""));
    assert_eq!(
        outcome,
        AgentOutcome::Completed(TaskCompletion {
            output: "Fixed the off-by-one in `range.rs`: the end is inclusive now, and all 12 tests pass.".into(),
            session_id: CLAUDE_SESSION.into(),
            ..TaskCompletion::default()
        })
    );
}

#[test]
fn claude_context_exhausted_fails_with_the_go_daemons_reason_even_though_is_error_says_so_too() {
    // Upstream's recording (server/pkg/agent/testdata): compaction failed,
    // the result is `is_error` with `terminal_reason: prompt_too_long`.
    let mut parser = ClaudeParser::new("go on", String::new());
    let events = replay(&mut parser, &fixture("claude-code-2.1.220-context-exhausted-resume.jsonl"));
    assert!(events.contains(&AgentEvent::Text("Prompt is too long".into())), "{events:?}");
    assert!(!events.iter().any(|event| matches!(event, AgentEvent::Usage(_))), "all-zero usage is no usage");
    let AgentOutcome::Failed(failure) = parser.finish(&exit("claude", 1, "")) else { panic!("completed") };
    assert_eq!(
        failure.error,
        "claude ended the turn with terminal_reason=prompt_too_long: the session's context window is exhausted and compaction could not recover it (Prompt is too long)"
    );
    // Not retried; the session goes with it (the server retires it).
    assert_eq!(failure.failure_reason, FailureReason::ContextOverflow);
    assert_eq!(failure.session_id, "7ff8bf88-4d29-47f6-8c54-87f7ec0b080b");
}

#[test]
fn claude_is_error_result_fails_with_its_text_and_the_stderr_tail() {
    let mut parser = ClaudeParser::new("go", String::new());
    replay(
        &mut parser,
        r#"{"type":"result","subtype":"success","is_error":true,"terminal_reason":"api_error","session_id":"sess-x","result":"API Error: 529 overloaded"}"#,
    );
    let outcome = parser.finish(&exit("claude", 1, "retrying in 8s"));
    assert_eq!(outcome, failed("API Error: 529 overloaded; claude stderr: retrying in 8s", "sess-x"));
}

#[test]
fn claude_without_a_result_line_fails_by_exit_status_or_missing_result() {
    let mut parser = ClaudeParser::new("go", String::new());
    replay(&mut parser, r#"{"type":"system","subtype":"init","session_id":"s1"}"#);
    let outcome = parser.finish(&exit("claude", 3, "V8 abort"));
    assert_eq!(outcome, failed("claude exited with error: exit status: 3; claude stderr: V8 abort", "s1"));

    let mut parser = ClaudeParser::new("go", String::new());
    replay(&mut parser, r#"{"type":"system","subtype":"init","session_id":"s1"}"#);
    assert_eq!(parser.finish(&exit("claude", 0, "")), failed("claude stream ended without terminal result", "s1"));
}

#[test]
fn claude_refused_resume_fails_without_a_session_to_resume_again() {
    // Claude answered with another session than the one asked for.
    let mut parser = ClaudeParser::new("go", String::new()).resuming(Some("sess-old"));
    replay(&mut parser, r#"{"type":"system","subtype":"init","session_id":"sess-new"}"#);
    assert_eq!(parser.finish(&exit("claude", 1, "")), failed("claude exited with error: exit status: 1", ""));
    // Claude's own wording, on stderr.
    let mut parser = ClaudeParser::new("go", String::new()).resuming(Some("sess-old"));
    let outcome = parser.finish(&exit("claude", 1, "No conversation found with session ID: sess-old"));
    let AgentOutcome::Failed(failure) = outcome else { panic!("completed") };
    assert_eq!(failure.session_id, "");
    // A failure of a resumed run that kept its session keeps it.
    let mut parser = ClaudeParser::new("go", String::new()).resuming(Some("sess-old"));
    replay(&mut parser, r#"{"type":"system","subtype":"init","session_id":"sess-old"}"#);
    assert_eq!(parser.finish(&exit("claude", 1, "")), failed("claude exited with error: exit status: 1", "sess-old"));
}

#[test]
fn claude_lines_that_are_not_json_are_kept_as_text_and_blank_ones_dropped() {
    let mut parser = ClaudeParser::new("go", String::new());
    let events = replay(
        &mut parser,
        "Warning: proxy settings ignored\n\n{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"te",
    );
    assert_eq!(
        events,
        [
            AgentEvent::Text("Warning: proxy settings ignored".into()),
            AgentEvent::Text("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"te".into())
        ]
    );
}

#[test]
fn claude_permission_requests_are_allowed_in_the_foreground() {
    let mut parser = ClaudeParser::new("go", String::new());
    let events = parser.on_line(
        r#"{"type":"control_request","request_id":"req-1","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{"command":"npm run dev","run_in_background":true}}}"#,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(
        stdin_json(&events[0]),
        json!({"type": "control_response", "response": {"subtype": "success", "request_id": "req-1",
            "response": {"behavior": "allow", "updatedInput": {"command": "npm run dev", "run_in_background": false}}}})
    );
}

#[test]
fn claude_result_without_model_usage_reports_usage_for_the_model_asked_for() {
    let mut parser = ClaudeParser::new("go", "claude-opus-4-1".into());
    let events = parser.on_line(
        r#"{"type":"result","is_error":false,"session_id":"s","result":"ok","usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":11,"cache_creation_input_tokens":13}}"#,
    );
    let usage = TaskUsage {
        provider: "claude".into(),
        model: "claude-opus-4-1".into(),
        input_tokens: 5,
        output_tokens: 7,
        cache_read_tokens: 11,
        cache_write_tokens: 13,
        cost_usd_ticks: 0,
    };
    assert!(events.contains(&AgentEvent::Usage(usage)), "{events:?}");
}

const CODEX_THREAD: &str = "019a2d7a-41c4-78b1-b7cc-a45d62a89cd5";

#[test]
fn codex_sends_the_prompt_on_stdin_and_closes_it() {
    let mut parser = CodexParser::new("fix the range bug", String::new());
    assert_eq!(parser.start(), [AgentEvent::Stdin(b"fix the range bug".to_vec()), AgentEvent::CloseStdin]);
}

#[test]
fn codex_exec_json_run_maps_items_to_messages_and_the_turn_to_usage() {
    let mut parser = CodexParser::new("fix it", "gpt-5-codex".into());
    let events = replay(&mut parser, &fixture("codex-exec-json.jsonl"));
    let usage = TaskUsage {
        provider: "codex".into(),
        model: "gpt-5-codex".into(),
        input_tokens: 315,
        output_tokens: 122,
        cache_read_tokens: 24448,
        cache_write_tokens: 0,
        cost_usd_ticks: 0,
    };
    let expected = vec![
        AgentEvent::Session(CODEX_THREAD.into()),
        AgentEvent::Thinking("**Running the failing test first**".into()),
        AgentEvent::ToolUse {
            tool: "exec_command".into(),
            input: object(json!({"command": "bash -lc 'cargo test range'"})),
        },
        AgentEvent::ToolResult {
            tool: "exec_command".into(),
            output: "test range::tests::inclusive_end ... FAILED\n".into(),
        },
        AgentEvent::ToolUse {
            tool: "patch_apply".into(),
            input: object(json!({"changes": [{"path": "src/range.rs", "kind": "update"}]})),
        },
        AgentEvent::ToolResult { tool: "patch_apply".into(), output: "completed: update src/range.rs".into() },
        AgentEvent::ToolUse { tool: "issue_comment".into(), input: object(json!({"issue": "MUL-7", "body": "Fixed"})) },
        AgentEvent::ToolResult { tool: "issue_comment".into(), output: "completed".into() },
        AgentEvent::Text("The range end is inclusive now; `cargo test` passes.".into()),
        AgentEvent::Usage(usage),
    ];
    assert_eq!(events, expected);
    assert_eq!(
        parser.finish(&exit("codex", 0, "")),
        AgentOutcome::Completed(TaskCompletion {
            output: "The range end is inclusive now; `cargo test` passes.".into(),
            session_id: CODEX_THREAD.into(),
            ..TaskCompletion::default()
        })
    );
}

#[test]
fn codex_failed_turn_fails_with_its_message_and_the_stderr_tail() {
    let mut parser = CodexParser::new("fix it", String::new());
    let events = replay(&mut parser, &fixture("codex-exec-json-failed.jsonl"));
    assert!(events.contains(&AgentEvent::Error("Reconnecting... 1/5".into())), "{events:?}");
    assert_eq!(
        parser.finish(&exit("codex", 1, "ERROR: exceeded retry limit")),
        failed(
            "stream disconnected before completion: error sending request for url (https://api.openai.com/v1/responses); codex stderr: ERROR: exceeded retry limit",
            "019a2d7b-0000-7000-8000-000000000001"
        )
    );
}

#[test]
fn codex_usage_of_an_unnamed_model_is_unknowns_and_a_run_without_a_turn_fails() {
    let mut parser = CodexParser::new("go", String::new());
    let events = parser
        .on_line(r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":4,"output_tokens":3}}"#);
    let [AgentEvent::Usage(usage)] = events.as_slice() else { panic!("{events:?}") };
    assert_eq!((usage.model.as_str(), usage.input_tokens, usage.cache_read_tokens), ("unknown", 6, 4));

    let mut parser = CodexParser::new("go", String::new());
    replay(&mut parser, r#"{"type":"thread.started","thread_id":"t"}"#);
    assert_eq!(parser.finish(&exit("codex", 0, "")), failed("codex stream ended without turn.completed", "t"));
    assert_eq!(parser.finish(&exit("codex", 2, "")), failed("codex exited with error: exit status: 2", "t"));
}

const ACP_SESSION: &str = "sess_8f2c1e";

/// The JSON-RPC messages among `events` that go to the agent.
fn sent(events: &[AgentEvent]) -> Vec<Value> {
    events.iter().filter(|event| matches!(event, AgentEvent::Stdin(_))).map(stdin_json).collect()
}

#[test]
fn acp_initializes_opens_a_session_prompts_streams_and_ends_on_the_prompts_answer() {
    let mut parser = AcpParser::new("fix the range bug", "/work/demo");
    let start = sent(&parser.start());
    assert_eq!(
        start,
        [json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false},
            "clientInfo": {"name": "multica-rs", "version": env!("CARGO_PKG_VERSION")}}})]
    );
    let events = replay(&mut parser, &fixture("acp-prompt-turn.jsonl"));
    assert_eq!(
        sent(&events),
        [
            json!({"jsonrpc": "2.0", "id": 1, "method": "session/new", "params": {"cwd": "/work/demo", "mcpServers": []}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "session/prompt", "params": {"sessionId": ACP_SESSION,
                "prompt": [{"type": "text", "text": "fix the range bug"}]}}),
            // A single-use grant, not the permanent one offered first.
            json!({"jsonrpc": "2.0", "id": 0, "result": {"outcome": {"outcome": "selected", "optionId": "allow_once"}}}),
        ]
    );
    let told: Vec<AgentEvent> = events.into_iter().filter(|event| !matches!(event, AgentEvent::Stdin(_))).collect();
    let expected = vec![
        AgentEvent::Session(ACP_SESSION.into()),
        AgentEvent::Thinking("Check the failing test first.".into()),
        AgentEvent::TextDelta("Running the tests.".into()),
        AgentEvent::ToolUse { tool: "Run cargo test".into(), input: object(json!({"command": "cargo test"})) },
        AgentEvent::ToolResult { tool: "Run cargo test".into(), output: "test result: ok. 12 passed".into() },
        AgentEvent::ToolUse {
            tool: "Edit src/range.rs".into(),
            input: object(json!({"path": "src/range.rs", "old": "start..end", "new": "start..=end"})),
        },
        AgentEvent::ToolResult {
            tool: "Edit src/range.rs".into(),
            output: "--- src/range.rs\n+++ src/range.rs".into(),
        },
        AgentEvent::TextDelta("All 12 tests ".into()),
        AgentEvent::TextDelta("pass now.".into()),
        AgentEvent::Usage(TaskUsage {
            provider: String::new(),
            model: "kimi-k2-turbo".into(),
            input_tokens: 1200,
            output_tokens: 340,
            cache_read_tokens: 800,
            cache_write_tokens: 64,
            cost_usd_ticks: 0,
        }),
        AgentEvent::CloseStdin,
    ];
    assert_eq!(told, expected);
    assert_eq!(
        parser.finish(&exit("kimi", 0, "")),
        AgentOutcome::Completed(TaskCompletion {
            // The text after the last tool call.
            output: "All 12 tests pass now.".into(),
            session_id: ACP_SESSION.into(),
            ..TaskCompletion::default()
        })
    );
}

#[test]
fn acp_continues_the_prior_session_by_load_or_resume() {
    for (method, name) in [(AcpResume::Load, "session/load"), (AcpResume::Resume, "session/resume")] {
        let mut parser = AcpParser::new("go on", ".").resume(Some(("sess_old".into(), method)));
        parser.start();
        let events = parser.on_line(r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":1}}"#);
        assert_eq!(
            sent(&events),
            [
                json!({"jsonrpc": "2.0", "id": 1, "method": name, "params": {"sessionId": "sess_old", "cwd": ".", "mcpServers": []}})
            ]
        );
        // `session/load` answers null: the session is the one asked for.
        let events = parser.on_line(r#"{"jsonrpc":"2.0","id":1,"result":null}"#);
        assert_eq!(events[0], AgentEvent::Session("sess_old".into()));
        assert_eq!(sent(&events)[0]["method"], "session/prompt");
    }
}

#[test]
fn acp_rpc_error_fails_with_the_go_daemons_wording() {
    let mut parser = AcpParser::new("go", ".");
    parser.start();
    parser.on_line(r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":1}}"#);
    let events = parser.on_line(
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error","data":{"details":"No LLM provider configured"}}}"#,
    );
    assert_eq!(events, [AgentEvent::CloseStdin]);
    assert_eq!(
        parser.finish(&exit("hermes", 0, "")),
        failed(
            r#"hermes session/new failed: session/new: Internal error (code=-32603, data={"details":"No LLM provider configured"})"#,
            ""
        )
    );
}

#[test]
fn acp_cancel_is_the_protocols_cancel_and_the_cancelled_answer_ends_the_run() {
    let mut parser = AcpParser::new("go", ".");
    assert_eq!(parser.on_cancel(), [], "nothing to cancel before the prompt: signals do it");
    parser.start();
    replay(
        &mut parser,
        "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"sessionId\":\"s9\"}}",
    );
    assert_eq!(
        sent(&parser.on_cancel()),
        [json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "s9"}})]
    );
    let events = parser.on_line(r#"{"jsonrpc":"2.0","id":2,"result":{"stopReason":"cancelled"}}"#);
    assert_eq!(events, [AgentEvent::CloseStdin]);
    assert_eq!(parser.finish(&exit("kiro-cli", 0, "")), failed("kiro-cli cancelled the prompt", "s9"));
}

#[test]
fn acp_unknown_agent_requests_get_method_not_found_and_exit_before_the_answer_fails() {
    let mut parser = AcpParser::new("go", ".");
    parser.start();
    let events =
        parser.on_line(r#"{"jsonrpc":"2.0","id":"r1","method":"fs/read_text_file","params":{"path":"/etc/passwd"}}"#);
    assert_eq!(
        sent(&events),
        [
            json!({"jsonrpc": "2.0", "id": "r1", "error": {"code": -32601, "message": "method not found: fs/read_text_file"}})
        ]
    );
    assert_eq!(
        parser.finish(&exit("kimi", 1, "panic")),
        failed("kimi exited with error: exit status: 1; kimi stderr: panic", "")
    );
}

#[test]
fn claude_run_that_left_a_tool_in_the_background_fails_as_the_go_daemon_fails_it() {
    let mut parser = ClaudeParser::new("go", String::new());
    replay(
        &mut parser,
        concat!(
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"started","status":"async_launched"}]}]}}"#,
            "\n",
            r#"{"type":"result","is_error":false,"session_id":"s","result":"parent turn completed early"}"#
        ),
    );
    let AgentOutcome::Failed(failure) = parser.finish(&exit("claude", 0, "")) else { panic!("completed") };
    assert!(failure.error.contains("async background task"), "{failure:?}");
}

fn task_with_agent(model: &str, thinking: &str, custom_args: &[&str]) -> multica_api::Task {
    let mut agent = multica_api::TaskAgent::default();
    agent.model = model.into();
    agent.thinking_level = thinking.into();
    agent.custom_args = custom_args.iter().map(|arg| (*arg).to_owned()).collect();
    let mut task = multica_api::Task::default();
    task.agent = Some(agent);
    task
}

fn args_of(interpreter: &dyn Interpreter, task: &multica_api::Task, resume: Option<&str>) -> Vec<String> {
    let run = RunInput { task, prompt: "p", resume_session: resume, work_dir: None };
    interpreter.args(&run).into_iter().map(|arg| arg.into_string().unwrap()).collect()
}

#[test]
fn claude_is_invoked_as_the_go_daemon_invokes_it_and_custom_args_cannot_break_the_protocol() {
    let task = task_with_agent(
        "claude-opus-4-1",
        "high",
        &["--output-format", "text", "--add-dir='/srv/shared'", "-p", "--effort=low", "--verbose"],
    );
    assert_eq!(
        args_of(&ClaudeCode, &task, Some("sess-1")),
        [
            "-p",
            "--output-format",
            "stream-json",
            "--input-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
            "--disallowedTools",
            "AskUserQuestion",
            "--model",
            "claude-opus-4-1",
            "--effort",
            "high",
            "--resume",
            "sess-1",
            "--add-dir=/srv/shared",
            "--verbose"
        ]
    );
    assert_eq!(ClaudeCode.skills_dir(), ".claude/skills");
    assert!(ClaudeCode.env_remove().contains(&"CLAUDECODE"));
}

#[test]
fn codex_is_invoked_with_exec_json_custom_args_then_resume() {
    let task = task_with_agent("gpt-5-codex", "", &["--json", "-c", "model_reasoning_effort=\"high\""]);
    assert_eq!(
        args_of(&Codex, &task, Some("019a")),
        [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--sandbox",
            "danger-full-access",
            "--model",
            "gpt-5-codex",
            "-c",
            "model_reasoning_effort=\"high\"",
            "resume",
            "019a"
        ]
    );
}

#[test]
fn codex_todo_list_is_progress() {
    let mut parser = CodexParser::new("go", String::new());
    let events = parser.on_line(
        r#"{"type":"item.updated","item":{"id":"item_5","type":"todo_list","items":[{"text":"Run tests","completed":true},{"text":"Fix range","completed":false},{"text":"Open PR","completed":false}]}}"#,
    );
    assert_eq!(events, [AgentEvent::Progress(multica_api::TaskProgress::new("Fix range", 1, 3))]);
}
