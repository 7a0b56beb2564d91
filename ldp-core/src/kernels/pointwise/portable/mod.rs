//! Portable register-tiled pointwise kernel.
//!
//! A tile is `TO` output channels × `TP` pixels; each of the `TO·TP` dot products is kept in
//! `LANES` independent partial sums over the input channels, so the inner loop has no
//! loop-carried dependency and vectorizes on any SIMD ISA without `-ffast-math`-style
//! reassociation. Pixels are processed in blocks of `PB` so that a block of inputs stays in L1/L2
//! while all weights stream past it.
//!
//! Reassociation bound: each output is a sum of `c_in + 1` products accumulated in `LANES`
//! partial sums then combined pairwise; its error against the serial reference is bounded by
//! `~(c_in/LANES + log2(LANES) + 1)·eps·Σ|x_i w_i|` — the tests use `c_in·eps·Σ|x_i w_i|`.

pub mod int8;

use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::Activation;

const LANES: usize = 8;
/// Pixels per cache block.
const PB: usize = 64;

#[inline(always)]
fn reduce(acc: &[f32; LANES]) -> f32 {
    let a = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (a[0] + a[2]) + (a[1] + a[3])
}

#[inline(always)]
fn tile<X: Elem, W: Elem, Y: Elem, const TO: usize, const TP: usize>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
    o0: usize,
    p0: usize,
) {
    let mut acc = [[[0.0f32; LANES]; TP]; TO];
    let full = c_in / LANES * LANES;
    let xs: [&[X]; TP] = core::array::from_fn(|p| &x[(p0 + p) * c_in..(p0 + p + 1) * c_in]);
    let ws: [&[W]; TO] = core::array::from_fn(|o| &w[(o0 + o) * c_in..(o0 + o + 1) * c_in]);
    let mut i = 0;
    while i < full {
        let xv: [[f32; LANES]; TP] =
            core::array::from_fn(|p| core::array::from_fn(|l| xs[p][i + l].to_f32()));
        for o in 0..TO {
            let wv: [f32; LANES] = core::array::from_fn(|l| ws[o][i + l].to_f32());
            for p in 0..TP {
                for l in 0..LANES {
                    acc[o][p][l] += xv[p][l] * wv[l];
                }
            }
        }
        i += LANES;
    }
    for o in 0..TO {
        let b = bias.map_or(0.0, |b| b[o0 + o]);
        for p in 0..TP {
            let mut s = reduce(&acc[o][p]);
            for j in full..c_in {
                s += xs[p][j].to_f32() * ws[o][j].to_f32();
            }
            let v = s + b;
            let v = match act {
                Some(a) => a.apply(v),
                None => v,
            };
            y[(p0 + p) * c_out + o0 + o] = Y::from_f32(v);
        }
    }
}

/// Tiled pointwise convolution (portable; the layout of [`super`]). Checks the shapes.
pub fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    let pixels = super::check_shapes(x, c_in, w, bias, c_out, y)?;
    let mut pb = 0;
    while pb < pixels {
        let pe = (pb + PB).min(pixels);
        let mut o = 0;
        while o + 4 <= c_out {
            let mut p = pb;
            while p + 2 <= pe {
                tile::<X, W, Y, 4, 2>(x, c_in, w, bias, c_out, act, y, o, p);
                p += 2;
            }
            if p < pe {
                tile::<X, W, Y, 4, 1>(x, c_in, w, bias, c_out, act, y, o, p);
            }
            o += 4;
        }
        while o < c_out {
            let mut p = pb;
            while p + 2 <= pe {
                tile::<X, W, Y, 1, 2>(x, c_in, w, bias, c_out, act, y, o, p);
                p += 2;
            }
            if p < pe {
                tile::<X, W, Y, 1, 1>(x, c_in, w, bias, c_out, act, y, o, p);
            }
            o += 1;
        }
        pb = pe;
    }
    Ok(())
}
