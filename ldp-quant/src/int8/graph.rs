//! Calibration points and int8 tables of graph architectures (`ldp_core::graph`): one walk
//! over the nodes, the same for every graph architecture. Each node's output is calibrated
//! under the node's name; a node with a fused activation also under `name.pre` (its conv's
//! requantized output, before the table).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use ldp_core::graph::plan::{input_shape, plan, Dims, Scheme};
use ldp_core::graph::{feeds_norm, float_index, meta, Act, Node, Op, Resolved};
use ldp_core::kernels::depthwise::DwShape;
use ldp_core::kernels::pool::adaptive_avg_pool;
use ldp_core::kernels::resize::bilinear;

use ldp_core::blob::specs::FLAG_ACT16;
use ldp_core::graph::a16::Form16;
use ldp_core::quant::fixed::encode_multiplier;
use ldp_core::ModelConfig;

use super::{conv, fb, gelu, gelu64, i8b, lut, map, pw, Acts, Out, Ranges, QP};
use crate::graph::FloatModel;
use ldp_core::kernels::activation::{hardsigmoid, hardswish, relu};

/// `name.pre`, interned (activation names are `&'static str` throughout the quantizer).
pub(super) fn pre_name(node: &'static str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    names
        .entry(node)
        .or_insert_with(|| Box::leak(format!("{node}.pre").into_boxed_str()))
}

/// The node list and sizes of a model written as a graph (`ldp`, `mlp2x-gelu`); `None` for the
/// hand-written architectures (MobileVLM V1, V2).
pub(super) fn dag(cfg: ModelConfig) -> Option<(&'static [Node], Dims)> {
    match cfg {
        ModelConfig::Ldp(c) => Some((ldp_core::graph::ldp::NODES, c.dims())),
        ModelConfig::Graph(c) => Some((
            c.nodes(),
            Dims {
                c_in: c.c_in,
                c_out: c.c_out,
                h: c.h,
                w: c.w,
                squeeze: 0,
            },
        )),
        ModelConfig::MobileVlmV2(c) => Some((
            ldp_core::graph::mobilevlm_v2::nodes_for(c.tokens_in()),
            c.dims(),
        )),
        ModelConfig::MobileVlmV1(c) => Some((ldp_core::graph::mobilevlm_v1::NODES, c.dims())),
    }
}

/// Name of node `nd`'s value before its activation table (`name.pre` unless the graph names it).
pub(super) fn pre_of(nd: &Node) -> &'static str {
    if nd.pre.is_empty() {
        pre_name(nd.name)
    } else {
        nd.pre
    }
}

/// The name of node `i`'s result (its residual's sum when it has one).
fn result_name(nd: &Node) -> &'static str {
    match nd.residual() {
        Some(r) => r.value,
        None => nd.value,
    }
}

/// Whether value `n` is a conv's 16-bit output (it only feeds a LayerNorm): no int8 range.
pub(super) fn wide(nodes: &[Node], n: &str) -> bool {
    nodes
        .iter()
        .enumerate()
        .any(|(i, nd)| nd.value == n && ldp_core::graph::plan::wide(nodes, i))
}

/// The f64 function of an activation's int8 table.
fn act64(a: Act) -> fn(f64) -> f64 {
    match a {
        Act::Gelu => gelu64,
        Act::Hardswish => |x| x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Act::None => |x| x,
    }
}

/// The f32 function of an activation (the reference walk).
fn act32(a: Act) -> fn(f32) -> f32 {
    match a {
        Act::Gelu => gelu,
        Act::Hardswish => hardswish,
        Act::None => |x| x,
    }
}

/// Whether value `n` is the direct int8 output of a conv (a depthwise conv before its residual,
/// a Linear without table that does not write 16 bits): its per-channel mean int8 error can be
/// folded back into the conv's bias.
pub(super) fn correctable(nodes: &[Node], n: &str) -> bool {
    nodes.iter().enumerate().any(|(i, nd)| {
        nd.value == n
            && match nd.op {
                Op::Depthwise { .. } => !feeds_norm(nodes, i),
                Op::Linear { act, .. } => act == Act::None && !feeds_norm(nodes, i),
                Op::LayerNorm { .. }
                | Op::Resize { .. }
                | Op::Pool { .. }
                | Op::SqueezeExcite { .. } => false,
            }
    })
}

