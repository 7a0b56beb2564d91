//! The LayerNorm of the 16-bit-activation path ([`crate::quant::a16`]; MobileVLM V1's
//! `LayerNormAct2d` with or without Hardswish): `i16` input (a conv's output, zero point 0) to
//! `i16` output (zero point 0). Portable scalar code, the definition itself; it runs on every
//! target, so host and device compute the same bits.
//!
//! **The scheme.** The statistics, normalization and affine step are those of the int8
//! LayerNorm ([`crate::quant::kernels::NormQ`], `kernels::norm::int8`): per pixel
//! `S1 = Σx`, `S2 = Σx²`, `x̂ = (C·x − S1)/√(C·S2 − S1² + E)` with 16 fractional bits, then
//! `v = sat16(round((x̂·γ + β·2^16) / 2^T))` at the pre-activation scale. The optional
//! Hardswish ([`Hswish16`]) works on `v` with the same scale for input and output:
//! `t = clamp(v + three, 0, 2·three)`, `y = round(v·t·mult / 2^shift)` — with
//! `three = 3/scale` exactly (the quantizer makes the scale `3/three`) and
//! `mult / 2^shift ≈ 1/(2·three)` this is `x·relu6(x + 3)/6`. Last the output is saturated to
//! `±clamp`, the budget of the Linear that reads it.

use crate::error::{check_len, Error};
use crate::kernels::norm::int8::{ln_eps, ln_stats};
use crate::quant::a16::MAX16;
use crate::quant::fixed::requant64;
use crate::quant::kernels::NormQ;

/// Largest [`Hswish16::three`]: `|v|·t ≤ 2^15·2^17`, so `v·t·mult` stays below `2^62`.
pub const MAX_THREE: i32 = 1 << 16;
/// [`Hswish16::mult`] is below this bound.
pub const MULT_LIMIT: i32 = 1 << 30;

/// The 16-bit Hardswish after a LayerNorm (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hswish16 {
    /// `3 / scale` (`1..=`[`MAX_THREE`]).
    pub three: i32,
    /// `2^shift / (2·three)`, rounded (`0..`[`MULT_LIMIT`]).
    pub mult: i32,
    /// `1..=62`.
    pub shift: i32,
}

impl Hswish16 {
    /// Whether the parameters keep every product within `i64` (what a blob's checks require).
    pub fn valid(&self) -> bool {
        (1..=MAX_THREE).contains(&self.three)
            && (0..MULT_LIMIT).contains(&self.mult)
            && (1..=62).contains(&self.shift)
    }
    #[inline(always)]
    fn apply(&self, v: i64) -> i64 {
        let three = self.three as i64;
        let t = (v + three).clamp(0, 2 * three);
        requant64(v * t * self.mult as i64, self.shift)
    }
}

/// The 16-bit LayerNorm's parameters: the int8 LayerNorm's ([`NormQ`]; its `out_zero` must be
/// 0 and `lut` `None`), the optional Hardswish and the output saturation.
#[derive(Debug, Clone, Copy)]
pub struct Norm16<'a> {
    /// γ, β, `T`, `eps_q8` (relative to the input scale).
    pub norm: NormQ<'a>,
    /// The fused Hardswish, if any.
    pub hswish: Option<Hswish16>,
    /// Output saturation (`1..=32767`).
    pub clamp: i32,
}

/// LayerNorm (+ Hardswish) of every pixel of `x: [pixels][c]` into `y` (the same length), as
/// the module docs define it. Errors: parameters of the wrong length, a ragged input, a zero
/// point or table (the 16-bit form has neither), a Hardswish outside [`Hswish16::valid`].
pub fn layer_norm16(x: &[i16], c: usize, q: &Norm16<'_>, y: &mut [i16]) -> Result<(), Error> {
    check(x.len(), c, q)?;
    check_len("16-bit norm output", y, x.len())?;
    match q.hswish {
        Some(h) => norm_pixels(x, c, q, y, |v| h.apply(v)),
        None => norm_pixels(x, c, q, y, |v| v),
    }
    Ok(())
}

