//! The controller loop: one task owns the work queue and hands services to at most
//! `concurrency` reconcile tasks, so a service is never reconciled twice at once. Triggers:
//! a new desired state, the resync timer (one list call plans every service), Docker events
//! (forwarded by [`watch_engine`]), requeues and backoff timers.
//!
//! The loop itself never waits on the engine: reconciles and the drift check run as tasks whose
//! results come back to it, so a hanging engine cannot hold up shutdown, signals or the status.
//! A reconcile that panics is a failed reconcile like any other (logged, counted, backed off),
//! not a service wedged until restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use meme_api::status::{Condition, ReconcileInfo, SyncStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};

use crate::context::Context;
use crate::docker::{BoxFuture, EngineError, labels};
use crate::events::EventType;
use crate::notify::Watchdog;
use crate::reconcile::plan::Phase;
use crate::reconcile::{self, Next, Outcome, ReconcileError};
use crate::runtime::backoff::Backoffs;
use crate::runtime::queue::WorkQueue;
use crate::runtime::{Signal, Trigger};

/// A drift check that takes longer than this is abandoned (the engine hangs); the next
/// resync tries again. It runs beside the loop, so this bounds only how long drift goes
/// unnoticed, not how long the loop waits.
const DRIFT_CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// Time in-flight reconciles get to finish on shutdown before they are abandoned.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the loop runs for one service, given the service and the trigger's name:
/// [`reconcile_service`] in the binary; tests wrap or replace it.
pub type ReconcileFn =
    Arc<dyn Fn(Arc<Context>, String, Trigger) -> BoxFuture<'static, Result<Outcome, ReconcileError>> + Send + Sync>;

/// [`reconcile::reconcile_service`] as a [`ReconcileFn`].
#[must_use]
pub fn reconcile_service() -> ReconcileFn {
    Arc::new(|ctx, service, trigger| {
        Box::pin(async move { reconcile::reconcile_service(&ctx, &service, trigger).await })
    })
}

/// How a reconcile task ended.
#[derive(Debug)]
enum Ended {
    /// It returned.
    Returned(Result<Outcome, ReconcileError>),
    /// It panicked (the message) or was cancelled: a bug, retried with backoff all the same.
    Crashed(String),
}

/// A reconcile task in flight: what the loop needs once it ends, found by the task's id (a
/// panic's [`JoinError`] carries only that).
struct InFlight {
    service: String,
    trigger: Trigger,
    started: Instant,
}

/// A finished drift check: its trigger, and the services needing work (`None`: it timed out).
type DriftResult = (Trigger, Option<Result<Vec<String>, EngineError>>);

/// The drift check in flight beside the loop (at most one) and whether another was asked for
/// meanwhile: that one runs next, so a desired state put in force during a check is checked too.
#[derive(Default)]
struct DriftChecks {
    tasks: JoinSet<DriftResult>,
    again: Option<Trigger>,
}

impl DriftChecks {
    fn request(&mut self, ctx: &Arc<Context>, trigger: Trigger) {
        if ctx.is_suspended() {
            return;
        }
        if !self.tasks.is_empty() {
            self.again.get_or_insert(trigger);
            return;
        }
        let ctx = Arc::clone(ctx);
        self.tasks.spawn(async move {
            (trigger, tokio::time::timeout(DRIFT_CHECK_TIMEOUT, reconcile::drift_check(&ctx)).await.ok())
        });
    }

    /// Handles a finished check: queues the services that need work, starts the next check if
    /// one was asked for.
    fn finished(&mut self, ctx: &Arc<Context>, queue: &mut WorkQueue, joined: Result<DriftResult, JoinError>) {
        match joined {
            Ok((trigger, Some(Ok(services)))) => {
                for service in services {
                    queue.add_unless_delayed(&service, trigger);
                }
                ctx.metrics.checked("drift");
            }
            Ok((_, Some(Err(e)))) => tracing::warn!(error = %e, "drift check failed; will retry at the next resync"),
            Ok((_, None)) => tracing::warn!(timeout = ?DRIFT_CHECK_TIMEOUT, "drift check timed out"),
            Err(e) => tracing::error!(error = %panic_message(e), "drift check panicked; will retry at the next resync"),
        }
        if let Some(trigger) = self.again.take() {
            self.request(ctx, trigger);
        }
    }
}

