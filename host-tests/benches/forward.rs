//! End-to-end forward passes per architecture × dtype at the real sizes, single thread:
//! the seed `ldp` 128 → 128 on 64×64, MobileVLM V1 and V2 1024 → 2048 on 576 tokens (24×24).
//! Synthetic weights (`FloatModel::synthetic`); int8 blobs are calibrated on 2 synthetic
//! inputs. `cargo bench -p host-tests --bench forward [-- FILTER]`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ldp_core::arch::ldp::LdpConfig;
use ldp_core::arch::mobilevlm_v1::V1Config;
use ldp_core::arch::mobilevlm_v2::V2Config;
use ldp_core::{DType, Model, ModelConfig};
use ldp_quant::calib::CalibSet;
use ldp_quant::quantize::Int8Options;
use ldp_quant::{AlignedBytes, FloatModel};

fn input(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // roughly N(0, 1): sum of 4 uniforms, rescaled
            let u = |k: u32| ((s >> (16 * k)) & 0xffff) as f32 / 65536.0;
            (u(0) + u(1) + u(2) + u(3) - 2.0) * 1.732
        })
        .collect()
}

fn models() -> Vec<(&'static str, ModelConfig)> {
    vec![
        (
            "ldp_128to128_64x64",
            ModelConfig::Ldp(LdpConfig {
                c_in: 128,
                c_out: 128,
                h: 64,
                w: 64,
            }),
        ),
        (
            "mobilevlm-v1_1024to2048_576",
            ModelConfig::MobileVlmV1(V1Config::new(1024, 2048, 24)),
        ),
        (
            "mobilevlm-v2_1024to2048_576",
            ModelConfig::MobileVlmV2(V2Config {
                c_in: 1024,
                c_out: 2048,
                h: 24,
            }),
        ),
    ]
}

fn bench_forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("forward");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, cfg) in models() {
        let model = FloatModel::synthetic(cfg, 7);
        let x = input(cfg.input_len(), 1);
        for dtype in ["f32", "f16", "int8"] {
            let id = BenchmarkId::new(dtype, name);
            // Filtered out? Skip the (slow for int8) blob construction.
            if let Some(f) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
                if !format!("forward/{dtype}/{name}").contains(&f) {
                    continue;
                }
            }
            let blob = match dtype {
                "f32" => ldp_quant::write::float_blob(&model, DType::F32).unwrap(),
                "f16" => ldp_quant::write::float_blob(&model, DType::F16).unwrap(),
                _ => {
                    let calib = CalibSet {
                        config: cfg,
                        samples: vec![input(cfg.input_len(), 2), input(cfg.input_len(), 3)],
                    };
                    ldp_quant::int8::quantize(&model, &calib, &Int8Options::default()).unwrap()
                }
            };
            let blob = AlignedBytes::from_slice(&blob);
            let m = Model::parse(blob.as_bytes()).unwrap();
            let mut y = vec![0.0f32; m.output_len()];
            let mut scratch = AlignedBytes::zeroed(m.scratch_bytes());
            g.bench_function(id, |b| {
                b.iter(|| {
                    m.forward(black_box(&x), &mut y, scratch.as_mut_bytes())
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_forward);
criterion_main!(benches);
