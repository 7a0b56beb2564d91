//! x86-64 AVX2 pointwise kernel of 16-bit activations × int8 weights: `i16` outputs (the
//! 16-bit-activation path, `quant::a16::pointwise16`) and int8 outputs (a 16-bit model input,
//! `quant::a16::pointwise_in16`).
//!
//! AVX2: a register tile of 3 pixels × 4 outputs (12 accumulators) over blocks of 48 pixels,
//! each group of 4 weight rows passing over the whole block while it is in L1; per step, 16
//! activations of each pixel are loaded as they are, 16 weights of each output row are
//! sign-extended to i16 (`vpmovsxbw`, once for three pixels), and `vpmaddwd` multiplies
//! pairwise into i32 (16 exact MACs per instruction: `|x·w + x'·w'| ≤ 2·32767·128` fits i32).
//! The channels past the last multiple of 16 and the leftover outputs run scalar; the last one
//! or two pixels take the 2-pixel × 4-output tile of the shared driver `quant::a16::tiles16`.
//! With AVX-512 VNNI that 2 × 4 tile takes 32 channels per step with `vpdpwssd`. i32 additions wrap
//! exactly like the reference's `wrapping_add`, so the sum equals the references bit for bit
//! whatever the order; bias, requantization and saturation are the references' own scalar code
//! (`out16`, `quant::kernels::finish`).

use core::arch::x86_64::*;

use crate::kernels::cpu;
use crate::quant::a16::{out16, tiles16};
use crate::quant::kernels::ConvQ;

/// Runs the AVX2 kernel if the CPU has it (else `false`). The shapes are checked again here
/// (`check_pw`, O(1)): `false` unless `x.len() = pixels·c_in`, weights `c_out·c_in`, bias (or
/// none)/mult `c_out`, `y.len() = pixels·c_out`.
pub(crate) fn pointwise16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    let fin = |acc: i32, o: usize| out16(q.bias_at(o).wrapping_add(acc), o, q);
    // SAFETY: AVX2 is present and `check_pw` just verified every length (products without
    // overflow).
    unsafe { run_best(x, c_in, q, c_out, y, pixels, fin) };
    true
}

/// [`run_vnni`] when this build has the AVX-512 intrinsics (`ldp_avx512`, rustc ≥ 1.89) and the
/// CPU has AVX512_VNNI, else [`run`].
///
/// # Safety
/// AVX2 available; lengths as checked by `check_pw`.
unsafe fn run_best<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    #[cfg(ldp_avx512)]
    if cpu::x86_vnni() {
        // SAFETY: AVX-512 VNNI present (`x86_vnni`), lengths per the contract.
        unsafe { run_vnni(x, c_in, q, c_out, y, pixels, finish) };
        return;
    }
    // SAFETY: per the contract.
    unsafe { run(x, c_in, q, c_out, y, pixels, finish) }
}

/// [`pointwise16`] with int8 outputs (zero point, optional table): the pointwise conv of a
/// 16-bit model input, `quant::a16::pointwise_in16`. Same checks, same tile.
pub(crate) fn pointwise_in16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    let fin = |acc: i32, o: usize| {
        crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
    };
    // SAFETY: as in `pointwise16`.
    unsafe { run_best(x, c_in, q, c_out, y, pixels, fin) };
    true
}

/// [`pointwise_in16`] (`Y = i8`) or [`pointwise16`] (`Y = i16`) forced to the AVX2 kernel or,
/// with `vnni`, to the AVX-512 VNNI one (the AVX2 one on builds without the AVX-512
/// intrinsics), with its own shape checks.
///
/// # Safety
/// AVX2, and with `vnni` AVX-512 F/BW/VL and AVX512_VNNI.
unsafe fn forced<Y: crate::quant::kernels::ConvOut>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    vnni: bool,
    finish: impl Fn(i32, usize) -> Y,
) -> Result<(), crate::error::Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    #[cfg(ldp_avx512)]
    if vnni {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { run_vnni(x, c_in, q, c_out, y, pixels, finish) };
        return Ok(());
    }
    let _ = vnni;
    // SAFETY: AVX2 per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels, finish) };
    Ok(())
}

