//! Row streaming of any graph: its layout, derived from the nodes' row footprints.
//!
//! **Stages.** The nodes split into stages: a stage starts at a spatial operation (depthwise,
//! resize), at a node that does not read the previous one, or after a value other nodes also
//! read; the pixel-wise nodes after it (Linear, LayerNorm) join it. Only a stage's last value is
//! kept, in a **ring of rows**; inside a stage a row is computed in chunks of
//! [`crate::stream::CHUNK`] pixels through small buffers.
//!
//! **Rows.** Output row `j` of a stage needs rows of its input: `s·j − 1 ..= s·j + 1` for a
//! depthwise conv of stride `s`, the two bilinear taps of `j` for a resize, row `j` for a
//! pixel-wise head; and row `j` of a residual. The schedule is greedy: after each input row,
//! every stage computes each row whose inputs are there, in stage order, and after each row of a
//! stage the stages after it catch up. A ring holds a value's rows from the oldest one a
//! consumer still needs to the newest; its depth is the largest such span, found by running the
//! schedule without data ([`layout`]).
//!
//! **Columns.** The output is computed in vertical strips of at most `strip` columns. Walking
//! the stages backwards, each value's column range is the union of what its consumers read (a
//! depthwise conv one halo column on each side of its strided range, a resize its taps), and a
//! stage computes exactly its value's range — the halo columns are recomputed by neighbouring
//! strips ([`layout`] counts those MACs).

use super::plan::{input_shape, plan, Around, Dims, Plan, Scheme, MAX_NODES};
use super::{feeds_norm, Node, Op, Resolved};
use crate::kernels::resize::int8::taps_q10;
use crate::kernels::resize::taps;

/// Stage `k` runs nodes `first[k] ..= last[k]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    /// Number of stages.
    pub n: usize,
    /// First node of each stage.
    pub first: [usize; MAX_NODES],
    /// Last node of each stage (its value is the stage's output).
    pub last: [usize; MAX_NODES],
}

const fn reads_node(p: &Plan, j: usize, k: usize) -> bool {
    let a = matches!(p.input[j], Resolved::Node(x) if x == k);
    let b = matches!(p.residual[j], Some(Resolved::Node(x)) if x == k);
    a || b
}

/// The stages of a planned graph.
pub const fn stages(nodes: &[Node], p: &Plan) -> Stages {
    let mut s = Stages {
        n: 0,
        first: [0; MAX_NODES],
        last: [0; MAX_NODES],
    };
    let n = nodes.len();
    let mut i = 0;
    while i < n {
        let start = i == 0
            || matches!(
                nodes[i].op,
                Op::Depthwise { .. } | Op::Resize { .. } | Op::Pool { .. }
            )
            || !matches!(p.input[i], Resolved::Node(k) if k + 1 == i)
            || {
                // Another node reads the previous value: it must be kept.
                let mut other = false;
                let mut j = 0;
                while j < n {
                    if j != i && reads_node(p, j, i - 1) {
                        other = true;
                    }
                    j += 1;
                }
                other
            };
        if start {
            s.first[s.n] = i;
            s.last[s.n] = i;
            s.n += 1;
        } else {
            s.last[s.n - 1] = i;
        }
        i += 1;
    }
    s
}

