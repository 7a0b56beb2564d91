//! AArch64 NEON int8 pointwise kernel.
//!
//! Dot-product form in a register tile of 4 outputs × 2 pixels: per 16 input channels, one
//! 16-byte load per pixel row and per weight row, then for each (output, pixel) pair
//! `vmull_s8` on both halves (8 exact i16 products each; `|a·b| ≤ 2^14`) and `vpadalq_s16`,
//! which adds neighbouring i16 products into the i32 accumulators — 16 MACs in 4 instructions.
//! (`vmlal_s8` would sum two products in i16, which overflows for `(-128)·(-128)·2`, so it is
//! not used: results must equal the reference for every input.) i32 sums wrap exactly like
//! the reference's `wrapping_add`; bias, requantization and table are the reference's scalar
//! code, so the outputs are bit-identical. The Cortex-A53 has no `sdot`; see the module docs
//! of [`super`] for the determinism rule.
//!
//! Both output types of [`crate::quant::kernels::ConvOut`] take the same kernel (generic over the
//! store): `i8` saturates with `vqmovn_s32` + `vqmovn_s16` (then the optional table), `i16` with
//! `vqmovn_s32` and stores with `vst1_s16` ([`pointwise_i16`]).

use core::arch::aarch64::*;

use crate::error::Error;
use crate::quant::fixed::requant;
use crate::quant::kernels::{ConvOut, ConvQ};

