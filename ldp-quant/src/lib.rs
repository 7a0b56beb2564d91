//! # ldp-quant
//!
//! The host tool of the LDP runtime: imports a projector from the checkpoints users hold
//! (safetensors, `torch.save` archives, sharded checkpoints, model directories, llama.cpp GGUF), writes model
//! blobs for `ldp-core` (f32, f16, int8 with per-channel weights and 16-bit activation modes), runs, inspects and evaluates them.
//! The binary is a thin wrapper over [`cli`]; the modules are public so tests can write blobs
//! directly.
//!
//! * [`import`]: checkpoint files → f32 tensors (format, architecture and prefix detection, shape
//!   checks; a restricted unpickler for `torch.save` files, nothing from a file is executed).
//! * [`graph`]: [`graph::FloatModel`], the owned f32 model and its reference forward pass.
//! * [`quantize`]: f16 conversion; the int8 entry point.
//! * [`write`](mod@write): the blob writer (layout from `ldp_core::blob`).
//! * [`device`]: a board running the serve firmware as a device in the loop (`run --device`).
//! * [`npy`], [`layout`], [`calib`], [`metrics`]: files, layouts and numbers.
//! * [`calib_check`]: diagnosis of a calibration set (refused or warned about before int8).
//! * [`fileio`]: bounded reads of regular files, atomic writes, outputs that would overwrite
//!   an input refused.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aligned;
pub mod calib;
pub mod calib_check;
pub mod cli;
pub mod device;
pub mod fileio;
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
