//! The wire contract (`docs/protocol-3c93ebaf1c.md`) of the fake's HTTP
//! server, checked with raw hyper requests (not the SDK client), so status
//! codes, bodies and headers are tested on their own.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use common::{assert_same_error, world, world_with, World};
use multica_api::{request, DaemonApiExt, Endpoint, Error, TaskId, TransportKind};
use multica_mock::{serve, serve_with, AgentSeed, MockDaemon, MockServer, ServerConfig, TaskSeed};

/// A raw HTTP client against one served fake.
struct Raw {
    client: Client<HttpConnector, Full<Bytes>>,
    server: MockServer,
}

/// One answer: status, headers, body bytes.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        assert_eq!(self.content_type(), "application/json", "{:?}", self.body);
        assert!(self.body.ends_with(b"\n"), "Go's json.Encoder ends with a newline");
        serde_json::from_slice(&self.body).unwrap()
    }

    fn content_type(&self) -> &str {
        self.headers.get("content-type").map(|v| v.to_str().unwrap()).unwrap_or("")
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    /// Asserts a handler error: status, JSON type, exact bytes.
    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!((self.status, self.text()), (status, format!("{{\"error\":\"{message}\"}}\n").as_str()));
        assert_eq!(self.content_type(), "application/json");
    }
}

impl Raw {
    async fn start(mock: MockDaemon) -> Raw {
        let server = serve(mock).await.unwrap();
        Raw { client: Client::builder(TokioExecutor::new()).build_http(), server }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> Answer {
        self.try_send(method, path, body.map(|b| b.as_bytes().to_vec()), token).await.unwrap()
    }

    async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> Result<Answer, hyper_util::client::legacy::Error> {
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", self.server.base_url()));
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
        let response = self.client.request(request).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Ok(Answer { status, headers, body })
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, Some(&body.to_string()), None).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, None).await
    }
}

async fn served() -> (World, Raw) {
    let w = world().await;
    let raw = Raw::start(w.mock.clone()).await;
    (w, raw)
}

#[tokio::test]
async fn register_over_http() {
    let (w, raw) = served().await;
    let ws = w.workspace_id.as_str();
    raw.post("/api/daemon/register", json!({"workspace_id": ws, "runtimes": [{}]}))
        .await
        .assert_error(400, "daemon_id is required");
    raw.post("/api/daemon/register", json!({"daemon_id": "d", "runtimes": [{}]}))
        .await
        .assert_error(400, "workspace_id is required");
    raw.post("/api/daemon/register", json!({"workspace_id": ws, "daemon_id": "d", "runtimes": []}))
        .await
        .assert_error(400, "at least one runtime is required");
    raw.post("/api/daemon/register", json!({"workspace_id": "nope", "daemon_id": "d", "runtimes": [{}]}))
        .await
        .assert_error(404, "workspace not found");

    let body = json!({"workspace_id": ws, "daemon_id": "d1", "device_name": "host",
        "runtimes": [{"name": "", "type": "claude", "version": "1.2", "status": ""}, {"type": "", "status": "offline"}]});
    let answer = raw.post("/api/daemon/register", body).await;
    assert_eq!(answer.status, 200);
    let value = answer.json();
    let first = &value["runtimes"][0];
    assert_eq!(first["id"], w.runtime_id.as_str(), "upserted by workspace+daemon+provider");
    assert_eq!(first["name"], "claude (host)");
    assert_eq!(first["runtime_mode"], "local");
    assert_eq!(first["daemon_id"], "d1");
    assert_eq!(first["metadata"], json!({"version": "1.2"}));
    assert_eq!(first["created_at"], "2026-01-01T00:00:00Z");
    let second = &value["runtimes"][1];
    assert_eq!(
        (&second["provider"], &second["status"], &second["name"]),
        (&json!("unknown"), &json!("offline"), &json!("unknown (host)"))
    );
    assert_eq!(value["repos"], json!([{"url": "https://example.com/app.git", "description": "the app"}]));
}

