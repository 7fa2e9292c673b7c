//! Connection handling: binding, the accept loop (one thread per connection, capped),
//! keep-alive, request bodies, timeouts and the one-line-per-request access log.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, SystemTime};

use crate::http::{self, Request, Response};
use crate::routes::{self, State};

/// Connections served concurrently; further ones are closed right away.
const MAX_CONNECTIONS: usize = 512;
/// Requests served on one keep-alive connection before it is closed.
const MAX_REQUESTS_PER_CONNECTION: usize = 1000;
/// Idle keep-alive connections and slow clients are dropped after this long without progress.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body accepted (and discarded): no endpoint reads bodies.
const MAX_BODY_BYTES: u64 = 1024 * 1024;

static ACTIVE_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// Writes one line to stdout, ignoring errors (a closed stdout must not kill the server).
pub fn log(args: fmt::Arguments<'_>) {
    if cfg!(test) {
        // Goes through the test harness's output capture.
        println!("{args}");
        return;
    }
    let mut out = io::stdout().lock();
    let _ = out.write_fmt(args);
    let _ = out.write_all(b"\n");
}

/// Serves a line echo on `listener` forever: every line a client sends comes back. No idle
/// timeout: a `PEER` connection may stay quiet for a long time.
pub fn echo(listener: &TcpListener) {
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let Ok(mut writer) = stream.try_clone() else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if writer.write_all(line.as_bytes()).is_err() {
                    return;
                }
                line.clear();
            }
        });
    }
}

