//! Carrying out planned steps against the engine: ensure networks, volumes and images, create
//! (and start) containers, start stopped ones, stop and remove old ones. Creates of one plan run
//! concurrently; everything else in order.

use futures_util::future::try_join_all;
use meme_api::v1alpha1::ImagePullPolicy;

use crate::context::Context;
use crate::docker::{EngineError, auth};
use crate::events::EventType;
use crate::reconcile::desired::{DesiredState, ResolvedService};
use crate::reconcile::plan::{Action, Step};

/// How many log lines of a failed container are kept in its event.
const FAILED_LOG_LINES: usize = 20;

/// Why applying a step failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The engine refused or failed.
    #[error("{step}: {source}")]
    Engine {
        /// The step's reason.
        step: String,
        /// The engine error.
        #[source]
        source: EngineError,
    },
    /// The image is missing and the policy forbids pulling it.
    #[error("image {image} is not on the engine and imagePullPolicy is Never")]
    ImageMissing {
        /// The image.
        image: String,
    },
}

impl ApplyError {
    /// The engine error underneath, if any.
    #[must_use]
    pub fn engine_error(&self) -> Option<&EngineError> {
        match self {
            Self::Engine { source, .. } => Some(source),
            Self::ImageMissing { .. } => None,
        }
    }
}

/// What the steps did, beyond side effects: the number of each action, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Containers created.
    pub created: u32,
    /// Containers started.
    pub started: u32,
    /// Containers removed (pruned, scaled down, failed).
    pub removed: u32,
    /// Old containers removed because a new spec replaced them.
    pub replaced: u32,
    /// Images pulled.
    pub pulled: u32,
}

/// Applies `steps` for `service` in order (consecutive creates together).
///
/// # Errors
/// The first step that failed; later steps are not attempted.
pub async fn apply(
    ctx: &Context,
    state: &DesiredState,
    service: &ResolvedService,
    steps: &[Step],
) -> Result<Applied, ApplyError> {
    let name = service.service.name();
    let grace = service.service.deployment.spec.stop_grace_period.get();
    let mut applied = Applied::default();
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        match &step.action {
            Action::Create { .. } => {
                let batch: Vec<&Step> =
                    steps[i..].iter().take_while(|s| matches!(s.action, Action::Create { .. })).collect();
                i += batch.len();
                applied.pulled += ensure_image(ctx, service, step).await?;
                ensure_objects(ctx, state, service, step).await?;
                try_join_all(batch.iter().map(|s| create(ctx, state, service, s))).await?;
                applied.created += u32::try_from(batch.len()).unwrap_or(u32::MAX);
                continue;
            }
            Action::EnsureImage => {
                applied.pulled += ensure_image(ctx, service, step).await?;
            }
            Action::Start { id } => {
                ctx.engine.start_container(id).await.map_err(|e| engine(step, e))?;
                ctx.events.record(EventType::Normal, step.event, Some(name), step.reason.clone());
                applied.started += 1;
            }
            Action::Remove { id, keep_logs } => {
                let logs = if *keep_logs { ctx.engine.logs_tail(id, FAILED_LOG_LINES).await.ok() } else { None };
                Context::lock(&ctx.stopping).insert(id.clone());
                ctx.engine.stop_container(id, grace).await.map_err(|e| engine(step, e))?;
                ctx.engine.remove_container(id).await.map_err(|e| engine(step, e))?;
                match logs {
                    Some(logs) => ctx.events.record(
                        EventType::Warning,
                        step.event,
                        Some(name),
                        format!("{}; last log lines:\n{}", step.reason, logs.trim_end()),
                    ),
                    None => ctx.events.record(EventType::Normal, step.event, Some(name), step.reason.clone()),
                }
                if step.event == "Replaced" {
                    applied.replaced += 1;
                } else {
                    applied.removed += 1;
                }
            }
        }
        i += 1;
    }
    Ok(applied)
}

fn engine(step: &Step, source: EngineError) -> ApplyError {
    ApplyError::Engine { step: step.reason.clone(), source }
}

/// Pulls the image when the policy asks for it; returns the number of pulls (0 or 1).
async fn ensure_image(ctx: &Context, service: &ResolvedService, step: &Step) -> Result<u32, ApplyError> {
    let image = &service.service.deployment.spec.image;
    let present = ctx.engine.image_id(image).await.map_err(|e| engine(step, e))?.is_some();
    let pull = match service.pull_policy() {
        ImagePullPolicy::Always => true,
        ImagePullPolicy::IfNotPresent => !present,
        ImagePullPolicy::Never if present => false,
        ImagePullPolicy::Never => return Err(ApplyError::ImageMissing { image: image.clone() }),
    };
    if !pull {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    let credentials = auth::for_image(image);
    tracing::debug!(image, credentials = credentials.is_some(), config = ?auth::config_path(), "pulling");
    ctx.engine.pull_image(image, credentials).await.map_err(|e| engine(step, e))?;
    ctx.events.record(
        EventType::Normal,
        "Pulled",
        Some(service.service.name()),
        format!("pulled {image} in {:.1}s", started.elapsed().as_secs_f64()),
    );
    Ok(1)
}

/// Creates the networks and volumes the service uses, unless known to exist.
async fn ensure_objects(
    ctx: &Context,
    state: &DesiredState,
    service: &ResolvedService,
    step: &Step,
) -> Result<(), ApplyError> {
    let t = &service.service.template;
    let _guard = ctx.ensure_lock.lock().await;
    for network in t.networks.iter().filter_map(|n| state.networks.get(n)) {
        if !Context::lock(&ctx.ensured).contains(&network.name) {
            ctx.engine.ensure_network(network).await.map_err(|e| engine(step, e))?;
            Context::lock(&ctx.ensured).insert(network.name.clone());
        }
    }
    for volume in t.volume_mounts.iter().filter_map(|m| state.volumes.get(&m.name)) {
        if !Context::lock(&ctx.ensured).contains(&volume.name) {
            ctx.engine.ensure_volume(volume).await.map_err(|e| engine(step, e))?;
            Context::lock(&ctx.ensured).insert(volume.name.clone());
        }
    }
    Ok(())
}

async fn create(ctx: &Context, state: &DesiredState, service: &ResolvedService, step: &Step) -> Result<(), ApplyError> {
    let Action::Create { slot } = step.action else { return Ok(()) };
    let spec = service.container_spec(&state.stack, &state.revision, slot);
    let id = match ctx.engine.create_container(&spec).await {
        Ok(id) => id,
        Err(e) => {
            // A network or volume removed behind our back: forget it so the next try recreates it.
            if matches!(e, EngineError::NotFound { .. }) {
                Context::lock(&ctx.ensured).clear();
            }
            return Err(engine(step, e));
        }
    };
    ctx.engine.start_container(&id).await.map_err(|e| engine(step, e))?;
    ctx.events.record(
        EventType::Normal,
        step.event,
        Some(service.service.name()),
        format!("{} at {}", step.reason, short(&state.revision)),
    );
    Ok(())
}

/// The first 12 characters of a revision or id.
#[must_use]
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
