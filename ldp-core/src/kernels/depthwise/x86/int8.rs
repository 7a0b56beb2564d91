//! x86-64 AVX2 int8 depthwise 3×3 (NHWC, stride 1 or 2; int8 and, for the row-streaming
//! executor, 16-bit outputs). Exactly the integers of the reference in `quant::kernels`
//! (wrapping `i32` sums, exact 64-bit products, the same rounding shifts — see
//! `kernels::isa::x86::Rq`); shapes or parameters it does not take go to the portable kernel.
//!
//! 16 channels per step. The taps of a pixel are paired (`(0,1) (2,3) (4,5) (6,7) (8,–)`),
//! their bytes interleaved (`vpunpcklbw`/`vpunpckhbw`) and sign-extended, so one `vpmaddwd`
//! against the staged weight pairs adds two taps of 8 channels into `i32` (|x·w| ≤ 2^14, pair
//! sums fit). The input zero point is folded into the bias (`bias − z·Σw`, wrapping — exact mod
//! 2^32) and taps outside the map read a row filled with `z`, whose net contribution
//! `(z − z)·w = 0` is the reference's skipped tap. Weights, biases and multipliers are staged
//! per chunk of 256 channels (7.3 KiB of stack with the zero-point row). Takes zero points in
//! `-128..=127` and at least 16 channels; `c % 16` tail channels are scalar.
//!
//! With AVX-512 VNNI (run time, `std`) the first multiple of 64 channels runs `dw_run_vnni`
//! instead: 64 channels per step, four taps per `vpdpbusd` (see there), the rest as above.

use core::arch::x86_64::*;

#[allow(unused_imports)]
use crate::error::{check_len, Error};
use crate::kernels::cpu;
use crate::kernels::depthwise::DwShape;
#[allow(unused_imports)]
use crate::kernels::isa::x86::{apply_lut, sat16, Rq};
#[allow(unused_imports)]
use crate::quant::fixed::{requant, requant64, sat_i8};
use crate::quant::kernels::{ConvOut, ConvQ};

/// Channels staged per depthwise pass.
const DW_CH: usize = 256;

/// Whether the AVX2 depthwise takes these parameters.
fn dw_takes(s: DwShape, q: &ConvQ<'_>) -> bool {
    s.c >= 16 && (-128..=127).contains(&q.in_zero)
}

/// Runs the AVX2 depthwise kernel if the CPU has it and it takes the shape (else `false`).
/// The shapes are checked again here (`check_dw`, O(1)): `false` when they do not hold.
pub(crate) fn depthwise(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) -> bool {
    if !cpu::x86_avx2_fma()
        || !dw_takes(s, q)
        || crate::kernels::depthwise::int8::check_dw(s, x, q, y).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_dw` just verified x = h·w·c, weight = 9c, bias/mult = c,
    // y = ho·wo·c (products without overflow), lut = 256, stride 1 or 2.
    unsafe { run(s, x, q, 0, s.ho(), y) };
    true
}

/// Runs the AVX2 (or VNNI) depthwise kernel with an `i8` output for output rows `oy0..oy1` of
/// the map into `y`, which holds just those rows, if the CPU has it and it takes the shape
/// (else `false`). The whole map must already be validated (`check_dw` with a whole-map
/// output); the band's range and length are checked here (`false` when they do not hold).
/// For the threaded dispatch: each output's bits do not depend on the band it lands in.
// Used by the threaded dispatch (`std`).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) fn depthwise_band(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i8],
) -> bool {
    let band = oy1.checked_sub(oy0).map(|n| n * s.wo() * s.c);
    if !cpu::x86_avx2_fma() || !dw_takes(s, q) || oy1 > s.ho() || band != Some(y.len()) {
        return false;
    }
    // SAFETY: AVX2 present; the map validated by the caller (x = h·w·c, weight = 9c,
    // bias/mult = c, lut = 256 when present, stride 1 or 2); the band's range and length just
    // above.
    unsafe { run(s, x, q, oy0, oy1, y) };
    true
}

/// Whether [`depthwise_band`] takes these parameters on this CPU.
// Used by the threaded dispatch (`std`).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) fn takes(s: DwShape, q: &ConvQ<'_>) -> bool {
    cpu::x86_avx2_fma() && dw_takes(s, q)
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
        || crate::kernels::depthwise::int8::check_dw_rows16(s, x, q, oy0, oy1, y).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_dw_rows16` just verified the shapes, the row range, the
    // lengths and that there is no table.
    unsafe { run(s, x, q, oy0, oy1, y) };
    true
}

