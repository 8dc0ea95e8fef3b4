//! [`CommandAgent`]: runs a program per task.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use multica_api::reporter::ReporterSink;
use multica_api::{Task, TaskCompletion};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time;

use crate::agent::{Agent, AgentOutcome, CancelReason, TaskContext};

/// An [`Agent`] that runs a program per task.
///
/// - The task goes in as its JSON on stdin (without any token), and its IDs
///   as the environment variables `MULTICA_TASK_ID`, `MULTICA_RUNTIME_ID`,
///   `MULTICA_AGENT_ID`, `MULTICA_ISSUE_ID` and `MULTICA_WORKSPACE_ID`; the
///   task's token ([`TaskContext::auth_token`]), when the server hands one
///   out (HEAD 1cc46b2697), as `MULTICA_TOKEN`; a `MULTICA_TOKEN` the daemon
///   itself has in its environment is not passed on.
/// - Each line on stdout becomes one text message of the live output.
/// - Exit status 0 completes the task with the tail of stdout
///   ([`CommandAgent::OUTPUT_TAIL_BYTES`]); any other fails it with the
///   status and the tail of stderr (or of stdout when stderr is empty).
/// - On cancellation, on shutdown and after the per-task timeout the
///   program is stopped: on Unix its whole process group (the program runs
///   in a group of its own) gets SIGTERM, then SIGKILL after the kill grace.
///   On other platforms only the program itself is killed (its children
///   live on), at once.
#[derive(Clone, Debug)]
pub struct CommandAgent {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    current_dir: Option<PathBuf>,
    timeout: Duration,
    kill_grace: Duration,
}

impl CommandAgent {
    /// The Go daemon's limit on one task: two hours.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
    /// Time between SIGTERM and SIGKILL: enough to flush and clean up.
    pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);
    /// Bytes of output kept for the completion or the failure reason.
    pub const OUTPUT_TAIL_BYTES: usize = 4096;

    /// Runs `program` (looked up in `PATH`) per task.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            current_dir: None,
            timeout: Self::DEFAULT_TIMEOUT,
            kill_grace: Self::DEFAULT_KILL_GRACE,
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

    /// Time between SIGTERM and SIGKILL ([`CommandAgent::DEFAULT_KILL_GRACE`]).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    fn command(&self, context: &TaskContext) -> Command {
        let record = &context.task().record;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            // A `MULTICA_TOKEN` inherited from the daemon is not the task's;
            // one set with `env` is the caller's choice.
            .env_remove("MULTICA_TOKEN")
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
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        #[cfg(unix)]
        command.process_group(0);
        command
    }
}

/// How the program's run ended.
enum Ended {
    Exited(std::io::Result<ExitStatus>),
    Cancelled(CancelReason),
    TimedOut,
}

#[async_trait]
impl Agent for CommandAgent {
    async fn run(&self, context: TaskContext) -> AgentOutcome {
        let name = self.program.to_string_lossy().into_owned();
        let mut child = match self.command(&context).spawn() {
            Ok(child) => child,
            Err(err) => return AgentOutcome::failed(format!("cannot run {name}: {err}")),
        };
        if let Some(mut stdin) = child.stdin.take() {
            let input = serde_json::to_vec(&task_input(context.task())).unwrap_or_default();
            // A program that does not read its stdin closes it: not an error.
            tokio::spawn(async move {
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            });
        }
        // The group's ID is the program's PID (`process_group(0)`), kept
        // for after the program is reaped, when children may live on.
        let group = child.id();
        let stdout = child.stdout.take().map(|out| tokio::spawn(forward_lines(out, context.messages().clone())));
        let stderr = child.stderr.take().map(|err| tokio::spawn(read_tail(err)));

        let ended = tokio::select! {
            status = child.wait() => Ended::Exited(status),
            reason = context.cancelled() => Ended::Cancelled(reason),
            () = time::sleep(self.timeout) => Ended::TimedOut,
        };
        let ended = match ended {
            Ended::Exited(status) => {
                // Children left in the group may hold the pipes open.
                let leftovers = async { (tail(stdout).await, tail(stderr).await) };
                let (out, err) = match time::timeout(self.kill_grace, leftovers).await {
                    Ok(tails) => tails,
                    Err(_) => {
                        signal_group(&mut child, group, true);
                        (String::new(), String::new())
                    }
                };
                return outcome(&name, status, out, err);
            }
            stopped => stopped,
        };
        self.stop(&mut child, group).await;
        let (_, err) = (tail(stdout).await, tail(stderr).await);
        let why = match ended {
            Ended::Cancelled(reason) => format!("{name} was stopped: {reason}"),
            _ => format!("{name} timed out after {} s", self.timeout.as_secs()),
        };
        AgentOutcome::failed(if err.is_empty() { why } else { format!("{why}; stderr: {err}") })
    }
}

