//! 16-bit activations for graph architectures ([`crate::blob::specs::FLAG_ACT16`]): the scheme
//! of MobileVLM V2's heavy-tailed path ([`crate::quant::a16`]) over a graph's nodes. Symmetric
//! `i16` activations (zero point 0) and int8 weights; each Linear is
//! [`crate::quant::a16::pointwise16`], a fused GELU the interpolated 513-entry
//! table [`Gelu16`]. For inputs whose outlier tokens would clip int8 activations (the quantizer
//! chooses it for heavy-tailed calibration inputs).
//!
//! `quant.meta` uses [`super::meta`]'s layout with these meanings (every zero point is 0):
//! `Z_X` holds the input's saturation `Q` (`1..=32767`, with `c_in · 127 · Q ≤ 2^30`),
//! `pre(i)` holds 0, `out(i)` holds the saturation of node `i`'s output (the next node's input
//! budget, or 32767 for the model output); `quant.scales` at the same indices are the real
//! scales. A GELU node's `name.gelu16` holds its position multiplier and shift and its identity
//! multiplier and shift.
//!
//! The f32 boundary and the scratch sizes are [`crate::quant::a16`]'s, which dispatches here.

use super::checks::MetaChecks;
use super::plan::{input_shape, plan, Around, Dims, Place, Plan, Scheme};
use super::{meta, Act, GraphConfig, Node, Op, Resolved};
use crate::blob::{BlobError, Model, ModelConfig};
use crate::error::{check_len, Error};
use crate::kernels::norm::a16::{layer_norm16_inplace, Hswish16, Norm16};
use crate::kernels::se::a16::{se16_tmp_len, squeeze_excite16, Se16};
use crate::quant::a16::{
    dequantize16, gelu16_inplace, is_a16, pointwise16, quantize16, Gelu16, MAX16, PRODUCT_BUDGET,
};
use crate::quant::graph::{idx, trace16, Params};
use crate::quant::kernels::MAX_BIAS_SHIFT;
use crate::quant::Trace;

/// Bytes of scratch of [`forward_i16`]: the [`Scheme::Int16`] plan of the graph's nodes (one
/// 16-bit intermediate map for two nodes; 0 for a configuration that does not validate).
pub const fn scratch_bytes_i16(cfg: &GraphConfig) -> usize {
    if cfg.validate().is_err() {
        return 0;
    }
    scratch_bytes_nodes16(cfg.nodes(), cfg.dims())
}

/// Bytes of scratch of the 16-bit executor for node list `nodes` at `d`: the [`Scheme::Int16`]
/// plan's length (0 for a list that does not plan).
pub const fn scratch_bytes_nodes16(nodes: &[Node], d: Dims) -> usize {
    match plan(nodes, d, Scheme::Int16) {
        Ok(p) => p.len,
        Err(_) => 0,
    }
}

/// The bias-shift error of the 16-bit forms (one bit of headroom less than int8's 15).
const BIAS14: &str = "a conv's bias shift is above 14 (16-bit activations)";

/// Whether a saturation `q` of a pointwise input of width `k` keeps `k · 127 · q ≤ 2^30`.
fn within_budget(k: usize, q: i32) -> bool {
    (1..=MAX16).contains(&q) && (k as i64).saturating_mul(127 * q as i64) <= PRODUCT_BUDGET
}

/// The width of the products of node `j` when it reads a 16-bit value — a Linear's input width,
/// a squeeze-excitation's channels (its `fc1` reads their means) —, or `None` where the products
/// need no budget (a depthwise conv sums 9, a LayerNorm and a pool none).
const fn budget_of(nodes: &[Node], j: usize, d: Dims) -> Option<usize> {
    match nodes[j].op {
        Op::Linear { .. } => Some(nodes[j].widths(d.c_in, d.c_out).0),
        Op::SqueezeExcite { .. } => Some(d.c_out),
        _ => None,
    }
}

/// The narrowest accumulator budget among the readers of value `v` (the model input or a node's
/// value) in plan `pl`: its saturation `Q` must keep `width · 127 · Q ≤ 2^30`. `None` when no
/// Linear or squeeze-excitation reads it (a residual addition reads without a budget).
pub fn reader_width(nodes: &[Node], d: Dims, pl: &Plan, v: Resolved) -> Option<usize> {
    let mut w: Option<usize> = None;
    // A plan holds at most `MAX_NODES` sources: a longer list than the plan's is read up to it.
    for (j, src) in pl.input.iter().enumerate().take(nodes.len()) {
        if *src == v {
            if let Some(b) = budget_of(nodes, j, d) {
                w = Some(w.map_or(b, |x| x.min(b)));
            }
        }
    }
    w
}

