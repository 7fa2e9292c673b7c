//! The e2e harness: a throwaway git repository with a stack's manifests, the real
//! `meme-controller` binary running on it, and helpers to read the real Docker engine. Every
//! object a test makes is named after its unique stack (`e2e-<id>`) and removed when the
//! [`TestEnv`] is dropped, even when the test failed. No engine: the test fails, never skips.

pub mod load;
pub mod manifests;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace root.
#[must_use]
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace root")
}

/// A built binary of the workspace (`hack/e2e.sh` builds them first).
#[must_use]
pub fn binary(name: &str) -> PathBuf {
    let var = format!("MEME_{}_BIN", name.to_uppercase().replace('-', "_"));
    std::env::var_os(var).map_or_else(|| workspace().join("target/debug").join(name), PathBuf::from)
}

/// Runs a command and returns stdout; panics with stderr on failure.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker ARGS`, stdout.
pub fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

/// `docker ARGS`, success or not.
#[must_use]
pub fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Fails the test unless the engine answers; builds the test images once.
pub fn require_engine() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ok = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "the Docker engine is not reachable: e2e tests need it (they never skip)");
        if !docker_ok(&["image", "inspect", "meme-demo:v3"]) || !docker_ok(&["image", "inspect", "meme-demo-hc:v1"]) {
            run(&mut Command::new(workspace().join("hack/build-images.sh")));
        }
    });
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A container as `docker ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// Full id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// Status text.
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Image reference.
    pub image: String,
}

impl Container {
    /// A label.
    #[must_use]
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }

    /// The container's IP address on its first network. A container being put in (or out of)
    /// rotation is off its network for ~100-500 ms: this waits up to 5 s for the address.
    #[must_use]
    pub fn ip(&self) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new("docker")
                .args(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", &self.id])
                .output()
                .ok()?;
            let ip = String::from_utf8_lossy(&out.stdout).split_whitespace().next().map(str::to_owned);
            if ip.is_some() || Instant::now() >= deadline || !out.status.success() {
                return ip;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Containers carrying every label `k=v` of `filters`.
#[must_use]
pub fn containers(filters: &[(&str, &str)]) -> Vec<Container> {
    let mut args =
        vec!["ps".to_owned(), "-a".to_owned(), "--no-trunc".to_owned(), "--format".to_owned(), "{{json .}}".to_owned()];
    for (k, v) in filters {
        args.push("--filter".into());
        args.push(format!("label={k}={v}"));
    }
    let out = run(Command::new("docker").args(&args));
    let mut list: Vec<Container> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("docker ps json");
            let labels = v["Labels"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Container {
                id: v["ID"].as_str().unwrap_or_default().to_owned(),
                name: v["Names"].as_str().unwrap_or_default().to_owned(),
                state: v["State"].as_str().unwrap_or_default().to_owned(),
                status: v["Status"].as_str().unwrap_or_default().to_owned(),
                labels,
                image: v["Image"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// One HTTP/1.1 GET with a short timeout: (status, body).
#[must_use]
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let sock: std::net::SocketAddr = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Some((status, body))
}

/// A test's world: a stack named `e2e-<id>`, its git repository, its secrets folder and the
/// controller process.
pub struct TestEnv {
    /// Unique id.
    pub id: String,
    /// The stack name (and prefix of every Docker object of the test).
    pub stack: String,
    dir: tempfile::TempDir,
    controller: Option<Child>,
    /// Everything the controller printed.
    pub log: Arc<Mutex<String>>,
    extra_args: Vec<String>,
    /// The port of the controller's HTTP listener.
    pub port: u16,
    extra_env: Vec<(String, String)>,
    wrapper: Vec<String>,
}

impl TestEnv {
    /// A fresh git repository with `manifests/` holding `files` (path → content). `{stack}` in
    /// a content is replaced by the stack name.
    #[must_use]
    pub fn new(files: &[(&str, &str)]) -> Self {
        require_engine();
        let id = format!("{:08x}", rand_seed());
        let stack = format!("e2e-{id}");
        let dir = tempfile::Builder::new().prefix("meme-e2e-").tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let env = Self {
            id,
            stack,
            dir,
            controller: None,
            log: Arc::default(),
            extra_args: Vec::new(),
            port,
            extra_env: Vec::new(),
            wrapper: Vec::new(),
        };
        env.git(&["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(env.secrets_dir()).expect("secrets dir");
        env.write_files(files);
        env.commit("initial manifests");
        env
    }

    /// The repository.
    #[must_use]
    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// The controller's API base URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The file holding the API token (the controller is started with it).
    #[must_use]
    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// The controller's state folder.
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// GET on the controller's API: (status, body).
    #[must_use]
    pub fn api_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(&format!("127.0.0.1:{}", self.port), path)
    }

    /// The controller's status JSON.
    #[must_use]
    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, body) = self.api_get("/api/v1/status")?;
        (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    /// POST on the controller's API with its bearer token: (status, body).
    #[must_use]
    pub fn api_post(&self, path: &str) -> Option<(u16, String)> {
        let token = std::fs::read_to_string(self.token_file()).ok()?;
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            token.trim()
        )
        .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned()))
    }

    /// Waits until the status shows `n` ready replicas of `service` (the controller's own
    /// judgement, not just a running container).
    pub fn wait_ready(&self, service: &str, n: u64, timeout: Duration) {
        wait_for(&format!("{service}: {n} ready\n{}", self.logs_tail()), timeout, || {
            let status = self.status()?;
            let services = status["services"].as_array()?;
            let s = services.iter().find(|s| s["name"] == service)?;
            (s["readyReplicas"].as_u64() == Some(n)).then_some(())
        });
    }

    /// The controller's events, oldest first.
    #[must_use]
    pub fn events(&self) -> Vec<meme_api::status::Event> {
        self.api_get("/api/v1/events")
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, body)| serde_json::from_str(&body).ok())
            .unwrap_or_default()
    }

    /// The first event with `reason` (any when empty) whose message contains `text`, if any.
    #[must_use]
    pub fn event(&self, reason: &str, text: &str) -> Option<meme_api::status::Event> {
        self.events().into_iter().find(|e| (reason.is_empty() || e.reason == reason) && e.message.contains(text))
    }

    /// Waits for an event with `reason` whose message contains `text`.
    pub fn wait_event(&self, reason: &str, text: &str, timeout: Duration) -> meme_api::status::Event {
        wait_for(&format!("a {reason} event with {text:?}\n{:#?}", self.events()), timeout, || self.event(reason, text))
    }

    /// The value of one series of `/metrics`, written as the exposition writes it
    /// (`meme_checks_total{check="drift"}`).
    #[must_use]
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (code, body) = self.api_get("/metrics")?;
        if code != 200 {
            return None;
        }
        body.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// How many checks of kind `check` (`source`: the ref re-resolved; `drift`: every service
    /// planned) have completed, from `meme_checks_total`.
    #[must_use]
    pub fn checks(&self, check: &str) -> u64 {
        let series = format!("meme_checks_total{{check=\"{check}\"}}");
        let value = wait_for(&format!("{series} to be served"), Duration::from_secs(20), || self.metric(&series));
        // A counter's sample is a whole number written as a float.
        value as u64
    }

    /// Waits until `n` more checks of kind `check` have completed from now: the controller has
    /// had `n` chances to act. How a test says "nothing happens" without guessing a sleep.
    pub fn wait_checks(&self, check: &str, n: u64) {
        self.wait_checks_from(check, self.checks(check), n);
    }

    /// Waits until the count of `check` reaches `start + n` (take `start` with [`Self::checks`]
    /// before the action whose effect — or lack of one — is being waited for).
    pub fn wait_checks_from(&self, check: &str, start: u64, n: u64) {
        wait_for(&format!("{n} more {check} checks after {start}"), Duration::from_secs(60), || {
            (self.checks(check) >= start + n).then_some(())
        });
    }

    /// The secrets folder.
    #[must_use]
    pub fn secrets_dir(&self) -> PathBuf {
        self.dir.path().join("secrets")
    }

    /// Writes a secret file.
    pub fn write_secret(&self, name: &str, key: &str, value: &str) {
        let dir = self.secrets_dir().join(name);
        std::fs::create_dir_all(&dir).expect("secret dir");
        std::fs::write(dir.join(key), value).expect("secret");
    }

    /// Runs git in the repository.
    pub fn git(&self, args: &[&str]) -> String {
        std::fs::create_dir_all(self.repo()).expect("repo dir");
        run(Command::new("git")
            .current_dir(self.repo())
            .args(["-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"])
            .args(args))
    }

    /// Runs git in another directory of the test.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        run(Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"])
            .args(args))
    }

    /// A folder of the test's temporary directory.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes a bare `origin` holding the repository's branch and sets it as the checkout's
    /// `origin` remote; returns its path.
    pub fn make_origin(&self) -> PathBuf {
        let origin = self.path("origin.git");
        run(Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&origin));
        self.git(&["remote", "add", "origin", origin.to_str().expect("utf-8 path")]);
        self.git(&["push", "-q", "origin", "main"]);
        self.git(&["fetch", "-q", "origin"]);
        self.git(&["branch", "-q", "--set-upstream-to=origin/main", "main"]);
        origin
    }

    /// A second clone of `source` (a path or URL) named `name`; returns its path.
    pub fn clone_of(&self, source: &Path, name: &str) -> PathBuf {
        let dest = self.path(name);
        run(Command::new("git").args(["clone", "-q"]).arg(source).arg(&dest));
        dest
    }

    /// Writes manifest files (relative to `manifests/`), `{stack}` replaced.
    pub fn write_files(&self, files: &[(&str, &str)]) {
        for (path, content) in files {
            let full = self.repo().join("manifests").join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("dirs");
            std::fs::write(full, content.replace("{stack}", &self.stack).replace("{id}", &self.id)).expect("write");
        }
    }

    /// Removes a manifest file.
    pub fn remove_file(&self, path: &str) {
        std::fs::remove_file(self.repo().join("manifests").join(path)).expect("remove");
    }

    /// Commits everything; returns the new revision.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Extra controller flags for the next [`Self::start`].
    pub fn with_args(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|s| (*s).to_owned()).collect();
    }

    /// An environment variable for the controller process (`RUST_LOG` replaces the default).
    pub fn with_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.into(), value.into()));
    }

    /// A command the controller is started through (`prlimit --nofile=512:1024 --`); it must
    /// `exec` the controller, so that [`Self::pid`] is the controller's.
    pub fn with_wrapper(&mut self, argv: &[&str]) {
        self.wrapper = argv.iter().map(|s| (*s).to_owned()).collect();
    }

    /// The controller's process id, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// Starts the controller (resync 2 s unless overridden by [`Self::with_args`]).
    pub fn start(&mut self) {
        std::fs::write(self.token_file(), format!("token-{}\n", self.id)).expect("token file");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(binary("meme-controller"));
                cmd
            }
            None => Command::new(binary("meme-controller")),
        };
        cmd.arg("--repo").arg(self.repo()).args(["--path", "manifests"]).arg("--secrets-dir").arg(self.secrets_dir());
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)]).arg("--state-dir").arg(self.state_dir());
        cmd.arg("--token-file").arg(self.token_file());
        if !self.extra_args.iter().any(|a| a == "--resync") {
            cmd.args(["--resync", "2s"]);
        }
        // Stack leases in the test's own folder unless the test shares one between controllers.
        if !self.extra_args.iter().any(|a| a == "--lease-dir") {
            cmd.arg("--lease-dir").arg(self.dir.path().join("leases"));
        }
        cmd.env("RUST_LOG", "info,meme_controller=debug");
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        cmd.args(&self.extra_args).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start meme-controller (run hack/e2e.sh, which builds it)");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.controller = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        wait_for("the controller's HTTP listener", Duration::from_secs(20), || http_get(&addr, "/healthz").map(|_| ()));
    }

    /// Kills the controller with SIGKILL (no cleanup on its side).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.controller.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the controller to exit; returns its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.controller.take()?;
        run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The controller's process id, while it runs.
    #[must_use]
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// The controller's peak resident memory so far (`VmHWM`), in bytes.
    #[must_use]
    pub fn controller_peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.controller_pid()?)).ok()?;
        let kib: u64 =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    }

    /// Whether the controller process is still running.
    pub fn controller_alive(&mut self) -> bool {
        self.controller.as_mut().is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    /// What the controller logged so far.
    #[must_use]
    pub fn logs(&self) -> String {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Containers of this stack (optionally one service).
    #[must_use]
    pub fn containers(&self, service: Option<&str>) -> Vec<Container> {
        let mut filters = vec![("pro.memeit.stack", self.stack.as_str())];
        if let Some(s) = service {
            filters.push(("pro.memeit.service", s));
        }
        containers(&filters)
    }

    /// Waits until `service` has exactly `n` running containers whose image is `image`, none
    /// other, and (when the service has a health check) all healthy by the controller's
    /// judgement is not visible here, so only state is checked. Returns them.
    pub fn wait_running(&self, service: &str, n: usize, image: &str, timeout: Duration) -> Vec<Container> {
        wait_for(&format!("{service}: {n} running {image}\n{}", self.logs_tail()), timeout, || {
            let list = self.containers(Some(service));
            (list.len() == n && list.iter().all(|c| c.state == "running" && c.image == image)).then_some(list)
        })
    }

    /// The last lines of the controller log, for failure messages.
    #[must_use]
    pub fn logs_tail(&self) -> String {
        let log = self.logs();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn rand_seed() -> u32 {
    let mut buf = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    u32::from_le_bytes(buf)
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- controller log ({}) ---\n{}", self.stack, self.logs_tail());
            let _ = Command::new("docker")
                .args(["ps", "-a", "--filter", &format!("label=pro.memeit.stack={}", self.stack)])
                .status();
        }
        if std::env::var_os("MEME_E2E_NO_CLEANUP").is_some() {
            return;
        }
        let label = format!("label=pro.memeit.stack={}", self.stack);
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).stdout(Stdio::null()).status();
        }
        for kind in ["network", "volume"] {
            let out = Command::new("docker")
                .args([kind, "ls", "-q", "--filter", &label])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let names: Vec<&str> = out.split_whitespace().collect();
            if !names.is_empty() {
                let _ = Command::new("docker")
                    .args([kind, "rm"])
                    .args(&names)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
