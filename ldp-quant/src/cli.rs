//! The command line: `convert`, `run`, `inspect`, `eval`.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ldp_core::{Arch, DType, Model, ModelConfig};

use crate::aligned::AlignedBytes;
use crate::calib::CalibSet;
use crate::graph::FloatModel;
use crate::import::{import_file, import_path};
use crate::layout::{join_batch, output_sample_shape, split_batch};
use crate::metrics::{compare, Metrics};
use crate::npy::{self, shape_str};
use crate::quantize::{self, CalibMethod, Int8Options};
use crate::write;
use crate::{calib_check, fileio};

const MAIN_EXAMPLES: &str = "\
Examples:
  # MobileVLM V2 projector from an official release directory (config.json + pytorch_model.bin),
  # 24x24 = 576 CLIP tokens in, f16 blob out
  ldp-quant convert --weights MobileVLM_V2-1.7B --dtype f16 -o projector.ldp
  # Look at it, run it, and measure its error against the f32 reference
  ldp-quant inspect --model projector.ldp
  ldp-quant run --model projector.ldp --input tokens.npy -o out.npy
  ldp-quant eval --model projector.ldp --weights model.safetensors --input tokens.npy

Layouts (.npy, little-endian float32): `ldp` takes NCHW [1, C, H, W] (or [C, H, W], or a batch
[B, C, H, W]); MobileVLM takes tokens [1, N, C] (or [N, C], or [B, N, C]) with N = h*h.";

const CONVERT_EXAMPLES: &str = "\
Examples:
  ldp-quant convert --weights MobileVLM_V2-7B --dtype f16 -o v2.ldp      # a release directory
  ldp-quant convert --weights mmproj-model-f16.gguf --dtype f16 -o v1.ldp  # llama.cpp mmproj
  ldp-quant convert --weights mm_projector.bin --grid 24x24 --dtype f16 -o p.ldp  # torch.save
  ldp-quant convert --weights ldp.safetensors --grid 64x64 --dtype f32 -o ldp.ldp
  ldp-quant convert --weights mobilevlm.safetensors --grid 24x24 --dtype f16 -o v1.ldp
  ldp-quant convert --weights ckpt.safetensors --arch mobilevlm-v2 --prefix model.mm_projector. \\
      --grid 24x24 --dtype int8 --calib calib.npy -o v2_int8.ldp

--weights takes a .safetensors file, a torch.save .bin/.pt/.pth (read without Python by a
restricted unpickler), a *.index.json, a .gguf file or a model directory. Weights may be F32,
F16 or BF16. The calibration file (int8) is a batch [B, ...] of inputs in the
same layout as `run` takes.";

/// `convert`'s help: the examples, then how the architecture is detected — each one's key
/// names, from its graph definition (`ldp_core::graph`).
fn convert_help() -> String {
    let archs: Vec<String> = crate::import::ARCHS
        .iter()
        .filter_map(|&a| {
            let g = ldp_core::graph::definition(a)?;
            let (first, last) = (g.float.first()?.name, g.float.last()?.name);
            Some(format!("`{first}.*` … `{last}.*` = {}", a.name()))
        })
        .collect();
    let (examples, rest) = CONVERT_EXAMPLES
        .split_once("--weights takes")
        .unwrap_or((CONVERT_EXAMPLES, ""));
    format!(
        "{examples}The architecture is detected from the key names ({}), with no prefix, \
         `model.mm_projector.` or `model.mm_projector.model.` tried in turn; other tensors of a \
         whole-model checkpoint are ignored.\n--weights takes{rest}",
        archs.join(", ")
    )
}

const RUN_EXAMPLES: &str = "\
Examples:
  ldp-quant run --model ldp.ldp --input image_nchw.npy -o out.npy     # [1,C,H,W] -> [1,C_out,H/2,W/2]
  ldp-quant run --model v2.ldp --input tokens.npy -o projected.npy    # [1,576,1024] -> [1,144,2048]

A batch [B, ...] in gives [B, ...] out; a sample without the batch axis gives [1, ...] out.";

const INSPECT_EXAMPLES: &str = "\
Example:
  ldp-quant inspect --model projector.ldp";

const EVAL_EXAMPLES: &str = "\
Example:
  ldp-quant eval --model v1_f16.ldp --weights mobilevlm.safetensors --input heldout.npy

Prints the relative L2 error, cosine similarity and max abs error of the blob's output against
the f32 reference computed from the same weights, per sample and over the whole batch.";

/// Import, quantize, run, inspect and evaluate MobileVLM Lightweight Downsample Projector blobs.
///
/// Converts a PyTorch projector (safetensors) into a model blob for `ldp-core` (f32, f16 or
/// int8), runs blobs on .npy inputs, shows what a blob holds and measures a blob's error against
/// the f32 reference.
#[derive(Debug, Parser)]
#[command(name = "ldp-quant", version, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Convert a safetensors checkpoint into a model blob (f32, f16 or int8).
    #[command(after_help = convert_help())]
    Convert(ConvertArgs),
    /// Run a model blob on a .npy input and write the output .npy.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Show a blob's architecture, shapes, dtype, sizes, RAM needs and tensor table.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Compare a blob's output with the f32 reference computed from the original weights.
    #[command(after_help = EVAL_EXAMPLES)]
    Eval(EvalArgs),
}

/// Architecture names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// The seed LDP block (NCHW image in, half-resolution image out).
    Ldp,
    /// MobileVLM V1's LDPNetProjector (tokens in, ceil(h/2)^2 tokens out).
    #[value(name = "mobilevlm-v1")]
    MobilevlmV1,
    /// MobileVLM V2's LDPNetV2Projector (tokens in, 144 tokens out).
    #[value(name = "mobilevlm-v2")]
    MobilevlmV2,
    /// LLaVA's mlp2x_gelu projector (tokens in, the same tokens out).
    #[value(name = "mlp2x-gelu")]
    Mlp2xGelu,
}

