use serde::{Deserialize, Serialize};

use crate::serde_util::null_as_default as nd;

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
