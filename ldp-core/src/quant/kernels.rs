//! int8 kernels. Each has a plain reference next to the fast version where the two differ;
//! both must agree bit for bit (integer sums are exact in any order).
//!
//! Conventions: activations are `i8` with a per-tensor zero point (the model input may be
//! per-channel; its zero points are folded into the first layer's bias at convert time).
//! Requantization multipliers are per output channel `u8` mantissas with one right shift per
//! layer: `y = sat(z_out + round(acc · mult[o] / 2^shift))`. Biases are `i32` accumulator values
//! stored as `i16` with one left shift per layer ([`ConvQ::bias_at`]).

use super::fixed::{div_round, isqrt_u64, requant, requant64, sat_i8};
use crate::error::{check_dims, check_len, size_of_dims, Error};

/// Parameters of an int8 convolution (pointwise or depthwise).
#[derive(Debug, Clone, Copy)]
pub struct ConvQ<'a> {
    /// Weights: pointwise `[c_out][c_in]`, depthwise `[c][9]`; symmetric per output channel.
    pub weight: &'a [i8],
    /// Bias per output channel, in units of `2^bias_shift` accumulator units (see
    /// [`ConvQ::bias_at`]); for pointwise convs the input zero points are folded in. Empty for a
    /// conv without bias (a bias of zero).
    pub bias: &'a [i16],
    /// Left shift of the stored biases (`0..=15`, [`MAX_BIAS_SHIFT`]).
    pub bias_shift: u32,
    /// Requantization mantissa per output channel.
    pub mult: &'a [u8],
    /// Right shift of the layer (`1..=62`).
    pub shift: i32,
    /// Input zero point (used by depthwise; pointwise has it folded into `bias`).
    pub in_zero: i32,
    /// Output zero point.
    pub out_zero: i32,
    /// Optional 256-entry table applied to the int8 output (fused activation).
    pub lut: Option<&'a [i8]>,
}

/// The largest [`ConvQ::bias_shift`]: an `i16` shifted by 15 still fits `i32` (`|b| ≤ 2^30`).
pub const MAX_BIAS_SHIFT: u32 = 15;

impl ConvQ<'_> {
    /// The `i32` bias of output channel `o` in accumulator units: `bias[o] · 2^bias_shift`, or 0
    /// when the conv has no bias tensor. The shift is clamped to [`MAX_BIAS_SHIFT`], so the value
    /// never overflows (a validated blob never needs the clamp).
    #[inline(always)]
    pub fn bias_at(&self, o: usize) -> i32 {
        match self.bias.get(o) {
            Some(&b) => (b as i32) << self.bias_shift.min(MAX_BIAS_SHIFT),
            None => 0,
        }
    }
    /// The biases of outputs `o..o + N` ([`ConvQ::bias_at`]), for the vector kernels.
    #[inline(always)]
    pub fn bias_n<const N: usize>(&self, o: usize) -> [i32; N] {
        let sh = self.bias_shift.min(MAX_BIAS_SHIFT);
        match self.bias.get(o..o + N) {
            Some(b) => core::array::from_fn(|j| (b[j] as i32) << sh),
            None => core::array::from_fn(|j| self.bias_at(o + j)),
        }
    }
    /// The requantization mantissa of output channel `o` as `i32`.
    #[inline(always)]
    pub fn mult_at(&self, o: usize) -> i32 {
        self.mult[o] as i32
    }
    /// The mantissas of outputs `o..o + N`, for the vector kernels.
    #[inline(always)]
    pub fn mult_n<const N: usize>(&self, o: usize) -> [i32; N] {
        let m = &self.mult[o..o + N];
        core::array::from_fn(|j| m[j] as i32)
    }
}

#[inline(always)]
pub(crate) fn finish<Y: ConvOut>(acc: i32, o: usize, q: &ConvQ<'_>) -> Y {
    Y::finish(
        q.out_zero.wrapping_add(requant(acc, q.mult_at(o), q.shift)),
        q.lut,
    )
}

mod sealed {
    use super::ConvQ;

    /// The crate-internal part of [`super::ConvOut`]: unnameable outside the crate, so neither
    /// implementable nor callable there.
    pub trait Sealed: Sized {
        /// The target's pointwise kernel for this output type; `false` (nothing written) when
        /// the target has none or does not take the shape. Each target kernel re-checks the
        /// shapes itself (O(1)) and declines when `pixels` is not `x.len() / c_in` or a length
        /// is wrong, so no argument can make it access memory out of bounds.
        fn pointwise_arch(
            x: &[i8],
            c_in: usize,
            q: &ConvQ<'_>,
            c_out: usize,
            y: &mut [Self],
            pixels: usize,
        ) -> bool;
    }
}
use sealed::Sealed;

