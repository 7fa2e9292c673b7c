//! What stays out of git: environment variables whose name or value looks secret become
//! `secretKeyRef`s, and their values are never written or printed.

use std::collections::BTreeSet;

use meme_api::v1alpha1::{EnvVar, EnvVarSource, SecretKeySelector};

use super::importer::{Importer, SecretHint};
use super::interpolate::parse_dotenv;
use super::node::Node;

impl Importer<'_> {
    pub(super) fn environment(
        &mut self,
        node: &Node,
        path: &str,
        service: &str,
        env: &mut Vec<EnvVar>,
        secrets: &mut Vec<SecretHint>,
    ) {
        // (name, value as written, its path); None: no value (taken from the environment).
        let mut entries: Vec<(String, Option<Node>, String)> = Vec::new();
        match node {
            Node::Map(map) => {
                for (name, value) in map {
                    let value = (*value != Node::Null).then(|| value.clone());
                    entries.push((name.clone(), value, format!("{path}.{name}")));
                }
            }
            Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    let text = match item {
                        Node::Str(s) => s.clone(),
                        Node::Num(n) => n.clone(),
                        other => {
                            self.warn(&item_path, format!("expected NAME=VALUE, found {}: ignored", other.kind()));
                            continue;
                        }
                    };
                    match text.split_once('=') {
                        Some((name, value)) => {
                            entries.push((name.to_owned(), Some(Node::Str(value.to_owned())), item_path))
                        }
                        None => entries.push((text, None, item_path)),
                    }
                }
            }
            Node::Null => {}
            other => self.warn(path, format!("expected a list or a mapping, found {}: ignored", other.kind())),
        }
        for (name, value, item_path) in entries {
            let var = if is_secret_name(&name) {
                Some(self.secret_ref(service, &name, &item_path, secrets, None))
            } else {
                match value {
                    None => match self.env.get(&name) {
                        Some(v) => Some(EnvVar { name: name.clone(), value: Some(v), value_from: None }),
                        None => {
                            self.warn(
                                &item_path,
                                format!("{name} has no value here and is not set: left out (as compose does)"),
                            );
                            None
                        }
                    },
                    Some(Node::Str(raw)) => {
                        let result = self.interpolated(&raw, &item_path);
                        let tainted: BTreeSet<&String> = result.vars.iter().filter(|v| is_secret_name(v)).collect();
                        if tainted.is_empty() || result.value.is_empty() {
                            Some(EnvVar { name: name.clone(), value: Some(result.value), value_from: None })
                        } else {
                            let via = tainted.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
                            Some(self.secret_ref(service, &name, &item_path, secrets, Some(&via)))
                        }
                    }
                    Some(other) => {
                        if let Node::Num(n) = &other
                            && !n.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                        {
                            self.note(
                                &item_path,
                                format!(
                                    "a YAML number, imported as {n:?}: quote it in the compose file if it was \
                                     written differently (1.10 is 1.1)"
                                ),
                            );
                        }
                        self.scalar(&other, &item_path).map(|v| EnvVar {
                            name: name.clone(),
                            value: Some(v),
                            value_from: None,
                        })
                    }
                }
            };
            if let Some(var) = var {
                if let Some(i) = env.iter().position(|e| e.name == var.name) {
                    self.warn(&item_path, format!("{name} is set twice: the last one wins, as in compose"));
                    env.remove(i);
                }
                env.push(var);
            }
        }
    }

    /// The `secretKeyRef` for a secret-looking variable, remembered for the summary.
    pub(super) fn secret_ref(
        &mut self,
        service: &str,
        name: &str,
        path: &str,
        secrets: &mut Vec<SecretHint>,
        via: Option<&str>,
    ) -> EnvVar {
        let key = secret_key(name);
        let why = match via {
            Some(via) => format!("its value interpolates {via}, which looks secret"),
            None => "its name looks secret".to_owned(),
        };
        self.note(
            path,
            format!(
                "{why}: imported as secretKeyRef {service}/{key}, without its value; put the value in \
                 <--secrets-dir>/{service}/{key} on the controller's host"
            ),
        );
        secrets.retain(|s| s.variable != name);
        secrets.push(SecretHint { service: service.to_owned(), variable: name.to_owned(), key: key.clone() });
        EnvVar {
            name: name.to_owned(),
            value: None,
            value_from: Some(EnvVarSource { secret_key_ref: SecretKeySelector { name: service.to_owned(), key } }),
        }
    }

    pub(super) fn env_file(&mut self, node: &Node, path: &str) {
        let mut files = Vec::new();
        let items: Vec<(Node, String)> = match node {
            Node::Seq(items) => items.iter().enumerate().map(|(i, n)| (n.clone(), format!("{path}[{i}]"))).collect(),
            other => vec![(other.clone(), path.to_owned())],
        };
        for (item, item_path) in items {
            let file = match &item {
                Node::Map(_) => item.get("path").and_then(|p| self.scalar(p, &item_path)),
                other => self.scalar(other, &item_path),
            };
            files.extend(file);
        }
        for file in files {
            let names = std::fs::read_to_string(self.dir.join(&file))
                .ok()
                .map(|text| parse_dotenv(&text, &|_| None).into_iter().map(|(k, _)| k).collect::<Vec<_>>());
            let listed = match names {
                Some(names) if !names.is_empty() => format!(" (it sets {})", names.join(", ")),
                Some(_) => String::new(),
                None => " (not found next to the compose file)".to_owned(),
            };
            self.warn(
                path,
                format!(
                    "env_file {file}: its values are not imported{listed}; add the variables this service needs \
                     under spec.env (secrets as valueFrom.secretKeyRef)"
                ),
            );
        }
    }
}

/// Whether an environment variable's name says it holds a secret.
pub(super) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "ACCESS_KEY", "PRIVATE_KEY", "CREDENTIAL"]
        .iter()
        .any(|word| upper.contains(word))
        || upper.ends_with("_KEY")
}

/// The secret key for a variable: `MINIO_ROOT_PASSWORD` → `minio-root-password`.
pub(super) fn secret_key(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_should_be_recognized() {
        for secret in
            ["MINIO_ROOT_PASSWORD", "MINIO_SECRET_KEY", "MINIO_ACCESS_KEY", "GITHUB_TOKEN", "API_KEY", "db_passwd"]
        {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in ["LOG_LEVEL", "MINIO_ROOT_USER", "KEYBOARD", "S3_BUCKET"] {
            assert!(!is_secret_name(plain), "{plain}");
        }
        assert_eq!(secret_key("MINIO_ROOT_PASSWORD"), "minio-root-password");
    }
}
