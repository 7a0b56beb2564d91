//! AArch64 NEON int8 bilinear resize (`quant::kernels::resize_bilinear`), exactly the integers
//! of `resize_bilinear_reference`.
//!
//! Per output pixel and 8 channels: `d_k = x_k − z` by `SSUBL` (exact in `i16`), the weighted sum
//! in two stages, `top = (1024 − λx)·d00 + λx·d01`, `bot = (1024 − λx)·d10 + λx·d11` by `SMULL` /
//! `SMLAL` by element (`λx ≤ 1024` fits `i16`, `|·| ≤ 255·1024`), then `s = (1024 − λy)·top +
//! λy·bot` in `i32` (`|s| < 2^28`). By distributivity `s = Σ w_k·d_k` with the reference's Q20
//! weights, the same integer. Then `s·m` in 64 bits (`SMULL`), `requant64(·, shift + 20)` by
//! `SRSHL` (no overflow: `|s·m| < 2^43`), truncation to `i32` (`XTN`, the reference's `as i32`),
//! wrapping add of `z_out`, saturation by `SQXTN` twice. `c % 8` tail channels scalar, as the
//! reference.

use core::arch::aarch64::*;
use core::arch::asm;

use crate::kernels::pointwise::neon::sdot::st8;
use crate::quant::fixed::{requant64, sat_i8};

/// Runs the NEON bilinear resize if `c ≥ 8` and the shapes are valid (else `false`, nothing
/// written).
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
    if !cfg!(target_feature = "neon")
        || c < 8
        || crate::kernels::resize::int8::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))
            .is_err()
    {
        return false;
    }
    // SAFETY: NEON enabled for this target; `check_resize` just verified x = h·w·c,
    // y = ho·wo·c (products without overflow), in_zero and mult of length 1 or c, all
    // dimensions ≥ 1.
    unsafe { resize_run(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo)) };
    true
}

/// 8 bytes at `p` (`LD1 {v.8b}`, no alignment requirement).
///
/// # Safety
/// `p` valid for 8 bytes.
#[inline(always)]
unsafe fn ld8(p: *const i8) -> int8x8_t {
    let v: int8x8_t;
    // SAFETY: reads 8 bytes at `p` (valid per the contract), byte elements.
    unsafe {
        asm!(
            "ld1 {{{v:v}.8b}}, [{p}]",
            v = out(vreg) v,
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// 8 `i16` at `p` (`LD1 {v.8h}`: element alignment only, which an `i16` pointer has).
///
/// # Safety
/// `p` valid for 8 `i16`.
#[inline(always)]
unsafe fn ld8h(p: *const i16) -> int16x8_t {
    let v: int16x8_t;
    // SAFETY: reads 16 bytes at `p` (valid and 2-byte aligned per the contract).
    unsafe {
        asm!(
            "ld1 {{{v:v}.8h}}, [{p}]",
            v = out(vreg) v,
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// `(1 − λ)·a + λ·b` of the 8 `i16` lanes of `a` and `b` with `wl = [1024 − λ, λ, ..]`, in
/// `i32`.
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn lerp(a: int16x8_t, b: int16x8_t, wl: int16x4_t) -> (int32x4_t, int32x4_t) {
    // SAFETY: register-only NEON operations.
    unsafe {
        (
            vmlal_lane_s16::<1>(
                vmull_lane_s16::<0>(vget_low_s16(a), wl),
                vget_low_s16(b),
                wl,
            ),
            vmlal_high_lane_s16::<1>(vmull_high_lane_s16::<0>(a, wl), b, wl),
        )
    }
}

/// `sat16(z_out + (requant64(s·m, shift + 20) as i32))` of 4 lanes.
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn rq4(s: int32x4_t, m: int32x4_t, sh: int64x2_t, oz: int32x4_t) -> int32x4_t {
    // SAFETY: register-only NEON operations.
    unsafe {
        let p0 = vrshlq_s64(vmull_s32(vget_low_s32(s), vget_low_s32(m)), sh);
        let p1 = vrshlq_s64(vmull_high_s32(s, m), sh);
        vaddq_s32(vmovn_high_s64(vmovn_s64(p0), p1), oz)
    }
}

/// # Safety
/// Shapes validated (see `resize_bilinear`), `c ≥ 8`; NEON available.
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
    use crate::quant::kernels::taps_q10;
    let c8 = c / 8 * 8;
    let zat = |ch: usize| in_zero[if in_zero.len() == 1 { 0 } else { ch }];
    let mat = |ch: usize| mult[if mult.len() == 1 { 0 } else { ch }];
    let (zper, mper) = (in_zero.len() != 1, mult.len() != 1);
    // SAFETY (whole body): NEON available; 8-byte loads at p + ch + 8 ≤ p + c8 inside a pixel
    // of x, 8-value loads of in_zero/mult at ch + 8 ≤ c8 ≤ c when they are per channel (length
    // c), 8-byte stores at o + ch + 8 ≤ o + c inside y (o = (oy·wo + ox)·c < ho·wo·c).
    unsafe {
        let sh = vdupq_n_s64(-(shift.saturating_add(20).clamp(1, 62) as i64));
        let oz = vdupq_n_s32(out_zero);
        let (zb, mb) = (vdup_n_s8(zat(0)), vdupq_n_s16(mat(0)));
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        for oy in 0..ho {
            let (y0, y1, ly) = taps_q10(oy, h, ho);
            let (wy0, wy1) = ((1024 - ly) as i32, ly as i32);
            for ox in 0..wo {
                let (x0, x1, lx) = taps_q10(ox, w, wo);
                // Lanes 0 and 1: 1024 − λx and λx (both in 0..=1024).
                let wx = vcreate_s16(((1024 - lx) as u64) | ((lx as u64) << 16));
                let ps = [
                    (y0 * w + x0) * c,
                    (y0 * w + x1) * c,
                    (y1 * w + x0) * c,
                    (y1 * w + x1) * c,
                ];
                let o = (oy * wo + ox) * c;
                let mut ch = 0;
                while ch < c8 {
                    let z = if zper {
                        ld8(in_zero.as_ptr().add(ch))
                    } else {
                        zb
                    };
                    let m = if mper {
                        ld8h(mult.as_ptr().add(ch))
                    } else {
                        mb
                    };
                    let d = ps.map(|p| vsubl_s8(ld8(xp.add(p + ch)), z));
                    let (t0, t1) = lerp(d[0], d[1], wx);
                    let (b0, b1) = lerp(d[2], d[3], wx);
                    let s0 = vmlaq_n_s32(vmulq_n_s32(t0, wy0), b0, wy1);
                    let s1 = vmlaq_n_s32(vmulq_n_s32(t1, wy0), b1, wy1);
                    let r0 = rq4(s0, vmovl_s16(vget_low_s16(m)), sh, oz);
                    let r1 = rq4(s1, vmovl_high_s16(m), sh, oz);
                    st8(
                        yp.add(o + ch),
                        vqmovn_s16(vqmovn_high_s32(vqmovn_s32(r0), r1)),
                    );
                    ch += 8;
                }
                for ch in c8..c {
                    let z = zat(ch) as i64;
                    let wts = [
                        (1024 - ly) * (1024 - lx),
                        (1024 - ly) * lx,
                        ly * (1024 - lx),
                        ly * lx,
                    ];
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
