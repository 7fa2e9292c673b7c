//! Carrying out planned steps against the engine: ensure networks, volumes and images, create
//! (and start) containers, start stopped ones, move containers in and out of rotation, reload
//! files in place, and retire old containers: out of rotation, drained, stopped, removed.
//! Creates of one plan run concurrently; everything else in order.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::try_join_all;
use meme_api::v1alpha1::ImagePullPolicy;

use crate::context::Context;
use crate::docker::{EngineError, EngineResult, ObservedContainer, auth, labels};
use crate::events::EventType;
use crate::reconcile::desired::{DesiredState, ResolvedService};
use crate::reconcile::plan::{Action, CreateCause, Rotation, Step, StepEvent};
use crate::reconcile::reload;

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
    /// Containers whose files were reloaded in place.
    pub reloaded: u32,
    /// A reload failed: the service falls back to a replace at the next look.
    pub reload_failed: bool,
}

/// The service whose steps are applied: as desired, or (prune) only its name.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// A desired service.
    Desired(&'a DesiredState, &'a ResolvedService),
    /// A service no manifest names any more.
    Pruned(&'a str),
}

impl Target<'_> {
    fn name(&self) -> &str {
        match self {
            Self::Desired(_, service) => service.service.name(),
            Self::Pruned(name) => name,
        }
    }
}

/// Applies `steps` in order (consecutive creates together, consecutive removals drained
/// together). `observed` are the containers the plan was made from.
///
/// # Errors
/// The first step that failed; later steps are not attempted.
pub async fn apply(
    ctx: &Context,
    target: Target<'_>,
    steps: &[Step],
    observed: &[ObservedContainer],
) -> Result<Applied, ApplyError> {
    let name = target.name();
    let containers: HashMap<&str, &ObservedContainer> = observed.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut applied = Applied::default();
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        match (&step.action, target) {
            (Action::Create { .. }, Target::Desired(state, service)) => {
                let batch: Vec<&Step> =
                    steps[i..].iter().take_while(|s| matches!(s.action, Action::Create { .. })).collect();
                i += batch.len();
                applied.pulled += ensure_image(ctx, service, step).await?;
                ensure_objects(ctx, state, service, step).await?;
                let ids = try_join_all(batch.iter().map(|s| create(ctx, state, service, s))).await?;
                let networks = service.networks();
                for (id, s) in ids.iter().zip(&batch) {
                    start_on(ctx, &networks, id).await.map_err(|e| engine(s, e))?;
                    ctx.events.record(
                        EventType::Normal,
                        s.event.as_str(),
                        Some(name),
                        format!("{} at {}", s.reason, short(&state.revision)),
                    );
                }
                applied.created += u32::try_from(batch.len()).unwrap_or(u32::MAX);
                continue;
            }
            (Action::Start { id }, _) => {
                let networks = containers.get(id.as_str()).map(|c| c.networks.clone()).unwrap_or_default();
                start_on(ctx, &networks, id).await.map_err(|e| engine(step, e))?;
                ctx.events.record(EventType::Normal, step.event.as_str(), Some(name), step.reason.clone());
                applied.started += 1;
            }
            (Action::Admit { id } | Action::Evict { id }, _) => {
                if let Some(container) = containers.get(id.as_str()) {
                    let admit = matches!(step.action, Action::Admit { .. });
                    let networks = match target {
                        Target::Desired(_, service) => service.networks_for(container),
                        Target::Pruned(_) => container.networks.clone(),
                    };
                    let moved = if admit {
                        ctx.rotations.admit(ctx.engine.as_ref(), container, name, &networks).await
                    } else {
                        ctx.rotations.evict(ctx.engine.as_ref(), container, name, &networks).await
                    }
                    .map_err(|e| engine(step, e))?;
                    tracing::debug!(container = %container.name, admit, "rotation changed");
                    ctx.events.record(EventType::Normal, step.event.as_str(), Some(name), step.reason.clone());
                    address_changed(ctx, name, container, &moved);
                }
            }
            (Action::Reload { .. }, Target::Desired(_, service)) => {
                let batch: Vec<&Step> =
                    steps[i..].iter().take_while(|s| matches!(s.action, Action::Reload { .. })).collect();
                i += batch.len();
                for s in batch {
                    let Action::Reload { id } = &s.action else { continue };
                    let Some(container) = containers.get(id.as_str()) else { continue };
                    match reload::reload(ctx, service, container).await {
                        Ok(()) => {
                            ctx.events.record(EventType::Normal, s.event.as_str(), Some(name), s.reason.clone());
                            applied.reloaded += 1;
                        }
                        Err(why) => {
                            ctx.services.reload_failed(name, &service.files_hash);
                            ctx.events.record(
                                EventType::Warning,
                                "ReloadFailed",
                                Some(name),
                                format!("{}: {why}; falling back to replacing the containers", s.reason),
                            );
                            applied.reload_failed = true;
                            break;
                        }
                    }
                }
                continue;
            }
            (Action::Remove { .. }, _) => {
                let batch: Vec<&Step> =
                    steps[i..].iter().take_while(|s| matches!(s.action, Action::Remove { .. })).collect();
                i += batch.len();
                retire(ctx, target, &batch, &containers).await?;
                for s in batch {
                    if s.event == StepEvent::Replaced {
                        applied.replaced += 1;
                    } else {
                        applied.removed += 1;
                    }
                }
                continue;
            }
            (Action::Recreate { remove, slots, start }, Target::Desired(state, service)) => {
                applied.pulled += ensure_image(ctx, service, step).await?;
                ensure_objects(ctx, state, service, step).await?;
                // Created, not started: the old containers still hold the host ports.
                let creates: Vec<Step> = slots
                    .iter()
                    .map(|&slot| Step {
                        action: Action::Create { slot, cause: CreateCause::Rollout },
                        reason: step.reason.clone(),
                        event: step.event,
                    })
                    .collect();
                let mut new = try_join_all(creates.iter().map(|s| create(ctx, state, service, s))).await?;
                new.extend(start.iter().cloned());
                let retiring: Vec<Step> = remove
                    .iter()
                    .map(|id| Step {
                        action: Action::Remove { id: id.clone(), keep_logs: false },
                        reason: step.reason.clone(),
                        event: step.event,
                    })
                    .collect();
                let retiring: Vec<&Step> = retiring.iter().collect();
                // Only stop + start fall in the gap: the old containers are removed once the new
                // ones run (a remove is ~0.2 s of the engine's time, measured by `meme-bench
                // recreate`). A start that fails leaves them stopped; the next reconcile removes
                // them as containers of an old spec.
                let gap = std::time::Instant::now();
                let stopped = stop_retiring(ctx, target, &retiring, &containers).await?;
                let networks = service.networks();
                for id in &new {
                    start_on(ctx, &networks, id).await.map_err(|e| engine(step, e))?;
                }
                tracing::debug!(service = name, gap_ms = gap.elapsed().as_millis(), "recreated");
                // One event for the whole step (below), not one per container removed.
                remove_stopped(ctx, name, stopped, Record::Quiet).await?;
                ctx.events.record(
                    EventType::Normal,
                    step.event.as_str(),
                    Some(name),
                    format!("{} at {}", step.reason, short(&state.revision)),
                );
                applied.created += u32::try_from(slots.len()).unwrap_or(u32::MAX);
                applied.replaced += u32::try_from(remove.len()).unwrap_or(u32::MAX);
            }
            (Action::Create { .. } | Action::Reload { .. } | Action::Recreate { .. }, Target::Pruned(_)) => {
                // The planner never asks this of a pruned service.
            }
        }
        i += 1;
    }
    Ok(applied)
}

