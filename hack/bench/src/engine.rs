//! The bench's own view of the engine: a minimal HTTP/1.0 client on the Docker socket (cheap
//! enough to poll every few tens of milliseconds without spawning a CLI), the `docker` CLI for
//! what a shell script would do, and a tiny HTTP GET for the test server's endpoints.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cleanup;
use crate::util::{Error, Result, bail};

/// The engine's socket: `DOCKER_HOST=unix://...`, else `/var/run/docker.sock`.
#[must_use]
pub fn socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// An engine answer.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// One request on a fresh connection (HTTP/1.0, so the engine closes it after the answer).
///
/// # Errors
/// The socket cannot be reached or the answer is not HTTP.
pub fn request(method: &str, path: &str, timeout: Duration) -> Result<Response> {
    request_json(method, path, None, timeout)
}

/// [`request`] with a JSON body.
///
/// # Errors
/// The socket cannot be reached or the answer is not HTTP.
pub fn request_json(method: &str, path: &str, body: Option<&str>, timeout: Duration) -> Result<Response> {
    let socket = socket();
    let mut stream = UnixStream::connect(&socket)
        .map_err(|e| Error(format!("cannot connect to the Docker engine at {}: {e}", socket.display())))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = body.unwrap_or_default();
    let content = if body.is_empty() {
        String::new()
    } else {
        format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())
    };
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: meme-bench\r\n{content}\r\n{body}")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| Error(format!("{method} {path}: {e}")))?;
    parse_response(&raw).ok_or_else(|| Error(format!("{method} {path}: not an HTTP answer")))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = &raw[end + 4..];
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Where `needle` starts in `haystack`.
#[must_use]
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encodes a query value.
#[must_use]
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /_ping`.
///
/// # Errors
/// The engine does not answer.
pub fn ping() -> Result<()> {
    let r = request("GET", "/_ping", Duration::from_secs(5))?;
    if r.status != 200 {
        bail!("the Docker engine answered /_ping with HTTP {}", r.status);
    }
    Ok(())
}

/// Whether the engine has this image.
#[must_use]
pub fn image_exists(image: &str) -> bool {
    request("GET", &format!("/images/{image}/json"), Duration::from_secs(10)).is_ok_and(|r| r.status == 200)
}

/// The engine's version and API version.
#[must_use]
pub fn version() -> String {
    request("GET", "/version", Duration::from_secs(5))
        .ok()
        .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .map(|v| format!("{} (API {})", v["Version"].as_str().unwrap_or("?"), v["ApiVersion"].as_str().unwrap_or("?")))
        .unwrap_or_else(|| "?".to_owned())
}

/// A container as the list call shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obs {
    /// Full id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Image reference it was created with.
    pub image: String,
    /// `running`, `created`, `exited`, ...
    pub state: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Address on its first network with one.
    pub ip: Option<String>,
}

impl Obs {
    /// A label's value, or "".
    #[must_use]
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }

    /// Whether it runs.
    #[must_use]
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// Containers (running or not) carrying every `key=value` label of `labels`.
///
/// # Errors
/// The engine failed.
pub fn list(labels: &[(&str, &str)]) -> Result<Vec<Obs>> {
    let filters = serde_json::json!({
        "label": labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    list_filtered(&filters.to_string())
}

fn list_filtered(filters: &str) -> Result<Vec<Obs>> {
    let path = format!("/containers/json?all=1&filters={}", encode(filters));
    let r = request("GET", &path, Duration::from_secs(30))?;
    if r.status != 200 {
        bail!("listing containers: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    let value: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| Error(format!("listing containers: {e}")))?;
    let mut list: Vec<Obs> = value.as_array().map(Vec::as_slice).unwrap_or_default().iter().map(observe).collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

fn observe(v: &serde_json::Value) -> Obs {
    let labels = v["Labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    let ip = v["NetworkSettings"]["Networks"]
        .as_object()
        .and_then(|nets| nets.values().filter_map(|n| n["IPAddress"].as_str()).find(|ip| !ip.is_empty()))
        .map(str::to_owned);
    Obs {
        id: v["Id"].as_str().unwrap_or_default().to_owned(),
        name: v["Names"][0].as_str().unwrap_or_default().trim_start_matches('/').to_owned(),
        image: v["Image"].as_str().unwrap_or_default().to_owned(),
        state: v["State"].as_str().unwrap_or_default().to_owned(),
        labels,
        ip,
    }
}

/// The address of a running container (`None` while it is not running or has none yet).
///
/// # Errors
/// The engine failed.
pub fn inspect_ip(id: &str) -> Result<Option<String>> {
    let r = request("GET", &format!("/containers/{id}/json"), Duration::from_secs(30))?;
    if r.status != 200 {
        bail!("inspecting container {id}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| Error(format!("inspecting {id}: {e}")))?;
    if v["State"]["Running"].as_bool() != Some(true) {
        return Ok(None);
    }
    Ok(v["NetworkSettings"]["Networks"]
        .as_object()
        .and_then(|nets| nets.values().filter_map(|n| n["IPAddress"].as_str()).find(|ip| !ip.is_empty()))
        .map(str::to_owned))
}

/// The host pid of a running container's main process (`None` while it does not run).
///
/// # Errors
/// The engine failed.
pub fn inspect_pid(id: &str) -> Result<Option<u32>> {
    let r = request("GET", &format!("/containers/{id}/json"), Duration::from_secs(30))?;
    if r.status != 200 {
        bail!("inspecting container {id}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| Error(format!("inspecting {id}: {e}")))?;
    Ok(v["State"]["Pid"].as_u64().and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0))
}

/// `docker rm -f` through the API (`DELETE /containers/{id}?force=1`).
///
/// # Errors
/// The engine refused.
pub fn remove_force(id: &str) -> Result<()> {
    let r = request("DELETE", &format!("/containers/{id}?force=1&v=1"), Duration::from_secs(60))?;
    if !matches!(r.status, 204 | 404) {
        bail!("removing container {id}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    Ok(())
}

/// `docker create` + `docker start` through the API (`POST /containers/create?name=`, then
/// `POST /containers/{id}/start`); returns the id.
///
/// # Errors
/// The engine refused.
pub fn run_container(name: &str, config: &serde_json::Value) -> Result<String> {
    let body = config.to_string();
    let r = request_json(
        "POST",
        &format!("/containers/create?name={}", encode(name)),
        Some(&body),
        Duration::from_secs(60),
    )?;
    if r.status != 201 {
        bail!("creating container {name}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| Error(format!("creating container {name}: {e}")))?;
    let id = v["Id"].as_str().unwrap_or_default().to_owned();
    let r = request("POST", &format!("/containers/{id}/start"), Duration::from_secs(60))?;
    if !matches!(r.status, 204 | 304) {
        bail!("starting container {name}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    Ok(id)
}

/// `docker stop` through the API (`POST /containers/{id}/stop`, the container's own stop
/// timeout); returns once the container has stopped.
///
/// # Errors
/// The engine refused.
pub fn stop(id: &str) -> Result<()> {
    let r = request("POST", &format!("/containers/{id}/stop"), Duration::from_secs(60))?;
    if !matches!(r.status, 204 | 304) {
        bail!("stopping container {id}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body).trim());
    }
    Ok(())
}

/// Runs the `docker` CLI; stdout on success, stderr in the error.
///
/// # Errors
/// The command failed, or the run was interrupted.
pub fn cli(args: &[&str]) -> Result<String> {
    if cleanup::interrupted() {
        bail!("interrupted");
    }
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error(format!("cannot run docker: {e}")))?;
    if !out.status.success() {
        bail!("docker {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One HTTP/1.1 GET to `ip:port`: (status, body), or `None` when nothing answered in time.
#[must_use]
pub fn http_get(ip: &str, port: u16, path: &str, timeout: Duration) -> Option<(u16, String)> {
    let addr: SocketAddr = format!("{ip}:{port}").parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: meme-bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Some((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_should_parse_plain_and_chunked() {
        let r = parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n[1]").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"[1]".as_slice()));
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(r.body, b"[1,2]");
        assert!(parse_response(b"garbage").is_none());
    }

    #[test]
    fn query_values_should_be_percent_encoded() {
        assert_eq!(encode(r#"{"label":["a=b"]}"#), "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    }

    #[test]
    fn list_entries_should_map_to_obs() {
        let v = serde_json::json!({
            "Id": "abc", "Names": ["/s-web-1"], "Image": "meme-demo:v1", "State": "running",
            "Labels": {"pro.memeit.service": "web"},
            "NetworkSettings": {"Networks": {"s_net": {"IPAddress": "172.18.0.2"}}}
        });
        let o = observe(&v);
        assert_eq!(o.name, "s-web-1");
        assert_eq!(o.label("pro.memeit.service"), "web");
        assert_eq!(o.ip.as_deref(), Some("172.18.0.2"));
        assert!(o.running());
    }
}
