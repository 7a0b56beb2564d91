//! x86-64 AVX2 (and AVX-512) int8 LayerNorm, exactly the integers of the reference in
//! `quant::kernels`.
//!
//! - **int8 input**: `S1`, `S2` with `vpmaddwd` (exact in `i32` for `c ≤ 2048`); the per-pixel
//!   integer square root (exact, see `isqrt_sse2`) and division are the reference's scalar
//!   code; then per 8 channels `num·inv` in 64 bits (`inv ≤ 2^32` written as `inv' + b·2^32`
//!   with `inv'` an `i32`), the two rounding shifts as in `kernels::isa::x86::Rq`, `x̂·γ` with
//!   `vpmuldq` (|x̂·2^16| ≤ 2^16·√c fits `i32`), the staged `β·2^16` + rounding constant. Takes
//!   `c ≤ 2048` (staging: 24 KiB of stack).
//! - **16-bit input** (`quant::kernels::layer_norm_i16`): the same per-pixel statistics and
//!   `x̂` (`S1` by `vpmaddwd` with ones, `S2` by `vpmaddwd` of `x` with itself summed as `u32`
//!   pairs in 64-bit lanes), with or without the interpolated table (64-bit clamp, then one
//!   `vpgatherdd` per 8 outputs); see `ln16_run`. Takes `c ≤ 2048`. With AVX-512 F/BW/VL/DQ
//!   and VBMI (run time, `std`), `ln16_run_avx512` instead: 16 channels per step, `vpsraq`
//!   rounding, table lookups by `vpermi2b`, the interpolation in 16-bit lanes.

use core::arch::x86_64::*;

#[allow(unused_imports)]
use crate::error::{check_len, Error};
use crate::kernels::cpu;
#[allow(unused_imports)]
use crate::kernels::isa::x86::{apply_lut, sat16, Rq};
#[allow(unused_imports)]
use crate::quant::fixed::{requant, requant64, sat_i8};
use crate::quant::kernels::NormQ;

/// Largest channel count the AVX2 LayerNorms take.
const LN_MAX_C: usize = 2048;

