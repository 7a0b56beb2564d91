//! The owned f32 model: a configuration plus one `Vec<f32>` per tensor, in the blob's spec
//! order. It builds `ldp-core`'s weight views and runs the f32 reference forward pass, which is
//! what `eval` compares a blob against and what the quantizer calibrates on.

use anyhow::bail;
use ldp_core::arch::ldp::LdpConfig;
use ldp_core::arch::mobilevlm_v1::V1Config;
use ldp_core::arch::mobilevlm_v2::V2Config;
use ldp_core::blob::format::MAX_DIM;
use ldp_core::blob::specs::{resolve, TensorSpec};
use ldp_core::graph::GraphConfig;
use ldp_core::{Arch, ModelConfig};

use crate::import::{float_specs, Imported};

/// An f32 model of any architecture.
#[derive(Debug, Clone)]
pub struct FloatModel {
    config: ModelConfig,
    squeeze: usize,
    tensors: Vec<Vec<f32>>,
}

/// Builds the typed configuration for an architecture, channel counts and input grid.
///
/// MobileVLM grids are square (`h × h`, `N = h²` tokens); `w` must equal `h` for them.
pub fn config_for(
    arch: Arch,
    c_in: usize,
    c_out: usize,
    squeeze: usize,
    h: usize,
    w: usize,
) -> anyhow::Result<ModelConfig> {
    if h == 0 || w == 0 {
        bail!("the grid must be at least 1x1, got {h}x{w}");
    }
    let max = MAX_DIM as usize;
    if h > max || w > max || c_in > max || c_out > max {
        bail!("grid sides and channel counts must be at most {max}");
    }
    Ok(match arch {
        Arch::Ldp => ModelConfig::Ldp(LdpConfig { c_in, c_out, h, w }),
        Arch::MobileVlmV1 | Arch::MobileVlmV2 if h != w => bail!(
            "{} takes a square token grid (N = h*h tokens), got --grid {h}x{w}; use e.g. --grid {h}x{h}",
            arch.name()
        ),
        Arch::MobileVlmV1 => ModelConfig::MobileVlmV1(V1Config {
            c_in,
            c_out,
            h,
            squeeze,
        }),
        Arch::MobileVlmV2 => ModelConfig::MobileVlmV2(V2Config { c_in, c_out, h }),
        Arch::Mlp2xGelu => ModelConfig::Graph(GraphConfig {
            arch,
            c_in,
            c_out,
            h,
            w,
        }),
    })
}

/// The SE width of a configuration (0 when the architecture has none).
pub fn squeeze_of(config: &ModelConfig) -> usize {
    match config {
        ModelConfig::MobileVlmV1(c) => c.squeeze,
        _ => 0,
    }
}

/// A small deterministic generator (xorshift), for synthetic weights in tests and seeds.
struct Rng(u64);
impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

impl FloatModel {
    /// A model from its configuration and tensors (in `specs(arch, F32)` order, blob layouts).
    pub fn new(config: ModelConfig, tensors: Vec<Vec<f32>>) -> anyhow::Result<Self> {
        let squeeze = squeeze_of(&config);
        let specs = float_specs(config.arch());
        if tensors.len() != specs.len() {
            bail!(
                "{} needs {} tensors, got {}",
                config.arch().name(),
                specs.len(),
                tensors.len()
            );
        }
        let (c_in, c_out) = config.channels();
        for (spec, t) in specs.iter().zip(&tensors) {
            let n: usize = resolve(spec.dims, c_in as u32, c_out as u32, squeeze as u32)
                [..spec.dims.len()]
                .iter()
                .map(|&d| d as usize)
                .product();
            if t.len() != n {
                bail!(
                    "tensor `{}` has {} elements, the configuration needs {n}",
                    spec,
                    t.len()
                );
            }
        }
        Ok(FloatModel {
            config,
            squeeze,
            tensors,
        })
    }

    /// The model of imported weights on an `h × w` input grid.
    pub fn from_imported(imp: Imported, h: usize, w: usize) -> anyhow::Result<Self> {
        let config = config_for(imp.arch, imp.c_in, imp.c_out, imp.squeeze, h, w)?;
        Self::new(config, imp.tensors)
    }

