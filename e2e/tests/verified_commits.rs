//! `--verify-commits`: only commits signed with an SSH key of the allowed-signers file are
//! applied, checked by git itself; anything else is refused, reported (status, event,
//! `meme_source_errors_total{reason="verification"}`) and the last good revision stays.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use meme_api::status::{ControllerStatus, SyncStatus};
use meme_e2e::manifests::{STACK, Service};
use meme_e2e::{TestEnv, run, wait_for};

const CONVERGE: Duration = Duration::from_secs(60);

/// An ed25519 key pair (no passphrase); returns the private key's path.
fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&key));
    key
}

/// Commits everything, signed with `key` (SSH), or unsigned when `None`; returns the commit.
fn commit(env: &TestEnv, message: &str, key: Option<&Path>) -> String {
    env.git(&["add", "-A"]);
    match key {
        Some(key) => {
            let signing = format!("user.signingkey={}", key.display());
            env.git(&["-c", "gpg.format=ssh", "-c", &signing, "commit", "-q", "-S", "--allow-empty", "-m", message])
        }
        None => env.git(&["-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", message]),
    };
    env.git(&["rev-parse", "HEAD"]).trim().to_owned()
}

fn status(env: &TestEnv) -> ControllerStatus {
    serde_json::from_str(&env.api_get("/api/v1/status").expect("status").1).expect("status JSON")
}

/// Waits until `revision` is refused; checks that the last good one stays and nothing changed.
fn refused(env: &TestEnv, revision: &str, good: &str, says: &str, count: f64) {
    let s = wait_for(&format!("{revision} refused\n{}", env.logs_tail()), Duration::from_secs(20), || {
        Some(status(env))
            .filter(|s| s.source.tip.as_ref().is_some_and(|t| t.revision == revision) && s.source.error.is_some())
    });
    let error = s.source.error.unwrap_or_default();
    assert!(error.contains("not signed by an allowed key") && error.contains(says), "{error}");
    assert_eq!(s.applied.map(|a| a.revision).as_deref(), Some(good), "the last good revision stays in force");
    assert_eq!(s.sync_status, SyncStatus::OutOfSync);
    env.wait_event("VerificationFailed", &revision[..12], Duration::from_secs(10));
    assert_eq!(env.metric("meme_source_errors_total{reason=\"verification\"}"), Some(count));
    env.wait_checks("source", 2);
    let web = env.containers(Some("web"));
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].image, "meme-demo:v1", "nothing of the refused revision was applied");
}

#[test]
fn only_commits_signed_by_an_allowed_key_should_be_applied() {
    let mut env = TestEnv::new(&[("stack.yaml", STACK), ("web.yaml", &Service::new("web", "meme-demo:v1").yaml())]);
    let keys = env.path("keys");
    std::fs::create_dir(&keys).unwrap();
    let (trusted, stranger) = (ssh_key(&keys, "trusted"), ssh_key(&keys, "stranger"));
    let allowed = keys.join("allowed_signers");
    let public = std::fs::read_to_string(trusted.with_extension("pub")).unwrap();
    std::fs::write(&allowed, format!("deploy@example.invalid {public}")).unwrap();
    // TestEnv's first commit is unsigned: a signed one on top is what the controller starts on.
    let good = commit(&env, "signed: start", Some(&trusted));
    env.with_args(&["--verify-commits", allowed.to_str().unwrap()]);
    env.start();
    env.wait_running("web", 1, "meme-demo:v1", CONVERGE);
    let applied = env.wait_event("RevisionApplied", &good[..12], Duration::from_secs(10));
    assert!(applied.message.contains("Good \"git\" signature for deploy@example.invalid"), "{}", applied.message);

    // Unsigned: refused.
    env.write_files(&[("web.yaml", &Service::new("web", "meme-demo:v2").yaml())]);
    let unsigned = commit(&env, "unsigned: v2", None);
    refused(&env, &unsigned, &good, "the commit is not signed", 1.0);

    // Signed, but by a key that is not in the file: refused.
    env.write_files(&[("web.yaml", &Service::new("web", "meme-demo:v3").yaml())]);
    let stranger_signed = commit(&env, "signed by a stranger: v3", Some(&stranger));
    refused(&env, &stranger_signed, &good, "No principal matched", 2.0);

    // Signed by the trusted key: applied.
    env.write_files(&[("web.yaml", &Service::new("web", "meme-demo:v2").yaml())]);
    let signed = commit(&env, "signed: v2", Some(&trusted));
    env.wait_running("web", 1, "meme-demo:v2", CONVERGE);
    wait_for("the signed revision applied", CONVERGE, || {
        let s = status(&env);
        (s.applied?.revision == signed && s.source.error.is_none()).then_some(())
    });
}
