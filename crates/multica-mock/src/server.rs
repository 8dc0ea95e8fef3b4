//! The fake over HTTP: a hyper server on loopback answering the server's
//! wire contract (the crate docs' "Semantics worth knowing") from the same
//! core as the in-process API.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

use multica_api::{Call, CallDecodeError, Endpoint, Error, OkResponse, RouteMismatch, TaskStatusResponse};

use crate::daemon::{Failure, MockDaemon};
use crate::log::Transport;
use crate::router::{self as routing, Cors, Special};
use crate::state::{Caller, Rejection, Reply, Writer, ROUTE_NOT_FOUND};
use crate::version::VersionRules;

mod limits;

pub use limits::{ConnectionLimits, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS};

/// The largest request body accepted by default: no cap, as the server has
/// none (a 9 MiB message batch is stored). Set [`ServerConfig::max_body_bytes`]
/// to refuse larger bodies with 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = usize::MAX;

/// Connections the kernel queues before the accept loop takes them. The
/// usual 128 drops the SYNs of a larger burst of clients connecting at once,
/// which then wait a full second to retry.
const LISTEN_BACKLOG: u32 = 1024;

/// Where and how [`serve_with`] listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind; default `127.0.0.1:0` (a free port on loopback).
    pub addr: SocketAddr,
    /// Request bodies above this many bytes get 413.
    pub max_body_bytes: usize,
    /// Timeouts for slow and idle connections, and the cap on open ones.
    pub limits: ConnectionLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: ConnectionLimits::default(),
        }
    }
}

/// A running HTTP server for a [`MockDaemon`]. Stops on
/// [`MockServer::shutdown`] or when dropped (open connections are cut, the
/// fake's WebSocket channel connections too).
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    task: Option<JoinHandle<()>>,
    /// The fake's WebSocket channel connections, ended with the server.
    hub: std::sync::Arc<crate::ws::Hub>,
}

