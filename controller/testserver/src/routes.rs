//! The test server's endpoints (`/`, `/health`, `/version`, `/env`, `/env/NAME`, `/file`,
//! `/fail`, `/recover`) and the shared state they read: version, hostname and health failure.

use std::env;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::http::{Request, Response};

/// `/file` refuses to serve more than this many bytes.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

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
}

impl State {
    pub fn new(version: String, hostname: String, fail_env: bool, fail_file: PathBuf) -> Self {
        Self { version, hostname, fail_env, fail_file, failing: AtomicBool::new(false) }
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

/// Routes one request. Never fails: every problem becomes a status code.
pub fn handle(state: &State, req: &Request) -> Response {
    let path = req.path();
    let (allowed, handler): (&[&str], Handler) = match path {
        "/" => (READ_METHODS, root),
        "/health" => (READ_METHODS, health),
        "/version" => (READ_METHODS, version),
        "/env" => (READ_METHODS, env_all),
        "/file" => (READ_METHODS, file),
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
