//! Which server version a backend speaks, told apart by one probe.

use std::fmt;

use crate::dto::{DaemonWorkspace, Workspace};
use crate::error::Result;
use crate::reply::Reply;

/// A version of the Multica server whose daemon contract the SDK speaks.
///
/// Detected with [`DaemonApiExt::server_version`](crate::DaemonApiExt::server_version)
/// and handed to the helpers whose route moved between the versions
/// ([`report_task_usage_on`](crate::DaemonApiExt::report_task_usage_on),
/// [`list_workspaces_on`](crate::DaemonApiExt::list_workspaces_on)). New
/// server versions become new variants, hence `#[non_exhaustive]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ServerVersion {
    /// Server commit 3c93ebaf1c: per-runtime usage, pings, pairing, no
    /// authentication on `/api/daemon/*`.
    V3c93ebaf1c,
    /// Server HEAD 1cc46b2697 (2026-08-22) or a later one with the same
    /// daemon routes: task usage, batch claim, prepare lease, cancel-ack,
    /// `GET /api/daemon/workspaces`, every `/api/daemon/*` route
    /// authenticated.
    Head,
}

impl ServerVersion {
    /// The version's name: `3c93ebaf1c` or `HEAD 1cc46b2697`.
    pub fn name(self) -> &'static str {
        match self {
            Self::V3c93ebaf1c => "3c93ebaf1c",
            Self::Head => "HEAD 1cc46b2697",
        }
    }

    /// Reads the answer to the probe `GET /api/daemon/workspaces`, a route
    /// only HEAD has:
    ///
    /// - success → [`ServerVersion::Head`];
    /// - `404 page not found` ([`Error::is_route_not_found`](crate::Error::is_route_not_found)) →
    ///   [`ServerVersion::V3c93ebaf1c`], which routes before it
    ///   authenticates and never authenticates `/api/daemon/*`;
    /// - 401 or 403 → [`ServerVersion::Head`]: only HEAD authenticates
    ///   `/api/daemon/*` (before routing), so a missing or refused
    ///   credential tells the version too;
    /// - anything else (a transport failure, a 5xx, another 404) tells
    ///   nothing and is returned as it is.
    pub fn from_probe(answer: Result<Reply>) -> Result<ServerVersion> {
        match answer {
            Ok(_) => Ok(Self::Head),
            Err(err) if err.is_route_not_found() => Ok(Self::V3c93ebaf1c),
            Err(err) if matches!(err.status(), Some(401 | 403)) => Ok(Self::Head),
            Err(err) => Err(err),
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A workspace of `GET /api/workspaces` as `GET /api/daemon/workspaces`
/// lists it.
impl From<Workspace> for DaemonWorkspace {
    fn from(workspace: Workspace) -> Self {
        Self { id: workspace.id, name: workspace.name }
    }
}
