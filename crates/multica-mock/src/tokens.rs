//! Credentials the HEAD fake accepts on its daemon routes: personal access
//! tokens (`mul_…`) of a user who is a member of some workspaces, and daemon
//! tokens (`mdt_…`) bound to one workspace and daemon ID. Added with
//! [`crate::MockDaemon::add_token`] or `POST /_mock/tokens`.

use serde::{Deserialize, Serialize};

use multica_api::{DaemonId, WorkspaceId};

/// A token the fake accepts, as `POST /_mock/tokens` takes it:
/// `{"token": "mul_…", "kind": "personal", "member_of": [...]}` or
/// `{"token": "mdt_…", "kind": "daemon", "workspace_id": …, "daemon_id": …, "expires_at": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum MockToken {
    /// A personal access token (`mul_` + anything): the identity of a user.
    Personal {
        /// The token, `mul_…`.
        token: String,
        /// The workspaces the user is a member of: `None` (`member_of`
        /// omitted) for every workspace, `Some(vec![])` for none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_of: Option<Vec<WorkspaceId>>,
        /// The user's ID: `None` (omitted) for the seed's user. Login JWTs
        /// of this user act on the same workspaces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// A daemon token (`mdt_` + anything): acts only on its workspace, and
    /// a batch claim must name its daemon ID.
    Daemon {
        /// The token, `mdt_…`.
        token: String,
        /// The one workspace it may act on.
        workspace_id: WorkspaceId,
        /// The daemon it was issued to.
        daemon_id: DaemonId,
        /// RFC 3339; from then on (fake clock) it is `invalid daemon token`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<String>,
    },
}

impl MockToken {
    /// A personal token of a member of every workspace (what
    /// [`crate::MockDaemonBuilder::token`] configures).
    pub fn personal(token: impl Into<String>) -> MockToken {
        MockToken::Personal { token: token.into(), member_of: None, user_id: None }
    }

    /// A personal token of a member of exactly `workspaces`.
    pub fn member_of(token: impl Into<String>, workspaces: impl IntoIterator<Item = WorkspaceId>) -> MockToken {
        MockToken::Personal { token: token.into(), member_of: Some(workspaces.into_iter().collect()), user_id: None }
    }

    /// A daemon token of one workspace and daemon, never expiring.
    pub fn daemon(token: impl Into<String>, workspace_id: WorkspaceId, daemon_id: DaemonId) -> MockToken {
        MockToken::Daemon { token: token.into(), workspace_id, daemon_id, expires_at: None }
    }

    /// The same personal token, of the user with this ID (a daemon token is
    /// returned unchanged).
    pub fn of_user(mut self, id: impl Into<String>) -> MockToken {
        if let MockToken::Personal { user_id, .. } = &mut self {
            *user_id = Some(id.into());
        }
        self
    }

    /// The token's text.
    pub fn token(&self) -> &str {
        match self {
            MockToken::Personal { token, .. } | MockToken::Daemon { token, .. } => token,
        }
    }
}
