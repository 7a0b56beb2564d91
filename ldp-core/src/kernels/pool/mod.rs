//! Adaptive average pooling with PyTorch's bins (`nn.AdaptiveAvgPool2d`).
//!
//! Output index `i` of `n_out` averages input indices `floor(i·n_in/n_out) .. ceil((i+1)·n_in/n_out)`.

pub mod int8;
mod reference;

pub use reference::{adaptive_avg_pool_i8_reference, adaptive_avg_pool_reference};

use crate::elem::Elem;
use crate::error::{check_dims, Error};

/// The half-open input range of output bin `i`.
#[inline]
pub const fn bin(i: usize, n_in: usize, n_out: usize) -> (usize, usize) {
    let start = i * n_in / n_out;
    let end = ((i + 1) * n_in).div_ceil(n_out);
    (start, end)
}

/// The shape checks every pool makes: a non-empty shape, `x` of `h·w·c` values and `y` of
/// `ho·wo·c` (`int8` picks the messages' prefix).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_shape<X, Y>(
    int8: bool,
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    y: &[Y],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    let [empty, input, output] = if int8 {
        [
            "int8 pool: empty shape",
            "int8 pool input",
            "int8 pool output",
        ]
    } else {
        ["pool: empty shape", "pool input", "pool output"]
    };
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig(empty));
    }
    check_dims(input, x, &[h, w, c])?;
    check_dims(output, y, &[ho, wo, c])
}

/// Channels summed per pixel at a time: a block on the stack, so the sums run over contiguous
/// channels (vectorized) instead of one strided channel at a time.
pub(super) const CB: usize = 64;

/// Adaptive average pool `x: [h][w][c]` → `y: [ho][wo][c]`: per output pixel and block of
/// 64 channels (`CB`), the bin's pixels added in row-major order (each channel's sum the same
/// chain of additions as [`adaptive_avg_pool_reference`], so the same bits), then scaled by
/// `1/count`.
pub fn adaptive_avg_pool<X: Elem, Y: Elem>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    y: &mut [Y],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    check_shape(false, x, h, w, c, y, ho, wo)?;
    let mut acc = [0.0f32; CB];
    for oy in 0..ho {
        let (ys, ye) = bin(oy, h, ho);
        for ox in 0..wo {
            let (xs, xe) = bin(ox, w, wo);
            let inv = 1.0 / ((ye - ys) * (xe - xs)) as f32;
            let o = (oy * wo + ox) * c;
            let mut c0 = 0;
            while c0 < c {
                let n = CB.min(c - c0);
                let acc = &mut acc[..n];
                acc.fill(0.0);
                for iy in ys..ye {
                    for ix in xs..xe {
                        let at = (iy * w + ix) * c + c0;
                        for (a, v) in acc.iter_mut().zip(&x[at..at + n]) {
                            *a += v.to_f32();
                        }
                    }
                }
                for (d, &a) in y[o + c0..o + c0 + n].iter_mut().zip(acc.iter()) {
                    *d = Y::from_f32(a * inv);
                }
                c0 += n;
            }
        }
    }
    Ok(())
}
