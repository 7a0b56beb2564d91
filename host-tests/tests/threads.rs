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

/// Stack of the thread that runs a forward pass once more (with the CPU's best kernels, or the
/// level `LDP_X86` forces).
const SMALL_STACK: usize = 192 * 1024;

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
            // The kernels' large buffers are per-thread heap workspaces
            // (`ldp_core::kernels::workspace`), not stack arrays: the pass runs on a thread
            // with a small stack (it needed about 540 KiB when the AVX-512 f32 GEMM kept its
            // panels on the stack; a stack overflow aborts this test) and gives the same bits.
            let small = std::thread::scope(|sc| {
                std::thread::Builder::new()
                    .stack_size(SMALL_STACK)
                    .spawn_scoped(sc, || forward(blob, &case, x, 1))
                    .expect("spawn a thread")
                    .join()
                    .expect("the small-stack forward pass")
            });
            assert!(
                small == one,
                "{name} {what}: other bits on a {SMALL_STACK}-byte stack"
            );
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
