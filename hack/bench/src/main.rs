//! `meme-bench`: benchmarks of `meme-controller` against the real Docker engine. Each
//! subcommand prints tables of figures measured in one run next to a baseline measured in the
//! same run (plain `docker` CLI doing the same job), then a summary of the goals
//! (`goal: ... measured: ... PASS/MISS`). Every Docker object is named `mb-<run id>-...` and
//! removed at the end, on a failure, a panic or Ctrl-C. See hack/bench/README.md.

mod admit;
mod api;
mod cleanup;
mod client;
mod converge;
mod edge;
mod engine;
mod events;
mod heal;
mod idle;
mod load;
mod probe;
mod procfs;
mod proxy;
mod recreate;
mod reload;
mod resync;
mod rollout;
mod scale;
mod serve;
mod stack;
mod traffic;
mod util;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::stack::Ctx;
use crate::util::{Error, Goal, Result, bail, parse_duration};

/// The image every bench service runs.
pub const IMAGE_V1: &str = "meme-demo:v1";
/// The image a rollout changes to.
pub const IMAGE_V2: &str = "meme-demo:v2";

/// meme-bench: figures of meme-controller against the real Docker engine, each next to a
/// baseline measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "meme-bench", version, about, long_about = None)]
struct Cli {
    /// The controller binary [default: <workspace>/target/release/meme-controller].
    #[arg(long, global = true, env = "MEME_BENCH_CONTROLLER")]
    controller: Option<PathBuf>,
    /// Smoke run: smaller N, fewer samples, shorter windows.
    #[arg(long, global = true)]
    quick: bool,
    /// How often waits look at the engine (and probe containers).
    #[arg(long, global = true, default_value = "25ms", value_parser = parse_duration)]
    poll: Duration,
    /// RUST_LOG for the controller [default: unset, i.e. its default `info`].
    #[arg(long, global = true)]
    rust_log: Option<String>,
    /// Also write every controller's output to DIR/<stack>.log (kept after the run).
    #[arg(long, global = true, value_name = "DIR")]
    controller_logs: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Controller from cold vs sequential `docker run -d`, N services [default N: 1 10 50; quick: 1 5].
    Converge {
        /// Numbers of services.
        ns: Vec<usize>,
    },
    /// Commit v1<->v2 until the new container serves and the old is gone, vs `docker run -d`.
    Rollout {
        /// Rollouts [default 5; quick 2].
        #[arg(long)]
        samples: Option<usize>,
        /// The controller's --resync.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        resync: Duration,
    },
    /// Commit -> reconcile started (status API, log) and -> new version healthy, --resync 10m.
    Watch {
        /// Commits [default 20; quick 5].
        #[arg(long)]
        samples: Option<usize>,
    },
    /// Docker API calls and CPU per no-op resync, N services [default N: 10 50 100; quick: 5 10].
    Resync {
        /// Numbers of services.
        ns: Vec<usize>,
        /// Resync periods measured [default 10; quick 3].
        #[arg(long)]
        periods: Option<usize>,
        /// The controller's --resync.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// `docker rm -f` / `docker stop` one container until it is healthy again.
    Heal {
        /// Services in the stack [default 5; quick 3].
        #[arg(long)]
        services: Option<usize>,
        /// Samples of each action [default 10; quick 3].
        #[arg(long)]
        samples: Option<usize>,
    },
    /// CPU and RSS of the idle controller over a converged stack.
    Idle {
        /// Services in the stack [default 50; quick 10].
        #[arg(long)]
        services: Option<usize>,
        /// Sampling window in seconds [default 60; quick 10].
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// /metrics and /api/v1/status latency at N services, steady and during a rollout of all.
    Api {
        /// Services in the stack [default 100; quick 20].
        #[arg(long)]
        services: Option<usize>,
        /// Steady-state window in seconds [default 10; quick 3].
        #[arg(long)]
        seconds: Option<u64>,
        /// Also write every request (window, endpoint, connection, time, latency, size) as CSV.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
    },
    /// Image swaps under 50 requests/s through Caddy: failed and slowest requests, vs docker-compose up -d.
    Traffic {
        /// Swaps per side and start delay [default 4; quick 2].
        #[arg(long)]
        swaps: Option<usize>,
        /// Also measure with the app binding its port this long after start (0s: skip).
        #[arg(long, default_value = "4s", value_parser = parse_duration)]
        start_delay: Duration,
        /// Also write every request (side, start delay, swap, UTC send time, latency, status) as CSV.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
        /// Caddy opens a new upstream connection per request (`keepalive off`) on both sides.
        #[arg(long)]
        no_upstream_keepalive: bool,
        /// Caddy retries a request whose upstream dial failed (`dial_timeout 300ms`,
        /// `lb_try_duration 5s`, `lb_try_interval 50ms`) on both sides.
        #[arg(long)]
        upstream_retries: bool,
    },
    /// Caddyfile changes under 50 requests/s: failed requests with `reload` vs without (Recreate).
    Reload {
        /// Changes per side [default 3; quick 2].
        #[arg(long)]
        changes: Option<usize>,
    },
    /// Commit v1<->v2 until the new version answers through the alias (Caddy), vs `docker run -d`.
    Serve {
        /// Image changes [default 6; quick 2].
        #[arg(long)]
        samples: Option<usize>,
    },
    /// The rotation move (disconnect + connect, same address) vs a plain connect, idle and busy.
    Admit {
        /// Moves per round [default 20; quick 6].
        #[arg(long)]
        samples: Option<usize>,
    },
    /// The gap of a Recreate service on a host port vs stop + remove, create + start.
    Recreate {
        /// Image changes [default 6; quick 2].
        #[arg(long)]
        samples: Option<usize>,
    },
    /// The goals under load at each N [default 50 100 200; quick 10 20], and which breaks first.
    Scale {
        /// Numbers of services, in order.
        ns: Vec<usize>,
        /// Engine calls in flight for the baseline (the fastest is the engine's limit).
        #[arg(long, value_delimiter = ',', default_value = "8,16")]
        k: Vec<usize>,
        /// Resync periods measured [default 10; quick 3].
        #[arg(long)]
        periods: Option<usize>,
        /// The controller's --resync in the resync window.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        interval: Duration,
    },
    /// Everything in order, with one summary at the end.
    All {
        /// Idle sampling window in seconds [default 60; quick 10].
        #[arg(long)]
        seconds: Option<u64>,
    },
}

/// Settings of every benchmark, from the flags and `--quick`.
struct Plan {
    converge: Vec<usize>,
    rollout_samples: usize,
    rollout_resync: Duration,
    watch_samples: usize,
    resync: Vec<usize>,
    resync_periods: usize,
    resync_interval: Duration,
    heal_services: usize,
    heal_samples: usize,
    idle_services: usize,
    idle_seconds: u64,
    api_services: usize,
    api_seconds: u64,
    traffic_swaps: usize,
    reload_changes: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                converge: vec![1, 5],
                rollout_samples: 2,
                rollout_resync: Duration::from_secs(30),
                watch_samples: 5,
                resync: vec![5, 10],
                resync_periods: 3,
                resync_interval: Duration::from_secs(2),
                heal_services: 3,
                heal_samples: 3,
                idle_services: 10,
                idle_seconds: 10,
                api_services: 20,
                api_seconds: 3,
                traffic_swaps: 2,
                reload_changes: 2,
            }
        } else {
            Self {
                converge: vec![1, 10, 50],
                rollout_samples: 5,
                rollout_resync: Duration::from_secs(30),
                watch_samples: 20,
                resync: vec![10, 50, 100],
                resync_periods: 10,
                resync_interval: Duration::from_secs(2),
                heal_services: 5,
                heal_samples: 10,
                idle_services: 50,
                idle_seconds: 60,
                api_services: 100,
                api_seconds: 10,
                traffic_swaps: 4,
                reload_changes: 3,
            }
        }
    }
}

