//! The routes server HEAD 1cc46b2697 added (contract §6.4-§6.22): batch
//! claim, prepare lease, skill bundles, orphan recovery, runtime-request
//! results, waiting for a local directory, task usage, cancel-ack, the
//! session pin, garbage-collection checks and the daemon's workspace routes.

use multica_api::{
    BatchClaimRequest, CancelAck, DaemonWorkspace, IssueGcStatus, LocalDirectoryWait, OrphanRecovery,
    Reply as ApiReply, RuntimeProfiles, SessionPin, SkillBundle, SkillBundleRequest, SkillSource, TaskGcCheck, TaskId,
    TaskUsage, WorkspaceRepos,
};

use super::head::{repos_version, HeadFailure};
use super::runtime_requests::Report;
use super::*;

/// The most issues one batch gc check takes.
const MAX_ISSUE_GC_BATCH: usize = 500;
/// The most tasks one batch claim hands out.
const BATCH_CLAIM_CAP: i64 = 32;
/// What Go writes for a zero `time.Time` (a gc check of an unfinished task).
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What a task's `cancel-ack` recorded (once).
#[derive(Clone, Debug, Default)]
pub(super) struct CancelRecord {
    pub(super) branch_name: String,
    pub(super) durable_work_dir: String,
    pub(super) error_message: String,
    pub(super) failure_reason: String,
}

impl State {
    /// The HEAD-only calls; `None` for a call that is not one of them.
    pub(super) fn apply_head_only(
        &mut self,
        call: &Call,
        identity: &Identity,
        caller: Caller<'_>,
    ) -> Option<Result<Reply, Rejection>> {
        let api = |result: Result<ApiReply, Rejection>| result.map(Reply::Api);
        Some(match call {
            Call::ClaimTasks(request) => api(self.claim_tasks(request, identity, caller).map(ApiReply::ClaimedTasks)),
            Call::ExtendPrepareLease { runtime_id, task_id } => api(self
                .prepare_lease(runtime_id, task_id, identity)
                .map(|record| ApiReply::TaskRecord(Box::new(record)))),
            Call::ResolveSkillBundles { runtime_id, task_id, request } => {
                api(self.resolve_skill_bundles(runtime_id, task_id, request, identity).map(ApiReply::SkillBundles))
            }
            Call::RecoverOrphans { runtime_id } => {
                api(self.recover_orphans(runtime_id, identity).map(ApiReply::OrphansRecovered))
            }
            Call::ReportModelList { runtime_id, request_id, result } => {
                api(self.report(runtime_id, request_id, Report::ModelList(result), identity))
            }
            Call::ReportLocalSkills { runtime_id, request_id, result } => {
                api(self.report(runtime_id, request_id, Report::LocalSkills(result), identity))
            }
            Call::ReportSkillImport { runtime_id, request_id, result } => {
                api(self.report(runtime_id, request_id, Report::SkillImport(result), identity))
            }
            Call::ReportUpdateResult { runtime_id, update_id, result } => {
                api(self.report(runtime_id, update_id, Report::Update(result), identity))
            }
            Call::WaitLocalDirectory { task_id, wait } => api(self
                .wait_local_directory(task_id, wait, identity)
                .map(|record| ApiReply::TaskRecord(Box::new(record)))),
            Call::ReportTaskUsage { task_id, usage } => {
                api(self.report_task_usage(task_id, usage, identity).map(|()| ApiReply::Done))
            }
            Call::AckCancel { task_id, ack } => api(self.ack_cancel(task_id, ack, identity).map(|()| ApiReply::Done)),
            Call::PinSession { task_id, pin } => api(self.pin_session(task_id, pin, identity).map(|()| ApiReply::Done)),
            Call::GetTaskGcCheck { task_id } => api(self.task_gc_check(task_id, identity).map(ApiReply::TaskGcCheck)),
            Call::GetIssueGcCheck { issue_id } => {
                api(self.issue_gc_check(issue_id, identity).map(|s| ApiReply::GcCheck(issue_gc(s))))
            }
            Call::GetChatSessionGcCheck { session_id } => match ids::parse_uuid_go(session_id) {
                None => Err(reject(400, "invalid session_id")),
                Some(_) => Err(reject(404, "chat session not found")),
            },
            Call::GetAutopilotRunGcCheck { run_id } => match ids::parse_uuid_go(run_id) {
                None => Err(reject(400, "invalid run_id")),
                Some(_) => Err(reject(404, "autopilot run not found")),
            },
            Call::CheckIssuesGc { workspace_id, issue_ids } => {
                api(self.check_issues_gc(workspace_id, issue_ids, identity).map(ApiReply::IssueGcChecks))
            }
            Call::ListDaemonWorkspaces => Ok(Reply::Api(ApiReply::DaemonWorkspaces(self.daemon_workspaces(identity)))),
            Call::GetWorkspaceRepos { workspace_id } => {
                api(self.workspace_repos(workspace_id, identity).map(ApiReply::WorkspaceRepos))
            }
            Call::ListRuntimeProfiles { workspace_id } => api(self.head_workspace(workspace_id, identity).map(|id| {
                let mut profiles = RuntimeProfiles::default();
                profiles.runtime_profiles = self.enabled_profiles(&id);
                // The server echoes the path's text (trimmed), not the parsed ID.
                profiles.workspace_id = WorkspaceId::new(workspace_id.as_str().trim());
                ApiReply::RuntimeProfiles(profiles)
            })),
            _ => return None,
        })
    }

