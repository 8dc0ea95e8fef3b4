//! An HTTP/2 server that refuses requests unprocessed (`REFUSED_STREAM`, or
//! a `GOAWAY` whose last processed stream comes before them): such a
//! failure never reached the server's logic, so even a claim is retried.
//! The server is scripted frame by frame on raw TCP.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use multica_api::{DaemonApiExt, Endpoint, Error, RuntimeId, TransportKind};
use multica_hyper::{HyperClient, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;

const INTERNAL_ERROR: u32 = 0x2;
const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// How the server answers each request.
#[derive(Clone, Copy)]
enum Refusal {
    /// `RST_STREAM` with this code; the connection stays open.
    Reset(u32),
    /// `GOAWAY` naming stream 0 as the last processed, then close.
    GoAway(u32),
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut bytes = vec![len[1], len[2], len[3], kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A server answering every request with `refusal`; counts the requests.
async fn refusing_server(refusal: Refusal) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(refuse(stream, refusal, Arc::clone(&counted)));
        }
    });
    (url, requests)
}

async fn refuse(mut stream: TcpStream, refusal: Refusal, requests: Arc<AtomicUsize>) -> std::io::Result<()> {
    let mut preface = [0u8; 24];
    stream.read_exact(&mut preface).await?;
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await?;
        match kind {
            SETTINGS if flags & ACK == 0 => stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await?,
            HEADERS => {
                requests.fetch_add(1, Ordering::SeqCst);
                match refusal {
                    Refusal::Reset(code) => {
                        stream.write_all(&frame(RST_STREAM, 0, id, &code.to_be_bytes())).await?;
                    }
                    Refusal::GoAway(code) => {
                        let mut payload = 0u32.to_be_bytes().to_vec();
                        payload.extend_from_slice(&code.to_be_bytes());
                        stream.write_all(&frame(GOAWAY, 0, 0, &payload)).await?;
                        return stream.shutdown().await;
                    }
                }
            }
            _ => {}
        }
    }
}

async fn claim(url: &str, retry: RetryPolicy) -> Error {
    let client =
        HyperClient::builder(url).http2_prior_knowledge(true).timeout(Duration::from_secs(10)).build().unwrap();
    client.with_retry(retry).claim_task(&RuntimeId::new("rt-1")).await.unwrap_err()
}

#[tokio::test]
async fn refused_streams_and_requests_left_out_by_goaway_never_reached_the_server() {
    for refusal in [Refusal::Reset(REFUSED_STREAM), Refusal::GoAway(ENHANCE_YOUR_CALM), Refusal::GoAway(0)] {
        let (url, _) = refusing_server(refusal).await;
        let err = claim(&url, RetryPolicy::disabled()).await;
        println!("{err}");
        assert!(matches!(err, Error::Transport { kind: TransportKind::Refused, .. }), "{err}");
        assert!(!err.may_have_reached_server(), "{err}");
        assert!(RetryPolicy::default().may_retry(Endpoint::ClaimTask, &err), "{err}");
    }
}

#[tokio::test]
async fn a_refused_claim_is_retried() {
    let (url, requests) = refusing_server(Refusal::Reset(REFUSED_STREAM)).await;
    let quick = RetryPolicy::default().with_max_attempts(3).with_initial_backoff(Duration::from_millis(10));
    let err = claim(&url, quick).await;
    assert!(matches!(err.last_attempt(), Error::Transport { kind: TransportKind::Refused, .. }), "{err}");
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_stream_reset_for_another_reason_may_have_reached_the_server() {
    let (url, requests) = refusing_server(Refusal::Reset(INTERNAL_ERROR)).await;
    let err = claim(&url, RetryPolicy::default()).await;
    assert!(matches!(err, Error::Transport { kind: TransportKind::Request, .. }), "{err}");
    assert!(err.may_have_reached_server(), "{err}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "a claim that may have been taken is not repeated");
}
