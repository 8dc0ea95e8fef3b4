//! [`WsFirst`]: heartbeats and claims over the control channel when it is
//! up and negotiated, everything else and every fallback over HTTP.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use multica_api::{Call, DaemonApi, Error, Method, Reply, Result, RuntimeId};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::ws::{HeartbeatAck, Pushes, WsChannel, WsConfig, WsFailure};
use crate::HyperClient;

/// The RPC method of the batch claim.
const CLAIM_METHOD: &str = "tasks.claim";
/// The heartbeat route, for the error of a runtime the server forgot.
const HEARTBEAT_PATH: &str = "/api/daemon/heartbeat";

/// A [`DaemonApi`] backend that puts heartbeats and batch claims on the
/// daemon WebSocket ([`WsChannel`]) and everything else on `H` (HTTP).
///
/// - A heartbeat goes over the socket when its runtime is attached to the
///   connection that is up, and its acknowledgement is the answer (a
///   `runtime_gone` ack is the HTTP route's `404 runtime not found`); no
///   ack within [`WsConfig::ack_wait`] means HTTP, for that runtime, now.
/// - A batch claim ([`Call::ClaimTasks`]) goes over the socket only when
///   this connection negotiated `rpc-v1`. Not sent, or answered with a
///   non-2xx status (nothing was claimed): HTTP at once. Sent and
///   unanswered, or a 2xx that cannot be read: the server may have
///   dispatched tasks, so no claim at all (socket or HTTP, batch or per
///   runtime) is made for the budget plus grace, and then one claim goes
///   over HTTP — never two claims for one slot. Tasks a lost answer
///   dispatched come back through the server's stale-dispatch recovery.
///   When the hold ends the pushes say [`Push::Lagged`](multica_api::Push::Lagged)
///   (catch up), so a worker claims then rather than at its next poll.
/// - A registration adds its runtimes to the channel; a deregistration
///   first takes them off it (each change reconnects with the new set).
///
/// Layers stack on it as on any backend. Read its pushes
/// ([`WsFirst::pushes`], or hand them to the worker's `wake_on`): besides
/// the wake-ups they carry the requests (model lists, skill imports) that
/// the channel's own heartbeat at connect may have been handed, which the
/// server hands out only once.
#[derive(Debug)]
pub struct WsFirst<H> {
    http: H,
    channel: WsChannel,
    gate: Mutex<ClaimGate>,
    hold: Duration,
}

/// After an uncertain claim: until when no claim is made, and whether the
/// next one must go over HTTP.
#[derive(Debug, Default)]
struct ClaimGate {
    hold_until: Option<Instant>,
    http_next: bool,
}

/// What the gate lets a claim do.
enum Pass {
    /// No claim now: answer "nothing".
    Hold,
    /// The one HTTP claim after a hold.
    Http,
    /// The socket if negotiated, else HTTP.
    Any,
}

impl WsFirst<HyperClient> {
    /// `client` over HTTP and a channel opened on its connections, with no
    /// runtime yet (registrations through this backend add them). Spawns
    /// the channel's task: call within a Tokio runtime.
    pub fn new(client: HyperClient) -> Self {
        Self::with_config(client, WsConfig::default())
    }

    /// [`WsFirst::new`] with the channel's `config`.
    pub fn with_config(client: HyperClient, config: WsConfig) -> Self {
        let channel = WsChannel::open(&client, Vec::new(), config);
        Self::with_channel(client, channel)
    }
}

impl<H: DaemonApi> WsFirst<H> {
    /// `http` for every call the channel does not carry, and `channel`.
    pub fn with_channel(http: H, channel: WsChannel) -> Self {
        let hold = channel.config().rpc_budget + channel.config().rpc_grace;
        Self { http, channel, gate: Mutex::default(), hold }
    }

    /// The control channel.
    pub fn channel(&self) -> &WsChannel {
        &self.channel
    }

    /// The HTTP backend.
    pub fn http(&self) -> &H {
        &self.http
    }

