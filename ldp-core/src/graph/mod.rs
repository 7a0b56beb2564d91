//! Architectures as data: an architecture is a `const` list of operations over named tensors,
//! written once ([`mlp2x_gelu`]), and everything else is derived from that list by walking it:
//!
//! * the blob's tensor lists, float and int8 ([`Graph::float`], [`Graph::int8`], built at compile
//!   time by [`float_specs`] / [`int8_specs`]) and the `quant.meta` layout ([`meta`]);
//! * the sizes: parameters, MACs, scratch bytes of every executor (`const fn`s of
//!   [`GraphConfig`]);
//! * the executors: float whole-tensor ([`float`]), int8 whole-tensor ([`int8`]) and row
//!   streaming ([`stream`]);
//! * in `ldp-quant`: the calibration points, the quantized tables and the `eval` per-layer report
//!   (one per node, named after it).
//!
//! A node's name is the PyTorch module path of its weights (`0` for `Sequential[0]`), so the
//! blob keys are `name.param` (`0.weight`, `0.bias`, and for int8 `0.mult`, `0.lut`), and the
//! checkpoint importer only maps a prefix onto them.
//!
//! **State of the migration (issue 19).** LLaVA's `mlp2x_gelu` is the first architecture
//! written this way. The three earlier ones (`ldp`, MobileVLM V1 and V2) still have hand-written
//! executors in `arch/`, `quant/` and `stream/`; they move here operation by operation (the
//! vocabulary grows with them: depthwise, LayerNorm, add, resize, pool, SE), each step proven
//! by byte-identical blobs and outputs. See `docs/DESIGN.md`.

pub mod a16;
pub mod float;
pub mod int8;
pub mod mlp2x_gelu;
pub mod stream;

use crate::blob::format::{Arch, ElemType};
use crate::blob::specs::{Dim, ElemOf, TensorSpec};

/// A channel count of the graph, resolved against the model's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ch {
    /// The model's input width `c_in`.
    In,
    /// The model's output width `c_out`.
    Out,
}

impl Ch {
    const fn dim(self) -> Dim {
        match self {
            Ch::In => Dim::Cin,
            Ch::Out => Dim::Cout,
        }
    }
    /// The count in a configuration.
    pub const fn of(self, c_in: usize, c_out: usize) -> usize {
        match self {
            Ch::In => c_in,
            Ch::Out => c_out,
        }
    }
}

/// An activation fused into an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// None (identity).
    None,
    /// Exact-erf GELU (`nn.GELU()`); in int8 a 256-entry table `name.lut`.
    Gelu,
}

/// One operation of an architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `nn.Linear` over every token (a 1×1 conv over every pixel): `y = act(W·x + b)`, weight
    /// `[c_out][c_in]` (`name.weight`), bias `[c_out]` (`name.bias`).
    Linear {
        /// Input width.
        c_in: Ch,
        /// Output width.
        c_out: Ch,
        /// Fused activation.
        act: Act,
    },
}

/// A node: an operation whose weights are `name.*`. Node `i` reads node `i − 1`'s output (node
/// 0 the model input); the last node's output is the model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Module path of the weights in the PyTorch checkpoint (without the projector prefix); also
    /// the name of the node's output in traces and `eval` reports.
    pub name: &'static str,
    /// What it computes.
    pub op: Op,
}

impl Node {
    /// A Linear node.
    pub const fn linear(name: &'static str, c_in: Ch, c_out: Ch, act: Act) -> Node {
        Node {
            name,
            op: Op::Linear { c_in, c_out, act },
        }
    }
    /// `(input width, output width)` in a configuration.
    pub const fn widths(&self, c_in: usize, c_out: usize) -> (usize, usize) {
        match self.op {
            Op::Linear {
                c_in: i, c_out: o, ..
            } => (i.of(c_in, c_out), o.of(c_in, c_out)),
        }
    }
    /// The fused activation.
    pub const fn act(&self) -> Act {
        match self.op {
            Op::Linear { act, .. } => act,
        }
    }
}

