//! The call log: every call the fake received, in order, with its arguments.

use std::collections::VecDeque;

use multica_api::Call;
use serde::Serialize;

/// How a call reached the fake (`"transport"` in `GET /_mock/calls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transport {
    /// An HTTP request to the served fake.
    Http,
    /// A frame on the daemon WebSocket channel (`GET /api/daemon/ws`): a
    /// `daemon:heartbeat` or a `tasks.claim` RPC.
    Ws,
    /// The in-process API ([`multica_api::DaemonApi`] on [`crate::MockDaemon`]).
    InProcess,
}

impl Transport {
    /// `http`, `ws` or `in_process`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Ws => "ws",
            Transport::InProcess => "in_process",
        }
    }
}

/// How many calls the log keeps by default. Bounded so a long-running
/// server or a benchmark doing millions of heartbeats cannot grow without
/// limit; the oldest entries are dropped first and [`crate::MockDaemon::call_count`] still
/// counts them.
pub const DEFAULT_CALL_LOG_CAPACITY: usize = 10_000;

/// A bounded, ordered record of calls.
#[derive(Debug)]
pub(crate) struct CallLog {
    calls: VecDeque<(Call, Transport)>,
    capacity: usize,
    total: u64,
}

impl CallLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { calls: VecDeque::new(), capacity, total: 0 }
    }

    /// Whether calls are kept at all (capacity 0 turns the log off; the
    /// total is still counted).
    pub(crate) fn is_recording(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn push(&mut self, call: Call, transport: Transport) {
        if self.calls.len() == self.capacity {
            self.calls.pop_front();
        }
        self.calls.push_back((call, transport));
    }

    /// Counts a call whether or not it is kept.
    pub(crate) fn count(&mut self) {
        self.total += 1;
    }

    pub(crate) fn calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.iter().map(|(call, _)| call)
    }

    /// The calls with the transport that carried each.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &(Call, Transport)> {
        self.calls.iter()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn clear(&mut self) {
        self.calls.clear();
    }
}
