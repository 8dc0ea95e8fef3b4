//! The daemon WebSocket client (`multica_hyper::ws`) and the `WsFirst`
//! backend against a small WebSocket server on 127.0.0.1 written here
//! (`ws_support`), scenario by scenario of WS-CONTRACT §10 as far as a
//! client can be held to them.
#![allow(clippy::unwrap_used)]

mod ws_support;

use std::time::Duration;

use futures_util::StreamExt;
use multica_api::{BatchClaimRequest, ClientCapability, DaemonApiExt, Push, RuntimeId};
use multica_hyper::ws::{HeartbeatAck, NotSent, WsFailure};
use multica_hyper::{HyperClient, WsChannel, WsConfig, WsFirst};
use serde_json::json;
use tokio::time::Instant;
use ws_support::{claim_answer, ClaimMode, RecordingHttp, Script, Seen, WsServer};

const RT1: &str = "0b7c5e0e-6a4b-4f7e-9d55-9f1d4e2a0001";
const RT2: &str = "0b7c5e0e-6a4b-4f7e-9d55-9f1d4e2a0002";

fn client(server: &WsServer) -> HyperClient {
    HyperClient::builder(&server.url)
        .token("mul_secret")
        .no_proxy()
        .capabilities(ClientCapability::GO_DAEMON.iter().cloned())
        .build()
        .unwrap()
}

/// Short budgets so the holds and timeouts of a test take a fraction of a second.
fn quick() -> WsConfig {
    let mut config = WsConfig::default();
    config.rpc_budget = Duration::from_millis(300);
    config.rpc_grace = Duration::from_millis(200);
    config.ack_wait = Duration::from_millis(500);
    config
}

fn rt(id: &str) -> RuntimeId {
    RuntimeId::new(id)
}

fn claim_body() -> BatchClaimRequest {
    BatchClaimRequest { daemon_id: "daemon-1".into(), runtime_ids: vec![rt(RT1), rt(RT2)], max_tasks: 4 }
}

/// Waits until the channel is up with rpc-v1 negotiated on generation `generation`.
async fn negotiated(channel: &WsChannel, generation: u64) {
    let mut link = channel.link_changes();
    tokio::time::timeout(
        Duration::from_secs(10),
        link.wait_for(|link| link.connected && link.rpc_v1 && link.generation == generation),
    )
    .await
    .expect("negotiated in time")
    .unwrap();
}

async fn connected(channel: &WsChannel, generation: u64) {
    let mut link = channel.link_changes();
    tokio::time::timeout(
        Duration::from_secs(10),
        link.wait_for(|link| link.connected && link.generation == generation),
    )
    .await
    .expect("connected in time")
    .unwrap();
}

#[tokio::test]
async fn the_handshake_carries_the_http_headers_and_sorted_lower_case_ids() {
    let mut server = WsServer::start(Script::default()).await;
    let upper = RT2.to_ascii_uppercase();
    let _channel = WsChannel::open(&client(&server), [rt(&upper), rt(RT1)], quick());
    let (uri, headers, _) = server.next_handshake().await;
    assert_eq!(uri, format!("/api/daemon/ws?runtime_ids={RT1}%2C{RT2}"));
    assert_eq!(headers["authorization"], "Bearer mul_secret");
    assert_eq!(
        headers["x-client-capabilities"],
        "skill-bundles-v1,coalesced-comments-v1,execution-manifest-v1,agent-skill-v1,remote-mcp-v1,local-worktree-v1,rpc-v1"
    );
    assert_eq!(headers["x-client-platform"], "multica-rs");
    assert!(headers.contains_key("x-client-version") && headers.contains_key("user-agent"));
    assert!(!headers.contains_key("sec-websocket-protocol"), "no subprotocol");
    assert!(!headers.contains_key("sec-websocket-extensions"), "no compression offer");
    assert!(!headers.contains_key("origin"));
    // One heartbeat per runtime at once, lower case, asking for batch imports.
    let mut beats = [server.next_frame("daemon:heartbeat").await.1, server.next_frame("daemon:heartbeat").await.1];
    beats.sort_by_key(|beat| beat["payload"]["runtime_id"].to_string());
    assert_eq!(beats[0]["payload"], json!({"runtime_id": RT1, "supports_batch_import": true}));
    assert_eq!(beats[1]["payload"]["runtime_id"], RT2);
}

