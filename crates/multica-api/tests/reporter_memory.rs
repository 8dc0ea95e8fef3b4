//! The reporter's memory bound, measured on the process: while the server
//! never answers for 30 s (paused clock) and the agent produces 100 MB, the
//! peak resident memory may grow by no more than the bound plus a small
//! constant, and the counters account for every byte. Its own test binary
//! with one test, so nothing else allocates meanwhile; Linux only (reads
//! `/proc/self/status`).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use multica_api::reporter::{ReporterConfig, ReporterStats, TaskMessageReporter};
use multica_api::{Result, TaskId};

const MIB: u64 = 1024 * 1024;
const MB: usize = 1_000_000;
/// The default bound, as the issue measured it.
const BOUND: u64 = 8 * MIB;
/// What may come on top of the bound: the request body a backend builds
/// from the batch in flight (at most one batch, 1 MiB, plus JSON quoting),
/// one allocation of the agent's own (a 1 MB tool result before it is cut),
/// the runtime's timers and the allocator's slack. Measured growth beyond
/// the bound was at most 2.2 MiB (see the README); 4 MiB leaves room for another
/// allocator.
const ALLOWANCE: u64 = 4 * MIB;
/// The agent's 30 s.
const AGENT_TIME: Duration = Duration::from_secs(30);

/// A server that never answers: every call hangs until the reporter's
/// budget cuts it, holding its request meanwhile.
#[derive(Debug)]
struct NeverAnswers;

#[multica_api::async_trait]
impl multica_api::DaemonApi for NeverAnswers {
    async fn call(&self, call: multica_api::Call) -> Result<multica_api::Reply> {
        // Built as a transport would, so the request is held while it hangs.
        let _request = call.to_request()?;
        std::future::pending().await
    }
}

/// A `VmHWM`/`VmRSS` line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Starts a new peak measurement: resets `VmHWM` to the current RSS
/// (`clear_refs` value 5, Linux 4.0+) and returns that RSS.
fn start_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    status_bytes("VmHWM:")
}

/// What one case measured.
struct Measured {
    growth: u64,
    stats: ReporterStats,
    produced: u64,
}

/// Runs `agent` (which returns the bytes it produced) against a server that
/// never answers, on a paused clock, and measures the peak RSS growth from
/// start to the end of `finish`.
fn measure<F, Fut>(max_bytes: u64, agent: F) -> Measured
where
    F: FnOnce(TaskMessageReporter) -> Fut,
    Fut: Future<Output = (TaskMessageReporter, u64)>,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    runtime.block_on(async {
        let config = ReporterConfig::default().with_max_buffered_bytes(max_bytes as usize);
        let before = start_peak();
        let reporter = TaskMessageReporter::start(NeverAnswers, TaskId::new("t-memory"), config);
        let (reporter, produced) = agent(reporter).await;
        let stats = reporter.stats();
        reporter.finish().await;
        Measured { growth: status_bytes("VmHWM:").saturating_sub(before), stats, produced }
    })
}

/// 100 MB of text in 1 KB deltas over 30 s.
async fn streamed_text(reporter: TaskMessageReporter) -> (TaskMessageReporter, u64) {
    let delta = "s".repeat(1000);
    let deltas = 100 * MB / delta.len();
    let pause = AGENT_TIME / 1000;
    for i in 0..deltas {
        reporter.text(&delta);
        if i % (deltas / 1000) == 0 {
            tokio::time::sleep(pause).await;
        }
    }
    tokio::time::sleep(pause).await;
    (reporter, (deltas * delta.len()) as u64)
}

/// Tool results of `size` bytes, `count` of them over 30 s; each is the
/// agent's own allocation, handed over.
async fn tool_results(reporter: TaskMessageReporter, count: usize, size: usize) -> (TaskMessageReporter, u64) {
    let pause = AGENT_TIME / count as u32;
    for _ in 0..count {
        reporter.tool_result("read", "r".repeat(size));
        tokio::time::sleep(pause).await;
    }
    (reporter, (count * ("read".len() + size)) as u64)
}

/// The cases, by name: each runs in a process of its own, so memory freed
/// by one and kept by the allocator cannot hide the next one's growth.
const CASES: [&str; 5] = [
    "100 MB streamed as 1 KB text deltas",
    "100 MB of text pushed at once",
    "100 × 1 MB tool results",
    "1,600 × 64 KB tool results",
    "control: 100 MB streamed, 64 MiB bound",
];
const CASE_VAR: &str = "MULTICA_REPORTER_MEMORY_CASE";
const TEST_NAME: &str = "a_dead_server_and_a_100_mb_agent_stay_within_the_byte_bound";

/// Runs one case in this process and prints its numbers on a line of its own.
fn run_case(case: &str) {
    // Warm up: the allocator's arenas and the runtime's code exist before
    // anything is measured.
    let _ = measure(BOUND, |reporter| async move {
        reporter.text(&"w".repeat(64 * 1024));
        tokio::time::sleep(Duration::from_secs(1)).await;
        (reporter, 0)
    });
    // The caller's 100 MB exists before the measurement starts: only what
    // the reporter makes of it counts.
    let at_once = if case == CASES[1] { "o".repeat(100 * MB) } else { String::new() };
    let measured = match case {
        _ if case == CASES[0] => measure(BOUND, streamed_text),
        _ if case == CASES[1] => measure(BOUND, |reporter| async {
            reporter.text(&at_once);
            tokio::time::sleep(AGENT_TIME).await;
            (reporter, at_once.len() as u64)
        }),
        _ if case == CASES[2] => measure(BOUND, |reporter| tool_results(reporter, 100, MB)),
        _ if case == CASES[3] => measure(BOUND, |reporter| tool_results(reporter, 1600, 64 * 1000)),
        _ => measure(64 * MIB, streamed_text),
    };
    let stats = measured.stats;
    println!(
        "MEASURED {} {} {} {} {} {}",
        measured.growth, measured.produced, stats.sent_bytes, stats.buffered_bytes, stats.dropped_bytes, stats.dropped
    );
}

#[test]
fn a_dead_server_and_a_100_mb_agent_stay_within_the_byte_bound() {
    if let Ok(case) = std::env::var(CASE_VAR) {
        run_case(&case);
        return;
    }
    println!("| agent, server never answering for 30 s | peak RSS growth | held | dropped |");
    println!("|---|---|---|---|");
    for case in CASES {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(CASE_VAR, case)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{case}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        // The harness may print `test … ... ` on the same line first.
        let line = stdout.split("MEASURED ").nth(1).and_then(|rest| rest.lines().next()).unwrap();
        let numbers: Vec<u64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
        let [growth, produced, sent, held, dropped_bytes, dropped] = numbers[..] else { panic!("{line}") };
        println!(
            "| {case} | {:.1} MiB | {:.1} MiB | {:.1} MB in {dropped} messages |",
            growth as f64 / MIB as f64,
            held as f64 / MIB as f64,
            dropped_bytes as f64 / MB as f64,
        );
        if case == CASES[4] {
            assert!(growth >= 48 * MIB, "the control held its stream: {growth} bytes");
            continue;
        }
        assert_eq!(sent + held + dropped_bytes, produced, "{case}: every byte accounted for");
        assert!(held <= BOUND, "{case}: {held} bytes held");
        assert!(growth <= BOUND + ALLOWANCE, "{case}: peak RSS grew by {growth} bytes");
    }
}
