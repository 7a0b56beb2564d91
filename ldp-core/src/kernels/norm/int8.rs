//! The int8 LayerNorm's frame: dispatch ([`layer_norm_inplace`], [`layer_norm_i16`]) and the
//! references (`layer_norm_reference`, `layer_norm_i16_reference`) the `arm_dsp`, `x86` and
//! `neon` back ends must equal bit for bit.

use crate::error::{check_len, Error};
use crate::quant::fixed::{isqrt_u64, requant64, sat_i8};
use crate::quant::kernels::*;

pub(crate) fn check_norm<T>(buf: &[T], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    check_len("int8 norm gamma", q.gamma, c)?;
    check_len("int8 norm beta", q.beta, c)?;
    if let Some(t) = q.lut {
        check_len("int8 lut", t, 256)?;
    }
    if c == 0 || buf.len() % c != 0 {
        return Err(Error::InvalidConfig("int8 layer norm: ragged input"));
    }
    Ok(())
}

/// Checks of [`layer_norm_i16`]: the parameters, `x` whole pixels, `y` as long as `x`.
pub(crate) fn check_norm16(x: &[i16], c: usize, q: &NormQ<'_>, y: &[i8]) -> Result<(), Error> {
    check_norm(x, c, q)?;
    check_len("int8 norm output", y, x.len())
}

/// Integer LayerNorm of every pixel of `buf` (`[pixels][c]`), in place: the Arm DSP or AVX2
/// kernel where the target has one, else [`layer_norm_reference`].
pub fn layer_norm_inplace(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    check_norm(buf, c, q)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::norm_bands(buf.len() / c, c);
        if n > 1 {
            return crate::kernels::threads::split_inplace(buf, c, n, |b| {
                layer_norm_inplace_one(b, c, q)
            });
        }
    }
    layer_norm_inplace_one(buf, c, q)
}

/// [`layer_norm_inplace`] on the calling thread; parameters checked.
fn layer_norm_inplace_one(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::norm::arm_dsp::layer_norm_inplace(buf, c, q) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::norm::x86::layer_norm(buf, c, q) {
        return Ok(());
    }
    layer_norm_reference(buf, c, q)
}

/// Per-pixel statistics of the integer LayerNorm: `(S1, inv, k)` of [`NormQ`]'s definition.
#[inline(always)]
pub(crate) fn ln_stats(cc: i64, e: u64, s1: i64, s2: i64) -> (i64, i64, i32) {
    let d = (cc * s2 - s1 * s1).max(0) as u64;
    let v = d.saturating_add(e).max(1);
    let bits = 64 - v.leading_zeros() as i32;
    let k = ((62 - bits) / 2).max(0);
    let r = isqrt_u64(v << (2 * k)).max(1);
    (s1, ((1u64 << 62) / r) as i64, k)
}

