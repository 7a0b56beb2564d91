//! Memory planning of a graph: where each node's output lives in the scratch arena.
//!
//! Every node writes one value. A value lives from the node that writes it to the last node
//! that reads it (as its input or its residual operand). Two values whose lives overlap get
//! disjoint ranges; the placement is greedy by size (largest first, lowest offset that fits),
//! as TFLite Micro's planner does. An *in-place* node (a float LayerNorm) writes into its
//! input's range instead. The model output is not in the arena: the last node — and the node
//! whose range it writes in place — write the caller's output buffer.
//!
//! Everything here is a `const fn`, so a configuration's scratch size is a constant
//! (`static ARENA: [u8; CFG.scratch_bytes()]`).

use super::{resolve_src, Node, Op, Resolved};
use crate::kernels::depthwise::out_dim;

/// Most nodes a graph may have.
pub const MAX_NODES: usize = 16;

/// The sizes a graph is run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Input width.
    pub c_in: usize,
    /// Output width of the model (the width of every `Ch::Out` tensor).
    pub c_out: usize,
    /// Input grid rows.
    pub h: usize,
    /// Input grid columns.
    pub w: usize,
    /// Squeeze width of squeeze-excitation nodes (0 when the graph has none).
    pub squeeze: usize,
}

/// The shape of a value: grid rows, columns, channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape {
    /// Elements.
    pub const fn elems(&self) -> usize {
        self.h * self.w * self.c
    }
    /// Pixels.
    pub const fn pixels(&self) -> usize {
        self.h * self.w
    }
}

/// Where a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// At this offset (in the caller's units) of the arena.
    Arena(usize),
    /// In the model output.
    Output,
}

/// A graph's memory plan (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Each node's output shape.
    pub shape: [Shape; MAX_NODES],
    /// Where each node's output lives.
    pub place: [Place; MAX_NODES],
    /// Each node's input (and residual operand).
    pub input: [Resolved; MAX_NODES],
    /// Each node's residual operand, if any.
    pub residual: [Option<Resolved>; MAX_NODES],
    /// The last node that reads each node's value (its own index when none does).
    pub last: [usize; MAX_NODES],
    /// Offset of the working memory of the nodes that need some (squeeze-excitation), after the
    /// values; it runs to `len`.
    pub temp: usize,
    /// Arena length (units).
    pub len: usize,
}

impl Plan {
    /// `Ok` when an arena of `have` units holds the plan.
    pub(crate) fn fits(&self, have: usize) -> Result<(), crate::error::Error> {
        if have < self.len {
            return Err(crate::error::Error::ScratchTooSmall {
                need: self.len,
                have,
            });
        }
        Ok(())
    }
}

const EMPTY: Shape = Shape { h: 0, w: 0, c: 0 };

/// The input shape of the model.
pub const fn input_shape(d: Dims) -> Shape {
    Shape {
        h: d.h,
        w: d.w,
        c: d.c_in,
    }
}

const fn shape_of(shapes: &[Shape; MAX_NODES], d: Dims, r: Resolved) -> Shape {
    match r {
        Resolved::Input => input_shape(d),
        Resolved::Node(k) => shapes[k],
    }
}

/// Why a graph cannot be planned.
pub type PlanError = &'static str;

/// How an executor stores values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Float executors: units are elements of the activation type; a LayerNorm runs in place.
    Float,
    /// int8 executors: units are bytes, each value rounded up to 16; a Linear feeding a
    /// LayerNorm writes 16 bits per element; nothing runs in place.
    Int8,
    /// 16-bit-activation executors: units are bytes, two per element, each value rounded up to
    /// 16; a LayerNorm runs in place.
    Int16,
}

const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Whether an int8 executor writes node `i`'s output with 16 bits: a conv whose output feeds a
/// LayerNorm.
pub const fn wide(nodes: &[Node], i: usize) -> bool {
    matches!(nodes[i].op, Op::Linear { .. } | Op::Depthwise { .. }) && super::feeds_norm(nodes, i)
}

/// Whether node `i` is a conv that an int8 executor runs a row at a time with the LayerNorm after
/// it ([`Node::rows`](super::Node::rows)): its 16-bit value is one output row.
pub const fn row_fused(nodes: &[Node], i: usize) -> bool {
    wide(nodes, i) && i + 1 < nodes.len() && nodes[i + 1].rows
}

