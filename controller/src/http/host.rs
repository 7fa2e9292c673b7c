//! The `Host` check that stops DNS rebinding. A page a browser loaded from a name the attacker
//! controls can re-point that name at 127.0.0.1 and read this API through the browser (same
//! origin, so the answers are readable); every such request carries the attacker's name in
//! `Host`. So a request is served only when its `Host` (port ignored) is:
//! - an IP address, any: a browser sends an address only for a page it loaded from that
//!   address, which no DNS answer can arrange. This keeps Prometheus scraping the controller at
//!   a Docker network's gateway address (`172.18.0.1:9797`, see manifests/monitoring) working
//!   with no flag;
//! - `localhost` or a name under `.localhost` (RFC 6761: always loopback, resolved by browsers
//!   themselves, never by DNS);
//! - a name given with `--allowed-hosts` (a reverse proxy that forwards its own `Host`, as Caddy
//!   does for `/api/v1/hooks/git` unless told `header_up Host localhost`).
//!
//! A request with no `Host` passes: HTTP/1.0 tools may omit it, browsers never do.

use std::net::IpAddr;

/// The names a request's `Host` may carry besides IP addresses and `localhost`.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    /// Allows `names` (case-insensitive, exact; a trailing dot is ignored) besides the defaults.
    #[must_use]
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        Self { names: names.iter().map(|n| normalize(n.as_ref())).filter(|n| !n.is_empty()).collect() }
    }

    /// Whether a request carrying this `Host` header value may be served.
    #[must_use]
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let name = normalize(strip_port(host.trim()));
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        name == "localhost" || name.ends_with(".localhost") || self.names.contains(&name)
    }
}

/// `host` without its `:port`, and an IPv6 literal without its brackets.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(host, |(addr, _)| addr);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_should_allow_addresses_localhost_and_listed_names_only() {
        let hosts = AllowedHosts::new(&["staging.memeit.pro"]);
        for ok in [
            "127.0.0.1:9797",
            "127.0.0.1",
            "[::1]:9797",
            "[::1]",
            "172.18.0.1:9797",
            "10.0.0.2",
            "localhost:9797",
            "LOCALHOST",
            "localhost.",
            "app.localhost:80",
            "staging.memeit.pro",
            "Staging.MemeIt.pro.:443",
        ] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        assert!(hosts.allows(None), "no Host: not a browser");
        for refused in [
            "evil.example",
            "evil.example:9797",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "memeit.pro",
            "x",
            "",
            "[::1",
        ] {
            assert!(!hosts.allows(Some(refused)), "{refused}");
        }
        assert!(!AllowedHosts::default().allows(Some("staging.memeit.pro")));
    }
}
