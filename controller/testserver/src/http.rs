//! HTTP/1.1 wire format: bounded request-head parsing, query/percent decoding, keep-alive rules
//! and response serialization (including the `Date` header). No I/O policy lives here.

use std::fmt::Write as _;
use std::io::{self, BufRead};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest accepted request line (method, target and version), in bytes.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest accepted header section (all header lines together), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 100;
/// Empty lines tolerated before a request line (RFC 9112 §2.2 robustness).
const MAX_LEADING_EMPTY_LINES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A parsed request head. The body (if any) is still in the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, String)>,
}

/// Why no request could be read. [`ParseError::status`] says whether to answer before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The peer closed the connection cleanly before sending anything.
    Closed,
    /// The peer closed the connection in the middle of a request head.
    Truncated,
    /// Reading failed (timeout, reset, ...).
    Io(io::ErrorKind),
    BadRequest(&'static str),
    UriTooLong,
    HeadersTooLarge,
    UnsupportedVersion,
}

impl ParseError {
    /// The status to answer with, or `None` when the connection should just be closed.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Closed | Self::Truncated | Self::Io(_) => None,
            Self::BadRequest(_) => Some(400),
            Self::UriTooLong => Some(414),
            Self::HeadersTooLarge => Some(431),
            Self::UnsupportedVersion => Some(505),
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::Closed => "connection closed",
            Self::Truncated => "truncated request",
            Self::Io(_) => "read error",
            Self::BadRequest(why) => why,
            Self::UriTooLong => "request line too long",
            Self::HeadersTooLarge => "request header section too large",
            Self::UnsupportedVersion => "HTTP version not supported",
        }
    }
}

enum LineError {
    /// End of stream; `partial` is true when some bytes of the line had been read.
    Eof {
        partial: bool,
    },
    TooLong,
    Io(io::Error),
}

/// Reads one line (terminated by `\n`, an optional preceding `\r` is stripped) into `out`,
/// refusing lines longer than `max` bytes without buffering more than that.
fn read_line_limited(r: &mut impl BufRead, max: usize, out: &mut Vec<u8>) -> Result<(), LineError> {
    out.clear();
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if buf.is_empty() {
            return Err(LineError::Eof { partial: !out.is_empty() });
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            if out.len() + i > max {
                return Err(LineError::TooLong);
            }
            out.extend_from_slice(&buf[..i]);
            r.consume(i + 1);
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            return Ok(());
        }
        let n = buf.len();
        if out.len() + n > max {
            return Err(LineError::TooLong);
        }
        out.extend_from_slice(buf);
        r.consume(n);
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

fn parse_version(s: &str) -> Result<Version, ParseError> {
    match s {
        "HTTP/1.1" => Ok(Version::Http11),
        "HTTP/1.0" => Ok(Version::Http10),
        _ => {
            let b = s.as_bytes();
            let well_formed = b.len() == 8
                && b.starts_with(b"HTTP/")
                && b[5].is_ascii_digit()
                && b[6] == b'.'
                && b[7].is_ascii_digit();
            if well_formed {
                Err(ParseError::UnsupportedVersion)
            } else {
                Err(ParseError::BadRequest("malformed HTTP version"))
            }
        }
    }
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, Version), ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadRequest("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadRequest("malformed request line"));
    };
    if !is_token(method) {
        return Err(ParseError::BadRequest("malformed method"));
    }
    let target_ok = !target.is_empty()
        && target.bytes().all(|b| b.is_ascii_graphic())
        && (target.starts_with('/') || target == "*" || has_http_scheme(target));
    if !target_ok {
        return Err(ParseError::BadRequest("malformed request target"));
    }
    let version = parse_version(version)?;
    Ok((method.to_owned(), target.to_owned(), version))
}

fn has_http_scheme(target: &str) -> bool {
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

fn parse_header_line(line: &[u8]) -> Result<(String, String), ParseError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ParseError::BadRequest("obsolete header line folding"));
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(ParseError::BadRequest("header line without colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(ParseError::BadRequest("malformed header name"));
    }
    let value = trim_ows(value);
    if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err(ParseError::BadRequest("control character in header value"));
    }
    // `name` is ASCII (tchar) so this conversion is lossless.
    let name = String::from_utf8_lossy(name).into_owned();
    Ok((name, String::from_utf8_lossy(value).into_owned()))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Reads one request head from `r`, enforcing the request line and header size limits.
