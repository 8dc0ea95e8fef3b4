//! Claude Code in `--output-format stream-json`.

use std::collections::HashMap;
use std::ffi::OsString;

use multica_api::{FailureReason, TaskCompletion, TaskFailure, TaskUsage};
use serde_json::{json, Value};

use super::{int_field, str_field};
use crate::agent::AgentOutcome;
use crate::command::{AgentEvent, Interpreter, LineParser, ProcessExit, RunInput};

/// Claude Code (`claude`), run as the Go daemon runs it: `-p
/// --output-format stream-json --input-format stream-json --verbose
/// --permission-mode bypassPermissions --disallowedTools AskUserQuestion`,
/// then `--model <agent's model>`, `--effort <agent's thinking level>` and
/// `--resume <prior session>` when the task has them, then the agent's
/// `custom_args` (without the flags above); the prompt goes in as one stream-json user message on
/// stdin, kept open for the CLI's permission requests (each allowed, as the
/// Go daemon does) until the `result` line. Markers of an enclosing Claude
/// Code session (`CLAUDECODE`, `CLAUDE_CODE_SESSION_ID`…) are not passed on.
///
/// Its lines become text, thinking, tool calls (name and input) and tool
/// results (output; an `is_error` result prefixed with `error: `); the
/// session ID is reported as soon as the `system` line names it. The
/// `result` line gives the output (or the last assistant text when it is
/// empty), the session, and usage per model (input, output, cache read,
/// cache creation, and cost) from its `modelUsage`, or its `usage` for the
/// model of the run. It fails the task, with the Go daemon's reasons, on
/// `terminal_reason: prompt_too_long` (the context is exhausted, reason
/// `agent_error.context_overflow`), on
/// `is_error` (the result's text: a provider's error), on a non-zero exit
/// (`claude exited with error: exit status 1`), when no result came
/// (`claude stream ended without terminal result`) or when a tool was left
/// running in the background, with the stderr tail; the session goes with
/// the failure unless the run's `--resume` was refused.
///
/// ```
/// # mod multica { pub mod worker { pub use multica_worker::*; } }
/// use multica::worker::CommandAgent;
/// use multica::worker::agents::ClaudeCode;
///
/// let agent = CommandAgent::new("claude").interpreter(ClaudeCode);
/// // The same, shorter:
/// let agent = CommandAgent::claude_code();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ClaudeCode;

/// The program's name in messages and the usage rows' provider.
const PROVIDER: &str = "claude";

impl Interpreter for ClaudeCode {
    fn args(&self, run: &RunInput<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "-p",
            "--output-format",
            "stream-json",
            "--input-format",
            "stream-json",
            "--verbose",
            "--permission-mode",
            "bypassPermissions",
            // No one can answer Claude's interactive question tool here.
            "--disallowedTools",
            "AskUserQuestion",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let agent = run.task.agent.as_ref();
        if let Some(model) = agent.map(|agent| agent.model.trim()).filter(|model| !model.is_empty()) {
            args.extend(["--model".into(), model.into()]);
        }
        if let Some(effort) = agent.map(|agent| agent.thinking_level.trim()).filter(|level| !level.is_empty()) {
            args.extend(["--effort".into(), effort.into()]);
        }
        if let Some(session) = run.resume_session {
            args.extend(["--resume".into(), session.into()]);
        }
        args.extend(super::custom_args(run, BLOCKED));
        args
    }

    fn env_remove(&self) -> &'static [&'static str] {
        &[
            "CLAUDECODE",
            "CLAUDE_CODE_ENTRYPOINT",
            "CLAUDE_CODE_EXECPATH",
            "CLAUDE_CODE_SESSION_ID",
            "CLAUDE_CODE_SSE_PORT",
        ]
    }

    /// Claude Code discovers project skills in `.claude/skills`.
    fn skills_dir(&self) -> &'static str {
        ".claude/skills"
    }

    fn parser(&self, run: &RunInput<'_>) -> Box<dyn LineParser> {
        let model = run.task.agent.as_ref().map(|agent| agent.model.trim().to_owned()).unwrap_or_default();
        Box::new(ClaudeParser::new(run.prompt, model).resuming(run.resume_session))
    }
}

