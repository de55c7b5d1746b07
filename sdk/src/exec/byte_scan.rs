//! Byte searches over input chunks, 16 bytes at a time.
//!
//! Design choice: in wasm these use the 128-bit SIMD instructions (`simd128`) whatever flags the
//! job was built with. Each function that needs them enables the feature for itself, so a user's
//! plain `cargo build --release --target wasm32-wasip1` gets them. (In wasm that is safe: an
//! engine without SIMD rejects the module when it loads it; it cannot misexecute it.) Without
//! them, the `memchr` crate falls back to 4 bytes per step on wasm32, and every step of a loop
//! also pays the engine's interruption check, so searching a chunk cost several times what the
//! same search costs natively.
//!
//! One primitive, [`masks`], compares a 16-byte block with two bytes and returns a bit mask of
//! the matches for each (bit `i` is byte `i`); everything else walks those bits. On other targets
//! (the SDK's own unit tests run on the build machine) the masks come from a byte loop, so the
//! walking logic is the same code everywhere and is tested there.

/// A block of input: the unit of comparison.
pub(crate) const BLOCK: usize = 16;

/// Masks of the positions in `block` that hold `a` and that hold `b` (bit `i` = byte `i`).
#[cfg(target_arch = "wasm32")]
#[inline]
#[target_feature(enable = "simd128")]
pub(crate) fn masks(block: &[u8; BLOCK], a: u8, b: u8) -> (u32, u32) {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_splat, v128, v128_load};
    // SAFETY: `block` is 16 readable bytes and `v128_load` has no alignment requirement.
    let v = unsafe { v128_load(block.as_ptr().cast::<v128>()) };
    let a = u8x16_bitmask(u8x16_eq(v, u8x16_splat(a)));
    let b = u8x16_bitmask(u8x16_eq(v, u8x16_splat(b)));
    (u32::from(a), u32::from(b))
}

/// Masks of the positions in `block` that hold `a` and that hold `b` (bit `i` = byte `i`).
#[cfg(not(target_arch = "wasm32"))]
#[inline]
pub(crate) fn masks(block: &[u8; BLOCK], a: u8, b: u8) -> (u32, u32) {
    let (mut in_a, mut in_b) = (0u32, 0u32);
    for (i, &x) in block.iter().enumerate() {
        in_a |= u32::from(x == a) << i;
        in_b |= u32::from(x == b) << i;
    }
    (in_a, in_b)
}

/// [`masks`] of four blocks at once: bit `i` = byte `i` of the 64-byte `window`. Inlined into
/// its callers, so it runs with their SIMD feature.
#[inline(always)]
pub(crate) fn masks64(window: &[u8; 4 * BLOCK], a: u8, b: u8) -> (u64, u64) {
    let (mut in_a, mut in_b) = (0u64, 0u64);
    for (k, block) in window.chunks_exact(BLOCK).enumerate() {
        let (ma, mb) = masks(block.try_into().expect("a whole block"), a, b);
        in_a |= u64::from(ma) << (k * BLOCK);
        in_b |= u64::from(mb) << (k * BLOCK);
    }
    (in_a, in_b)
}

/// The mask of the bytes of `block` that are not ASCII (bit `i` = byte `i`).
#[cfg(target_arch = "wasm32")]
#[inline]
#[target_feature(enable = "simd128")]
pub(crate) fn non_ascii(block: &[u8; BLOCK]) -> u32 {
    use core::arch::wasm32::{u8x16_bitmask, v128, v128_load};
    // SAFETY: as in `masks`.
    let v = unsafe { v128_load(block.as_ptr().cast::<v128>()) };
    u32::from(u8x16_bitmask(v))
}

/// The mask of the bytes of `block` that are not ASCII (bit `i` = byte `i`).
#[cfg(not(target_arch = "wasm32"))]
#[inline]
pub(crate) fn non_ascii(block: &[u8; BLOCK]) -> u32 {
    let mut mask = 0;
    for (i, &x) in block.iter().enumerate() {
        mask |= u32::from(!x.is_ascii()) << i;
    }
    mask
}

/// The block of `data` at `at`, padded past the end, and the mask of its real bytes (the padding
/// may match anything: callers clear those bits with the mask).
#[inline]
pub(crate) fn block_at(data: &[u8], at: usize) -> ([u8; BLOCK], u32) {
    match data.get(at..at + BLOCK) {
        Some(block) => (block.try_into().expect("a whole block"), u32::MAX),
        None => {
            let rest = data.get(at..).unwrap_or_default();
            let mut block = [0; BLOCK];
            block[..rest.len()].copy_from_slice(rest);
            (block, (1u32 << rest.len()) - 1)
        }
    }
}

