//! Portable int8 depthwise kernel: interior pixels take all 9 taps without bounds tests, border
//! pixels the valid ones; channels innermost (contiguous in NHWC).

use crate::kernels::depthwise::DwShape;
use crate::quant::fixed::{requant, sat_i8};
use crate::quant::kernels::ConvQ;

/// Shapes validated by the caller.
pub(crate) fn depthwise(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) {
    let (ho, wo, c) = (s.ho(), s.wo(), s.c);
    let z = q.in_zero;
    for oy in 0..ho {
        let (ky0, ky1) = crate::kernels::depthwise::tap_range(oy, s.stride, s.h);
        for ox in 0..wo {
            let (kx0, kx1) = crate::kernels::depthwise::tap_range(ox, s.stride, s.w);
            let o = (oy * wo + ox) * c;
            for ch in 0..c {
                let wk = &q.weight[ch * 9..ch * 9 + 9];
                let mut acc = q.bias_at(ch);
                for ky in ky0..ky1 {
                    let row = (oy * s.stride + ky - 1) * s.w;
                    for kx in kx0..kx1 {
                        let xv =
                            (x[(row + ox * s.stride + kx - 1) * c + ch] as i32).wrapping_sub(z);
                        acc = acc.wrapping_add(xv.wrapping_mul(wk[ky * 3 + kx] as i32));
                    }
                }
                let v = sat_i8(
                    q.out_zero
                        .wrapping_add(requant(acc, q.mult_at(ch), q.shift)),
                );
                y[o + ch] = match q.lut {
                    Some(t) => t[(v as i32 + 128) as usize],
                    None => v,
                };
            }
        }
    }
}
