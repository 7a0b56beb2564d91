//! Weight conversion per dtype: f32 (as is), f16 (round to nearest even) and int8 (to do).

use anyhow::bail;

use crate::calib::CalibSet;
use crate::graph::FloatModel;

/// Little-endian f32 bytes.
pub fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian f16 bytes (IEEE binary16, round to nearest even). A value that overflows f16
/// (|v| > 65504) is an error naming the tensor and index.
pub fn f16_bytes(name: &str, data: &[f32]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for (i, &v) in data.iter().enumerate() {
        let h = half::f16::from_f32(v);
        if v.is_finite() && !h.is_finite() {
            bail!("weight `{name}` [{i}] = {v} does not fit in f16 (max 65504); use --dtype f32");
        }
        out.extend_from_slice(&h.to_le_bytes());
    }
    Ok(out)
}

/// How int8 activation ranges are chosen from the calibration data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CalibMethod {
    /// The observed minimum and maximum.
    Minmax,
    /// A high percentile of the absolute values (clips outliers).
    Percentile,
    /// The clipping range that minimises the mean squared quantization error.
    #[default]
    Mse,
}

impl CalibMethod {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CalibMethod::Minmax => "minmax",
            CalibMethod::Percentile => "percentile",
            CalibMethod::Mse => "mse",
        }
    }
}

/// Whether the int8 quantizer refines the activation ranges against the model's output error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RangeSearch {
    /// Search when it is cheap enough (its time, projected from one timed candidate, at most
    /// `int8::SEARCH_BUDGET_S` = 20 s on this machine, `int8::SEARCH_BUDGET_HEAVY_S` = 90 s for
    /// heavy-tailed calibration inputs) and the calibration set can support it
    /// (at least 4 samples of at least 64 grid positions).
    #[default]
    Auto,
    /// Search whenever the calibration set can support it, however long it takes.
    On,
    /// Keep the per-tensor ranges of `--calib-method`.
    Off,
}

impl RangeSearch {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RangeSearch::Auto => "auto",
            RangeSearch::On => "on",
            RangeSearch::Off => "off",
        }
    }
}

/// The activation width of an int8 blob (weights are int8 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Activations {
    /// 16-bit activations for MobileVLM V2 when the calibration inputs are heavy-tailed (peak over
    /// RMS above 8: outlier channels, Student-t-like tails), else int8.
    #[default]
    Auto,
    /// int8 activations (TFLite's int8 scheme).
    Int8,
    /// 16-bit activations, int8 weights (TFLite's 16x8 mode; MobileVLM V2 and `mlp2x-gelu`).
    Int16,
}

impl Activations {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activations::Auto => "auto",
            Activations::Int8 => "int8",
            Activations::Int16 => "int16",
        }
    }
}

/// Options of the int8 quantizer.
#[derive(Debug, Clone, Default)]
pub struct Int8Options {
    /// Activation range selection.
    pub calib_method: CalibMethod,
    /// Input quantization granularity.
    pub input_quant: crate::int8::InputQuant,
    /// Output-error range search after the per-tensor choice.
    pub range_search: RangeSearch,
    /// Activation width.
    pub activations: Activations,
}

/// Quantizes `model` to an int8 blob (TFLite's scheme), calibrating activation ranges on
/// `calib`. Returns the complete blob bytes (use [`crate::write::assemble`]).
///
/// Not implemented yet: the lead implements it (issue 4).
pub fn int8(
    model: &FloatModel,
    calib: Option<&CalibSet>,
    opts: &Int8Options,
) -> anyhow::Result<Vec<u8>> {
    match calib {
        Some(c) => crate::int8::quantize(model, c, opts),
        None => bail!("int8 needs calibration inputs: pass --calib C.npy with a batch [B, ...] of typical inputs"),
    }
}
