//! The fake server's data and the semantics of every route (SPEC §2).
//!
//! Everything here is synchronous and runs under the one state mutex: a call
//! is atomic, so two concurrent claims can never take the same task. Errors
//! are [`Rejection`]s (the status and `{"error":…}` message a handler
//! writes); the in-process API and the HTTP server turn them into the same
//! [`multica_api::Error`] / the same bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{json, Map, Value};

use multica_api::{
    AgentId, Call, DaemonId, Error, HeartbeatResponse, IssueId, PairingRequest, PairingSession, PairingStatus,
    PendingPing, PingId, PingResult, RegisterRequest, RegisterResponse, Repo, Runtime, RuntimeId, RuntimeSpec,
    RuntimeStatus, StoredTaskMessage, Task, TaskAgent, TaskCompletion, TaskMessage, TaskProgress, TaskRecord,
    TaskStatus, UsageEntry, Workspace, WorkspaceId,
};

use crate::clock::{is_valid_date, Millis};
use crate::faults::Faults;
use crate::inspect::{AgentState, PingState, RuntimeState, Snapshot, TaskState, UsageRow};
use crate::log::CallLog;
use crate::seed::{AgentSeed, RuntimeSeed, Seed, TaskSeed, WorkspaceSeed};

/// How long a pairing session stays open, as the server's default.
const PAIRING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// A handler's refusal: the status and the `error` message of its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: u16,
    pub(crate) message: &'static str,
    /// Written by the auth middleware (`Content-Type: text/plain`), not a handler.
    pub(crate) from_auth: bool,
}

const fn reject(status: u16, message: &'static str) -> Rejection {
    Rejection { status, message, from_auth: false }
}

const TASK_NOT_FOUND: Rejection = reject(404, "task not found");

/// What a call answers on success (the HTTP body's shape).
#[derive(Debug)]
pub(crate) enum Reply {
    Register(RegisterResponse),
    Ok,
    Heartbeat(HeartbeatResponse),
    Claim(Option<Task>),
    Records(Vec<TaskRecord>),
    Status(TaskStatus),
    Record(TaskRecord),
    Messages(Vec<StoredTaskMessage>),
    Workspaces(Vec<Workspace>),
    Pairing(PairingSession),
}

#[derive(Debug)]
struct WorkspaceRow {
    workspace: Workspace,
}

#[derive(Debug)]
struct RuntimeRow {
    id: RuntimeId,
    workspace_id: WorkspaceId,
    daemon_id: Option<DaemonId>,
    name: String,
    provider: String,
    status: RuntimeStatus,
    device_info: String,
    metadata: Map<String, Value>,
    last_seen: Option<Millis>,
    created: Millis,
    updated: Millis,
    heartbeats: u64,
    pending_pings: VecDeque<PingId>,
}

impl RuntimeRow {
    fn to_runtime(&self) -> Runtime {
        Runtime {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            daemon_id: self.daemon_id.clone(),
            name: self.name.clone(),
            runtime_mode: "local".to_owned(),
            provider: self.provider.clone(),
            status: self.status.clone(),
            device_info: self.device_info.clone(),
            metadata: self.metadata.clone(),
            last_seen_at: self.last_seen.map(Millis::rfc3339),
            created_at: self.created.rfc3339(),
            updated_at: self.updated.rfc3339(),
        }
    }
}

#[derive(Debug)]
struct TaskRow {
    id: multica_api::TaskId,
    agent_id: AgentId,
    runtime_id: RuntimeId,
    issue_id: IssueId,
    workspace_id: WorkspaceId,
    status: TaskStatus,
    priority: i64,
    /// Creation order: breaks priority ties in the queue.
    seq: u64,
    created: Millis,
    dispatched: Option<Millis>,
    started: Option<Millis>,
    completed: Option<Millis>,
    result: Option<Value>,
    error: Option<String>,
    session_id: String,
    work_dir: String,
    progress: Option<TaskProgress>,
    messages: Vec<TaskMessage>,
}

impl TaskRow {
    fn record(&self) -> TaskRecord {
        TaskRecord {
            id: self.id.clone(),
            agent_id: self.agent_id.clone(),
            runtime_id: self.runtime_id.clone(),
            issue_id: self.issue_id.clone(),
            workspace_id: self.workspace_id.clone(),
            status: self.status.clone(),
            priority: self.priority,
            dispatched_at: self.dispatched.map(Millis::rfc3339),
            started_at: self.started.map(Millis::rfc3339),
            completed_at: self.completed.map(Millis::rfc3339),
            result: self.result.clone(),
            error: self.error.clone(),
            created_at: self.created.rfc3339(),
        }
    }

