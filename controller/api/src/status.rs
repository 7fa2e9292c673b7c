//! The controller's status as `GET /api/v1/status` serves it and `memectl` reads it: sync
//! status, source and applied revisions, and per service its replicas, conditions and
//! containers. Shared here so both sides (de)serialize the same types.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The stack-level sync status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SyncStatus {
    /// Every service runs the applied revision and is ready.
    Synced,
    /// Work is under way.
    #[default]
    Progressing,
    /// The tip revision differs from what runs (e.g. it failed validation, or the engine is down).
    OutOfSync,
    /// A service failed to roll out or is not ready past its deadline.
    Degraded,
    /// Reconciliation is suspended by an operator.
    Suspended,
}

impl SyncStatus {
    /// Every status, for one-hot metrics.
    pub const ALL: [Self; 5] = [Self::Synced, Self::Progressing, Self::OutOfSync, Self::Degraded, Self::Suspended];

    /// The name as written in JSON and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::Progressing => "Progressing",
            Self::OutOfSync => "OutOfSync",
            Self::Degraded => "Degraded",
            Self::Suspended => "Suspended",
        }
    }
}

/// A commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionInfo {
    /// Full commit id.
    pub revision: String,
    /// First line of the message.
    #[serde(default)]
    pub subject: String,
}

/// Where the desired state comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceStatus {
    /// The repository directory.
    pub repo: String,
    /// The manifests folder within it.
    pub path: String,
    /// The ref followed.
    pub reference: String,
    /// The commit the ref points at now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tip: Option<RevisionInfo>,
    /// Why the tip is not applied (validation errors as `file:line:col: ...`, or a git error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The revision `error` is about (the tip that failed validation or could not be read),
    /// published together with it; absent for an error about no revision (a failed fetch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_revision: Option<String>,
}

/// Where a service stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Every desired container exists, runs the desired spec, is ready and in rotation.
    Synced,
    /// Work is under way (creating, waiting for readiness or for dependencies).
    #[default]
    Progressing,
    /// A rollout failed, or containers are not ready past their deadline, or a step fails.
    Degraded,
}

impl Phase {
    /// The name as written in JSON and tables.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of condition a service reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionType {
    /// Every desired container is up to date, ready and in rotation.
    #[default]
    Ready,
    /// Work is under way.
    Progressing,
    /// Something failed and is being retried (a rollout, a step), or replicas are not ready
    /// past their deadline.
    Degraded,
    /// It will not progress without a human (a missing secret, an image that does not exist, a
    /// host port held by something else, a network or volume that is not the stack's; for the
    /// whole stack: another controller owns it).
    Stalled,
}

impl ConditionType {
    /// The name as written in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
            Self::Stalled => "Stalled",
        }
    }
}

impl std::fmt::Display for ConditionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a condition holds: `True`, `False` or `Unknown` (the controller cannot tell, e.g.
/// the engine does not answer), as in Kubernetes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum ConditionStatus {
    /// It holds.
    True,
    /// It does not.
    #[default]
    False,
    /// Nobody can tell right now.
    Unknown,
}

impl ConditionStatus {
    /// `True` for `true`.
    #[must_use]
    pub const fn from_bool(holds: bool) -> Self {
        if holds { Self::True } else { Self::False }
    }

    /// Whether it is `True`.
    #[must_use]
    pub const fn is_true(self) -> bool {
        matches!(self, Self::True)
    }

    /// The name as written in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl<'de> Deserialize<'de> for ConditionStatus {
    /// `"True"`, `"False"`, `"Unknown"`, or a boolean as controllers before 0.2 wrote it.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Bool(bool),
            Text(String),
        }
        match Wire::deserialize(d)? {
            Wire::Bool(b) => Ok(Self::from_bool(b)),
            Wire::Text(t) => match t.as_str() {
                "True" => Ok(Self::True),
                "False" => Ok(Self::False),
                "Unknown" => Ok(Self::Unknown),
                other => Err(serde::de::Error::custom(format!("unknown condition status {other:?}"))),
            },
        }
    }
}

/// The reasons a service's phase and conditions give, named as Flux names them: a word a
/// program can match on, next to a message for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Everything is up to date and ready.
    Ready,
    /// Steps are being applied.
    Reconciling,
    /// New containers are not ready yet.
    WaitingForReadiness,
    /// Creation waits for services named in `dependsOn`.
    WaitingForDependencies,
    /// Old containers are being replaced one at a time.
    RollingUpdate,
    /// A new container was not ready by `progressDeadline`.
    ProgressDeadlineExceeded,
    /// A failed rollout waits for its next attempt.
    RolloutBackoff,
    /// A failed rollout is being tried again.
    RolloutRetrying,
    /// No manifest names the service any more.
    Pruned,
    /// A secret file is missing or unreadable.
    SecretMissing,
    /// An image could not be pulled.
    ImagePullFailed,
    /// The image does not exist and may not be pulled.
    ImageMissing,
    /// A host port is held by something else.
    PortConflict,
    /// A network or volume of the stack's name is not the stack's (and was not adopted).
    ForeignObject,
    /// The engine does not answer.
    EngineUnavailable,
    /// Any other failed step.
    ApplyFailed,
}

