//! Elementwise activations: GELU (exact erf form), Hardswish, Hardsigmoid, ReLU.
//!
//! GELU is PyTorch's `nn.GELU()`, `0.5·x·(1 + erf(x/√2)) = x·Φ(x)`, evaluated without calls to
//! `libm` and without branches, so that a loop over a slice vectorizes (LLVM turns it into
//! SIMD code on every target; see [`gelu_slice`]). Max relative error ≤ 1e-6 against f64 over
//! [-10, 10] (measured 5.0e-7; the test below checks every step of 1e-5):
//!
//! * `Φ(x) = 1 - erfc(|x|/√2)/2` for `x ≥ 0` and `erfc(|x|/√2)/2` for `x < 0`, so the negative
//!   side, where `Φ` is tiny, never subtracts and keeps its relative accuracy;
//! * `erfc(z) = t·exp(-z² + P(t))`, `t = 1/(1 + z/2)`, with the 10-term polynomial `P` of
//!   Numerical Recipes' `erfcc` (fractional error < 1.2e-7 for every `z ≥ 0`);
//! * `-z² = -x²/2` is formed exactly as a pair `hi + lo` (Dekker's product — no FMA needed), and
//!   the exponential reduces `hi` by Cody–Waite (exact for large `|hi|`, where one rounding of
//!   `-z²` alone would cost up to 2e-6 relative at `x = -10`), adding `lo + P(t)` afterwards;
//! * `exp(r)` on `|r| ≤ ln2/2` is Cephes' degree-7 polynomial, scaled by `2^n` through the
//!   exponent bits.
//!
//! Polynomials are evaluated by Estrin's scheme (short dependency chains). Below
//! `x = -`[`GELU_CUT`] (`-12.5`, `Φ < 4e-36`) GELU returns `-0.0`, and `|x|` is capped there
//! inside the formula: every intermediate value stays a normal f32 (from `|x| ≈ 12.9` on,
//! `erfc` would be subnormal, and each vector instruction touching a subnormal costs a
//! microcode assist of about a hundred cycles on Intel cores). This scalar form is the
//! reference; on x86-64 with AVX2 and FMA, [`gelu_slice`] and the GEMM epilogues run the same
//! formula 8 lanes at a time with fused multiply-adds (`x86.rs`, same error bound).

use crate::elem::Elem;

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

const FRAC_1_SQRT_2: f32 = core::f32::consts::FRAC_1_SQRT_2;

/// GELU is `-0.0` below `-GELU_CUT`, and `|x|` is capped at it inside the formula, so that no
/// intermediate value is a subnormal f32 (see the module docs).
pub const GELU_CUT: f32 = 12.5;

/// `exp(hi + lo)` for `-126·ln2 < hi + lo ≤ 0`, with `hi` reduced exactly (Cody–Waite) before
/// the small `lo` is added: accurate when `hi` carries more bits than one f32 sum could keep.
#[inline(always)]
fn exp_hi_lo(hi: f32, lo: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 0x3f31_8000: 9 significant bits, n·LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let nm = (hi + lo) * LOG2E + MAGIC;
    let n = nm - MAGIC;
    let ni = (nm.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = (hi - n * LN2_HI) - n * LN2_LO + lo;
    let r2 = r * r;
    let e01 = 0.5 + r * 1.666_666_5e-1;
    let e23 = 4.166_579_6e-2 + r * 8.333_452e-3;
    let e45 = 1.398_199_9e-3 + r * 1.987_569_2e-4;
    let p = (e01 + r2 * e23) + (r2 * r2) * e45; // Estrin: short dependency chains
    let e = p * r2 + r + 1.0;
    e * f32::from_bits((ni.wrapping_add(127) as u32) << 23)
}

/// `-0.5·x²` as an exact pair `(hi, lo)` for `0 ≤ a ≤ 13` (Dekker's product: `a = ah + al` with
/// 12-bit halves, no FMA needed, no overflow).
#[inline(always)]
fn neg_half_square(a: f32) -> (f32, f32) {
    let sq = a * a;
    let g = a * 4097.0;
    let ah = g - (g - a);
    let al = a - ah;
    let sq_err = ((ah * ah - sq) + 2.0 * ah * al) + al * al;
    (-0.5 * sq, -0.5 * sq_err)
}

/// Numerical Recipes' `erfcc` polynomial `P(t)`, evaluated by Estrin's scheme (short
/// dependency chains).
#[inline(always)]
fn erfc_poly(t: f32) -> f32 {
    let t2 = t * t;
    let t4 = t2 * t2;
    let p01 = -1.265_512_2 + t * 1.000_023_7;
    let p23 = 0.374_091_96 + t * 0.096_784_18;
    let p45 = -0.186_288_06 + t * 0.278_868_07;
    let p67 = -1.135_204 + t * 1.488_515_8;
    let p89 = -0.822_152_2 + t * 0.170_872_77;
    let q0 = p01 + t2 * p23;
    let q1 = p45 + t2 * p67;
    (q0 + t4 * q1) + (t4 * t4) * p89
}

/// `x·Φ(x)` from `erfc(|x|/√2)`, with the tail below `-GELU_CUT` flushed to `-0.0`.
#[inline(always)]
fn gelu_finish(x: f32, erfc: f32) -> f32 {
    let phi = if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    };
    if x < -GELU_CUT {
        -0.0
    } else {
        x * phi
    }
}

