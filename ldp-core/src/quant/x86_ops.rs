//! x86-64 AVX2 int8 kernels besides the pointwise one: depthwise 3×3, LayerNorm (int8 and
//! 16-bit inputs) and ADD.
//!
//! Each computes exactly the integers of its reference in `quant::kernels` (wrapping `i32`
//! sums, exact 64-bit products, the same rounding shifts — see [`Rq`]), so the results are
//! bit-identical; shapes or parameters outside what a kernel takes (noted per kernel) go to the
//! portable code.
//!
//! - **Depthwise** (NHWC, stride 1 or 2): 16 channels per step. The taps of a pixel are paired
//!   (`(0,1) (2,3) (4,5) (6,7) (8,–)`), their bytes interleaved (`vpunpcklbw`/`vpunpckhbw`) and
//!   sign-extended, so one `vpmaddwd` against the staged weight pairs adds two taps of 8
//!   channels into `i32` (|x·w| ≤ 2^14, pair sums fit). The input zero point is folded into the
//!   bias (`bias − z·Σw`, wrapping — exact mod 2^32) and taps outside the map read a row
//!   filled with `z`, whose net contribution `(z − z)·w = 0` is the reference's skipped tap.
//!   Weights, biases and multipliers are staged per chunk of 256 channels (7.3 KiB of stack
//!   with the zero-point row). Takes zero points in `-128..=127` and at least 16 channels;
//!   `c % 16` tail channels are scalar.
//! - **LayerNorm**: `S1`, `S2` with `vpmaddwd` (exact in `i32` for `c ≤ 2048`); the per-pixel
//!   integer square root (exact, see `isqrt_sse2`) and division are the reference's scalar code; then per 8 channels
//!   `num·inv` in 64 bits (`inv ≤ 2^32` written as `inv' + b·2^32` with `inv'` an `i32`), the
//!   two rounding shifts as in [`Rq`], `x̂·γ` with `vpmuldq` (|x̂·2^16| ≤ 2^16·√c fits `i32`),
//!   the staged `β·2^16` + rounding constant. Takes `c ≤ 2048` (staging: 24 KiB of stack).
//! - **LayerNorm of 16-bit inputs** (`kernels::layer_norm_i16`): the same per-pixel
//!   statistics and `x̂` (`S1` by `vpmaddwd` with ones, `S2` by `vpmaddwd` of `x` with itself
//!   summed as `u32` pairs in 64-bit lanes), with or without the interpolated table (64-bit
//!   clamp, then one `vpgatherdd` per 8 outputs); see `ln16_run`. Takes `c ≤ 2048`.
//! - **ADD**: 16 elements per step, both products in 64 bits, [`Rq::finish`]. Takes zero
//!   points in `-128..=127`.

use core::arch::x86_64::*;

use super::fixed::{requant, requant64, sat_i8};
use super::kernels::{AddQ, ConvOut, ConvQ, NormQ};
use super::x86::{apply_lut, sat16, Rq};
use crate::error::{check_len, Error};
use crate::kernels::cpu;
use crate::kernels::depthwise::DwShape;

/// Channels staged per depthwise pass.
const DW_CH: usize = 256;

/// Whether the AVX2 depthwise takes these parameters.
fn dw_takes(s: DwShape, q: &ConvQ<'_>) -> bool {
    s.c >= 16 && (-128..=127).contains(&q.in_zero)
}

/// Runs the AVX2 depthwise kernel if the CPU has it and it takes the shape (else `false`).
/// The shapes are checked again here (`check_dw`, O(1)): `false` when they do not hold.
pub(crate) fn depthwise(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) -> bool {
    if !cpu::x86_avx2_fma() || !dw_takes(s, q) || super::kernels::check_dw(s, x, q, y).is_err() {
        return false;
    }
    // SAFETY: AVX2 present; `check_dw` just verified x = h·w·c, weight = 9c, bias/mult = c,
    // y = ho·wo·c (products without overflow), lut = 256, stride 1 or 2.
    unsafe { dw_run(s, x, q, 0, s.ho(), y) };
    true
}

