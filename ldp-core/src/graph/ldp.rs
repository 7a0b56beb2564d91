//! The seed `ldp` block (docs/ARCHITECTURES.md §1) as a graph: PW1 → GELU → DW1 (+skip) → PW2 →
//! LN1 → GELU → DW2 (stride 2) + bilinear(skip) → PW3 → LN2. Node names are the PyTorch module
//! paths; value names (`a`, `r`, `d`, `b`, …) are the block's intermediates as the reference
//! math names them, and name the calibration points and `eval`'s per-layer report.
//!
//! This file is the architecture's definition: the node list ([`NODES`]), from which the blob
//! layout, the memory plans and the float and int8 whole-tensor executors follow, and the typed
//! API over it ([`LdpConfig`], [`LdpWeights`], [`forward`], also reachable as
//! [`crate::arch::ldp`]).

use super::{graph, Act, Ch, Graph, Node, Residual, Src};
use crate::blob::format::Arch;
use crate::blob::specs::Dim;

/// The nodes, in execution order (the skip resize runs early, so `a` can be overwritten).
pub const NODES: &[Node] = &[
    // a = GELU(pointwise1(x)); int8: table `gelu1.lut`, pre-table value `p`.
    Node::linear("pointwise1", Ch::In, Ch::Out, Act::Gelu)
        .value("a")
        .pre("p")
        .table("gelu1"),
    // r = bilinear(x if c_in == c_out else a) to the stride-2 grid.
    Node::resize("skip", Src::InputIfSameWidth("a")).value("r"),
    // b = depthwise1(a) + a
    Node::depthwise("depthwise1", 1, Some(Residual::after(Src::Value("a"), "b")))
        .value("d")
        .reads(Src::Value("a")),
    // q = pointwise2(b) (16-bit in int8: it feeds a LayerNorm)
    Node::linear("pointwise2", Ch::Out, Ch::Out, Act::None).value("q"),
    // c = GELU(norm1(q)); int8: table `gelu2.lut`, pre-table value `n`.
    Node::layer_norm("norm1", Act::Gelu)
        .value("c")
        .table("gelu2"),
    // f = depthwise2(c, stride 2) + r
    Node::depthwise("depthwise2", 2, Some(Residual::after(Src::Value("r"), "f"))).value("e"),
    // g = pointwise3(f) (16-bit in int8)
    Node::linear("pointwise3", Ch::Out, Ch::Out, Act::None).value("g"),
    // y = norm2(g)
    Node::layer_norm("norm2", Act::None).value("y"),
];

/// The graph (input quantized per channel when the header says so).
pub const GRAPH: Graph = graph!(Arch::Ldp, NODES, &[Dim::CinQ]);

// ---------------------------------------------------------------------------------------------
// The typed API: configuration, borrowed weights, forward pass.

use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::graph::float::forward_tensors;
use crate::graph::plan::{plan, Dims, Scheme};
use crate::kernels::depthwise::out_dim;

/// Shape of an `ldp` block: `LDP(in_channels=c_in, out_channels=c_out)` on an `h × w` grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LdpConfig {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input grid rows.
    pub h: usize,
    /// Input grid columns.
    pub w: usize,
}

