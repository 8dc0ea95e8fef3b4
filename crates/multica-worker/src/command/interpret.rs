//! The pure half of [`CommandAgent`](crate::CommandAgent): an
//! [`Interpreter`] says how to run a CLI for a task and makes a
//! [`LineParser`] per run, which turns each line of the program's stdout
//! into [`AgentEvent`]s and the exit into an [`AgentOutcome`]. No process is
//! needed to test one: feed it a recorded transcript.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitStatus;

use multica_api::{MessageKind, Task, TaskCompletion, TaskMessage, TaskProgress, TaskUsage};
use serde_json::{Map, Value};

use crate::agent::AgentOutcome;

/// What a run of a CLI is for: the task, the prompt to give it and the
/// session to resume.
#[derive(Clone, Copy, Debug)]
pub struct RunInput<'a> {
    /// The claimed task, without its tokens.
    pub task: &'a Task,
    /// The prompt for the agent.
    pub prompt: &'a str,
    /// The agent session to continue (the task's prior session), if any.
    pub resume_session: Option<&'a str>,
    /// The directory the program runs in, if set.
    pub work_dir: Option<&'a Path>,
}

/// How to run one kind of agent CLI: the arguments it takes per task and
/// the parser of its output. [`PlainText`] is the default; the
/// [`agents`](crate::agents) module has Claude Code, Codex and ACP agents.
pub trait Interpreter: Send + Sync + 'static {
    /// Arguments added after the program's own ones (those given with
    /// [`CommandAgent::arg`](crate::CommandAgent::arg)), e.g. the output
    /// format and `--resume <session>`. None by default.
    fn args(&self, run: &RunInput<'_>) -> Vec<OsString> {
        let _ = run;
        Vec::new()
    }

    /// Environment variables the program must not inherit from the daemon
    /// (markers of an enclosing session, say). None by default.
    fn env_remove(&self) -> &'static [&'static str] {
        &[]
    }

    /// Where the agent's skills go, relative to the program's directory:
    /// where the CLI discovers project skills (the Go daemon's choice per
    /// CLI). By default `.agent_context/skills`, the Go daemon's fallback.
    fn skills_dir(&self) -> &'static str {
        ".agent_context/skills"
    }

    /// A parser for one run.
    fn parser(&self, run: &RunInput<'_>) -> Box<dyn LineParser>;
}

/// Turns one run's output into events, line by line, and its end into the
/// task's outcome. Pure: it never touches the process; what it wants
/// written to the program's stdin it returns as [`AgentEvent::Stdin`].
pub trait LineParser: Send {
    /// Events before the first line: typically the prompt on stdin.
    fn start(&mut self) -> Vec<AgentEvent> {
        Vec::new()
    }

    /// One line of stdout, without its line ending, invalid UTF-8 replaced;
    /// a line longer than the bound arrives cut, as one line.
    fn on_line(&mut self, line: &str) -> Vec<AgentEvent>;

    /// The task is to stop (cancelled, shutdown or timeout): events that ask
    /// the program to stop by its own protocol, before it is signalled.
    /// Returning any makes the command agent wait one kill grace for the
    /// program to end before signalling it. None by default.
    fn on_cancel(&mut self) -> Vec<AgentEvent> {
        Vec::new()
    }

    /// The program ended on its own and its stdout was read to the end:
    /// the task's outcome. Not called when the program was stopped.
    fn finish(&mut self, exit: &ProcessExit) -> AgentOutcome;
}

/// How the program ended, for [`LineParser::finish`].
#[derive(Clone, Debug)]
pub struct ProcessExit {
    /// The program's name, for messages.
    pub program: String,
    /// Its exit status, or why waiting for it failed.
    pub status: Result<ExitStatus, String>,
    /// The tail of its stderr, trimmed.
    pub stderr: String,
}

impl ProcessExit {
    /// Whether the program exited with status 0.
    pub fn success(&self) -> bool {
        matches!(&self.status, Ok(status) if status.success())
    }

    /// `"<program> <status>"` (`"claude exit status: 3"`) with the stderr
    /// tail after `; stderr: `, for a failure reason.
    pub fn describe(&self) -> String {
        let mut reason = match &self.status {
            Ok(status) => format!("{} {status}", self.program),
            Err(err) => format!("waiting for {} failed: {err}", self.program),
        };
        self.append_stderr(&mut reason);
        reason
    }

