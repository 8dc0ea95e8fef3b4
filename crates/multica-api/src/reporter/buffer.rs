//! The reporter's state: messages numbered in the agent's order and kept
//! until the server has them, within a memory bound. Pure and synchronous;
//! the flusher decides when to send.

use std::collections::VecDeque;
use std::mem;

use super::utf8::truncate_string_utf8;
use super::{ReportSummary, ReporterConfig, ReporterStats};
use crate::dto::{MessageKind, TaskMessage};
use crate::error::Error;

/// A numbered message waiting to be sent, with its size for the bound.
#[derive(Debug)]
struct Waiting {
    message: TaskMessage,
    bytes: usize,
}

/// Messages waiting to be sent.
///
/// Ordering rule: text deltas accumulate in `pending_text`; the run is
/// *closed* into one `text` message at a flush, or when any other message
/// arrives, so text written before a tool call is numbered before it. A
/// message gets its `seq` when it is closed, hence `seq` order is the
/// agent's order. The queue holds closed messages by `seq`; its first
/// `in_flight` entries are the batch being sent.
#[derive(Debug)]
pub(super) struct Buffer {
    max_tool_output_bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    next_seq: i64,
    pending_text: String,
    queue: VecDeque<Waiting>,
    queued_bytes: usize,
    in_flight: usize,
    in_flight_bytes: usize,
    closed: bool,
    stats: ReporterStats,
    last_error: Option<Error>,
}

impl Buffer {
    pub(super) fn new(config: &ReporterConfig) -> Self {
        Self {
            max_tool_output_bytes: config.max_tool_output_bytes,
            max_messages: config.max_buffered_messages,
            max_bytes: config.max_buffered_bytes,
            next_seq: 1,
            pending_text: String::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            closed: false,
            stats: ReporterStats::default(),
            last_error: None,
        }
    }

    /// Adds a message from the agent; its `seq` is replaced. After
    /// [`Buffer::close`], messages are counted as dropped instead.
    pub(super) fn push(&mut self, mut message: TaskMessage) {
        if self.closed {
            self.stats.dropped += 1;
            return;
        }
        if message.kind == MessageKind::Text {
            self.pending_text.push_str(&message.content);
            return;
        }
        if message.kind == MessageKind::ToolResult {
            truncate_string_utf8(&mut message.output, self.max_tool_output_bytes);
        }
        self.close_text();
        self.enqueue(message);
    }

    /// Adds a whole text message that is not merged with the text around
    /// it (a line of a command's output); its `seq` is replaced.
    pub(super) fn push_whole_text(&mut self, content: String) {
        if self.closed {
            self.stats.dropped += 1;
            return;
        }
        self.close_text();
        self.enqueue(TaskMessage::text(0, content));
    }

    /// Closes the pending text run and returns a copy of everything waiting,
    /// marking it in flight; `None` when nothing waits.
    pub(super) fn start_batch(&mut self) -> Option<Vec<TaskMessage>> {
        self.close_text();
        if self.queue.is_empty() {
            return None;
        }
        self.in_flight = self.queue.len();
        self.in_flight_bytes = self.queued_bytes;
        Some(self.queue.iter().map(|waiting| waiting.message.clone()).collect())
    }

    /// The batch in flight reached the server.
    pub(super) fn batch_sent(&mut self) {
        let sent = self.take_in_flight();
        self.stats.messages_sent += sent;
        self.stats.batches_sent += 1;
    }

    /// The batch in flight failed. Kept (`keep`), it is sent again first, with
    /// the same numbers; otherwise its messages are counted as dropped.
    pub(super) fn batch_failed(&mut self, error: Error, keep: bool) {
        self.stats.failed_sends += 1;
        self.last_error = Some(error);
        if keep {
            self.end_flight();
        } else {
            self.stats.dropped += self.take_in_flight();
        }
        self.enforce_bound();
    }

    /// The send was cancelled midway: its batch is simply waiting again.
    pub(super) fn batch_abandoned(&mut self) {
        self.end_flight();
        self.enforce_bound();
    }

    /// Refuses further messages (they are counted as dropped).
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// Closes the buffer and counts whatever still waits as dropped.
    pub(super) fn abandon_rest(&mut self) {
        self.close_text();
        self.close();
        self.end_flight();
        self.stats.dropped += self.queue.len() as u64;
        self.queue.clear();
        self.queued_bytes = 0;
    }

    pub(super) fn stats(&self) -> ReporterStats {
        ReporterStats { buffered: self.queue.len(), last_seq: self.next_seq - 1, ..self.stats }
    }

    pub(super) fn summary(&self) -> ReportSummary {
        ReportSummary { stats: self.stats(), last_error: self.last_error.clone() }
    }

    fn close_text(&mut self) {
        if !self.pending_text.is_empty() {
            let content = mem::take(&mut self.pending_text);
            self.enqueue(TaskMessage::text(0, content));
        }
    }

    fn enqueue(&mut self, mut message: TaskMessage) {
        message.seq = self.next_seq;
        self.next_seq += 1;
        let bytes = message_bytes(&message);
        self.queued_bytes += bytes;
        self.queue.push_back(Waiting { message, bytes });
        self.enforce_bound();
    }

    /// Removes the batch in flight from the queue, returning its length.
    fn take_in_flight(&mut self) -> u64 {
        let count = self.in_flight;
        self.queue.drain(..count);
        self.queued_bytes -= self.in_flight_bytes;
        self.end_flight();
        count as u64
    }

