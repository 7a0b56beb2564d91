//! Streaming execution (`ldp_core::stream`) against whole-tensor execution.
//!
//! * int8: bit-identical to `ldp_core::quant::forward_i8` (ldp with several strip widths, V1, V2),
//!   on synthetic models over odd shapes, 1×1, 1×N, N×1, C_in ≠ C_out, and on the golden cases
//!   (int8 blobs made in-process with `ldp_quant`);
//! * f32: within 1e-6 relative of `Model::forward` (f16: 2e-3) — in fact bit-identical today,
//!   as the executor reuses the whole-tensor arithmetic (the golden test prints it);
//! * the row kernels against the whole-tensor kernels;
//! * the CRC helpers; the RAM formulas; the committed `qemu-lm3s` firmware data.

use host_tests::golden_dir;
use ldp_core::arch::ldp::LdpConfig;
use ldp_core::arch::mobilevlm_v1::V1Config;
use ldp_core::arch::mobilevlm_v2::V2Config;
use ldp_core::kernels::depthwise::{depthwise3x3, DwShape};
use ldp_core::quant::kernels::{self as qk, ConvQ};
use ldp_core::stream::{self, kernels as sk, RowCrc, SliceSink, SliceSource, FULL_WIDTH};
use ldp_core::{DType, Model, ModelConfig};
use ldp_quant::calib::CalibSet;
use ldp_quant::quantize::{Activations, Int8Options};
use ldp_quant::{AlignedBytes, FloatModel};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn i8(&mut self) -> i8 {
        (self.next() >> 32) as i8
    }
}

fn randn(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..n)
        .map(|_| scale * (r.f32() + r.f32() + r.f32()))
        .collect()
}

fn scratch(n: usize) -> AlignedBytes {
    AlignedBytes::zeroed(n)
}

/// A synthetic int8 blob of `cfg` with int8 activations (what the streaming executor runs;
/// MobileVLM V1's default has 16-bit activations), calibrated on 3 random inputs.
fn int8_blob(cfg: ModelConfig, seed: u64) -> AlignedBytes {
    let model = FloatModel::synthetic(cfg, seed);
    let samples = (0..3)
        .map(|k| randn(cfg.input_len(), seed + 100 + k, 1.0))
        .collect();
    let calib = CalibSet {
        config: cfg,
        samples,
    };
    let opts = Int8Options {
        activations: Activations::Int8,
        ..Int8Options::default()
    };
    let blob = ldp_quant::int8::quantize(&model, &calib, &opts).unwrap();
    AlignedBytes::from_slice(&blob)
}

fn float_blob(cfg: ModelConfig, seed: u64, dtype: DType) -> AlignedBytes {
    let model = FloatModel::synthetic(cfg, seed);
    AlignedBytes::from_slice(&ldp_quant::write::float_blob(&model, dtype).unwrap())
}

fn row_w(cfg: &ModelConfig) -> (usize, usize) {
    (cfg.input_grid().1, cfg.output_grid().1)
}

/// Whole-tensor int8 output and the quantized input.
fn whole_i8(m: &Model<'_>, x: &[f32]) -> (Vec<i8>, Vec<i8>) {
    let cfg = m.config();
    let mut xq = vec![0i8; cfg.input_len()];
    ldp_core::quant::quantize_input(m, x, &mut xq).unwrap();
    let mut y = vec![0i8; cfg.output_len()];
    let mut s = scratch(ldp_core::quant::scratch_bytes_i8(&cfg));
    ldp_core::quant::forward_i8(m, &xq, &mut y, s.as_mut_bytes()).unwrap();
    (xq, y)
}

fn stream_i8(m: &Model<'_>, xq: &[i8], strip: usize) -> Vec<i8> {
    let cfg = m.config();
    let (c_in, c_out) = cfg.channels();
    let (wi, wo) = row_w(&cfg);
    let mut y = vec![0x55i8; cfg.output_len()];
    let mut s = scratch(stream::scratch_bytes(&cfg, DType::Int8, strip));
    let mut src = SliceSource::new(xq, wi, c_in);
    let mut sink = SliceSink::new(&mut y, wo, c_out);
    stream::forward_i8(m, strip, &mut src, &mut sink, s.as_mut_bytes()).unwrap();
    y
}

fn stream_float(m: &Model<'_>, x: &[f32], strip: usize) -> Vec<f32> {
    let cfg = m.config();
    let (c_in, c_out) = cfg.channels();
    let (wi, wo) = row_w(&cfg);
    let mut y = vec![f32::NAN; cfg.output_len()];
    let mut s = scratch(stream::scratch_bytes(&cfg, m.dtype(), strip));
    let mut src = SliceSource::new(x, wi, c_in);
    let mut sink = SliceSink::new(&mut y, wo, c_out);
    stream::forward_float(m, strip, &mut src, &mut sink, s.as_mut_bytes()).unwrap();
    y
}

fn whole_float(m: &Model<'_>, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; m.output_len()];
    let mut s = scratch(m.scratch_bytes());
    m.forward(x, &mut y, s.as_mut_bytes()).unwrap();
    y
}

