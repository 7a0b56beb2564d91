//! x86-64 AVX2 depthwise 3×3 kernel, f32 and f16 storage (F16C conversions).
//!
//! Channels are innermost (NHWC), so a block of `8·V` channels is `V` ymm registers. The taps
//! of up to 256 channels are staged once as `[9][256]` f32; then, output row by output row
//! (in a row, pixels outside the chunk's channel blocks: see `run`), every output
//! pixel's channel block is `V` vector accumulators over its valid taps, unrolled for interior
//! pixels. Per output the arithmetic is the reference's, in its
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

/// Output rows `oy0..oy1` of the map into `y` (and from `residual`), both holding just those
/// rows, with the AVX2 kernel if the CPU has it (else `false`). The whole-map shapes must
/// already be validated ([`super::check`] with a whole-map `y`); the band's lengths and range
/// are checked here (`false` when they do not hold). For the threaded dispatch: the bits of
/// each output do not depend on the band it lands in.
#[allow(clippy::too_many_arguments)]
// Used by the threaded dispatch (`std`).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
pub(crate) fn depthwise3x3_rows<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
    oy0: usize,
    oy1: usize,
) -> bool {
    let band = oy1.checked_sub(oy0).map(|n| n * s.wo() * s.c);
    if !cpu::x86_avx2_fma()
        || oy1 > s.ho()
        || band != Some(y.len())
        || residual.is_some_and(|r| Some(r.len()) != band)
    {
        return false;
    }
    // SAFETY: AVX2, FMA and F16C present; the map's shapes validated by the caller, the band's
    // range and lengths just above.
    unsafe { run(s, x, weight, bias, residual, y, oy0, oy1) };
    true
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
    unsafe { run(s, x, weight, bias, residual, y, 0, s.ho()) };
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

/// Channels staged per chunk: the taps of `CH` channels as `[9][CH]` f32 (9 KiB of stack).
const CH: usize = 256;

/// Output pixel `ox` of row `oy` (at `yrow`, its residual row at `rrow`), channels
/// `c0..c0+8·V` (inside the staged chunk starting at `cs`). Interior pixels (all 9 taps inside
/// the map) run the taps unrolled; border pixels clip them.
///
/// # Safety
/// Shapes validated; `oy < ho`, `ox < wo`; `yrow` (and `rrow`) point at `wo·c` elements of row `oy`;
/// `cs ≤ c0`, `c0 + 8·V ≤ min(cs + CH, s.c)`; `wt[k·CH + i]` holds tap `k` of channel
/// `cs + i`; AVX2 and F16C available.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pixel<X: Elem, Y: Elem, R: Elem, const V: usize>(
    s: DwShape,
    x: &[X],
    wt: &[f32; 9 * CH],
    cs: usize,
    bias: Option<&[f32]>,
    rrow: Option<*const R>,
    yrow: *mut Y,
    oy: usize,
    ox: usize,
    c0: usize,
) {
    let c = s.c;
    // SAFETY (whole body): all indices stay inside the validated shapes: taps are clipped to
    // the map (the unrolled form only runs when all nine are inside), channels to
    // c0..c0+8·V ≤ c, staged taps to c0 − cs + 8·V ≤ CH, outputs to the row's wo·c elements.
    unsafe {
        let mut b = [_mm256_setzero_ps(); V];
        if let Some(bs) = bias {
            for (v, bv) in b.iter_mut().enumerate() {
                *bv = _mm256_loadu_ps(bs.as_ptr().add(c0 + 8 * v));
            }
        }
        let wp = wt.as_ptr().add(c0 - cs);
        let (ky0, ky1) = crate::kernels::depthwise::tap_range(oy, s.stride, s.h);
        let (kx0, kx1) = crate::kernels::depthwise::tap_range(ox, s.stride, s.w);
        let mut acc = b;
        if ky0 == 0 && ky1 == 3 && kx0 == 0 && kx1 == 3 {
            let x0 = x
                .as_ptr()
                .add(((oy * s.stride - 1) * s.w + ox * s.stride - 1) * c + c0);
            for ky in 0..3 {
                for kx in 0..3 {
                    let xp = x0.add((ky * s.w + kx) * c);
                    let wk = wp.add((ky * 3 + kx) * CH);
                    for v in 0..V {
                        acc[v] = _mm256_add_ps(
                            acc[v],
                            _mm256_mul_ps(load8(xp.add(8 * v)), _mm256_loadu_ps(wk.add(8 * v))),
                        );
                    }
                }
            }
        } else {
            for ky in ky0..ky1 {
                let iy = oy * s.stride + ky - 1;
                for kx in kx0..kx1 {
                    let ix = ox * s.stride + kx - 1;
                    let xp = x.as_ptr().add((iy * s.w + ix) * c + c0);
                    let wk = wp.add((ky * 3 + kx) * CH);
                    for v in 0..V {
                        acc[v] = _mm256_add_ps(
                            acc[v],
                            _mm256_mul_ps(load8(xp.add(8 * v)), _mm256_loadu_ps(wk.add(8 * v))),
                        );
                    }
                }
            }
        }
        let o = ox * c + c0;
        if let Some(r) = rrow {
            for v in 0..V {
                acc[v] = _mm256_add_ps(acc[v], load8(r.add(o + 8 * v)));
            }
        }
        for v in 0..V {
            store8(yrow.add(o + 8 * v), acc[v]);
        }
    }
}

