//! LLaVA's `mlp2x_gelu` projector: `nn.Sequential(Linear(mm_hidden, hidden), GELU(),
//! Linear(hidden, hidden))` over the vision tokens `[N][c_in]` (docs/ARCHITECTURES.md). This
//! file is the whole definition; the blob layout, sizes and executors follow from it.

use super::{graph, Act, Ch, Graph, Node};
use crate::blob::format::Arch;

/// `0`: `Linear(c_in, c_out)` + GELU (the `GELU()` at index 1 has no weights); `2`:
/// `Linear(c_out, c_out)`.
pub const NODES: &[Node] = &[
    Node::linear("0", Ch::In, Ch::Out, Act::Gelu),
    Node::linear("2", Ch::Out, Ch::Out, Act::None).with_pre_entry(),
];

/// The graph.
pub const GRAPH: Graph = graph!(Arch::Mlp2xGelu, NODES);
