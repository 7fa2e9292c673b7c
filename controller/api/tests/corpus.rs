//! The bad-manifest corpus: every folder under `tests/corpus/` must fail to load with exactly
//! the diagnostics in its snapshot, and the shipped manifests must load cleanly.

use std::path::Path;

use meme_api::ManifestTree;

fn load_case(dir: &Path) -> Result<meme_api::ManifestSet, meme_api::Diagnostics> {
    let mut tree = ManifestTree::read_dir(dir).expect("corpus case is readable");
    tree.root = format!("corpus/{}", dir.file_name().unwrap().to_string_lossy());
    meme_api::load(&tree)
}

#[test]
fn corpus_case_should_fail_with_its_exact_diagnostics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus holds at least 30 cases, found {}", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let diagnostics = match load_case(&case) {
            Ok(_) => panic!("corpus case {name} loaded without error"),
            Err(d) => d,
        };
        assert!(diagnostics.has_errors(), "{name}: no error");
        for d in &diagnostics.0 {
            assert!(d.line >= 1 && d.column >= 1, "{name}: {d} has no position");
        }
        insta::assert_snapshot!(name, diagnostics.to_string());
    }
}

#[test]
fn shipped_manifests_should_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests");
    for (folder, services) in [("staging", 6), ("demo", 3)] {
        let tree = ManifestTree::read_dir(&root.join(folder)).unwrap();
        let set = meme_api::load(&tree).unwrap_or_else(|d| panic!("manifests/{folder}:\n{d}"));
        assert_eq!(set.deployments.len(), services, "manifests/{folder}");
        assert!(set.warnings.0.is_empty(), "manifests/{folder}: {}", set.warnings);
    }
}
