//! One line's view: the handful of fields the definitions read, borrowed
//! from the line, captured in the same pass that validates it.
//!
//! `type` may come after `message` (it does in Claude Code's assistant
//! lines), so `message` is read the same way whatever the line's type and
//! interpreted afterwards. Duplicate keys: the last one wins, as in Python.
//! A field of an unexpected JSON type reads as absent.

use super::json::{JStr, Res, Scanner};

#[derive(Default)]
pub(crate) struct LineView<'a> {
    pub kind: Option<JStr<'a>>,
    pub timestamp: Option<JStr<'a>>,
    pub session_id: Option<JStr<'a>>,
    pub is_sidechain: bool,
    pub is_meta: bool,
    pub cwd: Option<JStr<'a>>,
    pub uuid: Option<JStr<'a>>,
    pub parent_uuid: Option<JStr<'a>>,
    pub request_id: Option<JStr<'a>>,
    /// `Some` only when `message` is an object.
    pub message: Option<Message<'a>>,
}

#[derive(Default)]
pub(crate) struct Message<'a> {
    pub id: Option<JStr<'a>>,
    pub model: Option<JStr<'a>>,
    /// `Some` only when `usage` is an object.
    pub usage: Option<Usage>,
    pub content: Content<'a>,
}

#[derive(Default, Clone, Copy)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
    pub cache_5m: Option<u64>,
    pub cache_1h: Option<u64>,
}

#[derive(Default)]
pub(crate) enum Content<'a> {
    /// Missing, or neither a string nor an array.
    #[default]
    Absent,
    Text(JStr<'a>),
    /// The object elements of the array (other elements are not blocks).
    Blocks(Vec<Block<'a>>),
}

#[derive(Default)]
pub(crate) struct Block<'a> {
    pub kind: Option<JStr<'a>>,
    /// `tool_use.id`.
    pub id: Option<JStr<'a>>,
    pub name: Option<JStr<'a>>,
    /// `tool_use.input` as JSON text.
    pub input: Option<&'a str>,
    pub tool_use_id: Option<JStr<'a>>,
    /// `is_error: true` exactly.
    pub is_error: bool,
    /// `tool_result.content` as JSON text (decoded only when needed).
    pub content: Option<&'a str>,
    pub text: Option<JStr<'a>>,
}

impl Block<'_> {
    pub fn is(&self, kind: &str) -> bool {
        self.kind.is_some_and(|k| k.is(kind))
    }
}

/// Parses one line, which must be a JSON object.
pub(crate) fn parse_line<'a>(src: &'a str, stack: &mut Vec<bool>) -> Res<LineView<'a>> {
    let mut sc = Scanner::new(src, stack);
    let mut view = LineView::default();
    if sc.next_kind() != Some(b'{') {
        return Err(super::json::Malformed);
    }
    sc.object(|sc, key| {
        match &*key.decoded() {
            "type" => view.kind = sc.opt_string()?,
            "timestamp" => view.timestamp = sc.opt_string()?,
            "sessionId" => view.session_id = sc.opt_string()?,
            "isSidechain" => view.is_sidechain = sc.is_true()?,
            "isMeta" => view.is_meta = sc.is_true()?,
            "cwd" => view.cwd = sc.opt_string()?,
            "uuid" => view.uuid = sc.opt_string()?,
            "parentUuid" => view.parent_uuid = sc.opt_string()?,
            "requestId" => view.request_id = sc.opt_string()?,
            "message" => view.message = message(sc)?,
            _ => sc.skip_value()?,
        }
        Ok(())
    })?;
    sc.finish()?;
    Ok(view)
}

fn message<'a>(sc: &mut Scanner<'a, '_>) -> Res<Option<Message<'a>>> {
    let mut m = Message::default();
    let is_object = sc.object_or_skip(|sc, key| {
        match &*key.decoded() {
            "id" => m.id = sc.opt_string()?,
            "model" => m.model = sc.opt_string()?,
            "usage" => m.usage = usage(sc)?,
            "content" => m.content = content(sc)?,
            _ => sc.skip_value()?,
        }
        Ok(())
    })?;
    Ok(is_object.then_some(m))
}

