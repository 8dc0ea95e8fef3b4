//! Pure request building and response parsing, one function per call.
//!
//! No IO happens here: a transport takes the [`WireRequest`] (method, encoded
//! path, JSON body), sends it however it likes, and hands the status and body
//! bytes back to [`Request::decode_response`]. The hyper client, any other
//! transport and the tests all go through these functions.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dto::{
    AutopilotRunGcCheck, BatchClaimRequest, BatchClaimResponse, CancelAck, ClaimResponse, DaemonWorkspace,
    DeregisterRequest, GcCheck, HeartbeatRequest, HeartbeatResponse, IssueGcCheckResponse, IssueGcStatus,
    LocalDirectoryWait, LocalSkillsResult, ModelListResult, OrphanRecovery, PairingRequest, PairingSession, PingResult,
    RegisterRequest, RegisterResponse, RuntimeProfiles, SessionPin, SkillBundle, SkillBundleRequest,
    SkillBundleResponse, SkillImportResult, StoredTaskMessage, Task, TaskCompletion, TaskFailure, TaskGcCheck,
    TaskMessage, TaskProgress, TaskRecord, TaskStatus, TaskStatusResponse, TaskUsage, UpdateResult, UsageEntry,
    Workspace, WorkspaceRepos,
};
use crate::error::{Error, Result};
use crate::ids::{IssueId, PingId, RuntimeId, RuntimeRequestId, TaskId, WorkspaceId};
use crate::reply::Reply;
use crate::route::{Endpoint, Method};
use crate::serde_util::null_as_default as nd;

/// The JSON body of a POST that carries no data, as the Go client sends it.
pub const EMPTY_BODY: &[u8] = b"{}";

/// A request ready for any transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireRequest {
    /// Which route.
    pub endpoint: Endpoint,
    /// The path from `/api`, IDs percent-encoded; append it to the base URL.
    pub path: String,
    /// The JSON body: always present for POST (`{}` when empty), absent for GET.
    pub body: Option<Vec<u8>>,
}

impl WireRequest {
    /// The route's method.
    pub fn method(&self) -> Method {
        self.endpoint.method()
    }
}

/// A [`WireRequest`] that knows how to read its answer into `T`.
pub struct Request<T> {
    wire: WireRequest,
    decode: fn(&[u8]) -> serde_json::Result<T>,
}

impl<T> std::fmt::Debug for Request<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.wire.fmt(f)
    }
}

impl<T> Request<T> {
    /// The same request, read as a [`Reply`] of its route (what
    /// [`Call::to_request`](crate::Call::to_request) hands to transports).
    pub fn into_reply_request(self) -> Request<Reply> {
        let decode = reply_decoder(self.wire.endpoint);
        Request { wire: self.wire, decode }
    }

    /// The bytes to send.
    pub fn wire(&self) -> &WireRequest {
        &self.wire
    }

    /// Takes the bytes to send, keeping nothing.
    pub fn into_wire(self) -> WireRequest {
        self.wire
    }

    /// The route's method.
    pub fn method(&self) -> Method {
        self.wire.method()
    }

    /// Takes the body out, for a transport that sends it by value without
    /// copying it; the request still decodes the answer.
    pub fn take_body(&mut self) -> Option<Vec<u8>> {
        self.wire.body.take()
    }

    /// The percent-encoded path.
    pub fn path(&self) -> &str {
        &self.wire.path
    }

    /// Reads an answer: a non-2xx status is an [`Error::Status`] (with the
    /// body cut to 4096 bytes), a 2xx body that is not the expected JSON is
    /// an [`Error::Decode`]. Calls whose result the Go client ignores accept
    /// any 2xx body.
    pub fn decode_response(&self, status: u16, body: &[u8]) -> Result<T> {
        decode_answer(self.wire.method(), &self.wire.path, status, body, self.decode)
    }
}

/// Whether a status is a success (2xx). Transports read at most
/// [`crate::MAX_ERROR_BODY_BYTES`] of the body of any other.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

