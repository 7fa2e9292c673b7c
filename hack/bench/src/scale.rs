//! `scale`: the "under load" goals in one command, at each N of a scale (default 50, 100,
//! 200 services), and which goal breaks first as N grows. For each N:
//!
//! 1. **Engine limit** (the baseline): N containers created and started through the engine's API
//!    (`POST /containers/create` + `/start`, the calls the controller makes) with K in flight, for
//!    each K of `--k` (default 8 and 16; 4 was always slower), until every one answers /health;
//!    the fastest K is the engine's own throughput limit on this host. The controller is compared
//!    with that, not with a CLI loop: a ratio of 1.0 means it converges as fast as the engine
//!    lets anything.
//! 2. **Cold converge**: the controller on its defaults on a fresh repository of N services until
//!    every container runs and answers /health. RSS sampled every 250 ms from its start.
//! 3. **Rollout under requests**: one commit changes every image v1→v2; meanwhile one client
//!    cycles `/metrics`, `/api/v1/status` and `/healthz` back to back, kept-alive and on new
//!    connections (the `api` benchmark's loop); p99 of each, RSS max.
//! 4. **No-op resync**: the controller restarted on the converged stack through the counting
//!    Docker API proxy with `--resync 2s`: API calls and CPU per period over `--periods`
//!    periods; then restarted again with `--resync 10m` (no resync in the window) and measured
//!    over the same time: the difference is what the resyncs themselves cost, the rest is the
//!    steady work that goes on between them (readiness probes every `healthCheck.interval`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::api::{self, GOAL_PATHS, PATHS};
use crate::cleanup::{self, Sweep};
use crate::procfs;
use crate::proxy::{Call, Proxy};
use crate::stack::{Ctx, GROUP_LABEL, Health, RUN_LABEL, Stack, create_config, pause, services, wait};
use crate::util::{Error, Goal, Result, Table, flag_duration, ms_f, secs};
use crate::{IMAGE_V1, IMAGE_V2, engine, settle};

/// The goals.
const CONVERGE_RATIO: f64 = 1.1;
const RESYNC_CPU_MS: f64 = 5.0;
const RSS_MIB: f64 = 20.0;

/// What `load` runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Numbers of services, in order.
    pub ns: Vec<usize>,
    /// Engine calls in flight for the baseline.
    pub ks: Vec<usize>,
    /// Resync periods measured.
    pub periods: usize,
    /// The controller's `--resync` in the resync window.
    pub interval: Duration,
}

/// Figures of one N.
#[derive(Debug, Default)]
struct Step {
    n: usize,
    /// (K, time until all answer /health).
    engine: Vec<(usize, Duration)>,
    running: Duration,
    converged: Duration,
    /// RSS KiB: max while converging, at the end of the settle pause, max during the rollout.
    rss_converge: u64,
    rss_settled: u64,
    rss_rollout: u64,
    rollout: Duration,
    /// The rollout ended within its deadline (else the figures are of the window until then).
    rollout_done: bool,
    rollout_cpu_pct: f64,
    /// Per goal path: (p99 keep-alive, p99 new connection, max, errors, requests).
    api: Vec<(f64, f64, f64, usize, usize)>,
    resync: Resync,
    problems: (usize, usize),
}

/// Steady-state figures per resync period.
#[derive(Debug, Default)]
struct Resync {
    periods: usize,
    calls: f64,
    stack_lists: f64,
    service_lists: f64,
    other: Vec<(String, f64)>,
    cpu_ms: f64,
    sched_ms: f64,
    /// (user, system) ms per period, ticks: system time is mostly the kernel's TCP work.
    split: (f64, f64),
    quiet_split: (f64, f64),
    /// The same time with no resync in it (`--resync 10m`).
    quiet_cpu_ms: f64,
    quiet_sched_ms: f64,
    quiet_calls: f64,
    busiest: String,
}

impl Step {
    fn fastest(&self) -> Option<(usize, Duration)> {
        self.engine.iter().copied().min_by_key(|(_, d)| *d)
    }

    fn ratio(&self) -> f64 {
        self.fastest().map_or(f64::INFINITY, |(_, d)| self.converged.as_secs_f64() / d.as_secs_f64())
    }

    fn rss_mib(&self) -> f64 {
        self.rss_converge.max(self.rss_settled).max(self.rss_rollout) as f64 / 1024.0
    }

