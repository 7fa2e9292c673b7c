//! A counting proxy for the Docker API: a Unix socket that forwards bytes both ways to the
//! engine's socket and, on the client→engine direction, parses every HTTP request head (keep-alive
//! connections carry several requests; bodies are skipped by `Content-Length` or chunked
//! framing; an upgraded connection is forwarded blind from then on). A client pointed at it with
//! `DOCKER_HOST=unix://<path>` works as before; every request it makes is recorded with its time.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::engine::find;
use crate::util::{Error, Result};

/// One request seen by the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// When its head was complete.
    pub at: Instant,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent (`/v1.41/containers/json?all=true&...`).
    pub target: String,
}

impl Call {
    /// `METHOD /normalized/path` (API version prefix dropped, ids and names as `{id}`/`{name}`).
    #[must_use]
    pub fn key(&self) -> String {
        format!("{} {}", self.method, normalize_path(self.target.split('?').next().unwrap_or_default()))
    }

    /// The query, with variable values elided and `filters` reduced to its keys (label filters
    /// to their label keys).
    #[must_use]
    pub fn query(&self) -> String {
        self.target.split_once('?').map(|(_, q)| summarize_query(q)).unwrap_or_default()
    }

    /// Whether this is a container list call.
    #[must_use]
    pub fn is_list(&self) -> bool {
        self.key() == "GET /containers/json"
    }
}

type Log = Arc<Mutex<Vec<Call>>>;

/// A running proxy; stops accepting when dropped (open connections drain on their own).
#[derive(Debug)]
pub struct Proxy {
    path: PathBuf,
    log: Log,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on `path`, forwarding to `upstream`.
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub fn start(path: &Path, upstream: &Path) -> Result<Self> {
        let listener = UnixListener::bind(path)
            .map_err(|e| Error(format!("cannot listen on proxy socket {}: {e}", path.display())))?;
        let log: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_log, accept_stop, upstream) = (Arc::clone(&log), Arc::clone(&stop), upstream.to_owned());
        std::thread::Builder::new().name("proxy-accept".into()).spawn(move || {
            for client in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (log, upstream) = (Arc::clone(&accept_log), upstream.clone());
                let _ = std::thread::Builder::new().name("proxy-conn".into()).spawn(move || {
                    if let Err(e) = forward(client, &upstream, &log) {
                        eprintln!("meme-bench proxy: {e}");
                    }
                });
            }
        })?;
        Ok(Self { path: path.to_owned(), log, stop })
    }

    /// The socket, for `DOCKER_HOST=unix://...`.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every call so far.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Calls made within `[from, to)`.
    #[must_use]
    pub fn calls_between(&self, from: Instant, to: Instant) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.at >= from && c.at < to).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Calls grouped by `(key, query)` with their counts.
#[must_use]
pub fn count_by_path(calls: &[Call]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for call in calls {
        *counts.entry((call.key(), call.query())).or_insert(0) += 1;
    }
    counts
}