impl MockServer {
    /// `http://127.0.0.1:<port>`: the base URL to give a client.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection, and waits until done.
    pub async fn shutdown(mut self) {
        self.hub.close_all();
        if let Some(task) = self.task.take() {
            task.abort();
            // The task ends as aborted; nothing else to report.
            let _ = task.await;
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.hub.close_all();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `mock` on `127.0.0.1:0` (needs a tokio runtime).
///
/// The server shares the state of `mock`: set up and inspect through the
/// handle, while the client under test speaks HTTP to
/// [`MockServer::base_url`]. Any HTTP client will do; here, bytes on a
/// socket:
///
/// ```
/// # mod multica { pub use multica_api::*; pub mod mock { pub use multica_mock::*; } }
/// use multica::Endpoint;
/// use multica::mock::{serve, MockDaemon, Seed};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpStream;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mock = MockDaemon::builder().seed(Seed::demo()).build()?;
/// let server = serve(mock.clone()).await?;
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
///
/// let body = r#"{"runtime_id":"33333333-3333-4333-8333-333333333333"}"#;
/// let mut socket = TcpStream::connect(server.addr()).await?;
/// socket
///     .write_all(
///         format!(
///             "POST /api/daemon/heartbeat HTTP/1.1\r\nHost: localhost\r\n\
///              Content-Type: application/json\r\nContent-Length: {}\r\n\
///              Connection: close\r\n\r\n{body}",
///             body.len()
///         )
///         .as_bytes(),
///     )
///     .await?;
/// let mut answer = String::new();
/// socket.read_to_string(&mut answer).await?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
/// assert!(answer.contains(r#""status":"ok""#), "{answer}");
///
/// // The handle sees what came over HTTP.
/// assert_eq!(mock.calls_to(Endpoint::SendHeartbeat).len(), 1);
/// server.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub async fn serve(mock: MockDaemon) -> io::Result<MockServer> {
    serve_with(mock, ServerConfig::default()).await
}

/// Serves `mock` with explicit options (needs a tokio runtime).
pub async fn serve_with(mock: MockDaemon, config: ServerConfig) -> io::Result<MockServer> {
    let socket = if config.addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As `TcpListener::bind` does: a restarted server can take its port back.
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(config.addr)?;
    let listener = socket.listen(LISTEN_BACKLOG)?;
    let addr = listener.local_addr()?;
    let hub = std::sync::Arc::clone(&mock.lock().hub);
    let task = tokio::spawn(accept_loop(listener, mock, config.max_body_bytes, config.limits));
    Ok(MockServer { addr, base_url: format!("http://{addr}"), task: Some(task), hub })
}

async fn accept_loop(listener: TcpListener, mock: MockDaemon, max_body_bytes: usize, limits: ConnectionLimits) {
    // Owned here so that aborting this task aborts every connection too.
    let mut connections = limits::Connections::new(limits);
    let room = connections.room();
    loop {
        // At the cap with every connection busy, new clients wait in the
        // listen backlog until a request is answered or a connection ends.
        connections.admit_parked(&mock, max_body_bytes);
        let may_accept = connections.may_accept();
        tokio::select! {
            accepted = listener.accept(), if may_accept => match accepted {
                Ok((stream, _)) => connections.admit(stream, mock.clone(), max_body_bytes),
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            () = connections.reap() => {}
            () = room.notified(), if !may_accept => {}
        }
    }
}

/// Returned by the service to drop the connection without an answer: how an
/// injected transport fault looks on the wire.
#[derive(Debug)]
pub(crate) struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by an injected fault")
    }
}

impl std::error::Error for CloseConnection {}

/// The response type of every route.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

pub(crate) async fn handle(
    mock: MockDaemon,
    request: Request<Incoming>,
    max_body_bytes: usize,
) -> Result<HttpResponse, CloseConnection> {
    // The daemon WebSocket channel takes the request whole: its upgrade
    // lives in the request's extensions.
    if mock.server_version().is_head() && routing::routing_path(request.uri().path()) == "/api/daemon/ws" {
        return Ok(crate::ws::handshake(&mock, request));
    }
    let method = request.method().clone();
    let version = request.version();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let authorization = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let capabilities = header("x-client-capabilities");
    let if_none_match = header("if-none-match");
    let cors = Cors::of(method.as_str(), request.headers());
    // A declared length above the cap is refused before reading any of it:
    // the client may send it slowly, never, or only after `100 Continue`.
    if request.body().size_hint().lower() > u64::try_from(max_body_bytes).unwrap_or(u64::MAX) {
        return Ok(error_response(413, "request body too large"));
    }
    let body = match Limited::new(request.into_body(), max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(error_response(413, "request body too large"))
        }
        // The client went away mid-body: nobody to answer.
        Err(_) => return Err(CloseConnection),
    };
    if let Some(control_path) = path.strip_prefix("/_mock/") {
        return Ok(crate::control::handle(&mock, method.as_str(), control_path, &body));
    }
    // Most requests carry no Origin: no need to look the frontend URL up.
    let frontend_url = if cors.needs_frontend_url() { mock.lock().frontend_url.clone() } else { String::new() };
    let head = mock.server_version().is_head();
    if let Some(mut preflight) = cors.preflight(&frontend_url, head) {
        if head {
            add_security_headers(&mut preflight);
        }
        return Ok(preflight);
    }
    let mut response = answer(
        mock,
        method.as_str(),
        &path,
        query.as_deref(),
        Caller {
            authorization: authorization.as_deref(),
            capabilities: capabilities.as_deref(),
            if_none_match: if_none_match.as_deref(),
        },
        &body,
    )
    .await?;
    cors.decorate(&mut response, &frontend_url, head);
    if head {
        add_security_headers(&mut response);
    } else if version == http::Version::HTTP_11 {
        chunk_as_go_does(&mut response);
    }
    Ok(response)
}

/// Go's `net/http` buffers what a handler writes (2048 bytes) and sets
/// `Content-Length` itself only when the whole answer fit in that buffer;
/// a larger answer without an explicit `Content-Length` goes out chunked
/// (HTTP/1.1). At 3c93ebaf1c the handlers stream their JSON without one;
/// HEAD's set it on every JSON answer, so nothing of HEAD's is chunked.
const GO_CHUNKING_BUFFER: usize = 2048;

