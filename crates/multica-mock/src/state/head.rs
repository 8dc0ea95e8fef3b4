//! The daemon routes as server HEAD 1cc46b2697 has them
//! (`docs/protocol-head.md` §6-§8): typed errors for malformed and unknown
//! IDs, workspace access checks, the task row's HEAD fields, prepare
//! leases, stale re-dispatch, `auth_token`s, complete and fail that answer
//! 200 with the row unchanged when they cannot act, and retries created from
//! a retryable `failure_reason`.

use std::time::Duration;

use multica_api::{
    AttributionActor, AttributionEvidence, Endpoint, FailureReason, SecretToken, TaskAttribution, TaskId, TaskKind,
};

use super::*;

/// A claim, prepare-lease and wait-local-directory give the task this long
/// before a re-dispatch may take it back.
pub(crate) const PREPARE_LEASE: Duration = Duration::from_secs(45);
/// A task dispatched this long ago (never started, lease expired) is handed
/// out again by its runtime's next claim.
pub(crate) const STALE_DISPATCH: Duration = Duration::from_secs(90);
/// A runtime is fresh (claims hand it tasks; the sweeper keeps it online)
/// while its last heartbeat is at most this old.
pub(crate) const HEARTBEAT_FRESHNESS: Duration = Duration::from_secs(150);
/// A runtime offline for longer loses its tasks (`runtime_offline`).
pub(crate) const RECONNECT_GRACE: Duration = Duration::from_secs(3 * 3600);
/// A dispatched task never started fails (`timeout`) this long after dispatch.
const DISPATCH_TIMEOUT: Duration = Duration::from_secs(300);
/// A running task fails (`timeout`) after this long if its runtime is gone.
const RUN_TIMEOUT: Duration = Duration::from_secs(9_000);
/// A queued task (not an offline retry) expires after this long.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// How long a deferred `runtime_offline` retry waits before it may be claimed.
const OFFLINE_RETRY_DELAY: Duration = Duration::from_secs(1);
/// An offline runtime with nothing unfinished is deleted after this long.
const OFFLINE_RUNTIME_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long the last provider-network retry waits.
const PROVIDER_NETWORK_RETRY_DELAY: Duration = Duration::from_secs(5);

/// The attempt counters and lease of a task, HEAD only.
#[derive(Debug, Clone)]
pub(super) struct TaskHead {
    pub(super) attempt: i64,
    pub(super) max_attempts: i64,
    pub(super) parent: Option<TaskId>,
    pub(super) failure_reason: String,
    pub(super) lease: Option<Millis>,
    /// A deferred retry is claimable from then on.
    pub(super) fire_at: Option<Millis>,
    pub(super) branch_name: String,
    pub(super) durable_work_dir: String,
    /// The `mat_` token of the current claim (deleted when the task ends).
    pub(super) auth_token: Option<String>,
    /// Why the task waits for a local directory.
    pub(super) waiting_reason: String,
    /// When the database stamped the task finished (gc checks show it).
    pub(super) completed_stamp: Option<DbTime>,
    /// What the daemon's `cancel-ack` recorded.
    pub(super) cancel_ack: Option<super::head_routes::CancelRecord>,
    /// The task a user's rerun made this one from (§7.4).
    pub(super) rerun_of: Option<TaskId>,
    /// The completion withheld the session (`session_rollout_missing`).
    pub(super) session_rollout_missing: bool,
}

impl Default for TaskHead {
    fn default() -> Self {
        Self {
            attempt: 1,
            max_attempts: 2,
            parent: None,
            failure_reason: String::new(),
            lease: None,
            fire_at: None,
            branch_name: String::new(),
            durable_work_dir: String::new(),
            auth_token: None,
            waiting_reason: String::new(),
            cancel_ack: None,
            completed_stamp: None,
            rerun_of: None,
            session_rollout_missing: false,
        }
    }
}

const fn reject(status: u16, message: &'static str) -> Rejection {
    super::reject(status, message)
}

/// The "no rows" message of each transition's `UPDATE`.
const START_NO_ROWS: Rejection = reject(400, "start task: no rows in result set");
const LEASE_NO_ROWS: Rejection = reject(400, "extend task prepare lease: no rows in result set");
const WAIT_NO_ROWS: Rejection = reject(400, "mark task waiting_local_directory: no rows in result set");
const NOT_FOUND: Rejection = reject(404, "not found");
/// A claim on a runtime without an owner (registered only with a daemon token).
pub(super) const OWNER_REQUIRED: Rejection = reject(500, "runtime owner required to mint task token");

/// `/Users/dev/src/demo` → `src/demo`; `…/multica_workspaces/<ws>/…` →
/// `multica_workspaces/<ws>/…`: the path without the machine's home.
fn relative_dir(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    if let Some(at) = path.find("/multica_workspaces/") {
        return path[at + 1..].to_owned();
    }
    for home in ["/Users/", "/home/"] {
        if let Some(rest) = path.strip_prefix(home) {
            return rest.split_once('/').map(|(_, r)| r.to_owned()).unwrap_or_default();
        }
    }
    if let Some(rest) = path.strip_prefix("/root/") {
        return rest.to_owned();
    }
    path.to_owned()
}

impl TaskRow {
    /// The task row as HEAD answers it (§4): `workspace_id` filled, the
    /// attempt counters, the work dirs and the assignment's attribution.
    pub(super) fn record_head(&self) -> TaskRecord {
        let head = &self.head;
        let issue = self.issue_id.as_str().to_owned();
        let mut evidence = AttributionEvidence::default();
        evidence.kind = "issue_assignment".to_owned();
        evidence.ref_id = issue;
        let mut attribution = TaskAttribution::default();
        attribution.source = "direct_human".to_owned();
        attribution.precise = true;
        attribution.initiator = self.initiator.clone().map(AttributionActor::new);
        attribution.originator = self.initiator.clone().map(AttributionActor::new);
        attribution.evidence = Some(evidence);
        attribution.retry_of_task_id = head.parent.clone();
        attribution.rerun_of_task_id = head.rerun_of.clone();
        let mut record = self.record();
        record.failure_reason = FailureReason::from(head.failure_reason.as_str());
        record.attempt = Some(head.attempt);
        record.max_attempts = Some(head.max_attempts);
        record.parent_task_id = head.parent.clone();
        record.work_dir = self.work_dir.clone();
        record.relative_work_dir = relative_dir(&self.work_dir);
        record.durable_work_dir = head.durable_work_dir.clone();
        record.relative_durable_work_dir = relative_dir(&head.durable_work_dir);
        record.branch_name = head.branch_name.clone();
        record.delivered_comment_ids = Some(Vec::new());
        record.kind = Some(TaskKind::Direct);
        record.attribution = Some(attribution);
        record
    }
}

