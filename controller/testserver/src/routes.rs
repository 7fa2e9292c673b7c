//! The test server's endpoints (`/`, `/health`, `/version`, `/env`, `/env/NAME`, `/file`,
//! `/slow`, `/peer`, `/fail`, `/recover`) and the shared state they read: version, hostname,
//! health failure, a build that fails everything, and the connection to a peer.

use std::env;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::http::{Request, Response};

/// `/file` refuses to serve more than this many bytes.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// `/slow` sleeps at most this long.
const MAX_SLOW_MS: u64 = 60_000;

/// Everything the handlers need, shared by all connections.
#[derive(Debug)]
pub struct State {
    pub version: String,
    pub hostname: String,
    /// `FAIL_HEALTH=1` at startup: `/health` fails for the whole process lifetime.
    pub fail_env: bool,
    /// While this file exists, `/health` fails (normally `/tmp/fail-health`).
    pub fail_file: PathBuf,
    /// Set by `POST /fail`, cleared by `POST /recover`.
    failing: AtomicBool,
    /// `FAIL_ALL=1`: every endpoint answers 500 (a broken build).
    pub fail_all: bool,
    /// The connection opened to `PEER` at startup.
    pub peer: Mutex<Option<TcpStream>>,
}

impl State {
    pub fn new(version: String, hostname: String, fail_env: bool, fail_file: PathBuf) -> Self {
        Self {
            version,
            hostname,
            fail_env,
            fail_file,
            failing: AtomicBool::new(false),
            fail_all: false,
            peer: Mutex::new(None),
        }
    }

    /// Why `/health` fails right now, if it does.
    pub fn failure_reason(&self) -> Option<&'static str> {
        if self.fail_env {
            Some("FAIL_HEALTH")
        } else if self.failing.load(Ordering::SeqCst) {
            Some("POST /fail")
        } else if self.fail_file.exists() {
            // `exists` is false on any error, e.g. when /tmp does not exist at all.
            Some("fail file")
        } else {
            None
        }
    }
}

type Handler = fn(&State, &Request) -> Response;

const READ_METHODS: &[&str] = &["GET", "HEAD"];
const WRITE_METHODS: &[&str] = &["POST"];
const READ_AND_WRITE_METHODS: &[&str] = &["GET", "HEAD", "POST"];

/// Routes one request. Never fails: every problem becomes a status code.
pub fn handle(state: &State, req: &Request) -> Response {
    if state.fail_all {
        return Response::text(500, format!("meme-testserver {} is broken (FAIL_ALL)\n", state.version));
    }
    let path = req.path();
    let (allowed, handler): (&[&str], Handler) = match path {
        "/" => (READ_METHODS, root),
        "/health" => (READ_METHODS, health),
        "/version" => (READ_METHODS, version),
        "/env" => (READ_METHODS, env_all),
        "/file" => (READ_METHODS, file),
        // POST too: a proxy never retries a POST cut in flight, so it shows a cut request.
        "/slow" => (READ_AND_WRITE_METHODS, slow),
        "/peer" => (READ_METHODS, peer),
        "/fail" => (WRITE_METHODS, fail),
        "/recover" => (WRITE_METHODS, recover),
        p if p.starts_with("/env/") => (READ_METHODS, env_one),
        _ => return Response::text(404, "not found\n"),
    };
    if allowed.contains(&req.method.as_str()) {
        handler(state, req)
    } else {
        Response::text(405, "method not allowed\n").with_header("Allow", allowed.join(", "))
    }
}

fn root(state: &State, _: &Request) -> Response {
    Response::text(200, format!("meme-testserver {} {}\n", state.version, state.hostname))
}

fn health(state: &State, _: &Request) -> Response {
    match state.failure_reason() {
        None => Response::text(200, "ok\n"),
        Some(_) => Response::text(503, "failing\n"),
    }
}

