//! A controller stack of the bench: a throwaway git repository with a Stack and one Deployment
//! per service, the real `meme-controller` running on it (its output kept for failure messages),
//! and the waits that read the real engine. Dropping a [`Stack`] kills the controller and
//! removes every container and network of the stack.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::cleanup;
use crate::engine::{self, Obs};
use crate::util::{Error, Result, bail, strip_ansi};

/// The label every container of the run carries (controller stacks via the Deployment's
/// `labels`, baseline containers via `docker run --label`).
pub const RUN_LABEL: &str = "bench.memeit.run";
/// The stack label the controller puts on its objects.
pub const STACK_LABEL: &str = "pro.memeit.stack";
/// The service label the controller puts on its containers.
pub const SERVICE_LABEL: &str = "pro.memeit.service";
/// The label of the baseline group a bench container belongs to.
pub const GROUP_LABEL: &str = "bench.memeit.group";
/// The test server's port.
pub const PORT: u16 = 8080;

/// How the bench reaches the run's settings.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The run id.
    pub run: String,
    /// The controller binary.
    pub controller: PathBuf,
    /// Smaller N, fewer samples.
    pub quick: bool,
    /// How often waits look at the engine.
    pub poll: Duration,
    /// `RUST_LOG` for the controller (unset: its default, `info`).
    pub rust_log: Option<String>,
    /// Where controllers' output is also written, if anywhere.
    pub logs: Option<PathBuf>,
}

impl Ctx {
    /// `mb-<run>-<suffix>`: the name of a stack or of a baseline group.
    #[must_use]
    pub fn name(&self, suffix: &str) -> String {
        format!("mb-{}-{suffix}", self.run)
    }
}

/// The `meme-controller` process: its own process group (a Ctrl-C in the terminal reaches the
/// bench, which kills it before removing the containers), output kept in a ring.
#[derive(Debug)]
pub struct Controller {
    pid: u32,
    log: Arc<Mutex<VecDeque<String>>>,
    counts: Arc<Mutex<(usize, usize)>>,
    problems: Arc<Mutex<Vec<String>>>,
    kept: Arc<Mutex<Vec<String>>>,
}

/// Lines of controller output kept for failure messages.
const LOG_LINES: usize = 400;
/// Warning and error lines kept for the report.
const PROBLEM_LINES: usize = 200;
/// Lines kept for the whole run, whatever follows them: those carrying one of these (the API's
/// address, revisions applied and reconcile steps, with their timestamps).
const KEPT: [&str; 2] = ["serving the API", " applying "];
/// At most this many kept lines.
const KEPT_LINES: usize = 100_000;

