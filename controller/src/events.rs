//! The events ring: what the controller did and why (Created, Replaced, Pruned, Unhealthy,
//! InvalidManifest, ...), deduplicated like `kubectl get events` (same type, reason, service and
//! message: one entry with a count and first/last seen).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Normal or Warning, as in Kubernetes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// Routine.
    Normal,
    /// Something needs attention.
    Warning,
}

/// One (deduplicated) event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// PascalCase reason (`Created`, `RolloutFailed`).
    pub reason: String,
    /// The service it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What happened.
    pub message: String,
    /// How many times.
    pub count: u32,
    /// First occurrence (RFC 3339).
    #[serde(with = "rfc3339")]
    pub first_seen: SystemTime,
    /// Last occurrence (RFC 3339).
    #[serde(with = "rfc3339")]
    pub last_seen: SystemTime,
}

/// Serde for RFC 3339 timestamps.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Serializes a time as RFC 3339 (UTC, seconds).
    ///
    /// # Errors
    /// Never, beyond the serializer's own.
    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*time))
    }

    /// Parses RFC 3339.
    ///
    /// # Errors
    /// Text that is not RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(de::Error::custom)
    }
}

/// How many distinct events are kept.
pub const CAPACITY: usize = 500;

/// The ring of recent events.
#[derive(Debug, Default)]
pub struct Events {
    ring: Mutex<VecDeque<Event>>,
}

impl Events {
    /// Records an event, merging it into an identical recent one.
    pub fn record(&self, kind: EventType, reason: &str, service: Option<&str>, message: impl Into<String>) {
        let message = message.into();
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
}
