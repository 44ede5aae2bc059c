//! The parser's output: one `ParsedFile` per transcript.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate};
use serde::Serialize;

/// Kind of a `usage_events` row (SPEC §3 "tool event", "slash command").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A plain tool call, `Skill` included.
    ToolUse,
    /// A `Task` / `Agent` dispatch.
    Subagent,
    /// A tool whose name starts with `mcp__`.
    McpCall,
    /// A `<command-name>/NAME</command-name>` in a user line.
    SlashCommand,
}

impl EventType {
    /// The `usage_events.event_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ToolUse => "tool_use",
            EventType::Subagent => "subagent",
            EventType::McpCall => "mcp_call",
            EventType::SlashCommand => "slash_command",
        }
    }
}

/// Attribution of a skill, agent or command (`usage_events.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Builtin,
    /// Namespaced `prefix:name`; `ref_id` holds the prefix.
    Curated,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Builtin => "builtin",
            Source::Curated => "curated",
        }
    }
}

/// One `usage_events` row: a `tool_use` block or a slash command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolEvent {
    pub event_type: EventType,
    /// The `tool_use` block's `name`; `None` for slash commands.
    pub tool_name: Option<String>,
    /// `Skill` only: `input.skill`, else `input.name` (non-empty strings).
    pub skill_name: Option<String>,
    /// `Task` / `Agent` only: `input.subagent_type`.
    pub subagent_type: Option<String>,
    /// Slash commands only: NAME without its slash.
    pub command_name: Option<String>,
    /// Set when any `tool_result` with `is_error: true` names this call.
    pub is_error: bool,
    pub source: Source,
    pub ref_id: Option<String>,
    /// `message.model` of the assistant line; `None` for slash commands.
    pub model: Option<String>,
    pub cwd: Option<String>,
    /// The line's `uuid` / `parentUuid` (shared by parallel calls of a line).
    pub event_uuid: Option<String>,
    pub parent_uuid: Option<String>,
    /// The `tool_use` block's `id`.
    pub tool_use_id: Option<String>,
    /// The line's timestamp, else the nearest earlier one in the file, else
    /// (before the first timestamp) the file's first one; `None` only when
    /// the file has no usable timestamp at all.
    pub occurred_at_ms: Option<i64>,
    pub is_sidechain: bool,
    /// 0-based physical line number (blank lines included).
    pub line_index: u64,
}

/// Four token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Tokens {
    /// Sum of the four counts (the cross-file de-duplication's "token total").
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read)
    }

    pub fn add(&mut self, other: &Tokens) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_creation = self.cache_creation.saturating_add(other.cache_creation);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
    }

    /// Sum over responses (e.g. only those that won the cross-file dedup).
    pub fn sum<'a>(responses: impl IntoIterator<Item = &'a Response>) -> Tokens {
        let mut total = Tokens::default();
        for r in responses {
            total.add(&r.tokens());
        }
        total
    }
}

/// One counted assistant API response of a file: the first line of its
/// `(message.id, requestId)` (SPEC §3 "response, tokens").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub message_id: String,
    pub request_id: String,
    pub model: String,
    /// Timestamp of the response's first line (same fallback as events).
    pub first_ts_ms: Option<i64>,
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
    /// Cache writes split by TTL from `usage.cache_creation`; without that
    /// breakdown all of `cache_creation` is 5-minute (ccusage's rule).
    pub cache_5m: u64,
    pub cache_1h: u64,
    pub is_sidechain: bool,
    pub line_index: u64,
}

