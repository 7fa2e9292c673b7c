//! An open-loop load through a proxy on loopback, as a user's clients make it: `GET /` at a
//! fixed rate, each request on a new TCP connection, each answer recorded (send time, status,
//! latency). Open loop: a slow or failing answer never delays the next request, so an outage
//! shows as failed requests rather than as a quieter schedule. Bounded: at most
//! `rate × limit` requests, each with a timeout, to a loopback address only. Ported from
//! e2e/src/load.rs (the e2e crate is not a dependency of the bench).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How long one request may take before it counts as failed (connect included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One request's fate.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was sent, from the start of the load.
    pub at: Duration,
    /// The HTTP status, `None` when no answer came (refused, reset, timed out).
    pub status: Option<u16>,
    /// Time from just before the connect to the end of the answer (or the failure).
    pub latency: Duration,
    /// Why it failed, when it did (the I/O error, or the status).
    pub error: Option<String>,
}

impl Sample {
    /// A 2xx answer.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A running load; [`Load::stop`] ends it and returns every sample.
pub struct Load {
    /// When the first request was due: [`Sample::at`] counts from here.
    pub started: Instant,
    /// The same moment on the wall clock (to find a request in the controller's log).
    pub wall: SystemTime,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    scheduler: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl Load {
    /// Starts `rate` requests per second of `GET /` to `addr`, for at most `limit`.
    ///
    /// # Panics
    /// `addr` is not a loopback address.
    #[must_use]
    pub fn start(addr: SocketAddr, rate: u32, limit: Duration) -> Self {
        assert!(addr.ip().is_loopback(), "load goes to loopback only");
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (started, wall) = (Instant::now(), SystemTime::now());
        let scheduler = {
            let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
            std::thread::spawn(move || {
                let period = Duration::from_secs(1) / rate.max(1);
                let mut workers = Vec::new();
                let mut i: u32 = 0;
                while !stop.load(Ordering::SeqCst) && !crate::cleanup::interrupted() {
                    let due = started + period * i;
                    if due.duration_since(started) >= limit {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let samples = Arc::clone(&samples);
                    let at = started.elapsed();
                    workers.push(std::thread::spawn(move || {
                        let sample = send(addr, at);
                        samples.lock().unwrap_or_else(PoisonError::into_inner).push(sample);
                    }));
                    // Join the finished workers now and then: a long load keeps few threads.
                    if workers.len() > 256 {
                        let (done, running): (Vec<_>, Vec<_>) = workers.into_iter().partition(JoinHandle::is_finished);
                        for w in done {
                            let _ = w.join();
                        }
                        workers = running;
                    }
                    i += 1;
                }
                workers
            })
        };
        Self { started, wall, stop, samples, scheduler: Some(scheduler) }
    }

    /// Stops sending, waits for the requests in flight, returns every sample by send time.
    #[must_use]
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(scheduler) = self.scheduler.take() {
            for worker in scheduler.join().unwrap_or_default() {
                let _ = worker.join();
            }
        }
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner).clone();
        samples.sort_by_key(|s| s.at);
        samples
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What the requests sent in a window (by send time) came to.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Requests sent.
    pub sent: usize,
    /// Requests without a 2xx answer.
    pub failed: usize,
    /// The slowest request (failed or not).
    pub slowest: Duration,
    /// When the slowest was sent, from the window's start.
    pub slowest_at: Duration,
    /// The 99th percentile of the latencies (nearest rank).
    pub p99: Duration,
    /// From the first failed request's send time to the send time of the first request
    /// answered after the last failure (zero when none failed): how long the service was out,
    /// to one request period.
    pub outage: Duration,
    /// The first distinct failure reasons, with counts.
    pub errors: Vec<(String, usize)>,
}

impl Window {
    /// The figures of the samples sent in `[from, to)`.
    #[must_use]
    pub fn of(samples: &[Sample], from: Duration, to: Duration) -> Self {
        Self::select(samples, from, to, |s| s.at >= from && s.at < to)
    }

