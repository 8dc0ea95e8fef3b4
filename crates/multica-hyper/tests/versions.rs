//! The headers server HEAD 1cc46b2697 reads (capabilities, client
//! identity), and one client telling the two server versions apart.
#![allow(clippy::unwrap_used)]

mod support;

use multica_api::{
    CancelAck, ClientCapability, DaemonApiExt, DaemonWorkspace, RuntimeId, ServerVersion, TaskCompletion, TaskId,
    TaskUsage,
};
use multica_hyper::{HyperClient, DEFAULT_CLIENT_OS, DEFAULT_CLIENT_PLATFORM, DEFAULT_CLIENT_VERSION};
use support::{Recorded, Reply, TestServer};

const HEADERS: [&str; 4] = ["x-client-capabilities", "x-client-platform", "x-client-version", "x-client-os"];

fn ok(_: &Recorded) -> Reply {
    Reply::json(200, "{\"status\":\"ok\"}\n")
}

/// What each request carried of the four headers.
fn sent(request: &Recorded) -> [Option<&str>; 4] {
    HEADERS.map(|name| request.header(name))
}

#[tokio::test]
async fn by_default_the_client_names_itself_and_claims_no_capability() {
    let server = TestServer::start(ok).await;
    let client = HyperClient::builder(server.url()).build().unwrap();
    client.fail_task(&TaskId::new("t-1"), "agent crashed").await.unwrap();
    let request = &server.requests()[0];
    assert_eq!(sent(request), [None, Some("multica-rs"), Some(env!("CARGO_PKG_VERSION")), Some(std::env::consts::OS)]);
    assert_eq!(
        (DEFAULT_CLIENT_PLATFORM, DEFAULT_CLIENT_VERSION, DEFAULT_CLIENT_OS),
        ("multica-rs", env!("CARGO_PKG_VERSION"), std::env::consts::OS)
    );
    // The 3c93ebaf1c body is unchanged by the headers.
    assert_eq!(&request.body[..], br#"{"error":"agent crashed"}"#);
}

#[tokio::test]
async fn capabilities_and_identity_are_sent_as_configured_on_every_request() {
    let server = TestServer::start(ok).await;
    let client = HyperClient::builder(server.url())
        .capabilities([ClientCapability::SkillBundles, ClientCapability::LocalWorktree])
        .client_identity("my-daemon", "1.2.3", "")
        .build()
        .unwrap();
    client.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap();
    client.list_task_messages(&TaskId::new("t-1")).await.unwrap_err(); // `{"status":"ok"}` is not a list
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            sent(request),
            [Some("skill-bundles-v1,local-worktree-v1"), Some("my-daemon"), Some("1.2.3"), None],
            "{} {}",
            request.method,
            request.path
        );
    }
    assert_eq!(&requests[0].body[..], br#"{"runtime_id":"rt-1"}"#);

    let go = HyperClient::builder(server.url()).capabilities(ClientCapability::GO_DAEMON).build().unwrap();
    go.start_task(&TaskId::new("t-1")).await.unwrap();
    assert_eq!(
        server.requests()[2].header("x-client-capabilities"),
        Some(ClientCapability::header_value(&ClientCapability::GO_DAEMON).as_str())
    );
}

#[test]
fn a_header_value_that_cannot_be_sent_is_refused_when_building() {
    let err = HyperClient::builder("http://127.0.0.1:1").client_identity("a\r\nb", "1", "linux").build().unwrap_err();
    assert!(err.to_string().contains("X-Client-Platform"), "{err}");
    let err = HyperClient::builder("http://127.0.0.1:1").client_identity("p", "v", "é").build().unwrap_err();
    assert!(err.to_string().contains("X-Client-OS"), "{err}");
}

