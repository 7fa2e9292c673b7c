//! The reconcile engine against the real Docker engine: converge, roll, heal, scale, prune,
//! adopt after a restart, and never touch what is not ours or apply a broken revision.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{Container, TestEnv, docker, docker_ok, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn ids(list: &[Container]) -> BTreeSet<String> {
    list.iter().map(|c| c.id.clone()).collect()
}

fn env_with(services: &[Service]) -> TestEnv {
    let docs: Vec<(String, String)> = services.iter().map(|s| (format!("{}.yaml", name_of(s)), s.yaml())).collect();
    let mut files: Vec<(&str, &str)> = vec![("stack.yaml", STACK)];
    files.extend(docs.iter().map(|(p, c)| (p.as_str(), c.as_str())));
    TestEnv::new(&files)
}

fn name_of(s: &Service) -> String {
    s.yaml().lines().find_map(|l| l.strip_prefix("  name: ")).unwrap_or_default().to_owned()
}

fn write_service(env: &TestEnv, s: &Service) {
    env.write_files(&[(&format!("{}.yaml", name_of(s)), &s.yaml())]);
}

#[test]
fn cold_converge_should_start_dependencies_first() {
    let cache = Service::new("cache", "meme-demo:v1").spec("  volumeMounts: [{name: data, mountPath: /data}]\n");
    let web = Service::new("web", "meme-demo:v1").replicas(2).spec("  dependsOn: [cache]\n");
    let edge = Service::new("edge", "meme-demo-hc:v1").spec("  dependsOn: [web]\n  healthCheck: null\n");
    let mut env = env_with(&[cache, web, edge]);
    env.start();
    let edge = env.wait_running("edge", 1, "meme-demo-hc:v1", CONVERGE);
    let web = env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    let cache = env.wait_running("cache", 1, "meme-demo:v1", CONVERGE);
    let created = |c: &Container| docker(&["inspect", "--format", "{{.Created}}", &c.id]).trim().to_owned();
    // RFC 3339 with nanoseconds sorts as text.
    assert!(created(&cache[0]) < created(&web[0]) && created(&cache[0]) < created(&web[1]), "cache before web");
    assert!(web.iter().all(|w| created(w) < created(&edge[0])), "web before edge");
    // Names, labels and the network alias.
    let w = &web[0];
    assert!(w.name.starts_with(&format!("{}-web-", env.stack)), "{}", w.name);
    assert_eq!(w.label("pro.memeit.managed-by"), "meme-controller");
    assert_eq!(w.label("pro.memeit.service"), "web");
    assert_eq!(w.label("pro.memeit.revision").len(), 40);
    let (status, body) = http_get(&format!("{}:8080", w.ip().unwrap()), "/env/ENV").unwrap();
    assert_eq!((status, body.as_str()), (200, "e2e\n"), "stack env reaches the container");
    let aliases = docker(&[
        "inspect",
        "--format",
        &format!("{{{{json (index .NetworkSettings.Networks \"{}_internal\").Aliases}}}}", env.stack),
        &w.id,
    ]);
    assert!(aliases.contains("\"web\""), "{aliases}");
    assert!(docker_ok(&["volume", "inspect", &format!("{}_data", env.stack)]));
}

