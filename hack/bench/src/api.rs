//! `api`: N services (1 replica each, default 100) converged, the controller on its defaults.
//! One client issues requests back to back, one at a time, cycling `/metrics` and
//! `/api/v1/status`, each on a kept-alive connection of its own and on a new connection per
//! request (`Connection: close`): at steady state over a fixed window, then during a rollout of
//! every service (one commit changing every image v1→v2), from the commit's return until every
//! service runs one v2 container answering /health and no v1 container is left. Latency is from
//! just before the connect (or the write) to the last byte of the body. `/healthz` (a constant
//! answer) is in the same loop as a reference: what any request costs at that moment, whatever
//! the handler does.
//!
//! Baseline, in a third window: the same engine work as the rollout done by the bench on N plain
//! containers through the engine's API, 8 at a time (the controller's `--concurrency`): create and
//! start a v2 container, wait for /health, stop and remove its v1 container. The controller is
//! idle meanwhile (its event watch ignores containers it does not manage), so what the same
//! requests show then is the host's share of the latency, not the controller's.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cleanup::{self, Sweep};
use crate::client::Client;
use crate::converge::PARALLEL;
use crate::stack::{Ctx, RUN_LABEL, Stack, controller_has_flag, create_config, pause, services, wait_health};
use crate::util::{Error, Goal, Result, Table, bail, max, median, ms_f, percentile, secs_f};
use crate::{IMAGE_V1, IMAGE_V2};
use crate::{engine, procfs};

/// The goal: p99 during the rollout.
pub const GOAL_MS: f64 = 5.0;
/// The endpoints measured: the two of the goal, then the reference.
pub const PATHS: [&str; 3] = ["/metrics", "/api/v1/status", "/healthz"];
/// How many of [`PATHS`] the goal is about.
pub const GOAL_PATHS: usize = 2;
/// A request that takes longer failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the end of the rollout is looked for (a list call of 2N containers: slower than
/// `--poll`, so that the bench's own polling weighs little on the engine).
pub const ROLLOUT_POLL: Duration = Duration::from_millis(250);

/// One request.
struct Record {
    path: usize,
    keep: bool,
    at: Instant,
    took: Duration,
    size: usize,
    ok: bool,
}

/// What the load loop did.
struct Load {
    records: Vec<Record>,
    first_error: Option<String>,
    /// The loop's start on both clocks, to write wall-clock times in the dump.
    epoch: (Instant, SystemTime),
}

/// A measurement window.
pub struct Window {
    name: &'static str,
    from: Instant,
    to: Instant,
    /// Controller and bench CPU over the window, seconds.
    pub ctl_cpu: f64,
    bench_cpu: f64,
    /// The controller's threads over the window ([`procfs::tasks_delta`]).
    tasks: Vec<(String, u64, u64, usize)>,
    load: Load,
}

impl Window {
    fn records(&self) -> impl Iterator<Item = &Record> {
        self.load.records.iter().filter(|r| r.at >= self.from && r.at < self.to)
    }

    pub fn secs(&self) -> f64 {
        self.to.duration_since(self.from).as_secs_f64()
    }
}

/// Latency figures of one endpoint and connection mode in one window.
pub struct Figures {
    pub requests: usize,
    pub errors: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    max_at: f64,
    sizes: Vec<f64>,
}

pub fn figures(w: &Window, path: usize, keep: bool) -> Figures {
    let mine: Vec<&Record> = w.records().filter(|r| r.path == path && r.keep == keep).collect();
    let ok: Vec<&Record> = mine.iter().copied().filter(|r| r.ok).collect();
    let lat: Vec<f64> = ok.iter().map(|r| r.took.as_secs_f64()).collect();
    let slowest = ok.iter().max_by_key(|r| r.took);
    Figures {
        requests: mine.len(),
        errors: mine.len() - ok.len(),
        p50: median(&lat),
        p99: percentile(&lat, 99.0),
        max: max(&lat),
        max_at: slowest.map_or(0.0, |r| r.at.duration_since(w.from).as_secs_f64()),
        sizes: ok.iter().map(|r| r.size as f64).collect(),
    }
}

fn size_text(sizes: &[f64]) -> String {
    let kib = |b: f64| format!("{:.1}", b / 1024.0);
    if sizes.is_empty() {
        return "n/a".to_owned();
    }
    let (lo, hi) = (kib(sizes.iter().copied().fold(f64::INFINITY, f64::min)), kib(max(sizes)));
    if lo == hi { format!("{hi} KiB") } else { format!("{} KiB ({lo}-{hi})", kib(median(sizes))) }
}