/// Runs the loop until `shutdown` turns true, reconciling services with `reconcile`.
/// Containers are left running.
pub async fn run(
    ctx: Arc<Context>,
    reconcile: ReconcileFn,
    mut signals: mpsc::Receiver<Signal>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut queue = WorkQueue::default();
    let mut backoffs = Backoffs::default();
    let mut tasks: JoinSet<Result<Outcome, ReconcileError>> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, InFlight> = HashMap::new();
    let mut drift = DriftChecks::default();
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + ctx.config.resync, ctx.config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // systemd's watchdog is fed here, on each turn of this loop, so a loop that stops turning
    // gets the controller restarted; its tick only makes sure an idle loop turns often enough.
    let mut watchdog = Watchdog::from_env();
    let mut watchdog_tick = tokio::time::interval(watchdog.tick().unwrap_or(Duration::from_secs(3600)));
    watchdog_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        watchdog.feed(Instant::now());
        while tasks.len() < ctx.config.concurrency.max(1) && !ctx.is_suspended() {
            let Some((service, trigger)) = queue.take() else { break };
            // Called inside the task: a panic while making the future is the task's too.
            let (reconcile, ctx, s, t) = (Arc::clone(&reconcile), Arc::clone(&ctx), service.clone(), trigger);
            let task = tasks.spawn(async move { reconcile(ctx, s, t).await });
            in_flight.insert(task.id(), InFlight { service, trigger, started: Instant::now() });
        }
        let next_due = queue.next_due();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, ended) = match joined {
                    Ok((id, result)) => (id, Ended::Returned(result)),
                    Err(e) => (e.id(), Ended::Crashed(panic_message(e))),
                };
                let Some(task) = in_flight.remove(&id) else { continue };
                queue.done(&task.service);
                finish(&ctx, &mut queue, &mut backoffs, &task, ended);
            }
            Some(joined) = drift.tasks.join_next(), if !drift.tasks.is_empty() => {
                drift.finished(&ctx, &mut queue, joined);
            }
            Some(signal) = signals.recv() => match signal {
                Signal::DesiredChanged => {
                    if let Some(state) = ctx.desired() {
                        for service in state.services.keys() {
                            queue.add(service, Trigger::Source);
                        }
                    }
                    drift.request(&ctx, Trigger::Source);
                }
                Signal::Resync => drift.request(&ctx, Trigger::Resync),
                Signal::Reconcile => {
                    if let Some(state) = ctx.desired() {
                        for service in state.services.keys() {
                            queue.add(service, Trigger::Manual);
                        }
                    }
                    drift.request(&ctx, Trigger::Manual);
                }
                Signal::Service(service, trigger) => queue.add(&service, trigger),
            },
            _ = resync.tick() => drift.request(&ctx, Trigger::Resync),
            () = sleep_until(next_due), if next_due.is_some() => queue.promote(Instant::now()),
            _ = watchdog_tick.tick(), if watchdog.tick().is_some() => {}
        }
        refresh_sync_status(&ctx, &queue);
    }
    // A drift check changes nothing: it is dropped (aborted) at once.
    drop(drift);
    tracing::info!(in_flight = tasks.len(), "shutting down; containers are left running");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("abandoning reconciles still in flight");
        tasks.abort_all();
    }
}