    fn report(
        &mut self,
        runtime_id: &RuntimeId,
        request_id: &multica_api::RuntimeRequestId,
        report: Report<'_>,
        identity: &Identity,
    ) -> Result<ApiReply, Rejection> {
        self.report_runtime_request(runtime_id, request_id, report, identity).map(|()| ApiReply::Done)
    }

    /// A workspace by path ID: 404 `not found` when it is not a UUID,
    /// unknown, or outside the caller's workspaces.
    /// A daemon token's workspace is compared with the path's text as sent
    /// (an upper-case ID is not its workspace); a user's membership with the
    /// parsed ID.
    fn head_workspace(&self, workspace_id: &WorkspaceId, identity: &Identity) -> Result<WorkspaceId, Rejection> {
        let text = workspace_id.as_str().trim();
        let id = WorkspaceId::new(ids::parse_uuid_go(text).ok_or(reject(404, "not found"))?);
        let token_matches = match identity {
            Identity::Daemon { workspace_id, .. } => workspace_id.as_str() == text,
            _ => identity.may_access(&id),
        };
        if self.workspace(&id).is_none() || !token_matches {
            return Err(reject(404, "not found"));
        }
        Ok(id)
    }

    /// §6.7: the same claim per runtime, across the daemon's runtimes, up to
    /// `max_tasks` (capped at 32); IDs that are malformed, unknown, repeated,
    /// inaccessible or another daemon's are skipped.
    fn claim_tasks(
        &mut self,
        request: &BatchClaimRequest,
        identity: &Identity,
        caller: Caller<'_>,
    ) -> Result<Vec<Task>, Rejection> {
        let daemon_id = request.daemon_id.as_str().trim();
        if daemon_id.is_empty() {
            return Err(reject(400, "daemon_id is required"));
        }
        if let Identity::Daemon { daemon_id: own, .. } = identity {
            if own.as_str() != daemon_id {
                return Err(reject(403, "daemon_id does not match token"));
            }
        }
        if request.max_tasks < 0 {
            return Err(reject(400, "max_tasks must not be negative"));
        }
        let mut wanted = request.max_tasks.min(BATCH_CLAIM_CAP);
        let mut runtimes: Vec<RuntimeId> = Vec::new();
        for id in &request.runtime_ids {
            let Ok(id) = self.head_runtime(id.as_str(), identity) else { continue };
            let ours =
                self.runtimes.get(&id).is_some_and(|r| r.daemon_id.as_ref().map(DaemonId::as_str) == Some(daemon_id));
            if ours && !runtimes.contains(&id) {
                runtimes.push(id);
            }
        }
        let mut tasks = Vec::new();
        let mut exhausted: HashSet<RuntimeId> = HashSet::new();
        while wanted > 0 && exhausted.len() < runtimes.len() {
            // Priority order across the runtimes: the best next task first.
            let best = runtimes
                .iter()
                .filter(|id| !exhausted.contains(*id))
                .filter_map(|id| self.next_claim_key(id).map(|key| (key, id.clone())))
                .min_by_key(|(key, _)| *key);
            let Some((_, runtime_id)) = best else { break };
            match self.claim_head(&runtime_id, identity, caller) {
                Ok(Some(task)) => {
                    tasks.push(task);
                    wanted -= 1;
                }
                Ok(None) => {
                    exhausted.insert(runtime_id);
                }
                // The task was cancelled; the batch goes on.
                Err(rejection) if rejection == super::head::OWNER_REQUIRED => {}
                Err(rejection) => return Err(rejection),
            }
        }
        Ok(tasks)
    }

