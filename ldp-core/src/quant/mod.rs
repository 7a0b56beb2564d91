//! The int8 path, following TFLite's quantization spec so that users' expectations carry over:
//!
//! * weights int8, symmetric, per output channel (zero point 0, range ±127);
//! * activations int8, asymmetric, per tensor — except the model input, which the quantizer
//!   may quantize per channel (MobileVLM's CLIP features have outlier channels); its per-channel
//!   scales are folded into the first pointwise layer's weights at convert time;
//! * biases int32 with scale `s_in · s_w`, input zero points folded in;
//! * int32 accumulation and requantization by a fixed-point multiplier and shift
//!   ([`fixed::requant`]), no floats anywhere between the quantized input and output;
//! * GELU, Hardswish and Hardsigmoid through 256-entry tables built at convert time;
//! * LayerNorm from integer statistics with an exact integer rsqrt ([`kernels::NormQ`]); a conv
//!   whose only consumer is a LayerNorm (in `ldp` the last two pointwise convs, in V1 the
//!   depthwise convs and projections) writes a **16-bit** intermediate instead of int8 ([`kernels::ConvOut`]):
//!   LayerNorm does not depend on its input's scale, so this drops one int8 rounding per
//!   LayerNorm (measured: held-out error −8…−14% on the `ldp` and V1 golden cases);
//! * skip additions as TFLite's ADD, resize and pooling keep their input's quantization and
//!   round as AVERAGE_POOL_2D; the SE gate is an 8-bit table ([`kernels::SeQ`]).
//!
//! MobileVLM V2 and graph-architecture blobs may instead carry **16-bit activations** with the
//! same int8 weights (TFLite's 16x8 mode, header flag bit 1, [`a16`], [`crate::graph::a16`]):
//! `ldp-quant` writes them when the calibration inputs are heavy-tailed, because neither has a
//! LayerNorm to tame the tails.
//! [`forward_f32_traced`] and [`crate::Model::forward`] run both kinds; the int8-boundary entry
//! points ([`forward_i8`], [`quantize_input`], [`dequantize_output`]) refuse a 16-bit blob with
//! `Error::Unsupported` (use [`a16::forward_i16`]).
//!
//! Determinism: see [`fixed`] — the int8 forward pass gives the same bits on every target.

pub mod a16;
pub mod fixed;
pub mod graph;
pub mod kernels;
/// The int8 blob layouts (tensor lists, `quant.meta` indices) — defined once, by the blob
/// format in [`crate::blob::int8`]; this alias keeps the old path.
pub use crate::blob::int8 as specs;

pub use graph::{input16_limit, scratch_bytes_i8, scratch_bytes_x16, Trace, Traced};

/// Whether this build runs the int8 pointwise and depthwise convolutions with the Arm DSP
/// kernels (`kernels::<op>::arm_dsp`: SMLAD/SXTB16, selected by `build.rs` for thumbv7em and
/// thumbv8m.main targets unless the feature `portable-int8` is on).
pub const ARM_DSP_KERNELS: bool = cfg!(ldp_arm_dsp);

/// Whether this build has the Helium (MVE) int8 pointwise kernel (`kernels::pointwise::mve`: the cargo
/// feature `mve` on a thumbv8m.main target with the DSP kernels); it runs unless
/// [`crate::kernels::cpu::set_mve`]`(false)`.
pub const ARM_MVE_KERNELS: bool = cfg!(ldp_arm_mve);

use crate::blob::{BlobError, Model, ModelConfig};
use crate::error::Error;
use kernels::ConvQ;

/// The conv whose weight tensor is tensor `w` of `m` — its `.bias` (if its spec has one) and its
/// `.mult` follow it — with the `quant.meta` shift word `word` ([`specs::conv_shifts`]).
pub(crate) fn conv_q<'a>(
    m: &Model<'a>,
    w: usize,
    word: i32,
    in_zero: i32,
    out_zero: i32,
    lut: Option<&'a [i8]>,
) -> Result<ConvQ<'a>, Error> {
    let has_bias = m.specs().get(w + 1).is_some_and(|s| s.ends_with(".bias"));
    let (shift, bias_shift) = specs::conv_shifts(word);
    Ok(ConvQ {
        weight: m.i8s(w)?,
        bias: if has_bias { m.i16s(w + 1)? } else { &[] },
        bias_shift,
        mult: m.u8s(w + 1 + has_bias as usize)?,
        shift,
        in_zero,
        out_zero,
        lut,
    })
}

