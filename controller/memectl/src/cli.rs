//! Command-line flags and verbs, and the exit-code policy shared by every command: 0 success,
//! 1 the check failed, 2 the command could not run; a closed stdout pipe is success.

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::client::{self, ApiError, Client};
use crate::cmd;

/// Exit codes, documented in `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success (validate: the manifests are valid; wait: the condition is met; diff: no
     differences)
  1  the check failed or was not met: validate errors, wait timed out or saw Degraded,
     diff found differences, unknown service, a refused mutation (401/403), a refused
     rollback or set image (dirty work tree, operation in progress, invalid result or image)
  2  usage error, or the command could not run (controller unreachable, unreadable files,
     unknown revision, Docker unreachable, git push failed, ...)
A closed stdout pipe (memectl get events | head) counts as success.";

/// kubectl-like control of meme-controller, the GitOps controller for one Docker host.
#[derive(Debug, Parser)]
#[command(name = "memectl", version = crate::VERSION, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every verb accepts.
#[derive(Clone, Debug, clap::Args)]
pub struct Global {
    /// The controller's API; plain http:// only (it listens on loopback by default).
    #[arg(long, global = true, env = "MEMECTL_SERVER", value_name = "URL", default_value = client::DEFAULT_SERVER)]
    pub server: String,
    /// File with the bearer token for reconcile, suspend, resume (else: MEMECTL_TOKEN).
    #[arg(long, global = true, env = "MEMECTL_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl Global {
    /// A client for `--server`.
    ///
    /// # Errors
    /// `--server` is not a plain http URL.
    pub fn client(&self) -> anyhow::Result<Client> {
        Client::new(&self.server)
    }

    /// The bearer token: the content of `--token-file`, else `MEMECTL_TOKEN`, trimmed. `None`
    /// when neither is set (the controller then answers 401, which says what to do).
    ///
    /// # Errors
    /// The token file cannot be read or is empty.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.token_file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read token file {}", path.display()))?;
            let token = text.trim();
            anyhow::ensure!(!token.is_empty(), "token file {} is empty", path.display());
            return Ok(Some(token.to_owned()));
        }
        Ok(std::env::var("MEMECTL_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The stack at a glance: sync status, source and applied revisions, one row per service.
    Status(cmd::status::Args),
    /// List services, containers or events.
    Get(cmd::get::Args),
    /// One service in detail: spec, conditions, containers and its recent events.
    Describe(cmd::describe::Args),
    /// Ask the controller to reconcile every service now (needs the token).
    Reconcile(cmd::reconcile::Args),
    /// Stop reconciling until `resume`: containers keep running as they are (needs the token).
    Suspend(cmd::suspend::Args),
    /// Resume reconciling after `suspend` (needs the token).
    Resume(cmd::resume::Args),
    /// Wait until the stack is synced (optionally at a revision) or every service is ready:
    /// the smoke step a CI job runs after a push.
    Wait(cmd::wait::Args),
    /// Print the logs of a service's containers, through the Docker engine.
    Logs(cmd::logs::Args),
    /// Check a manifests folder offline: every error as file:line:col, exit 1 if any.
    Validate(cmd::validate::Args),
    /// What differs, per service and field: the manifests at REV against the running
    /// containers, or (--offline) the manifests at two revisions. Exit 1 when they differ.
    Diff(cmd::diff::Args),
    /// The commits that changed the manifests, newest first; the applied one marked.
    History(cmd::history::Args),
    /// Roll the manifests back with a new commit: revert the last manifests commit, or restore
    /// the folder as it was at REV; optionally push it.
    Rollback(cmd::rollback::Args),
    /// Set the image of Deployments in place (`set image SERVICE=IMAGE...`), optionally
    /// committing and pushing: the CI step after an image build.
    Set(cmd::set::Args),
    /// Convert a docker-compose file into manifests (a Stack and one Deployment per service),
    /// validated, with a warning for everything that cannot be imported.
    Import(cmd::import::Args),
    /// Print a shell completion script (e.g. `memectl completion bash > /etc/bash_completion.d/memectl`).
    Completion(cmd::completion::Args),
    /// This memectl's version and build commit, and the controller's (`--client`: only ours).
    Version(cmd::version::Args),
}

/// Output format of `validate`, `history` and `diff`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Table,
    /// JSON, for machines.
    Json,
}