    fn queue_key(&self) -> QueueKey {
        (Reverse(self.priority), self.seq)
    }

    fn sorted_messages(&self) -> Vec<TaskMessage> {
        let mut messages = self.messages.clone();
        // Stable: equal seqs keep their arrival order.
        messages.sort_by_key(|m| m.seq);
        messages
    }
}

/// Orders a runtime's queue: priority descending, then creation order.
type QueueKey = (Reverse<i64>, u64);

#[derive(Debug)]
struct PingRow {
    id: PingId,
    runtime_id: RuntimeId,
    sent: bool,
    result: Option<PingResult>,
}

#[derive(Debug)]
struct PairingRow {
    session: PairingSession,
    expires: Millis,
}

/// All data of the fake, plus its call log and armed faults.
#[derive(Debug)]
pub(crate) struct State {
    now: Millis,
    next_id: u64,
    next_seq: u64,
    /// `Bearer <token>` when auth is on.
    expected_authorization: Option<String>,
    pub(crate) calls: CallLog,
    pub(crate) faults: Faults,
    workspaces: Vec<WorkspaceRow>,
    agents: Vec<AgentState>,
    runtimes: HashMap<RuntimeId, RuntimeRow>,
    runtime_order: Vec<RuntimeId>,
    runtime_by_owner: HashMap<(WorkspaceId, DaemonId, String), RuntimeId>,
    tasks: HashMap<multica_api::TaskId, TaskRow>,
    task_order: Vec<multica_api::TaskId>,
    queues: HashMap<RuntimeId, BTreeMap<QueueKey, multica_api::TaskId>>,
    /// Session and work dir of the last completed task per (agent, issue).
    last_sessions: HashMap<(AgentId, IssueId), (String, String)>,
    usage: BTreeMap<(RuntimeId, String, String, String), UsageEntry>,
    pings: HashMap<PingId, PingRow>,
    ping_order: Vec<PingId>,
    pairings: HashMap<String, PairingRow>,
    pairing_order: Vec<String>,
}

