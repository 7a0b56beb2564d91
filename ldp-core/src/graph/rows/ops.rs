//! The operations of each dtype on row segments and pixel chunks ([`RowOps`]): int8 with its
//! parameters read from the blob by node name, and float over the node's tensors.

use super::exec::{run, In, Out, RowOps, INTERNAL};
use crate::elem::Elem;
use crate::error::Error;
use crate::graph::plan::{plan, Dims, Scheme, MAX_NODES};
use crate::graph::{Node, Op, Resolved};
use crate::kernels::depthwise::DwShape;
use crate::stream::kernels::DwRows;
use crate::stream::{RowSink, RowSource};

// ---------------------------------------------------------------------------------------------
// int8

use crate::blob::Model;
use crate::quant::graph::{idx, Params};
use crate::quant::kernels::{self as qk, AddQ, ConvQ, NormQ};
use crate::stream::kernels::{
    depthwise_row_float, depthwise_row_i8, resize_row_float, resize_row_i8, ResizeQ,
};

/// One node's int8 parameters.
#[derive(Clone, Copy)]
enum NodeQ<'a> {
    None,
    Conv(ConvQ<'a>, Option<AddQ>),
    Norm(NormQ<'a>),
    Resize(ResizeQ<'a>),
}

/// The int8 operations, parameters read from the blob by node name at the indices of
/// [`super::meta::node`] — the same values the whole-tensor executor reads.
pub(crate) struct I8Ops<'a> {
    nodes: &'a [Node],
    q: [NodeQ<'a>; MAX_NODES],
    /// Zero point of a resize reading an activation (one value for all channels).
    zero: [[i8; 1]; MAX_NODES],
    /// Zero point of a pool's input (and output).
    pool_zero: [i32; MAX_NODES],
    d: Dims,
}

impl<'a> I8Ops<'a> {
    /// The parameters of an int8 blob of graph `nodes`.
    pub(crate) fn new(m: &Model<'a>, nodes: &'a [Node], d: Dims) -> Result<Self, Error> {
        use crate::graph::{meta, Act};
        let p = Params::new(m)?;
        let pl = plan(nodes, d, Scheme::Int8).map_err(Error::InvalidConfig)?;
        let zero_of = |r: Resolved| match r {
            Resolved::Input => p.z(meta::Z_X),
            Resolved::Node(k) => p.z(meta::node(nodes, k).result()),
        };
        let mut o = I8Ops {
            nodes,
            q: [NodeQ::None; MAX_NODES],
            zero: [[0]; MAX_NODES],
            pool_zero: [0; MAX_NODES],
            d,
        };
        for (i, nd) in nodes.iter().enumerate() {
            let mi = meta::node(nodes, i);
            let lut = match nd.act() {
                Act::Gelu | Act::Hardswish => Some(p.lut_at(nd.table_name(), ".lut")?),
                Act::None => None,
            };
            o.q[i] = match nd.op {
                Op::Linear { .. } => {
                    NodeQ::Conv(p.conv(nd.name, mi.shift, 0, p.z(mi.pre), lut)?, None)
                }
                Op::Depthwise { .. } => {
                    let q = p.conv(nd.name, mi.shift, zero_of(pl.input[i]), p.z(mi.out), None)?;
                    let add = pl.residual[i].map(|r| {
                        let (a, z) = (mi.add, zero_of(r));
                        p.add(p.z(mi.out), z, a, a + 1, a + 2, a + 3)
                    });
                    NodeQ::Conv(q, add)
                }
                Op::LayerNorm { .. } => {
                    NodeQ::Norm(p.norm(nd.name, mi.shift, mi.eps, p.z(mi.pre), lut)?)
                }
                Op::Pool { .. } => {
                    o.pool_zero[i] = zero_of(pl.input[i]);
                    NodeQ::None
                }
                Op::SqueezeExcite { .. } => {
                    return Err(Error::Unsupported(
                        "stream: squeeze-excitation needs the multi-pass streamer",
                    ))
                }
                Op::Resize { .. } => {
                    o.zero[i] = [zero_of(pl.input[i]).clamp(-128, 127) as i8];
                    let in_zero: &'a [i8] = match pl.input[i] {
                        Resolved::Input => m.i8s(idx(m, "input.zero", "")?)?,
                        Resolved::Node(_) => &[],
                    };
                    NodeQ::Resize(ResizeQ {
                        in_zero,
                        mult: m.i16s(idx(m, nd.name, ".mult")?)?,
                        shift: p.z(mi.shift),
                        out_zero: p.z(mi.out),
                    })
                }
            };
        }
        Ok(o)
    }
    fn conv(&self, i: usize) -> Result<(&ConvQ<'a>, Option<&AddQ>), Error> {
        match &self.q[i] {
            NodeQ::Conv(q, a) => Ok((q, a.as_ref())),
            _ => Err(INTERNAL),
        }
    }
}

fn i8_in<'r>(x: In<'r, i8, i8>) -> &'r [i8] {
    match x {
        In::X(v) | In::A(v) => v,
    }
}
fn i8_out<'r>(y: Out<'r, i8, i8>) -> &'r mut [i8] {
    match y {
        Out::A(v) | Out::Y(v) => v,
    }
}

