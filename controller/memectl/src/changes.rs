//! What differs between two desired states (`diff --offline`, the preview of `rollback`) or
//! between the desired state and the running containers (`diff`), per service and per field,
//! and how that is printed. Pure: no git, no Docker.
//!
//! Values of literal environment variables are shown (they are in git anyway); secrets never
//! are: offline a secret is shown by its reference (`secretKeyRef name/key`), online by `***`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use meme_api::template::{EnvValue, TemplateField, TemplateFile, describe_change, secret_digest};
use meme_api::v1alpha1::{ContainerPort, Deployment, HealthCheck, Resources, VolumeMount};
use meme_api::{ContainerTemplate, ManifestSet};
use serde::Serialize;

use crate::color::{Color, Paint};

/// What kubectl prints for an absent value.
const NONE: &str = "<none>";
/// How a secret value is shown.
const MASK: &str = "***";

/// One difference of one service (or of the stack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Which field: `image`, `env.LOG_LEVEL`, `file./etc/x`, `replicas`, `ports`, ...
    pub field: String,
    /// The value before (offline: at A; online: running), as shown; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The value after (offline: at B; online: desired), as shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The line printed: `image: a -> b`, `file /etc/x changed`.
    pub text: String,
}

impl Change {
    /// `label: from -> to`.
    fn values(field: impl Into<String>, label: &str, from: String, to: String) -> Self {
        Self { field: field.into(), text: format!("{label}: {from} -> {to}"), from: Some(from), to: Some(to) }
    }

    /// A change described in words only.
    fn words(field: impl Into<String>, text: String) -> Self {
        Self { field: field.into(), from: None, to: None, text }
    }
}

/// How a service differs as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ServiceChange {
    /// Only on the new/desired side.
    Added,
    /// Only on the old/running side.
    Removed,
    /// On both sides, with `changes` (possibly none, when only notes were worth saying).
    Changed,
}

/// One service's differences.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceDiff {
    /// Service name.
    pub name: String,
    /// Added, removed or changed.
    pub change: ServiceChange,
    /// Words after the name (`not running`, `running, not in manifests`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per-field differences.
    pub changes: Vec<Change>,
    /// What could not be compared, and why (not differences).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl ServiceDiff {
    /// Whether this is a difference (and not only notes).
    #[must_use]
    pub fn differs(&self) -> bool {
        self.change != ServiceChange::Changed || !self.changes.is_empty()
    }
}

/// Every difference between two states.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Stack-level differences (name, networks, volumes).
    pub stack_changes: Vec<Change>,
    /// Services that differ or carry notes, by name.
    pub services: Vec<ServiceDiff>,
}

impl Report {
    /// Whether nothing differs (notes aside).
    #[must_use]
    pub fn is_equal(&self) -> bool {
        self.stack_changes.is_empty() && !self.services.iter().any(ServiceDiff::differs)
    }

    /// Every note, as `service: note`.
    pub fn notes(&self) -> impl Iterator<Item = String> + '_ {
        self.services.iter().flat_map(|s| s.notes.iter().map(move |n| format!("{}: {n}", s.name)))
    }

    /// The listing: `~ web` then one indented line per field, `+ api`, `- old`, the stack first.
    /// Empty when nothing differs.
    #[must_use]
    pub fn render(&self, stack_name: &str, paint: Paint) -> String {
        let mut out = String::new();
        if !self.stack_changes.is_empty() {
            let _ = writeln!(out, "{}", paint.paint(&format!("~ stack {stack_name}"), Some(Color::Yellow)));
            for change in &self.stack_changes {
                let _ = writeln!(out, "    {}", change.text);
            }
        }
        for service in self.services.iter().filter(|s| s.differs()) {
            let (sign, color) = match service.change {
                ServiceChange::Added => ('+', Color::Green),
                ServiceChange::Removed => ('-', Color::Red),
                ServiceChange::Changed => ('~', Color::Yellow),
            };
            let mut head = format!("{sign} {}", service.name);
            if let Some(detail) = &service.detail {
                let _ = write!(head, " ({detail})");
            }
            let _ = writeln!(out, "{}", paint.paint(&head, Some(color)));
            for change in &service.changes {
                let _ = writeln!(out, "    {}", change.text);
            }
        }
        out
    }
}