fn strips_for(cfg: &ModelConfig) -> Vec<usize> {
    match cfg {
        ModelConfig::Ldp(c) => {
            let mut v = vec![1, 2, 3, c.w2().div_ceil(2).max(1), FULL_WIDTH];
            v.dedup();
            v
        }
        // Token-wise: strips need no halo.
        ModelConfig::Graph(c) => {
            let mut v = vec![1, 2, c.w.div_ceil(2).max(1), FULL_WIDTH];
            v.dedup();
            v
        }
        _ => vec![FULL_WIDTH],
    }
}

/// int8 streaming == whole-tensor, bit for bit, for every strip width; returns the output.
fn check_i8(blob: &AlignedBytes, x: &[f32], what: &str) {
    let m = Model::parse(blob.as_bytes()).unwrap();
    if ldp_core::quant::is_x16(&m) {
        return check_x16(&m, x, what);
    }
    let (xq, want) = whole_i8(&m, x);
    for strip in strips_for(&m.config()) {
        let got = stream_i8(&m, &xq, strip);
        let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            bad,
            0,
            "{what}: int8 strip {strip}: {bad} of {} values differ",
            want.len()
        );
    }
}

/// An int8 blob with a 16-bit input (the `mlp2x-gelu` default): streaming 16-bit rows
/// (`stream::forward_x16`, quantized by `InputQuantizer16`) == whole-tensor
/// (`quant::quantize_input16` + `quant::forward_x16`), bit for bit.
fn check_x16(m: &Model<'_>, x: &[f32], what: &str) {
    let cfg = m.config();
    let mut xq = vec![0i16; cfg.input_len()];
    ldp_core::quant::quantize_input16(m, x, &mut xq).unwrap();
    let mut rows = vec![0i16; x.len()];
    stream::InputQuantizer16::new(m)
        .unwrap()
        .quantize(x, &mut rows)
        .unwrap();
    assert_eq!(rows, xq, "{what}: InputQuantizer16 != quantize_input16");
    let mut want = vec![0i8; cfg.output_len()];
    let mut s = scratch(m.scratch_bytes());
    ldp_core::quant::forward_x16(m, &xq, &mut want, s.as_mut_bytes()).unwrap();
    let (c_in, c_out) = cfg.channels();
    let (wi, wo) = row_w(&cfg);
    let need = stream::scratch_bytes_x16(&cfg, FULL_WIDTH);
    assert!(need > 0, "{what}: no 16-bit-input streaming scratch");
    // One byte short is refused, not run.
    let mut small = scratch(need - 1);
    let mut got = vec![0x55i8; cfg.output_len()];
    let e = stream::forward_x16(
        m,
        FULL_WIDTH,
        &mut SliceSource::new(&xq, wi, c_in),
        &mut SliceSink::new(&mut got, wo, c_out),
        &mut small.as_mut_bytes()[..need - 1],
    )
    .unwrap_err();
    assert!(
        matches!(e, ldp_core::Error::ScratchTooSmall { .. }),
        "{what}: {e:?}"
    );
    let mut s = scratch(need);
    stream::forward_x16(
        m,
        FULL_WIDTH,
        &mut SliceSource::new(&xq, wi, c_in),
        &mut SliceSink::new(&mut got, wo, c_out),
        s.as_mut_bytes(),
    )
    .unwrap();
    let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        bad, 0,
        "{what}: 16-bit-input streaming: {bad} values differ"
    );
    // The int8-row entry point refuses it and says what to use.
    let xq8 = vec![0i8; cfg.input_len()];
    let e = stream::forward_i8(
        m,
        FULL_WIDTH,
        &mut SliceSource::new(&xq8, wi, c_in),
        &mut SliceSink::new(&mut got, wo, c_out),
        s.as_mut_bytes(),
    )
    .unwrap_err();
    assert!(
        matches!(e, ldp_core::Error::Unsupported(m) if m.contains("forward_x16")),
        "{what}: {e:?}"
    );
}

/// Float streaming within 1e-6 relative of whole-tensor in f32 (relative L2, and max abs error
/// relative to the largest output); f16 within 2e-3. With the same kernels the two are bit-identical today; a SIMD path
/// whose results depend on where a slice starts may make them differ by an ulp, which the bound
/// allows. Returns whether every value was bit-identical.
fn check_float(blob: &AlignedBytes, x: &[f32], what: &str) -> bool {
    let m = Model::parse(blob.as_bytes()).unwrap();
    let want = whole_float(&m, x);
    let mut identical = true;
    for strip in strips_for(&m.config()) {
        let got = stream_float(&m, x, strip);
        let (mut num, mut den, mut max_abs, mut max_ref) = (0f64, 0f64, 0f64, 0f64);
        for (a, b) in got.iter().zip(&want) {
            assert!(a.is_finite(), "{what}: non-finite streaming output");
            identical &= a.to_bits() == b.to_bits();
            let d = (*a as f64 - *b as f64).abs();
            num += d * d;
            den += (*b as f64) * (*b as f64);
            max_abs = max_abs.max(d);
            max_ref = max_ref.max((*b as f64).abs());
        }
        let rel = (num / den.max(f64::MIN_POSITIVE)).sqrt();
        // f16 stores activations with 11-bit mantissas: one ulp of difference is 5e-4.
        let bound = if m.dtype() == DType::F16 { 2e-3 } else { 1e-6 };
        assert!(
            rel <= bound && max_abs <= bound * max_ref,
            "{what}: {} strip {strip}: relative L2 {rel:e}, max abs {max_abs:e} (max |y| {max_ref:e})",
            m.dtype().name()
        );
    }
    identical
}