pub fn read_request(r: &mut impl BufRead) -> Result<Request, ParseError> {
    let mut line = Vec::with_capacity(256);
    let mut empty_lines = 0;
    loop {
        match read_line_limited(r, MAX_REQUEST_LINE, &mut line) {
            Ok(()) => {}
            Err(LineError::Eof { partial: false }) if empty_lines == 0 => {
                return Err(ParseError::Closed);
            }
            Err(LineError::Eof { .. }) => return Err(ParseError::Truncated),
            Err(LineError::TooLong) => return Err(ParseError::UriTooLong),
            Err(LineError::Io(e)) => return Err(ParseError::Io(e.kind())),
        }
        if !line.is_empty() {
            break;
        }
        empty_lines += 1;
        if empty_lines > MAX_LEADING_EMPTY_LINES {
            return Err(ParseError::BadRequest("too many empty lines before request"));
        }
    }
    let (method, target, version) = parse_request_line(&line)?;

    let mut headers = Vec::new();
    let mut header_bytes = 0usize;
    loop {
        let budget = MAX_HEADER_BYTES.saturating_sub(header_bytes);
        match read_line_limited(r, budget, &mut line) {
            Ok(()) => {}
            Err(LineError::Eof { .. }) => return Err(ParseError::Truncated),
            Err(LineError::TooLong) => return Err(ParseError::HeadersTooLarge),
            Err(LineError::Io(e)) => return Err(ParseError::Io(e.kind())),
        }
        if line.is_empty() {
            break;
        }
        header_bytes += line.len() + 2;
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::HeadersTooLarge);
        }
        headers.push(parse_header_line(&line)?);
    }
    Ok(Request { method, target, version, headers })
}

impl Request {
    /// Values of every header field called `name` (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Origin-form `path?query`: absolute-form targets (`http://host/p`) lose their scheme and
    /// authority, `*` stays `*`.
    fn origin_form(&self) -> &str {
        let t = self.target.as_str();
        if !has_http_scheme(t) {
            return t;
        }
        let after_scheme = t.find("://").map_or(t, |i| &t[i + 3..]);
        match after_scheme.find(['/', '?']) {
            Some(i) if after_scheme[i..].starts_with('/') => &after_scheme[i..],
            _ => "/",
        }
    }

    /// The (still percent-encoded) path, without the query string.
    pub fn path(&self) -> &str {
        let t = self.origin_form();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The raw query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.origin_form().split_once('?').map(|(_, q)| q)
    }

    /// The first query parameter called `key`, percent-decoded. `Some(Err(()))` when its value is
    /// not valid percent-encoding. `+` is kept literally (it is common in file paths).
    pub fn query_param(&self, key: &str) -> Option<Result<Vec<u8>, ()>> {
        self.query()?
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| percent_decode(k).is_ok_and(|k| k == key.as_bytes()))
            .map(|(_, v)| percent_decode(v))
    }

    /// Whether the connection may stay open after this request (RFC 9112 §9.3).
    pub fn keep_alive(&self) -> bool {
        let mut close = false;
        let mut keep = false;
        for token in self.headers_named("connection").flat_map(|v| v.split(',')) {
            let token = token.trim();
            close |= token.eq_ignore_ascii_case("close");
            keep |= token.eq_ignore_ascii_case("keep-alive");
        }
        match self.version {
            _ if close => false,
            Version::Http11 => true,
            Version::Http10 => keep,
        }
    }
}

