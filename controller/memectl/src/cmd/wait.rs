//! `memectl wait --for synced|ready [--revision REV] [--timeout D] [--interval D]`: polls
//! `/api/v1/status` until the condition holds (exit 0), it times out or the stack is Degraded
//! (exit 1, saying why). Progress goes to stderr, one line each time it changes.

use std::fmt;
use std::time::Duration;

use meme_api::status::{ControllerStatus, SyncStatus};
use tokio::time::Instant;

use crate::cli::{CheckError, Global, Outcome};
use crate::client::Client;
use crate::output;
use crate::render;

/// Flags of `wait`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
With --revision, a Degraded status is only final once that revision is applied (the controller
may not have seen the push yet), and a revision that fails validation fails the wait at once.")]
pub struct Args {
    /// What to wait for: `synced` (sync status Synced) or `ready` (every service has all its
    /// replicas ready).
    #[arg(long = "for", value_enum, value_name = "CONDITION")]
    condition: Condition,
    /// Also require this revision to be applied (a full or short commit id).
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    /// Give up after this long (`90s`, `5m`).
    #[arg(long, value_name = "D", default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Time between two polls.
    #[arg(long, value_name = "D", default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

/// The condition waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Condition {
    /// Sync status Synced.
    Synced,
    /// Every service has ready replicas == desired replicas.
    Ready,
}

/// What `wait` waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goal {
    /// The condition.
    pub condition: Condition,
    /// A revision (prefix) that must be the applied one.
    pub revision: Option<String>,
    /// A time (unix seconds) the last reconcile must not predate: `reconcile --wait` sets it
    /// so the Synced seen before the controller picked up the request does not count.
    pub since: Option<i64>,
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.condition {
            Condition::Synced => "synced",
            Condition::Ready => "ready",
        })?;
        if let Some(revision) = &self.revision {
            write!(f, " at {revision}")?;
        }
        Ok(())
    }
}

/// One look at the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The goal holds; the line to print.
    Met(String),
    /// It never will without a new commit: why.
    Failed(String),
    /// Not yet: a one-line summary of where things stand.
    Pending(String),
}

/// Runs `wait`.
///
/// # Errors
/// The controller cannot be reached at the first poll (exit 2), the wait timed out or the
/// stack is Degraded (exit 1), or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let goal = Goal { condition: args.condition, revision: args.revision.clone(), since: None };
    wait(&global.client()?, &goal, args.timeout, args.interval).await
}

/// Polls until `goal` holds, fails, or `timeout` passes. The controller being unreachable at
/// the first poll is an error; later (a restart) it is only reported, and polling goes on.
///
/// # Errors
/// See [`run`].
pub async fn wait(client: &Client, goal: &Goal, timeout: Duration, interval: Duration) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut first = true;
    loop {
        let progress = match client.status().await {
            Ok(status) => match judge(&status, goal) {
                Verdict::Met(line) => {
                    output::print(&format!("{line}\n"))?;
                    return Ok(Outcome::Success);
                }
                Verdict::Failed(why) => return Err(CheckError(why).into()),
                Verdict::Pending(progress) => progress,
            },
            Err(e) if first => return Err(e.into()),
            Err(e) => e.to_string(),
        };
        first = false;
        if progress != last {
            eprintln!("waiting for {goal}: {progress}");
            last = progress;
        }
        let now = Instant::now();
        if now >= deadline {
            let waited = humantime::format_duration(timeout);
            return Err(CheckError(format!("timed out after {waited} waiting for {goal} (last: {last})")).into());
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
    }
}

/// Whether `status` meets `goal`, can no longer meet it, or not yet.
#[must_use]
pub fn judge(status: &ControllerStatus, goal: &Goal) -> Verdict {
    let applied = status.applied.as_ref().map_or("", |a| a.revision.as_str());
    let wanted = goal.revision.as_deref().map(str::to_ascii_lowercase);
    let at_revision = wanted.as_deref().is_none_or(|rev| !applied.is_empty() && applied.starts_with(rev));
    let reconciled = goal.since.is_none_or(|since| {
        status.services.is_empty() || status.last_reconcile.as_ref().is_some_and(|last| last.time >= since)
    });

    if status.sync_status == SyncStatus::Degraded && at_revision && reconciled {
        return Verdict::Failed(degraded(status));
    }
    if let (Some(rev), Some(tip), Some(error)) = (&wanted, &status.source.tip, &status.source.error)
        && tip.revision.starts_with(rev.as_str())
    {
        return Verdict::Failed(format!("revision {rev} will not be applied:\n{}", error.trim_end()));
    }
    let not_ready: Vec<String> = status
        .services
        .iter()
        .filter(|s| s.ready_replicas != s.desired_replicas)
        .map(|s| format!("{} {}", s.name, render::ready_ratio(s)))
        .collect();
    let met = at_revision
        && reconciled
        && match goal.condition {
            Condition::Synced => status.sync_status == SyncStatus::Synced,
            Condition::Ready => not_ready.is_empty(),
        };
    if met {
        let at = status.applied.as_ref().map_or_else(
            || render::NONE.to_owned(),
            |a| format!("{} {:?}", render::short_revision(&a.revision), a.subject),
        );
        return Verdict::Met(match goal.condition {
            Condition::Synced => format!("synced at {at}"),
            Condition::Ready => format!("ready: {} services at {at}", status.services.len()),
        });
    }

    let mut progress = format!("{} at {}", status.sync_status.as_str(), render::short_revision(applied));
    if let Some(tip) = &status.source.tip
        && tip.revision != applied
    {
        progress.push_str(&format!(", tip {}", render::short_revision(&tip.revision)));
    }
    if !not_ready.is_empty() {
        progress.push_str(&format!("; not ready: {}", not_ready.join(", ")));
    }
    if !reconciled {
        progress.push_str("; reconcile requested");
    }
    Verdict::Pending(progress)
}

