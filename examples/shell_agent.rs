//! A real daemon in 40 lines: runs a shell command per task, its stdout
//! streamed line by line. `cargo run --example shell_agent -- --server URL
//! --token T --workspace W [--daemon-id D] [--once] [--command 'make fix']`;
//! without `--server`, on the embedded fake with demo data.
use std::sync::Arc;

use multica::hyper::{HyperClient, WsFirst};
use multica::mock::{MockDaemon, Seed};
use multica::worker::{CommandAgent, Registration, Worker, WorkerConfig};
use multica::{DaemonApi, RuntimeSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut flags = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value =
            if flag == "--once" { String::new() } else { args.next().ok_or(format!("{flag} needs a value"))? };
        flags.insert(flag, value);
    }
    let flag = |name: &str, default: &str| flags.get(name).cloned().unwrap_or_else(|| default.to_owned());
    // On a server with the daemon WebSocket, heartbeats, claims and
    // wake-ups go over it; on one without, everything goes over HTTP.
    let (api, pushes): (Arc<dyn DaemonApi>, _) = match flags.get("--server") {
        Some(server) => {
            let api = WsFirst::new(HyperClient::builder(server.as_str()).token(flag("--token", "")).build()?);
            let pushes = api.pushes();
            (Arc::new(api), Some(pushes))
        }
        None => (Arc::new(MockDaemon::builder().seed(Seed::demo()).build()?), None),
    };
    let runtime = RuntimeSpec { provider: "claude".into(), ..RuntimeSpec::default() };
    let registration = Registration::new(
        flag("--workspace", "11111111-1111-4111-8111-111111111111"),
        flag("--daemon-id", "demo-daemon"),
        "shell-agent-host",
        vec![runtime],
    );
    let agent = CommandAgent::new("sh").args(["-c", &flag("--command", "echo working on $MULTICA_TASK_ID")]);
    let config = WorkerConfig {
        exit_when_idle: flags.contains_key("--once") || !flags.contains_key("--server"),
        ..WorkerConfig::default()
    };
    let mut worker = Worker::new(api, registration, agent);
    if let Some(pushes) = pushes {
        worker = worker.wake_on(pushes);
    }
    let summary = worker
        .config(config)
        .on_event(|event| println!("{event}"))
        .run(async { tokio::signal::ctrl_c().await.unwrap_or_default() })
        .await?;
    println!("done: {summary}");
    Ok(())
}