    /// The goals at this N: (short name, goal, measured, how far over (measured / goal), pass).
    fn goals(&self) -> Vec<(&'static str, String, String, f64, bool)> {
        let n = self.n;
        let mut out = Vec::new();
        let (k, best) = self.fastest().unwrap_or((0, Duration::ZERO));
        out.push((
            "converge",
            format!("N={n}: cold converge / engine limit <= {CONVERGE_RATIO}"),
            format!("{:.2} ({} vs {} at K={k})", self.ratio(), secs(self.converged), secs(best)),
            self.ratio() / CONVERGE_RATIO,
            self.ratio() <= CONVERGE_RATIO,
        ));
        let r = &self.resync;
        let one_list = (r.calls - 1.0).abs() < 0.05 && (r.stack_lists - 1.0).abs() < 0.05;
        out.push((
            "resync calls",
            format!("N={n}: no-op resync = 1 list call"),
            format!(
                "{:.2} calls/period ({:.2} stack lists, {:.2} per-service lists)",
                r.calls, r.stack_lists, r.service_lists
            ),
            r.calls.max(1.0),
            one_list,
        ));
        out.push((
            "resync CPU",
            format!("N={n}: controller CPU per no-op resync <= {RESYNC_CPU_MS:.0} ms"),
            format!(
                "{:.2} ms/period (schedstat {:.2}; without resyncs {:.2}: resync's own {:.2})",
                r.cpu_ms,
                r.sched_ms,
                r.quiet_sched_ms,
                r.sched_ms - r.quiet_sched_ms
            ),
            r.cpu_ms / RESYNC_CPU_MS,
            r.cpu_ms <= RESYNC_CPU_MS,
        ));
        for (i, path) in PATHS[..GOAL_PATHS].iter().enumerate() {
            let (keep, new, max, errors, requests) = self.api.get(i).copied().unwrap_or_default();
            let worst = keep.max(new);
            out.push((
                if i == 0 { "/metrics" } else { "/api/v1/status" },
                format!("N={n}: {path} p99 <= {:.0} ms during a rollout", api::GOAL_MS),
                format!(
                    "p99 {} keep-alive, {} new (max {}, {requests} requests{})",
                    ms_f(keep),
                    ms_f(new),
                    ms_f(max),
                    if errors > 0 { format!(", {errors} errors") } else { String::new() }
                ) + if self.rollout_done { "" } else { "; the rollout did not end in time" },
                worst * 1000.0 / api::GOAL_MS,
                requests > 0 && errors == 0 && worst * 1000.0 <= api::GOAL_MS,
            ));
        }
        out.push((
            "RSS",
            format!("N={n}: RSS <= {RSS_MIB:.0} MiB"),
            format!(
                "{:.1} MiB max (converge {:.1}, settled {:.1}, rollout {:.1})",
                self.rss_mib(),
                self.rss_converge as f64 / 1024.0,
                self.rss_settled as f64 / 1024.0,
                self.rss_rollout as f64 / 1024.0
            ),
            self.rss_mib() / RSS_MIB,
            self.rss_mib() <= RSS_MIB,
        ));
        out
    }
}

/// Runs the scale; returns the goals at every N and which broke first.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, settings: &Settings) -> Result<Vec<Goal>> {
    println!(
        "== scale: at N = {:?} services: cold converge vs the engine's own limit (API create+start, K = {:?} in \
         flight, fastest), /metrics and /api/v1/status during a rollout of all, RSS, no-op resync (--resync {}, {} \
         periods)\n",
        settings.ns,
        settings.ks,
        flag_duration(settings.interval),
        settings.periods
    );
    let mut steps = Vec::new();
    for &n in &settings.ns {
        if cleanup::interrupted() {
            break;
        }
        let step = one(ctx, n, settings)?;
        print_step(&step);
        steps.push(step);
        settle(ctx)?;
    }
    print_scale(&steps);
    let mut goals: Vec<Goal> = Vec::new();
    for step in &steps {
        for (_, goal, measured, _, pass) in step.goals() {
            goals.push(Goal::new("scale", goal, measured, pass));
        }
    }
    goals.push(breaks_first(&steps));
    Ok(goals)
}

