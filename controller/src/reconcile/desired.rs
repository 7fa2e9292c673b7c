//! The desired state of the host at one revision: the stack's networks and volumes and, per
//! service, its container template. Resolving a service reads its secrets from the host and
//! yields the spec hash and the exact [`ContainerSpec`] of each replica (pure apart from the
//! secret files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use meme_api::template::{EnvValue, secret_digest};
use meme_api::v1alpha1::{Deployment, HealthCheck, ImagePullPolicy, SecretKeySelector};
use meme_api::{ContainerTemplate, ManifestSet};

use crate::docker::labels;
use crate::docker::{
    ContainerFile, ContainerSpec, ExecHealthcheck, NetworkSpec, ObservedContainer, PublishedPort, VolumeBinding,
    VolumeSpec,
};
use crate::reconcile::plan::DesiredReplicas;

/// Everything the manifests at one revision ask of the host.
#[derive(Debug)]
pub struct DesiredState {
    /// The commit the manifests were read at.
    pub revision: String,
    /// Stack name.
    pub stack: String,
    /// Networks to ensure (declared ones, plus `default` when a service uses it).
    pub networks: BTreeMap<String, NetworkSpec>,
    /// Volumes to ensure (never removed).
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// Services by name.
    pub services: BTreeMap<String, Arc<DesiredService>>,
}

/// One service at one revision, before secrets are read.
#[derive(Debug)]
pub struct DesiredService {
    /// The Deployment as written (with defaults).
    pub deployment: Deployment,
    /// Its container template.
    pub template: ContainerTemplate,
    /// Contents of its `files`, by source path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The hash of those contents (empty without files).
    pub files_hash: String,
    /// The spec hash and field digests last computed, with the secret digests they were computed
    /// from: every resync resolves every service, and hashing is the bulk of that work.
    hashes: std::sync::Mutex<Option<Hashes>>,
}

/// A computed spec hash and field digests, keyed by the secret digests that went into them.
#[derive(Debug, Clone)]
struct Hashes {
    secret_digests: BTreeMap<SecretKeySelector, String>,
    spec_hash: String,
    fields: BTreeMap<String, String>,
}

impl Readiness {
    /// The controller's own probe timing, for `httpGet` and `tcpSocket` checks.
    #[must_use]
    pub fn probe(&self) -> Option<Probe> {
        match self {
            Self::Http { probe, .. } | Self::Tcp { probe, .. } => Some(*probe),
            Self::DockerHealth { .. } | Self::Auto { .. } => None,
        }
    }
}

impl DesiredService {
    /// Service name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.deployment.metadata.name
    }

    /// How readiness is decided.
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        let spec = &self.deployment.spec;
        let min_ready = Duration::from_secs(u64::from(spec.min_ready_seconds));
        match &spec.health_check {
            Some(HealthCheck { http_get: Some(http), timeout, interval, retries, .. }) => Readiness::Http {
                port: http.port,
                path: http.path.clone(),
                probe: Probe { timeout: timeout.get(), interval: interval.get(), retries: *retries },
                min_ready,
            },
            Some(HealthCheck { tcp_socket: Some(tcp), timeout, interval, retries, .. }) => Readiness::Tcp {
                port: tcp.port,
                probe: Probe { timeout: timeout.get(), interval: interval.get(), retries: *retries },
                min_ready,
            },
            Some(HealthCheck { exec: Some(_), .. }) => Readiness::DockerHealth { min_ready },
            _ => Readiness::Auto { min_ready },
        }
    }
}

/// How often and how patiently the controller probes a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Per-probe timeout.
    pub timeout: Duration,
    /// Time between probes of a ready container.
    pub interval: Duration,
    /// Consecutive failures that make a ready container not ready.
    pub retries: u32,
}

/// How a container of a service is judged ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The controller GETs the path on the container's address: 2xx/3xx is ready.
    Http {
        /// Container port.
        port: u16,
        /// Request path.
        path: String,
        /// Timing.
        probe: Probe,
        /// Also running at least this long.
        min_ready: Duration,
    },
    /// The controller opens a TCP connection.
    Tcp {
        /// Container port.
        port: u16,
        /// Timing.
        probe: Probe,
        /// Also running at least this long.
        min_ready: Duration,
    },
    /// Docker's health status (an `exec` check became the container's HEALTHCHECK).
    DockerHealth {
        /// Also running at least this long.
        min_ready: Duration,
    },
    /// Docker's health status if the image has a HEALTHCHECK, else running for `min_ready`.
    Auto {
        /// Running at least this long.
        min_ready: Duration,
    },
}

