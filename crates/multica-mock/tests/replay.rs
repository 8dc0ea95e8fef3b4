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

/// A login JWT of a user: the fake has no users, so no value can work.
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZXBsYXkifQ.c3RhbmQtaW4tc2lnbmF0dXJl";

/// Steps the fake cannot match by design, with the reason. Nothing else may differ.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("A8", "sends a login JWT of a user of the real server; the fake has no users, only its one token"),
    ("H9", "approves through the user route with a login JWT; the fake has no users (H10 approves via /_mock/)"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_answers_as_the_real_server_3c93ebaf1c() {
    let transcript = Transcript::load(&format!("{FIXTURES}/transcript-public.json"));
    let seed = Seed::from_json(&std::fs::read_to_string(format!("{FIXTURES}/seed.json")).unwrap()).unwrap();
    let mock = MockDaemon::builder().token(PAT).seed(seed).build().unwrap();
    let server = serve(mock).await.unwrap();

    let report = Replayer::new(server.base_url(), &[("<PAT>", PAT), ("<JWT>", JWT)]).run(&transcript).await;
    server.shutdown().await;

    println!("{}", report.table());
    println!("fake matches real: {} of {}", report.matched(), report.results.len());
    println!("{}", report.mismatches());
    assert_eq!(report.results.len(), 188, "every recorded step replayed");
    let unexpected: Vec<String> =
        report.unexpected_mismatches(EXCEPTIONS).iter().map(|r| format!("#{} {}", r.seq, r.name)).collect();
    assert!(unexpected.is_empty(), "steps where the fake differs from the real server: {unexpected:#?}");
}
