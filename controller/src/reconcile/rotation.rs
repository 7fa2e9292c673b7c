//! Traffic follows readiness: which containers carry their service's network alias (are "in
//! rotation"), and the two moves that change it, [`Rotations::admit`] and [`Rotations::evict`].
//!
//! The alias is how everything in the stack reaches a service (`reverse_proxy backend:8000`):
//! Docker's embedded DNS answers it with every endpoint that carries it. So a container gets the
//! alias only once it is ready, loses it when it stops being ready, and loses it before it is
//! stopped; the user's proxy config stays a plain service name, with no proxy of ours in between.
//!
//! Docker cannot change an endpoint's aliases in place, so both moves take the container off
//! the network and connect it again with the new aliases, asking for the address it had. The
//! candidates, measured on this engine (Docker 20.10.24):
//! - **disconnect + connect, same address** (chosen): `meme-bench admit` (20 moves through the
//!   API on a network made as ours are) measured p50 157 ms per network, max 344 ms, on a 2-core
//!   host at load average 5.5, where a plain connect of a fresh container took p50 85 ms (run
//!   `59adc836`; p50 247 ms at load 8.9); the disconnect is the larger half (p50 98 ms: the
//!   engine deletes the veth pair, and `ip link del` of a veth alone took 19-61 ms there). On
//!   the same host idle (load 0.3, run `bb59b883`): p50 96 ms, max 119 ms, plain connect 45 ms;
//!   138 ms with the engine busy elsewhere. The admission is most of what a rollout adds to
//!   `docker run` + ready (`meme-bench serve`). TCP connections the container holds, in both directions,
//!   survive because its address and MAC (derived from the address) come back: a client
//!   connection opened before the move kept exchanging messages with no loss, and a server taken
//!   out of the alias kept serving its open connection while new lookups stopped finding it.
//!   Docker refuses to pin an address on a network with an automatic subnet ("user specified IP
//!   address is supported only when connecting to networks with user configured subnets"), and
//!   without pinning the address does not come back: IPAM hands out the lowest free address,
//!   measured .4 -> .2 after another container had left. So the controller creates its networks
//!   with the subnet Docker itself picks, written down ([`crate::docker::bollard`]), and
//!   serializes moves with container creates and starts on a network (the start is where
//!   Docker 20.10 allocates a container's address), so nothing takes the address in the time
//!   it is free (the disconnect, p50 98 ms above).
//! - **a companion network carrying only the aliases**: admission is a plain connect, but every
//!   client must also be on the companion network to resolve the alias, and a container starting
//!   up resolves its own dependencies through it too: admitting that container (it needs the
//!   alias on the same network) moves it all the same. No gain, twice the networks.
//! - **an extra proxy or DNS of ours** (kamal-proxy, Traefik's Docker provider): changes the
//!   user's config and adds a hop; ruled out by the contract.
//!
//! **The exception: a container publishing host ports is never moved.** Docker programs the
//! port mapping on the endpoint, so a disconnect drops it: measured with a loop of connections
//! to the host port during a move, 161 of 453 were refused over ~0.5 s. Such a container (Caddy
//! on 80/443) is created with its alias and keeps it; it is a single replica under `Recreate`,
//! so there is never a ready twin to prefer, and its clients come through the host port anyway.
//!
//! What a user can rely on (README, "Rollouts"): a new connection to the alias reaches only
//! ready containers; a connection a proxy already holds to a container keeps working while that
//! container is taken out of the alias and drains (`drainPeriod`), and is closed when the
//! container stops. Networks created by an older version, with an automatic subnet, cannot
//! keep addresses: a move there reports `AddressChanged` and the container's own connections
//! on that network must be re-established by the app.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::docker::{Engine, EngineResult, ObservedContainer, Rejoined};
use crate::reconcile::plan::Rotation;

/// The networks on which each known container carries its service alias, and a lock per
/// network that orders address-allocating calls against moves.
#[derive(Debug, Default)]
pub struct Rotations {
    aliased: Mutex<HashMap<String, BTreeSet<String>>>,
    networks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

impl Rotations {
    /// The rotation of a container as far as known (`None`: never looked at). `networks` are
    /// those it should be on (see [`Rotations::admit`]).
    #[must_use]
    pub fn known(&self, container: &ObservedContainer, networks: &[String]) -> Option<Rotation> {
        let aliased = self.lock_aliased();
        aliased.get(&container.id).map(|on| rotation(container, networks, on))
    }

