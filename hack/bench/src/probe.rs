//! What a client sees: a loop of `GET`s against one address, each on a new connection (so each
//! one looks the service up again behind a proxy, and a stopped container cannot hide behind a
//! kept-alive connection), recording when each started and ended, its status and the body (the
//! version that answered). Used by `serve` (through Caddy) and `recreate` (a host port).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine;

/// One request of the loop.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Just before the connect.
    pub start: Instant,
    /// After the last byte (or the failure).
    pub end: Instant,
    /// HTTP status; 0 when nothing answered (refused, reset, timeout).
    pub status: u16,
    /// The body, trimmed (`/version` answers `v1`).
    pub body: String,
}

impl Answer {
    /// A 200 carrying `version`.
    #[must_use]
    pub fn is(&self, version: &str) -> bool {
        self.status == 200 && self.body == version
    }
}

/// The loops, each in its own thread until [`Prober::finish`] (or drop). Several loops side by
/// side, so that one request stuck (a SYN to an address that just left, a DNS lookup held up)
/// does not blind the client: the others go on asking.
#[derive(Debug)]
pub struct Prober {
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Prober {
    /// Starts `loops` loops probing `path` on `addr`, each pausing `every` between the end of one
    /// request and the next (started `every / loops` apart), each request bounded by `timeout`.
    #[must_use]
    pub fn start(addr: SocketAddr, path: &'static str, every: Duration, timeout: Duration, loops: u32) -> Self {
        let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let loops = loops.max(1);
        let handles = (0..loops)
            .map(|n| {
                let (out, halt) = (Arc::clone(&answers), Arc::clone(&stop));
                std::thread::spawn(move || {
                    std::thread::sleep(every * n / loops);
                    let ip = addr.ip().to_string();
                    while !halt.load(Ordering::Relaxed) && !crate::cleanup::interrupted() {
                        let start = Instant::now();
                        let got = engine::http_get(&ip, addr.port(), path, timeout);
                        let end = Instant::now();
                        let (status, body) = got.map_or((0, String::new()), |(s, b)| (s, b.trim().to_owned()));
                        out.lock().unwrap_or_else(PoisonError::into_inner).push(Answer { start, end, status, body });
                        std::thread::sleep(every);
                    }
                })
            })
            .collect();
        Self { answers, stop, handles }
    }

    /// The answers so far, by start time.
    #[must_use]
    pub fn answers(&self) -> Vec<Answer> {
        let mut all = self.answers.lock().unwrap_or_else(PoisonError::into_inner).clone();
        all.sort_by_key(|a| a.start);
        all
    }

    /// Whether an answer started at or after `since` carries `version`.
    #[must_use]
    pub fn seen(&self, version: &str, since: Instant) -> bool {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|a| a.start >= since && a.is(version))
    }

    /// Stops the loop; every answer.
    #[must_use]
    pub fn finish(mut self) -> Vec<Answer> {
        self.halt();
        self.answers()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.halt();
    }
}

/// How a switch from one version to another looked to the loop, from `since`.
#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    /// The first answer of the new version to arrive (seconds after `since`).
    pub first_new: Option<f64>,
    /// The last answer of the old version: when it arrived.
    pub last_old: Option<f64>,
    /// No version answered: from the arrival of the last answer of the old version before the
    /// first of the new one to that first arrival (seconds; about one cycle of the loops when
    /// they overlap). `None` without both.
    pub gap: Option<f64>,
    /// Requests not answered 200 by either version after `since`.
    pub failed: usize,
    /// Those requests: (start, seconds after `since`; how long it took; status, 0 for none).
    pub failures: Vec<(f64, f64, u16)>,
    /// Requests slower than [`SLOW`], as `failures`.
    pub slow: Vec<(f64, f64, u16)>,
    /// The longest request after `since`, seconds.
    pub slowest: f64,
    /// Requests after `since`.
    pub requests: usize,
}

