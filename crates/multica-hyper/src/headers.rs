//! The headers every request carries, built once per token.
//!
//! A call clones a ready map instead of hashing and inserting each header
//! anew: measured, building the map per call cost as much as the JSON of a
//! heartbeat.

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, PROXY_AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue};
use multica_api::Method;

use crate::url::BaseUrl;

/// Room for a header the stack adds (hyper-util's `Host` when not preset).
const ROOM: usize = 1;

/// A client's request headers for its current token.
pub(crate) struct RequestHeaders {
    token: Option<HeaderValue>,
    get: HeaderMap,
    post: HeaderMap,
}

/// What stays the same across tokens.
pub(crate) struct FixedHeaders {
    pub(crate) user_agent: HeaderValue,
    /// `X-Client-Capabilities` and the client identity headers.
    pub(crate) client: Vec<(HeaderName, HeaderValue)>,
    /// Sent with each request to a forwarding (plain http) proxy.
    pub(crate) proxy_authorization: Option<HeaderValue>,
    /// Preset on connections known to be HTTP/1.1, where hyper-util would
    /// otherwise format it for every request; HTTP/2 sends `:authority`.
    pub(crate) host: Option<HeaderValue>,
}

impl FixedHeaders {
    /// The `Host` value hyper-util sends for `base`: the host, and the port
    /// unless it is the scheme's default.
    pub(crate) fn host_of(base: &BaseUrl) -> Option<HeaderValue> {
        HeaderValue::try_from(base.host_header()).ok()
    }
}

impl RequestHeaders {
    /// The headers for `token` (none: no `Authorization`).
    pub(crate) fn new(fixed: &FixedHeaders, token: Option<HeaderValue>) -> Self {
        let mut get = HeaderMap::with_capacity(fixed.client.len() + 4 + ROOM);
        if let Some(host) = &fixed.host {
            get.insert(HOST, host.clone());
        }
        get.insert(USER_AGENT, fixed.user_agent.clone());
        for (name, value) in &fixed.client {
            get.insert(name.clone(), value.clone());
        }
        if let Some(proxy_authorization) = &fixed.proxy_authorization {
            get.insert(PROXY_AUTHORIZATION, proxy_authorization.clone());
        }
        if let Some(token) = &token {
            get.insert(AUTHORIZATION, token.clone());
        }
        let mut post = get.clone();
        post.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // A slot for the body's length, filled per call: a clone has no
        // spare room, and hyper adding the header would grow (reallocate)
        // the map on every call.
        post.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        Self { token, get, post }
    }

    /// What identifies the client on every call (`User-Agent`,
    /// capabilities, identity, `Authorization`): the GET headers without
    /// those of one connection (`Host`, proxy credentials).
    pub(crate) fn identity(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.get.iter().filter(|(name, _)| **name != HOST && **name != PROXY_AUTHORIZATION)
    }

    /// The token's `Authorization` value, if any.
    pub(crate) fn token(&self) -> Option<&HeaderValue> {
        self.token.as_ref()
    }

    /// A request's headers: on a POST, `Content-Type: application/json`
    /// and the body's `Content-Length`.
    pub(crate) fn for_request(&self, method: Method, body_length: usize) -> HeaderMap {
        match method {
            Method::Get => self.get.clone(),
            Method::Post => {
                let mut headers = self.post.clone();
                headers.insert(CONTENT_LENGTH, HeaderValue::from(body_length));
                headers
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_every_get_header_but_the_connections() {
        let value = HeaderValue::from_static;
        let fixed = FixedHeaders {
            user_agent: value("multica-hyper/0"),
            client: vec![(HeaderName::from_static("x-client-platform"), value("multica-rs"))],
            proxy_authorization: Some(value("Basic cHJveHk=")),
            host: Some(value("h:8080")),
        };
        let headers = RequestHeaders::new(&fixed, Some(value("Bearer t")));
        let identity: Vec<_> =
            headers.identity().map(|(name, value)| (name.as_str(), value.to_str().unwrap())).collect();
        assert_eq!(
            identity,
            [("user-agent", "multica-hyper/0"), ("x-client-platform", "multica-rs"), ("authorization", "Bearer t")]
        );
        assert_eq!(headers.for_request(Method::Get, 0).len(), 5, "the GET map keeps Host and the proxy's credentials");
    }
}
