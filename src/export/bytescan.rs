//! Which text cells need work (CSV quotes, JSON escapes), eight bytes at a
//! time: most cells need none, and a byte-by-byte scan of every cell was a
//! visible share of an export's time.

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

/// True when a CSV field holds `,`, `"`, CR or LF (it must be quoted).
#[inline]
pub(crate) fn csv_special(s: &[u8]) -> bool {
    any_word(
        s,
        |v| has_byte(v, b',') | has_byte(v, b'"') | has_byte(v, b'\r') | has_byte(v, b'\n') != 0,
        |b| matches!(b, b',' | b'"' | b'\r' | b'\n'),
    )
}

/// True when a JSON string needs escapes: a control byte, `"` or `\`.
#[inline]
pub(crate) fn json_special(s: &[u8]) -> bool {
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
        for len in 0..20 {
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