fn chunk_as_go_does(response: &mut HttpResponse) {
    let length = response.body().size_hint().exact().unwrap_or_default();
    if length > GO_CHUNKING_BUFFER as u64 {
        response.headers_mut().insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
}

/// What HEAD's security middleware puts on every answer.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' https: data:; connect-src 'self' wss:; frame-ancestors 'none'; object-src 'none'; \
    base-uri 'self'; form-action 'self'";

pub(crate) fn add_security_headers(response: &mut HttpResponse) {
    response
        .headers_mut()
        .insert(http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
}

/// The answer of the server's router and handlers to one request.
async fn answer(
    mock: MockDaemon,
    method: &str,
    raw_path: &str,
    query: Option<&str>,
    caller: Caller<'_>,
    body: &[u8],
) -> Result<HttpResponse, CloseConnection> {
    let authorization = caller.authorization;
    let mut path = routing::routing_path(raw_path);
    let head = mock.server_version().is_head();
    // HEAD authenticates everything under /api/daemon before routing.
    if head && path.starts_with("/api/daemon/") {
        if let Err(rejection) = mock.lock().authenticate_daemon(authorization) {
            return Ok(rejection_response(rejection));
        }
    }
    if head {
        if let Some(response) = head_special(method, &path) {
            return Ok(response);
        }
    }
    match routing::special(&path).filter(|s| !(head && matches!(s, Special::ApprovePairing(_)))) {
        Some(Special::Health) => return Ok(routing::health(method)),
        Some(Special::ApprovePairing(token)) => {
            return Ok(match routing::approve_pairing(&mock, method, &token, authorization, body) {
                Ok(response) => response,
                Err(rejection) => rejection_response(rejection),
            })
        }
        Some(Special::Workspaces { list }) => {
            // The auth middleware wraps everything under /api/workspaces.
            if let Err(rejection) = mock.lock().authorize(authorization) {
                return Ok(rejection_response(rejection));
            }
            if !list {
                return Ok(not_found());
            }
            path = std::borrow::Cow::Borrowed(Endpoint::ListWorkspaces.template());
        }
        None => {}
    }
    // HEAD's router: `/api/daemon/claim` is an alias of the batch claim,
    // and the query is read (`?since=`).
    if head {
        if path == "/api/daemon/claim" {
            path = std::borrow::Cow::Borrowed(Endpoint::ClaimTasks.template());
        }
        if let Some(query) = query {
            path = std::borrow::Cow::Owned(format!("{path}?{query}"));
        }
    }
    let call = match Call::decode(method, &path, body) {
        Ok(call) => call,
        Err(CallDecodeError::Route(RouteMismatch::NotFound)) => return Ok(not_found()),
        Err(CallDecodeError::Route(RouteMismatch::MethodNotAllowed)) => {
            return Ok(routing::method_not_allowed(&routing::allowed_methods(&path)))
        }
        Err(CallDecodeError::InvalidQuery(message)) => return Ok(error_response(400, message)),
        Err(_) => return Ok(undecodable_response(&mock, method, &path, caller)),
    };
    let endpoint = call.endpoint();
    if !crate::state::has_route(mock.server_version(), endpoint) {
        return Ok(not_found());
    }
    let outcome = mock.run(endpoint, Transport::Http, || call.clone(), |state| state.apply(&call, caller)).await;
    match outcome {
        Ok(Reply::Api(multica_api::Reply::DaemonWorkspaces(workspaces))) if head => {
            Ok(workspaces_response(&workspaces, caller.if_none_match))
        }
        Ok(reply) => Ok(reply_response(endpoint.success_status(), &reply, head)),
        Err(Failure::Rejected(rejection)) => Ok(rejection_response(rejection)),
        Err(Failure::Injected(error)) => injected_response(&error),
    }
}

/// A body that does not decode: 400 `invalid request body`, unless the
/// route's handler answers something else before it reads the body.
fn undecodable_response(mock: &MockDaemon, method: &str, path: &str, caller: Caller<'_>) -> HttpResponse {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let Ok((endpoint, params)) = Endpoint::recognize(method, path) else {
        return error_response(400, "invalid request body");
    };
    match mock.lock().answer_undecodable(endpoint, &params, caller) {
        Ok(reply) => reply_response(endpoint.success_status(), &reply, mock.server_version().is_head()),
        Err(rejection) => rejection_response(rejection),
    }
}

pub(crate) fn rejection_response(rejection: Rejection) -> HttpResponse {
    // A call the state does not implement is a route this server lacks:
    // the router's text 404, as for a path no route matches.
    if rejection.message == ROUTE_NOT_FOUND.message {
        return not_found();
    }
    match rejection.writer {
        Writer::Handler => error_response(rejection.status, &rejection.message),
        Writer::UserAuth => auth_error_response(&rejection.message),
        Writer::DaemonAuth => {
            response(rejection.status, "application/json", multica_api::error_body(&rejection.message))
        }
    }
}

/// An injected [`Error::Status`] is answered as such; anything else (a
/// transport failure, a timeout) drops the connection.
fn injected_response(error: &Error) -> Result<HttpResponse, CloseConnection> {
    match error.last_attempt() {
        Error::Status { status, body, retry_after, .. } => {
            let mut bytes = body.clone().into_bytes();
            bytes.push(b'\n');
            let mut response = response(*status, "application/json", bytes);
            if let Some(after) = retry_after {
                if let Ok(value) = HeaderValue::from_str(&after.as_secs().to_string()) {
                    response.headers_mut().insert(RETRY_AFTER, value);
                }
            }
            Ok(response)
        }
        _ => Err(CloseConnection),
    }
}

fn reply_response(status: u16, reply: &Reply, head: bool) -> HttpResponse {
    /// [`multica::ClaimResponse`](multica_api::ClaimResponse), borrowing the task.
    #[derive(Serialize)]
    struct ClaimBody<'a> {
        task: &'a Option<multica_api::Task>,
    }
    if status == 204 {
        return empty_response(status);
    }
    let encoded = match reply {
        Reply::Register(body) if head => serde_json::to_vec(&head_register_body(body)),
        Reply::Register(body) => serde_json::to_vec(body),
        Reply::Ok => serde_json::to_vec(&OkResponse::ok()),
        Reply::Heartbeat(body) => serde_json::to_vec(body),
        Reply::Claim(task) if head => serde_json::to_value(ClaimBody { task }).and_then(|mut value| {
            if let Some(task) = value.get_mut("task") {
                omit_empty_skills(task);
            }
            serde_json::to_vec(&value)
        }),
        Reply::Claim(task) => serde_json::to_vec(&ClaimBody { task }),
        Reply::Records(body) => serde_json::to_vec(body),
        Reply::Status(status) => serde_json::to_vec(&TaskStatusResponse::new(status.clone())),
        Reply::Record(body) => serde_json::to_vec(body),
        Reply::Messages(body) => serde_json::to_vec(body),
        Reply::Workspaces(body) => serde_json::to_vec(body),
        Reply::Pairing(body) => serde_json::to_vec(body),
        Reply::Api(reply) => match api_reply_body(reply) {
            Some(body) => body,
            None => return error_response(500, "internal error"),
        },
    };
    match encoded {
        Ok(body) => json_response(status, body),
        Err(_) => error_response(500, "internal error"),
    }
}

