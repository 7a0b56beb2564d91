//! A byte buffer whose start is 16-byte aligned, as [`ldp_core::Model::parse`] requires.
//!
//! `Vec<u8>` gives no alignment guarantee, so the bytes live in a `Vec<u128>` and are viewed as
//! `&[u8]` through `bytemuck` (no `unsafe` here).

use std::path::Path;

/// Bytes stored at a 16-byte aligned address.
#[derive(Clone, Default)]
pub struct AlignedBytes {
    words: Vec<u128>,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        AlignedBytes {
            words: vec![0u128; len.div_ceil(16)],
            len,
        }
    }

    /// An aligned copy of `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut a = Self::zeroed(bytes.len());
        a.as_mut_bytes().copy_from_slice(bytes);
        a
    }

    /// Reads a model blob into an aligned buffer: a regular file no longer than the format
    /// can address, whose size is the length its header declares ([`crate::fileio::read_blob`]).
    pub fn read_file(path: &Path) -> anyhow::Result<Self> {
        Ok(Self::from_slice(&crate::fileio::read_blob(path)?))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        let all: &[u8] = bytemuck::cast_slice(&self.words);
        &all[..self.len]
    }

    /// The bytes, mutable.
    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        let all: &mut [u8] = bytemuck::cast_slice_mut(&mut self.words);
        &mut all[..self.len]
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_exact_length() {
        for n in [0usize, 1, 15, 16, 17, 100] {
            let src: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let a = AlignedBytes::from_slice(&src);
            assert_eq!(a.as_bytes(), &src[..]);
            assert_eq!(a.as_bytes().as_ptr() as usize % 16, 0);
        }
    }
}
