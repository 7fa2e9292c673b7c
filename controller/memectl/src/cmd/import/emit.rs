//! The import's output: the manifests laid out as YAML (flow style where kubectl users expect
//! it), written without overwriting, and the summary on stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use meme_api::ManifestTree;
use meme_api::units::Duration;
use meme_api::v1alpha1::{
    API_VERSION, EnvVar, ImagePullPolicy, ObjectMeta, Protocol, ResourceLimits, ResourceReservations, Stack, StackSpec,
    Strategy, StrategyType,
};
use serde::Serialize;
use serde_saphyr::{FlowMap, FlowSeq};

use super::importer::{Copied, Finding, Import, Level, Service, VariableSources};
use crate::cli::CheckError;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeploymentOut {
    pub(super) api_version: &'static str,
    pub(super) kind: &'static str,
    pub(super) metadata: ObjectMeta,
    pub(super) spec: SpecOut,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpecOut {
    pub(super) image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) command: Option<FlowSeq<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) args: Option<FlowSeq<Vec<String>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) env: Vec<FlowMap<EnvVar>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) ports: Vec<FlowMap<PortOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) networks: Option<FlowSeq<Vec<String>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) volume_mounts: Vec<FlowMap<MountOut>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) health_check: Option<HealthOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) depends_on: Option<FlowSeq<Vec<String>>>,
    pub(super) strategy: FlowMap<Strategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) resources: Option<ResourcesOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) init: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) read_only_root_filesystem: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) image_pull_policy: Option<ImagePullPolicy>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) files: Vec<FlowMap<FileOut>>,
}

#[derive(Serialize)]
pub(super) struct FileOut {
    pub(super) path: String,
    pub(super) source: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PortOut {
    pub(super) container_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) host_port: Option<u16>,
    #[serde(rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub(super) host_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) protocol: Option<Protocol>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MountOut {
    pub(super) name: String,
    pub(super) mount_path: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) read_only: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HealthOut {
    pub(super) exec: FlowSeq<Vec<String>>,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) retries: u32,
    pub(super) start_period: Duration,
}

#[derive(Serialize)]
pub(super) struct ResourcesOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) limits: Option<FlowMap<ResourceLimits>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reservations: Option<FlowMap<ResourceReservations>>,
}

pub(super) fn deployment_out(service: &Service) -> DeploymentOut {
    let s = &service.spec;
    let resources =
        (s.limits != ResourceLimits::default() || s.reservations != ResourceReservations::default()).then(|| {
            ResourcesOut {
                limits: (s.limits != ResourceLimits::default()).then(|| FlowMap(s.limits.clone())),
                reservations: (s.reservations != ResourceReservations::default())
                    .then(|| FlowMap(s.reservations.clone())),
            }
        });
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| FlowSeq(v.clone()));
    DeploymentOut {
        api_version: API_VERSION,
        kind: "Deployment",
        metadata: ObjectMeta { name: service.name.clone(), ..ObjectMeta::default() },
        spec: SpecOut {
            image: s.image.clone(),
            replicas: s.replicas.filter(|r| *r != 1),
            command: s.command.clone().map(FlowSeq),
            args: s.args.clone().map(FlowSeq),
            env: s.env.iter().cloned().map(FlowMap).collect(),
            ports: s
                .ports
                .iter()
                .map(|p| {
                    FlowMap(PortOut {
                        container_port: p.container,
                        host_port: p.host,
                        host_ip: p.host_ip.clone(),
                        protocol: p.udp.then_some(Protocol::Udp),
                    })
                })
                .collect(),
            networks: non_empty(&s.networks),
            volume_mounts: s
                .volume_mounts
                .iter()
                .map(|m| {
                    FlowMap(MountOut { name: m.volume.clone(), mount_path: m.path.clone(), read_only: m.read_only })
                })
                .collect(),
            health_check: s.health_check.as_ref().map(|h| HealthOut {
                exec: FlowSeq(h.exec.clone()),
                interval: h.interval,
                timeout: h.timeout,
                retries: h.retries,
                start_period: h.start_period,
            }),
            depends_on: non_empty(&s.depends_on),
            strategy: FlowMap(Strategy {
                kind: if s.recreate { StrategyType::Recreate } else { StrategyType::RollingUpdate },
            }),
            resources,
            user: s.user.clone(),
            init: s.init,
            read_only_root_filesystem: s.read_only,
            stop_grace_period: s.stop_grace_period,
            image_pull_policy: s.image_pull_policy,
            labels: s.labels.clone(),
            files: s
                .files
                .iter()
                .map(|(path, source)| FlowMap(FileOut { path: path.clone(), source: source.clone() }))
                .collect(),
        },
    }
}

