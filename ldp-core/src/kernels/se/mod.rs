//! Squeeze-excitation (torchvision's `SqueezeExcitation` with `scale_activation=Hardsigmoid`).
//!
//! `s = hardsigmoid(fc2(relu(fc1(mean_{h,w}(x)))))`, `x[p][c] *= s[c]`.

pub mod a16;
pub mod int8;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

use crate::elem::Elem;
use crate::error::{check_dims, check_len, Error};
use crate::kernels::activation::{hardsigmoid, relu};

/// The weights of a squeeze-excitation block.
#[derive(Debug, Clone, Copy)]
pub struct SeWeights<'a, W> {
    /// `fc1.weight`, `[s][c]`.
    pub fc1_w: &'a [W],
    /// `fc1.bias`, `[s]`.
    pub fc1_b: &'a [f32],
    /// `fc2.weight`, `[c][s]`.
    pub fc2_w: &'a [W],
    /// `fc2.bias`, `[c]`.
    pub fc2_b: &'a [f32],
}

/// Scratch elements (f32) that [`squeeze_excite`] needs for `c` channels and squeeze width `s`.
pub const fn scratch_len(c: usize, s: usize) -> usize {
    2 * c + s
}

/// The means (or sums), hidden values and gate of [`split_tmp`].
pub(crate) type Parts<'a, T> = (&'a mut [T], &'a mut [T], &'a mut [T]);

/// Splits the temporary storage of a squeeze-excitation (float, int8 or 16-bit) into the `c`
/// channel means (or sums), the `s` hidden values and the `c` gate values; `2c + s` computed
/// without overflow, a shorter `tmp` is [`Error::ScratchTooSmall`].
pub(crate) fn split_tmp<T>(tmp: &mut [T], c: usize, s: usize) -> Result<Parts<'_, T>, Error> {
    let need = c
        .checked_mul(2)
        .and_then(|v| v.checked_add(s))
        .ok_or(Error::InvalidConfig("dimensions overflow usize"))?;
    if tmp.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: tmp.len(),
        });
    }
    let (mean, rest) = tmp.split_at_mut(c);
    let (hid, rest) = rest.split_at_mut(s);
    Ok((mean, hid, &mut rest[..c]))
}

/// Applies squeeze-excitation to `x: [pixels][c]` in place; `tmp` holds [`scratch_len`] f32s.
pub fn squeeze_excite<A: Elem, W: Elem>(
    x: &mut [A],
    c: usize,
    s: usize,
    wts: &SeWeights<'_, W>,
    tmp: &mut [f32],
) -> Result<(), Error> {
    if c == 0 || s == 0 || x.is_empty() || x.len() % c != 0 {
        return Err(Error::InvalidConfig(
            "squeeze-excitation: empty or ragged input",
        ));
    }
    check_dims("se.fc1.weight", wts.fc1_w, &[s, c])?;
    check_len("se.fc1.bias", wts.fc1_b, s)?;
    check_dims("se.fc2.weight", wts.fc2_w, &[c, s])?;
    check_len("se.fc2.bias", wts.fc2_b, c)?;
    let (mean, hid, gate) = split_tmp(tmp, c, s)?;
    let pixels = x.len() / c;
    mean.iter_mut().for_each(|m| *m = 0.0);
    for px in x.chunks_exact(c) {
        for (m, v) in mean.iter_mut().zip(px) {
            *m += v.to_f32();
        }
    }
    gate_from_sums(wts, mean, pixels, hid, gate)?;
    for px in x.chunks_exact_mut(c) {
        for (v, g) in px.iter_mut().zip(gate.iter()) {
            *v = A::from_f32(v.to_f32() * g);
        }
    }
    Ok(())
}

/// The gate from the channel sums of the input (`sums`, clobbered: they become the means) over
/// `pixels` pixels: `hardsigmoid(fc2(relu(fc1(sums / pixels))))` into `gate` (`c` values), `hid`
/// holding the `s` hidden values. [`squeeze_excite`] from its sums on, shared with the row
/// executor (which sums rows as they come) so that both compute the same bits.
pub(crate) fn gate_from_sums<W: Elem>(
    wts: &SeWeights<'_, W>,
    sums: &mut [f32],
    pixels: usize,
    hid: &mut [f32],
    gate: &mut [f32],
) -> Result<(), Error> {
    let (c, s) = (sums.len(), hid.len());
    check_dims("se.fc1.weight", wts.fc1_w, &[s, c])?;
    check_len("se.fc1.bias", wts.fc1_b, s)?;
    check_dims("se.fc2.weight", wts.fc2_w, &[c, s])?;
    check_len("se.fc2.bias", wts.fc2_b, c)?;
    check_len("se gate", gate, c)?;
    if pixels == 0 {
        return Err(Error::InvalidConfig("squeeze-excitation: no pixels"));
    }
    let inv = 1.0 / pixels as f32;
    sums.iter_mut().for_each(|m| *m *= inv);
    fc(wts.fc1_w, wts.fc1_b, sums, hid, relu);
    fc(wts.fc2_w, wts.fc2_b, hid, gate, hardsigmoid);
    Ok(())
}

/// `out[j] = act(b[j] + Σ_i w[j·k + i]·x[i])` with `k = x.len()`, each sum serial in `i`
/// (a separate multiply and add per term, the order of the plain loop). Eight outputs run
/// interleaved, so their chains overlap instead of waiting on one add after another; with the
/// `std` feature the outputs split into bands on the host's threads. Neither changes a bit.
/// Lengths: `w = out.len()·k`, `b = out.len()` (checked by the caller).
fn fc<W: Elem>(w: &[W], b: &[f32], x: &[f32], out: &mut [f32], act: fn(f32) -> f32) {
    let k = x.len();
    let rows = |j0: usize, band: &mut [f32]| {
        for (jc, o) in band.chunks_mut(8).enumerate() {
            let j = j0 + jc * 8;
            // In range: the caller checked `w = out.len()·k` and `b = out.len()`.
            let (wr, br) = (&w[j * k..(j + o.len()) * k], &b[j..j + o.len()]);
            if let Ok(o) = <&mut [f32; 8]>::try_from(&mut *o) {
                let mut acc: [f32; 8] = core::array::from_fn(|l| br[l]);
                let wr8: [&[W]; 8] = core::array::from_fn(|l| &wr[l * k..(l + 1) * k]);
                for (i, &xi) in x.iter().enumerate() {
                    for (a, row) in acc.iter_mut().zip(&wr8) {
                        *a += row[i].to_f32() * xi;
                    }
                }
                for (v, a) in o.iter_mut().zip(acc) {
                    *v = act(a);
                }
            } else {
                for ((v, &bl), row) in o.iter_mut().zip(br).zip(wr.chunks_exact(k.max(1))) {
                    let mut acc = bl;
                    for (e, &xi) in row.iter().zip(x) {
                        acc += e.to_f32() * xi;
                    }
                    *v = act(acc);
                }
            }
        }
    };
    // About 8 GEMM multiply-accumulates' time per term.
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::row_bands(out.len(), k.saturating_mul(8));
        if n > 1 {
            let _ = crate::kernels::threads::split_inplace_at(
                out,
                8,
                n.min(out.len() / 8),
                |j0, ob| {
                    rows(j0 * 8, ob);
                    Ok::<(), Error>(())
                },
            );
            return;
        }
    }
    rows(0, out);
}
