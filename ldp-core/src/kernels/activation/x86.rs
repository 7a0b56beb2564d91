//! x86-64 GELU: AVX2 + FMA, 8 lanes at a time, and the same operations on 16 lanes with
//! AVX-512F (the same bits: a test below compares them).
//!
//! The formula of [`super::gelu`] (the reference): `Φ` from `erfc(|x|/√2) = t·exp(−x²/2 +
//! P(t))` with Numerical Recipes' polynomial `P`, the exact pair `−x²/2 = hi + lo`, and the
//! exponential's Cody–Waite reduction of `hi`. With fused multiply-adds each step is shorter:
//! the exact square error is one FMA instead of Dekker's split, and the polynomials take one
//! FMA per coefficient. The result is not the reference's bit for bit (each FMA rounds once
//! where the reference rounds twice) but meets the same bound, relative error ≤ 1e-6 against
//! f64 over [-10, 10] (tests below). Every element of a slice goes through the same per-lane
//! operations, the tail too, so a value's result never depends on its position, on the
//! slice's length or on the vector width (streaming rows and whole tensors agree bit for bit).
//! The formula is written twice, once per vector type ([`gelu_n`], `gelu_n16`), with its
//! constants in one place; `avx512_gelu_equals_avx2_bitwise` fails if the two drift apart.

use core::arch::x86_64::*;

/// The constants of the vector GELU (shared by the 8- and 16-lane forms, which compute the
/// same bits).
mod k {
    /// `|x|` is capped here and GELU is `-0.0` below `-CUT` ([`super::super::GELU_CUT`]).
    pub(super) const CUT: f32 = super::super::GELU_CUT;
    pub(super) const LOG2E: f32 = core::f32::consts::LOG2_E;
    /// 9 significant bits: `n·LN2_HI` is exact.
    pub(super) const LN2_HI: f32 = 0.693_359_4;
    pub(super) const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5·2^23: adding it rounds to an integer.
    pub(super) const MAGIC: f32 = 12_582_912.0;
    /// `1/(2√2)`: `t = 1/(1 + a·C)`.
    pub(super) const C: f32 = 0.5 * core::f32::consts::FRAC_1_SQRT_2;
    /// Numerical Recipes' erfc polynomial `P(t)`, coefficients of `t^0..t^9`.
    pub(super) const P: [f32; 10] = [
        -1.265_512_2,
        1.000_023_7,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_204,
        1.488_515_8,
        -0.822_152_2,
        0.170_872_77,
    ];
    /// `(e^r − 1 − r)/r²` as a polynomial in `r`, coefficients of `r^0..r^5`.
    pub(super) const E: [f32; 6] = [
        0.5,
        1.666_666_5e-1,
        4.166_579_6e-2,
        8.333_452e-3,
        1.398_199_9e-3,
        1.987_569_2e-4,
    ];
}

