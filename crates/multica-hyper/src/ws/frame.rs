//! The channel's JSON frames (WS contract §2): one `{"type", "payload"}`
//! object per text message, both ways. Unknown types and fields are ignored.

use multica_api::{HeartbeatResponse, PendingRuntimeRequest, PendingSkillImport, PendingUpdate};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Heartbeat, daemon → server.
pub(crate) const HEARTBEAT: &str = "daemon:heartbeat";
/// An RPC request, daemon → server.
pub(crate) const RPC_REQUEST: &str = "daemon:rpc_request";
/// The capability an ack names when the server serves RPCs.
pub(crate) const RPC_V1: &str = "rpc-v1";

/// An outgoing frame.
#[derive(Serialize)]
struct Outgoing<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: P,
}

#[derive(Serialize)]
struct HeartbeatPayload<'a> {
    runtime_id: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    supports_batch_import: bool,
}

#[derive(Serialize)]
struct RpcRequestPayload<'a> {
    request_id: &'a str,
    method: &'a str,
    body: &'a RawValue,
    timeout_ms: u64,
}

/// `daemon:heartbeat` for one runtime.
pub(crate) fn heartbeat(runtime_id: &str, supports_batch_import: bool) -> String {
    encode(HEARTBEAT, HeartbeatPayload { runtime_id, supports_batch_import })
}

/// `daemon:rpc_request`.
pub(crate) fn rpc_request(request_id: &str, method: &str, body: &RawValue, timeout_ms: u64) -> String {
    encode(RPC_REQUEST, RpcRequestPayload { request_id, method, body, timeout_ms })
}

fn encode<P: Serialize>(kind: &str, payload: P) -> String {
    // Strings and a raw JSON value cannot fail to serialize.
    serde_json::to_string(&Outgoing { kind, payload }).unwrap_or_default()
}

/// An incoming frame, payload still raw.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// What the server sent, decoded.
#[derive(Debug)]
pub(crate) enum ServerFrame {
    Ack(Ack),
    RpcResponse(RpcResponse),
    TaskAvailable { runtime_id: String, task_id: Option<String> },
    PendingWork { runtime_id: String, kind: Option<String> },
    RuntimeProfilesChanged { workspace_id: String, runtime_profile_id: Option<String> },
    WorkspacesChanged,
}

/// `daemon:heartbeat_ack`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Ack {
    pub(crate) runtime_id: String,
    pub(crate) status: String,
    pub(crate) server_capabilities: Vec<String>,
    pub(crate) runtime_gone: bool,
    pub(crate) pending_update: Option<PendingUpdate>,
    pub(crate) pending_model_list: Option<PendingRuntimeRequest>,
    pub(crate) pending_local_skills: Option<PendingRuntimeRequest>,
    pub(crate) pending_local_skill_import: Option<PendingSkillImport>,
    pub(crate) pending_local_skill_imports: Vec<PendingSkillImport>,
}

impl Ack {
    pub(crate) fn is_gone(&self) -> bool {
        self.runtime_gone || self.status == "runtime_gone"
    }

    pub(crate) fn offers_rpc(&self) -> bool {
        self.server_capabilities.iter().any(|capability| capability == RPC_V1)
    }

    /// Whether it hands out a pending request.
    pub(crate) fn has_requests(&self) -> bool {
        self.pending_update.is_some()
            || self.pending_model_list.is_some()
            || self.pending_local_skills.is_some()
            || self.pending_local_skill_import.is_some()
            || !self.pending_local_skill_imports.is_empty()
    }

    /// The ack as the HTTP heartbeat's answer (same server function).
    pub(crate) fn into_heartbeat_response(self) -> HeartbeatResponse {
        let mut answer = HeartbeatResponse::default();
        answer.status = if self.status.is_empty() { "ok".to_owned() } else { self.status };
        answer.pending_update = self.pending_update;
        answer.pending_model_list = self.pending_model_list;
        answer.pending_local_skills = self.pending_local_skills;
        answer.pending_local_skill_import = self.pending_local_skill_import;
        answer.pending_local_skill_imports = self.pending_local_skill_imports;
        answer
    }
}

