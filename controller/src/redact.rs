//! The secret values this process knows, and their removal from every string that leaves it:
//! log lines whatever the level (bollard logs request bodies, env included, at debug and trace),
//! events, the status and events API, the final error and panic messages. One process-wide
//! registry, because a value can surface anywhere: a Docker start error quotes an env pair, a
//! failed container prints its configuration into the log tail kept in an event.
//!
//! Values are remembered where secrets are read (`secretKeyRef` files when a service is
//! resolved, registry passwords from the Docker config) and at start (the API token, the
//! webhook secret). Per name the last [`VALUES_PER_NAME`] values are kept: after a rotation the
//! old value still runs in old containers for a while, and the bound keeps a secret that changes
//! every minute from growing the registry (and the work per log line) without end.
//!
//! A value shorter than [`MIN_LEN`] bytes is not redacted (and a warning names its secret once):
//! replacing `1`, `true` or `admin` wherever it appears would mangle revisions, counts and image
//! names in every message, and such a value is guessable anyway. Eight bytes is the shortest a
//! generated password usually is; anything shorter is not worth hiding from the person who can
//! read this controller's log.
//!
//! A message may quote a value escaped rather than verbatim: JSON in request bodies, Rust's
//! `Debug` in log fields, Go's `%q` in engine errors (`"A=abc\x00..."`), `Debug` of bytes in
//! bollard's trace lines. Each of these forms is redacted, and so is every run of at least
//! [`MIN_LEN`] characters of the value that no escaping changes (printable ASCII other than `"`
//! and `\`), so an escaped value that none of the forms matches still loses all but short
//! fragments next to its special characters.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Values shorter than this (in bytes) are not redacted: see the module comment.
pub const MIN_LEN: usize = 8;

/// Values kept per name: the current one and the previous ones that may still run.
pub const VALUES_PER_NAME: usize = 4;

#[derive(Default)]
struct Registry {
    /// Values by name (`secret app/token`), oldest first.
    values: BTreeMap<String, VecDeque<String>>,
    /// Names already warned about for a short value.
    warned: HashSet<String>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// The patterns in force, longest first (so a whole form is replaced before its runs are).
/// Readers take an `Arc` and never wait for a writer beyond the swap.
static PATTERNS: RwLock<Option<Arc<[String]>>> = RwLock::new(None);

/// Remembers `value` as the current value of `name` (`secret app/token`); from now on it is
/// redacted wherever it appears. A trailing newline is not part of the value.
pub fn remember(name: &str, value: &str) {
    let value = value.trim_end_matches(['\n', '\r']);
    let mut guard = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let registry = guard.get_or_insert_with(Registry::default);
    if value.len() < MIN_LEN {
        if !value.is_empty() && registry.warned.insert(name.to_owned()) {
            tracing::warn!(
                secret = name,
                min_len = MIN_LEN,
                "this secret's value is too short to be redacted from logs, events and the API"
            );
        }
        return;
    }
    let values = registry.values.entry(name.to_owned()).or_default();
    if values.back().is_some_and(|v| v == value) {
        return;
    }
    values.retain(|v| v != value);
    values.push_back(value.to_owned());
    if values.len() > VALUES_PER_NAME {
        values.pop_front();
    }
    let mut patterns: Vec<String> = registry.values.values().flatten().flat_map(|v| forms(v)).collect();
    patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    patterns.dedup();
    *PATTERNS.write().unwrap_or_else(PoisonError::into_inner) = Some(patterns.into());
}

fn patterns() -> Option<Arc<[String]>> {
    PATTERNS.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// `text` with every known value replaced by [`REDACTED`]; borrowed when nothing matched.
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    let Some(patterns) = patterns() else { return Cow::Borrowed(text) };
    redact_with(&patterns, text)
}

fn redact_with<'t>(patterns: &[String], text: &'t str) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for pattern in patterns {
        if out.contains(pattern.as_str()) {
            out = Cow::Owned(out.replace(pattern.as_str(), REDACTED));
        }
    }
    out
}

/// Redacts every string (and object key) in a JSON value, in place.
pub fn redact_json(value: &mut serde_json::Value) {
    let Some(patterns) = patterns() else { return };
    redact_value(&patterns, value);
}

