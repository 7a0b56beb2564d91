//! Row-range variants of the whole-tensor kernels whose outputs depend on more than one input
//! pixel: the 3×3 depthwise conv (int8 and float) and the bilinear resize (int8 and float).
//!
//! Each computes a segment of **one output row** from the input rows it needs, given as slices
//! that cover a column range of the map (a ring-buffer row of a column strip). Padding follows
//! the global geometry, so a segment in the middle of the map uses its halo columns and one at
//! the border skips the outside taps exactly as the whole-tensor kernels do. The arithmetic —
//! including the order of float accumulation — is the whole-tensor kernels' own
//! ([`crate::quant::kernels::depthwise`], [`crate::kernels::depthwise::depthwise3x3`],
//! [`crate::quant::kernels::resize_bilinear`], [`crate::kernels::resize::bilinear`]), so the
//! results are bit-identical; `host-tests/tests/stream.rs` checks it.

use crate::elem::Elem;
use crate::error::{check_dims, check_len, Error};
use crate::kernels::depthwise::DwShape;
use crate::kernels::resize::taps;
use crate::quant::fixed::{requant, requant64, sat_i8};
use crate::quant::kernels::{taps_q10, ConvOut, ConvQ};

/// The input of one output row of a 3×3 depthwise conv.
#[derive(Debug, Clone, Copy)]
pub struct DwRows<'r, T> {
    /// Input rows `oy·stride − 1`, `oy·stride`, `oy·stride + 1`; `None` for rows outside the
    /// map (any slice may be given there; it is not read).
    pub rows: [Option<&'r [T]>; 3],
    /// The first input column the row slices hold (they hold whole pixels from there on).
    pub col0: usize,
}

/// `(ox1, ky0, ky1, rows)` of a validated depthwise row call.
type DwRowPlan<'r, T> = (usize, usize, usize, [&'r [T]; 3]);

/// Validates a depthwise row call; returns `(ox1, ky0, ky1, rows)` with absent rows as empty
/// slices.
fn check_dw_row<'r, T>(
    s: DwShape,
    inp: &DwRows<'r, T>,
    oy: usize,
    ox0: usize,
    y_len: usize,
) -> Result<DwRowPlan<'r, T>, Error> {
    if s.stride != 1 && s.stride != 2 {
        return Err(Error::InvalidConfig("depthwise: stride must be 1 or 2"));
    }
    if s.c == 0 || s.h == 0 || s.w == 0 || y_len % s.c != 0 {
        return Err(Error::InvalidConfig("depthwise row: bad shape"));
    }
    let ox1 = ox0.checked_add(y_len / s.c).ok_or(Error::InvalidConfig(
        "depthwise row: output outside the map",
    ))?;
    if oy >= s.ho() || ox1 > s.wo() || ox1 == ox0 {
        return Err(Error::InvalidConfig(
            "depthwise row: output outside the map",
        ));
    }
    let ky0 = if oy * s.stride == 0 { 1 } else { 0 };
    let ky1 = (s.h - oy * s.stride).saturating_add(1).min(3);
    // Input columns the segment reads.
    let lo = (ox0 * s.stride).saturating_sub(1);
    let hi = ((ox1 - 1) * s.stride + 1).min(s.w - 1);
    let mut rows: [&[T]; 3] = [&[], &[], &[]];
    for ky in ky0..ky1 {
        let r = inp.rows[ky].ok_or(Error::InvalidConfig(
            "depthwise row: an input row is missing",
        ))?;
        if lo < inp.col0
            || (hi + 1 - inp.col0)
                .checked_mul(s.c)
                .is_none_or(|n| n > r.len())
        {
            return Err(Error::InvalidConfig(
                "depthwise row: input row does not cover the halo columns",
            ));
        }
        rows[ky] = r;
    }
    Ok((ox1, ky0, ky1, rows))
}

