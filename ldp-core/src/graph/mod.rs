//! Architectures as data: an architecture is a `const` list of operations over named tensors,
//! written once, and everything else is derived from that list by walking it:
//!
//! * the blob's tensor lists, float and int8 ([`Graph::float`], [`Graph::int8`], built at compile
//!   time by [`float_specs`] / [`int8_specs`]) and the `quant.meta` layout ([`meta`]);
//! * the sizes: parameters, MACs, scratch bytes of every executor (`const fn`s of
//!   [`GraphConfig`]);
//! * the memory plans ([`plan`]) and the executors: float whole-tensor ([`float`]), int8
//!   whole-tensor ([`int8`]), row streaming ([`rows`]) and 16-bit activations ([`a16`]);
//! * in `ldp-quant`: the calibration points, the quantized tables and the `eval` per-layer report
//!   (one per node, named after it).
//!
//! A node's name is the PyTorch module path of its weights (`0` for `Sequential[0]`), so the
//! blob keys are `name.param` (`0.weight`, `0.bias`, and for int8 `0.mult`, `0.lut`), and the
//! checkpoint importer only maps a prefix onto them.
//!
//! Every architecture is written this way: the seed `ldp` block ([`ldp`]), MobileVLM V1
//! ([`mobilevlm_v1`]) and V2 ([`mobilevlm_v2`]), LLaVA's `mlp2x_gelu` ([`mlp2x_gelu`]). The
//! float and int8 whole-tensor executors ([`float`], [`int8`]), the memory plans ([`plan`]), row
//! streaming ([`rows`], multi-pass for squeeze-excitation), the 16-bit-activation executors
//! ([`a16`]), the blob layouts and the quantizer walk their node lists. See `docs/DESIGN.md`.

pub mod a16;
mod checks;
pub mod float;
pub mod int8;
pub mod ldp;
pub mod mlp2x_gelu;
pub mod mobilevlm_v1;
pub mod mobilevlm_v2;
pub mod plan;
pub mod rows;

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
    /// Hardswish (`nn.Hardswish()`: `x·clamp(x + 3, 0, 6)/6`); in int8 a 256-entry table
    /// `name.lut`.
    Hardswish,
}

impl Act {
    /// Whether the activation is a function (int8: a table) rather than the identity.
    pub const fn is_some(self) -> bool {
        !matches!(self, Act::None)
    }
}

/// Where a node reads a tensor from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Src {
    /// The previous node's output (the model input for node 0).
    Prev,
    /// The model input.
    Input,
    /// The output of the node whose [`Node::value`] is this name.
    Value(&'static str),
    /// The model input when `c_in == c_out`, else the named value (`ldp`'s skip: PyTorch resizes
    /// the input itself when the widths agree).
    InputIfSameWidth(&'static str),
}

/// A residual addition after an operation: `out = op(x) + from`, with its own output value.
/// Float executors fuse it into the operation; int8 executors requantize the sum
/// (`quant.meta`: two multipliers, a shift and the output's zero point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residual {
    /// The other operand.
    pub from: Src,
    /// Name of the sum (traces, calibration).
    pub value: &'static str,
    /// The sum is written `from + op(x)` (MobileVLM V1's `z + block(z)`): its four `quant.meta`
    /// entries sit right after those of the node that writes `from`, the multiplier of `from`
    /// first. Otherwise (`op(x) + from`) they follow the node's own entries, the multiplier of
    /// `op(x)` first. Float results are the same either way (one f32 addition).
    pub source_first: bool,
}

