//! Human-friendly units used in manifests: durations (`10s`, `1m30s`), CPU counts (`0.5`) and
//! byte quantities (`512Mi`), each parsed with a precise error and serialized back canonically.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written like Go and Kubernetes do: a sequence of `<number><unit>` with units
/// `ms`, `s`, `m`, `h` (e.g. `500ms`, `10s`, `1m30s`, `2h`). `0` alone is also accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// A duration of whole seconds.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// A duration of milliseconds.
    #[must_use]
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// The standard-library duration.
    #[must_use]
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whether it is zero (defaults that are zero are left out when serializing).
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Parses `10s`, `1m30s`, `500ms`, `2h`, `0`.
    ///
    /// # Errors
    /// A message naming what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected a duration like 10s, 1m30s or 500ms";
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("empty duration: {expected}"));
        }
        if text == "0" {
            return Ok(Self::default());
        }
        let mut total_ms: u128 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("invalid duration {text:?}: {expected}"));
            }
            let number: u128 =
                rest[..digits].parse().map_err(|_| format!("invalid duration {text:?}: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit_ms: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => return Err(format!("invalid duration {text:?}: missing unit ({expected})")),
                other => {
                    return Err(format!("invalid duration {text:?}: unknown unit {other:?} ({expected})"));
                }
            };
            rest = &rest[unit_len..];
            total_ms = number
                .checked_mul(unit_ms)
                .and_then(|ms| ms.checked_add(total_ms))
                .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
        }
        // A year is far beyond any sensible timeout; the cap keeps arithmetic on it safe.
        const MAX_MS: u128 = 366 * 24 * 3_600_000;
        if total_ms > MAX_MS {
            return Err(format!("invalid duration {text:?}: longer than a year"));
        }
        let ms = u64::try_from(total_ms).map_err(|_| format!("invalid duration {text:?}: too large"))?;
        Ok(Self::from_millis(ms))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl fmt::Display for Duration {
    /// Canonical form: `1h2m3s`, `1m30s`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let (h, m, s, rest_ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        if rest_ms > 0 {
            write!(f, "{rest_ms}ms")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A bare number is read as its text, so that `120` is told its unit is missing.
        deserializer
            .deserialize_any(NumberOrStringVisitor("a duration such as 10s"))
            .and_then(|text| Self::parse(&text).map_err(de::Error::custom))
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(0|([0-9]+(ms|s|m|h))+)$",
            "description": "A duration such as 500ms, 10s, 1m30s or 2h."
        })
    }
}

/// A number of CPUs, like Docker's `--cpus` and compose's `cpus`: `0.5`, `"1.5"`, `2`.
/// Stored in nano-CPUs (Docker's `NanoCpus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cpus(u64);

impl Cpus {
    /// Nano-CPUs as Docker expects them (1 CPU = 1e9).
    #[must_use]
    pub const fn nano_cpus(self) -> u64 {
        self.0
    }

    /// Parses a decimal number of CPUs with at most 9 decimals, greater than 0 and at most 1024.
    ///
    /// # Errors
    /// A message naming what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid cpus {text:?}: expected a decimal number of CPUs such as 0.5 or 2");
        let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        if frac.len() > 9 {
            return Err(format!("invalid cpus {text:?}: more than 9 decimals"));
        }
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        if whole > 1024 {
            return Err(format!("invalid cpus {text:?}: more than 1024 CPUs"));
        }
        let frac_nanos: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| bad())? };
        let nanos = whole * 1_000_000_000 + frac_nanos;
        if nanos == 0 {
            return Err(format!("invalid cpus {text:?}: must be greater than 0"));
        }
        Ok(Self(nanos))
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 1_000_000_000, self.0 % 1_000_000_000);
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:09}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl Serialize for Cpus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NumberOrStringVisitor("a number of CPUs such as 0.5"))
            .and_then(|text| Self::parse(&text).map_err(de::Error::custom))
    }
}