impl LdpConfig {
    /// Output grid rows, `ceil(h/2)`.
    pub const fn h2(&self) -> usize {
        out_dim(self.h, 2)
    }
    /// Output grid columns, `ceil(w/2)`.
    pub const fn w2(&self) -> usize {
        out_dim(self.w, 2)
    }
    /// Elements of the input, `h·w·c_in`.
    pub const fn input_len(&self) -> usize {
        self.h * self.w * self.c_in
    }
    /// Elements of the output, `h2·w2·c_out`.
    pub const fn output_len(&self) -> usize {
        self.h2() * self.w2() * self.c_out
    }
    /// Elements of scratch (of the activation type) that [`forward`] needs:
    /// two full maps of `c_out` channels plus the downsampled skip.
    ///
    /// ```
    /// use ldp_core::arch::ldp::LdpConfig;
    /// const CFG: LdpConfig = LdpConfig { c_in: 128, c_out: 128, h: 64, w: 64 };
    /// static ARENA: [f32; CFG.scratch_len()] = [0.0; CFG.scratch_len()];
    /// assert_eq!(ARENA.len(), (2 * 64 * 64 + 32 * 32) * 128);
    /// ```
    pub const fn scratch_len(&self) -> usize {
        match plan(NODES, self.dims(), Scheme::Float) {
            Ok(p) => p.len,
            Err(_) => 0,
        }
    }
    /// Number of parameters (weights, biases and LayerNorm affine).
    pub const fn param_count(&self) -> usize {
        let c = self.c_out;
        (self.c_in * c + c) + 2 * (9 * c + c) + 2 * (c * c + c) + 4 * c
    }
    /// Multiply-accumulates of one forward pass (padded depthwise taps counted).
    pub const fn macs(&self) -> usize {
        let (hw, hw2, c) = (self.h * self.w, self.h2() * self.w2(), self.c_out);
        hw * self.c_in * c + hw * 9 * c + hw * c * c + hw2 * 9 * c + hw2 * c * c
    }
    /// Checks that the configuration is usable.
    pub const fn validate(&self) -> Result<(), Error> {
        if self.c_in == 0 || self.c_out == 0 {
            return Err(Error::InvalidConfig("ldp: channel counts must be > 0"));
        }
        if self.h == 0 || self.w == 0 {
            return Err(Error::InvalidConfig("ldp: grid must be at least 1×1"));
        }
        Ok(())
    }
}

/// Borrowed weights of an `ldp` block. Biases and LayerNorm parameters are always `f32`; the
/// convolution weights are `W` (`f32` or `f16`), in PyTorch's layouts:
/// pointwise `[O][I]`, depthwise `[C][9]`.
#[derive(Debug, Clone, Copy)]
pub struct LdpWeights<'a, W> {
    /// `pointwise1.weight`, `[c_out][c_in]`.
    pub pw1_w: &'a [W],
    /// `pointwise1.bias`, `[c_out]`.
    pub pw1_b: &'a [f32],
    /// `depthwise1.weight`, `[c_out][9]`.
    pub dw1_w: &'a [W],
    /// `depthwise1.bias`.
    pub dw1_b: &'a [f32],
    /// `pointwise2.weight`, `[c_out][c_out]`.
    pub pw2_w: &'a [W],
    /// `pointwise2.bias`.
    pub pw2_b: &'a [f32],
    /// `norm1.weight`.
    pub ln1_w: &'a [f32],
    /// `norm1.bias`.
    pub ln1_b: &'a [f32],
    /// `depthwise2.weight`, `[c_out][9]`.
    pub dw2_w: &'a [W],
    /// `depthwise2.bias`.
    pub dw2_b: &'a [f32],
    /// `pointwise3.weight`, `[c_out][c_out]`.
    pub pw3_w: &'a [W],
    /// `pointwise3.bias`.
    pub pw3_b: &'a [f32],
    /// `norm2.weight`.
    pub ln2_w: &'a [f32],
    /// `norm2.bias`.
    pub ln2_b: &'a [f32],
}

impl<W> LdpWeights<'_, W> {
    /// Checks every slice length against `cfg`.
    pub fn validate(&self, cfg: &LdpConfig) -> Result<(), Error> {
        let c = cfg.c_out;
        check_len("pointwise1.weight", self.pw1_w, c * cfg.c_in)?;
        for (n, s) in [
            ("pointwise2.weight", self.pw2_w),
            ("pointwise3.weight", self.pw3_w),
        ] {
            check_len(n, s, c * c)?;
        }
        for (n, s) in [
            ("depthwise1.weight", self.dw1_w),
            ("depthwise2.weight", self.dw2_w),
        ] {
            check_len(n, s, c * 9)?;
        }
        for (n, s) in [
            ("pointwise1.bias", self.pw1_b),
            ("depthwise1.bias", self.dw1_b),
            ("pointwise2.bias", self.pw2_b),
            ("norm1.weight", self.ln1_w),
            ("norm1.bias", self.ln1_b),
            ("depthwise2.bias", self.dw2_b),
            ("pointwise3.bias", self.pw3_b),
            ("norm2.weight", self.ln2_w),
            ("norm2.bias", self.ln2_b),
        ] {
            check_len(n, s, c)?;
        }
        Ok(())
    }
}