fn version(state: &State, _: &Request) -> Response {
    Response::text(200, format!("{}\n", state.version))
}

fn env_all(_: &State, _: &Request) -> Response {
    // `vars_os`, not `vars`: the latter panics on non-Unicode variables.
    let mut vars: Vec<_> = env::vars_os().collect();
    vars.sort();
    let mut body = Vec::new();
    for (name, value) in vars {
        body.extend_from_slice(name.as_bytes());
        body.push(b'=');
        body.extend_from_slice(value.as_bytes());
        body.push(b'\n');
    }
    Response::bytes(200, crate::http::TEXT, body)
}

fn env_one(_: &State, req: &Request) -> Response {
    let raw = req.path().strip_prefix("/env/").unwrap_or_default();
    let Ok(name) = crate::http::percent_decode(raw) else {
        return Response::text(400, "bad percent-encoding in variable name\n");
    };
    // `var_os` panics on names containing `=` or NUL; such variables cannot exist anyway.
    if name.is_empty() || name.contains(&b'=') || name.contains(&0) {
        return Response::text(404, "not set\n");
    }
    match env::var_os(OsStr::from_bytes(&name)) {
        Some(value) => {
            let mut body = value.into_vec();
            body.push(b'\n');
            Response::bytes(200, crate::http::TEXT, body)
        }
        None => Response::text(404, "not set\n"),
    }
}

fn file(_: &State, req: &Request) -> Response {
    let path = match req.query_param("path") {
        Some(Ok(p)) if !p.is_empty() && !p.contains(&0) => p,
        Some(Err(())) => return Response::text(400, "bad percent-encoding in path\n"),
        _ => return Response::text(400, "missing ?path=/some/file\n"),
    };
    let path = Path::new(OsStr::from_bytes(&path));
    let result = File::open(path).and_then(|f| {
        if f.metadata()?.is_dir() {
            return Err(std::io::Error::other("is a directory"));
        }
        let mut body = Vec::new();
        f.take(MAX_FILE_BYTES + 1).read_to_end(&mut body)?;
        Ok(body)
    });
    match result {
        Ok(body) if body.len() as u64 > MAX_FILE_BYTES => {
            Response::text(500, format!("file larger than {MAX_FILE_BYTES} bytes\n"))
        }
        Ok(body) => Response::bytes(200, "application/octet-stream", body),
        Err(e) => Response::text(404, format!("{}: {e}\n", path.display())),
    }
}

/// `/slow?ms=N`: answers like `/` after N milliseconds (a request in flight during a swap).
fn slow(state: &State, req: &Request) -> Response {
    let ms = match req.query_param("ms") {
        Some(Ok(v)) => match std::str::from_utf8(&v).ok().and_then(|v| v.parse::<u64>().ok()) {
            Some(ms) if ms <= MAX_SLOW_MS => ms,
            _ => return Response::text(400, format!("ms must be a number of milliseconds up to {MAX_SLOW_MS}\n")),
        },
        _ => return Response::text(400, "missing ?ms=N\n"),
    };
    std::thread::sleep(Duration::from_millis(ms));
    Response::text(200, format!("meme-testserver {} {} slept {ms}ms\n", state.version, state.hostname))
}

/// `/peer`: sends a line over the connection opened to `PEER` at startup and expects it back.
fn peer(state: &State, _: &Request) -> Response {
    let mut guard = state.peer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(stream) = guard.as_mut() else { return Response::text(404, "no PEER connection\n") };
    let mut exchange = || -> std::io::Result<String> {
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"ping\n")?;
        let mut line = String::new();
        BufReader::new(&*stream).read_line(&mut line)?;
        Ok(line)
    };
    match exchange() {
        Ok(line) if line == "ping\n" => Response::text(200, format!("peer connection ok ({})\n", state.version)),
        Ok(line) => Response::text(502, format!("peer connection answered {line:?}\n")),
        Err(e) => Response::text(502, format!("peer connection broken: {e}\n")),
    }
}

