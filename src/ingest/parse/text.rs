//! Text helpers: lenient JSON string decoding, result text, slash-command
//! tags, and grapheme-safe excerpts.

use std::borrow::Cow;

use memchr::memmem;

use super::json::{JStr, Malformed, Res, Scanner};

/// Excerpts are at most this many Unicode scalar values (SPEC §3).
pub const EXCERPT_MAX_CHARS: usize = 200;

/// How many scalars an excerpt source keeps before truncation: a few more
/// than the limit, so the cut can see the characters that follow it.
const EXCERPT_SOURCE_CHARS: usize = EXCERPT_MAX_CHARS + 8;

pub const REJECTION_MARK: &str = "The user doesn't want to proceed with this tool use";
pub const DENIAL_MARKS: [&str; 2] = ["but you haven't granted it yet", "has been denied"];

const ZWJ: char = '\u{200D}';

// ----- decoding -------------------------------------------------------------

/// Decodes a JSON string. Lone UTF-16 surrogate escapes become U+FFFD instead
/// of failing (JavaScript writes them for strings cut mid-pair).
pub fn decode<'a>(s: &JStr<'a>) -> Cow<'a, str> {
    if !s.escaped {
        return Cow::Borrowed(s.raw);
    }
    let mut out = String::with_capacity(s.raw.len());
    decode_with(s.raw, |part| {
        out.push_str(part);
        true
    });
    Cow::Owned(out)
}

/// Feeds the decoded text of a raw JSON string body to `push` in pieces;
/// stops early when `push` returns false. Returns whether all of it was
/// taken. Never panics, even on input that was not validated (a bad escape
/// ends the text).
pub fn decode_with(raw: &str, mut push: impl FnMut(&str) -> bool) -> bool {
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        if !push(&rest[..i]) {
            return false;
        }
        let Some((ch, used)) = unescape(&rest[i + 1..]) else {
            return true;
        };
        let mut buf = [0u8; 4];
        if !push(ch.encode_utf8(&mut buf)) {
            return false;
        }
        rest = rest.get(i + 1 + used..).unwrap_or("");
    }
    push(rest)
}

/// The character an escape stands for (text after the backslash) and how
/// many bytes of that text it used.
fn unescape(after: &str) -> Option<(char, usize)> {
    let ch = match after.as_bytes().first()? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(after),
        _ => return None,
    };
    Some((ch, 1))
}

/// `uXXXX`, or a surrogate pair `uD83D\uDE00`; lone surrogates → U+FFFD.
fn unicode_escape(after: &str) -> Option<(char, usize)> {
    let hi = hex4(after.get(1..5)?)?;
    if !(0xD800..0xDC00).contains(&hi) {
        return Some((char::from_u32(hi).unwrap_or('\u{FFFD}'), 5));
    }
    let low = after
        .get(5..7)
        .filter(|p| *p == "\\u")
        .and_then(|_| after.get(7..11))
        .and_then(hex4)
        .filter(|lo| (0xDC00..0xE000).contains(lo));
    match low {
        Some(lo) => {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            Some((char::from_u32(c).unwrap_or('\u{FFFD}'), 11))
        }
        None => Some(('\u{FFFD}', 5)),
    }
}