impl From<ArchArg> for Arch {
    fn from(a: ArchArg) -> Arch {
        match a {
            ArchArg::Ldp => Arch::Ldp,
            ArchArg::MobilevlmV1 => Arch::MobileVlmV1,
            ArchArg::MobilevlmV2 => Arch::MobileVlmV2,
            ArchArg::Mlp2xGelu => Arch::Mlp2xGelu,
        }
    }
}

/// Storage types on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DtypeArg {
    /// 32-bit float weights and activations (exact).
    F32,
    /// 16-bit float weights and activations, f32 arithmetic (half the size).
    F16,
    /// 8-bit integer weights and activations (needs --calib).
    Int8,
}

impl From<DtypeArg> for DType {
    fn from(d: DtypeArg) -> DType {
        match d {
            DtypeArg::F32 => DType::F32,
            DtypeArg::F16 => DType::F16,
            DtypeArg::Int8 => DType::Int8,
        }
    }
}

#[derive(Debug, Args)]
struct WeightsArgs {
    /// The weights: a .safetensors file, a torch.save .bin/.pt/.pth, a sharded checkpoint's
    /// *.index.json, a llama.cpp mmproj .gguf, or a model directory (config.json + weights);
    /// the projector alone or a whole-model checkpoint.
    #[arg(long, value_name = "FILE|DIR")]
    weights: PathBuf,
    /// Architecture (default: detected from the key names).
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    /// Key prefix of the projector, e.g. `model.mm_projector.` (default: detected).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
}

#[derive(Debug, Args)]
struct ConvertArgs {
    #[command(flatten)]
    weights: WeightsArgs,
    /// Input grid HxW: the image size for `ldp` (e.g. 64x64), the token grid h x h for MobileVLM
    /// (e.g. 24x24 for 576 tokens). Optional when the weights state it (GGUF image/patch size, a
    /// model directory's vision tower); checked against them if given.
    #[arg(long, value_name = "HxW", allow_hyphen_values = true)]
    grid: Option<String>,
    /// Storage type of the blob.
    #[arg(long, value_enum)]
    dtype: DtypeArg,
    /// Calibration inputs for int8: .npy [B, ...one input's shape...] (float32).
    #[arg(long, value_name = "FILE")]
    calib: Option<PathBuf>,
    /// How int8 activation ranges are picked from the calibration data.
    #[arg(long, value_enum, default_value_t = CalibMethod::Mse)]
    calib_method: CalibMethod,
    /// int8 input quantization: one scale for the whole tensor (TFLite) or one per input channel
    /// (folded into the first layer; for inputs with outlier channels).
    #[arg(long, value_enum, default_value_t = crate::int8::InputQuant::Auto)]
    input_quant: crate::int8::InputQuant,
    /// int8: after picking each activation's range on its own, search wider and narrower ranges
    /// that lower the int8 model's output error on the calibration set (kept only when both
    /// halves of the set agree).
    #[arg(long, value_enum, default_value_t = quantize::RangeSearch::Auto)]
    range_search: quantize::RangeSearch,
    /// int8 activation width: `auto` uses 16-bit activations (int8 weights, TFLite's 16x8 mode)
    /// for MobileVLM V2 when the calibration inputs are heavy-tailed, else int8.
    #[arg(long, value_enum, default_value_t = quantize::Activations::Auto)]
    activations: quantize::Activations,
    /// Where to write the blob.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The model blob (written by `ldp-quant convert`).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Input .npy (float32, PyTorch layout; see below).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Where to write the output .npy (float32, PyTorch layout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// Threads for the forward pass (default, or 0: all cores). The output does not depend on
    /// it, bit for bit. On a batch, when the machine has a second core, one more thread reads
    /// the next sample and another writes the last one while the pass runs.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Run on a board with the serve firmware instead of the host: a QEMU board (qemu-m4,
    /// qemu-m7, qemu-m3, qemu-a53, qemu-a76) or serial:/dev/ttyACM0[@baud] (firmware/README.md).
    #[arg(long, value_name = "BOARD")]
    device: Option<String>,
    /// With --device: also run on the host; int8 must match bit for bit, f32 within 1e-6
    /// relative L2 (f16: 1e-3, or 5e-3 where the device computes in f16; `device::float_bound`).
    #[arg(long, requires = "device")]
    compare: bool,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The model blob.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// The model blob to evaluate.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    #[command(flatten)]
    weights: WeightsArgs,
    /// Input .npy (float32, PyTorch layout), one sample or a batch.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
}

/// Parses `--grid HxW`.
pub fn parse_grid(s: &str) -> anyhow::Result<(usize, usize)> {
    let t = s.trim();
    let parts: Vec<&str> = t.split(['x', 'X', '×']).collect();
    let bad =
        || anyhow::anyhow!("--grid `{s}`: grid must be HxW with positive integers (e.g. 24x24)");
    match parts.as_slice() {
        [h, w] => {
            // `usize` parsing refuses signs and fractions: `-1x8` is reported here, not by clap.
            let h: usize = h.trim().parse().map_err(|_| bad())?;
            let w: usize = w.trim().parse().map_err(|_| bad())?;
            if h == 0 || w == 0 {
                bail!(
                    "--grid `{s}`: grid must be HxW with positive integers (both sides at least 1)"
                );
            }
            Ok((h, w))
        }
        _ => Err(bad()),
    }
}

/// Loads and validates a blob; the returned buffer must outlive the [`Model`].
pub fn load_blob(path: &Path) -> anyhow::Result<AlignedBytes> {
    let buf = AlignedBytes::read_file(path)?;
    Model::parse(buf.as_bytes())
        .map_err(|e| anyhow::anyhow!("`{}`: invalid model blob: {e}", path.display()))?;
    Ok(buf)
}

fn parse_model<'a>(path: &Path, buf: &'a AlignedBytes) -> anyhow::Result<Model<'a>> {
    Model::parse(buf.as_bytes())
        .map_err(|e| anyhow::anyhow!("`{}`: invalid model blob: {e}", path.display()))
}

pub(crate) fn progress(len: usize, what: &str) -> ProgressBar {
    if len > 1 && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(len as u64);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(what.to_string());
        pb
    } else {
        ProgressBar::hidden()
    }
}

