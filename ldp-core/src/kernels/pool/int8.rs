//! int8 adaptive average pool (TFLite AVERAGE_POOL_2D rounding), portable only.

use crate::error::{check_dims, Error};
use crate::quant::fixed::{div_round, sat_i8};

/// int8 adaptive average pool (TFLite AVERAGE_POOL_2D rounding; output keeps the input's
/// quantization): `y = z + div_round(Σ (x − z), count)`.
#[allow(clippy::too_many_arguments)]
pub fn adaptive_avg_pool(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    pool_means(x, h, w, c, zero, y, ho, wo, sat_i8)
}

/// The adaptive average pool over `i8` or `i16` activations:
/// `y = sat(z + div_round(Σ (x − z), count))`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_means<X: Copy + Into<i32>, Y>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    zero: i32,
    y: &mut [Y],
    ho: usize,
    wo: usize,
    sat: impl Fn(i32) -> Y,
) -> Result<(), Error> {
    use crate::kernels::pool::bin;
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig("int8 pool: empty shape"));
    }
    check_dims("int8 pool input", x, &[h, w, c])?;
    check_dims("int8 pool output", y, &[ho, wo, c])?;
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
                        let v: i32 = x[(iy * w + ix) * c + ch].into();
                        s = s.wrapping_add(v as i64 - zero as i64);
                    }
                }
                y[o + ch] = sat(zero.wrapping_add(div_round(s, count) as i32));
            }
        }
    }
    Ok(())
}