/// Compares two validated manifest sets (offline): the stack, then every service per field.
#[must_use]
pub fn compare_sets(old: &ManifestSet, new: &ManifestSet) -> Report {
    let old_templates = ContainerTemplate::all(old);
    let new_templates = ContainerTemplate::all(new);
    let names: BTreeSet<&String> = old_templates.keys().chain(new_templates.keys()).collect();
    let mut services = Vec::new();
    for name in names {
        let (changes, change) = match (old_templates.get(name), new_templates.get(name)) {
            (Some(a), Some(b)) => {
                let (Some(da), Some(db)) = (old.deployment(name), new.deployment(name)) else { continue };
                (compare_templates(a, da, b, db), ServiceChange::Changed)
            }
            (None, Some(_)) => (Vec::new(), ServiceChange::Added),
            (Some(_), None) => (Vec::new(), ServiceChange::Removed),
            (None, None) => continue,
        };
        let diff = ServiceDiff { name: name.clone(), change, detail: None, changes, notes: Vec::new() };
        if diff.differs() {
            services.push(diff);
        }
    }
    Report { stack_changes: compare_stacks(old, new), services }
}

/// Stack name, declared networks and volumes (the stack's env shows in every service).
fn compare_stacks(old: &ManifestSet, new: &ManifestSet) -> Vec<Change> {
    let (a, b) = (&old.stack.object, &new.stack.object);
    let mut out = Vec::new();
    push_value(&mut out, "name", "name", a.metadata.name.clone(), b.metadata.name.clone());
    let networks = |s: &meme_api::v1alpha1::Stack| {
        list(s.spec.networks.iter().map(|n| if n.internal { format!("{} (internal)", n.name) } else { n.name.clone() }))
    };
    push_value(&mut out, "networks", "networks", networks(a), networks(b));
    let volumes = |s: &meme_api::v1alpha1::Stack| list(s.spec.volumes.iter().map(|v| v.name.clone()));
    push_value(&mut out, "volumes", "volumes", volumes(a), volumes(b));
    out
}

