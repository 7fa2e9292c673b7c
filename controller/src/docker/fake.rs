//! An in-memory [`Engine`] for tests, so that reconcile, apply and the controller loop can be
//! driven without a Docker engine (feature `fake-engine`; release builds do not carry it).
//!
//! Everything is plain data in one [`FakeState`] behind one lock: containers (labels, state,
//! health, addresses, created time, the spec they came from), networks with their endpoints and
//! aliases, volumes, local images and a "registry" of images a pull finds. On top of that:
//! - scripted faults per [`Call`]: [`FakeEngine::fail_next`], [`FakeEngine::fail`],
//!   [`FakeEngine::delay`], [`FakeEngine::hang`] (until [`FakeEngine::heal`]);
//! - a call log ([`FakeEngine::calls`]) of what the controller asked, in order;
//! - an event stream fed by the fake's own mutations (start, die, stop, destroy,
//!   health_status), like the filtered stream [`Engine::events`] promises;
//! - helpers that change containers behind the controller's back, as an operator or a crash
//!   would ([`FakeEngine::kill`], [`FakeEngine::set_health`], [`FakeEngine::remove_outside`]).
//!
//! The fake follows [`super::bollard::BollardEngine`]'s contract: stopping a stopped or missing
//! container succeeds, removal forces, a create names its missing network or image.
//!
//! To add an engine call: a [`Call`] variant, a `self.enter(Call::X, target).await?` first line
//! (which logs the call and plays its faults), then the effect on [`FakeState`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, watch};

use super::{
    BoxFuture, ContainerFile, ContainerSpec, ContainerState, DockerHealth, Engine, EngineError, EngineEvent,
    EngineResult, EventStream, ExecOutput, NetworkSpec, ObservedContainer, RegistryAuth, Rejoined, VolumeSpec,
};

/// Events buffered per subscriber; a test that lets more pile up sees the stream fail (and the
/// controller reconnect), as it would after an engine hiccup.
const EVENT_BUFFER: usize = 4096;

/// One kind of engine call, to script faults and read the call log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Call {
    /// [`Engine::ping`].
    Ping,
    /// [`Engine::list_containers`].
    List,
    /// [`Engine::image_id`].
    ImageId,
    /// [`Engine::pull_image`].
    Pull,
    /// [`Engine::ensure_network`].
    EnsureNetwork,
    /// [`Engine::ensure_volume`].
    EnsureVolume,
    /// [`Engine::create_container`].
    Create,
    /// [`Engine::start_container`].
    Start,
    /// [`Engine::stop_container`].
    Stop,
    /// [`Engine::remove_container`].
    Remove,
    /// [`Engine::logs_tail`].
    Logs,
    /// [`Engine::events`] (a fault applies when the stream is opened).
    Events,
    /// [`Engine::endpoint_aliases`].
    Aliases,
    /// [`Engine::rejoin_network`].
    Rejoin,
    /// [`Engine::exec`].
    Exec,
    /// [`Engine::signal`].
    Signal,
    /// [`Engine::copy_files`].
    CopyFiles,
}

/// What a scripted call does before (or instead of) its effect.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Fails with this error; nothing changes.
    Fail(EngineError),
    /// Waits this long, then does its work.
    Delay(Duration),
    /// Waits until [`FakeEngine::heal`] releases it (or the caller gives up), then does its
    /// work.
    Hang,
}

/// One call the controller made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Which call.
    pub call: Call,
    /// What it was about: a container id or name, an image, a network or volume name, or the
    /// list filter as `key=value,...`.
    pub target: String,
}

/// A container as the fake keeps it.
#[derive(Clone, Debug)]
pub struct FakeContainer {
    /// What the list call returns for it (kept up to date by every change).
    pub observed: ObservedContainer,
    /// The spec it was created from (env with secret values included, as Docker has it).
    pub spec: ContainerSpec,
    /// Its output, for [`Engine::logs_tail`].
    pub logs: String,
}

/// A network's endpoint for one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeEndpoint {
    /// The container's address on the network.
    pub ip: String,
    /// The names it answers to on the network.
    pub aliases: Vec<String>,
}

/// A network as the fake keeps it.
#[derive(Clone, Debug)]
pub struct FakeNetwork {
    /// How it was created.
    pub spec: NetworkSpec,
    /// Endpoints by container id.
    pub endpoints: BTreeMap<String, FakeEndpoint>,
}

/// An image as the fake keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeImage {
    /// Its id (`sha256:...`).
    pub id: String,
    /// Whether it has a HEALTHCHECK: its containers start with health `starting` and become
    /// healthy only when a test says so ([`FakeEngine::set_health`]).
    pub healthcheck: bool,
}