/// Why a service could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A secret file is missing or unreadable. The path is named, never the value.
    #[error("secret {name}/{key}: cannot read {path}: {source}")]
    Secret {
        /// Secret name.
        name: String,
        /// Key.
        key: String,
        /// The file looked for.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A service with its secrets read: ready to plan and to create containers from.
#[derive(Clone)]
pub struct ResolvedService {
    /// The service at its revision.
    pub service: Arc<DesiredService>,
    /// The spec hash, including secret digests (file contents excluded).
    pub spec_hash: String,
    /// The hash of the file contents (empty without files).
    pub files_hash: String,
    /// Field digests, for "what changed" messages.
    pub fields: BTreeMap<String, String>,
    /// Secret values by selector. Never logged: this type has a redacting Debug.
    secrets: BTreeMap<SecretKeySelector, String>,
}

impl std::fmt::Debug for ResolvedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedService")
            .field("service", &self.service.name())
            .field("spec_hash", &self.spec_hash)
            .field("secrets", &format_args!("<{} redacted>", self.secrets.len()))
            .finish()
    }
}

impl DesiredState {
    /// The desired state of a validated manifest set at `revision`.
    #[must_use]
    pub fn new(set: &ManifestSet, revision: &str) -> Self {
        let stack = set.stack.object.metadata.name.clone();
        let templates = ContainerTemplate::all(set);
        let mut networks = BTreeMap::new();
        for n in &set.stack.object.spec.networks {
            networks.insert(n.name.clone(), network_spec(&stack, &n.name, n.internal));
        }
        if templates.values().any(|t| t.networks.iter().any(|n| n == meme_api::validate::DEFAULT_NETWORK)) {
            let name = meme_api::validate::DEFAULT_NETWORK;
            networks.entry(name.to_owned()).or_insert_with(|| network_spec(&stack, name, false));
        }
        let volumes = set
            .stack
            .object
            .spec
            .volumes
            .iter()
            .map(|v| {
                let mut labels = labels::stack_labels(&stack);
                labels.insert(labels::OBJECT_NAME.to_owned(), v.name.clone());
                (v.name.clone(), VolumeSpec { name: labels::object_name(&stack, &v.name), labels, adopt: v.adopt })
            })
            .collect();
        let services = set
            .deployments
            .iter()
            .map(|d| {
                let name = d.object.metadata.name.clone();
                let template = templates[&name].clone();
                let files = template
                    .files
                    .iter()
                    .filter_map(|f| Some((f.source.clone(), set.file(&f.source)?.to_vec())))
                    .collect();
                (
                    name,
                    Arc::new(DesiredService {
                        deployment: d.object.clone(),
                        files_hash: template.files_hash(),
                        template,
                        files,
                        hashes: std::sync::Mutex::default(),
                    }),
                )
            })
            .collect();
        Self { revision: revision.to_owned(), stack, networks, volumes, services }
    }

    /// Reads the secrets of a service from `secrets_dir` and computes its spec hash.
    ///
    /// # Errors
    /// A secret file is missing or unreadable.
    pub fn resolve(&self, service: &Arc<DesiredService>, secrets_dir: &Path) -> Result<ResolvedService, ResolveError> {
        let mut secrets = BTreeMap::new();
        let mut digests = BTreeMap::new();
        for selector in service.template.secret_refs() {
            let path = secrets_dir.join(&selector.name).join(&selector.key);
            let bytes = std::fs::read(&path).map_err(|source| ResolveError::Secret {
                name: selector.name.clone(),
                key: selector.key.clone(),
                path: path.clone(),
                source,
            })?;
            digests.insert(selector.clone(), secret_digest(&bytes));
            // Secret files usually end with a newline an editor added; the value does not.
            let value = String::from_utf8_lossy(&bytes).trim_end_matches(['\n', '\r']).to_owned();
            crate::redact::remember(&format!("secret {}/{}", selector.name, selector.key), &value);
            secrets.insert(selector.clone(), value);
        }
        let mut cached = service.hashes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let hashes = match cached.as_ref() {
            Some(h) if h.secret_digests == digests => h.clone(),
            _ => {
                let h = Hashes {
                    spec_hash: service.template.spec_hash(&digests),
                    fields: service.template.field_digests(&digests),
                    secret_digests: digests,
                };
                *cached = Some(h.clone());
                h
            }
        };
        drop(cached);
        Ok(ResolvedService {
            spec_hash: hashes.spec_hash,
            files_hash: service.files_hash.clone(),
            fields: hashes.fields,
            service: Arc::clone(service),
            secrets,
        })
    }
}

