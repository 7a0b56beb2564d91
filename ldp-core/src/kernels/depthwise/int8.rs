//! The int8 depthwise 3×3 convolution's frame: the dispatch points ([`depthwise`],
//! [`depthwise_rows_i16`]) and the reference ([`depthwise_reference`]) the back ends
//! (`mve`, `arm_dsp`, `x86::int8`, `neon::int8`, `portable::int8`) must equal bit for bit.

use crate::error::{check_dims, size_of_dims, Error};
use crate::quant::kernels::*;

/// Reference int8 depthwise 3×3 (padding = the input zero point, i.e. real zero).
pub fn depthwise_reference(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    check_dw(s, x, q, y)?;
    depthwise_sums(s, x, q, |i, c, acc| y[i] = finish(acc, c, q));
    Ok(())
}

/// The reference depthwise 3×3 loop over `i8` or `i16` activations: `emit(i, c, acc)` for output
/// element `i` of channel `c`, `acc = bias_at(c) + Σ_taps (x − in_zero)·w` (wrapping; taps outside
/// the map skipped). Shapes validated by the caller ([`check_dw`]).
pub(crate) fn depthwise_sums<X: Copy + Into<i32>>(
    s: crate::kernels::depthwise::DwShape,
    x: &[X],
    q: &ConvQ<'_>,
    mut emit: impl FnMut(usize, usize, i32),
) {
    let (ho, wo) = (s.ho(), s.wo());
    for oy in 0..ho {
        for ox in 0..wo {
            for c in 0..s.c {
                let mut acc = q.bias_at(c);
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
                        let xv: i32 = x[(iy as usize * s.w + ix as usize) * s.c + c].into();
                        let xv = xv.wrapping_sub(q.in_zero);
                        acc =
                            acc.wrapping_add(xv.wrapping_mul(q.weight[c * 9 + ky * 3 + kx] as i32));
                    }
                }
                emit((oy * wo + ox) * s.c + c, c, acc);
            }
        }
    }
}

/// Shape checks of a depthwise 3×3 over `i8` or `i16` activations.
pub(crate) fn check_dw<X, Y>(
    s: crate::kernels::depthwise::DwShape,
    x: &[X],
    q: &ConvQ<'_>,
    y: &[Y],
) -> Result<(), Error> {
    if s.stride != 1 && s.stride != 2 {
        return Err(Error::InvalidConfig("depthwise: stride must be 1 or 2"));
    }
    if s.c == 0 || s.h == 0 || s.w == 0 {
        return Err(Error::InvalidConfig("depthwise: empty shape"));
    }
    check_dims("int8 depthwise input", x, &[s.h, s.w, s.c])?;
    check_conv(q, size_of_dims(&[s.c, 9])?, s.c)?;
    check_dims("int8 depthwise output", y, &[s.ho(), s.wo(), s.c])
}

/// Checks of [`depthwise_rows_i16`]: stride, shape, row range `oy0 < oy1 ≤ ho`, no table,
/// and the lengths (`x` the whole map, `y` the rows `oy0..oy1`).
pub(crate) fn check_dw_rows16(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &[i16],
) -> Result<(), Error> {
    if s.stride != 1 && s.stride != 2 {
        return Err(Error::InvalidConfig("depthwise: stride must be 1 or 2"));
    }
    if s.c == 0 || s.h == 0 || s.w == 0 {
        return Err(Error::InvalidConfig("depthwise: empty shape"));
    }
    if oy0 >= oy1 || oy1 > s.ho() {
        return Err(Error::InvalidConfig("depthwise rows: bad row range"));
    }
    if q.lut.is_some() {
        return Err(Error::InvalidConfig(
            "int8 depthwise: a 16-bit output takes no table",
        ));
    }
    check_dims("int8 depthwise input", x, &[s.h, s.w, s.c])?;
    check_conv(q, size_of_dims(&[s.c, 9])?, s.c)?;
    check_dims("int8 depthwise output", y, &[oy1 - oy0, s.wo(), s.c])
}

/// int8 depthwise 3×3 with a 16-bit output ([`ConvOut`], for a LayerNorm): output rows
/// `oy0..oy1` of the map `s` (global geometry and padding) into `y`, which holds just those
/// rows. The AVX2 kernel on x86-64 where it applies, else the portable row kernel
/// ([`crate::stream::kernels::depthwise_row_i8`]); bit-identical either way.
pub fn depthwise_rows_i16(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    check_dw_rows16(s, x, q, oy0, oy1, y)?;
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::depthwise::x86::int8::depthwise_rows_i16(s, x, q, oy0, oy1, y) {
        return Ok(());
    }
    depthwise_rows_i16_portable(s, x, q, oy0, oy1, y)
}

/// The portable body of [`depthwise_rows_i16`]: the row kernel on whole rows. Shapes checked
/// by the caller.
pub(crate) fn depthwise_rows_i16_portable(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    let (row, rl) = (s.w * s.c, s.wo() * s.c);
    for oy in oy0..oy1 {
        let r = |dy: usize| -> Option<&[i8]> {
            let iy = (oy * s.stride + dy).checked_sub(1)?;
            x.get(iy * row..(iy + 1) * row)
        };
        let inp = crate::stream::kernels::DwRows {
            rows: [r(0), r(1), r(2)],
            col0: 0,
        };
        let out = &mut y[(oy - oy0) * rl..(oy - oy0 + 1) * rl];
        crate::stream::kernels::depthwise_row_i8(s, &inp, q, oy, 0, out)?;
    }
    Ok(())
}

/// Tiled int8 depthwise 3×3; on Cortex-M with the DSP extension the SMLAD kernel of
/// `kernels::depthwise::arm_dsp`, on x86-64 with AVX2 the kernel of `kernels::depthwise::x86::int8`
/// (with the `std` feature, in bands of output rows on up to `kernels::threads::threads()`
/// threads when the map is large enough; same bits).
pub fn depthwise(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    check_dw(s, x, q, y)?;
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if crate::kernels::depthwise::x86::int8::takes(s, q) {
        let band = |oy0, oy1, yb: &mut [i8]| {
            crate::kernels::depthwise::x86::int8::depthwise_band(s, x, q, oy0, oy1, yb)
        };
        if let Some(r) = crate::kernels::threads::depthwise_bands(s, y, band) {
            return r;
        }
    }
    #[cfg(ldp_arm_mve)]
    if crate::kernels::depthwise::mve::depthwise(s, x, q, y) {
        return Ok(());
    }
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::depthwise::arm_dsp::depthwise(s, x, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::depthwise::x86::int8::depthwise(s, x, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::depthwise::neon::int8::depthwise(s, x, q, y) {
        return Ok(());
    }
    crate::kernels::depthwise::portable::int8::depthwise(s, x, q, y);
    Ok(())
}
