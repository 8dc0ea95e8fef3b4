//! Which HTTP proxy, if any, a client reaches its server through: the
//! environment's (as Go's default transport), one given explicitly, or none.
//! The rules of `NO_PROXY` and the parsing of proxy credentials are
//! hyper-util's proxy [`Matcher`]'s.

use std::collections::HashMap;
use std::fmt;

use http::uri::Scheme;
use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;
use multica_api::Error;

use crate::url::{redacted, BaseUrl};

/// How a client finds its proxy; set with
/// [`HyperClientBuilder::proxy`](crate::HyperClientBuilder::proxy).
///
/// The default, [`Proxy::from_env`], honours the variables Go's
/// `http.ProxyFromEnvironment` reads, so a daemon behind a corporate proxy
/// works as the Go one does. Only `http://` proxies are supported: `https://`
/// servers are reached through a `CONNECT` tunnel (TLS to the server inside
/// it), `http://` servers by sending each request in absolute form to the
/// proxy. Credentials come from the proxy URL (`http://user:pass@proxy:3128`,
/// percent-encoded) and are sent as `Proxy-Authorization: Basic`; they are
/// never shown by `Debug` or in errors.
///
/// ```
/// # mod multica { pub mod hyper { pub use multica_hyper::*; } }
/// use multica::hyper::{HyperClient, Proxy};
///
/// // Everything through one proxy, except hosts of the internal domain.
/// let proxy = Proxy::all("http://user:s3cret@proxy.internal:3128").no_proxy(".corp.example");
/// assert!(!format!("{proxy:?}").contains("s3cret"));
/// let client = HyperClient::builder("http://multica.example.com").proxy(proxy).build()?;
/// assert_eq!(client.proxy(), Some("http://proxy.internal:3128/"));
///
/// let direct = HyperClient::builder("http://multica.corp.example")
///     .proxy(Proxy::all("http://proxy.internal:3128").no_proxy(".corp.example"))
///     .build()?;
/// assert_eq!(direct.proxy(), None);
/// # Ok::<(), multica_api::Error>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    choice: Choice,
    /// Hosts reached directly, in `NO_PROXY` syntax, on top of the
    /// environment's own `NO_PROXY`.
    no_proxy: String,
}

#[derive(Clone)]
enum Choice {
    /// The process environment, read when the client is built.
    ProcessEnv,
    /// Values read from an environment given to [`Proxy::from_env_vars`].
    Env(EnvProxies),
    /// One proxy for every request.
    Explicit(String),
    /// Direct connections only.
    None,
}

/// The proxy variables of one environment, each with the name it was read
/// under (for errors).
#[derive(Clone, Default)]
struct EnvProxies {
    http: Option<(&'static str, String)>,
    https: Option<(&'static str, String)>,
    no_proxy: String,
}

impl EnvProxies {
    /// Reads the variables as Go's `httpproxy.FromEnvironment`: the
    /// upper-case name first, an empty value as unset, and `HTTP_PROXY`
    /// ignored when `REQUEST_METHOD` says the process is a CGI script (where
    /// a client's `Proxy:` header would set it).
    fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|name| lookup(name).filter(|value| !value.trim().is_empty()).map(|value| (name, value)))
        };
        let is_cgi = lookup("REQUEST_METHOD").is_some_and(|value| !value.is_empty());
        Self {
            http: if is_cgi { None } else { first(["HTTP_PROXY", "http_proxy"]) },
            https: first(["HTTPS_PROXY", "https_proxy"]),
            no_proxy: first(["NO_PROXY", "no_proxy"]).map(|(_, value)| value).unwrap_or_default(),
        }
    }
}

/// Reads a variable of the process environment; a value that is not UTF-8
/// is kept with replacement characters, so that it fails validation with
/// the variable's name rather than being silently ignored.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

impl Proxy {
    /// The proxies of the process environment, read when the client is
    /// built (the default): `HTTPS_PROXY` for an `https://` server,
    /// `HTTP_PROXY` for an `http://` one, `NO_PROXY` for hosts reached
    /// directly, each also in lower case (the upper-case name wins), as Go's
    /// `http.ProxyFromEnvironment`. As there, `localhost` and loopback
    /// addresses are always reached directly and `ALL_PROXY` is not read.
    /// `NO_PROXY` follows curl's rules: comma-separated host names (each
    /// also matching its subdomains), IP addresses, CIDR ranges, or `*`.
    /// A proxy variable that is set but not an `http://` proxy URL fails
    /// [`build`](crate::HyperClientBuilder::build), naming the variable.
    pub fn from_env() -> Self {
        Self { choice: Choice::ProcessEnv, no_proxy: String::new() }
    }

