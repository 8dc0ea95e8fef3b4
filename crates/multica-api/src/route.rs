//! The route table: every call's method and path template, in one place.
//!
//! Clients build paths from it and servers (the fake) match paths against
//! it, so the two cannot drift apart.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::Error;

/// Characters escaped in a path segment: everything but RFC 3986's
/// unreserved set, so `/`, `?`, `#`, `%`, spaces and non-ASCII cannot change
/// the request's shape.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The HTTP method of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`; a JSON body is always sent.
    Post,
}

impl Method {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! endpoints {
    ($( $(#[$meta:meta])* $variant:ident => $method:ident $template:literal, )+) => {
        /// One route of the daemon API: names a call in logs, fault
        /// injection and retry policies.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Endpoint {
            $( $(#[$meta])* $variant, )+
        }

        impl Endpoint {
            /// Every route, in the order of the specification.
            pub const ALL: &'static [Endpoint] = &[$(Endpoint::$variant,)+];

            /// The route's HTTP method.
            pub fn method(self) -> Method {
                match self {
                    $( Self::$variant => Method::$method, )+
                }
            }

            /// The path template, with `{name}` for each ID segment. Safe to
            /// log: it holds no IDs.
            pub fn template(self) -> &'static str {
                match self {
                    $( Self::$variant => $template, )+
                }
            }

            /// The route's name (the `snake_case` trait method name).
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => stringify!($variant), )+
                }
            }
        }
    };
}

