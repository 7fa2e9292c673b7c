//! The repo-side verbs as a user runs them, on real git repositories in temp dirs: `history`,
//! `rollback` (revert, restore, refusals, push) and `diff --offline`.

#[allow(dead_code)]
mod gitrepo;
#[allow(dead_code)]
mod support;

use gitrepo::{API, Repo, memectl};
use meme_api::status::{ControllerStatus, RevisionInfo, SourceStatus};
use predicates::prelude::*;
use support::{Reply, serve};

/// A repository with four commits: manifests v1, a README-only commit, manifests v2 (image,
/// env, replicas, file), a commit under another folder. Returns the repo and the ids.
fn four_commits() -> (Repo, [String; 4]) {
    let repo = Repo::new();
    repo.write_manifests("manifests", "shop", "meme-demo:v1", "info", 2, "hello\n");
    let c1 = repo.commit("add the shop stack");
    repo.write("README.md", "# shop\n");
    let c2 = repo.commit("docs only");
    repo.write_manifests("manifests", "shop", "meme-demo:v2", "debug", 3, "hello again\n");
    let c3 = repo.commit("web v2");
    repo.write("other/notes.yaml", "a: 1\n");
    let c4 = repo.commit("other folder");
    (repo, [c1, c2, c3, c4])
}

