//! The transcript reader: one JSONL file, line by line, into viewer events.
//!
//! Agnes's event kinds (`text`, `tool_use`, `tool_result`, with her fields)
//! plus `thinking` and `image` (a placeholder: media type and size, never the
//! data). Each event carries its 0-based `line` (the unit of `offset`, the
//! same as a finding's `turn_index`), whether it is a sidechain (subagent)
//! turn, and the first event of an assistant API response carries that
//! response's tokens. Memory is bounded by the longest line: the file is
//! never held whole, and skipping to an offset only scans for newlines.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Token counts of one assistant API response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TurnTokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

/// One rendered piece of a transcript line.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `text`, `thinking`, `tool_use`, `tool_result` or `image`.
    pub kind: &'static str,
    pub line: u64,
    pub role: String,
    /// The line's timestamp, else the nearest earlier one read; "" when none
    /// (Agnes's CLI slices this string, so it is never null).
    pub ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sidechain: bool,
    /// `isMeta` user lines (injected context, not typed by the person).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub meta: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TurnTokens>,
    /// Images: the media type and the decoded size, approximately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Set when `text` (or `input`) was cut at `ReadOptions::max_text`; the
    /// full length in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_chars: Option<u64>,
}

impl Event {
    fn new(kind: &'static str, line: u64, head: &Head) -> Event {
        Event {
            kind,
            line,
            role: head.role.to_string(),
            ts: head.ts.clone(),
            uuid: head.uuid.clone(),
            text: None,
            tool_name: None,
            input: None,
            tool_use_id: None,
            is_error: None,
            sidechain: head.sidechain,
            meta: head.meta,
            model: None,
            tokens: None,
            media_type: None,
            bytes: None,
            full_chars: None,
        }
    }
}

/// How much of long texts to keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Cut tool results and tool inputs longer than this many characters
    /// (the viewer fetches the rest on demand); `None` keeps everything.
    pub max_text: Option<usize>,
}

/// Reads a transcript line by line.
pub struct Reader<R> {
    inner: R,
    line: u64,
    buf: Vec<u8>,
    last_ts: String,
    seen_responses: HashSet<String>,
    opts: ReadOptions,
}

struct Head {
    role: &'static str,
    ts: String,
    uuid: Option<String>,
    sidechain: bool,
    meta: bool,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    uuid: Option<&'a RawValue>,
    #[serde(rename = "isSidechain", borrow)]
    is_sidechain: Option<&'a RawValue>,
    #[serde(rename = "isMeta", borrow)]
    is_meta: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_use_id: Option<&'a RawValue>,
    #[serde(borrow)]
    is_error: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ImageSource<'a> {
    #[serde(borrow)]
    media_type: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default, deserialize_with = "lenient_count")]
    input_tokens: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    output_tokens: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    cache_creation_input_tokens: u64,
    #[serde(default, deserialize_with = "lenient_count")]
    cache_read_input_tokens: u64,
}

fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f > 0.0).map(|f| f as u64))
        .unwrap_or(0))
}

fn string_of(raw: Option<&RawValue>) -> Option<String> {
    let raw = raw?;
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<String>(raw.get()).ok()
}

fn true_of(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|r| r.get() == "true")
}

/// Cuts `s` to `max` characters; returns the full length when it was cut.
fn cut(s: &mut String, max: Option<usize>) -> Option<u64> {
    let max = max?;
    let n = s.chars().count();
    if n <= max {
        return None;
    }
    let end = s.char_indices().nth(max).map(|(i, _)| i).unwrap_or(s.len());
    s.truncate(end);
    Some(n as u64)
}

/// A tool result's text: its string content, or its text blocks joined with
/// newlines (images become `[image]`), like ingestion's result text.
fn result_text(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    if raw.get().starts_with('"') {
        return string_of(Some(raw)).unwrap_or_default();
    }
    let Ok(blocks) = serde_json::from_str::<Vec<Block<'_>>>(raw.get()) else {
        return String::new();
    };
    let mut parts = Vec::new();
    for b in blocks {
        match string_of(b.kind).as_deref() {
            Some("text") => parts.push(string_of(b.text).unwrap_or_default()),
            Some("image") => parts.push("[image]".to_string()),
            _ => {}
        }
    }
    parts.join("\n")
}

impl<R: BufRead> Reader<R> {
    pub fn new(inner: R, opts: ReadOptions) -> Reader<R> {
        Reader {
            inner,
            line: 0,
            buf: Vec::new(),
            last_ts: String::new(),
            seen_responses: HashSet::new(),
            opts,
        }
    }

