//! An open-loop load generator for traffic tests: requests at a fixed rate, each on a new
//! TCP connection to a loopback address, each answer recorded (status, which version and
//! container answered, latency). Open loop: a slow or failing answer never delays the next
//! request, so an outage shows as failed requests rather than as a quieter schedule.
//! Bounded: at most `rate × duration` requests, each with a timeout, loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// One request's fate.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was sent, from the start of the load.
    pub at: Duration,
    /// The request path.
    pub path: String,
    /// The HTTP status, `None` when no answer came (refused, reset, timed out).
    pub status: Option<u16>,
    /// The first line of the body (the test server answers `meme-testserver v1 <host>`).
    pub body: String,
    /// Time to the full answer.
    pub latency: Duration,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl Sample {
    /// A 2xx answer.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The version the test server reported (`v1`), if any.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.body.split_whitespace().nth(1)
    }
}

/// A running load; [`Load::stop`] ends it and returns every sample.
pub struct Load {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    scheduler: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

/// What to send: a method and a path, and how often, as a share of the requests.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// Every n-th request is this one (1: all).
    pub every: u32,
}

impl Load {
    /// Starts `rate` requests per second of `GET /` to `addr`, for at most `limit`.
    #[must_use]
    pub fn start(addr: SocketAddr, rate: u32, limit: Duration) -> Self {
        Self::start_mix(addr, rate, limit, vec![Request { method: "GET", path: "/".into(), every: 1 }])
    }

    /// Starts `rate` requests per second to `addr` for at most `limit`; request i is the first
    /// of `mix` whose `every` divides i (the last entry should have `every: 1`).
    #[must_use]
    pub fn start_mix(addr: SocketAddr, rate: u32, limit: Duration, mix: Vec<Request>) -> Self {
        assert!(addr.ip().is_loopback(), "load goes to loopback only");
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let scheduler = {
            let stop = Arc::clone(&stop);
            let samples = Arc::clone(&samples);
            std::thread::spawn(move || {
                let start = Instant::now();
                let period = Duration::from_secs(1) / rate.max(1);
                let mut workers = Vec::new();
                let mut i: u32 = 0;
                while !stop.load(Ordering::SeqCst) && start.elapsed() < limit {
                    let due = start + period * i;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let request = mix.iter().find(|r| i.is_multiple_of(r.every.max(1))).cloned().unwrap_or(Request {
                        method: "GET",
                        path: "/".into(),
                        every: 1,
                    });
                    let samples = Arc::clone(&samples);
                    let at = start.elapsed();
                    workers.push(std::thread::spawn(move || {
                        let sample = send(addr, &request, at);
                        samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sample);
                    }));
                    i += 1;
                }
                workers
            })
        };
        Self { stop, samples, scheduler: Some(scheduler) }
    }

    /// Samples so far.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Stops sending, waits for the requests in flight, returns every sample by send time.
    #[must_use]
    pub fn stop(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(scheduler) = self.scheduler.take() {
            for worker in scheduler.join().unwrap_or_default() {
                let _ = worker.join();
            }
        }
        let mut samples = self.snapshot();
        samples.sort_by_key(|s| s.at);
        Report { samples }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Every sample of a load, with the figures a test asserts on.
#[derive(Clone, Debug)]
pub struct Report {
    /// By send time.
    pub samples: Vec<Sample>,
}

impl Report {
    /// Requests that got no 2xx answer.
    #[must_use]
    pub fn failed(&self) -> Vec<&Sample> {
        self.samples.iter().filter(|s| !s.ok()).collect()
    }

    /// The slowest answer.
    #[must_use]
    pub fn slowest(&self) -> Duration {
        self.samples.iter().map(|s| s.latency).max().unwrap_or_default()
    }

    /// How many answers each version gave.
    #[must_use]
    pub fn by_version(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for s in self.samples.iter().filter(|s| s.ok()) {
            *out.entry(s.version().unwrap_or("?").to_owned()).or_default() += 1;
        }
        out
    }

    /// A few lines about the failures, for assertion messages.
    #[must_use]
    pub fn summary(&self) -> String {
        let failed = self.failed();
        let mut text = format!(
            "{} requests, {} failed, slowest {:?}, by version {:?}",
            self.samples.len(),
            failed.len(),
            self.slowest(),
            self.by_version()
        );
        for s in failed.iter().take(10) {
            text.push_str(&format!(
                "\n  at {:?} {} -> {:?} {:?} {}",
                s.at,
                s.path,
                s.status,
                s.error,
                s.body.chars().take(120).collect::<String>()
            ));
        }
        text
    }
}

fn send(addr: SocketAddr, request: &Request, at: Duration) -> Sample {
    let started = Instant::now();
    let result = (|| -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        write!(
            stream,
            "{} {} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            request.method, request.path
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
            std::io::Error::other(format!("no status line in {:?}", text.chars().take(80).collect::<String>()))
        })?;
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).lines().next().unwrap_or_default().to_owned();
        Ok((status, body))
    })();
    let latency = started.elapsed();
    match result {
        Ok((status, body)) => {
            Sample { at, path: request.path.clone(), status: Some(status), body, latency, error: None }
        }
        Err(e) => Sample {
            at,
            path: request.path.clone(),
            status: None,
            body: String::new(),
            latency,
            error: Some(e.to_string()),
        },
    }
}