/// A comment line: no line breaks or control characters can leak out of it.
pub(super) fn comment(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("# {clean}\n")
}

/// Where the generated JSON Schemas are, relative to `out_dir`, for the editors' `$schema`
/// comment: the `crds/` folder of the nearest ancestor that has one (this repository's), or
/// `None`: then the comment is left out rather than pointing at nothing.
pub(super) fn schema_dir(out_dir: &Path) -> Option<String> {
    let dir = std::path::absolute(out_dir).ok()?;
    dir.ancestors().enumerate().find_map(|(up, ancestor)| {
        ancestor.join("crds/deployment.schema.json").is_file().then(|| format!("{}crds", "../".repeat(up)))
    })
}

/// The files of the import, in order: `stack.yaml`, then one per service.
pub(super) fn render(import: &Import, shown: &str, schema: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let options = || serde_saphyr::ser_options! { prefer_block_scalars: false };
    let stack = Stack {
        api_version: API_VERSION.to_owned(),
        kind: "Stack".to_owned(),
        metadata: ObjectMeta { name: import.stack.clone(), ..ObjectMeta::default() },
        spec: StackSpec { networks: import.networks.clone(), volumes: import.volumes.clone(), env: Vec::new() },
    };
    let header = |kind: &str| {
        schema.map_or_else(String::new, |dir| format!("# yaml-language-server: $schema={dir}/{kind}.schema.json\n"))
    };
    let mut text = header("stack");
    text.push_str(&comment(&format!("Imported from {shown} by `memectl import compose`.")));
    for line in variable_lines(&import.variables) {
        text.push_str(&comment(&line));
    }
    text.push_str(&serde_saphyr::to_string_with_options(&stack, options()).context("cannot serialize the Stack")?);
    let mut files = vec![("stack.yaml".to_owned(), text)];
    for service in &import.services {
        let mut text = header("deployment");
        text.push_str(&comment(&format!(
            "Imported from {shown} (service {:?}) by `memectl import compose`.",
            service.compose_name
        )));
        if !service.secrets.is_empty() {
            text.push_str("# Secrets are not in git: put each value in a file on the controller's host:\n");
            for s in &service.secrets {
                text.push_str(&comment(&format!("  <--secrets-dir>/{}/{}   ({})", s.service, s.key, s.variable)));
            }
        }
        let body = serde_saphyr::to_string_with_options(&deployment_out(service), options())
            .with_context(|| format!("cannot serialize the Deployment {}", service.name))?;
        text.push_str(&body);
        files.push((service.file.clone(), text));
    }
    Ok(files)
}

/// Where the `${VAR}`s came from, by name: the output depends on them, and on the `.env` that
/// happened to be next to the compose file, and says so.
pub(super) fn variable_lines(variables: &VariableSources) -> Vec<String> {
    let mut by_source: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, source) in &variables.found {
        let source = source.as_ref().map_or_else(|| "the process environment".to_owned(), Clone::clone);
        by_source.entry(source).or_default().push(name);
    }
    let mut lines: Vec<String> = by_source
        .into_iter()
        .map(|(source, names)| format!("${{VAR}} interpolated at import time from {source}: {}", names.join(", ")))
        .collect();
    if !variables.missing.is_empty() {
        let names: Vec<&str> = variables.missing.iter().map(String::as_str).collect();
        lines.push(format!("${{VAR}} set nowhere at import time (empty or their default): {}", names.join(", ")));
    }
    lines
}