#[test]
fn image_change_should_roll_start_first_and_keep_serving() {
    let web = Service::new("web", "meme-demo:v1").replicas(2);
    let mut env = env_with(std::slice::from_ref(&web));
    env.start();
    let old = env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    // The controller judges them ready before the rollout starts.
    env.wait_ready("web", 2, CONVERGE);

    // Poll every container of the service throughout: some answer must always come, and an old
    // container must answer until a new one is healthy.
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(Instant, usize, usize)>::new()));
    let poller = {
        let (stop, samples, stack) = (Arc::clone(&stop), Arc::clone(&samples), env.stack.clone());
        std::thread::spawn(move || {
            let mut ips = std::collections::HashMap::<String, Option<String>>::new();
            while !stop.load(Ordering::Relaxed) {
                let list = meme_e2e::containers(&[("pro.memeit.stack", &stack), ("pro.memeit.service", "web")]);
                let mut v1 = 0;
                let mut v2 = 0;
                for c in list.iter().filter(|c| c.state == "running") {
                    let ip = ips.entry(c.id.clone()).or_insert_with(|| c.ip()).clone();
                    if let Some((200, body)) = ip.and_then(|ip| http_get(&format!("{ip}:8080"), "/version")) {
                        match body.trim() {
                            "v1" => v1 += 1,
                            "v2" => v2 += 1,
                            _ => {}
                        }
                    }
                }
                samples.lock().unwrap().push((Instant::now(), v1, v2));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    // The new version takes two seconds to listen: the old one must carry the traffic meanwhile.
    write_service(&env, &Service::new("web", "meme-demo:v2").replicas(2).env("STARTUP_DELAY", "2s"));
    env.commit("web: v2");
    let new = env.wait_running("web", 2, "meme-demo:v2", CONVERGE);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    assert!(ids(&old).is_disjoint(&ids(&new)));
    let samples = samples.lock().unwrap();
    assert!(samples.len() >= 10, "{} samples", samples.len());
    let outages: Vec<_> = samples.iter().filter(|(_, v1, v2)| v1 + v2 == 0).collect();
    assert!(outages.is_empty(), "no answer at {} of {} samples", outages.len(), samples.len());
    let first_v2 = samples.iter().position(|(_, _, v2)| *v2 > 0).expect("v2 answered");
    assert!(samples[..first_v2].iter().all(|(_, v1, _)| *v1 >= 1), "v1 served until v2 was up");
    assert!(env.event("Created", "rolling update to meme-demo:v2").is_some(), "{:#?}", env.events());
}

#[test]
fn env_change_should_replace_only_that_service() {
    let a = Service::new("alpha", "meme-demo:v1");
    let b = Service::new("beta", "meme-demo:v1");
    let mut env = env_with(&[a.clone(), b.clone()]);
    env.start();
    let alpha = env.wait_running("alpha", 1, "meme-demo:v1", CONVERGE);
    let beta = env.wait_running("beta", 1, "meme-demo:v1", CONVERGE);
    write_service(&env, &b.env("LOG_LEVEL", "debug"));
    env.commit("beta: LOG_LEVEL=debug");
    let beta2 = wait_for("beta replaced", CONVERGE, || {
        let list = env.containers(Some("beta"));
        (list.len() == 1 && list[0].id != beta[0].id && list[0].state == "running").then_some(list)
    });
    let (_, body) = http_get(&format!("{}:8080", beta2[0].ip().unwrap()), "/env/LOG_LEVEL").unwrap();
    assert_eq!(body, "debug\n");
    assert_eq!(ids(&env.containers(Some("alpha"))), ids(&alpha), "alpha untouched");
    assert!(env.event("", "env LOG_LEVEL added").is_some(), "the reason names the change:\n{:#?}", env.events());
}

#[test]
fn failing_health_check_should_leave_the_old_version_serving() {
    let web = Service::new("web", "meme-demo:v1").spec("  progressDeadline: 4s\n");
    let mut env = env_with(&[web]);
    env.start();
    let old = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    env.wait_ready("web", 1, CONVERGE);
    write_service(&env, &Service::new("web", "meme-demo:v2").env("FAIL_HEALTH", "1").spec("  progressDeadline: 4s\n"));
    env.commit("web: v2, broken health");
    // The new container appears, fails to become ready, and is removed; the old one serves on.
    wait_for("a v2 container to start", CONVERGE, || {
        env.containers(Some("web")).iter().any(|c| c.image == "meme-demo:v2").then_some(())
    });
    let failed = env.wait_event("RolloutFailed", "", CONVERGE);
    wait_for("the v2 container to be removed", CONVERGE, || {
        let list = env.containers(Some("web"));
        (list.len() == 1 && list[0].id == old[0].id).then_some(())
    });
    let (status, body) = http_get(&format!("{}:8080", old[0].ip().unwrap()), "/version").unwrap();
    assert_eq!((status, body.as_str()), (200, "v1\n"));
    // Backoff: over the next two resyncs no new attempt is made.
    env.wait_checks("drift", 2);
    let list = env.containers(Some("web"));
    assert_eq!(ids(&list), ids(&old), "no hot retry loop");
    assert!(failed.message.contains("last log lines"), "the event keeps the failed container's logs: {failed:?}");
}

#[test]
fn removed_or_stopped_containers_should_be_restored() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1").replicas(2)]);
    env.start();
    let before = env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    let started = Instant::now();
    docker(&["rm", "-f", &before[0].id]);
    let after = env.wait_running("web", 2, "meme-demo:v1", Duration::from_secs(15));
    assert!(!ids(&after).contains(&before[0].id));
    eprintln!("rm -f healed in {:?}", started.elapsed());
    let started = Instant::now();
    docker(&["stop", "-t", "1", &after[1].id]);
    wait_for("stopped container started again", Duration::from_secs(15), || {
        env.containers(Some("web")).iter().find(|c| c.id == after[1].id && c.state == "running").map(|_| ())
    });
    eprintln!("docker stop healed in {:?}", started.elapsed());
    assert!(env.event("Started", &after[1].name).is_some(), "{:#?}", env.events());
}

#[test]
fn scale_should_follow_replicas() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1").replicas(3)]);
    env.start();
    let three = env.wait_running("web", 3, "meme-demo:v1", CONVERGE);
    write_service(&env, &Service::new("web", "meme-demo:v1").replicas(1));
    env.commit("web: 1 replica");
    let one = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    assert!(ids(&three).is_superset(&ids(&one)), "scaling down keeps a running container");
    write_service(&env, &Service::new("web", "meme-demo:v1").replicas(2));
    env.commit("web: 2 replicas");
    let two = env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    assert!(ids(&two).is_superset(&ids(&one)), "scaling up keeps the running container");
}

#[test]
fn removed_service_should_be_pruned_and_its_volume_kept_and_foreign_objects_untouched() {
    let keep = Service::new("keep", "meme-demo:v1");
    let gone = Service::new("gone", "meme-demo:v1").spec("  volumeMounts: [{name: data, mountPath: /data}]\n");
    let mut env = env_with(&[keep, gone]);
    // Unlabelled objects on the same engine, named after the test so they are easy to find.
    let foreign = format!("foreign-{}", env.id);
    docker(&["network", "create", &foreign]);
    docker(&["volume", "create", &foreign]);
    docker(&[
        "run",
        "-d",
        "--name",
        &foreign,
        "--network",
        &foreign,
        "-v",
        &format!("{foreign}:/data"),
        "meme-demo:v1",
    ]);
    let cleanup = Foreign(foreign.clone());
    env.start();
    env.wait_running("gone", 1, "meme-demo:v1", CONVERGE);
    env.wait_running("keep", 1, "meme-demo:v1", CONVERGE);
    env.remove_file("gone.yaml");
    env.commit("remove gone");
    wait_for("gone pruned", CONVERGE, || env.containers(Some("gone")).is_empty().then_some(()));
    assert!(docker_ok(&["volume", "inspect", &format!("{}_data", env.stack)]), "the named volume is kept");
    assert_eq!(env.containers(Some("keep")).len(), 1);
    let state = docker(&["inspect", "--format", "{{.State.Status}}", &foreign]);
    assert_eq!(state.trim(), "running", "the unlabelled container is untouched");
    assert!(docker_ok(&["network", "inspect", &foreign]) && docker_ok(&["volume", "inspect", &foreign]));
    drop(cleanup);
}

struct Foreign(String);

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker").args(["rm", "-f", &self.0]).output();
        let _ = std::process::Command::new("docker").args(["network", "rm", &self.0]).output();
        let _ = std::process::Command::new("docker").args(["volume", "rm", &self.0]).output();
    }
}

