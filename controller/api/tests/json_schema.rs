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

/// One document as the JSON Schema judged it (`hack/check-schema.py --json`).
#[derive(Debug, serde::Deserialize)]
struct Judged {
    file: String,
    line: u32,
    status: String,
    errors: Vec<String>,
}

/// `memectl validate` (the loader) and the published JSON Schema agree on every corpus case,
/// document by document:
/// - a document the schema refuses gets at least one diagnostic from validate;
/// - a document validate refuses while parsing it (types, shapes, units, unknown fields: what a
///   schema can say) is refused by the schema too, or the YAML itself is.
///
/// Only the rules no JSON Schema can express (across documents and files: one Stack, dependsOn,
/// duplicate names, declared volumes and networks, files sources, host-port clashes) are
/// validate's alone.
// See: #9
#[test]
fn issue_9_validate_and_the_json_schema_agree_on_every_corpus_case() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cases: Vec<std::path::PathBuf> =
        std::fs::read_dir(root.join("controller/api/tests/corpus")).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    cases.extend([root.join("manifests/staging"), root.join("manifests/demo")]);
    let folders: Vec<String> = cases.iter().map(|c| c.display().to_string()).collect();
    let out = Command::new("python3")
        .current_dir(&root)
        .arg("hack/check-schema.py")
        .arg("--json")
        .args(&folders)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let judged: Vec<Judged> = serde_json::from_slice(&out.stdout).expect("check-schema.py --json prints JSON");
    let mut disagreements = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let tree = meme_api::ManifestTree::read_dir(case).unwrap();
        let parse_errors: Vec<meme_api::Diagnostic> =
            meme_api::load::parse(&tree).diagnostics.0.into_iter().filter(meme_api::Diagnostic::is_error).collect();
        let all = match meme_api::load(&tree) {
            Ok(set) => set.warnings.0,
            Err(diagnostics) => diagnostics.0,
        };
        let all: Vec<&meme_api::Diagnostic> = all.iter().filter(|d| d.is_error()).collect();
        let prefix = format!("{}/", case.display());
        let of_case: Vec<&Judged> = judged.iter().filter(|j| j.file.starts_with(&prefix)).collect();
        // The documents of a file, in order: a diagnostic belongs to the last one starting at or
        // before its line.
        let doc_of = |file: &str, line: u32| -> Option<&Judged> {
            of_case.iter().copied().filter(|j| j.file == file && j.line <= line).max_by_key(|j| j.line)
        };
        let sources: Vec<String> = meme_api::load::parse(&tree)
            .deployments
            .iter()
            .flat_map(|d| d.object.spec.files.iter().map(|f| meme_api::load::normalize_source(&f.source)))
            .collect();
        for j in &of_case {
            let rel = j.file.strip_prefix(&prefix).unwrap();
            if sources.iter().any(|s| s == rel) && !all.iter().any(|d| d.file == j.file) {
                continue; // a files source, not a manifest
            }
            compared += 1;
            let next = of_case.iter().filter(|k| k.file == j.file && k.line > j.line).map(|k| k.line).min();
            let in_doc = |d: &&&meme_api::Diagnostic| {
                d.file == j.file && (j.status == "yaml-error" || d.line >= j.line && next.is_none_or(|n| d.line < n))
            };
            if j.status != "valid" && !all.iter().any(|d| in_doc(&d)) {
                disagreements
                    .push(format!("{}:{}: the schema refuses ({:?}) what validate accepts", j.file, j.line, j.errors));
            }
        }
        for d in &parse_errors {
            let rel = d.file.strip_prefix(&format!("{}/", tree.root)).unwrap_or(&d.file);
            let display = tree.display(rel);
            match doc_of(&display, d.line) {
                Some(j) if j.status == "valid" => {
                    disagreements.push(format!("{d}: but the schema accepts the document"))
                }
                Some(_) => {}
                // Not YAML at all (not UTF-8), or the file's YAML broke before the document.
                None if std::str::from_utf8(&tree.files[rel]).is_err() => {}
                None if of_case.iter().any(|j| j.file == display && j.status == "yaml-error") => {}
                None => disagreements.push(format!("{d}: the schema checker saw no document there")),
            }
        }
    }
    assert!(compared > 100, "compared only {compared} documents");
    assert!(disagreements.is_empty(), "validate and the JSON Schema disagree:\n{}", disagreements.join("\n"));
}