/// Runs the AVX2 depthwise kernel with a 16-bit output (the `i16` [`ConvOut`]: requantized,
/// output zero point added, saturated to `i16`) for output rows `oy0..oy1` of the map, into
/// `y` holding just those rows, if the CPU has it and it takes the shape (else `false`).
/// Validated by the caller: x = h·w·c, weight = 9c, bias/mult = c, lut `None`,
/// y = (oy1 − oy0)·wo·c, oy0 < oy1 ≤ ho, stride 1 or 2.
pub(crate) fn depthwise_rows_i16(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i16],
) -> bool {
    if !cpu::x86_avx2_fma()
        || !dw_takes(s, q)
        || super::kernels::check_dw_rows16(s, x, q, oy0, oy1, y).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_dw_rows16` just verified the shapes, the row range, the
    // lengths and that there is no table.
    unsafe { dw_run(s, x, q, oy0, oy1, y) };
    true
}

/// [`depthwise_rows_i16`] with its own checks, for tests and benchmarks (shapes the AVX2
/// kernel does not take run the portable row kernel).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn depthwise_rows_i16_avx2(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    super::kernels::check_dw_rows16(s, x, q, oy0, oy1, y)?;
    if dw_takes(s, q) {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { dw_run(s, x, q, oy0, oy1, y) };
        Ok(())
    } else {
        super::kernels::depthwise_rows_i16_portable(s, x, q, oy0, oy1, y)
    }
}

/// The AVX2 depthwise kernel with its own checks, for tests and benchmarks (shapes it does
/// not take run the portable kernel).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn depthwise_avx2(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    super::kernels::check_dw(s, x, q, y)?;
    if dw_takes(s, q) {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { dw_run(s, x, q, 0, s.ho(), y) };
    } else {
        super::depthwise_fast::depthwise(s, x, q, y);
    }
    Ok(())
}

/// The output element of the AVX2 depthwise: `i8` (saturated, optional table) or `i16`
/// (saturated, no table), as [`ConvOut::finish`].
trait DwOut: ConvOut {
    /// Stores 16 outputs from the requantized `i32` lanes `a` (channels 0..8) and `b` (8..16).
    ///
    /// # Safety
    /// AVX2 available; `p` valid for 16 writes of `Self`.
    unsafe fn store16(p: *mut Self, a: __m256i, b: __m256i);
    /// Applies the optional table in place (`i8` only).
    fn table(v: &mut [Self], lut: Option<&[i8]>);
}

impl DwOut for i8 {
    #[inline(always)]
    unsafe fn store16(p: *mut i8, a: __m256i, b: __m256i) {
        // SAFETY: AVX2 available and `p` writable for 16 bytes (the contract).
        unsafe { _mm_storeu_si128(p as *mut __m128i, sat16(a, b)) }
    }
    #[inline(always)]
    fn table(v: &mut [i8], lut: Option<&[i8]>) {
        if lut.is_some() {
            apply_lut(v, lut);
        }
    }
}

impl DwOut for i16 {
    #[inline(always)]
    unsafe fn store16(p: *mut i16, a: __m256i, b: __m256i) {
        // SAFETY: AVX2 available and `p` writable for 16 `i16` (the contract). `packs_epi32`
        // saturates per 128-bit lane ([a0..3 b0..3 | a4..7 b4..7]); the permute restores the
        // channel order.
        unsafe {
            let t = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
            _mm256_storeu_si256(p as *mut __m256i, t)
        }
    }
    #[inline(always)]
    fn table(_v: &mut [i16], _lut: Option<&[i8]>) {}
}

/// Channels `ch0..c` of output pixel `(oy, ox)`, scalar (the reference's arithmetic); `y`
/// holds output rows from `oy0` on.
#[allow(clippy::too_many_arguments)]
fn dw_scalar<Y: ConvOut>(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [Y],
    oy0: usize,
    oy: usize,
    ox: usize,
    ch0: usize,
) {
    let (wo, c) = (s.wo(), s.c);
    for ch in ch0..c {
        let mut acc = q.bias_at(ch);
        for ky in 0..3 {
            let iy = (oy * s.stride + ky) as isize - 1;
            if iy < 0 || iy >= s.h as isize {
                continue;
            }
            for kx in 0..3 {
                let ix = (ox * s.stride + kx) as isize - 1;
                if ix < 0 || ix >= s.w as isize {
                    continue;
                }
                let xv =
                    (x[(iy as usize * s.w + ix as usize) * c + ch] as i32).wrapping_sub(q.in_zero);
                acc = acc.wrapping_add(xv.wrapping_mul(q.weight[ch * 9 + ky * 3 + kx] as i32));
            }
        }
        y[((oy - oy0) * wo + ox) * c + ch] = Y::finish(
            q.out_zero
                .wrapping_add(requant(acc, q.mult_at(ch), q.shift)),
            q.lut,
        );
    }
}

/// Output rows `oy0..oy1` of the map (global geometry and padding) into `y`, which holds just
/// those rows.
///
/// # Safety
/// Shapes validated (x = h·w·c, weight = 9c, bias/mult = c, y = (oy1 − oy0)·wo·c,
/// oy1 ≤ ho, lut 256 if any), `dw_takes`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dw_run<Y: DwOut>(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [Y],
) {
    let (h, w, c, st) = (s.h, s.w, s.c, s.stride);
    let wo = s.wo();
    let c16 = c / 16 * 16;
    let z = q.in_zero;
    // SAFETY: AVX2 available (this function's contract).
    let rq = unsafe { Rq::new(q.shift, q.out_zero) };
    // Weight pairs: per 16-channel block, per tap pair j, 16 channels × (w_a, w_b).
    let mut wst = [0i16; DW_CH * 5 * 2];
    let mut bst = [0i32; DW_CH];
    let mut mst = [0i32; DW_CH];
    let zrow = [z as i8; DW_CH];
    let mut ch0 = 0;
    while ch0 < c16 {
        let nch = (c16 - ch0).min(DW_CH);
        for cl in 0..nch {
            let ch = ch0 + cl;
            let wk = &q.weight[ch * 9..ch * 9 + 9];
            let (blk, lane) = (cl / 16, cl % 16);
            for j in 0..5 {
                let at = ((blk * 5 + j) * 16 + lane) * 2;
                wst[at] = wk[2 * j] as i16;
                wst[at + 1] = if j < 4 { wk[2 * j + 1] as i16 } else { 0 };
            }
            let sw: i32 = wk.iter().map(|&v| v as i32).sum();
            bst[cl] = q.bias_at(ch).wrapping_sub(z.wrapping_mul(sw));
            mst[cl] = q.mult_at(ch);
        }
        for oy in oy0..oy1 {
            for ox in 0..wo {
                // The 9 taps' rows for channel ch0 (or the zero-point row).
                let mut tp = [zrow.as_ptr(); 9];
                for ky in 0..3 {
                    let iy = (oy * st + ky) as isize - 1;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..3 {
                        let ix = (ox * st + kx) as isize - 1;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        // SAFETY: (iy, ix) is inside the map: the pixel's channels ch0.. are in x.
                        tp[ky * 3 + kx] =
                            unsafe { x.as_ptr().add((iy as usize * w + ix as usize) * c + ch0) };
                    }
                }
                let o = ((oy - oy0) * wo + ox) * c + ch0;
                let mut b = 0;
                while b < nch {
                    // SAFETY: every tap pointer has ≥ nch readable bytes (a pixel's channels
                    // ch0..ch0+nch ≤ c16 ≤ c, or the DW_CH-byte zero row) and b + 16 ≤ nch; the
                    // staged arrays hold nch entries; y has the pixel's channels at o..o+nch.
                    unsafe {
                        let wp = wst.as_ptr().add(b / 16 * 5 * 32) as *const __m256i;
                        let mut a0 = _mm256_loadu_si256(bst.as_ptr().add(b) as *const __m256i);
                        let mut a1 = _mm256_loadu_si256(bst.as_ptr().add(b + 8) as *const __m256i);
                        for j in 0..5 {
                            let ta = _mm_loadu_si128(tp[2 * j].add(b) as *const __m128i);
                            let tb = if j < 4 {
                                _mm_loadu_si128(tp[2 * j + 1].add(b) as *const __m128i)
                            } else {
                                _mm_setzero_si128()
                            };
                            let lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(ta, tb));
                            let hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(ta, tb));
                            a0 = _mm256_add_epi32(
                                a0,
                                _mm256_madd_epi16(lo, _mm256_loadu_si256(wp.add(2 * j))),
                            );
                            a1 = _mm256_add_epi32(
                                a1,
                                _mm256_madd_epi16(hi, _mm256_loadu_si256(wp.add(2 * j + 1))),
                            );
                        }
                        let m0 = _mm256_loadu_si256(mst.as_ptr().add(b) as *const __m256i);
                        let m1 = _mm256_loadu_si256(mst.as_ptr().add(b + 8) as *const __m256i);
                        Y::store16(
                            y.as_mut_ptr().add(o + b),
                            rq.apply(a0, m0),
                            rq.apply(a1, m1),
                        );
                    }
                    b += 16;
                }
                Y::table(&mut y[o..o + nch], q.lut);
            }
        }
        ch0 += nch;
    }
    if c16 < c {
        for oy in oy0..oy1 {
            for ox in 0..wo {
                dw_scalar(s, x, q, y, oy0, oy, ox, c16);
            }
        }
    }
}

/// Largest channel count the AVX2 LayerNorms take.
const LN_MAX_C: usize = 2048;

/// Runs the AVX2 LayerNorm if the CPU has it and `c ≤ 2048` (else `false`). Parameters
/// validated by the caller (`gamma`, `beta`: `c`; `lut`: 256; `buf.len() % c == 0`).
pub(crate) fn layer_norm(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> bool {
    if !cpu::x86_avx2_fma()
        || c > LN_MAX_C
        || c == 0
        || super::kernels::check_norm(buf, c, q).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_norm` just verified gamma/beta = c, lut = 256,
    // buf.len() % c == 0; 1 ≤ c ≤ 2048.
    unsafe { ln_run(buf, c, q) };
    true
}

