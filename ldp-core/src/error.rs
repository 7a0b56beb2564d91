//! The one error type of `ldp-core`.

use crate::blob::BlobError;

/// Everything that can go wrong in a forward pass or while reading a model blob.
///
/// No valid input makes `ldp-core` panic; invalid input (a buffer of the wrong length, a
/// configuration that the architecture does not allow, a corrupted blob) is reported here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// A buffer has the wrong number of elements.
    BufferLen {
        /// Which buffer (e.g. `"input"`, `"pointwise1.weight"`).
        what: &'static str,
        /// The length the configuration requires.
        expected: usize,
        /// The length that was passed.
        found: usize,
    },
    /// The scratch arena is smaller than [`crate::Model::scratch_bytes`] or the `scratch_len` of the architecture.
    ScratchTooSmall {
        /// Bytes (or elements, for the typed APIs) required.
        need: usize,
        /// Bytes (or elements) provided.
        have: usize,
    },
    /// A buffer is not aligned for its element type.
    Misaligned {
        /// Which buffer.
        what: &'static str,
    },
    /// The configuration is not one the architecture allows (zero channels, an empty grid, ...).
    InvalidConfig(&'static str),
    /// The requested operation is not supported for this model (e.g. a dtype without a kernel on this target).
    Unsupported(&'static str),
    /// The model blob is malformed.
    Blob(BlobError),
    /// An input value is NaN or infinite ([`crate::Model::forward`] checks every input value
    /// first: a float model would return NaN everywhere, an int8 model would quietly map NaN
    /// to 0 and saturate infinities, and the output would look normal).
    NonFiniteInput {
        /// Index of the first non-finite value in the input slice as given (channels-last for
        /// `Model::forward`, channels-first for `quant::quantize_input_nchw`).
        index: usize,
    },
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        Error::Blob(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BufferLen { what, expected, found } => write!(
                f,
                "buffer `{what}` has {found} elements, but the configuration needs {expected}"
            ),
            Error::ScratchTooSmall { need, have } => write!(
                f,
                "scratch arena too small: {have} provided, {need} needed (use the model's scratch size)"
            ),
            Error::Misaligned { what } => {
                write!(f, "buffer `{what}` is not aligned for its element type (align the blob/arena to 16 bytes)")
            }
            Error::InvalidConfig(m) => write!(f, "invalid configuration: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Blob(e) => write!(f, "invalid model blob: {e}"),
            Error::NonFiniteInput { index } => write!(
                f,
                "input value {index} (channels-last) is NaN or infinite; the model needs finite inputs"
            ),
        }
    }
}

/// Checks that `buf` has exactly `expected` elements.
#[inline]
pub(crate) fn check_len<T>(what: &'static str, buf: &[T], expected: usize) -> Result<(), Error> {
    if buf.len() == expected {
        Ok(())
    } else {
        Err(Error::BufferLen {
            what,
            expected,
            found: buf.len(),
        })
    }
}

/// The product of `dims` (a buffer size), or [`Error::InvalidConfig`] when it does not fit
/// `usize`. Every size computed from caller-supplied dimensions goes through this (or another
/// checked operation), so that a wrapped product can never make a length check pass.
#[inline]
pub(crate) fn size_of_dims(dims: &[usize]) -> Result<usize, Error> {
    let mut n: usize = 1;
    for &d in dims {
        n = n
            .checked_mul(d)
            .ok_or(Error::InvalidConfig("dimensions overflow usize"))?;
    }
    Ok(n)
}

/// Checks that `buf` has exactly `dims[0]·dims[1]·…` elements, the product computed without
/// overflow ([`size_of_dims`]).
#[inline]
pub(crate) fn check_dims<T>(what: &'static str, buf: &[T], dims: &[usize]) -> Result<(), Error> {
    check_len(what, buf, size_of_dims(dims)?)
}
