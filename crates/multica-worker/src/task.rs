//! One claimed task, from start to its final call.

use std::sync::{Arc, Mutex, PoisonError};

use multica_api::reporter::TaskMessageReporter;
use multica_api::{
    CancelAck, DaemonApiExt, Endpoint, FailureReason, SessionPin, Task, TaskFailure, TaskId, TaskStatus,
};
use tokio::sync::watch;
use tokio::time::{self, Instant};

use crate::agent::{AgentOutcome, CancelReason, TaskContext};
use crate::event::WorkerEvent;
use crate::prepare::{self, Prepared};
use crate::routes::LaterRoute;
use crate::usage::TaskUsageSums;
use crate::worker::Shared;

/// Runs one claimed task to its end: preparation (with its lease kept
/// alive), start (a failed start fails the task), the agent with a status
/// watch, then complete, fail, or for a cancelled task nothing but the
/// acknowledgement the server may want.
pub(crate) async fn run(shared: Arc<Shared>, task: Task, cancel_all: watch::Receiver<Option<CancelReason>>) {
    #[cfg(feature = "tracing")]
    let span = tracing::info_span!("task", task_id = %task.record.id);
    let work = supervise(&shared, task, cancel_all);
    #[cfg(feature = "tracing")]
    let work = tracing::Instrument::instrument(work, span);
    work.await;
}

async fn supervise(shared: &Arc<Shared>, mut task: Task, mut cancel_all: watch::Receiver<Option<CancelReason>>) {
    let api = &shared.api;
    let events = &shared.events;
    let task_id = task.record.id.clone();
    // The agent's credential travels beside the task, not inside it.
    let auth_token = task.auth_token.take().filter(|token| !token.is_empty());
    let pinned = Arc::new(Mutex::new(SessionPin::default()));
    let skills = match prepare::run(shared, &task, &mut cancel_all).await {
        Prepared::Ready(skills) => skills,
        Prepared::Failed(failure) => return report(shared, &task_id, AgentOutcome::Failed(failure), &pinned).await,
        Prepared::Cancelled(acknowledge) => {
            return cancelled(shared, task_id, acknowledge.then(CancelAck::default)).await;
        }
    };
    match start(shared, &task_id).await {
        Start::Started => {}
        Start::Cancelled(acknowledge) => {
            return cancelled(shared, task_id, acknowledge.then(CancelAck::default)).await;
        }
        Start::Ended(error) => return events.emit(WorkerEvent::StartFailed { task_id: task_id.clone(), error }),
        Start::Failed(error) => {
            let reason = format!("the daemon could not start the task: {}", error.display_chain());
            events.emit(WorkerEvent::StartFailed { task_id: task_id.clone(), error });
            return report(shared, &task_id, AgentOutcome::failed(reason), &pinned).await;
        }
    }
    events.emit(WorkerEvent::Started { task_id: task_id.clone() });

    let reporter = TaskMessageReporter::start(Arc::clone(api), task_id.clone(), shared.config.reporter.clone());
    let (signal, cancel) = watch::channel(None);
    let runtime_provider = shared.provider_of(&task.record.runtime_id);
    let context = TaskContext {
        task,
        messages: reporter.sink(),
        cancel,
        api: Arc::clone(api),
        events: Arc::clone(events),
        routes: Arc::clone(&shared.routes),
        auth_token,
        skills,
        pinned: Arc::clone(&pinned),
        runtime_provider,
        usage: TaskUsageSums::default(),
        daily: Arc::clone(&shared.daily_usage),
        retry: shared.config.call_retry,
    };
    let agent = Arc::clone(&shared.agent);
    let mut agent_run = agent.run(context);
    let interval = shared.config.status_interval;
    let mut next_check = Instant::now() + interval;
    let deadline = shared.config.task_timeout.map(|limit| Instant::now() + limit);
    let mut cancelled: Option<(CancelReason, Instant)> = None;
    // Whether the server said `cancelled` (not: the task is gone).
    let mut acknowledge = false;
    let outcome = loop {
        let give_up = cancelled.map(|(_, at)| at + shared.config.cancel_grace);
        tokio::select! {
            outcome = &mut agent_run => break Some(outcome),
            () = time::sleep_until(next_check), if cancelled.is_none() => {
                next_check = Instant::now() + interval;
                match api.get_task_status(&task_id).await {
                    Ok(TaskStatus::Cancelled) => {
                        acknowledge = true;
                        cancelled = Some(stop(shared, &signal, &task_id, CancelReason::Server));
                    }
                    // The task is gone, so nobody will take its result.
                    Err(error) if error.is_task_not_found() => {
                        cancelled = Some(stop(shared, &signal, &task_id, CancelReason::Server));
                    }
                    Ok(_) => {}
                    Err(error) => events.emit(WorkerEvent::StatusCheckFailed { task_id: task_id.clone(), error }),
                }
            }
            () = time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() && cancelled.is_none() => {
                cancelled = Some(stop(shared, &signal, &task_id, CancelReason::Timeout));
            }
            Ok(()) = cancel_all.changed(), if cancelled.is_none() => {
                if let Some(reason) = *cancel_all.borrow_and_update() {
                    cancelled = Some(stop(shared, &signal, &task_id, reason));
                }
            }
            () = time::sleep_until(give_up.unwrap_or_else(Instant::now)), if give_up.is_some() => {
                events.emit(WorkerEvent::AgentAbandoned { task_id: task_id.clone() });
                break None;
            }
        }
    };
    drop(agent_run);
    let streamed = reporter.finish().await;
    events.emit(WorkerEvent::Streamed { task_id: task_id.clone(), stats: streamed.stats });

    let outcome = match (cancelled.map(|(reason, _)| reason), outcome) {
        (Some(CancelReason::Server), outcome) => {
            let ack = acknowledge.then(|| stopped_with(outcome));
            return self::cancelled(shared, task_id, ack).await;
        }
        // An agent that completed despite the signal keeps its result.
        (Some(_), Some(AgentOutcome::Completed(completion))) => AgentOutcome::Completed(completion),
        (Some(reason), outcome) => {
            let (error, failure_reason) = match reason {
                CancelReason::Timeout => {
                    let limit = shared.config.task_timeout.unwrap_or_default().as_secs();
                    (format!("the task timed out after {limit} s"), FailureReason::Timeout)
                }
                // The Go daemon's reason for a run its shutdown ended.
                _ => ("the daemon shut down before the task finished".to_owned(), FailureReason::Cancelled),
            };
            let mut failure = match outcome {
                Some(AgentOutcome::Failed(failure)) => TaskFailure {
                    error: format!("{error}: {}", failure.error),
                    failure_reason: FailureReason::default(),
                    ..failure
                },
                _ => TaskFailure::new(error),
            };
            failure.failure_reason = failure_reason;
            AgentOutcome::Failed(failure)
        }
        (None, Some(outcome)) => outcome,
        (None, None) => return,
    };
    // A cancellation may have come after the last check: its result would be refused.
    if let Ok(TaskStatus::Cancelled) = api.get_task_status(&task_id).await {
        return self::cancelled(shared, task_id, Some(stopped_with(Some(outcome)))).await;
    }
    report(shared, &task_id, outcome, &pinned).await;
}