fn ldp(c_in: usize, c_out: usize, h: usize, w: usize) -> ModelConfig {
    ModelConfig::Ldp(LdpConfig { c_in, c_out, h, w })
}

const LDP_SHAPES: &[(usize, usize, usize, usize)] = &[
    (8, 8, 1, 1),
    (8, 8, 1, 9),
    (8, 8, 9, 1),
    (6, 10, 5, 3),
    (8, 24, 7, 9),
    (12, 12, 9, 13),
    (16, 16, 8, 8),
    (5, 5, 2, 2),
    (4, 7, 3, 2),
    (7, 4, 2, 3),
    (16, 16, 16, 11),
    (3, 3, 13, 17),
];

#[test]
fn ldp_int8_bit_identical() {
    for (k, &(ci, co, h, w)) in LDP_SHAPES.iter().enumerate() {
        let cfg = ldp(ci, co, h, w);
        let blob = int8_blob(cfg, 7 + k as u64);
        for s in 0..2 {
            check_i8(
                &blob,
                &randn(cfg.input_len(), 1000 + s, 1.0),
                &format!("ldp {ci}->{co} {h}x{w}"),
            );
        }
    }
}

#[test]
fn ldp_float_within_1e6() {
    for (k, &(ci, co, h, w)) in LDP_SHAPES.iter().enumerate() {
        let cfg = ldp(ci, co, h, w);
        let x = randn(cfg.input_len(), 2000 + k as u64, 1.0);
        for dtype in [DType::F32, DType::F16] {
            assert!(
                check_float(
                    &float_blob(cfg, 11 + k as u64, dtype),
                    &x,
                    &format!("ldp {ci}->{co} {h}x{w}"),
                ),
                "ldp {ci}->{co} {h}x{w} {dtype:?}: streaming is not bit-identical"
            );
        }
    }
}

const V2_SHAPES: &[(usize, usize, usize)] = &[
    (8, 16, 1),
    (8, 16, 5),
    (16, 8, 12),
    (8, 16, 13),
    (8, 16, 24),
    (6, 10, 7),
    (4, 8, 25),
];

#[test]
fn v2_int8_identical_float_within_1e6() {
    for (k, &(ci, co, h)) in V2_SHAPES.iter().enumerate() {
        let cfg = ModelConfig::MobileVlmV2(V2Config {
            c_in: ci,
            c_out: co,
            h,
        });
        let x = randn(cfg.input_len(), 3000 + k as u64, 1.0);
        let what = format!("v2 {ci}->{co} h{h}");
        check_i8(&int8_blob(cfg, 21 + k as u64), &x, &what);
        for dtype in [DType::F32, DType::F16] {
            assert!(
                check_float(&float_blob(cfg, 31 + k as u64, dtype), &x, &what),
                "{what} {dtype:?} not bit-identical"
            );
        }
    }
}

/// LLaVA's `mlp2x_gelu` (a graph architecture): `(c_in, c_out, h, w)`, including one token,
/// odd widths and a non-square grid.
const MLP_SHAPES: &[(usize, usize, usize, usize)] = &[
    (16, 24, 1, 1),
    (5, 7, 3, 4),
    (24, 40, 5, 7),
    (32, 64, 6, 6),
    (1, 1, 2, 2),
    (40, 24, 1, 9),
];

#[test]
fn mlp2x_gelu_int8_identical_float_within_1e6() {
    for (k, &(ci, co, h, w)) in MLP_SHAPES.iter().enumerate() {
        let cfg = ModelConfig::Graph(ldp_core::graph::GraphConfig {
            arch: ldp_core::Arch::Mlp2xGelu,
            c_in: ci,
            c_out: co,
            h,
            w,
        });
        let x = randn(cfg.input_len(), 5000 + k as u64, 1.0);
        let what = format!("mlp2x-gelu {ci}->{co} {h}x{w}");
        check_i8(&int8_blob(cfg, 61 + k as u64), &x, &what);
        for dtype in [DType::F32, DType::F16] {
            assert!(
                check_float(&float_blob(cfg, 71 + k as u64, dtype), &x, &what),
                "{what} {dtype:?} not bit-identical"
            );
        }
    }
}

const V1_SHAPES: &[(usize, usize, usize)] = &[
    (16, 16, 1),
    (16, 32, 5),
    (8, 16, 6),
    (24, 48, 7),
    (8, 8, 2),
    (8, 16, 3),
];

#[test]
fn v1_int8_identical_float_within_1e6() {
    for (k, &(ci, co, h)) in V1_SHAPES.iter().enumerate() {
        let cfg = ModelConfig::MobileVlmV1(V1Config::new(ci, co, h));
        let x = randn(cfg.input_len(), 4000 + k as u64, 1.0);
        let what = format!("v1 {ci}->{co} h{h}");
        check_i8(&int8_blob(cfg, 41 + k as u64), &x, &what);
        // The graph's row executor sums each squeeze-excitation's mean in row order, as the
        // whole-tensor kernel does: the same bits.
        for dtype in [DType::F32, DType::F16] {
            assert!(
                check_float(&float_blob(cfg, 51 + k as u64, dtype), &x, &what),
                "{what} {dtype:?} not bit-identical"
            );
        }
    }
}

