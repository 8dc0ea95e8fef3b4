//! The reporter against servers that lose answers, answer late or are down:
//! a storing server that keeps every batch it receives (as the real one
//! does: no uniqueness on `(task_id, seq)`) behind a fault layer, on tokio's
//! paused clock. The server must end with every message exactly once, in
//! `seq` order.

#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use super::*;
use crate::request::Request;
use crate::{Call, Endpoint, Result, StoredTaskMessage, TransportKind};

const TASK: &str = "t-chaos";

/// What the fault layer does to an exchange.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The connection is reset for about `per_mille`/1000 of all
    /// exchanges: half of them after the server acted (the answer is lost),
    /// half before (the request is lost). The client cannot tell which.
    LoseAnswers { per_mille: u64 },
    /// The server stores each batch, then answers after this long.
    LateStores(Duration),
    /// Until `until`, every exchange fails at `kind` without reaching the
    /// server; then it is back.
    DownUntil { until: Instant, kind: TransportKind },
}

#[derive(Debug)]
struct State {
    stored: Vec<TaskMessage>,
    rng: u64,
    lost_answers: u64,
    refused: u64,
}

/// A server storing every batch it gets, behind `fault`.
#[derive(Clone, Debug)]
struct FaultyServer {
    fault: Fault,
    state: Arc<Mutex<State>>,
}

impl FaultyServer {
    fn new(fault: Fault, seed: u64) -> Self {
        let state = State { stored: Vec::new(), rng: seed, lost_answers: 0, refused: 0 };
        Self { fault, state: Arc::new(Mutex::new(state)) }
    }

    fn stored(&self) -> Vec<TaskMessage> {
        self.state.lock().unwrap().stored.clone()
    }

    fn lost_answers(&self) -> u64 {
        self.state.lock().unwrap().lost_answers
    }

    fn refused(&self) -> u64 {
        self.state.lock().unwrap().refused
    }

    async fn send<T>(&self, request: Result<Request<T>>) -> Result<T> {
        let request = request?;
        let wire = request.wire().clone();
        let failed = |kind: TransportKind, what: io::ErrorKind| Error::Transport {
            method: wire.method(),
            path: wire.path.clone(),
            kind,
            source: Arc::new(io::Error::from(what)),
        };
        if let Fault::DownUntil { until, kind } = self.fault {
            if Instant::now() < until {
                self.state.lock().unwrap().refused += 1;
                return Err(failed(kind, io::ErrorKind::ConnectionRefused));
            }
        }
        let call = Call::decode(wire.method().as_str(), &wire.path, wire.body.as_deref().unwrap_or_default()).unwrap();
        let (answer, lost) = {
            let mut state = self.state.lock().unwrap();
            let (lost, acted) = match self.fault {
                Fault::LoseAnswers { per_mille } => {
                    let draw = next_random(&mut state.rng) % 2000;
                    // Below per_mille: lost after acting; up to twice that: lost before.
                    (draw < 2 * per_mille, !(per_mille..2 * per_mille).contains(&draw))
                }
                _ => (false, true),
            };
            let answer = match call {
                Call::ReportTaskMessages { task_id, messages } => {
                    assert_eq!(task_id, TASK);
                    if acted {
                        state.stored.extend(messages.iter().cloned());
                    }
                    b"{}".to_vec()
                }
                Call::ListTaskMessages { task_id } => {
                    // By seq ascending, as the server's ORDER BY seq.
                    let mut listed: Vec<StoredTaskMessage> = state
                        .stored
                        .iter()
                        .map(|message| StoredTaskMessage {
                            task_id: task_id.clone(),
                            message: message.clone(),
                            ..Default::default()
                        })
                        .collect();
                    listed.sort_by_key(|stored| stored.message.seq);
                    serde_json::to_vec(&listed).unwrap()
                }
                other => panic!("unexpected call {other:?}"),
            };
            state.lost_answers += u64::from(lost);
            (answer, lost)
        };
        if lost {
            return Err(failed(TransportKind::Request, io::ErrorKind::ConnectionReset));
        }
        if let Fault::LateStores(after) = self.fault {
            if wire.endpoint == Endpoint::ReportTaskMessages {
                tokio::time::sleep(after).await;
            }
        }
        request.decode_response(200, &answer)
    }
}

#[async_trait::async_trait]
impl crate::DaemonApi for FaultyServer {
    async fn call(&self, call: Call) -> Result<crate::Reply> {
        self.send(call.to_request()).await
    }
}

/// splitmix64: a seeded, reproducible sequence.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What an agent said, with consecutive text merged: how messages compare
/// whatever the batching and coalescing.
#[derive(Debug, PartialEq)]
enum Said {
    Text(String),
    Other(MessageKind, String, String),
}

fn merged(messages: impl IntoIterator<Item = TaskMessage>) -> Vec<Said> {
    let mut said = Vec::new();
    for message in messages {
        match (message.kind, said.last_mut()) {
            (MessageKind::Text, Some(Said::Text(text))) => text.push_str(&message.content),
            (MessageKind::Text, _) => said.push(Said::Text(message.content)),
            (kind, _) => said.push(Said::Other(kind, message.tool, message.content + &message.output)),
        }
    }
    said
}