    /// The index of the next line to be read.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Moves past one line without keeping it; false at the end of the file.
    fn skip_line(&mut self) -> std::io::Result<bool> {
        let mut any = false;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if any {
                    self.line += 1;
                }
                return Ok(any);
            }
            any = true;
            if let Some(i) = memchr::memchr(b'\n', buf) {
                self.inner.consume(i + 1);
                self.line += 1;
                return Ok(true);
            }
            let n = buf.len();
            self.inner.consume(n);
        }
    }

    /// Skips forward to line `target`; false when the file ends before it.
    pub fn skip_to(&mut self, target: u64) -> std::io::Result<bool> {
        while self.line < target {
            if !self.skip_line()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads the next line and appends its events to `out` (none for lines
    /// that are not user or assistant turns, blank or malformed). False at
    /// the end of the file.
    pub fn next_line(&mut self, out: &mut Vec<Event>) -> std::io::Result<bool> {
        self.buf.clear();
        if self.inner.read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(false);
        }
        let index = self.line;
        self.line += 1;
        let buf = std::mem::take(&mut self.buf);
        let mut line: &[u8] = buf.strip_suffix(b"\n").unwrap_or(&buf);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        if index == 0 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        self.events_of(index, line, out);
        self.buf = buf;
        Ok(true)
    }

    fn events_of(&mut self, index: u64, line: &[u8], out: &mut Vec<Event>) {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let Ok(l) = serde_json::from_slice::<Line<'_>>(line) else {
            return;
        };
        if let Some(ts) = string_of(l.timestamp) {
            self.last_ts = ts;
        }
        let role = match string_of(l.kind).as_deref() {
            Some("user") => "user",
            Some("assistant") => "assistant",
            _ => return,
        };
        let Some(msg) = l
            .message
            .and_then(|m| serde_json::from_str::<Message<'_>>(m.get()).ok())
        else {
            return;
        };
        let head = Head {
            role,
            ts: self.last_ts.clone(),
            uuid: string_of(l.uuid),
            sidechain: true_of(l.is_sidechain),
            meta: true_of(l.is_meta),
        };
        let first = out.len();
        match msg.content {
            Some(c) if c.get().starts_with('"') => {
                let mut e = Event::new("text", index, &head);
                e.text = string_of(Some(c));
                out.push(e);
            }
            Some(c) if c.get().starts_with('[') => {
                let blocks: Vec<Block<'_>> = serde_json::from_str(c.get()).unwrap_or_default();
                for b in blocks {
                    self.block_event(index, &head, b, out);
                }
            }
            _ => {}
        }
        if role == "assistant" && out.len() > first {
            let model = string_of(msg.model);
            let response = string_of(msg.id);
            let usage = msg
                .usage
                .and_then(|u| serde_json::from_str::<Usage>(u.get()).ok());
            let e = &mut out[first];
            e.model = model;
            // Streamed responses repeat their usage on every line: once only.
            if let (Some(id), Some(u)) = (response, usage) {
                if self.seen_responses.insert(id) {
                    e.tokens = Some(TurnTokens {
                        input: u.input_tokens,
                        output: u.output_tokens,
                        cache_read: u.cache_read_input_tokens,
                        cache_creation: u.cache_creation_input_tokens,
                    });
                }
            }
        }
    }

    fn block_event(&self, index: u64, head: &Head, b: Block<'_>, out: &mut Vec<Event>) {
        let max = self.opts.max_text;
        match string_of(b.kind).as_deref() {
            Some("text") => {
                let mut e = Event::new("text", index, head);
                e.text = Some(string_of(b.text).unwrap_or_default());
                out.push(e);
            }
            Some("thinking") => {
                let mut e = Event::new("thinking", index, head);
                e.text = Some(string_of(b.thinking).unwrap_or_default());
                out.push(e);
            }
            Some("tool_use") => {
                let mut e = Event::new("tool_use", index, head);
                e.tool_name = Some(string_of(b.name).unwrap_or_default());
                e.tool_use_id = string_of(b.id);
                let input = b.input.map(|r| r.get()).unwrap_or("{}");
                match max {
                    Some(m) if input.len() > m => {
                        // Too long to show inline: a JSON string holding the
                        // start of the input, marked as cut.
                        let mut s = input.to_string();
                        e.full_chars = cut(&mut s, Some(m));
                        e.input =
                            RawValue::from_string(serde_json::to_string(&s).unwrap_or_default())
                                .ok();
                    }
                    _ => e.input = RawValue::from_string(input.to_string()).ok(),
                }
                out.push(e);
            }
            Some("tool_result") => {
                let mut e = Event::new("tool_result", index, head);
                e.tool_use_id = string_of(b.tool_use_id);
                e.is_error = Some(true_of(b.is_error));
                let mut text = result_text(b.content);
                e.full_chars = cut(&mut text, max);
                e.text = Some(text);
                out.push(e);
            }
            Some("image") => {
                let mut e = Event::new("image", index, head);
                if let Some(src) = b
                    .source
                    .and_then(|s| serde_json::from_str::<ImageSource<'_>>(s.get()).ok())
                {
                    e.media_type = string_of(src.media_type);
                    e.bytes = src
                        .data
                        .map(|d| (d.get().len().saturating_sub(2) as u64) * 3 / 4);
                }
                e.text = Some(format!(
                    "[image{}]",
                    e.media_type
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ));
                out.push(e);
            }
            _ => {}
        }
    }
}

/// One page of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
    pub events: Vec<Event>,
    /// The line after the page, or `None` at the end of the file.
    pub next_offset: Option<u64>,
}

/// Lines `[offset, offset + limit)` of `path`.
pub fn read_page(
    path: &std::path::Path,
    offset: u64,
    limit: u64,
    opts: ReadOptions,
) -> std::io::Result<Page> {
    let f = std::fs::File::open(path)?;
    let mut r = Reader::new(std::io::BufReader::with_capacity(1 << 16, f), opts);
    let mut events = Vec::new();
    let mut at_end = !r.skip_to(offset)?;
    while !at_end && r.line() < offset + limit {
        at_end = !r.next_line(&mut events)?;
    }
    if !at_end {
        // Peek: a page that ends exactly at the end of the file has no next.
        at_end = r.inner.fill_buf()?.is_empty();
    }
    Ok(Page {
        offset,
        limit,
        events,
        next_offset: (!at_end).then_some(offset + limit),
    })
}

/// Only the name and the text of a cut: `Cow` keeps short texts borrowed.
pub fn preview(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}…", &text[..i])),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = concat!(
        r#"{"type":"user","timestamp":"2026-05-14T07:00:00.000Z","uuid":"u1","message":{"role":"user","content":"run the tests"}}"#,
        "\n\n",
        r#"{"type":"assistant","timestamp":"2026-05-14T07:00:01.000Z","uuid":"a1","requestId":"r1","message":{"id":"m1","model":"claude-opus-4-7","role":"assistant","content":[{"type":"thinking","thinking":"hmm"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"pytest -q"}}],"usage":{"input_tokens":6,"output_tokens":384,"cache_read_input_tokens":22076,"cache_creation_input_tokens":11352}}}"#,
        "\n",
        r#"{"type":"assistant","timestamp":"2026-05-14T07:00:01.500Z","uuid":"a2","requestId":"r1","message":{"id":"m1","model":"claude-opus-4-7","role":"assistant","content":[{"type":"text","text":"running"}],"usage":{"input_tokens":6,"output_tokens":384}}}"#,
        "\n",
        r#"{"type":"user","uuid":"u2","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"1 failed"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}}"#,
        "\n",
        r#"{"type":"system","subtype":"turn_duration"}"#,
        "\n",
        "not json\n",
        r#"{"type":"user","isSidechain":true,"timestamp":"2026-05-14T07:00:03.000Z","message":{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"AAAAAAAA"}}]}}"#,
    );

    fn all(opts: ReadOptions) -> Vec<Event> {
        let mut r = Reader::new(FILE.as_bytes(), opts);
        let mut out = Vec::new();
        while r.next_line(&mut out).unwrap() {}
        assert_eq!(r.line(), 8);
        out
    }

    #[test]
    fn lines_become_agnes_events_with_line_indexes_tokens_and_placeholders() {
        let ev = all(ReadOptions::default());
        let kinds: Vec<(&str, u64)> = ev.iter().map(|e| (e.kind, e.line)).collect();
        assert_eq!(
            kinds,
            [
                ("text", 0),
                ("thinking", 2),
                ("tool_use", 2),
                ("text", 3),
                ("tool_result", 4),
                ("image", 7)
            ]
        );
        assert_eq!(ev[0].text.as_deref(), Some("run the tests"));
        assert_eq!(ev[0].role, "user");
        assert_eq!(ev[2].tool_name.as_deref(), Some("Bash"));
        assert_eq!(
            ev[2].input.as_ref().unwrap().get(),
            r#"{"command":"pytest -q"}"#
        );
        let t = ev[1].tokens.unwrap();
        assert_eq!(
            (t.input, t.output, t.cache_read, t.cache_creation),
            (6, 384, 22076, 11352)
        );
        assert!(
            ev[3].tokens.is_none(),
            "a streamed response's usage counts once"
        );
        assert_eq!(ev[4].is_error, Some(true));
        assert_eq!(ev[4].text.as_deref(), Some("1 failed\n[image]"));
        assert_eq!(
            ev[4].ts, "2026-05-14T07:00:01.500Z",
            "nearest earlier timestamp"
        );
        assert!(ev[5].sidechain);
        assert_eq!(ev[5].media_type.as_deref(), Some("image/jpeg"));
        assert_eq!(ev[5].bytes, Some(6));
    }

    #[test]
    fn long_texts_are_cut_when_asked_and_report_their_length() {
        let ev = all(ReadOptions { max_text: Some(3) });
        assert_eq!(ev[4].text.as_deref(), Some("1 f"));
        assert_eq!(ev[4].full_chars, Some(16));
        assert_eq!(ev[2].input.as_ref().unwrap().get(), r#""{\"c""#);
    }

    #[test]
    fn pages_start_at_a_line_and_say_where_the_next_begins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        std::fs::write(&p, FILE).unwrap();
        let page = read_page(&p, 2, 2, ReadOptions::default()).unwrap();
        assert_eq!(page.events.len(), 3);
        assert_eq!(page.next_offset, Some(4));
        let page = read_page(&p, 4, 4, ReadOptions::default()).unwrap();
        assert_eq!(page.events.len(), 2);
        assert_eq!(page.next_offset, None);
        let page = read_page(&p, 100, 10, ReadOptions::default()).unwrap();
        assert!(page.events.is_empty() && page.next_offset.is_none());
    }
}
