//! The per-file accumulator: applies SPEC §3's definitions line by line.

use std::collections::{HashMap, HashSet};

use super::json::JStr;
use super::line::{self, Block, Content, LineView, Message};
use super::text::{self, ExcerptBuf};
use super::time::parse_timestamp_ms;
use crate::model::transcript::{
    EventType, Finding, FindingType, ParsedFile, Response, Source, ToolEvent,
};

/// Line `type`s Claude Code writes (reference/claude-code-jsonl.md §4);
/// any other `type`, or none, counts in `unknown_type_lines`.
pub const KNOWN_LINE_TYPES: &[&str] = &[
    "user",
    "assistant",
    "system",
    "summary",
    "file-history-snapshot",
    "queue-operation",
    "progress",
    "attachment",
    "custom-title",
    "ai-title",
    "agent-name",
    "agent-setting",
    "permission-mode",
    "mode",
    "pr-link",
    "last-prompt",
    "bridge-session",
    "turn_end",
];

/// `message.model` of API-error placeholders, never a response.
const SYNTHETIC_MODEL: &str = "<synthetic>";
/// A gap longer than this (ms) splits activity blocks; exactly this does not.
const ACTIVE_GAP_MS: i64 = 600_000;
/// Identical consecutive main-thread calls that make a loop.
const LOOP_MIN_RUN: u64 = 3;

/// Streaming parser for one transcript: feed it every line, then `finish`.
///
/// `parse_reader` and `parse_bytes` wrap it; use it directly to feed lines
/// from another source (for instance a memory map split by the caller).
#[derive(Default)]
pub struct Parser {
    lines: u64,
    out: ParsedFile,
    /// Reused by the JSON scanner to skip nested containers.
    stack: Vec<bool>,
    /// Every usable timestamp, for started/ended/active.
    stamps: Vec<i64>,
    /// First usable timestamp in file order: the time of anything before it.
    first_stamp: Option<i64>,
    /// Latest usable timestamp in file order: "the nearest earlier".
    last_stamp: Option<i64>,
    /// Counted responses: message.id → its requestIds.
    response_keys: HashMap<String, Vec<String>>,
    assistant_ids: HashSet<String>,
    assistant_lines_without_id: u64,
    main_responses_by_model: HashMap<String, u64>,
    /// `tool_use_id`s of error results, applied to the calls at the end.
    error_ids: HashSet<String>,
    /// `tool_use_id` of every result (None when missing), for orphans.
    result_ids: Vec<Option<String>>,
    loop_run: LoopRun,
    /// The last main-thread user/assistant line, if it was a user line.
    last_main_user: Option<u64>,
    /// Excerpt source of the latest main-thread user line (buffer reused).
    last_main_user_text: String,
}

/// What a line contributes to events and responses.
struct LineCtx<'v, 'a> {
    index: u64,
    view: &'v LineView<'a>,
    at: Option<i64>,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Feeds one physical line, without its `\n` (a trailing `\r` is fine).
    pub fn feed_line(&mut self, raw: &[u8]) {
        let index = self.lines;
        self.lines += 1;
        if is_blank(raw) {
            return;
        }
        // Python's `json.loads(bytes)` drops a UTF-8 byte-order mark.
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        // The same check as `std::str::from_utf8`, vectorised (a pass over
        // every byte of the corpus, so it shows in profiles).
        let Ok(src) = simdutf8::basic::from_utf8(raw) else {
            self.out.malformed_lines += 1;
            return;
        };
        match line::parse_line(src, &mut self.stack) {
            Ok(view) => self.absorb(index, &view),
            Err(_) => self.out.malformed_lines += 1,
        }
    }