/// Requests back to back until `stop`: every path of [`PATHS`] on its kept-alive connection,
/// then every path on a new connection, and again.
fn hammer(addr: std::net::SocketAddr, stop: &AtomicBool) -> Load {
    let mut kept = PATHS.map(|_| Client::new(addr, REQUEST_TIMEOUT));
    let mut fresh = Client::new(addr, REQUEST_TIMEOUT);
    let epoch = (Instant::now(), SystemTime::now());
    let mut load = Load { records: Vec::with_capacity(1 << 16), first_error: None, epoch };
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) && !cleanup::interrupted() {
        let (path, keep) = (i % PATHS.len(), (i / PATHS.len()).is_multiple_of(2));
        i += 1;
        let at = Instant::now();
        let client = if keep { &mut kept[path] } else { &mut fresh };
        match client.get(PATHS[path], keep) {
            Ok(reply) => {
                let ok = reply.status == 200;
                if !ok && load.first_error.is_none() {
                    load.first_error = Some(format!("GET {}: HTTP {}", PATHS[path], reply.status));
                }
                load.records.push(Record { path, keep, at, took: reply.took, size: reply.body.len(), ok });
            }
            Err(e) => {
                load.first_error.get_or_insert(e.0);
                load.records.push(Record { path, keep, at, took: at.elapsed(), size: 0, ok: false });
                // Not a hot loop on a dead server.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    load
}

/// Runs `hammer` while `during` runs; `during` returns the window's (start, end).
pub fn under_load(
    stack: &Stack,
    name: &'static str,
    addr: std::net::SocketAddr,
    during: impl FnOnce() -> Result<(Instant, Instant)>,
) -> Result<Window> {
    let pid = stack.controller().pid();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let load = s.spawn(|| hammer(addr, &stop));
        let (ctl0, bench0, tasks0) = (procfs::cpu(pid), procfs::cpu(std::process::id()), procfs::tasks(pid));
        let window = during();
        let (ctl1, bench1, tasks1) = (procfs::cpu(pid), procfs::cpu(std::process::id()), procfs::tasks(pid));
        stop.store(true, Ordering::SeqCst);
        let load = load.join().map_err(|_| Error::from("the request loop panicked"))?;
        let (from, to) = window?;
        Ok(Window {
            name,
            from,
            to,
            ctl_cpu: ctl1?.since(&ctl0?).own_secs(),
            bench_cpu: bench1?.since(&bench0?).own_secs(),
            tasks: procfs::tasks_delta(&tasks0, &tasks1),
            load,
        })
    })
}