/// The element an int8 conv writes.
///
/// * `i8`: TFLite's conv output — requantized, saturated to int8, optionally through the conv's
///   256-entry table.
/// * `i16`: the output of a conv whose only consumer is a LayerNorm — requantized to a 16-bit
///   intermediate (zero point 0, scale chosen at convert time with 2× headroom over the
///   calibrated range) and saturated to int16, no table. LayerNorm is invariant to the scale of
///   its input, so this removes one int8 rounding per LayerNorm ([`pointwise_layer_norm`]).
pub trait ConvOut: Copy + Default + bytemuck::Pod + Send + Sync + Sealed {
    /// Saturates `v` (requantized, output zero point added) and applies the table (`i8` only).
    fn finish(v: i32, lut: Option<&[i8]>) -> Self;
}

impl ConvOut for i8 {
    #[inline(always)]
    fn finish(v: i32, lut: Option<&[i8]>) -> i8 {
        let v = sat_i8(v);
        match lut {
            Some(t) => t[(v as i32 + 128) as usize],
            None => v,
        }
    }
}

impl Sealed for i8 {
    #[allow(unused_variables)]
    fn pointwise_arch(
        x: &[i8],
        c_in: usize,
        q: &ConvQ<'_>,
        c_out: usize,
        y: &mut [i8],
        pixels: usize,
    ) -> bool {
        #[cfg(ldp_arm_mve)]
        if crate::kernels::pointwise::mve::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(ldp_arm_dsp)]
        if crate::kernels::pointwise::arm_dsp::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::vnni::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::int8::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "aarch64")]
        if crate::kernels::pointwise::neon::sdot::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "aarch64")]
        if crate::kernels::pointwise::neon::int8::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        false
    }
}

impl ConvOut for i16 {
    #[inline(always)]
    fn finish(v: i32, _lut: Option<&[i8]>) -> i16 {
        v.clamp(i16::MIN as i32, i16::MAX as i32) as i16
    }
}

impl Sealed for i16 {
    #[allow(unused_variables)]
    fn pointwise_arch(
        x: &[i8],
        c_in: usize,
        q: &ConvQ<'_>,
        c_out: usize,
        y: &mut [i16],
        pixels: usize,
    ) -> bool {
        #[cfg(ldp_arm_mve)]
        if crate::kernels::pointwise::mve::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(ldp_arm_dsp)]
        if crate::kernels::pointwise::arm_dsp::pointwise_i16(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::vnni::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::int8::pointwise_i16(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "aarch64")]
        if crate::kernels::pointwise::neon::sdot::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "aarch64")]
        if crate::kernels::pointwise::neon::int8::pointwise_i16(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        false
    }
}

/// Checks of the per-channel vectors of a conv with `c_out` outputs: `c_out` biases (or none),
/// a bias shift of at most [`MAX_BIAS_SHIFT`], `c_out` multipliers.
pub(crate) fn check_bias_mult(q: &ConvQ<'_>, c_out: usize) -> Result<(), Error> {
    if !q.bias.is_empty() {
        check_len("int8 bias", q.bias, c_out)?;
    }
    if q.bias_shift > MAX_BIAS_SHIFT {
        return Err(Error::InvalidConfig("int8 bias shift above 15"));
    }
    check_len("int8 mult", q.mult, c_out)
}

fn check_conv(q: &ConvQ<'_>, wlen: usize, c_out: usize) -> Result<(), Error> {
    check_len("int8 weight", q.weight, wlen)?;
    check_bias_mult(q, c_out)?;
    if let Some(t) = q.lut {
        check_len("int8 lut", t, 256)?;
    }
    Ok(())
}

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
/// AVX-512 VNNI the kernel of [`super::vnni`] (shapes it takes), with AVX2 the kernels of
/// `kernels::pointwise::x86::int8`, on AArch64 those of `kernels::pointwise::neon`. With the `std` feature, large layers are
/// split across [`crate::kernels::threads`] (same bits). Bit-identical to
/// [`pointwise_reference`] for both output types.
pub fn pointwise<Y: ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(pixels, c_in.saturating_mul(c_out));
        if n > 1 {
            return crate::kernels::threads::split_rows(x, c_in, y, c_out, n, |xb, yb| {
                pointwise_one(xb, c_in, q, c_out, yb, xb.len() / c_in);
                Ok(())
            });
        }
    }
    pointwise_one(x, c_in, q, c_out, y, pixels);
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
) {
    if Y::pointwise_arch(x, c_in, q, c_out, y, pixels) {
        return;
    }
    crate::kernels::pointwise::portable::int8::pointwise(x, c_in, q, c_out, y, pixels);
}

