//! Flags (each also an environment variable) and the wiring of a running controller: engine,
//! source loop, controller loop, event watcher and shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::sync::{mpsc, watch};

use crate::context::{Config, Context};
use crate::docker::Engine;
use crate::docker::bollard::BollardEngine;
use crate::docker::bounded::FanOut;
use crate::docker::timeout::CallTimeouts;
use crate::http::{self, Api};
use crate::notify;
use crate::runtime::{self, Signal};
use crate::source::{Remote, SourceConfig, SourceLoop, Trigger};
use crate::telemetry::{self, LogFormat};
use meme_git::GitRepo;

/// Signals queued between the source, the event watcher and the loop; the loop drains them
/// quickly, so a small buffer only smooths bursts of Docker events.
const SIGNAL_BUFFER: usize = 1024;

/// meme-controller: keeps this host's containers equal to the manifests committed in git.
#[derive(Debug, Parser)]
#[command(name = "meme-controller", version = crate::VERSION, about)]
pub struct Args {
    /// The git checkout holding the manifests.
    #[arg(long, env = "MEME_REPO", default_value = ".")]
    repo: PathBuf,
    /// The manifests folder, relative to the repository root.
    #[arg(long, env = "MEME_PATH", default_value = "manifests")]
    path: String,
    /// The ref whose commits are applied.
    #[arg(long = "ref", env = "MEME_REF", default_value = "HEAD")]
    reference: String,
    /// Full resync interval: the ref is re-resolved and every service re-planned.
    #[arg(long, env = "MEME_RESYNC", default_value = "30s", value_parser = humantime::parse_duration)]
    resync: Duration,
    /// Where secretKeyRefs are read: <dir>/<name>/<key>.
    #[arg(long, env = "MEME_SECRETS_DIR", default_value = "/etc/meme-controller/secrets")]
    secrets_dir: PathBuf,
    /// Address of the HTTP listener (status API, metrics, health).
    #[arg(long, env = "MEME_LISTEN", default_value = "127.0.0.1:9797")]
    listen: std::net::SocketAddr,
    /// File holding the bearer token that POST /api/v1/reconcile|suspend|resume require;
    /// without it they are refused.
    #[arg(long, env = "MEME_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Where state that must survive a restart is kept (whether reconciliation is suspended).
    #[arg(long, env = "MEME_STATE_DIR", default_value = "/var/lib/meme-controller")]
    state_dir: PathBuf,
    /// Fetch from this git remote and apply its remote-tracking branch (the branch of --ref, or
    /// the checkout's current branch when --ref is HEAD). The checkout is never modified.
    #[arg(long, env = "MEME_REMOTE")]
    remote: Option<String>,
    /// How often to fetch from --remote.
    #[arg(long, env = "MEME_POLL", default_value = "1m", value_parser = humantime::parse_duration, requires = "remote")]
    poll: Duration,
    /// File holding the shared secret of POST /api/v1/hooks/git (GitHub/Gitea HMAC-SHA256,
    /// GitLab token); without it webhooks are refused.
    #[arg(long, env = "MEME_WEBHOOK_SECRET_FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// Apply only commits signed with an SSH key listed in this allowed-signers file (git's
    /// `gpg.ssh.allowedSignersFile` format); other revisions are refused and reported.
    #[arg(long, env = "MEME_VERIFY_COMMITS", value_name = "FILE")]
    verify_commits: Option<PathBuf>,
    /// Services reconciled at once.
    #[arg(long, env = "MEME_CONCURRENCY", default_value_t = 8)]
    concurrency: usize,
    /// Engine calls of each kind (reads; changes; stops and pulls) in flight at once; more
    /// wait their turn. Bounds the controller's connections to the engine.
    #[arg(long, env = "MEME_MAX_ENGINE_CALLS", default_value_t = FanOut::DEFAULT_PER_KIND,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    max_engine_calls: u16,
    /// This controller's name, recorded on the containers it creates and in stack leases
    /// [default: derived from --repo, --path, --ref and --remote].
    #[arg(long, env = "MEME_INSTANCE", value_parser = parse_instance)]
    instance: Option<String>,
    /// Where stack leases are kept: one controller per stack, among all controllers that share
    /// this directory (keep the default for every controller of a host).
    #[arg(long, env = "MEME_LEASE_DIR", default_value = "/var/lib/meme-controller/leases")]
    lease_dir: PathBuf,
    /// How long a stack stays with a controller that stopped running (a restart keeps it);
    /// another controller takes it over after that.
    #[arg(long, env = "MEME_LEASE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// Log format.
    #[arg(long, env = "MEME_LOG_FORMAT", value_enum, default_value_t)]
    log_format: LogFormat,
    /// Host names the API answers besides IP addresses and localhost (comma-separated): the
    /// `Host` check refuses other names, which is what a DNS-rebinding web page sends.
    #[arg(long, env = "MEME_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// HTTP connections open at once; more are answered 503. Lowered when the open files limit
    /// leaves less room after the descriptors kept for the engine and git.
    #[arg(long, env = "MEME_MAX_CONNECTIONS", default_value_t = 256)]
    max_connections: usize,
    /// An HTTP connection that sends no complete request head this long after it opened or
    /// after its last answer (idle, or trickling its headers) is closed.
    #[arg(long, env = "MEME_HTTP_IDLE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    http_idle_timeout: Duration,
}

