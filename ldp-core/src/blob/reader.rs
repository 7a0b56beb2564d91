//! The validating, zero-copy reader.

use half::f16;

use super::format::{
    rd_u32, Arch, DType, ElemType, Header, TensorEntry, ALIGN, ENTRY_LEN, HEADER_LEN, MAX_DIM,
};
use super::specs::{
    elem_type, resolve_flags, specs_flags, TensorSpec, FLAG_ACT16, FLAG_INPUT16,
    FLAG_PER_CHANNEL_INPUT,
};
use super::{crc::crc32, BlobError};
use crate::arch::{
    ldp::{self, LdpConfig, LdpWeights},
    mobilevlm_v1::{self, V1BlockWeights, V1Config, V1Weights},
    mobilevlm_v2::{self, V2Config, V2Weights},
};
use crate::elem::Elem;
use crate::error::Error;
use crate::graph::GraphConfig;
use crate::kernels::se::SeWeights;

/// The typed configuration of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelConfig {
    /// The seed block.
    Ldp(LdpConfig),
    /// MobileVLM V1.
    MobileVlmV1(V1Config),
    /// MobileVLM V2.
    MobileVlmV2(V2Config),
    /// An architecture written as a graph ([`crate::graph`]): `mlp2x-gelu`.
    Graph(GraphConfig),
}

impl ModelConfig {
    /// Elements of one input (channels-last `[h][w][c_in]`, or tokens `[N][c_in]`).
    pub const fn input_len(&self) -> usize {
        match self {
            ModelConfig::Ldp(c) => c.input_len(),
            ModelConfig::MobileVlmV1(c) => c.input_len(),
            ModelConfig::MobileVlmV2(c) => c.input_len(),
            ModelConfig::Graph(c) => c.input_len(),
        }
    }
    /// Elements of one output.
    pub const fn output_len(&self) -> usize {
        match self {
            ModelConfig::Ldp(c) => c.output_len(),
            ModelConfig::MobileVlmV1(c) => c.output_len(),
            ModelConfig::MobileVlmV2(c) => c.output_len(),
            ModelConfig::Graph(c) => c.output_len(),
        }
    }
    /// Output grid `(rows, cols)`.
    pub const fn output_grid(&self) -> (usize, usize) {
        match self {
            ModelConfig::Ldp(c) => (c.h2(), c.w2()),
            ModelConfig::MobileVlmV1(c) => (c.h2(), c.h2()),
            ModelConfig::MobileVlmV2(_) => (mobilevlm_v2::POOL, mobilevlm_v2::POOL),
            ModelConfig::Graph(c) => (c.h, c.w),
        }
    }
    /// Input grid `(rows, cols)`.
    pub const fn input_grid(&self) -> (usize, usize) {
        match self {
            ModelConfig::Ldp(c) => (c.h, c.w),
            ModelConfig::MobileVlmV1(c) => (c.h, c.h),
            ModelConfig::MobileVlmV2(c) => (c.h, c.h),
            ModelConfig::Graph(c) => (c.h, c.w),
        }
    }
    /// `(c_in, c_out)`.
    pub const fn channels(&self) -> (usize, usize) {
        match self {
            ModelConfig::Ldp(c) => (c.c_in, c.c_out),
            ModelConfig::MobileVlmV1(c) => (c.c_in, c.c_out),
            ModelConfig::MobileVlmV2(c) => (c.c_in, c.c_out),
            ModelConfig::Graph(c) => (c.c_in, c.c_out),
        }
    }
    /// Parameter count.
    pub const fn param_count(&self) -> usize {
        match self {
            ModelConfig::Ldp(c) => c.param_count(),
            ModelConfig::MobileVlmV1(c) => c.param_count(),
            ModelConfig::MobileVlmV2(c) => c.param_count(),
            ModelConfig::Graph(c) => c.param_count(),
        }
    }
    /// Multiply-accumulates per forward pass.
    pub const fn macs(&self) -> usize {
        match self {
            ModelConfig::Ldp(c) => c.macs(),
            ModelConfig::MobileVlmV1(c) => c.macs(),
            ModelConfig::MobileVlmV2(c) => c.macs(),
            ModelConfig::Graph(c) => c.macs(),
        }
    }
    /// Scratch elements the float forward pass needs (of the activation type).
    pub const fn float_scratch_len(&self) -> usize {
        match self {
            ModelConfig::Ldp(c) => c.scratch_len(),
            ModelConfig::MobileVlmV1(c) => c.scratch_len(),
            ModelConfig::MobileVlmV2(c) => c.scratch_len(),
            ModelConfig::Graph(c) => c.scratch_len(),
        }
    }
    /// The architecture.
    pub const fn arch(&self) -> Arch {
        match self {
            ModelConfig::Ldp(_) => Arch::Ldp,
            ModelConfig::MobileVlmV1(_) => Arch::MobileVlmV1,
            ModelConfig::MobileVlmV2(_) => Arch::MobileVlmV2,
            ModelConfig::Graph(c) => c.arch,
        }
    }
}