/// Retires containers: out of rotation first (those in it), then one drain period for requests
/// in flight, then each is stopped with its grace period and removed.
async fn retire(
    ctx: &Context,
    target: Target<'_>,
    steps: &[&Step],
    containers: &HashMap<&str, &ObservedContainer>,
) -> Result<(), ApplyError> {
    let stopped = stop_retiring(ctx, target, steps, containers).await?;
    remove_stopped(ctx, target.name(), stopped, Record::EachRemoval).await
}

/// Whether [`remove_stopped`] records an event per container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    /// One event per removed container (its step's reason, with its log tail when kept).
    EachRemoval,
    /// None: the caller records one for the whole step.
    Quiet,
}

/// A retired container, stopped and not yet removed, with the log tail its event keeps.
struct Stopped<'a> {
    step: &'a Step,
    id: &'a str,
    logs: Option<String>,
}

/// The first half of [`retire`]: out of rotation, one drain period, then each stopped with its
/// grace period (its log tail read first when the step keeps it).
async fn stop_retiring<'a>(
    ctx: &Context,
    target: Target<'_>,
    steps: &[&'a Step],
    containers: &HashMap<&str, &ObservedContainer>,
) -> Result<Vec<Stopped<'a>>, ApplyError> {
    let name = target.name();
    let mut drain = Duration::ZERO;
    for step in steps {
        let Action::Remove { id, .. } = &step.action else { continue };
        let Some(container) = containers.get(id.as_str()) else { continue };
        // A container publishing host ports is never moved: that would close its ports early.
        if container.publishes_ports {
            continue;
        }
        // Leaving: only the networks it is on matter.
        let networks = &container.networks;
        let rotation =
            ctx.rotations.observe(ctx.engine.as_ref(), container, name, networks).await.map_err(|e| engine(step, e))?;
        if rotation != Rotation::Out {
            let moved = ctx
                .rotations
                .evict(ctx.engine.as_ref(), container, name, networks)
                .await
                .map_err(|e| engine(step, e))?;
            address_changed(ctx, name, container, &moved);
            drain = drain.max(drain_period(target, container));
        }
    }
    if !drain.is_zero() {
        tracing::debug!(service = name, ?drain, "draining before stop");
        tokio::time::sleep(drain).await;
    }
    let mut stopped = Vec::with_capacity(steps.len());
    for &step in steps {
        let Action::Remove { id, keep_logs } = &step.action else { continue };
        let logs = if *keep_logs { ctx.engine.logs_tail(id, FAILED_LOG_LINES).await.ok() } else { None };
        Context::lock(&ctx.stopping).insert(id.clone());
        let grace = containers.get(id.as_str()).map_or(DEFAULT_GRACE, |c| stop_grace(target, c));
        ctx.engine.stop_container(id, grace).await.map_err(|e| engine(step, e))?;
        stopped.push(Stopped { step, id, logs });
    }
    Ok(stopped)
}