/// The `quant.meta` indices of the conv shift words ([`specs::conv_shift_word`]) of an
/// architecture's int8 blob (the same for 16-bit-activation V2 blobs).
pub fn conv_shift_indices(arch: crate::Arch) -> &'static [usize] {
    if let Some(g) = crate::graph::graph_of(arch) {
        return g.conv_shifts;
    }
    match arch {
        crate::Arch::Ldp => crate::graph::ldp::GRAPH.conv_shifts,
        crate::Arch::MobileVlmV1 => crate::graph::mobilevlm_v1::GRAPH.conv_shifts,
        crate::Arch::MobileVlmV2 => crate::graph::mobilevlm_v2::GRAPH.conv_shifts,
        crate::Arch::Mlp2xGelu => &[], // returned above
    }
}

/// Semantic checks of an int8 blob beyond shapes: every zero point in `-128..=127`, every
/// shift in `1..=62`, every conv's bias shift in `0..=15` (nothing else in its shift word),
/// multipliers and LayerNorm epsilons non-negative, input scales finite and positive. (The kernels also use wrapping arithmetic, so even a blob that slipped past these
/// checks could not make them panic — only compute garbage.)
///
/// A 16-bit-activation V2 blob ([`a16`]) has its zero points at 0, two more shifts and
/// multipliers (the GELU's), saturations in `1..=32767`, and the accumulator guarantee —
/// `K · 127 · Q ≤ 2^30` for both pointwise inputs and every bias within `±2^29` (bias shifts at
/// most 14) — so that no `i32` accumulator can overflow.
pub(crate) fn validate(m: &Model<'_>) -> Result<(), BlobError> {
    let bad = BlobError::BadTable;
    let meta = m
        .find("quant.meta", "")
        .and_then(|i| m.i32s(i).ok())
        .ok_or(bad("int8 blob without quant.meta"))?;
    let scales = m
        .find("quant.scales", "")
        .and_then(|i| m.f32s(i).ok())
        .ok_or(bad("int8 blob without quant.scales"))?;
    if let ModelConfig::Graph(c) = m.config() {
        if a16::is_a16(m) {
            crate::graph::a16::validate(m, &c, meta, scales)?;
            return check_input_scale(m);
        }
        crate::graph::int8::validate(&c, meta, scales)?;
        check_input_scale(m)?;
        if graph::is_x16(m) {
            check_x16(m, meta, crate::graph::meta::shift(0))?;
        }
        return Ok(());
    }
    let graph_nodes = match m.config() {
        ModelConfig::Ldp(_) => Some(crate::graph::ldp::NODES),
        ModelConfig::MobileVlmV1(_) => Some(crate::graph::mobilevlm_v1::NODES),
        _ => None,
    };
    if let (Some(nodes), ModelConfig::MobileVlmV1(c)) = (graph_nodes, m.config()) {
        if a16::is_a16(m) {
            crate::graph::a16::validate_nodes(m, nodes, c.dims(), meta, scales)?;
            return check_input_scale(m);
        }
    }
    if let Some(nodes) = graph_nodes {
        crate::graph::int8::validate_nodes(nodes, meta, scales)?;
        check_input_scale(m)?;
        if graph::is_x16(m) {
            check_x16(m, meta, crate::graph::meta::node(nodes, 0).shift)?;
        }
        return Ok(());
    }
    let ModelConfig::MobileVlmV2(c) = m.config() else {
        return Err(bad("unreachable: every architecture is checked above"));
    };
    let nodes = crate::graph::mobilevlm_v2::nodes_for(c.tokens_in());
    if a16::is_a16(m) {
        crate::graph::a16::validate_appended(nodes, c.dims(), meta, scales)?;
    } else {
        crate::graph::int8::validate_nodes(nodes, meta, scales)?;
    }
    check_input_scale(m)?;
    if graph::is_x16(m) {
        return Err(bad("a 16-bit input on a V2 blob"));
    }
    Ok(())
}