/// The golden cases: int8 blobs quantized in-process from the committed weights and
/// calibration sets, f32 blobs from the same weights; the golden inputs.
#[test]
fn golden_cases_int8_identical_float_within_1e6() {
    let index: Vec<String> =
        serde_json::from_slice(&std::fs::read(golden_dir().join("index.json")).unwrap()).unwrap();
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
        // int8 activations and an int8 input on every case (`auto` gives the heavy-tailed V2
        // case 16-bit activations and the heavy-tailed `ldp`/V1 cases a 16-bit input, which
        // streaming refuses: `a16_blobs_are_refused_by_streaming`,
        // `x16_blobs_are_refused_by_streaming`).
        let opts = Int8Options {
            activations: Activations::Int8,
            input_quant: ldp_quant::int8::InputQuant::PerTensor,
            ..Int8Options::default()
        };
        let int8 =
            AlignedBytes::from_slice(&ldp_quant::int8::quantize(&model, &calib, &opts).unwrap());
        let f32b =
            AlignedBytes::from_slice(&ldp_quant::write::float_blob(&model, DType::F32).unwrap());
        let input = ldp_quant::npy::read_f32(&dir.join("input.npy")).unwrap();
        let xs = ldp_quant::layout::split_batch(&input, &cfg, "input", false).unwrap();
        for x in &xs {
            check_i8(&int8, x, &name);
            let same = check_float(&f32b, x, &name);
            println!("{name}: f32 streaming bit-identical to whole-tensor: {same}");
        }
    }
}

/// A V2 blob with 16-bit activations is refused by the streaming executor with
/// `Error::Unsupported` (not run, not a panic), and the int8-boundary entry points refuse it too.
#[test]
fn a16_blobs_are_refused_by_streaming() {
    for cfg in [
        ModelConfig::MobileVlmV2(V2Config {
            c_in: 4,
            c_out: 8,
            h: 13,
        }),
        ModelConfig::MobileVlmV1(V1Config::new(4, 8, 5)),
    ] {
        a16_refused(cfg);
    }
}

fn a16_refused(cfg: ModelConfig) {
    let model = FloatModel::synthetic(cfg, 5);
    let samples = (0..4)
        .map(|i| randn(cfg.input_len(), 40 + i as u64, 1.0))
        .collect();
    let calib = CalibSet {
        config: cfg,
        samples,
    };
    let opts = Int8Options {
        activations: Activations::Int16,
        ..Int8Options::default()
    };
    let blob = AlignedBytes::from_slice(&ldp_quant::int8::quantize(&model, &calib, &opts).unwrap());
    let m = Model::parse(blob.as_bytes()).unwrap();
    assert!(ldp_core::quant::a16::is_a16(&m));
    let x = randn(cfg.input_len(), 77, 1.0);
    let xq = vec![0i8; cfg.input_len()];
    let mut s = scratch(stream::scratch_bytes(&cfg, DType::Int8, 2));
    let ((wi, wo), (c_in, c_out)) = (row_w(&cfg), cfg.channels());
    let mut src = SliceSource::new(&xq, wi, c_in);
    let mut out = vec![0i8; cfg.output_len()];
    let mut sink = SliceSink::new(&mut out, wo, c_out);
    let e = stream::forward_i8(&m, 2, &mut src, &mut sink, s.as_mut_bytes()).unwrap_err();
    assert!(matches!(e, ldp_core::Error::Unsupported(_)), "{e:?}");
    let mut q = vec![0i8; cfg.input_len()];
    assert!(matches!(
        ldp_core::quant::quantize_input(&m, &x, &mut q),
        Err(ldp_core::Error::Unsupported(_))
    ));
    // The whole-tensor pass runs it.
    let mut y = vec![0f32; cfg.output_len()];
    let mut ws = scratch(m.scratch_bytes());
    m.forward(&x, &mut y, ws.as_mut_bytes()).unwrap();
    assert!(y.iter().all(|v| v.is_finite()));
}