/// The AVX2 LayerNorm with its own checks, for tests and benchmarks (`c > 2048` runs the
/// portable code).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn layer_norm_avx2(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    super::kernels::check_norm(buf, c, q)?;
    if c > LN_MAX_C {
        return super::kernels::layer_norm_reference(buf, c, q);
    }
    // SAFETY: features per the contract, parameters checked just above.
    unsafe { ln_run(buf, c, q) };
    Ok(())
}

/// `E = C²·eps_q8 / 256` (as `kernels::ln_eps`).
fn ln_eps(c: usize, q: &NormQ<'_>) -> u64 {
    let cc = c as u64;
    (cc * cc).saturating_mul(q.eps_q8.max(0) as u64) >> 8
}

/// Stages, for channels `0..c8`, γ as `i32` and, per 8-channel group [even lanes 0 2 4 6,
/// odd lanes 1 3 5 7], `β·2^16 + kt` (the rounding constant of the second shift, see `Rq`).
fn ln_stage(q: &NormQ<'_>, c8: usize, kt: i64, g32: &mut [i32], kb: &mut [i64]) {
    for ch in 0..c8 {
        g32[ch] = q.gamma[ch] as i32;
        let (grp, l) = (ch / 8, ch % 8);
        kb[grp * 8 + (l % 2) * 4 + l / 2] = ((q.beta[ch] as i64) << 16).wrapping_add(kt);
    }
}

/// Per-pixel values of the AVX2 LayerNorms: the reference's statistics (`ln_stats`, with
/// [`isqrt_sse2`]) and the constants of `x̂·2^16 = requant64(num·inv, 46 − k)` in 8 lanes.
#[derive(Clone, Copy)]
struct LnPx {
    inv: i64,
    k: i32,
    /// `S1` in every 32-bit lane (`|S1| < 2^31`, see the callers).
    s1v: __m256i,
    /// `inv'` in every 32-bit lane, `inv = inv' + b·2^32`.
    invv: __m256i,
    /// High halves of the 64-bit lanes if `b`, else 0.
    bmask: __m256i,
    /// `2^(s−1) + 2^63`, `s = 46 − k`, in every 64-bit lane.
    rk: __m256i,
    /// `s`.
    cnt: __m128i,
    /// `low32(2^(63−s))` if `s ≥ 32` (else 0) in every 32-bit lane.
    corr: __m256i,
}

/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn ln_px(cc: i64, e: u64, s1: i64, s2: i64) -> LnPx {
    // The reference's scalar statistics.
    let d = (cc * s2 - s1 * s1).max(0) as u64;
    let v = d.saturating_add(e).max(1);
    let bits = 64 - v.leading_zeros() as i32;
    let k = ((62 - bits) / 2).max(0);
    let r = isqrt_sse2(v << (2 * k)).max(1);
    let inv = ((1u64 << 62) / r) as i64;
    // inv ∈ [2^30, 2^32] (r ≥ 2^30): inv = inv' + b·2^32 with inv' an i32.
    let b = inv >= 1 << 31;
    let invp = if b { inv - (1i64 << 32) } else { inv } as i32;
    let s = (46 - k) as u32; // 16..=46
    let corr_s = if s >= 32 {
        (1u64 << (63 - s)) as u32
    } else {
        0
    };
    // SAFETY: register-only AVX2 operations.
    unsafe {
        LnPx {
            inv,
            k,
            s1v: _mm256_set1_epi32(s1 as i32),
            invv: _mm256_set1_epi32(invp),
            bmask: if b {
                _mm256_set1_epi64x(-1i64 << 32)
            } else {
                _mm256_setzero_si256()
            },
            rk: _mm256_set1_epi64x((1i64 << (s - 1)).wrapping_add(i64::MIN)),
            cnt: _mm_cvtsi32_si128(s as i32),
            corr: _mm256_set1_epi32(corr_s as i32),
        }
    }
}

