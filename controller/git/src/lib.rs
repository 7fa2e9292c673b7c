//! meme-git: reads committed manifests from a git repository through the git CLI — resolving
//! refs to commits, commit metadata, tree ids for change detection, and the files of a folder as
//! committed at a revision, read from git objects, never from the work tree or the index. Its own
//! crate so that the controller and memectl share one reader (and memectl does not link the
//! daemon's HTTP server, file watcher and metrics).
//!
//! Every invocation goes through one hardened command builder ([`command`], [`std_command`]):
//! `git -C <repo>`, no terminal prompts, `LC_ALL=C`, no optional locks, literal pathspecs,
//! repository location variables (`GIT_DIR`, …) scrubbed from the environment, stdin closed,
//! killed when dropped, bounded by a timeout, and `--end-of-options`/`--` before anything a user
//! supplied. Blob contents come from one long-lived `git cat-file --batch` child per repository,
//! spawned lazily, shared behind a mutex and respawned when it dies, times out or gets out of step.
//!
//! Needs git 2.31 or newer (`rev-parse --end-of-options`, `--path-format=absolute`).

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use meme_api::ManifestTree;
use meme_api::load::MAX_FILE_BYTES;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

mod limits;
mod progress;
mod verify;

pub use limits::{ReadLimits, ReadStats};
pub use progress::Operation;
pub use verify::Signature;

/// How long one git invocation (or one batch of blob reads) may take before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variables that would point git somewhere other than `-C <repo>` (they are set,
/// for instance, when the controller is started from inside a git hook).
pub const SCRUBBED_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
];

/// Git's mode for a symbolic link; such a blob holds the link target, not file content.
const SYMLINK_MODE: &str = "120000";

/// A git command in `dir`, hardened: the one place every rule lives (no prompts, C locale,
/// no optional locks, literal pathspecs, no inherited `GIT_DIR`-style variables, stdin closed,
/// output captured, killed when dropped). `memectl` builds its git commands here too.
pub fn command<I, S>(dir: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::from(std_command(dir, args));
    cmd.kill_on_drop(true);
    cmd
}

