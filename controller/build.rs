//! Build script of both binaries' crates (memectl points here too): records the git commit they
//! are built from, for `--version` (`MEME_BUILD_COMMIT`, read with `env!` in each `lib.rs`).
//!
//! The commit is, in this order: `$MEME_GIT_COMMIT` when set (a packager building from a
//! tarball who knows it), `HEAD` of the git repository whose top is this workspace, or
//! `unknown` (a tarball or a clean copy without `.git`). A repository that merely *contains*
//! the workspace (an unpacked tarball inside someone's home repository) is not ours, so its
//! HEAD is never reported.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // Cargo re-runs a script whose own source changed; otherwise only when these say so.
    println!("cargo:rerun-if-env-changed=MEME_GIT_COMMIT");
    let commit = std::env::var("MEME_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MEME_BUILD_COMMIT={commit}");
}

/// `HEAD` of the workspace's own repository, with the files whose change moves it registered
/// for a re-run (so a new commit is picked up without `cargo clean`).
fn git_head() -> Option<String> {
    let root = workspace_root()?;
    let top = git(&root, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    let head = git(&root, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])?;
    // HEAD itself, the branch it points at (loose) and packed-refs (where a packed branch is).
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&root, &["symbolic-ref", "--quiet", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&root, &["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(head)
}

/// The nearest ancestor of this package holding `Cargo.lock`: the workspace root.
fn workspace_root() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    dir.ancestors().find(|d| d.join("Cargo.lock").is_file()).map(Path::to_path_buf)
}

/// Runs git in `dir`; its trimmed stdout when it succeeds with output.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
