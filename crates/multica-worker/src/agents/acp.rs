//! Agents speaking the Agent Client Protocol: JSON-RPC 2.0 over stdio, one
//! message per line. A hand-written client over `serde_json`, as a pure
//! [`LineParser`]: the daemon needs five messages of the protocol, and the
//! `agent-client-protocol` crate is either `!Send` (its 0.x releases spawn
//! `LocalBoxFuture`s) or, from 1.x, a framework of its own (builders,
//! roles, a schema crate) far larger than those five messages.

use std::collections::HashMap;

use multica_api::{TaskCompletion, TaskFailure, TaskUsage};
use serde_json::{json, Map, Value};

use super::str_field;
use crate::agent::AgentOutcome;
use crate::command::{AgentEvent, Interpreter, LineParser, ProcessExit, RunInput};

/// How an ACP agent continues an earlier session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcpResume {
    /// `session/load`, the protocol's method (Kiro, Grok, Trae).
    #[default]
    Load,
    /// `session/resume` (Hermes, Kimi, Qoder).
    Resume,
}

/// An agent speaking the Agent Client Protocol (ACP) on stdio, driven as
/// the Go daemon drives Hermes, Kimi, Kiro and the others (the agent's
/// `custom_args` after the program's own arguments): `initialize`
/// (protocol version 1, no file system or terminal offered), then
/// `session/new` in the program's directory, or the prior session
/// continued ([`AcpResume`]), then one `session/prompt` with the task's
/// prompt; when it answers, stdin is closed and the agent exits.
///
/// Streamed `session/update`s become live messages: message chunks text,
/// thought chunks thinking, tool calls a tool use (its `rawInput`, once
/// known) and, when completed or failed, a tool result (`rawOutput` or the
/// text of its content); `usage_update`s and the prompt's `usage` give the
/// usage, under the session's current model (or the agent's, or
/// `unknown`). The agent's permission requests are answered as the Go
/// daemon does: a grant for this session or this once, else a reject of
/// this one action, never a permanent grant. On cancellation the prompt is
/// cancelled by the protocol (`session/cancel`) before the process is
/// signalled. The output is the text after the last tool call; a JSON-RPC
/// error fails the task (`<program> session/new failed: …`), as does an
/// exit before the prompt's answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Acp {
    resume: AcpResume,
}

impl Acp {
    /// An ACP interpreter continuing sessions with `session/load`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues sessions with `method`.
    pub fn resume_with(mut self, method: AcpResume) -> Self {
        self.resume = method;
        self
    }
}

impl Interpreter for Acp {
    fn args(&self, run: &RunInput<'_>) -> Vec<std::ffi::OsString> {
        super::custom_args(run, &[])
    }

    fn parser(&self, run: &RunInput<'_>) -> Box<dyn LineParser> {
        let cwd = run.work_dir.map_or_else(|| ".".to_owned(), |dir| dir.to_string_lossy().into_owned());
        let model = run.task.agent.as_ref().map(|agent| agent.model.trim().to_owned()).unwrap_or_default();
        let parser = AcpParser::new(run.prompt, &cwd)
            .model(model)
            .resume(run.resume_session.map(|session| (session.to_owned(), self.resume)));
        Box::new(parser)
    }
}

/// Where the conversation with the agent is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stage {
    #[default]
    Initializing,
    OpeningSession,
    Prompting,
    Done,
}

/// The client side of one ACP run.
#[derive(Debug, Default)]
pub struct AcpParser {
    prompt: String,
    cwd: String,
    model: String,
    resume: Option<(String, AcpResume)>,
    stage: Stage,
    next_id: u64,
    /// Methods of the requests awaiting an answer, by ID.
    pending: HashMap<u64, &'static str>,
    session: String,
    /// Thought chunks not yet sent, sent as one thinking message.
    thinking: String,
    /// Tool calls announced without their input yet.
    tools: HashMap<String, PendingTool>,
    /// The text since the last tool call: the answer.
    answer: String,
    usage: Usage,
    stop_reason: Option<String>,
    failure: Option<String>,
}

#[derive(Debug, Default)]
struct PendingTool {
    name: String,
    input: Option<Map<String, Value>>,
}

/// Each bucket the largest value seen: usage updates are cumulative.
#[derive(Debug, Default)]
struct Usage {
    input: i64,
    output: i64,
    cache_read: i64,
    cache_write: i64,
    seen: bool,
}

