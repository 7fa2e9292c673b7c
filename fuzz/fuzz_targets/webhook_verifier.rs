//! Fuzz target: the webhook verifier and the bearer check (`controller/src/auth.rs`, the very
//! functions the HTTP handlers call) on arbitrary secrets, bodies and header values. Properties:
//! nothing panics; an accepted webhook carried this body's HMAC under this secret (or, for
//! GitLab, the secret itself); the true signature always verifies, whatever the hex case and the
//! whitespace around it; one changed hex digit, body byte or secret byte never verifies; an
//! accepted bearer header carried exactly the token.
//!
//! The module is compiled from its source file rather than through the `meme-controller` crate:
//! it needs only hmac, sha2, subtle and hex, while the crate would bring tokio, axum and bollard
//! into the instrumented build.
#![no_main]

#[path = "../../controller/src/auth.rs"]
mod auth;

use auth::{Provider, check_bearer, verify_webhook};
use hmac::{Hmac, Mac};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

/// The header names the verifier reads, in the order it reads them.
const HUB: &str = "x-hub-signature-256";
const GITEA: &str = "x-gitea-signature";
const GITLAB: &str = "x-gitlab-token";

/// The HMAC-SHA256 of `body` under `secret`, computed here (as a sender does).
fn mac(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Looks a header up in `(name, value)` pairs, as the handler's `HeaderMap` lookup does.
fn lookup<'h>(headers: &'h [(&'static str, String)]) -> impl Fn(&str) -> Option<&'h str> {
    move |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
}

/// `hex` with each digit's case and the surrounding whitespace chosen by the input.
fn spell(u: &mut Unstructured<'_>, hex: &str) -> Result<String> {
    let mut out = String::new();
    for _ in 0..u.int_in_range(0..=2)? {
        out.push(*u.choose(&[' ', '\t'])?);
    }
    for c in hex.chars() {
        out.push(if u.arbitrary()? { c.to_ascii_uppercase() } else { c });
    }
    for _ in 0..u.int_in_range(0..=2)? {
        out.push(*u.choose(&[' ', '\t'])?);
    }
    Ok(out)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let secret: Vec<u8> = u.arbitrary()?;
    let body: Vec<u8> = u.arbitrary()?;
    let truth = mac(&secret, &body);
    match u.int_in_range(0..=3u8)? {
        // Arbitrary header values: whatever is accepted carried the truth.
        0 => {
            let mut headers = Vec::new();
            for name in [HUB, GITEA, GITLAB] {
                if u.arbitrary()? {
                    headers.push((name, u.arbitrary::<String>()?));
                }
            }
            let value = |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.trim());
            match verify_webhook(&secret, &body, lookup(&headers)) {
                Ok(Provider::GitHub) => {
                    let given = value(HUB).and_then(|v| v.strip_prefix("sha256=")).expect("a GitHub header");
                    assert_eq!(hex::decode(given).ok(), Some(truth), "accepted a wrong X-Hub-Signature-256");
                }
                Ok(Provider::Gitea) => {
                    assert!(value(HUB).is_none(), "X-Hub-Signature-256 is read first");
                    assert_eq!(hex::decode(value(GITEA).expect("a Gitea header")).ok(), Some(truth));
                }
                Ok(Provider::GitLab) => {
                    assert!(value(HUB).is_none() && value(GITEA).is_none(), "signatures are read first");
                    assert_eq!(value(GITLAB).map(str::as_bytes), Some(secret.as_slice()), "accepted a wrong token");
                }
                Err(_) => {}
            }
        }
        // The true signature, spelt any way a sender may: always accepted.
        1 => {
            let hub = format!("sha256={}", spell(u, &hex::encode(&truth))?.trim());
            let hub = [(HUB, hub)];
            assert_eq!(verify_webhook(&secret, &body, lookup(&hub)), Ok(Provider::GitHub));
            let gitea = [(GITEA, spell(u, &hex::encode(&truth))?)];
            assert_eq!(verify_webhook(&secret, &body, lookup(&gitea)), Ok(Provider::Gitea));
        }
        // The true signature with one thing changed: never accepted.
        2 => {
            let mut sig = hex::encode(&truth).into_bytes();
            let (mut secret, mut body) = (secret, body);
            match u.int_in_range(0..=3u8)? {
                0 => {
                    let at = u.choose_index(sig.len())?;
                    let digits = b"0123456789abcdef";
                    let other = digits.iter().copied().filter(|&d| d != sig[at]).collect::<Vec<_>>();
                    sig[at] = *u.choose(&other)?;
                }
                1 if !body.is_empty() => {
                    let at = u.choose_index(body.len())?;
                    body[at] ^= u.int_in_range(1..=255u8)?;
                }
                // A longer body is another message (the length is hashed in).
                1 => body.push(u.arbitrary()?),
                // A byte of the secret flipped, never its length changed: HMAC pads a short key
                // with zeros, so `k` and `k\0` are the same key (RFC 2104), not a forgery.
                _ if !secret.is_empty() => {
                    let at = u.choose_index(secret.len())?;
                    secret[at] ^= u.int_in_range(1..=255u8)?;
                }
                _ => return Ok(()),
            }
            let sig = String::from_utf8(sig).expect("hex");
            for headers in [[(HUB, format!("sha256={sig}"))], [(GITEA, sig.clone())]] {
                assert!(verify_webhook(&secret, &body, lookup(&headers)).is_err(), "accepted an altered signature");
            }
        }
        // The bearer check: accepted only with exactly the token.
        _ => {
            let expected: String = u.arbitrary()?;
            let header: Option<String> = u.arbitrary()?;
            if check_bearer(expected.as_bytes(), header.as_deref()).is_ok() {
                let header = header.expect("a header");
                let (scheme, token) = header.trim_start().split_once([' ', '\t']).expect("scheme and token");
                assert!(scheme.eq_ignore_ascii_case("bearer"), "accepted scheme {scheme:?}");
                assert_eq!(token.trim(), expected, "accepted another token");
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
