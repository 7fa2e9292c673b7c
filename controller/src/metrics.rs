//! The controller's Prometheus metrics (every `meme_*` series the README lists), with bounded
//! labels only (service names, fixed results, actions and reasons: never error strings or
//! container ids), and their exposition: OpenMetrics when the scraper asks for it, else the
//! classic text format made `promtool check metrics` clean.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use meme_api::status::SyncStatus;

/// `{service}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// Service name.
    pub service: String,
}

/// `{service, result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Service name.
    pub service: String,
    /// `success` or `error`.
    pub result: String,
}

/// `{service, kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Service name.
    pub service: String,
    /// One of [`RECONCILE_ERROR_KINDS`].
    pub kind: String,
}

/// The kind of a reconcile that panicked: a bug, counted beside the errors it can meet.
pub const PANIC: &str = "panic";

/// Every `kind` of `meme_reconcile_errors_total`: what
/// [`ReconcileError::kind`](crate::reconcile::ReconcileError::kind) returns, and [`PANIC`].
/// Every series is created at zero with the service.
pub const RECONCILE_ERROR_KINDS: [&str; 5] = ["engine", "secret", "image", "pull", PANIC];

/// `{service, action}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// Service name.
    pub service: String,
    /// `create`, `replace`, `start`, `remove` or `pull`.
    pub action: String,
}

/// `{service, reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    /// Service name.
    pub service: String,
    /// `stopped` or `removed`.
    pub reason: String,
}

/// `{service, state}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReplicaLabels {
    /// Service name.
    pub service: String,
    /// `desired`, `ready` or `updated`.
    pub state: String,
}

/// `{revision}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    /// Commit id.
    pub revision: String,
}

/// `{status}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// Sync status.
    pub status: String,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `git`, `validation`, `fetch` or `verification`.
    pub reason: String,
}

/// `{check}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// `source` or `drift`.
    pub check: String,
}

/// The reasons of `source_errors_total`, each created at zero.
pub const SOURCE_ERROR_REASONS: [&str; 4] = ["git", "validation", "fetch", "verification"];

/// The kinds of `checks_total`: the source re-resolving its ref, the controller planning every
/// service from one list call.
pub const CHECKS: [&str; 2] = ["source", "drift"];

