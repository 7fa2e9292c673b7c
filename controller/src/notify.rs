//! systemd's readiness and watchdog protocol (`sd_notify`, `Type=notify`): READY=1 once the
//! controller is ready in the sense of `/readyz` (the source was read and the engine answered),
//! WATCHDOG=1 fed by the controller loop itself, STOPPING=1 on shutdown. Everything is a no-op
//! when the process was not started with `NOTIFY_SOCKET` (not under systemd).
//!
//! The watchdog is fed only from the loop (`runtime::controller::run`), never from a timer of its
//! own: a loop that stops turning (a deadlock, a call that hangs) stops feeding, and systemd
//! restarts the controller after `WatchdogSec`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio::sync::watch;

use crate::context::Context;

/// How often readiness is looked at until the controller is ready: cheap (two loads), and
/// short enough that `systemctl start` returns within a tenth of a second of `/readyz` saying 200.
const READY_POLL: Duration = Duration::from_millis(100);

/// Sends notifications to the service manager, logging when it cannot.
fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}

/// Waits until the controller is ready, then sends READY=1 (once). Returns early on shutdown.
pub async fn ready_when_ready(ctx: Arc<Context>, listen: std::net::SocketAddr, mut shutdown: watch::Receiver<bool>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut poll = tokio::time::interval(READY_POLL);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = poll.tick() => {}
        }
        let source_read = ctx.with_status(|s| s.source.tip.is_some());
        if source_read && ctx.engine_answered() {
            let status = format!("ready; serving the API on {listen}");
            send(&[NotifyState::Ready, NotifyState::Status(&status)]);
            tracing::debug!("notified the service manager: READY=1");
            return;
        }
    }
}

/// Tells the service manager that the controller is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The watchdog as the loop sees it: how often the loop must wake up, and feeding it at most
/// once per half of that.
#[derive(Debug)]
pub struct Watchdog {
    /// The loop's wake-up period: a quarter of `WATCHDOG_USEC`, `None` when no watchdog is set.
    tick: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    /// The watchdog systemd asked for (`WATCHDOG_USEC`, and `WATCHDOG_PID` naming this process).
    ///
    /// The loop wakes up every quarter of the timeout. Reconciles and drift checks run beside
    /// the loop, not in it, so between two feeds there is about one tick: with the shipped
    /// unit's `WatchdogSec=60s` a feed every 15 s, and a loop stuck for 45 s more is restarted.
    #[must_use]
    pub fn from_env() -> Self {
        Self::with_timeout(sd_notify::watchdog_enabled())
    }

    /// A watchdog with this timeout (`None`: disabled).
    #[must_use]
    pub fn with_timeout(timeout: Option<Duration>) -> Self {
        let tick = timeout.filter(|t| !t.is_zero()).map(|t| (t / 4).max(Duration::from_millis(1)));
        if let Some(timeout) = timeout {
            tracing::info!(?timeout, "systemd watchdog enabled; the controller loop feeds it");
        }
        Self { tick, last: None }
    }

    /// How often the loop must wake up to feed the watchdog (`None`: never needed).
    #[must_use]
    pub fn tick(&self) -> Option<Duration> {
        self.tick
    }

    /// Called on every turn of the loop: sends WATCHDOG=1 when half a tick or more passed since
    /// the last one (so every tick feeds, and a busy loop does not flood the socket). Returns
    /// whether it sent.
    pub fn feed(&mut self, now: Instant) -> bool {
        let Some(tick) = self.tick else { return false };
        if self.last.is_some_and(|last| now.saturating_duration_since(last) < tick / 2) {
            return false;
        }
        self.last = Some(now);
        send(&[NotifyState::Watchdog]);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_should_feed_every_tick_but_not_every_turn() {
        let mut dog = Watchdog::with_timeout(Some(Duration::from_secs(60)));
        assert_eq!(dog.tick(), Some(Duration::from_secs(15)));
        let t0 = Instant::now();
        assert!(dog.feed(t0), "the first turn feeds");
        assert!(!dog.feed(t0 + Duration::from_secs(1)), "a busy loop does not feed on every turn");
        assert!(dog.feed(t0 + Duration::from_millis(7_500)), "half a tick later it feeds again");
        assert!(dog.feed(t0 + Duration::from_millis(22_500)), "a tick that fires a bit early still feeds");
    }

    #[test]
    fn watchdog_should_do_nothing_when_systemd_set_none() {
        let mut dog = Watchdog::with_timeout(None);
        assert_eq!(dog.tick(), None);
        assert!(!dog.feed(Instant::now()));
        assert_eq!(Watchdog::with_timeout(Some(Duration::ZERO)).tick(), None);
    }
}
