//! Depthwise 3×3 convolution, padding 1, stride 1 or 2, over channels-last maps, with an
//! optional fused residual addition.
//!
//! `y[oy][ox][c] = bias[c] + Σ_{ky,kx} x[oy·s+ky-1][ox·s+kx-1][c] · w[c][ky·3+kx] (+ r[oy][ox][c])`,
//! taps outside the map count as zero. `x: [h][w][c]`, `w: [c][9]` (PyTorch's `[C, 1, 3, 3]`),
//! `y` and `r`: `[ho][wo][c]` with `ho = (h-1)/s + 1` (= `ceil(h/2)` for stride 2).
//!
//! [`depthwise3x3`] picks the kernel: [`x86`] (AVX2, run-time detected with `std`), `neon`
//! (AArch64), else the portable [`portable`]. Every one of them computes each output in the
//! reference's order with separate multiplies and adds, so all agree with
//! [`reference::depthwise3x3`] bit for bit.

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

/// Output size of a 3×3, padding-1 convolution along one axis.
#[inline]
pub const fn out_dim(n: usize, stride: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n - 1) / stride + 1
    }
}

/// Geometry of one depthwise call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DwShape {
    /// Input rows.
    pub h: usize,
    /// Input columns.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Stride (1 or 2).
    pub stride: usize,
}

impl DwShape {
    /// Output rows.
    pub const fn ho(&self) -> usize {
        out_dim(self.h, self.stride)
    }
    /// Output columns.
    pub const fn wo(&self) -> usize {
        out_dim(self.w, self.stride)
    }
}

/// The taps `k0..k1` (of `0..3`) of output index `o` that fall inside an axis of `n` inputs
/// (3×3 kernel, padding 1): the first is skipped at `o·stride = 0`, the last past the end.
#[inline(always)]
pub(crate) fn tap_range(o: usize, stride: usize, n: usize) -> (usize, usize) {
    (usize::from(o * stride == 0), (n + 1 - o * stride).min(3))
}

pub(crate) fn check<X, W, Y, R>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &[Y],
) -> Result<(), Error> {
    if s.stride != 1 && s.stride != 2 {
        return Err(Error::InvalidConfig("depthwise: stride must be 1 or 2"));
    }
    if s.c == 0 || s.h == 0 || s.w == 0 {
        return Err(Error::InvalidConfig("depthwise: empty shape"));
    }
    check_dims("depthwise input", x, &[s.h, s.w, s.c])?;
    check_dims("depthwise weight", weight, &[s.c, 9])?;
    if let Some(b) = bias {
        check_len("depthwise bias", b, s.c)?;
    }
    let out = crate::error::size_of_dims(&[s.ho(), s.wo(), s.c])?;
    if let Some(r) = residual {
        check_len("depthwise residual", r, out)?;
    }
    check_len("depthwise output", y, out)
}

/// Depthwise 3×3 convolution with the best kernel available. With the `std` feature on x86-64,
/// maps large enough run in bands of output rows on up to `kernels::threads::threads()`
/// threads (same bits: each output is computed alone, in the reference's order).
pub fn depthwise3x3<X: Elem, W: Elem, Y: Elem, R: Elem>(
    s: DwShape,
    x: &[X],
    weight: &[W],
    bias: Option<&[f32]>,
    residual: Option<&[R]>,
    y: &mut [Y],
) -> Result<(), Error> {
    check(s, x, weight, bias, residual, y)?;
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if crate::kernels::cpu::x86_avx2_fma() {
        let row = s.wo() * s.c;
        let band = |oy0: usize, oy1: usize, yb: &mut [Y]| match residual {
            Some(r) => r.get(oy0 * row..oy1 * row).is_some_and(|rb| {
                x86::depthwise3x3_rows(s, x, weight, bias, Some(rb), yb, oy0, oy1)
            }),
            None => x86::depthwise3x3_rows(s, x, weight, bias, None::<&[R]>, yb, oy0, oy1),
        };
        if let Some(r) = crate::kernels::threads::depthwise_bands(s, y, band) {
            return r;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if x86::depthwise3x3(s, x, weight, bias, residual, y) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if neon::depthwise3x3(s, x, weight, bias, residual, y) {
        return Ok(());
    }
    portable::depthwise3x3(s, x, weight, bias, residual, y)
}
