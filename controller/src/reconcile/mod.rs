//! Reconciling one service, top to bottom: observe its containers (one list call), judge their
//! readiness, ask the pure [`plan`] what to do, [`apply`] it, and record status and events.
//! The runtime calls [`reconcile_service`] from its work queue; [`drift_check`] plans every
//! service from one list call without touching anything, to find those needing work.

pub mod apply;
pub mod desired;
pub mod memory;
pub mod plan;
pub mod readiness;
pub mod reload;
pub mod rotation;

use std::time::{Duration, Instant, SystemTime};

use meme_api::status::{Condition, ConditionStatus, ConditionType, ContainerStatus, ServiceStatus};

use crate::context::Context;
use crate::docker::{EngineError, ObservedContainer, labels};
use crate::events::EventType;
use crate::reconcile::apply::{Applied, ApplyError, Target};
use crate::reconcile::desired::{DesiredService, ResolveError, ResolvedService};
use crate::reconcile::plan::{CreateCause, Phase, Plan, PlanContext, Reason, Replica, Rotation};
use crate::runtime::Trigger;

/// What the runtime should do next with a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Look again after this long.
    RequeueAfter(Duration),
    /// Settled: probe the ready containers again after this long.
    ProbeAfter(Duration),
    /// Nothing to do until something changes.
    AwaitChange,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Listing containers failed.
    #[error("list containers: {0}")]
    Observe(#[source] EngineError),
    /// The service's secrets could not be read.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A step failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl ReconcileError {
    /// The reason the service's status gives for it.
    #[must_use]
    pub fn reason(&self) -> Reason {
        match self {
            Self::Observe(_) => Reason::EngineUnavailable,
            Self::Resolve(_) => Reason::SecretMissing,
            Self::Apply(ApplyError::ImageMissing { .. }) => Reason::ImageMissing,
            Self::Apply(e) => match e.engine_error() {
                Some(EngineError::Pull { message, .. }) if image_does_not_exist(message) => Reason::ImageMissing,
                Some(EngineError::Pull { .. }) => Reason::ImagePullFailed,
                Some(EngineError::PortConflict { .. }) => Reason::PortConflict,
                Some(EngineError::Foreign { .. }) => Reason::ForeignObject,
                Some(EngineError::Unavailable { .. }) => Reason::EngineUnavailable,
                _ => Reason::ApplyFailed,
            },
        }
    }

    /// Whether the service will not progress without a human (`Stalled`): a missing secret, an
    /// image that does not exist, a host port something else holds. An engine that does not
    /// answer or a registry error is retried (`Ready=False`/`Unknown`, `Degraded`), not stalled.
    #[must_use]
    pub fn stalls(&self) -> bool {
        matches!(
            self.reason(),
            Reason::SecretMissing | Reason::ImageMissing | Reason::PortConflict | Reason::ForeignObject
        )
    }

    /// A short, bounded label for metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Observe(_) => "engine",
            Self::Resolve(_) => "secret",
            Self::Apply(ApplyError::ImageMissing { .. }) => "image",
            Self::Apply(ApplyError::Engine { source: EngineError::Pull { .. }, .. }) => "pull",
            Self::Apply(ApplyError::Engine { source: EngineError::Foreign { .. }, .. }) => "foreign",
            Self::Apply(_) => "engine",
        }
    }
}

/// The outcome of one reconcile, for metrics and the runtime.
#[derive(Debug)]
pub struct Outcome {
    /// What to do next.
    pub next: Next,
    /// What was done.
    pub applied: Applied,
    /// The service's phase after the plan.
    pub phase: Phase,
}

/// A registry's answer that the image does not exist (as opposed to an outage): Docker Hub
/// and the distribution registry say `manifest unknown` or `not found`.
fn image_does_not_exist(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("manifest unknown") || m.contains("not found") || m.contains("does not exist")
}