/// `x̂·2^16 = requant64(num·inv, 46 − k)` of 8 `i32` lanes `num` (`|num| < 2^31`): `num·inv`
/// in 64 bits, even and odd lanes; the result's `|·| ≤ 2^16·√c·(1 + 2^−29) + 1 < 2^31` (for
/// `c ≤ 2048`), so its low 32 bits are the value.
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn ln_xh(num: __m256i, p: &LnPx) -> __m256i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        // num·inv = num·inv' + b·(num << 32), 64-bit, even and odd lanes.
        let pe = _mm256_add_epi64(
            _mm256_mul_epi32(num, p.invv),
            _mm256_and_si256(_mm256_slli_epi64::<32>(num), p.bmask),
        );
        let po = _mm256_add_epi64(
            _mm256_mul_epi32(_mm256_srli_epi64::<32>(num), p.invv),
            _mm256_and_si256(num, p.bmask),
        );
        let pe = _mm256_srl_epi64(_mm256_add_epi64(pe, p.rk), p.cnt);
        let po = _mm256_srl_epi64(_mm256_add_epi64(po, p.rk), p.cnt);
        _mm256_sub_epi32(
            _mm256_blend_epi32::<0b1010_1010>(pe, _mm256_slli_epi64::<32>(po)),
            p.corr,
        )
    }
}

/// `x̂·γ + kb` (64-bit, exact: `|x̂·2^16·γ| < 2^31·2^15`) of the even and odd lanes of `xh`,
/// channels `i..i + 8` of the staged `g32` and `kb` (see [`ln_stage`]).
///
/// # Safety
/// AVX2 available; `g32` and `kb` readable at `i..i + 8`.
#[inline(always)]
unsafe fn ln_acc(xh: __m256i, g32: *const i32, kb: *const i64, i: usize) -> (__m256i, __m256i) {
    // SAFETY: AVX2 available; 8 staged values at i per the contract.
    unsafe {
        let g = _mm256_loadu_si256(g32.add(i) as *const __m256i);
        let ae = _mm256_mul_epi32(xh, g);
        let ao = _mm256_mul_epi32(_mm256_srli_epi64::<32>(xh), _mm256_srli_epi64::<32>(g));
        let kp = kb.add(i) as *const __m256i;
        (
            _mm256_add_epi64(ae, _mm256_loadu_si256(kp)),
            _mm256_add_epi64(ao, _mm256_loadu_si256(kp.add(1))),
        )
    }
}

/// Saturates 8 `i32` lanes to int8 and stores them at `p`.
///
/// # Safety
/// AVX2 available; `p` writable for 8 bytes.
#[inline(always)]
unsafe fn store8(p: *mut i8, o: __m256i) {
    // SAFETY: AVX2 available; 8 writable bytes at p per the contract.
    unsafe {
        let o8 = _mm256_packs_epi16(_mm256_packs_epi32(o, o), _mm256_setzero_si256());
        let lo = _mm256_cvtsi256_si32(o8) as u32 as u64;
        let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(o8)) as u32 as u64;
        core::ptr::write_unaligned(p as *mut u64, lo | hi << 32);
    }
}

/// # Safety
/// Parameters validated, `1 ≤ c ≤ 2048`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ln_run(buf: &mut [i8], c: usize, q: &NormQ<'_>) {
    let cc = c as i64;
    let e = ln_eps(c, q);
    let c8 = c / 8 * 8;
    let c16 = c / 16 * 16;
    let t = q.shift.clamp(1, 62) as u32;
    let mut g32 = [0i32; LN_MAX_C];
    let mut kb = [0i64; LN_MAX_C];
    ln_stage(
        q,
        c8,
        (1i64 << (t - 1)).wrapping_add(i64::MIN),
        &mut g32,
        &mut kb,
    );
    let corr_t = if t >= 32 {
        (1u64 << (63 - t)) as u32
    } else {
        0
    };
    // SAFETY (whole body): AVX2 available; loads of 16 (8) bytes at i + 16 ≤ c16 (i + 8 ≤ c8)
    // inside a pixel of c bytes; staged loads at i + 8 ≤ c8 ≤ 2048.
    unsafe {
        let cnt_t = _mm_cvtsi32_si128(t as i32);
        let off_t = _mm256_set1_epi32(q.out_zero.wrapping_sub(corr_t as i32));
        let ones = _mm256_set1_epi16(1);
        let ccv = _mm256_set1_epi32(c as i32);
        for px in buf.chunks_exact_mut(c) {
            let p = px.as_mut_ptr();
            let (mut v1, mut v2) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            let mut i = 0;
            while i < c16 {
                let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(i) as *const __m128i));
                v1 = _mm256_add_epi32(v1, _mm256_madd_epi16(v, ones));
                v2 = _mm256_add_epi32(v2, _mm256_madd_epi16(v, v));
                i += 16;
            }
            // |S1| ≤ 128·c, S2 ≤ 2^14·c < 2^31: exact in i32.
            let (mut s1, mut s2) = (hsum(v1) as i64, hsum(v2) as i64);
            for &v in &px[c16..] {
                s1 += v as i64;
                s2 += (v as i64) * (v as i64);
            }
            let lp = ln_px(cc, e, s1, s2);
            let mut i = 0;
            while i < c8 {
                let qv = _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(i) as *const __m128i));
                // |C·q − S1| ≤ 256·c: exact in i32.
                let num = _mm256_sub_epi32(_mm256_mullo_epi32(qv, ccv), lp.s1v);
                let xh = ln_xh(num, &lp);
                let (ae, ao) = ln_acc(xh, g32.as_ptr(), kb.as_ptr(), i);
                let ae = _mm256_srl_epi64(ae, cnt_t);
                let ao = _mm256_srl_epi64(ao, cnt_t);
                let o = _mm256_add_epi32(
                    _mm256_blend_epi32::<0b1010_1010>(ae, _mm256_slli_epi64::<32>(ao)),
                    off_t,
                );
                store8(p.add(i), o);
                i += 8;
            }
            for (i, x) in px.iter_mut().enumerate().skip(c8) {
                let num = cc * (*x as i64) - s1;
                let xh = requant64(num.wrapping_mul(lp.inv), 46 - lp.k);
                let acc = xh
                    .wrapping_mul(q.gamma[i] as i64)
                    .wrapping_add((q.beta[i] as i64) << 16);
                *x = sat_i8(q.out_zero.wrapping_add(requant64(acc, q.shift) as i32));
            }
            apply_lut(px, q.lut);
        }
    }
}

