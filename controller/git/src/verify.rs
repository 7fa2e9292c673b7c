//! Verified commits: whether a commit carries an SSH signature by a key of an allowed-signers
//! file (git's own format, as `gpg.ssh.allowedSignersFile` reads it), decided by git itself
//! (`git verify-commit`), not by parsing signatures here.
//!
//! Only SSH signatures can pass: the OpenPGP and X.509 verifiers are replaced by `false` for
//! the call. Without that, a commit GPG-signed by any key in the keyring of the user running
//! the controller passes `verify-commit` whatever the allowed-signers file says (measured:
//! exit 0 for such a commit with `gpg.format=ssh` and the file set). `gpg.minTrustLevel=fully`
//! is what a key listed in the file gets; a key that is not listed gets less (git's "No
//! principal matched").

use std::path::Path;

use crate::{GitError, GitRepo, stderr_text_raw};

/// A commit's signature that git accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// What git said: `Good "git" signature for ci@example.com with ED25519 key SHA256:…`
    /// (principal and key fingerprint; nothing secret).
    pub summary: String,
}

impl GitRepo {
    /// Verifies that commit `rev` is signed with an SSH key listed in `allowed_signers`.
    ///
    /// # Errors
    /// [`GitError::Unverified`] when it is not (unsigned, signed by another key, a GPG or X.509
    /// signature, a bad signature); spawn and timeout errors.
    pub async fn verify_commit(&self, rev: &str, allowed_signers: &Path) -> Result<Signature, GitError> {
        let allowed = std::path::absolute(allowed_signers).unwrap_or_else(|_| allowed_signers.to_path_buf());
        let allowed_config = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
        let args = [
            "-c",
            "gpg.format=ssh",
            "-c",
            &allowed_config,
            "-c",
            "gpg.minTrustLevel=fully",
            "-c",
            "gpg.openpgp.program=false",
            "-c",
            "gpg.x509.program=false",
            "verify-commit",
            "--end-of-options",
            rev,
        ];
        let operation = format!("verify-commit {rev}");
        let out = self.run(&operation, args).await?;
        // ssh-keygen's verdict goes to stderr, one line per fact.
        let said =
            stderr_text_raw(&out).lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
        if out.status.success() {
            return Ok(Signature { summary: said });
        }
        let reason = if !said.is_empty() {
            said
        } else if self.has_signature(rev).await? {
            "its signature is not an SSH signature (OpenPGP or X.509 signatures are not accepted)".to_owned()
        } else {
            "the commit is not signed".to_owned()
        };
        Err(GitError::Unverified { revision: rev.to_owned(), reason })
    }

    /// Whether commit `rev` carries a signature header, of whatever kind.
    async fn has_signature(&self, rev: &str) -> Result<bool, GitError> {
        let operation = format!("cat-file commit {rev}");
        let out = self.run(&operation, ["cat-file", "commit", rev]).await?;
        if !out.status.success() {
            return Err(self.command_error(&operation, &out));
        }
        let headers = out.stdout.split(|&b| b == b'\n').take_while(|line| !line.is_empty());
        Ok(headers.into_iter().any(|line| line.starts_with(b"gpgsig ") || line.starts_with(b"gpgsig-sha256 ")))
    }
}
