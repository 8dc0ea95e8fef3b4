//! The fake's daemon WebSocket channel against the server-side scenarios of
//! `WS-CONTRACT.md` §10, with a tokio-tungstenite client (and a raw one
//! where tungstenite would answer for us).
#![allow(clippy::unwrap_used)]

mod ws_client;

use std::time::Duration;

use multica_api::{DaemonApiExt, Endpoint, RuntimeStatus, TaskStatus};
use multica_mock::{RuntimeProfileSeed, Transport, WorkspaceSeed};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use ws_client::*;

const QUIET: Duration = Duration::from_millis(300);

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ----- §10.1-4 the handshake ----------------------------------------------------

#[tokio::test]
async fn handshake_refuses_missing_and_bad_credentials() {
    let head = Head::new().await;
    let url = head.url(&head.both());
    let refused = connect(&url, &[]).await.unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (401, r#"{"error":"missing authorization header"}"#));
    assert_eq!(refused.header("content-type"), Some("application/json"));
    let refused = connect(&url, &[("Authorization", "Token x")]).await.unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (401, r#"{"error":"invalid authorization format"}"#));
    let refused = connect(&url, &[("Authorization", "Bearer mdt_unknown")]).await.unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (401, r#"{"error":"invalid daemon token"}"#));
    let refused = connect(&url, &[("Authorization", "Bearer mul_unknown")]).await.unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (401, r#"{"error":"invalid token"}"#));
    assert_eq!(head.mock.channel_connections(), 0, "nothing was upgraded");
}

#[tokio::test]
async fn handshake_checks_every_runtime_all_or_nothing() {
    let head = Head::new().await;
    let pat = bearer(PAT);
    let cases: Vec<(String, String, u16, &str)> = vec![
        (String::new(), bearer(MDT), 400, "{\"error\":\"runtime_ids or user identity required\"}\n"),
        ("?runtime_ids=not-a-uuid".into(), pat.clone(), 400, "{\"error\":\"invalid runtime_id\"}\n"),
        (
            "?runtime_ids=00000000-0000-4000-8000-00000000dead".into(),
            pat.clone(),
            404,
            "{\"error\":\"runtime not found\"}\n",
        ),
        (head.both(), bearer(MDT_OTHER), 404, "{\"error\":\"runtime not found\"}\n"),
        (head.both(), bearer(PAT2), 404, "{\"error\":\"not found\"}\n"),
        (
            format!("{}%2C00000000-0000-4000-8000-00000000dead", head.both()),
            pat.clone(),
            404,
            "{\"error\":\"runtime not found\"}\n",
        ),
    ];
    for (query, authorization, status, body) in cases {
        let refused = connect(&head.url(&query), &[("Authorization", &authorization)]).await.unwrap_err();
        assert_eq!((refused.status, refused.body.as_str()), (status, body), "{query} as {authorization}");
        assert!(refused.header("content-security-policy").is_some());
    }
    // The daemon's own token and a PAT without runtimes (account-only) upgrade.
    let _daemon = connect(&head.url(&head.both()), &[("Authorization", &bearer(MDT))]).await.unwrap();
    let _account = connect(&head.url(""), &[("Authorization", &pat)]).await.unwrap();
    assert_eq!(head.mock.channel_connections(), 2);
}

#[tokio::test]
async fn a_request_without_upgrade_headers_gets_the_upgraders_400() {
    let head = Head::new().await;
    let mut stream = tokio::net::TcpStream::connect(head.server.addr()).await.unwrap();
    let request = format!(
        "GET /api/daemon/ws{} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PAT}\r\nConnection: close\r\n\r\n",
        head.both()
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("content-type: text/plain; charset=utf-8"), "{answer}");
    assert!(lower.contains("sec-websocket-version: 13"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nBad Request\n"), "{answer}");
}

#[tokio::test]
async fn the_upgrade_is_bare_and_selects_no_subprotocol() {
    let head = Head::new().await;
    let path = format!("/api/daemon/ws{}", head.both());
    let offer = "Sec-WebSocket-Protocol: multica.v1\r\nSec-WebSocket-Extensions: permessage-deflate\r\n";
    let (_raw, answer) = Raw::handshake_with(head.server.addr(), &path, offer, b"").await;
    let answer = answer.unwrap();
    // hyper dates every answer; Go's hijacked 101 has no `Date` (not compared).
    let mut lines: Vec<String> =
        answer.trim_end().lines().skip(1).map(|l| l.to_ascii_lowercase()).filter(|l| !l.starts_with("date:")).collect();
    lines.sort();
    assert!(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{answer}");
    assert_eq!(lines.len(), 3, "{answer}");
    assert_eq!(&lines[0], "connection: upgrade");
    assert_eq!(&lines[1], "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=");
    assert_eq!(&lines[2], "upgrade: websocket");
}

#[tokio::test]
async fn a_client_close_is_echoed_with_its_code_and_no_reason() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    // Nothing is sent until the client speaks.
    silence(&mut ws, QUIET).await;
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame { code: 1000.into(), reason: "bye".into() }))
        .await
        .unwrap();
    match next(&mut ws, Duration::from_secs(5)).await {
        Some(Message::Close(Some(frame))) => {
            assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1000, ""));
        }
        other => panic!("expected the echoed close, got {other:?}"),
    }
}

#[tokio::test]
async fn an_armed_fault_refuses_the_upgrade() {
    let head = Head::new().await;
    head.mock.refuse_channel_upgrades(1, 503, "try later");
    let refused = connect(&head.url(&head.both()), &[("Authorization", &bearer(PAT))]).await.unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (503, "{\"error\":\"try later\"}\n"));
    head.connect().await;
}

// ----- §10.5-8 heartbeats ----------------------------------------------------------

#[tokio::test]
async fn a_heartbeat_is_acked_with_rpc_v1_and_counts_as_one() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let before = head.mock.heartbeats(&head.rt1);
    head.mock.clear_calls();
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    let ack = recv(&mut ws).await;
    assert_eq!(
        ack,
        json!({ "type": "daemon:heartbeat_ack",
                "payload": { "runtime_id": head.rt1, "status": "ok", "server_capabilities": ["rpc-v1"] } })
    );
    assert_eq!(head.mock.heartbeats(&head.rt1), before + 1);
    assert_eq!(head.mock.runtime_by_id(&head.rt1).unwrap().status, RuntimeStatus::Online);
    let calls = head.mock.calls_with_transport();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].0.endpoint(), calls[0].1), (Endpoint::SendHeartbeat, Transport::Ws));
}

