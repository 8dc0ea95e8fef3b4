//! What a user of the web UI does that a daemon must handle, staged on the
//! fake built as HEAD 1cc46b2697: runtime requests (model list, local
//! skills, skill imports, updates) handed out by heartbeats and answered on
//! the result routes, and reruns. In process and over `/_mock/`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use common::{world_with, World};
use multica_api::{
    DaemonApiExt, HeartbeatRequest, LocalSkillsResult, ModelListResult, RuntimeModel, RuntimeRequestId,
    SkillImportResult, TaskCompletion, TaskFailure, UpdateResult,
};
use multica_mock::{serve, MockDaemon, Rerun, RuntimeRequest, ServerVersion};

const PAT: &str = "mul_actions000000000000000000000000000000000";

async fn head_world() -> World {
    world_with(MockDaemon::builder().server_version(ServerVersion::Head).token(PAT).build().unwrap()).await
}

fn batch_heartbeat(world: &World) -> HeartbeatRequest {
    let mut request = HeartbeatRequest::new(world.runtime_id.clone());
    request.supports_batch_import = true;
    request
}

fn completed_models() -> ModelListResult {
    let mut result = ModelListResult { status: "completed".into(), ..ModelListResult::default() };
    result.models = vec![RuntimeModel { id: "sonnet".into(), label: "Sonnet".into(), ..RuntimeModel::default() }];
    result
}