/// The float tensors of node `i` as `(weight, bias)` — for a LayerNorm `(scale, bias)`, for a
/// squeeze-excitation `fc1`'s —; the bias `None` for a conv without one.
fn tensors<'m>(
    m: &'m FloatModel,
    nodes: &[Node],
    i: usize,
) -> anyhow::Result<(&'m [f32], Option<&'m [f32]>)> {
    let k = float_index(nodes, i);
    let t = m.tensors();
    let has_bias = nodes.get(i).is_some_and(|nd| nd.bias);
    match (t.get(k), t.get(k + 1)) {
        (Some(w), _) if !has_bias => Ok((w, None)),
        (Some(w), Some(b)) => Ok((w, Some(b))),
        _ => anyhow::bail!("internal: graph node {i} has no tensors"),
    }
}

/// The float tensor `j` of node `i` (`fc2.weight` of a squeeze-excitation is 2).
fn tensor<'m>(m: &'m FloatModel, nodes: &[Node], i: usize, j: usize) -> anyhow::Result<&'m [f32]> {
    m.tensors()
        .get(float_index(nodes, i) + j)
        .map(|v| v.as_slice())
        .with_context(|| format!("internal: graph node {i} has no tensor {j}"))
}

/// A LayerNorm's `(scale, bias)`.
fn norm_tensors<'m>(
    m: &'m FloatModel,
    nodes: &[Node],
    i: usize,
) -> anyhow::Result<(&'m [f32], &'m [f32])> {
    Ok((tensor(m, nodes, i, 0)?, tensor(m, nodes, i, 1)?))
}

/// The f32 walk: every node's output (its value before an activation table, and a depthwise
/// conv's output before its residual, too) on input `x`, in node order.
pub(super) fn intermediates(
    m: &FloatModel,
    nodes: &[Node],
    d: Dims,
    x: &[f32],
    acts: &mut Acts,
) -> anyhow::Result<()> {
    let pl = plan(nodes, d, Scheme::Float).map_err(|e| anyhow::anyhow!("internal: {e}"))?;
    let mut vals: Vec<Vec<f32>> = Vec::with_capacity(nodes.len());
    for (i, nd) in nodes.iter().enumerate() {
        let get = |r: Resolved| -> &[f32] {
            match r {
                Resolved::Input => x,
                Resolved::Node(k) => &vals[k],
            }
        };
        let src = get(pl.input[i]);
        let xs = match pl.input[i] {
            Resolved::Input => input_shape(d),
            Resolved::Node(k) => pl.shape[k],
        };
        let ys = pl.shape[i];
        let v = match nd.op {
            Op::Linear { act, .. } => {
                let (w, b) = tensors(m, nodes, i)?;
                let p = pw(src, xs.c, w, b, ys.c)?;
                if act.is_some() {
                    let a = map(&p, act32(act));
                    acts.push((pre_of(nd), p));
                    a
                } else {
                    p
                }
            }
            Op::Resize { .. } => {
                let mut r = vec![0.0; ys.elems()];
                super::ck(bilinear(src, xs.h, xs.w, xs.c, &mut r, ys.h, ys.w))?;
                r
            }
            Op::Pool { .. } => {
                let mut r = vec![0.0; ys.elems()];
                super::ck(adaptive_avg_pool(src, xs.h, xs.w, xs.c, &mut r, ys.h, ys.w))?;
                r
            }
            Op::Depthwise { stride, .. } => {
                let (w, b) = tensors(m, nodes, i)?;
                let sh = DwShape {
                    h: xs.h,
                    w: xs.w,
                    c: xs.c,
                    stride: stride as usize,
                };
                let dd = super::dw(sh, src, w, b)?;
                match pl.residual[i] {
                    Some(r) => {
                        let sum = super::add(&dd, get(r));
                        acts.push((nd.value, dd));
                        sum
                    }
                    None => dd,
                }
            }
            Op::LayerNorm { act, .. } => {
                let (g, b) = norm_tensors(m, nodes, i)?;
                let n = super::ln(src, ys.c, g, b)?;
                let u = if act.is_some() {
                    let c = map(&n, act32(act));
                    acts.push((pre_of(nd), n));
                    c
                } else {
                    n
                };
                match pl.residual[i] {
                    // The same f32 sum either way round.
                    Some(r) => {
                        let sum = super::add(get(r), &u);
                        acts.push((nd.value, u));
                        sum
                    }
                    None => u,
                }
            }
            Op::SqueezeExcite { hid, gate } => {
                let (w1, b1) = (tensor(m, nodes, i, 0)?, tensor(m, nodes, i, 1)?);
                let (w2, b2) = (tensor(m, nodes, i, 2)?, tensor(m, nodes, i, 3)?);
                let co = ys.c;
                let pixels = src.len() / co.max(1);
                let mut mean = vec![0.0f32; co];
                for px in src.chunks_exact(co) {
                    for (a, v) in mean.iter_mut().zip(px) {
                        *a += v;
                    }
                }
                mean.iter_mut().for_each(|v| *v /= pixels as f32);
                let sh = map(&pw(&mean, co, w1, Some(b1), d.squeeze)?, relu);
                let sg = pw(&sh, d.squeeze, w2, Some(b2), co)?;
                let g = map(&sg, hardsigmoid);
                let mut se = src.to_vec();
                for px in se.chunks_exact_mut(co) {
                    for (v, g) in px.iter_mut().zip(&g) {
                        *v *= g;
                    }
                }
                acts.push((hid, sh));
                acts.push((gate, sg));
                se
            }
        };
        acts.push((result_name(nd), v.clone()));
        vals.push(v);
    }
    // Report in the order of the architecture's definition when `nodes` is a variant of it
    // (MobileVLM V2's pool-first order computes `pooled` before `m`): the range search and the
    // bias correction visit values in this order.
    let def = ldp_core::graph::definition(m.config().arch()).map(|g| g.nodes);
    if let Some(canon) = def.filter(|def| *def != nodes).map(canonical) {
        let rank = |n: &str| canon.iter().position(|c| *c == n).unwrap_or(usize::MAX);
        let start = acts.len() - nodes_values(nodes);
        acts[start..].sort_by_key(|(n, _)| rank(n));
    }
    Ok(())
}

