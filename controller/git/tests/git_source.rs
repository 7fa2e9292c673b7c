//! `meme_git` against real git repositories in temporary directories.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meme_api::load::MAX_FILE_BYTES;
use meme_git::{GitError, GitRepo, ReadLimits};
use tempfile::TempDir;

const STAGING: &str = "manifests/staging";

/// Runs git for fixture setup, isolated from the user's and system's config, with a fixed
/// identity; panics with git's stderr on failure and returns trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

fn git_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    cmd.args(["-c", "user.name=Test Author", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]);
    cmd.args(["-c", "tag.gpgsign=false", "-c", "core.autocrlf=false", "-c", "protocol.file.allow=always"]);
    cmd.args(args);
    for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_NOSYSTEM", "1").env("LC_ALL", "C");
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run git");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 stdout").trim().to_owned()
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn commit_all(root: &Path, message: &str) -> String {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "--allow-empty", "-m", message]);
    git(root, &["rev-parse", "HEAD"])
}

/// A fresh repository on branch `main` in a temp dir.
fn init() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("repo");
    std::fs::create_dir(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    (tmp, root)
}

/// Every byte value, twice, ending in a newline.
fn binary_with_newline() -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    bytes.push(b'\n');
    bytes
}

fn binary_without_newline() -> Vec<u8> {
    (0..=255u8).rev().chain([0, 0, b'\r', b'\n', b'\r']).collect()
}

/// The staging folder used by most tests, relative to the folder.
fn staging_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("stack.yaml", b"apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata:\n  name: meme-staging\n".to_vec()),
        ("backend.yaml", b"kind: Deployment\r\nmetadata: {name: backend}\r\n".to_vec()),
        ("files/caddy/Caddyfile", b":80 {\n\treverse_proxy backend:8080\n}\n".to_vec()),
        ("files/blob-newline.bin", binary_with_newline()),
        ("files/blob-no-newline.bin", binary_without_newline()),
        ("files/empty", Vec::new()),
        ("no-trailing-newline.yaml", b"kind: Deployment".to_vec()),
    ]
}

fn expected(files: &[(&str, Vec<u8>)]) -> std::collections::BTreeMap<String, Arc<[u8]>> {
    files.iter().map(|(rel, content)| ((*rel).to_owned(), Arc::from(content.as_slice()))).collect()
}

/// A repository with the staging folder, a sibling folder and a look-alike prefix folder.
fn staging_repo() -> (TempDir, PathBuf, String) {
    let (tmp, root) = init();
    for (rel, content) in staging_files() {
        write(&root, &format!("{STAGING}/{rel}"), content);
    }
    write(&root, "manifests/prod/stack.yaml", "kind: Stack\n");
    write(&root, "manifests/staging-old/stack.yaml", "kind: Stack\n");
    write(&root, "README.md", "# repo\n");
    // A file named like git's separator, to catch a `--` taken as a path.
    write(&root, "--", "not a separator\n");
    let id = commit_all(&root, "initial");
    (tmp, root, id)
}

#[tokio::test]
async fn resolves_head_branch_tag_and_short_sha() {
    let (_tmp, root) = init();
    write(&root, "a.txt", "1");
    let first = commit_all(&root, "first");
    git(&root, &["tag", "v1"]);
    git(&root, &["tag", "-a", "v1-annotated", "-m", "release v1"]);
    git(&root, &["branch", "feature"]);
    write(&root, "a.txt", "2");
    let second = commit_all(&root, "second");

    let repo = GitRepo::open(&root).await.unwrap();
    assert_eq!(repo.resolve("HEAD").await.unwrap(), second);
    assert_eq!(repo.resolve("main").await.unwrap(), second);
    assert_eq!(repo.resolve("refs/heads/main").await.unwrap(), second);
    assert_eq!(repo.resolve("feature").await.unwrap(), first);
    assert_eq!(repo.resolve("v1").await.unwrap(), first);
    assert_eq!(repo.resolve("v1-annotated").await.unwrap(), first, "annotated tags peel to their commit");
    assert_eq!(repo.resolve(&first[..7]).await.unwrap(), first);
    assert_eq!(repo.resolve(&second).await.unwrap(), second);
    assert_eq!(repo.resolve("HEAD~1").await.unwrap(), first);
    assert_eq!(second.len(), 40);
}

