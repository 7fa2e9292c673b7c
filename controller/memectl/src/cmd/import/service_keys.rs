//! The service keys that need more than a scalar: the pull policy, networks, `depends_on` and links, the health
//! check, `deploy` (replicas, resources, update order) and labels.

use std::collections::BTreeMap;

use meme_api::units::Duration;
use meme_api::v1alpha1::ImagePullPolicy;

use super::convert::shell_split;
use super::importer::{Health, Importer, Spec};
use super::node::Node;
use super::{DOCKER_HEALTH_INTERVAL, DOCKER_HEALTH_RETRIES, DOCKER_HEALTH_TIMEOUT, RESERVED_LABEL_PREFIX};

impl Importer<'_> {
    pub(super) fn pull_policy(&mut self, node: &Node, path: &str) -> Option<ImagePullPolicy> {
        match self.scalar(node, path)?.as_str() {
            "always" | "daily" | "weekly" => Some(ImagePullPolicy::Always),
            "never" => Some(ImagePullPolicy::Never),
            "missing" | "if_not_present" => None,
            other => {
                self.warn(path, format!("pull_policy {other:?} is not supported: the default IfNotPresent applies"));
                None
            }
        }
    }
    pub(super) fn service_networks(&mut self, node: &Node, path: &str, networks: &mut Vec<String>) {
        let names: Vec<(String, String)> = match node {
            Node::Seq(_) => {
                self.strings(node, path).into_iter().enumerate().map(|(i, n)| (n, format!("{path}[{i}]"))).collect()
            }
            Node::Map(entries) => {
                let mut names = Vec::new();
                for (name, config) in entries {
                    let entry_path = format!("{path}.{name}");
                    for (key, _) in config.as_map().unwrap_or_default() {
                        let message = if key == "aliases" {
                            "network aliases are not supported: the service is reachable by its name".to_owned()
                        } else {
                            format!("network option `{key}` is not supported: ignored")
                        };
                        self.warn(&format!("{entry_path}.{key}"), message);
                    }
                    names.push((name.clone(), entry_path));
                }
                names
            }
            Node::Null => Vec::new(),
            other => {
                self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind()));
                Vec::new()
            }
        };
        for (compose_name, entry_path) in names {
            let declared = compose_name == "default" || self.networks.contains_key(&compose_name);
            let name = self.declare_network(&compose_name);
            if !declared {
                self.warn(
                    &entry_path,
                    format!(
                        "network {compose_name:?} is not declared under the top-level `networks`: declared as {name:?}"
                    ),
                );
            }
            if !networks.contains(&name) {
                networks.push(name);
            }
        }
    }

    pub(super) fn service_ref(&self, compose_name: &str) -> String {
        self.services.get(compose_name).cloned().unwrap_or_else(|| compose_name.to_owned())
    }

    pub(super) fn depends_on(&mut self, node: &Node, path: &str, deps: &mut Vec<String>) {
        let names: Vec<String> = match node {
            Node::Seq(_) => self.strings(node, path),
            Node::Map(entries) => {
                let mut names = Vec::new();
                for (name, config) in entries {
                    let entry_path = format!("{path}.{name}");
                    for (key, value) in config.as_map().unwrap_or_default() {
                        let key_path = format!("{entry_path}.{key}");
                        match key.as_str() {
                            "condition" => match self.scalar(value, &key_path).as_deref() {
                                Some("service_started" | "service_healthy") | None => {}
                                Some("service_completed_successfully") => self.warn(
                                    &key_path,
                                    "one-shot services are not supported: the controller keeps every service \
                                     running, so it waits for this one to be ready instead of completed",
                                ),
                                Some(other) => self.warn(&key_path, format!("unknown condition {other:?}: ignored")),
                            },
                            "required" if self.boolean(value, &key_path) != Some(false) => {}
                            "required" => self.note(&key_path, "an optional dependency is imported as a dependency"),
                            "restart" => self.note(&key_path, "ignored: dependents are not restarted with it"),
                            k if k.starts_with("x-") => {}
                            other => self.warn(&key_path, format!("`{other}` is not supported: ignored")),
                        }
                    }
                    names.push(name.clone());
                }
                names
            }
            Node::Null => Vec::new(),
            other => {
                self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind()));
                Vec::new()
            }
        };
        for name in names {
            let name = self.service_ref(&name);
            if !deps.contains(&name) {
                deps.push(name);
            }
        }
    }

    pub(super) fn links(&mut self, node: &Node, path: &str, deps: &mut Vec<String>) {
        for (i, link) in self.strings(node, path).into_iter().enumerate() {
            let (service, alias) = link.split_once(':').unwrap_or((&link, ""));
            let name = self.service_ref(service);
            let mut message = "legacy links: imported as dependsOn; services reach each other by name".to_owned();
            if !alias.is_empty() && alias != service {
                message.push_str(&format!(" (the alias {alias:?} is not kept)"));
            }
            self.note(&format!("{path}[{i}]"), message);
            if !deps.contains(&name) {
                deps.push(name);
            }
        }
    }

    pub(super) fn healthcheck(&mut self, node: &Node, path: &str) -> Option<Health> {
        let Some(entries) = node.as_map() else {
            self.warn(path, format!("expected a mapping, found {}: ignored", node.kind()));
            return None;
        };
        let mut exec: Option<Vec<String>> = None;
        let mut disabled = false;
        let mut health = Health {
            exec: Vec::new(),
            interval: DOCKER_HEALTH_INTERVAL,
            timeout: DOCKER_HEALTH_TIMEOUT,
            retries: DOCKER_HEALTH_RETRIES,
            start_period: Duration::default(),
        };
        for (key, value) in entries {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "test" => match value {
                    Node::Seq(_) => {
                        let words = self.strings(value, &key_path);
                        match words.split_first() {
                            Some((first, rest)) if first == "CMD" && !rest.is_empty() => exec = Some(rest.to_vec()),
                            Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => {
                                exec = Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]);
                            }
                            Some((first, _)) if first == "NONE" => disabled = true,
                            _ => self.warn(&key_path, "expected [CMD, ...], [CMD-SHELL, command] or [NONE]: ignored"),
                        }
                    }
                    _ => match self.scalar(value, &key_path) {
                        Some(command) if !command.trim().is_empty() => {
                            exec = Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), command]);
                        }
                        _ => disabled = true,
                    },
                },
                "interval" => health.interval = self.duration(value, &key_path).unwrap_or(health.interval),
                "timeout" => health.timeout = self.duration(value, &key_path).unwrap_or(health.timeout),
                "start_period" => health.start_period = self.duration(value, &key_path).unwrap_or_default(),
                "retries" => health.retries = self.count(value, &key_path).unwrap_or(health.retries),
                "disable" => disabled = self.boolean(value, &key_path).unwrap_or(false),
                "start_interval" => self.warn(&key_path, "not supported: checks run every `interval` from the start"),
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("`{other}` is not supported: ignored")),
            }
        }
        if let Some(words) = &exec {
            // A shell command is checked word by word, as the shell will see it.
            let words = match words.as_slice() {
                [sh, c, command] if sh == "/bin/sh" && c == "-c" => shell_split(command).unwrap_or_default(),
                _ => words.clone(),
            };
            self.check_command(&words, &format!("{path}.test"), &Node::Null);
        }
        if disabled {
            self.note(
                path,
                "disabled: the Deployment gets no healthCheck (an image's own HEALTHCHECK, if any, still applies)",
            );
            return None;
        }
        let Some(exec) = exec else {
            self.warn(
                path,
                "a healthcheck without `test` (it tunes the image's HEALTHCHECK): not imported; the image's own \
                 check applies with its own timing",
            );
            return None;
        };
        // Zero means "Docker's default" in compose; the manifests require positive values.
        if health.interval.get().is_zero() {
            health.interval = DOCKER_HEALTH_INTERVAL;
        }
        if health.timeout.get().is_zero() {
            health.timeout = DOCKER_HEALTH_TIMEOUT;
        }
        if health.retries == 0 {
            health.retries = DOCKER_HEALTH_RETRIES;
        }
        health.exec = exec;
        Some(health)
    }

    pub(super) fn deploy(&mut self, node: &Node, path: &str, spec: &mut Spec) {
        let Some(entries) = node.as_map() else {
            if *node != Node::Null {
                self.warn(path, format!("expected a mapping, found {}: ignored", node.kind()));
            }
            return;
        };
        for (key, value) in entries {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "replicas" => spec.replicas = self.count(value, &key_path).or(spec.replicas),
                "resources" => self.resources(value, &key_path, spec),
                "restart_policy" => self.note(
                    &key_path,
                    "ignored: the controller keeps every container running itself (it starts what stopped and \
                     replaces what died)",
                ),
                "update_config" => self.update_config(value, &key_path, spec),
                "rollback_config" => self.note(&key_path, "ignored: a rollback is a git revert of the manifests"),
                "mode" => match self.scalar(value, &key_path).as_deref() {
                    Some("replicated") | None => {}
                    Some("global") => self.note(&key_path, "global on one host is one container: use replicas: 1"),
                    Some(other) => self.warn(&key_path, format!("mode {other:?} is not supported: ignored")),
                },
                k if k.starts_with("x-") => {}
                other => self.warn(&key_path, format!("deploy.{other} is not supported: ignored")),
            }
        }
    }

    pub(super) fn update_config(&mut self, node: &Node, path: &str, spec: &mut Spec) {
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            match key.as_str() {
                "order" => match self.scalar(value, &key_path).as_deref() {
                    Some("stop-first") => {
                        spec.recreate = true;
                        self.note(&key_path, "stop-first: strategy Recreate");
                    }
                    Some("start-first") | None => {}
                    Some(other) => self.warn(&key_path, format!("unknown order {other:?}: ignored")),
                },
                k if k.starts_with("x-") => {}
                other => self.note(
                    &key_path,
                    format!(
                        "{other} is not kept: rollouts replace one replica at a time, each gated on its health \
                         (see progressDeadline and minReadySeconds)"
                    ),
                ),
            }
        }
    }

    pub(super) fn resources(&mut self, node: &Node, path: &str, spec: &mut Spec) {
        for (key, value) in node.as_map().unwrap_or_default() {
            let key_path = format!("{path}.{key}");
            let reservations = match key.as_str() {
                "limits" => false,
                "reservations" => true,
                k if k.starts_with("x-") => continue,
                other => {
                    self.warn(&key_path, format!("`{other}` is not supported: ignored"));
                    continue;
                }
            };
            for (field, v) in value.as_map().unwrap_or_default() {
                let field_path = format!("{key_path}.{field}");
                match (reservations, field.as_str()) {
                    (false, "cpus") => spec.limits.cpus = self.cpus(v, &field_path).or(spec.limits.cpus),
                    (false, "memory") => spec.limits.memory = self.memory(v, &field_path).or(spec.limits.memory),
                    (true, "memory") => {
                        spec.reservations.memory = self.memory(v, &field_path).or(spec.reservations.memory);
                    }
                    (true, "cpus") => {
                        self.warn(&field_path, "CPU reservations are not supported (only a CPU limit): ignored")
                    }
                    (_, k) if k.starts_with("x-") => {}
                    (_, other) => self.warn(&field_path, format!("`{other}` is not supported: ignored")),
                }
            }
        }
    }

    pub(super) fn labels(&mut self, node: &Node, path: &str, labels: &mut BTreeMap<String, String>) {
        let entries: Vec<(String, String, String)> = match node {
            Node::Map(map) => map
                .iter()
                .map(|(k, v)| {
                    let item_path = format!("{path}.{k}");
                    let value = self.scalar(v, &item_path).unwrap_or_default();
                    (k.clone(), value, item_path)
                })
                .collect(),
            Node::Seq(_) => self
                .strings(node, path)
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                    (k.to_owned(), v.to_owned(), format!("{path}[{i}]"))
                })
                .collect(),
            Node::Null => Vec::new(),
            other => {
                self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind()));
                Vec::new()
            }
        };
        for (key, value, item_path) in entries {
            if key.starts_with(RESERVED_LABEL_PREFIX) {
                self.warn(
                    &item_path,
                    format!("label {key:?} uses the prefix {RESERVED_LABEL_PREFIX:?} the controller owns: dropped"),
                );
            } else {
                labels.insert(key, value);
            }
        }
    }
}
