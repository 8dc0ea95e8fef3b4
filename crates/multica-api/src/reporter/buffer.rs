//! The reporter's state: messages numbered in the agent's order and kept
//! until the server has them, within a bound on the bytes held. Pure and
//! synchronous; the flusher decides when to send.

use std::collections::{HashMap, VecDeque};
use std::mem;
use std::sync::Arc;

use super::utf8::truncate_utf8;
use super::{ReportSummary, ReporterConfig, ReporterStats};
use crate::dto::{MessageKind, TaskMessage};
use crate::error::Error;

/// A numbered message waiting to be sent, with its size for the bound.
#[derive(Debug)]
struct Waiting {
    message: TaskMessage,
    bytes: usize,
}

/// The batch being sent: moved out of the queue, not copied, and shared
/// with the send so that a cancelled send still leaves it here.
#[derive(Debug)]
struct InFlight {
    messages: Arc<[TaskMessage]>,
    sizes: Vec<usize>,
    bytes: usize,
}

/// What to do with a batch whose send failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The server refused it: sending it again cannot succeed; drop it.
    Refused,
    /// It never reached the server (or was refused for now): send it again.
    NotStored,
    /// It may have been stored: find out before sending it again.
    Unknown,
}

/// Messages waiting to be sent.
///
/// Ordering rule: text deltas accumulate in `pending_text`; the run is
/// *closed* into one `text` message at a flush, when any other message
/// arrives, or when it reaches the largest message size, so text written
/// before a tool call is numbered before it. A message gets its `seq` when
/// it is closed, hence `seq` order is the agent's order. The batch in flight
/// holds the oldest messages, then the queue the rest by `seq`.
///
/// Memory rule: `held()` (the bytes of every message's text in the queue,
/// in flight and in the open text run) never exceeds `max_bytes`. Making
/// room drops the oldest messages first (the batch in flight cannot be
/// dropped); a message or text that still does not fit is dropped itself.
/// Every dropped byte is counted.
#[derive(Debug)]
pub(super) struct Buffer {
    max_tool_output_bytes: usize,
    max_messages: usize,
    max_bytes: usize,
    max_batch_bytes: usize,
    /// The largest message kept: one batch, and never more than the bound.
    max_message_bytes: usize,
    next_seq: i64,
    pending_text: String,
    queue: VecDeque<Waiting>,
    queued_bytes: usize,
    in_flight: Option<InFlight>,
    /// Messages with a `seq` up to this one were sent with an unknown
    /// outcome: the server may hold them (0: none).
    unknown_through: i64,
    closed: bool,
    stats: ReporterStats,
    last_error: Option<Error>,
}

impl Buffer {
    pub(super) fn new(config: &ReporterConfig) -> Self {
        let max_bytes = config.max_buffered_bytes;
        let max_batch_bytes = config.max_batch_bytes.max(1);
        Self {
            max_tool_output_bytes: config.max_tool_output_bytes,
            max_messages: config.max_buffered_messages,
            max_bytes,
            max_batch_bytes,
            max_message_bytes: max_batch_bytes.min(max_bytes),
            next_seq: 1,
            pending_text: String::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: None,
            unknown_through: 0,
            closed: false,
            stats: ReporterStats::default(),
            last_error: None,
        }
    }

    /// Adds a message from the agent; its `seq` is replaced. After
    /// [`Buffer::close`], messages are counted as dropped instead. The
    /// caller's strings are released: what is kept of a cut field is a copy.
    pub(super) fn push(&mut self, mut message: TaskMessage) {
        if message.kind == MessageKind::Text {
            self.push_text(&message.content);
            return;
        }
        if self.closed {
            self.count_dropped(message_bytes(&message));
            return;
        }
        if message.kind == MessageKind::ToolResult {
            self.stats.dropped_bytes += cut(&mut message.output, self.max_tool_output_bytes) as u64;
        }
        self.close_text();
        let bytes = message_bytes(&message);
        if bytes > self.max_message_bytes {
            // Cut the free text to fit, output first; what cannot be cut
            // (tool name, input) may still leave it too large.
            let mut over = bytes - self.max_message_bytes;
            let keep = message.output.len().saturating_sub(over);
            let output_cut = cut(&mut message.output, keep);
            over = over.saturating_sub(output_cut);
            let keep = message.content.len().saturating_sub(over);
            let content_cut = cut(&mut message.content, keep);
            self.stats.dropped_bytes += (output_cut + content_cut) as u64;
        }
        let bytes = message_bytes(&message);
        if bytes > self.max_message_bytes || !self.make_room(bytes) {
            self.count_dropped(bytes);
            return;
        }
        message.seq = self.next_seq;
        self.next_seq += 1;
        self.queued_bytes += bytes;
        self.queue.push_back(Waiting { message, bytes });
        self.enforce_count();
    }