/// Pause between phases so that the engine has finished tearing down the previous one.
///
/// # Errors
/// Interrupted.
pub fn settle(ctx: &Ctx) -> Result<()> {
    stack::pause(if ctx.quick { Duration::from_secs(1) } else { Duration::from_secs(3) })
}

fn default_controller() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root).join("target/release/meme-controller")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = util::random_id();
    cleanup::init(format!("mb-{run}"));
    let ctx = Ctx {
        run,
        controller: cli.controller.clone().unwrap_or_else(default_controller),
        quick: cli.quick,
        poll: cli.poll,
        rust_log: cli.rust_log.clone(),
        logs: cli.controller_logs.clone(),
    };
    let caddy = matches!(cli.command, Command::Traffic { .. } | Command::Reload { .. } | Command::All { .. });
    let compose = matches!(cli.command, Command::Traffic { .. });
    let code = match preflight(&ctx, caddy, compose) {
        Ok(()) => execute(&ctx, cli),
        Err(e) => {
            eprintln!("meme-bench: {e}");
            ExitCode::from(2)
        }
    };
    if cleanup::interrupted() {
        // The signal thread is removing everything and exits the process when done.
        cleanup::wait_for_signal_cleanup();
    }
    let left = cleanup::sweep_settled(cleanup::prefix());
    if left > 0 {
        eprintln!("meme-bench: swept {left} leftover objects of run {}", cleanup::prefix());
    }
    let stuck = cleanup::leftovers(cleanup::prefix());
    if !stuck.is_empty() {
        eprintln!(
            "meme-bench: the engine refused to remove {} objects of run {}: {}\n(`docker network rm` says why; a \
             network with \"active endpoints\" but no container is a stale endpoint count of the engine, freed only by \
             restarting it: moby/moby#42119)",
            stuck.len(),
            cleanup::prefix(),
            stuck.join(", ")
        );
    }
    code
}

