//! `reload`: what a Caddyfile change costs the users of a service. Real Caddy on a loopback host
//! port in front of a two-replica backend, the open-loop load of the `traffic` bench (50
//! requests/s, a new connection each), and a Caddyfile change by git commit, each adding a
//! `/config` route that answers `config N`. With `reload: {exec: [caddy, reload, ...]}` (as
//! manifests/staging) the file is copied into the running Caddy and reloaded; the baseline, in
//! the same run, is the same stack without `reload`: the controller replaces Caddy, which holds
//! the host port, so by `Recreate`. Measured per change, from just before the commit until the
//! controller reports it synced and Caddy answers `config N`: requests sent, failed, the outage
//! window (first failure to the next answer) and the slowest request.

use std::time::Duration;

use crate::edge::{ControllerEdge, LOAD_LIMIT, RATE, REPLICAS, Span, caddyfile, timed, wait_serving};
use crate::load::{Load, Sample, Window};
use crate::stack::{Ctx, pause};
use crate::util::{Goal, Result, Table, ms_f, secs};

/// One side's changes, its whole load, and whether Caddy stayed the same container.
struct Side {
    changes: Vec<Span>,
    samples: Vec<Sample>,
    kept: bool,
    problems: (usize, usize),
}

impl Side {
    fn windows(&self) -> Vec<Window> {
        self.changes.iter().map(|s| Window::of(&self.samples, s.from, s.to)).collect()
    }
}

/// Runs `changes` Caddyfile changes with `reload` and as many without.
///
/// # Errors
/// A stack did not come up, a change did not finish in time, or the engine failed.
pub fn run(ctx: &Ctx, changes: usize) -> Result<Vec<Goal>> {
    println!(
        "== reload: Caddy on a loopback host port, backend of {REPLICAS} replicas, {RATE} requests/s (GET /, a new \
         connection each); {changes} Caddyfile changes by git commit with `reload: {{exec: caddy reload}}` vs \
         without (Caddy recreated)\n"
    );
    eprintln!("reload: with reload ...");
    let with = side(ctx, "rl", changes, true)?;
    crate::settle(ctx)?;
    eprintln!("reload: without reload ...");
    let without = side(ctx, "rn", changes, false)?;
    crate::settle(ctx)?;

    let mut table = Table::new(&["side", "#", "took", "sent", "failed", "outage", "slowest", "failures"]).left(2);
    for (name, s) in [("with reload", &with), ("without reload", &without)] {
        for (i, (span, w)) in s.changes.iter().zip(s.windows()).enumerate() {
            table.row(vec![
                name.to_owned(),
                (i + 1).to_string(),
                secs(span.took()),
                w.sent.to_string(),
                w.failed.to_string(),
                secs(w.outage),
                ms_f(w.slowest.as_secs_f64()),
                w.reasons(),
            ]);
        }
        let whole = Window::of(&s.samples, Duration::ZERO, Duration::MAX);
        table.row(vec![
            name.to_owned(),
            "whole load".to_owned(),
            String::new(),
            whole.sent.to_string(),
            whole.failed.to_string(),
            String::new(),
            ms_f(whole.slowest.as_secs_f64()),
            whole.reasons(),
        ]);
    }
    table.print(&format!(
        "reload (requests by send time, from just before the commit until synced and Caddy answers the new \
         /config; `whole load` adds the 1 s pauses; Caddy container kept: with reload {}, without {}; controller \
         logged {}+{} warnings, {}+{} errors)",
        yes_no(with.kept),
        yes_no(without.kept),
        with.problems.0,
        without.problems.0,
        with.problems.1,
        without.problems.1,
    ));
    let failed = |s: &Side| s.windows().iter().map(|w| w.failed).collect::<Vec<_>>();
    let range = |v: &[usize]| match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "-".to_owned(),
    };
    let (w, wo) = (failed(&with), failed(&without));
    let outage = without.windows().iter().map(|w| w.outage).max().unwrap_or_default();
    let worst = w.iter().copied().max().unwrap_or(0);
    Ok(vec![Goal::new(
        "reload",
        "failed requests per Caddyfile change with reload = 0",
        format!(
            "{} per change, Caddy kept: {} (without reload: {} per change, outage up to {})",
            range(&w),
            yes_no(with.kept),
            range(&wo),
            secs(outage)
        ),
        worst == 0 && with.kept,
    )])
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn side(ctx: &Ctx, suffix: &str, changes: usize, reload: bool) -> Result<Side> {
    let edge = ControllerEdge::start(ctx, suffix, Duration::ZERO, reload, &caddyfile(None))?;
    let before = edge.caddy_ids()?;
    let load = Load::start(edge.addr, RATE, LOAD_LIMIT);
    pause(Duration::from_secs(1))?;
    let mut spans = Vec::new();
    for n in 1..=changes {
        let span = timed(load.started, || {
            let revision = edge.commit("files/Caddyfile", &caddyfile(Some(n)), &format!("Caddyfile: config {n}"))?;
            edge.wait_synced(ctx, &revision, crate::edge::DEADLINE)?;
            wait_serving(ctx, edge.addr, "/config", Some(&format!("config {n}")), crate::edge::DEADLINE)
        })?;
        eprintln!("reload ({suffix}) change {n}/{changes}: {}", secs(span.took()));
        spans.push(span);
        pause(Duration::from_secs(1))?;
    }
    let samples = load.stop();
    let kept = edge.caddy_ids()? == before;
    let problems = edge.stack.controller().problems();
    edge.stack.controller().print_problems(&format!("reload ({suffix})"));
    Ok(Side { changes: spans, samples, kept, problems })
}
