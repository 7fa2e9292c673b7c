//! Regression tests named after the issues that found them; the inputs are corpus cases (whose
//! exact output is also snapshotted by `corpus.rs`) or built here when they must be large.

use std::path::Path;

use meme_api::ManifestTree;

fn diagnostics_of(case: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(case);
    let mut tree = ManifestTree::read_dir(&dir).expect("corpus case is readable");
    tree.root = case.to_owned();
    match meme_api::load(&tree) {
        Ok(_) => panic!("{case} loaded without error"),
        Err(d) => d.to_string(),
    }
}

// See: #9
#[test]
fn issue_9_quoted_numbers_are_strings_as_the_json_schema_says() {
    let text = diagnostics_of("quoted-number");
    assert!(
        text.contains("web.yaml:7:13: error: spec.replicas: expected an integer, found the string \"2\""),
        "{text}"
    );
    assert!(text.contains("spec.init: expected true or false, found the string \"true\""), "{text}");
    let text = diagnostics_of("number-where-text-is-expected");
    assert!(text.contains("spec.user: expected text, found the number 1000: quote it (\"1000\")"), "{text}");
}

// See: #9
#[test]
fn issue_9_memory_units_follow_kubernetes_and_refuse_ambiguous_spellings() {
    let text = diagnostics_of("memory-ambiguous-units");
    assert!(text.contains("ambiguous quantity \"512m\""), "{text}");
    assert!(text.contains("write 512Mi"), "{text}");
    assert!(text.contains("ambiguous quantity \"256MB\""), "{text}");
    let quantity = |s: &str| meme_api::units::ByteQuantity::parse(s).map(meme_api::units::ByteQuantity::bytes);
    assert_eq!(quantity("512M"), Ok(512_000_000));
    assert_eq!(quantity("512Mi"), Ok(512 << 20));
}

// See: #9
#[test]
fn issue_9_a_syntax_error_says_the_cross_file_checks_were_skipped() {
    let text = diagnostics_of("syntax-error-hides-cross-file-checks");
    assert!(text.contains("worker.yaml:7:19: error: YAML syntax"), "{text}");
    // web.yaml names a missing service and an undeclared volume: not checked, and said so.
    assert!(!text.contains("dependsOn names"), "{text}");
    assert!(text.ends_with(
        "worker.yaml:7:19: note: the checks across files (exactly one Stack, dependsOn, the Stack's volumes and \
         networks) were skipped because this file could not be read completely; fix it and validate again\n"
    ));
}

// See: #9
#[test]
fn issue_9_a_tab_that_breaks_a_scalar_is_reported_at_the_tab() {
    // The scalar `app` starts on line 7; the tab is at the start of line 8.
    let text = diagnostics_of("tab-in-scalar");
    assert!(text.starts_with("tab-in-scalar/web.yaml:8:1: error: YAML syntax:"), "{text}");
}

// See: #9
#[test]
fn issue_9_a_files_source_that_is_a_manifest_is_refused_at_its_line() {
    let text = diagnostics_of("files-source-is-a-manifest");
    assert!(
        text.starts_with(
            "files-source-is-a-manifest/web.yaml:8:43: error: spec.files[0].source: source \"stack.yaml\" is a manifest"
        ),
        "{text}"
    );
    // The Stack did not silently disappear.
    assert!(!text.contains("no Stack") && !text.contains("no manifests"), "{text}");
}

// See: #11
#[test]
fn issue_11_replicas_are_capped_per_service_and_per_stack() {
    let text = diagnostics_of("replicas-over-cap");
    assert!(text.contains("web.yaml:7:13: error: spec.replicas: 100000 replicas is over the limit of 100"), "{text}");
    let text = diagnostics_of("stack-replicas-over-cap");
    assert!(text.contains("add up to 1099 replicas, over the limit of 1000"), "{text}");
}

// See: #11
#[test]
fn issue_11_a_nul_byte_in_an_env_value_is_refused() {
    let text = diagnostics_of("env-nul-byte");
    assert!(text.contains("web.yaml:8:31: error: spec.env[0].value: a NUL byte in an environment value"), "{text}");
}

// See: #11
#[test]
fn issue_11_document_splitting_is_linear_and_bounded() {
    // 160,000 empty documents: the first 1,000 are read, the rest refused at the 1,001st.
    let tree = ManifestTree::new("m").with_file("a.yaml", "---\n".repeat(160_000)).with_file("b.yaml", "kind: Stack\n");
    let started = std::time::Instant::now();
    let text = meme_api::load(&tree).unwrap_err().to_string();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(text.starts_with("m/a.yaml:1001:1: error: more than 1000 documents in m"), "{text}");
    assert!(!text.contains("b.yaml"), "files after the limit are not read: {text}");
    // Later documents keep their file positions although each is parsed from its own text.
    let many: String = (0..900).map(|i| format!("---\nkind: Deployment\napiVersion: memeit.pro/v1alpha1\nmetadata: {{name: s{i}}}\nspec: {{image: x, replicas: \"1\"}}\n")).collect();
    let text = meme_api::load(&ManifestTree::new("m").with_file("a.yaml", many)).unwrap_err().to_string();
    assert!(text.contains("m/a.yaml:4500:28: error: spec.replicas"), "{}", text.lines().last().unwrap_or_default());
}
