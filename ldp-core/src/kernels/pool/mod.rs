//! Adaptive average pooling with PyTorch's bins (`nn.AdaptiveAvgPool2d`).
//!
//! Output index `i` of `n_out` averages input indices `floor(i·n_in/n_out) .. ceil((i+1)·n_in/n_out)`.

pub mod int8;

use crate::elem::Elem;
use crate::error::{check_dims, Error};

/// The half-open input range of output bin `i`.
#[inline]
pub const fn bin(i: usize, n_in: usize, n_out: usize) -> (usize, usize) {
    let start = i * n_in / n_out;
    let end = ((i + 1) * n_in).div_ceil(n_out);
    (start, end)
}

/// Adaptive average pool `x: [h][w][c]` → `y: [ho][wo][c]`.
pub fn adaptive_avg_pool<X: Elem, Y: Elem>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    y: &mut [Y],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig("pool: empty shape"));
    }
    check_dims("pool input", x, &[h, w, c])?;
    check_dims("pool output", y, &[ho, wo, c])?;
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