    /// Adds a whole text message that is not merged with the text around
    /// it (a line of a command's output); a line longer than a message is
    /// split as any text run is.
    pub(super) fn push_whole_text(&mut self, content: &str) {
        self.close_text();
        self.push_text(content);
        self.close_text();
    }

    /// Adds a delta of the agent's text, without copying more of it than is
    /// kept.
    pub(super) fn push_text(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        if self.closed {
            self.count_dropped(delta.len());
            return;
        }
        let mut rest = delta;
        while !rest.is_empty() {
            let room = self.max_message_bytes - self.pending_text.len();
            let mut chunk = truncate_utf8(rest, room);
            if chunk.is_empty() {
                if !self.pending_text.is_empty() {
                    self.close_text();
                    continue;
                }
                // A limit smaller than one character: the character goes whole.
                let first = rest.chars().next().map_or(rest.len(), char::len_utf8);
                chunk = &rest[..first];
            }
            rest = &rest[chunk.len()..];
            if !self.make_room(chunk.len()) {
                self.stats.dropped_bytes += chunk.len() as u64;
                continue;
            }
            let needed = self.pending_text.len() + chunk.len();
            if needed > self.pending_text.capacity() {
                // Grow as `String` does, but never past one message, so the
                // run never holds more than the bound counts.
                let target = (self.pending_text.capacity() * 2).min(self.max_message_bytes).max(needed);
                self.pending_text.reserve_exact(target - self.pending_text.len());
            }
            self.pending_text.push_str(chunk);
            if self.pending_text.len() >= self.max_message_bytes {
                self.close_text();
            }
        }
    }

    /// Closes the open text run and returns the last `seq` numbered: a flush
    /// sends up to it.
    pub(super) fn begin_flush(&mut self) -> i64 {
        self.close_text();
        self.next_seq - 1
    }

    /// The `seq`s of the waiting messages whose earlier send has an unknown
    /// outcome, as `(first, last)`; they are not sent again until
    /// [`Buffer::reconciled`] says which the server lacks.
    pub(super) fn unknown_range(&mut self) -> Option<(i64, i64)> {
        match self.queue.front() {
            Some(front) if front.message.seq <= self.unknown_through => Some((front.message.seq, self.unknown_through)),
            _ => {
                self.unknown_through = 0;
                None
            }
        }
    }

    /// The server's stored `(seq, kind)`s: the messages of unknown outcome
    /// that it holds count as sent (and reconciled); the others are sent
    /// again (and counted as resent).
    pub(super) fn reconciled(&mut self, stored: &[(i64, MessageKind)]) {
        let mut held: HashMap<i64, Vec<&MessageKind>> = HashMap::new();
        for (seq, kind) in stored {
            if *seq <= self.unknown_through {
                held.entry(*seq).or_default().push(kind);
            }
        }
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for waiting in self.queue.drain(..) {
            let seq = waiting.message.seq;
            if seq > self.unknown_through {
                kept.push_back(waiting);
            } else if held.get(&seq).is_some_and(|kinds| kinds.contains(&&waiting.message.kind)) {
                self.queued_bytes -= waiting.bytes;
                self.stats.reconciled += 1;
                self.stats.messages_sent += 1;
                self.stats.sent_bytes += waiting.bytes as u64;
            } else {
                self.stats.resent += 1;
                kept.push_back(waiting);
            }
        }
        self.queue = kept;
        self.unknown_through = 0;
    }

