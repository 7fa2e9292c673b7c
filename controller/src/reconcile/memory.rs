//! What the controller remembers about each service between reconciles, in one place: the
//! failed rollouts of a spec (and when to try again), the restarts seen, containers removed by
//! someone else, a reload that failed, and the containers a settled service was last seen with
//! (what its periodic readiness probe looks at without listing them again). Plain data behind one lock, with methods that say what each fact is for; per-container
//! facts (readiness, rotation, reloaded files) live with the module that owns them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::docker::ObservedContainer;
use crate::reconcile::plan::RolloutHistory;

/// A failed rollout of one spec (and files), not retried before `retry_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RolloutBlock {
    /// The identity (spec and files hash) whose rollout failed.
    identity: String,
    /// When it may be tried again.
    retry_at: Instant,
    /// Consecutive failures, for the backoff.
    failures: u32,
}

/// One service's memory.
#[derive(Clone, Debug, Default)]
struct ServiceMemory {
    rollout: Option<RolloutBlock>,
    restarts: u64,
    reload_failed: Option<String>,
    /// Containers removed by someone else, not yet counted as corrected.
    removed_outside: u32,
    settled: Option<Settled>,
}

/// A service that reconciled to `Synced` with every container current and ready: the revision
/// it was judged at and the containers it was seen with.
#[derive(Clone, Debug)]
struct Settled {
    revision: String,
    containers: Arc<[ObservedContainer]>,
}

/// Every service's memory.
#[derive(Debug, Default)]
pub struct ServiceMemories {
    services: Mutex<HashMap<String, ServiceMemory>>,
}

/// Backoff before a failed rollout of the same spec is tried again: 10 s, doubling, at most
/// 5 minutes, so a broken image never loops hot while the old version serves.
#[must_use]
pub fn rollout_retry_delay(failures: u32) -> Duration {
    Duration::from_secs(10).saturating_mul(1 << failures.min(6).saturating_sub(1)).min(Duration::from_secs(300))
}

impl ServiceMemories {
    /// What the planner must know of earlier rollouts of `identity`.
    #[must_use]
    pub fn rollout_history(&self, service: &str, identity: &str, now: Instant) -> RolloutHistory {
        self.lock().get(service).and_then(|m| m.rollout.as_ref()).filter(|b| b.identity == identity).map_or_else(
            RolloutHistory::default,
            |b| RolloutHistory {
                failures: b.failures,
                blocked: now < b.retry_at,
                retry_in: (now < b.retry_at).then(|| b.retry_at - now),
            },
        )
    }

    /// Records a failed rollout of `identity`; returns the failures so far and the delay before
    /// the next attempt.
    pub fn rollout_failed(&self, service: &str, identity: &str, now: Instant) -> (u32, Duration) {
        let mut services = self.lock();
        let memory = services.entry(service.to_owned()).or_default();
        let failures =
            memory.rollout.as_ref().filter(|b| b.identity == identity).map_or(0, |b| b.failures).saturating_add(1);
        let delay = rollout_retry_delay(failures);
        memory.rollout = Some(RolloutBlock { identity: identity.to_owned(), retry_at: now + delay, failures });
        (failures, delay)
    }

    /// The service is Synced: earlier failures are forgotten.
    pub fn rollout_succeeded(&self, service: &str) {
        if let Some(memory) = self.lock().get_mut(service) {
            memory.rollout = None;
        }
    }

    /// When a blocked rollout of `identity` may be tried again.
    #[must_use]
    pub fn retry_at(&self, service: &str, identity: &str) -> Option<Instant> {
        self.lock().get(service)?.rollout.as_ref().filter(|b| b.identity == identity).map(|b| b.retry_at)
    }

    /// A container of the service died without the controller stopping it.
    pub fn restarted(&self, service: &str) {
        self.lock().entry(service.to_owned()).or_default().restarts += 1;
    }

    /// Deaths seen since the controller started.
    #[must_use]
    pub fn restarts(&self, service: &str) -> u64 {
        self.lock().get(service).map_or(0, |m| m.restarts)
    }

    /// A container of the service was removed by someone else (a `destroy` the controller did
    /// not cause).
    pub fn removed_outside(&self, service: &str) {
        let mut services = self.lock();
        let memory = services.entry(service.to_owned()).or_default();
        memory.removed_outside = memory.removed_outside.saturating_add(1);
    }

    /// How many of the `missing` containers created now replace ones removed by someone else
    /// (drift corrections): all of them when the service had converged (`was_synced`), else as
    /// many as were seen removed and not yet counted. What is counted is forgotten, and
    /// everything once the service is `synced` again.
    pub fn corrected_removals(&self, service: &str, missing: u32, was_synced: bool, synced: bool) -> u32 {
        let mut services = self.lock();
        let Some(memory) = services.get_mut(service) else { return if was_synced { missing } else { 0 } };
        let seen = memory.removed_outside;
        let corrected = if was_synced { missing } else { missing.min(seen) };
        memory.removed_outside = if synced { 0 } else { seen.saturating_sub(corrected) };
        corrected
    }

