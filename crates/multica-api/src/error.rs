//! The one error type of the SDK, and its classification.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::route::{Endpoint, Method};

/// Go's router answer to an unknown path (`http.NotFound`).
const ROUTE_NOT_FOUND_BODY: &[u8] = b"404 page not found\n";

/// Most bytes of an error response body kept, as the Go client reads
/// (`io.LimitReader(resp.Body, 4096)`): enough for any `{"error":…}`, bounded
/// against hostile servers.
pub const MAX_ERROR_BODY_BYTES: usize = 4096;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A source error that can be cloned (so an `Error` can be, for retries and
/// injected faults) and shared across threads.
pub type SharedSource = Arc<dyn StdError + Send + Sync + 'static>;

/// At which step a transport failure happened: this decides whether a retry
/// could repeat a request the server already acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// Resolving, connecting or the TLS handshake failed: no byte of the
    /// request reached the server, so any call is safe to retry.
    Connect,
    /// Sending the request or waiting for the answer failed: the server may
    /// have acted on it.
    Request,
    /// Reading the answer's body failed: the server acted on the request.
    Response,
    /// The server refused the request before processing any of it (an
    /// HTTP/2 `REFUSED_STREAM`, or a `GOAWAY` that left the request out):
    /// like [`TransportKind::Connect`], any call is safe to retry.
    Refused,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Request => "request",
            Self::Response => "response body",
            Self::Refused => "refused request",
        })
    }
}