    /// Listing what the server holds failed for a reason that may pass: the
    /// outcome stays unknown, to be found out later.
    pub(super) fn reconcile_failed(&mut self, error: Error) {
        self.stats.failed_listings += 1;
        self.last_error = Some(error);
    }

    /// The server refused to list the task's messages: what it holds of
    /// the messages of unknown outcome cannot be learned, and sending them
    /// again could store them twice, so they are counted as dropped.
    pub(super) fn reconcile_refused(&mut self, error: Error) {
        self.stats.failed_listings += 1;
        self.last_error = Some(error);
        while self.queue.front().is_some_and(|front| front.message.seq <= self.unknown_through) {
            if let Some(waiting) = self.queue.pop_front() {
                self.drop_waiting(waiting);
            }
        }
        self.unknown_through = 0;
    }

    /// Moves the oldest waiting messages with a `seq` up to `upto` in
    /// flight (at most `max_batch_bytes` of them, but at least one) and
    /// returns them; `None` when none waits, or when the oldest has an
    /// unknown outcome. The batch is the call's payload as it is: the
    /// sender hands this `Arc` to the API, no message is copied.
    pub(super) fn start_batch(&mut self, upto: i64) -> Option<Arc<[TaskMessage]>> {
        if self.in_flight.is_some() {
            return None;
        }
        let mut messages = Vec::new();
        let mut sizes = Vec::new();
        let mut bytes = 0;
        while let Some(front) = self.queue.front() {
            let seq = front.message.seq;
            let too_big = !messages.is_empty() && bytes + front.bytes > self.max_batch_bytes;
            if seq > upto || seq <= self.unknown_through || too_big {
                break;
            }
            let Some(waiting) = self.queue.pop_front() else { break };
            bytes += waiting.bytes;
            sizes.push(waiting.bytes);
            messages.push(waiting.message);
        }
        if messages.is_empty() {
            return None;
        }
        self.queued_bytes -= bytes;
        let messages: Arc<[TaskMessage]> = messages.into();
        self.in_flight = Some(InFlight { messages: Arc::clone(&messages), sizes, bytes });
        Some(messages)
    }

    /// The batch in flight reached the server.
    pub(super) fn batch_sent(&mut self) {
        if let Some(batch) = self.in_flight.take() {
            self.stats.messages_sent += batch.messages.len() as u64;
            self.stats.sent_bytes += batch.bytes as u64;
            self.stats.batches_sent += 1;
        }
    }

    /// The batch in flight failed (the sender has let go of its copy).
    /// Unless refused, it is sent again first, with the same numbers.
    pub(super) fn batch_failed(&mut self, error: Error, failure: Failure) {
        self.stats.failed_sends += 1;
        self.last_error = Some(error);
        match failure {
            Failure::Refused => {
                if let Some(batch) = self.in_flight.take() {
                    self.stats.dropped += batch.messages.len() as u64;
                    self.stats.dropped_bytes += batch.bytes as u64;
                }
            }
            Failure::NotStored => self.requeue_in_flight(false),
            Failure::Unknown => self.requeue_in_flight(true),
        }
    }

    /// The send was cancelled midway: it may have reached the server, so its
    /// batch waits again with an unknown outcome.
    pub(super) fn batch_abandoned(&mut self) {
        self.requeue_in_flight(true);
    }

    /// Refuses further messages (they are counted as dropped).
    pub(super) fn close(&mut self) {
        self.closed = true;
    }

    /// Closes the buffer and counts whatever still waits as dropped.
    pub(super) fn abandon_rest(&mut self) {
        self.close_text();
        self.close();
        self.requeue_in_flight(false);
        while let Some(waiting) = self.queue.pop_front() {
            self.drop_waiting(waiting);
        }
        self.unknown_through = 0;
    }

    pub(super) fn stats(&self) -> ReporterStats {
        let in_flight = self.in_flight.as_ref().map_or(0, |batch| batch.messages.len());
        ReporterStats {
            buffered: self.queue.len() + in_flight,
            buffered_bytes: self.held(),
            last_seq: self.next_seq - 1,
            ..self.stats
        }
    }