fn network_spec(stack: &str, name: &str, internal: bool) -> NetworkSpec {
    let mut labels = labels::stack_labels(stack);
    labels.insert(labels::OBJECT_NAME.to_owned(), name.to_owned());
    NetworkSpec { name: labels::object_name(stack, name), internal, labels }
}

impl ResolvedService {
    /// What the planner needs.
    #[must_use]
    pub fn replicas(&self) -> DesiredReplicas {
        let spec = &self.service.deployment.spec;
        DesiredReplicas {
            service: self.service.name().to_owned(),
            spec_hash: self.spec_hash.clone(),
            files_hash: self.files_hash.clone(),
            image: spec.image.clone(),
            replicas: spec.replicas,
            strategy: spec.strategy.kind,
            progress_deadline: spec.progress_deadline.get(),
            reload: spec.reload.is_some(),
            fields: self.fields.clone(),
        }
    }

    /// The networks `container` should be on: this service's (Docker names) when it was made
    /// from the desired spec, else the ones it is on (an old container only ever leaves).
    #[must_use]
    pub fn networks_for(&self, container: &ObservedContainer) -> Vec<String> {
        if container.label(labels::SPEC_HASH) == Some(self.spec_hash.as_str()) {
            self.networks()
        } else {
            container.networks.clone()
        }
    }

    /// The networks a container of the desired spec is on (Docker names).
    #[must_use]
    pub fn networks(&self) -> Vec<String> {
        let t = &self.service.template;
        t.networks.iter().map(|n| labels::object_name(&t.stack, n)).collect()
    }

    /// What identifies a container of this spec and these files: the spec hash alone without
    /// files (so container names stay what they were), else a hash of both. Names and rollout
    /// memory are keyed by it, so a new version of the files is a new rollout.
    #[must_use]
    pub fn identity(&self) -> String {
        if self.files_hash.is_empty() {
            self.spec_hash.clone()
        } else {
            meme_api::template::secret_digest(format!("{}:{}", self.spec_hash, self.files_hash).as_bytes())
        }
    }

