//! The container template of a service: a Deployment merged with its Stack into the normal
//! form a container is created from, and the spec hash over it that decides when a container
//! must be replaced.
//!
//! **In the hash** (a change replaces containers): image, command, args, the merged environment
//! (literal values, and for secrets the digest of their value), ports, volume mounts, networks,
//! health check, resources, user, init, read-only root, stop grace period, files (path and
//! mode), container labels, and the stack name.
//!
//! **In the files hash** ([`ContainerTemplate::files_hash`]): the contents of `files`. A change
//! there alone replaces containers too, unless the service has a `reload` action, which copies
//! the files into the running containers instead.
//!
//! **Out of both** (changed in place, or only about rollout): replicas, strategy,
//! dependsOn, progressDeadline, minReadySeconds, imagePullPolicy, drainPeriod, reload,
//! metadata labels and annotations. Order never matters where Docker does not care: env, ports, mounts, networks
//! and files are sorted, and defaults are filled in before hashing, so writing a default
//! explicitly changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::load::{ManifestSet, normalize_source};
use crate::v1alpha1::{ContainerPort, Deployment, HealthCheck, Resources, SecretKeySelector, Stack, VolumeMount};
use crate::validate::DEFAULT_NETWORK;

/// Bumped when the hashed form changes, so old and new hashes never collide by accident.
const HASH_SCHEME: &str = "meme-spec-hash/v1";

/// Default permission bits of files copied into containers: read-only for everyone.
pub const DEFAULT_FILE_MODE: u32 = 0o444;

/// An environment value before secrets are resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnvValue {
    /// A literal value.
    Literal(String),
    /// A key of a host secret.
    Secret(SecretKeySelector),
}

/// A file to copy into the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateFile {
    /// Absolute path in the container.
    pub path: String,
    /// Source path relative to the manifests folder.
    pub source: String,
    /// Permission bits.
    pub mode: u32,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// Everything a container of one service is created from, in normal form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTemplate {
    /// The stack name.
    pub stack: String,
    /// The service name.
    pub service: String,
    /// Image reference as written.
    pub image: String,
    /// Entrypoint override.
    pub command: Option<Vec<String>>,
    /// Cmd override.
    pub args: Option<Vec<String>>,
    /// Stack env overlaid with the Deployment's, by name.
    pub env: BTreeMap<String, EnvValue>,
    /// Ports, sorted.
    pub ports: Vec<ContainerPort>,
    /// Volume mounts, sorted by mount path.
    pub volume_mounts: Vec<VolumeMount>,
    /// Networks (stack-level names), sorted; `default` when none is named.
    pub networks: Vec<String>,
    /// Health check with defaults filled in.
    pub health_check: Option<HealthCheck>,
    /// Resources, `None` when nothing is limited.
    pub resources: Option<Resources>,
    /// User.
    pub user: Option<String>,
    /// Run Docker's init as PID 1.
    pub init: bool,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: bool,
    /// Stop grace period in milliseconds.
    pub stop_grace_period_ms: u64,
    /// Files, sorted by path.
    pub files: Vec<TemplateFile>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
}

