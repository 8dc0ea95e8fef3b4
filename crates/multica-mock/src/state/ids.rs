//! IDs as the server's database reads them: PostgreSQL's `uuid` type.
//!
//! Upper case, braces and the 32-digit form without hyphens all name the
//! same row; anything else is not a UUID and names no row at all.

/// The canonical form (`8-4-4-4-12`, lower case) of a UUID written any way
/// PostgreSQL accepts: hex digits in pairs, an optional hyphen after each
/// group of four digits (not at the end), optionally inside `{…}`.
pub(crate) fn parse_uuid(text: &str) -> Option<String> {
    let inner = match text.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => text,
    };
    let bytes = inner.as_bytes();
    let mut digits = Vec::with_capacity(32);
    let mut at = 0;
    for byte_index in 0..16 {
        for _ in 0..2 {
            let digit = *bytes.get(at)?;
            if !digit.is_ascii_hexdigit() {
                return None;
            }
            digits.push(digit.to_ascii_lowercase());
            at += 1;
        }
        if bytes.get(at) == Some(&b'-') && byte_index % 2 == 1 && byte_index < 15 {
            at += 1;
        }
    }
    if at != bytes.len() {
        return None;
    }
    let hex = String::from_utf8(digits).ok()?;
    Some(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

/// The canonical form of a UUID as HEAD's handlers parse one (pgx's
/// `pgtype.UUID`): 32 hex digits, or 36 characters whose 9th, 14th, 19th and
/// 24th are dropped unread; any case; nothing trimmed, no braces.
pub(crate) fn parse_uuid_go(text: &str) -> Option<String> {
    let hex: String = match text.len() {
        36 if text.is_char_boundary(8) && text.is_char_boundary(9) => {
            text.char_indices().filter(|(at, _)| ![8, 13, 18, 23].contains(at)).map(|(_, c)| c).collect()
        }
        32 => text.to_owned(),
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

/// The ID a lookup uses: the canonical UUID when `id` is one, else `id`
/// unchanged (a fixture may use IDs that are not UUIDs; no UUID names them).
pub(crate) fn canonical<T>(id: &T) -> T
where
    T: AsRef<str> + Clone + From<String>,
{
    if is_canonical(id.as_ref()) {
        return id.clone();
    }
    match parse_uuid(id.as_ref()) {
        Some(uuid) if uuid != id.as_ref() => T::from(uuid),
        _ => id.clone(),
    }
}

/// Already `8-4-4-4-12` lower case (the hot path: every ID the fake hands out).
fn is_canonical(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::{is_canonical, parse_uuid, parse_uuid_go};

    #[test]
    fn parses_as_heads_handlers_do() {
        let canonical = Some("aad20d7d-996a-4258-ae5d-7b8a725ace3c".to_owned());
        for same in [
            "aad20d7d-996a-4258-ae5d-7b8a725ace3c",
            "AAD20D7D-996A-4258-AE5D-7B8A725ACE3C",
            "aad20d7d996a4258ae5d7b8a725ace3c",
            "aad20d7dX996aX4258Xae5dX7b8a725ace3c",
        ] {
            assert_eq!(parse_uuid_go(same), canonical, "{same}");
        }
        for not in [
            "{aad20d7d-996a-4258-ae5d-7b8a725ace3c}",
            " aad20d7d-996a-4258-ae5d-7b8a725ace3c",
            "aad2-0d7d-996a-4258-ae5d-7b8a-725a-ce3c",
            "aad20d7d-996a-4258-ae5d-7b8a725ace3g",
            "aad20d7d-996a-4258-ae5d-7b8a725acé3",
            "",
        ] {
            assert_eq!(parse_uuid_go(not), None, "{not}");
        }
    }

    #[test]
    fn parses_as_postgresql_does() {
        let canonical = Some("aad20d7d-996a-4258-ae5d-7b8a725ace3c".to_owned());
        assert!(is_canonical("aad20d7d-996a-4258-ae5d-7b8a725ace3c"));
        assert!(!is_canonical("AAD20D7D-996A-4258-AE5D-7B8A725ACE3C"));
        for same in [
            "aad20d7d-996a-4258-ae5d-7b8a725ace3c",
            "AAD20D7D-996A-4258-AE5D-7B8A725ACE3C",
            "aad20d7d996a4258ae5d7b8a725ace3c",
            "{aad20d7d-996a-4258-ae5d-7b8a725ace3c}",
            "aad2-0d7d-996a-4258-ae5d-7b8a-725a-ce3c",
        ] {
            assert_eq!(parse_uuid(same), canonical, "{same}");
        }
        for not in [
            "",
            "not-a-uuid",
            "aad20d7d%2D996a%2D4258%2Dae5d%2D7b8a725ace3c",
            "aad20d7d-996a-4258-ae5d-7b8a725ace3c-",
            "-aad20d7d-996a-4258-ae5d-7b8a725ace3c",
            "aad20d7d--996a-4258-ae5d-7b8a725ace3c",
            "aad20d7d-996a-4258-ae5d-7b8a725ace3",
            " aad20d7d-996a-4258-ae5d-7b8a725ace3c",
            "{aad20d7d-996a-4258-ae5d-7b8a725ace3c",
            "aad20d7-d996a-4258-ae5d-7b8a725ace3c",
        ] {
            assert_eq!(parse_uuid(not), None, "{not}");
        }
    }
}