/// Whether node `i` saturates its value to its `quant.meta` `out` entry ([`Form16::PerNode`]):
/// a Linear, LayerNorm or squeeze-excitation without a residual addition. A depthwise conv, a
/// pool or an addition saturates at 32767 only (`false` for an index past the list).
pub const fn saturates(nodes: &[Node], i: usize) -> bool {
    i < nodes.len()
        && matches!(
            nodes[i].op,
            Op::Linear { .. } | Op::LayerNorm { .. } | Op::SqueezeExcite { .. }
        )
        && nodes[i].residual().is_none()
}

/// Semantic checks of a graph blob with 16-bit activations (see the module docs for the
/// meanings); [`validate_nodes`] on the configuration's nodes.
pub(crate) fn validate(
    m: &Model<'_>,
    cfg: &GraphConfig,
    meta_v: &[i32],
    scales: &[f32],
) -> Result<(), BlobError> {
    validate_nodes(m, cfg.nodes(), cfg.dims(), meta_v, scales)
}

/// Semantic checks of a [`Form16::PerNode`] blob of node list `nodes` (graph architectures,
/// MobileVLM V1): every saturation in `1..=32767`; every value a Linear or squeeze-excitation
/// reads saturated within that reader's accumulator budget ([`reader_width`]; a value its node
/// does not saturate counts as 32767); zero `pre` entries where they are not the output's;
/// finite non-negative scales; conv shifts in `1..=62` with bias shifts up to 14; LayerNorm,
/// addition and GELU shifts in `1..=62` with non-negative multipliers and epsilons; Hardswish
/// parameters within [`Hswish16::valid`]; a squeeze-excitation's hidden saturation within
/// `fc2`'s budget and its gate-input zero point 0.
pub(crate) fn validate_nodes(
    m: &Model<'_>,
    nodes: &[Node],
    d: Dims,
    meta_v: &[i32],
    scales: &[f32],
) -> Result<(), BlobError> {
    let bad = BlobError::BadTable;
    let pl = plan(nodes, d, Scheme::Int16).map_err(bad)?;
    let c = MetaChecks::new(meta_v, scales);
    let (at, scale_ok) = (|i| c.at(i), |i| c.scale_ok(i));
    let sat = |i: usize, v: Resolved, own: bool| -> Result<(), BlobError> {
        let q = at(i)?;
        let eff = if own { q } else { MAX16 };
        let ok = (1..=MAX16).contains(&q)
            && match reader_width(nodes, d, &pl, v) {
                Some(w) => within_budget(w, eff),
                None => true,
            };
        if !ok {
            return Err(bad(
                "a 16-bit activation's saturation is outside 1..=32767 or over the accumulator budget of a Linear or squeeze-excitation that reads it",
            ));
        }
        if !scale_ok(i) {
            return Err(bad("an activation scale is not finite and non-negative"));
        }
        Ok(())
    };
    let zero = |i: usize| {
        c.zero(
            i,
            0..=0,
            "an activation zero point is outside -128..=127 (int8) or not 0 (16-bit)",
        )
    };
    let conv_word = |i: usize| c.conv_word(i, MAX_BIAS_SHIFT - 1, BIAS14);
    sat(meta::Z_X, Resolved::Input, true)?;
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        let own = saturates(nodes, i);
        // The `pre` entry, where it is not the output's: 0 (a GELU's or Hardswish's input).
        let pre_zero = || {
            if mi.pre != mi.out {
                zero(mi.pre)
            } else {
                Ok(())
            }
        };
        match nd.op {
            Op::Linear { .. } => {
                conv_word(mi.shift)?;
                pre_zero()?;
                sat(mi.out, Resolved::Node(i), own)?;
                if nd.act() == Act::Gelu {
                    let g = m
                        .find(nd.table_name(), ".gelu16")
                        .and_then(|k| m.i32s(k).ok())
                        .ok_or(bad("a GELU node without its gelu16 parameters"))?;
                    let [pm, ps, im, is] = g else {
                        return Err(bad("gelu16 parameters are not 4 values"));
                    };
                    if !(1..=62).contains(ps) || !(1..=62).contains(is) || *pm < 0 || *im < 0 {
                        return Err(bad(
                            "a GELU table's shifts are outside 1..=62 or a multiplier is negative",
                        ));
                    }
                }
            }
            Op::Depthwise { .. } => {
                conv_word(mi.shift)?;
                sat(mi.out, Resolved::Node(i), own)?;
            }
            Op::LayerNorm { act, .. } => {
                c.shift(mi.shift)?;
                c.nonneg(mi.eps)?;
                pre_zero()?;
                sat(mi.out, Resolved::Node(i), own)?;
                match act {
                    Act::Hardswish => {
                        hswish16(m, nd).map_err(|_| {
                            bad("a 16-bit Hardswish without valid hswish16 parameters")
                        })?;
                    }
                    Act::None => {}
                    Act::Gelu => return Err(bad("a 16-bit LayerNorm with GELU")),
                }
            }
            Op::SqueezeExcite { .. } => {
                conv_word(mi.shift)?;
                if !within_budget(d.squeeze, at(mi.pre)?) || !scale_ok(mi.pre) {
                    return Err(bad(
                        "a squeeze-excitation's hidden saturation is outside 1..=32767 or over fc2's accumulator budget",
                    ));
                }
                conv_word(mi.se)?;
                zero(mi.se + 1)?;
                c.nonneg(mi.se + 2)?;
                c.shift(mi.se + 3)?;
                sat(mi.out, Resolved::Node(i), own)?;
            }
            Op::Pool { .. } => {}
            Op::Resize { .. } => {
                return Err(bad("16-bit activations do not cover resize nodes"));
            }
        }
        if nd.residual().is_some() {
            c.add(mi.add, zero)?;
        }
    }
    Ok(())
}