    /// Appends `; <program> stderr: <tail>` to `reason` when stderr had any,
    /// as the Go daemon does.
    pub fn append_stderr(&self, reason: &mut String) {
        if !self.stderr.is_empty() {
            reason.push_str(&format!("; {} stderr: {}", self.program, self.stderr));
        }
    }
}

/// What one line (or the start, or a cancel) means.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// One whole text message of the live output.
    Text(String),
    /// A piece of text, merged with the text around it.
    TextDelta(String),
    /// The agent's reasoning (a `thinking` message).
    Thinking(String),
    /// A tool call with its arguments.
    ToolUse {
        /// The tool's name.
        tool: String,
        /// Its arguments.
        input: Map<String, Value>,
    },
    /// A tool's answer.
    ToolResult {
        /// The tool's name (empty when the CLI does not say).
        tool: String,
        /// What it returned.
        output: String,
    },
    /// An error the agent reported (the task goes on).
    Error(String),
    /// A progress step.
    Progress(TaskProgress),
    /// Token usage of one model so far in this run (a running total: the
    /// last report of a model replaces the earlier ones). The run's totals
    /// go to the server once, when it ends
    /// ([`TaskContext::report_usage`](crate::TaskContext::report_usage));
    /// an empty provider is the runtime's.
    Usage(TaskUsage),
    /// The agent's session ID, known before the end: the worker pins it at
    /// once where the server has the route, so a crash can still resume.
    Session(String),
    /// Bytes to write to the program's stdin.
    Stdin(Vec<u8>),
    /// Close the program's stdin.
    CloseStdin,
}

impl AgentEvent {
    /// A message of the live output with this kind, for kinds the
    /// constructors above do not cover.
    pub(crate) fn thinking_message(content: String) -> TaskMessage {
        TaskMessage { kind: MessageKind::from("thinking"), content, ..TaskMessage::default() }
    }

    /// `line` and a newline, to write to stdin.
    pub fn stdin_line(line: impl Into<Vec<u8>>) -> Self {
        let mut bytes = line.into();
        bytes.push(b'\n');
        Self::Stdin(bytes)
    }
}

/// The default interpreter: the task as JSON on stdin, each stdout line one
/// text message, exit 0 completes with the tail of stdout, any other status
/// fails with it and the tail of stderr (or of stdout when stderr is empty).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainText;

impl Interpreter for PlainText {
    fn parser(&self, run: &RunInput<'_>) -> Box<dyn LineParser> {
        let input = serde_json::to_vec(run.task).unwrap_or_default();
        Box::new(PlainTextParser { input: Some(input), tail: String::new() })
    }
}

struct PlainTextParser {
    input: Option<Vec<u8>>,
    tail: String,
}

/// Bytes of output kept for the completion or the failure reason.
pub(crate) const OUTPUT_TAIL_BYTES: usize = 4096;

impl LineParser for PlainTextParser {
    fn start(&mut self) -> Vec<AgentEvent> {
        let input = self.input.take().unwrap_or_default();
        vec![AgentEvent::Stdin(input), AgentEvent::CloseStdin]
    }

    fn on_line(&mut self, line: &str) -> Vec<AgentEvent> {
        keep_tail(&mut self.tail, line, OUTPUT_TAIL_BYTES);
        vec![AgentEvent::Text(line.to_owned())]
    }

    fn finish(&mut self, exit: &ProcessExit) -> AgentOutcome {
        let out = std::mem::take(&mut self.tail);
        match &exit.status {
            Ok(status) if status.success() => AgentOutcome::Completed(TaskCompletion::with_output(out)),
            Ok(status) => {
                let detail = if exit.stderr.is_empty() { out } else { exit.stderr.clone() };
                let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
                AgentOutcome::failed(format!("{} {status}{detail}", exit.program))
            }
            Err(err) => AgentOutcome::failed(format!("waiting for {} failed: {err}", exit.program)),
        }
    }
}

/// Appends `line` to `kept` and cuts `kept` to its last `max` bytes, on a
/// character boundary.
pub(crate) fn keep_tail(kept: &mut String, line: &str, max: usize) {
    if !kept.is_empty() {
        kept.push('\n');
    }
    kept.push_str(line);
    let excess = kept.len().saturating_sub(max);
    if excess > 0 {
        let mut cut = excess;
        while !kept.is_char_boundary(cut) {
            cut += 1;
        }
        kept.drain(..cut);
    }
}
