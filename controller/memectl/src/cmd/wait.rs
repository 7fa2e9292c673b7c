//! `memectl wait --for synced|ready [--revision REV] [--timeout D] [--interval D]`: polls
//! `/api/v1/status` until the condition holds (exit 0), it times out or the stack is Degraded
//! (exit 1, saying why). Progress goes to stderr, one line each time it changes.
//!
//! With `--revision`, only verdicts about that revision (or a later one) count: the controller
//! says which revision its source error, its sync status and each service's phase are about, and
//! a verdict about an older revision (the broken commit before the fix) is never taken for the
//! wanted one's. `REV` is any git revision (`HEAD`, `main`, a tag, an id), resolved in the
//! repository; "later" is decided by git (`merge-base --is-ancestor`).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use meme_api::status::{ConditionType, ControllerStatus, Phase, ServiceStatus, SyncStatus};
use tokio::time::Instant;

use crate::cli::{CheckError, Global, Outcome};
use crate::client::Client;
use crate::output;
use crate::render;
use crate::repo::Repo;

/// Flags of `wait`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
With --revision, only what the controller says about that revision (or a later one) counts: a
Degraded status or a validation error of an older revision is not final, since the controller
may not have seen the push yet. The wanted revision failing validation fails the wait at once.")]
pub struct Args {
    /// What to wait for: `synced` (sync status Synced) or `ready` (every service has all its
    /// replicas ready).
    #[arg(long = "for", value_enum, value_name = "CONDITION")]
    condition: Condition,
    /// Also require this revision (or a later one) to be applied: any git revision (`HEAD`,
    /// `main`, a tag, a commit id), resolved in the repository. Unknown: exit 2 at once.
    #[arg(long, value_name = "REV")]
    revision: Option<String>,
    /// The repository `--revision` is resolved in (default: the one around the current
    /// directory).
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
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
    /// The revision that must be applied (a full commit id, or a lowercase prefix of one when
    /// no repository resolved it); a later one will do.
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
            write!(f, " at {}", render::short_revision(revision))?;
        }
        Ok(())
    }
}

/// How a revision the controller reports relates to the wanted one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The wanted revision itself.
    Same,
    /// A descendant of it: its verdicts count too.
    Later,
    /// Older, unrelated, or unknown here: its verdicts say nothing about the wanted revision.
    Other,
}

/// What git says about the revisions the controller reports, relative to the wanted one.
#[derive(Debug, Default)]
pub struct Lineage {
    repo: Option<Repo>,
    known: HashMap<String, Relation>,
}

impl Lineage {
    /// No repository: only the wanted revision itself is recognized.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Revisions already judged, for tests: `(revision, relation)`.
    #[must_use]
    pub fn known(known: &[(&str, Relation)]) -> Self {
        Self { repo: None, known: known.iter().map(|(r, rel)| ((*r).to_owned(), *rel)).collect() }
    }

    /// How `revision` relates to `wanted`.
    #[must_use]
    pub fn relation(&self, wanted: &str, revision: &str) -> Relation {
        if revision.is_empty() {
            Relation::Other
        } else if revision.starts_with(wanted) {
            Relation::Same
        } else {
            self.known.get(revision).copied().unwrap_or(Relation::Other)
        }
    }

    /// Asks git about every revision of `status` not judged yet.
    async fn learn(&mut self, wanted: &str, status: &ControllerStatus) {
        let Some(repo) = &self.repo else { return };
        let mentioned = [
            status.applied.as_ref().map(|a| a.revision.as_str()),
            status.sync_revision.as_deref(),
            status.source.error_revision.as_deref(),
            status.source.tip.as_ref().map(|t| t.revision.as_str()),
        ]
        .into_iter()
        .flatten()
        .chain(status.services.iter().map(|s| s.revision.as_str()));
        let unknown: Vec<String> = mentioned
            .filter(|r| !r.is_empty() && !r.starts_with(wanted) && !self.known.contains_key(*r))
            .map(str::to_owned)
            .collect();
        for revision in unknown {
            // A commit this clone does not have is not known to be later.
            let later = repo.reader.is_ancestor(wanted, &revision).await.unwrap_or(false);
            self.known.insert(revision, if later { Relation::Later } else { Relation::Other });
        }
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
/// `--revision` names no commit (exit 2), the controller cannot be reached at the first poll
/// (exit 2), the wait timed out or the stack is Degraded (exit 1), or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let (revision, lineage) = match &args.revision {
        Some(rev) => {
            let (id, lineage) = resolve(rev, args.repo.as_deref()).await?;
            (Some(id), lineage)
        }
        None => (None, Lineage::none()),
    };
    let goal = Goal { condition: args.condition, revision, since: None };
    wait(&global.client()?, &goal, lineage, args.timeout, args.interval).await
}

