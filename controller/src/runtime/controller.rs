//! The controller loop: one task owns the work queue and hands services to at most
//! `concurrency` reconcile tasks, so a service is never reconciled twice at once. Triggers:
//! a new desired state, the resync timer (one list call plans every service), Docker events
//! (forwarded by [`watch_engine`]), requeues and backoff timers.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use meme_api::status::{ReconcileInfo, SyncStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::context::Context;
use crate::docker::{BoxFuture, labels};
use crate::events::EventType;
use crate::reconcile::plan::Phase;
use crate::reconcile::{self, Next, Outcome, ReconcileError};
use crate::runtime::Signal;
use crate::runtime::backoff::Backoffs;
use crate::runtime::queue::WorkQueue;

/// A drift check that takes longer than this is abandoned (the engine hangs); the next
/// resync tries again.
const DRIFT_CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// Time in-flight reconciles get to finish on shutdown before they are abandoned.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

type Finished = (String, String, Result<Outcome, ReconcileError>, Duration);

/// What the loop runs for one service, given the service and the trigger's name:
/// [`reconcile_service`] in the binary; tests wrap or replace it.
pub type ReconcileFn =
    Arc<dyn Fn(Arc<Context>, String, String) -> BoxFuture<'static, Result<Outcome, ReconcileError>> + Send + Sync>;

/// [`reconcile::reconcile_service`] as a [`ReconcileFn`].
#[must_use]
pub fn reconcile_service() -> ReconcileFn {
    Arc::new(|ctx, service, trigger| {
        Box::pin(async move { reconcile::reconcile_service(&ctx, &service, &trigger).await })
    })
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
    let mut tasks: JoinSet<Finished> = JoinSet::new();
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + ctx.config.resync, ctx.config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while tasks.len() < ctx.config.concurrency.max(1) && !ctx.is_suspended() {
            let Some((service, trigger)) = queue.take() else { break };
            let run = reconcile(Arc::clone(&ctx), service.clone(), trigger.clone());
            tasks.spawn(async move {
                let started = Instant::now();
                let result = run.await;
                (service, trigger, result, started.elapsed())
            });
        }
        let next_due = queue.next_due();
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                let Ok((service, trigger, result, elapsed)) = joined else { continue };
                queue.done(&service);
                ctx.metrics.reconciled(&service, result.is_ok(), elapsed.as_secs_f64());
                finish(&ctx, &mut queue, &mut backoffs, &service, &trigger, result);
            }
            Some(signal) = signals.recv() => match signal {
                Signal::DesiredChanged => {
                    if let Some(state) = ctx.desired() {
                        for service in state.services.keys() {
                            queue.add(service, "source");
                        }
                    }
                    drift(&ctx, &mut queue, "source").await;
                }
                Signal::Resync => drift(&ctx, &mut queue, "resync").await,
                Signal::Reconcile => {
                    if let Some(state) = ctx.desired() {
                        for service in state.services.keys() {
                            queue.add(service, "manual");
                        }
                    }
                    drift(&ctx, &mut queue, "manual").await;
                }
                Signal::Service(service, trigger) => queue.add(&service, trigger),
            },
            _ = resync.tick() => drift(&ctx, &mut queue, "resync").await,
            () = sleep_until(next_due), if next_due.is_some() => queue.promote(Instant::now()),
        }
        refresh_sync_status(&ctx, &queue);
    }
    tracing::info!(in_flight = tasks.len(), "shutting down; containers are left running");
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("abandoning reconciles still in flight");
        tasks.abort_all();
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Plans every service from one list call and queues those that need work.
async fn drift(ctx: &Context, queue: &mut WorkQueue, trigger: &'static str) {
    if ctx.is_suspended() {
        return;
    }
    match tokio::time::timeout(DRIFT_CHECK_TIMEOUT, reconcile::drift_check(ctx)).await {
        Ok(Ok(services)) => {
            for service in services {
                queue.add_unless_delayed(&service, trigger);
            }
            ctx.metrics.checked("drift");
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "drift check failed; will retry at the next resync"),
        Err(_) => tracing::warn!("drift check timed out"),
    }
}

fn finish(
    ctx: &Context,
    queue: &mut WorkQueue,
    backoffs: &mut Backoffs,
    service: &str,
    trigger: &str,
    result: Result<Outcome, ReconcileError>,
) {
    let ok = result.is_ok();
    match result {
        Ok(outcome) => {
            backoffs.reset(service);
            match outcome.next {
                Next::RequeueAfter(d) => queue.add_at(service, Instant::now() + d, "requeue"),
                Next::AwaitChange => {}
            }
            if outcome.phase == Phase::Synced {
                wake_dependents(ctx, queue, service);
            }
        }
        Err(e) => {
            let delay = backoffs.next(service);
            tracing::warn!(service, error = %e, retry_in = ?delay, "reconcile failed");
            queue.add_at(service, Instant::now() + delay, "backoff");
        }
    }
    let time =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    ctx.update_status(|s| {
        s.last_reconcile = Some(ReconcileInfo {
            time,
            trigger: trigger.to_owned(),
            service: service.to_owned(),
            result: if ok { "success" } else { "error" }.to_owned(),
        });
    });
}

/// Queues the services waiting for `service` to become ready.
fn wake_dependents(ctx: &Context, queue: &mut WorkQueue, service: &str) {
    let Some(state) = ctx.desired() else { return };
    for (name, s) in &state.services {
        let waiting = s.deployment.spec.depends_on.iter().any(|d| d == service);
        let not_ready =
            ctx.with_status(|st| st.services.iter().find(|x| &x.name == name).is_none_or(|x| x.phase != "Synced"));
        if waiting && not_ready {
            queue.add(name, "dependency");
        }
    }
}

/// The stack-level sync status from the services' phases and the source.
fn refresh_sync_status(ctx: &Context, queue: &WorkQueue) {
    let status = ctx.update_status(|s| {
        s.sync_status = if s.suspended {
            SyncStatus::Suspended
        } else if s.applied.is_none() || s.source.error.is_some() {
            SyncStatus::OutOfSync
        } else if s.services.iter().any(|x| x.phase == "Degraded") {
            SyncStatus::Degraded
        } else if !queue.is_idle() || s.services.iter().any(|x| x.phase != "Synced") {
            SyncStatus::Progressing
        } else {
            SyncStatus::Synced
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
                        if event.action == "destroy" {
                            Context::lock(&ctx.stopping).remove(&event.id);
                        }
                        if event.action == "die" && !Context::lock(&ctx.stopping).contains(&event.id) {
                            *Context::lock(&ctx.restarts).entry(service.clone()).or_default() += 1;
                            ctx.events.record(EventType::Warning, "ContainerDied", Some(&service), format!("container {} died", &event.id[..event.id.len().min(12)]));
                        }
                        let _ = signals.send(Signal::Service(service, "docker-event")).await;
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