fn one(ctx: &Ctx, n: usize, settings: &Settings) -> Result<Step> {
    let mut step = Step { n, ..Step::default() };
    eprintln!("scale N={n}: load average {}", procfs::loadavg());
    for &k in &settings.ks {
        eprintln!("scale N={n}: engine limit, API create+start with {k} in flight ...");
        let took = engine_limit(ctx, n, k)?;
        eprintln!("scale N={n}: K={k}: {}", secs(took));
        step.engine.push((k, took));
        settle(ctx)?;
    }

    eprintln!("scale N={n}: controller from cold ...");
    let mut stack = Stack::new(ctx, &format!("ld{n}"), services(n, IMAGE_V1))?;
    let started = Instant::now();
    stack.start(ctx, &[], &[])?;
    let sampler = RssSampler::start(stack.controller().pid());
    let addr = stack.controller().api_addr(Duration::from_secs(30))?;
    let converged = stack.wait_converged(ctx, started, Duration::from_secs(60 + 2 * n as u64))?;
    (step.running, step.converged) = (converged.running, converged.healthy);
    step.rss_converge = sampler.max_between(started, Instant::now());
    eprintln!("scale N={n}: converged in {}; settling ...", secs(converged.healthy));
    pause(Duration::from_secs(5))?;
    step.rss_settled = procfs::rss_kib(stack.controller().pid())?;

    eprintln!("scale N={n}: rollout of {n} services v1->v2 under requests ...");
    for name in stack.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>() {
        stack.set_image(&name, IMAGE_V2)?;
    }
    let slow = Ctx { poll: api::ROLLOUT_POLL.max(ctx.poll), ..ctx.clone() };
    let mut done = false;
    let window = api::under_load(&stack, "rollout", addr, || {
        pause(Duration::from_millis(200))?;
        stack.commit(&format!("all {n} services: {IMAGE_V2}"))?;
        let t0 = Instant::now();
        // A rollout slower than this is a figure too: the window ends there and the table says so.
        match stack.wait_converged(&slow, t0, rollout_deadline(n)) {
            Ok(converged) => {
                done = true;
                Ok((t0, t0 + converged.healthy))
            }
            Err(e) if e.0.starts_with("timed out") && stack.controller().alive() => Ok((t0, Instant::now())),
            Err(e) => Err(e),
        }
    })?;
    step.rollout_done = done;
    step.rollout = Duration::from_secs_f64(window.secs());
    step.rollout_cpu_pct = window.ctl_cpu / window.secs() * 100.0;
    step.rss_rollout = sampler.max_between(Instant::now() - step.rollout, Instant::now());
    drop(sampler);
    for path in 0..GOAL_PATHS {
        let (k, f) = (api::figures(&window, path, true), api::figures(&window, path, false));
        step.api.push((k.p99, f.p99, k.max.max(f.max), k.errors + f.errors, k.requests + f.requests));
    }
    eprintln!("scale N={n}: rollout {} in {}", if done { "done" } else { "NOT done" }, secs(step.rollout));

    eprintln!("scale N={n}: no-op resync through the counting proxy ...");
    step.resync = resync(ctx, &mut stack, settings)?;
    step.problems = stack.controller().problems();
    stack.controller().print_problems(&format!("scale N={n}"));
    drop(stack);
    Ok(step)
}

/// N containers created and started through the API, `k` at a time, until all answer /health.
fn engine_limit(ctx: &Ctx, n: usize, k: usize) -> Result<Duration> {
    let group = ctx.name(&format!("e{n}k{k}"));
    let _guard = Sweep::new(&group);
    let network = format!("{group}_net");
    let alias = |i: usize| format!("svc{:03}", i + 1);
    let abort = AtomicBool::new(false);
    let started = Instant::now();
    engine::cli(&["network", "create", "--label", &format!("{RUN_LABEL}={}", ctx.run), &network])?;
    std::thread::scope(|s| {
        let poller = s.spawn(|| {
            let mut health = Health::default();
            wait(
                &format!("{n} containers answering /health"),
                Duration::from_secs(60 + 2 * n as u64),
                ctx.poll,
                None,
                || {
                    if abort.load(Ordering::SeqCst) {
                        return Err(Error::from("aborted"));
                    }
                    let list = engine::list(&[(GROUP_LABEL, group.as_str())])?;
                    Ok((health.check(&list) == n).then(|| started.elapsed()))
                },
            )
        });
        let next = AtomicUsize::new(0);
        let failure: Mutex<Option<Error>> = Mutex::new(None);
        std::thread::scope(|w| {
            for _ in 0..k.clamp(1, n.max(1)) {
                w.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n || cleanup::interrupted() {
                            break;
                        }
                        let config = create_config(&ctx.run, &group, &network, &alias(i), IMAGE_V1);
                        if let Err(e) = engine::run_container(&format!("{group}-{}", alias(i)), &config) {
                            failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(e);
                            next.store(n, Ordering::SeqCst);
                            break;
                        }
                    }
                });
            }
        });
        let failed = failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failed.is_some() {
            abort.store(true, Ordering::SeqCst);
        }
        let polled = poller.join().map_err(|_| Error::from("the poller panicked"))?;
        failed.map_or(polled, Err)
    })
}

