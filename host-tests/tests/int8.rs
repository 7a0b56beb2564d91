//! The int8 path: fast kernels equal the references bit for bit; the quantized projectors stay
//! within the accuracy bounds of issue 4 against PyTorch float64 on held-out inputs; blobs stay
//! within the size bounds.

use host_tests::golden_dir;
use ldp_core::kernels::depthwise::DwShape;
use ldp_core::quant::kernels::{self as qk, ConvQ};
use ldp_quant::calib::CalibSet;
use ldp_quant::int8::InputQuant;
use ldp_quant::quantize::{CalibMethod, Int8Options};
use ldp_quant::{AlignedBytes, FloatModel};
use proptest::prelude::*;
use std::path::Path;

fn bytes(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as i8
        })
        .collect()
}

/// `n` biases (`i16`), or none when `seed % 7 == 0` (a conv without bias).
fn biases(n: usize, seed: u64) -> Vec<i16> {
    if seed.is_multiple_of(7) {
        return Vec::new();
    }
    ints(n, seed, 32768).iter().map(|&v| v as i16).collect()
}

fn mults(n: usize, seed: u64) -> Vec<u8> {
    bytes(n, seed).iter().map(|&v| v as u8).collect()
}

fn ints(n: usize, seed: u64, range: i32) -> Vec<i32> {
    bytes(4 * n, seed)
        .chunks(4)
        .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]) % range)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn int8_pointwise_tiled_equals_reference(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=150,
                                             shift in 1i32..=32, bias_shift in 0u32..=15, zo in -128i32..=127, with_lut in any::<bool>(), seed in any::<u64>()) {
        let x = bytes(pixels * c_in, seed);
        let w = bytes(c_in * c_out, seed ^ 1);
        let bias = biases(c_out, seed ^ 2);
        let mult = mults(c_out, seed ^ 3);
        let lut = bytes(256, seed ^ 4);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: zo, lut: if with_lut { Some(&lut) } else { None } };
        let mut a = vec![0i8; pixels * c_out];
        let mut b = vec![0i8; pixels * c_out];
        qk::pointwise_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        qk::pointwise(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a16_pointwise_tiled_equals_reference(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=40,
                                            shift in 8i32..=40, seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let x: Vec<i16> = ints(pixels * c_in, seed, 32768).iter().map(|&v| v as i16).collect();
        let w = bytes(c_in * c_out, seed ^ 1);
        let bias = biases(c_out, seed ^ 2);
        let mult = mults(c_out, seed ^ 3);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift: 14, mult: &mult, shift, in_zero: 0, out_zero: 0, lut: None };
        let mut a = vec![0i16; pixels * c_out];
        let mut b = vec![0i16; pixels * c_out];
        a16::pointwise16_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        a16::pointwise16(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn input16_pointwise_tiled_equals_reference(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=40,
                                                shift in 8i32..=40, zo in -128i32..=127, with_lut in any::<bool>(), seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let lim = ldp_core::quant::input16_limit(c_in);
        let x: Vec<i16> = ints(pixels * c_in, seed, lim + 1).iter().map(|&v| v as i16).collect();
        let w = bytes(c_in * c_out, seed ^ 1);
        let bias = biases(c_out, seed ^ 2);
        let mult = mults(c_out, seed ^ 3);
        let lut = bytes(256, seed ^ 4);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift: 14, mult: &mult, shift, in_zero: 0, out_zero: zo, lut: if with_lut { Some(&lut) } else { None } };
        let mut a = vec![0i8; pixels * c_out];
        let mut b = vec![0i8; pixels * c_out];
        a16::pointwise_in16_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        a16::pointwise_in16(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b);
        // An input within int8 values gives the int8 conv's output, bit for bit.
        let x8: Vec<i8> = x.iter().map(|&v| (v % 128) as i8).collect();
        let x16: Vec<i16> = x8.iter().map(|&v| v as i16).collect();
        qk::pointwise_reference(&x8, c_in, &q, c_out, &mut a).unwrap();
        a16::pointwise_in16(&x16, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn input16_resize_equals_int8_resize_on_int8_values(c in 1usize..=19, h in 1usize..=9, w in 1usize..=9, ho in 1usize..=9, wo in 1usize..=9,
                                                        shift in 0i32..=12, zo in -128i32..=127, per_ch in any::<bool>(), seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let x8 = bytes(h * w * c, seed);
        let x16: Vec<i16> = x8.iter().map(|&v| v as i16).collect();
        let mult: Vec<i16> = ints(if per_ch { c } else { 1 }, seed ^ 1, 32768).iter().map(|&v| v as i16).collect();
        let mut a = vec![0i8; ho * wo * c];
        let mut b = vec![0i8; ho * wo * c];
        qk::resize_bilinear_reference(&x8, h, w, c, &[0], &mult, shift, zo, &mut a, ho, wo).unwrap();
        a16::resize_bilinear_in16(&x16, h, w, c, &mult, shift, zo, &mut b, ho, wo).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn int8_depthwise_tiled_equals_reference(c in 1usize..=67, h in 1usize..=19, w in 1usize..=19, stride in 1usize..=2,
                                             shift in 1i32..=30, bias_shift in 0u32..=3, zi in -128i32..=127, zo in -128i32..=127, seed in any::<u64>()) {
        let s = DwShape { h, w, c, stride };
        let x = bytes(h * w * c, seed);
        let wt = bytes(9 * c, seed ^ 1);
        let bias = biases(c, seed ^ 2);
        let mult = mults(c, seed ^ 3);
        let q = ConvQ { weight: &wt, bias: &bias, bias_shift, mult: &mult, shift, in_zero: zi, out_zero: zo, lut: None };
        let n = s.ho() * s.wo() * c;
        let mut a = vec![0i8; n];
        let mut b = vec![0i8; n];
        qk::depthwise_reference(s, &x, &q, &mut a).unwrap();
        qk::depthwise(s, &x, &q, &mut b).unwrap();
        prop_assert_eq!(a, b);
    }
}

fn npy_f64(p: &Path) -> Vec<f64> {
    let bytes = std::fs::read(p).unwrap();
    npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<f64>()
        .unwrap()
}

struct Measured {
    name: String,
    positions: usize,
    heavy: bool,
    rel_l2: f64,
    worst_sample: f64,
    blob_len: usize,
    params: usize,
    act16: bool,
}

/// Quantizes every golden case (calibrating on `calib.npy`) and measures the held-out error,
/// once per test binary.
fn measure_all() -> &'static [Measured] {
    static ALL: std::sync::OnceLock<Vec<Measured>> = std::sync::OnceLock::new();
    ALL.get_or_init(measure_all_uncached)
}

fn measure_all_uncached() -> Vec<Measured> {
    let index: Vec<String> =
        serde_json::from_slice(&std::fs::read(golden_dir().join("index.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for name in index {
        let dir = golden_dir().join(&name);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        let (h, w) = (
            meta["h"].as_u64().unwrap() as usize,
            meta["w"].as_u64().unwrap() as usize,
        );
        let imp =
            ldp_quant::import::import_file(&dir.join("weights.safetensors"), None, None).unwrap();
        let model = FloatModel::from_imported(imp, h, w).unwrap();
        let cfg = model.config();
        let calib = CalibSet::from_npy(&dir.join("calib.npy"), &cfg).unwrap();
        let opts = Int8Options {
            calib_method: CalibMethod::default(),
            input_quant: InputQuant::default(),
            ..Int8Options::default()
        };
        let blob = ldp_quant::int8::quantize(&model, &calib, &opts).unwrap();
        let aligned = AlignedBytes::from_slice(&blob);
        let m = ldp_core::Model::parse(aligned.as_bytes()).unwrap();
        let held = ldp_quant::npy::read_f32(&dir.join("heldout.npy")).unwrap();
        let xs = ldp_quant::layout::split_batch(&held, &cfg, "heldout", false).unwrap();
        let mut ys = Vec::new();
        let mut scratch = vec![0u8; m.scratch_bytes()];
        for x in &xs {
            let mut y = vec![0f32; m.output_len()];
            m.forward(x, &mut y, &mut scratch).unwrap();
            ys.push(y);
        }
        let y_torch = ldp_quant::layout::join_batch(&ys, &cfg).unwrap();
        let expected = npy_f64(&dir.join("heldout_expected.npy"));
        let got: Vec<f64> = y_torch.data.iter().map(|&v| v as f64).collect();
        let per = expected.len() / xs.len();
        let worst = (0..xs.len())
            .map(|i| {
                host_tests::rel_l2(
                    &got[i * per..(i + 1) * per],
                    &expected[i * per..(i + 1) * per],
                )
            })
            .fold(0.0, f64::max);
        out.push(Measured {
            name: name.clone(),
            positions: h * w,
            heavy: meta["dist"].as_str() == Some("heavy"),
            rel_l2: host_tests::rel_l2(&got, &expected),
            worst_sample: worst,
            blob_len: blob.len(),
            params: cfg.param_count(),
            act16: ldp_core::quant::a16::is_a16(&m),
        });
    }
    for m in &out {
        println!(
            "int8 {:<24} positions {:>4} {:<6} rel_l2 {:.4} (worst sample {:.4}) blob {} B, params {}",
            m.name,
            m.positions,
            if m.heavy { "heavy" } else { "normal" },
            m.rel_l2,
            m.worst_sample,
            m.blob_len,
            m.params
        );
    }
    out
}

fn check(bound: f64, select: impl Fn(&Measured) -> bool, what: &str) {
    let all = measure_all();
    let bad: Vec<String> = all
        .iter()
        .filter(|m| select(m))
        .filter(|m| m.rel_l2.is_nan() || m.rel_l2 > bound)
        .map(|m| format!("{} {:.4}", m.name, m.rel_l2))
        .collect();
    assert!(all.iter().any(&select), "no golden case in category {what}");
    assert!(bad.is_empty(), "{what}: above {bound}: {bad:?}");
}

#[test]
fn int8_small_grids_within_0_20() {
    check(
        0.20,
        |m| m.positions < 64 && !m.heavy,
        "grids with fewer than 64 positions",
    );
}

#[test]
fn int8_normal_inputs_within_0_04() {
    check(
        0.04,
        |m| m.positions >= 64 && !m.heavy,
        "normal inputs, >= 64 positions",
    );
}

#[test]
fn int8_heavy_tailed_within_0_10() {
    check(
        0.10,
        |m| m.heavy,
        "heavy-tailed inputs with outlier channels",
    );
}

/// `--activations auto` (the default) picks 16-bit activations exactly for MobileVLM V1 (every
/// case) and for the V2 and `mlp2x-gelu` cases whose calibration inputs are heavy-tailed, and
/// int8 activations everywhere else.
#[test]
fn int8_auto_activations_pick_16_bit_for_v1_and_heavy_v2_and_mlp_only() {
    let all = measure_all();
    for m in all {
        assert_eq!(
            m.act16,
            m.name.starts_with("v1_")
                || m.heavy && (m.name.starts_with("v2_") || m.name.starts_with("mlp_")),
            "{}: 16-bit activations {}",
            m.name,
            m.act16
        );
    }
}

/// 16-bit activations (`--activations int16`) on every V2 golden case, normal ones included:
/// held-out error against PyTorch float64 at most 0.01 (measured 0.0036-0.0053: the int8
/// weights' own error: 0.0036-0.0054 in a float simulation of weight-only quantization,
/// `tools/int8_sim/per_token_sim.py`).
#[test]
fn int8_v2_16_bit_activations_within_0_01_on_every_v2_case() {
    let index: Vec<String> =
        serde_json::from_slice(&std::fs::read(golden_dir().join("index.json")).unwrap()).unwrap();
    let mut seen = 0;
    for name in index.iter().filter(|n| n.starts_with("v2_")) {
        let opts = Int8Options {
            activations: ldp_quant::quantize::Activations::Int16,
            ..Int8Options::default()
        };
        let (e, len) = held_out_error_opts(name, &opts);
        println!("{name}: 16-bit activations, held-out rel L2 {e:.4}, blob {len} B");
        assert!(e <= 0.01, "{name}: {e:.4}");
        seen += 1;
    }
    assert!(seen >= 6);
}

/// MobileVLM V1's 16-bit activations (the default) on every V1 golden case: held-out error
/// against PyTorch float64 at most 0.02 (measured 0.0083-0.0118 on normal inputs, 0.0196 on
/// `v1_16to32_h12_heavy`; the quantizer is deterministic, min/max ranges), against 0.04 (normal
/// inputs) and 0.1 (heavy-tailed) for int8 in general.
#[test]
fn int8_v1_16_bit_activations_within_0_02_on_every_v1_case() {
    let index: Vec<String> =
        serde_json::from_slice(&std::fs::read(golden_dir().join("index.json")).unwrap()).unwrap();
    let mut seen = 0;
    for name in index.iter().filter(|n| n.starts_with("v1_")) {
        let (e, len) = held_out_error_opts(name, &Int8Options::default());
        println!("{name}: 16-bit activations, held-out rel L2 {e:.4}, blob {len} B");
        assert!(e <= 0.02, "{name}: {e:.4}");
        seen += 1;
    }
    assert!(seen >= 4);
}

/// The range search (int8 activations) lowers the held-out error of the heavy-tailed `ldp` and
/// V1 cases by at least 20% against the plain per-tensor ranges (`--range-search off`).
#[test]
fn int8_range_search_helps_heavy_tails() {
    for name in ["ldp_c16_16x16_heavy", "v1_16to32_h12_heavy"] {
        let err = |rs| {
            let opts = Int8Options {
                range_search: rs,
                activations: ldp_quant::quantize::Activations::Int8,
                ..Int8Options::default()
            };
            held_out_error_opts(name, &opts).0
        };
        let off = err(ldp_quant::quantize::RangeSearch::Off);
        let on = err(ldp_quant::quantize::RangeSearch::Auto);
        println!("{name}: range search off {off:.4}, auto {on:.4}");
        assert!(on <= 0.8 * off, "{name}: off {off:.4}, auto {on:.4}");
    }
}

/// Held-out relative L2 error and blob length of `name` converted with `opts`.
fn held_out_error_opts(name: &str, opts: &Int8Options) -> (f64, usize) {
    let dir = golden_dir().join(name);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let (h, w) = (
        meta["h"].as_u64().unwrap() as usize,
        meta["w"].as_u64().unwrap() as usize,
    );
    let imp = ldp_quant::import::import_file(&dir.join("weights.safetensors"), None, None).unwrap();
    let model = FloatModel::from_imported(imp, h, w).unwrap();
    let cfg = model.config();
    let calib = CalibSet::from_npy(&dir.join("calib.npy"), &cfg).unwrap();
    let blob = ldp_quant::int8::quantize(&model, &calib, opts).unwrap();
    let aligned = AlignedBytes::from_slice(&blob);
    let m = ldp_core::Model::parse(aligned.as_bytes()).unwrap();
    let held = ldp_quant::npy::read_f32(&dir.join("heldout.npy")).unwrap();
    let xs = ldp_quant::layout::split_batch(&held, &cfg, "heldout", false).unwrap();
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut got = Vec::new();
    for x in &xs {
        let mut y = vec![0f32; m.output_len()];
        m.forward(x, &mut y, &mut scratch).unwrap();
        got.push(y);
    }
    let y = ldp_quant::layout::join_batch(&got, &cfg).unwrap();
    let got: Vec<f64> = y.data.iter().map(|&v| v as f64).collect();
    (
        host_tests::rel_l2(&got, &npy_f64(&dir.join("heldout_expected.npy"))),
        blob.len(),
    )
}

fn check_sizes(select: impl Fn(&Measured) -> bool) {
    for m in measure_all().iter().filter(|m| select(m)) {
        let bound = m.params as f64 * 1.02 + 4096.0;
        assert!(
            m.blob_len as f64 <= bound,
            "{}: {} B > {bound}",
            m.name,
            m.blob_len
        );
    }
}

#[test]
fn int8_blobs_within_size_bound_ldp_and_v2_golden() {
    check_sizes(|m| !m.name.starts_with("v1_"));
}

#[test]
fn int8_blobs_within_size_bound_v1_golden_32_channels() {
    check_sizes(|m| m.name.starts_with("v1_16to32"));
}

#[test]
fn int8_blobs_within_size_bound_v1_golden_48_to_128_channels() {
    check_sizes(|m| m.name.starts_with("v1_") && !m.name.starts_with("v1_16to32"));
}

fn size_at_real_size(
    cfg: ldp_core::ModelConfig,
    dtype: ldp_core::DType,
    flags: u16,
) -> (usize, f64) {
    use ldp_core::blob::specs::{elem_type, resolve_flags, specs_flags};
    use ldp_core::{DType, ModelConfig};
    let (ci, co) = cfg.channels();
    let sq = match cfg {
        ModelConfig::MobileVlmV1(c) => c.squeeze,
        _ => 0,
    };
    let tensors: Vec<Vec<u8>> = specs_flags(cfg.arch(), dtype, flags)
        .iter()
        .map(|s| {
            let d = resolve_flags(s.dims, ci as u32, co as u32, sq as u32, flags);
            let n: usize = d[..s.dims.len()].iter().map(|&v| v as usize).product();
            vec![0u8; n * elem_type(s, dtype).size()]
        })
        .collect();
    let blob = ldp_quant::write::assemble_with_flags(&cfg, dtype, flags, &tensors).unwrap();
    let per_param = if dtype == DType::F16 { 2.0 } else { 1.0 };
    let bound = per_param * cfg.param_count() as f64 * 1.02 + 4096.0;
    println!(
        "{} {} flags {flags}: {} B, bound {:.0} B ({} params)",
        cfg.arch().name(),
        dtype.name(),
        blob.len(),
        bound,
        cfg.param_count()
    );
    (blob.len(), bound)
}

/// The size of a blob does not depend on the weight values: check the bounds at MobileVLM's real
/// sizes with the writer on zero tensors of the spec sizes.
#[test]
fn blob_size_bounds_at_mobilevlm_real_sizes() {
    use ldp_core::arch::{mobilevlm_v1::V1Config, mobilevlm_v2::V2Config};
    use ldp_core::blob::specs::{FLAG_ACT16, FLAG_PER_CHANNEL_INPUT};
    use ldp_core::{DType, ModelConfig};
    for cfg in [
        ModelConfig::MobileVlmV1(V1Config::new(1024, 2048, 24)),
        ModelConfig::MobileVlmV2(V2Config {
            c_in: 1024,
            c_out: 2048,
            h: 24,
        }),
    ] {
        let act16 = matches!(cfg, ModelConfig::MobileVlmV2(_));
        for (dtype, flags) in [
            (DType::Int8, FLAG_PER_CHANNEL_INPUT),
            (DType::Int8, 0),
            (DType::F16, 0),
        ]
        .into_iter()
        .chain(act16.then_some((DType::Int8, FLAG_ACT16)))
        {
            let (len, bound) = size_at_real_size(cfg, dtype, flags);
            assert!(
                len as f64 <= bound,
                "{} {}: {len} > {bound}",
                cfg.arch().name(),
                dtype.name()
            );
        }
    }
}

#[test]
fn blob_size_bound_seed_ldp_f16() {
    use ldp_core::arch::ldp::LdpConfig;
    let (len, bound) = size_at_real_size(
        ldp_core::ModelConfig::Ldp(LdpConfig {
            c_in: 128,
            c_out: 128,
            h: 64,
            w: 64,
        }),
        ldp_core::DType::F16,
        0,
    );
    assert!(len as f64 <= bound, "{len} > {bound}");
}

fn seed_ldp_int8_size(flags: u16) -> (usize, f64) {
    use ldp_core::arch::ldp::LdpConfig;
    size_at_real_size(
        ldp_core::ModelConfig::Ldp(LdpConfig {
            c_in: 128,
            c_out: 128,
            h: 64,
            w: 64,
        }),
        ldp_core::DType::Int8,
        flags,
    )
}

/// The seed `LDP(128, 128)` int8 blob with the default per-tensor input: 55,604 B against a
/// 57,756 B bound (format version 5; version 4's i32 biases and i16 multipliers made it 57,524 B,
/// version 2's 16-byte table entries 57,620 B and version 1's 32-byte ones 58,036 B).
#[test]
fn blob_size_bound_seed_ldp_int8() {
    let (len, bound) = seed_ldp_int8_size(0);
    assert!(len as f64 <= bound, "{len} > {bound}");
}

/// The seed block with a per-channel input (7 B per input channel: f32 scale, i8 zero point,
/// i16 skip multiplier): 56,452 B against the 57,756 B bound (format version 5; 58,372 B with
/// version 4's i32 biases and i16 multipliers).
#[test]
fn blob_size_bound_seed_ldp_int8_per_channel_input() {
    use ldp_core::blob::specs::FLAG_PER_CHANNEL_INPUT;
    let (len, bound) = seed_ldp_int8_size(FLAG_PER_CHANNEL_INPUT);
    assert!(len as f64 <= bound, "{len} > {bound}");
}

/// V1 int8 fits its size bound at every size, for `c_in = c_out / 2` and MobileVLM's squeeze
/// width (`c_out / 4` rounded to 8), `c_out` = 32..=2048 in steps of 8. The per-channel overhead
/// (i16 bias, u8 multiplier, i16 LayerNorm parameters) grows with `C` and the 2% allowance with
/// `C²`; the tightest point is near `C = 136`, 42 B under (format version 5; with version 4's i32
/// biases, i16 multipliers and zero depthwise biases V1 fitted only from 568 channels up).
#[test]
fn int8_v1_size_bound_at_every_size() {
    use ldp_core::arch::mobilevlm_v1::V1Config;
    let margin = |co: usize| {
        let sq = ((co / 4 + 4) / 8 * 8).max(8);
        let (len, bound) = size_at_real_size(
            ldp_core::ModelConfig::MobileVlmV1(V1Config::new(co / 2, co, sq)),
            ldp_core::DType::Int8,
            0,
        );
        bound - len as f64
    };
    let (worst, at) = (32..=2048)
        .step_by(8)
        .map(|co| (margin(co), co))
        .fold((f64::INFINITY, 0), |a, b| if b.0 < a.0 { b } else { a });
    println!("V1 int8: smallest margin {worst:.0} B at c_out = {at}");
    assert!(
        worst >= 0.0,
        "V1 int8 at c_out = {at} is {:.0} B over its size bound",
        -worst
    );
}
