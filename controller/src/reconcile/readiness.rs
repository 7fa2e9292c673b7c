//! Readiness of containers: the controller's own `httpGet`/`tcpSocket` probes against the
//! container's address (as the kubelet does, so images need no curl), Docker health for
//! `exec` checks and image HEALTHCHECKs, and `minReadySeconds`. Verdicts are remembered per
//! container so a plan can tell "not ready yet" from "never became ready".
//!
//! A starting container is probed at every look (a rollout waits on it) and is ready at its
//! first success. A ready one is probed again every `healthCheck.interval` and becomes not
//! ready after `retries` failures in a row, as the kubelet's readiness probe does: that is what
//! takes a container that turned unhealthy out of rotation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::docker::{DockerHealth, ObservedContainer};
use crate::reconcile::desired::{Probe, Readiness};

/// What the controller remembers about one container's readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Ready at the last look.
    pub ready: bool,
    /// Ready at some look.
    pub ever_ready: bool,
    /// When it was last probed.
    pub checked: Instant,
    /// Probes failed in a row.
    pub failures: u32,
}

/// Readiness verdicts by container id, shared by every reconcile.
#[derive(Debug, Default)]
pub struct ReadinessCache {
    verdicts: Mutex<HashMap<String, Verdict>>,
}

impl ReadinessCache {
    /// The last verdict for a container.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Verdict> {
        self.lock().get(id).copied()
    }

    /// Records a verdict.
    pub fn record(&self, id: &str, ready: bool) {
        let mut map = self.lock();
        let ever = map.get(id).is_some_and(|v| v.ever_ready);
        map.insert(id.to_owned(), Verdict { ready, ever_ready: ever || ready, checked: Instant::now(), failures: 0 });
    }

    /// Records one probe: a success makes it ready; a failure makes a ready container not
    /// ready only at the `retries`-th failure in a row. Returns the verdict.
    pub fn record_probe(&self, id: &str, success: bool, retries: u32) -> Verdict {
        let mut map = self.lock();
        let before = map.get(id).copied();
        let failures = if success { 0 } else { before.map_or(0, |v| v.failures).saturating_add(1) };
        let was_ready = before.is_some_and(|v| v.ready);
        let ready = success || (was_ready && failures < retries.max(1));
        let verdict = Verdict {
            ready,
            ever_ready: before.is_some_and(|v| v.ever_ready) || ready,
            checked: Instant::now(),
            failures,
        };
        map.insert(id.to_owned(), verdict);
        verdict
    }

    /// Whether a container is due for a probe: never ready yet (it is starting: every look
    /// probes), or ready and last probed at least `interval` ago.
    #[must_use]
    pub fn due(&self, id: &str, interval: Duration) -> bool {
        self.get(id).is_none_or(|v| !v.ever_ready || !v.ready || v.failures > 0 || v.checked.elapsed() >= interval)
    }

    /// Forgets containers that no longer exist.
    pub fn retain(&self, live: &dyn Fn(&str) -> bool) {
        self.lock().retain(|id, _| live(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verdict>> {
        self.verdicts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a container is ready now. `probe` says whether the controller may run its own
/// probe (during a reconcile, when one is due) or must rely on the last verdict (during a
/// no-op resync).
pub async fn assess(
    container: &ObservedContainer,
    readiness: &Readiness,
    age: Duration,
    network: Option<&str>,
    probe: bool,
    cache: &ReadinessCache,
) -> bool {
    if !container.is_running() {
        cache.record(&container.id, false);
        return false;
    }
    let cached = || cache.get(&container.id).is_some_and(|v| v.ready);
    let (healthy, min_ready) = match readiness {
        Readiness::Http { port, path, probe: timing, min_ready } => {
            let ok = if probe && cache.due(&container.id, timing.interval) {
                let success = match address(container, network, *port) {
                    Some(addr) => http_probe(addr, path, timing.timeout).await,
                    None => false,
                };
                return settle(cache, container, success, *timing, age, *min_ready);
            } else {
                cached()
            };
            (ok, *min_ready)
        }
        Readiness::Tcp { port, probe: timing, min_ready } => {
            let ok = if probe && cache.due(&container.id, timing.interval) {
                let success = match address(container, network, *port) {
                    Some(addr) => tcp_probe(addr, timing.timeout).await,
                    None => false,
                };
                return settle(cache, container, success, *timing, age, *min_ready);
            } else {
                cached()
            };
            (ok, *min_ready)
        }
        Readiness::DockerHealth { min_ready } => (container.health == Some(DockerHealth::Healthy), *min_ready),
        Readiness::Auto { min_ready } => (container.health.is_none_or(|h| h == DockerHealth::Healthy), *min_ready),
    };
    let ready = healthy && age >= min_ready;
    cache.record(&container.id, ready);
    ready
}

/// A probe's result with the retries of a ready container and `minReadySeconds` applied.
fn settle(
    cache: &ReadinessCache,
    container: &ObservedContainer,
    success: bool,
    timing: Probe,
    age: Duration,
    min_ready: Duration,
) -> bool {
    // Before minReadySeconds a passing probe does not make it ready yet.
    let success = success && age >= min_ready;
    cache.record_probe(&container.id, success, timing.retries).ready
}

/// One TCP connect.
pub async fn tcp_probe(addr: SocketAddr, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, TcpStream::connect(addr)).await.is_ok_and(|r| r.is_ok())
}

/// The container's address on `network` (its first network's, when not given).
fn address(container: &ObservedContainer, network: Option<&str>, port: u16) -> Option<SocketAddr> {
    let ip = network.and_then(|n| container.addresses.get(n)).or_else(|| container.addresses.values().next())?;
    Some(SocketAddr::new(ip.parse().ok()?, port))
}

/// One HTTP/1.1 GET; 2xx and 3xx are healthy, like the kubelet's probe.
pub async fn http_probe(addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: meme-controller-probe\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        // The status line is all we need.
        let mut buf = [0u8; 64];
        let mut len = 0;
        while len < 12 {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
        }
        let line = std::str::from_utf8(&buf[..len]).ok()?;
        let code: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some((200..400).contains(&code))
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_probe_should_accept_2xx_and_reject_5xx_and_silence() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for status in ["200 OK", "503 Service Unavailable"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
            }
            // Third connection: accept and say nothing.
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        assert!(http_probe(addr, "/health", Duration::from_secs(2)).await);
        assert!(!http_probe(addr, "/health", Duration::from_secs(2)).await);
        let started = Instant::now();
        assert!(!http_probe(addr, "/health", Duration::from_millis(200)).await);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_ready_container_should_turn_unready_only_after_retries_failures_in_a_row() {
        let cache = ReadinessCache::default();
        assert!(!cache.record_probe("a", false, 3).ready, "starting: not ready");
        assert!(cache.record_probe("a", true, 3).ready, "ready at the first success");
        assert!(!cache.due("a", Duration::from_secs(10)), "a ready container waits for its interval");
        assert!(cache.due("a", Duration::ZERO));
        assert!(cache.record_probe("a", false, 3).ready);
        assert!(cache.due("a", Duration::from_secs(10)), "a failing one is probed at every look");
        assert!(cache.record_probe("a", false, 3).ready);
        let v = cache.record_probe("a", false, 3);
        assert!(!v.ready && v.ever_ready && v.failures == 3, "{v:?}");
        assert!(cache.record_probe("a", true, 3).ready, "and ready again at the next success");
    }

    #[test]
    fn cache_should_remember_ever_ready() {
        let cache = ReadinessCache::default();
        cache.record("a", true);
        cache.record("a", false);
        let v = cache.get("a").unwrap();
        assert!(!v.ready && v.ever_ready);
    }
}