/// Reconciles one service toward the desired state in force.
///
/// # Errors
/// The engine failed, a secret is unreadable or a step failed; the runtime retries with backoff.
#[tracing::instrument(name = "reconcile", skip_all, fields(service = %name, revision, trigger = %trigger))]
pub async fn reconcile_service(ctx: &Context, name: &str, trigger: Trigger) -> Result<Outcome, ReconcileError> {
    // Nothing is ever done (and nothing pruned) before a valid revision is in force.
    let Some(state) = ctx.desired() else {
        return Ok(Outcome { next: Next::AwaitChange, applied: Applied::default(), phase: Phase::Progressing });
    };
    tracing::Span::current().record("revision", apply::short(&state.revision));
    // Another controller owns the stack: change nothing (the stack's conditions say why).
    if !crate::ownership::admit(ctx, &state.stack) {
        return Ok(Outcome { next: Next::AwaitChange, applied: Applied::default(), phase: Phase::Progressing });
    }
    if trigger == Trigger::Probe {
        if let Some(outcome) = probe_settled(ctx, &state, name).await {
            return Ok(outcome);
        }
    } else {
        ctx.services.unsettle(name);
    }
    let observed = match ctx.engine.list_containers(&labels::service_filter(&state.stack, name)).await {
        Ok(observed) => observed,
        Err(e) => {
            // Nobody can tell whether it is ready: say so rather than repeat the last verdict.
            ctx.update_status(|s| {
                if let Some(service) = s.services.iter_mut().find(|x| x.name == name) {
                    for c in service.conditions.iter_mut().filter(|c| c.kind == ConditionType::Ready) {
                        c.status = ConditionStatus::Unknown;
                        c.reason = Reason::EngineUnavailable.to_string();
                        c.message = format!("the engine does not answer: {e}");
                    }
                }
            });
            return Err(ReconcileError::Observe(e));
        }
    };

    let Some(service) = state.services.get(name) else {
        // Prune: no manifest names it any more. Volumes are never touched.
        let rotation = vec![Rotation::Out; observed.len()];
        let plan = plan::plan(None, &replicas_of(ctx, &observed, None, &[], &rotation), &PlanContext::default());
        let applied = apply::apply(ctx, Target::Pruned(name), &plan.steps, &observed).await?;
        ctx.update_status(|s| s.services.retain(|x| x.name != name));
        ctx.metrics.forget_service(name);
        ctx.services.forget(name);
        return Ok(Outcome { next: Next::AwaitChange, applied, phase: Phase::Synced });
    };
    let resolved = match state.resolve(service, &ctx.config.secrets_dir) {
        Ok(r) => r,
        Err(e) => {
            let e = ReconcileError::from(e);
            ctx.events.record(EventType::Warning, e.reason().as_str(), Some(name), e.to_string());
            set_failed_status(ctx, service, &e);
            return Err(e);
        }
    };

    let was_synced = ctx.with_status(|s| s.services.iter().any(|x| x.name == name && x.phase == Phase::Synced));
    let (readiness, rotation) =
        tokio::join!(readiness_of(ctx, service, &resolved, &observed), rotation_of(ctx, name, &resolved, &observed));
    let rotation = rotation.map_err(ReconcileError::Observe)?;
    let replicas = replicas_of(ctx, &observed, Some(&resolved.spec_hash), &readiness, &rotation);
    let plan_ctx = plan_context(ctx, service, &resolved);
    let plan = plan::plan(Some(&resolved.replicas()), &replicas, &plan_ctx);
    for step in &plan.steps {
        tracing::info!(step = %step.reason, "applying");
    }
    let applied = match apply::apply(ctx, Target::Desired(&state, &resolved), &plan.steps, &observed).await {
        Ok(applied) => applied,
        Err(e) => {
            let e = ReconcileError::from(e);
            ctx.events.record(EventType::Warning, e.reason().as_str(), Some(name), e.to_string());
            record_status(ctx, &resolved, &replicas, &observed, &plan, Some(&e));
            return Err(e);
        }
    };
    record_metrics(ctx, name, &plan, applied, was_synced);
    let identity = resolved.identity();
    if plan.rollout_failed {
        block_rollout(ctx, name, &identity);
    } else if plan.phase == Phase::Synced {
        ctx.services.rollout_succeeded(name);
    }
    record_status(ctx, &resolved, &replicas, &observed, &plan, None);

    let next = match (plan.requeue_after, ctx.services.retry_at(name, &identity)) {
        _ if applied.reload_failed => Next::RequeueAfter(plan::PROGRESS_POLL),
        (Some(d), _) => Next::RequeueAfter(d),
        (None, Some(retry_at)) => {
            Next::RequeueAfter(retry_at.saturating_duration_since(Instant::now()).max(Duration::from_millis(100)))
        }
        (None, _) if !plan.steps.is_empty() => Next::RequeueAfter(plan::PROGRESS_POLL),
        // Ready containers are probed again every healthCheck.interval: one that stops
        // answering is taken out of rotation.
        (None, _) => service.readiness().probe().map_or(Next::AwaitChange, |p| Next::ProbeAfter(p.interval)),
    };
    let settled = plan.phase == Phase::Synced
        && plan.steps.is_empty()
        && replicas.iter().all(|r| r.ready && r.spec_hash == resolved.spec_hash);
    if matches!(next, Next::ProbeAfter(_)) && settled {
        ctx.services.settle(name, &state.revision, observed.into());
    } else {
        ctx.services.unsettle(name);
    }
    Ok(Outcome { next, applied, phase: plan.phase })
}