/// Stdout that turns a closed pipe into an error instead of a panic.
fn out(s: &str) -> anyhow::Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

fn scratch_for(model: &Model<'_>) -> AlignedBytes {
    AlignedBytes::zeroed(model.scratch_bytes())
}

/// Runs a blob on channels-last samples.
pub fn run_samples(
    model: &Model<'_>,
    samples: &[Vec<f32>],
    what: &str,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut scratch = scratch_for(model);
    let pb = progress(samples.len(), what);
    let mut outs = Vec::with_capacity(samples.len());
    for (i, x) in samples.iter().enumerate() {
        let mut y = vec![0.0f32; model.output_len()];
        model
            .forward(x, &mut y, scratch.as_mut_bytes())
            .map_err(|e| anyhow::anyhow!("forward pass failed on sample {i}: {e}"))?;
        outs.push(y);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(outs)
}

fn convert(a: ConvertArgs) -> anyhow::Result<()> {
    let mut inputs = vec![("--weights", a.weights.weights.as_path())];
    if let Some(c) = &a.calib {
        inputs.push(("--calib", c.as_path()));
    }
    fileio::refuse_overwrite(&a.output, &inputs)?;
    let given = a.grid.as_deref().map(parse_grid).transpose()?;
    let arch = a.weights.arch.map(Arch::from);
    let found = import_path(&a.weights.weights, arch, a.weights.prefix.as_deref())?;
    let (h, w) = match (given, &found.grid) {
        (Some(g), Some((fg, from))) if g != *fg && found.grid_strict => bail!(
            "--grid {}x{} but the weights say {}x{} ({from}); drop --grid or fix it",
            g.0,
            g.1,
            fg.0,
            fg.1
        ),
        (Some(g), Some((fg, from))) => {
            if g != *fg {
                eprintln!(
                    "note: --grid {}x{} overrides {}x{} ({from})",
                    g.0, g.1, fg.0, fg.1
                );
            }
            g
        }
        (Some(g), None) => g,
        (None, Some((fg, _))) => *fg,
        (None, None) => bail!(
            "--grid is required: `{}` does not state the input grid (pass e.g. --grid 24x24 for \
             MobileVLM's 576 tokens, or the image size HxW for ldp)",
            a.weights.weights.display()
        ),
    };
    if matches!(found.imported.arch, Arch::MobileVlmV1 | Arch::MobileVlmV2) && h != w {
        bail!(
            "{} takes a square token grid (N = h*h tokens), got --grid {h}x{w}; use e.g. --grid {h}x{h}",
            found.imported.arch.name()
        );
    }
    out(&found.report())?;
    let imp = found.imported;
    let prefix = imp.prefix.clone();
    let src_dtypes = imp.source_dtypes.join("/");
    let model = FloatModel::from_imported(imp, h, w)?;
    let config = model.config();
    let dtype = DType::from(a.dtype);
    let blob = match dtype {
        DType::F32 | DType::F16 => {
            if a.calib.is_some() {
                eprintln!("note: --calib is only used with --dtype int8; ignored");
            }
            write::float_blob(&model, dtype)?
        }
        DType::Int8 => {
            let calib = match &a.calib {
                Some(p) => {
                    let set = CalibSet::from_npy(p, &config)?;
                    let d = calib_check::diagnose(&set);
                    if let Some(why) = d.refuse {
                        bail!("`{}`: unusable calibration set: {why}", p.display());
                    }
                    for w in &d.warnings {
                        eprintln!("warning: `{}`: {w}", p.display());
                    }
                    Some(set)
                }
                None => None,
            };
            let opts = Int8Options {
                calib_method: a.calib_method,
                input_quant: a.input_quant,
                range_search: a.range_search,
                activations: a.activations,
            };
            quantize::int8(&model, calib.as_ref(), &opts)?
        }
    };
    write::verify(&blob)?;
    fileio::write_atomic(&a.output, &blob)?;
    let (c_in, c_out) = config.channels();
    let (gh, gw) = config.input_grid();
    out(&format!(
        "wrote {}: {} {}, c_in {c_in}, c_out {c_out}, grid {gh}x{gw}, {} bytes (weights: {}, {}, {})\n",
        a.output.display(),
        config.arch().name(),
        dtype.name(),
        blob.len(),
        a.weights.weights.display(),
        if prefix.is_empty() {
            "no prefix".to_string()
        } else {
            format!("prefix `{prefix}`")
        },
        src_dtypes
    ))
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    fileio::refuse_overwrite(
        &a.output,
        &[
            ("--model", a.model.as_path()),
            ("--input", a.input.as_path()),
        ],
    )?;
    ldp_core::kernels::threads::set_threads(a.threads.unwrap_or(0));
    let buf = load_blob(&a.model)?;
    let model = parse_model(&a.model, &buf)?;
    let config = model.config();
    let in_shape: Vec<usize>;
    let batch_n: usize;
    if let Some(d) = &a.device {
        let x = npy::read_f32(&a.input)?;
        in_shape = x.shape.clone();
        if let Some(j) = x.data.iter().position(|v| !v.is_finite()) {
            bail!(
                "input `{}` has a non-finite value ({}) at flat index {j} (in the file's order, shape {}); the model needs finite inputs",
                a.input.display(),
                x.data[j],
                x.shape_str()
            );
        }
        let samples = split_batch(&x, &config, &format!("input `{}`", a.input.display()), true)?;
        batch_n = samples.len();
        let outs = crate::device::run_cli(d, buf.as_bytes(), &model, &samples, a.compare)?;
        let y = join_batch(&outs, &config)?;
        npy::write_f32(&a.output, &y.shape, &y.data)?;
    } else {
        // Streamed: the input is read one sample at a time into a reused buffer, converted to
        // channels-last, run, converted back and appended to the output file; one scratch arena.
        let mut reader = npy::open_f32(&a.input)?;
        in_shape = reader.shape.clone();
        let x = npy::Array {
            shape: reader.shape.clone(),
            data: Vec::new(),
        };
        let what = format!("input `{}`", a.input.display());
        let batch = crate::layout::check_batch(&x, &config, &what, true)?;
        batch_n = batch;
        let (n_in, n_out) = (model.input_len(), model.output_len());
        let mut shape = vec![batch];
        shape.extend(output_sample_shape(&config));
        let mut writer = npy::create_f32(&a.output, &shape)?;
        let mut scratch = scratch_for(&model);
        // `ldp` takes and gives channels-first (NCHW) samples, the token models channels-last
        // ones as they are. An `ldp` int8 blob with an int8 input quantizes the file's values
        // into their channels-last places (`quant::quantize_input_nchw_part`), and transposes
        // its int8 output, a quarter of the f32 bytes (`quant::dequantize_output_nchw`).
        let ldp = matches!(config, ModelConfig::Ldp(_));
        let int8_nchw = ldp
            && model.dtype() == DType::Int8
            && !ldp_core::quant::is_x16(&model)
            && !ldp_core::quant::a16::is_a16(&model);
        // A sample as the forward pass takes it: `f`, the channels-last f32 input (a token
        // sample as read, an `ldp` sample converted from channels-first), or `q`, the int8
        // input of an `int8_nchw` blob.
        struct Sample {
            f: Vec<f32>,
            q: Vec<i8>,
        }
        let new_sample = || Sample {
            f: if int8_nchw {
                Vec::new()
            } else {
                vec![0.0f32; n_in]
            },
            q: if int8_nchw {
                vec![0i8; n_in]
            } else {
                Vec::new()
            },
        };
        let (h, w) = config.input_grid();
        let hw = (h * w).max(1);
        let c_in = n_in / hw;
        // An `ldp` sample is read in channel groups of about `GROUP_BYTES`, each converted to
        // channels-last (`tensor::nchw_to_nhwc_part`) or quantized (`quantize_input_nchw_part`)
        // into its places while it is still in cache: the same bits as the whole sample at once.
        let g = (GROUP_BYTES / 4 / hw).clamp(1, c_in.max(1));
        let chunk_len = if ldp { g * hw } else { 0 };
        let in_shape_str = shape_str(&reader.shape);
        let read_ctx = || format!("`{}`", a.input.display());
        // Reads sample `i` into `s`, through `chunk` (`chunk_len` values).
        let prepare = |reader: &mut npy::F32Reader,
                       chunk: &mut [f32],
                       i: usize,
                       s: &mut Sample|
         -> anyhow::Result<()> {
            if !ldp {
                return reader.read_into(&mut s.f).with_context(read_ctx);
            }
            let mut ch0 = 0;
            while ch0 < c_in {
                let part = &mut chunk[..g.min(c_in - ch0) * hw];
                reader.read_into(part).with_context(read_ctx)?;
                if int8_nchw {
                    ldp_core::quant::quantize_input_nchw_part(&model, part, ch0, &mut s.q)
                        .map_err(|e| match e {
                            ldp_core::Error::NonFiniteInput { index } => non_finite_input(
                                &a.input,
                                part.get(index.wrapping_sub(ch0 * hw))
                                    .copied()
                                    .unwrap_or(f32::NAN),
                                i * n_in + index,
                                &in_shape_str,
                            ),
                            e => anyhow::anyhow!("forward pass failed on sample {i}: {e}"),
                        })?;
                } else {
                    ldp_core::tensor::nchw_to_nhwc_part(part, &mut s.f, c_in, h, w, ch0)
                        .map_err(|e| anyhow::anyhow!("internal: {e}"))?;
                }
                ch0 += part.len() / hw;
            }
            Ok(())
        };
        // A sample's output as the forward pass gives it: `f`, f32 (channels-last for `ldp`,
        // as written for the token models), or `q`, the int8 output of an `int8_nchw` blob.
        struct Output {
            f: Vec<f32>,
            q: Vec<i8>,
        }
        let new_output = || Output {
            f: if int8_nchw {
                Vec::new()
            } else {
                vec![0.0f32; n_out]
            },
            q: if int8_nchw {
                vec![0i8; n_out]
            } else {
                Vec::new()
            },
        };
        let pb = progress(batch, "run");
        // Runs sample `i`, already prepared, into `o`.
        let mut compute = |i: usize, s: &Sample, o: &mut Output| -> anyhow::Result<()> {
            // `Model::forward` checks its channels-last input itself: a token sample is in file
            // order, so its index is the file's; an `ldp` sample's channels-last index
            // `p·c + ch` is `ch·h·w + p` in the file. The int8 `ldp` path refused non-finite
            // values when it quantized them (`prepare`).
            let failed = |e: ldp_core::Error| match e {
                ldp_core::Error::NonFiniteInput { index } => {
                    let file_index = if ldp {
                        (index % c_in.max(1)) * hw + index / c_in.max(1)
                    } else {
                        index
                    };
                    non_finite_input(
                        &a.input,
                        s.f.get(index).copied().unwrap_or(f32::NAN),
                        i * n_in + file_index,
                        &in_shape_str,
                    )
                }
                e => anyhow::anyhow!("forward pass failed on sample {i}: {e}"),
            };
            if int8_nchw {
                ldp_core::quant::forward_i8(&model, &s.q, &mut o.q, scratch.as_mut_bytes())
                    .map_err(failed)
            } else {
                model
                    .forward(&s.f, &mut o.f, scratch.as_mut_bytes())
                    .map_err(failed)
            }
        };
        // Converts sample `i`'s output back to the file's layout and appends it.
        let mut yt = vec![0.0f32; if ldp { n_out } else { 0 }];
        let mut ytmp = vec![0i8; if int8_nchw { n_out } else { 0 }];
        let wr = &mut writer;
        let mut finish = |i: usize, o: &Output| -> anyhow::Result<()> {
            if int8_nchw {
                ldp_core::quant::dequantize_output_nchw(&model, &o.q, &mut yt, &mut ytmp)
                    .map_err(|e| anyhow::anyhow!("forward pass failed on sample {i}: {e}"))?;
                wr.write(&yt)?;
            } else if ldp {
                crate::layout::sample_to_torch(&o.f, &config, &mut yt)?;
                wr.write(&yt)?;
            } else {
                wr.write(&o.f)?;
            }
            pb.inc(1);
            Ok(())
        };
        // The reader and writer threads need a second core: `--threads 2` or more, or one
        // compute thread on a machine with a core to spare. Reading and converting the next
        // sample, and converting and writing the one before, then overlap the forward pass
        // instead of adding to it.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = ldp_core::kernels::threads::threads();
        if batch < 2 || (threads < 2 && cores < 2) {
            let mut chunk = vec![0.0f32; chunk_len];
            let (mut s, mut o) = (new_sample(), new_output());
            for i in 0..batch {
                prepare(&mut reader, &mut chunk, i, &mut s)?;
                compute(i, &s, &mut o)?;
                finish(i, &o)?;
            }
        } else {
            // Three stages: a reader thread prepares sample i + 1 while this thread runs sample
            // i and a writer thread writes sample i − 1 (two samples and two outputs passed back
            // and forth). Samples are written in order.
            std::thread::scope(|sc| -> anyhow::Result<()> {
                let (full_tx, full_rx) = std::sync::mpsc::sync_channel(1);
                let (free_tx, free_rx) = std::sync::mpsc::channel::<Sample>();
                free_tx.send(new_sample()).ok();
                free_tx.send(new_sample()).ok();
                let reader = &mut reader;
                let prepare = &prepare;
                sc.spawn(move || {
                    let mut chunk = vec![0.0f32; chunk_len];
                    for i in 0..batch {
                        let Ok(mut b) = free_rx.recv() else { return };
                        let r = prepare(reader, &mut chunk, i, &mut b).map(|()| b);
                        let failed = r.is_err();
                        if full_tx.send(r).is_err() || failed {
                            return;
                        }
                    }
                });
                let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<(usize, Output)>(1);
                let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Output>();
                spare_tx.send(new_output()).ok();
                spare_tx.send(new_output()).ok();
                let finish = &mut finish;
                let written = sc.spawn(move || -> anyhow::Result<()> {
                    for (i, o) in done_rx {
                        finish(i, &o)?;
                        if spare_tx.send(o).is_err() {
                            break;
                        }
                    }
                    Ok(())
                });
                let mut run_all = || -> anyhow::Result<()> {
                    for i in 0..batch {
                        let b = full_rx
                            .recv()
                            .context("internal: the reader thread stopped")??;
                        // No spare output: the writer stopped, its error is reported below.
                        let Ok(mut o) = spare_rx.recv() else {
                            return Ok(());
                        };
                        compute(i, &b, &mut o)?;
                        free_tx.send(b).ok();
                        if done_tx.send((i, o)).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(())
                };
                let ran = run_all();
                drop(done_tx);
                let wrote = written
                    .join()
                    .map_err(|_| anyhow::anyhow!("internal: the writer thread panicked"))?;
                ran.and(wrote)
            })?;
        }
        pb.finish_and_clear();
        writer.finish()?;
    }
    let mut out_shape = vec![batch_n];
    out_shape.extend(output_sample_shape(&config));
    out(&format!(
        "wrote {}: {} -> {}\n",
        a.output.display(),
        shape_str(&in_shape),
        shape_str(&out_shape)
    ))
}

/// Bytes of f32 input `run` reads at a time for an `ldp` sample: a channel group that stays in
/// L2 while it is converted to channels-last or quantized.
const GROUP_BYTES: usize = 256 << 10;

/// The error for a non-finite input value at `index` (flat, in the file's order).
fn non_finite_input(path: &Path, value: f32, index: usize, shape: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "input `{}` has a non-finite value ({value}) at flat index {index} (in the file's order, shape {shape}); the model needs finite inputs",
        path.display(),
    )
}

fn config_summary(config: &ModelConfig) -> String {
    match config {
        ModelConfig::MobileVlmV1(c) => format!(", squeeze width {}", c.squeeze),
        _ => String::new(),
    }
}

/// Per-layer quantization parameters of an int8 blob, for `inspect`: the input's quantization,
/// every `quant.meta` entry (zero points with their scales, conv shift words decoded) and the
/// range of each conv's per-channel multipliers. `None` for other dtypes.
fn int8_params_section(model: &Model<'_>) -> Option<String> {
    if model.dtype() != ldp_core::DType::Int8 {
        return None;
    }
    let meta = model.i32s(model.find("quant.meta", "")?).ok()?;
    let scales = model.f32s(model.find("quant.scales", "")?).ok()?;
    let in_scale = model.f32s(model.find("input.scale", "")?).ok()?;
    let x16 = ldp_core::quant::is_x16(model);
    let in_zero = if x16 {
        &[0i8][..]
    } else {
        model.i8s(model.find("input.zero", "")?).ok()?
    };
    let a16 = ldp_core::quant::a16::is_a16(model);
    let mut s = String::from(if a16 {
        "quantization parameters (int8 weights, 16-bit symmetric activations: TFLite's 16x8 mode; real = scale * q):\n"
    } else {
        "quantization parameters (int8, TFLite scheme; real = scale * (q - zero)):\n"
    });
    if x16 {
        let limit = model
            .i32s(model.find("input.limit", "")?)
            .ok()?
            .first()
            .copied()?;
        s.push_str(&format!(
            "  input: 16-bit, per tensor, scale {:.6e}, zero 0, saturated at +-{limit} \
             (the first conv reads it; the rest is int8)\n",
            in_scale.first().copied()?
        ));
    } else if in_scale.len() == 1 {
        s.push_str(&format!(
            "  input: per tensor, scale {:.6e}, zero {}\n",
            in_scale[0], in_zero[0]
        ));
    } else {
        let (lo, hi) = in_scale
            .iter()
            .fold((f32::INFINITY, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
        s.push_str(&format!(
            "  input: per channel ({} channels, folded into the first layer), scale {lo:.3e} .. {hi:.3e}\n",
            in_scale.len()
        ));
    }
    s.push_str("  activations (zero point, scale) and layer constants (quant.meta):\n");
    let mut wide_at: Vec<usize> = Vec::new();
    // 16-bit blobs in the per-node form (graphs, V1) keep saturations where int8 keeps the
    // input's, outputs' and hidden vectors' zero points.
    let per_node16 = a16 && model.arch() != ldp_core::Arch::MobileVlmV2;
    let (names, conv_shifts): (Vec<String>, Vec<usize>) =
        match ldp_core::graph::definition(model.arch()) {
            // The layout follows the nodes (`ldp_core::graph::meta::node`); V2's 16-bit blobs
            // append the saturations and GELU parameters (`ldp_core::graph::a16::appended`).
            Some(g) => {
                use ldp_core::graph::a16::appended;
                use ldp_core::graph::meta;
                let nodes = g.nodes;
                let appended = a16 && model.arch() == ldp_core::Arch::MobileVlmV2;
                let total = if appended {
                    appended::len(nodes)
                } else {
                    meta::total(nodes)
                };
                let mut names = vec![String::new(); total];
                names[meta::Z_X] = "Z_X".to_string();
                if appended {
                    names[appended::q_x(nodes)] = "Q_X".to_string();
                    for (i, nd) in nodes.iter().enumerate() {
                        let k = appended::gelu(nodes, i);
                        if k != 0 {
                            for (j, p) in ["Q", "GELU_PM", "GELU_PS", "GELU_IM", "GELU_IS"]
                                .iter()
                                .enumerate()
                            {
                                names[k + j] = format!("{}.{p}", nd.name);
                            }
                        }
                    }
                }
                for (i, nd) in nodes.iter().enumerate() {
                    let m = meta::node(nodes, i);
                    if m.len == 0 {
                        continue; // a pool: its output keeps its input's entries
                    }
                    let n = nd.name;
                    names[m.shift] = format!("{n}.SHIFT");
                    if m.eps != 0 {
                        names[m.eps] = format!("{n}.EPS");
                    }
                    names[m.pre] = format!("{n}.Z_PRE");
                    names[m.out] = format!("{n}.Z_OUT");
                    if m.add != 0 {
                        names[m.add] = format!("{n}.ADD_MA");
                        names[m.add + 1] = format!("{n}.ADD_MB");
                        names[m.add + 2] = format!("{n}.ADD_SHIFT");
                        names[m.add + 3] = format!("{n}.Z_SUM");
                    }
                    if m.se != 0 {
                        names[m.shift] = format!("{n}.FC1_SHIFT");
                        names[m.pre] = format!("{n}.Z_HID");
                        names[m.se] = format!("{n}.FC2_SHIFT");
                        names[m.se + 1] = format!("{n}.Z_GATE");
                        names[m.se + 2] = format!("{n}.MULT");
                        names[m.se + 3] = format!("{n}.MULT_SHIFT");
                    }
                    if ldp_core::graph::plan::wide(nodes, i) {
                        wide_at.push(m.out);
                    }
                }
                (names, g.conv_shifts.to_vec())
            }
            None => (Vec::new(), Vec::new()),
        };
    for (i, (name, v)) in names.iter().zip(meta).enumerate() {
        let tail = name.rsplit('.').next().unwrap_or(name);
        if conv_shifts.contains(&i) {
            let (shift, bias_shift) = ldp_core::quant::specs::conv_shifts(*v);
            s.push_str(&format!(
                "    {name:<30} {shift}  (bias shift {bias_shift})\n"
            ));
        } else if tail.starts_with("Z_") {
            let wide = if a16 {
                "  (16-bit)"
            } else if wide_at.contains(&i) {
                "  (16-bit LayerNorm input)"
            } else {
                ""
            };
            let sat = per_node16 && matches!(tail, "Z_X" | "Z_OUT" | "Z_HID");
            s.push_str(&format!(
                "    {name:<30} {} {v:>5}  scale {:.6e}{wide}\n",
                if sat { "sat " } else { "zero" },
                scales.get(i).copied().unwrap_or(0.0)
            ));
        } else {
            s.push_str(&format!("    {name:<30} {v}\n"));
        }
    }
    s.push_str("  per-channel requantization multipliers (u8 mantissa / 2^shift):\n");
    for (i, spec) in model.specs().iter().enumerate() {
        let key = spec.to_string();
        if let Some(layer) = key.strip_suffix(".mult") {
            if let Ok(m) = model.u8s(i) {
                let (lo, hi) = m
                    .iter()
                    .fold((u8::MAX, u8::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                s.push_str(&format!(
                    "    {layer:<24} {} channels, mantissa {lo} .. {hi}\n",
                    m.len()
                ));
            }
        }
    }
    Some(s)
}

/// RAM of whole-tensor execution against streaming execution (`ldp_core::stream`), for
/// `inspect`. Whole-tensor: input, output and scratch (int8 input/output for int8 blobs, f32
/// otherwise); streaming: the scratch arena only (input and output are streamed).
fn streaming_ram_section(config: &ModelConfig, dtype: DType) -> String {
    use ldp_core::stream;
    let macs = config.macs();
    let extra = |m: usize| 100.0 * (m as f64 / macs.max(1) as f64 - 1.0);
    let mut s = format!(
        "RAM whole-tensor: {} bytes (input, output and scratch)\n",
        stream::whole_tensor_bytes(config, dtype)
    );
    match config {
        ModelConfig::Ldp(c) => {
            s.push_str("RAM streaming:    (ldp_core::stream, column strips of output columns)\n");
            let w2 = c.w2();
            let mut strips = vec![stream::FULL_WIDTH];
            strips.extend([32, 16, 8, 4, 2, 1].into_iter().filter(|&k| k < w2));
            for k in strips {
                let n = stream::strip_count(w2, k);
                let m = stream::macs(config, k);
                s.push_str(&format!(
                    "  {n:>3} strip(s) of <= {:>3} columns: {:>9} bytes, {m} MACs (+{:.1}% halo recompute)\n",
                    w2.div_ceil(n),
                    stream::scratch_bytes(config, dtype, k),
                    extra(m)
                ));
            }
        }
        ModelConfig::MobileVlmV1(_) => {
            let m = stream::macs(config, stream::FULL_WIDTH);
            s.push_str(&format!(
                "RAM streaming:    {} bytes (ldp_core::stream, three passes for the two SE means: {m} MACs, +{:.1}%)\n",
                stream::scratch_bytes(config, dtype, stream::FULL_WIDTH),
                extra(m)
            ));
        }
        ModelConfig::MobileVlmV2(_) | ModelConfig::Graph(_) => {
            s.push_str(&format!(
                "RAM streaming:    {} bytes (ldp_core::stream, whole rows, no recompute)\n",
                stream::scratch_bytes(config, dtype, stream::FULL_WIDTH)
            ));
        }
    }
    s
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let buf = load_blob(&a.model)?;
    let model = parse_model(&a.model, &buf)?;
    let config = model.config();
    let (c_in, c_out) = config.channels();
    let (h, w) = config.input_grid();
    let mut in_shape = vec![1];
    in_shape.extend(crate::layout::input_sample_shape(&config));
    let mut out_shape = vec![1];
    out_shape.extend(output_sample_shape(&config));
    let layout = match config {
        ModelConfig::Ldp(_) => "NCHW",
        _ => "tokens [1, N, C]",
    };
    let mut s = String::new();
    s.push_str(&format!("model:        {}\n", a.model.display()));
    s.push_str(&format!("architecture: {}\n", model.arch().name()));
    s.push_str(&format!("dtype:        {}\n", model.dtype().name()));
    s.push_str(&format!(
        "channels:     c_in {c_in}, c_out {c_out}{}\n",
        config_summary(&config)
    ));
    s.push_str(&format!("input grid:   {h}x{w}\n"));
    s.push_str(&format!(
        "input:        {} ({layout})\n",
        shape_str(&in_shape)
    ));
    s.push_str(&format!(
        "output:       {} ({layout})\n",
        shape_str(&out_shape)
    ));
    s.push_str(&format!("parameters:   {}\n", config.param_count()));
    s.push_str(&format!("MACs:         {}\n", config.macs()));
    s.push_str(&format!("blob size:    {} bytes\n", model.bytes().len()));
    s.push_str(&format!(
        "scratch RAM:  {} bytes (plus input {} and output {} bytes as f32)\n",
        model.scratch_bytes(),
        4 * config.input_len(),
        4 * config.output_len()
    ));
    if ldp_core::quant::a16::is_a16(&model) {
        s.push_str(
            "streaming: not available for 16-bit-activation blobs yet (whole-tensor only; \
             convert with --activations int8 to stream)\n",
        );
    } else if ldp_core::quant::is_x16(&model) {
        let need = ldp_core::stream::scratch_bytes_x16(&config, ldp_core::stream::FULL_WIDTH);
        if need > 0 {
            s.push_str(&format!(
                "RAM streaming:    {need} bytes (ldp_core::stream::forward_x16: 16-bit input \
                 rows, whole rows, no recompute)\n"
            ));
        } else {
            s.push_str(
                "streaming: not available for ldp/V1 blobs with a 16-bit input yet (whole-tensor \
                 only; convert with --input-quant per-tensor to stream)\n",
            );
        }
    } else {
        s.push_str(&streaming_ram_section(&config, model.dtype()));
    }
    s.push_str(&format!("tensors:      {}\n", model.tensor_count()));
    let rows: Vec<(String, String, String, String, String)> = (0..model.tensor_count())
        .filter_map(|i| Some((model.tensor(i)?, model.tensor_dims(i)?)))
        .map(|((spec, e, data), dims)| {
            let dims: Vec<usize> = dims[..e.rank as usize]
                .iter()
                .map(|&d| d as usize)
                .collect();
            (
                spec.to_string(),
                format!("{:?}", e.elem).to_lowercase(),
                shape_str(&dims),
                data.len().to_string(),
                e.offset.to_string(),
            )
        })
        .collect();
    let wn = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    let ws = rows.iter().map(|r| r.2.len()).max().unwrap_or(5).max(5);
    s.push_str(&format!(
        "  {:>3}  {:<wn$}  {:<4}  {:<ws$}  {:>10}  {:>10}\n",
        "#", "name", "type", "shape", "bytes", "offset"
    ));
    for (i, r) in rows.iter().enumerate() {
        s.push_str(&format!(
            "  {:>3}  {:<wn$}  {:<4}  {:<ws$}  {:>10}  {:>10}\n",
            i, r.0, r.1, r.2, r.3, r.4
        ));
    }
    if model.dtype() == DType::Int8 {
        match int8_params_section(&model) {
            Some(sec) => s.push_str(&sec),
            None => s.push_str(
                "quantization parameters: not readable (an input.* or quant.* entry is \
                 missing or malformed)\n",
            ),
        }
    }
    out(&s)
}

/// Per-layer error metrics for `eval`.
///
/// Runs the int8 blob and the f32 reference layer by layer on `samples` (channels-last) and
/// returns a table (layer, rel L2, cosine, max abs) of every quantized activation (int8, or
/// 16-bit in a blob with 16-bit activations) against its f32 twin. Only int8 blobs have
/// per-layer data (`None` otherwise).
fn per_layer_report(
    model: &Model<'_>,
    reference: &FloatModel,
    samples: &[Vec<f32>],
) -> anyhow::Result<Option<String>> {
    if model.dtype() != ldp_core::DType::Int8 {
        return Ok(None);
    }
    let width = if ldp_core::quant::a16::is_a16(model) {
        "16-bit"
    } else {
        "int8"
    };
    // name -> (int8 dequantized, f32 reference), concatenated over samples, in graph order.
    let mut order: Vec<&'static str> = Vec::new();
    let mut acc: std::collections::HashMap<&'static str, (Vec<f64>, Vec<f64>)> = Default::default();
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let mut out = vec![0.0f32; model.output_len()];
    for x in samples {
        let refs: std::collections::HashMap<&'static str, Vec<f32>> =
            crate::int8::intermediates(reference, x)?
                .into_iter()
                .collect();
        let mut seen: Vec<(&'static str, Vec<f64>)> = Vec::new();
        let mut obs = |name: &'static str, q: ldp_core::quant::Traced<'_>, s: f32| {
            seen.push((name, (0..q.len()).map(|i| q.real(i, s)).collect()));
        };
        ldp_core::quant::forward_f32_traced(model, x, &mut out, &mut scratch, Some(&mut obs))
            .map_err(|e| anyhow::anyhow!("running the blob: {e}"))?;
        for (name, v) in seen {
            let Some(r) = refs.get(name) else { continue };
            if r.len() != v.len() {
                continue;
            }
            if !acc.contains_key(name) {
                order.push(name);
            }
            let e = acc.entry(name).or_default();
            e.0.extend(v);
            e.1.extend(r.iter().map(|&f| f as f64));
        }
    }
    let mut s = format!("per layer ({width} activation vs f32 reference):\n");
    s.push_str(&format!(
        "  {:<10} {:>12} {:>10} {:>12}\n",
        "layer", "rel_l2", "cosine", "max_abs"
    ));
    for name in order {
        let (q, r) = &acc[name];
        let m = crate::metrics::compare(q, r);
        s.push_str(&format!(
            "  {:<10} {:>12.4e} {:>10.6} {:>12.4e}\n",
            name, m.rel_l2, m.cosine, m.max_abs
        ));
    }
    Ok(Some(s))
}

fn fmt_metrics(m: &Metrics) -> String {
    format!(
        "rel_l2 = {:.3e}, cosine = {:.8}, max_abs = {:.3e}",
        m.rel_l2, m.cosine, m.max_abs
    )
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let buf = load_blob(&a.model)?;
    let model = parse_model(&a.model, &buf)?;
    let config = model.config();
    // The blob says which architecture the weights must be; --arch may only confirm it.
    let arch = match a.weights.arch.map(Arch::from) {
        Some(ar) if ar != model.arch() => bail!(
            "--arch {} but `{}` holds a {} model",
            ar.name(),
            a.model.display(),
            model.arch().name()
        ),
        Some(ar) => ar,
        None => model.arch(),
    };
    let imp = import_file(&a.weights.weights, Some(arch), a.weights.prefix.as_deref())?;
    let (h, w) = config.input_grid();
    let reference = FloatModel::from_imported(imp, h, w)?;
    if reference.config() != config {
        let (ci, co) = reference.config().channels();
        let (bi, bo) = config.channels();
        bail!(
            "the weights (c_in {ci}, c_out {co}{}) do not match the blob (c_in {bi}, c_out {bo}{}); \
             pass the checkpoint the blob was converted from",
            config_summary(&reference.config()),
            config_summary(&config)
        );
    }
    let x = npy::read_f32(&a.input)?;
    let samples = split_batch(&x, &config, &format!("input `{}`", a.input.display()), true)?;
    let pb = progress(samples.len(), "eval");
    let mut scratch = scratch_for(&model);
    let mut ref_scratch = Vec::new();
    let (mut all_y, mut all_r) = (Vec::new(), Vec::new());
    let mut s = format!(
        "model: {} ({} {}) vs f32 reference from {}; input {}\n",
        a.model.display(),
        model.arch().name(),
        model.dtype().name(),
        a.weights.weights.display(),
        x.shape_str()
    );
    for (i, xs) in samples.iter().enumerate() {
        let mut y = vec![0.0f32; config.output_len()];
        model
            .forward(xs, &mut y, scratch.as_mut_bytes())
            .map_err(|e| anyhow::anyhow!("forward pass failed on sample {i}: {e}"))?;
        let mut r = vec![0.0f32; config.output_len()];
        reference.forward_with(xs, &mut r, &mut ref_scratch)?;
        let m = compare(&y, &r);
        s.push_str(&format!("sample {i}: {}\n", fmt_metrics(&m)));
        all_y.extend_from_slice(&y);
        all_r.extend_from_slice(&r);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let m = compare(&all_y, &all_r);
    s.push_str(&format!(
        "overall ({} sample{}): {}\n",
        samples.len(),
        if samples.len() == 1 { "" } else { "s" },
        fmt_metrics(&m)
    ));
    if let Some(t) = per_layer_report(&model, &reference, &samples)? {
        s.push_str(&t);
    }
    out(&s)
}

/// Runs the command line given in `args` (including the program name).
pub fn run_cli<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return Err(CliUsage(e).into()),
    };
    match cli.command {
        Command::Convert(a) => convert(a),
        Command::Run(a) => run(a),
        Command::Inspect(a) => inspect(a),
        Command::Eval(a) => eval(a),
    }
}

/// A clap parse error (or a request for help/version), kept so `main` can render it.
#[derive(Debug)]
pub struct CliUsage(pub clap::Error);

impl std::fmt::Display for CliUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", one_line_usage(&self.0))
    }
}

impl std::error::Error for CliUsage {}

/// Renders a clap error as one line: the message, the usage, and where to find help.
fn one_line_usage(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut msg = Vec::new();
    let mut usage = None;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with("For more information") {
            continue;
        }
        if let Some(u) = l.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
            continue;
        }
        if l.starts_with("tip:") {
            msg.push(format!("({l})"));
            continue;
        }
        msg.push(l.strip_prefix("error:").unwrap_or(l).trim().to_string());
    }
    let mut s = msg.join(" ");
    if let Some(u) = usage {
        s.push_str(&format!("; usage: {u}"));
    }
    s.push_str("; see `ldp-quant --help`");
    s
}

/// The process entry point: runs the CLI, prints `error: …` as one line on failure.
pub fn main() -> std::process::ExitCode {
    match run_cli(std::env::args_os()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            if let Some(CliUsage(e)) = err.downcast_ref::<CliUsage>() {
                use clap::error::ErrorKind;
                if matches!(
                    e.kind(),
                    ErrorKind::DisplayHelp
                        | ErrorKind::DisplayVersion
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) {
                    let _ = e.print();
                    return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        std::process::ExitCode::from(2)
                    } else {
                        std::process::ExitCode::SUCCESS
                    };
                }
                eprintln!("error: {}", one_line_usage(e));
                return std::process::ExitCode::from(2);
            }
            let msg = format!("{err:#}").replace(['\n', '\r'], " ");
            eprintln!("error: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
