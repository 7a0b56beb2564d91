//! The seed `ldp` block (docs/ARCHITECTURES.md §1): PW1 → GELU → DW1(+skip) → PW2 → LN1 →
//! GELU → DW2 (stride 2) + bilinear(skip) → PW3 → LN2.

use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::graph::float::{forward_nodes, node_tensors};
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
        match plan(crate::graph::ldp::NODES, self.dims(), Scheme::Float) {
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
    /// The graph's sizes.
    pub(crate) const fn dims(&self) -> Dims {
        Dims {
            c_in: self.c_in,
            c_out: self.c_out,
            h: self.h,
            w: self.w,
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
    let nodes = crate::graph::ldp::NODES;
    let tensors = |i| node_tensors(nodes, i, |k| wts.wt(k), |k| wts.ft(k));
    forward_nodes(nodes, cfg.dims(), tensors, input, output, scratch)
}
