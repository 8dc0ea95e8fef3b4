//! The handshake (WS contract §1): the daemon auth middleware, 405 for
//! another method, then the runtime checks all or nothing, then the
//! WebSocket upgrade checks; the first failure answers, nothing is
//! upgraded. A good handshake gets a bare 101 and its session.

use std::sync::Arc;

use http::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use percent_encoding::percent_decode_str;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use multica_api::WorkspaceId;

use super::session::{self, Peer};
use super::{ChannelUser, Hub};
use crate::router::{self, Cors};
use crate::server::{add_security_headers, error_response, rejection_response, HttpResponse};
use crate::state::Identity;
use crate::MockDaemon;

/// Answers `/api/daemon/ws` (HEAD only): a refusal, or 101 and the
/// connection's session on its own task.
pub(crate) fn handshake(mock: &MockDaemon, mut request: Request<Incoming>) -> HttpResponse {
    let headers = request.headers();
    let method = request.method().as_str().to_owned();
    let cors = Cors::of(&method, headers);
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = text("authorization");
    let capabilities = text("x-client-capabilities");
    let query = request.uri().query().unwrap_or_default().to_owned();
    let frontend_url = if cors.needs_frontend_url() { mock.lock().frontend_url.clone() } else { String::new() };
    // The CORS middleware answers a preflight before anything else.
    if let Some(mut preflight) = cors.preflight(&frontend_url, true) {
        add_security_headers(&mut preflight);
        return preflight;
    }
    let refusal = |mut response: HttpResponse| {
        cors.decorate(&mut response, &frontend_url, true);
        add_security_headers(&mut response);
        response
    };
    let (identity, runtime_ids, workspaces, hub) = match admit(mock, authorization.as_deref(), &method, &query) {
        Ok(admitted) => admitted,
        Err(response) => return refusal(*response),
    };
    let Some(accept) = upgrade_key(request.headers()) else { return refusal(bad_request()) };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else { return refusal(bad_request()) };

    let user = match &identity {
        Identity::User { id, member_of } => Some(ChannelUser { id: id.clone(), member_of: member_of.clone() }),
        _ => None,
    };
    let registration = hub.register(runtime_ids.clone(), workspaces, user);
    let peer = Peer { runtime_ids, identity, capabilities };
    let mock = mock.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session::run(mock, upgraded, registration, peer).await,
            Err(_) => hub.unregister(registration.id),
        }
    });
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// Who connects, the runtimes as sent and their workspaces, and the hub.
type Admitted = (Identity, Vec<String>, Vec<WorkspaceId>, Arc<Hub>);

/// Checks 1-10 (§1.5) in order, and an armed refusal; the first failure's answer.
fn admit(
    mock: &MockDaemon,
    authorization: Option<&str>,
    method: &str,
    query: &str,
) -> Result<Admitted, Box<HttpResponse>> {
    let state = mock.lock();
    let identity = state.authenticate_daemon(authorization).map_err(|r| Box::new(rejection_response(r)))?;
    if method != "GET" {
        return Err(Box::new(router::method_not_allowed(&["GET"])));
    }
    if let Some((status, message)) = state.hub.take_upgrade_refusal() {
        return Err(Box::new(error_response(status, &message)));
    }
    let runtime_ids = runtime_ids(query);
    if runtime_ids.is_empty() && !matches!(identity, Identity::User { .. }) {
        return Err(Box::new(error_response(400, "runtime_ids or user identity required")));
    }
    let workspaces = state
        .channel_scope(&runtime_ids, &identity)
        .map_err(|rejection| Box::new(error_response(rejection.status, &rejection.message)))?;
    Ok((identity, runtime_ids, workspaces, Arc::clone(&state.hub)))
}

/// `runtime_id` values (each split on `,`), then `runtime_ids` ones:
/// trimmed, empty ones skipped, exact duplicates dropped, order kept.
fn runtime_ids(query: &str) -> Vec<String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8().ok().map(|s| s.into_owned());
        // Go's query parser skips a pair it cannot decode.
        if let (Some(key), Some(value)) = (decode(key), decode(value)) {
            pairs.push((key, value));
        }
    }
    let mut ids: Vec<String> = Vec::new();
    for name in ["runtime_id", "runtime_ids"] {
        for (_, value) in pairs.iter().filter(|(key, _)| key == name) {
            for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    ids
}

/// The `Sec-WebSocket-Accept` of a valid upgrade request; `None` when the
/// request is not one (the upgrader's 400).
fn upgrade_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: http::header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token(CONNECTION, "upgrade") || !has_token(UPGRADE, "websocket") {
        return None;
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return None;
    }
    let key = headers.get(SEC_WEBSOCKET_KEY)?.to_str().ok()?.trim();
    (decoded_len(key)? == 16).then(|| derive_accept_key(key.as_bytes()))
}

/// The length of standard base64 `text` once decoded; `None` when it is
/// not base64.
fn decoded_len(text: &str) -> Option<usize> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    let valid = body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !valid || padding > 2 || text.len() % 4 != 0 {
        return None;
    }
    Some(text.len() / 4 * 3 - padding)
}

/// What the upgrader writes for a request that is no WebSocket upgrade.
fn bad_request() -> HttpResponse {
    let mut response = crate::server::plain_text_error(400, b"Bad Request\n".to_vec());
    response.headers_mut().insert("sec-websocket-version", HeaderValue::from_static("13"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runtime_ids_as_the_server() {
        assert_eq!(runtime_ids("runtime_ids=b%2Ca&runtime_id=c,%20a"), ["c", "a", "b"]);
        assert_eq!(runtime_ids("runtime_ids=,,"), Vec::<String>::new());
        assert!(runtime_ids("").is_empty());
    }

    #[test]
    fn checks_the_challenge_key() {
        assert_eq!(decoded_len("dGhlIHNhbXBsZSBub25jZQ=="), Some(16));
        assert_eq!(decoded_len("not base64!"), None);
    }
}