    /// Reloading these files failed: the service is replaced instead.
    pub fn reload_failed(&self, service: &str, files_hash: &str) {
        self.lock().entry(service.to_owned()).or_default().reload_failed = Some(files_hash.to_owned());
    }

    /// Whether reloading these files failed.
    #[must_use]
    pub fn has_reload_failed(&self, service: &str, files_hash: &str) -> bool {
        self.lock().get(service).and_then(|m| m.reload_failed.as_deref()) == Some(files_hash)
    }

    /// The service reconciled to `Synced` at `revision` with `containers`, every one current and
    /// ready: its periodic probe may look at them without listing them again.
    pub fn settle(&self, service: &str, revision: &str, containers: Arc<[ObservedContainer]>) {
        self.lock().entry(service.to_owned()).or_default().settled =
            Some(Settled { revision: revision.to_owned(), containers });
    }

    /// Anything but a settled verdict: the next probe lists the containers again.
    pub fn unsettle(&self, service: &str) {
        if let Some(memory) = self.lock().get_mut(service) {
            memory.settled = None;
        }
    }

    /// The containers the service settled with at `revision` (`None`: not settled, or at
    /// another revision).
    #[must_use]
    pub fn settled(&self, service: &str, revision: &str) -> Option<Arc<[ObservedContainer]>> {
        let services = self.lock();
        let settled = services.get(service)?.settled.as_ref().filter(|s| s.revision == revision)?;
        Some(Arc::clone(&settled.containers))
    }

    /// Forgets a pruned service.
    pub fn forget(&self, service: &str) {
        self.lock().remove(service);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ServiceMemory>> {
        self.services.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_rollout_should_back_off_per_spec_and_be_forgotten_on_success() {
        let m = ServiceMemories::default();
        let now = Instant::now();
        assert_eq!(m.rollout_history("web", "a", now), RolloutHistory::default());
        assert_eq!(m.rollout_failed("web", "a", now), (1, Duration::from_secs(10)));
        assert_eq!(m.rollout_failed("web", "a", now), (2, Duration::from_secs(20)));
        let h = m.rollout_history("web", "a", now);
        assert!(h.blocked && h.failures == 2 && h.retry_in == Some(Duration::from_secs(20)), "{h:?}");
        assert!(!m.rollout_history("web", "a", now + Duration::from_secs(21)).blocked);
        assert_eq!(m.rollout_history("web", "b", now), RolloutHistory::default(), "another spec is fresh");
        assert_eq!(m.rollout_failed("web", "b", now).0, 1, "and starts its own count");
        m.rollout_succeeded("web");
        assert_eq!(m.retry_at("web", "b"), None);
        assert_eq!(rollout_retry_delay(5), Duration::from_secs(160));
        assert_eq!(rollout_retry_delay(6), Duration::from_secs(300), "doubling up to 5 minutes");
        assert_eq!(rollout_retry_delay(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn restarts_and_reload_failures_should_be_kept_per_service() {
        let m = ServiceMemories::default();
        m.restarted("web");
        m.restarted("web");
        m.reload_failed("caddy", "f1");
        assert_eq!((m.restarts("web"), m.restarts("caddy")), (2, 0));
        assert!(m.has_reload_failed("caddy", "f1") && !m.has_reload_failed("caddy", "f2"));
        m.forget("web");
        assert_eq!(m.restarts("web"), 0);
    }

    #[test]
    fn a_settled_service_should_be_remembered_only_at_its_revision() {
        let m = ServiceMemories::default();
        assert!(m.settled("web", "r1").is_none());
        m.settle("web", "r1", Arc::from(Vec::new()));
        assert_eq!(m.settled("web", "r1").map(|c| c.len()), Some(0));
        assert!(m.settled("web", "r2").is_none(), "another revision lists again");
        m.unsettle("web");
        assert!(m.settled("web", "r1").is_none());
    }

    #[test]
    fn removals_from_outside_should_be_counted_once_each() {
        let m = ServiceMemories::default();
        assert_eq!(m.corrected_removals("web", 2, false, false), 0, "a cold start corrects nothing");
        assert_eq!(m.corrected_removals("web", 2, true, false), 2, "a converged service: every missing one");
        for _ in 0..3 {
            m.removed_outside("web");
        }
        assert_eq!(m.corrected_removals("web", 2, false, false), 2);
        assert_eq!(m.corrected_removals("web", 5, false, false), 1, "only the one left");
        assert_eq!(m.corrected_removals("web", 1, false, false), 0);
        m.removed_outside("web");
        assert_eq!(m.corrected_removals("web", 0, false, true), 0);
        assert_eq!(m.corrected_removals("web", 1, false, false), 0, "forgotten once Synced");
    }
}
