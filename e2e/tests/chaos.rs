//! Chaos: the controller is killed with SIGKILL at random points of rollouts — after a random
//! delay, or precisely between a container's create and its start, or between a rotation move's
//! disconnect and its connect (seen from outside, in the engine's event stream) — and restarted; every round must converge on the tip with exactly the
//! desired containers: the right count, spec and image per service, each running with its files
//! and on all its networks, no orphan, no duplicate, no half-made container started as it was.
//!
//! Seeded: the seed is printed first; `MEME_CHAOS_SEED=<seed>` replays a run (the same changes,
//! kinds of kill and delays; the engine's timing still varies). `MEME_CHAOS_ROUNDS` sets the
//! number of rounds (10 here; `hack/chaos.sh ROUNDS` runs longer).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use meme_e2e::{TestEnv, docker, http_get, wait_for};

/// Rollouts, kills and restarts of one round; generous for a loaded 2-core machine.
const CONVERGE: Duration = Duration::from_secs(120);

/// The services: `web` and `worker` on both networks, `api` on one; `worker` is replaced with
/// the Recreate strategy (create, retire the old, start: a crash may land between any two).
const SERVICES: [&str; 3] = ["web", "api", "worker"];
const IMAGES: [&str; 3] = ["meme-demo:v1", "meme-demo:v2", "meme-demo:v3"];
const FILE_PATH: &str = "/etc/chaos/app.conf";

const STACK: &str = "apiVersion: memeit.pro/v1alpha1
kind: Stack
metadata:
  name: \"{stack}\"
spec:
  networks: [{name: front}, {name: back}]
  env: [{name: ENV, value: chaos}]
";

/// splitmix64: small, seedable, good enough to pick changes and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What one service should run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Want {
    image: &'static str,
    replicas: u32,
    /// The value of `CHAOS_CHANGE` (an env change replaces the containers).
    env: u32,
    /// The content of the service's file.
    file: String,
}

fn networks(service: &str) -> &'static [&'static str] {
    if service == "api" { &["back"] } else { &["front", "back"] }
}

