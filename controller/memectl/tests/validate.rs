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
