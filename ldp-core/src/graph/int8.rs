//! The int8 whole-tensor executor of graph architectures, and the semantic checks of their int8
//! blobs. Every parameter is read from the blob by node name; zero points, scales and shifts
//! sit in `quant.meta` / `quant.scales` at [`super::meta`]'s indices.

use super::checks::MetaChecks;
use super::plan::{input_shape, plan, Around, Dims, Place, Scheme};
use super::{meta, Act, GraphConfig, Node, Op, Resolved};
use crate::blob::{BlobError, Model};
use crate::error::{check_len, Error};
use crate::kernels::depthwise::DwShape;
// `pw_ln`: the fused pointwise → LayerNorm; on hosts over all pixels in one conv call.
#[cfg(feature = "std")]
use crate::kernels::pointwise::int8::pointwise_layer_norm_host as pw_ln;
use crate::quant::a16::resize_bilinear_in16;
use crate::quant::graph::{idx, trace, Params, QInput};
#[cfg(not(feature = "std"))]
use crate::quant::kernels::pointwise_layer_norm as pw_ln;
use crate::quant::kernels::{
    adaptive_avg_pool, add_inplace, depthwise, depthwise_rows_i16, layer_norm_i16, resize_bilinear,
    se_tmp_len, squeeze_excite, SeQ,
};
use crate::quant::kernels::{pointwise, AddQ, ConvQ, MAX_BIAS_SHIFT};
use crate::quant::Trace;

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
    let c = MetaChecks::new(meta_v, scales);
    let zero = |z: usize| {
        c.zero(
            z,
            -128..=127,
            "an activation zero point is outside -128..=127",
        )
    };
    let conv_word = |i: usize| c.conv_word(i, MAX_BIAS_SHIFT, "a conv's bias shift is above 15");
    let (at, shift, nonneg) = (|i| c.at(i), |i| c.shift(i), |i| c.nonneg(i));
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
                    c.add(m.add, zero)?;
                }
            }
            Op::LayerNorm { add, .. } => {
                shift(m.shift)?;
                nonneg(m.eps)?;
                zero(m.pre)?;
                zero(m.out)?;
                if add.is_some() {
                    c.add(m.add, zero)?;
                }
            }
            Op::SqueezeExcite { .. } => {
                conv_word(m.shift)?;
                zero(m.pre)?;
                conv_word(m.se)?;
                zero(m.se + 1)?;
                nonneg(m.se + 2)?;
                shift(m.se + 3)?;
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
/// from `quant.meta` at [`meta::node`]'s indices. Bit-identical to the hand-written executors it
/// replaces: the same kernels in the same order.
///
/// A conv feeding a row-fused LayerNorm ([`Node::rows`]) runs with it: a depthwise conv one
/// output row at a time, a Linear as many pixels at a time as the largest free buffer holds (its
/// planned row, the model output before the last node writes it, or a gap in the arena no live
/// value uses) — the results do not depend on the chunking.
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
    let (scratch, temp) = scratch[..pl.len].split_at_mut(pl.temp);
    let p = Params::new(m)?;
    let wide = |k: usize| super::plan::wide(nodes, k);
    // Byte range of node k's value in the arena.
    let range = |k: usize| match pl.place[k] {
        Place::Arena(o) => Some(
            o..o + if super::plan::row_fused(nodes, k) {
                2 * pl.shape[k].w * pl.shape[k].c
            } else {
                pl.shape[k].elems() * if wide(k) { 2 } else { 1 }
            },
        ),
        Place::Output => None,
    };
    // Zero point of a value as its readers see it.
    let zero_of = |r: Resolved| match r {
        Resolved::Input => p.z(meta::Z_X),
        Resolved::Node(k) => p.z(meta::node(nodes, k).result()),
    };
    let lut = |nd: &Node| match nd.act() {
        Act::Gelu | Act::Hardswish => p.lut_at(nd.table_name(), ".lut").map(Some),
        Act::None => Ok(None),
    };
    for (i, nd) in nodes.iter().enumerate() {
        let mi = meta::node(nodes, i);
        let shape_in = |r: Resolved| match r {
            Resolved::Input => input_shape(d),
            Resolved::Node(k) => pl.shape[k],
        };
        let xs = shape_in(pl.input[i]);
        let ys = pl.shape[i];
        if super::plan::row_fused(nodes, i) {
            // Runs with the LayerNorm after it.
            trace(&mut t, nd.value, &[], p.z(mi.out), p.s(mi.out));
            continue;
        }
        if nd.rows {
            // Conv `k` and this LayerNorm, row by row: a second written range for the conv's
            // 16-bit rows (the largest free one).
            let k = i
                .checked_sub(1)
                .ok_or(Error::InvalidConfig("graph: a row-fused LayerNorm first"))?;
            let mid_r = free_range(&pl, nodes, i, &range)
                .or_else(|| range(k))
                .ok_or(Error::InvalidConfig(
                    "graph: a row-fused conv writes the model output",
                ))?;
            let out_r = range(i);
            let (around, dst, mid) = match out_r.clone() {
                Some(o) => Around::split2(&mut *scratch, o, mid_r)?,
                None => {
                    let (a, mid) = Around::split(&mut *scratch, Some(mid_r))?;
                    (a, &mut [][..], mid)
                }
            };
            let mid: &mut [i16] = bytemuck::try_cast_slice_mut(mid)
                .map_err(|_| Error::Misaligned { what: "scratch" })?;
            let (out, mid): (&mut [i8], &mut [i16]) = match out_r {
                Some(_) => {
                    // The model output is free before the last node writes it.
                    let yl = y.len() & !1;
                    let mid = match bytemuck::try_cast_slice_mut::<i8, i16>(&mut y[..yl]) {
                        Ok(yy) if yy.len() > mid.len() => yy,
                        _ => mid,
                    };
                    (bytemuck::cast_slice_mut(dst), mid)
                }
                None => (&mut *y, mid),
            };
            let nq = p.norm(nd.name, mi.shift, mi.eps, p.z(mi.pre), lut(nd)?)?;
            let conv_in = pl.input[k];
            let xv: &[i8] = match conv_in {
                Resolved::Node(j) => bytemuck::cast_slice(around.get(
                    range(j).ok_or(Error::InvalidConfig("graph: a node reads the model output"))?,
                )?),
                Resolved::Input => match x {
                    QInput::I8(v) => v,
                    QInput::I16(_) => {
                        return Err(Error::Unsupported("graph: a row-fused conv reads 16 bits"))
                    }
                },
            };
            let ck = &nodes[k];
            let mk = meta::node(nodes, k);
            let ks = pl.shape[k];
            match ck.op {
                Op::Linear { .. } => {
                    let q = p.conv(ck.name, mk.shift, 0, p.z(mk.out), None)?;
                    pw_ln(xv, shape_in(conv_in).c, &q, ks.c, &nq, mid, &mut *out)?;
                }
                Op::Depthwise { stride, .. } => {
                    let q = p.conv(ck.name, mk.shift, zero_of(conv_in), p.z(mk.out), None)?;
                    let xs = shape_in(conv_in);
                    let s = DwShape {
                        h: xs.h,
                        w: xs.w,
                        c: xs.c,
                        stride: stride as usize,
                    };
                    let rl = ks.w * ks.c;
                    let have = 2 * mid.len();
                    let out = out.get_mut(..ks.h * rl).ok_or(Error::InvalidConfig(
                        "graph: a row-fused output is too short",
                    ))?;
                    // Output rows `oy0..` into `band` through the 16-bit row `row`.
                    let rows = |oy0: usize, band: &mut [i8], row: &mut [i16]| {
                        for (i, o) in band.chunks_exact_mut(rl).enumerate() {
                            depthwise_rows_i16(s, xv, &q, oy0 + i, oy0 + i + 1, row)?;
                            layer_norm_i16(row, ks.c, &nq, o)?;
                        }
                        Ok::<(), Error>(())
                    };
                    // With the `std` feature, bands of rows on the host's threads when the
                    // free range holds a 16-bit row for each (same bits: rows are independent).
                    #[cfg(feature = "std")]
                    let done = {
                        let n = crate::kernels::threads::row_bands(
                            ks.h,
                            rl.saturating_mul(
                                crate::kernels::threads::DEPTHWISE_COST
                                    + crate::kernels::threads::NORM_COST,
                            ),
                        );
                        if n > 1 {
                            crate::kernels::threads::split_inplace_at_with(
                                &mut *out, rl, n, &mut *mid, rl, rows,
                            )
                            .transpose()?
                            .is_some()
                        } else {
                            false
                        }
                    };
                    #[cfg(not(feature = "std"))]
                    let done = false;
                    if !done {
                        let row = mid
                            .get_mut(..rl)
                            .ok_or(Error::ScratchTooSmall { need: 2 * rl, have })?;
                        rows(0, out, row)?;
                    }
                }
                _ => {
                    return Err(Error::InvalidConfig(
                        "graph: a row-fused LayerNorm after no conv",
                    ))
                }
            }
            trace(&mut t, nd.value, out, p.z(mi.out), p.s(mi.out));
            residual(&p, nodes, i, &pl, &around, &range, &zero_of, out, &mut t)?;
            continue;
        }
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
        if let Op::SqueezeExcite { .. } = nd.op {
            // In place on its input's range (the planner made it the node's own).
            let se = se_q(&p, nd, &mi, zero_of(pl.input[i]))?;
            let tmp = super::plan::temp_words(temp, se_tmp_len(d.c_out, d.squeeze))?;
            squeeze_excite(&mut *out, ys.c, d.squeeze, &se, tmp)?;
            trace(&mut t, nd.value, out, p.z(mi.out), p.s(mi.out));
            continue;
        }
        let xv = read(pl.input[i])?;
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
            Op::Depthwise { stride, .. } => {
                let s = DwShape {
                    h: xs.h,
                    w: xs.w,
                    c: xs.c,
                    stride: stride as usize,
                };
                let zx = zero_of(pl.input[i]);
                let q = p.conv(nd.name, mi.shift, zx, p.z(mi.out), None)?;
                let Q::I8(v) = xv else {
                    return Err(Error::Unsupported(
                        "graph: a depthwise conv reading the input or 16 bits",
                    ));
                };
                if wide(i) {
                    let o16: &mut [i16] = bytemuck::try_cast_slice_mut(&mut *dst)
                        .map_err(|_| Error::Misaligned { what: "scratch" })?;
                    depthwise_rows_i16(s, v, &q, 0, ys.h, o16)?;
                    trace(&mut t, nd.value, &[], p.z(mi.out), p.s(mi.out));
                    continue;
                }
                depthwise(s, v, &q, &mut *out)?;
                trace(&mut t, nd.value, out, p.z(mi.out), p.s(mi.out));
                residual(&p, nodes, i, &pl, &around, &range, &zero_of, out, &mut t)?;
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
                residual(&p, nodes, i, &pl, &around, &range, &zero_of, out, &mut t)?;
            }
            Op::SqueezeExcite { .. } => {}
        }
    }
    Ok(())
}

