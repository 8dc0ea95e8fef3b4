//! Replays a recording of the daemon WebSocket channel
//! (`multica-ws-probe/1`) against a served fake, on the recording's own
//! schedule, and compares each step as its README says: handshakes (status,
//! the headers recorded, body), frame types and field sets, values modulo
//! placeholders, and timing only as classes (≤ 50 / 250 / 1000 / 5000 ms).
//!
//! Nothing here knows a particular recording: names are learned from the
//! control routes' captures and from API answers aligned with the recorded
//! ones, made-up values are made for names the fake calls only use, and
//! connections are raw RFC 6455 clients so that pongs, closes and EOFs are
//! sent exactly where the recording sends them.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[path = "../transcript/shapes.rs"]
mod shapes;

use shapes::{is_timestamp, is_uuid};

/// A received event on one connection.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Eof,
}

impl Event {
    fn is_ping_pong(&self) -> bool {
        matches!(self, Event::Ping(_) | Event::Pong(_))
    }
}

/// An event and its connection and arrival time.
type Received = (String, Instant, Event);

/// The verdict on one step.
#[derive(Debug)]
pub struct StepResult {
    pub name: String,
    pub differences: Vec<String>,
    /// Each push matched: its type, the real and the fake latency in ms
    /// from the action before it.
    pub pushes: Vec<(String, f64, f64)>,
}

impl StepResult {
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The outcome of a replay.
pub struct Report {
    pub results: Vec<StepResult>,
}

impl Report {
    pub fn matched(&self) -> usize {
        self.results.iter().filter(|r| r.matches()).count()
    }

    /// One line per step: name and verdict.
    pub fn table(&self) -> String {
        let mut out = String::from("| step | match |\n|---|---|\n");
        for result in &self.results {
            let _ = writeln!(out, "| {} | {} |", result.name, if result.matches() { "yes" } else { "no" });
        }
        let _ = writeln!(out, "| all | {} of {} |", self.matched(), self.results.len());
        out
    }

    /// Every push matched: step, type, real and fake latency.
    pub fn push_latencies(&self) -> String {
        let mut out = String::from("| step | push | real ms | fake ms |\n|---|---|---|---|\n");
        for result in &self.results {
            for (kind, real, fake) in &result.pushes {
                let _ = writeln!(out, "| {} | {kind} | {real:.1} | {fake:.1} |", result.name);
            }
        }
        out
    }

    pub fn mismatches(&self) -> String {
        let mut out = String::new();
        for result in self.results.iter().filter(|r| !r.matches()) {
            let _ = writeln!(out, "{}", result.name);
            for difference in &result.differences {
                let _ = writeln!(out, "    {}", difference.chars().take(400).collect::<String>());
            }
        }
        out
    }
}

/// A side action the recording has no fake call for, and the calls a newer
/// recording makes instead: `(label, calls)`.
pub type StandIn = (&'static str, Value);

struct Connection {
    /// When the 101 came: the recording's time and ours.
    connected: (f64, Instant),
    writer: OwnedWriteHalf,
    received: Vec<(Instant, Event)>,
    closed_by_us: bool,
}

/// Replays one recording against the fake at `base_url`.
pub struct WsReplayer {
    addr: std::net::SocketAddr,
    base_url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    placeholders: Vec<(String, String)>,
    descriptions: HashMap<String, String>,
    /// Name → the fake's value.
    vars: BTreeMap<String, String>,
    requests: BTreeMap<String, String>,
    connections: HashMap<String, Connection>,
    events: (mpsc::UnboundedSender<Received>, mpsc::UnboundedReceiver<Received>),
    stand_ins: Vec<StandIn>,
}

/// The hints a server pushes (their latency is reported).
const PUSHES: &[&str] =
    &["daemon:task_available", "daemon:pending_work", "daemon:runtime_profiles_changed", "daemon:workspaces_changed"];

/// The timing class of a latency in ms.
fn class(ms: f64) -> &'static str {
    match ms {
        m if m <= 50.0 => "<=50ms",
        m if m <= 250.0 => "<=250ms",
        m if m <= 1000.0 => "<=1000ms",
        m if m <= 5000.0 => "<=5000ms",
        _ => ">5000ms",
    }
}

impl WsReplayer {
    /// `placeholders`: `<PAT>`-style tokens and their values for the fake.
    pub fn new(addr: std::net::SocketAddr, placeholders: &[(&str, &str)], stand_ins: Vec<StandIn>) -> WsReplayer {
        WsReplayer {
            addr,
            base_url: format!("http://{addr}"),
            http: Client::builder(TokioExecutor::new()).build_http(),
            placeholders: placeholders.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            descriptions: HashMap::new(),
            vars: BTreeMap::new(),
            requests: BTreeMap::new(),
            connections: HashMap::new(),
            events: mpsc::unbounded_channel(),
            stand_ins,
        }
    }

