//! `memectl describe service NAME`: one service in detail, like `kubectl describe`: its spec
//! summary, conditions, containers, the last failed rollout with its log tail, and recent events
//! (those of `/api/v1/events` about it).

use meme_api::status::{ControllerStatus, Event, ServiceStatus};

use crate::cli::{Global, Outcome};
use crate::cmd::get;
use crate::color::condition_color;
use crate::render::{self, NONE, View};
use crate::table::Table;

/// The event reason of a rollout whose new container never became ready; its message ends with
/// the container's last log lines.
const ROLLOUT_FAILED: &str = "RolloutFailed";

/// Flags of `describe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    resource: Resource,
}

/// What to describe.
#[derive(Debug, clap::Subcommand)]
enum Resource {
    /// A service: spec, conditions, containers, events.
    #[command(visible_aliases = ["svc", "services"])]
    Service {
        /// The service's name.
        name: String,
    },
}

/// Runs `describe`.
///
/// # Errors
/// The controller cannot be reached, the service does not exist (exit 1), or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let Resource::Service { name } = &args.resource;
    let client = global.client()?;
    let status = client.status().await?;
    let service = render::find_service(&status, name)?;
    let events = client.events().await?;
    crate::output::print(&render(&status, service, &events, &View::live()))?;
    Ok(Outcome::Success)
}

/// The description of `service`; `events` may hold every event, those about other services
/// are left out.
#[must_use]
pub fn render(status: &ControllerStatus, service: &ServiceStatus, events: &[Event], view: &View) -> String {
    let paint = view.paint;
    let s = service;
    let mut fields = Table::new(["Name:", s.name.as_str()]);
    fields.row(["Stack:", status.stack.as_deref().unwrap_or(NONE)]);
    fields.row(["Image:", render::or_none(&s.image)]);
    fields.row(["Image ID:", s.image_id.as_deref().unwrap_or(NONE)]);
    fields.row(["Spec hash:", render::or_none(&s.spec_hash)]);
    let replicas = format!(
        "{} desired | {} updated | {} ready | {} total",
        s.desired_replicas,
        s.updated_replicas,
        s.ready_replicas,
        s.containers.len()
    );
    fields.row(["Replicas:", replicas.as_str()]);
    fields.row(["Restarts:", s.restarts.to_string().as_str()]);
    fields.row(["Status:", paint.status(s.phase.as_str()).as_str()]);
    let mut out = fields.render();

    out.push_str("Conditions:\n");
    if s.conditions.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut table = Table::new(["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for c in &s.conditions {
            table.row([
                c.kind.to_string(),
                paint.paint(c.status.as_str(), condition_color(c.kind, c.status)),
                c.reason.clone(),
                render::first_line(&c.message),
            ]);
        }
        out.push_str(&table.render_indented(2));
    }

    out.push_str("Containers:\n");
    if s.containers.is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut table = Table::new(["NAME", "STATE", "READY", "REVISION", "AGE", "ID", "STATUS"]);
        for c in &s.containers {
            let mut row = get::container_row(c, view);
            row.extend([render::short_id(&c.id).to_owned(), render::or_none(&c.status).to_owned()]);
            table.row(row);
        }
        out.push_str(&table.render_indented(2));
    }

    let ours: Vec<Event> = events.iter().filter(|e| e.service.as_deref() == Some(s.name.as_str())).cloned().collect();
    // The newest failed rollout in full: the reason and the failed container's last log lines
    // (the events table shows one line per event).
    if let Some(failed) = get::sorted(&ours).into_iter().rev().find(|e| e.reason == ROLLOUT_FAILED) {
        out.push_str(&format!("Last failed rollout ({} ago):\n", get::last_seen(failed, view.now, false)));
        for line in failed.message.trim_end().lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if ours.is_empty() {
        out.push_str("Events:  <none>\n");
    } else {
        out.push_str("Events:\n");
        let mut table = Table::new(["LAST SEEN", "TYPE", "REASON", "MESSAGE"]);
        for e in get::sorted(&ours) {
            table.row([
                get::last_seen(e, view.now, true),
                get::event_type(e.kind, view),
                e.reason.clone(),
                render::first_line(&e.message),
            ]);
        }
        out.push_str(&table.render_indented(2));
    }
    out
}