/// Node `i`'s residual addition, if it has one, into its output `out`.
#[allow(clippy::too_many_arguments)]
fn residual(
    p: &Params<'_, '_>,
    nodes: &[Node],
    i: usize,
    pl: &super::plan::Plan,
    around: &Around<'_, u8>,
    range: &dyn Fn(usize) -> Option<core::ops::Range<usize>>,
    zero_of: &dyn Fn(Resolved) -> i32,
    out: &mut [i8],
    t: &mut Trace<'_>,
) -> Result<(), Error> {
    let (Some(r), Some(src)) = (nodes[i].residual(), pl.residual[i]) else {
        return Ok(());
    };
    let mi = meta::node(nodes, i);
    let a = mi.add;
    let aq = add_q(p, r, &mi, zero_of(src));
    let Resolved::Node(k) = src else {
        return Err(Error::Unsupported("graph: a residual from the model input"));
    };
    if super::plan::wide(nodes, k) {
        return Err(Error::Unsupported("graph: a residual from a 16-bit value"));
    }
    let v = around
        .get(range(k).ok_or(Error::InvalidConfig("graph: a node reads the model output"))?)?;
    add_inplace(out, bytemuck::cast_slice(v), &aq)?;
    trace(t, r.value, out, p.z(a + 3), p.s(a + 3));
    Ok(())
}

