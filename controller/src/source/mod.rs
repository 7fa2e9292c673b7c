//! The source of desired state: the manifests folder as committed at a ref of a git repository.
//! [`SourceLoop`] re-resolves the ref on every resync (and on every trigger), loads and validates
//! a new revision, and puts it in force only when it is valid; an invalid tip leaves the last
//! good revision running and is reported with file:line:col.

pub mod watcher;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meme_api::status::RevisionInfo;
use tokio::sync::{mpsc, watch};

use crate::context::Context;
use crate::events::EventType;
use crate::reconcile::desired::DesiredState;
use crate::runtime::Signal;
use meme_git::{GitRepo, Operation};

/// What the source is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Re-resolve the ref (something in the repository moved).
    Check,
    /// Fetch from the remote now, then re-resolve (a webhook, an operator).
    Fetch,
}

/// Where the manifests are.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// The checkout.
    pub repo: PathBuf,
    /// The manifests folder, relative to the repository root.
    pub path: String,
    /// The ref followed (`HEAD`, `main`, `origin/main`).
    pub reference: String,
    /// How often the ref is re-resolved even without a trigger.
    pub resync: Duration,
    /// Fetch from this remote and follow its remote-tracking branch instead of `reference`.
    pub remote: Option<Remote>,
    /// Apply only commits signed by a key of this SSH allowed-signers file (git's format).
    pub verify_commits: Option<PathBuf>,
}

/// A remote to fetch from.
#[derive(Clone, Debug)]
pub struct Remote {
    /// The remote's name (`origin`).
    pub name: String,
    /// The branch followed on it.
    pub branch: String,
    /// How often to fetch.
    pub poll: Duration,
}

impl Remote {
    /// The remote-tracking ref the desired state is read from (`refs/remotes/origin/main`).
    #[must_use]
    pub fn tracking_ref(&self) -> String {
        format!("refs/remotes/{}/{}", self.name, self.branch)
    }

    /// What `git fetch` updates: the branch, forced, so a force-push is followed (as Flux does).
    #[must_use]
    pub fn refspec(&self) -> String {
        format!("+refs/heads/{}:{}", self.branch, self.tracking_ref())
    }
}

/// A fetch can take long on a slow network, but never forever.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The revision last seen at the tip and the one in force.
#[derive(Debug, Default)]
struct Revisions {
    tip: Option<String>,
    applied: Option<String>,
    /// Why the tip is not applied, when it is not: shown again once a fetch error clears.
    tip_error: Option<String>,
    /// Whether the error shown is a failed fetch (about no revision).
    fetch_failing: bool,
    /// Whether the error shown is a ref that did not resolve (about no revision).
    resolve_failing: bool,
}

/// `HEAD` held back while an operation runs in the checkout (issue 11.9).
#[derive(Debug)]
struct Hold {
    operation: Operation,
    head: String,
}

/// Follows the ref and feeds valid revisions to the controller.
pub struct SourceLoop {
    repo: GitRepo,
    config: SourceConfig,
    ctx: Arc<Context>,
    signals: mpsc::Sender<Signal>,
    revisions: Revisions,
    fetch_backoff: crate::runtime::backoff::Backoffs,
    next_fetch: Option<tokio::time::Instant>,
    hold: Option<Hold>,
}

impl SourceLoop {
    /// A loop over an opened repository.
    #[must_use]
    pub fn new(repo: GitRepo, config: SourceConfig, ctx: Arc<Context>, signals: mpsc::Sender<Signal>) -> Self {
        ctx.update_status(|s| {
            s.source.repo = config.repo.display().to_string();
            s.source.path.clone_from(&config.path);
            s.source.reference = config.remote.as_ref().map_or_else(|| config.reference.clone(), Remote::tracking_ref);
        });
        Self {
            repo,
            config,
            ctx,
            signals,
            revisions: Revisions::default(),
            fetch_backoff: crate::runtime::backoff::Backoffs::default(),
            next_fetch: None,
            hold: None,
        }
    }

    /// The ref whose commits are applied: the remote-tracking ref when a remote is followed.
    fn reference(&self) -> String {
        self.config.remote.as_ref().map_or_else(|| self.config.reference.clone(), Remote::tracking_ref)
    }

