//! Fuzz target: the manifest loader (`meme_api::load`) on arbitrary bytes. The input is split at
//! its first NUL into two files beside a valid Stack — a manifest and a `files` source — so the
//! fuzzer reaches cross-file rules too. Any outcome but a panic, an abort or a hang is fine:
//! errors are the loader's job.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meme_api::ManifestTree;

const STACK: &[u8] = b"apiVersion: memeit.pro/v1alpha1\nkind: Stack\nmetadata: {name: fuzz}\nspec:\n  networks: [{name: internal}]\n  volumes: [{name: data}]\n";

fuzz_target!(|data: &[u8]| {
    let (manifest, other) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let tree = ManifestTree::new("fuzz")
        .with_file("stack.yaml", STACK)
        .with_file("web.yaml", manifest)
        .with_file("files/app.conf", other);
    let _ = meme_api::load(&tree);
});
