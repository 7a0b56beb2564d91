//! int8 squeeze-excitation: the portable code (the reference) and the dispatch to the x86-64
//! AVX-512 back end (`se/x86.rs`) for the channel sums and the gate multiplication.

use crate::error::{check_len, size_of_dims, Error};
use crate::quant::fixed::{div_round, requant, sat_i8};
use crate::quant::kernels::*;

/// `i32`s of temporary storage that [`squeeze_excite`] needs (saturating: an impossible size is
/// `usize::MAX`, which no buffer meets).
pub const fn se_tmp_len(c: usize, s: usize) -> usize {
    c.saturating_mul(2).saturating_add(s)
}

/// The SE gate from per-channel sums of `x − z_in` over `pixels` pixels: the sums become the
/// int8 means (in place, AVERAGE_POOL_2D rounding), then `fc1` + ReLU into `hid` (`s` values),
/// `fc2` and the 8-bit Hardsigmoid table into `gate` (`c` values, `0..=255`). Shared by the whole-tensor and
/// the streaming executors so that both compute the same bits.
pub fn se_gate_from_sums(
    q: &SeQ<'_>,
    sums: &mut [i32],
    pixels: usize,
    hid: &mut [i32],
    gate: &mut [i32],
) -> Result<(), Error> {
    let (c, s) = (sums.len(), hid.len());
    if c == 0 || s == 0 || pixels == 0 {
        return Err(Error::InvalidConfig("int8 squeeze-excitation: bad shape"));
    }
    check_conv(&q.fc1, size_of_dims(&[s, c])?, s)?;
    check_conv(&q.fc2, size_of_dims(&[c, s])?, c)?;
    check_len("int8 gate lut", q.gate, 256)?;
    check_len("int8 se gate", gate, c)?;
    for v in sums.iter_mut() {
        *v = q
            .in_zero
            .wrapping_add(div_round(*v as i64, pixels as i64) as i32)
            .clamp(-128, 127);
    }
    let fc1_floor = q.fc1.out_zero.clamp(-128, 127);
    fc(&q.fc1, sums, hid, |v| (v as i32).max(fc1_floor))?;
    fc(&q.fc2, hid, gate, |v| {
        q.gate[(v as i32 + 128) as usize] as i32
    })
}

/// One FC of the gate: `out[o] = finish(sat_i8(z + requant(bias[o] + Σ x·w[o], m[o])))` with
/// rows of `x.len()` weights (the conv validated by the caller for `out.len()` outputs). With
/// the `std` feature the outputs run in bands on the host's threads (each computed alone: same
/// bits); a dot product of i32 by i8 counts 8 GEMM multiply-accumulates per term.
fn fc(
    conv: &ConvQ<'_>,
    x: &[i32],
    out: &mut [i32],
    finish: impl Fn(i8) -> i32 + Sync,
) -> Result<(), Error> {
    let k = x.len();
    let rows = |o0: usize, band: &mut [i32]| {
        for (oo, v) in band.iter_mut().enumerate() {
            let o = o0 + oo;
            let acc = conv
                .bias_at(o)
                .wrapping_add(dot(x, &conv.weight[o * k..(o + 1) * k]));
            *v = finish(sat_i8(conv.out_zero.wrapping_add(requant(
                acc,
                conv.mult_at(o),
                conv.shift,
            ))));
        }
        Ok::<(), Error>(())
    };
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::row_bands(out.len(), k.saturating_mul(8));
        if n > 1 {
            return crate::kernels::threads::split_inplace_at(out, 1, n, rows);
        }
    }
    rows(0, out)
}

/// `Σ a[k]·w[k]`, wrapping (the AVX-512 kernel where there is one: the same bits).
#[inline]
fn dot(a: &[i32], w: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(v) = super::x86::dot(a, w) {
        return v;
    }
    a.iter().zip(w).fold(0i32, |acc, (&x, &v)| {
        acc.wrapping_add(x.wrapping_mul(v as i32))
    })
}

/// Multiplies `x: [pixels][c]` by the gate: `y = sat(z_out + round((x − z_in)·gate[c]·m / 2^shift))`.
/// Runs the x86-64 AVX-512 kernel where there is one (the same bits as
/// [`se_apply_reference`]).
pub fn se_apply(q: &SeQ<'_>, gate: &[i32], x: &mut [i8]) {
    // With the `std` feature, bands of pixels on the host's threads (same bits).
    #[cfg(feature = "std")]
    {
        let c = gate.len().max(1);
        let n = crate::kernels::threads::bands(x.len() / c, c * crate::kernels::threads::ELEM_COST);
        if n > 1 {
            let _ = crate::kernels::threads::split_inplace(x, c, n, |b| {
                se_apply_one(q, gate, b);
                Ok::<(), Error>(())
            });
            return;
        }
    }
    se_apply_one(q, gate, x)
}

/// [`se_apply`] on one band of pixels.
fn se_apply_one(q: &SeQ<'_>, gate: &[i32], x: &mut [i8]) {
    #[cfg(target_arch = "x86_64")]
    if super::x86::apply(q, gate, x) {
        return;
    }
    se_apply_reference(q, gate, x)
}

/// The portable [`se_apply`], the reference of its fast paths.
pub fn se_apply_reference(q: &SeQ<'_>, gate: &[i32], x: &mut [i8]) {
    let c = gate.len().max(1);
    for px in x.chunks_exact_mut(c) {
        for (v, g) in px.iter_mut().zip(gate.iter()) {
            let acc = (*v as i32).wrapping_sub(q.in_zero).wrapping_mul(*g);
            *v = sat_i8(q.out_zero.wrapping_add(requant(acc, q.mult, q.shift)));
        }
    }
}

/// int8 squeeze-excitation of `x: [pixels][c]`, in place. `tmp` holds [`se_tmp_len`] `i32`s.
pub fn squeeze_excite(
    x: &mut [i8],
    c: usize,
    s: usize,
    q: &SeQ<'_>,
    tmp: &mut [i32],
) -> Result<(), Error> {
    if c == 0 || s == 0 || x.is_empty() || x.len() % c != 0 {
        return Err(Error::InvalidConfig("int8 squeeze-excitation: bad shape"));
    }
    let (sums, hid, gate) = super::split_tmp(tmp, c, s)?;
    // Per-channel sums of x − z (wrapping, like the streaming accumulator).
    sums.iter_mut().for_each(|v| *v = 0);
    #[cfg(target_arch = "x86_64")]
    let done = super::x86::sums(x, c, q.in_zero, sums);
    #[cfg(not(target_arch = "x86_64"))]
    let done = false;
    if !done {
        for px in x.chunks_exact(c) {
            for (acc, &v) in sums.iter_mut().zip(px) {
                *acc = acc.wrapping_add((v as i32).wrapping_sub(q.in_zero));
            }
        }
    }
    se_gate_from_sums(q, sums, x.len() / c, hid, gate)?;
    se_apply(q, gate, x);
    Ok(())
}
