//! What the server's router and middleware do around the daemon routes
//! (chi and go-chi/cors in server 3c93ebaf1c): which path is routed, the
//! routes outside the daemon API (`/health`, `/api/workspaces` behind its
//! auth, approving a pairing), `Allow` on 405, and CORS.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, ORIGIN, VARY};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use multica_api::{Endpoint, WorkspaceId};

use crate::server::{error_response, json_response, HttpResponse};
use crate::state::Rejection;
use crate::MockDaemon;

/// The path the router matches. Go keeps the raw path when it is not the
/// canonical escaping of the decoded one (`%2F`, `%2D`…), and chi then
/// routes on the raw path and hands out its segments undecoded. The result
/// is written so that decoding each segment gives what chi sees.
pub(crate) fn routing_path(raw: &str) -> Cow<'_, str> {
    // Without escapes the raw and decoded paths are the same.
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let canonical = match percent_decode_str(raw).decode_utf8() {
        Ok(decoded) => go_escape_path(&decoded) == raw,
        Err(_) => false,
    };
    if canonical {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(raw.replace('%', "%25"))
    }
}

/// Go's `url.PathEscape`-like escaping of a whole path (`encodePath` mode).
fn go_escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Routes the server has besides the daemon API.
pub(crate) enum Special<'a> {
    /// `/health`.
    Health,
    /// `/api/workspaces` and below: auth runs before routing. `list` when
    /// the path is the list route (with or without a trailing slash).
    Workspaces { list: bool },
    /// `/api/daemon/pairing-sessions/{token}/approve` (user auth).
    ApprovePairing(Cow<'a, str>),
}

/// Which special route, if any, `path` (a [`routing_path`]) is.
pub(crate) fn special(path: &str) -> Option<Special<'_>> {
    if path == "/health" {
        return Some(Special::Health);
    }
    if path == "/api/workspaces" || path.starts_with("/api/workspaces/") {
        return Some(Special::Workspaces { list: path == "/api/workspaces" || path == "/api/workspaces/" });
    }
    let token = path.strip_prefix("/api/daemon/pairing-sessions/")?.strip_suffix("/approve")?;
    if token.contains('/') {
        return None;
    }
    Some(Special::ApprovePairing(percent_decode_str(token).decode_utf8_lossy()))
}

/// `GET /health`: the server writes it without Go's trailing newline.
pub(crate) fn health(method: &str) -> HttpResponse {
    if method != "GET" {
        return method_not_allowed(&["GET"]);
    }
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"ok"}"#)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `POST /api/daemon/pairing-sessions/{token}/approve` with
/// `{"workspace_id": …}`, authenticated like `/api/workspaces`.
pub(crate) fn approve_pairing(
    mock: &MockDaemon,
    method: &str,
    token: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<HttpResponse, Rejection> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Approve {
        workspace_id: WorkspaceId,
    }
    if method != "POST" {
        return Ok(method_not_allowed(&["POST"]));
    }
    let mut state = mock.lock();
    state.authorize(authorization)?;
    let Ok(approve) = multica_api::go_json::from_body::<Approve>(body) else {
        return Ok(error_response(400, "invalid request body"));
    };
    let session = state.approve_pairing_route(token, &approve.workspace_id)?;
    Ok(match serde_json::to_vec(&session) {
        Ok(bytes) => json_response(200, bytes),
        Err(_) => error_response(500, "internal error"),
    })
}

