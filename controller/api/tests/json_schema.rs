//! The generated JSON Schemas accept the shipped manifests and reject bad ones when checked by
//! an independent validator (Python's `jsonschema`, as editors use such schemas).

use std::path::Path;
use std::process::Command;

fn check_schema(folders: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Command::new("python3")
        .current_dir(&root)
        .arg("hack/check-schema.py")
        .args(folders)
        .output()
        .expect("python3 runs (.ci/run installs python3-jsonschema and python3-yaml)")
}

#[test]
fn json_schema_should_accept_the_shipped_manifests() {
    let out = check_schema(&["manifests/staging", "manifests/demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("checked 11 documents, 0 errors"), "{stdout}");
}

#[test]
fn json_schema_should_reject_a_bad_manifest() {
    let out = check_schema(&["controller/api/tests/corpus/unknown-field", "controller/api/tests/corpus/wrong-type"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("'replica' was unexpected"), "{stdout}");
    assert!(stdout.contains("'three' is not of type 'integer'"), "{stdout}");
}
