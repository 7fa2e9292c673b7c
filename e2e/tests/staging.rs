//! The staging stack as shipped (manifests/staging), wired to the controller on the host: it
//! validates, its Prometheus config (with the controller's scrape job and alerts) passes
//! promtool, its Caddyfile (with the webhook route) passes `caddy validate`, both point at the
//! same controller address, and the alerts it ships are manifests/monitoring/alerts.yml. Then the
//! webhook route for real: a Caddy container forwards a signed push to a controller listening on
//! docker0's address, which fetches and rolls the service.

use std::path::PathBuf;
use std::process::Command;

use meme_e2e::{binary, workspace};

fn staging(rel: &str) -> PathBuf {
    workspace().join("manifests/staging").join(rel)
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Where the controller listens for the stack (the docker0 address), as the scrape job names it.
const CONTROLLER: &str = "172.17.0.1:9797";

#[test]
fn staging_should_validate_and_ship_the_controllers_alerts() {
    let (ok, said) = output(Command::new(binary("memectl")).arg("validate").arg(staging("")));
    assert!(ok && !said.contains("warning"), "memectl validate manifests/staging: {said}");
    assert_eq!(
        read(&staging("files/prometheus/alerts.yml")),
        read(&workspace().join("manifests/monitoring/alerts.yml")),
        "manifests/staging/files/prometheus/alerts.yml must be a copy of manifests/monitoring/alerts.yml"
    );
    let prometheus = read(&staging("prometheus.yaml"));
    assert!(prometheus.contains("{path: /etc/prometheus/alerts.yml, source: files/prometheus/alerts.yml}"));
}

#[test]
fn staging_prometheus_should_scrape_the_controller_and_load_its_alerts() {
    // promtool resolves rule_files from the config's folder, as Prometheus does in the container
    // (/etc/prometheus/prometheus.yml beside /etc/prometheus/alerts.yml).
    let (ok, said) = output(
        Command::new("promtool").args(["check", "config", "prometheus.yml"]).current_dir(staging("files/prometheus")),
    );
    assert!(ok, "promtool check config: {said}");
    assert!(said.contains("SUCCESS: 1 rule files found") && said.contains("SUCCESS: 8 rules found"), "{said}");
    let config = read(&staging("files/prometheus/prometheus.yml"));
    assert!(config.contains("job_name: meme-controller"), "the job the alerts match on");
    assert!(config.contains(&format!("targets: [\"{CONTROLLER}\"]")), "{config}");
}

#[test]
fn staging_caddy_should_proxy_the_webhook_to_the_controller() {
    let caddyfile = read(&staging("files/caddy/Caddyfile"));
    let route = caddyfile.split("handle /hooks/git {").nth(1).expect("a /hooks/git route");
    let route = &route[..route.find("\n\t}").expect("end of the route")];
    assert!(route.contains("rewrite * /api/v1/hooks/git"), "{route}");
    assert!(route.contains(&format!("reverse_proxy {CONTROLLER}")), "{route}");
    // The controller's API refuses a Host it does not serve: the upstream address is sent.
    assert!(route.contains("header_up Host {upstream_hostport}"), "{route}");
    let home = tempfile::tempdir().expect("temp dir");
    let (ok, said) = output(
        Command::new("caddy")
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(staging("files/caddy/Caddyfile"))
            .env("STAGING_DOMAIN", "staging.memeit.pro")
            .env("ACME_EMAIL", "admin@memeit.pro")
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path()),
    );
    assert!(ok && said.contains("Valid configuration"), "caddy validate: {said}");
}

