//! Every fast kernel against its plain reference, on random shapes (channels 1..=67, grids
//! 1..=19, both strides), in the style of tract-linalg's kernel test frames.
//!
//! Tolerances are justified by float reassociation: the tiled pointwise kernel sums the same
//! products in 8 lanes, so its error against the serial reference is bounded by
//! `2·(n+1)·eps·Σ|x·w|` (a standard bound for any summation order of n+1 terms); the depthwise
//! kernel uses the reference's order and must match bit for bit.

use half::f16;
use ldp_core::kernels::activation::Activation;
use ldp_core::kernels::depthwise::{self, DwShape};
use ldp_core::kernels::pointwise;
use ldp_core::kernels::se;
use ldp_core::quant::kernels::{self as qk, ConvQ};
use ldp_core::Elem;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Full-range int8 values (including -128).
fn i8s(n: usize, seed: u64) -> Vec<i8> {
    vals(n, seed)
        .iter()
        .map(|v| (v * 64.0).floor() as i8)
        .collect()
}

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

/// Which implementation of a kernel family a check runs.
#[derive(Clone, Copy, Debug)]
enum Pw {
    /// `pointwise::pointwise`, whatever it dispatches to on this machine.
    Dispatch,
    /// The portable tiled kernel.
    Tiled,
    /// The AVX2 + FMA kernel (skipped when the CPU lacks it).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// The AVX-512 kernel (skipped when the CPU lacks it).
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn act_of(i: usize) -> Option<Activation> {
    [
        None,
        Some(Activation::Gelu),
        Some(Activation::Hardswish),
        Some(Activation::Hardsigmoid),
        Some(Activation::Relu),
    ][i % 5]
}

/// Runs one pointwise kernel on typed data and checks it against the reference with the
/// reassociation bound `2·(c_in+1)·eps·Σ|x·w|` (plus one f16 ulp when the output is f16).
fn check_pointwise<X: Elem, W: Elem, Y: Elem>(
    kernel: Pw,
    c_in: usize,
    c_out: usize,
    pixels: usize,
    bias: bool,
    act: Option<Activation>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let x: Vec<X> = vals(pixels * c_in, seed)
        .into_iter()
        .map(X::from_f32)
        .collect();
    let w: Vec<W> = vals(c_out * c_in, seed ^ 1)
        .into_iter()
        .map(W::from_f32)
        .collect();
    let b = vals(c_out, seed ^ 2);
    let bias = if bias { Some(&b[..]) } else { None };
    let mut y_ref = vec![Y::default(); pixels * c_out];
    let mut y = vec![Y::default(); pixels * c_out];
    pointwise::reference::pointwise(&x, c_in, &w, bias, c_out, act, &mut y_ref).unwrap();
    match kernel {
        Pw::Dispatch => pointwise::pointwise(&x, c_in, &w, bias, c_out, act, &mut y).unwrap(),
        Pw::Tiled => {
            pointwise::portable::pointwise(&x, c_in, &w, bias, c_out, act, &mut y).unwrap()
        }
        #[cfg(target_arch = "x86_64")]
        Pw::Avx2 => {
            if !avx2() {
                return Ok(());
            }
            // SAFETY: the CPU features were detected just above.
            unsafe { pointwise::x86::pointwise_avx2(&x, c_in, &w, bias, c_out, act, &mut y) }
                .unwrap()
        }
        #[cfg(target_arch = "x86_64")]
        Pw::Avx512 => {
            if !avx512() {
                return Ok(());
            }
            // SAFETY: the CPU features were detected just above.
            unsafe {
                pointwise::x86::avx512::pointwise_avx512(&x, c_in, &w, bias, c_out, act, &mut y)
            }
            .unwrap()
        }
    }
    let f16_out = core::mem::size_of::<Y>() == 2;
    for p in 0..pixels {
        for o in 0..c_out {
            let mag: f32 = (0..c_in)
                .map(|i| (x[p * c_in + i].to_f32() * w[o * c_in + i].to_f32()).abs())
                .sum::<f32>()
                + bias.map_or(0.0, |b| b[o].abs());
            let tol = 2.0 * (c_in as f32 + 1.0) * f32::EPSILON * mag + 1e-30;
            let (a, r) = (y[p * c_out + o].to_f32(), y_ref[p * c_out + o].to_f32());
            let ulp = if f16_out {
                r.abs() / 1024.0 + 6.2e-5
            } else {
                0.0
            };
            let bound = tol * if act.is_some() { 1.2 } else { 1.0 } + f32::EPSILON * r.abs() + ulp;
            prop_assert!(
                (a - r).abs() <= bound,
                "{kernel:?} p={p} o={o}: {a} vs {r} (bound {bound})"
            );
        }
    }
    Ok(())
}

/// Runs one depthwise kernel on typed data; it must equal the reference bit for bit.
#[allow(clippy::too_many_arguments)]
fn check_depthwise<X: Elem, W: Elem, Y: Elem, R: Elem>(
    kernel: Pw,
    c: usize,
    h: usize,
    w: usize,
    stride: usize,
    bias: bool,
    residual: bool,
    seed: u64,
) -> Result<(), TestCaseError> {
    let s = DwShape { h, w, c, stride };
    let x: Vec<X> = vals(h * w * c, seed).into_iter().map(X::from_f32).collect();
    let wt: Vec<W> = vals(c * 9, seed ^ 3).into_iter().map(W::from_f32).collect();
    let b = vals(c, seed ^ 4);
    let out = s.ho() * s.wo() * c;
    let r: Vec<R> = vals(out, seed ^ 5).into_iter().map(R::from_f32).collect();
    let bias = if bias { Some(&b[..]) } else { None };
    let res = if residual { Some(&r[..]) } else { None };
    let mut y_ref = vec![Y::default(); out];
    let mut y = vec![Y::default(); out];
    depthwise::reference::depthwise3x3(s, &x, &wt, bias, res, &mut y_ref).unwrap();
    match kernel {
        Pw::Dispatch => depthwise::depthwise3x3(s, &x, &wt, bias, res, &mut y).unwrap(),
        Pw::Tiled => depthwise::portable::depthwise3x3(s, &x, &wt, bias, res, &mut y).unwrap(),
        #[cfg(target_arch = "x86_64")]
        Pw::Avx2 => {
            if !avx2() {
                return Ok(());
            }
            // SAFETY: the CPU features were detected just above.
            unsafe { depthwise::x86::depthwise3x3_avx2(s, &x, &wt, bias, res, &mut y) }.unwrap()
        }
        // No AVX-512 depthwise kernel: the dispatch runs the AVX2 one there.
        #[cfg(target_arch = "x86_64")]
        Pw::Avx512 => return Ok(()),
    }
    let bits = |v: &[Y]| v.iter().map(|e| e.to_f32().to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(bits(&y), bits(&y_ref), "{:?}", kernel);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    ldp_core::kernels::cpu::x86_detected() >= ldp_core::kernels::cpu::X86Level::Avx512
}

/// AMX-INT8 usable by this process (CPU, OS and the tile-data permission); says so once when not.
#[cfg(target_arch = "x86_64")]
fn amx() -> bool {
    let yes = ldp_core::kernels::cpu::x86_detected() == ldp_core::kernels::cpu::X86Level::Amx;
    if !yes {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("AMX-INT8 not available here: the AMX kernel is not tested"));
    }
    yes
}

#[cfg(target_arch = "x86_64")]
fn vnni() -> bool {
    avx512() && is_x86_feature_detected!("avx512vnni")
}

/// AVX-512 VBMI usable (the 16-bit LayerNorm's AVX-512 kernel).
#[cfg(target_arch = "x86_64")]
fn avx512vbmi() -> bool {
    avx512() && is_x86_feature_detected!("avx512vbmi")
}

fn all_kernels() -> Vec<Pw> {
    vec![
        Pw::Dispatch,
        Pw::Tiled,
        #[cfg(target_arch = "x86_64")]
        Pw::Avx2,
        #[cfg(target_arch = "x86_64")]
        Pw::Avx512,
    ]
}

/// The AVX-512 and AVX2 f32/f16 GEMMs sum in the same order: equal bits, for every type mix,
/// activation and `c_in` on both sides of the 2048-channel panel.
#[cfg(target_arch = "x86_64")]
fn check_avx512_equals_avx2<X: Elem, W: Elem, Y: Elem>(
    c_in: usize,
    c_out: usize,
    pixels: usize,
    bias: bool,
    act: Option<Activation>,
    seed: u64,
) -> Result<(), TestCaseError> {
    if !avx512() {
        return Ok(());
    }
    let x: Vec<X> = vals(pixels * c_in, seed)
        .into_iter()
        .map(X::from_f32)
        .collect();
    let w: Vec<W> = vals(c_out * c_in, seed ^ 1)
        .into_iter()
        .map(W::from_f32)
        .collect();
    let b = vals(c_out, seed ^ 2);
    let bias = if bias { Some(&b[..]) } else { None };
    let mut y2 = vec![Y::default(); pixels * c_out];
    let mut y5 = vec![Y::default(); pixels * c_out];
    // SAFETY: AVX-512 (and so AVX2, FMA, F16C) detected just above.
    unsafe {
        pointwise::x86::pointwise_avx2(&x, c_in, &w, bias, c_out, act, &mut y2).unwrap();
        pointwise::x86::avx512::pointwise_avx512(&x, c_in, &w, bias, c_out, act, &mut y5).unwrap();
    }
    let bits = |v: &[Y]| v.iter().map(|e| e.to_f32().to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(bits(&y5), bits(&y2), "{} {} {}", c_in, c_out, pixels);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn pointwise_avx512_equals_avx2_bitwise(c_in in 1usize..=80, c_out in 1usize..=80, pixels in 1usize..=40,
                                            bias in any::<bool>(), act in 0usize..5, types in 0usize..4,
                                            seed in any::<u64>()) {
        let act = act_of(act);
        match types {
            0 => check_avx512_equals_avx2::<f32, f32, f32>(c_in, c_out, pixels, bias, act, seed)?,
            1 => check_avx512_equals_avx2::<f32, f16, f16>(c_in, c_out, pixels, bias, act, seed)?,
            2 => check_avx512_equals_avx2::<f16, f16, f16>(c_in, c_out, pixels, bias, act, seed)?,
            _ => check_avx512_equals_avx2::<f16, f16, f32>(c_in, c_out, pixels, bias, act, seed)?,
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn pointwise_avx512_equals_avx2_long_channels() {
    // Both sides of the 2048-channel panel, and odd shapes with many pixels.
    for (c_in, c_out, pixels) in [
        (2100, 40, 13),
        (4200, 33, 3),
        (2048, 64, 25),
        (257, 33, 13),
        (600, 40, 800),
        (130, 17, 2000),
        // Two panels at a time (6 × 64 tiles), past the 2048-channel panel, a 6-output tail.
        (2100, 70, 13),
    ] {
        check_avx512_equals_avx2::<f32, f32, f32>(c_in, c_out, pixels, true, None, 3).unwrap();
        check_avx512_equals_avx2::<f16, f16, f16>(c_in, c_out, pixels, true, None, 4).unwrap();
    }
    // Narrow inputs with many pixels run in pixel blocks (each packing the weights again),
    // here with the GELU epilogue: 3 blocks of 372 pixels, 2 of 4752, 2 of 516, 3 of 372
    // (96 outputs: a pair of panels, then one).
    for (c_in, c_out, pixels) in [
        (128, 40, 1100),
        (7, 33, 9500),
        (64, 3, 1030),
        (128, 96, 1100),
    ] {
        let gelu = Some(Activation::Gelu);
        check_avx512_equals_avx2::<f32, f32, f32>(c_in, c_out, pixels, true, gelu, 5).unwrap();
        check_avx512_equals_avx2::<f16, f16, f16>(c_in, c_out, pixels, false, gelu, 6).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn pointwise_kernels_match_reference_f32(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=150,
                                             bias in any::<bool>(), act in 0usize..5, seed in any::<u64>()) {
        for k in all_kernels() {
            check_pointwise::<f32, f32, f32>(k, c_in, c_out, pixels, bias, act_of(act), seed)?;
        }
    }

    #[test]
    fn pointwise_kernels_match_reference_f16(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=40,
                                             bias in any::<bool>(), act in 0usize..5, types in 0usize..3,
                                             seed in any::<u64>()) {
        for k in all_kernels() {
            match types {
                // The f16 model's layers: f32 input (first layer), f16 activations, f16 weights.
                0 => check_pointwise::<f32, f16, f16>(k, c_in, c_out, pixels, bias, act_of(act), seed)?,
                1 => check_pointwise::<f16, f16, f16>(k, c_in, c_out, pixels, bias, act_of(act), seed)?,
                _ => check_pointwise::<f16, f16, f32>(k, c_in, c_out, pixels, bias, act_of(act), seed)?,
            }
        }
    }

    /// Splitting the pixels into chunks (as the streaming executor does) gives the same bits.
    #[test]
    fn pointwise_is_chunk_invariant(c_in in 1usize..=40, c_out in 1usize..=40, pixels in 1usize..=60,
                                    cut in 0usize..60, act in 0usize..5, seed in any::<u64>()) {
        let cut = cut.min(pixels);
        let x = vals(pixels * c_in, seed);
        let w = vals(c_out * c_in, seed ^ 1);
        let b = vals(c_out, seed ^ 2);
        let act = act_of(act);
        let mut whole = vec![0.0f32; pixels * c_out];
        pointwise::pointwise(&x, c_in, &w, Some(&b), c_out, act, &mut whole).unwrap();
        let mut parts = vec![0.0f32; pixels * c_out];
        let (y0, y1) = parts.split_at_mut(cut * c_out);
        if cut > 0 {
            pointwise::pointwise(&x[..cut * c_in], c_in, &w, Some(&b), c_out, act, y0).unwrap();
        }
        if cut < pixels {
            pointwise::pointwise(&x[cut * c_in..], c_in, &w, Some(&b), c_out, act, y1).unwrap();
        }
        prop_assert_eq!(whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        parts.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}

/// Wide maps: channel counts past the AVX2 kernel's 256-channel staging chunk (several chunks,
/// a chunk ending off a 32-channel block, a scalar tail), every kernel bit for bit.
#[test]
fn depthwise_kernels_match_reference_bitwise_wide_channels() {
    for (i, &c) in [255usize, 256, 257, 300, 520, 777].iter().enumerate() {
        for (h, w) in [(1, 1), (2, 5), (5, 4), (6, 7)] {
            for stride in 1..=2 {
                for k in all_kernels() {
                    let seed = (i * 100 + h * 10 + w) as u64;
                    check_depthwise::<f32, f32, f32, f32>(
                        k,
                        c,
                        h,
                        w,
                        stride,
                        true,
                        stride == 1,
                        seed,
                    )
                    .unwrap();
                    check_depthwise::<f16, f16, f32, f16>(k, c, h, w, stride, false, true, seed)
                        .unwrap();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn depthwise_kernels_match_reference_bitwise(c in 1usize..=67, h in 1usize..=19, w in 1usize..=19,
                                                 stride in 1usize..=2, bias in any::<bool>(), residual in any::<bool>(),
                                                 types in 0usize..3, seed in any::<u64>()) {
        for k in all_kernels() {
            match types {
                0 => check_depthwise::<f32, f32, f32, f32>(k, c, h, w, stride, bias, residual, seed)?,
                1 => check_depthwise::<f16, f16, f16, f16>(k, c, h, w, stride, bias, residual, seed)?,
                _ => check_depthwise::<f16, f16, f32, f16>(k, c, h, w, stride, bias, residual, seed)?,
            }
        }
    }

    /// int8 pointwise: every kernel equals the reference bit for bit (integer sums are exact).
    #[test]
    fn int8_pointwise_kernels_equal_reference(c_in in 1usize..=80, c_out in 1usize..=40, pixels in 1usize..=60,
                                              shift in 8i32..=40, zo in -128i32..=127, with_lut in any::<bool>(),
                                              seed in any::<u64>()) {
        let x = i8s(pixels * c_in, seed);
        let w = i8s(c_in * c_out, seed ^ 1);
        let bias: Vec<i16> = i8s(c_out, seed ^ 2).iter().map(|&v| v as i16 * 250).collect();
        let bias = if seed.is_multiple_of(5) { Vec::new() } else { bias };
        let mult: Vec<u8> = i8s(c_out, seed ^ 3).iter().map(|&v| v as u8).collect();
        let lut = i8s(256, seed ^ 4);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift: 5, mult: &mult, shift, in_zero: 0, out_zero: zo,
                        lut: if with_lut { Some(&lut) } else { None } };
        let mut a = vec![0i8; pixels * c_out];
        qk::pointwise_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i8; pixels * c_out];
        qk::pointwise(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut c = vec![0i8; pixels * c_out];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::pointwise::x86::int8::pointwise_avx2(&x, c_in, &q, c_out, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = vnni_i8(&x, c_in, &q, c_out) {
            prop_assert_eq!(&a, &c, "vnni");
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = avxvnni_i8(&x, c_in, &q, c_out) {
            prop_assert_eq!(&a, &c, "avxvnni");
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = amx_i8(&x, c_in, &q, c_out) {
            prop_assert_eq!(&a, &c, "amx");
        }
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

/// More input channels than one packed panel holds (the AVX2 kernel continues its sums through
/// the output) and the MobileVLM-like widths, on a few pixels.
#[test]
fn pointwise_long_and_wide_channels() {
    for (c_in, c_out, pixels) in [(2100, 20, 7), (4200, 3, 2), (1024, 48, 13), (2048, 33, 6)] {
        for k in all_kernels() {
            for act in [None, Some(Activation::Gelu)] {
                check_pointwise::<f32, f32, f32>(k, c_in, c_out, pixels, true, act, 11).unwrap();
                check_pointwise::<f16, f16, f16>(k, c_in, c_out, pixels, true, act, 12).unwrap();
            }
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

/// Uniform `i32`s in `lo..=hi` (any range, full `i32` included).
/// `i16` biases and their shift from `i32` values: the top 16 bits with shift 15 (`full`: the
/// whole `i32` range, `±2^30` after the shift), else `v >> 1` with shift 1.
fn b16(v: &[i32], full: bool) -> (Vec<i16>, u32) {
    let (drop, shift) = if full { (16, 15) } else { (1, 1) };
    (
        v.iter()
            .map(|&x| (x >> drop).clamp(-32768, 32767) as i16)
            .collect(),
        shift,
    )
}

fn m8(v: &[i32]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

fn ints_in(n: usize, seed: u64, lo: i32, hi: i32) -> Vec<i32> {
    let mut s = seed | 1;
    let span = (hi as i64 - lo as i64 + 1) as u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (lo as i64 + ((s >> 11) % span) as i64) as i32
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// int8 depthwise: the dispatching kernel, the AVX2 kernel and (where the CPU has it) the
    /// AVX-512 VNNI kernel equal the reference bit for bit (every shift, full-range multipliers
    /// and biases, both strides, 1×1 grids, tables; channels 64..=67 and `wide` (+256) reach the
    /// VNNI kernel's 64-channel blocks with an AVX2/scalar remainder, and cross the 256-channel
    /// staging chunks).
    #[test]
    fn int8_depthwise_kernels_equal_reference(c in 1usize..=67, wide in any::<bool>(), h in 1usize..=19,
                                              w in 1usize..=19, stride in 1usize..=2, shift in 1i32..=62,
                                              zi in -128i32..=127, zo in -128i32..=127, with_lut in any::<bool>(),
                                              big in any::<bool>(), seed in any::<u64>()) {
        let c = if wide { c + 256 } else { c };
        let s = DwShape { h, w, c, stride };
        let x = i8s(h * w * c, seed);
        let wt = i8s(9 * c, seed ^ 1);
        let (blo, bhi) = if big { (i32::MIN, i32::MAX) } else { (-1 << 16, 1 << 16) };
        let bias = ints_in(c, seed ^ 2, blo, bhi);
        let (bias, bias_shift) = b16(&bias, big);
        let mult = m8(&ints_in(c, seed ^ 3, 0, 255));
        let lut = i8s(256, seed ^ 4);
        let q = ConvQ { weight: &wt, bias: &bias, bias_shift, mult: &mult, shift, in_zero: zi, out_zero: zo,
                        lut: if with_lut { Some(&lut) } else { None } };
        let n = s.ho() * s.wo() * c;
        let mut a = vec![0i8; n];
        qk::depthwise_reference(s, &x, &q, &mut a).unwrap();
        let mut b = vec![0i8; n];
        qk::depthwise(s, &x, &q, &mut b).unwrap();
        prop_assert_eq!(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut c = vec![0i8; n];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::depthwise::x86::int8::depthwise_avx2(s, &x, &q, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c);
        }
        #[cfg(target_arch = "x86_64")]
        if vnni() {
            let mut c = vec![0i8; n];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::depthwise::x86::int8::depthwise_vnni(s, &x, &q, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c, "vnni");
        }
    }

    /// int8 pointwise with every shift, full-range biases and multipliers (wrapping sums).
    #[test]
    fn int8_pointwise_extreme_parameters(c_in in 1usize..=67, c_out in 1usize..=67, pixels in 1usize..=19,
                                         shift in 1i32..=62, zo in -128i32..=127, with_lut in any::<bool>(),
                                         seed in any::<u64>()) {
        let x = i8s(pixels * c_in, seed);
        let w = i8s(c_in * c_out, seed ^ 1);
        let (bias, bias_shift) = b16(&ints_in(c_out, seed ^ 2, i32::MIN, i32::MAX), true);
        let mult = m8(&ints_in(c_out, seed ^ 3, 0, 255));
        let lut = i8s(256, seed ^ 4);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: zo,
                        lut: if with_lut { Some(&lut) } else { None } };
        let mut a = vec![0i8; pixels * c_out];
        qk::pointwise_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i8; pixels * c_out];
        qk::pointwise(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut c = vec![0i8; pixels * c_out];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::pointwise::x86::int8::pointwise_avx2(&x, c_in, &q, c_out, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = vnni_i8(&x, c_in, &q, c_out) {
            prop_assert_eq!(&a, &c, "vnni");
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = avxvnni_i8(&x, c_in, &q, c_out) {
            prop_assert_eq!(&a, &c, "avxvnni");
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(c) = amx_i8(&x, c_in, &q, c_out) {
            prop_assert_eq!(&a, &c, "amx");
        }
    }

    /// int8 LayerNorm: dispatch and AVX2 equal the reference bit for bit (channels 1..=67, or
    /// up to 2100 to pass the AVX2 limit of 2048; narrow inputs make the variance tiny).
    #[test]
    fn int8_layer_norm_kernels_equal_reference(c in 1usize..=67, wide in 0usize..=2100, use_wide in 0u8..4,
                                               pixels in 1usize..=19, shift in 1i32..=62,
                                               eps in prop_oneof![Just(0i32), 0i32..=1000, any::<i32>()],
                                               narrow in any::<bool>(), zo in -128i32..=127,
                                               with_lut in any::<bool>(), seed in any::<u64>()) {
        let c = if use_wide == 0 { wide.max(1) } else { c };
        let mut x = i8s(pixels * c, seed);
        if narrow {
            x.iter_mut().for_each(|v| *v = (*v % 3) - 60);
        }
        let gamma: Vec<i16> = ints_in(c, seed ^ 1, -32768, 32767).iter().map(|&v| v as i16).collect();
        let beta: Vec<i16> = ints_in(c, seed ^ 2, -32768, 32767).iter().map(|&v| v as i16).collect();
        let lut = i8s(256, seed ^ 3);
        let q = qk::NormQ { gamma: &gamma, beta: &beta, shift, eps_q8: eps, out_zero: zo,
                            lut: if with_lut { Some(&lut) } else { None } };
        let mut a = x.clone();
        qk::layer_norm_reference(&mut a, c, &q).unwrap();
        let mut b = x.clone();
        qk::layer_norm_inplace(&mut b, c, &q).unwrap();
        prop_assert_eq!(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut d = x.clone();
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::norm::x86::layer_norm_avx2(&mut d, c, &q) }.unwrap();
            prop_assert_eq!(&a, &d);
        }
    }

    /// int8 ADD: dispatch and AVX2 equal the reference bit for bit (every shift, full-range
    /// multipliers, zero points in and out of the int8 range).
    #[test]
    fn int8_add_kernels_equal_reference(n in 0usize..=300, shift in 1i32..=62,
                                        za in -130i32..=130, zb in -130i32..=130, zo in -200i32..=200,
                                        ma in any::<i32>(), mb in any::<i32>(), small in any::<bool>(),
                                        seed in any::<u64>()) {
        let a0 = i8s(n, seed);
        let b0 = i8s(n, seed ^ 1);
        let (ma, mb) = if small { (ma >> 12, mb >> 12) } else { (ma, mb) };
        let q = qk::AddQ { a_zero: za, a_mult: ma, b_zero: zb, b_mult: mb, shift, out_zero: zo };
        let mut a = a0.clone();
        qk::add_reference(&mut a, &b0, &q).unwrap();
        let mut b = a0.clone();
        qk::add_inplace(&mut b, &b0, &q).unwrap();
        prop_assert_eq!(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut d = a0.clone();
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::add::x86::add_avx2(&mut d, &b0, &q) }.unwrap();
            prop_assert_eq!(&a, &d);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// int8 bilinear resize: dispatch and AVX2 equal the reference bit for bit (grids 1..=19
    /// down or up, per-tensor or per-channel zero points and multipliers, every shift).
    #[test]
    fn int8_resize_kernels_equal_reference(c in 1usize..=67, h in 1usize..=19, w in 1usize..=19,
                                           ho in 1usize..=19, wo in 1usize..=19, per_ch in any::<bool>(),
                                           shift in 1i32..=62, zo in -128i32..=127, seed in any::<u64>()) {
        let x = i8s(h * w * c, seed);
        let n = if per_ch { c } else { 1 };
        let zin = i8s(n, seed ^ 1);
        let mult: Vec<i16> = ints_in(n, seed ^ 2, -32768, 32767).iter().map(|&v| v as i16).collect();
        let mut a = vec![0i8; ho * wo * c];
        qk::resize_bilinear_reference(&x, h, w, c, &zin, &mult, shift, zo, &mut a, ho, wo).unwrap();
        let mut b = vec![0i8; ho * wo * c];
        qk::resize_bilinear(&x, h, w, c, &zin, &mult, shift, zo, &mut b, ho, wo).unwrap();
        prop_assert_eq!(&a, &b);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut d = vec![0i8; ho * wo * c];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::resize::x86::resize_bilinear_avx2(&x, h, w, c, &zin, &mult, shift, zo, &mut d, ho, wo) }.unwrap();
            prop_assert_eq!(&a, &d);
        }
    }

    /// Input quantization and output dequantization: dispatch and AVX2 equal the references bit
    /// for bit (halfway values, huge values, infinities and NaN included).
    #[test]
    fn int8_quantize_kernels_equal_reference(c in 1usize..=67, pixels in 1usize..=19, per_ch in any::<bool>(),
                                             special in any::<bool>(), z in -128i32..=127, seed in any::<u64>()) {
        let mut x: Vec<f32> = vals(pixels * c, seed).iter().map(|v| v * 150.0).collect();
        if special {
            let sp = [0.5f32, -0.5, 1.5, -2.5, 0.49999997, -0.49999997, 1e30, -1e30, f32::INFINITY,
                      f32::NEG_INFINITY, f32::NAN, -0.0, 8388609.0, 126.5, -127.5, 2147483648.0];
            for (i, v) in x.iter_mut().enumerate() {
                if i % 3 == 0 { *v = sp[(i / 3) % sp.len()]; }
            }
        }
        let n = if per_ch { c } else { 1 };
        let scale: Vec<f32> = vals(n, seed ^ 1).iter().map(|v| if special { 1.0 } else { v.abs() + 0.01 }).collect();
        let zero = i8s(n, seed ^ 2);
        let mut a = vec![0i8; x.len()];
        qk::quantize_reference(&x, c, &scale, &zero, &mut a).unwrap();
        let mut b = vec![0i8; x.len()];
        qk::quantize(&x, c, &scale, &zero, &mut b).unwrap();
        prop_assert_eq!(&a, &b);
        let s = scale[0];
        let mut fa = vec![0f32; x.len()];
        qk::dequantize_reference(&a, z, s, &mut fa).unwrap();
        let mut fb = vec![0f32; x.len()];
        qk::dequantize(&a, z, s, &mut fb).unwrap();
        prop_assert!(fa.iter().zip(&fb).all(|(p, q)| p.to_bits() == q.to_bits()));
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut d = vec![0i8; x.len()];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::quantize::x86::quantize_avx2(&x, c, &scale, &zero, &mut d) }.unwrap();
            prop_assert_eq!(&a, &d);
            let mut fd = vec![0f32; x.len()];
            // SAFETY: as above.
            unsafe { ldp_core::kernels::quantize::x86::dequantize_avx2(&a, z, s, &mut fd) }.unwrap();
            prop_assert!(fa.iter().zip(&fd).all(|(p, q)| p.to_bits() == q.to_bits()));
        }
    }

    /// Input quantization near the rounding boundaries: values within a few ulps of
    /// `(k + ½)·s` for scales that are not powers of two (where `x·(1/s)` and `x/s` can round
    /// differently), and scales whose inverse is not normal. Every kernel must equal the
    /// reference (an IEEE division, then `roundf`) bit for bit, channels-last and
    /// channels-first, per tensor and per channel. (A kernel that multiplied by the inverse and
    /// divided only near a boundary passed this and failed it with a margin of 2^-30 instead
    /// of 2^-21; it was also slower, 212 → 408 µs on 128×64×64, and was dropped.)
    #[test]
    fn int8_quantize_near_halves_equal_reference(c in 1usize..=40, pixels in 1usize..=40, per_ch in any::<bool>(),
                                                 scale_kind in 0usize..6, seed in any::<u64>()) {
        let n = if per_ch { c } else { 1 };
        let scale: Vec<f32> = vals(n, seed ^ 1).iter().map(|v| match scale_kind {
            0 | 1 => v.abs() * 3.0 + 1e-3,
            2 => [0.1f32, 1.0 / 3.0, 0.037_1, 7.0e-3, 0.9999999][(v.to_bits() % 5) as usize],
            3 => 1e-40,
            4 => 3e38,
            _ => f32::MIN_POSITIVE * 1.5,
        }).collect();
        let zero = i8s(n, seed ^ 2);
        let ks = vals(pixels * c, seed ^ 3);
        let x: Vec<f32> = ks.iter().enumerate().map(|(i, v)| {
            let s = scale[if per_ch { i % c } else { 0 }] as f64;
            let k = (v * 140.0).trunc() as f64;
            let h = ((k + 0.5) * s).clamp(f32::MIN as f64, f32::MAX as f64) as f32;
            let d = (i % 7) as i32 - 3;
            if h != 0.0 && h.abs() < 1e38 { f32::from_bits((h.to_bits() as i32 + d) as u32) } else { h }
        }).collect();
        let mut want = vec![0i8; x.len()];
        qk::quantize_reference(&x, c, &scale, &zero, &mut want).unwrap();
        let mut got = vec![0i8; x.len()];
        qk::quantize(&x, c, &scale, &zero, &mut got).unwrap();
        prop_assert_eq!(&want, &got);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut d = vec![0i8; x.len()];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::quantize::x86::quantize_avx2(&x, c, &scale, &zero, &mut d) }.unwrap();
            prop_assert_eq!(&want, &d);
        }
        // Channels-first: the same values read as [c][pixels].
        let mut xc = vec![0f32; x.len()];
        for p in 0..pixels {
            for ch in 0..c {
                xc[ch * pixels + p] = x[p * c + ch];
            }
        }
        let mut tmp = vec![0i8; x.len()];
        let mut got = vec![0i8; x.len()];
        qk::quantize_nchw(&xc, c, pixels, &scale, &zero, &mut got, &mut tmp).unwrap();
        prop_assert_eq!(&want, &got);
    }

    /// Channels-first quantization into channels-last (the CLI's `ldp` int8 input): dispatch,
    /// AVX2 and reference equal the f32 transpose followed by `quantize_reference` bit for bit
    /// (odd channel and pixel counts, 1×1, several 64-pixel tiles, per tensor and per channel,
    /// halfway and saturating values); a non-finite value anywhere is refused with the index of
    /// the first one in channels-first order. The same, channel group by channel group
    /// (`quantize_nchw_part`, groups of 1 to 50 channels).
    #[test]
    fn int8_quantize_nchw_equals_transpose_then_quantize(c in 1usize..=50, hw in 1usize..=150,
                                                         per_ch in any::<bool>(), special in any::<bool>(),
                                                         bad in proptest::option::of((any::<usize>(), 0usize..3, any::<bool>())),
                                                         group in 1usize..=50, seed in any::<u64>()) {
        let mut x: Vec<f32> = vals(c * hw, seed).iter().map(|v| v * 150.0).collect();
        if special {
            let sp = [0.5f32, -0.5, 1.5, -2.5, 0.49999997, -0.49999997, 1e30, -1e30, -0.0,
                      8388609.0, 126.5, -127.5, 2147483648.0];
            for (i, v) in x.iter_mut().enumerate() {
                if i % 3 == 0 { *v = sp[(i / 3) % sp.len()]; }
            }
        }
        let n = if per_ch { c } else { 1 };
        let scale: Vec<f32> = vals(n, seed ^ 1).iter().map(|v| if special { 1.0 } else { v.abs() + 0.01 }).collect();
        let zero = i8s(n, seed ^ 2);
        // The definition: transpose the f32 values, then quantize channels-last.
        let mut xt = vec![0f32; x.len()];
        for ch in 0..c {
            for p in 0..hw {
                xt[p * c + ch] = x[ch * hw + p];
            }
        }
        let mut want = vec![0i8; x.len()];
        qk::quantize_reference(&xt, c, &scale, &zero, &mut want).unwrap();
        let mut first = None;
        if let Some((at, k, also_later)) = bad {
            let i = at % x.len();
            x[i] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][k];
            let last = x.len() - 1;
            if also_later && i < last {
                x[last] = f32::NAN;
            }
            first = Some(i);
        }
        let mut tmp = vec![0i8; x.len()];
        let mut runs: Vec<(&str, Result<(), ldp_core::Error>, Vec<i8>)> = Vec::new();
        let mut a = vec![0i8; x.len()];
        let r = qk::quantize_nchw_reference(&x, c, hw, &scale, &zero, &mut a, &mut tmp);
        runs.push(("reference", r, a));
        let mut b = vec![0i8; x.len()];
        let r = qk::quantize_nchw(&x, c, hw, &scale, &zero, &mut b, &mut tmp);
        runs.push(("dispatch", r, b));
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut d = vec![0i8; x.len()];
            // SAFETY: the CPU features were detected just above.
            let r = unsafe { ldp_core::kernels::quantize::x86::quantize_nchw_avx2(&x, c, hw, &scale, &zero, &mut d, &mut tmp) };
            runs.push(("avx2", r, d));
        }
        // Channel group by channel group (`quantize_nchw_part`, dispatch and reference), as the
        // CLI reads a sample: groups of `group` channels, the last one shorter.
        type Part = fn(&[f32], usize, usize, usize, &[f32], &[i8], &mut [i8]) -> Result<(), ldp_core::Error>;
        let parts: [(&str, Part); 2] = [("part dispatch", qk::quantize_nchw_part),
                                        ("part reference", qk::quantize_nchw_part_reference)];
        for (name, f) in parts {
            let mut got = vec![0i8; x.len()];
            let mut r = Ok(());
            for ch0 in (0..c).step_by(group) {
                let g = group.min(c - ch0);
                r = f(&x[ch0 * hw..(ch0 + g) * hw], c, hw, ch0, &scale, &zero, &mut got);
                if r.is_err() {
                    break;
                }
            }
            runs.push((name, r, got));
        }
        for (name, r, got) in runs {
            match first {
                None => {
                    prop_assert!(r.is_ok(), "{}: {:?}", name, r);
                    prop_assert_eq!(&want, &got, "{}", name);
                }
                Some(i) => prop_assert_eq!(r, Err(ldp_core::Error::NonFiniteInput { index: i }), "{}", name),
            }
        }
    }
}

/// The VNNI int8 pointwise kernel's output (`None` when the CPU lacks AVX-512 VNNI).
#[cfg(target_arch = "x86_64")]
fn vnni_i8(x: &[i8], c_in: usize, q: &ConvQ<'_>, c_out: usize) -> Option<Vec<i8>> {
    if !vnni() {
        return None;
    }
    let mut c = vec![0i8; x.len() / c_in * c_out];
    // SAFETY: the CPU features were detected just above.
    unsafe { ldp_core::kernels::pointwise::x86::vnni::pointwise_vnni(x, c_in, q, c_out, &mut c) }
        .unwrap();
    Some(c)
}

/// AVX-VNNI usable (the ymm `vpdpbusd` kernel); says so once when not.
#[cfg(target_arch = "x86_64")]
fn avxvnni() -> bool {
    let yes = avx2() && std::is_x86_feature_detected!("avxvnni");
    if !yes {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("AVX-VNNI not available here: its kernel is not tested"));
    }
    yes
}

/// The AVX-VNNI int8 pointwise kernel's output (`None` when the CPU lacks AVX-VNNI).
#[cfg(target_arch = "x86_64")]
fn avxvnni_i8(x: &[i8], c_in: usize, q: &ConvQ<'_>, c_out: usize) -> Option<Vec<i8>> {
    if !avxvnni() {
        return None;
    }
    let mut c = vec![0i8; x.len() / c_in * c_out];
    // SAFETY: the CPU features were detected just above.
    unsafe {
        ldp_core::kernels::pointwise::x86::avxvnni::pointwise_avxvnni(x, c_in, q, c_out, &mut c)
    }
    .unwrap();
    Some(c)
}

/// The AMX int8 pointwise kernel's output (`None` when the CPU or OS lacks AMX-INT8).
#[cfg(target_arch = "x86_64")]
fn amx_i8(x: &[i8], c_in: usize, q: &ConvQ<'_>, c_out: usize) -> Option<Vec<i8>> {
    if !amx() {
        return None;
    }
    let mut c = vec![0i8; x.len() / c_in * c_out];
    // SAFETY: the CPU features and the tile permission were detected just above.
    unsafe { ldp_core::kernels::pointwise::x86::amx::pointwise_amx(x, c_in, q, c_out, &mut c) }
        .unwrap();
    Some(c)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, .. ProptestConfig::default() })]

    /// The AMX kernel against the reference on the shapes it takes (`c_out ≥ 32`, `c_in ≤ 2048`):
    /// `c_in` 1..=200 or up to 2048 (not multiples of 64: the zero-padded last step), `c_out`
    /// 32..=170 (overlapping last panel, partial groups of 4 panels); 1..=170 pixels (the
    /// transposed form up to 160: partial pixel panels, 1 to 6 panels) or 161..=301 (the
    /// pixel-major form: overlapping last block); every shift, full-range biases and
    /// multipliers, any output zero point, with and without a table, `i8` and `i16` outputs.
    /// Skipped (with a message) where the CPU or the OS lacks AMX-INT8.
    #[test]
    fn int8_pointwise_amx_equals_reference(c_in in 1usize..=200, wide in 0usize..=2048, use_wide in 0u8..4,
                                           c_out in 32usize..=170, pixels in 1usize..=170, big in 0u8..3,
                                           shift in 1i32..=62, zo in -128i32..=127, with_lut in any::<bool>(),
                                           extreme in any::<bool>(), seed in any::<u64>()) {
        #[cfg(target_arch = "x86_64")]
        {
            if !amx() {
                return Ok(());
            }
            // Large pixel counts only with narrow inputs (the reference is scalar).
            let (c_in, pixels) = if big == 0 {
                (c_in, 161 + pixels % 141)
            } else if use_wide == 0 {
                (wide.max(1), pixels % 40 + 1)
            } else {
                (c_in, pixels)
            };
            let x = if extreme && seed % 3 == 0 { vec![-128i8; pixels * c_in] } else { i8s(pixels * c_in, seed) };
            let w = if extreme && seed % 3 == 0 { vec![-128i8; c_in * c_out] } else { i8s(c_in * c_out, seed ^ 1) };
            let (bias, bias_shift) = if extreme {
                b16(&ints_in(c_out, seed ^ 2, i32::MIN, i32::MAX), true)
            } else {
                (i8s(c_out, seed ^ 2).iter().map(|&v| v as i16 * 250).collect(), 5)
            };
            let mult = m8(&ints_in(c_out, seed ^ 3, 0, 255));
            let lut = i8s(256, seed ^ 4);
            let q = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: zo,
                            lut: if with_lut { Some(&lut) } else { None } };
            let mut a = vec![0i8; pixels * c_out];
            qk::pointwise_reference(&x, c_in, &q, c_out, &mut a).unwrap();
            let c = amx_i8(&x, c_in, &q, c_out).unwrap();
            prop_assert_eq!(&a, &c, "amx i8 {} {} {}", c_in, c_out, pixels);
            let q16 = ConvQ { lut: None, ..q };
            let mut a16 = vec![0i16; pixels * c_out];
            qk::pointwise_reference(&x, c_in, &q16, c_out, &mut a16).unwrap();
            let mut c16 = vec![0i16; pixels * c_out];
            // SAFETY: AMX detected just above (`amx()`).
            unsafe { ldp_core::kernels::pointwise::x86::amx::pointwise_i16_amx(&x, c_in, &q16, c_out, &mut c16) }.unwrap();
            prop_assert_eq!(&a16, &c16, "amx i16 {} {} {}", c_in, c_out, pixels);
        }
    }
}

/// int8 pointwise, VNNI and AVX-VNNI kernels, on the shapes around their limits: `c_out` 32 (one panel),
/// 33..=95 (overlapping last panel), 129..=255 (a full group of 4 panels and a partial one),
/// `c_in` 1..=9 (word padding), 2047/2048 (largest) and 2049 (AVX2 fallback), pixel counts
/// around the 12-pixel tile; extreme biases, with and without table.
#[test]
fn int8_pointwise_vnni_shapes() {
    for (c_in, c_out, pixels) in [
        (1, 32, 1),
        (2, 33, 13),
        (3, 47, 11),
        (5, 64, 12),
        (9, 95, 25),
        (128, 128, 19),
        (255, 40, 7),
        (2048, 64, 14),
        (64, 167, 13),
        (300, 129, 12),
        (17, 255, 9),
        (2047, 35, 3),
        (2048, 160, 5),
        (2049, 33, 2),
        // The AVX-VNNI kernel's own limits: one 16-output panel, an overlapping last panel
        // below 32 outputs, groups of 4 panels, pixel counts around its 6-pixel tile.
        (7, 16, 5),
        (33, 17, 7),
        (2048, 31, 6),
        (100, 80, 13),
        (2047, 65, 1),
    ] {
        let x = i8s(pixels * c_in, 15);
        let w = i8s(c_in * c_out, 16);
        let (bias, bias_shift) = b16(&ints_in(c_out, 17, i32::MIN, i32::MAX), true);
        let mult = m8(&ints_in(c_out, 18, 0, 255));
        let lut = i8s(256, 19);
        for (shift, lut) in [(27, None), (9, Some(&lut[..])), (40, None)] {
            let q = ConvQ {
                weight: &w,
                bias: &bias,
                bias_shift,
                mult: &mult,
                shift,
                in_zero: 0,
                out_zero: -3,
                lut,
            };
            let mut a = vec![0i8; pixels * c_out];
            qk::pointwise_reference(&x, c_in, &q, c_out, &mut a).unwrap();
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = vnni_i8(&x, c_in, &q, c_out) {
                assert_eq!(a, c, "vnni {c_in} {c_out} {pixels}");
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = avxvnni_i8(&x, c_in, &q, c_out) {
                assert_eq!(a, c, "avxvnni {c_in} {c_out} {pixels}");
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = amx_i8(&x, c_in, &q, c_out) {
                assert_eq!(a, c, "amx {c_in} {c_out} {pixels}");
            }
            let mut b = vec![0i8; pixels * c_out];
            qk::pointwise(&x, c_in, &q, c_out, &mut b).unwrap();
            assert_eq!(a, b, "{c_in} {c_out} {pixels}");
        }
        // All-(−128) activations and weights: the largest products, 4 per vpdpbusd.
        let xm = vec![-128i8; pixels * c_in];
        let wm = vec![-128i8; c_in * c_out];
        let q = ConvQ {
            weight: &wm,
            bias: &bias,
            bias_shift,
            mult: &mult,
            shift: 30,
            in_zero: 0,
            out_zero: 5,
            lut: None,
        };
        let mut a = vec![0i16; pixels * c_out];
        qk::pointwise_reference(&xm, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i16; pixels * c_out];
        qk::pointwise(&xm, c_in, &q, c_out, &mut b).unwrap();
        assert_eq!(a, b, "-128 {c_in} {c_out} {pixels}");
    }
}

/// int8 pointwise around the AVX2 kernel's switch between its packed form (`c_in ≤ 512`,
/// `c_out ≥ 16`) and its dot-product form, with overlapping last panels and tiles.
#[test]
fn int8_pointwise_form_boundaries() {
    for (c_in, c_out, pixels) in [
        (511, 16, 7),
        (512, 17, 13),
        (513, 33, 6),
        (1, 16, 5),
        (2, 31, 12),
        (128, 128, 19),
        (1024, 20, 3),
        (2048, 4, 2),
    ] {
        let x = i8s(pixels * c_in, 5);
        let w = i8s(c_in * c_out, 6);
        let (bias, bias_shift) = b16(&ints_in(c_out, 7, i32::MIN, i32::MAX), true);
        let mult = m8(&ints_in(c_out, 8, 0, 255));
        let lut = i8s(256, 9);
        for lut in [None, Some(&lut[..])] {
            let q = ConvQ {
                weight: &w,
                bias: &bias,
                bias_shift,
                mult: &mult,
                shift: 27,
                in_zero: 0,
                out_zero: -3,
                lut,
            };
            let mut a = vec![0i8; pixels * c_out];
            qk::pointwise_reference(&x, c_in, &q, c_out, &mut a).unwrap();
            let mut b = vec![0i8; pixels * c_out];
            qk::pointwise(&x, c_in, &q, c_out, &mut b).unwrap();
            assert_eq!(a, b, "{c_in} {c_out} {pixels}");
            #[cfg(target_arch = "x86_64")]
            if avx2() {
                let mut c = vec![0i8; pixels * c_out];
                // SAFETY: the CPU features were detected just above.
                unsafe {
                    ldp_core::kernels::pointwise::x86::int8::pointwise_avx2(
                        &x, c_in, &q, c_out, &mut c,
                    )
                }
                .unwrap();
                assert_eq!(a, c, "{c_in} {c_out} {pixels}");
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = vnni_i8(&x, c_in, &q, c_out) {
                assert_eq!(a, c, "vnni {c_in} {c_out} {pixels}");
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = avxvnni_i8(&x, c_in, &q, c_out) {
                assert_eq!(a, c, "avxvnni {c_in} {c_out} {pixels}");
            }
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = amx_i8(&x, c_in, &q, c_out) {
                assert_eq!(a, c, "amx {c_in} {c_out} {pixels}");
            }
        }
    }
}

/// `pointwise::<i16>` (dispatch) and, on x86-64 with AVX2, the explicit AVX2 entry against
/// `pointwise_reference::<i16>`, bit for bit; returns the reference output.
fn check_int8_pointwise_i16(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
) -> Result<Vec<i16>, TestCaseError> {
    let pixels = x.len() / c_in;
    let mut a = vec![0i16; pixels * c_out];
    qk::pointwise_reference(x, c_in, q, c_out, &mut a).unwrap();
    let mut b = vec![0i16; pixels * c_out];
    qk::pointwise(x, c_in, q, c_out, &mut b).unwrap();
    prop_assert_eq!(&a, &b, "dispatch {} {} {}", c_in, c_out, pixels);
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        let mut c = vec![0i16; pixels * c_out];
        // SAFETY: the CPU features were detected just above.
        unsafe {
            ldp_core::kernels::pointwise::x86::int8::pointwise_i16_avx2(x, c_in, q, c_out, &mut c)
        }
        .unwrap();
        prop_assert_eq!(&a, &c, "avx2 {} {} {}", c_in, c_out, pixels);
    }
    #[cfg(target_arch = "x86_64")]
    if vnni() {
        let mut c = vec![0i16; pixels * c_out];
        // SAFETY: the CPU features were detected just above.
        unsafe {
            ldp_core::kernels::pointwise::x86::vnni::pointwise_i16_vnni(x, c_in, q, c_out, &mut c)
        }
        .unwrap();
        prop_assert_eq!(&a, &c, "vnni {} {} {}", c_in, c_out, pixels);
    }
    #[cfg(target_arch = "x86_64")]
    if avxvnni() {
        let mut c = vec![0i16; pixels * c_out];
        // SAFETY: the CPU features were detected just above.
        unsafe {
            ldp_core::kernels::pointwise::x86::avxvnni::pointwise_i16_avxvnni(
                x, c_in, q, c_out, &mut c,
            )
        }
        .unwrap();
        prop_assert_eq!(&a, &c, "avxvnni {} {} {}", c_in, c_out, pixels);
    }
    #[cfg(target_arch = "x86_64")]
    if amx() {
        let mut c = vec![0i16; pixels * c_out];
        // SAFETY: the CPU features and the tile permission were detected just above.
        unsafe {
            ldp_core::kernels::pointwise::x86::amx::pointwise_i16_amx(x, c_in, q, c_out, &mut c)
        }
        .unwrap();
        prop_assert_eq!(&a, &c, "amx {} {} {}", c_in, c_out, pixels);
    }
    Ok(a)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// int8 pointwise with a 16-bit output: dispatch and AVX2 equal the reference bit for bit.
    /// Channels 1..=67 or 257..=323 (`c_in` also anywhere up to 600: the AVX2 kernel's packed
    /// form up to 512 input channels, its dot-product form above), every shift, any output zero
    /// point, full-range multipliers and biases (`big`) so that many outputs saturate at low
    /// shifts.
    #[test]
    fn int8_pointwise_i16_kernels_equal_reference(c_in in 1usize..=67, in_form in 0u8..3, c_in_any in 1usize..=600,
                                                  c_out in 1usize..=67, wide_out in any::<bool>(),
                                                  pixels in 1usize..=19, shift in 1i32..=62,
                                                  zo in prop_oneof![Just(0i32), -40000i32..=40000, any::<i32>()],
                                                  big in any::<bool>(), seed in any::<u64>()) {
        let c_in = match in_form { 0 => c_in, 1 => c_in + 256, _ => c_in_any };
        let c_out = if wide_out { c_out + 256 } else { c_out };
        let x = i8s(pixels * c_in, seed);
        let w = i8s(c_in * c_out, seed ^ 1);
        let (blo, bhi) = if big { (i32::MIN, i32::MAX) } else { (-1 << 16, 1 << 16) };
        let bias = ints_in(c_out, seed ^ 2, blo, bhi);
        let (bias, bias_shift) = b16(&bias, big);
        let mult = m8(&ints_in(c_out, seed ^ 3, 0, 255));
        let q = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: zo, lut: None };
        check_int8_pointwise_i16(&x, c_in, &q, c_out)?;
    }
}

/// int8 pointwise with a 16-bit output around the AVX2 kernel's form switch (as
/// `int8_pointwise_form_boundaries`), at shifts where the outputs saturate in both directions,
/// partly saturate, or stay small; a table is refused.
#[test]
fn int8_pointwise_i16_form_boundaries() {
    for (c_in, c_out, pixels) in [
        (511, 16, 7),
        (512, 17, 13),
        (513, 33, 6),
        (1, 16, 5),
        (2, 31, 12),
        (128, 128, 19),
        (600, 323, 1),
        (1024, 20, 3),
        (2048, 4, 2),
        (3, 3, 4),
    ] {
        let x = i8s(pixels * c_in, 5);
        let w = i8s(c_in * c_out, 6);
        let (bias, bias_shift) = b16(&ints_in(c_out, 7, -1 << 20, 1 << 20), false);
        let mult = m8(&ints_in(c_out, 8, 0, 255));
        for (shift, out_zero) in [(1, 0), (17, 0), (21, -5), (27, 1000), (62, 0)] {
            let q = ConvQ {
                weight: &w,
                bias: &bias,
                bias_shift,
                mult: &mult,
                shift,
                in_zero: 0,
                out_zero,
                lut: None,
            };
            let a = check_int8_pointwise_i16(&x, c_in, &q, c_out).unwrap();
            if shift == 1 && c_in > 3 {
                assert!(
                    a.contains(&i16::MIN) && a.contains(&i16::MAX),
                    "{c_in} {c_out}"
                );
            }
        }
        let lut = i8s(256, 9);
        let q = ConvQ {
            weight: &w,
            bias: &bias,
            bias_shift,
            mult: &mult,
            shift: 20,
            in_zero: 0,
            out_zero: 0,
            lut: Some(&lut),
        };
        let mut y = vec![0i16; pixels * c_out];
        assert!(qk::pointwise(&x, c_in, &q, c_out, &mut y).is_err());
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU features were detected just above.
            let r = unsafe {
                ldp_core::kernels::pointwise::x86::int8::pointwise_i16_avx2(
                    &x, c_in, &q, c_out, &mut y,
                )
            };
            assert!(r.is_err());
        }
    }
}

/// 16-bit LayerNorm inputs, `pixels × c`: `form` 0 full range, 1 only the extremes
/// (`±32767`, `−32768`), 2 a narrow band (tiny variance), 3 constant pixels (`D = 0`), 4 pixels
/// in turn of extremes, constant, and a narrow band at `−32768`.
fn norm_i16s(pixels: usize, c: usize, form: u8, seed: u64) -> Vec<i16> {
    let full = ints_in(pixels * c, seed, -32768, 32767);
    let pick = |p: usize, v: i32| -> i16 {
        let ext = [-32768i32, -32767, 32767][(v as u32 % 3) as usize];
        let f = if form == 4 {
            (p % 3) as u8 * 2 + 1
        } else {
            form
        };
        (match f {
            1 => ext,
            2 => 20000 + v % 3,
            3 => full[p * c],
            5 => full[p * c] % 7 - 32761,
            _ => v,
        }) as i16
    };
    (0..pixels * c).map(|k| pick(k / c, full[k])).collect()
}

/// `layer_norm_i16` (dispatch) and, on x86-64, the explicit AVX2 and (where the CPU has it)
/// AVX-512 VBMI entries against
/// `layer_norm_i16_reference`, bit for bit.
fn check_layer_norm_i16(x: &[i16], c: usize, q: &qk::NormQ<'_>) -> Result<Vec<i8>, TestCaseError> {
    let mut a = vec![0i8; x.len()];
    qk::layer_norm_i16_reference(x, c, q, &mut a).unwrap();
    let mut b = vec![0i8; x.len()];
    qk::layer_norm_i16(x, c, q, &mut b).unwrap();
    prop_assert_eq!(
        &a,
        &b,
        "dispatch c {} shift {} lut {}",
        c,
        q.shift,
        q.lut.is_some()
    );
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        let mut d = vec![0i8; x.len()];
        // SAFETY: the CPU features were detected just above.
        unsafe { ldp_core::kernels::norm::x86::layer_norm_i16_avx2(x, c, q, &mut d) }.unwrap();
        prop_assert_eq!(
            &a,
            &d,
            "avx2 c {} shift {} lut {}",
            c,
            q.shift,
            q.lut.is_some()
        );
    }
    #[cfg(target_arch = "x86_64")]
    if avx512vbmi() {
        let mut d = vec![0i8; x.len()];
        // SAFETY: the CPU features were detected just above.
        unsafe { ldp_core::kernels::norm::x86::layer_norm_i16_avx512(x, c, q, &mut d) }.unwrap();
        prop_assert_eq!(
            &a,
            &d,
            "avx512 c {} shift {} lut {}",
            c,
            q.shift,
            q.lut.is_some()
        );
    }
    Ok(a)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    /// LayerNorm of 16-bit inputs: dispatch and AVX2 equal the reference bit for bit, with and
    /// without a table (the interpolating output). Channels 1..=67, 257..=323 or anywhere up to
    /// 2100 (past the AVX2 limit of 2048), full-range inputs with their extremes, narrow and
    /// constant pixels, full-range γ/β, every shift (around the table path's `T = 8` switch too).
    #[test]
    fn int8_layer_norm_i16_kernels_equal_reference(c in 1usize..=67, c_form in 0u8..4, c_any in 1usize..=2100,
                                                   pixels in 1usize..=9, form in 0u8..5,
                                                   shift in prop_oneof![1i32..=62, 1i32..=12],
                                                   eps in prop_oneof![Just(0i32), 0i32..=1000, 0i32..(1 << 24)],
                                                   zo in -128i32..=127, with_lut in any::<bool>(),
                                                   seed in any::<u64>()) {
        let c = match c_form { 0 | 1 => c, 2 => c + 256, _ => c_any };
        let x = norm_i16s(pixels, c, form, seed);
        let gamma: Vec<i16> = ints_in(c, seed ^ 1, -32768, 32767).iter().map(|&v| v as i16).collect();
        let beta: Vec<i16> = ints_in(c, seed ^ 2, -32768, 32767).iter().map(|&v| v as i16).collect();
        let lut = i8s(256, seed ^ 3);
        let q = qk::NormQ { gamma: &gamma, beta: &beta, shift, eps_q8: eps, out_zero: zo,
                            lut: if with_lut { Some(&lut) } else { None } };
        check_layer_norm_i16(&x, c, &q)?;
    }
}

/// LayerNorm of 16-bit inputs at the edges: channel counts around the 8/16-lane blocks and the
/// 2048 limit, maximal variance (pairs of `−32768` and of `32767` in turn: `vpmaddwd` of `x·x`
/// reaches `2^31`), constant pixels, shifts outside `1..=62`, any `eps_q8` and output zero point, with
/// and without a (monotone or random) table; outputs must reach both ends of the table.
#[test]
fn int8_layer_norm_i16_edges() {
    let mono: Vec<i8> = (0..256i32).map(|j| (j - 128) as i8).collect();
    let rand = i8s(256, 11);
    for c in [1usize, 2, 7, 8, 9, 15, 16, 17, 24, 128, 2047, 2048, 2049] {
        let pixels = 3;
        let mut x: Vec<i16> = (0..pixels * c)
            .map(|k| if k / 2 % 2 == 0 { -32768 } else { 32767 })
            .collect();
        x[2 * c..].iter_mut().for_each(|v| *v = -32768); // a constant pixel
        let gamma: Vec<i16> = ints_in(c, 12, -32768, 32767)
            .iter()
            .map(|&v| v as i16)
            .collect();
        let beta: Vec<i16> = ints_in(c, 13, -32768, 32767)
            .iter()
            .map(|&v| v as i16)
            .collect();
        for shift in [
            -3, 0, 1, 7, 8, 9, 10, 17, 24, 31, 32, 33, 62, 63, 70, 71, 200,
        ] {
            for (eps, zo) in [(0, 0), (1 << 24, -128), (i32::MAX, 127), (-5, 1 << 28)] {
                for lut in [None, Some(&mono[..]), Some(&rand[..])] {
                    let q = qk::NormQ {
                        gamma: &gamma,
                        beta: &beta,
                        shift,
                        eps_q8: eps,
                        out_zero: zo,
                        lut,
                    };
                    let y = check_layer_norm_i16(&x, c, &q).unwrap();
                    if lut == Some(&mono[..]) && shift == 9 && zo == 0 && c >= 16 {
                        assert!(y.contains(&-128) && y.contains(&127), "{c}");
                    }
                }
            }
        }
    }
}

/// The portable row kernel's 16-bit output for rows `oy0..oy1` of the whole map.
fn depthwise_rows_i16_portable(
    s: DwShape,
    x: &[i8],
    q: &ConvQ<'_>,
    oy0: usize,
    oy1: usize,
) -> Vec<i16> {
    use ldp_core::stream::kernels::{depthwise_row_i8, DwRows};
    let (row, rl) = (s.w * s.c, s.wo() * s.c);
    let mut y = vec![0i16; (oy1 - oy0) * rl];
    for oy in oy0..oy1 {
        let r = |dy: usize| -> Option<&[i8]> {
            let iy = (oy * s.stride + dy).checked_sub(1)?;
            x.get(iy * row..(iy + 1) * row)
        };
        let inp = DwRows {
            rows: [r(0), r(1), r(2)],
            col0: 0,
        };
        depthwise_row_i8::<i16>(
            s,
            &inp,
            q,
            oy,
            0,
            &mut y[(oy - oy0) * rl..(oy - oy0 + 1) * rl],
        )
        .unwrap();
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// int8 depthwise with a 16-bit output over a range of output rows: the dispatch (VNNI where
    /// present) and the AVX2 kernel equal the portable row kernel bit for bit (channels 1..=67 and 257..=300 across the staging
    /// chunks and the scalar tail, 1×1 grids, both strides, every shift, zero points, full-range
    /// biases and multipliers that saturate `i16`).
    #[test]
    fn int8_depthwise_rows_i16_equal_portable(c in 1usize..=67, wide in any::<bool>(), h in 1usize..=19,
                                              w in 1usize..=19, stride in 1usize..=2, shift in 1i32..=62,
                                              zi in -128i32..=127, zo in -40000i32..=40000,
                                              big in any::<bool>(), ra in any::<u16>(), rb in any::<u16>(),
                                              seed in any::<u64>()) {
        let c = if wide { c + 256 - 23 } else { c };
        let s = DwShape { h, w, c, stride };
        let x = i8s(h * w * c, seed);
        let wt = i8s(9 * c, seed ^ 1);
        let (blo, bhi) = if big { (i32::MIN, i32::MAX) } else { (-1 << 16, 1 << 16) };
        let bias = ints_in(c, seed ^ 2, blo, bhi);
        let (bias, bias_shift) = b16(&bias, big);
        let mult = m8(&ints_in(c, seed ^ 3, 0, 255));
        let q = ConvQ { weight: &wt, bias: &bias, bias_shift, mult: &mult, shift, in_zero: zi, out_zero: zo, lut: None };
        let ho = s.ho();
        let (a, b) = (ra as usize % ho, rb as usize % ho);
        let (oy0, oy1) = (a.min(b), a.max(b) + 1);
        let want = depthwise_rows_i16_portable(s, &x, &q, oy0, oy1);
        // The dispatch (on x86-64 with VNNI the AVX-512 kernel for the first multiple of 64
        // channels).
        let mut got = vec![0i16; want.len()];
        qk::depthwise_rows_i16(s, &x, &q, oy0, oy1, &mut got).unwrap();
        prop_assert_eq!(&want, &got, "dispatch");
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            let mut got = vec![0i16; want.len()];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::depthwise::x86::int8::depthwise_rows_i16_avx2(s, &x, &q, oy0, oy1, &mut got) }.unwrap();
            prop_assert_eq!(&want, &got);
        }
        // Whole map, rows 0..ho.
        #[cfg(target_arch = "x86_64")]
        if avx2() && oy0 == 0 {
            let all = depthwise_rows_i16_portable(s, &x, &q, 0, ho);
            let mut got = vec![0i16; all.len()];
            // SAFETY: the CPU features were detected just above.
            unsafe { ldp_core::kernels::depthwise::x86::int8::depthwise_rows_i16_avx2(s, &x, &q, 0, ho, &mut got) }.unwrap();
            prop_assert_eq!(&all, &got);
        }
    }
}

/// The 16-bit AVX2 depthwise saturates at both ends and rejects bad calls with errors.
#[cfg(target_arch = "x86_64")]
#[test]
fn int8_depthwise_rows_i16_saturation_and_errors() {
    if !avx2() {
        return;
    }
    let s = DwShape {
        h: 5,
        w: 7,
        c: 35,
        stride: 1,
    };
    let x = i8s(5 * 7 * 35, 7);
    let wt = vec![127i8; 9 * 35];
    for (bias_v, sign) in [(1i32 << 22, 1i32), (-(1i32 << 22), -1)] {
        let bias = vec![(bias_v >> 8) as i16; 35];
        let (bias_shift, mult) = (8, vec![255u8; 35]);
        let q = ConvQ {
            weight: &wt,
            bias: &bias,
            bias_shift,
            mult: &mult,
            shift: 8,
            in_zero: 0,
            out_zero: 0,
            lut: None,
        };
        let want = depthwise_rows_i16_portable(s, &x, &q, 1, 4);
        let mut got = vec![0i16; want.len()];
        // SAFETY: the CPU features were detected just above.
        unsafe {
            ldp_core::kernels::depthwise::x86::int8::depthwise_rows_i16_avx2(
                s, &x, &q, 1, 4, &mut got,
            )
        }
        .unwrap();
        assert_eq!(want, got);
        let lim = if sign > 0 { i16::MAX } else { i16::MIN };
        assert!(got.iter().filter(|&&v| v == lim).count() > got.len() / 2);
    }
    let (bias, bias_shift) = (vec![0i16; 35], 0);
    let mult = vec![1u8; 35];
    let lut = [0i8; 256];
    let q = ConvQ {
        weight: &wt,
        bias: &bias,
        bias_shift,
        mult: &mult,
        shift: 8,
        in_zero: 0,
        out_zero: 0,
        lut: None,
    };
    let mut y = vec![0i16; 7 * 35];
    // SAFETY (all calls below): the CPU features were detected above.
    unsafe {
        use ldp_core::kernels::depthwise::x86::int8::depthwise_rows_i16_avx2 as f;
        assert!(f(s, &x, &q, 2, 2, &mut y).is_err());
        assert!(f(s, &x, &q, 4, 6, &mut y).is_err());
        assert!(f(s, &x, &q, 0, 2, &mut y).is_err());
        assert!(f(s, &x[1..], &q, 0, 1, &mut y).is_err());
        let ql = ConvQ {
            lut: Some(&lut),
            ..q
        };
        assert!(f(s, &x, &ql, 0, 1, &mut y).is_err());
        assert!(f(s, &x, &q, 4, 5, &mut y).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// The pointwise conv of a 16-bit model input (int8 output, optional table): dispatch, the
    /// AVX2, AVX-VNNI and AVX-512 VNNI kernels (each forced where the CPU has it) equal the
    /// reference bit for bit. Inputs up to the saturation `input16_limit(c_in)`, channels
    /// 1..=67 or 1..=1100 (every remainder of 16 and 32), outputs 1..=41 (remainders of 4),
    /// pixel counts 1..=9 or, with narrow channels, 45..=101 (more than one 48-pixel cache
    /// block, every remainder of the 3- and 4-pixel tiles), every shift, any output zero point.
    #[test]
    fn input16_pointwise_kernels_equal_reference(c_in in 1usize..=67, wide in any::<bool>(), c_in_any in 1usize..=1100,
                                                  c_out in 1usize..=41, pixels in 1usize..=9, shift in 1i32..=62,
                                                  many in any::<bool>(), pixels_any in 45usize..=101,
                                                  zo in -128i32..=127, with_lut in any::<bool>(), seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let c_in = if wide { c_in_any } else { c_in };
        // Narrow cases also run past one 48-pixel cache block (and its partial tiles).
        let pixels = if many && !wide { pixels_any } else { pixels };
        let lim = ldp_core::quant::input16_limit(c_in);
        let x: Vec<i16> = ints_in(pixels * c_in, seed, -lim, lim).iter().map(|&v| v as i16).collect();
        let w = i8s(c_in * c_out, seed ^ 1);
        let bias = ints_in(c_out, seed ^ 2, -(1 << 29), 1 << 29);
        let (bias, bias_shift) = b16(&bias, false);
        let mult = m8(&ints_in(c_out, seed ^ 3, 0, 255));
        let lut = i8s(256, seed ^ 4);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: zo,
                        lut: if with_lut { Some(&lut) } else { None } };
        let mut a = vec![0i8; pixels * c_out];
        a16::pointwise_in16_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i8; pixels * c_out];
        a16::pointwise_in16(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b, "dispatch {} {} {}", c_in, c_out, pixels);
        #[cfg(target_arch = "x86_64")]
        for (on, vnni_path) in [(avx2(), false), (vnni(), true)] {
            if on {
                let mut c = vec![0i8; pixels * c_out];
                // SAFETY: the CPU features were detected (`avx2()`, `vnni()`).
                unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise_in16_forced(&x, c_in, &q, c_out, &mut c, vnni_path) }.unwrap();
                prop_assert_eq!(&a, &c, "vnni={} {} {} {}", vnni_path, c_in, c_out, pixels);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if avxvnni() {
            let mut c = vec![0i8; pixels * c_out];
            // SAFETY: the CPU features were detected (`avxvnni()`).
            unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise_in16_avxvnni(&x, c_in, &q, c_out, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c, "avxvnni {} {} {}", c_in, c_out, pixels);
        }
        // The same kernels with 16-bit outputs (the 16-bit-activation path), no table.
        let q = ConvQ { lut: None, out_zero: 0, ..q };
        let mut a = vec![0i16; pixels * c_out];
        a16::pointwise16_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i16; pixels * c_out];
        a16::pointwise16(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b, "i16 dispatch {} {} {}", c_in, c_out, pixels);
        #[cfg(target_arch = "x86_64")]
        for (on, vnni_path) in [(avx2(), false), (vnni(), true)] {
            if on {
                let mut c = vec![0i16; pixels * c_out];
                // SAFETY: the CPU features were detected (`avx2()`, `vnni()`).
                unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise16_forced(&x, c_in, &q, c_out, &mut c, vnni_path) }.unwrap();
                prop_assert_eq!(&a, &c, "i16 vnni={} {} {} {}", vnni_path, c_in, c_out, pixels);
            }
        }
        #[cfg(target_arch = "x86_64")]
        if avxvnni() {
            let mut c = vec![0i16; pixels * c_out];
            // SAFETY: the CPU features were detected (`avxvnni()`).
            unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise16_avxvnni(&x, c_in, &q, c_out, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c, "i16 avxvnni {} {} {}", c_in, c_out, pixels);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// The 16-bit ADD in place (`a16::add16_inplace`: with AVX-512 16 pairs at a time when the
    /// zero points are within ±2^15) equals `sat(AddQ::sum)` of each pair, bit for bit: any
    /// multipliers, every shift, zero points small (the vector path) or anywhere (the scalar
    /// one), output zero points anywhere, 0..=100 values including the `i16` extremes.
    #[test]
    fn a16_add_equals_scalar(n in 0usize..=100, a_mult in any::<i32>(), b_mult in any::<i32>(), shift in 1i32..=62,
                             small_zero in any::<bool>(), za in any::<i32>(), zb in any::<i32>(),
                             out_zero in prop_oneof![-200i32..=200, any::<i32>()], seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let (za, zb) = if small_zero { (za % 32769, zb % 32769) } else { (za, zb) };
        let q = qk::AddQ { a_zero: za, a_mult, b_zero: zb, b_mult, shift, out_zero };
        let mut a: Vec<i16> = ints_in(n, seed, -32768, 32767).iter().map(|&v| v as i16).collect();
        let b: Vec<i16> = ints_in(n, seed ^ 1, -32768, 32767).iter().map(|&v| v as i16).collect();
        for (i, v) in [i16::MIN, i16::MAX, 0].into_iter().enumerate() {
            if let Some(e) = a.get_mut(i * 5) {
                *e = v;
            }
        }
        let want: Vec<i16> = a.iter().zip(&b).map(|(&x, &y)| q.sum(x as i32, y as i32).clamp(-32767, 32767) as i16).collect();
        a16::add16_inplace(&mut a, &b, &q).unwrap();
        prop_assert_eq!(want, a);
    }

    /// The 16-bit input quantization (`a16::quantize16`: with AVX-512 16 values at a time)
    /// equals `clamp(roundf(x / scale) as i32, ±clamp)` of each value, bit for bit: values of
    /// any magnitude, exact halves, NaN, ±inf, ±0; scales from tiny to huge, zero or negative;
    /// any saturation.
    #[test]
    fn a16_quantize_equals_scalar(n in 0usize..=100, scale in prop_oneof![1e-6f32..10.0, any::<f32>(), Just(0.0f32), Just(1.0f32)],
                                  clamp in prop_oneof![Just(32767i32), 0i32..=32767, any::<i32>()], seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 0.5, -0.5, 2.5, -2.5, 1e30, -1e30, 32767.5, -32767.5];
        let mut st = seed | 1;
        let x: Vec<f32> = (0..n).map(|i| {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;
            match st % 4 {
                0 => specials[(st >> 8) as usize % specials.len()] * if scale.is_finite() && i % 2 == 0 { scale } else { 1.0 },
                1 => ((st >> 16) as i32 % 70000) as f32 * 0.5 * scale,
                2 => f32::from_bits((st >> 20) as u32),
                _ => ((st >> 24) as i32 % 100000) as f32 / 1000.0,
            }
        }).collect();
        let want: Vec<i16> = x.iter().map(|&v| {
            let c = clamp.clamp(0, 32767);
            (libm::roundf(v / scale) as i32).clamp(-c, c) as i16
        }).collect();
        let mut got = vec![0i16; n];
        a16::quantize16(&x, scale, clamp, &mut got).unwrap();
        prop_assert_eq!(want, got);
    }

    /// The 16-bit GELU in place (`a16::gelu16_inplace`: with AVX-512 16 values at a time)
    /// equals `Gelu16::apply` of each value, bit for bit: any table, position and identity
    /// multipliers over the whole `i32` range (positions far outside the table on both sides),
    /// every shift, any saturation, 0..=100 values (whole vectors and every remainder) including
    /// the `i16` extremes.
    #[test]
    fn a16_gelu_equals_scalar(n in 0usize..=100, pos_mult in prop_oneof![1i32..=70_000, any::<i32>()],
                              pos_shift in 1i32..=62, id_mult in any::<i32>(), id_shift in 1i32..=62,
                              clamp in prop_oneof![Just(32767i32), 1i32..=32767, any::<i32>()], seed in any::<u64>()) {
        use ldp_core::quant::a16;
        let lut: Vec<i16> = ints_in(a16::GELU16_LEN, seed, -32768, 32767).iter().map(|&v| v as i16).collect();
        let mut x: Vec<i16> = ints_in(n, seed ^ 1, -32768, 32767).iter().map(|&v| v as i16).collect();
        for (i, v) in [i16::MIN, i16::MAX, 0, -1].into_iter().enumerate() {
            if let Some(e) = x.get_mut(i * 7) {
                *e = v;
            }
        }
        let g = a16::Gelu16 { lut: &lut, pos_mult, pos_shift, id_mult, id_shift, clamp };
        let want: Vec<i16> = x.iter().map(|&v| g.apply(v)).collect();
        a16::gelu16_inplace(&mut x, &g).unwrap();
        prop_assert_eq!(want, x);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, .. ProptestConfig::default() })]

    /// The fused pointwise → 16-bit → LayerNorm (`pointwise_layer_norm`) equals the reference
    /// conv then the reference 16-bit LayerNorm, bit for bit, whatever the 16-bit buffer: with
    /// a buffer of fewer pixels than the layer the conv runs in chunks, and on x86-64 with
    /// AVX-512 VNNI over weights packed once for all of them (`x86::vnni::pack_all`, panels
    /// of 32 outputs, the last overlapping): outputs 32..=100 or 1..=31, channels 1..=300,
    /// pixels 1..=70, 1 to 70 pixels per chunk, every shift.
    #[test]
    fn pointwise_layer_norm_chunks_equal_reference(c_in in 1usize..=300, c_out in 32usize..=100, narrow_out in 1usize..=31,
                                                   few_out in 0u8..5, pixels in 1usize..=70, chunk in 1usize..=70,
                                                   shift in 8i32..=40, nshift in 1i32..=40, zo in -128i32..=127,
                                                   seed in any::<u64>()) {
        let c_out = if few_out == 0 { narrow_out } else { c_out };
        let x = i8s(pixels * c_in, seed);
        let w = i8s(c_in * c_out, seed ^ 1);
        let bias = ints_in(c_out, seed ^ 2, -(1 << 20), 1 << 20);
        let (bias, bias_shift) = b16(&bias, false);
        let mult = m8(&ints_in(c_out, seed ^ 3, 1, 255));
        let conv = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: 0, lut: None };
        let gamma: Vec<i16> = ints_in(c_out, seed ^ 4, -32768, 32767).iter().map(|&v| v as i16).collect();
        let beta: Vec<i16> = ints_in(c_out, seed ^ 5, -32768, 32767).iter().map(|&v| v as i16).collect();
        let norm = qk::NormQ { gamma: &gamma, beta: &beta, shift: nshift, eps_q8: 3, out_zero: zo, lut: None };
        let mut mid_ref = vec![0i16; pixels * c_out];
        qk::pointwise_reference(&x, c_in, &conv, c_out, &mut mid_ref).unwrap();
        let mut want = vec![0i8; pixels * c_out];
        qk::layer_norm_i16_reference(&mid_ref, c_out, &norm, &mut want).unwrap();
        let mut mid = vec![0i16; chunk * c_out];
        let mut got = vec![0i8; pixels * c_out];
        qk::pointwise_layer_norm(&x, c_in, &conv, c_out, &norm, &mut mid, &mut got).unwrap();
        prop_assert_eq!(&want, &got, "{} {} {} chunk {}", c_in, c_out, pixels, chunk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// The packed GEMM forms of the AVX-512 VNNI 16-bit pointwise kernel (`vpdpwssd`, panels of
    /// 32 outputs, tiles of 6 pixels × two panels and 12/8/4/2/1 × one) and of the AVX-VNNI one
    /// (panels of 16, groups of 4, tiles of 6/4/2/1 pixels) against the references, both output
    /// types, bit for bit: outputs 32..=100 (whole panels and an overlapping last one), even channel counts
    /// 2..=160 or up to 2048 (the largest it takes; the pair tail of the 8-word packing), odd
    /// ones (the form declines, the tile kernel runs), pixels 1..=40 (every tile size and
    /// remainder), activations over the whole `±32767` range, biases up to `2^29`, every shift.
    #[test]
    fn a16_pointwise_gemm_form_equals_reference(c_in in 1usize..=80, wide in 0u8..4, c_in_any in 1usize..=1024,
                                                c_out in 32usize..=100, pixels in 1usize..=40, shift in 1i32..=62,
                                                zo in -128i32..=127, with_lut in any::<bool>(), seed in any::<u64>()) {
        use ldp_core::quant::a16;
        // One case in four wide (even, up to 2048), one odd (the form declines), two even 2..=160.
        let c_in = match wide { 0 => 2 * c_in_any, 1 => c_in | 1, _ => 2 * c_in };
        let x: Vec<i16> = ints_in(pixels * c_in, seed, -32767, 32767).iter().map(|&v| v as i16).collect();
        let w = i8s(c_in * c_out, seed ^ 1);
        let bias = ints_in(c_out, seed ^ 2, -(1 << 29), 1 << 29);
        let (bias, bias_shift) = b16(&bias, false);
        let mult = m8(&ints_in(c_out, seed ^ 3, 0, 255));
        let lut = i8s(256, seed ^ 4);
        let q = ConvQ { weight: &w, bias: &bias, bias_shift, mult: &mult, shift, in_zero: 0, out_zero: 0, lut: None };
        let mut a = vec![0i16; pixels * c_out];
        a16::pointwise16_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i16; pixels * c_out];
        a16::pointwise16(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b, "i16 dispatch {} {} {}", c_in, c_out, pixels);
        #[cfg(target_arch = "x86_64")]
        if vnni() {
            let mut c = vec![0i16; pixels * c_out];
            // SAFETY: the CPU features were detected (`vnni()`).
            unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise16_forced(&x, c_in, &q, c_out, &mut c, true) }.unwrap();
            prop_assert_eq!(&a, &c, "i16 vnni {} {} {}", c_in, c_out, pixels);
        }
        #[cfg(target_arch = "x86_64")]
        if avxvnni() {
            let mut c = vec![0i16; pixels * c_out];
            // SAFETY: the CPU features were detected (`avxvnni()`).
            unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise16_avxvnni(&x, c_in, &q, c_out, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c, "i16 avxvnni {} {} {}", c_in, c_out, pixels);
        }
        // int8 outputs (a 16-bit model input): zero point and optional table.
        let q = ConvQ { out_zero: zo, lut: if with_lut { Some(&lut) } else { None }, ..q };
        let mut a = vec![0i8; pixels * c_out];
        a16::pointwise_in16_reference(&x, c_in, &q, c_out, &mut a).unwrap();
        let mut b = vec![0i8; pixels * c_out];
        a16::pointwise_in16(&x, c_in, &q, c_out, &mut b).unwrap();
        prop_assert_eq!(&a, &b, "i8 dispatch {} {} {}", c_in, c_out, pixels);
        #[cfg(target_arch = "x86_64")]
        if vnni() {
            let mut c = vec![0i8; pixels * c_out];
            // SAFETY: the CPU features were detected (`vnni()`).
            unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise_in16_forced(&x, c_in, &q, c_out, &mut c, true) }.unwrap();
            prop_assert_eq!(&a, &c, "i8 vnni {} {} {}", c_in, c_out, pixels);
        }
        #[cfg(target_arch = "x86_64")]
        if avxvnni() {
            let mut c = vec![0i8; pixels * c_out];
            // SAFETY: the CPU features were detected (`avxvnni()`).
            unsafe { ldp_core::kernels::pointwise::x86::int16::pointwise_in16_avxvnni(&x, c_in, &q, c_out, &mut c) }.unwrap();
            prop_assert_eq!(&a, &c, "i8 avxvnni {} {} {}", c_in, c_out, pixels);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// The 16-bit-activation depthwise conv (`quant::a16::depthwise16`, 16-channel blocks in
    /// chunks of 256) equals its reference bit for bit: channels 1..=70 (whole blocks and every
    /// remainder) on grids 1×1 to 9×8, or 250..=600 (several chunks, a partial last one) on
    /// grids up to 4×4; strides 1 and 2, any inputs, weights, biases (or none), multipliers
    /// and shifts.
    #[test]
    fn a16_depthwise_equals_reference(c in 1usize..=70, h in 1usize..=9, w in 1usize..=8, stride2 in any::<bool>(),
                                      with_bias in any::<bool>(), shift in 1i32..=62, seed in any::<u64>(),
                                      wide in any::<bool>(), c_wide in 250usize..=600) {
        use ldp_core::kernels::depthwise::DwShape;
        use ldp_core::quant::a16;
        let (c, h, w) = if wide { (c_wide, h.min(4), w.min(4)) } else { (c, h, w) };
        let s = DwShape { h, w, c, stride: if stride2 { 2 } else { 1 } };
        let x: Vec<i16> = ints_in(h * w * c, seed, -32768, 32767).iter().map(|&v| v as i16).collect();
        let wt = i8s(c * 9, seed ^ 1);
        let bias = ints_in(c, seed ^ 2, -(1 << 29), 1 << 29);
        let (bias, bias_shift) = b16(&bias, false);
        let mult = m8(&ints_in(c, seed ^ 3, 0, 255));
        let q = ConvQ { weight: &wt, bias: if with_bias { &bias } else { &[] }, bias_shift, mult: &mult, shift,
                        in_zero: 0, out_zero: 0, lut: None };
        let n = s.ho() * s.wo() * c;
        let mut a = vec![0i16; n];
        a16::depthwise16_reference(s, &x, &q, &mut a).unwrap();
        let mut b = vec![0i16; n];
        a16::depthwise16(s, &x, &q, &mut b).unwrap();
        prop_assert_eq!(&a, &b, "{} {} {} stride {}", c, h, w, s.stride);
        // Wrong lengths are refused by both.
        prop_assert!(a16::depthwise16(s, &x[..x.len() - 1], &q, &mut b).is_err());
        prop_assert!(a16::depthwise16(s, &x, &q, &mut b[..n - 1]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// int8 squeeze-excitation: the dispatching `squeeze_excite` (AVX-512 channel sums, FC dot
    /// products and gate multiplication where the CPU has them) equals a scalar reference
    /// written out here (sums, means, fc1 + ReLU, fc2 + table, `se_apply_reference`) bit for bit; `se_apply` alone too. Channels 1..=70 (16-lane blocks
    /// and scalar tails), any zero points, full-range multipliers, every shift.
    #[test]
    fn int8_squeeze_excite_equals_reference(c in 1usize..=70, s in 1usize..=9, pixels in 1usize..=30,
                                            zi in -128i32..=127, zo in -128i32..=127, mult in any::<i32>(),
                                            shift in 1i32..=62, seed in any::<u64>()) {
        let x = i8s(pixels * c, seed);
        let w1 = i8s(s * c, seed ^ 1);
        let w2 = i8s(c * s, seed ^ 2);
        let m1 = m8(&ints_in(s, seed ^ 3, 0, 255));
        let m2 = m8(&ints_in(c, seed ^ 4, 0, 255));
        let gate_lut: Vec<u8> = i8s(256, seed ^ 5).iter().map(|&v| v as u8).collect();
        fn conv<'a>(w: &'a [i8], m: &'a [u8]) -> ConvQ<'a> {
            ConvQ { weight: w, bias: &[], bias_shift: 0, mult: m, shift: 12, in_zero: 0, out_zero: -5, lut: None }
        }
        let q = qk::SeQ { in_zero: zi, fc1: conv(&w1, &m1), fc2: conv(&w2, &m2), gate: &gate_lut, mult, shift, out_zero: zo };
        let mut y = x.clone();
        let mut tmp = vec![0i32; qk::se_tmp_len(c, s)];
        qk::squeeze_excite(&mut y, c, s, &q, &mut tmp).unwrap();
        // The reference, written out here (scalar): means, fc1 + ReLU, fc2 + table.
        use ldp_core::quant::fixed::{div_round, requant, sat_i8};
        let means: Vec<i32> = (0..c).map(|i| {
            let sum = x.chunks_exact(c).fold(0i32, |a, p| a.wrapping_add((p[i] as i32).wrapping_sub(zi)));
            zi.wrapping_add(div_round(sum as i64, pixels as i64) as i32).clamp(-128, 127)
        }).collect();
        let hid: Vec<i32> = (0..s).map(|j| {
            let acc = (0..c).fold(0i32, |a, i| a.wrapping_add(means[i].wrapping_mul(w1[j * c + i] as i32)));
            (sat_i8((-5i32).wrapping_add(requant(acc, m1[j] as i32, 12))) as i32).max(-5)
        }).collect();
        let gate: Vec<i32> = (0..c).map(|i| {
            let acc = (0..s).fold(0i32, |a, j| a.wrapping_add(hid[j].wrapping_mul(w2[i * s + j] as i32)));
            let v = sat_i8((-5i32).wrapping_add(requant(acc, m2[i] as i32, 12)));
            gate_lut[(v as i32 + 128) as usize] as i32
        }).collect();
        let mut r = x.clone();
        qk::se_apply_reference(&q, &gate, &mut r);
        prop_assert_eq!(&y, &r);
        // Any gate values (not only table outputs), through the dispatching `se_apply`.
        let g: Vec<i32> = ints_in(c, seed ^ 6, -70000, 70000);
        let (mut a, mut b) = (x.clone(), x.clone());
        qk::se_apply(&q, &g, &mut a);
        qk::se_apply_reference(&q, &g, &mut b);
        prop_assert_eq!(&a, &b);
    }
}

/// The float squeeze-excitation written out plainly: means, `fc1` + ReLU and `fc2` +
/// Hardsigmoid as serial sums (a separate multiply and add per term), then the gate.
pub fn se_plain<A: Elem, W: Elem>(
    x: &[A],
    c: usize,
    s: usize,
    wts: &se::SeWeights<'_, W>,
) -> Vec<A> {
    use ldp_core::kernels::activation::{hardsigmoid, relu};
    let pixels = x.len() / c;
    let mut mean = vec![0.0f32; c];
    for px in x.chunks_exact(c) {
        for (m, v) in mean.iter_mut().zip(px) {
            *m += v.to_f32();
        }
    }
    let inv = 1.0 / pixels as f32;
    mean.iter_mut().for_each(|m| *m *= inv);
    let hid: Vec<f32> = (0..s)
        .map(|j| {
            let mut acc = wts.fc1_b[j];
            for (w, m) in wts.fc1_w[j * c..(j + 1) * c].iter().zip(&mean) {
                acc += w.to_f32() * m;
            }
            relu(acc)
        })
        .collect();
    let gate: Vec<f32> = (0..c)
        .map(|i| {
            let mut acc = wts.fc2_b[i];
            for (w, h) in wts.fc2_w[i * s..(i + 1) * s].iter().zip(&hid) {
                acc += w.to_f32() * h;
            }
            hardsigmoid(acc)
        })
        .collect();
    x.chunks_exact(c)
        .flat_map(|px| {
            px.iter()
                .zip(&gate)
                .map(|(v, g)| A::from_f32(v.to_f32() * g))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// Float squeeze-excitation (f32 and f16 activations and weights): `squeeze_excite` equals
    /// the plain loops bit for bit — its FCs run eight outputs interleaved (and in bands on
    /// threads, `tests/threads.rs`), which must not change a bit. Channel and squeeze widths
    /// off the 8-output blocks.
    #[test]
    fn float_squeeze_excite_equals_plain_loops(c in 1usize..=70, s in 1usize..=20,
                                               pixels in 1usize..=12, seed in any::<u64>()) {
        let x = vals(pixels * c, seed);
        let (w1, w2) = (vals(s * c, seed ^ 1), vals(c * s, seed ^ 2));
        let (b1, b2) = (vals(s, seed ^ 3), vals(c, seed ^ 4));
        let wts = se::SeWeights { fc1_w: &w1, fc1_b: &b1, fc2_w: &w2, fc2_b: &b2 };
        let mut tmp = vec![0.0f32; se::scratch_len(c, s)];
        let mut y = x.clone();
        se::squeeze_excite(&mut y, c, s, &wts, &mut tmp).unwrap();
        let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&y), bits(&se_plain(&x, c, s, &wts)));
        let h = |v: &[f32]| v.iter().map(|&e| f16::from_f32(e)).collect::<Vec<_>>();
        let (xh, w1h, w2h) = (h(&x), h(&w1), h(&w2));
        let wh = se::SeWeights { fc1_w: &w1h, fc1_b: &b1, fc2_w: &w2h, fc2_b: &b2 };
        let mut yh = xh.clone();
        se::squeeze_excite(&mut yh, c, s, &wh, &mut tmp).unwrap();
        prop_assert_eq!(yh, se_plain(&xh, c, s, &wh));
    }
}

/// LayerNorm with a fused activation equals LayerNorm then the activation, bit for bit (f32
/// and f16, GELU and the others, odd widths).
#[test]
fn layer_norm_act_equals_layer_norm_then_act() {
    use ldp_core::kernels::activation::apply_inplace;
    use ldp_core::kernels::norm::{layer_norm_act_inplace, layer_norm_inplace};
    for c in [1usize, 7, 8, 31, 128, 133] {
        let x = vals(5 * c, c as u64);
        let g = vals(c, 11);
        let b = vals(c, 12);
        for act in [None, Some(Activation::Gelu), Some(Activation::Hardswish)] {
            let mut want = x.clone();
            layer_norm_inplace(&mut want, c, &g, &b).unwrap();
            if let Some(a) = act {
                apply_inplace(a, &mut want);
            }
            let mut got = x.clone();
            layer_norm_act_inplace(&mut got, c, &g, &b, act).unwrap();
            let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "c {c} {act:?}");
            let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            let mut want = xh.clone();
            layer_norm_inplace(&mut want, c, &g, &b).unwrap();
            if let Some(a) = act {
                apply_inplace(a, &mut want);
            }
            let mut got = xh;
            layer_norm_act_inplace(&mut got, c, &g, &b, act).unwrap();
            assert_eq!(got, want, "f16 c {c} {act:?}");
        }
    }
    let mut bad = vec![0.0f32; 10];
    assert!(
        layer_norm_act_inplace(&mut bad, 3, &[1.0; 3], &[0.0; 3], Some(Activation::Gelu)).is_err()
    );
    assert!(
        layer_norm_act_inplace(&mut bad, 5, &[1.0; 4], &[0.0; 5], Some(Activation::Gelu)).is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    /// The adaptive average pools (channel blocks of 64 summed per pixel; power-of-two bin
    /// counts divided by shifts) equal their one-value-at-a-time references bit for bit: int8
    /// with any zero point (`i32` sums, and `i64` ones for zero points beyond ±2^15), the
    /// 16-bit pool against the int8 reference's formula (zero point 0, 16-bit saturation), f32
    /// and f16. Grids 1..=13 to 1..=7 (bins of 1 to 13 pixels, powers
    /// of two among them), 1..=150 channels (one block, several, a partial last one), 1×1.
    #[test]
    fn adaptive_avg_pools_equal_references(h in 1usize..=13, w in 1usize..=13, ho in 1usize..=7, wo in 1usize..=7,
                                            c in 1usize..=150, zero in -128i32..=127, wide_zero in any::<i32>(),
                                            seed in any::<u64>()) {
        let (ho, wo) = (ho.min(h), wo.min(w));
        let x = i8s(h * w * c, seed);
        let (mut got, mut want) = (vec![0i8; ho * wo * c], vec![0i8; ho * wo * c]);
        qk::adaptive_avg_pool(&x, h, w, c, zero, &mut got, ho, wo).unwrap();
        ldp_core::kernels::pool::adaptive_avg_pool_i8_reference(&x, h, w, c, zero, &mut want, ho, wo).unwrap();
        prop_assert_eq!(&got, &want, "int8 {}x{} -> {}x{}, {} channels, zero {}", h, w, ho, wo, c, zero);
        // Any zero point the public function accepts (beyond ±2^15 the sums run in `i64`).
        qk::adaptive_avg_pool(&x, h, w, c, wide_zero, &mut got, ho, wo).unwrap();
        ldp_core::kernels::pool::adaptive_avg_pool_i8_reference(&x, h, w, c, wide_zero, &mut want, ho, wo).unwrap();
        prop_assert_eq!(&got, &want, "int8, zero {}", wide_zero);

        // 16 bits: values across the whole range, so that sums and saturation are exercised.
        let x16: Vec<i16> = ints_in(h * w * c, seed ^ 7, -32768, 32767).iter().map(|&v| v as i16).collect();
        let mut got16 = vec![0i16; ho * wo * c];
        ldp_core::quant::a16::avg_pool16(&x16, h, w, c, &mut got16, ho, wo).unwrap();
        for oy in 0..ho {
            let (ys, ye) = ldp_core::kernels::pool::bin(oy, h, ho);
            for ox in 0..wo {
                let (xs, xe) = ldp_core::kernels::pool::bin(ox, w, wo);
                for ch in 0..c {
                    let mut s = 0i64;
                    for iy in ys..ye {
                        for ix in xs..xe {
                            s += x16[(iy * w + ix) * c + ch] as i64;
                        }
                    }
                    let n = ((ye - ys) * (xe - xs)) as i64;
                    let q = ldp_core::quant::fixed::div_round(s, n).clamp(-32767, 32767) as i16;
                    prop_assert_eq!(got16[(oy * wo + ox) * c + ch], q, "16-bit at {} {} {}", oy, ox, ch);
                }
            }
        }

        let xf = vals(h * w * c, seed ^ 3);
        let (mut gf, mut wf) = (vec![0f32; ho * wo * c], vec![0f32; ho * wo * c]);
        ldp_core::kernels::pool::adaptive_avg_pool(&xf, h, w, c, &mut gf, ho, wo).unwrap();
        ldp_core::kernels::pool::adaptive_avg_pool_reference(&xf, h, w, c, &mut wf, ho, wo).unwrap();
        prop_assert!(gf.iter().zip(&wf).all(|(a, b)| a.to_bits() == b.to_bits()), "f32 pool differs");
        let xh: Vec<f16> = xf.iter().map(|&v| f16::from_f32(v)).collect();
        let (mut gh, mut wh) = (vec![f16::ZERO; ho * wo * c], vec![f16::ZERO; ho * wo * c]);
        ldp_core::kernels::pool::adaptive_avg_pool(&xh, h, w, c, &mut gh, ho, wo).unwrap();
        ldp_core::kernels::pool::adaptive_avg_pool_reference(&xh, h, w, c, &mut wh, ho, wo).unwrap();
        prop_assert!(gh.iter().zip(&wh).all(|(a, b)| a.to_bits() == b.to_bits()), "f16 pool differs");
    }
}
