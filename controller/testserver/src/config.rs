//! Process configuration from the environment: `PORT`, `VERSION`, `HOSTNAME`, `FAIL_HEALTH`,
//! `FAIL_ALL`, `STARTUP_DELAY`, `ECHO_PORT`, `PEER`, and the listen address derived from them.

use std::env;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_VERSION: &str = "dev";
/// While this file exists, `/health` fails.
pub const FAIL_FILE: &str = "/tmp/fail-health";
/// Upper bound for `STARTUP_DELAY`, to catch unit mistakes (`2000` meant as ms).
const MAX_STARTUP_DELAY: Duration = Duration::from_secs(3600);

/// Non-empty value of an environment variable, if it is set and valid Unicode.
fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `PORT`, default 8080.
pub fn port() -> Result<u16, String> {
    match env::var_os("PORT") {
        None => Ok(DEFAULT_PORT),
        Some(raw) => {
            let s = raw.to_str().ok_or("PORT is not valid Unicode")?.trim();
            if s.is_empty() {
                return Ok(DEFAULT_PORT);
            }
            s.parse().map_err(|_| format!("PORT={s:?} is not a port number (0-65535)"))
        }
    }
}

/// Where the server listens: all IPv4 interfaces on `port`. Tests bind `127.0.0.1:0` instead.
pub fn listen_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}

/// `VERSION`, default `dev`.
pub fn version() -> String {
    var("VERSION").map_or_else(|| DEFAULT_VERSION.to_owned(), |v| v.trim().to_owned())
}

/// `HOSTNAME`, else the content of `/etc/hostname`, else `unknown`.
pub fn hostname() -> String {
    var("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether `FAIL_HEALTH` asks for a permanently failing `/health` (`1` or `true`).
pub fn fail_health_env() -> bool {
    var("FAIL_HEALTH").is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// Whether `FAIL_ALL` asks for a build that answers 500 on every endpoint.
pub fn fail_all_env() -> bool {
    var("FAIL_ALL").is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// `ECHO_PORT`: also serve a line echo over plain TCP on this port (no idle timeout), the
/// other end of a `PEER` connection.
pub fn echo_port() -> Result<Option<u16>, String> {
    match var("ECHO_PORT") {
        None => Ok(None),
        Some(s) => s.trim().parse().map(Some).map_err(|_| format!("ECHO_PORT={s:?} is not a port number")),
    }
}

/// `PEER=host:port`: a TCP connection opened at startup, before listening, and kept; `/peer`
/// exchanges a line over it (a connection a container opened while starting).
pub fn peer() -> Option<String> {
    var("PEER").map(|p| p.trim().to_owned())
}

pub fn fail_file() -> PathBuf {
    PathBuf::from(FAIL_FILE)
}

/// `STARTUP_DELAY`: how long to wait before binding the port. Unset or empty means none.
pub fn startup_delay() -> Result<Option<Duration>, String> {
    match env::var_os("STARTUP_DELAY") {
        None => Ok(None),
        Some(raw) => {
            let s = raw.to_str().ok_or("STARTUP_DELAY is not valid Unicode")?.trim();
            if s.is_empty() {
                return Ok(None);
            }
            parse_duration(s).map(Some).map_err(|e| format!("STARTUP_DELAY={s:?}: {e}"))
        }
    }
}

/// Parses `1.5`, `2s`, `500ms`, `1m` or `1h` (a bare number means seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    let value: f64 = number.parse().map_err(|_| format!("{number:?} is not a number"))?;
    let d = Duration::try_from_secs_f64(value * scale).map_err(|e| e.to_string())?;
    if d > MAX_STARTUP_DELAY {
        return Err(format!("{d:?} is longer than the {MAX_STARTUP_DELAY:?} maximum"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration(" 1.5s "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "2x", "-1", "1.2.3", "inf", "NaN", "2h", "1e3"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_on_all_interfaces() {
        assert_eq!(listen_addr(8080).to_string(), "0.0.0.0:8080");
    }
}
