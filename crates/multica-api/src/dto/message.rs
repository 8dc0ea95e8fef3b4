use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::MessageKind;
use crate::ids::{IssueId, TaskId};
use crate::serde_util::{is_empty_str, null_as_default as nd};

/// One live-output message of an agent, as reported in batches. Empty
/// optional fields are omitted, as Go's `omitempty` does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskMessage {
    /// Sequence number within the task, from 1.
    #[serde(deserialize_with = "nd")]
    pub seq: i64,
    /// What the message is.
    #[serde(rename = "type", deserialize_with = "nd")]
    pub kind: MessageKind,
    /// Tool name (tool_use, tool_result).
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub tool: String,
    /// Text (text, error).
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub content: String,
    /// Tool arguments (tool_use).
    #[serde(deserialize_with = "nd", skip_serializing_if = "Map::is_empty")]
    pub input: Map<String, Value>,
    /// Tool output (tool_result).
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_empty_str")]
    pub output: String,
}

impl TaskMessage {
    /// A text message.
    pub fn text(seq: i64, content: impl Into<String>) -> Self {
        Self { seq, kind: MessageKind::Text, content: content.into(), ..Self::default() }
    }

    /// A tool call with its arguments.
    pub fn tool_use(seq: i64, tool: impl Into<String>, input: Map<String, Value>) -> Self {
        Self { seq, kind: MessageKind::ToolUse, tool: tool.into(), input, ..Self::default() }
    }

    /// A tool's answer.
    pub fn tool_result(seq: i64, tool: impl Into<String>, output: impl Into<String>) -> Self {
        Self { seq, kind: MessageKind::ToolResult, tool: tool.into(), output: output.into(), ..Self::default() }
    }

    /// An error the agent reported.
    pub fn error(seq: i64, content: impl Into<String>) -> Self {
        Self { seq, kind: MessageKind::Error, content: content.into(), ..Self::default() }
    }
}

/// A message as the server stores it (`GET /api/daemon/tasks/{taskId}/messages`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StoredTaskMessage {
    /// The task it belongs to.
    #[serde(deserialize_with = "nd")]
    pub task_id: TaskId,
    /// HEAD 1cc46b2697: the task's issue (`""` for a task without one).
    /// `None` from 3c93ebaf1c, which does not send it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_id: Option<IssueId>,
    /// The message; its fields sit at the top level of the JSON object.
    #[serde(flatten)]
    pub message: TaskMessage,
    /// HEAD 1cc46b2697: when the server stored it (RFC 3339 with fractional
    /// seconds). `None` from 3c93ebaf1c.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl StoredTaskMessage {
    /// The message as stored for this task, without the HEAD 1cc46b2697
    /// fields.
    pub fn new(task_id: TaskId, message: TaskMessage) -> Self {
        Self { task_id, message, ..Default::default() }
    }
}
