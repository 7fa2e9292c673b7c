//! Secrets: a `secretKeyRef` reaches the container from the host's secrets folder, a rotation
//! rolls the service, a missing secret fails only that service, and the value is never logged,
//! labelled or served by the API.

use std::time::Duration;

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, docker, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn with_secret(name: &str, secret: &str) -> String {
    Service::new(name, "meme-demo:v1").yaml().replace(
        "  env:\n",
        &format!("  env:\n    - name: API_TOKEN\n      valueFrom: {{secretKeyRef: {{name: {secret}, key: token}}}}\n"),
    )
}

#[test]
fn secrets_should_reach_containers_roll_on_rotation_and_never_leak() {
    let mut env = TestEnv::new(&[
        ("stack.yaml", STACK),
        ("web.yaml", &with_secret("web", "app")),
        ("other.yaml", &with_secret("other", "missing")),
        ("plain.yaml", &Service::new("plain", "meme-demo:v1").yaml()),
    ]);
    env.write_secret("app", "token", "first-s3cret-value\n");
    env.start();
    let web = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    env.wait_running("plain", 1, "meme-demo:v1", CONVERGE);
    let ip = web[0].ip().unwrap();
    assert_eq!(http_get(&format!("{ip}:8080"), "/env/API_TOKEN").unwrap().1, "first-s3cret-value\n");

    // The service whose secret file is missing fails alone, and says which file.
    env.wait_event("SecretMissing", "secret missing/token: cannot read", Duration::from_secs(20));
    assert!(env.containers(Some("other")).is_empty());

    // Rotation: a new value rolls the service.
    env.write_secret("app", "token", "second-s3cret-value\n");
    let rolled = wait_for("the rotation to roll web", CONVERGE, || {
        let list = env.containers(Some("web"));
        (list.len() == 1 && list[0].id != web[0].id && list[0].state == "running").then_some(list)
    });
    let ip = rolled[0].ip().unwrap();
    wait_for("the new value", Duration::from_secs(20), || {
        (http_get(&format!("{ip}:8080"), "/env/API_TOKEN")?.1 == "second-s3cret-value\n").then_some(())
    });

    // Never in logs, labels, the status or the events.
    let logs = env.logs();
    let status = env.api_get("/api/v1/status").unwrap().1;
    let events = env.api_get("/api/v1/events").unwrap().1;
    let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", &rolled[0].id]);
    for (what, text) in [("logs", &logs), ("status", &status), ("events", &events), ("labels", &labels)] {
        assert!(!text.contains("s3cret-value"), "the secret leaked into the {what}");
    }
}
