//! MobileVLM V2's projector (`LDPNetV2Projector`, docs/ARCHITECTURES.md §3): MLP, adaptive
//! average pooling to 12×12, then a depthwise positional-encoding conv with a residual (PEG).
//!
//! On grids of more than 144 tokens the pool runs before the second Linear layer, which is the
//! same function (see [`V2Config::pool_first`]) at a quarter of that layer's MACs at 24×24.

use crate::elem::Elem;
use crate::error::{check_len, Error};

/// Side of the pooled grid (`TokenDownLayer((12, 12))`).
pub const POOL: usize = 12;

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
        let nodes = crate::graph::mobilevlm_v2::nodes_for(self.tokens_in());
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
    let nodes = crate::graph::mobilevlm_v2::nodes_for(cfg.tokens_in());
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