#[tokio::test]
async fn resolving_a_missing_ref_is_a_clear_error() {
    let (_tmp, root) = init();
    write(&root, "a.txt", "1");
    commit_all(&root, "first");
    let repo = GitRepo::open(&root).await.unwrap();

    let err = repo.resolve("no-such-branch").await.unwrap_err();
    assert!(matches!(err, GitError::Resolve { ref reference, .. } if reference == "no-such-branch"), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no-such-branch") && message.contains(&root.display().to_string()), "{message}");
    println!("missing ref: {message}");

    // A tree is not a commit.
    let tree = git(&root, &["rev-parse", "HEAD^{tree}"]);
    assert!(matches!(repo.resolve(&tree).await, Err(GitError::Resolve { .. })));

    // Option-looking references are references, never options.
    let out = root.join("injected");
    let err = repo.resolve(&format!("--output={}", out.display())).await.unwrap_err();
    assert!(matches!(err, GitError::Resolve { .. }), "{err:?}");
    assert!(!out.exists());
    assert!(repo.resolve("").await.is_err());
}

#[tokio::test]
async fn resolve_in_an_empty_repository_errors() {
    let (_tmp, root) = init();
    let repo = GitRepo::open(&root).await.unwrap();
    let err = repo.resolve("HEAD").await.unwrap_err();
    assert!(matches!(err, GitError::Resolve { .. }), "{err:?}");
}

#[tokio::test]
async fn open_refuses_a_plain_directory() {
    let tmp = TempDir::new().unwrap();
    let err = GitRepo::open(tmp.path()).await.unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
    println!("not a repository: {err}");
    let err = GitRepo::open(&tmp.path().join("missing")).await.unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err:?}");
}

#[tokio::test]
async fn commit_returns_subject_author_and_committer_time() {
    let (_tmp, root) = init();
    write(&root, "a.txt", "1");
    git(&root, &["add", "-A"]);
    git_env(
        &root,
        &["commit", "-q", "-m", "deploy: bump backend to v2\n\nLonger body\nwith lines."],
        &[
            ("GIT_AUTHOR_NAME", "Jane Q. Développeur"),
            ("GIT_AUTHOR_EMAIL", "jane@example.com"),
            ("GIT_AUTHOR_DATE", "@1600000000 +0200"),
            ("GIT_COMMITTER_DATE", "@1700000000 +0100"),
        ],
    );
    let id = git(&root, &["rev-parse", "HEAD"]);
    let repo = GitRepo::open(&root).await.unwrap();

    let commit = repo.commit("HEAD").await.unwrap();
    assert_eq!(commit.id, id);
    assert_eq!(commit.subject, "deploy: bump backend to v2");
    assert_eq!(commit.author, "Jane Q. Développeur");
    assert_eq!(commit.time, 1_700_000_000);
    assert_eq!(repo.commit(&id[..8]).await.unwrap(), commit);

    let err = repo.commit("nope").await.unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
    println!("bad commit: {err}");
}

#[tokio::test]
async fn read_tree_returns_exactly_the_committed_files() {
    let (_tmp, root, first) = staging_repo();
    // A submodule (gitlink) and a symlink inside the folder are not files.
    std::os::unix::fs::symlink("stack.yaml", root.join(STAGING).join("link.yaml")).unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["update-index", "--add", "--cacheinfo", &format!("160000,{first},{STAGING}/vendor")]);
    git(&root, &["commit", "-q", "-m", "submodule and symlink"]);
    let first = git(&root, &["rev-parse", "HEAD"]);
    let listing = git(&root, &["ls-tree", "-r", "HEAD", "--", &format!("{STAGING}/")]);
    assert!(listing.contains("160000 commit") && listing.contains("120000 blob"), "{listing}");

    // Uncommitted changes: modified, untracked, staged-only, deleted.
    write(&root, &format!("{STAGING}/stack.yaml"), "modified in the work tree\n");
    write(&root, &format!("{STAGING}/untracked.yaml"), "kind: Untracked\n");
    write(&root, &format!("{STAGING}/staged.yaml"), "kind: Staged\n");
    git(&root, &["add", &format!("{STAGING}/staged.yaml")]);
    std::fs::remove_file(root.join(STAGING).join("backend.yaml")).unwrap();

    let repo = GitRepo::open(&root).await.unwrap();
    let tree = repo.read_tree("HEAD", STAGING, STAGING).await.unwrap();
    assert_eq!(tree.root, STAGING);
    assert_eq!(tree.files, expected(&staging_files()));
    assert_eq!(&*tree.files["files/caddy/Caddyfile"], b":80 {\n\treverse_proxy backend:8080\n}\n");
    assert_eq!(&*tree.files["files/empty"], b"");
    assert_eq!(&*tree.files["files/blob-newline.bin"], binary_with_newline());
    assert_eq!(&*tree.files["files/blob-no-newline.bin"], binary_without_newline());

    // The same folder spelled differently, and shown differently.
    for spelling in ["manifests/staging/", "./manifests/staging", "/manifests//staging/"] {
        let other = repo.read_tree(&first, spelling, "shown-as").await.unwrap();
        assert_eq!(other.root, "shown-as");
        assert_eq!(other.files, tree.files, "{spelling}");
    }

    // A later commit is not seen at the earlier revision.
    write(&root, &format!("{STAGING}/stack.yaml"), "committed later\n");
    git(&root, &["rm", "-q", "--cached", &format!("{STAGING}/backend.yaml")]);
    let second = commit_all(&root, "second");
    let at_first = repo.read_tree(&first, STAGING, STAGING).await.unwrap();
    assert_eq!(at_first.files, expected(&staging_files()));
    let at_second = repo.read_tree(&second, STAGING, STAGING).await.unwrap();
    assert_eq!(&*at_second.files["stack.yaml"], b"committed later\n");
    assert!(at_second.files.contains_key("staged.yaml"));
    assert!(at_second.files.contains_key("untracked.yaml"));
    assert!(!at_second.files.contains_key("backend.yaml"));
    assert!(!at_second.files.contains_key("link.yaml") && !at_second.files.contains_key("vendor"));
}