/// The periodic probe of a settled service, without a list call: its ready containers, as last
/// seen, are probed again (those due); when every verdict stays what it was, nothing else can
/// have changed that the Docker events (a container died, was removed) or the resync's list
/// would not report, so there is nothing to plan. `None`: not settled at this revision, or a
/// verdict changed — the caller reconciles in full.
///
/// Measured (`meme-bench scale`, 200 services probed every second): the full reconcile listed
/// the service's containers at every probe, 200 list calls a second.
async fn probe_settled(ctx: &Context, state: &desired::DesiredState, name: &str) -> Option<Outcome> {
    let service = state.services.get(name)?;
    let containers = ctx.services.settled(name, &state.revision)?;
    let rule = service.readiness();
    let probe = rule.probe()?;
    let network = service.template.networks.first().map(|n| labels::object_name(&service.template.stack, n));
    let now = SystemTime::now();
    let checks = containers.iter().map(|c| {
        let (rule, network) = (&rule, network.as_deref());
        async move {
            let before = ctx.readiness.get(&c.id).map(|v| v.ready);
            let age = now.duration_since(c.created).unwrap_or_default();
            before == Some(readiness::assess(c, rule, age, network, true, &ctx.readiness).await)
        }
    });
    let unchanged = futures_util::future::join_all(checks).await.into_iter().all(|same| same);
    if !unchanged {
        ctx.services.unsettle(name);
        return None;
    }
    Some(Outcome { next: Next::ProbeAfter(probe.interval), applied: Applied::default(), phase: Phase::Synced })
}

/// Whether each observed container carries the service alias on the networks it should be on
/// (inspected once per container).
async fn rotation_of(
    ctx: &Context,
    name: &str,
    resolved: &ResolvedService,
    observed: &[ObservedContainer],
) -> Result<Vec<Rotation>, EngineError> {
    let networks: Vec<Vec<String>> = observed.iter().map(|c| resolved.networks_for(c)).collect();
    let looks = observed.iter().zip(&networks).map(|(c, n)| ctx.rotations.observe(ctx.engine.as_ref(), c, name, n));
    futures_util::future::try_join_all(looks).await
}