    fn end_flight(&mut self) {
        self.in_flight = 0;
        self.in_flight_bytes = 0;
    }

    /// Drops the oldest messages not in flight while over the bound; the
    /// newest is always kept, so one oversized message is still tried.
    fn enforce_bound(&mut self) {
        loop {
            let counted = self.queue.len() - self.in_flight;
            let counted_bytes = self.queued_bytes - self.in_flight_bytes;
            if counted <= 1 || (counted <= self.max_messages && counted_bytes <= self.max_bytes) {
                return;
            }
            if let Some(oldest) = self.queue.remove(self.in_flight) {
                self.queued_bytes -= oldest.bytes;
                self.stats.dropped += 1;
            }
        }
    }
}

/// The bytes a message holds, for the memory bound.
fn message_bytes(message: &TaskMessage) -> usize {
    let input =
        if message.input.is_empty() { 0 } else { serde_json::to_string(&message.input).map_or(0, |json| json.len()) };
    message.tool.len() + message.content.len() + message.output.len() + input
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{json, Map, Value};

    use super::*;

    fn message(kind: MessageKind, body: &str) -> TaskMessage {
        match kind {
            MessageKind::ToolResult => {
                TaskMessage { kind, tool: "sh".into(), output: body.into(), ..Default::default() }
            }
            _ => TaskMessage { kind, content: body.into(), ..Default::default() },
        }
    }

    fn seqs(batch: &[TaskMessage]) -> Vec<i64> {
        batch.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn text_runs_are_closed_before_the_next_message() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        buffer.push(message(MessageKind::Text, "a"));
        buffer.push(message(MessageKind::Text, "b"));
        buffer.push(message(MessageKind::Error, "boom"));
        buffer.push(message(MessageKind::Text, "c"));
        let batch = buffer.start_batch().unwrap();
        assert_eq!(seqs(&batch), [1, 2, 3]);
        assert_eq!(batch[0], TaskMessage::text(1, "ab"));
        assert_eq!(batch[1].kind, MessageKind::Error);
        assert_eq!(batch[2], TaskMessage::text(3, "c"));
    }

    #[test]
    fn byte_bound_drops_oldest_but_keeps_the_newest() {
        let mut buffer = Buffer::new(&ReporterConfig::default().with_max_buffered_bytes(10));
        buffer.push(message(MessageKind::Error, "12345"));
        buffer.push(message(MessageKind::Error, "67890"));
        assert_eq!(buffer.stats().dropped, 0);
        buffer.push(message(MessageKind::Error, "x"));
        assert_eq!(buffer.stats().dropped, 1);
        buffer.push(message(MessageKind::Error, "this alone is over the bound"));
        assert_eq!(buffer.stats().dropped, 3);
        assert_eq!(seqs(&buffer.start_batch().unwrap()), [4]);
    }

    #[test]
    fn tool_input_counts_as_its_json() {
        let input: Map<String, Value> = json!({"cmd": "ls"}).as_object().cloned().unwrap();
        let msg = TaskMessage { kind: MessageKind::ToolUse, tool: "sh".into(), input, ..Default::default() };
        assert_eq!(message_bytes(&msg), 2 + r#"{"cmd":"ls"}"#.len());
    }

    #[test]
    fn the_batch_in_flight_is_outside_the_bound_until_it_fails() {
        let mut buffer = Buffer::new(&ReporterConfig::default().with_max_buffered_messages(2));
        buffer.push(message(MessageKind::Error, "1"));
        buffer.push(message(MessageKind::Error, "2"));
        assert_eq!(seqs(&buffer.start_batch().unwrap()), [1, 2]);
        buffer.push(message(MessageKind::Error, "3"));
        buffer.push(message(MessageKind::Error, "4"));
        assert_eq!(buffer.stats().dropped, 0, "in flight messages are not dropped");
        buffer.batch_failed(Error::InvalidArgument("x".into()), true);
        assert_eq!(buffer.stats().dropped, 2);
        assert_eq!(seqs(&buffer.start_batch().unwrap()), [3, 4]);
        buffer.batch_sent();
        let stats = buffer.stats();
        assert_eq!((stats.messages_sent, stats.batches_sent, stats.failed_sends, stats.buffered), (2, 1, 1, 0));
    }

    #[test]
    fn a_rejected_batch_is_dropped_and_counted() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        buffer.push(message(MessageKind::Error, "1"));
        buffer.start_batch().unwrap();
        buffer.push(message(MessageKind::Error, "2"));
        buffer.batch_failed(Error::InvalidArgument("x".into()), false);
        assert_eq!(buffer.stats().dropped, 1);
        assert_eq!(seqs(&buffer.start_batch().unwrap()), [2]);
        assert!(buffer.summary().last_error.is_some());
    }

    #[test]
    fn after_close_messages_are_counted_as_dropped() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        buffer.push(message(MessageKind::Text, "kept"));
        buffer.close();
        buffer.push(message(MessageKind::Text, "late"));
        assert_eq!(buffer.stats().dropped, 1);
        buffer.abandon_rest();
        assert_eq!(buffer.stats().dropped, 2);
        assert_eq!(buffer.stats().buffered, 0);
        assert!(buffer.start_batch().is_none());
    }
}
