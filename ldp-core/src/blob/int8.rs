//! Tensor lists of int8 blobs, and the index layout of each architecture's `quant.meta`
//! (`i32`) and `quant.scales` (`f32`) arrays. Index `i` of `quant.scales` is the real scale of
//! the activation whose zero point is `quant.meta[i]` (0 elsewhere).
//!
//! A conv is `NAME.weight` (`i8`), `NAME.bias` (`i16`, absent for the convs PyTorch defines
//! without bias whose input zero point the kernel subtracts itself: MobileVLM V1's depthwise
//! convs) and `NAME.mult` (`u8`), and its `*_SHIFT` entry of `quant.meta` is a shift word
//! ([`conv_shifts`]): the requantization shift and the bias shift.

use crate::blob::format::ElemType;
use crate::blob::specs::{Dim, ElemOf, TensorSpec};
use Dim::{Cin, CinQ, Cout, Lit, S};

const fn t(name: &'static str, e: ElemType, dims: &'static [Dim]) -> TensorSpec {
    TensorSpec {
        name,
        param: "",
        elem: ElemOf::Fixed(e),
        dims,
    }
}
const I8: ElemType = ElemType::I8;
const I16: ElemType = ElemType::I16;
const U8: ElemType = ElemType::U8;
const I32: ElemType = ElemType::I32;
const F32: ElemType = ElemType::F32;
const VEC: &[Dim] = &[Cout];
const LUT: &[Dim] = &[Lit(256)];

macro_rules! conv {
    ($n:expr, $dims:expr, $o:expr) => {
        [
            t(concat!($n, ".weight"), I8, $dims),
            t(concat!($n, ".bias"), I16, $o),
            t(concat!($n, ".mult"), U8, $o),
        ]
    };
}

/// A conv without bias tensor: `[weight, mult]`.
macro_rules! conv_nb {
    ($n:expr, $dims:expr, $o:expr) => {
        [
            t(concat!($n, ".weight"), I8, $dims),
            t(concat!($n, ".mult"), U8, $o),
        ]
    };
}

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
macro_rules! norm {
    ($n:expr) => {
        [
            t(concat!($n, ".gamma"), I16, VEC),
            t(concat!($n, ".beta"), I16, VEC),
        ]
    };
}

/// Indices into `quant.meta` / `quant.scales` of `mobilevlm-v1`. Block `b` (0 or 1) entries are
/// at `BLOCK0 + b·BLOCK_LEN + offset`.
pub mod v1_meta {
    #![allow(missing_docs)]
    pub const Z_X: usize = 0;
    pub const FC1_SHIFT: usize = 1;
    pub const Z_H1P: usize = 2;
    pub const Z_H1: usize = 3;
    pub const FC2_SHIFT: usize = 4;
    pub const Z_Z: usize = 5;
    pub const ADD_MA: usize = 6;
    pub const ADD_MB: usize = 7;
    pub const ADD_SHIFT: usize = 8;
    pub const Z_Z2: usize = 9;
    pub const BLOCK0: usize = 10;
    // Offsets inside a block:
    pub const DW_SHIFT: usize = 0;
    pub const Z_D: usize = 1;
    pub const LN1_SHIFT: usize = 2;
    pub const LN1_EPS: usize = 3;
    pub const Z_N: usize = 4;
    pub const Z_HS: usize = 5;
    pub const SE_FC1_SHIFT: usize = 6;
    pub const Z_SH: usize = 7;
    pub const SE_FC2_SHIFT: usize = 8;
    pub const Z_SG: usize = 9;
    pub const SE_MULT: usize = 10;
    pub const SE_SHIFT: usize = 11;
    pub const Z_SE: usize = 12;
    pub const PW_SHIFT: usize = 13;
    pub const Z_PW: usize = 14;
    pub const LN2_SHIFT: usize = 15;
    pub const LN2_EPS: usize = 16;
    pub const Z_U: usize = 17;
    pub const BLOCK_LEN: usize = 18;
    pub const LEN: usize = BLOCK0 + 2 * BLOCK_LEN;
}

macro_rules! v1_block {
    ($b:literal) => {{
        let dw = conv_nb!(concat!("mb_block.", $b, ".block.0.0"), &[Cout, Lit(9)], VEC);
        let n1 = norm!(concat!("mb_block.", $b, ".block.0.1"));
        let f1 = conv!(concat!("mb_block.", $b, ".block.1.fc1"), &[S, Cout], &[S]);
        let f2 = conv!(concat!("mb_block.", $b, ".block.1.fc2"), &[Cout, S], VEC);
        let pw = conv!(concat!("mb_block.", $b, ".block.2.0"), &[Cout, Cout], VEC);
        let n2 = norm!(concat!("mb_block.", $b, ".block.2.1"));
        [
            dw[0],
            dw[1],
            n1[0],
            n1[1],
            t(concat!("mb_block.", $b, ".hswish.lut"), I8, LUT),
            f1[0],
            f1[1],
            f1[2],
            f2[0],
            f2[1],
            f2[2],
            t(concat!("mb_block.", $b, ".block.1.gate.lut"), U8, LUT),
            pw[0],
            pw[1],
            pw[2],
            n2[0],
            n2[1],
        ]
    }};
}

