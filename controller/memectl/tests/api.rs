//! memectl as a user runs it against the controller's API, here a tiny in-test HTTP server
//! serving the fixtures: the tables (ages filtered), `-o json|yaml` round trips, `wait`,
//! refused mutations, an unreachable controller and a closed stdout.

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::cargo::cargo_bin_cmd;
use meme_api::status::{ControllerStatus, Event, ServiceStatus, SyncStatus};
use predicates::prelude::*;
use support::{Reply, serve, serve_fixtures};

/// memectl pointed at `server`, with none of the user's environment leaking in.
fn memectl(server: &str) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("memectl");
    cmd.env_remove("MEMECTL_SERVER")
        .env_remove("MEMECTL_TOKEN")
        .env_remove("MEMECTL_TOKEN_FILE")
        .env("NO_COLOR", "1")
        .args(["--server", server]);
    cmd
}

/// Runs memectl against the fixtures and returns its stdout, asserting success.
fn stdout_of(args: &[&str]) -> String {
    let server = serve_fixtures("status.json", "events.json");
    let output = memectl(&server.url).args(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Snapshots `text` with ages (which depend on the real clock) replaced by `[AGE]`, and the
/// column padding that depends on their widths normalized to three spaces.
fn assert_table_snapshot(name: &str, text: &str) {
    insta::with_settings!({filters => vec![
        (r"\b\d+[smhdy](?:\d+[smhd])?\b", "[AGE]"),
        (r"(\S) {2,}", "$1   "),
    ]}, {
        insta::assert_snapshot!(name, text);
    });
}

fn fixture_status() -> ControllerStatus {
    serde_json::from_str(&support::fixture("status.json")).unwrap()
}

#[test]
fn status_should_print_the_stack_and_services() {
    assert_table_snapshot("cli_status", &stdout_of(&["status"]));
}

#[test]
fn get_should_print_kubectl_style_tables() {
    assert_table_snapshot("cli_get_services", &stdout_of(&["get", "services"]));
    assert_table_snapshot("cli_get_services_wide", &stdout_of(&["get", "svc", "-o", "wide"]));
    assert_table_snapshot("cli_get_containers", &stdout_of(&["get", "ctr"]));
    assert_table_snapshot("cli_get_containers_wide", &stdout_of(&["get", "containers", "-o", "wide"]));
    assert_table_snapshot("cli_get_events", &stdout_of(&["get", "ev"]));
    assert_table_snapshot("cli_get_events_worker", &stdout_of(&["get", "events", "--service", "worker"]));
}

#[test]
fn describe_should_print_one_service() {
    assert_table_snapshot("cli_describe_service_worker", &stdout_of(&["describe", "service", "worker"]));
}

#[test]
fn describe_should_exit_1_naming_the_services_that_exist() {
    let server = serve_fixtures("status.json", "events.json");
    memectl(&server.url).args(["describe", "svc", "nope"]).assert().code(1).stdout("").stderr(
        "error: service \"nope\" not found in stack meme-staging \
         (services: backend, caddy, minio, redis, worker)\n",
    );
    memectl(&server.url).args(["get", "services", "backend", "nope"]).assert().code(1);
}

#[test]
fn get_services_json_should_round_trip_to_the_status_services() {
    let services: Vec<ServiceStatus> = serde_json::from_str(&stdout_of(&["get", "services", "-o", "json"])).unwrap();
    assert_eq!(services, fixture_status().services);
    let one: Vec<ServiceStatus> = serde_json::from_str(&stdout_of(&["get", "svc", "worker", "-o", "json"])).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].name, "worker");
}

#[test]
fn status_json_and_yaml_should_be_the_whole_controller_status() {
    let json: ControllerStatus = serde_json::from_str(&stdout_of(&["status", "-o", "json"])).unwrap();
    assert_eq!(json, fixture_status());
    let yaml: ControllerStatus = serde_saphyr::from_str(&stdout_of(&["status", "-o", "yaml"])).unwrap();
    assert_eq!(yaml, fixture_status());
    let events: Vec<Event> = serde_json::from_str(&stdout_of(&["get", "events", "-o", "json"])).unwrap();
    assert_eq!(events, serde_json::from_str::<Vec<Event>>(&support::fixture("events.json")).unwrap());
    let containers: Vec<serde_json::Value> =
        serde_json::from_str(&stdout_of(&["get", "containers", "-s", "backend", "-o", "json"])).unwrap();
    assert_eq!(containers.len(), 3);
    assert_eq!(containers[0]["service"], "backend");
    assert_eq!(containers[0]["ready"], true);
}

/// A status server whose answers go through `stages` (one per poll, the last repeating).
fn serve_statuses(stages: Vec<ControllerStatus>) -> support::Server {
    let polls = Arc::new(AtomicUsize::new(0));
    serve(move |request| {
        assert_eq!(request.path, "/api/v1/status");
        let n = polls.fetch_add(1, Ordering::SeqCst).min(stages.len() - 1);
        Reply::json(200, serde_json::to_string(&stages[n]).unwrap())
    })
}

