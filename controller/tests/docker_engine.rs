//! [`BollardEngine`] against the real Docker engine of this machine. Fails, never skips, when the
//! engine is unreachable. Uses the local test images of `hack/build-images.sh` (built when
//! missing). Every object carries `pro.memeit.e2e-run=<run id>` and a unique name prefix, and a
//! drop guard removes it through the CLI, also when a test fails.
//!
//! `cargo test -p meme-controller --test docker_engine -- --test-threads 1 --nocapture`

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use meme_controller::docker::bollard::BollardEngine;
use meme_controller::docker::{
    ContainerFile, ContainerSpec, ContainerState, DockerHealth, Engine, EngineError, ExecHealthcheck, NetworkSpec,
    ObservedContainer, PublishedPort, RegistryAuth, Rejoined, VolumeBinding, VolumeSpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RUN_LABEL: &str = "pro.memeit.e2e-run";
const IMAGE: &str = "meme-demo:v1";
const HC_IMAGE: &str = "meme-demo-hc:v1";
const POLL: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(10);

/// One test's objects: its run id, name prefix and engine. Dropping it removes everything
/// labelled with the run id.
struct Run {
    id: String,
    prefix: String,
    engine: BollardEngine,
}

impl Run {
    async fn new(test: &str) -> Self {
        let engine =
            BollardEngine::connect().await.expect("the Docker engine must be reachable (is `docker info` ok?)");
        engine.ping().await.expect("the Docker engine must answer a ping");
        ensure_images();
        let id = random_id();
        let prefix = format!("e2e-bollard-{test}-{id}");
        println!("run {id}: objects named {prefix}-*");
        Self { id, prefix, engine }
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// The run label, and a stack's labels (networks and volumes must carry them to be used).
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = meme_api::labels::stack_labels(&self.prefix);
        labels.insert(RUN_LABEL.to_owned(), self.id.clone());
        labels
    }

    fn filter(&self) -> Vec<(String, String)> {
        vec![(RUN_LABEL.to_owned(), self.id.clone())]
    }

    /// A minimal spec: the image's entrypoint, default bridge, no extras.
    fn spec(&self, suffix: &str, image: &str) -> ContainerSpec {
        ContainerSpec {
            name: self.name(suffix),
            image: image.to_owned(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            labels: self.labels(),
            exposed_ports: Vec::new(),
            published_ports: Vec::new(),
            volumes: Vec::new(),
            networks: Vec::new(),
            aliases: Vec::new(),
            healthcheck: None,
            user: None,
            init: true,
            read_only_root_filesystem: false,
            stop_timeout: Duration::from_secs(5),
            nano_cpus: None,
            memory: None,
            memory_reservation: None,
            files: Vec::new(),
        }
    }

    async fn list(&self) -> Vec<ObservedContainer> {
        self.engine.list_containers(&self.filter()).await.expect("list_containers")
    }

    async fn observe(&self, id: &str) -> Option<ObservedContainer> {
        self.list().await.into_iter().find(|c| c.id == id)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let filter = format!("label={RUN_LABEL}={}", self.id);
        for (list, remove) in [
            (&["ps", "-aq", "--filter"][..], &["rm", "-f"][..]),
            (&["network", "ls", "-q", "--filter"][..], &["network", "rm"][..]),
            (&["volume", "ls", "-q", "--filter"][..], &["volume", "rm", "-f"][..]),
        ] {
            let Ok(out) = Command::new("docker").args(list).arg(&filter).output() else { continue };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(remove).args(&ids).output();
            }
        }
    }
}

/// Builds the test images once when `meme-demo:v1` or `meme-demo-hc:v1` is missing.
fn ensure_images() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let present = Command::new("docker")
            .args(["image", "inspect", IMAGE, HC_IMAGE])
            .output()
            .expect("the docker CLI must be installed")
            .status
            .success();
        if !present {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../hack/build-images.sh");
            let status = Command::new(script).status().expect("run hack/build-images.sh");
            assert!(status.success(), "hack/build-images.sh failed");
        }
    });
}

