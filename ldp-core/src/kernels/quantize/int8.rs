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

/// Dequantizes int8 values: `y = (q − z) as f32 · s` (the AVX2 kernel on x86-64: the same
/// exact conversion and one IEEE multiply per value).
pub fn dequantize(yq: &[i8], z: i32, s: f32, y: &mut [f32]) -> Result<(), Error> {
    check_len("output", y, yq.len())?;
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
