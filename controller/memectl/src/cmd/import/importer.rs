//! The walk over the compose tree: the top-level keys, the services and the keys of each, scalars
//! read with interpolation. Environment and secrets, ports, mounts and the remaining service keys
//! live in their own modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use meme_api::names;
use meme_api::position::{PathIndex, Pos};
use meme_api::units::{ByteQuantity, Cpus, Duration};
use meme_api::v1alpha1::{NetworkSpec, VolumeSpec};

use super::convert::{dns_label, parse_compose_bytes, parse_go_duration, shell_split};
use super::interpolate::{Environment, Interpolated, interpolate};
pub(super) use super::model::{
    Copied, Finding, Health, Import, Level, Mount, Port, SecretHint, Service, SharedSecret, Spec, VariableSources,
};
use super::node::Node;
use super::secrets::{SecretId, credential_in, credential_in_command, is_secret_name};

/// Walks the compose tree, mapping what the manifests can express and reporting the rest.
pub(super) struct Importer<'a> {
    pub(super) file: &'a str,
    pub(super) index: &'a PathIndex,
    pub(super) env: &'a Environment,
    /// The compose file's folder: relative bind-mount sources are resolved against it.
    pub(super) dir: &'a Path,
    pub(super) findings: Vec<Finding>,
    /// Compose service name → service name.
    pub(super) services: BTreeMap<String, String>,
    /// Compose volume name → Stack volume name.
    pub(super) volumes: BTreeMap<String, String>,
    /// Compose network name → Stack network name.
    pub(super) networks: BTreeMap<String, String>,
    pub(super) stack_volumes: Vec<VolumeSpec>,
    pub(super) stack_networks: Vec<NetworkSpec>,
    /// The compose project name (what `docker compose` calls the project).
    pub(super) project: String,
    /// The stack's name: the name of its secret too.
    pub(super) stack: String,
    /// Which key each secret value got.
    pub(super) secret_ids: Vec<(SecretId, String)>,
    /// The keys of the stack's secret.
    pub(super) shared_secrets: BTreeMap<String, SharedSecret>,
    /// Config files copied for `files`, by their path in the manifests folder.
    pub(super) copies: BTreeMap<String, Copied>,
    /// Where interpolated variables came from.
    pub(super) variables: VariableSources,
}

impl<'a> Importer<'a> {
    pub(super) fn new(file: &'a str, index: &'a PathIndex, env: &'a Environment, dir: &'a Path) -> Self {
        Self {
            file,
            index,
            env,
            dir,
            findings: Vec::new(),
            services: BTreeMap::new(),
            volumes: BTreeMap::new(),
            networks: BTreeMap::new(),
            stack_volumes: Vec::new(),
            stack_networks: Vec::new(),
            project: String::new(),
            stack: String::new(),
            secret_ids: Vec::new(),
            shared_secrets: BTreeMap::new(),
            copies: BTreeMap::new(),
            variables: VariableSources::default(),
        }
    }

    pub(super) fn finding(&mut self, level: Level, path: &str, message: impl Into<String>) {
        let pos = self.index.key_pos(path).unwrap_or(Pos::START);
        self.findings.push(Finding { pos, path: path.to_owned(), level, message: message.into() });
    }

