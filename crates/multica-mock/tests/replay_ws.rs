//! The fake's daemon WebSocket channel against today's server (HEAD
//! 1cc46b2697): `tests/fixtures/real-server-head-1cc46b2697/ws-transcript-public.json`
//! replayed on its own schedule (about a minute: the server's ping comes at
//! 54 s and the unanswered connection ends at 60 s) against a served fake,
//! every step compared as the recording's README says.
#![allow(clippy::unwrap_used)]

mod ws_client;
mod ws_transcript;

use multica_mock::{serve, MockDaemon, Seed, ServerVersion, UserSeed};
use serde_json::json;
use ws_transcript::WsReplayer;

const FIXTURE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real-server-head-1cc46b2697/ws-transcript-public.json");

/// The fake's token (`--token`), sent where the recording says `<PAT>`.
const PAT: &str = "mul_wsreplay00000000000000000000000000000000";
/// A second user's personal token (`<PAT2>`), created by the recording's setup.
const PAT2: &str = "mul_wsreplay00000000000000000000000000000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_channel_answers_as_the_real_server_head_1cc46b2697() {
    // The recording's user, the owner of `<PAT>`, is called `tester`.
    let user = UserSeed { id: "0a11ce00-0000-4000-8000-000000000001".into(), name: "tester".into() };
    let seed = Seed { user: Some(user), ..Seed::default() };
    let mock = MockDaemon::builder().server_version(ServerVersion::Head).token(PAT).seed(seed).build().unwrap();
    let server = serve(mock).await.unwrap();
    // The public recording predates the control routes for runtime profiles:
    // its side actions name the user API only. These are the calls the
    // newer recording makes instead.
    let stand_ins = vec![
        (
            "create runtime profile PROFILE in WS",
            json!([{ "method": "POST", "path": "/_mock/runtime-profiles",
                     "json": { "workspace_id": "{WS}", "display_name": "ws probe profile",
                               "protocol_family": "claude", "command_name": "claude-probe" },
                     "capture": { "PROFILE": "id" } }]),
        ),
        (
            "delete runtime profile PROFILE",
            json!([{ "method": "DELETE", "path": "/_mock/runtime-profiles/{PROFILE}" }]),
        ),
    ];
    let mut replayer = WsReplayer::new(server.addr(), &[("<PAT2>", PAT2), ("<PAT>", PAT)], stand_ins);
    let report = replayer.run(FIXTURE).await;
    server.shutdown().await;
    println!("{}", report.table());
    println!("{}", report.push_latencies());
    println!("{}", report.mismatches());
    assert_eq!(report.results.len(), 38, "every public step replayed");
    for result in &report.results {
        for difference in &result.differences {
            let allowed = ISSUE_FIELDS.iter().any(|(step, field, _)| {
                *step == result.name && difference.split(':').nth(1).is_some_and(|path| path.ends_with(field))
            });
            assert!(allowed, "{}: the fake differs: {difference}", result.name);
        }
    }
    println!("fake matches real: {} of {} steps", report.matched(), report.results.len());
}

/// What the recording's fake calls cannot tell the fake: the task was
/// queued by `POST /api/issues` on the real server (an issue titled
/// `ws-probe task 1` with priority `medium`), while its fake call,
/// `POST /_mock/tasks`, names a made-up issue and priority 0. A claim object
/// may differ in these fields only.
const ISSUE_FIELDS: &[(&str, &str, &str)] = &[
    ("rpc_claim_task", ".tasks[0].thread_name", "the issue's title, given to the user API only"),
    ("rpc_claim_task", ".tasks[0].priority", "the issue's priority (medium = 2); the fake call says 0"),
];
