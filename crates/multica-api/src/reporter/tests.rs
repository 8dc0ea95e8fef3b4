//! The reporter's timing, ordering and loss rules, on tokio's paused clock.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::test_double::{unavailable, Outcome, ScriptedApi};
use crate::{Call, Endpoint, Method};

const TASK: &str = "t-1";

fn start(api: &ScriptedApi, config: ReporterConfig) -> TaskMessageReporter {
    // Through `Arc<dyn DaemonApi>`, as the daemon holds its backend.
    let api: Arc<dyn DaemonApi> = Arc::new(api.clone());
    TaskMessageReporter::start(api, TaskId::new(TASK), config)
}

/// Lets the ticker task run up to its next wait on the clock.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// Moves the paused clock forward, then lets due work run.
async fn advance(ms: u64) {
    tokio::time::advance(Duration::from_millis(ms)).await;
    settle().await;
}

/// Yields until `done` holds, failing after a bounded number of turns.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// The batches sent so far, in order.
fn batches(api: &ScriptedApi) -> Vec<Vec<TaskMessage>> {
    api.calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::ReportTaskMessages { task_id, messages } => {
                assert_eq!(task_id, TASK);
                Some(messages.to_vec())
            }
            _ => None,
        })
        .collect()
}

fn seqs(batch: &[TaskMessage]) -> Vec<i64> {
    batch.iter().map(|message| message.seq).collect()
}

/// The `seq`s of each batch sent so far.
fn batch_seqs(api: &ScriptedApi) -> Vec<Vec<i64>> {
    batches(api).iter().map(|batch| seqs(batch)).collect()
}

/// Makes the next `count` sends fail with a 503.
fn fail_next_sends(api: &ScriptedApi, count: usize) {
    let unavailable = unavailable(Endpoint::ReportTaskMessages);
    api.script(Endpoint::ReportTaskMessages, vec![Outcome::Fail(unavailable); count]);
}

fn sends(api: &ScriptedApi) -> usize {
    api.count(Endpoint::ReportTaskMessages)
}

fn task_not_found() -> Error {
    Error::from_server_message(Method::Post, "/api/daemon/tasks/t-1/messages", 404, "task not found")
}

#[tokio::test(start_paused = true)]
async fn seq_starts_at_one_and_rises_by_one_across_batches() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("a");
    reporter.error("e1");
    advance(500).await;
    reporter.tool_result("bash", "out");
    reporter.text("b");
    advance(500).await;
    let summary = reporter.finish().await;
    assert_eq!(batch_seqs(&api), [vec![1, 2], vec![3, 4]]);
    assert_eq!(summary.stats.last_seq, 4);
    assert_eq!((summary.stats.messages_sent, summary.stats.batches_sent, summary.stats.dropped), (4, 2, 0));
    assert!(summary.last_error.is_none());
}

#[tokio::test(start_paused = true)]
async fn text_deltas_within_an_interval_become_one_message() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("Hel");
    advance(100).await;
    reporter.text("lo, ");
    advance(100).await;
    reporter.text("");
    reporter.text("world");
    advance(300).await;
    until("the flush at 500 ms", || sends(&api) == 1).await;
    assert_eq!(batches(&api), [vec![TaskMessage::text(1, "Hello, world")]]);
    reporter.finish().await;
}

/// Asserts that text added at `added_at` is sent exactly at `due`, not a
/// millisecond before (times in ms from now; the cadence runs from the start).
async fn assert_sent_exactly_at(api: &ScriptedApi, reporter: &TaskMessageReporter, added_at: u64, due: u64) {
    let before = sends(api);
    advance(added_at).await;
    reporter.text("x");
    advance(due - added_at - 1).await;
    assert_eq!(sends(api), before, "nothing before {due} ms");
    advance(1).await;
    until(&format!("the flush at {due} ms"), || sends(api) == before + 1).await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_before_the_interval_and_all_of_it_at_the_interval() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    assert_sent_exactly_at(&api, &reporter, 0, 500).await;
    assert_sent_exactly_at(&api, &reporter, 200, 500).await; // at 1000 ms: the cadence holds
    reporter.finish().await;
}

