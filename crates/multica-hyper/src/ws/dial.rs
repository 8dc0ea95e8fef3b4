//! Opening the control channel: the client's own connector (TLS roots,
//! proxy tunnel, connect timeout), its headers, then the RFC 6455 upgrade
//! by tokio-tungstenite (WS contract §1).

use std::future::poll_fn;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use multica_api::{Error, Method, TransportKind};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::WebSocketStream;
use tower_service::Service;

use crate::connect::Connector;
use crate::HyperClient;

/// The route of the channel.
pub(crate) const PATH: &str = "/api/daemon/ws";

/// The largest message and frame accepted: the Go daemon's read limit (a
/// claim answer can be one multi-MB frame; tungstenite's default frame cap
/// of 16 MiB is below it).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What a connection runs over.
pub(crate) type Io = TokioIo<<Connector as Service<http::Uri>>::Response>;
/// An open channel.
pub(crate) type Socket = WebSocketStream<Io>;

/// `?runtime_ids=` with the canonical IDs sorted and joined by an encoded
/// comma, as the Go daemon sends it; no query without runtimes.
pub(crate) fn path_and_query(runtimes: &[String]) -> String {
    if runtimes.is_empty() {
        return PATH.to_owned();
    }
    let mut sorted: Vec<&str> = runtimes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    // What Go's `url.Values.Encode` leaves as is.
    const QUERY_VALUE: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let encoded: Vec<String> =
        sorted.iter().map(|id| percent_encoding::utf8_percent_encode(id, QUERY_VALUE).to_string()).collect();
    format!("{PATH}?runtime_ids={}", encoded.join("%2C"))
}

/// Connects and upgrades within `timeout` (the Go daemon's 10 s). A refusal
/// is the server's answer as an [`Error::Status`] (401, 404 when a runtime
/// is unknown, `404 page not found` on a server without the channel).
pub(crate) async fn dial(client: &HyperClient, runtimes: &[String], timeout: Duration) -> Result<Socket, Error> {
    let path = path_and_query(runtimes);
    match tokio::time::timeout(timeout, dial_now(client, &path)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Error::Timeout { method: Method::Get, path, after: timeout }),
    }
}

async fn dial_now(client: &HyperClient, path: &str) -> Result<Socket, Error> {
    let failed = |kind, source: Box<dyn std::error::Error + Send + Sync>| Error::Transport {
        method: Method::Get,
        path: path.to_owned(),
        kind,
        source: std::sync::Arc::from(source),
    };
    let (connect_uri, url) = client.base().ws(path)?;
    let mut request = url.into_client_request().map_err(|err| failed(TransportKind::Connect, Box::new(err)))?;
    for (name, value) in client.identity_headers() {
        request.headers_mut().insert(name, value);
    }
    let mut connector = client.ws_connector();
    poll_fn(|cx| connector.poll_ready(cx)).await.map_err(|err| failed(TransportKind::Connect, err))?;
    let io = connector.call(connect_uri).await.map_err(|err| failed(TransportKind::Connect, err))?;
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    match tokio_tungstenite::client_async_with_config(request, TokioIo::new(io), Some(config)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            Err(Error::from_status(Method::Get, path, status, body))
        }
        // The request may have been read by the server, but an upgrade that
        // did not happen changed nothing: nothing was claimed.
        Err(err) => Err(failed(TransportKind::Request, Box::new(err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_ids_are_sorted_deduplicated_and_comma_encoded() {
        assert_eq!(path_and_query(&[]), "/api/daemon/ws");
        let ids = ["b-2".to_owned(), "a1".to_owned(), "b-2".to_owned()];
        assert_eq!(path_and_query(&ids), "/api/daemon/ws?runtime_ids=a1%2Cb-2");
    }
}
