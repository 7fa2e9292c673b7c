//! Fetches asked for over HTTP (push webhooks, `POST /api/v1/reconcile`), coalesced and
//! rate-limited. A signed webhook stays valid forever (GitHub's signature covers the body, with
//! no timestamp or nonce), so whoever captured one can replay it at will; before this gate each
//! replay queued a `git fetch`. Now the first request after a quiet spell fetches at once, and
//! requests during the next [`MIN_INTERVAL`] merge into one more fetch at its end: at most one
//! fetch per interval, never a push left unfetched, and (with the source's trigger channel
//! holding a single entry) at most one fetch in flight plus one pending.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use crate::source::Trigger;

/// The shortest time between two fetches that HTTP requests start. A push a few seconds after
/// the previous one still arrives within this; a flood of replays costs the git server one
/// fetch per interval (the `--poll` fetch runs on its own schedule).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// The handle handlers use to ask for a fetch.
#[derive(Clone, Debug)]
pub struct FetchRequests {
    wake: Arc<Notify>,
}

impl FetchRequests {
    /// Starts the gate: fetches go to `trigger` (the source loop's channel, capacity 1) until
    /// `shutdown` turns true.
    #[must_use]
    pub fn spawn(trigger: mpsc::Sender<Trigger>, interval: Duration, shutdown: watch::Receiver<bool>) -> Self {
        let wake = Arc::new(Notify::new());
        tokio::spawn(run(Arc::clone(&wake), trigger, interval, shutdown));
        Self { wake }
    }

    /// Asks for a fetch; never waits. Requests made while one is pending merge into it.
    pub fn request(&self) {
        // `notify_one` stores one permit when the gate is not waiting: many requests, one fetch.
        self.wake.notify_one();
    }
}

async fn run(
    wake: Arc<Notify>,
    trigger: mpsc::Sender<Trigger>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = wake.notified() => {}
        }
        // Waits while a fetch is already pending in the channel: that one covers this request
        // only if it has not started, and it may have started by the time we look.
        if trigger.send(Trigger::Fetch).await.is_err() {
            return;
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn replays_should_merge_into_one_fetch_per_interval() {
        let (tx, mut rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let gate = FetchRequests::spawn(tx, MIN_INTERVAL, shutdown);
        let start = tokio::time::Instant::now();
        // 200 replays at once: one fetch now...
        for _ in 0..200 {
            gate.request();
        }
        assert_eq!(rx.recv().await, Some(Trigger::Fetch));
        assert_eq!(start.elapsed(), Duration::ZERO);
        // ...and the requests that came during it make exactly one more, an interval later.
        for _ in 0..200 {
            gate.request();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(rx.recv().await, Some(Trigger::Fetch));
        assert_eq!(start.elapsed(), MIN_INTERVAL);
        tokio::time::sleep(MIN_INTERVAL * 3).await;
        assert!(rx.try_recv().is_err(), "nothing more was asked");
        // A request after a quiet spell fetches at once.
        let again = tokio::time::Instant::now();
        gate.request();
        assert_eq!(rx.recv().await, Some(Trigger::Fetch));
        assert_eq!(again.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_fetch_should_hold_at_most_one_more_pending() {
        let (tx, mut rx) = mpsc::channel(1);
        let (_stop, shutdown) = watch::channel(false);
        let gate = FetchRequests::spawn(tx, Duration::from_millis(100), shutdown);
        gate.request();
        // The source took one fetch and works on it for 10 s while requests keep coming.
        assert_eq!(rx.recv().await, Some(Trigger::Fetch));
        for _ in 0..100 {
            gate.request();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // One pending, none queued behind it.
        assert_eq!(rx.try_recv(), Ok(Trigger::Fetch));
        assert!(rx.try_recv().is_err());
    }
}
