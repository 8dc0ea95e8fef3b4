//! `DaemonApiExt`: the typed calls and layer stacking, for every backend.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::call::Call;
use crate::dto::{
    AutopilotRunGcCheck, BatchClaimRequest, CancelAck, DaemonWorkspace, DeregisterRequest, FailureReason, GcCheck,
    HeartbeatRequest, HeartbeatResponse, IssueGcStatus, LocalDirectoryWait, LocalSkillsResult, ModelListResult,
    OrphanRecovery, PairingRequest, PairingSession, PingResult, RegisterRequest, RegisterResponse, RuntimeProfiles,
    SessionPin, SkillBundle, SkillBundleRequest, SkillImportResult, StoredTaskMessage, Task, TaskCompletion,
    TaskFailure, TaskGcCheck, TaskMessage, TaskProgress, TaskRecord, TaskStatus, TaskUsage, UpdateResult, UsageEntry,
    Workspace, WorkspaceRepos,
};
use crate::error::{Error, Result};
use crate::ids::{IssueId, PingId, RuntimeId, RuntimeRequestId, TaskId, WorkspaceId};
use crate::layer::{Retry, RetryPolicy, Timeout};
use crate::reply::Reply;
use crate::version::ServerVersion;
use crate::{DaemonApi, Endpoint};

/// What a caller uses: one typed method per route, and builder-style
/// stacking of [layers](crate::layer). Implemented for every [`DaemonApi`]
/// (`dyn DaemonApi` and `Arc<dyn DaemonApi>` included) and for nothing else,
/// so the typed methods always mean exactly one [`DaemonApi::call`].
///
/// Each typed method builds the [`Call`] (cloning its small arguments into
/// it: a call is owned, so that layers can repeat it and logs can keep it;
/// batches of messages and usage rows are shared `Arc`s, so repeating a
/// call never copies them), awaits
/// [`DaemonApi::call`] and unwraps the [`Reply`]; a reply of another shape
/// is [`Error::UnexpectedReply`]. Import this trait to call the API:
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::{DaemonApi, DaemonApiExt, Result, RuntimeId, Task};
///
/// async fn next_task(api: &dyn DaemonApi, runtime: &RuntimeId) -> Result<Option<Task>> {
///     api.claim_task(runtime).await
/// }
/// ```
///
/// The stacking methods wrap `self`, so the first call is the innermost
/// layer: write the timeout before the retry, so each attempt gets its own
/// deadline.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use std::sync::Arc;
/// use std::time::Duration;
/// use multica::layer::RetryPolicy;
/// use multica::{DaemonApi, DaemonApiExt};
///
/// fn stack(backend: Arc<dyn DaemonApi>) -> Arc<dyn DaemonApi> {
///     Arc::new(backend.with_timeout(Duration::from_secs(30)).with_retry(RetryPolicy::default()))
/// }
/// ```
pub trait DaemonApiExt: DaemonApi {
    /// Registers the daemon's runtimes in a workspace (upserted by workspace,
    /// daemon and provider). Fails with 404 `workspace not found` and 400 for
    /// a missing `daemon_id`, `workspace_id` or runtime.
    fn register(&self, request: &RegisterRequest) -> impl Future<Output = Result<RegisterResponse>> + Send {
        send(self, Call::Register(request.clone()), |reply| match reply {
            Reply::Registered(answer) => Some(answer),
            _ => None,
        })
    }

