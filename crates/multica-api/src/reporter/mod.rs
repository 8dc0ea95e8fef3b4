//! Live output: forwards an agent's messages to the server as they happen.
//!
//! [`TaskMessageReporter`] works over any [`DaemonApi`], as the Go daemon's
//! message forwarding does (server commit 3c93ebaf1c):
//!
//! - `seq` starts at 1 and rises by one per message, in the agent's order;
//! - text deltas are coalesced and flushed every 500 ms
//!   ([`ReporterConfig::flush_interval`]); a tool use, tool result or error
//!   first closes the pending text into its own message, so text written
//!   before a tool call stays before it, then joins the next batch;
//! - tool output is cut to 8192 bytes on a character boundary
//!   ([`truncate_utf8`]);
//! - each call has a 5 s budget; a failure is logged (with the `tracing`
//!   feature), counted and never fatal.
//!
//! Unlike the Go daemon, which drops a batch it failed to send, the reporter
//! delivers each message **exactly once as the server sees it**:
//!
//! - a batch that never reached the server (connection refused) or that the
//!   server refused for now (401, 408, 429) is sent again as is, first;
//! - a batch whose outcome is unknown (timeout, connection lost after
//!   sending, 5xx: the server may have stored it, since it keeps every batch
//!   it receives) is never sent blindly again: the next flush first lists
//!   what the server holds of the task from the batch's first `seq` on, and
//!   sends only the messages it lacks, in `seq` order
//!   ([`ReporterStats::reconciled`], [`ReporterStats::resent`]). While the
//!   listing fails for a reason that may pass, the batch waits;
//! - a batch the server refuses outright (404 `task not found`, 400) is
//!   dropped and counted, since sending it again cannot succeed; so are
//!   messages of unknown outcome when the server refuses to list them.
//!
//! Memory is bounded in bytes ([`ReporterConfig::max_buffered_bytes`], and in
//! messages by [`ReporterConfig::max_buffered_messages`]): the bound covers
//! every byte of message text held, waiting, in flight, or text not yet
//! closed into a message. Past it the **oldest** messages are dropped first
//! (`seq` order of the rest is kept; a dropped message leaves a gap in
//! `seq`); when nothing older can go (the batch in flight fills the bound),
//! the new text or message is dropped instead. A message or text run is at
//! most [`ReporterConfig::max_batch_bytes`]: longer text becomes several
//! messages, a longer error or output is cut. Cut tool output keeps a copy of
//! its head only, releasing the caller's allocation. Every drop is counted
//! in messages and bytes ([`ReporterStats::dropped`],
//! [`ReporterStats::dropped_bytes`]), so that at every moment the bytes the
//! agent produced are `sent_bytes + buffered_bytes + dropped_bytes`.

mod buffer;
mod config;
mod flusher;
mod utf8;

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{self, Instant};

use self::buffer::Buffer;
pub use self::config::{
    ReporterConfig, DEFAULT_FINISH_TIMEOUT, DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_BUFFERED_MESSAGES, DEFAULT_SEND_TIMEOUT, MAX_TOOL_OUTPUT_BYTES,
};
use self::flusher::{lock, Flusher};
pub use self::utf8::truncate_utf8;
use crate::dto::{MessageKind, TaskMessage};
use crate::error::Error;
use crate::ids::TaskId;
use crate::DaemonApi;

