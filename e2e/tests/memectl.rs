//! memectl against a real controller: `wait` as the CI smoke step, `get -o json` round-tripping
//! through the shared types, `history` and `rollback` as a revert that the controller applies.

use std::process::{Command, Output};
use std::time::Duration;

use meme_api::status::ServiceStatus;
use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, binary, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn memectl(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(binary("memectl"))
        .current_dir(env.repo())
        .args(args)
        .env("MEMECTL_SERVER", env.url())
        .env("MEMECTL_TOKEN_FILE", env.token_file())
        .env("NO_COLOR", "1")
        .output()
        .expect("memectl (hack/e2e.sh builds it)")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn web(image: &str) -> String {
    Service::new("web", image).replicas(2).yaml()
}

#[test]
fn wait_should_succeed_on_convergence_and_fail_on_a_broken_rollout() {
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web("meme-demo:v1"))]);
    env.start();
    let out = memectl(&env, &["wait", "--for", "synced", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    env.write_files(&[("web.yaml", &web("meme-demo:v2"))]);
    let rev = env.commit("web: v2");
    let out = memectl(&env, &["wait", "--for", "synced", "--revision", &rev[..12], "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list = env.containers(Some("web"));
    assert!(list.iter().all(|c| c.image == "meme-demo:v2" && c.label("pro.memeit.revision") == rev), "{list:?}");
    let out = memectl(&env, &["wait", "--for", "ready", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // `get services -o json` is the status's services, through the shared types.
    let out = memectl(&env, &["get", "services", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let services: Vec<ServiceStatus> = serde_json::from_slice(&out.stdout).expect("a list of ServiceStatus");
    let api: meme_api::status::ControllerStatus =
        serde_json::from_str(&env.api_get("/api/v1/status").unwrap().1).unwrap();
    assert_eq!(
        services.iter().map(|s| &s.name).collect::<Vec<_>>(),
        api.services.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert_eq!(services[0].image, "meme-demo:v2");

    // `version` names both binaries' builds, the server's as the running controller says it.
    let controller = Command::new(binary("meme-controller")).arg("--version").output().unwrap();
    let controller = String::from_utf8(controller.stdout).unwrap();
    let controller = controller.trim().trim_start_matches("meme-controller ");
    let out = memectl(&env, &["version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).ends_with(&format!("\nServer Version: {controller}\n")), "{}", text(&out));

    // A rollout that cannot become healthy: wait exits 1 and says why.
    env.write_files(&[(
        "web.yaml",
        &Service::new("web", "meme-demo:v3")
            .replicas(2)
            .env("FAIL_HEALTH", "1")
            .spec("  progressDeadline: 3s\n")
            .yaml(),
    )]);
    let rev = env.commit("web: broken v3");
    let out = memectl(&env, &["wait", "--for", "synced", "--revision", &rev, "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Degraded"), "{}", text(&out));
    // And a short timeout is a failure too.
    let out = memectl(&env, &["wait", "--for", "synced", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn rollback_should_be_a_revert_the_controller_applies() {
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web("meme-demo:v1"))]);
    env.with_args(&["--resync", "10m"]);
    env.start();
    env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    env.write_files(&[("web.yaml", &web("meme-demo:v2"))]);
    let v2 = env.commit("web: v2");
    env.wait_running("web", 2, "meme-demo:v2", CONVERGE);
    wait_for("v2 applied", CONVERGE, || env.status().filter(|s| s["applied"]["revision"] == v2.as_str()).map(|_| ()));

    let out = memectl(&env, &["rollback", "--path", "manifests", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("meme-demo:v2 -> meme-demo:v1"), "prints what will change:\n{}", text(&out));
    env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    let head = env.git(&["log", "-1", "--format=%s"]);
    assert!(head.starts_with("Revert \"web: v2\""), "{head}");

    let out = memectl(&env, &["history", "--path", "manifests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let history = text(&out);
    assert!(history.contains("web: v2") && history.contains("Revert \"web: v2\""), "{history}");
    wait_for("the revert applied", CONVERGE, || {
        let out = memectl(&env, &["history", "--path", "manifests"]);
        let line = String::from_utf8_lossy(&out.stdout).lines().find(|l| l.contains("Revert")).map(str::to_owned)?;
        line.contains("applied").then_some(())
    });
    // Offline diff between the two revisions names the image change; exit 1 as kubectl diff.
    let out = memectl(&env, &["diff", "--path", "manifests", "--offline", &format!("{}..HEAD", &v2[..12])]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("meme-demo:v2 -> meme-demo:v1"), "{}", text(&out));
    // Online diff: what runs is what the tip asks for.
    let out = memectl(&env, &["diff", "--path", "manifests"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// The README's CI smoke step on the fix after a broken commit: `wait --revision <fix>` must
/// never fail with the verdict about the broken revision before it (the status once showed the
/// new tip beside the old error, or a service's old Degraded phase beside the new applied
/// revision). Ten break/fix rounds in a row, every third one a rollout that cannot become
/// healthy (Degraded) instead of an invalid manifest; each wait must exit 0.
// See: #9
#[test]
fn issue_9_wait_ignores_verdicts_of_older_revisions() {
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web("meme-demo:v1"))]);
    env.start();
    let out = memectl(&env, &["wait", "--for", "synced", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for round in 0..10 {
        let degraded = round % 3 == 2;
        let broken = if degraded {
            env.write_files(&[(
                "web.yaml",
                &Service::new("web", "meme-demo:v3")
                    .replicas(2)
                    .env("FAIL_HEALTH", "1")
                    .spec("  progressDeadline: 2s\n")
                    .yaml(),
            )]);
            env.commit(&format!("round {round}: a rollout that cannot become healthy"))
        } else {
            env.write_files(&[("web.yaml", &Service::new("web", "meme-demo:v1").spec("  imagee: typo\n").yaml())]);
            env.commit(&format!("round {round}: an invalid manifest"))
        };
        // The controller judges the broken revision: waiting for it fails, saying why.
        let out = memectl(&env, &["wait", "--for", "synced", "--revision", &broken, "--timeout", "60s"]);
        assert_eq!(out.status.code(), Some(1), "round {round}: {}", text(&out));
        let why = if degraded { "Degraded" } else { "will not be applied" };
        assert!(text(&out).contains(why), "round {round}: {}", text(&out));

        // The fix, and at once the smoke step on it.
        let image = if round % 2 == 0 { "meme-demo:v2" } else { "meme-demo:v1" };
        env.write_files(&[("web.yaml", &web(image))]);
        env.commit(&format!("round {round}: fix"));
        let head = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
        let out = memectl(&env, &["wait", "--for", "synced", "--revision", &head, "--timeout", "90s"]);
        assert_eq!(out.status.code(), Some(0), "round {round}: wait on the fix failed:\n{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(&format!("synced at {}", &head[..7])),
            "round {round}: {}",
            text(&out)
        );
        let list = env.containers(Some("web"));
        assert!(list.iter().all(|c| c.image == image && c.label("pro.memeit.revision") == head), "{list:?}");
    }
    // `--revision HEAD` is resolved in the repository, not read as a commit-id prefix.
    let out = memectl(&env, &["wait", "--for", "synced", "--revision", "HEAD", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
