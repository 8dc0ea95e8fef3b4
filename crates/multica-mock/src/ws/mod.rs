//! The daemon WebSocket control channel, `GET /api/daemon/ws`, as server
//! HEAD 1cc46b2697 has it (`../shared/real-server-head/WS-CONTRACT.md`):
//! the handshake and its refusals ([`handshake`]), one session per upgraded
//! connection (heartbeats, the `tasks.claim` RPC, ping/pong, deadlines),
//! and the hub the data's changes push hints through.

use std::time::Duration;

mod handshake;
mod hub;
mod session;

pub(crate) use handshake::handshake;
pub(crate) use hub::{ChannelUser, Hub};

/// The largest message a client may send (assembled); above it the server
/// closes with 1009.
pub(crate) const READ_LIMIT: usize = 64 * 1024;
/// Frames queued per connection before acks are dropped and a push evicts.
pub(crate) const SEND_QUEUE: usize = 16;
/// RPCs running at once per connection; the next one gets 429.
pub(crate) const MAX_IN_FLIGHT_RPC: usize = 8;
/// The server pings this often.
pub(crate) const PING_PERIOD: Duration = Duration::from_secs(54);
/// The read deadline from connect and from each pong (nothing else extends it).
pub(crate) const PONG_WAIT: Duration = Duration::from_secs(60);
/// Each frame must be written within this.
pub(crate) const WRITE_WAIT: Duration = Duration::from_secs(10);
/// What every `ok` heartbeat ack advertises.
pub(crate) const SERVER_CAPABILITIES: &[&str] = &["rpc-v1"];