/// Runs the AVX2 LayerNorm if the CPU has it and `c ≤ 2048` (else `false`). Parameters
/// validated by the caller (`gamma`, `beta`: `c`; `lut`: 256; `buf.len() % c == 0`).
pub(crate) fn layer_norm(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> bool {
    if !cpu::x86_avx2_fma()
        || c > LN_MAX_C
        || c == 0
        || crate::kernels::norm::int8::check_norm(buf, c, q).is_err()
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
    crate::kernels::norm::int8::check_norm(buf, c, q)?;
    if c > LN_MAX_C {
        return crate::quant::kernels::layer_norm_reference(buf, c, q);
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

/// The reference's scalar per-pixel statistics (`ln_stats`, with [`isqrt_sse2`]): `inv` and `k`.
#[inline(always)]
fn ln_inv(cc: i64, e: u64, s1: i64, s2: i64) -> (i64, i32) {
    let d = (cc * s2 - s1 * s1).max(0) as u64;
    let v = d.saturating_add(e).max(1);
    let bits = 64 - v.leading_zeros() as i32;
    let k = ((62 - bits) / 2).max(0);
    let r = isqrt_sse2(v << (2 * k)).max(1);
    (((1u64 << 62) / r) as i64, k)
}

/// Per-pixel values of the AVX2 LayerNorms: the reference's statistics (`ln_stats`, with
/// [`isqrt_sse2`]) and the constants of `x̂·2^16 = requant64(num·inv, 46 − k)` in 8 lanes.
#[derive(Clone, Copy)]
struct LnPx {
    /// `S1`.
    s1: i64,
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
    let (inv, k) = ln_inv(cc, e, s1, s2);
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
            s1,
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
        || crate::kernels::norm::int8::check_norm16(x, c, q, y).is_err()
    {
        return false;
    }
    #[cfg(all(ldp_avx512, feature = "std"))]
    if cpu::x86_vbmi() {
        // SAFETY: AVX-512 F/BW/VL/DQ and VBMI present (`x86_vbmi`); parameters as below.
        unsafe { ln16_run_avx512(x, c, q, y) };
        return true;
    }
    // SAFETY: AVX2 present; `check_norm16` just verified gamma/beta = c, lut = 256,
    // x.len() % c == 0 and y.len() == x.len(); 1 ≤ c ≤ 2048.
    unsafe { ln16_run(x, c, q, y) };
    true
}

/// The AVX-512 LayerNorm of 16-bit inputs with its own checks, for tests and benchmarks
/// (`c > 2048` runs the portable code).
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL, DQ and VBMI, AVX2, FMA and F16C
/// (`is_x86_feature_detected!`).
#[cfg(all(ldp_avx512, feature = "std"))]
#[allow(clippy::incompatible_msrv)]
pub unsafe fn layer_norm_i16_avx512(
    x: &[i16],
    c: usize,
    q: &NormQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    crate::kernels::norm::int8::check_norm16(x, c, q, y)?;
    if c > LN_MAX_C {
        return crate::quant::kernels::layer_norm_i16_reference(x, c, q, y);
    }
    // SAFETY: features per the contract, parameters checked just above.
    unsafe { ln16_run_avx512(x, c, q, y) };
    Ok(())
}

/// The AVX-512 form of [`ln16_run`]: the same integers, 16 channels per step, with what AVX-512
/// adds to AVX2.
///
/// - Statistics as there, 32 values per `vpmaddwd`.
/// - Per 16 channels: `num·inv` as the even and odd 64-bit lanes of `vpmuldq` (with
///   `inv = inv' + b·2^32`, as there; `b` is known per pixel, so the loop is specialized on
///   it), the rounding shifts as `requant64` itself (wrapping add, then `vpsraq`: AVX-512 has
///   the 64-bit arithmetic shift AVX2 lacks), `x̂·γ + β·2^16 + 2^(T−1)` with γ and the rounding
///   constant staged in the even/odd lane order, the table path's 64-bit clamp by
///   `vpmaxsq`/`vpminsq`.
/// - Without a table: the low 32 bits plus `z_out`, saturated by `vpmovsdb`.
/// - With a table: `u + 2^15 ∈ 0..=65280` is stored as a `u16` whose high byte is the index
///   `j = (u >> 8) + 128` and whose low byte is the fraction `f = u & 255`; a second loop
///   over the pixel takes 32 of them per step: `vpermi2b` of the 256-byte table held in four
///   registers (two lookups of 128 bytes, chosen by bit 7 of `j`) indexed by the words
///   themselves (the odd bytes, `j`, give `t[j]`), the same for a staged `t[min(j + 1, 255)]`,
///   then in 16-bit lanes `t[j] + (((t[j+1] − t[j])·f + 128) >> 8)` as `vpmulhrsw` of the
///   difference and `f·2^7` (`(a·b·2^7 + 2^14) >> 15 = (a·b + 2^7) >> 8`: exact).
/// - The last `c % 16` (`c % 32`) channels run the same steps under a lane mask (masked loads
///   and stores touch only the pixel's own values).
///
/// # Safety
/// Parameters validated, `1 ≤ c ≤ 2048`, `y.len() == x.len()`; AVX-512 F/BW/VL/DQ/VBMI and
/// AVX2 available.
#[cfg(all(ldp_avx512, feature = "std"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c")]
#[allow(clippy::incompatible_msrv)]
unsafe fn ln16_run_avx512(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) {
    // The second rounding step (`requant64(acc, s)`, its constant `2^(s−1)` staged into `kb`)
    // or, on the table path with `T ≤ 8`, a left shift.
    let (kt, mode, cnt) = match q.lut {
        None => {
            let t = q.shift.clamp(1, 62) as u32;
            (1i64 << (t - 1), Ln16Out::Plain, t)
        }
        Some(_) if q.shift > 8 => {
            let s = (q.shift - 8).clamp(1, 62) as u32;
            (1i64 << (s - 1), Ln16Out::TableRight, s)
        }
        Some(_) => (0, Ln16Out::TableLeft, (8 - q.shift.max(0)) as u32),
    };
    // γ and `β·2^16 + kt` per 16-channel group as [even channels 8][odd channels 8] (the
    // 64-bit lanes of `vpmuldq`); zero past `c`.
    let mut st = Ln16Stage {
        g: [0i64; LN_MAX_C],
        kb: [0i64; LN_MAX_C],
        t0: [0i8; 256],
        t1: [0i8; 256],
        ub: [0u16; LN_MAX_C],
    };
    for ch in 0..c {
        let (grp, l) = (ch / 16, ch % 16);
        let at = grp * 16 + (l % 2) * 8 + l / 2;
        st.g[at] = q.gamma[ch] as i64;
        st.kb[at] = ((q.beta[ch] as i64) << 16).wrapping_add(kt);
    }
    // The table and the table shifted by one (`t[min(j + 1, 255)]`).
    if let Some(t) = q.lut {
        st.t0.copy_from_slice(&t[..256]);
        for j in 0..256 {
            st.t1[j] = t[(j + 1).min(255)];
        }
    }
    // SAFETY: features per this function's contract; parameters as `ln16_px` requires.
    unsafe {
        match mode {
            Ln16Out::Plain => ln16_pixels::<0>(x, c, q, y, cnt, &mut st),
            Ln16Out::TableRight => ln16_pixels::<1>(x, c, q, y, cnt, &mut st),
            Ln16Out::TableLeft => ln16_pixels::<2>(x, c, q, y, cnt, &mut st),
        }
    }
}

/// The output step of [`ln16_run_avx512`].
#[cfg(all(ldp_avx512, feature = "std"))]
#[derive(Clone, Copy)]
enum Ln16Out {
    /// No table: `sat_i8(z_out + requant64(acc, T))`.
    Plain,
    /// Table, `T > 8`: `v8 = requant64(acc, T − 8)`.
    TableRight,
    /// Table, `T ≤ 8`: `v8 = acc << (8 − max(T, 0))`.
    TableLeft,
}

/// The staged parameters and the per-pixel buffer of [`ln16_run_avx512`].
#[cfg(all(ldp_avx512, feature = "std"))]
struct Ln16Stage {
    g: [i64; LN_MAX_C],
    kb: [i64; LN_MAX_C],
    t0: [i8; 256],
    t1: [i8; 256],
    ub: [u16; LN_MAX_C],
}

/// The pixels of [`ln16_run_avx512`], output step `MODE` (`Ln16Out` as 0, 1, 2), `cnt` its
/// shift count.
///
/// # Safety
/// As [`ln16_run_avx512`]; `st` staged by it.
#[cfg(all(ldp_avx512, feature = "std"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c")]
#[allow(clippy::incompatible_msrv)]
unsafe fn ln16_pixels<const MODE: u8>(
    x: &[i16],
    c: usize,
    q: &NormQ<'_>,
    y: &mut [i8],
    cnt: u32,
    st: &mut Ln16Stage,
) {
    let cc = c as i64;
    let e = ln_eps(c, q);
    let groups = c.div_ceil(16);
    let tail = c - (groups - 1) * 16;
    let last_mask: u16 = if tail == 16 { !0 } else { (1u16 << tail) - 1 };
    let c32 = c / 32 * 32;
    let rest = c - c32;
    let rest_mask: u32 = if rest == 0 { 0 } else { (1u32 << rest) - 1 };
    // SAFETY (whole body): the CPU features per the contract. Per pixel of `c` values, group g
    // reads x and writes y at `16g..16g + 16` under a mask whose lanes are `< c` (masked-off
    // lanes are neither read nor written, so no access leaves the pixel); the statistics and
    // the table loop read 32 values at `i + 32 ≤ c32`, then under the mask of the `rest`
    // lanes; staged reads and `ub` writes at `16g + 16 ≤ 16·groups ≤ 2048`; the table loop
    // reads `ub` at `i + 32 ≤ 2048` (`i` a multiple of 32 below `c ≤ 2048`); the tables are
    // read 64 bytes at 0, 64, 128, 192 of 256.
    unsafe {
        let ones = _mm512_set1_epi16(1);
        let lo32 = _mm512_set1_epi64(0xffff_ffff);
        let ccv = _mm512_set1_epi32(c as i32);
        let cntv = _mm_cvtsi32_si128(cnt as i32);
        let ozv = _mm512_set1_epi32(q.out_zero);
        // u + 2^15 = (z_out·2^8 + 2^15) + v8, clamped to 0..=65280.
        let cstv = _mm512_set1_epi64(((q.out_zero as i64) << 8).wrapping_add(1 << 15));
        let (ulo, uhi) = (_mm512_setzero_si512(), _mm512_set1_epi64(255 << 8));
        let tl = |t: &[i8; 256], o: usize| _mm512_loadu_si512(t.as_ptr().add(o) as *const _);
        let (a0, a1, a2, a3) = (
            tl(&st.t0, 0),
            tl(&st.t0, 64),
            tl(&st.t0, 128),
            tl(&st.t0, 192),
        );
        let (b0, b1, b2, b3) = (
            tl(&st.t1, 0),
            tl(&st.t1, 64),
            tl(&st.t1, 128),
            tl(&st.t1, 192),
        );
        let m255 = _mm512_set1_epi16(255);
        let (g, kb, ub) = (st.g.as_ptr(), st.kb.as_ptr(), st.ub.as_mut_ptr());
        // Blocks of `PB` pixels: first every pixel's statistics (independent chains, each a
        // square root and a division, that overlap), then every pixel's outputs.
        const PB: usize = 8;
        let mut stats = [(0i64, 0i64, 0i32); PB];
        for (xb, yb) in x.chunks(c * PB).zip(y.chunks_mut(c * PB)) {
            for (xs, st) in xb.chunks_exact(c).zip(stats.iter_mut()) {
                let p = xs.as_ptr();
                // S1 in 32-bit lanes (pair sums ≤ 2^16), S2 as zero-extended u32 pair sums
                // in 64-bit lanes (each ≤ 2^31), as the AVX2 kernel.
                let (mut v1, mut v2) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                let mut stat = |v: __m512i| {
                    v1 = _mm512_add_epi32(v1, _mm512_madd_epi16(v, ones));
                    let m = _mm512_madd_epi16(v, v);
                    v2 = _mm512_add_epi64(
                        v2,
                        _mm512_add_epi64(_mm512_and_si512(m, lo32), _mm512_srli_epi64::<32>(m)),
                    );
                };
                let mut i = 0;
                while i < c32 {
                    stat(_mm512_loadu_si512(p.add(i) as *const _));
                    i += 32;
                }
                if rest != 0 {
                    stat(_mm512_maskz_loadu_epi16(rest_mask, p.add(c32)));
                }
                let s1 = _mm512_reduce_add_epi32(v1) as i64;
                let s2 = _mm512_reduce_add_epi64(v2);
                let (inv, k) = ln_inv(cc, e, s1, s2);
                *st = (s1, inv, k);
            }
            for ((xs, ys), &(s1, inv, k)) in
                xb.chunks_exact(c).zip(yb.chunks_exact_mut(c)).zip(&stats)
            {
                let (p, o) = (xs.as_ptr(), ys.as_mut_ptr());
                // inv ∈ [2^30, 2^32]: inv = inv' + b·2^32 with inv' an i32 (as `ln_px`).
                let b = inv >= 1 << 31;
                let invv = _mm512_set1_epi32(if b { inv - (1i64 << 32) } else { inv } as i32);
                let s = (46 - k) as u32; // 16..=46
                let px = Ln16Px {
                    s1v: _mm512_set1_epi32(s1 as i32),
                    invv,
                    rk: _mm512_set1_epi64(1i64 << (s - 1)),
                    scnt: _mm_cvtsi32_si128(s as i32),
                };
                for grp in 0..groups {
                    let i = grp * 16;
                    let m = if grp + 1 == groups { last_mask } else { !0 };
                    let qv = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, p.add(i)));
                    let (xe, xo) = if b {
                        ln16_xh::<true>(qv, ccv, &px)
                    } else {
                        ln16_xh::<false>(qv, ccv, &px)
                    };
                    // acc + kt = x̂·γ + β·2^16 + kt (exact: |x̂·γ| < 2^46).
                    let ae = _mm512_add_epi64(
                        _mm512_mul_epi32(xe, _mm512_loadu_si512(g.add(i) as *const _)),
                        _mm512_loadu_si512(kb.add(i) as *const _),
                    );
                    let ao = _mm512_add_epi64(
                        _mm512_mul_epi32(xo, _mm512_loadu_si512(g.add(i + 8) as *const _)),
                        _mm512_loadu_si512(kb.add(i + 8) as *const _),
                    );
                    if MODE == 0 {
                        // The low 32 bits of requant64(acc, T), plus z_out (wrapping, as `ln_out`).
                        let ve = _mm512_sra_epi64(ae, cntv);
                        let vo = _mm512_sra_epi64(ao, cntv);
                        let v = _mm512_mask_blend_epi32(0xaaaa, ve, _mm512_slli_epi64::<32>(vo));
                        let r = _mm512_cvtsepi32_epi8(_mm512_add_epi32(v, ozv));
                        _mm_mask_storeu_epi8(o.add(i), m, r);
                    } else {
                        let (ve, vo) = if MODE == 1 {
                            (_mm512_sra_epi64(ae, cntv), _mm512_sra_epi64(ao, cntv))
                        } else {
                            (_mm512_sll_epi64(ae, cntv), _mm512_sll_epi64(ao, cntv))
                        };
                        // u + 2^15 with u = z_out·2^8 + v8 clamped to −2^15..=127·2^8: adding
                        // 2^15 before the clamp is the same, as nothing wraps (|acc| < 2^47 and
                        // kt ≤ 2^61, so |v8| < 2^62 and |z_out·2^8| ≤ 2^39).
                        let clamp = |v: __m512i| {
                            _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(v, cstv), ulo), uhi)
                        };
                        let u = _mm512_mask_blend_epi32(
                            0xaaaa,
                            clamp(ve),
                            _mm512_slli_epi64::<32>(clamp(vo)),
                        );
                        _mm256_storeu_si256(ub.add(i) as *mut __m256i, _mm512_cvtepi32_epi16(u));
                    }
                }
                if MODE != 0 {
                    let look = |w: __m512i| {
                        let hi = _mm512_movepi8_mask(w);
                        let t = _mm512_mask_blend_epi8(
                            hi,
                            _mm512_permutex2var_epi8(a0, w, a1),
                            _mm512_permutex2var_epi8(a2, w, a3),
                        );
                        let t1 = _mm512_mask_blend_epi8(
                            hi,
                            _mm512_permutex2var_epi8(b0, w, b1),
                            _mm512_permutex2var_epi8(b2, w, b3),
                        );
                        // The odd bytes hold t[j] and t[j + 1]: sign-extended 16-bit lanes.
                        let lo = _mm512_srai_epi16::<8>(t);
                        let d = _mm512_sub_epi16(_mm512_srai_epi16::<8>(t1), lo);
                        let f7 = _mm512_slli_epi16::<7>(_mm512_and_si512(w, m255));
                        _mm512_cvtepi16_epi8(_mm512_add_epi16(lo, _mm512_mulhrs_epi16(d, f7)))
                    };
                    let mut i = 0;
                    while i < c32 {
                        let w = _mm512_loadu_si512(ub.add(i) as *const _);
                        _mm256_storeu_si256(o.add(i) as *mut __m256i, look(w));
                        i += 32;
                    }
                    if rest != 0 {
                        let w = _mm512_loadu_si512(ub.add(c32) as *const _);
                        _mm256_mask_storeu_epi8(o.add(c32), rest_mask, look(w));
                    }
                }
            }
        }
    }
}

