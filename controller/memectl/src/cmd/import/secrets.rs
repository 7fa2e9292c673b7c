//! What stays out of git: environment variables whose name looks secret, whose value
//! interpolates a secret-looking variable, or whose value holds a credential (a URL with a
//! password, a connection string's `password=`) become `secretKeyRef`s to one secret of the stack
//! (one key per value: a variable several services use is one key); their values are never
//! written or printed. A credential anywhere else (a command, a label) stops the import.

use std::collections::BTreeSet;

use meme_api::v1alpha1::{EnvVar, EnvVarSource, SecretKeySelector};

use super::importer::{Importer, SecretHint, SharedSecret};
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
            let var = self.env_var(service, &name, value, &item_path, secrets);
            if let Some(var) = var {
                if let Some(i) = env.iter().position(|e| e.name == var.name) {
                    self.warn(&item_path, format!("{name} is set twice: the last one wins, as in compose"));
                    env.remove(i);
                }
                env.push(var);
            }
        }
    }

    /// One variable: a literal value, or a `secretKeyRef` when its name looks secret, its value
    /// interpolates a secret-looking variable, or its value holds a credential (a URL with a
    /// password, a connection string's `password=`).
    fn env_var(
        &mut self,
        service: &str,
        name: &str,
        value: Option<Node>,
        path: &str,
        secrets: &mut Vec<SecretHint>,
    ) -> Option<EnvVar> {
        let raw = match &value {
            None => None,
            Some(Node::Str(s)) => Some(s.clone()),
            Some(other) => {
                if let Node::Num(n) = other
                    && !n.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                {
                    self.note(
                        path,
                        format!(
                            "a YAML number, imported as {n:?}: quote it in the compose file if it was written \
                             differently (1.10 is 1.1)"
                        ),
                    );
                }
                let text = self.scalar(other, path)?;
                return Some(EnvVar { name: name.to_owned(), value: Some(text), value_from: None });
            }
        };
        // Which value the secret holds: one variable's (shared by every service that uses it),
        // or this text's.
        let id = |raw: &Option<String>| match raw.as_deref().map_or(Some(name), sole_variable) {
            Some(var) => SecretId::Variable(var.to_owned()),
            None => SecretId::Text { name: name.to_owned(), raw: raw.clone().unwrap_or_default() },
        };
        if is_secret_name(name) {
            let why = "its name looks secret".to_owned();
            return Some(self.secret_ref(service, name, path, secrets, &why, id(&raw)));
        }
        let Some(raw) = raw else {
            self.record_variable(name);
            return match self.env.get(name) {
                Some(v) if credential_in(&v).is_some() => {
                    let why = format!("its value in the environment holds {}", credential_in(&v).unwrap_or_default());
                    Some(self.secret_ref(service, name, path, secrets, &why, id(&None)))
                }
                Some(v) => Some(EnvVar { name: name.to_owned(), value: Some(v), value_from: None }),
                None => {
                    self.warn(path, format!("{name} has no value here and is not set: left out (as compose does)"));
                    None
                }
            };
        };
        let result = self.interpolated(&raw, path);
        let tainted: BTreeSet<&String> = result.vars.iter().filter(|v| is_secret_name(v)).collect();
        if !tainted.is_empty() && !result.value.is_empty() {
            let via = tainted.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
            let why = format!("its value interpolates {via}, which looks secret");
            return Some(self.secret_ref(service, name, path, secrets, &why, id(&Some(raw))));
        }
        if let Some(what) = credential_in(&result.value) {
            let why = format!("its value holds {what}");
            return Some(self.secret_ref(service, name, path, secrets, &why, id(&Some(raw))));
        }
        Some(EnvVar { name: name.to_owned(), value: Some(result.value), value_from: None })
    }

    /// The `secretKeyRef` for a secret variable: a key of the stack's secret, one per value (the
    /// same variable used by several services is one key), remembered for the summary.
    fn secret_ref(
        &mut self,
        service: &str,
        name: &str,
        path: &str,
        secrets: &mut Vec<SecretHint>,
        why: &str,
        id: SecretId,
    ) -> EnvVar {
        let key = self.secret_key_for(service, &id);
        let secret = self.stack.clone();
        let holds = match &id {
            SecretId::Variable(var) => format!("the value of ${{{var}}}"),
            // The template is shown when it holds no credential itself (the password is a
            // `${VAR}`): then it says exactly what to write.
            SecretId::Text { name, raw }
                if !is_secret_name(name) && raw.contains('$') && credential_in(raw).is_none() =>
            {
                format!("{raw} with its variables' values")
            }
            SecretId::Text { name, .. } => format!("the value of {name} as the compose file sets it"),
        };
        let shared = self.shared_secrets.entry(key.clone()).or_insert_with(|| SharedSecret {
            key: key.clone(),
            holds,
            users: Vec::new(),
        });
        let user = format!("{name} of {service}");
        if !shared.users.contains(&user) {
            shared.users.push(user);
        }
        let others = shared.users.len() - 1;
        let also = match others {
            0 => String::new(),
            1 => " (shared with 1 other use)".to_owned(),
            n => format!(" (shared with {n} other uses)"),
        };
        self.note(
            path,
            format!(
                "{why}: imported as secretKeyRef {secret}/{key}{also}, without its value; put the value in \
                 <--secrets-dir>/{secret}/{key} on the controller's host"
            ),
        );
        secrets.retain(|s| s.variable != name);
        secrets.push(SecretHint { service: secret.clone(), variable: name.to_owned(), key: key.clone() });
        EnvVar {
            name: name.to_owned(),
            value: None,
            value_from: Some(EnvVarSource { secret_key_ref: SecretKeySelector { name: secret, key } }),
        }
    }

    /// The key for a secret value: named after its variable; another value with the same name
    /// gets the service's name in front (and a number if that is taken too).
    fn secret_key_for(&mut self, service: &str, id: &SecretId) -> String {
        if let Some((_, key)) = self.secret_ids.iter().find(|(known, _)| known == id) {
            return key.clone();
        }
        let base = match id {
            SecretId::Variable(var) => secret_key(var),
            SecretId::Text { name, .. } => secret_key(name),
        };
        let taken = |key: &str, ids: &[(SecretId, String)]| ids.iter().any(|(_, k)| k == key);
        let mut key = base.clone();
        if taken(&key, &self.secret_ids) {
            key = format!("{}-{base}", secret_key(service));
        }
        let mut n = 2;
        let first = key.clone();
        while taken(&key, &self.secret_ids) {
            key = format!("{first}-{n}");
            n += 1;
        }
        self.secret_ids.push((id.clone(), key.clone()));
        key
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

/// What a secret holds: one variable's value (`${MINIO_ROOT_PASSWORD}`, or a variable taken from
/// the environment by name), or a value as the compose file writes it under a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SecretId {
    /// `${VAR}` (or `$VAR`, `${VAR:-default}`): the variable's value.
    Variable(String),
    /// Any other text, under the variable name it is set as.
    Text { name: String, raw: String },
}