/// Plans every service from one list call of the whole stack and cached readiness, without
/// probing or changing anything: the services whose plan is not empty (or not Synced), plus
/// those whose containers exist but no manifest names.
///
/// # Errors
/// The list call failed.
pub async fn drift_check(ctx: &Context) -> Result<Vec<String>, EngineError> {
    let Some(state) = ctx.desired() else { return Ok(Vec::new()) };
    let all = match ctx.engine.list_containers(&labels::stack_filter(&state.stack)).await {
        Ok(all) => {
            ctx.set_engine_answered(true);
            all
        }
        Err(e) => {
            ctx.set_engine_answered(!matches!(e, EngineError::Unavailable { .. }));
            return Err(e);
        }
    };
    // Not this controller's stack (yet): nothing to do; looked at again at the next resync.
    if !crate::ownership::admit(ctx, &state.stack) {
        return Ok(Vec::new());
    }
    let mut by_service: std::collections::BTreeMap<&str, Vec<ObservedContainer>> = std::collections::BTreeMap::new();
    for c in &all {
        if let Some(service) = c.label(labels::SERVICE) {
            by_service.entry(service).or_default().push(c.clone());
        }
    }
    let mut needs_work: Vec<String> =
        by_service.keys().filter(|s| !state.services.contains_key(**s)).map(|s| (*s).to_owned()).collect();
    for (name, service) in &state.services {
        let observed = by_service.remove(name.as_str()).unwrap_or_default();
        let Ok(resolved) = state.resolve(service, &ctx.config.secrets_dir) else {
            needs_work.push(name.clone());
            continue;
        };
        let ready: Vec<bool> =
            observed.iter().map(|c| ctx.readiness.get(&c.id).is_some_and(|v| v.ready) && c.is_running()).collect();
        // A container whose rotation was never looked at needs a reconcile to look.
        let Some(rotation) = observed
            .iter()
            .map(|c| ctx.rotations.known(c, &resolved.networks_for(c)))
            .collect::<Option<Vec<Rotation>>>()
        else {
            needs_work.push(name.clone());
            continue;
        };
        let replicas = replicas_of(ctx, &observed, Some(&resolved.spec_hash), &ready, &rotation);
        let plan = plan::plan(Some(&resolved.replicas()), &replicas, &plan_context(ctx, service, &resolved));
        if !plan.steps.is_empty() || plan.phase != Phase::Synced {
            needs_work.push(name.clone());
        }
    }
    let live: std::collections::HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
    ctx.readiness.retain(&|id| live.contains(id));
    ctx.rotations.retain(&|id| live.contains(id));
    ctx.reloads.retain(&|id| live.contains(id));
    Ok(needs_work)
}

fn record_metrics(ctx: &Context, name: &str, plan: &Plan, applied: Applied, was_synced: bool) {
    let m = &ctx.metrics;
    m.action(name, "create", applied.created);
    m.action(name, "replace", applied.replaced);
    m.action(name, "start", applied.started);
    m.action(name, "remove", applied.removed);
    m.action(name, "pull", applied.pulled);
    // Stopped containers started again are always drift; missing ones are drift only when the
    // service had converged (not a cold start or a scale-up).
    m.drift_corrected(name, "stopped", applied.started);
    // Missing ones: all of them when the service had converged, else as many as were seen
    // removed by someone else (a burst of removals lands while the first replacements start).
    let missing = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, plan::Action::Create { cause: CreateCause::Missing, .. }))
        .count();
    let missing = u32::try_from(missing).unwrap_or(u32::MAX);
    let removed = ctx.services.corrected_removals(name, missing, was_synced, plan.phase == Phase::Synced);
    m.drift_corrected(name, "removed", removed);
}