/// GELU of `N` vectors of 8 lanes, step by step across all of them: the same operations per
/// lane, but `N` independent dependency chains interleaved in program order (one chain is
/// about 30 dependent operations long; written one after the other, the out-of-order window
/// holds too few of them to hide that latency).
///
/// # Safety
/// AVX2 and FMA available (call from a `#[target_feature(enable = "avx2,fma")]` function).
#[inline(always)]
pub(crate) unsafe fn gelu_n<const N: usize>(x: [__m256; N]) -> [__m256; N] {
    use k::*;
    // SAFETY: register-only AVX2/FMA operations, available per the contract.
    unsafe {
        let set = _mm256_set1_ps;
        let one = set(1.0);
        let map = |f: &dyn Fn(usize) -> __m256| -> [__m256; N] { core::array::from_fn(f) };
        // a = min(|x|, CUT) (a NaN x gives CUT, as f32::min; the result is NaN through x·Φ).
        let a = map(&|j| _mm256_min_ps(_mm256_andnot_ps(set(-0.0), x[j]), set(CUT)));
        // t = 1/(1 + a/(2√2)).
        let c = set(C);
        let t = map(&|j| _mm256_div_ps(one, _mm256_fmadd_ps(a[j], c, one)));
        // −a²/2 = hi + lo exactly (−a/2 is exact; the FMA gives the product's rounding error).
        let h = map(&|j| _mm256_mul_ps(a[j], set(-0.5)));
        let hi = map(&|j| _mm256_mul_ps(a[j], h[j]));
        let lo = map(&|j| _mm256_fmsub_ps(a[j], h[j], hi[j]));
        // P(t), Estrin.
        let t2 = map(&|j| _mm256_mul_ps(t[j], t[j]));
        let t4 = map(&|j| _mm256_mul_ps(t2[j], t2[j]));
        let p01 = map(&|j| _mm256_fmadd_ps(t[j], set(P[1]), set(P[0])));
        let p23 = map(&|j| _mm256_fmadd_ps(t[j], set(P[3]), set(P[2])));
        let p45 = map(&|j| _mm256_fmadd_ps(t[j], set(P[5]), set(P[4])));
        let p67 = map(&|j| _mm256_fmadd_ps(t[j], set(P[7]), set(P[6])));
        let p89 = map(&|j| _mm256_fmadd_ps(t[j], set(P[9]), set(P[8])));
        let q0 = map(&|j| _mm256_fmadd_ps(t2[j], p23[j], p01[j]));
        let q1 = map(&|j| _mm256_fmadd_ps(t2[j], p67[j], p45[j]));
        let q = map(&|j| _mm256_fmadd_ps(t4[j], q1[j], q0[j]));
        let p = map(&|j| _mm256_fmadd_ps(_mm256_mul_ps(t4[j], t4[j]), p89[j], q[j]));
        let lo = map(&|j| _mm256_add_ps(lo[j], p[j]));
        // exp(hi + lo): n = round((hi + lo)·log2 e), r = hi − n·ln2 + lo.
        let nm = map(&|j| _mm256_fmadd_ps(_mm256_add_ps(hi[j], lo[j]), set(LOG2E), set(MAGIC)));
        let n = map(&|j| _mm256_sub_ps(nm[j], set(MAGIC)));
        let r = map(&|j| _mm256_fnmadd_ps(n[j], set(LN2_HI), hi[j]));
        let r = map(&|j| _mm256_add_ps(_mm256_fnmadd_ps(n[j], set(LN2_LO), r[j]), lo[j]));
        let r2 = map(&|j| _mm256_mul_ps(r[j], r[j]));
        let e01 = map(&|j| _mm256_fmadd_ps(r[j], set(E[1]), set(E[0])));
        let e23 = map(&|j| _mm256_fmadd_ps(r[j], set(E[3]), set(E[2])));
        let e45 = map(&|j| _mm256_fmadd_ps(r[j], set(E[5]), set(E[4])));
        let e = map(&|j| _mm256_fmadd_ps(r2[j], e23[j], e01[j]));
        let e = map(&|j| _mm256_fmadd_ps(_mm256_mul_ps(r2[j], r2[j]), e45[j], e[j]));
        let e = map(&|j| _mm256_add_ps(_mm256_fmadd_ps(e[j], r2[j], r[j]), one));
        // 2^n (n ∈ [−122, 0]: a normal f32) from the integer bits of nm.
        let scale = map(&|j| {
            let ni = _mm256_sub_epi32(
                _mm256_castps_si256(nm[j]),
                _mm256_set1_epi32(MAGIC.to_bits() as i32 - 127),
            );
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(ni))
        });
        let erfc = map(&|j| _mm256_mul_ps(t[j], _mm256_mul_ps(e[j], scale[j])));
        // Φ = 1 − erfc/2 for x ≥ 0, erfc/2 below; −0.0 below −CUT.
        let half = set(0.5);
        let phi = map(&|j| {
            _mm256_blendv_ps(
                _mm256_mul_ps(half, erfc[j]),
                _mm256_fnmadd_ps(half, erfc[j], one),
                _mm256_cmp_ps::<_CMP_GE_OQ>(x[j], _mm256_setzero_ps()),
            )
        });
        map(&|j| {
            _mm256_blendv_ps(
                _mm256_mul_ps(x[j], phi[j]),
                set(-0.0),
                _mm256_cmp_ps::<_CMP_LT_OQ>(x[j], set(-CUT)),
            )
        })
    }
}

/// GELU of 8 lanes.
///
/// # Safety
/// AVX2 and FMA available.
#[inline(always)]
pub(crate) unsafe fn gelu8(x: __m256) -> __m256 {
    // SAFETY: per the contract.
    unsafe { gelu_n::<1>([x])[0] }
}

/// GELU of 16 values in place (the GEMM epilogue's tile row).
///
/// # Safety
/// AVX2 and FMA available.
#[inline(always)]
pub(crate) unsafe fn gelu16(v: &mut [f32; 16]) {
    // SAFETY: 16 readable and writable f32; features per the contract.
    unsafe {
        let p = v.as_mut_ptr();
        let [a, b] = gelu_n::<2>([_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]);
        _mm256_storeu_ps(p, a);
        _mm256_storeu_ps(p.add(8), b);
    }
}

