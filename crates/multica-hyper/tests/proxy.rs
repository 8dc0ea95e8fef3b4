//! Proxies: a small HTTP proxy on 127.0.0.1, written here, forwards
//! absolute-form requests and tunnels `CONNECT`, counting what it saw; the
//! client goes through it, around it (`NO_PROXY`, loopback, disabled), and
//! fails clearly when it refuses or wants credentials.
#![allow(clippy::unwrap_used)]

mod support;
mod ws_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multica_api::layer::RetryPolicy;
use multica_api::{DaemonApiExt, Endpoint, Error, RuntimeId, TransportKind};
use multica_hyper::{HyperClient, HyperClientBuilder, Proxy};
use support::{Reply, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the proxy does with a request.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Forwards it to the backend.
    Forward,
    /// Answers 403.
    Refuse,
    /// Reads the request and never answers.
    Silent,
}

/// The head of one request the proxy received (the first on its
/// connection).
#[derive(Clone, Debug)]
struct Seen {
    /// `GET http://host:port/path HTTP/1.1`, `CONNECT host:port HTTP/1.1`…
    request_line: String,
    proxy_authorization: Option<String>,
}

/// A proxy on 127.0.0.1 sending everything, whatever the target, to
/// `backend`. With `credentials`, requests without that
/// `Proxy-Authorization` get a 407.
struct TestProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl TestProxy {
    async fn start(backend: SocketAddr, behaviour: Behaviour, credentials: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let expected = credentials.map(|pair| format!("Basic {}", base64(pair.as_bytes())));
        let accept_loop = tokio::spawn({
            let seen = Arc::clone(&seen);
            async move {
                let mut connections = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let (seen, expected) = (Arc::clone(&seen), expected.clone());
                    connections.spawn(serve(stream, backend, behaviour, expected, seen));
                    while connections.try_join_next().is_some() {}
                }
            }
        });
        Self { addr, seen, accept_loop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    backend: SocketAddr,
    behaviour: Behaviour,
    expected: Option<String>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let Ok(read) = client.read(&mut buf).await else { return };
        if read == 0 {
            return;
        }
        head.extend_from_slice(&buf[..read]);
        if let Some(at) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let proxy_authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.trim().to_owned());
    seen.lock()
        .unwrap()
        .push(Seen { request_line: request_line.clone(), proxy_authorization: proxy_authorization.clone() });
    if behaviour == Behaviour::Silent {
        std::future::pending::<()>().await;
    }
    let answer: Option<&[u8]> = if behaviour == Behaviour::Refuse {
        Some(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    } else if expected.is_some() && proxy_authorization != expected {
        Some(b"HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    } else {
        None
    };
    if let Some(answer) = answer {
        let _ = client.write_all(answer).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(backend).await else { return };
    if request_line.starts_with("CONNECT ") {
        if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
            return;
        }
        // Anything after the CONNECT head already belongs to the tunnel.
        let _ = server.write_all(&head[end..]).await;
    } else {
        // Absolute form is valid HTTP/1.1 for the backend too: the bytes go
        // on as they came.
        let _ = server.write_all(&head).await;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn backend() -> TestServer {
    TestServer::start(|_| Reply::json(200, r#"{"status":"ok"}"#)).await
}

fn addr_of(server: &TestServer) -> SocketAddr {
    server.url().rsplit("//").next().unwrap().parse().unwrap()
}

fn builder(url: &str) -> HyperClientBuilder {
    HyperClient::builder(url).timeout(Duration::from_secs(5))
}

async fn heartbeat(client: &HyperClient) -> multica_api::Result<()> {
    client.send_heartbeat(&RuntimeId::new("rt-1")).await.map(drop)
}

/// `err` and its causes, joined.
fn chain(err: &Error) -> String {
    err.display_chain().to_string()
}

#[test]
fn the_test_base64_is_base64() {
    assert_eq!(base64(b"Aladdin:opensesame"), "QWxhZGRpbjpvcGVuc2VzYW1l");
    assert_eq!(base64(b"a"), "YQ==");
    assert_eq!(base64(b"ab"), "YWI=");
}

#[tokio::test]
async fn plain_http_goes_through_the_proxy_in_absolute_form() {
    let server = backend().await;
    let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, None).await;
    let client = builder(&server.url()).proxy(Proxy::all(proxy.url())).build().unwrap();
    assert_eq!(client.proxy(), Some(format!("{}/", proxy.url()).as_str()));
    heartbeat(&client).await.unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].request_line, format!("POST {}/api/daemon/heartbeat HTTP/1.1", server.url()));
    assert_eq!(seen[0].proxy_authorization, None);
    assert_eq!(server.only_request().path, "/api/daemon/heartbeat");
}

#[tokio::test]
async fn the_environment_picks_the_proxy_and_the_client_never_resolves_the_server() {
    // `multica.test` resolves nowhere: only the proxy can reach it.
    let server = backend().await;
    let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, None).await;
    let port = addr_of(&server).port();
    let client = builder(&format!("http://multica.test:{port}"))
        .proxy(Proxy::from_env_vars([("http_proxy", proxy.url())]))
        .build()
        .unwrap();
    heartbeat(&client).await.unwrap();
    assert_eq!(proxy.seen()[0].request_line, format!("POST http://multica.test:{port}/api/daemon/heartbeat HTTP/1.1"));
    assert_eq!(server.only_request().header("host"), Some(format!("multica.test:{port}").as_str()));
}

#[cfg(feature = "tls")]
mod tls {
    use std::sync::Arc;

    use tokio_rustls::rustls;

    use super::*;

    /// A TLS config for `name` and its certificate (DER), as a custom root.
    fn certified(name: &str) -> (Arc<rustls::ServerConfig>, Vec<u8>) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let der = certified.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![der.clone().into()], key)
                .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        (Arc::new(config), der)
    }