/// `y = LN(PW(x))` through a 16-bit intermediate: the conv writes `i16` ([`ConvOut`]) into
/// `mid`, `mid.len() / c_out` pixels at a time, and [`layer_norm_i16`] normalizes them into `y`.
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
    if chunk == 0 {
        return Err(Error::ScratchTooSmall {
            need: c_out.saturating_mul(2),
            have: mid.len().saturating_mul(2),
        });
    }
    let mut p = 0;
    while p < pixels {
        let n = chunk.min(pixels - p);
        let m = &mut mid[..n * c_out];
        pointwise(&x[p * c_in..(p + n) * c_in], c_in, conv, c_out, m)?;
        layer_norm_i16(m, c_out, norm, &mut y[p * c_out..(p + n) * c_out])?;
        p += n;
    }
    Ok(())
}

/// Reference int8 depthwise 3×3 (padding = the input zero point, i.e. real zero).
pub fn depthwise_reference(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    check_dw(s, x, q, y)?;
    depthwise_sums(s, x, q, |i, c, acc| y[i] = finish(acc, c, q));
    Ok(())
}

/// The reference depthwise 3×3 loop over `i8` or `i16` activations: `emit(i, c, acc)` for output
/// element `i` of channel `c`, `acc = bias_at(c) + Σ_taps (x − in_zero)·w` (wrapping; taps outside
/// the map skipped). Shapes validated by the caller ([`check_dw`]).
pub(crate) fn depthwise_sums<X: Copy + Into<i32>>(
    s: crate::kernels::depthwise::DwShape,
    x: &[X],
    q: &ConvQ<'_>,
    mut emit: impl FnMut(usize, usize, i32),
) {
    let (ho, wo) = (s.ho(), s.wo());
    for oy in 0..ho {
        for ox in 0..wo {
            for c in 0..s.c {
                let mut acc = q.bias_at(c);
                for ky in 0..3 {
                    let iy = (oy * s.stride + ky) as isize - 1;
                    if iy < 0 || iy >= s.h as isize {
                        continue;
                    }
                    for kx in 0..3 {
                        let ix = (ox * s.stride + kx) as isize - 1;
                        if ix < 0 || ix >= s.w as isize {
                            continue;
                        }
                        let xv: i32 = x[(iy as usize * s.w + ix as usize) * s.c + c].into();
                        let xv = xv.wrapping_sub(q.in_zero);
                        acc =
                            acc.wrapping_add(xv.wrapping_mul(q.weight[c * 9 + ky * 3 + kx] as i32));
                    }
                }
                emit((oy * wo + ox) * s.c + c, c, acc);
            }
        }
    }
}

/// Shape checks of a depthwise 3×3 over `i8` or `i16` activations.
pub(crate) fn check_dw<X, Y>(
    s: crate::kernels::depthwise::DwShape,
    x: &[X],
    q: &ConvQ<'_>,
    y: &[Y],
) -> Result<(), Error> {
    if s.stride != 1 && s.stride != 2 {
        return Err(Error::InvalidConfig("depthwise: stride must be 1 or 2"));
    }
    if s.c == 0 || s.h == 0 || s.w == 0 {
        return Err(Error::InvalidConfig("depthwise: empty shape"));
    }
    check_dims("int8 depthwise input", x, &[s.h, s.w, s.c])?;
    check_conv(q, size_of_dims(&[s.c, 9])?, s.c)?;
    check_dims("int8 depthwise output", y, &[s.ho(), s.wo(), s.c])
}

/// Checks of [`depthwise_rows_i16`]: stride, shape, row range `oy0 < oy1 ≤ ho`, no table,
/// and the lengths (`x` the whole map, `y` the rows `oy0..oy1`).
pub(crate) fn check_dw_rows16(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &[i16],
) -> Result<(), Error> {
    if s.stride != 1 && s.stride != 2 {
        return Err(Error::InvalidConfig("depthwise: stride must be 1 or 2"));
    }
    if s.c == 0 || s.h == 0 || s.w == 0 {
        return Err(Error::InvalidConfig("depthwise: empty shape"));
    }
    if oy0 >= oy1 || oy1 > s.ho() {
        return Err(Error::InvalidConfig("depthwise rows: bad row range"));
    }
    if q.lut.is_some() {
        return Err(Error::InvalidConfig(
            "int8 depthwise: a 16-bit output takes no table",
        ));
    }
    check_dims("int8 depthwise input", x, &[s.h, s.w, s.c])?;
    check_conv(q, size_of_dims(&[s.c, 9])?, s.c)?;
    check_dims("int8 depthwise output", y, &[oy1 - oy0, s.wo(), s.c])
}

