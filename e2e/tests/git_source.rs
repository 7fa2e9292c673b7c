//! The git source end to end: commits and pushes into the checkout are seen at once (the
//! resync is set to minutes), a remote is fetched and followed (poll, webhook, force-push), and
//! a broken commit is reported with its file and line while nothing changes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use meme_api::status::ControllerStatus;
use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn new_env(image: &str) -> TestEnv {
    let web = Service::new("web", image).yaml();
    TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web)])
}

fn web_yaml(image: &str) -> String {
    Service::new("web", image).yaml()
}

fn status(env: &TestEnv) -> ControllerStatus {
    serde_json::from_str(&env.api_get("/api/v1/status").expect("status").1).expect("status JSON")
}

fn write_in(dir: &Path, rel: &str, content: &str, env: &TestEnv) {
    let path = dir.join("manifests").join(rel);
    std::fs::write(path, content.replace("{stack}", &env.stack).replace("{id}", &env.id)).unwrap();
}

#[test]
fn commit_should_apply_long_before_the_resync() {
    let mut env = new_env("meme-demo:v1");
    env.with_args(&["--resync", "10m"]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    for (image, message) in [("meme-demo:v2", "v2"), ("meme-demo:v3", "v3")] {
        env.write_files(&[("web.yaml", &web_yaml(image))]);
        let started = Instant::now();
        env.commit(message);
        env.wait_running("web", 1, image, Duration::from_secs(30));
        eprintln!("commit -> {image} running in {:?}", started.elapsed());
    }
}

#[test]
fn push_from_another_clone_into_the_checkout_should_apply() {
    let mut env = new_env("meme-demo:v1");
    env.git(&["config", "receive.denyCurrentBranch", "updateInstead"]);
    env.with_args(&["--resync", "10m"]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let laptop = env.clone_of(&env.repo(), "laptop");
    write_in(&laptop, "web.yaml", &web_yaml("meme-demo:v2"), &env);
    env.git_in(&laptop, &["commit", "-qam", "web: v2 from the laptop"]);
    env.git_in(&laptop, &["push", "-q", "origin", "main"]);
    env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(30));
    let s = status(&env);
    assert_eq!(s.applied.map(|a| a.subject), Some("web: v2 from the laptop".to_owned()));
}

#[test]
fn broken_commit_should_be_reported_with_file_and_line() {
    let mut env = new_env("meme-demo:v1");
    env.with_args(&["--resync", "10m"]);
    env.start();
    let before = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let good = status(&env).applied.unwrap().revision;
    env.write_files(&[("web.yaml", &web_yaml("meme-demo:v2").replace("  replicas: 1\n", "  replicas: lots\n"))]);
    let bad = env.commit("broken replicas");
    let s = wait_for("the source error", Duration::from_secs(20), || {
        Some(status(&env)).filter(|s| s.source.error.is_some())
    });
    let error = s.source.error.unwrap();
    assert!(error.contains("manifests/web.yaml:8:13: error: spec.replicas"), "{error}");
    assert_eq!(s.source.tip.unwrap().revision, bad);
    assert_eq!(s.applied.unwrap().revision, good, "the last good revision stays in force");
    assert_eq!(s.sync_status, meme_api::status::SyncStatus::OutOfSync);
    // Asked to reconcile now (the resync is minutes away), it still changes nothing.
    let checks = env.checks("drift");
    assert_eq!(env.api_post("/api/v1/reconcile").map(|(code, _)| code), Some(200));
    env.wait_checks_from("drift", checks, 1);
    assert_eq!(env.containers(Some("web"))[0].id, before[0].id);
    let metrics = env.api_get("/metrics").unwrap().1;
    assert!(metrics.contains("meme_source_errors_total{reason=\"validation\"} 1"), "{metrics}");
    // The next good commit applies.
    env.write_files(&[("web.yaml", &web_yaml("meme-demo:v2"))]);
    env.commit("fixed");
    env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(30));
    wait_for("the error to clear", Duration::from_secs(10), || status(&env).source.error.is_none().then_some(()));
}

#[test]
fn remote_should_be_polled_and_force_pushes_followed() {
    let mut env = new_env("meme-demo:v1");
    let origin = env.make_origin();
    env.with_args(&["--remote", "origin", "--poll", "1s", "--resync", "10m"]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let ci = env.clone_of(&origin, "ci");
    write_in(&ci, "web.yaml", &web_yaml("meme-demo:v2"), &env);
    env.git_in(&ci, &["commit", "-qam", "web: v2"]);
    env.git_in(&ci, &["push", "-q", "origin", "main"]);
    env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(30));
    let local_head = env.git(&["rev-parse", "main"]);
    let s = status(&env);
    assert_eq!(s.source.reference, "refs/remotes/origin/main");
    assert_ne!(s.applied.unwrap().revision, local_head.trim(), "the checkout's branch is never rewritten");
    assert!(env.git(&["status", "--porcelain"]).trim().is_empty(), "nor its work tree");
    // Force-push origin back to the first commit: followed, and recorded.
    env.git_in(&ci, &["reset", "-q", "--hard", "HEAD~1"]);
    env.git_in(&ci, &["push", "-q", "--force", "origin", "main"]);
    env.wait_running("web", 1, "meme-demo:v1", Duration::from_secs(30));
    let events = env.api_get("/api/v1/events").unwrap().1;
    assert!(events.contains("HistoryRewritten"), "{events}");
}

