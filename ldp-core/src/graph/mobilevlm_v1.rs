//! MobileVLM V1's projector (`LDPNetProjector`, docs/ARCHITECTURES.md §2) as a graph: the MLP
//! `mlp.1` + GELU, `mlp.3`, then two inverted-residual blocks `mb_block.{1,2}` — depthwise 3×3
//! (no bias) → LayerNorm → Hardswish → squeeze-excitation → 1×1 (no bias) → LayerNorm —, the
//! first with stride 1 and the residual `z + block(z)`, the second with stride 2. Node names are
//! the PyTorch module paths; value names (`h1`, `z`, `b1.d`, `b1.hs`, …, `z2`, `b2.u`) name the
//! calibration points and `eval`'s per-layer report.
//!
//! Attributes that keep the int8 blob format of the hand-written executors this replaced: the
//! GELU table is `gelu.lut`, the Hardswish tables `mb_block.{1,2}.hswish.lut`; each LayerNorm
//! runs in int8 together with the conv before it, a row at a time ([`Node::rows`]); the
//! residual's `quant.meta` entries follow `mlp.3`'s ([`Residual::before`]).
//!
//! This file is the architecture's definition: the node list and the typed API over it
//! ([`V1Config`], [`V1Weights`], [`forward`], also reachable as [`crate::arch::mobilevlm_v1`]).

use super::{graph, Act, Ch, Graph, Node, Residual, Src};
use crate::blob::format::Arch;
use crate::blob::specs::Dim;
use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::kernels::depthwise::out_dim;
use crate::kernels::se::SeWeights;

/// The nodes in the PyTorch module's order.
pub const NODES: &[Node] = &[
    Node::linear("mlp.1", Ch::In, Ch::Out, Act::Gelu)
        .value("h1")
        .pre("h1p")
        .table("gelu"),
    Node::linear("mlp.3", Ch::Out, Ch::Out, Act::None).value("z"),
    // mb_block.1: z2 = z + LN(PW(SE(HS(LN(DW(z))))))
    Node::depthwise("mb_block.1.block.0.0", 1, None)
        .no_bias()
        .value("b1.d"),
    Node::layer_norm("mb_block.1.block.0.1", Act::Hardswish)
        .by_rows()
        .value("b1.hs")
        .pre("b1.n")
        .table("mb_block.1.hswish"),
    Node::squeeze_excite("mb_block.1.block.1", "b1.sh", "b1.sg").value("b1.se"),
    Node::linear("mb_block.1.block.2.0", Ch::Out, Ch::Out, Act::None)
        .no_bias()
        .value("b1.pw"),
    Node::layer_norm("mb_block.1.block.2.1", Act::None)
        .by_rows()
        .value("b1.u")
        .plus(Residual::before(Src::Value("z"), "z2")),
    // mb_block.2 (stride 2): y = LN(PW(SE(HS(LN(DW(z2))))))
    Node::depthwise("mb_block.2.block.0.0", 2, None)
        .no_bias()
        .value("b2.d"),
    Node::layer_norm("mb_block.2.block.0.1", Act::Hardswish)
        .by_rows()
        .value("b2.hs")
        .pre("b2.n")
        .table("mb_block.2.hswish"),
    Node::squeeze_excite("mb_block.2.block.1", "b2.sh", "b2.sg").value("b2.se"),
    Node::linear("mb_block.2.block.2.0", Ch::Out, Ch::Out, Act::None)
        .no_bias()
        .value("b2.pw"),
    Node::layer_norm("mb_block.2.block.2.1", Act::None)
        .by_rows()
        .value("b2.u"),
];

/// The graph (input quantized per channel when the header says so).
pub const GRAPH: Graph = graph!(Arch::MobileVlmV1, NODES, &[Dim::CinQ]);

/// Index of the first node of block `b` (0 or 1) in [`NODES`]: its depthwise conv; the
/// LayerNorm, squeeze-excitation, projection and LayerNorm follow.
pub const fn block_node(b: usize) -> usize {
    2 + 5 * b
}

// ---------------------------------------------------------------------------------------------
// The typed API: configuration, borrowed weights, forward pass (also at
// `crate::arch::mobilevlm_v1`).