    async fn tls_backend(name: &str) -> (TestServer, Vec<u8>) {
        let (config, der) = certified(name);
        (TestServer::start_tls(config, |_| Reply::json(200, r#"{"status":"ok"}"#)).await, der)
    }

    #[tokio::test]
    async fn https_is_tunnelled_with_connect_and_verified_end_to_end() {
        let (server, root) = tls_backend("multica.test").await;
        let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, None).await;
        let port = addr_of(&server).port();
        let client = builder(&format!("https://multica.test:{port}"))
            .add_root_certificate_der(root)
            .web_pki_roots(false)
            .proxy(Proxy::from_env_vars([("HTTPS_PROXY", proxy.url())]))
            .build()
            .unwrap();
        for _ in 0..3 {
            heartbeat(&client).await.unwrap();
        }
        let seen = proxy.seen();
        assert_eq!(seen.len(), 1, "one tunnel, kept alive: {seen:?}");
        assert_eq!(seen[0].request_line, format!("CONNECT multica.test:{port} HTTP/1.1"));
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|request| request.version == http::Version::HTTP_2), "h2 by ALPN inside");
    }

    #[tokio::test]
    async fn the_tunnel_carries_the_credentials_and_407_is_a_connect_error() {
        let (server, root) = tls_backend("127.0.0.1").await;
        let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, Some("user:pa ss")).await;
        let anonymous = builder(&server.url())
            .add_root_certificate_der(root.clone())
            .proxy(Proxy::all(proxy.url()))
            .build()
            .unwrap();
        let err = heartbeat(&anonymous).await.unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportKind::Connect), "{}", chain(&err));
        assert!(chain(&err).contains("proxy authorization required"), "{}", chain(&err));
        assert!(chain(&err).contains(&format!("through the proxy at {}", proxy.url())), "{}", chain(&err));
        assert_eq!(server.requests().len(), 0);

        let url = proxy.url().replace("http://", "http://user:pa%20ss@");
        let client = builder(&server.url()).add_root_certificate_der(root).proxy(Proxy::all(url)).build().unwrap();
        heartbeat(&client).await.unwrap();
        let seen = proxy.seen();
        assert_eq!(seen.last().unwrap().proxy_authorization.as_deref(), Some("Basic dXNlcjpwYSBzcw=="));
        assert_eq!(server.requests().len(), 1);
        assert!(!format!("{client:?}").contains("pa%20ss"));
        assert!(server.only_request().header("proxy-authorization").is_none(), "not sent inside the tunnel");
    }

    #[tokio::test]
    async fn a_proxy_refusing_the_tunnel_is_a_connect_error_a_claim_may_retry() {
        let (server, root) = tls_backend("127.0.0.1").await;
        let proxy = TestProxy::start(addr_of(&server), Behaviour::Refuse, None).await;
        let client =
            builder(&server.url()).add_root_certificate_der(root).proxy(Proxy::all(proxy.url())).build().unwrap();
        let err = client.claim_task(&RuntimeId::new("rt-1")).await.unwrap_err();
        assert!(matches!(err, Error::Transport { kind: TransportKind::Connect, .. }), "{}", chain(&err));
        assert!(chain(&err).contains("tunnel error: unsuccessful"), "{}", chain(&err));
        assert!(!err.may_have_reached_server());
        assert!(RetryPolicy::default().may_retry(Endpoint::ClaimTask, &err));
        assert_eq!(server.requests().len(), 0);
    }

    #[tokio::test]
    async fn the_connect_timeout_covers_a_proxy_that_never_answers_connect() {
        let (server, root) = tls_backend("127.0.0.1").await;
        let proxy = TestProxy::start(addr_of(&server), Behaviour::Silent, None).await;
        let client = builder(&server.url())
            .add_root_certificate_der(root)
            .proxy(Proxy::all(proxy.url()))
            .connect_timeout(Some(Duration::from_millis(300)))
            .build()
            .unwrap();
        let err = heartbeat(&client).await.unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportKind::Connect), "{}", chain(&err));
        assert!(chain(&err).contains("connect timeout"), "{}", chain(&err));
        assert_eq!(proxy.seen().len(), 1);
    }
}

