//! Pulls from a real registry (Debian's docker-registry on loopback, with htpasswd auth):
//! credentials come from the Docker config file, a missing image is pulled, and a failed pull
//! keeps the old version running.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, docker, run, wait_for};

struct Registry {
    child: Child,
    pushed: Vec<String>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for image in &self.pushed {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn images_should_be_pulled_with_credentials_and_a_failed_pull_should_keep_the_old_version() {
    let scratch = tempfile::tempdir().unwrap();
    let run_id = format!("{}", std::process::id());
    let dir = scratch.path().join("registry");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let port = free_port();
    let htpasswd = run(Command::new("htpasswd").args(["-nbB", "e2e", "registry-pass"]));
    std::fs::write(dir.join("htpasswd"), htpasswd.trim()).unwrap();
    std::fs::write(
        dir.join("config.yml"),
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: e2e\n    path: {}\n",
            dir.join("data").display(),
            dir.join("htpasswd").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (Debian package docker-registry)");
    let mut registry = Registry { child, pushed: Vec::new() };
    let addr = format!("127.0.0.1:{port}");
    wait_for("the registry to answer", Duration::from_secs(20), || {
        meme_e2e::http_get(&addr, "/v2/").filter(|(c, _)| *c == 401)
    });

    // Log in and push with a config of the test's own (never the machine's).
    let config = scratch.path().join("docker-config");
    std::fs::create_dir_all(&config).unwrap();
    let cfg = config.to_str().unwrap();
    let mut login = Command::new("docker")
        .args(["--config", cfg, "login", &addr, "-u", "e2e", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(login.stdin.as_mut().unwrap(), b"registry-pass").unwrap();
    drop(login.stdin.take());
    assert!(login.wait().unwrap().success(), "docker login");
    let repo = format!("{addr}/e2e-{run_id}/demo");
    for v in ["v1", "v2"] {
        let image = format!("{repo}:{v}");
        docker(&["tag", &format!("meme-demo:{v}"), &image]);
        docker(&["--config", cfg, "push", &image]);
        docker(&["rmi", &image]);
        registry.pushed.push(image);
    }

    let web = |tag: &str| Service::new("web", &format!("{repo}:{tag}")).pull("IfNotPresent").yaml();
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &web("v1"))]);
    env.with_env("DOCKER_CONFIG", cfg);
    env.start();
    let v1 = env.wait_running("web", 1, &format!("{repo}:v1"), Duration::from_secs(60));
    assert!(env.event("Pulled", &format!("pulled {repo}:v1")).is_some(), "{:#?}", env.events());

    // A tag that does not exist: the pull fails, the old container keeps running, with backoff.
    // The registry says it does not exist, so the reason is ImageMissing (Stalled: a human must
    // push it or fix the tag), not an outage.
    env.write_files(&[("web.yaml", &web("v404"))]);
    env.commit("web: a tag that does not exist");
    env.wait_event("ImageMissing", "manifest unknown", Duration::from_secs(30));
    env.wait_checks("drift", 2);
    let now = env.containers(Some("web"));
    assert_eq!(now.len(), 1);
    assert_eq!(
        (now[0].id.as_str(), now[0].state.as_str()),
        (v1[0].id.as_str(), "running"),
        "the old version keeps running"
    );
    let attempts: u32 = env.events().iter().filter(|e| e.reason == "ImageMissing").map(|e| e.count).sum();
    assert!(attempts <= 6, "{attempts} pull attempts in two resyncs: no backoff");

    // The next good tag is pulled and rolled out.
    env.write_files(&[("web.yaml", &web("v2"))]);
    env.commit("web: v2");
    env.wait_running("web", 1, &format!("{repo}:v2"), Duration::from_secs(60));
}