/// The methods the routes of `path` accept, one `Allow` header each, as chi
/// writes them.
pub(crate) fn allowed_methods(path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = Vec::new();
    for endpoint in Endpoint::ALL.iter().filter(|e| e.match_path(path).is_some()) {
        let method = endpoint.method().as_str();
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    methods
}

/// Go's router answer to a known path with another method: one `Allow`
/// header per accepted method, no body.
pub(crate) fn method_not_allowed(allowed: &[&'static str]) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    for method in allowed {
        response.headers_mut().append(ALLOW, HeaderValue::from_static(method));
    }
    response
}

// ----- CORS (go-chi/cors as the server configures it) -----------------------

/// Methods a preflight may ask for.
const CORS_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// Request headers a preflight may ask for (canonical form).
const CORS_HEADERS: &[&str] = &["Accept", "Authorization", "Content-Type", "X-Csrf-Token", "X-Workspace-Id"];
/// HEAD 1cc46b2697 also allows the capability header.
const CORS_HEADERS_HEAD: &[&str] =
    &["Accept", "Authorization", "Content-Type", "X-Csrf-Token", "X-Workspace-Id", "X-Client-Capabilities"];
/// Response headers HEAD 1cc46b2697 exposes to an allowed origin.
const CORS_EXPOSE_HEAD: &str = "X-Comments-Truncated, X-Timeline-Truncated";
/// How long a browser may cache a preflight, in seconds.
const CORS_MAX_AGE: &str = "300";

/// What CORS needs of a request.
pub(crate) struct Cors {
    origin: Option<String>,
    /// `Access-Control-Request-Method` of an `OPTIONS` request: a preflight.
    preflight_method: Option<String>,
    preflight_headers: Vec<String>,
}

impl Cors {
    pub(crate) fn of(method: &str, headers: &HeaderMap) -> Cors {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let preflight_method =
            if method == "OPTIONS" { text("access-control-request-method").filter(|m| !m.is_empty()) } else { None };
        let preflight_headers = text("access-control-request-headers")
            .map(|list| list.split(',').map(str::trim).filter(|h| !h.is_empty()).map(canonical_header).collect())
            .unwrap_or_default();
        Cors { origin: text(ORIGIN.as_str()).filter(|o| !o.is_empty()), preflight_method, preflight_headers }
    }

    /// Whether answering needs the frontend URL (the allowed origin).
    pub(crate) fn needs_frontend_url(&self) -> bool {
        self.origin.is_some() || self.preflight_method.is_some()
    }

    fn origin_allowed(&self, frontend_url: &str) -> Option<&str> {
        self.origin.as_deref().filter(|origin| origin.eq_ignore_ascii_case(frontend_url.trim_end_matches('/')))
    }

    /// The answer to a preflight (always 200, no body); `None` when the
    /// request is not one.
    pub(crate) fn preflight(&self, frontend_url: &str, head: bool) -> Option<HttpResponse> {
        let method = self.preflight_method.as_deref()?;
        let mut response = Response::new(Full::new(Bytes::new()));
        let headers = response.headers_mut();
        for vary in ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"] {
            headers.append(VARY, HeaderValue::from_static(vary));
        }
        let method = method.to_ascii_uppercase();
        let allowed = self.origin_allowed(frontend_url).is_some()
            && CORS_METHODS.contains(&method.as_str())
            && self.preflight_headers.iter().all(|h| {
                let allowed_headers = if head { CORS_HEADERS_HEAD } else { CORS_HEADERS };
                allowed_headers.contains(&h.as_str())
            });
        if let (true, Some(origin)) = (allowed, self.origin.as_deref()) {
            set(headers, "access-control-allow-origin", origin);
            set(headers, "access-control-allow-methods", &method);
            if !self.preflight_headers.is_empty() {
                set(headers, "access-control-allow-headers", &self.preflight_headers.join(", "));
            }
            set(headers, "access-control-allow-credentials", "true");
            set(headers, "access-control-max-age", CORS_MAX_AGE);
        }
        Some(response)
    }

    /// The headers of an actual request's answer.
    pub(crate) fn decorate(&self, response: &mut HttpResponse, frontend_url: &str, head: bool) {
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.origin_allowed(frontend_url) {
            set(headers, "access-control-allow-origin", origin);
            set(headers, "access-control-allow-credentials", "true");
            if head {
                set(headers, "access-control-expose-headers", CORS_EXPOSE_HEAD);
            }
        }
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// `x-csrf-token` → `X-Csrf-Token`, as Go's `http.CanonicalHeaderKey`.
fn canonical_header(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_raw_path_when_go_would() {
        assert_eq!(routing_path("/api/daemon/tasks/abc/status"), "/api/daemon/tasks/abc/status");
        assert_eq!(routing_path("/api/daemon/tasks/a%20b/status"), "/api/daemon/tasks/a%20b/status");
        assert_eq!(routing_path("/api/daemon/tasks/a%2Fb/status"), "/api/daemon/tasks/a%252Fb/status");
        assert_eq!(routing_path("/api/daemon/tasks/a%2Db/status"), "/api/daemon/tasks/a%252Db/status");
    }

    #[test]
    fn canonicalizes_header_names_as_go() {
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("X-CSRF-TOKEN"), "X-Csrf-Token");
    }
}