/// An architecture: its nodes and the tensor lists derived from them.
#[derive(Debug)]
pub struct Graph {
    /// The architecture code of the blob header.
    pub arch: Arch,
    /// The nodes, in execution order.
    pub nodes: &'static [Node],
    /// Float (f32/f16) blob tensors, derived by [`float_specs`].
    pub float: &'static [TensorSpec],
    /// int8 blob tensors, derived by [`int8_specs`].
    pub int8: &'static [TensorSpec],
    /// int8 blob tensors with a 16-bit model input
    /// ([`crate::blob::specs::FLAG_INPUT16`]): `input.limit` in place of `input.zero`.
    pub int8_x16: &'static [TensorSpec],
    /// int8-weight blob tensors with 16-bit activations
    /// ([`crate::blob::specs::FLAG_ACT16`], [`a16`]): per GELU node `name.lut16` and
    /// `name.gelu16` in place of `name.lut`.
    pub int8_a16: &'static [TensorSpec],
    /// The `quant.meta` indices of the conv shift words, one per node ([`meta::shift`]).
    pub conv_shifts: &'static [usize],
}

/// The graph of a graph architecture, `None` for the hand-written ones (`ldp`, V1, V2).
pub const fn graph_of(arch: Arch) -> Option<&'static Graph> {
    match arch {
        Arch::Mlp2xGelu => Some(&mlp2x_gelu::GRAPH),
        Arch::Ldp | Arch::MobileVlmV1 | Arch::MobileVlmV2 => None,
    }
}

const fn spec(
    name: &'static str,
    param: &'static str,
    elem: ElemOf,
    dims: &'static [Dim],
) -> TensorSpec {
    TensorSpec {
        name,
        param,
        elem,
        dims,
    }
}
const F32: ElemOf = ElemOf::Fixed(ElemType::F32);
const VEC: &[Dim] = &[Dim::Cout];
const LUT: &[Dim] = &[Dim::Lit(256)];
const fn weight_dims(o: Ch, i: Ch) -> &'static [Dim] {
    match (o.dim(), i.dim()) {
        (Dim::Cout, Dim::Cin) => &[Dim::Cout, Dim::Cin],
        (Dim::Cout, _) => &[Dim::Cout, Dim::Cout],
        (_, Dim::Cin) => &[Dim::Cin, Dim::Cin],
        _ => &[Dim::Cin, Dim::Cout],
    }
}
const fn vec_dims(o: Ch) -> &'static [Dim] {
    match o {
        Ch::Out => VEC,
        Ch::In => &[Dim::Cin],
    }
}

/// Number of float tensors of `nodes`.
pub const fn float_len(nodes: &[Node]) -> usize {
    float_index(nodes, nodes.len())
}

/// Index in the float tensor list of node `node`'s first tensor (a Linear's weight; its bias
/// follows).
pub const fn float_index(nodes: &[Node], node: usize) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < node && i < nodes.len() {
        n += match nodes[i].op {
            Op::Linear { .. } => 2,
        };
        i += 1;
    }
    n
}

/// The float tensor list of `nodes`: per Linear `name.weight` (the model's weight type) and
/// `name.bias` (f32). `N` must be [`float_len`]`(nodes)`.
pub const fn float_specs<const N: usize>(nodes: &'static [Node]) -> [TensorSpec; N] {
    let mut out = [spec("", "", F32, VEC); N];
    let (mut k, mut i) = (0, 0);
    while i < nodes.len() {
        let nd = &nodes[i];
        match nd.op {
            Op::Linear { c_in, c_out, .. } => {
                out[k] = spec(nd.name, "weight", ElemOf::Weight, weight_dims(c_out, c_in));
                out[k + 1] = spec(nd.name, "bias", F32, vec_dims(c_out));
                k += 2;
            }
        }
        i += 1;
    }
    assert!(k == N, "float_specs: N is not float_len(nodes)");
    out
}

