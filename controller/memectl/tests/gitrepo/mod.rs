//! Real git repositories in temp dirs for the repo-side verbs, memectl pointed at them with no
//! controller (a closed port) and none of the user's git or memectl configuration, and
//! manifests to commit.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;

/// A port nothing listens on: the optional controller lookups fail at once.
pub const NO_CONTROLLER: &str = "http://127.0.0.1:1";

/// Git with the user's global and system configuration out of the way.
pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE");
    cmd
}

/// A repository in a temp dir, on branch `main`.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Self { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// Runs git and returns its stdout, trimmed; panics with git's stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = git_command(self.path()).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs git with the test identity.
    pub fn git_as_tester(&self, args: &[&str]) -> String {
        let mut all = vec!["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"];
        all.extend_from_slice(args);
        self.git(&all)
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.file(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.file(rel)).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap()
    }

    /// Commits everything; returns the new commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git_as_tester(&["commit", "-q", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Writes the test stack's manifests under `folder`: web at `image` with `LOG_LEVEL` and
    /// `replicas`, cache, and the file web mounts.
    pub fn write_manifests(&self, folder: &str, stack: &str, image: &str, level: &str, replicas: u32, motd: &str) {
        self.write(&format!("{folder}/stack.yaml"), &stack_yaml(stack));
        self.write(&format!("{folder}/web.yaml"), &web_yaml(image, level, replicas));
        self.write(&format!("{folder}/cache.yaml"), CACHE);
        self.write(&format!("{folder}/files/motd.txt"), motd);
    }
}

/// memectl in `dir`, with no controller (unless `--server` says otherwise) and none of the
/// user's configuration.
pub fn memectl(dir: &Path) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("memectl");
    cmd.current_dir(dir)
        .env("MEMECTL_SERVER", NO_CONTROLLER)
        .env_remove("MEMECTL_TOKEN")
        .env_remove("MEMECTL_TOKEN_FILE")
        .env("NO_COLOR", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    for var in ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"] {
        cmd.env_remove(var);
    }
    cmd
}

pub fn stack_yaml(stack: &str) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata:\n  name: {stack}\nspec:\n  networks: [{{name: internal}}]\n  env: [{{name: ENV, value: test}}]\n"
    )
}

pub fn web_yaml(image: &str, level: &str, replicas: u32) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata:
  name: web
spec:
  image: {image}
  imagePullPolicy: Never
  replicas: {replicas}
  env:
    - {{name: LOG_LEVEL, value: {level}}}
    - name: API_TOKEN
      valueFrom: {{secretKeyRef: {{name: demo, key: api-token}}}}
  ports: [{{containerPort: 8080}}]
  networks: [internal]
  files:
    - {{path: /etc/demo/motd.txt, source: files/motd.txt}}
"
    )
}

pub const CACHE: &str = "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata:
  name: cache
spec:
  image: meme-demo:v1
  imagePullPolicy: Never
  networks: [internal]
";

pub const API: &str = "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata:
  name: api
spec:
  image: meme-demo:v3
  imagePullPolicy: Never
  networks: [internal]
";