    /// Marks runtimes offline; unknown IDs are skipped. 400 when empty.
    fn deregister(&self, runtime_ids: &[RuntimeId]) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::Deregister { runtime_ids: runtime_ids.to_vec() }, done)
    }

    /// Marks a runtime online and hands out its oldest pending ping, once.
    fn send_heartbeat(&self, runtime_id: &RuntimeId) -> impl Future<Output = Result<HeartbeatResponse>> + Send {
        send(self, Call::SendHeartbeat { runtime_id: runtime_id.clone() }, |reply| match reply {
            Reply::Heartbeat(answer) => Some(answer),
            _ => None,
        })
    }

    /// Takes the runtime's next queued task (highest priority, then oldest),
    /// moving it to `dispatched`; `None` when nothing is queued or the
    /// runtime is unknown. Never retried once it may have reached the server.
    fn claim_task(&self, runtime_id: &RuntimeId) -> impl Future<Output = Result<Option<Task>>> + Send {
        send(self, Call::ClaimTask { runtime_id: runtime_id.clone() }, |reply| match reply {
            Reply::Claimed(task) => Some(task.map(|task| *task)),
            _ => None,
        })
    }

    /// The runtime's tasks that are queued or dispatched.
    fn list_pending_tasks(&self, runtime_id: &RuntimeId) -> impl Future<Output = Result<Vec<TaskRecord>>> + Send {
        send(self, Call::ListPendingTasks { runtime_id: runtime_id.clone() }, |reply| match reply {
            Reply::PendingTasks(records) => Some(records),
            _ => None,
        })
    }

    /// Upserts token usage rows by (runtime, date, provider, model).
    /// Takes the rows as [`report_task_messages`](DaemonApiExt::report_task_messages)
    /// takes messages.
    fn report_usage(
        &self,
        runtime_id: &RuntimeId,
        entries: impl Into<Arc<[UsageEntry]>>,
    ) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::ReportUsage { runtime_id: runtime_id.clone(), entries: entries.into() }, done)
    }

    /// Answers a ping handed out by a heartbeat.
    fn report_ping_result(
        &self,
        runtime_id: &RuntimeId,
        ping_id: &PingId,
        result: &PingResult,
    ) -> impl Future<Output = Result<()>> + Send {
        let call =
            Call::ReportPingResult { runtime_id: runtime_id.clone(), ping_id: ping_id.clone(), result: result.clone() };
        send(self, call, done)
    }

    /// The task's current status (to notice a cancellation). 404 `task not found`.
    fn get_task_status(&self, task_id: &TaskId) -> impl Future<Output = Result<TaskStatus>> + Send {
        send(self, Call::GetTaskStatus { task_id: task_id.clone() }, |reply| match reply {
            Reply::TaskStatus(status) => Some(status),
            _ => None,
        })
    }

    /// Moves a dispatched (or, at HEAD 1cc46b2697, waiting) task to
    /// `running`; 400 `start task: no rows in result set` otherwise
    /// ([`Error::is_task_state_conflict`]).
    fn start_task(&self, task_id: &TaskId) -> impl Future<Output = Result<()>> + Send {
        transition(self, Call::StartTask { task_id: task_id.clone() })
    }

    /// Reports step `step` of `total`.
    fn report_progress(&self, task_id: &TaskId, progress: &TaskProgress) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::ReportProgress { task_id: task_id.clone(), progress: progress.clone() }, done)
    }

    /// Moves a running task to `completed` with its output; an error for
    /// which [`Error::is_task_state_conflict`] holds otherwise, on both
    /// server versions.
    ///
    /// 3c93ebaf1c answers a task in another state with 400 `complete task:
    /// no rows in result set`; HEAD 1cc46b2697 answers 200 with the row
    /// unchanged. The returned row is read, and when its status shows the
    /// complete did not take effect (anything but `completed`, or `failed`
    /// by HEAD's routing of a context-overflow notice to fail) the answer
    /// becomes the 400 3c93ebaf1c gives, so one error means "the task had
    /// moved on" everywhere. A backend that answers [`Reply::Done`] instead
    /// of the row is taken at its word.
    fn complete_task(&self, task_id: &TaskId, completion: &TaskCompletion) -> impl Future<Output = Result<()>> + Send {
        transition(self, Call::CompleteTask { task_id: task_id.clone(), completion: completion.clone() })
    }

    /// Moves a dispatched or running (or, at HEAD 1cc46b2697, waiting) task
    /// to `failed`; an error for which [`Error::is_task_state_conflict`]
    /// holds otherwise, on both server versions: HEAD's 200 with an
    /// unchanged row that is not `failed` becomes 3c93ebaf1c's 400 `fail
    /// task: no rows in result set` (see
    /// [`complete_task`](DaemonApiExt::complete_task)).
    fn fail_task(&self, task_id: &TaskId, error: &str) -> impl Future<Output = Result<()>> + Send {
        transition(self, Call::FailTask { task_id: task_id.clone(), error: error.to_owned() })
    }

    /// Stores a batch of live-output messages. 404 `task not found` for a
    /// non-empty batch of an unknown task.
    ///
    /// The batch is shared, never copied on its way to the wire: a `Vec`,
    /// an array or an `Arc<[TaskMessage]>` moves into the [`Call`] as it
    /// is (a `&[TaskMessage]` is copied once, into the call), layers that
    /// repeat the call share it, and the transport serializes it from there.
    fn report_task_messages(
        &self,
        task_id: &TaskId,
        messages: impl Into<Arc<[TaskMessage]>>,
    ) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::ReportTaskMessages { task_id: task_id.clone(), messages: messages.into() }, done)
    }

    /// The task's stored messages by `seq` ascending.
    fn list_task_messages(&self, task_id: &TaskId) -> impl Future<Output = Result<Vec<StoredTaskMessage>>> + Send {
        send(self, Call::ListTaskMessages { task_id: task_id.clone() }, |reply| match reply {
            Reply::Messages(messages) => Some(messages),
            _ => None,
        })
    }

    /// The workspaces of the token's user (needs a token; 401 otherwise).
    fn list_workspaces(&self) -> impl Future<Output = Result<Vec<Workspace>>> + Send {
        send(self, Call::ListWorkspaces, |reply| match reply {
            Reply::Workspaces(workspaces) => Some(workspaces),
            _ => None,
        })
    }

    /// Opens a pairing session for a user to approve.
    fn create_pairing_session(&self, request: &PairingRequest) -> impl Future<Output = Result<PairingSession>> + Send {
        send(self, Call::CreatePairingSession(request.clone()), pairing)
    }

    /// Reads a pairing session.
    fn get_pairing_session(&self, token: &str) -> impl Future<Output = Result<PairingSession>> + Send {
        send(self, Call::GetPairingSession { token: token.to_owned() }, pairing)
    }

    /// Claims an approved pairing session.
    fn claim_pairing_session(&self, token: &str) -> impl Future<Output = Result<PairingSession>> + Send {
        send(self, Call::ClaimPairingSession { token: token.to_owned() }, pairing)
    }

    // ----- HEAD 1cc46b2697 bodies of 3c93ebaf1c routes ---------------------

    /// [`deregister`](DaemonApiExt::deregister) with HEAD 1cc46b2697's
    /// `offline_reasons`, stored with each runtime. Without reasons it sends
    /// exactly what `deregister` sends. 3c93ebaf1c ignores the reasons; a
    /// backend that does not know [`Call::DeregisterWith`] gets the plain
    /// deregister.
    fn deregister_with(&self, request: &DeregisterRequest) -> impl Future<Output = Result<()>> + Send {
        let plain = Call::Deregister { runtime_ids: request.runtime_ids.clone() };
        let call = if request.offline_reasons.is_empty() { None } else { Some(Call::DeregisterWith(request.clone())) };
        send_or_plain(self, call, plain, done)
    }

    /// [`send_heartbeat`](DaemonApiExt::send_heartbeat) with HEAD
    /// 1cc46b2697's `supports_batch_import`. Without it it sends exactly what
    /// `send_heartbeat` sends; 3c93ebaf1c ignores it; a backend that does not
    /// know [`Call::SendHeartbeatWith`] gets the plain heartbeat.
    fn send_heartbeat_with(
        &self,
        request: &HeartbeatRequest,
    ) -> impl Future<Output = Result<HeartbeatResponse>> + Send {
        let plain = Call::SendHeartbeat { runtime_id: request.runtime_id.clone() };
        let call = request.supports_batch_import.then(|| Call::SendHeartbeatWith(request.clone()));
        send_or_plain(self, call, plain, |reply| match reply {
            Reply::Heartbeat(answer) => Some(answer),
            _ => None,
        })
    }

    /// [`fail_task`](DaemonApiExt::fail_task) with HEAD 1cc46b2697's fields:
    /// the failure reason (which decides whether the server retries the
    /// task), the session to resume and the work directories.
    /// [`TaskFailure::new`] alone sends exactly what `fail_task` sends.
    /// 3c93ebaf1c ignores the HEAD fields; a backend that does not know
    /// [`Call::FailTaskWith`] gets the plain fail.
    ///
    /// A fail that does not take effect is an error as for
    /// [`fail_task`](DaemonApiExt::fail_task).
    fn fail_task_with(&self, task_id: &TaskId, failure: &TaskFailure) -> impl Future<Output = Result<()>> + Send {
        let plain = Call::FailTask { task_id: task_id.clone(), error: failure.error.clone() };
        let call = (*failure != TaskFailure::new(failure.error.as_str()))
            .then(|| Call::FailTaskWith { task_id: task_id.clone(), failure: failure.clone() });
        async move {
            if let Some(call) = call {
                match transition(self, call).await {
                    Err(err) if err.is_route_not_found() => {}
                    answer => return answer,
                }
            }
            transition(self, plain).await
        }
    }

    /// The task's stored messages with `seq > since`, by `seq` ascending.
    /// HEAD 1cc46b2697 filters on the server (`?since=`); 3c93ebaf1c ignores
    /// the query and a backend that does not know
    /// [`Call::ListTaskMessagesSince`] gets the plain listing: either way
    /// the messages are filtered here too, so every version answers the same.
    fn list_task_messages_since(
        &self,
        task_id: &TaskId,
        since: i64,
    ) -> impl Future<Output = Result<Vec<StoredTaskMessage>>> + Send {
        let call = Call::ListTaskMessagesSince { task_id: task_id.clone(), since };
        let plain = Call::ListTaskMessages { task_id: task_id.clone() };
        async move {
            let messages = send_or_plain(self, Some(call), plain, |reply| match reply {
                Reply::Messages(messages) => Some(messages),
                _ => None,
            })
            .await?;
            Ok(messages.into_iter().filter(|stored| stored.message.seq > since).collect())
        }
    }

    // ----- HEAD 1cc46b2697 routes (3c93ebaf1c: `404 page not found`) -------

    /// Claims up to `max_tasks` (at most 32) tasks across the daemon's
    /// runtimes in one call, each claim object carrying its `runtime_id`
    /// and `auth_token`; empty when nothing is queued. Never retried once it
    /// may have reached the server.
    fn claim_tasks(&self, request: &BatchClaimRequest) -> impl Future<Output = Result<Vec<Task>>> + Send {
        send(self, Call::ClaimTasks(request.clone()), |reply| match reply {
            Reply::ClaimedTasks(tasks) => Some(tasks),
            _ => None,
        })
    }

    /// Extends the prepare lease of a claimed task that has not started
    /// (`dispatched` or `waiting_local_directory`) to 45 s from now, so the
    /// server does not hand it out again while the daemon prepares it; 400
    /// `… no rows in result set` otherwise. Answers the task row.
    fn extend_prepare_lease(
        &self,
        runtime_id: &RuntimeId,
        task_id: &TaskId,
    ) -> impl Future<Output = Result<TaskRecord>> + Send {
        send(self, Call::ExtendPrepareLease { runtime_id: runtime_id.clone(), task_id: task_id.clone() }, task_record)
    }

    /// Fetches the content of skills a claim referenced
    /// ([`Task`]'s `agent.skill_refs`), while the task is dispatched or
    /// waiting (409 `task is not preparing` otherwise).
    fn resolve_skill_bundles(
        &self,
        runtime_id: &RuntimeId,
        task_id: &TaskId,
        request: &SkillBundleRequest,
    ) -> impl Future<Output = Result<Vec<SkillBundle>>> + Send {
        let call = Call::ResolveSkillBundles {
            runtime_id: runtime_id.clone(),
            task_id: task_id.clone(),
            request: request.clone(),
        };
        send(self, call, |reply| match reply {
            Reply::SkillBundles(bundles) => Some(bundles),
            _ => None,
        })
    }

    /// At daemon start-up: fails every in-flight task of the runtime with
    /// `runtime_recovery` (retryable, so retries are created).
    fn recover_orphans(&self, runtime_id: &RuntimeId) -> impl Future<Output = Result<OrphanRecovery>> + Send {
        send(self, Call::RecoverOrphans { runtime_id: runtime_id.clone() }, |reply| match reply {
            Reply::OrphansRecovered(recovery) => Some(recovery),
            _ => None,
        })
    }

    /// Answers a model-list request handed out by a heartbeat.
    fn report_model_list(
        &self,
        runtime_id: &RuntimeId,
        request_id: &RuntimeRequestId,
        result: &ModelListResult,
    ) -> impl Future<Output = Result<()>> + Send {
        let call = Call::ReportModelList {
            runtime_id: runtime_id.clone(),
            request_id: request_id.clone(),
            result: result.clone(),
        };
        send(self, call, done)
    }

    /// Answers a local-skills request handed out by a heartbeat.
    fn report_local_skills(
        &self,
        runtime_id: &RuntimeId,
        request_id: &RuntimeRequestId,
        result: &LocalSkillsResult,
    ) -> impl Future<Output = Result<()>> + Send {
        let call = Call::ReportLocalSkills {
            runtime_id: runtime_id.clone(),
            request_id: request_id.clone(),
            result: result.clone(),
        };
        send(self, call, done)
    }

    /// Answers a skill-import request handed out by a heartbeat.
    fn report_skill_import(
        &self,
        runtime_id: &RuntimeId,
        request_id: &RuntimeRequestId,
        result: &SkillImportResult,
    ) -> impl Future<Output = Result<()>> + Send {
        let call = Call::ReportSkillImport {
            runtime_id: runtime_id.clone(),
            request_id: request_id.clone(),
            result: result.clone(),
        };
        send(self, call, done)
    }

    /// Reports the progress of an update handed out by a heartbeat.
    fn report_update_result(
        &self,
        runtime_id: &RuntimeId,
        update_id: &RuntimeRequestId,
        result: &UpdateResult,
    ) -> impl Future<Output = Result<()>> + Send {
        let call = Call::ReportUpdateResult {
            runtime_id: runtime_id.clone(),
            update_id: update_id.clone(),
            result: result.clone(),
        };
        send(self, call, done)
    }

    /// Moves a dispatched task to `waiting_local_directory` (it waits for a
    /// local directory another task holds; lease 45 s); 400 otherwise.
    /// Answers the task row.
    fn wait_local_directory(
        &self,
        task_id: &TaskId,
        wait: &LocalDirectoryWait,
    ) -> impl Future<Output = Result<TaskRecord>> + Send {
        send(self, Call::WaitLocalDirectory { task_id: task_id.clone(), wait: wait.clone() }, task_record)
    }

    /// Reports the task's token usage per (provider, model), in any task
    /// status; a later report replaces the counts. Takes the rows as
    /// [`report_task_messages`](DaemonApiExt::report_task_messages) takes
    /// messages.
    fn report_task_usage(
        &self,
        task_id: &TaskId,
        usage: impl Into<Arc<[TaskUsage]>>,
    ) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::ReportTaskUsage { task_id: task_id.clone(), usage: usage.into() }, done)
    }

    /// Tells the server the daemon saw `cancelled` and stopped the run; on a
    /// cancelled task the non-empty values are recorded once.
    fn ack_cancel(&self, task_id: &TaskId, ack: &CancelAck) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::AckCancel { task_id: task_id.clone(), ack: ack.clone() }, done)
    }

    /// Pins the agent's session and work directory on the task, so it can
    /// be resumed; 400 when both are empty.
    fn pin_session(&self, task_id: &TaskId, pin: &SessionPin) -> impl Future<Output = Result<()>> + Send {
        send(self, Call::PinSession { task_id: task_id.clone(), pin: pin.clone() }, done)
    }

    /// Whether the task is finished, before deleting its work directory.
    fn get_task_gc_check(&self, task_id: &TaskId) -> impl Future<Output = Result<TaskGcCheck>> + Send {
        send(self, Call::GetTaskGcCheck { task_id: task_id.clone() }, |reply| match reply {
            Reply::TaskGcCheck(check) => Some(check),
            _ => None,
        })
    }

    /// The issue's status, before deleting a work directory of it; 404
    /// `issue not found`.
    fn get_issue_gc_check(&self, issue_id: &IssueId) -> impl Future<Output = Result<GcCheck>> + Send {
        send(self, Call::GetIssueGcCheck { issue_id: issue_id.clone() }, gc_check)
    }

    /// The chat session's status; 404 `chat session not found`.
    fn get_chat_session_gc_check(&self, session_id: &str) -> impl Future<Output = Result<GcCheck>> + Send {
        send(self, Call::GetChatSessionGcCheck { session_id: session_id.to_owned() }, gc_check)
    }

    /// The autopilot run's status; 404 `autopilot run not found`.
    fn get_autopilot_run_gc_check(&self, run_id: &str) -> impl Future<Output = Result<AutopilotRunGcCheck>> + Send {
        send(self, Call::GetAutopilotRunGcCheck { run_id: run_id.to_owned() }, |reply| match reply {
            Reply::AutopilotRunGcCheck(check) => Some(check),
            _ => None,
        })
    }

    /// The status of several issues of a workspace at once.
    fn check_issues_gc(
        &self,
        workspace_id: &WorkspaceId,
        issue_ids: &[IssueId],
    ) -> impl Future<Output = Result<Vec<IssueGcStatus>>> + Send {
        let call = Call::CheckIssuesGc { workspace_id: workspace_id.clone(), issue_ids: issue_ids.to_vec() };
        send(self, call, |reply| match reply {
            Reply::IssueGcChecks(issues) => Some(issues),
            _ => None,
        })
    }

    /// The workspaces the credential may act on, with any credential (a
    /// daemon token lists its own workspace; it cannot list
    /// [`list_workspaces`](DaemonApiExt::list_workspaces)).
    fn list_daemon_workspaces(&self) -> impl Future<Output = Result<Vec<DaemonWorkspace>>> + Send {
        send(self, Call::ListDaemonWorkspaces, |reply| match reply {
            Reply::DaemonWorkspaces(workspaces) => Some(workspaces),
            _ => None,
        })
    }

    /// The workspace's repositories and their version hash.
    fn get_workspace_repos(&self, workspace_id: &WorkspaceId) -> impl Future<Output = Result<WorkspaceRepos>> + Send {
        send(self, Call::GetWorkspaceRepos { workspace_id: workspace_id.clone() }, |reply| match reply {
            Reply::WorkspaceRepos(repos) => Some(repos),
            _ => None,
        })
    }

    /// The workspace's custom runtime profiles.
    fn list_runtime_profiles(
        &self,
        workspace_id: &WorkspaceId,
    ) -> impl Future<Output = Result<RuntimeProfiles>> + Send {
        send(self, Call::ListRuntimeProfiles { workspace_id: workspace_id.clone() }, |reply| match reply {
            Reply::RuntimeProfiles(profiles) => Some(profiles),
            _ => None,
        })
    }

    // ----- one client for both server versions -----------------------------

    /// Which server version answers, from one cheap request: the probe
    /// `GET /api/daemon/workspaces`, a route only HEAD 1cc46b2697 has (read
    /// by [`ServerVersion::from_probe`]: success, 401 or 403 is
    /// [`ServerVersion::Head`], `404 page not found` is
    /// [`ServerVersion::V3c93ebaf1c`]; a transport failure or 5xx is
    /// returned). Call it once (after the token is set) and keep the answer
    /// for the `*_on` helpers. A backend that does not know
    /// [`Call::ListDaemonWorkspaces`] reads as 3c93ebaf1c, which is what it
    /// serves.
    fn server_version(&self) -> impl Future<Output = Result<ServerVersion>> + Send {
        async move { ServerVersion::from_probe(self.call(Call::ListDaemonWorkspaces).await) }
    }

    /// Reports a task's token usage on either server version: at HEAD
    /// 1cc46b2697 [`report_task_usage`](DaemonApiExt::report_task_usage)
    /// (`POST /tasks/{taskId}/usage`, upserted per task, provider and
    /// model); at 3c93ebaf1c, which has only the runtime route,
    /// [`report_usage`](DaemonApiExt::report_usage) with one entry per
    /// usage row dated `date` (`YYYY-MM-DD`), upserted per runtime, date,
    /// provider and model, so there a later report of the same day replaces
    /// an earlier one (report the day's totals), and `cost_usd_ticks` is
    /// dropped (3c93ebaf1c has no cost). `date` is not sent at HEAD.
    fn report_task_usage_on(
        &self,
        version: ServerVersion,
        runtime_id: &RuntimeId,
        task_id: &TaskId,
        date: &str,
        usage: &[TaskUsage],
    ) -> impl Future<Output = Result<()>> + Send {
        let call = match version {
            ServerVersion::V3c93ebaf1c => Call::ReportUsage {
                runtime_id: runtime_id.clone(),
                entries: usage.iter().map(|row| UsageEntry::of_day(date, row)).collect(),
            },
            ServerVersion::Head => Call::ReportTaskUsage { task_id: task_id.clone(), usage: usage.into() },
        };
        send(self, call, done)
    }

    /// The workspaces the credential may act on, on either server version:
    /// at HEAD 1cc46b2697
    /// [`list_daemon_workspaces`](DaemonApiExt::list_daemon_workspaces)
    /// (any credential, a daemon token too); at 3c93ebaf1c
    /// [`list_workspaces`](DaemonApiExt::list_workspaces) (`GET
    /// /api/workspaces`, a user token), each reduced to its ID and name.
    fn list_workspaces_on(&self, version: ServerVersion) -> impl Future<Output = Result<Vec<DaemonWorkspace>>> + Send {
        async move {
            match version {
                ServerVersion::V3c93ebaf1c => {
                    Ok(self.list_workspaces().await?.into_iter().map(DaemonWorkspace::from).collect())
                }
                ServerVersion::Head => self.list_daemon_workspaces().await,
            }
        }
    }

    /// [`ack_cancel`](DaemonApiExt::ack_cancel) where the server has it:
    /// `true` when sent; `false` when the server has no such route
    /// (3c93ebaf1c, which expects no acknowledgement: nothing is lost).
    /// Needs no [`ServerVersion`]: the one request tells.
    fn ack_cancel_if_supported(&self, task_id: &TaskId, ack: &CancelAck) -> impl Future<Output = Result<bool>> + Send {
        async move {
            match self.ack_cancel(task_id, ack).await {
                Ok(()) => Ok(true),
                Err(err) if err.is_route_not_found() => Ok(false),
                Err(err) => Err(err),
            }
        }
    }

    /// [`extend_prepare_lease`](DaemonApiExt::extend_prepare_lease) where
    /// the server has it: the task row, or `None` when the server has no
    /// such route (3c93ebaf1c, which has no prepare lease and never hands a
    /// dispatched task out again). Needs no [`ServerVersion`].
    fn extend_prepare_lease_if_supported(
        &self,
        runtime_id: &RuntimeId,
        task_id: &TaskId,
    ) -> impl Future<Output = Result<Option<TaskRecord>>> + Send {
        async move {
            match self.extend_prepare_lease(runtime_id, task_id).await {
                Ok(record) => Ok(Some(record)),
                Err(err) if err.is_route_not_found() => Ok(None),
                Err(err) => Err(err),
            }
        }
    }

    /// Gives each call at most `per_call` ([`Timeout`]).
    fn with_timeout(self, per_call: Duration) -> Timeout<Self>
    where
        Self: Sized,
    {
        Timeout::new(self, per_call)
    }

    /// Repeats transient failures of calls safe to repeat ([`Retry`]).
    fn with_retry(self, policy: RetryPolicy) -> Retry<Self>
    where
        Self: Sized,
    {
        Retry::new(self, policy)
    }

    /// Opens one span per call ([`Tracing`](crate::layer::Tracing)).
    #[cfg(feature = "tracing")]
    fn with_tracing(self) -> crate::layer::Tracing<Self>
    where
        Self: Sized,
    {
        crate::layer::Tracing::new(self)
    }
}

