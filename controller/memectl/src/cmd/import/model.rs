//! What the import produces and reports: findings (warnings and notes at `file:line:col`), and
//! the stack, services, ports, mounts and health checks it builds before they are laid out.

use std::collections::BTreeMap;

use meme_api::position::Pos;
use meme_api::units::Duration;
use meme_api::v1alpha1::{EnvVar, ImagePullPolicy, NetworkSpec, ResourceLimits, ResourceReservations, VolumeSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Level {
    /// The import stops: nothing is written.
    Error,
    Warning,
    Note,
}

/// A warning or note about one key of the compose file.
#[derive(Clone, Debug)]
pub(super) struct Finding {
    pub(super) pos: Pos,
    pub(super) path: String,
    pub(super) level: Level,
    pub(super) message: String,
}

impl Finding {
    pub(super) fn display(&self, file: &str) -> String {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        };
        format!("{file}:{}:{}: {level}: {}: {}", self.pos.line, self.pos.column, self.path, self.message)
    }
}

/// A secret the user has to put on the controller's host.
#[derive(Clone, Debug)]
pub(super) struct SecretHint {
    pub(super) service: String,
    pub(super) variable: String,
    pub(super) key: String,
}

/// One key of the stack's secret, and who uses it.
#[derive(Clone, Debug)]
pub(super) struct SharedSecret {
    pub(super) key: String,
    /// What to put in the file (`the value of ${MINIO_ROOT_PASSWORD}`), never the value.
    pub(super) holds: String,
    /// `VAR of service`, for each variable that reads it.
    pub(super) users: Vec<String>,
}

/// A config file of the compose project copied into the manifests folder for `files`.
#[derive(Clone, Debug)]
pub(super) struct Copied {
    /// Where it was, as the compose file names it (`./caddy/Caddyfile`).
    pub(super) from: String,
    /// Its path in the manifests folder (`files/caddy/Caddyfile`).
    pub(super) to: String,
    pub(super) content: Vec<u8>,
}

/// Where the `${VAR}`s interpolated at import time came from (names only).
#[derive(Clone, Debug, Default)]
pub(super) struct VariableSources {
    /// Variable → the env file that set it (`.env`), or `None` for the process environment.
    pub(super) found: BTreeMap<String, Option<String>>,
    /// Variables referenced and set nowhere.
    pub(super) missing: std::collections::BTreeSet<String>,
}

/// One imported service.
#[derive(Debug)]
pub(super) struct Service {
    pub(super) name: String,
    pub(super) compose_name: String,
    pub(super) file: String,
    pub(super) spec: Spec,
    pub(super) secrets: Vec<SecretHint>,
}

/// A Deployment spec, before it is laid out as YAML.
#[derive(Debug, Default)]
pub(super) struct Spec {
    pub(super) image: String,
    pub(super) replicas: Option<u32>,
    pub(super) command: Option<Vec<String>>,
    pub(super) args: Option<Vec<String>>,
    pub(super) env: Vec<EnvVar>,
    pub(super) ports: Vec<Port>,
    pub(super) networks: Vec<String>,
    pub(super) volume_mounts: Vec<Mount>,
    pub(super) health_check: Option<Health>,
    pub(super) depends_on: Vec<String>,
    pub(super) recreate: bool,
    pub(super) limits: ResourceLimits,
    pub(super) reservations: ResourceReservations,
    pub(super) user: Option<String>,
    pub(super) init: bool,
    pub(super) read_only: bool,
    pub(super) stop_grace_period: Option<Duration>,
    pub(super) image_pull_policy: Option<ImagePullPolicy>,
    pub(super) labels: BTreeMap<String, String>,
    /// `(path in the container, source in the manifests folder)`.
    pub(super) files: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Port {
    pub(super) container: u16,
    pub(super) host: Option<u16>,
    pub(super) host_ip: Option<String>,
    pub(super) udp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Mount {
    pub(super) volume: String,
    pub(super) path: String,
    pub(super) read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Health {
    pub(super) exec: Vec<String>,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) retries: u32,
    pub(super) start_period: Duration,
}

/// Everything the import produced.
#[derive(Debug)]
pub(super) struct Import {
    pub(super) stack: String,
    pub(super) networks: Vec<NetworkSpec>,
    pub(super) volumes: Vec<VolumeSpec>,
    pub(super) services: Vec<Service>,
    /// The keys of the stack's secret (named after the stack), by key.
    pub(super) secrets: Vec<SharedSecret>,
    /// Config files to write next to the manifests.
    pub(super) copies: Vec<Copied>,
    /// Where interpolated variables came from.
    pub(super) variables: VariableSources,
}
