//! f32 ↔ int8 conversion: dispatch ([`quantize`], [`dequantize`]) and references.

use crate::error::{check_len, Error};
use crate::quant::fixed::sat_i8;

/// Quantizes f32 values to int8: `q = sat_i8((roundf(x / scale[ch]) as i32).saturating_add(zero[ch]))`
/// (`as i32` saturates and maps NaN to 0: defined on every target), with `ch = i % c` when
/// `scale` has `c > 1` entries (per channel, channels-last), else `ch = 0`. The AVX2 kernel on
/// x86-64, else [`quantize_reference`].
pub fn quantize(
    x: &[f32],
    c: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    check_quantize(x, c, scale, zero, xq)?;
    // With the `std` feature, bands of pixels on the host's threads (each value alone: same
    // bits; the bands start on pixel boundaries, so per-channel parameters stay aligned).
    #[cfg(feature = "std")]
    {
        let row = c.max(1);
        let n = crate::kernels::threads::bands(
            x.len() / row,
            row.saturating_mul(crate::kernels::threads::ELEM_COST),
        );
        if n > 1 {
            return crate::kernels::threads::split_rows(x, row, xq, row, n, |xb, qb| {
                quantize_one(xb, c, scale, zero, qb)
            });
        }
    }
    quantize_one(x, c, scale, zero, xq)
}

/// [`quantize`] on one band of whole pixels.
fn quantize_one(
    x: &[f32],
    c: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::quantize::x86::quantize(x, c, scale, zero, xq) {
        return Ok(());
    }
    quantize_reference(x, c, scale, zero, xq)
}

pub(crate) fn check_quantize(
    x: &[f32],
    c: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &[i8],
) -> Result<(), Error> {
    check_len("quantized input", xq, x.len())?;
    if scale.is_empty() || zero.len() != scale.len() {
        return Err(Error::Unsupported(
            "int8 blob has malformed input quantization",
        ));
    }
    if scale.len() == c && c > 1 && x.len() % c != 0 {
        return Err(Error::InvalidConfig("int8 quantize: ragged input"));
    }
    Ok(())
}

/// Reference of [`quantize`].
pub fn quantize_reference(
    x: &[f32],
    c: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    check_quantize(x, c, scale, zero, xq)?;
    let per_ch = scale.len() == c && c > 1;
    for (i, (v, q)) in x.iter().zip(xq.iter_mut()).enumerate() {
        let ch = if per_ch { i % c } else { 0 };
        let r = libm::roundf(*v / scale[ch]);
        // `as i32` saturates and maps NaN to 0: defined on every target.
        *q = sat_i8((r as i32).saturating_add(zero[ch] as i32));
    }
    Ok(())
}

/// Quantizes a channels-first `x: [c][hw]` (an `ldp` input as PyTorch holds it) into the
/// channels-last `xq: [hw][c]`: per channel when `scale` has `c > 1` entries, else per tensor
/// (`scale[0]`, `zero[0]`), each value as [`quantize`]. Non-finite values are refused
/// (`Error::NonFiniteInput` with the index of the first one in `x`'s order) rather than mapped
/// to 0 or saturated. The AVX2 kernel on x86-64 (quantization and a 16 × 16 byte transpose in
/// one pass over `x`), else [`quantize_nchw_reference`]; `tmp` (`c·hw` bytes) is the
/// reference's staging buffer.
#[allow(clippy::too_many_arguments)]
pub fn quantize_nchw(
    x: &[f32],
    c: usize,
    hw: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
    tmp: &mut [i8],
) -> Result<(), Error> {
    check_quantize_nchw(x, c, hw, scale, zero, xq, tmp)?;
    #[cfg(target_arch = "x86_64")]
    if let Some(finite) =
        crate::kernels::quantize::x86::quantize_nchw(x, c, hw, scale, zero, xq, tmp)
    {
        return match finite {
            true => Ok(()),
            false => Err(non_finite(x)),
        };
    }
    quantize_nchw_reference(x, c, hw, scale, zero, xq, tmp)
}

/// The error for a slice with a non-finite value: its first one's index (the AVX2 paths learn
/// only that there was one).
#[cfg(target_arch = "x86_64")]
pub(crate) fn non_finite(x: &[f32]) -> Error {
    Error::NonFiniteInput {
        index: crate::tensor::first_non_finite(x).unwrap_or(0),
    }
}

/// The shape checks of [`quantize_nchw`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_quantize_nchw(
    x: &[f32],
    c: usize,
    hw: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &[i8],
    tmp: &[i8],
) -> Result<(), Error> {
    let n = c
        .checked_mul(hw)
        .ok_or(Error::InvalidConfig("int8 quantize: c·hw overflows"))?;
    if c == 0 || hw == 0 {
        return Err(Error::InvalidConfig("int8 quantize: empty input"));
    }
    check_len("input", x, n)?;
    check_len("quantize scratch", tmp, n)?;
    check_quantize(x, 1, scale, zero, xq)?;
    if scale.len() != 1 && scale.len() != c {
        return Err(Error::Unsupported(
            "int8 blob has malformed input quantization",
        ));
    }
    Ok(())
}