/// [`layer_norm16`] in place (pixel bands on the host's threads with `std`: every pixel is
/// independent, so the bits do not depend on the split).
pub fn layer_norm16_inplace(buf: &mut [i16], c: usize, q: &Norm16<'_>) -> Result<(), Error> {
    check(buf.len(), c, q)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::norm_bands(buf.len() / c, c);
        if n > 1 {
            return crate::kernels::threads::split_inplace(buf, c, n, |b| {
                inplace_one(b, c, q);
                Ok(())
            });
        }
    }
    inplace_one(buf, c, q);
    Ok(())
}

/// [`layer_norm16_inplace`] on the calling thread; parameters checked. On x86-64 with
/// AVX-512 (the `std` feature; [`crate::kernels::cpu::x86_avx512`]) the same Rust code is
/// compiled a second time for AVX-512 F/DQ/BW/VL, whose 64-bit multiplies, shifts and
/// saturating narrows let the compiler vectorize the `i64` arithmetic: integer operations, so
/// the bits are the portable code's (checked by `a16_layer_norm_avx512_equals_portable`).
fn inplace_one(buf: &mut [i16], c: usize, q: &Norm16<'_>) {
    #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
    if crate::kernels::cpu::x86_avx512() {
        // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 are present (`x86_avx512`).
        unsafe { inplace_avx512(buf, c, q) };
        return;
    }
    inplace_body(buf, c, q)
}

/// [`inplace_body`] compiled for AVX-512.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn inplace_avx512(buf: &mut [i16], c: usize, q: &Norm16<'_>) {
    inplace_body(buf, c, q)
}

/// The body of [`inplace_one`]: the Hardswish test hoisted out of the channel loop.
#[inline(always)]
fn inplace_body(buf: &mut [i16], c: usize, q: &Norm16<'_>) {
    match q.hswish {
        Some(h) => inplace_pixels(buf, c, q, |v| h.apply(v)),
        None => inplace_pixels(buf, c, q, |v| v),
    }
}

#[inline(always)]
fn inplace_pixels(buf: &mut [i16], c: usize, q: &Norm16<'_>, act: impl Fn(i64) -> i64) {
    let (gamma, beta) = (&q.norm.gamma[..c], &q.norm.beta[..c]);
    for px in buf.chunks_exact_mut(c) {
        // The statistics read the whole pixel before any value is written.
        let (s1, inv, k) = stats(px, c, q);
        for ((x, &g), &b) in px.iter_mut().zip(gamma).zip(beta) {
            *x = value(c, *x, s1, inv, k, g, b, q, &act);
        }
    }
}

/// [`layer_norm16`]'s loop: `x` into `y` (the same length), the activation chosen outside it.
#[inline(always)]
fn norm_pixels(x: &[i16], c: usize, q: &Norm16<'_>, y: &mut [i16], act: impl Fn(i64) -> i64) {
    let (gamma, beta) = (&q.norm.gamma[..c], &q.norm.beta[..c]);
    for (px, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let (s1, inv, k) = stats(px, c, q);
        for (((o, &x), &g), &b) in out.iter_mut().zip(px).zip(gamma).zip(beta) {
            *o = value(c, x, s1, inv, k, g, b, q, &act);
        }
    }
}

fn check(len: usize, c: usize, q: &Norm16<'_>) -> Result<(), Error> {
    if c == 0 || len % c != 0 {
        return Err(Error::InvalidConfig("16-bit layer norm: ragged input"));
    }
    check_len("16-bit norm gamma", q.norm.gamma, c)?;
    check_len("16-bit norm beta", q.norm.beta, c)?;
    if q.norm.out_zero != 0 || q.norm.lut.is_some() {
        return Err(Error::InvalidConfig(
            "16-bit layer norm: a zero point or an int8 table",
        ));
    }
    if matches!(q.hswish, Some(h) if !h.valid()) {
        return Err(Error::InvalidConfig(
            "16-bit layer norm: Hardswish parameters out of range",
        ));
    }
    Ok(())
}

