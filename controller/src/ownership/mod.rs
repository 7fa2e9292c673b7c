//! Which controller may change a stack, and what becomes of a stack it stops managing. Each
//! controller has an [`identity`] (recorded as `pro.memeit.instance` on the containers it
//! creates); a stack is changed only by the instance holding its [`lease`] (a locked file in a
//! directory every controller of the host shares), so two controllers pointed at one stack no
//! longer fight: the second refuses, says who owns the stack and how to hand it over, and takes
//! it only once the first is gone. A renamed Stack is followed by [`retire`]: the old name's
//! containers are removed once the new stack runs.

pub mod identity;
pub mod lease;
pub mod retire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meme_api::status::{Condition, ConditionStatus, ConditionType};
use tokio::sync::{mpsc, watch};

use crate::context::Context;
use crate::events::EventType;
use crate::runtime::Signal;
use lease::{Holder, Lease, Refusal};

/// The reason of the stack condition and event when another instance owns the stack.
pub const OWNED_ELSEWHERE: &str = "StackOwnedElsewhere";

/// Where leases are kept and how long a stopped owner keeps its stack.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The directory every controller of the host shares.
    pub dir: PathBuf,
    /// How long a stack stays with an owner that stopped running.
    pub ttl: Duration,
}

/// This controller's identity and the leases it holds.
#[derive(Debug)]
pub struct Ownership {
    me: Holder,
    leases: Option<LeaseConfig>,
    held: Mutex<BTreeMap<String, Lease>>,
    /// The last refusal said per stack, so that a refusal is announced when it changes only.
    refused: Mutex<BTreeMap<String, String>>,
    /// The stacks this instance manages and those it is retiring (`--state-dir`).
    pub stacks: retire::Stacks,
}

impl Ownership {
    /// An instance that asks nobody: every claim is granted (tests of one controller).
    #[must_use]
    pub fn single(instance: &str) -> Self {
        Self {
            me: Holder {
                instance: instance.to_owned(),
                pid: std::process::id(),
                repo: String::new(),
                path: String::new(),
                since: 0,
            },
            leases: None,
            held: Mutex::default(),
            refused: Mutex::default(),
            stacks: retire::Stacks::in_memory(),
        }
    }

    /// An instance that takes leases in `config.dir` (created `0700` if missing) and remembers
    /// its stacks in `state_dir`.
    ///
    /// # Errors
    /// The lease directory cannot be created.
    pub fn new(me: Holder, config: LeaseConfig, state_dir: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&config.dir)?;
        let mode = std::fs::metadata(&config.dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(dir = %config.dir.display(), mode = format!("{:o}", mode & 0o777), "the lease directory is open to other users: anyone who can open a lease file can hold a stack's lease");
        }
        Ok(Self {
            me,
            leases: Some(config),
            held: Mutex::default(),
            refused: Mutex::default(),
            stacks: retire::Stacks::load(state_dir),
        })
    }

    /// This controller's instance name.
    #[must_use]
    pub fn instance(&self) -> &str {
        &self.me.instance
    }

    /// How often leases are renewed: a quarter of the TTL, so that a live owner is never seen
    /// as gone, and at least every 5 s (the retirement check rides on the same tick).
    #[must_use]
    pub fn tick(&self) -> Duration {
        self.leases
            .as_ref()
            .map_or(Duration::from_secs(2), |c| (c.ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)))
    }

    /// Takes (or checks) the lease of `stack`: cheap when already held (one `stat`).
    ///
    /// # Errors
    /// Another instance owns the stack.
    pub fn claim(&self, stack: &str) -> Result<Claimed, Box<Refusal>> {
        let Some(config) = &self.leases else { return Ok(Claimed::Held) };
        let mut held = Context::lock(&self.held);
        if let Some(lease) = held.get(stack) {
            if lease.still_held() {
                return Ok(Claimed::Held);
            }
            held.remove(stack);
            tracing::warn!(stack, "the lease file was removed: this controller lost the stack");
        }
        match lease::acquire(&config.dir, stack, &self.me, config.ttl) {
            Ok(Ok(lease)) => {
                let previous = lease.previous.clone();
                held.insert(stack.to_owned(), lease);
                Ok(Claimed::Taken { previous })
            }
            Ok(Err(refusal)) => Err(Box::new(refusal)),
            Err(e) => Err(Box::new(Refusal {
                stack: stack.to_owned(),
                holder: None,
                live: true,
                expires_in: None,
                file: lease::file_of(&config.dir, stack),
            }))
            .inspect_err(|_| tracing::error!(stack, error = %e, "cannot use the lease file; changing nothing")),
        }
    }

    /// Gives up the lease of `stack` for good (the stack was retired).
    pub fn release(&self, stack: &str) {
        if let Some(lease) = Context::lock(&self.held).remove(stack) {
            lease.release();
        }
    }

    /// Renews every lease held; returns the stacks whose lease was lost (the file removed).
    pub fn renew(&self) -> Vec<String> {
        let mut held = Context::lock(&self.held);
        let mut lost = Vec::new();
        for (stack, lease) in held.iter() {
            match lease.renew() {
                Ok(true) => {}
                Ok(false) => lost.push(stack.clone()),
                Err(e) => tracing::warn!(stack, error = %e, "cannot renew the lease"),
            }
        }
        for stack in &lost {
            held.remove(stack);
        }
        lost
    }
}

