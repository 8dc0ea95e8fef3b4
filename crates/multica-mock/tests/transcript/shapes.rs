//! The shapes of recorded values the comparison rules mask, shared by the
//! HTTP and the WebSocket transcript harnesses.

/// `dddd-dd-ddTdd:dd:dd` at the start.
pub fn is_timestamp(s: &str) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let bytes = s.as_bytes();
    bytes.len() >= shape.len()
        && shape.iter().zip(bytes).all(|(want, got)| if *want == b'd' { got.is_ascii_digit() } else { want == got })
}

/// `8-4-4-4-12` hex digits.
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
