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
//!
//! This file is the architecture's definition: the node lists, and the typed API over them
//! ([`V2Config`], [`V2Weights`], [`forward`], also reachable as [`crate::arch::mobilevlm_v2`]).

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
const PEG: Node = Node::depthwise("peg.peg.0", 1, Some(Residual::after(Src::Prev, "y"))).value("d");

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

/// The graph (input quantized per channel when the header says so; 16-bit-activation blobs in
/// the appended form).
pub const GRAPH: Graph = graph!(
    Arch::MobileVlmV2,
    NODES,
    &[Dim::CinQ],
    super::IntForm::Act16Appended
);

// ---------------------------------------------------------------------------------------------
// The typed API: configuration, borrowed weights, forward pass (also at
// `crate::arch::mobilevlm_v2`).

use crate::elem::Elem;
use crate::error::{check_len, Error};

/// Shape of a MobileVLM V2 projector on an `h × h` token grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct V2Config {
    /// Token width in, e.g. 1024.
    pub c_in: usize,
    /// Token width out, e.g. 2048.
    pub c_out: usize,
    /// Grid side; `N = h²`.
    pub h: usize,
}

impl V2Config {
    /// Input tokens.
    pub const fn tokens_in(&self) -> usize {
        self.h * self.h
    }
    /// Output tokens (always 144).
    pub const fn tokens_out(&self) -> usize {
        POOL * POOL
    }
    /// Elements of the input `[N][c_in]`.
    pub const fn input_len(&self) -> usize {
        self.tokens_in() * self.c_in
    }
    /// Elements of the output `[144][c_out]`.
    pub const fn output_len(&self) -> usize {
        self.tokens_out() * self.c_out
    }
    /// Scratch elements of the activation type: two maps `[N][c_out]` (the pooled map reuses one).
    pub const fn scratch_len(&self) -> usize {
        let nodes = nodes_for(self.tokens_in());
        match crate::graph::plan::plan(nodes, self.dims(), crate::graph::plan::Scheme::Float) {
            Ok(p) => p.len,
            Err(_) => 0,
        }
    }
    /// The sizes the graph ([`crate::graph::mobilevlm_v2`]) runs at.
    pub const fn dims(&self) -> crate::graph::plan::Dims {
        crate::graph::plan::Dims {
            c_in: self.c_in,
            c_out: self.c_out,
            h: self.h,
            w: self.h,
            squeeze: 0,
        }
    }
    /// Number of parameters.
    pub const fn param_count(&self) -> usize {
        let c = self.c_out;
        (self.c_in * c + c) + (c * c + c) + (9 * c + c)
    }
    /// Whether the pool runs before `mlp.mlp.2` (when the grid has more than 144 tokens).
    ///
    /// Average pooling is linear and its bin weights sum to 1, so it commutes with the second
    /// Linear layer (bias included): `pool(fc2(a)) = fc2(pool(a))`. Pooling first runs `fc2` on
    /// 144 tokens instead of `N` (at MobileVLM's 24×24: 4× fewer of its MACs, half of the whole
    /// projector's) and, in int8, rounds `fc2`'s output once at the pooled tokens instead of
    /// before and after the pool. Grids of ≤ 144 tokens keep the order of the PyTorch module.
    pub const fn pool_first(&self) -> bool {
        self.tokens_in() > POOL * POOL
    }
    /// Multiply-accumulates of one forward pass (pooling counted as one MAC per input value).
    pub const fn macs(&self) -> usize {
        let (n, c) = (self.tokens_in(), self.c_out);
        let fc2_tokens = if self.pool_first() { POOL * POOL } else { n };
        n * self.c_in * c + fc2_tokens * c * c + n * c + POOL * POOL * 9 * c
    }
    /// Checks that the configuration is usable.
    pub const fn validate(&self) -> Result<(), Error> {
        if self.c_in == 0 || self.c_out == 0 {
            return Err(Error::InvalidConfig(
                "mobilevlm-v2: channel counts must be > 0",
            ));
        }
        if self.h == 0 {
            return Err(Error::InvalidConfig(
                "mobilevlm-v2: grid must be at least 1×1",
            ));
        }
        Ok(())
    }
}

/// Borrowed weights of the V2 projector.
#[derive(Debug, Clone, Copy)]
pub struct V2Weights<'a, W> {
    /// `mlp.mlp.0.weight`, `[c_out][c_in]`.
    pub fc1_w: &'a [W],
    /// `mlp.mlp.0.bias`.
    pub fc1_b: &'a [f32],
    /// `mlp.mlp.2.weight`, `[c_out][c_out]`.
    pub fc2_w: &'a [W],
    /// `mlp.mlp.2.bias`.
    pub fc2_b: &'a [f32],
    /// `peg.peg.0.weight`, depthwise `[c_out][9]`.
    pub peg_w: &'a [W],
    /// `peg.peg.0.bias`.
    pub peg_b: &'a [f32],
}

impl<W> V2Weights<'_, W> {
    /// Checks every slice length against `cfg`.
    pub fn validate(&self, cfg: &V2Config) -> Result<(), Error> {
        let c = cfg.c_out;
        check_len("mlp.mlp.0.weight", self.fc1_w, c * cfg.c_in)?;
        check_len("mlp.mlp.0.bias", self.fc1_b, c)?;
        check_len("mlp.mlp.2.weight", self.fc2_w, c * c)?;
        check_len("mlp.mlp.2.bias", self.fc2_b, c)?;
        check_len("peg.peg.0.weight", self.peg_w, 9 * c)?;
        check_len("peg.peg.0.bias", self.peg_b, c)
    }
}

