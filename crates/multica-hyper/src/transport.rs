//! Moving bytes: the pooled hyper-util client, one exchange, body limits.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_util::client::legacy;
use hyper_util::client::legacy::connect::capture_connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use multica_api::{request, Error, Method, TransportKind, MAX_ERROR_BODY_BYTES};

use crate::abandon::{Abandoned, Detachable, Http1Guard, Protocol};
use crate::connect::Connector;

/// The keep-alive connection pool and request dispatcher.
pub(crate) type Pool = legacy::Client<Connector, Full<Bytes>>;

/// Which HTTP versions connections speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpVersions {
    /// HTTP/1.1 only.
    Http1Only,
    /// HTTP/1.1 on plain TCP; over TLS, HTTP/2 when the server picks it by ALPN.
    Http1AndAlpnH2,
    /// HTTP/2 everywhere, also on plain TCP (h2c with prior knowledge).
    Http2PriorKnowledge,
}

/// How connections are made and kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolSettings {
    pub(crate) versions: HttpVersions,
    pub(crate) idle_timeout: Duration,
}

/// A fresh pool with no connections, opening them through `connector`.
pub(crate) fn new_pool(connector: Connector, settings: PoolSettings) -> Arc<Pool> {
    let mut builder = legacy::Client::builder(TokioExecutor::new());
    builder.pool_timer(TokioTimer::new()).timer(TokioTimer::new()).pool_idle_timeout(settings.idle_timeout);
    if settings.versions == HttpVersions::Http2PriorKnowledge {
        builder.http2_only(true);
    }
    Arc::new(builder.build(connector))
}

/// A complete answer: status, body (whole, or the first bytes of an error
/// body) and, with an error status, the server's `Retry-After`.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
    pub(crate) retry_after: Option<Duration>,
}

/// Names the call in errors.
#[derive(Clone, Copy)]
pub(crate) struct CallName<'a> {
    pub(crate) method: Method,
    pub(crate) path: &'a str,
}

impl CallName<'_> {
    pub(crate) fn transport_error(
        self,
        kind: TransportKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Transport { method: self.method, path: self.path.to_owned(), kind, source: Arc::new(source) }
    }

    fn body_too_large(self, limit: u64) -> Error {
        Error::BodyTooLarge { method: self.method, path: self.path.to_owned(), limit }
    }
}

/// When a call gives up: its whole-call deadline and, for the error, the
/// timeout it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) after: Duration,
}

/// What an exchange needs besides its request.
pub(crate) struct Exchange<'a> {
    pub(crate) name: CallName<'a>,
    pub(crate) max_body: u64,
    pub(crate) deadline: Deadline,
    /// A claim: counted apart when abandoned.
    pub(crate) claim: bool,
    pub(crate) abandoned: &'a Arc<Abandoned>,
}

/// The versions an exchange may run on, as known before it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Versions {
    Http1,
    Http2,
    Negotiated,
}

/// A request the pool has taken: its answer to come, and how it travels.
pub(crate) struct Sent {
    response: legacy::ResponseFuture,
    /// `None` over HTTP/1.1.
    protocol: Option<Protocol>,
}

/// Hands a request to the pool, which boxes it into its own future; it
/// goes out when [`exchange`] first polls. Handing it over before the
/// caller's future starts keeps the request (256 bytes) out of every
/// future above it, and the boxed call small.
pub(crate) fn send(pool: &Pool, mut request: http::Request<Full<Bytes>>, versions: Versions) -> Sent {
    let protocol = match versions {
        Versions::Http1 => None,
        Versions::Http2 => Some(Protocol::Http2),
        Versions::Negotiated => Some(Protocol::Negotiated(capture_connection(&mut request))),
    };
    Sent { response: pool.request(request), protocol }
}

/// Sends one request and reads its answer: a success body up to
/// `max_body` bytes, an error body up to [`MAX_ERROR_BODY_BYTES`], all
/// within the call's deadline.
///
/// The exchange runs in the caller's task. A caller that gives up (a
/// timeout of its own, a `select!` that took another branch) drops it:
/// over HTTP/1.1 hyper then closes the connection at once, as Go does;
/// over HTTP/2 the exchange finishes in the background within bounds
/// (see [`crate::abandon`]), because a storm of stream resets would close
/// the connection every other call shares.
pub(crate) async fn exchange(sent: Sent, exchange: Exchange<'_>) -> Result<Answer, Error> {
    let Exchange { name, max_body, deadline, claim, abandoned } = exchange;
    let Sent { response, protocol } = sent;
    let outcome = match protocol {
        None => {
            let guard = Http1Guard::new(abandoned, claim, deadline.at);
            let outcome = tokio::time::timeout_at(deadline.at, read_answer(response, max_body)).await;
            guard.finish();
            outcome
        }
        Some(protocol) => {
            let run = Detachable::new(read_answer(response, max_body), abandoned, protocol, claim, deadline.at);
            tokio::time::timeout_at(deadline.at, run).await.map(|outcome| {
                outcome.unwrap_or_else(|| Err(Failure::OtherBody("the exchange was polled after it ended".into())))
            })
        }
    };
    match outcome {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(failure)) => Err(failure.into_error(name)),
        Err(_elapsed) => Err(Error::Timeout { method: name.method, path: name.path.to_owned(), after: deadline.after }),
    }
}