/// `pointwise_in16` (int8 outputs) forced to the AVX2 kernel (`vnni = false`) or to the
/// AVX-512 VNNI one (`vnni = true`; the AVX2 one on builds without the AVX-512 intrinsics),
/// with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, and with `vnni` AVX-512 F/BW/VL and AVX512_VNNI
/// (`is_x86_feature_detected!`).
pub unsafe fn pointwise_in16_forced(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    vnni: bool,
) -> Result<(), crate::error::Error> {
    let fin = |acc: i32, o: usize| {
        crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
    };
    // SAFETY: the contract is `forced`'s.
    unsafe { forced(x, c_in, q, c_out, y, vnni, fin) }
}

/// `pointwise16` (16-bit outputs) forced as [`pointwise_in16_forced`].
///
/// # Safety
/// As [`pointwise_in16_forced`].
pub unsafe fn pointwise16_forced(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    vnni: bool,
) -> Result<(), crate::error::Error> {
    let fin = |acc: i32, o: usize| out16(q.bias_at(o).wrapping_add(acc), o, q);
    // SAFETY: the contract is `forced`'s.
    unsafe { forced(x, c_in, q, c_out, y, vnni, fin) }
}

/// Sum of the 8 lanes (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// The AVX2 kernel: pixel triples through a 3-pixel × 4-output tile (12 accumulators, each
/// widened weight vector used three times), the last one or two pixels through [`tiles16`];
/// 16 channels per step (`vpmaddwd`).
///
/// # Safety
/// AVX2; lengths as checked by `check_pw`.
#[target_feature(enable = "avx2")]
unsafe fn run<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    let p3 = pixels / 3 * 3;
    let (o4, k) = (c_out / 4 * 4, c_in / 16 * 16);
    let w = q.weight;
    let row = |o: usize| &w[o * c_in..(o + 1) * c_in];
    // Cache blocks of `PB` pixels (a multiple of 3; 192 KiB of 2048-wide rows, in L2): every
    // group of 4 weight rows (in L1) passes over the whole block before the next group.
    const PB: usize = 48;
    let mut pb = 0;
    while pb < p3 {
        let pe = (pb + PB).min(p3);
        let mut o = 0;
        while o < o4 {
            let mut p = pb;
            while p < pe {
                let xs = [
                    &x[p * c_in..(p + 1) * c_in],
                    &x[(p + 1) * c_in..(p + 2) * c_in],
                    &x[(p + 2) * c_in..(p + 3) * c_in],
                ];
                {
                    let rows = [row(o), row(o + 1), row(o + 2), row(o + 3)];
                    let mut acc = [[_mm256_setzero_si256(); 4]; 3];
                    // Raw pointers in the loop (slices would keep 14 pointer and length
                    // registers live and bounds-check every step).
                    let xp: [*const i16; 3] = core::array::from_fn(|t| xs[t].as_ptr());
                    let wp: [*const i8; 4] = core::array::from_fn(|j| rows[j].as_ptr());
                    let mut i = 0;
                    while i < k {
                        // SAFETY: i + 16 ≤ k ≤ c_in, the length of each pixel row and each
                        // weight row: 32-byte loads (16 × i16) and 16-byte loads (16 × i8)
                        // inside the slices the pointers come from.
                        unsafe {
                            let v: [__m256i; 3] =
                                core::array::from_fn(|t| _mm256_loadu_si256(xp[t].add(i).cast()));
                            for j in 0..4 {
                                let wk = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp[j].add(i).cast()));
                                for t in 0..3 {
                                    acc[t][j] =
                                        _mm256_add_epi32(acc[t][j], _mm256_madd_epi16(v[t], wk));
                                }
                            }
                        }
                        i += 16;
                    }
                    for t in 0..3 {
                        for j in 0..4 {
                            let tail = crate::quant::a16::dot16(&xs[t][k..], &rows[j][k..]);
                            y[(p + t) * c_out + o + j] =
                                finish(hsum(acc[t][j]).wrapping_add(tail), o + j);
                        }
                    }
                }
                p += 3;
            }
            o += 4;
        }
        for p in pb..pe {
            for o in o4..c_out {
                y[p * c_out + o] = finish(
                    crate::quant::a16::dot16(&x[p * c_in..(p + 1) * c_in], row(o)),
                    o,
                );
            }
        }
        pb = pe;
    }
    if p3 == pixels {
        return;
    }
    let (x, y, pixels) = (&x[p3 * c_in..], &mut y[p3 * c_out..], pixels - p3);
    tiles16(
        x,
        c_in,
        q.weight,
        c_out,
        y,
        pixels,
        |xa, xb, rows| {
            let k = xa.len().min(xb.len()) / 16 * 16;
            let mut a = [_mm256_setzero_si256(); 4];
            let mut b = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i < k {
                // SAFETY: i + 16 ≤ k ≤ the length of xa and xb: 32-byte loads (16 × i16) inside
                // the slices.
                let (va, vb) = unsafe {
                    (
                        _mm256_loadu_si256(xa.as_ptr().add(i).cast()),
                        _mm256_loadu_si256(xb.as_ptr().add(i).cast()),
                    )
                };
                for j in 0..4 {
                    let r = &rows[j][i..i + 16];
                    // SAFETY: `r` holds the 16 bytes read.
                    let wk = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(r.as_ptr().cast()) });
                    a[j] = _mm256_add_epi32(a[j], _mm256_madd_epi16(va, wk));
                    b[j] = _mm256_add_epi32(b[j], _mm256_madd_epi16(vb, wk));
                }
                i += 16;
            }
            (a.map(|v| hsum(v)), b.map(|v| hsum(v)), k)
        },
        finish,
    )
}

