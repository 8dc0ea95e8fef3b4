//! Request bodies read the way the Multica server reads them: Go's
//! `json.NewDecoder(r.Body).Decode(&req)` into a struct.
//!
//! Go's rules differ from serde's derive in ways a client can see:
//! - only the first JSON value is read; bytes after it are ignored;
//! - `null` decodes into a struct as an empty object;
//! - an object key matches a field exactly or, failing that, ignoring case;
//!   a key that appears twice takes its last value, and a `null` value
//!   leaves the field as it was;
//! - a JSON array (or any non-object) where a struct is expected is an error
//!   (serde's derive would read an array as the fields in order);
//! - invalid UTF-8 inside strings becomes U+FFFD (one per bad byte), and so
//!   does a `\\uD800`-style escape of a lone UTF-16 surrogate, instead of
//!   an error.
//!
//! [`from_body`] parses the first value into an order-keeping tree and lets
//! the target type deserialize from it through a [`serde::Deserializer`]
//! that applies these rules wherever a struct is read, at any depth.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Number;

/// Why a body could not be decoded (Go's decoder error).
#[derive(Debug)]
struct GoJsonError(String);

impl fmt::Display for GoJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GoJsonError {}

impl de::Error for GoJsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        GoJsonError(msg.to_string())
    }
}

/// Decodes a request body into `T` as the server's
/// `json.NewDecoder(body).Decode(&v)` does (the rules above). Servers and
/// fakes use it so that they accept and refuse the same bodies as the
/// Multica server.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::{go_json, RegisterRequest};
/// let request: RegisterRequest = go_json::from_body(br#"{"Daemon_ID":"d"} trailing"#).unwrap();
/// assert_eq!(request.daemon_id, "d");
/// assert!(go_json::from_body::<RegisterRequest>(b"[]").is_err());
/// ```
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    decode(body).map_err(|err| <serde_json::Error as de::Error>::custom(err.0))
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, GoJsonError> {
    let utf8 = lossy_utf8(body);
    let text = replace_lone_surrogates(&utf8);
    let first = serde_json::Deserializer::from_str(&text)
        .into_iter::<GoValue>()
        .next()
        .ok_or_else(|| GoJsonError("EOF".to_owned()))?
        .map_err(|e| GoJsonError(e.to_string()))?;
    T::deserialize(&first)
}

/// The body as text, each byte of an invalid UTF-8 sequence replaced by
/// U+FFFD as Go's decoder does (outside strings such bytes are an error
/// either way).
fn lossy_utf8(mut bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(rest) => {
                out.push_str(rest);
                return std::borrow::Cow::Owned(out);
            }
            Err(err) => {
                let (valid, after) = bytes.split_at(err.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = err.error_len().unwrap_or(after.len());
                out.extend(std::iter::repeat_n('\u{fffd}', bad));
                bytes = &after[bad..];
            }
        }
    }
}

/// Rewrites `\\uXXXX` escapes of UTF-16 surrogates that are not part of a
/// valid pair as `\\ufffd` (serde_json refuses them; Go decodes U+FFFD).
fn replace_lone_surrogates(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("\\u") {
        return std::borrow::Cow::Borrowed(text);
    }
    let surrogate_at = |at: usize| -> Option<u32> {
        let hex = text.get(at + 2..at + 6)?;
        let unit = u32::from_str_radix(hex, 16).ok()?;
        (text.get(at..at + 2) == Some("\\u") && (0xD800..0xE000).contains(&unit)).then_some(unit)
    };
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if !in_string {
            in_string = c == '"';
            out.push(c);
            at += c.len_utf8();
            continue;
        }
        match c {
            '"' => in_string = false,
            '\\' => match surrogate_at(at) {
                Some(0xD800..=0xDBFF) if surrogate_at(at + 6).is_some_and(|low| low >= 0xDC00) => {
                    out.push_str(&text[at..at + 12]);
                    at += 12;
                    continue;
                }
                Some(_) => {
                    out.push_str("\\ufffd");
                    at += 6;
                    continue;
                }
                None => {
                    // Any other escape: copy it whole so `\\\\u…` stays text.
                    let escaped = text[at + 1..].chars().next().map_or(0, char::len_utf8);
                    out.push_str(&text[at..at + 1 + escaped]);
                    at += 1 + escaped;
                    continue;
                }
            },
            _ => {}
        }
        out.push(c);
        at += c.len_utf8();
    }
    std::borrow::Cow::Owned(out)
}

