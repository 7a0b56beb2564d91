//! Calibration points and int8 tables of graph architectures (`ldp_core::graph`): one walk
//! over the nodes, the same for every graph architecture. Each node's output is calibrated
//! under the node's name; a node with a fused activation also under `name.pre` (its conv's
//! requantized output, before the table).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use ldp_core::graph::{float_index, meta, Act, GraphConfig};

use ldp_core::blob::specs::FLAG_ACT16;
use ldp_core::quant::fixed::encode_multiplier;
use ldp_core::ModelConfig;

use super::{conv, fb, gelu, gelu64, i8b, lut, map, pw, Acts, Out, Ranges, QP};
use crate::graph::FloatModel;

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

/// The weight and bias of node `i`.
fn linear<'m>(
    m: &'m FloatModel,
    c: &GraphConfig,
    i: usize,
) -> anyhow::Result<(&'m [f32], &'m [f32])> {
    let k = float_index(c.nodes(), i);
    let t = m.tensors();
    match (t.get(k), t.get(k + 1)) {
        (Some(w), Some(b)) => Ok((w, b)),
        _ => anyhow::bail!("internal: graph node {i} has no weights"),
    }
}

/// The f32 walk: every node's output (and pre-activation output) on input `x`.
pub(super) fn intermediates(
    m: &FloatModel,
    c: &GraphConfig,
    x: &[f32],
    acts: &mut Acts,
) -> anyhow::Result<()> {
    let mut cur = x.to_vec();
    for (i, nd) in c.nodes().iter().enumerate() {
        let (ci, co) = nd.widths(c.c_in, c.c_out);
        let (w, b) = linear(m, c, i)?;
        let p = pw(&cur, ci, w, Some(b), co)?;
        cur = match nd.act() {
            Act::Gelu => {
                let a = map(&p, gelu);
                acts.push((pre_name(nd.name), p));
                a
            }
            Act::None => p,
        };
        acts.push((nd.name, cur.clone()));
    }
    Ok(())
}

/// The int8 tensors of a graph model: per node the conv (input zero point folded into the bias),
/// its table, and the `quant.meta` entries at [`meta`]'s indices; per-tensor input `xq`, 16-bit
/// saturated at `limit` when given (then node 0's biases keep a shift of at most 14).
pub(super) fn quantize(
    m: &FloatModel,
    r: &Ranges,
    c: &GraphConfig,
    xq: QP,
    limit: Option<i32>,
    o: &mut Out,
) -> anyhow::Result<()> {
    o.t.insert("input.scale".into(), super::f32b(&[xq.scale]));
    match limit {
        Some(q) => o.t.insert("input.limit".into(), super::i32b(&[q])),
        None => o.t.insert("input.zero".into(), vec![xq.zero as i8 as u8]),
    };
    o.act(meta::Z_X, xq);
    let mut inq = xq;
    for (i, nd) in c.nodes().iter().enumerate() {
        let (ci, co) = nd.widths(c.c_in, c.c_out);
        let (w, b) = linear(m, c, i)?;
        let out = r.qp(nd.name)?;
        let pre = match nd.act() {
            Act::Gelu => r.qp(pre_name(nd.name))?,
            Act::None => out,
        };
        let bias = fb(r, nd.name, Some(b), co).context("internal: bias")?;
        let cv = conv(
            w,
            Some(&bias),
            co,
            ci,
            &[inq.scale],
            &[inq.zero],
            pre.scale,
            false,
        );
        let max_bias_shift = ldp_core::quant::kernels::MAX_BIAS_SHIFT;
        o.max_bias_shift = if i == 0 && limit.is_some() {
            max_bias_shift - 1
        } else {
            max_bias_shift
        };
        o.conv(nd.name, cv, meta::shift(i));
        o.act(meta::pre(i), pre);
        if nd.act() == Act::Gelu {
            o.t.insert(format!("{}.lut", nd.name), i8b(&lut(gelu64, pre, out)));
        }
        o.act(meta::out(i), out);
        inq = out;
    }
    Ok(())
}

