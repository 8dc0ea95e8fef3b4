//! Which server the fake emulates: one version at a time, chosen when it is
//! built ([`crate::MockDaemonBuilder::server_version`], the server binary's
//! `--server-version`).

use std::fmt;
use std::str::FromStr;

/// A version of the Multica server whose daemon contract the fake answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerVersion {
    /// Commit 3c93ebaf1c (the default): no auth on daemon routes, pairing,
    /// runtime-level usage and ping results.
    #[default]
    V3c93ebaf1c,
    /// Upstream HEAD, commit 1cc46b2697 (`docs/protocol-head.md`): auth on
    /// every daemon route, task-scoped routes, retries, prepare leases, and
    /// the 3c93ebaf1c-only routes removed.
    Head,
}

impl ServerVersion {
    /// The name `--server-version` takes: `3c93ebaf1c` or `head`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerVersion::V3c93ebaf1c => "3c93ebaf1c",
            ServerVersion::Head => "head",
        }
    }

    /// Whether this is HEAD.
    pub fn is_head(self) -> bool {
        self == ServerVersion::Head
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A version name that is not one the fake emulates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownServerVersion(pub String);

impl fmt::Display for UnknownServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown server version {:?} (expected `head` or `3c93ebaf1c`)", self.0)
    }
}

impl std::error::Error for UnknownServerVersion {}

impl FromStr for ServerVersion {
    type Err = UnknownServerVersion;

    /// `head` (or its commit `1cc46b2697`) and `3c93ebaf1c`, any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "head" | "1cc46b2697" => Ok(ServerVersion::Head),
            "3c93ebaf1c" => Ok(ServerVersion::V3c93ebaf1c),
            _ => Err(UnknownServerVersion(name.to_owned())),
        }
    }
}
