//! Pieces an instruction-set back end shares across operations (the per-operation kernels live
//! in `kernels/<op>/<isa>.rs`).

#[cfg(any(ldp_arm_dsp, test))]
pub(crate) mod arm_dsp;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;
