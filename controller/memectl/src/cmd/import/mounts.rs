//! Compose `volumes` of a service: named volumes become volume mounts; a bind-mounted config
//! file next to the compose file (`./caddy/Caddyfile:/etc/caddy/Caddyfile`), or every file of a
//! read-only bind-mounted folder, is copied into the manifests folder and becomes `files` (the
//! controller copies it into the container from git); the rest is reported.

use std::path::{Path, PathBuf};

use meme_api::load::MAX_FILE_BYTES;

use super::importer::{Copied, Importer, Mount};
use super::node::Node;
use super::secrets::{credential_line, is_secret_file};

/// Files copied from one read-only bind-mounted folder at most: a config folder, not data.
const MAX_FOLDER_FILES: usize = 64;

impl Importer<'_> {
    pub(super) fn volumes(
        &mut self,
        node: &Node,
        path: &str,
        service: &str,
        mounts: &mut Vec<Mount>,
        files: &mut Vec<(String, String)>,
    ) {
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
                Ok(VolumeRef::Bind { source, target, read_only }) => {
                    if let Err(message) = self.bind_files(service, &source, &target, read_only, &item_path, files) {
                        self.warn(&item_path, message);
                    }
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
            ("bind", Some(source)) => VolumeRef::Bind { source, target, read_only },
            (kind, _) => VolumeRef::Other { kind: kind.to_owned(), target },
        })
    }

    /// A bind mount of config next to the compose file as `files`: the file (or each file of a
    /// read-only folder) is copied into the manifests folder under `files/<service>/`, with a
    /// note. `Err` with the warning when it cannot be (a host path, data, a secret, too large).
    fn bind_files(
        &mut self,
        service: &str,
        source: &str,
        target: &str,
        read_only: bool,
        path: &str,
        files: &mut Vec<(String, String)>,
    ) -> Result<(), String> {
        if source.starts_with(['/', '~']) {
            return Err(self.bind_message(service, source, target));
        }
        let host = self.dir.join(source);
        let base = Path::new(source.trim_end_matches('/'))
            .file_name()
            .map_or_else(|| "config".to_owned(), |n| n.to_string_lossy().into_owned());
        // (host file, as shown, path in the container, name under files/<service>/)
        let mut found: Vec<(PathBuf, String, String, String)> = Vec::new();
        if host.is_file() {
            found.push((host.clone(), source.to_owned(), target.to_owned(), base));
        } else if host.is_dir() && read_only {
            for (file, rel) in folder_files(&host)? {
                let shown = format!("{}/{rel}", source.trim_end_matches('/'));
                let inside = format!("{}/{rel}", target.trim_end_matches('/'));
                found.push((file, shown, inside, format!("{base}/{rel}")));
            }
            if found.is_empty() {
                return Err(format!("bind mount {source}:{target}: the folder holds no file: ignored"));
            }
        } else {
            return Err(self.bind_message(service, source, target));
        }
        let mut copied = Vec::new();
        for (file, shown, inside, name) in found {
            let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if is_secret_file(&file_name) {
                self.warn(
                    path,
                    format!(
                        "{shown} looks like a secret (a key or password file): not copied into git; put it on the \
                         host and pass it as an environment variable (valueFrom.secretKeyRef) instead"
                    ),
                );
                continue;
            }
            let content = match std::fs::metadata(&file) {
                Ok(meta) if meta.len() > MAX_FILE_BYTES as u64 => {
                    self.warn(path, format!("{shown} is over {MAX_FILE_BYTES} bytes: not copied (files are config)"));
                    continue;
                }
                Ok(_) => std::fs::read(&file).map_err(|e| format!("cannot read {shown}: {e}"))?,
                Err(e) => return Err(format!("cannot read {shown}: {e}")),
            };
            if let Some(line) = std::str::from_utf8(&content).ok().and_then(credential_line) {
                self.warn(
                    path,
                    format!(
                        "{shown}:{line} holds what looks like a credential written in clear: not copied into git; \
                         move the credential out of the file (an environment variable, a secret), then list it \
                         under `files`"
                    ),
                );
                continue;
            }
            let mut to = format!("files/{service}/{name}");
            let mut n = 2;
            while self.copies.get(&to).is_some_and(|c| c.content != content) {
                to = format!("files/{service}/{n}/{name}");
                n += 1;
            }
            self.copies.insert(to.clone(), Copied { from: shown.clone(), to: to.clone(), content });
            files.retain(|(p, _)| *p != inside);
            files.push((inside.clone(), to.clone()));
            copied.push(format!("{shown} as {to}"));
        }
        if !copied.is_empty() {
            self.note(
                path,
                format!(
                    "bind-mounted config copied into the manifests folder: {}; listed under `files`, so the \
                     controller copies it into the container from git (edit it there and commit to roll {service})",
                    copied.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// Why a bind mount is not imported, and what to use instead: `files` for a config file,
    /// a named volume for data.
    fn bind_message(&self, service: &str, source: &str, target: &str) -> String {
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
        if source.starts_with(['/', '~']) && host.is_file() {
            format!(
                "{lead}: a file outside the compose project is not copied; copy it into the manifests folder as \
                 files/{service}/{base} and add {files}"
            )
        } else if host.is_dir() {
            format!(
                "{lead}: a writable folder is data: keep it in a named volume (a read-only folder, `:ro`, is \
                 copied as config files)"
            )
        } else {
            format!("{lead}: for a config file (e.g. a Caddyfile) use {files}; for data, a named volume")
        }
    }
}

/// The regular files under a folder, with their paths relative to it, sorted; hidden entries
/// and symbolic links are skipped (as the controller skips them in git). Bounded: a folder of
/// more than [`MAX_FOLDER_FILES`] files is data, not config.
fn folder_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| format!("cannot read {}: {e}", current.display()))?;
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                out.push((path, rel));
                if out.len() > MAX_FOLDER_FILES {
                    return Err(format!(
                        "{} holds more than {MAX_FOLDER_FILES} files: that is data, keep it in a named volume",
                        dir.display()
                    ));
                }
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// A `volumes` entry of a service.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum VolumeRef {
    Named { source: String, target: String, read_only: bool, ignored_modes: Vec<String> },
    Bind { source: String, target: String, read_only: bool },
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
        VolumeRef::Bind { source: source.to_owned(), target: target.to_owned(), read_only }
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
            VolumeRef::Bind { source: "./Caddyfile".into(), target: "/etc/caddy/Caddyfile".into(), read_only: false }
        );
        assert!(matches!(parse_short_volume("/var/run/docker.sock:/sock").unwrap(), VolumeRef::Bind { .. }));
        assert_eq!(parse_short_volume("/cache").unwrap(), VolumeRef::Anonymous { target: "/cache".into() });
        assert!(matches!(
            parse_short_volume("data:/d:nocopy").unwrap(),
            VolumeRef::Named { ignored_modes, .. } if ignored_modes == ["nocopy"]
        ));
    }
}