#[inline(always)]
fn stats(px: &[i16], c: usize, q: &Norm16<'_>) -> (i64, i64, i32) {
    let (mut s1, mut s2) = (0i64, 0i64);
    for &v in px {
        s1 += v as i64;
        s2 += (v as i64) * (v as i64);
    }
    ln_stats(c as i64, ln_eps(c, &q.norm), s1, s2)
}

/// One output: the normalized, scaled value at the pre-activation scale, `act` (the Hardswish
/// or the identity), saturated to `±clamp` (see the module docs).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn value(
    c: usize,
    x: i16,
    s1: i64,
    inv: i64,
    k: i32,
    g: i16,
    b: i16,
    q: &Norm16<'_>,
    act: &impl Fn(i64) -> i64,
) -> i16 {
    let num = (c as i64) * x as i64 - s1;
    let xh = requant64(num.wrapping_mul(inv), 46 - k);
    let acc = xh.wrapping_mul(g as i64).wrapping_add((b as i64) << 16);
    let m = MAX16 as i64;
    let v = act(requant64(acc, q.norm.shift).clamp(-m, m));
    let s = q.clamp.clamp(0, MAX16) as i64;
    v.clamp(-s, s) as i16
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn lcg(seed: &mut u64) -> i64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as i64
    }

    /// The in-place loop (`inplace_body`, and its AVX-512 compilation where the CPU has it)
    /// equals the out-of-place loop (`layer_norm16`) bit for bit on arbitrary
    /// parameters: any inputs, γ, β, shift, ε, Hardswish parameters and saturation.
    #[test]
    fn a16_layer_norm_avx512_equals_portable() {
        let mut seed = 11u64;
        for round in 0..200 {
            let c = [1usize, 2, 7, 8, 15, 16, 17, 33, 64, 100, 257][round % 11];
            let px = 1 + (lcg(&mut seed) % 4) as usize;
            let r = |seed: &mut u64, lo: i64, hi: i64| lo + lcg(seed) % (hi - lo + 1);
            let small = round % 3 == 0;
            let x: Vec<i16> = (0..px * c)
                .map(|_| if small { r(&mut seed, -3, 3) } else { r(&mut seed, -32768, 32767) } as i16)
                .collect();
            let gamma: Vec<i16> = (0..c).map(|_| r(&mut seed, -32768, 32767) as i16).collect();
            let beta: Vec<i16> = (0..c).map(|_| r(&mut seed, -32768, 32767) as i16).collect();
            let hsw = Hswish16 {
                three: r(&mut seed, 1, MAX_THREE as i64) as i32,
                mult: r(&mut seed, 0, MULT_LIMIT as i64 - 1) as i32,
                shift: r(&mut seed, 1, 62) as i32,
            };
            let q = Norm16 {
                norm: NormQ {
                    gamma: &gamma,
                    beta: &beta,
                    shift: r(&mut seed, 1, 62) as i32,
                    eps_q8: r(&mut seed, 0, 1 << 20) as i32,
                    out_zero: 0,
                    lut: None,
                },
                hswish: (round % 2 == 0).then_some(hsw),
                clamp: r(&mut seed, 1, MAX16 as i64) as i32,
            };
            let mut want = std::vec![0i16; x.len()];
            layer_norm16(&x, c, &q, &mut want).unwrap();
            let mut got = x.clone();
            inplace_body(&mut got, c, &q);
            assert_eq!(want, got, "portable, round {round}, c={c}");
            #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
            if crate::kernels::cpu::x86_detected() >= crate::kernels::cpu::X86Level::Avx512 {
                let mut got = x.clone();
                // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 detected just above.
                unsafe { inplace_avx512(&mut got, c, &q) };
                assert_eq!(want, got, "AVX-512, round {round}, c={c}");
            }
        }
    }

    /// Against the float definition: the normalized, scaled, Hardswish'd value in output units,
    /// within 1.5 steps (the rounding of `x̂`, `γ`, `β` and the output).
    #[test]
    fn matches_float_layer_norm_hardswish() {
        let mut seed = 7u64;
        for &(c, hs) in &[
            (1usize, false),
            (3, true),
            (16, false),
            (64, true),
            (257, true),
        ] {
            let px = 5;
            let x: Vec<i16> = (0..px * c)
                .map(|_| (lcg(&mut seed) % 20001 - 10000) as i16)
                .collect();
            let gf: Vec<f64> = (0..c).map(|i| 0.5 + (i % 7) as f64 * 0.2).collect();
            let bf: Vec<f64> = (0..c).map(|i| (i % 5) as f64 * 0.3 - 0.6).collect();
            // Output scale 3/three with three = 6000: ±32767 covers ±16.4.
            let three = 6000i32;
            let so = 3.0 / three as f64;
            // γ/so·2^3 and β/so·2^3 within i16; the shift is then 3 + 16.
            let k = 8.0;
            let gamma: Vec<i16> = gf.iter().map(|g| (g / so * k).round() as i16).collect();
            let beta: Vec<i16> = bf.iter().map(|b| (b / so * k).round() as i16).collect();
            let shift2 = 29 + (2 * three).ilog2() as i32;
            let hsw = Hswish16 {
                three,
                mult: ((1u64 << shift2) as f64 / (2 * three) as f64).round() as i32,
                shift: shift2,
            };
            let q = Norm16 {
                norm: NormQ {
                    gamma: &gamma,
                    beta: &beta,
                    shift: 19,
                    eps_q8: 0,
                    out_zero: 0,
                    lut: None,
                },
                hswish: hs.then_some(hsw),
                clamp: MAX16,
            };
            let mut y = std::vec![0i16; x.len()];
            layer_norm16(&x, c, &q, &mut y).unwrap();
            let mut z = x.clone();
            layer_norm16_inplace(&mut z, c, &q).unwrap();
            assert_eq!(y, z, "in place differs");
            for p in 0..px {
                let xs = &x[p * c..(p + 1) * c];
                let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
                let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / c as f64;
                for i in 0..c {
                    let n = if var > 0.0 {
                        (xs[i] as f64 - mean) / var.sqrt()
                    } else {
                        0.0
                    };
                    let mut r = n * gamma[i] as f64 * so / k + beta[i] as f64 * so / k;
                    if hs {
                        r = r * (r + 3.0).clamp(0.0, 6.0) / 6.0;
                    }
                    let want = (r / so).clamp(-32767.0, 32767.0);
                    let got = y[p * c + i] as f64;
                    assert!(
                        (got - want).abs() <= 1.5,
                        "c={c} p={p} i={i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn refuses_bad_parameters() {
        let g = [1i16; 4];
        let mut q = Norm16 {
            norm: NormQ {
                gamma: &g,
                beta: &g,
                shift: 10,
                eps_q8: 0,
                out_zero: 0,
                lut: None,
            },
            hswish: None,
            clamp: MAX16,
        };
        let x = [1i16; 8];
        let mut y = [0i16; 8];
        assert!(layer_norm16(&x, 4, &q, &mut y).is_ok());
        assert!(layer_norm16(&x, 3, &q, &mut y).is_err());
        assert!(layer_norm16(&x, 4, &q, &mut y[..7]).is_err());
        assert!(layer_norm16(&x[..4], 8, &q, &mut y[..4]).is_err());
        q.norm.out_zero = 1;
        assert!(layer_norm16(&x, 4, &q, &mut y).is_err());
        q.norm.out_zero = 0;
        q.hswish = Some(Hswish16 {
            three: 0,
            mult: 1,
            shift: 10,
        });
        assert!(layer_norm16(&x, 4, &q, &mut y).is_err());
        q.hswish = Some(Hswish16 {
            three: MAX_THREE,
            mult: MULT_LIMIT - 1,
            shift: 62,
        });
        let xx = [
            i16::MIN,
            i16::MAX,
            0,
            -1,
            i16::MAX,
            i16::MAX,
            i16::MAX,
            i16::MIN,
        ];
        assert!(layer_norm16(&xx, 4, &q, &mut y).is_ok());
    }
}
