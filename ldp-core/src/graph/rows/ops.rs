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
use crate::quant::graph::{idx, Params, QInput};
use crate::quant::kernels::{self as qk, AddQ, ConvQ, NormQ, SeQ};
use crate::stream::kernels::{
    depthwise_row_float, depthwise_row_i8, resize_row_float, resize_row_i8, ResizeQ,
};

/// One node's int8 parameters.
#[derive(Clone, Copy)]
enum NodeQ<'a> {
    None,
    Conv(ConvQ<'a>, Option<AddQ>),
    Norm(NormQ<'a>, Option<AddQ>),
    Resize(ResizeQ<'a>),
    Se(SeQ<'a>),
}

/// An input row element of an int8 blob: `i8`, or `i16` for a blob with a 16-bit input
/// ([`crate::blob::specs::FLAG_INPUT16`]; only Linear nodes may read it).
pub(crate) trait QRow: bytemuck::Pod + Default {
    /// The row as a conv's input.
    fn row(x: &[Self]) -> QInput<'_>;
}

impl QRow for i8 {
    fn row(x: &[i8]) -> QInput<'_> {
        QInput::I8(x)
    }
}

impl QRow for i16 {
    fn row(x: &[i16]) -> QInput<'_> {
        QInput::I16(x)
    }
}

/// The int8 operations, parameters read from the blob by node name at the indices of
/// [`super::meta::node`] — the same values the whole-tensor executor reads. `X` is the input
/// row element ([`QRow`]).
pub(crate) struct I8Ops<'a, X = i8> {
    nodes: &'a [Node],
    q: [NodeQ<'a>; MAX_NODES],
    /// Zero point of a resize reading an activation (one value for all channels).
    zero: [[i8; 1]; MAX_NODES],
    /// Zero point of a pool's input (and output).
    pool_zero: [i32; MAX_NODES],
    d: Dims,
    _x: core::marker::PhantomData<X>,
}

impl<'a, X: QRow> I8Ops<'a, X> {
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
            _x: core::marker::PhantomData,
        };
        for (i, nd) in nodes.iter().enumerate() {
            let mi = meta::node(nodes, i);
            let lut = match nd.act() {
                Act::Gelu | Act::Hardswish => Some(p.lut_at(nd.table_name(), ".lut")?),
                Act::None => None,
            };
            // A residual addition: the operation's output is the first operand (`quant.meta`
            // lists the other operand's multiplier first for `from + op(x)`).
            let add = match (nd.residual(), pl.residual[i]) {
                (Some(r), Some(src)) => Some(crate::graph::int8::add_q(&p, r, &mi, zero_of(src))),
                _ => None,
            };
            o.q[i] = match nd.op {
                Op::Linear { .. } => {
                    NodeQ::Conv(p.conv(nd.name, mi.shift, 0, p.z(mi.pre), lut)?, None)
                }
                Op::Depthwise { .. } => {
                    let q = p.conv(nd.name, mi.shift, zero_of(pl.input[i]), p.z(mi.out), None)?;
                    NodeQ::Conv(q, add)
                }
                Op::LayerNorm { .. } => {
                    NodeQ::Norm(p.norm(nd.name, mi.shift, mi.eps, p.z(mi.pre), lut)?, add)
                }
                Op::SqueezeExcite { .. } => {
                    NodeQ::Se(crate::graph::int8::se_q(&p, nd, &mi, zero_of(pl.input[i]))?)
                }
                Op::Pool { .. } => {
                    o.pool_zero[i] = zero_of(pl.input[i]);
                    NodeQ::None
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

/// `y += res` requantized by `add` (a node with a residual has both, others neither).
fn add_res(y: &mut [i8], add: Option<&AddQ>, res: Option<&[i8]>) -> Result<(), Error> {
    match (add, res) {
        (Some(a), Some(r)) => qk::add_inplace(y, r, a),
        (None, None) => Ok(()),
        _ => Err(INTERNAL),
    }
}

/// A node's int8 input: an activation, or the model input rows.
fn q_in<'r, X: QRow>(x: In<'r, X, i8>) -> QInput<'r> {
    match x {
        In::X(v) => X::row(v),
        In::A(v) => QInput::I8(v),
    }
}
/// An int8 input that must be 8-bit (a 16-bit model input only feeds a Linear).
fn i8_in<'r, X: QRow>(x: In<'r, X, i8>) -> Result<&'r [i8], Error> {
    match q_in(x) {
        QInput::I8(v) => Ok(v),
        QInput::I16(_) => Err(Error::Unsupported(
            "stream: a 16-bit input read by an operation other than a Linear",
        )),
    }
}
fn i8_out<'r>(y: Out<'r, i8, i8>) -> &'r mut [i8] {
    match y {
        Out::A(v) | Out::Y(v) => v,
    }
}

