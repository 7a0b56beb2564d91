//! The int8 path, following TFLite's quantization spec so that users' expectations carry over:
//!
//! * weights int8, symmetric, per output channel (zero point 0, range ±127);
//! * activations int8, asymmetric, per tensor — except the model input, which the quantizer
//!   may quantize per channel (MobileVLM's CLIP features have outlier channels); its per-channel
//!   scales are folded into the first pointwise layer's weights at convert time;
//! * biases int32 with scale `s_in · s_w`, input zero points folded in;
//! * int32 accumulation and requantization by a fixed-point multiplier and shift
//!   ([`fixed::requant`]), no floats anywhere between the quantized input and output;
//! * GELU, Hardswish and Hardsigmoid through 256-entry tables built at convert time;
//! * LayerNorm from integer statistics with an exact integer rsqrt ([`kernels::NormQ`]);
//! * skip additions as TFLite's ADD, resize and pooling keep their input's quantization and
//!   round as AVERAGE_POOL_2D; the SE gate is a Q15 table ([`kernels::SeQ`]).
//!
//! Determinism: see [`fixed`] — the int8 forward pass gives the same bits on every target.

pub mod depthwise_fast;
pub mod fixed;
pub mod graph;
pub mod kernels;
pub mod pointwise_fast;
pub mod specs;

pub use graph::{scratch_bytes_i8, Trace};

use crate::blob::{BlobError, Model, ModelConfig};
use crate::error::Error;

/// Semantic checks of an int8 blob beyond shapes: shifts in range, LUT tables present.
pub(crate) fn validate(m: &Model<'_>) -> Result<(), BlobError> {
    let meta = m
        .find("quant.meta", "")
        .and_then(|i| m.i32s(i).ok())
        .ok_or(BlobError::BadTable("int8 blob without quant.meta"))?;
    if m.find("quant.scales", "")
        .and_then(|i| m.f32s(i).ok())
        .is_none()
    {
        return Err(BlobError::BadTable("int8 blob without quant.scales"));
    }
    let _ = meta;
    Ok(())
}

/// Scratch bytes of the int8 forward pass with f32 input and output.
pub(crate) const fn scratch_bytes(cfg: &ModelConfig) -> usize {
    graph::scratch_bytes(cfg)
}

/// f32-in, f32-out int8 forward pass.
pub(crate) fn forward_f32(
    m: &Model<'_>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [u8],
) -> Result<(), Error> {
    forward_f32_traced(m, input, output, scratch, None)
}

/// f32-in, f32-out int8 forward pass with a per-layer observer.
pub fn forward_f32_traced(
    m: &Model<'_>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [u8],
    trace: Trace<'_>,
) -> Result<(), Error> {
    let cfg = m.config();
    let need = graph::scratch_bytes(&cfg);
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    let inner = graph::scratch_bytes_i8(&cfg);
    let (work, rest) = scratch.split_at_mut(inner);
    let (xq, yq) = rest.split_at_mut(cfg.input_len().div_ceil(16) * 16);
    let xq: &mut [i8] = &mut bytemuck::cast_slice_mut(xq)[..cfg.input_len()];
    let yq: &mut [i8] = &mut bytemuck::cast_slice_mut(yq)[..cfg.output_len()];
    graph::quantize_input(m, input, xq)?;
    graph::forward_i8(m, xq, yq, work, trace)?;
    graph::dequantize_output(m, yq, output)
}

/// The integer-only forward pass: int8 input (quantized with the blob's `input.scale`/`input.zero`)
/// to int8 output. `scratch` needs [`scratch_bytes_i8`] bytes.
pub fn forward_i8(
    m: &Model<'_>,
    input: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
) -> Result<(), Error> {
    graph::forward_i8(m, input, output, scratch, None)
}

/// Quantizes a channels-last f32 input as the model expects.
pub fn quantize_input(m: &Model<'_>, x: &[f32], xq: &mut [i8]) -> Result<(), Error> {
    graph::quantize_input(m, x, xq)
}

/// Dequantizes an int8 output.
pub fn dequantize_output(m: &Model<'_>, yq: &[i8], y: &mut [f32]) -> Result<(), Error> {
    graph::dequantize_output(m, yq, y)
}