fn control_error(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl State {
    pub(crate) fn new(start: Millis, token: Option<&str>, call_log_capacity: usize) -> Self {
        Self {
            now: start,
            next_id: 0,
            next_seq: 0,
            expected_authorization: token.map(|t| format!("Bearer {t}")),
            calls: CallLog::new(call_log_capacity),
            faults: Faults::default(),
            workspaces: Vec::new(),
            agents: Vec::new(),
            runtimes: HashMap::new(),
            runtime_order: Vec::new(),
            runtime_by_owner: HashMap::new(),
            tasks: HashMap::new(),
            task_order: Vec::new(),
            queues: HashMap::new(),
            last_sessions: HashMap::new(),
            usage: BTreeMap::new(),
            pings: HashMap::new(),
            ping_order: Vec::new(),
            pairings: HashMap::new(),
            pairing_order: Vec::new(),
        }
    }

    /// A new UUID-looking ID from a counter: deterministic across runs.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }

    pub(crate) fn advance_clock(&mut self, by: std::time::Duration) {
        self.now = self.now.after(by);
    }

    // ----- dispatch (HTTP) -------------------------------------------------

    /// Runs a decoded call; `authorization` is the request's header value.
    pub(crate) fn apply(&mut self, call: &Call, authorization: Option<&str>) -> Result<Reply, Rejection> {
        Ok(match call {
            Call::Register(request) => Reply::Register(self.register(request)?),
            Call::Deregister { runtime_ids } => {
                self.deregister(runtime_ids)?;
                Reply::Ok
            }
            Call::SendHeartbeat { runtime_id } => Reply::Heartbeat(self.heartbeat(runtime_id)?),
            Call::ClaimTask { runtime_id } => Reply::Claim(self.claim(runtime_id)),
            Call::ListPendingTasks { runtime_id } => Reply::Records(self.pending(runtime_id)),
            Call::ReportUsage { runtime_id, entries } => {
                self.report_usage(runtime_id, entries);
                Reply::Ok
            }
            Call::ReportPingResult { runtime_id, ping_id, result } => {
                self.report_ping_result(runtime_id, ping_id, result);
                Reply::Ok
            }
            Call::GetTaskStatus { task_id } => Reply::Status(self.task_status(task_id)?),
            Call::StartTask { task_id } => Reply::Record(self.start(task_id)?),
            Call::ReportProgress { task_id, progress } => {
                self.report_progress(task_id, progress);
                Reply::Ok
            }
            Call::CompleteTask { task_id, completion } => Reply::Record(self.complete(task_id, completion)?),
            Call::FailTask { task_id, error } => Reply::Record(self.fail(task_id, error)?),
            Call::ReportTaskMessages { task_id, messages } => {
                self.report_messages(task_id, messages)?;
                Reply::Ok
            }
            Call::ListTaskMessages { task_id } => Reply::Messages(self.list_messages(task_id)),
            Call::ListWorkspaces => Reply::Workspaces(self.list_workspaces(authorization)?),
            Call::CreatePairingSession(request) => Reply::Pairing(self.create_pairing(request)),
            Call::GetPairingSession { token } => Reply::Pairing(self.get_pairing(token)?),
            Call::ClaimPairingSession { token } => Reply::Pairing(self.claim_pairing(token)?),
            // `Call` is non-exhaustive: a route added upstream and not yet
            // implemented here answers as an unknown route would.
            _ => return Err(reject(404, "not found")),
        })
    }

    // ----- daemon routes ---------------------------------------------------

    pub(crate) fn register(&mut self, request: &RegisterRequest) -> Result<RegisterResponse, Rejection> {
        if request.daemon_id.as_str().is_empty() {
            return Err(reject(400, "daemon_id is required"));
        }
        if request.workspace_id.as_str().is_empty() {
            return Err(reject(400, "workspace_id is required"));
        }
        if request.runtimes.is_empty() {
            return Err(reject(400, "at least one runtime is required"));
        }
        let repos = match self.workspace(&request.workspace_id) {
            Some(row) => row.workspace.repos.clone(),
            None => return Err(reject(404, "workspace not found")),
        };
        let runtimes = request
            .runtimes
            .iter()
            .map(|spec| {
                let id = self.upsert_runtime(
                    None,
                    &request.workspace_id,
                    Some(&request.daemon_id),
                    spec,
                    &request.device_name,
                );
                self.runtimes.get(&id).map(RuntimeRow::to_runtime).unwrap_or_default()
            })
            .collect();
        Ok(RegisterResponse { runtimes, repos })
    }

    /// Creates or updates the runtime of (workspace, daemon, provider), with
    /// the server's naming and status rules. Returns its ID.
    fn upsert_runtime(
        &mut self,
        fixed_id: Option<RuntimeId>,
        workspace_id: &WorkspaceId,
        daemon_id: Option<&DaemonId>,
        spec: &RuntimeSpec,
        device_name: &str,
    ) -> RuntimeId {
        let provider = if spec.provider.is_empty() { "unknown".to_owned() } else { spec.provider.clone() };
        let name = match (spec.name.is_empty(), device_name.is_empty()) {
            (false, _) => spec.name.clone(),
            (true, true) => provider.clone(),
            (true, false) => format!("{provider} ({device_name})"),
        };
        let status = if spec.status == RuntimeStatus::Offline { RuntimeStatus::Offline } else { RuntimeStatus::Online };
        let mut metadata = Map::new();
        metadata.insert("version".to_owned(), Value::String(spec.version.clone()));
        let now = self.now;
        let owner = daemon_id.map(|daemon| (workspace_id.clone(), daemon.clone(), provider.clone()));
        let existing = owner.as_ref().and_then(|key| self.runtime_by_owner.get(key)).cloned();
        if let Some(row) = existing.as_ref().and_then(|id| self.runtimes.get_mut(id)) {
            row.name = name;
            row.status = status;
            row.device_info = device_name.to_owned();
            row.metadata = metadata;
            row.last_seen = Some(now);
            row.updated = now;
            return row.id.clone();
        }
        let id = fixed_id.unwrap_or_else(|| self.new_id().into());
        let row = RuntimeRow {
            id: id.clone(),
            workspace_id: workspace_id.clone(),
            daemon_id: daemon_id.cloned(),
            name,
            provider,
            status,
            device_info: device_name.to_owned(),
            metadata,
            last_seen: Some(now),
            created: now,
            updated: now,
            heartbeats: 0,
            pending_pings: VecDeque::new(),
        };
        if let Some(key) = owner {
            self.runtime_by_owner.insert(key, id.clone());
        }
        self.runtimes.insert(id.clone(), row);
        self.runtime_order.push(id.clone());
        id
    }

    pub(crate) fn deregister(&mut self, runtime_ids: &[RuntimeId]) -> Result<(), Rejection> {
        if runtime_ids.is_empty() {
            return Err(reject(400, "runtime_ids is required"));
        }
        let now = self.now;
        for id in runtime_ids {
            if let Some(row) = self.runtimes.get_mut(id) {
                row.status = RuntimeStatus::Offline;
                row.updated = now;
            }
        }
        Ok(())
    }

    pub(crate) fn heartbeat(&mut self, runtime_id: &RuntimeId) -> Result<HeartbeatResponse, Rejection> {
        if runtime_id.as_str().is_empty() {
            return Err(reject(400, "runtime_id is required"));
        }
        let now = self.now;
        let Some(row) = self.runtimes.get_mut(runtime_id) else {
            return Err(reject(500, "heartbeat failed"));
        };
        if row.status != RuntimeStatus::Online {
            row.status = RuntimeStatus::Online;
        }
        row.last_seen = Some(now);
        row.updated = now;
        row.heartbeats += 1;
        let pending_ping = row.pending_pings.pop_front();
        if let Some(ping) = pending_ping.as_ref().and_then(|id| self.pings.get_mut(id)) {
            ping.sent = true;
        }
        Ok(HeartbeatResponse { status: "ok".to_owned(), pending_ping: pending_ping.map(|id| PendingPing { id }) })
    }

    pub(crate) fn claim(&mut self, runtime_id: &RuntimeId) -> Option<Task> {
        let (_, task_id) = self.queues.get_mut(runtime_id)?.pop_first()?;
        let now = self.now;
        let row = self.tasks.get_mut(&task_id)?;
        row.status = TaskStatus::Dispatched;
        row.dispatched = Some(now);
        let agent = self.agents.iter().find(|a| a.id == row.agent_id).map(|a| TaskAgent {
            id: a.id.clone(),
            name: a.name.clone(),
            instructions: a.instructions.clone(),
            skills: a.skills.clone(),
        });
        let repos = self
            .workspaces
            .iter()
            .find(|w| w.workspace.id == row.workspace_id)
            .map(|w| w.workspace.repos.clone())
            .unwrap_or_default();
        let (prior_session_id, prior_work_dir) =
            self.last_sessions.get(&(row.agent_id.clone(), row.issue_id.clone())).cloned().unwrap_or_default();
        Some(Task { record: row.record(), agent, repos, prior_session_id, prior_work_dir })
    }

    pub(crate) fn pending(&self, runtime_id: &RuntimeId) -> Vec<TaskRecord> {
        let mut rows: Vec<&TaskRow> = self
            .task_order
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .filter(|t| &t.runtime_id == runtime_id && matches!(t.status, TaskStatus::Queued | TaskStatus::Dispatched))
            .collect();
        rows.sort_by_key(|t| t.queue_key());
        rows.into_iter().map(TaskRow::record).collect()
    }

    pub(crate) fn report_usage(&mut self, runtime_id: &RuntimeId, entries: &[UsageEntry]) {
        // Rows of an unknown runtime break the foreign key and are dropped;
        // the server answers ok either way.
        if !self.runtimes.contains_key(runtime_id) {
            return;
        }
        for entry in entries.iter().filter(|e| is_valid_date(&e.date)) {
            let key = (runtime_id.clone(), entry.date.clone(), entry.provider.clone(), entry.model.clone());
            self.usage.insert(key, entry.clone());
        }
    }

    pub(crate) fn report_ping_result(&mut self, runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) {
        if let Some(ping) = self.pings.get_mut(ping_id).filter(|p| &p.runtime_id == runtime_id) {
            ping.result = Some(result.clone());
        }
    }

    pub(crate) fn task_status(&self, task_id: &multica_api::TaskId) -> Result<TaskStatus, Rejection> {
        self.tasks.get(task_id).map(|t| t.status.clone()).ok_or(TASK_NOT_FOUND)
    }

    /// The server's `UPDATE … WHERE id = $1 AND status IN (…) RETURNING *`:
    /// a wrong state and an unknown ID both match no row.
    fn transition(
        &mut self,
        task_id: &multica_api::TaskId,
        from: &[TaskStatus],
        no_rows: &'static str,
        apply: impl FnOnce(&mut TaskRow, Millis),
    ) -> Result<TaskRecord, Rejection> {
        let now = self.now;
        match self.tasks.get_mut(task_id) {
            Some(row) if from.contains(&row.status) => {
                apply(row, now);
                Ok(row.record())
            }
            _ => Err(reject(400, no_rows)),
        }
    }

    pub(crate) fn start(&mut self, task_id: &multica_api::TaskId) -> Result<TaskRecord, Rejection> {
        self.transition(task_id, &[TaskStatus::Dispatched], "start task: no rows in result set", |row, now| {
            row.status = TaskStatus::Running;
            row.started = Some(now);
        })
    }

    pub(crate) fn complete(
        &mut self,
        task_id: &multica_api::TaskId,
        completion: &TaskCompletion,
    ) -> Result<TaskRecord, Rejection> {
        let record =
            self.transition(task_id, &[TaskStatus::Running], "complete task: no rows in result set", |row, now| {
                row.status = TaskStatus::Completed;
                row.completed = Some(now);
                row.result = Some(json!({ "output": completion.output }));
                row.session_id = completion.session_id.clone();
                row.work_dir = completion.work_dir.clone();
            })?;
        // The server resumes from the newest completed task that has a session.
        if !completion.session_id.is_empty() {
            self.last_sessions.insert(
                (record.agent_id.clone(), record.issue_id.clone()),
                (completion.session_id.clone(), completion.work_dir.clone()),
            );
        }
        Ok(record)
    }

    pub(crate) fn fail(&mut self, task_id: &multica_api::TaskId, error: &str) -> Result<TaskRecord, Rejection> {
        self.transition(
            task_id,
            &[TaskStatus::Dispatched, TaskStatus::Running],
            "fail task: no rows in result set",
            |row, now| {
                row.status = TaskStatus::Failed;
                row.completed = Some(now);
                row.error = Some(error.to_owned());
            },
        )
    }

    pub(crate) fn report_progress(&mut self, task_id: &multica_api::TaskId, progress: &TaskProgress) {
        if let Some(row) = self.tasks.get_mut(task_id) {
            row.progress = Some(progress.clone());
        }
    }

    pub(crate) fn report_messages(
        &mut self,
        task_id: &multica_api::TaskId,
        messages: &[TaskMessage],
    ) -> Result<(), Rejection> {
        if messages.is_empty() {
            return Ok(());
        }
        let row = self.tasks.get_mut(task_id).ok_or(TASK_NOT_FOUND)?;
        row.messages.extend_from_slice(messages);
        Ok(())
    }

    pub(crate) fn list_messages(&self, task_id: &multica_api::TaskId) -> Vec<StoredTaskMessage> {
        self.tasks
            .get(task_id)
            .map(|row| {
                row.sorted_messages()
                    .into_iter()
                    .map(|message| StoredTaskMessage { task_id: row.id.clone(), message })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The auth middleware of `/api/workspaces`: no header → `missing
    /// authorization header`; anything but `Bearer <token>` → `invalid token`.
    pub(crate) fn list_workspaces(&self, authorization: Option<&str>) -> Result<Vec<Workspace>, Rejection> {
        if let Some(expected) = &self.expected_authorization {
            match authorization {
                None | Some("") => {
                    return Err(Rejection { from_auth: true, ..reject(401, "missing authorization header") })
                }
                Some(given) if given != expected => {
                    return Err(Rejection { from_auth: true, ..reject(401, "invalid token") })
                }
                Some(_) => {}
            }
        }
        Ok(self.workspaces.iter().map(|w| w.workspace.clone()).collect())
    }

    pub(crate) fn create_pairing(&mut self, request: &PairingRequest) -> PairingSession {
        let token = self.new_id();
        let now = self.now;
        let expires = now.after(PAIRING_TTL);
        let session = PairingSession {
            token: token.clone(),
            daemon_id: request.daemon_id.clone(),
            device_name: request.device_name.clone(),
            runtime_name: request.runtime_name.clone(),
            runtime_type: request.runtime_type.clone(),
            runtime_version: request.runtime_version.clone(),
            workspace_id: None,
            status: PairingStatus::Pending,
            approved_at: None,
            claimed_at: None,
            expires_at: expires.rfc3339(),
            created_at: now.rfc3339(),
            updated_at: now.rfc3339(),
            link_url: None,
        };
        self.pairings.insert(token.clone(), PairingRow { session: session.clone(), expires });
        self.pairing_order.push(token);
        session
    }

    /// The session, marked expired once the clock passes its expiry (unless claimed).
    fn pairing_mut(&mut self, token: &str) -> Result<&mut PairingSession, Rejection> {
        let now = self.now;
        let row = self.pairings.get_mut(token).ok_or(reject(404, "pairing session not found"))?;
        if now > row.expires && row.session.status != PairingStatus::Claimed {
            row.session.status = PairingStatus::Expired;
        }
        Ok(&mut row.session)
    }

    pub(crate) fn get_pairing(&mut self, token: &str) -> Result<PairingSession, Rejection> {
        self.pairing_mut(token).map(|s| s.clone())
    }

    pub(crate) fn claim_pairing(&mut self, token: &str) -> Result<PairingSession, Rejection> {
        let now = self.now;
        let session = self.pairing_mut(token)?;
        match session.status {
            PairingStatus::Approved => {
                session.status = PairingStatus::Claimed;
                session.claimed_at = Some(now.rfc3339());
                session.updated_at = now.rfc3339();
                Ok(session.clone())
            }
            PairingStatus::Expired => Err(reject(400, "pairing session expired")),
            _ => Err(reject(400, "pairing session is not approved")),
        }
    }

    // ----- controls --------------------------------------------------------

    fn workspace(&self, id: &WorkspaceId) -> Option<&WorkspaceRow> {
        self.workspaces.iter().find(|w| &w.workspace.id == id)
    }

    fn require_workspace(&self, id: &WorkspaceId) -> Result<(), Error> {
        match self.workspace(id) {
            Some(_) => Ok(()),
            None => Err(control_error(format!("unknown workspace \"{id}\""))),
        }
    }

    pub(crate) fn seed(&mut self, seed: &Seed) -> Result<(), Error> {
        for workspace in &seed.workspaces {
            self.add_workspace(workspace)?;
        }
        for agent in &seed.agents {
            self.add_agent(agent)?;
        }
        for runtime in &seed.runtimes {
            self.add_runtime(runtime)?;
        }
        for task in &seed.tasks {
            self.add_task(task)?;
        }
        Ok(())
    }

    pub(crate) fn add_workspace(&mut self, seed: &WorkspaceSeed) -> Result<WorkspaceId, Error> {
        let id = match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty workspace id".into())),
            Some(id) if self.workspace(id).is_some() => {
                return Err(control_error(format!("workspace \"{id}\" already exists")))
            }
            Some(id) => id.clone(),
            None => self.new_id().into(),
        };
        let slug = seed.slug.clone().unwrap_or_else(|| slug_of(&seed.name));
        let issue_prefix = seed.issue_prefix.clone().unwrap_or_else(|| prefix_of(&seed.name));
        let now = self.now.rfc3339();
        self.workspaces.push(WorkspaceRow {
            workspace: Workspace {
                id: id.clone(),
                name: seed.name.clone(),
                slug,
                description: seed.description.clone(),
                context: seed.context.clone(),
                settings: Map::new(),
                repos: seed.repos.clone(),
                issue_prefix,
                created_at: now.clone(),
                updated_at: now,
            },
        });
        Ok(id)
    }

    pub(crate) fn add_agent(&mut self, seed: &AgentSeed) -> Result<AgentId, Error> {
        self.require_workspace(&seed.workspace_id)?;
        let id = match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty agent id".into())),
            Some(id) if self.agents.iter().any(|a| &a.id == id) => {
                return Err(control_error(format!("agent \"{id}\" already exists")))
            }
            Some(id) => id.clone(),
            None => self.new_id().into(),
        };
        self.agents.push(AgentState {
            id: id.clone(),
            workspace_id: seed.workspace_id.clone(),
            name: seed.name.clone(),
            instructions: seed.instructions.clone(),
            skills: seed.skills.clone(),
        });
        Ok(id)
    }

    pub(crate) fn add_runtime(&mut self, seed: &RuntimeSeed) -> Result<RuntimeId, Error> {
        self.require_workspace(&seed.workspace_id)?;
        match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty runtime id".into())),
            Some(id) if self.runtimes.contains_key(id) => {
                return Err(control_error(format!("runtime \"{id}\" already exists")))
            }
            _ => {}
        }
        if let Some(daemon_id) = &seed.daemon_id {
            let provider = if seed.provider.is_empty() { "unknown" } else { &seed.provider };
            let key = (seed.workspace_id.clone(), daemon_id.clone(), provider.to_owned());
            if self.runtime_by_owner.contains_key(&key) {
                return Err(control_error(format!(
                    "daemon \"{daemon_id}\" already has a \"{provider}\" runtime in this workspace"
                )));
            }
        }
        let spec = RuntimeSpec {
            name: seed.name.clone(),
            provider: seed.provider.clone(),
            version: seed.version.clone(),
            status: seed.status.clone(),
        };
        let id =
            self.upsert_runtime(seed.id.clone(), &seed.workspace_id, seed.daemon_id.as_ref(), &spec, &seed.device_name);
        // A seeded runtime has not been seen by any daemon yet.
        if let Some(row) = self.runtimes.get_mut(&id) {
            row.last_seen = None;
        }
        Ok(id)
    }

    pub(crate) fn add_task(&mut self, seed: &TaskSeed) -> Result<multica_api::TaskId, Error> {
        let Some(runtime) = self.runtimes.get(&seed.runtime_id) else {
            return Err(control_error(format!("unknown runtime \"{}\"", seed.runtime_id)));
        };
        let workspace_id = runtime.workspace_id.clone();
        let id = match &seed.id {
            Some(id) if id.as_str().is_empty() => return Err(control_error("empty task id".into())),
            Some(id) if self.tasks.contains_key(id) => {
                return Err(control_error(format!("task \"{id}\" already exists")))
            }
            Some(id) => id.clone(),
            None => self.new_id().into(),
        };
        self.next_seq += 1;
        let row = TaskRow {
            id: id.clone(),
            agent_id: seed.agent_id.clone(),
            runtime_id: seed.runtime_id.clone(),
            issue_id: seed.issue_id.clone(),
            workspace_id,
            status: TaskStatus::Queued,
            priority: seed.priority,
            seq: self.next_seq,
            created: self.now,
            dispatched: None,
            started: None,
            completed: None,
            result: None,
            error: None,
            session_id: String::new(),
            work_dir: String::new(),
            progress: None,
            messages: Vec::new(),
        };
        self.queues.entry(seed.runtime_id.clone()).or_default().insert(row.queue_key(), id.clone());
        self.tasks.insert(id.clone(), row);
        self.task_order.push(id.clone());
        Ok(id)
    }

    /// Cancels a queued, dispatched or running task (the server's
    /// cancellation when an issue is reassigned or closed); a finished task
    /// is left as it is.
    pub(crate) fn cancel_task(&mut self, task_id: &multica_api::TaskId) -> Result<TaskRecord, Error> {
        let now = self.now;
        let Some(row) = self.tasks.get_mut(task_id) else {
            return Err(control_error(format!("unknown task \"{task_id}\"")));
        };
        if row.status == TaskStatus::Queued {
            if let Some(queue) = self.queues.get_mut(&row.runtime_id) {
                queue.remove(&row.queue_key());
            }
        }
        if matches!(row.status, TaskStatus::Queued | TaskStatus::Dispatched | TaskStatus::Running) {
            row.status = TaskStatus::Cancelled;
            row.completed = Some(now);
        }
        Ok(row.record())
    }

    pub(crate) fn create_ping(&mut self, runtime_id: &RuntimeId) -> Result<PingId, Error> {
        if !self.runtimes.contains_key(runtime_id) {
            return Err(control_error(format!("unknown runtime \"{runtime_id}\"")));
        }
        let id: PingId = self.new_id().into();
        if let Some(row) = self.runtimes.get_mut(runtime_id) {
            row.pending_pings.push_back(id.clone());
        }
        self.pings
            .insert(id.clone(), PingRow { id: id.clone(), runtime_id: runtime_id.clone(), sent: false, result: None });
        self.ping_order.push(id.clone());
        Ok(id)
    }

    pub(crate) fn approve_pairing(&mut self, token: &str, workspace_id: &WorkspaceId) -> Result<PairingSession, Error> {
        self.require_workspace(workspace_id)?;
        let now = self.now;
        let session =
            self.pairing_mut(token).map_err(|_| control_error(format!("unknown pairing session \"{token}\"")))?;
        if session.status != PairingStatus::Pending {
            return Err(control_error(format!("pairing session is {}, not pending", session.status)));
        }
        session.status = PairingStatus::Approved;
        session.workspace_id = Some(workspace_id.clone());
        session.approved_at = Some(now.rfc3339());
        session.updated_at = now.rfc3339();
        Ok(session.clone())
    }

    // ----- inspection ------------------------------------------------------

    pub(crate) fn task(&self, task_id: &multica_api::TaskId) -> Option<TaskRecord> {
        self.tasks.get(task_id).map(TaskRow::record)
    }

    pub(crate) fn progress(&self, task_id: &multica_api::TaskId) -> Option<TaskProgress> {
        self.tasks.get(task_id).and_then(|t| t.progress.clone())
    }

    pub(crate) fn runtime(&self, runtime_id: &RuntimeId) -> Option<Runtime> {
        self.runtimes.get(runtime_id).map(RuntimeRow::to_runtime)
    }

    pub(crate) fn heartbeats(&self, runtime_id: &RuntimeId) -> u64 {
        self.runtimes.get(runtime_id).map_or(0, |r| r.heartbeats)
    }

    pub(crate) fn usage_of(&self, runtime_id: &RuntimeId) -> Vec<UsageEntry> {
        self.usage.iter().filter(|(key, _)| &key.0 == runtime_id).map(|(_, entry)| entry.clone()).collect()
    }

    pub(crate) fn repos_of(&self, workspace_id: &WorkspaceId) -> Option<Vec<Repo>> {
        self.workspace(workspace_id).map(|w| w.workspace.repos.clone())
    }

    pub(crate) fn agent(&self, agent_id: &AgentId) -> Option<AgentState> {
        self.agents.iter().find(|a| &a.id == agent_id).cloned()
    }

    pub(crate) fn snapshot(&mut self) -> Snapshot {
        let tokens = self.pairing_order.clone();
        let pairing_sessions = tokens.iter().filter_map(|token| self.get_pairing(token).ok()).collect();
        Snapshot {
            now: self.now.rfc3339(),
            workspaces: self.workspaces.iter().map(|w| w.workspace.clone()).collect(),
            agents: self.agents.clone(),
            runtimes: self
                .runtime_order
                .iter()
                .filter_map(|id| self.runtimes.get(id))
                .map(|row| RuntimeState {
                    runtime: row.to_runtime(),
                    heartbeats: row.heartbeats,
                    pending_pings: row.pending_pings.iter().cloned().collect(),
                })
                .collect(),
            tasks: self
                .task_order
                .iter()
                .filter_map(|id| self.tasks.get(id))
                .map(|row| TaskState {
                    record: row.record(),
                    session_id: row.session_id.clone(),
                    work_dir: row.work_dir.clone(),
                    progress: row.progress.clone(),
                    messages: row.sorted_messages(),
                })
                .collect(),
            usage: self
                .usage
                .iter()
                .map(|(key, entry)| UsageRow { runtime_id: key.0.clone(), entry: entry.clone() })
                .collect(),
            pings: self
                .ping_order
                .iter()
                .filter_map(|id| self.pings.get(id))
                .map(|ping| PingState {
                    id: ping.id.clone(),
                    runtime_id: ping.runtime_id.clone(),
                    status: match (&ping.result, ping.sent) {
                        (Some(result), _) => result.status.to_string(),
                        (None, true) => "sent".to_owned(),
                        (None, false) => "pending".to_owned(),
                    },
                    result: ping.result.clone(),
                })
                .collect(),
            pairing_sessions,
            call_count: self.calls.total(),
        }
    }
}

/// `My Team` → `my-team`.
fn slug_of(name: &str) -> String {
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let slug = slug.trim_matches('-').to_owned();
    if slug.is_empty() {
        "workspace".to_owned()
    } else {
        slug
    }
}

/// `My Team` → `MYT`: the first three letters, upper case.
fn prefix_of(name: &str) -> String {
    let prefix: String =
        name.chars().filter(char::is_ascii_alphabetic).take(3).map(|c| c.to_ascii_uppercase()).collect();
    if prefix.is_empty() {
        "WS".to_owned()
    } else {
        prefix
    }
}
