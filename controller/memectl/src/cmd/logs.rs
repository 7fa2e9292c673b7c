//! `memectl logs SERVICE [-f] [--tail N] [--timestamps] [--stack NAME]`: the logs of a
//! service's containers, read from the Docker engine (bollard) by the controller's labels.
//! stdout and stderr are merged onto stdout, as `kubectl logs` does; with several containers
//! each line is prefixed with `[container-name] `, and `-f` follows them all until Ctrl-C.

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::Context as _;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use futures_util::stream::{self, BoxStream, StreamExt as _};

use crate::cli::{CheckError, Global, Outcome};
use crate::render;

// The labels the controller puts on what it owns.
use meme_api::labels;

/// Flags of `logs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads the Docker engine directly (DOCKER_HOST, else the local socket): memectl needs access to
it. -f follows the containers that exist when it starts; run it again after a rollout.")]
pub struct Args {
    /// The service.
    service: String,
    /// Keep printing new output until Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only the last N lines of each container (default: everything).
    #[arg(long, value_name = "N")]
    tail: Option<u64>,
    /// Start each line with the engine's RFC 3339 timestamp.
    #[arg(long)]
    timestamps: bool,
    /// The stack name; given, memectl does not ask the controller (works while it is down).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
}

/// One container whose logs are printed.
struct Target {
    id: String,
    name: String,
}

/// Runs `logs`.
///
/// # Errors
/// The controller (without `--stack`) or the Docker engine cannot be reached, the service has
/// no containers (exit 1), or stdout is closed.
pub async fn run(args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let stack = match &args.stack {
        Some(stack) => stack.clone(),
        None => {
            let status = global.client()?.status().await?;
            render::find_service(&status, &args.service)?;
            status.stack.context("the controller has not read its manifests yet; pass --stack NAME")?
        }
    };
    let docker = Docker::connect_with_local_defaults()
        .context("cannot connect to the Docker engine")?
        .negotiate_version()
        .await
        .context("cannot reach the Docker engine")?;
    let targets = containers(&docker, &stack, &args.service).await?;
    if targets.is_empty() {
        return Err(CheckError(format!("service {:?} of stack {stack} has no containers", args.service)).into());
    }
    let tail = args.tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
    let options = LogsOptionsBuilder::new()
        .follow(args.follow)
        .stdout(true)
        .stderr(true)
        .timestamps(args.timestamps)
        .tail(&tail)
        .build();
    let prefixed = targets.len() > 1;
    let mut printers: Vec<Printer> =
        targets.iter().map(|t| Printer::new(prefixed.then(|| format!("[{}] ", t.name)))).collect();
    let streams = targets.iter().enumerate().map(|(i, t)| -> BoxStream<'_, _> {
        docker.logs(&t.id, Some(options.clone())).map(move |item| (i, item)).boxed()
    });
    // Followed logs interleave as they come; a snapshot prints one container after another.
    let mut merged: BoxStream<'_, _> =
        if args.follow { stream::select_all(streams).boxed() } else { stream::iter(streams).flatten().boxed() };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut current = None;
    loop {
        let (i, item) = tokio::select! {
            _ = &mut ctrl_c => break,
            next = merged.next() => match next {
                Some(next) => next,
                None => break,
            },
        };
        if !args.follow
            && let Some(previous) = current.replace(i)
            && previous != i
        {
            printers[previous].finish()?;
        }
        match item {
            Ok(output) => printers[i].write(&output)?,
            Err(e) => eprintln!("warning: logs of {}: {e}", targets[i].name),
        }
    }
    for printer in &mut printers {
        printer.finish()?;
    }
    Ok(Outcome::Success)
}

/// The service's containers, oldest first (all states: a crashed one's logs say why).
async fn containers(docker: &Docker, stack: &str, service: &str) -> anyhow::Result<Vec<Target>> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("{}={}", labels::MANAGED_BY, labels::MANAGER),
            format!("{}={stack}", labels::STACK),
            format!("{}={service}", labels::SERVICE),
        ],
    )]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let mut found: Vec<ContainerSummary> =
        docker.list_containers(Some(options)).await.context("cannot list containers")?;
    found.sort_by(|a, b| (a.created, &a.names).cmp(&(b.created, &b.names)));
    Ok(found
        .into_iter()
        .filter_map(|c| {
            let id = c.id?;
            let name = c
                .names
                .and_then(|names| names.into_iter().next())
                .map_or_else(|| render::short_id(&id).to_owned(), |n| n.trim_start_matches('/').to_owned());
            Some(Target { id, name })
        })
        .collect())
}

/// Writes one container's output to stdout, prefixing whole lines when there are several.
struct Printer {
    prefix: Option<String>,
    /// The unfinished last line of a prefixed stream.
    partial: Vec<u8>,
}

impl Printer {
    fn new(prefix: Option<String>) -> Self {
        Self { prefix, partial: Vec::new() }
    }

    fn write(&mut self, output: &LogOutput) -> std::io::Result<()> {
        let bytes: &[u8] = output.as_ref();
        let mut stdout = std::io::stdout().lock();
        let Some(prefix) = &self.prefix else {
            stdout.write_all(bytes)?;
            return stdout.flush();
        };
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            stdout.write_all(prefix.as_bytes())?;
            stdout.write_all(&line)?;
        }
        stdout.flush()
    }

    /// Prints what is left of an unfinished line.
    fn finish(&mut self) -> std::io::Result<()> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(self.prefix.as_deref().unwrap_or_default().as_bytes())?;
        stdout.write_all(&self.partial)?;
        stdout.write_all(b"\n")?;
        self.partial.clear();
        stdout.flush()
    }
}
