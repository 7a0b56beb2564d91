//! The squeeze-excitation of the 16-bit-activation path ([`crate::quant::a16`]; MobileVLM V1's
//! blocks): `i16` map in, `i16` map out (zero points 0), int8 weights. Portable scalar code, the
//! definition itself; it runs on every target, so host and device compute the same bits.
//!
//! **The scheme.**
//! * the per-channel mean `m[c] = div_round(Σ_p x[p][c], pixels)` (the input's scale);
//! * `fc1`: `h[j] = clamp(round((bias + Σ m·w) · mult[j] / 2^shift), 0, hid_clamp)` — ReLU, and
//!   the saturation that keeps `fc2`'s products within `s · 127 · hid_clamp ≤ 2^30`;
//! * `fc2` to the gate input at the fixed scale `1/8192` ([`GATE_SCALE`]; `±32767` covers
//!   `±4`, beyond which Hardsigmoid is flat), then the gate in units of `1/49152`:
//!   `g = clamp(v + 24576, 0, 49152)` (`relu6(x + 3)/6` exactly on that grid);
//! * `y = sat(round(x · g · mult / 2^shift), clamp)` with `mult/2^shift = s_x / (s_y · 49152)`.

use crate::error::{size_of_dims, Error};
use crate::quant::a16::{out16, MAX16};
use crate::quant::fixed::{div_round, requant64};
use crate::quant::kernels::{check_conv, ConvQ};

/// The real scale of `fc2`'s output, the Hardsigmoid's input: `3 / 24576`.
pub const GATE_SCALE: f32 = 1.0 / 8192.0;
/// `3 / GATE_SCALE`: the gate input's offset.
pub const GATE_THREE: i32 = 24576;
/// `6 / GATE_SCALE`: a gate of exactly 1.
pub const GATE_ONE: i32 = 2 * GATE_THREE;

/// Parameters of [`squeeze_excite16`].
#[derive(Debug, Clone, Copy)]
pub struct Se16<'a> {
    /// `fc1` (`[s][c]`, zero points 0).
    pub fc1: ConvQ<'a>,
    /// `fc2` (`[c][s]`, zero points 0), requantized to [`GATE_SCALE`].
    pub fc2: ConvQ<'a>,
    /// Saturation of the hidden vector (`1..=32767`).
    pub hid_clamp: i32,
    /// Output multiplier (`0..2^31`).
    pub mult: i32,
    /// Output shift (`1..=62`).
    pub shift: i32,
    /// Output saturation (`1..=32767`).
    pub clamp: i32,
}

/// `i32`s of temporary storage [`squeeze_excite16`] needs: the means, the hidden vector, the
/// gate (saturating: an impossible size is `usize::MAX`, which no buffer meets).
pub const fn se16_tmp_len(c: usize, s: usize) -> usize {
    c.saturating_mul(2).saturating_add(s)
}

/// 16-bit squeeze-excitation of `x: [pixels][c]` in place (the module docs' scheme); `tmp`
/// holds at least [`se16_tmp_len`] `i32`s. Errors: an empty or ragged map, weights of the wrong
/// shape, a short `tmp`, a negative multiplier.
pub fn squeeze_excite16(
    x: &mut [i16],
    c: usize,
    s: usize,
    q: &Se16<'_>,
    tmp: &mut [i32],
) -> Result<(), Error> {
    if c == 0 || s == 0 || x.is_empty() || x.len() % c != 0 {
        return Err(Error::InvalidConfig("16-bit squeeze-excitation: bad shape"));
    }
    check_conv(&q.fc1, size_of_dims(&[s, c])?, s)?;
    check_conv(&q.fc2, size_of_dims(&[c, s])?, c)?;
    if q.mult < 0 {
        return Err(Error::InvalidConfig(
            "16-bit squeeze-excitation: negative multiplier",
        ));
    }
    let (mean, hid, gate) = super::split_tmp(tmp, c, s)?;
    se16_gate(x, c, q, (mean, hid, &mut *gate));
    let gate = &*gate;
    // With the `std` feature, the gate multiplication in bands of pixels on the host's threads
    // (integer arithmetic on each element alone: same bits).
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(
            x.len() / c,
            c.saturating_mul(crate::kernels::threads::ELEM_COST),
        );
        if n > 1 {
            return crate::kernels::threads::split_inplace(x, c, n, |b| {
                se16_apply(b, c, q, gate);
                Ok(())
            });
        }
    }
    se16_apply(x, c, q, gate);
    Ok(())
}

