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

/// Runs the daemon until `shutdown` (or, with `exit_when_idle`, until the
/// queues drain), printing what happens; woken by `pushes` when the
/// server has a control channel.
pub async fn run(
    api: Arc<dyn DaemonApi>,
    pushes: Option<Pushes>,
    registration: Registration,
    config: WorkerConfig,
    agent_step: Duration,
    log: Log,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, WorkerError> {
    let mut worker = Worker::new(api, registration, SimulatedAgent { step: agent_step });
    if let Some(pushes) = pushes {
        worker = worker.wake_on(pushes);
    }
    worker.config(config).on_event(move |event| log.say(event)).run(shutdown).await
}