/// A JSON value that keeps object keys in document order (duplicates too).
#[derive(Debug)]
enum GoValue {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<GoValue>),
    Object(Vec<(String, GoValue)>),
}

impl<'de> de::Deserialize<'de> for GoValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = GoValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_none<E>(self) -> Result<GoValue, E> {
                Ok(GoValue::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<GoValue, E> {
                Ok(GoValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<GoValue, E> {
                Ok(GoValue::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<GoValue, E> {
                Ok(GoValue::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<GoValue, E> {
                Number::from_f64(v).map(GoValue::Number).ok_or_else(|| E::custom("number out of range"))
            }
            fn visit_str<E>(self, v: &str) -> Result<GoValue, E> {
                Ok(GoValue::String(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<GoValue, E> {
                Ok(GoValue::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GoValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(GoValue::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoValue, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, GoValue>()? {
                    entries.push(entry);
                }
                Ok(GoValue::Object(entries))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl GoValue {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            GoValue::Null => de::Unexpected::Unit,
            GoValue::Bool(b) => de::Unexpected::Bool(*b),
            GoValue::Number(_) => de::Unexpected::Other("number"),
            GoValue::String(s) => de::Unexpected::Str(s),
            GoValue::Array(_) => de::Unexpected::Seq,
            GoValue::Object(_) => de::Unexpected::Map,
        }
    }
}

/// The fields of a struct an object sets, as Go matches them: each key to
/// the field of the same name, else of the same name ignoring case; later
/// keys win; `null` keeps the field as it was; unknown keys are dropped.
fn struct_entries<'a>(entries: &'a [(String, GoValue)], fields: &[&'static str]) -> Vec<(&'static str, &'a GoValue)> {
    let mut matched: Vec<(&'static str, &'a GoValue)> = Vec::new();
    for (key, value) in entries {
        let field = fields
            .iter()
            .find(|f| **f == key)
            .or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(key) || eq_fold(f, key)));
        let Some(field) = field else { continue };
        let existing = matched.iter().position(|(name, _)| name == field);
        match (existing, value) {
            (Some(_), GoValue::Null) => {}
            (Some(index), _) => matched[index].1 = value,
            (None, _) => matched.push((field, value)),
        }
    }
    matched
}

/// Unicode simple case folding, as Go's `strings.EqualFold`, for the rare
/// non-ASCII key.
fn eq_fold(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

impl<'de> de::Deserializer<'de> for &GoValue {
    type Error = GoJsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoJsonError> {
        match self {
            GoValue::Null => visitor.visit_unit(),
            GoValue::Bool(b) => visitor.visit_bool(*b),
            GoValue::Number(n) => n.deserialize_any(visitor).map_err(|e| GoJsonError(e.to_string())),
            GoValue::String(s) => visitor.visit_str(s),
            GoValue::Array(items) => visitor.visit_seq(Seq { items: items.iter() }),
            GoValue::Object(entries) => {
                visitor.visit_map(Entries { entries: entries.iter().map(|(k, v)| (k.as_str(), v)).collect(), next: 0 })
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GoJsonError> {
        match self {
            GoValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoJsonError> {
        match self {
            GoValue::Null => visitor.visit_map(Entries { entries: Vec::new(), next: 0 }),
            GoValue::Object(entries) => {
                visitor.visit_map(Entries { entries: struct_entries(entries, fields), next: 0 })
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &"a JSON object")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, GoJsonError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GoJsonError> {
        match self {
            GoValue::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            other => Err(de::Error::invalid_type(other.unexpected(), &"a string")),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, GoValue>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = GoJsonError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, GoJsonError> {
        self.items.next().map(|item| seed.deserialize(item)).transpose()
    }
}

struct Entries<'a> {
    entries: Vec<(&'a str, &'a GoValue)>,
    next: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = GoJsonError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, GoJsonError> {
        match self.entries.get(self.next) {
            Some((key, _)) => seed.deserialize((*key).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, GoJsonError> {
        let value = self.entries.get(self.next).map(|(_, v)| *v).unwrap_or(&GoValue::Null);
        self.next += 1;
        seed.deserialize(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::{RegisterRequest, TaskProgress};

    fn register(body: &str) -> Result<RegisterRequest, serde_json::Error> {
        from_body(body.as_bytes())
    }

    #[test]
    fn null_is_an_empty_object_and_arrays_are_refused() {
        assert_eq!(register("null").unwrap(), RegisterRequest::default());
        assert!(register("[]").is_err());
        assert!(register(r#"["w","d","h",[]]"#).is_err());
        assert!(register(r#""x""#).is_err());
        assert!(register("").is_err());
        assert!(register("  ").is_err());
        assert!(register("{").is_err());
    }

    #[test]
    fn the_first_value_counts_and_trailing_bytes_are_ignored() {
        let request = register(r#"{"daemon_id":"d"} garbage {"#).unwrap();
        assert_eq!(request.daemon_id, "d");
        assert_eq!(register(r#"{"daemon_id":"d"}{"daemon_id":"e"}"#).unwrap().daemon_id, "d");
    }

    #[test]
    fn keys_match_ignoring_case_and_the_last_one_wins() {
        let request = register(r#"{"DAEMON_ID":"a","Daemon_Id":"b","runtimes":[{"TYPE":"claude"}]}"#).unwrap();
        assert_eq!(request.daemon_id, "b");
        assert_eq!(request.runtimes[0].provider, "claude");
        assert_eq!(register(r#"{"daemon_id":"a","daemon_id":null}"#).unwrap().daemon_id, "a");
        assert_eq!(register(r#"{"daemon_id":"x","daemon_id":"y"}"#).unwrap().daemon_id, "y");
    }

    #[test]
    fn integers_are_strict() {
        assert!(from_body::<TaskProgress>(br#"{"step":2.0}"#).is_err());
        assert!(from_body::<TaskProgress>(br#"{"step":"2"}"#).is_err());
        assert_eq!(from_body::<TaskProgress>(br#"{"step":2}"#).unwrap().step, 2);
    }

    #[test]
    fn invalid_utf8_in_strings_is_replaced() {
        let request = register("{\"device_name\":\"caf\u{e9}\"}").unwrap();
        assert_eq!(request.device_name, "café");
        let request: RegisterRequest = from_body(b"{\"device_name\":\"a\xffb\"}").unwrap();
        assert_eq!(request.device_name, "a\u{fffd}b");
        let request: RegisterRequest = from_body(b"{\"device_name\":\"a\xe2\x82b\xff\xfe\"}").unwrap();
        assert_eq!(request.device_name, "a\u{fffd}\u{fffd}b\u{fffd}\u{fffd}");
    }

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        let name = |body: &str| register(body).unwrap().device_name;
        assert_eq!(name(r#"{"device_name":"a\ud800b"}"#), "a\u{fffd}b");
        assert_eq!(name(r#"{"device_name":"\udc00\ud83d"}"#), "\u{fffd}\u{fffd}");
        assert_eq!(name(r#"{"device_name":"\ud83d\ude00"}"#), "\u{1f600}");
        assert_eq!(name(r#"{"device_name":"\\ud800"}"#), "\\ud800", "an escaped backslash is text");
        assert_eq!(name(r#"{"device_name":"\u00e9\n"}"#), "\u{e9}\n");
    }
}
