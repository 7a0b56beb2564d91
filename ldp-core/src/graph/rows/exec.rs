//! The row executor: rings, chunks and pool accumulators carved from one arena, and the greedy
//! schedule of [`super::layout`] run with data.

use super::{layout, open_bins, ready, slot_of, strip_cols, tap_rows, Layout};
use crate::graph::plan::{input_shape, Around, Dims, Scheme, MAX_NODES};
use crate::graph::{Node, Op, Resolved};

use crate::error::Error;
use crate::kernels::depthwise::DwShape;
use crate::stream::kernels::DwRows;
use crate::stream::{check_scratch, Carver, RowSink, RowSource, CHUNK};

/// Bytes of scratch the row executor needs for element sizes `(input, activation, output)`.
pub const fn scratch_bytes(l: &Layout, d: Dims, sizes: (usize, usize, usize)) -> usize {
    let (sx, sa, sy) = sizes;
    let s = &l.stages;
    let mut b = r16(l.depth[0] * l.cols[0] * d.c_in * sx);
    if l.x_chunk {
        b += r16(CHUNK * d.c_in * sx);
    }
    let mut pooled_any = false;
    let mut k = 0;
    while k < s.n {
        b += r16(l.acc[k] * 4);
        pooled_any = pooled_any || l.pooled[k + 1];
        k += 1;
    }
    if pooled_any {
        b += r16(l.chunk_elems * sa);
    }
    k = 0;
    while k + 1 < s.n {
        b += r16(l.depth[k + 1] * l.cols[k + 1] * l.plan.shape[s.last[k]].c * sa);
        k += 1;
    }
    b += r16(l.chunk_elems * sa) * if l.two_chunks { 2 } else { 1 };
    b += r16(CHUNK * l.plan.shape[s.last[s.n - 1]].c * sy);
    if l.mid16 {
        b += r16(l.chunk_elems * 2);
    }
    if l.n_se > 0 {
        // Channel sums, one gate per squeeze-excitation, the hidden vector (i32 / f32).
        b += r16(4 * ((l.n_se + 1) * d.c_out + d.squeeze));
    }
    b
}

