//! AArch64 NEON pointwise kernel of a 16-bit model input × int8 weights → int8
//! (`quant::a16::pointwise_in16`), and of 16-bit activations → 16-bit activations
//! (`quant::a16::pointwise16`: the same tiles, an `i16` output saturated to the `i16` range; the
//! caller narrows `-32768` to the 16-bit path's `-32767`).
//!
//! A register tile of 2 pixels × 4 outputs (8 accumulators of 4 `i32` lanes): per 8 input
//! channels, the 8 activations of each pixel are loaded as they are (`LD1 {v.8h}`), the 8 weights
//! of each output row as bytes (`LD1 {v.8b}`, byte elements: no alignment needed under
//! `+strict-align`) and sign-extended (`SXTL`), and `SMLAL`/`SMLAL2` add the exact `i16·i16`
//! products into `i32` lanes (16 instructions per 64 MACs). The lanes are summed (`ADDV`) once
//! per tile; channels past the last multiple of 8, leftover outputs and pixels run scalar (the
//! shared tile driver `quant::a16::tiles16`). The
//! `i32` sums wrap exactly like the reference's `wrapping_add`, so the result equals
//! `quant::a16::pointwise_in16_reference` bit for bit in any order; bias, requantization, zero
//! point, saturation and table are the reference's own scalar code (`quant::kernels::finish`).

use core::arch::aarch64::*;
use core::arch::asm;

use crate::quant::a16::tiles16;
use crate::quant::kernels::{finish, ConvOut, ConvQ};

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

/// [`pointwise_in16`] with an `i16` output (see the module docs).
pub(crate) fn pointwise16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    if crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    // SAFETY: as in `pointwise_in16`: `check_pw` verified every length `run` relies on.
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

/// The kernel: [`tiles16`] with 8 channels per step (`SMLAL`/`SMLAL2`).
///
/// # Safety
/// Lengths as checked by [`pointwise_in16`].
unsafe fn run<Y: ConvOut>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    let finish = |acc: i32, o: usize| finish::<Y>(q.bias_at(o).wrapping_add(acc), o, q);
    tiles16(
        x,
        c_in,
        q.weight,
        c_out,
        y,
        pixels,
        |xa, xb, rows| {
            let k = xa.len().min(xb.len()) / 8 * 8;
            // SAFETY (all intrinsics below): register-only NEON operations; the loads read
            // `i + 8 ≤ k` elements of `xa`, `xb` (bounded by their lengths) and of each row
            // (sliced to the 8 bytes read).
            unsafe {
                let mut a = [vdupq_n_s32(0); 4];
                let mut b = [vdupq_n_s32(0); 4];
                let mut i = 0;
                while i < k {
                    let va = ld8h(xa.as_ptr().add(i));
                    let vb = ld8h(xb.as_ptr().add(i));
                    for j in 0..4 {
                        let wk = ld8b_s16(rows[j][i..i + 8].as_ptr());
                        a[j] = vmlal_s16(a[j], vget_low_s16(va), vget_low_s16(wk));
                        a[j] = vmlal_high_s16(a[j], va, wk);
                        b[j] = vmlal_s16(b[j], vget_low_s16(vb), vget_low_s16(wk));
                        b[j] = vmlal_high_s16(b[j], vb, wk);
                    }
                    i += 8;
                }
                // `ADDV` of i32 lanes wraps like the reference's sums.
                (a.map(|v| vaddvq_s32(v)), b.map(|v| vaddvq_s32(v)), k)
            }
        },
        finish,
    )
}
