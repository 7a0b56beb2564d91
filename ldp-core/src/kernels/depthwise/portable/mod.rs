//! Portable depthwise kernel, tiled by row bands and blocks of `CB` channels.
//!
//! For each band of output rows and each channel block, the 9 taps of the block are transposed
//! once into registers (`[9][CB]`), then every output pixel of the band is a `CB`-wide vector
//! multiply-accumulate over the valid taps. The accumulation order per output (bias, then taps in
//! (ky, kx) order, then the residual) is the reference's, so results are bit-identical to it.

pub mod int8;

use super::DwShape;
use crate::elem::Elem;
use crate::error::Error;

const CB: usize = 8;
const BAND: usize = 4;

#[inline(always)]
fn block<X: Elem, W: Elem, Y: Elem, R: Elem, const N: usize>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
    c0: usize,
    rows: core::ops::Range<usize>,
) {
    let wo = s.wo();
    let wt: [[f32; N]; 9] =
        core::array::from_fn(|k| core::array::from_fn(|l| weight[(c0 + l) * 9 + k].to_f32()));
    let b: [f32; N] = core::array::from_fn(|l| bias.map_or(0.0, |b| b[c0 + l]));
    for oy in rows {
        let (ky0, ky1) = crate::kernels::depthwise::tap_range(oy, s.stride, s.h);
        for ox in 0..wo {
            let (kx0, kx1) = crate::kernels::depthwise::tap_range(ox, s.stride, s.w);
            let mut acc = b;
            for ky in ky0..ky1 {
                let iy = oy * s.stride + ky - 1;
                for kx in kx0..kx1 {
                    let ix = ox * s.stride + kx - 1;
                    let base = (iy * s.w + ix) * s.c + c0;
                    let xv = &x[base..base + N];
                    let wk = &wt[ky * 3 + kx];
                    for l in 0..N {
                        acc[l] += xv[l].to_f32() * wk[l];
                    }
                }
            }
            let o = (oy * wo + ox) * s.c + c0;
            if let Some(r) = residual {
                let rv = &r[o..o + N];
                for l in 0..N {
                    acc[l] += rv[l].to_f32();
                }
            }
            let yv = &mut y[o..o + N];
            for l in 0..N {
                yv[l] = Y::from_f32(acc[l]);
            }
        }
    }
}

/// Tiled depthwise 3×3 (portable; the layout of [`super`]). Checks the shapes.
pub fn depthwise3x3<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::check(s, x, weight, bias, residual, y)?;
    let ho = s.ho();
    let mut r0 = 0;
    while r0 < ho {
        let r1 = (r0 + BAND).min(ho);
        let mut c0 = 0;
        while c0 + CB <= s.c {
            block::<X, W, Y, R, CB>(s, x, weight, bias, residual, y, c0, r0..r1);
            c0 += CB;
        }
        while c0 < s.c {
            block::<X, W, Y, R, 1>(s, x, weight, bias, residual, y, c0, r0..r1);
            c0 += 1;
        }
        r0 = r1;
    }
    Ok(())
}