/// The hex SHA-256 of the workspace's repository URLs, sorted and joined
/// by newlines: how a daemon notices that the repos changed.
pub(super) fn repos_version(repos: &[Repo]) -> String {
    let mut urls: Vec<&str> = repos.iter().map(|r| r.url.as_str()).collect();
    urls.sort_unstable();
    sha256_hex(urls.join("\n").as_bytes())
}

pub(super) fn sha256_hex(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A workspace skill as a `skill-bundles-v1` reference: files with their
/// SHA-256 and size. The bundle `hash` covers the content and every file.
pub(super) fn skill_ref(skill: &multica_api::Skill) -> multica_api::SkillRef {
    let files: Vec<multica_api::SkillRefFile> = skill
        .files
        .iter()
        .map(|f| {
            let mut file = multica_api::SkillRefFile::default();
            file.path = f.path.clone();
            file.sha256 = format!("sha256:{}", sha256_hex(f.content.as_bytes()));
            file.size_bytes = i64::try_from(f.content.len()).unwrap_or(i64::MAX);
            file
        })
        .collect();
    let mut bundle = skill.content.clone();
    for file in &skill.files {
        bundle.push_str(&format!("\n{}\n{}", file.path, file.content));
    }
    let size: usize = skill.content.len() + skill.files.iter().map(|f| f.content.len()).sum::<usize>();
    let mut reference = multica_api::SkillRef::default();
    reference.id = skill.id.clone().unwrap_or_default();
    reference.source = multica_api::SkillSource::Workspace;
    reference.name = skill.name.clone();
    reference.description = skill.description.clone();
    reference.hash = format!("sha256:{}", sha256_hex(bundle.as_bytes()));
    reference.size_bytes = i64::try_from(size).unwrap_or(i64::MAX);
    reference.file_count = i64::try_from(skill.files.len()).unwrap_or(i64::MAX);
    reference.files = files;
    reference
}

/// Names of `NAME=value` assignments whose value is a secret.
const SECRET_NAMES: &[&str] =
    &["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "ACCESS_KEY"];
/// Prefixes of provider keys.
const KEY_PREFIXES: &[&str] = &["sk-", "ghp_", "gho_", "ghs_", "github_pat_", "xoxb-", "xoxp-", "AKIA"];

/// The server's redaction of stored task output: `Bearer <token>` →
/// `Bearer [REDACTED]`; a `PASSWORD=…`-style assignment or a provider key →
/// `[REDACTED CREDENTIAL]`.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_bearer = false;
    for (index, piece) in text.split(' ').enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let secret_assignment = piece.split_once('=').is_some_and(|(name, value)| {
            !value.is_empty()
                && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && SECRET_NAMES.iter().any(|s| name.contains(s))
        });
        let provider_key = KEY_PREFIXES.iter().any(|p| piece.starts_with(p) && piece.len() >= p.len() + 8);
        if after_bearer && !piece.is_empty() {
            out.push_str("[REDACTED]");
        } else if secret_assignment || provider_key {
            out.push_str("[REDACTED CREDENTIAL]");
        } else {
            out.push_str(piece);
        }
        after_bearer = piece == "Bearer";
    }
    out
}