impl<'a, W> LdpWeights<'a, W> {
    /// The weight-typed tensor `k` of the blob's float tensor list
    /// ([`crate::graph::ldp::GRAPH`]`.float`).
    fn wt(&self, k: usize) -> Result<&'a [W], Error> {
        Ok(match k {
            0 => self.pw1_w,
            2 => self.dw1_w,
            4 => self.pw2_w,
            8 => self.dw2_w,
            10 => self.pw3_w,
            _ => return Err(Error::Unsupported("ldp: no such weight tensor")),
        })
    }
    /// The f32 tensor `k` of the float tensor list.
    fn ft(&self, k: usize) -> Result<&'a [f32], Error> {
        Ok(match k {
            1 => self.pw1_b,
            3 => self.dw1_b,
            5 => self.pw2_b,
            6 => self.ln1_w,
            7 => self.ln1_b,
            9 => self.dw2_b,
            11 => self.pw3_b,
            12 => self.ln2_w,
            13 => self.ln2_b,
            _ => return Err(Error::Unsupported("ldp: no such f32 tensor")),
        })
    }
}

impl LdpConfig {
    /// The sizes the graph runs at.
    pub const fn dims(&self) -> Dims {
        Dims {
            c_in: self.c_in,
            c_out: self.c_out,
            h: self.h,
            w: self.w,
            squeeze: 0,
        }
    }
}

/// Runs the block on channels-last `input` (`[h][w][c_in]`), writing `output` (`[h2][w2][c_out]`).
///
/// `scratch` must hold at least [`LdpConfig::scratch_len`] elements; its contents are overwritten.
/// Activations are stored as `A` (`f32`, or `f16` for the half-precision path); all arithmetic is
/// f32. The block is the graph [`crate::graph::ldp`], run by the float graph executor.
pub fn forward<W: Elem, A: Elem>(
    cfg: &LdpConfig,
    wts: &LdpWeights<'_, W>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    cfg.validate()?;
    wts.validate(cfg)?;
    check_len("input", input, cfg.input_len())?;
    check_len("output", output, cfg.output_len())?;
    forward_tensors(
        &GRAPH,
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
        // The `quant.meta` layout of `ldp` blobs (unchanged since before the graph).
        let m = |i| meta::node(NODES, i);
        assert_eq!(meta::total(NODES), 29);
        assert_eq!((m(0).shift, m(0).pre, m(0).out), (1, 2, 3));
        assert_eq!((m(1).shift, m(1).out), (4, 5));
        assert_eq!(
            (m(2).shift, m(2).out, m(2).add, m(2).result()),
            (6, 7, 8, 11)
        );
        assert_eq!((m(3).shift, m(3).out), (12, 13));
        assert_eq!((m(4).shift, m(4).eps, m(4).pre, m(4).out), (14, 15, 16, 17));
        assert_eq!(
            (m(5).shift, m(5).out, m(5).add, m(5).result()),
            (18, 19, 20, 23)
        );
        assert_eq!((m(6).shift, m(6).out), (24, 25));
        assert_eq!((m(7).shift, m(7).eps, m(7).out), (26, 27, 28));
        assert_eq!(meta::output(NODES), 28);
    }
}

#[cfg(test)]
mod plan_tests {
    use super::NODES;
    use crate::arch::ldp::LdpConfig;
    use crate::graph::plan::{plan, Dims, Scheme};

    const fn r16(n: usize) -> usize {
        n.div_ceil(16) * 16
    }

    /// The hand-written whole-tensor layouts this plan replaced (commit 2868883): float
    /// `(2·H·W + H2·W2)·C` elements; int8 a shared region of `max(2·H·W·C, H2·W2·C + 2·H2·W2·C)`
    /// bytes, then `b` and the skip.
    fn old_whole(cfg: &LdpConfig) -> (usize, usize) {
        let (hw, hw2, c) = (cfg.h * cfg.w, cfg.h2() * cfg.w2(), cfg.c_out);
        let mid = r16(2 * hw * c).max(r16(hw2 * c) + r16(2 * hw2 * c));
        ((2 * hw + hw2) * c, mid + r16(hw * c) + r16(hw2 * c))
    }

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
            let d = Dims {
                c_in,
                c_out,
                h,
                w,
                squeeze: 0,
            };
            let cfg = LdpConfig { c_in, c_out, h, w };
            let f = plan(NODES, d, Scheme::Float).unwrap();
            let q = plan(NODES, d, Scheme::Int8).unwrap();
            let (old_f, old_i8) = old_whole(&cfg);
            // Measured: equal on every shape.
            assert_eq!((f.len, q.len), (old_f, old_i8), "{c_in}->{c_out} {h}x{w}");
            assert_eq!(cfg.scratch_len(), f.len);
            assert_eq!(
                crate::quant::scratch_bytes_i8(&crate::ModelConfig::Ldp(cfg)),
                q.len
            );
        }
    }
}

