//! `rollout`: one service; its image changes v1→v2 (then back, alternately) in a git commit.
//! Measured from the commit until a new container answers /version with the new version and the
//! old container is gone, against `docker run -d` of the new version until /health answers.

use std::time::{Duration, Instant};

use crate::cleanup::Sweep;
use crate::engine::{self, Obs};
use crate::stack::{Ctx, PORT, RUN_LABEL, Service, Stack, docker_run_args, pause, wait, wait_health};
use crate::util::{Goal, Result, Table, flag_duration, max, median, secs, secs_f};
use crate::{IMAGE_V1, IMAGE_V2};

struct Sample {
    target: &'static str,
    commit: Duration,
    seen: Duration,
    serving: Duration,
    gone: Duration,
    total: Duration,
}

/// Runs `samples` rollouts and as many baseline runs.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, samples: usize, resync: Duration) -> Result<Vec<Goal>> {
    println!(
        "== rollout: commit v1<->v2 until the new container answers /version and the old one is gone, vs \
         `docker run -d` + /health (controller --resync {})\n",
        flag_duration(resync)
    );
    let mut stack = Stack::new(ctx, "ro", vec![Service { name: "web".to_owned(), image: IMAGE_V1.to_owned() }])?;
    let started = Instant::now();
    stack.start(ctx, &["--resync".to_owned(), flag_duration(resync)], &[])?;
    stack.wait_converged(ctx, started, Duration::from_secs(60))?;
    pause(Duration::from_secs(1))?;

    let mut results = Vec::new();
    for i in 0..samples {
        let (target, version) = if i % 2 == 0 { (IMAGE_V2, "v2") } else { (IMAGE_V1, "v1") };
        eprintln!("rollout {}/{samples}: web -> {target} ...", i + 1);
        let sample = roll(ctx, &mut stack, target, version, resync)?;
        eprintln!("rollout {}/{samples}: {}", i + 1, secs(sample.total));
        results.push(sample);
        // Let the controller finish its requeues before the next commit.
        stack.wait_converged(ctx, Instant::now(), Duration::from_secs(30))?;
        pause(Duration::from_millis(500))?;
    }
    let (warnings, errors) = stack.controller().problems();
    stack.controller().print_problems("rollout");
    drop(stack);

    eprintln!("rollout: baseline ...");
    let baseline = baseline(ctx, samples)?;

    let mut table = Table::new(&[
        "#",
        "to",
        "git commit",
        "new ctr seen",
        "new serving",
        "old gone",
        "seen->done",
        "controller",
        "baseline",
        "ratio",
    ])
    .left(2);
    for (i, (s, b)) in results.iter().zip(&baseline).enumerate() {
        table.row(vec![
            (i + 1).to_string(),
            s.target.to_owned(),
            secs(s.commit),
            secs(s.seen),
            secs(s.serving),
            secs(s.gone),
            secs(s.total.saturating_sub(s.seen)),
            secs(s.total),
            secs(*b),
            crate::util::ratio(s.total.as_secs_f64(), b.as_secs_f64()),
        ]);
    }
    let totals: Vec<f64> = results.iter().map(|s| s.total.as_secs_f64()).collect();
    let bases: Vec<f64> = baseline.iter().map(Duration::as_secs_f64).collect();
    let col = |f: fn(&Sample) -> Duration| -> Vec<f64> { results.iter().map(|s| f(s).as_secs_f64()).collect() };
    for (label, agg) in [("median", median as fn(&[f64]) -> f64), ("max", max)] {
        table.row(vec![
            label.to_owned(),
            String::new(),
            secs_f(agg(&col(|s| s.commit))),
            secs_f(agg(&col(|s| s.seen))),
            secs_f(agg(&col(|s| s.serving))),
            secs_f(agg(&col(|s| s.gone))),
            secs_f(agg(&col(|s| s.total.saturating_sub(s.seen)))),
            secs_f(agg(&totals)),
            secs_f(agg(&bases)),
            crate::util::ratio(agg(&totals), agg(&bases)),
        ]);
    }
    table.print(&format!(
        "rollout (times from just before `git commit`; controller = new serving and old gone; controller logged \
         {warnings} warnings, {errors} errors)"
    ));
    let value = median(&totals) / median(&bases);
    Ok(vec![Goal::new(
        "rollout",
        "median commit->new serving & old gone <= 1.3x docker run + /health",
        format!(
            "{value:.2}x (median {} vs {}; max {})",
            secs_f(median(&totals)),
            secs_f(median(&bases)),
            secs_f(max(&totals))
        ),
        value <= 1.3,
    )])
}

