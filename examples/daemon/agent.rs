//! A simulated coding agent: streams text and tool calls like a real one,
//! stops when told to, then finishes or reports that it is blocked.

use std::time::Duration;

use multica::worker::{short_id, Agent, AgentOutcome, ModelCatalog, RuntimeAnswer, TaskContext};
use multica::{Runtime, RuntimeModel, TaskCompletion, TaskUsage};
use serde_json::json;

/// The marker in an agent's instructions that makes the simulation block
/// (a real agent would decide this from the work itself).
pub const BLOCKED_MARKER: &str = "BLOCKED";

/// The simulated agent; `step` is the time a real agent would think
/// between actions.
pub struct SimulatedAgent {
    pub step: Duration,
}

#[multica::async_trait]
impl Agent for SimulatedAgent {
    /// Answers the model picker (a real agent would ask its CLI).
    async fn list_models(&self, runtime: &Runtime) -> RuntimeAnswer<ModelCatalog> {
        let model = |id: &str, label: &str, default| RuntimeModel {
            id: id.into(),
            label: label.into(),
            provider: runtime.provider.clone(),
            default,
            ..RuntimeModel::default()
        };
        RuntimeAnswer::Answered(ModelCatalog::new(vec![
            model("demo-1", "Demo 1", true),
            model("demo-2", "Demo 2", false),
        ]))
    }

    async fn run(&self, context: TaskContext) -> AgentOutcome {
        let task = context.task();
        let issue = short_id(task.record.issue_id.as_str());
        let instructions = task.agent.as_ref().map(|agent| agent.instructions.clone()).unwrap_or_default();
        let resumed = if context.prior_session_id().is_none() { "a fresh session" } else { "the prior session" };
        let skills = context.skills().len();
        // A real agent would call the server's API with the token (never print it).
        let acting = if context.auth_token().is_some() { ", acting with the task's token" } else { "" };
        let out = context.messages();
        // Thinks for `$time`, or gives up when the task is cancelled.
        macro_rules! think {
            ($time:expr) => {
                tokio::select! {
                    () = tokio::time::sleep($time) => {}
                    reason = context.cancelled() => return AgentOutcome::failed(format!("stopped: {reason}")),
                }
            };
        }

        context.progress("Running agent", 1, 2).await;
        // Text arrives in small deltas; the reporter coalesces them.
        for delta in ["Reading ", "issue ", &issue, &format!(" in {resumed} with {skills} skills{acting}. ")] {
            out.text(delta);
            think!(self.step / 4);
        }
        out.tool_use("Bash", json!({"command": "cargo test"}).as_object().cloned().unwrap_or_default());
        think!(self.step);

        if let Some((_, why)) = instructions.split_once(BLOCKED_MARKER) {
            let reason = format!("blocked:{}", why.trim_start_matches(':'));
            out.tool_result("Bash", "error: deploy credentials not found");
            out.error(reason.clone());
            return AgentOutcome::failed(reason);
        }

        out.tool_result("Bash", "test result: ok. 42 passed; 0 failed");
        think!(self.step);
        out.text("All tests pass. Opening a pull request.");
        context.progress("Reporting results", 2, 2).await;
        // The worker sends it per task where the server takes that, else per runtime.
        let usage = TaskUsage {
            provider: "simulated".into(),
            model: "demo-1".into(),
            input_tokens: 1200,
            output_tokens: 300,
            ..TaskUsage::default()
        };
        // A failed report is an event the daemon prints; the task goes on.
        let _ = context.report_usage(&[usage]).await;
        AgentOutcome::Completed(TaskCompletion {
            output: format!("Fixed issue {issue}; tests pass."),
            session_id: format!("session-{issue}"),
            work_dir: format!("/tmp/multica/{issue}"),
            ..TaskCompletion::default()
        })
    }
}
