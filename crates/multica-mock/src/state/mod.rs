//! The fake server's data. The semantics of every route (the crate docs;
//! `docs/protocol-3c93ebaf1c.md`, `docs/protocol-head.md`) are in
//! `routes`, the test controls (seeding, inspection) in `controls`.
//!
//! Everything here is synchronous and runs under the one state mutex: a call
//! is atomic, so two concurrent claims can never take the same task. Errors
//! are [`Rejection`]s (the status and `{"error":…}` message a handler
//! writes); the in-process API and the HTTP server turn them into the same
//! [`multica::Error`](multica_api::Error) / the same bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde_json::{json, Map, Value};

use multica_api::{
    AgentId, Call, DaemonId, Error, HeartbeatResponse, IssueId, PairingRequest, PairingSession, PairingStatus,
    PendingPing, PingId, PingResult, RegisterRequest, RegisterResponse, Repo, Runtime, RuntimeId, RuntimeSpec,
    RuntimeStatus, StoredTaskMessage, Task, TaskAgent, TaskCompletion, TaskMessage, TaskProgress, TaskRecord,
    TaskStatus, UsageEntry, Workspace, WorkspaceId,
};

use crate::clock::{is_valid_date, DbTime, Millis};
use crate::faults::Faults;
use crate::inspect::{AgentState, PingState, RuntimeState, Snapshot, TaskState, UsageRow};
use crate::log::CallLog;
use crate::requests::Rerun;
use crate::seed::{AgentSeed, IssueSeed, RuntimeSeed, Seed, TaskSeed, WorkspaceSeed};
use crate::version::{ServerVersion, VersionRules};
use multica_api::TaskId;

mod auth;
mod builtin_skills;
mod channel;
mod controls;
mod failure;
mod head;
mod head_routes;
mod ids;
mod jwt;
mod profiles;
mod routes;
mod runtime_requests;
mod scheduler;

pub(crate) use auth::Identity;
pub(crate) use channel::ChannelHeartbeat;
pub(crate) use head::has_route;
pub(crate) use ids::canonical;
pub use jwt::DEFAULT_JWT_SECRET;
use runtime_requests::requests_kind;
pub use scheduler::DEFAULT_MAX_CONCURRENT_TASKS;

/// How long a pairing session stays open, as the server's default.
const PAIRING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// Where pairing links point unless configured: the server's default
/// frontend URL (also the one origin its CORS policy allows).
pub const DEFAULT_FRONTEND_URL: &str = "http://localhost:3000";

/// Who writes a refusal, which decides its bytes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer {
    /// A handler: `application/json`, `{"error":…}` and a newline.
    Handler,
    /// The user auth middleware: Go's `http.Error` (plain text, `nosniff`).
    UserAuth,
    /// HEAD's daemon auth middleware: `application/json`, no newline.
    DaemonAuth,
}

/// What a request carries besides its call: the headers the server reads.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Caller<'a> {
    /// The `Authorization` value.
    pub(crate) authorization: Option<&'a str>,
    /// The `X-Client-Capabilities` value (HEAD reads it at register and claim).
    pub(crate) capabilities: Option<&'a str>,
    /// The `If-None-Match` value (HEAD's daemon workspace list).
    pub(crate) if_none_match: Option<&'a str>,
}

impl Caller<'_> {
    /// The capabilities, trimmed, in the order sent; `None` without the header.
    pub(crate) fn capability_list(&self) -> Option<Vec<String>> {
        self.capabilities
            .map(|text| text.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect())
    }

    /// Whether the client announced `capability`.
    pub(crate) fn has_capability(&self, capability: &str) -> bool {
        self.capability_list().is_some_and(|list| list.iter().any(|c| c == capability))
    }
}

/// The ID of the user the configured token belongs to, unless seeded.
pub(crate) const DEFAULT_USER_ID: &str = "00000000-0000-4000-a000-000000000001";

/// A handler's refusal: the status and the `error` message of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: u16,
    pub(crate) message: std::borrow::Cow<'static, str>,
    pub(crate) writer: Writer,
}

const fn reject(status: u16, message: &'static str) -> Rejection {
    Rejection { status, message: std::borrow::Cow::Borrowed(message), writer: Writer::Handler }
}

/// A refusal whose message names what was sent (`unknown runtime profile: <id>`).
fn reject_with(status: u16, message: String) -> Rejection {
    Rejection { status, message: std::borrow::Cow::Owned(message), writer: Writer::Handler }
}

const TASK_NOT_FOUND: Rejection = reject(404, "task not found");
/// A call the fake does not implement (a route newer than it): the
/// in-process API answers it as Go's router answers an unknown path.
pub(crate) const ROUTE_NOT_FOUND: Rejection = reject(404, "404 page not found");

/// What a call answers on success (the HTTP body's shape).
// A claimed task carries the HEAD claim fields and is much larger than the
// other replies; a reply is built and moved once per call, so boxing it
// would buy nothing.
#[allow(clippy::large_enum_variant)]
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
    /// A HEAD-only route's answer, in the SDK's shape.
    Api(multica_api::Reply),
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
    /// HEAD: the user who registered it with a personal token.
    owner: Option<String>,
    /// HEAD: the custom runtime profile it is an instance of.
    profile_id: Option<String>,
}