    /// The figures of the samples `keep` selects, as a window from `from` to `to`.
    #[must_use]
    pub fn select(samples: &[Sample], from: Duration, to: Duration, keep: impl Fn(&Sample) -> bool) -> Self {
        let inside: Vec<&Sample> = samples.iter().filter(|s| keep(s)).collect();
        let mut w = Self {
            sent: inside.len(),
            failed: inside.iter().filter(|s| !s.ok()).count(),
            slowest: inside.iter().map(|s| s.latency).max().unwrap_or_default(),
            ..Self::default()
        };
        let latencies: Vec<f64> = inside.iter().map(|s| s.latency.as_secs_f64()).collect();
        w.p99 = Duration::from_secs_f64(crate::util::percentile(&latencies, 99.0));
        if let Some(s) = inside.iter().max_by_key(|s| s.latency) {
            w.slowest_at = s.at.saturating_sub(from);
        }
        let first = inside.iter().position(|s| !s.ok());
        let last = inside.iter().rposition(|s| !s.ok());
        if let (Some(first), Some(last)) = (first, last) {
            // The first success after the last failure (sent later); the window's end otherwise.
            let back = samples.iter().find(|s| s.at > inside[last].at && s.ok()).map_or(to, |s| s.at);
            w.outage = back.saturating_sub(inside[first].at);
        }
        for s in inside.iter().filter(|s| !s.ok()) {
            let reason = s.error.clone().unwrap_or_else(|| "?".to_owned());
            if let Some((_, n)) = w.errors.iter_mut().find(|(r, _)| *r == reason) {
                *n += 1;
            } else if w.errors.len() < 4 {
                w.errors.push((reason, 1));
            }
        }
        w
    }

    /// `12x connection refused, 3x HTTP 502`.
    #[must_use]
    pub fn reasons(&self) -> String {
        self.errors.iter().map(|(r, n)| format!("{n}x {r}")).collect::<Vec<_>>().join(", ")
    }
}

fn send(addr: SocketAddr, at: Duration) -> Sample {
    let started = Instant::now();
    let result = (|| -> std::io::Result<u16> {
        let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        let left = REQUEST_TIMEOUT.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        stream.set_read_timeout(Some(left))?;
        stream.set_write_timeout(Some(left))?;
        // One write, one segment (`write!` on the stream would make a syscall per piece).
        let head = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: meme-bench\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        if raw.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
            std::io::Error::other(format!("no status line in {:?}", text.chars().take(60).collect::<String>()))
        })
    })();
    let latency = started.elapsed();
    match result {
        Ok(status) => {
            let error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
            Sample { at, status: Some(status), latency, error }
        }
        Err(e) => Sample { at, status: None, latency, error: Some(short_error(&e)) },
    }
}

/// An I/O error without its OS error number (`connection refused`), so reasons group.
fn short_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection reset".to_owned(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".to_owned(),
        std::io::ErrorKind::UnexpectedEof => "closed without an answer".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ms: u64, ok: bool, latency_ms: u64) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            status: ok.then_some(200),
            latency: Duration::from_millis(latency_ms),
            error: (!ok).then(|| "connection refused".to_owned()),
        }
    }

    #[test]
    fn windows_should_count_by_send_time_and_bound_the_outage() {
        let samples: Vec<Sample> = (0..10).map(|i| sample(i * 20, !(3..6).contains(&i), 5 + i)).collect();
        let w = Window::of(&samples, Duration::from_millis(40), Duration::from_millis(200));
        assert_eq!((w.sent, w.failed), (8, 3));
        assert_eq!(w.slowest, Duration::from_millis(14));
        // First failure sent at 60 ms, first answer after the last failure sent at 120 ms.
        assert_eq!(w.outage, Duration::from_millis(60));
        assert_eq!(w.reasons(), "3x connection refused");
        let clean = Window::of(&samples, Duration::ZERO, Duration::from_millis(60));
        assert_eq!((clean.sent, clean.failed, clean.outage), (3, 0, Duration::ZERO));
    }

    #[test]
    fn a_local_server_should_be_loaded_at_the_rate() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(std::result::Result::ok) {
                // The whole request head, so that closing after the answer resets nothing.
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
        });
        let load = Load::start(addr, 100, Duration::from_millis(300));
        std::thread::sleep(Duration::from_millis(400));
        let samples = load.stop();
        assert_eq!(samples.len(), 30, "100/s for 300 ms");
        assert!(samples.iter().all(Sample::ok), "{samples:?}");
    }
}
