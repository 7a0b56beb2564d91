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
    for j in 0..s {
        let mut acc = wts.fc1_b[j];
        for i in 0..c {
            acc += wts.fc1_w[j * c + i].to_f32() * sums[i];
        }
        hid[j] = relu(acc);
    }
    for i in 0..c {
        let mut acc = wts.fc2_b[i];
        for j in 0..s {
            acc += wts.fc2_w[i * s + j].to_f32() * hid[j];
        }
        gate[i] = hardsigmoid(acc);
    }
    Ok(())
}