impl ContainerTemplate {
    /// The template of `deployment` within `stack`; `file` gives the content of a source.
    #[must_use]
    pub fn new(stack: &Stack, deployment: &Deployment, file: impl Fn(&str) -> Option<Vec<u8>>) -> Self {
        let spec = &deployment.spec;
        let mut env = BTreeMap::new();
        for var in stack.spec.env.iter().chain(&spec.env) {
            let value = match &var.value_from {
                Some(from) => EnvValue::Secret(from.secret_key_ref.clone()),
                None => EnvValue::Literal(var.value.clone().unwrap_or_default()),
            };
            env.insert(var.name.clone(), value);
        }
        let mut ports = spec.ports.clone();
        for p in &mut ports {
            if p.host_port.is_some() && p.host_ip.is_none() {
                p.host_ip = Some("0.0.0.0".to_owned());
            }
        }
        ports.sort_by(|a, b| {
            (a.container_port, a.protocol, a.host_port).cmp(&(b.container_port, b.protocol, b.host_port))
        });
        let mut volume_mounts = spec.volume_mounts.clone();
        volume_mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        let mut networks = spec.networks.clone();
        if networks.is_empty() {
            networks.push(DEFAULT_NETWORK.to_owned());
        }
        networks.sort();
        networks.dedup();
        let resources = spec.resources.clone().filter(|r| {
            r.limits.as_ref().is_some_and(|l| l.cpus.is_some() || l.memory.is_some())
                || r.reservations.as_ref().is_some_and(|r| r.memory.is_some())
        });
        let mut files: Vec<TemplateFile> = spec
            .files
            .iter()
            .map(|f| {
                let source = normalize_source(&f.source);
                let content = file(&source).unwrap_or_default();
                TemplateFile {
                    path: f.path.clone(),
                    mode: f.mode.as_deref().and_then(|m| u32::from_str_radix(m, 8).ok()).unwrap_or(DEFAULT_FILE_MODE),
                    sha256: hex(&Sha256::digest(&content)),
                    source,
                }
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Self {
            stack: stack.metadata.name.clone(),
            service: deployment.metadata.name.clone(),
            image: spec.image.clone(),
            command: spec.command.clone(),
            args: spec.args.clone(),
            env,
            ports,
            volume_mounts,
            networks,
            health_check: spec.health_check.clone(),
            resources,
            user: spec.user.clone(),
            init: spec.init,
            read_only_root_filesystem: spec.read_only_root_filesystem,
            stop_grace_period_ms: u64::try_from(spec.stop_grace_period.get().as_millis()).unwrap_or(u64::MAX),
            files,
            labels: spec.labels.clone(),
        }
    }

    /// Templates of every service of a validated set, by service name.
    #[must_use]
    pub fn all(set: &ManifestSet) -> BTreeMap<String, Self> {
        set.deployments
            .iter()
            .map(|d| {
                let t = Self::new(&set.stack.object, &d.object, |source| set.file(source).map(<[u8]>::to_vec));
                (t.service.clone(), t)
            })
            .collect()
    }

    /// The secrets the template reads.
    pub fn secret_refs(&self) -> impl Iterator<Item = &SecretKeySelector> {
        self.env.values().filter_map(|v| match v {
            EnvValue::Secret(r) => Some(r),
            EnvValue::Literal(_) => None,
        })
    }

    /// The spec hash: SHA-256 (hex) over the template and the digests of the secret values it
    /// reads (`secret_digests`, by selector; a missing digest hashes as absent), so a rotated
    /// secret rolls the service while its value never enters the hash input in clear.
    #[must_use]
    pub fn spec_hash(&self, secret_digests: &BTreeMap<SecretKeySelector, String>) -> String {
        #[derive(Serialize)]
        struct Input<'a> {
            scheme: &'static str,
            template: &'a ContainerTemplate,
            secrets: BTreeMap<String, Option<&'a String>>,
        }
        let secrets = self.secret_refs().map(|r| (format!("{}/{}", r.name, r.key), secret_digests.get(r))).collect();
        // File contents are left to `files_hash`: a change of contents alone can then be told
        // apart from one that needs a new container (and be reloaded in place). Paths and modes
        // stay: a file that appears, moves or changes mode needs a new container.
        let mut template = std::borrow::Cow::Borrowed(self);
        if !self.files.is_empty() {
            template.to_mut().files.iter_mut().for_each(|f| f.sha256.clear());
        }
        let input = Input { scheme: HASH_SCHEME, template: &template, secrets };
        let bytes = serde_json::to_vec(&input).expect("a template always serializes to JSON");
        hex(&Sha256::digest(&bytes))
    }

    /// The files hash: SHA-256 (hex) over the contents of `files` by path; empty when the
    /// service has no files. A container is up to date when both its spec hash and its files
    /// hash match; when only the files hash differs, the new files can be copied into the
    /// running container (`reload`) instead of replacing it.
    #[must_use]
    pub fn files_hash(&self) -> String {
        if self.files.is_empty() {
            return String::new();
        }
        let contents: Vec<(&str, &str)> = self.files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
        let bytes = serde_json::to_vec(&(HASH_SCHEME, contents)).expect("file digests serialize to JSON");
        hex(&Sha256::digest(&bytes))
    }
}

/// The parts of a [`ContainerTemplate`]: the one list that field digests, change descriptions
/// and memectl's offline and online diffs all go through. Each consumer matches on every
/// variant (no wildcard), so a new field does not compile until each says what it does with it,
/// and a test checks that every serialized field of the template is listed here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TemplateField {
    /// `stack`: identity (part of every name), not a digest.
    Stack,
    /// `service`: identity (part of every name), not a digest.
    Service,
    /// `image`.
    Image,
    /// `command`.
    Command,
    /// `args`.
    Args,
    /// `env`, per variable: `env.<NAME>`.
    Env,
    /// `ports`.
    Ports,
    /// `volumeMounts`.
    VolumeMounts,
    /// `networks`.
    Networks,
    /// `healthCheck`.
    HealthCheck,
    /// `resources`.
    Resources,
    /// `user`.
    User,
    /// `init`.
    Init,
    /// `readOnlyRootFilesystem`.
    ReadOnlyRootFilesystem,
    /// `stopGracePeriodMs`, shown and recorded as `stopGracePeriod`.
    StopGracePeriod,
    /// `files`, per path in the container: `file.<path>` (the key is singular, as recorded).
    Files,
    /// `labels` (the container labels the manifest sets).
    Labels,
}

