//! The shared conformance suite (multica-api, feature `conformance`) on the
//! fake in process, as server 3c93ebaf1c and as server HEAD; the facade's
//! tests run it over HTTP with the hyper client.

use multica_mock::{MockDaemon, ServerVersion};

#[tokio::test]
async fn the_fake_passes_the_conformance_suite() {
    let mock = MockDaemon::new();
    multica_api::conformance::run_all(&mock, &mock).await;
}

#[tokio::test]
async fn the_fake_with_auth_on_passes_the_conformance_suite() {
    let mock = MockDaemon::builder().token("secret").build().expect("no seed to refuse");
    multica_api::conformance::run_all(&mock, &mock).await;
}

#[tokio::test]
async fn the_head_fake_passes_the_conformance_suite_with_head_rules() {
    let mock = MockDaemon::builder()
        .server_version(ServerVersion::Head)
        .token("mul_conformance")
        .build()
        .expect("no seed to refuse");
    multica_api::conformance::run_all(&mock, &mock).await;
}
