//! `traffic`: what a deploy costs the users of a service. Real Caddy on a loopback host port in
//! front of a two-replica backend, an open-loop load of 50 requests/s through it, each request on
//! a new connection; the backend's image swaps v1→v2→v1… Controller: one git commit per swap,
//! until the controller reports the commit synced and the backend is two ready containers of the
//! new image (the old ones gone). Baseline, in the same run: the same stack as a
//! `docker-compose` project, one `docker-compose up -d` after editing the image per swap, until
//! the same two ready containers. Measured per swap: requests sent (by send time, from just
//! before the commit or edit to the end of the wait), failed, the slowest. Done once with the
//! app binding its port at once and once with it needing a few seconds to start
//! (`STARTUP_DELAY` of the test server), where a deploy that does not wait for readiness shows.

use std::time::{Duration, SystemTime};

use crate::edge::{ComposeEdge, ControllerEdge, LOAD_LIMIT, RATE, REPLICAS, Span, timed};
use crate::load::{Load, Sample, Window};
use crate::stack::{Ctx, pause};
use crate::util::{Goal, Result, Table, ms_f, secs, utc};

/// Slowest request allowed during a swap (issue 8).
const SLOWEST_GOAL: Duration = Duration::from_millis(250);

/// One side's swaps and the whole load's samples.
struct Side {
    swaps: Vec<(&'static str, Span)>,
    samples: Vec<Sample>,
    /// The load's start on the wall clock.
    wall: SystemTime,
}

impl Side {
    fn windows(&self) -> Vec<Window> {
        self.swaps.iter().map(|(_, s)| Window::of(&self.samples, s.from, s.to)).collect()
    }

    /// Requests slower than `limit` sent during a swap: (swap number, its sample, time into
    /// the swap), for finding them in the controller's log.
    fn slow(&self, limit: Duration) -> Vec<(usize, &Sample, Duration)> {
        let mut out = Vec::new();
        for (i, (_, span)) in self.swaps.iter().enumerate() {
            for s in self.samples.iter().filter(|s| s.at >= span.from && s.at < span.to && s.latency > limit) {
                out.push((i + 1, s, s.at.saturating_sub(span.from)));
            }
        }
        out
    }

    /// Sent, failed and slowest over every swap.
    fn during_swaps(&self) -> (usize, usize, usize, Duration) {
        let w = self.windows();
        (
            w.iter().map(|w| w.sent).sum(),
            w.iter().map(|w| w.failed).sum(),
            w.iter().map(|w| w.failed).max().unwrap_or(0),
            w.iter().map(|w| w.slowest).max().unwrap_or_default(),
        )
    }
}

/// The version swap `i` (from 0) goes to: v2, v1, v2, ...
fn target(i: usize) -> &'static str {
    if i.is_multiple_of(2) { "v2" } else { "v1" }
}

/// Runs `swaps` swaps on each side, for each start delay in `delays`.
///
/// # Errors
/// A stack did not come up, a swap did not finish in time, or the engine failed.
pub fn run(ctx: &Ctx, swaps: usize, delays: &[Duration]) -> Result<Vec<Goal>> {
    let compose = crate::edge::compose_version().unwrap_or_else(|| "?".to_owned());
    println!(
        "== traffic: Caddy on a loopback host port, backend of {REPLICAS} replicas, {RATE} requests/s (GET /, a new \
         connection each); {swaps} image swaps v1<->v2 by git commit (controller) vs editing the image + \
         `docker-compose up -d` (docker-compose {compose})\n"
    );
    let mut goals = Vec::new();
    for &delay in delays {
        let tag = format!("{}s", delay.as_secs());
        eprintln!("traffic (app start {tag}): controller ...");
        let (controller, problems) = controller_side(ctx, &tag, swaps, delay)?;
        crate::settle(ctx)?;
        eprintln!("traffic (app start {tag}): docker-compose ...");
        let compose = compose_side(ctx, &tag, swaps, delay)?;
        crate::settle(ctx)?;
        goals.extend(report(&tag, delay, &controller, &compose, problems));
    }
    Ok(goals)
}

fn controller_side(ctx: &Ctx, tag: &str, swaps: usize, delay: Duration) -> Result<(Side, (usize, usize))> {
    let edge = ControllerEdge::start(ctx, &format!("tc{tag}"), delay, true)?;
    let load = Load::start(edge.addr, RATE, LOAD_LIMIT);
    pause(Duration::from_secs(1))?;
    let mut spans = Vec::new();
    for i in 0..swaps {
        let version = target(i);
        let span = timed(load.started, || {
            let revision = edge.commit_backend(version)?;
            edge.wait_swapped(ctx, &revision, version)
        })?;
        eprintln!("traffic (app start {tag}) controller swap {}/{swaps} -> {version}: {}", i + 1, secs(span.took()));
        spans.push((version, span));
        pause(Duration::from_secs(1))?;
    }
    let wall = load.wall;
    let samples = load.stop();
    let problems = edge.stack.controller().problems();
    edge.stack.controller().print_problems(&format!("traffic (app start {tag})"));
    Ok((Side { swaps: spans, samples, wall }, problems))
}

