//! `memectl validate` as a user runs it: exit codes, the summary line, compiler-style errors
//! on stderr, and `-o json`.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn validate_should_accept_the_shipped_manifests() {
    for (folder, summary) in [
        ("manifests/staging", "manifests/staging: 1 stack, 6 deployments\n"),
        ("manifests/demo", "manifests/demo: 1 stack, 3 deployments\n"),
    ] {
        cargo_bin_cmd!("memectl")
            .current_dir(repo())
            .args(["validate", folder])
            .assert()
            .success()
            .stdout(summary)
            .stderr("");
    }
}

#[test]
fn validate_should_fail_every_corpus_case_with_positioned_errors() {
    let corpus = repo().join("controller/api/tests/corpus");
    let mut cases = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let output = cargo_bin_cmd!("memectl").current_dir(&corpus).args(["validate", &name]).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}: {output:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let first = stderr.lines().next().unwrap_or_default();
        let mut parts = first.splitn(4, ':');
        let (file, line, col) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        assert!(file.starts_with(&name), "{name}: {first}");
        assert!(line.parse::<u32>().is_ok() && col.parse::<u32>().is_ok(), "{name}: no line:col in {first:?}");
        assert!(parts.next().unwrap_or("").starts_with(" error: "), "{name}: {first}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        cases += 1;
    }
    assert!(cases >= 30);
}

#[test]
fn validate_should_print_json_for_machines() {
    let corpus = repo().join("controller/api/tests/corpus");
    let output = cargo_bin_cmd!("memectl")
        .current_dir(&corpus)
        .args(["validate", "dependency-cycle", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 1);
    let d = &report["diagnostics"][0];
    assert_eq!(d["file"], "dependency-cycle/a.yaml");
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(7), Some(15)));
    assert_eq!(d["path"], "spec.dependsOn[0]");
    assert_eq!(d["message"], "dependency cycle: a -> b -> c -> a");

    let output = cargo_bin_cmd!("memectl")
        .current_dir(repo())
        .args(["validate", "manifests/staging", "-o", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["valid"].as_bool(), report["deployments"].as_u64()), (Some(true), Some(6)));
}

#[test]
fn validate_should_exit_2_on_a_missing_folder() {
    cargo_bin_cmd!("memectl")
        .args(["validate", "/nonexistent/manifests"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read /nonexistent/manifests"));
}

/// A 640 KB manifest of 160,000 `---` lines once cost documents x lines of memory (12 GB: each
/// document's text was padded with every line before it) and minutes of CPU. Now splitting is
/// linear and a revision holds at most 1,000 documents: the run stays small and says where it
/// stopped. The address-space limit makes a regression fail (allocation failure) instead of
/// taking the machine down.
// See: #11
#[test]
fn issue_11_a_file_of_document_markers_is_bounded_and_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("controller/api/tests/corpus/wrong-type/stack.yaml"), dir.path().join("stack.yaml"))
        .unwrap();
    std::fs::write(dir.path().join("bomb.yaml"), "---\n".repeat(160_000)).unwrap();
    let memectl = assert_cmd::cargo::cargo_bin!("memectl");
    let started = std::time::Instant::now();
    // 512 MiB of address space: a debug memectl maps about 20 MiB; the old splitter needed GBs.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 524288 && exec \"$0\" validate \"$1\"")
        .arg(memectl)
        .arg(dir.path())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bomb.yaml:1001:1: error: more than 1000 documents"),
        "the limit is reported at the first document over it: {stderr}"
    );
    assert!(elapsed < std::time::Duration::from_secs(20), "took {elapsed:?}");
}

/// The controller reads committed git objects, where a symbolic link is only a path: it never
/// follows one. `validate` must not either, or it accepts what the controller refuses.
// See: #11
#[test]
fn issue_11_validate_does_not_follow_symbolic_links() {
    let outside = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let corpus = repo().join("controller/api/tests/corpus/wrong-type");
    std::fs::copy(corpus.join("stack.yaml"), outside.path().join("stack.yaml")).unwrap();
    std::fs::write(outside.path().join("secret.conf"), "not in git\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("stack.yaml"), dir.path().join("stack.yaml")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.conf"), dir.path().join("app.conf")).unwrap();
    std::fs::write(
        dir.path().join("web.yaml"),
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  image: example/app:1.0\n  \
         files: [{path: /etc/app.conf, source: app.conf}]\n",
    )
    .unwrap();
    let output = cargo_bin_cmd!("memectl").current_dir(dir.path()).args(["validate", "."]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stack.yaml:1:1: warning: a symbolic link, not followed"), "{stderr}");
    assert!(
        stderr.contains("web.yaml:6:41: error: spec.files[0].source: source \"app.conf\" is a symbolic link"),
        "{stderr}"
    );
    assert!(stderr.contains("error: no Stack in ."), "the linked Stack is not read: {stderr}");
}
