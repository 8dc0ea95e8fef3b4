//! The demo daemon: `cargo run --example daemon`.
//!
//! With no arguments it runs against the embedded fake server seeded with
//! demo data and exits when the queue is drained. With
//! `--server URL --token T --workspace W` it drives a real Multica server
//! through the hyper client until Ctrl-C.

mod agent;
mod daemon;
mod demo;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use multica::hyper::{HyperClient, WsFirst};
use multica::mock::parse_server_version;
use multica::reporter::ReporterConfig;
use multica::worker::{short_id, Registration, Worker, WorkerConfig};
use multica::ServerVersion;
use multica::{DaemonApi, RuntimeSpec, RuntimeStatus};

use daemon::Log;

const USAGE: &str = "\
usage: daemon [--server URL --workspace ID [--token TOKEN] [--daemon-id ID]] [--server-version V]
              [--concurrency N] [--once]

  (no --server)     run on the embedded fake server with demo data, exit when drained
  --server-version V  the server the embedded fake emulates: 3c93ebaf1c (default) or head
  --server URL      a Multica server (http:// or https://)
  --workspace ID    the workspace to register in
  --token TOKEN     the daemon's token
  --daemon-id ID    the daemon's identity (default multica-rs-$HOSTNAME)
  --concurrency N   tasks run at once (demo 2, server 4)
  --once            exit when the queue is empty (default: run until Ctrl-C)
  --help            show this help";

/// Command-line options.
#[derive(Debug, Default, PartialEq)]
struct Args {
    server: Option<String>,
    token: Option<String>,
    workspace: Option<String>,
    daemon_id: Option<String>,
    concurrency: Option<usize>,
    /// The embedded fake's version; `None` is 3c93ebaf1c.
    server_version: Option<ServerVersion>,
    once: bool,
    help: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => parsed.server = Some(value()?),
            "--token" => parsed.token = Some(value()?),
            "--workspace" => parsed.workspace = Some(value()?),
            "--daemon-id" => parsed.daemon_id = Some(value()?),
            "--concurrency" => {
                let text = value()?;
                parsed.concurrency = Some(text.parse().map_err(|_| format!("--concurrency: not a number: {text}"))?);
            }
            "--server-version" => {
                parsed.server_version =
                    Some(parse_server_version(&value()?).map_err(|err| format!("--server-version: {err}"))?);
            }
            "--once" => parsed.once = true,
            "--help" | "-h" => parsed.help = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if parsed.server.is_some() != parsed.workspace.is_some() {
        return Err("--server and --workspace go together".into());
    }
    if parsed.server.is_some() && parsed.server_version.is_some() {
        return Err("--server-version chooses the embedded fake; a real server is what it is".into());
    }
    Ok(parsed)
}

fn runtimes() -> Vec<RuntimeSpec> {
    ["claude", "codex"]
        .into_iter()
        .map(|provider| RuntimeSpec {
            name: String::new(),
            provider: provider.into(),
            version: "1.0.0".into(),
            status: RuntimeStatus::Online,
            ..Default::default()
        })
        .collect()
}

/// The demo's pace: everything done in a few seconds.
fn demo_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        poll_interval: Duration::from_millis(200),
        heartbeat_interval: Duration::from_secs(1),
        status_interval: Duration::from_millis(100),
        exit_when_idle: true,
        reporter: ReporterConfig::default(),
        ..WorkerConfig::default()
    }
}

