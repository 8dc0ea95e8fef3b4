//! Requests per second of `HyperClient` against an in-process loopback
//! server, next to raw hyper sending the same pre-serialized bytes (the
//! limit), raw hyper doing the same serde_json work per call ("hyper+serde":
//! what the transport itself costs beyond JSON) and a plain reqwest client
//! making the same calls (what a user would write instead). Prints a summary
//! with the ratios at the end.
//!
//! `cargo bench -p multica-hyper` (add `-- --quick` for a short run).
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use multica_api::{request, ClaimResponse, DaemonApi, HeartbeatResponse, MessageKind, RuntimeId, TaskId, TaskMessage};
use multica_hyper::HyperClient;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Call {
    Claim,
    Messages,
    Heartbeat,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Messages => "report_task_messages",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// A claimed task of about 2 KB, shaped like the server's.
fn claim_body() -> Bytes {
    let task = json!({"task": {
        "id": "7f3c9a52-1e0b-4f61-9a7e-3d2b8c4e5f60", "agent_id": "a1b2c3d4-0000-4000-8000-000000000001",
        "runtime_id": "rt-4c1d2e3f", "issue_id": "iss-6a7b8c9d", "workspace_id": "ws-1f2e3d4c",
        "status": "dispatched", "priority": 2, "dispatched_at": "2026-03-30T12:00:00Z", "started_at": null,
        "completed_at": null, "result": null, "error": null, "created_at": "2026-03-30T11:59:58Z",
        "agent": {"id": "a1b2c3d4-0000-4000-8000-000000000001", "name": "Backend engineer",
            "instructions": "You are a careful backend engineer. Read the issue, explore the repository, \
                write tests first, keep changes small and explain them in the pull request. ".repeat(4),
            "skills": [{"name": "go-testing", "content": "Use table-driven tests; run go test ./... before pushing. ".repeat(5),
                "files": [{"path": "checklist.md", "content": "- tests pass\n- lint clean\n- docs updated\n".repeat(4)}]}]},
        "repos": [{"url": "https://github.com/example/backend", "description": "The API server"}],
        "prior_session_id": "sess-0a1b2c3d", "prior_work_dir": "/home/agent/work/backend"
    }});
    Bytes::from(serde_json::to_vec(&task).unwrap())
}

/// A batch of 50 live-output messages as the daemon sends them.
fn messages() -> Vec<TaskMessage> {
    (1..=50)
        .map(|seq| match seq % 3 {
            0 => TaskMessage {
                seq,
                kind: MessageKind::ToolUse,
                tool: "bash".into(),
                input: json!({"command": "go test ./internal/... -run TestClaim -count=1"})
                    .as_object()
                    .cloned()
                    .unwrap(),
                ..TaskMessage::default()
            },
            1 => TaskMessage {
                seq,
                kind: MessageKind::ToolResult,
                tool: "bash".into(),
                output: "ok  \texample.com/backend/internal/daemon\t0.412s\n".repeat(3),
                ..TaskMessage::default()
            },
            _ => TaskMessage::text(seq, "Looking at the claim handler to see how the queue is ordered by priority."),
        })
        .collect()
}

/// Request bodies serialized straight from borrowed data, as a careful
/// hand-written client would (not through `serde_json::Value`).
#[derive(serde::Serialize)]
struct MessagesBody<'a> {
    messages: &'a [TaskMessage],
}

#[derive(serde::Serialize)]
struct HeartbeatBody<'a> {
    runtime_id: &'a RuntimeId,
}

/// Connections the server accepted, all contenders together.
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);

const OK: &[u8] = br#"{"status":"ok"}"#;

/// A loopback HTTP/1.1 server on its own runtime thread.
fn start_server() -> String {
    let claim = claim_body();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                ACCEPTED.fetch_add(1, Ordering::Relaxed);
                stream.set_nodelay(true).unwrap();
                let claim = claim.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let claim = claim.clone();
                        async move {
                            let path = request.uri().path().to_owned();
                            let _ = request.into_body().collect().await;
                            let body = if path.ends_with("/claim") { claim } else { Bytes::from_static(OK) };
                            let response = http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(body))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    format!("http://{addr}")
}

/// What every contender needs to make the calls.
struct Fixture {
    base: String,
    runtime: RuntimeId,
    task: TaskId,
    messages: Vec<TaskMessage>,
}

