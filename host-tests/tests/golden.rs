//! ldp-core's typed f32 and f16 forward passes against PyTorch float64 on every golden case.
//!
//! The data comes from `tools/golden/gen_golden.py` (real torch/torchvision/timm modules).
//! Bounds: f32 relative L2 ≤ 1e-5 (PyTorch's own f32 run is ~1e-7), f16 ≤ 5e-3.

use half::f16;
use host_tests::{golden_dir, rel_l2};
use ldp_core::arch::{ldp, mobilevlm_v1 as v1, mobilevlm_v2 as v2};
use ldp_core::kernels::se::SeWeights;
use ldp_core::Elem;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

struct Case {
    name: String,
    meta: serde_json::Value,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    input: (Vec<u64>, Vec<f32>),
    expected: Vec<f64>,
    heldout: (Vec<u64>, Vec<f32>),
    heldout_expected: Vec<f64>,
}

fn npy_f32(p: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(p).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}
fn npy_f64(p: &Path) -> Vec<f64> {
    let bytes = std::fs::read(p).unwrap();
    npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<f64>()
        .unwrap()
}

fn load(name: &str) -> Case {
    let dir = golden_dir().join(name);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let st_bytes = std::fs::read(dir.join("weights.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&st_bytes).unwrap();
    let mut tensors = HashMap::new();
    for (k, v) in st.tensors() {
        assert_eq!(v.dtype(), safetensors::Dtype::F32);
        let data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(k.to_string(), (v.shape().to_vec(), data));
    }
    Case {
        name: name.to_string(),
        meta,
        tensors,
        input: npy_f32(&dir.join("input.npy")),
        expected: npy_f64(&dir.join("expected.npy")),
        heldout: npy_f32(&dir.join("heldout.npy")),
        heldout_expected: npy_f64(&dir.join("heldout_expected.npy")),
    }
}

fn cases() -> Vec<String> {
    serde_json::from_slice(&std::fs::read(golden_dir().join("index.json")).unwrap()).unwrap()
}

impl Case {
    fn u(&self, k: &str) -> usize {
        self.meta[k].as_u64().unwrap() as usize
    }
    fn f(&self, k: &str) -> &[f32] {
        &self
            .tensors
            .get(k)
            .unwrap_or_else(|| panic!("{}: missing {k}", self.name))
            .1
    }
    fn w<W: Elem>(&self, k: &str) -> Vec<W> {
        self.f(k).iter().map(|&v| W::from_f32(v)).collect()
    }
}

/// Runs one sample (PyTorch layout in, PyTorch layout out as f64).
fn run<W: Elem, A: Elem>(c: &Case, x_torch: &[f32]) -> Vec<f64> {
    let arch = c.meta["arch"].as_str().unwrap();
    let (c_in, c_out, h, w) = (c.u("c_in"), c.u("c_out"), c.u("h"), c.u("w"));
    match arch {
        "ldp" => {
            let cfg = ldp::LdpConfig { c_in, c_out, h, w };
            let ws: Vec<Vec<W>> = [
                "pointwise1.weight",
                "depthwise1.weight",
                "pointwise2.weight",
                "depthwise2.weight",
                "pointwise3.weight",
            ]
            .iter()
            .map(|k| c.w(k))
            .collect();
            let wts = ldp::LdpWeights {
                pw1_w: &ws[0],
                pw1_b: c.f("pointwise1.bias"),
                dw1_w: &ws[1],
                dw1_b: c.f("depthwise1.bias"),
                pw2_w: &ws[2],
                pw2_b: c.f("pointwise2.bias"),
                ln1_w: c.f("norm1.weight"),
                ln1_b: c.f("norm1.bias"),
                dw2_w: &ws[3],
                dw2_b: c.f("depthwise2.bias"),
                pw3_w: &ws[4],
                pw3_b: c.f("pointwise3.bias"),
                ln2_w: c.f("norm2.weight"),
                ln2_b: c.f("norm2.bias"),
            };
            let mut x = vec![0.0f32; cfg.input_len()];
            ldp_core::tensor::nchw_to_nhwc(x_torch, &mut x, c_in, h, w).unwrap();
            let mut y = vec![0.0f32; cfg.output_len()];
            let mut s = vec![A::default(); cfg.scratch_len()];
            ldp::forward(&cfg, &wts, &x, &mut y, &mut s).unwrap();
            let mut y_nchw = vec![0.0f32; y.len()];
            ldp_core::tensor::nhwc_to_nchw(&y, &mut y_nchw, c_out, cfg.h2(), cfg.w2()).unwrap();
            y_nchw.iter().map(|&v| v as f64).collect()
        }
        "mobilevlm-v1" => {
            let cfg = v1::V1Config {
                c_in,
                c_out,
                h,
                squeeze: c.u("squeeze"),
            };
            let k = |b: u32, s: &str| format!("mb_block.{b}.block.{s}");
            let ws: Vec<Vec<W>> = ["mlp.1.weight".to_string(), "mlp.3.weight".to_string()]
                .into_iter()
                .chain([1, 2].into_iter().flat_map(|b| {
                    ["0.0.weight", "1.fc1.weight", "1.fc2.weight", "2.0.weight"].map(|s| k(b, s))
                }))
                .map(|n| c.w(&n))
                .collect();
            let block = |b: u32, o: usize| v1::V1BlockWeights {
                dw_w: &ws[o],
                ln1_w: c.f(&k(b, "0.1.weight")),
                ln1_b: c.f(&k(b, "0.1.bias")),
                se: SeWeights {
                    fc1_w: &ws[o + 1],
                    fc1_b: c.f(&k(b, "1.fc1.bias")),
                    fc2_w: &ws[o + 2],
                    fc2_b: c.f(&k(b, "1.fc2.bias")),
                },
                pw_w: &ws[o + 3],
                ln2_w: c.f(&k(b, "2.1.weight")),
                ln2_b: c.f(&k(b, "2.1.bias")),
            };
            let wts = v1::V1Weights {
                fc1_w: &ws[0],
                fc1_b: c.f("mlp.1.bias"),
                fc2_w: &ws[1],
                fc2_b: c.f("mlp.3.bias"),
                block1: block(1, 2),
                block2: block(2, 6),
            };
            let mut y = vec![0.0f32; cfg.output_len()];
            let mut s = vec![A::default(); cfg.scratch_len()];
            v1::forward(&cfg, &wts, x_torch, &mut y, &mut s).unwrap();
            y.iter().map(|&v| v as f64).collect()
        }
        "mobilevlm-v2" => {
            let cfg = v2::V2Config { c_in, c_out, h };
            let ws: Vec<Vec<W>> = ["mlp.mlp.0.weight", "mlp.mlp.2.weight", "peg.peg.0.weight"]
                .iter()
                .map(|k| c.w(k))
                .collect();
            let wts = v2::V2Weights {
                fc1_w: &ws[0],
                fc1_b: c.f("mlp.mlp.0.bias"),
                fc2_w: &ws[1],
                fc2_b: c.f("mlp.mlp.2.bias"),
                peg_w: &ws[2],
                peg_b: c.f("peg.peg.0.bias"),
            };
            let mut y = vec![0.0f32; cfg.output_len()];
            let mut s = vec![A::default(); cfg.scratch_len()];
            v2::forward(&cfg, &wts, x_torch, &mut y, &mut s).unwrap();
            y.iter().map(|&v| v as f64).collect()
        }
        "mlp2x-gelu" => {
            // A graph architecture: no typed weight struct; the blob path (as the firmware runs
            // it) with the committed weights.
            let imp = ldp_quant::import::import_file(
                &golden_dir().join(&c.name).join("weights.safetensors"),
                None,
                None,
            )
            .unwrap();
            let model = ldp_quant::graph::FloatModel::from_imported(imp, h, w).unwrap();
            let bytes = ldp_quant::write::float_blob(&model, W::DTYPE).unwrap();
            let buf = ldp_quant::AlignedBytes::from_slice(&bytes);
            let m = ldp_core::Model::parse(buf.as_bytes()).unwrap();
            let mut y = vec![0.0f32; m.output_len()];
            let mut s = vec![0u8; m.scratch_bytes()];
            // Tokens `[N][C]` are channels-last already.
            m.forward(x_torch, &mut y, &mut s).unwrap();
            y.iter().map(|&v| v as f64).collect()
        }
        other => panic!("unknown arch {other}"),
    }
}

fn check_all<W: Elem, A: Elem>(bound: f64, label: &str) {
    let mut worst = 0.0f64;
    let mut failures = Vec::new();
    for name in cases() {
        let c = load(&name);
        let y = run::<W, A>(&c, &c.input.1);
        let mut e = rel_l2(&y, &c.expected);
        // Held-out batch, sample by sample.
        let b = c.heldout.0[0] as usize;
        let (xs, es) = (c.heldout.1.len() / b, c.heldout_expected.len() / b);
        for i in 0..b {
            let y = run::<W, A>(&c, &c.heldout.1[i * xs..(i + 1) * xs]);
            e = e.max(rel_l2(&y, &c.heldout_expected[i * es..(i + 1) * es]));
        }
        println!("{label} {name:<24} rel_l2 = {e:.3e}");
        worst = worst.max(e);
        if e.is_nan() || e > bound {
            failures.push(format!("{name}: {e:e}"));
        }
    }
    println!("{label} worst rel_l2 = {worst:.3e} (bound {bound:e})");
    assert!(
        failures.is_empty(),
        "{label} cases above {bound:e}: {failures:?}"
    );
}

#[test]
fn f32_matches_pytorch_float64() {
    check_all::<f32, f32>(1e-5, "f32");
}

#[test]
fn f16_matches_pytorch_float64() {
    check_all::<f16, f16>(5e-3, "f16");
}
