//! Strict scalars for the integer and boolean fields of the manifests: `replicas: "2"` is a
//! string, as YAML, Kubernetes and the published JSON Schema say, and is refused with a hint.
//! (The YAML parser reads a quoted "2" into an integer field when asked directly, so these fields
//! ask for "any" value and accept only a plain number or boolean.)

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

/// An unsigned integer type a manifest field can hold.
pub trait Unsigned: TryFrom<u64> + Copy {
    /// The largest value, for the message.
    const MAX: u64;
}

impl Unsigned for u16 {
    const MAX: u64 = u16::MAX as u64;
}

impl Unsigned for u32 {
    const MAX: u64 = u32::MAX as u64;
}

struct IntegerVisitor<T>(PhantomData<T>);

impl<T: Unsigned> IntegerVisitor<T> {
    fn out_of_range<E: de::Error>(shown: &dyn fmt::Display) -> E {
        E::custom(format!("expected an integer from 0 to {}, found {shown}", T::MAX))
    }
}

impl<T: Unsigned> Visitor<'_> for IntegerVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from 0 to {}", T::MAX)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| Self::out_of_range(&v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v).map_err(|_| Self::out_of_range(&v)).and_then(|v| self.visit_u64(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<T, E> {
        u64::try_from(v).map_err(|_| Self::out_of_range(&v)).and_then(|v| self.visit_u64(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<T, E> {
        u64::try_from(v).map_err(|_| Self::out_of_range(&v)).and_then(|v| self.visit_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(Self::out_of_range(&v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        if v.trim().parse::<u64>().is_ok() {
            return Err(E::custom(format!(
                "expected an integer, found the string {v:?}: write the number without quotes (a quoted value is a \
                 string in YAML, as in Kubernetes)"
            )));
        }
        Err(E::custom(format!("expected an integer from 0 to {}, found {v:?}", T::MAX)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Err(E::custom(format!("expected an integer from 0 to {}, found {v}", T::MAX)))
    }
}

/// An unsigned integer written as a YAML integer.
///
/// # Errors
/// A string (even `"2"`), a float, a negative or too large number, or a collection.
pub fn integer<'de, D: Deserializer<'de>, T: Unsigned>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_any(IntegerVisitor(PhantomData))
}

/// An optional unsigned integer written as a YAML integer (`hostPort`); absent is `None`.
///
/// # Errors
/// As [`integer`].
pub fn optional_integer<'de, D: Deserializer<'de>, T: Unsigned>(deserializer: D) -> Result<Option<T>, D::Error> {
    integer(deserializer).map(Some)
}

struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        let hint = if matches!(v, "true" | "false") {
            "write it without quotes (a quoted value is a string in YAML)"
        } else {
            "YAML 1.1 words such as yes, no, on and off are not booleans here"
        };
        Err(E::custom(format!("expected true or false, found the string {v:?}: {hint}")))
    }
}

/// A boolean written as a YAML 1.2 boolean (`true`/`false`, unquoted).
///
/// # Errors
/// Anything else.
pub fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    deserializer.deserialize_any(BoolVisitor)
}
