//! The fake's server against clients that hold connections: slowloris
//! (a request head trickled a byte at a time), silent and idle connections,
//! and more connections than the cap. Each case uses small configured
//! limits and checks the connections are closed by the server and that a
//! new client is still served.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use multica_mock::{serve_with, ConnectionLimits, MockDaemon, MockServer, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Generous bound on how late past its limit a connection may be closed on
/// a loaded machine; it only tells "closed by the limit" from "never".
const SLACK: Duration = Duration::from_secs(3);

async fn server(header_read_timeout: Duration, idle_timeout: Duration, max_connections: usize) -> MockServer {
    let limits = ConnectionLimits { header_read_timeout, idle_timeout, max_connections };
    serve_with(MockDaemon::new(), ServerConfig { limits, ..ServerConfig::default() }).await.unwrap()
}

/// Reads (and discards) until the server closes the connection.
async fn until_closed(reader: &mut (impl AsyncReadExt + Unpin)) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Sends `bytes` one at a time, `every` apart, then keeps sending header
/// lines the same way: a head that never ends. Returns when a write fails.
async fn trickle(writer: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8], every: Duration) {
    let endless = std::iter::repeat(b"X-Slow: a\r\n".as_slice()).flatten();
    for byte in bytes.iter().chain(endless) {
        if writer.write_all(&[*byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// A connection that sends `opening` a byte every `every` (or nothing, if
/// empty) until the server closes it; how long that took from connecting.
async fn held_until_closed(addr: std::net::SocketAddr, opening: &'static [u8], every: Duration) -> Duration {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    if opening.is_empty() {
        until_closed(&mut reader).await;
    } else {
        tokio::select! {
            () = until_closed(&mut reader) => {}
            () = trickle(&mut writer, opening, every) => until_closed(&mut reader).await,
        }
    }
    started.elapsed()
}

/// One HTTP/1.1 request on `stream` (kept alive); the status line.
async fn request(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    // The fake's 404 is `404 page not found\n` with its length: read until
    // the whole of it is in.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"404 page not found\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed mid-answer: {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).lines().next().unwrap().to_owned()
}

/// A new client on a new connection gets its answer.
async fn served(server: &MockServer) {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let status = tokio::time::timeout(SLACK, request(&mut stream)).await.expect("a new client is answered");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_are_closed_at_the_header_timeout() {
    const HEADER: Duration = Duration::from_millis(300);
    let server = server(HEADER, Duration::from_secs(30), 512).await;
    let addr = server.addr();
    let every = Duration::from_millis(50);
    let mut held = tokio::task::JoinSet::new();
    for i in 0..100 {
        // Slowloris over HTTP/1.1, a slow HTTP/2 preface, and silence.
        let opening: &'static [u8] = match i % 4 {
            0 | 1 => b"GET /api/daemon/runtimes HTTP/1.1\r\nHost: x\r\n",
            2 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            _ => b"",
        };
        held.spawn(held_until_closed(addr, opening, every));
    }
    // While they are held, a new client is served.
    served(&server).await;
    let mut times = Vec::new();
    while let Some(time) = tokio::time::timeout(HEADER + SLACK, held.join_next()).await.expect("all closed in time") {
        times.push(time.unwrap());
    }
    times.sort();
    println!("100 slow or silent connections closed after {:?} to {:?}", times[0], times[times.len() - 1]);
    assert_eq!(times.len(), 100);
    assert!(times[0] >= HEADER, "closed before the header timeout: {:?}", times[0]);
    assert!(times[times.len() - 1] <= HEADER + SLACK, "{:?}", times[times.len() - 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_next_head_on_a_keep_alive_connection_is_closed_at_the_header_timeout() {
    const HEADER: Duration = Duration::from_millis(300);
    let server = server(HEADER, Duration::from_secs(30), 512).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(request(&mut stream).await, "HTTP/1.1 404 Not Found");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    tokio::time::timeout(HEADER + SLACK, async {
        tokio::select! {
            () = until_closed(&mut reader) => {}
            () = trickle(&mut writer, b"GET /nope HTTP/1.1\r\n", Duration::from_millis(50)) => {}
        }
    })
    .await
    .expect("closed at the header timeout, not the idle one");
    assert!(started.elapsed() >= HEADER, "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_at_the_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(400);
    // The header timeout is longer: what closes them is the idle timeout.
    let header = IDLE + SLACK + Duration::from_secs(2);
    let server = server(header, IDLE, 512).await;

    // HTTP/1.1: requests spaced closer than the idle timeout keep the
    // connection, well past the idle timeout in total.
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    for _ in 0..5 {
        assert_eq!(request(&mut stream).await, "HTTP/1.1 404 Not Found");
        tokio::time::sleep(IDLE / 3).await;
    }
    assert_eq!(request(&mut stream).await, "HTTP/1.1 404 Not Found");
    let answered = Instant::now();
    tokio::time::timeout(IDLE + SLACK, until_closed(&mut stream)).await.expect("the idle connection was closed");
    let http1_idle = answered.elapsed();
    assert!(http1_idle >= IDLE, "{http1_idle:?}");

    // h2c: one request, then nothing; the server sends GOAWAY and closes.
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("{}/nope", server.base_url())).body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 404);
    response.into_body().collect().await.unwrap();
    let answered = Instant::now();
    let ended = tokio::time::timeout(IDLE + SLACK, connection).await.expect("the idle h2c connection was closed");
    let h2_idle = answered.elapsed();
    assert!(ended.unwrap().is_ok(), "closed gracefully (GOAWAY)");
    assert!(h2_idle >= IDLE - Duration::from_millis(5), "{h2_idle:?}");
    println!("idle timeout {IDLE:?}: HTTP/1.1 closed after {http1_idle:?}, h2c after {h2_idle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_longest_waiting_connection_makes_room_for_a_new_client() {
    const CAP: usize = 8;
    const HELD: usize = 3 * CAP;
    // Timeouts far away: only the cap closes anything here.
    let server = server(Duration::from_secs(60), Duration::from_secs(60), CAP).await;
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut holders = tokio::task::JoinSet::new();
    for i in 0..HELD {
        // Connected one after another, so the server accepts them in order.
        let stream = TcpStream::connect(server.addr()).await.unwrap();
        let closed_tx = closed_tx.clone();
        holders.spawn(async move {
            let (mut reader, mut writer) = stream.into_split();
            // Half of them a slow head, half silent.
            if i % 2 == 0 {
                tokio::select! {
                    () = until_closed(&mut reader) => {}
                    () = trickle(&mut writer, b"GET / HTTP/1.1\r\n", Duration::from_millis(100)) => {}
                }
            } else {
                until_closed(&mut reader).await;
            }
            closed_tx.send(i).unwrap();
        });
    }
    // The server holds at most CAP: the oldest are shed as new ones come.
    let mut shed = Vec::new();
    tokio::time::timeout(SLACK, async {
        while shed.len() < HELD - CAP {
            shed.push(closed_rx.recv().await.unwrap());
        }
    })
    .await
    .expect("connections beyond the cap were shed");
    shed.sort_unstable();
    assert_eq!(shed, (0..HELD - CAP).collect::<Vec<_>>(), "the longest-waiting went first");

    // With CAP held, a new client is served, and one more holder made room.
    served(&server).await;
    let next = tokio::time::timeout(SLACK, closed_rx.recv()).await.expect("one more was shed").unwrap();
    assert_eq!(next, HELD - CAP);
    assert!(closed_rx.try_recv().is_err(), "only one was shed for the new client");
    println!("cap {CAP}: {HELD} held connections, {} shed, a new client served", shed.len() + 1);
    holders.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_with_every_connection_busy_a_new_client_waits_its_turn() {
    const CAP: usize = 2;
    let server = server(Duration::from_secs(60), Duration::from_secs(60), CAP).await;
    // CAP connections each in the middle of a request body: busy, not idle.
    // `100 Continue` comes when the server starts reading the body: the
    // request is then in flight.
    let head = b"POST /api/daemon/heartbeat HTTP/1.1\r\nhost: x\r\ncontent-length: 20\r\nexpect: 100-continue\r\n\r\n";
    let mut busy = Vec::new();
    for _ in 0..CAP {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(head).await.unwrap();
        let mut interim = Vec::new();
        let mut buf = [0u8; 256];
        while !interim.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before 100 Continue");
            interim.extend_from_slice(&buf[..n]);
        }
        assert!(interim.starts_with(b"HTTP/1.1 100 Continue"), "{:?}", String::from_utf8_lossy(&interim));
        stream.write_all(b"0123456789").await.unwrap();
        busy.push(stream);
    }
    let mut newcomer = TcpStream::connect(server.addr()).await.unwrap();
    newcomer.write_all(b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    // Neither refused nor served while every connection is busy.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), newcomer.read(&mut byte)).await;
    assert!(early.is_err(), "the new client was answered or closed at the cap: {early:?}");
    // One busy request ends (its body completes): the new client is served.
    busy[0].write_all(b"0123456789").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(SLACK, async {
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"404 page not found\n") {
            let n = newcomer.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("served once a connection was free");
    assert!(answer.starts_with(b"HTTP/1.1 404"), "{:?}", String::from_utf8_lossy(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_connections_waiting_for_a_head_are_shed_before_an_answered_keep_alive_client() {
    const CAP: usize = 4;
    // How long a next head may arrive before it counts as slow (the
    // server's `SLOW_HEAD`), with a margin.
    const SLOW: Duration = Duration::from_millis(1300);
    let server = server(Duration::from_secs(60), Duration::from_secs(60), CAP).await;
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut holders = tokio::task::JoinSet::new();

    // An answered client, idle from here on: the longest-waiting connection.
    let mut keep_alive = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(request(&mut keep_alive).await, "HTTP/1.1 404 Not Found");
    // An answered client that then trickles its next head for longer than
    // a head takes to arrive.
    let mut slow_next = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(request(&mut slow_next).await, "HTTP/1.1 404 Not Found");
    let tx = closed_tx.clone();
    holders.spawn(async move {
        let (mut reader, mut writer) = slow_next.into_split();
        tokio::select! {
            () = until_closed(&mut reader) => {}
            () = trickle(&mut writer, b"GET /nope HTTP/1.1\r\n", Duration::from_millis(100)) => {}
        }
        tx.send("slow next head").unwrap();
    });
    tokio::time::sleep(SLOW).await;
    // Then silent newcomers, one after another, past the cap.
    let newcomers = ["silent 1", "silent 2", "silent 3", "silent 4", "silent 5"];
    for name in newcomers {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        let tx = closed_tx.clone();
        holders.spawn(async move {
            until_closed(&mut stream).await;
            tx.send(name).unwrap();
        });
    }
    // Open were the 2 answered ones and 5 newcomers: the 3 that waited
    // longest for a head were shed (each client sees its own close, in no
    // particular order).
    let mut shed = Vec::new();
    tokio::time::timeout(SLACK, async {
        while shed.len() < 3 {
            shed.push(closed_rx.recv().await.unwrap());
        }
    })
    .await
    .expect("connections beyond the cap were shed");
    shed.sort_unstable();
    assert_eq!(shed, ["silent 1", "silent 2", "slow next head"]);
    assert!(closed_rx.try_recv().is_err(), "{:?}", closed_rx.try_recv());
    // The idle keep-alive connection was kept: its next request is answered
    // on it.
    let status = tokio::time::timeout(SLACK, request(&mut keep_alive)).await.expect("answered");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    holders.abort_all();
}