impl JsonSchema for Cpus {
    fn schema_name() -> Cow<'static, str> {
        "Cpus".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": "^([0-9]+(\\.[0-9]{1,9})?|\\.[0-9]{1,9})$"}
            ],
            "description": "A number of CPUs such as 0.5 or 2 (Docker's --cpus)."
        })
    }
}

/// A byte quantity, written as a Kubernetes quantity: a number of bytes, optionally with a
/// decimal fraction, and a binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`: powers of 1024) or
/// decimal (`k`, `M`, `G`, `T`, `P`, `E`: powers of 1000) suffix: `512Mi`, `1.5Gi`, `1G`.
///
/// Spellings that mean different things to different tools are refused with a hint: `512m` is
/// 512 MiB to Docker but 0.512 bytes to Kubernetes; `512MB`, `512mb`, `1g` and `1K` are binary
/// units to Docker and compose but decimal ones to SI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteQuantity(u64);

/// The suffixes a quantity may carry, with their multipliers.
const QUANTITY_SUFFIXES: [(&str, u64); 13] = [
    ("", 1),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
];

impl ByteQuantity {
    /// The quantity in bytes.
    #[must_use]
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `512Mi`, `1.5Gi`, `1G`, `134217728`.
    ///
    /// # Errors
    /// A message naming what is wrong with the text, with the unambiguous spellings for a
    /// Docker-style unit.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid quantity {text:?}: expected bytes such as 512Mi (MiB), 1Gi (GiB) or 1G (10^9)");
        let t = text.trim();
        let number_len = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, suffix) = t.split_at(number_len);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if number.is_empty() || whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(bad());
        }
        let Some(&(_, multiplier)) = QUANTITY_SUFFIXES.iter().find(|(s, _)| *s == suffix) else {
            return Err(ambiguous(text, number, suffix).unwrap_or_else(bad));
        };
        let too_large = || format!("invalid quantity {text:?}: too large");
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
        // Exact arithmetic on the fraction: at most 18 decimals are meaningful.
        if frac.len() > 18 {
            return Err(format!("invalid quantity {text:?}: more than 18 decimals"));
        }
        let denominator = 10u128.pow(u32::try_from(frac.len()).unwrap_or(0));
        let numerator: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
        let scaled = (whole * denominator + numerator).checked_mul(u128::from(multiplier)).ok_or_else(too_large)?;
        if scaled % denominator != 0 {
            return Err(format!("invalid quantity {text:?}: not a whole number of bytes"));
        }
        let bytes = u64::try_from(scaled / denominator).map_err(|_| too_large())?;
        if bytes == 0 {
            return Err(format!("invalid quantity {text:?}: must be greater than 0"));
        }
        Ok(Self(bytes))
    }
}

/// The message for a unit other tools read differently, naming both unambiguous spellings.
fn ambiguous(text: &str, number: &str, suffix: &str) -> Option<String> {
    let (binary, decimal) = match suffix {
        "m" => ("Mi", "M"),
        "K" | "kb" | "KB" | "Kb" | "kB" | "KiB" => ("Ki", "k"),
        "mb" | "MB" | "Mb" | "MiB" => ("Mi", "M"),
        "g" | "gb" | "GB" | "Gb" | "GiB" => ("Gi", "G"),
        "t" | "tb" | "TB" | "TiB" => ("Ti", "T"),
        "b" | "B" => return Some(format!("invalid quantity {text:?}: write bytes as a plain number ({number})")),
        _ => return None,
    };
    let why = if suffix == "m" {
        "is MiB to Docker but thousandths of a byte to Kubernetes"
    } else {
        "is a binary unit to Docker and compose but a decimal one to SI"
    };
    Some(format!(
        "ambiguous quantity {text:?}: {suffix:?} {why}; write {number}{binary} ({number} x 1024^n bytes) or \
         {number}{decimal} ({number} x 1000^n bytes)"
    ))
}