/// GELU of every element of `buf`, in place: 32 values per step (four independent chains),
/// then 8, then the last `len % 8` through a padded 8-lane buffer.
///
/// # Safety
/// AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gelu_slice_avx2(buf: &mut [f32]) {
    let mut chunks = buf.chunks_exact_mut(32);
    for c in &mut chunks {
        // SAFETY: 32 readable and writable f32 at c; AVX2/FMA per the contract.
        unsafe {
            let p = c.as_mut_ptr();
            let v = gelu_n::<4>(core::array::from_fn(|j| _mm256_loadu_ps(p.add(8 * j))));
            for (j, v) in v.iter().enumerate() {
                _mm256_storeu_ps(p.add(8 * j), *v);
            }
        }
    }
    let mut rest = chunks.into_remainder().chunks_exact_mut(8);
    for c in &mut rest {
        // SAFETY: 8 readable and writable f32 at c.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), gelu8(_mm256_loadu_ps(c.as_ptr()))) };
    }
    let tail = rest.into_remainder();
    if !tail.is_empty() {
        let mut t = [0.0f32; 8];
        t[..tail.len()].copy_from_slice(tail);
        // SAFETY: t holds 8 f32.
        unsafe { _mm256_storeu_ps(t.as_mut_ptr(), gelu8(_mm256_loadu_ps(t.as_ptr()))) };
        tail.copy_from_slice(&t[..tail.len()]);
    }
}

/// [`gelu_n`] on 16-lane vectors: the same operations per lane in the same order (IEEE
/// division, FMAs, the exponent built from the same integer bits), so the same bits as the
/// 8-lane form, with half the instructions in flight for the same values (the four-chain
/// 8-lane loop is bound by its dependency chains, not its arithmetic).
///
/// # Safety
/// AVX-512F available (call from a `#[target_feature(enable = "avx512f")]` function).
#[cfg(ldp_avx512)]
#[allow(clippy::incompatible_msrv)]
#[inline(always)]
pub(crate) unsafe fn gelu_n16<const N: usize>(x: [__m512; N]) -> [__m512; N] {
    use k::*;
    // SAFETY: register-only AVX-512F operations, available per the contract.
    unsafe {
        let set = _mm512_set1_ps;
        let one = set(1.0);
        let map = |f: &dyn Fn(usize) -> __m512| -> [__m512; N] { core::array::from_fn(f) };
        let a = map(&|j| _mm512_min_ps(_mm512_abs_ps(x[j]), set(CUT)));
        let t = map(&|j| _mm512_div_ps(one, _mm512_fmadd_ps(a[j], set(C), one)));
        let h = map(&|j| _mm512_mul_ps(a[j], set(-0.5)));
        let hi = map(&|j| _mm512_mul_ps(a[j], h[j]));
        let lo = map(&|j| _mm512_fmsub_ps(a[j], h[j], hi[j]));
        let t2 = map(&|j| _mm512_mul_ps(t[j], t[j]));
        let t4 = map(&|j| _mm512_mul_ps(t2[j], t2[j]));
        let p01 = map(&|j| _mm512_fmadd_ps(t[j], set(P[1]), set(P[0])));
        let p23 = map(&|j| _mm512_fmadd_ps(t[j], set(P[3]), set(P[2])));
        let p45 = map(&|j| _mm512_fmadd_ps(t[j], set(P[5]), set(P[4])));
        let p67 = map(&|j| _mm512_fmadd_ps(t[j], set(P[7]), set(P[6])));
        let p89 = map(&|j| _mm512_fmadd_ps(t[j], set(P[9]), set(P[8])));
        let q0 = map(&|j| _mm512_fmadd_ps(t2[j], p23[j], p01[j]));
        let q1 = map(&|j| _mm512_fmadd_ps(t2[j], p67[j], p45[j]));
        let q = map(&|j| _mm512_fmadd_ps(t4[j], q1[j], q0[j]));
        let p = map(&|j| _mm512_fmadd_ps(_mm512_mul_ps(t4[j], t4[j]), p89[j], q[j]));
        let lo = map(&|j| _mm512_add_ps(lo[j], p[j]));
        let nm = map(&|j| _mm512_fmadd_ps(_mm512_add_ps(hi[j], lo[j]), set(LOG2E), set(MAGIC)));
        let n = map(&|j| _mm512_sub_ps(nm[j], set(MAGIC)));
        let r = map(&|j| _mm512_fnmadd_ps(n[j], set(LN2_HI), hi[j]));
        let r = map(&|j| _mm512_add_ps(_mm512_fnmadd_ps(n[j], set(LN2_LO), r[j]), lo[j]));
        let r2 = map(&|j| _mm512_mul_ps(r[j], r[j]));
        let e01 = map(&|j| _mm512_fmadd_ps(r[j], set(E[1]), set(E[0])));
        let e23 = map(&|j| _mm512_fmadd_ps(r[j], set(E[3]), set(E[2])));
        let e45 = map(&|j| _mm512_fmadd_ps(r[j], set(E[5]), set(E[4])));
        let e = map(&|j| _mm512_fmadd_ps(r2[j], e23[j], e01[j]));
        let e = map(&|j| _mm512_fmadd_ps(_mm512_mul_ps(r2[j], r2[j]), e45[j], e[j]));
        let e = map(&|j| _mm512_add_ps(_mm512_fmadd_ps(e[j], r2[j], r[j]), one));
        let scale = map(&|j| {
            let ni = _mm512_sub_epi32(
                _mm512_castps_si512(nm[j]),
                _mm512_set1_epi32(MAGIC.to_bits() as i32 - 127),
            );
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(ni))
        });
        let erfc = map(&|j| _mm512_mul_ps(t[j], _mm512_mul_ps(e[j], scale[j])));
        let half = set(0.5);
        let phi = map(&|j| {
            _mm512_mask_blend_ps(
                _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x[j], _mm512_setzero_ps()),
                _mm512_mul_ps(half, erfc[j]),
                _mm512_fnmadd_ps(half, erfc[j], one),
            )
        });
        map(&|j| {
            _mm512_mask_blend_ps(
                _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x[j], set(-CUT)),
                _mm512_mul_ps(x[j], phi[j]),
                set(-0.0),
            )
        })
    }
}

