//! The whole forward pass gives the same bits on any number of host threads
//! (`ldp_quant::set_threads`), at the sizes where the layers really split: the seed block
//! (128 channels, 64×64) and MobileVLM V1/V2 at their real sizes (1024 → 2048, 24×24), from the
//! generalization sweep's committed weights and inputs. f32, f16 and int8 (the default scheme,
//! and int8 activations where the default is 16-bit). The kernel-level test is
//! `ldp-core/tests/threads.rs`; this one also covers the executors' banding (e.g. the
//! depthwise conv fused row by row with its LayerNorm).

use host_tests::sweep;
use ldp_core::DType;
use ldp_quant::quantize::{Activations, Int8Options};

fn forward(blob: &[u8], case: &sweep::Case, x: &[f32], threads: usize) -> Vec<u32> {
    ldp_quant::set_threads(threads);
    let aligned = ldp_quant::AlignedBytes::from_slice(blob);
    let m = ldp_core::Model::parse(aligned.as_bytes()).expect("blob parses");
    let arr = ldp_quant::npy::Array {
        shape: sweep::batch_shape(case, 1),
        data: x.to_vec(),
    };
    let cfg = m.config();
    let xs = ldp_quant::layout::split_batch(&arr, &cfg, "input", false).expect("input");
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut y = vec![0f32; m.output_len()];
    m.forward(&xs[0], &mut y, &mut scratch).expect("forward");
    y.iter().map(|v| v.to_bits()).collect()
}

/// One test function: the thread count is process-wide.
#[test]
fn forward_bits_do_not_depend_on_threads() {
    for name in [
        "ldp_seed_128_64x64_s0",
        "v1_real_1024to2048_24_s0",
        "v2_real_1024to2048_24_s0",
    ] {
        let case = sweep::case_named(name).expect("sweep case");
        let l = sweep::load(&case);
        let x = &l.held[0];
        let mut blobs = vec![
            (
                "f32".to_string(),
                ldp_quant::write::float_blob(&l.model, DType::F32).expect("f32 blob"),
            ),
            (
                "f16".to_string(),
                ldp_quant::write::float_blob(&l.model, DType::F16).expect("f16 blob"),
            ),
        ];
        for act in [Activations::Auto, Activations::Int8] {
            let opts = Int8Options {
                activations: act,
                ..Int8Options::default()
            };
            let blob = ldp_quant::int8::quantize(&l.model, &l.calib, &opts).expect("int8 blob");
            blobs.push((format!("int8 {act:?}"), blob));
        }
        for (what, blob) in &blobs {
            let one = forward(blob, &case, x, 1);
            for t in [2, 3] {
                let got = forward(blob, &case, x, t);
                let diff = one.iter().zip(&got).filter(|(a, b)| a != b).count();
                assert!(
                    diff == 0 && got.len() == one.len(),
                    "{name} {what}: {diff} of {} outputs differ on {t} threads",
                    one.len()
                );
            }
        }
    }
    ldp_quant::set_threads(1);
}