/// Every metric of the controller.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconcile: Family<ResultLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ServiceLabels, Histogram>,
    actions: Family<ActionLabels, Counter>,
    drift: Family<DriftLabels, Counter>,
    ready: Family<ServiceLabels, Gauge>,
    replicas: Family<ReplicaLabels, Gauge>,
    source_revision: Family<RevisionLabels, Gauge>,
    applied_revision: Family<RevisionLabels, Gauge>,
    sync_status: Family<StatusLabels, Gauge>,
    source_errors: Family<ReasonLabels, Counter>,
    checks: Family<CheckLabels, Counter>,
    workqueue_depth: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("meme");
        // A no-op reconcile is milliseconds, a rollout step waits seconds: 8 buckets cover both
        // (fewer buckets keep /metrics small at 100 services: the histogram is most of its series).
        let duration = Family::<ServiceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10.0, 30.0])
        });
        let m = Self {
            registry: Registry::default(),
            reconcile: Family::default(),
            errors: Family::default(),
            duration,
            actions: Family::default(),
            drift: Family::default(),
            ready: Family::default(),
            replicas: Family::default(),
            source_revision: Family::default(),
            applied_revision: Family::default(),
            sync_status: Family::default(),
            source_errors: Family::default(),
            checks: Family::default(),
            workqueue_depth: Gauge::default(),
        };
        registry.register("reconcile", "Reconciles of a service, by result", m.reconcile.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles of a service, by kind: engine, secret, image, pull, panic",
            m.errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile of a service took",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register("reconcile_actions", "Actions taken on containers and images, by kind", m.actions.clone());
        registry.register(
            "drift_corrections",
            "Containers restored after being stopped or removed outside the controller",
            m.drift.clone(),
        );
        registry.register(
            "service_ready",
            "Whether every desired replica of a service is ready (1) or not (0)",
            m.ready.clone(),
        );
        registry.register(
            "service_replicas",
            "Replicas of a service by state: desired, ready, updated",
            m.replicas.clone(),
        );
        registry.register(
            "source_revision_info",
            "The commit the followed ref points at (value is always 1)",
            m.source_revision.clone(),
        );
        registry.register(
            "applied_revision_info",
            "The commit whose manifests are in force (value is always 1)",
            m.applied_revision.clone(),
        );
        registry.register("sync_status", "The stack's sync status, one-hot", m.sync_status.clone());
        registry.register(
            "source_errors",
            "Revisions or fetches that could not be used, by reason",
            m.source_errors.clone(),
        );
        // What lets a test (or an operator) wait for "N resyncs went by and nothing happened"
        // instead of sleeping for a guessed time.
        registry.register(
            "checks",
            "Completed checks: source = the followed ref re-resolved, drift = every service planned",
            m.checks.clone(),
        );
        registry.register("workqueue_depth", "Services waiting to be reconciled", m.workqueue_depth.clone());
        for reason in SOURCE_ERROR_REASONS {
            m.source_errors.get_or_create_owned(&ReasonLabels { reason: reason.into() });
        }
        for check in CHECKS {
            m.checks.get_or_create_owned(&CheckLabels { check: check.into() });
        }
        Self { registry, ..m }
    }

    /// Creates every series of a service at zero, so `rate()` and `increase()` see its first
    /// error, action or drift correction (a series born at 1 has no increase to show).
    pub fn init_service(&self, service: &str) {
        let s = || service.to_owned();
        for result in ["success", "error"] {
            self.reconcile.get_or_create_owned(&ResultLabels { service: s(), result: result.into() });
        }
        for kind in RECONCILE_ERROR_KINDS {
            self.errors.get_or_create_owned(&ErrorLabels { service: s(), kind: kind.into() });
        }
        for action in ["create", "replace", "start", "remove", "pull"] {
            self.actions.get_or_create_owned(&ActionLabels { service: s(), action: action.into() });
        }
        for reason in ["stopped", "removed"] {
            self.drift.get_or_create_owned(&DriftLabels { service: s(), reason: reason.into() });
        }
    }

    /// One reconcile finished.
    pub fn reconciled(&self, service: &str, ok: bool, seconds: f64) {
        let result = if ok { "success" } else { "error" };
        self.reconcile.get_or_create_owned(&ResultLabels { service: service.into(), result: result.into() }).inc();
        self.duration.get_or_create_owned(&ServiceLabels { service: service.into() }).observe(seconds);
    }

    /// A reconcile failed; `kind` is one of [`RECONCILE_ERROR_KINDS`] (anything else is
    /// counted as `engine`, so the label stays bounded).
    pub fn reconcile_error(&self, service: &str, kind: &str) {
        let kind = if RECONCILE_ERROR_KINDS.contains(&kind) { kind } else { "engine" };
        self.errors.get_or_create_owned(&ErrorLabels { service: service.into(), kind: kind.into() }).inc();
    }

    /// Actions were taken.
    pub fn action(&self, service: &str, action: &str, count: u32) {
        if count > 0 {
            self.actions
                .get_or_create_owned(&ActionLabels { service: service.into(), action: action.into() })
                .inc_by(u64::from(count));
        }
    }

    /// A drift was corrected.
    pub fn drift_corrected(&self, service: &str, reason: &str, count: u32) {
        if count > 0 {
            self.drift
                .get_or_create_owned(&DriftLabels { service: service.into(), reason: reason.into() })
                .inc_by(u64::from(count));
        }
    }

    /// The replicas of a service.
    pub fn replicas(&self, service: &str, desired: u32, ready: u32, updated: u32) {
        for (state, value) in [("desired", desired), ("ready", ready), ("updated", updated)] {
            self.replicas
                .get_or_create_owned(&ReplicaLabels { service: service.into(), state: state.into() })
                .set(i64::from(value));
        }
        self.ready.get_or_create_owned(&ServiceLabels { service: service.into() }).set(i64::from(ready >= desired));
    }

    /// Removes every series of a pruned service.
    pub fn forget_service(&self, service: &str) {
        let s = || service.to_owned();
        for result in ["success", "error"] {
            self.reconcile.remove(&ResultLabels { service: s(), result: result.into() });
        }
        for kind in RECONCILE_ERROR_KINDS {
            self.errors.remove(&ErrorLabels { service: s(), kind: kind.into() });
        }
        self.duration.remove(&ServiceLabels { service: s() });
        self.ready.remove(&ServiceLabels { service: s() });
        for action in ["create", "replace", "start", "remove", "pull"] {
            self.actions.remove(&ActionLabels { service: s(), action: action.into() });
        }
        for reason in ["stopped", "removed"] {
            self.drift.remove(&DriftLabels { service: s(), reason: reason.into() });
        }
        for state in ["desired", "ready", "updated"] {
            self.replicas.remove(&ReplicaLabels { service: s(), state: state.into() });
        }
    }

    /// The tip of the followed ref.
    pub fn source_revision(&self, revision: &str) {
        self.source_revision.clear();
        self.source_revision.get_or_create_owned(&RevisionLabels { revision: revision.into() }).set(1);
    }

    /// The revision in force.
    pub fn applied_revision(&self, revision: &str) {
        self.applied_revision.clear();
        self.applied_revision.get_or_create_owned(&RevisionLabels { revision: revision.into() }).set(1);
    }

    /// The sync status, one-hot.
    pub fn sync_status(&self, status: SyncStatus) {
        for s in SyncStatus::ALL {
            self.sync_status
                .get_or_create_owned(&StatusLabels { status: s.as_str().into() })
                .set(i64::from(s == status));
        }
    }

    /// A revision or fetch could not be used.
    pub fn source_error(&self, reason: &str) {
        self.source_errors.get_or_create_owned(&ReasonLabels { reason: reason.into() }).inc();
    }

    /// A check of kind `check` (one of [`CHECKS`]) completed.
    pub fn checked(&self, check: &str) {
        self.checks.get_or_create_owned(&CheckLabels { check: check.into() }).inc();
    }

    /// Services waiting in the queue.
    pub fn workqueue_depth(&self, depth: usize) {
        self.workqueue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// OpenMetrics text (`application/openmetrics-text; version=1.0.0`).
    ///
    /// # Panics
    /// Never: writing to a String does not fail.
    #[must_use]
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }

    /// Classic Prometheus text (`text/plain; version=0.0.4`): OpenMetrics without `# EOF` and
    /// `# UNIT`, with counter families named after their `_total` samples, which is what
    /// `promtool check metrics` expects.
    #[must_use]
    pub fn prometheus_text(&self) -> String {
        let open = self.openmetrics();
        let counters: Vec<String> = open
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ").and_then(|r| r.strip_suffix(" counter")).map(str::to_owned))
            .collect();
        let mut out = String::with_capacity(open.len());
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
                let rest = line.strip_prefix(prefix)?;
                let (name, tail) = rest.split_once(' ')?;
                counters.iter().any(|c| c == name).then(|| format!("{prefix}{name}_total {tail}"))
            });
            out.push_str(renamed.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_should_name_counters_after_their_samples() {
        let m = Metrics::new();
        m.reconciled("web", true, 0.01);
        m.sync_status(SyncStatus::Synced);
        m.applied_revision("abc");
        let text = m.prometheus_text();
        assert!(text.contains("# TYPE meme_reconcile_total counter\n"), "{text}");
        assert!(text.contains("meme_reconcile_total{service=\"web\",result=\"success\"} 1\n"), "{text}");
        assert!(text.contains("meme_sync_status{status=\"Synced\"} 1\n"), "{text}");
        assert!(text.contains("meme_reconcile_duration_seconds_bucket"), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        assert!(m.openmetrics().ends_with("# EOF\n"));
    }

    #[test]
    fn reconcile_errors_should_be_counted_by_bounded_kind() {
        use crate::docker::EngineError;
        use crate::reconcile::ReconcileError;
        use crate::reconcile::apply::ApplyError;
        use crate::reconcile::desired::ResolveError;
        let engine = || EngineError::Unavailable { message: "down".into() };
        let errors = [
            ReconcileError::Observe(engine()),
            ReconcileError::Resolve(ResolveError::Secret {
                name: "db".into(),
                key: "password".into(),
                path: "/secrets/db/password".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
            ReconcileError::Apply(ApplyError::ImageMissing { image: "app:1".into() }),
            ReconcileError::Apply(ApplyError::Engine {
                step: "create web#1".into(),
                source: EngineError::Pull { image: "app:1".into(), message: "manifest unknown".into() },
            }),
            ReconcileError::Apply(ApplyError::Engine { step: "create web#1".into(), source: engine() }),
        ];
        for e in &errors {
            assert!(RECONCILE_ERROR_KINDS.contains(&e.kind()), "{} is not a listed kind", e.kind());
        }
        let m = Metrics::new();
        m.init_service("web");
        let text = m.prometheus_text();
        for kind in RECONCILE_ERROR_KINDS {
            let series = format!("meme_reconcile_errors_total{{service=\"web\",kind=\"{kind}\"}} 0\n");
            assert!(text.contains(&series), "{series} is pre-initialised: {text}");
        }
        m.reconcile_error("web", errors[3].kind());
        m.reconcile_error("web", "something new");
        let text = m.prometheus_text();
        assert!(text.contains("meme_reconcile_errors_total{service=\"web\",kind=\"pull\"} 1\n"), "{text}");
        assert!(text.contains("meme_reconcile_errors_total{service=\"web\",kind=\"engine\"} 1\n"), "{text}");
        assert!(!text.contains("something new"), "{text}");
    }

    #[test]
    fn pruned_services_should_lose_their_series() {
        let m = Metrics::new();
        m.init_service("gone");
        m.reconcile_error("gone", "pull");
        m.reconciled("gone", true, 0.01);
        m.replicas("gone", 1, 1, 1);
        m.action("gone", "create", 1);
        m.forget_service("gone");
        assert!(!m.prometheus_text().contains("gone"));
    }
}