    /// The rotation of a container: known, or read from the engine once (the list call does
    /// not report aliases; after a restart every adopted container is inspected once).
    ///
    /// # Errors
    /// The inspect call failed.
    pub async fn observe(
        &self,
        engine: &dyn Engine,
        container: &ObservedContainer,
        alias: &str,
        networks: &[String],
    ) -> EngineResult<Rotation> {
        if let Some(known) = self.known(container, networks) {
            return Ok(known);
        }
        let endpoints = engine.endpoint_aliases(&container.id).await?;
        let on: BTreeSet<String> =
            endpoints.into_iter().filter(|(_, aliases)| aliases.iter().any(|a| a == alias)).map(|(n, _)| n).collect();
        let rotation = rotation(container, networks, &on);
        self.lock_aliased().insert(container.id.clone(), on);
        Ok(rotation)
    }

    /// Holds off moves on `networks` while a container is created or started on them: the
    /// engine hands out its addresses then (Docker 20.10 at the start: a created container
    /// inspects with no address, started it has one). These calls share the lock with each
    /// other.
    pub async fn allocating(&self, networks: &[String]) -> Vec<OwnedRwLockReadGuard<()>> {
        let mut guards = Vec::with_capacity(networks.len());
        for network in networks {
            guards.push(self.network_lock(network).read_owned().await);
        }
        guards
    }

    /// Gives the container its service alias on every one of `networks` it lacks it on, and
    /// connects it to those it is not on at all. `networks` are the networks it should be on:
    /// its service's for a container of the desired spec (a crash between a move's disconnect
    /// and its connect, or a disconnect by hand, leaves it off one), else the ones it is on.
    /// Returns the networks on which it could not keep its address.
    ///
    /// # Errors
    /// A network call failed; the container is connected, with or without the alias.
    pub async fn admit(
        &self,
        engine: &dyn Engine,
        container: &ObservedContainer,
        alias: &str,
        networks: &[String],
    ) -> EngineResult<Vec<String>> {
        self.move_to(engine, container, alias, networks, true).await
    }

    /// Takes the service alias away on every network, and connects the container (without it)
    /// to those of `networks` it is not on; it keeps running and keeps the connections it
    /// holds. Returns the networks on which it could not keep its address.
    ///
    /// # Errors
    /// A network call failed.
    pub async fn evict(
        &self,
        engine: &dyn Engine,
        container: &ObservedContainer,
        alias: &str,
        networks: &[String],
    ) -> EngineResult<Vec<String>> {
        self.move_to(engine, container, alias, networks, false).await
    }

    /// Forgets containers that no longer exist.
    pub fn retain(&self, live: &dyn Fn(&str) -> bool) {
        self.lock_aliased().retain(|id, _| live(id));
    }

    async fn move_to(
        &self,
        engine: &dyn Engine,
        container: &ObservedContainer,
        alias: &str,
        networks: &[String],
        admit: bool,
    ) -> EngineResult<Vec<String>> {
        let aliases = if admit { vec![alias.to_owned()] } else { Vec::new() };
        let on = self.lock_aliased().get(&container.id).cloned().unwrap_or_default();
        let mut moved_address = Vec::new();
        for network in networks {
            // Not on it at all: connected (the engine's disconnect of it is a no-op).
            let joined = container.networks.contains(network);
            if joined && on.contains(network) == admit {
                continue;
            }
            let ip = container.addresses.get(network).map(String::as_str).filter(|_| joined);
            let rejoined = {
                let _exclusive = self.network_lock(network).write_owned().await;
                engine.rejoin_network(&container.id, network, ip, &aliases).await?
            };
            if rejoined == Rejoined::NewAddress && ip.is_some() {
                moved_address.push(network.clone());
            }
            let mut aliased = self.lock_aliased();
            let entry = aliased.entry(container.id.clone()).or_default();
            if admit {
                entry.insert(network.clone());
            } else {
                entry.remove(network);
            }
        }
        Ok(moved_address)
    }

    fn network_lock(&self, network: &str) -> Arc<RwLock<()>> {
        let mut locks = self.networks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(network.to_owned()).or_default())
    }

    fn lock_aliased(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.aliased.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// In, out or partly in, from the networks carrying the alias. Off one of the `networks` it
/// should be on altogether is partly in whatever the others say: the next move, in or out,
/// connects it there. (Found by e2e/tests/chaos.rs: a SIGKILL between the disconnect and the
/// connect of an admission left a running container off its second network, and a restarted
/// controller judged it in rotation and the stack Synced.)
fn rotation(container: &ObservedContainer, networks: &[String], on: &BTreeSet<String>) -> Rotation {
    if networks.iter().any(|n| !container.networks.contains(n)) {
        return Rotation::Partial;
    }
    let total = networks.iter().filter(|n| on.contains(*n)).count();
    if total == 0 {
        Rotation::Out
    } else if total == networks.len() {
        Rotation::In
    } else {
        Rotation::Partial
    }
}