fn roll(ctx: &Ctx, stack: &mut Stack, target: &'static str, version: &str, resync: Duration) -> Result<Sample> {
    stack.set_image("web", target)?;
    let started = Instant::now();
    stack.commit(&format!("web: {target}"))?;
    let commit = started.elapsed();
    let r = wait_rolled(ctx, stack, "web", target, version, started, resync + Duration::from_secs(60))?;
    Ok(Sample { target, commit, seen: r.seen, serving: r.serving, gone: r.gone, total: r.serving.max(r.gone) })
}

/// When a service's rollout was seen in the engine, from the moment given.
#[derive(Clone, Copy, Debug)]
pub struct Rolled {
    /// A container of the new image exists.
    pub seen: Duration,
    /// One of them answers `/version` with the new version.
    pub serving: Duration,
    /// No container of another image is left.
    pub gone: Duration,
}

/// Waits until `service` of `stack` has a container of `target` answering `/version` with
/// `version` and no container of another image; times from `started`.
///
/// # Errors
/// `timeout` passed, the controller exited, the engine failed or the run was interrupted.
pub fn wait_rolled(
    ctx: &Ctx,
    stack: &Stack,
    service: &str,
    target: &str,
    version: &str,
    started: Instant,
    timeout: Duration,
) -> Result<Rolled> {
    let (mut seen, mut serving, mut gone) = (None, None, None);
    wait(
        &format!("{service} rolled to {target} (new container answering /version {version}, old one removed)"),
        timeout,
        ctx.poll,
        Some(stack.controller()),
        || {
            let list = stack.containers(Some(service))?;
            let new: Vec<&Obs> = list.iter().filter(|c| c.image == target).collect();
            if seen.is_none() && !new.is_empty() {
                seen = Some(started.elapsed());
            }
            if serving.is_none()
                && new.iter().filter(|c| c.running()).filter_map(|c| c.ip.as_deref()).any(|ip| {
                    engine::http_get(ip, PORT, "/version", Duration::from_millis(500))
                        .is_some_and(|(status, body)| status == 200 && body.trim() == version)
                })
            {
                serving = Some(started.elapsed());
            }
            if gone.is_none() && list.iter().all(|c| c.image == target) {
                gone = Some(started.elapsed());
            }
            Ok(match (seen, serving, gone) {
                (Some(seen), Some(serving), Some(gone)) => Some(Rolled { seen, serving, gone }),
                _ => None,
            })
        },
    )
}

/// `docker run -d` of the next version until it answers /health, `samples` times (the
/// container is removed after each, untimed).
fn baseline(ctx: &Ctx, samples: usize) -> Result<Vec<Duration>> {
    let group = ctx.name("rb");
    let _guard = Sweep::new(&group);
    let network = format!("{group}_net");
    engine::cli(&["network", "create", "--label", &format!("{RUN_LABEL}={}", ctx.run), &network])?;
    let mut times = Vec::new();
    for i in 0..samples {
        let image = if i % 2 == 0 { IMAGE_V2 } else { IMAGE_V1 };
        let name = format!("{group}-{i}");
        let args = docker_run_args(&ctx.run, &group, &name, &network, "web", image);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let id = engine::cli(&args)?.trim().to_owned();
        let answered = wait_health(ctx, &id, Duration::from_secs(60))?;
        times.push(answered.duration_since(started));
        engine::remove_force(&id)?;
        pause(Duration::from_millis(500))?;
    }
    Ok(times)
}
