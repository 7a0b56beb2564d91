//! Pointwise (1×1) convolution / linear layer over channels-last pixels.
//!
//! `y[p][o] = act(bias[o] + Σ_i x[p][i] · w[o][i])`, with `x: [pixels][c_in]`,
//! `w: [c_out][c_in]` (PyTorch's `[O, I, 1, 1]` or `[O, I]`, row-major) and `y: [pixels][c_out]`.
//!
//! [`pointwise`] picks the fastest kernel for the target; [`reference::pointwise`] is the plain
//! loop every fast kernel is tested against.

pub mod reference;
pub mod tiled;

use crate::elem::Elem;
use crate::error::{check_len, Error};
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
    check_len("pointwise weight", w, c_in * c_out)?;
    if let Some(b) = bias {
        check_len("pointwise bias", b, c_out)?;
    }
    check_len("pointwise output", y, pixels * c_out)?;
    Ok(pixels)
}

/// Pointwise convolution with an optional fused activation, using the best kernel available.
pub fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    check_shapes(x, c_in, w, bias, c_out, y)?;
    tiled::pointwise(x, c_in, w, bias, c_out, act, y);
    Ok(())
}
