//! Element-wise ADD of two int8 activations (TFLite's ADD: each operand rescaled, one rounding).
//! The dispatch and the reference are `quant::kernels::add_inplace` / `add_reference`; the back
//! ends live here.

pub mod int8;

#[cfg(any(ldp_arm_dsp, test))]
pub(crate) mod arm_dsp;
#[cfg(ldp_arm_mve)]
pub(crate) mod mve;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
#[cfg(target_arch = "x86_64")]
pub mod x86;
