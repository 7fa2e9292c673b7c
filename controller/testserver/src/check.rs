//! The `check [URL]` subcommand: one HTTP GET with a deadline, exit 0 on 2xx, 1 otherwise.
//! A curl replacement for `HEALTHCHECK` in a `FROM scratch` image (only `http://host[:port]/path`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Total time budget of one check (connect, send, receive the status line).
pub const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host without brackets, used to connect.
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written, for the `Host` header.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (authority, path) = rest.find(['/', '?']).map_or((rest, "/"), |i| rest.split_at(i));
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
    if path.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!("{url:?}: the path must be percent-encoded ASCII without spaces"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("{url:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains('@') || host.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(format!("{url:?}: bad host"));
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
    };
    Ok(Url { host: host.to_owned(), port, authority: authority.to_owned(), path })
}

/// Resolves without the resolver where possible: a static binary in a scratch image has no NSS,
/// so IP literals and `localhost` must not go through `getaddrinfo`.
fn resolve(url: &Url) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    if url.host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), url.port)]);
    }
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("cannot resolve {}: no addresses", url.host));
    }
    Ok(addrs)
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()).ok_or_else(|| "timed out".to_owned())
}

/// Performs the GET and returns the status code if it is 2xx, an explanation otherwise.
pub fn check(url: &str, timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let url = parse_url(url)?;
    let mut last_error = String::from("no address");
    let mut stream = None;
    for addr in resolve(&url)? {
        match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("connect {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: meme-testserver-check\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream.set_write_timeout(Some(remaining(deadline)?)).map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).map_err(|e| format!("send: {e}"))?;
    stream.set_read_timeout(Some(remaining(deadline)?)).map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    BufReader::new(stream.take(1024)).read_until(b'\n', &mut line).map_err(|e| format!("receive: {e}"))?;
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end();
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("malformed status line {line:?}"))?;
    if (200..300).contains(&status) { Ok(status) } else { Err(format!("status {status}")) }
}

/// `meme-testserver check [URL]`. Never exits 2: Docker reserves that code in health checks.
pub fn run(url: Option<&str>, port: u16) -> ExitCode {
    let url = url.map_or_else(|| format!("http://127.0.0.1:{port}/health"), str::to_owned);
    match check(&url, TIMEOUT) {
        Ok(status) => {
            let _ = writeln!(std::io::stdout(), "{url}: {status}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{url}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn url(host: &str, port: u16, authority: &str, path: &str) -> Url {
        Url { host: host.into(), port, authority: authority.into(), path: path.into() }
    }

    #[test]
    fn parses_urls() {
        assert_eq!(parse_url("http://127.0.0.1:8080/health"), Ok(url("127.0.0.1", 8080, "127.0.0.1:8080", "/health")));
        assert_eq!(parse_url("http://example"), Ok(url("example", 80, "example", "/")));
        assert_eq!(parse_url("http://h:1?x=1"), Ok(url("h", 1, "h:1", "/?x=1")));
        assert_eq!(parse_url("http://[::1]:9/a/b?c"), Ok(url("::1", 9, "[::1]:9", "/a/b?c")));
        assert_eq!(parse_url("http://[::1]/"), Ok(url("::1", 80, "[::1]", "/")));
        for bad in [
            "https://h/",
            "h:80/x",
            "http://",
            "http://:80/",
            "http://h:99999/",
            "http://h:x/",
            "http://[::1/",
            "http://u@h/",
            "http://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn connection_refused_fails_fast() {
        // Bind then drop to get a port that is (very likely) closed.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let started = Instant::now();
        assert!(check(&format!("http://127.0.0.1:{port}/health"), TIMEOUT).is_err());
        assert!(started.elapsed() < TIMEOUT);
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        let result = check(&format!("http://{addr}/"), Duration::from_millis(300));
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }
}