impl FakeImage {
    /// An image without a HEALTHCHECK, its id derived from the reference.
    #[must_use]
    pub fn plain(reference: &str) -> Self {
        Self { id: image_id_of(reference), healthcheck: false }
    }
}

/// A persistent or one-shot fault of one call kind.
#[derive(Clone, Debug)]
struct Script {
    fault: Fault,
    /// Played once, before any persistent fault of the same call.
    once: bool,
}

/// Everything the fake engine holds. Public, plain data: tests read it and may change it
/// through [`FakeEngine::with_state`] (such changes emit no events).
#[derive(Debug, Default)]
pub struct FakeState {
    /// Containers by id.
    pub containers: BTreeMap<String, FakeContainer>,
    /// Networks by name.
    pub networks: BTreeMap<String, FakeNetwork>,
    /// Volumes by name.
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// Images on the engine, by reference.
    pub images: BTreeMap<String, FakeImage>,
    /// What a pull finds, by reference; a reference not listed pulls as a plain image.
    pub registry: BTreeMap<String, FakeImage>,
    /// References a pull cannot find (`manifest unknown`).
    pub missing_from_registry: BTreeSet<String>,
    /// Calls made, oldest first.
    pub calls: Vec<CallRecord>,
    /// What [`Engine::exec`] answers (exit 0 and no output unless a test sets it).
    pub exec_output: Option<ExecOutput>,
    /// Calls waiting out a [`Fault::Delay`] or [`Fault::Hang`] now, and the most ever at once:
    /// how many calls the controller had in flight at the engine.
    pub in_flight: usize,
    /// The most calls ever in flight at once (see `in_flight`).
    pub peak_in_flight: usize,
    /// The address every new endpoint gets, when set (a test whose containers answer the
    /// controller's probes on a loopback listener); otherwise `10.x.0.y`.
    pub fixed_address: Option<String>,
    scripts: BTreeMap<Call, VecDeque<Script>>,
    next_id: u64,
}

impl FakeState {
    /// The id of a container given its id or name (as Docker accepts either).
    #[must_use]
    pub fn resolve(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_owned());
        }
        self.containers.values().find(|c| c.observed.name == id_or_name).map(|c| c.observed.id.clone())
    }

    fn take_fault(&mut self, call: Call) -> Option<Fault> {
        let scripts = self.scripts.get_mut(&call)?;
        if let Some(i) = scripts.iter().position(|s| s.once) {
            return scripts.remove(i).map(|s| s.fault);
        }
        scripts.front().map(|s| s.fault.clone())
    }

    fn is_hung(&self, call: Call) -> bool {
        self.scripts.get(&call).is_some_and(|s| s.iter().any(|s| matches!(s.fault, Fault::Hang)))
    }
}