/// The controller restarted through the proxy: `--resync <interval>` over `periods` periods,
/// then `--resync 10m` over the same time.
fn resync(ctx: &Ctx, stack: &mut Stack, settings: &Settings) -> Result<Resync> {
    let (periods, interval) = (settings.periods, settings.interval);
    let proxy = Proxy::start(&stack.scratch().join("scale-docker.sock"), &engine::socket())?;
    let host = vec![("DOCKER_HOST".to_owned(), format!("unix://{}", proxy.path().display()))];
    let window = interval * u32::try_from(periods).unwrap_or(u32::MAX);
    let mut r = Resync { periods, ..Resync::default() };

    stack.controller().kill();
    stack.start(ctx, &["--resync".to_owned(), flag_duration(interval)], &host)?;
    let n = stack.services.len();
    // Converged; after a rollout that did not end in time, the rest of it first.
    stack.wait_converged(ctx, Instant::now(), rollout_deadline(n))?;
    pause(interval * 2)?;
    let mark = Instant::now();
    wait("a resync's container list call", interval * 3, ctx.poll, Some(stack.controller()), || {
        Ok(proxy.calls().iter().any(|c| c.at >= mark && is_stack_list(c)).then_some(()))
    })?;
    pause(interval / 2)?;
    let (calls, cpu, sched, busiest) = measure(stack, &proxy, window)?;
    r.split = per_period(&cpu, periods);
    let cpu = cpu.own_secs() * 1000.0;
    r.calls = calls.len() as f64 / periods as f64;
    r.stack_lists = calls.iter().filter(|c| is_stack_list(c)).count() as f64 / periods as f64;
    r.service_lists = calls.iter().filter(|c| c.is_list() && !is_stack_list(c)).count() as f64 / periods as f64;
    let mut other: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for c in calls.iter().filter(|c| !c.is_list()) {
        *other.entry(c.key()).or_default() += 1;
    }
    r.other = other.into_iter().map(|(k, v)| (k, v as f64 / periods as f64)).collect();
    (r.cpu_ms, r.sched_ms, r.busiest) = (cpu / periods as f64, sched / periods as f64, busiest);

    eprintln!("scale N={n}: the same window with no resync (--resync 10m) ...");
    stack.controller().kill();
    stack.start(ctx, &["--resync".to_owned(), "10m".to_owned()], &host)?;
    stack.wait_converged(ctx, Instant::now(), Duration::from_secs(60 + 2 * n as u64))?;
    pause(interval * 2 + interval / 2)?;
    let (calls, cpu, sched, _) = measure(stack, &proxy, window)?;
    r.quiet_split = per_period(&cpu, periods);
    let cpu = cpu.own_secs() * 1000.0;
    r.quiet_calls = calls.len() as f64 / periods as f64;
    (r.quiet_cpu_ms, r.quiet_sched_ms) = (cpu / periods as f64, sched / periods as f64);
    Ok(r)
}

/// How long a rollout of `n` services may take.
fn rollout_deadline(n: usize) -> Duration {
    Duration::from_secs(120 + 3 * n as u64)
}

/// (user, system) CPU ms per period.
fn per_period(cpu: &procfs::Cpu, periods: usize) -> (f64, f64) {
    let ms = |ticks: u64| ticks as f64 * 1000.0 / procfs::clk_tck() as f64 / periods as f64;
    (ms(cpu.utime), ms(cpu.stime))
}