/// Raw hyper: pre-built URIs and bodies, no JSON work at all.
struct Raw {
    client: Client<HttpConnector, Full<Bytes>>,
    requests: BTreeMap<Call, (http::Uri, Bytes)>,
}

impl Raw {
    fn new(fixture: &Fixture) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(http);
        let wire = |call| match call {
            Call::Claim => request::claim_task(&fixture.runtime).unwrap().into_wire(),
            Call::Messages => request::report_task_messages(&fixture.task, &fixture.messages).unwrap().into_wire(),
            Call::Heartbeat => request::send_heartbeat(&fixture.runtime).unwrap().into_wire(),
        };
        let requests = [Call::Claim, Call::Messages, Call::Heartbeat]
            .into_iter()
            .map(|call| {
                let wire = wire(call);
                let uri: http::Uri = format!("{}{}", fixture.base, wire.path).parse().unwrap();
                (call, (uri, Bytes::from(wire.body.unwrap())))
            })
            .collect();
        Self { client, requests }
    }

    /// One call. With `json`, the request body is serialized and the answer
    /// decoded with serde_json on every call, as a hand-written hyper client
    /// must; without, the pre-serialized bytes are sent and the answer dropped.
    async fn call(&self, call: Call, json: Option<&Fixture>) {
        let (uri, body) = &self.requests[&call];
        let body = match (json, call) {
            (Some(fixture), Call::Messages) => {
                Bytes::from(serde_json::to_vec(&MessagesBody { messages: &fixture.messages }).unwrap())
            }
            (Some(fixture), Call::Heartbeat) => {
                Bytes::from(serde_json::to_vec(&HeartbeatBody { runtime_id: &fixture.runtime }).unwrap())
            }
            _ => body.clone(),
        };
        let request =
            http::Request::post(uri.clone()).header("content-type", "application/json").body(Full::new(body)).unwrap();
        let response = self.client.request(request).await.unwrap();
        assert!(response.status().is_success());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        match (json, call) {
            (Some(_), Call::Claim) => drop(serde_json::from_slice::<ClaimResponse>(&bytes).unwrap()),
            (Some(_), Call::Heartbeat) => drop(serde_json::from_slice::<HeartbeatResponse>(&bytes).unwrap()),
            _ => {}
        }
        // As multica-hyper does: let hyper-util put the connection back in
        // the pool before the next request, or that request races it with a
        // fresh connect (measured: c=1 drops to a third).
        tokio::task::yield_now().await;
    }
}

/// Plain reqwest, as a user would write the calls: format the URL,
/// serialize, send, check the status, decode.
async fn reqwest_call(client: &reqwest::Client, fixture: &Fixture, call: Call) {
    let (url, body) = match call {
        Call::Claim => {
            (format!("{}/api/daemon/runtimes/{}/tasks/claim", fixture.base, fixture.runtime), b"{}".to_vec())
        }
        Call::Messages => (
            format!("{}/api/daemon/tasks/{}/messages", fixture.base, fixture.task),
            serde_json::to_vec(&MessagesBody { messages: &fixture.messages }).unwrap(),
        ),
        Call::Heartbeat => (
            format!("{}/api/daemon/heartbeat", fixture.base),
            serde_json::to_vec(&HeartbeatBody { runtime_id: &fixture.runtime }).unwrap(),
        ),
    };
    let response = client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    let response = response.error_for_status().unwrap();
    let bytes = response.bytes().await.unwrap();
    match call {
        Call::Claim => drop(serde_json::from_slice::<ClaimResponse>(&bytes).unwrap()),
        Call::Heartbeat => drop(serde_json::from_slice::<HeartbeatResponse>(&bytes).unwrap()),
        Call::Messages => {}
    }
}

#[derive(Clone)]
enum Contender {
    Sdk(HyperClient),
    Raw(Arc<Raw>),
    RawWithJson(Arc<Raw>),
    Reqwest(reqwest::Client),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Self::Sdk(_) => "multica-hyper",
            Self::Raw(_) => "raw hyper",
            Self::RawWithJson(_) => "hyper+serde",
            Self::Reqwest(_) => "reqwest",
        }
    }

    async fn call(&self, fixture: &Fixture, call: Call) {
        match self {
            Self::Sdk(client) => match call {
                Call::Claim => drop(client.claim_task(&fixture.runtime).await.unwrap()),
                Call::Messages => client.report_task_messages(&fixture.task, &fixture.messages).await.unwrap(),
                Call::Heartbeat => drop(client.send_heartbeat(&fixture.runtime).await.unwrap()),
            },
            Self::Raw(raw) => raw.call(call, None).await,
            Self::RawWithJson(raw) => raw.call(call, Some(fixture)).await,
            Self::Reqwest(client) => reqwest_call(client, fixture, call).await,
        }
    }
}

