//! The stack of the traffic benchmarks, as a user runs it: real Caddy (`meme-demo-caddy:test`,
//! Debian's caddy) on a loopback host port in front of a two-replica backend (the test server),
//! the Caddyfile a plain `reverse_proxy backend:8080`. Once as a controller stack (manifests in
//! a git repository, changes by commit; the same specs as e2e/tests/traffic.rs) and once as a
//! `docker-compose` project (compose file v2.4, `scale: 2`, changes by editing the file and
//! `docker-compose up -d`). Both carry the run label and are named `mb-<run>-...`; dropping one
//! removes everything of it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cleanup;
use crate::client::Client;
use crate::engine::{self, Obs};
use crate::stack::{Ctx, Health, PORT, RUN_LABEL, Stack, wait};
use crate::util::{Error, Result, bail};

/// The proxy image (`hack/build-images.sh caddy`).
pub const CADDY_IMAGE: &str = "meme-demo-caddy:test";
/// Requests per second through Caddy (the rate issue 8 measured at).
pub const RATE: u32 = 50;
/// Replicas of the backend.
pub const REPLICAS: usize = 2;
/// How long a stack may take to come up, or a change to be rolled out.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// Longest load of one side: bounded even if a wait hangs.
pub const LOAD_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The Caddyfile: a plain service name; `config` adds a `/config` route answering `config N`
/// (the marker that a change reached Caddy).
#[must_use]
pub fn caddyfile(config: Option<usize>) -> String {
    match config {
        None => ":80 {\n\treverse_proxy backend:8080\n}\n".to_owned(),
        Some(n) => {
            format!(":80 {{\n\thandle /config {{\n\t\trespond \"config {n}\"\n\t}}\n\treverse_proxy backend:8080\n}}\n")
        }
    }
}

/// The plain Caddyfile, or with Caddy's keep-alive to the upstreams off (a new connection per
/// proxied request, so that each follows the alias as it is at that moment); `retries` adds
/// Caddy's own retry of a failed dial (see [`RETRY_LINES`]).
#[must_use]
pub fn proxy_caddyfile(keepalive: bool, retries: bool) -> String {
    if keepalive && !retries {
        return caddyfile(None);
    }
    let dial = if retries { "\t\t\tdial_timeout 300ms\n" } else { "" };
    let keepalive = if keepalive { "" } else { "\t\t\tkeepalive off\n" };
    let tries = if retries { RETRY_LINES } else { "" };
    format!(
        ":80 {{\n\treverse_proxy backend:8080 {{\n{tries}\t\ttransport http {{\n{keepalive}{dial}\t\t}}\n\t}}\n}}\n"
    )
}

/// Caddy (2.6) retries a request whose dial failed -- any method, nothing was sent -- on a fresh
/// lookup of the name, every `lb_try_interval` until `lb_try_duration`; with `dial_timeout
/// 300ms` a SYN sent to a container that is off its network (1 s SYN retransmit) fails fast
/// instead of waiting 1-3 s.
pub const RETRY_LINES: &str = "\t\tlb_try_duration 5s\n\t\tlb_try_interval 50ms\n";

/// `STARTUP_DELAY` of the test server: it binds its port only after that.
fn delay_env(delay: Duration) -> Option<String> {
    (!delay.is_zero()).then(|| format!("{}ms", delay.as_millis()))
}

fn stack_yaml(name: &str) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata: {{name: {name}}}\nspec:\n  networks: [{{name: internal}}]\n"
    )
}