#[tokio::test]
async fn read_tree_of_the_root() {
    let (_tmp, root, id) = staging_repo();
    let repo = GitRepo::open(&root).await.unwrap();
    for path in ["", ".", "./", "/"] {
        let tree = repo.read_tree(&id, path, ".").await.unwrap();
        assert_eq!(tree.files.len(), staging_files().len() + 4, "{path:?}");
        assert_eq!(&*tree.files["--"], b"not a separator\n");
        assert_eq!(&*tree.files["README.md"], b"# repo\n");
        assert_eq!(
            &*tree.files["manifests/staging/files/caddy/Caddyfile"],
            b":80 {\n\treverse_proxy backend:8080\n}\n"
        );
        assert_eq!(tree.display("README.md"), "README.md");
    }
}

#[tokio::test]
async fn missing_paths_and_revisions() {
    let (_tmp, root, id) = staging_repo();
    let repo = GitRepo::open(&root).await.unwrap();

    let err = repo.read_tree(&id, "manifests/production", "x").await.unwrap_err();
    assert!(
        matches!(&err, GitError::PathNotFound { path, revision } if path == "manifests/production" && *revision == id),
        "{err:?}"
    );
    println!("missing path: {err}");
    // A prefix of a real folder name, and a file, are not folders.
    assert!(matches!(repo.read_tree(&id, "manifests/stag", "x").await, Err(GitError::PathNotFound { .. })));
    assert!(matches!(repo.read_tree(&id, "README.md", "x").await, Err(GitError::PathNotFound { .. })));
    assert!(matches!(repo.read_tree(&id, "manifests/../etc", "x").await, Err(GitError::InvalidPath { .. })));

    assert_eq!(repo.tree_id(&id, "manifests/production").await.unwrap(), None);
    assert_eq!(repo.tree_id(&id, "manifests/stag").await.unwrap(), None);
    assert_eq!(repo.tree_id(&id, "README.md").await.unwrap(), None);

    // Option-looking revisions are revisions.
    for rev in ["--name-only", "-d"] {
        let err = repo.read_tree(rev, STAGING, "x").await.unwrap_err();
        assert!(matches!(err, GitError::Command { .. }), "{err:?}");
        assert!(repo.tree_id(rev, STAGING).await.is_err());
    }

    let err = repo.read_tree("no-such-rev", STAGING, "x").await.unwrap_err();
    assert!(matches!(err, GitError::Command { .. }), "{err:?}");
    println!("missing rev: {err}");
    assert!(repo.tree_id("no-such-rev", STAGING).await.is_err());
    assert!(repo.tree_id("no-such-rev", "").await.is_err());
}

#[tokio::test]
async fn tree_id_changes_only_when_the_folder_changes() {
    let (_tmp, root, first) = staging_repo();
    let repo = GitRepo::open(&root).await.unwrap();
    let t1 = repo.tree_id(&first, STAGING).await.unwrap().expect("folder exists");
    assert_eq!(t1, git(&root, &["rev-parse", &format!("{first}:{STAGING}")]));
    assert_eq!(repo.tree_id(&first, "manifests/staging/").await.unwrap().as_deref(), Some(t1.as_str()));

    // Touching another folder keeps the id.
    write(&root, "manifests/prod/stack.yaml", "kind: Stack # changed\n");
    let second = commit_all(&root, "prod only");
    assert_eq!(repo.tree_id(&second, STAGING).await.unwrap().as_deref(), Some(t1.as_str()));
    // An empty commit too.
    let third = commit_all(&root, "empty");
    assert_eq!(repo.tree_id(&third, STAGING).await.unwrap().as_deref(), Some(t1.as_str()));

    // Touching the folder (deep inside) changes it.
    write(&root, &format!("{STAGING}/files/caddy/Caddyfile"), ":81 {}\n");
    let fourth = commit_all(&root, "staging");
    let t4 = repo.tree_id(&fourth, STAGING).await.unwrap().unwrap();
    assert_ne!(t4, t1);

    // The root tree changes with every content change.
    let roots = [&first, &second, &fourth].map(|c| git(&root, &["rev-parse", &format!("{c}^{{tree}}")]));
    assert_eq!(repo.tree_id(&first, "").await.unwrap().as_deref(), Some(roots[0].as_str()));
    assert_eq!(repo.tree_id(&second, ".").await.unwrap().as_deref(), Some(roots[1].as_str()));
    assert_eq!(repo.tree_id(&fourth, "/").await.unwrap().as_deref(), Some(roots[2].as_str()));
    assert_ne!(roots[0], roots[1]);
}

