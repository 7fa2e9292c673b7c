//! Stacks are isolated and owned (issue 11), on the real engine with the real binary: a
//! network or volume of the stack's name that the controller did not make for the stack is
//! never used (a docker compose volume can be adopted on purpose, its data kept); two
//! controllers on one stack do not fight (the second refuses until the first is gone, and a
//! stack can be handed over deliberately); a renamed Stack's old containers are removed once
//! the new stack runs, and its volumes are kept.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use meme_api::status::{Condition, ConditionType, ControllerStatus, SyncStatus};
use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{Container, TestEnv, containers, docker, docker_ok, http_get, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

fn status(env: &TestEnv) -> Option<ControllerStatus> {
    let (code, body) = env.api_get("/api/v1/status")?;
    (code == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

/// The stack's condition of `reason`, when it holds.
fn stack_condition(env: &TestEnv, reason: &str) -> Option<Condition> {
    status(env)?.conditions.into_iter().find(|c| c.holds() && c.reason == reason)
}

/// A service's `Stalled` condition, when it holds.
fn stalled(env: &TestEnv, service: &str) -> Option<Condition> {
    let s = status(env)?.services.into_iter().find(|s| s.name == service)?;
    s.conditions.into_iter().find(|c| c.kind == ConditionType::Stalled && c.holds())
}

fn ids(list: &[Container]) -> BTreeSet<String> {
    list.iter().map(|c| c.id.clone()).collect()
}

/// Removes Docker objects the test made outside the controller (and those of a stack name
/// other than the test env's), also when the test fails.
struct Leftovers(Vec<(&'static str, String)>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for (kind, what) in &self.0 {
            let _ = match *kind {
                "stack" => {
                    let label = format!("label=pro.memeit.stack={what}");
                    for (list, rm) in [
                        (&["ps", "-aq", "--filter"][..], &["rm", "-f"][..]),
                        (&["network", "ls", "-q", "--filter"][..], &["network", "rm"][..]),
                        (&["volume", "ls", "-q", "--filter"][..], &["volume", "rm", "-f"][..]),
                    ] {
                        let out = Command::new("docker").args(list).arg(&label).output();
                        let names = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
                        let names: Vec<&str> = names.split_whitespace().collect();
                        if !names.is_empty() {
                            let _ = Command::new("docker").args(rm).args(&names).output();
                        }
                    }
                    continue;
                }
                kind => Command::new("docker").args([kind, "rm", what.as_str()]).output(),
            };
        }
    }
}

fn stack_doc(name: &str, volumes: &str) -> String {
    format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata:\n  name: \"{name}\"\nspec:\n  networks: [{{name: internal}}]\n  volumes: [{volumes}]\n"
    )
}

// See: #11 (item 2)
#[test]
fn issue_11_a_network_or_volume_not_made_for_the_stack_is_never_used_and_a_compose_volume_can_be_adopted() {
    let web = Service::new("web", "meme-demo:v1").spec("  volumeMounts: [{name: db, mountPath: /data}]\n");
    let mut env = TestEnv::new(&[("stack.yaml", &stack_doc("{stack}", "{name: db}")), ("web.yaml", &web.yaml())]);
    // What `docker compose` made for a project of the same name: its network and its data.
    let network = format!("{}_internal", env.stack);
    let volume = format!("{}_db", env.stack);
    let _leftovers = Leftovers(vec![("network", network.clone()), ("volume", volume.clone())]);
    let project = format!("com.docker.compose.project={}", env.stack);
    docker(&["network", "create", "--label", &project, &network]);
    docker(&["volume", "create", "--label", &project, &volume]);
    let mountpoint = docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume]);
    std::fs::write(PathBuf::from(mountpoint.trim()).join("keep.txt"), "kept across the move\n").expect("write data");

    env.start();
    let condition = wait_for("web Stalled on the network", CONVERGE, || {
        stalled(&env, "web").filter(|c| c.message.contains(&format!("network {network}")))
    });
    assert_eq!(condition.reason, "ForeignObject");
    assert!(condition.message.contains("docker compose project") && condition.message.contains("nothing to adopt"));
    assert!(env.event("ForeignObject", &network).is_some(), "an event names it");
    assert!(env.containers(None).is_empty(), "nothing was created");
    assert_eq!(status(&env).map(|s| s.sync_status), Some(SyncStatus::Degraded));

    // The operator removes the stray network; the volume is next.
    docker(&["network", "rm", &network]);
    let condition = wait_for("web Stalled on the volume", CONVERGE, || {
        stalled(&env, "web").filter(|c| c.message.contains(&format!("volume {volume}")))
    });
    assert!(condition.message.contains("adopt: true"), "{}", condition.message);
    assert!(env.containers(None).is_empty(), "nothing was created");
    let labels = docker(&["network", "inspect", "--format", "{{json .Labels}}", &network]);
    assert!(labels.contains("\"pro.memeit.stack\""), "the controller made its own network: {labels}");

    // Adopted on purpose, in git: mounted with its data, its labels left as they were.
    env.write_files(&[("stack.yaml", &stack_doc("{stack}", "{name: db, adopt: true}"))]);
    env.commit("adopt the compose volume");
    let running = env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    env.wait_ready("web", 1, CONVERGE);
    // (The address comes and goes while the container is moved into rotation.)
    let file = wait_for("the container to serve the volume's file", CONVERGE, || {
        http_get(&format!("{}:8080", running[0].ip()?), "/file?path=/data/keep.txt")
    });
    assert_eq!(file, (200, "kept across the move\n".to_owned()));
    let labels = docker(&["volume", "inspect", "--format", "{{json .Labels}}", &volume]);
    assert!(labels.contains("com.docker.compose.project") && !labels.contains("pro.memeit"), "{labels}");
}