fn compose_side(ctx: &Ctx, tag: &str, swaps: usize, delay: Duration) -> Result<Side> {
    let edge = ComposeEdge::start(ctx, &format!("tk{tag}"), delay)?;
    edge.wait_swapped(ctx, "v1")?;
    let load = Load::start(edge.addr, RATE, LOAD_LIMIT);
    pause(Duration::from_secs(1))?;
    let mut spans = Vec::new();
    for i in 0..swaps {
        let version = target(i);
        let span = timed(load.started, || {
            edge.deploy(version)?;
            edge.wait_swapped(ctx, version)
        })?;
        eprintln!("traffic (app start {tag}) compose swap {}/{swaps} -> {version}: {}", i + 1, secs(span.took()));
        spans.push((version, span));
        pause(Duration::from_secs(1))?;
    }
    let wall = load.wall;
    Ok(Side { swaps: spans, samples: load.stop(), wall })
}

fn report(tag: &str, delay: Duration, controller: &Side, compose: &Side, problems: (usize, usize)) -> Vec<Goal> {
    let mut table =
        Table::new(&["side", "#", "to", "took", "sent", "failed", "slowest", "sent at", "outage", "failures"]).left(3);
    for (name, side) in [("controller", controller), ("docker-compose", compose)] {
        for (i, ((version, span), w)) in side.swaps.iter().zip(side.windows()).enumerate() {
            table.row(vec![
                name.to_owned(),
                (i + 1).to_string(),
                (*version).to_owned(),
                secs(span.took()),
                w.sent.to_string(),
                w.failed.to_string(),
                ms_f(w.slowest.as_secs_f64()),
                format!("+{}", secs(w.slowest_at)),
                secs(w.outage),
                w.reasons(),
            ]);
        }
        let (sent, failed, _, slowest) = side.during_swaps();
        let took: Duration = side.swaps.iter().map(|(_, s)| s.took()).sum();
        table.row(vec![
            name.to_owned(),
            "all swaps".to_owned(),
            String::new(),
            secs(took),
            sent.to_string(),
            failed.to_string(),
            ms_f(slowest.as_secs_f64()),
            String::new(),
            String::new(),
            String::new(),
        ]);
        let whole = Window::of(&side.samples, Duration::ZERO, Duration::MAX);
        table.row(vec![
            name.to_owned(),
            "whole load".to_owned(),
            String::new(),
            String::new(),
            whole.sent.to_string(),
            whole.failed.to_string(),
            ms_f(whole.slowest.as_secs_f64()),
            String::new(),
            String::new(),
            whole.reasons(),
        ]);
    }
    let start = if delay.is_zero() { "binds at once".to_owned() } else { format!("STARTUP_DELAY {tag}") };
    table.print(&format!(
        "traffic, app {start} (requests by send time, from just before the commit/edit until {REPLICAS} ready \
         backends of the new image and the old ones gone; `whole load` adds the 1 s pauses between swaps; \
         controller logged {} warnings, {} errors)",
        problems.0, problems.1
    ));
    let slow = controller.slow(SLOWEST_GOAL);
    if !slow.is_empty() {
        println!("controller: requests slower than {} during swaps (sent at, UTC):", ms_f(SLOWEST_GOAL.as_secs_f64()));
        for (swap, s, into) in slow.iter().take(10) {
            println!(
                "  swap {swap} +{} ({})  {}  {}",
                secs(*into),
                utc(controller.wall + s.at),
                ms_f(s.latency.as_secs_f64()),
                s.error.as_deref().unwrap_or("200")
            );
        }
        println!();
    }
    let (c_sent, c_failed, c_max, c_slowest) = controller.during_swaps();
    let (k_sent, k_failed, k_max, k_slowest) = compose.during_swaps();
    let name = if delay.is_zero() { "traffic".to_owned() } else { format!("traffic start {tag}") };
    vec![
        Goal::new(
            &name,
            "controller: failed requests per swap = 0",
            format!(
                "max {c_max}, {c_failed} of {c_sent} in {} swaps (compose: max {k_max}, {k_failed} of {k_sent})",
                controller.swaps.len()
            ),
            c_max == 0,
        ),
        Goal::new(
            &name,
            "controller: slowest request during swaps <= 250 ms",
            format!("{} (compose: {})", ms_f(c_slowest.as_secs_f64()), ms_f(k_slowest.as_secs_f64())),
            c_slowest <= SLOWEST_GOAL,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_should_alternate_from_v2() {
        assert_eq!((0..4).map(target).collect::<Vec<_>>(), ["v2", "v1", "v2", "v1"]);
    }

    #[test]
    fn figures_should_cover_the_swaps_only() {
        let sample = |ms: u64, ok: bool| Sample {
            at: Duration::from_millis(ms),
            status: ok.then_some(200),
            latency: Duration::from_millis(ms / 10),
            error: None,
        };
        let side = Side {
            swaps: vec![("v2", Span { from: Duration::from_millis(100), to: Duration::from_millis(300) })],
            samples: vec![sample(0, false), sample(100, true), sample(200, false), sample(400, true)],
            wall: SystemTime::now(),
        };
        assert_eq!(side.slow(Duration::from_millis(15)).len(), 1);
        assert_eq!(side.during_swaps(), (2, 1, 1, Duration::from_millis(20)));
    }
}