/// The index of the first `needle` in `haystack`.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub(crate) fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < haystack.len() {
        let (block, valid) = block_at(haystack, at);
        let (found, _) = masks(&block, needle, needle);
        let found = found & valid;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += BLOCK;
    }
    None
}

/// How many times `needle` occurs in `haystack`.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub(crate) fn count_byte(needle: u8, haystack: &[u8]) -> usize {
    let mut count = 0;
    let mut at = 0;
    while at < haystack.len() {
        let (block, valid) = block_at(haystack, at);
        let (found, _) = masks(&block, needle, needle);
        count += (found & valid).count_ones() as usize;
        at += BLOCK;
    }
    count
}

/// Whether `haystack` holds `a` or `b` anywhere.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub(crate) fn contains_either(a: u8, b: u8, haystack: &[u8]) -> bool {
    any_block(haystack, |block| {
        let (in_a, in_b) = masks(block, a, b);
        in_a | in_b
    })
}

/// Whether every byte of `haystack` is ASCII (so every piece of it is valid UTF-8).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub(crate) fn is_ascii(haystack: &[u8]) -> bool {
    // A closure, not the function itself: in wasm `non_ascii` has a target feature, and such
    // functions are not `Fn`.
    #[allow(clippy::redundant_closure)]
    !any_block(haystack, |block| non_ascii(block))
}

/// Whether `mask` is non-zero for any real byte of `haystack`. Inlined into its callers, so
/// `mask` runs with their SIMD feature.
#[inline(always)]
fn any_block(haystack: &[u8], mask: impl Fn(&[u8; BLOCK]) -> u32) -> bool {
    // Four blocks per step: one branch (and one interruption check) per 64 bytes.
    let mut wide = haystack.chunks_exact(4 * BLOCK);
    for step in &mut wide {
        let mut any = 0;
        for block in step.chunks_exact(BLOCK) {
            any |= mask(block.try_into().expect("a whole block"));
        }
        if any != 0 {
            return true;
        }
    }
    let rest = wide.remainder();
    let mut at = 0;
    while at < rest.len() {
        let (block, valid) = block_at(rest, at);
        if mask(&block) & valid != 0 {
            return true;
        }
        at += BLOCK;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts with the interesting bytes at every offset of a block and past several blocks.
    fn texts() -> Vec<Vec<u8>> {
        let mut texts = vec![Vec::new(), b"\n".to_vec(), b"no match here".to_vec()];
        for len in [1, 15, 16, 17, 63, 64, 65, 130] {
            for at in [0, len / 2, len - 1] {
                let mut text = vec![b'x'; len];
                text[at] = b'\n';
                texts.push(text.clone());
                text[at] = b'"';
                texts.push(text);
            }
        }
        texts
    }

    #[test]
    fn searches_agree_with_iterators_at_every_offset() {
        for text in texts() {
            for start in 0..=text.len() {
                let t = &text[start..];
                assert_eq!(find_byte(b'\n', t), t.iter().position(|&b| b == b'\n'), "{t:?}");
                assert_eq!(count_byte(b'\n', t), t.iter().filter(|&&b| b == b'\n').count());
                let either = t.iter().any(|&b| b == b'"' || b == b'\r');
                assert_eq!(contains_either(b'"', b'\r', t), either, "{t:?}");
                assert!(is_ascii(t));
                for at in (0..t.len()).filter(|_| start == 0) {
                    let mut u = t.to_vec();
                    u[at] = 0xc3;
                    assert!(!is_ascii(&u), "{u:?}");
                }
            }
        }
    }

    #[test]
    fn wide_masks_are_the_four_block_masks_side_by_side() {
        let mut window = [b'x'; 4 * BLOCK];
        for at in [0, 1, 15, 16, 31, 32, 47, 48, 63] {
            window[at] = b'\n';
            window[(at * 7 + 3) % 64] = b',';
        }
        let (nl, comma) = masks64(&window, b'\n', b',');
        for (i, &x) in window.iter().enumerate() {
            assert_eq!(nl >> i & 1 == 1, x == b'\n', "byte {i}");
            assert_eq!(comma >> i & 1 == 1, x == b',', "byte {i}");
        }
    }

    #[test]
    fn padding_never_matches() {
        // Blocks past the end are padded with zeros, which must not count.
        let text = [0u8, 255, 0, 255, 7];
        assert_eq!(find_byte(0, &text[1..]), Some(1));
        assert_eq!(find_byte(255, &text[2..]), Some(1));
        assert_eq!(count_byte(0, &text), 2);
        assert!(contains_either(7, 7, &text[4..]));
        assert!(!contains_either(0, 1, &text[3..]));
    }
}