/// Total calls and time per (call, concurrency, contender), for the summary.
type Tally = BTreeMap<(Call, usize, &'static str), (u64, Duration)>;

static TALLY: Mutex<Tally> = Mutex::new(BTreeMap::new());

fn throughput(c: &mut Criterion) {
    // reqwest is built without a crypto provider; give rustls the same one
    // as multica-hyper's so it can build its (unused) TLS config.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let base = start_server();
    let fixture = Arc::new(Fixture {
        base,
        runtime: RuntimeId::new("rt-4c1d2e3f"),
        task: TaskId::new("7f3c9a52"),
        messages: messages(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let contenders = {
        let _guard = runtime.enter();
        [
            Contender::Sdk(HyperClient::builder(fixture.base.clone()).build().unwrap()),
            Contender::Raw(Arc::new(Raw::new(&fixture))),
            Contender::RawWithJson(Arc::new(Raw::new(&fixture))),
            Contender::Reqwest(reqwest::Client::builder().no_proxy().build().unwrap()),
        ]
    };
    for call in [Call::Claim, Call::Messages, Call::Heartbeat] {
        for concurrency in [1usize, 32] {
            let mut group = c.benchmark_group(format!("{}/c{concurrency}", call.name()));
            group.throughput(Throughput::Elements(1));
            group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
            for contender in &contenders {
                let name = contender.name();
                group.bench_function(name, |b| {
                    b.to_async(&runtime).iter_custom(|iters| {
                        let (contender, fixture) = (contender.clone(), Arc::clone(&fixture));
                        async move {
                            let per_task = iters.div_ceil(concurrency as u64);
                            let started = Instant::now();
                            let mut tasks = tokio::task::JoinSet::new();
                            for _ in 0..concurrency {
                                let (contender, fixture) = (contender.clone(), Arc::clone(&fixture));
                                tasks.spawn(async move {
                                    for _ in 0..per_task {
                                        contender.call(&fixture, call).await;
                                    }
                                });
                            }
                            while let Some(done) = tasks.join_next().await {
                                done.unwrap();
                            }
                            let elapsed = started.elapsed();
                            let made = per_task * concurrency as u64;
                            let mut tally = TALLY.lock().unwrap();
                            let entry = tally.entry((call, concurrency, name)).or_default();
                            entry.0 += made;
                            entry.1 += elapsed;
                            // Scaled to the calls criterion asked for.
                            elapsed.mul_f64(iters as f64 / made as f64)
                        }
                    });
                });
            }
            group.finish();
        }
    }
}

fn print_summary() {
    let tally = TALLY.lock().unwrap();
    let rate = |key: (Call, usize, &'static str)| {
        tally.get(&key).map(|(calls, time)| *calls as f64 / time.as_secs_f64()).unwrap_or(f64::NAN)
    };
    println!(
        "\n{:<26} {:>13} {:>13} {:>13} {:>13} {:>7} {:>11} {:>8}",
        "call", "multica-hyper", "raw hyper", "hyper+serde", "reqwest", "vs raw", "vs h+serde", "vs reqw"
    );
    for call in [Call::Claim, Call::Messages, Call::Heartbeat] {
        for concurrency in [1usize, 32] {
            let sdk = rate((call, concurrency, "multica-hyper"));
            let raw = rate((call, concurrency, "raw hyper"));
            let with_json = rate((call, concurrency, "hyper+serde"));
            let reqwest = rate((call, concurrency, "reqwest"));
            println!(
                "{:<26} {:>9.0} r/s {:>9.0} r/s {:>9.0} r/s {:>9.0} r/s {:>6.2}x {:>10.2}x {:>7.2}x",
                format!("{} c={concurrency}", call.name()),
                sdk,
                raw,
                with_json,
                reqwest,
                sdk / raw,
                sdk / with_json,
                sdk / reqwest
            );
        }
    }
    println!("connections accepted by the server: {}", ACCEPTED.load(Ordering::Relaxed));
}

criterion_group!(benches, throughput);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_summary();
}