    /// Runs until `shutdown`: checks at start, on every trigger and every resync; fetches on
    /// the poll interval (with backoff after failures) and on [`Trigger::Fetch`].
    pub async fn run(
        mut self,
        mut triggers: mpsc::Receiver<Trigger>,
        changed: Arc<tokio::sync::Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut resync = tokio::time::interval(self.config.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let poll = self.config.remote.as_ref().map_or(Duration::from_secs(3600), |r| r.poll);
        let mut poll_tick = tokio::time::interval(poll);
        poll_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = resync.tick() => self.check().await,
                _ = poll_tick.tick(), if self.config.remote.is_some() => {
                    if self.next_fetch.is_none_or(|at| tokio::time::Instant::now() >= at) {
                        self.fetch().await;
                    }
                    self.check().await;
                }
                () = changed.notified() => self.check().await,
                Some(trigger) = triggers.recv() => {
                    if trigger == Trigger::Fetch && self.config.remote.is_some() {
                        self.fetch().await;
                    }
                    self.check().await;
                }
            }
        }
    }

    /// Fetches the followed branch; a failure is reported and backed off, and the last good
    /// revision stays in force.
    async fn fetch(&mut self) {
        let Some(remote) = self.config.remote.clone() else { return };
        match self.repo.fetch(&remote.name, &remote.refspec(), FETCH_TIMEOUT).await {
            Ok(()) => {
                self.fetch_backoff.reset("fetch");
                self.next_fetch = None;
                if std::mem::take(&mut self.revisions.fetch_failing) {
                    self.recovered("fetch").await;
                }
            }
            Err(e) => {
                let delay = self.fetch_backoff.next("fetch");
                self.next_fetch = Some(tokio::time::Instant::now() + delay);
                tracing::warn!(error = %e, retry_in = ?delay, "fetch failed; the last good revision stays in force");
                self.ctx.metrics.source_error("fetch");
                self.fail(None, "FetchFailed", &format!("{e} (next fetch in {}s)", delay.as_secs()));
                self.revisions.fetch_failing = true;
            }
        }
    }

    /// Resolves the ref; loads, validates and applies a new revision. Counted in
    /// `meme_checks_total{check="source"}` whatever the outcome.
    pub async fn check(&mut self) {
        self.check_once().await;
        self.ctx.metrics.checked("source");
    }

    async fn check_once(&mut self) {
        let revision = match self.repo.resolve(&self.reference()).await {
            Ok(revision) => revision,
            Err(e) => {
                self.fail(None, "GitError", &e.to_string());
                self.revisions.resolve_failing = true;
                self.ctx.metrics.source_error("git");
                return;
            }
        };
        if std::mem::take(&mut self.revisions.resolve_failing) {
            self.recovered("ref lookup").await;
        }
        if self.follows_checkout_head() {
            match self.repo.operation_in_progress().await {
                Ok(Some(operation)) => return self.hold(operation, &revision),
                Ok(None) => self.release(&revision).await,
                Err(e) => tracing::warn!(error = %e, "cannot tell whether an operation is in progress in the checkout"),
            }
        }
        if self.revisions.tip.as_deref() == Some(revision.as_str()) {
            return;
        }
        let subject = self.repo.commit(&revision).await.map(|c| c.subject).unwrap_or_default();
        if let Some(old) = self.revisions.tip.clone()
            && !self.repo.is_ancestor(&old, &revision).await.unwrap_or(true)
        {
            self.ctx.events.record(
                EventType::Warning,
                "HistoryRewritten",
                None,
                format!(
                    "history rewritten: {} -> {} (force push or reset); following the new tip",
                    short(&old),
                    short(&revision)
                ),
            );
        }
        self.revisions.tip = Some(revision.clone());
        self.ctx.metrics.source_revision(&revision);
        // The tip is published only together with its verdict (applied, or why not), in one
        // status update: a reader never sees the new tip beside the old tip's error.
        let tip = RevisionInfo { revision: revision.clone(), subject };

        let signature = match &self.config.verify_commits {
            Some(allowed) => match self.repo.verify_commit(&revision, allowed).await {
                Ok(signature) => Some(signature.summary),
                Err(e) => {
                    let unverified = matches!(e, meme_git::GitError::Unverified { .. });
                    tracing::error!(revision = %short(&revision), error = %e, "revision not verified; the last good revision stays in force");
                    self.fail(Some(tip), if unverified { "VerificationFailed" } else { "GitError" }, &e.to_string());
                    self.ctx.metrics.source_error(if unverified { "verification" } else { "git" });
                    return;
                }
            },
            None => None,
        };
        let tree = match self.repo.read_tree(&revision, &self.config.path, &self.config.path).await {
            Ok(tree) => tree,
            Err(e) if e.is_over_limit() => {
                tracing::error!(revision = %short(&revision), error = %e, "revision over the read limits; the last good revision stays in force");
                self.fail(Some(tip), "RevisionTooLarge", &e.to_string());
                self.ctx.metrics.source_error("validation");
                return;
            }
            Err(e) => {
                self.fail(Some(tip), "GitError", &e.to_string());
                self.ctx.metrics.source_error("git");
                return;
            }
        };
        // Parsing, validating and hashing are CPU-bound (seconds for a large revision): on the
        // blocking pool, so the async workers keep answering /healthz, /metrics and the API.
        let rev = revision.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            meme_api::load(&tree).map(|set| Arc::new(DesiredState::new(&set, &rev)))
        })
        .await;
        let state = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(diagnostics)) => {
                let text = diagnostics.to_string();
                tracing::error!(revision = %short(&revision), errors = diagnostics.error_count(), "revision fails validation; the last good revision stays in force");
                for d in diagnostics.0.iter().filter(|d| d.is_error()) {
                    tracing::error!(revision = %short(&revision), "{d}");
                }
                self.fail(Some(tip), "InvalidManifest", text.trim_end());
                self.ctx.metrics.source_error("validation");
                return;
            }
            Err(join) => {
                // A panic in the loader is a bug; it must not take the source loop with it.
                tracing::error!(revision = %short(&revision), error = %join, "loading the revision panicked");
                self.fail(Some(tip), "InvalidManifest", "loading the revision failed (a bug: see the log)");
                self.ctx.metrics.source_error("validation");
                return;
            }
        };
        tracing::info!(revision = %short(&revision), stack = %state.stack, services = state.services.len(), "applying revision");
        self.ctx.set_desired(Arc::clone(&state));
        self.revisions.applied = Some(revision.clone());
        self.revisions.tip_error = None;
        self.revisions.fetch_failing = false;
        self.revisions.resolve_failing = false;
        self.ctx.metrics.applied_revision(&revision);
        self.ctx.update_status(|s| {
            s.stack = Some(state.stack.clone());
            s.source.tip = Some(tip.clone());
            s.source.error = None;
            s.source.error_revision = None;
            s.applied = Some(tip);
            s.sync_revision = Some(revision.clone());
            // Until the loop has looked at every service, the new revision is not Synced: a
            // `memectl wait --revision` must not see the old Synced beside the new revision.
            if !s.suspended {
                s.sync_status = meme_api::status::SyncStatus::Progressing;
            }
        });
        let signed = signature.map(|s| format!(" ({s})")).unwrap_or_default();
        self.ctx.events.record(
            EventType::Normal,
            "RevisionApplied",
            None,
            format!("applying revision {}{signed}", short(&revision)),
        );
        let _ = self.signals.send(Signal::DesiredChanged).await;
    }

    /// Whether the applied ref is the checkout's own `HEAD` (the default `--ref HEAD`), which a
    /// rebase, merge or bisect in the checkout moves through intermediate commits.
    fn follows_checkout_head(&self) -> bool {
        self.config.remote.is_none() && matches!(self.config.reference.as_str(), "HEAD" | "@")
    }

    /// Leaves `head` unapplied while `operation` runs; says so once per operation and `HEAD`.
    fn hold(&mut self, operation: Operation, head: &str) {
        if self.hold.as_ref().is_some_and(|h| h.operation == operation && h.head == head) {
            return;
        }
        let in_force = self.revisions.applied.as_deref().map_or_else(|| "nothing".to_owned(), |r| short(r).to_owned());
        let message = format!(
            "a {operation} is in progress in the checkout: HEAD {} is not applied until it finishes ({in_force} stays in force)",
            short(head)
        );
        tracing::warn!(%operation, head = %short(head), "{message}");
        self.fail(None, "OperationInProgress", &message);
        self.hold = Some(Hold { operation, head: head.to_owned() });
    }

    /// Ends a hold. `HEAD` back at the tip it had gets that tip's own verdict again; a new
    /// `HEAD` is checked as any new revision.
    async fn release(&mut self, head: &str) {
        let Some(hold) = self.hold.take() else { return };
        tracing::info!(operation = %hold.operation, head = %short(head), "the operation in the checkout finished");
        if self.revisions.tip.as_deref() == Some(head) {
            self.restore_tip_verdict().await;
        }
    }

    /// A fetch or ref lookup works again: its error gives way to the tip's own verdict, and the
    /// loop recomputes the sync status.
    async fn recovered(&mut self, what: &str) {
        self.ctx.events.record(EventType::Normal, "SourceRecovered", None, format!("{what} works again"));
        self.restore_tip_verdict().await;
    }

    /// Shows the tip's own verdict (applied, or why not) in place of an error about no revision.
    async fn restore_tip_verdict(&mut self) {
        let tip = self.revisions.tip.clone();
        let error = self.revisions.tip_error.clone();
        self.ctx.update_status(|s| {
            if s.source.error_revision.is_none() {
                s.source.error_revision = tip.filter(|_| error.is_some());
                s.source.error = error;
            }
        });
        let _ = self.signals.send(Signal::Resync).await;
    }

    /// Reports an error: about the tip `revision` (published with it, in the same update), or
    /// about no revision (a failed fetch or ref lookup).
    fn fail(&mut self, revision: Option<RevisionInfo>, reason: &str, message: &str) {
        let message = match &revision {
            Some(r) => format!("revision {} not applied: {message}", short(&r.revision)),
            None => message.to_owned(),
        };
        if revision.is_some() {
            self.revisions.tip_error = Some(message.clone());
            self.revisions.fetch_failing = false;
            self.revisions.resolve_failing = false;
        }
        let suspended = self.ctx.update_status(|s| {
            s.source.error = Some(message.clone());
            s.source.error_revision = revision.as_ref().map(|r| r.revision.clone());
            if let Some(tip) = revision {
                s.sync_revision = Some(tip.revision.clone());
                s.source.tip = Some(tip);
            }
            if !s.suspended {
                s.sync_status = meme_api::status::SyncStatus::OutOfSync;
            }
            s.suspended
        });
        if !suspended {
            self.ctx.metrics.sync_status(meme_api::status::SyncStatus::OutOfSync);
        }
        self.ctx.events.record(EventType::Warning, reason, None, message);
    }
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}