/// int8 depthwise 3×3 with a 16-bit output ([`ConvOut`], for a LayerNorm): output rows
/// `oy0..oy1` of the map `s` (global geometry and padding) into `y`, which holds just those
/// rows. The AVX2 kernel on x86-64 where it applies, else the portable row kernel
/// ([`crate::stream::kernels::depthwise_row_i8`]); bit-identical either way.
pub fn depthwise_rows_i16(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    check_dw_rows16(s, x, q, oy0, oy1, y)?;
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::depthwise::x86::int8::depthwise_rows_i16(s, x, q, oy0, oy1, y) {
        return Ok(());
    }
    depthwise_rows_i16_portable(s, x, q, oy0, oy1, y)
}

/// The portable body of [`depthwise_rows_i16`]: the row kernel on whole rows. Shapes checked
/// by the caller.
pub(crate) fn depthwise_rows_i16_portable(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    let (row, rl) = (s.w * s.c, s.wo() * s.c);
    for oy in oy0..oy1 {
        let r = |dy: usize| -> Option<&[i8]> {
            let iy = (oy * s.stride + dy).checked_sub(1)?;
            x.get(iy * row..(iy + 1) * row)
        };
        let inp = crate::stream::kernels::DwRows {
            rows: [r(0), r(1), r(2)],
            col0: 0,
        };
        let out = &mut y[(oy - oy0) * rl..(oy - oy0 + 1) * rl];
        crate::stream::kernels::depthwise_row_i8(s, &inp, q, oy, 0, out)?;
    }
    Ok(())
}

/// Tiled int8 depthwise 3×3; on Cortex-M with the DSP extension the SMLAD kernel of
/// `kernels::depthwise::arm_dsp`, on x86-64 with AVX2 the kernel of `kernels::depthwise::x86::int8`.
pub fn depthwise(
    s: crate::kernels::depthwise::DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    check_dw(s, x, q, y)?;
    #[cfg(ldp_arm_mve)]
    if crate::kernels::depthwise::mve::depthwise(s, x, q, y) {
        return Ok(());
    }
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::depthwise::arm_dsp::depthwise(s, x, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::depthwise::x86::int8::depthwise(s, x, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::depthwise::neon::int8::depthwise(s, x, q, y) {
        return Ok(());
    }
    crate::kernels::depthwise::portable::int8::depthwise(s, x, q, y);
    Ok(())
}

/// Parameters of an int8 addition `out = a + b` (TFLite's ADD, single rounding):
/// `out = sat(z_out + round(((a - z_a)·m_a + (b - z_b)·m_b) / 2^shift))`.
#[derive(Debug, Clone, Copy)]
pub struct AddQ {
    /// Zero point of `a`.
    pub a_zero: i32,
    /// Multiplier of `a` (`s_a / s_out · 2^shift`).
    pub a_mult: i32,
    /// Zero point of `b`.
    pub b_zero: i32,
    /// Multiplier of `b`.
    pub b_mult: i32,
    /// Right shift.
    pub shift: i32,
    /// Output zero point.
    pub out_zero: i32,
}

impl AddQ {
    /// Adds one pair of values.
    #[inline(always)]
    pub fn add(&self, a: i8, b: i8) -> i8 {
        sat_i8(self.sum(a as i32, b as i32))
    }

    /// The unsaturated result for any integer inputs (`i8` here, `i16` in `quant::a16`):
    /// `z_out + round(((a − z_a)·m_a + (b − z_b)·m_b) / 2^shift)`, in `i64`.
    #[inline(always)]
    pub fn sum(&self, a: i32, b: i32) -> i32 {
        let acc = (a as i64 - self.a_zero as i64)
            .wrapping_mul(self.a_mult as i64)
            .wrapping_add((b as i64 - self.b_zero as i64).wrapping_mul(self.b_mult as i64));
        self.out_zero
            .wrapping_add(requant64(acc, self.shift) as i32)
    }
}

/// `a = a + b` elementwise, in place.
pub fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::add::arm_dsp::add_inplace(a, b, q) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::add::x86::add_inplace(a, b, q) {
        return Ok(());
    }
    add_reference(a, b, q)
}

/// Reference of [`add_inplace`]: [`AddQ::add`] on every pair.
pub fn add_reference(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    for (x, &y) in a.iter_mut().zip(b) {
        *x = q.add(*x, y);
    }
    Ok(())
}

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

/// Applies a 256-entry table in place.
pub fn lut_inplace(x: &mut [i8], lut: &[i8]) -> Result<(), Error> {
    check_len("int8 lut", lut, 256)?;
    for v in x.iter_mut() {
        *v = lut[(*v as i32 + 128) as usize];
    }
    Ok(())
}

/// Whether [`taps_q10`] is exact (no `i64` overflow) for every `d < n_out`:
/// `(2·n_out + 1)·n_in·1024` fits `i64`. Every resize entry checks it once per call.
pub(crate) fn taps_q10_fit(n_in: usize, n_out: usize) -> bool {
    (n_out as u128 * 2 + 1) * n_in as u128 * 1024 <= i64::MAX as u128
}

/// Bilinear taps in Q10 fixed point: `(i0, i1, λ)` with `λ` in `0..=1024`, computed exactly in
/// integers from `src = (d + 0.5)·n_in/n_out − 0.5` (PyTorch's `align_corners=False`). The
/// resize kernels only call it with `(2·n_out + 1)·n_in·1024 < 2^63`.
#[inline]
pub fn taps_q10(d: usize, n_in: usize, n_out: usize) -> (usize, usize, i64) {
    // src·1024 = ((2d+1)·n_in·1024 − n_out·1024) / (2·n_out), rounded to nearest.
    let num = ((2 * d + 1) as i64 * n_in as i64 - n_out as i64) * 1024;
    let den = 2 * n_out as i64;
    let src = if num <= 0 { 0 } else { (num + den / 2) / den };
    let i0 = ((src >> 10) as usize).min(n_in - 1);
    let lambda = if i0 == n_in - 1 {
        0
    } else {
        src - ((i0 as i64) << 10)
    };
    let i1 = if i0 + 1 < n_in { i0 + 1 } else { i0 };
    (i0, i1, lambda)
}

pub(crate) fn check_resize<X>(
    x: &[X],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    y: &[i8],
    (ho, wo): (usize, usize),
) -> Result<(), Error> {
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig("int8 resize: empty shape"));
    }
    if !taps_q10_fit(h, ho) || !taps_q10_fit(w, wo) {
        return Err(Error::InvalidConfig("int8 resize: dimensions too large"));
    }
    check_dims("int8 resize input", x, &[h, w, c])?;
    check_dims("int8 resize output", y, &[ho, wo, c])?;
    if (in_zero.len() != 1 && in_zero.len() != c) || (mult.len() != 1 && mult.len() != c) {
        return Err(Error::InvalidConfig(
            "int8 resize: per-channel parameters of the wrong length",
        ));
    }
    Ok(())
}