#[tokio::test]
async fn heartbeats_are_acknowledged_and_unawaited_requests_become_pushes() {
    let mut server = WsServer::start(Script { model_list: Some("m-1".into()), ..Script::default() }).await;
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let mut pushes = channel.pushes();
    assert_eq!(pushes.next().await, Some(Push::Connected { generation: 1 }));
    // The connect-time heartbeat popped the model-list request: nobody
    // waited for that ack, so it is a push, not lost.
    match pushes.next().await.unwrap() {
        Push::PendingRequests { runtime_id, answer } => {
            assert_eq!(runtime_id, rt(RT1));
            assert_eq!(answer.pending_model_list.unwrap().id.as_str(), "m-1");
        }
        other => panic!("expected the pending requests, got {other:?}"),
    }
    let HeartbeatAck::Alive(answer) = channel.heartbeat(&rt(RT1), false).await.unwrap() else { panic!("alive") };
    assert_eq!(answer.status, "ok");
    assert!(answer.pending_model_list.is_none(), "handed out once");
    assert!(channel.acked_within(&rt(RT1), Duration::from_secs(30)));
    // A runtime not attached to the connection is not sent at all.
    assert_eq!(channel.heartbeat(&rt(RT2), false).await, Err(WsFailure::NotSent(NotSent::NotAttached)));
    let _ = server.drain();
}

#[tokio::test]
async fn claims_go_over_the_socket_only_after_an_ack_offered_rpc_v1_on_this_connection() {
    let mut server = WsServer::start(Script { acks: false, ..Script::default() }).await;
    let http = RecordingHttp::default();
    let channel = WsChannel::open(&client(&server), [rt(RT1), rt(RT2)], quick());
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    connected(&channel, 1).await;
    // Up, but no ack yet: HTTP, and no rpc_request on the wire.
    assert!(api.claim_tasks(&claim_body()).await.unwrap().is_empty());
    assert_eq!(http.claims(), 1);

    server.script(|script| script.acks = true);
    let _ = channel.heartbeat(&rt(RT1), false).await.unwrap();
    negotiated(&channel, 1).await;
    server.script(|script| script.claim = ClaimMode::Answer(claim_answer("task-1", RT1)));
    let tasks = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].record.id.as_str(), "task-1");
    assert_eq!(http.claims(), 1, "the claim went over the socket");
    let (_, request) = server.next_frame("daemon:rpc_request").await;
    assert_eq!(request["payload"]["method"], "tasks.claim");
    assert_eq!(request["payload"]["timeout_ms"], 300);
    assert_eq!(request["payload"]["body"], json!({"daemon_id": "daemon-1", "runtime_ids": [RT1, RT2], "max_tasks": 4}));
    assert!(server.drain().iter().all(|seen| !matches!(seen, Seen::Frame { conn: 1, value } if value["type"] == "daemon:rpc_request" && value["payload"]["body"]["max_tasks"] != 4)));

    // A new connection must negotiate afresh: against acks without
    // rpc-v1 every claim goes over HTTP.
    server.script(|script| script.rpc_v1 = false);
    server.drop_connections();
    connected(&channel, 2).await;
    let _ = channel.heartbeat(&rt(RT1), false).await.unwrap();
    assert!(!channel.link().rpc_v1);
    assert!(api.claim_tasks(&claim_body()).await.unwrap().is_empty());
    assert_eq!(http.claims(), 2);
}

