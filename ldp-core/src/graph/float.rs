//! The float (f32/f16) whole-tensor executor of graph architectures: walks the nodes, each
//! writing its value where the memory plan ([`super::plan`]) put it — node 0 reading the input,
//! the last (and what runs in place on it) writing the output.

use super::plan::{input_shape, plan, Around, Dims, Place, Scheme};
use super::{Act, Graph, Node, Op, Resolved};
use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::kernels::activation::Activation;
use crate::kernels::depthwise::{depthwise3x3, DwShape};
use crate::kernels::norm::layer_norm_act_inplace;
use crate::kernels::pointwise::pointwise;
use crate::kernels::pool::adaptive_avg_pool;
use crate::kernels::resize::bilinear;
use crate::kernels::se::{squeeze_excite, SeWeights};

pub(super) const fn activation(a: Act) -> Option<Activation> {
    match a {
        Act::None => None,
        Act::Gelu => Some(Activation::Gelu),
        Act::Hardswish => Some(Activation::Hardswish),
    }
}

/// A value an operation reads: the model input (or output) as f32, or an arena range.
enum Rd<'s, A> {
    F(&'s [f32]),
    A(&'s [A]),
}
/// The range an operation writes.
enum Wr<'s, A> {
    F(&'s mut [f32]),
    A(&'s mut [A]),
}

macro_rules! rd {
    ($r:expr, |$x:ident| $body:expr) => {
        match $r {
            Rd::F($x) => $body,
            Rd::A($x) => $body,
        }
    };
}
macro_rules! wr {
    ($w:expr, |$y:ident| $body:expr) => {
        match $w {
            Wr::F($y) => $body,
            Wr::A($y) => $body,
        }
    };
}

/// The float weights of one node: `(first, second)` of its float tensors — a Linear's or
/// depthwise's weight and bias, or a LayerNorm's scale (in `second_f32`'s slot order: scale,
/// bias).
#[derive(Clone, Copy)]
pub(crate) struct NodeTensors<'w, W> {
    /// Linear / depthwise weight, squeeze-excitation `fc1.weight` (empty for a LayerNorm).
    pub w: &'w [W],
    /// LayerNorm scale (empty otherwise).
    pub g: &'w [f32],
    /// Bias (empty for a conv without one), squeeze-excitation `fc1.bias`.
    pub b: &'w [f32],
    /// Squeeze-excitation `fc2.weight` (empty otherwise).
    pub w2: &'w [W],
    /// Squeeze-excitation `fc2.bias` (empty otherwise).
    pub b2: &'w [f32],
}

impl<W> NodeTensors<'_, W> {
    /// No tensors.
    pub(crate) const EMPTY: Self = NodeTensors {
        w: &[],
        g: &[],
        b: &[],
        w2: &[],
        b2: &[],
    };
}

/// `Some(b)` for a node with a bias, `None` for one without.
fn bias<'b>(nd: &Node, b: &'b [f32]) -> Option<&'b [f32]> {
    nd.bias.then_some(b)
}

/// Node `i`'s tensors from accessors of the float tensor list (`wt(k)`: tensor `k` as weights,
/// `ft(k)`: as f32), in the order [`super::float_specs`] lists them.
pub(crate) fn node_tensors<'w, W: 'w>(
    nodes: &[Node],
    i: usize,
    wt: impl Fn(usize) -> Result<&'w [W], Error>,
    ft: impl Fn(usize) -> Result<&'w [f32], Error>,
) -> Result<NodeTensors<'w, W>, Error> {
    let k = super::float_index(nodes, i);
    let op = nodes.get(i).map(|n| n.op);
    let has_bias = nodes.get(i).is_some_and(|n| n.bias);
    Ok(match op {
        Some(Op::Linear { .. } | Op::Depthwise { .. }) => NodeTensors {
            w: wt(k)?,
            b: if has_bias { ft(k + 1)? } else { &[] },
            ..NodeTensors::EMPTY
        },
        Some(Op::LayerNorm { .. }) => NodeTensors {
            g: ft(k)?,
            b: ft(k + 1)?,
            ..NodeTensors::EMPTY
        },
        Some(Op::SqueezeExcite { .. }) => NodeTensors {
            w: wt(k)?,
            b: ft(k + 1)?,
            w2: wt(k + 2)?,
            b2: ft(k + 3)?,
            g: &[],
        },
        Some(Op::Resize { .. } | Op::Pool { .. }) | None => NodeTensors::EMPTY,
    })
}