/// Kills the controller this test started itself, even on failure.
struct Controller(std::process::Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HMAC-SHA256 by openssl (the reference, independent of the controller's code), as hex.
fn hmac_hex(key: &str, body: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-mac", "HMAC", "-macopt", &format!("key:{key}"), "-hex", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("openssl");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_owned()
}

/// POST through Caddy: the status code.
fn post(addr: &str, path: &str, headers: &[(&str, String)], body: &str) -> u16 {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to Caddy");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: staging.example\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The staging Caddyfile's webhook route, for real: Caddy (a container on the stack's network)
/// forwards a signed push webhook from `/hooks/git` to the controller listening on docker0's
/// address, which fetches at once (its poll is 10 minutes away) and rolls the service.
#[test]
fn staging_webhook_route_should_reach_the_controller_on_docker0_through_caddy() {
    use meme_e2e::manifests::{STACK, Service};
    use meme_e2e::{TestEnv, http_get, wait_for};
    use std::time::Duration;

    let free =
        |ip: &str| std::net::TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).expect("a free port").port();
    let (gateway, caddy_port) = ("172.17.0.1", free("127.0.0.1"));
    let controller = format!("{gateway}:{}", free(gateway));
    // The route exactly as shipped, in a plain-HTTP site, pointed at this test's controller.
    let shipped = read(&staging("files/caddy/Caddyfile"));
    let route = &shipped[shipped.find("\thandle /hooks/git {").expect("the route")..];
    let route = &route[..route.find("\n\t}\n").expect("end of the route") + 4];
    let caddyfile = format!(":80 {{\n{}}}\n", route.replace(CONTROLLER, &controller));
    let caddy = format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {{name: caddy}}\nspec:\n  image: meme-demo-caddy:test\n  \
         imagePullPolicy: Never\n  networks: [internal]\n  ports: [{{containerPort: 80, hostPort: {caddy_port}, hostIP: 127.0.0.1}}]\n  \
         files: [{{path: /etc/caddy/Caddyfile, source: files/Caddyfile}}]\n  healthCheck: {{tcpSocket: {{port: 80}}, interval: 1s, timeout: 1s}}\n  \
         strategy: {{type: Recreate}}\n  stopGracePeriod: 2s\n"
    );
    let env = TestEnv::new(&[
        ("stack.yaml", STACK),
        ("web.yaml", &Service::new("web", "meme-demo:v1").yaml()),
        ("caddy.yaml", &caddy),
        ("files/Caddyfile", &caddyfile),
    ]);
    let origin = env.make_origin();
    let secret = env.path("webhook-secret");
    std::fs::write(&secret, "hook-secret\n").expect("secret");
    let _controller = Controller(
        Command::new(binary("meme-controller"))
            .arg("--repo")
            .arg(env.repo())
            .args(["--path", "manifests", "--listen", &controller, "--remote", "origin", "--poll", "10m"])
            .args(["--resync", "2s"])
            .arg("--webhook-secret-file")
            .arg(&secret)
            .arg("--secrets-dir")
            .arg(env.secrets_dir())
            .arg("--state-dir")
            .arg(env.state_dir())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start meme-controller"),
    );
    env.wait_running("web", 1, "meme-demo:v1", Duration::from_secs(60));
    env.wait_running("caddy", 1, "meme-demo-caddy:test", Duration::from_secs(60));
    let caddy_addr = format!("127.0.0.1:{caddy_port}");
    wait_for("Caddy to listen", Duration::from_secs(30), || http_get(&caddy_addr, "/").map(|_| ()));

    let ci = env.clone_of(&origin, "ci");
    std::fs::write(
        ci.join("manifests/web.yaml"),
        Service::new("web", "meme-demo:v2").yaml().replace("{stack}", &env.stack).replace("{id}", &env.id),
    )
    .expect("edit web");
    env.git_in(&ci, &["commit", "-qam", "web: v2"]);
    env.git_in(&ci, &["push", "-q", "origin", "main"]);
    let body = r#"{"ref":"refs/heads/main"}"#;
    // A forged signature is refused by the controller behind Caddy; nothing is fetched.
    assert_eq!(post(&caddy_addr, "/hooks/git", &[("X-Hub-Signature-256", "sha256=00".into())], body), 401);
    let signed = format!("sha256={}", hmac_hex("hook-secret", body));
    assert_eq!(post(&caddy_addr, "/hooks/git", &[("X-Hub-Signature-256", signed)], body), 202);
    env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(30));
}
