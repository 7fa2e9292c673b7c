//! `traffic`: what a deploy costs the users of a service. Real Caddy on a loopback host port in
//! front of a two-replica backend, an open-loop load of 50 requests/s through it, each request on
//! a new connection; the backend's image swaps v1→v2→v1… Controller: one git commit per swap,
//! until the controller reports the commit synced and the backend is two ready containers of the
//! new image (the old ones gone). Baseline, in the same run: the same stack as a
//! `docker-compose` project, one `docker-compose up -d` after editing the image per swap, until
//! the same two ready containers. Measured per swap: requests sent (by send time, from just
//! before the commit or edit to the end of the wait), failed, the slowest, and the TCP segments
//! Caddy's network namespace retransmitted (a request stalled on a connection whose peer is
//! briefly unreachable shows there). The requests sent between swaps are the latency baseline
//! of the same load on the same machine. Done once with the app binding its port at once and
//! once with it needing a few seconds to start (`STARTUP_DELAY` of the test server), where a
//! deploy that does not wait for readiness shows.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::edge::{ComposeEdge, ControllerEdge, LOAD_LIMIT, RATE, REPLICAS, Span, proxy_caddyfile, timed};
use crate::load::{Load, Sample, Window};
use crate::procfs::tcp_retransmits;
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
    /// TCP segments Caddy's namespace retransmitted during each swap (`None`: unreadable).
    retransmits: Vec<Option<u64>>,
    /// ... and over the whole load.
    retransmits_total: Option<u64>,
}

impl Side {
    fn windows(&self) -> Vec<Window> {
        self.swaps.iter().map(|(_, s)| Window::of(&self.samples, s.from, s.to)).collect()
    }

