//! Layouts. `ldp-core` works channels-last (NHWC, which is also MobileVLM's token order
//! `[N, C]`); PyTorch's convolutions are NCHW. These helpers convert one image, and find the
//! first non-finite value of an f32 input.

use crate::error::{check_len, Error};

/// Index of the first NaN or infinity of `x`: chunks are first scanned with a fold that
/// vectorizes (exponent bits all ones, no early exit per value), and only a chunk that holds
/// one is searched value by value. [`crate::Model::forward`] refuses an input with one at this
/// index.
pub fn first_non_finite(x: &[f32]) -> Option<usize> {
    const CHUNK: usize = 1024;
    for (k, c) in x.chunks(CHUNK).enumerate() {
        let bad = c.iter().fold(0u32, |a, v| {
            a | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)
        });
        if bad != 0 {
            return c.iter().position(|v| !v.is_finite()).map(|i| k * CHUNK + i);
        }
    }
    None
}

/// Copies NCHW `src` (`[c][h][w]`) into NHWC `dst` (`[h][w][c]`).
pub fn nchw_to_nhwc<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), Error> {
    let n = checked_len(c, h, w)?;
    check_len("nchw source", src, n)?;
    check_len("nhwc destination", dst, n)?;
    // `src` is a `[c][hw]` matrix, `dst` its transpose: blocked so that both sides stay in cache.
    transpose(src, dst, c, h * w, c);
    Ok(())
}

/// [`nchw_to_nhwc`] of the channels `ch0 .. ch0 + g` only: `src` holds those `g` whole channels
/// (`[g][h][w]`, `g = src.len() / (h·w)`), written to their places in the whole NHWC `dst`
/// (`[h][w][c]`, `c·h·w` values; the other channels untouched). For converting a channels-first
/// sample as it is read, in channel groups that stay in cache: converting every group gives
/// [`nchw_to_nhwc`]'s result. An error when `src` is not whole channels, or they pass `c`.
pub fn nchw_to_nhwc_part<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
    ch0: usize,
) -> Result<(), Error> {
    let n = checked_len(c, h, w)?;
    check_len("nhwc destination", dst, n)?;
    let hw = h * w;
    if hw == 0 {
        return Ok(());
    }
    let g = src.len() / hw;
    if src.len() % hw != 0 || !matches!(ch0.checked_add(g), Some(e) if e <= c) {
        return Err(Error::InvalidConfig(
            "layout: a channel group must be whole channels inside the map's channel count",
        ));
    }
    if g == 0 {
        return Ok(());
    }
    // Destination row `p` (pixel) of the group starts at `p·c + ch0`: the transpose with row
    // stride `c`, from `dst[ch0..]`; its last element, `(hw − 1)·c + g − 1`, is inside because
    // `ch0 + g ≤ c`.
    transpose(src, &mut dst[ch0..], g, hw, c);
    Ok(())
}

/// `c·h·w`, or an error when it (or `h·w` alone, which matters when `c = 0`) overflows.
fn checked_len(c: usize, h: usize, w: usize) -> Result<usize, Error> {
    h.checked_mul(w)
        .and_then(|hw| hw.checked_mul(c))
        .ok_or(Error::InvalidConfig("layout: size overflows usize"))
}

