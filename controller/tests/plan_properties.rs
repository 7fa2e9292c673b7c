//! Properties of the pure planner over whole rollouts: a simulated host is planned, the steps
//! applied to it, time passes and containers become ready (or never do, or crash), and again,
//! for many generated starting points. Uses only the planner's public API.
//!
//! - RollingUpdate never removes the last ready container (while replicas > 0), and after a
//!   plan exactly the ready containers carry the service alias;
//! - a plan never creates a container beyond replicas + 1 live ones;
//! - a rollout whose new containers become ready converges to exactly `replicas` of them.
//!
//! `cargo test -p meme-controller --test plan_properties` (`PROPTEST_CASES=10000` for more).

use std::collections::BTreeMap;
use std::time::Duration;

use meme_api::v1alpha1::StrategyType;
use meme_controller::docker::ContainerState;
use meme_controller::reconcile::plan::{Action, DesiredReplicas, Phase, Plan, PlanContext, Replica, Rotation, plan};
use proptest::prelude::*;

const OLD: &str = "old";
const NEW: &str = "new";
const DEADLINE: Duration = Duration::from_secs(60);

/// When a container created by the plan becomes ready: after this many rounds, or never.
type Fate = Option<u8>;

/// One container of the simulated host.
#[derive(Clone, Debug)]
struct Sim {
    id: u32,
    hash: &'static str,
    slot: u32,
    state: ContainerState,
    ready: bool,
    ever_ready: bool,
    age: Duration,
    fate: Fate,
    /// Rounds since it was (re)started.
    rounds: u8,
    /// Whether it carries the service alias.
    rotation: Rotation,
}

impl Sim {
    fn replica(&self) -> Replica {
        Replica {
            id: self.id.to_string(),
            name: format!("s-web-{}-{}", self.hash, self.slot),
            spec_hash: self.hash.to_owned(),
            files_hash: String::new(),
            rotation: self.rotation,
            movable: true,
            image: format!("app:{}", self.hash),
            slot: self.slot,
            state: self.state,
            exit_code: (self.state == ContainerState::Exited).then_some(137),
            age: self.age,
            ready: self.ready,
            ever_ready: self.ever_ready,
            fields: BTreeMap::new(),
        }
    }

    fn is_live(&self) -> bool {
        matches!(self.state, ContainerState::Running | ContainerState::Restarting | ContainerState::Paused)
    }
}

/// The host: its containers and what will happen to the ones the plans create.
#[derive(Clone, Debug)]
struct Host {
    containers: Vec<Sim>,
    next_id: u32,
    fates: Vec<Fate>,
    created: usize,
}

impl Host {
    fn replicas(&self) -> Vec<Replica> {
        self.containers.iter().map(Sim::replica).collect()
    }

    fn ready(&self) -> usize {
        self.containers.iter().filter(|c| c.ready).count()
    }

    fn live(&self) -> usize {
        self.containers.iter().filter(|c| c.is_live()).count()
    }

    /// Carries out a plan's steps as the engine would.
    fn apply(&mut self, plan: &Plan) {
        for step in &plan.steps {
            match &step.action {
                Action::Create { slot, .. } => self.create(*slot),
                Action::Admit { id } => self.find(id).rotation = Rotation::In,
                Action::Evict { id } => self.find(id).rotation = Rotation::Out,
                Action::Reload { .. } => {}
                Action::Recreate { remove, slots, start } => {
                    self.containers.retain(|c| !remove.contains(&c.id.to_string()));
                    for slot in slots {
                        self.create(*slot);
                    }
                    for id in start {
                        let c = self.find(id);
                        c.state = ContainerState::Running;
                        c.ready = false;
                        c.rounds = 0;
                    }
                }
                Action::Start { id } => {
                    let c = self.containers.iter_mut().find(|c| c.id.to_string() == *id).expect("start of a known id");
                    c.state = ContainerState::Running;
                    c.ready = false;
                    c.rounds = 0;
                }
                Action::Remove { id, .. } => {
                    // A second remove of one id is a no-op, as it is for the engine (a stop or a
                    // removal of a container that is gone succeeds).
                    self.containers.retain(|c| c.id.to_string() != *id);
                }
            }
        }
    }