/// Runs the benchmark on `n` services with a steady window of `seconds`.
///
/// # Errors
/// A deadline passed, the engine or the controller failed, or the controller has no `--listen`.
pub fn run(ctx: &Ctx, n: usize, seconds: u64, dump: Option<&Path>) -> Result<Vec<Goal>> {
    println!(
        "== api: GET /metrics and /api/v1/status (and /healthz for reference) back to back, one at a time, kept-alive \
         and new connection, {n} services: {seconds} s at steady state, then during a rollout of all of them \
         (v1->v2 in one commit)\n"
    );
    if !controller_has_flag(ctx, "--listen") {
        bail!("this meme-controller has no --listen (HTTP API): the api benchmark measures it");
    }
    let mut stack = Stack::new(ctx, &format!("api{n}"), services(n, IMAGE_V1))?;
    let started = Instant::now();
    stack.start(ctx, &[], &[])?;
    let addr = stack.controller().api_addr(Duration::from_secs(30))?;
    let converged = stack.wait_converged(ctx, started, Duration::from_secs(60 + 2 * n as u64))?;
    eprintln!("api: {n} services converged in {}; settling ...", secs_f(converged.healthy.as_secs_f64()));
    pause(if ctx.quick { Duration::from_secs(2) } else { Duration::from_secs(5) })?;

    eprintln!("api: steady state, {seconds} s of requests ...");
    let steady = under_load(&stack, "steady", addr, || {
        // The loop's first requests open its connections: start the window a moment later.
        pause(Duration::from_millis(200))?;
        let from = Instant::now();
        pause(Duration::from_secs(seconds))?;
        Ok((from, Instant::now()))
    })?;

    eprintln!("api: rollout of {n} services v1->v2 under requests ...");
    for name in stack.services.iter().map(|s| s.name.clone()).collect::<Vec<_>>() {
        stack.set_image(&name, IMAGE_V2)?;
    }
    let slow = Ctx { poll: ROLLOUT_POLL.max(ctx.poll), ..ctx.clone() };
    let mut commit = Duration::ZERO;
    let rollout = under_load(&stack, "rollout", addr, || {
        pause(Duration::from_millis(200))?;
        let before = Instant::now();
        stack.commit(&format!("all {n} services: {IMAGE_V2}"))?;
        let t0 = Instant::now();
        commit = t0.duration_since(before);
        let done = stack.wait_converged(&slow, t0, Duration::from_secs(120 + 3 * n as u64))?;
        Ok((t0, t0 + done.healthy))
    })?;
    eprintln!("api: rollout done in {}", secs_f(rollout.secs()));
    let end = Client::new(addr, REQUEST_TIMEOUT).get("/api/v1/status", false).ok().and_then(|r| {
        let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
        let ready: u64 = v["services"].as_array()?.iter().filter_map(|s| s["readyReplicas"].as_u64()).sum();
        Some(format!("syncStatus {}, {ready} ready replicas", v["syncStatus"].as_str().unwrap_or("?")))
    });
    eprintln!("api: baseline, the same engine work by the bench on {n} plain containers, controller idle ...");
    let base = baseline(ctx, &stack, addr, n)?;
    eprintln!("api: baseline done in {}", secs_f(base.secs()));
    let (warnings, errors) = stack.controller().problems();
    stack.controller().print_problems("api");
    drop(stack);

    let mut table = Table::new(&[
        "window",
        "endpoint",
        "connection",
        "requests",
        "errors",
        "p50",
        "p99",
        "max",
        "max at",
        "response size",
    ])
    .left(3);
    let all = [&steady, &rollout, &base];
    for w in all {
        for (path, name) in PATHS.iter().enumerate() {
            for keep in [true, false] {
                let f = figures(w, path, keep);
                table.row(vec![
                    w.name.to_owned(),
                    if path < GOAL_PATHS { (*name).to_owned() } else { format!("{name} (reference)") },
                    if keep { "keep-alive" } else { "new" }.to_owned(),
                    f.requests.to_string(),
                    f.errors.to_string(),
                    ms_f(f.p50),
                    ms_f(f.p99),
                    ms_f(f.max),
                    format!("{:.1} s", f.max_at),
                    size_text(&f.sizes),
                ]);
            }
        }
    }
    table.print(&format!(
        "api N={n}: latency of one request at a time, from before the connect/write to the body's last byte (max at = \
         seconds into the window; controller logged {warnings} warnings, {errors} errors)"
    ));
    let mut windows = Table::new(&[
        "window",
        "duration",
        "requests",
        "per second",
        "errors",
        "controller CPU % of a core",
        "meme-bench CPU %",
        "first error",
    ]);
    for w in all {
        let count = w.records().count();
        let errors = w.records().filter(|r| !r.ok).count();
        windows.row(vec![
            w.name.to_owned(),
            secs_f(w.secs()),
            count.to_string(),
            format!("{:.0}", count as f64 / w.secs()),
            errors.to_string(),
            format!("{:.1} %", w.ctl_cpu / w.secs() * 100.0),
            format!("{:.1} %", w.bench_cpu / w.secs() * 100.0),
            w.load.first_error.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    windows.print(&format!(
        "api N={n}: windows (rollout = from `git commit`'s return ({} itself) until every service runs one v2 \
         container answering /health and no v1 is left, polled every {} ms; status at the end: {}; baseline = the \
         bench replacing {n} plain v1 containers by v2 through the engine API, {PARALLEL} at a time (create, start, \
         /health, stop and remove the old), the controller idle; CPU = utime+stime, {} ticks/s)",
        ms_f(commit.as_secs_f64()),
        slow.poll.as_millis(),
        end.as_deref().unwrap_or("?"),
        procfs::clk_tck()
    ));

    procfs::print_tasks(
        &format!("api N={n}: meme-controller per thread during the rollout ({:.1} s, schedstat)", rollout.secs()),
        &rollout.tasks,
        rollout.to.duration_since(rollout.from),
        0,
    );
    if let Some(path) = dump {
        write_dump(path, &all)?;
        println!("api: every request written to {}\n", path.display());
    }

    let at = if n == 100 { String::new() } else { format!(" (goal is at N=100; ran {n})") };
    Ok(PATHS[..GOAL_PATHS]
        .iter()
        .enumerate()
        .map(|(path, name)| {
            let (k, f) = (figures(&rollout, path, true), figures(&rollout, path, false));
            let (sk, sf) = (figures(&steady, path, true), figures(&steady, path, false));
            let (bk, bf) = (figures(&base, path, true), figures(&base, path, false));
            let worst = k.p99.max(f.p99);
            let errors = k.errors + f.errors;
            Goal::new(
                "api",
                format!("N={n}: {name} p99 <= {GOAL_MS:.0} ms during a rollout{at}"),
                format!(
                    "p99 {} keep-alive, {} new conn (max {}; p99 steady {} / {}, baseline {} / {}){}",
                    ms_f(k.p99),
                    ms_f(f.p99),
                    ms_f(k.max.max(f.max)),
                    ms_f(sk.p99),
                    ms_f(sf.p99),
                    ms_f(bk.p99),
                    ms_f(bf.p99),
                    if errors > 0 { format!("; {errors} errors") } else { String::new() }
                ),
                k.requests > 0 && f.requests > 0 && errors == 0 && worst * 1000.0 <= GOAL_MS,
            )
        })
        .collect())
}

/// The baseline window: `n` plain v1 containers set up (untimed), then replaced by v2 ones,
/// [`PARALLEL`] at a time, while the request loop runs.
fn baseline(ctx: &Ctx, stack: &Stack, addr: std::net::SocketAddr, n: usize) -> Result<Window> {
    let group = ctx.name("ab");
    let _guard = Sweep::new(&group);
    let network = format!("{group}_net");
    engine::cli(&["network", "create", "--label", &format!("{RUN_LABEL}={}", ctx.run), &network])?;
    let alias = |i: usize| format!("svc{:03}", i + 1);
    let config = |i: usize, image: &str| create_config(&ctx.run, &group, &network, &alias(i), image);
    let olds = parallel(n, |i| {
        let id = engine::run_container(&format!("{group}-{}-v1", alias(i)), &config(i, IMAGE_V1))?;
        wait_health(ctx, &id, Duration::from_secs(60))?;
        Ok(id)
    })?;
    pause(if ctx.quick { Duration::from_secs(1) } else { Duration::from_secs(3) })?;
    under_load(stack, "baseline", addr, || {
        pause(Duration::from_millis(200))?;
        let from = Instant::now();
        parallel(n, |i| {
            let id = engine::run_container(&format!("{group}-{}-v2", alias(i)), &config(i, IMAGE_V2))?;
            wait_health(ctx, &id, Duration::from_secs(60))?;
            engine::stop(&olds[i])?;
            engine::remove_force(&olds[i])
        })?;
        Ok((from, Instant::now()))
    })
}

/// `f(0..n)` on [`PARALLEL`] threads; the results in order, or the first error (the others stop
/// taking work).
fn parallel<T: Send>(n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    use std::sync::PoisonError;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(n) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n || cleanup::interrupted() {
                        break;
                    }
                    match f(i) {
                        Ok(v) => results.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(v),
                        Err(e) => {
                            failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
                            next.store(n, Ordering::SeqCst);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    if cleanup::interrupted() {
        bail!("interrupted");
    }
    Ok(results.into_inner().unwrap_or_else(PoisonError::into_inner).into_iter().flatten().collect())
}

/// Every request of the windows as CSV: window, endpoint, connection, wall-clock time (unix
/// seconds, to compare with the controller's log), seconds into the window, latency ms, bytes, ok.
fn write_dump(path: &Path, windows: &[&Window]) -> Result<()> {
    use std::io::Write as _;
    let file = std::fs::File::create(path).map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "window,endpoint,connection,unix_time,seconds_into_window,latency_ms,bytes,ok")?;
    for w in windows {
        let (start, wall) = w.load.epoch;
        for r in w.records() {
            let unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default() + r.at.duration_since(start);
            writeln!(
                out,
                "{},{},{},{:.6},{:.6},{:.3},{},{}",
                w.name,
                PATHS[r.path],
                if r.keep { "keep-alive" } else { "new" },
                unix.as_secs_f64(),
                r.at.duration_since(w.from).as_secs_f64(),
                r.took.as_secs_f64() * 1000.0,
                r.size,
                r.ok
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_should_show_a_range_only_when_they_vary() {
        assert_eq!(size_text(&[2048.0, 2048.0]), "2.0 KiB");
        assert_eq!(size_text(&[2048.0, 2050.0]), "2.0 KiB");
        assert_eq!(size_text(&[1024.0, 2048.0, 4096.0]), "2.0 KiB (1.0-4.0)");
        assert_eq!(size_text(&[]), "n/a");
    }
}