/// `GELU(x) = 0.5·x·(1 + erf(x/√2))`, max relative error ≤ 1e-6 against f64 over [-10, 10].
///
/// Branch-free (selects only) and `#[inline(always)]`, so loops over it vectorize.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    let a = x.abs().min(GELU_CUT);
    let t = 1.0 / (1.0 + 0.5 * (a * FRAC_1_SQRT_2));
    let (hi, lo) = neg_half_square(a);
    gelu_finish(x, t * exp_hi_lo(hi, erfc_poly(t) + lo))
}

/// GELU of every element of `buf`, in place, vectorized. On x86-64 with AVX2 and FMA (detected
/// at run time with the `std` feature, or enabled at compile time) this is the 8-lane FMA form
/// of `x86.rs`, or its 16-lane AVX-512 form (the same bits; same formula and bound as [`gelu`],
/// not its bits); elsewhere the same values as [`gelu`], bit for bit.
pub fn gelu_slice(buf: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if x86::gelu_slice_x86(buf) {
        return;
    }
    // In-order cores (and instruction counts) prefer the plain loop, which LLVM vectorizes
    // with fewer instructions than the blocked form.
    buf.iter_mut().for_each(|v| *v = gelu(*v));
}

/// `Hardswish(x) = x·min(max(x + 3, 0), 6)/6` (PyTorch's `nn.Hardswish`).
#[inline]
pub fn hardswish(x: f32) -> f32 {
    x * (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// `Hardsigmoid(x) = min(max(x + 3, 0), 6)/6` (PyTorch's `nn.Hardsigmoid`).
#[inline]
pub fn hardsigmoid(x: f32) -> f32 {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// `ReLU(x) = max(x, 0)`.
#[inline]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Which elementwise activation to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// Exact-erf GELU.
    Gelu,
    /// Hardswish.
    Hardswish,
    /// Hardsigmoid.
    Hardsigmoid,
    /// ReLU.
    Relu,
}

impl Activation {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Gelu => gelu(x),
            Activation::Hardswish => hardswish(x),
            Activation::Hardsigmoid => hardsigmoid(x),
            Activation::Relu => relu(x),
        }
    }
}