impl<X: QRow> RowOps for I8Ops<'_, X> {
    type X = X;
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
    fn linear(&self, i: usize, x: In<'_, X, i8>, y: Out<'_, i8, i8>) -> Result<(), Error> {
        let (q, _) = self.conv(i)?;
        let (ci, co) = self.nodes[i].widths(self.d.c_in, self.d.c_out);
        q_in(x).pointwise(ci, q, co, i8_out(y))
    }
    fn linear_norm(
        &self,
        i: usize,
        x: In<'_, X, i8>,
        mid: &mut [i16],
        res: Option<&[i8]>,
        y: Out<'_, i8, i8>,
    ) -> Result<(), Error> {
        let (q, _) = self.conv(i)?;
        let NodeQ::Norm(n, add) = &self.q[i + 1] else {
            return Err(INTERNAL);
        };
        let (ci, co) = self.nodes[i].widths(self.d.c_in, self.d.c_out);
        let y = i8_out(y);
        qk::pointwise_layer_norm(i8_in(x)?, ci, q, co, n, mid, &mut *y)?;
        add_res(y, add.as_ref(), res)
    }
    fn depthwise_norm_row(
        &self,
        i: usize,
        s: DwShape,
        rows: &DwRows<'_, i8>,
        oy: usize,
        ox0: usize,
        mid: &mut [i16],
        y: Out<'_, i8, i8>,
    ) -> Result<(), Error> {
        let (q, _) = self.conv(i)?;
        let NodeQ::Norm(n, None) = &self.q[i + 1] else {
            return Err(INTERNAL);
        };
        let y = i8_out(y);
        let mid = mid.get_mut(..y.len()).ok_or(INTERNAL)?;
        depthwise_row_i8(s, rows, q, oy, ox0, &mut *mid)?;
        qk::layer_norm_i16(mid, self.d.c_out, n, y)
    }
    fn se_sum(&self, i: usize, x: &[i8], sums: &mut [i32]) {
        let NodeQ::Se(q) = &self.q[i] else { return };
        let c = sums.len().max(1);
        for px in x.chunks_exact(c) {
            for (s, &v) in sums.iter_mut().zip(px) {
                *s = s.wrapping_add((v as i32).wrapping_sub(q.in_zero));
            }
        }
    }
    fn se_gate(
        &self,
        i: usize,
        sums: &mut [i32],
        pixels: usize,
        hid: &mut [i32],
        gate: &mut [i32],
    ) -> Result<(), Error> {
        let NodeQ::Se(q) = &self.q[i] else {
            return Err(INTERNAL);
        };
        // The function `quant::kernels::squeeze_excite` uses, from the sums on.
        qk::se_gate_from_sums(q, sums, pixels, hid, gate)
    }
    fn se_apply(&self, i: usize, gate: &[i32], x: &[i8], y: &mut [i8]) -> Result<(), Error> {
        let NodeQ::Se(q) = &self.q[i] else {
            return Err(INTERNAL);
        };
        y.get_mut(..x.len()).ok_or(INTERNAL)?.copy_from_slice(x);
        qk::se_apply(q, gate, y);
        Ok(())
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
        add_res(y, add, res)
    }
    fn resize_row(
        &self,
        i: usize,
        rows: [In<'_, X, i8>; 2],
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
            [i8_in(r0)?, i8_in(r1)?],
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
use crate::kernels::norm::layer_norm_act_inplace;
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
        let b = self.nodes[i].bias.then_some(t.b);
        fin!(x, |x| fout!(y, |y| pointwise(x, ci, t.w, b, co, act, y)))
    }
    fn linear_norm(
        &self,
        i: usize,
        x: In<'_, f32, A>,
        _mid: &mut [i16],
        res: Option<&[A]>,
        y: Out<'_, A, f32>,
    ) -> Result<(), Error> {
        let (t, n) = (&self.t[i], &self.t[i + 1]);
        let (ci, co) = self.widths(i);
        let act = activation(self.nodes[i].act());
        let act_n = activation(self.nodes[i + 1].act());
        let b = self.nodes[i].bias.then_some(t.b);
        fin!(x, |x| fout!(y, |y| {
            pointwise(x, ci, t.w, b, co, act, &mut *y)?;
            layer_norm_act_inplace(&mut *y, co, n.g, n.b, act_n)?;
            if let Some(r) = res {
                if r.len() != y.len() {
                    return Err(INTERNAL);
                }
                // The whole-tensor executor's sum: the residual plus the stored value.
                for (o, a) in y.iter_mut().zip(r) {
                    *o = Elem::from_f32(a.to_f32() + o.to_f32());
                }
            }
            Ok(())
        }))
    }
    fn depthwise_norm_row(
        &self,
        i: usize,
        s: DwShape,
        rows: &DwRows<'_, A>,
        oy: usize,
        ox0: usize,
        _mid: &mut [i16],
        y: Out<'_, A, f32>,
    ) -> Result<(), Error> {
        let (t, n) = (&self.t[i], &self.t[i + 1]);
        let b = self.nodes[i].bias.then_some(t.b);
        let act_n = activation(self.nodes[i + 1].act());
        let c = self.d.c_out;
        fout!(y, |y| {
            depthwise_row_float(s, rows, t.w, b, None::<&[A]>, oy, ox0, &mut *y)?;
            layer_norm_act_inplace(&mut *y, c, n.g, n.b, act_n)?;
            Ok(())
        })
    }
    fn se_sum(&self, _i: usize, x: &[A], sums: &mut [f32]) {
        let c = sums.len().max(1);
        for px in x.chunks_exact(c) {
            for (s, v) in sums.iter_mut().zip(px) {
                *s += v.to_f32();
            }
        }
    }
    fn se_gate(
        &self,
        i: usize,
        sums: &mut [f32],
        pixels: usize,
        hid: &mut [f32],
        gate: &mut [f32],
    ) -> Result<(), Error> {
        // `kernels::se::squeeze_excite`, from the sums on.
        let t = &self.t[i];
        let w = crate::kernels::se::SeWeights {
            fc1_w: t.w,
            fc1_b: t.b,
            fc2_w: t.w2,
            fc2_b: t.b2,
        };
        crate::kernels::se::gate_from_sums(&w, sums, pixels, hid, gate)
    }
    fn se_apply(&self, _i: usize, gate: &[f32], x: &[A], y: &mut [A]) -> Result<(), Error> {
        let c = gate.len().max(1);
        if y.len() < x.len() {
            return Err(INTERNAL);
        }
        for (py, px) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
            for ((o, v), g) in py.iter_mut().zip(px).zip(gate) {
                *o = A::from_f32(v.to_f32() * g);
            }
        }
        Ok(())
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
        let b = self.nodes[i].bias.then_some(t.b);
        fout!(y, |y| depthwise_row_float(s, rows, t.w, b, res, oy, ox0, y))
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