impl RuntimeRow {
    fn to_runtime(&self) -> Runtime {
        let mut runtime = Runtime::default();
        runtime.id = self.id.clone();
        runtime.workspace_id = self.workspace_id.clone();
        runtime.daemon_id = self.daemon_id.clone();
        runtime.name = self.name.clone();
        runtime.runtime_mode = "local".to_owned();
        runtime.provider = self.provider.clone();
        runtime.status = self.status.clone();
        runtime.device_info = self.device_info.clone();
        runtime.metadata = self.metadata.clone();
        runtime.last_seen_at = self.last_seen.map(Millis::rfc3339);
        runtime.created_at = self.created.rfc3339();
        runtime.updated_at = self.updated.rfc3339();
        runtime
    }

    /// The runtime as HEAD answers it: launch header, owner, visibility.
    fn to_runtime_head(&self) -> Runtime {
        let launch_header = match self.provider.as_str() {
            "claude" => "claude (stream-json)",
            "codex" => "codex app-server",
            _ => "",
        };
        let mut runtime = self.to_runtime();
        runtime.launch_header = Some(launch_header.to_owned());
        runtime.owner_id = self.owner.clone().map(Into::into);
        runtime.profile_id = self.profile_id.clone().map(Into::into);
        runtime.visibility = Some("private".to_owned());
        runtime
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
    /// HEAD: when each of `messages` was stored, in the same order.
    message_times: Vec<DbTime>,
    /// The user who assigned the task (HEAD's `attribution`).
    initiator: Option<String>,
    head: head::TaskHead,
}

impl TaskRow {
    fn record(&self) -> TaskRecord {
        let mut record = TaskRecord::default();
        record.id = self.id.clone();
        record.agent_id = self.agent_id.clone();
        record.runtime_id = self.runtime_id.clone();
        record.issue_id = self.issue_id.clone();
        record.workspace_id = self.workspace_id.clone();
        record.status = self.status.clone();
        record.priority = self.priority;
        record.dispatched_at = self.dispatched.map(Millis::rfc3339);
        record.started_at = self.started.map(Millis::rfc3339);
        record.completed_at = self.completed.map(Millis::rfc3339);
        record.result = self.result.clone();
        record.error = self.error.clone();
        record.created_at = self.created.rfc3339();
        record
    }