/// A validated model blob. Cheap to copy; borrows the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    bytes: &'a [u8],
    header: Header,
    config: ModelConfig,
    specs: &'static [TensorSpec],
}

/// Upper bound on any activation map (elements): keeps every size computation in range on
/// 32-bit targets.
const MAX_ELEMS: u64 = 1 << 28;

fn config_of(h: &Header) -> Result<ModelConfig, BlobError> {
    for (v, what) in [(h.c_in, "c_in"), (h.c_out, "c_out"), (h.h, "h"), (h.w, "w")] {
        if v == 0 || v > MAX_DIM {
            let _ = what;
            return Err(BlobError::BadHeader(
                "a channel count or grid side is 0 or above 65536",
            ));
        }
    }
    let (c_in, c_out, hh, ww) = (h.c_in as u64, h.c_out as u64, h.h as u64, h.w as u64);
    let cmax = c_in.max(c_out);
    if hh * ww * cmax > MAX_ELEMS || cmax * cmax > MAX_ELEMS {
        return Err(BlobError::BadHeader(
            "model too large (an activation map or weight exceeds 2^28 elements)",
        ));
    }
    if h.arch != Arch::MobileVlmV1 && h.squeeze != 0 {
        return Err(BlobError::BadHeader(
            "squeeze width set for an architecture without SE",
        ));
    }
    if matches!(h.arch, Arch::MobileVlmV1 | Arch::MobileVlmV2) && h.h != h.w {
        return Err(BlobError::BadHeader("MobileVLM grids are square (h == w)"));
    }
    let (ci, co, hh, ww) = (
        h.c_in as usize,
        h.c_out as usize,
        h.h as usize,
        h.w as usize,
    );
    Ok(match h.arch {
        Arch::Ldp => ModelConfig::Ldp(LdpConfig {
            c_in: ci,
            c_out: co,
            h: hh,
            w: ww,
        }),
        Arch::MobileVlmV1 => {
            if h.squeeze == 0 || h.squeeze > h.c_out.max(8) * 4 {
                return Err(BlobError::BadHeader("squeeze width out of range"));
            }
            ModelConfig::MobileVlmV1(V1Config {
                c_in: ci,
                c_out: co,
                h: hh,
                squeeze: h.squeeze as usize,
            })
        }
        Arch::MobileVlmV2 => ModelConfig::MobileVlmV2(V2Config {
            c_in: ci,
            c_out: co,
            h: hh,
        }),
        Arch::Mlp2xGelu => ModelConfig::Graph(GraphConfig {
            arch: h.arch,
            c_in: ci,
            c_out: co,
            h: hh,
            w: ww,
        }),
    })
}

