use crate::wire_enum::wire_enum;

wire_enum! {
    /// Where a task is in its life: `queued → dispatched (claim) → running
    /// (start) → completed | failed`, or `cancelled` when its issue is
    /// reassigned or closed.
    pub enum TaskStatus {
        /// Waiting in its runtime's queue.
        Queued = "queued",
        /// Handed to a daemon by a claim.
        Dispatched = "dispatched",
        /// Started by the daemon.
        Running = "running",
        /// Finished with a result.
        Completed = "completed",
        /// Finished with an error.
        Failed = "failed",
        /// Withdrawn by the server; the daemon must drop its result.
        Cancelled = "cancelled",
    }
}

impl TaskStatus {
    /// Whether the task can no longer change (completed, failed, cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

wire_enum! {
    /// The kind of a live-output message of an agent.
    pub enum MessageKind {
        /// Text the agent wrote.
        Text = "text",
        /// The agent called a tool (`tool`, `input`).
        ToolUse = "tool_use",
        /// A tool answered (`tool`, `output`).
        ToolResult = "tool_result",
        /// The agent reported an error (`content`).
        Error = "error",
    }
}

wire_enum! {
    /// The outcome of a ping test.
    pub enum PingStatus {
        /// The runtime answered.
        Completed = "completed",
        /// The runtime could not answer.
        Failed = "failed",
    }
}

wire_enum! {
    /// Whether a runtime is reachable.
    pub enum RuntimeStatus {
        /// Registered and heartbeating.
        Online = "online",
        /// Deregistered, or declared offline at registration.
        Offline = "offline",
    }
}

wire_enum! {
    /// Where a pairing session is in its life.
    pub enum PairingStatus {
        /// Created, waiting for a user to approve it.
        Pending = "pending",
        /// Approved by a user; the daemon may claim it.
        Approved = "approved",
        /// Claimed by the daemon.
        Claimed = "claimed",
        /// Past its expiry time.
        Expired = "expired",
    }
}
