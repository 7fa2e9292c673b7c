//! The Docker engine as the controller sees it: one narrow trait, [`Engine`], and the plain
//! data it speaks. [`bollard::BollardEngine`] is the only implementation that talks to a
//! socket; everything else (planner, runtime, tests of them) depends on the trait alone.
//! [`fake::FakeEngine`] (feature `fake-engine`, on for this crate's tests) is the in-memory one
//! the tests drive. [`timeout::TimeoutEngine`] wraps an engine with time limits that fit each
//! call; [`bounded::BoundedEngine`] bounds how many calls are in flight at once.

pub mod auth;
pub mod bollard;
pub mod bounded;
#[cfg(any(test, feature = "fake-engine"))]
pub mod fake;
pub mod labels;
pub mod owned;
pub mod timeout;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures_util::Stream;

/// The engine as the controller uses it: `inner` (the socket client, or the fake in tests)
/// with time limits per call (`None`: none, for tests) and, outermost, the bound on calls in
/// flight ([`bounded`] says why in that order).
#[must_use]
pub fn layered(
    inner: std::sync::Arc<dyn Engine>,
    timeouts: Option<timeout::CallTimeouts>,
    fan_out: bounded::FanOut,
) -> std::sync::Arc<dyn Engine> {
    let limited: std::sync::Arc<dyn Engine> = match timeouts {
        Some(limits) => std::sync::Arc::new(timeout::TimeoutEngine::new(inner, limits)),
        None => inner,
    };
    std::sync::Arc::new(bounded::BoundedEngine::new(limited, fan_out))
}

/// Errors from the engine, classified so callers can tell "gone" from "try again". Clone, so a
/// test engine can script the same error for many calls.
#[derive(Clone, Debug, thiserror::Error)]
pub enum EngineError {
    /// The object does not exist (HTTP 404).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The object exists already, or is in a state that forbids the call (HTTP 409).
    #[error("conflict: {message}")]
    Conflict {
        /// The engine's message.
        message: String,
    },
    /// Pulling an image failed (registry unreachable, unauthorized, no such tag).
    #[error("pull of {image} failed: {message}")]
    Pull {
        /// The image reference.
        image: String,
        /// The registry's or engine's message.
        message: String,
    },
    /// A host port the container publishes is held by something else.
    #[error("host port {port} is already in use: {message}")]
    PortConflict {
        /// The host port (`address:port` as the engine wrote it).
        port: String,
        /// The engine's message.
        message: String,
    },
    /// A network or volume of the stack's name exists but is not the stack's (it lacks the
    /// stack's labels and was not adopted): it is never used. Needs a person, not a retry.
    #[error("{message}")]
    Foreign {
        /// The Docker name of the network or volume.
        name: String,
        /// What it is, whose it looks to be, and what to do.
        message: String,
    },
    /// The engine could not be reached or answered with a server error: transient.
    #[error("docker engine unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// Any other engine error.
    #[error("docker: {message}")]
    Other {
        /// What happened.
        message: String,
    },
}

/// Result alias for engine calls.
pub type EngineResult<T> = Result<T, EngineError>;

/// A boxed, sendable future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed stream of engine events.
pub type EventStream = Pin<Box<dyn Stream<Item = EngineResult<EngineEvent>> + Send>>;

/// The Docker state of a container, as the list call reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Being restarted by Docker's restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Stopped.
    Exited,
    /// Dead (failed removal or similar).
    Dead,
}

/// Docker's health status of a container that has a HEALTHCHECK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerHealth {
    /// Within the start period or before the first check.
    Starting,
    /// The last checks passed.
    Healthy,
    /// `retries` checks failed in a row.
    Unhealthy,
}

/// One of our containers as observed through one list call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Full container id.
    pub id: String,
    /// Container name without the leading `/`.
    pub name: String,
    /// All labels.
    pub labels: BTreeMap<String, String>,
    /// State.
    pub state: ContainerState,
    /// Docker's status text (`Up 3 minutes (healthy)`, `Exited (137) 2 seconds ago`).
    pub status: String,
    /// Docker health, parsed from the status text (API 1.41 has no health field in lists).
    pub health: Option<DockerHealth>,
    /// Exit code, parsed from the status text of an exited container.
    pub exit_code: Option<i64>,
    /// Creation time.
    pub created: SystemTime,
    /// Image id (`sha256:...`) the container runs.
    pub image_id: String,
    /// Image reference the container was created from.
    pub image: String,
    /// IP address per network name (running containers only).
    pub addresses: BTreeMap<String, String>,
    /// Every network it is connected to, running or not.
    pub networks: Vec<String>,
    /// It publishes host ports (label, or the ports the list call reports).
    pub publishes_ports: bool,
}

impl ObservedContainer {
    /// A label's value.
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether Docker considers it running (restarting counts as not running).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.state == ContainerState::Running
    }
}

/// A port to publish on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedPort {
    /// Port inside the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// Host port.
    pub host_port: u16,
    /// Host address.
    pub host_ip: String,
}

/// A named volume mounted into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeBinding {
    /// Docker volume name (`<stack>_<name>`).
    pub volume: String,
    /// Mount path.
    pub path: String,
    /// Read-only.
    pub read_only: bool,
}

/// A Docker HEALTHCHECK for an `exec` health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecHealthcheck {
    /// `CMD` arguments.
    pub command: Vec<String>,
    /// Interval.
    pub interval: Duration,
    /// Timeout.
    pub timeout: Duration,
    /// Retries.
    pub retries: u32,
    /// Start period.
    pub start_period: Duration,
}

