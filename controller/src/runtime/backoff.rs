//! Per-key retry delays: exponential with jitter (backon), by default 500 ms doubling to at most
//! 30 s (plus jitter), reset when the key succeeds.

use std::collections::HashMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// The first retry comes soon (a transient engine hiccup); the cap (doubled at most by jitter)
/// keeps a service that failed for long from waiting more than a minute once the cause is gone.
const MIN_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Backoff state per key.
pub struct Backoffs {
    per_key: HashMap<String, backon::ExponentialBackoff>,
    min: Duration,
    max: Duration,
}

impl Default for Backoffs {
    fn default() -> Self {
        Self::with_limits(MIN_DELAY, MAX_DELAY)
    }
}

impl std::fmt::Debug for Backoffs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoffs").field("keys", &self.per_key.len()).finish()
    }
}

impl Backoffs {
    /// Backoff from `min` doubling to `max` (plus jitter).
    #[must_use]
    pub fn with_limits(min: Duration, max: Duration) -> Self {
        Self { per_key: HashMap::new(), min, max }
    }

    /// The delay before the next retry of `key`.
    pub fn next(&mut self, key: &str) -> Duration {
        let (min, max) = (self.min, self.max);
        let builder = || {
            ExponentialBuilder::default()
                .with_jitter()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_factor(2.0)
                .without_max_times()
        };
        self.per_key.entry(key.to_owned()).or_insert_with(|| builder().build()).next().unwrap_or(max)
    }

    /// Forgets the failures of `key` (backon has no reset: the schedule is rebuilt).
    pub fn reset(&mut self, key: &str) {
        self.per_key.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_should_grow_cap_and_reset() {
        let mut b = Backoffs::default();
        let first = b.next("web");
        assert!(first >= MIN_DELAY && first <= MIN_DELAY * 2, "{first:?}");
        let delays: Vec<Duration> = (0..20).map(|_| b.next("web")).collect();
        assert!(delays.iter().all(|d| *d <= MAX_DELAY * 2), "{delays:?}");
        assert!(delays[10] >= MAX_DELAY, "{delays:?}");
        b.reset("web");
        assert!(b.next("web") <= MIN_DELAY * 2);
        assert!(b.next("other") <= MIN_DELAY * 2, "keys are independent");
    }
}
