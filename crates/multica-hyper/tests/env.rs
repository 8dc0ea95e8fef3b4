//! `HyperClientBuilder::from_env_vars`: a client configured as the Go
//! daemon is, from an injected environment (the process's is never
//! touched here; `from_process_env.rs` reads it).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use multica_api::{DaemonApiExt, Error, RuntimeId, TaskId};
use multica_hyper::{HyperClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
use support::{Reply, TestServer};

fn env_builder(vars: &[(&str, &str)]) -> Result<HyperClientBuilder, Error> {
    HyperClientBuilder::from_env_vars(vars.iter().copied())
}

#[tokio::test]
async fn server_url_and_token_come_from_the_environment() {
    let server = TestServer::start(|_| Reply::json(200, r#"{"status":"ok"}"#)).await;
    // The Go daemon's ws:// form of the same server, with its /ws path.
    let url = format!("{}/ws", server.url().replace("http://", "ws://"));
    let client =
        env_builder(&[("MULTICA_SERVER_URL", &url), ("MULTICA_TOKEN", " mdt_env \n")]).unwrap().build().unwrap();
    assert_eq!(client.timeout(), DEFAULT_TIMEOUT);
    client.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap();
    let request = server.only_request();
    assert_eq!(request.path, "/api/daemon/heartbeat");
    assert_eq!(request.header("authorization"), Some("Bearer mdt_env"), "trimmed as Go's TrimSpace");
}

#[tokio::test]
async fn an_empty_environment_is_the_go_daemon_default_without_a_token() {
    let client = env_builder(&[("MULTICA_SERVER_URL", " "), ("MULTICA_TOKEN", "")]).unwrap().build().unwrap();
    assert!(!client.has_token());
    assert!(format!("{client:?}").contains("http://localhost:8080"), "{client:?}");
}

#[tokio::test]
async fn the_timeout_variable_bounds_each_call() {
    let server = TestServer::start(|_| Reply::Never).await;
    let client = env_builder(&[("MULTICA_SERVER_URL", &server.url()), ("MULTICA_HTTP_TIMEOUT", "300ms")])
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(client.timeout(), Duration::from_millis(300));
    let started = Instant::now();
    let err = client.get_task_status(&TaskId::new("t-1")).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < DEFAULT_CONNECT_TIMEOUT, "{:?}", started.elapsed());
}

#[test]
fn bad_values_name_their_variable() {
    for (vars, variable, why) in [
        (&[("MULTICA_SERVER_URL", "localhost:8080")][..], "MULTICA_SERVER_URL", "needs a scheme"),
        (&[("MULTICA_SERVER_URL", "tcp://h")][..], "MULTICA_SERVER_URL", "must use ws, wss, http or https"),
        (&[("MULTICA_HTTP_TIMEOUT", "30")][..], "MULTICA_HTTP_TIMEOUT", "\"30\" is not a positive duration"),
        (&[("MULTICA_HTTP_CONNECT_TIMEOUT", "-1s")][..], "MULTICA_HTTP_CONNECT_TIMEOUT", "positive duration"),
        (&[("MULTICA_HTTP_TIMEOUT", "0s")][..], "MULTICA_HTTP_TIMEOUT", "positive duration"),
        (&[("MULTICA_TOKEN", "mdt_a\u{7f}b")][..], "MULTICA_TOKEN", "visible ASCII"),
    ] {
        let err = env_builder(vars).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidArgument(_)), "{text}");
        assert!(text.contains(variable) && text.contains(why), "{vars:?}: {text}");
        assert!(!text.contains("mdt_"), "the token is never shown: {text}");
    }
    // A bad proxy variable is reported when the client is built, by name.
    let err = env_builder(&[("MULTICA_SERVER_URL", "http://multica.example"), ("HTTP_PROXY", "socks5://p:1")])
        .unwrap()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("HTTP_PROXY"), "{err}");
}

#[test]
fn the_builder_can_still_change_what_the_environment_set() {
    let client = env_builder(&[("MULTICA_SERVER_URL", "http://127.0.0.1:1"), ("MULTICA_HTTP_TIMEOUT", "5s")])
        .unwrap()
        .timeout(Duration::from_secs(7))
        .build()
        .unwrap();
    assert_eq!(client.timeout(), Duration::from_secs(7));
}
