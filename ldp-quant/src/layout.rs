//! PyTorch layouts at the file boundary ↔ ldp-core's channels-last samples.
//!
//! * `ldp`: one sample is NCHW `[C, H, W]`; a file holds `[C, H, W]` or `[B, C, H, W]`.
//!   Outputs are `[B, C_out, H2, W2]`.
//! * MobileVLM: one sample is tokens `[N, C]` (already channels-last); a file holds `[N, C]` or
//!   `[B, N, C]`. Outputs are `[B, N_out, C_out]`.

use anyhow::bail;
use ldp_core::tensor::{nchw_to_nhwc, nhwc_to_nchw};
use ldp_core::ModelConfig;

use crate::npy::{shape_str, Array};

/// PyTorch shape of one input sample.
pub fn input_sample_shape(cfg: &ModelConfig) -> Vec<usize> {
    let (c_in, _) = cfg.channels();
    let (h, w) = cfg.input_grid();
    match cfg {
        ModelConfig::Ldp(_) => vec![c_in, h, w],
        _ => vec![h * w, c_in],
    }
}

/// PyTorch shape of one output sample.
pub fn output_sample_shape(cfg: &ModelConfig) -> Vec<usize> {
    let (_, c_out) = cfg.channels();
    let (h2, w2) = cfg.output_grid();
    match cfg {
        ModelConfig::Ldp(_) => vec![c_out, h2, w2],
        _ => vec![h2 * w2, c_out],
    }
}

/// A human description of the expected input, e.g. `[1, 36, 32] (N = 6x6 = 36 tokens, C_in = 32)`.
pub fn describe_input(cfg: &ModelConfig) -> String {
    let s = input_sample_shape(cfg);
    let (h, w) = cfg.input_grid();
    let (c_in, _) = cfg.channels();
    match cfg {
        ModelConfig::Ldp(_) => format!(
            "[1, {}, {}, {}] or [{}, {}, {}] or [B, {}, {}, {}] (NCHW, C_in = {c_in}, grid {h}x{w})",
            s[0], s[1], s[2], s[0], s[1], s[2], s[0], s[1], s[2]
        ),
        _ => format!(
            "[1, {n}, {c_in}] or [{n}, {c_in}] or [B, {n}, {c_in}] (N = {h}x{w} = {n} tokens, C_in = {c_in})",
            n = s[0]
        ),
    }
}

/// Checks that a PyTorch-layout array is a batch of the model's input samples and returns the
/// batch size.
///
/// `allow_unbatched`: also accept a single sample without the batch axis.
pub fn check_batch(
    arr: &Array<f32>,
    cfg: &ModelConfig,
    what: &str,
    allow_unbatched: bool,
) -> anyhow::Result<usize> {
    let per = input_sample_shape(cfg);
    let (batch, sample_shape) = if allow_unbatched && arr.shape.len() == per.len() {
        (1usize, &arr.shape[..])
    } else if arr.shape.len() == per.len() + 1 {
        (arr.shape[0], &arr.shape[1..])
    } else {
        (0, &arr.shape[..])
    };
    if batch == 0 || sample_shape != per.as_slice() {
        let expected = if allow_unbatched {
            describe_input(cfg)
        } else {
            let mut s = vec!["B".to_string()];
            s.extend(per.iter().map(|d| d.to_string()));
            format!(
                "[{}] (a batch of samples of the model's input {})",
                s.join(", "),
                shape_str(&per)
            )
        };
        bail!("{what} has shape {}, expected {expected}", arr.shape_str());
    }
    Ok(batch)
}

/// One input sample, PyTorch layout → channels-last (`dst`, same length).
pub fn sample_to_nhwc(src: &[f32], cfg: &ModelConfig, dst: &mut [f32]) -> anyhow::Result<()> {
    let per = input_sample_shape(cfg);
    match cfg {
        ModelConfig::Ldp(_) => nchw_to_nhwc(src, dst, per[0], per[1], per[2])
            .map_err(|e| anyhow::anyhow!("internal: {e}")),
        _ => {
            if src.len() != dst.len() {
                bail!(
                    "internal: sample of {} values, expected {}",
                    src.len(),
                    dst.len()
                );
            }
            dst.copy_from_slice(src);
            Ok(())
        }
    }
}

/// One output sample, channels-last → PyTorch layout (`dst`, same length).
pub fn sample_to_torch(src: &[f32], cfg: &ModelConfig, dst: &mut [f32]) -> anyhow::Result<()> {
    let per = output_sample_shape(cfg);
    match cfg {
        ModelConfig::Ldp(_) => nhwc_to_nchw(src, dst, per[0], per[1], per[2])
            .map_err(|e| anyhow::anyhow!("internal: {e}")),
        _ => {
            if src.len() != dst.len() {
                bail!(
                    "internal: output of {} values, expected {}",
                    src.len(),
                    dst.len()
                );
            }
            dst.copy_from_slice(src);
            Ok(())
        }
    }
}

/// Splits a PyTorch-layout array into channels-last samples.
///
/// `allow_unbatched`: also accept a single sample without the batch axis.
pub fn split_batch(
    arr: &Array<f32>,
    cfg: &ModelConfig,
    what: &str,
    allow_unbatched: bool,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let batch = check_batch(arr, cfg, what, allow_unbatched)?;
    let n: usize = input_sample_shape(cfg).iter().product();
    let mut out = Vec::with_capacity(batch);
    for chunk in arr.data.chunks_exact(n) {
        let mut s = vec![0.0f32; n];
        sample_to_nhwc(chunk, cfg, &mut s)?;
        out.push(s);
    }
    Ok(out)
}

/// Joins channels-last outputs into one PyTorch-layout array `[B, …]`.
pub fn join_batch(outputs: &[Vec<f32>], cfg: &ModelConfig) -> anyhow::Result<Array<f32>> {
    let per = output_sample_shape(cfg);
    let n: usize = per.iter().product();
    let mut data = Vec::with_capacity(n * outputs.len());
    for o in outputs {
        match cfg {
            ModelConfig::Ldp(_) => {
                let mut s = vec![0.0f32; n];
                nhwc_to_nchw(o, &mut s, per[0], per[1], per[2])
                    .map_err(|e| anyhow::anyhow!("internal: {e}"))?;
                data.extend_from_slice(&s);
            }
            _ => {
                if o.len() != n {
                    bail!("internal: output has {} elements, expected {n}", o.len());
                }
                data.extend_from_slice(o);
            }
        }
    }
    let mut shape = vec![outputs.len()];
    shape.extend(per);
    Ok(Array { shape, data })
}
