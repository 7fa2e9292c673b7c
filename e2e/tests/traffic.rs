//! Traffic follows readiness, end to end: real Caddy (Debian's package packed into a local
//! image) on a loopback host port in front of a two-replica backend, an open-loop load through
//! it (one new connection per request, 50 requests/s), and changes made by git commits. Every
//! case asserts that no request failed, and says which container answered what.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meme_e2e::load::{Load, Report, Request};
use meme_e2e::{TestEnv, docker, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(90);
/// Requests per second through Caddy.
const RATE: u32 = 50;

const STACK: &str = "apiVersion: memeit.pro/v1alpha1
kind: Stack
metadata: {name: \"{stack}\"}
spec:
  networks: [{name: internal}]
";

/// A TCP line echo the backend connects to while it starts (`PEER`).
const PEER: &str = "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {name: peer}
spec:
  image: meme-demo:v1
  imagePullPolicy: Never
  networks: [internal]
  env: [{name: ECHO_PORT, value: \"9000\"}]
  healthCheck: {tcpSocket: {port: 9000}, interval: 1s, timeout: 1s}
  stopGracePeriod: 1s
";

const CADDY: &str = "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {name: caddy}
spec:
  image: meme-demo-caddy:test
  imagePullPolicy: Never
  networks: [internal]
  ports: [{containerPort: 80, hostPort: {port}, hostIP: 127.0.0.1}]
  files: [{path: /etc/caddy/Caddyfile, source: files/Caddyfile}]
  reload: {exec: [caddy, reload, --config, /etc/caddy/Caddyfile, --adapter, caddyfile]}
  healthCheck: {tcpSocket: {port: 80}, interval: 1s, timeout: 1s}
  strategy: {type: Recreate}
  stopGracePeriod: 5s
  dependsOn: [backend]
";

/// The user's proxy config: a plain service name.
const CADDYFILE: &str = ":80 {
\treverse_proxy backend:8080
}
";

/// The backend: the test server, version `version`, with extra env lines and spec lines.
fn backend(version: &str, env: &str, extra: &str) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {{name: backend}}
spec:
  image: meme-demo:{version}
  imagePullPolicy: Never
  replicas: 2
  init: true
  networks: [internal]
  env:
    - {{name: PEER, value: \"peer:9000\"}}
{env}  ports: [{{containerPort: 8080}}]
  healthCheck: {{httpGet: {{path: /health, port: 8080}}, interval: 1s, timeout: 1s, retries: 2}}
  progressDeadline: 8s
  stopGracePeriod: 5s
  dependsOn: [peer]
{extra}"
    )
}

/// A running stack: its env, and Caddy's address on loopback.
struct Stack {
    env: TestEnv,
    caddy: SocketAddr,
}

impl Stack {
    fn start(backend_yaml: &str, caddyfile: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let caddy = CADDY.replace("{port}", &port.to_string());
        let mut env = TestEnv::new(&[
            ("stack.yaml", STACK),
            ("peer.yaml", PEER),
            ("backend.yaml", backend_yaml),
            ("caddy.yaml", &caddy),
            ("files/Caddyfile", caddyfile),
        ]);
        env.start();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let stack = Self { env, caddy: addr };
        stack.wait_synced(&stack.env.git(&["rev-parse", "HEAD"]));
        wait_for("Caddy to serve the backend", CONVERGE, || {
            http_get(&addr.to_string(), "/").filter(|(code, _)| *code == 200).map(|_| ())
        });
        stack
    }

    /// Waits until `revision` is applied and every service is Synced.
    fn wait_synced(&self, revision: &str) {
        let revision = revision.trim().to_owned();
        let synced = || {
            let status = self.env.status()?;
            let applied = status["applied"]["revision"].as_str()?;
            (applied == revision && status["syncStatus"] == "Synced").then_some(())
        };
        let deadline = std::time::Instant::now() + CONVERGE;
        while synced().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "not Synced at {revision} after {CONVERGE:?}; status: {}\n{}",
                self.env.status().unwrap_or_default(),
                self.env.logs_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn commit_backend(&self, yaml: &str, message: &str) -> String {
        self.env.write_files(&[("backend.yaml", yaml)]);
        self.env.commit(message)
    }

    /// Events of the controller whose reason is `reason`.
    fn events(&self, reason: &str) -> Vec<serde_json::Value> {
        let Some((200, body)) = self.env.api_get("/api/v1/events") else { return Vec::new() };
        let events: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        events.as_array().cloned().unwrap_or_default().into_iter().filter(|e| e["reason"] == reason).collect()
    }

    fn load(&self) -> Load {
        Load::start(self.caddy, RATE, Duration::from_secs(120))
    }
}

/// The aliases of a container on the stack network.
fn aliases(stack: &Stack, id: &str) -> Vec<String> {
    let network = format!("{}_internal", stack.env.stack);
    // A container being moved is off the network for ~100 ms: then it has no aliases there.
    let format = format!(
        "{{{{range $k, $v := .NetworkSettings.Networks}}}}{{{{if eq $k \"{network}\"}}}}{{{{json $v.Aliases}}}}{{{{end}}}}{{{{end}}}}"
    );
    let out = docker(&["inspect", "--format", &format, id]);
    serde_json::from_str(out.trim()).unwrap_or_default()
}

/// A POST with an empty body; the whole answer.
fn post(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(stream, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn assert_no_failures(report: &Report) {
    assert!(report.failed().is_empty(), "failed requests: {}", report.summary());
}

#[test]
fn image_swaps_through_caddy_should_fail_no_request() {
    let stack = Stack::start(&backend("v1", "", ""), CADDYFILE);
    let load = stack.load();
    std::thread::sleep(Duration::from_secs(1));
    for version in ["v2", "v1", "v2"] {
        let revision = stack.commit_backend(&backend(version, "", ""), &format!("backend {version}"));
        stack.wait_synced(&revision);
        std::thread::sleep(Duration::from_millis(500));
    }
    let report = load.stop();
    eprintln!("image swaps: {}", report.summary());
    assert_no_failures(&report);
    let versions = report.by_version();
    assert!(versions.get("v1").is_some_and(|n| *n > 0) && versions.get("v2").is_some_and(|n| *n > 0), "{versions:?}");
    assert!(stack.events("AddressChanged").is_empty(), "addresses are kept: {:?}", stack.events("AddressChanged"));
}

#[test]
fn a_build_whose_health_fails_should_get_no_traffic() {
    let stack = Stack::start(&backend("v1", "", ""), CADDYFILE);
    let load = stack.load();
    // `/` answers 200 but `/health` 503: it must never be in rotation.
    let committed = Instant::now();
    stack.commit_backend(&backend("v2", "    - {name: FAIL_HEALTH, value: \"1\"}\n", ""), "backend v2, broken health");
    wait_for("the rollout to fail", CONVERGE, || (!stack.events("RolloutFailed").is_empty()).then_some(()));
    let rollout = committed.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    eprintln!("health-failing build: {} (rollout {rollout:?})", report.summary());
    assert_no_failures(&report);
    assert_eq!(report.by_version().get("v2"), None, "the unready build answered: {}", report.summary());
    // The load ran from before the commit until after the failure: at least the rollout's length
    // of requests (the deadline counts from the container's creation, which the engine's list
    // reports in whole seconds, so the rollout itself lasts 7-8 s of the 8 s deadline).
    let covered = f64::from(RATE) * rollout.as_secs_f64();
    assert!(
        report.samples.len() as f64 >= covered * 0.95,
        "the load covered the rollout ({rollout:?}): {}",
        report.summary()
    );
    let status = stack.env.status().expect("status");
    let backend = status["services"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "backend")).cloned();
    assert_eq!(backend.as_ref().map(|b| b["phase"].clone()), Some("Degraded".into()), "{status}");
}

#[test]
fn a_build_answering_500_everywhere_should_fail_no_request() {
    let stack = Stack::start(&backend("v1", "", ""), CADDYFILE);
    let load = stack.load();
    stack.commit_backend(&backend("v2", "    - {name: FAIL_ALL, value: \"1\"}\n", ""), "backend v2, broken");
    wait_for("the rollout to fail", CONVERGE, || (!stack.events("RolloutFailed").is_empty()).then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    let report = load.stop();
    eprintln!("500 build: {}", report.summary());
    assert_no_failures(&report);
    assert_eq!(report.by_version().get("v2"), None);
}

/// Caddy dialing a new connection per upstream request, so that each request follows the alias
/// as it is at that moment (with keep-alive, requests may also arrive over connections Caddy
/// already holds to a leaving container: see the README). A SYN sent to a container while the
/// move out of rotation has it off its network waits for the 1 s SYN retransmit; the dial
/// timeout + retry let Caddy dial again on a fresh lookup instead (`meme-bench traffic
/// --no-upstream-keepalive`: 5 failed requests in 10 swaps without them, 0 of 2,323 in 8 with).
const CADDYFILE_NO_KEEPALIVE: &str = concat!(
    ":80 {\n\treverse_proxy backend:8080 {\n",
    "\t\tlb_try_duration 5s\n\t\tlb_try_interval 50ms\n",
    "\t\ttransport http {\n\t\t\tkeepalive off\n\t\t\tdial_timeout 300ms\n\t\t}\n",
    "\t}\n}\n",
);

/// Swaps v1 -> v2 under a load of which every 5th request is a 2.5 s POST; the report.
fn swap_with_slow_requests(drain: &str) -> Report {
    let stack = Stack::start(&backend("v1", "", drain), CADDYFILE_NO_KEEPALIVE);
    // POSTs: a proxy never retries a POST cut in flight.
    let mix = vec![
        Request { method: "POST", path: "/slow?ms=2500".into(), every: 5 },
        Request { method: "GET", path: "/".into(), every: 1 },
    ];
    let load = Load::start_mix(stack.caddy, RATE, Duration::from_secs(120), mix);
    std::thread::sleep(Duration::from_secs(3));
    let revision = stack.commit_backend(&backend("v2", "", drain), "backend v2");
    stack.wait_synced(&revision);
    std::thread::sleep(Duration::from_secs(3));
    load.stop()
}

#[test]
fn slow_requests_in_flight_should_finish_across_a_swap_with_drain() {
    // `init: true`: SIGTERM ends the test server at once, as for any app that does not finish
    // its requests on SIGTERM. First without drainPeriod: the test must see requests cut.
    let control = swap_with_slow_requests("");
    eprintln!("slow requests without drain: {}", control.summary());
    assert!(!control.failed().is_empty(), "without drainPeriod slow requests are cut: {}", control.summary());
    // drainPeriod (4s) longer than the slow requests (2.5s): none is cut.
    let report = swap_with_slow_requests("  drainPeriod: 4s\n");
    eprintln!("slow requests with drain: {}", report.summary());
    assert_no_failures(&report);
    let slow_v1 = report.samples.iter().filter(|s| s.path.starts_with("/slow") && s.version() == Some("v1")).count();
    assert!(slow_v1 > 5, "slow requests were served by the old version during the swap: {}", report.summary());
}

#[test]
fn a_caddyfile_change_with_reload_should_fail_no_request_and_keep_the_container() {
    let stack = Stack::start(&backend("v1", "", ""), CADDYFILE);
    let before = stack.env.containers(Some("caddy"));
    assert_eq!(before.len(), 1);
    assert_eq!(http_get(&stack.caddy.to_string(), "/config").map(|(c, _)| c), Some(404), "the backend answers /config");
    let load = stack.load();
    std::thread::sleep(Duration::from_secs(1));
    let caddyfile = ":80 {\n\thandle /config {\n\t\trespond \"config 2\"\n\t}\n\treverse_proxy backend:8080\n}\n";
    stack.env.write_files(&[("files/Caddyfile", caddyfile)]);
    let revision = stack.env.commit("Caddyfile: /config");
    stack.wait_synced(&revision);
    std::thread::sleep(Duration::from_secs(1));
    let report = load.stop();
    eprintln!("Caddyfile reload: {}", report.summary());
    assert_no_failures(&report);
    let after = stack.env.containers(Some("caddy"));
    assert_eq!(after.iter().map(|c| &c.id).collect::<Vec<_>>(), before.iter().map(|c| &c.id).collect::<Vec<_>>());
    assert_eq!(http_get(&stack.caddy.to_string(), "/config"), Some((200, "config 2".to_owned())));
    assert!(!stack.events("Reloaded").is_empty(), "a Reloaded event");
    // A Caddyfile Caddy refuses: the reload fails and the service falls back to a replace
    // (which fails too, leaving the running Caddy with its last good config in memory).
    stack.env.write_files(&[("files/Caddyfile", ":80 {\n\tnot_a_directive\n}\n")]);
    stack.env.commit("Caddyfile: broken");
    wait_for("the reload to fail", CONVERGE, || (!stack.events("ReloadFailed").is_empty()).then_some(()));
    let failed = stack.events("ReloadFailed");
    assert!(failed[0]["message"].as_str().unwrap_or_default().contains("falling back"), "{failed:?}");
}

#[test]
fn a_connection_opened_while_starting_should_survive_admission() {
    let stack = Stack::start(&backend("v1", "", ""), CADDYFILE);
    let backends = stack.env.containers(Some("backend"));
    assert_eq!(backends.len(), 2);
    for c in &backends {
        assert!(aliases(&stack, &c.id).contains(&"backend".to_owned()), "in rotation: {:?}", aliases(&stack, &c.id));
        // The backend connected to `peer` before it was ready, i.e. before it got its alias;
        // the move that gave it the alias kept its address, so the connection still works.
        let (code, body) = http_get(&format!("{}:8080", c.ip().expect("ip")), "/peer").expect("answer");
        assert_eq!((code, body.as_str()), (200, "peer connection ok (v1)\n"), "{}", c.name);
    }
    assert!(stack.events("AddressChanged").is_empty());
}

#[test]
fn a_container_that_turns_unready_should_leave_rotation_and_come_back() {
    let stack = Stack::start(&backend("v1", "", ""), CADDYFILE_NO_KEEPALIVE);
    let backends = stack.env.containers(Some("backend"));
    let sick = &backends[0];
    let sick_host = &sick.id[..12];
    let addr = format!("{}:8080", sick.ip().expect("ip"));
    assert_eq!(http_get(&addr, "/fail").map(|(c, _)| c), Some(405));
    // POST /fail: its /health fails from now on (`/` still answers).
    assert!(post(&addr, "/fail").contains("health now failing"));
    wait_for("the unready container to leave the alias", CONVERGE, || {
        (!aliases(&stack, &sick.id).contains(&"backend".to_owned())).then_some(())
    });
    assert_eq!(stack.env.containers(Some("backend")).len(), 2, "it keeps running");
    let load = stack.load();
    std::thread::sleep(Duration::from_secs(3));
    let report = load.stop();
    assert_no_failures(&report);
    let from_sick = report.samples.iter().filter(|s| s.body.contains(sick_host)).count();
    assert_eq!(from_sick, 0, "requests reached the unready container: {}", report.summary());
    // Recovered: back in rotation, and answering again.
    assert!(post(&addr, "/recover").contains("recovered"));
    wait_for("the recovered container to rejoin the alias", CONVERGE, || {
        aliases(&stack, &sick.id).contains(&"backend".to_owned()).then_some(())
    });
    let load = stack.load();
    std::thread::sleep(Duration::from_secs(3));
    let report = load.stop();
    assert_no_failures(&report);
    assert!(report.samples.iter().any(|s| s.body.contains(sick_host)), "back in rotation: {}", report.summary());
}

#[test]
fn a_files_change_with_a_reload_signal_should_update_the_running_container() {
    let web = |content: &str| {
        (
            "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {name: web}
spec:
  image: meme-demo:v1
  imagePullPolicy: Never
  networks: [internal]
  ports: [{containerPort: 8080}]
  healthCheck: {httpGet: {path: /health, port: 8080}, interval: 1s, timeout: 1s}
  files: [{path: /etc/web/app.conf, source: files/app.conf}]
  reload: {signal: SIGHUP}
"
            .to_owned(),
            content.to_owned(),
        )
    };
    let (yaml, conf) = web("level=info\n");
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &yaml), ("files/app.conf", &conf)]);
    env.start();
    let before = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    // Admitted: the move that gives it its alias is over (it has an address again).
    env.wait_event("InRotation", "", CONVERGE);
    let ip = wait_for("its address", CONVERGE, || before[0].ip());
    let addr = format!("{ip}:8080");
    assert_eq!(http_get(&addr, "/file?path=/etc/web/app.conf").map(|(_, b)| b), Some("level=info\n".to_owned()));
    env.write_files(&[("files/app.conf", "level=debug\n")]);
    env.commit("app.conf: debug");
    // The test server, PID 1 without a handler, ignores SIGHUP: the reload is the file copy.
    env.wait_event("Reloaded", "reload", CONVERGE);
    wait_for("the new file in the running container", CONVERGE, || {
        (http_get(&addr, "/file?path=/etc/web/app.conf").map(|(_, b)| b) == Some("level=debug\n".to_owned()))
            .then_some(())
    });
    let after = env.containers(Some("web"));
    assert_eq!(after.iter().map(|c| &c.id).collect::<Vec<_>>(), [&before[0].id], "the same container");
}

#[test]
fn a_host_port_held_by_another_program_should_be_reported_as_a_port_conflict() {
    // Something else (this test) holds the port on loopback.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let web = format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {{name: web}}
spec:
  image: meme-demo:v1
  imagePullPolicy: Never
  networks: [internal]
  ports: [{{containerPort: 8080, hostPort: {port}, hostIP: 127.0.0.1}}]
  strategy: {{type: Recreate}}
"
    );
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web)]);
    env.start();
    let event = env.wait_event("PortConflict", &format!("127.0.0.1:{port}"), CONVERGE);
    assert!(event.message.contains("already in use"), "{event:?}");
    assert!(!event.message.contains("docker engine unavailable"), "the engine is fine: {event:?}");
    let status = env.status().expect("status");
    let web = status["services"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "web")).cloned().expect("web");
    let stalled = web["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Stalled")).cloned();
    assert_eq!(stalled.map(|c| c["status"].clone()), Some("True".into()), "it needs a human: {web}");
    // Freed: the next attempt starts it.
    drop(holder);
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
}
