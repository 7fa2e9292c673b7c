//! Secrets: a `secretKeyRef` reaches the container from the host's secrets folder, a rotation
//! rolls the service, a missing secret fails only that service, and the value is never logged,
//! labelled or served — at debug and trace level too (bollard logs request bodies with the
//! env), when the engine's start error quotes it, and when a failed rollout's log tail prints it.

use std::process::Command;
use std::time::Duration;

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, binary, docker, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// Every secret value of this test contains this; no output may.
const MARK: &str = "s3cret";

fn with_secret(name: &str, var: &str, secret: &str) -> String {
    Service::new(name, "meme-demo:v1").yaml().replace(
        "  env:\n",
        &format!("  env:\n    - name: {var}\n      valueFrom: {{secretKeyRef: {{name: {secret}, key: token}}}}\n"),
    )
}

fn memectl(env: &TestEnv, args: &[&str]) -> String {
    let out = Command::new(binary("memectl"))
        .current_dir(env.repo())
        .args(args)
        .env("MEMECTL_SERVER", env.url())
        .env("NO_COLOR", "1")
        .output()
        .expect("memectl (hack/e2e.sh builds it)");
    assert!(out.status.success(), "memectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn secrets_should_reach_containers_roll_on_rotation_and_never_leak() {
    let mut env = TestEnv::new(&[
        ("stack.yaml", STACK),
        ("web.yaml", &with_secret("web", "API_TOKEN", "app")),
        ("other.yaml", &with_secret("other", "API_TOKEN", "missing")),
        ("plain.yaml", &Service::new("plain", "meme-demo:v1").yaml()),
        // The engine refuses to start a container whose env holds a NUL byte, and its error
        // quotes the whole `NAME=value` pair (Go's %q: `"API_TOKEN=nul-prefix\x00nul-s3cret..."`).
        ("nul.yaml", &with_secret("nul", "API_TOKEN", "nul")),
        // Runs as v1, then a commit makes it read PORT from a secret: the test server prints
        // `PORT="crash-s3cret..." is not a port number` and exits, and the rollout fails.
        ("crash.yaml", &Service::new("crash", "meme-demo:v1").spec("  progressDeadline: 6s\n").yaml()),
    ]);
    env.write_secret("app", "token", "first-s3cret-value\n");
    env.write_secret("nul", "token", "nul-prefix\0nul-s3cret-value\n");
    env.write_secret("crash", "token", "crash-s3cret-value-99\n");
    // Every level, the HTTP client and the engine client included.
    env.with_env("RUST_LOG", "debug,bollard=trace,hyper=trace,hyper_util=trace");
    env.start();
    let web = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    env.wait_running("plain", 1, "meme-demo:v1", CONVERGE);
    env.wait_running("crash", 1, "meme-demo:v1", CONVERGE);
    let ip = web[0].ip().unwrap();
    assert_eq!(http_get(&format!("{ip}:8080"), "/env/API_TOKEN").unwrap().1, "first-s3cret-value\n");

    // The service whose secret file is missing fails alone, and says which file.
    env.wait_event("SecretMissing", "secret missing/token: cannot read", Duration::from_secs(20));
    assert!(env.containers(Some("other")).is_empty());

    // The start error happened, and reached the events redacted.
    wait_for("the NUL start error", Duration::from_secs(30), || {
        let events = env.api_get("/api/v1/events")?.1;
        (events.contains("can't contain null") && events.contains("<redacted>")).then_some(())
    });

    // A failed rollout whose container prints the secret: its log tail goes into the event.
    let crash = Service::new("crash", "meme-demo:v1")
        .spec("  progressDeadline: 6s\n")
        .yaml()
        .replace("  env:\n", "  env:\n    - name: PORT\n      valueFrom: {secretKeyRef: {name: crash, key: token}}\n");
    env.write_files(&[("crash.yaml", &crash)]);
    env.commit("crash: PORT from a secret");
    wait_for("the failed rollout with its log tail", CONVERGE, || {
        let events = env.api_get("/api/v1/events")?.1;
        (events.contains("RolloutFailed") && events.contains(r#"PORT=\"<redacted>\" is not a port number"#))
            .then_some(())
    });

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

    // Never in logs, labels, the status, the events or what memectl prints.
    let logs = env.logs();
    let status = env.api_get("/api/v1/status").unwrap().1;
    let events = env.api_get("/api/v1/events").unwrap().1;
    let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", &rolled[0].id]);
    let describe_nul = memectl(&env, &["describe", "service", "nul"]);
    let describe_crash = memectl(&env, &["describe", "service", "crash"]);
    let get_events = memectl(&env, &["get", "events", "-o", "json"]);
    let get_services = memectl(&env, &["get", "services", "-o", "yaml"]);
    eprintln!("controller log: {} lines, {} bytes", logs.lines().count(), logs.len());
    assert!(logs.contains("TRACE") && logs.contains("DEBUG"), "the controller logged at trace and debug");
    assert!(describe_nul.contains("can't contain null") && describe_nul.contains("<redacted>"), "{describe_nul}");
    for (what, text) in [
        ("logs", &logs),
        ("status", &status),
        ("events", &events),
        ("labels", &labels),
        ("memectl describe service nul", &describe_nul),
        ("memectl describe service crash", &describe_crash),
        ("memectl get events -o json", &get_events),
        ("memectl get services -o yaml", &get_services),
    ] {
        let hits = text.matches(MARK).count();
        let first = text.find(MARK).and_then(|i| text.get(i.saturating_sub(200)..(i + 100).min(text.len())));
        assert_eq!(hits, 0, "the secret leaked into the {what}: {first:?}");
    }
}
