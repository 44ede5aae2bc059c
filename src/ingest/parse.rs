//! Claude Code transcript (JSONL) parser: exact, fast, lenient.
//!
//! Turns one session file into the figures of SPEC §3 — tool events, API
//! responses with their tokens, findings, timing — following its
//! **Definitions** table to the letter (`shared/corpus/README.md` describes
//! the oracle the tests compare against). Self-contained: it depends on
//! nothing else in the crate.
//!
//! * **Streaming.** Lines are handled one at a time; memory grows with the
//!   number of events and responses, never with line length beyond the line
//!   being read.
//! * **Fast.** Each line is validated and read in a single pass by a small
//!   zero-copy JSON scanner (`json`): big strings (tool outputs, base64
//!   images, file snapshots) are scanned with `memchr`, never copied or
//!   unescaped, unless a definition needs their text (an error result's
//!   text, a user prompt's `<command-name>`).
//! * **Lenient.** A non-blank line that is not a JSON object is counted in
//!   `malformed_lines` and skipped; blank lines are ignored (but still
//!   numbered). Inside a valid object, fields of an unexpected type read as
//!   absent, duplicate keys keep the last value, and lone surrogate escapes
//!   decode to U+FFFD. A line without a usable timestamp is timed at the
//!   nearest earlier timestamp in the file; lines before the first timestamp
//!   take that first timestamp; a file with none leaves times `None` (never
//!   "now").
//! * **Never panics** on arbitrary bytes (see the garbage-input tests).

mod dedup;
mod json;
mod line;
mod session;
mod text;
mod time;
mod types;

#[cfg(test)]
mod tests;

use std::io::BufRead;

pub use dedup::{dedup_across_files, ResponseCopy};
pub use session::{Parser, KNOWN_LINE_TYPES};
pub use text::{truncate_graphemes, EXCERPT_MAX_CHARS};
pub use time::parse_timestamp_ms;
pub use types::{
    EventType, Finding, FindingType, ParsedFile, Response, Severity, Source, Summary, Tokens,
    ToolEvent,
};

/// Parses a transcript from a reader, line by line. Only I/O errors fail;
/// bad content is counted, never an error.
pub fn parse_reader<R: BufRead>(mut reader: R) -> std::io::Result<ParsedFile> {
    let mut parser = Parser::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        parser.feed_line(line);
    }
    Ok(parser.finish())
}

/// Parses a whole transcript held in memory (a read buffer or a memory
/// map), splitting lines with `memchr` and without copying them.
pub fn parse_bytes(buf: &[u8]) -> ParsedFile {
    let mut parser = Parser::new();
    for line in split_lines(buf) {
        parser.feed_line(line);
    }
    parser.finish()
}

/// The lines of a buffer without their `\n`; a final line without `\n`
/// counts, the empty remainder after a final `\n` does not.
fn split_lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        Some(line)
    })
}