    /// The queue key of the first queued (or stale dispatched) task of a
    /// runtime, for ordering a batch claim; `None` when there is none.
    fn next_claim_key(&self, runtime_id: &RuntimeId) -> Option<QueueKey> {
        let queue = self.queues.get(runtime_id)?;
        queue
            .iter()
            .find(|(_, id)| {
                self.tasks.get(*id).is_some_and(|t| t.status == TaskStatus::Queued || self.is_stale_dispatch(t))
            })
            .map(|(k, _)| *k)
    }

    /// §6.9: the content of the agent's workspace skills and the built-in
    /// skills named by reference.
    fn resolve_skill_bundles(
        &self,
        runtime_id: &RuntimeId,
        task_id: &TaskId,
        request: &SkillBundleRequest,
        identity: &Identity,
    ) -> Result<Vec<SkillBundle>, Rejection> {
        let runtime_id = self.head_runtime(runtime_id.as_str(), identity)?;
        let id = self.head_task(task_id.as_str(), identity)?;
        let row = self.tasks.get(&id).filter(|t| t.runtime_id == runtime_id).ok_or(TASK_NOT_FOUND)?;
        if !matches!(row.status, TaskStatus::Dispatched | TaskStatus::WaitingLocalDirectory) {
            return Err(reject(409, "task is not preparing"));
        }
        let skills = self.agents.iter().find(|a| a.id == row.agent_id).map(|a| a.skills.clone()).unwrap_or_default();
        let mut bundles = Vec::with_capacity(request.skills.len());
        for wanted in &request.skills {
            if wanted.id.is_empty() || wanted.hash.is_empty() || wanted.source.as_str().is_empty() {
                return Err(reject(400, "invalid skill ref"));
            }
            if wanted.source == SkillSource::Builtin {
                let skill =
                    super::builtin_skills::find_builtin(&wanted.id).ok_or(reject(404, "skill bundle not found"))?;
                bundles.push(skill.bundle());
                continue;
            }
            let skill = skills
                .iter()
                .filter(|_| wanted.source == SkillSource::Workspace)
                .find(|s| s.id.as_deref() == Some(wanted.id.as_str()))
                .ok_or(reject(404, "skill bundle not found"))?;
            let reference = self.workspace_skill_ref(&row.agent_id, skill);
            bundles.push(super::builtin_skills::bundle(reference, &skill.content, &skill.files));
        }
        Ok(bundles)
    }