/// The 16-bit Hardswish parameters of LayerNorm node `nd` (`table.hswish16`: three, multiplier,
/// shift), checked.
fn hswish16(m: &Model<'_>, nd: &Node) -> Result<Hswish16, Error> {
    let h = m.i32s(idx(m, nd.table_name(), ".hswish16")?)?;
    check_len("hswish16 parameters", h, 3)?;
    let h = Hswish16 {
        three: h[0],
        mult: h[1],
        shift: h[2],
    };
    if !h.valid() {
        return Err(Error::InvalidConfig(
            "16-bit Hardswish parameters out of range",
        ));
    }
    Ok(h)
}

/// Semantic checks of a 16-bit blob of node list `nodes` in the appended form ([`appended`];
/// MobileVLM V2's): zero points 0 with finite non-negative scales, conv shift words with a shift
/// in `1..=62` and a bias shift up to 14, addition and GELU shifts in `1..=62` with non-negative
/// multipliers, and the input's and every GELU output's saturation in `1..=32767` within the
/// accumulator budget of the Linear that reads it (`c_in`, and the GELU's width).
pub(crate) fn validate_appended(
    nodes: &[Node],
    d: Dims,
    meta_v: &[i32],
    scales: &[f32],
) -> Result<(), BlobError> {
    let bad = BlobError::BadTable;
    let c = MetaChecks::new(meta_v, scales);
    let zero = |i: usize| {
        c.zero(
            i,
            0..=0,
            "an activation zero point is outside -128..=127 (int8) or not 0 (16-bit)",
        )
    };
    let conv_word = |i: usize| c.conv_word(i, MAX_BIAS_SHIFT - 1, BIAS14);
    let (at, shift, nonneg) = (|i| c.at(i), |i| c.shift(i), |i| c.nonneg(i));
    let saturation = |q: i32, k: usize| -> Result<(), BlobError> {
        if !within_budget(k, q) {
            return Err(bad(
                "a 16-bit activation's saturation is outside 1..=32767 or over the accumulator budget",
            ));
        }
        Ok(())
    };
    zero(meta::Z_X)?;
    saturation(at(appended::q_x(nodes))?, d.c_in)?;
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        match nd.op {
            Op::Linear { .. } => {
                conv_word(mi.shift)?;
                zero(mi.pre)?;
                zero(mi.out)?;
                if let Act::Gelu = nd.act() {
                    let g = appended::gelu(nodes, i);
                    saturation(at(g)?, nd.widths(d.c_in, d.c_out).1)?;
                    nonneg(g + 1)?;
                    shift(g + 2)?;
                    nonneg(g + 3)?;
                    shift(g + 4)?;
                }
            }
            Op::Depthwise { add, .. } => {
                conv_word(mi.shift)?;
                zero(mi.out)?;
                if add.is_some() {
                    c.add(mi.add, zero)?;
                }
            }
            Op::Pool { .. } => {}
            Op::LayerNorm { .. } | Op::Resize { .. } | Op::SqueezeExcite { .. } => {
                return Err(bad(
                    "16-bit activations cover Linear, depthwise and pool nodes",
                ))
            }
        }
    }
    Ok(())
}

