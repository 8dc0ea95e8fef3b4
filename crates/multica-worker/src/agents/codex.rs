//! Codex in `codex exec --json`.

use std::ffi::OsString;

use multica_api::{TaskCompletion, TaskFailure, TaskProgress, TaskUsage};
use serde_json::{json, Map, Value};

use super::{int_field, str_field};
use crate::agent::AgentOutcome;
use crate::command::{AgentEvent, Interpreter, LineParser, ProcessExit, RunInput};

/// Codex (`codex`) in `exec --json`, its JSONL event stream: `exec --json
/// --skip-git-repo-check --sandbox danger-full-access` (the sandbox the Go
/// daemon configures on Linux, approvals never asked in `exec`), then
/// `--model <agent's model>`, the agent's `custom_args` (without those
/// flags) and `resume <prior session>` when the task has them; the prompt goes in on stdin, which is then closed (as Codex's own
/// SDK does). The Go daemon drives Codex's `app-server` instead; the events
/// are mapped the same way.
///
/// A command run is a tool call `exec_command` (`command`) and its result
/// (the aggregated output); a file change is `patch_apply` (`changes`) and
/// its status; an MCP tool call is the tool's name with its arguments and
/// status; a web search is `web_search`; the to-do list is progress (done
/// of all, the next item as the summary); agent messages are text (the last
/// one is the output), reasoning is thinking, an error item or event is an
/// error message. `thread.started` gives the session (pinned at once);
/// each `turn.completed` adds its usage (input less the cached part, as the
/// Go daemon counts it, output, cache read) under the agent's model, or
/// `unknown` when the task names none. `turn.failed` fails the task with
/// its message; so does a non-zero exit (`codex exited with error: …`) or a
/// stream with no completed turn.
#[derive(Clone, Copy, Debug, Default)]
pub struct Codex;

const PROVIDER: &str = "codex";

impl Interpreter for Codex {
    fn args(&self, run: &RunInput<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["exec", "--json", "--skip-git-repo-check", "--sandbox", "danger-full-access"]
            .into_iter()
            .map(OsString::from)
            .collect();
        if let Some(model) = agent_model(run) {
            args.extend(["--model".into(), model.into()]);
        }
        args.extend(super::custom_args(run, BLOCKED));
        if let Some(session) = run.resume_session {
            args.extend(["resume".into(), session.into()]);
        }
        args
    }

    /// Codex discovers repository skills in `.agents/skills`.
    fn skills_dir(&self) -> &'static str {
        ".agents/skills"
    }

    fn parser(&self, run: &RunInput<'_>) -> Box<dyn LineParser> {
        Box::new(CodexParser::new(run.prompt, agent_model(run).unwrap_or_default().to_owned()))
    }
}

/// The flags this interpreter sets, which the agent's `custom_args` may not.
const BLOCKED: &[super::Blocked] =
    &[super::blocked("--json", false), super::blocked("--sandbox", true), super::blocked("--model", true)];

fn agent_model<'a>(run: &RunInput<'a>) -> Option<&'a str> {
    run.task.agent.as_ref().map(|agent| agent.model.trim()).filter(|model| !model.is_empty())
}

/// The parser of one `codex exec --json` run.
#[derive(Debug, Default)]
pub struct CodexParser {
    prompt: String,
    model: String,
    thread: String,
    last_message: String,
    usage: Option<TaskUsage>,
    turn_completed: bool,
    failure: Option<String>,
}

impl CodexParser {
    /// A parser that sends `prompt` and reports usage under `model`
    /// (`unknown` when empty: the stream does not name it).
    pub fn new(prompt: &str, model: String) -> Self {
        Self { prompt: prompt.to_owned(), model, ..Self::default() }
    }

