//! `memectl diff [REV] [--secrets-dir DIR]` and `memectl diff --offline A..B` (or `A B`).
//!
//! - Online: the manifests at REV (default `HEAD`) against the containers of the stack that
//!   run on the Docker engine, found by the controller's labels: services missing or extra,
//!   replicas, image references, and every other field by comparing the desired field digests
//!   with the `pro.memeit.fields` label the controller writes on each container. Secret env
//!   vars are compared only when `--secrets-dir` resolves them; values are never printed.
//! - Offline: the manifests at two revisions, per service and per field, without Docker.
//!
//! Exit 0 when equal, 1 when different, 2 when the comparison could not run, as `kubectl diff`.
//! Changes read `from -> to`: offline `A -> B`, online `running -> desired`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use meme_api::template::{EnvValue, secret_digest};
use meme_api::{ContainerTemplate, ManifestSet};
use serde::Serialize;

use crate::changes::{self, Desired, Report, Running, ServiceChange, ServiceDiff};
use crate::cli::{Global, Outcome, Output};
use crate::color::Paint;
use crate::output;
use crate::repo::{self, Repo, RepoArgs};

// The labels the controller puts on what it owns.
use meme_api::labels;

/// Flags of `diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Online, memectl reads the Docker engine directly (DOCKER_HOST, else the local socket) and
compares what each container records about the spec it was created from: it needs no
controller. Lines read `running -> desired` online and `A -> B` offline; secret values are
never shown (***), offline secrets show as their secretKeyRef.
Exit codes: 0 no differences, 1 differences, 2 the comparison could not run.")]
pub struct Args {
    /// Online: the revision whose manifests are desired (default: HEAD). Offline: `A..B`, or
    /// `A B` (`A` alone means `A..HEAD`).
    #[arg(value_name = "REV", num_args = 0..=2)]
    revs: Vec<String>,
    /// Compare the manifests at two revisions, without Docker.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    repo: RepoArgs,
    /// Where secretKeyRefs are read (`<DIR>/<name>/<key>`, as the controller's
    /// --secrets-dir), to compare secret env vars; without it they are not compared.
    #[arg(long, value_name = "DIR", conflicts_with = "offline")]
    secrets_dir: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Output,
}

/// The `-o json` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    /// `online` or `offline`.
    mode: &'static str,
    /// The manifests folder.
    path: &'a str,
    /// The stack (of the newer side).
    stack: &'a str,
    /// Offline: revision A; online: `running`.
    from: &'a str,
    /// Offline: revision B; online: the desired revision.
    to: &'a str,
    /// Whether nothing differs.
    equal: bool,
    #[serde(flatten)]
    report: &'a Report,
}

/// Runs `diff`.
///
/// # Errors
/// Unknown revisions, invalid manifests, an unreachable Docker engine (exit 2).
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let repo = Repo::open(args.repo.repo.as_deref()).await?;
    let status = match args.repo.path {
        Some(_) => None,
        None => repo::controller_status(global).await,
    };
    let path = repo.manifests_path(args.repo.path.as_deref(), status.as_ref())?;
    if args.offline {
        let (a, b) = offline_revisions(&args.revs)?;
        let (a_id, b_id) = (repo.resolve(&a).await?, repo.resolve(&b).await?);
        let old = load_at(&repo, &a_id, &a, &path).await?;
        let new = load_at(&repo, &b_id, &b, &path).await?;
        let report = changes::compare_sets(&old, &new);
        let stack = &new.stack.object.metadata.name;
        return emit(
            args.output,
            &report,
            Document {
                mode: "offline",
                path: &path,
                stack,
                from: &a_id,
                to: &b_id,
                equal: report.is_equal(),
                report: &report,
            },
        );
    }
    anyhow::ensure!(
        args.revs.len() <= 1,
        "diff compares one revision with what runs; compare two revisions with --offline A..B"
    );
    let rev = args.revs.first().map_or("HEAD", String::as_str);
    let id = repo.resolve(rev).await?;
    let set = load_at(&repo, &id, rev, &path).await?;
    let stack = set.stack.object.metadata.name.clone();
    let docker = Docker::connect_with_local_defaults()
        .context("cannot connect to the Docker engine")?
        .negotiate_version()
        .await
        .context("cannot reach the Docker engine")?;
    let running = running_containers(&docker, &stack).await?;
    let report = compare_online(&set, running, args.secrets_dir.as_deref());
    emit(
        args.output,
        &report,
        Document {
            mode: "online",
            path: &path,
            stack: &stack,
            from: "running",
            to: &id,
            equal: report.is_equal(),
            report: &report,
        },
    )
}

