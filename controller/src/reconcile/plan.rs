//! The pure planner: desired state of one service × the containers observed for it → the
//! ordered steps that move one step closer, each with a reason a human can read. No I/O, no
//! clock: the caller passes the time and every readiness verdict in.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use meme_api::v1alpha1::StrategyType;

use crate::docker::ContainerState;

/// What the planner needs to know about the desired state of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredReplicas {
    /// Service name.
    pub service: String,
    /// Spec hash of the desired container template (everything but file contents).
    pub spec_hash: String,
    /// Hash of the desired file contents (empty without files).
    pub files_hash: String,
    /// Image reference (for messages).
    pub image: String,
    /// Desired number of containers.
    pub replicas: u32,
    /// Rollout strategy.
    pub strategy: StrategyType,
    /// A new container not ready by then has failed.
    pub progress_deadline: Duration,
    /// Whether a change of file contents alone is reloaded in place (`spec.reload`).
    pub reload: bool,
    /// Digest per part of the template, to say what changed.
    pub fields: BTreeMap<String, String>,
}

/// Whether a container carries its service alias, i.e. is reachable by the service name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rotation {
    /// On every network it joined.
    In,
    /// On none.
    #[default]
    Out,
    /// On some networks only (a crash between two network calls).
    Partial,
}

/// One observed container of the service, with the readiness verdict of the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// The spec hash it was created from.
    pub spec_hash: String,
    /// The hash of the files it holds (those it was created with, or reloaded since).
    pub files_hash: String,
    /// Its image reference.
    pub image: String,
    /// Replica slot (from its label; 0 when unknown).
    pub slot: u32,
    /// Docker state.
    pub state: ContainerState,
    /// Exit code when exited.
    pub exit_code: Option<i64>,
    /// Time since it was created.
    pub age: Duration,
    /// Ready now (running, healthy, min-ready elapsed).
    pub ready: bool,
    /// Was ready at some point, as far as this controller has seen.
    pub ever_ready: bool,
    /// Whether it is reachable through the service alias.
    pub rotation: Rotation,
    /// Whether it may be moved in and out of rotation: not when it publishes host ports (the
    /// move would drop the port mapping); such a container carries its alias from creation.
    pub movable: bool,
    /// Digest per part of the template it was created from (empty when unknown).
    pub fields: BTreeMap<String, String>,
}

impl Replica {
    fn is_serving(&self) -> bool {
        matches!(self.state, ContainerState::Running | ContainerState::Restarting | ContainerState::Paused)
    }

    /// Not ready past the deadline, and never was: the rollout that made it failed.
    fn has_failed(&self, deadline: Duration) -> bool {
        !self.ready && !self.ever_ready && self.age >= deadline
    }

    fn state_text(&self) -> String {
        match (self.state, self.exit_code) {
            (ContainerState::Exited, Some(code)) => format!("exited ({code})"),
            (state, _) => format!("{state:?}").to_lowercase(),
        }
    }
}

/// What the caller remembers about earlier rollouts of the desired spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutHistory {
    /// Rollouts of this spec that failed so far (0: none).
    pub failures: u32,
    /// The last one failed recently: do not try again before `retry_in`.
    pub blocked: bool,
    /// Time left before the next attempt, for messages.
    pub retry_in: Option<Duration>,
}

/// Context beyond the service itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// Dependencies that are not ready yet; creation waits for them.
    pub unready_dependencies: Vec<String>,
    /// Earlier rollouts of this spec.
    pub rollout: RolloutHistory,
    /// Reloading the desired files in place failed: replace the containers instead.
    pub reload_failed: bool,
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create and start a container in this replica slot (it joins no alias yet).
    Create {
        /// Replica slot.
        slot: u32,
        /// Why.
        cause: CreateCause,
    },
    /// Start a stopped container.
    Start {
        /// Container id.
        id: String,
    },
    /// Put a ready container in rotation: give it the service alias.
    Admit {
        /// Container id.
        id: String,
    },
    /// Take a container that is not ready out of rotation; it keeps running.
    Evict {
        /// Container id.
        id: String,
    },
    /// Copy the desired files into a running container and run the service's reload action.
    Reload {
        /// Container id.
        id: String,
    },
    /// Take out of rotation, wait the drain period, stop (with the grace period) and remove.
    Remove {
        /// Container id.
        id: String,
        /// Keep the tail of its logs for the event (a failed rollout).
        keep_logs: bool,
    },
    /// Stop-first replacement (host ports): pull and create the new containers without
    /// starting them, then retire the old ones, then start the new: only stop and start fall
    /// inside the gap.
    Recreate {
        /// The containers replaced.
        remove: Vec<String>,
        /// The slots of the new containers.
        slots: Vec<u32>,
        /// Containers of the desired spec that exist but are stopped: started with the new.
        start: Vec<String>,
    },
}

