//! What the worker tests share: the seeded fake, a registration for it and
//! an event recorder.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use multica_api::{DaemonApi, RuntimeId, RuntimeSpec, TaskId};
use multica_mock::{MockDaemon, Seed, TaskSeed};
use multica_worker::{Registration, Worker, WorkerEvent};

/// The demo seed's workspace, daemon, runtime and agent.
pub const WORKSPACE: &str = "11111111-1111-4111-8111-111111111111";
pub const DAEMON: &str = "demo-daemon";
pub const RUNTIME: &str = "33333333-3333-4333-8333-333333333333";
pub const AGENT: &str = "22222222-2222-4222-8222-222222222222";
/// The demo seed's three queued tasks.
pub const SEEDED_TASKS: [&str; 3] = [
    "44444444-4444-4444-8444-000000000001",
    "44444444-4444-4444-8444-000000000002",
    "44444444-4444-4444-8444-000000000003",
];

/// The fake with the demo seed (three tasks queued on [`RUNTIME`]).
pub fn seeded() -> MockDaemon {
    MockDaemon::builder().seed(Seed::demo()).build().unwrap()
}

/// The fake with no task queued.
pub fn empty() -> MockDaemon {
    let mock = seeded();
    for task in SEEDED_TASKS {
        mock.cancel(&TaskId::new(task)).unwrap();
    }
    mock
}

/// Queues one more task on [`RUNTIME`].
pub fn add_task(mock: &MockDaemon) -> TaskId {
    mock.add_task(TaskSeed {
        runtime_id: RuntimeId::new(RUNTIME),
        agent_id: AGENT.into(),
        issue_id: "55555555-5555-4555-8555-000000000099".into(),
        ..TaskSeed::default()
    })
    .unwrap()
}

/// The registration that upserts the seeded runtime.
pub fn registration() -> Registration {
    Registration::new(
        WORKSPACE,
        DAEMON,
        "test-host",
        vec![RuntimeSpec { provider: "claude".into(), version: "1.0.0".into(), ..RuntimeSpec::default() }],
    )
}

/// Every event a worker emitted, in order.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<WorkerEvent>>>);

impl Recorder {
    pub fn attach(&self, worker: Worker) -> Worker {
        let events = Arc::clone(&self.0);
        worker.on_event(move |event| events.lock().unwrap().push(event.clone()))
    }

    pub fn events(&self) -> Vec<WorkerEvent> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, matches: impl Fn(&WorkerEvent) -> bool) -> usize {
        self.events().iter().filter(|event| matches(event)).count()
    }
}

pub fn api(mock: &MockDaemon) -> Arc<dyn DaemonApi> {
    Arc::new(mock.clone())
}

/// The fake seen through a test double: counts the calls of
/// [`DaemonApi::drop_idle_connections`] and, when given a token, hands it
/// out with every claimed task (as a HEAD server's claim does).
#[derive(Debug)]
pub struct Probe {
    pub mock: MockDaemon,
    pub drops: std::sync::atomic::AtomicUsize,
    pub claim_token: Option<&'static str>,
}

impl Probe {
    pub fn new(mock: &MockDaemon) -> Arc<Self> {
        Arc::new(Self { mock: mock.clone(), drops: Default::default(), claim_token: None })
    }

    pub fn with_claim_token(mock: &MockDaemon, token: &'static str) -> Arc<Self> {
        Arc::new(Self { mock: mock.clone(), drops: Default::default(), claim_token: Some(token) })
    }

    pub fn drops(&self) -> usize {
        self.drops.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[multica_api::async_trait]
impl DaemonApi for Probe {
    async fn call(&self, call: multica_api::Call) -> multica_api::Result<multica_api::Reply> {
        match self.mock.call(call).await? {
            multica_api::Reply::Claimed(Some(mut task)) => {
                task.auth_token = self.claim_token.map(multica_api::SecretToken::new);
                Ok(multica_api::Reply::Claimed(Some(task)))
            }
            reply => Ok(reply),
        }
    }

    fn drop_idle_connections(&self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The fake of server HEAD 1cc46b2697 with the demo seed, presenting a
/// personal token (HEAD wants one on every call).
pub fn seeded_head() -> MockDaemon {
    MockDaemon::builder()
        .seed(Seed::demo())
        .server_version(multica_api::ServerVersion::Head)
        .token("mul_worker_tests")
        .build()
        .unwrap()
}

/// [`seeded_head`] with no task queued.
pub fn empty_head() -> MockDaemon {
    let mock = seeded_head();
    for task in SEEDED_TASKS {
        mock.cancel(&TaskId::new(task)).unwrap();
    }
    mock
}