    fn find(&mut self, id: &str) -> &mut Sim {
        let known = format!("{:?}", self.containers);
        self.containers
            .iter_mut()
            .find(|c| c.id.to_string() == id)
            .unwrap_or_else(|| panic!("a step names {id}, not on the host: {known}"))
    }

    fn create(&mut self, slot: u32) {
        self.next_id += 1;
        let fate = if self.fates.is_empty() { Some(1) } else { self.fates[self.created % self.fates.len()] };
        self.created += 1;
        self.containers.push(Sim {
            id: self.next_id,
            hash: NEW,
            slot,
            state: ContainerState::Running,
            ready: false,
            ever_ready: false,
            age: Duration::ZERO,
            fate,
            rounds: 0,
            rotation: Rotation::Out,
        });
    }

    /// Time passes: containers whose fate says so become ready; `crash` kills one.
    fn tick(&mut self, elapsed: Duration, crash: Option<usize>) {
        for c in &mut self.containers {
            c.age += elapsed;
            if c.state == ContainerState::Running {
                c.rounds = c.rounds.saturating_add(1);
                if c.fate.is_some_and(|after| c.rounds >= after) {
                    c.ready = true;
                    c.ever_ready = true;
                }
            }
        }
        if let Some(i) = crash
            && !self.containers.is_empty()
        {
            let n = self.containers.len();
            let c = &mut self.containers[i % n];
            c.state = ContainerState::Exited;
            c.ready = false;
        }
    }
}

fn desired(replicas: u32, strategy: StrategyType) -> DesiredReplicas {
    DesiredReplicas {
        service: "web".into(),
        spec_hash: NEW.into(),
        files_hash: String::new(),
        reload: false,
        image: format!("app:{NEW}"),
        replicas,
        strategy,
        progress_deadline: DEADLINE,
        fields: BTreeMap::new(),
    }
}

/// A container found on the host at the start: old or current, in any state Docker reports,
/// ready or not, young or past the deadline.
fn initial_container() -> impl Strategy<Value = (bool, ContainerState, bool, bool, u64, Fate)> {
    let state = prop_oneof![
        6 => Just(ContainerState::Running),
        1 => Just(ContainerState::Exited),
        1 => Just(ContainerState::Restarting),
        1 => Just(ContainerState::Created),
        1 => Just(ContainerState::Dead),
        1 => Just(ContainerState::Paused),
    ];
    (any::<bool>(), state, any::<bool>(), any::<bool>(), 0..200u64, proptest::option::of(1..4u8))
}

fn host(initial: Vec<(bool, ContainerState, bool, bool, u64, Fate)>, fates: Vec<Fate>) -> Host {
    let containers = initial
        .into_iter()
        .enumerate()
        .map(|(i, (current, state, ready, ever_ready, age, fate))| {
            let ready = ready && state == ContainerState::Running;
            Sim {
                id: u32::try_from(i).unwrap() + 1,
                hash: if current { NEW } else { OLD },
                slot: u32::try_from(i).unwrap() + 1,
                state,
                ready,
                ever_ready: ever_ready || ready,
                age: Duration::from_secs(age),
                fate,
                rounds: 0,
                rotation: if ready { Rotation::In } else { Rotation::Out },
            }
        })
        .collect::<Vec<_>>();
    let next_id = u32::try_from(containers.len()).unwrap();
    Host { containers, next_id, fates, created: 0 }
}