/// The backend Deployment: the test server at `version`, two replicas, ready on `/health`.
#[must_use]
pub fn backend_yaml(run: &str, version: &str, delay: Duration) -> String {
    let env =
        delay_env(delay).map(|d| format!("  env: [{{name: STARTUP_DELAY, value: \"{d}\"}}]\n")).unwrap_or_default();
    format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {{name: backend}}
spec:
  image: meme-demo:{version}
  imagePullPolicy: Never
  replicas: {REPLICAS}
  init: true
  networks: [internal]
  labels: {{{RUN_LABEL}: \"{run}\"}}
{env}  ports: [{{containerPort: {PORT}}}]
  healthCheck: {{httpGet: {{path: /health, port: {PORT}}}, interval: 1s, timeout: 1s, retries: 2}}
  progressDeadline: 60s
  stopGracePeriod: 5s
"
    )
}

/// The Caddy Deployment: host port `port` on loopback, the Caddyfile from git, `Recreate` (it
/// holds the host port), and `reload: {exec: caddy reload}` when `reload`, as manifests/staging.
#[must_use]
pub fn caddy_yaml(run: &str, port: u16, reload: bool) -> String {
    let reload = if reload {
        "  reload: {exec: [caddy, reload, --config, /etc/caddy/Caddyfile, --adapter, caddyfile]}\n"
    } else {
        ""
    };
    format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {{name: caddy}}
spec:
  image: {CADDY_IMAGE}
  imagePullPolicy: Never
  networks: [internal]
  labels: {{{RUN_LABEL}: \"{run}\"}}
  ports: [{{containerPort: 80, hostPort: {port}, hostIP: 127.0.0.1}}]
  files: [{{path: /etc/caddy/Caddyfile, source: files/Caddyfile}}]
{reload}  healthCheck: {{tcpSocket: {{port: 80}}, interval: 1s, timeout: 1s}}
  strategy: {{type: Recreate}}
  stopGracePeriod: 5s
  dependsOn: [backend]
"
    )
}

/// A free TCP port on loopback (bound and released: the stack binds it next).
///
/// # Errors
/// No port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether Caddy on `addr` answers `path` with 200 and, when given, exactly `body`.
fn serves(addr: SocketAddr, path: &str, body: Option<&str>) -> bool {
    engine::http_get(&addr.ip().to_string(), addr.port(), path, Duration::from_secs(1))
        .is_some_and(|(status, b)| status == 200 && body.is_none_or(|want| b.trim() == want))
}

/// Waits until Caddy on `addr` answers `path` (with `body`).
///
/// # Errors
/// Timeout or interrupt.
pub fn wait_serving(ctx: &Ctx, addr: SocketAddr, path: &str, body: Option<&str>, timeout: Duration) -> Result<()> {
    wait(&format!("Caddy on {addr} answering {path} with 200"), timeout, ctx.poll, None, || {
        Ok(serves(addr, path, body).then_some(()))
    })
}

/// Whether `list` holds exactly [`REPLICAS`] running backends of `image`, each having answered
/// `/health` on its own address.
fn backends_ready(list: &[Obs], image: &str, health: &mut Health) -> bool {
    list.len() == REPLICAS && list.iter().all(|c| c.running() && c.image == image) && health.check(list) == REPLICAS
}

/// The controller's side: a bench [`Stack`] of Caddy and the backend.
pub struct ControllerEdge {
    /// The stack (repository and controller).
    pub stack: Stack,
    /// Caddy on loopback.
    pub addr: SocketAddr,
    api: SocketAddr,
    run: String,
    delay: Duration,
}

impl ControllerEdge {
    /// Commits the stack (backend `meme-demo:v1`, Caddy with `caddyfile`), starts the controller
    /// and waits until it is synced and Caddy serves the backend.
    ///
    /// # Errors
    /// git, the controller or the engine failed; a deadline passed.
    pub fn start(ctx: &Ctx, suffix: &str, delay: Duration, reload: bool, caddyfile: &str) -> Result<Self> {
        let port = free_port()?;
        let name = ctx.name(suffix);
        let files = [
            ("stack.yaml", stack_yaml(&name)),
            ("backend.yaml", backend_yaml(&ctx.run, "v1", delay)),
            ("caddy.yaml", caddy_yaml(&ctx.run, port, reload)),
            ("files/Caddyfile", caddyfile.to_owned()),
        ];
        let mut stack = Stack::with_files(ctx, suffix, &files)?;
        stack.start(ctx, &[], &[])?;
        let api = stack.controller().api_addr(Duration::from_secs(30))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().map_err(|e| Error(format!("{e}")))?;
        let edge = Self { stack, addr, api, run: ctx.run.clone(), delay };
        let head = edge.stack.head()?;
        edge.wait_synced(ctx, &head, DEADLINE)?;
        wait_serving(ctx, addr, "/", None, DEADLINE).map_err(|e| edge.stack.controller().error(&e.0))?;
        Ok(edge)
    }

    /// Changes the backend's image to `meme-demo:<version>` in a commit; returns the commit.
    ///
    /// # Errors
    /// git failed.
    pub fn commit_backend(&self, version: &str) -> Result<String> {
        self.commit("backend.yaml", &backend_yaml(&self.run, version, self.delay), &format!("backend {version}"))
    }

    /// Writes `content` to `manifests/<path>` and commits it; returns the commit.
    ///
    /// # Errors
    /// git failed.
    pub fn commit(&self, path: &str, content: &str, message: &str) -> Result<String> {
        self.stack.write_file(path, content)?;
        self.stack.commit(message)?;
        self.stack.head()
    }

    /// Waits until the controller reports `revision` applied and every service `Synced`.
    ///
    /// # Errors
    /// Timeout, the controller exited, or interrupt.
    pub fn wait_synced(&self, ctx: &Ctx, revision: &str, timeout: Duration) -> Result<()> {
        let mut client = Client::new(self.api, Duration::from_secs(5));
        wait(
            &format!("{} synced at {}", self.stack.name, &revision[..12]),
            timeout,
            ctx.poll,
            Some(self.stack.controller()),
            || {
                let Ok(reply) = client.get("/api/v1/status", true) else { return Ok(None) };
                let status: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
                Ok((status["applied"]["revision"].as_str() == Some(revision) && status["syncStatus"] == "Synced")
                    .then_some(()))
            },
        )
    }

    /// Waits until `revision` is synced and the backend is exactly two ready containers of
    /// `meme-demo:<version>` (the old ones gone).
    ///
    /// # Errors
    /// Timeout, the controller exited, or interrupt.
    pub fn wait_swapped(&self, ctx: &Ctx, revision: &str, version: &str) -> Result<()> {
        self.wait_synced(ctx, revision, DEADLINE)?;
        let image = format!("meme-demo:{version}");
        let mut health = Health::default();
        wait(
            &format!("{REPLICAS} backends of {image} ready, the old ones gone"),
            DEADLINE,
            ctx.poll,
            Some(self.stack.controller()),
            || Ok(backends_ready(&self.stack.containers(Some("backend"))?, &image, &mut health).then_some(())),
        )
    }

    /// The host pid of Caddy's process (to read its network namespace's TCP counters).
    ///
    /// # Errors
    /// The engine failed.
    pub fn caddy_pid(&self) -> Result<Option<u32>> {
        match self.stack.containers(Some("caddy"))?.first() {
            Some(c) => engine::inspect_pid(&c.id),
            None => Ok(None),
        }
    }

    /// The Caddy containers' ids.
    ///
    /// # Errors
    /// The engine failed.
    pub fn caddy_ids(&self) -> Result<Vec<String>> {
        Ok(self.stack.containers(Some("caddy"))?.into_iter().map(|c| c.id).collect())
    }
}

/// The baseline: the same stack as a `docker-compose` project (`docker-compose` v1, as Debian
/// ships it). What a compose user does to deploy: edit the image in the file, `up -d`.
pub struct ComposeEdge {
    /// The project name (`mb-<run>-<suffix>`): containers `<project>_backend_1`, network
    /// `<project>_default`.
    pub project: String,
    /// Caddy on loopback.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    run: String,
    port: u16,
    delay: Duration,
}

impl ComposeEdge {
    /// Writes the project (backend `meme-demo:v1`, Caddy with `caddyfile`), `docker-compose up
    /// -d`, waits until Caddy serves the backend.
    ///
    /// # Errors
    /// docker-compose or the engine failed; a deadline passed.
    pub fn start(ctx: &Ctx, suffix: &str, delay: Duration, caddyfile: &str) -> Result<Self> {
        let project = ctx.name(suffix);
        let dir = tempfile::Builder::new().prefix(&format!("{project}.")).tempdir()?;
        cleanup::register_dir(dir.path().to_owned());
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().map_err(|e| Error(format!("{e}")))?;
        let edge = Self { project, addr, dir, run: ctx.run.clone(), port, delay };
        std::fs::write(edge.dir.path().join("Caddyfile"), caddyfile)?;
        edge.write("v1")?;
        edge.up()?;
        wait_serving(ctx, addr, "/", None, DEADLINE)?;
        Ok(edge)
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("docker-compose.yml")
    }

    /// The compose file with the backend at `meme-demo:<version>`: the same containers as the
    /// controller's (init, stop grace period, labels, env, loopback host port). No healthcheck:
    /// `up -d` waits for none and Docker's DNS does not look at it, so it would change nothing.
    fn write(&self, version: &str) -> Result<()> {
        let env =
            delay_env(self.delay).map(|d| format!("    environment: [\"STARTUP_DELAY={d}\"]\n")).unwrap_or_default();
        let text = format!(
            "version: \"2.4\"
services:
  backend:
    image: meme-demo:{version}
    scale: {REPLICAS}
    init: true
    stop_grace_period: 5s
    labels: {{{RUN_LABEL}: \"{run}\"}}
{env}  caddy:
    image: {CADDY_IMAGE}
    ports: [\"127.0.0.1:{port}:80\"]
    volumes: [\"./Caddyfile:/etc/caddy/Caddyfile:ro\"]
    stop_grace_period: 5s
    labels: {{{RUN_LABEL}: \"{run}\"}}
    depends_on: [backend]
",
            run = self.run,
            port = self.port,
        );
        std::fs::write(self.file(), text)?;
        Ok(())
    }

    fn compose(&self, args: &[&str]) -> Result<String> {
        if cleanup::interrupted() {
            bail!("interrupted");
        }
        let file = self.file();
        let out = Command::new("docker-compose")
            .arg("--project-name")
            .arg(&self.project)
            .arg("--file")
            .arg(&file)
            .args(args)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error(format!("cannot run docker-compose: {e}")))?;
        if !out.status.success() {
            bail!("docker-compose {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `docker-compose up -d`.
    ///
    /// # Errors
    /// It failed.
    pub fn up(&self) -> Result<()> {
        self.compose(&["up", "-d"]).map(drop)
    }

    /// Edits the backend's image to `meme-demo:<version>` and runs `up -d`.
    ///
    /// # Errors
    /// The file cannot be written, or `up -d` failed.
    pub fn deploy(&self, version: &str) -> Result<()> {
        self.write(version)?;
        self.up()
    }

    /// The host pid of Caddy's process.
    ///
    /// # Errors
    /// The engine failed.
    pub fn caddy_pid(&self) -> Result<Option<u32>> {
        let labels = [("com.docker.compose.project", self.project.as_str()), ("com.docker.compose.service", "caddy")];
        match engine::list(&labels)?.first() {
            Some(c) => engine::inspect_pid(&c.id),
            None => Ok(None),
        }
    }

    /// Waits until the backend is exactly two ready containers of `meme-demo:<version>`.
    ///
    /// # Errors
    /// Timeout or interrupt.
    pub fn wait_swapped(&self, ctx: &Ctx, version: &str) -> Result<()> {
        let image = format!("meme-demo:{version}");
        let mut health = Health::default();
        let labels = [("com.docker.compose.project", self.project.as_str()), ("com.docker.compose.service", "backend")];
        wait(&format!("{REPLICAS} compose backends of {image} ready"), DEADLINE, ctx.poll, None, || {
            Ok(backends_ready(&engine::list(&labels)?, &image, &mut health).then_some(()))
        })
    }
}

impl Drop for ComposeEdge {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "--timeout", "1"]);
        cleanup::sweep_settled(&self.project);
        cleanup::unregister_dir(self.dir.path());
    }
}

/// When a change started and ended, from the start of the load.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    /// Just before the commit (or the edit).
    pub from: Duration,
    /// When the wait for its end returned.
    pub to: Duration,
}

impl Span {
    /// How long the change took.
    #[must_use]
    pub fn took(&self) -> Duration {
        self.to.saturating_sub(self.from)
    }
}

/// Runs `change` and returns its span on the load's clock.
///
/// # Errors
/// `change` failed.
pub fn timed(started: Instant, change: impl FnOnce() -> Result<()>) -> Result<Span> {
    let from = started.elapsed();
    change()?;
    Ok(Span { from, to: started.elapsed() })
}

/// Whether `docker-compose` runs (`docker-compose version`).
#[must_use]
pub fn compose_version() -> Option<String> {
    let out = Command::new("docker-compose").arg("version").arg("--short").stdin(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_should_match_the_e2e_stack() {
        let backend = backend_yaml("abcd", "v2", Duration::from_secs(4));
        for needle in [
            "image: meme-demo:v2",
            "replicas: 2",
            "STARTUP_DELAY, value: \"4000ms\"",
            "httpGet: {path: /health, port: 8080}",
            "bench.memeit.run: \"abcd\"",
        ] {
            assert!(backend.contains(needle), "{needle} missing from\n{backend}");
        }
        assert!(!backend_yaml("abcd", "v1", Duration::ZERO).contains("STARTUP_DELAY"));
        let caddy = caddy_yaml("abcd", 8123, true);
        assert!(caddy.contains("hostPort: 8123, hostIP: 127.0.0.1"), "{caddy}");
        assert!(caddy.contains("reload: {exec: [caddy, reload"), "{caddy}");
        assert!(!caddy_yaml("abcd", 8123, false).contains("reload"));
        assert!(caddyfile(Some(3)).contains("respond \"config 3\""));
        assert!(caddyfile(None).contains("reverse_proxy backend:8080"));
        assert_eq!(proxy_caddyfile(true, false), caddyfile(None));
        assert!(proxy_caddyfile(false, false).contains("keepalive off"));
        assert!(!proxy_caddyfile(false, false).contains("lb_try_duration"));
        let both = proxy_caddyfile(false, true);
        assert!(both.contains("keepalive off") && both.contains("dial_timeout 300ms"), "{both}");
        assert!(both.contains("lb_try_duration 5s") && both.contains("lb_try_interval 50ms"), "{both}");
        assert!(!proxy_caddyfile(true, true).contains("keepalive off"));
    }
}
