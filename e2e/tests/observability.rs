//! The operator's view against a real controller: the status and events API, token-protected
//! mutations, suspension that survives a restart, and a real Prometheus scraping `/metrics`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use meme_api::status::{ConditionType, ControllerStatus, SyncStatus};
use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn env_with(services: &[Service]) -> TestEnv {
    let docs: Vec<(String, String)> =
        services.iter().enumerate().map(|(i, s)| (format!("svc{i}.yaml"), s.yaml())).collect();
    let mut files: Vec<(&str, &str)> = vec![("stack.yaml", STACK)];
    files.extend(docs.iter().map(|(p, c)| (p.as_str(), c.as_str())));
    TestEnv::new(&files)
}

fn status(env: &TestEnv) -> ControllerStatus {
    let (code, body) = env.api_get("/api/v1/status").expect("status answers");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status JSON is a ControllerStatus")
}

fn wait_synced(env: &TestEnv) -> ControllerStatus {
    wait_for(&format!("Synced\n{}", env.logs_tail()), CONVERGE, || {
        env.api_get("/api/v1/status")
            .and_then(|(_, b)| serde_json::from_str::<ControllerStatus>(&b).ok())
            .filter(|s| s.sync_status == SyncStatus::Synced)
    })
}

/// A POST with an optional bearer token: (status, body).
fn post(env: &TestEnv, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", env.port)).expect("connect");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

#[test]
fn status_api_should_report_revisions_services_and_events() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1").replicas(2)]);
    let head = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    env.start();
    wait_for("readyz", CONVERGE, || env.api_get("/readyz").filter(|(c, _)| *c == 200));
    assert_eq!(env.api_get("/healthz").map(|(c, _)| c), Some(200));
    let s = wait_synced(&env);
    assert_eq!(s.stack.as_deref(), Some(env.stack.as_str()));
    assert_eq!(s.applied.as_ref().map(|a| a.revision.as_str()), Some(head.as_str()));
    assert_eq!(s.source.tip.as_ref().map(|t| t.subject.as_str()), Some("initial manifests"));
    let web = s.services.iter().find(|x| x.name == "web").expect("web in status");
    assert_eq!((web.desired_replicas, web.ready_replicas, web.updated_replicas), (2, 2, 2));
    assert_eq!(web.containers.len(), 2);
    assert!(web.containers.iter().all(|c| c.ready && c.current && c.revision == head));
    assert!(web.conditions.iter().any(|c| c.kind == ConditionType::Ready && c.holds()));
    let (code, body) = env.api_get("/api/v1/events").unwrap();
    assert_eq!(code, 200);
    let events: Vec<meme_api::status::Event> = serde_json::from_str(&body).unwrap();
    assert!(events.iter().any(|e| e.reason == "Created" && e.service.as_deref() == Some("web")), "{body}");
    // The JSON round-trips through the shared types unchanged.
    let again: serde_json::Value = serde_json::from_str(&serde_json::to_string(&status(&env)).unwrap()).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&env.api_get("/api/v1/status").unwrap().1).unwrap();
    assert_eq!(again["applied"], raw["applied"]);

    // A failed rollout shows as Degraded with the reason.
    env.write_files(&[(
        "svc0.yaml",
        &Service::new("web", "meme-demo:v2")
            .replicas(2)
            .env("FAIL_HEALTH", "1")
            .spec("  progressDeadline: 3s\n")
            .yaml(),
    )]);
    env.commit("web: broken v2");
    let s = wait_for("Degraded", CONVERGE, || Some(status(&env)).filter(|s| s.sync_status == SyncStatus::Degraded));
    let web = s.services.iter().find(|x| x.name == "web").unwrap();
    assert!(
        web.conditions.iter().any(|c| c.kind == ConditionType::Degraded
            && c.holds()
            && ["ProgressDeadlineExceeded", "RolloutBackoff"].contains(&c.reason.as_str())),
        "{:?}",
        web.conditions
    );
    assert_eq!((web.ready_replicas, web.updated_replicas), (2, 0), "the old replicas still serve");
}

