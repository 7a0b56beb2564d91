//! The int8 whole-tensor executor of graph architectures, and the semantic checks of their int8
//! blobs. Every parameter is read from the blob by node name; zero points, scales and shifts
//! sit in `quant.meta` / `quant.scales` at [`super::meta`]'s indices.

use super::plan::{input_shape, plan, Around, Dims, Place, Scheme};
use super::{feeds_norm, meta, Act, GraphConfig, Node, Op, Resolved};
use crate::blob::int8::conv_shifts;
use crate::blob::{BlobError, Model};
use crate::error::{check_len, Error};
use crate::kernels::depthwise::DwShape;
use crate::quant::a16::resize_bilinear_in16;
use crate::quant::graph::{idx, trace, Params, QInput};
use crate::quant::kernels::{
    adaptive_avg_pool, add_inplace, depthwise, layer_norm_i16, resize_bilinear,
};
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
            Op::Pool { .. } => {}
        }
    }
    Ok(())
}

/// A value an int8 node reads.
enum Q<'s> {
    /// The model input (int8 or 16-bit).
    In(QInput<'s>),
    /// An int8 activation.
    I8(&'s [i8]),
    /// A 16-bit conv output (the input of a LayerNorm).
    I16(&'s [i16]),
}

/// Runs any node list in int8 on the whole tensor: quantized input `x` (`[h][w][c_in]`), int8
/// output `y` (the last node's shape), `scratch` at least the [`Scheme::Int8`] plan's length
/// (bytes, 2-byte aligned). Parameters come from the blob by node name, zero points and scales
/// from `quant.meta` at [`meta::node`]'s indices. Bit-identical to the hand-written executor it
/// replaces: the same kernels in the same order.
pub(crate) fn forward_nodes(
    m: &Model<'_>,
    nodes: &[Node],
    d: Dims,
    x: QInput<'_>,
    y: &mut [i8],
    scratch: &mut [u8],
    mut t: Trace<'_>,
) -> Result<(), Error> {
    let pl = plan(nodes, d, Scheme::Int8).map_err(Error::InvalidConfig)?;
    let n_in = input_shape(d).elems();
    match x {
        QInput::I8(x) => check_len("int8 input", x, n_in)?,
        QInput::I16(x) => check_len("16-bit input", x, n_in)?,
    }
    check_len("int8 output", y, pl.shape[nodes.len() - 1].elems())?;
    pl.fits(scratch.len())?;
    let p = Params::new(m)?;
    let wide = |k: usize| nodes[k].is_linear() && feeds_norm(nodes, k);
    // Byte range of node k's value in the arena.
    let range = |k: usize| match pl.place[k] {
        Place::Arena(o) => Some(o..o + pl.shape[k].elems() * if wide(k) { 2 } else { 1 }),
        Place::Output => None,
    };
    // Zero point of a value as its readers see it.
    let zero_of = |r: Resolved| match r {
        Resolved::Input => p.z(meta::Z_X),
        Resolved::Node(k) => p.z(meta::node(nodes, k).result()),
    };
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        let xs = match pl.input[i] {
            Resolved::Input => input_shape(d),
            Resolved::Node(k) => pl.shape[k],
        };
        let ys = pl.shape[i];
        let (around, dst) = Around::split(&mut *scratch, range(i))?;
        let read = |src: Resolved| -> Result<Q<'_>, Error> {
            let k = match src {
                Resolved::Input => return Ok(Q::In(x)),
                Resolved::Node(k) => k,
            };
            let r = range(k).ok_or(Error::InvalidConfig("graph: a node reads the model output"))?;
            let bytes = around.get(r)?;
            Ok(if wide(k) {
                Q::I16(
                    bytemuck::try_cast_slice(bytes)
                        .map_err(|_| Error::Misaligned { what: "scratch" })?,
                )
            } else {
                Q::I8(bytemuck::cast_slice(bytes))
            })
        };
        let out: &mut [i8] = match range(i) {
            Some(_) if wide(i) => &mut [],
            Some(_) => bytemuck::cast_slice_mut(&mut *dst),
            None => &mut *y,
        };
        let xv = read(pl.input[i])?;
        let lut = |nd: &Node| match nd.act() {
            Act::Gelu => p.lut_at(nd.table_name(), ".lut").map(Some),
            Act::None => Ok(None),
        };
        match nd.op {
            Op::Linear { .. } => {
                let q = p.conv(nd.name, mi.shift, 0, p.z(mi.pre), lut(nd)?)?;
                if wide(i) {
                    let o16: &mut [i16] = bytemuck::try_cast_slice_mut(&mut *dst)
                        .map_err(|_| Error::Misaligned { what: "scratch" })?;
                    match xv {
                        Q::I8(v) => pointwise(v, xs.c, &q, ys.c, o16)?,
                        _ => {
                            return Err(Error::Unsupported(
                                "graph: a 16-bit Linear output from this input",
                            ))
                        }
                    }
                    trace(&mut t, nd.value, &[], p.z(mi.out), p.s(mi.out));
                } else {
                    match xv {
                        Q::In(v) => v.pointwise(xs.c, &q, ys.c, out)?,
                        Q::I8(v) => pointwise(v, xs.c, &q, ys.c, out)?,
                        Q::I16(_) => {
                            return Err(Error::Unsupported("graph: a Linear reading 16 bits"))
                        }
                    }
                    trace(&mut t, nd.value, out, p.z(mi.out), p.s(mi.out));
                }
            }
            Op::Resize { .. } => {
                let mult = p.m.i16s(idx(p.m, nd.name, ".mult")?)?;
                let (sh, zo) = (p.z(mi.shift), p.z(mi.out));
                match xv {
                    Q::In(QInput::I16(v)) => {
                        resize_bilinear_in16(v, xs.h, xs.w, xs.c, mult, sh, zo, out, ys.h, ys.w)?
                    }
                    Q::In(QInput::I8(v)) => {
                        let zin = p.m.i8s(idx(p.m, "input.zero", "")?)?;
                        resize_bilinear(v, xs.h, xs.w, xs.c, zin, mult, sh, zo, out, ys.h, ys.w)?
                    }
                    Q::I8(v) => {
                        let za = [zero_of(pl.input[i]).clamp(-128, 127) as i8];
                        resize_bilinear(v, xs.h, xs.w, xs.c, &za, mult, sh, zo, out, ys.h, ys.w)?
                    }
                    Q::I16(_) => return Err(Error::Unsupported("graph: a resize reading 16 bits")),
                }
                trace(&mut t, nd.value, out, zo, p.s(mi.out));
            }
            Op::Pool { .. } => {
                let z = zero_of(pl.input[i]);
                match xv {
                    Q::I8(v) => adaptive_avg_pool(v, xs.h, xs.w, xs.c, z, &mut *out, ys.h, ys.w)?,
                    _ => return Err(Error::Unsupported("graph: a pool reads an int8 activation")),
                }
                trace(&mut t, nd.value, out, z, p.s(mi.out));
            }
            Op::Depthwise { stride, add } => {
                let s = DwShape {
                    h: xs.h,
                    w: xs.w,
                    c: xs.c,
                    stride: stride as usize,
                };
                let zx = zero_of(pl.input[i]);
                let q = p.conv(nd.name, mi.shift, zx, p.z(mi.out), None)?;
                match xv {
                    Q::I8(v) => depthwise(s, v, &q, &mut *out)?,
                    _ => {
                        return Err(Error::Unsupported(
                            "graph: a depthwise conv reading the input or 16 bits",
                        ))
                    }
                }
                trace(&mut t, nd.value, out, p.z(mi.out), p.s(mi.out));
                if let (Some(r), Some(src)) = (add, pl.residual[i]) {
                    let aq = p.add(
                        p.z(mi.out),
                        zero_of(src),
                        mi.add,
                        mi.add + 1,
                        mi.add + 2,
                        mi.add + 3,
                    );
                    match read(src)? {
                        Q::I8(v) => add_inplace(&mut *out, v, &aq)?,
                        _ => {
                            return Err(Error::Unsupported(
                                "graph: a residual from the input or 16 bits",
                            ))
                        }
                    }
                    trace(&mut t, r.value, out, p.z(mi.add + 3), p.s(mi.add + 3));
                }
            }
            Op::LayerNorm { .. } => {
                let nq = p.norm(nd.name, mi.shift, mi.eps, p.z(mi.pre), lut(nd)?)?;
                match xv {
                    Q::I16(v) => layer_norm_i16(v, ys.c, &nq, &mut *out)?,
                    _ => {
                        return Err(Error::Unsupported(
                            "graph: a LayerNorm reads a 16-bit conv output",
                        ))
                    }
                }
                trace(&mut t, nd.value, out, p.z(mi.out), p.s(mi.out));
            }
        }
    }
    Ok(())
}
