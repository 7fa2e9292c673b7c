//! `memectl rollback [REV] [--repo DIR] [--path DIR] [--push [--remote NAME]] [--yes] [--dry-run]`:
//! a new commit in the checkout that takes the manifests back, never a rewrite of history.
//!
//! - Without REV: `git revert` of the last commit that changed the manifests folder.
//! - With REV: one commit that makes the folder exactly what it was at REV (files added since
//!   are removed); nothing outside the folder changes.
//!
//! It refuses (exit 1) a dirty work tree, a merge/revert/cherry-pick/rebase/bisect in progress,
//! and a result whose manifests do not validate (printing the diagnostics), and prints what the
//! controller will change, per service and field, before committing. `--push` then pushes the
//! branch (`git push REMOTE HEAD`); a failed push exits 2 with git's message.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use meme_api::{Diagnostics, ManifestSet};

use crate::changes;
use crate::cli::{CheckError, Global, Outcome};
use crate::color::Paint;
use crate::commit;
use crate::output;
use crate::repo::{self, Repo, RepoArgs};

/// Flags of `rollback`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The rollback is an ordinary commit on the checkout's current branch: the controller applies it
like any other (at once when it watches this checkout, after --push when it follows a remote),
and `git revert` undoes it. Commits use your git identity; one is made up only when none is
configured. Confirmation is asked on a terminal; without one (a pipe, CI) the rollback is refused
unless --yes is given (exit 1, nothing committed).")]
pub struct Args {
    /// Restore the manifests folder exactly as it was at this revision, in one new commit
    /// (default: revert the last commit that changed it).
    #[arg(value_name = "REV")]
    rev: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
    /// Push the branch afterwards (`git push REMOTE HEAD`).
    #[arg(long)]
    push: bool,
    /// The remote to push to (default: the branch's upstream remote, else `origin`).
    #[arg(long, value_name = "NAME", requires = "push")]
    remote: Option<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Validate and show what would change, then stop: nothing is committed.
    #[arg(long, conflicts_with = "push")]
    dry_run: bool,
}

/// Runs `rollback`.
///
/// # Errors
/// A refusal (exit 1: dirty tree, operation in progress, invalid result, conflicts) or a
/// failure (exit 2: not a checkout, git failed, the push failed).
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let repo = Repo::open(args.repo.repo.as_deref()).await?;
    anyhow::ensure!(repo.work_tree, "{} has no work tree: rollback commits in a checkout", repo.root.display());
    let status = match args.repo.path {
        Some(_) => None,
        None => repo::controller_status(global).await,
    };
    let path = repo.manifests_path(args.repo.path.as_deref(), status.as_ref())?;
    commit::preflight(&repo, "roll back").await?;
    let head = repo.resolve("HEAD").await?;
    let push =
        if args.push { Some(commit::push_target(&repo, args.remote.as_deref(), "roll back").await?) } else { None };
    let before = repo.tree_at(&head, &path).await?.map(|tree| meme_api::load(&tree));
    let plan = Plan { repo: &repo, path: &path, head: &head, before: before.as_ref(), args };
    let committed = match &args.rev {
        Some(rev) => plan.restore(rev).await?,
        None => plan.revert().await?,
    };
    let Some(commit) = committed else { return Ok(Outcome::Success) };
    let short = repo::short(&commit);
    if let Some((remote, branch)) = push {
        repo.git
            .push(&remote, "HEAD")
            .await
            .with_context(|| format!("the rollback is committed as {short} on {branch}, but was not pushed"))?;
        output::print(&format!("Pushed {branch} to {remote}.\n"))?;
    } else {
        output::print(&format!("Follow the rollout with: memectl wait --for synced --revision {short}\n"))?;
    }
    Ok(Outcome::Success)
}

/// One rollback being prepared.
struct Plan<'a> {
    repo: &'a Repo,
    path: &'a str,
    head: &'a str,
    before: Option<&'a Result<ManifestSet, Diagnostics>>,
    args: &'a Args,
}