    /// As [`Proxy::from_env`], from the variables given instead of the
    /// process environment (so that tests and configuration readers need
    /// not change the process's).
    ///
    /// ```
    /// # mod multica { pub mod hyper { pub use multica_hyper::*; } }
    /// use multica::hyper::{HyperClient, Proxy};
    ///
    /// let env = [("HTTP_PROXY", "proxy.internal:3128"), ("NO_PROXY", "localhost,.corp.example")];
    /// let client = HyperClient::builder("http://multica.example.com")
    ///     .proxy(Proxy::from_env_vars(env))
    ///     .build()?;
    /// assert_eq!(client.proxy(), Some("http://proxy.internal:3128/"));
    /// # Ok::<(), multica_api::Error>(())
    /// ```
    pub fn from_env_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars.into_iter().map(|(name, value)| (name.into(), value.into())).collect();
        Self::from_lookup(&|name| vars.get(name).cloned())
    }

    pub(crate) fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        Self { choice: Choice::Env(EnvProxies::read(lookup)), no_proxy: String::new() }
    }

    /// Every request through the proxy at `url` (`http://[user:pass@]host[:port]`;
    /// without a scheme, `http://` is assumed), loopback included.
    pub fn all(url: impl Into<String>) -> Self {
        Self { choice: Choice::Explicit(url.into()), no_proxy: String::new() }
    }

    /// No proxy: always connect directly.
    pub fn none() -> Self {
        Self { choice: Choice::None, no_proxy: String::new() }
    }

    /// Also reaches these hosts directly, in `NO_PROXY` syntax (added to
    /// the environment's `NO_PROXY`, if read).
    pub fn no_proxy(mut self, hosts: impl AsRef<str>) -> Self {
        if !self.no_proxy.is_empty() {
            self.no_proxy.push(',');
        }
        self.no_proxy.push_str(hosts.as_ref());
        self
    }

    /// The proxy for requests to `base`, if any: checked here, once, as a
    /// client talks to one server.
    pub(crate) fn route(&self, base: &BaseUrl) -> Result<Option<ProxyRoute>, Error> {
        let origin = base.join("/")?;
        let https = origin.scheme() == Some(&Scheme::HTTPS);
        let from_env = |env: &EnvProxies| -> Result<Option<ProxyRoute>, Error> {
            let chosen = if https { &env.https } else { &env.http };
            let Some((name, value)) = chosen else { return Ok(None) };
            // Go's rule: a proxy variable never applies to the machine itself.
            if is_loopback(origin.host().unwrap_or_default()) {
                return Ok(None);
            }
            let url = checked_proxy_url(name, value)?;
            let matcher = Matcher::builder();
            let matcher = if https { matcher.https(url) } else { matcher.http(url) };
            Ok(intercept(matcher.no(joined(&env.no_proxy, &self.no_proxy)).build(), &origin))
        };
        match &self.choice {
            Choice::None => Ok(None),
            Choice::ProcessEnv => from_env(&EnvProxies::read(&process_env)),
            Choice::Env(env) => from_env(env),
            Choice::Explicit(url) => {
                let url = checked_proxy_url("proxy URL", url)?;
                Ok(intercept(Matcher::builder().all(url).no(self.no_proxy.as_str()).build(), &origin))
            }
        }
    }
}

impl Default for Proxy {
    fn default() -> Self {
        Self::from_env()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown =
            |var: &Option<(&str, String)>| var.as_ref().map(|(name, value)| format!("{name}={}", redacted(value)));
        let mut debug = f.debug_struct("Proxy");
        match &self.choice {
            Choice::ProcessEnv => debug.field("from", &"process environment"),
            Choice::Env(env) => debug
                .field("http", &shown(&env.http))
                .field("https", &shown(&env.https))
                .field("env_no_proxy", &env.no_proxy),
            Choice::Explicit(url) => debug.field("all", &redacted(url)),
            Choice::None => debug.field("all", &"none"),
        };
        debug.field("no_proxy", &self.no_proxy).finish()
    }
}

/// A proxy to go through: its address (without credentials) and the
/// `Proxy-Authorization` its URL's credentials make.
#[derive(Clone, Debug)]
pub(crate) struct ProxyRoute {
    pub(crate) uri: Uri,
    pub(crate) authorization: Option<HeaderValue>,
}

fn intercept(matcher: Matcher, origin: &Uri) -> Option<ProxyRoute> {
    let found = matcher.intercept(origin)?;
    Some(ProxyRoute { uri: found.uri().clone(), authorization: found.basic_auth().cloned() })
}

fn joined(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_owned(),
        (true, false) => b.to_owned(),
        (false, false) => format!("{a},{b}"),
    }
}