impl Controller {
    /// Starts `bin` with `args` and extra environment.
    ///
    /// # Errors
    /// The binary cannot be started.
    pub fn spawn(
        bin: &Path,
        args: &[String],
        env: &[(String, String)],
        rust_log: Option<&str>,
        copy_to: Option<&Path>,
    ) -> Result<Self> {
        use std::os::unix::process::CommandExt as _;
        if cleanup::interrupted() {
            bail!("interrupted");
        }
        let mut cmd = Command::new(bin);
        cmd.args(args).env("NO_COLOR", "1").env_remove("RUST_LOG");
        if let Some(level) = rust_log {
            cmd.env("RUST_LOG", level);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().map_err(|e| Error(format!("cannot start {}: {e}", bin.display())))?;
        let log: Arc<Mutex<VecDeque<String>>> = Arc::default();
        let counts: Arc<Mutex<(usize, usize)>> = Arc::default();
        let problems: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept: Arc<Mutex<Vec<String>>> = Arc::default();
        let copy = match copy_to {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
                Some(Arc::new(Mutex::new(file)))
            }
            None => None,
        };
        let outputs: Vec<Box<dyn std::io::Read + Send>> = [
            child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .collect();
        for output in outputs {
            let (log, counts, problems) = (Arc::clone(&log), Arc::clone(&counts), Arc::clone(&problems));
            let kept = Arc::clone(&kept);
            let copy = copy.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(std::result::Result::ok) {
                    let line = strip_ansi(&line);
                    if let Some(file) = &copy {
                        use std::io::Write as _;
                        let _ = writeln!(file.lock().unwrap_or_else(PoisonError::into_inner), "{line}");
                    }
                    let warn = line.contains(" WARN ") || line.contains("\"level\":\"WARN\"");
                    let error = line.contains(" ERROR ") || line.contains("\"level\":\"ERROR\"");
                    if warn || error {
                        let mut c = counts.lock().unwrap_or_else(PoisonError::into_inner);
                        if warn {
                            c.0 += 1;
                        } else {
                            c.1 += 1;
                        }
                        let mut p = problems.lock().unwrap_or_else(PoisonError::into_inner);
                        if p.len() < PROBLEM_LINES {
                            p.push(line.clone());
                        }
                    }
                    if KEPT.iter().any(|k| line.contains(k)) {
                        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                        if kept.len() < KEPT_LINES {
                            kept.push(line.clone());
                        }
                    }
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    if log.len() == LOG_LINES {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        let pid = cleanup::register_child(child);
        Ok(Self { pid, log, counts, problems, kept })
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it still runs.
    #[must_use]
    pub fn alive(&self) -> bool {
        cleanup::child_running(self.pid)
    }

    /// The last `n` lines it printed.
    #[must_use]
    pub fn tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = log.len().saturating_sub(n);
        log.iter().skip(skip).cloned().collect::<Vec<_>>().join("\n")
    }

    /// The lines kept for the whole run (see [`KEPT`]), in the order printed.
    #[must_use]
    pub fn kept(&self) -> Vec<String> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The address of its HTTP API, from its `serving the API listen=ADDR` line (it was started
    /// with `--listen 127.0.0.1:0`); waits up to `timeout` for the line.
    ///
    /// # Errors
    /// No such line in time (a controller without `--listen`), or it exited.
    pub fn api_addr(&self, timeout: Duration) -> Result<SocketAddr> {
        wait(
            "meme-controller's `serving the API listen=...` line",
            timeout,
            Duration::from_millis(10),
            Some(self),
            || {
                Ok(self.kept().iter().filter(|l| l.contains("serving the API")).find_map(|l| {
                    l.split_whitespace().find_map(|w| w.strip_prefix("listen=")).and_then(|a| a.parse().ok())
                }))
            },
        )
    }

    /// (warnings, errors) logged so far.
    #[must_use]
    pub fn problems(&self) -> (usize, usize) {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Prints the first warnings and errors it logged (the same message once), if any.
    pub fn print_problems(&self, what: &str) {
        let lines = self.problems.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if lines.is_empty() {
            return;
        }
        // Drop the timestamp so that repeats of one message group together.
        let mut seen: Vec<(String, usize)> = Vec::new();
        for line in &lines {
            let text = line.split_once(' ').filter(|(ts, _)| ts.contains('T')).map_or(line.as_str(), |(_, rest)| rest);
            let text = text.trim().to_owned();
            match seen.iter_mut().find(|(t, _)| *t == text) {
                Some((_, n)) => *n += 1,
                None => seen.push((text, 1)),
            }
        }
        let (warnings, errors) = self.problems();
        println!("{what}: meme-controller logged {warnings} warnings, {errors} errors; the first distinct ones:");
        for (text, n) in seen.iter().take(8) {
            println!("  {n}x {text}");
        }
        println!();
    }

    /// An error carrying `message` and the tail of the controller's output.
    #[must_use]
    pub fn error(&self, message: &str) -> Error {
        let status = cleanup::child_status(self.pid).map(|s| format!(" (controller exited: {s})")).unwrap_or_default();
        Error(format!("{message}{status}\n--- last lines of meme-controller's output ---\n{}", self.tail(40)))
    }

    /// Kills it (SIGKILL: nothing of the controller's shutdown is measured).
    pub fn kill(&self) {
        cleanup::kill_child(self.pid);
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A service of a bench stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Name (a DNS label).
    pub name: String,
    /// Image.
    pub image: String,
}

/// `svc001`, `svc002`, ... on `image`.
#[must_use]
pub fn services(n: usize, image: &str) -> Vec<Service> {
    (1..=n).map(|i| Service { name: format!("svc{i:03}"), image: image.to_owned() }).collect()
}

/// The Stack manifest.
#[must_use]
pub fn stack_yaml(stack: &str) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata:\n  name: {stack}\nspec:\n  networks: [{{name: net}}]\n  \
         env: [{{name: ENV, value: bench}}]\n"
    )
}

/// A Deployment as the bench runs them: `imagePullPolicy: Never`, `init: true`,
/// `stopGracePeriod: 1s`, an httpGet /health check every second.
#[must_use]
pub fn deployment_yaml(service: &Service, run: &str) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata:
  name: {name}
spec:
  image: {image}
  imagePullPolicy: Never
  init: true
  stopGracePeriod: 1s
  networks: [net]
  labels: {{{RUN_LABEL}: \"{run}\"}}
  ports: [{{containerPort: {PORT}}}]
  healthCheck:
    httpGet: {{path: /health, port: {PORT}}}
    interval: 1s
    timeout: 1s
  env:
    - {{name: SERVICE, value: {name}}}
",
        name = service.name,
        image = service.image,
    )
}

/// A bench stack: repository, secrets folder, controller.
#[derive(Debug)]
pub struct Stack {
    /// The stack name (`mb-<run>-<suffix>`), prefix of every object of it.
    pub name: String,
    /// Its services.
    pub services: Vec<Service>,
    run: String,
    dir: tempfile::TempDir,
    controller: Option<Controller>,
}

impl Stack {
    /// A fresh repository holding the stack, committed.
    ///
    /// # Errors
    /// git or the file system failed.
    pub fn new(ctx: &Ctx, suffix: &str, services: Vec<Service>) -> Result<Self> {
        let name = ctx.name(suffix);
        let dir = tempfile::Builder::new().prefix(&format!("{name}.")).tempdir()?;
        cleanup::register_dir(dir.path().to_owned());
        let stack = Self { name, services, run: ctx.run.clone(), dir, controller: None };
        std::fs::create_dir_all(stack.repo().join("manifests"))?;
        std::fs::create_dir_all(stack.secrets())?;
        stack.git(&["init", "-q", "-b", "main"])?;
        std::fs::write(stack.repo().join("manifests/stack.yaml"), stack_yaml(&stack.name))?;
        for service in &stack.services {
            stack.write(service)?;
        }
        stack.git(&["add", "-A"])?;
        stack.git(&["commit", "-q", "-m", "bench stack"])?;
        Ok(stack)
    }

    /// A fresh repository holding `files` (paths under `manifests/`, e.g. a Stack, Deployments
    /// and the files they copy), committed; it has no bench [`Service`]s.
    ///
    /// # Errors
    /// git or the file system failed.
    pub fn with_files(ctx: &Ctx, suffix: &str, files: &[(&str, String)]) -> Result<Self> {
        let name = ctx.name(suffix);
        let dir = tempfile::Builder::new().prefix(&format!("{name}.")).tempdir()?;
        cleanup::register_dir(dir.path().to_owned());
        let stack = Self { name, services: Vec::new(), run: ctx.run.clone(), dir, controller: None };
        std::fs::create_dir_all(stack.repo().join("manifests"))?;
        std::fs::create_dir_all(stack.secrets())?;
        stack.git(&["init", "-q", "-b", "main"])?;
        for (path, content) in files {
            stack.write_file(path, content)?;
        }
        stack.git(&["add", "-A"])?;
        stack.git(&["commit", "-q", "-m", "bench stack"])?;
        Ok(stack)
    }

    /// Writes `content` to `manifests/<path>` in the work tree (not committed; new files need a
    /// `git add`).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_file(&self, path: &str, content: &str) -> Result<()> {
        let full = self.repo().join("manifests").join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(full, content)?;
        Ok(())
    }

    /// The repository.
    #[must_use]
    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// A scratch folder of the stack (sockets, ...).
    #[must_use]
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets")
    }

    fn write(&self, service: &Service) -> Result<()> {
        let path = self.repo().join("manifests").join(format!("{}.yaml", service.name));
        std::fs::write(path, deployment_yaml(service, &self.run))?;
        Ok(())
    }

    /// Runs git in the repository.
    ///
    /// # Errors
    /// git failed.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("git")
            .current_dir(self.repo())
            .args(["-c", "user.name=meme-bench", "-c", "user.email=bench@example.invalid", "-c", "gc.auto=0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            bail!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Changes a service's image in the work tree (not committed).
    ///
    /// # Errors
    /// No such service, or the file cannot be written.
    pub fn set_image(&mut self, service: &str, image: &str) -> Result<()> {
        let Some(s) = self.services.iter_mut().find(|s| s.name == service) else {
            bail!("no service {service} in stack {}", self.name);
        };
        s.image = image.to_owned();
        let s = s.clone();
        self.write(&s)
    }

    /// The commit `HEAD` points at.
    ///
    /// # Errors
    /// git failed.
    pub fn head(&self) -> Result<String> {
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// Commits the tracked changes (`git commit -qam`).
    ///
    /// # Errors
    /// git failed.
    pub fn commit(&self, message: &str) -> Result<()> {
        self.git(&["commit", "-q", "-a", "-m", message]).map(drop)
    }

    /// Starts the controller on the repository with `extra` flags and environment.
    ///
    /// # Errors
    /// It cannot be started.
    pub fn start(&mut self, ctx: &Ctx, extra: &[String], env: &[(String, String)]) -> Result<&Controller> {
        let mut args: Vec<String> = vec![
            "--repo".into(),
            self.repo().display().to_string(),
            "--path".into(),
            "manifests".into(),
            "--secrets-dir".into(),
            self.secrets().display().to_string(),
        ];
        // Flags of newer controllers, passed when this binary knows them: an ephemeral port (several
        // controllers, ours and others', run side by side) and a state folder of the stack's own.
        let flags = controller_flags(&ctx.controller);
        if flags.contains("--listen") {
            args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        if flags.contains("--state-dir") {
            args.extend(["--state-dir".to_owned(), self.dir.path().join("state").display().to_string()]);
        }
        args.extend(extra.iter().cloned());
        let copy = ctx.logs.as_ref().map(|dir| dir.join(format!("{}.log", self.name)));
        let controller = Controller::spawn(&ctx.controller, &args, env, ctx.rust_log.as_deref(), copy.as_deref())
            .map_err(|e| {
                Error(format!("{e} (build it with `cargo build --release -p meme-controller`, or pass --controller)"))
            })?;
        Ok(self.controller.insert(controller))
    }

    /// The controller (started).
    ///
    /// # Panics
    /// When [`Self::start`] was not called.
    #[must_use]
    pub fn controller(&self) -> &Controller {
        self.controller.as_ref().expect("controller started")
    }

    /// Containers of the stack (optionally of one service).
    ///
    /// # Errors
    /// The engine failed.
    pub fn containers(&self, service: Option<&str>) -> Result<Vec<Obs>> {
        let mut labels = vec![(STACK_LABEL, self.name.as_str())];
        if let Some(s) = service {
            labels.push((SERVICE_LABEL, s));
        }
        engine::list(&labels)
    }

    /// Waits until every service has exactly one container, running its image and answering
    /// /health; returns the time it took from `since`.
    ///
    /// # Errors
    /// The deadline passed, the controller exited, or the run was interrupted.
    pub fn wait_converged(&self, ctx: &Ctx, since: Instant, timeout: Duration) -> Result<Converged> {
        let mut health = Health::default();
        let mut all_running = None;
        let what = format!("all {} services of {} running and answering /health", self.services.len(), self.name);
        wait(&what, timeout, ctx.poll, self.controller.as_ref(), || {
            let list = self.containers(None)?;
            let running = self.converged_running(&list);
            if running && all_running.is_none() {
                all_running = Some(since.elapsed());
            }
            let healthy = health.check(&list);
            Ok((running && healthy == self.services.len())
                .then(|| Converged { running: all_running.unwrap_or_default(), healthy: since.elapsed() }))
        })
    }

    fn converged_running(&self, list: &[Obs]) -> bool {
        list.len() == self.services.len()
            && self.services.iter().all(|s| {
                let mine: Vec<&Obs> = list.iter().filter(|c| c.label(SERVICE_LABEL) == s.name).collect();
                mine.len() == 1 && mine[0].running() && mine[0].image == s.image
            })
    }

    /// Kills the controller and removes the stack's objects now.
    pub fn teardown(&mut self) {
        if let Some(c) = self.controller.take() {
            c.kill();
        }
        cleanup::sweep_settled(&self.name);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.teardown();
        cleanup::unregister_dir(self.dir.path());
    }
}

/// Whether the controller binary knows `flag` (from its `--help`).
#[must_use]
pub fn controller_has_flag(ctx: &Ctx, flag: &str) -> bool {
    controller_flags(&ctx.controller).contains(flag)
}

/// The controller's `--help` text (cached): which flags it knows.
fn controller_flags(bin: &Path) -> String {
    static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HELP.get_or_init(|| {
        Command::new(bin)
            .arg("--help")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    })
    .clone()
}

/// When a stack converged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Converged {
    /// Every container running (first seen so).
    pub running: Duration,
    /// Every container running and answering /health.
    pub healthy: Duration,
}

/// Remembers which containers answered /health 200 once.
#[derive(Debug, Default)]
pub struct Health {
    ok: HashSet<String>,
}

/// A probe's timeout: containers are on a local bridge, an answer takes well under this.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

impl Health {
    /// Probes the running containers of `list` not known healthy yet (in parallel); returns how
    /// many running containers of `list` have answered.
    pub fn check(&mut self, list: &[Obs]) -> usize {
        let todo: Vec<(&str, &str)> = list
            .iter()
            .filter(|c| c.running() && !self.ok.contains(&c.id))
            .filter_map(|c| Some((c.id.as_str(), c.ip.as_deref()?)))
            .collect();
        let answered: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .iter()
                .map(|&(id, ip)| {
                    s.spawn(move || {
                        engine::http_get(ip, PORT, "/health", PROBE_TIMEOUT)
                            .is_some_and(|(status, _)| status == 200)
                            .then(|| id.to_owned())
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok().flatten()).collect()
        });
        self.ok.extend(answered);
        list.iter().filter(|c| c.running() && self.ok.contains(&c.id)).count()
    }

    /// Whether this container answered.
    #[must_use]
    pub fn answered(&self, id: &str) -> bool {
        self.ok.contains(id)
    }
}

/// Polls `check` every `poll` until it returns `Some`; fails after `timeout` (with the
/// controller's output when there is one), when the controller exits, or on Ctrl-C.
///
/// # Errors
/// See above; errors of `check` are returned as they are.
pub fn wait<T>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    controller: Option<&Controller>,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if cleanup::interrupted() {
            bail!("interrupted while waiting for {what}");
        }
        if let Some(v) = check()? {
            return Ok(v);
        }
        if let Some(c) = controller
            && !c.alive()
        {
            return Err(c.error(&format!("meme-controller exited while waiting for {what}")));
        }
        if Instant::now() >= deadline {
            let message = format!("timed out after {:.0} s waiting for {what}", timeout.as_secs_f64());
            return Err(controller.map_or_else(|| Error(message.clone()), |c| c.error(&message)));
        }
        std::thread::sleep(poll);
    }
}

/// `docker run -d` arguments of a baseline container equivalent to what the controller
/// creates for a bench Deployment.
#[must_use]
pub fn docker_run_args(run: &str, group: &str, name: &str, network: &str, alias: &str, image: &str) -> Vec<String> {
    [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "--network-alias",
        alias,
        "--label",
        &format!("{RUN_LABEL}={run}"),
        "--label",
        &format!("{GROUP_LABEL}={group}"),
        "--init",
        "--stop-timeout",
        "1",
        "--restart",
        "unless-stopped",
        "--expose",
        &PORT.to_string(),
        "-e",
        "ENV=bench",
        "-e",
        &format!("SERVICE={alias}"),
        image,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The `POST /containers/create` body of the same container as [`docker_run_args`], for
/// baselines that talk to the engine's API as the controller does (no CLI process per call).
#[must_use]
pub fn create_config(run: &str, group: &str, network: &str, alias: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "Image": image,
        "Env": ["ENV=bench", format!("SERVICE={alias}")],
        "Labels": {RUN_LABEL: run, GROUP_LABEL: group},
        "ExposedPorts": {format!("{PORT}/tcp"): {}},
        "StopTimeout": 1,
        "HostConfig": {"Init": true, "NetworkMode": network, "RestartPolicy": {"Name": "unless-stopped"}},
        "NetworkingConfig": {"EndpointsConfig": {network: {"Aliases": [alias]}}},
    })
}

/// Waits until the container `id` answers /health 200; returns when it did.
///
/// # Errors
/// Timeout or interrupt.
pub fn wait_health(ctx: &Ctx, id: &str, timeout: Duration) -> Result<Instant> {
    let mut ip = None;
    wait(&format!("container {} answering /health", &id[..id.len().min(12)]), timeout, ctx.poll, None, || {
        if ip.is_none() {
            ip = engine::inspect_ip(id)?;
        }
        Ok(ip
            .as_deref()
            .and_then(|ip| engine::http_get(ip, PORT, "/health", PROBE_TIMEOUT))
            .is_some_and(|(s, _)| s == 200)
            .then(Instant::now))
    })
}

/// Sleeps `d`, in short steps so that Ctrl-C is seen.
///
/// # Errors
/// Interrupted.
pub fn pause(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        if cleanup::interrupted() {
            bail!("interrupted");
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_should_carry_the_bench_settings() {
        let yaml = deployment_yaml(&Service { name: "svc001".into(), image: "meme-demo:v1".into() }, "abcd");
        for needle in [
            "imagePullPolicy: Never",
            "init: true",
            "stopGracePeriod: 1s",
            "httpGet: {path: /health, port: 8080}",
            "interval: 1s",
            "timeout: 1s",
            "labels: {bench.memeit.run: \"abcd\"}",
        ] {
            assert!(yaml.contains(needle), "{needle} missing from\n{yaml}");
        }
        assert!(stack_yaml("mb-x-c1").contains("name: mb-x-c1"));
        assert_eq!(services(2, "i")[1].name, "svc002");
    }

    #[test]
    fn waits_should_time_out_with_the_reason() {
        let err =
            wait::<()>("nothing", Duration::from_millis(30), Duration::from_millis(5), None, || Ok(None)).unwrap_err();
        assert!(err.0.contains("waiting for nothing"), "{err}");
        let mut n = 0;
        let v = wait("three looks", Duration::from_secs(5), Duration::from_millis(1), None, || {
            n += 1;
            Ok((n == 3).then_some(n))
        })
        .unwrap();
        assert_eq!(v, 3);
    }
}
