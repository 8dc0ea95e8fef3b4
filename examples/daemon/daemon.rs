//! The daemon: the SDK's worker with the simulated agent, its events
//! printed as a log.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use multica::hyper::ws::Pushes;
use multica::worker::{Registration, Summary, Worker, WorkerConfig, WorkerError};
use multica::DaemonApi;
use tokio::time::Instant;

use crate::agent::SimulatedAgent;

/// Prints a line with the time since the daemon started.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    started: Instant,
}

impl Log {
    pub fn new() -> Self {
        Self { started: Instant::now() }
    }

    pub fn say(&self, line: impl std::fmt::Display) {
        println!("[{:>6.2}s] {line}", self.started.elapsed().as_secs_f64());
    }
}

/// Runs the daemon until `signal()` resolves (or, with `exit_when_idle`,
/// until the queues drain), printing what happens; a second `signal()`
/// ends the shutdown's grace period at once. Woken by `pushes` when the
/// server has a control channel.
pub async fn run<S: Future<Output = ()>>(
    api: Arc<dyn DaemonApi>,
    pushes: Option<Pushes>,
    registration: Registration,
    config: WorkerConfig,
    agent_step: Duration,
    log: Log,
    signal: impl FnMut() -> S,
) -> Result<Summary, WorkerError> {
    let mut worker = Worker::new(api, registration, SimulatedAgent { step: agent_step });
    if let Some(pushes) = pushes {
        worker = worker.wake_on(pushes);
    }
    worker.config(config).on_event(move |event| log.say(event)).run_with_signal(signal).await
}