/// The parser of one Claude Code run: feed it stream-json lines.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    prompt: String,
    /// The session asked for with `--resume`.
    resume: Option<String>,
    /// The model asked for, for a result that names none.
    model: String,
    session: String,
    tools: HashMap<String, String>,
    last_assistant_text: String,
    result: Option<ResultLine>,
    /// A tool went on in the background, past the end of the turn.
    async_launch: bool,
}

#[derive(Debug, Default)]
struct ResultLine {
    text: String,
    is_error: bool,
    terminal_reason: String,
}

impl ClaudeParser {
    /// A parser that sends `prompt` and reports usage of `model` when the
    /// result does not say which model it was.
    pub fn new(prompt: &str, model: String) -> Self {
        Self { prompt: prompt.to_owned(), model, ..Self::default() }
    }

    /// The same parser for a run that resumes `session`.
    pub fn resuming(mut self, session: Option<&str>) -> Self {
        self.resume = session.map(str::to_owned);
        self
    }

    /// Whether a failed run's `--resume` was itself refused (the Go
    /// daemon's evidence: Claude's wording, or another session answered);
    /// then the session must not be resumed again.
    fn resume_rejected(&self, error: &str) -> bool {
        let Some(asked) = &self.resume else { return false };
        let error = error.to_lowercase();
        RESUME_REJECTED.iter().any(|phrase| error.contains(phrase))
            || (!self.session.is_empty() && self.session != *asked)
    }

    fn assistant(&mut self, message: &Value, events: &mut Vec<AgentEvent>) {
        let Some(blocks) = message.get("content").and_then(Value::as_array) else {
            // Unreadable: an earlier answer must not stand in for this turn.
            self.last_assistant_text.clear();
            return;
        };
        let mut text = String::new();
        let mut tool_uses = 0;
        let mut understood = true;
        for block in blocks {
            match str_field(block, "type") {
                "text" => {
                    let piece = str_field(block, "text");
                    if !piece.is_empty() {
                        text.push_str(piece);
                        events.push(AgentEvent::Text(piece.to_owned()));
                    }
                }
                "thinking" => {
                    let thought = [str_field(block, "thinking"), str_field(block, "text")].concat();
                    if !thought.is_empty() {
                        events.push(AgentEvent::Thinking(thought));
                    }
                }
                "redacted_thinking" => {}
                "tool_use" => {
                    tool_uses += 1;
                    let name = str_field(block, "name").to_owned();
                    self.tools.insert(str_field(block, "id").to_owned(), name.clone());
                    let input = block.get("input").and_then(Value::as_object).cloned().unwrap_or_default();
                    events.push(AgentEvent::ToolUse { tool: name, input });
                }
                _ => understood = false,
            }
        }
        // A turn that calls a tool is not the answer; a silent one
        // (thinking only) leaves the earlier answer standing.
        if tool_uses > 0 || !understood {
            self.last_assistant_text.clear();
        } else if !text.is_empty() {
            self.last_assistant_text = text;
        }
    }

    fn user(&mut self, message: &Value, events: &mut Vec<AgentEvent>) {
        let Some(blocks) = message.get("content").and_then(Value::as_array) else { return };
        for block in blocks.iter().filter(|block| str_field(block, "type") == "tool_result") {
            let tool = self.tools.get(str_field(block, "tool_use_id")).cloned().unwrap_or_default();
            let content = block.get("content").unwrap_or(&Value::Null);
            self.async_launch |= has_async_launch(content);
            let mut output = content_text(content);
            if block.get("is_error").and_then(Value::as_bool) == Some(true) {
                output.insert_str(0, "error: ");
            }
            events.push(AgentEvent::ToolResult { tool, output });
        }
    }

    fn result(&mut self, line: &Value, events: &mut Vec<AgentEvent>) {
        self.result = Some(ResultLine {
            text: str_field(line, "result").to_owned(),
            is_error: line.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            terminal_reason: str_field(line, "terminal_reason").trim().to_owned(),
        });
        self.session_from(line, events);
        events.extend(self.result_usage(line).into_iter().map(AgentEvent::Usage));
        // The turn is over: nothing more to answer.
        events.push(AgentEvent::CloseStdin);
    }