/// Values a walk of `nodes` pushes.
fn nodes_values(nodes: &[Node]) -> usize {
    nodes
        .iter()
        .map(|nd| {
            1 + usize::from(nd.act().is_some())
                + usize::from(nd.residual().is_some())
                + 2 * usize::from(matches!(nd.op, Op::SqueezeExcite { .. }))
        })
        .sum()
}

/// The value names a walk of `def` pushes, in its order.
fn canonical(def: &[Node]) -> Vec<&'static str> {
    let mut names = Vec::new();
    for nd in def {
        if nd.act().is_some() {
            names.push(pre_of(nd));
        }
        if let Op::SqueezeExcite { hid, gate } = nd.op {
            names.extend([hid, gate]);
        }
        if nd.residual().is_some() {
            names.push(nd.value);
        }
        names.push(result_name(nd));
    }
    names
}

/// The resize nodes whose output takes its source's quantization instead of its own range
/// (their values): when the output has fewer than [`super::FEW`] calibration values and the
/// source is an int8 activation or a per-tensor int8 input. A bilinear resize of the *quantized*
/// source is a convex combination of its int8 values, so it cannot leave the source's int8 range:
/// that range never clips it, and it is estimated from 4× more values than the output's own.
/// (Issue 16: on the sweep's tuning case `ldp_8to40_5x7_s1`, 128 fresh inputs, 0.0418 →
/// 0.0404.) Not for a per-channel or 16-bit input, whose quantized values have no single int8
/// range.
pub(super) fn tied_resizes(
    nodes: &[Node],
    d: Dims,
    r: &Ranges,
    per_ch: bool,
    x16: bool,
) -> Vec<&'static str> {
    let Ok(pl) = plan(nodes, d, Scheme::Int8) else {
        return Vec::new();
    };
    nodes
        .iter()
        .enumerate()
        .filter(|(i, nd)| {
            matches!(nd.op, Op::Resize { .. })
                && r.obs.get(nd.value).is_some_and(|o| super::few(&o.sample))
                && match pl.input[*i] {
                    Resolved::Input => !per_ch && !x16,
                    Resolved::Node(_) => true,
                }
        })
        .map(|(_, nd)| nd.value)
        .collect()
}