/// Calls through the proxy, CPU (ticks), schedstat ms and the busiest thread over `window`.
fn measure(stack: &Stack, proxy: &Proxy, window: Duration) -> Result<(Vec<Call>, procfs::Cpu, f64, String)> {
    let controller = stack.controller();
    let tasks0 = procfs::tasks(controller.pid());
    let (cpu0, from) = (procfs::cpu(controller.pid())?, Instant::now());
    pause(window)?;
    if !controller.alive() {
        return Err(controller.error("meme-controller exited during the measurement"));
    }
    let (cpu1, to) = (procfs::cpu(controller.pid())?, Instant::now());
    let tasks = procfs::tasks_delta(&tasks0, &procfs::tasks(controller.pid()));
    let sched: u64 = tasks.iter().map(|(_, ns, ..)| ns).sum();
    let busiest = tasks.first().map_or_else(String::new, |(name, ns, ..)| format!("{name} {:.1} ms", *ns as f64 / 1e6));
    Ok((proxy.calls_between(from, to), cpu1.since(&cpu0), sched as f64 / 1e6, busiest))
}

/// The resync's list call: the whole stack's containers (no service label in the filter; the
/// label key is not percent-encoded).
fn is_stack_list(call: &Call) -> bool {
    call.is_list() && !call.target.contains(crate::stack::SERVICE_LABEL)
}

