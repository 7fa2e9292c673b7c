//! `watch`: one service, the controller on `--resync 10m` so that only its watch of the git refs
//! can explain a fast reaction. Commits alternate the image v1/v2 (20 of them). For each, from
//! the moment `git commit` returned (its own duration is a column): until
//! `GET /api/v1/status`, polled every 2 ms on a kept-alive connection, shows the new commit as
//! tip and as applied (the controller applies a revision and queues its reconcile in one step:
//! "reconcile started"); until the controller's log lines `applying revision` and the first
//! `applying step=create` of that revision (their RFC 3339 timestamps against the bench's wall
//! clock, same host); and until the new version answers /version and the old container is gone.

use std::time::{Duration, Instant, SystemTime};

use crate::client::Client;
use crate::rollout::wait_rolled;
use crate::stack::{Ctx, Service, Stack, controller_has_flag, pause};
use crate::util::{Error, Goal, Result, Table, bail, max, median, ms_f, parse_rfc3339, secs_f, signed_secs};
use crate::{IMAGE_V1, IMAGE_V2};

/// The goal: commit → reconcile started, every commit.
pub const GOAL_MS: f64 = 50.0;
/// How often the status is polled after a commit.
const STATUS_POLL: Duration = Duration::from_millis(2);
/// How long a commit may stay unseen (the resync is 10 minutes: only the watch can see it).
const SEEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The controller's resync: long enough that it cannot explain anything measured.
const RESYNC: &str = "10m";

struct Sample {
    target: &'static str,
    /// `git commit`'s own duration.
    commit: Duration,
    /// From the commit's completion to a status answer showing it as tip / as applied.
    tip: Duration,
    applied: Duration,
    /// From the commit's completion to the log lines, seconds (negative: before git returned).
    log_revision: Option<f64>,
    log_create: Option<f64>,
    serving: Duration,
    gone: Duration,
}

impl Sample {
    fn done(&self) -> Duration {
        self.serving.max(self.gone)
    }
}

/// Status requests of the 2 ms polls: how many and how long each took.
#[derive(Default)]
struct Polls {
    took: Vec<f64>,
}