/// A file copied into the container before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFile {
    /// Absolute path in the container.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Content.
    pub content: Vec<u8>,
}

/// Everything needed to create one container. Built by the reconciler (pure), executed by the
/// engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Cmd override.
    pub cmd: Option<Vec<String>>,
    /// `NAME=value` pairs (secret values included: never log this field).
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Exposed container ports (`8000/tcp`).
    pub exposed_ports: Vec<String>,
    /// Host-published ports.
    pub published_ports: Vec<PublishedPort>,
    /// Volumes.
    pub volumes: Vec<VolumeBinding>,
    /// Docker network names to join, the first at create time, the rest before start.
    pub networks: Vec<String>,
    /// Network aliases on every network (the service name). Not given at creation: a container
    /// gets them when it is ready (see `reconcile::rotation`).
    pub aliases: Vec<String>,
    /// HEALTHCHECK for `exec` checks; `None` keeps the image's own.
    pub healthcheck: Option<ExecHealthcheck>,
    /// `user[:group]`.
    pub user: Option<String>,
    /// Run Docker's init as PID 1.
    pub init: bool,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: bool,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_timeout: Duration,
    /// Nano-CPUs limit.
    pub nano_cpus: Option<u64>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// Memory reservation in bytes.
    pub memory_reservation: Option<u64>,
    /// Files to copy in before start.
    pub files: Vec<ContainerFile>,
}

/// A network to ensure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Docker network name (`<stack>_<name>`).
    pub name: String,
    /// `--internal`.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A volume to ensure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Docker volume name (`<stack>_<name>`).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// An existing volume of that name is used even without the stack's labels (`adopt: true`),
    /// unless another meme-controller stack owns it.
    pub adopt: bool,
}

/// What happened to a container, from the event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineEvent {
    /// `start`, `die`, `stop`, `destroy`, `health_status: healthy`, ...
    pub action: String,
    /// Container id.
    pub id: String,
    /// The container's labels, as the event carries them.
    pub labels: BTreeMap<String, String>,
}

/// What a command run inside a container did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its exit code (`None` when the engine did not report one).
    pub exit_code: Option<i64>,
    /// The tail of what it printed (stdout and stderr).
    pub output: String,
}

/// How a container came back onto a network after [`Engine::rejoin_network`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejoined {
    /// With the address it had: connections it holds survive.
    SameAddress,
    /// With another address (the network does not allow pinning one, or the old one was
    /// taken): connections it held on that network are broken.
    NewAddress,
}

/// Registry credentials for a pull, from the Docker config file.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
    /// Registry address.
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The Docker engine, narrowed to what the controller does with it.
pub trait Engine: Send + Sync + 'static {
    /// Checks that the engine answers.
    fn ping(&self) -> BoxFuture<'_, EngineResult<()>>;

    /// All containers (running or not) carrying every `key=value` of `labels`.
    fn list_containers<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, EngineResult<Vec<ObservedContainer>>>;

    /// The local image id of a reference, `None` when the engine does not have it.
    fn image_id<'a>(&'a self, image: &'a str) -> BoxFuture<'a, EngineResult<Option<String>>>;

    /// Pulls an image.
    fn pull_image<'a>(&'a self, image: &'a str, auth: Option<RegistryAuth>) -> BoxFuture<'a, EngineResult<()>>;

    /// Creates the network unless a network of that name exists; an existing one must be the
    /// stack's ([`owned::check_network`]), else [`EngineError::Foreign`].
    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> BoxFuture<'a, EngineResult<()>>;

    /// Creates the volume unless a volume of that name exists; an existing one must be the
    /// stack's or adopted ([`owned::check_volume`]), else [`EngineError::Foreign`]. Never
    /// removes one.
    fn ensure_volume<'a>(&'a self, volume: &'a VolumeSpec) -> BoxFuture<'a, EngineResult<()>>;

    /// Creates a container (not started), joins its other networks and copies its files in;
    /// returns its id.
    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, EngineResult<String>>;

    /// Starts a container.
    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>>;

    /// Stops a container, waiting up to `grace` before SIGKILL.
    fn stop_container<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, EngineResult<()>>;

    /// Removes a container (and its anonymous volumes, never named ones).
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>>;

    /// The last `lines` lines of a container's output.
    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, EngineResult<String>>;

    /// The aliases of each network endpoint of a container (the list call does not report
    /// them; Docker's own short-id alias included).
    fn endpoint_aliases<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<BTreeMap<String, Vec<String>>>>;

    /// Takes a container off `network` and connects it again with exactly `aliases`, asking for
    /// the address `ipv4` it had, so that the TCP connections it holds survive. This is the only
    /// way to change an endpoint's aliases (Docker has no call for it); it takes ~100 ms.
    fn rejoin_network<'a>(
        &'a self,
        id: &'a str,
        network: &'a str,
        ipv4: Option<&'a str>,
        aliases: &'a [String],
    ) -> BoxFuture<'a, EngineResult<Rejoined>>;

    /// Runs a command in a running container and waits for it.
    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> BoxFuture<'a, EngineResult<ExecOutput>>;

    /// Sends a signal (`SIGHUP`, ...) to a container's main process.
    fn signal<'a>(&'a self, id: &'a str, signal: &'a str) -> BoxFuture<'a, EngineResult<()>>;

    /// Copies files into a container, running or not.
    fn copy_files<'a>(&'a self, id: &'a str, files: &'a [ContainerFile]) -> BoxFuture<'a, EngineResult<()>>;

    /// Container events for containers carrying every label of `labels`, limited to start,
    /// die, stop, destroy and health_status.
    fn events(&self, labels: &[(String, String)]) -> EventStream;
}
