//! Per-kernel benchmarks at the seed LDP shapes (128 channels, 64×64 and 32×32) and the
//! MobileVLM shapes (576 tokens = 24×24, 1024 → 2048 channels; 144 tokens after the stride-2
//! block). Single thread. `cargo bench -p ldp-core --features std --bench kernels [-- FILTER]`.
//!
//! Each pointwise shape is timed through the dispatching entry point (`dispatch`: AVX2 on x86-64
//! CPUs that have it, NEON on AArch64) and through the portable kernel (`tiled`), in f32, f16
//! (f16 activations and weights, f32 arithmetic) and int8 (with an `i8` output, and with an `i16`
//! output and no table). On x86-64 each `dispatch` row has an `avx2` twin: the same call with
//! `cpu::set_x86_level(Avx2)` (the AVX2 kernels on an AVX-512 machine), and a `2threads` twin
//! (`threads::set_threads(2)`); the int8 rows also have `amx` and `vnni` twins (levels `Amx` and
//! `Avx512`: the AMX-INT8 and the AVX-512 VNNI kernels, where the CPU has them); the ratio of
//! two rows of one run is the number to quote.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use half::f16;
use ldp_core::kernels::activation::{gelu_slice, Activation};
use ldp_core::kernels::depthwise::{self, DwShape};
use ldp_core::kernels::norm::layer_norm_inplace;
use ldp_core::kernels::pointwise;
use ldp_core::quant::kernels::{self as qk, ConvQ};

fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn i8s(n: usize, seed: u64) -> Vec<i8> {
    vals(n, seed).iter().map(|v| (v * 127.0) as i8).collect()
}

/// (name, pixels, c_in, c_out, fused activation)
const PW: &[(&str, usize, usize, usize, Option<Activation>)] = &[
    (
        "ldp_pw1_64x64_128to128_gelu",
        4096,
        128,
        128,
        Some(Activation::Gelu),
    ),
    ("ldp_pw3_32x32_128to128", 1024, 128, 128, None),
    (
        "vlm_fc1_576_1024to2048_gelu",
        576,
        1024,
        2048,
        Some(Activation::Gelu),
    ),
    ("vlm_fc2_576_2048to2048", 576, 2048, 2048, None),
    ("vlm_pw_144_2048to2048", 144, 2048, 2048, None),
];

