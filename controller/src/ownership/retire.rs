//! A renamed Stack: which stack names this controller managed (`<state dir>/stacks.json`) and
//! the removal of the old name's containers. Containers are found by their stack label, so
//! after `metadata.name` changes the controller would never look at the old ones again: they
//! would keep running unmanaged, holding their host ports. So the old name is remembered, and
//! once the new stack runs (every service `Synced`, or waiting only for a host port the old
//! stack holds) the old stack's containers are stopped and removed, under the old stack's
//! lease (never one another live controller holds). Its volumes are never removed (data), nor
//! its networks (a network in use elsewhere cannot be removed, and an empty one costs nothing).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use meme_api::status::{Phase, Reason};
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::docker::labels;
use crate::events::EventType;

/// The record's file in the state directory.
const FILE: &str = "stacks.json";

/// Docker's own default grace period, for a container without the label.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// The stack the manifests name now.
    current: Option<String>,
    /// Old names whose containers are still to be removed.
    #[serde(default)]
    retiring: BTreeSet<String>,
}

/// The stack names this controller managed, kept across restarts.
#[derive(Debug)]
pub struct Stacks {
    file: Option<PathBuf>,
    record: Mutex<Record>,
}

impl Stacks {
    /// Kept in memory only.
    #[must_use]
    pub fn in_memory() -> Self {
        Self { file: None, record: Mutex::default() }
    }

    /// Loads the record of `state_dir` (an unreadable one is started afresh, with a warning).
    #[must_use]
    pub fn load(state_dir: &Path) -> Self {
        let file = state_dir.join(FILE);
        let record = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "unreadable stack record; starting afresh");
                Record::default()
            }),
            Err(_) => Record::default(),
        };
        Self { file: Some(file), record: Mutex::new(record) }
    }

    /// Records that the manifests name `stack`; returns the name it replaces when the Stack
    /// was renamed (that one is retired from now on).
    pub fn set_current(&self, stack: &str) -> Option<String> {
        let mut record = Context::lock(&self.record);
        if record.current.as_deref() == Some(stack) {
            return None;
        }
        let previous = record.current.replace(stack.to_owned());
        record.retiring.remove(stack);
        if let Some(previous) = &previous {
            record.retiring.insert(previous.clone());
        }
        self.save(&record);
        previous
    }

    /// The old names still to retire.
    #[must_use]
    pub fn retiring(&self) -> Vec<String> {
        Context::lock(&self.record).retiring.iter().cloned().collect()
    }

    fn retired(&self, stack: &str) {
        let mut record = Context::lock(&self.record);
        if record.retiring.remove(stack) {
            self.save(&record);
        }
    }

    /// Writes the record (a temporary file renamed over the old one, so a crash leaves one or
    /// the other).
    fn save(&self, record: &Record) {
        let Some(file) = &self.file else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = file.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, file)
        };
        if let Err(e) = write() {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the stack record");
        }
    }
}

/// Whether the stack in force runs: its revision applied and judged, every service `Synced`
/// or held up only by a host port (which may be the old stack's).
fn current_stack_runs(ctx: &Context) -> bool {
    let Some(desired) = ctx.desired() else { return false };
    ctx.with_status(|s| {
        if s.applied.as_ref().map(|a| a.revision.as_str()) != Some(desired.revision.as_str()) {
            return false;
        }
        desired.services.keys().all(|name| {
            s.services.iter().any(|x| {
                &x.name == name
                    && x.revision == desired.revision
                    && (x.phase == Phase::Synced
                        || x.conditions.iter().any(|c| c.holds() && c.reason == Reason::PortConflict.as_str()))
            })
        })
    })
}

/// Removes the containers of every old stack name once the current stack runs. Returns
/// whether any container was removed.
pub async fn retire_old_stacks(ctx: &Context) -> bool {
    let retiring = ctx.ownership.stacks.retiring();
    if retiring.is_empty() || !current_stack_runs(ctx) {
        return false;
    }
    let mut removed_any = false;
    for old in retiring {
        if let Err(refusal) = ctx.ownership.claim(&old) {
            ctx.events.record(
                EventType::Warning,
                "StackNotRetired",
                None,
                format!("the Stack was renamed from {old}, but {old} is not this controller's to remove: {refusal}"),
            );
            ctx.ownership.stacks.retired(&old);
            continue;
        }
        match retire(ctx, &old).await {
            Ok(count) => {
                ctx.ownership.release(&old);
                ctx.ownership.stacks.retired(&old);
                removed_any |= count > 0;
                ctx.events.record(
                    EventType::Normal,
                    "StackRetired",
                    None,
                    format!(
                        "removed the {count} container(s) of {old}, the Stack's old name; its volumes and networks \
                         are kept (docker volume ls --filter label={}={old})",
                        labels::STACK
                    ),
                );
            }
            Err(e) => {
                tracing::warn!(stack = %old, error = %e, "cannot remove the old stack's containers yet; will retry")
            }
        }
    }
    removed_any
}

/// Stops and removes every container of `stack`; how many there were.
async fn retire(ctx: &Context, stack: &str) -> Result<usize, crate::docker::EngineError> {
    let containers = ctx.engine.list_containers(&labels::stack_filter(stack)).await?;
    let count = containers.len();
    let removals = containers.iter().map(|c| async move {
        let grace =
            c.label(labels::STOP_GRACE_MS).and_then(|ms| ms.parse().ok()).map_or(DEFAULT_GRACE, Duration::from_millis);
        ctx.engine.stop_container(&c.id, grace).await?;
        ctx.engine.remove_container(&c.id).await?;
        tracing::info!(stack, container = %c.name, "removed a container of the old stack name");
        Ok::<(), crate::docker::EngineError>(())
    });
    futures_util::future::try_join_all(removals).await?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_should_remember_renames_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let stacks = Stacks::load(dir.path());
        assert_eq!(stacks.set_current("a"), None, "the first stack is no rename");
        assert_eq!(stacks.set_current("a"), None);
        assert_eq!(stacks.set_current("b"), Some("a".to_owned()));
        let again = Stacks::load(dir.path());
        assert_eq!(again.retiring(), ["a"]);
        // Renamed back before the old one was retired: the name in force is never retired.
        assert_eq!(again.set_current("a"), Some("b".to_owned()));
        assert_eq!(again.retiring(), ["b"]);
        again.retired("b");
        assert!(Stacks::load(dir.path()).retiring().is_empty());
    }
}
