//! Time limits that fit each engine call: [`TimeoutEngine`] wraps any [`Engine`] and gives up
//! on a call that takes longer than its kind should, with a transient
//! [`EngineError::Unavailable`] (the reconcile backs off and retries; `/readyz` says the engine
//! does not answer). The socket client's own timeout has to cover the longest call (a stop waits
//! out the grace period inside one request), so without this a hung engine held a reconcile for
//! 15 minutes.
//!
//! Measured on this project's CI host (Docker 20.10, idle engine, through the CLI so with its
//! overhead): list and image inspect ≤ 10 ms; create 50-70 ms, start 260-380 ms, remove
//! 40-160 ms; stop of a process that ignores SIGTERM = the grace period + 0.2 s.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use super::{
    BoxFuture, ContainerFile, ContainerSpec, Engine, EngineError, EngineResult, EventStream, ExecOutput, NetworkSpec,
    ObservedContainer, RegistryAuth, Rejoined, VolumeSpec,
};

/// How long each kind of call may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallTimeouts {
    /// Calls the engine answers from its own state: ping, list, image inspect, logs. Thousands
    /// of times what they take, and short enough that a hung engine is noticed within a resync.
    pub answer: Duration,
    /// Calls that change things: ensure a network or volume, create (with its network
    /// connects and file copy), start, remove.
    pub change: Duration,
    /// A stop may take the grace period it is given, plus this.
    pub stop_margin: Duration,
    /// A pull downloads layers: as long as a large image on a slow link needs.
    pub pull: Duration,
}

impl Default for CallTimeouts {
    fn default() -> Self {
        Self {
            answer: Duration::from_secs(20),
            change: Duration::from_secs(60),
            stop_margin: Duration::from_secs(30),
            pull: Duration::from_secs(15 * 60),
        }
    }
}

/// An [`Engine`] whose calls give up after their [`CallTimeouts`]. The event stream is long-lived
/// by design and passes through untouched.
pub struct TimeoutEngine {
    inner: Arc<dyn Engine>,
    limits: CallTimeouts,
}

impl std::fmt::Debug for TimeoutEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutEngine").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl TimeoutEngine {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn Engine>, limits: CallTimeouts) -> Self {
        Self { inner, limits }
    }
}

/// Runs `call`, or fails with [`EngineError::Unavailable`] naming it after `limit`.
async fn limited<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    call: impl Future<Output = EngineResult<T>>,
) -> EngineResult<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::Unavailable {
            message: format!("{}: no answer within {}", what(), humantime::format_duration(limit)),
        }),
    }
}