/// The int8 tensors of a graph model: the input quantization (`xq`: one per-tensor value, or
/// one per input channel), then per node its conv (input zero point folded into a Linear's
/// bias), table, resize multipliers, LayerNorm or residual addition, and the `quant.meta`
/// entries at [`meta::node`]'s indices. A 16-bit input (`limit`) keeps the biases of the convs
/// reading it within a shift of 14; `tied` resizes take their source's quantization.
#[allow(clippy::too_many_arguments)]
pub(super) fn quantize(
    m: &FloatModel,
    r: &Ranges,
    nodes: &[Node],
    d: Dims,
    xq: &[QP],
    limit: Option<i32>,
    tied: &[&str],
    o: &mut Out,
) -> anyhow::Result<()> {
    let pl = plan(nodes, d, Scheme::Int8).map_err(|e| anyhow::anyhow!("internal: {e}"))?;
    let per_ch = xq.len() > 1;
    let xs: Vec<f32> = xq.iter().map(|q| q.scale).collect();
    let xz: Vec<i32> = xq.iter().map(|q| q.zero).collect();
    o.t.insert("input.scale".into(), super::f32b(&xs));
    match limit {
        Some(q) => o.t.insert("input.limit".into(), super::i32b(&[q])),
        None => o.t.insert(
            "input.zero".into(),
            xz.iter().map(|&z| z as i8 as u8).collect(),
        ),
    };
    if !per_ch {
        o.act(meta::Z_X, xq[0]);
    }
    let max_bias_shift = ldp_core::quant::kernels::MAX_BIAS_SHIFT;
    let mut res: Vec<QP> = Vec::with_capacity(nodes.len());
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        let from_input = pl.input[i] == Resolved::Input;
        let (in_s, in_z): (Vec<f32>, Vec<i32>) = match pl.input[i] {
            Resolved::Input => (xs.clone(), xz.clone()),
            Resolved::Node(k) => (vec![res[k].scale], vec![res[k].zero]),
        };
        let xs_shape = match pl.input[i] {
            Resolved::Input => input_shape(d),
            Resolved::Node(k) => pl.shape[k],
        };
        let co = pl.shape[i].c;
        let wide_i = ldp_core::graph::plan::wide(nodes, i);
        let result = match nd.op {
            Op::Linear { act, .. } => {
                let (w, b) = tensors(m, nodes, i)?;
                let out = if wide_i {
                    r.qp16(nd.value)?
                } else {
                    r.qp(nd.value)?
                };
                let pre = if act.is_some() {
                    r.qp(pre_of(nd))?
                } else {
                    out
                };
                let fix = if act.is_some() { pre_of(nd) } else { nd.value };
                let bias = linear_bias(r, nd, fix, b, co)?;
                let cv = conv(
                    w,
                    bias.as_deref(),
                    co,
                    xs_shape.c,
                    &in_s,
                    &in_z,
                    pre.scale,
                    false,
                );
                o.max_bias_shift = if from_input && limit.is_some() {
                    max_bias_shift - 1
                } else {
                    max_bias_shift
                };
                o.conv(nd.name, cv, mi.shift);
                o.max_bias_shift = max_bias_shift;
                o.act(mi.pre, pre);
                if act.is_some() {
                    o.t.insert(
                        format!("{}.lut", nd.table_name()),
                        i8b(&lut(act64(act), pre, out)),
                    );
                }
                o.act(mi.out, out);
                out
            }
            Op::Resize { .. } => {
                let out = match pl.input[i] {
                    _ if !tied.contains(&nd.value) => r.qp(nd.value)?,
                    Resolved::Input => xq[0],
                    Resolved::Node(k) => res[k],
                };
                let mult: Vec<f64> = in_s.iter().map(|&s| s as f64 / out.scale as f64).collect();
                o.check_mult(nd.name, super::max_of(&mult));
                let (sm, ss) = super::mults16(&mult);
                o.t.insert(format!("{}.mult", nd.name), super::i16b(&sm));
                o.meta[mi.shift] = ss;
                o.act(mi.out, out);
                out
            }
            Op::Depthwise { .. } => {
                let (w, b) = tensors(m, nodes, i)?;
                let dq = if wide_i {
                    r.qp16(nd.value)?
                } else {
                    r.qp(nd.value)?
                };
                let bias = fb(r, nd.value, b, co);
                let cv = conv(w, bias.as_deref(), co, 9, &in_s, &in_z, dq.scale, true);
                o.conv(nd.name, cv, mi.shift);
                o.act(mi.out, dq);
                residual(nd, &mi, &pl.residual[i], &res, dq, o, |v| r.qp(v))?
            }
            Op::Pool { .. } => match pl.input[i] {
                // The pool keeps its input's quantization (no `quant.meta` entry).
                Resolved::Node(k) => res[k],
                Resolved::Input => anyhow::bail!("internal: a pool of the model input"),
            },
            Op::LayerNorm { act, .. } => {
                let (g, b) = norm_tensors(m, nodes, i)?;
                let Resolved::Node(k) = pl.input[i] else {
                    anyhow::bail!("internal: a LayerNorm of the model input");
                };
                let out = r.qp(nd.value)?;
                let pre = if act.is_some() {
                    r.qp(pre_of(nd))?
                } else {
                    out
                };
                o.norm(nd.name, super::norm(g, b, res[k], pre), mi.shift, mi.eps);
                if act.is_some() {
                    o.t.insert(
                        format!("{}.lut", nd.table_name()),
                        i8b(&lut(act64(act), pre, out)),
                    );
                }
                o.act(mi.pre, pre);
                o.act(mi.out, out);
                residual(nd, &mi, &pl.residual[i], &res, out, o, |v| r.qp(v))?
            }
            Op::SqueezeExcite { hid, gate } => {
                let Resolved::Node(k) = pl.input[i] else {
                    anyhow::bail!("internal: a squeeze-excitation of the model input");
                };
                let (hs, sq) = (res[k], d.squeeze);
                let (sh, sg, se) = (r.qp(hid)?, r.qp(gate)?, r.qp(nd.value)?);
                o.act(mi.pre, sh);
                o.act(mi.se + 1, sg);
                o.act(mi.out, se);
                let (w1, b1) = (tensor(m, nodes, i, 0)?, tensor(m, nodes, i, 1)?);
                let (w2, b2) = (tensor(m, nodes, i, 2)?, tensor(m, nodes, i, 3)?);
                let fc1 = conv(
                    w1,
                    Some(b1),
                    sq,
                    co,
                    &[hs.scale],
                    &[hs.zero],
                    sh.scale,
                    false,
                );
                o.conv(&format!("{}.fc1", nd.name), fc1, mi.shift);
                let fc2 = conv(
                    w2,
                    Some(b2),
                    co,
                    sq,
                    &[sh.scale],
                    &[sh.zero],
                    sg.scale,
                    false,
                );
                o.conv(&format!("{}.fc2", nd.name), fc2, mi.se);
                // The 8-bit Hardsigmoid gate: 255 at 1.
                let table: Vec<u8> = (-128i32..=127)
                    .map(|q| {
                        let x = sg.scale as f64 * (q - sg.zero) as f64;
                        ((x + 3.0).clamp(0.0, 6.0) / 6.0 * 255.0).round() as u8
                    })
                    .collect();
                o.t.insert(format!("{}.gate.lut", nd.name), table);
                let (sm, ss) = encode_multiplier(hs.scale as f64 / (255.0 * se.scale as f64));
                o.meta[mi.se + 2] = sm;
                o.meta[mi.se + 3] = ss;
                se
            }
        };
        res.push(result);
    }
    Ok(())
}

