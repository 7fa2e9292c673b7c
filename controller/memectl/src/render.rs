//! Pieces shared by the renderers: the [`View`] (the "now" ages are measured from, and the
//! paint), the services table that `status` and `get services` both print, and short forms of
//! revisions, hashes and ids.

use std::time::SystemTime;

use meme_api::status::{ConditionType, ControllerStatus, ServiceStatus};

use crate::age;
use crate::cli::CheckError;
use crate::color::Paint;
use crate::table::Table;

/// What kubectl prints for an absent value.
pub const NONE: &str = "<none>";

/// Hex digits of a git revision shown in tables (git's default abbreviation).
const SHORT_REVISION: usize = 7;
/// Hex digits of a spec hash: as many as the controller puts in container names.
const SHORT_HASH: usize = 10;
/// Hex digits of a container or image id, as `docker ps` shows them.
const SHORT_ID: usize = 12;

/// How to render: ages are measured from `now`, status words painted with `paint`.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// The moment ages are measured from (a parameter, so tests are deterministic).
    pub now: SystemTime,
    /// Colour, or none.
    pub paint: Paint,
}

impl View {
    /// A view for tests and pipes: this `now`, no colour.
    #[must_use]
    pub const fn plain(now: SystemTime) -> Self {
        Self { now, paint: Paint::PLAIN }
    }

    /// The view for the user's terminal: the current time, colour if stdout allows it.
    #[must_use]
    pub fn live() -> Self {
        Self { now: SystemTime::now(), paint: Paint::for_stdout() }
    }
}

/// A git revision shortened like `git log --oneline`, or `<none>`.
#[must_use]
pub fn short_revision(revision: &str) -> &str {
    short(revision, SHORT_REVISION)
}

/// A spec hash shortened as in container names, or `<none>`.
#[must_use]
pub fn short_hash(hash: &str) -> &str {
    short(hash, SHORT_HASH)
}

/// A container or image id without `sha256:`, shortened as `docker ps` does, or `<none>`.
#[must_use]
pub fn short_id(id: &str) -> &str {
    short(id.strip_prefix("sha256:").unwrap_or(id), SHORT_ID)
}

fn short(text: &str, len: usize) -> &str {
    if text.is_empty() {
        return NONE;
    }
    text.char_indices().nth(len).map_or(text, |(end, _)| &text[..end])
}

/// `text`, or `<none>` when it is empty.
#[must_use]
pub fn or_none(text: &str) -> &str {
    if text.is_empty() { NONE } else { text }
}

/// A message in one table cell: its first line, and a marker saying how many lines were left
/// out (`describe` and `-o yaml` show them all), so a cut message never reads as a whole one.
#[must_use]
pub fn first_line(message: &str) -> String {
    let mut lines = message.trim().lines();
    let first = lines.next().unwrap_or_default().trim_end();
    match lines.count() {
        0 => first.to_owned(),
        1 => format!("{first} [+1 line]"),
        n => format!("{first} [+{n} lines]"),
    }
}

/// The age of a service: that of its oldest container (the controller keeps no creation time
/// for the service itself).
#[must_use]
pub fn service_age(service: &ServiceStatus, now: SystemTime) -> String {
    service
        .containers
        .iter()
        .map(|c| c.created)
        .filter(|&created| created != 0)
        .min()
        .map_or_else(|| age::UNKNOWN.to_owned(), |created| age::since_unix(now, created))
}

/// Why a service is not Synced: the message of its Stalled, Degraded or Progressing condition,
/// whichever holds first in that order.
#[must_use]
pub fn service_message(service: &ServiceStatus) -> &str {
    [ConditionType::Stalled, ConditionType::Degraded, ConditionType::Progressing]
        .iter()
        .find_map(|kind| service.conditions.iter().find(|c| c.holds() && c.kind == *kind && !c.message.is_empty()))
        .map_or("", |c| c.message.as_str())
}

/// `ready/desired`, as kubectl's READY column.
#[must_use]
pub fn ready_ratio(service: &ServiceStatus) -> String {
    format!("{}/{}", service.ready_replicas, service.desired_replicas)
}

/// The services table: `NAME READY UP-TO-DATE AVAILABLE AGE IMAGE STATUS`, and with `wide`
/// also `SPEC-HASH IMAGE-ID RESTARTS MESSAGE`.
#[must_use]
pub fn services_table(services: &[ServiceStatus], view: &View, wide: bool) -> Table {
    let mut header = vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "IMAGE", "STATUS"];
    if wide {
        header.extend(["SPEC-HASH", "IMAGE-ID", "RESTARTS", "MESSAGE"]);
    }
    let mut table = Table::new(header);
    for s in services {
        let mut row = vec![
            s.name.clone(),
            ready_ratio(s),
            s.updated_replicas.to_string(),
            s.ready_replicas.to_string(),
            service_age(s, view.now),
            s.image.clone(),
            view.paint.status(s.phase.as_str()),
        ];
        if wide {
            row.extend([
                short_hash(&s.spec_hash).to_owned(),
                short_id(s.image_id.as_deref().unwrap_or_default()).to_owned(),
                s.restarts.to_string(),
                first_line(service_message(s)),
            ]);
        }
        table.row(row);
    }
    table
}

/// The service called `name`, or a [`CheckError`] naming those that exist.
///
/// # Errors
/// No service has that name.
pub fn find_service<'a>(status: &'a ControllerStatus, name: &str) -> Result<&'a ServiceStatus, CheckError> {
    status.services.iter().find(|s| s.name == name).ok_or_else(|| unknown_service(status, name))
}

/// The error for a service name the stack does not have.
#[must_use]
pub fn unknown_service(status: &ControllerStatus, name: &str) -> CheckError {
    let stack = status.stack.as_deref().map_or_else(String::new, |s| format!(" in stack {s}"));
    let names: Vec<&str> = status.services.iter().map(|s| s.name.as_str()).collect();
    let known =
        if names.is_empty() { "it has no services".to_owned() } else { format!("services: {}", names.join(", ")) };
    CheckError(format!("service {name:?} not found{stack} ({known})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_should_cut_at_git_and_docker_lengths() {
        assert_eq!(short_revision("1a2b3c4d5e6f"), "1a2b3c4");
        assert_eq!(short_revision("abc"), "abc");
        assert_eq!(short_revision(""), "<none>");
        assert_eq!(short_hash("0123456789abcdef"), "0123456789");
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id(""), "<none>");
        assert_eq!(first_line("one"), "one");
        assert_eq!(first_line("one\ntwo"), "one [+1 line]");
        assert_eq!(first_line("rollout failed; last log lines:\na\nb\n"), "rollout failed; last log lines: [+2 lines]");
        assert_eq!(first_line(""), "");
    }

    #[test]
    fn unknown_service_should_name_the_services_that_exist() {
        let status = ControllerStatus {
            stack: Some("demo".into()),
            services: vec![
                ServiceStatus { name: "web".into(), ..ServiceStatus::default() },
                ServiceStatus { name: "redis".into(), ..ServiceStatus::default() },
            ],
            ..ControllerStatus::default()
        };
        assert_eq!(find_service(&status, "web").map(|s| s.name.as_str()).ok(), Some("web"));
        let err = find_service(&status, "api").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("service \"api\" not found in stack demo (services: web, redis)"));
        let err = unknown_service(&ControllerStatus::default(), "api").to_string();
        assert_eq!(err, "service \"api\" not found (it has no services)");
    }
}
