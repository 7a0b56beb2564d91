//! The plain adaptive average pools, one output value at a time (the bin's pixels in row-major
//! order): the references of [`super::adaptive_avg_pool`] and [`super::int8::adaptive_avg_pool`],
//! which sum whole channel blocks per pixel instead, in the same order per channel (same bits).

use super::bin;
use crate::elem::Elem;
use crate::error::Error;
use crate::quant::fixed::{div_round, sat_i8};

/// Adaptive average pool `x: [h][w][c]` → `y: [ho][wo][c]`, one value at a time: the reference
/// of [`super::adaptive_avg_pool`] (bit-identical).
pub fn adaptive_avg_pool_reference<X: Elem, Y: Elem>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    y: &mut [Y],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    super::check_shape(false, x, h, w, c, y, ho, wo)?;
    for oy in 0..ho {
        let (ys, ye) = bin(oy, h, ho);
        for ox in 0..wo {
            let (xs, xe) = bin(ox, w, wo);
            let inv = 1.0 / ((ye - ys) * (xe - xs)) as f32;
            let o = (oy * wo + ox) * c;
            for ch in 0..c {
                let mut s = 0.0f32;
                for iy in ys..ye {
                    for ix in xs..xe {
                        s += x[(iy * w + ix) * c + ch].to_f32();
                    }
                }
                y[o + ch] = Y::from_f32(s * inv);
            }
        }
    }
    Ok(())
}

/// int8 adaptive average pool, one value at a time: the reference of
/// [`super::int8::adaptive_avg_pool`] (bit-identical), `y = sat(z + div_round(Σ (x − z), count))`.
#[allow(clippy::too_many_arguments)]
pub fn adaptive_avg_pool_i8_reference(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    super::check_shape(true, x, h, w, c, y, ho, wo)?;
    for oy in 0..ho {
        let (ys, ye) = bin(oy, h, ho);
        for ox in 0..wo {
            let (xs, xe) = bin(ox, w, wo);
            let count = ((ye - ys) * (xe - xs)) as i64;
            let o = (oy * wo + ox) * c;
            for ch in 0..c {
                let mut s = 0i64;
                for iy in ys..ye {
                    for ix in xs..xe {
                        let v = x[(iy * w + ix) * c + ch] as i64;
                        s = s.wrapping_add(v - zero as i64);
                    }
                }
                y[o + ch] = sat_i8(zero.wrapping_add(div_round(s, count) as i32));
            }
        }
    }
    Ok(())
}
