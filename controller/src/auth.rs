//! Who may call the API: the bearer token that mutations need, and the signatures of push
//! webhooks (GitHub's `X-Hub-Signature-256` and Gitea's `X-Gitea-Signature`, HMAC-SHA256 of the
//! raw body; GitLab's `X-Gitlab-Token`, the shared secret itself). Secrets are compared in
//! constant time by RustCrypto's `subtle` and `hmac` (`Mac::verify_slice`), never by hand: a
//! hand-written `fold` has no optimisation barrier. A refusal says why, never what was expected.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Checks an `Authorization` header against the expected bearer token. The scheme is matched
/// case-insensitively (`bearer` is `Bearer`, RFC 7235 §2.1) and the token in constant time.
///
/// # Errors
/// Why the request is refused: no header, another scheme, or a wrong token.
pub fn check_bearer(expected: &[u8], authorization: Option<&str>) -> Result<(), &'static str> {
    const MISSING: &str = "missing Authorization: Bearer <token> header";
    let header = authorization.ok_or(MISSING)?.trim_start();
    let (scheme, token) = header.split_once([' ', '\t']).ok_or(MISSING)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(MISSING);
    }
    if bool::from(token.trim().as_bytes().ct_eq(expected)) { Ok(()) } else { Err("invalid bearer token") }
}

/// Which header authenticated a webhook.
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
pub fn verify_webhook<'h>(
    secret: &[u8],
    body: &[u8],
    header: impl Fn(&str) -> Option<&'h str>,
) -> Result<Provider, &'static str> {
    if let Some(sig) = header("x-hub-signature-256") {
        let given = sig.trim().strip_prefix("sha256=").unwrap_or("");
        return if signature_matches(secret, body, given) {
            Ok(Provider::GitHub)
        } else {
            Err("invalid X-Hub-Signature-256")
        };
    }
    if let Some(sig) = header("x-gitea-signature") {
        return if signature_matches(secret, body, sig.trim()) {
            Ok(Provider::Gitea)
        } else {
            Err("invalid X-Gitea-Signature")
        };
    }
    if let Some(token) = header("x-gitlab-token") {
        return if bool::from(token.trim().as_bytes().ct_eq(secret)) {
            Ok(Provider::GitLab)
        } else {
            Err("invalid X-Gitlab-Token")
        };
    }
    Err("missing signature: expected X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token")
}

/// Whether `hex_signature` (either case) is the HMAC-SHA256 of `body` under `secret`.
fn signature_matches(secret: &[u8], body: &[u8], hex_signature: &str) -> bool {
    let Ok(given) = hex::decode(hex_signature) else { return false };
    hmac_sha256(secret, body).verify_slice(&given).is_ok()
}

/// HMAC-SHA256 of `message` under `key`, not yet finalized.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (RFC 2104 hashes long ones): this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac
}