/// Reads the switch `old` -> `new` from the answers.
#[must_use]
pub fn switch(answers: &[Answer], since: Instant, old: &str, new: &str) -> Switch {
    let after: Vec<&Answer> = answers.iter().filter(|a| a.start >= since).collect();
    let at = |i: Instant| i.saturating_duration_since(since).as_secs_f64();
    // By arrival: a request stuck for a second (a SYN retransmitted) that the new version
    // finally answers must not stand for the moment it began to answer.
    let first = after.iter().filter(|a| a.is(new)).map(|a| a.end).min();
    // Any answer of the old version, also one of a request begun before `since`.
    let last_old_before = first.and_then(|f| answers.iter().filter(|a| a.is(old) && a.end <= f).map(|a| a.end).max());
    let gap = match (first, last_old_before) {
        (Some(f), Some(o)) => Some(f.saturating_duration_since(o).as_secs_f64()),
        _ => None,
    };
    let bad = |a: &&&Answer| !a.is(old) && !a.is(new);
    Switch {
        first_new: first.map(at),
        last_old: after.iter().filter(|a| a.is(old)).map(|a| a.end).max().map(at),
        gap,
        failed: after.iter().filter(bad).count(),
        failures: after
            .iter()
            .filter(bad)
            .map(|a| (at(a.start), a.end.duration_since(a.start).as_secs_f64(), a.status))
            .collect(),
        slow: after
            .iter()
            .filter(|a| a.end.duration_since(a.start) > SLOW)
            .map(|a| (at(a.start), a.end.duration_since(a.start).as_secs_f64(), a.status))
            .collect(),
        slowest: after.iter().map(|a| a.end.duration_since(a.start).as_secs_f64()).fold(0.0, f64::max),
        requests: after.len(),
    }
}

/// A request slower than this is listed (issue 8: no request slowed past 250 ms).
pub const SLOW: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(base: Instant, ms: u64, status: u16, body: &str) -> Answer {
        let start = base + Duration::from_millis(ms);
        Answer { start, end: start + Duration::from_millis(1), status, body: body.to_owned() }
    }

    #[test]
    fn a_switch_should_measure_the_gap_between_the_versions() {
        let t = Instant::now();
        let answers = vec![
            answer(t, 0, 200, "v1"),
            answer(t, 10, 200, "v1"),
            answer(t, 20, 0, ""),
            answer(t, 30, 502, "bad gateway"),
            answer(t, 40, 200, "v2"),
            answer(t, 50, 200, "v2"),
        ];
        let s = switch(&answers, t + Duration::from_millis(5), "v1", "v2");
        assert_eq!(s.requests, 5);
        assert_eq!(s.failed, 2);
        assert!((s.gap.unwrap() - 0.030).abs() < 1e-6, "{s:?}");
        assert!((s.first_new.unwrap() - 0.036).abs() < 1e-6, "{s:?}");
        assert!((s.last_old.unwrap() - 0.006).abs() < 1e-6, "{s:?}");
    }

    #[test]
    fn overlapping_versions_should_have_no_failure() {
        let t = Instant::now();
        let answers = vec![answer(t, 0, 200, "v1"), answer(t, 10, 200, "v2"), answer(t, 20, 200, "v1")];
        let s = switch(&answers, t, "v1", "v2");
        assert_eq!(s.failed, 0);
        assert!((s.gap.unwrap() - 0.010).abs() < 1e-6, "{s:?}");
        assert!((s.last_old.unwrap() - 0.021).abs() < 1e-6);
        let none = switch(&answers, t, "v1", "v3");
        assert_eq!(none.first_new, None);
        let down = switch(&[answer(t, 0, 200, "v1"), answer(t, 10, 0, "")], t, "v1", "v2");
        assert_eq!((down.gap, down.failed), (None, 1));
        // A request stuck for a second and answered by the new version does not count as its
        // first answer when a later one arrived before it.
        let mut stuck = answer(t, 20, 200, "v2");
        stuck.end = t + Duration::from_millis(1020);
        let s = switch(&[answer(t, 0, 200, "v1"), stuck, answer(t, 40, 200, "v2")], t, "v1", "v2");
        assert!((s.first_new.unwrap() - 0.041).abs() < 1e-6, "{s:?}");
        assert_eq!(s.slow.len(), 1);
    }
}