/// Connects to `peer` (`host:port`), retrying every 200 ms until it answers (its name may not
/// resolve yet while it starts).
pub fn connect_peer(peer: &str) -> TcpStream {
    let mut attempts = 0u32;
    loop {
        match TcpStream::connect(peer) {
            Ok(stream) => {
                log(format_args!("connected to PEER {peer} ({:?})", stream.peer_addr().ok()));
                return stream;
            }
            Err(e) => {
                attempts += 1;
                if attempts % 25 == 1 {
                    log(format_args!("PEER {peer}: {e}; retrying"));
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Binds the listening socket. `addr` comes from [`crate::config::listen_addr`] in production and
/// is `127.0.0.1:0` in tests.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Accepts connections forever, serving each on its own thread.
pub fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log(format_args!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(guard) = ConnectionGuard::acquire() else {
            log(format_args!("too many connections, dropping {peer}"));
            continue;
        };
        let state = Arc::clone(&state);
        let spawned = thread::Builder::new().name("conn".into()).spawn(move || {
            let _guard = guard;
            handle_connection(stream, &state);
        });
        if let Err(e) = spawned {
            log(format_args!("cannot spawn connection thread: {e}"));
        }
    }
}

/// Counts a live connection for as long as it exists.
struct ConnectionGuard;

impl ConnectionGuard {
    fn acquire() -> Option<Self> {
        let previous = ACTIVE_CONNECTIONS.fetch_add(1, Ordering::SeqCst);
        if previous >= MAX_CONNECTIONS {
            ACTIVE_CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        ACTIVE_CONNECTIONS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Makes a request target safe to print on one log line.
fn printable(s: &str) -> String {
    s.chars().flat_map(char::escape_debug).collect()
}

fn handle_connection(stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::with_capacity(8 * 1024, stream);

    for served in 1..=MAX_REQUESTS_PER_CONNECTION {
        let req = match http::read_request(&mut reader) {
            Ok(req) => req,
            Err(e) => {
                if let Some(status) = e.status() {
                    log(format_args!("- - {status} ({})", e.message()));
                    respond_and_close(reader, &Response::text(status, format!("{}\n", e.message())), false);
                }
                return;
            }
        };
        if let Err(e) = discard_body(&mut reader, &req) {
            if let Some((status, message)) = e {
                log(format_args!("{} {} {status} ({message})", printable(&req.method), printable(&req.target)));
                respond_and_close(reader, &Response::text(status, format!("{message}\n")), req.method == "HEAD");
            }
            return;
        }
        let keep_alive = req.keep_alive() && served < MAX_REQUESTS_PER_CONNECTION;
        let resp = routes::handle(state, &req);
        log(format_args!("{} {} {}", printable(&req.method), printable(&req.target), resp.status));
        let bytes = resp.serialize(req.method == "HEAD", keep_alive, &http::http_date(SystemTime::now()));
        if reader.get_mut().write_all(&bytes).and_then(|()| reader.get_mut().flush()).is_err() {
            return;
        }
        if !keep_alive {
            close_gracefully(reader);
            return;
        }
    }
}

/// Reads and drops the request body. `Err(Some(..))` means answer with that status and close,
/// `Err(None)` means just close.
fn discard_body(reader: &mut BufReader<TcpStream>, req: &Request) -> Result<(), Option<(u16, &'static str)>> {
    if req.headers_named("transfer-encoding").next().is_some() {
        return Err(Some((501, "Transfer-Encoding is not supported, send Content-Length")));
    }
    let mut length: Option<u64> = None;
    for value in req.headers_named("content-length").flat_map(|v| v.split(',')) {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Some((400, "malformed Content-Length")));
        }
        let n: u64 = value.parse().map_err(|_| Some((413, "request body too large")))?;
        if length.is_some_and(|l| l != n) {
            return Err(Some((400, "conflicting Content-Length values")));
        }
        length = Some(n);
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY_BYTES {
        return Err(Some((413, "request body too large")));
    }
    match io::copy(&mut reader.by_ref().take(length), &mut io::sink()) {
        Ok(n) if n == length => Ok(()),
        _ => Err(None),
    }
}

fn respond_and_close(mut reader: BufReader<TcpStream>, resp: &Response, head_only: bool) {
    let bytes = resp.serialize(head_only, false, &http::http_date(SystemTime::now()));
    if reader.get_mut().write_all(&bytes).is_ok() {
        close_gracefully(reader);
    }
}

/// Half-closes and drains briefly, so that unread request bytes do not turn the close into a
/// reset that could destroy the response before the client reads it.
fn close_gracefully(mut reader: BufReader<TcpStream>) {
    let _ = reader.get_ref().shutdown(Shutdown::Write);
    let _ = reader.get_ref().set_read_timeout(Some(Duration::from_millis(500)));
    let buffered = reader.buffer().len();
    reader.consume(buffered);
    let _ = io::copy(&mut reader.get_mut().take(256 * 1024), &mut io::sink());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn start(fail_file: PathBuf) -> SocketAddr {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::new("v-test".into(), "test-host".into(), false, fail_file));
        thread::spawn(move || serve(listener, state));
        addr
    }

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Reads one response; `head` means the request was HEAD (no body follows).
    fn read_reply(r: &mut impl BufRead, head: bool) -> Reply {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').unwrap();
            headers.push((n.to_owned(), v.trim().to_owned()));
        }
        let mut reply = Reply { status, headers, body: Vec::new() };
        let len: usize = reply.header("content-length").unwrap().parse().unwrap();
        if !head {
            reply.body.resize(len, 0);
            r.read_exact(&mut reply.body).unwrap();
        }
        reply
    }

    /// Sends `raw` on a fresh connection and reads one response.
    fn raw_request(addr: SocketAddr, raw: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        stream.write_all(raw).unwrap();
        read_reply(&mut BufReader::new(stream), raw.starts_with(b"HEAD "))
    }

    fn request(addr: SocketAddr, method: &str, target: &str) -> Reply {
        raw_request(addr, format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("meme-testserver-{}-{name}", std::process::id()))
    }

    #[test]
    fn serves_real_http_over_tcp() {
        let fail_file = temp_path("fail-health");
        let _ = std::fs::remove_file(&fail_file);
        let addr = start(fail_file.clone());

        let r = request(addr, "GET", "/health");
        assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(request(addr, "GET", "/version").text(), "v-test\n");
        assert_eq!(request(addr, "GET", "/").text(), "meme-testserver v-test test-host\n");

        // HEAD: same headers, no body.
        let r = request(addr, "HEAD", "/version");
        assert_eq!((r.status, r.header("content-length"), r.body.len()), (200, Some("7"), 0));

        // Failing via POST /fail and POST /recover, with a request body to discard.
        let r = raw_request(addr, b"POST /fail HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        assert_eq!(r.status, 200);
        let r = request(addr, "GET", "/health");
        assert_eq!((r.status, r.text().as_str()), (503, "failing\n"));
        assert_eq!(request(addr, "POST", "/recover").status, 200);
        assert_eq!(request(addr, "GET", "/health").status, 200);

        // Failing via the fail file.
        std::fs::write(&fail_file, b"").unwrap();
        assert_eq!(request(addr, "GET", "/health").status, 503);
        std::fs::remove_file(&fail_file).unwrap();
        assert_eq!(request(addr, "GET", "/health").status, 200);

        // Environment.
        let (name, value) = std::env::vars_os()
            .filter_map(|(n, v)| Some((n.into_string().ok()?, v.into_string().ok()?)))
            .find(|(n, v)| n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !v.contains('\n'))
            .expect("some plain environment variable");
        let r = request(addr, "GET", &format!("/env/{name}"));
        assert_eq!((r.status, r.text()), (200, format!("{value}\n")));
        assert_eq!(request(addr, "GET", "/env/MEME_TESTSERVER_SURELY_UNSET_42").status, 404);
        let all = request(addr, "GET", "/env").text();
        assert!(all.lines().any(|l| l == format!("{name}={value}")));
        let names: Vec<&str> = all.lines().filter_map(|l| l.split_once('=')).map(|(n, _)| n).collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "sorted by name");

        // Files.
        let file = temp_path("file");
        std::fs::write(&file, b"hello\nfile\n").unwrap();
        let r = request(addr, "GET", &format!("/file?path={}", file.display()));
        assert_eq!((r.status, r.text().as_str()), (200, "hello\nfile\n"));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(request(addr, "GET", &format!("/file?path={}", file.display())).status, 404);

        // Errors.
        assert_eq!(request(addr, "GET", "/nope").status, 404);
        assert_eq!(request(addr, "DELETE", "/health").status, 405);
        assert_eq!(raw_request(addr, b"garbage\r\n\r\n").status, 400);
        assert_eq!(raw_request(addr, b"GET / HTTP/3.0\r\n\r\n").status, 505);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(http::MAX_REQUEST_LINE + 10));
        assert_eq!(raw_request(addr, long.as_bytes()).status, 414);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(http::MAX_HEADER_BYTES + 10));
        assert_eq!(raw_request(addr, big.as_bytes()).status, 431);
        let chunked = b"POST /fail HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(raw_request(addr, chunked).status, 501);
        assert_eq!(raw_request(addr, b"POST /fail HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").status, 413);
        assert_eq!(request(addr, "GET", "/health").status, 200, "rejected requests changed nothing");

        // The health check client agrees.
        assert_eq!(crate::check::check(&format!("http://{addr}/health"), Duration::from_secs(2)), Ok(200));
        assert!(crate::check::check(&format!("http://{addr}/nope"), Duration::from_secs(2)).is_err());
    }

    #[test]
    fn keep_alive_and_pipelining() {
        let addr = start(temp_path("unused-fail-file"));
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Two pipelined requests, then a third after reading the first replies.
        stream.write_all(b"GET /version HTTP/1.1\r\nHost: t\r\n\r\nHEAD /health HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let first = read_reply(&mut reader, false);
        assert_eq!((first.status, first.text().as_str()), (200, "v-test\n"));
        assert_eq!(first.header("connection"), Some("keep-alive"));
        let second = read_reply(&mut reader, true);
        assert_eq!((second.status, second.header("content-length")), (200, Some("3")));
        stream.write_all(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let third = read_reply(&mut reader, false);
        assert_eq!((third.text().as_str(), third.header("connection")), ("ok\n", Some("close")));
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "server closed the connection after Connection: close");

        // HTTP/1.0 without keep-alive closes too.
        let r = raw_request(addr, b"GET /version HTTP/1.0\r\n\r\n");
        assert_eq!(r.header("connection"), Some("close"));
    }
}
