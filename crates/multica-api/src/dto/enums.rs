use crate::wire_enum::wire_enum;

wire_enum! {
    /// Where a task is in its life: `queued → dispatched (claim) → running
    /// (start) → completed | failed`, or `cancelled` when its issue is
    /// reassigned or closed. Server HEAD 1cc46b2697 adds
    /// `waiting_local_directory` (between dispatched and running) and
    /// `deferred` (a delayed retry); 3c93ebaf1c never sends those two.
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
        /// HEAD only: claimed, but the daemon is waiting for a local
        /// directory another task holds (`POST /tasks/{id}/wait-local-directory`);
        /// `start` moves it on to running, `fail` ends it.
        WaitingLocalDirectory = "waiting_local_directory",
        /// HEAD only: an automatic retry (of a `runtime_offline` failure)
        /// that is not due yet; it becomes `queued` once due, and is not in
        /// the pending list meanwhile.
        Deferred = "deferred",
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

wire_enum! {
    /// What started a task (`kind` of a task row). Server HEAD 1cc46b2697
    /// only; 3c93ebaf1c has no such field.
    pub enum TaskKind {
        /// The agent was assigned an issue.
        Direct = "direct",
        /// A comment mentioned or triggered the agent.
        Comment = "comment",
        /// A chat message to the agent.
        Chat = "chat",
        /// An autopilot run.
        Autopilot = "autopilot",
        /// A quick-create request.
        QuickCreate = "quick_create",
    }
}

wire_enum! {
    /// Why a task failed (`failure_reason`), server HEAD 1cc46b2697 only.
    ///
    /// A daemon sends one with `fail` (and `cancel-ack`); the server stores
    /// any string verbatim, and classifies the error text itself when none is
    /// sent. The reason decides whether the server retries the task
    /// automatically: see [`FailureReason::is_retryable`]. Unknown values are
    /// kept as [`FailureReason::Other`].
    pub enum FailureReason {
        /// The runtime went offline (retried after a 1 s deferral).
        RuntimeOffline = "runtime_offline",
        /// The daemon restarted while the task was in flight
        /// (`recover-orphans`; retried).
        RuntimeRecovery = "runtime_recovery",
        /// The task timed out (retried).
        Timeout = "timeout",
        /// Codex stopped making progress (retried).
        CodexSemanticInactivity = "codex_semantic_inactivity",
        /// The provider's network failed (retried, at least 3 attempts).
        ProviderNetwork = "agent_error.provider_network",
        /// A skill bundle could not be fetched (retried).
        SkillBundleUnavailable = "skill_bundle_unavailable",
        /// The agent's context window is exhausted (never retried).
        ContextOverflow = "agent_error.context_overflow",
        /// The agent failed for an unclassified reason (never retried); what
        /// the server records for an error text it cannot classify.
        AgentErrorUnknown = "agent_error.unknown",
        /// The task waited in the queue for more than 2 h (set by the server).
        QueuedExpired = "queued_expired",
        /// A deferred retry's runtime did not come back in time (set by the
        /// server).
        RuntimeReconnectTimeout = "runtime_reconnect_timeout",
        /// The run was stopped before it finished, not by the agent: what the
        /// Go daemon sends for a run its shutdown ended (never retried).
        Cancelled = "cancelled",
        /// The Go daemon's idle watchdog stopped an agent that went silent
        /// (never retried).
        IdleWatchdog = "idle_watchdog",
        /// The task's local directory could not be used (the Go daemon's
        /// label, also on a cancel-ack; never retried).
        LocalDirectoryError = "local_directory_error",
    }
}

impl FailureReason {
    /// Whether server HEAD 1cc46b2697 creates the next attempt when a task
    /// fails with this reason (and attempts remain): `runtime_offline`,
    /// `runtime_recovery`, `timeout`, `codex_semantic_inactivity`,
    /// `agent_error.provider_network`, `skill_bundle_unavailable`.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RuntimeOffline
                | Self::RuntimeRecovery
                | Self::Timeout
                | Self::CodexSemanticInactivity
                | Self::ProviderNetwork
                | Self::SkillBundleUnavailable
        )
    }
}

wire_enum! {
    /// Where a skill of a claimed agent comes from (`source` of a skill
    /// reference), server HEAD 1cc46b2697 only.
    pub enum SkillSource {
        /// Built into the server (`id` is `builtin:<name>`).
        Builtin = "builtin",
        /// A skill of the workspace (`id` is its UUID).
        Workspace = "workspace",
    }
}