fn post_hook(env: &TestEnv, headers: &[(&str, String)], body: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", env.port)).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(stream, "POST /api/v1/hooks/git HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn webhook_should_fetch_at_once_and_refuse_bad_signatures() {
    let mut env = new_env("meme-demo:v1");
    let origin = env.make_origin();
    std::fs::write(env.path("webhook-secret"), "hook-secret\n").unwrap();
    let secret_file = env.path("webhook-secret");
    env.with_args(&[
        "--remote",
        "origin",
        "--poll",
        "10m",
        // The resync re-resolves the ref (it never fetches): it is what the test counts to
        // say "a bad hook fetched nothing" without a guessed sleep.
        "--resync",
        "1s",
        "--webhook-secret-file",
        secret_file.to_str().unwrap(),
    ]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let ci = env.clone_of(&origin, "ci");
    write_in(&ci, "web.yaml", &web_yaml("meme-demo:v2"), &env);
    env.git_in(&ci, &["commit", "-qam", "web: v2"]);
    env.git_in(&ci, &["push", "-q", "origin", "main"]);
    let body = r#"{"ref":"refs/heads/main","after":"x"}"#;
    // Forged or missing signatures: 401 and nothing fetched.
    assert_eq!(post_hook(&env, &[("X-Hub-Signature-256", "sha256=00".into())], body), 401);
    assert_eq!(post_hook(&env, &[], body), 401);
    env.wait_checks("source", 2);
    assert_eq!(env.containers(Some("web"))[0].image, "meme-demo:v1", "no fetch on a bad signature");
    // A push to another branch is acknowledged and ignored.
    let other = r#"{"ref":"refs/heads/feature"}"#;
    let sig =
        |b: &str| format!("sha256={}", meme_api::template::hex(&meme_controller_hmac(b"hook-secret", b.as_bytes())));
    assert_eq!(post_hook(&env, &[("X-Hub-Signature-256", sig(other))], other), 202);
    env.wait_checks("source", 2);
    assert_eq!(env.containers(Some("web"))[0].image, "meme-demo:v1");
    // A good signature fetches now (the poll is 10 minutes away).
    let started = Instant::now();
    assert_eq!(post_hook(&env, &[("X-Hub-Signature-256", sig(body))], body), 202);
    env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(30));
    eprintln!("webhook -> v2 running in {:?}", started.elapsed());
    // GitLab's token header works too.
    assert_eq!(post_hook(&env, &[("X-Gitlab-Token", "hook-secret".into())], body), 202);
    assert_eq!(post_hook(&env, &[("X-Gitlab-Token", "nope".into())], body), 401);
}

/// HMAC-SHA256, computed independently of the controller's code (sha2 via meme-api's hex is
/// only used for formatting).
fn meme_controller_hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // openssl is on every test machine; its HMAC is the reference here.
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-mac", "HMAC", "-macopt"])
        .arg(format!("key:{}", String::from_utf8_lossy(key)))
        .arg("-binary")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(message)?;
            child.wait_with_output()
        })
        .expect("openssl");
    assert!(out.status.success());
    out.stdout
}

/// Issue 11.9: with the default `--ref HEAD`, a bisect or an interactive rebase in the checkout
/// walks HEAD through older or half-rewritten commits. They are not deployed: the last applied
/// revision stays, the status and an event say why, and deploys resume when it is over.
#[test]
fn intermediate_commits_of_a_bisect_or_rebase_in_the_checkout_are_not_deployed() {
    let mut env = new_env("meme-demo:v1");
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let first = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    env.write_files(&[("web.yaml", &web_yaml("meme-demo:v2"))]);
    env.commit("web: v2");
    env.wait_running("web", 1, "meme-demo:v2", CONVERGE);
    env.write_files(&[("web.yaml", &web_yaml("meme-demo:v3"))]);
    let last = env.commit("web: v3");
    let running = env.wait_running("web", 1, "meme-demo:v3", CONVERGE);
    wait_for("v3 applied", CONVERGE, || (status(&env).applied?.revision == last).then_some(()));

    let held = |what: &str| {
        let s = wait_for(&format!("the {what} reported"), Duration::from_secs(20), || {
            Some(status(&env)).filter(|s| s.source.error.as_deref().is_some_and(|e| e.contains(what)))
        });
        assert_eq!(s.applied.map(|a| a.revision), Some(last.clone()), "the last applied revision stays");
        assert_eq!(s.sync_status, meme_api::status::SyncStatus::OutOfSync);
        env.wait_event("OperationInProgress", what, Duration::from_secs(10));
        env.wait_checks("source", 2);
        assert_eq!(ids(&env), vec![running[0].id.clone()], "nothing was deployed during the {what}");
    };
    let released = || {
        wait_for("the hold to end", Duration::from_secs(20), || status(&env).source.error.is_none().then_some(()));
        assert_eq!(status(&env).applied.map(|a| a.revision), Some(last.clone()));
    };

    // Bisect checks out the middle commit (v2).
    env.git(&["bisect", "start", &last, &first]);
    assert_ne!(env.git(&["rev-parse", "HEAD"]).trim(), last, "HEAD moved to an older commit");
    held("bisect is in progress");
    env.git(&["bisect", "reset"]);
    released();

    // An interactive rebase stopped on its first commit (v2 again).
    meme_e2e::run(
        std::process::Command::new("git")
            .current_dir(env.repo())
            .env("GIT_SEQUENCE_EDITOR", "sed -i 1s/^pick/edit/")
            .args(["rebase", "-q", "-i", &first]),
    );
    held("rebase is in progress");
    env.git(&["rebase", "--abort"]);
    released();
    assert_eq!(ids(&env), vec![running[0].id.clone()]);

    // Deploys resume.
    env.write_files(&[("web.yaml", &web_yaml("meme-demo:v1"))]);
    env.commit("web: back to v1");
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
}

fn ids(env: &TestEnv) -> Vec<String> {
    env.containers(Some("web")).into_iter().map(|c| c.id).collect()
}