/// The in-memory engine. Cheap to share: wrap it in an `Arc` and keep a clone for the test.
#[derive(Debug)]
pub struct FakeEngine {
    state: Mutex<FakeState>,
    events: broadcast::Sender<EngineEvent>,
    /// Bumped by [`FakeEngine::heal`]: hung calls look again whether they may go on.
    healed: watch::Sender<u64>,
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeEngine {
    /// An empty engine: no containers, networks, volumes or images; every pull succeeds.
    #[must_use]
    pub fn new() -> Self {
        Self { state: Mutex::default(), events: broadcast::channel(EVENT_BUFFER).0, healed: watch::channel(0).0 }
    }

    /// Locks the state (a test that panicked while holding it does not poison later ones).
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads or changes the state directly. Changes made here emit no events.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut FakeState) -> T) -> T {
        f(&mut self.lock())
    }

    // ---- scripting -------------------------------------------------------------------------

    /// The next `call` fails with `error` (once).
    pub fn fail_next(&self, call: Call, error: EngineError) {
        self.script(call, Fault::Fail(error), true);
    }

    /// Every `call` fails with `error` until [`FakeEngine::heal`].
    pub fn fail(&self, call: Call, error: EngineError) {
        self.script(call, Fault::Fail(error), false);
    }

    /// Every `call` waits `delay` before doing its work, until [`FakeEngine::heal`].
    pub fn delay(&self, call: Call, delay: Duration) {
        self.script(call, Fault::Delay(delay), false);
    }

    /// Every `call` hangs until [`FakeEngine::heal`] (then it does its work) or its caller
    /// gives up.
    pub fn hang(&self, call: Call) {
        self.script(call, Fault::Hang, false);
    }

    /// Removes every fault of `call` and releases its hung calls.
    pub fn heal(&self, call: Call) {
        self.lock().scripts.remove(&call);
        self.healed.send_modify(|n| *n += 1);
    }

    /// Removes every fault and releases every hung call.
    pub fn heal_all(&self) {
        self.lock().scripts.clear();
        self.healed.send_modify(|n| *n += 1);
    }

    fn script(&self, call: Call, fault: Fault, once: bool) {
        self.lock().scripts.entry(call).or_default().push_back(Script { fault, once });
    }

    /// Logs a call and plays its fault: the first line of every engine method.
    async fn enter(&self, call: Call, target: String) -> EngineResult<()> {
        let fault = {
            let mut state = self.lock();
            state.calls.push(CallRecord { call, target });
            state.take_fault(call)
        };
        match fault {
            None => Ok(()),
            Some(Fault::Fail(error)) => Err(error),
            Some(Fault::Delay(delay)) => {
                let _in_flight = InFlight::enter(self);
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Some(Fault::Hang) => {
                let _in_flight = InFlight::enter(self);
                let mut healed = self.healed.subscribe();
                while self.lock().is_hung(call) {
                    if healed.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                Ok(())
            }
        }
    }

    // ---- the call log ----------------------------------------------------------------------

    /// The most calls that were ever in flight at once (only delayed or hung calls take time).
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        self.lock().peak_in_flight
    }

    /// Every call made so far, oldest first.
    #[must_use]
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    /// How many calls of one kind were made.
    #[must_use]
    pub fn count(&self, call: Call) -> usize {
        self.lock().calls.iter().filter(|c| c.call == call).count()
    }

    /// Forgets the calls made so far.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    // ---- fixtures and outside changes --------------------------------------------------------

    /// Puts an image on the engine, as if built or pulled before.
    pub fn add_image(&self, reference: &str, image: FakeImage) {
        self.lock().images.insert(reference.to_owned(), image);
    }

    /// Makes a pull of `reference` find `image`.
    pub fn publish(&self, reference: &str, image: FakeImage) {
        let mut state = self.lock();
        state.missing_from_registry.remove(reference);
        state.registry.insert(reference.to_owned(), image);
    }

    /// Makes a pull of `reference` fail with `manifest unknown`.
    pub fn unpublish(&self, reference: &str) {
        let mut state = self.lock();
        state.registry.remove(reference);
        state.missing_from_registry.insert(reference.to_owned());
    }

    /// A container by id or name.
    #[must_use]
    pub fn container(&self, id_or_name: &str) -> Option<FakeContainer> {
        let state = self.lock();
        state.resolve(id_or_name).and_then(|id| state.containers.get(&id).cloned())
    }

    /// Every container carrying `key=value`, oldest first.
    #[must_use]
    pub fn containers_with(&self, key: &str, value: &str) -> Vec<ObservedContainer> {
        let mut found: Vec<ObservedContainer> = self
            .lock()
            .containers
            .values()
            .filter(|c| c.observed.label(key) == Some(value))
            .map(|c| c.observed.clone())
            .collect();
        found.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        found
    }

    /// The container's process exits with `exit_code` (a crash, or `docker kill`): a `die`
    /// event. Unknown containers are ignored.
    pub fn kill(&self, id_or_name: &str, exit_code: i64) {
        let event = self.with_container(id_or_name, |c| {
            if !c.observed.is_running() {
                return None;
            }
            c.observed.state = ContainerState::Exited;
            c.observed.exit_code = Some(exit_code);
            c.observed.health = None;
            c.observed.status = status_text(&c.observed);
            Some(vec![event_of(c, "die")])
        });
        self.emit_all(event);
    }

    /// Sets Docker's health of a running container: a `health_status: ...` event when it
    /// changes.
    pub fn set_health(&self, id_or_name: &str, health: DockerHealth) {
        let event = self.with_container(id_or_name, |c| {
            if !c.observed.is_running() || c.observed.health == Some(health) {
                return None;
            }
            c.observed.health = Some(health);
            c.observed.status = status_text(&c.observed);
            Some(vec![event_of(c, &format!("health_status: {}", health_word(health)))])
        });
        self.emit_all(event);
    }

    /// The container's HEALTHCHECK starts failing.
    pub fn make_unhealthy(&self, id_or_name: &str) {
        self.set_health(id_or_name, DockerHealth::Unhealthy);
    }

    /// `docker stop` by someone else: `die` and `stop` events.
    pub fn stop_outside(&self, id_or_name: &str) {
        let events = self.with_container(id_or_name, |c| stop(c, 0));
        self.emit_all(events);
    }

    /// `docker rm -f` by someone else: `die` (when running) and `destroy` events.
    pub fn remove_outside(&self, id_or_name: &str) {
        let events = {
            let mut state = self.lock();
            state.resolve(id_or_name).map(|id| remove(&mut state, &id))
        };
        self.emit_all(events);
    }

    /// `docker network disconnect` by someone else, or what a crash between the disconnect and
    /// the connect of a rotation move leaves: the container is off `network`.
    pub fn disconnect_outside(&self, id_or_name: &str, network: &str) {
        let mut state = self.lock();
        let Some(key) = state.resolve(id_or_name) else { return };
        if let Some(net) = state.networks.get_mut(network) {
            net.endpoints.remove(&key);
        }
        if let Some(c) = state.containers.get_mut(&key) {
            c.observed.networks.retain(|n| n != network);
            c.observed.addresses.remove(network);
        }
    }

    /// Replaces a container's output.
    pub fn set_logs(&self, id_or_name: &str, logs: &str) {
        self.with_container(id_or_name, |c| {
            c.logs = logs.to_owned();
            None
        });
    }

    /// Sends an event as the engine would (for events the fake does not make itself).
    pub fn emit(&self, event: EngineEvent) {
        // No subscriber is not an error: nobody is watching yet.
        let _ = self.events.send(event);
    }

    fn with_container(
        &self,
        id_or_name: &str,
        f: impl FnOnce(&mut FakeContainer) -> Option<Vec<EngineEvent>>,
    ) -> Option<Vec<EngineEvent>> {
        let mut state = self.lock();
        let id = state.resolve(id_or_name)?;
        state.containers.get_mut(&id).and_then(f)
    }

    fn emit_all(&self, events: Option<Vec<EngineEvent>>) {
        for event in events.into_iter().flatten() {
            self.emit(event);
        }
    }
}

