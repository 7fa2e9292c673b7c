//! What the verbs that commit to the checkout share (`rollback`, `set image`): refusing to work
//! on a dirty tree or during a merge, rebase, ...; the remote and branch `--push` goes to,
//! checked before anything is committed; and the committer identity when none is configured.

use std::path::Path;

use crate::cli::CheckError;
use crate::repo::Repo;

/// Identity used only when the repository has none configured (no `user.name`/`user.email`
/// in git's configuration or environment).
const FALLBACK_NAME: &str = "memectl";
const FALLBACK_EMAIL: &str = "memectl@localhost";

/// Refuses to work on top of uncommitted changes or an operation in progress.
///
/// # Errors
/// A refusal ([`CheckError`], exit 1) naming what is in progress or listing the changes, or
/// git failed.
pub async fn preflight(repo: &Repo, refusing_to: &str) -> anyhow::Result<()> {
    let (git_dir, _) = repo.reader.git_dirs().await?;
    let in_progress = [
        ("MERGE_HEAD", "a merge", "git merge --abort"),
        ("REVERT_HEAD", "a revert", "git revert --abort"),
        ("CHERRY_PICK_HEAD", "a cherry-pick", "git cherry-pick --abort"),
        ("rebase-merge", "a rebase", "git rebase --abort"),
        ("rebase-apply", "a rebase or am", "git rebase --abort"),
        ("sequencer", "a revert or cherry-pick sequence", "git revert --abort"),
        ("BISECT_LOG", "a bisect", "git bisect reset"),
    ];
    for (file, what, abort) in in_progress {
        if git_dir.join(file).exists() {
            return Err(CheckError(format!(
                "refusing to {refusing_to}: {what} is in progress in {} ({file}); finish it or abort it ({abort}) first",
                repo.root.display()
            ))
            .into());
        }
    }
    let status = repo.git.run(["status", "--porcelain", "--untracked-files=all"]).await?;
    if !status.trim().is_empty() {
        let lines: Vec<&str> = status.lines().collect();
        let mut listing: Vec<String> = lines.iter().take(10).map(|l| format!("  {l}")).collect();
        if lines.len() > 10 {
            listing.push(format!("  ... and {} more", lines.len() - 10));
        }
        return Err(CheckError(format!(
            "refusing to {refusing_to}: the work tree of {} has uncommitted changes; commit or stash them first:\n{}",
            repo.root.display(),
            listing.join("\n")
        ))
        .into());
    }
    Ok(())
}

/// The remote and branch `--push` will use, checked before anything is committed.
///
/// # Errors
/// A refusal (detached HEAD, no such remote) or git failed.
pub async fn push_target(repo: &Repo, remote: Option<&str>, refusing_to: &str) -> anyhow::Result<(String, String)> {
    let Some(branch) = repo.reader.current_branch().await? else {
        return Err(
            CheckError(format!("refusing to {refusing_to}: HEAD is detached, and --push needs a branch")).into()
        );
    };
    let remote = match remote {
        Some(remote) => remote.to_owned(),
        None => {
            let key = format!("branch.{branch}.remote");
            let out = repo.git.output(["config", "--get", &key]).await?;
            let upstream = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !upstream.is_empty() && upstream != "." { upstream } else { "origin".to_owned() }
        }
    };
    let remotes = repo.git.run(["remote"]).await?;
    let url_like = remote.contains(['/', ':']) || Path::new(&remote).exists();
    if !remotes.lines().any(|r| r == remote) && !url_like {
        return Err(CheckError(format!(
            "refusing to {refusing_to}: no git remote named {remote:?} to push to (add one with git remote add, or pass --remote NAME)"
        ))
        .into());
    }
    Ok((remote, branch))
}

/// `-c user.name=…`/`-c user.email=…` for what the repository does not configure (neither in
/// git's configuration nor in its environment variables), so the user's identity is used
/// whenever there is one.
///
/// # Errors
/// Git cannot run.
pub async fn identity(repo: &Repo) -> anyhow::Result<Vec<String>> {
    let mut args = Vec::new();
    let keys: [(&str, &[&str], &str); 2] = [
        ("user.name", &["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"], FALLBACK_NAME),
        ("user.email", &["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "EMAIL"], FALLBACK_EMAIL),
    ];
    for (key, vars, fallback) in keys {
        if vars.iter().any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty())) {
            continue;
        }
        let out = repo.git.output(["config", "--get", key]).await?;
        if !out.status.success() || out.stdout.trim_ascii().is_empty() {
            args.push("-c".to_owned());
            args.push(format!("{key}={fallback}"));
        }
    }
    Ok(args)
}
