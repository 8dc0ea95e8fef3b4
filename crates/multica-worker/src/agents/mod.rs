//! Ready [`Interpreter`](crate::Interpreter)s for real coding agents, each
//! with the invocation the Go daemon uses: [`ClaudeCode`] (stream-json),
//! [`Codex`] (`codex exec --json`) and [`Acp`] (the Agent Client Protocol,
//! JSON-RPC over stdio, spoken by Hermes, Kimi, Qoder, Grok and others).

mod acp;
mod claude;
mod codex;

pub use acp::{Acp, AcpParser, AcpResume};
pub use claude::{ClaudeCode, ClaudeParser};
pub use codex::{Codex, CodexParser};

use std::ffi::OsString;

use serde_json::Value;

use crate::{AgentEvent, CommandAgent, RunInput};

/// A stdout line of a JSON-lines CLI: `Ok(value)`, or the events it stands
/// for as it is (nothing for a blank line, a text message for a line that
/// is not JSON, so no line is lost).
pub(crate) fn json_line(line: &str) -> Result<Value, Vec<AgentEvent>> {
    let line = line.trim();
    if line.is_empty() {
        return Err(Vec::new());
    }
    serde_json::from_str(line).map_err(|_| vec![AgentEvent::Text(line.to_owned())])
}

/// A string field, empty when missing or not a string.
pub(crate) fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// An integer field, 0 when missing or not an integer.
pub(crate) fn int_field(value: &Value, name: &str) -> i64 {
    value.get(name).and_then(Value::as_i64).unwrap_or(0)
}

/// A flag the interpreter sets itself, which the agent's `custom_args` may
/// not override (it would break the protocol with the CLI).
pub(crate) struct Blocked {
    flag: &'static str,
    /// Whether the flag takes the next argument as its value.
    takes_value: bool,
}

pub(crate) const fn blocked(flag: &'static str, takes_value: bool) -> Blocked {
    Blocked { flag, takes_value }
}

/// The agent's `custom_args` without the blocked flags (and their values),
/// one layer of shell quotes taken off, as the Go daemon filters them.
pub(crate) fn custom_args(run: &RunInput<'_>, blocked: &[Blocked]) -> Vec<OsString> {
    let args = run.task.agent.as_ref().map(|agent| agent.custom_args.as_slice()).unwrap_or_default();
    let mut kept = Vec::new();
    let mut args = args.iter().map(|arg| unquote(arg));
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, _)) if arg.starts_with('-') => (flag, true),
            _ => (arg.as_str(), false),
        };
        match blocked.iter().find(|blocked| blocked.flag == flag) {
            Some(blocked) => {
                if blocked.takes_value && !inline_value {
                    args.next();
                }
            }
            None => kept.push(OsString::from(arg)),
        }
    }
    kept
}

/// `'value'` or `"value"` (also after `--flag=`) without its quotes: the
/// arguments are typed in a form as a shell would take them.
fn unquote(arg: &str) -> String {
    let strip = |text: &str| {
        let quoted = text.len() >= 2
            && ((text.starts_with('\'') && text.ends_with('\'')) || (text.starts_with('"') && text.ends_with('"')));
        quoted.then(|| text[1..text.len() - 1].to_owned())
    };
    if arg.starts_with('-') {
        if let Some((flag, value)) = arg.split_once('=') {
            return strip(value).map_or_else(|| arg.to_owned(), |value| format!("{flag}={value}"));
        }
    }
    strip(arg).unwrap_or_else(|| arg.to_owned())
}

impl CommandAgent {
    /// Claude Code: `claude` with the [`ClaudeCode`] interpreter.
    pub fn claude_code() -> Self {
        Self::new("claude").interpreter(ClaudeCode)
    }

    /// Codex: `codex` with the [`Codex`] interpreter (`exec --json`).
    pub fn codex() -> Self {
        Self::new("codex").interpreter(Codex)
    }

    /// An ACP agent: `program` with `args` (e.g. `kiro-cli acp
    /// --trust-all-tools`) and the [`Acp`] interpreter.
    pub fn acp<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString>>(program: &str, args: I) -> Self {
        Self::new(program).args(args).interpreter(Acp::new())
    }

    /// Hermes as the Go daemon runs it: `hermes acp`, sessions continued
    /// with `session/resume`, `HERMES_YOLO_MODE=1` (shell commands run
    /// without asking).
    pub fn hermes() -> Self {
        Self::acp("hermes", ["acp"]).interpreter(Acp::new().resume_with(AcpResume::Resume)).env("HERMES_YOLO_MODE", "1")
    }

    /// Kimi Code as the Go daemon runs it: `kimi acp`, sessions continued
    /// with `session/resume`.
    pub fn kimi() -> Self {
        Self::acp("kimi", ["acp"]).interpreter(Acp::new().resume_with(AcpResume::Resume))
    }
}
