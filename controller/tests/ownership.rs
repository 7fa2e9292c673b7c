//! Stacks are isolated (issue 11): a network or volume of the stack's name that the controller
//! did not make for this stack is never used, the service says why (`Stalled`, naming it), and a
//! volume can be adopted on purpose. Against the fake engine; e2e/tests/ownership.rs does the
//! same on the real one, with leases between real controller processes.

mod fixtures;

use std::collections::BTreeMap;

use fixtures::{Harness, STACK, TestService, TestStack};
use meme_api::status::ConditionType;
use meme_controller::docker::fake::{Call, FakeNetwork};
use meme_controller::docker::{NetworkSpec, VolumeSpec};

fn compose_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("com.docker.compose.project".to_owned(), STACK.to_owned()),
        ("com.docker.compose.volume".to_owned(), name.to_owned()),
    ])
}

// See: #11 (item 2)
#[tokio::test]
async fn issue_11_a_volume_of_the_stacks_name_made_by_someone_else_should_be_mounted_only_when_adopted() {
    let h = Harness::start();
    let name = format!("{STACK}_db");
    h.fake.with_state(|s| {
        s.volumes.insert(name.clone(), VolumeSpec { name: name.clone(), labels: compose_labels("db"), adopt: false })
    });
    h.apply(&TestStack::new().with_volume("db").with_service(TestService::new("web").volume("db"))).await;
    h.wait_until("web is Stalled on the volume", |h| h.reason("web").as_deref() == Some("ForeignObject")).await;
    let stalled = h.service("web").unwrap().conditions.into_iter().find(|c| c.kind == ConditionType::Stalled).unwrap();
    assert!(stalled.holds());
    assert!(
        stalled.message.contains(&format!("volume {name} exists but was not created for stack {STACK}")),
        "{}",
        stalled.message
    );
    assert!(stalled.message.contains("docker compose project s"), "{}", stalled.message);
    assert!(stalled.message.contains("adopt: true"), "{}", stalled.message);
    assert!(!h.events("ForeignObject").is_empty());
    assert_eq!(h.fake.count(Call::Create), 0, "nothing was created\n{}", h.dump());

    // Adopted on purpose, in git: mounted as it is (its labels stay compose's).
    h.apply(&TestStack::new().with_adopted_volume("db").with_service(TestService::new("web").volume("db"))).await;
    h.wait_synced("web").await;
    let web = h.running("web");
    assert_eq!(web.len(), 1);
    let spec = h.fake.container(&web[0].id).unwrap().spec;
    assert_eq!(spec.volumes[0].volume, name);
    assert_eq!(h.fake.with_state(|s| s.volumes[&name].labels.clone()), compose_labels("db"));
    h.stop().await;
}

// See: #11 (item 2)
#[tokio::test]
async fn issue_11_a_network_of_the_stacks_name_made_by_someone_else_should_never_be_joined() {
    let h = Harness::start();
    let name = format!("{STACK}_default");
    let foreign = NetworkSpec { name: name.clone(), internal: false, labels: BTreeMap::new() };
    h.fake.with_state(|s| s.networks.insert(name.clone(), FakeNetwork { spec: foreign, endpoints: BTreeMap::new() }));
    h.apply(&TestStack::new().with_service(TestService::new("web"))).await;
    h.wait_until("web is Stalled on the network", |h| h.reason("web").as_deref() == Some("ForeignObject")).await;
    let message =
        h.service("web").unwrap().conditions.into_iter().find(|c| c.kind == ConditionType::Stalled).unwrap().message;
    assert!(message.contains(&format!("network {name} exists but was not created for stack {STACK}")), "{message}");
    assert!(message.contains("no labels") && message.contains("nothing to adopt"), "{message}");
    h.wait_resyncs(3).await;
    assert_eq!(h.fake.count(Call::Create), 0, "nothing was created\n{}", h.dump());
    h.stop().await;
}