#[test]
fn restart_should_adopt_running_containers() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1").replicas(2), Service::new("db", "meme-demo:v1")]);
    env.start();
    env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    env.wait_running("db", 1, "meme-demo:v1", CONVERGE);
    env.wait_ready("web", 2, CONVERGE);
    let before = ids(&env.containers(None));
    env.kill();
    env.start();
    // The restarted controller applies the revision, then has three resyncs to (not) act.
    let head = env.git(&["rev-parse", "HEAD"]).trim().to_owned();
    wait_for("the restarted controller to apply HEAD", Duration::from_secs(20), || {
        (env.status()?["applied"]["revision"] == head.as_str()).then_some(())
    });
    env.wait_checks("drift", 3);
    assert_eq!(ids(&env.containers(None)), before, "nothing recreated after a restart");
    assert!(env.terminate().is_some_and(|s| s.success()), "SIGTERM exits cleanly");
    assert_eq!(ids(&env.containers(None)), before, "SIGTERM leaves the containers running");
    assert!(env.containers(None).iter().all(|c| c.state == "running"));
}

#[test]
fn broken_commit_should_change_nothing() {
    let mut env = env_with(&[Service::new("web", "meme-demo:v1")]);
    env.start();
    let before = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    env.write_files(&[(
        "web.yaml",
        &Service::new("web", "meme-demo:v2").spec("  replicas: many\n").yaml().replace("  replicas: 1\n", ""),
    )]);
    env.commit("broken");
    let error = wait_for("the validation error in the status", Duration::from_secs(20), || {
        let error = env.status()?["source"]["error"].as_str()?.to_owned();
        error.contains("manifests/web.yaml:").then_some(error)
    });
    assert!(error.contains("spec.replicas: expected an integer"), "{error}");
    env.wait_checks("drift", 2);
    assert_eq!(ids(&env.containers(Some("web"))), ids(&before));
    // An empty manifest set never prunes anything either.
    env.remove_file("web.yaml");
    env.remove_file("stack.yaml");
    let empty = env.commit("delete everything");
    wait_for("the empty revision refused", Duration::from_secs(20), || {
        let status = env.status()?;
        (status["source"]["tip"]["revision"] == empty.as_str() && status["source"]["error"].is_string()).then_some(())
    });
    env.wait_checks("drift", 2);
    assert_eq!(ids(&env.containers(Some("web"))), ids(&before));
}