/// `ldp` and V1 blobs with a 16-bit input are refused by the streaming executor and by the
/// int8-input entry points with `Error::Unsupported`; `Model::forward` runs them, and equals
/// the public 16-bit-input pieces (`quantize_input16`, `forward_x16`, `dequantize_output`).
#[test]
fn x16_blobs_are_refused_by_streaming() {
    let cfgs = [
        ModelConfig::MobileVlmV1(V1Config::new(8, 16, 6)),
        ModelConfig::Ldp(LdpConfig {
            c_in: 8,
            c_out: 8,
            h: 6,
            w: 5,
        }),
    ];
    for cfg in cfgs {
        let model = FloatModel::synthetic(cfg, 9);
        let samples = (0..4)
            .map(|i| randn(cfg.input_len(), 50 + i as u64, 1.0))
            .collect();
        let calib = CalibSet {
            config: cfg,
            samples,
        };
        let opts = Int8Options {
            input_quant: ldp_quant::int8::InputQuant::Int16,
            ..Int8Options::default()
        };
        let blob =
            AlignedBytes::from_slice(&ldp_quant::int8::quantize(&model, &calib, &opts).unwrap());
        let m = Model::parse(blob.as_bytes()).unwrap();
        assert!(ldp_core::quant::is_x16(&m));
        let x = randn(cfg.input_len(), 78, 1.0);
        let xq = vec![0i8; cfg.input_len()];
        let mut s = scratch(stream::scratch_bytes(&cfg, DType::Int8, 2));
        let ((wi, wo), (c_in, c_out)) = (row_w(&cfg), cfg.channels());
        let mut src = SliceSource::new(&xq, wi, c_in);
        let mut out = vec![0i8; cfg.output_len()];
        let mut sink = SliceSink::new(&mut out, wo, c_out);
        let e = stream::forward_i8(&m, 2, &mut src, &mut sink, s.as_mut_bytes()).unwrap_err();
        assert!(matches!(e, ldp_core::Error::Unsupported(_)), "{e:?}");
        let mut q = vec![0i8; cfg.input_len()];
        assert!(matches!(
            ldp_core::quant::quantize_input(&m, &x, &mut q),
            Err(ldp_core::Error::Unsupported(_))
        ));
        let mut ws = scratch(m.scratch_bytes());
        let mut yq = vec![0i8; cfg.output_len()];
        assert!(matches!(
            ldp_core::quant::forward_i8(&m, &q, &mut yq, ws.as_mut_bytes()),
            Err(ldp_core::Error::Unsupported(_))
        ));
        // The whole-tensor pass runs it, and equals the 16-bit-input pieces.
        let mut y = vec![0f32; cfg.output_len()];
        m.forward(&x, &mut y, ws.as_mut_bytes()).unwrap();
        let mut x16 = vec![0i16; cfg.input_len()];
        ldp_core::quant::quantize_input16(&m, &x, &mut x16).unwrap();
        ldp_core::quant::forward_x16(&m, &x16, &mut yq, ws.as_mut_bytes()).unwrap();
        let mut y2 = vec![0f32; cfg.output_len()];
        ldp_core::quant::dequantize_output(&m, &yq, &mut y2).unwrap();
        assert_eq!(y, y2);
        // And it is close to the f32 model (a generous sanity bound on a synthetic model; the
        // accuracy bounds are asserted on the golden and sweep cases).
        let want = model.forward(&x).unwrap();
        let num: f64 = y
            .iter()
            .zip(&want)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum();
        let den: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
        assert!(
            (num / den).sqrt() < 0.2,
            "{:?}: rel {}",
            cfg,
            (num / den).sqrt()
        );
    }
}

fn ints(r: &mut Rng, n: usize, range: i32) -> Vec<i32> {
    (0..n).map(|_| (r.next() >> 33) as i32 % range).collect()
}