/// [`command`] as a blocking [`std::process::Command`], for the places that cannot await (a
/// destructor undoing a half-done `memectl rollback`). Same hardening; not killed on drop, since
/// a blocking caller waits for it anyway.
pub fn std_command<I, S>(dir: &Path, args: I) -> std::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(dir).args(args);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        // Reads must never take index.lock (a concurrent `git commit` would fail).
        .env("GIT_OPTIONAL_LOCKS", "0")
        // Paths are names, never pathspec magic or globs.
        .env("GIT_LITERAL_PATHSPECS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Errors from reading a git repository. Messages name the git operation, the repository and
/// git's own (trimmed) stderr.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The `git` executable could not be started (not installed, not on `PATH`, bad argument).
    #[error("cannot run git in {repo}: {source}")]
    Spawn {
        /// The repository directory.
        repo: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The directory is not inside a git repository (or git refuses it, e.g. dubious ownership).
    #[error("{repo} is not a git repository: {stderr}")]
    NotARepository {
        /// The directory.
        repo: String,
        /// Git's message.
        stderr: String,
    },
    /// A reference does not name a commit.
    #[error("git rev-parse {reference} in {repo}: {stderr}")]
    Resolve {
        /// The reference as given.
        reference: String,
        /// The repository directory.
        repo: String,
        /// Git's message (or a description when git prints none).
        stderr: String,
    },
    /// Any other git command failed.
    #[error("git {operation} in {repo}: {stderr}")]
    Command {
        /// The command and its main arguments.
        operation: String,
        /// The repository directory.
        repo: String,
        /// Git's message.
        stderr: String,
    },
    /// The folder does not exist (as a directory) at that revision.
    #[error("{path} does not exist at revision {revision}")]
    PathNotFound {
        /// The folder, relative to the repository root.
        path: String,
        /// The revision as given.
        revision: String,
    },
    /// A folder path that cannot name a tree (`..` components, NUL, newline).
    #[error("invalid folder path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Git did not finish in time; it was killed.
    #[error("git {operation} in {repo} did not finish within {after:?}")]
    Timeout {
        /// The command and its main arguments.
        operation: String,
        /// The repository directory.
        repo: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// Talking to the long-lived `git cat-file --batch` child failed.
    #[error("git {operation} in {repo}: {source}{}", stderr_suffix(.stderr))]
    Io {
        /// The command.
        operation: String,
        /// The repository directory.
        repo: String,
        /// The pipe error.
        #[source]
        source: io::Error,
        /// Whatever the child printed on stderr before it was killed.
        stderr: String,
    },
    /// An object listed in a tree is missing from the object database.
    #[error("object {oid} is missing from {repo} (needed for {path})")]
    MissingObject {
        /// The object id.
        oid: String,
        /// The file it backs, as shown in diagnostics.
        path: String,
        /// The repository directory.
        repo: String,
    },
    /// Git printed something this module does not understand.
    #[error("unexpected output from git {operation} in {repo}: {detail}")]
    Protocol {
        /// The command.
        operation: String,
        /// The repository directory.
        repo: String,
        /// What was wrong.
        detail: String,
    },
    /// The commit is not signed by a key of the allowed-signers file.
    #[error("not signed by an allowed key: {reason}")]
    Unverified {
        /// The commit.
        revision: String,
        /// What git said (or that the commit is not signed).
        reason: String,
    },
    /// The folder lists more entries than [`ReadLimits::max_entries`].
    #[error("{path}: the folder lists more than {limit} entries at this revision; nothing of it was read")]
    TooManyEntries {
        /// The first entry over the limit, as shown in diagnostics.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// The files of the folder together are larger than [`ReadLimits::max_total_bytes`] (a
    /// blob listed under several paths counts once per path).
    #[error(
        "{path}: the folder's files total more than {limit} bytes by this file (a file listed under several names counts each time); nothing of it was read"
    )]
    TreeTooLarge {
        /// The file at which the total went over, as shown in diagnostics.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// `git ls-tree` printed more than [`ReadLimits::max_listing_bytes`] for the folder.
    #[error("{path}: the listing of the folder is over {limit} bytes at this revision; nothing of it was read")]
    ListingTooLarge {
        /// The folder, as shown in diagnostics.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// A file of the folder is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for files in a manifests folder")]
    FileTooLarge {
        /// The file as shown in diagnostics.
        path: String,
        /// Its size in bytes.
        size: u64,
    },
}

impl GitError {
    /// Whether the revision's content is over a limit (as opposed to git failing): the
    /// revision is refused like an invalid one, and retrying will not help.
    #[must_use]
    pub fn is_over_limit(&self) -> bool {
        matches!(
            self,
            Self::FileTooLarge { .. }
                | Self::TooManyEntries { .. }
                | Self::TreeTooLarge { .. }
                | Self::ListingTooLarge { .. }
        )
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(" ({stderr})") }
}

/// One commit's identity and the metadata shown in status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Full commit id (40 hex digits; 64 in SHA-256 repositories).
    pub id: String,
    /// First line of the message.
    pub subject: String,
    /// Author name.
    pub author: String,
    /// Committer time, Unix seconds.
    pub time: i64,
}

/// A git repository (work tree, linked worktree, `.git`-file checkout or bare repository) read
/// through the git CLI.
pub struct GitRepo {
    dir: PathBuf,
    display: String,
    timeout: Duration,
    cat_file: Mutex<Option<CatFile>>,
    /// The worktree's own git dir, once asked for (it does not move while we run).
    git_dir: tokio::sync::OnceCell<PathBuf>,
}

impl fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitRepo").field("dir", &self.dir).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl GitRepo {
    /// Opens the repository at (or containing) `dir`, checking with `git rev-parse --git-dir`.
    ///
    /// # Errors
    /// [`GitError::NotARepository`] when git does not accept the directory, [`GitError::Spawn`]
    /// when git cannot be run, [`GitError::Timeout`].
    pub async fn open(dir: &Path) -> Result<Self, GitError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let repo = Self {
            display: dir.display().to_string(),
            dir,
            timeout: DEFAULT_TIMEOUT,
            cat_file: Mutex::new(None),
            git_dir: tokio::sync::OnceCell::new(),
        };
        let out = repo.run("rev-parse --git-dir", ["rev-parse", "--git-dir"]).await?;
        if !out.status.success() {
            return Err(GitError::NotARepository { repo: repo.display.clone(), stderr: stderr_text(&out) });
        }
        Ok(repo)
    }

    /// Replaces the per-invocation timeout ([`DEFAULT_TIMEOUT`] by default).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The repository directory as opened (made absolute).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves a reference (branch, tag, `HEAD`, remote-tracking ref, short or full id, any
    /// rev-parse expression) to the full id of the commit it names.
    ///
    /// # Errors
    /// [`GitError::Resolve`] when it names no commit; spawn and timeout errors.
    pub async fn resolve(&self, reference: &str) -> Result<String, GitError> {
        let spec = format!("{reference}^{{commit}}");
        let operation = format!("rev-parse {reference}");
        let out = self.run(&operation, ["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]).await?;
        let resolve_error = |stderr: String| GitError::Resolve {
            reference: reference.to_owned(),
            repo: self.display.clone(),
            stderr: if stderr.is_empty() {
                "unknown revision, or it does not name a commit".to_owned()
            } else {
                stderr
            },
        };
        if !out.status.success() {
            return Err(resolve_error(stderr_text_raw(&out)));
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !is_object_id(&id) {
            return Err(resolve_error(format!("unexpected output {id:?}")));
        }
        Ok(id)
    }

    /// The commit `rev` names: id, subject, author name and committer time.
    ///
    /// # Errors
    /// [`GitError::Command`] when `rev` names no commit; spawn, timeout and protocol errors.
    pub async fn commit(&self, rev: &str) -> Result<Commit, GitError> {
        let operation = format!("log -1 {rev}");
        let args =
            ["log", "-1", "--no-show-signature", "--format=%H%x00%s%x00%an%x00%ct", "--end-of-options", rev, "--"];
        let out = self.run(&operation, args).await?;
        if !out.status.success() {
            return Err(self.command_error(&operation, &out));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        parse_commit(text.trim_end_matches('\n')).ok_or_else(|| GitError::Protocol {
            operation,
            repo: self.display.clone(),
            detail: format!("cannot parse {text:?} as id, subject, author and time"),
        })
    }

    /// The id of the tree at `<rev>:<path>`, or `None` when `path` is not a directory at `rev`.
    /// `""` and `"."` name the root tree. The id changes exactly when something under the path
    /// changed, which makes it the cheap "did the manifests change?" check.
    ///
    /// # Errors
    /// [`GitError::Resolve`]/[`GitError::Command`] when `rev` does not exist,
    /// [`GitError::InvalidPath`], spawn, timeout and protocol errors.
    pub async fn tree_id(&self, rev: &str, path: &str) -> Result<Option<String>, GitError> {
        let path = normalize_path(path)?;
        if path.is_empty() {
            let spec = format!("{rev}^{{tree}}");
            let operation = format!("rev-parse {spec}");
            let out = self.run(&operation, ["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]).await?;
            let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success() || !is_object_id(&id) {
                let stderr = stderr_text_raw(&out);
                return Err(GitError::Resolve {
                    reference: rev.to_owned(),
                    repo: self.display.clone(),
                    stderr: if stderr.is_empty() { "unknown revision, or it has no tree".to_owned() } else { stderr },
                });
            }
            return Ok(Some(id));
        }
        // Without `-r` and with the folder itself as the pathspec, ls-tree prints the folder's own
        // entry: its type tells a directory from a file, and a bad `rev` fails loudly instead of
        // looking like a missing path (as `rev-parse <rev>:<path>` would).
        let operation = format!("ls-tree {rev} {path}");
        let out = self.run(&operation, ["ls-tree", "-z", "--full-tree", "--end-of-options", rev, &path]).await?;
        if !out.status.success() {
            return Err(self.command_error(&operation, &out));
        }
        let entries = parse_ls_tree(&out.stdout).map_err(|detail| self.protocol(&operation, detail))?;
        Ok(entries.into_iter().find(|e| e.path == path.as_bytes() && e.kind == "tree").map(|e| e.oid.to_owned()))
    }

    /// Every file under the folder `path` as committed at `rev`, with paths relative to the
    /// folder and the tree shown as `display_root`. Submodules, symbolic links and hidden
    /// entries (a path component starting with `.`, as when the folder is read from disk) are
    /// skipped. Bounded by [`ReadLimits::DEFAULT`]; see [`Self::read_tree_counted`].
    ///
    /// # Errors
    /// As [`Self::read_tree_counted`].
    pub async fn read_tree(&self, rev: &str, path: &str, display_root: &str) -> Result<ManifestTree, GitError> {
        self.read_tree_counted(rev, path, display_root, ReadLimits::DEFAULT).await.map(|(tree, _)| tree)
    }

    /// [`Self::read_tree`] under explicit `limits`, with what the read cost. The listing is
    /// checked against the limits before any content is read, and each blob is read once
    /// however many paths list it: the tree shares its bytes between those paths.
    ///
    /// # Errors
    /// [`GitError::PathNotFound`] when the folder does not exist at `rev`; [`GitError::FileTooLarge`],
    /// [`GitError::TooManyEntries`], [`GitError::TreeTooLarge`] and [`GitError::ListingTooLarge`]
    /// over the limits; [`GitError::Command`] when `rev` does not exist, [`GitError::InvalidPath`],
    /// spawn, timeout, I/O and protocol errors.
    pub async fn read_tree_counted(
        &self,
        rev: &str,
        path: &str,
        display_root: &str,
        limits: ReadLimits,
    ) -> Result<(ManifestTree, ReadStats), GitError> {
        let path = normalize_path(path)?;
        let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
        let operation = format!("ls-tree -r {rev} {prefix}");
        // ls-tree parses its arguments with parse-options and has no `--` separator of its own:
        // after `--end-of-options`, a `--` would be one more (literal) path to list.
        let mut args = vec!["ls-tree", "-r", "-z", "-l", "--full-tree", "--end-of-options", rev];
        if !prefix.is_empty() {
            args.push(&prefix);
        }
        let tree = ManifestTree::new(display_root);
        let out = self.run_bounded(&operation, args, limits.max_listing_bytes).await?;
        let Some(out) = out else {
            return Err(GitError::ListingTooLarge { path: tree.root.clone(), limit: limits.max_listing_bytes });
        };
        if !out.status.success() {
            return Err(self.command_error(&operation, &out));
        }
        let entries = parse_ls_tree(&out.stdout).map_err(|detail| self.protocol(&operation, detail))?;
        if entries.is_empty() && !path.is_empty() {
            return Err(GitError::PathNotFound { path, revision: rev.to_owned() });
        }
        let mut stats = ReadStats { entries: entries.len(), ..ReadStats::default() };
        if entries.len() > limits.max_entries {
            let at = &entries[limits.max_entries];
            let rel = String::from_utf8_lossy(at.path.strip_prefix(prefix.as_bytes()).unwrap_or(at.path));
            return Err(GitError::TooManyEntries { path: tree.display(&rel), limit: limits.max_entries });
        }

        // Which blob each file is, and each blob once, in order of first appearance.
        let mut files: Vec<(String, usize)> = Vec::new();
        let mut unique: Vec<Wanted> = Vec::new();
        let mut index_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for entry in &entries {
            if entry.kind != "blob" || entry.mode == SYMLINK_MODE {
                continue;
            }
            let Some(rel) = entry.path.strip_prefix(prefix.as_bytes()) else { continue };
            if rel.is_empty() || rel.split(|&b| b == b'/').any(|c| c.starts_with(b".")) {
                continue;
            }
            let rel = String::from_utf8_lossy(rel).into_owned();
            let Some(size) = entry.size else {
                return Err(self.protocol(&operation, format!("no size for blob {}", entry.oid)));
            };
            if size > MAX_FILE_BYTES as u64 {
                return Err(GitError::FileTooLarge { path: tree.display(&rel), size });
            }
            // Every copy counts: the loader and the containers see each path's content.
            stats.total_bytes += size;
            if stats.total_bytes > limits.max_total_bytes {
                return Err(GitError::TreeTooLarge { path: tree.display(&rel), limit: limits.max_total_bytes });
            }
            let index = *index_of.entry(entry.oid).or_insert_with(|| {
                unique.push(Wanted { oid: entry.oid.to_owned(), size, display: tree.display(&rel) });
                unique.len() - 1
            });
            files.push((rel, index));
        }

        let started = Instant::now();
        let contents: Vec<Arc<[u8]>> = self.read_blobs(&unique).await?.into_iter().map(Arc::from).collect();
        stats.files = files.len();
        stats.blobs = unique.len();
        stats.bytes_read = unique.iter().map(|w| w.size).sum();
        tracing::debug!(repo = %self.display, rev, path = %path, entries = stats.entries, files = stats.files, blobs = stats.blobs, bytes_read = stats.bytes_read, elapsed = ?started.elapsed(), "read tree");
        let mut tree = tree;
        for (rel, index) in files {
            tree.files.insert(rel, Arc::clone(&contents[index]));
        }
        Ok((tree, stats))
    }

    /// The repository's git dir and common dir (they differ for linked worktrees), both
    /// absolute — the places whose refs/HEAD changes a watcher must see.
    ///
    /// # Errors
    /// [`GitError::Command`] when git fails; spawn, timeout and protocol errors.
    pub async fn git_dirs(&self) -> Result<(PathBuf, PathBuf), GitError> {
        let operation = "rev-parse --absolute-git-dir --git-common-dir";
        let args = ["rev-parse", "--path-format=absolute", "--absolute-git-dir", "--git-common-dir"];
        let out = self.run(operation, args).await?;
        if !out.status.success() {
            return Err(self.command_error(operation, &out));
        }
        let text = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let [git_dir, common_dir] = lines[..] else {
            return Err(
                self.protocol(operation, format!("expected two lines, got {:?}", String::from_utf8_lossy(text)))
            );
        };
        let absolute = |p: &[u8]| {
            let p = bytes_to_path(p);
            if p.is_absolute() { p } else { self.dir.join(p) }
        };
        Ok((absolute(git_dir), absolute(common_dir)))
    }

    /// The operation (rebase, merge, bisect, ...) in progress in the checkout, if any: while
    /// one runs, `HEAD` walks through commits that were never meant to be deployed.
    ///
    /// # Errors
    /// Git failed to name the git dir.
    pub async fn operation_in_progress(&self) -> Result<Option<Operation>, GitError> {
        let git_dir =
            self.git_dir.get_or_try_init(|| async { self.git_dirs().await.map(|(git_dir, _)| git_dir) }).await?;
        Ok(Operation::in_progress(git_dir))
    }

    /// The process id of the live `git cat-file --batch` child, if one is running. For tests
    /// that kill it to exercise the respawn path.
    #[doc(hidden)]
    pub async fn cat_file_pid(&self) -> Option<u32> {
        self.cat_file.lock().await.as_ref().and_then(|c| c.child.id())
    }

    /// Fetches `refspec` from `remote` (`git fetch --prune --no-tags`), with its own timeout since
    /// it crosses the network. Credentials come from git's own configuration (ssh keys,
    /// credential helpers); a prompt is never shown.
    ///
    /// # Errors
    /// Git failed or timed out; its message is kept.
    pub async fn fetch(&self, remote: &str, refspec: &str, timeout: Duration) -> Result<(), GitError> {
        let operation = format!("fetch {remote}");
        let args = ["fetch", "--prune", "--no-tags", "--quiet", "--end-of-options", remote, refspec];
        let out = match tokio::time::timeout(timeout, self.command(args).output()).await {
            Err(_elapsed) => {
                return Err(GitError::Timeout { operation, repo: self.display.clone(), after: timeout });
            }
            Ok(Err(source)) => return Err(GitError::Spawn { repo: self.display.clone(), source }),
            Ok(Ok(out)) => out,
        };
        if out.status.success() { Ok(()) } else { Err(self.command_error(&operation, &out)) }
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    ///
    /// # Errors
    /// Git failed (e.g. an unknown commit).
    pub async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
        let out = self
            .run("merge-base --is-ancestor", ["merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant])
            .await?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(self.command_error("merge-base --is-ancestor", &out)),
        }
    }

    /// The branch `HEAD` points at (`main`), or `None` on a detached `HEAD`.
    ///
    /// # Errors
    /// Git failed.
    pub async fn current_branch(&self) -> Result<Option<String>, GitError> {
        let out = self.run("symbolic-ref HEAD", ["symbolic-ref", "--quiet", "--short", "HEAD"]).await?;
        if out.status.success() {
            Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|b| !b.is_empty()))
        } else {
            Ok(None)
        }
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        command(&self.dir, args)
    }

    /// Runs a one-shot git command to completion under the timeout, keeping at most
    /// `max_stdout` bytes of its output: `None` (and the child killed) when it prints more.
    /// Stderr is kept up to 64 KiB.
    async fn run_bounded<I, S>(&self, operation: &str, args: I, max_stdout: usize) -> Result<Option<Output>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child =
            self.command(args).spawn().map_err(|source| GitError::Spawn { repo: self.display.clone(), source })?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(GitError::Spawn {
                repo: self.display.clone(),
                source: io::Error::other("git started without its pipes"),
            });
        };
        let limit = u64::try_from(max_stdout).unwrap_or(u64::MAX).saturating_add(1);
        // Stdout first, then stderr: the commands run this way print only a short message on
        // stderr, which the pipe's buffer holds meanwhile.
        let collect = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            stdout.take(limit).read_to_end(&mut out).await?;
            if out.len() > max_stdout {
                return Ok(None);
            }
            let mut stderr = stderr;
            (&mut stderr).take(64 * 1024).read_to_end(&mut err).await?;
            tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await?;
            let status = child.wait().await?;
            Ok::<_, io::Error>(Some(Output { status, stdout: out, stderr: err }))
        };
        match tokio::time::timeout(self.timeout, collect).await {
            Err(_elapsed) => Err(self.timeout_error(operation)),
            Ok(Err(source)) => Err(GitError::Io {
                operation: operation.to_owned(),
                repo: self.display.clone(),
                source,
                stderr: String::new(),
            }),
            // Over the limit: the child is killed when dropped (`kill_on_drop`).
            Ok(Ok(out)) => Ok(out),
        }
    }

    /// Runs a one-shot git command to completion under the timeout.
    async fn run<I, S>(&self, operation: &str, args: I) -> Result<Output, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let started = Instant::now();
        let output = self.command(args).output();
        let result = match tokio::time::timeout(self.timeout, output).await {
            Err(_elapsed) => Err(self.timeout_error(operation)),
            Ok(Err(source)) => Err(GitError::Spawn { repo: self.display.clone(), source }),
            Ok(Ok(out)) => Ok(out),
        };
        tracing::trace!(repo = %self.display, operation, elapsed = ?started.elapsed(), ok = result.as_ref().is_ok_and(|o| o.status.success()), "git");
        result
    }

    fn command_error(&self, operation: &str, out: &Output) -> GitError {
        GitError::Command { operation: operation.to_owned(), repo: self.display.clone(), stderr: stderr_text(out) }
    }

    fn protocol(&self, operation: &str, detail: String) -> GitError {
        GitError::Protocol { operation: operation.to_owned(), repo: self.display.clone(), detail }
    }

    fn timeout_error(&self, operation: &str) -> GitError {
        GitError::Timeout { operation: operation.to_owned(), repo: self.display.clone(), after: self.timeout }
    }

    /// Reads the blobs through the shared `cat-file --batch` child, in order. A child that has
    /// died since the last call is replaced; one that fails mid-exchange is replaced and the
    /// exchange retried once (reads are idempotent). The child is taken out of the mutex for the
    /// exchange and put back only after a complete, in-step exchange, so a timeout, an error or a
    /// caller dropping this future mid-read kills it (`kill_on_drop`) and the next call respawns.
    async fn read_blobs(&self, wanted: &[Wanted]) -> Result<Vec<Vec<u8>>, GitError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut slot = self.cat_file.lock().await;
        let mut retried = false;
        loop {
            let (mut cat, fresh) = match slot.take().map(CatFile::alive) {
                Some(Some(cat)) => (cat, false),
                Some(None) | None => (self.spawn_cat_file()?, true),
            };
            match tokio::time::timeout(self.timeout, cat.exchange(wanted)).await {
                Ok(Ok(contents)) => {
                    *slot = Some(cat);
                    return Ok(contents);
                }
                Ok(Err(BatchError::Io(source))) if !fresh && !retried => {
                    tracing::debug!(repo = %self.display, error = %source, "git cat-file --batch failed; respawning it");
                    retried = true;
                }
                Ok(Err(BatchError::Io(source))) => {
                    let stderr = cat.kill_and_collect_stderr().await;
                    return Err(GitError::Io {
                        operation: "cat-file --batch".to_owned(),
                        repo: self.display.clone(),
                        source,
                        stderr,
                    });
                }
                Ok(Err(BatchError::Missing { index })) => {
                    let want = &wanted[index];
                    return Err(GitError::MissingObject {
                        oid: want.oid.clone(),
                        path: want.display.clone(),
                        repo: self.display.clone(),
                    });
                }
                Ok(Err(BatchError::TooLarge { index, size })) => {
                    // The body was not read; the child is dropped (killed) rather than drained.
                    return Err(GitError::FileTooLarge { path: wanted[index].display.clone(), size });
                }
                Ok(Err(BatchError::Protocol(detail))) => return Err(self.protocol("cat-file --batch", detail)),
                Err(_elapsed) => return Err(self.timeout_error("cat-file --batch")),
            }
        }
    }

    fn spawn_cat_file(&self) -> Result<CatFile, GitError> {
        let mut cmd = self.command(["cat-file", "--batch"]);
        cmd.stdin(Stdio::piped());
        let spawn_error = |source| GitError::Spawn { repo: self.display.clone(), source };
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(spawn_error(io::Error::other("git cat-file --batch started without its pipes")));
        };
        tracing::debug!(repo = %self.display, pid = child.id(), "spawned git cat-file --batch");
        Ok(CatFile { child, stdin, stdout: BufReader::with_capacity(64 * 1024, stdout), stderr })
    }
}

