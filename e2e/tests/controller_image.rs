//! The controller as a container (hack/build-controller-image.sh, FROM scratch with git, ssh and
//! a static sh): started with the Docker socket and a real temp repository mounted, read-only
//! root, no capabilities, on the host's network, it answers /readyz on loopback, reconciles
//! the stack through the socket (a rollout gated on httpGet probes), and follows a remote with `git fetch` inside the image (a local
//! remote: git-upload-pack run through sh).
//!
//! The image packs the debug build of this workspace (with the libraries ldd lists) so the test
//! needs no release build; the shipped image packs the static release binary the same way.

use std::process::Command;
use std::time::Duration;

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, binary, docker, docker_ok, http_get, run, wait_for, workspace};

/// Removes the test's image when dropped, even on failure.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn controller_image_should_start_answer_readyz_reconcile_and_fetch_through_the_mounted_socket() {
    let env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &Service::new("web", "meme-demo:v1").yaml())]);
    let image = Image(format!("meme-controller:e2e-{}", env.id));
    run(Command::new(workspace().join("hack/build-controller-image.sh"))
        .arg("--binary")
        .arg(binary("meme-controller"))
        .args(["--tag", &image.0]));
    let origin = env.make_origin();
    let repo = env.repo();
    let (repo, origin) = (repo.to_str().expect("utf-8"), origin.to_str().expect("utf-8"));

    // Labelled with the stack, so the harness removes it with the stack's containers.
    let name = format!("{}-controller", env.stack);
    let socket = "/var/run/docker.sock:/var/run/docker.sock";
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &format!("pro.memeit.stack={}", env.stack),
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--tmpfs",
        "/var/lib/meme-controller",
        "-v",
        socket,
        // The checkout and its origin at the same paths as on the host (the clone's remote URL).
        "-v",
        &format!("{repo}:{repo}"),
        "-v",
        &format!("{origin}:{origin}:ro"),
        // The host's network: the controller probes containers (httpGet, tcpSocket) on their
        // stack networks, which only the host reaches; it listens on loopback only.
        "--network",
        "host",
        "-e",
        &format!("MEME_LISTEN=127.0.0.1:{}", env.port),
        "-e",
        &format!("MEME_REPO={repo}"),
        "-e",
        "MEME_PATH=manifests",
        "-e",
        "MEME_REMOTE=origin",
        "-e",
        "MEME_POLL=1s",
        "-e",
        "MEME_RESYNC=2s",
        &image.0,
    ]);
    let addr = format!("127.0.0.1:{}", env.port);
    let logs = || {
        String::from_utf8_lossy(&Command::new("docker").args(["logs", &name]).output().expect("logs").stderr)
            .into_owned()
    };
    wait_for(&format!("/readyz 200 from the container\n{}", logs()), Duration::from_secs(60), || {
        (http_get(&addr, "/readyz")?.0 == 200).then_some(())
    });
    env.wait_running("web", 1, "meme-demo:v1", Duration::from_secs(60));

    // A commit pushed to the origin is fetched by git inside the image and applied.
    let ci = env.clone_of(std::path::Path::new(origin), "ci");
    std::fs::write(
        ci.join("manifests/web.yaml"),
        Service::new("web", "meme-demo:v2").yaml().replace("{stack}", &env.stack).replace("{id}", &env.id),
    )
    .expect("edit web");
    env.git_in(&ci, &["commit", "-qam", "web: v2"]);
    env.git_in(&ci, &["push", "-q", "origin", "main"]);
    env.wait_running("web", 1, "meme-demo:v2", Duration::from_secs(90));
    assert!(docker_ok(&["inspect", &name]), "the controller container is still there");
    let state = docker(&["inspect", "--format", "{{.State.Status}} {{.RestartCount}}", &name]);
    assert_eq!(state.trim(), "running 0", "{}", logs());
}
