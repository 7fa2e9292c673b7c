//! What the repo-side verbs (`history`, `rollback`, `diff`) share: `--repo`/`--path`, finding
//! the repository and its manifests folder, running git, and loading the manifests committed at
//! a revision. Reads of committed state go through the controller's own [`GitRepo`] (the same
//! code that decides what the controller applies); commands that write (revert, commit, push)
//! or that it does not offer (log, status) go through [`Git`], built with the same hardening.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use meme_api::ManifestTree;
use meme_api::status::ControllerStatus;
use meme_git::{Commit, GitError, GitRepo};
use tokio::process::Command;

use crate::cli::Global;

/// The manifests folder when neither `--path` nor the controller says otherwise (the
/// controller's own `--path` default).
pub const DEFAULT_PATH: &str = "manifests";

/// Hex digits of a revision in history tables and rollback messages.
pub const SHORT_REVISION: usize = 12;

/// How long the optional status lookup may take: the controller answers from memory on this
/// host, so anything slower is treated as "not reachable" rather than delaying an offline verb.
const STATUS_TIMEOUT: Duration = Duration::from_millis(1500);

/// `--repo` and `--path`, shared by the repo-side verbs.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RepoArgs {
    /// The git checkout (default: the repository around the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The manifests folder, relative to the repository root (default: the folder the
    /// controller reports in its status, else `manifests`).
    #[arg(long, value_name = "DIR")]
    pub path: Option<String>,
}

/// A git repository found from `--repo` or the current directory.
#[derive(Debug)]
pub struct Repo {
    /// The top of the work tree (the repository directory itself when bare).
    pub root: PathBuf,
    /// Whether it has a work tree (rollback needs one).
    pub work_tree: bool,
    /// The controller's reader of committed state.
    pub reader: GitRepo,
    /// The git CLI for everything else.
    pub git: Git,
}

impl Repo {
    /// The repository at or around `dir` (default: the current directory).
    ///
    /// # Errors
    /// Not a git repository, or git cannot run.
    pub async fn open(dir: Option<&Path>) -> anyhow::Result<Self> {
        let start = match dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let start = std::path::absolute(&start).unwrap_or(start);
        // Opening first gives git's own "not a git repository" message.
        GitRepo::open(&start).await.map_err(with_repo_hint)?;
        let top = Git::new(&start).output(["rev-parse", "--show-toplevel"]).await?;
        let text = String::from_utf8_lossy(&top.stdout).trim().to_owned();
        let (root, work_tree) =
            if top.status.success() && !text.is_empty() { (PathBuf::from(text), true) } else { (start, false) };
        let reader = GitRepo::open(&root).await.map_err(with_repo_hint)?;
        Ok(Self { git: Git::new(&root), root, work_tree, reader })
    }

    /// The manifests folder, repository-relative and normalized: `--path` (absolute paths
    /// inside the repository are accepted), else the controller's `source.path`, else
    /// [`DEFAULT_PATH`].
    ///
    /// # Errors
    /// The path leaves the repository or has `..` components.
    pub fn manifests_path(&self, given: Option<&str>, status: Option<&ControllerStatus>) -> anyhow::Result<String> {
        let Some(given) = given else {
            let reported = status.map(|s| s.source.path.as_str()).filter(|p| !p.is_empty());
            return normalize_path(reported.unwrap_or(DEFAULT_PATH));
        };
        let path = Path::new(given);
        if !path.is_absolute() {
            return normalize_path(given);
        }
        let relative = path.strip_prefix(&self.root).map(Path::to_path_buf).or_else(|_| {
            let root = self.root.canonicalize()?;
            let full = path.canonicalize()?;
            full.strip_prefix(&root).map(Path::to_path_buf).map_err(std::io::Error::other)
        });
        let relative = relative
            .map_err(|_| anyhow::anyhow!("--path {given} is not inside the repository {}", self.root.display()))?;
        normalize_path(&relative.to_string_lossy())
    }