/// The row-range depthwise and resize kernels against the whole-tensor kernels, on every
/// output row and on column segments of every length and offset (with the input rows sliced
/// to just the columns the segment needs).
#[test]
fn row_kernels_equal_whole_tensor_kernels() {
    let mut r = Rng(12345);
    for &(h, w, c) in &[
        (1, 1, 3),
        (1, 7, 2),
        (7, 1, 5),
        (5, 6, 9),
        (8, 8, 4),
        (9, 11, 3),
    ] {
        for stride in [1, 2] {
            let s = DwShape { h, w, c, stride };
            // int8
            let x: Vec<i8> = (0..h * w * c).map(|_| r.i8()).collect();
            let wt: Vec<i8> = (0..9 * c).map(|_| r.i8()).collect();
            let bias: Vec<i16> = ints(&mut r, c, 1 << 14).iter().map(|&v| v as i16).collect();
            let mult: Vec<u8> = ints(&mut r, c, 256)
                .iter()
                .map(|&v| v.unsigned_abs() as u8)
                .collect();
            let q = ConvQ {
                weight: &wt,
                bias: &bias,
                bias_shift: 2,
                mult: &mult,
                shift: 11,
                in_zero: 5,
                out_zero: -3,
                lut: None,
            };
            let mut want = vec![0i8; s.ho() * s.wo() * c];
            qk::depthwise(s, &x, &q, &mut want).unwrap();
            // f32
            let xf: Vec<f32> = (0..h * w * c).map(|_| r.f32()).collect();
            let wf: Vec<f32> = (0..9 * c).map(|_| r.f32()).collect();
            let bf: Vec<f32> = (0..c).map(|_| r.f32()).collect();
            let res: Vec<f32> = (0..s.ho() * s.wo() * c).map(|_| r.f32()).collect();
            let mut wantf = vec![0f32; s.ho() * s.wo() * c];
            depthwise3x3::<f32, f32, f32, f32>(s, &xf, &wf, Some(&bf), Some(&res), &mut wantf)
                .unwrap();
            for oy in 0..s.ho() {
                for ox0 in 0..s.wo() {
                    for ox1 in ox0 + 1..=s.wo() {
                        let lo = (ox0 * stride).saturating_sub(1);
                        let hi = ((ox1 - 1) * stride + 1).min(w - 1) + 1;
                        let row = |iy: isize| -> Option<(usize, usize)> {
                            (iy >= 0 && (iy as usize) < h)
                                .then(|| ((iy as usize * w + lo) * c, (iy as usize * w + hi) * c))
                        };
                        let base = (oy * stride) as isize;
                        let spans: [Option<(usize, usize)>; 3] =
                            [row(base - 1), row(base), row(base + 1)];
                        let inp = sk::DwRows {
                            rows: spans.map(|sp| sp.map(|(a, b)| &x[a..b])),
                            col0: lo,
                        };
                        let mut got = vec![0i8; (ox1 - ox0) * c];
                        sk::depthwise_row_i8(s, &inp, &q, oy, ox0, &mut got).unwrap();
                        let o = (oy * s.wo() + ox0) * c;
                        assert_eq!(
                            got,
                            want[o..o + got.len()],
                            "int8 dw {s:?} oy {oy} cols {ox0}..{ox1}"
                        );
                        let inpf = sk::DwRows {
                            rows: spans.map(|sp| sp.map(|(a, b)| &xf[a..b])),
                            col0: lo,
                        };
                        let mut gotf = vec![0f32; (ox1 - ox0) * c];
                        sk::depthwise_row_float(
                            s,
                            &inpf,
                            &wf,
                            Some(&bf),
                            Some(&res[o..o + gotf.len()]),
                            oy,
                            ox0,
                            &mut gotf,
                        )
                        .unwrap();
                        assert!(
                            gotf.iter()
                                .zip(&wantf[o..])
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "f32 dw {s:?} oy {oy} cols {ox0}..{ox1}"
                        );
                    }
                }
            }
            // A segment whose rows lack a halo column, or a row, is refused, not misread.
            let mut y = vec![0i8; c];
            if s.wo() > 1 && h == 1 {
                let inp = sk::DwRows {
                    rows: [None, Some(&x[..w * c]), None],
                    col0: stride,
                };
                assert!(sk::depthwise_row_i8(s, &inp, &q, 0, 1, &mut y).is_err());
            }
            if h > 1 {
                let inp = sk::DwRows {
                    rows: [None, Some(&x[..w * c]), None],
                    col0: 0,
                };
                assert!(sk::depthwise_row_i8(s, &inp, &q, 0, 0, &mut y).is_err());
            }
        }
        // Resize to ceil(h/2) × ceil(w/2), int8 with per-channel zero points, and f32.
        let (ho, wo) = (h.div_ceil(2), w.div_ceil(2));
        let x: Vec<i8> = (0..h * w * c).map(|_| r.i8()).collect();
        let zin: Vec<i8> = (0..c).map(|_| r.i8() / 4).collect();
        let mult: Vec<i16> = (0..c).map(|_| (r.next() >> 50) as i16).collect();
        let mut want = vec![0i8; ho * wo * c];
        qk::resize_bilinear(&x, h, w, c, &zin, &mult, 2, 7, &mut want, ho, wo).unwrap();
        let xf: Vec<f32> = (0..h * w * c).map(|_| r.f32()).collect();
        let mut wantf = vec![0f32; ho * wo * c];
        ldp_core::kernels::resize::bilinear(&xf, h, w, c, &mut wantf, ho, wo).unwrap();
        let rq = sk::ResizeQ {
            in_zero: &zin,
            mult: &mult,
            shift: 2,
            out_zero: 7,
        };
        for oy in 0..ho {
            let (y0, y1, ly) = qk::taps_q10(oy, h, ho);
            let (f0, f1, lyf) = ldp_core::kernels::resize::taps(oy, h, ho);
            for ox0 in 0..wo {
                for ox1 in ox0 + 1..=wo {
                    let lo = (2 * ox0).saturating_sub(1);
                    let hi = (2 * ox1).min(w);
                    let sl = |v: &[i8], iy: usize| v[(iy * w + lo) * c..(iy * w + hi) * c].to_vec();
                    let mut got = vec![0i8; (ox1 - ox0) * c];
                    sk::resize_row_i8(
                        [&sl(&x, y0), &sl(&x, y1)],
                        lo,
                        w,
                        wo,
                        c,
                        &rq,
                        ly,
                        ox0,
                        &mut got,
                    )
                    .unwrap();
                    let o = (oy * wo + ox0) * c;
                    assert_eq!(
                        got,
                        want[o..o + got.len()],
                        "int8 resize {h}x{w} oy {oy} cols {ox0}..{ox1}"
                    );
                    let slf = |iy: usize| &xf[(iy * w + lo) * c..(iy * w + hi) * c];
                    let mut gotf = vec![0f32; (ox1 - ox0) * c];
                    sk::resize_row_float([slf(f0), slf(f1)], lo, w, wo, c, lyf, ox0, &mut gotf)
                        .unwrap();
                    assert!(
                        gotf.iter()
                            .zip(&wantf[o..])
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "f32 resize {h}x{w} oy {oy}"
                    );
                }
            }
        }
    }
}

#[test]
fn crc_helpers() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let whole = stream::crc32_update(0, &data);
    assert_eq!(stream::crc32_update(0, b"123456789"), 0xCBF4_3926);
    for cut in [0, 1, 17, 500, 999, 1000] {
        let (a, b) = data.split_at(cut);
        let ca = stream::crc32_update(0, a);
        assert_eq!(stream::crc32_update(ca, b), whole);
        assert_eq!(
            stream::crc32_combine(ca, stream::crc32_update(0, b), b.len()),
            whole
        );
    }
    // RowCrc over a column-strip run equals the CRC of the row-major whole-tensor output.
    let cfg = ldp(8, 8, 9, 13);
    let blob = int8_blob(cfg, 3);
    let m = Model::parse(blob.as_bytes()).unwrap();
    let (xq, want) = whole_i8(&m, &randn(cfg.input_len(), 9, 1.0));
    let (h2, w2) = cfg.output_grid();
    let mut state = vec![0u32; h2];
    let mut sink = RowCrc::new(&mut state, w2 * 8);
    let mut s = scratch(stream::scratch_bytes(&cfg, DType::Int8, 2));
    stream::forward_i8(
        &m,
        2,
        &mut SliceSource::new(&xq, 13, 8),
        &mut sink,
        s.as_mut_bytes(),
    )
    .unwrap();
    assert_eq!(sink.written(), want.len());
    let bytes: Vec<u8> = want.iter().map(|&v| v as u8).collect();
    assert_eq!(sink.finish(), stream::crc32_update(0, &bytes));
}

