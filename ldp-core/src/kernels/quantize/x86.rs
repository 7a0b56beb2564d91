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

/// Runs the AVX2 channels-first quantization (see `kernels::quantize::int8::quantize_nchw`)
/// if the CPU has it: `Some(all values finite)`, else `None` (also when the parameters do not
/// pass `check_quantize_nchw`, which the caller has run already: O(1)).
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize_nchw(
    x: &[f32],
    c: usize,
    hw: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
    tmp: &[i8],
) -> Option<bool> {
    if !cpu::x86_avx2_fma()
        || crate::kernels::quantize::int8::check_quantize_nchw(x, c, hw, scale, zero, xq, tmp)
            .is_err()
    {
        return None;
    }
    // SAFETY: AVX2 present; `check_quantize_nchw` just verified x and xq hold c·hw values and
    // scale and zero 1 or c values.
    Some(unsafe { quantize_nchw_run(x, c, hw, c, 0, scale, zero, xq) })
}

/// Runs the AVX2 channel-group quantization (see
/// `kernels::quantize::int8::quantize_nchw_part`) if the CPU has it: `Some(all values
/// finite)`, else `None` (also when the parameters do not pass `check_quantize_nchw_part`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize_nchw_part(
    x: &[f32],
    c: usize,
    hw: usize,
    ch0: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Option<bool> {
    if !cpu::x86_avx2_fma()
        || crate::kernels::quantize::int8::check_quantize_nchw_part(x, c, hw, ch0, scale, zero, xq)
            .is_err()
    {
        return None;
    }
    // SAFETY: AVX2 present; `check_quantize_nchw_part` just verified that x holds g ≥ 1 whole
    // channels of hw values with ch0 + g ≤ c, xq c·hw values, scale and zero 1 or c values.
    Some(unsafe { quantize_nchw_run(x, x.len() / hw, hw, c, ch0, scale, zero, xq) })
}

/// The AVX2 channels-first quantization with its own checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
#[allow(clippy::too_many_arguments)]
pub unsafe fn quantize_nchw_avx2(
    x: &[f32],
    c: usize,
    hw: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
    tmp: &mut [i8],
) -> Result<(), Error> {
    crate::kernels::quantize::int8::check_quantize_nchw(x, c, hw, scale, zero, xq, tmp)?;
    // SAFETY: features per the contract, parameters checked just above.
    match unsafe { quantize_nchw_run(x, c, hw, c, 0, scale, zero, xq) } {
        true => Ok(()),
        false => Err(crate::kernels::quantize::int8::non_finite(x)),
    }
}

/// Blocks of 16 channels × 16 pixels: each channel's 16 values quantized (`quant8`) and
/// saturated to 16 bytes, the 16 × 16 bytes transposed in registers and stored as 16 pixels'
/// channels. Pixels are taken in tiles of `PT`: within a tile, channel blocks outside, pixel
/// blocks inside, so that 16 source rows are read in sequence (prefetched; all of a tile's
/// channel rows at once would be too many streams) while the tile's destination rows
/// (`PT·c` bytes) stay in cache until complete. Edge channels and pixels run the reference's
/// scalar formula. `x` holds the `g` channels `ch0..ch0 + g` of a `c`-channel input (all of it
/// when `g = c`, `ch0 = 0`), written to their places in `xq`. Returns `false` when a value was
/// not finite (exponent bits all ones; the output is then not meaningful).
///
/// # Safety
/// `x.len() = g·hw`, `xq.len() = c·hw`, `ch0 + g ≤ c`, `scale.len() = zero.len() ∈ {1, c}`;
/// AVX2 available.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_nchw_run(
    x: &[f32],
    g: usize,
    hw: usize,
    c: usize,
    ch0: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> bool {
    let per_ch = scale.len() == c && c > 1;
    let (g16, p16) = (g / 16 * 16, hw / 16 * 16);
    // Scale and zero of local channel `l` (input channel `ch0 + l`).
    let sz = |l: usize| {
        if per_ch {
            (scale[ch0 + l], zero[ch0 + l])
        } else {
            (scale[0], zero[0])
        }
    };
    let one = |l: usize, p: usize| {
        let (s, z) = sz(l);
        sat_i8((libm::roundf(x[l * hw + p] / s) as i32).saturating_add(z as i32))
    };
    const PT: usize = 64;
    let mut bad = 0u32;
    // SAFETY (whole body): AVX2 available; a block reads x at local channel rows l0..l0+16 ≤
    // g16 ≤ g, pixels p0..p0+16 ≤ p16 ≤ hw (inside g·hw), and writes xq at pixel rows
    // p0..p0+16, channels ch0+l0..ch0+l0+16 ≤ ch0 + g ≤ c (inside c·hw).
    unsafe {
        let exp = _mm256_set1_epi32(0x7f80_0000);
        let mut badv = _mm256_setzero_si256();
        let mut pt = 0;
        while pt < p16 {
            let pe = (pt + PT).min(p16);
            let mut l0 = 0;
            while l0 < g16 {
                let mut p0 = pt;
                while p0 < pe {
                    let rows: [__m128i; 16] = core::array::from_fn(|r| {
                        let (s, z) = sz(l0 + r);
                        let (sv, zv) = (_mm256_set1_ps(s), _mm256_set1_epi32(z as i32));
                        let src = x.as_ptr().add((l0 + r) * hw + p0);
                        let (va, vb) = (_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8)));
                        for v in [va, vb] {
                            let e = _mm256_and_si256(_mm256_castps_si256(v), exp);
                            badv = _mm256_or_si256(badv, _mm256_cmpeq_epi32(e, exp));
                        }
                        sat16(quant8(va, sv, zv), quant8(vb, sv, zv))
                    });
                    let cols = crate::tensor::transpose16x16_u8(rows);
                    for (j, v) in cols.iter().enumerate() {
                        _mm_storeu_si128(
                            xq.as_mut_ptr().add((p0 + j) * c + ch0 + l0) as *mut __m128i,
                            *v,
                        );
                    }
                    p0 += 16;
                }
                l0 += 16;
            }
            pt = pe;
        }
        bad |= _mm256_movemask_epi8(badv) as u32;
    }
    for p in 0..hw {
        let ls = if p < p16 { g16..g } else { 0..g };
        for l in ls {
            let v = x[l * hw + p];
            bad |= u32::from(!v.is_finite());
            xq[p * c + ch0 + l] = one(l, p);
        }
    }
    bad == 0
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
