//! Claude Code transcript (JSONL) parser: exact, fast, lenient.
//!
//! Turns one session file into the figures of SPEC §3 (tool events, API
//! responses with their tokens, findings, timing), following its
//! **Definitions** table to the letter. `shared/corpus/README.md` describes
//! the oracle the tests compare against. Self-contained: it depends on
//! nothing else in the crate.
//!
//! * **Streaming.** Lines are handled one at a time; memory grows with the
//!   number of events and responses, and with the longest line (a line is
//!   scanned whole). For very large files prefer `parse_bytes` over a memory
//!   map, which never copies a line; with `parse_reader`, give the
//!   `BufReader` a 64 KiB buffer.
//! * **Fast.** Each line is validated and read in a single pass by a small
//!   zero-copy JSON scanner (`json`): big strings (tool outputs, base64
//!   images, file snapshots) are only scanned, never copied or unescaped,
//!   unless a definition needs their text (an error result's text, a user
//!   prompt's `<command-name>`). About 800 MB/s on one core on the
//!   realistic corpus.
//! * **Lenient.** A non-blank line that is not a JSON object is counted in
//!   `malformed_lines` and skipped; blank lines are ignored but still
//!   numbered. Inside a valid object, fields of an unexpected type read as
//!   absent, duplicate keys keep the last value, lone surrogate escapes
//!   decode to U+FFFD, and a UTF-8 byte-order mark and CR LF endings are
//!   accepted. `NaN`/`Infinity` are accepted like the oracle's Python.
//! * **Never panics** on arbitrary bytes (see the garbage-input tests).
//!
//! # Decisions where SPEC §3 is silent or ambiguous
//!
//! * **Time.** A line without a usable `timestamp` (missing, not a string,
//!   unparseable) is timed at the nearest earlier usable one *in file
//!   order*; lines before the file's first timestamp take that first one;
//!   in a file without any, times stay `None` (the caller decides, never
//!   "now"). A timestamp without a zone is UTC; offsets are converted.
//! * **`user_prompts`**: user lines with string content or at least one
//!   text block, not `isMeta: true`; sidechain lines count too (the
//!   definition has no thread condition). Lines with only tool results or
//!   only images do not count.
//! * **`assistant_messages`** (Agnes counted assistant *lines*, one per
//!   content block): assistant lines grouped by `message.id`, so a streamed
//!   response counts once; lines without an id count one each.
//! * **`unknown_type_lines`**: a JSON object whose `type` is missing or not
//!   in `KNOWN_LINE_TYPES` (reference/claude-code-jsonl.md §4). That list
//!   includes `mode`, which corpus/README calls "unknown" for the
//!   `malformed` fixture; edit the list if the README's reading is wanted.
//! * **Results.** Every `tool_result` (error or not) whose `tool_use_id`
//!   names no call in the file is an orphan. Findings are per error result,
//!   so an orphan error result still yields a finding, but `tool_errors`
//!   counts marked calls only; several error results for one call mark it
//!   once. The three result findings are exclusive: rejection text first,
//!   then denial text, else `tool_error`.
//! * **Responses** need non-empty string `message.id`, `requestId` and
//!   `message.model`, and `usage` an object. Token counts that are missing,
//!   `null`, negative or not numbers are 0; floats are truncated. Without a
//!   `usage.cache_creation` split, every cache write is a 5-minute write
//!   (ccusage). "Already seen" in the replay rule means already counted as
//!   a response in this file.
//! * **Events.** `subagent_type` is `input.subagent_type` only (Agnes fell
//!   back to the tool name). A name is namespaced when it has a `:` with
//!   text on both sides; `ref_id` is the part before the first `:`.
//! * **Loops** compare inputs as JSON values (key order and spacing do not
//!   matter, `1` and `1.0` differ, as with `json.dumps(sort_keys=True)`).
//! * **Findings' `turn_index`** for `abrupt_end` is the unanswered
//!   main-thread user line itself (sidechain or non-conversation lines after
//!   it do not move it). **Excerpts**: the result text for result findings;
//!   `"<tool> called <n> times in a row with the same input: <input JSON>"`
//!   for loops; for abrupt ends the line's text parts joined by newlines, or
//!   its first result's text. Whitespace is trimmed, no ellipsis is added,
//!   and the cut never splits a grapheme (`truncate_graphemes`).
//! * **Cross-file de-duplication** (`dedup_across_files`): a copy without a
//!   timestamp loses the timestamp tie-break; identical copies go to the
//!   earlier position.
//! * The oracle's `tool_errors` counts error result blocks and its `daily`
//!   uses the timestamp's text `[:10]`; SPEC counts marked calls and uses
//!   the UTC date. They agree on generated data; SPEC is followed.

mod dedup;
mod json;
mod line;
mod session;
mod text;
mod time;

#[cfg(test)]
mod tests;

use std::io::BufRead;

pub use crate::model::transcript::{
    EventType, Finding, FindingType, ParsedFile, Response, Severity, Source, Summary, Tokens,
    ToolEvent,
};
pub use dedup::{dedup_across_files, ResponseCopy};
pub use session::{Parser, KNOWN_LINE_TYPES};
pub use text::{truncate_graphemes, EXCERPT_MAX_CHARS};
pub use time::parse_timestamp_ms;

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

/// Parses a transcript read in chunks into `buf`, a buffer the caller keeps
/// from file to file: no line is copied, memory stays at about one chunk plus
/// the longest line, and a reused buffer costs no fresh pages (a whole-file
/// read of a large file faults in a new allocation each time). Gives exactly
/// what `parse_bytes` gives for the same bytes. Only I/O errors fail.
pub fn parse_chunked<R: std::io::Read>(
    reader: R,
    buf: &mut Vec<u8>,
) -> std::io::Result<ParsedFile> {
    parse_chunks(reader, buf, 1 << 20)
}

fn parse_chunks<R: std::io::Read>(
    mut reader: R,
    buf: &mut Vec<u8>,
    chunk: usize,
) -> std::io::Result<ParsedFile> {
    let mut parser = Parser::new();
    if buf.len() < chunk {
        buf.resize(chunk, 0);
    }
    // buf[start..filled] is unconsumed input; buf[start..scanned] holds no '\n'.
    let (mut start, mut scanned, mut filled) = (0usize, 0usize, 0usize);
    loop {
        if filled == buf.len() {
            if start > 0 {
                buf.copy_within(start..filled, 0);
                (scanned, filled) = (scanned - start, filled - start);
                start = 0;
            } else {
                // A line longer than the buffer: grow it.
                let len = buf.len();
                buf.resize(len * 2, 0);
            }
        }
        let n = match reader.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        filled += n;
        while let Some(i) = memchr::memchr(b'\n', &buf[scanned..filled]) {
            let end = scanned + i;
            parser.feed_line(&buf[start..end]);
            start = end + 1;
            scanned = start;
        }
        scanned = filled;
    }
    if start < filled {
        parser.feed_line(&buf[start..filled]);
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