#[tokio::test]
async fn bad_frames_are_dropped_silently_and_the_connection_kept() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let foreign = "00000000-0000-4000-8000-00000000beef";
    for bad in [
        Message::text("hello, not json"),
        Message::text(json!({"type": "daemon:bogus", "payload": {"x": 1}}).to_string()),
        Message::text(json!({"type": "daemon:register", "payload": {"runtime_id": head.rt1}}).to_string()),
        Message::text(heartbeat("").to_string()),
        Message::text(heartbeat(foreign).to_string()),
        Message::text(json!({"type": "daemon:rpc_request", "payload": "tasks.claim"}).to_string()),
        Message::text(
            json!({"type": "daemon:rpc_request", "payload": {"method": "tasks.claim", "body": {"daemon_id": "d1"}}})
                .to_string(),
        ),
    ] {
        futures_util::SinkExt::send(&mut ws, bad.clone()).await.unwrap();
        silence(&mut ws, Duration::from_millis(150)).await;
    }
    // A binary heartbeat is JSON all the same.
    futures_util::SinkExt::send(&mut ws, Message::binary(heartbeat(head.rt2.as_str()).to_string())).await.unwrap();
    assert_eq!(recv(&mut ws).await["payload"]["runtime_id"], json!(head.rt2));
}

