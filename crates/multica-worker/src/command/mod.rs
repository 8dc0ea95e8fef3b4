//! [`CommandAgent`]: runs a program per task. Three layers: spawning and
//! stopping the program (this module and `process`), framing its stdout
//! into bounded lines (`lines`), and interpreting each line (`interpret`,
//! pure, and the ready interpreters in [`agents`](crate::agents)).

mod interpret;
mod lines;
mod process;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use multica_api::{FailureReason, Runtime, RuntimeModel, Task, TaskUsage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::{self, Instant};

use crate::agent::{Agent, AgentOutcome, CancelReason, TaskContext};
use crate::runtime_request::{ModelCatalog, RuntimeAnswer};
use crate::skills::AgentSkill;
pub(crate) use interpret::{keep_tail, OUTPUT_TAIL_BYTES};
pub use interpret::{AgentEvent, Interpreter, LineParser, PlainText, ProcessExit, RunInput};
use lines::LineReader;
use process::{Group, Stop};

/// An [`Agent`] that runs a program per task.
///
/// - The program's arguments are its own ([`arg`](Self::arg)) then the
///   [`Interpreter`]'s for the task (the output format, the session to
///   resume…). Its environment is the daemon's without `MULTICA_TOKEN`
///   (nor what the interpreter removes), plus `MULTICA_TASK_ID`,
///   `MULTICA_RUNTIME_ID`, `MULTICA_AGENT_ID`, `MULTICA_ISSUE_ID` and
///   `MULTICA_WORKSPACE_ID`, the task's token ([`TaskContext::auth_token`],
///   server HEAD 1cc46b2697) as `MULTICA_TOKEN`, the agent's name as
///   `MULTICA_AGENT_NAME`, the session the server offers to resume and its
///   directory as `MULTICA_PRIOR_SESSION_ID` and `MULTICA_PRIOR_WORK_DIR`
///   (the interpreter passes the session to the CLI, unless the server says
///   it cannot be resumed), the directory holding the agent's skills as
///   `MULTICA_SKILLS_DIR`, and what [`env`](Self::env) sets.
/// - The agent's skills ([`TaskContext::skills`]) are written before the
///   program starts, one folder each with its `SKILL.md`: under the
///   program's [`current_dir`](Self::current_dir) where the CLI discovers
///   them ([`Interpreter::skills_dir`], `.claude/skills` for Claude Code),
///   or without one in a directory of the task's own, removed after the run.
/// - Its stdout is read as lines of at most
///   [`max_line_bytes`](Self::max_line_bytes) (over-long lines are cut,
///   invalid UTF-8 replaced, nothing ends the reading before EOF), each
///   handed to the interpreter's [`LineParser`], whose [`AgentEvent`]s
///   become live messages, progress, usage (reported when the run ends),
///   the session to pin, and writes to the program's stdin.
/// - A session the parser reports is pinned at once
///   ([`TaskContext::pin_session`]: where the server has the route, so a
///   retry resumes it even if this run dies), with the program's directory.
/// - When the program has ended and its stdout is read, the parser decides
///   the outcome; it names the program's directory as the work directory
///   when it does not name one itself.
/// - Stopped by a cancellation it fails with `cancelled` (the Go daemon's
///   reason for a run stopped from outside); after the timeout with
///   `timeout` (retried by server HEAD 1cc46b2697).
/// - On cancellation, on shutdown and after the per-task timeout the parser
///   may first ask the program to stop by its protocol (then the program
///   gets one [`kill_grace`](Self::kill_grace)); then, on Unix, its whole
///   process group (the program leads a group of its own) gets SIGINT, then
///   SIGTERM, then SIGKILL, one kill grace apart. Children left in the
///   group when the run ends, or when the run's future is dropped, are
///   killed. On other platforms only the program itself is killed, at once.
///
/// The default interpreter is [`PlainText`]: the task as JSON on stdin,
/// each stdout line one text message, exit 0 completes with the tail of
/// stdout. [`CommandAgent::claude_code`], [`CommandAgent::codex`] and
/// [`CommandAgent::acp`] run real coding agents.
#[derive(Clone)]
pub struct CommandAgent {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    timeout: Duration,
    kill_grace: Duration,
    max_line_bytes: usize,
    interpreter: Arc<dyn Interpreter>,
    prompt: Arc<dyn Fn(&Task) -> String + Send + Sync>,
    models: Option<Arc<[RuntimeModel]>>,
}

impl std::fmt::Debug for CommandAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandAgent")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("current_dir", &self.current_dir)
            .field("timeout", &self.timeout)
            .field("kill_grace", &self.kill_grace)
            .finish_non_exhaustive()
    }
}

