//! Replays a recorded transcript of the real Multica server
//! (`multica-realserver-replay/1`) against a served fake and compares each
//! answer with the recorded one by the transcript README's rules.
//!
//! Nothing here knows a particular transcript: the server is any base URL,
//! the token placeholders (`<PAT>`, `<JWT>`, `<MDT>`…) are given by the
//! caller, and the format's extensions (dotted capture paths, `{VAR}` in
//! headers) are supported, so a second transcript replays with the same code.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

mod shapes;

use shapes::{is_timestamp, is_uuid};

/// Response headers the README's rules leave out of the comparison.
const IGNORED_HEADERS: &[&str] = &["date", "content-length", "connection", "keep-alive", "vary"];

/// A loaded transcript.
pub struct Transcript {
    /// Section letter → name, in letter order.
    pub sections: BTreeMap<String, String>,
    /// Known ID → short name (normalised to `<NAME>`).
    pub names: HashMap<String, String>,
    /// The steps, in order.
    pub steps: Vec<Value>,
}

impl Transcript {
    /// Reads a transcript file.
    pub fn load(path: &str) -> Transcript {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let root: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
        let strings = |key: &str| -> Vec<(String, String)> {
            root[key]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default()
        };
        Transcript {
            sections: strings("sections").into_iter().collect(),
            names: strings("names").into_iter().collect(),
            steps: root["steps"].as_array().cloned().unwrap_or_default(),
        }
    }
}

/// A variable defined by a setup action or a step's answer.
#[derive(Clone, Debug)]
struct Var {
    real: String,
    /// The fake's value; `None` when its capture found nothing.
    fake: Option<String>,
    mask: bool,
}

/// One answer, on either side.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Lower-case header name → its last value.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy for non-UTF-8).
    pub body: String,
}

/// The verdict on one step.
#[derive(Debug)]
pub struct StepResult {
    /// The step's `seq`.
    pub seq: u64,
    /// Its section letter.
    pub section: String,
    /// Its name (`E26 complete T1 (running), all fields`).
    pub name: String,
    /// The differences found; empty when the step matches.
    pub differences: Vec<String>,
}

impl StepResult {
    /// The step's short name: the first word of its name (`E26`).
    pub fn short(&self) -> &str {
        self.name.split_whitespace().next().unwrap_or_default()
    }

    /// Whether the fake answered as the real server.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The outcome of a whole replay.
pub struct Report {
    sections: BTreeMap<String, String>,
    /// Every step's verdict, in order.
    pub results: Vec<StepResult>,
}

impl Report {
    /// How many steps matched.
    pub fn matched(&self) -> usize {
        self.results.iter().filter(|r| r.matches()).count()
    }

    /// The per-section table: section, name, matched, total.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| section | name | match | steps |");
        let _ = writeln!(out, "|---|---|---|---|");
        for (letter, name) in &self.sections {
            let of_section: Vec<&StepResult> = self.results.iter().filter(|r| &r.section == letter).collect();
            let matched = of_section.iter().filter(|r| r.matches()).count();
            let _ = writeln!(out, "| {letter} | {name} | {matched} | {} |", of_section.len());
        }
        let _ = writeln!(out, "| all | | {} | {} |", self.matched(), self.results.len());
        out
    }

    /// Every step that does not match, with its differences.
    pub fn mismatches(&self) -> String {
        let mut out = String::new();
        for result in self.results.iter().filter(|r| !r.matches()) {
            let _ = writeln!(out, "#{} {}", result.seq, result.name);
            for difference in &result.differences {
                let _ = writeln!(out, "    {difference}");
            }
        }
        out
    }

    /// The steps that do not match and are not in `exceptions` (short names).
    pub fn unexpected_mismatches<'a>(&'a self, exceptions: &[(&str, &str)]) -> Vec<&'a StepResult> {
        self.results
            .iter()
            .filter(|r| !r.matches() && !exceptions.iter().any(|(short, _)| *short == r.short()))
            .collect()
    }
}

/// Replays transcripts against one server.
pub struct Replayer {
    base_url: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Placeholder (`<PAT>`) → the value sent to the fake.
    placeholders: HashMap<String, String>,
    vars: BTreeMap<String, Var>,
}

impl Replayer {
    /// A replayer for the server at `base_url`, sending `placeholders`'
    /// values in place of the transcript's token placeholders.
    pub fn new(base_url: &str, placeholders: &[(&str, &str)]) -> Replayer {
        Replayer {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            placeholders: placeholders.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            vars: BTreeMap::new(),
        }
    }

