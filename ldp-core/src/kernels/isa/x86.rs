//! The x86-64 back end's shared int8 pieces: the exact vectorized requantization ([`Rq`], and
//! [`Rq16`] on AVX-512), int8
//! saturation of 16 lanes ([`sat16`]) and the optional output table ([`apply_lut`]), used by the
//! AVX2 int8 kernels of several operations (`kernels/{pointwise, depthwise, add}/x86`).

use core::arch::x86_64::*;

#[allow(unused_imports)]
use crate::quant::fixed::requant;

/// Vectorized [`requant`] of one layer: `out_zero.wrapping_add(requant(acc, m, shift))` for
/// 8 `i32` lanes, before saturation.
///
/// The product `acc·m` is formed exactly in 64 bits (`vpmuldq`, even and odd lanes apart).
/// AVX2 has no 64-bit arithmetic right shift, so `v >> s` (arithmetic, `v = p + 2^(s−1)`) is
/// computed as `((v + 2^63) >>> s) − 2^(63−s)` (logical shift): adding `2^63` maps the signed
/// range onto the unsigned one, and `2^63` is a multiple of `2^s` for `s ≤ 62`, so both sides
/// are `⌊v / 2^s⌋` exactly. Only the low 32 bits are kept (the reference's `as i32`), and the
/// low 32 bits of a difference depend only on the low 32 bits of its terms, so the correction
/// `− 2^(63−s)` (non-zero mod 2^32 only for `s ≥ 32`) and the output zero point fold into one
/// 32-bit constant. Wrapping 64- and 32-bit additions are the reference's `wrapping_add`.
#[derive(Clone, Copy)]
pub(crate) struct Rq {
    /// `2^(s−1) + 2^63` in every 64-bit lane.
    k: __m256i,
    /// `s` (shift count for `vpsrlq`).
    cnt: __m128i,
    /// `out_zero − low32(2^(63−s))` in every 32-bit lane.
    off: __m256i,
}

impl Rq {
    /// Constants of a layer (`shift` clamped to `1..=62` as [`requant`] does).
    ///
    /// # Safety
    /// AVX2 available.
    #[inline(always)]
    pub(crate) unsafe fn new(shift: i32, out_zero: i32) -> Rq {
        let s = shift.clamp(1, 62) as u32;
        let corr = if s >= 32 {
            (1u64 << (63 - s)) as u32
        } else {
            0
        };
        // SAFETY: register-only AVX2 operations.
        unsafe {
            Rq {
                k: _mm256_set1_epi64x((1i64 << (s - 1)).wrapping_add(i64::MIN)),
                cnt: _mm_cvtsi32_si128(s as i32),
                off: _mm256_set1_epi32(out_zero.wrapping_sub(corr as i32)),
            }
        }
    }

    /// `out_zero + requant(acc[i], m[i], shift)` (wrapping) for 8 lanes; `m` any `i32`s.
    ///
    /// # Safety
    /// AVX2 available.
    #[inline(always)]
    pub(crate) unsafe fn apply(self, acc: __m256i, m: __m256i) -> __m256i {
        // SAFETY: register-only AVX2 operations.
        unsafe {
            let pe = _mm256_mul_epi32(acc, m);
            let po = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), _mm256_srli_epi64::<32>(m));
            self.finish(pe, po)
        }
    }

    /// `out_zero + requant64(p, shift)` (wrapping, low 32 bits) of the 64-bit values `pe`
    /// (lanes 0, 2, 4, 6) and `po` (lanes 1, 3, 5, 7), as 8 `i32` lanes in order.
    ///
    /// # Safety
    /// AVX2 available.
    #[inline(always)]
    pub(crate) unsafe fn finish(self, pe: __m256i, po: __m256i) -> __m256i {
        // SAFETY: register-only AVX2 operations.
        unsafe {
            let pe = _mm256_srl_epi64(_mm256_add_epi64(pe, self.k), self.cnt);
            let po = _mm256_srl_epi64(_mm256_add_epi64(po, self.k), self.cnt);
            let r = _mm256_blend_epi32::<0b1010_1010>(pe, _mm256_slli_epi64::<32>(po));
            _mm256_add_epi32(r, self.off)
        }
    }
}

