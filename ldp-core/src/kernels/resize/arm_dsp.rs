//! int8 bilinear resize for Cortex-M with the DSP extension (32-bit sums, one 64-bit product).

use crate::kernels::isa::arm_dsp::*;
use crate::quant::fixed::sat_i8;

/// Bilinear resize (`kernels::resize_bilinear`), exactly: the Q20 weights of a pixel sum to
/// `2²⁰` (`(1024−λy)(1024−λx) + … = 1024²`), so `Σ w·(x − z) = Σ w·x − z·2²⁰`, and
/// `|Σ w·x| ≤ 2⁷·2²⁰`, `|z·2²⁰| ≤ 2²⁷`: the sum fits an `i32`, its product with the `i16`
/// multiplier an `i64` (no wrapping), then the split shift by `shift + 20`.
pub(crate) fn resize_bilinear(
    x: &[i8],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) -> bool {
    use crate::quant::kernels::taps_q10;
    if crate::kernels::resize::int8::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo)).is_err()
    {
        return false;
    }
    let sh = Shr64::new(shift.saturating_add(20));
    let per_ch = in_zero.len() != 1 || mult.len() != 1;
    for oy in 0..ho {
        let (y0, y1, ly) = taps_q10(oy, h, ho);
        for ox in 0..wo {
            let (x0, x1, lx) = taps_q10(ox, w, wo);
            let wts = [
                ((1024 - ly) * (1024 - lx)) as i32,
                ((1024 - ly) * lx) as i32,
                (ly * (1024 - lx)) as i32,
                (ly * lx) as i32,
            ];
            let at = |yy: usize, xx: usize| &x[(yy * w + xx) * c..(yy * w + xx + 1) * c];
            let src = [at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1)];
            let o = (oy * wo + ox) * c;
            let dst = &mut y[o..o + c];
            let px = RzPixel {
                wts,
                sh,
                z: out_zero,
            };
            match (per_ch, sh.hi()) {
                (false, false) => px.run::<false>(dst, src, |_| (in_zero[0], mult[0])),
                (false, true) => px.run::<true>(dst, src, |_| (in_zero[0], mult[0])),
                (true, false) => px.run::<false>(dst, src, |ch| {
                    (in_zero[ch % in_zero.len()], mult[ch % mult.len()])
                }),
                (true, true) => px.run::<true>(dst, src, |ch| {
                    (in_zero[ch % in_zero.len()], mult[ch % mult.len()])
                }),
            }
        }
    }
    true
}

/// One output pixel of [`resize_bilinear`].
struct RzPixel {
    wts: [i32; 4],
    sh: Shr64,
    z: i32,
}

impl RzPixel {
    #[inline(always)]
    fn run<const HI: bool>(
        &self,
        dst: &mut [i8],
        src: [&[i8]; 4],
        zm: impl Fn(usize) -> (i8, i16),
    ) {
        let [w0, w1, w2, w3] = self.wts;
        let it = dst
            .iter_mut()
            .zip(src[0])
            .zip(src[1])
            .zip(src[2])
            .zip(src[3]);
        for (ch, ((((o, &a), &b), &cc), &d)) in it.enumerate() {
            let (z, m) = zm(ch);
            let s =
                w0 * a as i32 + w1 * b as i32 + w2 * cc as i32 + w3 * d as i32 - ((z as i32) << 20);
            *o = sat_i8(
                self.z
                    .wrapping_add(self.sh.apply::<HI>(s as i64 * m as i64)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::isa::arm_dsp::test_util::*;
    use std::{vec, vec::Vec};

    #[test]
    fn resize_matches_reference() {
        use crate::quant::kernels::resize_bilinear as rz_ref;
        let mut r = Rng(0x5e51_2e00);
        for case in 0..200 {
            let (h, w, c) = (
                r.range(1, 13) as usize,
                r.range(1, 13) as usize,
                r.range(1, 40) as usize,
            );
            let (ho, wo) = (r.range(1, 13) as usize, r.range(1, 13) as usize);
            let x = r.i8s(h * w * c);
            let per_ch = case % 2 == 0;
            let nz = if per_ch { c } else { 1 };
            let zin = r.i8s(nz);
            let mult: Vec<i16> = (0..nz).map(|_| r.next() as i16).collect();
            let shift = if case % 5 == 0 {
                r.range(-30, 70) as i32
            } else {
                r.range(5, 25) as i32
            };
            let z = r.range(-128, 127) as i32;
            let mut want = vec![0i8; ho * wo * c];
            rz_ref(&x, h, w, c, &zin, &mult, shift, z, &mut want, ho, wo).unwrap();
            let mut got = vec![0i8; ho * wo * c];
            assert!(resize_bilinear(
                &x,
                (h, w, c),
                &zin,
                &mult,
                shift,
                z,
                &mut got,
                (ho, wo)
            ));
            assert_eq!(got, want, "case {case}");
        }
    }
}
