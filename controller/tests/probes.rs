//! The periodic readiness probe of a settled service, against the fake engine whose containers
//! answer the controller's `tcpSocket` probe on a loopback listener: while every verdict holds
//! the probe lists nothing (at 200 services probed every second the full reconcile made 200
//! list calls a second, `meme-bench scale`), and a container that stops answering is still
//! found at its next probe and taken out of rotation.
//!
//! `cargo test -p meme-controller --features fake-engine --test probes`

mod fixtures;

use std::time::Duration;

use fixtures::{Harness, TestService, TestStack};
use meme_api::status::Phase;
use meme_controller::docker::fake::Call;

#[tokio::test]
async fn a_settled_service_should_be_probed_without_listing_its_containers() {
    // A std listener never accepts: the kernel completes the connects into its backlog, which
    // is all a tcpSocket probe asks.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = Harness::builder().resync(Duration::from_secs(3600)).start();
    h.fake.with_state(|s| s.fixed_address = Some("127.0.0.1".to_owned()));
    h.apply(&TestStack::new().with_service(TestService::new("web").tcp_health(port))).await;
    h.wait_synced("web").await;
    let probes = |h: &Harness| h.reconciles_of("web").iter().filter(|t| *t == "probe").count();
    h.wait_until("web is probed once settled", |h| probes(h) >= 1).await;

    h.fake.clear_calls();
    let before = probes(&h);
    h.wait_until("five more probes (200 ms apart)", |h| probes(h) >= before + 5).await;
    assert_eq!(h.calls(Call::List).len(), 0, "a settled service's probe lists nothing: {:?}", h.fake.calls());
    assert_eq!(h.phase("web"), Some(Phase::Synced));
    assert_eq!(h.service("web").map(|s| s.ready_replicas), Some(1));

    // It stops answering: the next probe fails (retries: 1), and the full reconcile that follows
    // lists, records the verdict and takes it out of rotation (a rejoin without the alias).
    drop(listener);
    h.fake.clear_calls();
    h.wait_until("web is no longer ready", |h| h.service("web").is_some_and(|s| s.ready_replicas == 0)).await;
    assert!(!h.calls(Call::List).is_empty(), "a changed verdict is reconciled in full");
    h.wait_until("web leaves rotation", |h| !h.calls(Call::Rejoin).is_empty()).await;
    h.stop().await;
}
