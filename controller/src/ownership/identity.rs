//! Who this controller is: its instance name, given (`--instance`) or derived from what it
//! follows (repository, manifests folder, ref, remote), so that the same controller restarted is
//! the same instance and two controllers of one host following different things are not.

use std::path::Path;

use sha2::{Digest, Sha256};

/// How many hex digits of the digest a derived name keeps: 48 bits, so two controllers of one
/// host collide with odds of 1 in 2^48.
const DIGEST_LEN: usize = 12;

/// The longest instance name: it goes into a Docker label and every status message.
pub const MAX_LEN: usize = 63;

/// The instance name derived from what a controller follows: `<repo folder>-<digest>`, the
/// digest over the canonical repository path, the manifests folder, the ref and the remote.
#[must_use]
pub fn derive(repo: &Path, path: &str, reference: &str, remote: Option<&str>) -> String {
    let canonical = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let mut hasher = Sha256::new();
    for part in [canonical.to_string_lossy().as_ref(), path, reference, remote.unwrap_or("")] {
        hasher.update(part.as_bytes());
        // A separator no path or ref holds, so that ("a", "bc") and ("ab", "c") differ.
        hasher.update([0]);
    }
    let digest = hex::encode(hasher.finalize());
    let folder: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .take(MAX_LEN - DIGEST_LEN - 1)
        .collect();
    let folder = folder.trim_matches('-');
    if folder.is_empty() { digest[..DIGEST_LEN].to_owned() } else { format!("{folder}-{}", &digest[..DIGEST_LEN]) }
}

/// Checks an instance name given with `--instance`: 1 to [`MAX_LEN`] characters among
/// `a-z A-Z 0-9 . _ -`, as it goes into a Docker label and file contents.
///
/// # Errors
/// Why the name is refused.
pub fn check(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LEN {
        return Err(format!("an instance name has 1 to {MAX_LEN} characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("{c:?} is not allowed in an instance name (letters, digits, '.', '_', '-')"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_should_be_stable_and_tell_different_sources_apart() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("Meme Maker");
        std::fs::create_dir_all(&repo).unwrap();
        let a = derive(&repo, "manifests/staging", "HEAD", None);
        assert_eq!(a, derive(&repo, "manifests/staging", "HEAD", None), "the same controller restarted");
        assert!(a.starts_with("meme-maker-") && a.len() == "meme-maker-".len() + DIGEST_LEN, "{a}");
        assert!(check(&a).is_ok());
        assert_ne!(a, derive(&repo, "manifests/prod", "HEAD", None));
        assert_ne!(a, derive(&repo, "manifests/staging", "main", None));
        assert_ne!(a, derive(&repo, "manifests/staging", "HEAD", Some("origin")));
        // The same folder reached through another spelling is the same instance.
        let dotted = dir.path().join(".").join("Meme Maker");
        assert_eq!(a, derive(&dotted, "manifests/staging", "HEAD", None));
    }

    #[test]
    fn check_should_refuse_names_unfit_for_a_label() {
        assert!(check("staging-1").is_ok());
        assert!(check("").is_err());
        assert!(check("a b").is_err());
        assert!(check(&"x".repeat(64)).is_err());
    }
}