/// What a command reports back: success, or a failed check it has already explained.
#[derive(Debug)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the check ran and failed.
    CheckFailed,
}

/// A check that ran and failed (unknown service, wait timed out or saw Degraded): printed as
/// `error: ...`, exit 1.
#[derive(Debug)]
pub struct CheckError(pub String);

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckError {}

impl Cli {
    /// Parses the process arguments and runs the command.
    pub fn parse_and_run() -> ExitCode {
        let cli = Self::parse();
        exit_code(cli.run())
    }

    fn run(self) -> anyhow::Result<Outcome> {
        let Self { global, command } = self;
        match command {
            Command::Validate(args) => cmd::validate::run(&args),
            Command::Completion(args) => cmd::completion::run(&args),
            Command::Import(args) => cmd::import::run(&args),
            Command::Status(args) => block_on(cmd::status::run(&args, &global)),
            Command::Get(args) => block_on(cmd::get::run(&args, &global)),
            Command::Describe(args) => block_on(cmd::describe::run(&args, &global)),
            Command::Reconcile(args) => block_on(cmd::reconcile::run(&args, &global)),
            Command::Suspend(args) => block_on(cmd::suspend::run(&args, &global)),
            Command::Resume(args) => block_on(cmd::resume::run(&args, &global)),
            Command::Wait(args) => block_on(cmd::wait::run(&args, &global)),
            Command::Logs(args) => block_on(cmd::logs::run(&args, &global)),
            Command::Diff(args) => block_on(cmd::diff::run(&args, &global)),
            Command::History(args) => block_on(cmd::history::run(&args, &global)),
            Command::Rollback(args) => block_on(cmd::rollback::run(&args, &global)),
            Command::Set(args) => block_on(cmd::set::run(&args, &global)),
            Command::Version(args) => block_on(cmd::version::run(&args, &global)),
        }
    }
}

/// Runs a command on a current-thread runtime: memectl does a few requests at a time, so a
/// thread pool would only add start-up cost.
fn block_on<F: Future<Output = anyhow::Result<Outcome>>>(future: F) -> anyhow::Result<Outcome> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(future)
}

/// Maps a command's result to the process exit code, printing errors as `error: ...` with
/// their whole chain, plus a `hint: ...` line where one helps.
#[must_use]
pub fn exit_code(result: anyhow::Result<Outcome>) -> ExitCode {
    let error = match result {
        Ok(Outcome::Success) => return ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => return ExitCode::from(1),
        Err(error) => error,
    };
    let (code, hint) = classify(&error);
    if code == 0 {
        return ExitCode::SUCCESS;
    }
    let mut stderr = std::io::stderr().lock();
    // Nothing is left to do if stderr is gone too.
    let _ = writeln!(stderr, "error: {error:#}");
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    ExitCode::from(code)
}

/// The exit code and hint for an error: a closed stdout pipe is success (ripgrep), a
/// [`CheckError`] or refused mutation 1, anything else 2.
fn classify(error: &anyhow::Error) -> (u8, Option<&'static str>) {
    for cause in error.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return (0, None);
        }
        if cause.is::<CheckError>() {
            return (1, None);
        }
        if let Some(api) = cause.downcast_ref::<ApiError>() {
            return (api.exit_code(), api.hint());
        }
    }
    (2, None)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_should_be_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn classify_should_follow_the_exit_code_policy() {
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("writing");
        assert_eq!(classify(&pipe), (0, None));
        assert_eq!(classify(&anyhow::Error::new(CheckError("no".into()))).0, 1);
        assert_eq!(classify(&anyhow::anyhow!("cannot read")).0, 2);
        let unreachable = ApiError::Unreachable { url: "http://x".into(), reason: "refused".into() };
        let (code, hint) = classify(&anyhow::Error::new(unreachable));
        assert_eq!(code, 2);
        assert!(hint.is_some_and(|h| h.contains("MEMECTL_SERVER")));
    }
}