impl RowOps for I8Ops<'_> {
    type X = i8;
    type A = i8;
    type Y = i8;
    type Acc = i32;
    fn pool_acc(&self, i: usize, v: &[i8], acc: &mut [i32]) {
        let z = self.pool_zero[i];
        for (a, &v) in acc.iter_mut().zip(v) {
            *a = a.wrapping_add((v as i32).wrapping_sub(z));
        }
    }
    fn pool_fin(
        &self,
        i: usize,
        acc: &[i32],
        counts: &[usize],
        y: Out<'_, i8, i8>,
    ) -> Result<(), Error> {
        let (z, c) = (self.pool_zero[i], self.d.c_out);
        let y = i8_out(y);
        if y.len() != acc.len() || y.len() != counts.len() * c {
            return Err(INTERNAL);
        }
        for ((yp, ap), &n) in y.chunks_mut(c).zip(acc.chunks(c)).zip(counts) {
            for (o, &s) in yp.iter_mut().zip(ap) {
                *o = crate::quant::fixed::sat_i8(
                    z.wrapping_add(crate::quant::fixed::div_round(s as i64, n as i64) as i32),
                );
            }
        }
        Ok(())
    }
    const SCHEME: Scheme = Scheme::Int8;
    fn linear(&self, i: usize, x: In<'_, i8, i8>, y: Out<'_, i8, i8>) -> Result<(), Error> {
        let (q, _) = self.conv(i)?;
        let (ci, co) = self.nodes[i].widths(self.d.c_in, self.d.c_out);
        qk::pointwise(i8_in(x), ci, q, co, i8_out(y))
    }
    fn linear_norm(
        &self,
        i: usize,
        x: In<'_, i8, i8>,
        mid: &mut [i16],
        y: Out<'_, i8, i8>,
    ) -> Result<(), Error> {
        let (q, _) = self.conv(i)?;
        let NodeQ::Norm(n) = &self.q[i + 1] else {
            return Err(INTERNAL);
        };
        let (ci, co) = self.nodes[i].widths(self.d.c_in, self.d.c_out);
        qk::pointwise_layer_norm(i8_in(x), ci, q, co, n, mid, i8_out(y))
    }
    fn depthwise_row(
        &self,
        i: usize,
        s: DwShape,
        rows: &DwRows<'_, i8>,
        oy: usize,
        ox0: usize,
        res: Option<&[i8]>,
        y: Out<'_, i8, i8>,
    ) -> Result<(), Error> {
        let (q, add) = self.conv(i)?;
        let y = i8_out(y);
        depthwise_row_i8(s, rows, q, oy, ox0, &mut *y)?;
        match (add, res) {
            (Some(a), Some(r)) => qk::add_inplace(y, r, a),
            (None, None) => Ok(()),
            _ => Err(INTERNAL),
        }
    }
    fn resize_row(
        &self,
        i: usize,
        rows: [In<'_, i8, i8>; 2],
        col0: usize,
        (h, w, ho, wo): (usize, usize, usize, usize),
        oy: usize,
        ox0: usize,
        y: Out<'_, i8, i8>,
    ) -> Result<(), Error> {
        let NodeQ::Resize(q) = &self.q[i] else {
            return Err(INTERNAL);
        };
        let mut q = *q;
        if q.in_zero.is_empty() {
            q.in_zero = &self.zero[i];
        }
        let [r0, r1] = rows;
        let (_, _, ly) = crate::kernels::resize::int8::taps_q10(oy, h, ho);
        resize_row_i8(
            [i8_in(r0), i8_in(r1)],
            col0,
            w,
            wo,
            self.d.c_out,
            &q,
            ly,
            ox0,
            i8_out(y),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// float

use crate::graph::float::{activation, NodeTensors};
use crate::kernels::activation::apply_inplace;
use crate::kernels::norm::layer_norm_inplace;
use crate::kernels::pointwise::pointwise;

/// The float operations (weights `W`, activations stored as `A`; f32 rows in and out).
pub(crate) struct FloatOps<'w, W, A> {
    t: [NodeTensors<'w, W>; MAX_NODES],
    nodes: &'w [Node],
    d: Dims,
    _a: core::marker::PhantomData<A>,
}

impl<'w, W: Elem, A: Elem> FloatOps<'w, W, A> {
    /// The tensors of every node.
    pub(crate) fn new(
        nodes: &'w [Node],
        d: Dims,
        tensors: impl Fn(usize) -> Result<NodeTensors<'w, W>, Error>,
    ) -> Result<Self, Error> {
        let mut t = [NodeTensors::EMPTY; MAX_NODES];
        for (i, slot) in t.iter_mut().enumerate().take(nodes.len()) {
            *slot = tensors(i)?;
        }
        Ok(FloatOps {
            t,
            nodes,
            d,
            _a: core::marker::PhantomData,
        })
    }
    fn widths(&self, i: usize) -> (usize, usize) {
        self.nodes[i].widths(self.d.c_in, self.d.c_out)
    }
}

macro_rules! fin {
    ($x:expr, |$v:ident| $body:expr) => {
        match $x {
            In::X($v) => $body,
            In::A($v) => $body,
        }
    };
}
macro_rules! fout {
    ($y:expr, |$v:ident| $body:expr) => {
        match $y {
            Out::A($v) => $body,
            Out::Y($v) => $body,
        }
    };
}

impl<W: Elem, A: Elem + bytemuck::Pod> RowOps for FloatOps<'_, W, A> {
    type X = f32;
    type A = A;
    type Y = f32;
    type Acc = f32;
    fn pool_acc(&self, _i: usize, v: &[A], acc: &mut [f32]) {
        for (a, &v) in acc.iter_mut().zip(v) {
            *a += v.to_f32();
        }
    }
    fn pool_fin(
        &self,
        _i: usize,
        acc: &[f32],
        counts: &[usize],
        y: Out<'_, A, f32>,
    ) -> Result<(), Error> {
        let c = self.d.c_out;
        fout!(y, |y| {
            if y.len() != acc.len() || y.len() != counts.len() * c {
                return Err(INTERNAL);
            }
            for ((yp, ap), &n) in y.chunks_mut(c).zip(acc.chunks(c)).zip(counts) {
                let inv = 1.0 / n as f32;
                for (o, &s) in yp.iter_mut().zip(ap) {
                    *o = Elem::from_f32(s * inv);
                }
            }
            Ok(())
        })
    }
    const SCHEME: Scheme = Scheme::Float;
    fn linear(&self, i: usize, x: In<'_, f32, A>, y: Out<'_, A, f32>) -> Result<(), Error> {
        let t = &self.t[i];
        let (ci, co) = self.widths(i);
        let act = activation(self.nodes[i].act());
        fin!(x, |x| fout!(y, |y| pointwise(
            x,
            ci,
            t.w,
            Some(t.b),
            co,
            act,
            y
        )))
    }
    fn linear_norm(
        &self,
        i: usize,
        x: In<'_, f32, A>,
        _mid: &mut [i16],
        y: Out<'_, A, f32>,
    ) -> Result<(), Error> {
        let (t, n) = (&self.t[i], &self.t[i + 1]);
        let (ci, co) = self.widths(i);
        let act = activation(self.nodes[i].act());
        let act_n = activation(self.nodes[i + 1].act());
        fin!(x, |x| fout!(y, |y| {
            pointwise(x, ci, t.w, Some(t.b), co, act, &mut *y)?;
            layer_norm_inplace(&mut *y, co, n.g, n.b)?;
            if let Some(a) = act_n {
                apply_inplace(a, y);
            }
            Ok(())
        }))
    }
    fn depthwise_row(
        &self,
        i: usize,
        s: DwShape,
        rows: &DwRows<'_, A>,
        oy: usize,
        ox0: usize,
        res: Option<&[A]>,
        y: Out<'_, A, f32>,
    ) -> Result<(), Error> {
        let t = &self.t[i];
        fout!(y, |y| depthwise_row_float(
            s,
            rows,
            t.w,
            Some(t.b),
            res,
            oy,
            ox0,
            y
        ))
    }
    fn resize_row(
        &self,
        _i: usize,
        rows: [In<'_, f32, A>; 2],
        col0: usize,
        (h, w, ho, wo): (usize, usize, usize, usize),
        oy: usize,
        ox0: usize,
        y: Out<'_, A, f32>,
    ) -> Result<(), Error> {
        let (_, _, ly) = crate::kernels::resize::taps(oy, h, ho);
        let c = self.d.c_out;
        match rows {
            [In::X(a), In::X(b)] => {
                fout!(y, |y| resize_row_float([a, b], col0, w, wo, c, ly, ox0, y))
            }
            [In::A(a), In::A(b)] => {
                fout!(y, |y| resize_row_float([a, b], col0, w, wo, c, ly, ox0, y))
            }
            _ => Err(INTERNAL),
        }
    }
}

/// Streams a float blob of node list `nodes` (weights `W` of the blob's dtype, activations
/// `A`).
pub(crate) fn run_float<W: Elem, A: Elem + bytemuck::Pod, S: RowSource<f32>, K: RowSink<f32>>(
    m: &Model<'_>,
    nodes: &'static [Node],
    d: Dims,
    strip: usize,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    let tensors =
        |i| crate::graph::float::node_tensors(nodes, i, |k| m.graph_weights::<W>(k), |k| m.f32s(k));
    let ops = FloatOps::<W, A>::new(nodes, d, tensors)?;
    run(nodes, d, strip, &ops, src, sink, scratch)
}
