//! Pure request building and response parsing, one function per call.
//!
//! No IO happens here: a transport takes the [`WireRequest`] (method, encoded
//! path, JSON body), sends it however it likes, and hands the status and body
//! bytes back to [`Request::decode_response`]. The hyper client, any other
//! transport and the tests all go through these functions.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dto::{
    ClaimResponse, HeartbeatResponse, PairingRequest, PairingSession, PingResult, RegisterRequest, RegisterResponse,
    StoredTaskMessage, Task, TaskCompletion, TaskMessage, TaskProgress, TaskRecord, TaskStatus, TaskStatusResponse,
    UsageEntry, Workspace,
};
use crate::error::{Error, Result};
use crate::ids::{PingId, RuntimeId, TaskId};
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
        Endpoint::ClaimTask => |body| claimed(body).map(Reply::Claimed),
        Endpoint::ListPendingTasks => |body| json_list(body).map(Reply::PendingTasks),
        Endpoint::GetTaskStatus => |body| task_status(body).map(Reply::TaskStatus),
        Endpoint::ListTaskMessages => |body| json_list(body).map(Reply::Messages),
        Endpoint::ListWorkspaces => |body| json_list(body).map(Reply::Workspaces),
        Endpoint::CreatePairingSession | Endpoint::GetPairingSession | Endpoint::ClaimPairingSession => {
            |body| json(body).map(Reply::PairingSession)
        }
        Endpoint::Deregister
        | Endpoint::ReportUsage
        | Endpoint::ReportPingResult
        | Endpoint::StartTask
        | Endpoint::ReportProgress
        | Endpoint::CompleteTask
        | Endpoint::FailTask
        | Endpoint::ReportTaskMessages => |body| ignore(body).map(|()| Reply::Done),
    }
}

/// A JSON array, where `null` (a Go nil slice) reads as empty.
fn json_list<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<Vec<T>> {
    Ok(json::<Option<Vec<T>>>(body)?.unwrap_or_default())
}