/// HEAD writes a runtime's unset `custom_name` and `profile_id` as `null`
/// (Go pointers), which the SDK's type leaves out.
fn head_register_body(body: &multica_api::RegisterResponse) -> serde_json::Value {
    let mut value = serde_json::to_value(body).unwrap_or_default();
    if let Some(runtimes) = value.get_mut("runtimes").and_then(serde_json::Value::as_array_mut) {
        for runtime in runtimes.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            for key in ["custom_name", "profile_id"] {
                runtime.entry(key).or_insert(serde_json::Value::Null);
            }
        }
    }
    value
}

/// The JSON value of a HEAD-only route's answer (the body of a `tasks.claim`
/// RPC answer); `None` for a reply shape no route of the fake gives.
pub(crate) fn api_reply_json(reply: &multica_api::Reply) -> Option<serde_json::Value> {
    api_reply_body(reply)?.ok().and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// The JSON of a HEAD-only route's answer; `None` for a reply shape no
/// route of the fake gives.
fn api_reply_body(reply: &multica_api::Reply) -> Option<serde_json::Result<Vec<u8>>> {
    use multica_api::Reply as R;
    Some(match reply {
        R::Done => serde_json::to_vec(&OkResponse::ok()),
        R::TaskRecord(record) => serde_json::to_vec(record),
        R::ClaimedTasks(tasks) => serde_json::to_value(tasks).and_then(|mut tasks| {
            if let Some(items) = tasks.as_array_mut() {
                items.iter_mut().for_each(omit_empty_skills);
            }
            serde_json::to_vec(&serde_json::json!({ "tasks": tasks }))
        }),
        R::OrphansRecovered(recovery) => serde_json::to_vec(recovery),
        R::SkillBundles(bundles) => serde_json::to_vec(&serde_json::json!({ "bundles": bundles })),
        R::TaskGcCheck(check) => serde_json::to_vec(check),
        R::GcCheck(check) => serde_json::to_vec(check),
        R::AutopilotRunGcCheck(check) => serde_json::to_vec(check),
        R::IssueGcChecks(issues) => serde_json::to_vec(&serde_json::json!({ "issues": issues })),
        R::DaemonWorkspaces(workspaces) => serde_json::to_vec(workspaces),
        R::WorkspaceRepos(repos) => serde_json::to_vec(repos),
        R::RuntimeProfiles(profiles) => serde_json::to_vec(profiles),
        _ => return None,
    })
}

/// HEAD routes outside the SDK's route list, answered after auth: the
/// plugin routes while plugins are off. (The WebSocket control channel is
/// `crate::ws`.)
fn head_special(method: &str, path: &str) -> Option<HttpResponse> {
    let task_path = path.strip_prefix("/api/daemon/tasks/")?;
    let segments: Vec<&str> = task_path.split('/').collect();
    let plugin = match segments.as_slice() {
        [_, "plugin-hooks"] => Some("POST"),
        [_, "plugin-mcp", _, "credential"] => Some("GET"),
        _ => None,
    }?;
    if method != plugin {
        return Some(routing::method_not_allowed(&[plugin]));
    }
    Some(error_response(503, "Plugin management is not enabled"))
}

/// A HEAD claim object carries `agent.skills` only without the
/// `skill-bundles-v1` capability, and then never empty (the built-in skills
/// are always there): the fake leaves out an empty list, as HEAD omits it.
fn omit_empty_skills(task: &mut serde_json::Value) {
    if let Some(agent) = task.get_mut("agent").and_then(serde_json::Value::as_object_mut) {
        if agent.get("skills").and_then(serde_json::Value::as_array).is_some_and(Vec::is_empty) {
            agent.remove("skills");
        }
    }
}

/// HEAD's `GET /api/daemon/workspaces`: a weak ETag of the JSON array's
/// SHA-256, `Cache-Control: private, no-cache`, and 304 without a body when
/// `If-None-Match` names the current ETag.
fn workspaces_response(workspaces: &[multica_api::DaemonWorkspace], if_none_match: Option<&str>) -> HttpResponse {
    let Ok(body) = serde_json::to_vec(workspaces) else { return error_response(500, "internal error") };
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let etag = format!("W/\"{hex}\"");
    let mut response = if if_none_match.map(str::trim) == Some(etag.as_str()) {
        empty_response(304)
    } else {
        json_response(200, body)
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(http::header::ETAG, value);
    }
    response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

/// A success without a body or `Content-Type` (204).
fn empty_response(status: u16) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT);
    response
}

/// A JSON answer as Go's `json.Encoder` writes it: the value and a newline.
pub(crate) fn json_response(status: u16, mut body: Vec<u8>) -> HttpResponse {
    body.push(b'\n');
    response(status, "application/json", body)
}

/// A handler's error: `{"error":"…"}` and a newline.
pub(crate) fn error_response(status: u16, message: &str) -> HttpResponse {
    json_response(status, multica_api::error_body(message))
}

/// The auth middleware's 401: the same JSON, written with Go's
/// `http.Error` (plain text, `nosniff`).
fn auth_error_response(message: &str) -> HttpResponse {
    let mut body = multica_api::error_body(message);
    body.push(b'\n');
    plain_text_error(401, body)
}

/// Go's router answer to an unknown path.
pub(crate) fn not_found() -> HttpResponse {
    plain_text_error(404, b"404 page not found\n".to_vec())
}

/// What Go's `http.Error` writes.
pub(crate) fn plain_text_error(status: u16, body: Vec<u8>) -> HttpResponse {
    let mut response = response(status, "text/plain; charset=utf-8", body);
    response.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

/// Go's router answer to a known path with another method: no body.
pub(crate) fn method_not_allowed() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

fn response(status: u16, content_type: &'static str, body: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