/// Every field of two versions of one service, template and rollout settings.
#[must_use]
pub fn compare_templates(
    a: &ContainerTemplate,
    da: &Deployment,
    b: &ContainerTemplate,
    db: &Deployment,
) -> Vec<Change> {
    let mut out = Vec::new();
    for field in TemplateField::ALL {
        let key = field.key();
        let (from, to) = match field {
            // Identity: services are paired by name, and the stack name is a stack change.
            TemplateField::Stack | TemplateField::Service => continue,
            TemplateField::Image => {
                push_value(&mut out, key, key, a.image.clone(), b.image.clone());
                // Replicas are not in the template, but read best next to the image: the two
                // things a deploy usually changes.
                let (ra, rb) = (da.spec.replicas.to_string(), db.spec.replicas.to_string());
                push_value(&mut out, "replicas", "replicas", ra, rb);
                continue;
            }
            TemplateField::Env => {
                let names: BTreeSet<&String> = a.env.keys().chain(b.env.keys()).collect();
                for name in names {
                    let shown = |v: Option<&EnvValue>| v.map_or_else(|| NONE.to_owned(), env_offline);
                    let (from, to) = (shown(a.env.get(name)), shown(b.env.get(name)));
                    push_value(&mut out, format!("{key}.{name}"), &format!("{key} {name}"), from, to);
                }
                continue;
            }
            TemplateField::Files => {
                compare_files(&mut out, &a.files, &b.files);
                continue;
            }
            TemplateField::Labels => {
                let label_keys: BTreeSet<&String> = a.labels.keys().chain(b.labels.keys()).collect();
                for label in label_keys {
                    let shown = |v: Option<&String>| v.map_or_else(|| NONE.to_owned(), |v| quoted(v));
                    let (from, to) = (shown(a.labels.get(label)), shown(b.labels.get(label)));
                    push_value(&mut out, format!("{key}.{label}"), &format!("label {label}"), from, to);
                }
                continue;
            }
            TemplateField::Command => (argv(a.command.as_ref()), argv(b.command.as_ref())),
            TemplateField::Args => (argv(a.args.as_ref()), argv(b.args.as_ref())),
            TemplateField::Ports => (list(a.ports.iter().map(port)), list(b.ports.iter().map(port))),
            TemplateField::VolumeMounts => {
                (list(a.volume_mounts.iter().map(mount)), list(b.volume_mounts.iter().map(mount)))
            }
            TemplateField::Networks => (list(a.networks.iter().cloned()), list(b.networks.iter().cloned())),
            TemplateField::HealthCheck => (health(a.health_check.as_ref()), health(b.health_check.as_ref())),
            TemplateField::Resources => (resources(a.resources.as_ref()), resources(b.resources.as_ref())),
            TemplateField::User => (opt(a.user.as_deref()), opt(b.user.as_deref())),
            TemplateField::Init => (a.init.to_string(), b.init.to_string()),
            TemplateField::ReadOnlyRootFilesystem => {
                (a.read_only_root_filesystem.to_string(), b.read_only_root_filesystem.to_string())
            }
            TemplateField::StopGracePeriod => (millis(a.stop_grace_period_ms), millis(b.stop_grace_period_ms)),
        };
        push_value(&mut out, key, key, from, to);
    }
    let (sa, sb) = (&da.spec, &db.spec);
    push_value(&mut out, "strategy", "strategy", format!("{:?}", sa.strategy.kind), format!("{:?}", sb.strategy.kind));
    push_value(
        &mut out,
        "dependsOn",
        "dependsOn",
        list(sa.depends_on.iter().cloned()),
        list(sb.depends_on.iter().cloned()),
    );
    push_value(
        &mut out,
        "progressDeadline",
        "progressDeadline",
        sa.progress_deadline.to_string(),
        sb.progress_deadline.to_string(),
    );
    push_value(
        &mut out,
        "minReadySeconds",
        "minReadySeconds",
        sa.min_ready_seconds.to_string(),
        sb.min_ready_seconds.to_string(),
    );
    push_value(
        &mut out,
        "imagePullPolicy",
        "imagePullPolicy",
        format!("{:?}", sa.image_pull_policy),
        format!("{:?}", sb.image_pull_policy),
    );
    out
}

/// Files by path in the container: content (by digest) and mode.
fn compare_files(out: &mut Vec<Change>, a: &[TemplateFile], b: &[TemplateFile]) {
    let by_path = |files: &[TemplateFile]| -> BTreeMap<String, TemplateFile> {
        files.iter().map(|f| (f.path.clone(), f.clone())).collect()
    };
    let (a, b) = (by_path(a), by_path(b));
    let paths: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for path in paths {
        let field = format!("{}.{path}", TemplateField::Files.key());
        match (a.get(path), b.get(path)) {
            (Some(x), Some(y)) => {
                if x.sha256 != y.sha256 {
                    out.push(Change {
                        field: field.clone(),
                        from: Some(short_digest(&x.sha256)),
                        to: Some(short_digest(&y.sha256)),
                        text: format!("file {path} changed"),
                    });
                }
                if x.mode != y.mode {
                    out.push(Change::values(field, &format!("file {path} mode"), mode(x.mode), mode(y.mode)));
                }
            }
            (None, Some(y)) => out.push(Change {
                field,
                from: None,
                to: Some(y.source.clone()),
                text: format!("file {path} added (from {})", y.source),
            }),
            (Some(_), None) => out.push(Change::words(field, format!("file {path} removed"))),
            (None, None) => {}
        }
    }
}

/// Pushes `label: from -> to` when the values differ.
fn push_value(out: &mut Vec<Change>, field: impl Into<String>, label: &str, from: String, to: String) {
    if from != to {
        out.push(Change::values(field, label, from, to));
    }
}

/// An environment value as the manifests write it: a literal, or the secret's reference.
fn env_offline(value: &EnvValue) -> String {
    match value {
        EnvValue::Literal(v) => quoted(v),
        EnvValue::Secret(s) => format!("secretKeyRef {}/{}", s.name, s.key),
    }
}

/// A literal shown on one line: `""` when empty, JSON-quoted when it has spaces or control
/// characters, else as it is.
fn quoted(value: &str) -> String {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) || value == NONE {
        serde_json::to_string(value).unwrap_or_default()
    } else {
        value.to_owned()
    }
}