fn bench_pointwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("pointwise");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(name, p, ci, co, act) in PW {
        g.throughput(Throughput::Elements((p * ci * co) as u64)); // MACs
        let x = vals(p * ci, 1);
        let w = vals(co * ci, 2);
        let b = vals(co, 3);
        let mut y = vec![0.0f32; p * co];
        g.bench_function(BenchmarkId::new("f32_dispatch", name), |bch| {
            bch.iter(|| {
                pointwise::pointwise(black_box(&x), ci, &w, Some(&b), co, act, &mut y).unwrap()
            })
        });
        twins(&mut g, "f32", name, &mut || {
            pointwise::pointwise(black_box(&x), ci, &w, Some(&b), co, act, &mut y).unwrap()
        });
        // The AVX-512 GEMM forced, also where the dispatch prefers the AVX2 one (CPUs that
        // split 512-bit FMAs, `cpu::x86_split_512_fma`).
        #[cfg(target_arch = "x86_64")]
        if ldp_core::kernels::cpu::x86_detected() >= ldp_core::kernels::cpu::X86Level::Avx512 {
            g.bench_function(BenchmarkId::new("f32_avx512", name), |bch| {
                // SAFETY: AVX-512 F/BW/VL/DQ, AVX2, FMA, F16C detected (`x86_detected`).
                bch.iter(|| unsafe {
                    pointwise::x86::avx512::pointwise_avx512(
                        black_box(&x),
                        ci,
                        &w,
                        Some(&b),
                        co,
                        act,
                        &mut y,
                    )
                    .unwrap()
                })
            });
        }
        g.bench_function(BenchmarkId::new("f32_tiled", name), |bch| {
            bch.iter(|| {
                pointwise::portable::pointwise(black_box(&x), ci, &w, Some(&b), co, act, &mut y)
                    .unwrap()
            })
        });
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        let mut yh = vec![f16::ZERO; p * co];
        g.bench_function(BenchmarkId::new("f16_dispatch", name), |bch| {
            bch.iter(|| {
                pointwise::pointwise(black_box(&xh), ci, &wh, Some(&b), co, act, &mut yh).unwrap()
            })
        });
        twins(&mut g, "f16", name, &mut || {
            pointwise::pointwise(black_box(&xh), ci, &wh, Some(&b), co, act, &mut yh).unwrap()
        });
        let xq = i8s(p * ci, 4);
        let wq = i8s(co * ci, 5);
        let bq: Vec<i16> = (0..co).map(|i| (i % 1000) as i16 * 37 - 1000).collect();
        let mult: Vec<u8> = (0..co).map(|i| 150 + (i % 100) as u8).collect();
        let lut: Vec<i8> = (0..256i32).map(|i| (i - 128).max(-20) as i8).collect();
        let q = ConvQ {
            weight: &wq,
            bias: &bq,
            bias_shift: 0,
            mult: &mult,
            shift: 17,
            in_zero: 0,
            out_zero: -3,
            lut: act.map(|_| &lut[..]),
        };
        let mut yq = vec![0i8; p * co];
        g.bench_function(BenchmarkId::new("int8_dispatch", name), |bch| {
            bch.iter(|| qk::pointwise(black_box(&xq), ci, &q, co, &mut yq).unwrap())
        });
        twins(&mut g, "int8", name, &mut || {
            qk::pointwise(black_box(&xq), ci, &q, co, &mut yq).unwrap()
        });
        // The same conv with a 16-bit output (a conv feeding a LayerNorm): no table.
        let q16 = ConvQ { lut: None, ..q };
        let mut yq16 = vec![0i16; p * co];
        g.bench_function(BenchmarkId::new("int8_i16out_dispatch", name), |bch| {
            bch.iter(|| qk::pointwise(black_box(&xq), ci, &q16, co, &mut yq16).unwrap())
        });
        // The 16-bit-activation pointwise (int8 weights, i16 in and out; no table): dispatch,
        // and on x86-64 the AVX2 and AVX-512 VNNI kernels forced.
        let x16: Vec<i16> = xq.iter().map(|&v| v as i16 * 97).collect();
        let qa16 = ConvQ {
            lut: None,
            out_zero: 0,
            shift: 24,
            ..q
        };
        g.bench_function(BenchmarkId::new("a16_dispatch", name), |bch| {
            bch.iter(|| {
                ldp_core::quant::a16::pointwise16(black_box(&x16), ci, &qa16, co, &mut yq16)
                    .unwrap()
            })
        });
        #[cfg(target_arch = "x86_64")]
        for (on, vnni, tag) in [
            (is_x86_feature_detected!("avx2"), false, "a16_avx2"),
            (
                ldp_core::kernels::cpu::x86_detected() >= ldp_core::kernels::cpu::X86Level::Avx512
                    && is_x86_feature_detected!("avx512vnni"),
                true,
                "a16_vnni",
            ),
        ] {
            if on {
                g.bench_function(BenchmarkId::new(tag, name), |bch| {
                    // SAFETY: the CPU features were detected just above.
                    bch.iter(|| unsafe {
                        ldp_core::kernels::pointwise::x86::int16::pointwise16_forced(
                            black_box(&x16),
                            ci,
                            &qa16,
                            co,
                            &mut yq16,
                            vnni,
                        )
                        .unwrap()
                    })
                });
            }
        }
        // x86-64: the AMX-INT8 and the AVX-512 VNNI kernels side by side, forced by level.
        #[cfg(target_arch = "x86_64")]
        {
            use ldp_core::kernels::cpu;
            for (lv, tag) in [(cpu::X86Level::Amx, "amx"), (cpu::X86Level::Avx512, "vnni")] {
                if cpu::x86_detected() < lv {
                    continue;
                }
                cpu::set_x86_level(lv);
                g.bench_function(BenchmarkId::new(format!("int8_{tag}"), name), |bch| {
                    bch.iter(|| qk::pointwise(black_box(&xq), ci, &q, co, &mut yq).unwrap())
                });
                g.bench_function(
                    BenchmarkId::new(format!("int8_i16out_{tag}"), name),
                    |bch| {
                        bch.iter(|| qk::pointwise(black_box(&xq), ci, &q16, co, &mut yq16).unwrap())
                    },
                );
            }
            cpu::set_x86_level(cpu::X86Level::Amx);
        }
    }
    g.finish();
}

