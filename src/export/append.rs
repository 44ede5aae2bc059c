//! Short byte strings appended without a call to `memcpy`. A text export
//! appends ~40 pieces a row (keys, ids, names, separators), most under 64
//! bytes; `extend_from_slice` made each a call into libc's `memmove`, which
//! then picked a path by length — ~6 % of an NDJSON export's CPU in `perf`.
//! Here a piece of up to 64 bytes is two (overlapping) loads and stores of
//! the widest size that fits, the way `memcpy` does it inside, but inlined.

use std::ptr::{read_unaligned, write_unaligned};

/// Appends `s` to `buf`.
#[inline(always)]
pub(crate) fn append(buf: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n > 64 {
        buf.extend_from_slice(s);
        return;
    }
    buf.reserve(n);
    let len = buf.len();
    // SAFETY: `reserve` made room for `n` more bytes after `len`; every load
    // below reads inside `s` and every store writes inside that room (each
    // pair covers `[0, n)` from both ends, overlapping in the middle).
    unsafe {
        copy_short(s.as_ptr(), buf.as_mut_ptr().add(len), n);
        buf.set_len(len + n);
    }
}

/// Copies `n` ≤ 64 bytes.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes, not overlapping.
#[inline(always)]
unsafe fn copy_short(src: *const u8, dst: *mut u8, n: usize) {
    unsafe {
        if n >= 32 {
            let (a, b) = (
                read_unaligned(src.cast::<[u128; 2]>()),
                read_unaligned(src.add(n - 32).cast::<[u128; 2]>()),
            );
            write_unaligned(dst.cast::<[u128; 2]>(), a);
            write_unaligned(dst.add(n - 32).cast::<[u128; 2]>(), b);
        } else if n >= 16 {
            let (a, b) = (
                read_unaligned(src.cast::<u128>()),
                read_unaligned(src.add(n - 16).cast::<u128>()),
            );
            write_unaligned(dst.cast::<u128>(), a);
            write_unaligned(dst.add(n - 16).cast::<u128>(), b);
        } else if n >= 8 {
            let (a, b) = (
                read_unaligned(src.cast::<u64>()),
                read_unaligned(src.add(n - 8).cast::<u64>()),
            );
            write_unaligned(dst.cast::<u64>(), a);
            write_unaligned(dst.add(n - 8).cast::<u64>(), b);
        } else if n >= 4 {
            let (a, b) = (
                read_unaligned(src.cast::<u32>()),
                read_unaligned(src.add(n - 4).cast::<u32>()),
            );
            write_unaligned(dst.cast::<u32>(), a);
            write_unaligned(dst.add(n - 4).cast::<u32>(), b);
        } else if n > 0 {
            // 1 to 3 bytes: first, middle, last.
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_length_lands_whole_after_what_was_there() {
        let source: Vec<u8> = (0..200u8)
            .map(|b| b.wrapping_mul(37).wrapping_add(1))
            .collect();
        for n in 0..=130 {
            for start in [0usize, 1, 7, 13] {
                let s = &source[start..start + n];
                let mut buf = b"head".to_vec();
                super::append(&mut buf, s);
                assert_eq!(&buf[..4], b"head", "n={n}");
                assert_eq!(&buf[4..], s, "n={n} start={start}");
                // Again into a full buffer: it grows.
                buf.shrink_to_fit();
                super::append(&mut buf, s);
                assert_eq!(&buf[4 + n..], s, "n={n} start={start}");
                assert_eq!(buf.len(), 4 + 2 * n);
            }
        }
    }
}
