//! Credentials and who may touch what. At 3c93ebaf1c only the user routes
//! check a token (the one configured); at HEAD every `/api/daemon/*` route
//! authenticates with the HEAD middleware's rules (contract §2) and each
//! handler checks workspace access.

use super::jwt;
use super::*;
use crate::tokens::MockToken;

/// A stored credential.
#[derive(Clone, Debug)]
pub(super) enum Credential {
    /// `mul_…`: a user (`None`: the seed's user), member of these
    /// workspaces (`None`: every one).
    Personal { user: Option<String>, member_of: Option<HashSet<WorkspaceId>> },
    /// `mdt_…`: one workspace and daemon, until `expires`.
    Daemon { workspace_id: WorkspaceId, daemon_id: DaemonId, expires: Option<Millis> },
}

/// Who a request acts as, once authenticated.
#[derive(Clone, Debug)]
pub(crate) enum Identity {
    /// 3c93ebaf1c's daemon routes: no credential, every workspace.
    Anyone,
    /// A user (personal token or login JWT).
    User { id: String, member_of: Option<HashSet<WorkspaceId>> },
    /// A daemon token (its daemon ID binds batch claims).
    #[allow(dead_code)]
    Daemon { workspace_id: WorkspaceId, daemon_id: DaemonId },
}

impl Identity {
    /// Whether the caller may act on `workspace` (canonical ID).
    pub(crate) fn may_access(&self, workspace: &WorkspaceId) -> bool {
        match self {
            Identity::Anyone | Identity::User { member_of: None, .. } => true,
            Identity::User { member_of: Some(member_of), .. } => member_of.contains(workspace),
            Identity::Daemon { workspace_id, .. } => workspace_id == workspace,
        }
    }
}

/// User IDs the server refuses (`temporarilyDisabledUserIDs`).
const DISABLED_USER_IDS: &[&str] = &["514492f7-b30f-4147-bd33-c0e8ce5d6d4f", "1d542296-17c6-484a-9914-dcee589be116"];
/// E-mails the server refuses (`temporarilyDisabledUserEmails`).
const DISABLED_USER_EMAILS: &[&str] = &["pdzzer68@embassybase.com", "gtwtrox@mowan666.com"];

fn auth_error(writer: Writer, message: &'static str) -> Rejection {
    Rejection { writer, ..reject(401, message) }
}