endpoints! {
    /// `POST /api/daemon/register`.
    Register => Post "/api/daemon/register",
    /// `POST /api/daemon/deregister`.
    Deregister => Post "/api/daemon/deregister",
    /// `POST /api/daemon/heartbeat`.
    SendHeartbeat => Post "/api/daemon/heartbeat",
    /// `POST /api/daemon/runtimes/{runtimeId}/tasks/claim`.
    ClaimTask => Post "/api/daemon/runtimes/{runtimeId}/tasks/claim",
    /// `GET /api/daemon/runtimes/{runtimeId}/tasks/pending`.
    ListPendingTasks => Get "/api/daemon/runtimes/{runtimeId}/tasks/pending",
    /// `POST /api/daemon/runtimes/{runtimeId}/usage`.
    ReportUsage => Post "/api/daemon/runtimes/{runtimeId}/usage",
    /// `POST /api/daemon/runtimes/{runtimeId}/ping/{pingId}/result`.
    ReportPingResult => Post "/api/daemon/runtimes/{runtimeId}/ping/{pingId}/result",
    /// `GET /api/daemon/tasks/{taskId}/status`.
    GetTaskStatus => Get "/api/daemon/tasks/{taskId}/status",
    /// `POST /api/daemon/tasks/{taskId}/start`.
    StartTask => Post "/api/daemon/tasks/{taskId}/start",
    /// `POST /api/daemon/tasks/{taskId}/progress`.
    ReportProgress => Post "/api/daemon/tasks/{taskId}/progress",
    /// `POST /api/daemon/tasks/{taskId}/complete`.
    CompleteTask => Post "/api/daemon/tasks/{taskId}/complete",
    /// `POST /api/daemon/tasks/{taskId}/fail`.
    FailTask => Post "/api/daemon/tasks/{taskId}/fail",
    /// `POST /api/daemon/tasks/{taskId}/messages`.
    ReportTaskMessages => Post "/api/daemon/tasks/{taskId}/messages",
    /// `GET /api/daemon/tasks/{taskId}/messages`.
    ListTaskMessages => Get "/api/daemon/tasks/{taskId}/messages",
    /// `GET /api/workspaces` (needs a bearer token).
    ListWorkspaces => Get "/api/workspaces",
    /// `POST /api/daemon/pairing-sessions` (answers 201).
    CreatePairingSession => Post "/api/daemon/pairing-sessions",
    /// `GET /api/daemon/pairing-sessions/{token}`.
    GetPairingSession => Get "/api/daemon/pairing-sessions/{token}",
    /// `POST /api/daemon/pairing-sessions/{token}/claim`.
    ClaimPairingSession => Post "/api/daemon/pairing-sessions/{token}/claim",
    // Routes server HEAD 1cc46b2697 added; 3c93ebaf1c answers each with
    // `404 page not found`.
    /// `POST /api/daemon/tasks/claim`, the batch claim (HEAD 1cc46b2697).
    ClaimTasks => Post "/api/daemon/tasks/claim",
    /// `POST /api/daemon/runtimes/{runtimeId}/tasks/{taskId}/prepare-lease` (HEAD 1cc46b2697).
    ExtendPrepareLease => Post "/api/daemon/runtimes/{runtimeId}/tasks/{taskId}/prepare-lease",
    /// `POST /api/daemon/runtimes/{runtimeId}/tasks/{taskId}/skill-bundles/resolve` (HEAD 1cc46b2697).
    ResolveSkillBundles => Post "/api/daemon/runtimes/{runtimeId}/tasks/{taskId}/skill-bundles/resolve",
    /// `POST /api/daemon/runtimes/{runtimeId}/recover-orphans` (HEAD 1cc46b2697).
    RecoverOrphans => Post "/api/daemon/runtimes/{runtimeId}/recover-orphans",
    /// `POST /api/daemon/runtimes/{runtimeId}/models/{requestId}/result` (HEAD 1cc46b2697).
    ReportModelList => Post "/api/daemon/runtimes/{runtimeId}/models/{requestId}/result",
    /// `POST /api/daemon/runtimes/{runtimeId}/local-skills/{requestId}/result` (HEAD 1cc46b2697).
    ReportLocalSkills => Post "/api/daemon/runtimes/{runtimeId}/local-skills/{requestId}/result",
    /// `POST /api/daemon/runtimes/{runtimeId}/local-skills/import/{requestId}/result` (HEAD 1cc46b2697).
    ReportSkillImport => Post "/api/daemon/runtimes/{runtimeId}/local-skills/import/{requestId}/result",
    /// `POST /api/daemon/runtimes/{runtimeId}/update/{updateId}/result` (HEAD 1cc46b2697).
    ReportUpdateResult => Post "/api/daemon/runtimes/{runtimeId}/update/{updateId}/result",
    /// `POST /api/daemon/tasks/{taskId}/wait-local-directory` (HEAD 1cc46b2697).
    WaitLocalDirectory => Post "/api/daemon/tasks/{taskId}/wait-local-directory",
    /// `POST /api/daemon/tasks/{taskId}/usage` (HEAD 1cc46b2697; replaces the runtime route).
    ReportTaskUsage => Post "/api/daemon/tasks/{taskId}/usage",
    /// `POST /api/daemon/tasks/{taskId}/cancel-ack` (HEAD 1cc46b2697).
    AckCancel => Post "/api/daemon/tasks/{taskId}/cancel-ack",
    /// `POST /api/daemon/tasks/{taskId}/session` (HEAD 1cc46b2697; answers 204 without a body).
    PinSession => Post "/api/daemon/tasks/{taskId}/session",
    /// `GET /api/daemon/tasks/{taskId}/gc-check` (HEAD 1cc46b2697).
    GetTaskGcCheck => Get "/api/daemon/tasks/{taskId}/gc-check",
    /// `GET /api/daemon/issues/{issueId}/gc-check` (HEAD 1cc46b2697).
    GetIssueGcCheck => Get "/api/daemon/issues/{issueId}/gc-check",
    /// `GET /api/daemon/chat-sessions/{sessionId}/gc-check` (HEAD 1cc46b2697).
    GetChatSessionGcCheck => Get "/api/daemon/chat-sessions/{sessionId}/gc-check",
    /// `GET /api/daemon/autopilot-runs/{runId}/gc-check` (HEAD 1cc46b2697).
    GetAutopilotRunGcCheck => Get "/api/daemon/autopilot-runs/{runId}/gc-check",
    /// `POST /api/daemon/workspaces/{workspaceId}/issues/gc-check` (HEAD 1cc46b2697).
    CheckIssuesGc => Post "/api/daemon/workspaces/{workspaceId}/issues/gc-check",
    /// `GET /api/daemon/workspaces` (HEAD 1cc46b2697; any credential, a daemon token too).
    ListDaemonWorkspaces => Get "/api/daemon/workspaces",
    /// `GET /api/daemon/workspaces/{workspaceId}/repos` (HEAD 1cc46b2697).
    GetWorkspaceRepos => Get "/api/daemon/workspaces/{workspaceId}/repos",
    /// `GET /api/daemon/workspaces/{workspaceId}/runtime-profiles` (HEAD 1cc46b2697).
    ListRuntimeProfiles => Get "/api/daemon/workspaces/{workspaceId}/runtime-profiles",
}

