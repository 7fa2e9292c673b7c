//! `resync N`: a converged stack of N services, the controller on `--resync 2s` talking to the
//! engine through the counting proxy. Over ~10 resync periods of steady state: Docker API calls
//! per period by path, and the controller's CPU time per period. Baseline: one
//! `docker ps -a --filter label=...` of the same containers (what a cron script would run each
//! period), through its own proxy: its calls and CPU per run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::engine;
use crate::procfs::{self, Cpu};
use crate::proxy::{self, Proxy};
use crate::stack::{Ctx, STACK_LABEL, Stack, pause, services, wait};
use crate::util::{Error, Goal, Result, Table, flag_duration};
use crate::{IMAGE_V1, settle};

/// How many times the baseline `docker ps` runs.
const BASELINE_RUNS: usize = 5;

struct Row {
    n: usize,
    converged: Duration,
    periods: usize,
    calls: usize,
    lists: usize,
    list_min: usize,
    list_max: usize,
    cpu: Cpu,
    /// On-CPU ns of the runtime threads (tokio workers and main), and the busiest thread.
    runtime_ns: u64,
    busiest: Option<(String, u64)>,
    base_calls: f64,
    base_cpu_ms: f64,
    problems: (usize, usize),
}

/// Runs the benchmark for every N; goals at the largest N.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, ns: &[usize], periods: usize, interval: Duration) -> Result<Vec<Goal>> {
    println!(
        "== resync: steady state, controller --resync {} through a counting Docker API proxy, {periods} periods\n",
        flag_duration(interval)
    );
    let mut rows = Vec::new();
    for &n in ns {
        eprintln!("resync N={n}: converging ...");
        rows.push(one(ctx, n, periods, interval)?);
        settle(ctx)?;
    }
    let ms = |secs: f64, r: &Row| secs * 1000.0 / r.periods as f64;
    let mut table = Table::new(&[
        "N",
        "converged",
        "API calls/resync",
        "list calls/resync (min-max)",
        "ctl CPU ms/resync",
        "(schedstat)",
        "tokio+main ms/resync",
        "git children ms/resync",
        "docker ps: calls",
        "docker ps: CPU ms",
        "ctl warn/err",
    ]);
    for r in &rows {
        table.row(vec![
            r.n.to_string(),
            crate::util::secs(r.converged),
            format!("{:.2}", r.calls as f64 / r.periods as f64),
            format!("{:.2} ({}-{})", r.lists as f64 / r.periods as f64, r.list_min, r.list_max),
            format!("{:.2}", ms(r.cpu.own_secs(), r)),
            r.cpu.sched_ns.map_or_else(|| "n/a".to_owned(), |ns| format!("{:.2}", ns as f64 / 1e6 / r.periods as f64)),
            format!("{:.2}", r.runtime_ns as f64 / 1e6 / r.periods as f64),
            format!("{:.2}", ms(r.cpu.children_secs(), r)),
            format!("{:.1}", r.base_calls),
            format!("{:.1}", r.base_cpu_ms),
            format!("{}/{}", r.problems.0, r.problems.1),
        ]);
    }
    table.print(&format!(
        "resync (per resync period; CPU = utime+stime from /proc/<pid>/stat at {} ticks/s, schedstat = ns of live \
         threads, tokio+main = the runtime's threads only; git children = cutime+cstime; baseline = one \
         `docker ps -a --filter label=...`)",
        procfs::clk_tck()
    ));
    let Some(last) = rows.last() else { return Ok(Vec::new()) };
    let at = if last.n == 100 { String::new() } else { format!(" (goal is at N=100; largest N run: {})", last.n) };
    let calls = last.calls as f64 / last.periods as f64;
    let lists = last.lists as f64 / last.periods as f64;
    let cpu_ms = ms(last.cpu.own_secs(), last);
    Ok(vec![
        Goal::new(
            "resync",
            format!("N={}: Docker API calls per no-op resync = 1 list{at}", last.n),
            format!("{calls:.2} calls ({lists:.2} GET /containers/json)"),
            (calls - 1.0).abs() < 0.05 && (lists - 1.0).abs() < 0.05,
        ),
        Goal::new(
            "resync",
            format!("N={}: controller CPU per resync <= 5 ms{at}", last.n),
            format!(
                "{cpu_ms:.2} ms (+{:.2} ms in git children; busiest thread {}; tokio+main {:.2} ms)",
                ms(last.cpu.children_secs(), last),
                last.busiest.as_ref().map_or_else(
                    || "?".to_owned(),
                    |(name, ns)| format!("{name:?} {:.2} ms", *ns as f64 / 1e6 / last.periods as f64)
                ),
                last.runtime_ns as f64 / 1e6 / last.periods as f64
            ),
            cpu_ms <= 5.0,
        ),
    ])
}