/// Checks the engine, the images and the binary (Caddy's image when `caddy`, docker-compose
/// when `compose`); prints what the run measures on.
fn preflight(ctx: &Ctx, caddy: bool, compose: bool) -> Result<()> {
    engine::ping().map_err(|e| Error(format!("{e}\nthe benchmarks need a running Docker engine")))?;
    let images: &[&str] = if caddy { &[IMAGE_V1, IMAGE_V2, edge::CADDY_IMAGE] } else { &[IMAGE_V1, IMAGE_V2] };
    for image in images {
        if !engine::image_exists(image) {
            bail!("image {image} is missing: build the test images with hack/build-images.sh");
        }
    }
    if compose && edge::compose_version().is_none() {
        bail!(
            "docker-compose is missing: the traffic benchmark's baseline is docker-compose v1 (apt-get install docker-compose)"
        );
    }
    if !ctx.controller.is_file() {
        bail!(
            "no controller binary at {}: build it with `cargo build --release -p meme-controller` (or pass --controller)",
            ctx.controller.display()
        );
    }
    let version = std::process::Command::new(&ctx.controller)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let background = engine::list(&[])
        .map(|l| l.iter().filter(|c| c.running()).count().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("meme-bench run {} ({})", ctx.run, if ctx.quick { "quick" } else { "full" });
    println!("  controller: {} ({version})", ctx.controller.display());
    println!("  engine:     Docker {} on {cores} cores, load {}", engine::version(), procfs::loadavg());
    println!("  other running containers on the engine: {background}");
    println!("  objects: mb-{}-*, label {}={}\n", ctx.run, stack::RUN_LABEL, ctx.run);
    Ok(())
}

type Bench<'a> = (&'static str, &'static str, Box<dyn FnOnce() -> Result<Vec<Goal>> + 'a>);

