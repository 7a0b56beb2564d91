//! AArch64 NEON depthwise 3×3 kernel, f32 and f16 storage.
//!
//! The x86 kernel's structure with 4-lane vectors: a block of `4·V` channels is
//! `V` q registers, the block's 9 taps are transposed once, and every output pixel accumulates
//! its valid taps. Per output the arithmetic is the reference's, in its order, with separate
//! `vmulq_f32` and `vaddq_f32` (no FMA), so the results equal the reference bit for bit.

pub(crate) mod int8;

use core::arch::aarch64::*;

use super::DwShape;
use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::pointwise::neon::{load4, store4};

/// Runs the NEON kernel (`false` only if the target lacks NEON). Shapes must be validated.
pub(crate) fn depthwise3x3<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> bool {
    if !cfg!(target_feature = "neon") {
        return false;
    }
    // SAFETY: NEON is enabled for this target (checked above).
    unsafe { depthwise3x3_neon(s, x, weight, bias, residual, y) }.is_ok()
}

/// The NEON kernel with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support NEON.
pub unsafe fn depthwise3x3_neon<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::check(s, x, weight, bias, residual, y)?;
    // SAFETY: shapes validated just above; NEON per the caller.
    unsafe { run(s, x, weight, bias, residual, y) };
    Ok(())
}

/// Channels `c0..c0+4·V` of every output pixel.
///
/// # Safety
/// Shapes validated; `c0 + 4·V ≤ s.c`.
#[inline(always)]
unsafe fn block<X: Elem, W: Elem, Y: Elem, R: Elem, const V: usize>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
    c0: usize,
) {
    let (ho, wo, c) = (s.ho(), s.wo(), s.c);
    // SAFETY (whole body): taps are clipped to the map, channels to c0..c0+4·V ≤ c.
    unsafe {
        let mut wt = [[vdupq_n_f32(0.0); V]; 9];
        for (k, wk) in wt.iter_mut().enumerate() {
            for (v, wv) in wk.iter_mut().enumerate() {
                let t: [f32; 4] =
                    core::array::from_fn(|l| weight[(c0 + 4 * v + l) * 9 + k].to_f32());
                *wv = vld1q_f32(t.as_ptr());
            }
        }
        let mut b = [vdupq_n_f32(0.0); V];
        if let Some(bs) = bias {
            for (v, bv) in b.iter_mut().enumerate() {
                *bv = vld1q_f32(bs.as_ptr().add(c0 + 4 * v));
            }
        }
        for oy in 0..ho {
            let (ky0, ky1) = crate::kernels::depthwise::tap_range(oy, s.stride, s.h);
            for ox in 0..wo {
                let (kx0, kx1) = crate::kernels::depthwise::tap_range(ox, s.stride, s.w);
                let mut acc = b;
                for ky in ky0..ky1 {
                    let iy = oy * s.stride + ky - 1;
                    for kx in kx0..kx1 {
                        let ix = ox * s.stride + kx - 1;
                        let xp = x.as_ptr().add((iy * s.w + ix) * c + c0);
                        let wk = &wt[ky * 3 + kx];
                        for v in 0..V {
                            acc[v] = vaddq_f32(acc[v], vmulq_f32(load4(xp.add(4 * v)), wk[v]));
                        }
                    }
                }
                let o = (oy * wo + ox) * c + c0;
                if let Some(r) = residual {
                    for v in 0..V {
                        acc[v] = vaddq_f32(acc[v], load4(r.as_ptr().add(o + 4 * v)));
                    }
                }
                for v in 0..V {
                    store4(y.as_mut_ptr().add(o + 4 * v), acc[v]);
                }
            }
        }
    }
}

/// Channels `c0..c` one at a time, the reference's sequence.
fn scalar_tail<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
    c0: usize,
) {
    let (ho, wo, c) = (s.ho(), s.wo(), s.c);
    for oy in 0..ho {
        let (ky0, ky1) = crate::kernels::depthwise::tap_range(oy, s.stride, s.h);
        for ox in 0..wo {
            let (kx0, kx1) = crate::kernels::depthwise::tap_range(ox, s.stride, s.w);
            let o = (oy * wo + ox) * c;
            for ch in c0..c {
                let mut acc = bias.map_or(0.0, |b| b[ch]);
                for ky in ky0..ky1 {
                    let iy = oy * s.stride + ky - 1;
                    for kx in kx0..kx1 {
                        let ix = ox * s.stride + kx - 1;
                        acc += x[(iy * s.w + ix) * c + ch].to_f32()
                            * weight[ch * 9 + ky * 3 + kx].to_f32();
                    }
                }
                if let Some(r) = residual {
                    acc += r[o + ch].to_f32();
                }
                y[o + ch] = Y::from_f32(acc);
            }
        }
    }
}

/// # Safety
/// Shapes validated; NEON available.
#[target_feature(enable = "neon")]
unsafe fn run<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) {
    let mut c0 = 0;
    // SAFETY: each block covers channels c0..c0+4·V ≤ s.c.
    unsafe {
        while c0 + 16 <= s.c {
            block::<X, W, Y, R, 4>(s, x, weight, bias, residual, y, c0);
            c0 += 16;
        }
        while c0 + 4 <= s.c {
            block::<X, W, Y, R, 1>(s, x, weight, bias, residual, y, c0);
            c0 += 4;
        }
    }
    if c0 < s.c {
        scalar_tail(s, x, weight, bias, residual, y, c0);
    }
}