/// The AVX-512 VNNI kernel: [`tiles16`] with 32 channels per step (`vpdpwssd`: 32 `i16·i16`
/// products added pairwise into 16 `i32` lanes, non-saturating, so wrapping like the
/// reference), weights widened with `vpmovsxbw`.
///
/// # Safety
/// AVX-512 F/BW/VL and AVX512_VNNI; lengths as checked by `check_pw`.
#[cfg(ldp_avx512)]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn run_vnni<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    let hsum512 = |v: __m512i| {
        hsum(_mm256_add_epi32(
            _mm512_castsi512_si256(v),
            _mm512_extracti64x4_epi64::<1>(v),
        ))
    };
    tiles16(
        x,
        c_in,
        q.weight,
        c_out,
        y,
        pixels,
        |xa, xb, rows| {
            let k = xa.len().min(xb.len()) / 32 * 32;
            let mut a = [_mm512_setzero_si512(); 4];
            let mut b = [_mm512_setzero_si512(); 4];
            let mut i = 0;
            while i < k {
                // SAFETY: i + 32 ≤ k ≤ the length of xa and xb: 64-byte loads (32 × i16) inside
                // the slices.
                let (va, vb) = unsafe {
                    (
                        _mm512_loadu_si512(xa.as_ptr().add(i).cast()),
                        _mm512_loadu_si512(xb.as_ptr().add(i).cast()),
                    )
                };
                for j in 0..4 {
                    let r = &rows[j][i..i + 32];
                    // SAFETY: `r` holds the 32 bytes read.
                    let wk = _mm512_cvtepi8_epi16(unsafe { _mm256_loadu_si256(r.as_ptr().cast()) });
                    a[j] = _mm512_dpwssd_epi32(a[j], va, wk);
                    b[j] = _mm512_dpwssd_epi32(b[j], vb, wk);
                }
                i += 32;
            }
            (a.map(&hsum512), b.map(&hsum512), k)
        },
        finish,
    )
}