/// The commit `rev` names, and the repository to judge later revisions in. Without a
/// repository only a commit id (7 to 40 hex digits) is accepted, as a prefix.
async fn resolve(rev: &str, dir: Option<&std::path::Path>) -> anyhow::Result<(String, Lineage)> {
    let rev = rev.trim();
    let is_id = (7..=40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit());
    let repo = match Repo::open(dir).await {
        Ok(repo) => repo,
        Err(_) if is_id && dir.is_none() => return Ok((rev.to_ascii_lowercase(), Lineage::none())),
        Err(e) => {
            return Err(e.context(format!(
                "cannot resolve --revision {rev}: it needs the git repository (--repo DIR), or a commit id"
            )));
        }
    };
    match repo.resolve(rev).await {
        Ok(id) => Ok((id, Lineage { repo: Some(repo), known: HashMap::new() })),
        // A full id this clone does not have (a shallow CI clone): still an exact commit.
        Err(_) if rev.len() == 40 && is_id => Ok((rev.to_ascii_lowercase(), Lineage::none())),
        Err(e) => Err(e.context(format!("--revision {rev} names no commit in {}", repo.root.display()))),
    }
}

/// Polls until `goal` holds, fails, or `timeout` passes. The controller being unreachable at
/// the first poll is an error; later (a restart) it is only reported, and polling goes on.
///
/// # Errors
/// See [`run`].
pub async fn wait(
    client: &Client,
    goal: &Goal,
    mut lineage: Lineage,
    timeout: Duration,
    interval: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    let mut first = true;
    loop {
        let progress = match client.status().await {
            Ok(status) => {
                if let Some(wanted) = &goal.revision {
                    lineage.learn(wanted, &status).await;
                }
                match judge(&status, goal, &lineage) {
                    Verdict::Met(line) => {
                        output::print(&format!("{line}\n"))?;
                        return Ok(Outcome::Success);
                    }
                    Verdict::Failed(why) => return Err(CheckError(why).into()),
                    Verdict::Pending(progress) => progress,
                }
            }
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

/// Whether `status` meets `goal`, can no longer meet it, or not yet. With a wanted revision,
/// only verdicts about it or a later revision (by `lineage`) are judged.
#[must_use]
pub fn judge(status: &ControllerStatus, goal: &Goal, lineage: &Lineage) -> Verdict {
    let relation = |revision: Option<&str>| match (&goal.revision, revision) {
        (None, _) => Relation::Same,
        (Some(wanted), Some(revision)) => lineage.relation(wanted, revision),
        (Some(_), None) => Relation::Other,
    };
    let about = |revision: Option<&str>| relation(revision) != Relation::Other;
    let applied = status.applied.as_ref().map(|a| a.revision.as_str());
    // A controller that does not say which revision its sync status is about: the applied one.
    let sync_revision = status.sync_revision.as_deref().or(applied);
    let reconciled = goal.since.is_none_or(|since| {
        status.services.is_empty() || status.last_reconcile.as_ref().is_some_and(|last| last.time >= since)
    });
    let later = |revision: &str| {
        if relation(Some(revision)) == Relation::Later {
            format!(" (after {})", render::short_revision(goal.revision.as_deref().unwrap_or_default()))
        } else {
            String::new()
        }
    };

    if goal.revision.is_some()
        && let (Some(error), Some(revision)) = (&status.source.error, status.source.error_revision.as_deref())
        && about(Some(revision))
    {
        return Verdict::Failed(format!(
            "revision {}{} will not be applied:\n{}",
            render::short_revision(revision),
            later(revision),
            error.trim_end()
        ));
    }
    if status.sync_status == SyncStatus::Degraded && about(sync_revision) && reconciled {
        return Verdict::Failed(degraded(status, &|s: &ServiceStatus| {
            goal.revision.is_none() || s.revision.is_empty() || about(Some(&s.revision))
        }));
    }
    let not_ready: Vec<String> = status
        .services
        .iter()
        .filter_map(|s| {
            if goal.revision.is_some() && !about(Some(&s.revision)) {
                // Its replicas are counted for an older revision: not yet judged at this one.
                Some(format!("{} (still at {})", s.name, render::short_revision(&s.revision)))
            } else {
                (s.ready_replicas != s.desired_replicas).then(|| format!("{} {}", s.name, render::ready_ratio(s)))
            }
        })
        .collect();
    let met = about(applied)
        && about(sync_revision)
        && reconciled
        && match goal.condition {
            Condition::Synced => status.sync_status == SyncStatus::Synced,
            Condition::Ready => not_ready.is_empty(),
        };
    if met {
        let at = status.applied.as_ref().map_or_else(
            || render::NONE.to_owned(),
            |a| format!("{} {:?}{}", render::short_revision(&a.revision), a.subject, later(&a.revision)),
        );
        return Verdict::Met(match goal.condition {
            Condition::Synced => format!("synced at {at}"),
            Condition::Ready => format!("ready: {} services at {at}", status.services.len()),
        });
    }

    let mut progress = format!("{} at {}", status.sync_status.as_str(), render::short_revision(applied.unwrap_or("")));
    if let Some(tip) = &status.source.tip
        && Some(tip.revision.as_str()) != applied
    {
        progress.push_str(&format!(", tip {}", render::short_revision(&tip.revision)));
    }
    if let Some(error) = &status.source.error {
        let about = status.source.error_revision.as_deref().map_or_else(
            || "the source".to_owned(),
            |r| format!("{}, not the revision waited for", render::short_revision(r)),
        );
        progress.push_str(&format!("; error about {about}: {}", error.lines().next().unwrap_or_default()));
    }
    if !not_ready.is_empty() {
        progress.push_str(&format!("; not ready: {}", not_ready.join(", ")));
    }
    if !reconciled {
        progress.push_str("; reconcile requested");
    }
    Verdict::Pending(progress)
}

/// Why the stack is Degraded: each degraded service (of those `counts`) with its condition's
/// reason and message.
fn degraded(status: &ControllerStatus, counts: &dyn Fn(&ServiceStatus) -> bool) -> String {
    let at = status.sync_revision.as_deref().or(status.applied.as_ref().map(|a| a.revision.as_str()));
    let mut why = format!("meme-controller reports Degraded at {}", at.map_or(render::NONE, render::short_revision));
    let mut any = false;
    for s in status.services.iter().filter(|s| counts(s)) {
        let condition = [ConditionType::Stalled, ConditionType::Degraded]
            .iter()
            .find_map(|kind| s.conditions.iter().find(|c| c.holds() && c.kind == *kind));
        if s.phase != Phase::Degraded && condition.is_none() {
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
    use meme_api::status::{
        Condition as Cond, ConditionStatus, ReconcileInfo, RevisionInfo, ServiceStatus, SourceStatus,
    };

    use super::*;

    fn status(sync: SyncStatus, applied: &str) -> ControllerStatus {
        ControllerStatus {
            stack: Some("demo".into()),
            sync_status: sync,
            sync_revision: Some(applied.into()),
            applied: Some(RevisionInfo { revision: applied.into(), subject: "Bump".into() }),
            source: SourceStatus {
                tip: Some(RevisionInfo { revision: applied.into(), subject: "Bump".into() }),
                ..SourceStatus::default()
            },
            services: vec![ServiceStatus {
                name: "web".into(),
                desired_replicas: 2,
                ready_replicas: 2,
                phase: Phase::Synced,
                revision: applied.into(),
                ..ServiceStatus::default()
            }],
            ..ControllerStatus::default()
        }
    }

    fn goal(condition: Condition, revision: Option<&str>) -> Goal {
        Goal { condition, revision: revision.map(str::to_owned), since: None }
    }

    fn judged(st: &ControllerStatus, g: &Goal) -> Verdict {
        judge(st, g, &Lineage::none())
    }

    fn degraded_service(st: &mut ControllerStatus, revision: &str) {
        st.services[0].phase = Phase::Degraded;
        st.services[0].revision = revision.into();
        st.services[0].conditions.push(Cond {
            kind: ConditionType::Degraded,
            status: ConditionStatus::True,
            reason: "ProgressDeadlineExceeded".into(),
            message: "not healthy within 120s".into(),
        });
    }

    #[test]
    fn judge_should_meet_synced_only_at_the_wanted_revision() {
        let synced = status(SyncStatus::Synced, "abcdef0123");
        assert_eq!(judged(&synced, &goal(Condition::Synced, None)), Verdict::Met("synced at abcdef0 \"Bump\"".into()));
        assert!(matches!(judged(&synced, &goal(Condition::Synced, Some("abcdef"))), Verdict::Met(_)));
        assert!(matches!(judged(&synced, &goal(Condition::Synced, Some("1234"))), Verdict::Pending(_)));
        let progressing = status(SyncStatus::Progressing, "abcdef0123");
        assert!(matches!(judged(&progressing, &goal(Condition::Synced, None)), Verdict::Pending(_)));
    }

    #[test]
    fn judge_should_meet_ready_when_every_service_is_ready() {
        let mut st = status(SyncStatus::Progressing, "abc");
        assert!(matches!(judged(&st, &goal(Condition::Ready, None)), Verdict::Met(_)));
        st.services[0].ready_replicas = 1;
        assert_eq!(
            judged(&st, &goal(Condition::Ready, None)),
            Verdict::Pending("Progressing at abc; not ready: web 1/2".into())
        );
    }

    #[test]
    fn judge_should_fail_on_degraded_with_the_services_messages() {
        let mut st = status(SyncStatus::Degraded, "abcdef0123");
        degraded_service(&mut st, "abcdef0123");
        let Verdict::Failed(why) = judged(&st, &goal(Condition::Synced, None)) else { panic!("not failed") };
        assert_eq!(
            why,
            "meme-controller reports Degraded at abcdef0\n  web: Degraded (ProgressDeadlineExceeded): not healthy within 120s"
        );
        // Degraded at an older revision than the one waited for: the push may not be seen yet.
        assert!(matches!(judged(&st, &goal(Condition::Synced, Some("999"))), Verdict::Pending(_)));
    }

    #[test]
    fn judge_should_fail_when_the_wanted_revision_does_not_validate() {
        let mut st = status(SyncStatus::OutOfSync, "abc");
        st.source.tip = Some(RevisionInfo { revision: "def456".into(), subject: "Break".into() });
        st.source.error = Some("revision def456 not applied: staging/web.yaml:7:13: error: bad".into());
        st.source.error_revision = Some("def456".into());
        st.sync_revision = Some("def456".into());
        let Verdict::Failed(why) = judged(&st, &goal(Condition::Synced, Some("def"))) else { panic!("not failed") };
        assert!(why.contains("staging/web.yaml:7:13"), "{why}");
    }

    // See: #9
    #[test]
    fn issue_9_wait_ignores_verdicts_of_older_revisions() {
        let (broken, fix) = ("b0b0b0b0b0", "f1f1f1f1f1");
        // The fix is the tip, but the error shown is still the broken commit's (an old controller
        // published the tip first): not a verdict about the fix.
        let mut st = status(SyncStatus::OutOfSync, "a0a0a0a0a0");
        st.source.tip = Some(RevisionInfo { revision: fix.into(), subject: "Fix".into() });
        st.source.error = Some(format!("revision {broken} not applied: web.yaml:7:13: error: bad"));
        st.source.error_revision = Some(broken.into());
        st.sync_revision = Some(broken.into());
        let Verdict::Pending(progress) = judged(&st, &goal(Condition::Synced, Some(fix))) else { panic!("judged") };
        assert!(progress.contains("error about b0b0b0b, not the revision waited for"), "{progress}");
        // The fix is applied; a service still shows the Degraded phase it had at the broken
        // revision, and the stack says Degraded about that older revision.
        let mut st = status(SyncStatus::Degraded, fix);
        degraded_service(&mut st, broken);
        st.sync_revision = Some(broken.into());
        assert!(matches!(judged(&st, &goal(Condition::Synced, Some(fix))), Verdict::Pending(_)));
        // Progressing at the fix while the service has not been judged at it: not ready yet.
        st.sync_status = SyncStatus::Progressing;
        st.sync_revision = Some(fix.into());
        assert!(matches!(judged(&st, &goal(Condition::Ready, Some(fix))), Verdict::Pending(_)));
        // Degraded about the fix itself is final.
        st.sync_status = SyncStatus::Degraded;
        st.services[0].revision = fix.into();
        assert!(matches!(judged(&st, &goal(Condition::Synced, Some(fix))), Verdict::Failed(_)));
    }

    #[test]
    fn judge_should_count_verdicts_about_a_later_revision() {
        let (wanted, later) = ("c0ffee0000", "d00d000000");
        let lineage = Lineage::known(&[(later, Relation::Later)]);
        let synced = status(SyncStatus::Synced, later);
        assert_eq!(
            judge(&synced, &goal(Condition::Synced, Some(wanted)), &lineage),
            Verdict::Met("synced at d00d000 \"Bump\" (after c0ffee0)".into())
        );
        // An older or unrelated one does not count.
        assert!(matches!(
            judge(&synced, &goal(Condition::Synced, Some(wanted)), &Lineage::none()),
            Verdict::Pending(_)
        ));
        let mut broken = status(SyncStatus::OutOfSync, "a0a0a0a0a0");
        broken.source.error = Some("bad".into());
        broken.source.error_revision = Some(later.into());
        assert!(
            matches!(judge(&broken, &goal(Condition::Synced, Some(wanted)), &lineage), Verdict::Failed(w) if w.contains("after c0ffee0"))
        );
    }

    #[test]
    fn judge_should_wait_for_a_reconcile_after_since() {
        let mut st = status(SyncStatus::Synced, "abc");
        st.last_reconcile = Some(ReconcileInfo { time: 100, ..ReconcileInfo::default() });
        let mut g = goal(Condition::Synced, None);
        g.since = Some(101);
        assert!(matches!(judged(&st, &g), Verdict::Pending(p) if p.contains("reconcile requested")));
        g.since = Some(100);
        assert!(matches!(judged(&st, &g), Verdict::Met(_)));
    }
}