/// `depthwise_rows_i16` with its own checks, for tests and benchmarks (shapes the AVX2
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
    crate::kernels::depthwise::int8::check_dw_rows16(s, x, q, oy0, oy1, y)?;
    if dw_takes(s, q) {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { dw_run(s, x, q, oy0, oy1, y, 0) };
        Ok(())
    } else {
        crate::kernels::depthwise::int8::depthwise_rows_i16_portable(s, x, q, oy0, oy1, y)
    }
}

/// The AVX-512 VNNI kernel ([`dw_run_vnni`]) for the channels it takes and the AVX2 one for
/// the rest when the CPU has VNNI, else the AVX2 kernel alone.
///
/// # Safety
/// As [`dw_run`].
unsafe fn run<Y: DwOut>(s: DwShape, x: &[i8], q: &ConvQ<'_>, oy0: usize, oy1: usize, y: &mut [Y]) {
    #[cfg(all(ldp_avx512, feature = "std"))]
    if cpu::x86_vnni() && s.c >= 64 {
        let c64 = s.c / 64 * 64;
        // SAFETY: VNNI and AVX-512 F/BW present (`x86_vnni`); shapes as `dw_run` requires;
        // `c64 ≤ c`.
        unsafe {
            dw_run_vnni(s, x, q, oy0, oy1, y, c64);
            dw_run(s, x, q, oy0, oy1, y, c64);
        }
        return;
    }
    // SAFETY: per this function's contract.
    unsafe { dw_run(s, x, q, oy0, oy1, y, 0) }
}