/// int8 depthwise 3×3: output row `oy`, columns `ox0..ox0 + y.len()/c`, of
/// [`crate::quant::kernels::depthwise`] on the global shape `s`; `i8` output, or `i16` for a
/// depthwise conv that feeds a LayerNorm ([`ConvOut`]).
pub fn depthwise_row_i8<Y: ConvOut>(
    s: DwShape,
    inp: &DwRows<'_, i8>,
    q: &ConvQ<'_>,
    oy: usize,
    ox0: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    check_dims("int8 weight", q.weight, &[s.c, 9])?;
    crate::quant::kernels::check_bias_mult(q, s.c)?;
    if let Some(t) = q.lut {
        check_len("int8 lut", t, 256)?;
        if core::mem::size_of::<Y>() != 1 {
            return Err(Error::InvalidConfig(
                "int8 depthwise: a 16-bit output takes no table",
            ));
        }
    }
    let (ox1, ky0, ky1, rows) = check_dw_row(s, inp, oy, ox0, y.len())?;
    let (c, st, col0, z) = (s.c, s.stride, inp.col0, q.in_zero);
    for ox in ox0..ox1 {
        let kx0 = if ox * st == 0 { 1 } else { 0 };
        let kx1 = (s.w - ox * st).saturating_add(1).min(3);
        // The valid taps of this pixel: the input pixel (all channels) and the tap index, in
        // (ky, kx) order. Integer sums are exact in any order; this one is the whole-tensor
        // kernel's anyway.
        let mut taps: [(&[i8], usize); 9] = [(&[], 0); 9];
        let mut n = 0;
        for ky in ky0..ky1 {
            for kx in kx0..kx1 {
                let at = (ox * st + kx - 1 - col0) * c;
                taps[n] = (&rows[ky][at..at + c], ky * 3 + kx);
                n += 1;
            }
        }
        let out = &mut y[(ox - ox0) * c..(ox - ox0 + 1) * c];
        if n == 9 {
            let t: [&[i8]; 9] = core::array::from_fn(|k| taps[k].0);
            dw_pixel::<Y, 9>(&t, &core::array::from_fn(|k| k), q, z, out);
        } else {
            for ch in 0..c {
                let wk = &q.weight[ch * 9..ch * 9 + 9];
                let mut acc = q.bias_at(ch);
                for &(xs, k) in &taps[..n] {
                    // Wrapping: identical to the whole-tensor kernel for valid zero points,
                    // and no overflow panic on a corrupt one.
                    let xv = (xs[ch] as i32).wrapping_sub(z);
                    acc = acc.wrapping_add(xv.wrapping_mul(wk[k] as i32));
                }
                out[ch] = finish_i8(acc, ch, q);
            }
        }
    }
    Ok(())
}

#[inline(always)]
fn finish_i8<Y: ConvOut>(acc: i32, ch: usize, q: &ConvQ<'_>) -> Y {
    Y::finish(
        q.out_zero
            .wrapping_add(requant(acc, q.mult_at(ch), q.shift)),
        q.lut,
    )
}

/// One output pixel from `N` taps: `t[j]` the input pixel (`out.len()` channels) of tap `k[j]`.
#[inline(always)]
fn dw_pixel<Y: ConvOut, const N: usize>(
    t: &[&[i8]; N],
    k: &[usize; N],
    q: &ConvQ<'_>,
    z: i32,
    out: &mut [Y],
) {
    for (ch, o) in out.iter_mut().enumerate() {
        let wk = &q.weight[ch * 9..ch * 9 + 9];
        let mut acc = q.bias_at(ch);
        for j in 0..N {
            let xv = (t[j][ch] as i32).wrapping_sub(z);
            acc = acc.wrapping_add(xv.wrapping_mul(wk[k[j]] as i32));
        }
        *o = finish_i8(acc, ch, q);
    }
}

/// Float depthwise 3×3 with optional bias and fused residual: output row `oy`, columns
/// `ox0..ox0 + y.len()/c`, of [`crate::kernels::depthwise::depthwise3x3`] on the global shape
/// `s`. `residual` holds the same output segment.
pub fn depthwise_row_float<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    inp: &DwRows<'_, X>,
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    oy: usize,
    ox0: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    check_dims("depthwise weight", weight, &[s.c, 9])?;
    if let Some(b) = bias {
        check_len("depthwise bias", b, s.c)?;
    }
    if let Some(r) = residual {
        check_len("depthwise residual", r, y.len())?;
    }
    let (ox1, ky0, ky1, rows) = check_dw_row(s, inp, oy, ox0, y.len())?;
    let (c, st, col0) = (s.c, s.stride, inp.col0);
    for ox in ox0..ox1 {
        let kx0 = if ox * st == 0 { 1 } else { 0 };
        let kx1 = (s.w - ox * st).saturating_add(1).min(3);
        let o = (ox - ox0) * c;
        for ch in 0..c {
            // The tiled kernel's order: bias, taps in (ky, kx) order, residual.
            let mut acc = bias.map_or(0.0, |b| b[ch]);
            for ky in ky0..ky1 {
                let row = rows[ky];
                for kx in kx0..kx1 {
                    let ix = ox * st + kx - 1;
                    acc +=
                        row[(ix - col0) * c + ch].to_f32() * weight[ch * 9 + ky * 3 + kx].to_f32();
                }
            }
            if let Some(r) = residual {
                acc += r[o + ch].to_f32();
            }
            y[o + ch] = Y::from_f32(acc);
        }
    }
    Ok(())
}

/// Parameters of the int8 bilinear resize ([`crate::quant::kernels::resize_bilinear`]).
#[derive(Debug, Clone, Copy)]
pub struct ResizeQ<'a> {
    /// Input zero point, per channel or one for all.
    pub in_zero: &'a [i8],
    /// Multiplier, per channel or one for all.
    pub mult: &'a [i16],
    /// Right shift (on top of the 20 bits of the Q10×Q10 weights).
    pub shift: i32,
    /// Output zero point.
    pub out_zero: i32,
}