/// [`gelu_slice_avx2`] on 16 lanes ([`gelu_n16`]: the same bits): 32 values per step, then
/// 16, then the last `len % 16` through a masked load and store.
///
/// # Safety
/// AVX-512F available.
#[cfg(ldp_avx512)]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gelu_slice_avx512(buf: &mut [f32]) {
    let mut chunks = buf.chunks_exact_mut(64);
    for c in &mut chunks {
        // SAFETY: 64 readable and writable f32 at c; AVX-512F per the contract.
        unsafe {
            let p = c.as_mut_ptr();
            let v = gelu_n16::<4>(core::array::from_fn(|j| _mm512_loadu_ps(p.add(16 * j))));
            for (j, v) in v.iter().enumerate() {
                _mm512_storeu_ps(p.add(16 * j), *v);
            }
        }
    }
    for c in chunks.into_remainder().chunks_mut(16) {
        let m: __mmask16 = ((1u32 << c.len()) - 1) as u16;
        // SAFETY: the mask covers the c.len() ≤ 16 values at c (masked lanes are not
        // accessed); AVX-512F per the contract.
        unsafe {
            let p = c.as_mut_ptr();
            let [v] = gelu_n16::<1>([_mm512_maskz_loadu_ps(m, p)]);
            _mm512_mask_storeu_ps(p, m, v);
        }
    }
}

