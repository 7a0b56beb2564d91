//! The int8 bilinear resize's frame: dispatch ([`resize_bilinear`]), reference
//! ([`resize_bilinear_reference`]) and the exact integer taps ([`taps_q10`]).

use crate::error::{check_dims, Error};
use crate::quant::fixed::{requant64, sat_i8};

/// Whether [`taps_q10`] is exact (no `i64` overflow) for every `d < n_out`:
/// `(2·n_out + 1)·n_in·1024` fits `i64`. Every resize entry checks it once per call.
pub(crate) fn taps_q10_fit(n_in: usize, n_out: usize) -> bool {
    (n_out as u128 * 2 + 1) * n_in as u128 * 1024 <= i64::MAX as u128
}

/// Bilinear taps in Q10 fixed point: `(i0, i1, λ)` with `λ` in `0..=1024`, computed exactly in
/// integers from `src = (d + 0.5)·n_in/n_out − 0.5` (PyTorch's `align_corners=False`). The
/// resize kernels only call it with `(2·n_out + 1)·n_in·1024 < 2^63`.
#[inline]
pub const fn taps_q10(d: usize, n_in: usize, n_out: usize) -> (usize, usize, i64) {
    // src·1024 = ((2d+1)·n_in·1024 − n_out·1024) / (2·n_out), rounded to nearest.
    let num = ((2 * d + 1) as i64 * n_in as i64 - n_out as i64) * 1024;
    let den = 2 * n_out as i64;
    let src = if num <= 0 { 0 } else { (num + den / 2) / den };
    let i0 = (src >> 10) as usize;
    let i0 = if i0 < n_in - 1 { i0 } else { n_in - 1 };
    let lambda = if i0 == n_in - 1 {
        0
    } else {
        src - ((i0 as i64) << 10)
    };
    let i1 = if i0 + 1 < n_in { i0 + 1 } else { i0 };
    (i0, i1, lambda)
}

pub(crate) fn check_resize<X>(
    x: &[X],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    y: &[i8],
    (ho, wo): (usize, usize),
) -> Result<(), Error> {
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig("int8 resize: empty shape"));
    }
    if !taps_q10_fit(h, ho) || !taps_q10_fit(w, wo) {
        return Err(Error::InvalidConfig("int8 resize: dimensions too large"));
    }
    check_dims("int8 resize input", x, &[h, w, c])?;
    check_dims("int8 resize output", y, &[ho, wo, c])?;
    if (in_zero.len() != 1 && in_zero.len() != c) || (mult.len() != 1 && mult.len() != c) {
        return Err(Error::InvalidConfig(
            "int8 resize: per-channel parameters of the wrong length",
        ));
    }
    Ok(())
}

/// int8 bilinear resize `x: [h][w][c]` → `y: [ho][wo][c]`, requantized per input channel:
/// `y = sat(z_out + round(Σ w_k·(x_k − z_in[c]) · mult[c] / 2^(20 + shift)))`, weights in Q20.
/// With `mult` of length 1 the same multiplier serves every channel.
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear(
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
    check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::resize::arm_dsp::resize_bilinear(
        x,
        (h, w, c),
        in_zero,
        mult,
        shift,
        out_zero,
        y,
        (ho, wo),
    ) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::resize::neon::resize_bilinear(
        x,
        (h, w, c),
        in_zero,
        mult,
        shift,
        out_zero,
        y,
        (ho, wo),
    ) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::resize::x86::resize_bilinear(
        x,
        (h, w, c),
        in_zero,
        mult,
        shift,
        out_zero,
        y,
        (ho, wo),
    ) {
        return Ok(());
    }
    resize_bilinear_reference(x, h, w, c, in_zero, mult, shift, out_zero, y, ho, wo)
}

/// Reference of [`resize_bilinear`].
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear_reference(
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
    resize_sums(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo))
}

/// The reference resize loop over `i8` or `i16` inputs (checks included): per output value
/// `sat8(z_out + round(Σ w_k·(x_k − z_in[c]) · mult[c] / 2^(20 + shift)))` in `i64`
/// (`|x − z| < 2^16`, weights ≤ 2^20, `|mult| < 2^15`: below `2^53`, no overflow).
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_sums<X: Copy + Into<i64>>(
    x: &[X],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) -> Result<(), Error> {
    check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))?;
    for oy in 0..ho {
        let (y0, y1, ly) = taps_q10(oy, h, ho);
        for ox in 0..wo {
            let (x0, x1, lx) = taps_q10(ox, w, wo);
            let w00 = (1024 - ly) * (1024 - lx);
            let w01 = (1024 - ly) * lx;
            let w10 = ly * (1024 - lx);
            let w11 = ly * lx;
            let (p00, p01, p10, p11) = (
                (y0 * w + x0) * c,
                (y0 * w + x1) * c,
                (y1 * w + x0) * c,
                (y1 * w + x1) * c,
            );
            let o = (oy * wo + ox) * c;
            for ch in 0..c {
                let z = in_zero[if in_zero.len() == 1 { 0 } else { ch }] as i64;
                let m = mult[if mult.len() == 1 { 0 } else { ch }] as i64;
                let s = w00 * (x[p00 + ch].into() - z)
                    + w01 * (x[p01 + ch].into() - z)
                    + w10 * (x[p10 + ch].into() - z)
                    + w11 * (x[p11 + ch].into() - z);
                let v = requant64(s.wrapping_mul(m), shift.saturating_add(20));
                y[o + ch] = sat_i8(out_zero.wrapping_add(v as i32));
            }
        }
    }
    Ok(())
}