/// The message of a task's panic (or why it did not finish).
fn panic_message(e: JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Records how a reconcile ended: metrics, the next run (requeue, backoff), dependents woken
/// up, and the last reconcile in the status.
fn finish(ctx: &Context, queue: &mut WorkQueue, backoffs: &mut Backoffs, task: &InFlight, ended: Ended) {
    let service = task.service.as_str();
    let ok = matches!(ended, Ended::Returned(Ok(_)));
    // A pruned service's series were removed by its reconcile: recording it would bring them back.
    let desired = ctx.desired().is_some_and(|d| d.services.contains_key(service));
    if desired {
        ctx.metrics.init_service(service);
    }
    if desired || !ok {
        ctx.metrics.reconciled(service, ok, task.started.elapsed().as_secs_f64());
    }
    match ended {
        Ended::Returned(Ok(outcome)) => {
            backoffs.reset(service);
            match outcome.next {
                Next::RequeueAfter(d) => queue.add_at(service, Instant::now() + d, Trigger::Requeue),
                Next::ProbeAfter(d) => queue.add_at(service, Instant::now() + d, crate::runtime::queue::PROBE),
                Next::AwaitChange => {}
            }
            if outcome.phase == Phase::Synced {
                wake_dependents(ctx, queue, service);
            }
        }
        Ended::Returned(Err(e)) => {
            ctx.metrics.reconcile_error(service, e.kind());
            let delay = backoffs.next(service);
            tracing::warn!(service, error = %e, kind = e.kind(), retry_in = ?delay, "reconcile failed");
            queue.add_at(service, Instant::now() + delay, Trigger::Backoff);
        }
        Ended::Crashed(message) => {
            ctx.metrics.reconcile_error(service, crate::metrics::PANIC);
            let delay = backoffs.next(service);
            tracing::error!(
                service,
                trigger = %task.trigger,
                panic = %message,
                retry_in = ?delay,
                "reconcile panicked (a bug); retrying with backoff"
            );
            ctx.events.record(
                EventType::Warning,
                "ReconcilePanicked",
                Some(service),
                format!(
                    "reconcile panicked (a bug; the controller log has the message); next attempt in {}s",
                    delay.as_secs_f64().ceil()
                ),
            );
            queue.add_at(service, Instant::now() + delay, Trigger::Backoff);
        }
    }
    let time =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    ctx.update_status(|s| {
        s.last_reconcile = Some(ReconcileInfo {
            time,
            trigger: task.trigger.to_string(),
            service: service.to_owned(),
            result: if ok { "success" } else { "error" }.to_owned(),
        });
    });
}

/// Queues the services waiting for `service` to become ready.
///
/// Runs after every Synced reconcile, readiness probes included (every service every
/// `healthCheck.interval`): only the services that depend on it are looked up in the status.
/// Looking every service up made it O(N²): 4 % of the controller's CPU at 100 services probed
/// every second (perf, `meme-bench idle --services 100`), all of it in string comparisons.
fn wake_dependents(ctx: &Context, queue: &mut WorkQueue, service: &str) {
    let Some(state) = ctx.desired() else { return };
    for (name, s) in &state.services {
        if !s.deployment.spec.depends_on.iter().any(|d| d == service) {
            continue;
        }
        let not_ready =
            ctx.with_status(|st| st.services.iter().find(|x| &x.name == name).is_none_or(|x| x.phase != Phase::Synced));
        if not_ready {
            queue.add(name, Trigger::Dependency);
        }
    }
}

/// The stack-level sync status from the services' phases and the source.
fn refresh_sync_status(ctx: &Context, queue: &WorkQueue) {
    let status = ctx.update_status(|s| {
        let applied = s.applied.as_ref().map(|a| a.revision.clone());
        // Only a service's verdict about the applied revision counts: one still showing the
        // phase it had at an older revision has not been judged at this one yet.
        let current = |x: &meme_api::status::ServiceStatus| applied.as_deref() == Some(x.revision.as_str());
        s.sync_status = if s.suspended {
            SyncStatus::Suspended
        } else if s.applied.is_none() || s.source.error.is_some() || s.conditions.iter().any(Condition::holds) {
            // A stack condition (another controller owns the stack): what git says is not applied.
            SyncStatus::OutOfSync
        } else if s.services.iter().any(|x| x.phase == Phase::Degraded && current(x)) {
            SyncStatus::Degraded
        } else if !queue.is_idle() || s.services.iter().any(|x| x.phase != Phase::Synced || !current(x)) {
            SyncStatus::Progressing
        } else {
            SyncStatus::Synced
        };
        s.sync_revision = match s.sync_status {
            SyncStatus::OutOfSync => s.source.error_revision.clone().or(applied),
            _ => applied,
        };
        s.sync_status
    });
    ctx.metrics.sync_status(status);
    ctx.metrics.workqueue_depth(queue.depth());
}

/// Forwards Docker events about our containers to the loop, reconnecting with backoff when
/// the stream breaks (engine stopped or restarted); after a reconnect everything is re-planned.
pub async fn watch_engine(ctx: Arc<Context>, signals: mpsc::Sender<Signal>, mut shutdown: watch::Receiver<bool>) {
    let filter = vec![(labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned())];
    // Reconnect quickly: once the engine is back, everything is re-planned at once.
    let mut backoffs = Backoffs::with_limits(Duration::from_millis(250), Duration::from_secs(5));
    let mut connected_before = false;
    loop {
        let mut stream = ctx.engine.events(&filter);
        if connected_before {
            let _ = signals.send(Signal::Resync).await;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                item = futures_util::StreamExt::next(&mut stream) => match item {
                    Some(Ok(event)) => {
                        backoffs.reset("events");
                        let stack = ctx.desired().map(|d| d.stack.clone());
                        if event.labels.get(labels::STACK) != stack.as_ref() {
                            continue;
                        }
                        let Some(service) = event.labels.get(labels::SERVICE).cloned() else { continue };
                        if event.action == "destroy" && !Context::lock(&ctx.stopping).remove(&event.id) {
                            ctx.services.removed_outside(&service);
                        }
                        if event.action == "die" && !Context::lock(&ctx.stopping).contains(&event.id) {
                            ctx.services.restarted(&service);
                            ctx.events.record(EventType::Warning, "ContainerDied", Some(&service), format!("container {} died", &event.id[..event.id.len().min(12)]));
                        }
                        let _ = signals.send(Signal::Service(service, Trigger::DockerEvent)).await;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "docker event stream failed");
                        break;
                    }
                    None => break,
                },
            }
        }
        connected_before = true;
        let delay = backoffs.next("events");
        tracing::info!(retry_in = ?delay, "reconnecting to the docker event stream");
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
