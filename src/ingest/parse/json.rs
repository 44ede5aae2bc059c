//! A validating, zero-copy JSON scanner for one transcript line.
//!
//! Why not `serde_json` with derived structs: a transcript line is valid JSON
//! far more often than it has the shape a struct expects. A derived struct
//! rejects the whole line on a duplicate key, on a field of an unexpected
//! type (`"timestamp": 0`) or on a lone UTF-16 surrogate escape (which
//! JavaScript's `JSON.stringify` writes for broken strings), and each of those
//! would turn a valid object into a "malformed" line. Here every value is
//! validated exactly once, in one pass, while the few fields a definition
//! needs are captured as borrowed slices; everything else (tool outputs,
//! base64 images, file snapshots) is only scanned, never copied or unescaped.
//!
//! Accepted grammar: RFC 8259 plus `NaN`, `Infinity` and `-Infinity`, which
//! Python's `json` module (the oracle's parser) also accepts. Nesting depth is
//! unbounded (containers that are skipped use a heap bit stack, not recursion).

/// The line is not valid JSON (or not the value expected at top level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

pub(crate) type Res<T> = Result<T, Malformed>;

/// A JSON string as it appears in the line, without its quotes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JStr<'a> {
    /// The bytes between the quotes, escapes not processed.
    pub raw: &'a str,
    /// Whether `raw` holds at least one backslash escape.
    pub escaped: bool,
}

impl<'a> JStr<'a> {
    /// Whether the decoded string equals `s`, without allocating when the
    /// string has no escapes (the common case for keys and short values).
    pub fn is(&self, s: &str) -> bool {
        if self.escaped {
            super::text::decode(self) == s
        } else {
            self.raw == s
        }
    }

    /// The decoded string, borrowed when there is nothing to unescape.
    pub fn decoded(&self) -> std::borrow::Cow<'a, str> {
        super::text::decode(self)
    }

    /// The decoded string as an owned `String`.
    pub fn owned(&self) -> String {
        self.decoded().into_owned()
    }
}

/// Cursor over one line. `stack` is a reusable buffer for skipping nested
/// containers without recursion (so hostile nesting cannot overflow the stack).
pub(crate) struct Scanner<'a, 's> {
    src: &'a str,
    pos: usize,
    stack: &'s mut Vec<bool>,
}

