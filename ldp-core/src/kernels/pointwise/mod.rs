//! Pointwise (1×1) convolution / linear layer over channels-last pixels.
//!
//! `y[p][o] = act(bias[o] + Σ_i x[p][i] · w[o][i])`, with `x: [pixels][c_in]`,
//! `w: [c_out][c_in]` (PyTorch's `[O, I, 1, 1]` or `[O, I]`, row-major) and `y: [pixels][c_out]`.
//!
//! [`pointwise`] picks the fastest kernel for the target; [`reference::pointwise`] is the plain
//! loop every fast kernel is tested against:
//!
//! * x86-64 with AVX2 + FMA + F16C (detected at run time with the `std` feature, else enabled at
//!   compile time): [`x86`], a packed GEMM with a 6 × 16 register tile;
//! * x86-64 with AVX-512 (F, BW, VL, DQ; detected at run time with the `std` feature): `x86::avx512`,
//!   the same GEMM with a 12 × 32 tile of zmm registers and the same summation order, so its
//!   results equal the AVX2 kernel's bit for bit ([`crate::kernels::cpu::set_x86_level`] picks
//!   the AVX2 path on such a machine);
//! * AArch64 with NEON: `neon`, the same GEMM with an 8 × 8 tile of `vfmaq_f32`;
//! * anything else: [`portable`], portable code that autovectorizes.
//!
//! The choice never depends on the pixel count, so splitting the pixels into chunks (as the
//! streaming executor does) gives the same bits.

pub mod int8;

#[cfg(any(ldp_arm_dsp, test))]
pub(crate) mod arm_dsp;
#[cfg(ldp_arm_mve)]
pub(crate) mod mve;

#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod portable;
pub mod reference;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use crate::elem::Elem;
use crate::error::{check_dims, check_len, Error};
use crate::kernels::activation::Activation;

/// Validates the shapes of a pointwise call and returns the number of pixels.
pub(crate) fn check_shapes<X, W, Y>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    y: &[Y],
) -> Result<usize, Error> {
    if c_in == 0 || c_out == 0 {
        return Err(Error::InvalidConfig("pointwise: zero channels"));
    }
    if x.len() % c_in != 0 {
        return Err(Error::BufferLen {
            what: "pointwise input",
            expected: (x.len() / c_in) * c_in,
            found: x.len(),
        });
    }
    let pixels = x.len() / c_in;
    check_dims("pointwise weight", w, &[c_in, c_out])?;
    if let Some(b) = bias {
        check_len("pointwise bias", b, c_out)?;
    }
    check_dims("pointwise output", y, &[pixels, c_out])?;
    Ok(pixels)
}

/// Pointwise convolution with an optional fused activation, using the best kernel available
/// (with the `std` feature, on up to `kernels::threads::threads()` threads; same bits).
pub fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    let pixels = check_shapes(x, c_in, w, bias, c_out, y)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(pixels, c_in.saturating_mul(c_out));
        if n > 1 {
            return crate::kernels::threads::split_rows(x, c_in, y, c_out, n, |xb, yb| {
                pointwise_one(xb, c_in, w, bias, c_out, act, yb)
            });
        }
    }
    let _ = pixels;
    pointwise_one(x, c_in, w, bias, c_out, act, y)
}

/// [`pointwise`] on the calling thread; shapes validated (the portable kernel checks again).
fn pointwise_one<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    #[cfg(target_arch = "x86_64")]
    if x86::avx512::pointwise(x, c_in, w, bias, c_out, act, y) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if x86::pointwise(x, c_in, w, bias, c_out, act, y) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if neon::pointwise(x, c_in, w, bias, c_out, act, y) {
        return Ok(());
    }
    portable::pointwise(x, c_in, w, bias, c_out, act, y)
}
