//! Configuration from the environment, the way the Go daemon is configured.

use std::collections::HashMap;
use std::time::Duration;

use multica_api::Error;

use crate::builder::HyperClientBuilder;
use crate::client::{token_header, HyperClient};
use crate::proxy::{process_env, Proxy};
use crate::url::{redacted, BaseUrl};

/// The server's URL, as the Go daemon reads it: `http(s)://` or `ws(s)://`
/// (a `/ws` path is dropped, as the Go daemon's `NormalizeServerBaseURL`).
pub const SERVER_URL_VAR: &str = "MULTICA_SERVER_URL";
/// The bearer token, as the Go CLI reads it (before its config file).
pub const TOKEN_VAR: &str = "MULTICA_TOKEN";
/// The whole-call deadline, as a Go duration (`30s`, `1m30s`); default
/// [`DEFAULT_TIMEOUT`](crate::DEFAULT_TIMEOUT). The Go client's is a fixed 30 s.
pub const TIMEOUT_VAR: &str = "MULTICA_HTTP_TIMEOUT";
/// The connect timeout, as a Go duration; default
/// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
pub const CONNECT_TIMEOUT_VAR: &str = "MULTICA_HTTP_CONNECT_TIMEOUT";
/// The server URL when [`SERVER_URL_VAR`] is unset or empty: the Go
/// daemon's default, `ws://localhost:8080/ws`, which is
/// `http://localhost:8080`.
pub const DEFAULT_SERVER_URL: &str = "ws://localhost:8080/ws";

impl HyperClient {
    /// A client configured from the process environment, as the Go daemon
    /// is: [`HyperClientBuilder::from_env`], built.
    pub fn from_env() -> Result<Self, Error> {
        HyperClientBuilder::from_env()?.build()
    }
}

impl HyperClientBuilder {
    /// A builder configured from the process environment, as the Go daemon
    /// is: [`SERVER_URL_VAR`], [`TOKEN_VAR`], [`TIMEOUT_VAR`],
    /// [`CONNECT_TIMEOUT_VAR`], and the proxy variables of
    /// [`Proxy::from_env`]. Unset or empty variables keep their defaults.
    /// A bad value is an [`Error::InvalidArgument`] naming the variable
    /// (and never showing the token). Anything can still be changed on the
    /// builder before [`build`](Self::build).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(&process_env)
    }

    /// As [`HyperClientBuilder::from_env`], from the variables given
    /// instead of the process environment.
    ///
    /// ```
    /// # mod multica { pub mod hyper { pub use multica_hyper::*; } }
    /// use std::time::Duration;
    /// use multica::hyper::HyperClientBuilder;
    ///
    /// let client = HyperClientBuilder::from_env_vars([
    ///     ("MULTICA_SERVER_URL", "ws://multica.example.com/ws"),
    ///     ("MULTICA_TOKEN", "mdt_secret"),
    ///     ("MULTICA_HTTP_TIMEOUT", "1m30s"),
    /// ])?
    /// .build()?;
    /// assert_eq!(client.timeout(), Duration::from_secs(90));
    /// assert!(client.has_token());
    ///
    /// let err = HyperClientBuilder::from_env_vars([("MULTICA_HTTP_TIMEOUT", "soon")]).unwrap_err();
    /// assert!(err.to_string().contains("MULTICA_HTTP_TIMEOUT"), "{err}");
    /// # Ok::<(), multica_api::Error>(())
    /// ```
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars.into_iter().map(|(name, value)| (name.into(), value.into())).collect();
        Self::from_lookup(&|name| vars.get(name).cloned())
    }

    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let set = |name: &str| lookup(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
        let url = server_url(set(SERVER_URL_VAR).as_deref().unwrap_or(DEFAULT_SERVER_URL))?;
        let mut builder = HyperClientBuilder::new(url).proxy(Proxy::from_lookup(lookup));
        if let Some(token) = set(TOKEN_VAR) {
            token_header(Some(&token)).map_err(|_| invalid(TOKEN_VAR, "the token must be visible ASCII"))?;
            builder = builder.token(token);
        }
        if let Some(value) = set(TIMEOUT_VAR) {
            builder = builder.timeout(duration(TIMEOUT_VAR, &value)?);
        }
        if let Some(value) = set(CONNECT_TIMEOUT_VAR) {
            builder = builder.connect_timeout(Some(duration(CONNECT_TIMEOUT_VAR, &value)?));
        }
        Ok(builder)
    }
}

fn invalid(name: &str, why: &str) -> Error {
    Error::InvalidArgument(format!("{name}: {why}"))
}

/// The base URL in `raw`, as the Go daemon's `NormalizeServerBaseURL`:
/// `ws` becomes `http`, `wss` becomes `https`, a `/ws` path, a query and a
/// fragment are dropped.
fn server_url(raw: &str) -> Result<String, Error> {
    let shown = redacted(raw);
    let bad = |why: &str| invalid(SERVER_URL_VAR, &format!("{shown:?} {why}"));
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| bad("needs a scheme (http, https, ws or wss)"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return Err(bad("must use ws, wss, http or https")),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(bad("needs a host"));
    }
    let path = if path == "/ws" { "" } else { path };
    let url = format!("{scheme}://{authority}{}", path.trim_end_matches('/'));
    // The base URL's own rules (a host, no user info), reported under the
    // variable's name.
    BaseUrl::parse(&url).map_err(|err| match err {
        Error::InvalidArgument(why) => invalid(SERVER_URL_VAR, &why),
        other => other,
    })?;
    Ok(url)
}

/// A Go duration (`time.ParseDuration`): decimal numbers with units `ns`,
/// `us` (or `µs`), `ms`, `s`, `m`, `h`, e.g. `30s`, `1m30s`, `1.5h`; it must
/// be positive.
fn duration(name: &str, value: &str) -> Result<Duration, Error> {
    parse_go_duration(value)
        .filter(|parsed| !parsed.is_zero())
        .ok_or_else(|| invalid(name, &format!("{value:?} is not a positive duration like 30s or 1m30s")))
}

fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        if number.is_empty() || number == "." {
            return None;
        }
        let number: f64 = number.parse().ok()?;
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = after;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn go_durations() {
        let secs = Duration::from_secs;
        assert_eq!(parse_go_duration("30s"), Some(secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Some(secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Some(secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("+2s"), Some(secs(2)));
        for bad in ["", "30", "s", "1x", "-1s", "1s2", ".s", "1 s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
        assert!(duration("X", "0s").is_err());
    }

    #[test]
    fn server_urls_are_normalised_as_the_go_daemon_does() {
        assert_eq!(server_url(DEFAULT_SERVER_URL).unwrap(), "http://localhost:8080");
        assert_eq!(server_url("wss://m.example/ws").unwrap(), "https://m.example");
        assert_eq!(server_url("https://m.example/multica/?x=1#f").unwrap(), "https://m.example/multica");
        assert_eq!(server_url("WS://m.example:81").unwrap(), "http://m.example:81");
        for (bad, why) in [
            ("m.example", "needs a scheme"),
            ("ftp://m.example", "must use ws"),
            ("http://", "needs a host"),
            ("https://u:pw@m.example", "user info"),
        ] {
            let err = server_url(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid argument: MULTICA_SERVER_URL: "), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