/// The 16-bit input's accumulator guarantee: the saturation (`input.limit`, at most
/// `input16_limit`) bounds the products, and the first conv's biases (shift word at `quant.meta`
/// index `first`) stay within ±2^29 (bias shift at most 14).
fn check_x16(m: &Model<'_>, meta: &[i32], first: usize) -> Result<(), BlobError> {
    let bad = BlobError::BadTable;
    let (_, bias_shift) = specs::conv_shifts(meta.get(first).copied().unwrap_or(-1));
    if bias_shift > kernels::MAX_BIAS_SHIFT - 1 {
        return Err(bad(
            "the first conv of a 16-bit-input blob has a bias shift above 14",
        ));
    }
    let limit = m
        .find("input.limit", "")
        .and_then(|i| m.i32s(i).ok())
        .ok_or(bad("no input.limit"))?;
    let (c_in, _) = m.config().channels();
    if limit.len() != 1 || !(1..=graph::input16_limit(c_in)).contains(&limit[0]) {
        return Err(bad(
            "a 16-bit input's saturation is outside 1..=input16_limit(c_in)",
        ));
    }
    Ok(())
}

/// Every input scale finite and positive.
fn check_input_scale(m: &Model<'_>) -> Result<(), BlobError> {
    let bad = BlobError::BadTable;
    let scale = m
        .find("input.scale", "")
        .and_then(|i| m.f32s(i).ok())
        .ok_or(bad("no input.scale"))?;
    if scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(bad("an input scale is not finite and positive"));
    }
    Ok(())
}

/// Scratch bytes of the int8 forward pass with f32 input and output.
pub(crate) const fn scratch_bytes(cfg: &ModelConfig) -> usize {
    graph::scratch_bytes(cfg)
}

/// f32-in, f32-out int8 forward pass.
pub(crate) fn forward_f32(
    m: &Model<'_>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [u8],
) -> Result<(), Error> {
    forward_f32_traced(m, input, output, scratch, None)
}

/// f32-in, f32-out int8 forward pass with a per-layer observer.
pub fn forward_f32_traced(
    m: &Model<'_>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [u8],
    trace: Trace<'_>,
) -> Result<(), Error> {
    if a16::is_a16(m) {
        return a16::forward_f32(m, input, output, scratch, trace);
    }
    let cfg = m.config();
    let x16 = graph::is_x16(m);
    let need = if x16 {
        graph::scratch_bytes_x16(&cfg)
    } else {
        graph::scratch_bytes(&cfg)
    };
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    // Layout: the int8 scratch, the quantized input (int8, or 16-bit with `FLAG_INPUT16`), the
    // int8 output, as `scratch_bytes` / `scratch_bytes_x16` count them.
    let (work, rest) = scratch.split_at_mut(graph::scratch_bytes_i8(&cfg));
    let (xq, yq) = rest.split_at_mut(graph::input_bytes(&cfg, x16));
    let yq: &mut [i8] = &mut bytemuck::cast_slice_mut(yq)[..cfg.output_len()];
    if x16 {
        let (xq, _) = graph::split16(xq, cfg.input_len())?;
        graph::quantize_input16(m, input, xq)?;
        graph::forward_x16(m, xq, yq, work, trace)?;
    } else {
        let xq: &mut [i8] = &mut bytemuck::cast_slice_mut(xq)[..cfg.input_len()];
        graph::quantize_input(m, input, xq)?;
        graph::forward_i8(m, xq, yq, work, trace)?;
    }
    graph::dequantize_output(m, yq, output)
}

/// The integer-only forward pass: int8 input (quantized with the blob's `input.scale`/`input.zero`)
/// to int8 output. `scratch` needs [`scratch_bytes_i8`] bytes.
pub fn forward_i8(
    m: &Model<'_>,
    input: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
) -> Result<(), Error> {
    graph::forward_i8(m, input, output, scratch, None)
}

/// [`forward_i8`] with a per-layer observer: `trace` is called after each layer (see [`Trace`]),
/// e.g. to measure each layer on a board.
pub fn forward_i8_traced(
    m: &Model<'_>,
    input: &[i8],
    output: &mut [i8],
    scratch: &mut [u8],
    trace: Trace<'_>,
) -> Result<(), Error> {
    graph::forward_i8(m, input, output, scratch, trace)
}

