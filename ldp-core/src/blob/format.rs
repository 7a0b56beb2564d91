//! The byte layout of a model blob — the one definition that the reader here and the writer in
//! `ldp-quant` share. `docs/FORMAT.md` describes the same layout for people.
//!
//! ```text
//! [0, 64)            header (little-endian)
//! [64, 64 + 12·n)    tensor table, n entries of 12 bytes, in the order of the spec list
//! ...                tensor data, each tensor at an offset that is a multiple of 16
//! [len-4, len)       CRC-32 (IEEE) of bytes [0, len-4)
//! ```

use super::BlobError;

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"LDPM";
/// The format version this reader understands.
pub const VERSION: u16 = 5;
/// Header size in bytes.
pub const HEADER_LEN: usize = 64;
/// Size of one tensor-table entry in bytes.
pub const ENTRY_LEN: usize = 12;
/// Alignment of every tensor's data offset (and required alignment of the blob itself).
pub const ALIGN: usize = 16;
/// Largest channel count or grid side a blob may declare (keeps all size arithmetic in range).
pub const MAX_DIM: u32 = 1 << 16;

/// Which projector graph a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum Arch {
    /// The seed `ldp` block.
    Ldp = 1,
    /// MobileVLM V1's `LDPNetProjector`.
    MobileVlmV1 = 2,
    /// MobileVLM V2's `LDPNetV2Projector`.
    MobileVlmV2 = 3,
    /// LLaVA's `mlp2x_gelu` projector (a graph architecture, [`crate::graph::mlp2x_gelu`]).
    Mlp2xGelu = 4,
}

impl Arch {
    /// Decodes the header byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Arch::Ldp),
            2 => Some(Arch::MobileVlmV1),
            3 => Some(Arch::MobileVlmV2),
            4 => Some(Arch::Mlp2xGelu),
            _ => None,
        }
    }
    /// The name used on the command line (`ldp`, `mobilevlm-v1`, `mobilevlm-v2`,
    /// `mlp2x-gelu`).
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Ldp => "ldp",
            Arch::MobileVlmV1 => "mobilevlm-v1",
            Arch::MobileVlmV2 => "mobilevlm-v2",
            Arch::Mlp2xGelu => "mlp2x-gelu",
        }
    }
}

/// Storage type of a whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum DType {
    /// f32 weights and activations.
    F32 = 1,
    /// f16 weights and activations, f32 arithmetic.
    F16 = 2,
    /// int8 weights and activations, integer arithmetic (TFLite's scheme).
    Int8 = 3,
}

impl DType {
    /// Decodes the header byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(DType::F32),
            2 => Some(DType::F16),
            3 => Some(DType::Int8),
            _ => None,
        }
    }
    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Int8 => "int8",
        }
    }
}

/// Element type of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ElemType {
    /// IEEE f32.
    F32 = 1,
    /// IEEE f16.
    F16 = 2,
    /// i8.
    I8 = 3,
    /// i32.
    I32 = 4,
    /// u8.
    U8 = 5,
    /// i16.
    I16 = 6,
}

impl ElemType {
    /// Decodes the table byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(ElemType::F32),
            2 => Some(ElemType::F16),
            3 => Some(ElemType::I8),
            4 => Some(ElemType::I32),
            5 => Some(ElemType::U8),
            6 => Some(ElemType::I16),
            _ => None,
        }
    }
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            ElemType::F32 | ElemType::I32 => 4,
            ElemType::F16 | ElemType::I16 => 2,
            ElemType::I8 | ElemType::U8 => 1,
        }
    }
}