/// An action and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// Why, for people: `create backend#2: missing`.
    pub reason: String,
    /// The event recorded when the step is done.
    pub event: StepEvent,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

pub use meme_api::status::{Phase, Reason};

/// The event a step records once done (its `reason` in the events API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepEvent {
    /// A container was created (and started).
    Created,
    /// A stopped container was started.
    Started,
    /// An old container was retired for a new spec.
    Replaced,
    /// A container was removed because replicas went down.
    ScaledDown,
    /// A container was removed because no manifest names its service.
    Pruned,
    /// A dead or incomplete container was removed.
    Removed,
    /// A new container that never became ready was removed.
    RolloutFailed,
    /// A container got its service alias.
    InRotation,
    /// A container lost its service alias.
    OutOfRotation,
    /// New files were reloaded in place.
    Reloaded,
}

impl StepEvent {
    /// The PascalCase word of the event.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Started => "Started",
            Self::Replaced => "Replaced",
            Self::ScaledDown => "ScaledDown",
            Self::Pruned => "Pruned",
            Self::Removed => "Removed",
            Self::RolloutFailed => "RolloutFailed",
            Self::InRotation => "InRotation",
            Self::OutOfRotation => "OutOfRotation",
            Self::Reloaded => "Reloaded",
        }
    }
}

/// Why a container is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CreateCause {
    /// It should exist and does not: a cold start, a scale-up, or one removed behind the
    /// controller's back (drift, once the service had converged).
    Missing,
    /// It replaces an older one in a rollout.
    Rollout,
}

/// The planner's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Where the service stands.
    pub phase: Phase,
    /// Why the service is in that phase.
    pub reason: Reason,
    /// Human-readable message.
    pub message: String,
    /// A rollout failed in this plan (its new container is being removed).
    pub rollout_failed: bool,
    /// Look again after this long even if nothing happens.
    pub requeue_after: Option<Duration>,
}

/// How soon to look again while work is under way.
pub const PROGRESS_POLL: Duration = Duration::from_millis(200);
/// How soon to look again while a container created moments ago is becoming ready: a rollout
/// step waits on exactly this, so it is short (a list call and a probe, for a few seconds).
pub const FRESH_POLL: Duration = Duration::from_millis(50);
/// A container younger than this is polled at [`FRESH_POLL`].
pub const FRESH_AGE: Duration = Duration::from_secs(5);
/// How soon to look again while waiting for dependencies.
pub const DEPENDENCY_POLL: Duration = Duration::from_secs(1);

