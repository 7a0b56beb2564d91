//! Calibration data for int8 quantization: a batch of representative inputs.

use std::path::Path;

use anyhow::{bail, Context};
use ldp_core::ModelConfig;

use crate::layout::split_batch;
use crate::npy;

/// Representative inputs, each one channels-last f32 sample of the model's input.
#[derive(Debug, Clone)]
pub struct CalibSet {
    /// The configuration the samples were validated against.
    pub config: ModelConfig,
    /// Channels-last samples (`[h][w][c_in]`, or tokens `[N][c_in]`).
    pub samples: Vec<Vec<f32>>,
}

impl CalibSet {
    /// Validates a PyTorch-layout batch `[B, …per-sample input shape…]` and converts it.
    pub fn from_array(arr: &npy::Array<f32>, config: &ModelConfig) -> anyhow::Result<Self> {
        let samples = split_batch(arr, config, "calibration data", false)?;
        if samples.is_empty() {
            bail!("calibration data holds no samples (B = 0)");
        }
        for (i, s) in samples.iter().enumerate() {
            if let Some(j) = s.iter().position(|v| !v.is_finite()) {
                bail!("calibration sample {i} has a non-finite value at channels-last index {j}");
            }
        }
        Ok(CalibSet {
            config: *config,
            samples,
        })
    }

    /// Reads a calibration `.npy` of shape `[B, …per-sample input shape…]`.
    pub fn from_npy(path: &Path, config: &ModelConfig) -> anyhow::Result<Self> {
        let arr = npy::read_f32(path)?;
        Self::from_array(&arr, config).with_context(|| format!("`{}`", path.display()))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// `true` when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}
