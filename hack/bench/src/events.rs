//! The engine's own clock on a rollout: a live feed of container and network events
//! (`GET /events`, streamed on one connection from a thread), each with the engine's
//! `timeNano`, so the time from a commit to a new version serving can be split into create,
//! start, readiness and the network moves without asking the controller. Streamed rather than
//! read back afterwards: the engine keeps only its last 256 events, and other work on a shared
//! engine could push ours out.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine;
use crate::util::{Error, Result, signed_secs};

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `container` or `network`.
    pub kind: String,
    /// `create`, `start`, `kill`, `die`, `destroy`, `connect`, `disconnect`, ...
    pub action: String,
    /// The container's id (the actor of a container event, the `container` attribute of a
    /// network event).
    pub container: String,
    /// The container's name (container events; empty for network events).
    pub name: String,
    /// The engine's time of it.
    pub time: SystemTime,
}

/// The feed; stops when dropped.
#[derive(Debug)]
pub struct Feed {
    events: Arc<Mutex<Vec<Event>>>,
    stream: UnixStream,
    handle: Option<JoinHandle<()>>,
}

impl Feed {
    /// Subscribes to container and network events from now on.
    ///
    /// # Errors
    /// The engine cannot be reached or refused.
    pub fn start() -> Result<Self> {
        let socket = engine::socket();
        let mut stream = UnixStream::connect(&socket)
            .map_err(|e| Error(format!("cannot connect to the Docker engine at {}: {e}", socket.display())))?;
        // The engine sends the head at once; the events as they come (no timeout then).
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let filters = engine::encode(r#"{"type":["container","network"]}"#);
        write!(stream, "GET /events?filters={filters} HTTP/1.0\r\nHost: docker\r\nUser-Agent: meme-bench\r\n\r\n")?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut status = String::new();
        reader.read_line(&mut status)?;
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(Error(format!("GET /events: {}", status.trim())));
        }
        // The rest of the head.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
        }
        stream.set_read_timeout(None)?;
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let out = Arc::clone(&events);
        let handle = std::thread::spawn(move || {
            for line in reader.lines().map_while(std::result::Result::ok) {
                if let Some(e) = parse(&line) {
                    out.lock().unwrap_or_else(PoisonError::into_inner).push(e);
                }
            }
        });
        Ok(Self { events, stream, handle: Some(handle) })
    }

    /// The first `action` of `container` at or after `since`, waiting up to half a second for
    /// the engine to send it (events arrive a little after the calls that caused them return).
    #[must_use]
    pub fn first(&self, container: &str, action: &str, since: SystemTime) -> Option<SystemTime> {
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        loop {
            let found = self
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|e| e.container == container && e.action == action && e.time >= since)
                .map(|e| e.time);
            if found.is_some() || std::time::Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Feed {
    /// The first container whose name starts with `prefix` created at or after `since`, as
    /// far as the events seen so far tell (no waiting).
    #[must_use]
    pub fn created(&self, prefix: &str, since: SystemTime) -> Option<String> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events
            .iter()
            .find(|e| e.kind == "container" && e.action == "create" && e.time >= since && e.name.starts_with(prefix))
            .map(|e| e.container.clone())
    }

    /// Whether `container` had an `action` at or after `since`, so far (no waiting).
    #[must_use]
    pub fn seen(&self, container: &str, action: &str, since: SystemTime) -> bool {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().any(|e| e.container == container && e.action == action && e.time >= since)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Seconds from `base` to `t`, when there is a `t`.
#[must_use]
pub fn since(base: SystemTime, t: Option<SystemTime>) -> Option<f64> {
    t.map(|t| signed_secs(base, t))
}

/// One line of the stream (a JSON object), when it is a container or network event.
fn parse(line: &str) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let kind = v["Type"].as_str()?.to_owned();
    let container = match kind.as_str() {
        "container" => v["Actor"]["ID"].as_str()?,
        "network" => v["Actor"]["Attributes"]["container"].as_str()?,
        _ => return None,
    }
    .to_owned();
    let nanos = v["timeNano"].as_u64()?;
    let name = if kind == "container" { v["Actor"]["Attributes"]["name"].as_str().unwrap_or_default() } else { "" };
    Some(Event {
        kind,
        action: v["Action"].as_str()?.to_owned(),
        container,
        name: name.to_owned(),
        time: UNIX_EPOCH + Duration::from_nanos(nanos),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_should_name_their_container() {
        let c = parse(
            r#"{"status":"start","id":"abc","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"s-web-1"}},"time":1,"timeNano":1500000000}"#,
        )
        .unwrap();
        assert_eq!((c.kind.as_str(), c.action.as_str(), c.container.as_str()), ("container", "start", "abc"));
        assert_eq!(c.time, UNIX_EPOCH + Duration::from_millis(1500));
        assert_eq!(c.name, "s-web-1");
        let n = parse(
            r#"{"Type":"network","Action":"connect","Actor":{"ID":"net1","Attributes":{"container":"abc","name":"s_net","type":"bridge"}},"timeNano":2}"#,
        )
        .unwrap();
        assert_eq!((n.action.as_str(), n.container.as_str()), ("connect", "abc"));
        assert!(parse(r#"{"Type":"image","Action":"pull","Actor":{"ID":"x"},"timeNano":1}"#).is_none());
        assert!(parse("not json").is_none());
    }
}