/// torchvision's `_make_divisible(v, 8)`: the squeeze width for `c` channels is `make_divisible(c / 4, 8)`.
pub const fn make_divisible(v: usize, divisor: usize) -> usize {
    let mut new_v = (v + divisor / 2) / divisor * divisor;
    if new_v < divisor {
        new_v = divisor;
    }
    // Round up by one divisor when rounding lost more than 10%.
    if 10 * new_v < 9 * v {
        new_v += divisor;
    }
    new_v
}

/// Shape of a MobileVLM V1 projector on an `h × h` token grid (`N = h²` tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct V1Config {
    /// Token width in (vision encoder), e.g. 1024.
    pub c_in: usize,
    /// Token width out (language model), e.g. 2048.
    pub c_out: usize,
    /// Grid side; `N = h²`.
    pub h: usize,
    /// Squeeze width of the SE blocks (torchvision: `make_divisible(c_out / 4, 8)`).
    pub squeeze: usize,
}

impl V1Config {
    /// The configuration the official module uses for these sizes (squeeze width derived).
    pub const fn new(c_in: usize, c_out: usize, h: usize) -> Self {
        V1Config {
            c_in,
            c_out,
            h,
            squeeze: make_divisible(c_out / 4, 8),
        }
    }
    /// Output grid side, `ceil(h/2)`.
    pub const fn h2(&self) -> usize {
        out_dim(self.h, 2)
    }
    /// Input tokens.
    pub const fn tokens_in(&self) -> usize {
        self.h * self.h
    }
    /// Output tokens.
    pub const fn tokens_out(&self) -> usize {
        self.h2() * self.h2()
    }
    /// Elements of the input `[N][c_in]`.
    pub const fn input_len(&self) -> usize {
        self.tokens_in() * self.c_in
    }
    /// Elements of the output `[N_out][c_out]`.
    pub const fn output_len(&self) -> usize {
        self.tokens_out() * self.c_out
    }
    /// Scratch elements of the activation type: the float memory plan of [`NODES`] — three maps
    /// `[N][c_out]`, plus room for the squeeze-excitation vectors as f32.
    pub const fn scratch_len(&self) -> usize {
        match crate::graph::plan::plan(NODES, self.dims(), crate::graph::plan::Scheme::Float) {
            Ok(p) => p.len,
            Err(_) => 0,
        }
    }
    /// The sizes the graph runs at.
    pub const fn dims(&self) -> crate::graph::plan::Dims {
        crate::graph::plan::Dims {
            c_in: self.c_in,
            c_out: self.c_out,
            h: self.h,
            w: self.h,
            squeeze: self.squeeze,
        }
    }
    /// Number of parameters.
    pub const fn param_count(&self) -> usize {
        let (c, s) = (self.c_out, self.squeeze);
        let block = 9 * c + 2 * c + (s * c + s) + (c * s + c) + c * c + 2 * c;
        (self.c_in * c + c) + (c * c + c) + 2 * block
    }
    /// Multiply-accumulates of one forward pass.
    pub const fn macs(&self) -> usize {
        let (n, n2, c, s) = (
            self.tokens_in(),
            self.tokens_out(),
            self.c_out,
            self.squeeze,
        );
        n * self.c_in * c
            + n * c * c
            + (n * 9 * c + 2 * s * c + n * c * c)
            + (n2 * 9 * c + 2 * s * c + n2 * c * c)
    }
    /// Checks that the configuration is usable.
    pub const fn validate(&self) -> Result<(), Error> {
        if self.c_in == 0 || self.c_out == 0 || self.squeeze == 0 {
            return Err(Error::InvalidConfig(
                "mobilevlm-v1: channel counts must be > 0",
            ));
        }
        if self.h == 0 {
            return Err(Error::InvalidConfig(
                "mobilevlm-v1: grid must be at least 1×1",
            ));
        }
        Ok(())
    }
}

/// Weights of one inverted-residual block (`mb_block.{1,2}.block`).
#[derive(Debug, Clone, Copy)]
pub struct V1BlockWeights<'a, W> {
    /// `block.0.0.weight`, depthwise `[c][9]`, no bias.
    pub dw_w: &'a [W],
    /// `block.0.1.weight` (LayerNorm).
    pub ln1_w: &'a [f32],
    /// `block.0.1.bias`.
    pub ln1_b: &'a [f32],
    /// `block.1`: squeeze-excitation.
    pub se: SeWeights<'a, W>,
    /// `block.2.0.weight`, pointwise `[c][c]`, no bias.
    pub pw_w: &'a [W],
    /// `block.2.1.weight` (LayerNorm).
    pub ln2_w: &'a [f32],
    /// `block.2.1.bias`.
    pub ln2_b: &'a [f32],
}