impl<'a, 's> Scanner<'a, 's> {
    pub fn new(src: &'a str, stack: &'s mut Vec<bool>) -> Self {
        stack.clear();
        Scanner { src, pos: 0, stack }
    }

    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Skips JSON whitespace (space, tab, newline, carriage return).
    pub fn skip_ws(&mut self) {
        let bytes = self.bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Res<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// After the top-level value only whitespace may follow.
    pub fn finish(&mut self) -> Res<()> {
        self.skip_ws();
        if self.pos == self.src.len() {
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// Slice of the source; `Malformed` (never a panic) on a bad range.
    fn slice(&self, from: usize, to: usize) -> Res<&'a str> {
        self.src.get(from..to).ok_or(Malformed)
    }

    /// What the next value is, after whitespace.
    pub fn next_kind(&mut self) -> Option<u8> {
        self.skip_ws();
        self.peek()
    }

    // ----- strings --------------------------------------------------------

    /// Reads a string; the cursor must be on its opening quote.
    pub fn string(&mut self) -> Res<JStr<'a>> {
        self.expect(b'"')?;
        let start = self.pos;
        let escaped = self.string_body()?;
        let raw = self.slice(start, self.pos - 1)?;
        Ok(JStr { raw, escaped })
    }

    /// Scans to just past the closing quote, validating escapes and
    /// rejecting raw control characters (as Python's strict mode does).
    fn string_body(&mut self) -> Res<bool> {
        let bytes = self.bytes();
        let mut escaped = false;
        loop {
            let rest = bytes.get(self.pos..).ok_or(Malformed)?;
            let i = find_special(rest).ok_or(Malformed)?;
            self.pos += i + 1;
            match rest[i] {
                b'"' => return Ok(escaped),
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// Validates the escape after a backslash (the cursor is just past it).
    fn escape(&mut self) -> Res<()> {
        // Bit set of the one-character escapes `"\/bfnrt` (all below 128):
        // a bit test instead of a jump table, this runs once per escape.
        const SIMPLE: u128 = 1 << b'"'
            | 1 << b'\\'
            | 1 << b'/'
            | 1 << b'b'
            | 1 << b'f'
            | 1 << b'n'
            | 1 << b'r'
            | 1 << b't';
        let c = self.peek().ok_or(Malformed)?;
        if c < 128 && SIMPLE & (1u128 << c) != 0 {
            self.pos += 1;
            return Ok(());
        }
        if c != b'u' {
            return Err(Malformed);
        }
        let hex = self
            .bytes()
            .get(self.pos + 1..self.pos + 5)
            .ok_or(Malformed)?;
        if hex.iter().all(u8::is_ascii_hexdigit) {
            self.pos += 5;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    // ----- scalars ---------------------------------------------------------

    /// Reads a number and returns its text.
    fn number(&mut self) -> Res<&'a str> {
        let start = self.pos;
        let bytes = self.bytes();
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if bytes.get(self.pos..self.pos + 8) == Some(b"Infinity") {
                self.pos += 8;
                return self.slice(start, self.pos);
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Malformed),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        self.slice(start, self.pos)
    }

    fn digits(&mut self) {
        let bytes = self.bytes();
        while bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Res<()> {
        let start = self.pos;
        self.digits();
        if self.pos > start {
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn literal(&mut self, word: &[u8]) -> Res<()> {
        if self.bytes().get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// Skips one scalar (string, number, literal); `Ok(false)` if the next
    /// value is a container instead.
    fn skip_scalar(&mut self) -> Res<bool> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| true),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| true),
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| true),
            Some(b'n') => self.literal(b"null").map(|_| true),
            Some(b'N') => self.literal(b"NaN").map(|_| true),
            Some(b'I') => self.literal(b"Infinity").map(|_| true),
            Some(b'{' | b'[') => Ok(false),
            _ => Err(Malformed),
        }
    }

    // ----- skipping and capturing whole values ----------------------------

    /// Validates and skips the next value, however deeply nested.
    pub fn skip_value(&mut self) -> Res<()> {
        self.skip_ws();
        if self.skip_scalar()? {
            return Ok(());
        }
        // The bit stack is only used here and is empty between calls.
        self.stack.clear();
        self.open_container()?;
        while !self.stack.is_empty() {
            self.container_step()?;
        }
        Ok(())
    }

    /// Consumes `{` or `[` and pushes it (true = object) on the bit stack.
    fn open_container(&mut self) -> Res<()> {
        let is_object = self.peek() == Some(b'{');
        self.pos += 1;
        self.stack.push(is_object);
        self.skip_ws();
        let close = if is_object { b'}' } else { b']' };
        if self.peek() == Some(close) {
            self.pos += 1;
            self.stack.pop();
            return self.after_member();
        }
        self.member_head(is_object)
    }

    /// Before a member's value: an object member starts with `"key":`.
    fn member_head(&mut self, is_object: bool) -> Res<()> {
        if is_object {
            self.skip_ws();
            self.string()?;
            self.skip_ws();
            self.expect(b':')?;
        }
        self.skip_ws();
        Ok(())
    }

    /// One member value of the innermost open container, then its separator.
    fn container_step(&mut self) -> Res<()> {
        if !self.skip_scalar()? {
            return self.open_container();
        }
        self.after_member()
    }

    /// After a value inside containers: `,` then the next member, or the
    /// closing bracket(s) of the containers that end here.
    fn after_member(&mut self) -> Res<()> {
        loop {
            let Some(&is_object) = self.stack.last() else {
                return Ok(());
            };
            self.skip_ws();
            let close = if is_object { b'}' } else { b']' };
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    return self.member_head(is_object);
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    self.stack.pop();
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// Validates the next value and returns its exact text.
    pub fn raw_value(&mut self) -> Res<&'a str> {
        self.skip_ws();
        let start = self.pos;
        self.skip_value()?;
        self.slice(start, self.pos)
    }

    /// The next value if it is a string, else skips it.
    pub fn opt_string(&mut self) -> Res<Option<JStr<'a>>> {
        if self.next_kind() == Some(b'"') {
            self.string().map(Some)
        } else {
            self.skip_value().map(|_| None)
        }
    }

    /// Whether the next value is the literal `true` (anything else is skipped).
    pub fn is_true(&mut self) -> Res<bool> {
        if self.next_kind() == Some(b't') {
            self.literal(b"true").map(|_| true)
        } else {
            self.skip_value().map(|_| false)
        }
    }

    /// The next value as a token count: a non-negative integer, or a finite
    /// non-negative float truncated; anything else counts as absent.
    pub fn opt_count(&mut self) -> Res<Option<u64>> {
        match self.next_kind() {
            Some(b'-' | b'0'..=b'9') => Ok(parse_count(self.number()?)),
            _ => self.skip_value().map(|_| None),
        }
    }

    // ----- walking containers whose members we want -----------------------

    /// Walks an object, calling `member(self, key)` with the cursor on each
    /// value; `member` must consume the value. The cursor must be on `{`.
    pub fn object(&mut self, mut member: impl FnMut(&mut Self, JStr<'a>) -> Res<()>) -> Res<()> {
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            member(self, key)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// Walks an array, calling `element(self)` with the cursor on each
    /// element; `element` must consume it. The cursor must be on `[`.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Res<()>) -> Res<()> {
        self.expect(b'[')?;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            element(self)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// `object` if the next value is an object (returns true), else skips it.
    pub fn object_or_skip(
        &mut self,
        member: impl FnMut(&mut Self, JStr<'a>) -> Res<()>,
    ) -> Res<bool> {
        if self.next_kind() == Some(b'{') {
            self.object(member).map(|_| true)
        } else {
            self.skip_value().map(|_| false)
        }
    }
}

/// A byte that ends a run of plain string content: `"`, `\`, or a raw
/// control character. Written without branches so that it vectorises.
#[inline(always)]
fn is_special(b: u8) -> bool {
    (b == b'"') | (b == b'\\') | (b < 0x20)
}

/// Offset of the first special byte.
///
/// String bodies are the bulk of every line (tool outputs, file contents)
/// and hold a quote or an escape every ~20 bytes, so what matters is a low
/// cost per special byte as much as speed on long runs. On x86-64, 16 bytes
/// are tested at once with SSE2 (part of the x86-64 baseline, so there is no
/// feature detection): a byte is flagged when it equals `"` or `\`, or when
/// `max(b, 0x1f) == 0x1f` (unsigned `b < 0x20`); the lowest flag is the
/// answer. The tail shorter than 16 bytes, and other targets, use the SWAR
/// word test of `find_special_swar`.
#[cfg(target_arch = "x86_64")]
fn find_special(bytes: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut offset = 0;
    // SAFETY: SSE2 is always present on x86-64; every load reads the 16
    // bytes at `offset`, and the loop only runs while `offset + 16 <= len`.
    unsafe {
        let quotes = _mm_set1_epi8(b'"' as i8);
        let backslashes = _mm_set1_epi8(b'\\' as i8);
        let controls = _mm_set1_epi8(0x1f);
        while offset + 16 <= bytes.len() {
            let x = _mm_loadu_si128(bytes.as_ptr().add(offset) as *const __m128i);
            let flags = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(x, quotes), _mm_cmpeq_epi8(x, backslashes)),
                _mm_cmpeq_epi8(_mm_max_epu8(x, controls), controls),
            );
            let mask = _mm_movemask_epi8(flags) as u32;
            if mask != 0 {
                return Some(offset + mask.trailing_zeros() as usize);
            }
            offset += 16;
        }
    }
    find_special_swar(bytes.get(offset..)?).map(|i| offset + i)
}

#[cfg(not(target_arch = "x86_64"))]
fn find_special(bytes: &[u8]) -> Option<usize> {
    find_special_swar(bytes)
}

/// Offset of the first special byte, one 8-byte word at a time (SWAR, no
/// `unsafe`, no per-call setup): a byte equal to `"` or `\` becomes zero
/// after the XOR, and `(v - 0x01…) & !v & 0x80…` flags zero bytes,
/// `(x - 0x20…) & !x & 0x80…` bytes below 0x20. Borrows can only flag bytes
/// *above* a true match, so the lowest flag is exact.
fn find_special_swar(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const SPACES: u64 = ONES * 0x20;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let (q, b) = (x ^ QUOTES, x ^ BACKSLASHES);
        let flags = (q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
            | (x.wrapping_sub(SPACES) & !x);
        let flags = flags & HIGH;
        if flags != 0 {
            return Some(offset + (flags.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    bytes
        .get(offset..)?
        .iter()
        .position(|&b| is_special(b))
        .map(|i| offset + i)
}

/// Token counts: integers as written; floats truncated; negatives, NaN and
/// infinities count as absent.
fn parse_count(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f: f64 = text.parse().ok()?;
    // `as` saturates for floats above u64::MAX, which is what we want here.
    (f.is_finite() && f >= 0.0).then_some(f as u64)
}

/// Validates a whole string as one JSON value (used by tests and by callers
/// that only need a yes/no).
#[cfg(test)]
pub(crate) fn is_valid_json(src: &str) -> bool {
    let mut stack = Vec::new();
    let mut sc = Scanner::new(src, &mut stack);
    sc.skip_value().and_then(|_| sc.finish()).is_ok()
}

#[cfg(test)]
mod find_special_tests {
    use super::{find_special, find_special_swar, is_special};

    /// The vector test and the word test agree with the byte test at every
    /// position, length and byte value.
    #[test]
    fn matches_the_byte_test() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..48 {
            for special_at in 0..=len {
                for b in 0..=255u8 {
                    let mut bytes: Vec<u8> =
                        (0..len).map(|_| 0x20 + (next() % 0x60) as u8).collect();
                    for x in bytes.iter_mut() {
                        if is_special(*x) {
                            *x = b'a';
                        }
                    }
                    if special_at < len {
                        bytes[special_at] = b;
                    }
                    let want = bytes.iter().position(|&x| is_special(x));
                    assert_eq!(find_special(&bytes), want, "{bytes:?}");
                    assert_eq!(find_special_swar(&bytes), want, "{bytes:?}");
                }
            }
        }
    }
}
