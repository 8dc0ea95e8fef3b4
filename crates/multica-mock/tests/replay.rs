//! The fake against the real server 3c93ebaf1c: every recorded request of
//! `tests/fixtures/real-server-3c93ebaf1c/` is replayed, in order, against
//! the fake's HTTP server started with the recording's seed, and each answer
//! is compared with the real server's by the fixture README's rules.
#![allow(clippy::unwrap_used)]

mod transcript;

use multica_mock::{serve, MockDaemon, Seed};
use transcript::{Replayer, Transcript};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real-server-3c93ebaf1c");

/// The fake's token, sent where the transcript says `<PAT>`.
const PAT: &str = "mul_replay0000000000000000000000000000000000";

/// Stands for the recording's login JWT, which was signed with the real
/// server's secret and is not in the fixture: the fake cannot verify it.
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZXBsYXkifQ.c3RhbmQtaW4tc2lnbmF0dXJl";

/// Steps the fake cannot match by design, with the reason. Nothing else may differ.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("A8", "sends the recording's login JWT, signed with the real server's secret; the fake cannot verify it"),
    ("H9", "approves through the user route with the recording's login JWT (H10 approves via /_mock/)"),
];

/// The seed's user, whose login JWT the fake can issue.
const USER: &str = "00000000-0000-4000-a000-000000000001";

/// Replays the whole transcript against a fresh fake, sending `jwt` (or a
/// login JWT the fake issues for its user) where the transcript says `<JWT>`.
async fn replay(jwt: Option<&str>) -> transcript::Report {
    let transcript = Transcript::load(&format!("{FIXTURES}/transcript-public.json"));
    let seed = Seed::from_json(&std::fs::read_to_string(format!("{FIXTURES}/seed.json")).unwrap()).unwrap();
    let mock = MockDaemon::builder().token(PAT).seed(seed).build().unwrap();
    let jwt = jwt.map_or_else(|| mock.login_jwt(USER), str::to_owned);
    let server = serve(mock).await.unwrap();
    let report = Replayer::new(server.base_url(), &[("<PAT>", PAT), ("<JWT>", jwt.as_str())]).run(&transcript).await;
    server.shutdown().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_answers_as_the_real_server_3c93ebaf1c() {
    let report = replay(Some(JWT)).await;
    println!("{}", report.table());
    println!("fake matches real: {} of {}", report.matched(), report.results.len());
    println!("{}", report.mismatches());
    assert_eq!(report.results.len(), 188, "every recorded step replayed");
    assert_eq!(report.matched(), 188 - EXCEPTIONS.len(), "every step but the exceptions matches");
    let unexpected: Vec<String> =
        report.unexpected_mismatches(EXCEPTIONS).iter().map(|r| format!("#{} {}", r.seq, r.name)).collect();
    assert!(unexpected.is_empty(), "steps where the fake differs from the real server: {unexpected:#?}");
}

/// With a login JWT the fake can verify (as the real server verified the
/// recorded one), the JWT steps match too. (H11's setup then approves an
/// approved session: it stands in for H9, which has then approved already.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_login_jwt_it_can_verify_the_jwt_steps_match() {
    let report = replay(None).await;
    for (short, _) in EXCEPTIONS {
        let result = report.results.iter().find(|r| r.short() == *short).unwrap();
        assert!(result.matches(), "{short}: {:#?}", result.differences);
    }
}