/// Readiness of each observed container: current ones are probed, old ones judged from cache.
async fn readiness_of(
    ctx: &Context,
    service: &DesiredService,
    resolved: &ResolvedService,
    observed: &[ObservedContainer],
) -> Vec<bool> {
    let rule = service.readiness();
    let network = service.template.networks.first().map(|n| labels::object_name(&service.template.stack, n));
    let now = SystemTime::now();
    let checks = observed.iter().map(|c| {
        let current = c.label(labels::SPEC_HASH) == Some(resolved.spec_hash.as_str());
        let age = now.duration_since(c.created).unwrap_or_default();
        let rule = &rule;
        let network = network.as_deref();
        // Current containers are probed when due: at every look while they start, then every
        // healthCheck.interval (see `readiness`). Old ones keep their last verdict: probing a
        // container that was just removed would wait out the timeout on a dead address.
        async move {
            if current {
                readiness::assess(c, rule, age, network, true, &ctx.readiness).await
            } else {
                c.is_running() && ctx.readiness.get(&c.id).is_none_or(|v| v.ready)
            }
        }
    });
    futures_util::future::join_all(checks).await
}

fn replicas_of(
    ctx: &Context,
    observed: &[ObservedContainer],
    desired_hash: Option<&str>,
    ready: &[bool],
    rotation: &[Rotation],
) -> Vec<Replica> {
    let now = SystemTime::now();
    observed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ready = ready.get(i).copied().unwrap_or(false);
            Replica {
                id: c.id.clone(),
                name: c.name.clone(),
                spec_hash: c.label(labels::SPEC_HASH).unwrap_or_default().to_owned(),
                files_hash: ctx.reloads.files_hash(c),
                rotation: rotation.get(i).copied().unwrap_or_default(),
                movable: !c.publishes_ports,
                image: c.image.clone(),
                slot: c.label(labels::REPLICA).and_then(|s| s.parse().ok()).unwrap_or(0),
                state: c.state,
                exit_code: c.exit_code,
                age: now.duration_since(c.created).unwrap_or_default(),
                ready,
                ever_ready: ready || ctx.readiness.get(&c.id).is_some_and(|v| v.ever_ready),
                // Only a container to be replaced needs its field digests (to say what changed).
                fields: c
                    .label(labels::FIELDS)
                    .filter(|_| c.label(labels::SPEC_HASH) != desired_hash)
                    .and_then(|f| serde_json::from_str(f).ok())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn plan_context(ctx: &Context, service: &DesiredService, resolved: &ResolvedService) -> PlanContext {
    let unready_dependencies =
        service.deployment.spec.depends_on.iter().filter(|d| !ctx.is_service_ready(d)).cloned().collect();
    let rollout = ctx.services.rollout_history(service.name(), &resolved.identity(), Instant::now());
    let reload_failed = ctx.services.has_reload_failed(service.name(), &resolved.files_hash);
    PlanContext { unready_dependencies, rollout, reload_failed }
}

fn block_rollout(ctx: &Context, name: &str, identity: &str) {
    let (failures, delay) = ctx.services.rollout_failed(name, identity, Instant::now());
    ctx.events.record(
        EventType::Warning,
        Reason::RolloutBackoff.as_str(),
        Some(name),
        format!("rollout failed {failures} time(s); next attempt in {}s", delay.as_secs()),
    );
}

fn set_failed_status(ctx: &Context, service: &DesiredService, error: &ReconcileError) {
    let mut status =
        ctx.with_status(|s| s.services.iter().find(|x| x.name == service.name()).cloned()).unwrap_or_default();
    status.name = service.name().to_owned();
    status.image.clone_from(&service.deployment.spec.image);
    status.desired_replicas = service.deployment.spec.replicas;
    status.phase = Phase::Degraded;
    status.revision = ctx.revision_of(service);
    status.conditions = conditions(&Verdict {
        phase: Phase::Degraded,
        reason: error.reason(),
        message: &error.to_string(),
        ready: status.ready_replicas,
        desired: status.desired_replicas,
        stalled: error.stalls(),
    });
    ctx.set_service_status(status);
}

fn record_status(
    ctx: &Context,
    resolved: &ResolvedService,
    replicas: &[Replica],
    observed: &[ObservedContainer],
    plan: &Plan,
    error: Option<&ReconcileError>,
) {
    let spec = &resolved.service.deployment.spec;
    let current: Vec<&Replica> = replicas.iter().filter(|r| r.spec_hash == resolved.spec_hash).collect();
    // Like a Kubernetes Deployment: READY counts every ready container (old ones serving during a
    // rollout too); UP-TO-DATE counts those running the desired spec.
    let ready = u32::try_from(replicas.iter().filter(|r| r.ready).count()).unwrap_or(u32::MAX);
    let (phase, reason, message) = match error {
        Some(e) => (Phase::Degraded, e.reason(), e.to_string()),
        None => (plan.phase, plan.reason, plan.message.clone()),
    };
    let containers = observed
        .iter()
        .zip(replicas)
        .map(|(c, r)| ContainerStatus {
            id: c.id.clone(),
            name: c.name.clone(),
            state: format!("{:?}", c.state).to_lowercase(),
            status: c.status.clone(),
            ready: r.ready,
            current: r.spec_hash == resolved.spec_hash,
            revision: c.label(labels::REVISION).unwrap_or_default().to_owned(),
            image_id: c.image_id.clone(),
            created: c
                .created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
        })
        .collect();
    let image_id = observed
        .iter()
        .find(|c| c.label(labels::SPEC_HASH) == Some(resolved.spec_hash.as_str()))
        .map(|c| c.image_id.clone());
    let name = resolved.service.name().to_owned();
    let restarts = ctx.services.restarts(&name);
    let updated = u32::try_from(current.len()).unwrap_or(u32::MAX);
    ctx.metrics.init_service(&name);
    ctx.metrics.replicas(&name, spec.replicas, ready, updated);
    ctx.set_service_status(ServiceStatus {
        conditions: conditions(&Verdict {
            phase,
            reason,
            message: &message,
            ready,
            desired: spec.replicas,
            stalled: error.is_some_and(ReconcileError::stalls),
        }),
        phase,
        revision: ctx.revision_of(&resolved.service),
        name,
        image: spec.image.clone(),
        image_id,
        desired_replicas: spec.replicas,
        ready_replicas: ready,
        updated_replicas: updated,
        restarts,
        spec_hash: resolved.spec_hash.clone(),
        containers,
    });
}

/// What the conditions of a service are made from.
struct Verdict<'a> {
    phase: Phase,
    reason: Reason,
    message: &'a str,
    ready: u32,
    desired: u32,
    /// It will not progress without a human.
    stalled: bool,
}

/// Ready / Progressing / Degraded / Stalled conditions of a service. They never contradict
/// each other: Ready holds only when the service is Synced, and when it does not its message
/// says why (never "2/2 ready" next to a failed rollout); exactly one of Degraded and Stalled
/// is reported while the phase is Degraded.
fn conditions(v: &Verdict<'_>) -> Vec<Condition> {
    let cond = |kind: ConditionType, holds: bool, reason: &str, message: String| Condition {
        kind,
        status: ConditionStatus::from_bool(holds),
        reason: reason.to_owned(),
        message,
    };
    let (phase, reason, message, ready, desired) = (v.phase, v.reason.as_str(), v.message, v.ready, v.desired);
    let is_ready = ready >= desired && phase == Phase::Synced;
    let (ready_reason, ready_message) = if is_ready {
        ("MinimumReplicasAvailable", format!("{ready}/{desired} ready"))
    } else if phase == Phase::Degraded {
        (reason, format!("{message} ({ready}/{desired} containers ready)"))
    } else {
        ("ReplicasNotReady", format!("{ready}/{desired} containers ready; {message}"))
    };
    let mut out = vec![
        cond(ConditionType::Ready, is_ready, ready_reason, ready_message),
        cond(
            ConditionType::Progressing,
            phase == Phase::Progressing,
            reason,
            if phase == Phase::Progressing { message.to_owned() } else { String::new() },
        ),
    ];
    if phase == Phase::Degraded {
        let kind = if v.stalled { ConditionType::Stalled } else { ConditionType::Degraded };
        out.push(cond(kind, true, reason, message.to_owned()));
    }
    out
}