/// Plans the next steps for a service. `desired` is `None` when no manifest names the
/// service any more (prune).
///
/// Traffic follows readiness: a container is admitted to the service alias once ready and
/// evicted when it stops being ready, and every container leaving (replaced, scaled down,
/// pruned) is taken out of rotation before it is stopped (by [`Action::Remove`]). Admissions
/// come first in a plan, so a rollout never leaves the alias without a ready container while
/// a ready one exists.
#[must_use]
#[allow(clippy::too_many_lines)] // one decision table, read top to bottom
pub fn plan(desired: Option<&DesiredReplicas>, observed: &[Replica], ctx: &PlanContext) -> Plan {
    let Some(desired) = desired else {
        let steps = observed
            .iter()
            .map(|r| remove(r, StepEvent::Pruned, format!("remove {}: no longer in manifests", r.name)))
            .collect::<Vec<_>>();
        let phase = if steps.is_empty() { Phase::Synced } else { Phase::Progressing };
        return Plan {
            steps,
            phase,
            reason: Reason::Pruned,
            message: "no longer in manifests".into(),
            rollout_failed: false,
            requeue_after: None,
        };
    };
    let svc = &desired.service;
    let replicas = desired.replicas as usize;
    let mut steps = Vec::new();

    // Containers Docker gave up on are removed whatever their spec.
    for r in observed.iter().filter(|r| r.state == ContainerState::Dead) {
        steps.push(remove(r, StepEvent::Removed, format!("remove {}: dead", r.name)));
    }
    let live: Vec<&Replica> = observed.iter().filter(|r| r.state != ContainerState::Dead).collect();
    // Current: the desired spec and files. Reloadable: the desired spec, other file contents,
    // running, and the service reloads in place; it is current once reloaded.
    let reloadable = |r: &Replica| {
        desired.reload
            && !ctx.reload_failed
            && r.spec_hash == desired.spec_hash
            && r.files_hash != desired.files_hash
            && r.state == ContainerState::Running
    };
    let (current, old): (Vec<&Replica>, Vec<&Replica>) = live
        .into_iter()
        .partition(|r| (r.spec_hash == desired.spec_hash && r.files_hash == desired.files_hash) || reloadable(r));

    // A container created and never started is not known to be complete (the controller may
    // have died before its files or second network were added): it is removed and made again,
    // never started or adopted as it is.
    let (incomplete, current): (Vec<&Replica>, Vec<&Replica>) =
        current.into_iter().partition(|r| r.state == ContainerState::Created);
    for r in &incomplete {
        steps.push(remove(
            r,
            StepEvent::Removed,
            format!("remove {}: created but never started, so maybe incomplete", r.name),
        ));
    }

    let failed: Vec<&Replica> =
        current.iter().copied().filter(|r| r.is_serving() && r.has_failed(desired.progress_deadline)).collect();
    let ready: Vec<&Replica> = current.iter().copied().filter(|r| r.ready).collect();
    // Starting: not ready yet and within the deadline, or stopped and started by this plan.
    let starting: Vec<&Replica> = current
        .iter()
        .copied()
        .filter(|r| !r.ready && (!r.has_failed(desired.progress_deadline) || r.state == ContainerState::Exited))
        .collect();
    let old_serving: Vec<&Replica> = old.iter().copied().filter(|r| r.is_serving()).collect();

    // Scale down: too many current containers (never-ready ones first, then highest slot).
    let mut kept_current = current.len();
    if current.len() > replicas {
        let mut extra: Vec<&Replica> = current.clone();
        extra.sort_by_key(|r| (r.ready, std::cmp::Reverse(r.slot)));
        for r in extra.into_iter().take(current.len() - replicas) {
            steps.push(remove(r, StepEvent::ScaledDown, format!("remove {}: scaled down to {replicas}", r.name)));
            kept_current -= 1;
        }
    }
    // Current containers someone stopped are started (unless scaled away).
    for r in current.iter().filter(|r| r.state == ContainerState::Exited) {
        if !removes(&steps, &r.id) {
            steps.push(Step {
                action: Action::Start { id: r.id.clone() },
                reason: format!("start {}: {}", r.name, r.state_text()),
                event: StepEvent::Started,
            });
        }
    }
    // New files reach the running containers that stay.
    for r in current.iter().filter(|r| r.files_hash != desired.files_hash) {
        if !removes(&steps, &r.id) {
            steps.push(Step {
                action: Action::Reload { id: r.id.clone() },
                reason: format!("reload {}: {}", r.name, change(r, desired)),
                event: StepEvent::Reloaded,
            });
        }
    }

    // A new container that never became ready while older ones still serve: the rollout
    // failed. Remove it (its logs go into the event); the old ones keep serving.
    if !failed.is_empty() && !old_serving.is_empty() {
        let failed: Vec<&&Replica> = failed.iter().filter(|r| !removes(&steps, &r.id)).collect();
        for r in failed {
            steps.push(Step {
                action: Action::Remove { id: r.id.clone(), keep_logs: true },
                reason: format!(
                    "remove {}: not ready after progressDeadline {}s; rollout of {} failed",
                    r.name,
                    desired.progress_deadline.as_secs(),
                    desired.image
                ),
                event: StepEvent::RolloutFailed,
            });
        }
        return Plan {
            steps: with_rotation(steps, observed),
            phase: Phase::Degraded,
            reason: Reason::ProgressDeadlineExceeded,
            message: format!(
                "rollout of {} not ready within {}s; {} old container(s) keep serving",
                desired.image,
                desired.progress_deadline.as_secs(),
                old_serving.len()
            ),
            rollout_failed: true,
            requeue_after: None,
        };
    }

    let free_slots = || {
        let used: Vec<u32> = current.iter().map(|r| r.slot).collect();
        (1u32..).filter(move |s| !used.contains(s))
    };
    let deps_wait = |steps: Vec<Step>| Plan {
        steps: with_rotation(steps, observed),
        phase: Phase::Progressing,
        reason: Reason::WaitingForDependencies,
        message: format!("waiting for {} to be ready", ctx.unready_dependencies.join(", ")),
        rollout_failed: false,
        requeue_after: Some(DEPENDENCY_POLL),
    };

    if old.is_empty() {
        // Cold start or scale up: create every missing container at once.
        let missing = replicas.saturating_sub(kept_current);
        if missing > 0 {
            if !ctx.unready_dependencies.is_empty() {
                return deps_wait(steps);
            }
            for slot in free_slots().take(missing) {
                steps.push(Step {
                    action: Action::Create { slot, cause: CreateCause::Missing },
                    reason: format!("create {svc}#{slot}: missing"),
                    event: StepEvent::Created,
                });
            }
        }
        return settle(desired, with_rotation(steps, observed), &ready, &starting, &failed, replicas, ctx);
    }

    // A rollout: old containers exist.
    if replicas == 0 {
        for r in &old {
            steps.push(remove(r, StepEvent::ScaledDown, format!("remove {}: scaled down to 0", r.name)));
        }
        return settle(desired, with_rotation(steps, observed), &ready, &starting, &failed, replicas, ctx);
    }
    // Old containers that do not serve are in nobody's way.
    for r in old.iter().filter(|r| !r.is_serving()) {
        steps.push(remove(
            r,
            StepEvent::Replaced,
            format!("remove {}: {} and replaced by {}", r.name, r.state_text(), change(r, desired)),
        ));
    }
    if ctx.rollout.blocked && ready.is_empty() {
        // The last attempt at this spec failed: keep the old version serving until backoff
        // allows another try.
        let next = ctx.rollout.retry_in.map_or_else(String::new, |d| format!("; next attempt in {}s", d.as_secs()));
        return Plan {
            steps: with_rotation(steps, observed),
            phase: Phase::Degraded,
            reason: Reason::RolloutBackoff,
            message: format!(
                "rollout of {} failed {} time(s); the old version keeps serving{next}",
                desired.image, ctx.rollout.failures
            ),
            rollout_failed: false,
            requeue_after: None,
        };
    }

    match desired.strategy {
        StrategyType::Recreate => {
            if !old_serving.is_empty() {
                if !ctx.unready_dependencies.is_empty() {
                    return deps_wait(steps);
                }
                let slots: Vec<u32> = free_slots().take(replicas.saturating_sub(kept_current)).collect();
                let names: Vec<String> =
                    old_serving.iter().map(|r| format!("{} ({})", r.name, change(r, desired))).collect();
                // Current containers waiting to be started (a start that failed on a taken
                // port, say) start after the old ones stopped, with the new ones.
                let mut start = Vec::new();
                steps.retain(|s| match &s.action {
                    Action::Start { id } => {
                        start.push(id.clone());
                        false
                    }
                    _ => true,
                });
                steps.push(Step {
                    action: Action::Recreate {
                        remove: old_serving.iter().map(|r| r.id.clone()).collect(),
                        slots,
                        start,
                    },
                    reason: format!(
                        "replace {}: Recreate, new container created before the old one stops",
                        names.join(", ")
                    ),
                    event: StepEvent::Replaced,
                });
            } else {
                let missing = replicas.saturating_sub(kept_current);
                if missing > 0 && ctx.unready_dependencies.is_empty() {
                    for slot in free_slots().take(missing) {
                        steps.push(Step {
                            action: Action::Create { slot, cause: CreateCause::Rollout },
                            reason: format!("create {svc}#{slot}: {}", desired.image),
                            event: StepEvent::Created,
                        });
                    }
                }
            }
        }
        StrategyType::RollingUpdate => {
            // Start-first, one at a time: wait for the new one, then retire one old one.
            if starting.is_empty() {
                if ready.len() + old_serving.len() > replicas {
                    let mut retire = old_serving.clone();
                    retire.sort_by_key(|r| (r.ready, r.slot));
                    let surplus = ready.len() + old_serving.len() - replicas;
                    for r in retire.into_iter().take(surplus) {
                        steps.push(remove(
                            r,
                            StepEvent::Replaced,
                            format!("replace {}: {}", r.name, change(r, desired)),
                        ));
                    }
                } else if ready.len() < replicas {
                    if !ctx.unready_dependencies.is_empty() {
                        return deps_wait(steps);
                    }
                    if let Some(slot) = free_slots().next() {
                        steps.push(Step {
                            action: Action::Create { slot, cause: CreateCause::Rollout },
                            reason: format!("create {svc}#{slot}: rolling update to {}", desired.image),
                            event: StepEvent::Created,
                        });
                    }
                }
            }
        }
    }
    let mut plan = settle(desired, with_rotation(steps, observed), &ready, &starting, &failed, replicas, ctx);
    if plan.phase == Phase::Synced {
        plan.phase = Phase::Progressing;
        plan.reason = Reason::RollingUpdate;
        plan.message = format!("replacing {} old container(s)", old.len());
    }
    plan
}

