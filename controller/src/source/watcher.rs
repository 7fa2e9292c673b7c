//! Change detection on the repository: notify (inotify) with notify-debouncer-full on the git
//! dir (non-recursive: `HEAD`, `packed-refs`, `FETCH_HEAD`) and `refs/` (recursive), never
//! `objects/`. Any relevant event asks the source to re-resolve the ref; the event's details are
//! not trusted. Access events and `*.lock` files are ignored. A watch error or an event overflow
//! asks for a full check and re-arms the watch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::{mpsc, watch};

use crate::source::Trigger;

/// Events within this window are delivered together: a commit touches several files in a few
/// milliseconds, and the goal is commit → reconcile started within 50 ms.
const DEBOUNCE: Duration = Duration::from_millis(10);
/// Pause before re-arming a watch that failed.
const REARM_DELAY: Duration = Duration::from_secs(1);

/// The files directly in a git dir whose change can move a ref.
const GIT_DIR_FILES: [&str; 4] = ["HEAD", "packed-refs", "FETCH_HEAD", "ORIG_HEAD"];

/// Whether an event path can mean a ref moved.
fn relevant(path: &Path, git_dir: &Path, common_dir: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "lock") {
        return false;
    }
    if path.starts_with(common_dir.join("refs")) {
        return true;
    }
    let in_git_dir = path.parent().is_some_and(|p| p == git_dir || p == common_dir);
    in_git_dir && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| GIT_DIR_FILES.contains(&n))
}

/// Watches until `shutdown`, sending [`Trigger::Check`] on relevant changes. Re-arms the watch
/// after errors.
pub async fn run(
    git_dir: PathBuf,
    common_dir: PathBuf,
    triggers: mpsc::Sender<Trigger>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (failed_tx, mut failed) = mpsc::channel::<String>(1);
        let armed = arm(&git_dir, &common_dir, triggers.clone(), failed_tx);
        let _debouncer = match armed {
            Ok(d) => {
                tracing::debug!(git_dir = %git_dir.display(), "watching refs");
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, git_dir = %git_dir.display(), "cannot watch the repository; relying on the resync");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(REARM_DELAY * 10) => continue,
                }
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            Some(why) = failed.recv() => {
                tracing::warn!(error = %why, "repository watch failed; re-arming it after a full check");
                let _ = triggers.try_send(Trigger::Check);
            }
        }
        tokio::time::sleep(REARM_DELAY).await;
    }
}

type Debouncer = notify_debouncer_full::Debouncer<notify::RecommendedWatcher, notify_debouncer_full::RecommendedCache>;

fn arm(
    git_dir: &Path,
    common_dir: &Path,
    triggers: mpsc::Sender<Trigger>,
    failed: mpsc::Sender<String>,
) -> notify::Result<Debouncer> {
    let (g, c) = (git_dir.to_path_buf(), common_dir.to_path_buf());
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| match result {
        Ok(events) => {
            let rescan = events.iter().any(|e| e.need_rescan());
            let moved = events
                .iter()
                .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                .any(|e| e.paths.iter().any(|p| relevant(p, &g, &c)));
            if rescan || moved {
                // A full channel already holds a pending check: nothing is lost.
                let _ = triggers.try_send(Trigger::Check);
            }
        }
        Err(errors) => {
            let _ = failed.try_send(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
        }
    })?;
    debouncer.watch(git_dir, RecursiveMode::NonRecursive)?;
    if common_dir != git_dir {
        debouncer.watch(common_dir, RecursiveMode::NonRecursive)?;
    }
    let refs = common_dir.join("refs");
    debouncer.watch(&refs, RecursiveMode::Recursive)?;
    Ok(debouncer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ref_paths_should_count() {
        let g = Path::new("/r/.git");
        assert!(relevant(Path::new("/r/.git/HEAD"), g, g));
        assert!(relevant(Path::new("/r/.git/packed-refs"), g, g));
        assert!(relevant(Path::new("/r/.git/refs/heads/main"), g, g));
        assert!(relevant(Path::new("/r/.git/refs/remotes/origin/main"), g, g));
        assert!(!relevant(Path::new("/r/.git/refs/heads/main.lock"), g, g));
        assert!(!relevant(Path::new("/r/.git/index"), g, g));
        assert!(!relevant(Path::new("/r/.git/objects/ab/cdef"), g, g));
        // A worktree: HEAD in its own git dir, refs in the common dir.
        let wt = Path::new("/r/.git/worktrees/w");
        assert!(relevant(Path::new("/r/.git/worktrees/w/HEAD"), wt, g));
        assert!(relevant(Path::new("/r/.git/refs/heads/w"), wt, g));
    }
}
