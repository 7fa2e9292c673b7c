//! `converge N`: the controller from cold (a fresh repository of N services, the process just
//! started) until every container runs and answers /health, against `docker run -d` of the same
//! containers issued one after the other by the CLI, as a deploy script would (and, for
//! reference, 8 at a time).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::cleanup::Sweep;
use crate::engine;
use crate::stack::{Ctx, GROUP_LABEL, Health, RUN_LABEL, Stack, docker_run_args, pause, services, wait};
use crate::util::{Error, Goal, Result, Table, ratio, secs};
use crate::{IMAGE_V1, settle};

/// Time allowed for N containers to converge.
fn deadline(n: usize) -> Duration {
    Duration::from_secs(60 + 2 * n as u64)
}

/// Parallelism of the reference baseline (the controller's default `--concurrency`).
pub const PARALLEL: usize = 8;

struct Row {
    n: usize,
    sequential: Duration,
    parallel: Duration,
    running: Duration,
    healthy: Duration,
    problems: (usize, usize),
}

/// Runs the benchmark for every N; returns the goal at the largest N.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, ns: &[usize]) -> Result<Vec<Goal>> {
    println!("== converge: controller from cold vs `docker run -d` (sequential CLI), until all answer /health\n");
    let mut rows = Vec::new();
    for &n in ns {
        eprintln!("converge N={n}: baseline, sequential docker run -d ...");
        let sequential = baseline(ctx, n, 1)?;
        settle(ctx)?;
        eprintln!("converge N={n}: baseline, {PARALLEL} docker run -d at a time ...");
        let parallel = baseline(ctx, n, PARALLEL)?;
        settle(ctx)?;
        eprintln!("converge N={n}: controller from cold ...");
        let (running, healthy, problems) = controller(ctx, n)?;
        settle(ctx)?;
        eprintln!(
            "converge N={n}: baseline {} / {} (par), controller {}",
            secs(sequential),
            secs(parallel),
            secs(healthy)
        );
        rows.push(Row { n, sequential, parallel, running, healthy, problems });
    }
    let mut table = Table::new(&[
        "N",
        "baseline seq",
        &format!("baseline par{PARALLEL}"),
        "ctl all running",
        "ctl all healthy",
        "ctl/seq",
        &format!("ctl/par{PARALLEL}"),
        "ctl warn/err",
    ]);
    for r in &rows {
        table.row(vec![
            r.n.to_string(),
            secs(r.sequential),
            secs(r.parallel),
            secs(r.running),
            secs(r.healthy),
            ratio(r.healthy.as_secs_f64(), r.sequential.as_secs_f64()),
            ratio(r.healthy.as_secs_f64(), r.parallel.as_secs_f64()),
            format!("{}/{}", r.problems.0, r.problems.1),
        ]);
    }
    table.print("converge (times from the first command / the controller's start; healthy = answers GET /health 200)");
    let Some(last) = rows.last() else { return Ok(Vec::new()) };
    let at = if last.n == 50 { String::new() } else { format!(" (goal is at N=50; largest N run: {})", last.n) };
    let value = last.healthy.as_secs_f64() / last.sequential.as_secs_f64();
    Ok(vec![Goal::new(
        "converge",
        format!("N={}: controller/sequential docker run <= 1.0{at}", last.n),
        format!("{value:.2} ({} vs {})", secs(last.healthy), secs(last.sequential)),
        value <= 1.0,
    )])
}

/// `docker network create` + N × `docker run -d` (`parallel` at a time) while a poller waits
/// for every container to answer /health; the time from the first command.
fn baseline(ctx: &Ctx, n: usize, parallel: usize) -> Result<Duration> {
    let group = ctx.name(&format!("b{n}{}", if parallel > 1 { "p" } else { "s" }));
    let _guard = Sweep::new(&group);
    let network = format!("{group}_net");
    let names: Vec<(String, String)> = (1..=n).map(|i| (format!("{group}-svc{i:03}"), format!("svc{i:03}"))).collect();
    let abort = AtomicBool::new(false);
    let started = Instant::now();
    engine::cli(&["network", "create", "--label", &format!("{RUN_LABEL}={}", ctx.run), &network])?;
    std::thread::scope(|s| {
        let poller = s.spawn(|| {
            let mut health = Health::default();
            wait(&format!("{n} baseline containers answering /health"), deadline(n), ctx.poll, None, || {
                if abort.load(Ordering::SeqCst) {
                    return Err(Error::from("aborted"));
                }
                let list = engine::list(&[(GROUP_LABEL, group.as_str())])?;
                Ok((health.check(&list) == n).then(|| started.elapsed()))
            })
        });
        let issued = issue(ctx, &group, &network, &names, parallel);
        if issued.is_err() {
            abort.store(true, Ordering::SeqCst);
        }
        let polled = poller.join().map_err(|_| Error::from("the baseline poller panicked"))?;
        issued?;
        polled
    })
}

fn issue(ctx: &Ctx, group: &str, network: &str, names: &[(String, String)], parallel: usize) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((name, alias)) = names.get(i) else { break };
                    let args = docker_run_args(&ctx.run, group, name, network, alias, IMAGE_V1);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    if let Err(e) = engine::cli(&args) {
                        *failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        next.store(names.len(), Ordering::SeqCst);
                        break;
                    }
                }
            });
        }
    });
    failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner).map_or(Ok(()), Err)
}

/// The controller from cold: (all running, all healthy, (warnings, errors) it logged).
fn controller(ctx: &Ctx, n: usize) -> Result<(Duration, Duration, (usize, usize))> {
    let mut stack = Stack::new(ctx, &format!("c{n}"), services(n, IMAGE_V1))?;
    let started = Instant::now();
    stack.start(ctx, &[], &[])?;
    let converged = stack.wait_converged(ctx, started, deadline(n))?;
    // A moment for anything the controller still does after the last container became healthy
    // to show up in its log.
    pause(Duration::from_millis(300))?;
    let problems = stack.controller().problems();
    stack.controller().print_problems(&format!("converge N={n}"));
    Ok((converged.running, converged.healthy, problems))
}