    fn item(&mut self, started: bool, item: &Value, events: &mut Vec<AgentEvent>) {
        let status = str_field(item, "status");
        match (str_field(item, "type"), started) {
            ("command_execution", true) => {
                let input = object(json!({"command": str_field(item, "command")}));
                events.push(AgentEvent::ToolUse { tool: "exec_command".into(), input });
            }
            ("command_execution", false) => {
                let output = str_field(item, "aggregated_output").to_owned();
                events.push(AgentEvent::ToolResult { tool: "exec_command".into(), output });
            }
            // Emitted only once the patch is applied (or not).
            ("file_change", false) => {
                let changes = item.get("changes").cloned().unwrap_or(Value::Array(Vec::new()));
                let summary: Vec<String> = changes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|change| format!("{} {}", str_field(change, "kind"), str_field(change, "path")))
                    .collect();
                let input = object(json!({ "changes": changes }));
                events.push(AgentEvent::ToolUse { tool: "patch_apply".into(), input });
                let output = format!("{}: {}", or(status, "completed"), summary.join(", "));
                events.push(AgentEvent::ToolResult { tool: "patch_apply".into(), output });
            }
            ("mcp_tool_call", true) => {
                let input = item.get("arguments").and_then(Value::as_object).cloned().unwrap_or_default();
                events.push(AgentEvent::ToolUse { tool: or(str_field(item, "tool"), "mcp_tool").into(), input });
            }
            ("mcp_tool_call", false) => {
                let error = item.get("error").map(|error| str_field(error, "message")).unwrap_or_default();
                let output =
                    if error.is_empty() { or(status, "completed").to_owned() } else { format!("failed: {error}") };
                events.push(AgentEvent::ToolResult { tool: or(str_field(item, "tool"), "mcp_tool").into(), output });
            }
            ("web_search", true) => {
                let input = object(json!({"query": str_field(item, "query")}));
                events.push(AgentEvent::ToolUse { tool: "web_search".into(), input });
            }
            ("web_search", false) => {
                let output = or(status, "completed").to_owned();
                events.push(AgentEvent::ToolResult { tool: "web_search".into(), output });
            }
            ("agent_message", false) => {
                let text = str_field(item, "text");
                if !text.is_empty() {
                    self.last_message = text.to_owned();
                    events.push(AgentEvent::Text(text.to_owned()));
                }
            }
            ("reasoning", false) => {
                let text = str_field(item, "text");
                if !text.is_empty() {
                    events.push(AgentEvent::Thinking(text.to_owned()));
                }
            }
            ("error", false) => events.push(AgentEvent::Error(str_field(item, "message").to_owned())),
            ("todo_list", _) => {
                let items = item.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                let done = items.iter().filter(|todo| todo.get("completed").and_then(Value::as_bool) == Some(true));
                let step = i64::try_from(done.count()).unwrap_or(i64::MAX);
                let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let next = items.iter().find(|todo| todo.get("completed").and_then(Value::as_bool) != Some(true));
                let summary = next.map_or("done", |todo| str_field(todo, "text")).to_owned();
                if total > 0 {
                    events.push(AgentEvent::Progress(TaskProgress::new(summary, step, total)));
                }
            }
            _ => {}
        }
    }

    fn turn_completed(&mut self, usage: &Value, events: &mut Vec<AgentEvent>) {
        self.turn_completed = true;
        let cached = int_field(usage, "cached_input_tokens");
        let row = self.usage.get_or_insert_with(|| TaskUsage {
            provider: PROVIDER.to_owned(),
            model: or(&self.model, "unknown").to_owned(),
            ..TaskUsage::default()
        });
        // Codex counts cached input inside input_tokens.
        row.input_tokens += (int_field(usage, "input_tokens") - cached).max(0);
        row.output_tokens += int_field(usage, "output_tokens");
        row.cache_read_tokens += cached;
        events.push(AgentEvent::Usage(row.clone()));
    }
}

impl LineParser for CodexParser {
    fn start(&mut self) -> Vec<AgentEvent> {
        vec![AgentEvent::Stdin(self.prompt.clone().into_bytes()), AgentEvent::CloseStdin]
    }

    fn on_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let value = match super::json_line(line) {
            Ok(value) => value,
            Err(events) => return events,
        };
        let mut events = Vec::new();
        match str_field(&value, "type") {
            "thread.started" => {
                let thread = str_field(&value, "thread_id");
                if !thread.is_empty() && thread != self.thread {
                    self.thread = thread.to_owned();
                    events.push(AgentEvent::Session(self.thread.clone()));
                }
            }
            "item.started" => self.item(true, value.get("item").unwrap_or(&Value::Null), &mut events),
            "item.completed" => self.item(false, value.get("item").unwrap_or(&Value::Null), &mut events),
            "item.updated" => self.item(true, value.get("item").unwrap_or(&Value::Null), &mut events),
            "turn.completed" => self.turn_completed(value.get("usage").unwrap_or(&Value::Null), &mut events),
            "turn.failed" => {
                let message = value.get("error").map(|error| str_field(error, "message")).unwrap_or_default();
                self.failure = Some(or(message, "codex turn failed").to_owned());
            }
            "error" => events.push(AgentEvent::Error(str_field(&value, "message").to_owned())),
            _ => {}
        }
        events
    }

    fn finish(&mut self, exit: &ProcessExit) -> AgentOutcome {
        let failure = match (&self.failure, &exit.status) {
            (Some(failure), _) => Some(failure.clone()),
            (None, Ok(status)) if !status.success() => Some(format!("codex exited with error: {status}")),
            (None, Err(err)) => Some(format!("codex exited with error: {err}")),
            (None, Ok(_)) if !self.turn_completed => Some("codex stream ended without turn.completed".to_owned()),
            (None, Ok(_)) => None,
        };
        match failure {
            Some(mut error) => {
                exit.append_stderr(&mut error);
                AgentOutcome::Failed(TaskFailure { session_id: self.thread.clone(), ..TaskFailure::new(error) })
            }
            None => AgentOutcome::Completed(TaskCompletion {
                output: std::mem::take(&mut self.last_message),
                session_id: self.thread.clone(),
                ..TaskCompletion::default()
            }),
        }
    }
}

fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
