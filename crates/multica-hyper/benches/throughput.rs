//! Requests per second of `HyperClient` against an in-process loopback
//! server, next to raw hyper sending the same pre-serialized bytes (the
//! limit), raw hyper doing the same serde_json work per call ("hyper+serde":
//! what the transport itself costs beyond JSON), the same sending the SDK's
//! headers too ("+headers": what they alone cost), hand-written hyper +
//! serde_json sending the SDK's very request ("same request": its headers,
//! the URL formatted from the IDs, a deadline; what the SDK's abstraction
//! costs is its distance from this) and a plain reqwest client making the
//! same calls (what a user would write instead), and the README's
//! stack (the client with `RetryPolicy::default()` behind `Arc<dyn
//! DaemonApi>`, handed the batch of messages as the reporter hands it: a
//! shared `Arc`) beside the client alone. After criterion's
//! runs, a head-to-head of interleaved turns prints the ratios and the client
//! thread's CPU time per call.
//!
//! `cargo bench -p multica-hyper --bench throughput` (add `-- --quick` for a
//! short run, or a filter that matches nothing for the head-to-head alone).
//!
//! `MULTICA_BENCH_FIXED=<claim|report_task_messages|heartbeat>:<concurrency>:<contender>:<calls>`
//! makes exactly that many calls of one contender and exits, for counting
//! instructions, which unlike time do not drift with the machine: run it
//! under `valgrind --tool=callgrind` with two counts and divide the
//! difference by the difference of the counts, so setup cancels out.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use multica_api::layer::RetryPolicy;
use multica_api::{request, ClaimResponse, DaemonApi, DaemonApiExt, HeartbeatResponse, RuntimeId, TaskId, TaskMessage};
use multica_hyper::HyperClient;

mod fixtures;
use fixtures::{claim_body, messages};

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
                            capture_sdk_headers(request.headers());
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

/// The headers the SDK sends besides those hyper writes, as the server saw
/// them first: what the "same request" contender sends by hand.
static SDK_HEADERS: OnceLock<Vec<(HeaderName, HeaderValue)>> = OnceLock::new();

fn capture_sdk_headers(headers: &http::HeaderMap) {
    let from_sdk = headers.get(USER_AGENT).is_some_and(|agent| agent.as_bytes().starts_with(b"multica-hyper/"));
    if from_sdk && SDK_HEADERS.get().is_none() {
        let written_by_hyper = [HOST, CONTENT_LENGTH, CONTENT_TYPE];
        let sent = headers.iter().filter(|(name, _)| !written_by_hyper.contains(name));
        let _ = SDK_HEADERS.set(sent.map(|(name, value)| (name.clone(), value.clone())).collect());
    }
}

/// What every contender needs to make the calls.
struct Fixture {
    base: String,
    runtime: RuntimeId,
    task: TaskId,
    /// Shared, as the reporter hands its in-flight batch to the client.
    messages: Arc<[TaskMessage]>,
}

/// Raw hyper: pre-built URIs and bodies, no JSON work at all.
struct Raw {
    client: Client<HttpConnector, Full<Bytes>>,
    requests: BTreeMap<Call, (http::Uri, Bytes)>,
    /// Sent besides `Content-Type`: none, or the SDK's.
    headers: Vec<(HeaderName, HeaderValue)>,
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
        Self { client, requests, headers: Vec::new() }
    }

    /// The same, sending `headers` with every request too.
    fn with_headers(fixture: &Fixture, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        Self { headers, ..Self::new(fixture) }
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
        let mut request = http::Request::post(uri.clone()).header(CONTENT_TYPE, "application/json");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = self.client.request(request.body(Full::new(body)).unwrap()).await.unwrap();
        assert!(response.status().is_success());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if json.is_some() {
            decode(call, &bytes);
        }
        // As multica-hyper does: let hyper-util put the connection back in
        // the pool before the next request, or that request races it with a
        // fresh connect (measured: c=1 drops to a third).
        tokio::task::yield_now().await;
    }
}

/// The URL and body of a call as a hand-written client makes them per call:
/// the URL formatted from the IDs, the body serialized.
fn by_hand(fixture: &Fixture, call: Call) -> (String, Vec<u8>) {
    match call {
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
    }
}

/// Reads a success body as a hand-written client would.
fn decode(call: Call, bytes: &[u8]) {
    match call {
        Call::Claim => drop(serde_json::from_slice::<ClaimResponse>(bytes).unwrap()),
        Call::Heartbeat => drop(serde_json::from_slice::<HeartbeatResponse>(bytes).unwrap()),
        Call::Messages => {}
    }
}