fn forward(mut client: UnixStream, upstream: &Path, log: &Log) -> Result<()> {
    let mut engine = UnixStream::connect(upstream)
        .map_err(|e| Error(format!("cannot connect to the engine at {}: {e}", upstream.display())))?;
    let (mut engine_read, mut client_write) = (engine.try_clone()?, client.try_clone()?);
    let back = std::thread::Builder::new().name("proxy-back".into()).spawn(move || {
        let _ = std::io::copy(&mut engine_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    })?;
    let mut parser = RequestParser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for (method, target) in parser.feed(&buf[..n]) {
            log.lock().unwrap_or_else(PoisonError::into_inner).push(Call { at: Instant::now(), method, target });
        }
        if engine.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = engine.shutdown(Shutdown::Write);
    let _ = back.join();
    Ok(())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Reading a request head.
    #[default]
    Head,
    /// Skipping this many body bytes.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Skipping chunk data.
    ChunkData(u64),
    /// Skipping the CRLF after chunk data.
    ChunkEnd(u64),
    /// Reading trailer lines after the last chunk.
    Trailer,
    /// Upgraded or unparseable: no more requests on this connection.
    Raw,
}

/// Incremental parser of the request heads in a client's byte stream.
#[derive(Debug, Default)]
pub struct RequestParser {
    state: State,
    buf: Vec<u8>,
}

/// A request head larger than this is not HTTP we understand.
const MAX_HEAD: usize = 1 << 20;

impl RequestParser {
    /// Feeds bytes; returns the `(method, target)` of every request head completed by them.
    pub fn feed(&mut self, data: &[u8]) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let mut data = data;
        while !data.is_empty() {
            match self.state {
                State::Raw => break,
                State::Body(n) | State::ChunkData(n) | State::ChunkEnd(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                    data = &data[take..];
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (State::ChunkData(_), 0) => State::ChunkEnd(2),
                        (State::ChunkData(_), l) => State::ChunkData(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkEnd(l),
                    };
                }
                State::Head => {
                    let (consumed, head) = self.take_until(data, b"\r\n\r\n");
                    data = &data[consumed..];
                    if let Some(head) = head {
                        let (request, next) = parse_head(&head);
                        found.extend(request);
                        self.state = next;
                    } else if self.buf.len() > MAX_HEAD {
                        self.state = State::Raw;
                    }
                }
                State::ChunkSize => {
                    let (consumed, line) = self.take_until(data, b"\r\n");
                    data = &data[consumed..];
                    if let Some(line) = line {
                        let text = String::from_utf8_lossy(&line);
                        let size = text.trim().split(';').next().and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
                        self.state = match size {
                            Some(0) => State::Trailer,
                            Some(n) => State::ChunkData(n),
                            None => State::Raw,
                        };
                    }
                }
                State::Trailer => {
                    let (consumed, line) = self.take_until(data, b"\r\n");
                    data = &data[consumed..];
                    if let Some(line) = line
                        && line.len() == 2
                    {
                        self.state = State::Head;
                    }
                }
            }
        }
        found
    }

    /// Buffers `data` up to and including `delimiter`; returns how much of `data` was used and
    /// the whole buffered piece once the delimiter was seen.
    fn take_until(&mut self, data: &[u8], delimiter: &[u8]) -> (usize, Option<Vec<u8>>) {
        let start = self.buf.len().saturating_sub(delimiter.len() - 1);
        self.buf.extend_from_slice(data);
        match find(&self.buf[start..], delimiter) {
            Some(pos) => {
                let end = start + pos + delimiter.len();
                let used = end - (self.buf.len() - data.len());
                let piece = self.buf[..end].to_vec();
                self.buf.clear();
                (used, Some(piece))
            }
            None => (data.len(), None),
        }
    }
}

/// The request line of a head and what follows it.
fn parse_head(head: &[u8]) -> (Option<(String, String)>, State) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return (None, State::Raw);
    };
    if !version.starts_with("HTTP/") {
        return (None, State::Raw);
    }
    let (mut length, mut chunked, mut upgrade) = (0u64, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("upgrade")
            || (name.eq_ignore_ascii_case("connection") && value.to_ascii_lowercase().contains("upgrade"))
        {
            upgrade = true;
        }
    }
    let next = if upgrade {
        State::Raw
    } else if chunked {
        State::ChunkSize
    } else if length > 0 {
        State::Body(length)
    } else {
        State::Head
    };
    (Some((method.to_owned(), target.to_owned())), next)
}

/// `/v1.41/containers/0123abcd/start` → `/containers/{id}/start`.
#[must_use]
pub fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.first().is_some_and(|s| s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.')) {
        segments.remove(0);
    }
    let fixed = |s: &str| matches!(s, "json" | "create" | "prune" | "load" | "search" | "get");
    let mut out: Vec<String> = Vec::new();
    match segments.first().copied() {
        Some(kind @ ("containers" | "networks" | "volumes" | "exec" | "plugins")) => {
            out.push(kind.to_owned());
            if let Some(second) = segments.get(1) {
                out.push(if fixed(second) { (*second).to_owned() } else { "{id}".to_owned() });
            }
            out.extend(segments.iter().skip(2).map(|s| (*s).to_owned()));
        }
        Some("images") => {
            out.push("images".to_owned());
            // Image names hold slashes: everything between /images/ and the last verb is the name.
            let rest = &segments[1..];
            match rest {
                [] => {}
                [only] if fixed(only) => out.push((*only).to_owned()),
                [.., verb] if matches!(*verb, "json" | "history" | "push" | "tag") => {
                    out.push("{name}".to_owned());
                    out.push((*verb).to_owned());
                }
                _ => out.push("{name}".to_owned()),
            }
        }
        _ => out.extend(segments.iter().map(|s| (*s).to_owned())),
    }
    format!("/{}", out.join("/"))
}

fn summarize_query(query: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match name {
            "filters" => parts.push(format!("filters={}", summarize_filters(&value))),
            "since" | "until" | "name" | "path" | "tail" | "fromImage" => parts.push(format!("{name}=…")),
            _ => parts.push(format!("{name}={value}")),
        }
    }
    parts.join("&")
}