impl TemplateField {
    /// Every field, in the order diffs list them.
    pub const ALL: [Self; 17] = [
        Self::Stack,
        Self::Service,
        Self::Image,
        Self::Command,
        Self::Args,
        Self::Env,
        Self::Ports,
        Self::VolumeMounts,
        Self::Networks,
        Self::HealthCheck,
        Self::Resources,
        Self::User,
        Self::Init,
        Self::ReadOnlyRootFilesystem,
        Self::StopGracePeriod,
        Self::Files,
        Self::Labels,
    ];

    /// The field's name in the serialized template (the spec hash input).
    #[must_use]
    pub const fn serialized_name(self) -> &'static str {
        match self {
            Self::StopGracePeriod => "stopGracePeriodMs",
            Self::Files => "files",
            other => other.key(),
        }
    }

    /// The key of the field in field digests and diffs (recorded on containers in the
    /// `pro.memeit.fields` label, so these names must stay stable). Per-item fields use it as
    /// a prefix: `env.LOG_LEVEL`, `file./etc/app.ini`.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            Self::Stack => "stack",
            Self::Service => "service",
            Self::Image => "image",
            Self::Command => "command",
            Self::Args => "args",
            Self::Env => "env",
            Self::Ports => "ports",
            Self::VolumeMounts => "volumeMounts",
            Self::Networks => "networks",
            Self::HealthCheck => "healthCheck",
            Self::Resources => "resources",
            Self::User => "user",
            Self::Init => "init",
            Self::ReadOnlyRootFilesystem => "readOnlyRootFilesystem",
            Self::StopGracePeriod => "stopGracePeriod",
            Self::Files => "file",
            Self::Labels => "labels",
        }
    }
}

impl ContainerTemplate {
    /// A short digest per part of the template (`image`, `env.LOG_LEVEL`, `file./etc/x`,
    /// `ports`, ...), recorded on containers so that a replacement can say what changed
    /// (`env LOG_LEVEL changed`) without keeping old manifests. Secret values appear only as
    /// digests of digests.
    #[must_use]
    pub fn field_digests(&self, secret_digests: &BTreeMap<SecretKeySelector, String>) -> BTreeMap<String, String> {
        fn short<T: Serialize + ?Sized>(value: &T) -> String {
            let bytes = serde_json::to_vec(value).expect("template parts serialize to JSON");
            hex(&Sha256::digest(&bytes)[..4])
        }
        let mut out = BTreeMap::new();
        for field in TemplateField::ALL {
            let key = field.key();
            let digest = match field {
                // Identity: a container of another stack or service is another container.
                TemplateField::Stack | TemplateField::Service => continue,
                // The reference itself, so a replacement can say `image a -> b`.
                TemplateField::Image => self.image.clone(),
                TemplateField::Env => {
                    for (name, value) in &self.env {
                        let digest = match value {
                            EnvValue::Literal(v) => short(v),
                            EnvValue::Secret(r) => short(&(r, secret_digests.get(r))),
                        };
                        out.insert(format!("{key}.{name}"), digest);
                    }
                    continue;
                }
                TemplateField::Files => {
                    for f in &self.files {
                        out.insert(format!("{key}.{}", f.path), short(&(f.mode, &f.sha256)));
                    }
                    continue;
                }
                TemplateField::Command => short(&self.command),
                TemplateField::Args => short(&self.args),
                TemplateField::Ports => short(&self.ports),
                TemplateField::VolumeMounts => short(&self.volume_mounts),
                TemplateField::Networks => short(&self.networks),
                TemplateField::HealthCheck => short(&self.health_check),
                TemplateField::Resources => short(&self.resources),
                TemplateField::User => short(&self.user),
                TemplateField::Init => short(&self.init),
                TemplateField::ReadOnlyRootFilesystem => short(&self.read_only_root_filesystem),
                TemplateField::StopGracePeriod => short(&self.stop_grace_period_ms),
                TemplateField::Labels => short(&self.labels),
            };
            out.insert(key.to_owned(), digest);
        }
        out
    }
}

