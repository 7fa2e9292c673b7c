//! `memectl suspend`: stops reconciliation (`POST /api/v1/suspend` with the bearer token);
//! running containers are left as they are until `resume`.

use crate::cli::{Global, Outcome};

/// The mutation endpoint.
const PATH: &str = "/api/v1/suspend";

/// Flags of `suspend` (only the global ones).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `suspend`.
///
/// # Errors
/// The token file cannot be read, the controller cannot be reached or refuses (exit 1).
pub async fn run(_args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    super::mutate(PATH, global).await
}