fn decode_answer<T>(
    method: Method,
    path: &str,
    status: u16,
    body: &[u8],
    decode: fn(&[u8]) -> serde_json::Result<T>,
) -> Result<T> {
    if !is_success(status) {
        return Err(Error::from_status(method, path, status, body));
    }
    decode(body).map_err(|source| Error::Decode { method, path: path.to_owned(), source: std::sync::Arc::new(source) })
}

fn json<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(body)
}

/// The answer of a call whose result the Go client drains and drops.
fn ignore(_: &[u8]) -> serde_json::Result<()> {
    Ok(())
}

fn to_body(endpoint: Endpoint, value: &impl Serialize) -> Result<Vec<u8>> {
    to_body_with_capacity(endpoint, value, 128)
}

/// Encodes into a buffer of about the right size up front: growing one from
/// serde_json's 128 bytes to a batch of messages costs 10 % of the encoding.
fn to_body_with_capacity(endpoint: Endpoint, value: &impl Serialize, capacity: usize) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value)
        .map_err(|err| Error::InvalidArgument(format!("{}: cannot encode the request body: {err}", endpoint.name())))?;
    Ok(body)
}

fn build<T>(
    endpoint: Endpoint,
    params: &[&str],
    body: Option<Vec<u8>>,
    decode: fn(&[u8]) -> serde_json::Result<T>,
) -> Result<Request<T>> {
    let body = match endpoint.method() {
        Method::Post => Some(body.unwrap_or_else(|| EMPTY_BODY.to_vec())),
        Method::Get => None,
    };
    Ok(Request { wire: WireRequest { endpoint, path: endpoint.path(params)?, body }, decode })
}

fn post<T>(
    endpoint: Endpoint,
    params: &[&str],
    body: &impl Serialize,
    decode: fn(&[u8]) -> serde_json::Result<T>,
) -> Result<Request<T>> {
    build(endpoint, params, Some(to_body(endpoint, body)?), decode)
}

// Bodies that wrap one field. Generic so that the client serializes borrowed
// data and the fake decodes owned data through the same field names.

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct RuntimeIdsBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) runtime_ids: T,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct HeartbeatBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) runtime_id: T,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct EntriesBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) entries: T,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct MessagesBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) messages: T,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct FailBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) error: T,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct UsageBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) usage: T,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub(crate) struct IssueIdsBody<T> {
    #[serde(default, deserialize_with = "nd")]
    pub(crate) issue_ids: T,
}

/// The query parameter of [`list_task_messages_since`].
pub(crate) const SINCE_PARAMETER: &str = "since";

/// `POST /api/daemon/register`.
pub fn register(request: &RegisterRequest) -> Result<Request<RegisterResponse>> {
    post(Endpoint::Register, &[], request, json)
}

/// `POST /api/daemon/deregister`.
pub fn deregister(runtime_ids: &[RuntimeId]) -> Result<Request<()>> {
    post(Endpoint::Deregister, &[], &RuntimeIdsBody { runtime_ids }, ignore)
}

/// `POST /api/daemon/heartbeat`.
pub fn send_heartbeat(runtime_id: &RuntimeId) -> Result<Request<HeartbeatResponse>> {
    post(Endpoint::SendHeartbeat, &[], &HeartbeatBody { runtime_id }, json)
}

/// `POST /api/daemon/runtimes/{runtimeId}/tasks/claim`.
pub fn claim_task(runtime_id: &RuntimeId) -> Result<Request<Option<Task>>> {
    build(Endpoint::ClaimTask, &[runtime_id.as_str()], None, claimed)
}

/// `GET /api/daemon/runtimes/{runtimeId}/tasks/pending`.
pub fn list_pending_tasks(runtime_id: &RuntimeId) -> Result<Request<Vec<TaskRecord>>> {
    build(Endpoint::ListPendingTasks, &[runtime_id.as_str()], None, json_list)
}

/// `POST /api/daemon/runtimes/{runtimeId}/usage`.
pub fn report_usage(runtime_id: &RuntimeId, entries: &[UsageEntry]) -> Result<Request<()>> {
    post(Endpoint::ReportUsage, &[runtime_id.as_str()], &EntriesBody { entries }, ignore)
}

