//! MobileVLM V1's projector (`LDPNetProjector`, docs/ARCHITECTURES.md §2): MLP, then two
//! inverted residual blocks (depthwise 3×3 → LN → Hardswish → squeeze-excitation → 1×1 → LN),
//! the first with stride 1 and a residual, the second with stride 2.

use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::kernels::activation::{apply_inplace, Activation};
use crate::kernels::depthwise::{depthwise3x3, out_dim, DwShape};
use crate::kernels::norm::layer_norm_inplace;
use crate::kernels::pointwise::pointwise;
use crate::kernels::se::{self, squeeze_excite, SeWeights};

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
    /// Scratch elements of the activation type: three maps `[N][c_out]`, plus room for the
    /// squeeze-excitation vectors as f32.
    pub const fn scratch_len(&self) -> usize {
        3 * self.tokens_in() * self.c_out + 2 * se::scratch_len(self.c_out, self.squeeze) + 2
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

/// Runs the projector on tokens `input` (`[N][c_in]`), writing `output` (`[N_out][c_out]`).
///
/// `scratch` must hold at least [`V1Config::scratch_len`] elements of `A`.
pub fn forward<X: Elem, W: Elem, A: Elem, Y: Elem>(
    cfg: &V1Config,
    wts: &V1Weights<'_, W>,
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
    let (c, n, s) = (cfg.c_out, cfg.tokens_in(), cfg.squeeze);
    let n2 = cfg.tokens_out();
    let (buf_a, rest) = scratch.split_at_mut(n * c);
    let (buf_b, rest) = rest.split_at_mut(n * c);
    let (buf_c, rest) = rest.split_at_mut(n * c);
    // SE temporaries are f32; take them from the tail as f32 values stored in f32-sized chunks.
    let mut se_tmp_storage = SeTmp::<A>::new(rest, se::scratch_len(c, s));

    // mlp: z = fc2(GELU(fc1(x)))
    pointwise(
        input,
        cfg.c_in,
        wts.fc1_w,
        Some(wts.fc1_b),
        c,
        Some(Activation::Gelu),
        buf_a,
    )?;
    pointwise(&*buf_a, c, wts.fc2_w, Some(wts.fc2_b), c, None, buf_b)?;

    // mb_block.1 (stride 1): z + LN(PW(SE(HS(LN(DW(z))))))
    let b = &wts.block1;
    let s1 = DwShape {
        h: cfg.h,
        w: cfg.h,
        c,
        stride: 1,
    };
    depthwise3x3::<A, W, A, A>(s1, &*buf_b, b.dw_w, None, None, buf_a)?;
    layer_norm_inplace(buf_a, c, b.ln1_w, b.ln1_b)?;
    apply_inplace(Activation::Hardswish, buf_a);
    squeeze_excite(buf_a, c, s, &b.se, se_tmp_storage.get()?)?;
    pointwise(&*buf_a, c, b.pw_w, None, c, None, buf_c)?;
    layer_norm_inplace(buf_c, c, b.ln2_w, b.ln2_b)?;
    for (z, v) in buf_b.iter_mut().zip(buf_c.iter()) {
        *z = A::from_f32(z.to_f32() + v.to_f32());
    }

    // mb_block.2 (stride 2): LN(PW(SE(HS(LN(DW_s2(z))))))
    let b = &wts.block2;
    let s2 = DwShape {
        h: cfg.h,
        w: cfg.h,
        c,
        stride: 2,
    };
    let d = &mut buf_a[..n2 * c];
    depthwise3x3::<A, W, A, A>(s2, &*buf_b, b.dw_w, None, None, d)?;
    layer_norm_inplace(d, c, b.ln1_w, b.ln1_b)?;
    apply_inplace(Activation::Hardswish, d);
    squeeze_excite(d, c, s, &b.se, se_tmp_storage.get()?)?;
    pointwise(&*d, c, b.pw_w, None, c, None, output)?;
    layer_norm_inplace(output, c, b.ln2_w, b.ln2_b)?;
    Ok(())
}

/// f32 temporaries carved out of an activation-typed scratch tail.
struct SeTmp<'a, A> {
    raw: &'a mut [A],
    len: usize,
}

impl<'a, A: Elem> SeTmp<'a, A> {
    fn new(raw: &'a mut [A], len: usize) -> Self {
        SeTmp { raw, len }
    }
    /// Reinterprets the tail as `len` f32s, skipping up to 3 bytes to align it. The tail has
    /// room for `2·len + 2` elements of `A` (≥ 2 bytes each), which always suffices.
    fn get(&mut self) -> Result<&mut [f32], Error> {
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(self.raw);
        let off = bytes.as_ptr().align_offset(4);
        let n = self.len * 4;
        bytes
            .get_mut(off..off + n)
            .and_then(|b| bytemuck::try_cast_slice_mut::<u8, f32>(b).ok())
            .ok_or(Error::Misaligned { what: "scratch" })
    }
}