/// `dst[j·ld + i] = src[i][j]` for a `rows × cols` row-major `src`: the transpose, with destination
/// rows `ld ≥ rows` elements apart (`ld = rows` for a whole transpose). The caller checked
/// `src.len() = rows·cols` and `dst.len() ≥ (cols − 1)·ld + rows`. In blocks of 8 × 8: full blocks
/// through fixed-size arrays (register shuffles, no bounds checks), edge blocks element by element.
/// The inner loop runs along the shorter side, so the cache lines it half-fills (`min(rows, cols)`
/// of them) are still in L1 when the next block fills their other half.
fn transpose<T: Copy>(src: &[T], dst: &mut [T], rows: usize, cols: usize, ld: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    debug_assert!(ld >= rows && src.len() == rows * cols && dst.len() > (cols - 1) * ld + rows - 1);
    const B: usize = 8;
    #[cfg(target_arch = "x86_64")]
    if core::mem::size_of::<T>() == 4 && crate::kernels::cpu::x86_avx2_fma() {
        // SAFETY: AVX is available (AVX2 implies it); the caller checked `src.len() =
        // rows·cols` and `dst.len() ≥ (cols − 1)·ld + rows`, `ld ≥ rows`; 4-byte elements are
        // only moved (loads, register shuffles and stores of 32-bit lanes copy their bits
        // unchanged, whatever they mean).
        unsafe {
            transpose32_avx(
                src.as_ptr() as *const f32,
                dst.as_mut_ptr() as *mut f32,
                rows,
                cols,
                ld,
            )
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if core::mem::size_of::<T>() == 1 {
        // SAFETY: SSE2 is part of x86-64; the caller checked `src.len() = rows·cols` and
        // `dst.len() ≥ (cols − 1)·ld + rows`, `ld ≥ rows`; 1-byte elements are only moved
        // (byte shuffles copy their bits unchanged).
        unsafe {
            transpose8_sse2(
                src.as_ptr() as *const u8,
                dst.as_mut_ptr() as *mut u8,
                rows,
                cols,
                ld,
            )
        };
        return;
    }
    let block = |dst: &mut [T], i0: usize, j0: usize| {
        let (i1, j1) = ((i0 + B).min(rows), (j0 + B).min(cols));
        if i1 - i0 == B && j1 - j0 == B {
            let blk: [[T; B]; B] = core::array::from_fn(|i| {
                let r = &src[(i0 + i) * cols + j0..][..B];
                core::array::from_fn(|j| r[j])
            });
            for j in 0..B {
                let d = &mut dst[(j0 + j) * ld + i0..][..B];
                for i in 0..B {
                    d[i] = blk[i][j];
                }
            }
        } else {
            for i in i0..i1 {
                let row = &src[i * cols + j0..i * cols + j1];
                for (dj, &v) in row.iter().enumerate() {
                    dst[(j0 + dj) * ld + i] = v;
                }
            }
        }
    };
    if rows <= cols {
        for j0 in (0..cols).step_by(B) {
            for i0 in (0..rows).step_by(B) {
                block(dst, i0, j0);
            }
        }
    } else {
        for i0 in (0..rows).step_by(B) {
            for j0 in (0..cols).step_by(B) {
                block(dst, i0, j0);
            }
        }
    }
}

/// [`transpose`] of 1-byte elements with 16 × 16 SSE2 register transposes (four rounds of
/// byte, word, dword and qword unpacks), edge blocks element by element.
///
/// # Safety
/// `src` points at `rows·cols` bytes, `dst` at `(cols − 1)·ld + rows` (`ld ≥ rows`), not
/// overlapping.
#[cfg(target_arch = "x86_64")]
unsafe fn transpose8_sse2(src: *const u8, dst: *mut u8, rows: usize, cols: usize, ld: usize) {
    use core::arch::x86_64::*;
    const B: usize = 16;
    let block = |i0: usize, j0: usize| {
        // SAFETY: a full block reads rows i0..i0+16 at columns j0..j0+16 (inside rows·cols)
        // and writes rows j0..j0+16 of dst at columns i0..i0+16, the last element at
        // (cols − 1)·ld + rows − 1 at most; edge blocks index element by element inside the
        // same bounds.
        unsafe {
            if i0 + B <= rows && j0 + B <= cols {
                let r: [__m128i; B] = core::array::from_fn(|i| {
                    _mm_loadu_si128(src.add((i0 + i) * cols + j0) as *const __m128i)
                });
                let d = transpose16x16_u8(r);
                // d[j] holds column j of the block, rows i0..i0+16 in order.
                for (j, v) in d.iter().enumerate() {
                    _mm_storeu_si128(dst.add((j0 + j) * ld + i0) as *mut __m128i, *v);
                }
            } else {
                for i in i0..(i0 + B).min(rows) {
                    for j in j0..(j0 + B).min(cols) {
                        *dst.add(j * ld + i) = *src.add(i * cols + j);
                    }
                }
            }
        }
    };
    // The inner loop runs along the shorter side (as in `transpose`): with `rows ≤ cols` each
    // 16-column step writes whole destination rows, and the source lines it reads in 16-byte
    // pieces are still in L1 for the next steps.
    if rows <= cols {
        for j0 in (0..cols).step_by(B) {
            for i0 in (0..rows).step_by(B) {
                block(i0, j0);
            }
        }
    } else {
        for i0 in (0..rows).step_by(B) {
            for j0 in (0..cols).step_by(B) {
                block(i0, j0);
            }
        }
    }
}

/// Transposes a 16 × 16 byte block held as 16 rows: element `j` of the result's row `i` is
/// element `i` of `r[j]` (four rounds of byte, word, dword and qword unpacks).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn transpose16x16_u8(
    r: [core::arch::x86_64::__m128i; 16],
) -> [core::arch::x86_64::__m128i; 16] {
    use core::arch::x86_64::*;
    const B: usize = 16;
    // SAFETY: register-only SSE2 operations (SSE2 is part of x86-64).
    unsafe {
        let z = _mm_setzero_si128();
        // Round 1: bytes of row pairs.
        let mut a = [z; B];
        for k in 0..8 {
            a[k] = _mm_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
            a[k + 8] = _mm_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
        }
        // Round 2: 16-bit pairs.
        let mut b = [z; B];
        for g in [0, 8] {
            for k in 0..4 {
                b[g + k] = _mm_unpacklo_epi16(a[g + 2 * k], a[g + 2 * k + 1]);
                b[g + 4 + k] = _mm_unpackhi_epi16(a[g + 2 * k], a[g + 2 * k + 1]);
            }
        }
        // Round 3: 32-bit groups.
        let mut c = [z; B];
        for g in [0, 4, 8, 12] {
            for k in 0..2 {
                c[g + k] = _mm_unpacklo_epi32(b[g + 2 * k], b[g + 2 * k + 1]);
                c[g + 2 + k] = _mm_unpackhi_epi32(b[g + 2 * k], b[g + 2 * k + 1]);
            }
        }
        // Round 4: 64-bit halves.
        let mut d = [z; B];
        for g in (0..B).step_by(2) {
            d[g] = _mm_unpacklo_epi64(c[g], c[g + 1]);
            d[g + 1] = _mm_unpackhi_epi64(c[g], c[g + 1]);
        }
        d
    }
}

/// [`transpose`] of 4-byte elements with 8 × 8 AVX register transposes (the same loop orders),
/// edge blocks element by element.
///
/// # Safety
/// `src` points at `rows·cols` elements, `dst` at `(cols − 1)·ld + rows` (`ld ≥ rows`), not
/// overlapping; AVX available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose32_avx(src: *const f32, dst: *mut f32, rows: usize, cols: usize, ld: usize) {
    use core::arch::x86_64::*;
    const B: usize = 8;
    let block = |i0: usize, j0: usize| {
        // SAFETY: i0 < rows, j0 < cols; a full block reads rows i0..i0+8 at columns j0..j0+8
        // (inside rows·cols) and writes rows j0..j0+8 of dst at columns i0..i0+8, the last
        // element at (cols − 1)·ld + rows − 1 at most; edge blocks index element by element
        // inside the same bounds.
        unsafe {
            if i0 + B <= rows && j0 + B <= cols {
                let mut r: [__m256; B] =
                    core::array::from_fn(|i| _mm256_loadu_ps(src.add((i0 + i) * cols + j0)));
                crate::kernels::pointwise::x86::transpose8(&mut r);
                for (j, v) in r.iter().enumerate() {
                    _mm256_storeu_ps(dst.add((j0 + j) * ld + i0), *v);
                }
            } else {
                for i in i0..(i0 + B).min(rows) {
                    for j in j0..(j0 + B).min(cols) {
                        *dst.add(j * ld + i) = *src.add(i * cols + j);
                    }
                }
            }
        }
    };
    // Tiles of `T` along the longer side; in a tile, 8-element steps of the shorter side
    // outside, blocks along the tile inside. Each source row is then read `T` elements in
    // sequence and each destination row written `T` elements in sequence, a few streams at a
    // time (the prefetchers follow them), while the tile's lines on the other side (`T` rows
    // of up to `min(rows, cols)` elements) stay in cache until complete. Walking all of the
    // shorter side per step instead touches one line in each of `min(rows, cols)` rows, often
    // in the same cache set.
    const T: usize = 64;
    if rows <= cols {
        for jt in (0..cols).step_by(T) {
            for i0 in (0..rows).step_by(B) {
                for j0 in (jt..(jt + T).min(cols)).step_by(B) {
                    block(i0, j0);
                }
            }
        }
    } else {
        for it in (0..rows).step_by(T) {
            for j0 in (0..cols).step_by(B) {
                for i0 in (it..(it + T).min(rows)).step_by(B) {
                    block(i0, j0);
                }
            }
        }
    }
}

