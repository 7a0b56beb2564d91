//! The int8 path (TFLite's quantization scheme). Work in progress: see issue 4.

pub mod specs;

use crate::blob::{BlobError, Model, ModelConfig};
use crate::error::Error;

/// Extra semantic checks of an int8 blob (parameter ranges).
pub(crate) fn validate(_m: &Model<'_>) -> Result<(), BlobError> {
    Ok(())
}

/// Scratch bytes of the int8 forward pass.
pub(crate) fn scratch_bytes(_cfg: &ModelConfig) -> usize {
    0
}

/// f32-in, f32-out int8 forward pass.
pub(crate) fn forward_f32(
    _m: &Model<'_>,
    _input: &[f32],
    _output: &mut [f32],
    _scratch: &mut [u8],
) -> Result<(), Error> {
    Err(Error::Unsupported(
        "int8 forward pass is not implemented yet",
    ))
}