impl<T: DaemonApi + ?Sized> DaemonApiExt for T {}

/// Sends `call` and takes the answer out of the reply with `pick`.
async fn send<A, T>(api: &A, call: Call, pick: fn(Reply) -> Option<T>) -> Result<T>
where
    A: DaemonApi + ?Sized,
{
    let endpoint = call.endpoint();
    pick(api.call(call).await?).ok_or(Error::UnexpectedReply { endpoint })
}

/// Sends `call` when there is one, else `plain`; when a backend answers
/// `call` as an unknown route (an in-process backend that does not know a
/// HEAD variant of a 3c93ebaf1c route), sends `plain` instead: the same
/// route without the HEAD fields, which 3c93ebaf1c ignores anyway.
async fn send_or_plain<A, T>(api: &A, call: Option<Call>, plain: Call, pick: fn(Reply) -> Option<T>) -> Result<T>
where
    A: DaemonApi + ?Sized,
{
    if let Some(call) = call {
        match send(api, call, pick).await {
            Err(err) if err.is_route_not_found() => {}
            answer => return answer,
        }
    }
    send(api, plain, pick).await
}

/// Sends a start, complete or fail and checks that it took effect: the
/// row's status is the one the call moves to (see
/// [`DaemonApiExt::complete_task`]); otherwise the 400 `<action> task: no
/// rows in result set` of server 3c93ebaf1c.
async fn transition<A>(api: &A, call: Call) -> Result<()>
where
    A: DaemonApi + ?Sized,
{
    let endpoint = call.endpoint();
    let path = call.path();
    match api.call(call).await? {
        Reply::Done => Ok(()),
        Reply::TaskRecord(record) if took_effect(endpoint, &record) => Ok(()),
        Reply::TaskRecord(_) => {
            let action = match endpoint {
                Endpoint::StartTask => "start",
                Endpoint::CompleteTask => "complete",
                _ => "fail",
            };
            let message = format!("{action} task: no rows in result set");
            Err(Error::from_server_message(endpoint.method(), path?, 400, &message))
        }
        _ => Err(Error::UnexpectedReply { endpoint }),
    }
}