/// The blob of a graph model with 16-bit activations (`ldp_core::graph::a16`; V2's scheme):
/// symmetric `i16` activations at [`super::A16_HEADROOM`]× the calibration set's absolute
/// maximum, saturated where a Linear reads them so that `K·127·Q ≤ 2^30`; int8 weights as in
/// the int8 path; each GELU a 513-entry table interpolated in 1/128 steps.
pub(super) fn quantize_a16(m: &FloatModel, r: &Ranges, c: &GraphConfig) -> anyhow::Result<Vec<u8>> {
    use ldp_core::quant::a16::{GELU16_LEN, MAX16, PRODUCT_BUDGET};
    let amax = |n: &str| -> anyhow::Result<f64> {
        let o = r
            .obs
            .get(n)
            .with_context(|| format!("internal: no range for `{n}`"))?;
        Ok((o.min.abs().max(o.max.abs()) as f64).max(1e-6))
    };
    let qmax = |k: usize| ((PRODUCT_BUDGET / (127 * k.max(1) as i64)) as i32).clamp(1, MAX16);
    let qp = |n: &str, q: i32| -> anyhow::Result<QP> {
        Ok(QP {
            scale: (super::A16_HEADROOM * amax(n)? / q as f64) as f32,
            zero: 0,
        })
    };
    let nodes = c.nodes();
    let mut o = Out::new(meta::len(nodes.len()));
    // Biases within ±2^29 (|i16| · 2^14), the 16-bit path's accumulator budget.
    o.max_bias_shift = ldp_core::quant::kernels::MAX_BIAS_SHIFT - 1;
    let qx = qmax(c.c_in);
    let x = qp("x", qx)?;
    o.t.insert("input.scale".into(), super::f32b(&[x.scale]));
    o.t.insert("input.zero".into(), vec![0u8]);
    o.act(meta::Z_X, x);
    o.meta[meta::Z_X] = qx;
    let mut inq = x;
    for (i, nd) in nodes.iter().enumerate() {
        let (ci, co) = nd.widths(c.c_in, c.c_out);
        let (w, b) = linear(m, c, i)?;
        let q_out = match nodes.get(i + 1) {
            Some(next) => qmax(next.widths(c.c_in, c.c_out).0),
            None => MAX16,
        };
        let out = qp(nd.name, q_out)?;
        let pre = match nd.act() {
            Act::Gelu => qp(pre_name(nd.name), MAX16)?,
            Act::None => out,
        };
        let cv = conv(w, Some(b), co, ci, &[inq.scale], &[0], pre.scale, false);
        o.conv(nd.name, cv, meta::shift(i));
        o.act(meta::pre(i), pre);
        o.act(meta::out(i), out);
        o.meta[meta::out(i)] = q_out;
        if nd.act() == Act::Gelu {
            // The table covers [-T, T] of the pre-activation in 1/256 steps; right of it GELU is
            // the identity to within 1e-9.
            let step = super::A16_GELU_T / 256.0;
            let (sp, sh) = (pre.scale as f64, out.scale as f64);
            let lut: Vec<i16> = (0..GELU16_LEN)
                .map(|j| {
                    let v = gelu64((j as f64 - 256.0) * step) / sh;
                    v.round().clamp(-(q_out as f64), q_out as f64) as i16
                })
                .collect();
            o.t.insert(format!("{}.lut16", nd.name), super::i16b(&lut));
            let (pm, ps) = encode_multiplier(sp / step * 128.0);
            let (im, is) = encode_multiplier(sp / sh);
            o.t.insert(
                format!("{}.gelu16", nd.name),
                super::i32b(&[pm, ps, im, is]),
            );
        }
        inq = out;
    }
    if !o.problems.is_empty() {
        anyhow::bail!(
            "int8 (16-bit activations): {}. Check the calibration inputs (are they typical inputs \
             of this model?), try --activations int8, or use f16",
            o.problems.join(", ")
        );
    }
    o.assemble(&ModelConfig::Graph(*c), FLAG_ACT16)
}