#[tokio::test]
async fn a_forwarding_proxy_wanting_credentials_answers_407_and_gets_them_from_the_url() {
    let server = backend().await;
    let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, Some("user:pw")).await;
    let anonymous = builder(&server.url()).proxy(Proxy::all(proxy.url())).build().unwrap();
    let err = heartbeat(&anonymous).await.unwrap_err();
    assert_eq!(err.status(), Some(407), "{}", chain(&err));

    let client =
        builder(&server.url()).proxy(Proxy::all(proxy.url().replace("http://", "http://user:pw@"))).build().unwrap();
    heartbeat(&client).await.unwrap();
    heartbeat(&client).await.unwrap();
    assert_eq!(proxy.seen().last().unwrap().proxy_authorization.as_deref(), Some("Basic dXNlcjpwdw=="));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests.iter().all(|request| request.header("proxy-authorization") == Some("Basic dXNlcjpwdw==")),
        "every request on the kept-alive connection carries them"
    );
}

#[tokio::test]
async fn a_proxy_that_is_down_is_a_connect_error_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let server = backend().await;
    let client = builder(&server.url()).proxy(Proxy::all(dead.as_str())).build().unwrap();
    let err = client.claim_task(&RuntimeId::new("rt-1")).await.unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Connect), "{}", chain(&err));
    assert!(chain(&err).contains(&format!("through the proxy at {dead}/")), "{}", chain(&err));
    assert!(RetryPolicy::default().may_retry(Endpoint::ClaimTask, &err));
    let mut messages = vec![err.to_string()];
    let mut cause = std::error::Error::source(&err);
    while let Some(next) = cause {
        assert!(messages.iter().all(|outer| !outer.contains(&next.to_string())), "{messages:?} repeat {next}");
        messages.push(next.to_string());
        cause = next.source();
    }
    assert_eq!(server.requests().len(), 0);
}