fn with_sync(sync: SyncStatus) -> ControllerStatus {
    let mut status = fixture_status();
    status.sync_status = sync;
    status
}

#[test]
fn wait_should_exit_0_once_synced() {
    let server = serve_statuses(vec![with_sync(SyncStatus::Progressing), with_sync(SyncStatus::Synced)]);
    memectl(&server.url)
        .args(["wait", "--for", "synced", "--interval", "50ms", "--timeout", "10s"])
        .assert()
        .success()
        .stdout("synced at 4f1c2a9 \"Bump backend and worker to 4f1c2a9\"\n")
        .stderr(predicate::str::contains("waiting for synced: Progressing at 4f1c2a9"));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn wait_with_revision_should_exit_0_only_when_that_revision_is_applied() {
    // Outside any git repository, a commit id is taken as a prefix.
    let nowhere = tempfile::tempdir().unwrap();
    let server = serve_statuses(vec![with_sync(SyncStatus::Synced)]);
    memectl(&server.url)
        .current_dir(nowhere.path())
        .args(["wait", "--for", "synced", "--revision", "4f1c2a9"])
        .assert()
        .success();
    memectl(&server.url)
        .current_dir(nowhere.path())
        .args(["wait", "--for", "synced", "--revision", "4f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a39"])
        .assert()
        .success();
    memectl(&server.url)
        .current_dir(nowhere.path())
        .args(["wait", "--for", "synced", "--revision", "deadbee", "--timeout", "300ms", "--interval", "50ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: timed out after 300ms waiting for synced at deadbee"));
}

/// A git repository in a temp dir with one commit; returns it and the commit's id.
fn one_commit_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "Bump"]);
    git(&["tag", "v1"]);
    let head = git(&["rev-parse", "HEAD"]);
    (dir, head)
}

