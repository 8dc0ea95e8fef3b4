//! The shared conformance suite (multica-api, feature `conformance`) on the
//! fake in process; the facade's tests run it over HTTP with the hyper client.

use multica_mock::MockDaemon;

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
