//! Unit tests for the rules the generated corpus never exercises
//! (shared/corpus/README.md, "Relation to glassbox's definitions"), plus
//! robustness against arbitrary bytes.

use serde_json::{json, Value};

use super::json::is_valid_json;
use super::text::{excerpt, first_command_name, truncate_graphemes};
use super::*;

// ----- line builders ---------------------------------------------------------

const T0: &str = "2026-09-15T08:00:00.000Z";

fn ms(ts: &str) -> i64 {
    parse_timestamp_ms(ts).expect("test timestamp")
}

fn user(ts: &str, content: Value) -> Value {
    json!({"type": "user", "sessionId": "s-1", "isSidechain": false, "uuid": "u", "cwd": "/repo",
           "timestamp": ts, "message": {"role": "user", "content": content}})
}

fn usage(output: u64) -> Value {
    json!({"input_tokens": 1, "output_tokens": output, "cache_creation_input_tokens": 10,
           "cache_read_input_tokens": 100,
           "cache_creation": {"ephemeral_5m_input_tokens": 4, "ephemeral_1h_input_tokens": 6}})
}

fn assistant(ts: &str, id: &str, req: &str, blocks: Value) -> Value {
    json!({"type": "assistant", "sessionId": "s-1", "isSidechain": false, "uuid": "a", "timestamp": ts,
           "requestId": req, "message": {"id": id, "model": "claude-opus-4-7", "role": "assistant",
           "content": blocks, "usage": usage(5)}})
}

fn tool_use(id: &str, name: &str, input: Value) -> Value {
    json!([{"type": "tool_use", "id": id, "name": name, "input": input}])
}