/// An agent working for `duration`: per step a few text deltas, a tool
/// call and its result, now and then an error; returns what it said.
async fn run_agent(reporter: &TaskMessageReporter, steps: u32, step: Duration) -> Vec<TaskMessage> {
    let mut said = Vec::new();
    for i in 0..steps {
        for delta in [format!("step {i}: "), "looking ".to_owned(), "around. ".to_owned()] {
            reporter.text(&delta);
            said.push(TaskMessage::text(0, delta));
        }
        if i % 2 == 0 {
            reporter.tool_use("bash", json!({"command": format!("ls {i}")}).as_object().cloned().unwrap());
            said.push(TaskMessage { kind: MessageKind::ToolUse, tool: "bash".into(), ..TaskMessage::default() });
            let output = format!("file-{i}\n");
            reporter.tool_result("bash", output.clone());
            said.push(TaskMessage { kind: MessageKind::ToolResult, tool: "bash".into(), output, ..Default::default() });
        }
        if i % 7 == 0 {
            let content = format!("warning {i}");
            reporter.error(content.clone());
            said.push(TaskMessage { kind: MessageKind::Error, content, ..TaskMessage::default() });
        }
        tokio::time::sleep(step).await;
    }
    said
}

/// Asserts the server holds every message once, stored in `seq` order, and
/// exactly what the agent said; returns the summary's counters.
fn assert_exactly_once(server: &FaultyServer, said: Vec<TaskMessage>, summary: &ReportSummary) {
    let stored = server.stored();
    let seqs: Vec<i64> = stored.iter().map(|message| message.seq).collect();
    let expected: Vec<i64> = (1..=summary.stats.last_seq).collect();
    assert_eq!(seqs, expected, "every message once, stored in seq order");
    assert_eq!(merged(stored), merged(said), "what the agent said, nothing lost or added");
    let stats = summary.stats;
    assert_eq!((stats.dropped, stats.buffered, stats.buffered_bytes), (0, 0, 0), "{stats:?}");
    assert_eq!(stats.messages_sent, stats.last_seq as u64, "{stats:?}");
}

fn start(server: &FaultyServer) -> TaskMessageReporter {
    let config = ReporterConfig::default().with_finish_timeout(Duration::from_secs(600));
    TaskMessageReporter::start(server.clone(), TaskId::new(TASK), config)
}

#[tokio::test(start_paused = true)]
async fn connections_reset_around_the_server_store_nothing_twice_and_lose_nothing() {
    // About 12% of all exchanges (sends and listings) are reset.
    for seed in [1, 2, 3] {
        let server = FaultyServer::new(Fault::LoseAnswers { per_mille: 120 }, seed);
        let reporter = start(&server);
        let said = run_agent(&reporter, 1750, Duration::from_millis(120)).await;
        let summary = reporter.finish().await;
        let stats = summary.stats;
        println!(
            "resets (seed {seed}): {} messages, {} exchanges reset, {} reconciled, {} resent, {} failed listings, \
             {} stored",
            stats.last_seq,
            server.lost_answers(),
            stats.reconciled,
            stats.resent,
            stats.failed_listings,
            server.stored().len()
        );
        assert!(stats.last_seq > 3000, "{stats:?}");
        assert!(stats.reconciled > 100 && stats.resent > 10 && stats.failed_listings > 0, "faults happened: {stats:?}");
        assert_exactly_once(&server, said, &summary);
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_stores_then_answers_after_the_budget_stores_nothing_twice() {
    let server = FaultyServer::new(Fault::LateStores(Duration::from_secs(6)), 0);
    let reporter = start(&server);
    let said = run_agent(&reporter, 95, Duration::from_millis(500)).await;
    let summary = reporter.finish().await;
    let stats = summary.stats;
    println!(
        "late answers: {} messages, {} failed sends, {} reconciled, {} resent, {} stored",
        stats.last_seq,
        stats.failed_sends,
        stats.reconciled,
        stats.resent,
        server.stored().len()
    );
    assert!(stats.last_seq >= 165, "{stats:?}");
    assert!(stats.failed_sends > 0 && stats.reconciled == stats.last_seq as u64, "{stats:?}");
    assert_eq!(stats.resent, 0, "every batch was stored: none is sent twice");
    assert_exactly_once(&server, said, &summary);
}

#[tokio::test(start_paused = true)]
async fn a_server_down_for_30_seconds_then_back_gets_everything_once() {
    // Refused connections (nothing reached it), then resets after sending
    // (anything may have), each for 30 s while the agent works.
    for kind in [TransportKind::Connect, TransportKind::Request] {
        let until = Instant::now() + Duration::from_secs(30);
        let server = FaultyServer::new(Fault::DownUntil { until, kind }, 0);
        let reporter = start(&server);
        let said = run_agent(&reporter, 400, Duration::from_millis(100)).await;
        let summary = reporter.finish().await;
        let stats = summary.stats;
        println!(
            "down 30 s ({kind}): {} messages, {} refused exchanges, {} failed sends, {} failed listings, \
             {} resent, {} stored",
            stats.last_seq,
            server.refused(),
            stats.failed_sends,
            stats.failed_listings,
            stats.resent,
            server.stored().len()
        );
        assert!(stats.failed_sends + stats.failed_listings >= 50, "{stats:?}");
        if kind == TransportKind::Request {
            assert!(stats.failed_listings > 0 && stats.resent > 0, "reconciled before resending: {stats:?}");
        } else {
            assert_eq!(stats.failed_listings + stats.resent, 0, "nothing reached it: resent as is: {stats:?}");
        }
        assert_exactly_once(&server, said, &summary);
    }
}
