//! Which text cells need work (CSV quotes, JSON escapes), sixteen bytes at
//! a time with SSE2 on x86-64 and eight at a time otherwise (and for the
//! tail): most cells need none, and a byte-by-byte scan of every cell was a
//! visible share of an export's time (the eight-byte scan still ~8 % of a
//! CSV export's CPU).

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero when a byte of `v` equals `b`.
#[inline]
fn has_byte(v: u64, b: u8) -> u64 {
    let x = v ^ (LO * u64::from(b));
    x.wrapping_sub(LO) & !x & HI
}

/// Non-zero when a byte of `v` is below `n` (`n` ≤ 128).
#[inline]
fn has_below(v: u64, n: u8) -> u64 {
    v.wrapping_sub(LO * u64::from(n)) & !v & HI
}

#[inline]
fn any_word(s: &[u8], word: impl Fn(u64) -> bool, byte: impl Fn(u8) -> bool) -> bool {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        if word(v) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| byte(b))
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// Scans `s` sixteen bytes at a time (the last block overlapping the one
    /// before); the bytes left when `s` is shorter than sixteen are for the
    /// caller. `block` gives a non-zero mask when a byte of the block matches.
    #[inline]
    fn blocks(s: &[u8], block: impl Fn(__m128i) -> i32) -> (bool, usize) {
        if s.len() < 16 {
            return (false, 0);
        }
        let p = s.as_ptr();
        let mut i = 0;
        while i + 16 <= s.len() {
            // SAFETY: SSE2 is part of x86-64; the 16 bytes at `i` are in `s`.
            if block(unsafe { _mm_loadu_si128(p.add(i).cast()) }) != 0 {
                return (true, s.len());
            }
            i += 16;
        }
        if i < s.len() {
            // SAFETY: as above; `s.len() - 16` ≥ 0.
            let last = unsafe { _mm_loadu_si128(p.add(s.len() - 16).cast()) };
            return (block(last) != 0, s.len());
        }
        (false, s.len())
    }

    /// (Whether a block of `s` holds `,`, `"`, CR or LF; the bytes scanned.)
    #[inline]
    pub(super) fn csv(s: &[u8]) -> (bool, usize) {
        // SAFETY (all intrinsics here): SSE2 is part of x86-64.
        let (comma, quote, cr, lf) = unsafe {
            (
                _mm_set1_epi8(b',' as i8),
                _mm_set1_epi8(b'"' as i8),
                _mm_set1_epi8(b'\r' as i8),
                _mm_set1_epi8(b'\n' as i8),
            )
        };
        blocks(s, |v| unsafe {
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
            ))
        })
    }

    /// (Whether a block of `s` holds a control byte, `"` or `\`; the bytes
    /// scanned.)
    #[inline]
    pub(super) fn json(s: &[u8]) -> (bool, usize) {
        // SAFETY (all intrinsics here): SSE2 is part of x86-64.
        let (ctl, quote, backslash) = unsafe {
            (
                _mm_set1_epi8(0x1f),
                _mm_set1_epi8(b'"' as i8),
                _mm_set1_epi8(b'\\' as i8),
            )
        };
        blocks(s, |v| unsafe {
            // max(v, 0x1f) == 0x1f exactly when v ≤ 0x1f (unsigned).
            let below = _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl);
            _mm_movemask_epi8(_mm_or_si128(
                below,
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            ))
        })
    }
}

/// True when a CSV field holds `,`, `"`, CR or LF (it must be quoted).
#[inline]
pub(crate) fn csv_special(s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    let s = match sse2::csv(s) {
        (found, scanned) if scanned > 0 => return found,
        _ => s,
    };
    any_word(
        s,
        |v| has_byte(v, b',') | has_byte(v, b'"') | has_byte(v, b'\r') | has_byte(v, b'\n') != 0,
        |b| matches!(b, b',' | b'"' | b'\r' | b'\n'),
    )
}

/// True when a JSON string needs escapes: a control byte, `"` or `\`.
#[inline]
pub(crate) fn json_special(s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    let s = match sse2::json(s) {
        (found, scanned) if scanned > 0 => return found,
        _ => s,
    };
    any_word(
        s,
        |v| has_below(v, 0x20) | has_byte(v, b'"') | has_byte(v, b'\\') != 0,
        |b| b < 0x20 || b == b'"' || b == b'\\',
    )
}

#[cfg(test)]
mod tests {
    use super::{csv_special, json_special};

    #[test]
    fn every_byte_at_every_position_is_classified_as_a_plain_scan_would() {
        for len in 0..40 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[pos] = b;
                    assert_eq!(
                        csv_special(&s),
                        matches!(b, b',' | b'"' | b'\r' | b'\n'),
                        "csv {b} at {pos} of {len}"
                    );
                    assert_eq!(
                        json_special(&s),
                        b < 0x20 || b == b'"' || b == b'\\',
                        "json {b} at {pos} of {len}"
                    );
                }
            }
        }
        assert!(!csv_special(b""));
        assert!(!json_special("ünï ✓ \u{7f}".as_bytes()));
        // Multi-byte UTF-8 (bytes ≥ 0x80) next to a special byte.
        assert!(json_special("ü\"".as_bytes()));
        assert!(csv_special("ééééééé,".as_bytes()));
    }
}
