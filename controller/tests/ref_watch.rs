//! The ref watcher against real git operations: a commit, a reset, a branch switch, `git
//! pack-refs`, a fetch into a remote-tracking ref, a push into the checkout and a worktree's own
//! HEAD all wake it within milliseconds; changes that move no ref (editing, staging) do not.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meme_git::GitRepo;
use tokio::sync::{Notify, watch};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Waits for a wake-up; returns how long it took.
async fn woken(changed: &Notify, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    tokio::time::timeout(within, changed.notified()).await.ok().map(|()| started.elapsed())
}

/// Drains wake-ups already pending (a permit is stored when nobody waits).
async fn settle(changed: &Notify) {
    while woken(changed, Duration::from_millis(150)).await.is_some() {}
}

async fn start(repo: &Path) -> (Arc<Notify>, watch::Sender<bool>) {
    let (git_dir, common_dir) = GitRepo::open(repo).await.unwrap().git_dirs().await.unwrap();
    let changed = Arc::new(Notify::new());
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(meme_controller::source::watcher::run(git_dir, common_dir, Arc::clone(&changed), shutdown));
    // Let the watch arm.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (changed, stop)
}

#[tokio::test]
async fn ref_moves_should_wake_the_watcher_and_edits_should_not() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("manifests")).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("manifests/a.yaml"), "a: 1\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "one"]);
    let (changed, _stop) = start(&repo).await;
    settle(&changed).await;

    let within = Duration::from_secs(2);
    let mut report = Vec::new();
    // Edits and staging move no ref.
    std::fs::write(repo.join("manifests/a.yaml"), "a: 2\n").unwrap();
    git(&repo, &["add", "-A"]);
    assert_eq!(woken(&changed, Duration::from_millis(300)).await, None, "staging woke the watcher");
    let steps: [(&str, &[&str]); 6] = [
        ("commit", &["commit", "-qm", "two"]),
        ("reset", &["reset", "-q", "--hard", "HEAD~1"]),
        ("branch switch", &["checkout", "-q", "-b", "other"]),
        ("commit on the branch", &["commit", "-q", "--allow-empty", "-m", "three"]),
        ("pack-refs", &["pack-refs", "--all"]),
        ("switch back", &["checkout", "-q", "main"]),
    ];
    for (what, args) in steps {
        git(&repo, args);
        let took = woken(&changed, within).await.unwrap_or_else(|| panic!("{what} was not seen"));
        report.push(format!("{what}: seen {took:?} after git returned"));
        settle(&changed).await;
    }

    // A push from another clone into the checkout (updateInstead).
    git(&repo, &["config", "receive.denyCurrentBranch", "updateInstead"]);
    let laptop = tmp.path().join("laptop");
    git(tmp.path(), &["clone", "-q", repo.to_str().unwrap(), "laptop"]);
    git(&laptop, &["commit", "-q", "--allow-empty", "-m", "from the laptop"]);
    settle(&changed).await;
    git(&laptop, &["push", "-q", "origin", "main"]);
    report.push(format!("push into the checkout: {:?}", woken(&changed, within).await.expect("push was not seen")));
    settle(&changed).await;

    // A fetch updating a remote-tracking ref.
    git(&laptop, &["commit", "-q", "--allow-empty", "-m", "four"]);
    git(&repo, &["remote", "add", "laptop", laptop.to_str().unwrap()]);
    settle(&changed).await;
    git(&repo, &["fetch", "-q", "laptop"]);
    report.push(format!("fetch: {:?}", woken(&changed, within).await.expect("fetch was not seen")));
    eprintln!("{}", report.join("\n"));
}

#[tokio::test]
async fn a_worktree_should_be_watched_through_its_own_head_and_the_common_refs() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&repo, &["worktree", "add", "-q", "-b", "deploy", "../wt"]);
    let wt = tmp.path().join("wt");
    let (changed, _stop) = start(&wt).await;
    settle(&changed).await;
    git(&wt, &["commit", "-q", "--allow-empty", "-m", "in the worktree"]);
    assert!(woken(&changed, Duration::from_secs(2)).await.is_some(), "a commit in the worktree was not seen");
}