/// Decodes `%XX` escapes. Fails on a `%` not followed by two hex digits.
pub fn percent_decode(s: &str) -> Result<Vec<u8>, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(());
            };
            // hi and lo are < 16, so this fits in a byte.
            out.push(u8::try_from(hi * 16 + lo).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// A complete response; the body is always sent with a `Content-Length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub const TEXT: &str = "text/plain; charset=utf-8";

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self { status, content_type: TEXT, headers: Vec::new(), body: body.into().into_bytes() }
    }

    pub fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Self { status, content_type, headers: Vec::new(), body }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Serializes the status line, headers and (unless `head_only`) the body.
    pub fn serialize(&self, head_only: bool, keep_alive: bool, date: &str) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        // Writing into a String cannot fail.
        let _ = write!(head, "HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let _ = write!(head, "Date: {date}\r\n");
        let _ = write!(head, "Server: meme-testserver\r\n");
        let _ = write!(head, "Content-Type: {}\r\n", self.content_type);
        let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        let _ = write!(head, "Cache-Control: no-store\r\n");
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        let _ = write!(head, "Connection: {}\r\n\r\n", if keep_alive { "keep-alive" } else { "close" });
        let mut out = head.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Formats `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let weekday = WEEKDAYS[(days % 7) as usize];
    let month = MONTHS.get(month.saturating_sub(1) as usize).copied().unwrap_or("Jan");
    format!("{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} GMT", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31); Howard Hinnant's algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(raw: &[u8]) -> Result<Request, ParseError> {
        read_request(&mut io::BufReader::with_capacity(7, raw))
    }

    #[test]
    fn parses_simple_get() {
        let req = parse(b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent:  curl/8 \r\n\r\n").unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.target, "/health");
        assert_eq!(req.version, Version::Http11);
        assert_eq!(req.headers, vec![("Host".into(), "x".into()), ("User-Agent".into(), "curl/8".into())]);
        assert!(req.keep_alive());
    }

    #[test]
    fn accepts_bare_lf_and_leading_empty_lines() {
        let req = parse(b"\r\n\nHEAD / HTTP/1.0\nHost: x\n\n").unwrap();
        assert_eq!(req.method, "HEAD");
        assert_eq!(req.version, Version::Http10);
        assert!(!req.keep_alive());
    }

    #[test]
    fn pipelined_requests_are_read_one_by_one() {
        let mut r = io::BufReader::new(&b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"[..]);
        assert_eq!(read_request(&mut r).unwrap().target, "/a");
        assert_eq!(read_request(&mut r).unwrap().target, "/b");
        assert_eq!(read_request(&mut r), Err(ParseError::Closed));
    }

    #[test]
    fn eof_handling() {
        assert_eq!(parse(b""), Err(ParseError::Closed));
        assert_eq!(parse(b"GET / HT"), Err(ParseError::Truncated));
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Err(ParseError::Truncated));
    }

    #[test]
    fn rejects_malformed_request_lines() {
        for raw in [
            &b"GET /\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET nope HTTP/1.1\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parse(raw), Err(ParseError::BadRequest(_))), "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parse(b"GET / HTTP/2.0\r\n\r\n"), Err(ParseError::UnsupportedVersion));
        assert_eq!(parse(&[b'\n'; 20]), Err(ParseError::BadRequest("too many empty lines before request")));
    }

    #[test]
    fn rejects_malformed_headers() {
        for raw in [
            &b"GET / HTTP/1.1\r\nNoColon\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
        ] {
            assert!(matches!(parse(raw), Err(ParseError::BadRequest(_))), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn enforces_size_limits() {
        let long_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(parse(long_target.as_bytes()), Err(ParseError::UriTooLong));

        let big_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(parse(big_header.as_bytes()), Err(ParseError::HeadersTooLarge));

        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse(many.as_bytes()), Err(ParseError::HeadersTooLarge));

        let just_fits = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS));
        assert_eq!(parse(just_fits.as_bytes()).unwrap().headers.len(), MAX_HEADERS);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix of a few nasty inputs, and pseudo-random bytes.
        let samples: [&[u8]; 4] = [
            b"GET /file?path=%2 HTTP/1.1\r\nConnection: close,,\r\n\r\n",
            b"\r\n\r\n\r\nPOST http://h HTTP/1.1\r\n\t\r\n",
            b"\xff\xfe\x00 / HTTP/1.1\r\n\r\n",
            b"GET * HTTP/9.9\r\n",
        ];
        for s in samples {
            for end in 0..=s.len() {
                let _ = parse(&s[..end]);
            }
        }
        let mut x: u32 = 0x1234_5678;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect();
        for chunk in noise.chunks(97) {
            let _ = parse(chunk);
        }
    }

    #[test]
    fn keep_alive_rules() {
        let req = |v: &str, conn: Option<&str>| {
            let mut raw = format!("GET / {v}\r\n");
            if let Some(c) = conn {
                raw.push_str(&format!("Connection: {c}\r\n"));
            }
            raw.push_str("\r\n");
            parse(raw.as_bytes()).unwrap().keep_alive()
        };
        assert!(req("HTTP/1.1", None));
        assert!(!req("HTTP/1.1", Some("close")));
        assert!(!req("HTTP/1.1", Some("Upgrade, CLOSE")));
        assert!(!req("HTTP/1.0", None));
        assert!(req("HTTP/1.0", Some("Keep-Alive")));
    }

    #[test]
    fn paths_and_queries() {
        let req = |target: &str| parse(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
        let r = req("/file?x=1&path=%2Fetc%2Fa+b&path=second");
        assert_eq!(r.path(), "/file");
        assert_eq!(r.query_param("path"), Some(Ok(b"/etc/a+b".to_vec())));
        assert_eq!(r.query_param("x"), Some(Ok(b"1".to_vec())));
        assert_eq!(r.query_param("y"), None);
        assert_eq!(req("/file?path=%zz").query_param("path"), Some(Err(())));
        assert_eq!(req("/file?path").query_param("path"), Some(Ok(Vec::new())));
        assert_eq!(req("/health").query(), None);
        assert_eq!(req("http://example:8080/version?q").path(), "/version");
        assert_eq!(req("HTTP://example").path(), "/");
        assert_eq!(req("http://example?q=1").path(), "/");
        assert_eq!(req("*").path(), "*");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2f%2F"), Ok(b"a b//".to_vec()));
        assert_eq!(percent_decode("%ff"), Ok(vec![0xff]));
        assert_eq!(percent_decode("%"), Err(()));
        assert_eq!(percent_decode("%4"), Err(()));
        assert_eq!(percent_decode("%g0"), Err(()));
    }

    #[test]
    fn serializes_responses() {
        let resp = Response::text(405, "nope\n").with_header("Allow", "GET, HEAD");
        let full = String::from_utf8(resp.serialize(false, true, "D")).unwrap();
        assert!(full.starts_with("HTTP/1.1 405 Method Not Allowed\r\nDate: D\r\n"), "{full}");
        assert!(full.contains("\r\nContent-Length: 5\r\n"));
        assert!(full.contains("\r\nAllow: GET, HEAD\r\n"));
        assert!(full.ends_with("\r\nConnection: keep-alive\r\n\r\nnope\n"));
        let head = String::from_utf8(resp.serialize(true, false, "D")).unwrap();
        assert!(head.contains("\r\nContent-Length: 5\r\n"));
        assert!(head.ends_with("\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn formats_http_dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(1_767_225_599)), "Wed, 31 Dec 2025 23:59:59 GMT");
    }
}
