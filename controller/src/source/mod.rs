//! The source of desired state: the manifests folder as committed at a ref of a git repository.
//! [`SourceLoop`] re-resolves the ref on every resync (and on every trigger), loads and validates
//! a new revision, and puts it in force only when it is valid; an invalid tip leaves the last
//! good revision running and is reported with file:line:col.

pub mod git;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meme_api::status::RevisionInfo;
use tokio::sync::{mpsc, watch};

use crate::context::Context;
use crate::events::EventType;
use crate::reconcile::desired::DesiredState;
use crate::runtime::Signal;
use git::GitRepo;

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
}

/// The revision last seen at the tip and the one in force.
#[derive(Debug, Default)]
struct Revisions {
    tip: Option<String>,
    applied: Option<String>,
}

/// Follows the ref and feeds valid revisions to the controller.
pub struct SourceLoop {
    repo: GitRepo,
    config: SourceConfig,
    ctx: Arc<Context>,
    signals: mpsc::Sender<Signal>,
    revisions: Revisions,
}

impl SourceLoop {
    /// A loop over an opened repository.
    #[must_use]
    pub fn new(repo: GitRepo, config: SourceConfig, ctx: Arc<Context>, signals: mpsc::Sender<Signal>) -> Self {
        ctx.update_status(|s| {
            s.source.repo = config.repo.display().to_string();
            s.source.path.clone_from(&config.path);
            s.source.reference.clone_from(&config.reference);
        });
        Self { repo, config, ctx, signals, revisions: Revisions::default() }
    }

    /// Runs until `shutdown`: checks at start, on every trigger and every resync.
    pub async fn run(mut self, mut triggers: mpsc::Receiver<()>, mut shutdown: watch::Receiver<bool>) {
        let mut resync = tokio::time::interval(self.config.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = resync.tick() => self.check().await,
                Some(()) = triggers.recv() => self.check().await,
            }
        }
    }

    /// Resolves the ref; loads, validates and applies a new revision.
    pub async fn check(&mut self) {
        let revision = match self.repo.resolve(&self.config.reference).await {
            Ok(revision) => revision,
            Err(e) => {
                self.fail(None, "GitError", &e.to_string());
                self.ctx.metrics.source_error("git");
                return;
            }
        };
        if self.revisions.tip.as_deref() == Some(revision.as_str()) {
            return;
        }
        let subject = self.repo.commit(&revision).await.map(|c| c.subject).unwrap_or_default();
        self.revisions.tip = Some(revision.clone());
        self.ctx.metrics.source_revision(&revision);
        let tip = RevisionInfo { revision: revision.clone(), subject };
        self.ctx.update_status(|s| s.source.tip = Some(tip.clone()));

        let tree = match self.repo.read_tree(&revision, &self.config.path, &self.config.path).await {
            // Hidden files are skipped, as when the folder is read from disk (`memectl validate`).
            Ok(mut tree) => {
                tree.files.retain(|path, _| !path.split('/').any(|c| c.starts_with('.')));
                tree
            }
            Err(e) => {
                self.fail(Some(&revision), "GitError", &e.to_string());
                self.ctx.metrics.source_error("git");
                return;
            }
        };
        let set = match meme_api::load(&tree) {
            Ok(set) => set,
            Err(diagnostics) => {
                let text = diagnostics.to_string();
                tracing::error!(revision = %short(&revision), errors = diagnostics.error_count(), "revision fails validation; the last good revision stays in force");
                for d in diagnostics.0.iter().filter(|d| d.is_error()) {
                    tracing::error!(revision = %short(&revision), "{d}");
                }
                self.fail(Some(&revision), "InvalidManifest", text.trim_end());
                self.ctx.metrics.source_error("validation");
                return;
            }
        };
        let state = Arc::new(DesiredState::new(&set, &revision));
        tracing::info!(revision = %short(&revision), stack = %state.stack, services = state.services.len(), "applying revision");
        self.ctx.set_desired(state);
        self.revisions.applied = Some(revision.clone());
        self.ctx.metrics.applied_revision(&revision);
        self.ctx.update_status(|s| {
            s.stack = Some(set.stack.object.metadata.name.clone());
            s.source.error = None;
            s.applied = Some(tip);
        });
        self.ctx.events.record(
            EventType::Normal,
            "RevisionApplied",
            None,
            format!("applying revision {}", short(&revision)),
        );
        let _ = self.signals.send(Signal::DesiredChanged).await;
    }

    fn fail(&self, revision: Option<&str>, reason: &str, message: &str) {
        let message = match revision {
            Some(r) => format!("revision {} not applied: {message}", short(r)),
            None => message.to_owned(),
        };
        self.ctx.update_status(|s| s.source.error = Some(message.clone()));
        self.ctx.events.record(EventType::Warning, reason, None, message);
    }
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}