impl AcpParser {
    /// A client that prompts `prompt` in a session rooted at `cwd`.
    pub fn new(prompt: &str, cwd: &str) -> Self {
        Self { prompt: prompt.to_owned(), cwd: cwd.to_owned(), ..Self::default() }
    }

    /// The model to report usage under when the agent names none.
    pub fn model(mut self, model: String) -> Self {
        self.model = model;
        self
    }

    /// Continue `session` with the given method instead of a new session.
    pub fn resume(mut self, resume: Option<(String, AcpResume)>) -> Self {
        self.resume = resume;
        self
    }

    fn request(&mut self, method: &'static str, params: Value) -> AgentEvent {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, method);
        AgentEvent::stdin_line(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string())
    }

    fn on_response(&mut self, id: u64, message: &Value, events: &mut Vec<AgentEvent>) {
        let Some(method) = self.pending.remove(&id) else { return };
        if let Some(error) = message.get("error") {
            self.failure = Some(format!("{method} failed: {}", rpc_error(method, error)));
            self.stage = Stage::Done;
            events.push(AgentEvent::CloseStdin);
            return;
        }
        let result = message.get("result").unwrap_or(&Value::Null);
        match method {
            "initialize" => {
                self.stage = Stage::OpeningSession;
                let open = match &self.resume {
                    Some((session, AcpResume::Load)) => {
                        ("session/load", json!({"sessionId": session, "cwd": self.cwd, "mcpServers": []}))
                    }
                    Some((session, AcpResume::Resume)) => {
                        ("session/resume", json!({"sessionId": session, "cwd": self.cwd, "mcpServers": []}))
                    }
                    None => ("session/new", json!({"cwd": self.cwd, "mcpServers": []})),
                };
                events.push(self.request(open.0, open.1));
            }
            "session/new" | "session/load" | "session/resume" => {
                let answered = str_field(result, "sessionId");
                let session = match (&self.resume, answered.is_empty()) {
                    (_, false) => answered.to_owned(),
                    (Some((asked, _)), true) => asked.clone(),
                    (None, true) => {
                        self.failure = Some(format!("{method} returned no session ID"));
                        self.stage = Stage::Done;
                        events.push(AgentEvent::CloseStdin);
                        return;
                    }
                };
                let current = result.pointer("/models/currentModelId").and_then(Value::as_str).unwrap_or_default();
                if !current.is_empty() && self.model.is_empty() {
                    self.model = current.to_owned();
                }
                self.session = session.clone();
                events.push(AgentEvent::Session(session.clone()));
                self.stage = Stage::Prompting;
                // History a loaded session replays is not this turn's.
                self.answer.clear();
                let prompt = json!({"sessionId": session, "prompt": [{"type": "text", "text": self.prompt}]});
                events.push(self.request("session/prompt", prompt));
            }
            "session/prompt" => {
                self.flush_thinking(events);
                self.stop_reason = Some(str_field(result, "stopReason").to_owned());
                if let Some(usage) = result.get("usage").or_else(|| result.pointer("/_meta/usage")) {
                    self.usage.merge(usage);
                }
                self.stage = Stage::Done;
                events.push(AgentEvent::CloseStdin);
            }
            _ => {}
        }
    }

    fn on_update(&mut self, update: &Value, events: &mut Vec<AgentEvent>) {
        if self.stage != Stage::Prompting {
            return;
        }
        let kind = str_field(update, "sessionUpdate");
        if kind != "agent_thought_chunk" {
            self.flush_thinking(events);
        }
        match kind {
            "agent_message_chunk" => {
                let text = update.pointer("/content/text").and_then(Value::as_str).unwrap_or_default();
                if !text.is_empty() {
                    self.answer.push_str(text);
                    events.push(AgentEvent::TextDelta(text.to_owned()));
                }
            }
            "agent_thought_chunk" => {
                self.thinking.push_str(update.pointer("/content/text").and_then(Value::as_str).unwrap_or_default());
            }
            "tool_call" => {
                self.answer.clear();
                let id = str_field(update, "toolCallId").to_owned();
                let name = tool_name(update);
                match tool_input(update) {
                    Some(input) => {
                        events.push(AgentEvent::ToolUse { tool: name.clone(), input: input.clone() });
                        self.tools.insert(id.clone(), PendingTool { name, input: Some(input) });
                    }
                    None => {
                        self.tools.insert(id.clone(), PendingTool { name, input: None });
                    }
                }
                if matches!(str_field(update, "status"), "completed" | "failed") {
                    self.tool_done(&id, update, events);
                }
            }
            "tool_call_update" => {
                let id = str_field(update, "toolCallId").to_owned();
                if matches!(str_field(update, "status"), "completed" | "failed") {
                    self.tool_done(&id, update, events);
                }
            }
            "usage_update" => self.usage.merge(update.get("usage").unwrap_or(update)),
            _ => {}
        }
    }