/// [`redact`] on every string inside a message's `input`, NULs removed.
fn redact_json(value: &mut Value) {
    match value {
        Value::String(text) => *text = redact(&text.replace('\0', "")),
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// Whether a failed task's session must not be resumed: a failure that
/// poisons the conversation, or an error text that says the provider
/// rejected the history (`400` with `invalid_request_error`) or could not
/// resolve its credentials.
pub(super) fn resume_unsafe_failure(failure_reason: &str, error: &str) -> bool {
    const POISONING: &[&str] = &[
        "iteration_limit",
        "agent_fallback_message",
        "api_invalid_request",
        "codex_semantic_inactivity",
        "agent_error.context_overflow",
        "codex_resume_oversized",
    ];
    if POISONING.contains(&failure_reason) {
        return true;
    }
    let lower = error.to_lowercase();
    (lower.contains("400") && lower.contains("invalid_request_error"))
        || super::failure::auth_method_unresolved(error)
        || super::failure::unresumable_history(error)
}

/// Whether an output is a provider's "context window exhausted" notice,
/// which HEAD turns a completion into a failure for.
fn is_context_overflow(output: &str) -> bool {
    // Go measures the trimmed text in bytes.
    let trimmed = output.trim();
    if trimmed.is_empty() || trimmed.len() > 320 {
        return false;
    }
    let text = trimmed.to_lowercase();
    (text.contains("prompt is too long") && text.contains("cannot be compacted"))
        || (text.contains("conversation too long") && text.contains("press esc twice"))
        || (text.contains("compaction failed") && text.contains("reduced below the context limit"))
}

impl State {
    // ----- dispatch ------------------------------------------------------------

    /// Runs a decoded call with HEAD's rules: the daemon middleware first,
    /// then the route; a route HEAD removed answers as an unknown one.
    pub(crate) fn apply_head(&mut self, call: &Call, caller: Caller<'_>) -> Result<Reply, Rejection> {
        if let Call::ListWorkspaces = call {
            return Ok(Reply::Workspaces(self.list_workspaces(caller.authorization)?));
        }
        let identity = self.authenticate_daemon(caller.authorization)?;
        self.apply_head_as(call, &identity, caller)
    }

    /// Runs a decoded call as `identity` (already authenticated): what the
    /// WebSocket channel does with the connection's identity.
    pub(crate) fn apply_head_as(
        &mut self,
        call: &Call,
        identity: &Identity,
        caller: Caller<'_>,
    ) -> Result<Reply, Rejection> {
        Ok(match call {
            Call::Register(request) => Reply::Register(self.register_head(request, identity, caller)?),
            Call::Deregister { runtime_ids } => {
                self.deregister_head(runtime_ids, identity)?;
                Reply::Ok
            }
            Call::SendHeartbeat { runtime_id } => Reply::Heartbeat(self.heartbeat_head(runtime_id, false, identity)?),
            Call::SendHeartbeatWith(request) => {
                Reply::Heartbeat(self.heartbeat_head(&request.runtime_id, request.supports_batch_import, identity)?)
            }
            Call::DeregisterWith(request) => {
                self.deregister_head(&request.runtime_ids, identity)?;
                Reply::Ok
            }
            Call::FailTaskWith { task_id, failure } => {
                let failure = HeadFailure {
                    error: failure.error.clone(),
                    failure_reason: failure.failure_reason.as_str().to_owned(),
                    session_id: failure.session_id.clone(),
                    work_dir: failure.work_dir.clone(),
                    durable_work_dir: failure.durable_work_dir.clone(),
                    branch_name: failure.branch_name.clone(),
                };
                Reply::Record(self.fail_head(task_id, &failure, identity)?)
            }
            Call::ListTaskMessagesSince { task_id, since } => {
                let mut messages = self.list_messages_head(task_id, identity)?;
                messages.retain(|m| m.message.seq > *since);
                Reply::Messages(messages)
            }
            Call::ClaimTask { runtime_id } => Reply::Claim(self.claim_head(runtime_id, identity, caller)?),
            Call::ListPendingTasks { runtime_id } => Reply::Records(self.pending_head(runtime_id, identity)?),
            Call::GetTaskStatus { task_id } => Reply::Status(self.task_status_head(task_id, identity)?),
            Call::StartTask { task_id } => Reply::Record(self.start_head(task_id, identity)?),
            Call::ReportProgress { task_id, progress } => {
                self.report_progress_head(task_id, progress, identity)?;
                Reply::Ok
            }
            Call::CompleteTask { task_id, completion } => {
                Reply::Record(self.complete_head(task_id, completion, identity)?)
            }
            Call::FailTask { task_id, error } => {
                let failure = HeadFailure { error: error.clone(), ..HeadFailure::default() };
                Reply::Record(self.fail_head(task_id, &failure, identity)?)
            }
            Call::ReportTaskMessages { task_id, messages } => {
                self.report_messages_head(task_id, messages, identity)?;
                Reply::Ok
            }
            Call::ListTaskMessages { task_id } => Reply::Messages(self.list_messages_head(task_id, identity)?),
            other => return self.apply_head_only(other, identity, caller).unwrap_or(Err(ROUTE_NOT_FOUND)),
        })
    }

    // ----- lookups with HEAD's errors ---------------------------------------

    /// A runtime by path or body ID: 400 `invalid runtime_id` when not a
    /// UUID, 404 `runtime not found` when unknown, 404 `not found` when the
    /// caller may not access its workspace.
    pub(super) fn head_runtime(&self, runtime_id: &str, identity: &Identity) -> Result<RuntimeId, Rejection> {
        let id = RuntimeId::new(ids::parse_uuid_go(runtime_id).ok_or(reject(400, "invalid runtime_id"))?);
        let row = self.runtimes.get(&id).ok_or(reject(404, "runtime not found"))?;
        if !identity.may_access(&row.workspace_id) {
            return Err(NOT_FOUND);
        }
        Ok(row.id.clone())
    }

    /// A task by path ID: 400 `invalid task_id`, 404 `task not found` when
    /// unknown, 404 `not found` when outside the caller's workspaces.
    pub(super) fn head_task(&self, task_id: &str, identity: &Identity) -> Result<TaskId, Rejection> {
        let id = TaskId::new(ids::parse_uuid_go(task_id).ok_or(reject(400, "invalid task_id"))?);
        match self.tasks.get(&id) {
            Some(row) if identity.may_access(&row.workspace_id) => Ok(row.id.clone()),
            Some(_) => Err(NOT_FOUND),
            None => Err(TASK_NOT_FOUND),
        }
    }

    fn head_record(&self, task_id: &TaskId) -> Result<TaskRecord, Rejection> {
        self.tasks.get(task_id).map(TaskRow::record_head).ok_or(TASK_NOT_FOUND)
    }

    // ----- runtimes ----------------------------------------------------------

    pub(super) fn register_head(
        &mut self,
        request: &RegisterRequest,
        identity: &Identity,
        caller: Caller<'_>,
    ) -> Result<RegisterResponse, Rejection> {
        let daemon_id = DaemonId::new(request.daemon_id.as_str().trim());
        let workspace_text = request.workspace_id.as_str().trim();
        if daemon_id.as_str().is_empty() {
            return Err(reject(400, "daemon_id is required"));
        }
        if workspace_text.is_empty() {
            return Err(reject(400, "workspace_id is required"));
        }
        if request.runtimes.is_empty() && request.failed_profiles.is_empty() {
            return Err(reject(400, "at least one runtime or failed profile is required"));
        }
        let workspace_id =
            WorkspaceId::new(ids::parse_uuid_go(workspace_text).ok_or(reject(400, "invalid workspace_id"))?);
        if self.workspace(&workspace_id).is_none() || !identity.may_access(&workspace_id) {
            return Err(reject(404, "workspace not found"));
        }
        let device_name = request.device_name.trim();
        let owner = match identity {
            Identity::User { id, .. } => Some(id.clone()),
            Identity::Anyone => Some(self.user.0.clone()),
            Identity::Daemon { .. } => None,
        };
        let metadata = |version: &str| {
            let mut metadata = Map::new();
            let capabilities = caller.capability_list().map_or(Value::Null, |list| json!(list));
            metadata.insert("capabilities".to_owned(), capabilities);
            metadata.insert("cli_version".to_owned(), Value::String(request.cli_version.clone()));
            metadata.insert("launched_by".to_owned(), Value::String(request.launched_by.clone()));
            metadata.insert("version".to_owned(), Value::String(version.to_owned()));
            metadata
        };
        // One runtime after the other: an error answers at once, the
        // runtimes before it stay registered.
        let mut runtimes = Vec::with_capacity(request.runtimes.len());
        for spec in &request.runtimes {
            let provider = spec.provider.trim().to_lowercase();
            let profile_text = spec.profile_id.as_ref().map(|p| p.as_str()).unwrap_or_default();
            let mut spec = RuntimeSpec {
                name: spec.name.trim().to_owned(),
                provider: if provider.is_empty() { "unknown".to_owned() } else { provider },
                version: spec.version.clone(),
                status: spec.status.clone(),
                ..Default::default()
            };
            let profile = match profile_text.trim() {
                "" => None,
                trimmed => {
                    let id = ids::parse_uuid_go(trimmed).ok_or(reject(400, "invalid profile_id"))?;
                    let profile = self
                        .profile(&workspace_id, &id)
                        .ok_or_else(|| reject_with(400, format!("unknown runtime profile: {profile_text}")))?;
                    if !profile.enabled {
                        return Err(reject_with(409, format!("runtime profile is disabled: {profile_text}")));
                    }
                    spec.provider.clone_from(&profile.protocol_family);
                    Some(id)
                }
            };
            let id =
                self.upsert_runtime_row(None, &workspace_id, Some(&daemon_id), &spec, device_name, profile.clone());
            let Some(row) = self.runtimes.get_mut(&id) else { continue };
            row.metadata = metadata(&spec.version);
            // A daemon token keeps the owner the runtime had.
            if owner.is_some() {
                row.owner.clone_from(&owner);
            }
            if profile.is_none() {
                self.merge_legacy_runtimes(&id, &spec.provider, &request.legacy_daemon_ids);
            }
            if let Some(row) = self.runtimes.get(&id) {
                runtimes.push(row.to_runtime_head());
            }
        }
        // A profile the daemon could not start is recorded as an offline
        // runtime of that profile; an unknown or disabled one is skipped.
        for failed in &request.failed_profiles {
            let text = failed.profile_id.as_str().trim();
            if text.is_empty() {
                continue;
            }
            let id = ids::parse_uuid_go(text).ok_or(reject(400, "invalid profile_id"))?;
            let Some(profile) = self.profile(&workspace_id, &id).filter(|p| p.enabled).cloned() else { continue };
            let name = match device_name {
                "" => profile.display_name.clone(),
                device => format!("{} ({device})", profile.display_name),
            };
            let spec = RuntimeSpec {
                name,
                provider: profile.protocol_family.clone(),
                status: RuntimeStatus::Offline,
                ..Default::default()
            };
            let runtime_id =
                self.upsert_runtime_row(None, &workspace_id, Some(&daemon_id), &spec, device_name, Some(id));
            let reason = match failed.reason.trim() {
                "" => "custom runtime command could not be resolved",
                reason => reason,
            };
            let command = match failed.command_name.trim() {
                "" => profile.command_name.as_str(),
                command => command,
            };
            let mut metadata = metadata("");
            metadata.insert("runtime_profile_registration_error".to_owned(), Value::Bool(true));
            metadata.insert("runtime_profile_failure_reason".to_owned(), Value::String(reason.to_owned()));
            metadata.insert("command_name".to_owned(), Value::String(command.to_owned()));
            if let Some(row) = self.runtimes.get_mut(&runtime_id) {
                row.metadata = metadata;
                if owner.is_some() {
                    row.owner.clone_from(&owner);
                }
            }
        }
        let repos = self.workspace(&workspace_id).map(|w| w.workspace.repos.clone()).unwrap_or_default();
        let mut response = RegisterResponse::default();
        response.repos_version = repos_version(&repos);
        response.repos = repos;
        response.runtimes = runtimes;
        response.settings = Some(Map::new());
        Ok(response)
    }

    pub(super) fn deregister_head(&mut self, runtime_ids: &[RuntimeId], identity: &Identity) -> Result<(), Rejection> {
        if runtime_ids.is_empty() {
            return Err(reject(400, "runtime_ids is required"));
        }
        let mut parsed = Vec::with_capacity(runtime_ids.len());
        for id in runtime_ids {
            parsed.push(RuntimeId::new(ids::parse_uuid_go(id.as_str()).ok_or(reject(400, "invalid runtime_ids"))?));
        }
        let now = self.now;
        for id in parsed {
            if let Some(row) = self.runtimes.get_mut(&id).filter(|r| identity.may_access(&r.workspace_id)) {
                row.status = RuntimeStatus::Offline;
                row.updated = now;
            }
        }
        Ok(())
    }

    pub(super) fn heartbeat_head(
        &mut self,
        runtime_id: &RuntimeId,
        batch_import: bool,
        identity: &Identity,
    ) -> Result<HeartbeatResponse, Rejection> {
        if runtime_id.as_str().is_empty() {
            return Err(reject(400, "runtime_id is required"));
        }
        let id = self.head_runtime(runtime_id.as_str(), identity)?;
        let now = self.now;
        if let Some(row) = self.runtimes.get_mut(&id) {
            row.status = RuntimeStatus::Online;
            row.last_seen = Some(now);
            row.updated = now;
            row.heartbeats += 1;
        }
        let mut response = HeartbeatResponse::default();
        response.status = "ok".to_owned();
        self.hand_out_runtime_requests(&id, batch_import, &mut response);
        Ok(response)
    }

    /// Queued and dispatched tasks of the runtime, by priority then age
    /// (not waiting ones, not deferred retries).
    pub(super) fn pending_head(
        &self,
        runtime_id: &RuntimeId,
        identity: &Identity,
    ) -> Result<Vec<TaskRecord>, Rejection> {
        let id = self.head_runtime(runtime_id.as_str(), identity)?;
        Ok(self
            .queues
            .get(&id)
            .map(|queue| queue.values().filter_map(|id| self.tasks.get(id)).map(TaskRow::record_head).collect())
            .unwrap_or_default())
    }

    // ----- claims --------------------------------------------------------------

    fn is_active(status: &TaskStatus) -> bool {
        matches!(status, TaskStatus::Dispatched | TaskStatus::Running | TaskStatus::WaitingLocalDirectory)
    }

    /// Deferred retries whose time has come become queued.
    fn promote_due_retries(&mut self) {
        let now = self.now;
        let due: Vec<TaskId> = self
            .task_order
            .iter()
            .filter(|id| {
                self.tasks
                    .get(*id)
                    .is_some_and(|t| t.status == TaskStatus::Deferred && t.head.fire_at.is_none_or(|at| at <= now))
            })
            .cloned()
            .collect();
        for id in due {
            self.set_task_status(&id, TaskStatus::Queued);
        }
    }

    /// HEAD's per-runtime claim (§7.3, §7.6): nothing unless the runtime is
    /// online with a heartbeat in the last 150 s; then a stale dispatch of
    /// this runtime is handed out again, else the first queued task (by
    /// priority, then age) whose agent has room and has no other active task
    /// on the same issue.
    pub(super) fn claim_head(
        &mut self,
        runtime_id: &RuntimeId,
        identity: &Identity,
        caller: Caller<'_>,
    ) -> Result<Option<Task>, Rejection> {
        let runtime_id = self.head_runtime(runtime_id.as_str(), identity)?;
        let now = self.now;
        let fresh = self.runtimes.get(&runtime_id).is_some_and(|r| {
            r.status == RuntimeStatus::Online && r.last_seen.is_some_and(|seen| seen.after(HEARTBEAT_FRESHNESS) >= now)
        });
        if !fresh {
            return Ok(None);
        }
        self.promote_due_retries();
        let queue: Vec<TaskId> =
            self.queues.get(&runtime_id).map(|q| q.values().cloned().collect()).unwrap_or_default();
        let stale = queue.iter().find(|id| self.tasks.get(*id).is_some_and(|t| self.is_stale_dispatch(t)));
        if let Some(id) = stale.cloned() {
            return self.hand_out_owned(&id, &runtime_id, caller);
        }
        for id in queue {
            let Some(row) = self.tasks.get(&id) else { continue };
            if row.status != TaskStatus::Queued {
                continue;
            }
            let (agent_id, issue_id) = (row.agent_id.clone(), row.issue_id.clone());
            let active: Vec<&TaskRow> =
                self.tasks.values().filter(|t| t.agent_id == agent_id && Self::is_active(&t.status)).collect();
            let limit = usize::try_from(self.agent_limit(&agent_id)).unwrap_or(usize::MAX);
            if active.len() >= limit || active.iter().any(|t| t.issue_id == issue_id) {
                continue;
            }
            self.set_task_status(&id, TaskStatus::Dispatched);
            return self.hand_out_owned(&id, &runtime_id, caller);
        }
        Ok(None)
    }

    /// A task dispatched 90 s ago or more, never started, its lease
    /// expired: the next claim of its runtime hands it out again (§7.6).
    pub(super) fn is_stale_dispatch(&self, t: &TaskRow) -> bool {
        let now = self.now;
        t.status == TaskStatus::Dispatched
            && t.started.is_none()
            && t.dispatched.is_some_and(|at| at.after(STALE_DISPATCH) <= now)
            && t.head.lease.is_none_or(|lease| lease <= now)
    }

    /// Hands a dispatched task out, unless its runtime has no owner to mint
    /// the task's token for: then the task is cancelled and the claim
    /// answers 500 (a batch claim skips it).
    fn hand_out_owned(
        &mut self,
        task_id: &TaskId,
        runtime_id: &RuntimeId,
        caller: Caller<'_>,
    ) -> Result<Option<Task>, Rejection> {
        if self.runtimes.get(runtime_id).is_some_and(|r| r.owner.is_none()) {
            self.set_task_status(task_id, TaskStatus::Cancelled);
            if let Some(row) = self.tasks.get_mut(task_id) {
                row.head.lease = None;
            }
            return Err(OWNER_REQUIRED);
        }
        Ok(self.hand_out(task_id, caller))
    }

    /// A workspace skill of an agent by reference, with the bundle hash a
    /// seed pinned for it.
    pub(super) fn workspace_skill_ref(&self, agent_id: &AgentId, skill: &multica_api::Skill) -> multica_api::SkillRef {
        let mut reference = skill_ref(skill);
        if let Some(hash) = self.skill_hashes.get(&(agent_id.clone(), skill.name.clone())) {
            reference.hash.clone_from(hash);
        }
        reference
    }

    /// The agent's other active tasks, newest first, with their issues'
    /// titles and identifiers.
    fn sibling_runs(&self, row: &TaskRow) -> Vec<multica_api::SiblingRun> {
        self.task_order
            .iter()
            .rev()
            .filter_map(|id| self.tasks.get(id))
            .filter(|t| t.id != row.id && t.agent_id == row.agent_id && Self::is_active(&t.status))
            .map(|t| {
                let (issue_title, issue_identifier) = self.issue_title_and_identifier(&t.issue_id);
                let mut run = multica_api::SiblingRun::default();
                run.task_id = t.id.clone();
                run.issue_id = t.issue_id.clone();
                run.issue_identifier = issue_identifier;
                run.issue_title = issue_title;
                run.status = t.status.clone();
                run.created_at = t.created.rfc3339();
                run.started_at = t.started.map(Millis::rfc3339);
                run
            })
            .collect()
    }

    /// Dispatches (again) and builds the claim object: a new prepare lease
    /// and a new `mat_` token.
    fn hand_out(&mut self, task_id: &TaskId, caller: Caller<'_>) -> Option<Task> {
        let token = format!("mat_{}{}", self.new_hex_id(), &self.new_hex_id()[..8]);
        let now = self.now;
        let row = self.tasks.get_mut(task_id)?;
        row.dispatched = Some(now);
        row.head.lease = Some(now.after(PREPARE_LEASE));
        row.head.auth_token = Some(token.clone());
        let mut task = self.claimed(task_id)?;
        let row = self.tasks.get(task_id)?;
        task.record = row.record_head();
        task.workspace_context = self
            .workspaces
            .iter()
            .find(|w| w.workspace.id == row.workspace_id)
            .and_then(|w| w.workspace.context.clone())
            .unwrap_or_default();
        task.leader_role_resolved = true;
        task.thread_name = self.issue_title_and_identifier(&row.issue_id).0;
        task.active_sibling_runs = self.sibling_runs(row);
        task.prior_session_id.clear();
        task.prior_work_dir.clear();
        if let Some(source) = &row.head.rerun_of {
            self.rerun_resume_point(row, source, &mut task);
        } else if let Some((session, work_dir, _)) = self
            .head_sessions
            .get(&(row.agent_id.clone(), row.issue_id.clone()))
            .filter(|(_, _, runtime)| *runtime == row.runtime_id)
        {
            // The newest session of the same (agent, issue), from any
            // attempt on this runtime (another machine cannot resume it).
            task.prior_session_id = session.clone();
            task.prior_work_dir = work_dir.clone();
        }
        // The runtime owner's name, when the owner is the fake's user.
        let owner = self.runtimes.get(&row.runtime_id).and_then(|r| r.owner.as_deref());
        if owner == Some(self.user.0.as_str()) {
            task.requesting_user_name.clone_from(&self.user.1);
        }
        // The skills built into the server follow the workspace skills;
        // `skill-bundles-v1`: references instead of inline content.
        if let Some(agent) = task.agent.as_mut() {
            let builtins = super::builtin_skills::builtin_skills();
            if caller.has_capability("skill-bundles-v1") {
                let agent_id = agent.id.clone();
                agent.skill_refs =
                    std::mem::take(&mut agent.skills).iter().map(|s| self.workspace_skill_ref(&agent_id, s)).collect();
                agent.skill_refs.extend(builtins.iter().map(|s| s.reference()));
            } else {
                agent.skills.extend(builtins.iter().map(|s| s.inline()));
            }
        }
        task.auth_token = Some(SecretToken::new(token));
        Some(task)
    }

    /// §7.4, a rerun of a task: that task's work dir, and its session when
    /// it ran on this runtime and did not end in a failure that poisons the
    /// conversation. A source of another agent or issue offers nothing
    /// (`prior_session_resume_unavailable`), as does one whose completion
    /// withheld its session.
    fn rerun_resume_point(&self, row: &TaskRow, source: &TaskId, task: &mut Task) {
        let Some(source) = self.tasks.get(source) else { return };
        if source.agent_id != row.agent_id || source.issue_id != row.issue_id {
            task.prior_session_resume_unavailable = true;
            return;
        }
        task.prior_work_dir.clone_from(&source.work_dir);
        let error = source.error.as_deref().unwrap_or_default();
        if !resume_unsafe_failure(&source.head.failure_reason, error) && source.runtime_id == row.runtime_id {
            task.prior_session_id.clone_from(&source.session_id);
        }
        if source.head.session_rollout_missing {
            task.prior_session_resume_unavailable = true;
        }
    }

    // ----- the sweeper (§7.7) ------------------------------------------------------

    /// Whether a runtime is online and heard from in the last 150 s.
    fn runtime_fresh(&self, runtime_id: &RuntimeId) -> bool {
        self.runtimes.get(runtime_id).is_some_and(|r| {
            r.status == RuntimeStatus::Online
                && r.last_seen.is_some_and(|seen| seen.after(HEARTBEAT_FRESHNESS) >= self.now)
        })
    }

    /// Whether a runtime is gone (offline or silent, or deleted) for longer
    /// than the reconnect grace.
    fn runtime_gone(&self, runtime_id: &RuntimeId) -> bool {
        self.runtimes.get(runtime_id).is_none_or(|r| {
            let seen = r.last_seen.unwrap_or(r.updated);
            seen.after(RECONNECT_GRACE) < self.now
        })
    }

    /// A retry created by a `runtime_offline` failure (never expires in the queue).
    fn is_offline_retry(&self, row: &TaskRow) -> bool {
        let parent = row.head.parent.as_ref().and_then(|p| self.tasks.get(p));
        parent.is_some_and(|p| p.head.failure_reason == FailureReason::RuntimeOffline.as_str())
    }

    /// The earliest moment after which a HEAD sweep may change something.
    /// Only moments at which a rule can fire count, so a long clock jump
    /// does not sweep every 30 s tick for nothing.
    pub(super) fn next_sweep_due_head(&self) -> Option<Millis> {
        let online = self
            .runtimes
            .values()
            .filter(|r| r.status == RuntimeStatus::Online)
            .filter_map(|r| r.last_seen.map(|seen| seen.after(HEARTBEAT_FRESHNESS)));
        // When the runtime of a task counts as gone; `None`: never (no
        // runtime is treated as gone at once; a never-seen one never).
        let gone_at = |t: &TaskRow| -> Option<Millis> {
            match self.runtimes.get(&t.runtime_id) {
                None => Some(Millis(0)),
                Some(r) => r.last_seen.map(|seen| seen.after(RECONNECT_GRACE)),
            }
        };
        let tasks = self.tasks.values().filter_map(|t| match t.status {
            TaskStatus::Dispatched => {
                let due = t.dispatched?.after(DISPATCH_TIMEOUT);
                let due = t.head.lease.map_or(due, |lease| due.max(lease));
                if self.runtime_fresh(&t.runtime_id) {
                    Some(due)
                } else {
                    gone_at(t)
                }
            }
            TaskStatus::Running | TaskStatus::WaitingLocalDirectory => gone_at(t),
            TaskStatus::Deferred => t.head.fire_at.map(|at| at.after(RECONNECT_GRACE)),
            TaskStatus::Queued if !self.is_offline_retry(t) => Some(t.created.after(QUEUE_TIMEOUT)),
            _ => None,
        });
        let collect = self.runtimes_to_collect().into_iter().map(|(_, due)| due);
        online.chain(tasks).chain(collect).min()
    }

    /// Offline runtimes last seen more than 7 days ago with no unfinished
    /// task: the sweeper deletes them (the fake's agents name no runtime).
    fn runtimes_to_collect(&self) -> Vec<(RuntimeId, Millis)> {
        self.runtime_order
            .iter()
            .filter_map(|id| self.runtimes.get(id))
            .filter(|r| r.status == RuntimeStatus::Offline)
            .filter_map(|r| r.last_seen.map(|seen| (r.id.clone(), seen.after(OFFLINE_RUNTIME_TTL))))
            .filter(|(id, _)| !self.tasks.values().any(|t| &t.runtime_id == id && t.completed.is_none()))
            .collect()
    }

    /// One run of HEAD's sweeper: silent runtimes go offline (their tasks
    /// wait for the reconnect grace); tasks time out, expire in the queue,
    /// or fail with their runtime, each with its `failure_reason`, and
    /// retryable failures create their retry.
    pub(super) fn sweep_head(&mut self) {
        let now = self.now;
        for id in self.runtime_order.clone() {
            if let Some(row) = self.runtimes.get_mut(&id) {
                let silent = row.last_seen.is_some_and(|seen| seen.after(HEARTBEAT_FRESHNESS) < now);
                if row.status == RuntimeStatus::Online && silent {
                    row.status = RuntimeStatus::Offline;
                    row.updated = now;
                }
            }
        }
        let mut failures: Vec<(TaskId, &'static str, FailureReason)> = Vec::new();
        for id in &self.task_order {
            let Some(row) = self.tasks.get(id) else { continue };
            let seen_ever = self.runtimes.get(&row.runtime_id).is_none_or(|r| r.last_seen.is_some());
            let gone = seen_ever && self.runtime_gone(&row.runtime_id);
            let lease_expired = row.head.lease.is_none_or(|lease| lease <= now);
            let failure = match row.status {
                TaskStatus::Dispatched
                    if row.started.is_none()
                        && row.dispatched.is_some_and(|at| at.after(DISPATCH_TIMEOUT) < now)
                        && lease_expired
                        && (self.runtime_fresh(&row.runtime_id) || gone) =>
                {
                    Some(("task timed out", FailureReason::Timeout))
                }
                TaskStatus::Running
                    if row.started.is_some_and(|at| at.after(RUN_TIMEOUT) < now)
                        && (gone || !self.runtimes.contains_key(&row.runtime_id)) =>
                {
                    Some(("task timed out", FailureReason::Timeout))
                }
                TaskStatus::Dispatched | TaskStatus::Running | TaskStatus::WaitingLocalDirectory if gone => {
                    Some(("runtime went offline", FailureReason::RuntimeOffline))
                }
                TaskStatus::Deferred
                    if row.head.fire_at.is_some_and(|at| at.after(RECONNECT_GRACE) < now)
                        && !self.runtime_fresh(&row.runtime_id) =>
                {
                    Some(("runtime did not reconnect in time", FailureReason::RuntimeReconnectTimeout))
                }
                TaskStatus::Queued if row.created.after(QUEUE_TIMEOUT) < now && !self.is_offline_retry(row) => {
                    Some(("task expired in queue", FailureReason::QueuedExpired))
                }
                _ => None,
            };
            if let Some((error, reason)) = failure {
                failures.push((id.clone(), error, reason));
            }
        }
        for (id, error, reason) in failures {
            self.set_task_status(&id, TaskStatus::Failed);
            if let Some(row) = self.tasks.get_mut(&id) {
                row.error = Some(error.to_owned());
                row.head.failure_reason = reason.as_str().to_owned();
                row.head.lease = None;
                row.head.auth_token = None;
            }
            self.retry_if_due(&id, &reason);
        }
        for (id, due) in self.runtimes_to_collect() {
            if due < now {
                self.delete_runtime(&id);
            }
        }
    }

    // ----- task lifecycle ------------------------------------------------------

    fn transition_head(
        &mut self,
        task_id: &TaskId,
        identity: &Identity,
        from: &[TaskStatus],
        to: TaskStatus,
        no_rows: Rejection,
    ) -> Result<TaskRecord, Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        if !self.tasks.get(&id).is_some_and(|t| from.contains(&t.status)) {
            return Err(no_rows);
        }
        if self.tasks.get(&id).is_some_and(|t| t.status != to) {
            self.set_task_status(&id, to);
        }
        self.head_record(&id)
    }

    pub(super) fn prepare_lease(
        &mut self,
        runtime_id: &RuntimeId,
        task_id: &TaskId,
        identity: &Identity,
    ) -> Result<TaskRecord, Rejection> {
        let runtime_id = self.head_runtime(runtime_id.as_str(), identity)?;
        let id = self.head_task(task_id.as_str(), identity)?;
        let now = self.now;
        let row = self.tasks.get_mut(&id).filter(|t| t.runtime_id == runtime_id).ok_or(TASK_NOT_FOUND)?;
        if !matches!(row.status, TaskStatus::Dispatched | TaskStatus::WaitingLocalDirectory) || row.started.is_some() {
            return Err(LEASE_NO_ROWS);
        }
        row.head.lease = Some(now.after(PREPARE_LEASE));
        Ok(row.record_head())
    }

    pub(super) fn start_head(&mut self, task_id: &TaskId, identity: &Identity) -> Result<TaskRecord, Rejection> {
        let from = [TaskStatus::Dispatched, TaskStatus::WaitingLocalDirectory];
        let record = self.transition_head(task_id, identity, &from, TaskStatus::Running, START_NO_ROWS)?;
        if let Some(row) = self.tasks.get_mut(&record.id) {
            row.head.lease = None;
        }
        Ok(record)
    }

    pub(super) fn wait_for_local_directory(
        &mut self,
        task_id: &TaskId,
        identity: &Identity,
    ) -> Result<TaskRecord, Rejection> {
        let from = [TaskStatus::Dispatched];
        let record = self.transition_head(task_id, identity, &from, TaskStatus::WaitingLocalDirectory, WAIT_NO_ROWS)?;
        let now = self.now;
        if let Some(row) = self.tasks.get_mut(&record.id) {
            row.head.lease = Some(now.after(PREPARE_LEASE));
        }
        Ok(record)
    }

    /// `running` → `completed`; any other status answers the row unchanged.
    /// A context-exhaustion notice as output fails the task instead.
    pub(super) fn complete_head(
        &mut self,
        task_id: &TaskId,
        completion: &TaskCompletion,
        identity: &Identity,
    ) -> Result<TaskRecord, Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        if !self.tasks.get(&id).is_some_and(|t| t.status == TaskStatus::Running) {
            return self.head_record(&id);
        }
        let strip = |s: &str| s.replace('\0', "");
        if is_context_overflow(&completion.output) {
            let failure = HeadFailure {
                error: strip(&completion.output),
                failure_reason: FailureReason::ContextOverflow.as_str().to_owned(),
                session_id: strip(&completion.session_id),
                work_dir: strip(&completion.work_dir),
                ..HeadFailure::default()
            };
            return self.fail_head(&id, &failure, identity);
        }
        let mut result = Map::new();
        result.insert("output".into(), Value::String(strip(&completion.output)));
        result.insert("pr_url".into(), Value::String(strip(&completion.pr_url)));
        result.insert("session_id".into(), Value::String(strip(&completion.session_id)));
        result.insert("work_dir".into(), Value::String(strip(&completion.work_dir)));
        if !completion.branch_name.is_empty() {
            result.insert("branch_name".into(), Value::String(strip(&completion.branch_name)));
        }
        if !completion.durable_work_dir.is_empty() {
            result.insert("durable_work_dir".into(), Value::String(strip(&completion.durable_work_dir)));
        }
        if completion.session_rollout_missing {
            result.insert("session_rollout_missing".into(), Value::Bool(true));
        }
        if !completion.retired_session_id.is_empty() {
            result.insert("retired_session_id".into(), Value::String(strip(&completion.retired_session_id)));
        }
        self.set_task_status(&id, TaskStatus::Completed);
        let row = self.tasks.get_mut(&id).ok_or(TASK_NOT_FOUND)?;
        row.result = Some(Value::Object(result));
        row.session_id = strip(&completion.session_id);
        row.work_dir = strip(&completion.work_dir);
        row.head.branch_name = strip(&completion.branch_name);
        row.head.durable_work_dir = strip(&completion.durable_work_dir);
        row.head.session_rollout_missing = completion.session_rollout_missing;
        row.head.lease = None;
        row.head.auth_token = None;
        let key = (row.agent_id.clone(), row.issue_id.clone());
        if !row.session_id.is_empty() {
            let pointer = (row.session_id.clone(), row.work_dir.clone(), row.runtime_id.clone());
            self.head_sessions.insert(key, pointer);
        }
        self.head_record(&id)
    }

    /// `dispatched`, `running` or `waiting_local_directory` → `failed`, and
    /// the retry a retryable reason asks for; any other status answers the
    /// row unchanged.
    pub(crate) fn fail_head(
        &mut self,
        task_id: &TaskId,
        failure: &HeadFailure,
        identity: &Identity,
    ) -> Result<TaskRecord, Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        if !self.tasks.get(&id).is_some_and(|t| Self::is_active(&t.status)) {
            return self.head_record(&id);
        }
        let strip = |s: &str| s.replace('\0', "");
        // No reason: the error text's class; a legacy label is upgraded.
        let error = strip(&failure.error);
        let reason = match strip(&failure.failure_reason) {
            reason if reason.is_empty() => super::failure::classify(&error).to_owned(),
            reason => reason,
        };
        let reason = super::failure::normalize_daemon_reason(&reason, &error);
        self.set_task_status(&id, TaskStatus::Failed);
        let row = self.tasks.get_mut(&id).ok_or(TASK_NOT_FOUND)?;
        row.error = Some(error);
        row.head.failure_reason = reason.clone();
        row.head.lease = None;
        row.head.auth_token = None;
        if !failure.session_id.is_empty() {
            row.session_id = strip(&failure.session_id);
        }
        if !failure.work_dir.is_empty() {
            row.work_dir = strip(&failure.work_dir);
        }
        if !failure.branch_name.is_empty() {
            row.head.branch_name = strip(&failure.branch_name);
        }
        if !failure.durable_work_dir.is_empty() {
            row.head.durable_work_dir = strip(&failure.durable_work_dir);
        }
        // A session the failure poisoned is never resumed.
        let poisoned = resume_unsafe_failure(&reason, row.error.as_deref().unwrap_or_default());
        if !row.session_id.is_empty() && !poisoned {
            let key = (row.agent_id.clone(), row.issue_id.clone());
            let pointer = (row.session_id.clone(), row.work_dir.clone(), row.runtime_id.clone());
            self.head_sessions.insert(key, pointer);
        }
        let record = self.head_record(&id)?;
        self.retry_if_due(&id, &FailureReason::from(reason.as_str()));
        Ok(record)
    }

    /// §7.5: the next attempt of a task failed with a retryable reason, when
    /// attempts remain and nothing else is runnable for its (issue, agent).
    fn retry_if_due(&mut self, failed: &TaskId, reason: &FailureReason) {
        let Some(row) = self.tasks.get(failed) else { return };
        if !reason.is_retryable() || row.head.max_attempts <= 1 {
            return;
        }
        let ceiling = if *reason == FailureReason::ProviderNetwork {
            row.head.max_attempts.max(3)
        } else {
            row.head.max_attempts
        };
        if row.head.attempt >= ceiling {
            return;
        }
        let runnable = self.tasks.values().any(|t| {
            t.agent_id == row.agent_id
                && t.issue_id == row.issue_id
                && (Self::is_active(&t.status) || matches!(t.status, TaskStatus::Queued | TaskStatus::Deferred))
        });
        if runnable {
            return;
        }
        let delay = match reason {
            FailureReason::RuntimeOffline => Some(OFFLINE_RETRY_DELAY),
            FailureReason::ProviderNetwork if row.head.attempt + 1 >= ceiling => Some(PROVIDER_NETWORK_RETRY_DELAY),
            _ => None,
        };
        let seed = TaskSeed {
            id: None,
            runtime_id: row.runtime_id.clone(),
            agent_id: row.agent_id.clone(),
            issue_id: row.issue_id.clone(),
            priority: row.priority,
        };
        let head = TaskHead {
            attempt: row.head.attempt + 1,
            max_attempts: row.head.max_attempts,
            parent: Some(row.id.clone()),
            ..TaskHead::default()
        };
        let Ok(id) = self.add_task(&seed) else { return };
        let now = self.now;
        if let Some(child) = self.tasks.get_mut(&id) {
            child.head = TaskHead { fire_at: delay.map(|d| now.after(d)), ..head };
        }
        if delay.is_some() {
            self.set_task_status(&id, TaskStatus::Deferred);
        }
    }

    /// A task's status at HEAD (with its ID errors).
    pub(super) fn task_status_head(&self, task_id: &TaskId, identity: &Identity) -> Result<TaskStatus, Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        self.task_status(&id)
    }

    pub(super) fn report_messages_head(
        &mut self,
        task_id: &TaskId,
        messages: &[TaskMessage],
        identity: &Identity,
    ) -> Result<(), Rejection> {
        if messages.is_empty() {
            return Ok(());
        }
        let id = self.head_task(task_id.as_str(), identity)?;
        // One statement stores the batch: one stamp.
        let stamp = self.db_stamp();
        let row = self.tasks.get_mut(&id).ok_or(TASK_NOT_FOUND)?;
        for message in messages {
            let mut message = message.clone();
            // `seq` is a 32-bit column, as at 3c93ebaf1c.
            message.seq = i64::from(message.seq as i32);
            message.content = redact(&message.content.replace('\0', ""));
            message.output = redact(&message.output.replace('\0', ""));
            message.tool = message.tool.replace('\0', "");
            message.input.values_mut().for_each(redact_json);
            row.messages.push(message);
            row.message_times.push(stamp);
        }
        Ok(())
    }

    pub(super) fn list_messages_head(
        &self,
        task_id: &TaskId,
        identity: &Identity,
    ) -> Result<Vec<StoredTaskMessage>, Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        let Some(row) = self.tasks.get(&id) else { return Ok(Vec::new()) };
        let mut stored: Vec<(TaskMessage, DbTime)> = row
            .messages
            .iter()
            .cloned()
            .zip(row.message_times.iter().copied().chain(std::iter::repeat(DbTime::at(row.created, 0))))
            .collect();
        stored.sort_by_key(|(m, _)| m.seq);
        Ok(stored
            .into_iter()
            .map(|(message, at)| {
                let mut stored = StoredTaskMessage::new(row.id.clone(), message);
                stored.issue_id = Some(row.issue_id.clone());
                stored.created_at = Some(at.rfc3339_nano());
                stored
            })
            .collect())
    }

    pub(super) fn report_progress_head(
        &mut self,
        task_id: &TaskId,
        progress: &TaskProgress,
        identity: &Identity,
    ) -> Result<(), Rejection> {
        let id = self.head_task(task_id.as_str(), identity)?;
        self.report_progress(&id, progress);
        Ok(())
    }
}