#[tokio::test]
async fn works_in_a_linked_worktree() {
    let (tmp, root, first) = staging_repo();
    let wt = tmp.path().join("wt");
    git(&root, &["worktree", "add", "-q", "-b", "wt-branch", wt.to_str().unwrap()]);
    let repo = GitRepo::open(&wt).await.unwrap();
    assert_eq!(repo.resolve("HEAD").await.unwrap(), first);

    write(&wt, &format!("{STAGING}/new.yaml"), "kind: New\n");
    let in_wt = commit_all(&wt, "in the worktree");
    assert_eq!(repo.resolve("HEAD").await.unwrap(), in_wt);
    assert_eq!(repo.resolve("main").await.unwrap(), first);
    let tree = repo.read_tree("HEAD", STAGING, STAGING).await.unwrap();
    assert_eq!(&*tree.files["new.yaml"], b"kind: New\n");
    assert_eq!(tree.files.len(), staging_files().len() + 1);

    let (git_dir, common_dir) = repo.git_dirs().await.unwrap();
    assert!(git_dir.is_absolute() && common_dir.is_absolute());
    assert_eq!(common_dir.canonicalize().unwrap(), root.join(".git").canonicalize().unwrap());
    assert_eq!(git_dir.canonicalize().unwrap(), root.join(".git/worktrees/wt").canonicalize().unwrap());

    let main_repo = GitRepo::open(&root).await.unwrap();
    let (git_dir, common_dir) = main_repo.git_dirs().await.unwrap();
    assert_eq!(git_dir, common_dir);
    assert_eq!(git_dir.canonicalize().unwrap(), root.join(".git").canonicalize().unwrap());
}

#[tokio::test]
async fn works_when_dot_git_is_a_file() {
    let tmp = TempDir::new().unwrap();
    let work = tmp.path().join("work");
    let sep = tmp.path().join("separate.git");
    git(tmp.path(), &["init", "-q", "-b", "main", "--separate-git-dir", sep.to_str().unwrap(), work.to_str().unwrap()]);
    assert!(work.join(".git").is_file(), ".git should be a `gitdir:` file");
    write(&work, &format!("{STAGING}/stack.yaml"), "kind: Stack\n");
    let id = commit_all(&work, "first");

    let repo = GitRepo::open(&work).await.unwrap();
    assert_eq!(repo.resolve("HEAD").await.unwrap(), id);
    let tree = repo.read_tree("main", STAGING, STAGING).await.unwrap();
    assert_eq!(&*tree.files["stack.yaml"], b"kind: Stack\n");
    let (git_dir, common_dir) = repo.git_dirs().await.unwrap();
    assert_eq!(git_dir.canonicalize().unwrap(), sep.canonicalize().unwrap());
    assert_eq!(common_dir.canonicalize().unwrap(), sep.canonicalize().unwrap());
}

#[tokio::test]
async fn spaces_and_unicode_in_names_round_trip() {
    let (_tmp, root) = init();
    let folder = "manifests/my stäging ☃";
    let files = [
        ("héllo wörld.yaml", "kind: Stack\n"),
        ("日本/設定 file.txt", "こんにちは\n"),
        ("tab\there.txt", "tab\n"),
        ("quote\"and\\backslash.txt", "q\n"),
        ("-leading-dash.yaml", "dash\n"),
    ];
    for (rel, content) in files {
        write(&root, &format!("{folder}/{rel}"), content);
    }
    commit_all(&root, "unicode");
    let repo = GitRepo::open(&root).await.unwrap();
    let tree = repo.read_tree("HEAD", folder, folder).await.unwrap();
    let got: Vec<(&str, &[u8])> = tree.files.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
    let mut want: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(repo.tree_id("HEAD", folder).await.unwrap().is_some());
    assert_eq!(tree.display("日本/設定 file.txt"), format!("{folder}/日本/設定 file.txt"));
}