/// Channels `c0..c` one at a time, the reference's sequence, output rows `oy0..oy1` into `y`
/// (and `residual`) holding just those rows.
#[allow(clippy::too_many_arguments)]
fn scalar_tail<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
    c0: usize,
    (oy0, oy1): (usize, usize),
) {
    let (wo, c) = (s.wo(), s.c);
    for oy in oy0..oy1 {
        let (ky0, ky1) = crate::kernels::depthwise::tap_range(oy, s.stride, s.h);
        for ox in 0..wo {
            let (kx0, kx1) = crate::kernels::depthwise::tap_range(ox, s.stride, s.w);
            let o = ((oy - oy0) * wo + ox) * c;
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

/// Output rows `oy0..oy1` of the map into `y` (and from `residual`), both holding just those
/// rows.
///
/// # Safety
/// Shapes validated as [`super::check`] does for the whole map, except that `y` and `residual`
/// hold `(oy1 − oy0)·wo·c` elements; `oy0 ≤ oy1 ≤ ho`; AVX2, FMA and F16C available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn run<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
    oy0: usize,
    oy1: usize,
) {
    let c8 = s.c / 8 * 8;
    let rl = s.wo() * s.c;
    let mut wt = [0.0f32; 9 * CH];
    // Chunks of CH channels: the taps staged once per chunk; then output rows; in a row, its
    // pixels, then the chunk's channel blocks, so that a pixel's taps are read as contiguous
    // runs of the chunk's channels, streams the prefetchers follow. Channel blocks outside
    // (each row swept once per block) read every tap `c` values apart: at 2048 channels 8 KiB,
    // one L1 set (24×24×2048: 2.25 ms against 1.10 ms pixels-outside, stride 2 0.40 against
    // 0.28 ms); at 128 channels it measured 0.28 against 0.31 ms while the maps stay in L2,
    // but 0.98 against 0.35–0.45 ms once they have left it, as in a forward pass (the seed's
    // `depthwise1` reads a 2 MiB map: 10–15 % fewer samples in `perf`, f32 and f16).
    let mut cs = 0;
    while cs < c8 {
        let ce = (cs + CH).min(c8);
        for ch in cs..ce {
            for k in 0..9 {
                wt[k * CH + ch - cs] = weight[ch * 9 + k].to_f32();
            }
        }
        for oy in oy0..oy1 {
            // Row `oy − oy0` of the band, inside `y` (and `residual`): both hold
            // (oy1 − oy0)·rl elements.
            let yrow = y[(oy - oy0) * rl..].as_mut_ptr();
            let rrow = residual.map(|r| r[(oy - oy0) * rl..].as_ptr());
            let wo = s.wo();
            // SAFETY: each block covers channels c0..c0+8·V ≤ ce ≤ cs + CH, ce ≤ s.c; the
            // chunk's taps are staged; ox < wo; features per the contract.
            unsafe {
                for ox in 0..wo {
                    let mut c0 = cs;
                    while c0 + 32 <= ce {
                        pixel::<X, Y, R, 4>(s, x, &wt, cs, bias, rrow, yrow, oy, ox, c0);
                        c0 += 32;
                    }
                    while c0 + 8 <= ce {
                        pixel::<X, Y, R, 1>(s, x, &wt, cs, bias, rrow, yrow, oy, ox, c0);
                        c0 += 8;
                    }
                }
            }
        }
        cs = ce;
    }
    if c8 < s.c {
        scalar_tail(s, x, weight, bias, residual, y, c8, (oy0, oy1));
    }
}
