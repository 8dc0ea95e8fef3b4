//! Control routes under `/_mock/`: how an outside test (any language) seeds,
//! drives and inspects the fake. Documented in the crate docs.

use std::time::Duration;

use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use multica_api::{Call, Endpoint, Error, IssueId, RouteMismatch, TaskId, TransportKind, WorkspaceId};

use crate::log::Transport;
use crate::seed::{AgentSeed, RuntimeProfileSeed, RuntimeSeed, Seed, TaskSeed, WorkspaceSeed};
use crate::server::{error_response, json_response, method_not_allowed, not_found, HttpResponse};
use crate::{MockDaemon, MockToken, Rerun, RuntimeRequest};

/// A control request that cannot be carried out: status and message.
struct Refusal(u16, String);

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        let message = match error {
            Error::InvalidArgument(message) => message,
            other => other.to_string(),
        };
        Refusal(400, message)
    }
}

/// Answers one control request; `path` is what follows `/_mock/`.
pub(crate) fn handle(mock: &MockDaemon, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    let segments: Option<Vec<String>> =
        path.split('/').map(|s| percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned())).collect();
    let Some(segments) = segments else {
        return not_found();
    };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = match route(method, &segments) {
        Ok(route) => route,
        Err(RouteMismatch::NotFound) => return not_found(),
        Err(RouteMismatch::MethodNotAllowed) => return method_not_allowed(),
    };
    let status = if matches!(route, Route::CreateRuntimeRequest) { 201 } else { 200 };
    match run(mock, route, &segments, body) {
        Ok(value) => match serde_json::to_vec(&value) {
            Ok(bytes) => json_response(status, bytes),
            Err(_) => error_response(500, "internal error"),
        },
        Err(Refusal(status, message)) => error_response(status, &message),
    }
}

#[derive(Clone, Copy)]
enum Route {
    Seed,
    Workspaces,
    Agents,
    Runtimes,
    Tasks,
    CancelTask,
    IssueStatus,
    CreatePing,
    ApprovePairing,
    AdvanceClock,
    ArmFault,
    ClearFaults,
    Calls,
    ClearCalls,
    State,
    Tokens,
    RemoveRuntime,
    RemoveWorkspace,
    RemoveRuntimeProfile,
    CreateRuntimeRequest,
    RuntimeRequests,
    RuntimeProfiles,
}

/// The route of a method and path (the segments after `/_mock/`).
fn route(method: &str, segments: &[&str]) -> Result<Route, RouteMismatch> {
    let by_method: &[(&str, Route)] = match segments {
        ["seed"] => &[("POST", Route::Seed)],
        ["workspaces"] => &[("POST", Route::Workspaces)],
        ["workspaces", id] if !id.is_empty() => &[("DELETE", Route::RemoveWorkspace)],
        ["agents"] => &[("POST", Route::Agents)],
        ["runtimes"] => &[("POST", Route::Runtimes)],
        ["runtimes", id] if !id.is_empty() => &[("DELETE", Route::RemoveRuntime)],
        ["runtime-profiles", id] if !id.is_empty() => &[("DELETE", Route::RemoveRuntimeProfile)],
        ["tasks"] => &[("POST", Route::Tasks)],
        ["tasks", id, "cancel"] if !id.is_empty() => &[("POST", Route::CancelTask)],
        ["issues", id] if !id.is_empty() => &[("POST", Route::IssueStatus)],
        ["runtimes", id, "pings"] if !id.is_empty() => &[("POST", Route::CreatePing)],
        ["pairing-sessions", token, "approve"] if !token.is_empty() => &[("POST", Route::ApprovePairing)],
        ["clock", "advance"] => &[("POST", Route::AdvanceClock)],
        ["faults"] => &[("POST", Route::ArmFault), ("DELETE", Route::ClearFaults)],
        ["calls"] => &[("GET", Route::Calls), ("DELETE", Route::ClearCalls)],
        ["state"] => &[("GET", Route::State)],
        ["tokens"] => &[("POST", Route::Tokens)],
        ["runtime-requests"] => &[("POST", Route::CreateRuntimeRequest), ("GET", Route::RuntimeRequests)],
        ["runtime-profiles"] => &[("POST", Route::RuntimeProfiles)],
        _ => return Err(RouteMismatch::NotFound),
    };
    by_method
        .iter()
        .find(|(allowed, _)| *allowed == method)
        .map(|(_, route)| *route)
        .ok_or(RouteMismatch::MethodNotAllowed)
}

