//! # ldp-quant
//!
//! The host tool of the LDP runtime: imports a PyTorch projector from safetensors, writes model
//! blobs for `ldp-core` (f32, f16; int8 in progress), runs, inspects and evaluates them.
//! The binary is a thin wrapper over [`cli`]; the modules are public so tests can write blobs
//! directly.
//!
//! * [`import`]: safetensors → f32 tensors (architecture and prefix detection, shape checks).
//! * [`graph`]: [`graph::FloatModel`], the owned f32 model and its reference forward pass.
//! * [`quantize`]: f16 conversion; the int8 entry point.
//! * [`write`]: the blob writer (layout from `ldp_core::blob`).
//! * [`npy`], [`layout`], [`calib`], [`metrics`]: files, layouts and numbers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aligned;
pub mod calib;
pub mod cli;
pub mod graph;
pub mod import;
pub mod int8;
pub mod layout;
pub mod metrics;
pub mod npy;
pub mod quantize;
pub mod write;

pub use aligned::AlignedBytes;
pub use graph::FloatModel;
/// Process-wide thread count of the forward passes (`0` = all cores; the default is 1 in the
/// library, all cores in `ldp-quant run`): the pointwise layers split their pixels into bands
/// ([`ldp_core::kernels::threads`]); outputs are the same bits for any count.
pub use ldp_core::kernels::threads::set_threads;
