//! A bound on the engine calls in flight: [`BoundedEngine`] wraps any [`Engine`] and lets at
//! most [`FanOut::per_kind`] calls of each kind reach it at once; the others wait their turn in
//! order (a fair semaphore). Without it a reconcile sent every create of a plan at once: 4,217
//! concurrent engine connections were seen at `replicas: 100000` (issue 11), each a socket and a
//! goroutine in dockerd, with nothing gained: the engine serialises creates and network
//! attachments on its own locks.
//!
//! Three kinds, so that a queue of one never holds up the others: *reads* (ping, list,
//! inspect, logs: the drift check and `/readyz` must not wait behind a rollout's creates),
//! *changes* (ensure, create, start, remove, network moves, exec, signal, copy) and *waits*
//! (stop, which lasts the grace period, and pull, which lasts the download). The event
//! stream is one long-lived connection and is not counted. So the controller holds at most
//! `3 × per_kind` engine connections plus the event stream.
//!
//! Wrap the [`super::timeout::TimeoutEngine`] with this one, not the other way round: a call's
//! time limit then starts when it reaches the engine, not while it waits for its turn (a
//! hundred stops queued behind each other's grace periods are not a hung engine).
//!
//! The default is 16 per kind (`--max-engine-calls`); `meme-bench scale` measures the engine's
//! own parallel limit on a host against it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{
    BoxFuture, ContainerFile, ContainerSpec, Engine, EngineError, EngineResult, EventStream, ExecOutput, NetworkSpec,
    ObservedContainer, RegistryAuth, Rejoined, VolumeSpec,
};

/// How many calls of each kind may be in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FanOut {
    /// Calls of one kind (reads, changes, waits) in flight at once.
    pub per_kind: usize,
}

impl FanOut {
    /// The default bound (see the module comment for the measurement).
    pub const DEFAULT_PER_KIND: u16 = 16;
}

impl Default for FanOut {
    fn default() -> Self {
        Self { per_kind: usize::from(Self::DEFAULT_PER_KIND) }
    }
}

/// An [`Engine`] that lets at most [`FanOut::per_kind`] calls of each kind through at once.
pub struct BoundedEngine {
    inner: Arc<dyn Engine>,
    reads: Semaphore,
    changes: Semaphore,
    waits: Semaphore,
    bound: FanOut,
}

impl std::fmt::Debug for BoundedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedEngine").field("bound", &self.bound).finish_non_exhaustive()
    }
}

impl BoundedEngine {
    /// Wraps `inner`. A bound of 0 is taken as 1.
    #[must_use]
    pub fn new(inner: Arc<dyn Engine>, bound: FanOut) -> Self {
        let n = bound.per_kind.max(1);
        Self {
            inner,
            reads: Semaphore::new(n),
            changes: Semaphore::new(n),
            waits: Semaphore::new(n),
            bound: FanOut { per_kind: n },
        }
    }

    /// The bound in force.
    #[must_use]
    pub fn bound(&self) -> FanOut {
        self.bound
    }
}

/// Runs `call` once a permit of `kind` is free.
async fn bounded<T>(kind: &Semaphore, call: impl Future<Output = EngineResult<T>>) -> EngineResult<T> {
    // The semaphores are never closed; a closed one would mean the engine is being dropped.
    let Ok(_permit) = kind.acquire().await else {
        return Err(EngineError::Unavailable { message: "the engine client is shutting down".to_owned() });
    };
    call.await
}