#[tokio::test(start_paused = true)]
async fn the_flush_interval_is_configurable() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default().with_flush_interval(Duration::from_millis(200)));
    assert_sent_exactly_at(&api, &reporter, 0, 200).await;
    reporter.finish().await;
}

#[tokio::test(start_paused = true)]
async fn empty_flushes_send_nothing() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    for _ in 0..10 {
        advance(500).await;
    }
    let summary = reporter.finish().await;
    assert_eq!(sends(&api), 0);
    assert_eq!(summary.stats, ReporterStats::default());
}

#[tokio::test(start_paused = true)]
async fn text_before_a_tool_call_stays_before_it() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("I'll run ");
    reporter.text("ls.");
    let input = json!({"command": "ls"}).as_object().cloned().unwrap();
    reporter.tool_use("bash", input.clone());
    reporter.tool_result("bash", "a\nb");
    reporter.text("Done");
    reporter.error("rate limited");
    advance(500).await;
    until("the flush", || sends(&api) == 1).await;
    let batch = batches(&api).remove(0);
    let kinds: Vec<_> = batch.iter().map(|m| m.kind.clone()).collect();
    use MessageKind::*;
    assert_eq!(kinds, [Text, ToolUse, ToolResult, Text, Error]);
    assert_eq!(seqs(&batch), [1, 2, 3, 4, 5]);
    assert_eq!(batch[0].content, "I'll run ls.");
    assert_eq!((batch[1].tool.as_str(), &batch[1].input), ("bash", &input));
    assert_eq!((batch[2].tool.as_str(), batch[2].output.as_str()), ("bash", "a\nb"));
    assert_eq!(batch[3].content, "Done");
    assert_eq!(batch[4].content, "rate limited");
    reporter.finish().await;
}

