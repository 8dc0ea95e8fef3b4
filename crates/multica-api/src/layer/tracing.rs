//! The `Tracing` layer: one span per call.

use tokio::time::Instant;
use tracing::field::{display, Empty};
use tracing::Instrument;

use super::impl_layer;
use crate::error::{Error, Result};
use crate::route::Endpoint;
use crate::{Call, DaemonApi, Reply};

/// Runs every call inside an INFO span named `daemon_api.call` with the
/// fields:
///
/// - `endpoint`: the route's name (`claim_task`);
/// - `http.method` and `http.route`: the route's method and template
///   (`/api/daemon/tasks/{taskId}/start`), never a path with IDs, as IDs and
///   pairing tokens can be secrets;
/// - `latency_ms`: how long the call took;
/// - on failure, `status` (the HTTP status, when the error has one) and
///   `error` (the error's text, its path replaced by the route template).
///
/// The layer never sees the bearer token. Put it outermost for one span per
/// call, or inside a [`Retry`](super::Retry) for one span per attempt. With
/// `tracing_subscriber::fmt`, enable span-close events to see the fields.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::layer::Tracing;
/// use multica::{DaemonApi, DaemonApiExt};
///
/// fn traced<A: DaemonApi>(backend: A) -> Tracing<A> {
///     backend.with_tracing()
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Tracing<A> {
    inner: A,
}

impl<A> Tracing<A> {
    /// Wraps `inner`.
    pub fn new(inner: A) -> Self {
        Self { inner }
    }
}

impl<A: DaemonApi> Tracing<A> {
    async fn around(&self, call: Call) -> Result<Reply> {
        let endpoint = call.endpoint();
        let span = tracing::info_span!(
            "daemon_api.call",
            endpoint = endpoint.name(),
            http.method = endpoint.method().as_str(),
            http.route = endpoint.template(),
            status = Empty,
            latency_ms = Empty,
            error = Empty,
        );
        let started = Instant::now();
        let result = self.inner.call(call).instrument(span.clone()).await;
        span.record("latency_ms", u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
        if let Err(err) = &result {
            if let Some(status) = err.status() {
                span.record("status", status);
            }
            span.record("error", display(redacted(err, endpoint)));
        }
        result
    }
}

impl_layer!(Tracing);

/// The error's text and its causes' with its request path (which holds the
/// call's IDs) replaced by the route's template.
fn redacted(err: &Error, endpoint: Endpoint) -> String {
    let text = err.display_chain().to_string();
    match err.path() {
        Some(path) if !path.is_empty() => text.replace(path, endpoint.template()),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::*;
    use crate::layer::test_support::{call_endpoint, SECRET_ID};
    use crate::test_double::{Outcome, ScriptedApi};
    use crate::{DaemonApiExt, Method};

    type Fields = BTreeMap<String, String>;

    /// Records every span's name and fields, and every event's fields.
    #[derive(Clone, Debug, Default)]
    struct Capture {
        spans: Arc<Mutex<Vec<(u64, Fields)>>>,
        events: Arc<Mutex<Vec<Fields>>>,
    }

    struct Visitor<'a>(&'a mut Fields);

    impl Visit for Visitor<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
            let mut fields = Fields::from([("name".to_owned(), attrs.metadata().name().to_owned())]);
            attrs.record(&mut Visitor(&mut fields));
            self.spans.lock().unwrap().push((id.into_u64(), fields));
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
            let mut spans = self.spans.lock().unwrap();
            if let Some((_, fields)) = spans.iter_mut().rev().find(|(span, _)| *span == id.into_u64()) {
                values.record(&mut Visitor(fields));
            }
        }
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            self.events.lock().unwrap().push(fields);
        }
    }

    impl Capture {
        fn install(&self) -> tracing::subscriber::DefaultGuard {
            tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
        }
        fn spans(&self) -> Vec<Fields> {
            self.spans.lock().unwrap().iter().map(|(_, fields)| fields.clone()).collect()
        }
        fn everything(&self) -> String {
            format!("{:?}{:?}", self.spans(), self.events.lock().unwrap())
        }
    }

    fn fields(list: &[(&str, &str)]) -> Fields {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn every_call_gets_one_span_with_its_route_and_latency() {
        let capture = Capture::default();
        let _guard = capture.install();
        let backend = ScriptedApi::new();
        backend.script(Endpoint::ClaimTask, [Outcome::Delay(Duration::from_millis(250))]);
        let api = backend.with_tracing();

        for &endpoint in Endpoint::ALL {
            call_endpoint(&api, endpoint).await.unwrap();
        }

        let spans = capture.spans();
        assert_eq!(spans.len(), Endpoint::ALL.len());
        for (span, endpoint) in spans.iter().zip(Endpoint::ALL) {
            let latency = if *endpoint == Endpoint::ClaimTask { "250" } else { "0" };
            let expected = fields(&[
                ("name", "daemon_api.call"),
                ("endpoint", endpoint.name()),
                ("http.method", endpoint.method().as_str()),
                ("http.route", endpoint.template()),
                ("latency_ms", latency),
            ]);
            assert_eq!(*span, expected, "{endpoint}");
        }
        assert!(!capture.everything().contains(SECRET_ID));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_recorded_with_status_and_without_ids() {
        let capture = Capture::default();
        let _guard = capture.install();
        let backend = ScriptedApi::new();
        let path = format!("/api/daemon/tasks/{SECRET_ID}/fail");
        let refused = Error::from_server_message(Method::Post, path, 400, "task is not running");
        backend.script(Endpoint::FailTask, [Outcome::Fail(refused), Outcome::Delay(Duration::from_secs(5))]);
        let api = backend.with_timeout(Duration::from_secs(1)).with_tracing();

        let err = call_endpoint(&api, Endpoint::FailTask).await.unwrap_err();
        assert!(err.to_string().contains(SECRET_ID), "the caller's error is unchanged");
        assert!(call_endpoint(&api, Endpoint::FailTask).await.unwrap_err().is_timeout());

        let spans = capture.spans();
        let refused = &spans[0];
        assert_eq!(refused["status"], "400");
        assert_eq!(
            refused["error"],
            r#"POST /api/daemon/tasks/{taskId}/fail returned 400: {"error":"task is not running"}"#
        );
        let timed_out = &spans[1];
        assert_eq!(timed_out.get("status"), None);
        assert_eq!(timed_out["latency_ms"], "1000");
        assert_eq!(timed_out["error"], "POST /api/daemon/tasks/{taskId}/fail: timed out after 1s");
        assert!(!capture.everything().contains(SECRET_ID));
    }

    #[test]
    fn redaction_leaves_errors_without_a_path_alone() {
        let err = Error::InvalidArgument("start_task needs a non-empty taskId".into());
        assert_eq!(redacted(&err, Endpoint::StartTask), err.to_string());
    }
}
