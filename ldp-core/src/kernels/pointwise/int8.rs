//! The int8 pointwise convolution's frame: the one dispatch point ([`pointwise`]: threads, then
//! the back end the target has — `mve`, `arm_dsp`, `x86::{vnni, int8}`, `neon::{sdot, int8}` —
//! then `portable::int8`), the reference ([`pointwise_reference`]) every back end must equal bit
//! for bit, and the fused pointwise → 16-bit → LayerNorm ([`pointwise_layer_norm`]).

use crate::error::{check_dims, size_of_dims, Error};
use crate::quant::kernels::*;

/// Reference int8 pointwise conv: `x: [pixels][c_in]` → `y: [pixels][c_out]` (`i8`, or `i16`
/// for a conv that feeds a LayerNorm, see [`ConvOut`]).
pub fn pointwise_reference<Y: ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    pointwise_sums(x, c_in, q, c_out, pixels, |p, o, acc| {
        y[p * c_out + o] = finish(acc, o, q)
    });
    Ok(())
}

/// The reference pointwise loop over `i8` or `i16` activations: `emit(p, o, acc)` with
/// `acc = bias_at(o) + Σ_i x[p][i]·w[o][i]` (wrapping). Shapes validated by the caller.
pub(crate) fn pointwise_sums<X: Copy + Into<i32>>(
    x: &[X],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    pixels: usize,
    mut emit: impl FnMut(usize, usize, i32),
) {
    for p in 0..pixels {
        for o in 0..c_out {
            let mut acc = q.bias_at(o);
            for i in 0..c_in {
                let xv: i32 = x[p * c_in + i].into();
                acc = acc.wrapping_add(xv * q.weight[o * c_in + i] as i32);
            }
            emit(p, o, acc);
        }
    }
}

/// Shape checks of a pointwise conv over `i8` or `i16` activations; returns the pixel count.
pub(crate) fn check_pw<X, Y: ConvOut>(
    x: &[X],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &[Y],
) -> Result<usize, Error> {
    if c_in == 0 || c_out == 0 || x.len() % c_in != 0 {
        return Err(Error::InvalidConfig("int8 pointwise: bad shape"));
    }
    check_conv(q, size_of_dims(&[c_in, c_out])?, c_out)?;
    if core::mem::size_of::<Y>() != 1 && q.lut.is_some() {
        return Err(Error::InvalidConfig(
            "int8 pointwise: a 16-bit output takes no table",
        ));
    }
    let pixels = x.len() / c_in;
    check_dims("int8 pointwise output", y, &[pixels, c_out])?;
    Ok(pixels)
}

/// Tiled int8 pointwise conv (4 outputs × 2 pixels per register tile, i32 accumulators); on
/// Cortex-M with the DSP extension the SMLAD kernel of `kernels::pointwise::arm_dsp`, on x86-64 with
/// AVX-512 VNNI the kernel of `x86::vnni` (shapes it takes), with AVX2 the kernels of
/// `kernels::pointwise::x86::int8`, on AArch64 those of `kernels::pointwise::neon`. With the `std` feature, large layers are
/// split across `kernels::threads` (same bits). Bit-identical to
/// [`pointwise_reference`] for both output types.
pub fn pointwise<Y: ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    pointwise_with(x, c_in, q, c_out, y, None)
}

/// A layer's weights packed once for the kernel that runs it, where the target has such a
/// kernel and `std` (x86-64 VNNI: `x86::vnni::pack_all`); uninhabited elsewhere.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
type Prepacked = crate::kernels::pointwise::x86::vnni::Packed;
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
type Prepacked = core::convert::Infallible;

/// [`pointwise`], with the weights packed beforehand when `pre` is given (same bits).
fn pointwise_with<Y: ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pre: Option<&Prepacked>,
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(pixels, c_in.saturating_mul(c_out));
        if n > 1 {
            return crate::kernels::threads::split_rows(x, c_in, y, c_out, n, |xb, yb| {
                pointwise_one(xb, c_in, q, c_out, yb, xb.len() / c_in, pre);
                Ok(())
            });
        }
    }
    pointwise_one(x, c_in, q, c_out, y, pixels, pre);
    Ok(())
}