/// Reference of [`quantize_nchw`]: the finiteness check, [`quantize_reference`] channel by
/// channel into `tmp`, then `tensor::nchw_to_nhwc`.
#[allow(clippy::too_many_arguments)]
pub fn quantize_nchw_reference(
    x: &[f32],
    c: usize,
    hw: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
    tmp: &mut [i8],
) -> Result<(), Error> {
    check_quantize_nchw(x, c, hw, scale, zero, xq, tmp)?;
    if let Some(index) = crate::tensor::first_non_finite(x) {
        return Err(Error::NonFiniteInput { index });
    }
    let per_ch = scale.len() == c && c > 1;
    for (ch, (xc, tc)) in x.chunks_exact(hw).zip(tmp.chunks_exact_mut(hw)).enumerate() {
        let k = if per_ch { ch } else { 0 };
        quantize(xc, 1, &scale[k..k + 1], &zero[k..k + 1], tc)?;
    }
    crate::tensor::nchw_to_nhwc(tmp, xq, c, hw, 1)
}

/// [`quantize_nchw`] of channels `ch0..ch0 + g` only, `g = x.len() / hw`: `x` holds those
/// channels (`[g][hw]`, a piece of a channels-first input read channel group by channel group)
/// and they are written to their places in the whole channels-last `xq: [hw][c]` (the other
/// channels untouched); `scale`/`zero` are the whole input's (1 or `c` entries). Each value as
/// [`quantize_nchw`], so quantizing every group gives its bits; a non-finite value is refused
/// with its index in the whole input's order (`ch0·hw` + its index in `x`). The AVX2 kernel on
/// x86-64, else [`quantize_nchw_part_reference`].
#[allow(clippy::too_many_arguments)]
pub fn quantize_nchw_part(
    x: &[f32],
    c: usize,
    hw: usize,
    ch0: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    check_quantize_nchw_part(x, c, hw, ch0, scale, zero, xq)?;
    #[cfg(target_arch = "x86_64")]
    if let Some(finite) =
        crate::kernels::quantize::x86::quantize_nchw_part(x, c, hw, ch0, scale, zero, xq)
    {
        return match finite {
            true => Ok(()),
            false => Err(Error::NonFiniteInput {
                index: ch0 * hw + crate::tensor::first_non_finite(x).unwrap_or(0),
            }),
        };
    }
    quantize_nchw_part_reference(x, c, hw, ch0, scale, zero, xq)
}

/// The checks of [`quantize_nchw_part`]: `x` whole channels (`g ≥ 1` of them) inside `c`,
/// `xq` the whole `c·hw`, `scale` and `zero` 1 or `c` entries.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_quantize_nchw_part(
    x: &[f32],
    c: usize,
    hw: usize,
    ch0: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &[i8],
) -> Result<(), Error> {
    let n = c
        .checked_mul(hw)
        .ok_or(Error::InvalidConfig("int8 quantize: c·hw overflows"))?;
    if c == 0 || hw == 0 || x.is_empty() || x.len() % hw != 0 {
        return Err(Error::InvalidConfig(
            "int8 quantize: a channel group must be whole channels of hw values",
        ));
    }
    if ch0.checked_add(x.len() / hw).is_none_or(|end| end > c) {
        return Err(Error::InvalidConfig(
            "int8 quantize: the channel group runs past the input's channels",
        ));
    }
    check_len("quantized input", xq, n)?;
    if scale.is_empty() || zero.len() != scale.len() || (scale.len() != 1 && scale.len() != c) {
        return Err(Error::Unsupported(
            "int8 blob has malformed input quantization",
        ));
    }
    Ok(())
}

/// Reference of [`quantize_nchw_part`]: the finiteness check, then each value as
/// [`quantize_reference`] into its channels-last place.
#[allow(clippy::too_many_arguments)]
pub fn quantize_nchw_part_reference(
    x: &[f32],
    c: usize,
    hw: usize,
    ch0: usize,
    scale: &[f32],
    zero: &[i8],
    xq: &mut [i8],
) -> Result<(), Error> {
    check_quantize_nchw_part(x, c, hw, ch0, scale, zero, xq)?;
    if let Some(j) = crate::tensor::first_non_finite(x) {
        return Err(Error::NonFiniteInput {
            index: ch0 * hw + j,
        });
    }
    let per_ch = scale.len() == c && c > 1;
    for (r, xc) in x.chunks_exact(hw).enumerate() {
        let ch = ch0 + r;
        let k = if per_ch { ch } else { 0 };
        for (p, &v) in xc.iter().enumerate() {
            let q = libm::roundf(v / scale[k]);
            // `as i32` saturates and maps NaN to 0: defined on every target.
            xq[p * c + ch] = sat_i8((q as i32).saturating_add(zero[k] as i32));
        }
    }
    Ok(())
}

/// Dequantizes int8 values: `y = (q − z) as f32 · s` (the AVX2 kernel on x86-64: the same
/// exact conversion and one IEEE multiply per value).
pub fn dequantize(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> Result<(), Error> {
    check_len("output", y, yq.len())?;
    // With the `std` feature, bands of values on the host's threads (same bits).
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(y.len(), crate::kernels::threads::ELEM_COST);
        if n > 1 {
            return crate::kernels::threads::split_rows(yq, 1, y, 1, n, |qb, yb| {
                dequantize_one(qb, z, s, yb)
            });
        }
    }
    dequantize_one(yq, z, s, y)
}

/// [`dequantize`] on one band.
fn dequantize_one(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> Result<(), Error> {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::quantize::x86::dequantize(yq, z, s, y) {
        return Ok(());
    }
    dequantize_reference(yq, z, s, y)
}

/// Reference of [`dequantize`].
pub fn dequantize_reference(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> Result<(), Error> {
    check_len("output", y, yq.len())?;
    for (o, &q) in y.iter_mut().zip(yq) {
        *o = (q as i32).wrapping_sub(z) as f32 * s;
    }
    Ok(())
}