/// `A..B`, `A..` (to HEAD), `..B` (from HEAD), `A B`, or `A` (to HEAD).
fn offline_revisions(revs: &[String]) -> anyhow::Result<(String, String)> {
    let or_head = |s: &str| if s.is_empty() { "HEAD".to_owned() } else { s.to_owned() };
    match revs {
        [range] if range.contains("...") => {
            anyhow::bail!("{range:?}: symmetric ranges (A...B) are not supported; use A..B")
        }
        [range] => Ok(match range.split_once("..") {
            Some((a, b)) => (or_head(a), or_head(b)),
            None => (range.clone(), "HEAD".to_owned()),
        }),
        [a, b] => Ok((a.clone(), b.clone())),
        _ => anyhow::bail!("diff --offline needs the revisions to compare: A..B, or A B"),
    }
}

/// The validated manifests at a revision; missing or invalid manifests are errors (exit 2),
/// with the diagnostics printed.
async fn load_at(repo: &Repo, id: &str, rev: &str, path: &str) -> anyhow::Result<ManifestSet> {
    let shown = repo::pathspec(path);
    let Some(tree) = repo.tree_at(id, path).await? else {
        anyhow::bail!("{shown} does not exist at {rev} ({}); is --path right?", repo::short(id));
    };
    meme_api::load(&tree).map_err(|diagnostics| {
        eprint!("{diagnostics}");
        let n = diagnostics.error_count();
        anyhow::anyhow!(
            "the manifests of {shown} at {rev} ({}) are invalid ({n} error{})",
            repo::short(id),
            if n == 1 { "" } else { "s" }
        )
    })
}

/// Prints the report (notes on stderr) and maps it to the exit code.
fn emit(format: Output, report: &Report, document: Document<'_>) -> anyhow::Result<Outcome> {
    match format {
        Output::Json => {
            let text = output::serialize(&document, output::Format::Json)?.unwrap_or_default();
            output::print(&text)?;
        }
        Output::Table if report.is_equal() => {
            // Silence would look like a crash or a filter that matched nothing: say it.
            let shown = repo::pathspec(document.path);
            output::print(&if document.mode == "online" {
                format!(
                    "No differences: the running containers of {} match {shown} at {}.\n",
                    document.stack,
                    repo::short(document.to)
                )
            } else {
                format!(
                    "No differences: the services of {shown} are the same at {} and {}.\n",
                    repo::short(document.from),
                    repo::short(document.to)
                )
            })?;
            for note in report.notes() {
                eprintln!("note: {note}");
            }
        }
        Output::Table => {
            output::print(&report.render(document.stack, Paint::for_stdout()))?;
            for note in report.notes() {
                eprintln!("note: {note}");
            }
        }
    }
    Ok(if report.is_equal() { Outcome::Success } else { Outcome::CheckFailed })
}