/// Runs `samples` commits.
///
/// # Errors
/// A deadline passed, the engine or the controller failed, or the controller has no `--listen`.
pub fn run(ctx: &Ctx, samples: usize) -> Result<Vec<Goal>> {
    println!(
        "== watch: {samples} commits (image v1<->v2) of one service, controller --resync {RESYNC} (only the ref watch \
         can explain a fast reaction); times from the moment `git commit` returned\n"
    );
    if !controller_has_flag(ctx, "--listen") {
        bail!("this meme-controller has no --listen (HTTP API): the watch benchmark reads GET /api/v1/status");
    }
    let mut stack = Stack::new(ctx, "wa", vec![Service { name: "web".to_owned(), image: IMAGE_V1.to_owned() }])?;
    let started = Instant::now();
    stack.start(ctx, &["--resync".to_owned(), RESYNC.to_owned()], &[])?;
    let addr = stack.controller().api_addr(Duration::from_secs(30))?;
    stack.wait_converged(ctx, started, Duration::from_secs(60))?;
    let mut client = Client::new(addr, Duration::from_secs(5));
    pause(Duration::from_secs(1))?;

    let mut results = Vec::new();
    let mut polls = Polls::default();
    for i in 0..samples {
        let (target, version) = if i % 2 == 0 { (IMAGE_V2, "v2") } else { (IMAGE_V1, "v1") };
        let sample = one(ctx, &mut stack, &mut client, &mut polls, target, version)?;
        eprintln!(
            "watch {}/{samples}: web -> {target}: applied {} after the commit, new serving & old gone {}",
            i + 1,
            ms_f(sample.applied.as_secs_f64()),
            secs_f(sample.done().as_secs_f64())
        );
        results.push(sample);
        // Let the controller finish its requeues before the next commit.
        stack.wait_converged(ctx, Instant::now(), Duration::from_secs(30))?;
        pause(Duration::from_millis(500))?;
    }
    let (warnings, errors) = stack.controller().problems();
    stack.controller().print_problems("watch");
    drop(stack);

    let ms_opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), ms_f);
    let mut table = Table::new(&[
        "#",
        "to",
        "git commit",
        "tip in status",
        "applied in status",
        "log: applying revision",
        "log: first create",
        "new serving",
        "old gone",
    ])
    .left(2);
    for (i, s) in results.iter().enumerate() {
        table.row(vec![
            (i + 1).to_string(),
            s.target.to_owned(),
            ms_f(s.commit.as_secs_f64()),
            ms_f(s.tip.as_secs_f64()),
            ms_f(s.applied.as_secs_f64()),
            ms_opt(s.log_revision),
            ms_opt(s.log_create),
            secs_f(s.serving.as_secs_f64()),
            secs_f(s.gone.as_secs_f64()),
        ]);
    }
    let col = |f: fn(&Sample) -> Duration| -> Vec<f64> { results.iter().map(|s| f(s).as_secs_f64()).collect() };
    let logs = |f: fn(&Sample) -> Option<f64>| -> Vec<f64> { results.iter().filter_map(f).collect() };
    let signed_max = |v: &[f64]| v.iter().copied().reduce(f64::max);
    for (label, p50) in [("p50", true), ("max", false)] {
        let agg = |v: &[f64]| if p50 { median(v) } else { max(v) };
        let agg_log = |v: &[f64]| {
            if v.is_empty() {
                None
            } else if p50 {
                Some(median(v))
            } else {
                signed_max(v)
            }
        };
        table.row(vec![
            label.to_owned(),
            String::new(),
            ms_f(agg(&col(|s| s.commit))),
            ms_f(agg(&col(|s| s.tip))),
            ms_f(agg(&col(|s| s.applied))),
            ms_opt(agg_log(&logs(|s| s.log_revision))),
            ms_opt(agg_log(&logs(|s| s.log_create))),
            secs_f(agg(&col(|s| s.serving))),
            secs_f(agg(&col(|s| s.gone))),
        ]);
    }
    table.print(&format!(
        "watch (from `git commit`'s return; status = GET /api/v1/status every {} ms on a kept-alive connection, \
         time of the first answer showing the commit; log = the controller's timestamp of the line minus the bench's \
         wall clock at the commit's return, negative when the controller saw the ref move before git exited; \
         controller logged {warnings} warnings, {errors} errors)",
        STATUS_POLL.as_millis()
    ));
    let done = col(Sample::done);
    let mut info = Table::new(&["figure", "p50", "max"]);
    info.row(vec![
        "commit -> new version serving /version and old container gone".to_owned(),
        secs_f(median(&done)),
        secs_f(max(&done)),
    ]);
    info.row(vec![
        format!("status request during the polls ({} requests)", polls.took.len()),
        ms_f(median(&polls.took)),
        ms_f(max(&polls.took)),
    ]);
    info.print("watch: the rest");

    let applied = col(|s| s.applied);
    let creates = logs(|s| s.log_create);
    let (p50, worst) = (median(&applied), max(&applied));
    let log_text = if creates.is_empty() {
        "no `applying step=create` line matched".to_owned()
    } else {
        format!(
            "log first create p50 {}, max {}",
            ms_f(median(&creates)),
            signed_max(&creates).map_or_else(|| "n/a".to_owned(), ms_f)
        )
    };
    let at = if results.len() == 20 { String::new() } else { format!(" (goal is over 20; ran {})", results.len()) };
    Ok(vec![Goal::new(
        "watch",
        format!("commit->reconcile started (applied in status) <= {GOAL_MS:.0} ms, max of 20 commits{at}"),
        format!("p50 {}, max {} ({log_text})", ms_f(p50), ms_f(worst)),
        !results.is_empty() && worst * 1000.0 <= GOAL_MS,
    )])
}