/// The integer forward pass of a blob with a 16-bit input
/// ([`crate::blob::specs::FLAG_INPUT16`]): input from [`quantize_input16`], int8 output.
/// `scratch` needs [`scratch_bytes_i8`] bytes.
pub fn forward_x16(
    m: &Model<'_>,
    input: &[i16],
    output: &mut [i8],
    scratch: &mut [u8],
) -> Result<(), Error> {
    graph::forward_x16(m, input, output, scratch, None)
}

/// [`forward_x16`] with a per-layer observer (see [`forward_i8_traced`]).
pub fn forward_x16_traced(
    m: &Model<'_>,
    input: &[i16],
    output: &mut [i8],
    scratch: &mut [u8],
    trace: Trace<'_>,
) -> Result<(), Error> {
    graph::forward_x16(m, input, output, scratch, trace)
}

/// Whether an int8 blob has a 16-bit input ([`crate::blob::specs::FLAG_INPUT16`]).
pub fn is_x16(m: &Model<'_>) -> bool {
    graph::is_x16(m)
}

/// Quantizes a channels-last f32 input to a [`crate::blob::specs::FLAG_INPUT16`] blob's
/// 16-bit input.
pub fn quantize_input16(m: &Model<'_>, x: &[f32], xq: &mut [i16]) -> Result<(), Error> {
    graph::quantize_input16(m, x, xq)
}

/// Quantizes a channels-last f32 input as the model expects.
pub fn quantize_input(m: &Model<'_>, x: &[f32], xq: &mut [i8]) -> Result<(), Error> {
    graph::quantize_input(m, x, xq)
}

/// Dequantizes an int8 output.
pub fn dequantize_output(m: &Model<'_>, yq: &[i8], y: &mut [f32]) -> Result<(), Error> {
    graph::dequantize_output(m, yq, y)
}

/// [`quantize_input`] for an `ldp` input in PyTorch's channels-first layout (`[c_in][h][w]`)
/// into the channels-last `xq` that [`forward_i8`] takes: on x86-64 with AVX2 one pass
/// (quantization and a register transpose), else quantized in place order and the int8
/// values transposed through `tmp` (`input_len` bytes). The same bits as
/// `tensor::nchw_to_nhwc` followed by [`quantize_input`]. A non-finite value is refused
/// (`Error::NonFiniteInput`, its index in `x`, channels-first), where [`quantize_input`] maps
/// it as `as i32` does. `Error::Unsupported` for other architectures (their inputs are tokens,
/// already channels-last).
pub fn quantize_input_nchw(
    m: &Model<'_>,
    x: &[f32],
    xq: &mut [i8],
    tmp: &mut [i8],
) -> Result<(), Error> {
    graph::quantize_input_nchw(m, x, xq, tmp)
}

/// [`quantize_input_nchw`] of the input channels `ch0..ch0 + g` only (`x`: those `g` channels,
/// `[g][h][w]`, whole channels), written to their places in the whole channels-last `xq`
/// (`input_len` bytes; the other channels untouched): for reading a channels-first sample in
/// channel groups that stay in cache (`ldp-quant run` does). Quantizing every group gives the
/// bits of [`quantize_input_nchw`]; a non-finite value is refused with its index in the whole
/// input's channels-first order.
pub fn quantize_input_nchw_part(
    m: &Model<'_>,
    x: &[f32],
    ch0: usize,
    xq: &mut [i8],
) -> Result<(), Error> {
    graph::quantize_input_nchw_part(m, x, ch0, xq)
}

/// [`dequantize_output`] to PyTorch's channels-first layout (`[c_out][h2][w2]`) for an `ldp`
/// blob: transposes the int8 output through `tmp` (`output_len` bytes), then dequantizes. The
/// same bits as [`dequantize_output`] followed by `tensor::nhwc_to_nchw`.
pub fn dequantize_output_nchw(
    m: &Model<'_>,
    yq: &[i8],
    y: &mut [f32],
    tmp: &mut [i8],
) -> Result<(), Error> {
    graph::dequantize_output_nchw(m, yq, y, tmp)
}
