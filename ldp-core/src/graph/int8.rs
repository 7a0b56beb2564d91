//! The int8 whole-tensor executor of graph architectures, and the semantic checks of their int8
//! blobs. Every parameter is read from the blob by node name; zero points, scales and shifts
//! sit in `quant.meta` / `quant.scales` at [`super::meta`]'s indices.

use super::{meta, Act, GraphConfig, Node, Op};
use crate::blob::int8::conv_shifts;
use crate::blob::{BlobError, Model};
use crate::error::{check_len, Error};
use crate::quant::graph::{idx, trace, Params, QInput};
use crate::quant::kernels::{pointwise, ConvQ, MAX_BIAS_SHIFT};
use crate::quant::Trace;

/// The int8 parameters of node `i`, `nd`.
fn conv<'a>(p: &Params<'_, 'a>, i: usize, nd: &Node) -> Result<ConvQ<'a>, Error> {
    let lut = match nd.act() {
        Act::Gelu => Some(p.m.i8s(idx(p.m, nd.table_name(), ".lut")?)?),
        Act::None => None,
    };
    p.conv(nd.name, meta::shift(i), 0, p.z(meta::pre(i)), lut)
}

/// Quantized input `x` (`[N][c_in]`, int8 or 16-bit; only node 0 reads it) to int8 output `y`
/// (`[N][c_out]`); `scratch` needs [`GraphConfig::scratch_bytes_i8`] bytes.
pub(crate) fn forward(
    m: &Model<'_>,
    cfg: &GraphConfig,
    x: QInput<'_>,
    y: &mut [i8],
    scratch: &mut [u8],
    mut t: Trace<'_>,
) -> Result<(), Error> {
    cfg.validate()?;
    match x {
        QInput::I8(x) => check_len("int8 input", x, cfg.input_len())?,
        QInput::I16(x) => check_len("16-bit input", x, cfg.input_len())?,
    }
    check_len("int8 output", y, cfg.output_len())?;
    let need = cfg.scratch_bytes_i8();
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    let p = Params::new(m)?;
    let nodes = cfg.nodes();
    let n = cfg.tokens();
    let scratch: &mut [i8] = bytemuck::cast_slice_mut(&mut scratch[..need]);
    let half = if nodes.len() > 2 { need / 2 } else { need };
    let (mut cur, mut other) = scratch.split_at_mut(half);
    for (i, nd) in nodes.iter().enumerate() {
        let (ci, co) = nd.widths(cfg.c_in, cfg.c_out);
        let q = conv(&p, i, nd)?;
        let last = i + 1 == nodes.len();
        let out: &[i8] = match (i == 0, last) {
            (true, true) => {
                x.pointwise(ci, &q, co, &mut *y)?;
                &*y
            }
            (true, false) => {
                x.pointwise(ci, &q, co, &mut cur[..n * co])?;
                &cur[..n * co]
            }
            (false, true) => {
                pointwise(&cur[..n * ci], ci, &q, co, &mut *y)?;
                &*y
            }
            (false, false) => {
                pointwise(&cur[..n * ci], ci, &q, co, &mut other[..n * co])?;
                core::mem::swap(&mut cur, &mut other);
                &cur[..n * co]
            }
        };
        trace(&mut t, nd.name, out, p.z(meta::out(i)), p.s(meta::out(i)));
    }
    Ok(())
}

/// Runs node `i` on whole tokens `x` into `y` (the streaming executor's step). Only node 0
/// reads a 16-bit input ([`QInput::I16`]); the later nodes read int8 activations.
pub(crate) fn node(
    p: &Params<'_, '_>,
    cfg: &GraphConfig,
    i: usize,
    x: QInput<'_>,
    y: &mut [i8],
) -> Result<(), Error> {
    let nd = cfg
        .nodes()
        .get(i)
        .ok_or(Error::Unsupported("graph node out of range"))?;
    let (ci, co) = nd.widths(cfg.c_in, cfg.c_out);
    x.pointwise(ci, &conv(p, i, nd)?, co, y)
}

/// `quant.meta` index of the model output's zero point and scale.
pub(crate) fn output_meta(cfg: &GraphConfig) -> usize {
    meta::out(cfg.nodes().len().saturating_sub(1))
}

/// Semantic checks of a graph int8 blob's `quant.meta` / `quant.scales` (lengths are checked
/// by the table), walking the nodes: zero points in `-128..=127` with finite non-negative
/// scales, conv shift words with a shift in `1..=62` and a bias shift in `0..=15`, other shifts
/// in `1..=62`, multipliers and epsilons non-negative, and a pre-table zero point equal to the
/// output's for a Linear without activation.
pub(crate) fn validate(cfg: &GraphConfig, meta_v: &[i32], scales: &[f32]) -> Result<(), BlobError> {
    validate_nodes(cfg.nodes(), meta_v, scales)
}

/// [`validate`] for any node list (the `ldp` graph included).
pub(crate) fn validate_nodes(
    nodes: &[Node],
    meta_v: &[i32],
    scales: &[f32],
) -> Result<(), BlobError> {
    let bad = BlobError::BadTable;
    let at = |i: usize| meta_v.get(i).copied().ok_or(bad("quant.meta too short"));
    let zero = |z: usize| -> Result<(), BlobError> {
        if !(-128..=127).contains(&at(z)?) {
            return Err(bad("an activation zero point is outside -128..=127"));
        }
        let s = scales.get(z).copied().unwrap_or(0.0);
        if !(s.is_finite() && s >= 0.0) {
            return Err(bad("an activation scale is not finite and non-negative"));
        }
        Ok(())
    };
    let conv_word = |i: usize| -> Result<(), BlobError> {
        let word = at(i)?;
        let (shift, bias_shift) = conv_shifts(word);
        if !(0..1 << 16).contains(&word) || !(1..=62).contains(&shift) {
            return Err(bad("a conv's requantization shift is outside 1..=62"));
        }
        if bias_shift > MAX_BIAS_SHIFT {
            return Err(bad("a conv's bias shift is above 15"));
        }
        Ok(())
    };
    let shift = |i: usize| -> Result<(), BlobError> {
        if !(1..=62).contains(&at(i)?) {
            return Err(bad("a requantization shift is outside 1..=62"));
        }
        Ok(())
    };
    let nonneg = |i: usize| -> Result<(), BlobError> {
        if at(i)? < 0 {
            return Err(bad("a multiplier or epsilon is negative"));
        }
        Ok(())
    };
    zero(meta::Z_X)?;
    for (i, nd) in nodes.iter().enumerate() {
        let m = meta::node(nodes, i);
        match nd.op {
            Op::Linear { act, .. } => {
                conv_word(m.shift)?;
                zero(m.pre)?;
                zero(m.out)?;
                if act == Act::None && at(m.pre)? != at(m.out)? {
                    return Err(bad("a node without activation has two output zero points"));
                }
            }
            Op::Depthwise { add, .. } => {
                conv_word(m.shift)?;
                zero(m.out)?;
                if add.is_some() {
                    nonneg(m.add)?;
                    nonneg(m.add + 1)?;
                    shift(m.add + 2)?;
                    zero(m.add + 3)?;
                }
            }
            Op::LayerNorm { .. } => {
                shift(m.shift)?;
                nonneg(m.eps)?;
                zero(m.pre)?;
                zero(m.out)?;
            }
            Op::Resize { .. } => {
                shift(m.shift)?;
                zero(m.out)?;
            }
        }
    }
    Ok(())
}