fn execute(ctx: &Ctx, cli: Cli) -> ExitCode {
    let plan = Plan::new(ctx.quick);
    let pick = |ns: Vec<usize>, default: &[usize]| if ns.is_empty() { default.to_vec() } else { ns };
    let mut benches: Vec<Bench<'_>> = Vec::new();
    let single = !matches!(cli.command, Command::All { .. });
    match cli.command {
        Command::Converge { ns } => {
            let ns = pick(ns, &plan.converge);
            benches.push(("converge", GOAL_CONVERGE, Box::new(move || converge::run(ctx, &ns))));
        }
        Command::Rollout { samples, resync } => {
            let samples = samples.unwrap_or(plan.rollout_samples);
            benches.push(("rollout", GOAL_ROLLOUT, Box::new(move || rollout::run(ctx, samples, resync))));
        }
        Command::Watch { samples } => {
            let samples = samples.unwrap_or(plan.watch_samples);
            benches.push(("watch", GOAL_WATCH, Box::new(move || watch::run(ctx, samples))));
        }
        Command::Resync { ns, periods, interval } => {
            let ns = pick(ns, &plan.resync);
            let periods = periods.unwrap_or(plan.resync_periods);
            benches.push(("resync", GOAL_RESYNC, Box::new(move || resync::run(ctx, &ns, periods, interval))));
        }
        Command::Heal { services, samples } => {
            let (n, k) = (services.unwrap_or(plan.heal_services), samples.unwrap_or(plan.heal_samples));
            benches.push(("heal", GOAL_HEAL, Box::new(move || heal::run(ctx, n, k))));
        }
        Command::Idle { services, seconds } => {
            let (n, s) = (services.unwrap_or(plan.idle_services), seconds.unwrap_or(plan.idle_seconds));
            benches.push(("idle", GOAL_IDLE, Box::new(move || idle::run(ctx, n, s))));
        }
        Command::Api { services, seconds, dump } => {
            let (n, s) = (services.unwrap_or(plan.api_services), seconds.unwrap_or(plan.api_seconds));
            benches.push(("api", GOAL_API, Box::new(move || api::run(ctx, n, s, dump.as_deref()))));
        }
        Command::Traffic { swaps, start_delay, dump, no_upstream_keepalive, upstream_retries } => {
            let swaps = swaps.unwrap_or(plan.traffic_swaps);
            let mut delays = vec![Duration::ZERO];
            if !start_delay.is_zero() {
                delays.push(start_delay);
            }
            benches.push((
                "traffic",
                GOAL_TRAFFIC,
                Box::new(move || {
                    traffic::run(ctx, swaps, &delays, !no_upstream_keepalive, upstream_retries, dump.as_deref())
                }),
            ));
        }
        Command::Reload { changes } => {
            let changes = changes.unwrap_or(plan.reload_changes);
            benches.push(("reload", GOAL_RELOAD, Box::new(move || reload::run(ctx, changes))));
        }
        Command::Serve { samples } => {
            let n = samples.unwrap_or(if ctx.quick { 2 } else { 6 });
            benches.push(("serve", GOAL_SERVE, Box::new(move || serve::run(ctx, n))));
        }
        Command::Admit { samples } => {
            let n = samples.unwrap_or(if ctx.quick { 6 } else { 20 });
            benches.push(("admit", GOAL_ADMIT, Box::new(move || admit::run(ctx, n))));
        }
        Command::Recreate { samples } => {
            let n = samples.unwrap_or(if ctx.quick { 2 } else { 6 });
            benches.push(("recreate", GOAL_RECREATE, Box::new(move || recreate::run(ctx, n))));
        }
        Command::Scale { ns, k, periods, interval } => {
            let ns = pick(ns, if ctx.quick { &[10, 20] } else { &[50, 100, 200] });
            let periods = periods.unwrap_or(plan.resync_periods);
            let settings = scale::Settings { ns, ks: k, periods, interval };
            benches.push(("scale", GOAL_SCALE, Box::new(move || scale::run(ctx, &settings))));
        }
        Command::All { seconds } => {
            let p = Plan { idle_seconds: seconds.unwrap_or(plan.idle_seconds), ..plan };
            let Plan {
                converge: conv,
                rollout_samples,
                rollout_resync,
                watch_samples,
                resync: rs,
                resync_periods,
                resync_interval,
                heal_services,
                heal_samples,
                idle_services,
                idle_seconds,
                api_services,
                api_seconds,
                traffic_swaps: _,
                reload_changes,
            } = p;
            benches.push(("converge", GOAL_CONVERGE, Box::new(move || converge::run(ctx, &conv))));
            benches.push((
                "rollout",
                GOAL_ROLLOUT,
                Box::new(move || rollout::run(ctx, rollout_samples, rollout_resync)),
            ));
            benches.push(("watch", GOAL_WATCH, Box::new(move || watch::run(ctx, watch_samples))));
            benches.push((
                "resync",
                GOAL_RESYNC,
                Box::new(move || resync::run(ctx, &rs, resync_periods, resync_interval)),
            ));
            benches.push(("heal", GOAL_HEAL, Box::new(move || heal::run(ctx, heal_services, heal_samples))));
            benches.push(("idle", GOAL_IDLE, Box::new(move || idle::run(ctx, idle_services, idle_seconds))));
            benches.push(("api", GOAL_API, Box::new(move || api::run(ctx, api_services, api_seconds, None))));
            // `traffic` is not here: at about 2.5 minutes it would lengthen `all` by a fifth.
            benches.push(("reload", GOAL_RELOAD, Box::new(move || reload::run(ctx, reload_changes))));
            let n = if ctx.quick { 2 } else { 6 };
            benches.push(("serve", GOAL_SERVE, Box::new(move || serve::run(ctx, n))));
            benches.push(("admit", GOAL_ADMIT, Box::new(move || admit::run(ctx, if ctx.quick { 6 } else { 20 }))));
            benches.push(("recreate", GOAL_RECREATE, Box::new(move || recreate::run(ctx, n))));
        }
    }
    let mut goals = Vec::new();
    let mut failed = false;
    for (name, goal, bench) in benches {
        if cleanup::interrupted() {
            break;
        }
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(bench))
            .unwrap_or_else(|panic| Err(Error(format!("panicked: {}", panic_text(panic.as_ref())))));
        // Whatever the bench left (it should have removed it already).
        cleanup::sweep(cleanup::prefix());
        match outcome {
            Ok(g) => goals.extend(g),
            Err(e) => {
                failed = true;
                println!("!! {name} failed after {:.0} s: {e}\n", started.elapsed().as_secs_f64());
                goals.push(Goal::error(name, goal, &e));
            }
        }
        eprintln!("{name}: done in {:.0} s", started.elapsed().as_secs_f64());
    }
    let title = if single { "summary".to_owned() } else { format!("summary of run {}", ctx.run) };
    util::print_summary(&title, &goals);
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