/// Why an exchange failed, before it is named after its call.
enum Failure {
    /// No complete answer head arrived.
    Request(legacy::Error),
    /// The body broke after the head.
    Body(hyper::Error),
    /// The body broke with an error that is not hyper's.
    OtherBody(String),
    /// The success body was larger than allowed.
    TooLarge(u64),
}

impl Failure {
    fn into_error(self, name: CallName<'_>) -> Error {
        match self {
            Self::Request(err) => {
                let kind = if err.is_connect() {
                    TransportKind::Connect
                } else if refused_unprocessed(&err) {
                    TransportKind::Refused
                } else {
                    TransportKind::Request
                };
                name.transport_error(kind, err)
            }
            Self::Body(err) => name.transport_error(TransportKind::Response, err),
            Self::OtherBody(message) => name.transport_error(TransportKind::Response, BodyError(message)),
            Self::TooLarge(limit) => name.body_too_large(limit),
        }
    }
}

/// Whether the server refused the request before processing any of it: an
/// HTTP/2 `REFUSED_STREAM` (RFC 9113 §8.7), or the server's `GOAWAY`, which
/// h2 reports on a stream only when the stream came after the last one the
/// server processed or was never sent (§6.8); streams the server may have
/// processed fail otherwise (a broken pipe).
fn refused_unprocessed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.is_remote() && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        cause = err.source();
    }
    false
}

/// Awaits the answer's head, then reads its body.
async fn read_answer(response: legacy::ResponseFuture, max_body: u64) -> Result<Answer, Failure> {
    let response = response.await.map_err(Failure::Request)?;
    let status = response.status().as_u16();
    if !request::is_success(status) {
        let retry_after = retry_after(response.headers());
        let body = read_error_body(response.into_body()).await;
        return Ok(Answer { status, body, retry_after });
    }
    let is_http1 = response.version() < http::Version::HTTP_2;
    let body = response.into_body();
    // hyper reads the declared `Content-Length` into the size hint.
    if body.size_hint().lower() > max_body {
        return Err(Failure::TooLarge(max_body));
    }
    let body = read_limited(body, max_body).await?;
    // hyper-util puts an HTTP/1 connection back in the pool from another
    // task once the body is done; yielding lets that task run first, so
    // the caller's next request finds the connection idle instead of
    // racing it with a new connect (which opens a surplus connection).
    if is_http1 {
        tokio::task::yield_now().await;
    }
    Ok(Answer { status, body, retry_after: None })
}

async fn read_limited(body: Incoming, max_body: u64) -> Result<Bytes, Failure> {
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(Failure::TooLarge(max_body)),
        Err(err) => Err(match err.downcast::<hyper::Error>() {
            Ok(err) => Failure::Body(*err),
            Err(other) => Failure::OtherBody(other.to_string()),
        }),
    }
}

/// Reads the first bytes of an error body and stops: only
/// [`MAX_ERROR_BODY_BYTES`] are kept, so an endless body cannot hold the
/// call. A body that fails midway keeps what arrived: the status is the news.
async fn read_error_body(mut body: Incoming) -> Bytes {
    let mut kept = Vec::new();
    // One byte past the cap tells "exactly at the cap" (read to the end, so
    // the connection can be reused) from "longer" (dropped with the body).
    while kept.len() <= MAX_ERROR_BODY_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_ERROR_BODY_BYTES + 1 - kept.len();
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    Bytes::from(kept)
}

/// `Retry-After` as a wait: seconds, or an HTTP date (a date already past
/// is no wait). A value that is neither is ignored and the backoff applies.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A body error that is not hyper's own.
#[derive(Debug)]
struct BodyError(String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_keep_their_causes_as_sources() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let err =
            CallName { method: Method::Post, path: "/api/x" }.transport_error(TransportKind::Request, Outer(root));
        assert_eq!(err.to_string(), "POST /api/x: request failed");
        assert_eq!(
            err.display_chain().to_string(),
            "POST /api/x: request failed: client error: connection reset by peer"
        );
    }

    /// An error whose message leaves its cause out, as hyper-util's does.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let with = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(RETRY_AFTER, http::HeaderValue::try_from(value).unwrap());
            retry_after(&headers)
        };
        assert_eq!(retry_after(&http::HeaderMap::new()), None);
        assert_eq!(with(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(with("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date: no wait");
        let in_two_minutes = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = with(&in_two_minutes).unwrap();
        // HTTP dates have whole seconds.
        assert!(wait > Duration::from_secs(118) && wait <= Duration::from_secs(120), "{wait:?}");
        assert_eq!(with("soon"), None);
        assert_eq!(with("-3"), None);
    }
}
