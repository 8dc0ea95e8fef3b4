//! The live-output reporter over HTTP through a chaos proxy on 127.0.0.1
//! that resets about 12% of exchanges, half after the server answered (the
//! server stored the batch, the client never hears it) and half before the
//! request reaches it. The fake stores every batch it receives, as the real
//! server does, so a blind resend would store messages twice.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multica::hyper::HyperClient;
use multica::mock::{serve, MockDaemon, Seed};
use multica::reporter::{ReporterConfig, TaskMessageReporter};
use multica::{MessageKind, TaskId, TaskMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A task of the demo seed.
const TASK: &str = "44444444-4444-4444-8444-000000000001";
const RESET_PER_MILLE: u64 = 120;

/// splitmix64: a seeded sequence shared by the proxy's connections.
fn next_random(state: &Mutex<u64>) -> u64 {
    let mut state = state.lock().unwrap();
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A TCP proxy that resets the client's connection (RST) instead of
/// forwarding a chunk, for `RESET_PER_MILLE / 2` of the chunks each way.
struct ChaosProxy {
    addr: SocketAddr,
    resets: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl ChaosProxy {
    async fn start(upstream: SocketAddr, seed: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resets = Arc::new(AtomicU64::new(0));
        let rng = Arc::new(Mutex::new(seed));
        let counter = Arc::clone(&resets);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(pipe(client, upstream, Arc::clone(&rng), Arc::clone(&counter)));
            }
        });
        Self { addr, resets, accept }
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards one connection both ways until either side closes or a chunk
/// is lost, in which case the client gets a reset.
async fn pipe(mut client: TcpStream, upstream: SocketAddr, rng: Arc<Mutex<u64>>, resets: Arc<AtomicU64>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
    let mut up = vec![0; 64 * 1024];
    let mut down = vec![0; 64 * 1024];
    let reset = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        loop {
            let lose = || next_random(&rng) % 2000 < RESET_PER_MILLE;
            tokio::select! {
                read = client_read.read(&mut up) => match read {
                    Ok(0) | Err(_) => break false,
                    // The request is lost before the server sees it.
                    Ok(_) if lose() => break true,
                    Ok(n) => if server_write.write_all(&up[..n]).await.is_err() { break false },
                },
                read = server_read.read(&mut down) => match read {
                    Ok(0) | Err(_) => break false,
                    // The server acted; its answer is lost.
                    Ok(_) if lose() => break true,
                    Ok(n) => if client_write.write_all(&down[..n]).await.is_err() { break false },
                },
            }
        }
    };
    if reset {
        resets.fetch_add(1, Ordering::Relaxed);
        // Closing with a zero linger sends RST: the client reads a reset.
        let _ = client.set_zero_linger();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_proxy_resetting_12_percent_of_exchanges_every_message_is_stored_once() {
    let mock = MockDaemon::builder().seed(Seed::demo()).build().unwrap();
    let server = serve(mock.clone()).await.unwrap();
    let proxy = ChaosProxy::start(server.addr(), 7).await;
    let client =
        HyperClient::builder(format!("http://{}", proxy.addr)).timeout(Duration::from_secs(2)).build().unwrap();
    let config = ReporterConfig::default()
        .with_flush_interval(Duration::from_millis(10))
        .with_finish_timeout(Duration::from_secs(120));
    let task = TaskId::new(TASK);
    let reporter = TaskMessageReporter::start(client, task.clone(), config);

    // The agent: text deltas, tool calls and results, errors, paced so
    // that the output spans a few hundred flushes.
    let mut said = Vec::new();
    for i in 0..1200 {
        let delta = format!("step {i}. ");
        reporter.text(&delta);
        said.push(TaskMessage::text(0, delta));
        if i % 3 == 0 {
            let output = format!("out {i}");
            reporter.tool_result("bash", output.clone());
            said.push(TaskMessage { kind: MessageKind::ToolResult, tool: "bash".into(), output, ..Default::default() });
        }
        if i % 2 == 0 {
            let content = format!("note {i}");
            reporter.error(content.clone());
            said.push(TaskMessage { kind: MessageKind::Error, content, ..Default::default() });
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let summary = reporter.finish().await;
    let stats = summary.stats;
    let stored = mock.messages(&task);
    println!(
        "over HTTP: {} messages, {} connections reset, {} failed sends, {} reconciled, {} resent, {} failed listings, \
         {} stored",
        stats.last_seq,
        proxy.resets.load(Ordering::Relaxed),
        stats.failed_sends,
        stats.reconciled,
        stats.resent,
        stats.failed_listings,
        stored.len()
    );
    let seqs: Vec<i64> = stored.iter().map(|message| message.seq).collect();
    assert!(seqs == (1..=stats.last_seq).collect::<Vec<_>>(), "every message once, in seq order: {seqs:?}");
    assert_eq!(merged(stored), merged(said), "exactly what the agent said");
    assert_eq!((stats.dropped, stats.messages_sent), (0, stats.last_seq as u64), "{stats:?}");
    assert!(proxy.resets.load(Ordering::Relaxed) > 10 && stats.reconciled + stats.resent > 0, "{stats:?}");
    server.shutdown().await;
}

/// What an agent said, with consecutive text merged.
fn merged(messages: Vec<TaskMessage>) -> Vec<(MessageKind, String)> {
    let mut said: Vec<(MessageKind, String)> = Vec::new();
    for message in messages {
        match (message.kind, said.last_mut()) {
            (MessageKind::Text, Some((MessageKind::Text, text))) => text.push_str(&message.content),
            (kind, _) => said.push((kind, message.content + &message.tool + &message.output)),
        }
    }
    said
}