    pub(super) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.finding(Level::Warning, path, message);
    }

    pub(super) fn note(&mut self, path: &str, message: impl Into<String>) {
        self.finding(Level::Note, path, message);
    }

    /// A credential written in clear where it cannot become a secret: the import stops.
    pub(super) fn stop(&mut self, path: &str, what: &str) {
        self.finding(
            Level::Error,
            path,
            format!(
                "holds {what} written in clear: the import stops so that it never reaches git; pass it to the \
                 program as an environment variable instead (the import makes that a secretKeyRef)"
            ),
        );
    }

    pub(super) fn import(&mut self, root: &Node, stack_flag: Option<&str>, dir_name: &str) -> anyhow::Result<Import> {
        let entries = root.as_map().unwrap_or_default();
        let name_node = root.get("name");
        let compose_name = name_node.and_then(|n| self.scalar(n, "name"));
        let project_source = compose_name.clone().unwrap_or_else(|| dir_name.to_owned());
        self.project = project_source
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
            .collect();
        let stack = match stack_flag {
            Some(flag) => {
                names::check_dns_label(flag).map_err(|why| anyhow::anyhow!("invalid --stack {flag:?}: {why}"))?;
                flag.to_owned()
            }
            None => {
                let (source, path) = match &compose_name {
                    Some(name) => (name.as_str(), "name"),
                    None => (dir_name, ""),
                };
                let stack = dns_label(source);
                if stack.is_empty() {
                    anyhow::bail!("{}: cannot make a stack name from {source:?}: pass --stack NAME", self.file);
                }
                if stack != source {
                    let from = if path.is_empty() { "the compose file's directory" } else { "`name`" };
                    self.note(path, format!("stack name {stack:?} made from {from} {source:?} (a DNS label)"));
                }
                stack
            }
        };
        self.stack.clone_from(&stack);

        for (key, _) in entries {
            match key.as_str() {
                "services" | "name" | "volumes" | "networks" => {}
                "version" => self.note(key, "obsolete in the compose specification: ignored"),
                "secrets" => self.warn(
                    key,
                    "compose secrets are not imported: give each service its secret as an environment variable \
                     with valueFrom.secretKeyRef (a file on the controller's host)",
                ),
                "configs" => self.warn(
                    key,
                    "compose configs are not imported: put each config file in the manifests folder and list it \
                     under the Deployment's `files`",
                ),
                "include" => self.warn(key, "include is not resolved: the services of included files are not imported"),
                k if k.starts_with("x-") => {}
                other => self.warn(other, format!("unknown top-level key `{other}`: ignored")),
            }
        }

        if let Some(volumes) = root.get("volumes") {
            self.top_level_volumes(volumes);
        }
        if let Some(networks) = root.get("networks") {
            self.top_level_networks(networks);
        }

        let services_node = root.get("services").unwrap_or(&Node::Null);
        let Some(services) = services_node.as_map() else {
            anyhow::bail!(
                "{}: `services` must be a mapping of service names, found {}",
                self.location("services"),
                services_node.kind()
            );
        };
        let mut taken = BTreeSet::new();
        for (compose_name, _) in services {
            let mut name = dns_label(compose_name);
            if name.is_empty() {
                name = "service".to_owned();
            }
            let base = name.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{}-{n}", base.chars().take(60).collect::<String>().trim_end_matches('-'));
                n += 1;
            }
            if &name != compose_name {
                self.warn(
                    &format!("services.{compose_name}"),
                    format!(
                        "service renamed to {name:?}: service names are DNS labels (they become container names \
                         and network aliases); other services reach it as {name:?}"
                    ),
                );
            }
            self.services.insert(compose_name.clone(), name);
        }
        let mut file_names = BTreeSet::from(["stack.yaml".to_owned()]);
        let mut imported = Vec::new();
        for (compose_name, node) in services {
            let path = format!("services.{compose_name}");
            let name = self.services[compose_name].clone();
            if node.as_map().is_none() {
                self.warn(&path, format!("expected a mapping, found {}: service not imported", node.kind()));
                continue;
            }
            let (spec, secrets) = self.service(compose_name, &name, node);
            let mut file = format!("{name}.yaml");
            let mut n = 2;
            while !file_names.insert(file.clone()) {
                file = format!("{name}-{n}.yaml");
                n += 1;
            }
            imported.push(Service { name, compose_name: compose_name.clone(), file, spec, secrets });
        }
        if imported.is_empty() {
            anyhow::bail!("{}: no service to import", self.location("services"));
        }
        Ok(Import {
            stack,
            networks: std::mem::take(&mut self.stack_networks),
            volumes: std::mem::take(&mut self.stack_volumes),
            services: imported,
            secrets: std::mem::take(&mut self.shared_secrets).into_values().collect(),
            copies: std::mem::take(&mut self.copies).into_values().collect(),
            variables: std::mem::take(&mut self.variables),
        })
    }

    pub(super) fn location(&self, path: &str) -> String {
        let pos = self.index.key_pos(path).unwrap_or(Pos::START);
        format!("{}:{}:{}", self.file, pos.line, pos.column)
    }

    // --- Scalars -------------------------------------------------------------------------------

    /// A scalar as text, interpolated. A string that interpolates a secret-looking variable is
    /// kept as written (the secret stays out of git), with a warning. `None` for null; a
    /// warning and `None` for a list or mapping.
    pub(super) fn scalar(&mut self, node: &Node, path: &str) -> Option<String> {
        match node {
            Node::Null => None,
            Node::Bool(b) => Some(b.to_string()),
            Node::Num(n) => Some(n.clone()),
            Node::Str(s) => {
                let result = self.interpolated(s, path);
                let secrets: Vec<&String> =
                    result.vars.iter().filter(|v| is_secret_name(v)).collect::<BTreeSet<_>>().into_iter().collect();
                if !secrets.is_empty() && !result.value.is_empty() {
                    let list = secrets.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
                    self.warn(
                        path,
                        format!(
                            "interpolates {list}, which looks secret: kept as written so the value stays out of git \
                             (a shell in the container expands it from its environment; nothing else does)"
                        ),
                    );
                    return Some(s.clone());
                }
                if let Some(what) = credential_in(&result.value) {
                    self.stop(path, what);
                    return None;
                }
                Some(result.value)
            }
            Node::Seq(_) | Node::Map(_) => {
                self.warn(path, format!("expected a single value, found {}: ignored", node.kind()));
                None
            }
        }
    }

    /// Interpolates, reporting missing variables and malformed references.
    pub(super) fn interpolated(&mut self, text: &str, path: &str) -> Interpolated {
        let env = self.env;
        let result = interpolate(text, &|name| env.get(name));
        for name in &result.vars {
            self.record_variable(name);
        }
        for name in result.missing.iter().collect::<BTreeSet<_>>() {
            self.warn(path, format!("variable {name} is not set: substituted an empty string (as compose does)"));
        }
        for error in &result.errors {
            self.warn(path, error.clone());
        }
        result
    }

    /// Remembers where a variable used at import time came from (for the summary and the
    /// Stack's comment: the output must not depend on a `.env` without saying so).
    pub(super) fn record_variable(&mut self, name: &str) {
        match self.env.source(name) {
            Some(source) => {
                self.variables.found.insert(name.to_owned(), source);
            }
            None => {
                self.variables.missing.insert(name.to_owned());
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match self.scalar(node, path)?.as_str() {
            "true" | "True" | "TRUE" => Some(true),
            "false" | "False" | "FALSE" => Some(false),
            other => {
                self.warn(path, format!("expected true or false, found {other:?}: ignored"));
                None
            }
        }
    }

    pub(super) fn count(&mut self, node: &Node, path: &str) -> Option<u32> {
        let text = self.scalar(node, path)?;
        match text.trim().parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.warn(path, format!("expected a non-negative integer, found {text:?}: ignored"));
                None
            }
        }
    }

    pub(super) fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.scalar(node, path)?;
        match parse_go_duration(&text) {
            Ok(nanos) => {
                let ms = nanos.div_ceil(1_000_000);
                if nanos % 1_000_000 != 0 {
                    self.note(path, format!("{text} rounded up to whole milliseconds"));
                }
                Some(Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
            }
            Err(why) => {
                self.warn(path, format!("{why}: ignored"));
                None
            }
        }
    }

    pub(super) fn memory(&mut self, node: &Node, path: &str) -> Option<ByteQuantity> {
        let text = self.scalar(node, path)?;
        let quantity = parse_compose_bytes(&text).and_then(|bytes| ByteQuantity::parse(&bytes.to_string()));
        match quantity {
            Ok(q) => Some(q),
            Err(why) => {
                self.warn(path, format!("{why}: ignored"));
                None
            }
        }
    }

    pub(super) fn cpus(&mut self, node: &Node, path: &str) -> Option<Cpus> {
        let text = self.scalar(node, path)?;
        match Cpus::parse(&text) {
            Ok(c) => Some(c),
            Err(why) => {
                self.warn(path, format!("{why}: ignored"));
                None
            }
        }
    }

    /// A list of scalars, or a single scalar as a one-item list.
    pub(super) fn strings(&mut self, node: &Node, path: &str) -> Vec<String> {
        match node {
            Node::Seq(items) => {
                items.iter().enumerate().filter_map(|(i, item)| self.scalar(item, &format!("{path}[{i}]"))).collect()
            }
            Node::Null => Vec::new(),
            _ => self.scalar(node, path).into_iter().collect(),
        }
    }

    /// `command`/`entrypoint`: a list as is, a string split like a shell would (no shell runs).
    pub(super) fn command(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let words = match node {
            Node::Null => return None,
            Node::Seq(_) => self.strings(node, path),
            _ => {
                let text = self.scalar(node, path)?;
                match shell_split(&text) {
                    Ok(words) => words,
                    Err(why) => {
                        self.warn(path, format!("{why}: split at whitespace"));
                        text.split_whitespace().map(str::to_owned).collect()
                    }
                }
            }
        };
        self.check_command(&words, path, node);
        Some(words)
    }

    /// Stops the import when a command holds a password in clear (`--requirepass hunter2`).
    pub(super) fn check_command(&mut self, words: &[String], path: &str, node: &Node) {
        if let Some((i, what)) = credential_in_command(words) {
            let at = if matches!(node, Node::Seq(_)) { format!("{path}[{i}]") } else { path.to_owned() };
            self.stop(&at, &what);
        }
    }

    // --- Top level -----------------------------------------------------------------------------

    pub(super) fn declare_volume(&mut self, compose_name: &str) -> String {
        if let Some(name) = self.volumes.get(compose_name) {
            return name.clone();
        }
        let mut name = dns_label(compose_name);
        if name.is_empty() {
            name = "volume".to_owned();
        }
        let base = name.clone();
        let mut n = 2;
        while self.stack_volumes.iter().any(|v| v.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.stack_volumes.push(VolumeSpec { name: name.clone(), adopt: false });
        self.volumes.insert(compose_name.to_owned(), name.clone());
        name
    }

    pub(super) fn declare_network(&mut self, compose_name: &str) -> String {
        if compose_name == "default" {
            return "default".to_owned();
        }
        if let Some(name) = self.networks.get(compose_name) {
            return name.clone();
        }
        let mut name = dns_label(compose_name);
        if name.is_empty() || name == "default" {
            name = "network".to_owned();
        }
        let base = name.clone();
        let mut n = 2;
        while self.stack_networks.iter().any(|v| v.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.stack_networks.push(NetworkSpec { name: name.clone(), internal: false });
        self.networks.insert(compose_name.to_owned(), name.clone());
        name
    }

    pub(super) fn top_level_volumes(&mut self, node: &Node) {
        let Some(entries) = node.as_map() else {
            if *node != Node::Null {
                self.warn("volumes", format!("expected a mapping of volume names, found {}: ignored", node.kind()));
            }
            return;
        };
        for (compose_name, config) in entries {
            let path = format!("volumes.{compose_name}");
            let name = self.declare_volume(compose_name);
            if &name != compose_name {
                self.note(&path, format!("volume renamed to {name:?} (volume names are DNS labels)"));
            }
            for (key, value) in config.as_map().unwrap_or_default() {
                let key_path = format!("{path}.{key}");
                match key.as_str() {
                    "driver" if self.scalar(value, &key_path).as_deref() == Some("local") => {}
                    "external" if self.boolean(value, &key_path) == Some(false) => {}
                    "external" => self.warn(
                        &key_path,
                        format!(
                            "external volumes are not supported: the controller creates and owns <stack>_{name}; \
                             copy the data over if you need it"
                        ),
                    ),
                    "name" => self.warn(
                        &key_path,
                        format!("custom volume names are not supported: the controller names it <stack>_{name}"),
                    ),
                    k if k.starts_with("x-") => {}
                    other => self.warn(&key_path, format!("volume option `{other}` is not supported: ignored")),
                }
            }
        }
    }

    pub(super) fn top_level_networks(&mut self, node: &Node) {
        let Some(entries) = node.as_map() else {
            if *node != Node::Null {
                self.warn("networks", format!("expected a mapping of network names, found {}: ignored", node.kind()));
            }
            return;
        };
        for (compose_name, config) in entries {
            let path = format!("networks.{compose_name}");
            let name = self.declare_network(compose_name);
            if &name != compose_name {
                self.note(&path, format!("network renamed to {name:?} (network names are DNS labels)"));
            }
            for (key, value) in config.as_map().unwrap_or_default() {
                let key_path = format!("{path}.{key}");
                match key.as_str() {
                    "internal" if name != "default" => {
                        let internal = self.boolean(value, &key_path).unwrap_or(false);
                        if let Some(n) = self.stack_networks.iter_mut().find(|n| n.name == name) {
                            n.internal = internal;
                        }
                    }
                    "driver" if self.scalar(value, &key_path).as_deref() == Some("bridge") => {}
                    "external" if self.boolean(value, &key_path) == Some(false) => {}
                    "external" => self.warn(
                        &key_path,
                        format!("external networks are not supported: the controller creates and owns <stack>_{name}"),
                    ),
                    "name" => self.warn(
                        &key_path,
                        format!("custom network names are not supported: the controller names it <stack>_{name}"),
                    ),
                    k if k.starts_with("x-") => {}
                    other => self.warn(&key_path, format!("network option `{other}` is not supported: ignored")),
                }
            }
        }
    }

    // --- Services ------------------------------------------------------------------------------

    #[allow(clippy::too_many_lines)] // one compose key after another
    pub(super) fn service(&mut self, compose_name: &str, name: &str, node: &Node) -> (Spec, Vec<SecretHint>) {
        let base = format!("services.{compose_name}");
        let mut spec = Spec::default();
        let mut secrets = Vec::new();
        let mut image = None;
        let mut build = false;
        let mut profiles = false;
        for (key, value) in node.as_map().unwrap_or_default() {
            let path = format!("{base}.{key}");
            match key.as_str() {
                "image" => image = self.scalar(value, &path),
                "build" => build = true,
                "command" => spec.args = self.command(value, &path),
                "entrypoint" => spec.command = self.command(value, &path),
                "environment" => self.environment(value, &path, name, &mut spec.env, &mut secrets),
                "env_file" => self.env_file(value, &path),
                "ports" => self.ports(value, &path, &mut spec.ports),
                "expose" => self.expose(value, &path, &mut spec.ports),
                "volumes" => self.volumes(value, &path, name, &mut spec.volume_mounts, &mut spec.files),
                "networks" => self.service_networks(value, &path, &mut spec.networks),
                "depends_on" => self.depends_on(value, &path, &mut spec.depends_on),
                "links" => self.links(value, &path, &mut spec.depends_on),
                "healthcheck" => spec.health_check = self.healthcheck(value, &path),
                "deploy" => self.deploy(value, &path, &mut spec),
                "scale" => spec.replicas = self.count(value, &path).or(spec.replicas),
                "user" => spec.user = self.scalar(value, &path),
                "read_only" => spec.read_only = self.boolean(value, &path).unwrap_or(false),
                "init" => spec.init = self.boolean(value, &path).unwrap_or(false),
                "stop_grace_period" => spec.stop_grace_period = self.duration(value, &path),
                "labels" => self.labels(value, &path, &mut spec.labels),
                "cpus" => spec.limits.cpus = self.cpus(value, &path).or(spec.limits.cpus),
                "mem_limit" => spec.limits.memory = self.memory(value, &path).or(spec.limits.memory),
                "mem_reservation" => spec.reservations.memory = self.memory(value, &path).or(spec.reservations.memory),
                "pull_policy" => spec.image_pull_policy = self.pull_policy(value, &path),
                "profiles" => profiles = !self.strings(value, &path).is_empty(),
                "restart" => self.note(
                    &path,
                    "ignored: the controller keeps every container running itself (it starts what stopped and \
                     replaces what died)",
                ),
                "container_name" => self.warn(
                    &path,
                    format!(
                        "not supported: the controller names containers <stack>-{name}-<hash>-<n>; other services \
                         reach this one as {name:?}"
                    ),
                ),
                "hostname" | "domainname" => {
                    self.warn(&path, format!("not supported: other services reach this one as {name:?}"))
                }
                "logging" => self.warn(&path, "not supported: containers use the engine's default log driver"),
                "secrets" => self.warn(
                    &path,
                    "compose secrets are not imported: pass each as an environment variable with \
                     valueFrom.secretKeyRef (a file under the controller's --secrets-dir)",
                ),
                "configs" => self.warn(
                    &path,
                    "compose configs are not imported: put the file in the manifests folder and list it under \
                     `files: [{path: ..., source: files/...}]`",
                ),
                "extends" => self.warn(
                    &path,
                    "extends is not resolved: the service is imported without what it extends; copy those keys in",
                ),
                "network_mode" => {
                    self.warn(&path, "not supported: services join the stack's networks (default: `default`)")
                }
                "tmpfs" => self.warn(&path, "tmpfs mounts are not supported: ignored"),
                "working_dir" => self.warn(&path, "not supported: set WORKDIR in the image"),
                "privileged" | "cap_add" | "cap_drop" | "devices" | "security_opt" | "userns_mode" | "gpus" => {
                    self.warn(&path, "not supported: the controller grants no extra privileges or devices: ignored")
                }
                k if k.starts_with("x-") => {}
                other => self.warn(&path, format!("`{other}` is not supported by the manifests: ignored")),
            }
        }

        spec.image = match (image, build) {
            (Some(image), true) => {
                self.warn(
                    &format!("{base}.build"),
                    "not supported: the controller runs images, it does not build them; build and push the image \
                     (in CI), then keep `image` pinned to its tag",
                );
                image
            }
            (Some(image), false) => image,
            (None, true) => {
                let image = format!("{}-{}", self.project, compose_name.to_lowercase());
                self.warn(
                    &format!("{base}.build"),
                    format!(
                        "not supported: the controller runs images, it does not build them; using {image:?}, the \
                         image `docker compose build` makes: push it to a registry and pin its tag in `image`"
                    ),
                );
                image
            }
            (None, false) => {
                self.warn(&base, "no `image`: the Deployment needs one");
                String::new()
            }
        };
        if !spec.image.is_empty() && !spec.image.contains('@') {
            let last = spec.image.rsplit('/').next().unwrap_or_default();
            match last.split_once(':') {
                None => self.note(
                    &format!("{base}.image"),
                    "no tag (means :latest): pin a tag or digest, so that a rollout is a commit",
                ),
                Some((_, "latest")) => {
                    self.note(&format!("{base}.image"), ":latest: pin a tag or digest, so that a rollout is a commit")
                }
                Some(_) => {}
            }
        }
        if profiles {
            spec.replicas = Some(0);
            self.warn(
                &format!("{base}.profiles"),
                "compose starts this service only with --profile: imported with replicas: 0 (declared, not running)",
            );
        }
        if spec.ports.iter().any(|p| p.host.is_some()) && !spec.recreate {
            spec.recreate = true;
            self.note(
                &format!("{base}.ports"),
                "publishes a host port: strategy Recreate (the old container stops before the new one starts, \
                 since both cannot hold the port)",
            );
        }
        if !spec.recreate
            && let Some(m) = spec.volume_mounts.iter().find(|m| !m.read_only)
        {
            // Compose stops the old container before it starts the new one; a rolling update
            // would run both on the volume at once, which a single-writer store (Redis, MinIO,
            // a database) does not survive.
            spec.recreate = true;
            let volume = m.volume.clone();
            self.note(
                &format!("{base}.volumes"),
                format!(
                    "mounts volume {volume:?} read-write: strategy Recreate, a single writer (the old container \
                     stops before the new one starts, as with compose; two containers writing one store can \
                     corrupt it); set `strategy: {{type: RollingUpdate}}` if it tolerates two"
                ),
            );
        }
        if spec.read_only && !spec.files.is_empty() {
            spec.read_only = false;
            self.warn(
                &format!("{base}.read_only"),
                "not kept: the controller copies `files` into the container before it starts, which a read-only \
                 root filesystem refuses; mount the config from a volume instead if read_only matters more",
            );
        }
        (spec, secrets)
    }
}
