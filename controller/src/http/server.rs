//! Serving connections within bounds. `axum::serve` sets no timer, so a connection that never
//! sends a request stays open for ever: about 1,100 idle TCP connections used up the process's
//! 1,024 file descriptors, after which git and Docker calls failed and no commit applied. Here:
//! - a connection that has not delivered a complete request head within the idle timeout after
//!   it opened, or after its last response, is closed (hyper's header-read timeout runs in both
//!   cases, so it bounds idle keep-alive connections and slow-header clients alike);
//! - at most `max_connections` are open; one more is answered `503` and closed at once, so the
//!   descriptors left (see [`crate::fds`]) stay with the engine, git and the files;
//! - accept errors (a descriptor shortage included) are logged and retried after a pause
//!   instead of spinning.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Bounds on connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a connection may wait before sending a complete request head (idle or slow).
    pub idle_timeout: Duration,
}

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// The pause after an accept error: a descriptor shortage lasts until connections close.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The answer to a connection over the limit (written without reading the request).
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 49\r\nconnection: close\r\n\r\n{\"error\":\"too many connections; try again later\"}";

/// Serves `router` on `listener` until `shutdown` turns true, then lets requests in flight
/// finish (for up to [`DRAIN`]).
///
/// # Errors
/// None today: accept errors are retried. The result keeps the caller's shape.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Best effort: the socket buffer takes these bytes at once or never.
            let _ = stream.try_write(TOO_MANY);
            refusals.record(limits.max_connections);
            continue;
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, router, limits, shutdown).await;
            drop(slot);
        });
    }
    drop(listener);
    // Every connection gives its slot back when it ends; idle ones end at once on shutdown.
    let max = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(max)).await.is_err() {
        tracing::warn!("HTTP requests still in flight after {DRAIN:?}; stopping anyway");
    }
    Ok(())
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router)));
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients that go away are routine.
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}

/// Logs refused connections once per burst, not once each.
#[derive(Default)]
struct Refusals {
    last_log: Option<Instant>,
    since_log: u64,
}

impl Refusals {
    /// How often a sustained burst is reported.
    const EVERY: Duration = Duration::from_secs(10);

    fn record(&mut self, max: usize) {
        self.since_log += 1;
        if self.last_log.is_none_or(|at| at.elapsed() >= Self::EVERY) {
            tracing::warn!(
                max_connections = max,
                refused = self.since_log,
                "HTTP connection limit reached; refusing new connections (503)"
            );
            self.last_log = Some(Instant::now());
            self.since_log = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    async fn start(limits: Limits) -> (std::net::SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(async move {
            serve(listener, router, limits, shutdown).await.unwrap();
        });
        (addr, stop, task)
    }

    fn get(addr: std::net::SocketAddr) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    }

    /// Reads until the server closes; how long that took.
    fn closed_after(mut s: std::net::TcpStream) -> Duration {
        let started = Instant::now();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        started.elapsed()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_and_slow_connections_should_be_closed_and_extra_ones_refused() {
        let limits = Limits { max_connections: 3, idle_timeout: Duration::from_millis(500) };
        let (addr, stop, task) = start(limits).await;
        let checks = tokio::task::spawn_blocking(move || {
            // Three idle connections take every slot; a fourth is refused at once.
            let idle: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(100));
            let refused = get(addr);
            assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
            // The idle ones are closed by the server within the timeout (plus scheduling).
            let mut slow = idle;
            let last = slow.pop().unwrap();
            for s in slow {
                assert!(closed_after(s) < Duration::from_secs(2));
            }
            assert!(closed_after(last) < Duration::from_secs(2));
            // A client sending its header a byte at a time is cut off too.
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            let started = Instant::now();
            for b in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            closed_after(s);
            assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
            // Slots came back: normal requests work.
            assert!(get(addr).starts_with("HTTP/1.1 200"));
        });
        checks.await.unwrap();
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_should_not_wait_for_idle_connections() {
        let limits = Limits { max_connections: 8, idle_timeout: Duration::from_secs(60) };
        let (addr, stop, task) = start(limits).await;
        let idle = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr).unwrap()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        stop.send(true).unwrap();
        task.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        drop(idle);
    }
}
