//! x86-64 AVX2 conversion between f32 and int8 activations (the model input's quantization and
//! the output's dequantization), bit-identical to `quant::kernels::quantize_reference` /
//! `dequantize_reference`.

use core::arch::x86_64::*;

#[allow(unused_imports)]
use crate::error::{check_len, Error};
use crate::kernels::cpu;
#[allow(unused_imports)]
use crate::kernels::isa::x86::{apply_lut, sat16, Rq};
#[allow(unused_imports)]
use crate::quant::fixed::{requant, requant64, sat_i8};

/// Runs the AVX2 quantization (see `kernels::quantize`) if the CPU has it (else `false`).
/// Parameters validated by the caller.
pub(crate) fn quantize(x: &[f32], c: usize, scale: &[f32], zero: &[i8], xq: &mut [i8]) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::quantize::int8::check_quantize(x, c, scale, zero, xq).is_err()
    {
        return false;
    }
    // SAFETY: AVX2 present; `check_quantize` just verified equal lengths, scale and zero of
    // the same non-zero length and whole pixels when per channel.
    unsafe { quantize_run(x, c, scale, zero, xq) };
    true
}

/// The AVX2 quantization with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn quantize_avx2(
    x: &[f32],
    c: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    crate::kernels::quantize::int8::check_quantize(x, c, scale, zero, xq)?;
    // SAFETY: features per the contract, parameters checked just above.
    unsafe { quantize_run(x, c, scale, zero, xq) };
    Ok(())
}

/// 8 values: `sat_i8((roundf(x / s) as i32).saturating_add(z))`.
///
/// `roundf` (half away from zero) is `t = trunc(r)`, plus `copysign(1, r)` when
/// `|r − t| ≥ 0.5` (`r − t` is exact); infinities give `t = ±∞`, `r − t = NaN`, no step. The
/// result is then clamped to `±512` (any `r` beyond saturates the int8 result the same way,
/// zero points being in `-128..=127`) and NaN mapped to 0, as `as i32` does, so the
/// truncating conversion is exact.
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn quant8(x: __m256, s: __m256, z: __m256i) -> __m256i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        let r = _mm256_div_ps(x, s);
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(r);
        let sign = _mm256_and_ps(r, _mm256_set1_ps(-0.0));
        let d = _mm256_andnot_ps(_mm256_set1_ps(-0.0), _mm256_sub_ps(r, t));
        let step = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(d, _mm256_set1_ps(0.5)),
            _mm256_or_ps(_mm256_set1_ps(1.0), sign),
        );
        let v = _mm256_add_ps(t, step);
        let v = _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
        let v = _mm256_max_ps(
            _mm256_min_ps(v, _mm256_set1_ps(512.0)),
            _mm256_set1_ps(-512.0),
        );
        _mm256_add_epi32(_mm256_cvttps_epi32(v), z)
    }
}

/// # Safety
/// `xq.len() == x.len()`, parameters as `kernels::quantize` checks; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_run(x: &[f32], c: usize, scale: &[f32], zero: &[i8], xq: &mut [i8]) {
    let per_ch = scale.len() == c && c > 1;
    let (row, n) = if per_ch {
        (c, x.len() / c)
    } else {
        (x.len(), 1)
    };
    let r16 = row / 16 * 16;
    // SAFETY (whole body): AVX2 available; loads/stores of 16 values at j + 16 ≤ r16 ≤ row
    // inside row `i` of x/xq (n·row = x.len()), and of scale/zero at j + 16 ≤ c when per_ch.
    unsafe {
        let (s0, z0) = (_mm256_set1_ps(scale[0]), _mm256_set1_epi32(zero[0] as i32));
        for i in 0..n {
            let xr = x.as_ptr().add(i * row);
            let qr = xq.as_mut_ptr().add(i * row);
            let mut j = 0;
            while j < r16 {
                let (sa, sb, za, zb) = if per_ch {
                    let zv = _mm_loadu_si128(zero.as_ptr().add(j) as *const __m128i);
                    (
                        _mm256_loadu_ps(scale.as_ptr().add(j)),
                        _mm256_loadu_ps(scale.as_ptr().add(j + 8)),
                        _mm256_cvtepi8_epi32(zv),
                        _mm256_cvtepi8_epi32(_mm_unpackhi_epi64(zv, zv)),
                    )
                } else {
                    (s0, s0, z0, z0)
                };
                let a = quant8(_mm256_loadu_ps(xr.add(j)), sa, za);
                let b = quant8(_mm256_loadu_ps(xr.add(j + 8)), sb, zb);
                _mm_storeu_si128(qr.add(j) as *mut __m128i, sat16(a, b));
                j += 16;
            }
        }
    }
    for i in 0..n {
        for j in r16..row {
            let ch = if per_ch { j } else { 0 };
            let r = libm::roundf(x[i * row + j] / scale[ch]);
            xq[i * row + j] = sat_i8((r as i32).saturating_add(zero[ch] as i32));
        }
    }
}

/// Runs the AVX2 dequantization (see `kernels::dequantize`) if the CPU has it (else `false`).
pub(crate) fn dequantize(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> bool {
    if !cpu::x86_avx2_fma() || y.len() != yq.len() {
        return false;
    }
    // SAFETY: AVX2 present, equal lengths.
    unsafe { dequantize_run(yq, z, s, y) };
    true
}

/// The AVX2 dequantization with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn dequantize_avx2(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> Result<(), Error> {
    check_len("output", y, yq.len())?;
    // SAFETY: features per the contract, lengths checked just above.
    unsafe { dequantize_run(yq, z, s, y) };
    Ok(())
}

/// # Safety
/// `y.len() == yq.len()`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dequantize_run(yq: &[i8], z: i32, s: f32, y: &mut [f32]) {
    let n8 = yq.len() / 8 * 8;
    // SAFETY: AVX2 available; 8-value loads and stores at i + 8 ≤ n8 ≤ len.
    unsafe {
        let (zv, sv) = (_mm256_set1_epi32(z), _mm256_set1_ps(s));
        let mut i = 0;
        while i < n8 {
            let q = _mm256_cvtepi8_epi32(_mm_loadl_epi64(yq.as_ptr().add(i) as *const __m128i));
            let v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zv)), sv);
            _mm256_storeu_ps(y.as_mut_ptr().add(i), v);
            i += 8;
        }
    }
    for (o, &q) in y[n8..].iter_mut().zip(&yq[n8..]) {
        *o = (q as i32).wrapping_sub(z) as f32 * s;
    }
}