    pub async fn run(&mut self, path: &str) -> Report {
        let root: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        self.descriptions = root["names"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let steps = root["steps"].as_array().cloned().unwrap_or_default();
        let start = Instant::now();
        let mut results = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            let next_start = steps.get(index + 1).map(first_time);
            results.push(self.step(step, start, next_start).await);
        }
        Report { results }
    }

    async fn step(&mut self, step: &Value, start: Instant, next_start: Option<f64>) -> StepResult {
        let name = step["name"].as_str().unwrap_or_default().to_owned();
        let mut differences = Vec::new();
        let at = |t: f64| start + Duration::from_micros((t * 1000.0) as u64);
        // The recording's timeline: handshakes, side actions, frames.
        let mut timeline: Vec<(f64, usize, &Value)> = Vec::new();
        for h in step["handshakes"].as_array().into_iter().flatten() {
            timeline.push((h["t"].as_f64().unwrap_or(0.0), 0, h));
        }
        for s in step["side"].as_array().into_iter().flatten() {
            timeline.push((s["t"].as_f64().unwrap_or(0.0), 1, s));
        }
        for f in step["frames"].as_array().into_iter().flatten() {
            timeline.push((f["t"].as_f64().unwrap_or(0.0), 2, f));
        }
        timeline.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Expected frames: (conn, recorded latency class, event, our reference instant).
        let mut expected: Vec<(String, &'static str, Value, Instant)> = Vec::new();
        let mut real_ms: Vec<f64> = Vec::new();
        let mut pushes = Vec::new();
        let mut last_action = (step["t"].as_f64().unwrap_or(0.0), Instant::now());
        let mut batch: Vec<(String, Vec<u8>)> = Vec::new();
        let followers: Vec<Option<&Value>> =
            (0..timeline.len()).map(|i| timeline.get(i + 1).filter(|(_, k, _)| *k == 2).map(|(_, _, v)| *v)).collect();
        for (position, (t, kind, item)) in timeline.into_iter().enumerate() {
            let next_batched = |conn: &str| {
                followers[position].is_some_and(|next| {
                    next["dir"] == "sent"
                        && next["conn"] == conn
                        && next["note"].as_str().is_some_and(|n| n.contains("one write"))
                })
            };
            match kind {
                0 => {
                    tokio::time::sleep_until(at(t)).await;
                    last_action = (t, Instant::now());
                    differences.extend(self.handshake(item).await);
                }
                1 => {
                    tokio::time::sleep_until(at(t)).await;
                    last_action = (t, Instant::now());
                    differences.extend(self.side(item).await);
                }
                _ => {
                    let conn = item["conn"].as_str().unwrap_or_default().to_owned();
                    if !self.connections.contains_key(&conn) {
                        continue; // opened in a step kept back
                    }
                    if item["dir"] == "sent" {
                        tokio::time::sleep_until(at(t)).await;
                        last_action = (t, Instant::now());
                        // Frames the probe sent in one write go in one write.
                        let batched = item["note"].as_str().is_some_and(|n| n.contains("one write"));
                        if batched {
                            if let Some(bytes) = self.encode(&conn, item) {
                                batch.push((conn.clone(), bytes));
                            }
                            if next_batched(&conn) {
                                continue;
                            }
                            let bytes: Vec<u8> = batch.drain(..).flat_map(|(_, b)| b).collect();
                            self.write(&conn, &bytes).await;
                        } else {
                            self.send(&conn, item).await;
                        }
                    } else {
                        if item["op"] == "eof" && !self.connections[&conn].closed_by_us {
                            // The probe ended its side: the server's EOF follows.
                            tokio::time::sleep_until(at(t)).await;
                            let connection = self.connections.get_mut(&conn).unwrap();
                            let _ = connection.writer.shutdown().await;
                        }
                        // A server ping is the connection's timer, not an answer.
                        let reference =
                            if item["op"] == "ping" { self.connections[&conn].connected } else { last_action };
                        expected.push((conn, class(t - reference.0), item.clone(), reference.1));
                        real_ms.push(t - reference.0);
                    }
                }
            }
        }
        // Which connections are compared, and whether pings and pongs are.
        let compare = &step["compare"];
        let control = compare["control"].as_bool().unwrap_or(false);
        let compared: Vec<String> = match compare["conns"].as_array() {
            Some(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            None => {
                let mut conns: Vec<String> = expected.iter().map(|(c, ..)| c.clone()).collect();
                conns.sort();
                conns.dedup();
                conns
            }
        };
        let compared: Vec<String> = compared.into_iter().filter(|c| self.connections.contains_key(c)).collect();
        let counted = |e: &Value| control || !matches!(e["op"].as_str(), Some("ping" | "pong"));
        // Wait for what is expected, then until the next step begins.
        let end = step["frames"].as_array().into_iter().flatten().filter_map(|f| f["t"].as_f64()).fold(0.0, f64::max);
        let deadline = at(end) + Duration::from_secs(5);
        for conn in &compared {
            let want = expected.iter().filter(|(c, _, e, _)| c == conn && counted(e)).count();
            while self.received_count(conn, control) < want && Instant::now() < deadline {
                self.pump(deadline).await;
            }
        }
        let settle = match next_start {
            Some(next) => at(next).max(Instant::now()),
            None => Instant::now() + Duration::from_millis(300),
        };
        while Instant::now() < settle {
            self.pump(settle).await;
        }
        self.pump_ready();
        // Compare and forget what each connection received in this step.
        for conn in self.connections.keys().cloned().collect::<Vec<_>>() {
            let received = std::mem::take(&mut self.connections.get_mut(&conn).unwrap().received);
            if !compared.contains(&conn) {
                continue;
            }
            let mut fake: Vec<(Instant, Value)> = received
                .into_iter()
                .filter(|(_, e)| control || !e.is_ping_pong())
                .map(|(t, e)| (t, self.describe(&e)))
                .collect();
            for (index, (c, real_class, item, reference)) in expected.iter().enumerate() {
                if c != &conn {
                    continue;
                }
                if !counted(item) {
                    continue;
                }
                let want = recorded_event(item);
                match fake.iter().position(|(_, got)| *got == want) {
                    Some(position) => {
                        let (when, _) = fake.remove(position);
                        let fake_ms = when.saturating_duration_since(*reference).as_secs_f64() * 1000.0;
                        let kind = want["json"]["type"].as_str().unwrap_or_default();
                        if PUSHES.contains(&kind) {
                            pushes.push((kind.to_owned(), real_ms[index], fake_ms));
                        }
                        let fake_class = class(fake_ms);
                        if fake_class != *real_class {
                            differences.push(format!("{conn}: {want}: real {real_class}, fake {fake_class}"));
                        }
                    }
                    None => {
                        // The fake's frame of the same type, field by field.
                        let same_type = fake.iter().position(|(_, got)| {
                            got["op"] == want["op"] && got["json"]["type"] == want["json"]["type"]
                        });
                        match same_type {
                            Some(position) if want["json"].is_object() => {
                                let (_, got) = fake.remove(position);
                                let mut diffs = Vec::new();
                                json_diff("", &want["json"], &got["json"], &mut diffs);
                                differences.extend(diffs.into_iter().map(|d| format!("{conn}: {d}")));
                            }
                            _ => differences.push(format!(
                                "{conn}: missing {want}; the fake sent {:?}",
                                fake.iter().map(|(_, v)| v.to_string()).collect::<Vec<_>>()
                            )),
                        }
                    }
                }
            }
            for (_, extra) in fake {
                differences.push(format!("{conn}: only on the fake: {extra}"));
            }
        }
        StepResult { name, differences, pushes }
    }

    fn received_count(&self, conn: &str, control: bool) -> usize {
        self.connections[conn].received.iter().filter(|(_, e)| control || !e.is_ping_pong()).count()
    }

    /// Files one received event, waiting until `deadline` at most.
    async fn pump(&mut self, deadline: Instant) {
        if let Ok(Some((conn, when, event))) = tokio::time::timeout_at(deadline, self.events.1.recv()).await {
            if let Some(connection) = self.connections.get_mut(&conn) {
                connection.received.push((when, event));
            }
        }
    }

    fn pump_ready(&mut self) {
        while let Ok((conn, when, event)) = self.events.1.try_recv() {
            if let Some(connection) = self.connections.get_mut(&conn) {
                connection.received.push((when, event));
            }
        }
    }

    // ----- values --------------------------------------------------------------------

    /// The fake's value of a name, made up for one the fake calls only use.
    fn var(&mut self, name: &str) -> String {
        if let Some(value) = self.vars.get(name) {
            return value.clone();
        }
        let n = self.vars.len() + 1;
        let value = if self.descriptions.get(name).is_some_and(|d| d.contains("32 hex")) {
            format!("{n:032x}")
        } else {
            format!("7e57da7a-0000-4000-8000-{n:012x}")
        };
        self.vars.insert(name.to_owned(), value.clone());
        value
    }

    /// `<PAT>`, `<NAME>`, `<NAME:UPPER>`, `<REQn>`, `{NAME}` → the fake's values.
    fn substitute(&mut self, text: &str) -> String {
        let mut out = text.to_owned();
        for (placeholder, value) in &self.placeholders {
            out = out.replace(placeholder.as_str(), value);
        }
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(open) = rest.find(['<', '{']) {
            let close = if rest.as_bytes()[open] == b'<' { '>' } else { '}' };
            let Some(len) = rest[open + 1..].find(close) else { break };
            let inner = &rest[open + 1..open + 1 + len];
            let is_name = !inner.is_empty()
                && inner.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == ':');
            result.push_str(&rest[..open]);
            if is_name {
                let (name, upper) = match inner.strip_suffix(":UPPER") {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                let value = if name.starts_with("REQ") && name[3..].chars().all(|c| c.is_ascii_digit()) {
                    let n = self.requests.len() + 1;
                    self.requests
                        .entry(name.to_owned())
                        .or_insert_with(|| format!("5e9de57a-0000-4000-8000-{n:012x}"))
                        .clone()
                } else {
                    self.var(name)
                };
                result.push_str(&if upper { value.to_ascii_uppercase() } else { value });
            } else {
                result.push_str(&rest[open..open + 2 + len]);
            }
            rest = &rest[open + 2 + len..];
        }
        result.push_str(rest);
        result
    }

    fn substitute_json(&mut self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.substitute(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.substitute_json(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.substitute_json(v))).collect())
            }
            other => other.clone(),
        }
    }