    /// Replays every step in order.
    pub async fn run(&mut self, transcript: &Transcript) -> Report {
        let mut results = Vec::with_capacity(transcript.steps.len());
        for step in &transcript.steps {
            results.push(self.step(transcript, step).await);
        }
        Report { sections: transcript.sections.clone(), results }
    }

    async fn step(&mut self, transcript: &Transcript, step: &Value) -> StepResult {
        let mut differences = Vec::new();
        for action in step["setup"].as_array().into_iter().flatten() {
            // `same` variables are known before the calls that use them.
            self.define(action.get("vars"), &HashMap::new());
            let mut captured = HashMap::new();
            for call in action["fake_calls"].as_array().into_iter().flatten() {
                let method = call["method"].as_str().unwrap_or("POST");
                let path = self.substitute(call["path"].as_str().unwrap_or_default());
                let body = call.get("json").map(|json| serde_json::to_vec(&self.substitute_json(json)).unwrap());
                let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
                let answer = self.send(method, &path, &headers, body.unwrap_or_default()).await;
                if !(200..300).contains(&answer.status) {
                    differences.push(format!("setup {method} {path} answered {}: {}", answer.status, answer.body));
                }
                captured.extend(capture(call.get("capture"), &answer));
            }
            self.define(action.get("vars"), &captured);
        }

        let request = &step["request"];
        let method = request["method"].as_str().unwrap_or("GET");
        let path = self.substitute(request["path"].as_str().unwrap_or_default());
        let headers: Vec<(String, String)> = request["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.clone(), self.substitute(value.as_str().unwrap_or_default())))
            .collect();
        let body: Vec<u8> = if let Some(json) = request.get("json") {
            serde_json::to_vec(&self.substitute_json(json)).unwrap()
        } else if let Some(raw) = request["raw"].as_str() {
            self.substitute(raw).into_bytes()
        } else if let Some(latin1) = request["raw_latin1"].as_str() {
            self.substitute(latin1).chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect()
        } else {
            Vec::new()
        };
        let fake = self.send(method, &path, &headers, body).await;
        let captured = capture(step.get("capture"), &fake);
        self.define(step.get("vars"), &captured);

        let real = recorded(&step["real"]);
        differences.extend(self.compare(transcript, &real, &fake));
        StepResult {
            seq: step["seq"].as_u64().unwrap_or_default(),
            section: step["section"].as_str().unwrap_or_default().to_owned(),
            name: step["name"].as_str().unwrap_or_default().to_owned(),
            differences,
        }
    }

    /// Records the variables an action or step defines.
    fn define(&mut self, vars: Option<&Value>, captured: &HashMap<String, String>) {
        for (name, spec) in vars.and_then(Value::as_object).into_iter().flatten() {
            let real = spec["real"].as_str().unwrap_or_default().to_owned();
            let fake = match spec["fake"].as_str() {
                Some("same") => Some(real.clone()),
                _ => captured.get(name).cloned(),
            };
            let mask = spec["mask"].as_bool().unwrap_or(false);
            self.vars.insert(name.clone(), Var { real, fake, mask });
        }
    }

    /// Replaces token placeholders and `{VAR}` (the fake's values).
    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (placeholder, value) in &self.placeholders {
            out = out.replace(placeholder.as_str(), value);
        }
        for (name, var) in &self.vars {
            if let Some(fake) = &var.fake {
                out = out.replace(&format!("{{{name}}}"), fake);
            }
        }
        out
    }