    /// Deterministic pseudo-random weights (uniform, scaled by fan-in; LayerNorm weights near 1).
    pub fn synthetic(config: ModelConfig, seed: u64) -> Self {
        let squeeze = squeeze_of(&config);
        let (c_in, c_out) = config.channels();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let tensors = float_specs(config.arch())
            .iter()
            .map(|spec| {
                let d = resolve(spec.dims, c_in as u32, c_out as u32, squeeze as u32);
                let dims = &d[..spec.dims.len()];
                let n: usize = dims.iter().map(|&x| x as usize).product();
                let fan_in = if dims.len() == 2 { dims[1].max(1) } else { 1 } as f32;
                let is_norm_weight = spec.name.ends_with("weight") && dims.len() == 1;
                (0..n)
                    .map(|_| {
                        let r = rng.next_f32();
                        if is_norm_weight {
                            1.0 + 0.1 * r
                        } else if dims.len() == 1 {
                            0.1 * r
                        } else {
                            r / fan_in.sqrt()
                        }
                    })
                    .collect()
            })
            .collect();
        FloatModel {
            config,
            squeeze,
            tensors,
        }
    }

    /// The configuration.
    pub fn config(&self) -> ModelConfig {
        self.config
    }
    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.config.arch()
    }
    /// SE squeeze width (V1), else 0.
    pub fn squeeze(&self) -> usize {
        self.squeeze
    }
    /// The tensor list (`specs(arch, F32)`).
    pub fn specs(&self) -> &'static [TensorSpec] {
        float_specs(self.arch())
    }
    /// All tensors, in spec order.
    pub fn tensors(&self) -> &[Vec<f32>] {
        &self.tensors
    }
    /// Mutable tensors (same lengths must be kept; used by tests and the quantizer).
    pub fn tensors_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.tensors
    }
    /// A tensor by its spec name.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        let i = self.specs().iter().position(|s| s.is(name, ""))?;
        self.tensors.get(i).map(|v| v.as_slice())
    }

    /// Scratch elements (f32) of the reference forward pass.
    pub fn scratch_len(&self) -> usize {
        self.config.float_scratch_len()
    }

    /// The f32 reference forward pass on one channels-last input; `scratch` is resized as needed.
    pub fn forward_with(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut Vec<f32>,
    ) -> anyhow::Result<()> {
        let need = self.scratch_len();
        if scratch.len() < need {
            scratch.resize(need, 0.0);
        }
        let t = |k: usize| {
            self.tensors
                .get(k)
                .map(|v| v.as_slice())
                .ok_or(ldp_core::Error::Unsupported("model: tensor missing"))
        };
        let r = match self.config {
            ModelConfig::Ldp(cfg) => ldp_core::graph::float::forward_tensors(
                &ldp_core::graph::ldp::GRAPH,
                cfg.dims(),
                t,
                t,
                input,
                output,
                scratch,
            ),
            ModelConfig::MobileVlmV1(cfg) => ldp_core::graph::float::forward_tensors(
                &ldp_core::graph::mobilevlm_v1::GRAPH,
                cfg.dims(),
                t,
                t,
                input,
                output,
                scratch,
            ),
            ModelConfig::MobileVlmV2(cfg) => ldp_core::graph::float::forward_variant(
                ldp_core::graph::mobilevlm_v2::nodes_for(cfg.tokens_in()),
                cfg.dims(),
                t,
                t,
                input,
                output,
                scratch,
            ),
            ModelConfig::Graph(cfg) => match ldp_core::graph::definition(cfg.arch) {
                Some(g) => ldp_core::graph::float::forward_tensors(
                    g,
                    cfg.dims(),
                    t,
                    t,
                    input,
                    output,
                    scratch,
                ),
                None => Err(ldp_core::Error::Unsupported("not a graph")),
            },
        };
        r.map_err(|e| anyhow::anyhow!("f32 reference forward pass failed: {e}"))
    }

    /// The f32 reference forward pass on one channels-last input.
    pub fn forward(&self, input: &[f32]) -> anyhow::Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.config.output_len()];
        let mut scratch = Vec::new();
        self.forward_with(input, &mut out, &mut scratch)?;
        Ok(out)
    }
}
