//! `memectl reconcile [--wait] [--timeout D]`: asks the controller to reconcile every service
//! now (`POST /api/v1/reconcile` with the bearer token); with `--wait`, then waits like
//! `wait --for synced`, counting only a Synced reached after the request.

use std::time::{Duration, SystemTime};

use crate::age;
use crate::cli::{Global, Outcome};
use crate::cmd::wait::{self, Condition, Goal};
use crate::output;

/// The mutation endpoint.
const PATH: &str = "/api/v1/reconcile";

/// Time between two polls of `--wait`: the same as `wait`'s default.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Flags of `reconcile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Then wait until the stack is Synced again (exit 1 on timeout or Degraded).
    #[arg(long)]
    wait: bool,
    /// How long --wait waits (`90s`, `5m`).
    #[arg(long, value_name = "D", default_value = "5m", value_parser = humantime::parse_duration, requires = "wait")]
    timeout: Duration,
}

/// Runs `reconcile`.
///
/// # Errors
/// The token file cannot be read, the controller cannot be reached or refuses (exit 1), or
/// `--wait` fails.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let client = global.client()?.with_token(global.token()?);
    // Whole seconds, rounded down: the controller stamps reconciles in seconds too.
    let requested = age::unix_seconds(SystemTime::now());
    let message = client.post(PATH).await?;
    output::print(&format!("{message}\n"))?;
    if !args.wait {
        return Ok(Outcome::Success);
    }
    let goal = Goal { condition: Condition::Synced, revision: None, since: Some(requested) };
    wait::wait(&client, &goal, wait::Lineage::none(), args.timeout, POLL_INTERVAL).await
}
