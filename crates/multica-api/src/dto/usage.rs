use serde::{Deserialize, Serialize};

use crate::serde_util::{is_zero, null_as_default as nd};

/// Token usage of one model on one day. The server upserts by
/// (runtime, date, provider, model) and skips entries with a bad date.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageEntry {
    /// Day, `YYYY-MM-DD`.
    #[serde(deserialize_with = "nd")]
    pub date: String,
    /// Provider, e.g. `claude`.
    #[serde(deserialize_with = "nd")]
    pub provider: String,
    /// Model name.
    #[serde(deserialize_with = "nd")]
    pub model: String,
    /// Input tokens.
    #[serde(deserialize_with = "nd")]
    pub input_tokens: i64,
    /// Output tokens.
    #[serde(deserialize_with = "nd")]
    pub output_tokens: i64,
    /// Tokens read from the prompt cache.
    #[serde(deserialize_with = "nd")]
    pub cache_read_tokens: i64,
    /// Tokens written to the prompt cache.
    #[serde(deserialize_with = "nd")]
    pub cache_write_tokens: i64,
}

impl UsageEntry {
    /// The per-runtime row of `date` that carries a task's usage of one
    /// model: 3c93ebaf1c stores usage only this way, without cost.
    pub fn of_day(date: impl Into<String>, usage: &TaskUsage) -> Self {
        Self {
            date: date.into(),
            provider: usage.provider.clone(),
            model: usage.model.clone(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
        }
    }
}

/// Token usage of one model within one task, server HEAD 1cc46b2697
/// (`POST /api/daemon/tasks/{taskId}/usage`; 3c93ebaf1c has only the
/// per-runtime, per-day [`UsageEntry`]). The server upserts by (task,
/// provider, model): a later report replaces the counts and the cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskUsage {
    /// Provider, lower-cased by the server; empty takes the runtime's.
    #[serde(deserialize_with = "nd")]
    pub provider: String,
    /// Model name.
    #[serde(deserialize_with = "nd")]
    pub model: String,
    /// Input tokens.
    #[serde(deserialize_with = "nd")]
    pub input_tokens: i64,
    /// Output tokens.
    #[serde(deserialize_with = "nd")]
    pub output_tokens: i64,
    /// Tokens read from the prompt cache.
    #[serde(deserialize_with = "nd")]
    pub cache_read_tokens: i64,
    /// Tokens written to the prompt cache.
    #[serde(deserialize_with = "nd")]
    pub cache_write_tokens: i64,
    /// Cost in ticks of 1e-10 USD; stored only when positive, omitted when 0.
    #[serde(deserialize_with = "nd", skip_serializing_if = "is_zero")]
    pub cost_usd_ticks: i64,
}

/// Body of `POST /api/daemon/tasks/{taskId}/usage` (HEAD 1cc46b2697),
/// accepted in any task status; an empty list is an empty report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskUsageReport {
    /// One entry per (provider, model).
    #[serde(deserialize_with = "nd")]
    pub usage: Vec<TaskUsage>,
}