#[test]
fn scratch_is_checked_and_small() {
    let cfg = ldp(8, 8, 9, 13);
    let blob = int8_blob(cfg, 4);
    let m = Model::parse(blob.as_bytes()).unwrap();
    let need = stream::scratch_bytes(&cfg, DType::Int8, 2);
    let xq = vec![0i8; cfg.input_len()];
    let mut y = vec![0i8; cfg.output_len()];
    let mut s = scratch(need);
    let r = stream::forward_i8(
        &m,
        2,
        &mut SliceSource::new(&xq, 13, 8),
        &mut SliceSink::new(&mut y, 7, 8),
        &mut s.as_mut_bytes()[..need - 1],
    );
    assert!(matches!(r, Err(ldp_core::Error::ScratchTooSmall { .. })));
    let r = stream::forward_i8(
        &m,
        0,
        &mut SliceSource::new(&xq, 13, 8),
        &mut SliceSink::new(&mut y, 7, 8),
        s.as_mut_bytes(),
    );
    assert!(r.is_err());
    // The seed LDP(128, 128) on 64×64: whole-tensor int8 > 1.5 MiB, streaming in strips of 16
    // output columns < 40 KiB.
    let seed = ldp(128, 128, 64, 64);
    assert!(stream::whole_tensor_bytes(&seed, DType::Int8) > 1536 * 1024);
    assert!(stream::scratch_bytes(&seed, DType::Int8, 16) < 40 * 1024);
}

#[allow(dead_code)]
#[path = "../examples/gen_lm3s.rs"]
mod gen_lm3s;

/// The committed `qemu-lm3s` data (`firmware/data/qemu-lm3s/`) is consistent: the blob holds the
/// int8 `LDP(128, 128)` on 64×64, and `output_crc32` in `stream.txt` is the CRC-32 of the
/// whole-tensor int8 output of that blob on the board's generated input — which streaming in
/// the board's strips reproduces. (The blob itself depends on the quantizer; regenerate it
/// with the example after quantizer changes if wanted — the check stays valid either way.)
#[test]
fn lm3s_firmware_data_is_consistent() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/data/qemu-lm3s");
    let blob = AlignedBytes::from_slice(&std::fs::read(dir.join("model.int8.ldp")).unwrap());
    let m = Model::parse(blob.as_bytes()).unwrap();
    assert_eq!(m.config(), ModelConfig::Ldp(gen_lm3s::CFG));
    assert_eq!(m.dtype(), DType::Int8);
    let text = std::fs::read_to_string(dir.join("stream.txt")).unwrap();
    let field = |k: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(k))
            .unwrap_or_else(|| panic!("stream.txt lacks `{k}`"));
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    let crc = u32::from_str_radix(field("output_crc32").trim_start_matches("0x"), 16).unwrap();
    let seed = u32::from_str_radix(field("input_seed").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(seed, gen_lm3s::INPUT_SEED);
    assert_eq!(field("strip").parse::<usize>().unwrap(), gen_lm3s::STRIP);
    assert_eq!(
        gen_lm3s::whole_tensor_crc(&m),
        crc,
        "stream.txt's output_crc32 does not match the blob: regenerate the data"
    );
    assert_eq!(gen_lm3s::streamed_crc(&m), crc);
    // It fits the board with room for the stack.
    let cfg = ModelConfig::Ldp(gen_lm3s::CFG);
    assert!(stream::scratch_bytes(&cfg, DType::Int8, gen_lm3s::STRIP) < 40 * 1024);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 40, .. proptest::prelude::ProptestConfig::default() })]

    /// Random `ldp` geometry (1–12 channels each side, 1–14 rows and columns), random strip
    /// width, random synthetic model: int8 streaming equals whole-tensor bit for bit.
    #[test]
    fn ldp_int8_random_shapes(c_in in 1usize..=12, c_out in 1usize..=12, h in 1usize..=14, w in 1usize..=14,
                              strip in 1usize..=8, seed in 0u64..1000) {
        let cfg = ldp(c_in, c_out, h, w);
        let blob = int8_blob(cfg, seed);
        let m = Model::parse(blob.as_bytes()).unwrap();
        let (xq, want) = whole_i8(&m, &randn(cfg.input_len(), seed + 7, 1.0));
        let got = stream_i8(&m, &xq, strip);
        proptest::prop_assert_eq!(got, want);
    }
}

