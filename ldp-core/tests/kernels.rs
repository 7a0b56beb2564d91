//! Every fast kernel against its plain reference, on random shapes (channels 1..=67, grids
//! 1..=19, both strides), in the style of tract-linalg's kernel test frames.
//!
//! Tolerances are justified by float reassociation: the tiled pointwise kernel sums the same
//! products in 8 lanes, so its error against the serial reference is bounded by
//! `2·(n+1)·eps·Σ|x·w|` (a standard bound for any summation order of n+1 terms); the depthwise
//! kernel uses the reference's order and must match bit for bit.

use ldp_core::kernels::activation::Activation;
use ldp_core::kernels::depthwise::{self, DwShape};
use ldp_core::kernels::pointwise;
use proptest::prelude::*;

fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn pointwise_tiled_matches_reference(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=150,
                                         bias in any::<bool>(), gelu in any::<bool>(), seed in any::<u64>()) {
        let x = vals(pixels * c_in, seed);
        let w = vals(c_out * c_in, seed ^ 1);
        let b = vals(c_out, seed ^ 2);
        let bias = if bias { Some(&b[..]) } else { None };
        let act = if gelu { Some(Activation::Gelu) } else { None };
        let mut y_ref = vec![0.0f32; pixels * c_out];
        let mut y = vec![0.0f32; pixels * c_out];
        pointwise::reference::pointwise(&x, c_in, &w, bias, c_out, act, &mut y_ref).unwrap();
        pointwise::pointwise(&x, c_in, &w, bias, c_out, act, &mut y).unwrap();
        for p in 0..pixels {
            for o in 0..c_out {
                let mag: f32 = (0..c_in).map(|i| (x[p * c_in + i] * w[o * c_in + i]).abs()).sum::<f32>()
                    + bias.map_or(0.0, |b| b[o].abs());
                let tol = 2.0 * (c_in as f32 + 1.0) * f32::EPSILON * mag + 1e-30;
                let (a, r) = (y[p * c_out + o], y_ref[p * c_out + o]);
                prop_assert!((a - r).abs() <= tol * if gelu { 1.2 } else { 1.0 } + f32::EPSILON * r.abs(),
                    "p={p} o={o}: {a} vs {r} (tol {tol})");
            }
        }
    }

    #[test]
    fn depthwise_tiled_matches_reference_bitwise(c in 1usize..=67, h in 1usize..=19, w in 1usize..=19,
                                                 stride in 1usize..=2, bias in any::<bool>(), residual in any::<bool>(),
                                                 seed in any::<u64>()) {
        let s = DwShape { h, w, c, stride };
        let x = vals(h * w * c, seed);
        let wt = vals(c * 9, seed ^ 3);
        let b = vals(c, seed ^ 4);
        let out = s.ho() * s.wo() * c;
        let r = vals(out, seed ^ 5);
        let bias = if bias { Some(&b[..]) } else { None };
        let res = if residual { Some(&r[..]) } else { None };
        let mut y_ref = vec![0.0f32; out];
        let mut y = vec![0.0f32; out];
        depthwise::reference::depthwise3x3(s, &x, &wt, bias, res, &mut y_ref).unwrap();
        depthwise::depthwise3x3(s, &x, &wt, bias, res, &mut y).unwrap();
        prop_assert_eq!(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y_ref.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }

    #[test]
    fn layer_norm_matches_f64_reference(c in 1usize..=67, pixels in 1usize..=19, seed in any::<u64>()) {
        let x = vals(pixels * c, seed);
        let g = vals(c, seed ^ 6);
        let b = vals(c, seed ^ 7);
        let mut y_ref = vec![0.0f32; pixels * c];
        ldp_core::kernels::norm::layer_norm_reference(&x, c, &g, &b, &mut y_ref);
        let mut y = x.clone();
        ldp_core::kernels::norm::layer_norm_inplace(&mut y, c, &g, &b).unwrap();
        for i in 0..y.len() {
            // |x̂| ≤ sqrt(c); relative error of mean/var in f32 is O(c·eps).
            let tol = 8.0 * (c as f32).sqrt() * (c as f32) * f32::EPSILON * (g[i % c].abs() + 1.0) + 4.0 * f32::EPSILON * b[i % c].abs();
            prop_assert!((y[i] - y_ref[i]).abs() <= tol, "i={i}: {} vs {}", y[i], y_ref[i]);
        }
    }
}

#[test]
fn errors_not_panics_on_bad_lengths() {
    let x = [0.0f32; 10];
    let w = [0.0f32; 9];
    let mut y = [0.0f32; 10];
    assert!(pointwise::pointwise::<f32, f32, f32>(&x, 3, &w, None, 3, None, &mut y).is_err());
    let s = DwShape {
        h: 2,
        w: 2,
        c: 3,
        stride: 3,
    };
    assert!(depthwise::depthwise3x3::<f32, f32, f32, f32>(s, &x, &w, None, None, &mut y).is_err());
}
