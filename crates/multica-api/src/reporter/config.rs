//! How the reporter batches, bounds and times its sends.

use std::time::Duration;

/// How often pending text is closed and everything waiting is sent, as the
/// Go daemon's ticker: frequent enough to look live, rare enough that a
/// token-by-token stream becomes a few messages per second.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// The budget of one `ReportTaskMessages` call, as the Go daemon's: a slow
/// server delays live output but never stalls the reporter for long.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bytes of a tool result's output sent, as the Go daemon's cut: tool
/// output (a file, a build log) can be huge, and the live view needs its head.
pub const MAX_TOOL_OUTPUT_BYTES: usize = 8192;

/// Most messages kept waiting while the server does not accept them: at the
/// default interval, minutes of a busy agent's output.
pub const DEFAULT_MAX_BUFFERED_MESSAGES: usize = 10_000;

/// Most bytes of message text held at any moment (content, output, tool
/// names and tool input as JSON; waiting, in flight, or text not yet closed
/// into a message): bounds memory whatever the agent writes.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes of message text in one `ReportTaskMessages` call (a single
/// larger message goes alone); also the largest message kept, longer text
/// runs becoming several messages. Bounds the request body a backend builds
/// from a batch, and what one lost answer puts in doubt.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;

/// How long `finish` may take to send what is left: two send budgets, so one
/// slow or failed attempt still leaves room for another.
pub const DEFAULT_FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest flush interval used; a zero interval would spin.
const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(1);

/// Settings of a [`TaskMessageReporter`](super::TaskMessageReporter); every
/// default is one of this module's `DEFAULT_*` constants.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use std::time::Duration;
/// use multica::reporter::ReporterConfig;
///
/// let config = ReporterConfig::default().with_flush_interval(Duration::from_millis(250));
/// assert_eq!(config.flush_interval, Duration::from_millis(250));
/// assert_eq!(config.max_tool_output_bytes, 8192);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReporterConfig {
    /// How often waiting messages are sent ([`DEFAULT_FLUSH_INTERVAL`]);
    /// at least 1 ms.
    pub flush_interval: Duration,
    /// Budget of one send ([`DEFAULT_SEND_TIMEOUT`]).
    pub send_timeout: Duration,
    /// Most bytes of tool output kept per tool result, cut on a character
    /// boundary ([`MAX_TOOL_OUTPUT_BYTES`]).
    pub max_tool_output_bytes: usize,
    /// Most messages kept waiting ([`DEFAULT_MAX_BUFFERED_MESSAGES`]).
    pub max_buffered_messages: usize,
    /// Most bytes of messages held ([`DEFAULT_MAX_BUFFERED_BYTES`]).
    pub max_buffered_bytes: usize,
    /// Most bytes of messages per call, and the largest message
    /// ([`DEFAULT_MAX_BATCH_BYTES`]); at least 1.
    pub max_batch_bytes: usize,
    /// How long finishing may take ([`DEFAULT_FINISH_TIMEOUT`]).
    pub finish_timeout: Duration,
}

impl Default for ReporterConfig {
    fn default() -> Self {
        Self {
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            max_tool_output_bytes: MAX_TOOL_OUTPUT_BYTES,
            max_buffered_messages: DEFAULT_MAX_BUFFERED_MESSAGES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            finish_timeout: DEFAULT_FINISH_TIMEOUT,
        }
    }
}

/// Chainable setters for the config's fields.
macro_rules! setters {
    ($($(#[$doc:meta])* $setter:ident => $field:ident: $ty:ty;)+) => {
        impl ReporterConfig {
            $(
                $(#[$doc])*
                pub fn $setter(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )+
        }
    };
}

setters! {
    /// Sets how often waiting messages are sent (at least 1 ms).
    with_flush_interval => flush_interval: Duration;
    /// Sets the budget of one send.
    with_send_timeout => send_timeout: Duration;
    /// Sets the most bytes of tool output kept per tool result.
    with_max_tool_output_bytes => max_tool_output_bytes: usize;
    /// Sets the most messages kept waiting.
    with_max_buffered_messages => max_buffered_messages: usize;
    /// Sets the most bytes of messages held.
    with_max_buffered_bytes => max_buffered_bytes: usize;
    /// Sets the most bytes of messages per call (and per message).
    with_max_batch_bytes => max_batch_bytes: usize;
    /// Sets how long finishing may take.
    with_finish_timeout => finish_timeout: Duration;
}

impl ReporterConfig {
    /// The flush interval actually used.
    pub(super) fn effective_flush_interval(&self) -> Duration {
        self.flush_interval.max(MIN_FLUSH_INTERVAL)
    }
}
