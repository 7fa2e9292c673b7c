//! Everything a run creates is named `mb-<run id>...`: containers, networks (and their labels
//! carry the run id). This module keeps the child processes (controllers, `docker events`) and
//! temp dirs of the run, and removes all of it on a normal exit (drop guards), on a panic
//! (the same guards, while unwinding) and on Ctrl-C / SIGTERM / SIGHUP (a signal thread).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Set once a signal arrived: every wait loop stops, nothing new is started.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The run's prefix (`mb-<id>`), set once at start.
static PREFIX: OnceLock<String> = OnceLock::new();

#[derive(Default)]
struct Registry {
    children: HashMap<u32, Child>,
    dirs: Vec<PathBuf>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a signal asked the run to stop.
#[must_use]
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The run's object name prefix.
#[must_use]
pub fn prefix() -> &'static str {
    PREFIX.get().map_or("mb-unset", String::as_str)
}

/// Sets the run prefix and installs the signal thread.
pub fn init(prefix: String) {
    let _ = PREFIX.set(prefix);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(signal_thread)
        .map_err(|e| eprintln!("meme-bench: cannot watch for signals ({e}); Ctrl-C will not clean up"))
        .ok();
}

fn signal_thread() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("meme-bench: cannot start the signal runtime; Ctrl-C will not clean up");
        return;
    };
    rt.block_on(async {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            eprintln!("meme-bench: cannot install signal handlers; Ctrl-C will not clean up");
            return;
        };
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
            _ = hup.recv() => 129,
        };
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\nmeme-bench: interrupted; removing everything of run {} (Ctrl-C again to quit at once)", prefix());
        let cleanup = tokio::task::spawn_blocking(move || {
            emergency_cleanup();
            code
        });
        tokio::select! {
            code = cleanup => std::process::exit(code.unwrap_or(130)),
            _ = int.recv() => {
                eprintln!("meme-bench: cleanup skipped; remove leftovers with: docker rm -f $(docker ps -aq --filter name={})", prefix());
                std::process::exit(130);
            }
        }
    });
}

/// Blocks while the signal thread cleans up (it exits the process); gives up after a minute.
pub fn wait_for_signal_cleanup() {
    std::thread::sleep(Duration::from_secs(60));
}

/// Keeps a child process of the run (killed on cleanup).
pub fn register_child(child: Child) -> u32 {
    let pid = child.id();
    registry().children.insert(pid, child);
    pid
}

/// Whether a registered child still runs (reaps it when it exited).
#[must_use]
pub fn child_running(pid: u32) -> bool {
    let mut reg = registry();
    match reg.children.get_mut(&pid) {
        Some(child) => matches!(child.try_wait(), Ok(None)),
        None => false,
    }
}

/// The exit status of a registered child that exited, as text.
#[must_use]
pub fn child_status(pid: u32) -> Option<String> {
    let mut reg = registry();
    let child = reg.children.get_mut(&pid)?;
    child.try_wait().ok().flatten().map(|s| s.to_string())
}

/// Kills (SIGKILL) and reaps a registered child, and forgets it.
pub fn kill_child(pid: u32) {
    let child = registry().children.remove(&pid);
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Keeps a directory to delete on an interrupted exit (normal exits drop their `TempDir`).
pub fn register_dir(dir: PathBuf) {
    registry().dirs.push(dir);
}

/// Forgets a directory (its owner removed it).
pub fn unregister_dir(dir: &std::path::Path) {
    registry().dirs.retain(|d| d != dir);
}

fn emergency_cleanup() {
    let children: Vec<Child> = registry().children.drain().map(|(_, c)| c).collect();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    // Let `docker` commands in flight finish (or fail) so that nothing appears after the sweep.
    std::thread::sleep(Duration::from_millis(500));
    sweep_settled(prefix());
    let dirs: Vec<PathBuf> = std::mem::take(&mut registry().dirs);
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Containers removed at once. `docker rm -f` removes all its arguments concurrently, and
/// Docker 20.10 removing ~100 containers of one network at once can leave the network with a
/// stale endpoint count ("has active endpoints" with no container on it; only restarting the
/// engine frees it, moby/moby#42119): seen here each time with one `docker rm -f` of 100
/// containers, once in several runs with 8 at a time on a loaded host (also faster: 7 s vs 11 s).
const REMOVE_AT_ONCE: usize = 8;

/// Removes every container, network and volume whose name contains `name` (a stack or run
/// prefix: all our objects are named after it). Returns how many objects were found to remove.
pub fn sweep(name: &str) -> usize {
    sweep_found(name).len()
}

/// [`sweep`], returning the ids of what it found (and tried to remove).
fn sweep_found(name: &str) -> Vec<String> {
    let mut found = docker_lines(&["ps", "-aq", "--no-trunc", "--filter", &format!("name={name}")]);
    for chunk in found.chunks(REMOVE_AT_ONCE) {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(chunk.iter().map(String::as_str));
        quiet_docker(&args);
    }
    for kind in ["network", "volume"] {
        let names = docker_lines(&[kind, "ls", "-q", "--filter", &format!("name={name}")]);
        if !names.is_empty() {
            let mut args = vec![kind, "rm"];
            args.extend(names.iter().map(String::as_str));
            quiet_docker(&args);
            found.extend(names);
        }
    }
    found
}

/// [`sweep`] until a look half a second later finds nothing: a request a killed controller had
/// in flight (a network or container create) still completes in the engine. Stops early when a
/// look finds exactly what the previous one could not remove (stuck: see [`leftovers`]). Returns
/// how many distinct objects were found.
pub fn sweep_settled(name: &str) -> usize {
    let mut last = sweep_found(name);
    let mut seen: std::collections::HashSet<String> = last.iter().cloned().collect();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(500));
        let now = sweep_found(name);
        seen.extend(now.iter().cloned());
        // Nothing left (now and before), or only what could not be removed a moment ago.
        if now.is_empty() || now == last {
            break;
        }
        last = now;
    }
    seen.len()
}

/// What is still there of `name` (`network mb-...`, `container mb-...`), after a sweep.
#[must_use]
pub fn leftovers(name: &str) -> Vec<String> {
    let filter = format!("name={name}");
    let mut out = Vec::new();
    for (kind, args) in [
        ("container", ["ps", "-a", "--format", "{{.Names}}", "--filter", filter.as_str()]),
        ("network", ["network", "ls", "--format", "{{.Name}}", "--filter", filter.as_str()]),
        ("volume", ["volume", "ls", "--format", "{{.Name}}", "--filter", filter.as_str()]),
    ] {
        out.extend(docker_lines(&args).into_iter().map(|n| format!("{kind} {n}")));
    }
    out
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn quiet_docker(args: &[&str]) {
    let _ = Command::new("docker").args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Removes everything named after `name` when dropped (objects the bench makes itself).
#[derive(Debug)]
pub struct Sweep {
    name: String,
}

impl Sweep {
    /// Guards the objects named after `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self { name: name.to_owned() }
    }
}

impl Drop for Sweep {
    fn drop(&mut self) {
        sweep_settled(&self.name);
    }
}