/// Per-pixel constants of [`ln16_pixels`].
#[cfg(all(ldp_avx512, feature = "std"))]
#[allow(clippy::incompatible_msrv)]
struct Ln16Px {
    /// `S1` in every 32-bit lane.
    s1v: __m512i,
    /// `inv'` in every 32-bit lane.
    invv: __m512i,
    /// `2^(s−1)` in every 64-bit lane, `s = 46 − k`.
    rk: __m512i,
    /// `s`.
    scnt: __m128i,
}

/// `x̂ = requant64((C·q − S1)·inv, s)` of 16 channels `qv` as (even, odd) 64-bit lanes (the
/// values in the low halves), with `inv = inv' + B·2^32`: `|C·q − S1| ≤ 2^16·c` is exact in
/// `i32`; `(C·q − S1)·inv = num·inv' + B·(num << 32)` in 64 bits; `|x̂| < 2^31` (see `ln_xh`).
///
/// # Safety
/// AVX-512 F available.
#[cfg(all(ldp_avx512, feature = "std"))]
#[inline(always)]
#[allow(clippy::incompatible_msrv)]
unsafe fn ln16_xh<const B: bool>(qv: __m512i, ccv: __m512i, p: &Ln16Px) -> (__m512i, __m512i) {
    // SAFETY: register-only AVX-512 F operations.
    unsafe {
        let num = _mm512_sub_epi32(_mm512_mullo_epi32(qv, ccv), p.s1v);
        let mut pe = _mm512_mul_epi32(num, p.invv);
        let mut po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(num), p.invv);
        if B {
            pe = _mm512_add_epi64(pe, _mm512_slli_epi64::<32>(num));
            po = _mm512_add_epi64(po, _mm512_and_si512(num, _mm512_set1_epi64(-1i64 << 32)));
        }
        (
            _mm512_sra_epi64(_mm512_add_epi64(pe, p.rk), p.scnt),
            _mm512_sra_epi64(_mm512_add_epi64(po, p.rk), p.scnt),
        )
    }
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
    crate::kernels::norm::int8::check_norm16(x, c, q, y)?;
    if c > LN_MAX_C {
        return crate::quant::kernels::layer_norm_i16_reference(x, c, q, y);
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
    use crate::kernels::norm::int8::ln_out;
    use crate::kernels::norm::int8::ln_out_lerp;
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
    let mut ub = [0i32; LN_MAX_C];
    if let Some(t) = q.lut {
        for (j, w) in tp.iter_mut().enumerate() {
            let (lo, hi) = (t[j] as i32, t[(j + 1).min(255)] as i32);
            *w = (lo & 0xffff) | ((hi - lo) << 16);
        }
    }
    // SAFETY (whole body): AVX2 available; loads of 16 (8) i16 at i + 16 ≤ c16 (i + 8 ≤ c8)
    // inside a pixel of c values of x, 8-byte stores at i + 8 ≤ c8 inside the same pixel of y
    // (y.len() == x.len()); staged loads at i + 8 ≤ c8 ≤ 2048; gathers from tp at indices
    // (u >> 8) + 128 ∈ 0..=255 (u clamped to −2^15..=127·2^8 first); `ub` holds
    // LN_MAX_C ≥ c8 values.
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
        // Blocks of `PB` pixels: first every pixel's statistics (independent chains, each a
        // square root and a division, that overlap), then every pixel's outputs.
        const PB: usize = 8;
        let mut lps = [ln_px(cc, e, 0, 0); PB];
        for (xb, yb) in x.chunks(c * PB).zip(y.chunks_mut(c * PB)) {
            for (xs, lp) in xb.chunks_exact(c).zip(lps.iter_mut()) {
                let p = xs.as_ptr();
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
                *lp = ln_px(cc, e, s1, s2);
            }
            for ((xs, ys), lp) in xb.chunks_exact(c).zip(yb.chunks_exact_mut(c)).zip(&lps) {
                let (p, o) = (xs.as_ptr(), ys.as_mut_ptr());
                let s1 = lp.s1;
                // With a table: first every clamped `u` of the pixel into `ub`, then the gathers
                // and interpolations in a short second loop, so that many gathers (long latency)
                // are in flight at once.
                let mut i = 0;
                while i < c8 {
                    let qv = _mm256_cvtepi16_epi32(_mm_loadu_si128(p.add(i) as *const __m128i));
                    // |C·q − S1| ≤ 2^16·c: exact in i32.
                    let num = _mm256_sub_epi32(_mm256_mullo_epi32(qv, ccv), lp.s1v);
                    let xh = ln_xh(num, lp);
                    let (ae, ao) = ln_acc(xh, g32.as_ptr(), kb.as_ptr(), i);
                    let ae = _mm256_srl_epi64(_mm256_sll_epi64(ae, lcnt), rcnt);
                    let ao = _mm256_srl_epi64(_mm256_sll_epi64(ao, lcnt), rcnt);
                    if q.lut.is_none() {
                        let r = _mm256_add_epi32(
                            _mm256_blend_epi32::<0b1010_1010>(ae, _mm256_slli_epi64::<32>(ao)),
                            off32,
                        );
                        store8(o.add(i), r);
                    } else {
                        let ue = clamp64(_mm256_add_epi64(ae, cst64), ulo, uhi);
                        let uo = clamp64(_mm256_add_epi64(ao, cst64), ulo, uhi);
                        let u = _mm256_blend_epi32::<0b1010_1010>(ue, _mm256_slli_epi64::<32>(uo));
                        _mm256_storeu_si256(ub.as_mut_ptr().add(i) as *mut __m256i, u);
                    }
                    i += 8;
                }
                if q.lut.is_some() {
                    let mut i = 0;
                    while i < c8 {
                        let u = _mm256_loadu_si256(ub.as_ptr().add(i) as *const __m256i);
                        let j = _mm256_add_epi32(_mm256_srai_epi32::<8>(u), c128);
                        let f = _mm256_and_si256(u, m255);
                        let w = _mm256_i32gather_epi32::<4>(tp.as_ptr(), j);
                        let lo = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(w));
                        let d = _mm256_srai_epi32::<16>(w);
                        let r = _mm256_add_epi32(
                            lo,
                            _mm256_srai_epi32::<8>(_mm256_add_epi32(
                                _mm256_mullo_epi32(d, f),
                                r128,
                            )),
                        );
                        store8(o.add(i), r);
                        i += 8;
                    }
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

/// `floor(sqrt(v))`, exactly — the same value as [`crate::quant::fixed::isqrt_u64`] (the floor of the
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