impl Residual {
    /// `op(x) + from`, the sum named `value`.
    pub const fn after(from: Src, value: &'static str) -> Residual {
        Residual {
            from,
            value,
            source_first: false,
        }
    }
    /// `from + op(x)`, the sum named `value` (see [`Residual::source_first`]).
    pub const fn before(from: Src, value: &'static str) -> Residual {
        Residual {
            from,
            value,
            source_first: true,
        }
    }
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
    /// Depthwise 3×3 conv with padding 1 over `c_out` channels: weight `[c][9]`
    /// (`name.weight`), bias `[c]` (`name.bias`); stride 2 halves the grid (rounding up).
    Depthwise {
        /// 1 or 2.
        stride: u8,
        /// Residual addition after the conv.
        add: Option<Residual>,
    },
    /// LayerNorm over the `c_out` channels of every pixel: `name.weight`, `name.bias` (f32; in
    /// int8 `name.gamma`, `name.beta`). In int8 it reads 16-bit input: the conv feeding it
    /// writes 16 bits (its only consumer is this LayerNorm).
    LayerNorm {
        /// Fused activation.
        act: Act,
        /// Residual addition after the norm (and its activation).
        add: Option<Residual>,
    },
    /// Squeeze-excitation (torchvision's `SqueezeExcitation`, Hardsigmoid gate) over `c_out`
    /// channels with the model's squeeze width `s`: `x · hardsigmoid(fc2(relu(fc1(mean(x)))))`,
    /// in place. Weights `name.fc1.weight` `[s][c]`, `name.fc1.bias`, `name.fc2.weight` `[c][s]`,
    /// `name.fc2.bias`; in int8 each fc also `.mult`, and the gate table `name.gate.lut` (u8).
    /// Its mean covers the whole map, so a row-streaming executor needs one more pass per
    /// squeeze-excitation.
    SqueezeExcite {
        /// Name of the hidden vector after ReLU (calibration).
        hid: &'static str,
        /// Name of the gate's input, `fc2`'s output (calibration).
        gate: &'static str,
    },
    /// Bilinear resize (`align_corners=False`) of `c_out` channels to the grid a stride-2
    /// depthwise produces; in int8 a per-channel (or per-tensor) multiplier `name.mult` (i16).
    Resize {
        /// Source.
        from: Src,
    },
    /// Adaptive average pooling (`nn.AdaptiveAvgPool2d`) of `c_out` channels to `side × side`;
    /// no weights; in int8 the output keeps its input's quantization (no `quant.meta` entry).
    Pool {
        /// Output grid side.
        side: u8,
    },
}

/// A node: an operation whose weights are `name.*`, reading `input`; its output is the value
/// `value`. The last node's output is the model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Module path of the weights in the PyTorch checkpoint (without the projector prefix).
    pub name: &'static str,
    /// Name of the node's output (traces, `eval` reports, calibration points).
    pub value: &'static str,
    /// Where it reads.
    pub input: Src,
    /// Key under which an int8 blob stores the fused GELU's table (`table.lut`); empty: `name`.
    pub table: &'static str,
    /// Name of the value before the fused activation (calibration, traces); empty: `name.pre`.
    pub pre: &'static str,
    /// A Linear without activation keeps a pre-table `quant.meta` entry (equal to its output's),
    /// as `mlp2x-gelu` blobs have; others store only the output's.
    pub pre_entry: bool,
    /// The conv has a bias (`name.bias`). Without one (PyTorch's `bias=False`) the float blob has
    /// no bias tensor; an int8 Linear still stores one (it holds the folded input zero point), an
    /// int8 depthwise conv does not (its kernel subtracts the input zero point).
    pub bias: bool,
    /// A LayerNorm run in int8 together with the conv feeding it, a grid row at a time: the
    /// conv's 16-bit output is one row, not a map (MobileVLM V1 keeps its RAM this way).
    pub rows: bool,
    /// What it computes.
    pub op: Op,
}