    /// §6.20: fails every in-flight task of the runtime with
    /// `runtime_recovery`, creating their retries.
    fn recover_orphans(&mut self, runtime_id: &RuntimeId, identity: &Identity) -> Result<OrphanRecovery, Rejection> {
        let runtime_id = self.head_runtime(runtime_id.as_str(), identity)?;
        let orphans: Vec<TaskId> = self
            .task_order
            .iter()
            .filter(|id| {
                self.tasks.get(*id).is_some_and(|t| {
                    t.runtime_id == runtime_id
                        && matches!(
                            t.status,
                            TaskStatus::Dispatched | TaskStatus::Running | TaskStatus::WaitingLocalDirectory
                        )
                })
            })
            .cloned()
            .collect();
        let before = self.tasks.len();
        let failure = HeadFailure {
            error: "daemon restarted while task was in flight".to_owned(),
            failure_reason: multica_api::FailureReason::RuntimeRecovery.as_str().to_owned(),
            ..HeadFailure::default()
        };
        for id in &orphans {
            self.fail_head(id, &failure, identity)?;
        }
        let retried = self.tasks.len() - before;
        let mut recovery = OrphanRecovery::default();
        recovery.orphaned = i64::try_from(orphans.len()).unwrap_or(i64::MAX);
        recovery.retried = i64::try_from(retried).unwrap_or(i64::MAX);
        Ok(recovery)
    }

    /// §6.11: `dispatched` → `waiting_local_directory`, with a new lease.
    fn wait_local_directory(
        &mut self,
        task_id: &TaskId,
        wait: &LocalDirectoryWait,
        identity: &Identity,
    ) -> Result<TaskRecord, Rejection> {
        let record = self.wait_for_local_directory(task_id, identity)?;
        // A legacy daemon sent an absolute path as the reason: not kept.
        let reason = wait.reason.trim();
        if let Some(row) = self.tasks.get_mut(&record.id) {
            if !reason.is_empty() && !reason.starts_with('/') {
                row.head.waiting_reason = reason.to_owned();
            }
        }
        Ok(record)
    }