/// [`se16_apply_body`], compiled for AVX-512 where the CPU has it (64-bit multiplies and
/// shifts let the compiler vectorize the gate's `i64` products; integer arithmetic, so the
/// bits are the portable code's).
fn se16_apply(x: &mut [i16], c: usize, q: &Se16<'_>, gate: &[i32]) {
    #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
    if crate::kernels::cpu::x86_avx512() {
        // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 are present (`x86_avx512`).
        unsafe { se16_apply_avx512(x, c, q, gate) };
        return;
    }
    se16_apply_body(x, c, q, gate)
}

/// [`se16_apply_body`] compiled for AVX-512.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn se16_apply_avx512(x: &mut [i16], c: usize, q: &Se16<'_>, gate: &[i32]) {
    se16_apply_body(x, c, q, gate)
}

/// [`se16_gate_body`], compiled for AVX-512 where the CPU has it.
fn se16_gate(x: &[i16], c: usize, q: &Se16<'_>, parts: super::Parts<'_, i32>) {
    #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
    if crate::kernels::cpu::x86_avx512() {
        // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 are present (`x86_avx512`).
        unsafe { se16_gate_avx512(x, c, q, parts) };
        return;
    }
    se16_gate_body(x, c, q, parts)
}

/// [`se16_gate_body`] compiled for AVX-512.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn se16_gate_avx512(x: &[i16], c: usize, q: &Se16<'_>, parts: super::Parts<'_, i32>) {
    se16_gate_body(x, c, q, parts)
}

/// Channels per block of the channel means: `[i64; 256]` on the stack.
const MEAN_BLOCK: usize = 256;

/// The gate of the squeeze-excitation after [`squeeze_excite16`]'s checks: `x` is
/// `[pixels][c]` with `pixels ≥ 1`, the temporaries `(mean, hid, gate)` of `c`, `s` and `c`
/// entries (`split_tmp`), the convs are validated.
#[inline(always)]
fn se16_gate_body(x: &[i16], c: usize, q: &Se16<'_>, (mean, hid, gate): super::Parts<'_, i32>) {
    let (pixels, s) = (x.len() / c, hid.len());
    // Means (i64 sums: any number of pixels), blocks of channels row by row so that the reads
    // are contiguous.
    let mut c0 = 0;
    while c0 < c {
        let nb = MEAN_BLOCK.min(c - c0);
        let mut acc = [0i64; MEAN_BLOCK];
        for px in x.chunks_exact(c) {
            for (a, &v) in acc[..nb].iter_mut().zip(&px[c0..c0 + nb]) {
                *a = a.wrapping_add(v as i64);
            }
        }
        for (m, &a) in mean[c0..c0 + nb].iter_mut().zip(&acc[..nb]) {
            *m = div_round(a, pixels as i64) as i32;
        }
        c0 += nb;
    }
    let hc = q.hid_clamp.clamp(0, MAX16);
    for (j, h) in hid.iter_mut().enumerate() {
        let acc = dot(mean, &q.fc1.weight[j * c..(j + 1) * c]).wrapping_add(q.fc1.bias_at(j));
        *h = (out16(acc, j, &q.fc1) as i32).clamp(0, hc);
    }
    for (i, g) in gate.iter_mut().enumerate() {
        let acc = dot(hid, &q.fc2.weight[i * s..(i + 1) * s]).wrapping_add(q.fc2.bias_at(i));
        *g = (out16(acc, i, &q.fc2) as i32 + GATE_THREE).clamp(0, GATE_ONE);
    }
}

/// The gate multiplication of [`squeeze_excite16`] on `x: [pixels][c]` (`gate`: `c` values).
#[inline(always)]
fn se16_apply_body(x: &mut [i16], c: usize, q: &Se16<'_>, gate: &[i32]) {
    let oc = q.clamp.clamp(0, MAX16) as i64;
    for px in x.chunks_exact_mut(c) {
        for (v, &g) in px.iter_mut().zip(gate.iter()) {
            let p = (*v as i64) * g as i64 * q.mult as i64;
            *v = requant64(p, q.shift).clamp(-oc, oc) as i16;
        }
    }
}