/// Counters of a reporter, readable while it runs and true at every moment.
///
/// Bytes are bytes of message text (content, output, tool name, tool input
/// as JSON), as the memory bound counts them: the agent's bytes so far are
/// always `sent_bytes + buffered_bytes + dropped_bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReporterStats {
    /// Messages the server holds: accepted, or found stored by a
    /// reconciliation.
    pub messages_sent: u64,
    /// Bytes of the messages the server holds.
    pub sent_bytes: u64,
    /// Successful `ReportTaskMessages` calls.
    pub batches_sent: u64,
    /// Failed `ReportTaskMessages` calls (including timeouts).
    pub failed_sends: u64,
    /// Messages whose send had an unknown outcome that a reconciliation
    /// found stored: each would have been stored twice by a blind resend.
    pub reconciled: u64,
    /// Messages whose send had an unknown outcome that a reconciliation
    /// found missing, hence sent again.
    pub resent: u64,
    /// Failed listings of the server's messages for a reconciliation
    /// (including timeouts).
    pub failed_listings: u64,
    /// Messages that will never be sent: beyond the memory bound, larger
    /// than the bound, refused by the server, of unknown outcome that the
    /// server refused to list, unsent when finishing ran out of time, or
    /// pushed after finishing began. Text deltas dropped past the bound
    /// count in `dropped_bytes` only.
    pub dropped: u64,
    /// Bytes that will never be sent: those of `dropped` messages, text
    /// deltas dropped past the bound, and text cut from messages (tool
    /// output past [`ReporterConfig::max_tool_output_bytes`], a message
    /// past [`ReporterConfig::max_batch_bytes`]).
    pub dropped_bytes: u64,
    /// Messages numbered and not yet sent, the batch in flight included
    /// (text not yet closed into a message is not a message yet).
    pub buffered: usize,
    /// Bytes held: the `buffered` messages and the text not yet closed into
    /// a message; never more than [`ReporterConfig::max_buffered_bytes`].
    pub buffered_bytes: usize,
    /// The `seq` of the last message numbered so far (0 before the first).
    pub last_seq: i64,
}

/// What a reporter did, returned by [`TaskMessageReporter::finish`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReportSummary {
    /// The final counters; `buffered` and `buffered_bytes` are 0.
    pub stats: ReporterStats,
    /// The error of the last failed send, if any failed.
    pub last_error: Option<Error>,
}

/// A cheap, cloneable handle that adds messages to a [`TaskMessageReporter`]
/// from anywhere (another task, a synchronous callback). Adding never
/// blocks on the network: it only takes a short lock.
#[derive(Clone, Debug)]
pub struct ReporterSink {
    buffer: Arc<Mutex<Buffer>>,
}

impl ReporterSink {
    /// Adds a message; its `seq` is assigned by the reporter (the given one
    /// is ignored). Text is coalesced with the text around it; a tool
    /// result's output is cut to the configured size.
    pub fn push(&self, message: TaskMessage) {
        lock(&self.buffer).push(message);
    }

    /// Adds a delta of the agent's text; only what the bound keeps of it is
    /// copied.
    pub fn text(&self, delta: &str) {
        lock(&self.buffer).push_text(delta);
    }

    /// Adds one whole text message, never merged with the text before or
    /// after it (one line of a command's output is one message).
    pub fn text_message(&self, content: impl AsRef<str>) {
        lock(&self.buffer).push_whole_text(content.as_ref());
    }

    /// Adds a tool call with its arguments.
    pub fn tool_use(&self, tool: impl Into<String>, input: Map<String, Value>) {
        self.push(TaskMessage { kind: MessageKind::ToolUse, tool: tool.into(), input, ..TaskMessage::default() });
    }

    /// Adds a tool's answer; the output is cut to the configured size.
    pub fn tool_result(&self, tool: impl Into<String>, output: impl Into<String>) {
        let message = TaskMessage {
            kind: MessageKind::ToolResult,
            tool: tool.into(),
            output: output.into(),
            ..TaskMessage::default()
        };
        self.push(message);
    }

    /// Adds an error the agent reported.
    pub fn error(&self, content: impl Into<String>) {
        self.push(TaskMessage { kind: MessageKind::Error, content: content.into(), ..TaskMessage::default() });
    }

    /// The counters so far.
    pub fn stats(&self) -> ReporterStats {
        lock(&self.buffer).stats()
    }
}