fn summarize_filters(json: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return "…".to_owned();
    };
    let mut out = Vec::new();
    for (key, value) in &map {
        let values: Vec<String> = match value {
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            // The older map form: {"label": {"k=v": true}}.
            serde_json::Value::Object(items) => items.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut values: Vec<String> = if key == "label" {
            values
                .iter()
                .map(|v| {
                    let k = v.split('=').next().unwrap_or_default();
                    k.strip_prefix("pro.memeit.").unwrap_or(k).to_owned()
                })
                .collect()
        } else if key == "name" || key == "id" {
            vec!["…".to_owned()]
        } else {
            values
        };
        values.sort();
        out.push(format!("{key}:{}", values.join(",")));
    }
    format!("{{{}}}", out.join(" "))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_requests_with_bodies_should_all_be_seen() {
        let mut p = RequestParser::default();
        let stream = b"GET /v1.41/version HTTP/1.1\r\nHost: d\r\n\r\n\
POST /v1.41/containers/create?name=x HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\r\n\"}\
POST /v1.41/containers/abc/start HTTP/1.1\r\nHost: d\r\n\r\n";
        // Fed byte by byte and all at once: the same requests.
        let all = p.feed(stream);
        let mut q = RequestParser::default();
        let split: Vec<(String, String)> = stream.iter().flat_map(|b| q.feed(std::slice::from_ref(b))).collect();
        assert_eq!(all, split);
        let methods: Vec<&str> = all.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(methods, ["GET", "POST", "POST"]);
        assert_eq!(all[2].1, "/v1.41/containers/abc/start");
    }

    #[test]
    fn chunked_bodies_and_upgrades_should_be_followed() {
        let mut p = RequestParser::default();
        let found = p.feed(
            b"PUT /containers/a/archive?path=%2F HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nGET /\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n\
POST /exec/1/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nGET /not-a-request HTTP/1.1\r\n\r\n",
        );
        let targets: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(targets, ["/containers/a/archive?path=%2F", "/exec/1/start"]);
    }

    #[test]
    fn paths_should_be_normalized() {
        assert_eq!(normalize_path("/v1.41/containers/json"), "/containers/json");
        assert_eq!(normalize_path("/v1.41/containers/0123abc/start"), "/containers/{id}/start");
        assert_eq!(normalize_path("/containers/create"), "/containers/create");
        assert_eq!(normalize_path("/v1.41/networks/s_net"), "/networks/{id}");
        assert_eq!(normalize_path("/v1.41/images/ghcr.io/a/b:1/json"), "/images/{name}/json");
        assert_eq!(normalize_path("/v1.41/images/create"), "/images/create");
        assert_eq!(normalize_path("/_ping"), "/_ping");
        assert_eq!(normalize_path("/v1.41/events"), "/events");
    }

    #[test]
    fn queries_should_be_summarized() {
        let call = Call {
            at: Instant::now(),
            method: "GET".into(),
            target: format!(
                "/v1.41/containers/json?all=true&filters={}",
                crate::engine::encode(r#"{"label":["pro.memeit.managed-by=meme-controller","pro.memeit.stack=s"]}"#)
            ),
        };
        assert_eq!(call.key(), "GET /containers/json");
        assert_eq!(call.query(), "all=true&filters={label:managed-by,stack}");
        assert!(call.is_list());
        assert_eq!(percent_decode("a%2Fb+c%"), "a/b c%");
    }

    #[test]
    fn the_proxy_should_forward_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let upstream_path = dir.path().join("up.sock");
        let upstream = UnixListener::bind(&upstream_path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = upstream.accept().unwrap();
            let mut p = RequestParser::default();
            let mut buf = [0u8; 1024];
            let mut seen = 0;
            while seen < 2 {
                let n = s.read(&mut buf).unwrap();
                for _ in p.feed(&buf[..n]) {
                    seen += 1;
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
                }
            }
        });
        let proxy = Proxy::start(&dir.path().join("proxy.sock"), &upstream_path).unwrap();
        let mut client = UnixStream::connect(proxy.path()).unwrap();
        client
            .write_all(b"GET /v1.41/_ping HTTP/1.1\r\n\r\nGET /v1.41/containers/json?all=1 HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < 2 * 40 {
            let n = client.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&got).matches("ok").count(), 2);
        let keys: Vec<String> = proxy.calls().iter().map(Call::key).collect();
        assert_eq!(keys, ["GET /_ping", "GET /containers/json"]);
    }
}
