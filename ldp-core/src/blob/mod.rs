//! The model blob: a versioned, CRC-checked, zero-copy container for a quantized projector.
//!
//! [`format`] is the byte layout, [`specs`] the tensor list per architecture and dtype, and
//! [`Model`] the validating reader. `ldp-quant` writes blobs with the same definitions.
//!
//! The reader never copies weights: a [`Model`] borrows the blob (e.g. `include_bytes!` in
//! flash) and hands out typed slices into it. The blob must start at a 16-byte aligned address;
//! see [`crate::Aligned`].

pub mod crc;
pub mod format;
pub mod int8;
pub mod specs;

mod reader;

pub use format::{Arch, DType, ElemType, Header, TensorEntry};
pub use reader::{Model, ModelConfig};

/// Why a blob was rejected. Every check of the reader has its own variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BlobError {
    /// The blob is shorter than a structure it declares.
    Truncated {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The first four bytes are not `LDPM`: this is not a model blob.
    BadMagic,
    /// A blob of another format version.
    UnsupportedVersion {
        /// Version in the blob.
        found: u16,
        /// Version this reader supports.
        supported: u16,
    },
    /// A header field is invalid.
    BadHeader(&'static str),
    /// A tensor-table entry is invalid.
    BadTable(&'static str),
    /// A tensor does not have the shape the header implies.
    ShapeMismatch {
        /// Index of the tensor in the table.
        index: u16,
    },
    /// A tensor lies (partly) outside the blob or overlaps another.
    OutOfBounds {
        /// Index of the tensor in the table.
        index: u16,
    },
    /// A tensor offset is not a multiple of 16, or the blob itself is not 16-byte aligned in memory.
    Misaligned,
    /// The CRC-32 trailer does not match the contents.
    BadCrc {
        /// CRC stored in the blob.
        stored: u32,
        /// CRC computed over the blob.
        computed: u32,
    },
    /// The length of the byte slice differs from the length in the header.
    LengthMismatch {
        /// Length in the header.
        header: usize,
        /// Length of the slice.
        actual: usize,
    },
    /// A float tensor (f32 or f16) holds a NaN or an infinity. The CRC only proves the file
    /// is intact, not that its values make sense: a non-finite weight would turn every output
    /// into NaN, so the reader refuses it (the converter refuses such checkpoints too).
    NonFinite {
        /// Index of the tensor in the table.
        index: u16,
        /// Its name (the PyTorch state-dict key, or a derived name; the node name for graph
        /// architectures, see [`specs::TensorSpec`]).
        name: &'static str,
        /// The node's parameter (`weight`, …), empty when `name` is the whole key.
        param: &'static str,
        /// The first non-finite element (flat index).
        element: usize,
    },
}

impl core::fmt::Display for BlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlobError::Truncated { need, have } => {
                write!(f, "truncated: needs at least {need} bytes, has {have}")
            }
            BlobError::BadMagic => write!(f, "not a model blob (bad magic; expected `LDPM`)"),
            BlobError::UnsupportedVersion { found, supported } => write!(
                f,
                "format version {found}, this build reads version {supported}; re-run `ldp-quant convert` with this version"
            ),
            BlobError::BadHeader(m) => write!(f, "bad header: {m}"),
            BlobError::BadTable(m) => write!(f, "bad tensor table: {m}"),
            BlobError::ShapeMismatch { index } => {
                write!(f, "tensor #{index} does not have the shape the header implies")
            }
            BlobError::OutOfBounds { index } => {
                write!(f, "tensor #{index} lies outside the blob or overlaps another")
            }
            BlobError::Misaligned => write!(
                f,
                "misaligned: tensors must sit at 16-byte offsets and the blob must be 16-byte aligned in memory"
            ),
            BlobError::BadCrc { stored, computed } => write!(
                f,
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted"
            ),
            BlobError::LengthMismatch { header, actual } => write!(
                f,
                "length mismatch: header says {header} bytes, got {actual} (truncated or padded file)"
            ),
            BlobError::NonFinite {
                index,
                name,
                param,
                element,
            } => write!(
                f,
                "tensor #{index} `{name}{}{param}` holds a NaN or infinite value at element {element}: re-convert from a finite checkpoint",
                if param.is_empty() { "" } else { "." }
            ),
        }
    }
}