/// The bias of Linear node `nd` (its error-corrected float bias, `fix` the value it feeds), or
/// `None` for a Linear without one.
fn linear_bias(
    r: &Ranges,
    nd: &Node,
    fix: &str,
    b: Option<&[f32]>,
    co: usize,
) -> anyhow::Result<Option<Vec<f32>>> {
    let bias = fb(r, fix, b, co);
    if nd.bias && bias.is_none() {
        anyhow::bail!("internal: bias");
    }
    Ok(bias)
}

/// The residual addition after node `nd` (its output quantized as `out`, the sum as `sum_of`
/// gives it: int8 or 16-bit), if it has one, in the operand order of
/// [`ldp_core::graph::Residual::source_first`]: the
/// sum's quantization and `quant.meta` entries ([`meta::NodeMeta::add`]); else `out`.
fn residual(
    nd: &Node,
    mi: &meta::NodeMeta,
    src: &Option<Resolved>,
    res: &[QP],
    out: QP,
    o: &mut Out,
    sum_of: impl FnOnce(&str) -> anyhow::Result<QP>,
) -> anyhow::Result<QP> {
    let (Some(a), Some(src)) = (nd.residual(), src) else {
        return Ok(out);
    };
    let Resolved::Node(k) = *src else {
        anyhow::bail!("internal: a residual from the model input");
    };
    let sum = sum_of(a.value)?;
    let (ma, mb, sh, zo) = (mi.add, mi.add + 1, mi.add + 2, mi.add + 3);
    if a.source_first {
        o.add(res[k], out, sum, ma, mb, sh, zo);
    } else {
        o.add(out, res[k], sum, ma, mb, sh, zo);
    }
    Ok(sum)
}