// See: #11 (item 3)
#[test]
fn issue_11_a_second_controller_on_a_stack_refuses_until_the_first_is_gone_and_a_stack_can_be_handed_over() {
    let leases = tempfile::tempdir().expect("a lease directory");
    let lease_dir = leases.path().to_str().expect("utf-8").to_owned();
    let v1 = Service::new("web", "meme-demo:v1").replicas(2);
    let mut first = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &v1.yaml())]);
    first.with_args(&["--lease-dir", &lease_dir, "--lease-ttl", "3s", "--instance", "first"]);
    first.start();
    let before = ids(&first.wait_running("web", 2, "meme-demo:v1", CONVERGE));
    first.wait_ready("web", 2, CONVERGE);
    assert!(first.containers(None).iter().all(|c| c.label("pro.memeit.instance") == "first"));

    // A second controller, another repository, the same stack name, another image: it would
    // replace everything, and the first would put it back, forever.
    let stack = first.stack.clone();
    let v2 = Service::new("web", "meme-demo:v2").replicas(2);
    let mut second = TestEnv::new(&[("stack.yaml", &STACK.replace("{stack}", &stack)), ("web.yaml", &v2.yaml())]);
    second.with_args(&["--lease-dir", &lease_dir, "--lease-ttl", "3s", "--instance", "second"]);
    second.start();
    let refusal =
        wait_for("the second controller to refuse", CONVERGE, || stack_condition(&second, "StackOwnedElsewhere"));
    assert_eq!(refusal.kind, ConditionType::Stalled);
    assert!(
        refusal.message.contains("instance first") && refusal.message.contains("which is running"),
        "{}",
        refusal.message
    );
    assert!(refusal.message.contains(&format!("{stack}.lease")), "says how to hand over: {}", refusal.message);
    assert!(second.event("StackOwnedElsewhere", "instance first").is_some());
    assert_eq!(status(&second).map(|s| (s.sync_status, s.instance)), Some((SyncStatus::OutOfSync, "second".into())));
    // Several looks of both: nothing is recreated.
    second.wait_checks("drift", 3);
    first.wait_checks("drift", 2);
    assert_eq!(ids(&first.containers(Some("web"))), before, "the second controller changed nothing");
    assert!(first.containers(None).iter().all(|c| c.image == "meme-demo:v1"));

    // The first is stopped for good (SIGKILL: no goodbye). After the lease's TTL the second
    // takes the stack over and applies its manifests.
    first.kill();
    // (`first` reads the stack's containers: both envs name the same stack.)
    first.wait_running("web", 2, "meme-demo:v2", CONVERGE);
    second.wait_ready("web", 2, CONVERGE);
    let claimed = second.wait_event("StackClaimed", "instance first", CONVERGE);
    assert!(claimed.message.contains("lease expired"), "{}", claimed.message);
    assert!(stack_condition(&second, "StackOwnedElsewhere").is_none(), "the refusal is over");
    assert!(first.containers(Some("web")).iter().all(|c| c.label("pro.memeit.instance") == "second"));

    // A deliberate hand-over back to the first, which now waits an hour for a stopped owner:
    // it refuses while the second runs, and after the second stopped...
    first.with_args(&["--lease-dir", &lease_dir, "--lease-ttl", "1h", "--instance", "first"]);
    first.start();
    wait_for("the first controller to refuse", CONVERGE, || {
        stack_condition(&first, "StackOwnedElsewhere").filter(|c| c.message.contains("instance second"))
    });
    assert!(second.terminate().is_some_and(|s| s.success()), "SIGTERM stops the second cleanly");
    first.wait_checks("drift", 2);
    let waiting = stack_condition(&first, "StackOwnedElsewhere").expect("still refused within the TTL");
    assert!(waiting.message.contains("stopped recently"), "{}", waiting.message);
    assert!(first.containers(Some("web")).iter().all(|c| c.image == "meme-demo:v2"), "nothing changed meanwhile");
    // ...removing the lease file hands the stack over at once.
    std::fs::remove_file(leases.path().join(format!("{stack}.lease"))).expect("remove the lease file");
    first.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    first.wait_ready("web", 2, CONVERGE);
    assert!(stack_condition(&first, "StackOwnedElsewhere").is_none());
}

