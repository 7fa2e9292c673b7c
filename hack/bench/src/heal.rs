//! `heal`: a converged stack of 5 services; one container is removed (`docker rm -f`) or stopped
//! (`docker stop`) behind the controller's back, through the API as the CLI does it. Measured
//! from just before that call until a container of the service runs again and answers /health.
//! Baseline: the same call on a plain container, then the CLI command a person or script would
//! run to repair it at once (`docker run -d` again, `docker start`), until /health answers.

use std::time::{Duration, Instant};

use crate::cleanup::Sweep;
use crate::engine::{self, Obs};
use crate::stack::{Ctx, Health, RUN_LABEL, Stack, docker_run_args, pause, services, wait, wait_health};
use crate::util::{Error, Goal, Result, Table, max, median, secs_f};
use crate::{IMAGE_V1, settle};

/// Time allowed for one repair.
const REPAIR_DEADLINE: Duration = Duration::from_secs(40);

/// Runs `samples` removals and `samples` stops on a stack of `n` services.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, n: usize, samples: usize) -> Result<Vec<Goal>> {
    println!(
        "== heal: {n} services converged (controller default --resync 30s); `docker rm -f` / `docker stop` one \
         container until one runs again and answers /health\n"
    );
    let mut stack = Stack::new(ctx, "heal", services(n, IMAGE_V1))?;
    let started = Instant::now();
    stack.start(ctx, &[], &[])?;
    stack.wait_converged(ctx, started, Duration::from_secs(60 + 2 * n as u64))?;
    pause(Duration::from_secs(1))?;

    let mut removed = Vec::new();
    for i in 0..samples {
        let service = stack.services[i % n].name.clone();
        let old = only_container(&stack, &service)?;
        let (t0, at) = (Instant::now(), crate::util::utc_now());
        engine::remove_force(&old.id)?;
        let mut health = Health::default();
        let took = wait(
            &format!("{service} replaced after docker rm -f"),
            REPAIR_DEADLINE,
            ctx.poll,
            Some(stack.controller()),
            || {
                let fresh: Vec<Obs> =
                    stack.containers(Some(&service))?.into_iter().filter(|c| c.id != old.id).collect();
                health.check(&fresh);
                Ok(fresh.iter().any(|c| c.running() && health.answered(&c.id)).then(|| t0.elapsed()))
            },
        )?;
        eprintln!("heal rm -f {}/{samples}: {service} {} (at {at})", i + 1, secs_f(took.as_secs_f64()));
        removed.push(took.as_secs_f64());
        stack.wait_converged(ctx, Instant::now(), Duration::from_secs(30))?;
        pause(Duration::from_millis(300))?;
    }

    let (mut stopped, mut same) = (Vec::new(), 0);
    for i in 0..samples {
        let service = stack.services[i % n].name.clone();
        let old = only_container(&stack, &service)?;
        let (t0, at) = (Instant::now(), crate::util::utc_now());
        // Returns once the container has stopped: any running container seen after it is a
        // new start.
        engine::stop(&old.id)?;
        let mut health = Health::default();
        let (took, restarted) = wait(
            &format!("{service} running again after docker stop"),
            REPAIR_DEADLINE,
            ctx.poll,
            Some(stack.controller()),
            || {
                let list = stack.containers(Some(&service))?;
                health.check(&list);
                Ok(list.iter().find(|c| c.running() && health.answered(&c.id)).map(|c| (t0.elapsed(), c.id == old.id)))
            },
        )?;
        same += usize::from(restarted);
        eprintln!(
            "heal stop {}/{samples}: {service} {} ({}, at {at})",
            i + 1,
            secs_f(took.as_secs_f64()),
            if restarted { "started again" } else { "replaced" }
        );
        stopped.push(took.as_secs_f64());
        stack.wait_converged(ctx, Instant::now(), Duration::from_secs(30))?;
        pause(Duration::from_millis(300))?;
    }
    let (warnings, errors) = stack.controller().problems();
    stack.controller().print_problems("heal");
    drop(stack);
    settle(ctx)?;

    eprintln!("heal: baseline ...");
    let (base_rm, base_stop) = baseline(ctx, samples)?;

    let mut table = Table::new(&[
        "action",
        "samples",
        "ctl median",
        "ctl max",
        "baseline median",
        "baseline max",
        "ctl/baseline (median)",
    ]);
    for (action, ctl, base) in [
        ("docker rm -f -> replaced & /health (baseline: docker run -d)", &removed, &base_rm),
        ("docker stop -> running & /health (baseline: docker start)", &stopped, &base_stop),
    ] {
        table.row(vec![
            action.to_owned(),
            ctl.len().to_string(),
            secs_f(median(ctl)),
            secs_f(max(ctl)),
            secs_f(median(base)),
            secs_f(max(base)),
            crate::util::ratio(median(ctl), median(base)),
        ]);
    }
    table.print(&format!(
        "heal (times from just before the API call; after docker stop the controller started the same container \
         {same}/{samples} times, else replaced it; controller logged {warnings} warnings, {errors} errors)"
    ));
    let goal = |what: &str, v: &[f64], base: &[f64]| {
        Goal::new(
            "heal",
            format!("{what}: median time to a healthy container <= 1 s"),
            format!("{} (max {}; baseline median {})", secs_f(median(v)), secs_f(max(v)), secs_f(median(base))),
            median(v) <= 1.0,
        )
    };
    Ok(vec![goal("docker rm -f", &removed, &base_rm), goal("docker stop", &stopped, &base_stop)])
}

fn only_container(stack: &Stack, service: &str) -> Result<Obs> {
    let list = stack.containers(Some(service))?;
    match list.as_slice() {
        [one] if one.running() => Ok(one.clone()),
        _ => Err(Error(format!(
            "{service}: expected one running container, found {}",
            list.iter().map(|c| format!("{} ({})", c.name, c.state)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The same removals and stops on a plain container, repaired by the CLI at once.
fn baseline(ctx: &Ctx, samples: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let group = ctx.name("hb");
    let _guard = Sweep::new(&group);
    let network = format!("{group}_net");
    engine::cli(&["network", "create", "--label", &format!("{RUN_LABEL}={}", ctx.run), &network])?;
    let run = |name: &str| -> Result<String> {
        let args = docker_run_args(&ctx.run, &group, name, &network, "svc001", IMAGE_V1);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(engine::cli(&args)?.trim().to_owned())
    };
    let mut id = run(&format!("{group}-0"))?;
    wait_health(ctx, &id, Duration::from_secs(60))?;
    let mut removed = Vec::new();
    for i in 0..samples {
        let t0 = Instant::now();
        engine::remove_force(&id)?;
        id = run(&format!("{group}-{}", i + 1))?;
        removed.push(wait_health(ctx, &id, REPAIR_DEADLINE)?.duration_since(t0).as_secs_f64());
        pause(Duration::from_millis(300))?;
    }
    let mut stopped = Vec::new();
    for _ in 0..samples {
        let t0 = Instant::now();
        engine::stop(&id)?;
        engine::cli(&["start", &id])?;
        stopped.push(wait_health(ctx, &id, REPAIR_DEADLINE)?.duration_since(t0).as_secs_f64());
        pause(Duration::from_millis(300))?;
    }
    Ok((removed, stopped))
}