impl Node {
    /// A node computing `op` with the weights `name.*`, reading the previous node, its output
    /// named after it, no other attribute.
    pub const fn new(name: &'static str, op: Op) -> Node {
        Node {
            name,
            value: name,
            input: Src::Prev,
            table: "",
            pre: "",
            pre_entry: false,
            bias: true,
            rows: false,
            op,
        }
    }
    /// A Linear node reading the previous node, its output named after it.
    pub const fn linear(name: &'static str, c_in: Ch, c_out: Ch, act: Act) -> Node {
        Node::new(name, Op::Linear { c_in, c_out, act })
    }
    /// A depthwise 3×3 node reading the previous node.
    pub const fn depthwise(name: &'static str, stride: u8, add: Option<Residual>) -> Node {
        Node::new(name, Op::Depthwise { stride, add })
    }
    /// A LayerNorm node reading the previous node.
    pub const fn layer_norm(name: &'static str, act: Act) -> Node {
        Node::new(name, Op::LayerNorm { act, add: None })
    }
    /// A bilinear resize node.
    pub const fn resize(name: &'static str, from: Src) -> Node {
        Node::new(name, Op::Resize { from }).reads(from)
    }
    /// This node with its output named `value`.
    pub const fn value(mut self, value: &'static str) -> Node {
        self.value = value;
        self
    }
    /// This node reading `input`.
    pub const fn reads(mut self, input: Src) -> Node {
        self.input = input;
        self
    }
    /// This node with its int8 GELU table stored as `table.lut`.
    pub const fn table(mut self, table: &'static str) -> Node {
        self.table = table;
        self
    }
    /// An adaptive average pool to `side × side`.
    pub const fn pool(name: &'static str, side: u8) -> Node {
        Node::new(name, Op::Pool { side })
    }
    /// A squeeze-excitation node reading the previous node; `hid`, `gate` name its internal
    /// values.
    pub const fn squeeze_excite(name: &'static str, hid: &'static str, gate: &'static str) -> Node {
        Node::new(name, Op::SqueezeExcite { hid, gate })
    }
    /// This conv without bias.
    pub const fn no_bias(mut self) -> Node {
        self.bias = false;
        self
    }
    /// This LayerNorm run in int8 with its conv, a row at a time ([`Node::rows`]).
    pub const fn by_rows(mut self) -> Node {
        self.rows = true;
        self
    }
    /// This LayerNorm followed by residual addition `r`.
    pub const fn plus(mut self, r: Residual) -> Node {
        if let Op::LayerNorm { act, .. } = self.op {
            self.op = Op::LayerNorm { act, add: Some(r) };
        }
        self
    }
    /// The residual addition after the operation, if any.
    pub const fn residual(&self) -> Option<Residual> {
        match self.op {
            Op::Depthwise { add, .. } | Op::LayerNorm { add, .. } => add,
            _ => None,
        }
    }
    /// This Linear with a pre-table `quant.meta` entry even without an activation.
    pub const fn with_pre_entry(mut self) -> Node {
        self.pre_entry = true;
        self
    }
    /// This node with its pre-activation value named `pre`.
    pub const fn pre(mut self, pre: &'static str) -> Node {
        self.pre = pre;
        self
    }
    /// The key prefix of the int8 GELU table.
    pub const fn table_name(&self) -> &'static str {
        if self.table.is_empty() {
            self.name
        } else {
            self.table
        }
    }
    /// `(input width, output width)` in a configuration.
    pub const fn widths(&self, c_in: usize, c_out: usize) -> (usize, usize) {
        match self.op {
            Op::Linear {
                c_in: i, c_out: o, ..
            } => (i.of(c_in, c_out), o.of(c_in, c_out)),
            Op::Depthwise { .. }
            | Op::LayerNorm { .. }
            | Op::Resize { .. }
            | Op::Pool { .. }
            | Op::SqueezeExcite { .. } => (c_out, c_out),
        }
    }
    /// The fused activation.
    pub const fn act(&self) -> Act {
        match self.op {
            Op::Linear { act, .. } | Op::LayerNorm { act, .. } => act,
            Op::Depthwise { .. }
            | Op::Resize { .. }
            | Op::Pool { .. }
            | Op::SqueezeExcite { .. } => Act::None,
        }
    }
    /// Whether the node is a Linear (the only operation of token-wise graphs).
    pub const fn is_linear(&self) -> bool {
        matches!(self.op, Op::Linear { .. })
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

/// The definition of an architecture written as a graph (`ldp`, `mlp2x-gelu`); `None` for the
/// hand-written MobileVLM V1 and V2.
pub const fn definition(arch: Arch) -> Option<&'static Graph> {
    match arch {
        Arch::Ldp => Some(&ldp::GRAPH),
        Arch::Mlp2xGelu => Some(&mlp2x_gelu::GRAPH),
        Arch::MobileVlmV2 => Some(&mobilevlm_v2::GRAPH),
        Arch::MobileVlmV1 => Some(&mobilevlm_v1::GRAPH),
    }
}

/// The graph of a token-wise graph architecture ([`GraphConfig`]; `mlp2x-gelu`), `None` for the
/// others (`ldp` is a graph too, run through its own configuration: see [`definition`]).
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

/// Index in the float tensor list of node `node`'s first tensor (the weight of a Linear or
/// depthwise, the scale of a LayerNorm; its bias follows).
pub const fn float_index(nodes: &[Node], node: usize) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < node && i < nodes.len() {
        n += float_count(&nodes[i]);
        i += 1;
    }
    n
}

/// Float tensors of one node.
const fn float_count(nd: &Node) -> usize {
    match nd.op {
        Op::Linear { .. } | Op::Depthwise { .. } => 1 + nd.bias as usize,
        Op::LayerNorm { .. } => 2,
        Op::SqueezeExcite { .. } => 4,
        Op::Resize { .. } | Op::Pool { .. } => 0,
    }
}

const DW: &[Dim] = &[Dim::Cout, Dim::Lit(9)];
const SC: &[Dim] = &[Dim::S, Dim::Cout];
const CS: &[Dim] = &[Dim::Cout, Dim::S];
const SQ: &[Dim] = &[Dim::S];