    fn absorb(&mut self, index: u64, view: &LineView<'_>) {
        if let Some(ms) = view
            .timestamp
            .and_then(|t| parse_timestamp_ms(&t.decoded()))
        {
            self.stamps.push(ms);
            self.first_stamp.get_or_insert(ms);
            self.last_stamp = Some(ms);
        }
        if self.out.session_id.is_none() {
            self.out.session_id = view.session_id.map(|s| s.owned());
        }
        self.out.sidechain_lines += u64::from(view.is_sidechain);
        let kind = view.kind.map(|k| k.decoded());
        let ctx = LineCtx {
            index,
            view,
            at: self.last_stamp,
        };
        match (kind.as_deref(), &view.message) {
            (Some("assistant"), Some(msg)) => self.assistant(&ctx, msg),
            (Some("user"), Some(msg)) => self.user(&ctx, msg),
            (Some(k), _) if KNOWN_LINE_TYPES.contains(&k) => {}
            _ => self.out.unknown_type_lines += 1,
        }
    }

    // ----- assistant lines ------------------------------------------------

    fn assistant(&mut self, ctx: &LineCtx<'_, '_>, msg: &Message<'_>) {
        if !ctx.view.is_sidechain {
            self.last_main_user = None;
        }
        match msg.id {
            Some(id) => {
                let id = id.decoded();
                if !self.assistant_ids.contains(&*id) {
                    self.assistant_ids.insert(id.into_owned());
                }
            }
            None => self.assistant_lines_without_id += 1,
        }
        if let Content::Blocks(blocks) = &msg.content {
            for block in blocks.iter().filter(|b| b.is("tool_use")) {
                self.tool_use(ctx, msg, block);
            }
        }
        self.response(ctx, msg);
    }

    fn tool_use(&mut self, ctx: &LineCtx<'_, '_>, msg: &Message<'_>, block: &Block<'_>) {
        let name = block.name.map(|n| n.owned());
        let (event_type, skill_name, subagent_type) = classify(name.as_deref(), block.input);
        let (source, ref_id) = attribution(skill_name.as_deref().or(subagent_type.as_deref()));
        if !ctx.view.is_sidechain {
            let input = block.input.unwrap_or("null");
            if let Some(finding) = self.loop_run.feed(ctx.index, name.as_deref(), input) {
                self.push_loop(finding);
            }
        }
        self.out.events.push(ToolEvent {
            event_type,
            tool_name: name,
            skill_name,
            subagent_type,
            command_name: None,
            is_error: false,
            source,
            ref_id,
            model: msg.model.map(|m| m.owned()),
            cwd: ctx.view.cwd.map(|s| s.owned()),
            event_uuid: ctx.view.uuid.map(|s| s.owned()),
            parent_uuid: ctx.view.parent_uuid.map(|s| s.owned()),
            tool_use_id: block.id.map(|s| s.owned()),
            occurred_at_ms: ctx.at,
            is_sidechain: ctx.view.is_sidechain,
            line_index: ctx.index,
        });
    }

    fn push_loop(&mut self, finding: Finding) {
        self.out.loops += 1;
        self.out.findings.push(finding);
    }

    /// SPEC "response, tokens": one per `(message.id, requestId)` with a
    /// usage and a real model; a sidechain replay of a counted message.id
    /// under another requestId is not a response.
    fn response(&mut self, ctx: &LineCtx<'_, '_>, msg: &Message<'_>) {
        let (Some(usage), Some(id), Some(req), Some(model)) =
            (msg.usage, msg.id, ctx.view.request_id, msg.model)
        else {
            return;
        };
        let (id, req, model) = (id.decoded(), req.decoded(), model.decoded());
        if id.is_empty() || req.is_empty() || model.is_empty() || model == SYNTHETIC_MODEL {
            return;
        }
        match self.response_keys.get_mut(&*id) {
            Some(requests) if requests.iter().any(|r| *r == *req) => return,
            Some(_) if ctx.view.is_sidechain => return,
            Some(requests) => requests.push(req.to_string()),
            None => {
                self.response_keys
                    .insert(id.to_string(), vec![req.to_string()]);
            }
        }
        if !ctx.view.is_sidechain {
            *self
                .main_responses_by_model
                .entry(model.to_string())
                .or_insert(0) += 1;
        }
        let has_split = usage.cache_5m.is_some() || usage.cache_1h.is_some();
        let (cache_5m, cache_1h) = if has_split {
            (usage.cache_5m.unwrap_or(0), usage.cache_1h.unwrap_or(0))
        } else {
            (usage.cache_creation, 0)
        };
        self.out.responses.push(Response {
            message_id: id.into_owned(),
            request_id: req.into_owned(),
            model: model.into_owned(),
            first_ts_ms: ctx.at,
            input: usage.input,
            output: usage.output,
            cache_creation: usage.cache_creation,
            cache_read: usage.cache_read,
            cache_5m,
            cache_1h,
            is_sidechain: ctx.view.is_sidechain,
            line_index: ctx.index,
        });
    }