/// The variable a value is exactly (`${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR?err}`), if any.
/// `${VAR:+alt}` is not the variable's value.
pub(super) fn sole_variable(raw: &str) -> Option<&str> {
    let rest = raw.trim().strip_prefix('$')?;
    let (inner, braced) = match rest.strip_prefix('{') {
        Some(inner) => (inner.strip_suffix('}')?, true),
        None => (rest, false),
    };
    let end = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
    let (name, tail) = inner.split_at(end);
    let valid_name = !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
    let plain_tail = tail.is_empty()
        || braced && ["-", ":-", "?", ":?"].iter().any(|op| tail.starts_with(op) && !tail.contains('$'));
    (valid_name && plain_tail).then_some(name)
}

/// What in `value` is a credential written in clear, if anything (a description, never the
/// credential): a URL's `user:password@`, or a connection string's `password=...`. A password
/// that is a `$VAR` reference is not in clear.
pub(super) fn credential_in(value: &str) -> Option<&'static str> {
    let mut rest = value;
    while let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        let end = after.find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..end];
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.is_empty()
            && !password.starts_with('$')
        {
            return Some("a password in a URL (user:password@host)");
        }
        rest = &after[end..];
    }
    let lower = value.to_ascii_lowercase();
    for key in
        ["password=", "passwd=", "pwd=", "sslpassword=", "secret=", "token=", "access_token=", "api_key=", "apikey="]
    {
        for (at, _) in lower.match_indices(key) {
            let boundary = at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b';' | b'&' | b'?' | b',' | b'\t');
            let first = value[at + key.len()..].chars().next();
            if boundary && first.is_some_and(|c| !c.is_whitespace() && !matches!(c, ';' | '&' | '$')) {
                return Some("a password in a connection string (password=...)");
            }
        }
    }
    None
}

/// Command-line flags whose next word (or `=value`) is a password.
const SECRET_FLAGS: [&str; 9] = [
    "--password",
    "--pass",
    "--requirepass",
    "--masterauth",
    "--token",
    "--secret",
    "--api-key",
    "--access-key",
    "--secret-key",
];

