//! Cutting text to a byte budget without splitting a character.

/// The longest prefix of `text` that is at most `max_bytes` long and ends on
/// a character boundary.
///
/// The Go daemon cuts tool output at a byte count and may leave half a
/// character (which the server then stores as invalid UTF-8); this never
/// does, and never panics.
///
/// ```
/// # mod multica { pub use multica_api::*; }
/// use multica::reporter::truncate_utf8;
/// assert_eq!(truncate_utf8("héllo", 2), "h"); // `é` is 2 bytes: kept whole or not at all
/// assert_eq!(truncate_utf8("héllo", 3), "hé");
/// assert_eq!(truncate_utf8("hi", 10), "hi");
/// ```
pub fn truncate_utf8(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    // A character is at most 4 bytes, so a boundary is at most 3 steps back.
    let end = (max_bytes.saturating_sub(3)..=max_bytes).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ascii_is_cut_at_the_bound() {
        assert_eq!(truncate_utf8("abcdef", 3), "abc");
        assert_eq!(truncate_utf8("abcdef", 0), "");
        assert_eq!(truncate_utf8("", 0), "");
        assert_eq!(truncate_utf8("abc", 3), "abc");
    }

    #[test]
    fn a_character_straddling_the_bound_is_dropped_whole() {
        // 2-, 3- and 4-byte characters, each starting at byte 1.
        for (ch, len) in [('é', 2), ('€', 3), ('😀', 4)] {
            let text = format!("a{ch}b");
            for bound in 1..1 + len {
                assert_eq!(truncate_utf8(&text, bound), "a", "{ch} cut at {bound}");
            }
            assert_eq!(truncate_utf8(&text, 1 + len), format!("a{ch}"), "{ch} kept at {}", 1 + len);
        }
    }

    #[test]
    fn only_multibyte_text_can_become_empty() {
        assert_eq!(truncate_utf8("😀😀", 3), "");
        assert_eq!(truncate_utf8("😀😀", 7), "😀");
    }

    proptest! {
        #[test]
        fn result_is_the_longest_valid_prefix_within_the_bound(text in "\\PC{0,40}", bound in 0usize..200) {
            let cut = truncate_utf8(&text, bound);
            prop_assert!(text.starts_with(cut));
            prop_assert!(cut.len() <= bound);
            // Maximal: the next character would not fit.
            if let Some(next) = text[cut.len()..].chars().next() {
                prop_assert!(cut.len() + next.len_utf8() > bound);
            } else {
                prop_assert_eq!(cut, text.as_str());
            }
        }
    }
}