    // ----- user lines -----------------------------------------------------

    fn user(&mut self, ctx: &LineCtx<'_, '_>, msg: &Message<'_>) {
        if !ctx.view.is_sidechain {
            self.last_main_user = Some(ctx.index);
            remember_user_text(&mut self.last_main_user_text, &msg.content);
        }
        let parts = text_parts(&msg.content);
        if !ctx.view.is_meta && !parts.is_empty() {
            self.out.user_prompts += 1;
        }
        for part in &parts {
            if let Some(name) = text::command_name_in(part) {
                self.slash_command(ctx, name);
            }
        }
        if let Content::Blocks(blocks) = &msg.content {
            for block in blocks.iter().filter(|b| b.is("tool_result")) {
                self.tool_result(ctx.index, block);
            }
        }
    }

    fn slash_command(&mut self, ctx: &LineCtx<'_, '_>, name: String) {
        let (source, ref_id) = attribution(Some(&name));
        self.out.events.push(ToolEvent {
            event_type: EventType::SlashCommand,
            tool_name: None,
            skill_name: None,
            subagent_type: None,
            command_name: Some(name),
            is_error: false,
            source,
            ref_id,
            model: None,
            cwd: ctx.view.cwd.map(|s| s.owned()),
            event_uuid: ctx.view.uuid.map(|s| s.owned()),
            parent_uuid: ctx.view.parent_uuid.map(|s| s.owned()),
            tool_use_id: None,
            occurred_at_ms: ctx.at,
            is_sidechain: ctx.view.is_sidechain,
            line_index: ctx.index,
        });
    }

    /// Records a result for error marking and orphans; an error result also
    /// gives exactly one finding, classified by its text.
    fn tool_result(&mut self, index: u64, block: &Block<'_>) {
        let id = block.tool_use_id.map(|s| s.owned());
        if block.is_error {
            if let Some(id) = &id {
                self.error_ids.insert(id.clone());
            }
            let body = block.content.map(text::result_text).unwrap_or_default();
            let finding_type = classify_error(&body);
            self.out.findings.push(Finding {
                finding_type,
                turn_index: index,
                severity: finding_type.severity(),
                excerpt: text::excerpt(&body),
            });
        }
        self.result_ids.push(id);
    }

    // ----- end of file ----------------------------------------------------

    /// Applies the whole-file rules and returns the result.
    pub fn finish(mut self) -> ParsedFile {
        if let Some(finding) = self.loop_run.close() {
            self.push_loop(finding);
        }
        let mut out = std::mem::take(&mut self.out);
        out.lines = self.lines;
        out.assistant_messages = self.assistant_ids.len() as u64 + self.assistant_lines_without_id;
        self.backfill_times(&mut out);
        self.apply_results(&mut out);
        if let Some(index) = self.last_main_user {
            out.abrupt_end = true;
            out.findings.push(Finding {
                finding_type: FindingType::AbruptEnd,
                turn_index: index,
                severity: FindingType::AbruptEnd.severity(),
                excerpt: text::excerpt(&self.last_main_user_text),
            });
        }
        // Stable: findings of one line keep their block order.
        out.findings.sort_by_key(|f| f.turn_index);
        self.apply_times(&mut out);
        out.primary_model = primary_model(&self.main_responses_by_model);
        out
    }