#[tokio::test]
async fn upper_case_ids_are_held_as_sent_and_miss_the_wake_ups() {
    let head = Head::new().await;
    let lower = "abcdef00-0000-4000-8000-0000000000aa";
    head.mock
        .add_runtime(multica_mock::RuntimeSeed {
            id: Some(lower.into()),
            workspace_id: head.workspace_id.clone(),
            provider: "gemini".into(),
            ..multica_mock::RuntimeSeed::default()
        })
        .unwrap();
    let upper = lower.to_ascii_uppercase();
    let (mut ws, _) =
        connect(&head.url(&format!("?runtime_ids={upper}")), &[("Authorization", &bearer(PAT))]).await.unwrap();
    let mut main =
        connect(&head.url(&format!("?runtime_ids={lower}")), &[("Authorization", &bearer(PAT))]).await.unwrap().0;
    send(&mut ws, heartbeat(lower)).await;
    silence(&mut ws, QUIET).await;
    send(&mut ws, heartbeat(&upper)).await;
    assert_eq!(recv(&mut ws).await["payload"]["runtime_id"], lower, "acked under the canonical ID");
    head.mock
        .add_task(multica_mock::TaskSeed {
            id: None,
            runtime_id: lower.into(),
            agent_id: head.agent_id.clone(),
            issue_id: "99999999-0000-4000-8000-0000000000aa".into(),
            priority: 0,
        })
        .unwrap();
    assert_eq!(recv(&mut main).await["type"], "daemon:task_available");
    silence(&mut ws, QUIET).await;
}

#[tokio::test]
async fn a_long_run_of_unanswered_frames_does_not_stall_the_reader() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    for _ in 0..100 {
        send(&mut ws, json!({ "type": "daemon:bogus", "payload": {} })).await;
    }
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    assert_eq!(recv(&mut ws).await["payload"]["status"], "ok");
}

#[tokio::test]
async fn a_deleted_runtime_is_acked_runtime_gone() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    head.mock.remove_runtime(&head.rt2).unwrap();
    send(&mut ws, heartbeat(head.rt2.as_str())).await;
    assert_eq!(
        recv(&mut ws).await["payload"],
        json!({ "runtime_id": head.rt2, "status": "runtime_gone", "runtime_gone": true })
    );
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    assert_eq!(recv(&mut ws).await["payload"]["status"], "ok");
    // The HTTP heartbeat says 404, a new handshake naming it too.
    let err = head.mock.send_heartbeat(&head.rt2).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let refused = connect(&head.url(&head.both()), &[("Authorization", &bearer(PAT))]).await.unwrap_err();
    assert_eq!(refused.status, 404);
}

#[tokio::test]
async fn a_model_list_request_pushes_pending_work_and_the_next_ack_carries_it_once() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let request = head.mock.request_runtime(&multica_mock::RuntimeRequest::model_list(head.rt1.clone())).unwrap();
    assert_eq!(
        recv(&mut ws).await,
        json!({ "type": "daemon:pending_work", "payload": { "runtime_id": head.rt1, "kind": "model_list" } })
    );
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    assert_eq!(recv(&mut ws).await["payload"]["pending_model_list"], json!({ "id": request.id }));
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    assert!(recv(&mut ws).await["payload"].get("pending_model_list").is_none());
    // Local-skill requests wait for the next scheduled heartbeat.
    head.mock.request_runtime(&multica_mock::RuntimeRequest::local_skills(head.rt1.clone())).unwrap();
    silence(&mut ws, QUIET).await;
}

// ----- §10.10-13 the RPC ------------------------------------------------------------

fn claim_body(head: &Head, max_tasks: i64) -> Value {
    json!({ "daemon_id": "d1", "runtime_ids": [head.rt2, head.rt1], "max_tasks": max_tasks })
}

#[tokio::test]
async fn tasks_claim_answers_as_the_http_batch_claim() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    send(&mut ws, claim("r1", claim_body(&head, 4))).await;
    assert_eq!(
        recv(&mut ws).await,
        json!({ "type": "daemon:rpc_response", "payload": { "request_id": "r1", "status": 200, "body": { "tasks": [] } } })
    );
    let first = head.enqueue();
    assert_eq!(recv(&mut ws).await["type"], "daemon:task_available");
    send(&mut ws, claim("r2", claim_body(&head, 4))).await;
    let answer = recv(&mut ws).await;
    assert_eq!(answer["payload"]["status"], 200);
    let over_ws = answer["payload"]["body"]["tasks"][0].clone();
    assert_eq!(over_ws["id"], json!(first));
    assert_eq!(head.mock.task_status(&first), Some(TaskStatus::Dispatched));

    // The same claim over HTTP, same capabilities: the same object but
    // for the task's own values.
    head.mock.cancel(&first).unwrap();
    assert_eq!(recv(&mut ws).await["payload"], json!({ "runtime_id": head.rt1 }));
    let second = head.enqueue();
    recv(&mut ws).await;
    let over_http = http_claim(&head).await;
    assert_eq!(over_http["tasks"][0]["id"], json!(second));
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&over_ws), keys(&over_http["tasks"][0]));
    assert_eq!(over_ws["agent"], over_http["tasks"][0]["agent"]);
    let transports: Vec<Transport> = head
        .mock
        .calls_with_transport()
        .into_iter()
        .filter(|(c, _)| c.endpoint() == Endpoint::ClaimTasks)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(transports, [Transport::Ws, Transport::Ws, Transport::Http]);
}

