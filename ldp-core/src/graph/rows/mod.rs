//! Row streaming of any graph: its layout, derived from the nodes' row footprints (this file),
//! the executor that follows it (`exec.rs`) and the per-dtype operations (`ops.rs`).
//!
//! **Stages.** The nodes split into stages: a stage starts at a spatial operation (depthwise,
//! resize, pool), at a node that does not read the previous one, or after a value other nodes
//! also read; the pixel-wise nodes after it (Linear, LayerNorm, squeeze-excitation) join it. A
//! Linear and the LayerNorm after it run as one unit (in int8 through 16-bit chunks), and so do a
//! depthwise head and the LayerNorm it feeds; a LayerNorm's residual addition reads the same
//! pixels of a kept value. Only a stage's last value is
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
//! **Passes.** A squeeze-excitation multiplies its map by a gate computed from the mean of the
//! *whole* map, so no row after it is final before its input's last row is known. Rather than
//! keep maps, the executor recomputes them: pass `q` runs the graph up to the `q`-th
//! squeeze-excitation, which only sums its input per channel, then computes its gate; the last
//! pass runs everything with every gate known (MobileVLM V1: three passes, the input read three
//! times). A stage that the pass stops in keeps and sends nothing. Such graphs stream whole rows
//! (no strips), so that the float sums run in the whole-tensor kernel's order: the same bits.
//!
//! **Columns.** The output is computed in vertical strips of at most `strip` columns. Walking
//! the stages backwards, each value's column range is the union of what its consumers read (a
//! depthwise conv one halo column on each side of its strided range, a resize its taps), and a
//! stage computes exactly its value's range — the halo columns are recomputed by neighbouring
//! strips ([`layout`] counts those MACs).

mod exec;
mod ops;

pub(crate) use exec::run;
pub use exec::scratch_bytes;
pub(crate) use ops::{run_float, I8Ops};

use super::plan::{input_shape, plan, Dims, Plan, Scheme, MAX_NODES};
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
        Op::Linear { .. } | Op::LayerNorm { .. } | Op::SqueezeExcite { .. } => (j, j),
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
    /// The squeeze-excitation nodes, in order: pass `q < n_se` runs the graph up to `se[q]`,
    /// which sums its input; the last pass runs everything with every gate known.
    pub se: [usize; MAX_SE],
    /// Number of squeeze-excitations (passes − 1).
    pub n_se: usize,
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
        // Its two small FCs run once per pass that computes the gate (counted in `layout`).
        Op::SqueezeExcite { .. } => 0,
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
pub const fn open_bins(n_in: usize, n_out: usize) -> usize {
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
    // Squeeze-excitations: each one's mean covers its whole input map, so the graph runs in
    // passes (see the module docs).
    let mut se = [0usize; MAX_SE];
    let mut n_se = 0;
    let mut i = 0;
    while i < nodes.len() {
        if let Op::SqueezeExcite { .. } = nodes[i].op {
            if n_se == MAX_SE {
                return Err("stream: more than 4 squeeze-excitations");
            }
            if i + 1 == nodes.len() || !matches!(p.input[i], Resolved::Node(k) if k + 1 == i) {
                return Err(
                    "stream: a squeeze-excitation must read the node before it and not be last",
                );
            }
            se[n_se] = i;
            n_se += 1;
        }
        i += 1;
    }
    let s = stages(nodes, &p);
    let last = nodes.len() - 1;
    let out = p.shape[last];
    // Checks: what the row executor runs.
    i = 0;
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
        if let Op::LayerNorm { .. } | Op::SqueezeExcite { .. } = nodes[f].op {
            return Err(
                "stream: a LayerNorm or squeeze-excitation must follow the node feeding it",
            );
        }
        // A depthwise conv feeding a LayerNorm runs with it (16-bit rows in int8).
        let dw_norm = head_norm(nodes, f);
        if matches!(nodes[f].op, Op::Depthwise { .. }) && feeds_norm(nodes, f) {
            if !dw_norm || f + 1 > l || p.residual[f].is_some() {
                return Err("stream: a depthwise conv feeding a LayerNorm must be right before it");
            }
            if let Scheme::Int8 = scheme {
                mid16 = true;
            }
        }
        if let Op::Pool { .. } = nodes[f].op {
            match slot_of(&s, p.input[f]) {
                Some(v) if v > 0 && read_only_by_pools(nodes, &p, &s, v) => {}
                _ => return Err("stream: a pool must read a computed value that only pools read"),
            }
        }
        // Unfused pixel nodes after the head; a Linear + LayerNorm pair counts as one.
        let mut units = 0;
        let mut j = if dw_norm { f + 2 } else { f + 1 };
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
                if p.residual[j].is_some() {
                    return Err("stream: a residual addition after this operation");
                }
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
    if n_se > 0 && strips > 1 {
        // The float mean is summed in row order, as the whole-tensor kernel sums it.
        return Err("stream: a graph with squeeze-excitation streams whole rows (no strips)");
    }
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
                // Pass `q` runs the nodes up to its squeeze-excitation (all in the last pass).
                let mut runs = 1;
                let mut q = 0;
                while q < n_se {
                    if j <= se[q] {
                        runs += 1;
                    }
                    q += 1;
                }
                macs += runs * h_k * w_k * macs_per_pixel(&nodes[j], d);
                if let Op::SqueezeExcite { .. } = nodes[j].op {
                    macs += 2 * d.squeeze * d.c_out;
                }
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
        se,
        n_se,
    })
}

/// Whether stage head `f` is a depthwise conv whose output only the LayerNorm right after it
/// reads: the executor runs the two together.
pub(crate) const fn head_norm(nodes: &[Node], f: usize) -> bool {
    matches!(nodes[f].op, Op::Depthwise { .. })
        && f + 1 < nodes.len()
        && matches!(nodes[f + 1].op, Op::LayerNorm { .. })
        && feeds_norm(nodes, f)
}

/// Most squeeze-excitations a streamed graph may have (each adds a pass).
pub const MAX_SE: usize = 4;

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