/// int8 bilinear resize `x: [h][w][c]` → `y: [ho][wo][c]`, requantized per input channel:
/// `y = sat(z_out + round(Σ w_k·(x_k − z_in[c]) · mult[c] / 2^(20 + shift)))`, weights in Q20.
/// With `mult` of length 1 the same multiplier serves every channel.
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::resize::arm_dsp::resize_bilinear(
        x,
        (h, w, c),
        in_zero,
        mult,
        shift,
        out_zero,
        y,
        (ho, wo),
    ) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::resize::x86::resize_bilinear(
        x,
        (h, w, c),
        in_zero,
        mult,
        shift,
        out_zero,
        y,
        (ho, wo),
    ) {
        return Ok(());
    }
    resize_bilinear_reference(x, h, w, c, in_zero, mult, shift, out_zero, y, ho, wo)
}

/// Reference of [`resize_bilinear`].
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear_reference(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    resize_sums(x, (h, w, c), in_zero, mult, shift, out_zero, y, (ho, wo))
}

/// The reference resize loop over `i8` or `i16` inputs (checks included): per output value
/// `sat8(z_out + round(Σ w_k·(x_k − z_in[c]) · mult[c] / 2^(20 + shift)))` in `i64`
/// (`|x − z| < 2^16`, weights ≤ 2^20, `|mult| < 2^15`: below `2^53`, no overflow).
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_sums<X: Copy + Into<i64>>(
    x: &[X],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) -> Result<(), Error> {
    check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo))?;
    for oy in 0..ho {
        let (y0, y1, ly) = taps_q10(oy, h, ho);
        for ox in 0..wo {
            let (x0, x1, lx) = taps_q10(ox, w, wo);
            let w00 = (1024 - ly) * (1024 - lx);
            let w01 = (1024 - ly) * lx;
            let w10 = ly * (1024 - lx);
            let w11 = ly * lx;
            let (p00, p01, p10, p11) = (
                (y0 * w + x0) * c,
                (y0 * w + x1) * c,
                (y1 * w + x0) * c,
                (y1 * w + x1) * c,
            );
            let o = (oy * wo + ox) * c;
            for ch in 0..c {
                let z = in_zero[if in_zero.len() == 1 { 0 } else { ch }] as i64;
                let m = mult[if mult.len() == 1 { 0 } else { ch }] as i64;
                let s = w00 * (x[p00 + ch].into() - z)
                    + w01 * (x[p01 + ch].into() - z)
                    + w10 * (x[p10 + ch].into() - z)
                    + w11 * (x[p11 + ch].into() - z);
                let v = requant64(s.wrapping_mul(m), shift.saturating_add(20));
                y[o + ch] = sat_i8(out_zero.wrapping_add(v as i32));
            }
        }
    }
    Ok(())
}

