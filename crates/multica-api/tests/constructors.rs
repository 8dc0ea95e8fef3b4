//! The small constructors a daemon needs: each builds the body the Go
//! client would send.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use multica_api::{MessageKind, PingResult, PingStatus, RegisterResponse, Runtime, TaskMessage, TaskProgress};
use serde_json::json;

#[test]
fn ping_results_carry_the_status_the_text_and_whole_milliseconds() {
    let ok = PingResult::completed("pong", Duration::from_micros(12_900));
    assert_eq!(serde_json::to_value(&ok).unwrap(), json!({"status": "completed", "output": "pong", "duration_ms": 12}));
    let failed = PingResult::failed("claude: not found", Duration::from_secs(2));
    assert_eq!(
        (failed.status, failed.error.as_str(), failed.duration_ms),
        (PingStatus::Failed, "claude: not found", 2000)
    );
    assert_eq!(PingResult::completed("", Duration::MAX).duration_ms, i64::MAX);
}

#[test]
fn progress_and_each_message_kind() {
    let progress = TaskProgress::new("Running tests", 2, 3);
    assert_eq!(serde_json::to_value(&progress).unwrap(), json!({"summary": "Running tests", "step": 2, "total": 3}));

    let input = json!({"command": "ls"}).as_object().cloned().unwrap();
    let tool_use = TaskMessage::tool_use(2, "Bash", input);
    assert_eq!(
        serde_json::to_value(&tool_use).unwrap(),
        json!({"seq": 2, "type": "tool_use", "tool": "Bash", "input": {"command": "ls"}})
    );
    let result = TaskMessage::tool_result(3, "Bash", "a.txt");
    assert_eq!(
        serde_json::to_value(&result).unwrap(),
        json!({"seq": 3, "type": "tool_result", "tool": "Bash", "output": "a.txt"})
    );
    let error = TaskMessage::error(4, "boom");
    assert_eq!((error.kind, error.content.as_str()), (MessageKind::Error, "boom"));
}

#[test]
fn the_registered_runtime_of_a_provider() {
    let runtime = |id: &str, provider: &str| {
        let mut built = Runtime::default();
        built.id = id.into();
        built.provider = provider.into();
        built
    };
    let registered = {
        let mut built = RegisterResponse::default();
        built.runtimes = vec![runtime("r1", "claude"), runtime("r2", "codex")];
        built.repos = vec![];
        built
    };
    assert_eq!(registered.runtime_of("codex").unwrap().id.as_str(), "r2");
    assert!(registered.runtime_of("gemini").is_none());
}