fn random_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Polls `probe` every [`POLL`] until it returns `Some`, failing after `deadline`.
async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            println!("{what}: after {:?}", start.elapsed());
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A plain HTTP/1.0 GET: `(status, body)`, `None` while the server is not answering.
async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let io = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: e2e\r\n\r\n").as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), io).await.ok().flatten()
}

/// A host port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

#[tokio::test]
async fn networks_volumes_and_a_container_lifecycle() {
    let run = Run::new("life").await;
    let engine = &run.engine;

    // Networks and volume, twice: the second round must find them.
    let front = NetworkSpec { name: run.name("front"), internal: false, labels: run.labels() };
    let back = NetworkSpec { name: run.name("back"), internal: true, labels: run.labels() };
    let volume = VolumeSpec { name: run.name("data"), labels: run.labels(), adopt: false };
    for _ in 0..2 {
        engine.ensure_network(&front).await.expect("ensure_network front");
        engine.ensure_network(&back).await.expect("ensure_network back");
        engine.ensure_volume(&volume).await.expect("ensure_volume");
    }
    let networks = engine.docker().list_networks(None).await.expect("list networks");
    for spec in [&front, &back] {
        let same_name: Vec<_> = networks.iter().filter(|n| n.name.as_deref() == Some(spec.name.as_str())).collect();
        assert_eq!(same_name.len(), 1, "exactly one network {}", spec.name);
        let network = same_name[0];
        assert_eq!(network.internal, Some(spec.internal), "internal flag of {}", spec.name);
        assert_eq!(network.driver.as_deref(), Some("bridge"));
        assert_eq!(network.labels.as_ref().and_then(|l| l.get(RUN_LABEL)), Some(&run.id));
    }
    let inspected = engine.docker().inspect_volume(&volume.name).await.expect("inspect volume");
    assert_eq!(inspected.labels.get(RUN_LABEL), Some(&run.id));

    // Create with two networks, an alias, a file, env, init, a published port and the volume.
    let host_port = free_port();
    let mut spec = run.spec("web", IMAGE);
    spec.labels.insert("pro.memeit.service".to_owned(), "web".to_owned());
    spec.env = vec!["GREETING=hello from env".to_owned()];
    spec.exposed_ports = vec!["8080/tcp".to_owned()];
    spec.published_ports =
        vec![PublishedPort { container_port: 8080, protocol: "tcp", host_port, host_ip: "127.0.0.1".to_owned() }];
    spec.volumes = vec![VolumeBinding { volume: volume.name.clone(), path: "/data".to_owned(), read_only: true }];
    spec.networks = vec![front.name.clone(), back.name.clone()];
    spec.aliases = vec!["web-alias".to_owned()];
    spec.stop_timeout = Duration::from_secs(10);
    spec.files =
        vec![ContainerFile { path: "/etc/demo/x.txt".to_owned(), mode: 0o644, content: b"file content\n".to_vec() }];
    let id = engine.create_container(&spec).await.expect("create_container");

    let created = run.observe(&id).await.expect("listed after create");
    assert_eq!(created.state, ContainerState::Created);
    assert_eq!(created.name, spec.name);

    let inspect = engine.docker().inspect_container(&id, None).await.expect("inspect container");
    let host_config = inspect.host_config.expect("host config");
    assert_eq!(host_config.init, Some(true));
    assert_eq!(
        host_config.restart_policy.and_then(|p| p.name).map(|n| n.to_string()).as_deref(),
        Some("unless-stopped")
    );
    let endpoints = inspect.network_settings.and_then(|s| s.networks).expect("networks");
    assert_eq!(endpoints.keys().collect::<HashSet<_>>(), HashSet::from([&front.name, &back.name]), "only our networks");
    for network in [&front.name, &back.name] {
        // It publishes a host port, so it is never moved and has its alias from the start.
        let aliases = endpoints[network].aliases.clone().unwrap_or_default();
        assert!(aliases.contains(&"web-alias".to_owned()), "alias on {network}: {aliases:?}");
    }
    let mount = inspect.mounts.unwrap_or_default().into_iter().next().expect("a mount");
    assert_eq!(
        (mount.name.as_deref(), mount.destination.as_deref(), mount.rw),
        (Some(volume.name.as_str()), Some("/data"), Some(false))
    );

    // Start: running, labelled, with an address on both networks.
    engine.start_container(&id).await.expect("start_container");
    engine.start_container(&id).await.expect("start of a running container is ok");
    let running = eventually("running with two addresses", DEADLINE, || async {
        run.observe(&id).await.filter(|c| c.is_running() && c.addresses.len() == 2)
    })
    .await;
    assert_eq!(running.name, spec.name);
    // Ours, plus the image's own labels.
    assert!(spec.labels.iter().all(|(k, v)| running.label(k) == Some(v.as_str())), "{:?}", running.labels);
    assert_eq!(running.label("pro.memeit.service"), Some("web"));
    assert_eq!(running.image, IMAGE);
    assert_eq!(Some(running.image_id.clone()), engine.image_id(IMAGE).await.expect("image_id"));
    assert_eq!(running.health, None, "no HEALTHCHECK in {IMAGE}");
    assert_eq!(running.exit_code, None);
    let age = SystemTime::now().duration_since(running.created).unwrap_or_default();
    assert!(age < Duration::from_secs(120), "created {age:?} ago");
    assert_eq!(run.list().await.len(), 1, "list by label returns only ours");

    // The move that changes aliases (the controller does it to containers without host ports):
    // off and back onto the network, keeping the address (the controller's networks have a
    // written subnet, so the address can be asked back).
    let ip = running.addresses[&front.name].clone();
    let rejoined = engine.rejoin_network(&id, &front.name, Some(&ip), &[]).await.expect("rejoin_network");
    assert_eq!(rejoined, Rejoined::SameAddress);
    let aliases = engine.endpoint_aliases(&id).await.expect("endpoint_aliases");
    assert!(!aliases[&front.name].contains(&"web-alias".to_owned()), "{aliases:?}");
    assert!(aliases[&back.name].contains(&"web-alias".to_owned()), "the other network untouched: {aliases:?}");
    let after = run.observe(&id).await.expect("listed");
    assert_eq!(after.addresses[&front.name], ip, "the same address");
    // And back in.
    let alias = vec!["web-alias".to_owned()];
    engine.rejoin_network(&id, &front.name, Some(&ip), &alias).await.expect("rejoin_network");
    assert!(engine.endpoint_aliases(&id).await.expect("aliases")[&front.name].contains(&"web-alias".to_owned()));
    // Off the network altogether, as a crash between a move's disconnect and its connect leaves
    // it (found by e2e/tests/chaos.rs): the rejoin connects it. This engine answers the
    // disconnect of a container that is not on the network with a 500, not a 403 or 404.
    let off = Command::new("docker").args(["network", "disconnect", &front.name, &id]).status().expect("docker");
    assert!(off.success());
    engine.rejoin_network(&id, &front.name, None, &alias).await.expect("rejoin_network of a container off it");
    assert!(engine.endpoint_aliases(&id).await.expect("aliases")[&front.name].contains(&"web-alias".to_owned()));

    // The file, the env and the published port, through the container's address.
    let address = format!("{}:8080", running.addresses[&front.name]);
    let file = eventually("GET /file", DEADLINE, || http_get(&address, "/file?path=/etc/demo/x.txt")).await;
    assert_eq!(file, (200, "file content\n".to_owned()));
    assert_eq!(http_get(&address, "/env/GREETING").await, Some((200, "hello from env\n".to_owned())));
    let published = format!("127.0.0.1:{host_port}");
    let version = eventually("GET /version on the published port", DEADLINE, || http_get(&published, "/version")).await;
    assert_eq!(version, (200, "v1\n".to_owned()));

    // Stop: init forwards SIGTERM, so it exits at once with 128 + 15.
    let stopping = Instant::now();
    engine.stop_container(&id, Duration::from_millis(9_500)).await.expect("stop_container");
    assert!(stopping.elapsed() < Duration::from_secs(8), "stop took {:?}", stopping.elapsed());
    let stopped = eventually("exited", DEADLINE, || async {
        run.observe(&id).await.filter(|c| c.state == ContainerState::Exited)
    })
    .await;
    assert!(!stopped.is_running());
    assert!(stopped.status.starts_with("Exited ("), "{}", stopped.status);
    assert_eq!(stopped.exit_code, Some(143), "status {}", stopped.status);
    assert!(stopped.addresses.is_empty(), "no addresses when stopped: {:?}", stopped.addresses);
    engine.stop_container(&id, Duration::from_secs(1)).await.expect("stop of a stopped container is ok");

    // Start again, then remove (twice), then everything about it is gone.
    engine.start_container(&id).await.expect("second start");
    eventually("running again", DEADLINE, || async { run.observe(&id).await.filter(ObservedContainer::is_running) })
        .await;
    engine.remove_container(&id).await.expect("remove_container");
    assert!(run.list().await.is_empty(), "removed");
    engine.remove_container(&id).await.expect("remove of a removed container is ok");
    engine.stop_container(&id, Duration::from_secs(1)).await.expect("stop of a removed container is ok");
    let err = engine.start_container(&id).await.expect_err("start of a removed container");
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
    let err = engine.logs_tail(&id, 10).await.expect_err("logs of a removed container");
    assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");

    // The volume outlives its container.
    engine.docker().inspect_volume(&volume.name).await.expect("volume kept");
}