    fn session_from(&mut self, line: &Value, events: &mut Vec<AgentEvent>) {
        let session = str_field(line, "session_id");
        if !session.is_empty() && session != self.session {
            self.session = session.to_owned();
            events.push(AgentEvent::Session(self.session.clone()));
        }
    }

    /// Usage per model: `modelUsage` when it has any, else `usage` for the
    /// model of the run.
    fn result_usage(&self, line: &Value) -> Vec<TaskUsage> {
        let per_model: Vec<TaskUsage> = line
            .get("modelUsage")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(model, _)| !model.is_empty())
            .filter_map(|(model, usage)| {
                let cost = usage.get("costUSD").and_then(Value::as_f64).unwrap_or(0.0);
                let row = TaskUsage {
                    provider: PROVIDER.to_owned(),
                    model: model.clone(),
                    input_tokens: int_field(usage, "inputTokens"),
                    output_tokens: int_field(usage, "outputTokens"),
                    cache_read_tokens: int_field(usage, "cacheReadInputTokens"),
                    cache_write_tokens: int_field(usage, "cacheCreationInputTokens"),
                    cost_usd_ticks: usd_ticks(cost),
                };
                has_tokens(&row).then_some(row)
            })
            .collect();
        if !per_model.is_empty() {
            return per_model;
        }
        let model = [str_field(line, "model"), &self.model].into_iter().find(|m| !m.is_empty()).unwrap_or_default();
        let Some(usage) = line.get("usage").filter(|_| !model.is_empty()) else { return Vec::new() };
        let row = TaskUsage {
            provider: PROVIDER.to_owned(),
            model: model.to_owned(),
            input_tokens: int_field(usage, "input_tokens"),
            output_tokens: int_field(usage, "output_tokens"),
            cache_read_tokens: int_field(usage, "cache_read_input_tokens"),
            cache_write_tokens: int_field(usage, "cache_creation_input_tokens"),
            cost_usd_ticks: 0,
        };
        if has_tokens(&row) {
            vec![row]
        } else {
            Vec::new()
        }
    }

    /// Claude asks before a tool runs: allowed, with a background run made a
    /// foreground one (a task must not end with work still running).
    fn control_request(line: &Value, events: &mut Vec<AgentEvent>) {
        let request = line.get("request").cloned().unwrap_or(Value::Null);
        let mut input = request.get("input").and_then(Value::as_object).cloned().unwrap_or_default();
        if input.get("run_in_background").and_then(Value::as_bool) == Some(true) {
            input.insert("run_in_background".into(), Value::Bool(false));
        }
        let response = json!({
            "type": "control_response",
            "response": {
                "subtype": "success",
                "request_id": line.get("request_id").cloned().unwrap_or(Value::Null),
                "response": {"behavior": "allow", "updatedInput": input},
            },
        });
        events.push(AgentEvent::stdin_line(response.to_string()));
    }
}

impl LineParser for ClaudeParser {
    fn start(&mut self) -> Vec<AgentEvent> {
        let message = json!({
            "type": "user",
            "message": {"role": "user", "content": [{"type": "text", "text": self.prompt}]},
        });
        vec![AgentEvent::stdin_line(message.to_string())]
    }

