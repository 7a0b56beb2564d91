//! LayerNorm over the channels of each pixel (channels-last), biased variance, affine.
//!
//! `y = (x - mean) / sqrt(var + eps) · gamma + beta`, `eps = 1e-5`, as `nn.LayerNorm(C)`
//! applied to channels-last data (and timm's `LayerNormAct2d(act_layer=None)`).

pub mod a16;
pub mod int8;

#[cfg(any(ldp_arm_dsp, test))]
pub(crate) mod arm_dsp;
#[cfg(ldp_arm_mve)]
pub(crate) mod mve;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use crate::elem::Elem;
use crate::error::{check_len, Error};

/// PyTorch's default LayerNorm epsilon.
pub const LN_EPS: f32 = 1e-5;

const LANES: usize = 8;

/// Sum of a slice in 8 independent lanes (vectorizes; also more accurate than a serial sum).
#[inline]
fn lane_sum<A: Elem>(x: &[A], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for ch in &mut chunks {
        for l in 0..LANES {
            acc[l] += f(ch[l].to_f32());
        }
    }
    let mut s = 0.0f32;
    for v in chunks.remainder() {
        s += f(v.to_f32());
    }
    let mut pair = [0.0f32; 4];
    for l in 0..4 {
        pair[l] = acc[l] + acc[l + 4];
    }
    s + (pair[0] + pair[2]) + (pair[1] + pair[3])
}

/// Normalizes one pixel `x` (length C) into `y`.
#[inline]
pub fn layer_norm_pixel<X: Elem, Y: Elem>(x: &[X], gamma: &[f32], beta: &[f32], y: &mut [Y]) {
    let c = x.len();
    let inv_c = 1.0 / c as f32;
    let mean = lane_sum(x, |v| v) * inv_c;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) * inv_c;
    let rstd = 1.0 / libm::sqrtf(var + LN_EPS);
    for i in 0..c.min(y.len()).min(gamma.len()).min(beta.len()) {
        y[i] = Y::from_f32((x[i].to_f32() - mean) * rstd * gamma[i] + beta[i]);
    }
}

/// The checks of the float LayerNorms: `gamma`/`beta` hold `c`, `c > 0` divides `len`.
fn check_ln(len: usize, c: usize, gamma: &[f32], beta: &[f32]) -> Result<(), Error> {
    check_len("norm.weight", gamma, c)?;
    check_len("norm.bias", beta, c)?;
    if c == 0 || len % c != 0 {
        return Err(Error::BufferLen {
            what: "layer_norm input",
            expected: c,
            found: len,
        });
    }
    Ok(())
}

/// LayerNorm of every pixel of `buf` (`[pixels][c]`), in place. On x86-64 with AVX2 the same
/// code is compiled for 8-lane vectors (the same per-lane sums and no FMA: the same bits as
/// the baseline build). With the `std` feature, large maps run in bands of pixels on up to
/// `kernels::threads::threads()` threads (same bits).
pub fn layer_norm_inplace<A: Elem>(
    buf: &mut [A],
    c: usize,
    gamma: &[f32],
    beta: &[f32],
) -> Result<(), Error> {
    layer_norm_act_inplace(buf, c, gamma, beta, None)
}

/// [`layer_norm_inplace`] on one band of pixels (lengths checked by the caller).
fn layer_norm_one<A: Elem>(buf: &mut [A], c: usize, gamma: &[f32], beta: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::cpu::x86_avx2_fma() {
        // SAFETY: AVX2 and FMA are present (checked just above); lengths checked by the caller.
        unsafe { ln_rows_avx2(buf, c, gamma, beta) };
        return;
    }
    ln_rows(buf, c, gamma, beta);
}