/// Runs the AVX2 LayerNorm of 16-bit inputs (`kernels::layer_norm_i16`) if the CPU has it and
/// `c ≤ 2048` (else `false`). Parameters validated by the caller (`gamma`, `beta`: `c`; `lut`:
/// 256; `x.len() % c == 0`, `y.len() == x.len()`).
pub(crate) fn layer_norm_i16(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> bool {
    if !cpu::x86_avx2_fma()
        || c > LN_MAX_C
        || c == 0
        || super::kernels::check_norm16(x, c, q, y).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_norm16` just verified gamma/beta = c, lut = 256,
    // x.len() % c == 0 and y.len() == x.len(); 1 ≤ c ≤ 2048.
    unsafe { ln16_run(x, c, q, y) };
    true
}

/// The AVX2 LayerNorm of 16-bit inputs with its own checks, for tests and benchmarks
/// (`c > 2048` runs the portable code).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn layer_norm_i16_avx2(
    x: &[i16],
    c: usize,
    q: &NormQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    super::kernels::check_norm16(x, c, q, y)?;
    if c > LN_MAX_C {
        return super::kernels::layer_norm_i16_reference(x, c, q, y);
    }
    // SAFETY: features per the contract, parameters checked just above.
    unsafe { ln16_run(x, c, q, y) };
    Ok(())
}

/// Clamps the signed 64-bit lanes of `v` to `lo..=hi`.
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn clamp64(v: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        let v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
        _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v))
    }
}

/// The AVX2 LayerNorm of 16-bit inputs. Statistics: `S1` by `vpmaddwd` with ones (pair sums
/// `|·| ≤ 2^16`, `|S1| ≤ 2^15·c`: exact in `i32`), `S2` by `vpmaddwd` of `x` with itself —
/// each pair sum is in `0..=2^31`, exact as a `u32` (not as an `i32`: `2·(−2^15)² = 2^31`), so
/// the even and odd 32-bit lanes are zero-extended and summed in 64-bit lanes. Then the same
/// per-pixel statistics and `x̂·2^16` as the int8 kernel (`|C·q − S1| ≤ 2^16·c` fits `i32`).
///
/// Output without a table: as the int8 kernel. With a table (`ln_out_lerp`): `acc = x̂·γ +
/// β·2^16` in 64 bits; for `T > 8`, `v8 = requant64(acc, T − 8)` by the biased logical shift
/// (`(acc + 2^(s−1) + 2^63) >>ₗ s = (acc + 2^(s−1)) >> s + 2^(63−s)`, the `2^(63−s)` taken off
/// together with adding `z_out·2^8`), for `T ≤ 8`, `v8 = acc << (8 − max(T, 0))`; then
/// `u = z_out·2^8 + v8` and its clamp to `−2^15..=127·2^8` in 64-bit lanes (wrapping adds, as
/// the reference), after which `u` fits `i32`: one `vpgatherdd` of a staged table
/// `t[j] | (t[min(j+1, 255)] − t[j]) << 16` at `j = (u >> 8) + 128`, and the interpolation in
/// `i32`. The `c % 8` tail channels run the reference's scalar code.
///
/// # Safety
/// Parameters validated, `1 ≤ c ≤ 2048`, `y.len() == x.len()`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn ln16_run(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) {
    use super::kernels::{ln_out, ln_out_lerp};
    let cc = c as i64;
    let e = ln_eps(c, q);
    let c8 = c / 8 * 8;
    let c16 = c / 16 * 16;
    // The second rounding step: kb constant, left and right shift counts, and the 64-bit
    // constant added after the shifts (table path) or the 32-bit one (no table).
    let oz8 = (q.out_zero as i64) << 8;
    let (kt, lsh, rsh, cst) = match q.lut {
        None => {
            let t = q.shift.clamp(1, 62) as u32;
            let corr = if t >= 32 {
                (1u64 << (63 - t)) as u32
            } else {
                0
            };
            let kt = (1i64 << (t - 1)).wrapping_add(i64::MIN);
            (kt, 0u32, t, q.out_zero.wrapping_sub(corr as i32) as i64)
        }
        Some(_) if q.shift > 8 => {
            let s = (q.shift - 8).clamp(1, 62) as u32;
            let kt = (1i64 << (s - 1)).wrapping_add(i64::MIN);
            (kt, 0, s, oz8.wrapping_sub(1i64 << (63 - s)))
        }
        Some(_) => (0, (8 - q.shift.max(0)) as u32, 0, oz8),
    };
    let mut g32 = [0i32; LN_MAX_C];
    let mut kb = [0i64; LN_MAX_C];
    ln_stage(q, c8, kt, &mut g32, &mut kb);
    let mut tp = [0i32; 256];
    if let Some(t) = q.lut {
        for (j, w) in tp.iter_mut().enumerate() {
            let (lo, hi) = (t[j] as i32, t[(j + 1).min(255)] as i32);
            *w = (lo & 0xffff) | ((hi - lo) << 16);
        }
    }
    // SAFETY (whole body): AVX2 available; loads of 16 (8) i16 at i + 16 ≤ c16 (i + 8 ≤ c8)
    // inside a pixel of c values of x, 8-byte stores at i + 8 ≤ c8 inside the same pixel of y
    // (y.len() == x.len()); staged loads at i + 8 ≤ c8 ≤ 2048; gathers from tp at indices
    // (u >> 8) + 128 ∈ 0..=255 (u clamped to −2^15..=127·2^8 first).
    unsafe {
        let ones = _mm256_set1_epi16(1);
        let lo32 = _mm256_set1_epi64x(0xffff_ffff);
        let ccv = _mm256_set1_epi32(c as i32);
        let (lcnt, rcnt) = (_mm_cvtsi32_si128(lsh as i32), _mm_cvtsi32_si128(rsh as i32));
        let off32 = _mm256_set1_epi32(cst as i32);
        let cst64 = _mm256_set1_epi64x(cst);
        let (ulo, uhi) = (_mm256_set1_epi64x(-128 << 8), _mm256_set1_epi64x(127 << 8));
        let (c128, m255, r128) = (
            _mm256_set1_epi32(128),
            _mm256_set1_epi32(255),
            _mm256_set1_epi32(128),
        );
        for (xs, ys) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            let (p, o) = (xs.as_ptr(), ys.as_mut_ptr());
            let (mut v1, mut v2) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            let mut i = 0;
            while i < c16 {
                let v = _mm256_loadu_si256(p.add(i) as *const __m256i);
                v1 = _mm256_add_epi32(v1, _mm256_madd_epi16(v, ones));
                let m = _mm256_madd_epi16(v, v);
                v2 = _mm256_add_epi64(
                    v2,
                    _mm256_add_epi64(_mm256_and_si256(m, lo32), _mm256_srli_epi64::<32>(m)),
                );
                i += 16;
            }
            let (mut s1, mut s2) = (hsum(v1) as i64, hsum64(v2));
            for &v in &xs[c16..] {
                s1 += v as i64;
                s2 += (v as i64) * (v as i64);
            }
            let lp = ln_px(cc, e, s1, s2);
            let mut i = 0;
            while i < c8 {
                let qv = _mm256_cvtepi16_epi32(_mm_loadu_si128(p.add(i) as *const __m128i));
                // |C·q − S1| ≤ 2^16·c: exact in i32.
                let num = _mm256_sub_epi32(_mm256_mullo_epi32(qv, ccv), lp.s1v);
                let xh = ln_xh(num, &lp);
                let (ae, ao) = ln_acc(xh, g32.as_ptr(), kb.as_ptr(), i);
                let ae = _mm256_srl_epi64(_mm256_sll_epi64(ae, lcnt), rcnt);
                let ao = _mm256_srl_epi64(_mm256_sll_epi64(ao, lcnt), rcnt);
                let r = if q.lut.is_none() {
                    _mm256_add_epi32(
                        _mm256_blend_epi32::<0b1010_1010>(ae, _mm256_slli_epi64::<32>(ao)),
                        off32,
                    )
                } else {
                    let ue = clamp64(_mm256_add_epi64(ae, cst64), ulo, uhi);
                    let uo = clamp64(_mm256_add_epi64(ao, cst64), ulo, uhi);
                    let u = _mm256_blend_epi32::<0b1010_1010>(ue, _mm256_slli_epi64::<32>(uo));
                    let j = _mm256_add_epi32(_mm256_srai_epi32::<8>(u), c128);
                    let f = _mm256_and_si256(u, m255);
                    let w = _mm256_i32gather_epi32::<4>(tp.as_ptr(), j);
                    let lo = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(w));
                    let d = _mm256_srai_epi32::<16>(w);
                    _mm256_add_epi32(
                        lo,
                        _mm256_srai_epi32::<8>(_mm256_add_epi32(_mm256_mullo_epi32(d, f), r128)),
                    )
                };
                store8(o.add(i), r);
                i += 8;
            }
            for i in c8..c {
                let num = cc * xs[i] as i64 - s1;
                ys[i] = match q.lut {
                    None => ln_out(num, lp.inv, lp.k, i, q),
                    Some(t) => ln_out_lerp(num, lp.inv, lp.k, i, q, t),
                };
            }
        }
    }
}