impl Plan<'_> {
    /// Restores the folder to REV in one commit; the new commit id, or `None` when nothing was
    /// committed.
    async fn restore(&self, rev: &str) -> anyhow::Result<Option<String>> {
        let target = self.repo.commit(rev).await?;
        let short = repo::short(&target.id);
        let shown = repo::pathspec(self.path);
        let Some(tree) = self.repo.tree_at(&target.id, self.path).await? else {
            return Err(CheckError(format!("refusing to roll back: {shown} does not exist at {rev} ({short})")).into());
        };
        let now = self.repo.reader.tree_id(self.head, self.path).await?;
        let then = self.repo.reader.tree_id(&target.id, self.path).await?;
        if now.is_some() && now == then {
            output::print(&format!("{shown} is already as it was at {short}: nothing to roll back.\n"))?;
            return Ok(None);
        }
        let after = self.validated(meme_api::load(&tree), &format!("{shown} at {short}"))?;
        output::print(&format!("Rolling back {shown} to {short} ({:?}).\n", target.subject))?;
        self.preview(&after)?;
        if !self.go_ahead().await? {
            return Ok(None);
        }
        let message = format!("rollback {shown} to {short}: {}", target.subject);
        // The tree was clean: on any failure from here, resetting to HEAD undoes exactly what
        // this command did.
        let mut guard = Undo::new(&self.repo.root, &["reset", "-q", "--hard", "HEAD"]);
        // No overlay: files of the folder that REV does not have are removed too.
        self.repo.git.run(["checkout", "--no-overlay", &target.id, "--", shown]).await?;
        let mut commit = commit::identity(self.repo).await?;
        commit.extend(["commit", "-q", "-m", &message].map(str::to_owned));
        self.repo.git.run(&commit).await?;
        guard.disarm();
        self.committed().await.map(Some)
    }

    /// Reverts the last commit that changed the folder; the new commit id, or `None`.
    async fn revert(&self) -> anyhow::Result<Option<String>> {
        let shown = repo::pathspec(self.path);
        let Some(last) = self.repo.last_change(self.head, self.path).await? else {
            return Err(CheckError(format!(
                "refusing to roll back: no commit of HEAD changes {shown}; nothing to revert"
            ))
            .into());
        };
        let short = repo::short(&last.id);
        let parents = self.repo.git.run(["rev-list", "--parents", "-n", "1", &last.id]).await?;
        let parents = parents.split_whitespace().count().saturating_sub(1);
        let outside = self.changed_outside(&last.id, parents).await?;
        let mut revert = vec!["revert", "--no-commit"];
        if parents > 1 {
            revert.extend(["-m", "1"]);
        }
        revert.push(last.id.as_str());
        let out = self.repo.git.output(&revert).await?;
        let mut guard = Undo::new(&self.repo.root, &["revert", "--abort"]);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // git's "hint:" lines explain how to finish the revert by hand; it is aborted here.
            let stderr: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("hint:")).collect();
            let stderr = stderr.join("\n");
            return Err(CheckError(format!(
                "refusing to roll back: {short} ({:?}) does not revert cleanly: {stderr}\n\
                 restore an earlier revision instead: memectl rollback REV (see memectl history)",
                last.subject
            ))
            .into());
        }
        let tree = self.repo.git.run(["write-tree"]).await?.trim().to_owned();
        if self.repo.reader.tree_id(self.head, "").await?.as_deref() == Some(tree.as_str()) {
            output::print(&format!("Reverting {short} changes nothing: nothing to roll back.\n"))?;
            return Ok(None);
        }
        let Some(after) = self.repo.tree_at(&tree, self.path).await? else {
            return Err(CheckError(format!("refusing to roll back: reverting {short} would remove {shown}")).into());
        };
        let after = self.validated(meme_api::load(&after), &format!("{shown} after reverting {short}"))?;
        output::print(&format!("Reverting {short} ({:?}), the last commit that changed {shown}.\n", last.subject))?;
        if !outside.is_empty() {
            output::print(&format!(
                "note: {short} also changed files outside {shown}; the revert undoes them too: {}\n",
                outside.join(", ")
            ))?;
        }
        self.preview(&after)?;
        if !self.go_ahead().await? {
            return Ok(None);
        }
        let mut commit = commit::identity(self.repo).await?;
        commit.extend(["commit", "-q", "--no-edit"].map(str::to_owned));
        self.repo.git.run(&commit).await?;
        guard.disarm();
        self.committed().await.map(Some)
    }

    /// The files a commit changed outside the folder (against its first parent).
    async fn changed_outside(&self, commit: &str, parents: usize) -> anyhow::Result<Vec<String>> {
        let out = if parents == 0 {
            self.repo.git.run(["diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "-z", commit]).await?
        } else {
            let parent = format!("{commit}^1");
            self.repo.git.run(["diff", "--name-only", "-z", &parent, commit, "--"]).await?
        };
        let prefix = format!("{}/", self.path);
        Ok(out
            .split('\0')
            .filter(|f| !f.is_empty() && !self.path.is_empty() && !f.starts_with(&prefix))
            .map(str::to_owned)
            .collect())
    }

    /// The set, or a refusal after printing its diagnostics.
    fn validated(&self, loaded: Result<ManifestSet, Diagnostics>, what: &str) -> anyhow::Result<ManifestSet> {
        match loaded {
            Ok(set) => Ok(set),
            Err(diagnostics) => {
                eprint!("{diagnostics}");
                let n = diagnostics.error_count();
                Err(CheckError(format!(
                    "refusing to roll back: the manifests of {what} are invalid ({n} error{}); the controller would not apply them",
                    if n == 1 { "" } else { "s" }
                ))
                .into())
            }
        }
    }

    /// Prints what the controller will change.
    fn preview(&self, after: &ManifestSet) -> anyhow::Result<()> {
        let paint = Paint::for_stdout();
        let text = match self.before {
            Some(Ok(before)) => {
                let report = changes::compare_sets(before, after);
                if report.is_equal() {
                    "The services stay as they are (only files no service uses change).\n".to_owned()
                } else {
                    format!("The controller will change:\n{}", report.render(&after.stack.object.metadata.name, paint))
                }
            }
            Some(Err(_)) => "The manifests at HEAD are invalid (the controller keeps running its last valid \
                             revision); after the rollback they are valid again.\n"
                .to_owned(),
            None => format!("{} does not exist at HEAD; the rollback brings it back.\n", repo::pathspec(self.path)),
        };
        output::print(&text)?;
        Ok(())
    }

    /// Whether to commit: not for `--dry-run`; asked on a terminal unless `--yes`.
    async fn go_ahead(&self) -> anyhow::Result<bool> {
        if self.args.dry_run {
            output::print("Dry run: nothing committed.\n")?;
            return Ok(false);
        }
        if self.args.yes {
            return Ok(true);
        }
        // No terminal to ask on (a pipe, CI): refuse rather than take `echo n |` as a yes, as
        // apt-get and terraform do. What would change was printed above.
        if !std::io::stdin().is_terminal() {
            return Err(CheckError(
                "refusing to roll back without confirmation: stdin is not a terminal; nothing committed \
                 (pass --yes to commit without asking, or --dry-run to only show the change)"
                    .into(),
            )
            .into());
        }
        if confirm("Commit this rollback?").await? {
            Ok(true)
        } else {
            Err(CheckError("rollback cancelled; nothing committed".into()).into())
        }
    }

    /// Prints the new commit and returns its id.
    async fn committed(&self) -> anyhow::Result<String> {
        let commit = self.repo.commit("HEAD").await?;
        let branch = self.repo.reader.current_branch().await?.unwrap_or_else(|| "detached HEAD".to_owned());
        output::print(&format!("Committed {} on {branch}: {}\n", repo::short(&commit.id), commit.subject))?;
        Ok(commit.id)
    }
}

/// Asks `question [y/N]` on stderr and reads the answer from stdin; Ctrl-C is a no. The read
/// runs on a plain thread so that an unanswered prompt never keeps the process alive.
async fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
    });
    let answer = tokio::select! {
        answer = rx => answer.context("cannot read the answer")?.context("cannot read the answer")?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!();
            return Ok(false);
        }
    };
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Undoes a half-done rollback when dropped armed (any early return or error): runs a git
/// command synchronously, since a destructor cannot await.
struct Undo {
    dir: PathBuf,
    args: Vec<String>,
    armed: bool,
}

impl Undo {
    fn new(dir: &Path, args: &[&str]) -> Self {
        Self { dir: dir.to_path_buf(), args: args.iter().map(|a| (*a).to_owned()).collect(), armed: true }
    }

    /// The rollback was committed: nothing to undo.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let result = meme_git::std_command(&self.dir, &self.args).output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: could not undo the half-done rollback (git {}): {}",
                self.args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => eprintln!("warning: could not undo the half-done rollback (git {}): {e}", self.args.join(" ")),
        }
    }
}
