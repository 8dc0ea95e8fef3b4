//! The `multica-mock-server` binary: prints its URL and serves the seed.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_multica-mock-server"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (server, line.trim().to_owned())
}

async fn send(method: &str, url: String, body: &str, token: Option<&str>) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client.request(request.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn binary_prints_its_url_and_serves_the_demo_seed_with_auth() {
    let (_server, url) = tokio::task::spawn_blocking(|| start(&["--seed-demo", "--token", "t0k"])).await.unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let claim = format!("{url}/api/daemon/runtimes/33333333-3333-4333-8333-333333333333/tasks/claim");
    let (status, body) = send("POST", claim, "{}", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"id\":\"44444444-4444-4444-8444-000000000002\""), "{body}");
    assert_eq!(send("GET", format!("{url}/api/workspaces"), "", None).await.0, 401);
    assert_eq!(send("GET", format!("{url}/api/workspaces"), "", Some("t0k")).await.0, 200);
    let (status, calls) = send("GET", format!("{url}/_mock/calls"), "", None).await;
    assert_eq!(status, 200);
    assert!(calls.contains("ClaimTask"));
}

#[tokio::test]
async fn binary_loads_a_seed_file() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.json");
    let (_server, url) = tokio::task::spawn_blocking(move || start(&["--seed", file])).await.unwrap();
    let (status, body) = send("GET", format!("{url}/api/workspaces"), "", None).await;
    assert_eq!(status, 200, "auth is off without --token");
    assert!(body.contains("11111111-1111-4111-8111-111111111111"));
}

#[test]
fn binary_refuses_bad_arguments() {
    let status =
        Command::new(env!("CARGO_BIN_EXE_multica-mock-server")).arg("--nope").stderr(Stdio::null()).status().unwrap();
    assert_eq!(status.code(), Some(2));
}

#[tokio::test]
async fn binary_seeds_issues_and_agent_limits_and_takes_a_frontend_url() {
    // The seed `scheduling.rs` checks in process, here through `--seed`.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scheduling-seed.json");
    let (_server, url) =
        tokio::task::spawn_blocking(move || start(&["--seed", file, "--frontend-url", "https://app.example"]))
            .await
            .unwrap();
    let claim = format!("{url}/api/daemon/runtimes/33333333-3333-4333-8333-333333333333/tasks/claim");
    let (_, body) = send("POST", claim.clone(), "{}", None).await;
    assert!(body.contains("44444444-4444-4444-8444-444444444402"), "the closed issue's task is skipped: {body}");
    assert_eq!(send("POST", claim, "{}", None).await.1, "{\"task\":null}\n", "the agent's limit is 1");
    let pairing = r#"{"daemon_id":"d","device_name":"h","runtime_name":"Claude","runtime_type":"claude"}"#;
    let (status, body) = send("POST", format!("{url}/api/daemon/pairing-sessions"), pairing, None).await;
    assert_eq!(status, 201);
    assert!(body.contains("\"link_url\":\"https://app.example/pair/local?token="), "{body}");
}

#[tokio::test]
async fn binary_emulates_head_with_server_version_and_takes_tokens() {
    let (_server, url) =
        tokio::task::spawn_blocking(|| start(&["--seed-demo", "--server-version", "head", "--token", "mul_t0k"]))
            .await
            .unwrap();
    let claim = format!("{url}/api/daemon/runtimes/33333333-3333-4333-8333-333333333333/tasks/claim");
    let (status, body) = send("POST", claim.clone(), "", None).await;
    assert_eq!((status, body.as_str()), (401, r#"{"error":"missing authorization header"}"#));
    let daemon = r#"{"token":"mdt_bin","kind":"daemon","workspace_id":"11111111-1111-4111-8111-111111111111","daemon_id":"demo-daemon"}"#;
    assert_eq!(send("POST", format!("{url}/_mock/tokens"), daemon, None).await.0, 200);
    let outsider = r#"{"token":"mul_outsider","kind":"personal","member_of":[]}"#;
    assert_eq!(send("POST", format!("{url}/_mock/tokens"), outsider, None).await.0, 200);
    // A HEAD claim needs a runtime heard from in the last 150 s.
    let heartbeat = r#"{"runtime_id":"33333333-3333-4333-8333-333333333333"}"#;
    assert_eq!(send("POST", format!("{url}/api/daemon/heartbeat"), heartbeat, Some("mdt_bin")).await.0, 200);
    let (status, body) = send("POST", claim.clone(), "", Some("mdt_bin")).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"auth_token\":\"mat_"), "{body}");
    assert_eq!(send("POST", claim, "", Some("mul_outsider")).await, (404, "{\"error\":\"not found\"}\n".to_owned()));
    let pairing = format!("{url}/api/daemon/pairing-sessions");
    assert_eq!(send("POST", pairing, "{}", Some("mul_t0k")).await.0, 404, "pairing is gone at HEAD");
}

#[tokio::test]
async fn binary_at_head_speaks_the_daemon_websocket_channel_with_control_routes_that_push() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let token = "mul_binary000000000000000000000000000000000";
    let (_server, url) =
        tokio::task::spawn_blocking(move || start(&["--seed-demo", "--token", token, "--server-version", "head"]))
            .await
            .unwrap();
    let runtime = "33333333-3333-4333-8333-333333333333";
    let ws_url = format!("{}/api/daemon/ws?runtime_ids={runtime}", url.replace("http://", "ws://"));
    let mut request = ws_url.into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let next_json = |text: Option<Result<Message, _>>| -> serde_json::Value {
        match text {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a frame, got {other:?}"),
        }
    };
    let heartbeat = serde_json::json!({ "type": "daemon:heartbeat", "payload": { "runtime_id": runtime } });
    ws.send(Message::text(heartbeat.to_string())).await.unwrap();
    let ack = next_json(ws.next().await);
    assert_eq!(ack["payload"]["server_capabilities"], serde_json::json!(["rpc-v1"]));

    // A runtime profile created through the control routes is pushed.
    let profile = r#"{"workspace_id":"11111111-1111-4111-8111-111111111111","display_name":"p","protocol_family":"claude","command_name":"c"}"#;
    let (status, created) = send("POST", format!("{url}/_mock/runtime-profiles"), profile, None).await;
    assert_eq!(status, 200, "{created}");
    let pushed = next_json(ws.next().await);
    assert_eq!(pushed["type"], "daemon:runtime_profiles_changed");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert_eq!(pushed["payload"]["runtime_profile_id"], created["id"]);

    let (_, calls) = send("GET", format!("{url}/_mock/calls"), "", None).await;
    let calls: serde_json::Value = serde_json::from_str(&calls).unwrap();
    assert_eq!(calls[0]["endpoint"], "SendHeartbeat");
    assert_eq!(calls[0]["transport"], "ws");
}