/// The int8 parameters of squeeze-excitation node `nd` (`quant.meta` indices `mi`) reading a
/// map with zero point `in_zero`.
pub(crate) fn se_q<'a>(
    p: &Params<'_, 'a>,
    nd: &Node,
    mi: &meta::NodeMeta,
    in_zero: i32,
) -> Result<SeQ<'a>, Error> {
    let m = p.m;
    let conv = |suffix: &str, word: usize, zo: i32| -> Result<ConvQ<'a>, Error> {
        crate::quant::conv_q(m, idx(m, nd.name, suffix)?, p.z(word), 0, zo, None)
    };
    Ok(SeQ {
        in_zero,
        fc1: conv(".fc1.weight", mi.shift, p.z(mi.pre))?,
        fc2: conv(".fc2.weight", mi.se, p.z(mi.se + 1))?,
        gate: m.u8s(idx(m, nd.name, ".gate.lut")?)?,
        mult: p.z(mi.se + 2),
        shift: p.z(mi.se + 3),
        out_zero: p.z(mi.out),
    })
}

/// The requantized addition `op(x) + from` of residual `r` (node `quant.meta` indices `mi`; the
/// other operand's zero point `z_from`), as `add_inplace(op_output, from)` takes it.
/// `quant.meta` lists the first operand's multiplier first: `from`'s when the sum is written
/// `from + op(x)` ([`super::Residual::source_first`]).
pub(crate) fn add_q(
    p: &Params<'_, '_>,
    r: super::Residual,
    mi: &meta::NodeMeta,
    z_from: i32,
) -> AddQ {
    let a = mi.add;
    let (ma, mb) = if r.source_first {
        (a + 1, a)
    } else {
        (a, a + 1)
    };
    p.add(p.z(mi.out), z_from, ma, mb, a + 2, a + 3)
}

