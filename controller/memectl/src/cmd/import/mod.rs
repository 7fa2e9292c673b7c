//! `memectl import compose FILE [--stack NAME] [-o DIR | --stdout] [--force] [--env-file FILE]...`:
//! turns a docker-compose file into manifests: one `Stack` (its networks and named volumes) and
//! one `Deployment` per service, written as `stack.yaml` and `<service>.yaml` in
//! `manifests/<stack>` (or printed as one multi-document stream).
//!
//! The import is lenient and loud: the compose file is read into a generic, order-preserving
//! `Node` tree, every key the manifests can express is mapped, and every key they cannot is
//! reported as a warning at its `file:line:col` (never dropped silently). The output behaves like
//! the compose stack: a bind-mounted config file is copied next to the manifests as `files`; a
//! service writing a named volume is `Recreate` (one writer, as compose runs it).
//!
//! `${VAR}` interpolation follows compose: the process environment first, then `.env` next to
//! the file (or the `--env-file`s); which variables came from where is said, and recorded in the
//! Stack's comments. Secrets never reach the output: a variable whose name looks secret, whose
//! value interpolates such a variable or holds a credential (a URL's password, a DSN's
//! `password=`) becomes a `secretKeyRef` to `<--secrets-dir>/<stack>/<key>` (one key per value,
//! shared by every service using it); a credential written anywhere else stops the import.
//!
//! The generated manifests are then loaded with [`meme_api::load`], exactly as the controller
//! would load them: they are written only when they validate (exit 0), else the diagnostics are
//! printed and nothing is written (exit 1) unless `--force`.

mod convert;
mod emit;
mod importer;
mod interpolate;
mod model;
mod mounts;
mod node;
mod ports;
mod secrets;
mod service_keys;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use meme_api::ManifestTree;
use meme_api::units::Duration;

use crate::cli::{CheckError, Outcome};
use crate::output;
use emit::{render, schema_dir, summary, write_files};
use importer::{Importer, Level};
use interpolate::Environment;
use node::parse_compose;

/// The prefix of the container labels the controller owns.
pub(super) const RESERVED_LABEL_PREFIX: &str = "pro.memeit.";

/// Docker's health check defaults, used where the compose file leaves a field out, so the
/// imported check times exactly like the one compose ran.
pub(super) const DOCKER_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
pub(super) const DOCKER_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const DOCKER_HEALTH_RETRIES: u32 = 3;

/// Flags of `import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

/// What to import from.
#[derive(Debug, clap::Subcommand)]
enum Source {
    /// Convert a docker-compose file into manifests: a Stack, and one Deployment per service.
    Compose(ComposeArgs),
}

/// Flags of `import compose`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Every compose key the manifests cannot express is reported as a warning with its file:line:col.
Environment variables whose name looks secret (*PASSWORD*, *SECRET*, *TOKEN*, *_KEY, *ACCESS_KEY*),
or whose value holds a credential (postgres://user:password@db, password=...), become
secretKeyRefs to one secret of the stack, and their values are never written or printed: put
each value in the file the summary names, on the controller's host. A credential in a command or
a label stops the import (exit 1). Bind-mounted config files next to the compose file are copied
into the manifests folder under files/ and listed under `files`. The result is validated like
`memectl validate` does: exit 0 when it is valid, 1 when it is not (nothing is written unless
--force) or when a file exists (unless --force), 2 when the compose file cannot be read.")]
pub struct ComposeArgs {
    /// The compose file (docker-compose.yml, compose.yaml, ...).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The stack's name (default: the compose file's `name:`, else its directory's name).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// The folder to write the manifests into (default: manifests/<stack>).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR", conflicts_with = "stdout")]
    output_dir: Option<PathBuf>,
    /// Print the manifests as one multi-document YAML stream instead of writing files.
    #[arg(long)]
    stdout: bool,
    /// Overwrite existing files, and write the manifests even when they do not validate.
    #[arg(long)]
    force: bool,
    /// Variables for ${VAR} interpolation, read instead of the `.env` next to the compose file
    /// (repeatable, later files win; the process environment wins over all, as in compose).
    #[arg(long, value_name = "FILE")]
    env_file: Vec<PathBuf>,
}

/// Runs `import`.
///
/// # Errors
/// The compose file cannot be read or parsed (exit 2), or existing files would be overwritten
/// (exit 1).
pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    match &args.source {
        Source::Compose(args) => compose(args),
    }
}

fn compose(args: &ComposeArgs) -> anyhow::Result<Outcome> {
    let shown = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {shown}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("{shown}: not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to())
    })?;
    let document = parse_compose(&text, &shown)?;
    let env = Environment::load(&args.file, &args.env_file)?;
    let dir_name = std::path::absolute(&args.file)
        .ok()
        .and_then(|p| p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let compose_dir = args.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut importer = Importer::new(&shown, &document.index, &env, &compose_dir);
    let import = importer.import(&document.root, args.stack.as_deref(), &dir_name)?;
    let mut findings = importer.findings;
    findings.sort_by_key(|f| (f.pos.line, f.pos.column));
    if env.implicit && !env.files.is_empty() {
        eprintln!(
            "note: read {} for ${{VAR}} interpolation, as compose does: the manifests depend on it (see the summary); \
             --env-file FILE names the file explicitly",
            env.files.join(", ")
        );
    }
    for finding in &findings {
        eprintln!("{}", finding.display(&shown));
    }
    let stops = findings.iter().filter(|f| f.level == Level::Error).count();
    if stops > 0 {
        return Err(CheckError(format!(
            "{shown}: {stops} credential{} written in clear outside environment variables (above): nothing written; \
             move {} into environment variables, which become secrets",
            if stops == 1 { "" } else { "s" },
            if stops == 1 { "it" } else { "them" }
        ))
        .into());
    }

    let out_dir = match &args.output_dir {
        Some(dir) => dir.clone(),
        None => Path::new(crate::repo::DEFAULT_PATH).join(&import.stack),
    };
    let root = if args.stdout { "(stdout)".to_owned() } else { out_dir.display().to_string() };
    let files = render(&import, &shown, schema_dir(&out_dir).as_deref())?;
    let mut tree = ManifestTree::new(root.clone());
    for (name, content) in &files {
        tree.files.insert(name.clone(), content.clone().into_bytes().into());
    }
    for copied in &import.copies {
        tree.files.insert(copied.to.clone(), copied.content.clone().into());
    }

    let valid = match meme_api::load(&tree) {
        Ok(set) => {
            eprint!("{}", set.warnings);
            true
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            let n = diagnostics.error_count();
            let errors = if n == 1 { "1 error".to_owned() } else { format!("{n} errors") };
            let (written, write) = if args.stdout { ("printed", "print") } else { ("written", "write") };
            if args.force {
                eprintln!("{root}: the generated manifests do not validate ({errors}); {written} anyway (--force)");
            } else {
                eprintln!(
                    "{root}: the generated manifests do not validate ({errors}): nothing {written}; fix the compose \
                     file, or re-run with --force to {write} them and fix them by hand"
                );
                return Ok(Outcome::CheckFailed);
            }
            false
        }
    };

    let written = if args.stdout {
        let stream = files.iter().map(|(_, text)| text.as_str()).collect::<Vec<_>>().join("---\n");
        output::print(&stream)?;
        None
    } else {
        Some(write_files(&out_dir, &files, &import.copies, args.force)?)
    };
    summary(&import, &findings, &shown, &out_dir, written.as_deref());
    Ok(if valid { Outcome::Success } else { Outcome::CheckFailed })
}
