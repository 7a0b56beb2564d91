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
    let sums = &*sums;
    // Outputs `j0..` of fc1 + ReLU into `band`.
    let fc1 = |j0: usize, band: &mut [i32]| {
        for (jj, h) in band.iter_mut().enumerate() {
            let j = j0 + jj;
            let acc = q
                .fc1
                .bias_at(j)
                .wrapping_add(dot(sums, &q.fc1.weight[j * c..(j + 1) * c]));
            let v = sat_i8(q.fc1.out_zero.wrapping_add(requant(
                acc,
                q.fc1.mult_at(j),
                q.fc1.shift,
            )));
            *h = (v as i32).max(q.fc1.out_zero.clamp(-128, 127));
        }
        Ok::<(), Error>(())
    };
    per_output(hid, c, fc1)?;
    let hid = &*hid;
    // Outputs `i0..` of fc2 + the gate table into `band`.
    let fc2 = |i0: usize, band: &mut [i32]| {
        for (ii, g) in band.iter_mut().enumerate() {
            let i = i0 + ii;
            let acc = q
                .fc2
                .bias_at(i)
                .wrapping_add(dot(hid, &q.fc2.weight[i * s..(i + 1) * s]));
            let v = sat_i8(q.fc2.out_zero.wrapping_add(requant(
                acc,
                q.fc2.mult_at(i),
                q.fc2.shift,
            )));
            *g = q.gate[(v as i32 + 128) as usize] as i32;
        }
        Ok::<(), Error>(())
    };
    per_output(gate, s, fc2)
}

/// Runs `f(first, band)` over `out`, one value per output of `k` multiply-accumulates: with the
/// `std` feature in bands on the host's threads (each output computed alone: same bits).
fn per_output(
    out: &mut [i32],
    k: usize,
    f: impl Fn(usize, &mut [i32]) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    // A dot product of i32 by i8 runs far below the GEMM's rate: count 8 per element.
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::row_bands(out.len(), k.saturating_mul(8));
        if n > 1 {
            return crate::kernels::threads::split_inplace_at(out, 1, n, f);
        }
    }
    #[cfg(not(feature = "std"))]
    let _ = k;
    f(0, out)
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