/// The largest byte range of the arena that no value alive at node `i` uses (16-bit aligned),
/// if larger than the planned range of the row-fused conv before `i`.
fn free_range(
    pl: &super::plan::Plan,
    nodes: &[Node],
    i: usize,
    range: &dyn Fn(usize) -> Option<core::ops::Range<usize>>,
) -> Option<core::ops::Range<usize>> {
    let mut live: [(usize, usize); super::plan::MAX_NODES] = [(0, 0); super::plan::MAX_NODES];
    let mut n = 0;
    for k in 0..nodes.len() {
        // Alive at `i`: written at or before `i` and read at or after the conv `i - 1`, which
        // runs now (its own row is free: it is what this range replaces).
        if k <= i && pl.last[k] + 1 >= i && k + 1 != i {
            if let Some(r) = range(k) {
                live[n] = (r.start, r.end);
                n += 1;
            }
        }
    }
    let live = &mut live[..n];
    live.sort_unstable();
    let (mut best, mut at) = (0..0, 0usize);
    for &(s, e) in live.iter() {
        let lo = at.next_multiple_of(2);
        if s > lo && s - lo > best.len() {
            best = lo..s;
        }
        at = at.max(e);
    }
    let lo = at.next_multiple_of(2);
    if pl.temp > lo && pl.temp - lo > best.len() {
        best = lo..pl.temp;
    }
    let own = range(i.checked_sub(1)?)?;
    (best.len() > own.len()).then_some(best)
}