/// A blob to read: its id, the size ls-tree reported, and the (first) file it backs.
struct Wanted {
    oid: String,
    size: u64,
    display: String,
}

/// The long-lived `git cat-file --batch` child and its pipes.
struct CatFile {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
}

enum BatchError {
    /// The pipe broke or closed: the child died or was killed.
    Io(io::Error),
    /// Git answered `<oid> missing`.
    Missing { index: usize },
    /// The header announced more than [`MAX_FILE_BYTES`].
    TooLarge { index: usize, size: u64 },
    /// Git answered something else than expected.
    Protocol(String),
}

impl From<io::Error> for BatchError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl CatFile {
    /// The child if it is still running (a dead one is dropped).
    fn alive(mut self) -> Option<Self> {
        matches!(self.child.try_wait(), Ok(None)).then_some(self)
    }

    /// Requests every blob and reads the answers, pipelined: the requests are written while the
    /// answers are read, so neither side can fill a pipe and block the other.
    async fn exchange(&mut self, wanted: &[Wanted]) -> Result<Vec<Vec<u8>>, BatchError> {
        let mut request = Vec::with_capacity(wanted.iter().map(|w| w.oid.len() + 1).sum());
        for want in wanted {
            request.extend_from_slice(want.oid.as_bytes());
            request.push(b'\n');
        }
        let stdin = &mut self.stdin;
        let stdout = &mut self.stdout;
        let write = async move {
            stdin.write_all(&request).await?;
            stdin.flush().await?;
            Ok::<_, BatchError>(())
        };
        let read = async move {
            let mut contents = Vec::with_capacity(wanted.len());
            let mut header = Vec::with_capacity(128);
            for (index, want) in wanted.iter().enumerate() {
                contents.push(read_object(stdout, &mut header, index, want).await?);
            }
            Ok::<_, BatchError>(contents)
        };
        let ((), contents) = tokio::try_join!(write, read)?;
        Ok(contents)
    }