async fn http_claim(head: &Head) -> Value {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let body = serde_json::to_vec(&claim_body(head, 4)).unwrap();
    let request = http::Request::post(format!("{}/api/daemon/tasks/claim", head.server.base_url()))
        .header("authorization", bearer(PAT))
        .header("x-client-capabilities", CAPABILITIES)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

#[tokio::test]
async fn rpc_errors_come_back_as_statuses() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let cases = [
        (json!({ "runtime_ids": [head.rt1], "max_tasks": 1 }), 400, json!({ "error": "daemon_id is required" })),
        (claim_body(&head, -1), 400, json!({ "error": "max_tasks must not be negative" })),
        (claim_body(&head, 0), 200, json!({ "tasks": [] })),
        (
            json!({ "daemon_id": "someone-else", "runtime_ids": [head.rt1], "max_tasks": 4 }),
            200,
            json!({ "tasks": [] }),
        ),
    ];
    for (index, (body, status, answer)) in cases.into_iter().enumerate() {
        let id = format!("r{index}");
        send(&mut ws, claim(&id, body)).await;
        assert_eq!(recv(&mut ws).await["payload"], json!({ "request_id": id, "status": status, "body": answer }));
    }
    send(&mut ws, json!({ "type": "daemon:rpc_request", "payload": { "request_id": "nb", "method": "tasks.claim" } }))
        .await;
    assert_eq!(recv(&mut ws).await["payload"]["body"], json!({ "error": "daemon_id is required" }));
    send(
        &mut ws,
        json!({ "type": "daemon:rpc_request", "payload": { "request_id": "m", "method": "x.y", "body": {} } }),
    )
    .await;
    assert_eq!(
        recv(&mut ws).await["payload"],
        json!({ "request_id": "m", "status": 404, "error": "unknown rpc method \"x.y\"" })
    );
    // A daemon token claims for its own daemon only.
    let (mut mdt, _) = connect(&head.url(&head.both()), &[("Authorization", &bearer(MDT))]).await.unwrap();
    send(&mut mdt, claim("x", json!({ "daemon_id": "d2", "runtime_ids": [head.rt1], "max_tasks": 1 }))).await;
    assert_eq!(
        recv(&mut mdt).await["payload"],
        json!({ "request_id": "x", "status": 403, "body": { "error": "daemon_id does not match token" } })
    );
}

#[tokio::test]
async fn the_ninth_concurrent_rpc_gets_429_at_once() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    head.mock.delay_channel_claims(8, Duration::from_millis(400));
    for index in 0..9 {
        send(&mut ws, claim(&format!("r{index}"), claim_body(&head, 4))).await;
    }
    assert_eq!(
        recv(&mut ws).await["payload"],
        json!({ "request_id": "r8", "status": 429, "error": "too many in-flight rpc requests" })
    );
    let mut answered: Vec<String> = Vec::new();
    for _ in 0..8 {
        let answer = recv(&mut ws).await;
        assert_eq!(answer["payload"]["status"], 200);
        answered.push(answer["payload"]["request_id"].as_str().unwrap().to_owned());
    }
    answered.sort();
    assert_eq!(answered, (0..8).map(|i| format!("r{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn nine_ordinary_claims_in_one_write_are_nine_in_flight() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    for index in 0..9 {
        let frame = claim(&format!("r{index}"), claim_body(&head, 4)).to_string();
        futures_util::SinkExt::feed(&mut ws, Message::text(frame)).await.unwrap();
    }
    futures_util::SinkExt::flush(&mut ws).await.unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..9 {
        let answer = recv(&mut ws).await;
        statuses
            .insert(answer["payload"]["request_id"].as_str().unwrap().to_owned(), answer["payload"]["status"].clone());
    }
    assert_eq!(statuses["r8"], 429);
    assert!((0..8).all(|i| statuses[&format!("r{i}")] == 200), "{statuses:?}");
}

#[tokio::test]
async fn a_claim_slower_than_its_budget_answers_500_and_claims_nothing() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let task = head.enqueue();
    recv(&mut ws).await;
    head.mock.delay_channel_claims(1, Duration::from_secs(2));
    let started = std::time::Instant::now();
    send(
        &mut ws,
        json!({ "type": "daemon:rpc_request", "payload": {
            "request_id": "slow", "method": "tasks.claim", "body": claim_body(&head, 4), "timeout_ms": 100 } }),
    )
    .await;
    let answer = recv(&mut ws).await;
    assert!(started.elapsed() < Duration::from_secs(2), "answered at the budget, not after the delay");
    assert_eq!(answer["payload"]["request_id"], "slow");
    assert_eq!(answer["payload"]["status"], 500);
    assert_eq!(
        answer["payload"]["body"],
        json!({ "error": "failed to claim tasks: promote deferred tasks: context deadline exceeded" })
    );
    assert!(answer["payload"].get("error").is_none());
    assert_eq!(head.mock.task_status(&task), Some(TaskStatus::Queued));
}

