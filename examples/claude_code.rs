//! A whole daemon for Claude Code: `claude` per task in stream-json, its text, thinking, tool calls
//! and results live, its result, session and usage reported. `cargo run --example claude_code --
//! --server URL --token T --workspace W [--once] [--command CMD]`: the server and token default to
//! MULTICA_SERVER_URL and MULTICA_TOKEN; without either, on the embedded fake with demo data.
use std::sync::Arc;

use multica::hyper::HyperClientBuilder;
use multica::layer::RetryPolicy;
use multica::mock::{MockDaemon, Seed};
use multica::worker::{agents::ClaudeCode, CommandAgent, Registration, Worker, WorkerConfig};
use multica::{DaemonApi, DaemonApiExt, RuntimeSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut flags, mut args) = (std::collections::HashMap::new(), std::env::args().skip(1));
    while let Some(flag) = args.next() {
        let value =
            if flag == "--once" { String::new() } else { args.next().ok_or(format!("{flag} needs a value"))? };
        flags.insert(flag, value);
    }
    let flag = |name: &str, default: &str| flags.get(name).cloned().unwrap_or_else(|| default.to_owned());
    let remote = flags.contains_key("--server") || std::env::var_os("MULTICA_SERVER_URL").is_some();
    let api: Arc<dyn DaemonApi> = if remote {
        // Configured from the environment as the Go daemon is; flags win.
        let flagged = [("--server", "MULTICA_SERVER_URL"), ("--token", "MULTICA_TOKEN")].into_iter();
        let vars = std::env::vars().chain(flagged.filter_map(|(f, var)| Some((var.into(), flags.get(f)?.clone()))));
        Arc::new(HyperClientBuilder::from_env_vars(vars)?.build()?.with_retry(RetryPolicy::default()))
    } else {
        Arc::new(MockDaemon::builder().seed(Seed::demo()).build()?)
    };
    let runtime = RuntimeSpec { provider: "claude".into(), ..RuntimeSpec::default() };
    let workspace = flag("--workspace", "11111111-1111-4111-8111-111111111111");
    let registration = Registration::new(workspace, flag("--daemon-id", "demo-daemon"), "claude-host", vec![runtime]);
    let agent = CommandAgent::new(flag("--command", "claude")).interpreter(ClaudeCode);
    let config = WorkerConfig { exit_when_idle: flags.contains_key("--once") || !remote, ..WorkerConfig::default() };
    let worker = Worker::new(api, registration, agent).config(config).on_event(|event| println!("{event}"));
    let summary = worker.run(async { tokio::signal::ctrl_c().await.unwrap_or_default() }).await?;
    println!("done: {summary}");
    Ok(())
}