/// The form of an int8-weight blob's tensor list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntForm {
    /// int8 activations and input.
    Int8,
    /// int8 activations, 16-bit input ([`crate::blob::specs::FLAG_INPUT16`]).
    Input16,
    /// 16-bit activations and input ([`crate::blob::specs::FLAG_ACT16`]).
    Act16,
}

/// Number of int8 tensors of `nodes` in `form`.
pub const fn int8_len(nodes: &[Node], form: IntForm) -> usize {
    let mut n = 4; // input.scale, input.zero … quant.scales, quant.meta
    let mut i = 0;
    while i < nodes.len() {
        n += match (nodes[i].op, form) {
            (Op::Linear { act: Act::Gelu, .. }, IntForm::Act16) => 5,
            (Op::Linear { act: Act::Gelu, .. }, _) => 4,
            (Op::Linear { act: Act::None, .. }, _) => 3,
        };
        i += 1;
    }
    n
}

/// The int8 tensor list of `nodes`: `input.scale` (f32) and `input.zero` (i8) — or, with a
/// 16-bit input (`x16`), `input.limit` (i32, the saturation) —, per Linear `name.weight` (i8),
/// `name.bias` (i16, input zero point folded in), `name.mult` (u8) and for a fused GELU
/// `name.lut` (i8, 256 entries) — with 16-bit activations (`Act16`) `name.lut16` (i16, 513
/// entries) and `name.gelu16` (i32: position multiplier and shift, identity multiplier and
/// shift) —, then `quant.scales` (f32) and `quant.meta` (i32) of length `meta_dims`
/// ([`meta::len`]). `N` must be [`int8_len`]`(nodes, form)`.
pub const fn int8_specs<const N: usize>(
    nodes: &'static [Node],
    meta_dims: &'static [Dim],
    form: IntForm,
) -> [TensorSpec; N] {
    const I8: ElemOf = ElemOf::Fixed(ElemType::I8);
    let mut out = [spec("", "", F32, VEC); N];
    out[0] = spec("input.scale", "", F32, &[Dim::Lit(1)]);
    out[1] = if let IntForm::Input16 = form {
        spec(
            "input.limit",
            "",
            ElemOf::Fixed(ElemType::I32),
            &[Dim::Lit(1)],
        )
    } else {
        spec("input.zero", "", I8, &[Dim::Lit(1)])
    };
    let (mut k, mut i) = (2, 0);
    while i < nodes.len() {
        let nd = &nodes[i];
        match nd.op {
            Op::Linear { c_in, c_out, act } => {
                out[k] = spec(nd.name, "weight", I8, weight_dims(c_out, c_in));
                out[k + 1] = spec(
                    nd.name,
                    "bias",
                    ElemOf::Fixed(ElemType::I16),
                    vec_dims(c_out),
                );
                out[k + 2] = spec(
                    nd.name,
                    "mult",
                    ElemOf::Fixed(ElemType::U8),
                    vec_dims(c_out),
                );
                k += 3;
                match (act, form) {
                    (Act::Gelu, IntForm::Act16) => {
                        out[k] = spec(
                            nd.name,
                            "lut16",
                            ElemOf::Fixed(ElemType::I16),
                            &[Dim::Lit(crate::quant::a16::GELU16_LEN as u32)],
                        );
                        out[k + 1] = spec(
                            nd.name,
                            "gelu16",
                            ElemOf::Fixed(ElemType::I32),
                            &[Dim::Lit(4)],
                        );
                        k += 2;
                    }
                    (Act::Gelu, _) => {
                        out[k] = spec(nd.name, "lut", I8, LUT);
                        k += 1;
                    }
                    (Act::None, _) => {}
                }
            }
        }
        i += 1;
    }
    out[k] = spec("quant.scales", "", F32, meta_dims);
    out[k + 1] = spec("quant.meta", "", ElemOf::Fixed(ElemType::I32), meta_dims);
    assert!(k + 2 == N, "int8_specs: N is not int8_len(nodes)");
    out
}

