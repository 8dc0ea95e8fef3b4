//! The token never shows: not in the `Debug` of the builder or the client,
//! not in any error's `Display` or `Debug` (nor its sources), not in tracing
//! output at TRACE level from every crate. And it does reach the server it
//! belongs to, so a broken setup cannot pass these tests by sending nothing.
//! (The hostile-server matrix checks every error it produces the same way.)
#![allow(clippy::unwrap_used)]

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multica_api::{DaemonApi, DaemonApiExt, Error, RuntimeId, TaskId};
use multica_hyper::{HyperClient, Proxy, RetryPolicy};
use support::{Reply, TestServer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::util::SubscriberInitExt;

const TOKEN: &str = "tok-SECRET-123";

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} shows the token: {text}");
}

/// Checks an error's `Display`, `Debug`, pretty `Debug` and every source.
fn assert_error_hidden(err: &Error) {
    assert_hidden("an error's Display", &err.to_string());
    assert_hidden("an error's Debug", &format!("{err:?} {err:#?}"));
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        assert_hidden("an error's source", &format!("{cause} {cause:?}"));
        source = cause.source();
    }
}

/// Every test's token-bearing server answers by path: a claim gets no task,
/// the workspace list 401, a heartbeat 500, a task status never.
async fn server() -> TestServer {
    TestServer::start(|request| match request.path.as_str() {
        "/api/daemon/runtimes/rt-1/tasks/claim" => Reply::json(200, r#"{"task":null}"#),
        "/api/workspaces" => Reply::json(401, r#"{"error":"invalid token"}"#),
        "/api/daemon/heartbeat" => Reply::json(500, r#"{"error":"heartbeat failed"}"#),
        _ => Reply::Never,
    })
    .await
}

fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// A succeeding call and every kind of failure on `client`; returns the
/// errors.
async fn exercise(client: &impl DaemonApi) -> Vec<Error> {
    let runtime = RuntimeId::new("rt-1");
    assert_eq!(client.claim_task(&runtime).await.unwrap(), None);
    let unauthorized = client.list_workspaces().await.unwrap_err();
    assert!(unauthorized.is_unauthorized(), "{unauthorized}");
    let server_error = client.send_heartbeat(&runtime).await.unwrap_err();
    assert_eq!(server_error.status(), Some(500));
    let timeout = client.get_task_status(&TaskId::new("t-1")).await.unwrap_err();
    assert!(timeout.is_timeout(), "{timeout}");
    vec![unauthorized, server_error, timeout]
}

fn client(url: &str, h2c: bool) -> HyperClient {
    HyperClient::builder(url)
        .token(TOKEN)
        .http2_prior_knowledge(h2c)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The only test that installs the global subscriber: everything any crate
/// traces, at TRACE, with span fields on close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_output_never_shows_the_token() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(LevelFilter::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .finish()
        .try_init()
        .unwrap();

    let server = server().await;
    let mut errors = Vec::new();
    for h2c in [false, true] {
        errors.extend(exercise(&client(&server.url(), h2c).with_tracing()).await);
    }
    let refused = client(&refused_url(), false).with_tracing().claim_task(&RuntimeId::new("rt-1")).await;
    errors.push(refused.unwrap_err());
    for err in &errors {
        assert_error_hidden(err);
    }

    let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(output.contains("daemon_api.call") && output.contains("status=401"), "tracing was captured: {output}");
    assert!(output.contains("h2"), "the transport's own tracing was captured too");
    assert_hidden("tracing output", &output);
    for request in server.requests() {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer tok-SECRET-123"),
            "{} {}",
            request.method,
            request.path
        );
    }
}

#[tokio::test]
async fn errors_of_every_kind_never_show_the_token() {
    let server = server().await;
    let client = client(&server.url(), false);
    let mut errors = exercise(&client).await;
    errors.push(client.claim_task(&RuntimeId::new("")).await.unwrap_err());
    let retries = RetryPolicy::default().with_initial_backoff(Duration::from_millis(1));
    let refused = HyperClient::builder(refused_url()).token(TOKEN).build().unwrap().with_retry(retries);
    errors.push(refused.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err());
    assert!(matches!(errors.last(), Some(Error::RetriesExhausted { .. })), "{:?}", errors.last());
    for err in &errors {
        assert_error_hidden(err);
    }
}

#[tokio::test]
async fn debug_of_builder_and_client_never_shows_the_token() {
    let builder = HyperClient::builder("http://127.0.0.1:1").token(TOKEN);
    assert_hidden("the builder's Debug", &format!("{builder:?} {builder:#?}"));
    let client = builder.build().unwrap();
    assert_hidden("the client's Debug", &format!("{client:?} {client:#?}"));
    let handle = client.with_call_timeout(Duration::from_secs(1));
    assert_hidden("a handle's Debug", &format!("{handle:?}"));
    assert_hidden("a layered client's Debug", &format!("{:?}", handle.clone().with_tracing()));
    client.set_token(format!("{TOKEN}-2")).unwrap();
    assert_hidden("the client's Debug after set_token", &format!("{client:?}"));
    assert!(format!("{client:?}").contains("<redacted>"));
}

#[test]
fn refused_credentials_are_not_echoed_in_errors() {
    let bad_token = HyperClient::builder("http://127.0.0.1:1").token(format!("{TOKEN}\n")).build().unwrap_err();
    assert_error_hidden(&bad_token);
    let client = HyperClient::builder("http://127.0.0.1:1").build().unwrap();
    assert_error_hidden(&client.set_token(format!("{TOKEN}\r\n")).unwrap_err());
    // A token pasted into the URL is refused without being repeated.
    for url in [format!("http://user:{TOKEN}@127.0.0.1:1/"), format!("http://127.0.0.1:1/?token={TOKEN}")] {
        let builder = HyperClient::builder(url);
        assert_hidden("the builder's Debug", &format!("{builder:?}"));
        assert_error_hidden(&builder.build().unwrap_err());
    }
}

/// A proxy URL with the token as its password (the secret of this file).
fn proxy_url(host: &str) -> String {
    format!("http://daemon:{TOKEN}@{host}")
}

#[tokio::test]
async fn proxy_credentials_never_show() {
    // Through a proxy that is down, over http and https (tunnel), retried.
    let dead = refused_url().replace("http://", "");
    let bases: &[&str] =
        if cfg!(feature = "tls") { &["http://127.0.0.1:1", "https://127.0.0.1:1"] } else { &["http://127.0.0.1:1"] };
    for base in bases {
        let builder = HyperClient::builder(*base).proxy(Proxy::all(proxy_url(&dead)));
        assert_hidden("the builder's Debug", &format!("{builder:?} {builder:#?}"));
        let client = builder.build().unwrap();
        assert_hidden("the client's Debug", &format!("{client:?} {client:#?}"));
        assert_hidden("the client's proxy", client.proxy().unwrap());
        let retried = client.clone().with_retry(RetryPolicy::default().with_initial_backoff(Duration::from_millis(1)));
        let err = retried.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(err.display_chain().to_string().contains("through the proxy"), "{}", err.display_chain());
        assert_error_hidden(&err);
    }
    // Proxies read from an environment, and refused ones.
    let from_env = Proxy::from_env_vars([("HTTPS_PROXY", proxy_url("p:1")), ("HTTP_PROXY", proxy_url("p:2"))]);
    assert_hidden("an environment proxy's Debug", &format!("{from_env:?} {from_env:#?}"));
    for refused in [format!("socks5://u:{TOKEN}@p:1"), format!("https://u:{TOKEN}@p:1"), format!("http://u:{TOKEN}@")] {
        let proxy = Proxy::from_env_vars([("HTTPS_PROXY", refused.clone())]);
        assert_hidden("a refused proxy's Debug", &format!("{proxy:?}"));
        assert_error_hidden(&HyperClient::builder("https://multica.example").proxy(proxy).build().unwrap_err());
        assert_error_hidden(
            &HyperClient::builder("https://multica.example").proxy(Proxy::all(refused)).build().unwrap_err(),
        );
    }
}

#[test]
fn the_env_constructor_never_shows_the_token() {
    let bad = multica_hyper::HyperClientBuilder::from_env_vars([
        ("MULTICA_SERVER_URL", "http://127.0.0.1:1".to_owned()),
        ("MULTICA_TOKEN", format!("{TOKEN}\u{7f}")),
    ])
    .unwrap_err();
    assert!(bad.to_string().contains("MULTICA_TOKEN"), "{bad}");
    assert_error_hidden(&bad);
    let in_url = multica_hyper::HyperClientBuilder::from_env_vars([(
        "MULTICA_SERVER_URL",
        format!("https://daemon:{TOKEN}@multica.example/ws"),
    )])
    .unwrap_err();
    assert_error_hidden(&in_url);
    let builder = multica_hyper::HyperClientBuilder::from_env_vars([
        ("MULTICA_SERVER_URL", "http://127.0.0.1:1".to_owned()),
        ("MULTICA_TOKEN", TOKEN.to_owned()),
        ("HTTP_PROXY", proxy_url("p:3")),
    ])
    .unwrap();
    assert_hidden("an env builder's Debug", &format!("{builder:?}"));
}