fn one(ctx: &Ctx, n: usize, periods: usize, interval: Duration) -> Result<Row> {
    let mut stack = Stack::new(ctx, &format!("rs{n}"), services(n, IMAGE_V1))?;
    let proxy = Proxy::start(&stack.scratch().join("docker.sock"), &engine::socket())?;
    let started = Instant::now();
    let host = format!("unix://{}", proxy.path().display());
    stack.start(ctx, &["--resync".to_owned(), flag_duration(interval)], &[("DOCKER_HOST".to_owned(), host)])?;
    let converged = stack.wait_converged(ctx, started, Duration::from_secs(60 + 2 * n as u64))?;
    let controller = stack.controller();
    // Steady state: two quiet periods, then align on a resync's list call and start the window
    // half a period after it, so that the window holds exactly `periods` resyncs.
    pause(interval * 2)?;
    let mark = Instant::now();
    wait("a resync's container list call", interval * 3, ctx.poll, Some(controller), || {
        Ok(proxy.calls().iter().any(|c| c.at >= mark && c.is_list()).then_some(()))
    })?;
    pause(interval / 2)?;
    let tasks0 = procfs::tasks(controller.pid());
    let (cpu0, from) = (procfs::cpu(controller.pid())?, Instant::now());
    eprintln!("resync N={n}: measuring {periods} periods ...");
    for _ in 0..periods {
        pause(interval)?;
        if !controller.alive() {
            return Err(controller.error("meme-controller exited during the measurement"));
        }
    }
    let (cpu1, to) = (procfs::cpu(controller.pid())?, Instant::now());
    let window = to.duration_since(from);
    let tasks = procfs::tasks_delta(&tasks0, &procfs::tasks(controller.pid()));
    let calls = proxy.calls_between(from, to);

    let mut by_period = vec![0usize; periods];
    for c in calls.iter().filter(|c| c.is_list()) {
        let i = (c.at.duration_since(from).as_secs_f64() / interval.as_secs_f64()) as usize;
        if let Some(slot) = by_period.get_mut(i) {
            *slot += 1;
        }
    }
    let counts = proxy::count_by_path(&calls);
    let mut table = Table::new(&["call", "query", "count", "per resync"]).left(2);
    for ((key, query), count) in &counts {
        table.row(vec![
            key.clone(),
            query.clone(),
            count.to_string(),
            format!("{:.2}", *count as f64 / periods as f64),
        ]);
    }
    if counts.is_empty() {
        table.row(vec!["(no calls)".into(), String::new(), "0".into(), "0".into()]);
    }
    table.print(&format!(
        "resync N={n}: Docker API calls in {periods} periods ({:.1} s window, steady state)",
        window.as_secs_f64()
    ));
    let all = proxy::count_by_path(&proxy.calls());
    let mut whole = Table::new(&["call", "query", "count"]).left(2);
    for ((key, query), count) in &all {
        whole.row(vec![key.clone(), query.clone(), count.to_string()]);
    }
    whole.print(&format!("resync N={n}: every Docker API call since the controller started (converge included)"));
    procfs::print_tasks(&format!("resync N={n}: meme-controller per thread (schedstat)"), &tasks, window, periods);
    let problems = controller.problems();
    controller.print_problems(&format!("resync N={n}"));
    let (base_calls, base_cpu_ms) = baseline(&stack)?;
    Ok(Row {
        n,
        converged: converged.healthy,
        periods,
        calls: calls.len(),
        lists: calls.iter().filter(|c| c.is_list()).count(),
        list_min: by_period.iter().copied().min().unwrap_or(0),
        list_max: by_period.iter().copied().max().unwrap_or(0),
        cpu: cpu1.since(&cpu0),
        runtime_ns: tasks
            .iter()
            .filter(|(name, ..)| name.starts_with("tokio") || name == "meme-controller")
            .map(|(_, ns, ..)| ns)
            .sum(),
        busiest: tasks.first().map(|(name, ns, ..)| (name.clone(), *ns)),
        base_calls,
        base_cpu_ms,
        problems,
    })
}

/// `docker ps -a --filter label=<stack>` through a second proxy: (API calls, CPU ms) per run.
fn baseline(stack: &Stack) -> Result<(f64, f64)> {
    let proxy = Proxy::start(&stack.scratch().join("docker-ps.sock"), &engine::socket())?;
    let host = format!("unix://{}", proxy.path().display());
    let filter = format!("label={STACK_LABEL}={}", stack.name);
    let before = procfs::cpu(std::process::id())?;
    for _ in 0..BASELINE_RUNS {
        let out = std::process::Command::new("docker")
            .args(["-H", &host, "ps", "-a", "--filter", &filter, "--format", "{{.ID}} {{.State}} {{.Names}}"])
            .output()
            .map_err(|e| Error(format!("cannot run docker ps: {e}")))?;
        if !out.status.success() {
            return Err(Error(format!("docker ps failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
    }
    let after = procfs::cpu(std::process::id())?;
    let cpu_ms = after.since(&before).children_secs() * 1000.0 / BASELINE_RUNS as f64;
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for c in proxy.calls() {
        *by_key.entry(c.key()).or_default() += 1;
    }
    let calls = by_key.values().sum::<usize>() as f64 / BASELINE_RUNS as f64;
    Ok((calls, cpu_ms))
}
