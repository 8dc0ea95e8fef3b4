//! The worker on `WsFirst` with the fake in process for HTTP and the small
//! scripted WebSocket server of multica-hyper's tests for the channel: the
//! pushes the fake cannot make yet (`pending_work`, WS-CONTRACT §10.8).
#![allow(clippy::unwrap_used)]

#[path = "../crates/multica-hyper/tests/ws_support/mod.rs"]
mod ws_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use multica::hyper::ws::WsChannel;
use multica::hyper::{HyperClient, WsConfig, WsFirst};
use multica::mock::{AgentSeed, MockDaemon, ServerVersion, WorkspaceSeed};
use multica::worker::{Agent, AgentOutcome, ModelCatalog, Registration, RuntimeAnswer, TaskContext, Worker};
use multica::{async_trait, DaemonApi, Runtime, RuntimeSpec};
use serde_json::json;
use tokio::sync::mpsc;
use ws_support::{Script, Seen, WsServer};

const PAT: &str = "mul_wsworker000000000000000000000000000000000";

/// Counts model-list requests and says when one came.
#[derive(Debug)]
struct Models {
    asked: Arc<AtomicUsize>,
    told: mpsc::UnboundedSender<()>,
}

#[async_trait]
impl Agent for Models {
    async fn run(&self, _context: TaskContext) -> AgentOutcome {
        AgentOutcome::completed("done")
    }

    async fn list_models(&self, _runtime: &Runtime) -> RuntimeAnswer<ModelCatalog> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let _ = self.told.send(());
        RuntimeAnswer::Unsupported
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_work_is_one_immediate_heartbeat_whose_request_is_answered_once() {
    let mock = MockDaemon::builder().server_version(ServerVersion::Head).token(PAT).build().unwrap();
    let workspace_id = mock.add_workspace(WorkspaceSeed { name: "Team".into(), ..WorkspaceSeed::default() }).unwrap();
    mock.add_agent(AgentSeed { workspace_id: workspace_id.clone(), name: "A".into(), ..AgentSeed::default() }).unwrap();
    let mut server = WsServer::start(Script::default()).await;
    let client = HyperClient::builder(&server.url).token(PAT).no_proxy().build().unwrap();
    let channel = WsChannel::open(&client, Vec::new(), WsConfig::default());
    let api = WsFirst::with_channel(mock.clone(), channel.clone());
    let pushes = api.pushes();
    let api: Arc<dyn DaemonApi> = Arc::new(api);
    let registration = Registration::new(
        workspace_id,
        "d1",
        "host",
        vec![RuntimeSpec { provider: "claude".into(), ..RuntimeSpec::default() }],
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let (told, mut answered) = mpsc::unbounded_channel();
    let worker = Worker::new(api, registration, Models { asked: asked.clone(), told }).wake_on(pushes);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move { worker.run(async { drop(stopped.await) }).await.unwrap() });

    let mut link = channel.link_changes();
    tokio::time::timeout(Duration::from_secs(10), link.wait_for(|link| link.connected && !link.runtimes.is_empty()))
        .await
        .unwrap()
        .unwrap();
    let runtime_id = channel.runtimes()[0].as_str().to_owned();
    // Quiet first: the connection's own heartbeat and the worker's first
    // round (over the socket, or over HTTP if it came before the socket).
    server.next_frame("daemon:heartbeat").await;
    let mut socket_beats = 1;
    while socket_beats < 2 && mock.calls_to(multica::Endpoint::SendHeartbeat).is_empty() {
        if tokio::time::timeout(Duration::from_millis(50), server.next_frame("daemon:heartbeat")).await.is_ok() {
            socket_beats += 1;
        }
    }
    let _ = server.drain();

    server.script(|script| script.model_list = Some("req-1".into()));
    let hint = json!({"type": "daemon:pending_work", "payload": {"runtime_id": runtime_id, "kind": "model_list"}});
    server.push(hint.clone());
    server.push(hint);
    tokio::time::timeout(Duration::from_secs(10), answered.recv()).await.unwrap().unwrap();
    let beats = server
        .drain()
        .iter()
        .filter(|seen| matches!(seen, Seen::Frame { value, .. } if value["type"] == "daemon:heartbeat"))
        .count();
    assert_eq!(beats, 1, "two hints within a second: one heartbeat");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the request handed out once, answered once");
    stop.send(()).unwrap();
    running.await.unwrap();
}
