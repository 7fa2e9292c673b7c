//! What every reconcile shares: the engine, the desired state in force, the status being
//! reported, the events ring, and the memories the reconciler keeps (per service in
//! [`ServiceMemories`]; per container in readiness, rotation and reload).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use meme_api::status::{ControllerStatus, ServiceStatus};

use crate::docker::Engine;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::ownership::Ownership;
use crate::reconcile::desired::DesiredState;
use crate::reconcile::memory::ServiceMemories;
use crate::reconcile::readiness::ReadinessCache;
use crate::reconcile::reload::Reloads;
use crate::reconcile::rotation::Rotations;

/// Settings of the reconciler.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where `secretKeyRef`s are read: `<dir>/<name>/<key>`.
    pub secrets_dir: PathBuf,
    /// Services reconciled at once.
    pub concurrency: usize,
    /// Full resync interval.
    pub resync: Duration,
    /// Where state that must survive a restart is kept (the suspension marker).
    pub state_dir: PathBuf,
}

/// Shared state of the controller.
pub struct Context {
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// Settings.
    pub config: Config,
    desired: RwLock<Option<Arc<DesiredState>>>,
    /// Readiness verdicts by container id.
    pub readiness: ReadinessCache,
    /// Which containers carry their service alias.
    pub rotations: Rotations,
    /// Files reloaded into running containers, and reloads that failed.
    pub reloads: Reloads,
    /// Recent events.
    pub events: Events,
    /// The status served to operators.
    pub status: RwLock<ControllerStatus>,
    /// What is remembered per service: failed rollouts, restarts, failed reloads.
    pub services: ServiceMemories,
    /// Networks and volumes known to exist.
    pub ensured: Mutex<HashSet<String>>,
    /// Serializes creating networks and volumes: two services sharing a network must not
    /// race to create it (API 1.41 lets two networks share a name).
    pub ensure_lock: tokio::sync::Mutex<()>,
    /// Containers the controller is stopping: their `die` events are not restarts.
    pub stopping: Mutex<HashSet<String>>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// This controller's identity and the stack leases it holds.
    pub ownership: Ownership,
    /// Whether the last call to the engine succeeded.
    engine_answered: AtomicBool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Context {
    /// A context with nothing desired yet.
    #[must_use]
    pub fn new(engine: Arc<dyn Engine>, config: Config) -> Self {
        let reloads = Reloads::load(&config.state_dir);
        Self {
            engine,
            config,
            desired: RwLock::new(None),
            readiness: ReadinessCache::default(),
            rotations: Rotations::default(),
            reloads,
            events: Events::default(),
            status: RwLock::new(ControllerStatus {
                controller_version: crate::VERSION.to_owned(),
                ..ControllerStatus::default()
            }),
            services: ServiceMemories::default(),
            ensured: Mutex::new(HashSet::new()),
            ensure_lock: tokio::sync::Mutex::new(()),
            stopping: Mutex::new(HashSet::new()),
            metrics: Metrics::new(),
            ownership: Ownership::single(""),
            engine_answered: AtomicBool::new(false),
        }
    }

    /// The same context, with `ownership` in place of the default (every claim granted).
    #[must_use]
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    /// Records whether the engine answered the last call.
    pub fn set_engine_answered(&self, answered: bool) {
        self.engine_answered.store(answered, Ordering::Relaxed);
    }

    /// Whether the engine answered the last call.
    #[must_use]
    pub fn engine_answered(&self) -> bool {
        self.engine_answered.load(Ordering::Relaxed)
    }

    /// The file whose presence means "suspended".
    fn suspended_marker(&self) -> PathBuf {
        self.config.state_dir.join("suspended")
    }

    /// Restores the suspension recorded before a restart.
    pub fn load_suspended(&self) {
        let suspended = self.suspended_marker().exists();
        self.update_status(|s| {
            s.suspended = suspended;
            if suspended {
                s.sync_status = meme_api::status::SyncStatus::Suspended;
            }
        });
        if suspended {
            tracing::warn!(marker = %self.suspended_marker().display(), "reconciliation is suspended (resume with memectl resume)");
        }
    }

    /// Suspends or resumes reconciliation, durably.
    ///
    /// # Errors
    /// The marker file cannot be written or removed.
    pub fn set_suspended(&self, suspended: bool) -> std::io::Result<()> {
        let marker = self.suspended_marker();
        if suspended {
            std::fs::create_dir_all(&self.config.state_dir)?;
            std::fs::write(&marker, b"suspended by an operator through the API\n")?;
        } else if let Err(e) = std::fs::remove_file(&marker)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(e);
        }
        self.update_status(|s| {
            s.suspended = suspended;
            if suspended {
                s.sync_status = meme_api::status::SyncStatus::Suspended;
            }
        });
        if suspended {
            self.metrics.sync_status(meme_api::status::SyncStatus::Suspended);
        }
        let (kind, reason) = if suspended {
            (crate::events::EventType::Warning, "Suspended")
        } else {
            (crate::events::EventType::Normal, "Resumed")
        };
        self.events.record(
            kind,
            reason,
            None,
            if suspended { "reconciliation suspended" } else { "reconciliation resumed" },
        );
        Ok(())
    }

    /// Whether reconciliation is suspended.
    #[must_use]
    pub fn is_suspended(&self) -> bool {
        self.with_status(|s| s.suspended)
    }

    /// The desired state in force, if a valid revision was loaded.
    #[must_use]
    pub fn desired(&self) -> Option<Arc<DesiredState>> {
        self.desired.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The revision a service of the desired state belongs to: that of the state in force when
    /// `service` is one of its services, else empty (a newer state replaced it meanwhile, so a
    /// verdict about it is about no revision in force).
    #[must_use]
    pub fn revision_of(&self, service: &crate::reconcile::desired::DesiredService) -> String {
        self.desired()
            .filter(|d| d.services.get(service.name()).is_some_and(|s| std::ptr::eq(s.as_ref(), service)))
            .map(|d| d.revision.clone())
            .unwrap_or_default()
    }

    /// Puts a new desired state in force.
    pub fn set_desired(&self, state: Arc<DesiredState>) {
        *self.desired.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state);
    }

    /// Reads the status.
    pub fn with_status<T>(&self, f: impl FnOnce(&ControllerStatus) -> T) -> T {
        f(&self.status.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Changes the status.
    pub fn update_status<T>(&self, f: impl FnOnce(&mut ControllerStatus) -> T) -> T {
        f(&mut self.status.write().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Replaces (or adds) one service's status.
    pub fn set_service_status(&self, service: ServiceStatus) {
        self.update_status(|s| match s.services.iter_mut().find(|x| x.name == service.name) {
            Some(slot) => *slot = service,
            None => {
                s.services.push(service);
                s.services.sort_by(|a, b| a.name.cmp(&b.name));
            }
        });
    }

    /// Whether a service has at least one ready container running its desired spec.
    #[must_use]
    pub fn is_service_ready(&self, name: &str) -> bool {
        self.with_status(|s| s.services.iter().any(|x| x.name == name && x.ready_replicas > 0))
    }

    /// Locks a mutex, ignoring poisoning (state stays usable after a panicked task).
    pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