#[tokio::test]
async fn files_over_the_limit_are_refused() {
    let (_tmp, root) = init();
    write(&root, &format!("{STAGING}/ok.bin"), vec![7u8; MAX_FILE_BYTES]);
    write(&root, "manifests/big/huge.bin", vec![7u8; MAX_FILE_BYTES + 1]);
    write(&root, "manifests/big/stack.yaml", "kind: Stack\n");
    commit_all(&root, "big");
    let repo = GitRepo::open(&root).await.unwrap();

    let tree = repo.read_tree("HEAD", STAGING, STAGING).await.unwrap();
    assert_eq!(tree.files["ok.bin"].len(), MAX_FILE_BYTES);

    let err = repo.read_tree("HEAD", "manifests/big", "manifests/big").await.unwrap_err();
    assert!(
        matches!(&err, GitError::FileTooLarge { path, size } if path == "manifests/big/huge.bin" && *size == MAX_FILE_BYTES as u64 + 1),
        "{err:?}"
    );
    println!("too large: {err}");
    // The shared reader is still in step afterwards.
    assert_eq!(repo.read_tree("HEAD", STAGING, STAGING).await.unwrap(), tree);
}

#[tokio::test]
async fn cat_file_child_is_respawned_after_being_killed() {
    let (_tmp, root, id) = staging_repo();
    let repo = GitRepo::open(&root).await.unwrap();
    assert_eq!(repo.cat_file_pid().await, None, "spawned lazily");
    let want = repo.read_tree(&id, STAGING, STAGING).await.unwrap();
    let first_pid = repo.cat_file_pid().await.expect("a live cat-file child");
    // Reused while alive.
    repo.read_tree(&id, STAGING, STAGING).await.unwrap();
    assert_eq!(repo.cat_file_pid().await, Some(first_pid));

    let mut previous = first_pid;
    for round in 0..5 {
        let status = Command::new("kill").args(["-KILL", &previous.to_string()]).status().unwrap();
        assert!(status.success());
        // Every other round, read at once (the child may not be reaped yet: the write or read
        // fails and the exchange is retried); otherwise let it die first (seen dead up front).
        if round % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(repo.read_tree(&id, STAGING, STAGING).await.unwrap(), want, "round {round}");
        let pid = repo.cat_file_pid().await.expect("respawned");
        assert_ne!(pid, previous);
        previous = pid;
    }
}

#[tokio::test]
async fn a_stuck_cat_file_child_times_out_and_is_replaced() {
    let (_tmp, root, id) = staging_repo();
    let repo = GitRepo::open(&root).await.unwrap().with_timeout(Duration::from_millis(300));
    let want = repo.read_tree(&id, STAGING, STAGING).await.unwrap();
    let stuck = repo.cat_file_pid().await.unwrap();
    // Stopped, the child is alive but never answers.
    assert!(Command::new("kill").args(["-STOP", &stuck.to_string()]).status().unwrap().success());

    let err = repo.read_tree(&id, STAGING, STAGING).await.unwrap_err();
    assert!(matches!(&err, GitError::Timeout { operation, .. } if operation == "cat-file --batch"), "{err:?}");
    assert_eq!(repo.cat_file_pid().await, None, "the stuck child is dropped (and killed)");
    assert_eq!(repo.read_tree(&id, STAGING, STAGING).await.unwrap(), want);
    assert_ne!(repo.cat_file_pid().await, Some(stuck));
}

#[tokio::test]
async fn concurrent_and_cancelled_reads_stay_consistent() {
    let (_tmp, root) = init();
    for i in 0..200 {
        write(&root, &format!("{STAGING}/file-{i:03}.yaml"), format!("n: {i}\n").repeat(500));
    }
    let id = commit_all(&root, "many");
    let repo = Arc::new(GitRepo::open(&root).await.unwrap());
    let want = repo.read_tree(&id, STAGING, STAGING).await.unwrap();

    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let repo = Arc::clone(&repo);
            let id = id.clone();
            tokio::spawn(async move { repo.read_tree(&id, STAGING, STAGING).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), want);
    }

    // Reads abandoned part-way (the caller's future dropped) must not leave the shared
    // cat-file stream out of step for the next read.
    for micros in [50, 200, 500, 1000, 2000, 5000] {
        let _ = tokio::time::timeout(Duration::from_micros(micros), repo.read_tree(&id, STAGING, STAGING)).await;
        assert_eq!(repo.read_tree(&id, STAGING, STAGING).await.unwrap(), want, "after cancelling at {micros}µs");
    }
}