/// A call in flight for the [`FakeState::in_flight`] count, until dropped (done or given up).
struct InFlight<'a>(&'a FakeEngine);

impl<'a> InFlight<'a> {
    fn enter(engine: &'a FakeEngine) -> Self {
        let mut state = engine.lock();
        state.in_flight += 1;
        state.peak_in_flight = state.peak_in_flight.max(state.in_flight);
        Self(engine)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

impl Engine for FakeEngine {
    fn ping(&self) -> BoxFuture<'_, EngineResult<()>> {
        Box::pin(self.enter(Call::Ping, String::new()))
    }

    fn list_containers<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, EngineResult<Vec<ObservedContainer>>> {
        Box::pin(async move {
            let filter = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            self.enter(Call::List, filter).await?;
            let state = self.lock();
            let mut found: Vec<ObservedContainer> = state
                .containers
                .values()
                .filter(|c| labels.iter().all(|(k, v)| c.observed.label(k) == Some(v.as_str())))
                .map(|c| c.observed.clone())
                .collect();
            // Newest first, as Docker lists them.
            found.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.id.cmp(&a.id)));
            Ok(found)
        })
    }

    fn image_id<'a>(&'a self, image: &'a str) -> BoxFuture<'a, EngineResult<Option<String>>> {
        Box::pin(async move {
            self.enter(Call::ImageId, image.to_owned()).await?;
            Ok(self.lock().images.get(image).map(|i| i.id.clone()))
        })
    }

    fn pull_image<'a>(&'a self, image: &'a str, _auth: Option<RegistryAuth>) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::Pull, image.to_owned()).await?;
            let mut state = self.lock();
            if state.missing_from_registry.contains(image) {
                return Err(EngineError::Pull {
                    image: image.to_owned(),
                    message: format!("manifest for {image} not found: manifest unknown"),
                });
            }
            let found = state.registry.get(image).cloned().unwrap_or_else(|| FakeImage::plain(image));
            state.images.insert(image.to_owned(), found);
            Ok(())
        })
    }

    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::EnsureNetwork, network.name.clone()).await?;
            let mut state = self.lock();
            if let Some(found) = state.networks.get(&network.name) {
                return super::owned::check_network(&network.name, &found.spec.labels, &network.labels);
            }
            state
                .networks
                .insert(network.name.clone(), FakeNetwork { spec: network.clone(), endpoints: BTreeMap::new() });
            Ok(())
        })
    }

    fn ensure_volume<'a>(&'a self, volume: &'a VolumeSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::EnsureVolume, volume.name.clone()).await?;
            let mut state = self.lock();
            if let Some(found) = state.volumes.get(&volume.name) {
                return super::owned::check_volume(&volume.name, &found.labels, &volume.labels, volume.adopt);
            }
            state.volumes.insert(volume.name.clone(), volume.clone());
            Ok(())
        })
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(async move {
            self.enter(Call::Create, spec.name.clone()).await?;
            let mut state = self.lock();
            if spec.read_only_root_filesystem && !spec.files.is_empty() {
                return Err(EngineError::Other {
                    message: format!(
                        "container {}: files cannot be copied into a read-only root filesystem",
                        spec.name
                    ),
                });
            }
            if let Some(missing) = spec.networks.iter().find(|n| !state.networks.contains_key(n.as_str())) {
                return Err(EngineError::NotFound { what: format!("network {missing}") });
            }
            let Some(image) = state.images.get(&spec.image).cloned() else {
                return Err(EngineError::NotFound { what: format!("image {}", spec.image) });
            };
            if state.containers.values().any(|c| c.observed.name == spec.name) {
                return Err(EngineError::Conflict {
                    message: format!("container {}: the container name is already in use", spec.name),
                });
            }
            // Docker creates a missing named volume on the fly, without labels.
            for binding in &spec.volumes {
                state.volumes.entry(binding.volume.clone()).or_insert_with(|| VolumeSpec {
                    name: binding.volume.clone(),
                    labels: BTreeMap::new(),
                    adopt: false,
                });
            }
            state.next_id += 1;
            let id = format!("fake{:060x}", state.next_id);
            let mut addresses = BTreeMap::new();
            let fixed = state.fixed_address.clone();
            for network in &spec.networks {
                let net = state.networks.get_mut(network).expect("checked above");
                let ip = fixed.clone().unwrap_or_else(|| {
                    format!("10.{}.0.{}", 1 + net.endpoints.len() / 250, 2 + net.endpoints.len() % 250)
                });
                // As the real adapter does: no alias until the container is admitted.
                let aliases = if spec.published_ports.is_empty() { Vec::new() } else { spec.aliases.clone() };
                net.endpoints.insert(id.clone(), FakeEndpoint { ip: ip.clone(), aliases });
                addresses.insert(network.clone(), ip);
            }
            let mut observed = ObservedContainer {
                id: id.clone(),
                name: spec.name.clone(),
                labels: spec.labels.clone(),
                state: ContainerState::Created,
                status: String::new(),
                // Docker only reports health once started.
                health: None,
                exit_code: None,
                created: SystemTime::now(),
                image_id: image.id,
                image: spec.image.clone(),
                networks: spec.networks.clone(),
                publishes_ports: !spec.published_ports.is_empty(),
                addresses,
            };
            observed.status = status_text(&observed);
            state.containers.insert(id.clone(), FakeContainer { observed, spec: spec.clone(), logs: String::new() });
            Ok(id)
        })
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::Start, id.to_owned()).await?;
            let events = {
                let mut state = self.lock();
                let Some(key) = state.resolve(id) else {
                    return Err(EngineError::NotFound { what: format!("container {id}") });
                };
                let healthcheck = {
                    let c = &state.containers[&key];
                    c.spec.healthcheck.is_some() || state.images.get(&c.spec.image).is_some_and(|i| i.healthcheck)
                };
                let c = state.containers.get_mut(&key).expect("resolved above");
                if c.observed.is_running() {
                    // 304: already started.
                    return Ok(());
                }
                c.observed.state = ContainerState::Running;
                c.observed.exit_code = None;
                c.observed.health = healthcheck.then_some(DockerHealth::Starting);
                c.observed.status = status_text(&c.observed);
                vec![event_of(c, "start")]
            };
            self.emit_all(Some(events));
            Ok(())
        })
    }

    fn stop_container<'a>(&'a self, id: &'a str, _grace: Duration) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::Stop, id.to_owned()).await?;
            // A stopped or missing container is stopped: success, as with the real engine.
            let events = self.with_container(id, |c| stop(c, 0));
            self.emit_all(events);
            Ok(())
        })
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::Remove, id.to_owned()).await?;
            // Forced; a missing container is removed already.
            let events = {
                let mut state = self.lock();
                state.resolve(id).map(|key| remove(&mut state, &key))
            };
            self.emit_all(events);
            Ok(())
        })
    }

    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(async move {
            self.enter(Call::Logs, id.to_owned()).await?;
            let state = self.lock();
            let Some(c) = state.resolve(id).and_then(|key| state.containers.get(&key)) else {
                return Err(EngineError::NotFound { what: format!("container {id}") });
            };
            let all: Vec<&str> = c.logs.lines().collect();
            let mut tail = all[all.len().saturating_sub(lines)..].join("\n");
            if !tail.is_empty() {
                tail.push('\n');
            }
            Ok(tail)
        })
    }

    fn endpoint_aliases<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<BTreeMap<String, Vec<String>>>> {
        Box::pin(async move {
            self.enter(Call::Aliases, id.to_owned()).await?;
            let state = self.lock();
            let Some(key) = state.resolve(id) else {
                return Err(EngineError::NotFound { what: format!("container {id}") });
            };
            Ok(state
                .networks
                .iter()
                .filter_map(|(name, n)| n.endpoints.get(&key).map(|e| (name.clone(), e.aliases.clone())))
                .collect())
        })
    }

    fn rejoin_network<'a>(
        &'a self,
        id: &'a str,
        network: &'a str,
        _ipv4: Option<&'a str>,
        aliases: &'a [String],
    ) -> BoxFuture<'a, EngineResult<Rejoined>> {
        Box::pin(async move {
            self.enter(Call::Rejoin, format!("{id} {network} {}", aliases.join(","))).await?;
            let mut state = self.lock();
            let Some(key) = state.resolve(id) else {
                return Err(EngineError::NotFound { what: format!("container {id}") });
            };
            let Some(net) = state.networks.get_mut(network) else {
                return Err(EngineError::NotFound { what: format!("network {network}") });
            };
            // Networks the fake makes always keep addresses (as the controller's pinned ones do);
            // a container that was off the network gets a new one.
            let count = net.endpoints.len();
            let endpoint = net.endpoints.entry(key.clone()).or_insert_with(|| FakeEndpoint {
                ip: format!("10.{}.0.{}", 1 + count / 250, 2 + count % 250),
                aliases: Vec::new(),
            });
            endpoint.aliases = aliases.to_vec();
            let ip = endpoint.ip.clone();
            if let Some(c) = state.containers.get_mut(&key)
                && !c.observed.networks.iter().any(|n| n == network)
            {
                c.observed.networks.push(network.to_owned());
                c.observed.addresses.insert(network.to_owned(), ip);
                return Ok(Rejoined::NewAddress);
            }
            Ok(Rejoined::SameAddress)
        })
    }

    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> BoxFuture<'a, EngineResult<ExecOutput>> {
        Box::pin(async move {
            self.enter(Call::Exec, format!("{id} {}", command.join(" "))).await?;
            let state = self.lock();
            if state.resolve(id).is_none() {
                return Err(EngineError::NotFound { what: format!("container {id}") });
            }
            Ok(state.exec_output.clone().unwrap_or(ExecOutput { exit_code: Some(0), output: String::new() }))
        })
    }

    fn signal<'a>(&'a self, id: &'a str, signal: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::Signal, format!("{id} {signal}")).await?;
            let state = self.lock();
            state.resolve(id).map(|_| ()).ok_or_else(|| EngineError::NotFound { what: format!("container {id}") })
        })
    }

    fn copy_files<'a>(&'a self, id: &'a str, files: &'a [ContainerFile]) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            self.enter(Call::CopyFiles, id.to_owned()).await?;
            let mut state = self.lock();
            let Some(key) = state.resolve(id) else {
                return Err(EngineError::NotFound { what: format!("container {id}") });
            };
            let c = state.containers.get_mut(&key).expect("resolved above");
            for file in files {
                c.spec.files.retain(|f| f.path != file.path);
                c.spec.files.push(file.clone());
            }
            Ok(())
        })
    }

    fn events(&self, labels: &[(String, String)]) -> EventStream {
        // Subscribed now, so nothing that happens after this call is missed (the real engine's
        // stream replays from `since` = the call).
        let receiver = self.events.subscribe();
        let labels = labels.to_vec();
        let filter = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        // The open is logged now; its fault is played on the first poll, as the real request is
        // only sent then.
        let opened = {
            let mut state = self.lock();
            state.calls.push(CallRecord { call: Call::Events, target: filter });
            state.take_fault(Call::Events)
        };
        let healed = self.healed.subscribe();
        let stream = futures_util::stream::unfold(
            (receiver, labels, opened, healed, false),
            |(mut receiver, labels, opened, mut healed, failed)| async move {
                if failed {
                    return None;
                }
                match opened {
                    Some(Fault::Fail(error)) => return Some((Err(error), (receiver, labels, None, healed, true))),
                    Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
                    Some(Fault::Hang) => {
                        // Released by any heal: the stream holds no reference to the engine.
                        let _ = healed.changed().await;
                    }
                    None => {}
                }
                loop {
                    match receiver.recv().await {
                        Ok(event) => {
                            if labels.iter().all(|(k, v)| event.labels.get(k) == Some(v)) {
                                return Some((Ok(event), (receiver, labels, None, healed, false)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            let error =
                                EngineError::Unavailable { message: format!("event stream: {missed} events missed") };
                            return Some((Err(error), (receiver, labels, None, healed, true)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        Box::pin(stream)
    }
}

/// Stops a container: `die` and `stop` events when it ran.
fn stop(c: &mut FakeContainer, exit_code: i64) -> Option<Vec<EngineEvent>> {
    if !c.observed.is_running() {
        return None;
    }
    c.observed.state = ContainerState::Exited;
    c.observed.exit_code = Some(exit_code);
    c.observed.health = None;
    c.observed.status = status_text(&c.observed);
    Some(vec![event_of(c, "die"), event_of(c, "stop")])
}

/// Removes a container and its endpoints: `die` (when it ran) and `destroy` events.
fn remove(state: &mut FakeState, id: &str) -> Vec<EngineEvent> {
    let Some(mut c) = state.containers.remove(id) else { return Vec::new() };
    for network in state.networks.values_mut() {
        network.endpoints.remove(id);
    }
    let mut events = stop(&mut c, 137).unwrap_or_default();
    events.retain(|e| e.action == "die");
    events.push(event_of(&c, "destroy"));
    events
}

fn event_of(c: &FakeContainer, action: &str) -> EngineEvent {
    EngineEvent { action: action.to_owned(), id: c.observed.id.clone(), labels: c.observed.labels.clone() }
}

fn health_word(health: DockerHealth) -> &'static str {
    match health {
        DockerHealth::Starting => "starting",
        DockerHealth::Healthy => "healthy",
        DockerHealth::Unhealthy => "unhealthy",
    }
}

/// Docker's status text, which the real list call is parsed from.
fn status_text(c: &ObservedContainer) -> String {
    match c.state {
        ContainerState::Running => match c.health {
            Some(DockerHealth::Starting) => "Up 1 second (health: starting)".to_owned(),
            Some(h) => format!("Up 1 second ({})", health_word(h)),
            None => "Up 1 second".to_owned(),
        },
        ContainerState::Exited => format!("Exited ({}) 1 second ago", c.exit_code.unwrap_or(0)),
        ContainerState::Created => "Created".to_owned(),
        ContainerState::Paused => "Up 1 second (Paused)".to_owned(),
        ContainerState::Restarting => format!("Restarting ({}) 1 second ago", c.exit_code.unwrap_or(0)),
        ContainerState::Removing => "Removal In Progress".to_owned(),
        ContainerState::Dead => "Dead".to_owned(),
    }
}

/// A stable fake image id for a reference.
fn image_id_of(reference: &str) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(reference.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::Arc;
    use std::time::Instant;

    fn spec(name: &str, service: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.to_owned(),
            image: "app:1".to_owned(),
            entrypoint: None,
            cmd: None,
            env: vec!["TOKEN=s3cret".to_owned()],
            labels: BTreeMap::from([("svc".to_owned(), service.to_owned())]),
            exposed_ports: Vec::new(),
            published_ports: Vec::new(),
            volumes: Vec::new(),
            networks: vec!["s_default".to_owned()],
            aliases: vec![service.to_owned()],
            healthcheck: None,
            user: None,
            init: false,
            read_only_root_filesystem: false,
            stop_timeout: Duration::from_secs(1),
            nano_cpus: None,
            memory: None,
            memory_reservation: None,
            files: Vec::new(),
        }
    }

    fn network(name: &str) -> NetworkSpec {
        NetworkSpec { name: name.to_owned(), internal: false, labels: BTreeMap::new() }
    }

    async fn next_action(stream: &mut EventStream) -> String {
        let event = tokio::time::timeout(Duration::from_secs(1), stream.next()).await.expect("an event within 1s");
        event.expect("stream open").expect("no stream error").action
    }

    #[tokio::test]
    async fn fake_should_run_containers_and_stream_its_own_changes() {
        let fake = FakeEngine::new();
        let mut events = fake.events(&[("svc".to_owned(), "web".to_owned())]);
        fake.pull_image("app:1", None).await.unwrap();
        fake.ensure_network(&network("s_default")).await.unwrap();
        let id = fake.create_container(&spec("s-web-1", "web")).await.unwrap();
        fake.create_container(&spec("s-db-1", "db")).await.unwrap();
        fake.start_container(&id).await.unwrap();
        assert_eq!(next_action(&mut events).await, "start", "events of other services are filtered out");

        let listed = fake.list_containers(&[("svc".to_owned(), "web".to_owned())]).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].is_running());
        assert_eq!(listed[0].addresses["s_default"], "10.1.0.2");
        assert_eq!(listed[0].image_id, fake.image_id("app:1").await.unwrap().unwrap());
        let aliases = fake.with_state(|s| s.networks["s_default"].endpoints[&id].aliases.clone());
        assert!(aliases.is_empty(), "no alias before it is admitted");
        fake.rejoin_network(&id, "s_default", Some("10.1.0.2"), &["web".to_owned()]).await.unwrap();
        assert_eq!(fake.endpoint_aliases(&id).await.unwrap()["s_default"], ["web"]);

        fake.set_health("s-web-1", DockerHealth::Unhealthy);
        assert_eq!(next_action(&mut events).await, "health_status: unhealthy");
        assert_eq!(fake.container(&id).unwrap().observed.status, "Up 1 second (unhealthy)");
        fake.kill(&id, 137);
        assert_eq!(next_action(&mut events).await, "die");
        assert_eq!(fake.container(&id).unwrap().observed.exit_code, Some(137));
        fake.start_container(&id).await.unwrap();
        assert_eq!(next_action(&mut events).await, "start");
        fake.stop_container(&id, Duration::from_secs(1)).await.unwrap();
        assert_eq!(next_action(&mut events).await, "die");
        assert_eq!(next_action(&mut events).await, "stop");
        fake.remove_container(&id).await.unwrap();
        assert_eq!(next_action(&mut events).await, "destroy");
        assert!(!fake.with_state(|s| s.networks["s_default"].endpoints.contains_key(&id)), "its endpoint goes");

        let calls: Vec<Call> = fake.calls().iter().map(|c| c.call).collect();
        assert_eq!(calls[..4], [Call::Events, Call::Pull, Call::EnsureNetwork, Call::Create]);
        assert_eq!(fake.count(Call::Start), 2);
    }

    #[tokio::test]
    async fn fake_should_keep_the_real_engines_contract() {
        let fake = FakeEngine::new();
        let err = fake.create_container(&spec("a", "web")).await.unwrap_err();
        assert!(matches!(&err, EngineError::NotFound { what } if what == "network s_default"), "{err}");
        fake.ensure_network(&network("s_default")).await.unwrap();
        let err = fake.create_container(&spec("a", "web")).await.unwrap_err();
        assert!(matches!(&err, EngineError::NotFound { what } if what == "image app:1"), "{err}");
        fake.add_image("app:1", FakeImage::plain("app:1"));
        fake.create_container(&spec("a", "web")).await.unwrap();
        let err = fake.create_container(&spec("a", "web")).await.unwrap_err();
        assert!(matches!(err, EngineError::Conflict { .. }), "{err}");
        // Stopping or removing what is gone succeeds; starting it does not.
        fake.stop_container("nope", Duration::ZERO).await.unwrap();
        fake.remove_container("nope").await.unwrap();
        assert!(matches!(fake.start_container("nope").await, Err(EngineError::NotFound { .. })));
        fake.unpublish("app:2");
        assert!(matches!(fake.pull_image("app:2", None).await, Err(EngineError::Pull { .. })));
        fake.publish("app:3", FakeImage { id: "sha256:3".into(), healthcheck: true });
        fake.pull_image("app:3", None).await.unwrap();
        let mut with_hc = spec("b", "web");
        with_hc.image = "app:3".into();
        let id = fake.create_container(&with_hc).await.unwrap();
        fake.start_container(&id).await.unwrap();
        assert_eq!(fake.container("b").unwrap().observed.health, Some(DockerHealth::Starting));
        fake.set_logs("b", "one\ntwo\nthree\n");
        assert_eq!(fake.logs_tail("b", 2).await.unwrap(), "two\nthree\n");
    }

    #[tokio::test]
    async fn fake_should_play_scripted_faults() {
        let fake = Arc::new(FakeEngine::new());
        let unavailable = EngineError::Unavailable { message: "boom".into() };
        fake.fail(Call::Ping, unavailable.clone());
        fake.fail_next(Call::Ping, EngineError::Other { message: "first".into() });
        assert!(matches!(fake.ping().await, Err(EngineError::Other { .. })), "the one-shot fault goes first");
        assert!(matches!(fake.ping().await, Err(EngineError::Unavailable { .. })));
        assert!(matches!(fake.ping().await, Err(EngineError::Unavailable { .. })), "until healed");
        fake.heal(Call::Ping);
        fake.ping().await.unwrap();

        fake.delay(Call::List, Duration::from_millis(100));
        let started = Instant::now();
        fake.list_containers(&[]).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));

        fake.hang(Call::Stop);
        let hung = tokio::spawn({
            let fake = Arc::clone(&fake);
            async move { fake.stop_container("x", Duration::ZERO).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!hung.is_finished(), "a hung call waits");
        fake.heal(Call::List);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!hung.is_finished(), "healing another call does not release it");
        fake.heal(Call::Stop);
        tokio::time::timeout(Duration::from_secs(1), hung).await.expect("released by heal").unwrap().unwrap();
        assert_eq!(fake.count(Call::Ping), 4);

        fake.fail_next(Call::Events, unavailable);
        let mut events = fake.events(&[]);
        assert!(matches!(events.next().await, Some(Err(EngineError::Unavailable { .. }))));
        assert!(events.next().await.is_none(), "a failed stream ends");
    }
}
