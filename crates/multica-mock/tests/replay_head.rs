//! The fake against today's server (HEAD 1cc46b2697): every recorded request
//! of `tests/fixtures/real-server-head-1cc46b2697/` is replayed, in order,
//! against the fake's HTTP server built with `ServerVersion::Head` and the
//! recording's seed, and each answer is compared with the real server's by
//! the same rules as the 3c93ebaf1c replay (every HEAD answer also carries
//! `Content-Security-Policy`, compared like any other header).
#![allow(clippy::unwrap_used)]

mod transcript;

use multica_mock::{serve, MockDaemon, MockToken, Seed, ServerVersion};
use transcript::{Replayer, Transcript};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real-server-head-1cc46b2697");

/// The fake's token (`--token`), sent where the transcript says `<PAT>`.
const PAT: &str = "mul_replay0000000000000000000000000000000000";
/// A personal token of a user who is a member of no workspace (`<PAT2>`).
const PAT2: &str = "mul_replay0000000000000000000000000000000002";
/// A daemon token of workspace WS and daemon `diff-daemon` (`<MDT>`).
const MDT: &str = "mdt_replay0000000000000000000000000000000000";
/// The same, already expired (`<MDT_EXPIRED>`).
const MDT_EXPIRED: &str = "mdt_replay00000000000000000000000000000000ff";
/// Workspace WS of the recording, the one `<MDT>` is bound to.
const WS: &str = "68a99d5e-608c-4875-b5c4-3231b02e2b12";
/// The recording's user (`USER` in its names): the owner of `<PAT>`, who
/// assigned the seeded tasks (`attribution`) and is called `tester`.
const USER: &str = "ba434649-be0e-4ed6-aadb-a3b483626499";

/// A login JWT of a user: the fake has no users, so no value can work.
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZXBsYXkifQ.c3RhbmQtaW4tc2lnbmF0dXJl";

/// Steps the fake cannot match by design, with the reason. Nothing else may differ.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("A11", "sends a login JWT signed with the real server's secret; the fake cannot verify its signature"),
    ("B21", "registers with a login JWT signed with the real server's secret; the fake cannot verify its signature"),
];

/// Replays the whole transcript against a fresh fake; `login` chooses what
/// is sent where the transcript says `<JWT>`: a stand-in JWT the fake cannot
/// verify (the recording's own, signed with the real server's secret, is
/// not in the fixture), or a login JWT the fake issues for the seed's user.
async fn replay(login: Login) -> transcript::Report {
    let transcript = Transcript::load(&format!("{FIXTURES}/transcript-public.json"));
    let seed = Seed::from_json(&std::fs::read_to_string(format!("{FIXTURES}/seed.json")).unwrap()).unwrap();
    assert_eq!(seed.user.as_ref().map(|u| u.id.as_str()), Some(USER), "the seed names the recording's user");
    let mock = MockDaemon::builder().server_version(ServerVersion::Head).token(PAT).seed(seed).build().unwrap();
    mock.add_token(&MockToken::member_of(PAT2, [])).unwrap();
    mock.add_token(&MockToken::daemon(MDT, WS.into(), "diff-daemon".into())).unwrap();
    let expired = MockToken::Daemon {
        token: MDT_EXPIRED.to_owned(),
        workspace_id: WS.into(),
        daemon_id: "diff-daemon".into(),
        expires_at: Some("2000-01-01T00:00:00Z".to_owned()),
    };
    mock.add_token(&expired).unwrap();
    let jwt = match login {
        Login::Recorded => JWT.to_owned(),
        Login::IssuedByTheFake => mock.login_jwt(USER),
    };
    let server = serve(mock).await.unwrap();
    let placeholders =
        [("<PAT2>", PAT2), ("<PAT>", PAT), ("<MDT_EXPIRED>", MDT_EXPIRED), ("<MDT>", MDT), ("<JWT>", jwt.as_str())];
    let report = Replayer::new(server.base_url(), &placeholders).run(&transcript).await;
    server.shutdown().await;
    report
}

/// What stands for the recording's login JWT.
enum Login {
    Recorded,
    IssuedByTheFake,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_answers_as_the_real_server_head_1cc46b2697() {
    let report = replay(Login::Recorded).await;
    println!("{}", report.table());
    println!("fake matches real: {} of {}", report.matched(), report.results.len());
    println!("{}", report.mismatches());
    assert_eq!(report.results.len(), 189, "every recorded step replayed");
    assert_eq!(report.matched(), 189 - EXCEPTIONS.len(), "every step but the exceptions matches");
    let unexpected: Vec<String> =
        report.unexpected_mismatches(EXCEPTIONS).iter().map(|r| format!("#{} {}", r.seq, r.name)).collect();
    assert!(unexpected.is_empty(), "steps where the fake differs from the real server: {unexpected:#?}");
}

/// With a login JWT of the recording's user that the fake can verify (as
/// the real server verified the recorded one), the JWT steps match too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_login_jwt_it_can_verify_the_fake_matches_every_step() {
    let report = replay(Login::IssuedByTheFake).await;
    println!("{}", report.mismatches());
    assert_eq!(report.matched(), report.results.len(), "{}", report.mismatches());
}
