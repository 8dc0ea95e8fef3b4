//! Which server the fake emulates: one version at a time, chosen when it is
//! built ([`crate::MockDaemonBuilder::server_version`], the server binary's
//! `--server-version`). The versions are the SDK's [`ServerVersion`].

use std::fmt;

pub use multica_api::ServerVersion;

/// What the fake asks of a version.
pub(crate) trait VersionRules {
    /// Whether the fake follows HEAD 1cc46b2697's rules.
    fn is_head(&self) -> bool;
}

impl VersionRules for ServerVersion {
    fn is_head(&self) -> bool {
        *self == ServerVersion::Head
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

/// Reads a version as `--server-version` takes it: `head` (or its commit
/// `1cc46b2697`) and `3c93ebaf1c`, any case.
///
/// ```
/// # mod multica { pub mod mock { pub use multica_mock::*; } }
/// use multica::mock::{parse_server_version, ServerVersion};
/// assert_eq!(parse_server_version("head"), Ok(ServerVersion::Head));
/// assert_eq!(parse_server_version("3c93ebaf1c"), Ok(ServerVersion::V3c93ebaf1c));
/// assert!(parse_server_version("v2").is_err());
/// ```
pub fn parse_server_version(name: &str) -> Result<ServerVersion, UnknownServerVersion> {
    match name.trim().to_ascii_lowercase().as_str() {
        "head" | "1cc46b2697" => Ok(ServerVersion::Head),
        "3c93ebaf1c" => Ok(ServerVersion::V3c93ebaf1c),
        _ => Err(UnknownServerVersion(name.to_owned())),
    }
}
