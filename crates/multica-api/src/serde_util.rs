//! Decoding helpers shared by the DTOs.

use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's empty value, as Go's `encoding/json` does for
/// non-pointer fields. Paired with `#[serde(default)]` it also covers absence.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `skip_serializing_if` predicate for Go's `omitempty` on strings.
pub(crate) fn is_empty_str(value: &str) -> bool {
    value.is_empty()
}

/// `skip_serializing_if` predicate for Go's `omitempty` on booleans.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// `skip_serializing_if` predicate for Go's `omitempty` on integers.
pub(crate) fn is_zero(value: &i64) -> bool {
    *value == 0
}
