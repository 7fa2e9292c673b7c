//! One module per memectl verb (mini-redis): each owns its flags, what it fetches and its
//! layout; renderers are pure functions of the API types and a [`crate::render::View`].

pub mod completion;
pub mod describe;
pub mod diff;
pub mod get;
pub mod history;
pub mod import;
pub mod logs;
pub mod reconcile;
pub mod resume;
pub mod rollback;
pub mod set;
pub mod status;
pub mod suspend;
pub mod validate;
pub mod version;
pub mod wait;

use crate::cli::{Global, Outcome};

/// Sends a token-protected mutation (`POST path`) and prints the controller's answer.
///
/// # Errors
/// The token cannot be read, the controller cannot be reached or refuses (exit 1).
pub(crate) async fn mutate(path: &str, global: &Global) -> anyhow::Result<Outcome> {
    let message = global.client()?.with_token(global.token()?).post(path).await?;
    crate::output::print(&format!("{message}\n"))?;
    Ok(Outcome::Success)
}