    /// Kills the child and returns what it printed on stderr (bounded in size and time).
    async fn kill_and_collect_stderr(&mut self) -> String {
        let _ = self.child.start_kill();
        let mut buf = Vec::new();
        let mut stderr = (&mut self.stderr).take(8 * 1024);
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).trim().to_owned()
    }
}

/// Reads one `<oid> <type> <size>\n<body>\n` answer.
async fn read_object(
    stdout: &mut BufReader<ChildStdout>,
    header: &mut Vec<u8>,
    index: usize,
    want: &Wanted,
) -> Result<Vec<u8>, BatchError> {
    header.clear();
    stdout.read_until(b'\n', header).await?;
    if header.pop() != Some(b'\n') {
        return Err(BatchError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "git cat-file --batch closed its output",
        )));
    }
    let header = String::from_utf8_lossy(header);
    let size = match parse_batch_header(&header) {
        BatchHeader::Object { oid, kind: "blob", size } if oid == want.oid => size,
        BatchHeader::Missing => return Err(BatchError::Missing { index }),
        _ => return Err(BatchError::Protocol(format!("asked for blob {}, got header {header:?}", want.oid))),
    };
    if size > MAX_FILE_BYTES as u64 {
        return Err(BatchError::TooLarge { index, size });
    }
    if size != want.size {
        return Err(BatchError::Protocol(format!("blob {} has {size} bytes, ls-tree said {}", want.oid, want.size)));
    }
    let mut body = vec![0; usize::try_from(size).unwrap_or(usize::MAX)];
    stdout.read_exact(&mut body).await?;
    let mut newline = [0u8; 1];
    stdout.read_exact(&mut newline).await?;
    if newline != [b'\n'] {
        return Err(BatchError::Protocol(format!("no newline after the body of blob {}", want.oid)));
    }
    Ok(body)
}

