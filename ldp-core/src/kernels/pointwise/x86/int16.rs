//! x86-64 AVX2 pointwise kernel of 16-bit activations × int8 weights: `i16` outputs (the
//! 16-bit-activation path, `quant::a16::pointwise16`) and int8 outputs (a 16-bit model input,
//! `quant::a16::pointwise_in16`).
//!
//! A register tile of 2 pixels × 4 outputs (8 accumulators): per step, 16 activations of each
//! pixel are loaded as they are, 16 weights of each output row are sign-extended to i16
//! (`vpmovsxbw`), and `vpmaddwd` multiplies pairwise into i32 (16 exact MACs per instruction:
//! `|x·w + x'·w'| ≤ 2·32767·128` fits i32). The channels past the last multiple of 16, the
//! leftover outputs and pixels run scalar. i32 additions wrap exactly like the reference's
//! `wrapping_add`, so the sum equals [`super::a16::pointwise16_reference`] bit for bit whatever
//! the order; bias, requantization and saturation are the references' own scalar code ([`out16`],
//! `quant::kernels::finish`).

use core::arch::x86_64::*;

use crate::kernels::cpu;
use crate::quant::a16::out16;
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

/// The AVX2 kernel with an int8 output and its own shape checks, for tests and benchmarks
/// (forces this path whatever the CPU also has).
///
/// # Safety
/// The CPU must support AVX2 (`is_x86_feature_detected!`).
pub unsafe fn pointwise_in16_avx2(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), crate::error::Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    // SAFETY: AVX2 per the contract, shapes checked just above.
    unsafe {
        run(x, c_in, q, c_out, y, pixels, |acc, o| {
            crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
        })
    };
    Ok(())
}

/// The AVX-512 VNNI kernel with an int8 output and its own shape checks, for tests and
/// benchmarks (the AVX2 kernel when this build lacks the AVX-512 intrinsics, rustc < 1.89).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL and AVX512_VNNI (`is_x86_feature_detected!`).
pub unsafe fn pointwise_in16_vnni(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), crate::error::Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    let fin = |acc: i32, o: usize| {
        crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
    };
    // SAFETY: features per the contract, shapes checked just above.
    #[cfg(ldp_avx512)]
    unsafe {
        run_vnni(x, c_in, q, c_out, y, pixels, fin)
    };
    // SAFETY: as above (AVX2 is implied by the contract's AVX-512).
    #[cfg(not(ldp_avx512))]
    unsafe {
        run(x, c_in, q, c_out, y, pixels, fin)
    };
    Ok(())
}

/// [`pointwise16`] (16-bit outputs) forced to the AVX2 kernel (`vnni = false`) or to the
/// AVX-512 VNNI one (`vnni = true`; the AVX2 one on builds without the AVX-512 intrinsics),
/// with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, and with `vnni` AVX-512 F/BW/VL and AVX512_VNNI
/// (`is_x86_feature_detected!`).
pub unsafe fn pointwise16_forced(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    vnni: bool,
) -> Result<(), crate::error::Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    let fin = |acc: i32, o: usize| out16(q.bias_at(o).wrapping_add(acc), o, q);
    #[cfg(ldp_avx512)]
    if vnni {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { run_vnni(x, c_in, q, c_out, y, pixels, fin) };
        return Ok(());
    }
    let _ = vnni;
    // SAFETY: AVX2 per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels, fin) };
    Ok(())
}