fn run(mock: &MockDaemon, route: Route, segments: &[&str], body: &[u8]) -> Result<Value, Refusal> {
    let param = segments.get(1).copied().unwrap_or_default();
    Ok(match route {
        Route::Seed => {
            mock.seed(&parse::<Seed>(body)?)?;
            ok()
        }
        Route::Workspaces => json!({ "id": mock.add_workspace(parse::<WorkspaceSeed>(body)?)? }),
        Route::Agents => json!({ "id": mock.add_agent(parse::<AgentSeed>(body)?)? }),
        Route::Runtimes => json!({ "id": mock.add_runtime(parse::<RuntimeSeed>(body)?)? }),
        Route::Tasks => {
            let task = parse::<TaskEnqueue>(body)?;
            let seed = TaskSeed {
                id: task.id.clone(),
                runtime_id: task.runtime_id,
                agent_id: task.agent_id,
                issue_id: task.issue_id,
                priority: task.priority.unwrap_or_default(),
            };
            let id = match task.rerun_of_task_id {
                Some(source) => {
                    let mut rerun = Rerun::of(source);
                    rerun.id = task.id;
                    rerun.priority = task.priority;
                    mock.lock().rerun_task(&rerun, Some(&seed))?
                }
                None => mock.add_task(seed)?,
            };
            to_value(mock.task(&id))?
        }
        Route::CreateRuntimeRequest => {
            let request = parse::<RuntimeRequest>(body)?;
            let stored =
                mock.lock().enqueue_runtime_request(&request).map_err(|r| Refusal(r.status, r.message.into()))?;
            to_value(stored)?
        }
        Route::RuntimeRequests => to_value(mock.runtime_requests())?,
        Route::RuntimeProfiles => mock.add_runtime_profile(&parse::<RuntimeProfileSeed>(body)?)?,
        Route::CancelTask => to_value(mock.cancel(&TaskId::new(param))?)?,
        Route::CreatePing => json!({ "id": mock.request_ping(&param.into())? }),
        Route::IssueStatus => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct IssueStatus {
                status: String,
            }
            let issue = parse::<IssueStatus>(body)?;
            let issue_id = IssueId::new(param);
            mock.set_issue_status(&issue_id, &issue.status)?;
            json!({ "id": issue_id, "status": mock.issue_status(&issue_id) })
        }
        Route::ApprovePairing => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Approve {
                workspace_id: WorkspaceId,
            }
            let approve = parse::<Approve>(body)?;
            to_value(mock.approve_pairing(param, &approve.workspace_id)?)?
        }
        Route::AdvanceClock => {
            #[derive(Deserialize, Default)]
            #[serde(default, deny_unknown_fields)]
            struct Advance {
                seconds: u64,
                millis: u64,
            }
            let advance = parse::<Advance>(body)?;
            // Saturating: `+` on Durations panics on overflow, and the clock saturates anyway.
            mock.advance_clock(
                Duration::from_secs(advance.seconds).saturating_add(Duration::from_millis(advance.millis)),
            );
            json!({ "now": mock.snapshot().now })
        }
        Route::ArmFault => {
            arm_fault(mock, parse::<FaultSpec>(body)?)?;
            ok()
        }
        Route::ClearFaults => {
            mock.clear_faults();
            ok()
        }
        Route::Calls => Value::Array(mock.calls_with_transport().iter().map(|(c, t)| call_json(c, *t)).collect()),
        Route::ClearCalls => {
            mock.clear_calls();
            ok()
        }
        Route::State => to_value(mock.snapshot())?,
        Route::Tokens => {
            mock.add_token(&parse::<MockToken>(body)?)?;
            ok()
        }
        Route::RemoveRuntime => {
            mock.remove_runtime(&param.into())?;
            ok()
        }
        Route::RemoveWorkspace => {
            mock.remove_workspace(&param.into())?;
            ok()
        }
        Route::RemoveRuntimeProfile => {
            mock.remove_runtime_profile(param)?;
            ok()
        }
    })
}

