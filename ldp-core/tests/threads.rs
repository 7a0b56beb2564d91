//! The pointwise layers and the LayerNorms give the same bits on any number of threads
//! (`kernels::threads`), on shapes big enough to be split, for f32, f16, int8 (both output
//! types; LayerNorms in place and of 16-bit inputs, with and without a table) and 16-bit
//! activations (pointwise, LayerNorm + Hardswish in place, depthwise conv, GELU), and the
//! f32/f16/int8 depthwise convs, the int8 ADD and the int8 and float squeeze-excitations.
#![cfg(feature = "std")]

use half::f16;
use ldp_core::kernels::activation::Activation;
use ldp_core::kernels::norm::a16 as norm16;
use ldp_core::kernels::{pointwise, threads};
use ldp_core::quant::a16;
use ldp_core::quant::kernels::{self as qk, ConvQ};

fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn i8s(n: usize, seed: u64) -> Vec<i8> {
    vals(n, seed)
        .iter()
        .map(|v| (v * 64.0).floor() as i8)
        .collect()
}

/// One test function: the thread count is process-wide.
#[test]
fn pointwise_bits_do_not_depend_on_threads() {
    // (c_in, c_out, pixels): above threads::MIN_MACS, pixel counts not multiples of the band.
    let shapes = [
        (128, 128, 4096 + 7),
        (1024, 96, 577),
        (2100, 40, 299),
        (64, 200, 1001),
    ];
    for (c_in, c_out, pixels) in shapes {
        assert!(pixels * c_in * c_out >= threads::MIN_MACS);
        let x = vals(pixels * c_in, 1);
        let w = vals(c_in * c_out, 2);
        let b = vals(c_out, 3);
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
        let xq = i8s(pixels * c_in, 4);
        let wq = i8s(c_in * c_out, 5);
        let bq: Vec<i16> = i8s(c_out, 6).iter().map(|&v| v as i16 * 100).collect();
        let mult: Vec<u8> = i8s(c_out, 7).iter().map(|&v| v as u8).collect();
        let lut = i8s(256, 8);
        let q = ConvQ {
            weight: &wq,
            bias: &bq,
            bias_shift: 4,
            mult: &mult,
            shift: 24,
            in_zero: 0,
            out_zero: 3,
            lut: Some(&lut),
        };
        let q16 = ConvQ { lut: None, ..q };
        let qa16 = ConvQ {
            lut: None,
            out_zero: 0,
            ..q
        };
        let x16: Vec<i16> = xq.iter().map(|&v| v as i16 * 97).collect();
        let run = |n: usize| {
            threads::set_threads(n);
            let mut y = vec![0.0f32; pixels * c_out];
            pointwise::pointwise(
                &x,
                c_in,
                &w,
                Some(&b),
                c_out,
                Some(Activation::Gelu),
                &mut y,
            )
            .unwrap();
            let mut yh = vec![f16::ZERO; if c_in <= 2048 { pixels * c_out } else { 0 }];
            if c_in <= 2048 {
                pointwise::pointwise(&xh, c_in, &wh, Some(&b), c_out, None, &mut yh).unwrap();
            }
            let mut yq = vec![0i8; pixels * c_out];
            qk::pointwise(&xq, c_in, &q, c_out, &mut yq).unwrap();
            let mut yq16 = vec![0i16; pixels * c_out];
            qk::pointwise(&xq, c_in, &q16, c_out, &mut yq16).unwrap();
            // 16-bit activations (`quant::a16`).
            let mut ya16 = vec![0i16; pixels * c_out];
            a16::pointwise16(&x16, c_in, &qa16, c_out, &mut ya16).unwrap();
            let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
            let hbits: Vec<u16> = yh.iter().map(|v| v.to_bits()).collect();
            (bits, hbits, yq, yq16, ya16)
        };
        let one = run(1);
        let mut yr = vec![0i8; pixels * c_out];
        qk::pointwise_reference(&xq, c_in, &q, c_out, &mut yr).unwrap();
        assert_eq!(one.2, yr, "int8 vs reference {c_in} {c_out} {pixels}");
        let mut yr16 = vec![0i16; pixels * c_out];
        a16::pointwise16_reference(&x16, c_in, &qa16, c_out, &mut yr16).unwrap();
        assert_eq!(one.4, yr16, "16-bit vs reference {c_in} {c_out} {pixels}");
        for n in [2, 3, 5, 8] {
            assert!(one == run(n), "{n} threads differ: {c_in} {c_out} {pixels}");
        }
    }
    // LayerNorms (split above 2^22 / 16 elements: `threads::NORM_COST` is 16).
    use ldp_core::kernels::norm::layer_norm_act_inplace;
    for (c, pixels) in [(128usize, 4096 + 5), (2048, 577), (100, 3000)] {
        assert!(pixels * c * 16 >= threads::MIN_MACS);
        let x = vals(pixels * c, 11);
        let g = vals(c, 12);
        let b = vals(c, 13);
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let xq = i8s(pixels * c, 14);
        let x16: Vec<i16> = xq.iter().map(|&v| v as i16 * 211).collect();
        let gq: Vec<i16> = i8s(c, 15).iter().map(|&v| 16384 + 64 * v as i16).collect();
        let bq: Vec<i16> = i8s(c, 16).iter().map(|&v| 32 * v as i16).collect();
        let lut = i8s(256, 17);
        let nq = qk::NormQ {
            gamma: &gq,
            beta: &bq,
            shift: 20,
            eps_q8: 256,
            out_zero: 3,
            lut: None,
        };
        let nl = qk::NormQ {
            lut: Some(&lut),
            ..nq
        };
        let n16 = norm16::Norm16 {
            norm: qk::NormQ {
                out_zero: 0,
                shift: 14,
                ..nq
            },
            hswish: Some(norm16::Hswish16 {
                three: 3000,
                mult: ((1u64 << 41) / 6000) as i32,
                shift: 41,
            }),
            clamp: 30000,
        };
        let run = |n: usize| {
            threads::set_threads(n);
            let mut y = x.clone();
            layer_norm_act_inplace(&mut y, c, &g, &b, Some(Activation::Gelu)).unwrap();
            let mut yh = xh.clone();
            layer_norm_act_inplace(&mut yh, c, &g, &b, None).unwrap();
            let mut yq = xq.clone();
            qk::layer_norm_inplace(&mut yq, c, &nq).unwrap();
            let mut y16 = vec![0i8; pixels * c];
            qk::layer_norm_i16(&x16, c, &nl, &mut y16).unwrap();
            // 16-bit activations: the in-place LayerNorm + Hardswish.
            let mut ya16 = x16.clone();
            norm16::layer_norm16_inplace(&mut ya16, c, &n16).unwrap();
            let bits: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
            let hbits: Vec<u16> = yh.iter().map(|v| v.to_bits()).collect();
            (bits, hbits, yq, y16, ya16)
        };
        let one = run(1);
        let mut r16 = vec![0i8; pixels * c];
        qk::layer_norm_i16_reference(&x16, c, &nl, &mut r16).unwrap();
        assert_eq!(one.3, r16, "16-bit LayerNorm vs reference {c} {pixels}");
        let mut ra16 = vec![0i16; pixels * c];
        norm16::layer_norm16(&x16, c, &n16, &mut ra16).unwrap();
        assert_eq!(
            one.4, ra16,
            "16-bit-activation LayerNorm: in place vs not {c} {pixels}"
        );
        for n in [2, 3, 5] {
            assert!(one == run(n), "LayerNorm: {n} threads differ: {c} {pixels}");
        }
    }
    // 16-bit activations: the depthwise conv (bands of output rows, both strides, a channel
    // count off the 16-channel blocks) and GELU (bands of values).
    let lut16: Vec<i16> = (0..513).map(|i| (i as i16 - 256) * 50).collect();
    let g16 = a16::Gelu16 {
        lut: &lut16,
        pos_mult: 1 << 20,
        pos_shift: 22,
        id_mult: 3 << 28,
        id_shift: 30,
        clamp: 30000,
    };
    for (h, w, c, stride) in [(50usize, 47usize, 260usize, 1usize), (100, 99, 200, 2)] {
        use ldp_core::kernels::depthwise::DwShape;
        let s = DwShape { h, w, c, stride };
        assert!(s.ho() * s.wo() * c * 9 >= threads::MIN_MACS);
        let x16: Vec<i16> = i8s(h * w * c, 31).iter().map(|&v| v as i16 * 97).collect();
        let wq = i8s(9 * c, 32);
        let bq: Vec<i16> = i8s(c, 33).iter().map(|&v| v as i16 * 50).collect();
        let mult: Vec<u8> = i8s(c, 34).iter().map(|&v| v as u8 | 128).collect();
        let q = ConvQ {
            weight: &wq,
            bias: &bq,
            bias_shift: 3,
            mult: &mult,
            shift: 12,
            in_zero: 0,
            out_zero: 0,
            lut: None,
        };
        let n = s.ho() * s.wo() * c;
        let mut want = vec![0i16; n];
        a16::depthwise16_reference(s, &x16, &q, &mut want).unwrap();
        let mut gwant = x16.clone();
        for v in gwant.iter_mut() {
            *v = g16.apply(*v);
        }
        for t in [1, 2, 3, 5] {
            threads::set_threads(t);
            let mut y = vec![0i16; n];
            a16::depthwise16(s, &x16, &q, &mut y).unwrap();
            assert_eq!(
                y, want,
                "16-bit depthwise, {t} threads: {h}x{w}x{c} s{stride}"
            );
            let mut g = x16.clone();
            a16::gelu16_inplace(&mut g, &g16).unwrap();
            assert_eq!(g, gwant, "16-bit GELU, {t} threads");
        }
    }
    // The f32/f16 and int8 depthwise convs (bands of output rows, both strides, channel
    // counts off the 8/32/64-channel blocks, with a residual / a table): the reference's bits
    // on any thread count.
    for (h, w, c, stride) in [(50usize, 47usize, 260usize, 1usize), (100, 99, 203, 2)] {
        use ldp_core::kernels::depthwise::{self, DwShape};
        let s = DwShape { h, w, c, stride };
        assert!(s.ho() * s.wo() * c * 9 >= threads::MIN_MACS);
        let n = s.ho() * s.wo() * c;
        let x = vals(h * w * c, 41);
        let wt = vals(9 * c, 42);
        let b = vals(c, 43);
        let r = vals(n, 44);
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let mut want = vec![0.0f32; n];
        depthwise::reference::depthwise3x3(s, &x, &wt, Some(&b), Some(&r), &mut want).unwrap();
        let mut want_h = vec![f16::ZERO; n];
        depthwise::reference::depthwise3x3(s, &xh, &wt, Some(&b), None::<&[f32]>, &mut want_h)
            .unwrap();
        let xq = i8s(h * w * c, 45);
        let wq = i8s(9 * c, 46);
        let bq: Vec<i16> = i8s(c, 47).iter().map(|&v| v as i16 * 50).collect();
        let mult: Vec<u8> = i8s(c, 48).iter().map(|&v| v as u8 | 128).collect();
        let lut = i8s(256, 49);
        for table in [None, Some(&lut[..])] {
            let q = ConvQ {
                weight: &wq,
                bias: &bq,
                bias_shift: 3,
                mult: &mult,
                shift: 12,
                in_zero: -3,
                out_zero: 5,
                lut: table,
            };
            let mut want_q = vec![0i8; n];
            depthwise::int8::depthwise_reference(s, &xq, &q, &mut want_q).unwrap();
            for t in [1, 2, 3, 5] {
                threads::set_threads(t);
                let mut y = vec![0.0f32; n];
                depthwise::depthwise3x3(s, &x, &wt, Some(&b), Some(&r), &mut y).unwrap();
                let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&y) == bits(&want),
                    "f32 depthwise, {t} threads: {h}x{w}x{c} s{stride}"
                );
                let mut yh = vec![f16::ZERO; n];
                depthwise::depthwise3x3(s, &xh, &wt, Some(&b), None::<&[f32]>, &mut yh).unwrap();
                assert!(
                    yh == want_h,
                    "f16 depthwise, {t} threads: {h}x{w}x{c} s{stride}"
                );
                let mut yq = vec![0i8; n];
                depthwise::int8::depthwise(s, &xq, &q, &mut yq).unwrap();
                assert!(
                    yq == want_q,
                    "int8 depthwise (table {}), {t} threads: {h}x{w}x{c} s{stride}",
                    table.is_some()
                );
            }
        }
    }
    // The int8 ADD (bands of elements) and squeeze-excitation (the gate's two FCs in bands of
    // outputs, the gate multiplication in bands of pixels) against scalar references.
    {
        let n = 300_001;
        let (a0, b0) = (i8s(n, 51), i8s(n, 52));
        let q = qk::AddQ {
            a_zero: 3,
            a_mult: 1 << 29,
            b_zero: -7,
            b_mult: 3 << 27,
            shift: 30,
            out_zero: -2,
        };
        let mut want = a0.clone();
        qk::add_reference(&mut want, &b0, &q).unwrap();
        for t in [1, 2, 3, 5] {
            threads::set_threads(t);
            let mut a = a0.clone();
            qk::add_inplace(&mut a, &b0, &q).unwrap();
            assert!(a == want, "int8 add, {t} threads");
        }
    }
    {
        use ldp_core::quant::fixed::{div_round, requant, sat_i8};
        let (c, s, pixels, zi) = (1030usize, 515usize, 300usize, -3i32);
        assert!(s * c * 8 >= threads::MIN_MACS && pixels * c * 16 >= threads::MIN_MACS);
        let x = i8s(pixels * c, 61);
        let (w1, w2) = (i8s(s * c, 62), i8s(c * s, 63));
        let m1: Vec<u8> = i8s(s, 64).iter().map(|&v| v as u8 | 128).collect();
        let m2: Vec<u8> = i8s(c, 65).iter().map(|&v| v as u8 | 128).collect();
        let gate_lut: Vec<u8> = i8s(256, 66).iter().map(|&v| v as u8).collect();
        let conv = |w: &'static [i8], m: &'static [u8]| ConvQ {
            weight: w,
            bias: &[],
            bias_shift: 0,
            mult: m,
            shift: 16,
            in_zero: 0,
            out_zero: -5,
            lut: None,
        };
        let (w1, w2, m1, m2) = (w1.leak(), w2.leak(), m1.leak(), m2.leak());
        let q = qk::SeQ {
            in_zero: zi,
            fc1: conv(w1, m1),
            fc2: conv(w2, m2),
            gate: &gate_lut,
            mult: 3 << 20,
            shift: 28,
            out_zero: 4,
        };
        // The scalar reference: means, fc1 + ReLU, fc2 + table, `se_apply_reference`.
        let means: Vec<i32> = (0..c)
            .map(|i| {
                let sum = x
                    .chunks_exact(c)
                    .fold(0i32, |a, p| a.wrapping_add((p[i] as i32).wrapping_sub(zi)));
                zi.wrapping_add(div_round(sum as i64, pixels as i64) as i32)
                    .clamp(-128, 127)
            })
            .collect();
        let hid: Vec<i32> = (0..s)
            .map(|j| {
                let acc = (0..c).fold(0i32, |a, i| {
                    a.wrapping_add(means[i].wrapping_mul(w1[j * c + i] as i32))
                });
                (sat_i8((-5i32).wrapping_add(requant(acc, m1[j] as i32, 16))) as i32).max(-5)
            })
            .collect();
        let gate: Vec<i32> = (0..c)
            .map(|i| {
                let acc = (0..s).fold(0i32, |a, j| {
                    a.wrapping_add(hid[j].wrapping_mul(w2[i * s + j] as i32))
                });
                let v = sat_i8((-5i32).wrapping_add(requant(acc, m2[i] as i32, 16)));
                gate_lut[(v as i32 + 128) as usize] as i32
            })
            .collect();
        let mut want = x.clone();
        qk::se_apply_reference(&q, &gate, &mut want);
        assert!(want != x, "the SE test changes its input");
        for t in [1, 2, 3, 5] {
            threads::set_threads(t);
            let mut y = x.clone();
            let mut tmp = vec![0i32; qk::se_tmp_len(c, s)];
            qk::squeeze_excite(&mut y, c, s, &q, &mut tmp).unwrap();
            assert!(y == want, "int8 squeeze-excitation, {t} threads");
        }
    }
    // The float squeeze-excitation: its FCs in bands of outputs, against the plain loops.
    {
        use ldp_core::kernels::activation::{hardsigmoid, relu};
        use ldp_core::kernels::se;
        let (c, s, pixels) = (1030usize, 515usize, 300usize);
        assert!(s * c * 8 >= threads::MIN_MACS);
        let x = vals(pixels * c, 71);
        let (w1, w2) = (vals(s * c, 72), vals(c * s, 73));
        let (b1, b2) = (vals(s, 74), vals(c, 75));
        let wts = se::SeWeights {
            fc1_w: &w1,
            fc1_b: &b1,
            fc2_w: &w2,
            fc2_b: &b2,
        };
        let mut mean = vec![0.0f32; c];
        for px in x.chunks_exact(c) {
            for (m, v) in mean.iter_mut().zip(px) {
                *m += v;
            }
        }
        let inv = 1.0 / pixels as f32;
        mean.iter_mut().for_each(|m| *m *= inv);
        let hid: Vec<f32> = (0..s)
            .map(|j| relu((0..c).fold(b1[j], |a, i| a + w1[j * c + i] * mean[i])))
            .collect();
        let gate: Vec<f32> = (0..c)
            .map(|i| hardsigmoid((0..s).fold(b2[i], |a, j| a + w2[i * s + j] * hid[j])))
            .collect();
        let want: Vec<u32> = x
            .chunks_exact(c)
            .flat_map(|px| px.iter().zip(&gate).map(|(v, g)| (v * g).to_bits()))
            .collect();
        for t in [1, 2, 3, 5] {
            threads::set_threads(t);
            let mut y = x.clone();
            let mut tmp = vec![0.0f32; se::scratch_len(c, s)];
            se::squeeze_excite(&mut y, c, s, &wts, &mut tmp).unwrap();
            let got: Vec<u32> = y.iter().map(|v| v.to_bits()).collect();
            assert!(got == want, "f32 squeeze-excitation, {t} threads");
        }
    }
    // The 16-bit path's elementwise kernels (input quantization, ADD, output dequantization)
    // and squeeze-excitation (its gate multiplication in bands of pixels): the one-thread bits
    // (the serial code) on any thread count.
    {
        use ldp_core::kernels::se::a16::{squeeze_excite16, Se16};
        let n = 300_001;
        let xf = vals(n, 81);
        let a: Vec<i16> = i8s(n, 82).iter().map(|&v| v as i16 * 255).collect();
        let b: Vec<i16> = i8s(n, 83).iter().map(|&v| v as i16 * 201).collect();
        let q = qk::AddQ {
            a_zero: 0,
            a_mult: 3 << 28,
            b_zero: 0,
            b_mult: 5 << 27,
            shift: 30,
            out_zero: 0,
        };
        let (c, s, pixels) = (1030usize, 257usize, 300usize);
        let x16: Vec<i16> = i8s(pixels * c, 84)
            .iter()
            .map(|&v| v as i16 * 199)
            .collect();
        let (w1, w2) = (i8s(s * c, 85), i8s(c * s, 86));
        let (m1, m2) = (vec![150u8; s], vec![170u8; c]);
        let conv = |w: &'static [i8], m: &'static [u8]| ConvQ {
            weight: w,
            bias: &[],
            bias_shift: 0,
            mult: m,
            shift: 20,
            in_zero: 0,
            out_zero: 0,
            lut: None,
        };
        let se = Se16 {
            fc1: conv(w1.leak(), m1.leak()),
            fc2: conv(w2.leak(), m2.leak()),
            hid_clamp: 4000,
            mult: 1 << 28,
            shift: 40,
            clamp: 30000,
        };
        let run = || {
            let mut xq = vec![0i16; n];
            a16::quantize16(&xf, 0.003, 32767, &mut xq).unwrap();
            let mut sum = a.clone();
            a16::add16_inplace(&mut sum, &b, &q).unwrap();
            let mut yf = vec![0.0f32; n];
            a16::dequantize16(&sum, 0.7, &mut yf).unwrap();
            let mut y = x16.clone();
            let mut tmp = vec![0i32; 2 * c + s];
            squeeze_excite16(&mut y, c, s, &se, &mut tmp).unwrap();
            (
                xq,
                sum,
                yf.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y,
            )
        };
        threads::set_threads(1);
        let one = run();
        assert!(one.3 != x16, "the 16-bit SE test changes its input");
        for t in [2, 3, 5] {
            threads::set_threads(t);
            let got = run();
            assert!(got.0 == one.0, "16-bit quantization, {t} threads");
            assert!(got.1 == one.1, "16-bit add, {t} threads");
            assert!(got.2 == one.2, "16-bit dequantization, {t} threads");
            assert!(got.3 == one.3, "16-bit squeeze-excitation, {t} threads");
        }
    }
    // The float LayerNorm (f32 with and without its fused GELU, f16): bands of pixels, the
    // one-thread bits on any thread count.
    {
        use ldp_core::kernels::norm::layer_norm_act_inplace;
        let (c, pixels) = (130usize, 4099usize);
        let x = vals(c * pixels, 91);
        let (g, b) = (vals(c, 92), vals(c, 93));
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let run = || {
            let mut out = Vec::new();
            for act in [None, Some(Activation::Gelu), Some(Activation::Hardswish)] {
                let mut y = x.clone();
                layer_norm_act_inplace(&mut y, c, &g, &b, act).unwrap();
                out.push(y.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            let mut yh = xh.clone();
            layer_norm_act_inplace(&mut yh, c, &g, &b, None).unwrap();
            out.push(yh.iter().map(|v| v.to_bits() as u32).collect());
            out
        };
        threads::set_threads(1);
        let one = run();
        for t in [2, 3, 5] {
            threads::set_threads(t);
            assert!(run() == one, "float LayerNorm, {t} threads");
        }
    }
    // The int8 input quantization (per channel and per tensor) and output dequantization:
    // bands of pixels, against their references.
    {
        use ldp_core::kernels::quantize::int8 as qz;
        let (c, pixels) = (131usize, 4099usize);
        let x = vals(c * pixels, 101);
        let scale: Vec<f32> = vals(c, 102).iter().map(|v| 0.01 + v.abs() * 0.02).collect();
        let zero = i8s(c, 103);
        let yq = i8s(c * pixels, 104);
        for (sc, z) in [(&scale[..], &zero[..]), (&scale[..1], &zero[..1])] {
            let mut want = vec![0i8; x.len()];
            qz::quantize_reference(&x, c, sc, z, &mut want).unwrap();
            let mut want_y = vec![0.0f32; yq.len()];
            qz::dequantize_reference(&yq, -3, 0.037, &mut want_y).unwrap();
            for t in [1, 2, 3, 5] {
                threads::set_threads(t);
                let mut q = vec![0i8; x.len()];
                qz::quantize(&x, c, sc, z, &mut q).unwrap();
                assert!(
                    q == want,
                    "int8 quantization ({} scales), {t} threads",
                    sc.len()
                );
                let mut y = vec![0.0f32; yq.len()];
                qz::dequantize(&yq, -3, 0.037, &mut y).unwrap();
                let bits = |v: &[f32]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&y) == bits(&want_y),
                    "int8 dequantization, {t} threads"
                );
            }
        }
    }
    // Several threads of a program running layers at once: one holds the worker pool, the
    // others get threads of their own; every result is still the one-thread bits.
    let (c_in, c_out, pixels) = (128, 96, 4096 + 3);
    let x = vals(pixels * c_in, 21);
    let w = vals(c_in * c_out, 22);
    let xq = i8s(pixels * c_in, 23);
    let wq = i8s(c_in * c_out, 24);
    let mult = vec![200u8; c_out];
    let q = ConvQ {
        weight: &wq,
        bias: &[],
        bias_shift: 0,
        mult: &mult,
        shift: 18,
        in_zero: 0,
        out_zero: -2,
        lut: None,
    };
    let layer = || {
        let mut y = vec![0.0f32; pixels * c_out];
        pointwise::pointwise(&x, c_in, &w, None, c_out, None, &mut y).unwrap();
        let mut yq = vec![0i8; pixels * c_out];
        qk::pointwise(&xq, c_in, &q, c_out, &mut yq).unwrap();
        (y.iter().map(|v| v.to_bits()).collect::<Vec<u32>>(), yq)
    };
    threads::set_threads(1);
    let one = layer();
    threads::set_threads(3);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..5).map(|_| layer()).collect::<Vec<_>>()))
            .collect();
        for h in hs {
            for r in h.join().unwrap() {
                assert!(r == one, "concurrent callers: a result differs");
            }
        }
    });
    threads::set_threads(1);
}
