//! `memectl get services|containers|events`: kubectl-style lists read from the controller's
//! API, as aligned columns (`-o wide` adds some) or as the API's JSON/YAML.

use std::time::SystemTime;

use meme_api::status::{ContainerStatus, ControllerStatus, Event, EventType, ServiceStatus};
use serde::Serialize;

use crate::age;
use crate::cli::{Global, Outcome};
use crate::color::{Color, status_color};
use crate::output::{self, Format};
use crate::render::{self, NONE, View};
use crate::table::Table;

/// Flags of `get`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    resource: Resource,
}

/// What to list.
#[derive(Debug, clap::Subcommand)]
enum Resource {
    /// Services: replicas, age, image and phase.
    #[command(visible_aliases = ["svc", "service"])]
    Services(ServicesArgs),
    /// Containers of every service (or of one): state, readiness, revision.
    #[command(visible_aliases = ["ctr", "container"])]
    Containers(ContainersArgs),
    /// What the controller did and why, oldest first.
    #[command(visible_aliases = ["ev", "event"])]
    Events(EventsArgs),
}

/// `-o`, shared by every resource.
#[derive(Debug, clap::Args)]
struct OutputArg {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Format,
}

#[derive(Debug, clap::Args)]
struct ServicesArgs {
    /// Only these services (exit 1 if one does not exist).
    names: Vec<String>,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, clap::Args)]
struct ContainersArgs {
    /// Only the containers of this service.
    #[arg(long, short = 's', value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(Debug, clap::Args)]
struct EventsArgs {
    /// Only the events about this service.
    #[arg(long, short = 's', value_name = "NAME")]
    service: Option<String>,
    #[command(flatten)]
    output: OutputArg,
}

/// A container with the service it belongs to: one item of `get containers -o json`.
#[derive(Debug, Serialize)]
struct ServiceContainer<'a> {
    service: &'a str,
    #[serde(flatten)]
    container: &'a ContainerStatus,
}

/// Runs `get`.
///
/// # Errors
/// The controller cannot be reached, an unknown service was named, or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let client = global.client()?;
    let view = View::live();
    let (text, empty) = match &args.resource {
        Resource::Services(args) => {
            let status = client.status().await?;
            let services = select(&status, &args.names)?;
            let format = args.output.output;
            match output::serialize(&services, format)? {
                Some(text) => (text, None),
                None => (services_table(&services, &view, format == Format::Wide), Some(services.is_empty())),
            }
        }
        Resource::Containers(args) => {
            let status = client.status().await?;
            if let Some(name) = &args.service {
                render::find_service(&status, name)?;
            }
            let wanted = |s: &&ServiceStatus| args.service.as_ref().is_none_or(|name| &s.name == name);
            let services: Vec<&ServiceStatus> = status.services.iter().filter(wanted).collect();
            let format = args.output.output;
            let items: Vec<ServiceContainer<'_>> = services
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| ServiceContainer { service: &s.name, container: c }))
                .collect();
            match output::serialize(&items, format)? {
                Some(text) => (text, None),
                None => (containers_table(&services, &view, format == Format::Wide), Some(items.is_empty())),
            }
        }
        Resource::Events(args) => {
            let events: Vec<Event> = client
                .events()
                .await?
                .into_iter()
                .filter(|e| args.service.as_ref().is_none_or(|name| e.service.as_ref() == Some(name)))
                .collect();
            let format = args.output.output;
            match output::serialize(&events, format)? {
                Some(text) => (text, None),
                None => (events_table(&events, &view, format == Format::Wide), Some(events.is_empty())),
            }
        }
    };
    if empty == Some(true) {
        // kubectl's way: nothing on stdout, a note on stderr, and success.
        eprintln!("No resources found.");
    } else {
        output::print(&text)?;
    }
    Ok(Outcome::Success)
}

/// The named services in the order given, or all of them.
fn select(status: &ControllerStatus, names: &[String]) -> Result<Vec<ServiceStatus>, crate::cli::CheckError> {
    if names.is_empty() {
        return Ok(status.services.clone());
    }
    names.iter().map(|name| render::find_service(status, name).cloned()).collect()
}