fn hex4(s: &str) -> Option<u32> {
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

// ----- result text ----------------------------------------------------------

/// Feeds a `tool_result`'s text (SPEC "result text": the content string, or
/// its text blocks joined with newlines) to `push`, which may stop early.
/// `raw` is the content value's JSON text, already validated.
pub fn result_text_with(raw: &str, mut push: impl FnMut(&str) -> bool) {
    let mut stack = Vec::new();
    let mut sc = Scanner::new(raw, &mut stack);
    match sc.next_kind() {
        Some(b'"') => {
            if let Ok(s) = sc.string() {
                decode_with(s.raw, push);
            }
        }
        Some(b'[') => {
            let mut first = true;
            // Stopping early ends the walk through an error; on validated
            // input no other error can happen, so the result is ignored.
            let _ = sc.array(|sc| {
                let Some(text) = text_block(sc)? else {
                    return Ok(());
                };
                let separated = std::mem::take(&mut first) || push("\n");
                if separated && decode_with(text.raw, &mut push) {
                    Ok(())
                } else {
                    Err(Malformed)
                }
            });
        }
        _ => {}
    }
}

/// The whole result text of a `tool_result` content value.
pub fn result_text(raw: &str) -> String {
    let mut out = String::new();
    result_text_with(raw, |p| {
        out.push_str(p);
        true
    });
    out
}

/// If the element at the cursor is a `{"type":"text"}` block, its text
/// (a missing or non-string `text` reads as empty, as `b.get("text", "")`).
fn text_block<'a>(sc: &mut Scanner<'a, '_>) -> Res<Option<JStr<'a>>> {
    let mut is_text = false;
    let mut text = None;
    sc.object_or_skip(|sc, key| {
        match &*key.decoded() {
            "type" => is_text = sc.opt_string()?.is_some_and(|t| t.is("text")),
            "text" => text = sc.opt_string()?,
            _ => sc.skip_value()?,
        }
        Ok(())
    })?;
    let empty = JStr {
        raw: "",
        escaped: false,
    };
    Ok(is_text.then(|| text.unwrap_or(empty)))
}

// ----- slash commands -------------------------------------------------------

const TAG_OPEN: &[u8] = b"<command-name>/";
const TAG_CLOSE: &str = "</command-name>";

/// The first `<command-name>/NAME</command-name>` of a text, NAME being
/// everything up to the next `<` (the oracle's regex
/// `<command-name>(/[^<]*)</command-name>`, searched left to right).
/// Returns NAME without its slash.
pub fn first_command_name(text: &str) -> Option<&str> {
    let finder = memmem::Finder::new(TAG_OPEN);
    let mut from = 0;
    while let Some(found) = finder.find(text.as_bytes().get(from..)?) {
        let name_start = from + found + TAG_OPEN.len();
        let after = text.get(name_start..)?;
        let name_len = after.find('<').unwrap_or(after.len());
        if after[name_len..].starts_with(TAG_CLOSE) {
            return Some(&after[..name_len]);
        }
        from += found + 1;
    }
    None
}

/// `first_command_name` over a JSON string, decoding only when an escape
/// could hide or alter the tag.
pub fn command_name_in(s: &JStr<'_>) -> Option<String> {
    if !s.escaped {
        return first_command_name(s.raw).map(str::to_owned);
    }
    let bytes = s.raw.as_bytes();
    let may_hold =
        memmem::find(bytes, b"command-name").is_some() || memmem::find(bytes, b"\\u").is_some();
    if !may_hold {
        return None;
    }
    first_command_name(&decode(s)).map(str::to_owned)
}

// ----- excerpts -------------------------------------------------------------

/// Collects the start of a text for an excerpt: skips leading whitespace and
/// keeps a bounded number of scalars, so a megabyte output costs nothing.
pub struct ExcerptBuf<'b> {
    out: &'b mut String,
    chars: usize,
}

impl<'b> ExcerptBuf<'b> {
    pub fn new(out: &'b mut String) -> Self {
        out.clear();
        ExcerptBuf { out, chars: 0 }
    }

    /// Appends a piece; false once enough text has been kept.
    pub fn push(&mut self, piece: &str) -> bool {
        let piece = if self.chars == 0 {
            piece.trim_start()
        } else {
            piece
        };
        let room = EXCERPT_SOURCE_CHARS - self.chars;
        match piece.char_indices().nth(room) {
            Some((cut, _)) => {
                self.out.push_str(&piece[..cut]);
                self.chars = EXCERPT_SOURCE_CHARS;
                false
            }
            None => {
                self.out.push_str(piece);
                self.chars += piece.chars().count();
                self.chars < EXCERPT_SOURCE_CHARS
            }
        }
    }
}

/// The excerpt of a text: leading and trailing whitespace trimmed, then at
/// most `EXCERPT_MAX_CHARS` scalars, cut only between grapheme clusters.
pub fn excerpt(text: &str) -> String {
    truncate_graphemes(text.trim(), EXCERPT_MAX_CHARS).to_owned()
}