/// Why a method and path match no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteMismatch {
    /// No route has this path (404).
    NotFound,
    /// A route has this path, but not with this method (405).
    MethodNotAllowed,
}

impl Endpoint {
    /// The status a success answers with: 201 for creating a pairing
    /// session, 204 (no body) for pinning a session, 200 otherwise.
    pub fn success_status(self) -> u16 {
        match self {
            Self::CreatePairingSession => 201,
            Self::PinSession => 204,
            _ => 200,
        }
    }

    /// The number of ID segments in the path.
    pub fn param_count(self) -> usize {
        self.template().matches('{').count()
    }

    /// Fills the template with `params`, each percent-encoded as exactly one
    /// segment. An empty or missing parameter is an
    /// [`Error::InvalidArgument`]: nothing is sent.
    ///
    /// ```
    /// # mod multica { pub use multica_api::*; }
    /// use multica::Endpoint;
    /// let path = Endpoint::StartTask.path(&["a/../b?x"]).unwrap();
    /// assert_eq!(path, "/api/daemon/tasks/a%2F..%2Fb%3Fx/start");
    /// ```
    pub fn path(self, params: &[&str]) -> Result<String, Error> {
        let template = self.template();
        let mut path = String::with_capacity(template.len() + params.iter().map(|p| p.len() * 3).sum::<usize>());
        let given = params.len();
        let mut rest = template;
        let mut params = params.iter();
        // Every `{` opens a parameter that its `}` closes: the templates are
        // this file's literals, checked by the tests below.
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}').unwrap_or(rest.len() - open);
            path.push_str(&rest[..open]);
            let value = match params.next() {
                Some(value) => *value,
                None => return Err(self.wrong_param_count(given)),
            };
            if value.is_empty() {
                let name = rest.get(open + 1..close).unwrap_or_default();
                return Err(Error::InvalidArgument(format!("{} needs a non-empty {name}", self.name())));
            }
            push_encoded_segment(&mut path, value);
            rest = rest.get(close + 1..).unwrap_or_default();
        }
        if params.next().is_some() {
            return Err(self.wrong_param_count(given));
        }
        path.push_str(rest);
        Ok(path)
    }

    fn wrong_param_count(self, given: usize) -> Error {
        let (name, wanted) = (self.name(), self.param_count());
        Error::InvalidArgument(format!("{name} takes {wanted} path parameters, got {given}"))
    }

    /// Matches a request path (without query) against this route's template,
    /// returning the decoded parameters. As the server's router (chi), an
    /// empty parameter matches inside the path (`/tasks//status` is the
    /// status route with an empty ID) but not at its end.
    pub fn match_path(self, path: &str) -> Option<Vec<String>> {
        let mut params = Vec::new();
        let mut template = self.template().split('/').peekable();
        let mut given = path.split('/');
        loop {
            match (template.next(), given.next()) {
                (None, None) => return Some(params),
                (Some(want), Some(got)) if want.starts_with('{') => {
                    if got.is_empty() && template.peek().is_none() {
                        return None;
                    }
                    params.push(percent_decode_str(got).decode_utf8().ok()?.into_owned());
                }
                (Some(want), Some(got)) if want == got => {}
                _ => return None,
            }
        }
    }

    /// Finds the route for a method and path, as a router does: a known
    /// path with another method is [`RouteMismatch::MethodNotAllowed`].
    pub fn recognize(method: &str, path: &str) -> Result<(Endpoint, Vec<String>), RouteMismatch> {
        let mut path_matched = false;
        for endpoint in Self::ALL {
            if let Some(params) = endpoint.match_path(path) {
                if endpoint.method().as_str() == method {
                    return Ok((*endpoint, params));
                }
                path_matched = true;
            }
        }
        Err(if path_matched { RouteMismatch::MethodNotAllowed } else { RouteMismatch::NotFound })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Appends `value` as one percent-encoded path segment. The dot segments
/// `.` and `..` are escaped too, as URL normalisers would collapse them.
fn push_encoded_segment(path: &mut String, value: &str) {
    if value.bytes().all(|b| b == b'.') && value.len() <= 2 {
        path.extend(std::iter::repeat_n("%2E", value.len()));
    } else {
        // Borrowed, copied once, when nothing needs escaping (a UUID).
        path.push_str(&Cow::from(utf8_percent_encode(value, SEGMENT)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_starts_with_api_and_round_trips() {
        for endpoint in Endpoint::ALL {
            assert!(endpoint.template().starts_with("/api/"), "{endpoint}");
            let params: Vec<String> = (0..endpoint.param_count()).map(|i| format!("id {i}/é?#")).collect();
            let refs: Vec<&str> = params.iter().map(String::as_str).collect();
            let path = endpoint.path(&refs).expect("valid params");
            assert_eq!(endpoint.match_path(&path), Some(params.clone()), "{endpoint}");
            assert_eq!(Endpoint::recognize(endpoint.method().as_str(), &path), Ok((*endpoint, params)), "{endpoint}");
        }
    }

    #[test]
    fn ids_stay_one_segment() {
        let cases = [
            ("a/../b", "a%2F..%2Fb"),
            ("x?y", "x%3Fy"),
            ("x#y", "x%23y"),
            ("a b", "a%20b"),
            ("100%", "100%25"),
            ("é", "%C3%A9"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("...", "..."),
            ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000"),
        ];
        for (id, encoded) in cases {
            assert_eq!(
                Endpoint::GetTaskStatus.path(&[id]).expect("valid"),
                format!("/api/daemon/tasks/{encoded}/status")
            );
            let path = Endpoint::GetTaskStatus.path(&[id]).expect("valid");
            assert_eq!(Endpoint::GetTaskStatus.match_path(&path), Some(vec![id.to_owned()]));
        }
    }

    #[test]
    fn empty_or_missing_ids_are_invalid_arguments() {
        assert!(matches!(Endpoint::StartTask.path(&[""]), Err(Error::InvalidArgument(_))));
        assert!(matches!(Endpoint::StartTask.path(&[]), Err(Error::InvalidArgument(_))));
        assert!(matches!(Endpoint::Register.path(&["x"]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn recognize_distinguishes_404_and_405() {
        assert_eq!(Endpoint::recognize("GET", "/api/daemon/nope"), Err(RouteMismatch::NotFound));
        assert_eq!(Endpoint::recognize("GET", "/api/daemon/register"), Err(RouteMismatch::MethodNotAllowed));
        assert_eq!(Endpoint::recognize("DELETE", "/api/daemon/tasks/t/messages"), Err(RouteMismatch::MethodNotAllowed));
        assert_eq!(
            Endpoint::recognize("GET", "/api/daemon/tasks/t/messages"),
            Ok((Endpoint::ListTaskMessages, vec!["t".to_owned()]))
        );
        // An empty ID inside the path is routed (chi does), at the end it is not.
        assert_eq!(
            Endpoint::recognize("POST", "/api/daemon/tasks//start"),
            Ok((Endpoint::StartTask, vec![String::new()]))
        );
        assert_eq!(Endpoint::recognize("GET", "/api/daemon/pairing-sessions/"), Err(RouteMismatch::NotFound));
        assert_eq!(Endpoint::recognize("POST", "/api/daemon/tasks/%FF/start"), Err(RouteMismatch::NotFound));
    }

    #[test]
    fn pairing_create_answers_201_and_session_pin_204() {
        assert_eq!(Endpoint::CreatePairingSession.success_status(), 201);
        assert_eq!(Endpoint::PinSession.success_status(), 204);
        assert_eq!(Endpoint::Register.success_status(), 200);
    }
}