/// Server 3c93ebaf1c: its routes answer, the HEAD-only ones are unknown.
fn server_3c93ebaf1c(request: &Recorded) -> Reply {
    let path = request.path.split('?').next().unwrap();
    let known = path.ends_with("/usage") && path.contains("/runtimes/")
        || path == "/api/workspaces"
        || path.ends_with("/complete");
    match (known, path) {
        (true, "/api/workspaces") => Reply::json(200, r#"[{"id":"ws-1","name":"Diff","slug":"diff"}]"#),
        (true, _) if path.ends_with("/complete") => {
            Reply::json(400, "{\"error\":\"complete task: no rows in result set\"}\n")
        }
        (true, _) => ok(request),
        (false, _) => {
            Reply::with_headers(404, "404 page not found\n", &[("content-type", "text/plain; charset=utf-8")])
        }
    }
}

/// Server HEAD 1cc46b2697, as recorded: `/api/daemon/*` needs a token,
/// complete answers 200 with the (cancelled) row unchanged.
fn server_head(request: &Recorded) -> Reply {
    if request.header("authorization").is_none() {
        return Reply::json(401, r#"{"error":"missing authorization header"}"#);
    }
    let path = request.path.split('?').next().unwrap();
    match path {
        "/api/daemon/workspaces" => Reply::json(200, "[{\"id\":\"ws-1\",\"name\":\"Diff\"}]\n"),
        _ if path.ends_with("/prepare-lease") => Reply::json(200, r#"{"id":"t-1","status":"dispatched"}"#),
        _ if path.ends_with("/complete") => Reply::json(200, r#"{"id":"t-1","status":"cancelled","error":null}"#),
        _ if path.starts_with("/api/daemon/runtimes/") && path.ends_with("/usage") => {
            Reply::with_headers(404, "404 page not found\n", &[("content-type", "text/plain; charset=utf-8")])
        }
        _ => ok(request),
    }
}

fn usage() -> [TaskUsage; 1] {
    [TaskUsage { provider: "claude".into(), model: "m".into(), input_tokens: 3, ..TaskUsage::default() }]
}

#[tokio::test]
async fn against_3c93ebaf1c_the_client_detects_it_and_takes_its_routes() {
    let server = TestServer::start(server_3c93ebaf1c).await;
    let client = HyperClient::builder(server.url()).build().unwrap();
    let (runtime, task) = (RuntimeId::new("rt-1"), TaskId::new("t-1"));

    let version = client.server_version().await.unwrap();
    assert_eq!(version, ServerVersion::V3c93ebaf1c);
    client.report_task_usage_on(version, &runtime, &task, "2026-11-29", &usage()).await.unwrap();
    let workspaces = client.list_workspaces_on(version).await.unwrap();
    assert_eq!(workspaces, [DaemonWorkspace::new("ws-1".into(), "Diff")]);
    assert!(!client.ack_cancel_if_supported(&task, &CancelAck::default()).await.unwrap());
    assert_eq!(client.extend_prepare_lease_if_supported(&runtime, &task).await.unwrap(), None);
    let err = client.complete_task(&task, &TaskCompletion::with_output("x")).await.unwrap_err();
    assert!(err.is_task_state_conflict(), "{err}");

    let seen: Vec<String> = server.requests().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        seen,
        [
            "GET /api/daemon/workspaces",
            "POST /api/daemon/runtimes/rt-1/usage",
            "GET /api/workspaces",
            "POST /api/daemon/tasks/t-1/cancel-ack",
            "POST /api/daemon/runtimes/rt-1/tasks/t-1/prepare-lease",
            "POST /api/daemon/tasks/t-1/complete",
        ]
    );
    assert_eq!(
        &server.requests()[1].body[..],
        br#"{"entries":[{"date":"2026-11-29","provider":"claude","model":"m","input_tokens":3,"output_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0}]}"#
    );
}

#[tokio::test]
async fn against_head_the_client_detects_it_and_takes_its_routes() {
    let server = TestServer::start(server_head).await;
    let (runtime, task) = (RuntimeId::new("rt-1"), TaskId::new("t-1"));

    // Without a credential HEAD refuses the probe, which tells the version too.
    let anonymous = HyperClient::builder(server.url()).build().unwrap();
    assert_eq!(anonymous.server_version().await.unwrap(), ServerVersion::Head);

    let client = HyperClient::builder(server.url()).token("mdt_x").build().unwrap();
    let version = client.server_version().await.unwrap();
    assert_eq!(version, ServerVersion::Head);
    client.report_task_usage_on(version, &runtime, &task, "2026-11-29", &usage()).await.unwrap();
    let workspaces = client.list_workspaces_on(version).await.unwrap();
    assert_eq!(workspaces, [DaemonWorkspace::new("ws-1".into(), "Diff")]);
    assert!(client.ack_cancel_if_supported(&task, &CancelAck::default()).await.unwrap());
    let lease = client.extend_prepare_lease_if_supported(&runtime, &task).await.unwrap().unwrap();
    assert_eq!(lease.status, multica_api::TaskStatus::Dispatched);
    // HEAD's 200 with the cancelled row is the 3c93ebaf1c conflict.
    let err = client.complete_task(&task, &TaskCompletion::with_output("x")).await.unwrap_err();
    assert!(err.is_task_state_conflict(), "{err}");
    assert_eq!(err.status(), Some(400));

    let seen: Vec<String> = server.requests().iter().skip(1).map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(
        seen,
        [
            "GET /api/daemon/workspaces",
            "POST /api/daemon/tasks/t-1/usage",
            "GET /api/daemon/workspaces",
            "POST /api/daemon/tasks/t-1/cancel-ack",
            "POST /api/daemon/runtimes/rt-1/tasks/t-1/prepare-lease",
            "POST /api/daemon/tasks/t-1/complete",
        ]
    );
    assert_eq!(
        &server.requests()[2].body[..],
        br#"{"usage":[{"provider":"claude","model":"m","input_tokens":3,"output_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0}]}"#
    );
}