/// `daemon:rpc_response`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RpcResponse {
    pub(crate) request_id: String,
    pub(crate) status: u16,
    pub(crate) body: Option<Box<RawValue>>,
    pub(crate) error: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RuntimeHint {
    runtime_id: String,
    task_id: Option<String>,
    kind: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ProfileHint {
    workspace_id: String,
    runtime_profile_id: Option<String>,
}

/// Decodes a server message; `None` for what a client ignores (not JSON,
/// unknown type, a payload missing what the hint needs).
pub(crate) fn decode(text: &[u8]) -> Option<ServerFrame> {
    let frame: Incoming<'_> = serde_json::from_slice(text).ok()?;
    let payload = frame.payload.map_or("{}", RawValue::get);
    Some(match &*frame.kind {
        "daemon:heartbeat_ack" => ServerFrame::Ack(serde_json::from_str(payload).ok()?),
        "daemon:rpc_response" => ServerFrame::RpcResponse(serde_json::from_str(payload).ok()?),
        "daemon:task_available" => {
            let hint: RuntimeHint = serde_json::from_str(payload).ok()?;
            (!hint.runtime_id.is_empty()).then_some(())?;
            ServerFrame::TaskAvailable {
                runtime_id: hint.runtime_id,
                task_id: hint.task_id.filter(|id| !id.is_empty()),
            }
        }
        "daemon:pending_work" => {
            let hint: RuntimeHint = serde_json::from_str(payload).ok()?;
            (!hint.runtime_id.is_empty()).then_some(())?;
            ServerFrame::PendingWork { runtime_id: hint.runtime_id, kind: hint.kind.filter(|kind| !kind.is_empty()) }
        }
        "daemon:runtime_profiles_changed" => {
            let hint: ProfileHint = serde_json::from_str(payload).ok()?;
            (!hint.workspace_id.is_empty()).then_some(())?;
            ServerFrame::RuntimeProfilesChanged {
                workspace_id: hint.workspace_id,
                runtime_profile_id: hint.runtime_profile_id.filter(|id| !id.is_empty()),
            }
        }
        "daemon:workspaces_changed" => ServerFrame::WorkspacesChanged,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_are_the_contracts() {
        assert_eq!(
            heartbeat("a1", true),
            r#"{"type":"daemon:heartbeat","payload":{"runtime_id":"a1","supports_batch_import":true}}"#
        );
        assert_eq!(heartbeat("a1", false), r#"{"type":"daemon:heartbeat","payload":{"runtime_id":"a1"}}"#);
        let body = RawValue::from_string(r#"{"max_tasks":1}"#.into()).unwrap();
        assert_eq!(
            rpc_request("r1", "tasks.claim", &body, 5000),
            r#"{"type":"daemon:rpc_request","payload":{"request_id":"r1","method":"tasks.claim","body":{"max_tasks":1},"timeout_ms":5000}}"#
        );
    }

    #[test]
    fn relayed_frames_with_event_ids_and_reordered_keys_decode() {
        let relayed =
            br#"{"payload":{"task_id":"t","runtime_id":"r"},"event_id":"01J","type":"daemon:task_available"}"#;
        assert!(matches!(decode(relayed), Some(ServerFrame::TaskAvailable { runtime_id, task_id: Some(task) })
            if runtime_id == "r" && task == "t"));
        let hint = br#"{"type":"daemon:task_available","payload":{"runtime_id":"r"}}"#;
        assert!(matches!(decode(hint), Some(ServerFrame::TaskAvailable { task_id: None, .. })));
        assert!(decode(b"not json").is_none());
        assert!(decode(br#"{"type":"daemon:something_new","payload":{}}"#).is_none());
        assert!(decode(br#"{"type":"daemon:task_available","payload":{}}"#).is_none());
        assert!(matches!(
            decode(br#"{"type":"daemon:workspaces_changed","payload":{}}"#),
            Some(ServerFrame::WorkspacesChanged)
        ));
    }

    #[test]
    fn acks_tell_gone_rpc_and_requests() {
        let ack = br#"{"type":"daemon:heartbeat_ack","payload":{"runtime_id":"r","status":"ok","server_capabilities":["rpc-v1"],"pending_model_list":{"id":"m"}}}"#;
        let Some(ServerFrame::Ack(ack)) = decode(ack) else { panic!("an ack") };
        assert!(ack.offers_rpc() && !ack.is_gone() && ack.has_requests());
        assert_eq!(ack.into_heartbeat_response().pending_model_list.unwrap().id.as_str(), "m");
        let gone = br#"{"type":"daemon:heartbeat_ack","payload":{"runtime_id":"r","status":"runtime_gone","runtime_gone":true}}"#;
        let Some(ServerFrame::Ack(gone)) = decode(gone) else { panic!("an ack") };
        assert!(gone.is_gone() && !gone.offers_rpc());
    }
}