const fn units(nodes: &[Node], scheme: Scheme, i: usize, s: Shape) -> usize {
    match scheme {
        Scheme::Float => s.elems(),
        Scheme::Int8 if row_fused(nodes, i) => r16(2 * s.w * s.c),
        Scheme::Int8 => r16(if wide(nodes, i) { 2 } else { 1 } * s.elems()),
        Scheme::Int16 => r16(2 * s.elems()),
    }
}

const fn in_place(nodes: &[Node], scheme: Scheme, i: usize) -> bool {
    matches!(
        (scheme, nodes[i].op),
        (Scheme::Float | Scheme::Int16, Op::LayerNorm { .. }) | (_, Op::SqueezeExcite { .. })
    )
}

/// Working memory of node `i` beyond its value (units of `scheme`), placed after the values: a
/// squeeze-excitation's mean, hidden vector and gate (`2c + s` f32s or i32s, aligned to 4 bytes
/// inside the range).
const fn temp_units(nodes: &[Node], scheme: Scheme, d: Dims) -> usize {
    let mut t = 0;
    let mut i = 0;
    while i < nodes.len() {
        if let Op::SqueezeExcite { .. } = nodes[i].op {
            let words = 2 * d.c_out + d.squeeze;
            let u = match scheme {
                // Elements of at least 2 bytes: 2 per word, 2 more to align.
                Scheme::Float => 2 * words + 2,
                Scheme::Int8 | Scheme::Int16 => r16(4 * words) + 16,
            };
            t = max(t, u);
        }
        i += 1;
    }
    t
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}
const fn min(a: usize, b: usize) -> usize {
    if a < b {
        a
    } else {
        b
    }
}

