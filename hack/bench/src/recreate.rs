//! `recreate`: the gap of a `Recreate` service publishing a host port (as Caddy does on 80/443):
//! its image changes v1<->v2 in a git commit while a client asks `GET /version` on the host port
//! about every 2 ms (4 loops side by side), each on a new connection, abandoned after 250 ms
//! (a client retrying). The gap is the longest time no container answered
//! (from the end of the last answer before the failures to the start of the first after them).
//! The controller creates the new container before it retires the old one, so only stop,
//! remove and start fall inside the gap (issue 8, item 4).
//!
//! Baseline, same run: the old order done by the bench through the API, as the controller did
//! before: stop + remove the old container, then create + start the new one, same image, host
//! port and stop timeout. The engine's events split both gaps: stop call (`kill`) -> `die` ->
//! `destroy` -> `start` of the new one -> its first answer.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant, SystemTime};

use crate::cleanup::Sweep;
use crate::engine;
use crate::events::{Feed, since};
use crate::probe::{Prober, Switch, switch};
use crate::serve::{PROBE_EVERY, PROBE_LOOPS, PROBE_TIMEOUT};
use crate::stack::{Ctx, PORT, RUN_LABEL, Service, Stack, create_config, deployment_yaml, pause, wait};
use crate::util::{Goal, Result, Table, bail, median, ratio};
use crate::{IMAGE_V1, IMAGE_V2};

#[derive(Clone, Debug, Default)]
struct Sample {
    target: &'static str,
    create: Option<f64>,
    kill: Option<f64>,
    die: Option<f64>,
    destroy: Option<f64>,
    start: Option<f64>,
    switch: Option<Switch>,
}

/// Runs `samples` image changes of a Recreate service under the controller, and as many
/// old-order swaps by the bench.
///
/// # Errors
/// A deadline passed, the engine or the controller failed.
pub fn run(ctx: &Ctx, samples: usize) -> Result<Vec<Goal>> {
    println!(
        "== recreate: a Recreate service on a host port, image v1<->v2 by commit, GET /version on the host port every \
         {} ms in each of {PROBE_LOOPS} loops (new connection each): longest time nothing answered, vs stop + remove, \
         create + start by the bench\n",
        PROBE_EVERY.as_millis()
    );
    let feed = Feed::start()?;
    let port = free_port()?;
    let mut stack = Stack::new(ctx, "rc", vec![Service { name: "edge".to_owned(), image: IMAGE_V1.to_owned() }])?;
    write_recreate(&stack, &ctx.run, IMAGE_V1, port)?;
    stack.commit("edge: Recreate on a host port")?;
    let started = Instant::now();
    stack.start(ctx, &[], &[])?;
    stack.wait_converged(ctx, started, Duration::from_secs(60))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_version(addr, "v1")?;
    pause(Duration::from_secs(1))?;

    let mut results = Vec::new();
    for i in 0..samples {
        let (target, version, old) = if i % 2 == 0 { (IMAGE_V2, "v2", "v1") } else { (IMAGE_V1, "v1", "v2") };
        eprintln!("recreate {}/{samples}: edge -> {target} ...", i + 1);
        let before: Vec<String> = stack.containers(Some("edge"))?.into_iter().map(|c| c.id).collect();
        stack.set_image("edge", target)?;
        write_recreate(&stack, &ctx.run, target, port)?;
        let prober = Prober::start(addr, "/version", PROBE_EVERY, PROBE_TIMEOUT, PROBE_LOOPS);
        pause(Duration::from_millis(100))?;
        let (t0, wall0) = (Instant::now(), SystemTime::now());
        stack.commit(&format!("edge: {target}"))?;
        // Read from the event stream, not by listing every 10 ms: the baseline does not poll
        // the engine either (a list call every 10 ms slowed a container start ~50 ms).
        let prefix = format!("{}-edge-", stack.name);
        let mut new_id = None;
        wait(
            &format!("edge's {version} answering on the host port and the old container gone"),
            Duration::from_secs(60),
            Duration::from_millis(10),
            Some(stack.controller()),
            || {
                if new_id.is_none() {
                    new_id = feed.created(&prefix, wall0);
                }
                let gone = before.iter().all(|id| feed.seen(id, "destroy", wall0));
                Ok((gone && prober.seen(version, t0)).then_some(()))
            },
        )?;
        pause(Duration::from_millis(200))?;
        let sw = switch(&prober.finish(), t0, old, version);
        let s = sample(&feed, target, wall0, &before, &new_id.unwrap_or_default(), sw);
        eprintln!("recreate {}/{samples}: gap {}", i + 1, gap_ms(&s));
        results.push(s);
        stack.wait_converged(ctx, Instant::now(), Duration::from_secs(30))?;
        pause(Duration::from_millis(500))?;
    }
    let (warnings, errors) = stack.controller().problems();
    stack.controller().print_problems("recreate");
    drop(stack);

    eprintln!("recreate: baseline ...");
    crate::settle(ctx)?;
    let baseline = baseline(ctx, &feed, samples)?;
    drop(feed);
    report(&results, &baseline, warnings, errors)
}