const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Rows a node reads: the model input's (`X`) or an activation's (`A`).
pub(crate) enum In<'r, X, A> {
    X(&'r [X]),
    A(&'r [A]),
}
/// Where a node writes: an activation (`A`) or the model output (`Y`).
pub(crate) enum Out<'r, A, Y> {
    A(&'r mut [A]),
    Y(&'r mut [Y]),
}

/// The operations of one dtype on row segments and pixel chunks; the schedule is shared.
pub(crate) trait RowOps {
    type X: bytemuck::Pod;
    type A: bytemuck::Pod;
    type Y: bytemuck::Pod;
    /// Pool accumulator: `i32` (int8, input minus zero point) or `f32`.
    type Acc: bytemuck::Pod;
    /// Adds one pixel `v` of pool node `i`'s input into its bin's accumulator `acc`.
    fn pool_acc(&self, i: usize, v: &[Self::A], acc: &mut [Self::Acc]);
    /// Pool node `i`'s output pixels from their accumulators (`counts`: values per bin).
    fn pool_fin(
        &self,
        i: usize,
        acc: &[Self::Acc],
        counts: &[usize],
        y: Out<'_, Self::A, Self::Y>,
    ) -> Result<(), Error>;
    /// How this dtype computes taps (and so which rows a resize reads).
    const SCHEME: Scheme;
    /// Linear node `i` (with its fused activation) on whole pixels.
    fn linear(
        &self,
        i: usize,
        x: In<'_, Self::X, Self::A>,
        y: Out<'_, Self::A, Self::Y>,
    ) -> Result<(), Error>;
    /// Linear node `i`, then LayerNorm node `i + 1` with its activation and its residual
    /// addition `res` (the same pixels); `mid` holds int8's 16-bit conv output.
    fn linear_norm(
        &self,
        i: usize,
        x: In<'_, Self::X, Self::A>,
        mid: &mut [i16],
        res: Option<&[Self::A]>,
        y: Out<'_, Self::A, Self::Y>,
    ) -> Result<(), Error>;
    /// Depthwise node `i` (output row `oy`, columns from `ox0`), then LayerNorm node `i + 1`
    /// with its activation; `mid` holds int8's 16-bit conv output.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_norm_row(
        &self,
        i: usize,
        s: DwShape,
        rows: &DwRows<'_, Self::A>,
        oy: usize,
        ox0: usize,
        mid: &mut [i16],
        y: Out<'_, Self::A, Self::Y>,
    ) -> Result<(), Error>;
    /// Adds pixels `x` into squeeze-excitation node `i`'s channel sums.
    fn se_sum(&self, i: usize, x: &[Self::A], sums: &mut [Self::Acc]);
    /// Node `i`'s gate from the sums over `pixels` pixels (`sums` is clobbered).
    fn se_gate(
        &self,
        i: usize,
        sums: &mut [Self::Acc],
        pixels: usize,
        hid: &mut [Self::Acc],
        gate: &mut [Self::Acc],
    ) -> Result<(), Error>;
    /// Node `i`'s output: pixels `x` times the gate.
    fn se_apply(
        &self,
        i: usize,
        gate: &[Self::Acc],
        x: &[Self::A],
        y: &mut [Self::A],
    ) -> Result<(), Error>;
    /// Depthwise node `i`: output row `oy`, columns from `ox0`, plus the residual `res` (the
    /// same pixels).
    fn depthwise_row(
        &self,
        i: usize,
        s: DwShape,
        rows: &DwRows<'_, Self::A>,
        oy: usize,
        ox0: usize,
        res: Option<&[Self::A]>,
        y: Out<'_, Self::A, Self::Y>,
    ) -> Result<(), Error>;
    /// Resize node `i`: output row `oy`, columns from `ox0`, from the two tap rows (each
    /// starting at column `col0`) of a `(h, w)` map to a `(ho, wo)` one.
    fn resize_row(
        &self,
        i: usize,
        rows: [In<'_, Self::X, Self::A>; 2],
        col0: usize,
        hw: (usize, usize, usize, usize),
        oy: usize,
        ox0: usize,
        y: Out<'_, Self::A, Self::Y>,
    ) -> Result<(), Error>;
}

/// Where a unit writes.
type UnitOut<'r, O> = Out<'r, <O as RowOps>::A, <O as RowOps>::Y>;

pub(super) const INTERNAL: Error = Error::InvalidConfig("stream: internal schedule error");

/// Where each kept value's ring sits in the activation arena, and its row stride (elements).
struct Rings {
    off: [usize; MAX_NODES + 1],
    stride: [usize; MAX_NODES + 1],
}

/// Runs `nodes` row by row: input rows from `src`, output segments to `sink` (strip by strip,
/// row by row, left to right), in the scratch arena of [`scratch_bytes`] (16-byte aligned).
pub(crate) fn run<O: RowOps, S: RowSource<O::X>, K: RowSink<O::Y>>(
    nodes: &[Node],
    d: Dims,
    strip: usize,
    ops: &O,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    use core::mem::size_of;
    let l = layout(nodes, d, strip, O::SCHEME).map_err(Error::InvalidConfig)?;
    let sizes = (size_of::<O::X>(), size_of::<O::A>(), size_of::<O::Y>());
    check_scratch(scratch, scratch_bytes(&l, d, sizes))?;
    let (p, s) = (&l.plan, &l.stages);
    let mut cv = Carver::new(scratch);
    let xs: &mut [O::X] = cv.take(l.depth[0] * l.cols[0] * d.c_in)?;
    // One arena for the activation rings, each slot 16-byte rounded as `scratch_bytes` counts.
    let mut rings = Rings {
        off: [0; MAX_NODES + 1],
        stride: [0; MAX_NODES + 1],
    };
    let sa = size_of::<O::A>();
    let mut total = 0;
    for k in 0..s.n.saturating_sub(1) {
        let c = p.shape[s.last[k]].c;
        rings.off[k + 1] = total;
        rings.stride[k + 1] = l.cols[k + 1] * c;
        total += r16(l.depth[k + 1] * l.cols[k + 1] * c * sa) / sa;
    }
    let arena: &mut [O::A] = cv.take(total)?;
    let t0: &mut [O::A] = cv.take(l.chunk_elems)?;
    let t1: &mut [O::A] = cv.take(if l.two_chunks { l.chunk_elems } else { 0 })?;
    let yc: &mut [O::Y] = cv.take(CHUNK * p.shape[s.last[s.n - 1]].c)?;
    let mid: &mut [i16] = cv.take(if l.mid16 { l.chunk_elems } else { 0 })?;
    let xc: &mut [O::X] = cv.take(if l.x_chunk { CHUNK * d.c_in } else { 0 })?;
    let pooled_any = l.pooled.iter().any(|&b| b);
    let tz: &mut [O::A] = cv.take(if pooled_any { l.chunk_elems } else { 0 })?;
    let mut acc_off = [0usize; MAX_NODES + 1];
    for k in 0..s.n {
        acc_off[k + 1] = acc_off[k] + r16(l.acc[k] * 4) / 4;
    }
    let acc: &mut [O::Acc] = cv.take(acc_off[s.n])?;
    let se_len = if l.n_se > 0 {
        (l.n_se + 1) * d.c_out + d.squeeze
    } else {
        0
    };
    let se: &mut [O::Acc] = cv.take(se_len)?;
    let mut st = State {
        xs,
        arena,
        t0,
        t1,
        yc,
        mid,
        xc,
        tz,
        acc,
        acc_off,
        se,
    };
    let out = p.shape[nodes.len() - 1];
    // Pass `q < n_se` runs up to squeeze-excitation `se[q]`, which sums its input; the last pass
    // runs everything with the gates known. (Without squeeze-excitation: one pass.)
    for pass in 0..=l.n_se {
        let limit = (pass < l.n_se).then(|| l.se[pass]);
        let n_run = match limit {
            Some(i) => {
                (0..s.n)
                    .find(|&k| s.first[k] <= i && i <= s.last[k])
                    .ok_or(INTERNAL)?
                    + 1
            }
            None => s.n,
        };
        // Fresh channel sums (the gates of earlier passes stay).
        let c_sums = st.se.len().min(d.c_out);
        st.se[..c_sums].fill(<O::Acc as bytemuck::Zeroable>::zeroed());
        for t in 0..l.strips {
            let (ox0, ox1) = (t * out.w / l.strips, (t + 1) * out.w / l.strips);
            let cols = strip_cols(nodes, p, s, d, O::SCHEME, ox0, ox1);
            let mut ctx = Ctx {
                nodes,
                d,
                l: &l,
                rings: &rings,
                cols: &cols,
                ops,
                limit,
                n_run,
            };
            let mut next = [0usize; MAX_NODES];
            let mut avail = [0usize; MAX_NODES + 1];
            for row in 0..d.h {
                let (c0, c1) = cols[0];
                if c1 > c0 && !l.x_chunk {
                    let at = (row % l.depth[0].max(1)) * l.cols[0] * d.c_in;
                    let x = st.xs.get_mut(at..at + (c1 - c0) * d.c_in).ok_or(INTERNAL)?;
                    src.read(row, c0, x)?;
                }
                avail[0] = row + 1;
                ctx.drain(0, &mut next, &mut avail, &mut st, src, sink)?;
            }
            for k in 0..n_run {
                if next[k] != p.shape[s.last[k]].h {
                    return Err(INTERNAL);
                }
            }
        }
        if let Some(i) = limit {
            let c = d.c_out;
            let (sums, rest) = st.se.split_at_mut(c);
            let (gates, hid) = rest.split_at_mut(l.n_se * c);
            let gate = gates.get_mut(pass * c..(pass + 1) * c).ok_or(INTERNAL)?;
            ops.se_gate(i, sums, p.shape[i].pixels(), hid, gate)?;
        }
    }
    Ok(())
}

struct State<'s, X, A, Y, C> {
    xs: &'s mut [X],
    arena: &'s mut [A],
    t0: &'s mut [A],
    t1: &'s mut [A],
    yc: &'s mut [Y],
    mid: &'s mut [i16],
    /// An input chunk (when the input is read chunk by chunk).
    xc: &'s mut [X],
    /// The output chunk of a stage whose value only pools read.
    tz: &'s mut [A],
    /// Pool accumulators, stage `k`'s at `acc_off[k]..acc_off[k + 1]`.
    acc: &'s mut [C],
    acc_off: [usize; MAX_NODES + 1],
    /// Squeeze-excitation vectors: `c` channel sums, `c` per gate, the hidden vector.
    se: &'s mut [C],
}

struct Ctx<'c, O: RowOps> {
    nodes: &'c [Node],
    d: Dims,
    l: &'c Layout,
    rings: &'c Rings,
    cols: &'c [(usize, usize); MAX_NODES + 1],
    ops: &'c O,
    /// This pass stops at this squeeze-excitation node (it sums its input), if any.
    limit: Option<usize>,
    /// Stages this pass runs.
    n_run: usize,
}