fn opt(value: Option<&str>) -> String {
    value.map_or_else(|| NONE.to_owned(), quoted)
}

/// Items joined by `, `, or `<none>`.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() { NONE.to_owned() } else { items.join(", ") }
}

/// A command line as JSON (unambiguous with spaces in arguments), or `<none>` (the image's).
fn argv(argv: Option<&Vec<String>>) -> String {
    argv.map_or_else(|| NONE.to_owned(), |a| serde_json::to_string(a).unwrap_or_default())
}

/// `8080/tcp`, or `127.0.0.1:18080->8080/tcp` when published (as `docker ps`).
fn port(p: &ContainerPort) -> String {
    let container = format!("{}/{}", p.container_port, p.protocol.docker_name());
    match p.host_port {
        Some(host) => format!("{}:{host}->{container}", p.host_ip.as_deref().unwrap_or("0.0.0.0")),
        None => container,
    }
}

/// `name:/path`, `:ro` when read-only.
fn mount(m: &VolumeMount) -> String {
    format!("{}:{}{}", m.name, m.mount_path, if m.read_only { ":ro" } else { "" })
}

/// `httpGet :8080/health every 1s timeout 1s retries 3 startPeriod 0s`, or `<none>`.
fn health(check: Option<&HealthCheck>) -> String {
    let Some(c) = check else { return NONE.to_owned() };
    let probe = if let Some(http) = &c.http_get {
        format!("httpGet :{}{}", http.port, http.path)
    } else if let Some(tcp) = &c.tcp_socket {
        format!("tcpSocket :{}", tcp.port)
    } else if let Some(exec) = &c.exec {
        format!("exec {}", serde_json::to_string(exec).unwrap_or_default())
    } else {
        "none".to_owned()
    };
    format!("{probe} every {} timeout {} retries {} startPeriod {}", c.interval, c.timeout, c.retries, c.start_period)
}

/// `cpus 0.5, memory 512Mi, memoryReservation 128Mi`, or `<none>`.
fn resources(r: Option<&Resources>) -> String {
    let Some(r) = r else { return NONE.to_owned() };
    let mut parts = Vec::new();
    if let Some(limits) = &r.limits {
        if let Some(cpus) = &limits.cpus {
            parts.push(format!("cpus {cpus}"));
        }
        if let Some(memory) = &limits.memory {
            parts.push(format!("memory {memory}"));
        }
    }
    if let Some(memory) = r.reservations.as_ref().and_then(|r| r.memory.as_ref()) {
        parts.push(format!("memoryReservation {memory}"));
    }
    list(parts.into_iter())
}

fn millis(ms: u64) -> String {
    meme_api::units::Duration::from_millis(ms).to_string()
}

fn mode(mode: u32) -> String {
    format!("{mode:04o}")
}

fn short_digest(sha256: &str) -> String {
    sha256.get(..12).unwrap_or(sha256).to_owned()
}

/// The desired side of an online comparison: one service's template with what the host's
/// secrets allowed to compute.
#[derive(Clone, Debug)]
pub struct Desired<'a> {
    /// The template.
    pub template: &'a ContainerTemplate,
    /// Desired replicas.
    pub replicas: u32,
    /// Field digests (secret digests included where they could be read).
    pub fields: BTreeMap<String, String>,
    /// The spec hash, when every secret could be read.
    pub spec_hash: Option<String>,
    /// Secret env vars whose value could not be read, by name, with the reason.
    pub unresolved: BTreeMap<String, String>,
}

/// One running container of a service, as the engine reports it.
#[derive(Clone, Debug, Default)]
pub struct Running {
    /// Container name.
    pub name: String,
    /// The image reference it was created with.
    pub image: String,
    /// Its `pro.memeit.spec-hash` label.
    pub spec_hash: Option<String>,
    /// Its `pro.memeit.fields` label, parsed.
    pub fields: Option<BTreeMap<String, String>>,
    /// Its environment. Read only to show the old value of a variable whose recorded digest
    /// proves it was a literal (so a secret value is never shown).
    pub env: BTreeMap<String, String>,
}