/// The saturation of a 16-bit activation read by a Linear of `k` inputs: `k·127·Q ≤ 2^30`.
fn qmax16(k: usize) -> i32 {
    use ldp_core::quant::a16::{MAX16, PRODUCT_BUDGET};
    ((PRODUCT_BUDGET / (127 * k.max(1) as i64)) as i32).clamp(1, MAX16)
}

/// The symmetric 16-bit quantization of activation `n` saturated at `q`: [`headroom16`]`(q)`×
/// its calibrated absolute maximum at `q`.
fn qp16(r: &Ranges, n: &str, q: i32) -> anyhow::Result<QP> {
    let o = r
        .obs
        .get(n)
        .with_context(|| format!("internal: no range for `{n}`"))?;
    let amax = (o.min.abs().max(o.max.abs()) as f64).max(1e-6);
    Ok(QP {
        scale: (headroom16(q) * amax / q as f64) as f32,
        zero: 0,
    })
}

/// The headroom of a 16-bit activation saturated at `q` over its calibrated absolute maximum:
/// [`super::A16_HEADROOM`] (16×) where that leaves at least 2^10 steps over the calibrated range,
/// less (down to [`super::INPUT16_HEADROOM`], 4×) where a wide Linear's accumulator budget
/// saturates its input early (`q < 2^14`: MobileVLM's 1024- and 2048-wide inputs get 8× and 4×).
fn headroom16(q: i32) -> f64 {
    (q as f64 / 1024.0).clamp(super::INPUT16_HEADROOM, super::A16_HEADROOM)
}

/// A 16-bit GELU's 513-entry table (clamped to `±q`) and its parameters: position multiplier
/// and shift, identity multiplier and shift. The table covers [-T, T] of the pre-activation in
/// 1/256 steps; right of it GELU is the identity to within 1e-9.
fn gelu16_table(pre: QP, out: QP, q: i32) -> (Vec<i16>, [i32; 4]) {
    use ldp_core::quant::a16::GELU16_LEN;
    let step = super::A16_GELU_T / 256.0;
    let (sp, sh) = (pre.scale as f64, out.scale as f64);
    let lut = (0..GELU16_LEN)
        .map(|j| {
            let v = gelu64((j as f64 - 256.0) * step) / sh;
            v.round().clamp(-(q as f64), q as f64) as i16
        })
        .collect();
    let (pm, ps) = encode_multiplier(sp / step * 128.0);
    let (im, is) = encode_multiplier(sp / sh);
    (lut, [pm, ps, im, is])
}