fn usage(sc: &mut Scanner<'_, '_>) -> Res<Option<Usage>> {
    let mut u = Usage::default();
    let is_object = sc.object_or_skip(|sc, key| {
        // `usage.get(k) or 0`: absent, null or non-numeric counts as 0.
        match &*key.decoded() {
            "input_tokens" => u.input = sc.opt_count()?.unwrap_or(0),
            "output_tokens" => u.output = sc.opt_count()?.unwrap_or(0),
            "cache_creation_input_tokens" => u.cache_creation = sc.opt_count()?.unwrap_or(0),
            "cache_read_input_tokens" => u.cache_read = sc.opt_count()?.unwrap_or(0),
            "cache_creation" => cache_split(sc, &mut u)?,
            _ => sc.skip_value()?,
        }
        Ok(())
    })?;
    Ok(is_object.then_some(u))
}

fn cache_split(sc: &mut Scanner<'_, '_>, u: &mut Usage) -> Res<()> {
    sc.object_or_skip(|sc, key| {
        match &*key.decoded() {
            "ephemeral_5m_input_tokens" => u.cache_5m = sc.opt_count()?,
            "ephemeral_1h_input_tokens" => u.cache_1h = sc.opt_count()?,
            _ => sc.skip_value()?,
        }
        Ok(())
    })
    .map(|_| ())
}

fn content<'a>(sc: &mut Scanner<'a, '_>) -> Res<Content<'a>> {
    match sc.next_kind() {
        Some(b'"') => Ok(Content::Text(sc.string()?)),
        Some(b'[') => {
            let mut blocks = Vec::new();
            sc.array(|sc| {
                if let Some(b) = block(sc)? {
                    blocks.push(b);
                }
                Ok(())
            })?;
            Ok(Content::Blocks(blocks))
        }
        _ => sc.skip_value().map(|_| Content::Absent),
    }
}

fn block<'a>(sc: &mut Scanner<'a, '_>) -> Res<Option<Block<'a>>> {
    let mut b = Block::default();
    let is_object = sc.object_or_skip(|sc, key| {
        match &*key.decoded() {
            "type" => b.kind = sc.opt_string()?,
            "id" => b.id = sc.opt_string()?,
            "name" => b.name = sc.opt_string()?,
            "input" => b.input = Some(sc.raw_value()?),
            "tool_use_id" => b.tool_use_id = sc.opt_string()?,
            "is_error" => b.is_error = sc.is_true()?,
            "content" => b.content = Some(sc.raw_value()?),
            "text" => b.text = sc.opt_string()?,
            _ => sc.skip_value()?,
        }
        Ok(())
    })?;
    Ok(is_object.then_some(b))
}

/// String members of a `tool_use` input the definitions read.
#[derive(Default)]
pub(crate) struct InputFields<'a> {
    pub skill: Option<JStr<'a>>,
    pub name: Option<JStr<'a>>,
    pub subagent_type: Option<JStr<'a>>,
}

/// Reads `skill`, `name` and `subagent_type` from an input's JSON text.
pub(crate) fn input_fields(raw: &str) -> InputFields<'_> {
    let mut stack = Vec::new();
    let mut sc = Scanner::new(raw, &mut stack);
    let mut f = InputFields::default();
    // The text was validated with its line; an error cannot happen, and
    // would only leave the fields absent.
    let _ = sc.object_or_skip(|sc, key| {
        match &*key.decoded() {
            "skill" => f.skill = sc.opt_string()?,
            "name" => f.name = sc.opt_string()?,
            "subagent_type" => f.subagent_type = sc.opt_string()?,
            _ => sc.skip_value()?,
        }
        Ok(())
    });
    f
}