/// The longest prefix of `s` with at most `max` scalar values that does not
/// end inside a grapheme cluster.
///
/// Approach (no Unicode-segmentation crate): cut at `max` scalars, then move
/// the cut back while it would separate a base from what extends it:
/// combining and spacing marks of the common scripts, variation selectors,
/// emoji skin-tone modifiers and tag characters (Grapheme_Cluster_Break
/// Extend/SpacingMark, from the table below); anything after a zero-width
/// joiner (keeps ZWJ emoji sequences whole); the second regional indicator
/// of a flag; Hangul jamo sequences; CR LF; and prepended concatenation
/// marks. If a single cluster is longer than `max`, the result is empty.
pub fn truncate_graphemes(s: &str, max: usize) -> &str {
    let Some((mut cut, _)) = s.char_indices().nth(max) else {
        return s;
    };
    while cut > 0 && joins_at(s, cut) {
        let prev_len = s[..cut].chars().next_back().map_or(1, char::len_utf8);
        cut -= prev_len;
    }
    &s[..cut]
}

/// Whether the characters on both sides of byte offset `cut` belong to one
/// grapheme cluster.
fn joins_at(s: &str, cut: usize) -> bool {
    let (before, after) = s.split_at(cut);
    let (Some(prev), Some(next)) = (before.chars().next_back(), after.chars().next()) else {
        return false;
    };
    if is_extend(next) || prev == ZWJ || is_prepend(prev) || (prev == '\r' && next == '\n') {
        return true;
    }
    if is_regional_indicator(prev) && is_regional_indicator(next) {
        // Flags pair up from the start of a run: join if `prev` opens a pair.
        let run = before
            .chars()
            .rev()
            .take_while(|&c| is_regional_indicator(c))
            .count();
        return run % 2 == 1;
    }
    hangul_joins(prev, next)
}

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Prepended concatenation marks (Arabic number signs and the like) attach
/// to what follows them.
fn is_prepend(c: char) -> bool {
    matches!(c as u32, 0x0600..=0x0605 | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x110BD | 0x110CD)
}

/// Hangul syllable composition from conjoining jamo (L, V, T) and
/// precomposed LV/LVT syllables (UAX #29 GB6–GB8).
fn hangul_joins(prev: char, next: char) -> bool {
    let kind = |c: char| match c as u32 {
        0x1100..=0x115F | 0xA960..=0xA97C => Some('L'),
        0x1160..=0x11A7 | 0xD7B0..=0xD7C6 => Some('V'),
        0x11A8..=0x11FF | 0xD7CB..=0xD7FB => Some('T'),
        // Precomposed: every 28th syllable from U+AC00 is LV, the rest LVT.
        n @ 0xAC00..=0xD7A3 => Some(if (n - 0xAC00) % 28 == 0 { 'V' } else { 'T' }),
        _ => None,
    };
    let precomposed = |c: char| (0xAC00..=0xD7A3).contains(&(c as u32));
    match (kind(prev), kind(next)) {
        (Some('L'), Some('L' | 'V')) => true,
        (Some('L'), Some('T')) => precomposed(next),
        (Some('V'), Some('V' | 'T')) => !precomposed(next),
        (Some('T'), Some('T')) => !precomposed(next),
        _ => false,
    }
}

