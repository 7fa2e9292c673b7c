//! Compose `volumes` of a service: named volumes become volume mounts, bind mounts of config
//! files become `files`, and the rest is reported.

use std::path::{Path, PathBuf};

use super::importer::{Importer, Mount};
use super::node::Node;

impl Importer<'_> {
    pub(super) fn volumes(&mut self, node: &Node, path: &str, service: &str, mounts: &mut Vec<Mount>) {
        let Node::Seq(items) = node else {
            if *node != Node::Null {
                self.warn(path, format!("expected a list, found {}: ignored", node.kind()));
            }
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let volume = match item {
                Node::Map(_) => self.long_volume(item, &item_path),
                _ => match self.scalar(item, &item_path) {
                    Some(text) => parse_short_volume(&text),
                    None => continue,
                },
            };
            match volume {
                Ok(VolumeRef::Named { source, target, read_only, ignored_modes }) => {
                    if !ignored_modes.is_empty() {
                        self.warn(
                            &item_path,
                            format!("mount options {} are not supported: ignored", ignored_modes.join(",")),
                        );
                    }
                    let declared = self.volumes.contains_key(&source);
                    let name = self.declare_volume(&source);
                    if !declared {
                        self.warn(
                            &item_path,
                            format!(
                                "volume {source:?} is not declared under the top-level `volumes`: declared as {name:?}"
                            ),
                        );
                    }
                    if let Some(existing) = mounts.iter().position(|m| m.path == target) {
                        self.warn(&item_path, format!("{target} is mounted twice: the last one wins"));
                        mounts.remove(existing);
                    }
                    mounts.push(Mount { volume: name, path: target, read_only });
                }
                Ok(VolumeRef::Bind { source, target }) => {
                    let message = self.bind_message(service, &source, &target);
                    self.warn(&item_path, message);
                }
                Ok(VolumeRef::Anonymous { target }) => self.warn(
                    &item_path,
                    format!(
                        "anonymous volume at {target} is not supported: name it (e.g. `{service}-data:{target}`) \
                         and declare it under the top-level `volumes`"
                    ),
                ),
                Ok(VolumeRef::Other { kind, target }) => {
                    self.warn(&item_path, format!("{kind} mount at {target} is not supported: ignored"))
                }
                Err(why) => self.warn(&item_path, format!("{why}: ignored")),
            }
        }
    }

    pub(super) fn long_volume(&mut self, node: &Node, path: &str) -> Result<VolumeRef, String> {
        let mut kind = "volume".to_owned();
        let mut source = None;
        let mut target = None;
        let mut read_only = false;
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "type" => kind = self.scalar(value, &key_path).unwrap_or(kind),
                "source" => source = self.scalar(value, &key_path),
                "target" => target = self.scalar(value, &key_path),
                "read_only" => read_only = self.boolean(value, &key_path).unwrap_or(false),
                "bind" | "tmpfs" | "consistency" => {}
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("mount option `{other}` is not supported: ignored")),
            }
        }
        let target = target.ok_or("a mount without `target`")?;
        Ok(match (kind.as_str(), source) {
            ("volume", Some(source)) => VolumeRef::Named { source, target, read_only, ignored_modes: Vec::new() },
            ("volume", None) => VolumeRef::Anonymous { target },
            ("bind", Some(source)) => VolumeRef::Bind { source, target },
            (kind, _) => VolumeRef::Other { kind: kind.to_owned(), target },
        })
    }

    /// Why a bind mount is not imported, and what to use instead: `files` for a config file,
    /// a named volume for data.
    pub(super) fn bind_message(&self, service: &str, source: &str, target: &str) -> String {
        let host = match source.strip_prefix("~/") {
            Some(rest) => {
                std::env::var_os("HOME").map_or_else(|| PathBuf::from(source), |h| PathBuf::from(h).join(rest))
            }
            None => self.dir.join(source),
        };
        let base =
            Path::new(target).file_name().map_or_else(|| "config".to_owned(), |n| n.to_string_lossy().into_owned());
        let files = format!("`files: [{{path: {target}, source: files/{service}/{base}}}]`");
        let lead = format!("bind mount {source}:{target} is not supported (the controller uses no host paths)");
        if host.is_file() {
            format!("{lead}: copy the file into the manifests folder as files/{service}/{base} and add {files}")
        } else if host.is_dir() {
            format!(
                "{lead}: keep data in a named volume, and put config files in the manifests folder under `files` \
                 (one entry per file, e.g. {files})"
            )
        } else {
            format!("{lead}: for a config file (e.g. a Caddyfile) use {files}; for data, a named volume")
        }
    }
}

/// A `volumes` entry of a service.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum VolumeRef {
    Named { source: String, target: String, read_only: bool, ignored_modes: Vec<String> },
    Bind { source: String, target: String },
    Anonymous { target: String },
    Other { kind: String, target: String },
}

/// `SOURCE:TARGET[:MODE]` or `TARGET`. A source that is a path (`/`, `.`, `~` or containing
/// `/`) is a bind mount; anything else names a volume.
pub(super) fn parse_short_volume(spec: &str) -> Result<VolumeRef, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => return Ok(VolumeRef::Anonymous { target: (*target).to_owned() }),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(format!("cannot read the volume {spec:?}: expected SOURCE:TARGET[:MODE]")),
    };
    if source.is_empty() || target.is_empty() {
        return Err(format!("cannot read the volume {spec:?}: expected SOURCE:TARGET[:MODE]"));
    }
    let mut read_only = false;
    let mut ignored_modes = Vec::new();
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" | "consistent" | "cached" | "delegated" => {}
            other => ignored_modes.push(other.to_owned()),
        }
    }
    let is_path = source.starts_with(['/', '.', '~']) || source.contains(['/', '\\']);
    Ok(if is_path {
        VolumeRef::Bind { source: source.to_owned(), target: target.to_owned() }
    } else {
        VolumeRef::Named { source: source.to_owned(), target: target.to_owned(), read_only, ignored_modes }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_should_tell_named_from_bind_mounts() {
        assert_eq!(
            parse_short_volume("redis_data:/data:ro").unwrap(),
            VolumeRef::Named {
                source: "redis_data".into(),
                target: "/data".into(),
                read_only: true,
                ignored_modes: Vec::new()
            }
        );
        assert_eq!(
            parse_short_volume("./Caddyfile:/etc/caddy/Caddyfile").unwrap(),
            VolumeRef::Bind { source: "./Caddyfile".into(), target: "/etc/caddy/Caddyfile".into() }
        );
        assert!(matches!(parse_short_volume("/var/run/docker.sock:/sock").unwrap(), VolumeRef::Bind { .. }));
        assert_eq!(parse_short_volume("/cache").unwrap(), VolumeRef::Anonymous { target: "/cache".into() });
        assert!(matches!(
            parse_short_volume("data:/d:nocopy").unwrap(),
            VolumeRef::Named { ignored_modes, .. } if ignored_modes == ["nocopy"]
        ));
    }
}