#[tokio::test]
async fn heartbeat_deregister_and_pings_over_http() {
    let (w, raw) = served().await;
    let rt = w.runtime_id.as_str();
    raw.post("/api/daemon/heartbeat", json!({})).await.assert_error(400, "runtime_id is required");
    raw.post("/api/daemon/heartbeat", json!({"runtime_id": "ghost"})).await.assert_error(500, "heartbeat failed");
    let ping = w.mock.request_ping(&w.runtime_id).unwrap();
    let answer = raw.post("/api/daemon/heartbeat", json!({"runtime_id": rt})).await;
    assert_eq!(answer.json(), json!({"status": "ok", "pending_ping": {"id": ping.as_str()}}));
    let answer = raw.post("/api/daemon/heartbeat", json!({"runtime_id": rt})).await;
    assert_eq!(answer.text(), "{\"status\":\"ok\"}\n", "no pending_ping key once handed out");

    let path = format!("/api/daemon/runtimes/{rt}/ping/{}/result", ping.as_str());
    let answer = raw.post(&path, json!({"status": "failed", "error": "no", "duration_ms": 3})).await;
    assert_eq!(answer.json(), json!({"status": "ok"}));
    assert_eq!(w.mock.snapshot().pings[0].status, "failed");
    let answer = raw.post("/api/daemon/runtimes/x/ping/y/result", json!({"status": "completed"})).await;
    assert_eq!(answer.json(), json!({"status": "ok"}));

    raw.post("/api/daemon/deregister", json!({"runtime_ids": []})).await.assert_error(400, "runtime_ids is required");
    let answer = raw.post("/api/daemon/deregister", json!({"runtime_ids": [rt, "ghost"]})).await;
    assert_eq!(answer.json(), json!({"status": "ok"}));
    assert_eq!(w.mock.runtime_by_id(&w.runtime_id).unwrap().status.as_str(), "offline");
}

#[tokio::test]
async fn claim_and_task_lifecycle_over_http() {
    let (w, raw) = served().await;
    let rt = w.runtime_id.as_str();
    let claim = format!("/api/daemon/runtimes/{rt}/tasks/claim");
    assert_eq!(raw.post(&claim, json!({})).await.text(), "{\"task\":null}\n");
    assert_eq!(raw.post("/api/daemon/runtimes/ghost/tasks/claim", json!({})).await.text(), "{\"task\":null}\n");

    let low = w.enqueue("i1", 1);
    let high = w.enqueue("i2", 2);
    let pending = raw.get(&format!("/api/daemon/runtimes/{rt}/tasks/pending")).await.json();
    assert_eq!(pending.as_array().unwrap().len(), 2);
    assert_eq!(pending[0]["id"], high.as_str());

    let task = raw.post(&claim, json!({})).await.json()["task"].clone();
    assert_eq!(task["id"], high.as_str());
    assert_eq!(task["status"], "dispatched");
    assert_eq!(task["workspace_id"], w.workspace_id.as_str());
    assert_eq!(task["agent"]["skills"][0]["files"][0]["path"], "a.md");
    assert_eq!(task["repos"][0]["url"], "https://example.com/app.git");
    assert!(task.get("prior_session_id").is_none(), "empty optional fields are omitted");

    let id = high.as_str();
    let base = format!("/api/daemon/tasks/{id}");
    raw.post(&format!("{base}/complete"), json!({"output": "x"}))
        .await
        .assert_error(400, "complete task: no rows in result set");
    let started = raw.post(&format!("{base}/start"), json!({})).await.json();
    assert_eq!((&started["id"], &started["status"]), (&json!(id), &json!("running")));
    raw.post(&format!("{base}/start"), json!({})).await.assert_error(400, "start task: no rows in result set");
    assert_eq!(raw.get(&format!("{base}/status")).await.json(), json!({"status": "running"}));
    let progress = raw.post(&format!("{base}/progress"), json!({"summary": "s", "step": 1, "total": 2})).await;
    assert_eq!(progress.json(), json!({"status": "ok"}));
    let done = raw
        .post(
            &format!("{base}/complete"),
            json!({"output": "out", "session_id": "s1", "work_dir": "/w", "branch_name": "b"}),
        )
        .await
        .json();
    let result = json!({"output": "out", "pr_url": "", "session_id": "s1", "work_dir": "/w"});
    assert_eq!((&done["status"], &done["result"]), (&json!("completed"), &result));

    let low_base = format!("/api/daemon/tasks/{}", low.as_str());
    raw.post(&format!("{low_base}/fail"), json!({"error": "e"}))
        .await
        .assert_error(400, "fail task: no rows in result set");
    raw.post(&claim, json!({})).await;
    let failed = raw.post(&format!("{low_base}/fail"), json!({"error": "e"})).await.json();
    assert_eq!((&failed["status"], &failed["error"]), (&json!("failed"), &json!("e")));

    raw.get("/api/daemon/tasks/ghost/status").await.assert_error(404, "task not found");
    raw.post("/api/daemon/tasks/ghost/progress", json!({})).await.json();
}