    fn tool_done(&mut self, id: &str, update: &Value, events: &mut Vec<AgentEvent>) {
        let pending = self.tools.remove(id).unwrap_or_default();
        let name = if pending.name.is_empty() { tool_name(update) } else { pending.name };
        if pending.input.is_none() {
            let input = tool_input(update).unwrap_or_default();
            events.push(AgentEvent::ToolUse { tool: name.clone(), input });
        }
        let mut output = [update.get("rawOutput"), update.get("output")]
            .into_iter()
            .flatten()
            .map(raw_text)
            .find(|text| !text.is_empty())
            .unwrap_or_else(|| content_text(update.get("content")));
        if str_field(update, "status") == "failed" {
            output.insert_str(0, "error: ");
        }
        events.push(AgentEvent::ToolResult { tool: name, output });
    }

    fn flush_thinking(&mut self, events: &mut Vec<AgentEvent>) {
        if !self.thinking.is_empty() {
            events.push(AgentEvent::Thinking(std::mem::take(&mut self.thinking)));
        }
    }

    /// The agent asks the client: permissions are answered, anything else
    /// is a method this client does not offer.
    fn on_agent_request(id: &Value, method: &str, params: &Value, events: &mut Vec<AgentEvent>) {
        let answer = match (method, permission_option(params)) {
            ("session/request_permission", Some(option)) => {
                json!({"jsonrpc": "2.0", "id": id, "result": {"outcome": {"outcome": "selected", "optionId": option}}})
            }
            ("session/request_permission", None) => json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32603, "message": "no auto-selectable permission option offered"}}),
            _ => json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": format!("method not found: {method}")}}),
        };
        events.push(AgentEvent::stdin_line(answer.to_string()));
    }

    fn usage_row(&self) -> Option<TaskUsage> {
        self.usage.seen.then(|| TaskUsage {
            provider: String::new(),
            model: if self.model.is_empty() { "unknown".to_owned() } else { self.model.clone() },
            input_tokens: self.usage.input,
            output_tokens: self.usage.output,
            cache_read_tokens: self.usage.cache_read,
            cache_write_tokens: self.usage.cache_write,
            cost_usd_ticks: 0,
        })
    }
}

impl LineParser for AcpParser {
    fn start(&mut self) -> Vec<AgentEvent> {
        let params = json!({
            "protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false},
            "clientInfo": {"name": "multica-rs", "version": env!("CARGO_PKG_VERSION")},
        });
        vec![self.request("initialize", params)]
    }

    fn on_line(&mut self, line: &str) -> Vec<AgentEvent> {
        let message = match super::json_line(line) {
            Ok(value) => value,
            Err(events) => return events,
        };
        let mut events = Vec::new();
        let method = str_field(&message, "method");
        match (message.get("id"), method.is_empty()) {
            (Some(id), true) => {
                if let Some(id) = id.as_u64() {
                    self.on_response(id, &message, &mut events);
                }
            }
            (Some(id), false) => {
                Self::on_agent_request(id, method, message.get("params").unwrap_or(&Value::Null), &mut events);
            }
            (None, false) if method == "session/update" => {
                let update = message.pointer("/params/update").unwrap_or(&Value::Null);
                self.on_update(update, &mut events);
            }
            _ => {}
        }
        let before = events.len();
        if matches!(events.last(), Some(AgentEvent::CloseStdin)) {
            // Usage is known once the prompt is answered.
            if let Some(row) = self.usage_row() {
                events.insert(before - 1, AgentEvent::Usage(row));
            }
        }
        events
    }

    fn on_cancel(&mut self) -> Vec<AgentEvent> {
        if self.stage != Stage::Prompting {
            return Vec::new();
        }
        let cancel = json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": self.session}});
        vec![AgentEvent::stdin_line(cancel.to_string())]
    }