    /// A fake value as the recording writes it.
    fn normalize(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.normalize_string(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.normalize(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.normalize(v))).collect::<Map<_, _>>())
            }
            other => other.clone(),
        }
    }

    fn normalize_string(&self, s: &str) -> String {
        for (name, value) in self.requests.iter().chain(&self.vars) {
            if s == value {
                return format!("<{name}>");
            }
            if s == value.to_ascii_uppercase() && value.chars().any(|c| c.is_ascii_lowercase()) {
                return format!("<{name}:UPPER>");
            }
        }
        if s.starts_with("mat_") {
            return "<mat_token>".to_owned();
        }
        if is_timestamp(s) {
            return format!("<ts:{}>", s.chars().map(|c| if c.is_ascii_digit() { 'd' } else { c }).collect::<String>());
        }
        if is_uuid(s) {
            return "<uuid>".to_owned();
        }
        let mut out = s.to_owned();
        for (name, value) in &self.vars {
            if value.len() >= 8 {
                out = out.replace(value.as_str(), &format!("<{name}>"));
            }
        }
        mask_hex32(&out)
    }

    /// A received event as the recording's frame (the fields compared).
    fn describe(&self, event: &Event) -> Value {
        match event {
            Event::Text(text) => match serde_json::from_str::<Value>(text) {
                Ok(json) => serde_json::json!({ "op": "text", "json": self.normalize(&json) }),
                Err(_) => serde_json::json!({ "op": "text", "text": text }),
            },
            Event::Binary(data) => serde_json::json!({ "op": "binary", "size": data.len() }),
            Event::Ping(p) => serde_json::json!({ "op": "ping", "payload": String::from_utf8_lossy(p) }),
            Event::Pong(p) => serde_json::json!({ "op": "pong", "payload": String::from_utf8_lossy(p) }),
            Event::Close(code, reason) => serde_json::json!({ "op": "close", "code": code, "reason": reason }),
            Event::Eof => serde_json::json!({ "op": "eof" }),
        }
    }

    // ----- actions -------------------------------------------------------------------

    async fn side(&mut self, action: &Value) -> Vec<String> {
        let label = action["label"].as_str().unwrap_or_default();
        let mut calls = action["fake_calls"].as_array().cloned().unwrap_or_default();
        if calls.is_empty() {
            if let Some((_, stand_in)) = self.stand_ins.iter().find(|(l, _)| *l == label) {
                calls = stand_in.as_array().cloned().unwrap_or_default();
            }
        }
        let answers = action["answers"].as_array().cloned().unwrap_or_default();
        let mut differences = Vec::new();
        for call in &calls {
            let method = call["method"].as_str().unwrap_or("POST").to_owned();
            let path = self.substitute(call["path"].as_str().unwrap_or_default());
            let body = call.get("json").map(|json| serde_json::to_vec(&self.substitute_json(json)).unwrap());
            let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
            if call["headers"] == "daemon" {
                let pat = self.substitute("<PAT>");
                headers.push(("authorization".into(), format!("Bearer {pat}")));
                headers.push(("x-client-capabilities".into(), crate::ws_client::CAPABILITIES.into()));
            }
            let (status, answer) = self.http(&method, &path, &headers, body.unwrap_or_default()).await;
            if !(200..300).contains(&status) {
                differences.push(format!("side {method} {path} answered {status}: {answer}"));
            }
            for (name, field) in call["capture"].as_object().into_iter().flatten() {
                if let Some(value) =
                    answer.pointer(&format!("/{}", field.as_str().unwrap_or_default().replace('.', "/")))
                {
                    self.vars.insert(name.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_owned));
                }
            }
            // An API call made on both servers: its answer names what the recording names.
            if !path.starts_with("/_mock/") {
                if let Some(real) = answers.first().map(|a| &a["body"]) {
                    self.learn(real, &answer);
                }
            }
        }
        differences
    }

    /// Binds `<NAME>` strings of a recorded answer to the fake's values at the same place.
    fn learn(&mut self, real: &Value, fake: &Value) {
        match (real, fake) {
            (Value::String(r), Value::String(f)) => {
                if let Some(name) = r.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
                    if self.descriptions.contains_key(name) && !self.vars.contains_key(name) {
                        self.vars.insert(name.to_owned(), f.clone());
                    }
                }
            }
            (Value::Array(r), Value::Array(f)) => r.iter().zip(f).for_each(|(r, f)| self.learn(r, f)),
            (Value::Object(r), Value::Object(f)) => {
                for (key, rv) in r {
                    if let Some(fv) = f.get(key) {
                        self.learn(rv, fv);
                    }
                }
            }
            _ => {}
        }
    }

    async fn http(&self, method: &str, path: &str, headers: &[(String, String)], body: Vec<u8>) -> (u16, Value) {
        let mut builder = http::Request::builder().method(method).uri(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let response = self.http.request(builder.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn handshake(&mut self, recorded: &Value) -> Vec<String> {
        let request = &recorded["request"];
        let method = request["method"].as_str().unwrap_or("GET");
        let path = self.substitute(request["path"].as_str().unwrap_or_default());
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in request["headers"].as_object().into_iter().flatten() {
            let value = value.as_str().unwrap_or_default();
            let value = if value == "<key>" { key.to_owned() } else { self.substitute(value) };
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let (status, headers, body) = read_answer(&mut stream).await;
        let mut differences = Vec::new();
        let real_status = recorded["status"].as_u64().unwrap_or_default() as u16;
        if status != real_status {
            differences.push(format!("handshake status: real {real_status} fake {status} ({body:?})"));
        }
        let real_headers: BTreeMap<String, String> = recorded["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        for name in [
            "content-type",
            "content-security-policy",
            "vary",
            "allow",
            "x-content-type-options",
            "sec-websocket-version",
            "upgrade",
            "connection",
            "sec-websocket-protocol",
            "sec-websocket-extensions",
        ] {
            if real_headers.get(name) != headers.get(name) {
                differences.push(format!(
                    "header {name}: real {:?} fake {:?}",
                    real_headers.get(name),
                    headers.get(name)
                ));
            }
        }
        if real_headers.get("sec-websocket-accept").map(String::as_str) == Some("<valid>")
            && headers.get("sec-websocket-accept").map(String::as_str) != Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        {
            differences.push(format!("sec-websocket-accept: {:?}", headers.get("sec-websocket-accept")));
        }
        let real_body = recorded["body"].as_str().unwrap_or_default();
        if real_body != body {
            differences.push(format!("handshake body: real {real_body:?} fake {body:?}"));
        }
        if status == 101 {
            let conn = recorded["conn"].as_str().unwrap_or_default().to_owned();
            let (reader, writer) = stream.into_split();
            tokio::spawn(read_events(conn.clone(), reader, self.events.0.clone()));
            let connected = (recorded["t_answer"].as_f64().unwrap_or_default(), Instant::now());
            self.connections.insert(conn, Connection { connected, writer, received: Vec::new(), closed_by_us: false });
        }
        differences
    }

    async fn send(&mut self, conn: &str, frame: &Value) {
        let Some(bytes) = self.encode(conn, frame) else { return };
        self.write(conn, &bytes).await;
    }

    async fn write(&mut self, conn: &str, bytes: &[u8]) {
        if let Some(connection) = self.connections.get_mut(conn) {
            let _ = connection.writer.write_all(bytes).await;
        }
    }

    /// A recorded sent frame as the bytes to write.
    fn encode(&mut self, conn: &str, frame: &Value) -> Option<Vec<u8>> {
        let (opcode, payload): (u8, Vec<u8>) = match frame["op"].as_str().unwrap_or("text") {
            op @ ("text" | "binary") => {
                let mut data = match (frame.get("json"), frame.get("text")) {
                    (Some(json), _) => python_json(&self.substitute_json(json)),
                    (None, Some(text)) => self.substitute(text.as_str().unwrap_or_default()).into_bytes(),
                    _ => Vec::new(),
                };
                // A recorded size above the JSON's: the probe padded it (JSON allows trailing space).
                if let Some(size) = frame["size"].as_u64().and_then(|s| usize::try_from(s).ok()) {
                    if size > data.len() {
                        data.resize(size, b' ');
                    }
                }
                (if op == "text" { 0x1 } else { 0x2 }, data)
            }
            "ping" => (0x9, frame["payload"].as_str().unwrap_or_default().as_bytes().to_vec()),
            "pong" => (0xA, frame["payload"].as_str().unwrap_or_default().as_bytes().to_vec()),
            "close" => {
                let mut data = Vec::new();
                if let Some(code) = frame["code"].as_u64() {
                    data.extend_from_slice(&(code as u16).to_be_bytes());
                    data.extend_from_slice(frame["reason"].as_str().unwrap_or_default().as_bytes());
                }
                (0x8, data)
            }
            _ => return None,
        };
        let connection = self.connections.get_mut(conn)?;
        if opcode == 0x8 {
            connection.closed_by_us = true;
        }
        Some(masked(opcode, &payload))
    }
}

/// Differences between a recorded and a fake value, by path.
fn json_diff(at: &str, real: &Value, fake: &Value, out: &mut Vec<String>) {
    match (real, fake) {
        (Value::Object(r), Value::Object(f)) => {
            for (key, rv) in r {
                match f.get(key) {
                    Some(fv) => json_diff(&format!("{at}.{key}"), rv, fv, out),
                    None => out.push(format!("{at}.{key}: missing on the fake (real {rv})")),
                }
            }
            for (key, fv) in f.iter().filter(|(k, _)| !r.contains_key(*k)) {
                out.push(format!("{at}.{key}: only on the fake ({fv})"));
            }
        }
        (Value::Array(r), Value::Array(f)) if r.len() == f.len() => {
            for (index, (rv, fv)) in r.iter().zip(f).enumerate() {
                json_diff(&format!("{at}[{index}]"), rv, fv, out);
            }
        }
        (r, f) if r == f => {}
        (r, f) => out.push(format!("{at}: real {r} fake {f}")),
    }
}

fn first_time(step: &Value) -> f64 {
    let mut times = vec![step["t"].as_f64().unwrap_or(0.0)];
    for key in ["handshakes", "side", "frames"] {
        times.extend(step[key].as_array().into_iter().flatten().filter_map(|v| v["t"].as_f64()));
    }
    times.into_iter().fold(f64::MAX, f64::min)
}

/// A recorded frame as [`WsReplayer::describe`] writes a received one.
fn recorded_event(frame: &Value) -> Value {
    match frame["op"].as_str().unwrap_or_default() {
        "text" if frame.get("json").is_some() => serde_json::json!({ "op": "text", "json": frame["json"] }),
        "text" => serde_json::json!({ "op": "text", "text": frame["text"] }),
        "binary" => serde_json::json!({ "op": "binary", "size": frame["size"] }),
        op @ ("ping" | "pong") => serde_json::json!({ "op": op, "payload": frame["payload"] }),
        "close" => serde_json::json!({ "op": "close", "code": frame["code"], "reason": frame["reason"] }),
        _ => serde_json::json!({ "op": "eof" }),
    }
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`), as the probe sent it.
fn python_json(value: &Value) -> Vec<u8> {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push_str(": ");
                    write(item, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out.into_bytes()
}

fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// An HTTP answer: status, lower-case headers, body (by `Content-Length`).
async fn read_answer(stream: &mut TcpStream) -> (u16, BTreeMap<String, String>, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return (0, BTreeMap::new(), String::new()),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    if status != 101 {
        let _ = stream.read_exact(&mut body).await;
    }
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Reads server frames until EOF, each as an [`Event`] with its arrival time.
async fn read_events(conn: String, mut reader: OwnedReadHalf, events: mpsc::UnboundedSender<Received>) {
    let mut message: Vec<u8> = Vec::new();
    let mut message_op = 0u8;
    loop {
        let mut head = [0u8; 2];
        if reader.read_exact(&mut head).await.is_err() {
            let _ = events.send((conn, Instant::now(), Event::Eof));
            return;
        }
        let mut len = u64::from(head[1] & 0x7f);
        if len == 126 {
            let mut ext = [0u8; 2];
            if reader.read_exact(&mut ext).await.is_err() {
                break;
            }
            len = u64::from(u16::from_be_bytes(ext));
        } else if len == 127 {
            let mut ext = [0u8; 8];
            if reader.read_exact(&mut ext).await.is_err() {
                break;
            }
            len = u64::from_be_bytes(ext);
        }
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        if reader.read_exact(&mut payload).await.is_err() {
            break;
        }
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let event = match opcode {
            0x9 => Event::Ping(payload),
            0xA => Event::Pong(payload),
            0x8 => {
                let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                Event::Close(code, String::from_utf8_lossy(payload.get(2..).unwrap_or_default()).into_owned())
            }
            op => {
                if op != 0 {
                    message_op = op;
                }
                message.extend_from_slice(&payload);
                if !fin {
                    continue;
                }
                let data = std::mem::take(&mut message);
                if message_op == 0x1 {
                    Event::Text(String::from_utf8_lossy(&data).into_owned())
                } else {
                    Event::Binary(data)
                }
            }
        };
        if events.send((conn.clone(), Instant::now(), event)).is_err() {
            return;
        }
    }
    let _ = events.send((conn, Instant::now(), Event::Eof));
}

fn mask_hex32(s: &str) -> String {
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if !run.is_empty() && run.len() % 32 == 0 {
            out.push_str(&"<hex32>".repeat(run.len() / 32));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if is_hex(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}
