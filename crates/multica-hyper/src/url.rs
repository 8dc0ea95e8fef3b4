//! The server's base URL, parsed once at build time.

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;
use multica_api::Error;

/// A validated base URL: scheme, host and port, and a path prefix without a
/// trailing slash (empty for none), to which each call's `/api/…` is appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    scheme: Scheme,
    authority: Authority,
    prefix: String,
}

impl BaseUrl {
    /// Parses `http(s)://host[:port][/prefix][/]`. Queries, fragments, user
    /// info and other schemes are refused: each would silently change or
    /// leak every request.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidArgument(format!("base URL {:?}: {why}", redacted(url)));
        let uri: Uri = url.trim().parse().map_err(|err| invalid(&format!("{err}")))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| invalid("needs a scheme (http:// or https://)"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(invalid("the scheme must be http or https"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| invalid("needs a host"))?;
        if authority.host().is_empty() {
            return Err(invalid("needs a host"));
        }
        if authority.as_str().contains('@') {
            return Err(invalid("user info is not supported; use a token"));
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(invalid("a query or fragment is not allowed"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self { scheme, authority, prefix })
    }

    /// Whether requests go over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The control channel's address for `path_and_query` (`/api/…`): the
    /// URI to connect to (with its port, which a proxy tunnel needs) and
    /// the `ws(s)://` URL of the upgrade request.
    pub(crate) fn ws(&self, path_and_query: &str) -> Result<(Uri, String), Error> {
        let port = self.authority.port_u16().unwrap_or(if self.is_https() { 443 } else { 80 });
        let authority = format!("{}:{port}", self.authority.host());
        let connect = format!("{}://{authority}/", self.scheme)
            .parse()
            .map_err(|err| Error::InvalidArgument(format!("base URL {self}: {err}")))?;
        let scheme = if self.is_https() { "wss" } else { "ws" };
        Ok((connect, format!("{scheme}://{}{}{path_and_query}", self.authority, self.prefix)))
    }

    /// The `Host` header for this server, as hyper-util writes it: the host,
    /// and the port unless it is the scheme's default.
    pub(crate) fn host_header(&self) -> String {
        let default_port = if self.is_https() { 443 } else { 80 };
        match self.authority.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", self.authority.host()),
            _ => self.authority.host().to_owned(),
        }
    }

    /// The full URI of a call, from its encoded path (`/api/…`).
    pub(crate) fn join(&self, path: &str) -> Result<Uri, Error> {
        let path_and_query = if self.prefix.is_empty() {
            PathAndQuery::try_from(path)
        } else {
            PathAndQuery::try_from(format!("{}{path}", self.prefix))
        }
        .map_err(|err| Error::InvalidArgument(format!("path {path:?}: {err}")))?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(|err| Error::InvalidArgument(format!("path {path:?}: {err}")))
    }
}

/// `url` with what may hold a credential hidden, for messages and `Debug`:
/// user info (`user:password@`) and any query or fragment.
pub(crate) fn redacted(url: &str) -> String {
    let (head, has_tail) = match url.find(['?', '#']) {
        Some(at) => (&url[..at], true),
        None => (url, false),
    };
    let authority_start = head.find("://").map_or(0, |at| at + 3);
    let authority_end = head[authority_start..].find('/').map_or(head.len(), |at| authority_start + at);
    let mut shown = match head[authority_start..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>@{}", &head[..authority_start], &head[authority_start + at + 1..]),
        None => head.to_owned(),
    };
    if has_tail {
        shown.push_str("?<redacted>");
    }
    shown
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn joined(base: &str) -> String {
        BaseUrl::parse(base).unwrap().join("/api/daemon/heartbeat").unwrap().to_string()
    }

    #[test]
    fn prefix_and_trailing_slashes_are_handled() {
        assert_eq!(joined("http://h:8080"), "http://h:8080/api/daemon/heartbeat");
        assert_eq!(joined("http://h:8080/"), "http://h:8080/api/daemon/heartbeat");
        assert_eq!(joined("https://h/multica"), "https://h/multica/api/daemon/heartbeat");
        assert_eq!(joined("https://h/multica//"), "https://h/multica/api/daemon/heartbeat");
        assert_eq!(joined("  http://127.0.0.1:1/a/b/ "), "http://127.0.0.1:1/a/b/api/daemon/heartbeat");
    }

    #[test]
    fn bad_urls_are_invalid_arguments() {
        for bad in [
            "",
            "localhost:8080",
            "ftp://h/",
            "http://",
            "http:///x",
            "http://h/?q=1",
            "http://h/#f",
            "http://u:p@h/",
            "http://h h/",
            "/api",
        ] {
            assert!(matches!(BaseUrl::parse(bad), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
    }

    #[test]
    fn redacted_hides_user_info_query_and_fragment() {
        assert_eq!(redacted("http://u:pw@h:1/p"), "http://<redacted>@h:1/p");
        assert_eq!(redacted("https://h/p?token=pw#f"), "https://h/p?<redacted>");
        assert_eq!(redacted("http://h/a@b"), "http://h/a@b");
        assert_eq!(redacted("u:pw@h"), "<redacted>@h");
        let err = BaseUrl::parse("http://u:pw@h/").unwrap_err().to_string();
        assert!(err.contains("<redacted>") && !err.contains("pw"), "{err}");
    }

    #[test]
    fn host_header_leaves_default_ports_out() {
        let host = |url: &str| BaseUrl::parse(url).unwrap().host_header();
        assert_eq!(host("http://h"), "h");
        assert_eq!(host("http://h:80/p"), "h");
        assert_eq!(host("http://h:443"), "h:443");
        assert_eq!(host("https://h:443"), "h");
        assert_eq!(host("https://h:8443"), "h:8443");
        assert_eq!(host("http://[::1]:8080"), "[::1]:8080");
    }

    #[test]
    fn display_shows_the_normalised_base() {
        assert_eq!(BaseUrl::parse("https://h:1/p/").unwrap().to_string(), "https://h:1/p");
        assert!(BaseUrl::parse("https://h").unwrap().is_https());
        assert!(!BaseUrl::parse("http://h").unwrap().is_https());
    }
}