    /// The row as the server's `UPDATE … RETURNING` and pending queries
    /// return it: their query does not fill `workspace_id` (the claim's does).
    fn record_unjoined(&self) -> TaskRecord {
        let mut record = self.record();
        record.workspace_id = WorkspaceId::default();
        record
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
/// What the fake knows of an issue besides its status.
#[derive(Debug, Clone, Default)]
struct IssueInfo {
    title: String,
    /// The issue's number within its workspace.
    number: Option<i64>,
    /// The workspace of its first task, once one was queued.
    workspace_id: Option<WorkspaceId>,
}

#[derive(Debug)]
pub(crate) struct State {
    /// The server whose rules apply.
    pub(crate) version: ServerVersion,
    /// Token text → credential (HEAD's daemon and user routes).
    tokens: HashMap<String, auth::Credential>,
    now: Millis,
    next_id: u64,
    next_seq: u64,
    /// `Bearer <token>` when auth is on.
    expected_authorization: Option<String>,
    pub(crate) calls: CallLog,
    pub(crate) faults: Faults,
    /// The daemon WebSocket channel's connections: where pushes go.
    pub(crate) hub: std::sync::Arc<crate::ws::Hub>,
    /// During a bulk transition, the runtimes whose tasks ended: each is
    /// hinted once when it is over.
    finished_runtimes: Option<Vec<RuntimeId>>,
    workspaces: Vec<WorkspaceRow>,
    agents: Vec<AgentState>,
    runtimes: HashMap<RuntimeId, RuntimeRow>,
    runtime_order: Vec<RuntimeId>,
    runtime_by_owner: HashMap<(WorkspaceId, DaemonId, String), RuntimeId>,
    /// HEAD: custom runtimes by (workspace, daemon, profile ID).
    runtime_by_profile: HashMap<(WorkspaceId, DaemonId, String), RuntimeId>,
    /// HEAD: custom runtime profiles.
    profiles: Vec<profiles::ProfileRow>,
    tasks: HashMap<multica_api::TaskId, TaskRow>,
    task_order: Vec<multica_api::TaskId>,
    /// Per runtime, its queued and dispatched tasks in claim order: what a
    /// claim walks and the pending list shows.
    queues: HashMap<RuntimeId, BTreeMap<QueueKey, multica_api::TaskId>>,
    /// Per agent, its queued tasks across all runtimes, in claim order.
    agent_queues: HashMap<AgentId, BTreeMap<QueueKey, multica_api::TaskId>>,
    /// Per agent, how many of its tasks are dispatched or running.
    agent_busy: HashMap<AgentId, u32>,
    /// Issue statuses (an issue not listed is open).
    issues: HashMap<IssueId, String>,
    /// Issue titles and numbers (HEAD claims name them).
    issue_info: HashMap<IssueId, IssueInfo>,
    /// Pinned bundle hashes of workspace skills, by (agent, skill name).
    skill_hashes: HashMap<(AgentId, String), String>,
    /// The last sweep's time: the sweeper runs every 30 s of fake time.
    last_sweep: Millis,
    /// Base of pairing links (`<frontend>/pair/local?token=…`) and the origin CORS allows.
    pub(crate) frontend_url: String,
    /// The user the configured token belongs to: (ID, name).
    user: (String, String),
    /// HEAD: the newest session and work dir per (agent, issue), from any
    /// completed or failed attempt that reported one.
    head_sessions: HashMap<(AgentId, IssueId), (String, String, RuntimeId)>,
    /// HEAD: task usage per (task, provider, model).
    task_usage: BTreeMap<(multica_api::TaskId, String, String), multica_api::TaskUsage>,
    /// Session and work dir of the last completed task per (agent, issue).
    last_sessions: HashMap<(AgentId, IssueId), (String, String)>,
    usage: BTreeMap<(RuntimeId, String, String, String), UsageEntry>,
    pings: HashMap<PingId, PingRow>,
    ping_order: Vec<PingId>,
    pairings: HashMap<String, PairingRow>,
    pairing_order: Vec<String>,
    /// The database's stamps at the current fake time: (that time, how many
    /// writes it stamped).
    db_stamps: (Millis, u64),
    /// The secret login JWTs are signed with.
    pub(crate) jwt_secret: Vec<u8>,
    /// HEAD: runtime requests users made (model lists, local skills,
    /// imports, updates), oldest first.
    runtime_requests: Vec<runtime_requests::RequestRow>,
}

fn control_error(message: String) -> Error {
    Error::InvalidArgument(message)
}

impl State {
    pub(crate) fn new(version: ServerVersion, start: Millis, token: Option<&str>, call_log_capacity: usize) -> Self {
        let tokens = token
            .map(|t| (t.to_owned(), auth::Credential::Personal { user: None, member_of: None }))
            .into_iter()
            .collect();
        Self {
            version,
            tokens,
            now: start,
            next_id: 0,
            next_seq: 0,
            expected_authorization: token.map(|t| format!("Bearer {t}")),
            calls: CallLog::new(call_log_capacity),
            faults: Faults::default(),
            hub: std::sync::Arc::default(),
            finished_runtimes: None,
            workspaces: Vec::new(),
            agents: Vec::new(),
            runtimes: HashMap::new(),
            runtime_order: Vec::new(),
            runtime_by_owner: HashMap::new(),
            runtime_by_profile: HashMap::new(),
            profiles: Vec::new(),
            tasks: HashMap::new(),
            task_order: Vec::new(),
            queues: HashMap::new(),
            agent_queues: HashMap::new(),
            agent_busy: HashMap::new(),
            issues: HashMap::new(),
            issue_info: HashMap::new(),
            skill_hashes: HashMap::new(),
            last_sweep: start,
            frontend_url: DEFAULT_FRONTEND_URL.to_owned(),
            user: (DEFAULT_USER_ID.to_owned(), String::new()),
            head_sessions: HashMap::new(),
            task_usage: BTreeMap::new(),
            last_sessions: HashMap::new(),
            usage: BTreeMap::new(),
            pings: HashMap::new(),
            ping_order: Vec::new(),
            pairings: HashMap::new(),
            pairing_order: Vec::new(),
            runtime_requests: Vec::new(),
            jwt_secret: DEFAULT_JWT_SECRET.as_bytes().to_vec(),
            db_stamps: (start, 0),
        }
    }

    /// Logs a call that reached the fake by `transport` (counted even when
    /// the log is off).
    pub(crate) fn log_call(&mut self, call: Call, transport: crate::log::Transport) {
        self.calls.count();
        if self.calls.is_recording() {
            self.calls.push(call, transport);
        }
    }

    /// When the database stamps a write now: the fake time plus the
    /// microseconds the writes since the clock last moved took, 2 µs each
    /// (the first 1 µs in), so successive writes at one fake time are
    /// ordered and, like the server's, carry a microsecond fraction.
    fn db_stamp(&mut self) -> DbTime {
        if self.db_stamps.0 != self.now {
            self.db_stamps = (self.now, 0);
        }
        self.db_stamps.1 += 1;
        DbTime::at(self.now, self.db_stamps.1 * 2 - 1)
    }

    /// A new UUID-looking ID from a counter: deterministic across runs.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }

    /// 32 lowercase hex digits, as the server's ping IDs and pairing
    /// tokens: deterministic, but not all zeros.
    fn new_hex_id(&mut self) -> String {
        self.next_id += 1;
        let mix = |mut z: u64| {
            // splitmix64
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        format!("{:016x}{:016x}", mix(self.next_id), mix(!self.next_id))
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