/// Borrowed weights of the V1 projector.
#[derive(Debug, Clone, Copy)]
pub struct V1Weights<'a, W> {
    /// `mlp.1.weight`, `[c_out][c_in]`.
    pub fc1_w: &'a [W],
    /// `mlp.1.bias`.
    pub fc1_b: &'a [f32],
    /// `mlp.3.weight`, `[c_out][c_out]`.
    pub fc2_w: &'a [W],
    /// `mlp.3.bias`.
    pub fc2_b: &'a [f32],
    /// `mb_block.1` (stride 1, residual).
    pub block1: V1BlockWeights<'a, W>,
    /// `mb_block.2` (stride 2).
    pub block2: V1BlockWeights<'a, W>,
}

impl<W> V1BlockWeights<'_, W> {
    fn validate(&self, c: usize, s: usize) -> Result<(), Error> {
        check_len("block.0.0.weight", self.dw_w, 9 * c)?;
        check_len("block.2.0.weight", self.pw_w, c * c)?;
        check_len("block.1.fc1.weight", self.se.fc1_w, s * c)?;
        check_len("block.1.fc1.bias", self.se.fc1_b, s)?;
        check_len("block.1.fc2.weight", self.se.fc2_w, c * s)?;
        for (n, v) in [
            ("block.1.fc2.bias", self.se.fc2_b),
            ("block.0.1.weight", self.ln1_w),
            ("block.0.1.bias", self.ln1_b),
            ("block.2.1.weight", self.ln2_w),
            ("block.2.1.bias", self.ln2_b),
        ] {
            check_len(n, v, c)?;
        }
        Ok(())
    }
}

impl<W> V1Weights<'_, W> {
    /// Checks every slice length against `cfg`.
    pub fn validate(&self, cfg: &V1Config) -> Result<(), Error> {
        let c = cfg.c_out;
        check_len("mlp.1.weight", self.fc1_w, c * cfg.c_in)?;
        check_len("mlp.1.bias", self.fc1_b, c)?;
        check_len("mlp.3.weight", self.fc2_w, c * c)?;
        check_len("mlp.3.bias", self.fc2_b, c)?;
        self.block1.validate(c, cfg.squeeze)?;
        self.block2.validate(c, cfg.squeeze)
    }
}

impl<'a, W> V1Weights<'a, W> {
    fn block(&self, b: usize) -> &V1BlockWeights<'a, W> {
        if b == 0 {
            &self.block1
        } else {
            &self.block2
        }
    }
    /// The weight-typed tensor `k` of the float tensor list ([`GRAPH`]`.float`).
    fn wt(&self, k: usize) -> Result<&'a [W], Error> {
        Ok(match k {
            0 => self.fc1_w,
            2 => self.fc2_w,
            4..=23 => {
                let b = self.block((k - 4) / 10);
                match (k - 4) % 10 {
                    0 => b.dw_w,
                    3 => b.se.fc1_w,
                    5 => b.se.fc2_w,
                    7 => b.pw_w,
                    _ => return Err(Error::Unsupported("mobilevlm-v1: no such weight tensor")),
                }
            }
            _ => return Err(Error::Unsupported("mobilevlm-v1: no such weight tensor")),
        })
    }
    /// The f32 tensor `k` of the float tensor list.
    fn ft(&self, k: usize) -> Result<&'a [f32], Error> {
        Ok(match k {
            1 => self.fc1_b,
            3 => self.fc2_b,
            4..=23 => {
                let b = self.block((k - 4) / 10);
                match (k - 4) % 10 {
                    1 => b.ln1_w,
                    2 => b.ln1_b,
                    4 => b.se.fc1_b,
                    6 => b.se.fc2_b,
                    8 => b.ln2_w,
                    9 => b.ln2_b,
                    _ => return Err(Error::Unsupported("mobilevlm-v1: no such f32 tensor")),
                }
            }
            _ => return Err(Error::Unsupported("mobilevlm-v1: no such f32 tensor")),
        })
    }
}

