//! Bad input never panics the loader: arbitrary bytes, and valid manifests with random edits.

use meme_api::ManifestTree;
use proptest::prelude::*;

const VALID: &str = include_str!("../../../manifests/staging/backend.yaml");
const STACK: &str = include_str!("../../../manifests/staging/stack.yaml");

fn load(content: Vec<u8>) {
    let tree = ManifestTree::new("fuzz").with_file("stack.yaml", STACK).with_file("x.yaml", content);
    // Either outcome is fine; only a panic fails the test.
    let _ = meme_api::load(&tree);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn loader_should_not_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        load(bytes);
    }

    #[test]
    fn loader_should_not_panic_on_edited_manifests(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, "[ -~\t\n]{0,4}"), 1..6)
    ) {
        let mut text = VALID.to_owned();
        for (at, kind, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            match kind {
                0 => text.insert_str(i, &insert),
                1 => { let end = (i + insert.len().max(1)).min(text.len()); if text.is_char_boundary(end) { text.replace_range(i..end, ""); } }
                2 => text.insert_str(i, "\n---\n"),
                _ => text.insert_str(i, &format!("&a {insert} *a")),
            }
        }
        load(text.into_bytes());
    }
}