/// The float tensor list of `nodes`: per Linear or depthwise `name.weight` (the model's weight
/// type) and `name.bias` (f32), per LayerNorm `name.weight` and `name.bias` (f32). `N` must be
/// [`float_len`]`(nodes)`.
pub const fn float_specs<const N: usize>(nodes: &'static [Node]) -> [TensorSpec; N] {
    let mut out = [spec("", "", F32, VEC); N];
    let (mut k, mut i) = (0, 0);
    while i < nodes.len() {
        let nd = &nodes[i];
        match nd.op {
            Op::Linear { c_in, c_out, .. } => {
                out[k] = spec(nd.name, "weight", ElemOf::Weight, weight_dims(c_out, c_in));
                if nd.bias {
                    out[k + 1] = spec(nd.name, "bias", F32, vec_dims(c_out));
                }
            }
            Op::Depthwise { .. } => {
                out[k] = spec(nd.name, "weight", ElemOf::Weight, DW);
                if nd.bias {
                    out[k + 1] = spec(nd.name, "bias", F32, VEC);
                }
            }
            Op::LayerNorm { .. } => {
                out[k] = spec(nd.name, "weight", F32, VEC);
                out[k + 1] = spec(nd.name, "bias", F32, VEC);
            }
            Op::SqueezeExcite { .. } => {
                out[k] = spec(nd.name, "fc1.weight", ElemOf::Weight, SC);
                out[k + 1] = spec(nd.name, "fc1.bias", F32, SQ);
                out[k + 2] = spec(nd.name, "fc2.weight", ElemOf::Weight, CS);
                out[k + 3] = spec(nd.name, "fc2.bias", F32, VEC);
            }
            Op::Resize { .. } | Op::Pool { .. } => {}
        }
        k += float_count(nd);
        i += 1;
    }
    assert!(k == N, "float_specs: N is not float_len(nodes)");
    out
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// What a source resolves to: the model input, or a node's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The model input.
    Input,
    /// The output of node `i` (after its residual addition, if any).
    Node(usize),
}

/// Resolves source `src` of node `at` (`same_width`: `c_in == c_out`). A name matches a node's
/// [`Node::value`] or its residual's value, both meaning the node's output. `None` when the
/// name is unknown or names a node that does not run before `at`.
pub const fn resolve_src(
    nodes: &[Node],
    at: usize,
    src: Src,
    same_width: bool,
) -> Option<Resolved> {
    let name = match src {
        Src::Prev => {
            return if at == 0 {
                Some(Resolved::Input)
            } else {
                Some(Resolved::Node(at - 1))
            }
        }
        Src::Input => return Some(Resolved::Input),
        Src::InputIfSameWidth(_) if same_width => return Some(Resolved::Input),
        Src::InputIfSameWidth(n) | Src::Value(n) => n,
    };
    let mut i = 0;
    while i < at && i < nodes.len() {
        let hit = str_eq(nodes[i].value, name)
            || match nodes[i].residual() {
                Some(r) => str_eq(r.value, name),
                None => false,
            };
        if hit {
            return Some(Resolved::Node(i));
        }
        i += 1;
    }
    None
}

/// Whether node `i`'s output feeds a LayerNorm (an int8 executor then writes it with 16 bits).
pub const fn feeds_norm(nodes: &[Node], i: usize) -> bool {
    let mut j = i + 1;
    while j < nodes.len() {
        if let Op::LayerNorm { .. } = nodes[j].op {
            // Either width agreement resolves a LayerNorm's input the same way unless it reads
            // `InputIfSameWidth`, which no graph does for a LayerNorm.
            if let Some(Resolved::Node(k)) = resolve_src(nodes, j, nodes[j].input, false) {
                if k == i {
                    return true;
                }
            }
        }
        j += 1;
    }
    false
}

/// The form of an int8-weight blob's tensor list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntForm {
    /// int8 activations and input.
    Int8,
    /// int8 activations, 16-bit input ([`crate::blob::specs::FLAG_INPUT16`]).
    Input16,
    /// 16-bit activations and input ([`crate::blob::specs::FLAG_ACT16`]), per node: a GELU's
    /// table `name.lut16` and parameters `name.gelu16`, `quant.meta` as for int8.
    Act16,
    /// 16-bit activations in the appended form ([`a16::appended`]): a GELU's table
    /// `name.lut16`, its parameters and the saturations appended to `quant.meta`.
    Act16Appended,
}

/// Length of `quant.meta` of a 16-bit-activation blob of `nodes` in `form`.
pub const fn a16_meta_len(nodes: &[Node], form: IntForm) -> usize {
    match form {
        IntForm::Act16Appended => a16::appended::len(nodes),
        _ => meta::total(nodes),
    }
}