/// Sum of the 4 64-bit lanes of `v` (wrapping).
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn hsum64(v: __m256i) -> i64 {
    // SAFETY: register-only AVX2/SSE2 operations.
    unsafe {
        let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
        _mm_cvtsi128_si64(s)
    }
}

/// `floor(sqrt(v))`, exactly — the same value as [`super::fixed::isqrt_u64`] (the floor of the
/// square root is unique), without its 32 data-dependent branches: the IEEE square root of
/// `v` rounded to f64 is within 1 of the result (relative errors ≤ 2^−53 on `v`, 2^−53 on the
/// root, times a root < 2^32), and one correction step each way makes it exact.
#[inline(always)]
pub(crate) fn isqrt_sse2(v: u64) -> u64 {
    // SAFETY: SSE2 is part of x86-64.
    let f = unsafe { _mm_cvtsd_f64(_mm_sqrt_sd(_mm_setzero_pd(), _mm_set_sd(v as f64))) };
    let mut r = (f as u64).min((1 << 32) - 1);
    if (r as u128) * (r as u128) > v as u128 {
        r -= 1;
    }
    if ((r + 1) as u128) * ((r + 1) as u128) <= v as u128 {
        r += 1;
    }
    r
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

/// Whether the AVX2 ADD takes these parameters.
fn add_takes(q: &AddQ) -> bool {
    (-128..=127).contains(&q.a_zero) && (-128..=127).contains(&q.b_zero)
}

/// Runs the AVX2 ADD (`a = a + b`) if the CPU has it and it takes `q` (else `false`).
/// `b.len() == a.len()` checked by the caller.
pub(crate) fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> bool {
    if !cpu::x86_avx2_fma() || !add_takes(q) || a.len() != b.len() {
        return false;
    }
    // SAFETY: AVX2 present, equal lengths, zero points in range.
    unsafe { add_run(a, b, q) };
    true
}

/// The AVX2 ADD with its own checks, for tests and benchmarks (parameters it does not take run
/// the portable loop).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn add_avx2(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    if add_takes(q) {
        // SAFETY: features per the contract, lengths checked just above.
        unsafe { add_run(a, b, q) };
        Ok(())
    } else {
        super::kernels::add_reference(a, b, q)
    }
}

/// `out_zero + requant64((a − z_a)·m_a + (b − z_b)·m_b)` of the low 8 bytes of `av` and `bv`
/// (zero points in `-128..=127`: `|a − z_a| ≤ 255` fits i32; both products in 64 bits).
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn add8(
    av: __m128i,
    bv: __m128i,
    (za, ma): (__m256i, __m256i),
    (zb, mb): (__m256i, __m256i),
    rq: Rq,
) -> __m256i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        let x = _mm256_sub_epi32(_mm256_cvtepi8_epi32(av), za);
        let y = _mm256_sub_epi32(_mm256_cvtepi8_epi32(bv), zb);
        let pe = _mm256_add_epi64(_mm256_mul_epi32(x, ma), _mm256_mul_epi32(y, mb));
        let po = _mm256_add_epi64(
            _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), ma),
            _mm256_mul_epi32(_mm256_srli_epi64::<32>(y), mb),
        );
        rq.finish(pe, po)
    }
}

