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
    /// Look at one service, with the trigger's name.
    Service(String, &'static str),
    /// An operator asked for a reconcile of everything (or resumed): every service is queued.
    Reconcile,
}