// See: #9
#[test]
fn issue_9_wait_revision_resolves_any_git_revision_or_exits_2_at_once() {
    let (repo, head) = one_commit_repo();
    let mut status = with_sync(SyncStatus::Synced);
    status.applied.as_mut().unwrap().revision.clone_from(&head);
    status.sync_revision = Some(head.clone());
    let server = serve_statuses(vec![status]);
    for rev in ["HEAD", "main", "v1", &head[..10]] {
        memectl(&server.url)
            .current_dir(repo.path())
            .args(["wait", "--for", "synced", "--revision", rev, "--timeout", "5s"])
            .assert()
            .success()
            .stdout(format!("synced at {} \"Bump backend and worker to 4f1c2a9\"\n", &head[..7]));
    }
    // Not a revision of this repository, or no repository to resolve a name in: refused at
    // once (the server is never asked), not a wait until the timeout.
    let asked = server.requests().len();
    memectl(&server.url)
        .current_dir(repo.path())
        .args(["wait", "--for", "synced", "--revision", "no-such-branch", "--timeout", "1m"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--revision no-such-branch names no commit"));
    let nowhere = tempfile::tempdir().unwrap();
    memectl(&server.url)
        .current_dir(nowhere.path())
        .args(["wait", "--for", "synced", "--revision", "HEAD", "--timeout", "1m"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot resolve --revision HEAD"));
    assert_eq!(server.requests().len(), asked);
}

#[test]
fn wait_should_exit_1_at_once_on_degraded_saying_why() {
    let server = serve_statuses(vec![with_sync(SyncStatus::Degraded)]);
    memectl(&server.url)
        .args(["wait", "--for", "synced", "--timeout", "1m"])
        .timeout(std::time::Duration::from_secs(20))
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("error: meme-controller reports Degraded at 4f1c2a9"))
        .stderr(predicate::str::contains(
            "worker: Degraded (ProgressDeadlineExceeded): rollout did not become healthy",
        ));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn wait_should_exit_1_on_timeout() {
    let server = serve_statuses(vec![with_sync(SyncStatus::Progressing)]);
    memectl(&server.url)
        .args(["wait", "--for", "ready", "--timeout", "300ms", "--interval", "100ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("error: timed out after 300ms waiting for ready"))
        .stderr(predicate::str::contains("not ready: backend 1/2, worker 0/1"));
}

#[test]
fn reconcile_should_exit_1_and_print_the_servers_error_when_refused() {
    let server = serve(|_| Reply::json(401, r#"{"error": "missing or invalid bearer token"}"#));
    memectl(&server.url)
        .arg("reconcile")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "error: meme-controller refused POST {}/api/v1/reconcile: 401 Unauthorized: missing or invalid bearer token",
            server.url
        )))
        .stderr(predicate::str::contains("hint: pass the controller's token with --token-file"));
    let server = serve(|_| Reply::json(403, r#"{"error": "mutations are disabled: no --token-file"}"#));
    memectl(&server.url)
        .arg("suspend")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("403 Forbidden: mutations are disabled"));
}

#[test]
fn mutations_should_send_the_bearer_token() {
    let server = serve(|request| match (request.method.as_str(), request.authorization.as_deref()) {
        ("POST", Some("Bearer s3cret")) => Reply::json(200, format!(r#"{{"message": "{} accepted"}}"#, request.path)),
        _ => Reply::json(401, r#"{"error": "bad token"}"#),
    });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    memectl(&server.url)
        .args(["suspend", "--token-file"])
        .arg(&token_file)
        .assert()
        .success()
        .stdout("/api/v1/suspend accepted\n");
    memectl(&server.url)
        .arg("resume")
        .env("MEMECTL_TOKEN", "s3cret")
        .assert()
        .success()
        .stdout("/api/v1/resume accepted\n");
    memectl(&server.url)
        .arg("reconcile")
        .env("MEMECTL_TOKEN_FILE", &token_file)
        .assert()
        .success()
        .stdout("/api/v1/reconcile accepted\n");
    memectl(&server.url)
        .args(["reconcile", "--token-file", "/nonexistent/token"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read token file /nonexistent/token"));
}

#[test]
fn reconcile_wait_should_wait_for_a_reconcile_after_the_request() {
    let stale = with_sync(SyncStatus::Synced);
    let requests = Arc::new(AtomicUsize::new(0));
    let server = serve(move |request| {
        if request.method == "POST" {
            requests.fetch_add(1, Ordering::SeqCst);
            return Reply::json(200, r#"{"message": "reconcile queued"}"#);
        }
        let mut status = stale.clone();
        let polls = requests.fetch_add(1, Ordering::SeqCst);
        // The first poll still shows the reconcile from before the request.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let time = i64::try_from(now).unwrap() + if polls < 2 { -3600 } else { 0 };
        status.last_reconcile.as_mut().unwrap().time = time;
        Reply::json(200, serde_json::to_string(&status).unwrap())
    });
    memectl(&server.url)
        .args(["reconcile", "--wait", "--timeout", "20s"])
        .env("MEMECTL_TOKEN", "t")
        .assert()
        .success()
        .stdout("reconcile queued\nsynced at 4f1c2a9 \"Bump backend and worker to 4f1c2a9\"\n")
        .stderr(predicate::str::contains("reconcile requested"));
}

#[test]
fn an_unreachable_controller_should_exit_2_naming_the_url() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [&["status"][..], &["get", "events"], &["wait", "--for", "synced"], &["describe", "svc", "x"]] {
        memectl(&url)
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with(format!("error: cannot reach meme-controller at {url}/api/v1/")))
            .stderr(predicate::str::contains("hint: is it running? start it with: meme-controller --repo DIR"));
    }
    memectl("https://127.0.0.1:1")
        .arg("status")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only plain http://"));
}

#[test]
fn a_closed_stdout_should_not_be_an_error() {
    let server = serve_fixtures("status.json", "events.json");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("memectl"))
        .args(["--server", &server.url, "status", "-o", "yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn completion_should_print_a_script_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        cargo_bin_cmd!("memectl")
            .args(["completion", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("memectl").and(predicate::str::contains("describe")));
    }
}

#[test]
fn help_should_document_the_exit_codes() {
    cargo_bin_cmd!("memectl")
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:\n  0  success"))
        .stdout(predicate::str::contains("plain http:// only"));
}

#[test]
fn version_should_print_the_client_and_the_controllers_version() {
    let mut status = fixture_status();
    status.controller_version = "9.9.9 (commit feedbee)".to_owned();
    let server = serve_statuses(vec![status]);
    let client = format!("Client Version: {}", env!("CARGO_PKG_VERSION"));
    memectl(&server.url).arg("version").assert().success().stdout(
        predicate::str::starts_with(client.clone())
            .and(predicate::str::ends_with("\nServer Version: 9.9.9 (commit feedbee)\n")),
    );
    let json = memectl(&server.url).args(["version", "-o", "json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["serverVersion"], "9.9.9 (commit feedbee)");
    assert!(json["clientVersion"].as_str().unwrap().starts_with(env!("CARGO_PKG_VERSION")), "{json}");
}

#[test]
fn version_should_print_the_client_and_exit_2_when_the_controller_is_unreachable() {
    let client = format!("Client Version: {}", env!("CARGO_PKG_VERSION"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    memectl(&url)
        .arg("version")
        .assert()
        .code(2)
        .stdout(
            predicate::str::starts_with(client.clone()).and(predicate::str::ends_with("\nServer Version: unknown\n")),
        )
        .stderr(predicate::str::contains(url.as_str()));
    memectl(&url)
        .args(["version", "--client"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(client).and(predicate::str::contains("Server").not()));
}
