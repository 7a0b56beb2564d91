//! x86-64 AVX-512 int8 squeeze-excitation: the per-channel sums of `x − z`, the dot products of
//! the two gate FCs and the gate multiplication, 16 channels per zmm, bit-identical to the
//! portable code in [`super::int8`] (the FCs' requantization stays there).
//!
//! Sums: `vpmovsxbd` + `vpsubd` + `vpaddd`, wrapping `i32` additions as the reference's. Apply:
//! `(x − z_in)·gate` with `vpmulld` (the low 32 bits: the reference's `wrapping_mul`), then the
//! exact requantization [`Rq16`] (64-bit products, arithmetic 64-bit shift), the output zero
//! point and `vpmovsdb` (the reference's `sat_i8`). Channels past the last multiple of 16 of a
//! pixel run the scalar code. Needs AVX-512 F/BW (`cpu::x86_avx512`) and Rust ≥ 1.89
//! (`ldp_avx512`); otherwise the entry points return `false`.
#![allow(clippy::incompatible_msrv)]
#![cfg_attr(not(ldp_avx512), allow(unused_imports, dead_code, unused_variables))]

use core::arch::x86_64::*;

use crate::kernels::cpu;
#[cfg(ldp_avx512)]
use crate::kernels::isa::x86::Rq16;
use crate::quant::fixed::{requant, sat_i8};
use crate::quant::kernels::SeQ;

/// Adds `x − in_zero` of every pixel of `x: [pixels][c]` to `sums` (`c` values, wrapping);
/// `false` (nothing done) without AVX-512 or when `sums.len() != c` or `c` does not divide
/// `x.len()`.
pub(crate) fn sums(x: &[i8], c: usize, in_zero: i32, sums: &mut [i32]) -> bool {
    if !cfg!(ldp_avx512) || !cpu::x86_avx512() || c == 0 || sums.len() != c || x.len() % c != 0 {
        return false;
    }
    // SAFETY: AVX-512 F/BW present (checked above); lengths checked above.
    #[cfg(ldp_avx512)]
    unsafe {
        sums_run(x, c, in_zero, sums)
    };
    true
}

/// Multiplies `x: [pixels][c]` by the gate in place, as [`super::int8::se_apply_reference`];
/// `false` (nothing done) without AVX-512 or when `gate.len()` (= `c`) does not divide
/// `x.len()`.
pub(crate) fn apply(q: &SeQ<'_>, gate: &[i32], x: &mut [i8]) -> bool {
    let c = gate.len();
    if !cfg!(ldp_avx512) || !cpu::x86_avx512() || c == 0 || x.len() % c != 0 {
        return false;
    }
    // SAFETY: AVX-512 F/BW present (checked above); lengths checked above.
    #[cfg(ldp_avx512)]
    unsafe {
        apply_run(q, gate, x)
    };
    true
}

/// `Σ a[k]·w[k]` (wrapping `i32`, as the reference's loop; the order does not matter modulo
/// 2^32), or `None` without AVX-512 or when the lengths differ.
pub(crate) fn dot(a: &[i32], w: &[i8]) -> Option<i32> {
    if !cfg!(ldp_avx512) || !cpu::x86_avx512() || a.len() != w.len() {
        return None;
    }
    // SAFETY: AVX-512 F/BW present (checked above); equal lengths checked above.
    #[cfg(ldp_avx512)]
    return Some(unsafe { dot_run(a, w) });
    #[cfg(not(ldp_avx512))]
    None
}

/// # Safety
/// AVX-512 F/BW available; `a.len() = w.len()`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn dot_run(a: &[i32], w: &[i8]) -> i32 {
    let n16 = a.len() / 16 * 16;
    // SAFETY: 64-byte loads at a[i..i + 16] and 16-byte loads at w[i..i + 16], i + 16 ≤ n16;
    // AVX-512 per the contract.
    unsafe {
        let mut acc = _mm512_setzero_si512();
        let mut i = 0;
        while i < n16 {
            let av = _mm512_loadu_si512(a.as_ptr().add(i) as *const __m512i);
            let wv = _mm512_cvtepi8_epi32(_mm_loadu_si128(w.as_ptr().add(i) as *const __m128i));
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(av, wv));
            i += 16;
        }
        let mut r = _mm512_reduce_add_epi32(acc);
        for (&x, &v) in a[n16..].iter().zip(&w[n16..]) {
            r = r.wrapping_add(x.wrapping_mul(v as i32));
        }
        r
    }
}

/// # Safety
/// AVX-512 F/BW available; `sums.len() = c`, `c` divides `x.len()`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn sums_run(x: &[i8], c: usize, in_zero: i32, sums: &mut [i32]) {
    let c16 = c / 16 * 16;
    // SAFETY: 16-byte loads at px[i..i + 16] and 64-byte accesses at sums[i..i + 16] with
    // i + 16 ≤ c16 ≤ c; AVX-512 per the contract.
    unsafe {
        let z = _mm512_set1_epi32(in_zero);
        for px in x.chunks_exact(c) {
            let mut i = 0;
            while i < c16 {
                let v = _mm512_cvtepi8_epi32(_mm_loadu_si128(px.as_ptr().add(i) as *const __m128i));
                let sp = sums.as_mut_ptr().add(i) as *mut __m512i;
                _mm512_storeu_si512(
                    sp,
                    _mm512_add_epi32(_mm512_loadu_si512(sp), _mm512_sub_epi32(v, z)),
                );
                i += 16;
            }
            for (acc, &v) in sums[c16..].iter_mut().zip(&px[c16..]) {
                *acc = acc.wrapping_add((v as i32).wrapping_sub(in_zero));
            }
        }
    }
}

/// # Safety
/// AVX-512 F/BW available; `gate.len()` divides `x.len()`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn apply_run(q: &SeQ<'_>, gate: &[i32], x: &mut [i8]) {
    let c = gate.len();
    let c16 = c / 16 * 16;
    // SAFETY: 16-byte accesses at px[i..i + 16] and 64-byte loads at gate[i..i + 16] with
    // i + 16 ≤ c16 ≤ c; AVX-512 per the contract.
    unsafe {
        let rq = Rq16::new(q.shift, q.out_zero);
        let z = _mm512_set1_epi32(q.in_zero);
        // `_mm512_mul_epi32` reads the low 32 bits of each 64-bit lane: `mult` itself.
        let m = _mm512_set1_epi32(q.mult);
        for px in x.chunks_exact_mut(c) {
            let mut i = 0;
            while i < c16 {
                let p = px.as_mut_ptr().add(i) as *mut __m128i;
                let v = _mm512_sub_epi32(_mm512_cvtepi8_epi32(_mm_loadu_si128(p)), z);
                let g = _mm512_loadu_si512(gate.as_ptr().add(i) as *const __m512i);
                let r = rq.apply(_mm512_mullo_epi32(v, g), m, m);
                _mm_storeu_si128(p, _mm512_cvtsepi32_epi8(r));
                i += 16;
            }
            for (v, g) in px[c16..].iter_mut().zip(&gate[c16..]) {
                let acc = (*v as i32).wrapping_sub(q.in_zero).wrapping_mul(*g);
                *v = sat_i8(q.out_zero.wrapping_add(requant(acc, q.mult, q.shift)));
            }
        }
    }
}
