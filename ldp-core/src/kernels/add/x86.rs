//! x86-64 AVX2 int8 ADD: 16 elements per step, both products in 64 bits,
//! `kernels::isa::x86::Rq::finish`; exactly the reference's integers. Takes zero points in
//! `-128..=127`.

use core::arch::x86_64::*;

#[allow(unused_imports)]
use crate::error::{check_len, Error};
use crate::kernels::cpu;
#[allow(unused_imports)]
use crate::kernels::isa::x86::{apply_lut, sat16, Rq};
#[allow(unused_imports)]
use crate::quant::fixed::{requant, requant64, sat_i8};
use crate::quant::kernels::AddQ;

/// Whether the AVX2 ADD takes these parameters.
fn add_takes(q: &AddQ) -> bool {
    (-128..=127).contains(&q.a_zero) && (-128..=127).contains(&q.b_zero)
}

/// Runs the AVX2 ADD (`a = a + b`) if the CPU has it and it takes `q` (else `false`).
/// `b.len() == a.len()` checked by the caller.
pub(crate) fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> bool {
    if !cpu::x86_avx2_fma() || !add_takes(q) || a.len() != b.len() {
        return false;
    }
    // SAFETY: AVX2 present, equal lengths, zero points in range.
    unsafe { add_run(a, b, q) };
    true
}

/// The AVX2 ADD with its own checks, for tests and benchmarks (parameters it does not take run
/// the portable loop).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn add_avx2(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    if add_takes(q) {
        // SAFETY: features per the contract, lengths checked just above.
        unsafe { add_run(a, b, q) };
        Ok(())
    } else {
        crate::quant::kernels::add_reference(a, b, q)
    }
}

/// `out_zero + requant64((a − z_a)·m_a + (b − z_b)·m_b)` of the low 8 bytes of `av` and `bv`
/// (zero points in `-128..=127`: `|a − z_a| ≤ 255` fits i32; both products in 64 bits).
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn add8(
    av: __m128i,
    bv: __m128i,
    (za, ma): (__m256i, __m256i),
    (zb, mb): (__m256i, __m256i),
    rq: Rq,
) -> __m256i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        let x = _mm256_sub_epi32(_mm256_cvtepi8_epi32(av), za);
        let y = _mm256_sub_epi32(_mm256_cvtepi8_epi32(bv), zb);
        let pe = _mm256_add_epi64(_mm256_mul_epi32(x, ma), _mm256_mul_epi32(y, mb));
        let po = _mm256_add_epi64(
            _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), ma),
            _mm256_mul_epi32(_mm256_srli_epi64::<32>(y), mb),
        );
        rq.finish(pe, po)
    }
}

/// # Safety
/// `a.len() == b.len()`, zero points in `-128..=127`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn add_run(a: &mut [i8], b: &[i8], q: &AddQ) {
    let n = a.len();
    let n16 = n / 16 * 16;
    // SAFETY (whole body): AVX2 available; 16-byte loads and stores at i + 16 ≤ n16 ≤ n.
    unsafe {
        let rq = Rq::new(q.shift, q.out_zero);
        let (za, zb) = (_mm256_set1_epi32(q.a_zero), _mm256_set1_epi32(q.b_zero));
        let (ma, mb) = (_mm256_set1_epi32(q.a_mult), _mm256_set1_epi32(q.b_mult));
        let mut i = 0;
        while i < n16 {
            let av = _mm_loadu_si128(a.as_ptr().add(i) as *const __m128i);
            let bv = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
            let r0 = add8(av, bv, (za, ma), (zb, mb), rq);
            let (ah, bh) = (_mm_unpackhi_epi64(av, av), _mm_unpackhi_epi64(bv, bv));
            let r1 = add8(ah, bh, (za, ma), (zb, mb), rq);
            _mm_storeu_si128(a.as_mut_ptr().add(i) as *mut __m128i, sat16(r0, r1));
            i += 16;
        }
    }
    for (x, &y) in a[n16..].iter_mut().zip(&b[n16..]) {
        *x = q.add(*x, y);
    }
}