impl<'a, W> V2Weights<'a, W> {
    /// The weight-typed tensor `k` of the float tensor list
    /// ([`crate::graph::mobilevlm_v2::GRAPH`]`.float`).
    fn wt(&self, k: usize) -> Result<&'a [W], Error> {
        Ok(match k {
            0 => self.fc1_w,
            2 => self.fc2_w,
            4 => self.peg_w,
            _ => return Err(Error::Unsupported("mobilevlm-v2: no such weight tensor")),
        })
    }
    /// The f32 tensor `k` of the float tensor list.
    fn ft(&self, k: usize) -> Result<&'a [f32], Error> {
        Ok(match k {
            1 => self.fc1_b,
            3 => self.fc2_b,
            5 => self.peg_b,
            _ => return Err(Error::Unsupported("mobilevlm-v2: no such f32 tensor")),
        })
    }
}

/// Runs the projector on tokens `input` (`[N][c_in]`), writing `output` (`[144][c_out]`): the
/// graph [`crate::graph::mobilevlm_v2`] (pool first above 144 tokens) by the float executor.
pub fn forward<W: Elem, A: Elem>(
    cfg: &V2Config,
    wts: &V2Weights<'_, W>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    cfg.validate()?;
    wts.validate(cfg)?;
    check_len("input", input, cfg.input_len())?;
    check_len("output", output, cfg.output_len())?;
    let nodes = nodes_for(cfg.tokens_in());
    crate::graph::float::forward_variant(
        nodes,
        cfg.dims(),
        |k| wts.wt(k),
        |k| wts.ft(k),
        input,
        output,
        scratch,
    )
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::graph::meta;

    /// V2's `quant.meta` indices (the blob format; `v2_meta` of commit 619cd67 named them).
    mod v2 {
        pub const FC1_SHIFT: usize = 1;
        pub const Z_H1P: usize = 2;
        pub const Z_H1: usize = 3;
        pub const FC2_SHIFT: usize = 4;
        pub const Z_M: usize = 5;
        pub const PEG_SHIFT: usize = 6;
        pub const Z_D: usize = 7;
        pub const ADD_MA: usize = 8;
        pub const Z_Y: usize = 11;
        pub const LEN: usize = 12;
        /// 16-bit blobs: the input's saturation, then the GELU's saturation and parameters.
        pub const Q_X: usize = 12;
        pub const Q_H1: usize = 13;
        pub const LEN_A16: usize = 18;
    }
    use v2 as V2;

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
        // 16-bit activations (appended form): a 513-entry `i16` GELU table in place of the
        // int8 one, and the longer `quant.meta` (compared entry by entry, elements and dims
        // included, with the hand-written `V2_A16` of commit 619cd67 before it was deleted).
        let mut a16 = int8.clone();
        a16[5] = "gelu.lut16".into();
        assert_eq!(keys(GRAPH.int8_a16), a16);
        assert_eq!(
            GRAPH.int8_a16[5].dims,
            &[crate::blob::specs::Dim::Lit(
                crate::quant::a16::GELU16_LEN as u32
            )]
        );
        assert_eq!(
            GRAPH.int8_a16[5].elem,
            crate::blob::specs::ElemOf::Fixed(crate::blob::format::ElemType::I16)
        );
        assert_eq!(
            GRAPH.int8_a16[13].dims,
            &[crate::blob::specs::Dim::Lit(V2::LEN_A16 as u32)]
        );
        for nodes in [NODES, NODES_POOL_FIRST] {
            use crate::graph::a16::appended;
            assert_eq!(appended::len(nodes), V2::LEN_A16);
            assert_eq!(appended::q_x(nodes), V2::Q_X);
            let fc1 = nodes.iter().position(|nd| nd.name == "mlp.mlp.0").unwrap();
            assert_eq!(appended::gelu(nodes, fc1), V2::Q_H1);
        }
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
                squeeze: 0,
            };
            let nodes = nodes_for(h * h);
            let f = plan(nodes, d, Scheme::Float).unwrap();
            let q = plan(nodes, d, Scheme::Int8).unwrap();
            // The hand-written layouts this plan replaced (commit 2868883): two maps of
            // `max(N, 144)·C` (int8: each 16-byte rounded).
            let n = (h * h).max(POOL * POOL);
            let (old_f, old_i8) = (2 * n * c_out, 2 * (n * c_out).div_ceil(16) * 16);
            let what = std::format!("v2 {c_in}->{c_out} h{h}");
            assert!(
                f.len <= old_f && q.len <= old_i8,
                "{what}: {} {}",
                f.len,
                q.len
            );
            assert_eq!(cfg.scratch_len(), f.len);
            let mc = crate::ModelConfig::MobileVlmV2(cfg);
            assert_eq!(crate::quant::scratch_bytes_i8(&mc), q.len);
            // Streaming: the hand-written streamer's chunks, pool accumulators, 3 pooled rows
            // and output row, against the graph row executor's layout.
            let r16 = |b: usize| b.div_ceil(16) * 16;
            let open = crate::graph::rows::open_bins(h, POOL);
            for (sx, sa, sy) in [(1, 1, 1), (4, 4, 4), (4, 2, 4)] {
                let chunk = crate::stream::CHUNK;
                let old = r16(chunk * c_in * sx)
                    + 2 * r16(chunk * c_out * sa)
                    + r16(open * POOL * c_out * 4)
                    + r16(3 * POOL * c_out * sa)
                    + r16(POOL * c_out * sy);
                let new = crate::stream::v2_scratch_bytes(&cfg, (sx, sa, sy));
                assert!(new < old, "{what} ({sx}, {sa}, {sy}): {new} against {old}");
            }
        }
    }
}
