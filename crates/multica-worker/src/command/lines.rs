//! Framing: a program's stdout as bounded lines. No line ends the reading:
//! bad UTF-8 is replaced, an over-long line is cut to its first
//! `max_line_bytes` (one line, the rest skipped), and only EOF or a read
//! error ends it, so the program never blocks on a full pipe.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Reads lines of at most `max` bytes from `reader`.
pub(crate) struct LineReader<R> {
    reader: R,
    max: usize,
    line: Vec<u8>,
}

/// One line, without its line ending.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The text, invalid UTF-8 replaced.
    pub(crate) text: String,
    /// Whether the line was longer than the bound and cut.
    pub(crate) cut: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub(crate) fn new(reader: R, max: usize) -> Self {
        Self { reader, max: max.max(1), line: Vec::new() }
    }

    /// The next line; `None` at EOF (or when reading fails: the pipe is
    /// gone either way). Cancel-safe: a line read in part is kept for the
    /// next call.
    pub(crate) async fn next_line(&mut self) -> Option<Line> {
        let mut cut = false;
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(available) => available,
                Err(_) => return self.take(cut, true),
            };
            if available.is_empty() {
                return self.take(cut, true);
            }
            let (chunk, found_end) = match available.iter().position(|&byte| byte == b'\n') {
                Some(end) => (&available[..=end], true),
                None => (available, false),
            };
            let room = self.max.saturating_sub(self.line.len());
            if chunk.len() > room {
                cut = true;
            }
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            let used = chunk.len();
            self.reader.consume(used);
            if found_end {
                return self.take(cut, false);
            }
        }
    }

    fn take(&mut self, cut: bool, at_eof: bool) -> Option<Line> {
        if at_eof && self.line.is_empty() {
            return None;
        }
        let mut bytes = std::mem::take(&mut self.line);
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        };
        Some(Line { text, cut })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(4, input), max);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await {
            lines.push(line);
        }
        lines
    }

    fn line(text: &str, cut: bool) -> Line {
        Line { text: text.to_owned(), cut }
    }

    #[tokio::test]
    async fn lines_end_at_newline_or_eof_with_crlf_dropped() {
        let lines = all(b"one\r\ntwo\n\nlast", 100).await;
        assert_eq!(lines, [line("one", false), line("two", false), line("", false), line("last", false)]);
    }

    #[tokio::test]
    async fn an_over_long_line_is_cut_to_one_line_and_reading_goes_on() {
        let lines = all(b"0123456789abcdef\nok\n", 5).await;
        assert_eq!(lines, [line("01234", true), line("ok", false)]);
    }

    #[tokio::test]
    async fn bad_utf8_is_replaced_not_an_end() {
        let lines = all(b"a\xff\xfeb\nnext\n", 100).await;
        assert_eq!(lines, [line("a\u{fffd}\u{fffd}b", false), line("next", false)]);
    }

    #[tokio::test]
    async fn a_cut_inside_a_character_keeps_the_line_valid() {
        // "é" is two bytes; a bound of 2 cuts it after its first byte.
        let lines = all("aé\n".as_bytes(), 2).await;
        assert_eq!(lines, [line("a\u{fffd}", true)]);
    }
}
