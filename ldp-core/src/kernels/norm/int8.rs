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
fn ln_stats(cc: i64, e: u64, s1: i64, s2: i64) -> (i64, i64, i32) {
    let d = (cc * s2 - s1 * s1).max(0) as u64;
    let v = d.saturating_add(e).max(1);
    let bits = 64 - v.leading_zeros() as i32;
    let k = ((62 - bits) / 2).max(0);
    let r = isqrt_u64(v << (2 * k)).max(1);
    (s1, ((1u64 << 62) / r) as i64, k)
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
fn ln_eps(c: usize, q: &NormQ<'_>) -> u64 {
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
/// (`ln_out_lerp`), so the LayerNorm's own int8 rounding disappears too. Runs the Arm DSP, NEON or
/// AVX2 kernel where the target has one, else [`layer_norm_i16_reference`].
pub fn layer_norm_i16(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> Result<(), Error> {
    check_norm16(x, c, q, y)?;
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
