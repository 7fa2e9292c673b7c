//! `memectl diff` against the real Docker engine: a container started here with the labels the
//! controller writes (its field digests computed with meme_api, as the controller does) stands
//! for a running service. Everything is named after a unique stack and removed at the end, even
//! when the test fails.

#[allow(dead_code)]
mod gitrepo;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use gitrepo::{API, Repo, memectl};
use meme_api::template::secret_digest;
use meme_api::v1alpha1::SecretKeySelector;
use meme_api::{ContainerTemplate, ManifestTree};

const SECRET: &str = "s3cret-do-not-print";

/// Removes the containers it names when dropped.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", "-v", name]).output();
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds the local demo images if `meme-demo:v1` is missing (no registry is reachable).
fn ensure_image() {
    let present = Command::new("docker").args(["image", "inspect", "meme-demo:v1"]).output().expect("docker CLI");
    if present.status.success() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/build-images.sh");
    let status = Command::new("bash").arg(script).arg("v1").status().unwrap();
    assert!(status.success(), "hack/build-images.sh v1 failed");
}

/// The labels the controller would put on replica 1 of `web` from the manifests in `folder`.
fn controller_labels(repo: &Repo, folder: &str, stack: &str, revision: &str, secrets: &Path) -> Vec<(String, String)> {
    let tree = ManifestTree::read_dir(&repo.file(folder)).unwrap();
    let set = meme_api::load(&tree).unwrap_or_else(|d| panic!("{d}"));
    let template = ContainerTemplate::all(&set).remove("web").unwrap();
    let mut digests = BTreeMap::new();
    for selector in template.secret_refs() {
        let bytes = std::fs::read(secrets.join(&selector.name).join(&selector.key)).unwrap();
        digests.insert(SecretKeySelector::clone(selector), secret_digest(&bytes));
    }
    vec![
        ("pro.memeit.managed-by".into(), "meme-controller".into()),
        ("pro.memeit.stack".into(), stack.into()),
        ("pro.memeit.service".into(), "web".into()),
        ("pro.memeit.spec-hash".into(), template.spec_hash(&digests)),
        ("pro.memeit.revision".into(), revision.into()),
        ("pro.memeit.replica".into(), "1".into()),
        ("pro.memeit.fields".into(), serde_json::to_string(&template.field_digests(&digests)).unwrap()),
    ]
}

/// `docker run -d` of meme-demo:v1 with these labels and environment.
fn run_container(name: &str, labels: &[(String, String)], env: &[&str]) {
    let mut args = vec!["run".to_owned(), "-d".to_owned(), "--name".to_owned(), name.to_owned()];
    for (key, value) in labels {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    }
    for var in env {
        args.push("-e".into());
        args.push((*var).to_owned());
    }
    args.push("meme-demo:v1".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args);
}

#[test]
fn diff_should_compare_the_manifests_with_the_running_containers() {
    ensure_image();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let stack = format!("memectl-diff-{}-{nanos}", std::process::id());
    let web = format!("{stack}-web-1");
    let old = format!("{stack}-old-1");
    let _cleanup = Containers(vec![web.clone(), old.clone()]);

    let secrets = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(secrets.path().join("demo")).unwrap();
    std::fs::write(secrets.path().join("demo/api-token"), format!("{SECRET}\n")).unwrap();
    let secrets_dir = secrets.path().display().to_string();

    let repo = Repo::new();
    // Only web runs; the test stack has no cache.
    repo.write_manifests("manifests", &stack, "meme-demo:v1", "info", 1, "hello\n");
    repo.remove("manifests/cache.yaml");
    let v1 = repo.commit("web v1");
    let labels = controller_labels(&repo, "manifests", &stack, &v1, secrets.path());
    let token = format!("API_TOKEN={SECRET}");
    run_container(&web, &labels, &["LOG_LEVEL=info", "ENV=test", &token]);

    repo.write_manifests("manifests", &stack, "meme-demo:v2", "debug", 1, "hello\n");
    repo.remove("manifests/cache.yaml");
    repo.write("manifests/api.yaml", API);
    let v2 = repo.commit("web v2, api");

    // The running container is v1: equal, exit 0, and it says so.
    let output = memectl(repo.path())
        .args(["diff", &v1, "--path", "manifests", "--secrets-dir", &secrets_dir])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("No differences: the running containers of {stack} match manifests at {}.\n", &v1[..12])
    );

    // Without the secrets, the secret is not compared: a note, still equal.
    let output = memectl(repo.path()).args(["diff", &v1, "--path", "manifests"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("web: env API_TOKEN (secret): not compared"), "{stderr}");

    // A labelled service that no manifest names.
    let mut orphan = labels.clone();
    for (key, value) in &mut orphan {
        if key == "pro.memeit.service" {
            *value = "old".into();
        }
    }
    run_container(&old, &orphan, &[]);

    // HEAD (v2): the image and env change, api is missing, old is extra: exit 1.
    let output =
        memectl(repo.path()).args(["diff", "--path", "manifests", "--secrets-dir", &secrets_dir]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "+ api (not running)\n\
         - old (running, not in manifests)\n\
         ~ web\n    image: meme-demo:v1 -> meme-demo:v2\n    env LOG_LEVEL: info -> debug\n",
        "{output:?}"
    );
    assert!(!format!("{output:?}").contains(SECRET), "a secret value was printed: {output:?}");

    let output = memectl(repo.path())
        .args(["diff", &v2, "--path", "manifests", "--secrets-dir", &secrets_dir, "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((doc["mode"].as_str(), doc["stack"].as_str()), (Some("online"), Some(stack.as_str())));
    assert_eq!((doc["from"].as_str(), doc["to"].as_str()), (Some("running"), Some(v2.as_str())));
    assert_eq!(doc["equal"], false);
    let web_diff = doc["services"].as_array().unwrap().iter().find(|s| s["name"] == "web").unwrap();
    assert_eq!(web_diff["changes"][0]["field"], "image");
    assert_eq!(web_diff["changes"][0]["from"], "meme-demo:v1");
    assert_eq!(web_diff["changes"][0]["to"], "meme-demo:v2");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECRET));
}