/// Old containers all running and ready: the steady state a new spec meets.
fn steady(replicas: u32) -> Host {
    host((0..replicas).map(|_| (false, ContainerState::Running, true, true, 100, Some(1))).collect(), Vec::new())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rolling_update_should_never_remove_the_last_ready_container(
        replicas in 1..5u32,
        initial in proptest::collection::vec(initial_container(), 0..6),
        fates in proptest::collection::vec(proptest::option::of(1..4u8), 1..6),
        rounds in proptest::collection::vec((0..40u64, proptest::option::of(0..8usize)), 1..30),
    ) {
        let desired = desired(replicas, StrategyType::RollingUpdate);
        let mut host = host(initial, fates);
        for (seconds, crash) in rounds {
            let ready_before = host.ready();
            let plan = plan(Some(&desired), &host.replicas(), &PlanContext::default());
            host.apply(&plan);
            prop_assert!(
                ready_before == 0 || host.ready() > 0,
                "the plan removed the last ready container: {:?}\nhost now: {:?}", plan.steps, host.containers
            );
            // Traffic follows readiness: after a plan, only ready containers carry the alias,
            // and every ready one does.
            prop_assert!(
                host.containers.iter().all(|c| (c.rotation == Rotation::In) == (c.ready && c.state == ContainerState::Running)),
                "rotation does not follow readiness: {:?}\nhost now: {:?}", plan.steps, host.containers
            );
            host.tick(Duration::from_secs(seconds), crash);
        }
    }

    #[test]
    fn a_plan_should_never_create_beyond_replicas_plus_one_live_containers(
        replicas in 0..5u32,
        recreate in any::<bool>(),
        initial in proptest::collection::vec(initial_container(), 0..6),
        fates in proptest::collection::vec(proptest::option::of(1..4u8), 1..6),
        rounds in proptest::collection::vec((0..40u64, proptest::option::of(0..8usize)), 1..30),
    ) {
        let strategy = if recreate { StrategyType::Recreate } else { StrategyType::RollingUpdate };
        let desired = desired(replicas, strategy);
        let mut host = host(initial, fates);
        let bound = replicas as usize + 1;
        for (seconds, crash) in rounds {
            let live_before = host.live();
            let plan = plan(Some(&desired), &host.replicas(), &PlanContext::default());
            let creates = plan.steps.iter().any(|s| matches!(s.action, Action::Create { .. }));
            host.apply(&plan);
            // Starting a stopped container of the desired spec restores one that existed; only
            // new containers are the surge (a plan that only starts may briefly exceed the bound
            // when replicas was lowered mid-rollout, and retires the surplus in the next plan).
            prop_assert!(
                !creates || host.live() <= bound,
                "{} live containers after the plan (bound {bound}, {live_before} before): {:?}\nhost now: {:?}",
                host.live(), plan.steps, host.containers
            );
            host.tick(Duration::from_secs(seconds), crash);
        }
    }

    #[test]
    fn a_rollout_whose_containers_get_ready_should_converge_to_exactly_replicas(
        replicas in 1..5u32,
        recreate in any::<bool>(),
        fates in proptest::collection::vec(1..4u8, 1..6),
        seconds in 1..10u64,
    ) {
        let strategy = if recreate { StrategyType::Recreate } else { StrategyType::RollingUpdate };
        let desired = desired(replicas, strategy);
        let mut host = steady(replicas);
        host.fates = fates.into_iter().map(Some).collect();
        let mut synced = false;
        for _ in 0..(8 * replicas + 8) {
            let plan = plan(Some(&desired), &host.replicas(), &PlanContext::default());
            if plan.phase == Phase::Synced && plan.steps.is_empty() {
                synced = true;
                break;
            }
            host.apply(&plan);
            if !recreate {
                prop_assert!(host.ready() > 0, "RollingUpdate kept something ready: {:?}", host.containers);
            }
            host.tick(Duration::from_secs(seconds), None);
        }
        prop_assert!(synced, "never Synced: {:?}", host.containers);
        prop_assert_eq!(host.containers.len(), replicas as usize);
        prop_assert!(host.containers.iter().all(|c| c.hash == NEW && c.ready), "{:?}", host.containers);
    }
}