/// Samples a process's RSS every 250 ms on a thread of its own until dropped.
struct RssSampler {
    samples: std::sync::Arc<Mutex<Vec<(Instant, u64)>>>,
    stop: std::sync::Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let samples: std::sync::Arc<Mutex<Vec<(Instant, u64)>>> = std::sync::Arc::default();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (s, st) = (std::sync::Arc::clone(&samples), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                if let Ok(kib) = procfs::rss_kib(pid) {
                    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((Instant::now(), kib));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        Self { samples, stop }
    }

    fn max_between(&self, from: Instant, to: Instant) -> u64 {
        let samples = self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.iter().filter(|(at, _)| *at >= from && *at <= to).map(|(_, kib)| *kib).max().unwrap_or(0)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn print_step(s: &Step) {
    let n = s.n;
    let mut t = Table::new(&["what", "figure"]).left(2);
    for (k, d) in &s.engine {
        t.row(vec![format!("engine limit: API create+start, K={k} in flight"), secs(*d)]);
    }
    t.row(vec!["controller from cold: all running".into(), secs(s.running)]);
    t.row(vec!["controller from cold: all answer /health".into(), secs(s.converged)]);
    t.row(vec!["controller / fastest K".into(), format!("{:.2}x", s.ratio())]);
    t.row(vec![
        "rollout of all (commit -> all v2 healthy, no v1)".into(),
        if s.rollout_done { secs(s.rollout) } else { format!("NOT DONE after {}", secs(s.rollout)) },
    ]);
    for (i, path) in PATHS[..GOAL_PATHS].iter().enumerate() {
        let (keep, new, max, errors, requests) = s.api.get(i).copied().unwrap_or_default();
        t.row(vec![
            format!("during the rollout: {path} p99 keep-alive / new (max; requests, errors)"),
            format!("{} / {} ({}; {requests}, {errors})", ms_f(keep), ms_f(new), ms_f(max)),
        ]);
    }
    t.row(vec![
        "RSS: converging max / settled / rollout max".into(),
        format!(
            "{:.1} / {:.1} / {:.1} MiB",
            s.rss_converge as f64 / 1024.0,
            s.rss_settled as f64 / 1024.0,
            s.rss_rollout as f64 / 1024.0
        ),
    ]);
    t.row(vec!["controller CPU during the rollout (% of a core)".into(), format!("{:.1} %", s.rollout_cpu_pct)]);
    let r = &s.resync;
    t.row(vec!["resync: API calls per period".into(), format!("{:.2}", r.calls)]);
    t.row(vec!["resync:   stack list calls per period".into(), format!("{:.2}", r.stack_lists)]);
    t.row(vec!["resync:   per-service list calls per period".into(), format!("{:.2}", r.service_lists)]);
    for (key, per) in &r.other {
        t.row(vec![format!("resync:   {key} per period"), format!("{per:.2}")]);
    }
    t.row(vec![
        "resync: controller CPU ms per period (ticks: user + system)".into(),
        format!("{:.2} ({:.0} + {:.0})", r.cpu_ms, r.split.0, r.split.1),
    ]);
    t.row(vec!["resync: controller CPU ms per period (schedstat)".into(), format!("{:.2}", r.sched_ms)]);
    t.row(vec!["resync: busiest thread over the window".into(), r.busiest.clone()]);
    t.row(vec!["no resync (--resync 10m): API calls per period".into(), format!("{:.2}", r.quiet_calls)]);
    t.row(vec![
        "no resync: CPU ms per period (ticks: user + system / schedstat)".into(),
        format!("{:.2} ({:.0} + {:.0}) / {:.2}", r.quiet_cpu_ms, r.quiet_split.0, r.quiet_split.1, r.quiet_sched_ms),
    ]);
    t.row(vec!["controller warnings / errors".into(), format!("{}/{}", s.problems.0, s.problems.1)]);
    t.print(&format!(
        "scale N={n} (load average {}; period = {} resync interval; CPU ticks at {}/s)",
        procfs::loadavg(),
        r.periods,
        procfs::clk_tck()
    ));
}

fn print_scale(steps: &[Step]) {
    let Some(first) = steps.first() else { return };
    let names: Vec<&str> = first.goals().iter().map(|g| g.0).collect();
    let mut headers = vec!["goal".to_owned()];
    headers.extend(steps.iter().map(|s| format!("N={}", s.n)));
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(&refs);
    for (i, name) in names.iter().enumerate() {
        let mut row = vec![(*name).to_owned()];
        for s in steps {
            let g = s.goals();
            row.push(g.get(i).map_or_else(String::new, |(_, _, _, over, pass)| {
                format!("{over:.2} {}", if *pass { "PASS" } else { "MISS" })
            }));
        }
        t.row(row);
    }
    t.print("scale: measured / goal at each N (<= 1.00 meets it; resync calls: calls per period)");
}

/// The goal that misses at the smallest N (ties: the one farthest over its goal there).
fn breaks_first(steps: &[Step]) -> Goal {
    let worst = steps.iter().find_map(|s| {
        let misses: Vec<_> = s.goals().into_iter().filter(|g| !g.4).collect();
        misses.into_iter().max_by(|a, b| a.3.total_cmp(&b.3)).map(|g| (s.n, g))
    });
    let ns: Vec<String> = steps.iter().map(|s| s.n.to_string()).collect();
    match worst {
        Some((n, (name, _, measured, over, _))) => {
            let also: Vec<&str> = steps
                .iter()
                .find(|s| s.n == n)
                .map(|s| s.goals().into_iter().filter(|g| !g.4 && g.0 != name).map(|g| g.0).collect())
                .unwrap_or_default();
            Goal::new(
                "scale",
                format!("where it breaks first (N = {})", ns.join(", ")),
                format!(
                    "{name} at N={n}: {measured} ({over:.2}x its goal){}",
                    if also.is_empty() { String::new() } else { format!("; also missed there: {}", also.join(", ")) }
                ),
                false,
            )
        }
        None => Goal::new("scale", format!("where it breaks first (N = {})", ns.join(", ")), "nothing broke", true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: usize, converged: f64, calls: f64) -> Step {
        Step {
            n,
            engine: vec![(4, Duration::from_secs(10)), (8, Duration::from_secs(8))],
            converged: Duration::from_secs_f64(converged),
            api: vec![(0.001, 0.002, 0.003, 0, 10); 2],
            rss_converge: 10 * 1024,
            resync: Resync { periods: 10, calls, stack_lists: calls.min(1.0), cpu_ms: 1.0, ..Resync::default() },
            ..Step::default()
        }
    }

    #[test]
    fn the_baseline_should_be_the_fastest_k() {
        let s = step(50, 8.4, 1.0);
        assert_eq!(s.fastest(), Some((8, Duration::from_secs(8))));
        assert!((s.ratio() - 1.05).abs() < 1e-9);
        assert!(s.goals().iter().all(|g| g.4), "{:?}", s.goals());
    }

    #[test]
    fn breaks_first_should_name_the_goal_missed_at_the_smallest_n() {
        let steps = vec![step(50, 8.0, 1.0), step(100, 8.0, 3.0), step(200, 12.0, 5.0)];
        let g = breaks_first(&steps);
        assert!(!g.pass);
        assert!(g.measured.starts_with("resync calls at N=100"), "{}", g.measured);
        let g = breaks_first(&steps[..1]);
        assert!(g.pass && g.measured == "nothing broke");
    }
}