/// Builds a [`Graph`] from a `const` node list: `graph!(ARCH, NODES)` in the architecture's file.
macro_rules! graph {
    ($arch:expr, $nodes:expr) => {
        $crate::graph::Graph {
            arch: $arch,
            nodes: $nodes,
            float: &$crate::graph::float_specs::<{ $crate::graph::float_len($nodes) }>($nodes),
            int8: &$crate::graph::int8_specs::<
                { $crate::graph::int8_len($nodes, $crate::graph::IntForm::Int8) },
            >(
                $nodes,
                &[$crate::blob::specs::Dim::Lit(
                    $crate::graph::meta::len($nodes.len()) as u32,
                )],
                $crate::graph::IntForm::Int8,
            ),
            int8_x16: &$crate::graph::int8_specs::<
                { $crate::graph::int8_len($nodes, $crate::graph::IntForm::Input16) },
            >(
                $nodes,
                &[$crate::blob::specs::Dim::Lit(
                    $crate::graph::meta::len($nodes.len()) as u32,
                )],
                $crate::graph::IntForm::Input16,
            ),
            int8_a16: &$crate::graph::int8_specs::<
                { $crate::graph::int8_len($nodes, $crate::graph::IntForm::Act16) },
            >(
                $nodes,
                &[$crate::blob::specs::Dim::Lit(
                    $crate::graph::meta::len($nodes.len()) as u32,
                )],
                $crate::graph::IntForm::Act16,
            ),
            conv_shifts: &$crate::graph::meta::shifts::<{ $nodes.len() }>(),
        }
    };
}
pub(crate) use graph;

/// The `quant.meta` / `quant.scales` layout of a graph architecture's int8 blob. Index `i` of
/// `quant.scales` is the real scale of the activation whose zero point is `quant.meta[i]`.
pub mod meta {
    /// The model input's zero point (its scale is `input.scale`; kept here for the report).
    pub const Z_X: usize = 0;
    /// Entries per node.
    pub const PER_NODE: usize = 3;
    /// Node `i`'s conv shift word ([`crate::blob::int8::conv_shift_word`]).
    pub const fn shift(i: usize) -> usize {
        1 + PER_NODE * i
    }
    /// Zero point (and scale) of node `i`'s requantized output before its table (the same
    /// as [`out`] for nodes without activation).
    pub const fn pre(i: usize) -> usize {
        2 + PER_NODE * i
    }
    /// Zero point (and scale) of node `i`'s output.
    pub const fn out(i: usize) -> usize {
        3 + PER_NODE * i
    }
    /// The conv shift word indices of `N` nodes.
    pub const fn shifts<const N: usize>() -> [usize; N] {
        let mut out = [0; N];
        let mut i = 0;
        while i < N {
            out[i] = shift(i);
            i += 1;
        }
        out
    }
    /// Length of `quant.meta` for `nodes` nodes.
    pub const fn len(nodes: usize) -> usize {
        1 + PER_NODE * nodes
    }
}

/// The configuration of a graph-architecture model: the architecture and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GraphConfig {
    /// Which graph.
    pub arch: Arch,
    /// Input width (e.g. 1024 for CLIP ViT-L/14).
    pub c_in: usize,
    /// Output width (the language model's hidden size).
    pub c_out: usize,
    /// Token grid rows (`N = h·w` tokens; a flat token list is `N × 1`).
    pub h: usize,
    /// Token grid columns.
    pub w: usize,
}

const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Largest activation map or weight matrix (elements) a graph model may have, as the blob reader
/// allows: every size computation stays in range on 32-bit targets.
const MAX_ELEMS: usize = 1 << 28;