/// Hand-written hyper + serde_json making the SDK's request: its headers
/// (`User-Agent`, capabilities, client identity), the URL formatted from
/// the IDs, a deadline over the whole exchange. What the SDK itself costs
/// is its distance from this.
struct SameRequest {
    client: Client<HttpConnector, Full<Bytes>>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SameRequest {
    fn new(headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        Self { client: Client::builder(TokioExecutor::new()).build(http), headers }
    }

    async fn call(&self, fixture: &Fixture, call: Call) {
        let (url, body) = by_hand(fixture, call);
        let mut request = http::Request::post(url).header(CONTENT_TYPE, "application/json");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body))).unwrap();
        let exchange = async {
            let response = self.client.request(request).await.unwrap();
            assert!(response.status().is_success());
            response.into_body().collect().await.unwrap().to_bytes()
        };
        let bytes = tokio::time::timeout(Duration::from_secs(30), exchange).await.unwrap();
        decode(call, &bytes);
        tokio::task::yield_now().await;
    }
}

/// Plain reqwest, as a user would write the calls: format the URL,
/// serialize, send, check the status, decode.
async fn reqwest_call(client: &reqwest::Client, fixture: &Fixture, call: Call) {
    let (url, body) = by_hand(fixture, call);
    let response = client.post(url).header("content-type", "application/json").body(body).send().await.unwrap();
    let response = response.error_for_status().unwrap();
    let bytes = response.bytes().await.unwrap();
    decode(call, &bytes);
}

/// One call through the SDK's typed methods, on any backend.
async fn sdk_call(api: &(impl DaemonApi + ?Sized), fixture: &Fixture, call: Call) {
    match call {
        Call::Claim => drop(api.claim_task(&fixture.runtime).await.unwrap()),
        Call::Messages => api.report_task_messages(&fixture.task, Arc::clone(&fixture.messages)).await.unwrap(),
        Call::Heartbeat => drop(api.send_heartbeat(&fixture.runtime).await.unwrap()),
    }
}

#[derive(Clone)]
enum Contender {
    Sdk(HyperClient),
    /// The stack the README recommends: the client with the default retry
    /// policy, behind `Arc<dyn DaemonApi>`.
    Stack(Arc<dyn DaemonApi>),
    Raw(Arc<Raw>),
    RawWithJson(Arc<Raw>),
    /// hyper+serde sending the SDK's headers too: what the headers alone cost.
    RawWithHeaders(Arc<Raw>),
    SameRequest(Arc<SameRequest>),
    Reqwest(reqwest::Client),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Self::Sdk(_) => "multica-hyper",
            Self::Stack(_) => "README stack",
            Self::Raw(_) => "raw hyper",
            Self::RawWithJson(_) => "hyper+serde",
            Self::RawWithHeaders(_) => "+headers",
            Self::SameRequest(_) => "same request",
            Self::Reqwest(_) => "reqwest",
        }
    }

    async fn call(&self, fixture: &Fixture, call: Call) {
        match self {
            Self::Sdk(client) => sdk_call(client, fixture, call).await,
            Self::Stack(api) => sdk_call(api, fixture, call).await,
            Self::Raw(raw) => raw.call(call, None).await,
            Self::RawWithJson(raw) | Self::RawWithHeaders(raw) => raw.call(call, Some(fixture)).await,
            Self::SameRequest(by_hand) => by_hand.call(fixture, call).await,
            Self::Reqwest(client) => reqwest_call(client, fixture, call).await,
        }
    }
}

/// Makes calls from `concurrency` tasks until each has made `per_task`
/// calls or `until` has passed, whichever comes first; returns the calls
/// made and the time taken.
async fn load(
    contender: &Contender,
    fixture: &Arc<Fixture>,
    call: Call,
    concurrency: usize,
    per_task: u64,
    until: Option<Instant>,
) -> (u64, Duration) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (contender, fixture) = (contender.clone(), Arc::clone(fixture));
        tasks.spawn(async move {
            let mut made = 0;
            while made < per_task && until.is_none_or(|until| Instant::now() < until) {
                contender.call(&fixture, call).await;
                made += 1;
            }
            made
        });
    }
    let mut made = 0;
    while let Some(done) = tasks.join_next().await {
        made += done.unwrap();
    }
    (made, started.elapsed())
}

const CALLS: [Call; 3] = [Call::Claim, Call::Messages, Call::Heartbeat];
const CONCURRENCIES: [usize; 2] = [1, 32];