/// The stage whose output is node `k`'s value, if that value is kept.
const fn stage_of(s: &Stages, k: usize) -> Option<usize> {
    let mut i = 0;
    while i < s.n {
        if s.last[i] == k {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A kept value: the model input (slot 0) or stage `k`'s output (slot `k + 1`).
const fn slot_of(s: &Stages, r: Resolved) -> Option<usize> {
    match r {
        Resolved::Input => Some(0),
        Resolved::Node(k) => match stage_of(s, k) {
            Some(st) => Some(st + 1),
            None => None,
        },
    }
}

/// The bilinear taps (rows or columns) of output `d` as the dtype computes them.
pub(crate) const fn tap_rows(
    d: usize,
    n_in: usize,
    n_out: usize,
    scheme: Scheme,
) -> (usize, usize) {
    match scheme {
        Scheme::Int8 | Scheme::Int16 => {
            let (a, b, _) = taps_q10(d, n_in, n_out);
            (a, b)
        }
        Scheme::Float => {
            let (a, b, _) = taps(d, n_in, n_out);
            (a, b)
        }
    }
}

/// Input rows (or columns) `[lo, hi]` that output `j` of stage head `i` reads.
const fn head_window(
    nodes: &[Node],
    p: &Plan,
    i: usize,
    j: usize,
    d: Dims,
    scheme: Scheme,
    cols: bool,
) -> (usize, usize) {
    let x = match p.input[i] {
        Resolved::Input => input_shape(d),
        Resolved::Node(k) => p.shape[k],
    };
    let y = p.shape[i];
    let (n_in, n_out) = if cols { (x.w, y.w) } else { (x.h, y.h) };
    match nodes[i].op {
        Op::Depthwise { stride, .. } => {
            let c = j * stride as usize;
            let lo = if c == 0 { 0 } else { c - 1 };
            let hi = if c + 1 < n_in { c + 1 } else { n_in - 1 };
            (lo, hi)
        }
        Op::Resize { .. } => tap_rows(j, n_in, n_out, scheme),
        // The pooling bin of `j` (not streamed yet: `layout` refuses it).
        Op::Pool { .. } => {
            let lo = j * n_in / n_out;
            let hi = ((j + 1) * n_in).div_ceil(n_out);
            (lo, if hi > lo { hi - 1 } else { lo })
        }
        Op::Linear { .. } | Op::LayerNorm { .. } => (j, j),
    }
}

/// The streaming layout of a graph at sizes `d` with strips of at most `strip` output columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The whole-tensor plan (shapes, sources).
    pub plan: Plan,
    /// The stages.
    pub stages: Stages,
    /// Ring depth (rows) of each kept value: slot 0 the input, slot `k + 1` stage `k`'s output
    /// (0 for the last stage, whose rows go to the sink).
    pub depth: [usize; MAX_NODES + 1],
    /// Widest column range of each kept value over the strips.
    pub cols: [usize; MAX_NODES + 1],
    /// Number of strips.
    pub strips: usize,
    /// Pixels of the chunk buffers (the widest activation, times [`crate::stream::CHUNK`]).
    pub chunk_elems: usize,
    /// Whether a chunk needs a second buffer (three or more unfused nodes in a stage).
    pub two_chunks: bool,
    /// Whether an int8 Linear feeds a LayerNorm inside a stage (a 16-bit chunk).
    pub mid16: bool,
    /// Multiply-accumulates including the recomputed halo columns.
    pub macs: usize,
    /// The input is read chunk by chunk (all its readers are pixel-wise): no input ring.
    pub x_chunk: bool,
    /// Kept values read only by pools: accumulated as they are produced, no ring.
    pub pooled: [bool; MAX_NODES + 1],
    /// Accumulator elements (`i32` / `f32`) of each stage headed by a pool: its open bins ×
    /// its columns × channels.
    pub acc: [usize; MAX_NODES],
}

/// Why a graph does not stream.
pub type LayoutError = &'static str;

const fn union(a: (usize, usize), lo: usize, hi: usize) -> (usize, usize) {
    if a.0 >= a.1 {
        (lo, hi)
    } else {
        (
            if lo < a.0 { lo } else { a.0 },
            if hi > a.1 { hi } else { a.1 },
        )
    }
}

/// Column ranges `[lo, hi)` of every kept value for strip `[ox0, ox1)` of the output.
pub(crate) const fn strip_cols(
    nodes: &[Node],
    p: &Plan,
    s: &Stages,
    d: Dims,
    scheme: Scheme,
    ox0: usize,
    ox1: usize,
) -> [(usize, usize); MAX_NODES + 1] {
    let mut r = [(0usize, 0usize); MAX_NODES + 1];
    r[s.n] = (ox0, ox1);
    let mut k = s.n;
    while k > 0 {
        k -= 1;
        let (c0, c1) = r[k + 1];
        if c0 >= c1 {
            continue;
        }
        let head = s.first[k];
        let (lo, _) = head_window(nodes, p, head, c0, d, scheme, true);
        let (_, hi) = head_window(nodes, p, head, c1 - 1, d, scheme, true);
        if let Some(v) = slot_of(s, p.input[head]) {
            r[v] = union(r[v], lo, hi + 1);
        }
        let mut i = head;
        while i <= s.last[k] {
            if let Some(res) = p.residual[i] {
                if let Some(v) = slot_of(s, res) {
                    r[v] = union(r[v], c0, c1);
                }
            }
            i += 1;
        }
    }
    r
}

const fn macs_per_pixel(nd: &Node, d: Dims) -> usize {
    let (ci, co) = nd.widths(d.c_in, d.c_out);
    match nd.op {
        Op::Linear { .. } => ci * co,
        Op::Depthwise { .. } => 9 * co,
        Op::LayerNorm { .. } | Op::Resize { .. } | Op::Pool { .. } => 0,
    }
}

/// Whether kept value `v` is read by some node, and only by pool heads.
const fn read_only_by_pools(nodes: &[Node], p: &Plan, s: &Stages, v: usize) -> bool {
    let mut any = false;
    let mut k = 0;
    while k < s.n {
        let head = s.first[k];
        if let Some(x) = slot_of(s, p.input[head]) {
            if x == v {
                if !matches!(nodes[head].op, Op::Pool { .. }) {
                    return false;
                }
                any = true;
            }
        }
        let mut i = head;
        while i <= s.last[k] {
            if let Some(r) = p.residual[i] {
                if let Some(x) = slot_of(s, r) {
                    if x == v {
                        return false;
                    }
                }
            }
            i += 1;
        }
        k += 1;
    }
    any
}

/// Whether every reader of the model input is a pixel-wise stage head (Linear).
const fn input_pixelwise(nodes: &[Node], p: &Plan, s: &Stages) -> bool {
    let mut k = 0;
    while k < s.n {
        let head = s.first[k];
        if let Resolved::Input = p.input[head] {
            if !matches!(nodes[head].op, Op::Linear { .. }) {
                return false;
            }
        }
        let mut i = head;
        while i <= s.last[k] {
            if let Some(Resolved::Input) = p.residual[i] {
                return false;
            }
            i += 1;
        }
        k += 1;
    }
    true
}

/// Most bins of `n_out` over `n_in` that contain one input index (the accumulator rows open at
/// once).
pub(crate) const fn open_bins(n_in: usize, n_out: usize) -> usize {
    let mut best = 0;
    let mut t = 0;
    while t < n_in {
        let mut n = 0;
        let mut i = 0;
        while i < n_out {
            let (a, b) = crate::kernels::pool::bin(i, n_in, n_out);
            if a <= t && t < b {
                n += 1;
            }
            i += 1;
        }
        if n > best {
            best = n;
        }
        t += 1;
    }
    best
}

/// The streaming layout (see the module docs).
pub const fn layout(
    nodes: &[Node],
    d: Dims,
    strip: usize,
    scheme: Scheme,
) -> Result<Layout, LayoutError> {
    if strip == 0 {
        return Err("stream: strip width must be > 0");
    }
    let p = match plan(nodes, d, scheme) {
        Ok(p) => p,
        Err(e) => return Err(e),
    };
    let s = stages(nodes, &p);
    let last = nodes.len() - 1;
    let out = p.shape[last];
    // Checks: what the row executor runs.
    let mut i = 0;
    let mut two = false;
    let mut mid16 = false;
    let mut cmax = d.c_in;
    while i < nodes.len() {
        if p.shape[i].c > cmax {
            cmax = p.shape[i].c;
        }
        i += 1;
    }
    let mut k = 0;
    while k < s.n {
        let (f, l) = (s.first[k], s.last[k]);
        if let (Op::Depthwise { .. }, Resolved::Input) = (nodes[f].op, p.input[f]) {
            return Err("stream: a depthwise conv reading the model input does not stream yet");
        }
        if let Op::LayerNorm { .. } = nodes[f].op {
            return Err("stream: a LayerNorm must follow the Linear that feeds it");
        }
        if let Op::Pool { .. } = nodes[f].op {
            match slot_of(&s, p.input[f]) {
                Some(v) if v > 0 && read_only_by_pools(nodes, &p, &s, v) => {}
                _ => return Err("stream: a pool must read a computed value that only pools read"),
            }
        }
        // Unfused pixel nodes after the head; a Linear + LayerNorm pair counts as one.
        let mut units = 0;
        let mut j = f + 1;
        while j <= l {
            if matches!(nodes[j].op, Op::Linear { .. })
                && j < l
                && matches!(nodes[j + 1].op, Op::LayerNorm { .. })
            {
                if let Scheme::Int8 = scheme {
                    mid16 = true;
                }
                j += 2;
            } else if let Op::LayerNorm { .. } = nodes[j].op {
                return Err("stream: a LayerNorm must follow the Linear that feeds it");
            } else {
                j += 1;
            }
            units += 1;
        }
        if units >= 2 {
            two = true;
        }
        if let Scheme::Int8 = scheme {
            // A 16-bit value must not cross a stage boundary.
            if matches!(nodes[l].op, Op::Linear { .. }) && feeds_norm(nodes, l) {
                return Err("stream: a Linear's 16-bit output feeds a LayerNorm in another stage");
            }
            if matches!(nodes[f].op, Op::Linear { .. }) && f == l && feeds_norm(nodes, f) {
                return Err("stream: a Linear's 16-bit output feeds a LayerNorm in another stage");
            }
        }
        k += 1;
    }
    // Columns: the widest range of each kept value over the strips, and the MACs.
    let strips = if strip >= out.w {
        1
    } else {
        out.w.div_ceil(strip)
    };
    let mut cols = [0usize; MAX_NODES + 1];
    let mut macs = 0;
    let mut t = 0;
    while t < strips {
        let (ox0, ox1) = (t * out.w / strips, (t + 1) * out.w / strips);
        let r = strip_cols(nodes, &p, &s, d, scheme, ox0, ox1);
        let mut v = 0;
        while v <= s.n {
            let wv = r[v].1 - r[v].0;
            if wv > cols[v] {
                cols[v] = wv;
            }
            v += 1;
        }
        k = 0;
        while k < s.n {
            let w_k = r[k + 1].1 - r[k + 1].0;
            let h_k = p.shape[s.last[k]].h;
            let mut j = s.first[k];
            while j <= s.last[k] {
                macs += h_k * w_k * macs_per_pixel(&nodes[j], d);
                j += 1;
            }
            k += 1;
        }
        t += 1;
    }
    // Rows: run the schedule without data.
    let mut depth = [0usize; MAX_NODES + 1];
    let mut next = [0usize; MAX_NODES]; // next row of each stage
    let mut row = 0;
    while row < d.h {
        note(nodes, &p, &s, d, scheme, &next, 0, row, &mut depth);
        // Input row `row` arrived: rows available per slot.
        let mut avail = [0usize; MAX_NODES + 1];
        avail[0] = row + 1;
        k = 0;
        while k < s.n {
            avail[k + 1] = next[k];
            k += 1;
        }
        drain(
            nodes, &p, &s, d, scheme, 0, &mut next, &mut avail, &mut depth,
        );
        row += 1;
    }
    k = 0;
    while k < s.n {
        if next[k] != p.shape[s.last[k]].h {
            return Err("stream: internal: the schedule did not finish a stage");
        }
        k += 1;
    }
    depth[s.n] = 0;
    let x_chunk = input_pixelwise(nodes, &p, &s);
    if x_chunk {
        depth[0] = 0;
    }
    let mut pooled = [false; MAX_NODES + 1];
    let mut acc = [0usize; MAX_NODES];
    k = 0;
    while k < s.n {
        if read_only_by_pools(nodes, &p, &s, k + 1) {
            pooled[k + 1] = true;
            depth[k + 1] = 0;
        }
        let head = s.first[k];
        if let (Op::Pool { .. }, Resolved::Node(q)) = (nodes[head].op, p.input[head]) {
            let open = open_bins(p.shape[q].h, p.shape[head].h);
            acc[k] = open * cols[k + 1] * p.shape[head].c;
        }
        k += 1;
    }
    Ok(Layout {
        plan: p,
        stages: s,
        depth,
        cols,
        strips,
        chunk_elems: crate::stream::CHUNK * cmax,
        two_chunks: two,
        mid16,
        macs,
        x_chunk,
        pooled,
        acc,
    })
}

/// Whether stage `k` can compute its row `j` with `avail` rows of every slot.
pub(crate) const fn ready(
    nodes: &[Node],
    p: &Plan,
    s: &Stages,
    d: Dims,
    scheme: Scheme,
    k: usize,
    j: usize,
    avail: &[usize; MAX_NODES + 1],
) -> bool {
    let head = s.first[k];
    let (_, hi) = head_window(nodes, p, head, j, d, scheme, false);
    let ok_in = match slot_of(s, p.input[head]) {
        Some(v) => hi < avail[v],
        None => false,
    };
    if !ok_in {
        return false;
    }
    let mut i = head;
    while i <= s.last[k] {
        if let Some(res) = p.residual[i] {
            match slot_of(s, res) {
                Some(v) => {
                    if j >= avail[v] {
                        return false;
                    }
                }
                None => return false,
            }
        }
        i += 1;
    }
    true
}

/// The oldest row of slot `v` a consumer still needs (given each stage's next row), or
/// `usize::MAX` when none does.
pub(crate) const fn oldest_needed(
    nodes: &[Node],
    p: &Plan,
    s: &Stages,
    d: Dims,
    scheme: Scheme,
    next: &[usize; MAX_NODES],
    v: usize,
) -> usize {
    let mut oldest = usize::MAX;
    let mut k = 0;
    while k < s.n {
        let j = next[k];
        if j < p.shape[s.last[k]].h {
            let head = s.first[k];
            // A pool accumulates its input rows as they are produced: it keeps none.
            let pool = matches!(nodes[head].op, Op::Pool { .. });
            if let (Some(x), false) = (slot_of(s, p.input[head]), pool) {
                if x == v {
                    let (lo, _) = head_window(nodes, p, head, j, d, scheme, false);
                    if lo < oldest {
                        oldest = lo;
                    }
                }
            }
            let mut i = head;
            while i <= s.last[k] {
                if let Some(res) = p.residual[i] {
                    if let Some(x) = slot_of(s, res) {
                        if x == v && j < oldest {
                            oldest = j;
                        }
                    }
                }
                i += 1;
            }
        }
        k += 1;
    }
    oldest
}

/// Records that row `row` of slot `v` is about to be written: the ring must span it and the
/// oldest row still needed.
const fn note(
    nodes: &[Node],
    p: &Plan,
    s: &Stages,
    d: Dims,
    scheme: Scheme,
    next: &[usize; MAX_NODES],
    v: usize,
    row: usize,
    depth: &mut [usize; MAX_NODES + 1],
) {
    let oldest = oldest_needed(nodes, p, s, d, scheme, next, v);
    let span = if oldest > row { 1 } else { row - oldest + 1 };
    if span > depth[v] {
        depth[v] = span;
    }
}

/// The schedule from stage `from` on: every ready row, each followed by the later stages.
const fn drain(
    nodes: &[Node],
    p: &Plan,
    s: &Stages,
    d: Dims,
    scheme: Scheme,
    from: usize,
    next: &mut [usize; MAX_NODES],
    avail: &mut [usize; MAX_NODES + 1],
    depth: &mut [usize; MAX_NODES + 1],
) {
    let mut k = from;
    while k < s.n {
        while next[k] < p.shape[s.last[k]].h && ready(nodes, p, s, d, scheme, k, next[k], avail) {
            note(nodes, p, s, d, scheme, next, k + 1, next[k], depth);
            next[k] += 1;
            avail[k + 1] = next[k];
            drain(nodes, p, s, d, scheme, k + 1, next, avail, depth);
        }
        k += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// The executor.

use crate::elem::Elem;
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
    /// Linear node `i`, then LayerNorm node `i + 1` with its activation; `mid` holds int8's
    /// 16-bit conv output.
    fn linear_norm(
        &self,
        i: usize,
        x: In<'_, Self::X, Self::A>,
        mid: &mut [i16],
        y: Out<'_, Self::A, Self::Y>,
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

const INTERNAL: Error = Error::InvalidConfig("stream: internal schedule error");

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
    };
    let out = p.shape[nodes.len() - 1];
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
        for k in 0..s.n {
            if next[k] != p.shape[s.last[k]].h {
                return Err(INTERNAL);
            }
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
}

struct Ctx<'c, O: RowOps> {
    nodes: &'c [Node],
    d: Dims,
    l: &'c Layout,
    rings: &'c Rings,
    cols: &'c [(usize, usize); MAX_NODES + 1],
    ops: &'c O,
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
        for k in from..s.n {
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
            // Units after the head: (node, fused LayerNorm).
            let mut units = [(0usize, false); MAX_NODES];
            let mut nu = 0;
            let mut i = f + 1;
            while i <= last {
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
            // The head.
            let c_head = p.shape[f].c;
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
                    let res = match p.residual[f] {
                        Some(rr) => {
                            let rv = slot_of(s, rr).ok_or(INTERNAL)?;
                            match self.row(avail, xs, &sp, rv, j, x, e)? {
                                In::A(a) => Some(a),
                                In::X(_) => {
                                    return Err(Error::Unsupported(
                                        "stream: a residual from the model input",
                                    ))
                                }
                            }
                        }
                        None => None,
                    };
                    self.ops
                        .depthwise_row(f, sh, &rows, j, x, res, dst!(0, c_head))?;
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
                Op::LayerNorm { .. } => return Err(INTERNAL),
            }
            // The pixel-wise units.
            for u in 0..nu {
                let (i, fused) = units[u];
                let ci = p.shape[i - 1].c;
                let co = p.shape[if fused { i + 1 } else { i }].c;
                let u1 = u + 1;
                if u1 == nu {
                    let out = if final_stage {
                        Out::Y(&mut yc[..npx * co])
                    } else if pooled_out {
                        Out::A(&mut tz[..npx * co])
                    } else {
                        Out::A(&mut ring_row[(x - o0) * co..(e - o0) * co])
                    };
                    let xin = if u % 2 == 0 {
                        In::A(&t0[..npx * ci])
                    } else {
                        In::A(&t1[..npx * ci])
                    };
                    if fused {
                        self.ops.linear_norm(i, xin, mbuf, out)?;
                    } else {
                        self.ops.linear(i, xin, out)?;
                    }
                } else if u % 2 == 0 {
                    let out = Out::A(&mut t1[..npx * co]);
                    let xin = In::A(&t0[..npx * ci]);
                    if fused {
                        self.ops.linear_norm(i, xin, mbuf, out)?;
                    } else {
                        self.ops.linear(i, xin, out)?;
                    }
                } else {
                    let out = Out::A(&mut t0[..npx * co]);
                    let xin = In::A(&t1[..npx * ci]);
                    if fused {
                        self.ops.linear_norm(i, xin, mbuf, out)?;
                    } else {
                        self.ops.linear(i, xin, out)?;
                    }
                }
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
        use super::{meta, Act};
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
                Act::Gelu => Some(p.lut_at(nd.table_name(), ".lut")?),
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

use super::float::{activation, NodeTensors};
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
        |i| super::float::node_tensors(nodes, i, |k| m.graph_weights::<W>(k), |k| m.f32s(k));
    let ops = FloatOps::<W, A>::new(nodes, d, tensors)?;
    run(nodes, d, strip, &ops, src, sink, scratch)
}