    fn substitute_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.substitute(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.substitute_json(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (self.substitute(k), self.substitute_json(v))).collect())
            }
            other => other.clone(),
        }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let mut builder = Request::builder().method(method).uri(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let response = self.client.request(request).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        // A recording keeps one value per header name, the last one sent
        // (chi writes one `Allow` line per method): the fake's answer is read
        // the same way.
        let headers: BTreeMap<String, String> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    /// The README's comparison: status, headers, body.
    fn compare(&self, transcript: &Transcript, real: &Answer, fake: &Answer) -> Vec<String> {
        let mut differences = Vec::new();
        if real.status != fake.status {
            differences.push(format!("status: real {} fake {}", real.status, fake.status));
        }
        let compared = |headers: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            headers
                .iter()
                .filter(|(k, _)| !IGNORED_HEADERS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let (real_headers, fake_headers) = (compared(&real.headers), compared(&fake.headers));
        for name in real_headers.keys().chain(fake_headers.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (r, f) = (real_headers.get(name), fake_headers.get(name));
            if r != f {
                differences.push(format!("header {name}: real {r:?} fake {f:?}"));
            }
        }
        if real.body.ends_with('\n') != fake.body.ends_with('\n') {
            differences.push("body: only one side ends with a newline".to_owned());
        }
        let parsed = |body: &str| serde_json::from_str::<Value>(body).ok().filter(|v| !v.is_null());
        match (parsed(&real.body), parsed(&fake.body)) {
            (Some(r), Some(f)) => {
                let r = self.normalize(transcript, &r, Side::Real);
                let f = self.normalize(transcript, &f, Side::Fake);
                json_diff("body", &r, &f, &mut differences);
            }
            _ => {
                let (r, f) = (self.mask_text(&real.body, Side::Real), self.mask_text(&fake.body, Side::Fake));
                if r != f {
                    differences.push(format!("body: real {r:?} fake {f:?}"));
                }
            }
        }
        differences
    }

    fn normalize(&self, transcript: &Transcript, value: &Value, side: Side) -> Value {
        match value {
            Value::String(s) => Value::String(self.normalize_string(transcript, s, side)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.normalize(transcript, v, side)).collect()),
            Value::Object(map) => Value::Object(
                map.iter().map(|(k, v)| (k.clone(), self.normalize(transcript, v, side))).collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }

    fn normalize_string(&self, transcript: &Transcript, s: &str, side: Side) -> String {
        if let Some(name) = transcript.names.get(s) {
            return format!("<{name}>");
        }
        for (name, var) in self.vars.iter().filter(|(_, v)| v.mask) {
            if side.value(var) == Some(s) {
                return format!("<{name}>");
            }
        }
        if is_timestamp(s) {
            let shape: String = s.chars().map(|c| if c.is_ascii_digit() { 'd' } else { c }).collect();
            return format!("<ts:{shape}>");
        }
        if is_uuid(s) {
            return "<uuid>".to_owned();
        }
        mask_hex32(s)
    }

    fn mask_text(&self, text: &str, side: Side) -> String {
        let mut out = text.to_owned();
        for (name, var) in &self.vars {
            if let Some(value) = side.value(var).filter(|v| !v.is_empty()) {
                out = out.replace(value, &format!("<{name}>"));
            }
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Side {
    Real,
    Fake,
}

impl Side {
    fn value(self, var: &Var) -> Option<&str> {
        match self {
            Side::Real => Some(&var.real),
            Side::Fake => var.fake.as_deref(),
        }
    }
}

/// A recorded answer.
fn recorded(real: &Value) -> Answer {
    let headers = real["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    Answer {
        status: real["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or_default(),
        headers,
        body: real["body"].as_str().unwrap_or_default().to_owned(),
    }
}

/// The variables a `capture` block takes from an answer: `{VAR: "field"}` or
/// `{VAR: {"field": "a.0.b", "fallback": …}}`, a dotted path into the JSON.
fn capture(spec: Option<&Value>, answer: &Answer) -> HashMap<String, String> {
    let mut captured = HashMap::new();
    let Ok(body) = serde_json::from_str::<Value>(&answer.body) else {
        return captured;
    };
    for (name, field) in spec.and_then(Value::as_object).into_iter().flatten() {
        let path = field.as_str().or_else(|| field["field"].as_str()).unwrap_or_default();
        let mut current = &body;
        for segment in path.split('.') {
            current = match (current, segment.parse::<usize>()) {
                (Value::Array(items), Ok(index)) => items.get(index).unwrap_or(&Value::Null),
                (value, _) => value.get(segment).unwrap_or(&Value::Null),
            };
        }
        match current {
            Value::String(s) => {
                captured.insert(name.clone(), s.clone());
            }
            Value::Number(n) => {
                captured.insert(name.clone(), n.to_string());
            }
            _ => {}
        }
    }
    captured
}

/// Differences between two normalised JSON values; numbers compare by value.
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
        (Value::Number(r), Value::Number(f)) => {
            let same = match (r.as_i64(), f.as_i64(), r.as_u64(), f.as_u64()) {
                (Some(a), Some(b), _, _) => a == b,
                (_, _, Some(a), Some(b)) => a == b,
                _ => r.as_f64() == f.as_f64(),
            };
            if !same {
                out.push(format!("{at}: real {r} fake {f}"));
            }
        }
        (r, f) if r == f => {}
        (r, f) => out.push(format!("{at}: real {r} fake {f}")),
    }
}

/// Every run of exactly 32 lowercase hex digits becomes `<hex32>`.
fn mask_hex32(s: &str) -> String {
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == 32 {
            out.push_str("<hex32>");
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