/// Runs graph `g` in f32/f16 at sizes `d` with its float tensors from accessors (`wt(k)`: tensor
/// `k` of `g.float` as weights, `ft(k)`: as f32): `input` channels-last `[h][w][c_in]`, `output`
/// the last node's shape, `scratch` at least [`Plan::len`](super::plan::Plan) elements of the
/// [`Scheme::Float`] plan. The executor of blobs and of `ldp-quant`'s f32 reference alike.
pub fn forward_tensors<'w, W: Elem + 'w, A: Elem>(
    g: &Graph,
    d: Dims,
    wt: impl Fn(usize) -> Result<&'w [W], Error>,
    ft: impl Fn(usize) -> Result<&'w [f32], Error>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    forward_variant(g.nodes, d, wt, ft, input, output, scratch)
}

/// [`forward_tensors`] for a variant of a graph's node list with the same tensor list (MobileVLM
/// V2's pool-first order, [`super::mobilevlm_v2::nodes_for`]).
pub fn forward_variant<'w, W: Elem + 'w, A: Elem>(
    nodes: &[Node],
    d: Dims,
    wt: impl Fn(usize) -> Result<&'w [W], Error>,
    ft: impl Fn(usize) -> Result<&'w [f32], Error>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    let tensors = |i| node_tensors(nodes, i, &wt, &ft);
    forward_nodes(nodes, d, tensors, input, output, scratch)
}