/// The lowercase hex HMAC-SHA256 signature a sender computes.
#[cfg(test)]
fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, body).finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hmac_should_match_rfc4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            sign(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn headers(name: &'static str, value: &str) -> impl Fn(&str) -> Option<&'static str> {
        let value: &'static str = Box::leak(value.to_owned().into_boxed_str());
        move |n: &str| (n == name).then_some(value)
    }

    #[test]
    fn verify_should_accept_each_provider_and_refuse_forgeries() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = sign(b"s3cret", body);
        let github = format!("sha256={sig}");
        assert_eq!(verify_webhook(b"s3cret", body, headers("x-hub-signature-256", &github)), Ok(Provider::GitHub));
        let upper = format!("sha256={}", sig.to_uppercase());
        assert_eq!(verify_webhook(b"s3cret", body, headers("x-hub-signature-256", &upper)), Ok(Provider::GitHub));
        assert_eq!(verify_webhook(b"s3cret", body, headers("x-gitea-signature", &sig)), Ok(Provider::Gitea));
        assert_eq!(verify_webhook(b"s3cret", body, headers("x-gitlab-token", "s3cret")), Ok(Provider::GitLab));
        assert!(verify_webhook(b"s3cret", b"tampered", headers("x-hub-signature-256", &github)).is_err());
        assert!(verify_webhook(b"other", body, headers("x-gitea-signature", &sig)).is_err());
        assert!(verify_webhook(b"s3cret", body, headers("x-gitea-signature", &sig[..62])).is_err(), "truncated");
        assert!(verify_webhook(b"s3cret", body, headers("x-hub-signature-256", &sig)).is_err(), "no sha256=");
        assert!(verify_webhook(b"s3cret", body, headers("x-gitlab-token", "s3cre")).is_err());
        assert!(verify_webhook(b"s3cret", body, |_| None).is_err());
    }

    #[test]
    fn bearer_should_match_the_scheme_in_any_case_and_the_token_exactly() {
        for header in ["Bearer tok", "bearer tok", "BEARER tok", "Bearer  tok ", "bEaReR\ttok"] {
            assert_eq!(check_bearer(b"tok", Some(header)), Ok(()), "{header:?}");
        }
        assert_eq!(check_bearer(b"tok", Some("Bearer toK")), Err("invalid bearer token"));
        assert_eq!(check_bearer(b"tok", Some("Bearer tok2")), Err("invalid bearer token"));
        assert_eq!(check_bearer(b"tok", Some("Bearer ")), Err("invalid bearer token"));
        for header in [None, Some(""), Some("Bearer"), Some("Basic dG9rOg=="), Some("Bearertok")] {
            assert_eq!(check_bearer(b"tok", header), Err("missing Authorization: Bearer <token> header"), "{header:?}");
        }
    }

    /// Cases per property: 2,000 by default (1.2-1.4 s in a debug build here); `.ci/run` sets
    /// `MEME_FUZZ_CASES` for a longer bounded run.
    fn cases() -> u32 {
        std::env::var("MEME_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
    }

    proptest! {
        // The webhook verifier's properties, bounded: whatever the headers and body, it never
        // panics and accepts only the signature of exactly this body under exactly this secret.
        // Here so that `cargo test` checks them on stable with nothing to install; the
        // coverage-guided target (fuzz/fuzz_targets/webhook_verifier.rs, hack/fuzz.sh) compiles
        // this very file and checks the same properties under AddressSanitizer.
        #![proptest_config(ProptestConfig::with_cases(cases()))]
        #[test]
        fn verify_should_accept_only_the_right_signature(
            secret in proptest::collection::vec(any::<u8>(), 1..80),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            other_body in proptest::collection::vec(any::<u8>(), 0..300),
            junk in ".{0,80}",
            flip in 0usize..64,
        ) {
            let good = sign(&secret, &body);
            let hub = format!("sha256={good}");
            prop_assert_eq!(verify_webhook(&secret, &body, headers("x-hub-signature-256", &hub)), Ok(Provider::GitHub));
            prop_assert_eq!(verify_webhook(&secret, &body, headers("x-gitea-signature", &good)), Ok(Provider::Gitea));
            // One hex digit changed: refused.
            let mut forged = good.clone().into_bytes();
            forged[flip] = if forged[flip] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(forged).unwrap();
            prop_assert!(verify_webhook(&secret, &body, headers("x-gitea-signature", &forged)).is_err());
            // Another body under the same signature: refused unless it is the same body.
            let other = verify_webhook(&secret, &other_body, headers("x-gitea-signature", &good));
            prop_assert_eq!(other.is_ok(), other_body == body);
            // Arbitrary header text never panics and never passes.
            for name in ["x-hub-signature-256", "x-gitea-signature"] {
                prop_assert!(verify_webhook(&secret, &body, headers(name, &junk)).is_err());
            }
            let gitlab = verify_webhook(&secret, &body, headers("x-gitlab-token", &junk));
            prop_assert_eq!(gitlab.is_ok(), junk.trim().as_bytes() == secret.as_slice());
        }

        #[test]
        fn bearer_should_never_accept_another_token(
            token in "[!-~]{1,40}",
            presented in ".{0,60}",
        ) {
            let header = format!("Bearer {presented}");
            let accepted = check_bearer(token.as_bytes(), Some(&header)).is_ok();
            prop_assert_eq!(accepted, presented.trim() == token);
        }
    }
}