// See: #11 (item 2)
#[test]
fn issue_11_a_renamed_stack_removes_the_old_names_containers_once_the_new_one_runs_and_keeps_its_volumes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let web =
        Service::new("web", "meme-demo:v1").replicas(2).spec("  volumeMounts: [{name: data, mountPath: /data}]\n");
    // A host port: the new stack's edge cannot start before the old one's is gone.
    let edge = format!(
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {{name: edge}}\nspec:\n  image: meme-demo:v1\n  imagePullPolicy: Never\n  init: true\n  stopGracePeriod: 2s\n  networks: [internal]\n  ports: [{{containerPort: 8080, hostPort: {port}, hostIP: 127.0.0.1}}]\n  strategy: {{type: Recreate}}\n  healthCheck: {{httpGet: {{path: /health, port: 8080}}, interval: 1s, timeout: 1s}}\n"
    );
    let mut env = TestEnv::new(&[
        ("stack.yaml", &stack_doc("{stack}-old", "{name: data}")),
        ("web.yaml", &web.yaml()),
        ("edge.yaml", &edge),
    ]);
    let old = format!("{}-old", env.stack);
    let _leftovers = Leftovers(vec![("stack", old.clone())]);
    env.start();
    let old_web = || containers(&[("pro.memeit.stack", old.as_str()), ("pro.memeit.service", "web")]);
    wait_for("the old stack to run", CONVERGE, || {
        (old_web().len() == 2 && http_get(&format!("127.0.0.1:{port}"), "/health").is_some()).then_some(())
    });

    env.write_files(&[("stack.yaml", &stack_doc("{stack}", "{name: data}"))]);
    env.commit("rename the stack");
    env.wait_running("web", 2, "meme-demo:v1", CONVERGE);
    env.wait_running("edge", 1, "meme-demo:v1", CONVERGE);
    env.wait_ready("edge", 1, CONVERGE);
    env.wait_event("StackRenamed", &format!("from {old} to {}", env.stack), CONVERGE);
    env.wait_event("StackRetired", &old, CONVERGE);
    assert!(containers(&[("pro.memeit.stack", old.as_str())]).is_empty(), "no container of the old name is left");
    let (code, _) = http_get(&format!("127.0.0.1:{port}"), "/health").expect("the new edge serves the host port");
    assert_eq!(code, 200);
    assert!(docker_ok(&["volume", "inspect", &format!("{old}_data")]), "the old stack's volume is kept");
    assert!(docker_ok(&["volume", "inspect", &format!("{}_data", env.stack)]), "the new stack has its own");
    // Restarted, the controller neither brings the old name back nor touches the new stack.
    let running = ids(&env.containers(None));
    env.kill();
    env.start();
    env.wait_checks("drift", 2);
    assert_eq!(ids(&env.containers(None)), running);
    assert!(containers(&[("pro.memeit.stack", old.as_str())]).is_empty());
}