/// Plans `nodes` at `d` for an executor storing values as `scheme` says.
///
/// Errors: more than [`MAX_NODES`] nodes, a source naming no earlier node, a shape mismatch
/// (operands of an addition, a Linear's or LayerNorm's input width), or an in-place node whose
/// input is the model input or is read again later.
pub const fn plan(nodes: &[Node], d: Dims, scheme: Scheme) -> Result<Plan, PlanError> {
    let n = nodes.len();
    if n == 0 || n > MAX_NODES {
        return Err("a graph has 1 to 16 nodes");
    }
    if !dims_fit(d) {
        return Err("sizes must be >= 1 and every map and weight matrix at most 2^28 elements");
    }
    let same = d.c_in == d.c_out;
    let mut p = Plan {
        shape: [EMPTY; MAX_NODES],
        place: [Place::Output; MAX_NODES],
        input: [Resolved::Input; MAX_NODES],
        residual: [None; MAX_NODES],
        last: [0; MAX_NODES],
        temp: 0,
        len: 0,
    };
    // Shapes and sources.
    let mut i = 0;
    while i < n {
        let nd = &nodes[i];
        let Some(src) = resolve_src(nodes, i, nd.input, same) else {
            return Err("a node reads a value no earlier node writes");
        };
        p.input[i] = src;
        let x = shape_of(&p.shape, d, src);
        p.shape[i] = match nd.op {
            Op::Linear { c_in, c_out, .. } => {
                if x.c != c_in.of(d.c_in, d.c_out) {
                    return Err("a Linear's input width does not match its source");
                }
                Shape {
                    h: x.h,
                    w: x.w,
                    c: c_out.of(d.c_in, d.c_out),
                }
            }
            Op::Depthwise { stride, .. } => {
                if x.c != d.c_out || (stride != 1 && stride != 2) {
                    return Err("a depthwise conv reads c_out channels with stride 1 or 2");
                }
                Shape {
                    h: out_dim(x.h, stride as usize),
                    w: out_dim(x.w, stride as usize),
                    c: d.c_out,
                }
            }
            Op::LayerNorm { .. } => {
                if x.c != d.c_out {
                    return Err("a LayerNorm reads c_out channels");
                }
                x
            }
            Op::SqueezeExcite { .. } => {
                if x.c != d.c_out || d.squeeze == 0 {
                    return Err("a squeeze-excitation reads c_out channels, squeeze width > 0");
                }
                x
            }
            Op::Pool { side } => {
                if side == 0 {
                    return Err("a pool's side must be > 0");
                }
                Shape {
                    h: side as usize,
                    w: side as usize,
                    c: x.c,
                }
            }
            Op::Resize { .. } => {
                if x.c != d.c_out {
                    return Err("a resize reads c_out channels");
                }
                Shape {
                    h: out_dim(x.h, 2),
                    w: out_dim(x.w, 2),
                    c: d.c_out,
                }
            }
        };
        if let Some(r) = nd.residual() {
            let y = p.shape[i];
            let Some(rs) = resolve_src(nodes, i, r.from, same) else {
                return Err("a residual reads a value no earlier node writes");
            };
            let s = shape_of(&p.shape, d, rs);
            if s.h != y.h || s.w != y.w || s.c != y.c {
                return Err("a residual's shape differs from the operation's output");
            }
            if r.source_first && !matches!(rs, Resolved::Node(_)) {
                return Err("a source-first residual reads the model input");
            }
            p.residual[i] = Some(rs);
        }
        if nd.rows
            && !(i > 0
                && wide(nodes, i - 1)
                && matches!(p.input[i], Resolved::Node(k) if k + 1 == i))
        {
            return Err("a row-fused LayerNorm reads the conv right before it");
        }
        i += 1;
    }
    // Buffers: each node's root (the node whose range it writes) and the roots' lives.
    let mut root = [0usize; MAX_NODES];
    let mut last = [0usize; MAX_NODES];
    i = 0;
    while i < n {
        last[i] = i;
        root[i] = i;
        if in_place(nodes, scheme, i) {
            match p.input[i] {
                Resolved::Input => return Err("an in-place node reads the model input"),
                Resolved::Node(k) => {
                    // Nothing after `i` may read `k`'s value: `i` overwrites it.
                    let mut j = i + 1;
                    while j < n {
                        if reads(&p, j, k) {
                            return Err("an in-place node's input is read again later");
                        }
                        j += 1;
                    }
                    root[i] = root[k];
                }
            }
        }
        i += 1;
    }
    i = 0;
    while i < n {
        // Every read extends the life of the value's root; a row-fused conv reads while the
        // LayerNorm after it runs.
        if let Resolved::Node(k) = p.input[i] {
            let at = if matches!(scheme, Scheme::Int8) && row_fused(nodes, i) {
                i + 1
            } else {
                i
            };
            if last[root[k]] < at {
                last[root[k]] = at;
            }
        }
        if let Some(Resolved::Node(k)) = p.residual[i] {
            if last[root[k]] < i {
                last[root[k]] = i;
            }
        }
        if last[root[i]] < i {
            last[root[i]] = i;
        }
        i += 1;
    }
    let out_root = root[n - 1];
    // Greedy by size over the arena roots.
    let mut size = [0usize; MAX_NODES];
    let mut placed = [false; MAX_NODES];
    let mut off = [0usize; MAX_NODES];
    i = 0;
    while i < n {
        if root[i] == i && i != out_root {
            size[i] = units(nodes, scheme, i, p.shape[i]);
        }
        i += 1;
    }
    let mut round = 0;
    while round < n {
        // The largest unplaced root (lowest index on ties).
        let mut best = n;
        i = 0;
        while i < n {
            if root[i] == i && i != out_root && !placed[i] && (best == n || size[i] > size[best]) {
                best = i;
            }
            i += 1;
        }
        if best == n {
            break;
        }
        // The lowest offset clear of every placed root whose life overlaps.
        let mut at = 0;
        let mut moved = true;
        while moved {
            moved = false;
            let mut k = 0;
            while k < n {
                if placed[k]
                    && max(best, k) <= min(last[best], last[k])
                    && at < off[k] + size[k]
                    && off[k] < at + size[best]
                {
                    at = off[k] + size[k];
                    moved = true;
                }
                k += 1;
            }
        }
        off[best] = at;
        placed[best] = true;
        if at + size[best] > p.len {
            p.len = at + size[best];
        }
        round += 1;
    }
    i = 0;
    while i < n {
        p.place[i] = if root[i] == out_root {
            Place::Output
        } else {
            Place::Arena(off[root[i]])
        };
        p.last[i] = last[root[i]];
        i += 1;
    }
    p.temp = p.len;
    p.len += temp_units(nodes, scheme, d);
    Ok(p)
}

/// Largest activation map or weight matrix (elements) a plan accepts: every size computation
/// (the 16-bit maps, the arena offsets) stays in range on 32-bit targets.
pub const MAX_ELEMS: usize = 1 << 28;

const fn within(v: Option<usize>) -> bool {
    matches!(v, Some(x) if x <= MAX_ELEMS)
}

/// Whether sizes `d` can be planned without overflow: channels and grid sides ≥ 1, the input map,
/// a `c_out` map of the input grid and every weight matrix (`c_out × c_in`, `c_out²`,
/// `squeeze × c_out`) at most [`MAX_ELEMS`] elements.
pub const fn dims_fit(d: Dims) -> bool {
    if d.c_in == 0 || d.c_out == 0 || d.h == 0 || d.w == 0 {
        return false;
    }
    let cmax = if d.c_in > d.c_out { d.c_in } else { d.c_out };
    match d.h.checked_mul(d.w) {
        Some(px) => {
            within(px.checked_mul(cmax))
                && within(cmax.checked_mul(cmax))
                && within(d.squeeze.checked_mul(d.c_out))
        }
        None => false,
    }
}