/// The node list and sizes of a [`Form16::PerNode`] blob: a graph architecture's, or MobileVLM
/// V1's.
fn per_node(m: &Model<'_>) -> Result<(&'static [Node], Dims, usize), Error> {
    if !is_a16(m) {
        return Err(Error::Unsupported("not a blob with 16-bit activations"));
    }
    match m.config() {
        ModelConfig::Graph(c) => {
            c.validate()?;
            Ok((c.nodes(), c.dims(), c.input_len()))
        }
        ModelConfig::MobileVlmV1(c) => Ok((super::mobilevlm_v1::NODES, c.dims(), c.input_len())),
        _ => Err(Error::Unsupported(
            "not a graph or MobileVLM V1 blob with 16-bit activations",
        )),
    }
}

/// The integer forward pass of a graph or MobileVLM V1 blob with 16-bit activations: `i16`
/// input (quantized as [`quantize_input16`] does) to `i16` output. `scratch` needs
/// [`crate::quant::a16::scratch_bytes_i16`] bytes, 2-byte aligned. `trace` sees every node's
/// name and output scale (with empty data).
pub fn forward_i16(
    m: &Model<'_>,
    x: &[i16],
    y: &mut [i16],
    scratch: &mut [u8],
    t: Trace<'_>,
) -> Result<(), Error> {
    let (nodes, d, _) = per_node(m)?;
    forward_nodes16(m, nodes, d, Form16::PerNode, x, y, scratch, t)
}

/// Quantizes a channels-last f32 input as a graph or MobileVLM V1 blob with 16-bit activations
/// expects.
pub fn quantize_input16(m: &Model<'_>, x: &[f32], xq: &mut [i16]) -> Result<(), Error> {
    let (_, _, n) = per_node(m)?;
    let p = Params::new(m)?;
    let scale = m.f32s(idx(m, "input.scale", "")?)?;
    check_len("input scale", scale, 1)?;
    check_len("input", x, n)?;
    quantize16(x, scale[0], p.z(meta::Z_X), xq)
}

/// Dequantizes the 16-bit output.
pub fn dequantize_output16(m: &Model<'_>, yq: &[i16], y: &mut [f32]) -> Result<(), Error> {
    let (nodes, _, _) = per_node(m)?;
    let p = Params::new(m)?;
    dequantize16(yq, p.s(meta::output(nodes)), y)
}

// ---------------------------------------------------------------------------------------------
// Node lists with the parameters appended (MobileVLM V2's 16-bit blobs).

/// `quant.meta` of a node list's 16-bit blob in the *appended* form (MobileVLM V2's): the int8
/// layout ([`meta::node`], every zero point 0, scales at the same indices), then the input's
/// saturation, then per GELU node (in node order) its output saturation, table position
/// multiplier and shift, and identity multiplier and shift. The table is `table.lut16`.
pub mod appended {
    use crate::graph::{meta, Act, Node};

    /// Index of the input's saturation.
    pub const fn q_x(nodes: &[Node]) -> usize {
        meta::total(nodes)
    }
    /// Index of GELU node `i`'s five entries (saturation, position multiplier and shift,
    /// identity multiplier and shift), or 0 when `i` has no GELU.
    pub const fn gelu(nodes: &[Node], i: usize) -> usize {
        let mut g = 0;
        let mut k = 0;
        while k < i && k < nodes.len() {
            if let Act::Gelu = nodes[k].act() {
                g += 1;
            }
            k += 1;
        }
        if i < nodes.len() && matches!(nodes[i].act(), Act::Gelu) {
            meta::total(nodes) + 1 + 5 * g
        } else {
            0
        }
    }
    /// Length of `quant.meta`.
    pub const fn len(nodes: &[Node]) -> usize {
        let mut g = 0;
        let mut k = 0;
        while k < nodes.len() {
            if let Act::Gelu = nodes[k].act() {
                g += 1;
            }
            k += 1;
        }
        meta::total(nodes) + 1 + 5 * g
    }
}