/// The first word of a command that is a credential written in clear, as `(index, why)`: a flag
/// of [`SECRET_FLAGS`] followed by a literal value, or a word holding a [`credential_in`].
pub(super) fn credential_in_command(words: &[String]) -> Option<(usize, String)> {
    for (i, word) in words.iter().enumerate() {
        if let Some(what) = credential_in(word) {
            return Some((i, what.to_owned()));
        }
        let (flag, inline) = word.split_once('=').map_or((word.as_str(), None), |(f, v)| (f, Some(v)));
        if SECRET_FLAGS.contains(&flag) {
            let value = inline.or_else(|| words.get(i + 1).map(String::as_str));
            if value.is_some_and(|v| !v.is_empty() && !v.starts_with('$')) {
                return Some((i, format!("`{flag}` followed by a password")));
            }
        }
    }
    None
}

/// Whether a bind-mounted file's name says it holds a secret (a private key, a password file):
/// such a file is never copied into the manifests folder.
pub(super) fn is_secret_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["secret", "password", "passwd", "token", "credential", "private", "id_rsa", "id_ed25519", "id_ecdsa"]
        .iter()
        .any(|word| lower.contains(word))
        || [".key", ".pem", ".p12", ".pfx", ".jks", ".keystore", ".htpasswd"].iter().any(|ext| lower.ends_with(ext))
        || lower == ".env"
        || lower.starts_with(".env.")
}

/// The first line of a config file that holds a credential written in clear (1-based), if any:
/// a URL with a password, or a `password:`/`password =` setting with a literal value.
pub(super) fn credential_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let trimmed = line.trim_start().to_ascii_lowercase();
            let setting =
                ["password", "passwd", "secret", "token", "api_key", "apikey", "client_secret", "bearer_token"]
                    .iter()
                    .find_map(|k| trimmed.strip_prefix(k))
                    .map(str::trim_start)
                    .and_then(|rest| rest.strip_prefix(':').or_else(|| rest.strip_prefix('=')))
                    .map(str::trim)
                    .is_some_and(|value| !value.is_empty() && !value.starts_with(['$', '{', '#']) && value != "\"\"");
            setting || credential_in(line).is_some()
        })
        .map(|i| i + 1)
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

    #[test]
    fn credentials_should_be_found_without_naming_them() {
        for value in [
            "postgres://meme:hunter2@db:5432/meme",
            "redis://:hunter2@redis:6379/0",
            "amqp://guest:guest@rabbit/",
            "host=db user=app password=hunter2 dbname=app",
            "Server=db;Database=app;User Id=sa;Password=hunter2;",
            "https://api.example.com/v1?token=abc123",
        ] {
            let what = credential_in(value).unwrap_or_else(|| panic!("{value}"));
            assert!(!what.contains("hunter2"), "{what}");
        }
        for value in [
            "redis://redis:6379/0",
            "https://user@example.com/",
            "postgres://app:${DB_PASSWORD}@db/app",
            "password=",
            "no-password-here",
            "http://example.com/a:b@c",
        ] {
            assert_eq!(credential_in(value), None, "{value}");
        }
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(credential_in_command(&words("redis-server --requirepass hunter2")).map(|c| c.0), Some(1));
        assert_eq!(credential_in_command(&words("app --password=hunter2")).map(|c| c.0), Some(1));
        assert_eq!(credential_in_command(&words("redis-server --requirepass $REDIS_PASSWORD")), None);
        assert_eq!(credential_in_command(&words("server /data --console-address :9001")), None);
        assert_eq!(credential_line("global:\n  scrape_interval: 15s\n"), None);
        assert_eq!(credential_line("basic_auth:\n  username: u\n  password: hunter2\n"), Some(3));
        assert_eq!(credential_line("password_file: /run/secrets/p\n"), None);
        assert!(is_secret_file("server.key") && is_secret_file("db_password.txt") && !is_secret_file("Caddyfile"));
    }

    #[test]
    fn sole_variables_should_be_recognized() {
        assert_eq!(sole_variable("${MINIO_ROOT_PASSWORD}"), Some("MINIO_ROOT_PASSWORD"));
        assert_eq!(sole_variable("$TOKEN"), Some("TOKEN"));
        assert_eq!(sole_variable("${PASS:-changeme}"), Some("PASS"));
        assert_eq!(sole_variable("${PASS:+set}"), None);
        assert_eq!(sole_variable("redis://:${PASS}@redis"), None);
        assert_eq!(sole_variable("${A}${B}"), None);
        assert_eq!(sole_variable("plain"), None);
    }
}