#[tokio::test]
async fn a_model_list_request_is_handed_out_once_and_answered_once() {
    let world = head_world().await;
    let runtime = &world.runtime_id;
    let asked = world.mock.request_runtime(&RuntimeRequest::model_list(runtime.clone())).unwrap();
    assert_eq!(asked.id.as_str().len(), 32);
    assert!(asked.id.as_str().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(world.mock.runtime_requests()[0].status, "pending");

    let beat = world.mock.send_heartbeat(runtime).await.unwrap();
    assert_eq!(beat.pending_model_list.unwrap().id, asked.id);
    assert_eq!(world.mock.runtime_requests()[0].status, "running");
    assert!(world.mock.send_heartbeat(runtime).await.unwrap().pending_model_list.is_none(), "handed out once");

    world.mock.report_model_list(runtime, &asked.id, &completed_models()).await.unwrap();
    let state = &world.mock.runtime_requests()[0];
    assert_eq!(state.status, "completed");
    assert_eq!(state.result.as_ref().unwrap()["models"][0]["id"], "sonnet");
    // A late report of a finished request is acknowledged and changes nothing.
    let late = ModelListResult { status: "failed".into(), ..ModelListResult::default() };
    world.mock.report_model_list(runtime, &asked.id, &late).await.unwrap();
    assert_eq!(world.mock.runtime_requests()[0].status, "completed");

    // Unknown IDs, and IDs of another kind of request, are not found.
    let unknown = world.mock.report_model_list(runtime, &RuntimeRequestId::new("nope"), &late).await.unwrap_err();
    assert_eq!((unknown.status(), unknown.server_message().as_deref()), (Some(404), Some("request not found")));
    let update = UpdateResult { status: "completed".into(), ..UpdateResult::default() };
    let other_kind = world.mock.report_update_result(runtime, &asked.id, &update).await.unwrap_err();
    assert_eq!(other_kind.server_message().as_deref(), Some("update not found"));
}

#[tokio::test]
async fn requests_nobody_picks_up_or_answers_time_out_as_the_server_does() {
    let world = head_world().await;
    let runtime = &world.runtime_id;
    let stale = world.mock.request_runtime(&RuntimeRequest::model_list(runtime.clone())).unwrap();
    world.mock.advance_clock(Duration::from_secs(31));
    assert!(world.mock.send_heartbeat(runtime).await.unwrap().pending_model_list.is_none(), "expired after 30 s");
    let state = world.mock.runtime_requests().into_iter().find(|r| r.request.id == stale.id).unwrap();
    assert_eq!((state.status.as_str(), state.error.as_str()), ("timeout", "daemon did not respond within 30 seconds"));
    // A report of a timed-out request is acknowledged without being read.
    world.mock.report_model_list(runtime, &stale.id, &completed_models()).await.unwrap();

    let update = world.mock.request_runtime(&RuntimeRequest::update(runtime.clone(), "v9.9.9")).unwrap();
    let refused = world.mock.request_runtime(&RuntimeRequest::update(runtime.clone(), "v9.9.10")).unwrap_err();
    assert_eq!(refused.status(), Some(409), "one update at a time");
    let beat = world.mock.send_heartbeat(runtime).await.unwrap();
    assert_eq!(beat.pending_update.unwrap().target_version, "v9.9.9");
    let running = UpdateResult { status: "running".into(), ..UpdateResult::default() };
    world.mock.report_update_result(runtime, &update.id, &running).await.unwrap();
    world.mock.advance_clock(Duration::from_secs(151));
    let state = world.mock.runtime_requests().into_iter().find(|r| r.request.id == update.id).unwrap();
    assert_eq!(
        (state.status.as_str(), state.error.as_str()),
        ("timeout", "update did not complete within 150 seconds")
    );
}

#[tokio::test]
async fn imports_come_one_at_a_time_or_in_batches_of_ten() {
    let world = head_world().await;
    let runtime = &world.runtime_id;
    let ids: Vec<RuntimeRequestId> = (0..12)
        .map(|n| {
            world
                .mock
                .request_runtime(&RuntimeRequest::skill_import(runtime.clone(), format!("claude:s{n}")))
                .unwrap()
                .id
        })
        .collect();
    let one = world.mock.send_heartbeat(runtime).await.unwrap();
    assert_eq!(one.pending_local_skill_import.unwrap().id, ids[0]);
    assert!(one.pending_local_skill_imports.is_empty());
    let batch = world.mock.send_heartbeat_with(&batch_heartbeat(&world)).await.unwrap();
    let handed: Vec<RuntimeRequestId> = batch.pending_local_skill_imports.iter().map(|i| i.id.clone()).collect();
    assert_eq!(handed, ids[1..11].to_vec(), "up to 10, oldest first");
    assert_eq!(batch.pending_local_skill_import.unwrap().id, ids[1], "the first repeated in the singular field");

    // `completed` without a skill fails the import.
    let empty = SkillImportResult { status: "completed".into(), ..SkillImportResult::default() };
    world.mock.report_skill_import(runtime, &ids[0], &empty).await.unwrap();
    let state = world.mock.runtime_requests().into_iter().find(|r| r.request.id == ids[0]).unwrap();
    assert_eq!((state.status.as_str(), state.error.as_str()), ("failed", "daemon returned an empty skill bundle"));

    let skills = LocalSkillsResult { status: "completed".into(), ..LocalSkillsResult::default() };
    let skills_request = world.mock.request_runtime(&RuntimeRequest::local_skills(runtime.clone())).unwrap();
    assert_eq!(world.mock.send_heartbeat(runtime).await.unwrap().pending_local_skills.unwrap().id, skills_request.id);
    world.mock.report_local_skills(runtime, &skills_request.id, &skills).await.unwrap();
}

#[tokio::test]
async fn a_rerun_resumes_from_the_task_it_reruns() {
    let world = head_world().await;
    let runtime = &world.runtime_id;
    let first = world.enqueue("issue-rerun", 2);
    world.mock.send_heartbeat(runtime).await.unwrap();
    world.mock.claim_task(runtime).await.unwrap().unwrap();
    world.mock.start_task(&first).await.unwrap();
    let mut done = TaskCompletion::with_output("done");
    done.session_id = "sess-1".into();
    done.work_dir = "/Users/dev/multica_workspaces/ws/t1/workdir".into();
    world.mock.complete_task(&first, &done).await.unwrap();

    let rerun = world.mock.rerun(&Rerun::of(first.clone())).unwrap();
    let claimed = world.mock.claim_task(runtime).await.unwrap().unwrap();
    assert_eq!(claimed.record.id, rerun);
    assert_eq!(claimed.record.priority, 2, "the source's priority");
    assert_eq!(claimed.prior_session_id, "sess-1");
    assert_eq!(claimed.prior_work_dir, done.work_dir);
    assert_eq!(claimed.record.attribution.unwrap().rerun_of_task_id, Some(first.clone()));

    // A rerun of a task whose failure poisoned its session offers only the work dir.
    world.mock.start_task(&rerun).await.unwrap();
    let mut poisoned = TaskFailure::new("API Error: 400 invalid_request_error: messages too long");
    poisoned.session_id = "sess-2".into();
    poisoned.work_dir = "/tmp/w2".into();
    world.mock.fail_task_with(&rerun, &poisoned).await.unwrap();
    let again = world.mock.rerun(&Rerun::of(rerun.clone())).unwrap();
    let claimed = world.mock.claim_task(runtime).await.unwrap().unwrap();
    assert_eq!(claimed.record.id, again);
    assert_eq!((claimed.prior_session_id.as_str(), claimed.prior_work_dir.as_str()), ("", "/tmp/w2"));
}

/// The control routes as a test in another language uses them.
#[tokio::test]
async fn over_http_control_routes_stage_runtime_requests_and_reruns() {
    let world = head_world().await;
    let server = serve(world.mock.clone()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |method: &str, path: String, body: Value| {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", server.base_url()))
            .header("authorization", format!("Bearer {PAT}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
        }
    };
    let runtime = world.runtime_id.to_string();
    let id = "0123456789abcdef0123456789abcdef";
    let (status, created) =
        send("POST", "/_mock/runtime-requests".into(), json!({"id": id, "runtime_id": runtime, "kind": "model_list"}))
            .await;
    assert_eq!((status, &created), (201, &json!({"id": id, "runtime_id": runtime, "kind": "model_list"})));
    let (status, refused) =
        send("POST", "/_mock/runtime-requests".into(), json!({"runtime_id": runtime, "kind": "update"})).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("target_version is required")));

    let (_, beat) = send("POST", "/api/daemon/heartbeat".into(), json!({"runtime_id": runtime})).await;
    assert_eq!(beat, json!({"status": "ok", "pending_model_list": {"id": id}}));
    // A finished request's result route does not read the body.
    let result = format!("/api/daemon/runtimes/{runtime}/models/{id}/result");
    assert_eq!(send("POST", result.clone(), json!({"status": "completed"})).await.0, 200);
    let (status, late) = send("POST", result, json!([])).await;
    assert_eq!((status, late), (200, json!({"status": "ok"})));
    let (_, listed) = send("GET", "/_mock/runtime-requests".into(), Value::Null).await;
    assert_eq!(listed[0]["status"], "completed");

    let first = world.enqueue("issue-http", 3);
    let (status, rerun) = send(
        "POST",
        "/_mock/tasks".into(),
        json!({"id": "01a22829-0308-7ab4-b512-b47969e68b0d", "rerun_of_task_id": first}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rerun["attribution"]["rerun_of_task_id"], json!(first));
    assert_eq!((rerun["priority"].as_i64(), rerun["issue_id"].as_str()), (Some(3), Some("issue-http")));
    server.shutdown().await;
}

#[tokio::test]
async fn a_rerun_replaces_the_pending_runs_of_its_issue_and_agent() {
    let world = head_world().await;
    let first = world.enqueue("issue-again", 1);
    let waiting = world.enqueue("issue-again", 1);
    let other = world.enqueue("issue-other", 1);
    let rerun = world.mock.rerun(&Rerun::of(first.clone())).unwrap();
    use multica_api::TaskStatus::{Cancelled, Queued};
    assert_eq!(world.mock.task_status(&first), Some(Cancelled), "the source itself was still queued");
    assert_eq!(world.mock.task_status(&waiting), Some(Cancelled));
    assert_eq!(world.mock.task_status(&other), Some(Queued), "another issue's run stays");
    assert_eq!(world.mock.task_status(&rerun), Some(Queued));

    // Over the control route a rerun may not move to another issue.
    let server = serve(world.mock.clone()).await.unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = json!({"rerun_of_task_id": first, "issue_id": "issue-other"});
    let request = Request::builder()
        .method("POST")
        .uri(format!("{}/_mock/tasks", server.base_url()))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("source task does not belong to this issue"));
    server.shutdown().await;
}

#[test]
fn the_3c93ebaf1c_fake_has_no_runtime_requests() {
    let mock = MockDaemon::new();
    let err = mock.request_runtime(&RuntimeRequest::model_list("r")).unwrap_err();
    assert_eq!(err.status(), Some(400));
}