    fn on_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let value = match super::json_line(line) {
            Ok(value) => value,
            Err(events) => return events,
        };
        let mut events = Vec::new();
        match str_field(&value, "type") {
            "system" => self.session_from(&value, &mut events),
            "assistant" => self.assistant(value.get("message").unwrap_or(&Value::Null), &mut events),
            "user" => self.user(value.get("message").unwrap_or(&Value::Null), &mut events),
            "result" => self.result(&value, &mut events),
            "control_request" => Self::control_request(&value, &mut events),
            _ => {}
        }
        events
    }

    fn finish(&mut self, exit: &ProcessExit) -> AgentOutcome {
        let result = self.result.take();
        let context_exhausted = result.as_ref().is_some_and(|result| result.terminal_reason == PROMPT_TOO_LONG);
        let failure = match &result {
            Some(result) if result.terminal_reason == PROMPT_TOO_LONG => {
                let mut reason = format!(
                    "claude ended the turn with terminal_reason={PROMPT_TOO_LONG}: the session's context window is exhausted and compaction could not recover it"
                );
                if !result.text.trim().is_empty() {
                    reason.push_str(&format!(" ({})", result.text.trim()));
                }
                Some(reason)
            }
            Some(result) if result.is_error => Some(if result.text.is_empty() {
                "claude returned an error result without details".to_owned()
            } else {
                result.text.clone()
            }),
            _ if !exit.success() => Some(match &exit.status {
                Ok(status) => format!("claude exited with error: {status}"),
                Err(err) => format!("claude exited with error: {err}"),
            }),
            None => Some("claude stream ended without terminal result".to_owned()),
            Some(_) if self.async_launch => Some(
                "claude launched an async background task; Multica-managed runs require foreground execution"
                    .to_owned(),
            ),
            Some(_) => None,
        };
        match (failure, result) {
            (Some(mut error), _) => {
                exit.append_stderr(&mut error);
                let session = if self.resume_rejected(&error) { "" } else { self.session.as_str() };
                let mut failure = TaskFailure { session_id: session.to_owned(), ..TaskFailure::new(error) };
                if context_exhausted {
                    // Never retried, and the session is not resumed again.
                    failure = failure.with_reason(FailureReason::ContextOverflow);
                }
                AgentOutcome::Failed(failure)
            }
            (None, result) => {
                let text = result.map(|result| result.text).unwrap_or_default();
                let output = if text.is_empty() { std::mem::take(&mut self.last_assistant_text) } else { text };
                AgentOutcome::Completed(TaskCompletion {
                    output,
                    session_id: self.session.clone(),
                    ..TaskCompletion::default()
                })
            }
        }
    }
}

/// The flags this interpreter sets, which the agent's `custom_args` may not.
const BLOCKED: &[super::Blocked] = &[
    super::blocked("-p", false),
    super::blocked("--print", false),
    super::blocked("--output-format", true),
    super::blocked("--input-format", true),
    super::blocked("--permission-mode", true),
    super::blocked("--mcp-config", true),
    super::blocked("--effort", true),
];

/// What Claude says when the session to resume is gone or not this
/// account's (the Go daemon's list).
const RESUME_REJECTED: &[&str] = &[
    "no conversation found",
    "no saved session found",
    "已绑定另外",
    "bound to another account",
    "bound to a different account",
];

/// Claude Code's `terminal_reason` for a context window that is full.
const PROMPT_TOO_LONG: &str = "prompt_too_long";

fn has_tokens(row: &TaskUsage) -> bool {
    row.input_tokens > 0 || row.output_tokens > 0 || row.cache_read_tokens > 0 || row.cache_write_tokens > 0
}

/// Dollars in ticks of 1e-10 USD, the server's unit.
fn usd_ticks(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        // Saturates on absurd values: `as` from f64 clamps.
        (usd * 1e10).round() as i64
    } else {
        0
    }
}

/// Whether a tool result says its work goes on in the background
/// (`"status": "async_launched"`, itself or in one of its blocks).
fn has_async_launch(content: &Value) -> bool {
    let launched = |value: &Value| str_field(value, "status") == "async_launched";
    match content {
        Value::Object(_) => {
            launched(content)
                || content.get("content").and_then(Value::as_array).is_some_and(|b| b.iter().any(launched))
        }
        Value::Array(blocks) => blocks.iter().any(launched),
        // A string may hold the JSON.
        Value::String(text) => {
            serde_json::from_str::<Value>(text).is_ok_and(|value| !value.is_string() && has_async_launch(&value))
        }
        _ => false,
    }
}

/// A tool result's content as text: a string, or the text of its blocks,
/// or else its JSON.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) if blocks.iter().all(|block| block.get("text").is_some()) => {
            blocks.iter().map(|block| str_field(block, "text")).collect::<Vec<_>>().join("\n")
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
