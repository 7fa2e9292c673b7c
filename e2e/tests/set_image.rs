//! `memectl set image` as the CI step it is meant to be: a clone of the shared repository (the
//! CI runner's checkout) sets the image, commits and pushes; the real controller, following that
//! remote, rolls the service on the real engine; `memectl wait --for synced --revision <id>`
//! with the id `set image` printed returns 0. No SSH to the host: git is the only channel.

use std::process::{Command, Output};
use std::time::Duration;

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, binary, http_get, wait_for};

fn memectl(env: &TestEnv, dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(binary("memectl"))
        .current_dir(dir)
        .args(args)
        .env("MEMECTL_SERVER", env.url())
        .env("NO_COLOR", "1")
        .env("GIT_AUTHOR_NAME", "ci")
        .env("GIT_AUTHOR_EMAIL", "ci@example.invalid")
        .env("GIT_COMMITTER_NAME", "ci")
        .env("GIT_COMMITTER_EMAIL", "ci@example.invalid")
        .output()
        .expect("memectl (hack/e2e.sh builds it)")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn set_image_commit_push_should_roll_the_service_and_wait_should_see_that_revision_synced() {
    // A comment and a flow mapping in the file: they must survive the edit byte for byte.
    let web = Service::new("web", "meme-demo:v1")
        .yaml()
        .replace("  image: meme-demo:v1\n", "  image: meme-demo:v1   # set by CI: memectl set image\n");
    let api = Service::new("api", "meme-demo:v1").yaml();
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web), ("api.yaml", &api)]);
    let origin = env.make_origin();
    env.with_args(&["--remote", "origin", "--poll", "1s"]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", Duration::from_secs(60));
    let api_before = env.wait_running("api", 1, "meme-demo:v1", Duration::from_secs(60));
    let ci = env.clone_of(&origin, "ci");

    // Refusals first: an unknown service and an invalid reference change nothing (exit 1).
    let out = memectl(&env, &ci, &["set", "image", "nope=meme-demo:v2", "--path", "manifests", "--commit"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no Deployment named nope"), "{}", text(&out));
    let out = memectl(&env, &ci, &["set", "image", "web=Meme-Demo:v2", "--path", "manifests", "--commit"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let head = env.git_in(&ci, &["rev-parse", "HEAD"]);

    let out = memectl(
        &env,
        &ci,
        &["set", "image", "web=meme-demo:v2", "--path", "manifests", "--commit", "--push", "--message", "deploy v2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(rev.len(), 40, "stdout is the commit id alone: {:?}", text(&out));
    assert_ne!(rev, head.trim());
    assert_eq!(env.git_in(&origin, &["rev-parse", "main"]).trim(), rev, "pushed to origin");
    let message = env.git_in(&ci, &["log", "-1", "--format=%B", &rev]);
    assert_eq!(message.trim(), "deploy v2\n\nweb: meme-demo:v1 -> meme-demo:v2");
    let diff = env.git_in(&ci, &["diff", "--unified=0", &format!("{rev}^"), &rev]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(
        changed,
        [
            "-  image: meme-demo:v1   # set by CI: memectl set image",
            "+  image: meme-demo:v2   # set by CI: memectl set image"
        ]
    );

    let out = memectl(&env, &ci, &["wait", "--for", "synced", "--revision", &rev, "--timeout", "90s"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.logs_tail());
    let rolled = env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(10));
    assert_eq!(rolled[0].label("pro.memeit.revision"), rev);
    let ip = rolled[0].ip().expect("container address");
    wait_for("web to serve v2", Duration::from_secs(10), || {
        (http_get(&format!("{ip}:8080"), "/version")?.1.trim() == "v2").then_some(())
    });
    assert_eq!(env.containers(Some("api"))[0].id, api_before[0].id, "api was not touched");

    // Running it again changes nothing and prints the same revision.
    let out = memectl(&env, &ci, &["set", "image", "web=meme-demo:v2", "--path", "manifests", "--commit", "--push"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), rev);
}
