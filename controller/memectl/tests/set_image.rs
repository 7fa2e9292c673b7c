//! `memectl set image` golden files: the edited manifests are snapshotted whole, and every test
//! also checks byte by byte that nothing but the image values changed (comments, quoting, flow
//! and block style, key order, the other documents of a multi-document file, line endings).

use std::path::Path;

use meme_api::ManifestTree;
use memectl::cli::CheckError;
use memectl::cmd::set::{Edited, set_images};

fn fixture(name: &str) -> ManifestTree {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/set-image").join(name);
    let mut tree = ManifestTree::read_dir(&dir).expect("fixture");
    tree.root = name.to_owned();
    tree
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(s, i)| ((*s).to_owned(), (*i).to_owned())).collect()
}

fn text(tree: &ManifestTree, file: &str) -> String {
    String::from_utf8(tree.files[file].to_vec()).expect("utf-8")
}

/// The differing middle of two texts once their common prefix and suffix are cut off.
fn changed_region<'a>(old: &'a str, new: &'a str) -> (&'a str, &'a str) {
    let prefix = old.bytes().zip(new.bytes()).take_while(|(a, b)| a == b).count();
    let (old, new) = (&old[prefix..], &new[prefix..]);
    let suffix = old.bytes().rev().zip(new.bytes().rev()).take_while(|(a, b)| a == b).count();
    (&old[..old.len() - suffix], &new[..new.len() - suffix])
}

/// Files without a change are identical; in a changed file, exactly one line per change differs,
/// and only inside the image text (old image out, new image in).
fn assert_only_images_changed(before: &ManifestTree, edited: &Edited) {
    assert_eq!(before.files.keys().collect::<Vec<_>>(), edited.tree.files.keys().collect::<Vec<_>>());
    for (file, old_bytes) in &before.files {
        let in_file: Vec<_> = edited.changes.iter().filter(|c| c.file == *file).collect();
        if in_file.is_empty() {
            assert_eq!(old_bytes, &edited.tree.files[file], "{file} changed but no image of it did");
            continue;
        }
        let (old, new) = (text(before, file), text(&edited.tree, file));
        let (old_lines, new_lines): (Vec<&str>, Vec<&str>) = (old.split('\n').collect(), new.split('\n').collect());
        assert_eq!(old_lines.len(), new_lines.len(), "{file}: lines were added or removed");
        let differing: Vec<(&str, &str)> =
            old_lines.iter().zip(&new_lines).filter(|(a, b)| a != b).map(|(a, b)| (*a, *b)).collect();
        assert_eq!(differing.len(), in_file.len(), "{file}: one line per changed image");
        for (old_line, new_line) in differing {
            let (out, into) = changed_region(old_line, new_line);
            assert!(
                in_file.iter().any(|c| c.old.contains(out) && c.new.contains(into)),
                "{file}: {old_line:?} -> {new_line:?} changes {out:?} into {into:?}, not an image"
            );
        }
    }
}

#[test]
fn set_image_should_change_only_the_image_values_in_every_style() {
    let before = fixture("styles");
    let edited = set_images(
        &before,
        &pairs(&[
            ("plain", "ghcr.io/org/plain:2.0.0"),
            ("double", "ghcr.io/org/double:2.0.0"),
            ("single", "registry.example.com:5000/org/single:2.0.0"),
            ("flow", "ghcr.io/org/flow:2.0.0"),
        ]),
    )
    .expect("set image");
    assert_only_images_changed(&before, &edited);
    let summary: Vec<String> =
        edited.changes.iter().map(|c| format!("{} {}: {} -> {}", c.location, c.service, c.old, c.new)).collect();
    insta::assert_snapshot!("styles_changes", summary.join("\n"));
    insta::assert_snapshot!("styles_apps_yaml", text(&edited.tree, "apps.yaml"));
}