impl Args {
    /// Parses flags, runs the controller until SIGTERM/SIGINT.
    ///
    /// # Errors
    /// The repository cannot be opened or the runtime cannot start.
    pub fn parse_and_run() -> anyhow::Result<()> {
        let args = Self::parse();
        telemetry::init(args.log_format);
        let open_files = crate::fds::raise_limit();
        let max_connections = crate::fds::connection_budget(open_files, args.max_connections);
        let limits = http::server::Limits { max_connections, idle_timeout: args.http_idle_timeout };
        tracing::debug!(open_files, max_connections, "file descriptors");
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(args.run(limits))
    }

    async fn run(self, limits: http::server::Limits) -> anyhow::Result<()> {
        let repo = GitRepo::open(&self.repo)
            .await
            .with_context(|| format!("cannot open git repository {}", self.repo.display()))?;
        let engine: Arc<dyn Engine> = crate::docker::layered(
            Arc::new(BollardEngine::connect().await.context("cannot set up the docker client")?),
            Some(CallTimeouts::default()),
            FanOut { per_kind: usize::from(self.max_engine_calls) },
        );
        if let Err(e) = engine.ping().await {
            tracing::warn!(error = %e, "docker engine not reachable yet; retrying in the background");
        }
        let token = match &self.token_file {
            Some(path) => {
                let token = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --token-file {}", path.display()))?;
                let token = token.trim().to_owned();
                anyhow::ensure!(!token.is_empty(), "--token-file {} is empty", path.display());
                crate::redact::remember("the API token", &token);
                Some(token)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        let listen = listener.local_addr().unwrap_or(self.listen);
        let config = Config {
            secrets_dir: self.secrets_dir.clone(),
            concurrency: self.concurrency,
            resync: self.resync,
            state_dir: self.state_dir.clone(),
        };
        let instance = self.instance.clone().unwrap_or_else(|| {
            crate::ownership::identity::derive(&self.repo, &self.path, &self.reference, self.remote.as_deref())
        });
        let holder = crate::ownership::lease::Holder {
            instance: instance.clone(),
            pid: std::process::id(),
            repo: self.repo.canonicalize().unwrap_or_else(|_| self.repo.clone()).display().to_string(),
            path: self.path.clone(),
            since: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let leases = crate::ownership::LeaseConfig { dir: self.lease_dir.clone(), ttl: self.lease_ttl };
        let ownership = crate::ownership::Ownership::new(holder, leases, &self.state_dir).with_context(|| {
            format!(
                "cannot use the lease directory {} (--lease-dir: a directory every controller of this host shares)",
                self.lease_dir.display()
            )
        })?;
        let ctx = Arc::new(Context::new(engine, config).with_ownership(ownership));
        ctx.update_status(|s| s.instance.clone_from(&instance));
        tracing::info!(%instance, lease_dir = %self.lease_dir.display(), "controller instance");
        ctx.load_suspended();
        let (shutdown_tx, shutdown) = watch::channel(false);
        let (signals_tx, signals) = mpsc::channel(SIGNAL_BUFFER);
        // One entry: with the fetch in progress, at most one more waits (see http::fetches).
        let (triggers_tx, triggers) = mpsc::channel::<Trigger>(1);
        let remote = match &self.remote {
            Some(name) => {
                let branch = if self.reference == "HEAD" {
                    repo.current_branch().await?.context("--remote needs --ref BRANCH when HEAD is detached")?
                } else {
                    self.reference.trim_start_matches("refs/heads/").to_owned()
                };
                Some(Remote { name: name.clone(), branch, poll: self.poll })
            }
            None => None,
        };
        let followed_ref = match &remote {
            Some(r) => Some(format!("refs/heads/{}", r.branch)),
            None if self.reference == "HEAD" => {
                repo.current_branch().await.ok().flatten().map(|b| format!("refs/heads/{b}"))
            }
            None => Some(format!("refs/heads/{}", self.reference.trim_start_matches("refs/heads/"))),
        };
        let webhook_secret = match &self.webhook_secret_file {
            Some(path) => {
                let secret = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --webhook-secret-file {}", path.display()))?;
                let secret = secret.trim().as_bytes().to_vec();
                anyhow::ensure!(!secret.is_empty(), "--webhook-secret-file {} is empty", path.display());
                crate::redact::remember("the webhook secret", &String::from_utf8_lossy(&secret));
                Some(secret)
            }
            None => None,
        };
        let (git_dir, common_dir) = repo.git_dirs().await?;
        if let Some(file) = &self.verify_commits {
            // Fail at start, not at the first commit: an unreadable file would refuse everything.
            std::fs::File::open(file).with_context(|| format!("cannot read --verify-commits {}", file.display()))?;
        }

        let source = SourceLoop::new(
            repo,
            SourceConfig {
                repo: self.repo.clone(),
                path: self.path.clone(),
                reference: self.reference.clone(),
                resync: self.resync,
                remote: remote.clone(),
                verify_commits: self.verify_commits.clone(),
            },
            Arc::clone(&ctx),
            signals_tx.clone(),
        );
        tracing::info!(
            version = crate::VERSION,
            repo = %self.repo.display(),
            path = %self.path,
            reference = %self.reference,
            remote = remote.as_ref().map(|r| r.name.as_str()),
            resync = ?self.resync,
            "starting"
        );
        let changed = Arc::new(tokio::sync::Notify::new());
        let source_task = tokio::spawn(source.run(triggers, Arc::clone(&changed), shutdown.clone()));
        let watch_task = tokio::spawn(crate::source::watcher::run(git_dir, common_dir, changed, shutdown.clone()));
        let events_task =
            tokio::spawn(runtime::controller::watch_engine(Arc::clone(&ctx), signals_tx.clone(), shutdown.clone()));
        let ownership_task =
            tokio::spawn(crate::ownership::run(Arc::clone(&ctx), signals_tx.clone(), shutdown.clone()));
        let loop_task = tokio::spawn(runtime::controller::run(
            Arc::clone(&ctx),
            runtime::controller::reconcile_service(),
            signals,
            shutdown.clone(),
        ));
        let api = Arc::new(Api {
            ctx: Arc::clone(&ctx),
            token,
            signals: signals_tx.clone(),
            fetches: http::fetches::FetchRequests::spawn(triggers_tx, http::fetches::MIN_INTERVAL, shutdown.clone()),
            webhook_secret,
            followed_ref,
            hosts: http::host::AllowedHosts::new(&self.allowed_hosts),
        });
        tracing::info!(%listen, mutations = api.token.is_some(), max_connections = limits.max_connections, "serving the API");
        let http_task = tokio::spawn(http::server::serve(listener, http::router(api), limits, shutdown.clone()));
        let _ = signals_tx.send(Signal::Resync).await;
        tokio::spawn(notify::ready_when_ready(Arc::clone(&ctx), listen, shutdown.clone()));

        wait_for_signal().await;
        tracing::info!("signal received; stopping");
        notify::stopping();
        let _ = shutdown_tx.send(true);
        let _ = tokio::join!(source_task, watch_task, events_task, ownership_task, loop_task, http_task);
        Ok(())
    }
}

fn parse_instance(name: &str) -> Result<String, String> {
    crate::ownership::identity::check(name).map(|()| name.to_owned())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