/// The digest `field_digests` records for a literal env value (first 4 bytes of the SHA-256
/// of its JSON form, hex).
#[must_use]
pub fn literal_digest(value: &str) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    secret_digest(&json)[..8].to_owned()
}

/// Compares the desired state of a service with its running containers: replicas, image
/// reference, and each container's recorded field digests against the desired ones. Changes
/// read `running -> desired`; the same change on several containers is listed once.
#[must_use]
pub fn compare_running(desired: &Desired<'_>, running: &[Running]) -> (Vec<Change>, Vec<String>) {
    let t = desired.template;
    let mut changes: Vec<Change> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let push = |list: &mut Vec<Change>, change: Change| {
        if !list.iter().any(|c| c.text == change.text) {
            list.push(change);
        }
    };
    let count = u32::try_from(running.len()).unwrap_or(u32::MAX);
    if count != desired.replicas {
        push(&mut changes, Change::values("replicas", "replicas", count.to_string(), desired.replicas.to_string()));
    }
    for c in running {
        let image = TemplateField::Image.key();
        if c.image != t.image {
            push(&mut changes, Change::values(image, image, c.image.clone(), t.image.clone()));
        }
        let Some(old) = &c.fields else {
            note(&mut notes, format!("container {} records no field digests; compared its spec hash only", c.name));
            if let (Some(want), Some(have)) = (&desired.spec_hash, &c.spec_hash)
                && want != have
            {
                push(&mut changes, Change::values("specHash", "spec hash", short_digest(have), short_digest(want)));
            }
            continue;
        };
        let before = changes.len();
        // The image is compared above by reference; every other field by its recorded digest.
        let keys: BTreeSet<&String> = old.keys().chain(desired.fields.keys()).filter(|k| *k != image).collect();
        for key in keys {
            let (was, want) = (old.get(key), desired.fields.get(key));
            if was == want {
                continue;
            }
            if let Some(name) = key.strip_prefix(TemplateField::Env.key()).and_then(|k| k.strip_prefix('.')) {
                if let Some(change) = env_change(desired, c, name, was, &mut notes) {
                    push(&mut changes, change);
                }
                continue;
            }
            let one = |v: Option<&String>| v.map(|v| BTreeMap::from([(key.clone(), v.clone())])).unwrap_or_default();
            push(&mut changes, Change::words(key.clone(), describe_change(&one(was), &one(want))));
        }
        // Everything recorded agrees, yet the hash differs (something field digests cannot
        // show, e.g. a new hashing scheme): the controller will still replace the container.
        // Only known when every secret was read.
        if changes.len() == before
            && c.image == t.image
            && let (Some(want), Some(have)) = (&desired.spec_hash, &c.spec_hash)
            && want != have
        {
            push(&mut changes, Change::values("specHash", "spec hash", short_digest(have), short_digest(want)));
        }
    }
    (changes, notes)
}

/// The change of one env var between a container and the desired state, or a note when it
/// cannot be compared (a secret the host's secrets directory does not resolve).
fn env_change(
    desired: &Desired<'_>,
    c: &Running,
    name: &str,
    was: Option<&String>,
    notes: &mut Vec<String>,
) -> Option<Change> {
    let value = desired.template.env.get(name);
    let secret = matches!(value, Some(EnvValue::Secret(_)));
    if let Some(reason) = desired.unresolved.get(name)
        && was.is_some()
    {
        note(notes, format!("env {name} (secret): not compared ({reason})"));
        return None;
    }
    let to = match value {
        None => NONE.to_owned(),
        Some(EnvValue::Literal(v)) => quoted(v),
        Some(EnvValue::Secret(_)) => MASK.to_owned(),
    };
    let from = match was {
        None => NONE.to_owned(),
        // Shown only when the recorded digest proves it was this literal value.
        Some(digest) => match c.env.get(name) {
            Some(v) if literal_digest(v) == *digest => quoted(v),
            _ => MASK.to_owned(),
        },
    };
    let label = if secret { format!("env {name} (secret)") } else { format!("env {name}") };
    Some(Change::values(format!("env.{name}"), &label, from, to))
}

