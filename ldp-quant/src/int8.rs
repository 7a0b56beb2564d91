//! The int8 quantizer: calibration of activation ranges on the f32 model, run layer by layer,
//! and conversion of every layer to the integer parameters `ldp_core::quant` executes
//! (TFLite's scheme; see that module for the arithmetic).
//!
//! The f32 graphs here ([`intermediates`]) mirror `ldp_core::quant::graph` step for step and name
//! every activation the int8 graph quantizes, so the calibration ranges, the per-layer
//! evaluation and the runtime agree on what each tensor is.

use std::collections::HashMap;

use anyhow::{bail, Context};
use ldp_core::blob::specs::{specs_flags, FLAG_ACT16, FLAG_INPUT16, FLAG_PER_CHANNEL_INPUT};
use ldp_core::graph::Act;
use ldp_core::kernels::activation::gelu;
use ldp_core::kernels::depthwise::{depthwise3x3, DwShape};
use ldp_core::kernels::norm::{layer_norm_inplace, LN_EPS};
use ldp_core::kernels::pointwise::pointwise;
use ldp_core::quant::specs::conv_shift_word;
use ldp_core::{DType, ModelConfig};

mod graph;

use crate::calib::CalibSet;
use crate::graph::FloatModel;
use crate::quantize::{Activations, CalibMethod, Int8Options, RangeSearch};

/// How the model input is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputQuant {
    /// Chosen from the calibration data (the default): `int16` for `ldp` and MobileVLM V1 when
    /// the calibration inputs are heavy-tailed (peak/RMS above [`HEAVY_CREST`]), else
    /// `per-tensor`; `int16` always for graph architectures (`mlp2x-gelu`), whose input feeds
    /// one Linear only. (V2 and the graphs with heavy-tailed inputs get 16-bit activations
    /// throughout instead.)
    #[default]
    Auto,
    /// One scale and zero point for the whole input (plain TFLite). On the golden set it
    /// measures as well as per-channel on normal inputs and keeps blobs smaller.
    PerTensor,
    /// One scale and zero point per input channel, folded into the first layer's weights
    /// (for inputs with outlier channels; costs 5 bytes per input channel, plus 2 per skip
    /// channel for `ldp` with `c_in == c_out`).
    PerChannel,
    /// 16 bits per value, one scale, zero point 0 (`ldp`, MobileVLM V1, graphs): the first
    /// pointwise conv (and the `ldp` skip resize) reads the 16-bit input, the rest of the graph
    /// is int8. Costs one more byte per input value of RAM; the blob is the same size. For
    /// heavy-tailed inputs, where an int8 input either clips the next input's extremes or
    /// loses the ordinary channels in its steps.
    Int16,
}

