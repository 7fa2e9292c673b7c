//! A deduplicating work queue keyed by service: a key is queued at most once, never handed out
//! twice at once (a key triggered while running is re-queued when it finishes), and delayed
//! entries keep the earliest due time. Pure data; the runtime drives it with the clock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use crate::runtime::Trigger;

/// The trigger of a periodic readiness probe of a settled service. It is not work: it does not
/// keep the queue from being idle, and it never holds back a resync the way a backoff does.
pub const PROBE: Trigger = Trigger::Probe;

/// The queue.
#[derive(Debug, Default)]
pub struct WorkQueue {
    ready: VecDeque<(String, Trigger)>,
    queued: HashSet<String>,
    running: HashSet<String>,
    /// Triggered while running: run again when done, with this trigger.
    dirty: HashMap<String, Trigger>,
    /// Due later: key → (due, trigger).
    delayed: HashMap<String, (Instant, Trigger)>,
}

impl WorkQueue {
    /// Queues a key now, with the trigger that caused it.
    pub fn add(&mut self, key: &str, trigger: Trigger) {
        if self.running.contains(key) {
            self.dirty.entry(key.to_owned()).or_insert(trigger);
            return;
        }
        self.delayed.remove(key);
        if self.queued.insert(key.to_owned()) {
            self.ready.push_back((key.to_owned(), trigger));
        }
    }

    /// Queues a key now unless it is waiting out a delay (a backoff): the periodic resync must
    /// not turn a backoff into a retry every resync.
    pub fn add_unless_delayed(&mut self, key: &str, trigger: Trigger) {
        if self.delayed.get(key).is_none_or(|(_, t)| *t == PROBE) {
            self.add(key, trigger);
        }
    }

    /// Queues a key at `due` (the earliest of several requests wins).
    pub fn add_at(&mut self, key: &str, due: Instant, trigger: Trigger) {
        if self.queued.contains(key) {
            return;
        }
        match self.delayed.get(key) {
            Some((existing, _)) if *existing <= due => {}
            _ => {
                self.delayed.insert(key.to_owned(), (due, trigger));
            }
        }
    }

    /// Moves every delayed key due by `now` to the ready queue.
    pub fn promote(&mut self, now: Instant) {
        let due: Vec<(String, Trigger)> =
            self.delayed.iter().filter(|(_, (at, _))| *at <= now).map(|(k, (_, t))| (k.clone(), *t)).collect();
        for (key, trigger) in due {
            self.delayed.remove(&key);
            self.add(&key, trigger);
        }
    }

    /// The earliest due time of a delayed key.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.values().map(|(at, _)| *at).min()
    }

    /// Takes the next ready key (and its trigger), marking it running.
    pub fn take(&mut self) -> Option<(String, Trigger)> {
        let (key, trigger) = self.ready.pop_front()?;
        self.queued.remove(&key);
        self.running.insert(key.clone());
        Some((key, trigger))
    }

    /// Marks a key finished; re-queues it if it was triggered meanwhile.
    pub fn done(&mut self, key: &str) {
        self.running.remove(key);
        if let Some(trigger) = self.dirty.remove(key) {
            self.add(key, trigger);
        }
    }

    /// Keys waiting now (for the `meme_workqueue_depth` gauge).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.ready.len()
    }

    /// Whether a key is running.
    #[must_use]
    pub fn is_running(&self, key: &str) -> bool {
        self.running.contains(key)
    }

    /// Whether nothing is ready, running or delayed.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.running.is_empty() && self.delayed.values().all(|(_, t)| *t == PROBE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn probes_should_neither_keep_the_queue_busy_nor_hold_back_a_resync() {
        let mut q = WorkQueue::default();
        let now = Instant::now();
        q.add_at("web", now + Duration::from_secs(10), PROBE);
        assert!(q.is_idle(), "a probe later is not work");
        q.add_unless_delayed("web", Trigger::Resync);
        assert_eq!(q.take(), Some(("web".to_owned(), Trigger::Resync)));
        q.done("web");
        q.add_at("db", now + Duration::from_secs(10), Trigger::Backoff);
        assert!(!q.is_idle());
        q.add_unless_delayed("db", Trigger::Resync);
        assert_eq!(q.take(), None, "a backoff holds back the resync");
    }

    #[test]
    fn queue_should_deduplicate_and_never_hand_out_a_running_key() {
        let mut q = WorkQueue::default();
        q.add("web", Trigger::Resync);
        q.add("web", Trigger::DockerEvent);
        q.add("db", Trigger::Resync);
        assert_eq!(q.depth(), 2);
        assert_eq!(q.take(), Some(("web".into(), Trigger::Resync)));
        q.add("web", Trigger::DockerEvent); // while running: remembered, not queued
        assert_eq!(q.take(), Some(("db".into(), Trigger::Resync)));
        assert_eq!(q.take(), None);
        q.done("web");
        assert_eq!(q.take(), Some(("web".into(), Trigger::DockerEvent)));
    }

    #[test]
    fn queue_should_keep_the_earliest_due_time() {
        let mut q = WorkQueue::default();
        let now = Instant::now();
        q.add_at("web", now + Duration::from_secs(10), Trigger::Requeue);
        q.add_at("web", now + Duration::from_secs(1), Trigger::Backoff);
        q.add_at("web", now + Duration::from_secs(5), Trigger::Requeue);
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(1)));
        q.promote(now);
        assert_eq!(q.take(), None);
        q.promote(now + Duration::from_secs(1));
        assert_eq!(q.take(), Some(("web".into(), Trigger::Backoff)));
        assert!(q.next_due().is_none());
    }

    #[test]
    fn resync_should_not_cut_a_backoff_short() {
        let mut q = WorkQueue::default();
        q.add_at("web", Instant::now() + Duration::from_secs(60), Trigger::Backoff);
        q.add_unless_delayed("web", Trigger::Resync);
        q.add_unless_delayed("db", Trigger::Resync);
        assert_eq!(q.take().map(|(k, _)| k), Some("db".into()));
        assert_eq!(q.take(), None);
    }

    #[test]
    fn queue_should_let_an_immediate_trigger_override_a_delay() {
        let mut q = WorkQueue::default();
        q.add_at("web", Instant::now() + Duration::from_secs(60), Trigger::Backoff);
        q.add("web", Trigger::DockerEvent);
        assert_eq!(q.take().map(|(k, _)| k), Some("web".into()));
        assert!(q.next_due().is_none());
    }
}