fn one(
    ctx: &Ctx,
    stack: &mut Stack,
    client: &mut Client,
    polls: &mut Polls,
    target: &'static str,
    version: &str,
) -> Result<Sample> {
    let old = stack.head()?;
    stack.set_image("web", target)?;
    let before = Instant::now();
    stack.commit(&format!("web: {target}"))?;
    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let commit = t0.duration_since(before);

    // (a) Poll the status every 2 ms until it shows the new commit applied.
    let mut tip = None;
    let mut next = Instant::now();
    let (applied, revision) = loop {
        let reply = client.get("/api/v1/status", true)?;
        let at = t0.elapsed();
        polls.took.push(reply.took.as_secs_f64());
        if reply.status != 200 {
            bail!("GET /api/v1/status: HTTP {}: {}", reply.status, String::from_utf8_lossy(&reply.body).trim());
        }
        let status: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| Error(format!("GET /api/v1/status: not JSON: {e}")))?;
        let rev = |v: &serde_json::Value| v["revision"].as_str().unwrap_or_default().to_owned();
        let (tip_rev, applied_rev) = (rev(&status["source"]["tip"]), rev(&status["applied"]));
        if tip.is_none() && !tip_rev.is_empty() && tip_rev != old {
            tip = Some(at);
        }
        if !applied_rev.is_empty() && applied_rev != old {
            break (at, applied_rev);
        }
        if at > SEEN_TIMEOUT {
            return Err(stack.controller().error(&format!(
                "the commit was not applied {} s after `git commit` (status: tip {}, applied {}; the resync is \
                 {RESYNC}, so the ref watch missed it)",
                SEEN_TIMEOUT.as_secs(),
                short(&tip_rev),
                short(&applied_rev)
            )));
        }
        if !stack.controller().alive() {
            return Err(stack.controller().error("meme-controller exited after a commit"));
        }
        next += STATUS_POLL;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            next = Instant::now();
        }
    };
    let head = stack.head()?;
    if revision != head {
        bail!("the status shows {} applied, but the commit is {}", short(&revision), short(&head));
    }
    let tip = tip.unwrap_or(applied);

    // (b) The new version serving and the old container gone.
    let rolled = wait_rolled(ctx, stack, "web", target, version, t0, Duration::from_secs(60))?;

    // The controller's own timestamps of the revision applied and of the first create of it.
    let (log_revision, log_create) = log_times(&stack.controller().kept(), short(&revision), wall0);
    Ok(Sample { target, commit, tip, applied, log_revision, log_create, serving: rolled.serving, gone: rolled.gone })
}

/// (`applying revision revision=<short>`, first `applying step=create` in a reconcile of that
/// revision): the lines' timestamps minus `wall0`, in seconds.
fn log_times(lines: &[String], short: &str, wall0: SystemTime) -> (Option<f64>, Option<f64>) {
    let when = |line: &String| line.split_whitespace().next().and_then(parse_rfc3339).map(|t| signed_secs(wall0, t));
    let applied = format!("revision={short}");
    let span = format!("revision=\"{short}\"");
    let revision = lines.iter().find(|l| l.contains("applying revision") && l.contains(&applied)).and_then(when);
    let create = lines.iter().find(|l| l.contains("applying step=create") && l.contains(&span)).and_then(when);
    (revision, create)
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_of_the_revision_should_be_found_and_timed() {
        let lines: Vec<String> = [
            "2026-11-26T23:15:53.091672Z  INFO meme_controller::source: applying revision revision=aaaaaaaaaaaa stack=s",
            "2026-11-26T23:15:57.100000Z  INFO meme_controller::source: applying revision revision=0b2d874ab742 stack=s",
            "2026-11-26T23:15:57.093192Z  INFO reconcile{service=web trigger=source revision=\"aaaaaaaaaaaa\"}: \
             meme_controller::reconcile: applying step=create web#1: missing",
            "2026-11-26T23:15:57.104000Z  INFO reconcile{service=web trigger=source revision=\"0b2d874ab742\"}: \
             meme_controller::reconcile: applying step=create web#2: rolling update to meme-demo:v2",
        ]
        .map(str::to_owned)
        .to_vec();
        let wall0 = parse_rfc3339("2026-11-26T23:15:57.101000Z").unwrap();
        let (revision, create) = log_times(&lines, "0b2d874ab742", wall0);
        assert!((revision.unwrap() + 0.001).abs() < 1e-6, "{revision:?}");
        assert!((create.unwrap() - 0.003).abs() < 1e-6, "{create:?}");
        assert_eq!(log_times(&lines, "ffffffffffff", wall0), (None, None));
    }
}