#[tokio::test]
async fn no_proxy_loopback_and_disabling_go_direct_and_the_proxy_sees_nothing() {
    let server = backend().await;
    let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, None).await;
    let clients = [
        builder(&server.url()).proxy(Proxy::all(proxy.url()).no_proxy("localhost, 127.0.0.0/8")),
        // Go never proxies loopback from the environment.
        builder(&server.url()).proxy(Proxy::from_env_vars([("HTTP_PROXY", proxy.url())])),
        builder(&server.url()).proxy(Proxy::all(proxy.url())).no_proxy(),
        builder(&server.url()).proxy(Proxy::none()),
    ];
    for builder in clients {
        let client = builder.build().unwrap();
        assert_eq!(client.proxy(), None);
        heartbeat(&client).await.unwrap();
    }
    assert_eq!(server.requests().len(), 4);
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
}

#[tokio::test]
async fn the_env_constructor_takes_its_proxy_from_the_same_environment() {
    let server = backend().await;
    let proxy = TestProxy::start(addr_of(&server), Behaviour::Forward, None).await;
    let port = addr_of(&server).port();
    let client = HyperClientBuilder::from_env_vars([
        ("MULTICA_SERVER_URL", format!("ws://multica.test:{port}/ws")),
        ("MULTICA_TOKEN", "mdt_env".to_owned()),
        ("HTTP_PROXY", proxy.url()),
    ])
    .unwrap()
    .build()
    .unwrap();
    heartbeat(&client).await.unwrap();
    assert_eq!(proxy.seen()[0].request_line, format!("POST http://multica.test:{port}/api/daemon/heartbeat HTTP/1.1"));
    assert_eq!(server.only_request().header("authorization"), Some("Bearer mdt_env"));
}

#[test]
fn bad_proxy_settings_fail_the_build_naming_the_variable() {
    let err = HyperClient::builder("http://multica.example")
        .proxy(Proxy::from_env_vars([("HTTP_PROXY", "socks5://u:secret@p:1080")]))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidArgument(_)) && text.contains("HTTP_PROXY"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    let h2c = HyperClient::builder("http://multica.example")
        .proxy(Proxy::all("http://p:1"))
        .http2_prior_knowledge(true)
        .build();
    assert!(matches!(h2c, Err(Error::InvalidArgument(_))));
}

/// The daemon WebSocket goes through the same proxy, always by a `CONNECT`
/// tunnel (a forwarding proxy cannot carry an upgrade), with the proxy's
/// credentials on the `CONNECT` and the token only inside the tunnel.
#[tokio::test]
async fn the_daemon_websocket_tunnels_through_the_proxy_with_connect() {
    let mut server = ws_support::WsServer::start(ws_support::Script::default()).await;
    let backend: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let proxy = TestProxy::start(backend, Behaviour::Forward, Some("user:pw")).await;
    let proxied = format!("http://user:pw@{}", proxy.addr);
    let client = HyperClient::builder(&server.url).token("mul_secret").proxy(Proxy::all(proxied)).build().unwrap();
    let channel = multica_hyper::WsChannel::open(&client, [RuntimeId::new("rt-1")], multica_hyper::WsConfig::default());
    let (uri, headers, _) = server.next_handshake().await;
    assert_eq!(uri, "/api/daemon/ws?runtime_ids=rt-1");
    assert_eq!(headers["authorization"], "Bearer mul_secret");
    assert!(!headers.contains_key("proxy-authorization"), "the proxy's credentials stay with the proxy");
    let mut link = channel.link_changes();
    link.wait_for(|link| link.connected).await.unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line, format!("CONNECT {backend} HTTP/1.1"));
    assert_eq!(seen[0].proxy_authorization.as_deref(), Some("Basic dXNlcjpwdw=="));
}