/// Whether `c` extends the cluster before it.
fn is_extend(c: char) -> bool {
    let n = c as u32;
    if n < 0x0300 {
        return false;
    }
    EXTEND_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < n {
                std::cmp::Ordering::Less
            } else if lo > n {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Grapheme_Cluster_Break = Extend | SpacingMark | ZWJ for the scripts and
/// symbols found in transcripts (Latin, Cyrillic, Greek, Hebrew, Arabic,
/// Indic, Southeast Asian, CJK, emoji); sorted, non-overlapping, inclusive.
/// Rarer historic scripts are left out on purpose: an excerpt that splits one
/// of them is still valid UTF-8, just less pretty.
const EXTEND_RANGES: &[(u32, u32)] = &[
    (0x0300, 0x036F),
    (0x0483, 0x0489),
    (0x0591, 0x05BD),
    (0x05BF, 0x05BF),
    (0x05C1, 0x05C2),
    (0x05C4, 0x05C5),
    (0x05C7, 0x05C7),
    (0x0610, 0x061A),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E4),
    (0x06E7, 0x06E8),
    (0x06EA, 0x06ED),
    (0x0711, 0x0711),
    (0x0730, 0x074A),
    (0x07A6, 0x07B0),
    (0x07EB, 0x07F3),
    (0x07FD, 0x07FD),
    (0x0816, 0x0819),
    (0x081B, 0x0823),
    (0x0825, 0x0827),
    (0x0829, 0x082D),
    (0x0859, 0x085B),
    (0x0898, 0x089F),
    (0x08CA, 0x08E1),
    (0x08E3, 0x0903),
    (0x093A, 0x093C),
    (0x093E, 0x094F),
    (0x0951, 0x0957),
    (0x0962, 0x0963),
    (0x0981, 0x0983),
    (0x09BC, 0x09BC),
    (0x09BE, 0x09C4),
    (0x09C7, 0x09C8),
    (0x09CB, 0x09CD),
    (0x09D7, 0x09D7),
    (0x09E2, 0x09E3),
    (0x09FE, 0x09FE),
    (0x0A01, 0x0A03),
    (0x0A3C, 0x0A3C),
    (0x0A3E, 0x0A42),
    (0x0A47, 0x0A48),
    (0x0A4B, 0x0A4D),
    (0x0A51, 0x0A51),
    (0x0A70, 0x0A71),
    (0x0A75, 0x0A75),
    (0x0A81, 0x0A83),
    (0x0ABC, 0x0ABC),
    (0x0ABE, 0x0AC5),
    (0x0AC7, 0x0AC9),
    (0x0ACB, 0x0ACD),
    (0x0AE2, 0x0AE3),
    (0x0AFA, 0x0AFF),
    (0x0B01, 0x0B03),
    (0x0B3C, 0x0B3C),
    (0x0B3E, 0x0B44),
    (0x0B47, 0x0B48),
    (0x0B4B, 0x0B4D),
    (0x0B55, 0x0B57),
    (0x0B62, 0x0B63),
    (0x0B82, 0x0B82),
    (0x0BBE, 0x0BC2),
    (0x0BC6, 0x0BC8),
    (0x0BCA, 0x0BCD),
    (0x0BD7, 0x0BD7),
    (0x0C00, 0x0C04),
    (0x0C3C, 0x0C3C),
    (0x0C3E, 0x0C44),
    (0x0C46, 0x0C48),
    (0x0C4A, 0x0C4D),
    (0x0C55, 0x0C56),
    (0x0C62, 0x0C63),
    (0x0C81, 0x0C83),
    (0x0CBC, 0x0CBC),
    (0x0CBE, 0x0CC4),
    (0x0CC6, 0x0CC8),
    (0x0CCA, 0x0CCD),
    (0x0CD5, 0x0CD6),
    (0x0CE2, 0x0CE3),
    (0x0CF3, 0x0CF3),
    (0x0D00, 0x0D03),
    (0x0D3B, 0x0D3C),
    (0x0D3E, 0x0D44),
    (0x0D46, 0x0D48),
    (0x0D4A, 0x0D4D),
    (0x0D57, 0x0D57),
    (0x0D62, 0x0D63),
    (0x0D81, 0x0D83),
    (0x0DCA, 0x0DCA),
    (0x0DCF, 0x0DD4),
    (0x0DD6, 0x0DD6),
    (0x0DD8, 0x0DDF),
    (0x0DF2, 0x0DF3),
    (0x0E31, 0x0E31),
    (0x0E33, 0x0E3A),
    (0x0E47, 0x0E4E),
    (0x0EB1, 0x0EB1),
    (0x0EB3, 0x0EBC),
    (0x0EC8, 0x0ECE),
    (0x0F18, 0x0F19),
    (0x0F35, 0x0F35),
    (0x0F37, 0x0F37),
    (0x0F39, 0x0F39),
    (0x0F3E, 0x0F3F),
    (0x0F71, 0x0F84),
    (0x0F86, 0x0F87),
    (0x0F8D, 0x0FBC),
    (0x0FC6, 0x0FC6),
    (0x102B, 0x103E),
    (0x1056, 0x1059),
    (0x105E, 0x1060),
    (0x1062, 0x1064),
    (0x1067, 0x106D),
    (0x1071, 0x1074),
    (0x1082, 0x108D),
    (0x108F, 0x108F),
    (0x109A, 0x109D),
    (0x135D, 0x135F),
    (0x1712, 0x1715),
    (0x1732, 0x1734),
    (0x1752, 0x1753),
    (0x1772, 0x1773),
    (0x17B4, 0x17D3),
    (0x17DD, 0x17DD),
    (0x180B, 0x180D),
    (0x180F, 0x180F),
    (0x1885, 0x1886),
    (0x18A9, 0x18A9),
    (0x1920, 0x193B),
    (0x1A17, 0x1A1B),
    (0x1A55, 0x1A7F),
    (0x1AB0, 0x1AFF),
    (0x1B00, 0x1B04),
    (0x1B34, 0x1B44),
    (0x1B6B, 0x1B73),
    (0x1B80, 0x1B82),
    (0x1BA1, 0x1BAD),
    (0x1BE6, 0x1BF3),
    (0x1C24, 0x1C37),
    (0x1CD0, 0x1CD2),
    (0x1CD4, 0x1CE8),
    (0x1CED, 0x1CED),
    (0x1CF4, 0x1CF4),
    (0x1CF7, 0x1CF9),
    (0x1DC0, 0x1DFF),
    (0x200C, 0x200D),
    (0x20D0, 0x20F0),
    (0x2CEF, 0x2CF1),
    (0x2D7F, 0x2D7F),
    (0x2DE0, 0x2DFF),
    (0x302A, 0x302F),
    (0x3099, 0x309A),
    (0xA66F, 0xA672),
    (0xA674, 0xA67D),
    (0xA69E, 0xA69F),
    (0xA6F0, 0xA6F1),
    (0xA802, 0xA802),
    (0xA806, 0xA806),
    (0xA80B, 0xA80B),
    (0xA823, 0xA827),
    (0xA82C, 0xA82C),
    (0xA880, 0xA881),
    (0xA8B4, 0xA8C5),
    (0xA8E0, 0xA8F1),
    (0xA8FF, 0xA8FF),
    (0xA926, 0xA92D),
    (0xA947, 0xA953),
    (0xA980, 0xA983),
    (0xA9B3, 0xA9C0),
    (0xA9E5, 0xA9E5),
    (0xAA29, 0xAA36),
    (0xAA43, 0xAA43),
    (0xAA4C, 0xAA4D),
    (0xAA7B, 0xAA7D),
    (0xAAB0, 0xAAB0),
    (0xAAB2, 0xAAB4),
    (0xAAB7, 0xAAB8),
    (0xAABE, 0xAABF),
    (0xAAC1, 0xAAC1),
    (0xAAEB, 0xAAEF),
    (0xAAF5, 0xAAF6),
    (0xABE3, 0xABEA),
    (0xABEC, 0xABED),
    (0xFB1E, 0xFB1E),
    (0xFE00, 0xFE0F),
    (0xFE20, 0xFE2F),
    (0xFF9E, 0xFF9F),
    (0x101FD, 0x101FD),
    (0x102E0, 0x102E0),
    (0x10376, 0x1037A),
    (0x10A01, 0x10A0F),
    (0x10A38, 0x10A3F),
    (0x10AE5, 0x10AE6),
    (0x10D24, 0x10D27),
    (0x10EAB, 0x10EAC),
    (0x10F46, 0x10F50),
    (0x11000, 0x11002),
    (0x11038, 0x11046),
    (0x1107F, 0x11082),
    (0x110B0, 0x110BA),
    (0x11100, 0x11102),
    (0x11127, 0x11134),
    (0x1D165, 0x1D169),
    (0x1D16D, 0x1D172),
    (0x1D17B, 0x1D182),
    (0x1D185, 0x1D18B),
    (0x1D1AA, 0x1D1AD),
    (0x1E000, 0x1E02A),
    (0x1E8D0, 0x1E8D6),
    (0x1E944, 0x1E94A),
    (0x1F3FB, 0x1F3FF),
    (0xE0020, 0xE007F),
    (0xE0100, 0xE01EF),
];
