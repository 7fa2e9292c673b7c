//! Compose `ports` and `expose`: the short and long syntax, ranges and host addresses, as
//! container ports (with a host port where compose publishes one).

use super::importer::{Importer, Port};
use super::node::Node;

impl Importer<'_> {
    pub(super) fn ports(&mut self, node: &Node, path: &str, ports: &mut Vec<Port>) {
        let Node::Seq(items) = node else {
            if *node != Node::Null {
                self.warn(path, format!("expected a list, found {}: ignored", node.kind()));
            }
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let parsed = match item {
                Node::Map(_) => self.long_port(item, &item_path),
                _ => {
                    let Some(text) = self.scalar(item, &item_path) else { continue };
                    parse_short_port(&text)
                }
            };
            match parsed {
                Ok((parsed, notes)) => {
                    for note in notes {
                        self.warn(&item_path, note);
                    }
                    for port in parsed {
                        self.add_port(port, &item_path, ports);
                    }
                }
                Err(why) => self.warn(&item_path, format!("{why}: ignored")),
            }
        }
    }

    pub(super) fn long_port(&mut self, node: &Node, path: &str) -> Result<(Vec<Port>, Vec<String>), String> {
        let mut target = None;
        let mut published = None;
        let mut host_ip = None;
        let mut protocol = None;
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "target" => target = self.scalar(value, &key_path),
                "published" => published = self.scalar(value, &key_path),
                "host_ip" => host_ip = self.scalar(value, &key_path),
                "protocol" => protocol = self.scalar(value, &key_path),
                "mode" => {}
                "name" | "app_protocol" => self.note(&key_path, "port metadata is not kept"),
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("port option `{other}` is not supported: ignored")),
            }
        }
        let target = target.ok_or("a port without `target`")?;
        let mut short = String::new();
        if let Some(ip) = &host_ip {
            short.push_str(&if ip.contains(':') { format!("[{ip}]:") } else { format!("{ip}:") });
        }
        match &published {
            Some(p) => short.push_str(&format!("{p}:")),
            None if host_ip.is_some() => short.push(':'),
            None => {}
        }
        short.push_str(&target);
        if let Some(protocol) = &protocol {
            short.push_str(&format!("/{protocol}"));
        }
        parse_short_port(&short)
    }

    /// Adds a port unless the container port is already there (the manifests publish each
    /// container port once); a published one replaces an unpublished one.
    pub(super) fn add_port(&mut self, port: Port, path: &str, ports: &mut Vec<Port>) {
        match ports.iter_mut().find(|p| p.container == port.container && p.udp == port.udp) {
            None => ports.push(port),
            Some(existing) if existing.host.is_none() => *existing = port,
            Some(_) if port.host.is_none() => {}
            Some(existing) => {
                let (container, host) = (existing.container, existing.host.unwrap_or_default());
                self.warn(
                    path,
                    format!(
                        "container port {container} is already published (on host port {host}); a manifest \
                         publishes each container port once: ignored"
                    ),
                );
            }
        }
    }

    pub(super) fn expose(&mut self, node: &Node, path: &str, ports: &mut Vec<Port>) {
        for (i, text) in self.strings(node, path).into_iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match parse_short_port(&text) {
                Ok((parsed, _)) if parsed.iter().all(|p| p.host.is_none()) => {
                    for port in parsed {
                        self.add_port(port, &item_path, ports);
                    }
                }
                Ok(_) => self.warn(&item_path, format!("expose {text:?} names a host port: ignored")),
                Err(why) => self.warn(&item_path, format!("{why}: ignored")),
            }
        }
        // Compose publishes `ports: ["8000"]` on a random host port; `expose` never publishes.
    }
}

/// `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, with port ranges (`8000-8001`) and IPv6
/// host addresses (`[::1]:80:80`). Returns the ports and warnings about what was approximated.
pub(super) fn parse_short_port(spec: &str) -> Result<(Vec<Port>, Vec<String>), String> {
    let bad = || format!("cannot read the port {spec:?}: expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]");
    let (rest, protocol) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let udp = match protocol.to_ascii_lowercase().as_str() {
        "tcp" => false,
        "udp" => true,
        other => return Err(format!("protocol {other:?} is not supported (TCP and UDP only)")),
    };
    let mut parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    parts.reverse();
    let (ip, host, container) = match parts.as_slice() {
        [container] => (None, None, *container),
        [host, container] => (None, Some(*host), *container),
        [ip, host, container] => (Some(ip.trim_start_matches('[').trim_end_matches(']')), Some(*host), *container),
        _ => return Err(bad()),
    };
    let mut notes = Vec::new();
    let containers = port_range(container).ok_or_else(bad)?;
    let hosts = match host.filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => Some(port_range(h).ok_or_else(bad)?),
    };
    let ip = ip.filter(|ip| !ip.is_empty()).map(str::to_owned);
    if let Some(ip) = &ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(format!("invalid host IP {ip:?} in the port {spec:?}"));
    }
    let mut ports = Vec::new();
    match hosts {
        None => {
            notes.push(format!(
                "compose publishes {spec:?} on a random host port; imported as a container port, reachable on the \
                 stack's networks only: add a hostPort to publish it"
            ));
            ports.extend(containers.iter().map(|&c| Port { container: c, host: None, host_ip: None, udp }));
        }
        Some(hosts) if hosts.len() == containers.len() => {
            for (&h, &c) in hosts.iter().zip(&containers) {
                ports.push(Port { container: c, host: Some(h), host_ip: ip.clone(), udp });
            }
        }
        Some(hosts) if containers.len() == 1 => {
            notes.push(format!(
                "compose picks a free host port in {}-{}; imported as host port {} (a manifest names one)",
                hosts[0],
                hosts[hosts.len() - 1],
                hosts[0]
            ));
            ports.push(Port { container: containers[0], host: Some(hosts[0]), host_ip: ip, udp });
        }
        Some(_) => return Err(format!("the port ranges of {spec:?} differ in length")),
    }
    Ok((ports, notes))
}

/// `8000` or `8000-8002`, 1-65535, at most 1024 ports.
pub(super) fn port_range(text: &str) -> Option<Vec<u16>> {
    let parse = |t: &str| t.trim().parse::<u16>().ok().filter(|p| *p > 0);
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(text)?;
            (p, p)
        }
    };
    (start <= end && end - start < 1024).then(|| (start..=end).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_should_parse_the_short_syntax() {
        let one = |spec: &str| parse_short_port(spec).unwrap().0;
        let p = |container, host: Option<u16>, ip: Option<&str>, udp| Port {
            container,
            host,
            host_ip: ip.map(str::to_owned),
            udp,
        };
        assert_eq!(one("80:80"), vec![p(80, Some(80), None, false)]);
        assert_eq!(one("127.0.0.1:8080:80"), vec![p(80, Some(8080), Some("127.0.0.1"), false)]);
        assert_eq!(one("[::1]:8080:80"), vec![p(80, Some(8080), Some("::1"), false)]);
        assert_eq!(one("8000"), vec![p(8000, None, None, false)]);
        assert_eq!(one("53:53/udp"), vec![p(53, Some(53), None, true)]);
        assert_eq!(one("9000-9001:9000-9001").len(), 2);
        assert_eq!(parse_short_port("8000").unwrap().1.len(), 1, "random host port noted");
        for bad in ["", "x:80", "80:0", "1-2:1-3", "80/sctp", "1:2:3:4:5"] {
            assert!(parse_short_port(bad).is_err(), "{bad}");
        }
    }
}