/// Time the simulated agent takes per step.
const AGENT_STEP: Duration = Duration::from_millis(200);

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) if args.help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(args) => args,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let log = Log::new();
    // Ctrl-C shuts down gracefully; a second one ends the grace period.
    let signal = || async {
        // Without a signal handler the daemon simply runs until drained.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };

    let outcome = match (&args.server, &args.workspace) {
        (Some(server), Some(workspace)) => {
            // Announces what the worker honours: claims then carry skill references.
            let mut builder = HyperClient::builder(server.as_str()).capabilities(Worker::CAPABILITIES);
            if let Some(token) = &args.token {
                builder = builder.token(token.as_str());
            }
            // Heartbeats, claims and wake-ups over the daemon WebSocket
            // where the server has it; HTTP for the rest and on servers
            // without it.
            let api = match builder.build() {
                Ok(client) => WsFirst::new(client),
                Err(err) => {
                    eprintln!("{}", err.display_chain());
                    return ExitCode::from(2);
                }
            };
            let pushes = Some(api.pushes());
            let api: Arc<dyn DaemonApi> = Arc::new(api);
            println!("multica daemon: server {server}, workspace {workspace}");
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "rust-daemon".into());
            let daemon_id = args.daemon_id.clone().unwrap_or_else(|| format!("multica-rs-{host}"));
            let registration = Registration::new(workspace.as_str(), daemon_id, host, runtimes());
            let config = WorkerConfig {
                concurrency: args.concurrency.unwrap_or(4),
                exit_when_idle: args.once,
                // A daemon started with its server waits for it.
                wait_for_server: Some(Duration::from_secs(120)),
                ..WorkerConfig::default()
            };
            daemon::run(api, pushes, registration, config, AGENT_STEP, log, signal).await
        }
        _ => {
            let version = args.server_version.unwrap_or(ServerVersion::V3c93ebaf1c);
            let demo = match demo::build(version) {
                Ok(demo) => demo,
                Err(err) => {
                    eprintln!("cannot seed the demo: {}", err.display_chain());
                    return ExitCode::FAILURE;
                }
            };
            println!("multica demo daemon: embedded fake server {} with demo data (try --help)", version);
            log.say(format!(
                "(demo) 5 tasks queued on 2 runtimes; task {} runs on codex, the agent of task {} is blocked, \
                 and a user will cancel task {} while it runs",
                short_id(demo.codex_task.as_str()),
                short_id(demo.blocked_task.as_str()),
                short_id(demo::CANCELLED_TASK)
            ));
            let director = tokio::spawn(demo::cancel_when_running(demo.mock.clone(), log));
            let config = WorkerConfig { concurrency: args.concurrency.unwrap_or(2), ..demo_config() };
            let api = Arc::new(demo.mock.with_capabilities(&Worker::CAPABILITIES));
            let outcome = daemon::run(api, None, demo::registration(), config, AGENT_STEP, log, signal).await;
            director.abort();
            demo::show_runtime_requests(&demo.mock, log);
            outcome
        }
    };
    match outcome {
        Ok(summary) => {
            println!("done: {summary}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("daemon stopped: {}", err.display_chain());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use multica::{Endpoint, MessageKind, RuntimeId, TaskId, TaskStatus};

    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_parse_and_pair() {
        assert_eq!(args(&[]), Ok(Args::default()));
        let real =
            args(&["--server", "https://m.example", "--token", "t", "--workspace", "w", "--daemon-id", "d", "--once"])
                .unwrap();
        assert_eq!(real.server.as_deref(), Some("https://m.example"));
        assert_eq!(real.daemon_id.as_deref(), Some("d"));
        assert!(real.once);
        assert!(args(&["--server", "https://m.example"]).is_err());
        assert!(args(&["--concurrency", "x"]).is_err());
        assert!(args(&["--token"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--help"]).unwrap().help);
        assert_eq!(args(&["--server-version", "head"]).unwrap().server_version, Some(ServerVersion::Head));
        assert!(args(&["--server-version", "v9"]).is_err());
        assert!(args(&["--server", "https://m.example", "--workspace", "w", "--server-version", "head"]).is_err());
    }

    /// The whole demo on the fake of `version`, on tokio's paused clock.
    async fn run_demo(version: ServerVersion) -> (demo::Demo, multica::worker::Summary) {
        let demo = demo::build(version).unwrap();
        let mock = demo.mock.clone();
        let log = Log::new();
        let director = tokio::spawn(demo::cancel_when_running(mock.clone(), log));
        let summary = daemon::run(
            Arc::new(mock.with_capabilities(&Worker::CAPABILITIES)),
            None,
            demo::registration(),
            demo_config(),
            AGENT_STEP,
            log,
            std::future::pending,
        )
        .await
        .unwrap();
        director.await.unwrap();
        (demo, summary)
    }

    /// What the demo does on either server: every task ends as the story
    /// says, messages stream with consecutive seqs, the cancelled task stops
    /// mid-run and the runtimes are deregistered.
    fn assert_the_story(demo: &demo::Demo, summary: multica::worker::Summary) {
        let mock = &demo.mock;
        assert_eq!((summary.completed, summary.failed, summary.cancelled, summary.errors), (3, 1, 1, 0));
        let status = |id: &str| mock.task_status(&TaskId::new(id));
        assert_eq!(status("44444444-4444-4444-8444-000000000001"), Some(TaskStatus::Completed));
        assert_eq!(status("44444444-4444-4444-8444-000000000002"), Some(TaskStatus::Completed));
        assert_eq!(status(demo::CANCELLED_TASK), Some(TaskStatus::Cancelled));
        assert_eq!(mock.task_status(&demo.codex_task), Some(TaskStatus::Completed));
        assert_eq!(mock.task_status(&demo.blocked_task), Some(TaskStatus::Failed));
        assert!(mock.task(&demo.blocked_task).unwrap().error.unwrap().starts_with("blocked"));

        let messages = mock.messages(&demo.codex_task);
        let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
        assert_eq!(messages[0].kind, MessageKind::Text);
        assert!(messages[0].content.starts_with("Reading issue 5555…0004 in a fresh session"), "{:?}", messages[0]);
        assert!(messages.iter().any(|m| m.kind == MessageKind::ToolUse && m.tool == "Bash"));

        // The cancelled task's agent stopped mid-run: it never got to the end.
        let cancelled = mock.messages(&TaskId::new(demo::CANCELLED_TASK));
        assert!(!cancelled.iter().any(|m| m.content.contains("All tests pass")), "{cancelled:?}");

        // Every task's short ID is unique.
        let mut ids: Vec<String> = mock.snapshot().tasks.iter().map(|t| short_id(t.record.id.as_str())).collect();
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count);

        assert_eq!(mock.calls_to(Endpoint::Deregister).len(), 1);
        let claude = mock.runtime_by_id(&RuntimeId::new("33333333-3333-4333-8333-333333333333")).unwrap();
        assert_eq!(claude.status, RuntimeStatus::Offline);
        // The cancelled task's result was dropped, not reported.
        assert_eq!(mock.calls_to(Endpoint::CompleteTask).len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn demo_drains_the_queue_as_scripted_on_3c93ebaf1c() {
        let (demo, summary) = run_demo(ServerVersion::V3c93ebaf1c).await;
        assert_the_story(&demo, summary);
        let mock = &demo.mock;
        assert_eq!(mock.calls_to(Endpoint::ReportPingResult).len(), 1);
        // This server hands out no task token.
        assert!(!mock.messages(&demo.codex_task)[0].content.contains("token"));
        // Usage per runtime (the task route tried once); no cancel-ack taken.
        assert_eq!(mock.calls_to(Endpoint::ReportTaskUsage).len(), 1);
        assert_eq!(mock.calls_to(Endpoint::ReportUsage).len(), 3);
        assert_eq!(mock.calls_to(Endpoint::AckCancel).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn demo_drains_the_queue_as_scripted_on_head() {
        let (demo, summary) = run_demo(ServerVersion::Head).await;
        assert_the_story(&demo, summary);
        let mock = &demo.mock;
        // Every claim carried a task token, and the agent got it.
        for task in [&demo.codex_task, &TaskId::new("44444444-4444-4444-8444-000000000001")] {
            let first = &mock.messages(task)[0].content;
            assert!(first.contains("acting with the task's token"), "{first}");
        }
        // HEAD has no pings.
        assert!(mock.calls_to(Endpoint::ReportPingResult).is_empty());
        // Usage per task, never per runtime.
        assert_eq!(mock.calls_to(Endpoint::ReportTaskUsage).len(), 3);
        assert!(mock.calls_to(Endpoint::ReportUsage).is_empty());
        // The cancelled task is acknowledged, once; as the Go daemon, without
        // the stopped run's error (noise on a cancelled run).
        let acks = mock.calls_to(Endpoint::AckCancel);
        let [multica::Call::AckCancel { task_id, ack }] = acks.as_slice() else { panic!("{acks:?}") };
        assert_eq!(task_id.as_str(), demo::CANCELLED_TASK);
        assert!(ack.error_message.is_empty(), "{ack:?}");
        // The user's model-list request was answered by the agent's hook.
        let [request] = mock.runtime_requests().try_into().unwrap();
        assert_eq!(request.status, "completed");
        let models = request.result.unwrap()["models"].clone();
        assert_eq!(models[0]["id"], "demo-1");
        // Claims carried skill references (the worker's capability); the
        // skills were fetched while the tasks prepared.
        assert!(!mock.calls_to(Endpoint::ResolveSkillBundles).is_empty());
        // The prepare lease was extended once per claim (the agent prepares nothing).
        assert_eq!(mock.calls_to(Endpoint::ExtendPrepareLease).len(), 5);
    }
}