impl CommandAgent {
    /// The Go daemon's limit on one task: two hours.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
    /// Time between the stop signals: enough to save a session and flush.
    pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
    /// Bytes of output kept for the completion or the failure reason.
    pub const OUTPUT_TAIL_BYTES: usize = OUTPUT_TAIL_BYTES;
    /// The Go daemon's bound on one line of an agent's output (32 MiB: one
    /// line can carry a whole conversation).
    pub const DEFAULT_MAX_LINE_BYTES: usize = 32 * 1024 * 1024;

    /// Runs `program` (looked up in `PATH`) per task, its output as plain
    /// text ([`PlainText`]).
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            current_dir: None,
            timeout: Self::DEFAULT_TIMEOUT,
            kill_grace: Self::DEFAULT_KILL_GRACE,
            max_line_bytes: Self::DEFAULT_MAX_LINE_BYTES,
            interpreter: Arc::new(PlainText),
            prompt: Arc::new(default_prompt),
            models: None,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Runs the program in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Stops the program after `timeout` ([`CommandAgent::DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time between the stop signals ([`CommandAgent::DEFAULT_KILL_GRACE`]).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The longest line of output read as one
    /// ([`CommandAgent::DEFAULT_MAX_LINE_BYTES`]); a longer one is cut.
    pub fn max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max;
        self
    }

    /// Interprets the program's output with `interpreter`.
    pub fn interpreter(mut self, interpreter: impl Interpreter) -> Self {
        self.interpreter = Arc::new(interpreter);
        self
    }

    /// The models this CLI offers, answered when a user opens the runtime's
    /// model picker (a model-list request). Without it the server is told
    /// the runtime has no model selection.
    pub fn models(mut self, models: impl Into<Arc<[RuntimeModel]>>) -> Self {
        self.models = Some(models.into());
        self
    }

    /// Builds the prompt of a task for interpreters that pass one (by
    /// default: the issue to work on, as the Go daemon's first lines say it).
    pub fn prompt(mut self, prompt: impl Fn(&Task) -> String + Send + Sync + 'static) -> Self {
        self.prompt = Arc::new(prompt);
        self
    }

    fn command(&self, context: &TaskContext, extra_args: Vec<OsString>) -> Command {
        let record = &context.task().record;
        let mut command = Command::new(&self.program);
        command.args(&self.args).args(extra_args);
        // A `MULTICA_TOKEN` inherited from the daemon is not the task's;
        // one set with `env` is the caller's choice.
        command.env_remove("MULTICA_TOKEN");
        for name in self.interpreter.env_remove() {
            command.env_remove(name);
        }
        command
            .envs(self.envs.iter().map(|(key, value)| (key, value)))
            .env("MULTICA_TASK_ID", record.id.as_str())
            .env("MULTICA_RUNTIME_ID", record.runtime_id.as_str())
            .env("MULTICA_AGENT_ID", record.agent_id.as_str())
            .env("MULTICA_ISSUE_ID", record.issue_id.as_str())
            .env("MULTICA_WORKSPACE_ID", record.workspace_id.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = context.auth_token() {
            command.env("MULTICA_TOKEN", token.expose());
        }
        if let Some(agent) = &context.task().agent {
            command.env("MULTICA_AGENT_NAME", &agent.name);
        }
        if let Some(session) = context.prior_session_id() {
            command.env("MULTICA_PRIOR_SESSION_ID", session);
        }
        if let Some(dir) = context.prior_work_dir() {
            command.env("MULTICA_PRIOR_WORK_DIR", dir);
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        #[cfg(unix)]
        command.process_group(0);
        command
    }
}

impl CommandAgent {
    /// Writes the agent's skills where its CLI discovers them: under the
    /// program's directory ([`Interpreter::skills_dir`]), or without one in
    /// a directory of the task's own, removed after the run.
    fn write_skills(&self, context: &TaskContext) -> std::io::Result<Option<SkillsDir>> {
        if context.skills().is_empty() {
            return Ok(None);
        }
        let (dir, temporary) = match &self.current_dir {
            Some(work_dir) => (work_dir.join(self.interpreter.skills_dir()), false),
            None => (std::env::temp_dir().join(format!("multica-skills-{}", context.task().record.id)), true),
        };
        let skills = SkillsDir { dir, temporary };
        AgentSkill::write_all(context.skills(), &skills.dir)?;
        Ok(Some(skills))
    }
}

/// Where a run's skills were written.
struct SkillsDir {
    dir: PathBuf,
    /// Whether the directory is the run's own, removed with it.
    temporary: bool,
}

impl Drop for SkillsDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The prompt of a task when none is configured.
fn default_prompt(task: &Task) -> String {
    let issue = &task.record.issue_id;
    format!(
        "You are running as a local coding agent for a Multica workspace.\n\n\
         Your assigned issue ID is: {issue}\n\n\
         Start by running `multica issue get {issue} --output json` to understand your task, then complete it.\n"
    )
}

/// Why the run was stopped.
#[derive(Clone, Copy)]
enum Stopped {
    Cancelled(CancelReason),
    TimedOut,
}

/// What the stop timer does when it fires.
#[derive(Clone, Copy)]
enum Next {
    Signal(Stop),
    /// SIGKILL went out and stdout is still open (a process that left the
    /// group holds it): stop reading.
    GiveUp,
}

#[async_trait]
impl Agent for CommandAgent {
    async fn list_models(&self, _runtime: &Runtime) -> RuntimeAnswer<ModelCatalog> {
        match &self.models {
            Some(models) => RuntimeAnswer::Answered(ModelCatalog::new(models.to_vec())),
            None => RuntimeAnswer::Unsupported,
        }
    }

    async fn run(&self, context: TaskContext) -> AgentOutcome {
        let name = self.program.to_string_lossy().into_owned();
        let task = task_input(context.task());
        let prompt = (self.prompt)(&task);
        let resume = resume_session(&context);
        let input = RunInput {
            task: &task,
            prompt: &prompt,
            resume_session: resume.as_deref(),
            work_dir: self.current_dir.as_deref(),
        };
        let mut parser = self.interpreter.parser(&input);
        let skills = match self.write_skills(&context) {
            Ok(skills) => skills,
            Err(err) => return AgentOutcome::failed(format!("cannot write the agent's skills: {err}")),
        };
        let mut command = self.command(&context, self.interpreter.args(&input));
        if let Some(skills) = &skills {
            command.env("MULTICA_SKILLS_DIR", &skills.dir);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return AgentOutcome::failed(format!("cannot run {name}: executable not found ({err})"))
            }
            Err(err) => return AgentOutcome::failed(format!("cannot run {name}: {err}")),
        };
        let group = Group::new(child.id());
        let stdin = child.stdin.take().map(stdin_writer);
        let stderr = child.stderr.take().map(|err| tokio::spawn(read_tail(err)));
        let work_dir = self.current_dir.as_ref().map(|dir| dir.to_string_lossy().into_owned()).unwrap_or_default();
        let mut run = Run { context: &context, work_dir, stdin, usage: Vec::new(), session: None };
        run.apply(parser.start()).await;

        let mut lines = child.stdout.take().map(|out| LineReader::new(BufReader::new(out), self.max_line_bytes));
        let mut status: Option<std::io::Result<ExitStatus>> = None;
        let mut stopped: Option<Stopped> = None;
        let mut next: Option<Next> = None;
        // Armed only while `next` is set.
        let stop_timer = time::sleep(self.timeout);
        let deadline = time::sleep(self.timeout);
        tokio::pin!(stop_timer, deadline);
        while lines.is_some() || status.is_none() {
            let mut stop_now: Option<Stopped> = None;
            let mut kill_now = false;
            tokio::select! {
                line = async { lines.as_mut()?.next_line().await }, if lines.is_some() => match line {
                    Some(line) => run.apply(parser.on_line(&line.text)).await,
                    None => lines = None,
                },
                exited = child.wait(), if status.is_none() => {
                    status = Some(exited);
                    // Children left in the group may hold stdout open.
                    if lines.is_some() && next.is_none() {
                        next = Some(Next::Signal(Stop::Kill));
                        stop_timer.as_mut().reset(after(self.kill_grace));
                    }
                }
                reason = context.cancelled(), if stopped.is_none() => stop_now = Some(Stopped::Cancelled(reason)),
                () = &mut deadline, if stopped.is_none() => stop_now = Some(Stopped::TimedOut),
                () = &mut stop_timer, if next.is_some() => match next.take() {
                    Some(Next::Signal(stop)) => {
                        kill_now = group.signal(stop);
                        next = Some(stop.next().map_or(Next::GiveUp, Next::Signal));
                        stop_timer.as_mut().reset(after(self.kill_grace));
                    }
                    _ => lines = None,
                },
            }
            if let Some(why) = stop_now {
                stopped = Some(why);
                let asked = parser.on_cancel();
                let first = if asked.is_empty() {
                    kill_now = group.signal(Stop::Interrupt);
                    Stop::Terminate
                } else {
                    run.apply(asked).await;
                    Stop::Interrupt
                };
                next = Some(Next::Signal(first));
                stop_timer.as_mut().reset(after(self.kill_grace));
            }
            if kill_now {
                let _ = child.start_kill();
            }
        }
        drop(group);
        run.stdin = None;
        // A process that left the group may still hold stderr open.
        let stderr = match stderr {
            Some(reader) => time::timeout(self.kill_grace, reader).await.ok().and_then(Result::ok).unwrap_or_default(),
            None => String::new(),
        };
        let outcome = match stopped {
            None => {
                let status = status.map_or_else(|| Err("no status".to_owned()), |s| s.map_err(|e| e.to_string()));
                let exit = ProcessExit { program: name, status, stderr };
                parser.finish(&exit)
            }
            Some(why) => self.stopped(&name, why, &stderr),
        };
        run.finish(outcome).await
    }
}

impl CommandAgent {
    /// The failure of a run that was stopped, in the server's terms.
    fn stopped(&self, name: &str, why: Stopped, stderr: &str) -> AgentOutcome {
        let (mut error, reason) = match why {
            Stopped::TimedOut => {
                (format!("{name} timed out after {} s", self.timeout.as_secs()), FailureReason::Timeout)
            }
            Stopped::Cancelled(CancelReason::Timeout) => {
                (format!("{name} timed out after the task's limit"), FailureReason::Timeout)
            }
            // The Go daemon's label for a run stopped from outside.
            Stopped::Cancelled(reason) => (format!("{name} was stopped: {reason}"), FailureReason::Cancelled),
        };
        if !stderr.is_empty() {
            error.push_str(&format!("; stderr: {stderr}"));
        }
        AgentOutcome::failed_with(error, reason)
    }
}

/// One run's side of the events: the task's sinks and the program's stdin.
struct Run<'a> {
    context: &'a TaskContext,
    /// The program's directory, as the session's work directory.
    work_dir: String,
    stdin: Option<mpsc::UnboundedSender<Vec<u8>>>,
    usage: Vec<TaskUsage>,
    session: Option<String>,
}

impl Run<'_> {
    async fn apply(&mut self, events: Vec<AgentEvent>) {
        let messages = self.context.messages();
        for event in events {
            match event {
                AgentEvent::Text(text) => messages.text_message(text),
                AgentEvent::TextDelta(text) => messages.text(&text),
                AgentEvent::Thinking(text) => messages.push(AgentEvent::thinking_message(text)),
                AgentEvent::ToolUse { tool, input } => messages.tool_use(tool, input),
                AgentEvent::ToolResult { tool, output } => messages.tool_result(tool, output),
                AgentEvent::Error(text) => messages.error(text),
                AgentEvent::Progress(progress) => {
                    self.context.progress(progress.summary, progress.step, progress.total).await;
                }
                AgentEvent::Usage(usage) => match self.usage.iter_mut().find(|row| row.model == usage.model) {
                    Some(row) => *row = usage,
                    None => self.usage.push(usage),
                },
                AgentEvent::Session(session) => {
                    if self.session.as_deref() != Some(session.as_str()) {
                        // A failed pin is a worker event; the session still
                        // goes with the final report.
                        let _ = self.context.pin_session(&session, &self.work_dir).await;
                        self.session = Some(session);
                    }
                }
                AgentEvent::Stdin(bytes) => {
                    if let Some(stdin) = &self.stdin {
                        let _ = stdin.send(bytes);
                    }
                }
                AgentEvent::CloseStdin => self.stdin = None,
            }
        }
    }

    /// Reports the usage and names the work directory in the outcome (the
    /// worker adds the pinned session where the outcome names none).
    async fn finish(self, mut outcome: AgentOutcome) -> AgentOutcome {
        // One report of the run's totals; a failure is a worker event.
        let _ = self.context.report_usage(&self.usage).await;
        let work_dir = match &mut outcome {
            AgentOutcome::Completed(completion) => &mut completion.work_dir,
            AgentOutcome::Failed(failure) => &mut failure.work_dir,
        };
        if work_dir.is_empty() {
            work_dir.clone_from(&self.work_dir);
        }
        outcome
    }
}

/// `wait` from now (far in the future for a wait too long to add).
fn after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 60 * 60))
}

/// Writes what it is sent to the program's stdin; dropping the sender
/// closes it. A program that does not read its stdin closes it: not an
/// error, the rest is dropped.
fn stdin_writer(mut stdin: ChildStdin) -> mpsc::UnboundedSender<Vec<u8>> {
    let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Some(bytes) = receiver.recv().await {
            if stdin.write_all(&bytes).await.is_err() || stdin.flush().await.is_err() {
                return;
            }
        }
        let _ = stdin.shutdown().await;
    });
    sender
}

/// The task as the program sees it: without the claim's token (the
/// program's own is `MULTICA_TOKEN`) nor the daemon's Remote MCP token.
fn task_input(task: &Task) -> Task {
    let mut input = task.clone();
    input.auth_token = None;
    input.remote_mcp_daemon_token = None;
    input
}

/// The prior session to resume, unless the server said it cannot be.
fn resume_session(context: &TaskContext) -> Option<String> {
    let prior = context.prior_session_id()?.trim();
    (!prior.is_empty() && !context.task().prior_session_resume_unavailable).then(|| prior.to_owned())
}

/// Reads everything, keeping only the tail; returns it trimmed.
async fn read_tail(mut err: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::with_capacity(OUTPUT_TAIL_BYTES * 2);
    let mut chunk = [0u8; 8192];
    while let Ok(read @ 1..) = err.read(&mut chunk).await {
        kept.extend_from_slice(&chunk[..read]);
        let excess = kept.len().saturating_sub(OUTPUT_TAIL_BYTES * 2);
        kept.drain(..excess);
    }
    let mut tail = String::new();
    keep_tail(&mut tail, String::from_utf8_lossy(&kept).trim(), OUTPUT_TAIL_BYTES);
    tail
}