fn short(id: &str) -> &str {
    &id[..12]
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn history_should_list_only_the_commits_that_touch_the_path_newest_first() {
    let (repo, [c1, _, c3, _]) = four_commits();
    let output = memectl(repo.path()).args(["history", "--path", "manifests"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["REVISION", "AGE", "AUTHOR", "MESSAGE"]);
    assert!(lines[1].starts_with(short(&c3)) && lines[1].ends_with("web v2"), "{text}");
    assert!(lines[2].starts_with(short(&c1)) && lines[2].ends_with("add the shop stack"), "{text}");
    assert!(lines[1].split_whitespace().nth(2) == Some("t"), "author column: {text}");
    assert!(!text.contains("docs only") && !text.contains("other folder"), "{text}");

    // -n, and the defaults: the repository around the current directory, `manifests`.
    let output = memectl(&repo.file("manifests/files")).args(["history", "-n", "1"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(short(&c3)));

    let output = memectl(repo.path()).args(["history", "--path", "manifests", "-o", "json"]).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["revision"].as_str().unwrap()).collect();
    assert_eq!(ids, [c3.as_str(), c1.as_str()]);
    assert_eq!(rows[0]["subject"], "web v2");
    assert_eq!(rows[0]["applied"], false);

    // Another folder has its own history.
    let output = memectl(repo.path()).args(["history", "--path", "other/"]).output().unwrap();
    assert!(stdout(&output).contains("other folder") && !stdout(&output).contains("web v2"));
}

#[test]
fn history_should_mark_the_applied_and_tip_rows_when_the_controller_answers() {
    let (repo, [c1, _, c3, c4]) = four_commits();
    let status = ControllerStatus {
        stack: Some("shop".into()),
        source: SourceStatus {
            repo: repo.path().display().to_string(),
            path: "manifests".into(),
            reference: "HEAD".into(),
            // The tip is a commit that did not touch the folder: its row is the last one that did.
            tip: Some(RevisionInfo { revision: c4.clone(), subject: "other folder".into() }),
            error: None,
            error_revision: None,
        },
        applied: Some(RevisionInfo { revision: c1.clone(), subject: "add the shop stack".into() }),
        ..ControllerStatus::default()
    };
    let body = serde_json::to_string(&status).unwrap();
    let server = serve(move |_| Reply::json(200, body.clone()));
    // No --path: the controller's folder is used.
    let output = memectl(repo.path()).args(["--server", &server.url, "history"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with(&format!("{} (tip)", short(&c3))), "{text}");
    assert!(lines[2].starts_with(&format!("{} (applied)", short(&c1))), "{text}");

    // A folder the controller does not follow is not marked.
    let output = memectl(repo.path()).args(["--server", &server.url, "history", "--path", "other"]).output().unwrap();
    assert!(!stdout(&output).contains("(applied)"), "{output:?}");
}

#[test]
fn history_should_fail_outside_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    memectl(dir.path())
        .args(["history"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a git repository").and(predicate::str::contains("--repo")));
}

#[test]
fn rollback_without_rev_should_revert_the_last_manifests_commit() {
    let (repo, [c1, _, c3, c4]) = four_commits();
    let output = memectl(repo.path()).args(["rollback", "--path", "manifests", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains(&format!("Reverting {}", short(&c3))), "{text}");
    assert!(text.contains("~ web"), "{text}");
    assert!(text.contains("image: meme-demo:v2 -> meme-demo:v1"), "{text}");
    assert!(text.contains("env LOG_LEVEL: debug -> info"), "{text}");
    assert!(text.contains("replicas: 3 -> 2"), "{text}");
    assert!(text.contains("file /etc/demo/motd.txt changed"), "{text}");

    // One new commit on top, the manifests as at the previous manifests revision.
    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]), c4);
    assert_eq!(repo.git(&["diff", &c1, "HEAD", "--", "manifests"]), "");
    let message = repo.git(&["log", "-1", "--format=%B"]);
    assert!(message.starts_with("Revert \"web v2\""), "{message}");
    assert!(message.contains(&format!("This reverts commit {c3}")), "{message}");
    // Commits outside the folder stay; the work tree is clean.
    assert_eq!(repo.read("other/notes.yaml"), "a: 1\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    // No identity configured anywhere: the fallback one.
    assert_eq!(repo.git(&["log", "-1", "--format=%an <%ae>"]), "memectl <memectl@localhost>");
}

#[test]
fn rollback_should_commit_with_the_users_identity_when_there_is_one() {
    let (repo, _) = four_commits();
    repo.git(&["config", "user.name", "Alice Ops"]);
    repo.git(&["config", "user.email", "alice@example.invalid"]);
    memectl(repo.path()).args(["rollback", "--path", "manifests", "--yes"]).assert().success();
    assert_eq!(repo.git(&["log", "-1", "--format=%an <%ae>|%cn"]), "Alice Ops <alice@example.invalid>|Alice Ops");
}

#[test]
fn rollback_to_a_revision_should_restore_the_folder_exactly_in_one_commit() {
    let repo = Repo::new();
    repo.write_manifests("manifests", "shop", "meme-demo:v1", "info", 2, "hello\n");
    repo.write("README.md", "v1\n");
    let c1 = repo.commit("add the shop stack");
    repo.write_manifests("manifests", "shop", "meme-demo:v2", "debug", 3, "hello again\n");
    repo.write("manifests/api.yaml", API);
    repo.write("manifests/files/unused.txt", "added later\n");
    repo.write("README.md", "v2\n");
    repo.write("other/notes.yaml", "a: 1\n");
    let c2 = repo.commit("web v2, api, docs");
    repo.write_manifests("manifests", "shop", "meme-demo:v3", "warn", 3, "hello again\n");
    let c3 = repo.commit("web v3");

    let output = memectl(repo.path()).args(["rollback", &c1[..8], "--path", "manifests", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("- api"), "{text}");
    assert!(text.contains("image: meme-demo:v3 -> meme-demo:v1"), "{text}");

    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]), c3, "exactly one new commit");
    assert_eq!(repo.git(&["diff", &c1, "HEAD", "--", "manifests"]), "", "the folder is as at c1");
    assert!(!repo.file("manifests/api.yaml").exists() && !repo.file("manifests/files/unused.txt").exists());
    // Outside the folder, nothing moved back.
    assert_eq!(repo.read("README.md"), "v2\n");
    assert_eq!(repo.read("other/notes.yaml"), "a: 1\n");
    assert_eq!(repo.git(&["diff", &c3, "HEAD", "--stat", "--", ".", ":(exclude)manifests"]), "");
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s"]),
        format!("rollback manifests to {}: add the shop stack", &c1[..12])
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    // Again: nothing to do.
    let output = memectl(repo.path()).args(["rollback", &c1, "--path", "manifests", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout(&output).contains("nothing to roll back"));
    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]), c3);
    assert_eq!(repo.git(&["rev-parse", "HEAD~2"]), c2);
}