/// Runs the NEON kernel (`false` only if the target lacks NEON). Shapes validated by the caller.
pub(crate) fn pointwise(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if !cfg!(target_feature = "neon")
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    // SAFETY: NEON is enabled; `check_pw` just verified x.len() = pixels·c_in,
    // weight = c_out·c_in, bias (or none)/mult = c_out, lut = 256, y = pixels·c_out (products
    // without overflow).
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The NEON kernel with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support NEON.
pub unsafe fn pointwise_neon(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    // SAFETY: NEON per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    Ok(())
}

#[inline(always)]
fn out<Y: ConvOut>(acc: i32, o: usize, q: &ConvQ<'_>) -> Y {
    Y::finish(
        q.out_zero.wrapping_add(requant(
            acc.wrapping_add(q.bias_at(o)),
            q.mult_at(o),
            q.shift,
        )),
        q.lut,
    )
}

/// The output types of the NEON kernel: how four requantized lanes (zero point added, not yet
/// saturated) are stored.
trait NeonOut: ConvOut {
    /// Saturates the four lanes of `r` to the type (and applies the table, `i8` only) and
    /// stores them to `dst[..4]`.
    ///
    /// # Safety
    /// NEON available.
    unsafe fn store4(r: int32x4_t, dst: &mut [Self], q: &ConvQ<'_>);
}

impl NeonOut for i8 {
    #[inline(always)]
    unsafe fn store4(r: int32x4_t, dst: &mut [i8], q: &ConvQ<'_>) {
        // SAFETY: register operations and a store to a local array; NEON per the contract.
        unsafe {
            // Saturation to i8 in two steps (i32 → i16 → i8), like `sat_i8`.
            let b = vqmovn_s16(vcombine_s16(vqmovn_s32(r), vdup_n_s16(0)));
            let mut o8 = [0i8; 8];
            vst1_s8(o8.as_mut_ptr(), b);
            if let Some(t) = q.lut {
                for e in o8.iter_mut().take(4) {
                    *e = t[(*e as i32 + 128) as usize];
                }
            }
            dst[..4].copy_from_slice(&o8[..4]);
        }
    }
}

impl NeonOut for i16 {
    #[inline(always)]
    unsafe fn store4(r: int32x4_t, dst: &mut [i16], _q: &ConvQ<'_>) {
        let dst = &mut dst[..4];
        // SAFETY: `dst` has 4 elements (just sliced): `vst1_s16` writes exactly those 8
        // bytes (no alignment requirement). Saturation to i16 is `vqmovn_s32`, as the
        // reference's clamp.
        unsafe { vst1_s16(dst.as_mut_ptr(), vqmovn_s32(r)) };
    }
}

/// Outputs `o0..o0+TO` of pixels `p0..p0+TP`.
///
/// # Safety
/// `o0 + TO ≤ c_out`, `p0 + TP ≤ pixels`, shapes validated.
#[inline(always)]
unsafe fn tile<Y: NeonOut, const TO: usize, const TP: usize>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
) {
    let full = c_in / 16 * 16;
    // SAFETY (whole body): rows o0..o0+TO of the weights and p0..p0+TP of x are in bounds and
    // every 16-byte load starts at i ≤ full - 16 inside its row.
    unsafe {
        let mut acc = [[vdupq_n_s32(0); TP]; TO];
        let xs: [*const i8; TP] = core::array::from_fn(|p| x.as_ptr().add((p0 + p) * c_in));
        let ws: [*const i8; TO] = core::array::from_fn(|o| q.weight.as_ptr().add((o0 + o) * c_in));
        let mut i = 0;
        while i < full {
            let xv: [int8x16_t; TP] = core::array::from_fn(|p| super::sdot::ld16(xs[p].add(i)));
            for o in 0..TO {
                let wv = super::sdot::ld16(ws[o].add(i));
                for p in 0..TP {
                    let lo = vmull_s8(vget_low_s8(xv[p]), vget_low_s8(wv));
                    let hi = vmull_high_s8(xv[p], wv);
                    acc[o][p] = vpadalq_s16(vpadalq_s16(acc[o][p], lo), hi);
                }
            }
            i += 16;
        }
        if TO == 4 {
            // Four outputs of a pixel in one vector: reduce, then requantize 4 lanes at once
            // with the reference's arithmetic (i64 product, + 2^(s-1), arithmetic shift,
            // truncation to i32, wrapping + zero point, saturation to the output type).
            let sh = q.shift.clamp(1, 62) as i64;
            let round = vdupq_n_s64(1i64 << (sh - 1));
            let neg = vdupq_n_s64(-sh);
            let mult = vld1q_s32(q.mult_n::<4>(o0).as_ptr());
            let bias = vld1q_s32(q.bias_n::<4>(o0).as_ptr());
            let zero = vdupq_n_s32(q.out_zero);
            for p in 0..TP {
                let mut v = vpaddq_s32(
                    vpaddq_s32(acc[0][p], acc[1][p]),
                    vpaddq_s32(acc[2][p], acc[3][p]),
                );
                if full < c_in {
                    let t: [i32; 4] = core::array::from_fn(|o| {
                        let mut s = 0i32;
                        for j in full..c_in {
                            s = s.wrapping_add(*xs[p].add(j) as i32 * *ws[o].add(j) as i32);
                        }
                        s
                    });
                    v = vaddq_s32(v, vld1q_s32(t.as_ptr()));
                }
                v = vaddq_s32(v, bias);
                let lo = vshlq_s64(
                    vaddq_s64(vmull_s32(vget_low_s32(v), vget_low_s32(mult)), round),
                    neg,
                );
                let hi = vshlq_s64(vaddq_s64(vmull_high_s32(v, mult), round), neg);
                let r = vaddq_s32(vcombine_s32(vmovn_s64(lo), vmovn_s64(hi)), zero);
                let dst = (p0 + p) * c_out + o0;
                Y::store4(r, &mut y[dst..dst + 4], q);
            }
            return;
        }
        for o in 0..TO {
            for p in 0..TP {
                let mut s = vaddvq_s32(acc[o][p]);
                for j in full..c_in {
                    s = s.wrapping_add(*xs[p].add(j) as i32 * *ws[o].add(j) as i32);
                }
                y[(p0 + p) * c_out + o0 + o] = out(s, o0 + o, q);
            }
        }
    }
}

/// # Safety
/// Shapes validated; NEON available.
#[target_feature(enable = "neon")]
unsafe fn run<Y: NeonOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    let mut o = 0;
    // SAFETY: every tile stays inside o < c_out and p < pixels.
    unsafe {
        while o + 4 <= c_out {
            let mut p = 0;
            while p + 2 <= pixels {
                tile::<Y, 4, 2>(x, c_in, q, c_out, y, o, p);
                p += 2;
            }
            if p < pixels {
                tile::<Y, 4, 1>(x, c_in, q, c_out, y, o, p);
            }
            o += 4;
        }
        while o < c_out {
            let mut p = 0;
            while p + 2 <= pixels {
                tile::<Y, 1, 2>(x, c_in, q, c_out, y, o, p);
                p += 2;
            }
            if p < pixels {
                tile::<Y, 1, 1>(x, c_in, q, c_out, y, o, p);
            }
            o += 1;
        }
    }
}

/// NEON int8 pointwise conv with a 16-bit output ([`crate::quant::kernels::ConvOut`]): the same
/// kernel as [`pointwise`], storing the requantized lanes saturated to int16 (`vqmovn_s32`,
/// `vst1_s16`). `false` only if the target lacks NEON. Shapes validated by the caller.
pub(crate) fn pointwise_i16(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    if !cfg!(target_feature = "neon")
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    // SAFETY: as in `pointwise` (`check_pw` also verified that a 16-bit output has no table).
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}