/// `localhost` or a loopback address, which Go never proxies.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// The proxy URL `value` (read from `name`) with a scheme, or why it cannot
/// be used. The matcher would silently ignore what it cannot parse; a
/// daemon meant to go through a proxy must not silently go direct.
fn checked_proxy_url(name: &str, value: &str) -> Result<String, Error> {
    let invalid = |why: &str| Error::InvalidArgument(format!("{name} {:?}: {why}", redacted(value)));
    let value = value.trim();
    let url = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    let uri: Uri = url.parse().map_err(|err| invalid(&format!("not a proxy URL ({err})")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(invalid("TLS to the proxy (https://) is not supported; use an http:// proxy")),
        _ => return Err(invalid("only http:// proxies are supported")),
    }
    let host = uri.authority().map(|authority| authority.host()).unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("needs a host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn route(proxy: &Proxy, base: &str) -> Option<String> {
        proxy.route(&BaseUrl::parse(base).unwrap()).unwrap().map(|route| route.uri.to_string())
    }

    fn env(vars: &[(&str, &str)]) -> Proxy {
        Proxy::from_env_vars(vars.iter().copied())
    }

    #[test]
    fn the_server_scheme_picks_the_variable() {
        let proxy = env(&[("HTTP_PROXY", "http://plain:1"), ("HTTPS_PROXY", "tls-proxy:2")]);
        assert_eq!(route(&proxy, "http://multica.example").as_deref(), Some("http://plain:1/"));
        assert_eq!(route(&proxy, "https://multica.example").as_deref(), Some("http://tls-proxy:2/"));
        let only_http = env(&[("http_proxy", "http://plain:1")]);
        assert_eq!(route(&only_http, "https://multica.example"), None, "HTTP_PROXY is not for https");
    }

    #[test]
    fn upper_case_wins_and_empty_is_unset() {
        let both = env(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2")]);
        assert_eq!(route(&both, "https://h").as_deref(), Some("http://upper:1/"));
        let empty_upper = env(&[("HTTPS_PROXY", ""), ("https_proxy", "http://lower:2")]);
        assert_eq!(route(&empty_upper, "https://h").as_deref(), Some("http://lower:2/"));
    }

    #[test]
    fn no_proxy_and_loopback_go_direct() {
        let proxy = env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "corp.example, 10.0.0.0/8")]);
        assert_eq!(route(&proxy, "https://corp.example"), None);
        assert_eq!(route(&proxy, "https://multica.corp.example"), None, "subdomains too");
        assert_eq!(route(&proxy, "https://10.1.2.3:8443"), None);
        assert!(route(&proxy, "https://notcorp.example").is_some());
        for loopback in ["https://localhost:8080", "https://127.0.0.1", "https://[::1]:1"] {
            assert_eq!(route(&proxy, loopback), None, "{loopback}");
        }
        let star = env(&[("https_proxy", "http://p:1"), ("no_proxy", "*")]);
        assert_eq!(route(&star, "https://anything.example"), None);
        let extra = env(&[("HTTPS_PROXY", "http://p:1")]).no_proxy("multica.example");
        assert_eq!(route(&extra, "https://multica.example"), None);
    }

    #[test]
    fn cgi_ignores_http_proxy() {
        let proxy = env(&[("REQUEST_METHOD", "GET"), ("HTTP_PROXY", "http://evil:1"), ("HTTPS_PROXY", "http://p:1")]);
        assert_eq!(route(&proxy, "http://h"), None);
        assert!(route(&proxy, "https://h").is_some());
    }

    #[test]
    fn explicit_proxies_take_loopback_too_and_none_takes_nothing() {
        assert_eq!(route(&Proxy::all("127.0.0.1:9"), "http://127.0.0.1:1").as_deref(), Some("http://127.0.0.1:9/"));
        assert_eq!(route(&Proxy::all("http://p:9").no_proxy("127.0.0.1"), "http://127.0.0.1:1"), None);
        assert_eq!(route(&Proxy::none(), "http://h"), None);
    }

    #[test]
    fn credentials_become_basic_auth_and_leave_the_address() {
        let base = BaseUrl::parse("https://h").unwrap();
        let found = Proxy::all("http://us%40er:p%3Ass@p:1").route(&base).unwrap().unwrap();
        assert_eq!(found.uri.to_string(), "http://p:1/");
        // base64("us@er:p:ss")
        assert_eq!(found.authorization.unwrap(), "Basic dXNAZXI6cDpzcw==");
    }

    #[test]
    fn bad_proxy_urls_name_their_variable_and_hide_credentials() {
        let base = BaseUrl::parse("https://h").unwrap();
        for (value, why) in [
            ("socks5://u:pw@p:1080", "only http://"),
            ("https://u:pw@p:443", "not supported"),
            ("http://u:pw@", "proxy"),
            ("http://u:pw@p:1/ a", "proxy"),
        ] {
            let err = env(&[("HTTPS_PROXY", value)]).route(&base).unwrap_err().to_string();
            assert!(err.starts_with("invalid argument: HTTPS_PROXY"), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(!err.contains("pw"), "{err}");
        }
        let err = Proxy::all("ftp://p").route(&base).unwrap_err().to_string();
        assert!(err.contains("proxy URL"), "{err}");
    }

    #[test]
    fn debug_hides_credentials() {
        let shown = format!(
            "{:?} {:?}",
            Proxy::all("http://u:pw@p:1"),
            env(&[("HTTPS_PROXY", "http://u:pw@p:1"), ("NO_PROXY", "x")])
        );
        assert!(!shown.contains("pw") && shown.contains("<redacted>"), "{shown}");
    }
}