impl CommandAgent {
    /// SIGTERM to the group, SIGKILL after the grace, then reaps the program.
    async fn stop(&self, child: &mut Child, group: Option<u32>) {
        signal_group(child, group, false);
        if time::timeout(self.kill_grace, child.wait()).await.is_err() {
            signal_group(child, group, true);
            let _ = child.wait().await;
        }
        // The program may have left children behind that ignored SIGTERM.
        signal_group(child, group, true);
    }
}

/// Signals the program's process group (SIGKILL when `kill`, else SIGTERM).
#[cfg(unix)]
fn signal_group(_child: &mut Child, group: Option<u32>, kill: bool) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;

    let Some(pid) = group.and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    let signal = if kill { Signal::SIGKILL } else { Signal::SIGTERM };
    // ESRCH (the group is gone) is the goal reached.
    let _ = killpg(Pid::from_raw(pid), signal);
}

/// Kills the program (its children are not reached off Unix).
#[cfg(not(unix))]
fn signal_group(child: &mut Child, _group: Option<u32>, _kill: bool) {
    let _ = child.start_kill();
}

/// The task as the program reads it: without the daemon's Remote MCP
/// token, which is never the agent's (its own token is `MULTICA_TOKEN`).
fn task_input(task: &Task) -> Task {
    let mut input = task.clone();
    input.auth_token = None;
    input.remote_mcp_daemon_token = None;
    input
}

fn outcome(name: &str, status: std::io::Result<ExitStatus>, out: String, err: String) -> AgentOutcome {
    match status {
        Ok(status) if status.success() => AgentOutcome::Completed(TaskCompletion::with_output(out)),
        Ok(status) => {
            let detail = if err.is_empty() { out } else { err };
            let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
            AgentOutcome::failed(format!("{name} {status}{detail}"))
        }
        Err(err) => AgentOutcome::failed(format!("waiting for {name} failed: {err}")),
    }
}

async fn tail(reader: Option<JoinHandle<String>>) -> String {
    match reader {
        Some(reader) => reader.await.unwrap_or_default(),
        None => String::new(),
    }
}

/// Sends each line as one text message; returns the tail of the output.
async fn forward_lines(out: impl AsyncRead + Unpin, messages: ReporterSink) -> String {
    let mut reader = BufReader::new(out);
    let mut line = Vec::new();
    let mut kept = String::new();
    while let Ok(read) = reader.read_until(b'\n', &mut line).await {
        if read == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        messages.text_message(text);
        keep_tail(&mut kept, text);
        line.clear();
    }
    kept
}

/// Reads everything; returns its tail.
async fn read_tail(err: impl AsyncRead + Unpin) -> String {
    let mut all = Vec::new();
    let _ = err.take(u64::MAX).read_to_end(&mut all).await;
    let start = all.len().saturating_sub(CommandAgent::OUTPUT_TAIL_BYTES * 2);
    let mut kept = String::new();
    keep_tail(&mut kept, String::from_utf8_lossy(&all[start..]).trim_end());
    kept
}

/// Appends `line` to `kept` and cuts `kept` to its last
/// [`CommandAgent::OUTPUT_TAIL_BYTES`], on a character boundary.
fn keep_tail(kept: &mut String, line: &str) {
    if !kept.is_empty() {
        kept.push('\n');
    }
    kept.push_str(line);
    let excess = kept.len().saturating_sub(CommandAgent::OUTPUT_TAIL_BYTES);
    if excess > 0 {
        let mut cut = excess;
        while !kept.is_char_boundary(cut) {
            cut += 1;
        }
        kept.drain(..cut);
    }
}