/// Writes the manifests and the copied config files into `dir`, refusing (exit 1) to overwrite
/// any unless `force`. Returns the other manifests the folder already held.
pub(super) fn write_files(
    dir: &Path,
    files: &[(String, String)],
    copies: &[Copied],
    force: bool,
) -> anyhow::Result<Vec<String>> {
    let all: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(name, text)| (name.as_str(), text.as_bytes()))
        .chain(copies.iter().map(|c| (c.to.as_str(), c.content.as_slice())))
        .collect();
    let existing: Vec<&str> = all.iter().map(|(name, _)| *name).filter(|name| dir.join(name).exists()).collect();
    if !existing.is_empty() && !force {
        let (what, it) = if existing.len() == 1 { ("a file", "it") } else { ("files", "them") };
        return Err(CheckError(format!(
            "refusing to overwrite {what} in {}: {}; use --force to replace {it}",
            dir.display(),
            existing.join(", ")
        ))
        .into());
    }
    for (name, content) in all {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(&path).with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut file, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ours: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let mut others: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| ManifestTree::is_manifest_path(n) && !ours.contains(n.as_str()) && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    Ok(others)
}

/// The summary on stderr: what was imported, the config files copied, the secrets to create,
/// where the variables came from, the count of warnings and what to do next.
pub(super) fn summary(import: &Import, findings: &[Finding], shown: &str, dir: &Path, written: Option<&[String]>) {
    let names: Vec<&str> = import.services.iter().map(|s| s.name.as_str()).collect();
    let plural = if names.len() == 1 { "" } else { "s" };
    eprintln!();
    eprintln!(
        "imported {} service{plural} from {shown} into stack {:?}: {}",
        names.len(),
        import.stack,
        names.join(", ")
    );
    let shown_dir = dir.display().to_string();
    if let Some(others) = written {
        eprintln!(
            "wrote {shown_dir}/: stack.yaml, {}",
            import.services.iter().map(|s| s.file.as_str()).collect::<Vec<_>>().join(", ")
        );
        if !import.copies.is_empty() {
            let copies: Vec<String> = import.copies.iter().map(|c| format!("{} -> {}", c.from, c.to)).collect();
            eprintln!("copied config files (listed under `files`): {}", copies.join(", "));
        }
        if !others.is_empty() {
            eprintln!(
                "warning: {shown_dir} also holds {}, not from this import: the controller loads every *.yaml of the \
                 folder; remove what is stale",
                others.join(", ")
            );
        }
    } else if !import.copies.is_empty() {
        eprintln!("config files the manifests list under `files` (not copied with --stdout): copy each yourself:");
        for c in &import.copies {
            eprintln!("  {} -> {shown_dir}/{}", c.from, c.to);
        }
    }
    if !import.secrets.is_empty() {
        eprintln!("secrets (values are never imported): create each file on the controller's host:");
        let width = import.secrets.iter().map(|s| s.key.len()).max().unwrap_or(0) + import.stack.len() + 1;
        for s in &import.secrets {
            let path = format!("{}/{}", import.stack, s.key);
            eprintln!("  <--secrets-dir>/{path:<width$}   {} (read by {})", s.holds, s.users.join(", "));
        }
    }
    for line in variable_lines(&import.variables) {
        eprintln!("{line}");
    }
    if !import.variables.found.is_empty() || !import.variables.missing.is_empty() {
        eprintln!(
            "  (the manifests hold these values: another .env or environment gives other manifests; --env-file \
             FILE names the file explicitly)"
        );
    }
    let warnings = findings.iter().filter(|f| f.level == Level::Warning).count();
    let notes = findings.len() - warnings;
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    eprintln!(
        "{}, {} (above: what was not imported, or imported differently)",
        count(warnings, "warning"),
        count(notes, "note")
    );
    eprintln!("next steps:");
    if written.is_none() {
        eprintln!("  save the stream as manifests in a folder (e.g. {shown_dir}/), then:");
    }
    eprintln!("  1. review the warnings, and the manifests (`files` for config files, secrets above)");
    eprintln!("  2. memectl validate {shown_dir}");
    eprintln!("  3. git add {shown_dir} && git commit -m \"Import stack {} from {shown}\"", import.stack);
}
