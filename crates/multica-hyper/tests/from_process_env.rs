//! `HyperClient::from_env` reads the process environment. The only test of
//! this binary, so that setting variables races with no other thread.
#![allow(clippy::unwrap_used)]

mod support;

use multica_api::{DaemonApiExt, RuntimeId};
use multica_hyper::HyperClient;
use support::{Reply, TestServer};

#[test]
fn from_env_reads_the_process_environment() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = runtime.block_on(TestServer::start(|_| Reply::json(200, r#"{"status":"ok"}"#)));
    // Set while this is the process's only test thread; the runtime is
    // single-threaded and reads nothing from the environment.
    std::env::set_var("MULTICA_SERVER_URL", server.url());
    std::env::set_var("MULTICA_TOKEN", "mdt_process");
    std::env::set_var("MULTICA_HTTP_TIMEOUT", "12s");
    std::env::set_var("HTTP_PROXY", "http://proxy.invalid:3128");
    std::env::remove_var("http_proxy");
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    std::env::remove_var("REQUEST_METHOD");

    let client = HyperClient::from_env().unwrap();
    assert_eq!(client.timeout(), std::time::Duration::from_secs(12));
    // Loopback is reached directly, as Go's ProxyFromEnvironment does.
    assert_eq!(client.proxy(), None);
    runtime.block_on(client.send_heartbeat(&RuntimeId::new("rt-1"))).unwrap();
    assert_eq!(server.only_request().header("authorization"), Some("Bearer mdt_process"));

    // The builder's default reads the proxy variables too, at build time.
    let remote = HyperClient::builder("http://multica.example").build().unwrap();
    assert_eq!(remote.proxy(), Some("http://proxy.invalid:3128/"));
    std::env::set_var("NO_PROXY", ".example");
    assert_eq!(HyperClient::builder("http://multica.example").build().unwrap().proxy(), None);
    assert_eq!(HyperClient::builder("http://multica.example").no_proxy().build().unwrap().proxy(), None);
    drop(server);
}