/// # Safety
/// `a.len() == b.len()`, zero points in `-128..=127`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn add_run(a: &mut [i8], b: &[i8], q: &AddQ) {
    let n = a.len();
    let n16 = n / 16 * 16;
    // SAFETY (whole body): AVX2 available; 16-byte loads and stores at i + 16 ≤ n16 ≤ n.
    unsafe {
        let rq = Rq::new(q.shift, q.out_zero);
        let (za, zb) = (_mm256_set1_epi32(q.a_zero), _mm256_set1_epi32(q.b_zero));
        let (ma, mb) = (_mm256_set1_epi32(q.a_mult), _mm256_set1_epi32(q.b_mult));
        let mut i = 0;
        while i < n16 {
            let av = _mm_loadu_si128(a.as_ptr().add(i) as *const __m128i);
            let bv = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            let r0 = add8(av, bv, (za, ma), (zb, mb), rq);
            let (ah, bh) = (_mm_unpackhi_epi64(av, av), _mm_unpackhi_epi64(bv, bv));
            let r1 = add8(ah, bh, (za, ma), (zb, mb), rq);
            _mm_storeu_si128(a.as_mut_ptr().add(i) as *mut __m128i, sat16(r0, r1));
            i += 16;
        }
    }
    for (x, &y) in a[n16..].iter_mut().zip(&b[n16..]) {
        *x = q.add(*x, y);
    }
}

/// Runs the AVX2 quantization (see `kernels::quantize`) if the CPU has it (else `false`).
/// Parameters validated by the caller.
pub(crate) fn quantize(x: &[f32], c: usize, scale: &[f32], zero: &[i8], xq: &mut [i8]) -> bool {
    if !cpu::x86_avx2_fma() || super::kernels::check_quantize(x, c, scale, zero, xq).is_err() {
        return false;
    }
    // SAFETY: AVX2 present; `check_quantize` just verified equal lengths, scale and zero of
    // the same non-zero length and whole pixels when per channel.
    unsafe { quantize_run(x, c, scale, zero, xq) };
    true
}

/// The AVX2 quantization with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn quantize_avx2(
    x: &[f32],
    c: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    super::kernels::check_quantize(x, c, scale, zero, xq)?;
    // SAFETY: features per the contract, parameters checked just above.
    unsafe { quantize_run(x, c, scale, zero, xq) };
    Ok(())
}

/// 8 values: `sat_i8((roundf(x / s) as i32).saturating_add(z))`.
///
/// `roundf` (half away from zero) is `t = trunc(r)`, plus `copysign(1, r)` when
/// `|r − t| ≥ 0.5` (`r − t` is exact); infinities give `t = ±∞`, `r − t = NaN`, no step. The
/// result is then clamped to `±512` (any `r` beyond saturates the int8 result the same way,
/// zero points being in `-128..=127`) and NaN mapped to 0, as `as i32` does, so the
/// truncating conversion is exact.
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn quant8(x: __m256, s: __m256, z: __m256i) -> __m256i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        let r = _mm256_div_ps(x, s);
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(r);
        let sign = _mm256_and_ps(r, _mm256_set1_ps(-0.0));
        let d = _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(r, t));
        let step = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(d, _mm256_set1_ps(0.5)),
            _mm256_or_ps(_mm256_set1_ps(1.0), sign),
        );
        let v = _mm256_add_ps(t, step);
        let v = _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
        let v = _mm256_max_ps(
            _mm256_min_ps(v, _mm256_set1_ps(512.0)),
            _mm256_set1_ps(-512.0),
        );
        _mm256_add_epi32(_mm256_cvttps_epi32(v), z)
    }
}

/// # Safety
/// `xq.len() == x.len()`, parameters as `kernels::quantize` checks; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_run(x: &[f32], c: usize, scale: &[f32], zero: &[i8], xq: &mut [i8]) {
    let per_ch = scale.len() == c && c > 1;
    let (row, n) = if per_ch {
        (c, x.len() / c)
    } else {
        (x.len(), 1)
    };
    let r16 = row / 16 * 16;
    // SAFETY (whole body): AVX2 available; loads/stores of 16 values at j + 16 ≤ r16 ≤ row
    // inside row `i` of x/xq (n·row = x.len()), and of scale/zero at j + 16 ≤ c when per_ch.
    unsafe {
        let (s0, z0) = (_mm256_set1_ps(scale[0]), _mm256_set1_epi32(zero[0] as i32));
        for i in 0..n {
            let xr = x.as_ptr().add(i * row);
            let qr = xq.as_mut_ptr().add(i * row);
            let mut j = 0;
            while j < r16 {
                let (sa, sb, za, zb) = if per_ch {
                    let zv = _mm_loadu_si128(zero.as_ptr().add(j) as *const __m128i);
                    (
                        _mm256_loadu_ps(scale.as_ptr().add(j)),
                        _mm256_loadu_ps(scale.as_ptr().add(j + 8)),
                        _mm256_cvtepi8_epi32(zv),
                        _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(zv, zv)),
                    )
                } else {
                    (s0, s0, z0, z0)
                };
                let a = quant8(_mm256_loadu_ps(xr.add(j)), sa, za);
                let b = quant8(_mm256_loadu_ps(xr.add(j + 8)), sb, zb);
                _mm_storeu_si128(qr.add(j) as *mut __m128i, sat16(a, b));
                j += 16;
            }
        }
    }
    for i in 0..n {
        for j in r16..row {
            let ch = if per_ch { j } else { 0 };
            let r = libm::roundf(x[i * row + j] / scale[ch]);
            xq[i * row + j] = sat_i8((r as i32).saturating_add(zero[ch] as i32));
        }
    }
}

/// Runs the AVX2 dequantization (see `kernels::dequantize`) if the CPU has it (else `false`).
pub(crate) fn dequantize(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> bool {
    if !cpu::x86_avx2_fma() || y.len() != yq.len() {
        return false;
    }
    // SAFETY: AVX2 present, equal lengths.
    unsafe { dequantize_run(yq, z, s, y) };
    true
}

/// The AVX2 dequantization with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn dequantize_avx2(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> Result<(), Error> {
    check_len("output", y, yq.len())?;
    // SAFETY: features per the contract, lengths checked just above.
    unsafe { dequantize_run(yq, z, s, y) };
    Ok(())
}

