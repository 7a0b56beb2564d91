//! Bilinear resize, `align_corners=False`, no antialias (`F.interpolate(..., mode="bilinear")`).
//!
//! Source coordinate of output index `d`: `max(0, (d + 0.5)·(in/out) - 0.5)`; the two neighbours
//! are `floor` and `min(floor + 1, in - 1)`. For an exact 2× downscale this is 2×2 averaging.

pub mod int8;

#[cfg(any(ldp_arm_dsp, test))]
pub(crate) mod arm_dsp;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use crate::elem::Elem;
use crate::error::{check_dims, Error};

/// Interpolation taps along one axis: `(i0, i1, lambda)` with `v = (1-λ)·v[i0] + λ·v[i1]`.
/// (A `const fn`: the streaming layout runs the resize's row schedule at compile time.)
#[inline]
pub const fn taps(d: usize, n_in: usize, n_out: usize) -> (usize, usize, f32) {
    let scale = n_in as f32 / n_out as f32;
    let s = (d as f32 + 0.5) * scale - 0.5;
    // `max(s, 0.0)`: `s` is never NaN, and `s == -0.0` cannot occur (x − x rounds to +0).
    let src = if s > 0.0 { s } else { 0.0 };
    let i0 = src as usize;
    let i0 = if i0 < n_in - 1 { i0 } else { n_in - 1 };
    let i1 = if i0 + 1 < n_in { i0 + 1 } else { i0 };
    let lambda = src - i0 as f32;
    (i0, i1, lambda)
}

/// Resizes `x: [h][w][c]` to `y: [ho][wo][c]`.
pub fn bilinear<X: Elem, Y: Elem>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    y: &mut [Y],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig("resize: empty shape"));
    }
    check_dims("resize input", x, &[h, w, c])?;
    check_dims("resize output", y, &[ho, wo, c])?;
    bilinear_rows(x, h, w, c, y, ho, wo, 0..ho);
    Ok(())
}

/// Computes output rows `rows` of a bilinear resize (shapes already validated); `y` holds those rows only.
#[allow(clippy::too_many_arguments)]
pub(crate) fn bilinear_rows<X: Elem, Y: Elem>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    y: &mut [Y],
    ho: usize,
    wo: usize,
    rows: core::ops::Range<usize>,
) {
    let r0 = rows.start;
    for oy in rows {
        let (y0, y1, ly) = taps(oy, h, ho);
        for ox in 0..wo {
            let (x0, x1, lx) = taps(ox, w, wo);
            let p00 = (y0 * w + x0) * c;
            let p01 = (y0 * w + x1) * c;
            let p10 = (y1 * w + x0) * c;
            let p11 = (y1 * w + x1) * c;
            let o = ((oy - r0) * wo + ox) * c;
            for ch in 0..c {
                let top = (1.0 - lx) * x[p00 + ch].to_f32() + lx * x[p01 + ch].to_f32();
                let bot = (1.0 - lx) * x[p10 + ch].to_f32() + lx * x[p11 + ch].to_f32();
                y[o + ch] = Y::from_f32((1.0 - ly) * top + ly * bot);
            }
        }
    }
}