/// The AVX-512 VNNI depthwise kernel with its own checks, for tests and benchmarks (shapes it
/// does not take run the portable kernel; channels past the last multiple of 64 the AVX2
/// kernel).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/DQ and VNNI, AVX2, FMA and F16C
/// (`is_x86_feature_detected!`).
#[cfg(all(ldp_avx512, feature = "std"))]
pub unsafe fn depthwise_vnni(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    crate::kernels::depthwise::int8::check_dw(s, x, q, y)?;
    if dw_takes(s, q) {
        let c64 = s.c / 64 * 64;
        // SAFETY: features per the contract, shapes checked just above.
        unsafe {
            dw_run_vnni(s, x, q, 0, s.ho(), y, c64);
            dw_run(s, x, q, 0, s.ho(), y, c64);
        }
    } else {
        crate::kernels::depthwise::portable::int8::depthwise(s, x, q, y);
    }
    Ok(())
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
    crate::kernels::depthwise::int8::check_dw(s, x, q, y)?;
    if dw_takes(s, q) {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { dw_run(s, x, q, 0, s.ho(), y, 0) };
    } else {
        crate::kernels::depthwise::portable::int8::depthwise(s, x, q, y);
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
    /// Stores 64 outputs of the VNNI kernel from the requantized `i32` lanes `r[i]` (lane `L`,
    /// dword `d` of `r[i]` = channel `16L + 4i + d`).
    ///
    /// # Safety
    /// AVX-512 F/BW available; `p` valid for 64 writes of `Self`.
    #[cfg(all(ldp_avx512, feature = "std"))]
    unsafe fn store64(p: *mut Self, r: [__m512i; 4]);
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
    #[cfg(all(ldp_avx512, feature = "std"))]
    #[allow(clippy::incompatible_msrv)]
    #[inline(always)]
    unsafe fn store64(p: *mut i8, r: [__m512i; 4]) {
        // SAFETY: AVX-512 BW available, `p` writable for 64 bytes (the contract). The packs
        // saturate per 128-bit lane: lane L of `packs_epi32(r0, r1)` holds channels 16L..16L+8
        // as i16, of `packs_epi32(r2, r3)` 16L+8..16L+16, and `packs_epi16` of the two puts
        // them in order as i8 (saturating to i16 then to i8 is `sat_i8`).
        unsafe {
            let a = _mm512_packs_epi32(r[0], r[1]);
            let b = _mm512_packs_epi32(r[2], r[3]);
            _mm512_storeu_si512(p as *mut _, _mm512_packs_epi16(a, b));
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
    #[cfg(all(ldp_avx512, feature = "std"))]
    #[allow(clippy::incompatible_msrv)]
    #[inline(always)]
    unsafe fn store64(p: *mut i16, r: [__m512i; 4]) {
        // SAFETY: AVX-512 F/BW available, `p` writable for 64 i16 (the contract). Lane L of
        // `a` holds channels 16L..16L+8, of `b` 16L+8..16L+16 (saturated to i16); the 64-bit
        // permutes interleave the lanes back into channel order.
        unsafe {
            let a = _mm512_packs_epi32(r[0], r[1]);
            let b = _mm512_packs_epi32(r[2], r[3]);
            let lo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
            let hi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
            _mm512_storeu_si512(p as *mut _, _mm512_permutex2var_epi64(a, lo, b));
            _mm512_storeu_si512(p.add(32) as *mut _, _mm512_permutex2var_epi64(a, hi, b));
        }
    }
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

/// The nine taps' rows of output pixel `(oy, ox)` from channel `ch0` on: `x` at
/// `(iy·w + ix)·c + ch0` for the taps inside the map (the pixel's channels `ch0..c`), `zrow`
/// (the zero-point row) for the padding ones. Only computes addresses (`wrapping_add`); the
/// kernels read them.
#[inline(always)]
fn tap_rows(
    s: DwShape,
    x: &[i8],
    zrow: *const i8,
    oy: usize,
    ox: usize,
    ch0: usize,
) -> [*const i8; 9] {
    let mut tp = [zrow; 9];
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
            tp[ky * 3 + kx] = x
                .as_ptr()
                .wrapping_add((iy as usize * s.w + ix as usize) * s.c + ch0);
        }
    }
    tp
}

/// Output rows `oy0..oy1` of the map (global geometry and padding) into `y`, which holds just
/// those rows; channels `ch_start..c` (the VNNI kernel did the ones before).
///
/// # Safety
/// Shapes validated (x = h·w·c, weight = 9c, bias/mult = c, y = (oy1 − oy0)·wo·c,
/// oy1 ≤ ho, lut 256 if any), `dw_takes`, `ch_start ≤ c`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dw_run<Y: DwOut>(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [Y],
    ch_start: usize,
) {
    let c = s.c;
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
    let mut ch0 = ch_start.min(c16);
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
                let tp = tap_rows(s, x, zrow.as_ptr(), oy, ox, ch0);
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
    if c16.max(ch_start) < c {
        for oy in oy0..oy1 {
            for ox in 0..wo {
                dw_scalar(s, x, q, y, oy0, oy, ox, c16.max(ch_start));
            }
        }
    }
}

/// The AVX-512 VNNI depthwise: channels `0..c64` (a multiple of 64) of output rows
/// `oy0..oy1`, the same integers as [`dw_run`].
///
/// 64 channels per step. The nine taps' 64-byte rows are offset to unsigned (`x + 128`, an
/// `xor` of the sign bit) and interleaved four taps at a time within each 128-bit lane
/// (`vpunpck{l,h}bw`, then `vpunpck{l,h}wd`: four registers whose dword `d` of lane `L` holds
/// taps `t..t+4` of channel `16L + 4i + d`; the ninth tap alone, zero-extended the same way),
/// so three `vpdpbusd` per register add `(x + 128)·w` for the nine taps (u8 × s8 products, exact,
/// wrapping `i32` sums). The offset and the input zero point are folded into the bias:
/// `bias − (z + 128)·Σw` (wrapping, exact mod 2^32, as the AVX2 kernel's `bias − z·Σw`); taps
/// outside the map read a row of `z` (`(z − z)·w = 0`, the reference's skipped tap). Weights,
/// biases and multipliers are staged per 256 channels in that channel order; requantization as
/// `Rq16`; `vpackssdw` and `vpacksswb` (per lane) restore the channel order.
///
/// # Safety
/// As [`dw_run`], `c64 ≤ c`, `c64 % 64 == 0`; AVX-512 F/BW/VL/DQ and VNNI available.
#[cfg(all(ldp_avx512, feature = "std"))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn dw_run_vnni<Y: DwOut>(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [Y],
    c64: usize,
) {
    use crate::kernels::isa::x86::Rq16;
    let c = s.c;
    let wo = s.wo();
    let z = q.in_zero;
    // SAFETY: AVX-512 F available (this function's contract).
    let rq = unsafe { Rq16::new(q.shift, q.out_zero) };
    // Per 64-channel block: per tap group g (taps 4g..4g+4, the last only tap 8), per register
    // i, 64 bytes = 16 channels × 4 taps; bias and multiplier per register i, 16 channels.
    let mut wst = [0i8; DW_CH * 12];
    let mut bst = [0i32; DW_CH];
    let mut mst = [0i32; DW_CH];
    let zrow = [z as i8; DW_CH];
    let mut ch0 = 0;
    while ch0 < c64 {
        let nch = (c64 - ch0).min(DW_CH);
        for cl in 0..nch {
            let ch = ch0 + cl;
            let wk = &q.weight[ch * 9..ch * 9 + 9];
            // Channel cl of the chunk: block, then lane L, register i, dword d.
            let (blk, r) = (cl / 64, cl % 64);
            let (lane, i, d) = (r / 16, r % 16 / 4, r % 4);
            let slot = i * 16 + lane * 4 + d;
            for g in 0..3 {
                for t in 0..4 {
                    let tap = 4 * g + t;
                    wst[((blk * 3 + g) * 4 + slot / 16) * 64 + (slot % 16) * 4 + t] =
                        if tap < 9 { wk[tap] } else { 0 };
                }
            }
            let sw: i32 = wk.iter().map(|&v| v as i32).sum();
            bst[blk * 64 + slot] = q
                .bias_at(ch)
                .wrapping_sub(z.wrapping_add(128).wrapping_mul(sw));
            mst[blk * 64 + slot] = q.mult_at(ch);
        }
        // SAFETY (whole loop): AVX-512 available; every tap pointer has ≥ nch readable bytes
        // (a pixel's channels ch0..ch0+nch ≤ c64 ≤ c, or the DW_CH-byte zero row) and
        // b + 64 ≤ nch; the staged arrays hold nch entries per kind (12·nch weight bytes); y
        // has the pixel's channels at o..o+nch.
        unsafe {
            let flip = _mm512_set1_epi8(-128);
            let zero = _mm512_setzero_si512();
            for oy in oy0..oy1 {
                for ox in 0..wo {
                    let tp = tap_rows(s, x, zrow.as_ptr(), oy, ox, ch0);
                    let o = ((oy - oy0) * wo + ox) * c + ch0;
                    let mut b = 0;
                    while b < nch {
                        let t: [__m512i; 9] = core::array::from_fn(|k| {
                            _mm512_xor_si512(_mm512_loadu_si512(tp[k].add(b) as *const _), flip)
                        });
                        let wp = wst.as_ptr().add(b / 64 * 3 * 256) as *const __m512i;
                        let mut acc: [__m512i; 4] = core::array::from_fn(|i| {
                            _mm512_loadu_si512(bst.as_ptr().add(b + 16 * i) as *const _)
                        });
                        for g in 0..3 {
                            let (t0, t1, t2, t3) = if g < 2 {
                                (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3])
                            } else {
                                (t[8], zero, zero, zero)
                            };
                            let (a, bb) =
                                (_mm512_unpacklo_epi8(t0, t1), _mm512_unpackhi_epi8(t0, t1));
                            let (cc, dd) =
                                (_mm512_unpacklo_epi8(t2, t3), _mm512_unpackhi_epi8(t2, t3));
                            let v = [
                                _mm512_unpacklo_epi16(a, cc),
                                _mm512_unpackhi_epi16(a, cc),
                                _mm512_unpacklo_epi16(bb, dd),
                                _mm512_unpackhi_epi16(bb, dd),
                            ];
                            for i in 0..4 {
                                acc[i] = _mm512_dpbusd_epi32(
                                    acc[i],
                                    v[i],
                                    _mm512_loadu_si512(wp.add(g * 4 + i) as *const _),
                                );
                            }
                        }
                        let r: [__m512i; 4] = core::array::from_fn(|i| {
                            let m = _mm512_loadu_si512(mst.as_ptr().add(b + 16 * i) as *const _);
                            rq.apply(acc[i], m, _mm512_srli_epi64::<32>(m))
                        });
                        Y::store64(y.as_mut_ptr().add(o + b), r);
                        b += 64;
                    }
                    Y::table(&mut y[o..o + nch], q.lut);
                }
            }
        }
        ch0 += nch;
    }
}
