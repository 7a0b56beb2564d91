//! The seed `ldp` block (docs/ARCHITECTURES.md §1): PW1 → GELU → DW1(+skip) → PW2 → LN1 →
//! GELU → DW2 (stride 2) + bilinear(skip) → PW3 → LN2.

use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::kernels::activation::{apply_inplace, Activation};
use crate::kernels::depthwise::{depthwise3x3, out_dim, DwShape};
use crate::kernels::norm::layer_norm_inplace;
use crate::kernels::pointwise::pointwise;
use crate::kernels::resize::bilinear;

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
        (2 * self.h * self.w + self.h2() * self.w2()) * self.c_out
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

/// Runs the block on channels-last `input` (`[h][w][c_in]`), writing `output` (`[h2][w2][c_out]`).
///
/// `scratch` must hold at least [`LdpConfig::scratch_len`] elements; its contents are overwritten.
/// Activations are stored as `A` (`f32`, or `f16` for the half-precision path); all arithmetic is f32.
pub fn forward<X: Elem, W: Elem, A: Elem, Y: Elem>(
    cfg: &LdpConfig,
    wts: &LdpWeights<'_, W>,
    input: &[X],
    output: &mut [Y],
    scratch: &mut [A],
) -> Result<(), Error> {
    cfg.validate()?;
    wts.validate(cfg)?;
    check_len("input", input, cfg.input_len())?;
    check_len("output", output, cfg.output_len())?;
    let need = cfg.scratch_len();
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    let (c, hw) = (cfg.c_out, cfg.h * cfg.w);
    let (h2, w2) = (cfg.h2(), cfg.w2());
    let (buf_a, rest) = scratch.split_at_mut(hw * c);
    let (buf_b, rest) = rest.split_at_mut(hw * c);
    let skip = &mut rest[..h2 * w2 * c];

    // 1–2: a = GELU(PW1(x))
    pointwise(
        input,
        cfg.c_in,
        wts.pw1_w,
        Some(wts.pw1_b),
        c,
        Some(Activation::Gelu),
        buf_a,
    )?;
    // Skip 2, computed early so that `a` can be overwritten: resize(x or a) to (h2, w2).
    if cfg.c_in == cfg.c_out {
        bilinear(input, cfg.h, cfg.w, c, skip, h2, w2)?;
    } else {
        bilinear(&*buf_a, cfg.h, cfg.w, c, skip, h2, w2)?;
    }
    // 3–4: b = DW1(a) + a
    let s1 = DwShape {
        h: cfg.h,
        w: cfg.w,
        c,
        stride: 1,
    };
    depthwise3x3(
        s1,
        &*buf_a,
        wts.dw1_w,
        Some(wts.dw1_b),
        Some(&*buf_a),
        buf_b,
    )?;
    // 5–7: c = GELU(LN1(PW2(b)))
    pointwise(&*buf_b, c, wts.pw2_w, Some(wts.pw2_b), c, None, buf_a)?;
    layer_norm_inplace(buf_a, c, wts.ln1_w, wts.ln1_b)?;
    apply_inplace(Activation::Gelu, buf_a);
    // 8–9: f = DW2(c) + resize(s)
    let s2 = DwShape {
        h: cfg.h,
        w: cfg.w,
        c,
        stride: 2,
    };
    let f = &mut buf_b[..h2 * w2 * c];
    depthwise3x3(s2, &*buf_a, wts.dw2_w, Some(wts.dw2_b), Some(&*skip), f)?;
    // 10–11: y = LN2(PW3(f))
    pointwise(&*f, c, wts.pw3_w, Some(wts.pw3_b), c, None, output)?;
    layer_norm_inplace(output, c, wts.ln2_w, wts.ln2_b)?;
    Ok(())
}
