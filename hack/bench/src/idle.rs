//! `idle`: a converged stack of 50 services, the controller on its default `--resync 30s`.
//! CPU (utime+stime) and RSS (VmRSS) sampled every second over 60 s. Baseline, over the same
//! window: `docker events --filter label=<stack>`, the smallest always-on watcher of the stack.

use std::time::{Duration, Instant};

use crate::procfs::{self, Cpu};
use crate::stack::{Controller, Ctx, STACK_LABEL, Stack, pause, services};
use crate::util::{Error, Goal, Result, Table};
use crate::{IMAGE_V1, settle};

struct Usage {
    cpu: Cpu,
    rss_max: u64,
    rss_sum: u64,
    rss_last: u64,
    samples: u64,
    threads: Option<u64>,
}

impl Usage {
    fn new() -> Self {
        Self { cpu: Cpu::default(), rss_max: 0, rss_sum: 0, rss_last: 0, samples: 0, threads: None }
    }

    fn sample(&mut self, pid: u32) -> Result<()> {
        let rss = procfs::rss_kib(pid)?;
        self.rss_max = self.rss_max.max(rss);
        self.rss_sum += rss;
        self.rss_last = rss;
        self.samples += 1;
        self.threads = procfs::threads(pid);
        Ok(())
    }

    fn rss_avg(&self) -> f64 {
        self.rss_sum as f64 / self.samples.max(1) as f64
    }
}

fn mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

/// Runs the benchmark.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, n: usize, seconds: u64) -> Result<Vec<Goal>> {
    println!("== idle: {n} services converged, controller on its default --resync 30s, sampled for {seconds} s\n");
    let mut stack = Stack::new(ctx, "idle", services(n, IMAGE_V1))?;
    let started = Instant::now();
    stack.start(ctx, &[], &[])?;
    let converged = stack.wait_converged(ctx, started, Duration::from_secs(60 + 2 * n as u64))?;
    let controller = stack.controller();
    eprintln!("idle: converged in {:.1} s; settling ...", converged.healthy.as_secs_f64());
    pause(if ctx.quick { Duration::from_secs(2) } else { Duration::from_secs(5) })?;

    let filter = format!("label={STACK_LABEL}={}", stack.name);
    let watcher = Controller::spawn(
        std::path::Path::new("docker"),
        &["events".to_owned(), "--filter".to_owned(), filter],
        &[],
        None,
        None,
    )?;
    pause(Duration::from_secs(1))?;
    if !watcher.alive() {
        return Err(watcher.error("the baseline `docker events` exited"));
    }

    eprintln!("idle: sampling for {seconds} s ...");
    let (mut ctl, mut base) = (Usage::new(), Usage::new());
    let tasks0 = procfs::tasks(controller.pid());
    let (ctl0, base0, from) = (procfs::cpu(controller.pid())?, procfs::cpu(watcher.pid())?, Instant::now());
    for _ in 0..seconds {
        pause(Duration::from_secs(1))?;
        if !controller.alive() {
            return Err(controller.error("meme-controller exited during the measurement"));
        }
        ctl.sample(controller.pid())?;
        base.sample(watcher.pid()).map_err(|e| Error(format!("baseline docker events: {e}")))?;
    }
    let (ctl1, base1, window) = (procfs::cpu(controller.pid())?, procfs::cpu(watcher.pid())?, from.elapsed());
    let tasks = procfs::tasks_delta(&tasks0, &procfs::tasks(controller.pid()));
    ctl.cpu = ctl1.since(&ctl0);
    base.cpu = base1.since(&base0);
    let (warnings, errors) = controller.problems();
    controller.print_problems("idle");
    // Everything still running and healthy at the end: the figures are of a converged stack.
    stack.wait_converged(ctx, Instant::now(), Duration::from_secs(10))?;
    drop(watcher);
    stack.teardown();
    settle(ctx)?;

    let pct = |cpu: &Cpu| cpu.own_secs() / window.as_secs_f64() * 100.0;
    let sched_pct = |cpu: &Cpu| {
        cpu.sched_ns
            .map_or_else(|| "n/a".to_owned(), |ns| format!("{:.3} %", ns as f64 / 1e9 / window.as_secs_f64() * 100.0))
    };
    let mut table = Table::new(&[
        "process",
        "CPU % of a core",
        "(schedstat)",
        "children CPU %",
        "RSS max",
        "RSS avg",
        "RSS last",
        "threads",
    ]);
    for (name, u) in [("meme-controller", &ctl), ("baseline: docker events", &base)] {
        table.row(vec![
            name.to_owned(),
            format!("{:.3} %", pct(&u.cpu)),
            sched_pct(&u.cpu),
            format!("{:.3} %", u.cpu.children_secs() / window.as_secs_f64() * 100.0),
            mib(u.rss_max as f64),
            mib(u.rss_avg()),
            mib(u.rss_last as f64),
            u.threads.map_or_else(|| "?".to_owned(), |t| t.to_string()),
        ]);
    }
    table.print(&format!(
        "idle ({:.1} s window, {} samples, {} ticks/s; children = git processes the controller ran; controller \
         logged {warnings} warnings, {errors} errors)",
        window.as_secs_f64(),
        ctl.samples,
        procfs::clk_tck()
    ));
    procfs::print_tasks(
        &format!("idle: meme-controller per thread over the {:.1} s window (schedstat)", window.as_secs_f64()),
        &tasks,
        window,
        0,
    );
    let cpu = pct(&ctl.cpu);
    let rss = ctl.rss_max as f64 / 1024.0;
    let at = if n == 50 { String::new() } else { format!(" (goal is at 50 services; ran {n})") };
    Ok(vec![
        Goal::new(
            "idle",
            format!("CPU <= 0.2 % of a core{at}"),
            format!("{cpu:.3} % (docker events: {:.3} %)", pct(&base.cpu)),
            cpu <= 0.2,
        ),
        Goal::new(
            "idle",
            format!("RSS <= 20 MiB{at}"),
            format!("{rss:.1} MiB max (docker events: {})", mib(base.rss_max as f64)),
            rss <= 20.0,
        ),
    ])
}