    /// §6.17: rows upserted per (task, provider, model); a provider is
    /// lower-cased, an empty one is the runtime's.
    fn report_task_usage(
        &mut self,
        task_id: &TaskId,
        usage: &[TaskUsage],
        identity: &Identity,
    ) -> Result<(), Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        let runtime_provider = self
            .tasks
            .get(&id)
            .and_then(|t| self.runtimes.get(&t.runtime_id))
            .map(|r| r.provider.clone())
            .unwrap_or_default();
        for entry in usage {
            let provider = entry.provider.trim().to_lowercase();
            let provider = if provider.is_empty() { runtime_provider.clone() } else { provider };
            let row =
                TaskUsage { provider: provider.clone(), cost_usd_ticks: entry.cost_usd_ticks.max(0), ..entry.clone() };
            self.task_usage.insert((id.clone(), provider, entry.model.clone()), row);
        }
        Ok(())
    }

    /// §6.18: on a cancelled task, the non-empty values are recorded once.
    fn ack_cancel(&mut self, task_id: &TaskId, ack: &CancelAck, identity: &Identity) -> Result<(), Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        if let Some(row) = self.tasks.get_mut(&id).filter(|t| t.status == TaskStatus::Cancelled) {
            let record = row.head.cancel_ack.get_or_insert_with(CancelRecord::default);
            let keep = |field: &mut String, value: &str| {
                if field.is_empty() {
                    *field = value.replace('\0', "");
                }
            };
            keep(&mut record.branch_name, &ack.branch_name);
            keep(&mut record.durable_work_dir, &ack.durable_work_dir);
            keep(&mut record.error_message, &ack.error_message);
            keep(&mut record.failure_reason, ack.failure_reason.as_str());
        }
        Ok(())
    }

    /// §6.19: stores the resume pointer; 204.
    fn pin_session(&mut self, task_id: &TaskId, pin: &SessionPin, identity: &Identity) -> Result<(), Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        if pin.session_id.is_empty() && pin.work_dir.is_empty() {
            return Err(reject(400, "session_id or work_dir required"));
        }
        let row = self.tasks.get_mut(&id).ok_or(TASK_NOT_FOUND)?;
        if !pin.session_id.is_empty() {
            row.session_id = pin.session_id.replace('\0', "");
        }
        if !pin.work_dir.is_empty() {
            row.work_dir = pin.work_dir.replace('\0', "");
        }
        let pointer = (row.session_id.clone(), row.work_dir.clone(), row.runtime_id.clone());
        let key = (row.agent_id.clone(), row.issue_id.clone());
        if !pointer.0.is_empty() {
            self.head_sessions.insert(key, pointer);
        }
        Ok(())
    }

    fn task_gc_check(&self, task_id: &TaskId, identity: &Identity) -> Result<TaskGcCheck, Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        let row = self.tasks.get(&id).ok_or(TASK_NOT_FOUND)?;
        let mut check = TaskGcCheck::default();
        check.status = row.status.clone();
        check.completed_at = match (row.head.completed_stamp, row.completed) {
            (Some(stamp), _) => stamp.rfc3339_nano(),
            (None, Some(completed)) => DbTime::at(completed, 0).rfc3339_nano(),
            (None, None) => ZERO_TIME.to_owned(),
        };
        Ok(check)
    }

    /// An issue the fake knows (a task works on it or its status was set):
    /// its status and when it last changed.
    fn issue_state(&self, issue_id: &IssueId) -> Option<(String, DbTime)> {
        let tasks: Vec<&TaskRow> = self.tasks.values().filter(|t| &t.issue_id == issue_id).collect();
        let status = self.issues.get(issue_id).cloned();
        if tasks.is_empty() && status.is_none() {
            return None;
        }
        // The database stamps every write; an unfinished task's last write
        // is taken 1 µs into its millisecond.
        let updated = tasks
            .iter()
            .map(|t| {
                t.head
                    .completed_stamp
                    .unwrap_or_else(|| DbTime::at(t.completed.or(t.started).or(t.dispatched).unwrap_or(t.created), 1))
            })
            .max();
        Some((status.unwrap_or_else(|| "todo".to_owned()), updated.unwrap_or(DbTime::at(self.now, 1))))
    }

    fn issue_gc_check(&self, issue_id: &IssueId, identity: &Identity) -> Result<(String, DbTime), Rejection> {
        let id = IssueId::new(ids::parse_uuid_go(issue_id.as_str()).ok_or(reject(400, "invalid issue_id"))?);
        let state = self.issue_state(&id).ok_or(reject(404, "issue not found"))?;
        // Found, then the workspace access check's own 404.
        let accessible = self.tasks.values().filter(|t| t.issue_id == id).all(|t| identity.may_access(&t.workspace_id));
        if !accessible {
            return Err(reject(404, "not found"));
        }
        Ok(state)
    }

    fn check_issues_gc(
        &self,
        workspace_id: &WorkspaceId,
        issue_ids: &[IssueId],
        identity: &Identity,
    ) -> Result<Vec<IssueGcStatus>, Rejection> {
        // This route parses its workspace before the access check, and is
        // the only one whose path ID is not trimmed.
        ids::parse_uuid_go(workspace_id.as_str()).ok_or(reject(400, "invalid workspace_id"))?;
        let workspace_id = self.head_workspace(workspace_id, identity)?;
        if issue_ids.len() > MAX_ISSUE_GC_BATCH {
            return Err(reject(400, "too many issue_ids"));
        }
        let mut parsed = Vec::with_capacity(issue_ids.len());
        for issue in issue_ids {
            parsed.push(IssueId::new(ids::parse_uuid_go(issue.as_str()).ok_or(reject(400, "invalid issue_id"))?));
        }
        let mut out = Vec::with_capacity(issue_ids.len());
        for (sent, id) in issue_ids.iter().zip(parsed) {
            let in_workspace = self.tasks.values().any(|t| t.issue_id == id && t.workspace_id == workspace_id);
            let mut gc = IssueGcStatus::default();
            // Each item names the issue as it was sent.
            gc.id = sent.clone();
            if let Some((status, updated)) = self.issue_state(&id).filter(|_| in_workspace) {
                gc.found = true;
                gc.status = status;
                gc.updated_at = updated.rfc3339_nano();
            }
            out.push(gc);
        }
        Ok(out)
    }

    pub(crate) fn task_usage_of(&self, task_id: &TaskId) -> Vec<TaskUsage> {
        let id = canonical(task_id);
        self.task_usage.iter().filter(|((task, _, _), _)| *task == id).map(|(_, row)| row.clone()).collect()
    }

    fn daemon_workspaces(&self, identity: &Identity) -> Vec<DaemonWorkspace> {
        let mut workspaces: Vec<DaemonWorkspace> = self
            .workspaces
            .iter()
            .filter(|w| identity.may_access(&w.workspace.id))
            .map(|w| DaemonWorkspace::new(w.workspace.id.clone(), w.workspace.name.clone()))
            .collect();
        workspaces.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        workspaces
    }

    fn workspace_repos(&self, workspace_id: &WorkspaceId, identity: &Identity) -> Result<WorkspaceRepos, Rejection> {
        let id = self.head_workspace(workspace_id, identity)?;
        let repos = self.workspace(&id).map(|w| w.workspace.repos.clone()).unwrap_or_default();
        let mut answer = WorkspaceRepos::default();
        answer.workspace_id = id;
        answer.repos_version = repos_version(&repos);
        answer.repos = repos;
        Ok(answer)
    }
}

