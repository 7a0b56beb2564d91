//! The seed `ldp` block (docs/ARCHITECTURES.md §1) as a graph: PW1 → GELU → DW1 (+skip) → PW2 →
//! LN1 → GELU → DW2 (stride 2) + bilinear(skip) → PW3 → LN2. Node names are the PyTorch module
//! paths; value names (`a`, `r`, `d`, `b`, …) are the block's intermediates as the reference
//! math names them, and name the calibration points and `eval`'s per-layer report.

use super::{graph, Act, Ch, Graph, Node, Residual, Src};
use crate::blob::format::Arch;
use crate::blob::specs::Dim;

/// The nodes, in execution order (the skip resize runs early, so `a` can be overwritten).
pub const NODES: &[Node] = &[
    // a = GELU(pointwise1(x)); int8: table `gelu1.lut`, pre-table value `p`.
    Node::linear("pointwise1", Ch::In, Ch::Out, Act::Gelu)
        .value("a")
        .table("gelu1"),
    // r = bilinear(x if c_in == c_out else a) to the stride-2 grid.
    Node::resize("skip", Src::InputIfSameWidth("a")).value("r"),
    // b = depthwise1(a) + a
    Node::depthwise(
        "depthwise1",
        1,
        Some(Residual {
            from: Src::Value("a"),
            value: "b",
        }),
    )
    .value("d")
    .reads(Src::Value("a")),
    // q = pointwise2(b) (16-bit in int8: it feeds a LayerNorm)
    Node::linear("pointwise2", Ch::Out, Ch::Out, Act::None).value("q"),
    // c = GELU(norm1(q)); int8: table `gelu2.lut`, pre-table value `n`.
    Node::layer_norm("norm1", Act::Gelu)
        .value("c")
        .table("gelu2"),
    // f = depthwise2(c, stride 2) + r
    Node::depthwise(
        "depthwise2",
        2,
        Some(Residual {
            from: Src::Value("r"),
            value: "f",
        }),
    )
    .value("e"),
    // g = pointwise3(f) (16-bit in int8)
    Node::linear("pointwise3", Ch::Out, Ch::Out, Act::None).value("g"),
    // y = norm2(g)
    Node::layer_norm("norm2", Act::None).value("y"),
];

/// The graph (input quantized per channel when the header says so).
pub const GRAPH: Graph = graph!(Arch::Ldp, NODES, &[Dim::CinQ]);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::blob::int8::ldp_meta as L;
    use crate::graph::meta;

    fn keys(a: &[crate::blob::specs::TensorSpec]) -> std::vec::Vec<std::string::String> {
        use std::string::ToString;
        a.iter().map(|t| t.to_string()).collect()
    }

    /// The derived lists are the hand-written ones, entry for entry.
    #[test]
    fn derived_layout_is_the_blob_format() {
        // The blob format of `ldp` (unchanged since before the graph; checked entry by entry
        // against the hand-written lists when they were replaced).
        let conv = |n: &str| ["weight", "bias", "mult"].map(|p| std::format!("{n}.{p}"));
        let mut int8 = std::vec!["input.scale".into(), "input.zero".into()];
        int8.extend(conv("pointwise1"));
        int8.extend(["gelu1.lut".into(), "skip.mult".into()]);
        int8.extend(conv("depthwise1"));
        int8.extend(conv("pointwise2"));
        int8.extend([
            "norm1.gamma".into(),
            "norm1.beta".into(),
            "gelu2.lut".into(),
        ]);
        int8.extend(conv("depthwise2"));
        int8.extend(conv("pointwise3"));
        int8.extend(["norm2.gamma".into(), "norm2.beta".into()]);
        int8.extend(["quant.scales".into(), "quant.meta".into()]);
        assert_eq!(keys(GRAPH.int8), int8);
        int8[1] = "input.limit".into();
        assert_eq!(keys(GRAPH.int8_x16), int8);
        let float: std::vec::Vec<_> = [
            "pointwise1",
            "depthwise1",
            "pointwise2",
            "norm1",
            "depthwise2",
            "pointwise3",
            "norm2",
        ]
        .iter()
        .flat_map(|n| [std::format!("{n}.weight"), std::format!("{n}.bias")])
        .collect();
        assert_eq!(keys(GRAPH.float), float);
        assert_eq!(
            GRAPH.conv_shifts,
            crate::quant::conv_shift_indices(Arch::Ldp)
        );
        let m = |i| meta::node(NODES, i);
        assert_eq!(meta::total(NODES), L::LEN);
        assert_eq!(
            (m(0).shift, m(0).pre, m(0).out),
            (L::PW1_SHIFT, L::Z_P, L::Z_A)
        );
        assert_eq!((m(1).shift, m(1).out), (L::SKIP_SHIFT, L::Z_R));
        assert_eq!(
            (m(2).shift, m(2).out, m(2).add, m(2).result()),
            (L::DW1_SHIFT, L::Z_D, L::ADD1_MA, L::Z_B)
        );
        assert_eq!((m(3).shift, m(3).out), (L::PW2_SHIFT, L::Z_Q));
        assert_eq!(
            (m(4).shift, m(4).eps, m(4).pre, m(4).out),
            (L::LN1_SHIFT, L::LN1_EPS, L::Z_N, L::Z_C)
        );
        assert_eq!(
            (m(5).shift, m(5).out, m(5).add, m(5).result()),
            (L::DW2_SHIFT, L::Z_E, L::ADD2_MA, L::Z_F)
        );
        assert_eq!((m(6).shift, m(6).out), (L::PW3_SHIFT, L::Z_G));
        assert_eq!(
            (m(7).shift, m(7).eps, m(7).out),
            (L::LN2_SHIFT, L::LN2_EPS, L::Z_Y)
        );
        assert_eq!(meta::output(NODES), L::Z_Y);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::NODES;
    use crate::arch::ldp::LdpConfig;
    use crate::graph::plan::{plan, Dims, Scheme};

    #[test]
    fn plans_are_no_larger_than_the_hand_written_layouts() {
        for (c_in, c_out, h, w) in [
            (128, 128, 64, 64),
            (16, 16, 16, 16),
            (12, 12, 1, 1),
            (6, 10, 5, 3),
            (8, 24, 7, 9),
            (16, 24, 11, 13),
            (1024, 2048, 24, 24),
        ] {
            let d = Dims { c_in, c_out, h, w };
            let cfg = LdpConfig { c_in, c_out, h, w };
            let f = plan(NODES, d, Scheme::Float).unwrap();
            let q = plan(NODES, d, Scheme::Int8).unwrap();
            let old_i8 = crate::quant::scratch_bytes_i8(&crate::ModelConfig::Ldp(cfg));
            extern crate std;
            std::println!(
                "{c_in}->{c_out} {h}x{w}: float {} (old {}), int8 {} (old {old_i8})",
                f.len,
                cfg.scratch_len(),
                q.len
            );
            assert!(f.len <= cfg.scratch_len());
            assert!(q.len <= old_i8);
        }
    }
}