fn throughput(c: &mut Criterion, runtime: &tokio::runtime::Runtime, contenders: &[Contender], fixture: &Arc<Fixture>) {
    for call in CALLS {
        for concurrency in CONCURRENCIES {
            let mut group = c.benchmark_group(format!("{}/c{concurrency}", call.name()));
            group.throughput(Throughput::Elements(1));
            group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
            for contender in contenders {
                group.bench_function(contender.name(), |b| {
                    b.to_async(runtime).iter_custom(|iters| async move {
                        let per_task = iters.div_ceil(concurrency as u64);
                        let (made, elapsed) = load(contender, fixture, call, concurrency, per_task, None).await;
                        // Scaled to the calls criterion asked for.
                        elapsed.mul_f64(iters as f64 / made as f64)
                    });
                });
            }
            group.finish();
        }
    }
}

/// Rounds of the head-to-head, and how long each contender runs per round.
const ROUNDS: usize = 15;
const SLICE: Duration = Duration::from_millis(100);

/// Requests per second of each contender in each round.
type Rates = BTreeMap<&'static str, Vec<f64>>;

/// CPU time the client runtime's worker thread spent per call, in µs, of
/// each contender in each round.
type CpuPerCall = BTreeMap<&'static str, Vec<f64>>;

/// Nanoseconds the calling thread has run on a CPU (Linux; `None` elsewhere).
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// The CPU time of the client runtime's one worker thread, read on it.
async fn worker_cpu_ns() -> Option<u64> {
    tokio::spawn(async { thread_cpu_ns() }).await.unwrap()
}

/// Runs the contenders in turns of [`SLICE`], rotating who goes first, so
/// that each round compares them under the same machine state. Criterion's
/// groups run one contender for seconds before the next; on a shared 2-core
/// machine their ratios drift by ±30 % from run to run, the per-round ratios
/// here much less.
fn head_to_head(
    runtime: &tokio::runtime::Runtime,
    contenders: &[Contender],
    fixture: &Arc<Fixture>,
    call: Call,
    concurrency: usize,
) -> (Rates, CpuPerCall) {
    let (mut rates, mut cpu) = (Rates::new(), CpuPerCall::new());
    runtime.block_on(async {
        for round in 0..ROUNDS {
            for turn in 0..contenders.len() {
                let contender = &contenders[(round + turn) % contenders.len()];
                let until = Instant::now() + SLICE;
                let cpu_before = worker_cpu_ns().await;
                let (made, elapsed) = load(contender, fixture, call, concurrency, u64::MAX, Some(until)).await;
                let cpu_after = worker_cpu_ns().await;
                rates.entry(contender.name()).or_default().push(made as f64 / elapsed.as_secs_f64());
                if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
                    cpu.entry(contender.name()).or_default().push((after - before) as f64 / 1e3 / made as f64);
                }
            }
        }
    });
    (rates, cpu)
}

fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A contender's rate over a baseline's: median and range of the per-round ratios.
fn ratio(rates: &Rates, contender: &str, baseline: &str) -> String {
    let ratios: Vec<f64> = rates[contender].iter().zip(&rates[baseline]).map(|(sdk, base)| sdk / base).collect();
    let (low, high) = ratios.iter().fold((f64::MAX, f64::MIN), |(low, high), r| (low.min(*r), high.max(*r)));
    format!("{:.2}x ({low:.2}-{high:.2})", median(&ratios))
}

