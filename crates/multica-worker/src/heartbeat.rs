//! Heartbeats of every runtime, the answers to the pings and runtime
//! requests they hand out, and registering again when the server has
//! forgotten a runtime.

use std::sync::Arc;

use multica_api::{DaemonApiExt, Error, HeartbeatRequest, PingId, PingResult, Runtime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{self, Instant};

use crate::backoff;
use crate::event::WorkerEvent;
use crate::runtime_request;
use crate::worker::{self, Shared};

/// Heartbeats every runtime each interval (the first round at once) until
/// `stopped`; a 401 is sent on `unauthorized` and ends the loop.
pub(crate) async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>, unauthorized: mpsc::Sender<Error>) {
    let config = &shared.config;
    let mut failures = 0u32;
    let mut answers = JoinSet::new();
    loop {
        while answers.try_join_next().is_some() {}
        match round(&shared, &mut answers, failures + 1).await {
            Ok(()) => failures = 0,
            Err(Some(error)) => {
                let _ = unauthorized.try_send(error);
                break;
            }
            Err(None) => {
                failures += 1;
                if failures >= config.heartbeat_failures_before_reset {
                    // A stale pooled socket must not delay recovery.
                    shared.api.drop_idle_connections();
                    shared.events.emit(WorkerEvent::ConnectionsReset { in_a_row: failures });
                }
            }
        }
        let wait = backoff::delay(config.heartbeat_interval, failures, config.max_backoff);
        tokio::select! {
            () = time::sleep(wait) => {}
            _ = stopped.changed() => break,
        }
    }
    // Answers already under way may finish (a user waits on them), within the cancel grace.
    let finishing = async { while answers.join_next().await.is_some() {} };
    let _ = time::timeout(config.cancel_grace, finishing).await;
    answers.shutdown().await;
}

/// One heartbeat of each runtime (`in_a_row`: the failed rounds this one
/// would make). `Err(Some(401))` stops the worker;
/// `Err(None)` is a round with a failure (a runtime the server forgot
/// counts until it is registered again).
async fn round(shared: &Arc<Shared>, answers: &mut JoinSet<()>, in_a_row: u32) -> Result<(), Option<Error>> {
    let mut failed = false;
    let mut gone = false;
    for runtime in shared.runtimes() {
        // The worker takes skill imports in batches (HEAD 1cc46b2697; 3c93ebaf1c ignores it).
        let request = HeartbeatRequest { runtime_id: runtime.id.clone(), supports_batch_import: true };
        match shared.api.send_heartbeat_with(&request).await {
            Ok(answer) => {
                runtime_request::dispatch(shared, answers, &runtime, &answer);
                if let Some(ping) = answer.pending_ping {
                    answers.spawn(answer_ping(Arc::clone(shared), runtime, ping.id));
                }
            }
            Err(error) if error.is_unauthorized() => {
                shared.events.emit(WorkerEvent::HeartbeatFailed {
                    runtime_id: runtime.id,
                    error: error.clone(),
                    in_a_row,
                });
                return Err(Some(error));
            }
            Err(error) if error.is_runtime_not_found() => {
                shared.events.emit(WorkerEvent::RuntimeGone { runtime_id: runtime.id });
                gone = true;
            }
            Err(error) => {
                shared.events.emit(WorkerEvent::HeartbeatFailed { runtime_id: runtime.id, error, in_a_row });
                failed = true;
            }
        }
    }
    if gone {
        match shared.register().await {
            Ok(runtimes) => {
                runtimes.iter().for_each(|runtime| {
                    shared.events.emit(WorkerEvent::ReRegistered { runtime: runtime.clone() });
                });
                // The Go daemon's rule: what the forgotten runtime had in flight is an orphan.
                worker::recover_orphans(shared, &runtimes).await;
            }
            Err(error) if error.is_unauthorized() => return Err(Some(error)),
            Err(error) => {
                shared.events.emit(WorkerEvent::ReRegisterFailed { error });
                failed = true;
            }
        }
    }
    if failed {
        Err(None)
    } else {
        Ok(())
    }
}

/// Hands a ping to the agent and reports what it answered and how long it took.
async fn answer_ping(shared: Arc<Shared>, runtime: Runtime, ping_id: PingId) {
    let started = Instant::now();
    let answer = shared.agent.ping(&runtime).await;
    let took = started.elapsed();
    let result = match &answer {
        Ok(output) => PingResult::completed(output.clone(), took),
        Err(why) => PingResult::failed(why.clone(), took),
    };
    match shared.api.report_ping_result(&runtime.id, &ping_id, &result).await {
        Ok(()) => {
            shared.events.emit(WorkerEvent::PingAnswered { runtime_id: runtime.id, ping_id, ok: answer.is_ok(), took })
        }
        Err(error) => shared.events.emit(WorkerEvent::PingReportFailed { runtime_id: runtime.id, error }),
    }
}