    /// Lines before the file's first timestamp take that first timestamp.
    fn backfill_times(&self, out: &mut ParsedFile) {
        let Some(first) = self.first_stamp else {
            return;
        };
        for e in out.events.iter_mut().filter(|e| e.occurred_at_ms.is_none()) {
            e.occurred_at_ms = Some(first);
        }
        for r in out.responses.iter_mut().filter(|r| r.first_ts_ms.is_none()) {
            r.first_ts_ms = Some(first);
        }
    }

    /// Marks calls named by error results; counts results naming no call.
    fn apply_results(&self, out: &mut ParsedFile) {
        let mut calls = HashSet::new();
        for e in out.events.iter_mut() {
            if let Some(id) = &e.tool_use_id {
                e.is_error = self.error_ids.contains(id);
                calls.insert(id.as_str());
            }
        }
        out.orphan_results = self
            .result_ids
            .iter()
            .filter(|id| !id.as_deref().is_some_and(|id| calls.contains(id)))
            .count() as u64;
    }

    fn apply_times(&mut self, out: &mut ParsedFile) {
        self.stamps.sort_unstable();
        let (Some(&first), Some(&last)) = (self.stamps.first(), self.stamps.last()) else {
            return;
        };
        out.started_at_ms = Some(first);
        out.ended_at_ms = Some(last);
        out.wall_seconds = ms_to_seconds(last - first);
        out.active_seconds = ms_to_seconds(active_ms(&self.stamps));
    }
}

/// Python's `bytes.strip()` whitespace: such a line is ignored.
fn is_blank(raw: &[u8]) -> bool {
    raw.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

fn ms_to_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Sum of activity blocks over sorted timestamps.
fn active_ms(sorted: &[i64]) -> i64 {
    let Some(&first) = sorted.first() else {
        return 0;
    };
    let (mut total, mut block_start, mut prev) = (0, first, first);
    for &t in &sorted[1..] {
        if t - prev > ACTIVE_GAP_MS {
            total += prev - block_start;
            block_start = t;
        }
        prev = t;
    }
    total + prev - block_start
}

fn primary_model(counts: &HashMap<String, u64>) -> Option<String> {
    counts
        .iter()
        .max_by(|(ma, ca), (mb, cb)| ca.cmp(cb).then_with(|| mb.cmp(ma)))
        .map(|(m, _)| m.clone())
}

/// Event type and the name fields that go with it (SPEC "tool event").
fn classify(
    name: Option<&str>,
    input: Option<&str>,
) -> (EventType, Option<String>, Option<String>) {
    let fields = || line::input_fields(input.unwrap_or("null"));
    match name {
        Some("Skill") => {
            let f = fields();
            (EventType::ToolUse, first_non_empty([f.skill, f.name]), None)
        }
        Some("Task" | "Agent") => (
            EventType::Subagent,
            None,
            first_non_empty([fields().subagent_type]),
        ),
        Some(n) if n.starts_with("mcp__") => (EventType::McpCall, None, None),
        _ => (EventType::ToolUse, None, None),
    }
}

/// Python's `a or b`: the first non-empty string.
fn first_non_empty<const N: usize>(candidates: [Option<JStr<'_>>; N]) -> Option<String> {
    candidates
        .into_iter()
        .flatten()
        .map(|s| s.owned())
        .find(|s| !s.is_empty())
}

/// `prefix:name` (both parts non-empty) is curated with `ref_id = prefix`.
fn attribution(name: Option<&str>) -> (Source, Option<String>) {
    match name.and_then(|n| n.split_once(':')) {
        Some((prefix, local)) if !prefix.is_empty() && !local.is_empty() => {
            (Source::Curated, Some(prefix.to_owned()))
        }
        _ => (Source::Builtin, None),
    }
}

/// Rejection first, then denial, else a plain tool error (SPEC: one
/// finding per error result, the three kinds exclusive).
fn classify_error(body: &str) -> FindingType {
    if body.contains(text::REJECTION_MARK) {
        FindingType::UserRejection
    } else if text::DENIAL_MARKS.iter().any(|m| body.contains(m)) {
        FindingType::PermissionDenied
    } else {
        FindingType::ToolError
    }
}

/// A user line's text parts: the string content, or each top-level text
/// block (tool results never).
fn text_parts<'a>(content: &Content<'a>) -> Vec<JStr<'a>> {
    let empty = JStr {
        raw: "",
        escaped: false,
    };
    match content {
        Content::Text(s) => vec![*s],
        Content::Blocks(blocks) => blocks
            .iter()
            .filter(|b| b.is("text"))
            .map(|b| b.text.unwrap_or(empty))
            .collect(),
        Content::Absent => Vec::new(),
    }
}

