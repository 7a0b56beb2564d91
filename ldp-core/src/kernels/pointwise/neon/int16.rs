//! AArch64 NEON pointwise kernel of a 16-bit model input × int8 weights → int8
//! (`quant::a16::pointwise_in16`).
//!
//! A register tile of 2 pixels × 4 outputs (8 accumulators of 4 `i32` lanes): per 8 input
//! channels, the 8 activations of each pixel are loaded as they are (`LD1 {v.8h}`), the 8 weights
//! of each output row as bytes (`LD1 {v.8b}`, byte elements: no alignment needed under
//! `+strict-align`) and sign-extended (`SXTL`), and `SMLAL`/`SMLAL2` add the exact `i16·i16`
//! products into `i32` lanes (16 instructions per 64 MACs). The lanes are summed (`ADDV`) once
//! per tile; channels past the last multiple of 8, leftover outputs and pixels run scalar. The
//! `i32` sums wrap exactly like the reference's `wrapping_add`, so the result equals
//! `quant::a16::pointwise_in16_reference` bit for bit in any order; bias, requantization, zero
//! point, saturation and table are the reference's own scalar code (`quant::kernels::finish`).

use core::arch::aarch64::*;
use core::arch::asm;

use crate::quant::kernels::{finish, ConvQ};

/// Runs the kernel (NEON is part of every AArch64 target). The shapes are checked again here
/// (`check_pw`, O(1)): `false` unless they hold.
pub(crate) fn pointwise_in16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    // SAFETY: `check_pw` verified `x.len() = pixels·c_in`, `q.weight.len() = c_out·c_in` and
    // `y.len() = pixels·c_out` (products without overflow); `run` stays inside them.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// 8 halfwords at `p` (`LD1 {v.8h}`: halfword elements, `p` is an `i16` pointer).
///
/// # Safety
/// `p` valid for 8 `i16`.
#[inline(always)]
unsafe fn ld8h(p: *const i16) -> int16x8_t {
    let v: int16x8_t;
    // SAFETY: reads 16 bytes at `p` (valid per the contract), halfword elements.
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

/// 8 bytes at `p`, sign-extended to 8 halfwords (`LD1 {v.8b}` + `SXTL`).
///
/// # Safety
/// `p` valid for 8 bytes.
#[inline(always)]
unsafe fn ld8b_s16(p: *const i8) -> int16x8_t {
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
    // SAFETY: register-only NEON operation (NEON is part of every AArch64 target).
    unsafe { vmovl_s8(v) }
}

/// Scalar dot product of `x[from..]` and `w[from..]` (wrapping).
#[inline(always)]
fn tail(x: &[i16], w: &[i8], from: usize) -> i32 {
    x[from..]
        .iter()
        .zip(&w[from..])
        .fold(0i32, |a, (&x, &w)| a.wrapping_add(x as i32 * w as i32))
}

/// Output `o`'s value from its sum without bias.
#[inline(always)]
fn out(acc: i32, o: usize, q: &ConvQ<'_>) -> i8 {
    finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
}

/// # Safety
/// Lengths as checked by [`pointwise_in16`].
unsafe fn run(x: &[i16], c_in: usize, q: &ConvQ<'_>, c_out: usize, y: &mut [i8], pixels: usize) {
    let k8 = c_in / 8 * 8;
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
            // SAFETY (all intrinsics below): register-only NEON operations; the loads read
            // `i + 8 ≤ k8 ≤ c_in` elements of `xa`, `xb` and each row, inside the slices.
            unsafe {
                let mut a = [vdupq_n_s32(0); 4];
                let mut b = [vdupq_n_s32(0); 4];
                let mut i = 0;
                while i < k8 {
                    let va = ld8h(xa.as_ptr().add(i));
                    let vb = ld8h(xb.as_ptr().add(i));
                    for k in 0..4 {
                        let wk = ld8b_s16(rows[k].as_ptr().add(i));
                        a[k] = vmlal_s16(a[k], vget_low_s16(va), vget_low_s16(wk));
                        a[k] = vmlal_high_s16(a[k], va, wk);
                        b[k] = vmlal_s16(b[k], vget_low_s16(vb), vget_low_s16(wk));
                        b[k] = vmlal_high_s16(b[k], vb, wk);
                    }
                    i += 8;
                }
                for k in 0..4 {
                    // `ADDV` of i32 lanes wraps like the reference's sums.
                    let sa = vaddvq_s32(a[k]).wrapping_add(tail(xa, rows[k], k8));
                    let sb = vaddvq_s32(b[k]).wrapping_add(tail(xb, rows[k], k8));
                    y[p * c_out + o + k] = out(sa, o + k, q);
                    y[(p + 1) * c_out + o + k] = out(sb, o + k, q);
                }
            }
            o += 4;
        }
        for o in o4..c_out {
            let row = &w[o * c_in..(o + 1) * c_in];
            y[p * c_out + o] = out(tail(xa, row, 0), o, q);
            y[(p + 1) * c_out + o] = out(tail(xb, row, 0), o, q);
        }
        p += 2;
    }
    for p in p2..pixels {
        let xa = &x[p * c_in..(p + 1) * c_in];
        for o in 0..c_out {
            y[p * c_out + o] = out(tail(xa, &w[o * c_in..(o + 1) * c_in], 0), o, q);
        }
    }
}
