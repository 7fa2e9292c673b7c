//! The runtime: the controller loop that drives reconciles from a deduplicating work queue
//! ([`queue`]), with per-service backoff ([`backoff`]), triggered by the source, the Docker event
//! stream and the resync timer.

pub mod backoff;
pub mod controller;
pub mod queue;

/// What wakes the controller loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A new desired state is in force: look at every service.
    DesiredChanged,
    /// Plan every service (the engine came back, a reconcile was requested).
    Resync,
    /// Look at one service, for this reason.
    Service(String, Trigger),
    /// An operator asked for a reconcile of everything (or resumed): every service is queued.
    Reconcile,
}

/// Why a service is reconciled: shown in the status (`lastReconcile.trigger`) and the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A new revision was put in force.
    Source,
    /// The periodic resync found work.
    Resync,
    /// An operator asked (`memectl reconcile`, resume).
    Manual,
    /// A Docker event about one of its containers.
    DockerEvent,
    /// The last reconcile asked to look again soon (work under way).
    Requeue,
    /// The last reconcile failed; this is the retry.
    Backoff,
    /// A service it depends on became ready.
    Dependency,
    /// Settled; its ready containers are probed again (not work: see [`queue::PROBE`]).
    Probe,
}

impl Trigger {
    /// The word shown in the status and logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Resync => "resync",
            Self::Manual => "manual",
            Self::DockerEvent => "docker-event",
            Self::Requeue => "requeue",
            Self::Backoff => "backoff",
            Self::Dependency => "dependency",
            Self::Probe => "probe",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