/// Why the stack is Degraded: each degraded service with its condition's reason and message.
fn degraded(status: &ControllerStatus) -> String {
    let applied = status.applied.as_ref().map_or(render::NONE, |a| render::short_revision(&a.revision));
    let mut why = format!("meme-controller reports Degraded at {applied}");
    let mut any = false;
    for s in &status.services {
        let condition =
            ["Stalled", "Degraded"].iter().find_map(|kind| s.conditions.iter().find(|c| c.status && c.kind == *kind));
        if s.phase != "Degraded" && condition.is_none() {
            continue;
        }
        any = true;
        match condition {
            Some(c) => why.push_str(&format!("\n  {}: {} ({}): {}", s.name, c.kind, c.reason, c.message.trim_end())),
            None => why.push_str(&format!("\n  {}: Degraded", s.name)),
        }
    }
    if !any {
        why.push_str("\n  (no service says why; see memectl get events)");
    }
    why
}

#[cfg(test)]
mod tests {
    use meme_api::status::{Condition as Cond, ReconcileInfo, RevisionInfo, ServiceStatus, SourceStatus};

    use super::*;

    fn status(sync: SyncStatus, applied: &str) -> ControllerStatus {
        ControllerStatus {
            stack: Some("demo".into()),
            sync_status: sync,
            applied: Some(RevisionInfo { revision: applied.into(), subject: "Bump".into() }),
            source: SourceStatus {
                tip: Some(RevisionInfo { revision: applied.into(), subject: "Bump".into() }),
                ..SourceStatus::default()
            },
            services: vec![ServiceStatus {
                name: "web".into(),
                desired_replicas: 2,
                ready_replicas: 2,
                phase: "Synced".into(),
                ..ServiceStatus::default()
            }],
            ..ControllerStatus::default()
        }
    }

    fn goal(condition: Condition, revision: Option<&str>) -> Goal {
        Goal { condition, revision: revision.map(str::to_owned), since: None }
    }

    #[test]
    fn judge_should_meet_synced_only_at_the_wanted_revision() {
        let synced = status(SyncStatus::Synced, "abcdef0123");
        assert_eq!(judge(&synced, &goal(Condition::Synced, None)), Verdict::Met("synced at abcdef0 \"Bump\"".into()));
        assert!(matches!(judge(&synced, &goal(Condition::Synced, Some("ABCDEF"))), Verdict::Met(_)));
        assert!(matches!(judge(&synced, &goal(Condition::Synced, Some("1234"))), Verdict::Pending(_)));
        let progressing = status(SyncStatus::Progressing, "abcdef0123");
        assert!(matches!(judge(&progressing, &goal(Condition::Synced, None)), Verdict::Pending(_)));
    }

    #[test]
    fn judge_should_meet_ready_when_every_service_is_ready() {
        let mut st = status(SyncStatus::Progressing, "abc");
        assert!(matches!(judge(&st, &goal(Condition::Ready, None)), Verdict::Met(_)));
        st.services[0].ready_replicas = 1;
        assert_eq!(
            judge(&st, &goal(Condition::Ready, None)),
            Verdict::Pending("Progressing at abc; not ready: web 1/2".into())
        );
    }

    #[test]
    fn judge_should_fail_on_degraded_with_the_services_messages() {
        let mut st = status(SyncStatus::Degraded, "abcdef0123");
        st.services[0].phase = "Degraded".into();
        st.services[0].conditions.push(Cond {
            kind: "Degraded".into(),
            status: true,
            reason: "ProgressDeadlineExceeded".into(),
            message: "not healthy within 120s".into(),
        });
        let Verdict::Failed(why) = judge(&st, &goal(Condition::Synced, None)) else { panic!("not failed") };
        assert_eq!(
            why,
            "meme-controller reports Degraded at abcdef0\n  web: Degraded (ProgressDeadlineExceeded): not healthy within 120s"
        );
        // Degraded at an older revision than the one waited for: the push may not be seen yet.
        assert!(matches!(judge(&st, &goal(Condition::Synced, Some("999"))), Verdict::Pending(_)));
    }

    #[test]
    fn judge_should_fail_when_the_wanted_revision_does_not_validate() {
        let mut st = status(SyncStatus::OutOfSync, "abc");
        st.source.tip = Some(RevisionInfo { revision: "def456".into(), subject: "Break".into() });
        st.source.error = Some("staging/web.yaml:7:13: error: bad".into());
        let Verdict::Failed(why) = judge(&st, &goal(Condition::Synced, Some("def"))) else { panic!("not failed") };
        assert!(why.contains("staging/web.yaml:7:13"), "{why}");
    }

    #[test]
    fn judge_should_wait_for_a_reconcile_after_since() {
        let mut st = status(SyncStatus::Synced, "abc");
        st.last_reconcile = Some(ReconcileInfo { time: 100, ..ReconcileInfo::default() });
        let mut g = goal(Condition::Synced, None);
        g.since = Some(101);
        assert!(matches!(judge(&st, &g), Verdict::Pending(p) if p.contains("reconcile requested")));
        g.since = Some(100);
        assert!(matches!(judge(&st, &g), Verdict::Met(_)));
    }
}