/// Copies NHWC `src` (`[h][w][c]`) into NCHW `dst` (`[c][h][w]`).
pub fn nhwc_to_nchw<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), Error> {
    let n = checked_len(c, h, w)?;
    check_len("nhwc source", src, n)?;
    check_len("nchw destination", dst, n)?;
    transpose(src, dst, h * w, c, h * w);
    Ok(())
}

/// A 16-byte aligned wrapper for a blob or arena in a `static`:
/// `static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("model.ldp"));`
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

#[cfg(test)]
mod layout_tests {
    extern crate std;
    use super::*;

    /// The blocked transposes against the element-by-element definition, on sizes around the
    /// 8 × 8 and 16 × 16 blocks and the 64-element tiles, and their round trip.
    #[test]
    fn layout_conversions_match_definition() {
        for (c, h, w) in [
            (1, 1, 1),
            (3, 5, 7),
            (16, 4, 4),
            (17, 3, 11),
            (128, 8, 8),
            (33, 1, 40),
            // Several 64-element tiles with a ragged last one, both orientations.
            (20, 10, 15),
            (130, 1, 70),
            (200, 7, 11),
        ] {
            let n = c * h * w;
            let x: std::vec::Vec<u32> = (0..n as u32).collect();
            let mut y = std::vec![0u32; n];
            nchw_to_nhwc(&x, &mut y, c, h, w).unwrap();
            for ch in 0..c {
                for p in 0..h * w {
                    assert_eq!(y[p * c + ch], x[ch * h * w + p]);
                }
            }
            let mut z = std::vec![0u32; n];
            nhwc_to_nchw(&y, &mut z, c, h, w).unwrap();
            assert_eq!(z, x);
        }
        // 2-byte elements take the portable path; bit patterns of 4-byte ones (NaN payloads
        // included) move unchanged.
        let x: std::vec::Vec<u16> = (0..17 * 9 * 10).map(|v| v as u16).collect();
        let mut y = std::vec![0u16; x.len()];
        nchw_to_nhwc(&x, &mut y, 17, 9, 10).unwrap();
        assert!((0..17).all(|ch| (0..90).all(|p| y[p * 17 + ch] == x[ch * 90 + p])));
        let x: std::vec::Vec<f32> = (0..24 * 64u32)
            .map(|v| f32::from_bits(0x7fa0_0000 | v))
            .collect();
        let mut y = std::vec![0.0f32; x.len()];
        nchw_to_nhwc(&x, &mut y, 24, 8, 8).unwrap();
        assert!(
            (0..24).all(|ch| (0..64).all(|p| y[p * 24 + ch].to_bits() == x[ch * 64 + p].to_bits()))
        );
        // 1-byte elements (the SSE2 16 × 16 path on x86-64): sizes around the block, both loop
        // orders, against the definition and round trip.
        for (c, h, w) in [
            (1, 1, 1),
            (16, 4, 4),
            (15, 1, 17),
            (17, 5, 7),
            (128, 8, 8),
            (3, 64, 64),
            (40, 3, 33),
        ] {
            let n = c * h * w;
            let x: std::vec::Vec<i8> = (0..n).map(|v| (v * 7 % 251) as i8).collect();
            let mut y = std::vec![0i8; n];
            nchw_to_nhwc(&x, &mut y, c, h, w).unwrap();
            assert!((0..c).all(|ch| (0..h * w).all(|p| y[p * c + ch] == x[ch * h * w + p])));
            let mut z = std::vec![0i8; n];
            nhwc_to_nchw(&y, &mut z, c, h, w).unwrap();
            assert_eq!(z, x, "{c} {h} {w}");
        }
        let mut y = [0u32; 4];
        assert!(nchw_to_nhwc(&[0u32; 4], &mut y, usize::MAX, 2, 2).is_err());
        // No channels, but a map whose `h·w` overflows: refused, not wrapped (or a panic).
        assert!(nchw_to_nhwc::<u32>(&[], &mut [], 0, usize::MAX, 2).is_err());
        assert!(nhwc_to_nchw::<u32>(&[], &mut [], 0, 2, usize::MAX).is_err());
        assert!(nchw_to_nhwc_part::<u32>(&[], &mut [], 0, usize::MAX, 3, 0).is_err());
        assert!(nhwc_to_nchw(&[0u32; 3], &mut y, 1, 2, 2).is_err());
    }