/// `get services`.
#[must_use]
pub fn services_table(services: &[ServiceStatus], view: &View, wide: bool) -> String {
    render::services_table(services, view, wide).render()
}

/// `get containers`: `NAME SERVICE STATE READY REVISION AGE`, and with `wide` also
/// `ID IMAGE-ID STATUS`.
#[must_use]
pub fn containers_table(services: &[&ServiceStatus], view: &View, wide: bool) -> String {
    let mut header = vec!["NAME", "SERVICE", "STATE", "READY", "REVISION", "AGE"];
    if wide {
        header.extend(["ID", "IMAGE-ID", "STATUS"]);
    }
    let mut table = Table::new(header);
    for service in services {
        for c in &service.containers {
            let mut row = container_row(c, view);
            row.insert(1, service.name.clone());
            if wide {
                row.extend([
                    render::short_id(&c.id).to_owned(),
                    render::short_id(&c.image_id).to_owned(),
                    render::or_none(&c.status).to_owned(),
                ]);
            }
            table.row(row);
        }
    }
    table.render()
}

/// `NAME STATE READY REVISION AGE` of one container (also used by `describe`).
#[must_use]
pub fn container_row(c: &ContainerStatus, view: &View) -> Vec<String> {
    let state = match c.state.as_str() {
        "running" => Some(Color::Green),
        "created" | "restarting" | "paused" => Some(Color::Yellow),
        "exited" | "dead" | "removing" => Some(Color::Red),
        _ => None,
    };
    let ready = if c.ready { "true" } else { "false" };
    vec![
        c.name.clone(),
        view.paint.paint(render::or_none(&c.state), state),
        view.paint.paint(ready, Some(if c.ready { Color::Green } else { Color::Red })),
        render::short_revision(&c.revision).to_owned(),
        age::since_unix(view.now, c.created),
    ]
}

/// `get events`: `LAST SEEN TYPE REASON SERVICE MESSAGE` like `kubectl get events` (a
/// repeated event reads `5m (x3 over 1h)`); `wide` splits out `COUNT` and `FIRST SEEN`.
/// Only the first line of a message is shown, with a marker counting the lines left out.
#[must_use]
pub fn events_table(events: &[Event], view: &View, wide: bool) -> String {
    let header = if wide {
        vec!["LAST SEEN", "TYPE", "REASON", "SERVICE", "COUNT", "FIRST SEEN", "MESSAGE"]
    } else {
        vec!["LAST SEEN", "TYPE", "REASON", "SERVICE", "MESSAGE"]
    };
    let mut table = Table::new(header);
    for e in sorted(events) {
        let service = e.service.as_deref().unwrap_or(NONE).to_owned();
        let mut row = vec![last_seen(e, view.now, !wide), event_type(e.kind, view), e.reason.clone(), service];
        if wide {
            row.extend([e.count.to_string(), age::since(view.now, e.first_seen)]);
        }
        row.push(render::first_line(&e.message));
        table.row(row);
    }
    table.render()
}

/// Events by last occurrence, oldest first (the API's order; sorted again to be sure).
#[must_use]
pub fn sorted(events: &[Event]) -> Vec<&Event> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.last_seen);
    sorted
}

/// The LAST SEEN cell: kubectl's `5m (x3 over 1h)` for repeated events when `with_count`.
#[must_use]
pub fn last_seen(event: &Event, now: SystemTime, with_count: bool) -> String {
    let last = age::since(now, event.last_seen);
    if with_count && event.count > 1 {
        format!("{last} (x{} over {})", event.count, age::since(now, event.first_seen))
    } else {
        last
    }
}

/// The TYPE cell, Warning in yellow.
#[must_use]
pub fn event_type(kind: EventType, view: &View) -> String {
    let text = match kind {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    let color = if kind == EventType::Warning { status_color(text) } else { None };
    view.paint.paint(text, color)
}
