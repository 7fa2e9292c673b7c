//! The `Deployment` kind: one service of the stack, its container template and its rollout
//! policy.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{EnvVar, ObjectMeta};
use crate::strict;
use crate::units::{ByteQuantity, Cpus, Duration};

/// One service: `replicas` identical containers built from one template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "Deployment", extend("x-kubernetes-group-version-kind" = [{"group": "memeit.pro", "version": "v1alpha1", "kind": "Deployment"}]))]
pub struct Deployment {
    /// Always `memeit.pro/v1alpha1`.
    #[schemars(extend("const" = "memeit.pro/v1alpha1"))]
    pub api_version: String,
    /// Always `Deployment`.
    #[schemars(extend("const" = "Deployment"))]
    pub kind: String,
    /// The service name (a DNS label) and labels.
    pub metadata: ObjectMeta,
    /// The container template and rollout policy.
    pub spec: DeploymentSpec,
}

/// The desired state of one service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// Image reference in Docker's grammar: `[registry[:port]/]path[:tag][@digest]`.
    pub image: String,
    /// Number of containers. Default `1`; `0` stops the service but keeps it declared. At most
    /// 100: every replica is a container on this one host.
    #[serde(default = "default_replicas", deserialize_with = "strict::integer")]
    #[schemars(range(max = 100))]
    pub replicas: u32,
    /// Replaces the image's ENTRYPOINT (Kubernetes `command`). Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's CMD (Kubernetes `args`). Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Environment, merged over the Stack's `env`. Order does not matter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Ports the container listens on; `hostPort` publishes one on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Named volumes of the Stack mounted into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Stack networks to join; the service name is the network alias on each. Default: the
    /// stack's implicit `default` network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// How readiness is decided. Absent: the image's own HEALTHCHECK if it has one, else
    /// running for `minReadySeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Services that must be healthy before this one is started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// How a changed template is rolled out. Default `RollingUpdate` (start-first).
    #[serde(default)]
    pub strategy: Strategy,
    /// CPU and memory limits and reservations. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// `user[:group]` to run as (Docker `--user`). Default: the image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run an init process (Docker `--init`) as PID 1 that forwards signals and reaps
    /// zombies, for programs that do not handle SIGTERM themselves. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", deserialize_with = "strict::boolean")]
    pub init: bool,
    /// Mount the container's root filesystem read-only. Default `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not", deserialize_with = "strict::boolean")]
    pub read_only_root_filesystem: bool,
    /// Time between SIGTERM and SIGKILL when a container is stopped. Default `10s`.
    #[serde(default = "default_stop_grace_period")]
    pub stop_grace_period: Duration,
    /// Time a leaving container (replaced, scaled down, pruned, recreated) keeps running after
    /// it was taken out of its service alias and before it is sent SIGTERM, so that requests
    /// already in flight on it can finish. Default `0s`.
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub drain_period: Duration,
    /// How running containers take a change that touches only `files`: the new files are copied
    /// in and this action runs instead of a replacement. If the action fails, or a container is
    /// not ready afterwards, the service falls back to a normal replace. Default: none (a files
    /// change replaces the containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<Reload>,
    /// A rollout whose new container is not ready by then has failed: the new container is
    /// removed and the old ones keep serving. Default `120s`.
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline: Duration,
    /// Seconds a new container must be running (and healthy, when it has a check) before it
    /// counts as ready. Default `0`.
    #[serde(default, deserialize_with = "strict::integer")]
    pub min_ready_seconds: u32,
    /// When to pull the image. Default `IfNotPresent`.
    #[serde(default)]
    pub image_pull_policy: ImagePullPolicy,
    /// Files from the repository, at the applied revision, copied into the container before it
    /// starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileMount>,
    /// Labels put on the containers. Keys under `pro.memeit.` are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

const fn default_replicas() -> u32 {
    1
}

const fn default_stop_grace_period() -> Duration {
    Duration::from_secs(10)
}

const fn default_progress_deadline() -> Duration {
    Duration::from_secs(120)
}