/// Whether `version` has the route of `endpoint`: HEAD removed
/// runtime-level usage, ping results and pairing (§9).
pub(crate) fn has_route(version: ServerVersion, endpoint: Endpoint) -> bool {
    use Endpoint::*;
    let removed_at_head = matches!(
        endpoint,
        ReportUsage | ReportPingResult | CreatePairingSession | GetPairingSession | ClaimPairingSession
    );
    let added_at_head = matches!(
        endpoint,
        ClaimTasks
            | ExtendPrepareLease
            | ResolveSkillBundles
            | RecoverOrphans
            | ReportModelList
            | ReportLocalSkills
            | ReportSkillImport
            | ReportUpdateResult
            | WaitLocalDirectory
            | ReportTaskUsage
            | AckCancel
            | PinSession
            | GetTaskGcCheck
            | GetIssueGcCheck
            | GetChatSessionGcCheck
            | GetAutopilotRunGcCheck
            | CheckIssuesGc
            | ListDaemonWorkspaces
            | GetWorkspaceRepos
            | ListRuntimeProfiles
    );
    if version.is_head() {
        !removed_at_head
    } else {
        !added_at_head
    }
}

/// What a HEAD `fail` carries (§6.14).
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadFailure {
    pub(crate) error: String,
    pub(crate) failure_reason: String,
    pub(crate) session_id: String,
    pub(crate) work_dir: String,
    pub(crate) durable_work_dir: String,
    pub(crate) branch_name: String,
}