impl fmt::Display for ByteQuantity {
    /// Canonical form: the shortest exact spelling, binary units first (`512Mi`, `512M`, `1000`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let best = QUANTITY_SUFFIXES
            .iter()
            .rev()
            .filter(|(_, size)| self.0.is_multiple_of(*size))
            .map(|(unit, size)| format!("{}{unit}", self.0 / size))
            .min_by_key(String::len)
            .unwrap_or_else(|| self.0.to_string());
        f.write_str(&best)
    }
}

impl Serialize for ByteQuantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NumberOrStringVisitor("a quantity of bytes such as 512Mi"))
            .and_then(|text| Self::parse(&text).map_err(de::Error::custom))
    }
}

impl JsonSchema for ByteQuantity {
    fn schema_name() -> Cow<'static, str> {
        "ByteQuantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([kMGTPE]|[KMGTPE]i)?$"}
            ],
            "description": "Bytes as a Kubernetes quantity: 512Mi (MiB), 1.5Gi, 1G (10^9 bytes); 512m and 512MB are refused as ambiguous."
        })
    }
}

/// Accepts a YAML number or string and hands back its text, so `cpus: 0.5` and `cpus: "0.5"`
/// mean the same.
struct NumberOrStringVisitor(&'static str);

impl de::Visitor<'_> for NumberOrStringVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        if v.is_finite() && v > 0.0 {
            // Round-trip through the shortest representation: 0.5 stays "0.5".
            Ok(format!("{v}"))
        } else {
            Err(E::custom(format!("invalid value {v}: expected {}", self.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_should_parse_go_style_text() {
        assert_eq!(Duration::parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(Duration::parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(Duration::parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(Duration::parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(Duration::parse("0"), Ok(Duration::default()));
        assert_eq!(Duration::parse("1m30s").unwrap().to_string(), "1m30s");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
    }

    #[test]
    fn duration_should_reject_bad_text() {
        for bad in ["", "10", "s", "10x", "1.5s", "-1s", "10 s", "99999999999999999999999h", "9000h"] {
            assert!(Duration::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn cpus_should_parse_decimals() {
        assert_eq!(Cpus::parse("0.5").unwrap().nano_cpus(), 500_000_000);
        assert_eq!(Cpus::parse("2").unwrap().nano_cpus(), 2_000_000_000);
        assert_eq!(Cpus::parse(".25").unwrap().to_string(), "0.25");
        for bad in ["0", "-1", "abc", "1.0000000001", "", ".", "2000"] {
            assert!(Cpus::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn quantity_should_follow_kubernetes() {
        assert_eq!(ByteQuantity::parse("512Mi").unwrap().bytes(), 512 << 20);
        assert_eq!(ByteQuantity::parse("512M").unwrap().bytes(), 512_000_000);
        assert_eq!(ByteQuantity::parse("1G").unwrap().bytes(), 1_000_000_000);
        assert_eq!(ByteQuantity::parse("1k").unwrap().bytes(), 1_000);
        assert_eq!(ByteQuantity::parse("1.5Gi").unwrap().bytes(), 3 << 29);
        assert_eq!(ByteQuantity::parse("0.5Ki").unwrap().bytes(), 512);
        assert_eq!(ByteQuantity::parse("512Mi").unwrap().to_string(), "512Mi");
        assert_eq!(ByteQuantity::parse("512M").unwrap().to_string(), "512M");
        assert_eq!(ByteQuantity::parse("1000").unwrap().to_string(), "1k");
        assert_eq!(ByteQuantity::parse("1001").unwrap().to_string(), "1001");
        for bad in ["", "Mi", "12Xi", "0", "-5Mi", "99999999999999999999Ti", "1.1", "0.0001Ki", "1..5Gi", "."] {
            assert!(ByteQuantity::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn quantity_should_refuse_ambiguous_units_with_both_spellings() {
        for (text, hint) in [("512m", "512Mi"), ("512MB", "512M"), ("512mb", "512Mi"), ("1g", "1G"), ("1K", "1Ki")] {
            let error = ByteQuantity::parse(text).unwrap_err();
            assert!(error.starts_with("ambiguous quantity"), "{text}: {error}");
            assert!(error.contains(hint), "{text}: {error}");
        }
    }
}