fn remove(r: &Replica, event: StepEvent, reason: String) -> Step {
    Step { action: Action::Remove { id: r.id.clone(), keep_logs: false }, reason, event }
}

/// Whether the steps remove (or replace) this container.
fn removes(steps: &[Step], id: &str) -> bool {
    steps.iter().any(|s| match &s.action {
        Action::Remove { id: x, .. } => x == id,
        Action::Recreate { remove, .. } => remove.iter().any(|x| x == id),
        _ => false,
    })
}

/// Puts the rotation steps first: ready containers that stay are admitted, containers that
/// stay but are not ready are evicted (a stopped one too, so that it comes back without the
/// alias when started). Leaving containers are taken out by their own removal.
fn with_rotation(steps: Vec<Step>, observed: &[Replica]) -> Vec<Step> {
    let mut rotation = Vec::new();
    for r in observed.iter().filter(|r| r.movable && r.state != ContainerState::Dead && !removes(&steps, &r.id)) {
        let ready = r.ready && r.state == ContainerState::Running;
        if ready && r.rotation != Rotation::In {
            rotation.push(Step {
                action: Action::Admit { id: r.id.clone() },
                reason: format!("put {} in rotation: ready", r.name),
                event: StepEvent::InRotation,
            });
        } else if !ready && r.rotation != Rotation::Out {
            let why = if r.is_serving() { "not ready".to_owned() } else { r.state_text() };
            rotation.push(Step {
                action: Action::Evict { id: r.id.clone() },
                reason: format!("take {} out of rotation: {why}", r.name),
                event: StepEvent::OutOfRotation,
            });
        }
    }
    rotation.extend(steps);
    rotation
}

