//! Every table memectl prints, rendered from the fixture `ControllerStatus` and events at a
//! fixed "now" so ages are deterministic, and snapshotted.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use meme_api::status::{ControllerStatus, Event, ServiceStatus};
use memectl::cmd::{describe, get, status};
use memectl::render::View;

/// 2026-11-26T12:00:00Z: the fixtures' timestamps are relative to it.
const NOW: u64 = 1_795_694_400;

fn view() -> View {
    View::plain(UNIX_EPOCH + Duration::from_secs(NOW))
}

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn status() -> ControllerStatus {
    fixture("status.json")
}

fn events() -> Vec<Event> {
    fixture("events.json")
}

fn service<'a>(status: &'a ControllerStatus, name: &str) -> &'a ServiceStatus {
    status.services.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn status_should_show_the_stack_and_one_row_per_service() {
    insta::assert_snapshot!("status", status::render(&status(), &view(), false));
}

#[test]
fn status_wide_should_add_the_service_columns() {
    insta::assert_snapshot!("status_wide", status::render(&status(), &view(), true));
}

#[test]
fn status_should_print_the_source_error_verbatim() {
    let invalid: ControllerStatus = fixture("status-invalid.json");
    let text = status::render(&invalid, &view(), false);
    assert!(text.contains("\nmanifests/demo/web.yaml:9:13: error: spec.replicas: invalid u32\n"), "{text}");
    insta::assert_snapshot!("status_invalid", text);
}

#[test]
fn status_should_cope_with_a_controller_that_has_read_nothing_yet() {
    let empty = ControllerStatus::default();
    insta::assert_snapshot!("status_empty", status::render(&empty, &view(), false));
}

#[test]
fn get_services_should_look_like_kubectl_get_deploy() {
    insta::assert_snapshot!("get_services", get::services_table(&status().services, &view(), false));
}

#[test]
fn get_services_wide_should_add_hash_image_restarts_and_message() {
    insta::assert_snapshot!("get_services_wide", get::services_table(&status().services, &view(), true));
}

#[test]
fn get_containers_should_list_every_container_with_its_service() {
    let status = status();
    let services: Vec<&ServiceStatus> = status.services.iter().collect();
    insta::assert_snapshot!("get_containers", get::containers_table(&services, &view(), false));
}

#[test]
fn get_containers_wide_should_add_ids_and_docker_status() {
    let status = status();
    let services: Vec<&ServiceStatus> = status.services.iter().collect();
    insta::assert_snapshot!("get_containers_wide", get::containers_table(&services, &view(), true));
}

#[test]
fn get_events_should_look_like_kubectl_get_events() {
    let text = get::events_table(&events(), &view(), false);
    assert!(!text.contains("ModuleNotFoundError"), "only first lines in table mode:\n{text}");
    insta::assert_snapshot!("get_events", text);
}

#[test]
fn get_events_wide_should_split_count_and_first_seen() {
    insta::assert_snapshot!("get_events_wide", get::events_table(&events(), &view(), true));
}

#[test]
fn describe_service_should_show_spec_conditions_containers_and_events() {
    let status = status();
    insta::assert_snapshot!(
        "describe_service_worker",
        describe::render(&status, service(&status, "worker"), &events(), &view())
    );
    insta::assert_snapshot!(
        "describe_service_backend",
        describe::render(&status, service(&status, "backend"), &events(), &view())
    );
}

#[test]
fn describe_service_should_say_none_where_there_is_nothing() {
    let status = ControllerStatus {
        services: vec![ServiceStatus { name: "idle".into(), ..ServiceStatus::default() }],
        ..ControllerStatus::default()
    };
    insta::assert_snapshot!("describe_service_empty", describe::render(&status, &status.services[0], &[], &view()));
}

#[test]
fn tables_should_be_coloured_only_when_asked() {
    let status = status();
    let plain = status::render(&status, &view(), false);
    assert!(!plain.contains('\x1b'));
    let coloured = View { paint: memectl::color::Paint::COLOR, ..view() };
    let text = status::render(&status, &coloured, false);
    assert!(text.contains("\x1b[31mDegraded\x1b[0m"), "{text}");
    assert!(text.contains("\x1b[32mSynced\x1b[0m"), "{text}");
    // Colour does not move the columns.
    let strip =
        |s: &str| s.replace("\x1b[31m", "").replace("\x1b[32m", "").replace("\x1b[33m", "").replace("\x1b[0m", "");
    assert_eq!(strip(&text), plain);
}

/// Multi-line event messages (a failed rollout's log tail, every validation error of a
/// revision) keep their first line in tables, with a marker counting the rest; `describe`
/// shows the newest failed rollout in full, with its log tail.
// See: #9
#[test]
fn issue_9_multi_line_messages_are_marked_and_describe_shows_the_log_tail() {
    let mut events = events();
    let failed = events.iter_mut().find(|e| e.reason == "RolloutFailed").expect("the fixture has one");
    failed.message = "rollout did not become healthy within 2m\nlast log lines:\nTraceback (most recent call last):\n  File \"worker.py\", line 3\nModuleNotFoundError: No module named 'ffmpeg'".into();
    let table = get::events_table(&events, &view(), false);
    assert!(table.contains("rollout did not become healthy within 2m [+4 lines]\n"), "{table}");
    let status = status();
    let text = describe::render(&status, service(&status, "worker"), &events, &view());
    assert!(
        text.contains("Last failed rollout (15s ago):\n  rollout did not become healthy within 2m\n  last log lines:\n  Traceback (most recent call last):\n    File \"worker.py\", line 3\n  ModuleNotFoundError: No module named 'ffmpeg'\n"),
        "{text}"
    );
}