/// `quant::quantize_input_nchw` / `dequantize_output_nchw` (the CLI's channels-first int8 path)
/// give the same bits as transposing in f32 and calling `quantize_input` / `dequantize_output`,
/// per-tensor and per-channel inputs, odd sizes; wrong lengths and other architectures are
/// errors, not panics.
#[test]
fn ldp_channels_first_int8_boundary_matches_channels_last() {
    let shapes = [(8, 8, 6, 5), (3, 5, 1, 1), (16, 16, 7, 9)];
    for (k, &(c_in, c_out, h, w)) in shapes.iter().enumerate() {
        let cfg = ModelConfig::Ldp(LdpConfig { c_in, c_out, h, w });
        let model = FloatModel::synthetic(cfg, 90 + k as u64);
        let samples = (0..3)
            .map(|i| randn(cfg.input_len(), 300 + i as u64, 1.0))
            .collect();
        let calib = CalibSet {
            config: cfg,
            samples,
        };
        for iq in [
            ldp_quant::int8::InputQuant::PerTensor,
            ldp_quant::int8::InputQuant::PerChannel,
        ] {
            let opts = Int8Options {
                input_quant: iq,
                ..Int8Options::default()
            };
            let blob = AlignedBytes::from_slice(
                &ldp_quant::int8::quantize(&model, &calib, &opts).unwrap(),
            );
            let m = Model::parse(blob.as_bytes()).unwrap();
            let (n_in, n_out) = (cfg.input_len(), cfg.output_len());
            let x_nchw = randn(n_in, 400 + k as u64, 1.5);
            let mut x_nhwc = vec![0f32; n_in];
            ldp_core::tensor::nchw_to_nhwc(&x_nchw, &mut x_nhwc, c_in, h, w).unwrap();
            let mut want = vec![0i8; n_in];
            ldp_core::quant::quantize_input(&m, &x_nhwc, &mut want).unwrap();
            let (mut got, mut tmp) = (vec![0i8; n_in], vec![0i8; n_in]);
            ldp_core::quant::quantize_input_nchw(&m, &x_nchw, &mut got, &mut tmp).unwrap();
            assert_eq!(got, want, "{cfg:?} {iq:?}: input");
            let mut short = vec![0i8; n_in.saturating_sub(1)];
            assert!(
                ldp_core::quant::quantize_input_nchw(&m, &x_nchw, &mut got, &mut short).is_err()
            );
            let mut yq = vec![0i8; n_out];
            let mut s = scratch(m.scratch_bytes());
            ldp_core::quant::forward_i8(&m, &got, &mut yq, s.as_mut_bytes()).unwrap();
            let mut y_nhwc = vec![0f32; n_out];
            ldp_core::quant::dequantize_output(&m, &yq, &mut y_nhwc).unwrap();
            let (h2, w2) = cfg.output_grid();
            let mut want_y = vec![0f32; n_out];
            ldp_core::tensor::nhwc_to_nchw(&y_nhwc, &mut want_y, c_out, h2, w2).unwrap();
            let (mut got_y, mut ytmp) = (vec![0f32; n_out], vec![0i8; n_out]);
            ldp_core::quant::dequantize_output_nchw(&m, &yq, &mut got_y, &mut ytmp).unwrap();
            let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got_y), bits(&want_y), "{cfg:?} {iq:?}: output");
        }
    }
    // Token models have no channels-first layout.
    let cfg = ModelConfig::MobileVlmV2(V2Config {
        c_in: 4,
        c_out: 8,
        h: 4,
    });
    let blob = int8_blob(cfg, 3);
    let m = Model::parse(blob.as_bytes()).unwrap();
    let x = randn(cfg.input_len(), 1, 1.0);
    let (mut q, mut t) = (vec![0i8; cfg.input_len()], vec![0i8; cfg.input_len()]);
    assert!(matches!(
        ldp_core::quant::quantize_input_nchw(&m, &x, &mut q, &mut t),
        Err(ldp_core::Error::Unsupported(_))
    ));
}

/// `Model::forward` refuses a NaN or an infinity anywhere in the input with its index (the
/// first one), in either scan chunk and at the edges, for f32 and int8 blobs alike.
#[test]
fn forward_reports_the_first_non_finite_input_index() {
    let cfg = ModelConfig::Ldp(LdpConfig {
        c_in: 8,
        c_out: 8,
        h: 16,
        w: 17,
    });
    let n = cfg.input_len();
    assert!(n > 2048);
    for blob in [float_blob(cfg, 5, DType::F32), int8_blob(cfg, 6)] {
        let m = Model::parse(blob.as_bytes()).unwrap();
        let mut s = scratch(m.scratch_bytes());
        let mut y = vec![0f32; cfg.output_len()];
        for (at, bad) in [
            (0, f32::NAN),
            (1023, f32::INFINITY),
            (1024, f32::NEG_INFINITY),
            (n - 1, f32::NAN),
        ] {
            let mut x = randn(n, 9, 1.0);
            x[at] = bad;
            if at + 5 < n {
                x[at + 5] = f32::NAN; // a later one is not the one reported
            }
            let e = m.forward(&x, &mut y, s.as_mut_bytes()).unwrap_err();
            assert!(
                matches!(e, ldp_core::Error::NonFiniteInput { index } if index == at),
                "{e:?} at {at}"
            );
        }
        let x = randn(n, 9, 1.0);
        m.forward(&x, &mut y, s.as_mut_bytes()).unwrap();
    }
}