    fn finish(&mut self, exit: &ProcessExit) -> AgentOutcome {
        let program = &exit.program;
        let failure = match (&self.failure, self.stop_reason.as_deref()) {
            (Some(failure), _) => Some(format!("{program} {failure}")),
            (None, Some("cancelled")) => Some(format!("{program} cancelled the prompt")),
            (None, Some(_)) => None,
            (None, None) => Some(match &exit.status {
                Ok(status) if !status.success() => format!("{program} exited with error: {status}"),
                Err(err) => format!("{program} exited with error: {err}"),
                Ok(_) => format!("{program} exited before answering the prompt"),
            }),
        };
        match failure {
            Some(mut error) => {
                exit.append_stderr(&mut error);
                AgentOutcome::Failed(TaskFailure { session_id: self.session.clone(), ..TaskFailure::new(error) })
            }
            None => AgentOutcome::Completed(TaskCompletion {
                output: self.answer.trim().to_owned(),
                session_id: self.session.clone(),
                ..TaskCompletion::default()
            }),
        }
    }
}

impl Usage {
    /// Takes a usage object in ACP's camelCase or the snake_case some
    /// agents send; each bucket keeps its largest value.
    fn merge(&mut self, usage: &Value) {
        let read = |names: &[&str]| names.iter().find_map(|name| usage.get(*name).and_then(Value::as_i64));
        let buckets = [
            (&mut self.input, read(&["inputTokens", "input_tokens"])),
            (&mut self.output, read(&["outputTokens", "output_tokens"])),
            (&mut self.cache_read, read(&["cachedReadTokens", "cacheReadTokens", "cache_read_tokens"])),
            (&mut self.cache_write, read(&["cachedWriteTokens", "cacheWriteTokens", "cache_write_tokens"])),
        ];
        for (bucket, value) in buckets {
            if let Some(value) = value {
                *bucket = (*bucket).max(value);
                self.seen = true;
            }
        }
    }
}

/// The option to select: a grant for this session, else for this once,
/// else a reject of this one action (the Go daemon's order); never a
/// permanent grant.
fn permission_option(params: &Value) -> Option<String> {
    let options = params.get("options").and_then(Value::as_array)?;
    let option = |wanted: &dyn Fn(&str, &str) -> bool| {
        options
            .iter()
            .map(|option| (str_field(option, "optionId"), str_field(option, "kind").trim().to_lowercase()))
            .find(|(id, kind)| !id.is_empty() && wanted(id, kind))
            .map(|(id, _)| id.to_owned())
    };
    option(&|id, kind| {
        matches!(id, "allow_session" | "approve_for_session") && matches!(kind, "allow_once" | "allow_always")
    })
    .or_else(|| option(&|_, kind| kind == "allow_once"))
    .or_else(|| option(&|_, kind| kind == "reject_once"))
}

fn tool_name(update: &Value) -> String {
    ["name", "title", "kind"]
        .into_iter()
        .map(|field| str_field(update, field))
        .find(|name| !name.is_empty())
        .unwrap_or("tool")
        .to_owned()
}

fn tool_input(update: &Value) -> Option<Map<String, Value>> {
    ["rawInput", "input", "parameters"].into_iter().find_map(|field| update.get(field)?.as_object().cloned())
}

/// A JSON-RPC error as the Go daemon words it: `<method>: <message>
/// (code=<code>[, data=<data>])`.
fn rpc_error(method: &str, error: &Value) -> String {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = str_field(error, "message");
    match error.get("data").filter(|data| !data.is_null()) {
        Some(data) => format!("{method}: {message} (code={code}, data={})", raw_text(data)),
        None => format!("{method}: {message} (code={code})"),
    }
}

fn raw_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The text of a tool call's content blocks; a diff as its path.
fn content_text(content: Option<&Value>) -> String {
    let pieces =
        content.and_then(Value::as_array).into_iter().flatten().filter_map(|block| match str_field(block, "type") {
            "content" => block.pointer("/content/text").and_then(Value::as_str).map(str::to_owned),
            "diff" => Some(format!("--- {0}\n+++ {0}", str_field(block, "path"))),
            _ => None,
        });
    pieces.collect::<Vec<_>>().join("\n")
}
