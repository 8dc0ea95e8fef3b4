//! Ready [`Interpreter`](crate::Interpreter)s for real coding agents, each
//! with the invocation the Go daemon uses: [`ClaudeCode`] (stream-json),
//! [`Codex`] (`codex exec --json`) and [`Acp`] (the Agent Client Protocol,
//! JSON-RPC over stdio, spoken by Hermes, Kimi, Qoder, Grok and others).

mod claude;

pub use claude::{ClaudeCode, ClaudeParser};

use crate::CommandAgent;

impl CommandAgent {
    /// Claude Code: `claude` with the [`ClaudeCode`] interpreter.
    pub fn claude_code() -> Self {
        Self::new("claude").interpreter(ClaudeCode)
    }
}