#[test]
fn mutations_should_need_the_token_and_suspension_should_survive_a_restart() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1")]);
    env.start();
    wait_synced(&env);
    let token = std::fs::read_to_string(env.token_file()).unwrap().trim().to_owned();
    for path in ["/api/v1/suspend", "/api/v1/resume", "/api/v1/reconcile"] {
        assert_eq!(post(&env, path, None).0, 401, "{path} without a token");
        assert_eq!(post(&env, path, Some("wrong")).0, 401, "{path} with a wrong token");
    }
    assert!(!status(&env).suspended, "refused mutations change nothing");
    assert_eq!(env.api_get("/api/v1/nope").map(|(c, _)| c), Some(404));

    let (code, body) = post(&env, "/api/v1/suspend", Some(&token));
    assert_eq!(code, 200, "{body}");
    assert_eq!(status(&env).sync_status, SyncStatus::Suspended);
    // While suspended, drift is not corrected.
    let web = env.containers(Some("web"));
    meme_e2e::docker(&["rm", "-f", &web[0].id]);
    // A suspended controller skips its drift checks, so time is counted in source resyncs
    // (same --resync period).
    env.wait_checks("source", 2);
    assert!(env.containers(Some("web")).is_empty(), "suspended: nothing recreated");
    // Restart: still suspended.
    env.kill();
    env.start();
    wait_for("status after restart", CONVERGE, || env.status());
    env.wait_checks("source", 2);
    assert!(status(&env).suspended);
    assert!(env.containers(Some("web")).is_empty());
    assert_eq!(post(&env, "/api/v1/resume", Some(&token)).0, 200);
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    wait_synced(&env);
    assert_eq!(post(&env, "/api/v1/reconcile", Some(&token)).0, 200);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.to_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    (code, content_type, body.to_owned())
}

#[test]
fn metrics_should_pass_promtool_and_be_scraped_by_prometheus() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1"), Service::new("db", "meme-demo:v1")]);
    env.start();
    wait_synced(&env);
    let addr = format!("127.0.0.1:{}", env.port);
    let (code, content_type, text) = get(&addr, "/metrics", None);
    assert_eq!(code, 200);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    for name in [
        "meme_reconcile_total{",
        "meme_reconcile_errors_total{service=\"web\",kind=\"pull\"} 0",
        "meme_reconcile_duration_seconds_bucket{",
        "meme_reconcile_actions_total{service=\"web\",action=\"create\"}",
        "meme_service_ready{service=\"web\"} 1",
        "meme_service_replicas{service=\"web\",state=\"desired\"} 1",
        "meme_applied_revision_info{revision=",
        "meme_source_revision_info{revision=",
        "meme_sync_status{status=\"Synced\"} 1",
        "meme_workqueue_depth ",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, content_type, open) = get(&addr, "/metrics", Some("application/openmetrics-text; version=1.0.0"));
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(open.ends_with("# EOF\n"));

    // A real Prometheus scrapes it.
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: meme-controller\n    static_configs: [{{targets: ['{addr}']}}]\n"),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package prometheus)");
    let guard = KillOnDrop(&mut prometheus);
    let prom = format!("127.0.0.1:{prom_port}");
    wait_for("prometheus to see the target up", Duration::from_secs(60), || {
        let (_, _, body) = std::panic::catch_unwind(|| get(&prom, "/api/v1/targets", None)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["activeTargets"].as_array()?.iter().any(|t| t["health"] == "up").then_some(())
    });
    let value = wait_for("meme_reconcile_total in prometheus", Duration::from_secs(30), || {
        let (_, _, body) = get(&prom, "/api/v1/query?query=sum(meme_reconcile_total)", None);
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let value: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (value > 0.0).then_some(value)
    });
    assert!(value > 0.0);
    drop(guard);
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
