//! Docker image references (`[registry[:port]/]path[:tag][@digest]`), parsed by the grammar of
//! the distribution project (`distribution/reference`), with the same normalisation Docker
//! applies (`redis:7` is `docker.io/library/redis:7`).

use std::fmt;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// The registry host (with port), when the reference names one.
    pub registry: Option<String>,
    /// The repository path within the registry (`library/redis`, `your-org/backend`).
    pub path: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), when given.
    pub digest: Option<String>,
}

/// The registry Docker uses when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

impl ImageReference {
    /// Parses a reference the way `docker pull` does.
    ///
    /// # Errors
    /// Which part of the grammar the text breaks.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("image reference must not be empty".into());
        }
        if text.len() > 512 {
            return Err("image reference is longer than 512 characters".into());
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("image reference contains {c:?}"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag follows the last ':' that comes after the last '/', so `host:5000/x` has none.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let (name, tag) = (&rest[..last_slash + i], &rest[last_slash + i + 1..]);
                check_tag(tag)?;
                (name, Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err("image reference has no repository name".into());
        }
        if name.len() > 255 {
            return Err("repository name is longer than 255 characters".into());
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                check_domain(first)?;
                (Some(first.to_owned()), path)
            }
            _ => (None, name),
        };
        for component in path.split('/') {
            check_path_component(component)?;
        }
        Ok(Self { registry, path: path.to_owned(), tag, digest })
    }

    /// The registry Docker would contact (`docker.io` when none is named).
    #[must_use]
    pub fn registry_or_default(&self) -> &str {
        self.registry.as_deref().unwrap_or(DEFAULT_REGISTRY)
    }

    /// The repository with the registry Docker would contact, without tag or digest.
    #[must_use]
    pub fn repository(&self) -> String {
        match &self.registry {
            Some(r) => format!("{r}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The tag to pull: the given one, or `latest` when neither tag nor digest is given.
    #[must_use]
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid registry {domain:?}: {why}"));
    let (host, port) = if let Some(v6) = domain.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => (None, rest.strip_prefix(':')),
            _ => return bad("bad IPv6 address"),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return bad("host must be dot-separated labels of letters, digits and '-'");
            }
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
    {
        return bad("port must be a number from 0 to 65535");
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn check_path_component(component: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid repository path component {component:?}: {why}"));
    if component.is_empty() {
        return bad("must not be empty (doubled or trailing '/')");
    }
    if component.bytes().any(|b| b.is_ascii_uppercase()) {
        return bad("must be lowercase");
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad("must start and end with a lowercase letter or digit");
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return bad("separators must be '.', '_', '__' or dashes");
        }
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag {tag:?}: must be 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ))
    }
}

/// `algorithm:hex`, with sha256 requiring 64 hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid digest {digest:?}: {why}"));
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return bad("expected algorithm:hex, e.g. sha256:<64 hex digits>");
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '-', '_']).all(|c| {
            c.chars().next().is_some_and(|f| f.is_ascii_alphabetic()) && c.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !algorithm_ok {
        return bad("bad algorithm");
    }
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("expected at least 32 hex digits");
    }
    if algorithm == "sha256" && (hex.len() != 64 || hex.bytes().any(|b| b.is_ascii_uppercase())) {
        return bad("sha256 needs 64 lowercase hex digits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_should_accept_docker_grammar() {
        let r = ImageReference::parse("ghcr.io/your-org/meme-maker-backend:abc123def456").unwrap();
        assert_eq!(r.registry.as_deref(), Some("ghcr.io"));
        assert_eq!(r.path, "your-org/meme-maker-backend");
        assert_eq!(r.tag.as_deref(), Some("abc123def456"));
        let r = ImageReference::parse("localhost:5000/demo").unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!(r.tag_or_latest(), Some("latest"));
        let r = ImageReference::parse("redis:7.2-alpine").unwrap();
        assert_eq!((r.registry, r.path.as_str()), (None, "redis"));
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = ImageReference::parse(&format!("caddy:2.8@{digest}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        for ok in ["a__b/c-d", "a---b", "[::1]:5000/x:y", "127.0.0.1:5000/a/b/c:v1", "x.y/z_tag:Tag_1"] {
            let parsed = ImageReference::parse(ok);
            assert!(parsed.is_ok(), "{ok}: {parsed:?}");
        }
    }

    #[test]
    fn reference_should_reject_what_docker_rejects() {
        for bad in [
            "",
            "Redis",
            "redis:",
            "redis:-x",
            "a//b",
            "a/",
            "/a",
            "a:b:c",
            "a b",
            "a@sha256:xyz",
            "a@sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
            "-a",
            "a..b",
            "host:99999/a",
            "a_/b",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