    /// The full id of the commit `rev` names.
    ///
    /// # Errors
    /// Unknown revision.
    pub async fn resolve(&self, rev: &str) -> anyhow::Result<String> {
        Ok(self.reader.resolve(rev).await?)
    }

    /// Id, subject, author and time of a commit.
    ///
    /// # Errors
    /// Unknown revision.
    pub async fn commit(&self, rev: &str) -> anyhow::Result<Commit> {
        Ok(self.reader.commit(rev).await?)
    }

    /// The manifests folder as committed at `rev` (a commit or a tree id): `Ok(None)` when the
    /// folder does not exist there.
    ///
    /// # Errors
    /// Git failed, or a file is too large.
    pub async fn tree_at(&self, rev: &str, path: &str) -> anyhow::Result<Option<ManifestTree>> {
        match self.reader.read_tree(rev, path, display_root(path)).await {
            Ok(tree) => Ok(Some(tree)),
            Err(GitError::PathNotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The commits of `rev`'s history that changed `path`, newest first, at most `max`.
    ///
    /// # Errors
    /// Git failed (unknown revision, no commits yet).
    pub async fn log(&self, rev: &str, path: &str, max: usize) -> anyhow::Result<Vec<Commit>> {
        let max = format!("--max-count={max}");
        let out = self
            .git
            .run([
                "log",
                "-z",
                "--no-show-signature",
                "--format=%H%x00%ct%x00%an%x00%s",
                &max,
                "--end-of-options",
                rev,
                "--",
                pathspec(path),
            ])
            .await?;
        Ok(parse_log(&out))
    }

    /// The last commit of `rev`'s history that changed `path` (the one whose manifests are in
    /// force at `rev`), or `None` when none did.
    ///
    /// # Errors
    /// Git failed (e.g. `rev` is not in this repository).
    pub async fn last_change(&self, rev: &str, path: &str) -> anyhow::Result<Option<Commit>> {
        Ok(self.log(rev, path, 1).await?.into_iter().next())
    }
}

/// How a manifests tree read from git is shown in diagnostics: its repository-relative path.
fn display_root(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

/// A repository-relative path as a pathspec (`.` for the root).
#[must_use]
pub fn pathspec(path: &str) -> &str {
    display_root(path)
}

/// Points at `--repo` when the directory is not a repository.
fn with_repo_hint(error: GitError) -> anyhow::Error {
    match error {
        GitError::NotARepository { .. } => anyhow::Error::new(error)
            .context("no git repository here; pass --repo DIR (the checkout with the manifests)"),
        other => other.into(),
    }
}

/// Turns a folder path into the repository-relative form git trees use: `/` separated, no
/// `.` or empty components, no trailing slash; `""` is the root.
///
/// # Errors
/// `..` components, NUL or newline.
pub fn normalize_path(path: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!path.contains(['\0', '\n']), "invalid --path {path:?}: it contains a NUL or newline");
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => anyhow::bail!("invalid --path {path:?}: `..` components are not allowed"),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// Parses `git log -z --format=%H%x00%ct%x00%an%x00%s`: four NUL-separated fields per commit,
/// commits separated (and terminated) by NUL.
#[must_use]
pub fn parse_log(out: &str) -> Vec<Commit> {
    let out = out.strip_suffix('\0').unwrap_or(out);
    if out.is_empty() {
        return Vec::new();
    }
    let fields: Vec<&str> = out.split('\0').collect();
    fields
        .chunks(4)
        .filter_map(|c| match c {
            [id, time, author, subject] => Some(Commit {
                id: id.trim_start_matches('\n').to_owned(),
                subject: (*subject).to_owned(),
                author: (*author).to_owned(),
                time: time.parse().unwrap_or(0),
            }),
            _ => None,
        })
        .collect()
}

/// The first `SHORT_REVISION` digits of a revision.
#[must_use]
pub fn short(revision: &str) -> &str {
    revision.get(..SHORT_REVISION).unwrap_or(revision)
}

/// The controller's status when it answers quickly; `None` when it is unreachable, slow or
/// answers an error (the repo-side verbs work without it).
pub async fn controller_status(global: &Global) -> Option<ControllerStatus> {
    let client = match global.client() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("warning: {error:#}; not asking the controller");
            return None;
        }
    };
    tokio::time::timeout(STATUS_TIMEOUT, client.status()).await.ok()?.ok()
}

/// The git CLI in one repository, hardened like the controller's: `git -C <dir>`, repository
/// location variables scrubbed, `LC_ALL=C`, literal pathspecs, no terminal prompts, stdin
/// closed (except for [`Git::push`]).
#[derive(Clone, Debug)]
pub struct Git {
    dir: PathBuf,
}

impl Git {
    /// Git in `dir`.
    #[must_use]
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }

    /// The command, not yet run (hardened as the controller's own git commands).
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        meme_git::command(&self.dir, args)
    }

