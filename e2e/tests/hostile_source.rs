//! Hostile revisions against the real controller (issue 11.1a): a tree that lists one large
//! blob many times is refused from its listing, in bounded memory, with the file named; and a
//! large revision validates off the async runtime, so `/healthz` keeps answering meanwhile.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

fn new_env() -> TestEnv {
    TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &Service::new("web", "meme-demo:v1").yaml())])
}

/// Git plumbing with `input` on stdin, in the test's repository.
fn git_stdin(env: &TestEnv, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("git")
        .current_dir(env.repo())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git");
    child.stdin.take().expect("stdin").write_all(input).expect("write to git");
    let out = child.wait_with_output().expect("git");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Commits on `main`, with plumbing only (the work tree is untouched), the manifests folder of
/// HEAD plus `content` listed under `copies` more names (`f00000.bin`, ...). Returns the commit.
fn commit_repeated_blob(env: &TestEnv, content: &[u8], copies: usize) -> String {
    let blob = git_stdin(env, &["hash-object", "-w", "--stdin"], content);
    let mut listing = env.git(&["ls-tree", "HEAD:manifests"]);
    for i in 0..copies {
        listing.push_str(&format!("100644 blob {blob}\tf{i:05}.bin\n"));
    }
    let manifests = git_stdin(env, &["mktree"], listing.as_bytes());
    let root: String = env
        .git(&["ls-tree", "HEAD"])
        .lines()
        .map(|l| {
            if l.ends_with("\tmanifests") { format!("040000 tree {manifests}\tmanifests\n") } else { format!("{l}\n") }
        })
        .collect();
    let root = git_stdin(env, &["mktree"], root.as_bytes());
    let commit = env.git(&["commit-tree", &root, "-p", "HEAD", "-m", "hostile: one blob listed many times"]);
    let commit = commit.trim().to_owned();
    env.git(&["update-ref", "refs/heads/main", &commit]);
    commit
}

/// The controller's status once its source reports an error for `revision`.
fn wait_source_error(env: &TestEnv, revision: &str, timeout: Duration) -> serde_json::Value {
    wait_for(&format!("a source error for {revision}\n{}", env.logs_tail()), timeout, || {
        let status = env.status()?;
        (status["source"]["tip"]["revision"] == revision && status["source"]["error"].is_string()).then_some(status)
    })
}

/// Issue 11.1a: one 4 MiB blob listed 1,500 times is a push of a few kilobytes and was a 6 GB
/// read that aborted the controller on every start. Now: refused from the listing, OutOfSync
/// with the file named, the last good revision in force, and the controller's peak memory
/// stays far below even one copy of the folder.
#[test]
fn a_tree_listing_one_4_mib_blob_1500_times_is_refused_in_bounded_memory() {
    let mut env = new_env();
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let good = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let before = env.controller_peak_rss().expect("the controller's VmHWM");

    let hostile = commit_repeated_blob(&env, &vec![b'x'; 4 * MIB], 1500);
    let objects = env.git(&["count-objects", "-v"]);
    let status = wait_source_error(&env, &hostile, Duration::from_secs(30));
    let error = status["source"]["error"].as_str().unwrap_or_default();
    // stack.yaml and web.yaml sort after the copies: the ninth 4 MiB copy crosses 32 MiB.
    assert!(error.contains("manifests/f00008.bin"), "the message names the file: {error}");
    assert!(error.contains("33554432 bytes"), "and the limit: {error}");
    assert_eq!(status["applied"]["revision"], good.as_str(), "the last good revision stays in force");
    assert_eq!(status["syncStatus"], "OutOfSync");
    env.wait_event("RevisionTooLarge", "f00008.bin", Duration::from_secs(10));
    assert_eq!(env.metric("meme_source_errors_total{reason=\"validation\"}"), Some(1.0));

    // A few more resyncs re-resolve the same tip without reading it again.
    env.wait_checks("source", 3);
    let after = env.controller_peak_rss().expect("the controller's VmHWM");
    eprintln!("hostile revision: {objects}\npeak RSS before {before} B, after {after} B");
    assert!(env.controller_alive(), "the controller survives");
    assert!(after < 64 * MIB as u64, "peak RSS {after} B: bounded far below one copy of the folder (6 GB)");
    assert_eq!(env.containers(Some("web")).len(), 1);
}

/// A large revision (one 1 MB Deployment with 30,000 env vars, which takes seconds to parse
/// and validate in a debug build) validates on the blocking pool: `/healthz` answers promptly
/// throughout, even with a single async worker (a one-core host; the runtime sizes itself by
/// cores, which is how validation on the runtime stalled `/healthz` for 4.7 s).
#[test]
fn healthz_should_answer_promptly_while_a_large_revision_validates() {
    let mut env = new_env();
    env.with_env("TOKIO_WORKER_THREADS", "1");
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);

    let big = Service::new("big", "meme-demo:v1").yaml();
    assert!(big.contains("  env:\n"), "the builder writes an env list: {big}");
    let vars: String = (0..30_000).map(|i| format!("    - {{name: V{i:05}, value: \"value {i}\"}}\n")).collect();
    let big = big.replacen("  env:\n", &format!("  env:\n{vars}"), 1);
    // Invalid at the end, so that nothing with 30,000 variables is ever started.
    env.write_files(&[("big.yaml", &big), ("broken.yaml", "apiVersion: memeit.pro/v1alpha1\nkind: Nope\n")]);

    let addr = format!("127.0.0.1:{}", env.port);
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, addr) = (Arc::clone(&stop), addr.clone());
        std::thread::spawn(move || {
            let (mut worst, mut samples, mut unanswered) = (Duration::ZERO, 0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                // No answer within http_get's 2 s read timeout counts as unanswered.
                if http_get(&addr, "/healthz").map(|(code, _)| code) != Some(200) {
                    unanswered += 1;
                }
                worst = worst.max(started.elapsed());
                samples += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (worst, samples, unanswered)
        })
    };
    let started = Instant::now();
    let revision = env.commit("a large revision");
    let status = wait_source_error(&env, &revision, Duration::from_secs(120));
    let validation = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (worst, samples, unanswered) = poller.join().expect("the /healthz poller");
    eprintln!(
        "validation took {validation:?}; /healthz worst {worst:?} over {samples} requests, {unanswered} unanswered"
    );
    assert_eq!(unanswered, 0, "/healthz answers throughout");
    let error = status["source"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("manifests/broken.yaml"), "{error}");
    assert!(validation > Duration::from_secs(1), "the revision is large enough to measure ({validation:?})");
    assert!(worst < Duration::from_millis(250), "/healthz took {worst:?} while the revision validated");
    assert!(env.containers(Some("big")).is_empty());
}