#[tokio::test]
async fn a_claim_whose_answer_was_lost_holds_every_claim_then_claims_once_over_http() {
    let mut server = WsServer::start(Script { claim: ClaimMode::Drop, ..Script::default() }).await;
    let http = RecordingHttp::default();
    let mut config = quick();
    // A hold longer than the ≈1 s reconnect, so the channel renegotiates inside it.
    config.rpc_budget = Duration::from_millis(2500);
    config.rpc_grace = Duration::from_millis(500);
    let hold = Duration::from_secs(3);
    let channel = WsChannel::open(&client(&server), [rt(RT1)], config);
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    negotiated(&channel, 1).await;

    assert!(api.claim_tasks(&claim_body()).await.unwrap().is_empty(), "no tasks from a lost answer");
    let uncertain = Instant::now();
    let _ = server.next_frame("daemon:rpc_request").await;
    server.script(|script| script.claim = ClaimMode::Answer(json!({"tasks": []})));
    // Reconnected and renegotiated: still no claim of any kind, socket or HTTP.
    negotiated(&channel, 2).await;
    assert!(uncertain.elapsed() < hold, "the test needs the reconnect inside the hold");
    assert!(api.claim_tasks(&claim_body()).await.unwrap().is_empty());
    assert!(api.claim_task(&rt(RT1)).await.unwrap().is_none());
    assert_eq!(http.claims(), 0);
    loop {
        let _ = api.claim_tasks(&claim_body()).await.unwrap();
        if http.claims() > 0 {
            break;
        }
        assert!(uncertain.elapsed() < Duration::from_secs(10), "the hold ends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(uncertain.elapsed() >= hold, "HTTP only after budget + grace ({:?})", uncertain.elapsed());
    assert_eq!(http.claims(), 1, "one HTTP claim after the hold");
    let rpcs = server
        .drain()
        .iter()
        .filter(|seen| matches!(seen, Seen::Frame { value, .. } if value["type"] == "daemon:rpc_request"))
        .count();
    assert_eq!(rpcs, 0, "no claim went over the socket during the hold");
    // Then claims go over the socket again.
    let _ = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!(http.claims(), 1);
    let _ = server.next_frame("daemon:rpc_request").await;
}

#[tokio::test]
async fn refused_and_unsent_claims_go_over_http_at_once() {
    let server = WsServer::start(Script {
        claim: ClaimMode::Status(500, json!({"error": "failed to claim tasks: context deadline exceeded"})),
        ..Script::default()
    })
    .await;
    let http = RecordingHttp::default();
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    negotiated(&channel, 1).await;
    let started = Instant::now();
    let _ = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!(http.claims(), 1, "a non-2xx claim claimed nothing: HTTP now");
    server.script(|script| {
        script.claim = ClaimMode::Status(429, json!(null));
    });
    let _ = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!(http.claims(), 2, "429: HTTP now");
    assert!(started.elapsed() < Duration::from_millis(500), "no hold after a refusal");
    // Not connected at all: not sent, HTTP.
    drop(server);
    let mut link = channel.link_changes();
    link.wait_for(|link| !link.connected).await.unwrap();
    let _ = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!(http.claims(), 3);
}

#[tokio::test]
async fn late_and_unreadable_answers_are_never_used() {
    let mut server = WsServer::start(Script {
        claim: ClaimMode::Late(Duration::from_millis(900), claim_answer("late-task", RT1)),
        ..Script::default()
    })
    .await;
    let http = RecordingHttp::default();
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    negotiated(&channel, 1).await;
    assert!(api.claim_tasks(&claim_body()).await.unwrap().is_empty(), "timed out: uncertain, no tasks");
    assert_eq!(http.claims(), 0);
    // The late answer arrives and is dropped (no caller waits on its ID).
    server.next(|seen| matches!(seen, Seen::LateSent).then_some(())).await;
    let _ = channel.heartbeat(&rt(RT1), false).await.unwrap();
    assert!(channel.link().connected, "the late answer did not break the connection");
    assert_eq!(http.claims(), 0);

    // A 2xx that cannot be read is as uncertain as a lost one (H5): hold.
    server.script(|script| script.claim = ClaimMode::Garbage);
    // Wait out the first hold with claims that must stay empty.
    loop {
        let before = http.claims();
        let _ = api.claim_tasks(&claim_body()).await.unwrap();
        if http.claims() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = api.claim_tasks(&claim_body()).await.unwrap();
    let claims = http.claims();
    assert!(api.claim_tasks(&claim_body()).await.unwrap().is_empty());
    assert_eq!(http.claims(), claims, "held after an unreadable 2xx");
}

#[tokio::test]
async fn pushes_arrive_typed_with_canonical_ids() {
    let server = WsServer::start(Script::default()).await;
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let mut pushes = channel.pushes();
    assert_eq!(pushes.next().await, Some(Push::Connected { generation: 1 }));
    server.push(
        json!({"type": "daemon:task_available", "payload": {"runtime_id": RT1.to_ascii_uppercase(), "task_id": "t-1"}}),
    );
    server.push(json!({"event_id": "01J", "payload": {"runtime_id": RT1}, "type": "daemon:task_available"}));
    server.push(json!({"type": "daemon:pending_work", "payload": {"runtime_id": RT1, "kind": "model_list"}}));
    server.push(json!({"type": "daemon:runtime_profiles_changed", "payload": {"workspace_id": "ws-1", "runtime_profile_id": "p-1"}}));
    server.push(json!({"type": "daemon:workspaces_changed", "payload": {}}));
    server.push(json!({"type": "daemon:from_the_future", "payload": {}}));
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(pushes.next().await.unwrap());
    }
    assert_eq!(seen[0], Push::TaskAvailable { runtime_id: rt(RT1), task_id: Some("t-1".into()) });
    assert_eq!(seen[1], Push::TaskAvailable { runtime_id: rt(RT1), task_id: None });
    assert_eq!(seen[2], Push::PendingWork { runtime_id: rt(RT1), kind: Some("model_list".into()) });
    assert_eq!(
        seen[3],
        Push::RuntimeProfilesChanged { workspace_id: "ws-1".into(), runtime_profile_id: Some("p-1".into()) }
    );
    assert_eq!(seen[4], Push::WorkspacesChanged);
}

#[tokio::test]
async fn a_slow_reader_is_told_it_lagged() {
    let server = WsServer::start(Script::default()).await;
    let mut config = quick();
    config.push_buffer = 2;
    let channel = WsChannel::open(&client(&server), [rt(RT1)], config);
    let mut pushes = channel.pushes();
    assert_eq!(pushes.next().await, Some(Push::Connected { generation: 1 }));
    for _ in 0..5 {
        server.push(json!({"type": "daemon:task_available", "payload": {"runtime_id": RT1}}));
    }
    // The fifth is read after the heartbeat below, which the server answers after them.
    let _ = channel.heartbeat(&rt(RT1), false).await.unwrap();
    assert_eq!(pushes.next().await, Some(Push::Lagged));
}

#[tokio::test]
async fn pings_are_answered_and_a_silent_server_is_dropped_and_redialled() {
    let mut server = WsServer::start(Script::default()).await;
    let mut config = quick();
    config.idle_timeout = Duration::from_millis(400);
    let channel = WsChannel::open(&client(&server), [rt(RT1)], config);
    connected(&channel, 1).await;
    server.ping();
    server.next(|seen| matches!(seen, Seen::Pong { conn: 1 }).then_some(())).await;
    // Nothing more from the server: the client drops it after the idle
    // timeout and connects again after about a second.
    server.next(|seen| matches!(seen, Seen::Closed { conn: 1 }).then_some(())).await;
    let (_, _, _) = server.next_handshake().await;
    connected(&channel, 2).await;
}

#[tokio::test]
async fn refused_handshakes_back_off_and_a_new_runtime_set_reconnects_at_once() {
    let mut server = WsServer::start(Script {
        refuse: Some((404, "{\"error\":\"runtime not found\"}\n".into())),
        ..Script::default()
    })
    .await;
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let (_, _, first) = server.next_handshake().await;
    let (_, _, second) = server.next_handshake().await;
    let (_, _, third) = server.next_handshake().await;
    assert!(second - first >= Duration::from_millis(800), "≈1 s: {:?}", second - first);
    assert!(third - second >= Duration::from_millis(1600), "≈2 s: {:?}", third - second);
    let error = channel.link().last_error.unwrap();
    assert_eq!(error.status(), Some(404));
    assert!(error.is_runtime_not_found());
    assert!(!channel.link().absent);

    server.script(|script| script.refuse = None);
    let changed = Instant::now();
    channel.set_runtimes([rt(RT2), rt(RT1)]);
    let (uri, _, at) = server.next_handshake().await;
    assert_eq!(uri, format!("/api/daemon/ws?runtime_ids={RT1}%2C{RT2}"));
    assert!(at - changed < Duration::from_millis(800), "at once, not after the backoff");
    connected(&channel, 1).await;
}

#[tokio::test]
async fn a_server_without_the_channel_is_left_alone_and_everything_goes_over_http() {
    let mut server =
        WsServer::start(Script { refuse: Some((404, "404 page not found\n".into())), ..Script::default() }).await;
    let http = RecordingHttp::default();
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    let _ = server.next_handshake().await;
    let mut link = channel.link_changes();
    link.wait_for(|link| link.absent).await.unwrap();
    api.send_heartbeat(&rt(RT1)).await.unwrap();
    let _ = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!((http.heartbeats(), http.claims()), (1, 1));
}

#[tokio::test]
async fn heartbeats_fall_back_per_runtime_and_a_gone_runtime_is_the_http_404() {
    let server = WsServer::start(Script::default()).await;
    let http = RecordingHttp::default();
    let channel = WsChannel::open(&client(&server), [rt(RT1), rt(RT2)], quick());
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    negotiated(&channel, 1).await;
    api.send_heartbeat(&rt(RT1)).await.unwrap();
    assert_eq!(http.heartbeats(), 0, "over the socket");
    // No ack (a stalled server): HTTP for that heartbeat.
    server.script(|script| script.acks = false);
    api.send_heartbeat(&rt(RT2)).await.unwrap();
    assert_eq!(http.heartbeats(), 1);
    server.script(|script| {
        script.acks = true;
        script.gone.insert(RT2.to_owned());
    });
    let error = api.send_heartbeat(&rt(RT2)).await.unwrap_err();
    assert!(error.is_runtime_not_found(), "{error}");
    assert_eq!(channel.runtimes(), [rt(RT1)], "the gone runtime left the set");
    // A registration through the backend adds its runtimes.
    http.runtimes.lock().unwrap().push(RT2.to_ascii_uppercase());
    let registration = multica_api::RegisterRequest::default();
    let _ = api.register(&registration).await;
    assert_eq!(channel.runtimes(), [rt(RT1), rt(RT2)]);
}

#[tokio::test]
async fn a_claim_answer_far_over_64_kib_is_accepted() {
    let big = "x".repeat(20 * 1024 * 1024);
    let mut answer = claim_answer("big-task", RT1);
    answer["tasks"][0]["prompt"] = json!(big);
    let server = WsServer::start(Script { claim: ClaimMode::Answer(answer), ..Script::default() }).await;
    let http = RecordingHttp::default();
    let mut config = quick();
    config.rpc_budget = Duration::from_secs(5);
    let channel = WsChannel::open(&client(&server), [rt(RT1)], config);
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    negotiated(&channel, 1).await;
    let tasks = api.claim_tasks(&claim_body()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(http.claims(), 0);
}

#[tokio::test]
async fn a_runtime_set_change_lets_the_claim_in_flight_finish_before_reconnecting() {
    let server = WsServer::start(Script {
        claim: ClaimMode::Late(Duration::from_millis(150), claim_answer("task-1", RT1)),
        ..Script::default()
    })
    .await;
    let http = RecordingHttp::default();
    let channel = WsChannel::open(&client(&server), [rt(RT1)], quick());
    let api = WsFirst::with_channel(http.clone(), channel.clone());
    negotiated(&channel, 1).await;
    let body = claim_body();
    let claiming = api.claim_tasks(&body);
    let changing = async {
        // Once the claim is on the wire, a registration adds a runtime.
        tokio::task::yield_now().await;
        channel.add_runtimes([&rt(RT2)]);
    };
    let (tasks, ()) = tokio::join!(claiming, changing);
    assert_eq!(tasks.unwrap().len(), 1, "answered on the draining connection, not made uncertain");
    assert_eq!(http.claims(), 0);
    // The new connection holds both runtimes.
    negotiated(&channel, 2).await;
    assert_eq!(channel.link().runtimes, [rt(RT1), rt(RT2)]);
}