#[tokio::test(start_paused = true)]
async fn tool_output_is_cut_to_8192_bytes_on_a_character_boundary() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    let head = "a".repeat(MAX_TOOL_OUTPUT_BYTES - 1);
    reporter.tool_result("read", format!("{head}é and more")); // `é` straddles byte 8192
    reporter.tool_result("read", "b".repeat(MAX_TOOL_OUTPUT_BYTES + 1));
    reporter.tool_result("read", "c".repeat(MAX_TOOL_OUTPUT_BYTES));
    let summary = reporter.finish().await;
    let batch = batches(&api).remove(0);
    assert_eq!(batch[0].output, head);
    assert_eq!(batch[1].output, "b".repeat(MAX_TOOL_OUTPUT_BYTES));
    assert_eq!(batch[2].output, "c".repeat(MAX_TOOL_OUTPUT_BYTES));
    assert_eq!(summary.stats.messages_sent, 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_is_sent_again_first_with_the_same_seqs() {
    let api = ScriptedApi::new();
    fail_next_sends(&api, 1);
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("a");
    reporter.error("e");
    advance(500).await;
    until("the failed send", || reporter.stats().failed_sends == 1).await;
    assert_eq!(reporter.stats().buffered, 2, "the failed batch is kept");
    reporter.text("c");
    advance(500).await;
    until("the second send", || sends(&api) == 2).await;
    let sent = batches(&api);
    assert_eq!(sent[0], sent[1][..2], "the same messages, with the same seqs");
    assert_eq!(seqs(&sent[1]), [1, 2, 3]);
    advance(500).await;
    let summary = reporter.finish().await;
    assert_eq!(sends(&api), 2, "nothing is sent twice after success");
    assert_eq!((summary.stats.messages_sent, summary.stats.failed_sends, summary.stats.dropped), (3, 1, 0));
    assert!(summary.last_error.unwrap().is_transient());
}

#[tokio::test(start_paused = true)]
async fn a_batch_the_server_refuses_is_dropped_and_counted() {
    let api = ScriptedApi::new();
    api.script(Endpoint::ReportTaskMessages, [Outcome::Fail(task_not_found())]);
    let reporter = start(&api, ReporterConfig::default());
    reporter.error("e1");
    advance(500).await;
    until("the refused send", || reporter.stats().dropped == 1).await;
    reporter.error("e2");
    let summary = reporter.finish().await;
    assert_eq!(batch_seqs(&api), [vec![1], vec![2]]);
    assert_eq!((summary.stats.messages_sent, summary.stats.dropped), (1, 1));
    assert!(summary.last_error.unwrap().is_task_not_found());
}

#[tokio::test(start_paused = true)]
async fn past_the_bound_the_oldest_messages_are_dropped_and_counted() {
    let api = ScriptedApi::new();
    fail_next_sends(&api, 2);
    let reporter = start(&api, ReporterConfig::default().with_max_buffered_messages(3));
    reporter.error("1");
    reporter.error("2");
    advance(500).await;
    until("the first failure", || reporter.stats().failed_sends == 1).await;
    reporter.error("3");
    assert_eq!(reporter.stats().dropped, 0, "3 messages fit");
    reporter.error("4");
    assert_eq!(reporter.stats().dropped, 1, "the 4th drops the oldest");
    advance(500).await;
    until("the second failure", || reporter.stats().failed_sends == 2).await;
    let summary = reporter.finish().await;
    assert_eq!(batch_seqs(&api), [vec![1, 2], vec![2, 3, 4], vec![2, 3, 4]]);
    assert_eq!((summary.stats.messages_sent, summary.stats.dropped), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_send_is_cut_at_five_seconds_and_its_batch_kept() {
    let api = ScriptedApi::new();
    api.script(Endpoint::ReportTaskMessages, [Outcome::Delay(Duration::from_secs(60))]);
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("a");
    advance(500).await;
    until("the hanging send", || sends(&api) == 1).await;
    advance(4999).await;
    assert_eq!(reporter.stats().failed_sends, 0);
    advance(1).await;
    until("the send timeout", || reporter.stats().failed_sends == 1).await;
    reporter.text("b");
    // After a failure the next flush is one full interval later, at 6 s.
    advance(499).await;
    assert_eq!(sends(&api), 1);
    advance(1).await;
    until("the re-send", || sends(&api) == 2).await;
    assert_eq!(batches(&api)[1], [TaskMessage::text(1, "a"), TaskMessage::text(2, "b")]);
    let summary = reporter.finish().await;
    assert!(summary.last_error.unwrap().is_timeout());
    assert_eq!(summary.stats.messages_sent, 2);
}

#[tokio::test(start_paused = true)]
async fn finish_sends_the_rest_without_waiting_for_a_tick() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("partial");
    let begun = Instant::now();
    let summary = reporter.finish().await;
    assert_eq!(begun.elapsed(), Duration::ZERO);
    assert_eq!(batches(&api), [vec![TaskMessage::text(1, "partial")]]);
    assert_eq!(summary.stats.messages_sent, 1);
}

#[tokio::test(start_paused = true)]
async fn finish_awaits_a_send_under_way_then_sends_the_rest() {
    let api = ScriptedApi::new();
    api.script(Endpoint::ReportTaskMessages, [Outcome::Delay(Duration::from_secs(1))]);
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("a");
    advance(500).await;
    until("the slow send", || sends(&api) == 1).await;
    reporter.text("b");
    let begun = Instant::now();
    let summary = reporter.finish().await;
    assert_eq!(begun.elapsed(), Duration::from_secs(1));
    assert_eq!(batch_seqs(&api), [vec![1], vec![2]]);
    assert_eq!(summary.stats.messages_sent, 2);
}

#[tokio::test(start_paused = true)]
async fn finish_retries_a_failure_after_an_interval() {
    let api = ScriptedApi::new();
    fail_next_sends(&api, 1);
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("a");
    let begun = Instant::now();
    let summary = reporter.finish().await;
    assert_eq!(begun.elapsed(), Duration::from_millis(500));
    assert_eq!(batch_seqs(&api), [vec![1], vec![1]]);
    assert_eq!((summary.stats.messages_sent, summary.stats.dropped), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn finish_gives_up_at_its_deadline_and_counts_what_is_lost() {
    let api = ScriptedApi::new();
    api.script(Endpoint::ReportTaskMessages, vec![Outcome::Delay(Duration::from_secs(60)); 4]);
    let reporter = start(&api, ReporterConfig::default().with_finish_timeout(Duration::from_secs(2)));
    reporter.text("a");
    advance(500).await;
    until("the hanging send", || sends(&api) == 1).await;
    reporter.error("b");
    let begun = Instant::now();
    let summary = reporter.finish().await;
    assert_eq!(begun.elapsed(), Duration::from_secs(2));
    assert_eq!(summary.stats.dropped, 2);
    assert_eq!(summary.stats.buffered, 0);
    assert_eq!(summary.stats.messages_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn messages_added_after_finish_are_dropped_and_counted() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    let sink = reporter.sink();
    sink.text("before");
    reporter.finish().await;
    sink.text("after");
    sink.tool_use("bash", Map::new());
    assert_eq!(sink.stats().dropped, 2);
    assert_eq!(sends(&api), 1);
}

#[tokio::test(start_paused = true)]
async fn a_sink_feeds_the_same_sequence() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    let sink = reporter.sink();
    let agent = tokio::spawn(async move {
        sink.text("from a task");
        sink.push(TaskMessage { seq: 99, kind: MessageKind::Error, content: "e".into(), ..TaskMessage::default() });
    });
    agent.await.unwrap();
    reporter.text("after");
    reporter.finish().await;
    assert_eq!(batch_seqs(&api), [vec![1, 2, 3]]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_reporter_still_sends_the_rest() {
    let api = ScriptedApi::new();
    let reporter = start(&api, ReporterConfig::default());
    reporter.text("unfinished");
    drop(reporter);
    until("the background drain", || sends(&api) == 1).await;
    assert_eq!(batches(&api), [vec![TaskMessage::text(1, "unfinished")]]);
}

#[cfg(feature = "tracing")]
#[tokio::test(start_paused = true)]
async fn a_failed_send_is_logged_as_a_warning() {
    use std::io;
    use std::sync::Mutex;

    /// Collects what the fmt subscriber writes.
    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = ScriptedApi::new();
    fail_next_sends(&api, 1);
    let reporter = start(&api, ReporterConfig::default());
    reporter.error("e");
    reporter.finish().await;
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("reporting task messages failed") && text.contains("task_id=t-1"), "{text}");
    assert!(text.contains("kept=true") && text.contains("503"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn only_a_failure_that_may_have_stored_the_batch_is_reconciled_first() {
    let connect = Error::Transport {
        method: Method::Post,
        path: "/api/daemon/tasks/t-1/messages".into(),
        kind: crate::TransportKind::Connect,
        source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
    };
    let busy = Error::from_server_message(Method::Post, "/api/daemon/tasks/t-1/messages", 429, "slow down");
    // (failure, whether the next flush lists the stored messages first)
    let cases = [(connect, false), (busy, false), (unavailable(Endpoint::ReportTaskMessages), true)];
    for (error, reconciles) in cases {
        let api = ScriptedApi::new();
        api.script(Endpoint::ReportTaskMessages, [Outcome::Fail(error.clone())]);
        let reporter = start(&api, ReporterConfig::default());
        reporter.error("e");
        let summary = reporter.finish().await;
        let endpoints: Vec<Endpoint> = api.calls().iter().map(Call::endpoint).collect();
        let expected = if reconciles {
            vec![Endpoint::ReportTaskMessages, Endpoint::ListTaskMessages, Endpoint::ReportTaskMessages]
        } else {
            vec![Endpoint::ReportTaskMessages, Endpoint::ReportTaskMessages]
        };
        assert_eq!(endpoints, expected, "after {error}");
        // The scripted server lists nothing: the message was missing.
        assert_eq!((summary.stats.messages_sent, summary.stats.resent), (1, u64::from(reconciles)), "after {error}");
    }
}
