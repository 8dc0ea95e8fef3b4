//! The Multica daemon loop as a library.
//!
//! A [`Worker`] is a whole daemon written only against
//! [`DaemonApi`](multica_api::DaemonApi), so it runs on the hyper client, the
//! fake or any layer stack: it registers, heartbeats every runtime and
//! answers pings, claims round-robin while a slot is free, runs an
//! [`Agent`] per task with live output, progress and a cancellation signal,
//! watches each task's status so a cancellation reaches the agent, reports
//! the result (with the Go daemon's retry schedule), and on shutdown stops
//! claiming, gives running tasks a grace period, cancels and fails what is
//! left and deregisters. It reacts to the server as the Go daemon does: a
//! runtime the server forgot is registered again, a 401 stops the worker with
//! [`WorkerError::Unauthorized`], other failures back off (capped, jittered).
//!
//! Runs on server 3c93ebaf1c and on today's (HEAD 1cc46b2697) alike. Where
//! HEAD has more, the worker uses it: it extends a claimed task's prepare
//! lease while the task prepares ([`Agent::prepare`]), acknowledges a
//! cancellation once the agent has stopped, reports usage per task (per
//! runtime on 3c93ebaf1c) and hands the
//! claim's token to the agent ([`TaskContext::auth_token`], the command
//! agent's `MULTICA_TOKEN`). A route the server answers with the router's
//! 404 is one it lacks: the worker stops calling it, and counts no error.
//!
//! For today's server it also does what the Go daemon does: it answers the
//! runtime requests a heartbeat hands out through the [`Agent`] hooks
//! ([`Agent::list_models`] and the rest; by default "not supported"),
//! recovers what a killed process left in flight at start-up
//! ([`WorkerEvent::OrphansRecovered`]), resolves a claim's skill references
//! while the task prepares and caches them by hash ([`TaskContext::skills`];
//! announce [`Worker::CAPABILITIES`] from the client), sends failure reasons
//! in the server's terms ([`AgentOutcome::failed_with`], `timeout` past
//! [`WorkerConfig::task_timeout`], `cancelled` at shutdown), settles a start
//! or a result whose answer was lost from the task's status, adds usage up
//! ([`TaskContext::report_usage`]) and lets the agent pin its session
//! ([`TaskContext::pin_session`]).
//!
//! Everything that happens is a [`WorkerEvent`], for a CLI to print and a
//! test to assert; the run ends with a [`Summary`]. [`CommandAgent`] runs a
//! program per task, its output read by an [`Interpreter`]: plain text by
//! default, or a real coding agent from [`agents`] (Claude Code, Codex, ACP
//! agents), each run as the Go daemon runs it.
//!
//! ```no_run
//! # mod multica { pub use multica_api::*; pub mod worker { pub use multica_worker::*; } }
//! use std::sync::Arc;
//! use multica::{DaemonApi, RuntimeSpec};
//! use multica::worker::{CommandAgent, Registration, Worker};
//!
//! async fn daemon(api: Arc<dyn DaemonApi>) -> Result<(), multica::worker::WorkerError> {
//!     let registration = Registration::new("workspace-id", "my-daemon", "laptop", vec![RuntimeSpec {
//!         provider: "claude".into(),
//!         ..RuntimeSpec::default()
//!     }]);
//!     let agent = CommandAgent::new("sh").args(["-c", "echo working on $MULTICA_TASK_ID"]);
//!     let summary = Worker::new(api, registration, agent)
//!         .on_event(|event| println!("{event}"))
//!         .run(async { let _ = tokio::signal::ctrl_c().await; })
//!         .await?;
//!     println!("done: {summary}");
//!     Ok(())
//! }
//! ```

mod agent;
pub mod agents;
mod backoff;
mod command;
mod config;
mod event;
mod heartbeat;
mod lease;
mod prepare;
mod routes;
mod runtime_request;
mod skills;
mod task;
mod usage;
mod wake;
mod worker;

pub use agent::{Agent, AgentOutcome, CancelReason, TaskContext};
pub use command::{AgentEvent, CommandAgent, Interpreter, LineParser, PlainText, ProcessExit, RunInput};
pub use config::{Registration, WorkerConfig};
pub use event::{short_id, Summary, WorkerEvent};
/// The failure of a task in the server's terms, as [`AgentOutcome::Failed`] carries it.
pub use multica_api::{FailureReason, TaskFailure};
pub use runtime_request::{ImportedSkill, ModelCatalog, RuntimeAnswer, RuntimeRequestKind};
pub use skills::AgentSkill;
pub use wake::CHANNEL_POLL_INTERVAL;
pub use worker::{Worker, WorkerError};