/// LayerNorm of every pixel of `buf`, then `act` (if any), in place: the same values as
/// [`layer_norm_inplace`] followed by [`apply_inplace`](crate::kernels::activation::apply_inplace).
/// On x86-64 with AVX2 and FMA an f32 GELU runs on each pixel right after its normalization,
/// while the pixel is still in L1 (GELU is elementwise and position-independent: the same bits
/// as the two passes).
pub fn layer_norm_act_inplace<A: Elem>(
    buf: &mut [A],
    c: usize,
    gamma: &[f32],
    beta: &[f32],
    act: Option<crate::kernels::activation::Activation>,
) -> Result<(), Error> {
    check_ln(buf.len(), c, gamma, beta)?;
    // With the `std` feature, bands of pixels on the host's threads (each pixel normalized
    // alone: same bits).
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::norm_bands(buf.len() / c, c);
        if n > 1 {
            return crate::kernels::threads::split_inplace(buf, c, n, |b| {
                layer_norm_act_one(b, c, gamma, beta, act);
                Ok(())
            });
        }
    }
    layer_norm_act_one(buf, c, gamma, beta, act);
    Ok(())
}

/// [`layer_norm_act_inplace`] on one band of pixels (lengths checked by the caller).
fn layer_norm_act_one<A: Elem>(
    buf: &mut [A],
    c: usize,
    gamma: &[f32],
    beta: &[f32],
    act: Option<crate::kernels::activation::Activation>,
) {
    use crate::kernels::activation::apply_inplace;
    #[cfg(target_arch = "x86_64")]
    if act == Some(crate::kernels::activation::Activation::Gelu)
        && crate::kernels::cpu::x86_avx2_fma()
    {
        if let Some(b) = crate::kernels::cpu::as_f32_mut(buf) {
            // SAFETY: AVX2 and FMA are present (checked just above); lengths checked by the
            // caller.
            unsafe { ln_gelu_rows_avx2(b, c, gamma, beta) };
            return;
        }
    }
    layer_norm_one(buf, c, gamma, beta);
    if let Some(a) = act {
        apply_inplace(a, buf);
    }
}

/// [`ln_rows`] then the vector GELU (`gelu_slice_x86`), pixel by pixel.
///
/// # Safety
/// AVX2 and FMA available; `c > 0` divides `buf.len()`, `gamma`/`beta` hold `c`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ln_gelu_rows_avx2(buf: &mut [f32], c: usize, gamma: &[f32], beta: &[f32]) {
    for px in buf.chunks_exact_mut(c) {
        ln_rows(px, c, gamma, beta);
        crate::kernels::activation::x86::gelu_slice_x86(px);
    }
}

/// [`ln_rows`] compiled with AVX2 enabled.
///
/// # Safety
/// AVX2 and FMA available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn ln_rows_avx2<A: Elem>(buf: &mut [A], c: usize, gamma: &[f32], beta: &[f32]) {
    ln_rows(buf, c, gamma, beta)
}

/// The pixels of `buf` (lengths checked by the caller: `c > 0` divides `buf.len()`,
/// `gamma`/`beta` hold `c`).
#[inline(always)]
fn ln_rows<A: Elem>(buf: &mut [A], c: usize, gamma: &[f32], beta: &[f32]) {
    let (gamma, beta) = (&gamma[..c], &beta[..c]);
    for px in buf.chunks_exact_mut(c) {
        let inv_c = 1.0 / c as f32;
        let mean = lane_sum(px, |v| v) * inv_c;
        let var = lane_sum(px, |v| (v - mean) * (v - mean)) * inv_c;
        let rstd = 1.0 / libm::sqrtf(var + LN_EPS);
        for ((v, &g), &b) in px.iter_mut().zip(gamma).zip(beta) {
            *v = A::from_f32((v.to_f32() - mean) * rstd * g + b);
        }
    }
}

/// Plain reference: LayerNorm of every pixel, accumulating in f64.
pub fn layer_norm_reference(x: &[f32], c: usize, gamma: &[f32], beta: &[f32], y: &mut [f32]) {
    for (px, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let mean = px.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = px
            .iter()
            .map(|&v| (v as f64 - mean) * (v as f64 - mean))
            .sum::<f64>()
            / c as f64;
        let rstd = 1.0 / libm::sqrt(var + LN_EPS as f64);
        for i in 0..c {
            out[i] = ((px[i] as f64 - mean) * rstd * gamma[i] as f64 + beta[i] as f64) as f32;
        }
    }
}