impl Engine for TimeoutEngine {
    fn ping(&self) -> BoxFuture<'_, EngineResult<()>> {
        Box::pin(limited(self.limits.answer, move || "ping".to_owned(), self.inner.ping()))
    }

    fn list_containers<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, EngineResult<Vec<ObservedContainer>>> {
        Box::pin(limited(self.limits.answer, move || "list containers".to_owned(), self.inner.list_containers(labels)))
    }

    fn image_id<'a>(&'a self, image: &'a str) -> BoxFuture<'a, EngineResult<Option<String>>> {
        Box::pin(limited(self.limits.answer, move || format!("inspect image {image}"), self.inner.image_id(image)))
    }

    fn pull_image<'a>(&'a self, image: &'a str, auth: Option<RegistryAuth>) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(self.limits.pull, move || format!("pull {image}"), self.inner.pull_image(image, auth)))
    }

    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(
            self.limits.change,
            move || format!("ensure network {}", network.name),
            self.inner.ensure_network(network),
        ))
    }

    fn ensure_volume<'a>(&'a self, volume: &'a VolumeSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(
            self.limits.change,
            move || format!("ensure volume {}", volume.name),
            self.inner.ensure_volume(volume),
        ))
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(limited(
            self.limits.change,
            move || format!("create container {}", spec.name),
            self.inner.create_container(spec),
        ))
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(self.limits.change, move || format!("start container {id}"), self.inner.start_container(id)))
    }

    fn stop_container<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(
            grace.saturating_add(self.limits.stop_margin),
            move || format!("stop container {id}"),
            self.inner.stop_container(id, grace),
        ))
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(self.limits.change, move || format!("remove container {id}"), self.inner.remove_container(id)))
    }

    fn endpoint_aliases<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<BTreeMap<String, Vec<String>>>> {
        Box::pin(limited(
            self.limits.answer,
            move || format!("inspect container {id}"),
            self.inner.endpoint_aliases(id),
        ))
    }

    fn rejoin_network<'a>(
        &'a self,
        id: &'a str,
        network: &'a str,
        ipv4: Option<&'a str>,
        aliases: &'a [String],
    ) -> BoxFuture<'a, EngineResult<Rejoined>> {
        Box::pin(limited(
            self.limits.change,
            move || format!("move container {id} on network {network}"),
            self.inner.rejoin_network(id, network, ipv4, aliases),
        ))
    }

    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> BoxFuture<'a, EngineResult<ExecOutput>> {
        // A reload command (caddy reload, nginx -s reload) answers in seconds.
        Box::pin(limited(self.limits.change, move || format!("exec in container {id}"), self.inner.exec(id, command)))
    }

    fn signal<'a>(&'a self, id: &'a str, signal: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(self.limits.change, move || format!("signal container {id}"), self.inner.signal(id, signal)))
    }

    fn copy_files<'a>(&'a self, id: &'a str, files: &'a [ContainerFile]) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(limited(
            self.limits.change,
            move || format!("copy files into container {id}"),
            self.inner.copy_files(id, files),
        ))
    }

    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(limited(
            self.limits.answer,
            move || format!("logs of container {id}"),
            self.inner.logs_tail(id, lines),
        ))
    }

    fn events(&self, labels: &[(String, String)]) -> EventStream {
        self.inner.events(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::{Call, FakeEngine};
    use std::time::Instant;

    fn short() -> CallTimeouts {
        CallTimeouts {
            answer: Duration::from_millis(100),
            change: Duration::from_millis(200),
            stop_margin: Duration::from_millis(100),
            pull: Duration::from_millis(300),
        }
    }

    fn engines() -> (Arc<FakeEngine>, TimeoutEngine) {
        let fake = Arc::new(FakeEngine::new());
        (Arc::clone(&fake), TimeoutEngine::new(fake, short()))
    }

    #[tokio::test]
    async fn timeout_engine_should_give_up_on_a_hung_call_with_a_transient_error() {
        let (fake, engine) = engines();
        fake.hang(Call::List);
        let started = Instant::now();
        let err = engine.list_containers(&[]).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(&err, EngineError::Unavailable { message } if message == "list containers: no answer within 100ms"),
            "{err}"
        );
        assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(1), "{took:?}");
        fake.heal(Call::List);
        assert!(engine.list_containers(&[]).await.unwrap().is_empty(), "a healed engine answers again");
    }

    #[tokio::test]
    async fn timeout_engine_should_let_a_stop_take_its_grace_period() {
        let (fake, engine) = engines();
        // 250 ms: longer than any limit but the stop's own (grace 200 ms + margin 100 ms).
        fake.delay(Call::Stop, Duration::from_millis(250));
        engine.stop_container("web", Duration::from_millis(200)).await.unwrap();
        let err = engine.stop_container("web", Duration::ZERO).await.unwrap_err();
        assert!(
            matches!(&err, EngineError::Unavailable { message } if message.starts_with("stop container web")),
            "{err}"
        );
        fake.delay(Call::Pull, Duration::from_millis(250));
        engine.pull_image("app:1", None).await.unwrap();
        fake.delay(Call::ImageId, Duration::from_millis(250));
        assert!(engine.image_id("app:1").await.is_err(), "an inspect is not a pull");
    }
}