/// The best vector GELU slice this CPU runs ([`gelu_slice_avx512`] or [`gelu_slice_avx2`],
/// the same bits): `false` (nothing done) without AVX2 and FMA.
pub(crate) fn gelu_slice_x86(buf: &mut [f32]) -> bool {
    #[cfg(ldp_avx512)]
    if crate::kernels::cpu::x86_avx512() {
        // SAFETY: the AVX-512 level implies AVX-512F.
        unsafe { gelu_slice_avx512(buf) };
        return true;
    }
    if crate::kernels::cpu::x86_avx2_fma() {
        // SAFETY: AVX2 and FMA checked just above.
        unsafe { gelu_slice_avx2(buf) };
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::gelu_slice_avx2;
    #[cfg(ldp_avx512)]
    use super::gelu_slice_avx512;
    use std::vec::Vec;

    fn gelu64(x: f64) -> f64 {
        0.5 * x * libm::erfc(-x / core::f64::consts::SQRT_2)
    }

    fn have() -> bool {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }

    #[test]
    fn avx2_gelu_max_relative_error_below_1e6_on_minus10_10() {
        if !have() {
            return;
        }
        let n = 2_000_001;
        let mut v: Vec<f32> = (0..n)
            .map(|i| (-10.0 + 20.0 * (i as f64) / ((n - 1) as f64)) as f32)
            .collect();
        let x = v.clone();
        // SAFETY: AVX2 and FMA detected above.
        unsafe { gelu_slice_avx2(&mut v) };
        let (mut worst, mut at) = (0.0f64, 0.0f32);
        for (&xi, &yi) in x.iter().zip(&v) {
            if xi == 0.0 {
                continue;
            }
            let r = gelu64(xi as f64);
            let e = ((yi as f64 - r) / r).abs();
            if e > worst {
                (worst, at) = (e, xi);
            }
        }
        assert!(worst <= 1e-6, "max relative error {worst:e} at x = {at}");
    }

    #[test]
    fn avx2_gelu_tails_and_special_values() {
        if !have() {
            return;
        }
        let x = [
            0.0f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
            13.5,
            -12.5,
            -13.5,
            -20.0,
            -1e4,
        ];
        let mut v = x;
        // SAFETY: AVX2 and FMA detected above.
        unsafe { gelu_slice_avx2(&mut v) };
        assert_eq!(v[0].to_bits(), 0.0f32.to_bits());
        assert_eq!(v[1].to_bits(), (-0.0f32).to_bits());
        assert!(v[2].is_nan());
        assert_eq!(v[3], f32::INFINITY);
        assert_eq!(v[4], 0.0);
        assert_eq!(v[5], 1e30);
        assert_eq!(v[6], 0.0);
        assert_eq!(v[7], 13.5);
        let r = gelu64(-12.5);
        assert!(((v[8] as f64 - r) / r).abs() < 1e-6);
        assert!(v[9..].iter().all(|&y| y == 0.0));
    }

    /// The 16-lane AVX-512 GELU against the 8-lane AVX2 one, bit for bit: values spread over
    /// ±16 and far beyond, the special values, every length up to 200 (the 64-value steps, the
    /// 16-value steps and the masked tail) at odd offsets.
    #[cfg(ldp_avx512)]
    #[test]
    fn avx512_gelu_equals_avx2_bitwise() {
        if !have() || !crate::kernels::cpu::x86_avx512() {
            return;
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let special = [
            0.0f32,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -1e-40,
            1e30,
            -1e30,
            13.0,
            -13.0,
            -13.000001,
            12.999999,
            12.5,
            -12.5,
            -12.500001,
            12.499999,
            0.5,
            -0.5,
        ];
        let mut x: Vec<f32> = (0..20_000)
            .map(|i| {
                let r = next();
                match i % 4 {
                    0 => special[(r % special.len() as u64) as usize],
                    1 => f32::from_bits(r as u32),
                    _ => ((r >> 11) as f64 / (1u64 << 53) as f64 * 32.0 - 16.0) as f32,
                }
            })
            .collect();
        let mut want = x.clone();
        // SAFETY: AVX2, FMA and AVX-512F detected above.
        unsafe {
            gelu_slice_avx2(&mut want);
            gelu_slice_avx512(&mut x);
        }
        for (i, (a, b)) in x.iter().zip(&want).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "at {i}: {a} vs {b}"
            );
        }
        let src: Vec<f32> = (0..230).map(|i| (i as f32 - 115.0) * 0.137).collect();
        for len in 0..=200 {
            for start in [0, 3, 29] {
                let (mut a, mut b) = (
                    src[start..start + len].to_vec(),
                    src[start..start + len].to_vec(),
                );
                // SAFETY: as above.
                unsafe {
                    gelu_slice_avx2(&mut a);
                    gelu_slice_avx512(&mut b);
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "len {len} start {start}");
            }
        }
    }

    #[test]
    fn avx2_gelu_does_not_depend_on_position_or_length() {
        if !have() {
            return;
        }
        let x: Vec<f32> = (0..77).map(|i| (i as f32 - 38.0) * 0.173).collect();
        let mut whole = x.clone();
        // SAFETY: AVX2 and FMA detected above.
        unsafe { gelu_slice_avx2(&mut whole) };
        for len in 1..x.len() {
            for start in [0, 1, 7, 33] {
                if start + len > x.len() {
                    continue;
                }
                let mut part = x[start..start + len].to_vec();
                // SAFETY: as above.
                unsafe { gelu_slice_avx2(&mut part) };
                for (a, b) in part.iter().zip(&whole[start..start + len]) {
                    assert_eq!(a.to_bits(), b.to_bits(), "len {len} start {start}");
                }
            }
        }
    }
}