/// `Σ a[k]·w[k]`, wrapping (exact for a validated blob: within the accumulator budget).
#[inline]
fn dot(a: &[i32], w: &[i8]) -> i32 {
    a.iter().zip(w).fold(0i32, |acc, (&x, &v)| {
        acc.wrapping_add(x.wrapping_mul(v as i32))
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// Against the float definition on the quantized values: the gate within one step of
    /// `1/49152`, the output within 1 (rounding) + the gate's step.
    #[test]
    fn matches_float_squeeze_excitation() {
        for &(px, c, s) in &[(1usize, 1usize, 1usize), (9, 5, 3), (16, 24, 8), (7, 33, 9)] {
            let x: Vec<i16> = (0..px * c)
                .map(|i| ((i * 7919 % 20011) as i32 - 10005) as i16)
                .collect();
            let w1: Vec<i8> = (0..s * c)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect();
            let w2: Vec<i8> = (0..c * s)
                .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
                .collect();
            let b1: Vec<i16> = (0..s).map(|j| (j as i16 - 2) * 100).collect();
            let b2: Vec<i16> = (0..c).map(|i| (i as i16 % 5 - 2) * 300).collect();
            let m1 = vec![200u8; s];
            let m2 = vec![150u8; c];
            let conv = |w: &'static [i8], b: &'static [i16], m: &'static [u8], sh| ConvQ {
                weight: w,
                bias: b,
                bias_shift: 4,
                mult: m,
                shift: sh,
                in_zero: 0,
                out_zero: 0,
                lut: None,
            };
            let leak =
                |v: Vec<i8>| -> &'static [i8] { std::boxed::Box::leak(v.into_boxed_slice()) };
            let leak16 =
                |v: Vec<i16>| -> &'static [i16] { std::boxed::Box::leak(v.into_boxed_slice()) };
            let leak8 =
                |v: Vec<u8>| -> &'static [u8] { std::boxed::Box::leak(v.into_boxed_slice()) };
            let q = Se16 {
                fc1: conv(leak(w1.clone()), leak16(b1.clone()), leak8(m1.clone()), 16),
                fc2: conv(leak(w2.clone()), leak16(b2.clone()), leak8(m2.clone()), 14),
                hid_clamp: 20000,
                mult: 1 << 20,
                shift: 36,
                clamp: 30000,
            };
            let mut y = x.clone();
            let mut tmp = vec![0i32; se16_tmp_len(c, s)];
            squeeze_excite16(&mut y, c, s, &q, &mut tmp).unwrap();
            // Float model of the same integer definition.
            let mean: Vec<f64> = (0..c)
                .map(|ch| (0..px).map(|p| x[p * c + ch] as f64).sum::<f64>() / px as f64)
                .collect();
            let mean: Vec<f64> = mean.iter().map(|m| m.round()).collect();
            let hid: Vec<f64> = (0..s)
                .map(|j| {
                    let acc: f64 = (0..c).map(|i| mean[i] * w1[j * c + i] as f64).sum::<f64>()
                        + b1[j] as f64 * 16.0;
                    (acc * m1[j] as f64 / 65536.0).round().clamp(0.0, 20000.0)
                })
                .collect();
            for i in 0..c {
                let acc: f64 = (0..s).map(|j| hid[j] * w2[i * s + j] as f64).sum::<f64>()
                    + b2[i] as f64 * 16.0;
                let v = (acc * m2[i] as f64 / 16384.0)
                    .round()
                    .clamp(-32767.0, 32767.0);
                let g = (v + 24576.0).clamp(0.0, 49152.0);
                assert_eq!(tmp[c + s + i] as f64, g, "gate {i}");
                for p in 0..px {
                    let want = (x[p * c + i] as f64 * g * (1u64 << 20) as f64
                        / (1u64 << 36) as f64)
                        .clamp(-30000.0, 30000.0);
                    let got = y[p * c + i] as f64;
                    assert!((got - want).abs() <= 0.5 + 1e-9, "{got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        let w = [1i8; 6];
        let b = [0i16; 3];
        let m = [1u8; 3];
        let conv = |n: usize| ConvQ {
            weight: &w,
            bias: &b[..n],
            bias_shift: 0,
            mult: &m[..n],
            shift: 10,
            in_zero: 0,
            out_zero: 0,
            lut: None,
        };
        let q = Se16 {
            fc1: conv(2),
            fc2: conv(3),
            hid_clamp: 100,
            mult: 1,
            shift: 10,
            clamp: 100,
        };
        let mut x = [5i16; 6];
        let mut tmp = [0i32; 8];
        assert!(squeeze_excite16(&mut x, 3, 2, &q, &mut tmp).is_ok());
        assert!(squeeze_excite16(&mut x, 3, 2, &q, &mut tmp[..7]).is_err());
        assert!(squeeze_excite16(&mut x, 4, 2, &q, &mut tmp).is_err());
        assert!(squeeze_excite16(&mut x, 3, 3, &q, &mut tmp).is_err());
        assert!(squeeze_excite16(&mut x[..0], 3, 2, &q, &mut tmp).is_err());
    }
}
