//! MobileVLM V2's projector (`LDPNetV2Projector`, docs/ARCHITECTURES.md §3) as a graph: the MLP
//! `mlp.mlp.0` + GELU, `mlp.mlp.2`, adaptive average pooling to 12×12, then the depthwise
//! positional-encoding conv `peg.peg.0` with a residual (PEG). Node names are the PyTorch module
//! paths; value names (`h1`, `m`, `pooled`, `d`, `y`) name the calibration points and `eval`'s
//! per-layer report.
//!
//! **Variant.** On grids of more than 144 tokens the pool runs before `mlp.mlp.2`
//! ([`NODES_POOL_FIRST`], chosen by [`nodes_for`]): average pooling is linear with bin weights
//! summing to 1, so it commutes with the Linear layer (bias included), and pooling first runs it
//! on 144 tokens instead of `N`. Both lists give the same tensor lists and `quant.meta` layout
//! (the pool has neither), so one blob runs either way.

use super::{graph, Act, Ch, Graph, Node, Residual, Src};
use crate::blob::format::Arch;
use crate::blob::specs::Dim;

/// Side of the pooled grid (`TokenDownLayer((12, 12))`).
pub const POOL: usize = 12;

const FC1: Node = Node::linear("mlp.mlp.0", Ch::In, Ch::Out, Act::Gelu)
    .value("h1")
    .pre("h1p")
    .table("gelu");
const FC2: Node = Node::linear("mlp.mlp.2", Ch::Out, Ch::Out, Act::None).value("m");
const POOLING: Node = Node::pool("pool", POOL as u8).value("pooled");
const PEG: Node = Node::depthwise(
    "peg.peg.0",
    1,
    Some(Residual {
        from: Src::Prev,
        value: "y",
    }),
)
.value("d");

/// The nodes in the PyTorch module's order (grids of at most 144 tokens).
pub const NODES: &[Node] = &[FC1, FC2, POOLING, PEG];

/// The nodes with the pool before `mlp.mlp.2` (grids of more than 144 tokens).
pub const NODES_POOL_FIRST: &[Node] = &[FC1, POOLING, FC2, PEG];

/// The nodes a grid of `tokens` input tokens runs.
pub const fn nodes_for(tokens: usize) -> &'static [Node] {
    if tokens > POOL * POOL {
        NODES_POOL_FIRST
    } else {
        NODES
    }
}

/// The graph (input quantized per channel when the header says so).
pub const GRAPH: Graph = graph!(Arch::MobileVlmV2, NODES, &[Dim::CinQ]);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::blob::int8::v2_meta as V2;
    use crate::graph::meta;

    fn keys(a: &[crate::blob::specs::TensorSpec]) -> std::vec::Vec<std::string::String> {
        use std::string::ToString;
        a.iter().map(|t| t.to_string()).collect()
    }

    /// Both node orders give the hand-written blob layout, entry for entry.
    #[test]
    fn derived_layout_is_the_blob_format() {
        // The blob format of V2 (unchanged since before the graph; checked entry by entry
        // against the hand-written lists when they were replaced).
        let f = ["mlp.mlp.0", "mlp.mlp.2", "peg.peg.0"];
        let float: std::vec::Vec<_> = f
            .iter()
            .flat_map(|n| [std::format!("{n}.weight"), std::format!("{n}.bias")])
            .collect();
        assert_eq!(keys(GRAPH.float), float);
        let conv = |n: &str| ["weight", "bias", "mult"].map(|p| std::format!("{n}.{p}"));
        let mut int8: std::vec::Vec<std::string::String> =
            std::vec!["input.scale".into(), "input.zero".into()];
        int8.extend(conv(f[0]));
        int8.push("gelu.lut".into());
        int8.extend(conv(f[1]));
        int8.extend(conv(f[2]));
        int8.extend(["quant.scales".into(), "quant.meta".into()]);
        assert_eq!(keys(GRAPH.int8), int8);
        for nodes in [NODES, NODES_POOL_FIRST] {
            let m = |n: &str| {
                let i = nodes.iter().position(|nd| nd.name == n).unwrap();
                meta::node(nodes, i)
            };
            assert_eq!(meta::total(nodes), V2::LEN);
            let f1 = m("mlp.mlp.0");
            assert_eq!(
                (f1.shift, f1.pre, f1.out),
                (V2::FC1_SHIFT, V2::Z_H1P, V2::Z_H1)
            );
            let f2 = m("mlp.mlp.2");
            assert_eq!((f2.shift, f2.out), (V2::FC2_SHIFT, V2::Z_M));
            let peg = m("peg.peg.0");
            assert_eq!(
                (peg.shift, peg.out, peg.add, peg.result()),
                (V2::PEG_SHIFT, V2::Z_D, V2::ADD_MA, V2::Z_Y)
            );
            assert_eq!(meta::output(nodes), V2::Z_Y);
            assert_eq!(
                meta::conv_shifts::<3>(nodes),
                [V2::FC1_SHIFT, V2::FC2_SHIFT, V2::PEG_SHIFT]
            );
        }
        assert_eq!(
            GRAPH.conv_shifts,
            crate::quant::conv_shift_indices(Arch::MobileVlmV2)
        );
        // The pool keeps its input's quantization.
        assert_eq!(meta::node(NODES, 2).out, V2::Z_M);
        assert_eq!(meta::node(NODES_POOL_FIRST, 1).out, V2::Z_H1);
    }

    /// The planned scratch is at most the hand-written one.
    #[test]
    fn plans_are_no_larger_than_the_hand_written_layouts() {
        use crate::arch::mobilevlm_v2::V2Config;
        use crate::graph::plan::{plan, Dims, Scheme};
        for (c_in, c_out, h) in [
            (8, 16, 1),
            (8, 16, 5),
            (16, 8, 12),
            (8, 16, 13),
            (8, 16, 24),
            (1024, 2048, 24),
        ] {
            let cfg = V2Config { c_in, c_out, h };
            let d = Dims {
                c_in,
                c_out,
                h,
                w: h,
            };
            let nodes = nodes_for(h * h);
            let f = plan(nodes, d, Scheme::Float).unwrap();
            let q = plan(nodes, d, Scheme::Int8).unwrap();
            let old_i8 = crate::quant::scratch_bytes_i8(&crate::ModelConfig::MobileVlmV2(cfg));
            std::println!(
                "v2 {c_in}->{c_out} h{h}: float {} (old {}), int8 {} (old {old_i8})",
                f.len,
                cfg.scratch_len(),
                q.len
            );
            assert!(f.len <= cfg.scratch_len());
            assert!(q.len <= old_i8);
        }
    }
}