    /// The server's pushes (see [`WsChannel::pushes`]).
    pub fn pushes(&self) -> Pushes {
        self.channel.pushes()
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, ClaimGate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pass(&self) -> Pass {
        let mut gate = self.gate();
        if let Some(until) = gate.hold_until {
            if Instant::now() < until {
                return Pass::Hold;
            }
            gate.hold_until = None;
        }
        if std::mem::take(&mut gate.http_next) {
            Pass::Http
        } else {
            Pass::Any
        }
    }

    fn hold_claims(&self) {
        let mut gate = self.gate();
        gate.hold_until = Some(Instant::now() + self.hold);
        gate.http_next = true;
        // Wake-ups during the hold found nothing to claim with: when it
        // ends, readers of the pushes are told to catch up, so the claim
        // after it waits for no poll.
        let (channel, hold) = (self.channel.clone(), self.hold);
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            channel.hint_catch_up();
        });
    }

    async fn heartbeat(&self, call: Call, runtime_id: &RuntimeId, batch: bool) -> Result<Reply> {
        match self.channel.heartbeat(runtime_id, batch).await {
            Ok(HeartbeatAck::Alive(answer)) => Ok(Reply::Heartbeat(*answer)),
            Ok(HeartbeatAck::Gone) => {
                self.channel.remove_runtimes([runtime_id]);
                Err(Error::from_server_message(Method::Post, HEARTBEAT_PATH, 404, "runtime not found"))
            }
            Err(_) => self.http.call(call).await,
        }
    }

    async fn claim_tasks(&self, call: Call) -> Result<Reply> {
        let mut request = call.to_request()?;
        let body = request.take_body().unwrap_or_default();
        let body = String::from_utf8(body)
            .ok()
            .and_then(|text| RawValue::from_string(text).ok())
            .ok_or_else(|| Error::InvalidArgument("the claim body is not JSON".into()))?;
        match self.channel.rpc(CLAIM_METHOD, &body).await {
            Ok(answer) if multica_api::request::is_success(answer.status) => {
                let bytes = answer.body.as_deref().map_or("", RawValue::get).as_bytes();
                match request.decode_response(answer.status, bytes) {
                    Ok(reply) => Ok(reply),
                    // The server committed whatever it claimed, and we
                    // cannot read it: as uncertain as a lost answer (H5).
                    Err(_) => {
                        self.hold_claims();
                        Ok(Reply::ClaimedTasks(Vec::new()))
                    }
                }
            }
            // A non-2xx claim claimed nothing.
            Ok(_refused) => self.http.call(call).await,
            Err(WsFailure::NotSent(_)) => self.http.call(call).await,
            Err(_uncertain) => {
                self.hold_claims();
                Ok(Reply::ClaimedTasks(Vec::new()))
            }
        }
    }
}

#[multica_api::async_trait]
impl<H: DaemonApi> DaemonApi for WsFirst<H> {
    async fn call(&self, call: Call) -> Result<Reply> {
        match &call {
            Call::SendHeartbeat { runtime_id } => {
                let runtime_id = runtime_id.clone();
                self.heartbeat(call, &runtime_id, false).await
            }
            Call::SendHeartbeatWith(request) => {
                let (runtime_id, batch) = (request.runtime_id.clone(), request.supports_batch_import);
                self.heartbeat(call, &runtime_id, batch).await
            }
            Call::ClaimTasks(_) | Call::ClaimTask { .. } => match self.pass() {
                Pass::Hold => Ok(match call {
                    Call::ClaimTask { .. } => Reply::Claimed(None),
                    _ => Reply::ClaimedTasks(Vec::new()),
                }),
                Pass::Http => self.http.call(call).await,
                Pass::Any if matches!(call, Call::ClaimTasks(_)) => self.claim_tasks(call).await,
                Pass::Any => self.http.call(call).await,
            },
            Call::Register(_) => {
                let reply = self.http.call(call).await?;
                if let Reply::Registered(answer) = &reply {
                    self.channel.add_runtimes(answer.runtimes.iter().map(|runtime| &runtime.id));
                }
                Ok(reply)
            }
            // Released first: no heartbeat of the channel may follow the
            // deregistration and bring a runtime back online.
            Call::Deregister { runtime_ids } => {
                self.channel.release(runtime_ids).await;
                self.http.call(call).await
            }
            Call::DeregisterWith(request) => {
                self.channel.release(&request.runtime_ids).await;
                self.http.call(call).await
            }
            _ => self.http.call(call).await,
        }
    }

    fn drop_idle_connections(&self) {
        self.http.drop_idle_connections();
    }
}