impl InputQuant {
    /// The CLI spelling.
    pub fn name(self) -> &'static str {
        match self {
            InputQuant::Auto => "auto",
            InputQuant::PerTensor => "per-tensor",
            InputQuant::PerChannel => "per-channel",
            InputQuant::Int16 => "int16",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The instrumented f32 graphs.

/// Every named activation of one forward pass, channels-last, in graph order.
pub type Acts = Vec<(&'static str, Vec<f32>)>;

fn ck<T>(r: Result<T, ldp_core::Error>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("f32 reference graph: {e}"))
}

fn pw(x: &[f32], ci: usize, w: &[f32], b: Option<&[f32]>, co: usize) -> anyhow::Result<Vec<f32>> {
    let mut y = vec![0.0; x.len() / ci * co];
    ck(pointwise(x, ci, w, b, co, None, &mut y))?;
    Ok(y)
}

fn dw(s: DwShape, x: &[f32], w: &[f32], b: Option<&[f32]>) -> anyhow::Result<Vec<f32>> {
    let mut y = vec![0.0; s.ho() * s.wo() * s.c];
    ck(depthwise3x3::<f32, f32, f32, f32>(s, x, w, b, None, &mut y))?;
    Ok(y)
}

fn map(x: &[f32], f: impl Fn(f32) -> f32) -> Vec<f32> {
    x.iter().map(|&v| f(v)).collect()
}

fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn ln(x: &[f32], c: usize, g: &[f32], b: &[f32]) -> anyhow::Result<Vec<f32>> {
    let mut y = x.to_vec();
    ck(layer_norm_inplace(&mut y, c, g, b))?;
    Ok(y)
}

/// The f32 forward pass of `m` on one channels-last input, returning every activation that the
/// int8 graph quantizes, by name. The last entry is the output.
pub fn intermediates(m: &FloatModel, x: &[f32]) -> anyhow::Result<Acts> {
    let mut acts: Acts = vec![("x", x.to_vec())];
    let (nodes, d) = graph::dag(m.config()).context("internal: not a graph")?;
    graph::intermediates(m, nodes, d, x, &mut acts)?;
    Ok(acts)
}

/// A short description of an int8 blob's activation scheme, for reports:
/// `act16` or `act8`, and `input=per-channel|per-tensor`.
pub fn describe_blob(m: &ldp_core::Model<'_>) -> String {
    let f = m.header().flags;
    format!(
        "{},input={}",
        if f & FLAG_ACT16 != 0 { "act16" } else { "act8" },
        if f & FLAG_PER_CHANNEL_INPUT != 0 {
            "per-channel"
        } else if f & FLAG_INPUT16 != 0 {
            "int16"
        } else {
            "per-tensor"
        }
    )
}

// ---------------------------------------------------------------------------------------------
// Calibration: ranges of every activation.

/// Values kept per activation for percentile and MSE range selection.
const KEEP: usize = 1 << 18;

#[derive(Debug, Clone, Default)]
struct Obs {
    min: f32,
    max: f32,
    seen: usize,
    sample: Vec<f32>,
    /// Per channel (only for the input): min, max and kept values.
    per_ch: Vec<(f32, f32, Vec<f32>)>,
}

impl Obs {
    fn observe(&mut self, v: &[f32], channels: Option<usize>) {
        if self.seen == 0 {
            self.min = f32::INFINITY;
            self.max = f32::NEG_INFINITY;
        }
        for &x in v {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        // Deterministic subsampling keeps at most KEEP values over all samples. The values are
        // picked by a hash of their index, not by a fixed stride: a stride that shares a factor
        // with the channel count (4 on a 128-channel map) keeps whole channels and drops the
        // others, so a range chosen from it ignores the channels it never saw.
        self.sample.extend(thin(v, KEEP / 8, self.seen as u64 + 1));
        if self.sample.len() > KEEP {
            self.sample = thin(&self.sample, KEEP / 2, 0x5eed);
        }
        self.seen += 1;
        if let Some(c) = channels {
            if self.per_ch.is_empty() {
                self.per_ch = vec![(f32::INFINITY, f32::NEG_INFINITY, Vec::new()); c];
            }
            for px in v.chunks_exact(c) {
                for (ch, &x) in px.iter().enumerate() {
                    let e = &mut self.per_ch[ch];
                    e.0 = e.0.min(x);
                    e.1 = e.1.max(x);
                    if e.2.len() < KEEP / 16 {
                        e.2.push(x);
                    }
                }
            }
        }
    }
}

/// About `keep` of the values of `v` (all of them when `v` is not longer), chosen by a hash of
/// their index and `salt`: unlike a stride, the choice does not alias with the channel count.
fn thin(v: &[f32], keep: usize, salt: u64) -> Vec<f32> {
    if v.len() <= keep {
        return v.to_vec();
    }
    let threshold = ((keep as u128) << 64) / v.len() as u128;
    v.iter()
        .enumerate()
        .filter(|(i, _)| {
            let mut z = (*i as u64)
                .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 31;
            z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 29;
            (z as u128) < threshold
        })
        .map(|(_, &x)| x)
        .collect()
}

/// An activation's quantization: `real = scale · (q − zero)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QP {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero: i32,
}

fn qp_of(lo: f32, hi: f32) -> QP {
    let lo = lo.min(0.0) as f64;
    let hi = hi.max(0.0) as f64;
    let span = (hi - lo).max(1e-8);
    let scale = span / 255.0;
    let zero = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QP {
        scale: scale as f32,
        zero,
    }
}

fn quant_mse(v: &[f32], q: QP) -> f64 {
    quant_mse_through(v, q, None)
}

/// The squared error of quantizing `v` with `q`, measured after `table` when the tensor only
/// feeds a table (`table(dequantized) − table(v)`): the error that reaches the next layer.
fn quant_mse_through(v: &[f32], q: QP, table: Option<Table>) -> f64 {
    let s = q.scale as f64;
    v.iter()
        .map(|&x| {
            let qq = ((x as f64 / s).round() + q.zero as f64).clamp(-128.0, 127.0);
            let y = (qq - q.zero as f64) * s;
            let d = match table {
                None => y - x as f64,
                Some(f) => f(y) - f(x as f64),
            };
            d * d
        })
        .sum::<f64>()
}

/// Below this many observed values, the extremes of the calibration set underestimate the
/// range of unseen inputs; each side of the range is widened to the mean ± 4 times that side's
/// own spread ([`side_spreads`]).
const FEW: usize = 2048;

/// The root-mean-square deviation from `mean` of the values below it and of the values above
/// it, each over its own count (a one-sided spread). For a symmetric distribution both equal
/// the standard deviation; for a one-sided one (GELU and hardswish outputs: bounded below near
/// zero, a long upper tail) the lower is small and the upper larger than the standard deviation.
fn side_spreads(sample: &[f32], mean: f64) -> (f64, f64) {
    let (mut lo, mut n_lo, mut hi, mut n_hi) = (0f64, 0usize, 0f64, 0usize);
    for &v in sample {
        let d = v as f64 - mean;
        if d < 0.0 {
            lo += d * d;
            n_lo += 1;
        } else if d > 0.0 {
            hi += d * d;
            n_hi += 1;
        }
    }
    (
        (lo / n_lo.max(1) as f64).sqrt(),
        (hi / n_hi.max(1) as f64).sqrt(),
    )
}

/// Whether a tensor's calibration sample is small enough for [`FEW`]'s widening (every value
/// is kept below [`KEEP`], so the sample length is the number of observed values).
fn few(sample: &[f32]) -> bool {
    !sample.is_empty() && sample.len() < FEW
}

fn choose(min: f32, max: f32, sample: &[f32], method: CalibMethod, table: Option<Table>) -> QP {
    let q = choose_clipped(min, max, sample, method, table);
    if !few(sample) {
        return q;
    }
    // Issue 16: one spread per side. The symmetric mean ± 4σ it replaces widened the bounded
    // side of a one-sided activation (coarser steps for nothing) and too little of its long
    // side (the next input's extremes clipped): on the sweep's small-grid tuning cases, 32
    // fresh inputs each, the error fell by 14% (geometric mean), e.g. V1 3×3 0.064 → 0.049.
    let mean = sample.iter().map(|&v| v as f64).sum::<f64>() / sample.len() as f64;
    let (sd_lo, sd_hi) = side_spreads(sample, mean);
    let lo = (q.scale as f64 * (-128 - q.zero) as f64).min(mean - 4.0 * sd_lo);
    let hi = (q.scale as f64 * (127 - q.zero) as f64).max(mean + 4.0 * sd_hi);
    qp_of(lo as f32, hi as f32)
}

fn choose_clipped(
    min: f32,
    max: f32,
    sample: &[f32],
    method: CalibMethod,
    table: Option<Table>,
) -> QP {
    match method {
        CalibMethod::Minmax => qp_of(min, max),
        CalibMethod::Percentile => {
            let mut s = sample.to_vec();
            s.sort_by(|a, b| a.total_cmp(b));
            if s.is_empty() {
                return qp_of(min, max);
            }
            let at = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
            qp_of(at(0.0001), at(0.9999))
        }
        CalibMethod::Mse => {
            let mut best = (f64::INFINITY, qp_of(min, max));
            let sub = thin(sample, 20000, 0x6d5e);
            for i in 0..=40 {
                let f = 1.0 - i as f32 * 0.0225; // 1.0 .. 0.1
                for j in 0..=8 {
                    // Shift the window toward the heavier side as well as shrinking it.
                    let g = 1.0 - j as f32 * 0.1;
                    for (lo, hi) in [
                        (min * f, max * f * g.max(0.2)),
                        (min * f * g.max(0.2), max * f),
                    ] {
                        let q = qp_of(lo, hi);
                        let e = quant_mse_through(&sub, q, table);
                        if e < best.0 {
                            best = (e, q);
                        }
                    }
                }
            }
            best.1
        }
    }
}

/// The smallest scale of a 16-bit LayerNorm input: `eps/s²·256` (the stored epsilon) must stay
/// within its `2^24` clamp, `s ≥ sqrt(1e-5·256/2^24) ≈ 1.24e-5`.
const MIN_SCALE16: f64 = 1.25e-5;

/// Whether activation `n` is a conv output kept at 16 bits (it only feeds a LayerNorm;
/// [`graph::wide`]).
pub(crate) fn is_wide(cfg: ModelConfig, n: &str) -> bool {
    graph::dag(cfg).is_some_and(|(nodes, _)| graph::wide(nodes, n))
}

/// The resize outputs that take their source's quantization ([`graph::tied_resizes`]).
fn tied(m: &FloatModel, r: &Ranges, opts: &Int8Options) -> Vec<&'static str> {
    let c_in = m.config().channels().0;
    let per_ch = opts.input_quant == InputQuant::PerChannel && c_in > 1;
    let x16 = opts.input_quant == InputQuant::Int16;
    match graph::dag(m.config()) {
        Some((nodes, d)) => graph::tied_resizes(nodes, d, r, per_ch, x16),
        None => Vec::new(),
    }
}

/// Collected ranges of every named activation.
pub struct Ranges {
    obs: HashMap<&'static str, Obs>,
    method: CalibMethod,
    /// Ranges replaced by the output-error search ([`refine`]).
    overrides: HashMap<&'static str, QP>,
    /// The per-tensor choice of `method`, computed once.
    chosen: HashMap<&'static str, QP>,
    /// Bias correction: per output channel, the mean int8 error of a conv's output (real
    /// units), subtracted from its bias ([`correct_biases`]).
    bias_fix: HashMap<&'static str, Vec<f64>>,
}

impl Ranges {
    pub(crate) fn qp(&self, name: &str) -> anyhow::Result<QP> {
        if let Some(q) = self.overrides.get(name).or_else(|| self.chosen.get(name)) {
            return Ok(*q);
        }
        let o = self
            .obs
            .get(name)
            .with_context(|| format!("internal: no range for `{name}`"))?;
        Ok(choose(o.min, o.max, &o.sample, self.method, None))
    }
    /// The 16-bit quantization of a conv output that only feeds a LayerNorm
    /// (`ldp_core::quant::kernels::ConvOut`): zero point 0, twice the calibrated absolute
    /// maximum at 32767 (headroom for unseen inputs; 14 bits over the calibrated range), and a
    /// scale of at least [`MIN_SCALE16`] so that LayerNorm's epsilon stays representable.
    pub(crate) fn qp16(&self, name: &str) -> anyhow::Result<QP> {
        let o = self
            .obs
            .get(name)
            .with_context(|| format!("internal: no range for `{name}`"))?;
        let amax = o.min.abs().max(o.max.abs()) as f64;
        Ok(QP {
            scale: (2.0 * amax / 32767.0).max(MIN_SCALE16) as f32,
            zero: 0,
        })
    }
    /// The quantization of a 16-bit model input saturated at `limit`: zero point 0,
    /// [`INPUT16_HEADROOM`] times the calibrated absolute maximum at `limit`.
    pub(crate) fn qp_input16(&self, name: &str, limit: i32) -> anyhow::Result<QP> {
        let o = self
            .obs
            .get(name)
            .with_context(|| format!("internal: no range for `{name}`"))?;
        let amax = o.min.abs().max(o.max.abs()) as f64;
        Ok(QP {
            scale: (INPUT16_HEADROOM * amax / limit.max(1) as f64).max(1e-30) as f32,
            zero: 0,
        })
    }
    pub(crate) fn qp_per_channel(&self, name: &str) -> anyhow::Result<Vec<QP>> {
        let o = self
            .obs
            .get(name)
            .with_context(|| format!("internal: no range for `{name}`"))?;
        Ok(o.per_ch
            .iter()
            .map(|(lo, hi, s)| choose(*lo, *hi, s, self.method, None))
            .collect())
    }
}

/// A table's function (real input to real output).
type Table = fn(f64) -> f64;

/// The activations whose only consumer is a table, with the table's function: their range is
/// chosen by the error after the table ([`quant_mse_through`]).
fn table_inputs(cfg: ModelConfig) -> Vec<(&'static str, Table)> {
    match cfg {
        ModelConfig::Graph(c) => c
            .nodes()
            .iter()
            .filter(|nd| nd.act() == Act::Gelu)
            .map(|nd| (graph::pre_of(nd), gelu64 as Table))
            .collect(),
        _ => Vec::new(),
    }
}

/// Runs the f32 model over the calibration inputs and records the range of every activation.
pub fn calibrate(m: &FloatModel, calib: &CalibSet, method: CalibMethod) -> anyhow::Result<Ranges> {
    let c_in = m.config().channels().0;
    let mut obs: HashMap<&'static str, Obs> = HashMap::new();
    let bar = crate::cli::progress(calib.len(), "calibrating");
    for s in &calib.samples {
        let acts = intermediates(m, s)?;
        for (name, v) in acts {
            let ch = if name == "x" { Some(c_in) } else { None };
            obs.entry(name).or_default().observe(&v, ch);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let tables = table_inputs(m.config());
    let chosen = obs
        .iter()
        .map(|(n, o)| {
            let table = tables.iter().find(|(t, _)| t == n).map(|(_, f)| *f);
            (*n, choose(o.min, o.max, &o.sample, method, table))
        })
        .collect();
    let r = Ranges {
        obs,
        method,
        overrides: HashMap::new(),
        chosen,
        bias_fix: HashMap::new(),
    };
    if std::env::var_os("LDP_QUANT_DEBUG").is_some() {
        let mut names: Vec<_> = r.obs.keys().copied().collect();
        names.sort();
        for n in names {
            let o = &r.obs[n];
            let q = r.qp(n)?;
            let num = quant_mse(&o.sample, q);
            let den: f64 = o.sample.iter().map(|&v| (v as f64) * (v as f64)).sum();
            eprintln!(
                "calib {n:>8}: min {:>9.4} max {:>9.4} -> [{:>9.4}, {:>9.4}] step {:.4} q-only rel {:.4}",
                o.min,
                o.max,
                q.scale * (-128 - q.zero) as f32,
                q.scale * (127 - q.zero) as f32,
                q.scale,
                (num / den.max(1e-30)).sqrt()
            );
        }
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Layer conversion.

/// int8 conv parameters: weights and multipliers in blob form, biases as exact `i32`
/// accumulator values (the blob stores them as `i16` with a bias shift, [`encode_bias`]).
struct ConvOut {
    weight: Vec<i8>,
    bias: Vec<i32>,
    mult: Vec<u8>,
    shift: i32,
    /// The largest real requantization multiplier (checked against [`MAX_MULT`]).
    max_mult: f64,
}

/// The largest multiplier a `u8` mantissa with a shift ≥ 1 holds: `255 / 2`. A layer whose
/// output scale is more than that many times finer than its accumulator scale cannot be
/// encoded, so the quantizer reports it.
const MAX_MULT: f64 = 255.0 / 2.0;

/// `(b16, bias_shift)`: the smallest shift `s ≤ 15` with every `round(b / 2^s)` (half up) in
/// `i16`, and those values. `None` when even 15 does not suffice (`|b| ≥ 2^30`).
fn encode_bias(b: &[i32]) -> Option<(Vec<i16>, u32)> {
    let max = b.iter().map(|&v| (v as i64).abs()).max().unwrap_or(0);
    let s = (0..=ldp_core::quant::kernels::MAX_BIAS_SHIFT)
        .find(|&s| (max + (1i64 << s >> 1)) >> s <= i16::MAX as i64)?;
    let r = |v: i32| ((v as i64 + (1i64 << s >> 1)) >> s) as i16;
    Some((b.iter().map(|&v| r(v)).collect(), s))
}

fn max_of(m: &[f64]) -> f64 {
    m.iter().cloned().fold(0.0f64, f64::max)
}

/// Encodes per-channel real multipliers as `i16` mantissas with one shift.
fn mults16(m: &[f64]) -> (Vec<i16>, i32) {
    let max = m.iter().cloned().fold(0.0f64, f64::max);
    if max <= 0.0 {
        return (vec![0; m.len()], 31);
    }
    let shift = ((32767.0 / max).log2().floor() as i32).clamp(1, 62);
    let k = (2f64).powi(shift);
    (
        m.iter()
            .map(|&v| (v * k).round().clamp(0.0, 32767.0) as i16)
            .collect(),
        shift,
    )
}

/// Quantizes a conv. `w` is `[o][k]`; `in_scale[k % n_in]`-style: for pointwise, the scale of input
/// channel `k` (`in_scales.len() == k` or 1); for depthwise (`depthwise = true`) one input scale.
/// `in_zero` (per input channel, or 1) is folded into the bias for pointwise convs.
#[allow(clippy::too_many_arguments)]
fn conv(
    w: &[f32],
    bias: Option<&[f32]>,
    o: usize,
    k: usize,
    in_scale: &[f32],
    in_zero: &[i32],
    out_scale: f32,
    depthwise: bool,
) -> ConvOut {
    let sc = |i: usize| -> f64 {
        if depthwise || in_scale.len() == 1 {
            in_scale[0] as f64
        } else {
            in_scale[i] as f64
        }
    };
    let zc = |i: usize| -> i32 {
        if in_zero.len() == 1 {
            in_zero[0]
        } else {
            in_zero[i]
        }
    };
    let mut weight = vec![0i8; o * k];
    let mut bq = vec![0i32; o];
    // Effective weights with the input scale folded in (per input channel for pointwise).
    let rows: Vec<Vec<f64>> = (0..o)
        .map(|oo| {
            (0..k)
                .map(|i| w[oo * k + i] as f64 * if depthwise { 1.0 } else { sc(i) })
                .collect()
        })
        .collect();
    let amax: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().fold(0.0f64, |a, v| a.max(v.abs())))
        .collect();
    // Real multiplier of each channel with the ideal weight scale amax/127: accumulator scale
    // (sw for pointwise, whose input scale is folded in; s_in·sw for depthwise) / output scale.
    let in_acc = if depthwise { sc(0) } else { 1.0 };
    let ideal: Vec<f64> = amax
        .iter()
        .map(|&a| in_acc * a / 127.0 / out_scale as f64)
        .collect();
    let max_m = max_of(&ideal);
    let shift = if max_m > 0.0 {
        ((255.0 / max_m).log2().floor() as i32).clamp(1, 62)
    } else {
        31
    };
    let k2 = (2f64).powi(shift);
    // Each channel's u8 mantissa rounds its multiplier *up*, and the weight scale follows from
    // it: the requantization is then exact, and the weights lose at most 1/mantissa of their
    // range (a zero channel takes the largest mantissa; its weights are 0 whatever the scale).
    let mult: Vec<u8> = ideal
        .iter()
        .map(|&v| {
            if v > 0.0 {
                (v * k2 * (1.0 - 1e-12)).ceil().clamp(1.0, 255.0) as u8
            } else {
                255
            }
        })
        .collect();
    for oo in 0..o {
        let acc_scale = mult[oo] as f64 / k2 * out_scale as f64;
        let sw = acc_scale / in_acc;
        let row = &rows[oo];
        let mut zsum = 0i64;
        for i in 0..k {
            let q = (row[i] / sw).round().clamp(-127.0, 127.0) as i8;
            weight[oo * k + i] = q;
            if !depthwise {
                zsum += zc(i) as i64 * q as i64;
            }
        }
        let b = bias.map_or(0.0, |b| b[oo] as f64);
        let bqv = (b / acc_scale).round() - zsum as f64;
        bq[oo] = bqv.clamp(i32::MIN as f64 / 4.0, i32::MAX as f64 / 4.0) as i32;
    }
    ConvOut {
        weight,
        bias: bq,
        mult,
        shift,
        max_mult: max_m,
    }
}

fn lut(f: impl Fn(f64) -> f64, inp: QP, out: QP) -> Vec<i8> {
    (-128i32..=127)
        .map(|q| {
            let x = inp.scale as f64 * (q - inp.zero) as f64;
            ((f(x) / out.scale as f64).round() + out.zero as f64).clamp(-128.0, 127.0) as i8
        })
        .collect()
}

struct NormOut {
    gamma: Vec<i16>,
    beta: Vec<i16>,
    shift: i32,
    eps: i32,
}

fn norm(g: &[f32], b: &[f32], inp: QP, out: QP) -> NormOut {
    let so = out.scale as f64;
    let mx = g
        .iter()
        .chain(b)
        .fold(0.0f64, |a, &v| a.max((v as f64 / so).abs()));
    let e = if mx > 0.0 {
        (32767.0 / mx).log2().floor() as i32
    } else {
        14
    };
    let e = e.clamp(-15, 46);
    let k = (2f64).powi(e);
    let gamma = g
        .iter()
        .map(|&v| (v as f64 / so * k).round().clamp(-32767.0, 32767.0) as i16)
        .collect();
    let beta = b
        .iter()
        .map(|&v| (v as f64 / so * k).round().clamp(-32767.0, 32767.0) as i16)
        .collect();
    let si = inp.scale as f64;
    let eps = (LN_EPS as f64 / (si * si) * 256.0)
        .round()
        .clamp(0.0, (1u64 << 24) as f64) as i32;
    NormOut {
        gamma,
        beta,
        shift: (e + 16).clamp(1, 62),
        eps,
    }
}

/// `(m_a, m_b, shift)` of an ADD with inputs `a`, `b` and output `o`.
fn add_params(a: QP, b: QP, o: QP) -> (i32, i32, i32) {
    let ra = a.scale as f64 / o.scale as f64;
    let rb = b.scale as f64 / o.scale as f64;
    let mx = ra.max(rb).max(1e-30);
    let shift = ((f64::from(1u32 << 30) / mx).log2().floor() as i32).clamp(1, 62);
    let k = (2f64).powi(shift);
    (
        (ra * k).round().min(i32::MAX as f64) as i32,
        (rb * k).round().min(i32::MAX as f64) as i32,
        shift,
    )
}

fn i8b(v: &[i8]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}
fn i16b(v: &[i16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn i32b(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn f32b(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Blob tensors by name, assembled in spec order at the end.
struct Out {
    t: HashMap<String, Vec<u8>>,
    meta: Vec<i32>,
    scales: Vec<f32>,
    /// Layers whose requantization multiplier or bias does not fit the format.
    problems: Vec<String>,
    /// The largest bias shift the blob may use (14 with 16-bit activations, else 15).
    max_bias_shift: u32,
}

impl Out {
    fn new(meta_len: usize) -> Self {
        Out {
            t: HashMap::new(),
            meta: vec![0; meta_len],
            scales: vec![0.0; meta_len],
            problems: Vec::new(),
            max_bias_shift: ldp_core::quant::kernels::MAX_BIAS_SHIFT,
        }
    }
    /// Writes a conv. Its `.bias` is left out of the blob by [`Out::assemble`] where the format
    /// has none (the conv has no bias and no folded zero point: all zero).
    fn conv(&mut self, prefix: &str, c: ConvOut, shift_idx: usize) {
        self.check_mult(prefix, c.max_mult);
        let (b16, bias_shift) = match encode_bias(&c.bias) {
            Some((b, s)) if s <= self.max_bias_shift => (b, s),
            _ => {
                self.problems.push(format!(
                    "`{prefix}` has a bias beyond the accumulator budget (±2^{})",
                    15 + self.max_bias_shift
                ));
                (vec![0; c.bias.len()], 0)
            }
        };
        self.t.insert(format!("{prefix}.weight"), i8b(&c.weight));
        self.t.insert(format!("{prefix}.bias"), i16b(&b16));
        self.t.insert(format!("{prefix}.mult"), c.mult);
        self.meta[shift_idx] = conv_shift_word(c.shift, bias_shift);
    }
    fn check_mult(&mut self, layer: &str, max: f64) {
        if max.is_nan() || max > MAX_MULT {
            self.problems.push(format!("`{layer}` needs {max:.3e}"));
        }
    }
    fn act(&mut self, idx: usize, q: QP) {
        self.meta[idx] = q.zero;
        self.scales[idx] = q.scale;
    }
    fn norm(&mut self, prefix: &str, n: NormOut, shift: usize, eps: usize) {
        self.t.insert(format!("{prefix}.gamma"), i16b(&n.gamma));
        self.t.insert(format!("{prefix}.beta"), i16b(&n.beta));
        self.meta[shift] = n.shift;
        self.meta[eps] = n.eps;
    }
    /// Writes `quant.meta`/`quant.scales` and assembles the blob in the spec order of `flags`.
    fn assemble(mut self, cfg: &ModelConfig, flags: u16) -> anyhow::Result<Vec<u8>> {
        self.t.insert("quant.meta".into(), i32b(&self.meta));
        self.t.insert("quant.scales".into(), f32b(&self.scales));
        let mut tensors = Vec::new();
        for spec in specs_flags(cfg.arch(), DType::Int8, flags) {
            tensors.push(
                self.t
                    .remove(&spec.to_string())
                    .with_context(|| format!("internal: int8 tensor `{spec}` not produced"))?,
            );
        }
        // What is left: the biases of convs the format stores without one, which must be 0.
        for (name, data) in &self.t {
            if !name.ends_with(".bias") || data.iter().any(|&b| b != 0) {
                bail!("internal: int8 tensor `{name}` produced but not in the format");
            }
        }
        crate::write::assemble_with_flags(cfg, DType::Int8, flags, &tensors)
    }
    #[allow(clippy::too_many_arguments)]
    fn add(&mut self, a: QP, b: QP, o: QP, ma: usize, mb: usize, shift: usize, zo: usize) {
        let (x, y, s) = add_params(a, b, o);
        self.meta[ma] = x;
        self.meta[mb] = y;
        self.meta[shift] = s;
        self.act(zo, o);
    }
}

/// Quantizes `m` to an int8 blob, calibrating on `calib`.
pub fn quantize(m: &FloatModel, calib: &CalibSet, opts: &Int8Options) -> anyhow::Result<Vec<u8>> {
    if calib.is_empty() {
        bail!("int8 needs calibration inputs: pass --calib C.npy with a batch of typical inputs");
    }
    let crest = crest_factor(calib);
    if opts.input_quant == InputQuant::Int16 && matches!(m.config(), ModelConfig::MobileVlmV2(_)) {
        bail!(
            "--input-quant int16 exists for ldp and mobilevlm-v1; for mobilevlm-v2 use \
             --activations int16 (16-bit activations throughout)"
        );
    }
    if use_a16(m, calib, opts)? {
        eprintln!(
            "int8 scheme: 16-bit activations with int8 weights ({}), per-tensor input, \
             min/max ranges with 4x-16x headroom; costs 2x activation scratch and 1.5x-1.9x the \
             instructions of int8 activations on a Cortex-M4 (docs/ACCURACY.md)",
            if opts.activations == Activations::Int16 {
                "--activations int16".to_string()
            } else if matches!(m.config(), ModelConfig::MobileVlmV1(_)) {
                "chosen: MobileVLM V1's default".to_string()
            } else {
                format!("calibration inputs heavy-tailed: peak/RMS {crest:.1} > {HEAVY_CREST}")
            }
        );
        let r = calibrate(m, calib, CalibMethod::Minmax)?;
        let (nodes, d) = graph::dag(m.config()).context("internal: not a graph")?;
        // Token-wise graphs keep their saturations per node, V2 its appended form.
        let form = match m.config() {
            ModelConfig::Graph(_) | ModelConfig::MobileVlmV1(_) => {
                ldp_core::graph::a16::Form16::PerNode
            }
            _ => ldp_core::graph::a16::Form16::Appended,
        };
        return graph::quantize_a16(m, &r, nodes, d, form);
    }
    let heavy = crest > HEAVY_CREST;
    let v2 = matches!(m.config(), ModelConfig::MobileVlmV2(_));
    let is_graph = matches!(m.config(), ModelConfig::Graph(_));
    if is_graph && opts.input_quant == InputQuant::PerChannel {
        bail!(
            "--input-quant per-channel does not exist for {} yet; use --input-quant per-tensor \
             or int16 (or drop it: auto picks int16 for heavy-tailed inputs)",
            m.config().arch().name()
        );
    }
    let (input_quant, input_why) = match opts.input_quant {
        InputQuant::Auto if heavy && !v2 => (
            InputQuant::Int16,
            format!(
                "chosen: calibration inputs heavy-tailed (peak/RMS {crest:.1} > {HEAVY_CREST}); \
                 costs one byte of RAM per input value"
            ),
        ),
        // Graph architectures: the input feeds one Linear over tokens and nothing else, and its
        // rounding is the largest single int8 error (issue 16, tuning case `mlp_16to32_5x7_s2`:
        // input alone 0.0089, hidden 0.0084, output 0.0103 of a 0.0177 total). A 16-bit input
        // removes it for one byte of RAM per input value: on the sweep's three normal-input
        // tuning cases 0.0178/0.0186/0.0177 -> 0.0160/0.0178/0.0155 (docs/ACCURACY.md).
        InputQuant::Auto if is_graph => (
            InputQuant::Int16,
            format!(
                "chosen: {} (its input feeds one Linear; a 16-bit input removes the largest \
                 single rounding for one byte of RAM per input value)",
                m.config().arch().name()
            ),
        ),
        InputQuant::Auto => (
            InputQuant::PerTensor,
            format!("chosen: calibration inputs peak/RMS {crest:.1} <= {HEAVY_CREST}"),
        ),
        q => (q, format!("--input-quant {}", q.name())),
    };
    let why = match (opts.activations, m.config()) {
        (Activations::Int8, _) => "--activations int8".to_string(),
        (_, ModelConfig::MobileVlmV2(_)) => {
            format!("calibration inputs peak/RMS {crest:.1} <= {HEAVY_CREST}")
        }
        _ if heavy && input_quant == InputQuant::Int16 => format!(
            "calibration inputs heavy-tailed (peak/RMS {crest:.1}); 16-bit activations \
             throughout exist for mobilevlm-v2 and mlp2x-gelu only, the input is 16-bit"
        ),
        _ if heavy => format!(
            "calibration inputs heavy-tailed (peak/RMS {crest:.1}), but 16-bit activations \
             were not chosen: expect a larger error (docs/ACCURACY.md)"
        ),
        _ => format!("calibration inputs peak/RMS {crest:.1} <= {HEAVY_CREST}"),
    };
    eprintln!(
        "int8 scheme: int8 activations ({why}), {} input ({input_why}), {} ranges",
        input_quant.name(),
        opts.calib_method.name()
    );
    if matches!(m.config(), ModelConfig::MobileVlmV1(_)) {
        eprintln!(
            "note: MobileVLM V1 with int8 activations measures 0.028-0.066 relative L2 error on \
             normal inputs in our sweep (above 0.04 on some 12x12 and 24x24 grids), and a single \
             heavy-tailed input can exceed 0.1. 16-bit activations (--activations auto, the \
             default, with a per-tensor input) measure about 0.01 (docs/ACCURACY.md). Check the \
             blob with `ldp-quant eval` on held-out inputs"
        );
    }
    let opts = &Int8Options {
        input_quant,
        ..*opts
    };
    let mut r = calibrate(m, calib, opts.calib_method)?;
    let tied_now = tied(m, &r, opts);
    let mut few_names: Vec<&str> = r
        .obs
        .iter()
        .filter(|(n, o)| few(&o.sample) && !is_wide(m.config(), n))
        .filter(|(n, _)| !(**n == "x" && input_quant == InputQuant::Int16))
        .filter(|(n, _)| !tied_now.contains(n))
        .map(|(n, _)| *n)
        .collect();
    few_names.sort_unstable();
    let mut notes = Vec::new();
    if !few_names.is_empty() {
        notes.push(format!(
            "{} ({}) with fewer than {FEW} calibration values: each side widened to the mean \
             +/- 4x that side's spread, so that the next input's extremes are not clipped",
            if few_names.len() == 1 {
                "1 activation".to_string()
            } else {
                format!("{} activations", few_names.len())
            },
            few_names.join(", ")
        ));
    }
    for v in &tied_now {
        notes.push(format!(
            "the resize output `{v}` (fewer than {FEW} values) takes its source's quantization: \
             a resize of it cannot leave its range"
        ));
    }
    if !notes.is_empty() {
        eprintln!("int8 ranges: {}", notes.join("; "));
    }
    refine(m, calib, &mut r, opts)?;
    quantize_with(m, &r, opts)
}

/// Peak over RMS of the calibration inputs above which `--activations auto` calls them
/// heavy-tailed. A normal distribution reaches 8σ once in ~10¹⁵ values; the golden set's
/// Student-t(3) inputs with two ×20 channels measure 31 (`v2_8to16_h24_heavy`).
pub const HEAVY_CREST: f64 = 8.0;

/// Peak over RMS (crest factor) of all calibration input values.
pub fn crest_factor(calib: &CalibSet) -> f64 {
    let (mut peak, mut sq, mut n) = (0f64, 0f64, 0usize);
    for s in &calib.samples {
        for &v in s {
            let v = v as f64;
            if v.is_finite() {
                peak = peak.max(v.abs());
                sq += v * v;
                n += 1;
            }
        }
    }
    if n == 0 || sq <= 0.0 {
        return 0.0;
    }
    peak / (sq / n as f64).sqrt()
}

/// Whether to write a 16-bit-activation blob (`ldp_core::quant::a16`).
fn use_a16(m: &FloatModel, calib: &CalibSet, opts: &Int8Options) -> anyhow::Result<bool> {
    // MobileVLM V2 and the graph architectures have a 16-bit-activation executor.
    let v2 = matches!(
        m.config(),
        ModelConfig::MobileVlmV2(_) | ModelConfig::Graph(_)
    );
    let v1 = matches!(m.config(), ModelConfig::MobileVlmV1(_));
    let per_ch = opts.input_quant == InputQuant::PerChannel;
    // An explicit 16-bit input (`ldp`, V1 and the graphs) keeps int8 activations.
    let x16 = opts.input_quant == InputQuant::Int16;
    match opts.activations {
        Activations::Int8 => Ok(false),
        Activations::Auto if x16 => Ok(false),
        Activations::Int16 => {
            if !(v2 || v1) {
                bail!(
                    "--activations int16 exists for mobilevlm-v1, mobilevlm-v2 and mlp2x-gelu only (this model is {}); use --activations int8, \
                     and --input-quant int16 for a 16-bit input (heavy-tailed inputs)",
                    m.config().arch().name()
                );
            }
            if per_ch {
                bail!(
                    "--activations int16 takes a per-tensor input: drop --input-quant per-channel"
                );
            }
            Ok(true)
        }
        Activations::Auto => {
            let crest = crest_factor(calib);
            let heavy = crest > HEAVY_CREST;
            if v2 && heavy && !per_ch {
                eprintln!(
                    "note: heavy-tailed calibration inputs (peak/RMS {crest:.1} > {HEAVY_CREST}): \
                     writing 16-bit activations with int8 weights (more accurate, 2x activation RAM, \
                     no streaming yet); pass --activations int8 for int8 activations"
                );
            }
            if v2 && heavy && per_ch {
                eprintln!(
                    "note: heavy-tailed calibration inputs: 16-bit activations would fit them better, \
                     but --input-quant per-channel keeps int8 activations"
                );
            }
            if v1 && per_ch {
                eprintln!(
                    "note: MobileVLM V1 is more accurate with 16-bit activations (the default), but \
                     --input-quant per-channel keeps int8 activations"
                );
            }
            // MobileVLM V1: nine int8 roundings in a row left too little margin on normal inputs
            // and clipped heavy-tailed ones (docs/ACCURACY.md, "MobileVLM V1 with 16-bit
            // activations"): 16-bit activations whatever the inputs.
            Ok((v2 && heavy || v1) && !per_ch)
        }
    }
}

/// Headroom of the 16-bit *input* of the int8 path (`ldp`, MobileVLM V1, graphs with int8
/// activations) over the calibrated absolute maximum (2 of the 8 extra bits).
const INPUT16_HEADROOM: f64 = 4.0;
/// Headroom of 16-bit activations (MobileVLM V2, `mlp2x-gelu`; input and every activation) over
/// the calibrated absolute maximum: 4 of the 8 extra bits. With Student-t(3) inputs a fresh
/// sample beyond 4× the calibrated maximum is not rare: at 4× the tuning cases
/// `v2_32to64_24_heavy_s1` and `mlp_32to64_12_heavy_s1` had 11 and 1 of 1000 fresh samples over
/// the 0.1 bound (worst 0.57 and 0.33, one saturated outlier token), at 16× none (worst 0.0089
/// and 0.0112); typical errors rise from 0.006 to 0.008–0.020 (held-out and extra seeds). Less
/// where a wide Linear's budget saturates the activation early (`graph::headroom16`;
/// docs/ACCURACY.md, "Extra seeds").
const A16_HEADROOM: f64 = 16.0;
/// Half-width of the 16-bit GELU table's real interval (`[-6, 6]`; outside it GELU is 0 or the
/// identity to within 6·Φ(−6) ≈ 6·10⁻⁹).
const A16_GELU_T: f64 = 6.0;

/// Output error of the int8 blob over the calibration set, per sample: `(‖y_q − y‖², ‖y‖²)`.
fn blob_errors(
    blob: &[u8],
    calib: &CalibSet,
    want: &[Vec<f32>],
) -> anyhow::Result<Vec<(f64, f64)>> {
    let aligned = crate::AlignedBytes::from_slice(blob);
    let model = ldp_core::Model::parse(aligned.as_bytes())
        .map_err(|e| anyhow::anyhow!("internal: int8 blob does not parse: {e}"))?;
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let mut y = vec![0f32; model.output_len()];
    let mut out = Vec::with_capacity(want.len());
    for (x, w) in calib.samples.iter().zip(want) {
        ck(model.forward(x, &mut y, &mut scratch))?;
        let (mut num, mut den) = (0f64, 0f64);
        for (a, b) in y.iter().zip(w) {
            num += (*a as f64 - *b as f64).powi(2);
            den += (*b as f64).powi(2);
        }
        out.push((num, den));
    }
    Ok(out)
}

/// Range search: the factors applied to the low end, the high end or both ends of a range.
/// Heavy-tailed activations feeding a LayerNorm end up clipped hard (×0.35–0.5): LayerNorm
/// rescales each token, so the resolution of small tokens matters more than large tokens' tails.
const FACTORS: [f64; 13] = [
    0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.05, 1.1, 1.25, 1.4, 1.7, 2.0,
];
/// Range search: coordinate-descent sweeps over all activations.
const SWEEPS: usize = 3;

/// `--range-search auto` runs the search when its projected time, measured on this machine
/// (one candidate timed, times the number of candidates), is at most this many seconds.
pub const SEARCH_BUDGET_S: f64 = 20.0;
/// The budget when the calibration inputs are heavy-tailed (crest factor above
/// [`HEAVY_CREST`]) and int8 activations are used: there the search is what brings `ldp` and V1
/// within their bound (e.g. 0.213 → 0.098 on the sweep's `ldp_32_24x24_heavy_s1`), so it gets
/// more time.
pub const SEARCH_BUDGET_HEAVY_S: f64 = 90.0;

/// Relative squared error of the even and of the odd calibration samples.
fn folds(e: &[(f64, f64)]) -> [f64; 2] {
    let mut f = [(0f64, 0f64); 2];
    for (i, (n, d)) in e.iter().enumerate() {
        f[i % 2].0 += n;
        f[i % 2].1 += d;
    }
    [f[0].0 / f[0].1.max(1e-30), f[1].0 / f[1].1.max(1e-30)]
}

/// Output-aware range search: starting from the per-tensor ranges, tries wider and narrower
/// clipping windows for every activation in graph order (coordinate descent, up to [`SWEEPS`]
/// sweeps) and
/// keeps a change only when the int8 model's output error drops on both halves of the
/// calibration set (even and odd samples), so that a change fitted to a few samples' noise is
/// not taken. Needs at least 4 samples and 64 grid positions per sample; else a no-op.
/// The search keeps a change only when the squared output error drops on both halves of the
/// calibration set by at least this fraction. Smaller changes are noise on a few samples:
/// following them made held-out results depend on the path of the search (the heavy-tailed
/// `ldp` golden case moved between 0.080 and 0.103 with an unrelated arithmetic change). Chosen
/// among 0, 0.01, 0.02, 0.04 on the golden held-out set (docs/ACCURACY.md).
const SEARCH_MARGIN: f64 = 0.02;

fn better(e: [f64; 2], best: [f64; 2]) -> bool {
    let m = 1.0 - SEARCH_MARGIN;
    e[0] < best[0] * m && e[1] < best[1] * m
}

fn refine(
    m: &FloatModel,
    calib: &CalibSet,
    r: &mut Ranges,
    opts: &Int8Options,
) -> anyhow::Result<()> {
    let cfg = m.config();
    let (h, w) = cfg.input_grid();
    if opts.range_search == RangeSearch::Off || calib.len() < 4 || h * w < 64 {
        return Ok(());
    }
    let names: Vec<&'static str> = intermediates(m, &calib.samples[0])?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| r.obs.contains_key(n) && !is_wide(m.config(), n))
        // A 16-bit input's range is fixed (headroom over the calibrated maximum).
        .filter(|n| !(*n == "x" && opts.input_quant == InputQuant::Int16))
        // A resize that takes its source's quantization has no range of its own to search.
        .filter(|n| !tied(m, r, opts).contains(n))
        .collect();
    let want: Vec<Vec<f32>> = calib
        .samples
        .iter()
        .map(|x| m.forward(x))
        .collect::<anyhow::Result<_>>()?;
    // Cost, measured: one candidate is one quantization plus one int8 pass over the calibration
    // set. Time the first one and project the whole search from it.
    let evals = names.len() * FACTORS.len() * 3 * SWEEPS;
    let t0 = std::time::Instant::now();
    let mut blob = quantize_with(m, r, opts)?;
    let mut best = folds(&blob_errors(&blob, calib, &want)?);
    let per_eval = t0.elapsed().as_secs_f64();
    let projected = per_eval * evals as f64;
    let heavy = crest_factor(calib) > HEAVY_CREST;
    let budget = if heavy {
        SEARCH_BUDGET_HEAVY_S
    } else {
        SEARCH_BUDGET_S
    };
    if opts.range_search == RangeSearch::Auto && projected > budget {
        eprintln!(
            "note: int8 range search skipped: it would take about {projected:.0} s here ({evals} \
             candidates x {:.0} ms measured), over the {budget:.0} s budget of \
             --range-search auto{}; pass --range-search on to run it anyway",
            per_eval * 1e3,
            if heavy {
                " for heavy-tailed inputs: expect a larger int8 error"
            } else {
                ""
            }
        );
        return Ok(());
    }
    if opts.range_search == RangeSearch::Auto && projected > 2.0 {
        eprintln!(
            "note: int8 range search: up to {projected:.0} s ({evals} candidates x {:.0} ms; \
             budget {budget:.0} s{})",
            per_eval * 1e3,
            if heavy { ", heavy-tailed inputs" } else { "" }
        );
    }

    let start = best;
    let bar = crate::cli::progress(names.len() * SWEEPS, "range search");
    for _sweep in 0..SWEEPS {
        let before = best;
        for &n in &names {
            bar.inc(1);
            let base = r.qp(n)?;
            let lo = base.scale as f64 * (-128 - base.zero) as f64;
            let hi = base.scale as f64 * (127 - base.zero) as f64;
            let mut cands = Vec::new();
            for f in FACTORS {
                cands.push((lo * f, hi * f));
                cands.push((lo * f, hi));
                cands.push((lo, hi * f));
            }
            let mut cur = base;
            for (l, h) in cands {
                let q = qp_of(l as f32, h as f32);
                if q == base || q == cur {
                    continue;
                }
                r.overrides.insert(n, q);
                // A candidate the format cannot encode (a multiplier out of range) is skipped.
                let Ok(b) = quantize_with(m, r, opts) else {
                    r.overrides.insert(n, cur);
                    continue;
                };
                if b == blob {
                    r.overrides.insert(n, cur);
                    continue;
                }
                let e = folds(&blob_errors(&b, calib, &want)?);
                if better(e, best) {
                    best = e;
                    blob = b;
                    cur = q;
                } else {
                    r.overrides.insert(n, cur);
                }
            }
        }
        // A sweep that changed nothing leaves the next one nothing to change.
        if best == before {
            break;
        }
    }
    bar.finish_and_clear();
    let searched = best;
    let best = correct_biases(m, calib, r, opts, &want, blob, best)?;
    if std::env::var_os("LDP_QUANT_DEBUG").is_some() {
        for &n in &names {
            if let (Some(a), Some(b)) = (r.overrides.get(n), r.chosen.get(n)) {
                if a != b {
                    let rng = |q: &QP| {
                        (
                            q.scale * (-128 - q.zero) as f32,
                            q.scale * (127 - q.zero) as f32,
                        )
                    };
                    eprintln!("range search: {n:>8} {:?} -> {:?}", rng(b), rng(a));
                }
            }
        }
        let mut kept: Vec<_> = r.bias_fix.keys().collect();
        kept.sort();
        eprintln!(
            "range search: calibration output rel L2 {:.4}/{:.4} -> {:.4}/{:.4}; \
             bias correction kept on {kept:?} -> {:.4}/{:.4}",
            start[0].sqrt(),
            start[1].sqrt(),
            searched[0].sqrt(),
            searched[1].sqrt(),
            best[0].sqrt(),
            best[1].sqrt()
        );
    }
    Ok(())
}

/// The float bias of the conv whose output activation is `out`, minus its bias correction.
fn fb(r: &Ranges, out: &str, b: Option<&[f32]>, n: usize) -> Option<Vec<f32>> {
    match r.bias_fix.get(out) {
        None => b.map(|b| b.to_vec()),
        Some(fix) => Some(
            (0..n)
                .map(|i| (b.map_or(0.0, |b| b[i] as f64) - fix[i]) as f32)
                .collect(),
        ),
    }
}

/// Whether activation `n` of a model with config `cfg` is the direct int8 output of a conv
/// ([`graph::correctable`]).
fn correctable(cfg: ModelConfig, n: &str) -> bool {
    graph::dag(cfg).is_some_and(|(nodes, _)| graph::correctable(nodes, n))
}

/// Empirical bias correction: for each conv output in graph order, the mean over the
/// calibration set of (int8 − f32) per channel is subtracted from the conv's bias; a correction
/// is kept only when the output error drops on both halves of the calibration set. Starts from
/// the search's `blob` and its error `best`; returns the final error.
fn correct_biases(
    m: &FloatModel,
    calib: &CalibSet,
    r: &mut Ranges,
    opts: &Int8Options,
    want: &[Vec<f32>],
    mut blob: Vec<u8>,
    mut best: [f64; 2],
) -> anyhow::Result<[f64; 2]> {
    let co = m.config().channels().1;
    // The f32 twins of the correctable activations, per sample, computed once.
    let refs: Vec<Acts> = calib
        .samples
        .iter()
        .map(|x| {
            let mut a = intermediates(m, x)?;
            a.retain(|(n, _)| correctable(m.config(), n));
            Ok(a)
        })
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<&'static str> = refs[0].iter().map(|(n, _)| *n).collect();
    for &name in &names {
        let aligned = crate::AlignedBytes::from_slice(&blob);
        let model = ldp_core::Model::parse(aligned.as_bytes())
            .map_err(|e| anyhow::anyhow!("internal: int8 blob does not parse: {e}"))?;
        let mut scratch = vec![0u8; model.scratch_bytes()];
        let mut y = vec![0f32; model.output_len()];
        let mut sum = vec![0f64; co];
        let mut count = 0usize;
        for (x, acts) in calib.samples.iter().zip(&refs) {
            let Some((_, rf)) = acts.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let mut got: Option<Vec<f64>> = None;
            let mut obs = |n: &'static str, q: ldp_core::quant::Traced<'_>, s: f32| {
                if n == name {
                    got = Some((0..q.len()).map(|i| q.real(i, s)).collect());
                }
            };
            ldp_core::quant::forward_f32_traced(&model, x, &mut y, &mut scratch, Some(&mut obs))
                .map_err(|e| anyhow::anyhow!("internal: int8 forward: {e}"))?;
            let Some(g) = got else { continue };
            if g.len() != rf.len() || g.len() % co != 0 {
                continue;
            }
            for (i, (a, b)) in g.iter().zip(rf).enumerate() {
                sum[i % co] += a - *b as f64;
            }
            count += g.len() / co;
        }
        if count == 0 {
            continue;
        }
        let fix = sum.iter().map(|s| s / count as f64).collect();
        r.bias_fix.insert(name, fix);
        let b = quantize_with(m, r, opts)?;
        let e = folds(&blob_errors(&b, calib, want)?);
        if e[0] < best[0] && e[1] < best[1] {
            best = e;
            blob = b;
        } else {
            r.bias_fix.remove(name);
        }
    }
    Ok(best)
}

fn quantize_with(m: &FloatModel, r: &Ranges, opts: &Int8Options) -> anyhow::Result<Vec<u8>> {
    let cfg = m.config();
    let (c_in, _) = cfg.channels();
    let per_ch = opts.input_quant == InputQuant::PerChannel && c_in > 1;
    let x16 = opts.input_quant == InputQuant::Int16;
    if x16 && matches!(cfg, ModelConfig::MobileVlmV2(_)) {
        bail!("internal: a 16-bit input on a V2 model");
    }
    let xq: Vec<QP> = if per_ch {
        r.qp_per_channel("x")?
    } else if x16 {
        vec![r.qp_input16("x", ldp_core::quant::input16_limit(c_in))?]
    } else {
        vec![r.qp("x")?]
    };
    let (nodes, d) = graph::dag(cfg).context("internal: not a graph")?;
    if per_ch && matches!(cfg, ModelConfig::Graph(_)) {
        bail!("internal: graph architectures take a per-tensor or 16-bit input");
    }
    let mut o = Out::new(ldp_core::graph::meta::total(nodes));
    let limit = x16.then(|| ldp_core::quant::input16_limit(c_in));
    let tied = tied(m, r, opts);
    graph::quantize(m, r, nodes, d, &xq, limit, &tied, &mut o)?;
    let flags = if per_ch {
        FLAG_PER_CHANNEL_INPUT
    } else if x16 {
        FLAG_INPUT16
    } else {
        0
    };
    finish(o, &cfg, flags)
}

/// Reports the layers whose multiplier or bias does not fit the format, else assembles.
fn finish(o: Out, cfg: &ModelConfig, flags: u16) -> anyhow::Result<Vec<u8>> {
    if !o.problems.is_empty() {
        anyhow::bail!(
            "int8: requantization multiplier out of range ({}; the format holds up to {MAX_MULT}): \
             the layer's output range is far narrower than its input range times its weights. \
             Check the calibration inputs (are they typical inputs of this model?) or use f16",
            o.problems.join(", ")
        );
    }
    o.assemble(cfg, flags)
}

fn gelu64(x: f64) -> f64 {
    0.5 * x * libm_erfc(-x / std::f64::consts::SQRT_2)
}
fn libm_erfc(x: f64) -> f64 {
    // erfc via the f32 kernel's f64 twin in `libm`: accurate to f64 rounding.
    libm::erfc(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_multipliers_are_reported_not_saturated() {
        let mut o = Out::new(4);
        o.check_mult("ok", MAX_MULT);
        assert!(o.problems.is_empty());
        o.check_mult("too_big", MAX_MULT * 1.01);
        o.check_mult("nan", f64::NAN);
        assert_eq!(o.problems.len(), 2, "{:?}", o.problems);
        // What the check protects against: past 255/2 the mantissa saturates at shift 1 and
        // the weights would clip.
        let c = conv(
            &[1.0],
            None,
            1,
            1,
            &[1.0],
            &[0],
            (1.0 / 127.0 / MAX_MULT) as f32,
            false,
        );
        assert_eq!((c.mult[0], c.shift, c.weight[0]), (255, 1, 127));
    }

    /// The u8 mantissa rounds each channel's multiplier up and the weight scale follows: the
    /// requantization is exact, no weight clips, and the weight step grows by < 1/mantissa.
    #[test]
    fn conv_multipliers_round_up_and_weights_follow() {
        let w = [0.5f32, -0.25, 0.3, 0.011, 0.02, -0.003, 0.0, 0.0, 0.0];
        for depthwise in [false, true] {
            let (s_in, s_out) = (0.1f32, 0.05f32);
            let c = conv(&w, None, 3, 3, &[s_in], &[0], s_out, depthwise);
            let in_acc = if depthwise { s_in as f64 } else { 1.0 };
            let s_in_w = if depthwise { 1.0 } else { s_in as f64 };
            for oo in 0..2 {
                let row = &w[oo * 3..oo * 3 + 3];
                let amax = row
                    .iter()
                    .fold(0f64, |a, &v| a.max((v as f64 * s_in_w).abs()));
                let m = c.mult[oo] as f64 / (2f64).powi(c.shift);
                let sw = m * s_out as f64 / in_acc;
                assert!(sw >= amax / 127.0 * (1.0 - 1e-9), "{oo}: {sw} {amax}");
                assert!(sw <= amax / 127.0 * (1.0 + 1.0 / c.mult[oo] as f64), "{oo}");
                for (i, &v) in row.iter().enumerate() {
                    let q = c.weight[oo * 3 + i] as f64;
                    assert!((q * sw - v as f64 * s_in_w).abs() <= sw / 2.0 + 1e-12);
                }
            }
            // The largest channel's mantissa is in the top half of u8.
            assert!(c.mult[0] >= 128, "{:?}", c.mult);
            assert_eq!(c.weight[6..], [0, 0, 0]);
        }
    }

    #[test]
    fn biases_encode_as_i16_with_the_smallest_shift() {
        assert_eq!(
            encode_bias(&[0, 32767, -32767]),
            Some((vec![0, 32767, -32767], 0))
        );
        assert_eq!(encode_bias(&[-32768, 5, 6]), Some((vec![-16384, 3, 3], 1)));
        let big = (1 << 29) - 12345;
        let (b, s) = encode_bias(&[big, -big]).unwrap();
        assert_eq!(s, 14);
        assert!((((b[0] as i64) << s) - big as i64).abs() <= 1 << 13);
        assert_eq!(b[1], -b[0]);
        assert_eq!(encode_bias(&[i32::MAX]), None);
        assert_eq!(encode_bias(&[]), Some((vec![], 0)));
    }

    #[test]
    fn few_values_widen_each_side_by_its_own_spread() {
        // Symmetric: both spreads are the standard deviation (the old mean ± 4σ rule).
        let sym: Vec<f32> = (-50..=50).map(|i| i as f32 / 10.0).collect();
        let (lo, hi) = side_spreads(&sym, 0.0);
        let sd = (sym.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 100.0).sqrt();
        assert!(
            (lo - hi).abs() < 1e-9 && (lo - sd).abs() < 1e-9,
            "{lo} {hi} {sd}"
        );
        // GELU-like: bounded at -0.17 below, a long tail above. 400 values (< FEW).
        let gelu_like: Vec<f32> = (0..400)
            .map(|i| {
                let x = (i as f32 - 200.0) / 60.0; // -3.3 .. 3.3
                x * 0.5 * (1.0 + (x * 0.8).tanh())
            })
            .collect();
        assert!(few(&gelu_like));
        let (min, max) = gelu_like
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let q = choose(min, max, &gelu_like, CalibMethod::Minmax, None);
        let (lo, hi) = (
            q.scale * (-128 - q.zero) as f32,
            q.scale * (127 - q.zero) as f32,
        );
        // The long side is widened past the observed maximum; the bounded side much less than
        // the symmetric rule would (mean − 4σ).
        let mean = gelu_like.iter().map(|&v| v as f64).sum::<f64>() / 400.0;
        let sd = (gelu_like
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / 400.0)
            .sqrt();
        assert!(hi > max * 1.05, "{hi} vs max {max}");
        assert!(
            (lo as f64) > mean - 4.0 * sd + 1.0,
            "{lo} vs {}",
            mean - 4.0 * sd
        );
        assert!(lo <= min);
        // Enough values: no widening (min/max as observed, to the step).
        let many: Vec<f32> = (0..FEW).map(|i| i as f32 / FEW as f32).collect();
        let q = choose(0.0, 1.0, &many, CalibMethod::Minmax, None);
        assert!((q.scale * 255.0 - 1.0).abs() < 1e-6);
    }
}