/// Number of int8 tensors of `nodes` in `form`.
pub const fn int8_len(nodes: &[Node], form: IntForm) -> usize {
    let mut n = 4; // input.scale, input.zero … quant.scales, quant.meta
    let mut i = 0;
    while i < nodes.len() {
        let nd = &nodes[i];
        n += match nd.op {
            Op::Linear { .. } => 3,
            Op::Depthwise { .. } => 2 + nd.bias as usize,
            Op::LayerNorm { .. } => 2,
            // The 16-bit form has no gate table.
            Op::SqueezeExcite { .. } => match form {
                IntForm::Act16 | IntForm::Act16Appended => 6,
                _ => 7,
            },
            Op::Resize { .. } => 1,
            Op::Pool { .. } => 0,
        };
        n += match (nd.act(), form, nd.op) {
            (Act::Gelu, IntForm::Act16, Op::Linear { .. }) => 2,
            (Act::Gelu, IntForm::Act16Appended, Op::Linear { .. }) => 1,
            (Act::Gelu | Act::Hardswish, _, _) => 1,
            (Act::None, _, _) => 0,
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
/// shift) —, per LayerNorm `name.gamma`, `name.beta` (i16) and for a fused Hardswish
/// `table.lut` (i8) — with 16-bit activations `table.hswish16` (i32: three, multiplier, shift;
/// [`crate::kernels::norm::a16::Hswish16`]) —, per squeeze-excitation both fcs' weight, bias and
/// mult and the gate table `name.gate.lut` (u8; none with 16-bit activations), then
/// `quant.scales` (f32) and `quant.meta` (i32) of length `meta_dims` ([`meta::len`]). `N` must
/// be [`int8_len`]`(nodes, form)`.
pub const fn int8_specs<const N: usize>(
    nodes: &'static [Node],
    input_q: &'static [Dim],
    meta_dims: &'static [Dim],
    form: IntForm,
) -> [TensorSpec; N] {
    const I8: ElemOf = ElemOf::Fixed(ElemType::I8);
    const I16: ElemOf = ElemOf::Fixed(ElemType::I16);
    const U8: ElemOf = ElemOf::Fixed(ElemType::U8);
    let mut out = [spec("", "", F32, VEC); N];
    out[0] = spec("input.scale", "", F32, input_q);
    out[1] = if let IntForm::Input16 = form {
        spec(
            "input.limit",
            "",
            ElemOf::Fixed(ElemType::I32),
            &[Dim::Lit(1)],
        )
    } else {
        spec("input.zero", "", I8, input_q)
    };
    let (mut k, mut i) = (2, 0);
    while i < nodes.len() {
        let nd = &nodes[i];
        match nd.op {
            Op::Linear { c_in, c_out, .. } => {
                out[k] = spec(nd.name, "weight", I8, weight_dims(c_out, c_in));
                out[k + 1] = spec(nd.name, "bias", I16, vec_dims(c_out));
                out[k + 2] = spec(nd.name, "mult", U8, vec_dims(c_out));
                k += 3;
            }
            Op::Depthwise { .. } => {
                out[k] = spec(nd.name, "weight", I8, DW);
                if nd.bias {
                    out[k + 1] = spec(nd.name, "bias", I16, VEC);
                    k += 1;
                }
                out[k + 1] = spec(nd.name, "mult", U8, VEC);
                k += 2;
            }
            Op::SqueezeExcite { .. } => {
                out[k] = spec(nd.name, "fc1.weight", I8, SC);
                out[k + 1] = spec(nd.name, "fc1.bias", I16, SQ);
                out[k + 2] = spec(nd.name, "fc1.mult", U8, SQ);
                out[k + 3] = spec(nd.name, "fc2.weight", I8, CS);
                out[k + 4] = spec(nd.name, "fc2.bias", I16, VEC);
                out[k + 5] = spec(nd.name, "fc2.mult", U8, VEC);
                k += 6;
                if !matches!(form, IntForm::Act16 | IntForm::Act16Appended) {
                    out[k] = spec(nd.name, "gate.lut", U8, LUT);
                    k += 1;
                }
            }
            Op::LayerNorm { .. } => {
                out[k] = spec(nd.name, "gamma", I16, VEC);
                out[k + 1] = spec(nd.name, "beta", I16, VEC);
                k += 2;
            }
            Op::Resize { .. } => {
                out[k] = spec(nd.name, "mult", I16, &[Dim::SkipQ]);
                k += 1;
            }
            Op::Pool { .. } => {}
        }
        match (nd.act(), form, nd.op) {
            (Act::Gelu, IntForm::Act16Appended, Op::Linear { .. }) => {
                out[k] = spec(
                    nd.table_name(),
                    "lut16",
                    I16,
                    &[Dim::Lit(crate::quant::a16::GELU16_LEN as u32)],
                );
                k += 1;
            }
            (Act::Gelu, IntForm::Act16, Op::Linear { .. }) => {
                out[k] = spec(
                    nd.table_name(),
                    "lut16",
                    I16,
                    &[Dim::Lit(crate::quant::a16::GELU16_LEN as u32)],
                );
                out[k + 1] = spec(
                    nd.table_name(),
                    "gelu16",
                    ElemOf::Fixed(ElemType::I32),
                    &[Dim::Lit(4)],
                );
                k += 2;
            }
            (Act::Hardswish, IntForm::Act16 | IntForm::Act16Appended, _) => {
                out[k] = spec(
                    nd.table_name(),
                    "hswish16",
                    ElemOf::Fixed(ElemType::I32),
                    &[Dim::Lit(3)],
                );
                k += 1;
            }
            (Act::Gelu | Act::Hardswish, _, _) => {
                out[k] = spec(nd.table_name(), "lut", I8, LUT);
                k += 1;
            }
            (Act::None, _, _) => {}
        }
        i += 1;
    }
    out[k] = spec("quant.scales", "", F32, meta_dims);
    out[k + 1] = spec("quant.meta", "", ElemOf::Fixed(ElemType::I32), meta_dims);
    assert!(k + 2 == N, "int8_specs: N is not int8_len(nodes)");
    out
}

/// Builds a [`Graph`] from a `const` node list: `graph!(ARCH, NODES)` in the architecture's
/// file (input quantized per tensor), or `graph!(ARCH, NODES, INPUT_Q)` with the dims of
/// `input.scale` / `input.zero` (`&[Dim::CinQ]`: per channel when the header says so), or
/// `graph!(ARCH, NODES, INPUT_Q, IntForm::Act16Appended)` for 16-bit-activation blobs in the
/// appended form ([`a16::appended`]; MobileVLM V2's).
macro_rules! graph {
    ($arch:expr, $nodes:expr) => {
        $crate::graph::graph!($arch, $nodes, &[$crate::blob::specs::Dim::Lit(1)])
    };
    ($arch:expr, $nodes:expr, $input_q:expr) => {
        $crate::graph::graph!($arch, $nodes, $input_q, $crate::graph::IntForm::Act16)
    };
    ($arch:expr, $nodes:expr, $input_q:expr, $a16:expr) => {
        $crate::graph::Graph {
            arch: $arch,
            nodes: $nodes,
            float: &$crate::graph::float_specs::<{ $crate::graph::float_len($nodes) }>($nodes),
            int8: &$crate::graph::int8_specs::<
                { $crate::graph::int8_len($nodes, $crate::graph::IntForm::Int8) },
            >(
                $nodes,
                $input_q,
                &[$crate::blob::specs::Dim::Lit(
                    $crate::graph::meta::total($nodes) as u32,
                )],
                $crate::graph::IntForm::Int8,
            ),
            int8_x16: &$crate::graph::int8_specs::<
                { $crate::graph::int8_len($nodes, $crate::graph::IntForm::Input16) },
            >(
                $nodes,
                $input_q,
                &[$crate::blob::specs::Dim::Lit(
                    $crate::graph::meta::total($nodes) as u32,
                )],
                $crate::graph::IntForm::Input16,
            ),
            int8_a16: &$crate::graph::int8_specs::<{ $crate::graph::int8_len($nodes, $a16) }>(
                $nodes,
                $input_q,
                &[$crate::blob::specs::Dim::Lit(
                    $crate::graph::a16_meta_len($nodes, $a16) as u32,
                )],
                $a16,
            ),
            conv_shifts: &$crate::graph::meta::conv_shifts::<
                { $crate::graph::meta::conv_count($nodes) },
            >($nodes),
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
    /// Where node `i`'s parameters sit in `quant.meta` / `quant.scales`, found by walking the
    /// nodes before it. Per operation, in this order:
    ///
    /// * Linear: shift word, pre-table zero point, output zero point — or, when it feeds a
    ///   LayerNorm (16-bit output), shift word and output zero point;
    /// * depthwise: shift word, output zero point; with a residual addition then the two
    ///   multipliers, the shift and the sum's zero point;
    /// * LayerNorm: shift, epsilon, the pre-table zero point (only with an activation), the
    ///   output zero point;
    /// * resize: shift, output zero point.
    ///
    /// Index 0 is the model input's zero point. For Linear-only graphs this is [`shift`],
    /// [`pre`] and [`out`].
    pub const fn node(nodes: &[super::Node], i: usize) -> NodeMeta {
        if i >= nodes.len() {
            return NodeMeta {
                shift: 0,
                eps: 0,
                pre: 0,
                out: 0,
                se: 0,
                add: 0,
                len: 0,
            };
        }
        let at = start(nodes, i);
        let mut m = own(nodes, i, at);
        if let Some(r) = nodes[i].residual() {
            if r.source_first {
                if let Some(super::Resolved::Node(s)) = super::resolve_src(nodes, i, r.from, false)
                {
                    let sa = start(nodes, s);
                    m.add = sa + own(nodes, s, sa).len;
                }
            }
        }
        if hosts(nodes, i) {
            m.len += 4;
        }
        m
    }
    /// Where node `i`'s entries start.
    const fn start(nodes: &[super::Node], i: usize) -> usize {
        let mut at = 1;
        let mut k = 0;
        while k < i && k < nodes.len() {
            at += own(nodes, k, at).len + if hosts(nodes, k) { 4 } else { 0 };
            k += 1;
        }
        at
    }
    /// Whether a later node's residual addition `from + op(x)` reads node `k` (its entries then
    /// follow `k`'s, [`super::Residual::source_first`]).
    const fn hosts(nodes: &[super::Node], k: usize) -> bool {
        let mut j = k + 1;
        while j < nodes.len() {
            if let Some(r) = nodes[j].residual() {
                if r.source_first {
                    if let Some(super::Resolved::Node(s)) =
                        super::resolve_src(nodes, j, r.from, false)
                    {
                        if s == k {
                            return true;
                        }
                    }
                }
            }
            j += 1;
        }
        false
    }
    /// Node `k`'s own entries starting at `at` (without hosted additions).
    const fn own(nodes: &[super::Node], k: usize, at: usize) -> NodeMeta {
        use super::Op;
        let mut m = NodeMeta {
            shift: at,
            eps: 0,
            pre: at + 1,
            out: at + 1,
            se: 0,
            add: 0,
            len: 2,
        };
        match nodes[k].op {
            Op::Linear { act, .. } => {
                let pre = act.is_some() || nodes[k].pre_entry;
                if pre && !super::feeds_norm(nodes, k) {
                    m.out = at + 2;
                    m.len = 3;
                }
            }
            Op::Resize { .. } => {}
            Op::Pool { .. } => {
                // No entry: the output keeps its input's quantization.
                let src = match super::resolve_src(nodes, k, nodes[k].input, false) {
                    Some(super::Resolved::Node(j)) => node(nodes, j).result(),
                    _ => Z_X,
                };
                m.shift = 0;
                m.pre = src;
                m.out = src;
                m.len = 0;
            }
            Op::Depthwise { .. } => {}
            Op::LayerNorm { act, .. } => {
                m.eps = at + 1;
                m.pre = at + 2;
                m.out = at + 2;
                m.len = 3;
                if act.is_some() {
                    m.out = at + 3;
                    m.len = 4;
                }
            }
            Op::SqueezeExcite { .. } => {
                m.se = at + 2;
                m.out = at + 6;
                m.len = 7;
            }
        }
        if let Some(r) = nodes[k].residual() {
            if !r.source_first {
                m.add = at + m.len;
                m.len += 4;
            }
        }
        m
    }
    /// Length of `quant.meta` of a node list.
    pub const fn total(nodes: &[super::Node]) -> usize {
        start(nodes, nodes.len())
    }
    /// Index of the model output's zero point and scale.
    pub const fn output(nodes: &[super::Node]) -> usize {
        if nodes.is_empty() {
            return Z_X;
        }
        node(nodes, nodes.len() - 1).result()
    }
    /// Number of shift words of convs (Linear, depthwise) in a node list.
    pub const fn conv_count(nodes: &[super::Node]) -> usize {
        let (mut n, mut k) = (0, 0);
        while k < nodes.len() {
            n += match nodes[k].op {
                super::Op::Linear { .. } | super::Op::Depthwise { .. } => 1,
                super::Op::SqueezeExcite { .. } => 2,
                _ => 0,
            };
            k += 1;
        }
        n
    }
    /// The `quant.meta` indices of the conv shift words, in node order. `N` must be
    /// [`conv_count`]`(nodes)`.
    pub const fn conv_shifts<const N: usize>(nodes: &[super::Node]) -> [usize; N] {
        let mut out = [0; N];
        let (mut n, mut k) = (0, 0);
        while k < nodes.len() {
            let m = node(nodes, k);
            match nodes[k].op {
                super::Op::Linear { .. } | super::Op::Depthwise { .. } => {
                    out[n] = m.shift;
                    n += 1;
                }
                super::Op::SqueezeExcite { .. } => {
                    out[n] = m.shift;
                    out[n + 1] = m.se;
                    n += 2;
                }
                _ => {}
            }
            k += 1;
        }
        assert!(n == N, "conv_shifts: N is not conv_count(nodes)");
        out
    }

    /// A node's `quant.meta` indices ([`node`]); 0 where the operation has no such entry.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct NodeMeta {
        /// Shift word (conv) or shift (LayerNorm, resize).
        pub shift: usize,
        /// LayerNorm epsilon.
        pub eps: usize,
        /// Zero point before the activation table (equal to `out` without one).
        pub pre: usize,
        /// Zero point of the operation's output (before a residual addition).
        pub out: usize,
        /// Squeeze-excitation: `fc2`'s shift word; `se + 1` the gate input's zero point,
        /// `se + 2` and `se + 3` the output multiplier and shift. (`shift` is `fc1`'s word,
        /// `pre` the hidden vector's zero point.) 0 for other operations.
        pub se: usize,
        /// Residual addition: the multiplier of the first operand (the operation's output, or
        /// the other operand for [`super::Residual::source_first`]), `add + 1` that of the
        /// second, `add + 2` the shift, `add + 3` the sum's zero point. 0 without addition.
        pub add: usize,
        /// Entries of the node.
        pub len: usize,
    }

    impl NodeMeta {
        /// Zero point of the node's result: the sum's with a residual addition, else `out`.
        pub const fn result(&self) -> usize {
            if self.add != 0 {
                self.add + 3
            } else {
                self.out
            }
        }
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

/// Whether every node is a Linear reading the previous node: the graphs [`GraphConfig`]'s
/// executors run (one token at a time, grid unchanged).
pub const fn token_wise(nodes: &[Node]) -> bool {
    let mut i = 0;
    while i < nodes.len() {
        if !nodes[i].is_linear() || !matches!(nodes[i].input, Src::Prev) {
            return false;
        }
        i += 1;
    }
    true
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
        match graph_of(self.arch) {
            Some(g) if token_wise(g.nodes) => {}
            _ => {
                return Err(crate::Error::InvalidConfig(
                    "GraphConfig: the architecture is not a token-wise graph architecture",
                ))
            }
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
    /// The sizes the graph runs at.
    pub const fn dims(&self) -> plan::Dims {
        plan::Dims {
            c_in: self.c_in,
            c_out: self.c_out,
            h: self.h,
            w: self.w,
            squeeze: 0,
        }
    }
    /// Scratch elements (of the activation type) of the float forward pass: the float memory
    /// plan of the nodes (0 for a configuration that does not validate).
    pub const fn scratch_len(&self) -> usize {
        self.plan_len(plan::Scheme::Float)
    }
    /// Scratch bytes of the int8 forward pass (int8 input to int8 output): the int8 plan.
    pub const fn scratch_bytes_i8(&self) -> usize {
        self.plan_len(plan::Scheme::Int8)
    }
    const fn plan_len(&self, scheme: plan::Scheme) -> usize {
        if self.validate().is_err() {
            return 0;
        }
        match plan::plan(self.nodes(), self.dims(), scheme) {
            Ok(p) => p.len,
            Err(_) => 0,
        }
    }
    /// Scratch bytes of the row-streaming forward pass with strips of at most `strip` output
    /// columns, for element sizes `(input, activation, output)`
    /// ([`crate::stream::elem_sizes`]): the row layout of the nodes (0 when `strip` is 0).
    pub const fn stream_scratch_bytes(&self, strip: usize, sizes: (usize, usize, usize)) -> usize {
        let scheme = if sizes.1 == 1 {
            plan::Scheme::Int8
        } else {
            plan::Scheme::Float
        };
        if self.validate().is_err() {
            return 0;
        }
        match rows::layout(self.nodes(), self.dims(), strip, scheme) {
            Ok(l) => rows::scratch_bytes(&l, self.dims(), sizes),
            Err(_) => 0,
        }
    }
    /// Number of parameters.
    pub const fn param_count(&self) -> usize {
        let nodes = self.nodes();
        let (mut p, mut i) = (0, 0);
        while i < nodes.len() {
            let (ci, co) = nodes[i].widths(self.c_in, self.c_out);
            p += match nodes[i].op {
                Op::Linear { .. } => ci * co + co,
                Op::Depthwise { .. } => 10 * co,
                Op::LayerNorm { .. } => 2 * co,
                // Token-wise graphs have no squeeze-excitation.
                Op::Resize { .. } | Op::Pool { .. } | Op::SqueezeExcite { .. } => 0,
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
                Op::Depthwise { .. } => self.tokens() * 9 * co,
                Op::LayerNorm { .. }
                | Op::Resize { .. }
                | Op::Pool { .. }
                | Op::SqueezeExcite { .. } => 0,
            };
            i += 1;
        }
        m
    }
}