#[tokio::test]
async fn health_should_be_read_from_the_status_text() {
    let run = Run::new("health").await;
    let engine = &run.engine;

    // The image's own HEALTHCHECK (1 s interval).
    let healthy = engine.create_container(&run.spec("hc", HC_IMAGE)).await.expect("create hc");
    // An exec check that always fails (404), overriding nothing else.
    let mut failing = run.spec("failing", IMAGE);
    failing.healthcheck = Some(ExecHealthcheck {
        command: vec!["/meme-testserver".to_owned(), "check".to_owned(), "http://127.0.0.1:8080/nope".to_owned()],
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        retries: 1,
        start_period: Duration::ZERO,
    });
    let unhealthy = engine.create_container(&failing).await.expect("create failing");
    engine.start_container(&healthy).await.expect("start hc");
    engine.start_container(&unhealthy).await.expect("start failing");

    let observed = eventually("healthy", DEADLINE, || async {
        run.observe(&healthy).await.filter(|c| c.health == Some(DockerHealth::Healthy))
    })
    .await;
    assert!(observed.status.contains("(healthy)"), "{}", observed.status);
    let observed = eventually("unhealthy", DEADLINE, || async {
        run.observe(&unhealthy).await.filter(|c| c.health == Some(DockerHealth::Unhealthy))
    })
    .await;
    assert!(observed.is_running(), "an unhealthy container keeps running");

    let inspect = engine.docker().inspect_container(&unhealthy, None).await.expect("inspect");
    let check = inspect.config.and_then(|c| c.healthcheck).expect("healthcheck");
    assert_eq!(check.test.as_ref().and_then(|t| t.first()).map(String::as_str), Some("CMD"));
    assert_eq!((check.interval, check.retries), (Some(500_000_000), Some(1)));
}

