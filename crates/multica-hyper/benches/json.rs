//! What the JSON work of a call costs on its own, next to serde_json's
//! floor (scanning the bytes without building anything) and its generic
//! tree (`serde_json::Value`). Explains the gap between `HyperClient` and
//! raw hyper sending pre-serialized bytes in the `throughput` benchmark.
//!
//! `cargo bench -p multica-hyper --bench json` (add `-- --quick` for a short run).
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use multica_api::{request, RuntimeId, TaskId};
use serde::de::IgnoredAny;
use serde_json::Value;

mod fixtures;

fn claim_decode(c: &mut Criterion) {
    let body = fixtures::claim_body();
    let claim = request::claim_task(&RuntimeId::new("rt-4c1d2e3f")).unwrap();
    let mut group = c.benchmark_group("claim_decode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("serde_json IgnoredAny (floor)", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(&body).unwrap())
    });
    group.bench_function("serde_json Value", |b| b.iter(|| serde_json::from_slice::<Value>(&body).unwrap()));
    group.bench_function("multica-api Task", |b| b.iter(|| claim.decode_response(200, &body).unwrap()));
    group.finish();
}

fn messages_encode(c: &mut Criterion) {
    let messages = fixtures::messages();
    let task = TaskId::new("7f3c9a52");
    let as_value = serde_json::json!({ "messages": messages });
    let mut group = c.benchmark_group("messages_encode");
    group.throughput(Throughput::Bytes(serde_json::to_vec(&as_value).unwrap().len() as u64));
    group.bench_function("serde_json Value", |b| b.iter(|| serde_json::to_vec(&as_value).unwrap()));
    group
        .bench_function("multica-api request", |b| b.iter(|| request::report_task_messages(&task, &messages).unwrap()));
    group.finish();
}

criterion_group!(benches, claim_decode, messages_encode);
criterion_main!(benches);
