//! x86-64 AVX2 depthwise 3×3 kernel, f32 and f16 storage (F16C conversions).
//!
//! Channels are innermost (NHWC), so a block of `8·V` channels is `V` ymm registers. For each
//! block the 9 taps are transposed once to `[9][8·V]`; then every output pixel is `V` vector
//! accumulators over its valid taps. Per output the arithmetic is the reference's, in its
//! order — `bias`, then `+ x·w` for each valid tap in (ky, kx) order as a separate multiply and
//! add (no FMA), then `+ residual` — so the results equal the reference bit for bit. Channels
//! past the last multiple of 8 take the same scalar sequence.

pub mod int8;

use core::arch::x86_64::*;

use super::DwShape;
use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::cpu;
use crate::DType;

/// Runs the AVX2 kernel if the CPU has it (else `false`). Shapes must already be validated.
pub(crate) fn depthwise3x3<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> bool {
    if !cpu::x86_avx2_fma() {
        return false;
    }
    // SAFETY: AVX2, FMA and F16C are present (checked just above).
    unsafe { depthwise3x3_avx2(s, x, weight, bias, residual, y) }.is_ok()
}

/// The AVX2 kernel, for tests and benchmarks that want this path whatever the dispatch picks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn depthwise3x3_avx2<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::check(s, x, weight, bias, residual, y)?;
    // SAFETY: features guaranteed by the caller; shapes validated just above.
    unsafe { run(s, x, weight, bias, residual, y) };
    Ok(())
}

/// # Safety
/// `p..p+8` readable; F16C available.
#[inline(always)]
unsafe fn load8<T: Elem>(p: *const T) -> __m256 {
    // SAFETY: per the contract; `T` is f32 or f16.
    unsafe {
        if T::DTYPE == DType::F16 {
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
        } else {
            _mm256_loadu_ps(p as *const f32)
        }
    }
}

/// # Safety
/// `p..p+8` writable; F16C available.
#[inline(always)]
unsafe fn store8<T: Elem>(p: *mut T, v: __m256) {
    // SAFETY: per the contract; `T` is f32 or f16. Round to nearest even, as `half`.
    unsafe {
        if T::DTYPE == DType::F16 {
            _mm_storeu_si128(
                p as *mut __m128i,
                _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v),
            );
        } else {
            _mm256_storeu_ps(p as *mut f32, v)
        }
    }
}

/// Channels `c0..c0+8·V` of every output pixel.
///
/// # Safety
/// Shapes validated; `c0 + 8·V ≤ s.c`; AVX2 and F16C available.
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
    // SAFETY (whole body): all indices stay inside the validated shapes: taps are clipped to
    // the map, channels to c0..c0+8·V ≤ c.
    unsafe {
        let mut wt = [[_mm256_setzero_ps(); V]; 9];
        for (k, wk) in wt.iter_mut().enumerate() {
            for (v, wv) in wk.iter_mut().enumerate() {
                let t: [f32; 8] =
                    core::array::from_fn(|l| weight[(c0 + 8 * v + l) * 9 + k].to_f32());
                *wv = _mm256_loadu_ps(t.as_ptr());
            }
        }
        let mut b = [_mm256_setzero_ps(); V];
        if let Some(bs) = bias {
            for (v, bv) in b.iter_mut().enumerate() {
                *bv = _mm256_loadu_ps(bs.as_ptr().add(c0 + 8 * v));
            }
        }
        for oy in 0..ho {
            let ky0 = if oy * s.stride == 0 { 1 } else { 0 };
            let ky1 = (s.h + 1 - oy * s.stride).min(3);
            for ox in 0..wo {
                let kx0 = if ox * s.stride == 0 { 1 } else { 0 };
                let kx1 = (s.w + 1 - ox * s.stride).min(3);
                let mut acc = b;
                for ky in ky0..ky1 {
                    let iy = oy * s.stride + ky - 1;
                    for kx in kx0..kx1 {
                        let ix = ox * s.stride + kx - 1;
                        let xp = x.as_ptr().add((iy * s.w + ix) * c + c0);
                        let wk = &wt[ky * 3 + kx];
                        for v in 0..V {
                            acc[v] =
                                _mm256_add_ps(acc[v], _mm256_mul_ps(load8(xp.add(8 * v)), wk[v]));
                        }
                    }
                }
                let o = (oy * wo + ox) * c + c0;
                if let Some(r) = residual {
                    for v in 0..V {
                        acc[v] = _mm256_add_ps(acc[v], load8(r.as_ptr().add(o + 8 * v)));
                    }
                }
                for v in 0..V {
                    store8(y.as_mut_ptr().add(o + 8 * v), acc[v]);
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
        let ky0 = if oy * s.stride == 0 { 1 } else { 0 };
        let ky1 = (s.h + 1 - oy * s.stride).min(3);
        for ox in 0..wo {
            let kx0 = if ox * s.stride == 0 { 1 } else { 0 };
            let kx1 = (s.w + 1 - ox * s.stride).min(3);
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
/// Shapes validated; AVX2, FMA and F16C available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) {
    let mut c0 = 0;
    // SAFETY: each block covers channels c0..c0+8·V ≤ s.c; features per the contract.
    unsafe {
        while c0 + 32 <= s.c {
            block::<X, W, Y, R, 4>(s, x, weight, bias, residual, y, c0);
            c0 += 32;
        }
        while c0 + 8 <= s.c {
            block::<X, W, Y, R, 1>(s, x, weight, bias, residual, y, c0);
            c0 += 8;
        }
    }
    if c0 < s.c {
        scalar_tail(s, x, weight, bias, residual, y, c0);
    }
}
