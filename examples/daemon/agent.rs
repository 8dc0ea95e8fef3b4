//! A simulated coding agent: streams text and tool calls like a real one,
//! then finishes or reports that it is blocked.

use std::time::Duration;

use multica::reporter::TaskMessageReporter;
use multica::Task;
use serde_json::json;

/// The marker in an agent's instructions that makes the simulation block
/// (a real agent would decide this from the work itself).
pub const BLOCKED_MARKER: &str = "BLOCKED";

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum AgentOutcome {
    /// Done: the result to complete the task with.
    Completed { output: String, session_id: String, work_dir: String },
    /// The agent could not go on; the task fails with this reason.
    Blocked { reason: String },
}

/// Runs the simulated agent on `task`, streaming through `reporter`, with
/// `step` between actions (the time a real agent would think).
pub async fn run(task: &Task, reporter: &TaskMessageReporter, step: Duration) -> AgentOutcome {
    let issue = short(task.record.issue_id.as_str());
    let instructions = task.agent.as_ref().map(|agent| agent.instructions.as_str()).unwrap_or_default();
    let resumed = if task.prior_session_id.is_empty() { "a fresh session" } else { "the prior session" };

    // Text arrives in small deltas; the reporter coalesces them.
    for delta in ["Reading ", "issue ", issue, &format!(" in {resumed}. ")] {
        reporter.text(delta);
        tokio::time::sleep(step / 4).await;
    }
    reporter.tool_use("Bash", json!({"command": "cargo test"}).as_object().cloned().unwrap_or_default());
    tokio::time::sleep(step).await;

    if let Some((_, why)) = instructions.split_once(BLOCKED_MARKER) {
        let reason = format!("blocked:{}", why.trim_start_matches(':'));
        reporter.tool_result("Bash", "error: deploy credentials not found");
        reporter.error(reason.clone());
        return AgentOutcome::Blocked { reason };
    }

    reporter.tool_result("Bash", "test result: ok. 42 passed; 0 failed");
    tokio::time::sleep(step).await;
    reporter.text("All tests pass. Opening a pull request.");
    AgentOutcome::Completed {
        output: format!("Fixed issue {issue}; tests pass."),
        session_id: format!("session-{issue}"),
        work_dir: format!("/tmp/multica/{issue}"),
    }
}

/// The last 8 characters of an ID (the part that differs between UUIDs
/// generated in sequence), enough to tell them apart in a log.
pub fn short(id: &str) -> &str {
    let count = id.chars().count();
    id.char_indices().nth(count.saturating_sub(8)).map_or(id, |(start, _)| &id[start..])
}