    /// The desired files, as copied into containers.
    #[must_use]
    pub fn container_files(&self) -> Vec<ContainerFile> {
        self.service
            .template
            .files
            .iter()
            .map(|f| ContainerFile {
                path: f.path.clone(),
                mode: f.mode,
                content: self.service.files.get(&f.source).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Image pull policy.
    #[must_use]
    pub fn pull_policy(&self) -> ImagePullPolicy {
        self.service.deployment.spec.image_pull_policy
    }

    /// The container of replica `slot`, created from `revision`.
    #[must_use]
    pub fn container_spec(&self, stack: &str, revision: &str, slot: u32) -> ContainerSpec {
        let t = &self.service.template;
        let spec = &self.service.deployment.spec;
        let mut container_labels: BTreeMap<String, String> = t.labels.clone();
        container_labels.extend(labels::stack_labels(stack));
        container_labels.insert(labels::SERVICE.to_owned(), t.service.clone());
        container_labels.insert(labels::SPEC_HASH.to_owned(), self.spec_hash.clone());
        if !self.files_hash.is_empty() {
            container_labels.insert(labels::FILES_HASH.to_owned(), self.files_hash.clone());
        }
        container_labels.insert(labels::STOP_GRACE_MS.to_owned(), t.stop_grace_period_ms.to_string());
        if t.ports.iter().any(|p| p.host_port.is_some()) {
            container_labels.insert(labels::HOST_PORTS.to_owned(), "true".to_owned());
        }
        let drain = spec.drain_period.get();
        if !drain.is_zero() {
            container_labels.insert(labels::DRAIN_PERIOD_MS.to_owned(), drain.as_millis().to_string());
        }
        container_labels.insert(labels::REVISION.to_owned(), revision.to_owned());
        container_labels.insert(labels::REPLICA.to_owned(), slot.to_string());
        container_labels.insert(labels::FIELDS.to_owned(), serde_json::to_string(&self.fields).unwrap_or_default());
        let env = t
            .env
            .iter()
            .map(|(name, value)| match value {
                EnvValue::Literal(v) => format!("{name}={v}"),
                EnvValue::Secret(selector) => {
                    format!("{name}={}", self.secrets.get(selector).map_or("", String::as_str))
                }
            })
            .collect();
        let healthcheck = spec.health_check.as_ref().and_then(|hc| {
            hc.exec.as_ref().map(|command| ExecHealthcheck {
                command: command.clone(),
                interval: hc.interval.get(),
                timeout: hc.timeout.get(),
                retries: hc.retries,
                start_period: hc.start_period.get(),
            })
        });
        let limits = t.resources.as_ref().and_then(|r| r.limits.clone()).unwrap_or_default();
        let reservations = t.resources.as_ref().and_then(|r| r.reservations.clone()).unwrap_or_default();
        ContainerSpec {
            name: labels::container_name(stack, &t.service, &self.identity(), slot),
            image: t.image.clone(),
            entrypoint: t.command.clone(),
            cmd: t.args.clone(),
            env,
            labels: container_labels,
            exposed_ports: t
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.container_port, p.protocol.docker_name()))
                .collect(),
            published_ports: t
                .ports
                .iter()
                .filter_map(|p| {
                    Some(PublishedPort {
                        container_port: p.container_port,
                        protocol: p.protocol.docker_name(),
                        host_port: p.host_port?,
                        host_ip: p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".to_owned()),
                    })
                })
                .collect(),
            volumes: t
                .volume_mounts
                .iter()
                .map(|m| VolumeBinding {
                    volume: labels::object_name(stack, &m.name),
                    path: m.mount_path.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            networks: t.networks.iter().map(|n| labels::object_name(stack, n)).collect(),
            aliases: vec![t.service.clone()],
            healthcheck,
            user: t.user.clone(),
            init: t.init,
            read_only_root_filesystem: t.read_only_root_filesystem,
            stop_timeout: Duration::from_millis(t.stop_grace_period_ms),
            nano_cpus: limits.cpus.map(meme_api::units::Cpus::nano_cpus),
            memory: limits.memory.map(meme_api::units::ByteQuantity::bytes),
            memory_reservation: reservations.memory.map(meme_api::units::ByteQuantity::bytes),
            files: self.container_files(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meme_api::ManifestTree;

    const STACK: &str = "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata: {name: s}\nspec:\n  networks: [{name: internal}]\n  volumes: [{name: data}]\n";
    const WEB: &str = "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  image: app:1\n  replicas: 1\n  networks: [internal]\n  env:\n    - {name: A, value: x}\n    - name: TOKEN\n      valueFrom: {secretKeyRef: {name: app, key: token}}\n  ports: [{containerPort: 80, hostPort: 8080}]\n  strategy: {type: Recreate}\n  volumeMounts: [{name: data, mountPath: /data}]\n  files: [{path: /etc/x.conf, source: x.conf}]\n";

    fn state() -> DesiredState {
        let tree = ManifestTree::new("t")
            .with_file("stack.yaml", STACK)
            .with_file("web.yaml", WEB)
            .with_file("x.conf", "k=v\n");
        DesiredState::new(&meme_api::load(&tree).unwrap(), "abc123")
    }

    #[test]
    fn container_spec_should_carry_labels_names_and_resolved_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/token"), "s3cret\n").unwrap();
        let state = state();
        let resolved = state.resolve(&state.services["web"], dir.path()).unwrap();
        let spec = resolved.container_spec("s", "abc123", 2);
        assert!(spec.name.starts_with("s-web-") && spec.name.ends_with("-2"), "{}", spec.name);
        assert_eq!(spec.labels[labels::MANAGED_BY], labels::MANAGER);
        assert_eq!(spec.labels[labels::REVISION], "abc123");
        assert_eq!(spec.labels[labels::SPEC_HASH], resolved.spec_hash);
        assert!(spec.env.contains(&"TOKEN=s3cret".to_owned()));
        assert!(!spec.labels.values().any(|v| v.contains("s3cret")), "secret values never go into labels");
        assert!(!format!("{resolved:?}").contains("s3cret"));
        assert_eq!(spec.networks, ["s_internal"]);
        assert_eq!(spec.volumes[0].volume, "s_data");
        assert_eq!(spec.published_ports[0].host_ip, "0.0.0.0");
        assert_eq!(spec.files[0].content, b"k=v\n");
        assert_eq!(state.networks.keys().collect::<Vec<_>>(), ["internal"]);
    }

    #[test]
    fn resolve_should_name_the_missing_secret_file_and_roll_on_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let state = state();
        let err = state.resolve(&state.services["web"], dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("secret app/token: cannot read "), "{err}");
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/token"), "one").unwrap();
        let first = state.resolve(&state.services["web"], dir.path()).unwrap().spec_hash;
        std::fs::write(dir.path().join("app/token"), "two").unwrap();
        let second = state.resolve(&state.services["web"], dir.path()).unwrap().spec_hash;
        assert_ne!(first, second);
    }
}