#[test]
fn rollback_should_refuse_a_dirty_work_tree() {
    let (repo, _) = four_commits();
    let head = repo.head();
    repo.write("manifests/web.yaml", "edited: true\n");
    memectl(repo.path())
        .args(["rollback", "--path", "manifests", "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("uncommitted changes").and(predicate::str::contains("manifests/web.yaml")));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.read("manifests/web.yaml"), "edited: true\n", "the user's change is left alone");
    repo.git(&["checkout", "--", "manifests/web.yaml"]);

    // An untracked file under the folder counts too.
    repo.write("manifests/new.yaml", "draft\n");
    memectl(repo.path())
        .args(["rollback", "--path", "manifests", "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("manifests/new.yaml"));
    assert_eq!(repo.head(), head);
}

#[test]
fn rollback_should_refuse_a_merge_in_progress() {
    let (repo, _) = four_commits();
    repo.git(&["checkout", "-q", "-b", "feature", "HEAD~1"]);
    repo.write("other/notes.yaml", "a: feature\n");
    repo.commit("feature notes");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("other/notes.yaml", "a: main\n");
    repo.commit("main notes");
    let head = repo.head();
    let out = gitrepo::git_command(repo.path())
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "merge", "feature"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the merge should conflict");
    assert!(repo.file(".git/MERGE_HEAD").exists());
    memectl(repo.path())
        .args(["rollback", "--path", "manifests", "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("a merge is in progress").and(predicate::str::contains("git merge --abort")));
    assert_eq!(repo.head(), head);
    assert!(repo.file(".git/MERGE_HEAD").exists(), "the merge is left as it was");
}

#[test]
fn rollback_should_refuse_a_result_that_does_not_validate() {
    let repo = Repo::new();
    repo.write_manifests("manifests", "shop", "meme-demo:v1", "info", 2, "hello\n");
    repo.write("manifests/web.yaml", &gitrepo::web_yaml("meme-demo:v1", "info", 2).replace("replicas:", "replicaz:"));
    let bad = repo.commit("broken web");
    repo.write_manifests("manifests", "shop", "meme-demo:v2", "info", 2, "hello\n");
    let head = repo.commit("fix web");

    // Reverting the fix would bring the broken manifests back.
    let output = memectl(repo.path()).args(["rollback", "--path", "manifests", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("manifests/web.yaml:"), "diagnostics with file:line:col: {err}");
    assert!(err.contains("replicaz"), "{err}");
    assert!(err.contains("invalid"), "{err}");
    assert_eq!(repo.head(), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "the revert was aborted");
    assert!(!repo.file(".git/REVERT_HEAD").exists());

    // So would restoring the broken revision.
    let output = memectl(repo.path()).args(["rollback", &bad, "--path", "manifests", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("replicaz"));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn rollback_should_refuse_a_revert_that_conflicts_and_leave_the_checkout_as_it_was() {
    let repo = Repo::new();
    repo.write_manifests("manifests", "shop", "meme-demo:v1", "info", 2, "hello\n");
    repo.write("README.md", "one\n");
    repo.commit("v1");
    repo.write_manifests("manifests", "shop", "meme-demo:v2", "info", 2, "hello\n");
    repo.write("README.md", "two\n");
    repo.commit("web v2 and docs");
    repo.write("README.md", "three\n");
    let head = repo.commit("more docs");
    let output = memectl(repo.path()).args(["rollback", "--path", "manifests", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("does not revert cleanly") && err.contains("memectl rollback REV"), "{err}");
    assert!(!err.contains("hint:"), "{err}");
    assert_eq!(repo.head(), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    assert!(!repo.file(".git/REVERT_HEAD").exists());
}

#[test]
fn rollback_dry_run_should_commit_nothing() {
    let (repo, _) = four_commits();
    let head = repo.head();
    let output = memectl(repo.path()).args(["rollback", "--path", "manifests", "--dry-run"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout(&output).contains("image: meme-demo:v2 -> meme-demo:v1"));
    assert!(stdout(&output).contains("nothing committed"));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
fn rollback_push_should_push_the_branch_to_its_remote() {
    let (repo, _) = four_commits();
    let origin = tempfile::tempdir().unwrap();
    gitrepo::git_command(origin.path()).args(["init", "-q", "--bare", "-b", "main"]).output().unwrap();
    repo.git(&["remote", "add", "origin", &origin.path().display().to_string()]);
    repo.git(&["push", "-q", "-u", "origin", "main"]);

    let output = memectl(repo.path()).args(["rollback", "--path", "manifests", "--push", "--yes"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(stdout(&output).contains("Pushed main to origin"), "{output:?}");
    let pushed = gitrepo::git_command(origin.path()).args(["rev-parse", "main"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&pushed.stdout).trim(), repo.head());

    // A push that fails: exit 2 with git's message; the commit stays in the checkout.
    let before = repo.head();
    let output = memectl(repo.path())
        .args(["rollback", "--path", "manifests", "--push", "--remote", "/nonexistent/origin.git", "--yes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(err.contains("not pushed") && err.contains("/nonexistent/origin.git"), "{err}");
    assert_eq!(repo.git(&["rev-parse", "HEAD~1"]), before);

    // An unknown remote name is refused before anything is committed.
    let head = repo.head();
    memectl(repo.path())
        .args(["rollback", "--path", "manifests", "--push", "--remote", "upstream", "--yes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no git remote named \"upstream\""));
    assert_eq!(repo.head(), head);
}

#[test]
fn diff_offline_should_list_per_field_changes_and_exit_1() {
    let (repo, [c1, _, c3, _]) = four_commits();
    let range = format!("{}..{}", &c1[..10], &c3[..10]);
    let output = memectl(repo.path()).args(["diff", "--offline", &range, "--path", "manifests"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        stdout(&output),
        "~ web\n    image: meme-demo:v1 -> meme-demo:v2\n    replicas: 2 -> 3\n    env LOG_LEVEL: info -> debug\n    \
         file /etc/demo/motd.txt changed\n"
    );

    // `A B`, a service added, and JSON.
    repo.write("manifests/api.yaml", API);
    let c5 = repo.commit("add api");
    let output = memectl(repo.path())
        .args(["diff", "--offline", &c3, &c5, "--path", "manifests", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((doc["mode"].as_str(), doc["equal"].as_bool()), (Some("offline"), Some(false)));
    assert_eq!((doc["from"].as_str(), doc["to"].as_str()), (Some(c3.as_str()), Some(c5.as_str())));
    assert_eq!(doc["services"][0]["name"], "api");
    assert_eq!(doc["services"][0]["change"], "added");

    // Secrets by reference only.
    repo.write(
        "manifests/web.yaml",
        &gitrepo::web_yaml("meme-demo:v2", "debug", 3).replace("key: api-token", "key: api-token-2"),
    );
    repo.commit("rotate the token key");
    let output = memectl(repo.path()).args(["diff", "--offline", "HEAD~1..", "--path", "manifests"]).output().unwrap();
    assert_eq!(
        stdout(&output),
        "~ web\n    env API_TOKEN: secretKeyRef demo/api-token -> secretKeyRef demo/api-token-2\n"
    );
}

#[test]
// See: #9 (diff with no difference says so)
fn diff_offline_should_exit_0_when_equal_and_2_on_a_bad_revision() {
    let (repo, [_, c2, _, c4]) = four_commits();
    // Different commits, same manifests.
    memectl(repo.path()).args(["diff", "--offline", &format!("{c2}..HEAD~2")]).assert().code(0).stdout(format!(
        "No differences: the services of manifests are the same at {} and {}.\n",
        &c2[..12],
        &repo.git(&["rev-parse", "HEAD~2"])[..12]
    ));
    memectl(repo.path())
        .args(["diff", "--offline", &c4, "HEAD", "--path", "manifests"])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("No differences"));
    memectl(repo.path())
        .args(["diff", "--offline", "no-such-rev..HEAD", "--path", "manifests"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-rev"));
    memectl(repo.path())
        .args(["diff", "--offline", "HEAD..HEAD", "--path", "nowhere"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nowhere does not exist"));
    memectl(repo.path()).args(["diff", "--offline"]).assert().code(2);
}

/// `echo n | memectl rollback` used to commit: without a terminal, stdin was taken as a yes.
/// Now it shows what would change and refuses (exit 1) unless `--yes`.
// See: #9
#[test]
fn issue_9_rollback_without_a_terminal_refuses_unless_yes() {
    let (repo, _) = four_commits();
    let head = repo.head();
    for stdin in ["n\n", "y\n", ""] {
        let output =
            memectl(repo.path()).args(["rollback", "--path", "manifests"]).write_stdin(stdin).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(stdout(&output).contains("image: meme-demo:v2 -> meme-demo:v1"), "prints the change: {output:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains("stdin is not a terminal; nothing committed") && err.contains("--yes"), "{err}");
        assert_eq!(repo.head(), head, "nothing committed");
        assert_eq!(repo.git(&["status", "--porcelain"]), "", "nothing left in the work tree");
        assert!(!repo.file(".git/REVERT_HEAD").exists());
    }
    memectl(repo.path()).args(["rollback", "--path", "manifests", "--yes"]).write_stdin("n\n").assert().success();
    assert_ne!(repo.head(), head);
}