fn yaml(service: &str, want: &Want) -> String {
    let strategy = if service == "worker" { "  strategy: {type: Recreate}\n" } else { "" };
    format!(
        "apiVersion: memeit.pro/v1alpha1
kind: Deployment
metadata: {{name: {service}}}
spec:
  image: {image}
  imagePullPolicy: Never
  replicas: {replicas}
  init: true
  stopGracePeriod: 1s
  networks: [{networks}]
  ports: [{{containerPort: 8080}}]
  files: [{{path: {FILE_PATH}, source: files/{service}.conf}}]
  healthCheck: {{httpGet: {{path: /health, port: 8080}}, interval: 1s, timeout: 1s}}
  progressDeadline: 60s
  env:
    - {{name: STARTUP_DELAY, value: 1s}}
    - {{name: CHAOS_CHANGE, value: \"{env}\"}}
{strategy}",
        image = want.image,
        replicas = want.replicas,
        networks = networks(service).join(", "),
        env = want.env,
    )
}

/// Writes every service's manifest and file.
fn write(env: &TestEnv, wants: &BTreeMap<&'static str, Want>) {
    for (service, want) in wants {
        env.write_files(&[
            (&format!("{service}.yaml"), &yaml(service, want)),
            (&format!("files/{service}.conf"), &want.file),
        ]);
    }
}

/// Changes one to three services at random; with `creates`, at least one change makes new
/// containers (image, env or file; a replica change may only remove some). `change` numbers the
/// change (env value and file content), unique in a run. Describes the change.
fn mutate(rng: &mut Rng, change: u32, wants: &mut BTreeMap<&'static str, Want>, creates: bool) -> String {
    let mut what = Vec::new();
    let mut made = false;
    // Each service with even odds, at least one.
    let mut chosen: Vec<&str> = SERVICES.iter().copied().filter(|_| rng.chance(50)).collect();
    if chosen.is_empty() {
        chosen.push(SERVICES[usize::try_from(rng.below(3)).expect("small")]);
    }
    for service in chosen {
        let want = wants.get_mut(service).expect("service");
        match rng.below(4) {
            0 => {
                let others: Vec<&str> = IMAGES.iter().copied().filter(|i| *i != want.image).collect();
                want.image = others[usize::try_from(rng.below(2)).expect("small")];
                what.push(format!("{service} image {}", want.image));
                made = true;
            }
            1 => {
                want.env = change;
                what.push(format!("{service} env CHAOS_CHANGE={change}"));
                made = true;
            }
            2 => {
                want.file = format!("change {change} of {service}\n");
                what.push(format!("{service} file"));
                made = true;
            }
            _ => {
                let before = want.replicas;
                want.replicas = 1 + u32::try_from(rng.below(3)).expect("small");
                if want.replicas == before {
                    want.replicas = if before == 3 { 1 } else { before + 1 };
                }
                what.push(format!("{service} replicas {before}->{}", want.replicas));
                made |= want.replicas > before;
            }
        }
    }
    if creates && !made {
        let service = SERVICES[usize::try_from(rng.below(3)).expect("small")];
        wants.get_mut(service).expect("service").env = change;
        what.push(format!("{service} env CHAOS_CHANGE={change}"));
    }
    what.join(", ")
}

/// A `docker events` stream (creates of the stack's containers, or disconnects from its
/// networks). While armed with the controller's pid, the first event stops the controller at
/// once (SIGSTOP: it sends nothing more, so it is caught right after that call, e.g. between a
/// create and its start, or between a rotation move's disconnect and its connect) and reports
/// the container id.
struct EventWatch {
    child: Child,
    armed: Arc<AtomicI32>,
    caught: mpsc::Receiver<String>,
}

impl EventWatch {
    /// The creates of the stack's containers.
    fn creates(stack: &str) -> Self {
        let label = format!("label=pro.memeit.stack={stack}");
        Self::new(&[
            "--format",
            "{{.Actor.ID}}",
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--filter",
            &label,
        ])
    }

    /// The disconnects of containers from the stack's networks.
    fn disconnects(stack: &str) -> Self {
        let (front, back) = (format!("network={stack}_front"), format!("network={stack}_back"));
        let format = "{{.Actor.Attributes.container}}";
        Self::new(&[
            "--format",
            format,
            "--filter",
            "type=network",
            "--filter",
            "event=disconnect",
            "--filter",
            &front,
            "--filter",
            &back,
        ])
    }

    fn new(args: &[&str]) -> Self {
        let mut child = Command::new("docker")
            .arg("events")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker events");
        let stdout = child.stdout.take().expect("stdout");
        let armed = Arc::new(AtomicI32::new(0));
        let (tx, caught) = mpsc::channel();
        let pid = Arc::clone(&armed);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let armed = pid.swap(0, Ordering::SeqCst);
                if let Some(pid) = rustix::process::Pid::from_raw(armed) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::STOP);
                    let _ = tx.send(line.trim().to_owned());
                }
            }
        });
        // The stream only reports what happens after it subscribed: give it that moment.
        std::thread::sleep(Duration::from_millis(500));
        Self { child, armed, caught }
    }

    fn arm(&self, pid: u32) {
        while self.caught.try_recv().is_ok() {}
        self.armed.store(i32::try_from(pid).expect("pid"), Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.armed.store(0, Ordering::SeqCst);
    }
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One container as `docker inspect` shows it.
#[derive(Debug)]
struct Inspected {
    name: String,
    status: String,
    running: bool,
    started_at: String,
    image: String,
    labels: BTreeMap<String, String>,
    env: Vec<String>,
    /// Network name → (aliases, IPv4 address).
    networks: BTreeMap<String, (Vec<String>, String)>,
}

impl Inspected {
    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

fn inspect(ids: &[String]) -> Vec<Inspected> {
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["inspect".to_owned()];
    args.extend(ids.iter().cloned());
    let out = meme_e2e::run(Command::new("docker").args(&args));
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).expect("inspect json");
    list.iter()
        .map(|c| {
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            };
            Inspected {
                name: c["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_owned(),
                status: c["State"]["Status"].as_str().unwrap_or_default().to_owned(),
                running: c["State"]["Running"].as_bool().unwrap_or(false),
                started_at: c["State"]["StartedAt"].as_str().unwrap_or_default().to_owned(),
                image: c["Config"]["Image"].as_str().unwrap_or_default().to_owned(),
                labels: c["Config"]["Labels"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default(),
                env: strings(&c["Config"]["Env"]),
                networks: c["NetworkSettings"]["Networks"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(name, n)| {
                                (
                                    name.clone(),
                                    (strings(&n["Aliases"]), n["IPAddress"].as_str().unwrap_or_default().to_owned()),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Every container of the stack, inspected.
fn stack_containers(env: &TestEnv) -> Vec<Inspected> {
    inspect(&env.containers(None).into_iter().map(|c| c.id).collect::<Vec<_>>())
}

/// Waits until the controller says Synced about `tip` (applied and judged).
fn wait_synced(env: &TestEnv, tip: &str) -> serde_json::Value {
    wait_for(&format!("Synced at {tip}\n{}", env.logs_tail()), CONVERGE, || {
        let status = env.status()?;
        (status["syncStatus"] == "Synced" && status["syncRevision"] == tip && status["applied"]["revision"] == tip)
            .then_some(status)
    })
}

/// Everything the round must end with; panics naming the first thing that is not so.
fn check(env: &TestEnv, wants: &BTreeMap<&'static str, Want>, status: &serde_json::Value, context: &str) {
    let all = stack_containers(env);
    let describe = || all.iter().map(|c| format!("{} {} {}", c.name, c.status, c.image)).collect::<Vec<_>>().join("\n");
    // No orphan: every container of the stack belongs to a desired service; nothing named like
    // ours lacks our labels.
    for c in &all {
        assert!(wants.contains_key(c.label("pro.memeit.service")), "{context}: orphan {}\n{}", c.name, describe());
    }
    let named = docker(&["ps", "-aq", "--filter", &format!("name={}-", env.stack)]);
    assert_eq!(named.lines().count(), all.len(), "{context}: containers named like the stack's without its labels");
    for (service, want) in wants {
        let mine: Vec<&Inspected> = all.iter().filter(|c| c.label("pro.memeit.service") == *service).collect();
        assert_eq!(
            mine.len(),
            want.replicas as usize,
            "{context}: {service} wants {} containers\n{}",
            want.replicas,
            describe()
        );
        let spec_hash = status["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == *service))
            .and_then(|s| s["specHash"].as_str())
            .unwrap_or_else(|| panic!("{context}: {service} has a spec hash in the status"));
        let mut slots = BTreeSet::new();
        let mut files_hashes = BTreeSet::new();
        for c in mine {
            let what = format!("{context}: {service} container {}", c.name);
            assert!(c.running && c.status == "running" && !c.started_at.starts_with("0001"), "{what}: {}", c.status);
            assert_eq!(c.image, want.image, "{what}: image");
            assert_eq!(c.label("pro.memeit.spec-hash"), spec_hash, "{what}: spec hash");
            assert!(c.env.contains(&format!("CHAOS_CHANGE={}", want.env)), "{what}: env {:?}", c.env);
            // No duplicate: one container per slot, named after its spec and slot.
            let slot = c.label("pro.memeit.replica");
            assert!(slots.insert(slot.to_owned()), "{what}: slot {slot} taken twice\n{}", describe());
            // The name carries the spec and the files (the controller's identity of a version).
            let files_hash = c.label("pro.memeit.files-hash");
            assert!(!files_hash.is_empty(), "{what}: no files hash");
            let identity = meme_api::template::secret_digest(format!("{spec_hash}:{files_hash}").as_bytes());
            let slot_number: u32 = slot.parse().unwrap_or_else(|_| panic!("{what}: slot {slot:?}"));
            assert_eq!(
                c.name,
                meme_api::labels::container_name(&env.stack, service, &identity, slot_number),
                "{what}: name"
            );
            files_hashes.insert(files_hash.to_owned());
            // On exactly its networks, each with the service alias (in rotation) and an address.
            let expected: BTreeSet<String> = networks(service).iter().map(|n| format!("{}_{n}", env.stack)).collect();
            assert_eq!(c.networks.keys().cloned().collect::<BTreeSet<_>>(), expected, "{what}: networks");
            for (network, (aliases, ip)) in &c.networks {
                assert!(aliases.iter().any(|a| a == service), "{what}: no alias {service} on {network}: {aliases:?}");
                assert!(!ip.is_empty(), "{what}: no address on {network}");
            }
            // Its file, as the process inside sees it, and the version it runs.
            let ip = &c.networks.values().next().expect("a network").1;
            let addr = format!("{ip}:8080");
            let file = http_get(&addr, &format!("/file?path={FILE_PATH}"));
            assert_eq!(file, Some((200, want.file.clone())), "{what}: its file");
            let version = want.image.rsplit(':').next().expect("tag");
            assert_eq!(http_get(&addr, "/version"), Some((200, format!("{version}\n"))), "{what}: version");
        }
        assert!(files_hashes.len() <= 1, "{context}: {service} runs several versions of its files: {files_hashes:?}");
    }
    // The stack's networks, once each.
    let nets = docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("label=pro.memeit.stack={}", env.stack),
    ]);
    let nets: BTreeSet<&str> = nets.lines().collect();
    let expected: BTreeSet<String> = ["front", "back"].iter().map(|n| format!("{}_{n}", env.stack)).collect();
    assert_eq!(nets.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(), expected, "{context}: networks");
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom
fn sigkill_during_rollouts_should_always_converge_exactly() {
    let seed = env_number("MEME_CHAOS_SEED").unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        u64::try_from(nanos % u128::from(u64::MAX)).expect("fits")
    });
    let rounds = env_number("MEME_CHAOS_ROUNDS").unwrap_or(10);
    eprintln!("chaos: seed {seed}, {rounds} rounds (replay: MEME_CHAOS_SEED={seed} MEME_CHAOS_ROUNDS={rounds})");
    let mut rng = Rng(seed);
    let replay = format!("replay with MEME_CHAOS_SEED={seed} MEME_CHAOS_ROUNDS={rounds}");

    let mut wants: BTreeMap<&'static str, Want> = SERVICES
        .iter()
        .map(|s| (*s, Want { image: "meme-demo:v1", replicas: 2, env: 0, file: format!("initial {s}\n") }))
        .collect();
    let mut files: Vec<(String, String)> = vec![("stack.yaml".into(), STACK.into())];
    for (service, want) in &wants {
        files.push((format!("{service}.yaml"), yaml(service, want)));
        files.push((format!("files/{service}.conf"), want.file.clone()));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    let mut env = TestEnv::new(&files);
    env.with_args(&["--resync", "1s"]);
    let creates = EventWatch::creates(&env.stack);
    let disconnects = EventWatch::disconnects(&env.stack);
    env.start();
    let tip = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let status = wait_synced(&env, &tip);
    check(&env, &wants, &status, "initial converge");

    let started = Instant::now();
    let (mut caught_rounds, mut create_rounds, mut kills) = (0, 0, 0);
    let (mut disconnect_rounds, mut off_rounds) = (0, 0);
    for round in 1..=u32::try_from(rounds).expect("rounds") {
        let round_started = Instant::now();
        let kind = rng.below(100);
        let (at_create, at_disconnect) = (kind < 40, (40..60).contains(&kind));
        // Both need new containers: at a create, or at their admission's first move.
        let change = mutate(&mut rng, 2 * round, &mut wants, at_create || at_disconnect);
        write(&env, &wants);
        let pid = env.pid().expect("the controller runs");
        if at_create {
            creates.arm(pid);
        }
        if at_disconnect {
            disconnects.arm(pid);
        }
        let mut tip = env.commit(&format!("chaos round {round}: {change}"));
        let mut log = format!("round {round}: {change}");
        // The kill: at the first create of the rollout, at the first disconnect of a rotation
        // move, or a random time after the controller saw the commit (0-4 s: from before its
        // first step to after the end of most rollouts).
        let mut caught = Vec::new();
        if at_disconnect {
            disconnect_rounds += 1;
            let id = disconnects
                .caught
                .recv_timeout(CONVERGE)
                .unwrap_or_else(|_| panic!("round {round}: no disconnect; {replay}"));
            // Stopped: a container off one of its networks is what the crash leaves.
            let off: Vec<String> = stack_containers(&env)
                .into_iter()
                .filter(|c| {
                    let service = c.label("pro.memeit.service");
                    networks(service).iter().any(|n| !c.networks.contains_key(&format!("{}_{n}", env.stack)))
                })
                .map(|c| c.name)
                .collect();
            log.push_str(&format!(" | killed at a disconnect of {}", &id[..12.min(id.len())]));
            if !off.is_empty() {
                off_rounds += 1;
                log.push_str(&format!(", off a network: {}", off.join(" ")));
            }
        } else if at_create {
            create_rounds += 1;
            let id =
                creates.caught.recv_timeout(CONVERGE).unwrap_or_else(|_| panic!("round {round}: no create; {replay}"));
            // Stopped: what the engine holds now is what the crash leaves.
            caught = env
                .containers(None)
                .into_iter()
                .filter(|c| c.state == "created")
                .map(|c| (c.id, c.name))
                .collect::<Vec<_>>();
            log.push_str(&format!(" | killed at the create of {}", &id[..12.min(id.len())]));
            if !caught.is_empty() {
                caught_rounds += 1;
                let names: Vec<&str> = caught.iter().map(|(_, n)| n.as_str()).collect();
                log.push_str(&format!(", {} created and never started: {}", caught.len(), names.join(" ")));
            }
        } else {
            wait_for(&format!("round {round}: the controller to see {tip}"), CONVERGE, || {
                (env.status()?["source"]["tip"]["revision"] == tip.as_str()).then_some(())
            });
            let delay = rng.below(4000);
            std::thread::sleep(Duration::from_millis(delay));
            log.push_str(&format!(" | killed {delay} ms after it saw the commit"));
        }
        env.kill();
        creates.disarm();
        disconnects.disarm();
        kills += 1;
        // Sometimes the next commit lands while it is down.
        if rng.chance(30) {
            let change = mutate(&mut rng, 2 * round + 1, &mut wants, false);
            write(&env, &wants);
            tip = env.commit(&format!("chaos round {round}, while down: {change}"));
            log.push_str(&format!(" | while down: {change}"));
        }
        env.start();
        // Sometimes it dies again early in its recovery.
        if rng.chance(25) {
            let delay = rng.below(2000);
            std::thread::sleep(Duration::from_millis(delay));
            env.kill();
            kills += 1;
            env.start();
            log.push_str(&format!(" | killed again {delay} ms after the restart"));
        }
        let status = wait_synced(&env, &tip);
        let converged = round_started.elapsed();
        let context = format!("{log} ({replay})");
        // Synced and stable: over one more drift check nothing changes.
        let before: BTreeSet<String> = env.containers(None).into_iter().map(|c| c.id).collect();
        env.wait_checks("drift", 1);
        let after: BTreeSet<String> = env.containers(None).into_iter().map(|c| c.id).collect();
        assert_eq!(before, after, "{context}: containers changed after Synced");
        check(&env, &wants, &status, &context);
        // A container caught half-made was removed, never started as it was.
        for (id, name) in &caught {
            assert!(!after.contains(id), "{context}: {name}, created and never started at the kill, was kept");
        }
        let log_text = env.logs();
        assert!(!log_text.contains("panicked"), "{context}: the controller panicked:\n{}", env.logs_tail());
        eprintln!("chaos: {log} | Synced in {:.1}s", converged.as_secs_f64());
    }
    if create_rounds > 0 {
        // Stopping at the create event must actually catch containers between create and start.
        assert!(caught_rounds > 0, "no kill between create and start in {create_rounds} rounds ({replay})");
    }
    eprintln!(
        "chaos: seed {seed}: {rounds} rounds, {kills} kills, {create_rounds} at a create ({caught_rounds} with containers created and never started), {disconnect_rounds} at a disconnect ({off_rounds} with a container off a network), all converged, {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
