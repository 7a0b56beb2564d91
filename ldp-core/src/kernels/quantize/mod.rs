//! Conversion between f32 and int8 activations: the model input's quantization and the output's
//! dequantization. The dispatch and the references are `quant::kernels::{quantize, dequantize}`
//! and their `_reference` twins; the back ends live here.

pub mod int8;

#[cfg(target_arch = "x86_64")]
pub mod x86;
