//! Forward-compatible string enums.
//!
//! The server adds values over time (a new task status, a new message type).
//! Each enum here keeps an `Other(String)` variant so an unknown value decodes
//! as data and encodes back unchanged instead of failing the whole response.

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this SDK version does not know, kept verbatim. The
            /// empty string stands for `null`, which Go reads as `""`.
            Other(String),
        }

        impl $name {
            /// The value as it travels on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(value) => value,
                }
            }

            /// Whether this is the empty value (`Other("")`): the field was
            /// absent or `null`, and encodes as omitted where Go omits it.
            pub fn is_empty(&self) -> bool {
                matches!(self, Self::Other(value) if value.is_empty())
            }
        }

        impl Default for $name {
            /// The empty value (`""`), what Go decodes from `null`.
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $wire => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $( $wire => Self::$variant, )+
                    _ => Self::Other(value),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_option($crate::wire_enum::WireEnumVisitor(std::marker::PhantomData))
            }
        }
    };
}

pub(crate) use wire_enum;

/// Reads a wire enum from a JSON string or `null`, borrowing the string when
/// it can: known values then cost no allocation (a message list has one per
/// message).
pub(crate) struct WireEnumVisitor<T>(pub(crate) std::marker::PhantomData<T>);

impl<'de, T> serde::de::Visitor<'de> for WireEnumVisitor<T>
where
    T: Default + for<'a> From<&'a str> + From<String>,
{
    type Value = T;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a string or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_str(self)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        Ok(T::from(value))
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<T, E> {
        Ok(T::from(value))
    }
}