/// int8 tensors of `mobilevlm-v1`.
pub const V1_INT8: &[TensorSpec] = &{
    let f1 = conv!("mlp.1", &[Cout, Cin], VEC);
    let f3 = conv!("mlp.3", &[Cout, Cout], VEC);
    let b1 = v1_block!("1");
    let b2 = v1_block!("2");
    let mut out = [t("", F32, &[]); 9 + 34 + 2];
    let head = [
        t("input.scale", F32, &[CinQ]),
        t("input.zero", I8, &[CinQ]),
        f1[0],
        f1[1],
        f1[2],
        t("gelu.lut", I8, LUT),
        f3[0],
        f3[1],
        f3[2],
    ];
    let mut i = 0;
    while i < 9 {
        out[i] = head[i];
        i += 1;
    }
    let mut j = 0;
    while j < 17 {
        out[9 + j] = b1[j];
        out[26 + j] = b2[j];
        j += 1;
    }
    out[43] = t("quant.scales", F32, &[Lit(v1_meta::LEN as u32)]);
    out[44] = t("quant.meta", I32, &[Lit(v1_meta::LEN as u32)]);
    out
};

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

/// The tensor list of an int8 blob with a 16-bit input ([`crate::blob::specs::FLAG_INPUT16`]):
/// `base` with its `input.zero` (entry 1) replaced by `input.limit`, one `i32`: the input's
/// saturation (at most [`crate::quant::input16_limit`]; the zero point is 0). The lists differ
/// in a name and a type, so a flipped flag bit cannot pass for the other layout.
const fn with_input16<const N: usize>(base: &[TensorSpec]) -> [TensorSpec; N] {
    let mut out = [base[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = base[i];
        i += 1;
    }
    let name = out[1].name.as_bytes();
    let want = b"input.zero";
    assert!(name.len() == want.len());
    let mut k = 0;
    while k < want.len() {
        assert!(name[k] == want[k]);
        k += 1;
    }
    out[1] = t("input.limit", I32, &[Lit(1)]);
    out
}

/// int8 tensors of `mobilevlm-v1` with a 16-bit input (`with_input16`).
pub const V1_INT8_X16: &[TensorSpec] = &with_input16::<{ V1_INT8.len() }>(V1_INT8);

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

/// Names of the `quant.meta` entries of `mobilevlm-v1`, by index (`B1.`/`B2.` = `mb_block.1`/`.2`).
pub const V1_META_NAMES: [&str; v1_meta::LEN] = [
    "Z_X",
    "FC1_SHIFT",
    "Z_H1P",
    "Z_H1",
    "FC2_SHIFT",
    "Z_Z",
    "ADD_MA",
    "ADD_MB",
    "ADD_SHIFT",
    "Z_Z2",
    "B1.DW_SHIFT",
    "B1.Z_D",
    "B1.LN1_SHIFT",
    "B1.LN1_EPS",
    "B1.Z_N",
    "B1.Z_HS",
    "B1.SE_FC1_SHIFT",
    "B1.Z_SH",
    "B1.SE_FC2_SHIFT",
    "B1.Z_SG",
    "B1.SE_MULT",
    "B1.SE_SHIFT",
    "B1.Z_SE",
    "B1.PW_SHIFT",
    "B1.Z_PW",
    "B1.LN2_SHIFT",
    "B1.LN2_EPS",
    "B1.Z_U",
    "B2.DW_SHIFT",
    "B2.Z_D",
    "B2.LN1_SHIFT",
    "B2.LN1_EPS",
    "B2.Z_N",
    "B2.Z_HS",
    "B2.SE_FC1_SHIFT",
    "B2.Z_SH",
    "B2.SE_FC2_SHIFT",
    "B2.Z_SG",
    "B2.SE_MULT",
    "B2.SE_SHIFT",
    "B2.Z_SE",
    "B2.PW_SHIFT",
    "B2.Z_PW",
    "B2.LN2_SHIFT",
    "B2.LN2_EPS",
    "B2.Z_U",
];

/// Whether the `quant.meta` entry called `name` (see [`meta_names`]) is the zero point of a
/// 16-bit LayerNorm input ([`crate::quant::kernels::ConvOut`]) rather than of an int8 activation.
pub fn is_wide_meta(arch: crate::Arch, name: &str) -> bool {
    match arch {
        crate::Arch::MobileVlmV1 => matches!(name, "B1.Z_D" | "B1.Z_PW" | "B2.Z_D" | "B2.Z_PW"),
        crate::Arch::Ldp | crate::Arch::MobileVlmV2 | crate::Arch::Mlp2xGelu => false,
    }
}

/// The `quant.meta` entry names of an architecture.
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
        crate::Arch::Ldp | crate::Arch::Mlp2xGelu => &[],
        crate::Arch::MobileVlmV1 => &V1_META_NAMES,
        crate::Arch::MobileVlmV2 => &V2_META_NAMES,
    }
}
