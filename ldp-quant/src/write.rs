//! The blob writer. The layout lives in `ldp_core::blob` (header and entry encoders, the tensor
//! spec lists, CRC); this module only places the tensors:
//!
//! header (64 B) · table (12 B per tensor, `ENTRY_LEN`) · zero padding to 16 · each tensor at
//! the next multiple of 16 in spec order, zero padding between · zero padding to 16 · CRC-32
//! (4 B, LE) of everything before it.

use anyhow::{bail, Context};
use ldp_core::blob::crc::crc32;
use ldp_core::blob::format::{Header, TensorEntry, ALIGN, ENTRY_LEN, HEADER_LEN};
use ldp_core::blob::specs::{elem_type, resolve_flags, specs, specs_flags};
use ldp_core::{DType, Model, ModelConfig};

use crate::aligned::AlignedBytes;
use crate::graph::{squeeze_of, FloatModel};
use crate::quantize::{f16_bytes, f32_bytes};

fn align_up(v: usize) -> usize {
    v.div_ceil(ALIGN) * ALIGN
}

fn u32_of(v: usize, what: &str) -> anyhow::Result<u32> {
    u32::try_from(v).with_context(|| format!("{what} ({v}) does not fit the blob format (u32)"))
}

/// Assembles a blob of `config` and `dtype` from the raw little-endian bytes of every tensor of
/// `specs(arch, dtype)`, in that order. Each tensor's length is checked against its spec.
pub fn assemble(
    config: &ModelConfig,
    dtype: DType,
    tensors: &[Vec<u8>],
) -> anyhow::Result<Vec<u8>> {
    assemble_with_flags(config, dtype, 0, tensors)
}

/// [`assemble`] with header flags (bit 0: per-channel int8 input, bit 1: 16-bit activations; see
/// `ldp_core::blob::specs`).
pub fn assemble_with_flags(
    config: &ModelConfig,
    dtype: DType,
    flags: u16,
    tensors: &[Vec<u8>],
) -> anyhow::Result<Vec<u8>> {
    let arch = config.arch();
    let specs = specs_flags(arch, dtype, flags);
    if tensors.len() != specs.len() {
        bail!(
            "internal: {} {} needs {} tensors, got {}",
            arch.name(),
            dtype.name(),
            specs.len(),
            tensors.len()
        );
    }
    let (c_in, c_out) = config.channels();
    let (h, w) = config.input_grid();
    let squeeze = squeeze_of(config);
    let (c_in, c_out, squeeze) = (
        u32_of(c_in, "c_in")?,
        u32_of(c_out, "c_out")?,
        u32_of(squeeze, "squeeze")?,
    );
    let table_end = HEADER_LEN + ENTRY_LEN * specs.len();
    let data_offset = align_up(table_end);

    let mut entries = Vec::with_capacity(specs.len());
    let mut at = data_offset;
    for (i, (spec, bytes)) in specs.iter().zip(tensors).enumerate() {
        let elem = elem_type(spec, dtype);
        let dims = resolve_flags(spec.dims, c_in, c_out, squeeze, flags);
        let n: u64 = dims[..spec.dims.len()].iter().map(|&d| d as u64).product();
        if n * elem.size() as u64 != bytes.len() as u64 {
            bail!(
                "internal: tensor `{}` has {} bytes, its spec needs {}",
                spec,
                bytes.len(),
                n * elem.size() as u64
            );
        }
        entries.push(TensorEntry {
            index: u16::try_from(i).context("too many tensors")?,
            elem,
            rank: spec.dims.len() as u8,
            offset: u32_of(at, "tensor offset")?,
            len: u32_of(bytes.len(), "tensor length")?,
        });
        at = align_up(at + bytes.len());
    }
    let total_len = at + 4;
    let header = Header {
        arch,
        dtype,
        flags,
        c_in,
        c_out,
        h: u32_of(h, "h")?,
        w: u32_of(w, "w")?,
        squeeze,
        n_tensors: u32_of(specs.len(), "tensor count")?,
        table_offset: HEADER_LEN as u32,
        data_offset: u32_of(data_offset, "data offset")?,
        total_len: u32_of(total_len, "blob length")
            .context("the model is too large for one blob (over 4 GiB)")?,
    };

    let mut out = vec![0u8; total_len];
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    for (i, (e, bytes)) in entries.iter().zip(tensors).enumerate() {
        let t = HEADER_LEN + ENTRY_LEN * i;
        out[t..t + ENTRY_LEN].copy_from_slice(&e.to_bytes());
        let o = e.offset as usize;
        out[o..o + bytes.len()].copy_from_slice(bytes);
    }
    let crc = crc32(&out[..total_len - 4]);
    out[total_len - 4..].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Writes an f32 or f16 blob of `model`.
pub fn float_blob(model: &FloatModel, dtype: DType) -> anyhow::Result<Vec<u8>> {
    let specs = specs(model.arch(), dtype);
    let mut tensors = Vec::with_capacity(specs.len());
    for (spec, data) in specs.iter().zip(model.tensors()) {
        let bytes = match (dtype, elem_type(spec, dtype)) {
            (DType::F32 | DType::F16, ldp_core::blob::ElemType::F32) => f32_bytes(data),
            (DType::F16, ldp_core::blob::ElemType::F16) => f16_bytes(&spec.to_string(), data)?,
            (d, e) => bail!(
                "internal: tensor `{}` of a {} model has element type {e:?}",
                spec,
                d.name()
            ),
        };
        tensors.push(bytes);
    }
    assemble(&model.config(), dtype, &tensors)
}

/// Checks that `blob` passes `ldp-core`'s validating reader (and so will load on the device).
pub fn verify(blob: &[u8]) -> anyhow::Result<()> {
    let a = AlignedBytes::from_slice(blob);
    Model::parse(a.as_bytes())
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("the written blob is rejected by ldp-core: {e}"))
}