#[cfg(test)]
mod stream_tests {
    extern crate std;
    use super::{LdpConfig, NODES};
    use crate::graph::plan::{Dims, Scheme};
    use crate::graph::rows::{layout, scratch_bytes};

    const fn r16(n: usize) -> usize {
        n.div_ceil(16) * 16
    }

    /// The hand-written streaming layout this replaced (commit 2868883), and its MACs: per strip
    /// `x`/`a` columns `[c0 − 1, c1 + 1)`, `c` columns `[2·ox0 − 1, 2·ox1)`; rings of 2 (or 1)
    /// `x`, 3 `a`, 3 `c`, 2 `r` rows; `b`, `f`, `y` chunks and a 16-bit chunk for int8.
    fn old_stream(cfg: &LdpConfig, strip: usize, sizes: (usize, usize, usize)) -> (usize, usize) {
        let (sx, sa, sy) = sizes;
        let (w, w2, ci, c) = (cfg.w, cfg.w2(), cfg.c_in, cfg.c_out);
        let n = if strip >= w2 { 1 } else { w2.div_ceil(strip) };
        let (mut wa, mut wc, mut wo, mut sum_a, mut sum_c) = (0, 0, 0, 0, 0);
        for k in 0..n {
            let (ox0, ox1) = (k * w2 / n, (k + 1) * w2 / n);
            let c0 = (2 * ox0).saturating_sub(1);
            let c1 = (2 * ox1).min(w);
            let a0 = c0.saturating_sub(1);
            let a1 = (c1 + 1).min(w);
            wa = wa.max(a1 - a0);
            wc = wc.max(c1 - c0);
            wo = wo.max(ox1 - ox0);
            sum_a += a1 - a0;
            sum_c += c1 - c0;
        }
        let dx = if ci == c { 2 } else { 1 };
        let chunk = crate::stream::CHUNK;
        let bytes = r16(dx * wa * ci * sx)
            + r16(3 * wa * c * sa)
            + r16(3 * wc * c * sa)
            + r16(2 * wo * c * sa)
            + 2 * r16(chunk * c * sa)
            + r16(chunk * c * sy)
            + if sa == 1 { r16(chunk * c * 2) } else { 0 };
        let macs = cfg.macs() + cfg.h * ((sum_a - w) * ci * c + (sum_c - w) * (9 * c + c * c));
        (bytes, macs)
    }

    #[test]
    fn stream_layouts_are_no_larger_than_the_hand_written_one() {
        for (c_in, c_out, h, w) in [
            (128, 128, 64, 64),
            (16, 16, 16, 16),
            (12, 12, 1, 1),
            (6, 10, 5, 3),
            (8, 24, 7, 9),
            (16, 24, 11, 13),
            (8, 8, 2, 2),
            (8, 8, 3, 3),
            (8, 4, 9, 4),
        ] {
            let d = Dims {
                c_in,
                c_out,
                h,
                w,
                squeeze: 0,
            };
            let cfg = LdpConfig { c_in, c_out, h, w };
            for strip in [1, 2, 3, 5, 16, usize::MAX] {
                for (sizes, scheme) in [
                    ((1, 1, 1), Scheme::Int8),
                    ((4, 4, 4), Scheme::Float),
                    ((4, 2, 4), Scheme::Float),
                ] {
                    let l = layout(NODES, d, strip, scheme).unwrap();
                    let new = scratch_bytes(&l, d, sizes);
                    let (old, old_macs) = old_stream(&cfg, strip, sizes);
                    let what = std::format!("{c_in}->{c_out} {h}x{w} strip {strip} {sizes:?}");
                    assert!(new < old, "{what}: {new} against {old}");
                    assert_eq!(l.macs, old_macs, "{what}");
                    assert_eq!(crate::stream::ldp_scratch_bytes(&cfg, strip, sizes), new);
                }
            }
        }
    }
}
