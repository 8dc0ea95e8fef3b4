//! The HTTP server on a byte stream the caller already holds, for
//! transports other than a TCP listener and for driving request parsing in
//! process (the fuzz targets feed raw bytes through `tokio::io::duplex`).

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::MockDaemon;

/// Answers the HTTP/1.1 or h2c requests arriving on `io` exactly as
/// [`crate::serve`] answers one accepted connection (same routes, control
/// routes and errors; bodies above `max_body_bytes` get 413), until the peer
/// closes the stream or the connection fails. At HEAD a WebSocket upgrade
/// of `/api/daemon/ws` takes the stream over: the daemon channel in
/// process. Needs a tokio runtime.
///
/// ```
/// # mod multica { pub mod mock { pub use multica_mock::*; } }
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (mut client, server) = tokio::io::duplex(64 * 1024);
/// let serving = tokio::spawn(multica::mock::serve_stream(
///     multica::mock::MockDaemon::new(),
///     server,
///     multica::mock::DEFAULT_MAX_BODY_BYTES,
/// ));
/// client.write_all(b"GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
/// let mut answer = String::new();
/// client.read_to_string(&mut answer).await.unwrap();
/// assert!(answer.starts_with("HTTP/1.1 404 Not Found"));
/// serving.await.unwrap();
/// # });
/// ```
pub async fn serve_stream<IO>(mock: MockDaemon, io: IO, max_body_bytes: usize)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| crate::server::handle(mock.clone(), request, max_body_bytes));
    // A connection ending badly (client gone, injected transport fault) is
    // that connection's business only.
    let _ = http_builder().serve_connection_with_upgrades(TokioIo::new(io), service).await;
}

/// The HTTP/1.1 and h2c server settings every connection is served with.
pub(crate) fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client may end its side once the request is sent, as Go's server
    // allows: that is no reason to drop the answer.
    builder.http1().half_close(true);
    // What bounds an HTTP/2 client that resets its streams (rapid reset),
    // pinned rather than left to defaults that may change. A stream reset
    // before the server takes it costs little, and once 20 such wait to be
    // taken h2 ends the connection (GOAWAY `ENHANCE_YOUR_CALM`), so a
    // flooding client must reconnect every few dozen streams. With 200
    // instead, the server took up to 401 streams on one connection and ran
    // about 8,000 of the reset claims in 1.5 s; under 16 flooding
    // connections another client's 600 requests took 18–21 s instead of
    // 3 s, its p99 153 ms instead of 18–40 ms, the server's CPU 10–12 s
    // instead of 1.3–1.8 s
    // (`tests/floods.rs`).
    builder
        .http2()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS);
    builder
}

/// Streams an HTTP/2 client may have open at once (hyper's default).
const MAX_CONCURRENT_STREAMS: u32 = 200;
/// Streams reset by the client before the server took them that may wait
/// to be taken before the connection is ended (h2's default).
const MAX_PENDING_RESET_STREAMS: usize = 20;
/// Streams the server itself resets for a client's protocol errors before
/// the connection is ended (hyper's default).
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