#[tokio::test]
async fn images_and_pulls() {
    let run = Run::new("image").await;
    let engine = &run.engine;

    let id = engine.image_id(IMAGE).await.expect("image_id").expect("local image present");
    assert!(id.starts_with("sha256:"), "{id}");
    let missing = format!("{}-missing:nope", run.prefix);
    assert_eq!(engine.image_id(&missing).await.expect("image_id of a missing image"), None);

    let started = Instant::now();
    for auth in [None, Some(RegistryAuth { username: "u".into(), password: "p".into(), server: "127.0.0.1:1".into() })]
    {
        let err = engine.pull_image("127.0.0.1:1/nope:x", auth).await.expect_err("pull from a closed port");
        match err {
            EngineError::Pull { image, message } => {
                assert_eq!(image, "127.0.0.1:1/nope:x");
                assert!(!message.is_empty());
                assert!(!message.contains("\"p\""), "no password in {message}");
                println!("pull error: {message}");
            }
            other => panic!("expected EngineError::Pull, got {other:?}"),
        }
    }
    println!("two failed pulls in {:?}", started.elapsed());
}

#[tokio::test]
async fn events_should_report_our_container_starting() {
    let run = Run::new("events").await;
    let engine = &run.engine;

    // Subscribed before the start and polled only after it: `since` covers the gap.
    let mut events = engine.events(&run.filter());
    let id = engine.create_container(&run.spec("ev", IMAGE)).await.expect("create");
    engine.start_container(&id).await.expect("start");

    let start = Instant::now();
    let mut actions = Vec::new();
    let event = loop {
        let remaining = DEADLINE.checked_sub(start.elapsed()).unwrap_or_default();
        let next = tokio::time::timeout(remaining, events.next()).await;
        let event = match next {
            Ok(Some(event)) => event.expect("event stream error"),
            Ok(None) => panic!("event stream ended; saw {actions:?}"),
            Err(_) => panic!("no start event for {id} within {DEADLINE:?}; saw {actions:?}"),
        };
        actions.push(event.action.clone());
        if event.action == "start" && event.id == id {
            break event;
        }
    };
    println!("start event after {:?}: {actions:?}", start.elapsed());
    assert_eq!(event.labels.get(RUN_LABEL), Some(&run.id));
    let allowed = ["start", "die", "stop", "destroy"];
    assert!(actions.iter().all(|a| allowed.contains(&a.as_str()) || a.starts_with("health_status")), "{actions:?}");

    // Then a stop shows up as die + stop.
    engine.stop_container(&id, Duration::from_secs(5)).await.expect("stop");
    let mut seen = HashSet::new();
    let start = Instant::now();
    while !(seen.contains("die") && seen.contains("stop")) {
        let remaining = DEADLINE.checked_sub(start.elapsed()).unwrap_or_default();
        match tokio::time::timeout(remaining, events.next()).await {
            Ok(Some(Ok(event))) if event.id == id => {
                seen.insert(event.action);
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for die and stop, saw {seen:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn logs_tail_should_return_the_last_lines() {
    let run = Run::new("logs").await;
    let engine = &run.engine;

    // `help` prints the usage and exits 0; unless-stopped restarts it until it is stopped.
    let mut spec = run.spec("help", IMAGE);
    spec.cmd = Some(vec!["help".to_owned()]);
    let id = engine.create_container(&spec).await.expect("create");
    engine.start_container(&id).await.expect("start");
    eventually("the usage in the logs", DEADLINE, || async {
        engine.logs_tail(&id, 1000).await.expect("logs_tail").contains("usage: meme-testserver").then_some(())
    })
    .await;
    engine.stop_container(&id, Duration::from_secs(1)).await.expect("stop");

    let all = engine.logs_tail(&id, 1000).await.expect("logs_tail");
    assert!(all.starts_with("usage: meme-testserver"), "{all}");
    let last = engine.logs_tail(&id, 2).await.expect("logs_tail 2");
    assert_eq!(last.lines().count(), 2, "{last:?}");
    assert!(all.ends_with(&last), "{last:?} is the end of {all:?}");
    assert_eq!(engine.logs_tail(&id, 0).await.expect("logs_tail 0"), "");
}

#[tokio::test]
async fn a_failed_create_should_leave_nothing_behind() {
    let run = Run::new("fail").await;
    let engine = &run.engine;
    let network = NetworkSpec { name: run.name("net"), internal: false, labels: run.labels() };
    engine.ensure_network(&network).await.expect("ensure_network");

    // A missing network or image fails the create (the engine itself would accept a missing
    // network and fail only the start).
    let mut spec = run.spec("nonet", IMAGE);
    spec.env = vec!["SECRET=do-not-print-me".to_owned()];
    spec.networks = vec![network.name.clone(), run.name("missing")];
    let err = engine.create_container(&spec).await.expect_err("create with a missing network");
    assert!(matches!(&err, EngineError::NotFound { what } if what.contains("-missing")), "{err:?}");
    assert!(!err.to_string().contains("do-not-print-me"));
    let mut spec = run.spec("noimage", &format!("{}-missing:nope", run.prefix));
    spec.env = vec!["SECRET=do-not-print-me".to_owned()];
    let err = engine.create_container(&spec).await.expect_err("create with a missing image");
    assert!(matches!(&err, EngineError::NotFound { what } if what.starts_with("image ")), "{err:?}");
    assert!(run.list().await.is_empty(), "nothing created");

    // A network removed between create and start: an error, but not "container not found".
    let doomed = NetworkSpec { name: run.name("doomed"), internal: false, labels: run.labels() };
    engine.ensure_network(&doomed).await.expect("ensure_network doomed");
    let mut spec = run.spec("orphan", IMAGE);
    spec.networks = vec![network.name.clone(), doomed.name.clone()];
    let id = engine.create_container(&spec).await.expect("create on two networks");
    engine.docker().remove_network(&doomed.name).await.expect("remove doomed network");
    let err = engine.start_container(&id).await.expect_err("start without its network");
    assert!(matches!(err, EngineError::Other { .. }), "{err:?}");
    engine.remove_container(&id).await.expect("remove orphan");

    // Files cannot be copied into a read-only root filesystem: refused before the create.
    let mut spec = run.spec("ro", IMAGE);
    spec.read_only_root_filesystem = true;
    spec.files = vec![ContainerFile { path: "/etc/x".to_owned(), mode: 0o644, content: b"x".to_vec() }];
    let err = engine.create_container(&spec).await.expect_err("files into a read-only rootfs");
    assert!(matches!(err, EngineError::Other { .. }), "{err:?}");
    // A file below a file: the copy fails after the create, and the container is removed.
    let mut spec = run.spec("badfile", IMAGE);
    spec.files = vec![ContainerFile { path: "/meme-testserver/x".to_owned(), mode: 0o644, content: b"x".to_vec() }];
    let err = engine.create_container(&spec).await.expect_err("a file below a file");
    println!("file below a file: {err}");
    assert!(run.list().await.is_empty(), "half-made container removed");

    // A name clash is a conflict.
    let spec = run.spec("twice", IMAGE);
    engine.create_container(&spec).await.expect("first create");
    let err = engine.create_container(&spec).await.expect_err("second create");
    assert!(matches!(err, EngineError::Conflict { .. }), "{err:?}");
    assert_eq!(run.list().await.len(), 1);
}

// See: #11 (item 2)
#[tokio::test]
async fn issue_11_networks_and_volumes_not_made_for_the_stack_should_be_refused_unless_a_volume_is_adopted() {
    let run = Run::new("foreign").await;
    let engine = &run.engine;
    // Made by someone else (as docker compose would), with only the run label for cleanup.
    let net = run.name("net");
    let vol = run.name("vol");
    let label = format!("{RUN_LABEL}={}", run.id);
    for (kind, name) in [("network", &net), ("volume", &vol)] {
        let status = Command::new("docker")
            .args([kind, "create", "--label", &label, "--label", "com.docker.compose.project=other", name])
            .output()
            .expect("docker create");
        assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    }
    let network = NetworkSpec { name: net.clone(), internal: false, labels: run.labels() };
    let err = engine.ensure_network(&network).await.expect_err("a foreign network is refused");
    assert!(
        matches!(&err, EngineError::Foreign { name, message } if name == &net && message.contains("docker compose project other")),
        "{err}"
    );
    let volume = VolumeSpec { name: vol.clone(), labels: run.labels(), adopt: false };
    let err = engine.ensure_volume(&volume).await.expect_err("a foreign volume is refused");
    assert!(matches!(&err, EngineError::Foreign { message, .. } if message.contains("adopt: true")), "{err}");
    // Adopted: used as it is, its labels untouched.
    engine.ensure_volume(&VolumeSpec { adopt: true, ..volume }).await.expect("an adopted volume is used");
    let inspected = engine.docker().inspect_volume(&vol).await.expect("inspect volume");
    assert_eq!(inspected.labels.get("com.docker.compose.project").map(String::as_str), Some("other"));
    assert!(!inspected.labels.contains_key("pro.memeit.stack"));

    // A container never makes a missing volume on the fly (it would lack the stack's labels).
    let mut spec = run.spec("web", IMAGE);
    spec.volumes = vec![VolumeBinding { volume: run.name("missing"), path: "/data".to_owned(), read_only: false }];
    let err = engine.create_container(&spec).await.expect_err("a missing volume is not made on the fly");
    assert!(matches!(&err, EngineError::NotFound { what } if what.contains("missing")), "{err}");
    assert!(engine.docker().inspect_volume(&run.name("missing")).await.is_err(), "no unlabelled volume was created");
}