/// Runs the projector on tokens `input` (`[N][c_in]`), writing `output` (`[N_out][c_out]`): the
/// graph [`NODES`] by the float executor.
///
/// `scratch` must hold at least [`V1Config::scratch_len`] elements of `A`.
pub fn forward<W: Elem, A: Elem>(
    cfg: &V1Config,
    wts: &V1Weights<'_, W>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    cfg.validate()?;
    wts.validate(cfg)?;
    check_len("input", input, cfg.input_len())?;
    check_len("output", output, cfg.output_len())?;
    crate::graph::float::forward_variant(
        NODES,
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
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn keys(a: &[crate::blob::specs::TensorSpec]) -> Vec<String> {
        a.iter().map(|t| t.to_string()).collect()
    }

    /// The derived lists and `quant.meta` layout are V1's blob format, entry for entry. (They
    /// were compared with the hand-written lists they replaced, `V1_FLOAT`, `V1_INT8`,
    /// `V1_INT8_X16` and `v1_meta` of commit 4dbb733, before those were deleted.)
    #[test]
    fn derived_layout_is_the_blob_format() {
        let block = |b: &str, float: bool| -> Vec<String> {
            let p = |t: &str| std::format!("mb_block.{b}.block.{t}");
            let mut v = std::vec![p("0.0.weight")];
            if float {
                v.extend(["0.1.weight", "0.1.bias"].map(p));
                v.extend(["1.fc1.weight", "1.fc1.bias", "1.fc2.weight", "1.fc2.bias"].map(p));
                v.extend(["2.0.weight", "2.1.weight", "2.1.bias"].map(p));
            } else {
                v.extend(["0.0.mult", "0.1.gamma", "0.1.beta"].map(p));
                v.push(std::format!("mb_block.{b}.hswish.lut"));
                v.extend(["1.fc1.weight", "1.fc1.bias", "1.fc1.mult"].map(p));
                v.extend(["1.fc2.weight", "1.fc2.bias", "1.fc2.mult", "1.gate.lut"].map(p));
                v.extend(
                    [
                        "2.0.weight",
                        "2.0.bias",
                        "2.0.mult",
                        "2.1.gamma",
                        "2.1.beta",
                    ]
                    .map(p),
                );
            }
            v
        };
        let mut float: Vec<String> = ["mlp.1.weight", "mlp.1.bias", "mlp.3.weight", "mlp.3.bias"]
            .map(String::from)
            .to_vec();
        float.extend(block("1", true));
        float.extend(block("2", true));
        assert_eq!(keys(GRAPH.float), float);
        let head = |input: &str| -> Vec<String> {
            [
                "input.scale",
                input,
                "mlp.1.weight",
                "mlp.1.bias",
                "mlp.1.mult",
                "gelu.lut",
                "mlp.3.weight",
                "mlp.3.bias",
                "mlp.3.mult",
            ]
            .map(String::from)
            .to_vec()
        };
        for (list, input) in [(GRAPH.int8, "input.zero"), (GRAPH.int8_x16, "input.limit")] {
            let mut want = head(input);
            want.extend(block("1", false));
            want.extend(block("2", false));
            want.extend(["quant.scales", "quant.meta"].map(String::from));
            assert_eq!(keys(list), want);
        }
        // `quant.meta`: Z_X; mlp.1 shift, pre, out; mlp.3 shift, out; the residual's two
        // multipliers, shift and zero point; then per block (18 entries from 10 and 28): dw shift,
        // out; LayerNorm shift, eps, pre, out; SE fc1 shift, hidden zero, fc2 shift, gate zero,
        // multiplier, shift, out; projection shift, out; LayerNorm shift, eps, out.
        assert_eq!(meta::total(NODES), 46);
        let m = |k| meta::node(NODES, k);
        assert_eq!((m(0).shift, m(0).pre, m(0).out), (1, 2, 3));
        assert_eq!((m(1).shift, m(1).out), (4, 5));
        assert_eq!((m(6).add, m(6).result()), (6, 9));
        for b in 0..2 {
            let base = 10 + 18 * b;
            let k = block_node(b);
            assert_eq!((m(k).shift, m(k).out), (base, base + 1));
            let n = m(k + 1);
            assert_eq!(
                (n.shift, n.eps, n.pre, n.out),
                (base + 2, base + 3, base + 4, base + 5)
            );
            let s = m(k + 2);
            assert_eq!(
                (s.shift, s.pre, s.se, s.out),
                (base + 6, base + 7, base + 8, base + 12)
            );
            assert_eq!((m(k + 3).shift, m(k + 3).out), (base + 13, base + 14));
            let n = m(k + 4);
            assert_eq!((n.shift, n.eps, n.out), (base + 15, base + 16, base + 17));
        }
        assert_eq!(meta::output(NODES), 45);
        assert_eq!(GRAPH.conv_shifts, &[1, 4, 10, 16, 18, 23, 28, 34, 36, 41]);
    }

    /// The whole-tensor plans take what the hand-written executors took (commit 4dbb733): three
    /// maps and the squeeze-excitation's vectors; int8 also one 16-bit grid row.
    #[test]
    fn plans_match_the_hand_written_scratch() {
        use crate::graph::plan::{plan, Scheme};
        let r16 = |n: usize| n.div_ceil(16) * 16;
        for (ci, co, h) in [
            (32, 64, 6),
            (8, 16, 3),
            (16, 32, 1),
            (13, 22, 5),
            (1024, 2048, 24),
        ] {
            let c = V1Config::new(ci, co, h);
            let (n, s) = (c.tokens_in(), c.squeeze);
            let f = plan(NODES, c.dims(), Scheme::Float).unwrap();
            assert_eq!(f.len, 3 * n * co + 2 * (2 * co + s) + 2, "{ci} {co} {h}");
            let q = plan(NODES, c.dims(), Scheme::Int8).unwrap();
            let hand = 3 * r16(n * co) + 4 * (2 * co + s) + 16 + r16(2 * h * co);
            assert_eq!(q.len, hand, "{ci} {co} {h}");
        }
    }

    /// Streaming through the graph's row executor (three passes) takes no more RAM than the
    /// hand-written three-pass streamer it replaced (commit 4dbb733, formula below), with the
    /// same MACs except the squeeze-excitation FCs of block 1, which that count had twice.
    #[test]
    fn streaming_is_no_larger_than_the_hand_written_streamer() {
        use crate::graph::plan::Scheme;
        use crate::stream::{CHUNK, FULL_WIDTH};
        let r16 = |n: usize| n.div_ceil(16) * 16;
        for (ci, co, h) in [
            (16, 16, 1),
            (16, 32, 5),
            (8, 16, 6),
            (24, 48, 7),
            (1024, 2048, 24),
        ] {
            let cfg = V1Config::new(ci, co, h);
            let (c, s) = (co, cfg.squeeze);
            for (sizes, scheme) in [
                ((1, 1, 1), Scheme::Int8),
                ((4, 4, 4), Scheme::Float),
                ((4, 2, 4), Scheme::Float),
            ] {
                let (sx, sa, sy) = sizes;
                let hand = r16(CHUNK * ci * sx)
                    + r16(CHUNK * c * sa)
                    + 2 * r16(3 * h * c * sa)
                    + r16(CHUNK * c * sa)
                    + r16(CHUNK * c * sy)
                    + r16(4 * (3 * c + s))
                    + if sa == 1 { r16(CHUNK * c * 2) } else { 0 };
                let l = crate::graph::rows::layout(NODES, cfg.dims(), FULL_WIDTH, scheme).unwrap();
                let got = crate::graph::rows::scratch_bytes(&l, cfg.dims(), sizes);
                std::println!("{ci}->{co} {h}x{h} {sizes:?}: {got} (hand-written {hand})");
                assert!(got <= hand, "{ci}->{co} h{h} {sizes:?}: {got} > {hand}");
                let (n, n2) = (cfg.tokens_in(), cfg.tokens_out());
                let (mlp, dw1, pw1) = (n * ci * c + n * c * c, n * 9 * c, n * c * c);
                let (dw2, pw2) = (n2 * 9 * c, n2 * c * c);
                let fcs = 2 * (2 * s * c);
                assert_eq!(l.macs, 3 * mlp + 3 * dw1 + 2 * pw1 + 2 * dw2 + pw2 + fcs);
            }
        }
    }
}
