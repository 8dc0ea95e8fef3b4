//! Rules of the real server the fake follows over HTTP, beyond the recorded
//! transcript: Go's body decoding, integer widths, IDs, pairing links and
//! approval, CORS with a configured frontend, and the issue control route.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use common::{world_with, World};
use multica_api::{DaemonApiExt, IssueId, TaskStatus};
use multica_mock::{serve, MockDaemon, MockServer};

struct Served {
    w: World,
    server: MockServer,
    client: Client<HttpConnector, Full<Bytes>>,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn served(mock: MockDaemon) -> Served {
    let w = world_with(mock).await;
    let server = serve(w.mock.clone()).await.unwrap();
    Served { w, server, client: Client::builder(TokioExecutor::new()).build_http() }
}

impl Served {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Answer {
        let mut request = Request::builder().method(method).uri(format!("{}{path}", self.server.base_url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.client.request(request.body(Full::new(body.into())).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, headers, body }
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        self.send("POST", path, &[], body.to_owned()).await
    }

    fn task_path(&self, task: &str, action: &str) -> String {
        format!("/api/daemon/tasks/{task}/{action}")
    }
}

#[tokio::test]
async fn bodies_are_read_as_gos_decoder_reads_them() {
    let s = served(MockDaemon::new()).await;
    let ws = s.w.workspace_id.as_str().to_owned();
    // Keys ignore case, the last of a repeated key wins, trailing bytes are ignored.
    let body = format!(
        r#"{{"WORKSPACE_ID":"{ws}","daemon_id":"first","Daemon_Id":"second","runtimes":[{{"Type":"gemini"}}]}} trailing"#
    );
    let answer = s.post("/api/daemon/register", &body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let runtime = &answer.json()["runtimes"][0];
    assert_eq!((runtime["daemon_id"].as_str(), runtime["provider"].as_str()), (Some("second"), Some("gemini")));
    // An array where an object belongs is refused, at any depth.
    for body in ["[]", r#"{"runtimes":[["x"]]}"#, r#"["w","d","h",[]]"#] {
        let answer = s.post("/api/daemon/register", body).await;
        assert_eq!((answer.status, answer.json()["error"].as_str()), (400, Some("invalid request body")), "{body}");
    }
    // null is an empty object: the handler's own validation answers.
    let answer = s.post("/api/daemon/heartbeat", "null").await;
    assert_eq!((answer.status, answer.json()["error"].as_str()), (400, Some("runtime_id is required")));
}

#[tokio::test]
async fn message_batches_have_no_size_cap_and_seq_is_32_bits() {
    let s = served(MockDaemon::new()).await;
    let task = s.w.dispatched("big").await;
    // A 9 MiB batch is stored.
    let content = "x".repeat(9 << 20);
    let body = json!({"messages": [{"seq": 1, "type": "text", "content": content}]}).to_string();
    let answer = s.post(&s.task_path(task.as_str(), "messages"), &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(s.w.mock.messages(&task)[0].content.len(), 9 << 20);
    // seq beyond 32 bits is stored and listed as the column keeps it.
    let body = json!({"messages": [{"seq": 4_294_967_297_i64, "type": "text"}, {"seq": 2_147_483_648_i64}]});
    s.post(&s.task_path(task.as_str(), "messages"), &body.to_string()).await;
    let listed = s.send("GET", &s.task_path(task.as_str(), "messages"), &[], "").await.json();
    let seqs: Vec<i64> = listed.as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [-2_147_483_648, 1, 1]);
}

#[tokio::test]
async fn ids_are_read_as_uuids() {
    let s = served(MockDaemon::new()).await;
    let task = s.w.dispatched("ids").await;
    let upper = task.as_str().to_uppercase();
    let plain: String = task.as_str().chars().filter(|c| *c != '-').collect();
    for id in [upper.as_str(), plain.as_str()] {
        let answer = s.send("GET", &s.task_path(id, "status"), &[], "").await;
        assert_eq!((answer.status, answer.json()), (200, json!({"status": "dispatched"})), "{id}");
    }
    let encoded = task.as_str().replace('-', "%2D");
    let answer = s.send("GET", &s.task_path(&encoded, "status"), &[], "").await;
    assert_eq!((answer.status, answer.json()), (404, json!({"error": "task not found"})));
    // The same rule in the body: a runtime ID in upper case heartbeats.
    let body = json!({"runtime_id": format!("  {}  ", s.w.runtime_id.as_str().to_uppercase())});
    assert_eq!(s.post("/api/daemon/heartbeat", &body.to_string()).await.status, 200);
    assert_eq!(s.w.mock.heartbeats(&s.w.runtime_id), 1);
}

#[tokio::test]
async fn pairing_links_follow_the_frontend_url_and_users_approve() {
    let mock = MockDaemon::builder().token("pat").frontend_url("https://app.example").build().unwrap();
    let s = served(mock).await;
    let request = r#"{"daemon_id":"d","device_name":"h","runtime_name":"Claude","runtime_type":"claude"}"#;
    let created = s.post("/api/daemon/pairing-sessions", request).await.json();
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{token}");
    assert_eq!(created["link_url"], format!("https://app.example/pair/local?token={token}"));

    let approve = format!("/api/daemon/pairing-sessions/{token}/approve");
    let body = json!({"workspace_id": s.w.workspace_id}).to_string();
    let refused = s.send("POST", &approve, &[("authorization", "Bearer nope")], body.clone()).await;
    assert_eq!((refused.status, refused.json()), (401, json!({"error": "invalid token"})));
    assert_eq!(s.send("GET", &approve, &[], "").await.status, 405);
    let unknown = s
        .send("POST", "/api/daemon/pairing-sessions/nope/approve", &[("authorization", "Bearer pat")], body.clone())
        .await;
    assert_eq!((unknown.status, unknown.json()), (404, json!({"error": "pairing session not found"})));
    let approved = s.send("POST", &approve, &[("authorization", "Bearer pat")], body).await;
    assert_eq!((approved.status, &approved.json()["status"]), (200, &json!("approved")));
    let claim = format!("/api/daemon/pairing-sessions/{token}/claim");
    assert_eq!(s.post(&claim, "{}").await.json()["status"], "claimed");
    assert_eq!(s.post(&claim, "{}").await.json()["status"], "claimed", "claiming again answers the session");
}

#[tokio::test]
async fn pending_sessions_expire_and_approved_ones_stay_claimable() {
    let s = served(MockDaemon::new()).await;
    let request = r#"{"daemon_id":"d","device_name":"h","runtime_name":"Claude","runtime_type":"claude"}"#;
    let pending = s.post("/api/daemon/pairing-sessions", request).await.json()["token"].as_str().unwrap().to_owned();
    let approved = s.post("/api/daemon/pairing-sessions", request).await.json()["token"].as_str().unwrap().to_owned();
    s.w.mock.approve_pairing(&approved, &s.w.workspace_id).unwrap();
    s.w.mock.advance_clock(std::time::Duration::from_secs(601));
    let read = s.send("GET", &format!("/api/daemon/pairing-sessions/{pending}"), &[], "").await.json();
    assert_eq!(read["status"], "expired");
    let refused = s.post(&format!("/api/daemon/pairing-sessions/{pending}/claim"), "{}").await;
    assert_eq!((refused.status, refused.json()), (400, json!({"error": "pairing session is not approved"})));
    let claimed = s.post(&format!("/api/daemon/pairing-sessions/{approved}/claim"), "{}").await;
    assert_eq!((claimed.status, &claimed.json()["status"]), (200, &json!("claimed")));
}

#[tokio::test]
async fn cors_allows_only_the_frontend_origin() {
    let mock = MockDaemon::builder().frontend_url("https://app.example").build().unwrap();
    let s = served(mock).await;
    let preflight = [("origin", "https://app.example"), ("access-control-request-method", "post")];
    let answer = s.send("OPTIONS", "/api/daemon/heartbeat", &preflight, "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["access-control-allow-origin"], "https://app.example");
    assert_eq!(answer.headers["access-control-allow-methods"], "POST");
    assert_eq!(answer.headers["access-control-max-age"], "300");
    let foreign = [("origin", "http://localhost:3000"), ("access-control-request-method", "POST")];
    let answer = s.send("OPTIONS", "/api/daemon/heartbeat", &foreign, "").await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
    let answer = s.send("GET", "/health", &[("origin", "http://evil.example")], "").await;
    assert_eq!(answer.body.as_ref(), br#"{"status":"ok"}"#);
    assert!(answer.headers.get("access-control-allow-origin").is_none());
    assert_eq!(answer.headers["vary"], "Origin");
}

#[tokio::test]
async fn the_issue_control_route_closes_issues() {
    let s = served(MockDaemon::new()).await;
    let task = s.w.enqueue("I-1", 5);
    let answer = s.post("/_mock/issues/I-1", r#"{"status":"done"}"#).await;
    assert_eq!((answer.status, answer.json()), (200, json!({"id": "I-1", "status": "done"})));
    assert_eq!(s.w.mock.issue_status(&IssueId::new("I-1")).as_deref(), Some("done"));
    assert!(s.w.mock.claim_task(&s.w.runtime_id).await.unwrap().is_none());
    assert_eq!(s.w.mock.task_status(&task), Some(TaskStatus::Cancelled));
    assert_eq!(s.post("/_mock/issues/I-1", r#"{"state":"done"}"#).await.status, 400);
    let state = s.send("GET", "/_mock/state", &[], "").await.json();
    assert_eq!(state["issues"], json!([{"id": "I-1", "status": "done", "number": 1}]));
}

/// Go's `net/http` sets `Content-Length` only on an answer that fit in its
/// 2048-byte buffer; a larger one without an explicit length is chunked. At
/// 3c93ebaf1c the handlers stream their JSON; HEAD's set the length.
#[tokio::test]
async fn answers_larger_than_gos_buffer_are_chunked_where_go_chunks_them() {
    let s = served(MockDaemon::new()).await;
    let pending = format!("/api/daemon/runtimes/{}/tasks/pending", s.w.runtime_id);
    let small = s.send("GET", &pending, &[], Bytes::new()).await;
    assert_eq!(small.headers.get("content-length").map(|v| v.to_str().unwrap()), Some("3"), "[] and a newline");
    assert!(small.headers.get("transfer-encoding").is_none());
    for n in 0..12 {
        s.w.enqueue(&format!("issue-{n}"), n);
    }
    let large = s.send("GET", &pending, &[], Bytes::new()).await;
    assert!(large.body.len() > 2048);
    assert_eq!(large.headers.get("transfer-encoding").map(|v| v.to_str().unwrap()), Some("chunked"));
    assert!(large.headers.get("content-length").is_none());
    assert_eq!(large.json().as_array().map(Vec::len), Some(12), "the whole body arrives");

    let head =
        served(MockDaemon::builder().server_version(multica_mock::ServerVersion::Head).token("mul_t").build().unwrap())
            .await;
    for n in 0..12 {
        head.w.enqueue(&format!("issue-{n}"), n);
    }
    let pending = format!("/api/daemon/runtimes/{}/tasks/pending", head.w.runtime_id);
    let large = head.send("GET", &pending, &[("authorization", "Bearer mul_t")], Bytes::new()).await;
    assert!(large.body.len() > 2048);
    assert_eq!(large.headers.get("content-length").and_then(|v| v.to_str().ok()?.parse().ok()), Some(large.body.len()));
    assert!(large.headers.get("transfer-encoding").is_none());
}