#[tokio::test]
async fn a_dropped_claim_committed_comes_back_after_the_stale_dispatch_time() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let task = head.enqueue();
    recv(&mut ws).await;
    head.mock.drop_channel_after_claims(1);
    send(&mut ws, claim("lost", claim_body(&head, 4))).await;
    assert!(next(&mut ws, Duration::from_secs(5)).await.is_none_or(|m| m.is_close()), "dropped without an answer");
    assert_eq!(head.mock.task_status(&task), Some(TaskStatus::Dispatched), "the claim took effect");
    // Stale-dispatch recovery hands the same task out again.
    head.mock.advance_clock(Duration::from_secs(91));
    let mut ws = head.connect().await;
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    recv(&mut ws).await;
    send(&mut ws, claim("again", claim_body(&head, 4))).await;
    let answer = recv(&mut ws).await;
    assert_eq!(answer["payload"]["body"]["tasks"][0]["id"], json!(task));
}

// ----- §10.17 pushes --------------------------------------------------------------------

#[tokio::test]
async fn enqueues_and_ends_push_task_available_to_every_holder() {
    let head = Head::new().await;
    let mut main = head.connect().await;
    let mut second = head.connect().await;
    let (mut account, _) = connect(&head.url(""), &[("Authorization", &bearer(PAT))]).await.unwrap();
    let task = head.enqueue();
    let pushed = json!({ "type": "daemon:task_available", "payload": { "runtime_id": head.rt1, "task_id": task } });
    assert_eq!(recv(&mut main).await, pushed);
    assert_eq!(recv(&mut second).await, pushed);
    silence(&mut account, QUIET).await;
    // Claimed, started, completed: the end frees a slot.
    let claimed = head.mock.claim_task(&head.rt1).await.unwrap().unwrap();
    head.mock.start_task(&claimed.record.id).await.unwrap();
    head.mock.complete_task(&claimed.record.id, &multica_api::TaskCompletion::with_output("ok")).await.unwrap();
    assert_eq!(recv(&mut main).await["payload"], json!({ "runtime_id": head.rt1 }));
    // A burst of ten enqueues: ten frames.
    for _ in 0..10 {
        head.enqueue();
    }
    for _ in 0..10 {
        assert!(recv(&mut main).await["payload"]["task_id"].is_string());
    }
    silence(&mut main, QUIET).await;
}

#[tokio::test]
async fn a_bulk_transition_hints_each_runtime_once() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let tasks = [head.enqueue(), head.enqueue()];
    for task in &tasks {
        head.mock.claim_task(&head.rt1).await.unwrap().unwrap();
        assert_eq!(recv(&mut ws).await["payload"]["task_id"], json!(task));
    }
    // Both dispatched tasks time out in one sweep, their runtime still heard from.
    head.mock.advance_clock(Duration::from_secs(200));
    head.mock.send_heartbeat(&head.rt1).await.unwrap();
    head.mock.advance_clock(Duration::from_secs(140));
    for task in &tasks {
        assert_eq!(head.mock.task_status(task), Some(TaskStatus::Failed));
    }
    let mut frames = Vec::new();
    while let Some(Message::Text(text)) = next(&mut ws, QUIET).await {
        frames.push(serde_json::from_str::<Value>(&text).unwrap()["payload"].clone());
    }
    let hints: Vec<&Value> = frames.iter().filter(|p| p.get("task_id").is_none()).collect();
    assert_eq!(hints, [&json!({ "runtime_id": head.rt1 })], "{frames:?}");
}