/// Keeps the start of a main-thread user line's text for a possible
/// abrupt-end excerpt: its text parts joined by newlines, or, for a line of
/// tool results only, the first result's text.
fn remember_user_text(buf: &mut String, content: &Content<'_>) {
    let mut ex = ExcerptBuf::new(buf);
    let parts = text_parts(content);
    if !parts.is_empty() {
        for (i, part) in parts.iter().enumerate() {
            if (i > 0 && !ex.push("\n")) || !push_decoded(&mut ex, part) {
                return;
            }
        }
        return;
    }
    if let Content::Blocks(blocks) = content {
        if let Some(raw) = blocks
            .iter()
            .find(|b| b.is("tool_result"))
            .and_then(|b| b.content)
        {
            text::result_text_with(raw, |p| ex.push(p));
        }
    }
}

fn push_decoded(ex: &mut ExcerptBuf<'_>, s: &JStr<'_>) -> bool {
    text::decode_with(s.raw, |p| ex.push(p))
}

/// The current run of identical consecutive main-thread calls.
#[derive(Default)]
struct LoopRun {
    name: Option<String>,
    input: String,
    /// `input` parsed once a comparison needed it (inner `None`: unparseable).
    canonical: Option<Option<serde_json::Value>>,
    len: u64,
    first_line: u64,
}

impl LoopRun {
    /// Adds a call; returns the finding of the run it ends, if a loop.
    ///
    /// Calls are equal when name and input are equal up to key order and
    /// formatting (the oracle's `json.dumps(input, sort_keys=True)`): equal
    /// text is equal, different text is compared as parsed values, so only
    /// consecutive calls of one tool are ever parsed, each at most once.
    /// Inputs serde_json cannot parse (lone surrogates, nesting over 128)
    /// compare as text.
    fn feed(&mut self, index: u64, name: Option<&str>, input: &str) -> Option<Finding> {
        let mut parsed_input = None;
        if self.len > 0 && self.name.as_deref() == name {
            if self.input == input {
                self.len += 1;
                return None;
            }
            let parsed = serde_json::from_str::<serde_json::Value>(input).ok();
            let previous = self
                .canonical
                .get_or_insert_with(|| serde_json::from_str(&self.input).ok());
            if previous.is_some() && *previous == parsed {
                self.len += 1;
                return None;
            }
            parsed_input = Some(parsed);
        }
        let finding = self.close();
        self.name = name.map(str::to_owned);
        self.input.clear();
        self.input.push_str(input);
        self.canonical = parsed_input;
        self.len = 1;
        self.first_line = index;
        finding
    }

    /// Ends the run; a loop finding if it was long enough.
    fn close(&mut self) -> Option<Finding> {
        let len = std::mem::take(&mut self.len);
        if len < LOOP_MIN_RUN {
            return None;
        }
        let name = self.name.as_deref().unwrap_or("?");
        let text = format!(
            "{name} called {len} times in a row with the same input: {}",
            self.input
        );
        Some(Finding {
            finding_type: FindingType::Loop,
            turn_index: self.first_line,
            severity: FindingType::Loop.severity(),
            excerpt: text::excerpt(&text),
        })
    }
}