/// How starting a task went.
enum Start {
    /// The task runs.
    Started,
    /// The server cancelled it (`true`) or forgot it (`false`).
    Cancelled(bool),
    /// It ended meanwhile (the server failed it): nothing to report.
    Ended(multica_api::Error),
    /// It cannot start: fail it.
    Failed(multica_api::Error),
}

/// Starts the task, settling every failure from the task's status: a start
/// whose answer was lost finds the task `running` (started), a cancelled or
/// deleted task ends so; while the task is still waiting to start, a
/// transient failure is tried again (the start is not repeated blindly: a
/// repeat of a start that landed is refused).
async fn start(shared: &Shared, task_id: &TaskId) -> Start {
    let retry = &shared.config.call_retry;
    let began = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match shared.api.start_task(task_id).await {
            Ok(()) => return Start::Started,
            Err(error) => error,
        };
        match shared.api.get_task_status(task_id).await {
            Ok(TaskStatus::Running) => return Start::Started,
            Ok(TaskStatus::Cancelled) => return Start::Cancelled(true),
            Ok(TaskStatus::Completed | TaskStatus::Failed) => return Start::Ended(error),
            Err(gone) if gone.is_task_not_found() => return Start::Cancelled(false),
            _ => {}
        }
        if !error.is_transient() {
            return Start::Failed(error);
        }
        match retry.next_wait(attempts, &error, began.elapsed()) {
            Some(wait) => {
                shared.events.emit(WorkerEvent::StartRetrying { task_id: task_id.clone(), error, wait });
                time::sleep(wait).await;
            }
            None => return Start::Failed(error),
        }
    }
}

/// What the acknowledgement of a cancellation records, as the Go daemon
/// sends it: the branch and durable work directory the agent left; an
/// error and reason only for a local directory it could not finish
/// (`local_directory_error`), since other errors of a stopped run are
/// expected noise.
fn stopped_with(outcome: Option<AgentOutcome>) -> CancelAck {
    match outcome {
        Some(AgentOutcome::Failed(failure)) => {
            let kept = failure.failure_reason == FailureReason::LocalDirectoryError;
            CancelAck {
                branch_name: failure.branch_name,
                durable_work_dir: failure.durable_work_dir,
                error_message: if kept { failure.error } else { String::new() },
                failure_reason: if kept { failure.failure_reason } else { FailureReason::default() },
            }
        }
        Some(AgentOutcome::Completed(completion)) => CancelAck {
            branch_name: completion.branch_name,
            durable_work_dir: completion.durable_work_dir,
            ..CancelAck::default()
        },
        None => CancelAck::default(),
    }
}