/// What differs between an old container and the desired spec, in a few words.
fn change(r: &Replica, desired: &DesiredReplicas) -> String {
    if r.fields.is_empty() {
        return if r.image == desired.image {
            "spec changed".to_owned()
        } else {
            format!("image {} -> {}", r.image, desired.image)
        };
    }
    meme_api::template::describe_change(&r.fields, &desired.fields)
}

/// The phase once the steps are planned.
fn settle(
    desired: &DesiredReplicas,
    steps: Vec<Step>,
    ready: &[&Replica],
    starting: &[&Replica],
    failed: &[&Replica],
    replicas: usize,
    ctx: &PlanContext,
) -> Plan {
    let creates = steps.iter().any(|s| matches!(s.action, Action::Create { .. } | Action::Recreate { .. }));
    let (phase, reason, message, requeue_after) = if !failed.is_empty() {
        (
            Phase::Degraded,
            Reason::ProgressDeadlineExceeded,
            format!("{} container(s) not ready after {}s", failed.len(), desired.progress_deadline.as_secs()),
            None,
        )
    } else if !steps.is_empty() {
        (
            Phase::Progressing,
            Reason::Reconciling,
            steps.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            Some(if creates { FRESH_POLL } else { PROGRESS_POLL }),
        )
    } else if !starting.is_empty() {
        let poll = if starting.iter().any(|r| r.age < FRESH_AGE) { FRESH_POLL } else { PROGRESS_POLL };
        (
            Phase::Progressing,
            Reason::WaitingForReadiness,
            format!("{} container(s) becoming ready", starting.len()),
            Some(poll),
        )
    } else if ready.len() < replicas {
        (Phase::Progressing, Reason::Reconciling, format!("{}/{replicas} ready", ready.len()), Some(PROGRESS_POLL))
    } else {
        (Phase::Synced, Reason::Ready, format!("{replicas}/{replicas} ready"), None)
    };
    // A spec whose rollout failed before stays Degraded while it is tried again, until it
    // succeeds: a retry is not fresh progress.
    if phase == Phase::Progressing && ctx.rollout.failures > 0 {
        return Plan {
            steps,
            phase: Phase::Degraded,
            reason: Reason::RolloutRetrying,
            message: format!(
                "retrying the rollout of {} (failed {} time(s) before): {message}",
                desired.image, ctx.rollout.failures
            ),
            rollout_failed: false,
            requeue_after,
        };
    }
    Plan { steps, phase, reason, message, rollout_failed: false, requeue_after }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(hash: &str, replicas: u32, strategy: StrategyType) -> DesiredReplicas {
        DesiredReplicas {
            service: "web".into(),
            spec_hash: hash.into(),
            files_hash: String::new(),
            image: format!("app:{hash}"),
            replicas,
            strategy,
            progress_deadline: Duration::from_secs(60),
            reload: false,
            fields: BTreeMap::from([("image".into(), format!("app:{hash}")), ("env.A".into(), hash.into())]),
        }
    }

    /// A container; ready ones are in rotation, others out.
    fn replica(id: &str, hash: &str, slot: u32, state: ContainerState, ready: bool) -> Replica {
        Replica {
            id: id.into(),
            name: format!("s-web-{hash}-{slot}"),
            spec_hash: hash.into(),
            files_hash: String::new(),
            image: format!("app:{hash}"),
            slot,
            state,
            exit_code: (state == ContainerState::Exited).then_some(137),
            age: Duration::from_secs(1),
            ready,
            ever_ready: ready,
            rotation: if ready { Rotation::In } else { Rotation::Out },
            movable: true,
            fields: BTreeMap::from([("image".into(), format!("app:{hash}")), ("env.A".into(), hash.into())]),
        }
    }

    fn actions(plan: &Plan) -> Vec<&Action> {
        plan.steps.iter().map(|s| &s.action).collect()
    }

    fn admit(id: &str) -> Action {
        Action::Admit { id: id.into() }
    }

    fn evict(id: &str) -> Action {
        Action::Evict { id: id.into() }
    }

    fn remove_(id: &str) -> Action {
        Action::Remove { id: id.into(), keep_logs: false }
    }

    #[test]
    fn plan_should_create_every_missing_replica_on_cold_start() {
        let p = plan(Some(&desired("a", 3, StrategyType::RollingUpdate)), &[], &PlanContext::default());
        assert_eq!(
            actions(&p),
            [
                &Action::Create { slot: 1, cause: CreateCause::Missing },
                &Action::Create { slot: 2, cause: CreateCause::Missing },
                &Action::Create { slot: 3, cause: CreateCause::Missing }
            ]
        );
        assert_eq!(p.steps[0].reason, "create web#1: missing");
        assert_eq!(p.phase, Phase::Progressing);
    }

    #[test]
    fn plan_should_do_nothing_when_synced() {
        let obs =
            [replica("1", "a", 1, ContainerState::Running, true), replica("2", "a", 2, ContainerState::Running, true)];
        let p = plan(Some(&desired("a", 2, StrategyType::RollingUpdate)), &obs, &PlanContext::default());
        assert!(p.steps.is_empty());
        assert_eq!((p.phase, p.message.as_str()), (Phase::Synced, "2/2 ready"));
        assert_eq!(p.requeue_after, None);
    }

    #[test]
    fn plan_should_admit_a_container_only_once_it_is_ready() {
        let d = desired("a", 1, StrategyType::RollingUpdate);
        let mut new = replica("n", "a", 1, ContainerState::Running, false);
        let p = plan(Some(&d), std::slice::from_ref(&new), &PlanContext::default());
        assert!(p.steps.is_empty(), "not ready: not in rotation, nothing to do");
        assert_eq!(p.reason, Reason::WaitingForReadiness);
        new.ready = true;
        let p = plan(Some(&d), std::slice::from_ref(&new), &PlanContext::default());
        assert_eq!(actions(&p), [&admit("n")]);
        assert_eq!(p.steps[0].reason, "put s-web-a-1 in rotation: ready");
        new.rotation = Rotation::In;
        assert_eq!(plan(Some(&d), &[new], &PlanContext::default()).phase, Phase::Synced);
    }

    #[test]
    fn plan_should_evict_a_container_that_stops_being_ready_and_admit_it_again() {
        let d = desired("a", 2, StrategyType::RollingUpdate);
        let mut sick = replica("1", "a", 1, ContainerState::Running, true);
        sick.ready = false;
        let obs = [sick, replica("2", "a", 2, ContainerState::Running, true)];
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&evict("1")], "it keeps running, out of the alias");
        assert_eq!(p.steps[0].reason, "take s-web-a-1 out of rotation: not ready");
        // A partial rotation (a crash between two networks) is completed either way.
        let mut partial = replica("3", "a", 1, ContainerState::Running, true);
        partial.rotation = Rotation::Partial;
        let p = plan(Some(&desired("a", 1, StrategyType::RollingUpdate)), &[partial], &PlanContext::default());
        assert_eq!(actions(&p), [&admit("3")]);
    }

    #[test]
    fn plan_should_never_move_a_container_publishing_host_ports() {
        let d = desired("a", 1, StrategyType::Recreate);
        let mut caddy = replica("1", "a", 1, ContainerState::Running, false);
        caddy.rotation = Rotation::In;
        caddy.movable = false;
        let p = plan(Some(&d), std::slice::from_ref(&caddy), &PlanContext::default());
        assert!(p.steps.is_empty(), "no eviction: it would close the host port: {:?}", p.steps);
        caddy.ready = true;
        assert_eq!(plan(Some(&d), &[caddy], &PlanContext::default()).phase, Phase::Synced);
    }

    #[test]
    fn plan_should_evict_a_stopped_container_before_starting_it() {
        let d = desired("a", 1, StrategyType::RollingUpdate);
        let mut stopped = replica("1", "a", 1, ContainerState::Exited, false);
        stopped.rotation = Rotation::In;
        let p = plan(Some(&d), &[stopped], &PlanContext::default());
        assert_eq!(actions(&p), [&evict("1"), &Action::Start { id: "1".into() }]);
        assert_eq!(p.steps[0].reason, "take s-web-a-1 out of rotation: exited (137)");
    }

    #[test]
    fn plan_should_roll_start_first_one_at_a_time() {
        let d = desired("b", 2, StrategyType::RollingUpdate);
        let old = [
            replica("o1", "a", 1, ContainerState::Running, true),
            replica("o2", "a", 2, ContainerState::Running, true),
        ];
        // 1. one new container, old ones untouched
        let p = plan(Some(&d), &old, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Create { slot: 1, cause: CreateCause::Rollout }]);
        assert_eq!(p.steps[0].reason, "create web#1: rolling update to app:b");
        // 2. while it is not ready: wait, out of rotation
        let mut obs = old.to_vec();
        obs.push(replica("n1", "b", 1, ContainerState::Running, false));
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert!(p.steps.is_empty());
        assert_eq!(
            (p.phase, p.requeue_after),
            (Phase::Progressing, Some(FRESH_POLL)),
            "a fresh container is polled fast"
        );
        // 3. ready: in rotation first, then one old retires (its removal drains it)
        obs[2].ready = true;
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&admit("n1"), &remove_("o1")]);
        assert_eq!(p.steps[1].reason, "replace s-web-a-1: image app:a -> app:b, env A changed");
        // 4. then the next new one
        obs[2].rotation = Rotation::In;
        obs.remove(0);
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Create { slot: 2, cause: CreateCause::Rollout }]);
        // 5. both ready: the last old goes
        obs.push(replica("n2", "b", 2, ContainerState::Running, true));
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&remove_("o2")]);
        obs.remove(0);
        assert_eq!(plan(Some(&d), &obs, &PlanContext::default()).phase, Phase::Synced);
    }

    #[test]
    fn plan_should_remove_a_failed_new_container_and_keep_the_old_serving() {
        let d = desired("b", 1, StrategyType::RollingUpdate);
        let mut new = replica("n1", "b", 1, ContainerState::Running, false);
        new.age = Duration::from_secs(61);
        let obs = [replica("o1", "a", 1, ContainerState::Running, true), new];
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Remove { id: "n1".into(), keep_logs: true }]);
        assert!(p.rollout_failed);
        assert_eq!((p.phase, p.reason), (Phase::Degraded, Reason::ProgressDeadlineExceeded));
        // While the retry is blocked nothing new is created, and the status says when.
        let blocked = PlanContext {
            rollout: RolloutHistory { failures: 1, blocked: true, retry_in: Some(Duration::from_secs(9)) },
            ..PlanContext::default()
        };
        let p = plan(Some(&d), &obs[..1], &blocked);
        assert!(p.steps.is_empty());
        assert_eq!((p.phase, p.reason), (Phase::Degraded, Reason::RolloutBackoff));
        assert_eq!(p.message, "rollout of app:b failed 1 time(s); the old version keeps serving; next attempt in 9s");
        // The retry itself stays Degraded: it is not fresh progress.
        let retrying = PlanContext { rollout: RolloutHistory { failures: 1, ..RolloutHistory::default() }, ..blocked };
        let p = plan(Some(&d), &obs[..1], &retrying);
        assert_eq!(actions(&p), [&Action::Create { slot: 1, cause: CreateCause::Rollout }]);
        assert_eq!((p.phase, p.reason), (Phase::Degraded, Reason::RolloutRetrying));
    }

    #[test]
    fn plan_should_recreate_by_creating_before_stopping() {
        let d = desired("b", 1, StrategyType::Recreate);
        let obs = [replica("o1", "a", 1, ContainerState::Running, true)];
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Recreate { remove: vec!["o1".into()], slots: vec![1], start: Vec::new() }]);
        assert_eq!(
            p.steps[0].reason,
            "replace s-web-a-1 (image app:a -> app:b, env A changed): Recreate, new container created before the old one stops"
        );
        // A new container that stopped starts after the old one stopped, not before (the old
        // one holds the host port).
        let obs = [
            replica("o1", "a", 1, ContainerState::Running, true),
            replica("n1", "b", 1, ContainerState::Exited, false),
        ];
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(
            actions(&p),
            [&Action::Recreate { remove: vec!["o1".into()], slots: Vec::new(), start: vec!["n1".into()] }]
        );
        // One created and never started (a crash between create and start, or a start refused
        // on a taken port) may be incomplete: it is made again, never started as it is.
        let obs = [
            replica("o1", "a", 1, ContainerState::Running, true),
            replica("n1", "b", 1, ContainerState::Created, false),
        ];
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(
            actions(&p),
            [&remove_("n1"), &Action::Recreate { remove: vec!["o1".into()], slots: vec![1], start: Vec::new() }]
        );
        assert_eq!(p.steps[0].reason, "remove s-web-b-1: created but never started, so maybe incomplete");
    }

    #[test]
    fn plan_should_reload_files_in_place_when_the_service_reloads() {
        let mut d = desired("a", 2, StrategyType::RollingUpdate);
        d.files_hash = "new".into();
        let obs =
            [replica("1", "a", 1, ContainerState::Running, true), replica("2", "a", 2, ContainerState::Running, true)];
        // Without reload, a files change replaces the containers.
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Create { slot: 1, cause: CreateCause::Rollout }]);
        // With reload, they are reloaded where they run.
        d.reload = true;
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Reload { id: "1".into() }, &Action::Reload { id: "2".into() }]);
        assert_eq!(p.phase, Phase::Progressing);
        // A failed reload falls back to a replace.
        let p = plan(Some(&d), &obs, &PlanContext { reload_failed: true, ..PlanContext::default() });
        assert_eq!(actions(&p), [&Action::Create { slot: 1, cause: CreateCause::Rollout }]);
        // Any other change is never reloaded.
        let p = plan(Some(&desired("b", 2, StrategyType::RollingUpdate)), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Create { slot: 1, cause: CreateCause::Rollout }]);
    }

    #[test]
    fn plan_should_start_stopped_containers_and_remove_dead_ones() {
        let d = desired("a", 2, StrategyType::RollingUpdate);
        let obs =
            [replica("1", "a", 1, ContainerState::Exited, false), replica("2", "a", 2, ContainerState::Dead, false)];
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(
            actions(&p),
            [
                &remove_("2"),
                &Action::Start { id: "1".into() },
                &Action::Create { slot: 2, cause: CreateCause::Missing }
            ]
        );
        assert_eq!(p.steps[1].reason, "start s-web-a-1: exited (137)");
    }

    #[test]
    fn plan_should_scale_down_and_up() {
        let d = desired("a", 1, StrategyType::RollingUpdate);
        let obs: Vec<_> = (1..=3).map(|i| replica(&i.to_string(), "a", i, ContainerState::Running, true)).collect();
        let p = plan(Some(&d), &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&remove_("3"), &remove_("2")]);
        let d = desired("a", 2, StrategyType::RollingUpdate);
        let p = plan(Some(&d), &obs[..1], &PlanContext::default());
        assert_eq!(actions(&p), [&Action::Create { slot: 2, cause: CreateCause::Missing }]);
    }

    #[test]
    fn plan_should_wait_for_dependencies_before_creating() {
        let ctx = PlanContext { unready_dependencies: vec!["redis".into()], ..PlanContext::default() };
        let p = plan(Some(&desired("a", 1, StrategyType::RollingUpdate)), &[], &ctx);
        assert!(p.steps.is_empty());
        assert_eq!((p.reason, p.message.as_str()), (Reason::WaitingForDependencies, "waiting for redis to be ready"));
    }

    #[test]
    fn plan_should_prune_a_service_no_manifest_names() {
        let obs = [replica("1", "a", 1, ContainerState::Running, true)];
        let p = plan(None, &obs, &PlanContext::default());
        assert_eq!(actions(&p), [&remove_("1")]);
        assert_eq!(p.steps[0].reason, "remove s-web-a-1: no longer in manifests");
    }

    #[test]
    fn plan_should_report_degraded_but_keep_a_lone_failed_container() {
        let mut r = replica("1", "a", 1, ContainerState::Running, false);
        r.age = Duration::from_secs(120);
        let p = plan(Some(&desired("a", 1, StrategyType::RollingUpdate)), &[r], &PlanContext::default());
        assert!(p.steps.is_empty(), "nothing else serves: keep it (out of rotation)");
        assert_eq!(p.phase, Phase::Degraded);
    }
}
