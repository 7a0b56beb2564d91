//! x86-64 AVX2 int8 pointwise kernel.
//!
//! Dot-product form, no packing: 16 input channels of a pixel row and of a weight row are
//! sign-extended to i16 (`vpmovsxbw`) and multiplied pairwise into i32 (`vpmaddwd`: 16 exact
//! MACs per instruction), in a register tile of 4 outputs × 3 pixels (12 accumulators). The
//! accumulators are reduced horizontally once per output; the bias, requantization, saturation
//! and table are the scalar code of the reference. Every product of two int8 fits i16·i16 → i32
//! and pair sums fit i32 (|a·b + c·d| ≤ 2·128²), and i32 addition wraps exactly like the
//! reference's `wrapping_add`, so the result equals the reference bit for bit whatever the order.

use core::arch::x86_64::*;

use super::fixed::{requant, sat_i8};
use super::kernels::ConvQ;
use crate::error::{check_len, Error};
use crate::kernels::cpu;

/// Runs the AVX2 kernel if the CPU has it (else `false`). Shapes validated by the caller.
pub(crate) fn pointwise(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma() {
        return false;
    }
    // SAFETY: AVX2 is present (checked above); the caller validated
    // x.len() = pixels·c_in, weight = c_out·c_in, bias/mult = c_out, y = pixels·c_out.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The AVX2 kernel with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn pointwise_avx2(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    if c_in == 0 || c_out == 0 || x.len() % c_in != 0 {
        return Err(Error::InvalidConfig("int8 pointwise: bad shape"));
    }
    let pixels = x.len() / c_in;
    check_len("int8 weight", q.weight, c_in * c_out)?;
    check_len("int8 bias", q.bias, c_out)?;
    check_len("int8 mult", q.mult, c_out)?;
    if let Some(t) = q.lut {
        check_len("int8 lut", t, 256)?;
    }
    check_len("int8 pointwise output", y, pixels * c_out)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    Ok(())
}

#[inline(always)]
fn out(acc: i32, o: usize, q: &ConvQ<'_>) -> i8 {
    let v = sat_i8(q.out_zero.wrapping_add(requant(
        acc.wrapping_add(q.bias[o]),
        q.mult[o] as i32,
        q.shift,
    )));
    match q.lut {
        Some(t) => t[(v as i32 + 128) as usize],
        None => v,
    }
}

/// Sum of the 8 lanes of `v` (wrapping).
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn hsum(v: __m256i) -> i32 {
    // SAFETY: register-only AVX2/SSE2 operations.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// Outputs `o0..o0+TO` of pixels `p0..p0+TP`.
///
/// # Safety
/// `o0 + TO ≤ c_out`, `p0 + TP ≤ pixels`, shapes validated; AVX2 available.
#[inline(always)]
unsafe fn tile<const TO: usize, const TP: usize>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    o0: usize,
    p0: usize,
) {
    let full = c_in / 16 * 16;
    // SAFETY (whole body): rows o0..o0+TO of the weights and p0..p0+TP of x are in bounds, and
    // every 16-byte load starts at i ≤ full - 16 inside its row.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); TP]; TO];
        let xs: [*const i8; TP] = core::array::from_fn(|p| x.as_ptr().add((p0 + p) * c_in));
        let ws: [*const i8; TO] = core::array::from_fn(|o| q.weight.as_ptr().add((o0 + o) * c_in));
        let mut i = 0;
        while i < full {
            let xv: [__m256i; TP] = core::array::from_fn(|p| {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(xs[p].add(i) as *const __m128i))
            });
            for o in 0..TO {
                let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(ws[o].add(i) as *const __m128i));
                for p in 0..TP {
                    acc[o][p] = _mm256_add_epi32(acc[o][p], _mm256_madd_epi16(xv[p], wv));
                }
            }
            i += 16;
        }
        for o in 0..TO {
            for p in 0..TP {
                let mut s = hsum(acc[o][p]);
                for j in full..c_in {
                    s = s.wrapping_add(*xs[p].add(j) as i32 * *ws[o].add(j) as i32);
                }
                y[(p0 + p) * c_out + o0 + o] = out(s, o0 + o, q);
            }
        }
    }
}

/// # Safety
/// Shapes validated; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run(x: &[i8], c_in: usize, q: &ConvQ<'_>, c_out: usize, y: &mut [i8], pixels: usize) {
    // Pixel blocks keep a block of x in L1/L2 while all weight rows stream past it.
    const PB: usize = 48;
    let mut pb = 0;
    while pb < pixels {
        let pe = (pb + PB).min(pixels);
        let mut o = 0;
        // SAFETY: every tile stays inside o < c_out and p < pe ≤ pixels.
        unsafe {
            while o + 4 <= c_out {
                let mut p = pb;
                while p + 3 <= pe {
                    tile::<4, 3>(x, c_in, q, c_out, y, o, p);
                    p += 3;
                }
                while p < pe {
                    tile::<4, 1>(x, c_in, q, c_out, y, o, p);
                    p += 1;
                }
                o += 4;
            }
            while o < c_out {
                let mut p = pb;
                while p + 3 <= pe {
                    tile::<1, 3>(x, c_in, q, c_out, y, o, p);
                    p += 3;
                }
                while p < pe {
                    tile::<1, 1>(x, c_in, q, c_out, y, o, p);
                    p += 1;
                }
                o += 1;
            }
        }
        pb = pe;
    }
}