#[tokio::test]
async fn profile_and_workspace_changes_push_to_whom_they_concern() {
    let head = Head::new().await;
    let mut main = head.connect().await;
    let (mut account, _) = connect(&head.url(""), &[("Authorization", &bearer(PAT))]).await.unwrap();
    let (mut daemon, _) = connect(&head.url(&head.both()), &[("Authorization", &bearer(MDT))]).await.unwrap();
    let profile = head
        .mock
        .add_runtime_profile(&RuntimeProfileSeed {
            workspace_id: head.workspace_id.clone(),
            display_name: "probe".into(),
            protocol_family: "claude".into(),
            command_name: "claude-probe".into(),
            ..RuntimeProfileSeed::default()
        })
        .unwrap();
    let id = profile["id"].as_str().unwrap().to_owned();
    let changed = json!({ "type": "daemon:runtime_profiles_changed",
                          "payload": { "workspace_id": head.workspace_id, "runtime_profile_id": id } });
    assert_eq!(recv(&mut main).await, changed);
    assert_eq!(recv(&mut daemon).await, changed);
    silence(&mut account, QUIET).await;
    head.mock.remove_runtime_profile(&id).unwrap();
    assert_eq!(recv(&mut main).await, changed);
    assert_eq!(recv(&mut daemon).await, changed);

    let other = head.mock.add_workspace(WorkspaceSeed { name: "Other".into(), ..WorkspaceSeed::default() }).unwrap();
    let workspaces = json!({ "type": "daemon:workspaces_changed", "payload": {} });
    assert_eq!(recv(&mut main).await, workspaces);
    assert_eq!(recv(&mut account).await, workspaces);
    head.mock.remove_workspace(&other).unwrap();
    assert_eq!(recv(&mut main).await, workspaces);
    assert_eq!(recv(&mut account).await, workspaces);
    silence(&mut daemon, QUIET).await;
}

// ----- §10.18-21 liveness and limits ---------------------------------------------------

#[tokio::test]
async fn messages_up_to_64_kib_are_read_and_a_larger_one_closes_1009() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let padded = |size: usize| {
        let base = heartbeat(head.rt1.as_str()).to_string();
        let mut text = base[..base.len() - 1].to_owned();
        text.push_str(",\"pad\":\"");
        let room = size - text.len() - 2;
        text.push_str(&"x".repeat(room));
        text.push_str("\"}");
        assert_eq!(text.len(), size);
        text
    };
    futures_util::SinkExt::send(&mut ws, Message::text(padded(65_536))).await.unwrap();
    assert_eq!(recv(&mut ws).await["payload"]["status"], "ok");
    futures_util::SinkExt::send(&mut ws, Message::text(padded(65_537))).await.unwrap();
    match next(&mut ws, Duration::from_secs(5)).await {
        Some(Message::Close(Some(frame))) => assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1009, "")),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_server_pings_every_54_s_and_drops_a_client_that_never_answers_at_60_s() {
    let head = Head::new().await;
    let connected = tokio::time::Instant::now();
    let path = format!("/api/daemon/ws{}", head.both());
    let (mut raw, answer) = Raw::handshake(head.server.addr(), &path, b"").await;
    assert!(answer.unwrap().starts_with("HTTP/1.1 101"));
    let (opcode, payload) = raw.read_frame().await.unwrap();
    assert_eq!((opcode, payload.len()), (0x9, 0), "an empty ping");
    assert_eq!(connected.elapsed().as_secs(), 54);
    // Heartbeats do not keep it: only a pong would.
    raw.send_text(&heartbeat(head.rt1.as_str()).to_string()).await;
    assert_eq!(raw.read_frame().await.unwrap().0, 0x1);
    match raw.read_frame().await {
        None => {}
        Some((opcode, payload)) => assert_eq!((opcode, payload.len()), (0x8, 0), "at most an empty close"),
    }
    assert_eq!(connected.elapsed().as_secs(), 60);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_answers_pings_stays_connected() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    // tungstenite answers each ping while the client reads.
    silence(&mut ws, Duration::from_secs(200)).await;
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    // No timeout here: on a paused clock it would fire before the answer.
    let ack = loop {
        match futures_util::StreamExt::next(&mut ws).await {
            Some(Ok(Message::Text(text))) => break serde_json::from_str::<Value>(&text).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("the connection ended: {other:?}"),
        }
    };
    assert_eq!(ack["payload"]["status"], "ok");
    assert_eq!(head.mock.channel_connections(), 1);
}

