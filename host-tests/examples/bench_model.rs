//! Times `ldp-core`'s forward pass on a PyTorch checkpoint, for `tools/bench/compare.py`.
//!
//! ```sh
//! cargo run --release -p host-tests --example bench_model -- \
//!     --weights W.safetensors --grid 24x24 --dtype f32 --input x.npy [--calib c.npy] \
//!     [--output y.npy] [--runs 10] [--warmup 2] [--activations auto|int8|int16] \
//!     [--threads N] [--blob-out model.bin]
//! cargo run --release -p host-tests --example bench_model -- \
//!     --blob model.bin --input x.npy [--output y.npy] [--runs 10] [--warmup 2] [--threads N]
//! ```
//!
//! Loads the weights with `ldp-quant`'s importer, builds an f32/f16 blob (or an int8 blob
//! calibrated on `--calib`, a PyTorch-layout batch), runs the first sample of `--input` `warmup`
//! times untimed then `runs` times, and prints one line of JSON: the median and minimum wall
//! time and the median and minimum thread CPU time per run, in milliseconds. `--output` writes
//! the output in PyTorch layout (for an accuracy check against the reference). Single thread
//! unless `--threads N` (the pointwise layers on `N` threads, `ldp_quant::set_threads`; the
//! thread CPU time then counts the calling thread only: use the wall time). `--blob-out` also
//! writes the blob (to time `ldp-quant run` on the same model); `--blob` times a blob written
//! before, skipping the import and quantization (`tools/bench/compare.py --rounds` times each
//! engine in several short rounds, in turn). The JSON also lists every run's wall and thread CPU
//! time (`wall_ms`, `cpu_ms`). The environment variable
//! `LDP_X86=avx2` runs the AVX2 kernels on an AVX-512 machine (`kernels::cpu::x86_level`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use ldp_core::{DType, Model};
use ldp_quant::calib::CalibSet;
use ldp_quant::quantize::{Activations, Int8Options};
use ldp_quant::{layout, npy, AlignedBytes, FloatModel};

fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported
    // on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The x86 kernel level the dispatchers use (`-` elsewhere), with `+Avx2Gemm` where the level
/// has AVX-512 but the f32/f16 GEMM is the AVX2 one (a CPU that splits 512-bit FMAs, such as
/// AMD Zen 4: `cpu::x86_split_512_fma`).
fn x86_level() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use ldp_core::kernels::cpu;
        let l = cpu::x86_level();
        if l >= cpu::X86Level::Avx512 && !cpu::x86_avx512_float() {
            format!("{l:?}+Avx2Gemm")
        } else {
            format!("{l:?}")
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "-".to_string()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn main() -> anyhow::Result<()> {
    let mut weights = None;
    let mut grid = None;
    let mut dtype = "f32".to_string();
    let mut input = None;
    let mut calib = None;
    let mut activations = Activations::Auto;
    let mut output = None;
    let mut runs = 10usize;
    let mut warmup = 2usize;
    let mut threads = 1usize;
    let mut blob_out = None;
    let mut blob_in = None;
    // Options that shape the blob `--blob` reads (refused beside it).
    let mut build_opts: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        if matches!(
            a.as_str(),
            "--weights" | "--grid" | "--dtype" | "--calib" | "--activations" | "--blob-out"
        ) {
            build_opts.push(a.clone());
        }
        match a.as_str() {
            "--weights" => weights = Some(PathBuf::from(val()?)),
            "--grid" => grid = Some(ldp_quant::cli::parse_grid(&val()?)?),
            "--dtype" => dtype = val()?,
            "--input" => input = Some(PathBuf::from(val()?)),
            "--calib" => calib = Some(PathBuf::from(val()?)),
            "--output" => output = Some(PathBuf::from(val()?)),
            "--runs" => runs = val()?.parse()?,
            "--warmup" => warmup = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            "--blob-out" => blob_out = Some(PathBuf::from(val()?)),
            "--blob" => blob_in = Some(PathBuf::from(val()?)),
            "--activations" => {
                activations = match val()?.as_str() {
                    "auto" => Activations::Auto,
                    "int8" => Activations::Int8,
                    "int16" => Activations::Int16,
                    v => bail!("--activations must be auto, int8 or int16, got {v}"),
                }
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let input = input.context("--input is required")?;
    let blob = if let Some(p) = &blob_in {
        if !build_opts.is_empty() {
            bail!(
                "--blob times a blob written before, as it is: drop {}",
                build_opts.join(", ")
            );
        }
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?
    } else {
        let weights = weights.context("--weights (or --blob) is required")?;
        let (h, w) = grid.context("--grid is required")?;
        let imp = ldp_quant::import::import_file(&weights, None, None)?;
        let model = FloatModel::from_imported(imp, h, w)?;
        let blob = match dtype.as_str() {
            "f32" => ldp_quant::write::float_blob(&model, DType::F32)?,
            "f16" => ldp_quant::write::float_blob(&model, DType::F16)?,
            "int8" => {
                let c = calib.context("--dtype int8 needs --calib")?;
                let set = CalibSet::from_npy(&c, &model.config())?;
                let opts = Int8Options {
                    activations,
                    ..Int8Options::default()
                };
                ldp_quant::int8::quantize(&model, &set, &opts)?
            }
            d => bail!("--dtype must be f32, f16 or int8, got {d}"),
        };
        if let Some(p) = &blob_out {
            std::fs::write(p, &blob).with_context(|| format!("cannot write {}", p.display()))?;
        }
        blob
    };
    ldp_quant::set_threads(threads);
    let blob = AlignedBytes::from_slice(&blob);
    let m = Model::parse(blob.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = m.config();
    let dtype = match m.dtype() {
        DType::F32 => "f32",
        DType::F16 => "f16",
        _ => "int8",
    };
    let arr = npy::read_f32(&input)?;
    let samples = layout::split_batch(&arr, &cfg, "input", true)?;
    let x = &samples[0];
    let mut y = vec![0.0f32; m.output_len()];
    let mut scratch = AlignedBytes::zeroed(m.scratch_bytes());
    for _ in 0..warmup {
        m.forward(x, &mut y, scratch.as_mut_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        let (t0, c0) = (Instant::now(), thread_cpu_seconds());
        m.forward(x, &mut y, scratch.as_mut_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        cpu.push((thread_cpu_seconds() - c0) * 1e3);
        wall.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    if let Some(o) = output {
        let arr = layout::join_batch(&[y.clone()], &cfg)?;
        npy::write_f32(&o, &arr.shape, &arr.data)?;
    }
    let min = wall.iter().cloned().fold(f64::INFINITY, f64::min);
    let cpu_min = cpu.iter().cloned().fold(f64::INFINITY, f64::min);
    let list = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (wall_list, cpu_list) = (list(&wall), list(&cpu));
    println!(
        "{{\"arch\": \"{}\", \"dtype\": \"{dtype}\", \"threads\": {threads}, \"x86\": \"{}\", \"runs\": {}, \"median_ms\": {:.3}, \"min_ms\": {:.3}, \"cpu_median_ms\": {:.3}, \"cpu_min_ms\": {:.3}, \"wall_ms\": [{wall_list}], \"cpu_ms\": [{cpu_list}]}}",
        cfg.arch().name(),
        x86_level(),
        wall.len(),
        median(&mut wall),
        min,
        median(&mut cpu),
        cpu_min
    );
    Ok(())
}