/// `POST /_mock/tasks`: a seed task, or with `rerun_of_task_id` a rerun of
/// that task (its runtime, agent, issue and priority unless given).
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct TaskEnqueue {
    id: Option<TaskId>,
    runtime_id: multica_api::RuntimeId,
    agent_id: multica_api::AgentId,
    issue_id: IssueId,
    priority: Option<i64>,
    rerun_of_task_id: Option<TaskId>,
}

/// A fault to arm: `{"endpoint":"claim_task","count":2,"status":503,"message":"busy"}`,
/// `{"endpoint":"claim_task","delay_ms":500}`, or `"close_connection":true`
/// to drop the connection without an answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    endpoint: String,
    #[serde(default = "one")]
    count: u32,
    status: Option<u16>,
    #[serde(default)]
    message: String,
    delay_ms: Option<u64>,
    #[serde(default)]
    close_connection: bool,
}

fn one() -> u32 {
    1
}

fn arm_fault(mock: &MockDaemon, spec: FaultSpec) -> Result<(), Refusal> {
    match spec.endpoint.as_str() {
        "ws_upgrade" => {
            let status = spec.status.ok_or_else(|| Refusal(400, "ws_upgrade needs a status".into()))?;
            if !(400..=599).contains(&status) {
                return Err(Refusal(400, format!("invalid status {status}")));
            }
            mock.refuse_channel_upgrades(spec.count, status, &spec.message);
            return Ok(());
        }
        "ws_claim" => {
            if spec.delay_ms.is_none() && !spec.close_connection {
                return Err(Refusal(400, "ws_claim needs delay_ms or close_connection".into()));
            }
            if let Some(delay) = spec.delay_ms {
                mock.delay_channel_claims(spec.count, Duration::from_millis(delay));
            }
            if spec.close_connection {
                mock.drop_channel_after_claims(spec.count);
            }
            return Ok(());
        }
        _ => {}
    }
    let endpoint =
        endpoint_named(&spec.endpoint).ok_or_else(|| Refusal(400, format!("unknown endpoint {:?}", spec.endpoint)))?;
    if spec.status.is_none() && spec.delay_ms.is_none() && !spec.close_connection {
        return Err(Refusal(400, "a fault needs status, delay_ms or close_connection".into()));
    }
    if let Some(status) = spec.status {
        if !(100..=599).contains(&status) {
            return Err(Refusal(400, format!("invalid status {status}")));
        }
        mock.fail_next_with_status(endpoint, spec.count, status, &spec.message);
    } else if spec.close_connection {
        let source = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed by the mock");
        let error = Error::Transport {
            method: endpoint.method(),
            path: endpoint.template().to_owned(),
            kind: TransportKind::Request,
            source: std::sync::Arc::new(source),
        };
        mock.fail_next(endpoint, spec.count, error);
    }
    if let Some(delay) = spec.delay_ms {
        mock.delay_next(endpoint, spec.count, Duration::from_millis(delay));
    }
    Ok(())
}

/// `claim_task`, `ClaimTask` and `claimtask` all name [`Endpoint::ClaimTask`].
fn endpoint_named(name: &str) -> Option<Endpoint> {
    let wanted: String = name.chars().filter(|c| *c != '_').collect::<String>().to_ascii_lowercase();
    Endpoint::ALL.iter().copied().find(|e| e.name().to_ascii_lowercase() == wanted)
}

/// A logged call as the request a client sends: route, method, path and
/// JSON body (`null` for GET).
fn call_json(call: &Call, transport: Transport) -> Value {
    let endpoint = call.endpoint();
    match call.to_wire() {
        Ok(wire) => json!({
            "endpoint": endpoint.name(),
            "method": endpoint.method().as_str(),
            "path": wire.path,
            "body": wire.body.and_then(|b| serde_json::from_slice::<Value>(&b).ok()),
            "transport": transport.as_str(),
        }),
        Err(_) => json!({
            "endpoint": endpoint.name(),
            "method": endpoint.method().as_str(),
            "path": endpoint.template(),
            "body": null,
            "transport": transport.as_str(),
        }),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|err| Refusal(400, format!("invalid request body: {err}")))
}

fn to_value(value: impl Serialize) -> Result<Value, Refusal> {
    serde_json::to_value(value).map_err(|err| Refusal(500, err.to_string()))
}

fn ok() -> Value {
    json!({ "status": "ok" })
}