/// [`run`] with 512-bit registers and `vpdpwssd` (AVX-512 VNNI: 32 `i16·i16` products added
/// pairwise into 16 `i32` lanes, non-saturating, so wrapping like the reference): per step 32
/// input channels of 2 pixels against 4 weight rows widened with `vpmovsxbw`.
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
    let k32 = c_in / 32 * 32;
    let (o4, p2) = (c_out / 4 * 4, pixels / 2 * 2);
    let w = q.weight;
    let hsum512 = |v: __m512i| {
        hsum(_mm256_add_epi32(
            _mm512_castsi512_si256(v),
            _mm512_extracti64x4_epi64::<1>(v),
        ))
    };
    let mut p = 0;
    while p < p2 {
        let (xa, xb) = (
            &x[p * c_in..(p + 1) * c_in],
            &x[(p + 1) * c_in..(p + 2) * c_in],
        );
        let mut o = 0;
        while o < o4 {
            let rows = [
                &w[o * c_in..(o + 1) * c_in],
                &w[(o + 1) * c_in..(o + 2) * c_in],
                &w[(o + 2) * c_in..(o + 3) * c_in],
                &w[(o + 3) * c_in..(o + 4) * c_in],
            ];
            let mut a = [_mm512_setzero_si512(); 4];
            let mut b = [_mm512_setzero_si512(); 4];
            let mut i = 0;
            while i < k32 {
                // SAFETY: i + 32 ≤ k32 ≤ c_in, the length of xa, xb and every row: unaligned
                // loads of 64 bytes (32 × i16) and 32 bytes (32 × i8) inside the slices.
                let (va, vb) = unsafe {
                    (
                        _mm512_loadu_si512(xa.as_ptr().add(i).cast()),
                        _mm512_loadu_si512(xb.as_ptr().add(i).cast()),
                    )
                };
                for k in 0..4 {
                    // SAFETY: as above, 32 bytes of row k from i.
                    let wk = unsafe { _mm256_loadu_si256(rows[k].as_ptr().add(i).cast()) };
                    let wk = _mm512_cvtepi8_epi16(wk);
                    a[k] = _mm512_dpwssd_epi32(a[k], va, wk);
                    b[k] = _mm512_dpwssd_epi32(b[k], vb, wk);
                }
                i += 32;
            }
            for k in 0..4 {
                let sa = hsum512(a[k]).wrapping_add(tail(xa, rows[k], k32));
                let sb = hsum512(b[k]).wrapping_add(tail(xb, rows[k], k32));
                y[p * c_out + o + k] = finish(sa, o + k);
                y[(p + 1) * c_out + o + k] = finish(sb, o + k);
            }
            o += 4;
        }
        for o in o4..c_out {
            let row = &w[o * c_in..(o + 1) * c_in];
            y[p * c_out + o] = finish(tail(xa, row, 0), o);
            y[(p + 1) * c_out + o] = finish(tail(xb, row, 0), o);
        }
        p += 2;
    }
    for p in p2..pixels {
        let xa = &x[p * c_in..(p + 1) * c_in];
        for o in 0..c_out {
            y[p * c_out + o] = finish(tail(xa, &w[o * c_in..(o + 1) * c_in], 0), o);
        }
    }
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

/// Scalar dot product of `x[from..]` and `w[from..]` (wrapping).
#[inline(always)]
fn tail(x: &[i16], w: &[i8], from: usize) -> i32 {
    x[from..]
        .iter()
        .zip(&w[from..])
        .fold(0i32, |a, (&x, &w)| a.wrapping_add(x as i32 * w as i32))
}

/// The tile loop; `finish(acc, o)` turns output `o`'s sum (without bias) into the output.
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
    let k16 = c_in / 16 * 16;
    let (o4, p2) = (c_out / 4 * 4, pixels / 2 * 2);
    let w = q.weight;
    let mut p = 0;
    while p < p2 {
        let (xa, xb) = (
            &x[p * c_in..(p + 1) * c_in],
            &x[(p + 1) * c_in..(p + 2) * c_in],
        );
        let mut o = 0;
        while o < o4 {
            let rows = [
                &w[o * c_in..(o + 1) * c_in],
                &w[(o + 1) * c_in..(o + 2) * c_in],
                &w[(o + 2) * c_in..(o + 3) * c_in],
                &w[(o + 3) * c_in..(o + 4) * c_in],
            ];
            let mut a = [_mm256_setzero_si256(); 4];
            let mut b = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i < k16 {
                // SAFETY: i + 16 ≤ k16 ≤ c_in, the length of xa, xb and every row: unaligned
                // loads of 32 bytes (16 × i16) and 16 bytes (16 × i8) inside the slices.
                let (va, vb) = unsafe {
                    (
                        _mm256_loadu_si256(xa.as_ptr().add(i).cast()),
                        _mm256_loadu_si256(xb.as_ptr().add(i).cast()),
                    )
                };
                for k in 0..4 {
                    // SAFETY: as above, 16 bytes of row k from i.
                    let wk = unsafe { _mm_loadu_si128(rows[k].as_ptr().add(i).cast()) };
                    let wk = _mm256_cvtepi8_epi16(wk);
                    a[k] = _mm256_add_epi32(a[k], _mm256_madd_epi16(va, wk));
                    b[k] = _mm256_add_epi32(b[k], _mm256_madd_epi16(vb, wk));
                }
                i += 16;
            }
            for k in 0..4 {
                let sa = hsum(a[k]).wrapping_add(tail(xa, rows[k], k16));
                let sb = hsum(b[k]).wrapping_add(tail(xb, rows[k], k16));
                y[p * c_out + o + k] = finish(sa, o + k);
                y[(p + 1) * c_out + o + k] = finish(sb, o + k);
            }
            o += 4;
        }
        for o in o4..c_out {
            let row = &w[o * c_in..(o + 1) * c_in];
            y[p * c_out + o] = finish(tail(xa, row, 0), o);
            y[(p + 1) * c_out + o] = finish(tail(xb, row, 0), o);
        }
        p += 2;
    }
    for p in p2..pixels {
        let xa = &x[p * c_in..(p + 1) * c_in];
        for o in 0..c_out {
            y[p * c_out + o] = finish(tail(xa, &w[o * c_in..(o + 1) * c_in], 0), o);
        }
    }
}