/// int8 adaptive average pool (TFLite AVERAGE_POOL_2D rounding; output keeps the input's
/// quantization): `y = z + div_round(Σ (x − z), count)`.
#[allow(clippy::too_many_arguments)]
pub fn adaptive_avg_pool(
    x: &[i8],
    h: usize,
    w: usize,
    c: usize,
    zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    pool_means(x, h, w, c, zero, y, ho, wo, sat_i8)
}

/// The adaptive average pool over `i8` or `i16` activations:
/// `y = sat(z + div_round(Σ (x − z), count))`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_means<X: Copy + Into<i32>, Y>(
    x: &[X],
    h: usize,
    w: usize,
    c: usize,
    zero: i32,
    y: &mut [Y],
    ho: usize,
    wo: usize,
    sat: impl Fn(i32) -> Y,
) -> Result<(), Error> {
    use crate::kernels::pool::bin;
    if h == 0 || w == 0 || c == 0 || ho == 0 || wo == 0 {
        return Err(Error::InvalidConfig("int8 pool: empty shape"));
    }
    check_dims("int8 pool input", x, &[h, w, c])?;
    check_dims("int8 pool output", y, &[ho, wo, c])?;
    for oy in 0..ho {
        let (ys, ye) = bin(oy, h, ho);
        for ox in 0..wo {
            let (xs, xe) = bin(ox, w, wo);
            let count = ((ye - ys) * (xe - xs)) as i64;
            let o = (oy * wo + ox) * c;
            for ch in 0..c {
                let mut s = 0i64;
                for iy in ys..ye {
                    for ix in xs..xe {
                        let v: i32 = x[(iy * w + ix) * c + ch].into();
                        s = s.wrapping_add(v as i64 - zero as i64);
                    }
                }
                y[o + ch] = sat(zero.wrapping_add(div_round(s, count) as i32));
            }
        }
    }
    Ok(())
}

/// Parameters of an integer LayerNorm.
///
/// For one pixel of `C` int8 values `q` (any zero point: it cancels), with `S1 = Σq`,
/// `S2 = Σq²` and `D = C·S2 − S1² (= C²·var)`, the normalized value is
/// `x̂ = (C·q − S1) / sqrt(D + E)` where `E = C²·eps/s_in²` (stored as `eps_q8 = E/C²·256`).
/// **rsqrt**: `R = isqrt((D+E) << 2k)` exactly (bitwise integer square root, `k` chosen so the
/// argument uses 61–62 bits), then one `i64` division `inv = 2^62 / R` per pixel; `x̂·2^16 =
/// (C·q − S1)·inv >> (46 − k)`. Then `y = sat(z_out + round((x̂·2^16·g[c] + b[c]·2^16) / 2^T))`
/// with `g = γ/s_out·2^(T−16)` and `b = β/s_out·2^(T−16)` as `i16`. All integer: identical on every target.
#[derive(Debug, Clone, Copy)]
pub struct NormQ<'a> {
    /// Per-channel gain.
    pub gamma: &'a [i16],
    /// Per-channel offset.
    pub beta: &'a [i16],
    /// `T`.
    pub shift: i32,
    /// `eps/s_in² · 256`.
    pub eps_q8: i32,
    /// Output zero point.
    pub out_zero: i32,
    /// Optional fused activation table.
    pub lut: Option<&'a [i8]>,
}

pub(crate) fn check_norm<T>(buf: &[T], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    check_len("int8 norm gamma", q.gamma, c)?;
    check_len("int8 norm beta", q.beta, c)?;
    if let Some(t) = q.lut {
        check_len("int8 lut", t, 256)?;
    }
    if c == 0 || buf.len() % c != 0 {
        return Err(Error::InvalidConfig("int8 layer norm: ragged input"));
    }
    Ok(())
}

/// Checks of [`layer_norm_i16`]: the parameters, `x` whole pixels, `y` as long as `x`.
pub(crate) fn check_norm16(x: &[i16], c: usize, q: &NormQ<'_>, y: &[i8]) -> Result<(), Error> {
    check_norm(x, c, q)?;
    check_len("int8 norm output", y, x.len())
}

/// Integer LayerNorm of every pixel of `buf` (`[pixels][c]`), in place: the Arm DSP or AVX2
/// kernel where the target has one, else [`layer_norm_reference`].
pub fn layer_norm_inplace(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    check_norm(buf, c, q)?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::norm::arm_dsp::layer_norm_inplace(buf, c, q) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::norm::x86::layer_norm(buf, c, q) {
        return Ok(());
    }
    layer_norm_reference(buf, c, q)
}