/// [`ln_stats`] with its exact square root and division found faster (for the Helium kernel,
/// whose per-pixel cost they dominate at 128 channels): both seeded in `f32` (hardware `VSQRT`,
/// `VDIV`, conversions), refined by one Newton step and then corrected exactly by integer
/// comparisons, so the results are `isqrt_u64` and the `u64` quotient themselves. Taken for
/// `W = (D + E)·4ᵏ < 2⁶²`, i.e. `W` in `[2⁶⁰, 2⁶²)` and `R` in `[2³⁰, 2³¹)`; a larger `W` (a huge
/// `eps`) takes [`ln_stats`].
#[cfg(any(ldp_arm_mve, test))]
#[inline(always)]
pub(crate) fn ln_stats_fast(cc: i64, e: u64, s1: i64, s2: i64) -> (i64, i64, i32) {
    let d = (cc * s2 - s1 * s1).max(0) as u64;
    let v = d.saturating_add(e).max(1);
    let bits = 64 - v.leading_zeros() as i32;
    let k = ((62 - bits) / 2).max(0);
    let w = v << (2 * k);
    if w >= 1 << 62 {
        return ln_stats(cc, e, s1, s2);
    }
    // R = ⌊√W⌋: seed from the high word (W ≥ 2⁶⁰, so it has 29–30 bits; the seed is within
    // about 2⁹ of √W), one Newton step in f32 (within 2), then exact steps.
    let r0 = (sqrt_f32((w >> 32) as u32 as f32) * 65536.0) as u32 as i64;
    let err = w as i64 - r0 * r0;
    let mut r = r0 + ((err >> 11) as i32 as f32 * 1024.0 / r0 as u32 as f32) as i32 as i64;
    while r * r > w as i64 {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= w as i64 {
        r += 1;
    }
    // inv = ⌊2⁶²/R⌋ in (2³¹, 2³²]: seed ⌊2⁶¹/R⌋·2 in f32 (within about 2¹⁰), one correction in
    // f32, then exact steps (every product below 2⁶³).
    let rf = r as u32 as f32;
    let q0 = ((2305843009213693952.0f32 / rf) as u32 as i64) * 2;
    let rem = (1i64 << 62) - q0 * r;
    let mut q = q0 + ((rem >> 12) as i32 as f32 * 4096.0 / rf) as i32 as i64;
    while q * r > 1 << 62 {
        q -= 1;
    }
    while (q + 1) * r <= 1 << 62 {
        q += 1;
    }
    (s1, q, k)
}

/// `√x` in `f32` (correctly rounded): `VSQRT.F32` on the Cortex-M55, `libm` in host tests.
#[cfg(ldp_arm_mve)]
#[inline(always)]
fn sqrt_f32(x: f32) -> f32 {
    let r: u32;
    // SAFETY: a register-only FPU instruction (the hard-float target has the FPU); s0 declared.
    unsafe {
        core::arch::asm!(
            "vmov s0, {x}",
            "vsqrt.f32 s0, s0",
            "vmov {r}, s0",
            x = in(reg) x.to_bits(),
            r = lateout(reg) r,
            out("s0") _,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    f32::from_bits(r)
}
#[cfg(all(test, not(ldp_arm_mve)))]
fn sqrt_f32(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// One normalized, scaled and shifted output of the integer LayerNorm.
#[inline(always)]
pub(crate) fn ln_out(num: i64, inv: i64, k: i32, i: usize, q: &NormQ<'_>) -> i8 {
    let xh = requant64(num.wrapping_mul(inv), 46 - k);
    let acc = xh
        .wrapping_mul(q.gamma[i] as i64)
        .wrapping_add((q.beta[i] as i64) << 16);
    let out = sat_i8(q.out_zero.wrapping_add(requant64(acc, q.shift) as i32));
    match q.lut {
        Some(t) => t[(out as i32 + 128) as usize],
        None => out,
    }
}

/// `E = C²·eps_q8 / 256` of [`NormQ`].
pub(crate) fn ln_eps(c: usize, q: &NormQ<'_>) -> u64 {
    let cc = c as u64;
    (cc * cc).saturating_mul(q.eps_q8.max(0) as u64) >> 8
}

/// Reference integer LayerNorm (the definition in [`NormQ`]), in place.
pub fn layer_norm_reference(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    check_norm(buf, c, q)?;
    let (cc, e) = (c as i64, ln_eps(c, q));
    for px in buf.chunks_exact_mut(c) {
        let (mut s1, mut s2) = (0i64, 0i64);
        for &v in px.iter() {
            s1 += v as i64;
            s2 += (v as i64) * (v as i64);
        }
        let (s1, inv, k) = ln_stats(cc, e, s1, s2);
        for (i, x) in px.iter_mut().enumerate() {
            *x = ln_out(cc * (*x as i64) - s1, inv, k, i, q);
        }
    }
    Ok(())
}

/// Integer LayerNorm of 16-bit inputs `x: [pixels][c]` (a conv's [`ConvOut`] `i16` output) into
/// int8 `y`: the definition in [`NormQ`] with `q` read as `i16` (`S2 < C·2³⁰`, so every
/// intermediate still fits its `i64`/`u64`), `eps_q8` relative to the 16-bit scale. A fused
/// table (GELU, Hardswish) is applied to the unrounded output by linear interpolation
/// (`ln_out_lerp`), so the LayerNorm's own int8 rounding disappears too. Runs the Helium (on a
/// Cortex-M55 build with MVE), Arm DSP, NEON or AVX2 kernel where the target has one, else
/// [`layer_norm_i16_reference`].
pub fn layer_norm_i16(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> Result<(), Error> {
    check_norm16(x, c, q, y)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::norm_bands(x.len() / c, c);
        if n > 1 {
            return crate::kernels::threads::split_rows(x, c, y, c, n, |xb, yb| {
                layer_norm_i16_one(xb, c, q, yb)
            });
        }
    }
    layer_norm_i16_one(x, c, q, y)
}

/// [`layer_norm_i16`] on the calling thread; parameters checked.
fn layer_norm_i16_one(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> Result<(), Error> {
    #[cfg(ldp_arm_mve)]
    if crate::kernels::norm::mve::layer_norm_i16(x, c, q, y) {
        return Ok(());
    }
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::norm::arm_dsp::layer_norm_i16(x, c, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::norm::neon::layer_norm_i16(x, c, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::norm::x86::layer_norm_i16(x, c, q, y) {
        return Ok(());
    }
    layer_norm_i16_reference(x, c, q, y)
}

/// The Helium (MVE) back end of [`layer_norm_i16`] alone, for self-tests: `Ok(true)` when it
/// took the call (the result is then in `y`, equal to [`layer_norm_i16_reference`]'s),
/// `Ok(false)` when this build has no Helium kernels, they are turned off
/// (`kernels::cpu::set_mve`) or it does not take these parameters (`y` unchanged); the checks of
/// [`layer_norm_i16`].
pub fn layer_norm_i16_mve(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> Result<bool, Error> {
    check_norm16(x, c, q, y)?;
    #[cfg(ldp_arm_mve)]
    let taken = crate::kernels::norm::mve::layer_norm_i16(x, c, q, y);
    #[cfg(not(ldp_arm_mve))]
    let taken = {
        let _ = (x, q, y);
        false
    };
    Ok(taken)
}

/// Reference of [`layer_norm_i16`] (portable scalar code, the definition; the same checks).
pub fn layer_norm_i16_reference(
    x: &[i16],
    c: usize,
    q: &NormQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    check_norm16(x, c, q, y)?;
    let (cc, e) = (c as i64, ln_eps(c, q));
    for (px, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let (mut s1, mut s2) = (0i64, 0i64);
        for &v in px {
            s1 += v as i64;
            s2 += (v as i64) * (v as i64);
        }
        let (s1, inv, k) = ln_stats(cc, e, s1, s2);
        match q.lut {
            None => {
                for (i, (o, &v)) in out.iter_mut().zip(px).enumerate() {
                    *o = ln_out(cc * v as i64 - s1, inv, k, i, q);
                }
            }
            Some(t) => {
                for (i, (o, &v)) in out.iter_mut().zip(px).enumerate() {
                    *o = ln_out_lerp(cc * v as i64 - s1, inv, k, i, q, t);
                }
            }
        }
    }
    Ok(())
}

/// [`ln_out`] followed by a table, without rounding in between: the normalized value with 8
/// fractional bits of the table's input step, `u = z_out·256 + round(acc / 2^(T−8))`, clamped
/// to the table's range, and the output interpolated linearly between the two entries around it:
/// `t[⌊u/256⌋] + ⌊((t[⌊u/256⌋+1] − t[⌊u/256⌋])·(u mod 256) + 128) / 256⌋`. The table is the
/// same 256-entry table (its entries are the function at the int8 grid points); only the
/// rounding of LayerNorm's output to that grid is gone.
#[inline(always)]
pub(crate) fn ln_out_lerp(num: i64, inv: i64, k: i32, i: usize, q: &NormQ<'_>, t: &[i8]) -> i8 {
    let xh = requant64(num.wrapping_mul(inv), 46 - k);
    let acc = xh
        .wrapping_mul(q.gamma[i] as i64)
        .wrapping_add((q.beta[i] as i64) << 16);
    let v8 = if q.shift > 8 {
        requant64(acc, q.shift - 8)
    } else {
        acc.wrapping_shl((8 - q.shift.max(0)) as u32)
    };
    let u = ((q.out_zero as i64) << 8)
        .wrapping_add(v8)
        .clamp(-128 << 8, 127 << 8);
    let j = ((u >> 8) + 128) as usize;
    let f = (u & 255) as i32;
    let lo = t[j] as i32;
    let hi = t[(j + 1).min(255)] as i32;
    (lo + (((hi - lo) * f + 128) >> 8)) as i8
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    /// A lane-by-lane model of the Helium `layer_norm_i16` (`kernels/norm/mve.rs`): the same
    /// staging, per-pixel constants and instruction semantics (`VMLAS`, `VMULH`, `VRSHL`,
    /// `VQSHL`, the gathers, `VRMULH`) in plain Rust, so the exactness argument is checked on
    /// many more cases than the firmware self-test runs (which checks the `asm!` itself).
    /// `None` where the kernel returns `false`.
    fn mve_model(x: &[i16], c: usize, q: &NormQ<'_>) -> Option<Vec<i8>> {
        let vmulh = |a: i32, b: i32| ((a as i64 * b as i64) >> 32) as i32;
        let vrmulh = |a: i32, b: i32| ((a as i64 * b as i64 + (1 << 31)) >> 32) as i32;
        let vrshl = |a: i32, neg: i32| {
            let n = -neg;
            assert!((1..=31).contains(&n));
            ((a as i64 + (1i64 << (n - 1))) >> n) as i32
        };
        let vqshl =
            |a: i32, k: u32| ((a as i64) << k).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        if c > 256 || q.out_zero.unsigned_abs() > 1 << 16 {
            return None;
        }
        let lerp = q.lut.is_some();
        let t_out = if lerp { q.shift - 8 } else { q.shift };
        if !(17..=47).contains(&t_out) {
            return None;
        }
        let n = t_out - 16;
        let z = q.out_zero as i64 * if lerp { 256 } else { 1 };
        let mut g = [0i32; 256];
        let mut bb = [0i32; 256];
        for i in 0..c {
            let b = q.beta[i] as i64 + (z << n);
            if b.abs() + (1 << 19) + (1 << (n - 1)) >= 1 << 31 {
                return None;
            }
            bb[i] = b as i32;
            g[i] = (q.gamma[i] as i32) << 16;
        }
        let (mut ta, mut td) = ([0i32; 256], [0i32; 256]);
        if let Some(t) = q.lut {
            for jj in 0..256usize {
                let j = jj as i32 - 128;
                let lo = t[jj] as i32;
                let d = t[(jj + 1).min(255)] as i32 - lo;
                ta[(j & 255) as usize] = lo - j * d;
                td[(j & 255) as usize] = d << 8;
            }
        }
        let (cc, e) = (c as i64, ln_eps(c, q));
        let mut y = vec![0i8; x.len()];
        for (px, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            let s1: i64 = px.iter().map(|&v| v as i64).sum();
            let s2: i64 = px.iter().map(|&v| v as i64 * v as i64).sum();
            let (s1, inv, k) = ln_stats_fast(cc, e, s1, s2);
            let s = 46 - k;
            let a = (33 - s).max(0);
            let (c_a, s1_a) = (
                (c as i32) << a,
                (s1 as i32).wrapping_neg().wrapping_shl(a as u32),
            );
            let inv_m = (inv - (1i64 << 32)) as i32;
            let sh = -(s - 32).max(1);
            let n4 = if inv > 1i64 << 31 { c / 4 } else { 0 };
            for i in 0..4 * n4 {
                let m = (px[i] as i32).wrapping_mul(c_a).wrapping_add(s1_a);
                let xh = vrshl(vmulh(m, inv_m).wrapping_add(m), sh);
                let h = vrshl(vmulh(xh, g[i]).wrapping_add(bb[i]), -n);
                out[i] = if lerp {
                    let sq = vqshl(h, 16);
                    let idx = (sq as u32 >> 24) as usize;
                    (ta[idx].wrapping_add(vrmulh(sq, td[idx]))) as i8
                } else {
                    (vqshl(h, 24) >> 24) as i8
                };
            }
            for i in 4 * n4..c {
                let num = cc * px[i] as i64 - s1;
                out[i] = match q.lut {
                    Some(t) => ln_out_lerp(num, inv, k, i, q, t),
                    None => ln_out(num, inv, k, i, q),
                };
            }
        }
        Some(y)
    }

    /// [`mve_model`] equals [`layer_norm_i16_reference`] wherever it is taken.
    #[test]
    fn mve_layer_norm_i16_model_is_exact() {
        let mut s = 0x51_7cc1_b727_220au64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut taken = 0;
        for case in 0..20_000usize {
            let c = match case % 5 {
                0 => 128,
                1 => 1 + (next() % 256) as usize,
                _ => 1 + (next() % 40) as usize,
            };
            let pixels = 1 + (next() % 4) as usize;
            let spread = (next() % 16) as u32;
            let mut x: Vec<i16> = (0..c * pixels).map(|_| (next() as i16) >> spread).collect();
            match case % 6 {
                0 => x[..c].fill(next() as i16),
                1 => x[..c]
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, v)| *v = if i % 2 == 0 { i16::MAX } else { i16::MIN }),
                2 => {
                    x[..c].fill(if next() % 2 == 0 { 1 } else { -1 });
                    x[(next() % c as u64) as usize] =
                        if next() % 2 == 0 { i16::MIN } else { i16::MAX };
                }
                _ => {}
            }
            let ext = case % 7 == 0;
            let gamma: Vec<i16> = (0..c)
                .map(|_| {
                    if ext {
                        [i16::MIN, i16::MAX][(next() % 2) as usize]
                    } else {
                        next() as i16
                    }
                })
                .collect();
            let beta: Vec<i16> = (0..c)
                .map(|_| {
                    if ext {
                        [i16::MIN, i16::MAX][(next() % 2) as usize]
                    } else {
                        next() as i16
                    }
                })
                .collect();
            let lut: Vec<i8> = (0..256).map(|_| next() as i8).collect();
            let lerp = case % 2 == 0;
            let q = NormQ {
                gamma: &gamma,
                beta: &beta,
                shift: 14 + (next() % 37) as i32 + if lerp { 8 } else { 0 },
                eps_q8: match case % 4 {
                    0 => 0,
                    1 => (next() % (1 << 20)) as i32,
                    2 => (next() % 300) as i32,
                    _ => next() as i32,
                },
                out_zero: match case % 9 {
                    0 => (next() % (1 << 17)) as i32 - (1 << 16),
                    1 => next() as i32,
                    _ => (next() % 256) as i32 - 128,
                },
                lut: lerp.then_some(&lut[..]),
            };
            let Some(got) = mve_model(&x, c, &q) else {
                continue;
            };
            taken += 1;
            let mut want = vec![0i8; x.len()];
            layer_norm_i16_reference(&x, c, &q, &mut want).unwrap();
            assert_eq!(
                got, want,
                "case {case}: c {c}, shift {}, z {}, lerp {lerp}",
                q.shift, q.out_zero
            );
        }
        assert!(taken > 8000, "{taken}");
    }

    /// [`ln_stats_fast`] equals [`ln_stats`] on every exponent range of `D + E`, at and around
    /// perfect squares and the quotient's boundaries.
    #[test]
    fn ln_stats_fast_is_exact() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for case in 0..200_000u64 {
            let cc = 1 + (next() % 256) as i64;
            let e = match case % 4 {
                0 => 0,
                1 => next() >> (next() % 64),
                _ => next() % 1000,
            };
            // s2 - s1²/C spans 0 .. 2³⁰·C²; perfect squares of D + E included via e.
            let s1 = (next() as i64 % (cc << 15)).abs() * if next() % 2 == 0 { 1 } else { -1 };
            let spread = next() % 46;
            let s2 = (s1 * s1) / cc + ((next() >> 18) >> spread) as i64;
            let mut e = e;
            if case % 7 == 0 {
                // D + E a perfect square (± 1).
                let d = (cc * s2 - s1 * s1).max(0) as u64;
                let t = 1 + next() % (1 << (next() % 31));
                e = (t * t)
                    .saturating_sub(d)
                    .wrapping_add(next() % 3)
                    .wrapping_sub(1)
                    % (1 << 62);
            }
            assert_eq!(
                ln_stats_fast(cc, e, s1, s2),
                ln_stats(cc, e, s1, s2),
                "c {cc}, e {e}, s1 {s1}, s2 {s2}"
            );
        }
    }
}