#[tokio::test]
async fn hung_git_times_out_and_recovers() {
    let (_tmp, root, id) = staging_repo();
    let repo = GitRepo::open(&root).await.unwrap().with_timeout(Duration::from_millis(300));
    let want = repo.read_tree(&id, STAGING, STAGING).await.unwrap();

    // An alternates file that is a FIFO with no writer: any git that opens the object database
    // blocks forever on open(2).
    let fifo = root.join(".git/objects/info/alternates");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let err = repo.resolve("HEAD").await.unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    println!("timeout: {err}");
    let err = repo.read_tree(&id, STAGING, STAGING).await.unwrap_err();
    assert!(matches!(err, GitError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(repo.resolve("HEAD").await.unwrap(), id);
    assert_eq!(repo.read_tree(&id, STAGING, STAGING).await.unwrap(), want);
}

#[tokio::test]
async fn two_hundred_reads_of_a_fifty_file_tree() {
    let (_tmp, root) = init();
    for i in 0..50 {
        let dir = if i % 5 == 0 { "files/nested" } else { "" };
        let rel = if dir.is_empty() { format!("svc-{i:02}.yaml") } else { format!("{dir}/conf-{i:02}.txt") };
        write(
            &root,
            &format!("{STAGING}/{rel}"),
            format!("kind: Deployment\nmetadata: {{name: svc-{i}}}\n").repeat(20),
        );
    }
    write(&root, "manifests/prod/stack.yaml", "kind: Stack\n");
    let id = commit_all(&root, "fifty files");
    // Packed, as a repository that has seen `git gc` would be.
    git(&root, &["gc", "-q"]);
    let repo = GitRepo::open(&root).await.unwrap();
    let want = repo.read_tree(&id, STAGING, STAGING).await.unwrap();
    assert_eq!(want.files.len(), 50);

    let started = Instant::now();
    for _ in 0..200 {
        let tree = repo.read_tree(&id, STAGING, STAGING).await.unwrap();
        assert_eq!(tree.files.len(), 50);
    }
    let elapsed = started.elapsed();
    println!(
        "200 reads of a 50-file tree: {elapsed:?} total, {:?} per read (one ls-tree + one pipelined cat-file batch each)",
        elapsed / 200
    );

    let started = Instant::now();
    for _ in 0..200 {
        repo.tree_id(&id, STAGING).await.unwrap().unwrap();
    }
    println!("200 tree_id calls: {:?} total", started.elapsed());
    assert!(elapsed < Duration::from_secs(60), "200 reads took {elapsed:?}");
}

/// Runs git with `input` on stdin (fixture plumbing: hash-object, mktree).
fn git_stdin(dir: &Path, args: &[&str], input: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run git");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Commits, with plumbing only (nothing is written to the work tree), a `manifests/hostile`
/// folder that lists the blob `content` under `copies` names, beside a stack.yaml. Returns the
/// commit id. This is how an 8 KB push can describe gigabytes.
fn commit_repeated_blob(root: &Path, content: &[u8], copies: usize) -> String {
    let blob = git_stdin(root, &["hash-object", "-w", "--stdin"], content);
    let stack = git_stdin(root, &["hash-object", "-w", "--stdin"], b"kind: Stack\n");
    let mut listing = format!("100644 blob {stack}\tstack.yaml\n");
    for i in 0..copies {
        listing.push_str(&format!("100644 blob {blob}\tf{i:05}.bin\n"));
    }
    let folder = git_stdin(root, &["mktree"], listing.as_bytes());
    let manifests = git_stdin(root, &["mktree"], format!("040000 tree {folder}\thostile\n").as_bytes());
    let top = git_stdin(root, &["mktree"], format!("040000 tree {manifests}\tmanifests\n").as_bytes());
    git(root, &["commit-tree", &top, "-m", "hostile"])
}

const MIB: usize = 1 << 20;

#[tokio::test]
async fn a_blob_listed_many_times_is_read_once_and_shared() {
    let (_tmp, root) = init();
    let commit = commit_repeated_blob(&root, &vec![b'x'; MIB], 20);
    let repo = GitRepo::open(&root).await.unwrap();
    let (tree, stats) =
        repo.read_tree_counted(&commit, "manifests/hostile", "manifests/hostile", ReadLimits::DEFAULT).await.unwrap();
    assert_eq!(tree.files.len(), 21);
    assert_eq!((stats.entries, stats.files, stats.blobs), (21, 21, 2));
    assert_eq!(stats.total_bytes, 20 * MIB as u64 + 12);
    assert_eq!(stats.bytes_read, MIB as u64 + 12, "each blob read once");
    assert!(Arc::ptr_eq(&tree.files["f00000.bin"], &tree.files["f00019.bin"]), "the copies share one buffer");
    println!("20 x 1 MiB listed: {stats:?}");
}

/// Issue 11.1a: one 4 MiB blob listed 1,500 times (a push of a few KB) was a 6 GB read. The
/// listing alone now refuses it, naming the file at which the total went over, and nothing
/// of it is read.
#[tokio::test]
async fn a_4_mib_blob_listed_1500_times_is_refused_before_any_read() {
    let (_tmp, root) = init();
    let commit = commit_repeated_blob(&root, &vec![b'x'; MAX_FILE_BYTES], 1500);
    let pack = git(&root, &["count-objects", "-v"]);
    println!("object store for the hostile commit:\n{pack}");
    let repo = GitRepo::open(&root).await.unwrap();
    let started = Instant::now();
    let err = repo.read_tree(&commit, "manifests/hostile", "manifests/hostile").await.unwrap_err();
    println!("refused in {:?}: {err}", started.elapsed());
    // 8 x 4 MiB = 32 MiB is the limit: the ninth copy goes over (stack.yaml sorts last).
    assert!(
        matches!(&err, GitError::TreeTooLarge { path, limit } if path == "manifests/hostile/f00008.bin" && *limit == 32 << 20),
        "{err:?}"
    );
    assert!(err.is_over_limit());
    assert_eq!(repo.cat_file_pid().await, None, "no blob was read");
}

#[tokio::test]
async fn too_many_entries_or_too_long_a_listing_is_refused() {
    let (_tmp, root) = init();
    let commit = commit_repeated_blob(&root, b"", 5_000);
    let repo = GitRepo::open(&root).await.unwrap();
    let err = repo.read_tree(&commit, "manifests/hostile", "manifests/hostile").await.unwrap_err();
    assert!(
        matches!(&err, GitError::TooManyEntries { path, limit: 5_000 } if path == "manifests/hostile/stack.yaml"),
        "{err:?}"
    );
    let limits = ReadLimits { max_listing_bytes: 4096, ..ReadLimits::DEFAULT };
    let err = repo.read_tree_counted(&commit, "manifests/hostile", "manifests/hostile", limits).await.unwrap_err();
    assert!(matches!(&err, GitError::ListingTooLarge { path, limit: 4096 } if path == "manifests/hostile"), "{err:?}");
    // Within the limits the same folder reads: 4,999 empty copies and the stack.
    let commit = commit_repeated_blob(&root, b"", 4_999);
    let (tree, stats) =
        repo.read_tree_counted(&commit, "manifests/hostile", "manifests/hostile", ReadLimits::DEFAULT).await.unwrap();
    assert_eq!((tree.files.len(), stats.blobs), (5_000, 2));
}

#[tokio::test]
async fn hidden_entries_are_neither_read_nor_counted() {
    let (_tmp, root) = init();
    write(&root, "manifests/app/stack.yaml", "kind: Stack\n");
    write(&root, "manifests/app/.cache/big.bin", vec![1u8; MAX_FILE_BYTES]);
    write(&root, "manifests/app/.hidden.yaml", "kind: Deployment\n");
    let commit = commit_all(&root, "hidden");
    let repo = GitRepo::open(&root).await.unwrap();
    let (tree, stats) =
        repo.read_tree_counted(&commit, "manifests/app", "manifests/app", ReadLimits::DEFAULT).await.unwrap();
    assert_eq!(tree.files.keys().collect::<Vec<_>>(), ["stack.yaml"]);
    assert_eq!((stats.entries, stats.files, stats.bytes_read), (3, 1, 12));
}

/// Runs git for a step expected to stop (a conflict); returns whether it succeeded.
fn git_status(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test Author", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_EDITOR", "true")
        .output()
        .expect("run git")
        .status
        .success()
}

/// Issue 11.9: each operation that walks HEAD through commits is told apart, through real git.
#[tokio::test]
async fn operations_in_progress_are_recognised() {
    use meme_git::Operation;
    let (tmp, root) = init();
    let mut ids = Vec::new();
    for n in 1..=3 {
        write(&root, "f", format!("{n}\n"));
        ids.push(commit_all(&root, &format!("f = {n}")));
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let repo = GitRepo::open(&root).await.unwrap();
    assert_eq!(repo.operation_in_progress().await.unwrap(), None);

    git(&root, &["bisect", "start", c, a]);
    assert_eq!(repo.resolve("HEAD").await.unwrap(), *b, "bisect checked out the middle commit");
    assert_eq!(repo.operation_in_progress().await.unwrap(), Some(Operation::Bisect));
    git(&root, &["bisect", "reset"]);
    assert_eq!(repo.operation_in_progress().await.unwrap(), None);

    git_env(&root, &["rebase", "-q", "-i", a], &[("GIT_SEQUENCE_EDITOR", "sed -i 1s/^pick/edit/")]);
    assert_eq!(repo.resolve("HEAD").await.unwrap(), *b, "the rebase stopped on the first commit");
    assert_eq!(repo.operation_in_progress().await.unwrap(), Some(Operation::Rebase));
    git(&root, &["rebase", "--abort"]);
    assert_eq!(repo.operation_in_progress().await.unwrap(), None);

    git(&root, &["checkout", "-q", "-b", "side", a]);
    write(&root, "f", "side\n");
    let side = commit_all(&root, "f = side");
    git(&root, &["checkout", "-q", "main"]);
    assert!(!git_status(&root, &["merge", "-q", "side"]), "a conflicting merge stops");
    assert_eq!(repo.operation_in_progress().await.unwrap(), Some(Operation::Merge));
    git(&root, &["merge", "--abort"]);
    assert!(!git_status(&root, &["cherry-pick", &side]));
    assert_eq!(repo.operation_in_progress().await.unwrap(), Some(Operation::CherryPick));
    git(&root, &["cherry-pick", "--abort"]);
    assert!(!git_status(&root, &["revert", "--no-edit", b]));
    assert_eq!(repo.operation_in_progress().await.unwrap(), Some(Operation::Revert));
    git(&root, &["revert", "--abort"]);
    assert_eq!(repo.operation_in_progress().await.unwrap(), None);

    // In a linked worktree, the worktree's own state counts, not the main checkout's.
    let wt = tmp.path().join("wt");
    git(&root, &["worktree", "add", "-q", "--detach", wt.to_str().unwrap(), c]);
    let wt_repo = GitRepo::open(&wt).await.unwrap();
    git(&wt, &["bisect", "start", c, a]);
    assert_eq!(wt_repo.operation_in_progress().await.unwrap(), Some(Operation::Bisect));
    assert_eq!(repo.operation_in_progress().await.unwrap(), None);
}

/// An ed25519 key pair `name` in `dir` (ssh-keygen, no passphrase); returns the private key path.
fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    key
}

/// Commits `message` (an empty commit) signed as `sign` says: `-c` options for git.
fn signed_commit(root: &Path, message: &str, sign: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = sign.to_vec();
    args.extend(["commit", "-q", "--allow-empty", "-m", message]);
    git_env(root, &args, env);
    git(root, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn only_commits_signed_by_an_allowed_ssh_key_verify() {
    let (tmp, root) = init();
    let good = ssh_key(tmp.path(), "good");
    let other = ssh_key(tmp.path(), "other");
    let allowed = tmp.path().join("allowed_signers");
    let good_pub = std::fs::read_to_string(good.with_extension("pub")).unwrap();
    std::fs::write(&allowed, format!("test@example.com {good_pub}")).unwrap();
    let (good_key, other_key) =
        (format!("user.signingkey={}", good.display()), format!("user.signingkey={}", other.display()));

    let signed =
        signed_commit(&root, "signed", &["-c", "gpg.format=ssh", "-c", &good_key, "-c", "commit.gpgsign=true"], &[]);
    let by_other = signed_commit(
        &root,
        "by another key",
        &["-c", "gpg.format=ssh", "-c", &other_key, "-c", "commit.gpgsign=true"],
        &[],
    );
    let unsigned = signed_commit(&root, "unsigned", &[], &[]);
    // GPG-signed with a key the running user's keyring trusts ultimately.
    let gnupg = tmp.path().join("gnupg");
    std::fs::create_dir(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gnupg_env = [("GNUPGHOME", gnupg.to_str().unwrap())];
    let out = Command::new("gpg")
        .args(["--batch", "--quiet", "--passphrase", "", "--quick-gen-key", "t <test@example.com>", "ed25519", "sign"])
        .envs(gnupg_env)
        .output()
        .expect("gpg (gnupg) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gpg_signed = signed_commit(
        &root,
        "gpg-signed",
        &["-c", "user.signingkey=test@example.com", "-c", "commit.gpgsign=true"],
        &gnupg_env,
    );

    let repo = GitRepo::open(&root).await.unwrap();
    let ok = repo.verify_commit(&signed, &allowed).await.unwrap();
    assert!(ok.summary.contains("Good \"git\" signature for test@example.com"), "{ok:?}");
    for (what, rev, says) in
        [("another key", &by_other, "No principal matched"), ("unsigned", &unsigned, "the commit is not signed")]
    {
        let err = repo.verify_commit(rev, &allowed).await.unwrap_err();
        assert!(matches!(&err, GitError::Unverified { reason, .. } if reason.contains(says)), "{what}: {err}");
        println!("{what}: {err}");
    }
    // The GPG signature is good by the keyring's standard: git alone accepts it...
    let plain = Command::new("git")
        .current_dir(&root)
        .args(["verify-commit", &gpg_signed])
        .envs(gnupg_env)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(plain.status.success(), "the keyring accepts it: {}", String::from_utf8_lossy(&plain.stderr));
    // ...but it is not an SSH key of the allowed-signers file.
    let err = repo.verify_commit(&gpg_signed, &allowed).await.unwrap_err();
    assert!(matches!(&err, GitError::Unverified { reason, .. } if reason.contains("not an SSH signature")), "{err}");
    println!("gpg-signed: {err}");
}
