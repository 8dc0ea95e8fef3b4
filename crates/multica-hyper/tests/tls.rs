//! HTTPS with rustls: custom roots for self-hosted servers, h2 by ALPN.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod raw;
mod support;
mod ws_support;

use std::time::{Duration, Instant};

use http::Version;
use multica_api::{DaemonApiExt, Error, RuntimeId, TransportKind};
use multica_hyper::{HyperClient, RetryPolicy};
use raw::RawServer;
use support::{self_signed_tls, Reply, TestServer};

async fn tls_server() -> (TestServer, Vec<u8>, String) {
    let (config, der, pem) = self_signed_tls();
    let server = TestServer::start_tls(config, |_| Reply::json(200, r#"{"status":"ok"}"#)).await;
    (server, der, pem)
}

#[tokio::test]
async fn a_self_signed_server_is_trusted_by_a_custom_root_and_speaks_h2() {
    let (server, der, _) = tls_server().await;
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let client = HyperClient::builder(server.url()).add_root_certificate_der(der).build().unwrap();
    for _ in 0..3 {
        client.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap();
    }
    assert!(server.requests().iter().all(|request| request.version == Version::HTTP_2));
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn pem_roots_work_too_and_http2_can_be_turned_off() {
    let (server, _, pem) = tls_server().await;
    let client = HyperClient::builder(server.url())
        .add_root_certificates_pem(pem)
        .web_pki_roots(false)
        .http2(false)
        .build()
        .unwrap();
    client.send_heartbeat(&RuntimeId::new("rt-1")).await.unwrap();
    assert_eq!(server.only_request().version, Version::HTTP_11);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_before_sending() {
    let (server, _, _) = tls_server().await;
    let client = HyperClient::builder(server.url()).build().unwrap();
    let err = client.claim_task(&RuntimeId::new("rt-1")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { kind: TransportKind::Connect, .. }), "{err}");
    assert!(!err.may_have_reached_server());
    assert!(server.requests().is_empty());
}

#[test]
fn a_bad_root_certificate_is_an_error_at_build() {
    let err = HyperClient::builder("https://127.0.0.1:1").add_root_certificate_der(b"junk".to_vec()).build();
    assert!(matches!(err, Err(Error::InvalidArgument(_))));
}

/// A server that accepts TCP and then never answers the TLS handshake: the
/// connect timeout ends the call, not the much longer call deadline, and as
/// the request was never sent even a claim may be retried.
#[tokio::test]
async fn a_handshake_that_never_finishes_is_bounded_by_the_connect_timeout() {
    let server = RawServer::start(|conn| conn.stall()).await;
    let url = format!("https://127.0.0.1:{}", server.port());
    let connect_timeout = Duration::from_millis(200);
    let builder = || HyperClient::builder(&url).connect_timeout(Some(connect_timeout)).timeout(Duration::from_secs(30));

    let client = builder().build().unwrap();
    let started = Instant::now();
    let err = client.claim_task(&RuntimeId::new("rt-1")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Transport { kind: TransportKind::Connect, .. }), "{err}");
    assert!(err.display_chain().to_string().contains("connect timeout"), "{err}");
    assert!(elapsed >= connect_timeout && elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(!err.may_have_reached_server());

    let twice = RetryPolicy::default().with_max_attempts(2).with_initial_backoff(Duration::from_millis(10));
    let client = builder().build().unwrap().with_retry(twice);
    let err = client.claim_task(&RuntimeId::new("rt-1")).await.unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { attempts: 2, .. }), "{err}");
    assert_eq!(server.accepted(), 3, "the claim was tried again on a new connection");
}

/// The daemon WebSocket over TLS (`wss://`) trusts what the client trusts:
/// refused with the web PKI roots alone, connected with the server's
/// certificate added, and never HTTP/2 by ALPN (RFC 6455 upgrades only
/// HTTP/1.1), even though the HTTP client offers h2 to this server.
#[tokio::test]
async fn the_daemon_websocket_uses_the_clients_tls_roots() {
    let (config, der, _) = self_signed_tls();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let alpn = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_alpn = std::sync::Arc::clone(&alpn);
    let mut server = ws_support::WsServer::start_with(ws_support::Script::default(), move |stream| {
        let (acceptor, alpn) = (acceptor.clone(), std::sync::Arc::clone(&seen_alpn));
        async move {
            let tls = acceptor.accept(stream).await.ok()?;
            alpn.lock().unwrap().push(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
            Some(tls)
        }
    })
    .await;
    let url = server.url.replace("http://", "https://");
    let runtime = [RuntimeId::new("rt-1")];

    let untrusting = HyperClient::builder(&url).no_proxy().build().unwrap();
    let refused = multica_hyper::WsChannel::open(&untrusting, runtime.clone(), multica_hyper::WsConfig::default());
    let mut link = refused.link_changes();
    let link = link.wait_for(|link| link.last_error.is_some()).await.unwrap().clone();
    assert_eq!(link.last_error.unwrap().transport_kind(), Some(TransportKind::Connect));
    drop(refused);

    let trusting = HyperClient::builder(&url).no_proxy().add_root_certificate_der(der).build().unwrap();
    let channel = multica_hyper::WsChannel::open(&trusting, runtime, multica_hyper::WsConfig::default());
    let (uri, _, _) = server.next_handshake().await;
    assert_eq!(uri, "/api/daemon/ws?runtime_ids=rt-1");
    channel.link_changes().wait_for(|link| link.connected).await.unwrap();
    let negotiated = alpn.lock().unwrap().last().cloned().flatten();
    assert_ne!(negotiated, Some(b"h2".to_vec()), "never HTTP/2: the upgrade needs HTTP/1.1");
}
