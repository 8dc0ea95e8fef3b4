//! An upload larger than the server accepts ends in the server's answer
//! (413), not in a transport error, however the server refuses it: at once
//! from the declared length (as hyper servers and the fake do), or after
//! reading up to its cap and half-closing (as Go's `MaxBytesReader` and
//! `net/http` server do).
#![allow(clippy::unwrap_used)]

mod raw;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use multica_api::{DaemonApiExt, Error, TaskId, TaskMessage};
use multica_hyper::HyperClient;
use raw::RawServer;

const MIB: usize = 1024 * 1024;
/// The server's cap, as the issue's server had it.
const CAP: usize = 8 * MIB;
/// The upload: one batch whose JSON is far above the cap.
const UPLOAD: usize = 24 * MIB;

fn big_batch() -> Vec<TaskMessage> {
    let text = "x".repeat(MIB);
    (1..=(UPLOAD / MIB) as i64).map(|seq| TaskMessage::text(seq, text.as_str())).collect()
}

const TOO_LARGE: &str = r#"{"error":"request body too large"}"#;

/// A hyper server refusing bodies above the cap: at once when the declared
/// length is above it, as the fake does.
async fn hyper_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                    let too_large = request.body().size_hint().lower() > CAP as u64
                        || Limited::new(request.into_body(), CAP).collect().await.is_err();
                    let (status, body) = if too_large { (413, TOO_LARGE) } else { (200, "{}") };
                    let response = http::Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, server)
}

/// A server doing what Go's does: reads the body up to the cap, answers
/// 413 with `Connection: close`, half-closes, and reads on (discarding)
/// for a while before closing, so the client can read the answer.
async fn go_like_server() -> RawServer {
    RawServer::start(|mut conn| async move {
        conn.read_head_and(CAP).await;
        let answer = raw::response(
            "413 Request Entity Too Large",
            &[("content-type", "application/json"), ("connection", "close")],
            TOO_LARGE.as_bytes(),
        );
        conn.write(&answer).await;
        conn.shutdown_write_and_drain(Duration::from_millis(500)).await;
    })
    .await
}

async fn upload(url: String) -> Result<(), Error> {
    let client = HyperClient::builder(url).http2(false).build().unwrap();
    client.report_task_messages(&TaskId::new("t-1"), big_batch()).await
}

fn assert_413(result: Result<(), Error>) {
    match result {
        Err(Error::Status { status: 413, .. }) => {}
        other => panic!("expected the server's 413, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upload_refused_from_its_declared_length_ends_in_the_servers_413() {
    let (url, server) = hyper_server().await;
    assert_413(upload(url).await);
    server.abort();
}

#[tokio::test]
async fn an_upload_refused_at_the_cap_as_go_does_ends_in_the_servers_413() {
    let server = go_like_server().await;
    assert_413(upload(server.url()).await);
}

/// A server that answers 413 from the head alone and closes at once,
/// unread body and all (the kernel then resets the connection).
async fn abrupt_server() -> RawServer {
    RawServer::start(|mut conn| async move {
        conn.read_head_and(0).await;
        let answer = raw::response(
            "413 Request Entity Too Large",
            &[("content-type", "application/json"), ("connection", "close")],
            TOO_LARGE.as_bytes(),
        );
        conn.write(&answer).await;
    })
    .await
}

#[tokio::test]
async fn an_upload_refused_from_its_head_and_reset_ends_in_the_servers_413() {
    for _ in 0..2 {
        let server = abrupt_server().await;
        assert_413(upload(server.url()).await);
    }
}