#[tokio::test]
async fn closing_the_socket_leaves_runtimes_online() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    send(&mut ws, heartbeat(head.rt1.as_str())).await;
    recv(&mut ws).await;
    ws.close(None).await.unwrap();
    while next(&mut ws, Duration::from_secs(5)).await.is_some() {}
    assert_eq!(head.mock.runtime_by_id(&head.rt1).unwrap().status, RuntimeStatus::Online);
}

#[tokio::test]
async fn shutting_the_server_down_ends_its_channel_connections() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let Head { server, mock, .. } = head;
    server.shutdown().await;
    assert!(next(&mut ws, Duration::from_secs(5)).await.is_none_or(|m| m.is_close()));
    assert_eq!(mock.channel_connections(), 0);
}

// ----- the control routes over HTTP ----------------------------------------------------

async fn control(head: &Head, method: &str, path: &str, body: Value) -> (u16, Value) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", head.server.base_url()))
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_routes_cause_every_push_and_arm_the_channel_faults() {
    let head = Head::new().await;
    let mut ws = head.connect().await;
    let (_, created) = control(&head, "POST", "/_mock/workspaces", json!({ "name": "Second" })).await;
    assert_eq!(recv(&mut ws).await["type"], "daemon:workspaces_changed");
    let path = format!("/_mock/workspaces/{}", created["id"].as_str().unwrap());
    assert_eq!(control(&head, "DELETE", &path, json!({})).await.0, 200);
    assert_eq!(recv(&mut ws).await["type"], "daemon:workspaces_changed");
    assert_eq!(control(&head, "DELETE", &path, json!({})).await.0, 400, "already gone");

    let profile = json!({ "id": "0f0f0f0f-0000-4000-8000-000000000001", "workspace_id": head.workspace_id,
                          "display_name": "p", "protocol_family": "codex", "command_name": "codex-p" });
    let (status, created) = control(&head, "POST", "/_mock/runtime-profiles", profile).await;
    assert_eq!((status, created["id"].as_str()), (200, Some("0f0f0f0f-0000-4000-8000-000000000001")));
    assert_eq!(created["display_name"], "p");
    assert_eq!(recv(&mut ws).await["payload"]["runtime_profile_id"], created["id"]);
    let listed = head.mock.list_runtime_profiles(&head.workspace_id).await.unwrap();
    assert_eq!(listed.runtime_profiles.len(), 1);
    assert_eq!(
        control(&head, "DELETE", "/_mock/runtime-profiles/0f0f0f0f-0000-4000-8000-000000000001", json!({})).await.0,
        200
    );
    assert_eq!(recv(&mut ws).await["type"], "daemon:runtime_profiles_changed");

    let runtime = format!("/_mock/runtimes/{}", head.rt2);
    assert_eq!(control(&head, "DELETE", &runtime, json!({})).await.0, 200);
    send(&mut ws, heartbeat(head.rt2.as_str())).await;
    assert_eq!(recv(&mut ws).await["payload"]["status"], "runtime_gone");

    let fault = json!({ "endpoint": "ws_claim", "close_connection": true });
    assert_eq!(control(&head, "POST", "/_mock/faults", fault).await.0, 200);
    send(&mut ws, claim("c", claim_body(&head, 1))).await;
    assert!(next(&mut ws, Duration::from_secs(5)).await.is_none_or(|m| m.is_close()));
    let fault = json!({ "endpoint": "ws_upgrade", "status": 503, "message": "maintenance" });
    assert_eq!(control(&head, "POST", "/_mock/faults", fault).await.0, 200);
    let refused = connect(&head.url(&format!("?runtime_ids={}", head.rt1)), &[("Authorization", &bearer(PAT))])
        .await
        .unwrap_err();
    assert_eq!((refused.status, refused.body.as_str()), (503, "{\"error\":\"maintenance\"}\n"));
    assert_eq!(control(&head, "POST", "/_mock/faults", json!({ "endpoint": "ws_claim" })).await.0, 400);
}

