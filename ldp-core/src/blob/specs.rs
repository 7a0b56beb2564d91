//! Which tensors a blob holds, in which order, with which shapes — per architecture and dtype.
//! The reader checks every table entry against this list; the writer emits exactly this list.

use super::format::{Arch, DType, ElemType};

/// A symbolic dimension, resolved against the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// `c_in`.
    Cin,
    /// `c_out`.
    Cout,
    /// The SE squeeze width.
    S,
    /// A literal.
    Lit(u32),
    /// `c_in` when the input is quantized per channel (header flag bit 0), else 1.
    CinQ,
    /// The channel count of the `ldp` skip source's quantization parameters: `c_in` when the
    /// skip is the (per-channel) input itself, else 1.
    SkipQ,
}

/// Header flag bit 0: the int8 model input is quantized per channel.
pub const FLAG_PER_CHANNEL_INPUT: u16 = 1;
/// Header flag bit 1: an int8 MobileVLM V1, V2 or graph-architecture blob with 16-bit activations
/// ([`crate::quant::a16`], [`crate::graph::a16`]; not combined with another bit).
pub const FLAG_ACT16: u16 = 2;
/// Header flag bit 2: an int8 `ldp`, MobileVLM V1 or graph-architecture blob whose model input
/// is quantized to 16 bits (per tensor, zero point 0, saturated to [`crate::quant::input16_limit`]); everything
/// after the first pointwise conv (and the `ldp` skip resize) is the int8 graph. Chosen by the
/// quantizer for heavy-tailed inputs. Not combined with bits 0 or 1.
pub const FLAG_INPUT16: u16 = 4;

/// The element type of a spec entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemOf {
    /// The model's weight type: f32, f16 (or i8 for int8 models).
    Weight,
    /// A fixed type.
    Fixed(ElemType),
}

/// One expected tensor.
///
/// Its key is `name` when `param` is empty, else `name.param`: the tensors of architectures
/// written as a graph ([`crate::graph`]) are named by their node and the parameter
/// (`0` + `weight` = `0.weight`), so the node name is written once, in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSpec {
    /// The PyTorch state-dict key (without prefix), or a derived name for quantization data;
    /// for graph architectures the node name.
    pub name: &'static str,
    /// The parameter of node `name` (`weight`, `bias`, `mult`, `lut`, …), or empty when `name`
    /// is the whole key.
    pub param: &'static str,
    /// Element type.
    pub elem: ElemOf,
    /// Shape, outermost first.
    pub dims: &'static [Dim],
}

impl TensorSpec {
    /// Whether the key is `prefix` followed by `suffix` (e.g. `0` + `.weight`).
    pub fn is(&self, prefix: &str, suffix: &str) -> bool {
        let key_len = self.key_len();
        key_len == prefix.len() + suffix.len()
            && self.key_bytes().eq(prefix.bytes().chain(suffix.bytes()))
    }
    /// Whether the key ends with `suffix` (e.g. `.bias`).
    pub fn ends_with(&self, suffix: &str) -> bool {
        let key_len = self.key_len();
        suffix.len() <= key_len
            && self
                .key_bytes()
                .skip(key_len - suffix.len())
                .eq(suffix.bytes())
    }
    fn key_len(&self) -> usize {
        if self.param.is_empty() {
            self.name.len()
        } else {
            self.name.len() + 1 + self.param.len()
        }
    }
    fn key_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let dot: &[u8] = if self.param.is_empty() { b"" } else { b"." };
        self.name
            .bytes()
            .chain(dot.iter().copied())
            .chain(self.param.bytes())
    }
}

/// Writes the key (`name` or `name.param`).
impl core::fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.param.is_empty() {
            f.write_str(self.name)
        } else {
            write!(f, "{}.{}", self.name, self.param)
        }
    }
}

/// The tensor list of a model of this architecture and dtype (header flags 0).
pub fn specs(arch: Arch, dtype: DType) -> &'static [TensorSpec] {
    specs_flags(arch, dtype, 0)
}

/// The tensor list of a model of this architecture, dtype and header flags.
pub fn specs_flags(arch: Arch, dtype: DType, flags: u16) -> &'static [TensorSpec] {
    if let Some(g) = crate::graph::graph_of(arch) {
        return match dtype {
            DType::F32 | DType::F16 => g.float,
            DType::Int8 if flags & FLAG_ACT16 != 0 => g.int8_a16,
            DType::Int8 if flags & FLAG_INPUT16 != 0 => g.int8_x16,
            DType::Int8 => g.int8,
        };
    }
    if flags & FLAG_ACT16 != 0 && arch == Arch::MobileVlmV2 && dtype == DType::Int8 {
        return crate::graph::mobilevlm_v2::GRAPH.int8_a16;
    }
    if arch == Arch::MobileVlmV2 {
        let g = &crate::graph::mobilevlm_v2::GRAPH;
        return match dtype {
            DType::F32 | DType::F16 => g.float,
            // No 16-bit-input form: the tensor table of such a header is the int8 one, and the
            // semantic checks refuse the flag.
            DType::Int8 => g.int8,
        };
    }
    let g = match arch {
        Arch::Ldp => &crate::graph::ldp::GRAPH,
        Arch::MobileVlmV1 => &crate::graph::mobilevlm_v1::GRAPH,
        Arch::Mlp2xGelu | Arch::MobileVlmV2 => return &[], // returned above
    };
    match dtype {
        DType::F32 | DType::F16 => g.float,
        // MobileVLM V1's 16-bit activations (`ldp` has none: its tensor table of such a header
        // is the int8 one, and the header check refuses the flag).
        DType::Int8 if flags & FLAG_ACT16 != 0 && arch == Arch::MobileVlmV1 => g.int8_a16,
        DType::Int8 if flags & FLAG_INPUT16 != 0 => g.int8_x16,
        DType::Int8 => g.int8,
    }
}

/// The element type of `spec` in a model of `dtype`.
pub const fn elem_type(spec: &TensorSpec, dtype: DType) -> ElemType {
    match spec.elem {
        ElemOf::Fixed(e) => e,
        ElemOf::Weight => match dtype {
            DType::F32 => ElemType::F32,
            DType::F16 => ElemType::F16,
            DType::Int8 => ElemType::I8,
        },
    }
}

/// Resolves a symbolic shape against the header's sizes (flags 0).
pub fn resolve(dims: &[Dim], c_in: u32, c_out: u32, s: u32) -> [u32; 4] {
    resolve_flags(dims, c_in, c_out, s, 0)
}

/// Resolves a symbolic shape against the header's sizes and flags.
pub fn resolve_flags(dims: &[Dim], c_in: u32, c_out: u32, s: u32, flags: u16) -> [u32; 4] {
    let per_ch = flags & FLAG_PER_CHANNEL_INPUT != 0;
    let mut out = [0u32; 4];
    for (o, d) in out.iter_mut().zip(dims) {
        *o = match *d {
            Dim::Cin => c_in,
            Dim::Cout => c_out,
            Dim::S => s,
            Dim::Lit(v) => v,
            Dim::CinQ => {
                if per_ch {
                    c_in
                } else {
                    1
                }
            }
            Dim::SkipQ => {
                if per_ch && c_in == c_out {
                    c_in
                } else {
                    1
                }
            }
        };
    }
    out
}