/// The running containers of the stack, by service, each inspected for the image reference
/// and environment it was created with.
async fn running_containers(docker: &Docker, stack: &str) -> anyhow::Result<BTreeMap<String, Vec<Running>>> {
    let filters = HashMap::from([(
        "label",
        vec![format!("{}={}", labels::MANAGED_BY, labels::MANAGER), format!("{}={stack}", labels::STACK)],
    )]);
    let options = ListContainersOptionsBuilder::new().all(false).filters(&filters).build();
    let summaries = docker.list_containers(Some(options)).await.context("cannot list containers")?;
    let mut by_service: BTreeMap<String, Vec<Running>> = BTreeMap::new();
    for summary in summaries {
        let Some(id) = summary.id else { continue };
        // A container can go away between the list and the inspect: then it is not running.
        let Ok(inspect) = docker.inspect_container(&id, None).await else { continue };
        let config = inspect.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let Some(service) = labels.get(labels::SERVICE).cloned() else { continue };
        let env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let name = inspect.name.map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
        by_service.entry(service).or_default().push(Running {
            name,
            image: config.image.unwrap_or_default(),
            spec_hash: labels.get(labels::SPEC_HASH).cloned(),
            fields: labels.get(labels::FIELDS).and_then(|f| serde_json::from_str(f).ok()),
            env,
        });
    }
    for containers in by_service.values_mut() {
        containers.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(by_service)
}

/// The desired set against the running containers, service by service.
fn compare_online(
    set: &ManifestSet,
    mut running: BTreeMap<String, Vec<Running>>,
    secrets_dir: Option<&Path>,
) -> Report {
    let templates = ContainerTemplate::all(set);
    let mut services = Vec::new();
    for (name, template) in &templates {
        let replicas = set.deployment(name).map_or(1, |d| d.spec.replicas);
        let containers = running.remove(name).unwrap_or_default();
        if containers.is_empty() {
            if replicas > 0 {
                services.push(ServiceDiff {
                    name: name.clone(),
                    change: ServiceChange::Added,
                    detail: Some("not running".to_owned()),
                    changes: Vec::new(),
                    notes: Vec::new(),
                });
            }
            continue;
        }
        let (digests, unresolved) = secret_digests(template, secrets_dir);
        let desired = Desired {
            template,
            replicas,
            fields: template.field_digests(&digests),
            spec_hash: unresolved.is_empty().then(|| template.spec_hash(&digests)),
            unresolved,
        };
        let (changes, notes) = changes::compare_running(&desired, &containers);
        if !changes.is_empty() || !notes.is_empty() {
            services.push(ServiceDiff {
                name: name.clone(),
                change: ServiceChange::Changed,
                detail: None,
                changes,
                notes,
            });
        }
    }
    for name in running.into_keys() {
        services.push(ServiceDiff {
            name,
            change: ServiceChange::Removed,
            detail: Some("running, not in manifests".to_owned()),
            changes: Vec::new(),
            notes: Vec::new(),
        });
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    Report { stack_changes: Vec::new(), services }
}

/// The digests of the secrets a template reads, as the controller computes them from
/// `<dir>/<name>/<key>`, and the env vars whose secret could not be read (with why).
fn secret_digests(
    template: &ContainerTemplate,
    dir: Option<&Path>,
) -> (BTreeMap<meme_api::v1alpha1::SecretKeySelector, String>, BTreeMap<String, String>) {
    let mut digests = BTreeMap::new();
    let mut unresolved = BTreeMap::new();
    for (name, value) in &template.env {
        let EnvValue::Secret(selector) = value else { continue };
        let Some(dir) = dir else {
            unresolved.insert(name.clone(), "pass --secrets-dir DIR to compare secrets".to_owned());
            continue;
        };
        let file = dir.join(&selector.name).join(&selector.key);
        match std::fs::read(&file) {
            Ok(bytes) => {
                digests.insert(selector.clone(), secret_digest(&bytes));
            }
            Err(e) => {
                unresolved.insert(name.clone(), format!("cannot read {}: {e}", file.display()));
            }
        }
    }
    (digests, unresolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revs(args: &[&str]) -> anyhow::Result<(String, String)> {
        offline_revisions(&args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn offline_revisions_should_accept_ranges_and_pairs() {
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(revs(&["a..b"]).unwrap(), pair("a", "b"));
        assert_eq!(revs(&["a.."]).unwrap(), pair("a", "HEAD"));
        assert_eq!(revs(&["..b"]).unwrap(), pair("HEAD", "b"));
        assert_eq!(revs(&["a", "b"]).unwrap(), pair("a", "b"));
        assert_eq!(revs(&["HEAD~1"]).unwrap(), pair("HEAD~1", "HEAD"));
        assert!(revs(&[]).is_err());
        assert!(revs(&["a...b"]).is_err());
    }
}