/// The old order by the bench: stop + remove, then create + start, through the API.
fn baseline(ctx: &Ctx, feed: &Feed, samples: usize) -> Result<Vec<Sample>> {
    let group = ctx.name("rcb");
    let _guard = Sweep::new(&group);
    let network = format!("{group}_net");
    engine::cli(&["network", "create", "--label", &format!("{RUN_LABEL}={}", ctx.run), &network])?;
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = |image: &str| {
        let mut c = create_config(&ctx.run, &group, &network, "edge", image);
        c["HostConfig"]["PortBindings"] =
            serde_json::json!({format!("{PORT}/tcp"): [{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]});
        c
    };
    let mut current = engine::run_container(&format!("{group}-0"), &config(IMAGE_V1))?;
    wait_version(addr, "v1")?;
    pause(Duration::from_secs(1))?;
    let mut out = Vec::new();
    for i in 0..samples {
        let (target, version, old) = if i % 2 == 0 { (IMAGE_V2, "v2", "v1") } else { (IMAGE_V1, "v1", "v2") };
        let prober = Prober::start(addr, "/version", PROBE_EVERY, PROBE_TIMEOUT, PROBE_LOOPS);
        pause(Duration::from_millis(100))?;
        let (t0, wall0) = (Instant::now(), SystemTime::now());
        engine::stop(&current)?;
        engine::remove_force(&current)?;
        let id = engine::run_container(&format!("{group}-{}", i + 1), &config(target))?;
        wait(
            &format!("baseline {version} answering"),
            Duration::from_secs(60),
            Duration::from_millis(10),
            None,
            || Ok(prober.seen(version, t0).then_some(())),
        )?;
        pause(Duration::from_millis(200))?;
        let sw = switch(&prober.finish(), t0, old, version);
        out.push(sample(feed, target, wall0, std::slice::from_ref(&current), &id, sw));
        current = id;
        pause(Duration::from_millis(500))?;
    }
    Ok(out)
}

fn sample(feed: &Feed, target: &'static str, wall0: SystemTime, old: &[String], new: &str, sw: Switch) -> Sample {
    let old_at = |action: &str| old.iter().filter_map(|id| feed.first(id, action, wall0)).min();
    Sample {
        target,
        create: since(wall0, feed.first(new, "create", wall0)),
        kill: since(wall0, old_at("kill")),
        die: since(wall0, old_at("die")),
        destroy: since(wall0, old_at("destroy")),
        start: since(wall0, feed.first(new, "start", wall0)),
        switch: Some(sw),
    }
}

fn report(results: &[Sample], baseline: &[Sample], warnings: usize, errors: usize) -> Result<Vec<Goal>> {
    let cols: [fn(&Sample) -> Option<f64>; 7] = [
        |s| s.create,
        |s| s.kill,
        |s| diff(s.die, s.kill),
        |s| diff(s.destroy, s.die),
        |s| diff(s.start, s.destroy),
        |s| diff(s.switch.as_ref().and_then(|w| w.first_new), s.start),
        |s| s.switch.as_ref().and_then(|w| w.gap),
    ];
    let headers = [
        "#",
        "to",
        "new created",
        "old stop",
        "stop->die",
        "die->destroy",
        "destroy->start",
        "start->answer",
        "gap",
        "failed/req",
    ];
    let mut tables = Vec::new();
    for (name, samples) in [("controller", results), ("baseline", baseline)] {
        let mut table = Table::new(&headers).left(2);
        for (i, s) in samples.iter().enumerate() {
            let mut row = vec![(i + 1).to_string(), s.target.to_owned()];
            row.extend(cols.iter().map(|f| ms(f(s))));
            row.push(s.switch.as_ref().map_or_else(String::new, |w| format!("{}/{}", w.failed, w.requests)));
            table.row(row);
        }
        let mut row = vec!["median".to_owned(), String::new()];
        row.extend(cols.iter().map(|f| {
            let xs: Vec<f64> = samples.iter().filter_map(f).collect();
            if xs.is_empty() { "-".to_owned() } else { format!("{:.0}", median(&xs) * 1000.0) }
        }));
        table.row(row);
        tables.push((name, table));
    }
    for (name, table) in &tables {
        let title = if *name == "controller" {
            format!(
                "recreate, controller (ms from just before `git commit`; engine events of the new container (create, \
                 start) and of the old one (kill = the stop call, die, destroy); controller logged {warnings} warnings, \
                 {errors} errors)"
            )
        } else {
            "recreate, baseline: stop + remove, then create + start, by the bench through the API (ms from just before \
             the stop call)"
                .to_owned()
        };
        table.print(&title);
    }
    let gaps = |v: &[Sample]| -> Option<Vec<f64>> { v.iter().map(|s| s.switch.as_ref().and_then(|w| w.gap)).collect() };
    let (Some(c), Some(b)) = (gaps(results), gaps(baseline)) else {
        bail!("a sample never answered again after its gap");
    };
    let (mc, mb) = (median(&c), median(&b));
    println!(
        "recreate: gap controller {:.0} ms vs baseline {:.0} ms (medians), ratio {}\n",
        mc * 1000.0,
        mb * 1000.0,
        ratio(mc, mb)
    );
    Ok(vec![Goal::new(
        "recreate",
        "median gap of a Recreate (host port) < stop+remove, create+start",
        format!("{} ({:.0} ms vs {:.0} ms)", ratio(mc, mb), mc * 1000.0, mb * 1000.0),
        mc < mb,
    )])
}

fn gap_ms(s: &Sample) -> String {
    ms(s.switch.as_ref().and_then(|w| w.gap))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{:.0}", v * 1000.0))
}

/// Writes the service's Deployment: the bench's usual one, plus `strategy: Recreate` and a
/// published loopback port.
fn write_recreate(stack: &Stack, run: &str, image: &str, port: u16) -> Result<()> {
    let yaml = deployment_yaml(&Service { name: "edge".to_owned(), image: image.to_owned() }, run);
    let ports = format!("  ports: [{{containerPort: {PORT}}}]\n");
    if !yaml.contains(&ports) {
        bail!("the bench Deployment has no `{}` line to publish", ports.trim());
    }
    let yaml = yaml.replace(
        &ports,
        &format!(
            "  ports: [{{containerPort: {PORT}, hostPort: {port}, hostIP: 127.0.0.1}}]\n  strategy: {{type: Recreate}}\n"
        ),
    );
    std::fs::write(stack.repo().join("manifests/edge.yaml"), yaml)?;
    Ok(())
}

/// A loopback port nothing listens on now.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_version(addr: SocketAddr, version: &str) -> Result<()> {
    wait(&format!("{version} answering on {addr}"), Duration::from_secs(30), Duration::from_millis(20), None, || {
        Ok(engine::http_get(&addr.ip().to_string(), addr.port(), "/version", PROBE_TIMEOUT)
            .is_some_and(|(s, b)| s == 200 && b.trim() == version)
            .then_some(()))
    })
}

/// `a - b` when both are known.
fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).map(|(a, b)| a - b)
}