/// Forwards one task's live output to the server in batches (see the
/// [module documentation](self) for the rules).
///
/// [`start`](Self::start) spawns a tokio task that flushes every interval;
/// add messages with [`text`](Self::text) and the like (or through a
/// [`ReporterSink`] from elsewhere), then call [`finish`](Self::finish) to
/// send what is left. Dropping the reporter without finishing still sends
/// what is left in the background, within the finish timeout.
///
/// ```no_run
/// # mod multica { pub use multica_api::*; }
/// use std::sync::Arc;
/// use multica::reporter::{ReporterConfig, TaskMessageReporter};
/// use multica::{DaemonApi, TaskId};
///
/// async fn run_agent(api: Arc<dyn DaemonApi>, task_id: TaskId) {
///     let reporter = TaskMessageReporter::start(api, task_id, ReporterConfig::default());
///     reporter.text("Let me look at ");
///     reporter.text("the tests.");
///     let input = serde_json::json!({"command": "cargo test"});
///     reporter.tool_use("bash", input.as_object().cloned().unwrap_or_default());
///     reporter.tool_result("bash", "test result: ok. 12 passed");
///     let summary = reporter.finish().await;
///     assert_eq!(summary.stats.last_seq, 3);
///     if let Some(error) = summary.last_error {
///         eprintln!("{} messages lost; last error: {error}", summary.stats.dropped);
///     }
/// }
/// ```
#[derive(Debug)]
pub struct TaskMessageReporter {
    sink: ReporterSink,
    flusher: Arc<Flusher>,
    stop: Option<oneshot::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl TaskMessageReporter {
    /// Starts reporting for `task_id` through `api` (an `Arc<dyn DaemonApi>`,
    /// an `Arc` of a backend, or any other `DaemonApi`).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, as `tokio::spawn` does.
    pub fn start<A: DaemonApi + 'static>(api: A, task_id: TaskId, config: ReporterConfig) -> Self {
        let buffer = Arc::new(Mutex::new(Buffer::new(&config)));
        let flusher = Arc::new(Flusher { api: Arc::new(api), task_id, buffer: Arc::clone(&buffer), config });
        let (stop, stopped) = oneshot::channel();
        let ticker = tokio::spawn(Arc::clone(&flusher).run_ticker(Instant::now(), stopped));
        Self { sink: ReporterSink { buffer }, flusher, stop: Some(stop), ticker: Some(ticker) }
    }

    /// A handle to add messages from elsewhere.
    pub fn sink(&self) -> ReporterSink {
        self.sink.clone()
    }

    /// Adds a message (see [`ReporterSink::push`]).
    pub fn push(&self, message: TaskMessage) {
        self.sink.push(message);
    }

    /// Adds a delta of the agent's text.
    pub fn text(&self, delta: &str) {
        self.sink.text(delta);
    }

    /// Adds a tool call with its arguments.
    pub fn tool_use(&self, tool: impl Into<String>, input: Map<String, Value>) {
        self.sink.tool_use(tool, input);
    }

    /// Adds a tool's answer; the output is cut to the configured size.
    pub fn tool_result(&self, tool: impl Into<String>, output: impl Into<String>) {
        self.sink.tool_result(tool, output);
    }

    /// Adds an error the agent reported.
    pub fn error(&self, content: impl Into<String>) {
        self.sink.error(content);
    }

    /// The counters so far.
    pub fn stats(&self) -> ReporterStats {
        self.sink.stats()
    }

    /// Stops the ticker and sends everything left, all within
    /// [`ReporterConfig::finish_timeout`]: a send under way is awaited, a
    /// failed send is tried again after a flush interval, and whatever is
    /// unsent at the deadline is counted as dropped. Messages added through
    /// a sink after this is called are dropped too.
    pub async fn finish(mut self) -> ReportSummary {
        let deadline = Instant::now() + self.flusher.config.finish_timeout;
        lock(&self.flusher.buffer).close();
        if let Some(stop) = self.stop.take() {
            // The ticker may have ended already; then there is nothing to stop.
            let _ = stop.send(());
        }
        if let Some(mut ticker) = self.ticker.take() {
            if time::timeout_at(deadline, &mut ticker).await.is_err() {
                ticker.abort();
                // The ticker was cancelled midway through a send: its batch
                // is still in the buffer, waiting like any other.
                let _ = ticker.await;
                lock(&self.flusher.buffer).batch_abandoned();
            }
        }
        self.flusher.drain(deadline).await;
        let summary = lock(&self.flusher.buffer).summary();
        summary
    }
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