/// Whether the row a start, complete or fail answered shows the move: the
/// target status, a complete that HEAD 1cc46b2697 turned into a fail (a
/// context-overflow notice), or a status this SDK does not know.
fn took_effect(endpoint: Endpoint, record: &TaskRecord) -> bool {
    match (&record.status, endpoint) {
        (TaskStatus::Other(_), _) => true,
        (TaskStatus::Running, Endpoint::StartTask) => true,
        (TaskStatus::Completed, Endpoint::CompleteTask) => true,
        (TaskStatus::Failed, Endpoint::CompleteTask) => record.failure_reason == FailureReason::ContextOverflow,
        (TaskStatus::Failed, Endpoint::FailTask) => true,
        _ => false,
    }
}

fn task_record(reply: Reply) -> Option<TaskRecord> {
    match reply {
        Reply::TaskRecord(record) => Some(*record),
        _ => None,
    }
}

fn gc_check(reply: Reply) -> Option<GcCheck> {
    match reply {
        Reply::GcCheck(check) => Some(check),
        _ => None,
    }
}

fn done(reply: Reply) -> Option<()> {
    matches!(reply, Reply::Done).then_some(())
}

fn pairing(reply: Reply) -> Option<PairingSession> {
    match reply {
        Reply::PairingSession(session) => Some(*session),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use tokio::time::Instant;

    use super::*;
    use crate::test_double::{Outcome, ScriptedApi};
    use crate::{Endpoint, RuntimeId};

    #[tokio::test(start_paused = true)]
    async fn a_timeout_inside_a_retry_gives_each_attempt_its_own_deadline_over_a_dyn_backend() {
        let backend = ScriptedApi::new();
        backend.script(Endpoint::SendHeartbeat, [Outcome::Delay(Duration::from_secs(60))]);
        let shared: Arc<dyn DaemonApi> = Arc::new(backend.clone());
        let policy =
            RetryPolicy { initial_backoff: Duration::from_secs(1), full_jitter: false, ..RetryPolicy::default() };
        let api: Arc<dyn DaemonApi> = Arc::new(shared.with_timeout(Duration::from_secs(2)).with_retry(policy));
        let origin = Instant::now();

        assert!(api.send_heartbeat(&RuntimeId::new("rt-1")).await.is_ok());
        // The hung first attempt timed out at 2 s, the retry after 1 s more succeeded.
        assert_eq!(origin.elapsed(), Duration::from_secs(3));
        assert_eq!(backend.count(Endpoint::SendHeartbeat), 2);
    }

    /// A backend that answers every call with the same reply.
    #[derive(Debug)]
    struct Always(Reply);

    #[async_trait::async_trait]
    impl DaemonApi for Always {
        async fn call(&self, _call: Call) -> Result<Reply> {
            Ok(self.0.clone())
        }
    }

    #[tokio::test]
    async fn a_reply_of_the_wrong_shape_is_a_typed_error_naming_the_route() {
        let api: Arc<dyn DaemonApi> = Arc::new(Always(Reply::Done));
        let err = api.claim_task(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(matches!(err, Error::UnexpectedReply { endpoint: Endpoint::ClaimTask }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "POST /api/daemon/runtimes/{runtimeId}/tasks/claim: the backend answered with a reply of another route"
        );
        assert!(api.start_task(&crate::TaskId::new("t-1")).await.is_ok(), "Done is the answer of start");

        let workspaces = Always(Reply::Workspaces(Vec::new()));
        assert!(matches!(workspaces.start_task(&crate::TaskId::new("t-1")).await, Err(Error::UnexpectedReply { .. })));
        assert_eq!(workspaces.list_workspaces().await.unwrap(), Vec::new());
    }

    #[tokio::test]
    async fn typed_methods_send_the_call_of_their_route_with_their_arguments() {
        let backend = ScriptedApi::new();
        let api: &dyn DaemonApi = &backend;
        let task = crate::TaskId::new("t-1");
        api.fail_task(&task, "boom").await.unwrap();
        api.report_task_messages(&task, []).await.unwrap();
        assert_eq!(api.get_task_status(&task).await.unwrap(), crate::TaskStatus::Running);
        assert_eq!(
            backend.calls(),
            [
                Call::FailTask { task_id: task.clone(), error: "boom".into() },
                Call::ReportTaskMessages { task_id: task.clone(), messages: Arc::from([]) },
                Call::GetTaskStatus { task_id: task },
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_inside_a_timeout_is_cut_by_the_one_deadline() {
        let backend = ScriptedApi::new();
        backend.script(Endpoint::SendHeartbeat, [Outcome::Delay(Duration::from_secs(60))]);
        let api = backend.clone().with_retry(RetryPolicy::default()).with_timeout(Duration::from_secs(2));

        let err = api.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(err.is_timeout());
        assert_eq!(backend.count(Endpoint::SendHeartbeat), 1);
    }
}