/// [`pointwise`] on the calling thread; shapes validated.
fn pointwise_one<Y: ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    pre: Option<&Prepacked>,
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if let Some(p) = pre {
        if Y::pointwise_packed(x, c_in, q, c_out, y, pixels, p) {
            return;
        }
    }
    let _ = pre;
    if Y::pointwise_arch(x, c_in, q, c_out, y, pixels) {
        return;
    }
    crate::kernels::pointwise::portable::int8::pointwise(x, c_in, q, c_out, y, pixels);
}

/// `y = LN(PW(x))` through a 16-bit intermediate: the conv writes `i16` ([`ConvOut`]) into
/// `mid`, `mid.len() / c_out` pixels at a time (a multiple of 32 when that is more than 32), and
/// [`layer_norm_i16`] normalizes them into `y`.
/// Needs `mid.len() ≥ c_out`; the result does not depend on the chunk size.
#[allow(clippy::too_many_arguments)]
pub fn pointwise_layer_norm(
    x: &[i8],
    c_in: usize,
    conv: &ConvQ<'_>,
    c_out: usize,
    norm: &NormQ<'_>,
    mid: &mut [i16],
    y: &mut [i8],
) -> Result<(), Error> {
    if c_in == 0 || c_out == 0 || x.len() % c_in != 0 {
        return Err(Error::InvalidConfig("int8 pointwise: bad shape"));
    }
    let pixels = x.len() / c_in;
    check_dims("int8 pointwise output", y, &[pixels, c_out])?;
    let chunk = mid.len() / c_out;
    // Whole 32-pixel tiles when there is room for more than one (the AMX kernel computes
    // pixels in panels of 32: a 72-pixel chunk would cost as much as 96).
    let chunk = if chunk > 32 { chunk / 32 * 32 } else { chunk };
    if chunk == 0 {
        return Err(Error::ScratchTooSmall {
            need: c_out.saturating_mul(2),
            have: mid.len().saturating_mul(2),
        });
    }
    // More than one chunk: the weights are packed once for all of them, not per chunk.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    let pre = if chunk < pixels {
        crate::kernels::pointwise::x86::vnni::pack_all(conv, c_in, c_out)
    } else {
        None
    };
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    let pre: Option<Prepacked> = None;
    let mut p = 0;
    while p < pixels {
        let n = chunk.min(pixels - p);
        let m = &mut mid[..n * c_out];
        pointwise_with(
            &x[p * c_in..(p + n) * c_in],
            c_in,
            conv,
            c_out,
            m,
            pre.as_ref(),
        )?;
        layer_norm_i16(m, c_out, norm, &mut y[p * c_out..(p + n) * c_out])?;
        p += n;
    }
    Ok(())
}

/// [`pointwise_layer_norm`] as the host executors run it (`std`): when `mid` holds fewer
/// pixels than the layer (and at least one), the thread's workspace holds up to
/// `HOST_MID_BYTES` of them instead, so the conv runs in one call over the layer (MobileVLM
/// V1's 576-pixel block conv otherwise ran in 9 chunks of 64 pixels, each streaming its 4 MiB
/// of weights from L3: 4–8 % of the int8-activation pass). Same bits: the result does not
/// depend on the chunk size.
#[cfg(feature = "std")]
pub(crate) fn pointwise_layer_norm_host(
    x: &[i8],
    c_in: usize,
    conv: &ConvQ<'_>,
    c_out: usize,
    norm: &NormQ<'_>,
    mid: &mut [i16],
    y: &mut [i8],
) -> Result<(), Error> {
    if c_in != 0 && c_out != 0 && mid.len() >= c_out {
        let pixels = x.len() / c_in;
        let want = pixels.min(HOST_MID_BYTES / 2 / c_out).max(1);
        if mid.len() / c_out < want {
            return crate::kernels::workspace::with_len::<i16, _>(want * c_out, |m| {
                pointwise_layer_norm(x, c_in, conv, c_out, norm, m, y)
            });
        }
    }
    pointwise_layer_norm(x, c_in, conv, c_out, norm, mid, y)
}

/// The 16-bit rows of the fused pointwise → LayerNorm that a host keeps in its workspace at
/// most (`std`): all of MobileVLM V1's 576 × 2048.
#[cfg(feature = "std")]
const HOST_MID_BYTES: usize = 4 << 20;
