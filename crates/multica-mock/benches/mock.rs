//! Throughput of the fake: in-process heartbeat, claim (short vs long
//! queue) and message batches, and the HTTP server at 32 concurrent
//! requests against a bare hyper server as the baseline.
//!
//! `cargo bench -p multica-mock --bench mock` (add `-- --quick` for a fast run).
#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::runtime::Runtime;

use multica_api::{DaemonApiExt, IssueId, RuntimeId, TaskId, TaskMessage};
use multica_mock::{serve, AgentSeed, MockDaemon, RuntimeSeed, TaskSeed, WorkspaceSeed};

fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A fake with one workspace, agent and runtime.
fn fake() -> (MockDaemon, RuntimeId, multica_api::AgentId) {
    let mock = MockDaemon::new();
    let workspace_id = mock.add_workspace(WorkspaceSeed { name: "Bench".into(), ..Default::default() }).unwrap();
    let agent_id = mock
        .add_agent(AgentSeed { workspace_id: workspace_id.clone(), name: "A".into(), ..Default::default() })
        .unwrap();
    let runtime_id = mock
        .add_runtime(RuntimeSeed {
            workspace_id,
            daemon_id: Some("d".into()),
            provider: "claude".into(),
            ..Default::default()
        })
        .unwrap();
    (mock, runtime_id, agent_id)
}

fn enqueue(mock: &MockDaemon, runtime_id: &RuntimeId, agent_id: &multica_api::AgentId, count: usize) {
    for i in 0..count {
        let seed = TaskSeed {
            id: None,
            runtime_id: runtime_id.clone(),
            agent_id: agent_id.clone(),
            issue_id: IssueId::new(format!("issue-{i}")),
            priority: (i % 10) as i64,
        };
        mock.add_task(seed).unwrap();
    }
}

fn heartbeat(c: &mut Criterion) {
    let runtime = current_thread();
    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    for (label, capacity) in [("heartbeat", multica_mock::DEFAULT_CALL_LOG_CAPACITY), ("heartbeat_log_off", 0)] {
        let mock = MockDaemon::builder().call_log_capacity(capacity).build().unwrap();
        let workspace_id = mock.add_workspace(WorkspaceSeed::default()).unwrap();
        let runtime_id = mock.add_runtime(RuntimeSeed { workspace_id, ..Default::default() }).unwrap();
        group.bench_function(label, |b| {
            b.to_async(&runtime).iter(|| async { mock.send_heartbeat(&runtime_id).await.unwrap() })
        });
    }
    group.finish();
}

/// Claims in chunks, refilling the queue (untimed) after each chunk so its
/// length stays between `queued` and `queued + CHUNK`. The fake is rebuilt
/// now and then so dispatched tasks do not pile up in memory.
fn claim(c: &mut Criterion) {
    const CHUNK: usize = 100;
    const REBUILD_AFTER: usize = 200_000;
    let runtime = current_thread();
    let mut group = c.benchmark_group("claim_queue_length");
    group.throughput(Throughput::Elements(1));
    for queued in [100usize, 100_000] {
        let build = || {
            let (mock, runtime_id, agent_id) = fake();
            enqueue(&mock, &runtime_id, &agent_id, queued);
            (mock, runtime_id, agent_id, 0usize)
        };
        let mut current = build();
        group.bench_with_input(BenchmarkId::from_parameter(queued), &queued, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    if current.3 > REBUILD_AFTER {
                        current = build();
                    }
                    let (mock, runtime_id, agent_id, claimed) = &mut current;
                    let n = left.min(CHUNK);
                    enqueue(mock, runtime_id, agent_id, n);
                    let start = Instant::now();
                    runtime.block_on(async {
                        for _ in 0..n {
                            std::hint::black_box(mock.claim_task(runtime_id).await.unwrap());
                        }
                    });
                    total += start.elapsed();
                    *claimed += n;
                    left -= n;
                }
                total
            })
        });
    }
    group.finish();
}

/// One `report_task_messages` of 50 messages per iteration, on a fresh fake
/// every 1,000 calls so stored messages stay bounded.
fn messages(c: &mut Criterion) {
    const CHUNK: usize = 1_000;
    let runtime = current_thread();
    let batch: Vec<TaskMessage> =
        (1..=50).map(|seq| TaskMessage::text(seq, "some agent output, a line of it")).collect();
    let mut group = c.benchmark_group("in_process");
    group.throughput(Throughput::Elements(1));
    group.bench_function("report_task_messages_50", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let (mock, runtime_id, agent_id) = fake();
                enqueue(&mock, &runtime_id, &agent_id, 1);
                let task_id: TaskId = mock.snapshot().tasks[0].record.id.clone();
                let n = left.min(CHUNK);
                let start = Instant::now();
                runtime.block_on(async {
                    for _ in 0..n {
                        mock.report_task_messages(&task_id, batch.as_slice()).await.unwrap();
                    }
                });
                total += start.elapsed();
                left -= n;
            }
            total
        })
    });
    group.finish();
}

const CONCURRENCY: u64 = 32;

/// Sends `iters` heartbeats from 32 concurrent tasks; returns the elapsed time.
async fn hammer(client: &Client<HttpConnector, Full<Bytes>>, url: &str, body: &Bytes, iters: u64) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let client = client.clone();
            let url = url.to_owned();
            let body = body.clone();
            let share = iters / CONCURRENCY + u64::from(worker < iters % CONCURRENCY);
            tokio::spawn(async move {
                for _ in 0..share {
                    let request = http::Request::post(&url)
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let response = client.request(request).await.unwrap();
                    assert_eq!(response.status(), 200);
                    response.into_body().collect().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

/// A bare hyper server answering `{"status":"ok"}` to everything: what HTTP
/// costs on this machine without the fake.
async fn bare_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/daemon/heartbeat", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                    let _ = request.into_body().collect().await;
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{\"status\":\"ok\"}\n"))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, task)
}

fn http_server(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (mock, runtime_id, _) = fake();
    let mock = MockDaemon::clone(&mock);
    let server = runtime.block_on(serve(mock)).unwrap();
    let (bare_url, bare_task) = runtime.block_on(bare_server());
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let body = Bytes::from(serde_json::json!({ "runtime_id": runtime_id }).to_string());
    let mock_url = Arc::new(format!("{}/api/daemon/heartbeat", server.base_url()));

    let mut group = c.benchmark_group("http_concurrency_32");
    group.throughput(Throughput::Elements(1));
    group.bench_function("bare_hyper_baseline", |b| {
        b.iter_custom(|iters| runtime.block_on(hammer(&client, &bare_url, &body, iters)))
    });
    group.bench_function("mock_heartbeat", |b| {
        b.iter_custom(|iters| runtime.block_on(hammer(&client, &mock_url, &body, iters)))
    });
    group.finish();
    bare_task.abort();
    runtime.block_on(server.shutdown());
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = heartbeat, claim, messages, http_server
}
criterion_main!(benches);