#[test]
fn set_image_should_keep_crlf_line_endings() {
    let lf = fixture("styles");
    let mut crlf = lf.clone();
    for content in crlf.files.values_mut() {
        *content = String::from_utf8(content.to_vec()).expect("utf-8").replace('\n', "\r\n").into_bytes().into();
    }
    let wanted = pairs(&[("plain", "ghcr.io/org/plain:3"), ("flow", "ghcr.io/org/flow:3")]);
    let from_lf = set_images(&lf, &wanted).expect("lf");
    let from_crlf = set_images(&crlf, &wanted).expect("crlf");
    assert_only_images_changed(&crlf, &from_crlf);
    assert_eq!(text(&from_crlf.tree, "apps.yaml"), text(&from_lf.tree, "apps.yaml").replace('\n', "\r\n"));
}

#[test]
fn set_image_should_leave_an_image_already_set_alone() {
    let before = fixture("styles");
    let edited = set_images(&before, &pairs(&[("plain", "ghcr.io/org/plain:1.0.0")])).expect("no-op");
    assert!(edited.changes.is_empty());
    assert_eq!(edited.tree, before);
}

#[test]
fn set_image_should_edit_the_staging_manifests_in_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/staging");
    let before = ManifestTree::read_dir(&dir).expect("manifests/staging");
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let edited = set_images(
        &before,
        &pairs(&[
            ("backend", &format!("ghcr.io/your-org/meme-maker-backend:{sha}")),
            ("worker", &format!("ghcr.io/your-org/meme-maker-worker:{sha}")),
        ]),
    )
    .expect("set image");
    assert_eq!(edited.files().into_iter().collect::<Vec<_>>(), ["backend.yaml", "worker.yaml"]);
    assert_only_images_changed(&before, &edited);
}

/// The refusal's message, checking it is a [`CheckError`] (exit 1).
fn refusal(tree: &ManifestTree, wanted: &[(&str, &str)]) -> String {
    let error = set_images(tree, &pairs(wanted)).expect_err("refused");
    assert!(error.chain().any(|c| c.is::<CheckError>()), "not a refusal: {error:#}");
    format!("{error:#}")
}

#[test]
fn set_image_should_refuse_unknown_services_invalid_references_and_aliases() {
    let styles = fixture("styles");
    let unknown = refusal(&styles, &[("plain", "a:1"), ("web", "a:1")]);
    assert_eq!(unknown, "no Deployment named web in styles (there are: double, flow, plain, single, untouched)");
    let invalid = refusal(&styles, &[("plain", "GHCR.io/Org/Plain:1")]);
    assert!(invalid.starts_with("invalid image reference \"GHCR.io/Org/Plain:1\" for plain: "), "{invalid}");
    assert_eq!(refusal(&styles, &[("plain", "a:1"), ("plain", "a:2")]), "plain is given twice");

    // An anchored image also used elsewhere in its document: editing the anchor would change
    // that too, so nothing is written.
    let anchored = ManifestTree::new("anchored").with_file("stack.yaml", text(&styles, "stack.yaml")).with_file(
        "web.yaml",
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  image: &img web:1\n  \
         env: [{name: IMAGE, value: *img}]\n",
    );
    let message = refusal(&anchored, &[("web", "web:2")]);
    assert!(
        message.contains("not as a plain or quoted scalar") || message.contains("would change more than the images"),
        "{message}"
    );
    // An alias as the image itself.
    let aliased = ManifestTree::new("aliased").with_file("stack.yaml", text(&styles, "stack.yaml")).with_file(
        "web.yaml",
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: web, labels: {img: &img web:1}}\n\
         spec:\n  image: *img\n",
    );
    assert!(refusal(&aliased, &[("web", "web:2")]).contains("written as \"*img\""));

    // Manifests already invalid: nothing to build on.
    let broken = ManifestTree::new("broken").with_file("stack.yaml", text(&styles, "stack.yaml")).with_file(
        "web.yaml",
        "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  image: web:1\n  replicas: many\n",
    );
    assert!(refusal(&broken, &[("web", "web:2")]).starts_with("the manifests in broken are invalid"));
}
