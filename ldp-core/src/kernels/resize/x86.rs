//! x86-64 AVX2 int8 bilinear resize, exactly the integers of
//! `quant::kernels::resize_bilinear_reference`.

use core::arch::x86_64::*;

#[allow(unused_imports)]
use crate::error::{check_len, Error};
use crate::kernels::cpu;
#[allow(unused_imports)]
use crate::kernels::isa::x86::{apply_lut, sat16, Rq};
#[allow(unused_imports)]
use crate::quant::fixed::{requant, requant64, sat_i8};

/// Runs the AVX2 bilinear resize (see `kernels::resize_bilinear`) if the CPU has it and
/// `c ≥ 8` (else `false`). Shapes and parameter lengths validated by the caller.
#[allow(clippy::too_many_arguments)]
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
    if !cpu::x86_avx2_fma()
        || c < 8
        || crate::kernels::resize::int8::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))
            .is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_resize` just verified x = h·w·c, y = ho·wo·c (products
    // without overflow), in_zero and mult of length 1 or c, all dimensions ≥ 1.
    unsafe { resize_run(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo)) };
    true
}

/// The AVX2 bilinear resize with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
#[allow(clippy::too_many_arguments)]
pub unsafe fn resize_bilinear_avx2(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    crate::kernels::resize::int8::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe { resize_run(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo)) };
    Ok(())
}

/// Per output pixel and 8 channels: `s = Σ w_k·(x_k − z)` in `i32` (the Q20 weights sum to
/// `2^20` and `|x − z| ≤ 255`, so `|s| < 2^28`: exact, as the reference's `i64` sum), then
/// [`Rq`] with the shift `shift + 20` (the reference's `requant64(s·m, shift + 20)`, `s·m`
/// exact in 64 bits) and saturation. `c % 8` tail channels scalar.
///
/// # Safety
/// Shapes validated (see `resize_bilinear`); AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn resize_run(
    x: &[i8],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) {
    use crate::quant::kernels::taps_q10;
    let c8 = c / 8 * 8;
    let zat = |ch: usize| in_zero[if in_zero.len() == 1 { 0 } else { ch }];
    let mat = |ch: usize| mult[if mult.len() == 1 { 0 } else { ch }];
    // SAFETY (whole body): AVX2 available; 8-byte loads at p + ch + 8 ≤ p + c8 inside a pixel
    // of x, 8-value loads of in_zero/mult at ch + 8 ≤ c8 ≤ c when they are per channel, 8-byte
    // stores at o + ch + 8 ≤ o + c inside y.
    unsafe {
        let rq = Rq::new(shift.saturating_add(20), out_zero);
        let (zb, mb) = (
            _mm256_set1_epi32(zat(0) as i32),
            _mm256_set1_epi32(mat(0) as i32),
        );
        for oy in 0..ho {
            let (y0, y1, ly) = taps_q10(oy, h, ho);
            for ox in 0..wo {
                let (x0, x1, lx) = taps_q10(ox, w, wo);
                let wts = [
                    (1024 - ly) * (1024 - lx),
                    (1024 - ly) * lx,
                    ly * (1024 - lx),
                    ly * lx,
                ];
                let wv = wts.map(|v| _mm256_set1_epi32(v as i32));
                let ps = [
                    (y0 * w + x0) * c,
                    (y0 * w + x1) * c,
                    (y1 * w + x0) * c,
                    (y1 * w + x1) * c,
                ];
                let o = (oy * wo + ox) * c;
                let mut ch = 0;
                while ch < c8 {
                    let z = if in_zero.len() == 1 {
                        zb
                    } else {
                        _mm256_cvtepi8_epi32(_mm_loadl_epi64(
                            in_zero.as_ptr().add(ch) as *const __m128i
                        ))
                    };
                    let m = if mult.len() == 1 {
                        mb
                    } else {
                        _mm256_cvtepi16_epi32(_mm_loadu_si128(
                            mult.as_ptr().add(ch) as *const __m128i
                        ))
                    };
                    let mut s = _mm256_setzero_si256();
                    for k in 0..4 {
                        let v = _mm_loadl_epi64(x.as_ptr().add(ps[k] + ch) as *const __m128i);
                        let d = _mm256_sub_epi32(_mm256_cvtepi8_epi32(v), z);
                        s = _mm256_add_epi32(s, _mm256_mullo_epi32(d, wv[k]));
                    }
                    let r = rq.apply(s, m);
                    let t = _mm256_packs_epi16(_mm256_packs_epi32(r, r), _mm256_setzero_si256());
                    let lo = _mm256_cvtsi256_si32(t) as u32 as u64;
                    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(t)) as u32 as u64;
                    core::ptr::write_unaligned(
                        y.as_mut_ptr().add(o + ch) as *mut u64,
                        lo | hi << 32,
                    );
                    ch += 8;
                }
                for ch in c8..c {
                    let z = zat(ch) as i64;
                    let s = wts[0] * (x[ps[0] + ch] as i64 - z)
                        + wts[1] * (x[ps[1] + ch] as i64 - z)
                        + wts[2] * (x[ps[2] + ch] as i64 - z)
                        + wts[3] * (x[ps[3] + ch] as i64 - z);
                    let v = requant64(s.wrapping_mul(mat(ch) as i64), shift.saturating_add(20));
                    y[o + ch] = sat_i8(out_zero.wrapping_add(v as i32));
                }
            }
        }
    }
}
