use serde::{Deserialize, Serialize};

/// A credential the server hands to the daemon inside an answer: the task
/// token (`auth_token`, `mat_…`) of a claim at server HEAD 1cc46b2697, or the
/// Remote MCP daemon token (`mdt_…`). Its `Debug` shows `<redacted>`, as the
/// SDK does for its own bearer token, so logging a claimed task does not leak
/// it; serde reads and writes it as a plain JSON string.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::SecretToken;
///
/// let token = SecretToken::new("mat_0123");
/// assert_eq!(format!("{token:?}"), "SecretToken(<redacted>)");
/// assert_eq!(token.expose(), "mat_0123");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the one place that must use it (the agent's
    /// `MULTICA_TOKEN`, an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the token into its string.
    pub fn into_exposed(self) -> String {
        self.0
    }

    /// Whether the token is empty (a server that sent `""`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl From<String> for SecretToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

impl From<&str> for SecretToken {
    fn from(token: &str) -> Self {
        Self(token.to_owned())
    }
}