/// `POST /api/daemon/runtimes/{runtimeId}/ping/{pingId}/result`.
pub fn report_ping_result(runtime_id: &RuntimeId, ping_id: &PingId, result: &PingResult) -> Result<Request<()>> {
    post(Endpoint::ReportPingResult, &[runtime_id.as_str(), ping_id.as_str()], result, ignore)
}

/// `GET /api/daemon/tasks/{taskId}/status`.
pub fn get_task_status(task_id: &TaskId) -> Result<Request<TaskStatus>> {
    build(Endpoint::GetTaskStatus, &[task_id.as_str()], None, task_status)
}

/// `POST /api/daemon/tasks/{taskId}/start`.
pub fn start_task(task_id: &TaskId) -> Result<Request<()>> {
    build(Endpoint::StartTask, &[task_id.as_str()], None, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/progress`.
pub fn report_progress(task_id: &TaskId, progress: &TaskProgress) -> Result<Request<()>> {
    post(Endpoint::ReportProgress, &[task_id.as_str()], progress, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/complete`.
pub fn complete_task(task_id: &TaskId, completion: &TaskCompletion) -> Result<Request<()>> {
    post(Endpoint::CompleteTask, &[task_id.as_str()], completion, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/fail`.
pub fn fail_task(task_id: &TaskId, error: &str) -> Result<Request<()>> {
    post(Endpoint::FailTask, &[task_id.as_str()], &FailBody { error }, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/messages`.
pub fn report_task_messages(task_id: &TaskId, messages: &[TaskMessage]) -> Result<Request<()>> {
    let endpoint = Endpoint::ReportTaskMessages;
    // The text plus room for the keys, the sequence number and a small tool input.
    let capacity = messages.iter().map(|m| m.tool.len() + m.content.len() + m.output.len() + 96).sum::<usize>() + 16;
    let body = to_body_with_capacity(endpoint, &MessagesBody { messages }, capacity)?;
    build(endpoint, &[task_id.as_str()], Some(body), ignore)
}

/// `GET /api/daemon/tasks/{taskId}/messages`.
pub fn list_task_messages(task_id: &TaskId) -> Result<Request<Vec<StoredTaskMessage>>> {
    build(Endpoint::ListTaskMessages, &[task_id.as_str()], None, json_list)
}

/// `GET /api/workspaces`.
pub fn list_workspaces() -> Result<Request<Vec<Workspace>>> {
    build(Endpoint::ListWorkspaces, &[], None, json_list)
}

/// `POST /api/daemon/pairing-sessions`.
pub fn create_pairing_session(request: &PairingRequest) -> Result<Request<PairingSession>> {
    post(Endpoint::CreatePairingSession, &[], request, json)
}

/// `GET /api/daemon/pairing-sessions/{token}`.
pub fn get_pairing_session(token: &str) -> Result<Request<PairingSession>> {
    build(Endpoint::GetPairingSession, &[token], None, json)
}

/// `POST /api/daemon/pairing-sessions/{token}/claim`.
pub fn claim_pairing_session(token: &str) -> Result<Request<PairingSession>> {
    build(Endpoint::ClaimPairingSession, &[token], None, json)
}

/// `POST /api/daemon/deregister` with the HEAD 1cc46b2697 body; without
/// `offline_reasons` it is byte-identical to [`deregister`].
pub fn deregister_with(request: &DeregisterRequest) -> Result<Request<()>> {
    post(Endpoint::Deregister, &[], request, ignore)
}

/// `POST /api/daemon/heartbeat` with the HEAD 1cc46b2697 body; without
/// `supports_batch_import` it is byte-identical to [`send_heartbeat`].
pub fn send_heartbeat_with(request: &HeartbeatRequest) -> Result<Request<HeartbeatResponse>> {
    post(Endpoint::SendHeartbeat, &[], request, json)
}

/// `POST /api/daemon/tasks/{taskId}/fail` with the HEAD 1cc46b2697 body;
/// [`TaskFailure::new`] alone is byte-identical to [`fail_task`].
pub fn fail_task_with(task_id: &TaskId, failure: &TaskFailure) -> Result<Request<()>> {
    post(Endpoint::FailTask, &[task_id.as_str()], failure, ignore)
}

/// `GET /api/daemon/tasks/{taskId}/messages?since={since}`: at HEAD
/// 1cc46b2697 only the messages with `seq > since`; 3c93ebaf1c ignores the
/// query and answers them all.
pub fn list_task_messages_since(task_id: &TaskId, since: i64) -> Result<Request<Vec<StoredTaskMessage>>> {
    let mut request = build(Endpoint::ListTaskMessages, &[task_id.as_str()], None, json_list)?;
    request.wire.path = format!("{}?{SINCE_PARAMETER}={since}", request.wire.path);
    Ok(request)
}

/// `POST /api/daemon/tasks/claim` (HEAD 1cc46b2697): the batch claim.
pub fn claim_tasks(request: &BatchClaimRequest) -> Result<Request<Vec<Task>>> {
    post(Endpoint::ClaimTasks, &[], request, claimed_tasks)
}

/// `POST /api/daemon/runtimes/{runtimeId}/tasks/{taskId}/prepare-lease`
/// (HEAD 1cc46b2697).
pub fn extend_prepare_lease(runtime_id: &RuntimeId, task_id: &TaskId) -> Result<Request<TaskRecord>> {
    build(Endpoint::ExtendPrepareLease, &[runtime_id.as_str(), task_id.as_str()], None, json)
}

/// `POST /api/daemon/runtimes/{runtimeId}/tasks/{taskId}/skill-bundles/resolve`
/// (HEAD 1cc46b2697).
pub fn resolve_skill_bundles(
    runtime_id: &RuntimeId,
    task_id: &TaskId,
    request: &SkillBundleRequest,
) -> Result<Request<Vec<SkillBundle>>> {
    post(Endpoint::ResolveSkillBundles, &[runtime_id.as_str(), task_id.as_str()], request, skill_bundles)
}

/// `POST /api/daemon/runtimes/{runtimeId}/recover-orphans` (HEAD 1cc46b2697).
pub fn recover_orphans(runtime_id: &RuntimeId) -> Result<Request<OrphanRecovery>> {
    build(Endpoint::RecoverOrphans, &[runtime_id.as_str()], None, json)
}

/// `POST /api/daemon/runtimes/{runtimeId}/models/{requestId}/result` (HEAD 1cc46b2697).
pub fn report_model_list(
    runtime_id: &RuntimeId,
    request_id: &RuntimeRequestId,
    result: &ModelListResult,
) -> Result<Request<()>> {
    post(Endpoint::ReportModelList, &[runtime_id.as_str(), request_id.as_str()], result, ignore)
}

/// `POST /api/daemon/runtimes/{runtimeId}/local-skills/{requestId}/result` (HEAD 1cc46b2697).
pub fn report_local_skills(
    runtime_id: &RuntimeId,
    request_id: &RuntimeRequestId,
    result: &LocalSkillsResult,
) -> Result<Request<()>> {
    post(Endpoint::ReportLocalSkills, &[runtime_id.as_str(), request_id.as_str()], result, ignore)
}

/// `POST /api/daemon/runtimes/{runtimeId}/local-skills/import/{requestId}/result` (HEAD 1cc46b2697).
pub fn report_skill_import(
    runtime_id: &RuntimeId,
    request_id: &RuntimeRequestId,
    result: &SkillImportResult,
) -> Result<Request<()>> {
    post(Endpoint::ReportSkillImport, &[runtime_id.as_str(), request_id.as_str()], result, ignore)
}

/// `POST /api/daemon/runtimes/{runtimeId}/update/{updateId}/result` (HEAD 1cc46b2697).
pub fn report_update_result(
    runtime_id: &RuntimeId,
    update_id: &RuntimeRequestId,
    result: &UpdateResult,
) -> Result<Request<()>> {
    post(Endpoint::ReportUpdateResult, &[runtime_id.as_str(), update_id.as_str()], result, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/wait-local-directory` (HEAD 1cc46b2697).
pub fn wait_local_directory(task_id: &TaskId, wait: &LocalDirectoryWait) -> Result<Request<TaskRecord>> {
    post(Endpoint::WaitLocalDirectory, &[task_id.as_str()], wait, json)
}

/// `POST /api/daemon/tasks/{taskId}/usage` (HEAD 1cc46b2697).
pub fn report_task_usage(task_id: &TaskId, usage: &[TaskUsage]) -> Result<Request<()>> {
    post(Endpoint::ReportTaskUsage, &[task_id.as_str()], &UsageBody { usage }, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/cancel-ack` (HEAD 1cc46b2697).
pub fn ack_cancel(task_id: &TaskId, ack: &CancelAck) -> Result<Request<()>> {
    post(Endpoint::AckCancel, &[task_id.as_str()], ack, ignore)
}

/// `POST /api/daemon/tasks/{taskId}/session` (HEAD 1cc46b2697; 204 without a body).
pub fn pin_session(task_id: &TaskId, pin: &SessionPin) -> Result<Request<()>> {
    post(Endpoint::PinSession, &[task_id.as_str()], pin, ignore)
}

/// `GET /api/daemon/tasks/{taskId}/gc-check` (HEAD 1cc46b2697).
pub fn get_task_gc_check(task_id: &TaskId) -> Result<Request<TaskGcCheck>> {
    build(Endpoint::GetTaskGcCheck, &[task_id.as_str()], None, json)
}

/// `GET /api/daemon/issues/{issueId}/gc-check` (HEAD 1cc46b2697).
pub fn get_issue_gc_check(issue_id: &IssueId) -> Result<Request<GcCheck>> {
    build(Endpoint::GetIssueGcCheck, &[issue_id.as_str()], None, json)
}

/// `GET /api/daemon/chat-sessions/{sessionId}/gc-check` (HEAD 1cc46b2697).
pub fn get_chat_session_gc_check(session_id: &str) -> Result<Request<GcCheck>> {
    build(Endpoint::GetChatSessionGcCheck, &[session_id], None, json)
}

/// `GET /api/daemon/autopilot-runs/{runId}/gc-check` (HEAD 1cc46b2697).
pub fn get_autopilot_run_gc_check(run_id: &str) -> Result<Request<AutopilotRunGcCheck>> {
    build(Endpoint::GetAutopilotRunGcCheck, &[run_id], None, json)
}

/// `POST /api/daemon/workspaces/{workspaceId}/issues/gc-check` (HEAD 1cc46b2697).
pub fn check_issues_gc(workspace_id: &WorkspaceId, issue_ids: &[IssueId]) -> Result<Request<Vec<IssueGcStatus>>> {
    post(Endpoint::CheckIssuesGc, &[workspace_id.as_str()], &IssueIdsBody { issue_ids }, issue_gc_checks)
}

/// `GET /api/daemon/workspaces` (HEAD 1cc46b2697).
pub fn list_daemon_workspaces() -> Result<Request<Vec<DaemonWorkspace>>> {
    build(Endpoint::ListDaemonWorkspaces, &[], None, json_list)
}

/// `GET /api/daemon/workspaces/{workspaceId}/repos` (HEAD 1cc46b2697).
pub fn get_workspace_repos(workspace_id: &WorkspaceId) -> Result<Request<WorkspaceRepos>> {
    build(Endpoint::GetWorkspaceRepos, &[workspace_id.as_str()], None, json)
}

/// `GET /api/daemon/workspaces/{workspaceId}/runtime-profiles` (HEAD 1cc46b2697).
pub fn list_runtime_profiles(workspace_id: &WorkspaceId) -> Result<Request<RuntimeProfiles>> {
    build(Endpoint::ListRuntimeProfiles, &[workspace_id.as_str()], None, json)
}

/// The batch claim's answer: `{"tasks": […]}`.
fn claimed_tasks(body: &[u8]) -> serde_json::Result<Vec<Task>> {
    json::<BatchClaimResponse>(body).map(|answer| answer.tasks)
}

/// The resolve call's answer: `{"bundles": […]}`.
fn skill_bundles(body: &[u8]) -> serde_json::Result<Vec<SkillBundle>> {
    json::<SkillBundleResponse>(body).map(|answer| answer.bundles)
}

/// The issues gc-check's answer: `{"issues": […]}`.
fn issue_gc_checks(body: &[u8]) -> serde_json::Result<Vec<IssueGcStatus>> {
    json::<IssueGcCheckResponse>(body).map(|answer| answer.issues)
}

/// The claim's answer: `{"task": …}` or `{"task": null}`.
fn claimed(body: &[u8]) -> serde_json::Result<Option<Task>> {
    json::<ClaimResponse>(body).map(|answer| answer.task)
}

/// The status route's answer: `{"status": …}`.
fn task_status(body: &[u8]) -> serde_json::Result<TaskStatus> {
    json::<TaskStatusResponse>(body).map(|answer| answer.status)
}

/// How a route's success body reads as a [`Reply`]: the same decoding as
/// the route's function above, wrapped in the route's reply shape.
fn reply_decoder(endpoint: Endpoint) -> fn(&[u8]) -> serde_json::Result<Reply> {
    match endpoint {
        Endpoint::Register => |body| json(body).map(Reply::Registered),
        Endpoint::SendHeartbeat => |body| json(body).map(Reply::Heartbeat),
        Endpoint::ClaimTask => |body| claimed(body).map(|task| Reply::Claimed(task.map(Box::new))),
        Endpoint::ListPendingTasks => |body| json_list(body).map(Reply::PendingTasks),
        Endpoint::GetTaskStatus => |body| task_status(body).map(Reply::TaskStatus),
        Endpoint::ListTaskMessages => |body| json_list(body).map(Reply::Messages),
        Endpoint::ListWorkspaces => |body| json_list(body).map(Reply::Workspaces),
        Endpoint::CreatePairingSession | Endpoint::GetPairingSession | Endpoint::ClaimPairingSession => {
            |body| json(body).map(|session| Reply::PairingSession(Box::new(session)))
        }
        Endpoint::ClaimTasks => |body| claimed_tasks(body).map(Reply::ClaimedTasks),
        Endpoint::ExtendPrepareLease | Endpoint::WaitLocalDirectory => {
            |body| json(body).map(|record| Reply::TaskRecord(Box::new(record)))
        }
        Endpoint::ResolveSkillBundles => |body| skill_bundles(body).map(Reply::SkillBundles),
        Endpoint::RecoverOrphans => |body| json(body).map(Reply::OrphansRecovered),
        Endpoint::GetTaskGcCheck => |body| json(body).map(Reply::TaskGcCheck),
        Endpoint::GetIssueGcCheck | Endpoint::GetChatSessionGcCheck => |body| json(body).map(Reply::GcCheck),
        Endpoint::GetAutopilotRunGcCheck => |body| json(body).map(Reply::AutopilotRunGcCheck),
        Endpoint::CheckIssuesGc => |body| issue_gc_checks(body).map(Reply::IssueGcChecks),
        Endpoint::ListDaemonWorkspaces => |body| json_list(body).map(Reply::DaemonWorkspaces),
        Endpoint::GetWorkspaceRepos => |body| json(body).map(Reply::WorkspaceRepos),
        Endpoint::ListRuntimeProfiles => |body| json(body).map(Reply::RuntimeProfiles),
        Endpoint::StartTask | Endpoint::CompleteTask | Endpoint::FailTask => task_row_or_done,
        Endpoint::Deregister
        | Endpoint::ReportUsage
        | Endpoint::ReportPingResult
        | Endpoint::ReportProgress
        | Endpoint::ReportTaskMessages
        | Endpoint::ReportModelList
        | Endpoint::ReportLocalSkills
        | Endpoint::ReportSkillImport
        | Endpoint::ReportUpdateResult
        | Endpoint::ReportTaskUsage
        | Endpoint::AckCancel
        | Endpoint::PinSession => |body| ignore(body).map(|()| Reply::Done),
    }
}

/// The answer of start, complete and fail: the task row both server
/// versions send ([`Reply::TaskRecord`]), or [`Reply::Done`] for a body that
/// is not a row with an ID (an older server's or a custom backend's answer,
/// which the Go client ignores), never an error.
fn task_row_or_done(body: &[u8]) -> serde_json::Result<Reply> {
    Ok(match json::<TaskRecord>(body) {
        Ok(record) if !record.id.as_str().is_empty() => Reply::TaskRecord(Box::new(record)),
        _ => Reply::Done,
    })
}

/// A JSON array, where `null` (a Go nil slice) reads as empty.
fn json_list<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<Vec<T>> {
    Ok(json::<Option<Vec<T>>>(body)?.unwrap_or_default())
}