#[derive(Debug, PartialEq, Eq)]
enum BatchHeader<'a> {
    Object { oid: &'a str, kind: &'a str, size: u64 },
    Missing,
    Other,
}

/// Parses a `cat-file --batch` header line (without its newline).
fn parse_batch_header(line: &str) -> BatchHeader<'_> {
    let fields: Vec<&str> = line.split(' ').collect();
    match fields[..] {
        [oid, kind, size] => match size.parse() {
            Ok(size) => BatchHeader::Object { oid, kind, size },
            Err(_) => BatchHeader::Other,
        },
        [_, "missing"] => BatchHeader::Missing,
        _ => BatchHeader::Other,
    }
}

/// One entry of `git ls-tree -z` output (with or without `-l`).
#[derive(Debug, PartialEq, Eq)]
struct TreeEntry<'a> {
    mode: &'a str,
    kind: &'a str,
    oid: &'a str,
    /// Present with `-l` for blobs (`-` for trees and submodules).
    size: Option<u64>,
    /// Raw path bytes (git paths need not be UTF-8).
    path: &'a [u8],
}

/// Parses `git ls-tree -z [-l]` output: `<mode> SP <type> SP <oid> [SP+ <size>] TAB <path> NUL`.
fn parse_ls_tree(out: &[u8]) -> Result<Vec<TreeEntry<'_>>, String> {
    let mut entries = Vec::new();
    for record in out.split(|&b| b == 0) {
        if record.is_empty() {
            continue;
        }
        let tab = record.iter().position(|&b| b == b'\t').ok_or_else(|| format!("no tab in {:?}", lossy(record)))?;
        let (meta, path) = (&record[..tab], &record[tab + 1..]);
        let meta = std::str::from_utf8(meta).map_err(|_| format!("non-UTF-8 entry {:?}", lossy(record)))?;
        let fields: Vec<&str> = meta.split_ascii_whitespace().collect();
        let (mode, kind, oid, size) = match fields[..] {
            [mode, kind, oid] => (mode, kind, oid, None),
            [mode, kind, oid, "-"] => (mode, kind, oid, None),
            [mode, kind, oid, size] => {
                (mode, kind, oid, Some(size.parse().map_err(|_| format!("bad size in {:?}", lossy(record)))?))
            }
            _ => return Err(format!("malformed entry {:?}", lossy(record))),
        };
        if !is_object_id(oid) || path.is_empty() {
            return Err(format!("malformed entry {:?}", lossy(record)));
        }
        entries.push(TreeEntry { mode, kind, oid, size, path });
    }
    Ok(entries)
}

