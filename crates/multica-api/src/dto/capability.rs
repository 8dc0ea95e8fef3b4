//! The request headers server HEAD 1cc46b2697 reads from a daemon besides
//! `Authorization`: its capabilities and its identity. Server 3c93ebaf1c
//! reads none of them, so sending them is harmless there.

use crate::wire_enum::wire_enum;

/// Header naming what the client understands, a comma-separated list of
/// [`ClientCapability`] values (the server trims each). Read at register
/// (stored as each runtime's `metadata.capabilities`, `null` without it), on
/// both claims (the request's own header decides the claim's shape) and on
/// the WebSocket.
pub const CAPABILITIES_HEADER: &str = "X-Client-Capabilities";

/// Header with the client's platform; logged and counted only.
pub const CLIENT_PLATFORM_HEADER: &str = "X-Client-Platform";

/// Header with the client's version; logged and counted, and kept for
/// WebSocket clients.
pub const CLIENT_VERSION_HEADER: &str = "X-Client-Version";

/// Header with the client's operating system; logged and counted only.
pub const CLIENT_OS_HEADER: &str = "X-Client-OS";

wire_enum! {
    /// One value of [`CAPABILITIES_HEADER`].
    pub enum ClientCapability {
        /// Claims answer `agent.skill_refs` (fetched with
        /// `skill-bundles/resolve`) instead of inlining every skill's content
        /// in `agent.skills` (about 200 KB per claim with the built-in ones).
        SkillBundles = "skill-bundles-v1",
        /// Comment-triggered tasks carry `coalesced_comments` objects instead
        /// of a legacy text bundle.
        CoalescedComments = "coalesced-comments-v1",
        /// Not read by the server; sent by the Go daemon.
        ExecutionManifest = "execution-manifest-v1",
        /// Not read by the server; sent by the Go daemon.
        AgentSkill = "agent-skill-v1",
        /// Not read by the server; sent by the Go daemon.
        RemoteMcp = "remote-mcp-v1",
        /// The daemon can run tasks whose project binds a worktree-mode local
        /// directory to it; without it such a task is failed before launch.
        LocalWorktree = "local-worktree-v1",
        /// Matters only on the WebSocket control channel.
        Rpc = "rpc-v1",
    }
}

impl ClientCapability {
    /// What the Go daemon at HEAD 1cc46b2697 sends, in its order.
    pub const GO_DAEMON: [ClientCapability; 7] = [
        Self::SkillBundles,
        Self::CoalescedComments,
        Self::ExecutionManifest,
        Self::AgentSkill,
        Self::RemoteMcp,
        Self::LocalWorktree,
        Self::Rpc,
    ];

    /// The value of [`CAPABILITIES_HEADER`] for these capabilities.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::ClientCapability;
    ///
    /// assert_eq!(
    ///     ClientCapability::header_value(&ClientCapability::GO_DAEMON),
    ///     "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,\
    ///      remote-mcp-v1,local-worktree-v1,rpc-v1"
    /// );
    /// ```
    pub fn header_value(capabilities: &[ClientCapability]) -> String {
        capabilities.iter().map(ClientCapability::as_str).collect::<Vec<_>>().join(",")
    }
}