    pub(super) fn summary(&self) -> ReportSummary {
        ReportSummary { stats: self.stats(), last_error: self.last_error.clone() }
    }

    /// The bytes of message text held: queued, in flight and the open run.
    fn held(&self) -> usize {
        self.queued_bytes + self.in_flight.as_ref().map_or(0, |batch| batch.bytes) + self.pending_text.len()
    }

    /// Puts the batch in flight back at the front of the queue.
    fn requeue_in_flight(&mut self, outcome_unknown: bool) {
        let Some(batch) = self.in_flight.take() else { return };
        // The sender has dropped its handle by now, so the messages move
        // back out; a copy is the fallback.
        let mut shared = batch.messages;
        let messages: Vec<TaskMessage> = match Arc::get_mut(&mut shared) {
            Some(owned) => owned.iter_mut().map(std::mem::take).collect(),
            None => shared.to_vec(),
        };
        if outcome_unknown {
            if let Some(last) = messages.last() {
                self.unknown_through = self.unknown_through.max(last.seq);
            }
        }
        self.queued_bytes += batch.bytes;
        for (message, bytes) in messages.into_iter().zip(batch.sizes).rev() {
            self.queue.push_front(Waiting { message, bytes });
        }
    }

    /// Numbers the open text run and queues it. Its bytes were counted
    /// while open, so this needs no room.
    fn close_text(&mut self) {
        if self.pending_text.is_empty() {
            return;
        }
        let mut content = mem::take(&mut self.pending_text);
        content.shrink_to_fit();
        let bytes = content.len();
        self.queue.push_back(Waiting { message: TaskMessage::text(self.next_seq, content), bytes });
        self.next_seq += 1;
        self.queued_bytes += bytes;
        self.enforce_count();
    }

    /// Drops the oldest messages (then the open text run) until `bytes` more
    /// fit under the bound; false when they cannot (the batch in flight
    /// alone fills it).
    fn make_room(&mut self, bytes: usize) -> bool {
        loop {
            if self.held() + bytes <= self.max_bytes {
                return true;
            }
            if let Some(oldest) = self.queue.pop_front() {
                self.drop_waiting(oldest);
            } else if !self.pending_text.is_empty() {
                self.close_text();
            } else {
                return false;
            }
        }
    }

    /// Drops the oldest messages not in flight while there are too many.
    fn enforce_count(&mut self) {
        let in_flight = self.in_flight.as_ref().map_or(0, |batch| batch.messages.len());
        while self.queue.len() + in_flight > self.max_messages {
            match self.queue.pop_front() {
                Some(oldest) => self.drop_waiting(oldest),
                None => return,
            }
        }
    }

    fn drop_waiting(&mut self, waiting: Waiting) {
        self.queued_bytes -= waiting.bytes;
        self.count_dropped(waiting.bytes);
    }

    fn count_dropped(&mut self, bytes: usize) {
        self.stats.dropped += 1;
        self.stats.dropped_bytes += bytes as u64;
    }
}

/// Cuts `text` to at most `max_bytes` on a character boundary, releasing
/// the original allocation (the kept prefix is copied into an exact-size
/// string), and returns the bytes cut.
fn cut(text: &mut String, max_bytes: usize) -> usize {
    if text.len() <= max_bytes {
        return 0;
    }
    let kept = truncate_utf8(text, max_bytes).to_owned();
    let removed = text.len() - kept.len();
    *text = kept;
    removed
}