/// The `avx2` (x86-64 only) and `2threads` twins of a `dispatch` benchmark.
fn twins<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    kind: &str,
    name: &str,
    f: &mut dyn FnMut(),
) {
    #[cfg(target_arch = "x86_64")]
    {
        use ldp_core::kernels::cpu;
        cpu::set_x86_level(cpu::X86Level::Avx2);
        g.bench_function(BenchmarkId::new(format!("{kind}_avx2"), name), |bch| {
            bch.iter(&mut *f)
        });
        cpu::set_x86_level(cpu::X86Level::Amx);
    }
    ldp_core::kernels::threads::set_threads(2);
    g.bench_function(BenchmarkId::new(format!("{kind}_2threads"), name), |bch| {
        bch.iter(&mut *f)
    });
    ldp_core::kernels::threads::set_threads(1);
}

/// (name, h, w, c, stride)
const DW: &[(&str, usize, usize, usize, usize)] = &[
    ("ldp_dw1_64x64x128_s1", 64, 64, 128, 1),
    ("ldp_dw2_64x64x128_s2", 64, 64, 128, 2),
    ("vlm_dw_24x24x2048_s1", 24, 24, 2048, 1),
    ("vlm_dw_24x24x2048_s2", 24, 24, 2048, 2),
];

fn bench_depthwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("depthwise");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(name, h, w, ch, stride) in DW {
        let s = DwShape {
            h,
            w,
            c: ch,
            stride,
        };
        let out = s.ho() * s.wo() * ch;
        g.throughput(Throughput::Elements((out * 9) as u64));
        let x = vals(h * w * ch, 1);
        let wt = vals(ch * 9, 2);
        let b = vals(ch, 3);
        let mut y = vec![0.0f32; out];
        g.bench_function(BenchmarkId::new("f32_dispatch", name), |bch| {
            bch.iter(|| {
                depthwise::depthwise3x3::<f32, f32, f32, f32>(
                    s,
                    black_box(&x),
                    &wt,
                    Some(&b),
                    None,
                    &mut y,
                )
                .unwrap()
            })
        });
        // As in a forward pass, where the map has left L2 (the seed's is 2 MiB): an 8 MiB sweep
        // before each call (timed alone as `evict_only`; subtract it), a residual read too.
        let mut junk = vec![0u8; 8 << 20];
        g.bench_function(BenchmarkId::new("f32_dispatch_evicted", name), |bch| {
            bch.iter(|| {
                junk.iter_mut()
                    .step_by(64)
                    .for_each(|v| *v = v.wrapping_add(1));
                depthwise::depthwise3x3::<f32, f32, f32, f32>(
                    s,
                    black_box(&x),
                    &wt,
                    Some(&b),
                    Some(&x[..out]),
                    &mut y,
                )
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("evict_only", name), |bch| {
            bch.iter(|| {
                junk.iter_mut()
                    .step_by(64)
                    .for_each(|v| *v = v.wrapping_add(1))
            })
        });
        g.bench_function(BenchmarkId::new("f32_tiled", name), |bch| {
            bch.iter(|| {
                depthwise::portable::depthwise3x3::<f32, f32, f32, f32>(
                    s,
                    black_box(&x),
                    &wt,
                    Some(&b),
                    None,
                    &mut y,
                )
                .unwrap()
            })
        });
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let wh: Vec<f16> = wt.iter().map(|&v| f16::from_f32(v)).collect();
        let mut yh = vec![f16::ZERO; out];
        g.bench_function(BenchmarkId::new("f16_dispatch", name), |bch| {
            bch.iter(|| {
                depthwise::depthwise3x3::<f16, f16, f16, f16>(
                    s,
                    black_box(&xh),
                    &wh,
                    Some(&b),
                    None,
                    &mut yh,
                )
                .unwrap()
            })
        });
        let xq = i8s(h * w * ch, 4);
        let wq = i8s(ch * 9, 5);
        let bq: Vec<i16> = (0..ch).map(|i| (i % 1000) as i16 * 37 - 1000).collect();
        let mult: Vec<u8> = (0..ch).map(|i| 150 + (i % 100) as u8).collect();
        let q = ConvQ {
            weight: &wq,
            bias: &bq,
            bias_shift: 0,
            mult: &mult,
            shift: 13,
            in_zero: 3,
            out_zero: -3,
            lut: None,
        };
        let mut yq = vec![0i8; out];
        g.bench_function(BenchmarkId::new("int8_dispatch", name), |bch| {
            bch.iter(|| qk::depthwise(s, black_box(&xq), &q, &mut yq).unwrap())
        });
        // The AVX2 kernel forced (the dispatch runs the VNNI one where the CPU has it).
        #[cfg(target_arch = "x86_64")]
        if ldp_core::kernels::cpu::x86_detected() >= ldp_core::kernels::cpu::X86Level::Avx2 {
            g.bench_function(BenchmarkId::new("int8_avx2", name), |bch| {
                bch.iter(|| {
                    // SAFETY: AVX2, FMA and F16C detected just above.
                    unsafe {
                        ldp_core::kernels::depthwise::x86::int8::depthwise_avx2(
                            s,
                            black_box(&xq),
                            &q,
                            &mut yq,
                        )
                    }
                    .unwrap()
                })
            });
        }
    }
    g.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(name, p, ch) in &[
        ("ldp_64x64x128", 4096usize, 128usize),
        ("vlm_576x2048", 576, 2048),
    ] {
        g.throughput(Throughput::Elements((p * ch) as u64));
        let x = vals(p * ch, 1);
        let gm = vals(ch, 2)
            .iter()
            .map(|v| 1.0 + 0.1 * v)
            .collect::<Vec<_>>();
        let bt = vals(ch, 3);
        let mut buf = x.clone();
        g.bench_function(BenchmarkId::new("layernorm_f32", name), |bch| {
            bch.iter(|| {
                buf.copy_from_slice(&x);
                layer_norm_inplace(black_box(&mut buf), ch, &gm, &bt).unwrap()
            })
        });
        let xq = i8s(p * ch, 4);
        let gq: Vec<i16> = i8s(ch, 5).iter().map(|&v| 16384 + 64 * v as i16).collect();
        let bq: Vec<i16> = i8s(ch, 6).iter().map(|&v| 32 * v as i16).collect();
        let nq = qk::NormQ {
            gamma: &gq,
            beta: &bq,
            shift: 20,
            eps_q8: 256,
            out_zero: 3,
            lut: None,
        };
        let mut bufq = xq.clone();
        g.bench_function(BenchmarkId::new("layernorm_int8", name), |bch| {
            bch.iter(|| {
                bufq.copy_from_slice(&xq);
                qk::layer_norm_inplace(black_box(&mut bufq), ch, &nq).unwrap()
            })
        });
        // LayerNorm of a 16-bit conv output (`ldp`'s pointwise2/3), without and with a table
        // (interpolated), dispatching (AVX2 on x86-64) and portable.
        let x16: Vec<i16> = i8s(p * ch, 7).iter().map(|&v| 97 * v as i16).collect();
        let lut = i8s(256, 8);
        let mut y16 = vec![0i8; p * ch];
        for (tag, lut) in [("", None), ("_lut", Some(&lut[..]))] {
            let nq = qk::NormQ { lut, ..nq };
            g.bench_function(
                BenchmarkId::new(format!("layernorm_i16{tag}"), name),
                |bch| bch.iter(|| qk::layer_norm_i16(black_box(&x16), ch, &nq, &mut y16).unwrap()),
            );
            #[cfg(target_arch = "x86_64")]
            if ldp_core::kernels::cpu::x86_detected() >= ldp_core::kernels::cpu::X86Level::Avx2 {
                g.bench_function(
                    BenchmarkId::new(format!("layernorm_i16{tag}_avx2"), name),
                    |bch| {
                        bch.iter(|| {
                            // SAFETY: AVX2, FMA and F16C detected just above.
                            unsafe {
                                ldp_core::kernels::norm::x86::layer_norm_i16_avx2(
                                    black_box(&x16),
                                    ch,
                                    &nq,
                                    &mut y16,
                                )
                            }
                            .unwrap()
                        })
                    },
                );
            }
            g.bench_function(
                BenchmarkId::new(format!("layernorm_i16{tag}_portable"), name),
                |bch| {
                    bch.iter(|| {
                        qk::layer_norm_i16_reference(black_box(&x16), ch, &nq, &mut y16).unwrap()
                    })
                },
            );
        }
        let aq = qk::AddQ {
            a_zero: 3,
            a_mult: 1 << 29,
            b_zero: -5,
            b_mult: 3 << 28,
            shift: 30,
            out_zero: 1,
        };
        g.bench_function(BenchmarkId::new("add_int8", name), |bch| {
            bch.iter(|| {
                bufq.copy_from_slice(&xq);
                qk::add_inplace(black_box(&mut bufq), &xq, &aq).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("gelu_f32", name), |bch| {
            bch.iter(|| {
                buf.copy_from_slice(&x);
                gelu_slice(black_box(&mut buf))
            })
        });
        g.bench_function(BenchmarkId::new("gelu_libm_f32", name), |bch| {
            bch.iter(|| {
                buf.copy_from_slice(&x);
                for v in black_box(&mut buf).iter_mut() {
                    let u = *v * core::f32::consts::FRAC_1_SQRT_2;
                    *v = 0.5 * *v * (1.0 + libm::erff(u));
                }
            })
        });
    }
    g.finish();
}

/// The CLI's layout conversions of a seed-block sample (`ldp-quant run` on `ldp` blobs): the
/// f32 transposes (whole, and by channel groups as the CLI reads them), the int8 output
/// transpose and the int8 input's channels-first quantization against its two-pass reference
/// (quantize, then transpose).
fn bench_layout(c: &mut Criterion) {
    use ldp_core::tensor::{nchw_to_nhwc, nhwc_to_nchw};
    let mut g = c.benchmark_group("layout");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let (ch, h, w) = (128usize, 64usize, 64usize);
    let n = ch * h * w;
    g.throughput(Throughput::Elements(n as u64));
    let x = vals(n, 1);
    let mut y = vec![0f32; n];
    g.bench_function("f32_nchw_to_nhwc/128x64x64", |bch| {
        bch.iter(|| nchw_to_nhwc(black_box(&x), &mut y, ch, h, w).unwrap())
    });
    // As `ldp-quant run` converts a sample while reading it: groups of 16 channels (256 KiB,
    // read into one reused chunk that stays in L2), each into its places in the whole map.
    let gch = 16;
    let chunk = vals(gch * h * w, 3);
    g.bench_function("f32_nchw_to_nhwc_by_16_channels/128x64x64", |bch| {
        bch.iter(|| {
            for ch0 in (0..ch).step_by(gch) {
                ldp_core::tensor::nchw_to_nhwc_part(black_box(&chunk), &mut y, ch, h, w, ch0)
                    .unwrap()
            }
        })
    });
    g.bench_function("f32_nhwc_to_nchw/128x32x32", |bch| {
        bch.iter(|| {
            nhwc_to_nchw(black_box(&x[..n / 4]), &mut y[..n / 4], ch, h / 2, w / 2).unwrap()
        })
    });
    let xq = i8s(n, 2);
    let mut yq = vec![0i8; n];
    g.bench_function("i8_nhwc_to_nchw/128x32x32", |bch| {
        bch.iter(|| {
            nhwc_to_nchw(black_box(&xq[..n / 4]), &mut yq[..n / 4], ch, h / 2, w / 2).unwrap()
        })
    });
    let (scale, zero) = ([0.05f32], [3i8]);
    let mut tmp = vec![0i8; n];
    g.bench_function("quantize_nchw/128x64x64", |bch| {
        bch.iter(|| {
            qk::quantize_nchw(black_box(&x), ch, h * w, &scale, &zero, &mut yq, &mut tmp).unwrap()
        })
    });
    g.bench_function("quantize_nchw_reference/128x64x64", |bch| {
        bch.iter(|| {
            qk::quantize_nchw_reference(black_box(&x), ch, h * w, &scale, &zero, &mut yq, &mut tmp)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench_pointwise, bench_depthwise, bench_elementwise, bench_layout
}
criterion_main!(benches);