/// Where a 16-bit blob keeps each GELU's parameters and each node's output saturation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form16 {
    /// Token-wise graphs (`mlp2x-gelu`; the module docs): `quant.meta`'s `out` entry of a node is
    /// its output saturation, a GELU's parameters are the tensor `name.gelu16`.
    PerNode,
    /// MobileVLM V2's: appended to `quant.meta` ([`appended`]).
    Appended,
}

/// The 16-bit integer forward pass of node list `nodes` in `form`: `i16` input to `i16`
/// output, `scratch` at least the [`Scheme::Int16`] plan's length (bytes, 2-byte aligned).
/// Linear layers are [`pointwise16`], a GELU [`gelu16_inplace`] clamped to its saturation,
/// pools [`crate::quant::a16::avg_pool16`], depthwise convs [`crate::quant::a16::depthwise16`]
/// and residual adds [`crate::quant::a16::add16_inplace`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_nodes16(
    m: &Model<'_>,
    nodes: &[Node],
    d: Dims,
    form: Form16,
    x: &[i16],
    y: &mut [i16],
    scratch: &mut [u8],
    mut t: Trace<'_>,
) -> Result<(), Error> {
    use crate::quant::a16::{add16_inplace, avg_pool16, depthwise16};
    let pl = plan(nodes, d, Scheme::Int16).map_err(Error::InvalidConfig)?;
    check_len("16-bit input", x, input_shape(d).elems())?;
    check_len("16-bit output", y, pl.shape[nodes.len() - 1].elems())?;
    pl.fits(scratch.len())?;
    let (scratch, temp) = scratch[..pl.len].split_at_mut(pl.temp);
    let p = Params::new(m)?;
    let bad = Error::InvalidConfig("graph: a node reads the model output");
    let range = |k: usize| match pl.place[k] {
        Place::Arena(o) => Some(o..o + 2 * pl.shape[k].elems()),
        Place::Output => None,
    };
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        let xs = match pl.input[i] {
            Resolved::Input => input_shape(d),
            Resolved::Node(k) => pl.shape[k],
        };
        let ys = pl.shape[i];
        let (around, dst) = Around::split(&mut *scratch, range(i))?;
        let read = |src: Resolved| -> Result<&[i16], Error> {
            let k = match src {
                Resolved::Input => return Ok(x),
                Resolved::Node(k) => k,
            };
            let bytes = around.get(range(k).ok_or(bad)?)?;
            bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned { what: "scratch" })
        };
        let out: &mut [i16] = match range(i) {
            Some(_) => bytemuck::try_cast_slice_mut(dst)
                .map_err(|_| Error::Misaligned { what: "scratch" })?,
            None => &mut *y,
        };
        match nd.op {
            // In place on the node's own range, which holds its input (the planner made it so).
            Op::LayerNorm { act, .. } => {
                let norm = p.norm(nd.name, mi.shift, mi.eps, 0, None)?;
                let hswish = match act {
                    Act::Hardswish => Some(hswish16(p.m, nd)?),
                    Act::None => None,
                    Act::Gelu => return Err(Error::Unsupported("a 16-bit LayerNorm with GELU")),
                };
                let q = Norm16 {
                    norm,
                    hswish,
                    clamp: p.z(mi.out),
                };
                layer_norm16_inplace(&mut *out, ys.c, &q)?;
                trace16(&mut t, nd.value, out, p.s(mi.out));
                if let (Some(r), Some(src)) = (nd.residual(), pl.residual[i]) {
                    add16_inplace(&mut *out, read(src)?, &add_q16(&p, r, &mi))?;
                    trace16(&mut t, r.value, out, p.s(mi.add + 3));
                }
                continue;
            }
            Op::SqueezeExcite { .. } => {
                let conv = |suffix: &str, word: usize| {
                    crate::quant::conv_q(p.m, idx(p.m, nd.name, suffix)?, p.z(word), 0, 0, None)
                };
                let q = Se16 {
                    fc1: conv(".fc1.weight", mi.shift)?,
                    fc2: conv(".fc2.weight", mi.se)?,
                    hid_clamp: p.z(mi.pre),
                    mult: p.z(mi.se + 2),
                    shift: p.z(mi.se + 3),
                    clamp: p.z(mi.out),
                };
                let tmp = super::plan::temp_words(temp, se16_tmp_len(d.c_out, d.squeeze))?;
                squeeze_excite16(&mut *out, ys.c, d.squeeze, &q, tmp)?;
                trace16(&mut t, nd.value, out, p.s(mi.out));
                continue;
            }
            _ => {}
        }
        let xv = read(pl.input[i])?;
        match nd.op {
            Op::Linear { .. } => {
                let q = p.conv(nd.name, mi.shift, 0, 0, None)?;
                pointwise16(xv, xs.c, &q, ys.c, &mut *out)?;
                let sat = p.z(mi.out);
                match (nd.act(), form) {
                    (Act::Gelu, _) => {
                        // Parameters: position multiplier and shift, identity multiplier and
                        // shift, saturation.
                        let g: [i32; 5] = match form {
                            Form16::Appended => {
                                trace16(&mut t, nd.pre, out, p.s(mi.pre));
                                let g = appended::gelu(nodes, i);
                                [p.z(g + 1), p.z(g + 2), p.z(g + 3), p.z(g + 4), p.z(g)]
                            }
                            Form16::PerNode => {
                                let g = p.m.i32s(idx(p.m, nd.table_name(), ".gelu16")?)?;
                                check_len("gelu16 parameters", g, 4)?;
                                [g[0], g[1], g[2], g[3], sat]
                            }
                        };
                        let gelu = Gelu16 {
                            lut: p.m.i16s(idx(p.m, nd.table_name(), ".lut16")?)?,
                            pos_mult: g[0],
                            pos_shift: g[1],
                            id_mult: g[2],
                            id_shift: g[3],
                            clamp: g[4],
                        };
                        gelu16_inplace(&mut *out, &gelu)?;
                    }
                    (Act::None, Form16::PerNode) if sat < MAX16 => {
                        let s = sat.clamp(0, MAX16) as i16;
                        for v in out.iter_mut() {
                            *v = (*v).clamp(-s, s);
                        }
                    }
                    (Act::None, _) => {}
                    (Act::Hardswish, _) => {
                        return Err(Error::Unsupported(
                            "16-bit activations cover GELU, not Hardswish",
                        ))
                    }
                }
                trace16(&mut t, nd.value, out, p.s(mi.out));
            }
            Op::Pool { .. } => {
                avg_pool16(xv, xs.h, xs.w, xs.c, &mut *out, ys.h, ys.w)?;
                trace16(&mut t, nd.value, out, p.s(mi.out));
            }
            Op::Depthwise { stride, add } => {
                let sh = crate::kernels::depthwise::DwShape {
                    h: xs.h,
                    w: xs.w,
                    c: xs.c,
                    stride: stride as usize,
                };
                depthwise16(sh, xv, &p.conv(nd.name, mi.shift, 0, 0, None)?, &mut *out)?;
                trace16(&mut t, nd.value, out, p.s(mi.out));
                if let (Some(r), Some(src)) = (add, pl.residual[i]) {
                    add16_inplace(&mut *out, read(src)?, &add_q16(&p, r, &mi))?;
                    trace16(&mut t, r.value, out, p.s(mi.add + 3));
                }
            }
            Op::LayerNorm { .. } | Op::SqueezeExcite { .. } => {}
            Op::Resize { .. } => {
                return Err(Error::Unsupported(
                    "16-bit activations do not cover resize nodes",
                ))
            }
        }
    }
    Ok(())
}

/// The 16-bit addition of residual `r` (node entries `mi`): zero points 0, the first operand's
/// multiplier first in `quant.meta` (the other operand's for [`super::Residual::source_first`]),
/// as `add16_inplace(op_output, from)` takes it.
fn add_q16(
    p: &Params<'_, '_>,
    r: super::Residual,
    mi: &meta::NodeMeta,
) -> crate::quant::kernels::AddQ {
    let a = mi.add;
    let (ma, mb) = if r.source_first {
        (a + 1, a)
    } else {
        (a, a + 1)
    };
    p.add(0, 0, ma, mb, a + 2, a + 3)
}