/// Per-pixel statistics of the integer LayerNorm: `(S1, inv, k)` of [`NormQ`]'s definition.
#[inline(always)]
fn ln_stats(cc: i64, e: u64, s1: i64, s2: i64) -> (i64, i64, i32) {
    let d = (cc * s2 - s1 * s1).max(0) as u64;
    let v = d.saturating_add(e).max(1);
    let bits = 64 - v.leading_zeros() as i32;
    let k = ((62 - bits) / 2).max(0);
    let r = isqrt_u64(v << (2 * k)).max(1);
    (s1, ((1u64 << 62) / r) as i64, k)
}

/// One normalized, scaled and shifted output of the integer LayerNorm.
#[inline(always)]
pub(crate) fn ln_out(num: i64, inv: i64, k: i32, i: usize, q: &NormQ<'_>) -> i8 {
    let xh = requant64(num.wrapping_mul(inv), 46 - k);
    let acc = xh
        .wrapping_mul(q.gamma[i] as i64)
        .wrapping_add((q.beta[i] as i64) << 16);
    let out = sat_i8(q.out_zero.wrapping_add(requant64(acc, q.shift) as i32));
    match q.lut {
        Some(t) => t[(out as i32 + 128) as usize],
        None => out,
    }
}

/// `E = C²·eps_q8 / 256` of [`NormQ`].
fn ln_eps(c: usize, q: &NormQ<'_>) -> u64 {
    let cc = c as u64;
    (cc * cc).saturating_mul(q.eps_q8.max(0) as u64) >> 8
}

/// Reference integer LayerNorm (the definition in [`NormQ`]), in place.
pub fn layer_norm_reference(buf: &mut [i8], c: usize, q: &NormQ<'_>) -> Result<(), Error> {
    check_norm(buf, c, q)?;
    let (cc, e) = (c as i64, ln_eps(c, q));
    for px in buf.chunks_exact_mut(c) {
        let (mut s1, mut s2) = (0i64, 0i64);
        for &v in px.iter() {
            s1 += v as i64;
            s2 += (v as i64) * (v as i64);
        }
        let (s1, inv, k) = ln_stats(cc, e, s1, s2);
        for (i, x) in px.iter_mut().enumerate() {
            *x = ln_out(cc * (*x as i64) - s1, inv, k, i, q);
        }
    }
    Ok(())
}