    /// Runs git to completion, whatever its exit status.
    ///
    /// # Errors
    /// Git cannot be started.
    pub async fn output<I, S>(&self, args: I) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().await.with_context(|| format!("cannot run git in {}", self.dir.display()))
    }

    /// Runs git and returns its stdout; a non-zero exit is an error carrying git's message.
    ///
    /// # Errors
    /// Git cannot be started or fails.
    pub async fn run<I, S>(&self, args: I) -> anyhow::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let out = self.output(&args).await?;
        if !out.status.success() {
            return Err(self.failure(&args, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `git push <remote> <refspec>`: stdin and the terminal stay available, so credential
    /// helpers and ssh may ask; git's message is kept on failure.
    ///
    /// # Errors
    /// Git cannot be started or the push fails.
    pub async fn push(&self, remote: &str, refspec: &str) -> anyhow::Result<()> {
        let args = ["push", "--end-of-options", remote, refspec];
        let mut cmd = self.command(args);
        cmd.env_remove("GIT_TERMINAL_PROMPT").stdin(Stdio::inherit());
        let out = cmd.output().await.with_context(|| format!("cannot run git in {}", self.dir.display()))?;
        if out.status.success() { Ok(()) } else { Err(self.failure(&["push", remote, refspec], &out)) }
    }

    /// The error for a failed command: `git <args>: <stderr>`.
    fn failure<S: AsRef<OsStr>>(&self, args: &[S], out: &Output) -> anyhow::Error {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .filter(|a| a != "--end-of-options" && !a.starts_with("--format="))
            .collect();
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let message = if stderr.is_empty() { format!("failed with {}", out.status) } else { stderr };
        anyhow::anyhow!("git {} (in {}): {message}", shown.join(" "), self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_path_should_make_repository_relative_paths() {
        assert_eq!(normalize_path("./manifests//demo/").unwrap(), "manifests/demo");
        assert_eq!(normalize_path(".").unwrap(), "");
        assert!(normalize_path("manifests/../etc").is_err());
        assert_eq!(pathspec(""), ".");
        assert_eq!(pathspec("manifests"), "manifests");
    }

    #[test]
    fn parse_log_should_split_nul_separated_records() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let out = format!("{a}\x001700000000\x00Jane\x00bump web\x00{b}\x001600000000\x00Bob\x00\x00");
        let commits = parse_log(&out);
        assert_eq!(commits.len(), 2);
        assert_eq!((commits[0].id.as_str(), commits[0].subject.as_str()), (a.as_str(), "bump web"));
        assert_eq!(
            (commits[1].author.as_str(), commits[1].subject.as_str(), commits[1].time),
            ("Bob", "", 1_600_000_000)
        );
        assert!(parse_log("").is_empty());
        assert_eq!(short(&a), "aaaaaaaaaaaa");
        assert_eq!(short("abc"), "abc");
    }
}
