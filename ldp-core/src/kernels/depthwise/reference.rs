//! The plain depthwise loop: one output at a time, taps in (ky, kx) order.

use super::DwShape;
use crate::elem::Elem;
use crate::error::Error;

/// Reference depthwise 3×3 convolution (layout in [`super`]).
pub fn depthwise3x3<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::check(s, x, weight, bias, residual, y)?;
    let (ho, wo) = (s.ho(), s.wo());
    for oy in 0..ho {
        for ox in 0..wo {
            for c in 0..s.c {
                let mut acc = bias.map_or(0.0, |b| b[c]);
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
                        let xi = (iy as usize * s.w + ix as usize) * s.c + c;
                        acc += x[xi].to_f32() * weight[c * 9 + ky * 3 + kx].to_f32();
                    }
                }
                let o = (oy * wo + ox) * s.c + c;
                if let Some(r) = residual {
                    acc += r[o].to_f32();
                }
                y[o] = Y::from_f32(acc);
            }
        }
    }
    Ok(())
}