#[tokio::test]
async fn prior_session_over_http() {
    let (w, raw) = served().await;
    let id = w.dispatched("issue").await;
    w.mock.start_task(&id).await.unwrap();
    let base = format!("/api/daemon/tasks/{}", id.as_str());
    raw.post(&format!("{base}/complete"), json!({"output": "o", "session_id": "sess", "work_dir": "/wd"})).await;
    w.enqueue("issue", 0);
    let task = raw.post(&format!("/api/daemon/runtimes/{}/tasks/claim", w.runtime_id), json!({})).await.json();
    assert_eq!((&task["task"]["prior_session_id"], &task["task"]["prior_work_dir"]), (&json!("sess"), &json!("/wd")));
}

#[tokio::test]
async fn messages_and_usage_over_http() {
    let (w, raw) = served().await;
    let id = w.dispatched("i").await;
    let path = format!("/api/daemon/tasks/{}/messages", id.as_str());
    raw.post("/api/daemon/tasks/ghost/messages", json!({"messages": [{"seq": 1, "type": "text", "content": "x"}]}))
        .await
        .assert_error(404, "task not found");
    assert_eq!(
        raw.post("/api/daemon/tasks/ghost/messages", json!({"messages": []})).await.json(),
        json!({"status": "ok"})
    );
    let batch = json!({"messages": [
        {"seq": 2, "type": "tool_use", "tool": "bash", "input": {"cmd": "ls"}},
        {"seq": 1, "type": "text", "content": "hi"}]});
    assert_eq!(raw.post(&path, batch).await.json(), json!({"status": "ok"}));
    let listed = raw.get(&path).await.json();
    assert_eq!(
        listed,
        json!([
            {"task_id": id.as_str(), "seq": 1, "type": "text", "content": "hi"},
            {"task_id": id.as_str(), "seq": 2, "type": "tool_use", "tool": "bash", "input": {"cmd": "ls"}}
        ])
    );
    assert_eq!(raw.get("/api/daemon/tasks/ghost/messages").await.text(), "[]\n");

    let usage = format!("/api/daemon/runtimes/{}/usage", w.runtime_id);
    let entry = |date: &str, n: i64| {
        json!({"date": date, "provider": "claude", "model": "m", "input_tokens": n,
        "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0})
    };
    raw.post(&usage, json!({"entries": [entry("2026-01-05", 1), entry("bad", 2)]})).await.json();
    raw.post(&usage, json!({"entries": [entry("2026-01-05", 7)]})).await.json();
    let rows = w.mock.usage_of(&w.runtime_id);
    assert_eq!((rows.len(), rows[0].input_tokens), (1, 7));
    assert_eq!(
        raw.post("/api/daemon/runtimes/ghost/usage", json!({"entries": []})).await.json(),
        json!({"status": "ok"})
    );
}

#[tokio::test]
async fn list_workspaces_auth_over_http() {
    let w = world_with(MockDaemon::builder().token("secret").build().unwrap()).await;
    let raw = Raw::start(w.mock.clone()).await;
    let missing = raw.send("GET", "/api/workspaces", None, None).await;
    assert_eq!((missing.status, missing.text()), (401, "{\"error\":\"missing authorization header\"}\n"));
    assert_eq!(missing.content_type(), "text/plain; charset=utf-8");
    let wrong = raw.send("GET", "/api/workspaces", None, Some("nope")).await;
    assert_eq!((wrong.status, wrong.text()), (401, "{\"error\":\"invalid token\"}\n"));
    let listed = raw.send("GET", "/api/workspaces", None, Some("secret")).await.json();
    assert_eq!(listed[0]["id"], w.workspace_id.as_str());
    for key in
        ["name", "slug", "description", "context", "settings", "repos", "issue_prefix", "created_at", "updated_at"]
    {
        assert!(listed[0].get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn pairing_over_http() {
    let (w, raw) = served().await;
    let request = json!({"daemon_id": "d", "device_name": "h", "runtime_name": "Claude", "runtime_type": "claude"});
    let created = raw.post("/api/daemon/pairing-sessions", request).await;
    assert_eq!(created.status, 201);
    let session = created.json();
    assert_eq!((&session["status"], &session["workspace_id"]), (&json!("pending"), &Value::Null));
    let token = session["token"].as_str().unwrap().to_owned();
    raw.get("/api/daemon/pairing-sessions/nope").await.assert_error(404, "pairing session not found");
    raw.post(&format!("/api/daemon/pairing-sessions/{token}/claim"), json!({}))
        .await
        .assert_error(400, "pairing session is not approved");
    let approved =
        raw.post(&format!("/_mock/pairing-sessions/{token}/approve"), json!({"workspace_id": w.workspace_id})).await;
    assert_eq!(approved.json()["status"], "approved");
    let claimed = raw.post(&format!("/api/daemon/pairing-sessions/{token}/claim"), json!({})).await.json();
    assert_eq!((&claimed["status"], &claimed["workspace_id"]), (&json!("claimed"), &json!(w.workspace_id.as_str())));
    assert_eq!(raw.get(&format!("/api/daemon/pairing-sessions/{token}")).await.json()["status"], "claimed");
}

#[tokio::test]
async fn bad_requests_get_the_servers_answers() {
    let w = world().await;
    let server =
        serve_with(w.mock.clone(), ServerConfig { max_body_bytes: 1024, ..ServerConfig::default() }).await.unwrap();
    let raw = Raw { client: Client::builder(TokioExecutor::new()).build_http(), server };
    raw.send("POST", "/api/daemon/heartbeat", Some("{not json"), None).await.assert_error(400, "invalid request body");
    raw.send("POST", "/api/daemon/heartbeat", Some(""), None).await.assert_error(400, "invalid request body");
    raw.send("POST", "/api/daemon/deregister", Some(r#"{"runtime_ids":"x"}"#), None)
        .await
        .assert_error(400, "invalid request body");
    let unknown = raw.get("/api/daemon/nope").await;
    assert_eq!((unknown.status, unknown.text()), (404, "404 page not found\n"));
    assert_eq!(raw.get("/api/daemon/heartbeat").await.status, 405);
    assert_eq!(raw.send("DELETE", "/api/daemon/tasks/t/messages", None, None).await.status, 405);
    let huge = format!("{{\"runtime_id\":\"{}\"}}", "x".repeat(4096));
    raw.send("POST", "/api/daemon/heartbeat", Some(&huge), None).await.assert_error(413, "request body too large");
    // Query strings are ignored; the server still works after all that.
    let status = raw.get(&format!("/api/daemon/runtimes/{}/tasks/pending?limit=1", w.runtime_id)).await;
    assert_eq!(status.text(), "[]\n");
    let encoded = raw.get("/api/daemon/tasks/a%2Fb/status").await;
    encoded.assert_error(404, "task not found");
}

#[tokio::test]
async fn injected_faults_over_http() {
    let (w, raw) = served().await;
    let rt = w.runtime_id.as_str();
    let error = Error::from_server_message(multica_api::Method::Post, "/x", 503, "busy")
        .with_retry_after(Some(Duration::from_secs(7)));
    w.mock.fail_next(Endpoint::SendHeartbeat, 1, error);
    let answer = raw.post("/api/daemon/heartbeat", json!({"runtime_id": rt})).await;
    answer.assert_error(503, "busy");
    assert_eq!(answer.headers.get("retry-after").unwrap(), "7");

    let source = std::sync::Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    let transport =
        Error::Transport { method: multica_api::Method::Post, path: "/".into(), kind: TransportKind::Request, source };
    w.mock.fail_next(Endpoint::SendHeartbeat, 1, transport);
    let body = Some(json!({"runtime_id": rt}).to_string().into_bytes());
    assert!(raw.try_send("POST", "/api/daemon/heartbeat", body.clone(), None).await.is_err(), "connection closed");
    assert_eq!(raw.try_send("POST", "/api/daemon/heartbeat", body, None).await.unwrap().status, 200);

    // Over the control route, too.
    let armed =
        raw.post("/_mock/faults", json!({"endpoint": "claim_task", "count": 2, "status": 502, "message": "gw"})).await;
    assert_eq!(armed.json(), json!({"status": "ok"}));
    let claim = format!("/api/daemon/runtimes/{rt}/tasks/claim");
    raw.post(&claim, json!({})).await.assert_error(502, "gw");
    raw.post(&claim, json!({})).await.assert_error(502, "gw");
    assert_eq!(raw.post(&claim, json!({})).await.status, 200);
    raw.post("/_mock/faults", json!({"endpoint": "nope", "status": 500}))
        .await
        .assert_error(400, "unknown endpoint \\\"nope\\\"");
    raw.post("/_mock/faults", json!({"endpoint": "ClaimTask", "count": 5, "status": 500})).await;
    assert_eq!(raw.send("DELETE", "/_mock/faults", None, None).await.json(), json!({"status": "ok"}));
    assert_eq!(raw.post(&claim, json!({})).await.status, 200);
}

#[tokio::test]
async fn errors_over_http_equal_the_in_process_errors() {
    // Two identical fakes: one called in process, one over raw HTTP whose
    // answers are decoded as the hyper client decodes them.
    let local = world().await;
    let remote = world().await;
    let raw = Raw::start(remote.mock.clone()).await;
    let ghost = TaskId::new("gh/ost");
    let queued = local.enqueue("i", 0);
    assert_eq!(remote.enqueue("i", 0), queued);

    let check = |local_err: Error, answer: Answer, decode: &dyn Fn(u16, &[u8]) -> Error| {
        assert_same_error(&local_err, &decode(answer.status, &answer.body));
    };
    let path = |r: &request::WireRequest| r.path.clone();

    let start = request::start_task(&queued).unwrap();
    let answer = raw.post(&path(start.wire()), json!({})).await;
    check(local.mock.start_task(&queued).await.unwrap_err(), answer, &|s, b| start.decode_response(s, b).unwrap_err());

    let status = request::get_task_status(&ghost).unwrap();
    let answer = raw.get(&path(status.wire())).await;
    check(local.mock.get_task_status(&ghost).await.unwrap_err(), answer, &|s, b| {
        status.decode_response(s, b).unwrap_err()
    });

    let beat = request::send_heartbeat(&"ghost".into()).unwrap();
    let answer = raw.post(&path(beat.wire()), json!({"runtime_id": "ghost"})).await;
    let local_err = local.mock.send_heartbeat(&"ghost".into()).await.unwrap_err();
    check(local_err, answer, &|s, b| beat.decode_response(s, b).unwrap_err());

    let register = common::register_request(&"nope".into(), "d", "claude");
    let reg = request::register(&register).unwrap();
    let answer = raw.post(&path(reg.wire()), serde_json::to_value(&register).unwrap()).await;
    check(local.mock.register(&register).await.unwrap_err(), answer, &|s, b| reg.decode_response(s, b).unwrap_err());
}

#[tokio::test]
async fn control_routes_seed_drive_and_inspect() {
    let raw = Raw::start(MockDaemon::new()).await;
    let seed: Value = serde_json::from_str(multica_mock::Seed::DEMO_JSON).unwrap();
    assert_eq!(raw.post("/_mock/seed", seed).await.json(), json!({"status": "ok"}));
    let runtime = "33333333-3333-4333-8333-333333333333";
    let enqueued = raw
        .post(
            "/_mock/tasks",
            json!({"id": "t-9", "runtime_id": runtime, "agent_id": "a", "issue_id": "i", "priority": 9}),
        )
        .await
        .json();
    assert_eq!((&enqueued["id"], &enqueued["status"]), (&json!("t-9"), &json!("queued")));
    raw.post("/_mock/tasks", json!({"runtime_id": "nope"})).await.assert_error(400, "unknown runtime \\\"nope\\\"");
    assert_eq!(raw.post("/_mock/tasks", json!({"runtme_id": "typo"})).await.status, 400);
    let cancelled = raw.post("/_mock/tasks/t-9/cancel", json!({})).await.json();
    assert_eq!(cancelled["status"], "cancelled");
    let ping = raw.post(&format!("/_mock/runtimes/{runtime}/pings"), json!({})).await.json();
    let beat = raw.post("/api/daemon/heartbeat", json!({"runtime_id": runtime})).await.json();
    assert_eq!(beat["pending_ping"]["id"], ping["id"]);
    let now = raw.post("/_mock/clock/advance", json!({"seconds": 60})).await.json();
    assert_eq!(now, json!({"now": "2026-01-01T00:01:00Z"}));

    let calls = raw.get("/_mock/calls").await.json();
    assert_eq!(
        calls,
        json!([{"endpoint": "SendHeartbeat", "method": "POST", "path": "/api/daemon/heartbeat", "body": {"runtime_id": runtime}, "transport": "http"}])
    );
    let state = raw.get("/_mock/state").await.json();
    assert_eq!(state["runtimes"][0]["heartbeats"], 1);
    assert_eq!(state["tasks"].as_array().unwrap().len(), 4);
    assert_eq!(state["pings"][0]["status"], "sent");
    assert_eq!(raw.send("DELETE", "/_mock/calls", None, None).await.json(), json!({"status": "ok"}));
    assert_eq!(raw.get("/_mock/calls").await.json(), json!([]));
    assert_eq!(raw.get("/_mock/nope").await.status, 404);
    assert_eq!(raw.get("/_mock/seed").await.status, 405);
    let ws = raw.post("/_mock/workspaces", json!({"name": "Other"})).await.json();
    let agent = raw.post("/_mock/agents", json!({"workspace_id": ws["id"], "name": "B"})).await.json();
    let rt = raw.post("/_mock/runtimes", json!({"workspace_id": ws["id"], "provider": "codex"})).await.json();
    assert!(agent["id"].is_string() && rt["id"].is_string());
}

#[tokio::test]
async fn serves_http2_with_prior_knowledge() {
    let (w, raw) = served().await;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let request = Request::builder()
        .method("POST")
        .uri(format!("{}/api/daemon/heartbeat", raw.server.base_url()))
        .body(Full::new(Bytes::from(json!({"runtime_id": w.runtime_id}).to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert_eq!(w.mock.heartbeats(&w.runtime_id), 1);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let raw = Raw::start(MockDaemon::new()).await;
    let addr = raw.server.addr();
    raw.server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_over_http_hand_each_task_out_once() {
    let (w, raw) = served().await;
    // An agent with room for every task: by default an agent holds at most 6.
    let agent = AgentSeed {
        workspace_id: w.workspace_id.clone(),
        name: "Many".into(),
        max_concurrent_tasks: Some(300),
        ..AgentSeed::default()
    };
    let agent_id = w.mock.add_agent(agent).unwrap();
    let queued: std::collections::HashSet<String> = (0..300)
        .map(|i| {
            let seed = TaskSeed {
                id: None,
                runtime_id: w.runtime_id.clone(),
                agent_id: agent_id.clone(),
                issue_id: format!("i{i}").into(),
                priority: i % 3,
            };
            w.mock.add_task(seed).unwrap().into_string()
        })
        .collect();
    let raw = std::sync::Arc::new(raw);
    let claim = format!("/api/daemon/runtimes/{}/tasks/claim", w.runtime_id);
    let claimers: Vec<_> = (0..16)
        .map(|_| {
            let raw = std::sync::Arc::clone(&raw);
            let claim = claim.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let answer = raw.post(&claim, json!({})).await.json();
                    match answer["task"]["id"].as_str() {
                        Some(id) => mine.push(id.to_owned()),
                        None => return mine,
                    }
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.unwrap());
    }
    assert_eq!(claimed.len(), queued.len());
    assert_eq!(claimed.into_iter().collect::<std::collections::HashSet<_>>(), queued);
}
