//! # ldp-core
//!
//! A `no_std`, allocation-free runtime for the **Lightweight Downsample Projector** of MobileVLM:
//! the seed `ldp` block, MobileVLM V1's `LDPNetProjector` and MobileVLM V2's `LDPNetV2Projector`
//! (their exact math is in the repository's `docs/ARCHITECTURES.md`). It runs in f32, f16 (f32
//! arithmetic) and int8.
//!
//! All memory is the caller's: weights are borrowed slices (typically a model blob in flash),
//! input and output are slices, and one scratch arena holds every intermediate map. Its size is
//! a `const fn` of the shape, so firmware can declare it as a `static`.
//!
//! ## Layout
//! Channels-last everywhere: an image is `[h][w][c]`, which is also MobileVLM's token order
//! `[N][c]`. [`tensor::nchw_to_nhwc`] converts PyTorch's NCHW.
//!
//! ## Two ways in
//! * Typed: [`arch::ldp::forward`] (and the V1/V2 twins) over weight slices you provide.
//! * From a blob: [`Model::parse`] validates a blob written by `ldp-quant` and [`Model::forward`]
//!   runs it, whatever its architecture and dtype.
//!
//! ## Example: the seed's `LDP(in_channels=128, out_channels=128)` on `[1, 128, 64, 64]`
//! ```
//! use ldp_core::arch::ldp::{forward, LdpConfig, LdpWeights};
//!
//! const CFG: LdpConfig = LdpConfig { c_in: 128, c_out: 128, h: 64, w: 64 };
//! let c = CFG.c_out;
//! // Weights in PyTorch's layouts (pointwise [O][I], depthwise [C][9]); here simple constants.
//! let pw = vec![0.01f32; c * c];
//! let dw = vec![0.1f32; c * 9];
//! let (zeros, ones) = (vec![0.0f32; c], vec![1.0f32; c]);
//! let w = LdpWeights {
//!     pw1_w: &pw, pw1_b: &zeros, dw1_w: &dw, dw1_b: &zeros,
//!     pw2_w: &pw, pw2_b: &zeros, ln1_w: &ones, ln1_b: &zeros,
//!     dw2_w: &dw, dw2_b: &zeros, pw3_w: &pw, pw3_b: &zeros,
//!     ln2_w: &ones, ln2_b: &zeros,
//! };
//! // [1, 128, 64, 64] NCHW from PyTorch → channels-last.
//! let x_nchw: Vec<f32> = (0..CFG.input_len()).map(|i| (i % 7) as f32 - 3.0).collect();
//! let mut x = vec![0.0f32; CFG.input_len()];
//! ldp_core::tensor::nchw_to_nhwc(&x_nchw, &mut x, 128, 64, 64).unwrap();
//! let mut y = vec![0.0f32; CFG.output_len()]; // [32][32][128]
//! let mut scratch = vec![0.0f32; CFG.scratch_len()];
//! forward(&CFG, &w, &x, &mut y, &mut scratch).unwrap();
//! assert_eq!((CFG.h2(), CFG.w2()), (32, 32));
//! assert!(y.iter().all(|v| v.is_finite()));
//! ```
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]
// Kernels index several arrays in lockstep and take their geometry as plain arguments; these
// two lints would make them harder to read, not easier.
#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

// Run-time CPU feature detection for the host kernels.
#[cfg(feature = "std")]
extern crate std;

pub mod arch;
pub mod blob;
pub mod elem;
pub mod error;
pub mod graph;
pub mod kernels;
pub mod quant;
pub mod stream;
pub mod tensor;

pub use blob::{Arch, BlobError, DType, Model, ModelConfig};
pub use elem::Elem;
pub use error::Error;
pub use tensor::Aligned;
