//! Calibration points and int8 tables of graph architectures (`ldp_core::graph`): one walk
//! over the nodes, the same for every graph architecture. Each node's output is calibrated
//! under the node's name; a node with a fused activation also under `name.pre` (its conv's
//! requantized output, before the table).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use ldp_core::graph::{float_index, meta, Act, GraphConfig};

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