fn result(id: &str, content: Value, is_error: bool) -> Value {
    json!([{"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error}])
}

fn text(t: &str) -> Value {
    json!([{"type": "text", "text": t}])
}

fn sidechain(mut line: Value) -> Value {
    line["isSidechain"] = json!(true);
    line
}

fn file(lines: &[Value]) -> String {
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

fn parse(s: &str) -> ParsedFile {
    let a = parse_bytes(s.as_bytes());
    let b = parse_reader(s.as_bytes()).expect("in-memory reader");
    assert_eq!(a, b, "parse_bytes and parse_reader must agree");
    // Small reads into a small buffer: lines cross reads, the buffer is
    // compacted and grows past long lines; a reused buffer changes nothing.
    let mut buf = Vec::new();
    for chunk in [16, 1 << 20] {
        let c = super::parse_chunks(Trickle(s.as_bytes(), 7), &mut buf, chunk).expect("in memory");
        assert_eq!(a, c, "parse_bytes and parse_chunked must agree");
    }
    a
}

/// A reader that returns at most `.1` bytes per read.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn kinds(p: &ParsedFile) -> Vec<(FindingType, u64)> {
    p.findings
        .iter()
        .map(|f| (f.finding_type, f.turn_index))
        .collect()
}

// ----- results and errors -----------------------------------------------------

#[test]
fn a_result_without_a_matching_call_is_an_orphan_not_an_error() {
    let p = parse(&file(&[
        user(T0, json!("go")),
        assistant(
            T0,
            "m1",
            "r1",
            tool_use("t1", "Bash", json!({"command": "ls"})),
        ),
        user(T0, result("t1", json!("ok"), false)),
        user(T0, result("t-missing", json!("boom"), true)),
        user(
            T0,
            json!([{"type": "tool_result", "content": "no id", "is_error": true}]),
        ),
        assistant(T0, "m2", "r2", text("done")),
    ]));
    assert_eq!(p.orphan_results, 2);
    assert_eq!(p.summary().tool_errors, 0);
    assert!(!p.events[0].is_error);
    // Findings are per error result, matched or not.
    assert_eq!(
        kinds(&p),
        vec![(FindingType::ToolError, 3), (FindingType::ToolError, 4)]
    );
}

#[test]
fn an_error_result_marks_its_call_wherever_it_arrives() {
    let p = parse(&file(&[
        user(T0, result("t2", json!("early failure"), true)),
        assistant(
            T0,
            "m1",
            "r1",
            tool_use("t1", "Read", json!({"file_path": "/a"})),
        ),
        assistant(
            T0,
            "m1",
            "r1",
            tool_use("t2", "Bash", json!({"command": "x"})),
        ),
        user(T0, result("t1", json!("fine"), false)),
        user(
            T0,
            result(
                "t1",
                json!([{"type": "text", "text": "late"}, {"type": "image"}, {"type": "text", "text": "failure"}]),
                true,
            ),
        ),
    ]));
    assert_eq!(p.orphan_results, 0);
    assert!(p.events.iter().all(|e| e.is_error));
    assert_eq!(p.summary().tool_errors, 2);
    // Result text: the text blocks joined with newlines.
    assert_eq!(p.findings[1].excerpt, "late\nfailure");
}

#[test]
fn rejection_and_denial_texts_classify_each_error_result_once() {
    let both =
        "The user doesn't want to proceed with this tool use. Claude requested permissions to \
                write to /x, but you haven't granted it yet.";
    let p = parse(&file(&[
        assistant(T0, "m1", "r1", tool_use("t1", "Edit", json!({}))),
        user(T0, result("t1", json!(both), true)),
        assistant(T0, "m2", "r2", tool_use("t2", "Bash", json!({}))),
        user(
            T0,
            result(
                "t2",
                json!("Permission to use Bash with command rm -rf / has been denied."),
                true,
            ),
        ),
        assistant(T0, "m3", "r3", tool_use("t3", "Bash", json!({}))),
        user(
            T0,
            result("t3", json!([{"type": "text", "text": "Exit code 1"}]), true),
        ),
        // A rejection text without is_error is no finding at all.
        user(T0, result("t3", json!(both), false)),
        assistant(T0, "m4", "r4", text("ok")),
    ]));
    let f: Vec<_> = p
        .findings
        .iter()
        .map(|f| (f.finding_type, f.severity, f.turn_index))
        .collect();
    assert_eq!(
        f,
        vec![
            (FindingType::UserRejection, Severity::Info, 1),
            (FindingType::PermissionDenied, Severity::Warning, 3),
            (FindingType::ToolError, Severity::Warning, 5),
        ]
    );
    assert_eq!(p.summary().tool_errors, 3);
}

// ----- responses ----------------------------------------------------------------

#[test]
fn responses_need_message_id_request_id_usage_and_a_real_model() {
    let mut no_id = assistant(T0, "x", "r1", text("a"));
    no_id["message"]
        .as_object_mut()
        .expect("object")
        .remove("id");
    let mut no_req = assistant(T0, "m2", "x", text("b"));
    no_req.as_object_mut().expect("object").remove("requestId");
    let mut synthetic = assistant(T0, "m3", "r3", text("API Error"));
    synthetic["message"]["model"] = json!("<synthetic>");
    let mut no_usage = assistant(T0, "m4", "r4", text("c"));
    no_usage["message"]
        .as_object_mut()
        .expect("object")
        .remove("usage");
    let mut empty_req = assistant(T0, "m5", "", text("d"));
    empty_req["requestId"] = json!("");
    let good = assistant(T0, "m6", "r6", text("e"));
    let p = parse(&file(&[
        no_id, no_req, synthetic, no_usage, empty_req, good,
    ]));
    assert_eq!(p.responses.len(), 1);
    assert_eq!(p.responses[0].message_id, "m6");
    // Every assistant line is still a message: 5 ids + 1 line without id.
    assert_eq!(p.assistant_messages, 6);
}

#[test]
fn a_streamed_response_counts_once_and_a_sidechain_replay_not_at_all() {
    let p = parse(&file(&[
        assistant(T0, "m1", "r1", text("thinking")),
        assistant(
            T0,
            "m1",
            "r1",
            tool_use("t1", "Task", json!({"subagent_type": "Explore"})),
        ),
        sidechain(assistant(T0, "m1", "r-replay", text("replayed"))),
        // The same id under another requestId on the main thread is counted.
        assistant(T0, "m1", "r2", text("retry")),
    ]));
    let keys: Vec<_> = p
        .responses
        .iter()
        .map(|r| (r.message_id.as_str(), r.request_id.as_str()))
        .collect();
    assert_eq!(keys, vec![("m1", "r1"), ("m1", "r2")]);
    assert_eq!(p.assistant_messages, 1);
    let r = &p.responses[0];
    assert_eq!(
        (
            r.input,
            r.output,
            r.cache_creation,
            r.cache_read,
            r.cache_5m,
            r.cache_1h
        ),
        (1, 5, 10, 100, 4, 6)
    );
}

#[test]
fn cache_writes_without_a_ttl_split_are_five_minute_writes() {
    let mut line = assistant(T0, "m1", "r1", text("a"));
    line["message"]["usage"] =
        json!({"input_tokens": 2, "cache_creation_input_tokens": 50, "output_tokens": null});
    let p = parse(&file(&[line]));
    let r = &p.responses[0];
    assert_eq!(
        (r.input, r.output, r.cache_creation, r.cache_5m, r.cache_1h),
        (2, 0, 50, 50, 0)
    );
}

#[test]
fn primary_model_counts_main_thread_responses_and_ties_go_alphabetically() {
    let with_model = |id: &str, model: &str| {
        let mut l = assistant(T0, id, id, text("x"));
        l["message"]["model"] = json!(model);
        l
    };
    let p = parse(&file(&[
        with_model("1", "claude-sonnet-4-6"),
        with_model("2", "claude-haiku-4-5"),
        sidechain(with_model("3", "claude-sonnet-4-6")),
    ]));
    assert_eq!(p.primary_model.as_deref(), Some("claude-haiku-4-5"));
    assert_eq!(parse("").primary_model, None);
}

#[test]
fn cross_file_dedup_prefers_more_tokens_then_earliest_then_smallest_file() {
    let resp = |out: u64, ts: Option<i64>| Response {
        message_id: "m".into(),
        request_id: "r".into(),
        model: "claude-opus-4-7".into(),
        first_ts_ms: ts,
        input: 1,
        output: out,
        cache_creation: 0,
        cache_read: 0,
        cache_5m: 0,
        cache_1h: 0,
        is_sidechain: false,
        line_index: 0,
    };
    let (small, big) = (resp(5, Some(10)), resp(9, Some(20)));
    assert_eq!(
        dedup_across_files(&[("a", &small), ("b", &big)]),
        vec![false, true]
    );
    let (late, early) = (resp(5, Some(20)), resp(5, Some(10)));
    assert_eq!(
        dedup_across_files(&[("a", &late), ("b", &early)]),
        vec![false, true]
    );
    let untimed = resp(5, None);
    assert_eq!(
        dedup_across_files(&[("a", &untimed), ("b", &late)]),
        vec![false, true]
    );
    assert_eq!(
        dedup_across_files(&[("z/2.jsonl", &early), ("a/1.jsonl", &early)]),
        vec![false, true]
    );
    let mut other = resp(1, None);
    other.request_id = "r2".into();
    assert_eq!(
        dedup_across_files(&[("a", &late), ("a", &other)]),
        vec![true, true]
    );
}

// ----- time ---------------------------------------------------------------------

#[test]
fn lines_without_a_timestamp_take_the_nearest_earlier_one_never_now() {
    let mut untimed = assistant(T0, "m2", "r2", tool_use("t2", "Bash", json!({})));
    untimed.as_object_mut().expect("object").remove("timestamp");
    let mut before_first = assistant(T0, "m1", "r1", tool_use("t1", "Read", json!({})));
    before_first["timestamp"] = json!("not a time");
    let p = parse(&file(&[
        before_first,
        user("2026-09-15T08:00:05.000Z", json!("hi")),
        user("2026-09-15T08:00:09.000Z", json!("again")),
        untimed,
    ]));
    // Before the first timestamp: the file's first timestamp.
    assert_eq!(p.events[0].occurred_at_ms, Some(ms("2026-09-15T08:00:05Z")));
    assert_eq!(p.events[1].occurred_at_ms, Some(ms("2026-09-15T08:00:09Z")));
    assert_eq!(p.responses[1].first_ts_ms, Some(ms("2026-09-15T08:00:09Z")));
    assert_eq!(p.wall_seconds, 4.0);

    let mut no_time = assistant(T0, "m", "r", tool_use("t", "Bash", json!({})));
    no_time.as_object_mut().expect("object").remove("timestamp");
    let p = parse(&file(&[no_time]));
    assert_eq!((p.events[0].occurred_at_ms, p.started_at_ms), (None, None));
    assert_eq!((p.wall_seconds, p.active_seconds), (0.0, 0.0));
}

#[test]
fn timestamps_with_offsets_are_converted_to_utc() {
    assert_eq!(
        ms("2026-09-15T10:00:00.000+02:00"),
        ms("2026-09-15T08:00:00.000Z")
    );
    assert_eq!(ms("2026-09-15T02:30:00-0530"), ms("2026-09-15T08:00:00Z"));
    assert_eq!(ms("2026-09-15T05:00:00-03"), ms("2026-09-15T08:00:00Z"));
    assert_eq!(
        ms("2026-09-15 08:00:00.123456789z"),
        ms("2026-09-15T08:00:00.123Z")
    );
    assert_eq!(
        ms("2026-09-15T08:00:00"),
        ms("2026-09-15T08:00:00Z"),
        "no zone reads as UTC"
    );
    assert_eq!(ms("1970-01-01T00:00:00Z"), 0);
    assert_eq!(ms("1969-12-31T23:59:59.999Z"), -1);
    assert_eq!(ms("2024-02-29T00:00:00Z"), 1_709_164_800_000);
    assert_eq!(
        ms("Tue, 15 Sep 2026 08:00:00 +0000"),
        ms("2026-09-15T08:00:00Z")
    );
    for bad in [
        "",
        "2026-02-30T00:00:00Z",
        "2026-09-15T24:00:00Z",
        "2026-09-15T08:00:00+25:00",
        "yesterday",
    ] {
        assert_eq!(parse_timestamp_ms(bad), None, "{bad:?}");
    }
    // Earliest/latest by instant, not by text; the UTC day of a response.
    let p = parse(&file(&[
        assistant("2026-09-15T01:00:00.000+05:00", "m1", "r1", text("a")),
        user("2026-09-14T21:00:00.000Z", json!("b")),
    ]));
    assert_eq!(p.started_at_ms, Some(ms("2026-09-14T20:00:00Z")));
    assert_eq!(p.ended_at_ms, Some(ms("2026-09-14T21:00:00Z")));
    assert_eq!(
        p.responses[0].utc_day().map(|d| d.to_string()).as_deref(),
        Some("2026-09-14")
    );
}

#[test]
fn active_time_splits_only_on_gaps_longer_than_600_seconds() {
    let p = parse(&file(&[
        user("2026-09-15T08:00:00Z", json!("a")),
        user("2026-09-15T08:10:00Z", json!("exactly 600 s later")),
        user("2026-09-15T08:20:01Z", json!("601 s later: new block")),
        user("2026-09-15T08:20:31Z", json!("c")),
    ]));
    assert_eq!(p.active_seconds, 630.0);
    assert_eq!(p.wall_seconds, 1231.0);
}

// ----- slash commands and prompts ------------------------------------------------

#[test]
fn only_the_first_command_name_of_each_text_part_counts() {
    let two_tags = "<command-name>/model</command-name><command-name>/review</command-name>";
    // The last line writes `<` as the escape \u003c.
    let escaped = r#"{"type":"user","message":{"role":"user","content":"\u003ccommand-name>/esc\u003c/command-name>"}}"#;
    let p = parse(
        &(file(&[
            user(T0, json!(two_tags)),
            user(
                T0,
                json!([{"type": "text", "text": "<command-name>/a</command-name>"},
                   {"type": "text", "text": "x <command-name>/plugin:b</command-name> <command-name>/c</command-name>"},
                   {"type": "tool_result", "tool_use_id": "t", "content": "<command-name>/nope</command-name>"}]),
            ),
            // A broken first tag does not hide a good second one (the regex's search).
            user(
                T0,
                json!("<command-name>/x<b></command-name> then <command-name>/y</command-name>"),
            ),
        ]) + escaped),
    );
    let names: Vec<_> = p
        .events
        .iter()
        .filter_map(|e| e.command_name.as_deref())
        .collect();
    assert_eq!(names, vec!["model", "a", "plugin:b", "y", "esc"]);
    let curated = &p.events[2];
    assert_eq!(
        (curated.source, curated.ref_id.as_deref()),
        (Source::Curated, Some("plugin"))
    );
    assert_eq!(p.summary().slash_commands, 5);
    assert_eq!(p.summary().tool_calls, 0);
    assert_eq!(
        first_command_name("<command-name>/</command-name>"),
        Some("")
    );
    assert_eq!(first_command_name("<command-name>/unterminated"), None);
}

#[test]
fn the_escaped_slash_of_a_command_tag_is_still_found() {
    let line = r#"{"type":"user","message":{"role":"user","content":"<command-name>\/clear</command-name>"}}"#;
    let p = parse(line);
    assert_eq!(p.events[0].command_name.as_deref(), Some("clear"));
}

#[test]
fn user_prompts_are_text_lines_that_are_not_meta_or_tool_results() {
    let mut meta = user(T0, json!("expanded command prompt"));
    meta["isMeta"] = json!(true);
    let p = parse(&file(&[
        user(T0, json!("a prompt")),
        user(T0, text("a text block")),
        meta,
        user(T0, result("t", json!("out"), false)),
        user(
            T0,
            json!([{"type": "image", "source": {"type": "base64", "data": "AAAA"}}, {"type": "text", "text": "see"}]),
        ),
    ]));
    assert_eq!(p.user_prompts, 3);
}

// ----- tool events ------------------------------------------------------------------

#[test]
fn tool_events_are_classified_and_attributed() {
    let p = parse(&file(&[assistant(
        T0,
        "m1",
        "r1",
        json!([
            {"type": "tool_use", "id": "1", "name": "Skill", "input": {"skill": "", "name": "pdf"}},
            {"type": "tool_use", "id": "2", "name": "Skill", "input": {"skill": "docs:write"}},
            {"type": "tool_use", "id": "3", "name": "Task", "input": {"subagent_type": "team:reviewer"}},
            {"type": "tool_use", "id": "4", "name": "Agent", "input": "not an object"},
            {"type": "tool_use", "id": "5", "name": "mcp__github__create_issue", "input": {}},
            {"type": "tool_use", "id": "6", "name": "Bash", "input": {"command": "ls"}},
            {"type": "thinking", "thinking": "…"}
        ]),
    )]));
    let got: Vec<_> = p
        .events
        .iter()
        .map(|e| {
            (
                e.event_type,
                e.skill_name.as_deref(),
                e.subagent_type.as_deref(),
                e.source,
                e.ref_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (EventType::ToolUse, Some("pdf"), None, Source::Builtin, None),
            (
                EventType::ToolUse,
                Some("docs:write"),
                None,
                Source::Curated,
                Some("docs")
            ),
            (
                EventType::Subagent,
                None,
                Some("team:reviewer"),
                Source::Curated,
                Some("team")
            ),
            (EventType::Subagent, None, None, Source::Builtin, None),
            (EventType::McpCall, None, None, Source::Builtin, None),
            (EventType::ToolUse, None, None, Source::Builtin, None),
        ]
    );
    let e = &p.events[5];
    assert_eq!(
        (
            e.tool_use_id.as_deref(),
            e.model.as_deref(),
            e.cwd.as_deref(),
            e.event_uuid.as_deref()
        ),
        (Some("6"), Some("claude-opus-4-7"), None, Some("a"))
    );
    let s = p.summary();
    assert_eq!(
        (
            s.tool_calls,
            s.skill_invocations,
            s.subagent_dispatches,
            s.mcp_calls,
            s.distinct_tools,
            s.distinct_skills
        ),
        (6, 2, 2, 1, 5, 2)
    );
}

// ----- loops and abrupt ends ---------------------------------------------------------

#[test]
fn a_loop_is_three_equal_main_thread_calls_regardless_of_key_order() {
    let call = |i: u32, input: Value| {
        assistant(
            T0,
            &format!("m{i}"),
            "r",
            tool_use(&format!("t{i}"), "Bash", input),
        )
    };
    // The same input as call 1, written with another key order and spacing.
    let reordered = r#"{"type":"assistant","requestId":"r","message":{"id":"m2","model":"m","content":[{"type":"tool_use","id":"t2","name":"Bash","input":{ "timeout" : 5 , "command":"pytest" }}]}}"#;
    let body = [
        file(&[
            call(1, json!({"command": "pytest", "timeout": 5})),
            user(T0, result("t1", json!("fail"), true)),
        ]),
        format!("{reordered}\n"),
        file(&[
            // Sidechain calls are not in the main-thread sequence; text does not break a run.
            sidechain(call(9, json!({"command": "other"}))),
            assistant(T0, "m5", "r", text("still trying")),
            call(3, json!({"command": "pytest", "timeout": 5})),
            // 5.0 is not 5 (as in the oracle's json.dumps): the run ends.
            call(4, json!({"command": "pytest", "timeout": 5.0})),
        ]),
    ]
    .concat();
    let p = parse(&body);
    assert_eq!(p.loops, 1);
    let f = p
        .findings
        .iter()
        .find(|f| f.finding_type == FindingType::Loop)
        .expect("loop finding");
    assert_eq!((f.turn_index, f.severity), (0, Severity::Error));
    assert!(
        f.excerpt.starts_with("Bash called 3 times in a row"),
        "{}",
        f.excerpt
    );
}

#[test]
fn abrupt_end_is_a_final_main_thread_user_line_even_with_sidechain_lines_after_it() {
    let p = parse(&file(&[
        user(T0, json!("first")),
        assistant(T0, "m1", "r1", text("answer")),
        user(T0, json!("  Are you still there?  ")),
        sidechain(assistant(T0, "m2", "r2", text("subagent"))),
        json!({"type": "system", "subtype": "turn_duration", "timestamp": T0}),
    ]));
    assert!(p.abrupt_end);
    let f = p.findings.last().expect("finding");
    assert_eq!(
        (f.finding_type, f.turn_index, f.severity),
        (FindingType::AbruptEnd, 2, Severity::Info)
    );
    assert_eq!(f.excerpt, "Are you still there?");
    let p = parse(&file(&[
        user(T0, json!("q")),
        assistant(T0, "m1", "r1", text("a")),
    ]));
    assert!(!p.abrupt_end && p.findings.is_empty());
}

// ----- line handling ---------------------------------------------------------------

#[test]
fn blank_lines_are_not_malformed_but_count_for_lines_and_turn_index() {
    let body = file(&[
        user(T0, json!("x")),
        assistant(T0, "m1", "r1", tool_use("t1", "Bash", json!({}))),
    ]);
    let with_blanks = format!(
        "\n  \t\r\n{body}\x0c\n{}",
        file(&[user(T0, result("t1", json!("e"), true))])
    );
    let p = parse(&with_blanks);
    assert_eq!((p.lines, p.malformed_lines), (6, 0));
    assert_eq!(p.events[0].line_index, 3);
    assert_eq!(
        kinds(&p),
        vec![(FindingType::ToolError, 5), (FindingType::AbruptEnd, 5)]
    );
}

#[test]
fn a_truncated_final_line_is_one_malformed_line() {
    let body = file(&[user(T0, json!("x")), assistant(T0, "m1", "r1", text("y"))]);
    let cut = format!("{body}{}", &body[..40]);
    let p = parse(&cut);
    assert_eq!((p.lines, p.malformed_lines, p.responses.len()), (3, 1, 1));
    // Same without the final newline on a complete line: 2 lines, none malformed.
    let p = parse(body.trim_end());
    assert_eq!((p.lines, p.malformed_lines), (2, 0));
}

#[test]
fn lines_that_are_not_json_objects_are_malformed_and_unknown_types_are_counted() {
    let lines = [
        "[1, 2]",
        "\"just a string\"",
        "42",
        "{\"type\": \"user\"",
        "{\"type\": \"user\"} trailing",
        "{\"a\": 01}",
        "{\"a\": \"raw\ttab\"}",
        "{\"a\": \"bad \\x escape\"}",
        "\u{feff}{\"type\": \"summary\"}",
        "{\"type\": \"hologram\"}",
        "{\"no\": \"type\"}",
        "{\"type\": 7}",
        "{\"type\": \"mode\", \"x\": [NaN, -Infinity, 1e5, -0.5E-3, true, false, null, {}, []]}",
    ];
    let p = parse(&lines.join("\r\n"));
    assert_eq!(p.lines, 13);
    assert_eq!(p.malformed_lines, 8);
    assert_eq!(p.unknown_type_lines, 3);
}

#[test]
fn odd_but_valid_objects_are_read_leniently() {
    // Duplicate keys (last wins), a wrong-typed field, a lone surrogate, and
    // escaped keys: none of them makes the line malformed.
    let line = r#"{"type":"summary","type":"user","timestamp":12,"timestamp":"2026-09-15T08:00:00Z","isSidechain":"yes","sessionId":"s-\ud800","message":{"role":"user","content":"lone \udc00 and pair \ud83d\ude00"},"\u0075uid":"u-1"}"#;
    let p = parse(line);
    assert_eq!(
        (p.malformed_lines, p.user_prompts, p.sidechain_lines),
        (0, 1, 0)
    );
    assert_eq!(p.session_id.as_deref(), Some("s-\u{FFFD}"));
    assert_eq!(p.started_at_ms, Some(ms(T0)));
    let p = parse(&format!(
        "{line}\n{}",
        r#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash"}]},"uuid":"x","\u0075uid":"y"}"#
    ));
    assert_eq!(p.events[0].event_uuid.as_deref(), Some("y"));
}

#[test]
fn a_megabyte_line_is_parsed_without_trouble() {
    let big = "x".repeat(3 << 20);
    let image = "QUJD".repeat(300_000);
    let p = parse(&file(&[
        user(
            T0,
            json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
                        {"type": "text", "text": "what is this?"}]),
        ),
        assistant(
            T0,
            "m1",
            "r1",
            tool_use("t1", "Bash", json!({"command": "cat big"})),
        ),
        user(
            T0,
            result("t1", json!(format!("{big}\nhas been denied")), true),
        ),
    ]));
    assert_eq!((p.user_prompts, p.malformed_lines), (1, 0));
    assert_eq!(p.findings[0].finding_type, FindingType::PermissionDenied);
    assert_eq!(p.findings[0].excerpt.chars().count(), 200);
    assert_eq!(
        p.findings[1].excerpt.chars().count(),
        200,
        "abrupt end excerpt"
    );
}

// ----- excerpts ----------------------------------------------------------------------

#[test]
fn excerpts_never_split_a_grapheme() {
    let family = "👨\u{200D}👩\u{200D}👧";
    // 198 ASCII + a 5-scalar ZWJ family: the cut at 200 falls inside it.
    let s = format!("{}{family} tail", "a".repeat(198));
    assert_eq!(excerpt(&s), "a".repeat(198));
    // A combining accent after the 200th scalar pulls the base out too.
    let s = format!("{}e\u{301}", "a".repeat(199));
    assert_eq!(excerpt(&s), "a".repeat(199));
    // Emoji + variation selector, skin tone, flags (pairs count from the run start).
    let s = format!("{}\u{2764}\u{FE0F}", "a".repeat(199));
    assert_eq!(excerpt(&s), "a".repeat(199));
    let s = format!("{}👍\u{1F3FD}", "a".repeat(199));
    assert_eq!(excerpt(&s), "a".repeat(199));
    let s = format!("{}🇩🇪🇫🇷", "a".repeat(197));
    assert_eq!(excerpt(&s), format!("{}🇩🇪", "a".repeat(197)));
    let s = format!("{}🇩🇪🇫🇷", "a".repeat(198));
    assert_eq!(excerpt(&s), format!("{}🇩🇪", "a".repeat(198)));
    // Hangul jamo and CR LF.
    let s = format!("{}\u{1100}\u{1161}", "a".repeat(199));
    assert_eq!(excerpt(&s), "a".repeat(199));
    assert_eq!(truncate_graphemes("ab\r\ncd", 3), "ab");
    // Short text is kept (trimmed); one cluster longer than the limit gives "".
    assert_eq!(excerpt("  日本語 ✅  "), "日本語 ✅");
    assert_eq!(excerpt(&format!("e{}", "\u{301}".repeat(300))), "");
    for n in [0, 1, 50, 199, 200, 201, 1000] {
        let s = "é🇯🇵👩\u{200D}💻ß".repeat(n);
        let e = excerpt(&s);
        assert!(e.chars().count() <= 200 && s.starts_with(&e));
    }
}

// ----- robustness --------------------------------------------------------------------

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sample_file() -> String {
    file(&[
        user(T0, json!("<command-name>/review</command-name> ünïcödé 👩‍💻")),
        assistant(
            T0,
            "m1",
            "r1",
            tool_use(
                "t1",
                "Skill",
                json!({"skill": "a:b", "n": [1, {"x": null}]}),
            ),
        ),
        user(
            T0,
            result(
                "t1",
                json!([{"type": "text", "text": "The user doesn't want to proceed with this tool use"}]),
                true,
            ),
        ),
        sidechain(assistant(T0, "m1", "r2", text("replay"))),
    ])
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let sample = sample_file().into_bytes();
    for round in 0..3_000 {
        let mut bytes = sample.clone();
        // Mutate: flip, insert or delete a few bytes, sometimes pure noise.
        if round % 10 == 0 {
            bytes = (0..noise.below(4096)).map(|_| noise.next() as u8).collect();
        }
        for _ in 0..1 + noise.below(8) {
            let at = noise.below(bytes.len().max(1));
            match noise.below(3) {
                0 if !bytes.is_empty() => bytes[at] = noise.next() as u8,
                1 => bytes.insert(
                    at.min(bytes.len()),
                    b"{}[]\",:\\u\n\xff\xc3"[noise.below(12)],
                ),
                _ if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        let p = parse_bytes(&bytes);
        assert_eq!(p, parse_reader(&bytes[..]).expect("reader"));
        assert!(p.malformed_lines <= p.lines);
    }
    // Deep nesting, invalid UTF-8 and a NUL-filled line.
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200_000), "]".repeat(200_000));
    assert_eq!(parse(&deep).malformed_lines, 0);
    let p =
        parse_bytes(b"{\"type\":\"user\",\"message\":{\"content\":\"\xff\xfe\"}}\n\0\0\0\n\xc3");
    assert_eq!((p.lines, p.malformed_lines), (3, 3));
}

#[test]
fn the_scanner_accepts_exactly_what_serde_json_accepts() {
    // Differential check of the validator on mutated lines (leaving out the
    // documented differences: NaN/Infinity, lone surrogates, depth > 128).
    let mut noise = Noise(42);
    let lines: Vec<String> = sample_file().lines().map(str::to_owned).collect();
    let alphabet = b"{}[]\",:0123456789.eE+-tfnrul \\/abx";
    let mut checked = 0;
    for _ in 0..20_000 {
        let mut line = lines[noise.below(lines.len())].clone().into_bytes();
        for _ in 0..1 + noise.below(3) {
            let at = noise.below(line.len());
            let b = alphabet[noise.below(alphabet.len())];
            match noise.below(3) {
                0 => line[at] = b,
                1 => line.insert(at, b),
                _ => {
                    line.remove(at);
                }
            }
        }
        let Ok(s) = String::from_utf8(line) else {
            continue;
        };
        if s.contains("NaN") || s.contains("Infinity") || s.contains("\\u") {
            continue;
        }
        let serde_ok = serde_json::from_str::<serde_json::Value>(&s).is_ok();
        assert_eq!(is_valid_json(&s), serde_ok, "{s}");
        checked += 1;
    }
    assert!(checked > 10_000);
}