/// A port of the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerPort {
    /// The port inside the container (1-65535).
    #[serde(deserialize_with = "strict::integer")]
    #[schemars(range(min = 1))]
    pub container_port: u16,
    /// Publish on this host port. Default: not published. A service with a host port must use
    /// the `Recreate` strategy (two containers cannot hold one host port).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "strict::optional_integer")]
    #[schemars(range(min = 1))]
    pub host_port: Option<u16>,
    /// Host address to publish on. Default `0.0.0.0` (all addresses) when `hostPort` is set.
    #[serde(default, rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `TCP` (default) or `UDP`.
    #[serde(default)]
    pub protocol: Protocol,
}

/// A transport protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// Docker's lowercase spelling (`tcp`, `udp`).
    #[must_use]
    pub const fn docker_name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A named volume of the Stack mounted into the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    /// The Stack volume's name.
    pub name: String,
    /// Absolute path inside the container.
    pub mount_path: String,
    /// Mount read-only. Default `false`.
    #[serde(default, deserialize_with = "strict::boolean")]
    pub read_only: bool,
}

/// How readiness is checked. Exactly one of `httpGet`, `tcpSocket` and `exec`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// Probed by the controller over HTTP against the container's address (2xx and 3xx are
    /// healthy), as the kubelet does: the image needs no curl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// Probed by the controller: healthy when a TCP connection opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// A command run inside the container (Docker HEALTHCHECK `CMD`); exit 0 is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCommand>,
    /// Time between checks. Default `10s`.
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Time a check may take. Default `5s`.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Consecutive failures that make a container unhealthy. Default `3`.
    #[serde(default = "default_retries", deserialize_with = "strict::integer")]
    #[schemars(range(min = 1))]
    pub retries: u32,
    /// Grace period after start during which failures do not count. Default `0s`.
    #[serde(default)]
    pub start_period: Duration,
}

/// The command of an `exec` health check: program and arguments.
pub type ExecCommand = Vec<String>;

const fn default_interval() -> Duration {
    Duration::from_secs(10)
}

const fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

const fn default_retries() -> u32 {
    3
}

/// An HTTP GET probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpGetAction {
    /// Request path, starting with `/`. Default `/`.
    #[serde(default = "default_http_path")]
    pub path: String,
    /// Container port to probe.
    #[serde(deserialize_with = "strict::integer")]
    #[schemars(range(min = 1))]
    pub port: u16,
}

fn default_http_path() -> String {
    "/".to_owned()
}

/// A TCP connect probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpSocketAction {
    /// Container port to connect to.
    #[serde(deserialize_with = "strict::integer")]
    #[schemars(range(min = 1))]
    pub port: u16,
}

/// How a changed template replaces running containers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Strategy {
    /// `RollingUpdate` (default) or `Recreate`.
    #[serde(default, rename = "type")]
    pub kind: StrategyType,
}

/// Rollout strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StrategyType {
    /// Start-first, one replica at a time: a new container must be ready before an old one
    /// is stopped.
    #[default]
    RollingUpdate,
    /// Stop-first: the old container is stopped before the new one starts. Needed for
    /// services with a host port.
    Recreate,
}

/// Resource limits and reservations (Docker `--cpus`, `--memory`, `--memory-reservation`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// Hard limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    /// Soft reservations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceReservations>,
}

/// Hard limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceLimits {
    /// CPUs, e.g. `0.5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// Memory, e.g. `512Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteQuantity>,
}

/// Soft reservations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceReservations {
    /// Memory reserved, e.g. `128Mi` (Docker `--memory-reservation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteQuantity>,
}

/// When the image is pulled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPolicy {
    /// Pull only when the engine does not have the image (the default).
    #[default]
    IfNotPresent,
    /// Pull every time a container is created (each rollout, each replica), as Kubernetes does.
    Always,
    /// Never pull; the image must already be on the engine.
    Never,
}

/// How a container reloads its files in place. Exactly one of `exec` and `signal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Reload {
    /// A command run inside the container (`docker exec`); exit 0 is success. Example:
    /// `[caddy, reload, --config, /etc/caddy/Caddyfile, --adapter, caddyfile]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// A signal sent to the container's main process, e.g. `SIGHUP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// Signals a `reload.signal` may name: the ones programs use to reload or reopen, never the
/// ones that stop a process.
pub const RELOAD_SIGNALS: [&str; 4] = ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH"];

/// A file from the repository copied into the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileMount {
    /// Absolute path of the file inside the container.
    pub path: String,
    /// The file in the repository, relative to the manifests folder.
    pub source: String,
    /// Unix permission bits, as an octal string. Default `"0444"` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}