impl Response {
    pub fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input,
            output: self.output,
            cache_creation: self.cache_creation,
            cache_read: self.cache_read,
        }
    }

    /// The UTC day the response counts on.
    pub fn utc_day(&self) -> Option<NaiveDate> {
        DateTime::from_timestamp_millis(self.first_ts_ms?).map(|dt| dt.date_naive())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingType {
    ToolError,
    PermissionDenied,
    UserRejection,
    Loop,
    AbruptEnd,
}

impl FindingType {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingType::ToolError => "tool_error",
            FindingType::PermissionDenied => "permission_denied",
            FindingType::UserRejection => "user_rejection",
            FindingType::Loop => "loop",
            FindingType::AbruptEnd => "abrupt_end",
        }
    }

    /// SPEC §3: error for loops, warning for tool errors and denials, info
    /// for rejections and abrupt ends.
    pub fn severity(self) -> Severity {
        match self {
            FindingType::Loop => Severity::Error,
            FindingType::ToolError | FindingType::PermissionDenied => Severity::Warning,
            FindingType::UserRejection | FindingType::AbruptEnd => Severity::Info,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One `session_findings` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub finding_type: FindingType,
    /// 0-based physical line: the result's line, a loop's first call, the
    /// unanswered user line of an abrupt end.
    pub turn_index: u64,
    pub severity: Severity,
    /// At most 200 scalar values, cut between grapheme clusters.
    pub excerpt: String,
}

/// Everything the ingest layer needs from one transcript.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ParsedFile {
    /// `sessionId` of the first line that has one.
    pub session_id: Option<String>,
    /// Count of `\n`, plus 1 if the data does not end with one.
    pub lines: u64,
    /// Non-blank lines that are not a JSON object.
    pub malformed_lines: u64,
    /// JSON-object lines whose `type` is missing or not in `KNOWN_LINE_TYPES`.
    pub unknown_type_lines: u64,
    /// Earliest and latest top-level `timestamp` (epoch ms, UTC).
    pub started_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    /// ended − started; 0 without timestamps.
    pub wall_seconds: f64,
    /// Sum of activity blocks split by gaps of more than 600 s.
    pub active_seconds: f64,
    /// User lines with string content or a text block, not `isMeta`.
    pub user_prompts: u64,
    /// Distinct assistant messages: assistant lines grouped by `message.id`
    /// (a streamed response written as several lines counts once; a line
    /// without an id counts on its own; `<synthetic>` messages included).
    pub assistant_messages: u64,
    /// Lines with `isSidechain: true`.
    pub sidechain_lines: u64,
    /// In file order.
    pub events: Vec<ToolEvent>,
    /// In file order, one per counted `(message.id, requestId)`.
    pub responses: Vec<Response>,
    /// Ordered by `turn_index`.
    pub findings: Vec<Finding>,
    /// `tool_result` blocks whose `tool_use_id` matches no call in the file.
    pub orphan_results: u64,
    pub abrupt_end: bool,
    /// Number of loop findings.
    pub loops: u64,
    /// Model with the most main-thread responses; ties to the alphabetically first.
    pub primary_model: Option<String>,
}

/// The per-session counters of `usage_session_summary`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// All `tool_use` events (MCP calls and subagent dispatches included).
    pub tool_calls: u64,
    /// Tool events marked `is_error`.
    pub tool_errors: u64,
    /// Tool events named `Skill`.
    pub skill_invocations: u64,
    pub subagent_dispatches: u64,
    pub mcp_calls: u64,
    pub slash_commands: u64,
    /// Distinct tool names / skill names among the tool events.
    pub distinct_tools: u64,
    pub distinct_skills: u64,
    /// All of this file's responses, before cross-file de-duplication.
    pub tokens: Tokens,
}

impl ParsedFile {
    /// Tool events only (slash commands left out).
    pub fn tool_events(&self) -> impl Iterator<Item = &ToolEvent> {
        self.events
            .iter()
            .filter(|e| e.event_type != EventType::SlashCommand)
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            tokens: Tokens::sum(&self.responses),
            ..Summary::default()
        };
        let mut tools = BTreeSet::new();
        let mut skills = BTreeSet::new();
        for e in &self.events {
            match e.event_type {
                EventType::SlashCommand => {
                    s.slash_commands += 1;
                    continue;
                }
                EventType::Subagent => s.subagent_dispatches += 1,
                EventType::McpCall => s.mcp_calls += 1,
                EventType::ToolUse => {}
            }
            s.tool_calls += 1;
            s.tool_errors += u64::from(e.is_error);
            s.skill_invocations += u64::from(e.tool_name.as_deref() == Some("Skill"));
            tools.insert(e.tool_name.as_deref());
            if let Some(skill) = &e.skill_name {
                skills.insert(skill.as_str());
            }
        }
        s.distinct_tools = tools.len() as u64;
        s.distinct_skills = skills.len() as u64;
        s
    }

    /// Tool calls per tool name (a block without a string name counts as "").
    pub fn tools_by_name(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in self.tool_events() {
            *out.entry(e.tool_name.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
        out
    }

    /// Slash commands per name (without the slash).
    pub fn slash_command_counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in &self.events {
            if let Some(name) = &e.command_name {
                *out.entry(name.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Tokens per model over this file's responses.
    pub fn tokens_by_model(&self) -> BTreeMap<String, Tokens> {
        let mut out: BTreeMap<String, Tokens> = BTreeMap::new();
        for r in &self.responses {
            out.entry(r.model.clone()).or_default().add(&r.tokens());
        }
        out
    }

    pub fn count_findings(&self, kind: FindingType) -> u64 {
        self.findings
            .iter()
            .filter(|f| f.finding_type == kind)
            .count() as u64
    }
}