/// Validates a resize row call; returns `ox1`.
fn check_resize_row<T>(
    rows: &[&[T]; 2],
    col0: usize,
    w: usize,
    wo: usize,
    c: usize,
    ox0: usize,
    y_len: usize,
) -> Result<usize, Error> {
    if c == 0 || w == 0 || wo == 0 || y_len % c != 0 {
        return Err(Error::InvalidConfig("resize row: bad shape"));
    }
    if !crate::kernels::resize::int8::taps_q10_fit(w, wo) {
        return Err(Error::InvalidConfig("resize row: dimensions too large"));
    }
    let ox1 = ox0
        .checked_add(y_len / c)
        .ok_or(Error::InvalidConfig("resize row: output outside the map"))?;
    if ox1 > wo || ox1 == ox0 {
        return Err(Error::InvalidConfig("resize row: output outside the map"));
    }
    // Columns read: the taps of the first and last output column.
    let (lo, _, _) = taps_q10(ox0, w, wo);
    let (_, hi, _) = taps_q10(ox1 - 1, w, wo);
    let (flo, _, _) = taps(ox0, w, wo);
    let (_, fhi, _) = taps(ox1 - 1, w, wo);
    let (lo, hi) = (lo.min(flo), hi.max(fhi));
    for r in rows {
        if lo < col0 || (hi + 1 - col0).checked_mul(c).is_none_or(|n| n > r.len()) {
            return Err(Error::InvalidConfig(
                "resize row: input row does not cover the taps",
            ));
        }
    }
    Ok(ox1)
}

/// int8 bilinear resize: columns `ox0..ox0 + y.len()/c` of output row `oy` of an `h × w → ho ×
/// wo` resize, from input rows `y0`, `y1` of `taps_q10(oy, h, ho)` (`rows`, covering input
/// columns from `col0`); `ly` is that call's `λ`.
#[allow(clippy::too_many_arguments)]
pub fn resize_row_i8(
    rows: [&[i8]; 2],
    col0: usize,
    w: usize,
    wo: usize,
    c: usize,
    q: &ResizeQ<'_>,
    ly: i64,
    ox0: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    if (q.in_zero.len() != 1 && q.in_zero.len() != c) || (q.mult.len() != 1 && q.mult.len() != c) {
        return Err(Error::InvalidConfig(
            "int8 resize: per-channel parameters of the wrong length",
        ));
    }
    let ox1 = check_resize_row(&rows, col0, w, wo, c, ox0, y.len())?;
    let [r0, r1] = rows;
    for ox in ox0..ox1 {
        let (x0, x1, lx) = taps_q10(ox, w, wo);
        let w00 = (1024 - ly) * (1024 - lx);
        let w01 = (1024 - ly) * lx;
        let w10 = ly * (1024 - lx);
        let w11 = ly * lx;
        let (p0, p1) = ((x0 - col0) * c, (x1 - col0) * c);
        let o = (ox - ox0) * c;
        for ch in 0..c {
            let z = q.in_zero[if q.in_zero.len() == 1 { 0 } else { ch }] as i64;
            let m = q.mult[if q.mult.len() == 1 { 0 } else { ch }] as i64;
            let s = w00 * (r0[p0 + ch] as i64 - z)
                + w01 * (r0[p1 + ch] as i64 - z)
                + w10 * (r1[p0 + ch] as i64 - z)
                + w11 * (r1[p1 + ch] as i64 - z);
            let v = requant64(s.wrapping_mul(m), q.shift.saturating_add(20));
            y[o + ch] = sat_i8(q.out_zero.wrapping_add(v as i32));
        }
    }
    Ok(())
}

/// Float bilinear resize: columns `ox0..ox0 + y.len()/c` of one output row, from input rows
/// `y0`, `y1` of `taps(oy, h, ho)` (`rows`, covering input columns from `col0`); `ly` is that
/// call's `λ`.
#[allow(clippy::too_many_arguments)]
pub fn resize_row_float<X: Elem, Y: Elem>(
    rows: [&[X]; 2],
    col0: usize,
    w: usize,
    wo: usize,
    c: usize,
    ly: f32,
    ox0: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    let ox1 = check_resize_row(&rows, col0, w, wo, c, ox0, y.len())?;
    let [r0, r1] = rows;
    for ox in ox0..ox1 {
        let (x0, x1, lx) = taps(ox, w, wo);
        let (p0, p1) = ((x0 - col0) * c, (x1 - col0) * c);
        let o = (ox - ox0) * c;
        for ch in 0..c {
            let top = (1.0 - lx) * r0[p0 + ch].to_f32() + lx * r0[p1 + ch].to_f32();
            let bot = (1.0 - lx) * r1[p0 + ch].to_f32() + lx * r1[p1 + ch].to_f32();
            y[o + ch] = Y::from_f32((1.0 - ly) * top + ly * bot);
        }
    }
    Ok(())
}
