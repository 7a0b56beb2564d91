//! Portable tiled int8 pointwise kernel: 4 output channels × 2 pixels of `i32` accumulators per
//! tile, so each loaded input byte is used 4 times and each weight byte twice. Integer sums are
//! exact, so the result equals the reference bit for bit in any order.

use crate::quant::fixed::requant;
use crate::quant::kernels::{ConvOut, ConvQ};

#[inline(always)]
fn out<Y: ConvOut>(acc: i32, o: usize, q: &ConvQ<'_>) -> Y {
    Y::finish(
        q.out_zero.wrapping_add(requant(acc, q.mult_at(o), q.shift)),
        q.lut,
    )
}

#[inline(always)]
fn tile<Y: ConvOut, const TO: usize, const TP: usize>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
) {
    let mut acc = [[0i32; TP]; TO];
    let xs: [&[i8]; TP] = core::array::from_fn(|p| &x[(p0 + p) * c_in..(p0 + p + 1) * c_in]);
    let ws: [&[i8]; TO] = core::array::from_fn(|o| &q.weight[(o0 + o) * c_in..(o0 + o + 1) * c_in]);
    for i in 0..c_in {
        let xv: [i32; TP] = core::array::from_fn(|p| xs[p][i] as i32);
        for o in 0..TO {
            let wv = ws[o][i] as i32;
            for p in 0..TP {
                acc[o][p] = acc[o][p].wrapping_add(xv[p] * wv);
            }
        }
    }
    for o in 0..TO {
        for p in 0..TP {
            y[(p0 + p) * c_out + o0 + o] =
                out(acc[o][p].wrapping_add(q.bias_at(o0 + o)), o0 + o, q);
        }
    }
}

/// The portable kernel (the target's own ran first, see `Sealed::pointwise_arch` in `kernels`). Shapes
/// validated by the caller.
pub(crate) fn pointwise<Y: ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    let mut o = 0;
    while o + 4 <= c_out {
        let mut p = 0;
        while p + 2 <= pixels {
            tile::<Y, 4, 2>(x, c_in, q, c_out, y, o, p);
            p += 2;
        }
        if p < pixels {
            tile::<Y, 4, 1>(x, c_in, q, c_out, y, o, p);
        }
        o += 4;
    }
    while o < c_out {
        for p in 0..pixels {
            tile::<Y, 1, 1>(x, c_in, q, c_out, y, o, p);
        }
        o += 1;
    }
}