impl<'a> Model<'a> {
    /// Validates `bytes` and returns a view of the model.
    ///
    /// Checks, in order: 16-byte alignment of `bytes`, length, magic, version, header fields,
    /// the length in the header, the CRC-32, sizes against limits, and every tensor-table entry
    /// (index, element type, shape against the header, 16-byte aligned offset, bounds, no
    /// overlap, no NaN or infinity in a float tensor: [`BlobError::NonFinite`]). It never
    /// panics and runs in time linear in the blob size.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BlobError> {
        if (bytes.as_ptr() as usize) % ALIGN != 0 {
            return Err(BlobError::Misaligned);
        }
        if bytes.len() < HEADER_LEN + 4 {
            return Err(BlobError::Truncated {
                need: HEADER_LEN + 4,
                have: bytes.len(),
            });
        }
        let header = Header::from_bytes(bytes)?;
        if header.total_len as usize != bytes.len() {
            return Err(BlobError::LengthMismatch {
                header: header.total_len as usize,
                actual: bytes.len(),
            });
        }
        let body = bytes.len() - 4;
        let stored = rd_u32(bytes, body);
        let computed = crc32(&bytes[..body]);
        if stored != computed {
            return Err(BlobError::BadCrc { stored, computed });
        }
        if header.flags & !(FLAG_PER_CHANNEL_INPUT | FLAG_ACT16 | FLAG_INPUT16) != 0
            || (header.flags != 0 && header.dtype != DType::Int8)
        {
            return Err(BlobError::BadHeader("unknown flags"));
        }
        let graph = crate::graph::graph_of(header.arch).is_some();
        if header.flags & FLAG_ACT16 != 0
            && (!(header.arch == Arch::MobileVlmV2 || header.arch == Arch::MobileVlmV1 || graph)
                || header.flags & FLAG_PER_CHANNEL_INPUT != 0)
        {
            return Err(BlobError::BadHeader(
                "16-bit activations (flag bit 1) exist for MobileVLM V1, V2 and mlp2x-gelu with a per-tensor input only",
            ));
        }
        if graph && header.flags != 0 && header.flags != FLAG_INPUT16 && header.flags != FLAG_ACT16
        {
            return Err(BlobError::BadHeader(
                "a graph architecture (mlp2x-gelu) takes either the 16-bit input (bit 2) or 16-bit activations (bit 1), no other flag",
            ));
        }
        if header.flags & FLAG_INPUT16 != 0
            && (header.arch == Arch::MobileVlmV2 || header.flags != FLAG_INPUT16)
        {
            return Err(BlobError::BadHeader(
                "a 16-bit input (flag bit 2) exists for ldp, MobileVLM V1 and mlp2x-gelu, with no other flag",
            ));
        }
        let config = config_of(&header)?;
        let specs = specs_flags(header.arch, header.dtype, header.flags);
        if header.n_tensors as usize != specs.len() {
            return Err(BlobError::BadTable(
                "tensor count does not match the architecture",
            ));
        }
        if header.table_offset as usize != HEADER_LEN {
            return Err(BlobError::BadHeader("tensor table must follow the header"));
        }
        let table_end = HEADER_LEN + ENTRY_LEN * specs.len();
        let data_start = table_end.div_ceil(ALIGN) * ALIGN;
        if header.data_offset as usize != data_start {
            return Err(BlobError::BadHeader(
                "data offset is not the aligned end of the table",
            ));
        }
        if data_start > body {
            return Err(BlobError::Truncated {
                need: data_start + 4,
                have: bytes.len(),
            });
        }
        let mut prev_end = data_start as u64;
        for (i, spec) in specs.iter().enumerate() {
            let at = HEADER_LEN + ENTRY_LEN * i;
            let e = TensorEntry::from_bytes(&bytes[at..at + ENTRY_LEN])?;
            let idx = i as u16;
            if e.index as usize != i {
                return Err(BlobError::BadTable("entries out of order"));
            }
            if e.elem != elem_type(spec, header.dtype) {
                return Err(BlobError::BadTable("element type does not match the dtype"));
            }
            let want = resolve_flags(
                spec.dims,
                header.c_in,
                header.c_out,
                header.squeeze,
                header.flags,
            );
            if e.rank as usize != spec.dims.len() {
                return Err(BlobError::ShapeMismatch { index: idx });
            }
            let n: u64 = want[..spec.dims.len()].iter().map(|&d| d as u64).product();
            if n * e.elem.size() as u64 != e.len as u64 {
                return Err(BlobError::ShapeMismatch { index: idx });
            }
            if e.offset as usize % ALIGN != 0 {
                return Err(BlobError::Misaligned);
            }
            let (start, end) = (e.offset as u64, e.offset as u64 + e.len as u64);
            if start < prev_end || end > body as u64 {
                return Err(BlobError::OutOfBounds { index: idx });
            }
            prev_end = end;
        }
        // Values only once the whole table is known to be consistent (a structural error is
        // reported as such, not as the garbage it makes a tensor read): one pass over each
        // float tensor, no NaN or infinity (all-ones exponent).
        for (i, spec) in specs.iter().enumerate() {
            let at = HEADER_LEN + ENTRY_LEN * i;
            let e = TensorEntry::from_bytes(&bytes[at..at + ENTRY_LEN])?;
            let start = e.offset as usize;
            let data = start
                .checked_add(e.len as usize)
                .and_then(|end| bytes.get(start..end))
                .ok_or(BlobError::OutOfBounds { index: i as u16 })?;
            let bad = match e.elem {
                ElemType::F32 => data
                    .chunks_exact(4)
                    .position(|b| rd_u32(b, 0) & 0x7f80_0000 == 0x7f80_0000),
                ElemType::F16 => data
                    .chunks_exact(2)
                    .position(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 == 0x7c00),
                _ => None,
            };
            if let Some(element) = bad {
                return Err(BlobError::NonFinite {
                    index: i as u16,
                    name: spec.name,
                    param: spec.param,
                    element,
                });
            }
        }
        let model = Model {
            bytes,
            header,
            config,
            specs,
        };
        if header.dtype == DType::Int8 {
            crate::quant::validate(&model)?;
        }
        Ok(model)
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.header.arch
    }
    /// The storage type.
    pub fn dtype(&self) -> DType {
        self.header.dtype
    }
    /// The typed configuration.
    pub fn config(&self) -> ModelConfig {
        self.config
    }
    /// The whole blob.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The tensor list of this model's architecture and dtype.
    pub fn specs(&self) -> &'static [TensorSpec] {
        self.specs
    }
    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.specs.len()
    }
    /// Spec, table entry and raw bytes of tensor `i`, or `None` past the end.
    pub fn tensor(&self, i: usize) -> Option<(TensorSpec, TensorEntry, &'a [u8])> {
        let spec = *self.specs.get(i)?;
        let at = HEADER_LEN + ENTRY_LEN * i;
        let e = TensorEntry::from_bytes(self.bytes.get(at..at + ENTRY_LEN)?).ok()?;
        let data = self
            .bytes
            .get(e.offset as usize..e.offset as usize + e.len as usize)?;
        Some((spec, e, data))
    }
    fn raw(&self, i: usize) -> Result<&'a [u8], Error> {
        self.tensor(i)
            .map(|t| t.2)
            .ok_or(Error::Blob(BlobError::BadTable(
                "tensor index out of range",
            )))
    }
    /// Dimensions of tensor `i` (outermost first, unused dims `0`), resolved from its spec and the
    /// header, or `None` past the end.
    pub fn tensor_dims(&self, i: usize) -> Option<[u32; 4]> {
        let spec = self.specs.get(i)?;
        Some(resolve_flags(
            spec.dims,
            self.header.c_in,
            self.header.c_out,
            self.header.squeeze,
            self.header.flags,
        ))
    }
    /// Index of the tensor named `prefix` + `suffix`, if the model has one.
    pub fn find(&self, prefix: &str, suffix: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.is(prefix, suffix))
    }
    /// Tensor `i` as f32s (it must be stored as f32).
    pub fn f32s(&self, i: usize) -> Result<&'a [f32], Error> {
        bytemuck::try_cast_slice(self.raw(i)?).map_err(|_| Error::Misaligned {
            what: "blob tensor",
        })
    }
    /// Tensor `i` as i32s.
    pub fn i32s(&self, i: usize) -> Result<&'a [i32], Error> {
        bytemuck::try_cast_slice(self.raw(i)?).map_err(|_| Error::Misaligned {
            what: "blob tensor",
        })
    }
    /// Tensor `i` as i16s.
    pub fn i16s(&self, i: usize) -> Result<&'a [i16], Error> {
        bytemuck::try_cast_slice(self.raw(i)?).map_err(|_| Error::Misaligned {
            what: "blob tensor",
        })
    }
    /// Tensor `i` as i8s.
    pub fn i8s(&self, i: usize) -> Result<&'a [i8], Error> {
        Ok(bytemuck::cast_slice(self.raw(i)?))
    }
    /// Tensor `i` as u8s.
    pub fn u8s(&self, i: usize) -> Result<&'a [u8], Error> {
        self.raw(i)
    }
    fn weights<W: Elem>(&self, i: usize) -> Result<&'a [W], Error> {
        bytemuck::try_cast_slice(self.raw(i)?).map_err(|_| Error::Misaligned {
            what: "blob tensor",
        })
    }

    /// Bytes of scratch arena [`Model::forward`] needs.
    pub fn scratch_bytes(&self) -> usize {
        match self.header.dtype {
            DType::F32 => self.config.float_scratch_len() * 4,
            DType::F16 => self.config.float_scratch_len() * 2,
            DType::Int8 if self.header.flags & FLAG_ACT16 != 0 => {
                crate::quant::a16::scratch_bytes(&self.config)
            }
            DType::Int8 if self.header.flags & FLAG_INPUT16 != 0 => {
                crate::quant::scratch_bytes_x16(&self.config)
            }
            DType::Int8 => crate::quant::scratch_bytes(&self.config),
        }
    }

    /// Elements of one input.
    pub fn input_len(&self) -> usize {
        self.config.input_len()
    }
    /// Elements of one output.
    pub fn output_len(&self) -> usize {
        self.config.output_len()
    }

    /// Runs the model on a channels-last f32 `input`, writing the f32 `output`.
    ///
    /// For int8 models the input is quantized with the model's input parameters and the output
    /// dequantized; use [`crate::quant`] for the integer-only entry points. `scratch` needs
    /// [`Model::scratch_bytes`] bytes, 4-byte aligned.
    ///
    /// Every input value must be finite: the first NaN or infinity is reported as
    /// [`Error::NonFiniteInput`] with its index, on the host and on a device alike (one
    /// comparison per input value, negligible next to the convolutions), and nothing is
    /// computed. The integer-only entry points take already quantized inputs and do not check.
    ///
    /// Memory besides `scratch`: without `std`, none on the heap, and the kernels' buffers on
    /// the stack (a few KiB on the devices; up to about 0.6 MiB for the x86-64 GEMMs). With
    /// `std` (host builds), each thread that runs an x86-64 pointwise GEMM keeps those buffers
    /// in a heap workspace instead (up to about 0.6 MiB, reused by every later call on that
    /// thread and freed when it exits), so the pass needs under 64 KiB of stack (measured on
    /// the real V1/V2 sizes) and runs on threads with small stacks (the AMX kernel's panels
    /// included). An int8 pass with a fused pointwise → LayerNorm (`ldp`, MobileVLM V1) also
    /// keeps that conv's 16-bit output there when `scratch` holds only part of it (up to 4 MiB,
    /// 2.3 MiB for V1), so the conv runs over all pixels at once instead of in chunks.
    pub fn forward(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut [u8],
    ) -> Result<(), Error> {
        if let Some(index) = crate::tensor::first_non_finite(input) {
            return Err(Error::NonFiniteInput { index });
        }
        let need = self.scratch_bytes();
        if scratch.len() < need {
            return Err(Error::ScratchTooSmall {
                need,
                have: scratch.len(),
            });
        }
        let scratch = &mut scratch[..need];
        match self.header.dtype {
            DType::F32 => {
                let s: &mut [f32] = bytemuck::try_cast_slice_mut(scratch)
                    .map_err(|_| Error::Misaligned { what: "scratch" })?;
                self.forward_float::<f32, f32>(input, output, s)
            }
            DType::F16 => {
                let s: &mut [f16] = bytemuck::try_cast_slice_mut(scratch)
                    .map_err(|_| Error::Misaligned { what: "scratch" })?;
                self.forward_float::<f16, f16>(input, output, s)
            }
            DType::Int8 => crate::quant::forward_f32(self, input, output, scratch),
        }
    }

    fn forward_float<W: Elem, A: Elem>(
        &self,
        input: &[f32],
        output: &mut [f32],
        s: &mut [A],
    ) -> Result<(), Error> {
        match self.config {
            ModelConfig::Ldp(cfg) => {
                let w = self.ldp_weights::<W>()?;
                ldp::forward(&cfg, &w, input, output, s)
            }
            ModelConfig::MobileVlmV1(cfg) => {
                let w = self.v1_weights::<W>()?;
                mobilevlm_v1::forward(&cfg, &w, input, output, s)
            }
            ModelConfig::MobileVlmV2(cfg) => {
                let w = self.v2_weights::<W>()?;
                mobilevlm_v2::forward(&cfg, &w, input, output, s)
            }
            ModelConfig::Graph(cfg) => {
                cfg.validate()?;
                crate::graph::float::forward_tensors(
                    crate::graph::definition(cfg.arch).ok_or(Error::Unsupported("no graph"))?,
                    cfg.dims(),
                    |k| self.graph_weights::<W>(k),
                    |k| self.f32s(k),
                    input,
                    output,
                    s,
                )
            }
        }
    }

    /// Float tensor `i` of a graph architecture's blob as weights of type `W` (which must be the
    /// blob's weight type).
    pub(crate) fn graph_weights<W: Elem>(&self, i: usize) -> Result<&'a [W], Error> {
        if self.header.dtype != W::DTYPE {
            return Err(Error::Unsupported("weights requested in another dtype"));
        }
        self.weights(i)
    }

    /// The weights of an `ldp` float model (`W` = `f32` or `f16`, matching the dtype).
    pub fn ldp_weights<W: Elem>(&self) -> Result<LdpWeights<'a, W>, Error> {
        self.check_float::<W>(Arch::Ldp)?;
        Ok(LdpWeights {
            pw1_w: self.weights(0)?,
            pw1_b: self.f32s(1)?,
            dw1_w: self.weights(2)?,
            dw1_b: self.f32s(3)?,
            pw2_w: self.weights(4)?,
            pw2_b: self.f32s(5)?,
            ln1_w: self.f32s(6)?,
            ln1_b: self.f32s(7)?,
            dw2_w: self.weights(8)?,
            dw2_b: self.f32s(9)?,
            pw3_w: self.weights(10)?,
            pw3_b: self.f32s(11)?,
            ln2_w: self.f32s(12)?,
            ln2_b: self.f32s(13)?,
        })
    }

    fn v1_block<W: Elem>(&self, base: usize) -> Result<V1BlockWeights<'a, W>, Error> {
        Ok(V1BlockWeights {
            dw_w: self.weights(base)?,
            ln1_w: self.f32s(base + 1)?,
            ln1_b: self.f32s(base + 2)?,
            se: SeWeights {
                fc1_w: self.weights(base + 3)?,
                fc1_b: self.f32s(base + 4)?,
                fc2_w: self.weights(base + 5)?,
                fc2_b: self.f32s(base + 6)?,
            },
            pw_w: self.weights(base + 7)?,
            ln2_w: self.f32s(base + 8)?,
            ln2_b: self.f32s(base + 9)?,
        })
    }

    /// The weights of a `mobilevlm-v1` float model.
    pub fn v1_weights<W: Elem>(&self) -> Result<V1Weights<'a, W>, Error> {
        self.check_float::<W>(Arch::MobileVlmV1)?;
        Ok(V1Weights {
            fc1_w: self.weights(0)?,
            fc1_b: self.f32s(1)?,
            fc2_w: self.weights(2)?,
            fc2_b: self.f32s(3)?,
            block1: self.v1_block(4)?,
            block2: self.v1_block(14)?,
        })
    }

    /// The weights of a `mobilevlm-v2` float model.
    pub fn v2_weights<W: Elem>(&self) -> Result<V2Weights<'a, W>, Error> {
        self.check_float::<W>(Arch::MobileVlmV2)?;
        Ok(V2Weights {
            fc1_w: self.weights(0)?,
            fc1_b: self.f32s(1)?,
            fc2_w: self.weights(2)?,
            fc2_b: self.f32s(3)?,
            peg_w: self.weights(4)?,
            peg_b: self.f32s(5)?,
        })
    }

    fn check_float<W: Elem>(&self, arch: Arch) -> Result<(), Error> {
        if self.header.arch != arch {
            return Err(Error::Unsupported(
                "weights requested for another architecture",
            ));
        }
        if self.header.dtype != W::DTYPE {
            return Err(Error::Unsupported("weights requested in another dtype"));
        }
        let _ = ElemType::F32;
        Ok(())
    }
}