impl State {
    /// Stores a token the fake accepts from now on (replacing one with the
    /// same text).
    pub(crate) fn add_token(&mut self, token: &MockToken) -> Result<(), Error> {
        let (text, credential) = match token {
            MockToken::Personal { token, member_of, user_id } => {
                if !token.starts_with("mul_") {
                    return Err(control_error(format!("a personal token starts with mul_: {token:?}")));
                }
                let member_of = member_of.as_ref().map(|ids| ids.iter().map(canonical).collect());
                (token, Credential::Personal { user: user_id.clone(), member_of })
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
        if let Some(identity) = self.personal_identity(token, writer) {
            return identity;
        }
        // Anything else is read as a login JWT (`mat_` task tokens fail here).
        self.jwt_identity(token, writer)
    }

    /// The identity of a cloud node (`mcn_`) or personal (`mul_`) token,
    /// read alike by both middlewares; `None` for any other kind of token.
    fn personal_identity(&self, token: &str, writer: Writer) -> Option<Result<Identity, Rejection>> {
        // No cloud fleet is configured: a cloud node PAT is refused.
        if token.starts_with("mcn_") {
            return Some(Err(auth_error(writer, "invalid token")));
        }
        if !token.starts_with("mul_") {
            return None;
        }
        Some(match self.tokens.get(token) {
            Some(Credential::Personal { user, member_of }) => {
                let id = user.clone().unwrap_or_else(|| self.user.0.clone());
                self.refuse_disabled(&id, "").map(|()| Identity::User { id, member_of: member_of.clone() })
            }
            _ => Err(auth_error(writer, "invalid token")),
        })
    }

    /// A login JWT's user: `invalid token`, `invalid claims` (no `sub`),
    /// 403 `account disabled`; the seed's user is a member of every
    /// workspace, another user of the workspaces of its personal tokens.
    fn jwt_identity(&self, token: &str, writer: Writer) -> Result<Identity, Rejection> {
        let user = match jwt::verify(token, &self.jwt_secret, self.now) {
            Ok(user) => user,
            Err(jwt::JwtRefusal::InvalidToken) => return Err(auth_error(writer, "invalid token")),
            Err(jwt::JwtRefusal::InvalidClaims) => return Err(auth_error(writer, "invalid claims")),
        };
        self.refuse_disabled(&user.sub, &user.email)?;
        let sub = canonical(&user.sub);
        let member_of = if sub == self.user.0 {
            None
        } else {
            let tokens = self.tokens.values().filter_map(|credential| match credential {
                Credential::Personal { user: Some(user), member_of } if canonical(user) == sub => Some(member_of),
                _ => None,
            });
            let mut workspaces = Some(HashSet::new());
            for member_of in tokens {
                match (member_of, workspaces.as_mut()) {
                    (None, _) => workspaces = None,
                    (Some(ids), Some(all)) => all.extend(ids.iter().cloned()),
                    (Some(_), None) => {}
                }
            }
            workspaces
        };
        Ok(Identity::User { id: sub, member_of })
    }

    /// A login JWT of `user_id` signed with the configured secret.
    pub(crate) fn issue_login_jwt(&self, user_id: &str) -> String {
        let name = if canonical(&user_id.to_owned()) == self.user.0 { self.user.1.as_str() } else { "" };
        jwt::issue(user_id, name, &self.jwt_secret, self.now)
    }

    /// The server's temporarily disabled accounts (a fixed list of user IDs
    /// and e-mails in its source): 403 `account disabled` from either auth
    /// middleware, whatever the credential.
    fn refuse_disabled(&self, user_id: &str, email: &str) -> Result<(), Rejection> {
        let id = user_id.trim().to_lowercase();
        let email = email.trim().to_lowercase();
        if DISABLED_USER_IDS.contains(&id.as_str())
            || (!email.is_empty() && DISABLED_USER_EMAILS.contains(&email.as_str()))
        {
            return Err(Rejection { writer: Writer::DaemonAuth, ..reject(403, "account disabled") });
        }
        Ok(())
    }

    /// The user auth middleware (`/api/workspaces`, approving a pairing).
    /// At 3c93ebaf1c: no header → `missing authorization header`; not
    /// `Bearer <something>` → `invalid authorization format`; another token
    /// → `invalid token`. At HEAD no `Bearer <token>` at all is `missing
    /// authorization`.
    /// At 3c93ebaf1c only the configured token passes (and nothing is
    /// checked without one); at HEAD any personal token does, and the
    /// `mat_` token of a claimed task until the task ends (acting as the
    /// runtime's owner, the fake's user: every workspace), never a daemon
    /// token.
    pub(crate) fn authorize(&self, authorization: Option<&str>) -> Result<Identity, Rejection> {
        let writer = Writer::UserAuth;
        if self.version.is_head() {
            // HEAD's user middleware takes `Bearer <token>` (or a session
            // cookie, not modelled); anything else is no token at all.
            let token = authorization.map(str::trim).and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default();
            if token.is_empty() {
                return Err(auth_error(writer, "missing authorization"));
            }
            if token.starts_with("mat_") {
                return match self.tasks.values().find(|t| t.head.auth_token.as_deref() == Some(token)) {
                    Some(_) => {
                        self.refuse_disabled(&self.user.0, "")?;
                        Ok(Identity::User { id: self.user.0.clone(), member_of: None })
                    }
                    None => Err(auth_error(writer, "invalid token")),
                };
            }
            if let Some(identity) = self.personal_identity(token, writer) {
                return identity;
            }
            return self.jwt_identity(token, writer);
        }
        let Some(expected) = &self.expected_authorization else { return Ok(Identity::Anyone) };
        let token = Self::bearer(authorization, writer)?;
        if authorization.map(str::trim) == Some(expected.as_str()) {
            return Ok(Identity::Anyone);
        }
        // A login JWT of a user passes too (the 3c93ebaf1c middleware has no
        // disabled accounts).
        match jwt::verify(token, &self.jwt_secret, self.now) {
            Ok(_) => Ok(Identity::Anyone),
            Err(jwt::JwtRefusal::InvalidClaims) => Err(auth_error(writer, "invalid claims")),
            Err(jwt::JwtRefusal::InvalidToken) => Err(auth_error(writer, "invalid token")),
        }
    }
}