/// [`Rq`] on 16 lanes with AVX-512's 64-bit arithmetic shift: `out_zero + requant(acc, m,
/// shift)` (wrapping), exactly the reference's `((acc·m) + 2^(s−1)) >> s` in 64 bits, low 32
/// bits kept.
#[cfg(ldp_avx512)]
#[derive(Clone, Copy)]
#[allow(clippy::incompatible_msrv)]
pub(crate) struct Rq16 {
    /// `2^(s−1)` in every 64-bit lane.
    k: __m512i,
    /// `s`.
    cnt: __m128i,
    /// `out_zero` in every 32-bit lane.
    off: __m512i,
}

#[cfg(ldp_avx512)]
#[allow(clippy::incompatible_msrv)]
impl Rq16 {
    /// # Safety
    /// AVX-512 F available.
    #[inline(always)]
    pub(crate) unsafe fn new(shift: i32, out_zero: i32) -> Rq16 {
        let s = shift.clamp(1, 62) as u32;
        // SAFETY: register-only AVX-512 operations.
        unsafe {
            Rq16 {
                k: _mm512_set1_epi64(1i64 << (s - 1)),
                cnt: _mm_cvtsi32_si128(s as i32),
                off: _mm512_set1_epi32(out_zero),
            }
        }
    }

    /// `acc` = 16 accumulators, `m` their multipliers, `m_odd` = `m >> 32` per 64-bit lane.
    ///
    /// # Safety
    /// AVX-512 F available.
    #[inline(always)]
    pub(crate) unsafe fn apply(self, acc: __m512i, m: __m512i, m_odd: __m512i) -> __m512i {
        // SAFETY: register-only AVX-512 operations.
        unsafe {
            let pe = _mm512_mul_epi32(acc, m);
            let po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(acc), m_odd);
            self.finish(pe, po)
        }
    }

    /// `out_zero + requant64(p, shift)` (wrapping, low 32 bits) of the 64-bit values `pe`
    /// (lanes 0, 2, …, 14) and `po` (lanes 1, 3, …, 15), as 16 `i32` lanes in order.
    ///
    /// # Safety
    /// AVX-512 F available.
    #[inline(always)]
    pub(crate) unsafe fn finish(self, pe: __m512i, po: __m512i) -> __m512i {
        // SAFETY: register-only AVX-512 operations.
        unsafe {
            let pe = _mm512_sra_epi64(_mm512_add_epi64(pe, self.k), self.cnt);
            let po = _mm512_sra_epi64(_mm512_add_epi64(po, self.k), self.cnt);
            let r = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64::<32>(po));
            _mm512_add_epi32(r, self.off)
        }
    }
}

/// Stores 16 `i32` lanes to `dst` saturated to the 16-bit activations' symmetric range
/// `±MAX16` (`quant::a16::out16`'s saturation).
///
/// # Safety
/// AVX-512 F/BW available.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::incompatible_msrv)]
pub(crate) unsafe fn store_sat16(dst: &mut [i16; 16], r: __m512i) {
    use crate::quant::a16::MAX16;
    // SAFETY: register-only AVX-512 operations; `dst` is 16 writable `i16` (32 bytes).
    unsafe {
        let r = _mm512_max_epi32(
            _mm512_min_epi32(r, _mm512_set1_epi32(MAX16)),
            _mm512_set1_epi32(-MAX16),
        );
        _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, _mm512_cvtsepi32_epi16(r));
    }
}

/// Saturates 16 `i32` lanes (`a` then `b`) to int8, in order (`sat_i8` of each: saturating to
/// i16 then to i8 is the same clamp).
///
/// # Safety
/// AVX2 available.
#[inline(always)]
pub(crate) unsafe fn sat16(a: __m256i, b: __m256i) -> __m128i {
    // SAFETY: register-only AVX2 operations.
    unsafe {
        let t = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
        _mm_packs_epi16(_mm256_castsi256_si128(t), _mm256_extracti128_si256::<1>(t))
    }
}

/// Applies the optional table to `v` in place.
#[inline(always)]
pub(crate) fn apply_lut(v: &mut [i8], lut: Option<&[i8]>) {
    if let Some(t) = lut {
        if let Ok(t) = <&[i8; 256]>::try_from(t) {
            for b in v.iter_mut() {
                *b = t[(*b as u8 ^ 0x80) as usize];
            }
        }
    }
}
