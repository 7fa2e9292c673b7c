//! The Docker engine stopped and started under a running controller: the controller keeps
//! running, reconnects and converges. This stops the engine for every container on it, so it is
//! opt-in: ignored by `cargo test`, and run by `hack/e2e.sh` (on its own, after every other e2e
//! test) only with `MEME_E2E_ENGINE_RESTART=1`, which `.ci/run` sets on CI's own machine.

use std::process::Command;
use std::time::Duration;

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, docker, docker_ok, wait_for};

/// The running dockerd's pid and command line, to start it again the same way.
fn dockerd() -> (u32, Vec<String>) {
    let out = Command::new("pidof").arg("dockerd").output().expect("pidof");
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a running dockerd");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("dockerd cmdline");
    let args =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    (pid, args)
}

/// The opt-in: without it the test refuses to run, even when `--ignored` selects it.
const OPT_IN: &str = "MEME_E2E_ENGINE_RESTART";

#[test]
#[ignore = "stops dockerd and with it every container on the host: opt in with MEME_E2E_ENGINE_RESTART=1"]
fn engine_restart_should_be_survived_and_converged() {
    assert!(
        std::env::var(OPT_IN).is_ok_and(|v| v == "1"),
        "this test stops dockerd (every container on the host stops): set {OPT_IN}=1 to run it"
    );
    let mut env =
        TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &Service::new("web", "meme-demo:v1").replicas(2).yaml())]);
    env.start();
    env.wait_running("web", 2, "meme-demo:v1", Duration::from_secs(60));

    let (pid, args) = dockerd();
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    wait_for("dockerd to stop", Duration::from_secs(60), || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(!docker_ok(&["info"]), "the engine is down");
    std::thread::sleep(Duration::from_secs(3));
    assert!(env.controller_alive(), "the controller survives the engine going away");

    // Detached in its own session (double fork through sh), so it outlives this test process.
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let script = format!("setsid {} </dev/null >/tmp/dockerd-e2e-restart.log 2>&1 &", quoted.join(" "));
    assert!(Command::new("sh").args(["-c", &script]).status().expect("sh").success(), "start dockerd again");
    wait_for("dockerd to answer again", Duration::from_secs(90), || docker_ok(&["info"]).then_some(()));
    assert!(env.controller_alive());

    // Converges: both replicas run again (Docker's restart policy or the controller), and a
    // change made now is applied.
    env.wait_running("web", 2, "meme-demo:v1", Duration::from_secs(90));
    let one = env.containers(Some("web"))[0].id.clone();
    docker(&["rm", "-f", &one]);
    env.wait_running("web", 2, "meme-demo:v1", Duration::from_secs(60));
    env.write_files(&[("web.yaml", &Service::new("web", "meme-demo:v2").replicas(2).yaml())]);
    env.commit("web: v2 after the engine restart");
    env.wait_running("web", 2, "meme-demo:v2", Duration::from_secs(90));
    assert!(env.controller_alive());
}
