//! Tensor lists of int8 blobs.

use crate::blob::specs::TensorSpec;

/// int8 tensors of `ldp`.
pub const LDP_INT8: &[TensorSpec] = &[];
/// int8 tensors of `mobilevlm-v1`.
pub const V1_INT8: &[TensorSpec] = &[];
/// int8 tensors of `mobilevlm-v2`.
pub const V2_INT8: &[TensorSpec] = &[];