impl<O: RowOps> Ctx<'_, O> {
    fn drain<S: RowSource<O::X>, K: RowSink<O::Y>>(
        &mut self,
        from: usize,
        next: &mut [usize; MAX_NODES],
        avail: &mut [usize; MAX_NODES + 1],
        st: &mut State<'_, O::X, O::A, O::Y, O::Acc>,
        src: &mut S,
        sink: &mut K,
    ) -> Result<(), Error> {
        let (p, s) = (&self.l.plan, &self.l.stages);
        for k in from..self.n_run {
            while next[k] < p.shape[s.last[k]].h
                && ready(self.nodes, p, s, self.d, O::SCHEME, k, next[k], avail)
            {
                self.stage_row(k, next[k], avail, st, src, sink)?;
                next[k] += 1;
                avail[k + 1] = next[k];
                self.drain(k + 1, next, avail, st, src, sink)?;
            }
        }
        Ok(())
    }

    /// Elements of one row of kept value `v` and its channel count.
    fn width(&self, v: usize) -> usize {
        if v == 0 {
            self.d.c_in
        } else {
            self.l.plan.shape[self.l.stages.last[v - 1]].c
        }
    }

    /// Columns `[x, e)` of row `j` of kept value `v`.
    fn row<'r>(
        &self,
        avail: &[usize; MAX_NODES + 1],
        xs: &'r [O::X],
        sp: &Around<'r, O::A>,
        v: usize,
        j: usize,
        x: usize,
        e: usize,
    ) -> Result<In<'r, O::X, O::A>, Error> {
        let c = self.width(v);
        let (c0, c1) = self.cols[v];
        if x < c0 || e > c1 {
            return Err(INTERNAL);
        }
        let depth = self.l.depth[v].max(1);
        // The row must have been written and not yet overwritten.
        if j >= avail[v] || j + depth < avail[v] {
            return Err(INTERNAL);
        }
        if v == 0 {
            let at = (j % depth) * self.l.cols[0] * c + (x - c0) * c;
            Ok(In::X(xs.get(at..at + (e - x) * c).ok_or(INTERNAL)?))
        } else {
            let at = self.rings.off[v] + (j % depth) * self.rings.stride[v] + (x - c0) * c;
            Ok(In::A(sp.get(at..at + (e - x) * c)?))
        }
    }

    /// Columns `[x, e)` of row `j` of node `i`'s residual operand, if it has one.
    #[allow(clippy::too_many_arguments)]
    fn residual<'r>(
        &self,
        avail: &[usize; MAX_NODES + 1],
        xs: &'r [O::X],
        sp: &Around<'r, O::A>,
        i: usize,
        j: usize,
        x: usize,
        e: usize,
    ) -> Result<Option<&'r [O::A]>, Error> {
        let Some(rr) = self.l.plan.residual[i] else {
            return Ok(None);
        };
        let rv = slot_of(&self.l.stages, rr).ok_or(INTERNAL)?;
        match self.row(avail, xs, sp, rv, j, x, e)? {
            In::A(a) => Ok(Some(a)),
            In::X(_) => Err(Error::Unsupported(
                "stream: a residual from the model input",
            )),
        }
    }

    /// Computes row `j` of stage `k`.
    fn stage_row<S: RowSource<O::X>, K: RowSink<O::Y>>(
        &mut self,
        k: usize,
        j: usize,
        avail: &[usize; MAX_NODES + 1],
        st: &mut State<'_, O::X, O::A, O::Y, O::Acc>,
        src: &mut S,
        sink: &mut K,
    ) -> Result<(), Error> {
        let (p, s, nodes) = (&self.l.plan, &self.l.stages, self.nodes);
        let (f, last) = (s.first[k], s.last[k]);
        let final_stage = k + 1 == s.n;
        let v = k + 1;
        let (o0, o1) = self.cols[v];
        if o1 <= o0 {
            return Ok(());
        }
        let c_out = p.shape[last].c;
        let pooled_out = self.l.pooled[v];
        // Split the arena around the ring row this stage writes.
        let w = if final_stage || pooled_out {
            None
        } else {
            let at = self.rings.off[v] + (j % self.l.depth[v].max(1)) * self.rings.stride[v];
            Some(at..at + (o1 - o0) * c_out)
        };
        let (sp, ring_row) = Around::split(&mut *st.arena, w)?;
        let xs: &[O::X] = st.xs;
        let (t0, t1, yc, mbuf) = (&mut *st.t0, &mut *st.t1, &mut *st.yc, &mut *st.mid);
        let (xc, tz, acc, acc_off) = (&mut *st.xc, &mut *st.tz, &mut *st.acc, st.acc_off);
        // This pass stops inside this stage, at a squeeze-excitation that sums its input.
        let cut = self.limit.filter(|&i| f <= i && i <= last);
        let c_se = self.d.c_out;
        let (sums, gates) = {
            let (a, b) = st.se.split_at_mut(st.se.len().min(c_se));
            (a, &*b)
        };
        let gate_of = |i: usize| -> Result<&[O::Acc], Error> {
            let q = self.l.se[..self.l.n_se]
                .iter()
                .position(|&n| n == i)
                .ok_or(INTERNAL)?;
            gates.get(q * c_se..(q + 1) * c_se).ok_or(INTERNAL)
        };
        let dw_norm = super::head_norm(nodes, f);
        let x_chunked = self.l.x_chunk && p.input[f] == Resolved::Input;
        // Single-node intermediate stages compute the whole range at once (a pool: by chunks).
        let pool_head = matches!(nodes[f].op, Op::Pool { .. });
        let step = if !final_stage && !pooled_out && !x_chunked && !pool_head && f == last {
            o1 - o0
        } else {
            CHUNK
        };
        let u_in = slot_of(s, p.input[f]).ok_or(INTERNAL)?;
        let x_shape = match p.input[f] {
            Resolved::Input => input_shape(self.d),
            Resolved::Node(q) => p.shape[q],
        };
        let mut x = o0;
        while x < o1 {
            let e = if o1 - x > step { x + step } else { o1 };
            let npx = e - x;
            // Units after the head: (node, fused LayerNorm); a pass's cut ends them.
            let mut units = [(0usize, false); MAX_NODES];
            let mut nu = 0;
            let mut i = if dw_norm { f + 2 } else { f + 1 };
            while i <= last && cut.is_none_or(|c| i <= c) {
                let fused = matches!(nodes[i].op, Op::Linear { .. })
                    && i < last
                    && matches!(nodes[i + 1].op, Op::LayerNorm { .. });
                units[nu] = (i, fused);
                nu += 1;
                i += if fused { 2 } else { 1 };
            }
            // Destination of unit `u` (0 = the head): the final buffer for the last one,
            // else t0 / t1 alternately.
            macro_rules! dst {
                ($u:expr, $c:expr) => {
                    if $u == nu {
                        if final_stage {
                            Out::Y(&mut yc[..npx * $c])
                        } else if pooled_out {
                            Out::A(&mut tz[..npx * $c])
                        } else {
                            Out::A(&mut ring_row[(x - o0) * $c..(e - o0) * $c])
                        }
                    } else if $u % 2 == 0 {
                        Out::A(&mut t0[..npx * $c])
                    } else {
                        Out::A(&mut t1[..npx * $c])
                    }
                };
            }
            // The head (with the LayerNorm it feeds).
            let c_head = p.shape[if dw_norm { f + 1 } else { f }].c;
            match nodes[f].op {
                Op::Linear { .. } if x_chunked => {
                    let xcs = xc.get_mut(..npx * self.d.c_in).ok_or(INTERNAL)?;
                    src.read(j, x, xcs)?;
                    self.ops.linear(f, In::X(&*xcs), dst!(0, c_head))?;
                }
                Op::Pool { .. } => {
                    let Resolved::Node(q) = p.input[f] else {
                        return Err(INTERNAL);
                    };
                    let (hi_, wi_) = (p.shape[q].h, p.shape[q].w);
                    let (ho_, wo_) = (p.shape[f].h, p.shape[f].w);
                    let open = open_bins(hi_, ho_).max(1);
                    let (ry0, ry1) = crate::kernels::pool::bin(j, hi_, ho_);
                    let mut counts = [0usize; CHUNK];
                    for (t, ox) in (x..e).enumerate() {
                        let (cx0, cx1) = crate::kernels::pool::bin(ox, wi_, wo_);
                        *counts.get_mut(t).ok_or(INTERNAL)? = (ry1 - ry0) * (cx1 - cx0);
                    }
                    let stride = self.l.cols[v] * c_head;
                    let at = acc_off[k] + (j % open) * stride + (x - o0) * c_head;
                    let a = acc.get(at..at + npx * c_head).ok_or(INTERNAL)?;
                    self.ops.pool_fin(f, a, &counts[..npx], dst!(0, c_head))?;
                }
                Op::Linear { .. } => {
                    let xin = self.row(avail, xs, &sp, u_in, j, x, e)?;
                    self.ops.linear(f, xin, dst!(0, c_head))?;
                }
                Op::Depthwise { stride, .. } => {
                    let sh = DwShape {
                        h: x_shape.h,
                        w: x_shape.w,
                        c: x_shape.c,
                        stride: stride as usize,
                    };
                    let (c0, c1) = self.cols[u_in];
                    let r = |yy: usize| -> Result<Option<&[O::A]>, Error> {
                        if yy >= x_shape.h {
                            return Ok(None);
                        }
                        match self.row(avail, xs, &sp, u_in, yy, c0, c1)? {
                            In::A(a) => Ok(Some(a)),
                            In::X(_) => Err(INTERNAL),
                        }
                    };
                    let cy = j * stride as usize;
                    let rows = DwRows {
                        rows: [
                            match cy.checked_sub(1) {
                                Some(yy) => r(yy)?,
                                None => None,
                            },
                            r(cy)?,
                            r(cy + 1)?,
                        ],
                        col0: c0,
                    };
                    let res = self.residual(avail, xs, &sp, f, j, x, e)?;
                    if dw_norm {
                        // int8's 16-bit conv output (floats have no such buffer).
                        let m = mbuf.get_mut(..npx * c_head).unwrap_or(&mut []);
                        self.ops
                            .depthwise_norm_row(f, sh, &rows, j, x, m, dst!(0, c_head))?;
                    } else {
                        self.ops
                            .depthwise_row(f, sh, &rows, j, x, res, dst!(0, c_head))?;
                    }
                }
                Op::Resize { .. } => {
                    let (y0, y1) = tap_rows(j, x_shape.h, p.shape[f].h, O::SCHEME);
                    let (c0, c1) = self.cols[u_in];
                    let rows = [
                        self.row(avail, xs, &sp, u_in, y0, c0, c1)?,
                        self.row(avail, xs, &sp, u_in, y1, c0, c1)?,
                    ];
                    let hw = (x_shape.h, x_shape.w, p.shape[f].h, p.shape[f].w);
                    self.ops
                        .resize_row(f, rows, c0, hw, j, x, dst!(0, c_head))?;
                }
                Op::LayerNorm { .. } | Op::SqueezeExcite { .. } => return Err(INTERNAL),
            }
            // The pixel-wise units.
            for u in 0..nu {
                let (i, fused) = units[u];
                let ci = p.shape[i - 1].c;
                let co = p.shape[if fused { i + 1 } else { i }].c;
                let u1 = u + 1;
                let (xin, out): (&[O::A], UnitOut<'_, O>) = if u1 == nu {
                    let out = if final_stage {
                        Out::Y(&mut yc[..npx * co])
                    } else if pooled_out {
                        Out::A(&mut tz[..npx * co])
                    } else {
                        Out::A(&mut ring_row[(x - o0) * co..(e - o0) * co])
                    };
                    let xin = if u % 2 == 0 {
                        &t0[..npx * ci]
                    } else {
                        &t1[..npx * ci]
                    };
                    (xin, out)
                } else if u % 2 == 0 {
                    (&t0[..npx * ci], Out::A(&mut t1[..npx * co]))
                } else {
                    (&t1[..npx * ci], Out::A(&mut t0[..npx * co]))
                };
                if let Op::SqueezeExcite { .. } = nodes[i].op {
                    if cut == Some(i) {
                        self.ops.se_sum(i, xin, &mut *sums);
                    } else {
                        match out {
                            Out::A(y) => self.ops.se_apply(i, gate_of(i)?, xin, y)?,
                            Out::Y(_) => return Err(INTERNAL),
                        }
                    }
                } else if fused {
                    let res = self.residual(avail, xs, &sp, i + 1, j, x, e)?;
                    self.ops.linear_norm(i, In::A(xin), mbuf, res, out)?;
                } else {
                    self.ops.linear(i, In::A(xin), out)?;
                }
            }
            if cut.is_some() {
                // This pass only sums: nothing of this stage is kept or sent.
                x = e;
                continue;
            }
            if final_stage {
                sink.write(j, x, &yc[..npx * c_out])?;
            }
            if pooled_out {
                // Add the chunk into the open bins of every pool that reads this value.
                let (hi_, wi_) = (p.shape[last].h, p.shape[last].w);
                for q in 0..s.n {
                    let head = s.first[q];
                    if !matches!(nodes[head].op, Op::Pool { .. })
                        || slot_of(s, p.input[head]) != Some(v)
                    {
                        continue;
                    }
                    let (ho_, wo_) = (p.shape[head].h, p.shape[head].w);
                    let open = open_bins(hi_, ho_).max(1);
                    let (p0, p1) = self.cols[q + 1];
                    let stride = self.l.cols[q + 1] * c_out;
                    for jj in 0..ho_ {
                        let (ry0, ry1) = crate::kernels::pool::bin(jj, hi_, ho_);
                        if !(ry0 <= j && j < ry1) {
                            continue;
                        }
                        let base_a = acc_off[q] + (jj % open) * stride;
                        let row_acc = acc
                            .get_mut(base_a..base_a + (p1 - p0) * c_out)
                            .ok_or(INTERNAL)?;
                        if j == ry0 && x == o0 {
                            row_acc.fill(<O::Acc as bytemuck::Zeroable>::zeroed());
                        }
                        for ix in x..e {
                            let px = &tz[(ix - x) * c_out..(ix - x + 1) * c_out];
                            for ox in p0..p1 {
                                let (cx0, cx1) = crate::kernels::pool::bin(ox, wi_, wo_);
                                if cx0 <= ix && ix < cx1 {
                                    let a = &mut row_acc[(ox - p0) * c_out..(ox - p0 + 1) * c_out];
                                    self.ops.pool_acc(head, px, a);
                                }
                            }
                        }
                    }
                }
            }
            x = e;
        }
        Ok(())
    }
}