/// Everything that can go wrong in a call.
///
/// The [`Error::Status`] variant is the Go client's `requestError` kept
/// exactly: its `Display` is `"{METHOD} {path} returned {status}: {body}"`.
/// Use the classifiers ([`Error::is_task_not_found`], [`Error::is_transient`]…)
/// rather than matching bodies yourself.
///
/// As the Rust API guidelines ask, a variant with a cause leaves the cause's
/// text out of its own message and exposes it by
/// [`source()`](std::error::Error::source): walk the chain (or print
/// [`Error::display_chain`]) to see every level once.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a non-2xx status.
    #[error("{method} {path} returned {status}: {body}")]
    Status {
        /// Method of the request.
        method: Method,
        /// Path of the request, from `/api`, as sent (percent-encoded).
        path: String,
        /// HTTP status code.
        status: u16,
        /// At most [`MAX_ERROR_BODY_BYTES`] of the body, cut on a UTF-8
        /// boundary and trimmed of white space.
        body: String,
        /// The wait the server asked for with `Retry-After`, if it sent one (as seconds or an HTTP date).
        retry_after: Option<Duration>,
    },
    /// The connection failed before a complete answer arrived.
    #[error("{method} {path}: {kind} failed")]
    Transport {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// At which step it failed.
        kind: TransportKind,
        /// What the transport reported.
        #[source]
        source: SharedSource,
    },
    /// The call's deadline passed. The request may have reached the server.
    #[error("{method} {path}: timed out after {after:?}")]
    Timeout {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// A success answer was not the JSON this call expects.
    #[error("{method} {path}: cannot decode the response")]
    Decode {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// What serde_json reported (line, column, what was expected).
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// A success answer was larger than the configured cap.
    #[error("{method} {path}: response body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Method of the request.
        method: Method,
        /// Path of the request.
        path: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The caller passed something that cannot be sent (an empty ID, a bad
    /// base URL); nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A call was made more than once and none succeeded; `last` is the
    /// final attempt's error (also its [`source()`](std::error::Error::source)),
    /// which the classifiers look through. A call that failed on its only
    /// attempt returns that attempt's error.
    #[error("gave up after {attempts} attempts")]
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        last: Box<Error>,
    },
    /// A backend answered a call with a reply of another route's shape (a
    /// bug in a custom backend or layer, never a server answer).
    #[error("{} {}: the backend answered with a reply of another route", .endpoint.method(), .endpoint.template())]
    UnexpectedReply {
        /// The route called.
        endpoint: Endpoint,
    },
}

impl Error {
    /// The error for a non-2xx answer, from the raw body: keeps at most
    /// [`MAX_ERROR_BODY_BYTES`], cut on a UTF-8 boundary, trimmed.
    pub fn from_status(method: Method, path: impl Into<String>, status: u16, body: &[u8]) -> Self {
        Self::Status { method, path: path.into(), status, body: error_body_text(body), retry_after: None }
    }

    /// The error a Multica handler causes with `{"error": message}`: the same
    /// value a real client builds from that answer. Fakes use it so their
    /// errors are indistinguishable from the server's.
    pub fn from_server_message(method: Method, path: impl Into<String>, status: u16, message: &str) -> Self {
        Self::from_status(method, path, status, &error_body(message))
    }

    /// What a server without the route answers, as the hyper client reports
    /// it: 404 with Go's router body `404 page not found`. Every backend
    /// answers a [`Call`](crate::Call) it does not know with this, so an
    /// unknown route looks the same everywhere ([`Error::is_route_not_found`]).
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Endpoint, Error};
    /// let err = Error::route_not_found(Endpoint::ClaimTask, "/api/daemon/runtimes/rt-1/tasks/claim");
    /// assert!(err.is_route_not_found() && !err.is_task_not_found());
    /// assert_eq!(err.to_string(), "POST /api/daemon/runtimes/rt-1/tasks/claim returned 404: 404 page not found");
    /// ```
    pub fn route_not_found(endpoint: Endpoint, path: impl Into<String>) -> Self {
        Self::from_status(endpoint.method(), path, 404, ROUTE_NOT_FOUND_BODY)
    }

    /// Whether the server (or backend) does not know the route: the 404 of
    /// Go's router, whose body is `404 page not found` rather than a
    /// handler's `{"error":…}`. An older server answers a newer route so.
    pub fn is_route_not_found(&self) -> bool {
        self.status() == Some(404) && self.body() == Some("404 page not found")
    }

    /// Whether this is a 404 whose body contains `workspace not found`
    /// (case-insensitive), as the Go client's `isWorkspaceNotFoundError`.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let err = Error::from_status(Method::Post, "/api/daemon/register", 404,
    ///     br#"{"error":"workspace not found"}"#);
    /// assert!(err.is_workspace_not_found());
    /// ```
    pub fn is_workspace_not_found(&self) -> bool {
        self.is_not_found_with("workspace not found")
    }

    /// Whether this is a 404 `task not found` (status or messages of an
    /// unknown task).
    pub fn is_task_not_found(&self) -> bool {
        self.is_not_found_with("task not found")
    }

    /// Whether the runtime is unknown to the server: 404 `runtime not found`
    /// (later servers), or the 500 `heartbeat failed` that server 3c93ebaf1c
    /// answers a heartbeat of an unknown runtime with.
    pub fn is_runtime_not_found(&self) -> bool {
        self.is_not_found_with("runtime not found")
            || (self.status() == Some(500) && self.body_contains("heartbeat failed"))
    }

    /// Whether the server refused the credentials (401).
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let err = Error::from_status(Method::Get, "/api/workspaces", 401, b"{\"error\":\"invalid token\"}\n");
    /// assert!(err.is_unauthorized());
    /// assert_eq!(err.status(), Some(401));
    /// ```
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// Whether trying again later may succeed: transport failures, timeouts,
    /// 5xx, 408 and 429. Whether a retry is *safe* depends on the call too
    /// (see [`Error::may_have_reached_server`]).
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let busy = Error::from_status(Method::Post, "/api/daemon/heartbeat", 503, b"");
    /// let bad = Error::from_status(Method::Post, "/api/daemon/heartbeat", 400, b"");
    /// assert!(busy.is_transient());
    /// assert!(!bad.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self.last_attempt() {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }

    /// Whether the call's deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self.last_attempt(), Self::Timeout { .. })
    }

    /// Whether the task is no longer (or not yet, or not at all) in the
    /// state the action needs: the server's 400 whose message ends in
    /// `no rows in result set` (`start task: …`, `complete task: …`,
    /// `fail task: …`, and later servers' lease and wait actions). A start
    /// of a task already started, cancelled or finished, a completion of a
    /// task never started: the daemon should drop the task, not retry.
    /// Server 3c93ebaf1c answers an unknown task ID the same way.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let err = Error::from_status(Method::Post, "/api/daemon/tasks/t-1/start", 400,
    ///     b"{\"error\":\"start task: no rows in result set\"}\n");
    /// assert!(err.is_task_state_conflict());
    /// assert!(!err.is_transient());
    /// let other = Error::from_status(Method::Post, "/api/daemon/tasks/t-1/start", 400,
    ///     br#"{"error":"invalid task_id"}"#);
    /// assert!(!other.is_task_state_conflict());
    /// ```
    pub fn is_task_state_conflict(&self) -> bool {
        self.status() == Some(400) && self.server_message().is_some_and(|message| message.trim_end().ends_with(NO_ROWS))
    }

    /// Whether a success answer was not the JSON the call expects
    /// ([`Error::Decode`]): the server acted on the request.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let bad = serde_json::from_str::<u8>("x").unwrap_err();
    /// let err = Error::Decode { method: Method::Get, path: "/api/x".into(), source: bad.into() };
    /// assert!(err.is_decode() && !err.is_transient());
    /// ```
    pub fn is_decode(&self) -> bool {
        matches!(self.last_attempt(), Self::Decode { .. })
    }

    /// Whether a success answer was larger than the client's cap
    /// ([`Error::BodyTooLarge`]): the server acted on the request.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let err = Error::BodyTooLarge { method: Method::Post, path: "/api/x".into(), limit: 1024 };
    /// assert!(err.is_body_too_large() && !err.is_transient());
    /// ```
    pub fn is_body_too_large(&self) -> bool {
        matches!(self.last_attempt(), Self::BodyTooLarge { .. })
    }

    /// Whether the connection failed before a complete answer arrived
    /// ([`Error::Transport`]; [`Error::transport_kind`] tells at which step).
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use std::sync::Arc;
    /// use multica::{Error, Method, TransportKind};
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let err = Error::Transport {
    ///     method: Method::Post,
    ///     path: "/api/daemon/heartbeat".into(),
    ///     kind: TransportKind::Connect,
    ///     source: Arc::new(refused),
    /// };
    /// assert!(err.is_transport() && err.is_transient());
    /// assert_eq!(err.transport_kind(), Some(TransportKind::Connect));
    /// assert!(!err.may_have_reached_server());
    /// ```
    pub fn is_transport(&self) -> bool {
        matches!(self.last_attempt(), Self::Transport { .. })
    }

    /// At which step a transport failure happened, for [`Error::Transport`].
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match self.last_attempt() {
            Self::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The error and each of its causes, joined by `: ` — for a log line
    /// (`Display` shows only this level, as the Rust convention has it).
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::{Error, Method};
    /// let busy = Error::from_status(Method::Post, "/api/daemon/heartbeat", 503, b"busy");
    /// let err = Error::RetriesExhausted { attempts: 3, last: Box::new(busy) };
    /// assert_eq!(err.to_string(), "gave up after 3 attempts");
    /// assert_eq!(
    ///     err.display_chain().to_string(),
    ///     "gave up after 3 attempts: POST /api/daemon/heartbeat returned 503: busy"
    /// );
    /// ```
    pub fn display_chain(&self) -> DisplayChain<'_> {
        DisplayChain(self)
    }

    /// Whether the server may have acted on the request: false only when the
    /// connection was never made, nothing was sent, or the server refused
    /// the request unprocessed. A call that changes state (claim) may be
    /// retried only when this is false.
    pub fn may_have_reached_server(&self) -> bool {
        !matches!(
            self.last_attempt(),
            Self::Transport { kind: TransportKind::Connect | TransportKind::Refused, .. } | Self::InvalidArgument(_)
        )
    }

    /// The HTTP status, for [`Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self.last_attempt() {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The (truncated, trimmed) response body, for [`Error::Status`].
    pub fn body(&self) -> Option<&str> {
        match self.last_attempt() {
            Self::Status { body, .. } => Some(body),
            _ => None,
        }
    }

    /// The `error` field of a JSON error body (`task not found`), or the
    /// whole body when it is not such JSON.
    pub fn server_message(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: String,
        }
        let body = self.body()?;
        Some(match serde_json::from_str::<ErrorBody>(body) {
            Ok(parsed) => parsed.error,
            Err(_) => body.to_owned(),
        })
    }

    /// How long the server asked to wait before retrying (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self.last_attempt() {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Sets the server's `Retry-After` on a [`Error::Status`]; other errors
    /// are returned unchanged.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        if let Self::Status { retry_after, .. } = &mut self {
            *retry_after = after;
        }
        self
    }

    /// The method of the failed request, when one was made.
    pub fn method(&self) -> Option<Method> {
        match self.last_attempt() {
            Self::Status { method, .. }
            | Self::Transport { method, .. }
            | Self::Timeout { method, .. }
            | Self::Decode { method, .. }
            | Self::BodyTooLarge { method, .. } => Some(*method),
            _ => None,
        }
    }

    /// The path of the failed request, when one was made.
    pub fn path(&self) -> Option<&str> {
        match self.last_attempt() {
            Self::Status { path, .. }
            | Self::Transport { path, .. }
            | Self::Timeout { path, .. }
            | Self::Decode { path, .. }
            | Self::BodyTooLarge { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The error of the final attempt, looking through [`Error::RetriesExhausted`].
    pub fn last_attempt(&self) -> &Error {
        let mut err = self;
        while let Self::RetriesExhausted { last, .. } = err {
            err = last;
        }
        err
    }

    fn is_not_found_with(&self, needle: &str) -> bool {
        self.status() == Some(404) && self.body_contains(needle)
    }

    fn body_contains(&self, needle: &str) -> bool {
        self.body().is_some_and(|body| body.to_lowercase().contains(needle))
    }
}

/// The end of the message the server sends when a task action finds no
/// task in the state it needs (pgx's `ErrNoRows` text).
const NO_ROWS: &str = "no rows in result set";

/// An [`Error`] with its causes, joined by `: ` (see [`Error::display_chain`]).
#[derive(Clone, Copy, Debug)]
pub struct DisplayChain<'a>(&'a Error);

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = StdError::source(self.0);
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

/// The JSON body a Multica handler writes for an error: `{"error":"…"}`.
pub fn error_body(message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(message.len() + 12);
    // Serializing a struct of one `&str` cannot fail.
    let _ = serde_json::to_writer(&mut body, &serde_json::json!({ "error": message }));
    body
}

/// The kept text of an error body: at most [`MAX_ERROR_BODY_BYTES`], with a
/// character split by that cut dropped (Go keeps its broken bytes), other
/// invalid UTF-8 replaced (and the result cut again to the bound), and
/// surrounding white space trimmed.
fn error_body_text(body: &[u8]) -> String {
    let kept = &body[..body.len().min(MAX_ERROR_BODY_BYTES)];
    let kept = match std::str::from_utf8(kept) {
        Err(err) if err.error_len().is_none() => &kept[..err.valid_up_to()],
        _ => kept,
    };
    let mut text = String::from_utf8_lossy(kept).into_owned();
    // Each invalid byte became U+FFFD (3 bytes): cut again so that a hostile
    // body cannot triple the bound.
    if text.len() > MAX_ERROR_BODY_BYTES {
        let mut end = MAX_ERROR_BODY_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> Error {
        Error::from_status(Method::Post, "/api/daemon/register", code, body.as_bytes())
    }

    #[test]
    fn display_matches_go_request_error() {
        let err = status(404, "{\"error\":\"workspace not found\"}\n");
        assert_eq!(err.to_string(), "POST /api/daemon/register returned 404: {\"error\":\"workspace not found\"}");
    }

    #[test]
    fn go_workspace_not_found_case() {
        assert!(status(404, r#"{"error":"workspace not found"}"#).is_workspace_not_found());
        assert!(status(404, r#"{"error":"Workspace Not Found"}"#).is_workspace_not_found());
        assert!(!status(500, r#"{"error":"workspace not found"}"#).is_workspace_not_found());
        assert!(!status(404, r#"{"error":"task not found"}"#).is_workspace_not_found());
    }

    #[test]
    fn task_and_runtime_not_found() {
        assert!(status(404, r#"{"error":"task not found"}"#).is_task_not_found());
        assert!(!status(400, r#"{"error":"task not found"}"#).is_task_not_found());
        assert!(status(404, r#"{"error":"runtime not found"}"#).is_runtime_not_found());
        assert!(status(500, r#"{"error":"heartbeat failed"}"#).is_runtime_not_found());
        assert!(!status(500, r#"{"error":"internal"}"#).is_runtime_not_found());
    }

    #[test]
    fn transient_statuses() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(status(code, "").is_transient(), "{code}");
        }
        for code in [301, 400, 401, 403, 404, 405, 413] {
            assert!(!status(code, "").is_transient(), "{code}");
        }
        let transport = Error::Transport {
            method: Method::Post,
            path: "/x".into(),
            kind: TransportKind::Connect,
            source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(transport.is_transient());
        assert!(!transport.may_have_reached_server());
        let timeout = Error::Timeout { method: Method::Get, path: "/x".into(), after: Duration::from_secs(1) };
        assert!(timeout.is_transient() && timeout.is_timeout() && timeout.may_have_reached_server());
        assert!(!Error::InvalidArgument("x".into()).is_transient());
    }

    #[test]
    fn unauthorized() {
        assert!(status(401, "{\"error\":\"missing authorization header\"}\n").is_unauthorized());
        assert!(!status(403, "").is_unauthorized());
    }

    #[test]
    fn body_is_capped_at_4096_bytes_and_trimmed() {
        let body = format!("  {}", "x".repeat(10_000));
        let err = status(500, &body);
        assert_eq!(err.body().map(str::len), Some(MAX_ERROR_BODY_BYTES - 2));
    }

    #[test]
    fn body_cut_drops_a_split_character() {
        // 4095 ASCII bytes then a 2-byte character straddling the cut.
        let body = format!("{}é tail", "a".repeat(MAX_ERROR_BODY_BYTES - 1));
        let err = status(500, &body);
        assert_eq!(err.body(), Some("a".repeat(MAX_ERROR_BODY_BYTES - 1).as_str()));
    }

    #[test]
    fn invalid_utf8_inside_is_replaced() {
        let err = Error::from_status(Method::Get, "/x", 500, b"bad \xff byte");
        assert_eq!(err.body(), Some("bad \u{fffd} byte"));
    }

    #[test]
    fn replaced_bytes_do_not_grow_the_body_past_the_cap() {
        // Found by the decode_responses fuzz target: every invalid byte
        // becomes a 3-byte U+FFFD.
        let err = Error::from_status(Method::Get, "/x", 500, &[0x8c; 2000]);
        let body = err.body().expect("a status error");
        assert!(body.len() <= MAX_ERROR_BODY_BYTES, "{} bytes", body.len());
        assert_eq!(body, "\u{fffd}".repeat(MAX_ERROR_BODY_BYTES / 3));
    }

    #[test]
    fn server_message_and_helpers() {
        let err = Error::from_server_message(Method::Get, "/api/daemon/tasks/t/status", 404, "task not found");
        assert_eq!(err.body(), Some(r#"{"error":"task not found"}"#));
        assert_eq!(err.server_message().as_deref(), Some("task not found"));
        assert_eq!(err.method(), Some(Method::Get));
        assert_eq!(err.path(), Some("/api/daemon/tasks/t/status"));
        let plain = status(502, "<html>bad gateway</html>");
        assert_eq!(plain.server_message().as_deref(), Some("<html>bad gateway</html>"));
    }

    #[test]
    fn retries_exhausted_is_classified_by_its_last_error() {
        let err = Error::RetriesExhausted {
            attempts: 3,
            last: Box::new(status(503, "busy").with_retry_after(Some(Duration::from_secs(2)))),
        };
        assert!(err.is_transient());
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(err.to_string(), "gave up after 3 attempts");
        let last = StdError::source(&err).expect("the last attempt is the source");
        assert_eq!(last.to_string(), "POST /api/daemon/register returned 503: busy");
    }

    /// Every message of `err`'s source chain, outermost first.
    fn chain(err: &Error) -> Vec<String> {
        let mut messages = vec![err.to_string()];
        let mut cause = StdError::source(err);
        while let Some(next) = cause {
            messages.push(next.to_string());
            cause = next.source();
        }
        messages
    }

    #[test]
    fn walking_the_source_chain_never_repeats_a_message() {
        let refused = Error::Transport {
            method: Method::Post,
            path: "/api/x".into(),
            kind: TransportKind::Connect,
            source: Arc::new(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")),
        };
        let decode = Error::Decode {
            method: Method::Get,
            path: "/api/y".into(),
            source: Arc::new(serde_json::from_str::<u8>("[").expect_err("not a number")),
        };
        for err in [
            refused.clone(),
            decode,
            Error::RetriesExhausted { attempts: 2, last: Box::new(refused) },
            Error::RetriesExhausted { attempts: 3, last: Box::new(status(503, "busy")) },
        ] {
            let messages = chain(&err);
            assert!(messages.len() >= 2, "{messages:?}");
            for (at, outer) in messages.iter().enumerate() {
                for inner in &messages[at + 1..] {
                    assert!(!outer.contains(inner.as_str()), "{outer:?} repeats {inner:?}");
                }
            }
            assert_eq!(err.display_chain().to_string(), messages.join(": "));
        }
    }

    #[test]
    fn task_state_conflicts_are_the_no_rows_400s() {
        for message in [
            "start task: no rows in result set",
            "complete task: no rows in result set",
            "fail task: no rows in result set",
            "extend task prepare lease: no rows in result set",
        ] {
            let err = Error::from_server_message(Method::Post, "/api/daemon/tasks/t/x", 400, message);
            assert!(err.is_task_state_conflict(), "{message}");
            let wrapped = Error::RetriesExhausted { attempts: 2, last: Box::new(err) };
            assert!(wrapped.is_task_state_conflict(), "{message}");
        }
        let not_400 = Error::from_server_message(Method::Post, "/x", 500, "start task: no rows in result set");
        assert!(!not_400.is_task_state_conflict());
        assert!(!status(400, r#"{"error":"invalid task_id"}"#).is_task_state_conflict());
        assert!(!status(404, r#"{"error":"task not found"}"#).is_task_state_conflict());
    }

    #[test]
    fn kind_classifiers() {
        let too_large = Error::BodyTooLarge { method: Method::Post, path: "/x".into(), limit: 1 };
        assert!(too_large.is_body_too_large() && !too_large.is_decode() && !too_large.is_transport());
        assert_eq!(too_large.transport_kind(), None);
        assert!(!status(500, "").is_transport() && !status(500, "").is_body_too_large());
    }
}