fn issue_gc((status, updated): (String, DbTime)) -> multica_api::GcCheck {
    let mut check = multica_api::GcCheck::default();
    check.status = status;
    check.updated_at = updated.rfc3339_nano();
    check
}

impl State {
    /// What HEAD answers a request whose body does not decode: the handlers
    /// that look their objects up first answer those errors (and a result
    /// route acknowledges a finished request without reading its body);
    /// the others, and 3c93ebaf1c, answer 400 `invalid request body`.
    pub(crate) fn answer_undecodable(
        &mut self,
        endpoint: multica_api::Endpoint,
        params: &[String],
        caller: Caller<'_>,
    ) -> Result<Reply, Rejection> {
        use super::requests_kind as kind;
        use multica_api::Endpoint as E;
        const BAD_BODY: Rejection = reject(400, "invalid request body");
        if !self.version.is_head() {
            return Err(BAD_BODY);
        }
        let identity = &self.authenticate_daemon(caller.authorization)?;
        let param = |index: usize| params.get(index).cloned().unwrap_or_default();
        match endpoint {
            E::CompleteTask | E::FailTask | E::ReportTaskUsage | E::WaitLocalDirectory => {
                self.head_task(&param(0), identity)?;
            }
            E::ResolveSkillBundles => {
                let runtime_id = self.head_runtime(&param(0), identity)?;
                let id = self.head_task(&param(1), identity)?;
                let row = self.tasks.get(&id).filter(|t| t.runtime_id == runtime_id).ok_or(TASK_NOT_FOUND)?;
                if !matches!(row.status, TaskStatus::Dispatched | TaskStatus::WaitingLocalDirectory) {
                    return Err(reject(409, "task is not preparing"));
                }
            }
            E::ReportModelList | E::ReportLocalSkills | E::ReportSkillImport | E::ReportUpdateResult => {
                let kind = kind(endpoint);
                let (runtime_id, request_id) = (RuntimeId::new(param(0)), param(1).into());
                if self.runtime_request_lookup(kind, &runtime_id, &request_id, identity)? {
                    return Ok(Reply::Ok);
                }
            }
            _ => {}
        }
        Err(BAD_BODY)
    }
}