const fn reads(p: &Plan, j: usize, k: usize) -> bool {
    let a = matches!(p.input[j], Resolved::Node(x) if x == k);
    let b = matches!(p.residual[j], Some(Resolved::Node(x)) if x == k);
    a || b
}

/// An arena split around the range one node writes: the written range mutable, everything else
/// readable — the executors' way to read a node's inputs while writing its output without
/// `unsafe` (the plan guarantees the ranges of values alive together are disjoint; a read that
/// overlaps the write is an error, not aliasing). [`Around::split2`] takes out two ranges.
pub(crate) struct Around<'a, T> {
    /// Readable pieces: (offset in the arena, data); up to three.
    pieces: [(usize, &'a [T]); 3],
}

impl<'a, T> Around<'a, T> {
    /// Splits `buf` around `w` (`None`: nothing written in the arena). Errors when `w` does not
    /// fit.
    pub(crate) fn split(
        buf: &'a mut [T],
        w: Option<core::ops::Range<usize>>,
    ) -> Result<(Self, &'a mut [T]), crate::error::Error> {
        let Some(w) = w else {
            return Ok((
                Around {
                    pieces: [(0, buf), (0, &[]), (0, &[])],
                },
                &mut [],
            ));
        };
        let (lo, mid, (ho, hi)) = cut(buf, w)?;
        Ok((
            Around {
                pieces: [(0, lo), (ho, ro(hi)), (0, &[])],
            },
            mid,
        ))
    }
    /// Splits `buf` around two disjoint ranges, both mutable.
    pub(crate) fn split2(
        buf: &'a mut [T],
        a: core::ops::Range<usize>,
        b: core::ops::Range<usize>,
    ) -> Result<(Self, &'a mut [T], &'a mut [T]), crate::error::Error> {
        let swap = b.start < a.start;
        let (first, second) = if swap { (b, a) } else { (a, b) };
        if first.end > second.start {
            return Err(crate::error::Error::InvalidConfig(
                "graph: two written ranges overlap",
            ));
        }
        let (lo, m1, (base, rest)) = cut(buf, first)?;
        let (mid, m2, (e2, hi)) = cut(rest, second.start - base..second.end - base)?;
        let pieces = [(0, lo), (base, mid), (base + e2, ro(hi))];
        let (x, y) = if swap { (m2, m1) } else { (m1, m2) };
        Ok((Around { pieces }, x, y))
    }
    /// The readable range `r`; an error when it overlaps a written one.
    pub(crate) fn get(&self, r: core::ops::Range<usize>) -> Result<&'a [T], crate::error::Error> {
        let bad = crate::error::Error::InvalidConfig("graph: a plan overlaps a read and a write");
        for &(base, data) in &self.pieces {
            if r.start >= base && r.end <= base + data.len() {
                return data.get(r.start - base..r.end - base).ok_or(bad);
            }
        }
        Err(bad)
    }
}

fn ro<T>(x: &mut [T]) -> &[T] {
    x
}

/// `buf` cut at `w`: the part before, `w` mutable, and the part after with its offset.
#[allow(clippy::type_complexity)]
fn cut<T>(
    buf: &mut [T],
    w: core::ops::Range<usize>,
) -> Result<(&[T], &mut [T], (usize, &mut [T])), crate::error::Error> {
    if w.start > w.end || w.end > buf.len() {
        return Err(crate::error::Error::InvalidConfig(
            "graph: a planned range lies outside the arena",
        ));
    }
    let (lo, rest) = buf.split_at_mut(w.start);
    let (mid, hi) = rest.split_at_mut(w.end - w.start);
    Ok((ro(lo), mid, (w.end, hi)))
}

/// The `i32` words of a squeeze-excitation's temporary storage in the plan's temp range `temp`
/// (bytes): the first 4-byte-aligned `4·words` bytes, as `i32`s.
pub(crate) fn temp_words(temp: &mut [u8], words: usize) -> Result<&mut [i32], crate::error::Error> {
    let off = temp.as_ptr().align_offset(4);
    temp.get_mut(off..)
        .and_then(|b| b.get_mut(..words.checked_mul(4)?))
        .and_then(|b| bytemuck::try_cast_slice_mut(b).ok())
        .ok_or(crate::error::Error::Misaligned { what: "scratch" })
}