/// # Safety
/// `y.len() == yq.len()`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dequantize_run(yq: &[i8], z: i32, s: f32, y: &mut [f32]) {
    let n8 = yq.len() / 8 * 8;
    // SAFETY: AVX2 available; 8-value loads and stores at i + 8 ≤ n8 ≤ len.
    unsafe {
        let (zv, sv) = (_mm256_set1_epi32(z), _mm256_set1_ps(s));
        let mut i = 0;
        while i < n8 {
            let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(yq.as_ptr().add(i) as *const __m128i));
            let v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zv)), sv);
            _mm256_storeu_ps(y.as_mut_ptr().add(i), v);
            i += 8;
        }
    }
    for (o, &q) in y[n8..].iter_mut().zip(&yq[n8..]) {
        *o = (q as i32).wrapping_sub(z) as f32 * s;
    }
}

/// Runs the AVX2 bilinear resize (see `kernels::resize_bilinear`) if the CPU has it and
/// `c ≥ 8` (else `false`). Shapes and parameter lengths validated by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_bilinear(
    x: &[i8],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) -> bool {
    if !cpu::x86_avx2_fma()
        || c < 8
        || super::kernels::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo)).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_resize` just verified x = h·w·c, y = ho·wo·c (products
    // without overflow), in_zero and mult of length 1 or c, all dimensions ≥ 1.
    unsafe { resize_run(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo)) };
    true
}

/// The AVX2 bilinear resize with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
#[allow(clippy::too_many_arguments)]
pub unsafe fn resize_bilinear_avx2(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    super::kernels::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe { resize_run(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo)) };
    Ok(())
}

/// Per output pixel and 8 channels: `s = Σ w_k·(x_k − z)` in `i32` (the Q20 weights sum to
/// `2^20` and `|x − z| ≤ 255`, so `|s| < 2^28`: exact, as the reference's `i64` sum), then
/// [`Rq`] with the shift `shift + 20` (the reference's `requant64(s·m, shift + 20)`, `s·m`
/// exact in 64 bits) and saturation. `c % 8` tail channels scalar.
///
/// # Safety
/// Shapes validated (see `resize_bilinear`); AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn resize_run(
    x: &[i8],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) {
    use super::kernels::taps_q10;
    let c8 = c / 8 * 8;
    let zat = |ch: usize| in_zero[if in_zero.len() == 1 { 0 } else { ch }];
    let mat = |ch: usize| mult[if mult.len() == 1 { 0 } else { ch }];
    // SAFETY (whole body): AVX2 available; 8-byte loads at p + ch + 8 ≤ p + c8 inside a pixel
    // of x, 8-value loads of in_zero/mult at ch + 8 ≤ c8 ≤ c when they are per channel, 8-byte
    // stores at o + ch + 8 ≤ o + c inside y.
    unsafe {
        let rq = Rq::new(shift.saturating_add(20), out_zero);
        let (zb, mb) = (
            _mm256_set1_epi32(zat(0) as i32),
            _mm256_set1_epi32(mat(0) as i32),
        );
        for oy in 0..ho {
            let (y0, y1, ly) = taps_q10(oy, h, ho);
            for ox in 0..wo {
                let (x0, x1, lx) = taps_q10(ox, w, wo);
                let wts = [
                    (1024 - ly) * (1024 - lx),
                    (1024 - ly) * lx,
                    ly * (1024 - lx),
                    ly * lx,
                ];
                let wv = wts.map(|v| _mm256_set1_epi32(v as i32));
                let ps = [
                    (y0 * w + x0) * c,
                    (y0 * w + x1) * c,
                    (y1 * w + x0) * c,
                    (y1 * w + x1) * c,
                ];
                let o = (oy * wo + ox) * c;
                let mut ch = 0;
                while ch < c8 {
                    let z = if in_zero.len() == 1 {
                        zb
                    } else {
                        _mm256_cvtepi8_epi32(_mm_loadl_epi64(
                            in_zero.as_ptr().add(ch) as *const __m128i
                        ))
                    };
                    let m = if mult.len() == 1 {
                        mb
                    } else {
                        _mm256_cvtepi16_epi32(_mm_loadu_si128(
                            mult.as_ptr().add(ch) as *const __m128i
                        ))
                    };
                    let mut s = _mm256_setzero_si256();
                    for k in 0..4 {
                        let v = _mm_loadl_epi64(x.as_ptr().add(ps[k] + ch) as *const __m128i);
                        let d = _mm256_sub_epi32(_mm256_cvtepi8_epi32(v), z);
                        s = _mm256_add_epi32(s, _mm256_mullo_epi32(d, wv[k]));
                    }
                    let r = rq.apply(s, m);
                    let t = _mm256_packs_epi16(_mm256_packs_epi32(r, r), _mm256_setzero_si256());
                    let lo = _mm256_cvtsi256_si32(t) as u32 as u64;
                    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(t)) as u32 as u64;
                    core::ptr::write_unaligned(
                        y.as_mut_ptr().add(o + ch) as *mut u64,
                        lo | hi << 32,
                    );
                    ch += 8;
                }
                for ch in c8..c {
                    let z = zat(ch) as i64;
                    let s = wts[0] * (x[ps[0] + ch] as i64 - z)
                        + wts[1] * (x[ps[1] + ch] as i64 - z)
                        + wts[2] * (x[ps[2] + ch] as i64 - z)
                        + wts[3] * (x[ps[3] + ch] as i64 - z);
                    let v = requant64(s.wrapping_mul(mat(ch) as i64), shift.saturating_add(20));
                    y[o + ch] = sat_i8(out_zero.wrapping_add(v as i32));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::isqrt_sse2;
    use crate::quant::fixed::isqrt_u64;
    use std::vec::Vec;

    #[test]
    fn isqrt_sse2_equals_isqrt_u64() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut vals: Vec<u64> = (0u64..5000).collect();
        for r in [
            1u64,
            2,
            3,
            1 << 16,
            (1 << 26) + 1,
            (1 << 31) - 1,
            1 << 31,
            (1 << 32) - 1,
        ] {
            let q = r * r;
            vals.extend([
                q - 1,
                q,
                q + 1,
                q + r,
                q + 2 * r,
                (q + 2 * r).saturating_add(1),
            ]);
        }
        vals.extend([
            u64::MAX,
            u64::MAX - 1,
            1 << 62,
            (1 << 62) - 1,
            1 << 60,
            (1 << 61) + 12345,
        ]);
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            vals.push(s >> (s % 64));
        }
        for v in vals {
            assert_eq!(isqrt_sse2(v), isqrt_u64(v), "{v}");
        }
    }
}