fn fail(state: &State, _: &Request) -> Response {
    state.failing.store(true, Ordering::SeqCst);
    Response::text(200, "health now failing\n")
}

fn recover(state: &State, _: &Request) -> Response {
    state.failing.store(false, Ordering::SeqCst);
    match state.failure_reason() {
        None => Response::text(200, "recovered\n"),
        Some(reason) => Response::text(200, format!("recovered, but still failing because of {reason}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Version, read_request};

    fn state() -> State {
        State::new("v9".into(), "box".into(), false, PathBuf::from("/nonexistent/fail-health"))
    }

    fn get(state: &State, method: &str, target: &str) -> Response {
        let raw = format!("{method} {target} HTTP/1.1\r\n\r\n");
        let req = read_request(&mut raw.as_bytes()).unwrap();
        assert_eq!(req.version, Version::Http11);
        handle(state, &req)
    }

    fn body(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).into_owned()
    }

    #[test]
    fn routes_and_methods() {
        let s = state();
        assert_eq!(body(&get(&s, "GET", "/")), "meme-testserver v9 box\n");
        assert_eq!(body(&get(&s, "GET", "/version")), "v9\n");
        assert_eq!(get(&s, "HEAD", "/version").status, 200);
        assert_eq!(get(&s, "GET", "/nope").status, 404);
        assert_eq!(get(&s, "DELETE", "/nope").status, 404);
        let r = get(&s, "PUT", "/health");
        assert_eq!(r.status, 405);
        assert_eq!(r.headers, vec![("Allow", "GET, HEAD".to_owned())]);
        assert_eq!(get(&s, "GET", "/fail").status, 405);
        assert_eq!(get(&s, "GET", "/env/").status, 404);
        assert_eq!(get(&s, "GET", "/env/A%3DB").status, 404);
        assert_eq!(get(&s, "GET", "/env/%00").status, 404);
        assert_eq!(get(&s, "GET", "/env/%zz").status, 400);
        assert_eq!(get(&s, "GET", "/file").status, 400);
        assert_eq!(get(&s, "GET", "/file?path=%00").status, 400);
        assert_eq!(get(&s, "GET", "/file?path=/").status, 404);
        assert_eq!(get(&s, "GET", "/file?path=/does/not/exist").status, 404);
    }

    #[test]
    fn slow_and_fail_all() {
        let s = state();
        assert_eq!(get(&s, "GET", "/slow").status, 400);
        assert_eq!(get(&s, "GET", "/slow?ms=x").status, 400);
        assert_eq!(get(&s, "GET", "/slow?ms=99999999").status, 400);
        let r = get(&s, "GET", "/slow?ms=20");
        assert_eq!((r.status, body(&r)), (200, "meme-testserver v9 box slept 20ms\n".to_owned()));
        assert_eq!(get(&s, "GET", "/peer").status, 404, "no PEER");
        let broken = State { fail_all: true, ..state() };
        for path in ["/", "/health", "/version", "/nope"] {
            assert_eq!(get(&broken, "GET", path).status, 500, "{path}");
        }
    }

    #[test]
    fn health_follows_fail_and_recover() {
        let s = state();
        assert_eq!(body(&get(&s, "GET", "/health")), "ok\n");
        assert_eq!(get(&s, "POST", "/fail").status, 200);
        let r = get(&s, "GET", "/health");
        assert_eq!((r.status, body(&r)), (503, "failing\n".to_owned()));
        assert_eq!(body(&get(&s, "POST", "/recover")), "recovered\n");
        assert_eq!(get(&s, "GET", "/health").status, 200);

        let from_env = State { fail_env: true, ..state() };
        assert_eq!(get(&from_env, "GET", "/health").status, 503);
        assert!(body(&get(&from_env, "POST", "/recover")).contains("FAIL_HEALTH"));
    }
}
