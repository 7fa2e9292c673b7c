//! A minimal HTTP/1.1 client for the controller's API (`/api/v1/status`, `/metrics`): one request
//! at a time, either on a kept-alive connection or on a new connection per request
//! (`Connection: close`), timed from just before the connect (or the write, on a kept connection)
//! to the last byte of the body. `TCP_NODELAY` on the client side, so only the server's own
//! behaviour shows in the figures.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{Error, Result, bail};

/// An answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
    /// From just before the connect or the write to the last byte of the body.
    pub took: Duration,
}

/// A client of one server.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
    /// TCP connections opened so far.
    pub connects: usize,
}

impl Client {
    /// A client of `addr`; every connect, write and read gives up after `timeout`.
    #[must_use]
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Self { addr, timeout, conn: None, connects: 0 }
    }

    /// `GET path`: on the kept connection (opened when there is none) when `keep_alive`, else on
    /// a new connection closed after the answer. A kept connection the server closed meanwhile
    /// is replaced once, and that request is timed from the new connect.
    ///
    /// # Errors
    /// No connection, a timeout, or an answer that is not HTTP.
    pub fn get(&mut self, path: &str, keep_alive: bool) -> Result<Reply> {
        if !keep_alive {
            self.conn = None;
        }
        let reused = self.conn.is_some();
        match self.exchange(path, keep_alive) {
            Err(_) if reused => {
                self.conn = None;
                self.exchange(path, keep_alive)
            }
            other => other,
        }
    }

    fn exchange(&mut self, path: &str, keep_alive: bool) -> Result<Reply> {
        let started = Instant::now();
        let result = self.exchange_timed(path, keep_alive, started);
        if result.is_err() {
            self.conn = None;
        }
        result.map_err(|e| Error(format!("GET http://{}{path}: {e}", self.addr)))
    }

    fn exchange_timed(&mut self, path: &str, keep_alive: bool, started: Instant) -> Result<Reply> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(self.timeout))?;
                stream.set_write_timeout(Some(self.timeout))?;
                self.connects += 1;
                self.conn.insert(BufReader::with_capacity(64 * 1024, stream))
            }
        };
        let close = if keep_alive { "" } else { "Connection: close\r\n" };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: meme-bench\r\n{close}\r\n", self.addr);
        conn.get_mut().write_all(request.as_bytes())?;
        let (status, body, server_closes) = read_response(conn)?;
        let took = started.elapsed();
        if server_closes || !keep_alive {
            self.conn = None;
        }
        Ok(Reply { status, body, took })
    }
}

/// Reads one response: (status, body, whether the server closes the connection after it).
fn read_response(r: &mut impl BufRead) -> Result<(u16, Vec<u8>, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("connection closed before an answer");
    }
    let Some(status) = line.strip_prefix("HTTP/1.").and_then(|l| l.split_whitespace().nth(1)?.parse().ok()) else {
        bail!("not an HTTP answer: {:?}", line.trim_end());
    };
    let (mut length, mut chunked, mut close) = (None, false, line.starts_with("HTTP/1.0"));
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("connection closed in the answer's head");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => close = value.contains("close"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| Error(format!("bad chunk size {:?}", line.trim_end())))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
        close = true;
    }
    Ok((status, body, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_should_parse_by_length_chunks_and_close() {
        let mut r = BufReader::new(&b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1 404 x\r\n\r\n"[..]);
        let (status, body, close) = read_response(&mut r).unwrap();
        assert_eq!((status, body.as_slice(), close), (200, b"abc".as_slice(), false));

        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        let (_, body, close) = read_response(&mut BufReader::new(&raw[..])).unwrap();
        assert_eq!((body.as_slice(), close), (b"[1,2]".as_slice(), false));

        let raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nrest";
        let (_, body, close) = read_response(&mut BufReader::new(&raw[..])).unwrap();
        assert_eq!((body.as_slice(), close), (b"rest".as_slice(), true));

        assert!(read_response(&mut BufReader::new(&b"garbage\r\n\r\n"[..])).is_err());
        assert!(read_response(&mut BufReader::new(&b""[..])).is_err());
    }

    #[test]
    fn a_client_should_keep_its_connection_alive_and_replace_a_closed_one() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers two requests on the first connection and then closes it; one on each later one.
        let server = std::thread::spawn(move || {
            for (i, stream) in listener.incoming().take(3).enumerate() {
                let mut stream = BufReader::new(stream.unwrap());
                for _ in 0..if i == 0 { 2 } else { 1 } {
                    let mut line = String::new();
                    while stream.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
                    stream.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
                }
            }
        });
        let mut client = Client::new(addr, Duration::from_secs(5));
        for _ in 0..3 {
            let reply = client.get("/x", true).unwrap();
            assert_eq!((reply.status, reply.body.as_slice()), (200, b"ok".as_slice()));
        }
        assert_eq!(client.connects, 2, "the third request needed a new connection");
        assert_eq!(client.get("/x", false).unwrap().status, 200);
        assert_eq!(client.connects, 3);
        server.join().unwrap();
    }
}