impl GraphConfig {
    /// Checks that the configuration can be run: a graph architecture, channel counts and grid
    /// sides ≥ 1, every map and weight matrix at most 2^28 elements (so the size functions below
    /// cannot overflow). The executors call it first; a `GraphConfig` from
    /// [`crate::Model::parse`] always passes.
    pub const fn validate(&self) -> Result<(), crate::Error> {
        if graph_of(self.arch).is_none() {
            return Err(crate::Error::InvalidConfig(
                "GraphConfig: the architecture is not a graph architecture",
            ));
        }
        if self.c_in == 0 || self.c_out == 0 || self.h == 0 || self.w == 0 {
            return Err(crate::Error::InvalidConfig(
                "GraphConfig: channel counts and grid sides must be > 0",
            ));
        }
        let cmax = if self.c_in > self.c_out {
            self.c_in
        } else {
            self.c_out
        };
        let fits = match self.h.checked_mul(self.w) {
            Some(n) => match (n.checked_mul(cmax), cmax.checked_mul(cmax)) {
                (Some(a), Some(b)) => a <= MAX_ELEMS && b <= MAX_ELEMS,
                _ => false,
            },
            None => false,
        };
        if !fits {
            return Err(crate::Error::InvalidConfig(
                "GraphConfig: a map or weight matrix exceeds 2^28 elements",
            ));
        }
        Ok(())
    }
    /// The nodes (empty for an architecture without a graph, which [`crate::Model::parse`]
    /// never builds a `GraphConfig` for).
    pub const fn nodes(&self) -> &'static [Node] {
        match graph_of(self.arch) {
            Some(g) => g.nodes,
            None => &[],
        }
    }
    /// Tokens (pixels).
    pub const fn tokens(&self) -> usize {
        self.h * self.w
    }
    /// Elements of one input `[N][c_in]`.
    pub const fn input_len(&self) -> usize {
        self.tokens() * self.c_in
    }
    /// Elements of one output `[N][c_out]` (every operation so far keeps the grid).
    pub const fn output_len(&self) -> usize {
        self.tokens() * self.c_out
    }
    /// The widest intermediate (a node output other than the last).
    pub(crate) const fn widest_mid(&self) -> usize {
        let nodes = self.nodes();
        let (mut c, mut i) = (0, 0);
        while i + 1 < nodes.len() {
            let (_, o) = nodes[i].widths(self.c_in, self.c_out);
            if o > c {
                c = o;
            }
            i += 1;
        }
        c
    }
    /// Intermediate maps held at once: none for one node, one for two, two (ping-pong) above.
    const fn mid_maps(&self) -> usize {
        let n = self.nodes().len();
        if n <= 1 {
            0
        } else if n == 2 {
            1
        } else {
            2
        }
    }
    /// Scratch elements (of the activation type) of the float forward pass.
    pub const fn scratch_len(&self) -> usize {
        self.mid_maps() * self.tokens() * self.widest_mid()
    }
    /// Scratch bytes of the int8 forward pass (int8 input to int8 output).
    pub const fn scratch_bytes_i8(&self) -> usize {
        self.mid_maps() * r16(self.tokens() * self.widest_mid())
    }
    /// Scratch bytes of the row-streaming forward pass for element sizes `(input, activation,
    /// output)` ([`crate::stream::elem_sizes`]): one input row, the intermediate rows, one
    /// output row.
    pub const fn stream_scratch_bytes(&self, sizes: (usize, usize, usize)) -> usize {
        let (sx, sa, sy) = sizes;
        let n = self.w;
        r16(sx * n * self.c_in)
            + self.mid_maps() * r16(sa * n * self.widest_mid())
            + r16(sy * n * self.c_out)
    }
    /// Number of parameters.
    pub const fn param_count(&self) -> usize {
        let nodes = self.nodes();
        let (mut p, mut i) = (0, 0);
        while i < nodes.len() {
            let (ci, co) = nodes[i].widths(self.c_in, self.c_out);
            p += match nodes[i].op {
                Op::Linear { .. } => ci * co + co,
            };
            i += 1;
        }
        p
    }
    /// Multiply-accumulates of one forward pass.
    pub const fn macs(&self) -> usize {
        let nodes = self.nodes();
        let (mut m, mut i) = (0, 0);
        while i < nodes.len() {
            let (ci, co) = nodes[i].widths(self.c_in, self.c_out);
            m += match nodes[i].op {
                Op::Linear { .. } => self.tokens() * ci * co,
            };
            i += 1;
        }
        m
    }
}