/// Parses `%H%x00%s%x00%an%x00%ct`.
fn parse_commit(text: &str) -> Option<Commit> {
    let mut fields = text.split('\0');
    let (id, subject, author, time) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || !is_object_id(id) {
        return None;
    }
    Some(Commit { id: id.to_owned(), subject: subject.to_owned(), author: author.to_owned(), time: time.parse().ok()? })
}

/// Turns a folder path into the repository-relative form git trees use: `/` separated, no
/// leading `./`, no empty or `.` components, no trailing slash; `""` is the root.
fn normalize_path(path: &str) -> Result<String, GitError> {
    let invalid = |reason| GitError::InvalidPath { path: path.to_owned(), reason };
    if path.contains(['\0', '\n']) {
        return Err(invalid("it contains a NUL or newline"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("`..` components are not allowed")),
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

fn stderr_text_raw(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Git's stderr, or the exit status when it printed nothing.
fn stderr_text(out: &Output) -> String {
    let text = stderr_text_raw(out);
    if text.is_empty() { format!("failed with {}", out.status) } else { text }
}

#[cfg(unix)]
fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID_A: &str = "45b983be36b73c0788dc9cbcb76cbb80fc7bb057";
    const OID_B: &str = "df55a7dce59d040dc7819c1e241082965a80ebd9";

    #[test]
    fn parses_ls_tree_with_sizes() {
        let out = format!(
            "100644 blob {OID_A}       3\tmanifests/staging/app.yaml\0\
             100755 blob {OID_A} 4194304\tmanifests/staging/files/run.sh\0\
             120000 blob {OID_A}      11\tmanifests/staging/link\0\
             160000 commit {OID_B}       -\tmanifests/staging/vendor\0"
        );
        let entries = parse_ls_tree(out.as_bytes()).unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(
            entries[0],
            TreeEntry { mode: "100644", kind: "blob", oid: OID_A, size: Some(3), path: b"manifests/staging/app.yaml" }
        );
        assert_eq!(entries[1].size, Some(4_194_304));
        assert_eq!(entries[1].mode, "100755");
        assert_eq!(entries[2].mode, SYMLINK_MODE);
        assert_eq!(
            entries[3],
            TreeEntry { mode: "160000", kind: "commit", oid: OID_B, size: None, path: b"manifests/staging/vendor" }
        );
    }

    #[test]
    fn parses_ls_tree_without_sizes() {
        let out = format!("040000 tree {OID_B}\tmanifests/staging\0");
        let entries = parse_ls_tree(out.as_bytes()).unwrap();
        assert_eq!(
            entries,
            vec![TreeEntry { mode: "040000", kind: "tree", oid: OID_B, size: None, path: b"manifests/staging" }]
        );
    }

    #[test]
    fn ls_tree_paths_keep_tabs_spaces_newlines_and_non_utf8_bytes() {
        let mut out = format!("100644 blob {OID_A}       1\ta b/\u{e9}t\u{e9}\tx\ny.yaml\0").into_bytes();
        out.extend_from_slice(format!("100644 blob {OID_A}       1\tlatin1-").as_bytes());
        out.extend_from_slice(&[0xe9, 0]);
        let entries = parse_ls_tree(&out).unwrap();
        assert_eq!(entries[0].path, "a b/\u{e9}t\u{e9}\tx\ny.yaml".as_bytes());
        assert_eq!(entries[1].path, b"latin1-\xe9");
    }

    #[test]
    fn empty_ls_tree_output_is_no_entries() {
        assert!(parse_ls_tree(b"").unwrap().is_empty());
    }

    #[test]
    fn malformed_ls_tree_output_is_an_error() {
        assert!(parse_ls_tree(b"garbage\0").is_err());
        assert!(parse_ls_tree(b"100644 blob nothex\tpath\0").is_err());
        assert!(parse_ls_tree(format!("100644 blob {OID_A} 12x\tpath\0").as_bytes()).is_err());
        assert!(parse_ls_tree(format!("100644 blob {OID_A}\t\0").as_bytes()).is_err());
        assert!(parse_ls_tree(format!("100644 {OID_A}\tpath\0").as_bytes()).is_err());
    }

    #[test]
    fn parses_batch_headers() {
        assert_eq!(
            parse_batch_header(&format!("{OID_A} blob 12")),
            BatchHeader::Object { oid: OID_A, kind: "blob", size: 12 }
        );
        assert_eq!(parse_batch_header(&format!("{OID_A} missing")), BatchHeader::Missing);
        assert_eq!(parse_batch_header("HEAD:x ambiguous"), BatchHeader::Other);
        assert_eq!(parse_batch_header(&format!("{OID_A} blob big")), BatchHeader::Other);
    }

    #[test]
    fn parses_commit_lines() {
        let commit = parse_commit(&format!("{OID_A}\0fix: the thing\0Jane Doe\01700000000")).unwrap();
        assert_eq!(
            commit,
            Commit {
                id: OID_A.into(),
                subject: "fix: the thing".into(),
                author: "Jane Doe".into(),
                time: 1_700_000_000
            }
        );
        assert!(parse_commit("nope").is_none());
        assert!(parse_commit(&format!("{OID_A}\0s\0a\0notanumber")).is_none());
    }

    /// A child that looks alive but whose output is closed: the exchange fails with an I/O
    /// error and is retried once on a freshly spawned `git cat-file --batch`.
    #[tokio::test]
    async fn a_broken_but_running_child_is_replaced_and_the_read_retried() {
        let tmp = tempfile::TempDir::new().unwrap();
        let root = tmp.path();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(root)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        git(&["init", "-q"]);
        std::fs::create_dir(root.join("m")).unwrap();
        std::fs::write(root.join("m/a.yaml"), "a: 1\n").unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "one"]);

        let repo = GitRepo::open(root).await.unwrap();
        let mut impostor = tokio::process::Command::new("sh");
        impostor
            .args(["-c", "exec >&-; exec sleep 30"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = impostor.spawn().unwrap();
        let impostor_pid = child.id();
        let cat = CatFile {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            stderr: child.stderr.take().unwrap(),
            child,
        };
        *repo.cat_file.lock().await = Some(cat);

        let tree = repo.read_tree("HEAD", "m", "m").await.unwrap();
        assert_eq!(&*tree.files["a.yaml"], b"a: 1\n");
        let pid = repo.cat_file_pid().await;
        assert!(pid.is_some() && pid != impostor_pid);
    }

    #[test]
    fn normalizes_folder_paths() {
        assert_eq!(normalize_path("").unwrap(), "");
        assert_eq!(normalize_path(".").unwrap(), "");
        assert_eq!(normalize_path("./").unwrap(), "");
        assert_eq!(normalize_path("manifests/staging").unwrap(), "manifests/staging");
        assert_eq!(normalize_path("./manifests//staging/").unwrap(), "manifests/staging");
        assert_eq!(normalize_path("/manifests/staging").unwrap(), "manifests/staging");
        assert!(matches!(normalize_path("manifests/../etc"), Err(GitError::InvalidPath { .. })));
        assert!(matches!(normalize_path("a\nb"), Err(GitError::InvalidPath { .. })));
    }
}