/// Runs any node list in f32/f16 on the whole tensor: `input` channels-last `[h][w][c_in]`,
/// `output` the last node's shape, `scratch` at least the [`Scheme::Float`] plan's length
/// (elements of `A`). `tensors(i)` gives node `i`'s weights. Bit-identical to the hand-written
/// executors it replaces: the same kernels in the same order, GELU fused into a Linear, the
/// residual addition fused into the depthwise conv, LayerNorm (then its GELU) in place.
pub(crate) fn forward_nodes<'w, W: Elem + 'w, A: Elem>(
    nodes: &[Node],
    d: Dims,
    tensors: impl Fn(usize) -> Result<NodeTensors<'w, W>, Error>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    let p = plan(nodes, d, Scheme::Float).map_err(Error::InvalidConfig)?;
    check_len("input", input, input_shape(d).elems())?;
    check_len("output", output, p.shape[nodes.len() - 1].elems())?;
    p.fits(scratch.len())?;
    // The values, and after them the working memory.
    let (scratch, temp) = scratch[..p.len].split_at_mut(p.temp);
    let range = |k: usize| match p.place[k] {
        Place::Arena(o) => Some(o..o + p.shape[k].elems()),
        Place::Output => None,
    };
    for (i, nd) in nodes.iter().enumerate() {
        let t = tensors(i)?;
        let x_shape = match p.input[i] {
            Resolved::Input => input_shape(d),
            Resolved::Node(k) => p.shape[k],
        };
        if let Op::LayerNorm { .. } | Op::SqueezeExcite { .. } = nd.op {
            let act = nd.act();
            // In place on its input's range (the planner made it the node's own); the residual
            // operand and the squeeze-excitation's working memory lie around it.
            let c = p.shape[i].c;
            let (around, mid) = Around::split(&mut *scratch, range(i))?;
            let dst: Wr<'_, A> = match range(i) {
                Some(_) => Wr::A(mid),
                None => Wr::F(&mut *output),
            };
            let res = match p.residual[i] {
                Some(Resolved::Input) => Some(Rd::F(input)),
                Some(Resolved::Node(k)) => Some(Rd::A(around.get(range(k).ok_or(
                    Error::InvalidConfig("graph: a residual reads the model output"),
                )?)?)),
                None => None,
            };
            match nd.op {
                Op::SqueezeExcite { .. } => {
                    let tmp = se_tmp::<A>(&mut *temp, d.c_out, d.squeeze)?;
                    let w = SeWeights {
                        fc1_w: t.w,
                        fc1_b: t.b,
                        fc2_w: t.w2,
                        fc2_b: t.b2,
                    };
                    wr!(dst, |y| squeeze_excite(y, c, d.squeeze, &w, tmp)?);
                }
                _ => wr!(dst, |y| {
                    layer_norm_act_inplace(y, c, t.g, t.b, activation(act))?;
                    match res {
                        Some(Rd::F(r)) => add_into(y, r)?,
                        Some(Rd::A(r)) => add_into(y, r)?,
                        None => {}
                    }
                }),
            }
            continue;
        }
        // The written range, and the arena split around it for the reads.
        let (around, mid) = Around::split(&mut *scratch, range(i))?;
        let dst = match range(i) {
            Some(_) => Wr::A(mid),
            None => Wr::F(&mut *output),
        };
        let read = |src: Resolved| -> Result<Rd<'_, A>, Error> {
            match src {
                Resolved::Input => Ok(Rd::F(input)),
                Resolved::Node(k) => {
                    let r = range(k).ok_or(Error::InvalidConfig(
                        "graph: a node reads the output while writing it",
                    ))?;
                    Ok(Rd::A(around.get(r)?))
                }
            }
        };
        let x = read(p.input[i])?;
        let y_shape = p.shape[i];
        match nd.op {
            Op::Linear { act, .. } => rd!(x, |x| wr!(dst, |y| pointwise(
                x,
                x_shape.c,
                t.w,
                bias(nd, t.b),
                y_shape.c,
                activation(act),
                y
            )?)),
            Op::Pool { .. } => rd!(x, |x| wr!(dst, |y| adaptive_avg_pool(
                x, x_shape.h, x_shape.w, x_shape.c, y, y_shape.h, y_shape.w
            )?)),
            Op::Resize { .. } => rd!(x, |x| wr!(dst, |y| bilinear(
                x, x_shape.h, x_shape.w, x_shape.c, y, y_shape.h, y_shape.w
            )?)),
            Op::Depthwise { stride, .. } => {
                let s = DwShape {
                    h: x_shape.h,
                    w: x_shape.w,
                    c: x_shape.c,
                    stride: stride as usize,
                };
                let res = match p.residual[i] {
                    Some(r) => Some(read(r)?),
                    None => None,
                };
                rd!(x, |x| wr!(dst, |y| match res {
                    Some(Rd::F(r)) => depthwise3x3(s, x, t.w, bias(nd, t.b), Some(r), y)?,
                    Some(Rd::A(r)) => depthwise3x3(s, x, t.w, bias(nd, t.b), Some(r), y)?,
                    None => depthwise3x3(s, x, t.w, bias(nd, t.b), None::<&[f32]>, y)?,
                }))
            }
            Op::LayerNorm { .. } | Op::SqueezeExcite { .. } => {}
        }
    }
    Ok(())
}

/// `y = y + r` elementwise, rounded to `Y` once (the f32 sum of the two stored values).
fn add_into<Y: Elem, R: Elem>(y: &mut [Y], r: &[R]) -> Result<(), Error> {
    check_len("residual", r, y.len())?;
    for (v, a) in y.iter_mut().zip(r) {
        *v = Y::from_f32(a.to_f32() + v.to_f32());
    }
    Ok(())
}

/// The squeeze-excitation's `2c + s` f32s carved out of the arena's working memory (units of
/// `A`), aligned to 4 bytes.
fn se_tmp<A: Elem>(raw: &mut [A], c: usize, s: usize) -> Result<&mut [f32], Error> {
    let n = crate::kernels::se::scratch_len(c, s)
        .checked_mul(4)
        .ok_or(Error::InvalidConfig("dimensions overflow usize"))?;
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(raw);
    let off = bytes.as_ptr().align_offset(4);
    bytes
        .get_mut(off..)
        .and_then(|b| b.get_mut(..n))
        .and_then(|b| bytemuck::try_cast_slice_mut::<u8, f32>(b).ok())
        .ok_or(Error::Misaligned { what: "scratch" })
}