/// The 16-bit-activation blob of a node list (`ldp_core::graph::a16`) in `form`: symmetric
/// `i16` activations at [`headroom16`]× the calibration set's absolute maximum,
/// saturated where a Linear reads them so that `K·127·Q ≤ 2^30`, int8 weights as in the int8
/// path, each GELU a 513-entry table interpolated in 1/128 steps.
/// - [`Form16::PerNode`] (token-wise graphs: `mlp2x-gelu`): each node's output is saturated for
///   the node that reads it (the last at 32767), its saturation stored in its `out` entry of
///   `quant.meta`, the input's in `Z_X`; a GELU's parameters are the tensor `name.gelu16`.
/// - [`Form16::Appended`] (MobileVLM V2): a GELU's output is saturated for a Linear of its own
///   width (it feeds one, through a pool at most), the others at 32767; the input's saturation
///   and the GELUs' parameters are appended to `quant.meta` (`ldp_core::graph::a16::appended`).
pub(super) fn quantize_a16(
    m: &FloatModel,
    r: &Ranges,
    nodes: &[Node],
    d: Dims,
    form: Form16,
) -> anyhow::Result<Vec<u8>> {
    use ldp_core::graph::a16::{appended, reader_width};
    use ldp_core::kernels::norm::a16::MAX_THREE;
    use ldp_core::quant::a16::MAX16;
    let pl = plan(nodes, d, Scheme::Int16).map_err(|e| anyhow::anyhow!("internal: {e}"))?;
    let qp = |n: &str, q: i32| qp16(r, n, q);
    let mut o = Out::new(match form {
        Form16::PerNode => meta::total(nodes),
        Form16::Appended => appended::len(nodes),
    });
    // Biases within ±2^29 (|i16| · 2^14), the 16-bit path's accumulator budget.
    o.max_bias_shift = ldp_core::quant::kernels::MAX_BIAS_SHIFT - 1;
    // A value's saturation: the narrowest budget among the Linears and squeeze-excitations that
    // read it (32767 when none does).
    let budget = |v: Resolved| reader_width(nodes, d, &pl, v).map_or(MAX16, qmax16);
    let qx = budget(Resolved::Input);
    let x = qp("x", qx)?;
    o.t.insert("input.scale".into(), super::f32b(&[x.scale]));
    o.t.insert("input.zero".into(), vec![0u8]);
    o.act(meta::Z_X, x);
    match form {
        Form16::PerNode => o.meta[meta::Z_X] = qx,
        Form16::Appended => o.meta[appended::q_x(nodes)] = qx,
    }
    let mut res: Vec<QP> = Vec::with_capacity(nodes.len());
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        let inq = match pl.input[i] {
            Resolved::Input => x,
            Resolved::Node(k) => res[k],
        };
        let (ci, co) = (
            match pl.input[i] {
                Resolved::Input => d.c_in,
                Resolved::Node(k) => pl.shape[k].c,
            },
            pl.shape[i].c,
        );
        let result = match nd.op {
            Op::Linear { act, .. } => {
                let (w, b) = tensors(m, nodes, i)?;
                let q_out = match form {
                    // The budget of the nodes that read it.
                    Form16::PerNode => budget(Resolved::Node(i)),
                    // A GELU's output feeds the next Linear (through a pool at most): its
                    // saturation keeps that Linear's products within the budget.
                    Form16::Appended if act == Act::Gelu => qmax16(co),
                    Form16::Appended => MAX16,
                };
                let out = qp(nd.value, q_out)?;
                let (pre, fix) = match act {
                    Act::Gelu => (qp(pre_of(nd), MAX16)?, pre_of(nd)),
                    Act::None => (out, nd.value),
                    Act::Hardswish => anyhow::bail!("16-bit activations cover GELU, not Hardswish"),
                };
                let bias = linear_bias(r, nd, fix, b, co)?;
                let cv = conv(
                    w,
                    bias.as_deref(),
                    co,
                    ci,
                    &[inq.scale],
                    &[0],
                    pre.scale,
                    false,
                );
                o.conv(nd.name, cv, mi.shift);
                o.act(mi.pre, pre);
                o.act(mi.out, out);
                if form == Form16::PerNode {
                    o.meta[mi.out] = q_out;
                }
                if act == Act::Gelu {
                    let (lut, [pm, ps, im, is]) = gelu16_table(pre, out, q_out);
                    o.t.insert(format!("{}.lut16", nd.table_name()), super::i16b(&lut));
                    match form {
                        Form16::PerNode => {
                            o.t.insert(
                                format!("{}.gelu16", nd.table_name()),
                                super::i32b(&[pm, ps, im, is]),
                            );
                        }
                        Form16::Appended => {
                            let g = appended::gelu(nodes, i);
                            o.meta[g..g + 5].copy_from_slice(&[q_out, pm, ps, im, is]);
                        }
                    }
                }
                out
            }
            Op::Pool { .. } => inq,
            Op::Depthwise { .. } => {
                let (w, b) = tensors(m, nodes, i)?;
                let dq = qp(nd.value, MAX16)?;
                let bias = fb(r, nd.value, b, co);
                let cv = conv(
                    w,
                    bias.as_deref(),
                    co,
                    9,
                    &[inq.scale],
                    &[0],
                    dq.scale,
                    true,
                );
                o.conv(nd.name, cv, mi.shift);
                o.act(mi.out, dq);
                if form == Form16::PerNode {
                    // Saturated at 32767 only (the checks require no budget of its readers).
                    o.meta[mi.out] = MAX16;
                }
                residual(nd, &mi, &pl.residual[i], &res, dq, &mut o, |v| qp(v, MAX16))?
            }
            Op::LayerNorm { act, .. } if form == Form16::PerNode => {
                let (g, b) = norm_tensors(m, nodes, i)?;
                // Its own saturation; with a residual addition the sum is read instead (at
                // 32767: only a depthwise conv reads it in V1).
                let q_out = if nd.residual().is_some() {
                    MAX16
                } else {
                    budget(Resolved::Node(i))
                };
                let mut out = qp(nd.value, q_out)?;
                if act == Act::Hardswish {
                    // The scale 3/three exactly, so that `v + three` is x + 3 on the grid.
                    let three = (3.0 / out.scale as f64)
                        .round()
                        .clamp(1.0, MAX_THREE as f64) as i32;
                    out.scale = (3.0 / three as f64) as f32;
                    let shift = 29 + (2 * three).ilog2() as i32;
                    let mult = ((1u64 << shift) as f64 / (2 * three) as f64).round() as i32;
                    o.t.insert(
                        format!("{}.hswish16", nd.table_name()),
                        super::i32b(&[three, mult, shift]),
                    );
                } else if act == Act::Gelu {
                    anyhow::bail!("16-bit activations cover a LayerNorm with Hardswish or none");
                }
                o.norm(nd.name, super::norm(g, b, inq, out), mi.shift, mi.eps);
                o.act(mi.pre, out);
                o.act(mi.out, out);
                o.meta[mi.out] = q_out;
                residual(nd, &mi, &pl.residual[i], &res, out, &mut o, |v| {
                    qp(v, MAX16)
                })?
            }
            Op::SqueezeExcite { hid, .. } if form == Form16::PerNode => {
                use ldp_core::kernels::se::a16::{GATE_ONE, GATE_SCALE};
                let sq = d.squeeze;
                let q_h = qmax16(sq);
                let sh = qp(hid, q_h)?;
                let sg = QP {
                    scale: GATE_SCALE,
                    zero: 0,
                };
                let q_out = budget(Resolved::Node(i));
                let se = qp(nd.value, q_out)?;
                o.act(mi.pre, sh);
                o.meta[mi.pre] = q_h;
                o.act(mi.se + 1, sg);
                o.act(mi.out, se);
                o.meta[mi.out] = q_out;
                let (w1, b1) = (tensor(m, nodes, i, 0)?, tensor(m, nodes, i, 1)?);
                let (w2, b2) = (tensor(m, nodes, i, 2)?, tensor(m, nodes, i, 3)?);
                let fc1 = conv(w1, Some(b1), sq, co, &[inq.scale], &[0], sh.scale, false);
                o.conv(&format!("{}.fc1", nd.name), fc1, mi.shift);
                let fc2 = conv(w2, Some(b2), co, sq, &[sh.scale], &[0], sg.scale, false);
                o.conv(&format!("{}.fc2", nd.name), fc2, mi.se);
                let (sm, ss) =
                    encode_multiplier(inq.scale as f64 / (GATE_ONE as f64 * se.scale as f64));
                o.meta[mi.se + 2] = sm;
                o.meta[mi.se + 3] = ss;
                se
            }
            Op::LayerNorm { .. } | Op::Resize { .. } | Op::SqueezeExcite { .. } => anyhow::bail!(
                "16-bit activations in the appended form do not cover LayerNorm, resize or \
                 squeeze-excitation nodes"
            ),
        };
        res.push(result);
    }
    if !o.problems.is_empty() {
        anyhow::bail!(
            "int8 (16-bit activations): {}. Check the calibration inputs (are they typical inputs \
             of this model?), try --activations int8, or use f16",
            o.problems.join(", ")
        );
    }
    o.assemble(&m.config(), FLAG_ACT16)
}