fn redact_value(patterns: &[String], value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => {
            if let Cow::Owned(clean) = redact_with(patterns, s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(patterns, v)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                redact_value(patterns, &mut v);
                map.insert(redact_with(patterns, &key).into_owned(), v);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Serializes `value` to JSON with every known value redacted. The common case (no known value
/// in the output) costs one scan of the serialized bytes per pattern; only a match pays for a
/// walk of the parsed document, which keeps every string valid JSON (a textual replace could cut
/// an escape sequence in half).
///
/// # Errors
/// `value` cannot be serialized.
pub fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let bytes = serde_json::to_vec(value)?;
    let Some(patterns) = patterns() else { return Ok(bytes) };
    let text = String::from_utf8_lossy(&bytes);
    if !patterns.iter().any(|p| text.contains(p.as_str())) {
        return Ok(bytes);
    }
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes)?;
    redact_value(&patterns, &mut doc);
    serde_json::to_vec(&doc)
}

/// The forms of `value` that messages may quote, and its runs that no escaping changes.
fn forms(value: &str) -> Vec<String> {
    let plain = |c: char| c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\';
    let mut forms = vec![value.to_owned()];
    if value.chars().all(plain) {
        return forms;
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json[1..json.len() - 1].to_owned();
    forms.push(bytes_debug(json.as_bytes()));
    forms.push(json);
    let debug = format!("{value:?}");
    forms.push(debug[1..debug.len() - 1].to_owned());
    forms.push(go_quote(value));
    forms.push(bytes_debug(value.as_bytes()));
    forms.extend(value.split(|c| !plain(c)).filter(|run| run.len() >= MIN_LEN).map(str::to_owned));
    forms.retain(|f| f.len() >= MIN_LEN);
    forms
}

/// Go's `strconv.Quote` body for the ASCII escapes (what the engine's `%q` errors print).
fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// How `bytes::Bytes` prints in `Debug` (bollard's `request: b"..."` trace lines).
fn bytes_debug(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' | b'"' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'\0' => out.push_str("\\0"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is process-wide: each test uses values no other test uses.

    #[test]
    fn redact_should_replace_every_known_value_and_leave_short_ones() {
        remember("secret t1/a", "alpha-s3cret-1\n");
        remember("secret t1/short", "1234567");
        let text = "env API=alpha-s3cret-1 and alpha-s3cret-1; port 1234567";
        assert_eq!(redact(text), "env API=<redacted> and <redacted>; port 1234567");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn redact_should_catch_escaped_forms_of_a_value() {
        let value = "abc\0quoted-part\"s3cret-part\\value-part";
        remember("secret t2/a", value);
        // The engine's start error (Go %q), as Docker 20.10 printed it for a NUL in an env value.
        let engine = "environment variable value can't contain null(\\x00): \"A=abc\\x00quoted-part\\\"s3cret-part\\\\value-part\": unknown";
        assert_eq!(redact(engine), "environment variable value can't contain null(\\x00): \"A=<redacted>\": unknown");
        // bollard's debug line: the JSON body.
        let body = serde_json::json!({"Env": [format!("A={value}")]}).to_string();
        assert!(!redact(&body).contains("s3cret"), "{}", redact(&body));
        // bollard's trace line: Debug of the body's bytes.
        let trace = format!("request: {:?}", bytes_debug(body.as_bytes()));
        assert!(!redact(&trace).contains("s3cret"), "{}", redact(&trace));
        // A log field printed with Debug.
        assert!(!redact(&format!("{value:?}")).contains("s3cret"));
        // An escaping no form knows (URL encoding): only the short fragments remain.
        let url = "abc%00quoted-part%22s3cret-part%5Cvalue-part";
        assert!(!redact(url).contains("s3cret"));
    }

    #[test]
    fn json_should_stay_valid_and_lose_the_value() {
        remember("secret t3/a", "gamma-s3cret-3");
        let doc = serde_json::json!({"message": "start failed: \"X=gamma-s3cret-3\"\n", "gamma-s3cret-3": [1, "x"]});
        let out = to_json(&doc).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back["message"], "start failed: \"X=<redacted>\"\n");
        assert_eq!(back["<redacted>"][1], "x");
        let plain = serde_json::json!({"message": "nothing"});
        assert_eq!(to_json(&plain).unwrap(), serde_json::to_vec(&plain).unwrap());
    }

    #[test]
    fn old_values_should_stay_redacted_for_a_few_rotations() {
        for i in 0..6 {
            remember("secret t4/a", &format!("delta-s3cret-{i}"));
        }
        assert_eq!(redact("delta-s3cret-5 delta-s3cret-2"), "<redacted> <redacted>");
        assert_eq!(redact("delta-s3cret-1"), "delta-s3cret-1", "older than VALUES_PER_NAME rotations");
    }
}