const GOAL_CONVERGE: &str = "N=50: controller/sequential docker run <= 1.0";
const GOAL_ROLLOUT: &str = "median commit->new serving & old gone <= 1.3x docker run + /health";
const GOAL_RESYNC: &str = "N=100: 1 list call and <= 5 ms CPU per no-op resync";
const GOAL_HEAL: &str = "median time to a healthy container <= 1 s";
const GOAL_IDLE: &str = "<= 0.2 % of a core, <= 20 MiB RSS";
const GOAL_WATCH: &str = "commit->reconcile started <= 50 ms (p50 and max of 20 commits)";
const GOAL_TRAFFIC: &str = "controller: 0 failed requests per swap, slowest <= 250 ms";
const GOAL_RELOAD: &str = "failed requests per Caddyfile change with reload = 0";
const GOAL_SERVE: &str = "median commit->new version through the alias <= docker run + ready + 100 ms";
const GOAL_ADMIT: &str = "admission move (disconnect + connect, same IPv4) p50 <= 100 ms, idle";
const GOAL_RECREATE: &str = "median gap of a Recreate (host port) < stop+remove, create+start";
const GOAL_SCALE: &str =
    "N=200: converge <= 1.1x engine limit, resync 1 list & <= 5 ms, API p99 <= 5 ms, RSS <= 20 MiB";
const GOAL_API: &str = "N=100: /metrics and /api/v1/status p99 <= 5 ms during a rollout";

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}