/// Applies `act` to every element of `buf`, in place. GELU runs [`gelu_slice`] (on x86-64 with
/// AVX2 and FMA, f16 values too: converted to f32 in blocks, the same GELU, rounded back).
pub fn apply_inplace<A: Elem>(act: Activation, buf: &mut [A]) {
    if act == Activation::Gelu {
        if let Some(b) = crate::kernels::cpu::as_f32_mut(buf) {
            gelu_slice(b);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::cpu::x86_avx2_fma() {
            let mut t = [0.0f32; 64];
            for c in buf.chunks_mut(64) {
                for (d, v) in t.iter_mut().zip(c.iter()) {
                    *d = v.to_f32();
                }
                x86::gelu_slice_x86(&mut t[..c.len()]);
                for (v, d) in c.iter_mut().zip(t.iter()) {
                    *v = A::from_f32(*d);
                }
            }
            return;
        }
    }
    match act {
        Activation::Gelu => buf
            .iter_mut()
            .for_each(|v| *v = A::from_f32(gelu(v.to_f32()))),
        Activation::Hardswish => buf
            .iter_mut()
            .for_each(|v| *v = A::from_f32(hardswish(v.to_f32()))),
        Activation::Hardsigmoid => buf
            .iter_mut()
            .for_each(|v| *v = A::from_f32(hardsigmoid(v.to_f32()))),
        Activation::Relu => buf
            .iter_mut()
            .for_each(|v| *v = A::from_f32(relu(v.to_f32()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu64(x: f64) -> f64 {
        // erfc-based in f64 via libm.
        0.5 * x * libm::erfc(-x / core::f64::consts::SQRT_2)
    }

    #[test]
    fn gelu_max_relative_error_below_1e6_on_minus10_10() {
        let mut worst = 0.0f64;
        let mut at = 0.0f32;
        let n = 2_000_001;
        for i in 0..n {
            let x = -10.0 + 20.0 * (i as f64) / ((n - 1) as f64);
            let x = x as f32;
            if x == 0.0 {
                continue;
            }
            let r = gelu64(x as f64);
            let e = ((gelu(x) as f64 - r) / r).abs();
            if e > worst {
                worst = e;
                at = x;
            }
        }
        assert!(worst <= 1e-6, "max relative error {worst:e} at x = {at}");
    }

    #[test]
    fn gelu_tails_and_special_values() {
        assert_eq!(gelu(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(gelu(-0.0).to_bits(), (-0.0f32).to_bits());
        assert!(gelu(f32::NAN).is_nan());
        assert_eq!(gelu(f32::INFINITY), f32::INFINITY);
        assert_eq!(gelu(f32::NEG_INFINITY), 0.0);
        assert_eq!(gelu(1e30), 1e30);
        assert_eq!(gelu(-1e30), 0.0);
        assert_eq!(gelu(13.5), 13.5);
        // Φ(-12.5) ≈ 3.7e-36 (f64 reference); still relative 1e-6 this far out.
        let r = gelu64(-12.5);
        assert!(((gelu(-12.5) as f64 - r) / r).abs() < 1e-6);
        for x in [-13.5f32, -20.0, -1e4] {
            assert_eq!(gelu(x), 0.0);
        }
    }

    /// No result is subnormal, on either side of the cut, in the scalar form and in
    /// `gelu_slice` (on x86-64 its vector forms); and at the cap the formula's smallest
    /// intermediates, `erfc` and `erfc/2`, are normal (both are subnormal with a cap of 13).
    #[test]
    fn gelu_results_are_never_subnormal() {
        let a = GELU_CUT;
        let t = 1.0 / (1.0 + 0.5 * (a * FRAC_1_SQRT_2));
        let (hi, lo) = neg_half_square(a);
        let erfc = t * exp_hi_lo(hi, erfc_poly(t) + lo);
        assert!(
            (0.5 * erfc).is_normal(),
            "erfc/2 at the cap: {:e}",
            0.5 * erfc
        );
        let x: [f32; 28 * 1024] = core::array::from_fn(|i| -14.0 + i as f32 / 1024.0);
        let mut v = x;
        gelu_slice(&mut v);
        for (&xi, &vi) in x.iter().zip(&v) {
            let s = gelu(xi);
            assert!(s == 0.0 || s.is_normal(), "gelu({xi}) = {s:e}");
            assert!(vi == 0.0 || vi.is_normal(), "gelu_slice at {xi}: {vi:e}");
        }
        assert_eq!(gelu(-12.5 - 1e-6), 0.0);
        assert!(gelu(-12.5) < 0.0);
    }

    /// Off x86-64 `gelu_slice` is `gelu` bit for bit (x86's FMA form has its own tests).
    #[cfg(not(target_arch = "x86_64"))]
    #[test]
    fn gelu_slice_matches_scalar_bitwise() {
        let mut v: [f32; 1003] = core::array::from_fn(|i| (i as f32 - 501.0) * 0.029);
        let expect = v.map(gelu);
        gelu_slice(&mut v);
        for (a, b) in v.iter().zip(expect.iter()) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn hard_activations_match_definition() {
        assert_eq!(hardswish(-4.0), 0.0);
        assert_eq!(hardswish(4.0), 4.0);
        assert!((hardswish(1.0) - 1.0 * 4.0 / 6.0).abs() < 1e-7);
        assert_eq!(hardsigmoid(-3.5), 0.0);
        assert_eq!(hardsigmoid(3.5), 1.0);
        assert_eq!(hardsigmoid(0.0), 0.5);
        assert_eq!(relu(-1.0), 0.0);
    }
}