/// What changed between two sets of field digests, in a few words:
/// `image a -> b, env LOG_LEVEL changed, file /etc/x changed`.
#[must_use]
pub fn describe_change(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    let image = TemplateField::Image.key();
    let mut parts = Vec::new();
    if old.get(image) != new.get(image) {
        parts.push(format!(
            "image {} -> {}",
            old.get(image).map_or("?", String::as_str),
            new.get(image).map_or("?", String::as_str)
        ));
    }
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).filter(|k| *k != image).collect();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        // Per-item keys (`env.NAME`, `file./path`) read `env NAME`; the others by their key.
        let what = match key.split_once('.') {
            Some((kind, name)) => format!("{kind} {name}"),
            None => key.clone(),
        };
        let verb = match (a, b) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        parts.push(format!("{what} {verb}"));
    }
    if parts.is_empty() { "spec changed".to_owned() } else { parts.join(", ") }
}

/// The digest recorded for a secret value: SHA-256, hex.
#[must_use]
pub fn secret_digest(value: &[u8]) -> String {
    hex(&Sha256::digest(value))
}

/// Lowercase hex of bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::ManifestTree;

    fn template() -> ContainerTemplate {
        let tree = ManifestTree::new("t")
            .with_file("stack.yaml", "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata: {name: s}\n")
            .with_file(
                "web.yaml",
                "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  image: app:1\n  \
                 env: [{name: A, value: x}]\n  files: [{path: /etc/a.conf, source: a.conf}]\n",
            )
            .with_file("a.conf", "a\n");
        let set = crate::load(&tree).unwrap_or_else(|d| panic!("{d}"));
        ContainerTemplate::all(&set).remove("web").unwrap()
    }

    /// A field added to the template without a place in [`TemplateField`] would be hashed but
    /// missing from digests and diffs: this fails until it is listed.
    #[test]
    fn every_serialized_field_should_be_a_template_field() {
        let json = serde_json::to_value(template()).unwrap();
        let serialized: BTreeSet<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let listed: BTreeSet<&str> = TemplateField::ALL.iter().map(|f| f.serialized_name()).collect();
        assert_eq!(serialized, listed);
        assert_eq!(listed.len(), TemplateField::ALL.len(), "a field is listed twice");
        let keys: BTreeSet<&str> = TemplateField::ALL.iter().map(|f| f.key()).collect();
        assert_eq!(keys.len(), TemplateField::ALL.len(), "two fields share a digest key");
    }

    #[test]
    fn digests_should_be_keyed_by_the_field_keys() {
        let digests = template().field_digests(&BTreeMap::new());
        let keys: Vec<&str> = digests.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "args",
                "command",
                "env.A",
                "file./etc/a.conf",
                "healthCheck",
                "image",
                "init",
                "labels",
                "networks",
                "ports",
                "readOnlyRootFilesystem",
                "resources",
                "stopGracePeriod",
                "user",
                "volumeMounts"
            ]
        );
        let mut changed = digests.clone();
        changed.insert("env.A".into(), "0".into());
        changed.insert("file./etc/a.conf".into(), "0".into());
        changed.insert("image".into(), "app:2".into());
        changed.insert("stopGracePeriod".into(), "0".into());
        assert_eq!(
            describe_change(&digests, &changed),
            "image app:1 -> app:2, env A changed, file /etc/a.conf changed, stopGracePeriod changed"
        );
    }
}