#[tokio::test]
async fn the_channel_runs_in_process_over_a_byte_stream() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let head = Head::new().await;
    let (client, server) = tokio::io::duplex(256 * 1024);
    let serving = tokio::spawn(multica_mock::serve_stream(head.mock.clone(), server, usize::MAX));
    let mut request = format!("ws://fake/api/daemon/ws?runtime_ids={}", head.rt1).into_client_request().unwrap();
    request.headers_mut().insert("authorization", bearer(PAT).parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::client_async(request, client).await.unwrap();
    assert_eq!(response.status(), 101);
    futures_util::SinkExt::send(&mut ws, Message::text(heartbeat(head.rt1.as_str()).to_string())).await.unwrap();
    let ack = match futures_util::StreamExt::next(&mut ws).await {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text).unwrap(),
        other => panic!("expected the ack, got {other:?}"),
    };
    assert_eq!(ack["payload"]["status"], "ok");
    let task = head.enqueue();
    let pushed = match futures_util::StreamExt::next(&mut ws).await {
        Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text).unwrap(),
        other => panic!("expected the push, got {other:?}"),
    };
    assert_eq!(pushed["payload"]["task_id"], json!(task));
    drop(ws);
    serving.await.unwrap();
}

/// Claims over the socket with the connection dropped after every third
/// claim took effect: every task still runs exactly once, the stranded ones
/// handed out again by stale-dispatch recovery.
#[tokio::test]
async fn claims_lost_with_their_connection_come_back_and_run_once() {
    let head = Head::new().await;
    let tasks: Vec<multica_api::TaskId> = (0..20).map(|_| head.enqueue()).collect();
    let mut handed_out: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let mut ws = head.connect().await;
    let (mut claims, mut drops, mut stranded) = (0, 0, 0);
    while tasks.iter().any(|t| head.mock.task_status(t) != Some(TaskStatus::Completed)) {
        assert!(claims < 100, "the run does not converge");
        claims += 1;
        send(&mut ws, heartbeat(head.rt1.as_str())).await;
        assert_eq!(recv_type(&mut ws, "daemon:heartbeat_ack").await["payload"]["status"], "ok");
        let dropped = claims % 3 == 0;
        if dropped {
            head.mock.drop_channel_after_claims(1);
        }
        send(&mut ws, claim(&format!("c{claims}"), claim_body(&head, 2))).await;
        if dropped {
            drops += 1;
            // The claim took effect; its answer is lost with the connection.
            while next(&mut ws, Duration::from_secs(5)).await.is_some_and(|m| !m.is_close()) {}
            stranded += tasks.iter().filter(|t| head.mock.task_status(t) == Some(TaskStatus::Dispatched)).count();
            ws = head.connect().await;
            // Past the stale-dispatch time the stranded tasks are claimable again.
            head.mock.advance_clock(Duration::from_secs(91));
            continue;
        }
        let answer = recv_type(&mut ws, "daemon:rpc_response").await;
        for task in answer["payload"]["body"]["tasks"].as_array().unwrap() {
            let id = task["id"].as_str().unwrap().to_owned();
            handed_out.entry(id.clone()).or_default().push(task["auth_token"].as_str().unwrap().to_owned());
            let id = multica_api::TaskId::new(id);
            head.mock.start_task(&id).await.unwrap();
            head.mock.complete_task(&id, &multica_api::TaskCompletion::with_output("done")).await.unwrap();
        }
    }
    assert!(drops >= 3, "the run dropped connections ({drops})");
    assert!(stranded >= drops, "each dropped claim stranded tasks ({stranded})");
    assert_eq!(handed_out.len(), tasks.len(), "every task was handed out");
    for (task, tokens) in &handed_out {
        assert_eq!(tokens.len(), 1, "{task} ran once: {tokens:?}");
    }
    let runs = head.mock.calls_to(Endpoint::CompleteTask).len();
    assert_eq!(runs, tasks.len(), "one completion per task");
}

/// The next frame of `kind`, skipping pushes.
async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = recv(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}