fn note(notes: &mut Vec<String>, text: String) {
    if !notes.contains(&text) {
        notes.push(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meme_api::ManifestTree;
    use meme_api::v1alpha1::SecretKeySelector;

    const STACK: &str = "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata: {name: s}\nspec:\n  networks: [{name: internal}]\n  env: [{name: ENV, value: demo}]\n";

    fn web(image: &str, level: &str, replicas: u32, extra: &str) -> String {
        format!(
            "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  image: {image}\n  replicas: {replicas}\n  networks: [internal]\n  env:\n    - {{name: LOG_LEVEL, value: {level}}}\n    - name: TOKEN\n      valueFrom: {{secretKeyRef: {{name: app, key: token}}}}\n  files: [{{path: /etc/x.conf, source: x.conf}}]\n{extra}"
        )
    }

    fn set(web_yaml: &str, conf: &str) -> ManifestSet {
        let tree = ManifestTree::new("m")
            .with_file("stack.yaml", STACK)
            .with_file("web.yaml", web_yaml)
            .with_file("x.conf", conf);
        meme_api::load(&tree).unwrap_or_else(|d| panic!("{d}"))
    }

    fn texts(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn compare_sets_should_list_each_field_that_changed() {
        let a = set(&web("app:1", "info", 2, ""), "a\n");
        let b = set(&web("app:2", "debug", 3, "  strategy: {type: Recreate}\n  ports: [{containerPort: 80}]\n"), "b\n");
        let report = compare_sets(&a, &b);
        assert!(!report.is_equal());
        assert_eq!(report.services.len(), 1);
        let web = &report.services[0];
        assert_eq!((web.name.as_str(), web.change), ("web", ServiceChange::Changed));
        assert_eq!(
            texts(&web.changes),
            [
                "image: app:1 -> app:2",
                "replicas: 2 -> 3",
                "env LOG_LEVEL: info -> debug",
                "ports: <none> -> 80/tcp",
                "file /etc/x.conf changed",
                "strategy: RollingUpdate -> Recreate",
            ]
        );
        assert_eq!(
            report.render("s", Paint::PLAIN),
            "~ web\n    image: app:1 -> app:2\n    replicas: 2 -> 3\n    env LOG_LEVEL: info -> debug\n    \
             ports: <none> -> 80/tcp\n    file /etc/x.conf changed\n    strategy: RollingUpdate -> Recreate\n"
        );
        assert!(compare_sets(&a, &a).is_equal());
        assert_eq!(compare_sets(&a, &a).render("s", Paint::PLAIN), "");
    }

    #[test]
    fn compare_sets_should_show_secret_references_never_values_and_added_services() {
        let a = set(&web("app:1", "info", 1, ""), "a\n");
        let tree = a.tree.clone().with_file(
            "web.yaml",
            web("app:1", "info", 1, "").replace("key: token", "key: other"),
        ).with_file("api.yaml", "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  image: api:1\n  networks: [internal]\n");
        let b = meme_api::load(&tree).unwrap();
        let report = compare_sets(&a, &b);
        assert_eq!(report.services[0].change, ServiceChange::Added);
        assert_eq!(texts(&report.services[1].changes), ["env TOKEN: secretKeyRef app/token -> secretKeyRef app/other"]);
        assert_eq!(
            report.render("s", Paint::PLAIN),
            "+ api\n~ web\n    env TOKEN: secretKeyRef app/token -> secretKeyRef app/other\n"
        );
        let back = compare_sets(&b, &a);
        assert_eq!(back.services[0].change, ServiceChange::Removed);
    }

    #[test]
    fn compare_sets_should_report_stack_networks_and_volumes() {
        let a = set(&web("app:1", "info", 1, ""), "a\n");
        let stack = STACK.replace(
            "networks: [{name: internal}]",
            "networks: [{name: internal}, {name: edge, internal: true}]\n  volumes: [{name: data}]",
        );
        let b = meme_api::load(&a.tree.clone().with_file("stack.yaml", stack)).unwrap();
        let report = compare_sets(&a, &b);
        assert_eq!(
            report.render("s", Paint::PLAIN),
            "~ stack s\n    networks: internal -> internal, edge (internal)\n    volumes: <none> -> data\n"
        );
        assert!(!report.is_equal());
    }

    fn template(s: &ManifestSet) -> ContainerTemplate {
        ContainerTemplate::all(s).remove("web").unwrap()
    }

    #[test]
    fn literal_digest_should_match_the_recorded_field_digest() {
        let t = template(&set(&web("app:1", "info", 1, ""), "a\n"));
        let fields = t.field_digests(&BTreeMap::new());
        assert_eq!(fields["env.LOG_LEVEL"], literal_digest("info"));
        assert_eq!(fields["env.ENV"], literal_digest("demo"));
    }

    #[test]
    fn compare_running_should_report_image_env_files_and_replicas_without_secret_values() {
        let old = template(&set(&web("app:1", "info", 1, ""), "a\n"));
        let new = template(&set(&web("app:2", "debug", 1, ""), "b\n"));
        let token = SecretKeySelector { name: "app".into(), key: "token".into() };
        let digests = BTreeMap::from([(token, secret_digest(b"s3cret"))]);
        let running = Running {
            name: "s-web-1".into(),
            image: "app:1".into(),
            spec_hash: Some(old.spec_hash(&digests)),
            fields: Some(old.field_digests(&digests)),
            env: BTreeMap::from([
                ("LOG_LEVEL".into(), "info".into()),
                ("TOKEN".into(), "s3cret".into()),
                ("ENV".into(), "demo".into()),
            ]),
        };
        // Secrets resolved: everything but the image, env and file agree.
        let desired = Desired {
            template: &new,
            replicas: 2,
            fields: new.field_digests(&digests),
            spec_hash: Some(new.spec_hash(&digests)),
            unresolved: BTreeMap::new(),
        };
        let (changes, notes) = compare_running(&desired, std::slice::from_ref(&running));
        assert_eq!(
            texts(&changes),
            ["replicas: 1 -> 2", "image: app:1 -> app:2", "env LOG_LEVEL: info -> debug", "file /etc/x.conf changed"]
        );
        assert!(notes.is_empty());

        // A rotated secret shows masked, both sides.
        let rotated =
            BTreeMap::from([(SecretKeySelector { name: "app".into(), key: "token".into() }, secret_digest(b"other"))]);
        let desired = Desired {
            template: &old,
            replicas: 1,
            fields: old.field_digests(&rotated),
            spec_hash: Some(old.spec_hash(&rotated)),
            unresolved: BTreeMap::new(),
        };
        let (changes, _) = compare_running(&desired, std::slice::from_ref(&running));
        assert_eq!(texts(&changes), ["env TOKEN (secret): *** -> ***"]);

        // Unresolved: not compared, a note, and equal otherwise.
        let desired = Desired {
            template: &old,
            replicas: 1,
            fields: old.field_digests(&BTreeMap::new()),
            spec_hash: None,
            unresolved: BTreeMap::from([("TOKEN".into(), "no --secrets-dir".into())]),
        };
        let (changes, notes) = compare_running(&desired, std::slice::from_ref(&running));
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(notes, ["env TOKEN (secret): not compared (no --secrets-dir)"]);
        let all = format!("{changes:?}{notes:?}");
        assert!(!all.contains("s3cret"));
    }

    #[test]
    fn compare_running_should_mask_an_old_value_that_was_not_a_literal() {
        let t = template(&set(&web("app:1", "info", 1, ""), "a\n"));
        let mut fields = t.field_digests(&BTreeMap::new());
        // Recorded digest of something else than the value in the environment.
        fields.insert("env.LOG_LEVEL".into(), "00000000".into());
        let running = Running {
            name: "c".into(),
            image: "app:1".into(),
            fields: Some(fields),
            env: BTreeMap::from([("LOG_LEVEL".into(), "hunter2".into())]),
            ..Running::default()
        };
        let desired = Desired {
            template: &t,
            replicas: 1,
            fields: t.field_digests(&BTreeMap::new()),
            spec_hash: None,
            unresolved: BTreeMap::from([("TOKEN".into(), "no --secrets-dir".into())]),
        };
        let (changes, _) = compare_running(&desired, &[running]);
        assert_eq!(texts(&changes), ["env LOG_LEVEL: *** -> info"]);
    }
}
