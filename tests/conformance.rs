//! The conformance suite of `multica_api::conformance`, run on every
//! backend. The same contract tests must give the same result everywhere:
//! a difference is a bug in one backend. A new backend joins with one line
//! in `backends!` below.

use std::sync::Arc;
use std::time::Duration;

use multica::conformance::{run_all, TESTS};
use multica::hyper::{HyperClient, WsFirst};
use multica::layer::RetryPolicy;
use multica::mock::{serve, MockDaemon, MockServer, ServerVersion, Transport};
use multica::{DaemonApi, DaemonApiExt};

const TOKEN: &str = "conformance-token";
/// At HEAD the token is a personal access token (`mul_…`) of a member of
/// every workspace: every daemon route checks it.
const HEAD_TOKEN: &str = "mul_conformance-token";

/// A backend under test, the fake that backs it, and the server (if any)
/// that must outlive the run.
struct Backend {
    api: Arc<dyn DaemonApi>,
    fake: MockDaemon,
    _server: Option<MockServer>,
}

fn fake(version: ServerVersion) -> MockDaemon {
    let token = if version == ServerVersion::Head { HEAD_TOKEN } else { TOKEN };
    MockDaemon::builder().server_version(version).token(token).build().expect("an empty fake builds")
}

/// The fake called in process.
async fn in_process(version: ServerVersion) -> Backend {
    let fake = fake(version);
    Backend { api: Arc::new(fake.clone()), fake, _server: None }
}

/// The production client over HTTP against the fake's server on 127.0.0.1.
async fn over_http(version: ServerVersion) -> Backend {
    let fake = fake(version);
    let token = if version == ServerVersion::Head { HEAD_TOKEN } else { TOKEN };
    let server = serve(fake.clone()).await.expect("the fake serves on 127.0.0.1");
    let client = HyperClient::builder(server.base_url()).token(token).build().expect("client builds");
    Backend { api: Arc::new(client), fake, _server: Some(server) }
}

/// The WebSocket-first backend over the fake's server: heartbeats and
/// claims on the daemon WebSocket when the fake offers it, HTTP for the rest
/// and for every fallback.
async fn ws_first(version: ServerVersion) -> Backend {
    let inner = over_http(version).await;
    let token = if version == ServerVersion::Head { HEAD_TOKEN } else { TOKEN };
    let server = inner._server.as_ref().expect("served over HTTP");
    let client = HyperClient::builder(server.base_url()).token(token).build().expect("client builds");
    Backend { api: Arc::new(WsFirst::new(client)), ..inner }
}

/// Every layer stacked over another backend: layers must forward every call
/// unchanged.
async fn layered(inner: impl std::future::Future<Output = Backend>) -> Backend {
    let inner = inner.await;
    let api = inner.api.with_timeout(Duration::from_secs(10)).with_retry(RetryPolicy::default());
    #[cfg(feature = "tracing")]
    let api = api.with_tracing();
    Backend { api: Arc::new(api), ..inner }
}

async fn conform(backend: Backend, name: &str) {
    for (test, run) in TESTS {
        // Printed so a failure names the contract test and the backend.
        eprintln!("{name}: {test}");
        run(backend.api.as_ref(), &backend.fake).await;
    }
}

macro_rules! backends {
    ($($name:ident => $setup:expr,)+) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            conform($setup.await, stringify!($name)).await;
        }
    )+};
}

backends! {
    mock_in_process => in_process(ServerVersion::V3c93ebaf1c),
    hyper_over_http => over_http(ServerVersion::V3c93ebaf1c),
    layers_over_mock => layered(in_process(ServerVersion::V3c93ebaf1c)),
    layers_over_hyper => layered(over_http(ServerVersion::V3c93ebaf1c)),
    head_mock_in_process => in_process(ServerVersion::Head),
    head_hyper_over_http => over_http(ServerVersion::Head),
    head_layers_over_hyper => layered(over_http(ServerVersion::Head)),
    ws_first_over_http => ws_first(ServerVersion::V3c93ebaf1c),
    head_ws_first_over_http => ws_first(ServerVersion::Head),
    head_layers_over_ws_first => layered(ws_first(ServerVersion::Head)),
}

/// `run_all` is the entry point for third-party backends; it must run the
/// same list.
#[tokio::test]
async fn run_all_covers_every_contract_test() {
    let backend = in_process(ServerVersion::V3c93ebaf1c).await;
    run_all(backend.api.as_ref(), &backend.fake).await;
    assert!(TESTS.len() >= 23, "{}", TESTS.len());
}

/// On HEAD the WebSocket-first backend really uses the socket during the
/// suite: heartbeats and claims reach the fake over it, not only over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_ws_first_carries_calls_on_the_socket() {
    let backend = ws_first(ServerVersion::Head).await;
    let fake = backend.fake.clone();
    conform(backend, "head_ws_first_carries_calls_on_the_socket").await;
    let on_socket = fake.calls_with_transport().iter().filter(|(_, transport)| *transport == Transport::Ws).count();
    assert!(on_socket > 0, "no call of the suite went over the socket");
}