/// The bytes a message holds, for the memory bound.
pub(super) fn message_bytes(message: &TaskMessage) -> usize {
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

    fn start(buffer: &mut Buffer) -> Option<Vec<TaskMessage>> {
        let upto = buffer.begin_flush();
        buffer.start_batch(upto).map(|batch| batch.to_vec())
    }

    /// Asserts the byte accounting: every produced byte is sent, held or dropped.
    fn assert_accounts_for(buffer: &Buffer, produced: usize) {
        let stats = buffer.stats();
        assert!(stats.buffered_bytes <= buffer.max_bytes, "{stats:?}");
        assert_eq!(stats.sent_bytes + stats.buffered_bytes as u64 + stats.dropped_bytes, produced as u64, "{stats:?}");
    }

    #[test]
    fn text_runs_are_closed_before_the_next_message() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        buffer.push(message(MessageKind::Text, "a"));
        buffer.push_text("b");
        buffer.push(message(MessageKind::Error, "boom"));
        buffer.push(message(MessageKind::Text, "c"));
        let batch = start(&mut buffer).unwrap();
        assert_eq!(seqs(&batch), [1, 2, 3]);
        assert_eq!(batch[0], TaskMessage::text(1, "ab"));
        assert_eq!(batch[1].kind, MessageKind::Error);
        assert_eq!(batch[2], TaskMessage::text(3, "c"));
    }

    #[test]
    fn byte_bound_drops_oldest_then_the_new_message_itself() {
        let mut buffer = Buffer::new(&ReporterConfig::default().with_max_buffered_bytes(10));
        buffer.push(message(MessageKind::Error, "12345"));
        buffer.push(message(MessageKind::Error, "67890"));
        assert_eq!(buffer.stats().dropped, 0);
        buffer.push(message(MessageKind::Error, "x"));
        assert_eq!((buffer.stats().dropped, buffer.stats().dropped_bytes), (1, 5));
        // Larger than the bound: cut to it, after dropping everything older.
        buffer.push(message(MessageKind::Error, "this alone is over the bound"));
        let stats = buffer.stats();
        assert_eq!((stats.dropped, stats.buffered, stats.buffered_bytes), (3, 1, 10));
        assert_accounts_for(&buffer, 5 + 5 + 1 + 28);
        assert_eq!(start(&mut buffer).unwrap(), [TaskMessage { seq: 4, ..message(MessageKind::Error, "this alone") }]);
    }

    #[test]
    fn open_text_counts_and_is_split_at_the_batch_size() {
        let config = ReporterConfig::default().with_max_buffered_bytes(10).with_max_batch_bytes(4);
        let mut buffer = Buffer::new(&config);
        buffer.push_text("abcdefghijklmn");
        // Closed every 4 bytes; the oldest dropped to keep 10 bytes at most.
        let stats = buffer.stats();
        assert_eq!((stats.last_seq, stats.buffered_bytes, stats.dropped), (3, 10, 1), "{stats:?}");
        assert_accounts_for(&buffer, 14);
        let batch = start(&mut buffer).unwrap();
        assert_eq!(batch, [TaskMessage::text(2, "efgh")], "one batch holds at most 4 bytes");
        assert_eq!(buffer.stats().buffered_bytes, 10, "the batch in flight is held too");
        assert_accounts_for(&buffer, 14);
    }

    #[test]
    fn when_the_batch_in_flight_fills_the_bound_new_text_is_dropped() {
        let config = ReporterConfig::default().with_max_buffered_bytes(4).with_max_batch_bytes(4);
        let mut buffer = Buffer::new(&config);
        buffer.push_text("abcd");
        assert_eq!(seqs(&start(&mut buffer).unwrap()), [1]);
        buffer.push_text("efg");
        buffer.push(message(MessageKind::Error, "e"));
        let stats = buffer.stats();
        assert_eq!((stats.buffered_bytes, stats.dropped, stats.dropped_bytes), (4, 1, 4));
        assert_accounts_for(&buffer, 8);
        buffer.batch_sent();
        assert_accounts_for(&buffer, 8);
        assert_eq!(buffer.stats().sent_bytes, 4);
    }

    #[test]
    fn tool_output_is_cut_into_a_fresh_string() {
        let mut buffer = Buffer::new(&ReporterConfig::default().with_max_tool_output_bytes(3));
        let mut result = message(MessageKind::ToolResult, "");
        result.output = String::with_capacity(1 << 20);
        result.output.push_str("abcdef");
        buffer.push(result);
        let batch = start(&mut buffer).unwrap();
        assert_eq!(batch[0].output, "abc");
        assert!(buffer.in_flight.as_ref().unwrap().messages[0].output.capacity() < 1024, "the caller's buffer is gone");
        assert_eq!(buffer.stats().dropped_bytes, 3);
    }

    #[test]
    fn tool_input_counts_as_its_json() {
        let input: Map<String, Value> = json!({"cmd": "ls"}).as_object().cloned().unwrap();
        let msg = TaskMessage { kind: MessageKind::ToolUse, tool: "sh".into(), input, ..Default::default() };
        assert_eq!(message_bytes(&msg), 2 + r#"{"cmd":"ls"}"#.len());
    }

    #[test]
    fn the_batch_in_flight_counts_against_the_bound_and_is_never_dropped() {
        let mut buffer = Buffer::new(&ReporterConfig::default().with_max_buffered_messages(3));
        buffer.push(message(MessageKind::Error, "1"));
        buffer.push(message(MessageKind::Error, "2"));
        assert_eq!(seqs(&start(&mut buffer).unwrap()), [1, 2]);
        buffer.push(message(MessageKind::Error, "3"));
        assert_eq!(buffer.stats().dropped, 0);
        buffer.push(message(MessageKind::Error, "4"));
        assert_eq!(buffer.stats().dropped, 1, "3 is dropped: 1 and 2 are in flight");
        buffer.batch_failed(Error::InvalidArgument("x".into()), Failure::NotStored);
        assert_eq!(seqs(&start(&mut buffer).unwrap()), [1, 2, 4]);
        buffer.batch_sent();
        let stats = buffer.stats();
        assert_eq!((stats.messages_sent, stats.batches_sent, stats.failed_sends, stats.buffered), (3, 1, 1, 0));
    }

    #[test]
    fn an_unknown_outcome_waits_for_reconciliation_and_resends_only_what_is_missing() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        for body in ["1", "2", "3"] {
            buffer.push(message(MessageKind::Error, body));
        }
        start(&mut buffer).unwrap();
        buffer.push(message(MessageKind::Error, "4"));
        buffer.batch_failed(Error::InvalidArgument("x".into()), Failure::Unknown);
        assert_eq!(buffer.unknown_range(), Some((1, 3)));
        assert!(start(&mut buffer).is_none(), "never resent blindly");
        // The server holds 1 and 3 (and a foreign 2 of another kind).
        buffer.reconciled(&[(1, MessageKind::Error), (2, MessageKind::Text), (3, MessageKind::Error)]);
        let stats = buffer.stats();
        assert_eq!((stats.reconciled, stats.resent, stats.messages_sent, stats.sent_bytes), (2, 1, 2, 2));
        assert_eq!(buffer.unknown_range(), None);
        assert_eq!(seqs(&start(&mut buffer).unwrap()), [2, 4]);
        assert_accounts_for(&buffer, 4);
    }

    #[test]
    fn a_refused_listing_drops_the_messages_of_unknown_outcome() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        buffer.push(message(MessageKind::Error, "1"));
        start(&mut buffer).unwrap();
        buffer.push(message(MessageKind::Error, "2"));
        buffer.batch_abandoned();
        buffer.reconcile_failed(Error::InvalidArgument("x".into()));
        assert_eq!(buffer.unknown_range(), Some((1, 1)), "a failed listing keeps the outcome unknown");
        buffer.reconcile_refused(Error::InvalidArgument("x".into()));
        let stats = buffer.stats();
        assert_eq!((stats.dropped, stats.failed_listings), (1, 2));
        assert_eq!(seqs(&start(&mut buffer).unwrap()), [2]);
    }

    #[test]
    fn a_rejected_batch_is_dropped_and_counted() {
        let mut buffer = Buffer::new(&ReporterConfig::default());
        buffer.push(message(MessageKind::Error, "1"));
        start(&mut buffer).unwrap();
        buffer.push(message(MessageKind::Error, "2"));
        buffer.batch_failed(Error::InvalidArgument("x".into()), Failure::Refused);
        assert_eq!(buffer.stats().dropped, 1);
        assert_eq!(seqs(&start(&mut buffer).unwrap()), [2]);
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
        assert!(start(&mut buffer).is_none());
    }
}
