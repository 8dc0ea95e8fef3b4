//! Ready [`Interpreter`](crate::Interpreter)s for real coding agents, each
//! with the invocation the Go daemon uses: [`ClaudeCode`] (stream-json),
//! [`Codex`] (`codex exec --json`) and [`Acp`] (the Agent Client Protocol,
//! JSON-RPC over stdio, spoken by Hermes, Kimi, Qoder, Grok and others).

mod acp;
mod claude;
mod codex;

pub use acp::{Acp, AcpParser, AcpResume};
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

    /// An ACP agent: `program` with `args` (e.g. `kiro-cli acp
    /// --trust-all-tools`) and the [`Acp`] interpreter.
    pub fn acp<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString>>(program: &str, args: I) -> Self {
        Self::new(program).args(args).interpreter(Acp::new())
    }

    /// Hermes as the Go daemon runs it: `hermes acp`, sessions continued
    /// with `session/resume`, `HERMES_YOLO_MODE=1` (shell commands run
    /// without asking).
    pub fn hermes() -> Self {
        Self::acp("hermes", ["acp"]).interpreter(Acp::new().resume_with(AcpResume::Resume)).env("HERMES_YOLO_MODE", "1")
    }

    /// Kimi Code as the Go daemon runs it: `kimi acp`, sessions continued
    /// with `session/resume`.
    pub fn kimi() -> Self {
        Self::acp("kimi", ["acp"]).interpreter(Acp::new().resume_with(AcpResume::Resume))
    }
}