/// The outcome with the session the agent pinned while it ran, where the
/// outcome names none of its own.
fn with_pinned(outcome: AgentOutcome, pinned: &Mutex<SessionPin>) -> AgentOutcome {
    let pinned = pinned.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let fill = |field: &mut String, pinned: &str| {
        if field.is_empty() {
            *field = pinned.to_owned();
        }
    };
    match outcome {
        AgentOutcome::Completed(mut completion) => {
            fill(&mut completion.session_id, &pinned.session_id);
            fill(&mut completion.work_dir, &pinned.work_dir);
            AgentOutcome::Completed(completion)
        }
        AgentOutcome::Failed(mut failure) => {
            fill(&mut failure.session_id, &pinned.session_id);
            fill(&mut failure.work_dir, &pinned.work_dir);
            AgentOutcome::Failed(failure)
        }
    }
}

/// Ends a task the server cancelled, once its agent has stopped (or never
/// ran): nothing is reported, and a cancellation the server still knows of
/// (`ack`: not one of a task that is gone) is acknowledged where the server
/// takes that (HEAD 1cc46b2697).
async fn cancelled(shared: &Shared, task_id: TaskId, ack: Option<CancelAck>) {
    if let Some(ack) = ack.filter(|_| shared.routes.may_have(LaterRoute::CancelAck)) {
        let retry = &shared.config.call_retry;
        match retry.run(Endpoint::AckCancel, || shared.api.ack_cancel_if_supported(&task_id, &ack)).await {
            Ok(true) => shared.events.emit(WorkerEvent::CancelAcknowledged { task_id: task_id.clone() }),
            // Server 3c93ebaf1c wants no acknowledgement.
            Ok(false) => shared.routes.lacks(LaterRoute::CancelAck),
            Err(error) => shared.events.emit(WorkerEvent::CancelAckFailed { task_id: task_id.clone(), error }),
        }
    }
    shared.events.emit(WorkerEvent::Cancelled { task_id });
}

/// Signals the agent to stop; returns the reason and when.
fn stop(
    shared: &Shared,
    signal: &watch::Sender<Option<CancelReason>>,
    task_id: &TaskId,
    reason: CancelReason,
) -> (CancelReason, Instant) {
    signal.send_replace(Some(reason));
    shared.events.emit(WorkerEvent::CancelSignalled { task_id: task_id.clone(), reason });
    (reason, Instant::now())
}

/// Completes or fails the task, on the configured retry schedule. A task
/// cancelled since the last status check refuses the result (a state
/// conflict on either server): it ends as cancelled.
async fn report(shared: &Shared, task_id: &TaskId, outcome: AgentOutcome, pinned: &Mutex<SessionPin>) {
    let api = &shared.api;
    let retry = &shared.config.result_retry;
    let outcome = with_pinned(outcome, pinned);
    let ack = stopped_with(Some(outcome.clone()));
    let (sent, event) = match outcome {
        AgentOutcome::Completed(completion) => {
            let sent = retry.run(Endpoint::CompleteTask, || api.complete_task(task_id, &completion)).await;
            (sent, WorkerEvent::Completed { task_id: task_id.clone() })
        }
        AgentOutcome::Failed(failure) => {
            let sent = retry.run(Endpoint::FailTask, || api.fail_task_with(task_id, &failure)).await;
            let event = WorkerEvent::Failed {
                task_id: task_id.clone(),
                reason: failure.error,
                failure_reason: failure.failure_reason,
            };
            (sent, event)
        }
    };
    let Err(error) = sent else {
        return shared.events.emit(event);
    };
    // Settled from the status: a lost answer of a report that landed (a
    // repeat of it is refused), a cancellation since the last check.
    match api.get_task_status(task_id).await {
        Ok(TaskStatus::Cancelled) => cancelled(shared, task_id.clone(), Some(ack)).await,
        Ok(TaskStatus::Completed) if matches!(event, WorkerEvent::Completed { .. }) => shared.events.emit(event),
        Ok(TaskStatus::Failed) if matches!(event, WorkerEvent::Failed { .. }) => shared.events.emit(event),
        _ => shared.events.emit(WorkerEvent::ReportFailed { task_id: task_id.clone(), error }),
    }
}
