//! The int8 generalization sweep (`golden/sweep/`, written by `tools/golden/gen_sweep.py`).
//!
//! Only the PyTorch outputs are committed: weights, calibration inputs and held-out inputs are
//! redrawn here by the same counter-based generator the script uses. It is built from IEEE-754
//! `+ − × ÷ √` in `f64` only (splitmix64 → uniform → Irwin–Hall normal → Student-t), so both
//! sides produce the same bits; `fingerprint.json` checks it per case.

use std::path::PathBuf;

use ldp_quant::calib::CalibSet;
use ldp_quant::FloatModel;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix(key: u64, i: u64) -> u64 {
    let mut z = key.wrapping_add(i.wrapping_mul(GOLDEN));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` uniforms in `[0, 1)` of stream `key`.
fn uniform(key: u64, n: usize) -> Vec<f64> {
    (1..=n as u64)
        .map(|i| (splitmix(key, i) >> 11) as f64 * (1.0 / (1u64 << 53) as f64))
        .collect()
}

/// Irwin–Hall normals: 12 uniforms summed left to right, minus 6.
fn normal(key: u64, n: usize) -> Vec<f64> {
    let u = uniform(key, 12 * n);
    u.chunks_exact(12)
        .map(|c| {
            let mut acc = c[0];
            for &v in &c[1..] {
                acc += v;
            }
            acc - 6.0
        })
        .collect()
}

fn key_of(seed: u64, tag: u64) -> u64 {
    seed.wrapping_mul(GOLDEN)
        .wrapping_add(tag.wrapping_mul(0xD1B5_4A32_D192_ED03))
}

fn student_t3(key: u64, n: usize) -> Vec<f64> {
    let z = normal(key_of(key, 1), n);
    let a = normal(key_of(key, 2), n);
    let b = normal(key_of(key, 3), n);
    let c = normal(key_of(key, 4), n);
    (0..n)
        .map(|i| {
            let chi = a[i] * a[i] + b[i] * b[i] + c[i] * c[i];
            z[i] / (chi / 3.0).sqrt()
        })
        .collect()
}

/// The case named by the first of `args` and the count `N` in the second (default `n`), for
/// the examples' `CASE [N]` command lines.
pub fn case_and_count(args: &[String], usage: &str, n: usize) -> anyhow::Result<(Case, usize)> {
    let name = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: {usage}"))?;
    let n: usize = args.get(1).map_or(Ok(n), |s| s.parse())?;
    Ok((case_named(name)?, n))
}

/// The sweep case called `name`.
pub fn case_named(name: &str) -> anyhow::Result<Case> {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow::anyhow!("no sweep case {name}"))
}

/// int8 options from positional words (the examples' command lines), each optional:
/// `[mse|minmax|percentile] [auto|on|off] [auto|per-tensor|per-channel|int16] [auto|int8|int16]`
/// — calibration method, range search, input quantization, activation width; anything else
/// keeps the default.
pub fn int8_options(words: &[String]) -> ldp_quant::quantize::Int8Options {
    use ldp_quant::int8::InputQuant;
    use ldp_quant::quantize::{Activations, CalibMethod, RangeSearch};
    let mut o = ldp_quant::quantize::Int8Options::default();
    let w = |i: usize| words.get(i).map(String::as_str);
    o.calib_method = match w(0) {
        Some("minmax") => CalibMethod::Minmax,
        Some("percentile") => CalibMethod::Percentile,
        _ => CalibMethod::Mse,
    };
    o.range_search = match w(1) {
        Some("on") => RangeSearch::On,
        Some("off") => RangeSearch::Off,
        _ => RangeSearch::Auto,
    };
    o.input_quant = match w(2) {
        Some("per-channel") => InputQuant::PerChannel,
        Some("per-tensor") => InputQuant::PerTensor,
        Some("int16") => InputQuant::Int16,
        _ => InputQuant::Auto,
    };
    o.activations = match w(3) {
        Some("int8") => Activations::Int8,
        Some("int16") => Activations::Int16,
        _ => Activations::Auto,
    };
    o
}

/// The sweep's directory: `golden/sweep/`, or `LDP_SWEEP_DIR` when set (manual runs on extra
/// seeds written by `gen_sweep.py --seeds A:B --out DIR`; CI leaves it unset).
pub fn sweep_dir() -> std::path::PathBuf {
    match extra_dir() {
        Some(d) => std::path::PathBuf::from(d),
        None => crate::golden_dir().join("sweep"),
    }
}

/// `LDP_SWEEP_DIR` when it is set and not empty: the cases are extra seeds, not the committed
/// sweep.
pub fn extra_dir() -> Option<std::ffi::OsString> {
    std::env::var_os("LDP_SWEEP_DIR").filter(|s| !s.is_empty())
}

/// One sweep case, from `index.json`.
#[derive(Debug, Clone)]
pub struct Case {
    /// Case name (folder).
    pub name: String,
    /// Configuration name (the case without its seed).
    pub config: String,
    /// `ldp`, `mobilevlm-v1`, `mobilevlm-v2` or `mlp2x-gelu`.
    pub arch: String,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Grid height.
    pub h: usize,
    /// Grid width.
    pub w: usize,
    /// `normal`, `heavy` or `clip`.
    pub dist: String,
    /// Generator seed.
    pub seed: u64,
    /// Calibration samples.
    pub n_calib: usize,
    /// Held-out samples.
    pub n_heldout: usize,
    /// `tuning` or `heldout`.
    pub split: String,
    /// MobileVLM's real sizes (1024 → 2048 at 24×24).
    pub real_size: bool,
}

impl Case {
    /// Grid positions.
    pub fn positions(&self) -> usize {
        self.h * self.w
    }
    /// The accuracy bound of issue 16 for this case.
    pub fn bound(&self) -> f64 {
        if self.positions() < 64 {
            0.20
        } else if self.dist == "normal" {
            0.04
        } else {
            0.10
        }
    }
    fn dir(&self) -> PathBuf {
        sweep_dir().join(&self.name)
    }
}

/// Every case of the sweep.
pub fn cases() -> Vec<Case> {
    let path = sweep_dir().join("index.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (written by tools/golden/gen_sweep.py)",
            path.display()
        )
    });
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("index.json");
    let arr = v.as_array().expect("index.json is a list");
    arr.iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().expect(k).to_string();
            let u = |k: &str| e[k].as_u64().expect(k) as usize;
            Case {
                name: s("name"),
                config: s("config"),
                arch: s("arch"),
                c_in: u("c_in"),
                c_out: u("c_out"),
                h: u("h"),
                w: u("w"),
                dist: s("dist"),
                seed: e["seed"].as_u64().expect("seed"),
                n_calib: u("n_calib"),
                n_heldout: u("n_heldout"),
                split: s("split"),
                real_size: e["real_size"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

fn clip_channels(seed: u64, c_in: usize) -> (Vec<usize>, Vec<f64>) {
    let k = 2.max(c_in / 64);
    let u = uniform(key_of(seed, 900), 3 * k);
    let mut chans: Vec<usize> = Vec::new();
    for &ui in u.iter().take(k) {
        let mut ch = (ui * c_in as f64) as usize;
        while chans.contains(&ch) {
            ch = (ch + 1) % c_in;
        }
        chans.push(ch);
    }
    let offs = (0..k)
        .map(|i| (10.0 + 20.0 * u[k + i]) * if u[2 * k + i] < 0.5 { 1.0 } else { -1.0 })
        .collect();
    (chans, offs)
}

/// Input sample `sample` in PyTorch layout (`ldp`: `[c_in][h][w]`, V1/V2 and `mlp2x-gelu`:
/// `[h·w][c_in]`).
pub fn input(case: &Case, sample: usize) -> Vec<f32> {
    let (c_in, hw) = (case.c_in, case.h * case.w);
    let n = c_in * hw;
    let key = key_of(case.seed, 1000 + sample as u64);
    // channel-major [c_in][hw]
    let mut v = match case.dist.as_str() {
        "normal" => normal(key, n),
        "heavy" => student_t3(key, n),
        "clip" => normal(key, n).into_iter().map(|z| 0.5 * z).collect(),
        d => panic!("unknown distribution {d}"),
    };
    match case.dist.as_str() {
        "heavy" => {
            let mut chans = vec![1, c_in / 2];
            chans.sort();
            chans.dedup();
            for ch in chans {
                for x in &mut v[ch * hw..(ch + 1) * hw] {
                    *x *= 20.0;
                }
            }
        }
        "clip" => {
            let (chans, offs) = clip_channels(case.seed, c_in);
            let spread = normal(key_of(key, 7), chans.len() * hw);
            for (k, (&ch, &off)) in chans.iter().zip(&offs).enumerate() {
                for p in 0..hw {
                    v[ch * hw + p] = off + spread[k * hw + p];
                }
            }
        }
        _ => {}
    }
    if case.arch == "ldp" {
        v.iter().map(|&x| x as f32).collect()
    } else {
        let mut t = vec![0f32; n];
        for ch in 0..c_in {
            for p in 0..hw {
                t[p * c_in + ch] = v[ch * hw + p] as f32;
            }
        }
        t
    }
}

/// The case's weights as safetensors bytes (PyTorch names and shapes, float32).
pub fn weights_safetensors(case: &Case) -> Vec<u8> {
    let p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.dir().join("params.json")).expect("params"))
            .expect("params.json");
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, e) in p.as_array().expect("list").iter().enumerate() {
        let name = e["name"].as_str().expect("name").to_string();
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        let kind = e["kind"].as_str().expect("kind");
        let n: usize = shape.iter().product();
        let key = key_of(case.seed, i as u64 + 1);
        let vals: Vec<f64> = if let Some(b) = kind.strip_prefix("uniform:") {
            let bound: f64 = b.parse().expect("bound");
            uniform(key, n)
                .into_iter()
                .map(|u| (2.0 * u - 1.0) * bound)
                .collect()
        } else if kind == "ln_weight" {
            normal(key, n).into_iter().map(|z| 1.0 + 0.2 * z).collect()
        } else if kind == "bias" {
            normal(key, n).into_iter().map(|z| 0.1 * z).collect()
        } else {
            panic!("unknown kind {kind}")
        };
        let bytes: Vec<u8> = vals
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect();
        tensors.push((name, shape, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .expect("view"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("serialize")
}

/// A loaded case: the float model, the calibration set (channels-last), the held-out inputs in
/// PyTorch layout and PyTorch's float64 outputs for them.
pub struct Loaded {
    /// The f32 model.
    pub model: FloatModel,
    /// Calibration samples.
    pub calib: CalibSet,
    /// Held-out inputs (PyTorch layout, one `Vec` per sample).
    pub held: Vec<Vec<f32>>,
    /// PyTorch's outputs of the held-out inputs (PyTorch layout, all samples).
    pub expected: Vec<f64>,
}

/// Loads a case (and checks the generator against the script's fingerprint).
pub fn load(case: &Case) -> Loaded {
    let fp: serde_json::Value = serde_json::from_slice(
        &std::fs::read(case.dir().join("fingerprint.json")).expect("fingerprint"),
    )
    .expect("fingerprint.json");
    let x0 = input(case, 0);
    let sum: f64 = x0.iter().map(|&v| v as f64).sum();
    let want = fp["input0_sum"].as_f64().expect("sum");
    assert!(
        (sum - want).abs() <= 1e-9 * want.abs().max(1.0) * x0.len() as f64,
        "{}: generator differs from gen_sweep.py (sum {sum} vs {want})",
        case.name
    );
    for (i, f) in fp["input0_first"]
        .as_array()
        .expect("first")
        .iter()
        .enumerate()
    {
        assert_eq!(
            x0[i],
            f.as_f64().expect("f") as f32,
            "{}: input value {i} differs from gen_sweep.py",
            case.name
        );
    }
    let st = weights_safetensors(case);
    let imp = ldp_quant::import::import_bytes(&st, None, None).expect("import");
    let model = FloatModel::from_imported(imp, case.h, case.w).expect("model");
    let cfg = model.config();
    let per = case.c_in * case.h * case.w;
    let mut batch = Vec::with_capacity(case.n_calib * per);
    for s in 0..case.n_calib {
        batch.extend(input(case, s));
    }
    let arr = ldp_quant::npy::Array {
        shape: batch_shape(case, case.n_calib),
        data: batch,
    };
    let calib = CalibSet::from_array(&arr, &cfg).expect("calib");
    let held = (0..case.n_heldout)
        .map(|j| input(case, case.n_calib + j))
        .collect();
    let expected = read_expected(&case.dir().join("heldout_expected.npy"));
    Loaded {
        model,
        calib,
        held,
        expected,
    }
}

/// The PyTorch-layout shape of a batch of `n` inputs: `[n, c_in, h, w]` (`ldp`) or
/// `[n, h·w, c_in]`.
pub fn batch_shape(case: &Case, n: usize) -> Vec<usize> {
    if case.arch == "ldp" {
        vec![n, case.c_in, case.h, case.w]
    } else {
        vec![n, case.h * case.w, case.c_in]
    }
}

/// The int8 error of a loaded case quantized with `opts`.
pub struct Int8Error {
    /// Relative L2 error against PyTorch over all held-out samples.
    pub rel_l2: f64,
    /// Seconds spent quantizing.
    pub quantize_s: f64,
    /// The blob's activation scheme (`ldp_quant::int8::describe_blob`).
    pub scheme: String,
}

/// Quantizes `l` with `opts`, runs the held-out inputs and compares with PyTorch.
pub fn int8_error(
    case: &Case,
    l: &Loaded,
    opts: &ldp_quant::quantize::Int8Options,
) -> anyhow::Result<Int8Error> {
    let cfg = l.model.config();
    let t = std::time::Instant::now();
    let blob = ldp_quant::int8::quantize(&l.model, &l.calib, opts)?;
    let quantize_s = t.elapsed().as_secs_f64();
    let aligned = ldp_quant::AlignedBytes::from_slice(&blob);
    let m = ldp_core::Model::parse(aligned.as_bytes())
        .map_err(|e| anyhow::anyhow!("blob does not parse: {e}"))?;
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut ys = Vec::with_capacity(l.held.len());
    for x in &l.held {
        let arr = ldp_quant::npy::Array {
            shape: batch_shape(case, 1),
            data: x.clone(),
        };
        let xs = ldp_quant::layout::split_batch(&arr, &cfg, "held-out input", false)?;
        let mut y = vec![0f32; m.output_len()];
        m.forward(&xs[0], &mut y, &mut scratch)
            .map_err(|e| anyhow::anyhow!("forward: {e}"))?;
        ys.push(y);
    }
    let y = ldp_quant::layout::join_batch(&ys, &cfg)?;
    let got: Vec<f64> = y.data.iter().map(|&v| v as f64).collect();
    Ok(Int8Error {
        rel_l2: crate::rel_l2(&got, &l.expected),
        quantize_s,
        scheme: ldp_quant::int8::describe_blob(&m),
    })
}

fn read_expected(p: &std::path::Path) -> Vec<f64> {
    let bytes = std::fs::read(p).expect("heldout_expected.npy");
    let f = npyz::NpyFile::new(&bytes[..]).expect("npy");
    match f.header().dtype() {
        npyz::DType::Plain(t) if t.size_field() == 2 => f
            .into_vec::<half::f16>()
            .expect("f16")
            .into_iter()
            .map(|v| v.to_f64())
            .collect(),
        _ => f
            .into_vec::<f32>()
            .expect("f32")
            .into_iter()
            .map(|v| v as f64)
            .collect(),
    }
}

/// The int8 error of `case`, quantized at the defaults on its calibration samples, on `n`
/// *fresh* inputs drawn by the same generator after the committed ones (sample indices
/// `n_calib + n_heldout` onward), against the f32 model (which matches PyTorch float64 to
/// ~1e-7, far below the int8 errors): relative L2 over all of them.
pub fn fresh_error(case: &Case, l: &Loaded, n: usize) -> anyhow::Result<f64> {
    let opts = ldp_quant::quantize::Int8Options::default();
    Ok(fresh_stats(case, l, &opts, n)?.pooled)
}

/// The int8 error on fresh inputs, pooled and per sample.
pub struct Fresh {
    /// Relative L2 over all the fresh inputs together (as [`fresh_error`]).
    pub pooled: f64,
    /// Relative L2 of each fresh input on its own, in draw order.
    pub each: Vec<f64>,
}

/// As [`fresh_error`] with `opts`: the pooled error and each input's own.
pub fn fresh_stats(
    case: &Case,
    l: &Loaded,
    opts: &ldp_quant::quantize::Int8Options,
    n: usize,
) -> anyhow::Result<Fresh> {
    let (mut num, mut den) = (0f64, 0f64);
    let mut each = Vec::with_capacity(n);
    fresh_each(case, l, opts, n, |y, want| {
        let (mut a, mut b) = (0f64, 0f64);
        for (g, w) in y.iter().zip(want) {
            a += (*g as f64 - *w as f64).powi(2);
            b += (*w as f64).powi(2);
        }
        num += a;
        den += b;
        each.push((a / b.max(1e-300)).sqrt());
    })?;
    Ok(Fresh {
        pooled: (num / den.max(1e-300)).sqrt(),
        each,
    })
}

/// Quantizes `l` with `opts` and calls `f(int8 output, f32 output)` for `n` fresh inputs.
fn fresh_each(
    case: &Case,
    l: &Loaded,
    opts: &ldp_quant::quantize::Int8Options,
    n: usize,
    mut f: impl FnMut(&[f32], &[f32]),
) -> anyhow::Result<()> {
    let cfg = l.model.config();
    let blob = ldp_quant::int8::quantize(&l.model, &l.calib, opts)?;
    let aligned = ldp_quant::AlignedBytes::from_slice(&blob);
    let m = ldp_core::Model::parse(aligned.as_bytes())
        .map_err(|e| anyhow::anyhow!("blob does not parse: {e}"))?;
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let first = case.n_calib + case.n_heldout;
    for j in 0..n {
        let arr = ldp_quant::npy::Array {
            shape: batch_shape(case, 1),
            data: input(case, first + j),
        };
        let xs = ldp_quant::layout::split_batch(&arr, &cfg, "input", false)?;
        let want = l.model.forward(&xs[0])?;
        let mut y = vec![0f32; m.output_len()];
        m.forward(&xs[0], &mut y, &mut scratch)
            .map_err(|e| anyhow::anyhow!("forward: {e}"))?;
        f(&y, &want);
    }
    Ok(())
}
