//! Git push webhooks: verifying GitHub's `X-Hub-Signature-256` and Gitea's `X-Gitea-Signature`
//! (HMAC-SHA256 of the raw body) and GitLab's `X-Gitlab-Token` (the shared secret itself),
//! always in constant time, and reading which branch a push went to.

use sha2::{Digest, Sha256};

use crate::http::constant_time_eq;

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
#[must_use]
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block_key.map(|k| k ^ byte);
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Which header authenticated a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `X-Hub-Signature-256: sha256=<hex>`.
    GitHub,
    /// `X-Gitea-Signature: <hex>`.
    Gitea,
    /// `X-Gitlab-Token: <secret>`.
    GitLab,
}

/// Verifies a webhook. `header` looks a header up by (lowercase) name.
///
/// # Errors
/// Why the request is refused (no signature header, or a wrong one).
pub fn verify<'h>(
    secret: &[u8],
    body: &[u8],
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<Provider, &'static str> {
    let expected_hex = || meme_api::template::hex(&hmac_sha256(secret, body));
    if let Some(sig) = header("x-hub-signature-256") {
        let given = sig.trim().strip_prefix("sha256=").unwrap_or("");
        return if constant_time_eq(given.to_ascii_lowercase().as_bytes(), expected_hex().as_bytes()) {
            Ok(Provider::GitHub)
        } else {
            Err("invalid X-Hub-Signature-256")
        };
    }
    if let Some(sig) = header("x-gitea-signature") {
        return if constant_time_eq(sig.trim().to_ascii_lowercase().as_bytes(), expected_hex().as_bytes()) {
            Ok(Provider::Gitea)
        } else {
            Err("invalid X-Gitea-Signature")
        };
    }
    if let Some(token) = header("x-gitlab-token") {
        return if constant_time_eq(token.trim().as_bytes(), secret) {
            Ok(Provider::GitLab)
        } else {
            Err("invalid X-Gitlab-Token")
        };
    }
    Err("missing signature: expected X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token")
}

/// The ref a push event names (`refs/heads/main`), from the JSON body all three send.
#[must_use]
pub fn pushed_ref(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("ref")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_should_match_rfc4231() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(meme_api::template::hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(meme_api::template::hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn verify_should_accept_each_provider_and_refuse_forgeries() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = meme_api::template::hex(&hmac_sha256(b"s3cret", body));
        let github = format!("sha256={sig}");
        let h = |name: &'static str, value: &str| {
            let value = value.to_owned();
            move |n: &str| (n == name).then(|| Box::leak(value.clone().into_boxed_str()) as &str)
        };
        assert_eq!(verify(b"s3cret", body, h("x-hub-signature-256", &github)), Ok(Provider::GitHub));
        assert_eq!(verify(b"s3cret", body, h("x-gitea-signature", &sig)), Ok(Provider::Gitea));
        assert_eq!(verify(b"s3cret", body, h("x-gitlab-token", "s3cret")), Ok(Provider::GitLab));
        assert!(verify(b"s3cret", b"tampered", h("x-hub-signature-256", &github)).is_err());
        assert!(verify(b"other", body, h("x-gitea-signature", &sig)).is_err());
        assert!(verify(b"s3cret", body, |_| None).is_err());
        assert_eq!(pushed_ref(body).as_deref(), Some("refs/heads/main"));
    }
}
