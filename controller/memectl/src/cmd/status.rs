//! `memectl status [-o table|wide|json|yaml]`: the stack at a glance (sync status, source tip,
//! applied revision, source error, last reconcile) and one row per service; `-o json|yaml`
//! prints the whole `ControllerStatus`.

use std::fmt::Write as _;

use meme_api::status::{ControllerStatus, RevisionInfo};

use crate::age;
use crate::cli::{Global, Outcome};
use crate::color::Color;
use crate::output::{self, Format};
use crate::render::{self, NONE, View};

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format (`wide` adds columns to the services table).
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Format,
}

/// Runs `status`.
///
/// # Errors
/// The controller cannot be reached, or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let status = global.client()?.status().await?;
    let text = match output::serialize(&status, args.output)? {
        Some(text) => text,
        None => render(&status, &View::live(), args.output == Format::Wide),
    };
    output::print(&text)?;
    Ok(Outcome::Success)
}

/// The status page: header lines, then the services table.
#[must_use]
pub fn render(status: &ControllerStatus, view: &View, wide: bool) -> String {
    let paint = view.paint;
    let mut out = String::new();
    let stack = status.stack.as_deref().unwrap_or(NONE);
    let _ = writeln!(out, "Stack: {stack}   Sync: {}", paint.status(status.sync_status.as_str()));
    let source = &status.source;
    if source.repo.is_empty() {
        let _ = writeln!(out, "Source: {NONE}");
    } else {
        let _ = writeln!(
            out,
            "Source: {} {}@{}  tip {}",
            source.repo,
            source.path,
            source.reference,
            revision(source.tip.as_ref())
        );
    }
    if let Some(error) = &source.error {
        // Verbatim: its lines are `file:line:col: ...`, which editors and terminals follow.
        let _ = writeln!(out, "{}", paint.paint("Source error:", Some(Color::Red)));
        let _ = writeln!(out, "{}", error.trim_end());
    }
    let _ = writeln!(out, "Applied: {}", revision(status.applied.as_ref()));
    if let Some(last) = &status.last_reconcile {
        let result = if last.result == "success" { None } else { Some(Color::Red) };
        let _ = writeln!(
            out,
            "Last reconcile: {} ago, {} ({}): {}",
            age::since_unix(view.now, last.time),
            last.service,
            last.trigger,
            paint.paint(&last.result, result)
        );
    }
    out.push('\n');
    if status.services.is_empty() {
        out.push_str("No services.\n");
    } else {
        out.push_str(&render::services_table(&status.services, view, wide).render());
    }
    out
}

/// `1a2b3c4 "subject"`, or `<none>`.
fn revision(info: Option<&RevisionInfo>) -> String {
    match info {
        Some(info) if info.subject.is_empty() => render::short_revision(&info.revision).to_owned(),
        Some(info) => format!("{} {:?}", render::short_revision(&info.revision), info.subject),
        None => NONE.to_owned(),
    }
}