/// The decoded 64-byte header.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `LDPM` |
/// | 4 | 2 | format version ([`VERSION`]) |
/// | 6 | 2 | header length (64) |
/// | 8 | 1 | [`Arch`] |
/// | 9 | 1 | [`DType`] |
/// | 10 | 2 | flags (bit 0: per-channel int8 input; bit 1: 16-bit activations (V2); others 0) |
/// | 12 | 4 | `c_in` |
/// | 16 | 4 | `c_out` |
/// | 20 | 4 | `h` (grid rows) |
/// | 24 | 4 | `w` (grid columns; `h` for MobileVLM) |
/// | 28 | 4 | `squeeze` (MobileVLM V1's SE width, else 0) |
/// | 32 | 4 | number of tensors |
/// | 36 | 4 | offset of the tensor table (64) |
/// | 40 | 4 | offset of the first tensor's data |
/// | 44 | 4 | total blob length including the CRC |
/// | 48 | 16 | reserved, zero |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Architecture.
    pub arch: Arch,
    /// Storage type.
    pub dtype: DType,
    /// Flags (bit 0: per-channel int8 input; the reader rejects other bits).
    pub flags: u16,
    /// Input channels.
    pub c_in: u32,
    /// Output channels.
    pub c_out: u32,
    /// Grid rows.
    pub h: u32,
    /// Grid columns.
    pub w: u32,
    /// SE squeeze width (V1), else 0.
    pub squeeze: u32,
    /// Number of tensors in the table.
    pub n_tensors: u32,
    /// Offset of the tensor table.
    pub table_offset: u32,
    /// Offset of the first tensor's data.
    pub data_offset: u32,
    /// Total length in bytes, CRC included.
    pub total_len: u32,
}

#[inline]
pub(crate) fn rd_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Encodes the header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[8] = self.arch as u8;
        b[9] = self.dtype as u8;
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        let words = [
            self.c_in,
            self.c_out,
            self.h,
            self.w,
            self.squeeze,
            self.n_tensors,
            self.table_offset,
            self.data_offset,
            self.total_len,
        ];
        for (i, v) in words.iter().enumerate() {
            b[12 + 4 * i..16 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Decodes and checks the fixed fields of a header (`b` must hold at least [`HEADER_LEN`] bytes).
    pub fn from_bytes(b: &[u8]) -> Result<Self, BlobError> {
        if b.len() < HEADER_LEN {
            return Err(BlobError::Truncated {
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        if b[0..4] != MAGIC {
            return Err(BlobError::BadMagic);
        }
        let version = rd_u16(b, 4);
        if version != VERSION {
            return Err(BlobError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        if rd_u16(b, 6) as usize != HEADER_LEN {
            return Err(BlobError::BadHeader("header length is not 64"));
        }
        let arch = Arch::from_u8(b[8]).ok_or(BlobError::BadHeader("unknown architecture"))?;
        let dtype = DType::from_u8(b[9]).ok_or(BlobError::BadHeader("unknown dtype"))?;
        let flags = rd_u16(b, 10);
        if b[48..64].iter().any(|&v| v != 0) {
            return Err(BlobError::BadHeader("reserved bytes are not zero"));
        }
        Ok(Header {
            arch,
            dtype,
            flags,
            c_in: rd_u32(b, 12),
            c_out: rd_u32(b, 16),
            h: rd_u32(b, 20),
            w: rd_u32(b, 24),
            squeeze: rd_u32(b, 28),
            n_tensors: rd_u32(b, 32),
            table_offset: rd_u32(b, 36),
            data_offset: rd_u32(b, 40),
            total_len: rd_u32(b, 44),
        })
    }
}

/// One 12-byte tensor-table entry.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | index of the tensor in the spec list (equals its position in the table) |
/// | 2 | 1 | [`ElemType`] |
/// | 3 | 1 | rank (1..=4) |
/// | 4 | 4 | data offset from the blob start (multiple of 16) |
/// | 8 | 4 | data length in bytes |
///
/// The dimensions are not stored: they follow from the spec list and the header
/// ([`crate::blob::Model::tensor_dims`]); the length must equal their product times the element
/// size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TensorEntry {
    /// Index in the spec list.
    pub index: u16,
    /// Element type.
    pub elem: ElemType,
    /// Number of dims of the tensor.
    pub rank: u8,
    /// Data offset.
    pub offset: u32,
    /// Data length in bytes.
    pub len: u32,
}

impl TensorEntry {
    /// Encodes the entry.
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..2].copy_from_slice(&self.index.to_le_bytes());
        b[2] = self.elem as u8;
        b[3] = self.rank;
        b[4..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Decodes an entry (`b` must hold [`ENTRY_LEN`] bytes).
    pub fn from_bytes(b: &[u8]) -> Result<Self, BlobError> {
        if b.len() < ENTRY_LEN {
            return Err(BlobError::Truncated {
                need: ENTRY_LEN,
                have: b.len(),
            });
        }
        let elem = ElemType::from_u8(b[2]).ok_or(BlobError::BadTable("unknown element type"))?;
        Ok(TensorEntry {
            index: rd_u16(b, 0),
            elem,
            rank: b[3],
            offset: rd_u32(b, 4),
            len: rd_u32(b, 8),
        })
    }
}