impl Engine for BoundedEngine {
    fn ping(&self) -> BoxFuture<'_, EngineResult<()>> {
        Box::pin(bounded(&self.reads, self.inner.ping()))
    }

    fn list_containers<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, EngineResult<Vec<ObservedContainer>>> {
        Box::pin(bounded(&self.reads, self.inner.list_containers(labels)))
    }

    fn image_id<'a>(&'a self, image: &'a str) -> BoxFuture<'a, EngineResult<Option<String>>> {
        Box::pin(bounded(&self.reads, self.inner.image_id(image)))
    }

    fn pull_image<'a>(&'a self, image: &'a str, auth: Option<RegistryAuth>) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.waits, self.inner.pull_image(image, auth)))
    }

    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.changes, self.inner.ensure_network(network)))
    }

    fn ensure_volume<'a>(&'a self, volume: &'a VolumeSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.changes, self.inner.ensure_volume(volume)))
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(bounded(&self.changes, self.inner.create_container(spec)))
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.changes, self.inner.start_container(id)))
    }

    fn stop_container<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.waits, self.inner.stop_container(id, grace)))
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.changes, self.inner.remove_container(id)))
    }

    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(bounded(&self.reads, self.inner.logs_tail(id, lines)))
    }

    fn endpoint_aliases<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<BTreeMap<String, Vec<String>>>> {
        Box::pin(bounded(&self.reads, self.inner.endpoint_aliases(id)))
    }

    fn rejoin_network<'a>(
        &'a self,
        id: &'a str,
        network: &'a str,
        ipv4: Option<&'a str>,
        aliases: &'a [String],
    ) -> BoxFuture<'a, EngineResult<Rejoined>> {
        Box::pin(bounded(&self.changes, self.inner.rejoin_network(id, network, ipv4, aliases)))
    }

    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> BoxFuture<'a, EngineResult<ExecOutput>> {
        Box::pin(bounded(&self.changes, self.inner.exec(id, command)))
    }

    fn signal<'a>(&'a self, id: &'a str, signal: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.changes, self.inner.signal(id, signal)))
    }

    fn copy_files<'a>(&'a self, id: &'a str, files: &'a [ContainerFile]) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(bounded(&self.changes, self.inner.copy_files(id, files)))
    }

    fn events(&self, labels: &[(String, String)]) -> EventStream {
        self.inner.events(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::{Call, FakeEngine, FakeImage};

    fn spec(name: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.to_owned(),
            image: "app:1".to_owned(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            labels: BTreeMap::new(),
            exposed_ports: Vec::new(),
            published_ports: Vec::new(),
            volumes: Vec::new(),
            networks: Vec::new(),
            aliases: Vec::new(),
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

    #[tokio::test]
    async fn bounded_engine_should_let_at_most_the_bound_of_a_kind_through() {
        let fake = Arc::new(FakeEngine::new());
        fake.add_image("app:1", FakeImage::plain("app:1"));
        fake.delay(Call::Create, Duration::from_millis(10));
        let engine = BoundedEngine::new(Arc::clone(&fake) as Arc<dyn Engine>, FanOut { per_kind: 4 });
        let specs: Vec<ContainerSpec> = (0..40).map(|i| spec(&format!("c{i}"))).collect();
        let ids = futures_util::future::try_join_all(specs.iter().map(|s| engine.create_container(s))).await.unwrap();
        assert_eq!(ids.len(), 40);
        assert_eq!(fake.count(Call::Create), 40);
        assert_eq!(fake.peak_in_flight(), 4, "at most 4 creates reached the engine at once");
    }

    #[tokio::test]
    async fn bounded_engine_should_not_hold_up_a_read_behind_slow_stops() {
        let fake = Arc::new(FakeEngine::new());
        fake.delay(Call::Stop, Duration::from_millis(300));
        let engine = BoundedEngine::new(Arc::clone(&fake) as Arc<dyn Engine>, FanOut { per_kind: 2 });
        let ids = ["a", "b", "c", "d"];
        let stops = futures_util::future::join_all(ids.iter().map(|id| engine.stop_container(id, Duration::ZERO)));
        let list = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let started = std::time::Instant::now();
            engine.list_containers(&[]).await.unwrap();
            started.elapsed()
        };
        let (_, took) = tokio::join!(stops, list);
        assert!(took < Duration::from_millis(200), "a read waited for the stops: {took:?}");
        assert_eq!(fake.peak_in_flight(), 2);
    }
}
