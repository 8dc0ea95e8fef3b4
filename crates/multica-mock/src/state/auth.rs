//! Credentials and who may touch what. At 3c93ebaf1c only the user routes
//! check a token (the one configured); at HEAD every `/api/daemon/*` route
//! authenticates with the HEAD middleware's rules (contract §2) and each
//! handler checks workspace access.

use super::*;
use crate::tokens::MockToken;

/// A stored credential.
#[derive(Clone, Debug)]
pub(super) enum Credential {
    /// `mul_…`: a user, member of these workspaces (`None`: every one).
    Personal { member_of: Option<HashSet<WorkspaceId>> },
    /// `mdt_…`: one workspace and daemon, until `expires`.
    Daemon { workspace_id: WorkspaceId, daemon_id: DaemonId, expires: Option<Millis> },
}

/// Who a request acts as, once authenticated.
#[derive(Clone, Debug)]
pub(crate) enum Identity {
    /// 3c93ebaf1c's daemon routes: no credential, every workspace.
    Anyone,
    /// A personal token's user.
    User { member_of: Option<HashSet<WorkspaceId>> },
    /// A daemon token (its daemon ID binds batch claims).
    #[allow(dead_code)]
    Daemon { workspace_id: WorkspaceId, daemon_id: DaemonId },
}

impl Identity {
    /// Whether the caller may act on `workspace` (canonical ID).
    pub(crate) fn may_access(&self, workspace: &WorkspaceId) -> bool {
        match self {
            Identity::Anyone | Identity::User { member_of: None } => true,
            Identity::User { member_of: Some(member_of) } => member_of.contains(workspace),
            Identity::Daemon { workspace_id, .. } => workspace_id == workspace,
        }
    }
}

fn auth_error(writer: Writer, message: &'static str) -> Rejection {
    Rejection { writer, ..reject(401, message) }
}

impl State {
    /// Stores a token the fake accepts from now on (replacing one with the
    /// same text).
    pub(crate) fn add_token(&mut self, token: &MockToken) -> Result<(), Error> {
        let (text, credential) = match token {
            MockToken::Personal { token, member_of } => {
                if !token.starts_with("mul_") {
                    return Err(control_error(format!("a personal token starts with mul_: {token:?}")));
                }
                let member_of = member_of.as_ref().map(|ids| ids.iter().map(canonical).collect());
                (token, Credential::Personal { member_of })
            }
            MockToken::Daemon { token, workspace_id, daemon_id, expires_at } => {
                if !token.starts_with("mdt_") {
                    return Err(control_error(format!("a daemon token starts with mdt_: {token:?}")));
                }
                let expires = match expires_at {
                    None => None,
                    Some(text) => Some(
                        Millis::parse_rfc3339(text)
                            .ok_or_else(|| control_error(format!("expires_at is not RFC 3339: {text:?}")))?,
                    ),
                };
                let credential =
                    Credential::Daemon { workspace_id: canonical(workspace_id), daemon_id: daemon_id.clone(), expires };
                (token, credential)
            }
        };
        if text.len() <= 4 {
            return Err(control_error("a token needs characters after its prefix".to_owned()));
        }
        self.tokens.insert(text.clone(), credential);
        Ok(())
    }

    /// `Bearer <token>` out of an `Authorization` value, with the messages
    /// of the server's middlewares. Go's HTTP server trims header values.
    fn bearer(authorization: Option<&str>, writer: Writer) -> Result<&str, Rejection> {
        let given = authorization.map(str::trim).unwrap_or_default();
        if given.is_empty() {
            return Err(auth_error(writer, "missing authorization header"));
        }
        match given.strip_prefix("Bearer ") {
            Some(token) if !token.is_empty() => Ok(token),
            _ => Err(auth_error(writer, "invalid authorization format")),
        }
    }

    /// The HEAD daemon middleware (every `/api/daemon/*` request, known
    /// route or not); at 3c93ebaf1c the daemon routes are open.
    pub(crate) fn authenticate_daemon(&self, authorization: Option<&str>) -> Result<Identity, Rejection> {
        if !self.version.is_head() {
            return Ok(Identity::Anyone);
        }
        let writer = Writer::DaemonAuth;
        let token = Self::bearer(authorization, writer)?;
        if token.starts_with("mdt_") {
            return match self.tokens.get(token) {
                Some(Credential::Daemon { workspace_id, daemon_id, expires })
                    if expires.is_none_or(|at| self.now < at) =>
                {
                    Ok(Identity::Daemon { workspace_id: workspace_id.clone(), daemon_id: daemon_id.clone() })
                }
                _ => Err(auth_error(writer, "invalid daemon token")),
            };
        }
        // `mul_` is looked up; `mcn_` (no cloud fleet), `mat_` task tokens
        // and anything else fall through to the JWT check, which fails.
        match self.tokens.get(token) {
            Some(Credential::Personal { member_of }) if token.starts_with("mul_") => {
                Ok(Identity::User { member_of: member_of.clone() })
            }
            _ => Err(auth_error(writer, "invalid token")),
        }
    }

    /// The user auth middleware (`/api/workspaces`, approving a pairing):
    /// no header → `missing authorization header`; not `Bearer <something>`
    /// → `invalid authorization format`; another token → `invalid token`.
    /// At 3c93ebaf1c only the configured token passes (and nothing is
    /// checked without one); at HEAD any personal token does, never a
    /// daemon token.
    pub(crate) fn authorize(&self, authorization: Option<&str>) -> Result<(), Rejection> {
        let writer = Writer::UserAuth;
        if self.version.is_head() {
            let token = Self::bearer(authorization, writer)?;
            return match self.tokens.get(token) {
                Some(Credential::Personal { .. }) => Ok(()),
                _ => Err(auth_error(writer, "invalid token")),
            };
        }
        let Some(expected) = &self.expected_authorization else { return Ok(()) };
        Self::bearer(authorization, writer)?;
        if authorization.map(str::trim) != Some(expected.as_str()) {
            return Err(auth_error(writer, "invalid token"));
        }
        Ok(())
    }
}
