//! Ready [`Interpreter`](crate::Interpreter)s for real coding agents, each
//! with the invocation the Go daemon uses: [`ClaudeCode`] (stream-json),
//! [`Codex`] (`codex exec --json`) and [`Acp`] (the Agent Client Protocol,
//! JSON-RPC over stdio, spoken by Hermes, Kimi, Qoder, Grok and others).

mod claude;
mod codex;

pub use claude::{ClaudeCode, ClaudeParser};
pub use codex::{Codex, CodexParser};

use crate::CommandAgent;

impl CommandAgent {
    /// Claude Code: `claude` with the [`ClaudeCode`] interpreter.
    pub fn claude_code() -> Self {
        Self::new("claude").interpreter(ClaudeCode)
    }

    /// Codex: `codex` with the [`Codex`] interpreter (`exec --json`).
    pub fn codex() -> Self {
        Self::new("codex").interpreter(Codex)
    }
}
