//! The events ring: what the controller did and why (Created, Replaced, Pruned, Unhealthy,
//! InvalidManifest, ...), deduplicated like `kubectl get events` (same type, reason, service and
//! message: one entry with a count and first/last seen).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

pub use meme_api::status::{Event, EventType};

/// How many distinct events are kept.
pub const CAPACITY: usize = 500;

/// The ring of recent events.
#[derive(Debug, Default)]
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
}

impl Events {
    /// Records an event, merging it into an identical recent one. Known secret values are
    /// redacted from the message first (an engine error or a log tail may quote one).
    pub fn record(&self, kind: EventType, reason: &str, service: Option<&str>, message: impl Into<String>) {
        let message = message.into();
        let message = match crate::redact::redact(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(clean) => clean,
        };
        match kind {
            EventType::Normal => tracing::info!(reason, service, %message, "event"),
            EventType::Warning => tracing::warn!(reason, service, %message, "event"),
        }
        let now = SystemTime::now();
        let mut ring = self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = ring.iter().rposition(|e| {
            e.kind == kind && e.reason == reason && e.service.as_deref() == service && e.message == message
        }) {
            let mut e = ring.remove(i).expect("index from rposition");
            e.count += 1;
            e.last_seen = now;
            ring.push_back(e);
            return;
        }
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Event {
            kind,
            reason: reason.to_owned(),
            service: service.map(str::to_owned),
            message,
            count: 1,
            first_seen: now,
            last_seen: now,
        });
    }

    /// Every event, oldest first.
    #[must_use]
    pub fn list(&self) -> Vec<Event> {
        self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_should_deduplicate_like_kubectl() {
        let events = Events::default();
        events.record(EventType::Warning, "Unhealthy", Some("web"), "probe failed");
        events.record(EventType::Normal, "Created", Some("web"), "created web#1");
        events.record(EventType::Warning, "Unhealthy", Some("web"), "probe failed");
        let list = events.list();
        assert_eq!(list.len(), 2);
        assert_eq!((list[1].reason.as_str(), list[1].count), ("Unhealthy", 2));
        let json = serde_json::to_value(&list[1]).unwrap();
        assert_eq!(json["type"], "Warning");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.count, 2);
    }

    #[test]
    fn events_should_never_hold_a_known_secret_value() {
        crate::redact::remember("secret events/test", "zeta-s3cret-6");
        let events = Events::default();
        events.record(EventType::Warning, "RolloutFailed", Some("web"), "logs: PORT=\"zeta-s3cret-6\" is not a port");
        assert_eq!(events.list()[0].message, "logs: PORT=\"<redacted>\" is not a port");
    }
}
