//! `reload`: a change of `files` contents reaches running containers without replacing them.
//! The new files are copied in, the service's action runs (`exec` a command, or send a
//! `signal`), and the container must still be ready afterwards; otherwise the service falls
//! back to a normal replace. Caddy, Prometheus, nginx and HAProxy all reload their config this
//! way without dropping a connection, where a replace of a proxy holding host ports is an
//! outage (measured: 20-26 failed requests per Caddyfile change).
//!
//! A container's labels cannot change, so which files a reloaded container holds is kept here,
//! by container id, and written to the state directory: after a restart the controller still
//! knows, and if that file is lost the containers are simply reloaded again (reloading is
//! idempotent).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::docker::{ContainerState, DockerHealth, ObservedContainer, labels};
use crate::reconcile::desired::{Readiness, ResolvedService};
use crate::reconcile::readiness;

/// How long a reloaded container may take to answer its probe again.
const READY_AFTER_RELOAD: Duration = Duration::from_secs(15);
/// Time between probes while waiting for it.
const READY_POLL: Duration = Duration::from_millis(100);
/// How long a container without a probe must keep running after the action.
const SETTLE: Duration = Duration::from_millis(500);

/// The files each reloaded container holds.
#[derive(Debug, Default)]
pub struct Reloads {
    /// Container id -> files hash it holds since a reload.
    applied: Mutex<HashMap<String, String>>,
    /// Where `applied` is kept across restarts.
    path: Option<PathBuf>,
}

impl Reloads {
    /// Reloads remembered in `state_dir`, if any.
    #[must_use]
    pub fn load(state_dir: &std::path::Path) -> Self {
        let path = state_dir.join("reloaded-files.json");
        let applied = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Self { applied: Mutex::new(applied), path: Some(path) }
    }

    /// The files hash a container holds: reloaded ones, else those it was created with.
    #[must_use]
    pub fn files_hash(&self, container: &ObservedContainer) -> String {
        lock(&self.applied)
            .get(&container.id)
            .cloned()
            .unwrap_or_else(|| container.label(labels::FILES_HASH).unwrap_or_default().to_owned())
    }

    fn applied(&self, id: &str, files_hash: &str) {
        let snapshot = {
            let mut applied = lock(&self.applied);
            applied.insert(id.to_owned(), files_hash.to_owned());
            applied.clone()
        };
        self.save(&snapshot);
    }

    /// Forgets containers that no longer exist.
    pub fn retain(&self, live: &dyn Fn(&str) -> bool) {
        let snapshot = {
            let mut applied = lock(&self.applied);
            let before = applied.len();
            applied.retain(|id, _| live(id));
            (applied.len() != before).then(|| applied.clone())
        };
        if let Some(snapshot) = snapshot {
            self.save(&snapshot);
        }
    }

    fn save(&self, applied: &HashMap<String, String>) {
        let Some(path) = &self.path else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(applied).unwrap_or_default())?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            // Losing it only means reloading again after a restart.
            tracing::warn!(path = %path.display(), error = %e, "cannot record reloaded files");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Copies the desired files into `container`, runs the reload action and waits until the
/// container is ready again. On success the container counts as holding the new files.
///
/// # Errors
/// Why the reload failed, for the event; the caller falls back to a replace.
pub async fn reload(ctx: &Context, service: &ResolvedService, container: &ObservedContainer) -> Result<(), String> {
    let spec = &service.service.deployment.spec;
    let Some(action) = &spec.reload else { return Err("the service has no reload action".to_owned()) };
    ctx.engine
        .copy_files(&container.id, &service.container_files())
        .await
        .map_err(|e| format!("copying the files failed: {e}"))?;
    if let Some(command) = &action.exec {
        let out =
            ctx.engine.exec(&container.id, command).await.map_err(|e| format!("{} failed: {e}", command.join(" ")))?;
        if out.exit_code != Some(0) {
            let code = out.exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
            let output = out.output.trim();
            return Err(format!(
                "{} ended with {code}{}",
                command.join(" "),
                if output.is_empty() { String::new() } else { format!(": {output}") }
            ));
        }
    } else if let Some(signal) = &action.signal {
        ctx.engine.signal(&container.id, signal).await.map_err(|e| format!("sending {signal} failed: {e}"))?;
    }
    ready_again(ctx, service, container).await?;
    ctx.reloads.applied(&container.id, &service.files_hash);
    Ok(())
}

/// Waits until the container passes its readiness check after the action.
async fn ready_again(ctx: &Context, service: &ResolvedService, container: &ObservedContainer) -> Result<(), String> {
    let rule = service.service.readiness();
    let network =
        service.service.template.networks.first().map(|n| labels::object_name(&service.service.template.stack, n));
    let started = Instant::now();
    if let Some(probe) = rule.probe() {
        let port = match &rule {
            Readiness::Http { port, .. } | Readiness::Tcp { port, .. } => *port,
            _ => 0,
        };
        let ip =
            network.as_deref().and_then(|n| container.addresses.get(n)).or_else(|| container.addresses.values().next());
        let Some(addr) = ip.and_then(|ip| ip.parse().ok()).map(|ip| std::net::SocketAddr::new(ip, port)) else {
            return Err("the container has no address to probe".to_owned());
        };
        loop {
            let ok = match &rule {
                Readiness::Http { path, .. } => readiness::http_probe(addr, path, probe.timeout).await,
                _ => readiness::tcp_probe(addr, probe.timeout).await,
            };
            if ok {
                return Ok(());
            }
            if started.elapsed() >= READY_AFTER_RELOAD {
                return Err(format!("not ready {}s after the reload", READY_AFTER_RELOAD.as_secs()));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
    // Docker health or none: the container must keep running, and not turn unhealthy.
    tokio::time::sleep(SETTLE).await;
    let filter = labels::service_filter(&service.service.template.stack, service.service.name());
    let now = ctx.engine.list_containers(&filter).await.map_err(|e| format!("cannot look at the container: {e}"))?;
    match now.iter().find(|c| c.id == container.id) {
        Some(c) if c.state == ContainerState::Running && c.health != Some(DockerHealth::Unhealthy) => Ok(()),
        Some(c) => Err(format!("the container is {} after the reload", c.status)),
        None => Err("the container is gone after the reload".to_owned()),
    }
}
