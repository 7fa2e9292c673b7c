//! What a checkout is in the middle of: a rebase, merge, bisect, cherry-pick, revert or `git am`
//! moves `HEAD` through commits nobody meant to deploy (a bisect checks out old ones, a rebase
//! stops on half-rewritten ones). Told by the state files git keeps in the worktree's own git
//! dir while the operation runs, as `git status` tells it.

use std::fmt;
use std::path::Path;

/// An operation in progress in a checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `git rebase` (interactive or not).
    Rebase,
    /// `git am` applying a mailbox.
    Am,
    /// `git merge` waiting for its commit (after conflicts or `--no-commit`).
    Merge,
    /// `git bisect`.
    Bisect,
    /// `git cherry-pick`.
    CherryPick,
    /// `git revert`.
    Revert,
}

impl Operation {
    /// The files (or folders) in the worktree's git dir whose presence means an operation is
    /// in progress; the source's watcher wakes on their appearance and removal.
    pub const MARKERS: [&'static str; 7] =
        ["rebase-merge", "rebase-apply", "MERGE_HEAD", "BISECT_START", "CHERRY_PICK_HEAD", "REVERT_HEAD", "sequencer"];

    /// The operation in progress in the worktree whose git dir is `git_dir`, if any.
    #[must_use]
    pub fn in_progress(git_dir: &Path) -> Option<Self> {
        let has = |name: &str| git_dir.join(name).exists();
        if has("rebase-merge") {
            Some(Self::Rebase)
        } else if has("rebase-apply") {
            // `git am` and the old apply backend of rebase share the folder; am leaves `applying`.
            Some(if has("rebase-apply/applying") { Self::Am } else { Self::Rebase })
        } else if has("MERGE_HEAD") {
            Some(Self::Merge)
        } else if has("BISECT_START") {
            Some(Self::Bisect)
        } else if has("CHERRY_PICK_HEAD") {
            Some(Self::CherryPick)
        } else if has("REVERT_HEAD") {
            Some(Self::Revert)
        } else if has("sequencer") {
            // A multi-commit cherry-pick or revert between two of its steps: the todo says which.
            let todo = std::fs::read_to_string(git_dir.join("sequencer/todo")).unwrap_or_default();
            Some(if todo.starts_with("revert") { Self::Revert } else { Self::CherryPick })
        } else {
            None
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rebase => "rebase",
            Self::Am => "git am",
            Self::Merge => "merge",
            Self::Bisect => "bisect",
            Self::CherryPick => "cherry-pick",
            Self::Revert => "revert",
        })
    }
}
