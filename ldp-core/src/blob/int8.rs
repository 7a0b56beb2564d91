//! Tensor lists of int8 blobs, and the index layout of each architecture's `quant.meta`
//! (`i32`) and `quant.scales` (`f32`) arrays. Index `i` of `quant.scales` is the real scale of
//! the activation whose zero point is `quant.meta[i]` (0 elsewhere).
//!
//! The graph architectures' lists and layouts are derived from their nodes
//! ([`crate::graph::int8_specs`], [`crate::graph::meta`]); what is left here is V2's
//! 16-bit-activation form and the conv shift word. A conv is `NAME.weight` (`i8`), `NAME.bias`
//! (`i16`, absent for a depthwise conv PyTorch defines without bias: its kernel subtracts the
//! input zero point itself) and `NAME.mult` (`u8`), and its shift entry of `quant.meta` is a
//! shift word ([`conv_shifts`]): the requantization shift and the bias shift.

use crate::blob::format::ElemType;
use crate::blob::specs::{Dim, ElemOf, TensorSpec};
use Dim::Lit;

const fn t(name: &'static str, e: ElemType, dims: &'static [Dim]) -> TensorSpec {
    TensorSpec {
        name,
        param: "",
        elem: ElemOf::Fixed(e),
        dims,
    }
}
const I16: ElemType = ElemType::I16;
const I32: ElemType = ElemType::I32;
const F32: ElemType = ElemType::F32;

/// The `quant.meta` word of a conv: `shift | bias_shift << 8` — the requantization shift
/// (`1..=62`) in bits 0–7, the left shift of the stored `i16` biases (`0..=15`,
/// [`crate::quant::kernels::MAX_BIAS_SHIFT`]) in bits 8–15, zero above.
pub const fn conv_shift_word(shift: i32, bias_shift: u32) -> i32 {
    (shift & 0xff) | (((bias_shift & 0xff) as i32) << 8)
}

/// `(shift, bias_shift)` of a conv's `quant.meta` word ([`conv_shift_word`]).
pub const fn conv_shifts(word: i32) -> (i32, u32) {
    (word & 0xff, ((word >> 8) & 0xff) as u32)
}

/// Indices into `quant.meta` / `quant.scales` of `mobilevlm-v2`.
pub mod v2_meta {
    #![allow(missing_docs)]
    pub const Z_X: usize = 0;
    pub const FC1_SHIFT: usize = 1;
    pub const Z_H1P: usize = 2;
    pub const Z_H1: usize = 3;
    pub const FC2_SHIFT: usize = 4;
    pub const Z_M: usize = 5;
    pub const PEG_SHIFT: usize = 6;
    pub const Z_D: usize = 7;
    pub const ADD_MA: usize = 8;
    pub const ADD_MB: usize = 9;
    pub const ADD_SHIFT: usize = 10;
    pub const Z_Y: usize = 11;
    pub const LEN: usize = 12;
    /// 16-bit-activation blobs only ([`crate::quant::a16`]): the input's saturation `±Q_X`.
    pub const Q_X: usize = 12;
    /// The GELU output's saturation `±Q_H1` (it feeds `fc2`, possibly through the pool).
    pub const Q_H1: usize = 13;
    /// GELU table position multiplier and shift.
    pub const GELU_PM: usize = 14;
    pub const GELU_PS: usize = 15;
    /// GELU identity (right of the table) multiplier and shift.
    pub const GELU_IM: usize = 16;
    pub const GELU_IS: usize = 17;
    /// Length of `quant.meta` of a 16-bit-activation blob.
    pub const LEN_A16: usize = 18;
}

/// Tensors of a `mobilevlm-v2` blob with 16-bit activations ([`crate::quant::a16`], header flag
/// [`crate::blob::specs::FLAG_ACT16`]): the int8 list with a 513-entry `i16` GELU table and
/// the longer `quant.meta`/`quant.scales`.
pub const V2_A16: &[TensorSpec] = &{
    const INT8: &[TensorSpec] = crate::graph::mobilevlm_v2::GRAPH.int8;
    let mut out = [INT8[0]; INT8.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = INT8[i];
        i += 1;
    }
    // Indices in the int8 list: 5 `gelu.lut`, 12 `quant.scales`, 13 `quant.meta` (a mismatch fails
    // every a16 blob test: the writer fills tensors by these names).
    out[5] = t(
        "gelu.lut16",
        I16,
        &[Lit(crate::quant::a16::GELU16_LEN as u32)],
    );
    out[12] = t("quant.scales", F32, &[Lit(v2_meta::LEN_A16 as u32)]);
    out[13] = t("quant.meta", I32, &[Lit(v2_meta::LEN_A16 as u32)]);
    out
};

/// Names of the `quant.meta` entries of `v2`, by index (`Z_*` are zero points; their
/// scale is at the same index of `quant.scales`).
pub const V2_META_NAMES: [&str; v2_meta::LEN] = [
    "Z_X",
    "FC1_SHIFT",
    "Z_H1P",
    "Z_H1",
    "FC2_SHIFT",
    "Z_M",
    "PEG_SHIFT",
    "Z_D",
    "ADD_MA",
    "ADD_MB",
    "ADD_SHIFT",
    "Z_Y",
];

/// Names of the `quant.meta` entries of a 16-bit-activation `mobilevlm-v2` blob.
pub const V2_A16_META_NAMES: [&str; v2_meta::LEN_A16] = {
    let extra = ["Q_X", "Q_H1", "GELU_PM", "GELU_PS", "GELU_IM", "GELU_IS"];
    let mut out = [""; v2_meta::LEN_A16];
    let mut i = 0;
    while i < out.len() {
        out[i] = if i < v2_meta::LEN {
            V2_META_NAMES[i]
        } else {
            extra[i - v2_meta::LEN]
        };
        i += 1;
    }
    out
};

/// Names of the `quant.meta` entries of a blob with these header flags.
pub fn meta_names_flags(arch: crate::Arch, flags: u16) -> &'static [&'static str] {
    if arch == crate::Arch::MobileVlmV2 && flags & crate::blob::specs::FLAG_ACT16 != 0 {
        return &V2_A16_META_NAMES;
    }
    meta_names(arch)
}

/// Names of the `quant.meta` entries of an architecture's int8 blob (header flags 0); empty for
/// a graph architecture, whose layout is [`crate::graph::meta`] over its nodes.
pub fn meta_names(arch: crate::Arch) -> &'static [&'static str] {
    match arch {
        crate::Arch::Ldp | crate::Arch::Mlp2xGelu | crate::Arch::MobileVlmV1 => &[],
        crate::Arch::MobileVlmV2 => &V2_META_NAMES,
    }
}