fn print_summary(runtime: &tokio::runtime::Runtime, contenders: &[Contender], fixture: &Arc<Fixture>) {
    const SDK: [(&str, &str); 2] = [("multica-hyper", "client"), ("README stack", "README")];
    const BASELINES: [&str; 5] = ["raw hyper", "hyper+serde", "+headers", "same request", "reqwest"];
    let names: Vec<&str> = contenders.iter().map(Contender::name).collect();
    let header = |first: &str| {
        let columns: String = names
            .iter()
            .map(|name| format!(" {:>13}", SDK.iter().find(|sdk| sdk.0 == *name).map_or(*name, |sdk| sdk.1)))
            .collect();
        println!("{first:<26}{columns}");
    };
    println!(
        "\nhead to head: {ROUNDS} rounds of {} ms per contender; requests/s are medians, ratios are",
        SLICE.as_millis()
    );
    println!("the median (and range) of the per-round ratios of the SDK (the client alone, and the README");
    println!("stack: the client with RetryPolicy::default() behind Arc<dyn DaemonApi>) to each baseline;");
    println!("\"+headers\" is hyper+serde sending the SDK's headers too");
    header("call");
    let mut rows = Vec::new();
    for call in CALLS {
        for concurrency in CONCURRENCIES {
            let (rates, cpu) = head_to_head(runtime, contenders, fixture, call, concurrency);
            let label = format!("{} c={concurrency}", call.name());
            let columns: String = names.iter().map(|name| format!(" {:>13.0}", median(&rates[name]))).collect();
            println!("{label:<26}{columns}");
            rows.push((label, rates, cpu));
        }
    }
    println!("\nratios (median and range over rounds)");
    let columns: String = BASELINES.iter().map(|baseline| format!(" {:>17}", format!("vs {baseline}"))).collect();
    println!("{:<26} {:<8}{columns}", "call", "SDK");
    for (label, rates, _) in &rows {
        for (sdk, short) in SDK {
            let columns: String =
                BASELINES.iter().map(|baseline| format!(" {:>17}", ratio(rates, sdk, baseline))).collect();
            println!("{label:<26} {short:<8}{columns}");
        }
    }
    println!("\nclient CPU per call (µs, median over rounds): the client runtime's worker thread only");
    header("call");
    for (label, _, cpu) in rows {
        let per_call = |name: &str| cpu.get(name).map_or(f64::NAN, |values| median(values));
        let columns: String = names.iter().map(|name| format!(" {:>13.1}", per_call(name))).collect();
        println!("{label:<26}{columns}");
    }
    println!("connections accepted by the server: {}", ACCEPTED.load(Ordering::Relaxed));
}

/// Names a fixed-count run (see the module's documentation).
const FIXED_VAR: &str = "MULTICA_BENCH_FIXED";

/// Reads a fixed-count run's `call:concurrency:contender:calls`.
fn fixed_run<'a>(spec: &str, contenders: &'a [Contender]) -> (&'a Contender, Call, usize, u64) {
    let usage = || {
        panic!("{FIXED_VAR}={spec:?}: want <claim|report_task_messages|heartbeat>:<concurrency>:<contender>:<calls>")
    };
    let [call, concurrency, contender, calls] = spec.split(':').collect::<Vec<_>>()[..] else { usage() };
    let call = *CALLS.iter().find(|known| known.name() == call).unwrap_or_else(|| usage());
    let contender = contenders.iter().find(|known| known.name() == contender).unwrap_or_else(|| usage());
    let concurrency: usize = concurrency.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage());
    (contender, call, concurrency, calls.parse().unwrap_or_else(|_| usage()))
}

fn main() {
    // reqwest is built without a crypto provider; give rustls the same one
    // as multica-hyper's so it can build its (unused) TLS config.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let base = start_server();
    let fixture = Arc::new(Fixture {
        base,
        runtime: RuntimeId::new("rt-4c1d2e3f"),
        task: TaskId::new("7f3c9a52"),
        messages: messages().into(),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let contenders = {
        let _guard = runtime.enter();
        let client = HyperClient::builder(fixture.base.clone()).build().unwrap();
        // One call shows the server the headers the SDK sends.
        runtime.block_on(client.send_heartbeat(&fixture.runtime)).unwrap();
        let sdk_headers = SDK_HEADERS.get().cloned().unwrap();
        [
            Contender::Sdk(client),
            Contender::Stack(Arc::new(
                HyperClient::builder(fixture.base.clone()).build().unwrap().with_retry(RetryPolicy::default()),
            )),
            Contender::Raw(Arc::new(Raw::new(&fixture))),
            Contender::RawWithJson(Arc::new(Raw::new(&fixture))),
            Contender::RawWithHeaders(Arc::new(Raw::with_headers(&fixture, sdk_headers.clone()))),
            Contender::SameRequest(Arc::new(SameRequest::new(sdk_headers))),
            Contender::Reqwest(reqwest::Client::builder().no_proxy().build().unwrap()),
        ]
    };
    if let Ok(spec) = std::env::var(FIXED_VAR) {
        let (contender, call, concurrency, calls) = fixed_run(&spec, &contenders);
        runtime.block_on(load(contender, &fixture, call, concurrency, calls / concurrency as u64, None));
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    throughput(&mut criterion, &runtime, &contenders, &fixture);
    criterion.final_summary();
    // Profiling runs (`--profile-time`) want one contender alone.
    if !std::env::args().any(|arg| arg == "--profile-time") {
        print_summary(&runtime, &contenders, &fixture);
    }
}