/// Integer LayerNorm of 16-bit inputs `x: [pixels][c]` (a conv's [`ConvOut`] `i16` output) into
/// int8 `y`: the definition in [`NormQ`] with `q` read as `i16` (`S2 < C·2³⁰`, so every
/// intermediate still fits its `i64`/`u64`), `eps_q8` relative to the 16-bit scale. A fused
/// table (GELU, Hardswish) is applied to the unrounded output by linear interpolation
/// (`ln_out_lerp`), so the LayerNorm's own int8 rounding disappears too. Runs the Arm DSP or
/// AVX2 kernel where the target has one, else [`layer_norm_i16_reference`].
pub fn layer_norm_i16(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> Result<(), Error> {
    check_norm16(x, c, q, y)?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::norm::arm_dsp::layer_norm_i16(x, c, q, y) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::norm::x86::layer_norm_i16(x, c, q, y) {
        return Ok(());
    }
    layer_norm_i16_reference(x, c, q, y)
}

/// Reference of [`layer_norm_i16`] (portable scalar code, the definition; the same checks).
pub fn layer_norm_i16_reference(
    x: &[i16],
    c: usize,
    q: &NormQ<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    check_norm16(x, c, q, y)?;
    let (cc, e) = (c as i64, ln_eps(c, q));
    for (px, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let (mut s1, mut s2) = (0i64, 0i64);
        for &v in px {
            s1 += v as i64;
            s2 += (v as i64) * (v as i64);
        }
        let (s1, inv, k) = ln_stats(cc, e, s1, s2);
        match q.lut {
            None => {
                for (i, (o, &v)) in out.iter_mut().zip(px).enumerate() {
                    *o = ln_out(cc * v as i64 - s1, inv, k, i, q);
                }
            }
            Some(t) => {
                for (i, (o, &v)) in out.iter_mut().zip(px).enumerate() {
                    *o = ln_out_lerp(cc * v as i64 - s1, inv, k, i, q, t);
                }
            }
        }
    }
    Ok(())
}

/// [`ln_out`] followed by a table, without rounding in between: the normalized value with 8
/// fractional bits of the table's input step, `u = z_out·256 + round(acc / 2^(T−8))`, clamped
/// to the table's range, and the output interpolated linearly between the two entries around it:
/// `t[⌊u/256⌋] + ⌊((t[⌊u/256⌋+1] − t[⌊u/256⌋])·(u mod 256) + 128) / 256⌋`. The table is the
/// same 256-entry table (its entries are the function at the int8 grid points); only the
/// rounding of LayerNorm's output to that grid is gone.
#[inline(always)]
pub(crate) fn ln_out_lerp(num: i64, inv: i64, k: i32, i: usize, q: &NormQ<'_>, t: &[i8]) -> i8 {
    let xh = requant64(num.wrapping_mul(inv), 46 - k);
    let acc = xh
        .wrapping_mul(q.gamma[i] as i64)
        .wrapping_add((q.beta[i] as i64) << 16);
    let v8 = if q.shift > 8 {
        requant64(acc, q.shift - 8)
    } else {
        acc.wrapping_shl((8 - q.shift.max(0)) as u32)
    };
    let u = ((q.out_zero as i64) << 8)
        .wrapping_add(v8)
        .clamp(-128 << 8, 127 << 8);
    let j = ((u >> 8) + 128) as usize;
    let f = (u & 255) as i32;
    let lo = t[j] as i32;
    let hi = t[(j + 1).min(255)] as i32;
    (lo + (((hi - lo) * f + 128) >> 8)) as i8
}

/// Parameters of the int8 squeeze-excitation block (MobileVLM V1).
///
/// Scheme: per-channel mean of the int8 map, rounded like AVERAGE_POOL_2D (keeps the input's
/// quantization); `fc1` (int8 weights, int32 bias with the input zero point folded in) requantized
/// to int8 and clamped at its zero point (ReLU); `fc2` likewise; the Hardsigmoid gate is a
/// 256-entry table of the gate times 255 (`0..=255`, as TFLite's LOGISTIC output at scale 1/256
/// but with an exact 1); finally
/// `y = sat(z_out + round((x − z_in)·gate[c]·m / 2^shift))`.
#[derive(Debug, Clone, Copy)]
pub struct SeQ<'a> {
    /// Zero point of the input map.
    pub in_zero: i32,
    /// `fc1`: `[s][c]`; its `in_zero` is unused (folded), `lut` unused.
    pub fc1: ConvQ<'a>,
    /// `fc2`: `[c][s]`; its `out_zero` is the gate-table index base.
    pub fc2: ConvQ<'a>,
    /// Hardsigmoid table: the gate times 255, rounded (`0..=255`; 255 is a gate of exactly 1).
    pub gate: &'a [u8],
    /// Output multiplier.
    pub mult: i32,
    /// Output shift.
    pub shift: i32,
    /// Output zero point.
    pub out_zero: i32,
}

/// Bytes of temporary storage (as `i32`s) that [`squeeze_excite`] needs.
pub const fn se_tmp_len(c: usize, s: usize) -> usize {
    2 * c + s
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
    for j in 0..s {
        let mut acc = q.fc1.bias_at(j);
        for i in 0..c {
            acc = acc.wrapping_add(sums[i].wrapping_mul(q.fc1.weight[j * c + i] as i32));
        }
        let v = sat_i8(
            q.fc1
                .out_zero
                .wrapping_add(requant(acc, q.fc1.mult_at(j), q.fc1.shift)),
        );
        hid[j] = (v as i32).max(q.fc1.out_zero.clamp(-128, 127));
    }
    for i in 0..c {
        let mut acc = q.fc2.bias_at(i);
        for j in 0..s {
            acc = acc.wrapping_add(hid[j].wrapping_mul(q.fc2.weight[i * s + j] as i32));
        }
        let v = sat_i8(
            q.fc2
                .out_zero
                .wrapping_add(requant(acc, q.fc2.mult_at(i), q.fc2.shift)),
        );
        gate[i] = q.gate[(v as i32 + 128) as usize] as i32;
    }
    Ok(())
}

/// Multiplies `x: [pixels][c]` by the gate: `y = sat(z_out + round((x − z_in)·gate[c]·m / 2^shift))`.
pub fn se_apply(q: &SeQ<'_>, gate: &[i32], x: &mut [i8]) {
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
    // se_tmp_len(c, s) without overflow.
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
    let (sums, rest) = tmp.split_at_mut(c);
    let (hid, rest) = rest.split_at_mut(s);
    let gate = &mut rest[..c];
    // Per-channel sums of x − z (wrapping, like the streaming accumulator).
    sums.iter_mut().for_each(|v| *v = 0);
    for px in x.chunks_exact(c) {
        for (acc, &v) in sums.iter_mut().zip(px) {
            *acc = acc.wrapping_add((v as i32).wrapping_sub(q.in_zero));
        }
    }
    se_gate_from_sums(q, sums, x.len() / c, hid, gate)?;
    se_apply(q, gate, x);
    Ok(())
}
