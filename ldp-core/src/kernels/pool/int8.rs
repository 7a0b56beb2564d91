//! int8 adaptive average pool (TFLite AVERAGE_POOL_2D rounding), portable only.

use crate::error::Error;
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
/// `y = sat(z + div_round(Σ (x − z), count))`. Per output pixel and block of [`super::CB`]
/// channels, the bin's pixels are added in row-major order (each channel's sum the same exact
/// integer as [`super::adaptive_avg_pool_i8_reference`]'s); a power-of-two count divides by a
/// shift ([`div_round_pow2`], the same quotients).
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
    use super::{bin, CB};
    super::check_shape(true, x, h, w, c, y, ho, wo)?;
    let z = zero as i64;
    // Sums in `i32` lanes (twice as many per register) while they cannot overflow: for `i8` and
    // `i16` inputs and |z| ≤ 2^15, |x − z| ≤ 2^16, times at most 2^14 pixels: ≤ 2^30.
    let narrow = zero.unsigned_abs() <= 1 << 15;
    let mut acc = [0i64; CB];
    let mut acc32 = [0i32; CB];
    for oy in 0..ho {
        let (ys, ye) = bin(oy, h, ho);
        for ox in 0..wo {
            let (xs, xe) = bin(ox, w, wo);
            // At most h·w pixels, within the checked input length: no overflow.
            let count = ((ye - ys) * (xe - xs)) as i64;
            let o = (oy * wo + ox) * c;
            let mut c0 = 0;
            while c0 < c {
                let n = CB.min(c - c0);
                let dst = &mut y[o + c0..o + c0 + n];
                if narrow && count <= 1 << 14 {
                    let acc = &mut acc32[..n];
                    acc.fill(0);
                    for iy in ys..ye {
                        for ix in xs..xe {
                            let at = (iy * w + ix) * c + c0;
                            for (a, &v) in acc.iter_mut().zip(&x[at..at + n]) {
                                let v: i32 = v.into();
                                *a += v - zero;
                            }
                        }
                    }
                    means(dst, acc.iter().map(|&s| s as i64), count, zero, &sat);
                } else {
                    let acc = &mut acc[..n];
                    acc.fill(0);
                    for iy in ys..ye {
                        for ix in xs..xe {
                            let at = (iy * w + ix) * c + c0;
                            for (a, &v) in acc.iter_mut().zip(&x[at..at + n]) {
                                let v: i32 = v.into();
                                *a = a.wrapping_add(v as i64 - z);
                            }
                        }
                    }
                    means(dst, acc.iter().copied(), count, zero, &sat);
                }
                c0 += n;
            }
        }
    }
    Ok(())
}

/// `dst[i] = sat(z + div_round(sums[i], count))`, by a shift when `count` is a power of two.
#[inline(always)]
fn means<Y>(
    dst: &mut [Y],
    sums: impl Iterator<Item = i64>,
    count: i64,
    zero: i32,
    sat: &impl Fn(i32) -> Y,
) {
    if (count as u64).is_power_of_two() {
        let k = count.trailing_zeros();
        for (d, s) in dst.iter_mut().zip(sums) {
            *d = sat(zero.wrapping_add(div_round_pow2(s, k) as i32));
        }
    } else {
        for (d, s) in dst.iter_mut().zip(sums) {
            *d = sat(zero.wrapping_add(div_round(s, count) as i32));
        }
    }
}

/// [`div_round`]`(n, 2^k)` by a shift, for `k ≤ 62` and `|n| < 2^62`. For `n ≥ 0` it is
/// `(n + 2^(k−1)) >> k`; for `n < 0` the truncating division of `n − 2^(k−1)` is
/// `−floor((2^(k−1) − n) / 2^k) = floor((n − 2^(k−1) + 2^k − 1) / 2^k)`, one less in the bias.
/// Both biases are 0 for `k = 0`; no branch.
#[inline(always)]
fn div_round_pow2(n: i64, k: u32) -> i64 {
    let half = (1i64 << k) >> 1;
    let less = (k > 0) as i64 & (n < 0) as i64;
    (n + half - less) >> k
}