/// The second half of [`retire`]: each stopped container removed, and (unless `Quiet`) its
/// event recorded.
async fn remove_stopped(
    ctx: &Context,
    name: &str,
    stopped: Vec<Stopped<'_>>,
    record: Record,
) -> Result<(), ApplyError> {
    for Stopped { step, id, logs } in stopped {
        ctx.engine.remove_container(id).await.map_err(|e| engine(step, e))?;
        if record == Record::Quiet {
            continue;
        }
        match logs {
            Some(logs) => ctx.events.record(
                EventType::Warning,
                step.event.as_str(),
                Some(name),
                format!("{}; last log lines:\n{}", step.reason, logs.trim_end()),
            ),
            None => ctx.events.record(EventType::Normal, step.event.as_str(), Some(name), step.reason.clone()),
        }
    }
    Ok(())
}

/// Docker's own default, for a container whose grace period is not known.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The drain period: the desired one, or (pruned service) the one the container was made with.
fn drain_period(target: Target<'_>, container: &ObservedContainer) -> Duration {
    match target {
        Target::Desired(_, service) => service.service.deployment.spec.drain_period.get(),
        Target::Pruned(_) => millis_label(container, labels::DRAIN_PERIOD_MS).unwrap_or_default(),
    }
}

/// The stop grace period: the desired one, or (pruned service) the one it was made with.
fn stop_grace(target: Target<'_>, container: &ObservedContainer) -> Duration {
    match target {
        Target::Desired(_, service) => service.service.deployment.spec.stop_grace_period.get(),
        Target::Pruned(_) => millis_label(container, labels::STOP_GRACE_MS).unwrap_or(DEFAULT_GRACE),
    }
}

fn millis_label(container: &ObservedContainer, key: &str) -> Option<Duration> {
    container.label(key)?.parse().ok().map(Duration::from_millis)
}

/// A move that could not keep the container's address broke the connections it held there.
fn address_changed(ctx: &Context, service: &str, container: &ObservedContainer, networks: &[String]) {
    if networks.is_empty() {
        return;
    }
    ctx.events.record(
        EventType::Warning,
        "AddressChanged",
        Some(service),
        format!(
            "{} got a new address on {} (the network has no fixed subnet, so addresses cannot be kept); connections it held there were cut",
            container.name,
            networks.join(", ")
        ),
    );
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

/// Creates one container (not started; on its networks without the service alias); its id.
async fn create(
    ctx: &Context,
    state: &DesiredState,
    service: &ResolvedService,
    step: &Step,
) -> Result<String, ApplyError> {
    let Action::Create { slot, .. } = step.action else {
        return Err(engine(step, EngineError::Other { message: "not a create step".to_owned() }));
    };
    let mut spec = service.container_spec(&state.stack, &state.revision, slot);
    if !ctx.ownership.instance().is_empty() {
        spec.labels.insert(labels::INSTANCE.to_owned(), ctx.ownership.instance().to_owned());
    }
    let created = {
        // Creating takes addresses on the networks: never while a container is being moved
        // there (it would take the address that container is about to ask back).
        let _networks = ctx.rotations.allocating(&spec.networks).await;
        ctx.engine.create_container(&spec).await
    };
    match created {
        Ok(id) => Ok(id),
        Err(e) => {
            // A network or volume removed behind our back: forget it so the next try recreates it.
            if matches!(e, EngineError::NotFound { .. }) {
                Context::lock(&ctx.ensured).clear();
            }
            Err(engine(step, e))
        }
    }
}

/// Starts a container on `networks`: never while a container is being moved there, since the
/// start is where the engine hands out the new container's address (it would take the address
/// the moving one is about to ask back).
async fn start_on(ctx: &Context, networks: &[String], id: &str) -> EngineResult<()> {
    let _networks = ctx.rotations.allocating(networks).await;
    ctx.engine.start_container(id).await
}

/// The first 12 characters of a revision or id.
#[must_use]
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
