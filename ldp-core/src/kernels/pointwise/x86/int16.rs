//! x86-64 AVX2 pointwise kernel of 16-bit activations × int8 weights: `i16` outputs (the
//! 16-bit-activation path, `quant::a16::pointwise16`) and int8 outputs (a 16-bit model input,
//! `quant::a16::pointwise_in16`).
//!
//! A register tile of 2 pixels × 4 outputs (8 accumulators): per step, 16 activations of each
//! pixel are loaded as they are, 16 weights of each output row are sign-extended to i16
//! (`vpmovsxbw`), and `vpmaddwd` multiplies pairwise into i32 (16 exact MACs per instruction:
//! `|x·w + x'·w'| ≤ 2·32767·128` fits i32). The channels past the last multiple of 16, the
//! leftover outputs and pixels run scalar. i32 additions wrap exactly like the reference's
//! `wrapping_add`, so the sum equals [`super::a16::pointwise16_reference`] bit for bit whatever
//! the order; bias, requantization and saturation are the references' own scalar code ([`out16`],
//! `quant::kernels::finish`).

use core::arch::x86_64::*;

use crate::kernels::cpu;
use crate::quant::a16::out16;
use crate::quant::kernels::ConvQ;

/// Runs the AVX2 kernel if the CPU has it (else `false`). The shapes are checked again here
/// (`check_pw`, O(1)): `false` unless `x.len() = pixels·c_in`, weights `c_out·c_in`, bias (or
/// none)/mult `c_out`, `y.len() = pixels·c_out`.
pub(crate) fn pointwise16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    // SAFETY: AVX2 is present and `check_pw` just verified every length (products without
    // overflow).
    unsafe {
        run(x, c_in, q, c_out, y, pixels, |acc, o| {
            out16(q.bias_at(o).wrapping_add(acc), o, q)
        })
    };
    true
}

/// [`pointwise16`] with int8 outputs (zero point, optional table): the pointwise conv of a
/// 16-bit model input, `quant::a16::pointwise_in16`. Same checks, same tile.
pub(crate) fn pointwise_in16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    // SAFETY: as in `pointwise16`.
    unsafe {
        run(x, c_in, q, c_out, y, pixels, |acc, o| {
            crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
        })
    };
    true
}

/// Sum of the 8 lanes (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Scalar dot product of `x[from..]` and `w[from..]` (wrapping).
#[inline(always)]
fn tail(x: &[i16], w: &[i8], from: usize) -> i32 {
    x[from..]
        .iter()
        .zip(&w[from..])
        .fold(0i32, |a, (&x, &w)| a.wrapping_add(x as i32 * w as i32))
}

/// The tile loop; `finish(acc, o)` turns output `o`'s sum (without bias) into the output.
#[target_feature(enable = "avx2")]
unsafe fn run<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    let k16 = c_in / 16 * 16;
    let (o4, p2) = (c_out / 4 * 4, pixels / 2 * 2);
    let w = q.weight;
    let mut p = 0;
    while p < p2 {
        let (xa, xb) = (
            &x[p * c_in..(p + 1) * c_in],
            &x[(p + 1) * c_in..(p + 2) * c_in],
        );
        let mut o = 0;
        while o < o4 {
            let rows = [
                &w[o * c_in..(o + 1) * c_in],
                &w[(o + 1) * c_in..(o + 2) * c_in],
                &w[(o + 2) * c_in..(o + 3) * c_in],
                &w[(o + 3) * c_in..(o + 4) * c_in],
            ];
            let mut a = [_mm256_setzero_si256(); 4];
            let mut b = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i < k16 {
                // SAFETY: i + 16 ≤ k16 ≤ c_in, the length of xa, xb and every row: unaligned
                // loads of 32 bytes (16 × i16) and 16 bytes (16 × i8) inside the slices.
                let (va, vb) = unsafe {
                    (
                        _mm256_loadu_si256(xa.as_ptr().add(i).cast()),
                        _mm256_loadu_si256(xb.as_ptr().add(i).cast()),
                    )
                };
                for k in 0..4 {
                    // SAFETY: as above, 16 bytes of row k from i.
                    let wk = unsafe { _mm_loadu_si128(rows[k].as_ptr().add(i).cast()) };
                    let wk = _mm256_cvtepi8_epi16(wk);
                    a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(va, wk));
                    b[k] = _mm256_add_epi32(b[k], _mm256_madd_epi16(vb, wk));
                }
                i += 16;
            }
            for k in 0..4 {
                let sa = hsum(a[k]).wrapping_add(tail(xa, rows[k], k16));
                let sb = hsum(b[k]).wrapping_add(tail(xb, rows[k], k16));
                y[p * c_out + o + k] = finish(sa, o + k);
                y[(p + 1) * c_out + o + k] = finish(sb, o + k);
            }
            o += 4;
        }
        for o in o4..c_out {
            let row = &w[o * c_in..(o + 1) * c_in];
            y[p * c_out + o] = finish(tail(xa, row, 0), o);
            y[(p + 1) * c_out + o] = finish(tail(xb, row, 0), o);
        }
        p += 2;
    }
    for p in p2..pixels {
        let xa = &x[p * c_in..(p + 1) * c_in];
        for o in 0..c_out {
            y[p * c_out + o] = finish(tail(xa, &w[o * c_in..(o + 1) * c_in], 0), o);
        }
    }
}
