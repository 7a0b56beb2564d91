//! int8 kernel parameters ([`ConvQ`], [`AddQ`], [`NormQ`], [`SeQ`], the output types
//! [`ConvOut`]) and the int8 entry points of every operation, re-exported from the operations'
//! frames in `kernels/<op>/int8.rs` (dispatch and reference side by side; the back ends in
//! `kernels/<op>/{portable, x86, neon, arm_dsp, mve}`). Each fast path must agree with its
//! reference bit for bit (integer sums are exact in any order).
//!
//! Conventions: activations are `i8` with a per-tensor zero point (the model input may be
//! per-channel; its zero points are folded into the first layer's bias at convert time).
//! Requantization multipliers are per output channel `u8` mantissas with one right shift per
//! layer: `y = sat(z_out + round(acc · mult[o] / 2^shift))`. Biases are `i32` accumulator values
//! stored as `i16` with one left shift per layer ([`ConvQ::bias_at`]).

use super::fixed::{requant, requant64, sat_i8};
use crate::error::{check_len, Error};

// The operations' frames live in `kernels/<op>/`; their int8 entry points are re-exported here.
pub use crate::kernels::add::int8::{add_inplace, add_reference};
pub use crate::kernels::depthwise::int8::{depthwise, depthwise_reference, depthwise_rows_i16};
pub use crate::kernels::norm::int8::{
    layer_norm_i16, layer_norm_i16_reference, layer_norm_inplace, layer_norm_reference,
};
pub use crate::kernels::pointwise::int8::{pointwise, pointwise_layer_norm, pointwise_reference};
pub use crate::kernels::pool::int8::adaptive_avg_pool;
pub use crate::kernels::quantize::int8::{
    dequantize, dequantize_reference, quantize, quantize_nchw, quantize_nchw_part,
    quantize_nchw_part_reference, quantize_nchw_reference, quantize_reference,
};
pub use crate::kernels::resize::int8::{resize_bilinear, resize_bilinear_reference, taps_q10};
pub use crate::kernels::se::int8::{
    se_apply, se_apply_reference, se_gate_from_sums, se_tmp_len, squeeze_excite,
};

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

        /// The x86-64 VNNI kernel over weights packed once for the layer
        /// (`kernels::pointwise::x86::vnni::pack_all`); `false` (nothing written) when it does
        /// not run (as `pointwise_arch`, and unless `pre` was packed from `q` with this shape).
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        fn pointwise_packed(
            x: &[i8],
            c_in: usize,
            q: &ConvQ<'_>,
            c_out: usize,
            y: &mut [Self],
            pixels: usize,
            pre: &crate::kernels::pointwise::x86::vnni::Packed,
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
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    fn pointwise_packed(
        x: &[i8],
        c_in: usize,
        q: &ConvQ<'_>,
        c_out: usize,
        y: &mut [i8],
        pixels: usize,
        pre: &crate::kernels::pointwise::x86::vnni::Packed,
    ) -> bool {
        crate::kernels::pointwise::x86::vnni::pointwise_packed(x, c_in, q, c_out, y, pixels, pre)
    }

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
        if crate::kernels::pointwise::x86::amx::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::vnni::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::avxvnni::pointwise(x, c_in, q, c_out, y, pixels) {
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
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    fn pointwise_packed(
        x: &[i8],
        c_in: usize,
        q: &ConvQ<'_>,
        c_out: usize,
        y: &mut [i16],
        pixels: usize,
        pre: &crate::kernels::pointwise::x86::vnni::Packed,
    ) -> bool {
        crate::kernels::pointwise::x86::vnni::pointwise_packed(x, c_in, q, c_out, y, pixels, pre)
    }

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
        if crate::kernels::pointwise::x86::amx::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::vnni::pointwise(x, c_in, q, c_out, y, pixels) {
            return true;
        }
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::pointwise::x86::avxvnni::pointwise(x, c_in, q, c_out, y, pixels) {
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

pub(crate) fn check_conv(q: &ConvQ<'_>, wlen: usize, c_out: usize) -> Result<(), Error> {
    check_len("int8 weight", q.weight, wlen)?;
    check_bias_mult(q, c_out)?;
    if let Some(t) = q.lut {
        check_len("int8 lut", t, 256)?;
    }
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

/// Applies a 256-entry table in place.
pub fn lut_inplace(x: &mut [i8], lut: &[i8]) -> Result<(), Error> {
    check_len("int8 lut", lut, 256)?;
    for v in x.iter_mut() {
        *v = lut[(*v as i32 + 128) as usize];
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