    /// The requests sent outside every swap: the same load on the same machine, nothing moving.
    fn between(&self) -> Window {
        Window::select(&self.samples, Duration::ZERO, Duration::MAX, |s| {
            !self.swaps.iter().any(|(_, span)| s.at >= span.from && s.at < span.to)
        })
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

    /// Sent, failed, most failed in one swap and slowest over every swap.
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

/// Runs `swaps` swaps on each side, for each start delay in `delays`; with `dump`, writes every
/// request as CSV there.
///
/// # Errors
/// A stack did not come up, a swap did not finish in time, or the engine failed.
pub fn run(
    ctx: &Ctx,
    swaps: usize,
    delays: &[Duration],
    keepalive: bool,
    retries: bool,
    dump: Option<&Path>,
) -> Result<Vec<Goal>> {
    let compose = crate::edge::compose_version().unwrap_or_else(|| "?".to_owned());
    println!(
        "== traffic: Caddy on a loopback host port, backend of {REPLICAS} replicas, {RATE} requests/s (GET /, a new \
         connection each){}{}; {swaps} image swaps v1<->v2 by git commit (controller) vs editing the image + \
         `docker-compose up -d` (docker-compose {compose})\n",
        if keepalive { "" } else { ", Caddy's upstream keep-alive off" },
        if retries {
            ", Caddy retries failed dials (dial_timeout 300ms, lb_try_duration 5s, lb_try_interval 50ms)"
        } else {
            ""
        }
    );
    let caddyfile = proxy_caddyfile(keepalive, retries);
    let mut out = match dump {
        Some(path) => {
            let mut file = std::fs::File::create(path)?;
            writeln!(file, "side,start_delay_s,swap,sent_utc,into_swap_s,latency_ms,status,error")?;
            Some(file)
        }
        None => None,
    };
    let mut goals = Vec::new();
    for &delay in delays {
        let tag = format!("{}s", delay.as_secs());
        eprintln!("traffic (app start {tag}): controller ...");
        let edge = ControllerEdge::start(ctx, &format!("tc{tag}"), delay, true, &caddyfile)?;
        let controller = swap_under_load(&tag, "controller", edge.addr, edge.caddy_pid()?, swaps, |version| {
            let revision = edge.commit_backend(version)?;
            edge.wait_swapped(ctx, &revision, version)
        })?;
        let problems = edge.stack.controller().problems();
        edge.stack.controller().print_problems(&format!("traffic (app start {tag})"));
        drop(edge);
        crate::settle(ctx)?;

        eprintln!("traffic (app start {tag}): docker-compose ...");
        let edge = ComposeEdge::start(ctx, &format!("tk{tag}"), delay, &caddyfile)?;
        edge.wait_swapped(ctx, "v1")?;
        let compose = swap_under_load(&tag, "compose", edge.addr, edge.caddy_pid()?, swaps, |version| {
            edge.deploy(version)?;
            edge.wait_swapped(ctx, version)
        })?;
        drop(edge);
        crate::settle(ctx)?;

        if let Some(file) = out.as_mut() {
            for (name, side) in [("controller", &controller), ("docker-compose", &compose)] {
                dump_side(file, name, delay, side)?;
            }
        }
        let mut found = report(&tag, delay, &controller, &compose, problems);
        if !keepalive {
            found.iter_mut().for_each(|g| g.bench.push_str(", no keep-alive"));
        }
        if retries {
            found.iter_mut().for_each(|g| g.bench.push_str(", dial retries"));
        }
        goals.extend(found);
    }
    Ok(goals)
}

/// Starts the load on `addr`, then runs `swap` to v2, v1, ... `swaps` times, 1 s apart.
fn swap_under_load(
    tag: &str,
    name: &str,
    addr: std::net::SocketAddr,
    caddy: Option<u32>,
    swaps: usize,
    mut swap: impl FnMut(&str) -> Result<()>,
) -> Result<Side> {
    let retransmits = || caddy.and_then(tcp_retransmits);
    let load = Load::start(addr, RATE, LOAD_LIMIT);
    let first = retransmits();
    pause(Duration::from_secs(1))?;
    let (mut spans, mut during) = (Vec::new(), Vec::new());
    for i in 0..swaps {
        let version = target(i);
        let before = retransmits();
        let span = timed(load.started, || swap(version))?;
        during.push(retransmits().zip(before).map(|(a, b)| a.saturating_sub(b)));
        eprintln!("traffic (app start {tag}) {name} swap {}/{swaps} -> {version}: {}", i + 1, secs(span.took()));
        spans.push((version, span));
        pause(Duration::from_secs(1))?;
    }
    let wall = load.wall;
    let samples = load.stop();
    let total = retransmits().zip(first).map(|(a, b)| a.saturating_sub(b));
    Ok(Side { swaps: spans, samples, wall, retransmits: during, retransmits_total: total })
}

fn dump_side(file: &mut std::fs::File, name: &str, delay: Duration, side: &Side) -> Result<()> {
    for s in &side.samples {
        let swap = side.swaps.iter().position(|(_, span)| s.at >= span.from && s.at < span.to);
        let into = swap.map_or(String::new(), |i| format!("{:.3}", (s.at - side.swaps[i].1.from).as_secs_f64()));
        writeln!(
            file,
            "{name},{},{},{},{into},{:.2},{},{}",
            delay.as_secs(),
            swap.map_or(0, |i| i + 1),
            utc(side.wall + s.at),
            s.latency.as_secs_f64() * 1000.0,
            s.status.map_or(String::new(), |c| c.to_string()),
            s.error.as_deref().unwrap_or_default().replace(',', ";"),
        )?;
    }
    Ok(())
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

fn report(tag: &str, delay: Duration, controller: &Side, compose: &Side, problems: (usize, usize)) -> Vec<Goal> {
    let mut table = Table::new(&[
        "side", "#", "to", "took", "sent", "failed", "p99", "slowest", "sent at", "retrans", "outage", "failures",
    ])
    .left(3);
    for (name, side) in [("controller", controller), ("docker-compose", compose)] {
        for (i, ((version, span), w)) in side.swaps.iter().zip(side.windows()).enumerate() {
            table.row(vec![
                name.to_owned(),
                (i + 1).to_string(),
                (*version).to_owned(),
                secs(span.took()),
                w.sent.to_string(),
                w.failed.to_string(),
                ms_f(w.p99.as_secs_f64()),
                ms_f(w.slowest.as_secs_f64()),
                format!("+{}", secs(w.slowest_at)),
                opt(side.retransmits.get(i).copied().flatten()),
                secs(w.outage),
                w.reasons(),
            ]);
        }
        let (sent, failed, _, slowest) = side.during_swaps();
        let took: Duration = side.swaps.iter().map(|(_, s)| s.took()).sum();
        let in_swaps: Option<u64> = side.retransmits.iter().copied().sum();
        table.row(vec![
            name.to_owned(),
            "all swaps".to_owned(),
            String::new(),
            secs(took),
            sent.to_string(),
            failed.to_string(),
            String::new(),
            ms_f(slowest.as_secs_f64()),
            String::new(),
            opt(in_swaps),
            String::new(),
            String::new(),
        ]);
        let between = side.between();
        let retrans_between = side.retransmits_total.zip(in_swaps).map(|(t, s)| t.saturating_sub(s));
        table.row(vec![
            name.to_owned(),
            "between swaps".to_owned(),
            String::new(),
            String::new(),
            between.sent.to_string(),
            between.failed.to_string(),
            ms_f(between.p99.as_secs_f64()),
            ms_f(between.slowest.as_secs_f64()),
            String::new(),
            opt(retrans_between),
            String::new(),
            between.reasons(),
        ]);
    }
    let start = if delay.is_zero() { "binds at once".to_owned() } else { format!("STARTUP_DELAY {tag}") };
    table.print(&format!(
        "traffic, app {start} (requests by send time, from just before the commit/edit until {REPLICAS} ready \
         backends of the new image and the old ones gone; `between swaps`: the 1 s before, between and after \
         them; retrans: TCP segments Caddy's network namespace retransmitted; controller logged {} warnings, {} \
         errors)",
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
            format!(
                "{} (between swaps {}; compose: {})",
                ms_f(c_slowest.as_secs_f64()),
                ms_f(controller.between().slowest.as_secs_f64()),
                ms_f(k_slowest.as_secs_f64())
            ),
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
    fn figures_should_tell_swaps_from_the_time_between() {
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
            retransmits: vec![Some(1)],
            retransmits_total: Some(1),
        };
        assert_eq!(side.during_swaps(), (2, 1, 1, Duration::from_millis(20)));
        let between = side.between();
        assert_eq!((between.sent, between.failed, between.slowest), (2, 1, Duration::from_millis(40)));
        assert_eq!(side.slow(Duration::from_millis(15)).len(), 1);
    }
}