/// A claim that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// This controller already held the lease.
    Held,
    /// It took it now; `previous` is the other instance that had it.
    Taken {
        /// The instance whose expired lease was taken over.
        previous: Option<Holder>,
    },
}

/// Whether this controller may change `stack` now. Takes its lease when free; says so in
/// events and the stack's conditions: a refusal (`Stalled`, reason [`OWNED_ELSEWHERE`]), a
/// take-over, a rename. Called before anything is changed.
pub fn admit(ctx: &Context, stack: &str) -> bool {
    let ownership = &ctx.ownership;
    match ownership.claim(stack) {
        Ok(claimed) => {
            if Context::lock(&ownership.refused).remove(stack).is_some() {
                set_stalled(ctx, None);
            }
            if let Claimed::Taken { previous } = claimed {
                tracing::info!(stack, instance = ownership.instance(), "took the stack's lease");
                if let Some(previous) = previous {
                    ctx.events.record(
                        EventType::Normal,
                        "StackClaimed",
                        None,
                        format!("took stack {stack} over from {previous}, whose lease expired"),
                    );
                }
            }
            if let Some(renamed_from) = ownership.stacks.set_current(stack) {
                ctx.events.record(
                    EventType::Normal,
                    "StackRenamed",
                    None,
                    format!(
                        "the Stack was renamed from {renamed_from} to {stack}: the containers of {renamed_from} are \
                         removed once {stack} runs; its volumes and networks are kept"
                    ),
                );
            }
            true
        }
        Err(refusal) => {
            let message = refusal.to_string();
            // Logged when the holder changes, not at every look (the expiry counts down).
            let who = format!("{:?} {}", refusal.holder, refusal.live);
            if Context::lock(&ownership.refused).insert(stack.to_owned(), who.clone()).as_ref() != Some(&who) {
                tracing::warn!(stack, "{message}");
            }
            ctx.events.record(EventType::Warning, OWNED_ELSEWHERE, None, message.clone());
            set_stalled(ctx, Some(&message));
            false
        }
    }
}

/// Sets (or clears) the stack's `Stalled` condition for [`OWNED_ELSEWHERE`].
fn set_stalled(ctx: &Context, message: Option<&str>) {
    ctx.update_status(|s| {
        s.conditions.retain(|c| c.reason != OWNED_ELSEWHERE);
        if let Some(message) = message {
            s.conditions.push(Condition {
                kind: ConditionType::Stalled,
                status: ConditionStatus::True,
                reason: OWNED_ELSEWHERE.to_owned(),
                message: message.to_owned(),
            });
        }
    });
}

/// Renews the leases and retires renamed stacks, every [`Ownership::tick`], until shutdown.
pub async fn run(ctx: Arc<Context>, signals: mpsc::Sender<Signal>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(ctx.ownership.tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        for stack in ctx.ownership.renew() {
            ctx.events.record(
                EventType::Warning,
                "LeaseLost",
                None,
                format!("the lease file of stack {stack} was removed: this controller stops changing it unless it can take the lease again"),
            );
        }
        if retire::retire_old_stacks(&ctx).await {
            // Services of the new stack that waited for the old one's host ports go on now.
            let _ = signals.send(Signal::Reconcile).await;
        }
    }
}