    /// [`nchw_to_nhwc_part`] over channel groups of every size (1, odd, uneven last group, the
    /// whole map) equals [`nchw_to_nhwc`] for 4-, 2- and 1-byte elements, leaves the other
    /// channels untouched, and refuses groups that are not whole channels or pass `c`.
    #[test]
    fn layout_conversion_by_channel_groups_equals_whole() {
        fn check<T: Copy + PartialEq + core::fmt::Debug>(
            x: &[T],
            fill: T,
            c: usize,
            h: usize,
            w: usize,
        ) {
            let hw = h * w;
            let mut whole = std::vec![fill; x.len()];
            nchw_to_nhwc(x, &mut whole, c, h, w).unwrap();
            for g in [1, 3, 7, 8, 9, 16, c] {
                let mut y = std::vec![fill; x.len()];
                let mut ch0 = 0;
                while ch0 < c {
                    let n = g.min(c - ch0);
                    nchw_to_nhwc_part(&x[ch0 * hw..(ch0 + n) * hw], &mut y, c, h, w, ch0).unwrap();
                    // Channels not yet converted are untouched.
                    let done = ch0 + n;
                    assert!(
                        (0..hw).all(|p| y[p * c + done..(p + 1) * c].iter().all(|v| *v == fill))
                    );
                    ch0 = done;
                }
                assert_eq!(y, whole, "{c} {h} {w} groups of {g}");
            }
        }
        for (c, h, w) in [
            (1, 1, 1),
            (17, 3, 11),
            (16, 8, 8),
            (40, 9, 10),
            (130, 1, 70),
            (24, 64, 3),
        ] {
            let n = c * h * w;
            let x: std::vec::Vec<f32> = (1..=n).map(|v| v as f32).collect();
            check(&x, 0.0, c, h, w);
            let x: std::vec::Vec<u16> = (1..=n).map(|v| (v % 65521) as u16 + 1).collect();
            check(&x, 0, c, h, w);
            let x: std::vec::Vec<i8> = (0..n).map(|v| (v * 7 % 251) as i8 | 1).collect();
            check(&x, 0, c, h, w);
        }
        let mut y = [0.0f32; 12];
        // Not whole channels; past `c`; `ch0` overflowing.
        assert!(nchw_to_nhwc_part(&[0.0f32; 5], &mut y, 3, 2, 2, 0).is_err());
        assert!(nchw_to_nhwc_part(&[0.0f32; 8], &mut y, 3, 2, 2, 2).is_err());
        assert!(nchw_to_nhwc_part(&[0.0f32; 4], &mut y, 3, 2, 2, usize::MAX).is_err());
        assert!(nchw_to_nhwc_part(&[0.0f32; 4], &mut y[..11], 3, 2, 2, 0).is_err());
        assert!(nchw_to_nhwc_part(&[0.0f32; 4], &mut y, 3, 2, 2, 2).is_ok());
    }
}