impl Reason {
    /// The PascalCase word written in conditions and events.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Reconciling => "Reconciling",
            Self::WaitingForReadiness => "WaitingForReadiness",
            Self::WaitingForDependencies => "WaitingForDependencies",
            Self::RollingUpdate => "RollingUpdate",
            Self::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Self::RolloutBackoff => "RolloutBackoff",
            Self::RolloutRetrying => "RolloutRetrying",
            Self::Pruned => "Pruned",
            Self::SecretMissing => "SecretMissing",
            Self::ImagePullFailed => "ImagePullFailed",
            Self::ImageMissing => "ImageMissing",
            Self::PortConflict => "PortConflict",
            Self::ForeignObject => "ForeignObject",
            Self::EngineUnavailable => "EngineUnavailable",
            Self::ApplyFailed => "ApplyFailed",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition, as in Kubernetes: a type, whether it holds, a PascalCase reason and a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Progressing`, `Degraded`, `Stalled`.
    #[serde(rename = "type")]
    pub kind: ConditionType,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// PascalCase reason ([`Reason`] for the controller's own; text, so that a newer
    /// controller's reasons still read).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Condition {
    /// Whether it holds.
    #[must_use]
    pub const fn holds(&self) -> bool {
        self.status.is_true()
    }
}

/// One container of a service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Docker state (`running`, `exited`, ...).
    pub state: String,
    /// Docker status text.
    pub status: String,
    /// Ready by the service's readiness rule.
    pub ready: bool,
    /// Runs the desired spec.
    pub current: bool,
    /// Revision it was created from.
    pub revision: String,
    /// Image id it runs.
    pub image_id: String,
    /// Creation time, unix seconds.
    pub created: i64,
}

/// One service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// Desired image reference.
    pub image: String,
    /// Image id of the current containers, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Desired replicas.
    pub desired_replicas: u32,
    /// Ready replicas running the desired spec.
    pub ready_replicas: u32,
    /// Replicas running the desired spec (ready or not).
    pub updated_replicas: u32,
    /// `Synced`, `Progressing` or `Degraded`.
    pub phase: Phase,
    /// The revision whose manifests `phase` and `conditions` were judged against; empty when
    /// unknown. A verdict about an older revision is not one about the applied revision.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Conditions.
    pub conditions: Vec<Condition>,
    /// Container restarts seen since the controller started.
    pub restarts: u64,
    /// Spec hash of the desired template.
    pub spec_hash: String,
    /// Containers.
    pub containers: Vec<ContainerStatus>,
}

/// The last reconcile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileInfo {
    /// When it ended, unix seconds.
    pub time: i64,
    /// What triggered it (`startup`, `resync`, `source`, `docker-event`, `requeue`, `manual`).
    pub trigger: String,
    /// The service.
    pub service: String,
    /// `success` or `error`.
    pub result: String,
}

/// The whole status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerStatus {
    /// The controller's version and build commit (`0.1.0 (commit abc1234)`), as its
    /// `--version` prints it: what `memectl version` shows as the server's. Empty from a
    /// controller that predates the field.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub controller_version: String,
    /// Stack name, once manifests were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Sync status.
    pub sync_status: SyncStatus,
    /// The revision the sync status is about: the tip that failed (`OutOfSync`), else the
    /// applied revision. `Synced` and `Degraded` are only said of the applied revision once every
    /// service was judged at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_revision: Option<String>,
    /// Whether an operator suspended reconciliation.
    pub suspended: bool,
    /// This controller's instance name (`--instance`, or derived from what it follows); the
    /// containers it creates carry it as `pro.memeit.instance`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// Conditions of the whole stack: `Stalled` (reason `StackOwnedElsewhere`) while another
    /// controller owns it and this one changes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The source.
    pub source: SourceStatus,
    /// The revision whose manifests are in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<RevisionInfo>,
    /// The last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile: Option<ReconcileInfo>,
    /// Services, by name.
    pub services: Vec<ServiceStatus>,
}

/// Normal or Warning, as in Kubernetes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// Routine.
    Normal,
    /// Something needs attention.
    Warning,
}

/// One (deduplicated) event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// PascalCase reason (`Created`, `RolloutFailed`).
    pub reason: String,
    /// The service it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What happened.
    pub message: String,
    /// How many times.
    pub count: u32,
    /// First occurrence (RFC 3339).
    #[serde(with = "rfc3339")]
    pub first_seen: SystemTime,
    /// Last occurrence (RFC 3339).
    #[serde(with = "rfc3339")]
    pub last_seen: SystemTime,
}

/// Serde for RFC 3339 timestamps.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Serializes a time as RFC 3339 (UTC, seconds).
    ///
    /// # Errors
    /// Never, beyond the serializer's own.
    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*time))
    }

    /// Parses RFC 3339.
    ///
    /// # Errors
    /// Text that is not RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_should_read_and_write_kubernetes_words_and_read_old_booleans() {
        let c = Condition {
            kind: ConditionType::Ready,
            status: ConditionStatus::Unknown,
            reason: Reason::EngineUnavailable.to_string(),
            message: "m".into(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"type":"Ready","status":"Unknown","reason":"EngineUnavailable","message":"m"}"#);
        assert_eq!(serde_json::from_str::<Condition>(&json).unwrap(), c);
        let old: Condition =
            serde_json::from_str(r#"{"type":"Stalled","status":true,"reason":"X","message":""}"#).unwrap();
        assert_eq!((old.kind, old.status), (ConditionType::Stalled, ConditionStatus::True));
        assert!(
            serde_json::from_str::<Condition>(r#"{"type":"Ready","status":"Maybe","reason":"","message":""}"#).is_err()
        );
        assert_eq!(serde_json::to_string(&Phase::Degraded).unwrap(), r#""Degraded""#);
    }
}
