//! Every public kernel of `ldp-core`, called with dimensions whose products overflow `usize`
//! (2^60, 2^61, 2^63, `usize::MAX`), with the case that wraps a 32-bit `usize`
//! (`h = w = 65536, c = 1`) and with buffers of inconsistent lengths: each call must return
//! `Err` — no panic, no out-of-bounds access. Before the checked size arithmetic, several of
//! these (float and int8 depthwise with `h = 2^61` / `2^60`, float pointwise with
//! `c_out = 2^63`) passed their length checks by wrapping and segfaulted in release builds.
//!
//! Run in release too: `cargo test -p ldp-core --release --test bad_dims` (the wrapping only
//! happens without overflow checks).

use half::f16;
use ldp_core::kernels::activation::Activation;
use ldp_core::kernels::depthwise::{self, DwShape};
use ldp_core::kernels::se::SeWeights;
use ldp_core::kernels::{norm, pointwise, pool, resize, se};
use ldp_core::quant::a16;
use ldp_core::quant::kernels::{self as qk, AddQ, ConvQ, NormQ, SeQ};
use ldp_core::stream::kernels::{self as sk, DwRows, ResizeQ};
use ldp_core::{tensor, Error};

/// Dimensions that overflow a product with almost anything.
const HUGE: [usize; 5] = [1 << 60, 1 << 61, 1 << 62, 1 << 63, usize::MAX];

/// Asserts that a call returns `Err`, naming the call when it does not.
macro_rules! err {
    ($e:expr) => {{
        let r: Result<_, Error> = $e;
        assert!(r.is_err(), "expected Err from `{}`", stringify!($e));
    }};
}

fn conv<'a>(w: &'a [i8], b: &'a [i16], m: &'a [u8]) -> ConvQ<'a> {
    ConvQ {
        weight: w,
        bias: b,
        bias_shift: 0,
        mult: m,
        shift: 20,
        in_zero: 0,
        out_zero: 0,
        lut: None,
    }
}

fn shapes() -> Vec<DwShape> {
    let mut v = Vec::new();
    for &n in &HUGE {
        for stride in [1, 2] {
            v.push(DwShape {
                h: n,
                w: 1,
                c: 1,
                stride,
            });
            v.push(DwShape {
                h: 1,
                w: n,
                c: 1,
                stride,
            });
            v.push(DwShape {
                h: 1,
                w: 1,
                c: n,
                stride,
            });
            v.push(DwShape {
                h: n,
                w: n,
                c: n,
                stride,
            });
            v.push(DwShape {
                h: n,
                w: 4,
                c: 16,
                stride,
            });
            // A zero factor must not hide the overflow of the others.
            v.push(DwShape {
                h: n,
                w: n,
                c: 0,
                stride,
            });
            v.push(DwShape {
                h: 0,
                w: n,
                c: n,
                stride,
            });
        }
    }
    // Wraps a 32-bit usize to 0: must not pass as an empty map.
    v.push(DwShape {
        h: 65536,
        w: 65536,
        c: 1,
        stride: 1,
    });
    v.push(DwShape {
        h: 65536,
        w: 65536,
        c: 1,
        stride: 2,
    });
    v
}

#[test]
fn float_pointwise() {
    let x = [1.0f32; 4];
    let mut y = [0.0f32; 4];
    let mut empty: [f32; 0] = [];
    for &n in &HUGE {
        // The reported case: c_in = 2, c_out = 2^63, empty w and y.
        for (ci, co) in [(2, n), (n, 2), (1, n), (n, n)] {
            err!(pointwise::pointwise(
                &x[..2],
                ci,
                &[0.0f32; 0],
                None,
                co,
                None,
                &mut empty
            ));
            err!(pointwise::pointwise(
                &x,
                ci,
                &[1.0f32; 4],
                None,
                co,
                None,
                &mut y
            ));
            err!(pointwise::reference::pointwise(
                &x[..2],
                ci,
                &[0.0f32; 0],
                None,
                co,
                None,
                &mut empty
            ));
            err!(pointwise::portable::pointwise(
                &x[..2],
                ci,
                &[0.0f32; 0],
                None,
                co,
                None,
                &mut empty
            ));
            let xh = [f16::ONE; 2];
            let mut yh: [f16; 0] = [];
            err!(pointwise::pointwise(
                &xh,
                ci,
                &[f16::ONE; 0],
                None,
                co,
                Some(Activation::Gelu),
                &mut yh
            ));
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
            {
                // SAFETY: the CPU features were detected just above.
                err!(unsafe {
                    pointwise::x86::pointwise_avx2(
                        &x[..2],
                        ci,
                        &[0.0f32; 0],
                        None,
                        co,
                        None,
                        &mut empty,
                    )
                });
            }
        }
    }
    // Inconsistent lengths.
    err!(pointwise::pointwise(
        &x,
        2,
        &[1.0f32; 3],
        None,
        2,
        None,
        &mut y
    ));
    err!(pointwise::pointwise(
        &x,
        2,
        &[1.0f32; 4],
        Some(&[0.0; 1]),
        2,
        None,
        &mut y
    ));
    err!(pointwise::pointwise(
        &x,
        2,
        &[1.0f32; 4],
        None,
        2,
        None,
        &mut y[..3]
    ));
    err!(pointwise::pointwise(
        &x[..3],
        2,
        &[1.0f32; 4],
        None,
        2,
        None,
        &mut y
    ));
    err!(pointwise::pointwise(
        &x,
        0,
        &[1.0f32; 4],
        None,
        2,
        None,
        &mut y
    ));
    err!(pointwise::portable::pointwise(
        &x,
        0,
        &[1.0f32; 4],
        None,
        2,
        None,
        &mut y
    ));
}

#[test]
fn float_depthwise() {
    let mut empty: [f32; 0] = [];
    for s in shapes() {
        // The reported case: h = 2^61, empty buffers.
        err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
            s,
            &[],
            &[],
            None,
            None,
            &mut empty
        ));
        err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
            s,
            &[1.0; 16],
            &[1.0; 144],
            None,
            None,
            &mut [0.0; 16]
        ));
        err!(depthwise::reference::depthwise3x3::<f32, f32, f32, f32>(
            s,
            &[],
            &[],
            None,
            None,
            &mut empty
        ));
        err!(depthwise::portable::depthwise3x3::<f32, f32, f32, f32>(
            s,
            &[],
            &[],
            None,
            None,
            &mut empty
        ));
        err!(depthwise::depthwise3x3::<f16, f16, f16, f16>(
            s,
            &[],
            &[],
            None,
            Some(&[]),
            &mut []
        ));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU features were detected just above.
            err!(unsafe {
                depthwise::x86::depthwise3x3_avx2::<f32, f32, f32, f32>(
                    s,
                    &[],
                    &[],
                    None,
                    None,
                    &mut empty,
                )
            });
        }
    }
    let s = DwShape {
        h: 2,
        w: 2,
        c: 4,
        stride: 1,
    };
    err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
        s,
        &[0.0; 15],
        &[0.0; 36],
        None,
        None,
        &mut [0.0; 16]
    ));
    err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
        s,
        &[0.0; 16],
        &[0.0; 35],
        None,
        None,
        &mut [0.0; 16]
    ));
    err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
        s,
        &[0.0; 16],
        &[0.0; 36],
        Some(&[0.0; 3]),
        None,
        &mut [0.0; 16]
    ));
    err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
        s,
        &[0.0; 16],
        &[0.0; 36],
        None,
        Some(&[0.0; 15]),
        &mut [0.0; 16]
    ));
    err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
        s,
        &[0.0; 16],
        &[0.0; 36],
        None,
        None,
        &mut [0.0; 17]
    ));
    let s3 = DwShape { stride: 3, ..s };
    err!(depthwise::depthwise3x3::<f32, f32, f32, f32>(
        s3,
        &[0.0; 16],
        &[0.0; 36],
        None,
        None,
        &mut [0.0; 16]
    ));
}

#[test]
fn float_resize_pool_se_norm_tensor() {
    let x = [1.0f32; 16];
    let mut y = [0.0f32; 16];
    for &n in &HUGE {
        for (h, w, c) in [
            (n, 1, 1),
            (1, n, 1),
            (1, 1, n),
            (n, n, n),
            (65536, 65536, 1),
        ] {
            err!(resize::bilinear(&x, h, w, c, &mut y, 2, 2));
            err!(resize::bilinear(&x, 2, 2, 4, &mut y, h, w));
            err!(pool::adaptive_avg_pool(&x, h, w, c, &mut y, 1, 1));
            err!(pool::adaptive_avg_pool(&x, 2, 2, 4, &mut y, h, w));
            err!(tensor::nchw_to_nhwc(&x, &mut y, c, h, w));
            err!(tensor::nhwc_to_nchw(&x, &mut y, c, h, w));
            err!(tensor::nchw_to_nhwc_part(&x, &mut y, c, h, w, 0));
            err!(tensor::nchw_to_nhwc_part(&x[..4], &mut y, 4, 2, 2, n));
        }
        // No channels, empty buffers, and an `h·w` that overflows (a zero factor must not hide
        // it: the conversions compute `h·w` on its own).
        err!(tensor::nchw_to_nhwc::<f32>(&[], &mut [], 0, n, n));
        err!(tensor::nhwc_to_nchw::<f32>(&[], &mut [], 0, n, n));
        err!(tensor::nchw_to_nhwc_part::<f32>(&[], &mut [], 0, n, n, 0));
        let mut xs = [1.0f32; 4];
        let wts = SeWeights {
            fc1_w: &[1.0f32; 4],
            fc1_b: &[0.0; 1],
            fc2_w: &[1.0f32; 4],
            fc2_b: &[0.0; 4],
        };
        err!(se::squeeze_excite(&mut xs, 4, n, &wts, &mut [0.0; 16]));
        err!(se::squeeze_excite(&mut xs, n, 1, &wts, &mut [0.0; 16]));
        err!(norm::layer_norm_inplace(&mut xs, n, &[1.0; 4], &[0.0; 4]));
    }
    err!(resize::bilinear(&x, 2, 2, 4, &mut y[..15], 2, 2));
    err!(pool::adaptive_avg_pool(&x[..15], 2, 2, 4, &mut y, 2, 2));
    err!(tensor::nchw_to_nhwc(&x, &mut y[..15], 4, 2, 2));
    let mut xs = [1.0f32; 8];
    let wts = SeWeights {
        fc1_w: &[1.0f32; 3],
        fc1_b: &[0.0; 1],
        fc2_w: &[1.0f32; 4],
        fc2_b: &[0.0; 4],
    };
    err!(se::squeeze_excite(&mut xs, 4, 1, &wts, &mut [0.0; 16]));
    let wts = SeWeights {
        fc1_w: &[1.0f32; 4],
        fc1_b: &[0.0; 1],
        fc2_w: &[1.0f32; 4],
        fc2_b: &[0.0; 4],
    };
    err!(se::squeeze_excite(&mut xs, 4, 1, &wts, &mut [0.0; 8]));
    err!(norm::layer_norm_inplace(&mut xs, 3, &[1.0; 3], &[0.0; 3]));
    err!(norm::layer_norm_inplace(&mut xs, 4, &[1.0; 3], &[0.0; 4]));
}

#[test]
fn int8_pointwise() {
    let (w, b, m) = ([1i8; 16], [0i16; 4], [1u8; 4]);
    let lut = [0i8; 256];
    let x = [1i8; 8];
    let mut empty8: [i8; 0] = [];
    let mut empty16: [i16; 0] = [];
    for &n in &HUGE {
        for (ci, co) in [(2, n), (n, 2), (1, n), (n, n), (4, n)] {
            let q = conv(&w, &b, &m);
            err!(qk::pointwise(&x[..4], ci, &q, co, &mut empty8));
            err!(qk::pointwise(&x[..4], ci, &q, co, &mut empty16));
            err!(qk::pointwise(&x, ci, &q, co, &mut [0i8; 8]));
            err!(qk::pointwise_reference(&x[..4], ci, &q, co, &mut empty8));
            err!(qk::pointwise_layer_norm(
                &x[..4],
                ci,
                &q,
                co,
                &NormQ {
                    gamma: &[1; 4],
                    beta: &[0; 4],
                    shift: 8,
                    eps_q8: 1,
                    out_zero: 0,
                    lut: None
                },
                &mut [0; 64],
                &mut empty8
            ));
            err!(a16::pointwise16(&[1i16; 4], ci, &q, co, &mut empty16));
            err!(a16::pointwise16_reference(
                &[1i16; 4],
                ci,
                &q,
                co,
                &mut empty16
            ));
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
            {
                // SAFETY: the CPU features were detected just above.
                err!(unsafe {
                    ldp_core::kernels::pointwise::x86::int8::pointwise_avx2(
                        &x[..4],
                        ci,
                        &q,
                        co,
                        &mut empty8,
                    )
                });
                // SAFETY: as above.
                err!(unsafe {
                    ldp_core::kernels::pointwise::x86::int8::pointwise_i16_avx2(
                        &x[..4],
                        ci,
                        &q,
                        co,
                        &mut empty16,
                    )
                });
            }
        }
    }
    // Inconsistent lengths: the AVX2 kernel once wrote 16 bytes past a one-pixel `y` when the
    // pixel count disagreed with it; now every entry checks.
    let q = conv(&w, &b, &m);
    err!(qk::pointwise(&x, 4, &q, 4, &mut [0i8; 1]));
    err!(qk::pointwise(&x, 4, &q, 4, &mut [0i8; 9]));
    err!(qk::pointwise(&x[..7], 4, &q, 4, &mut [0i8; 8]));
    err!(qk::pointwise(
        &x,
        4,
        &conv(&w[..15], &b, &m),
        4,
        &mut [0i8; 8]
    ));
    err!(qk::pointwise(
        &x,
        4,
        &conv(&w, &b[..3], &m),
        4,
        &mut [0i8; 8]
    ));
    err!(qk::pointwise(
        &x,
        4,
        &conv(&w, &b, &m[..3]),
        4,
        &mut [0i8; 8]
    ));
    err!(qk::pointwise(
        &x,
        4,
        &ConvQ {
            lut: Some(&lut[..255]),
            ..q
        },
        4,
        &mut [0i8; 8]
    ));
    err!(qk::pointwise(
        &x,
        4,
        &ConvQ {
            lut: Some(&lut),
            ..q
        },
        4,
        &mut [0i16; 8]
    ));
    err!(qk::pointwise(
        &x,
        4,
        &ConvQ {
            bias_shift: 16,
            ..q
        },
        4,
        &mut [0i8; 8]
    ));
    err!(qk::pointwise_layer_norm(
        &x,
        4,
        &q,
        4,
        &NormQ {
            gamma: &[1; 4],
            beta: &[0; 4],
            shift: 8,
            eps_q8: 1,
            out_zero: 0,
            lut: None
        },
        &mut [0; 3],
        &mut [0i8; 8]
    ));
}

#[test]
fn int8_depthwise() {
    let (w, b, m) = ([1i8; 144], [0i16; 16], [1u8; 16]);
    let mut empty8: [i8; 0] = [];
    for s in shapes() {
        let q = conv(&w, &b, &m);
        // The reported case: h = 2^60.
        err!(qk::depthwise(s, &[], &q, &mut empty8));
        err!(qk::depthwise(s, &[0; 64], &q, &mut [0; 64]));
        err!(qk::depthwise_reference(s, &[], &q, &mut empty8));
        err!(qk::depthwise_rows_i16(s, &[], &q, 0, 1, &mut []));
        err!(qk::depthwise_rows_i16(s, &[0; 64], &q, 0, 1, &mut [0; 64]));
        err!(a16::depthwise16(s, &[], &q, &mut []));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            // SAFETY: the CPU features were detected just above.
            err!(unsafe {
                ldp_core::kernels::depthwise::x86::int8::depthwise_avx2(s, &[], &q, &mut empty8)
            });
            // SAFETY: as above.
            err!(unsafe {
                ldp_core::kernels::depthwise::x86::int8::depthwise_rows_i16_avx2(
                    s,
                    &[],
                    &q,
                    0,
                    1,
                    &mut [],
                )
            });
        }
        let rows = DwRows {
            rows: [None, Some(&[0i8; 64][..]), Some(&[0i8; 64][..])],
            col0: 0,
        };
        // One row of a huge map is a legitimate call when the rows cover it: it may succeed,
        // it must not panic or read outside `rows`.
        let _ = sk::depthwise_row_i8(s, &rows, &q, 0, 0, &mut [0i8; 16]);
        err!(sk::depthwise_row_i8(
            s,
            &rows,
            &q,
            0,
            usize::MAX,
            &mut [0i8; 16]
        ));
        let rows = DwRows {
            rows: [None, Some(&[0f32; 64][..]), Some(&[0f32; 64][..])],
            col0: 0,
        };
        err!(sk::depthwise_row_float::<f32, f32, f32, f32>(
            s,
            &rows,
            &[0.0; 144],
            None,
            None,
            0,
            usize::MAX,
            &mut [0.0; 16]
        ));
    }
    // Inconsistent lengths, and the row range of the 16-bit variant.
    let s = DwShape {
        h: 4,
        w: 4,
        c: 16,
        stride: 1,
    };
    let q = conv(&w, &b, &m);
    err!(qk::depthwise(s, &[0; 255], &q, &mut [0; 256]));
    err!(qk::depthwise(s, &[0; 256], &q, &mut [0; 255]));
    err!(qk::depthwise(
        s,
        &[0; 256],
        &conv(&w[..143], &b, &m),
        &mut [0; 256]
    ));
    err!(qk::depthwise(
        s,
        &[0; 256],
        &conv(&w, &b, &m[..15]),
        &mut [0; 256]
    ));
    err!(qk::depthwise_rows_i16(s, &[0; 256], &q, 2, 1, &mut [0; 64]));
    err!(qk::depthwise_rows_i16(
        s,
        &[0; 256],
        &q,
        3,
        5,
        &mut [0; 128]
    ));
    err!(qk::depthwise_rows_i16(s, &[0; 256], &q, 0, 1, &mut [0; 65]));
}

#[test]
fn int8_elementwise_resize_pool_norm_se() {
    let add = AddQ {
        a_zero: 0,
        a_mult: 1,
        b_zero: 0,
        b_mult: 1,
        shift: 1,
        out_zero: 0,
    };
    err!(qk::add_inplace(&mut [0; 17], &[0; 16], &add));
    err!(qk::add_reference(&mut [0; 16], &[0; 17], &add));
    err!(a16::add16_inplace(&mut [0; 16], &[0; 15], &add));
    err!(qk::quantize(&[0.0; 16], 1, &[1.0], &[0], &mut [0; 15]));
    err!(qk::quantize(
        &[0.0; 16],
        4,
        &[1.0; 4],
        &[0; 3],
        &mut [0; 16]
    ));
    err!(qk::quantize(
        &[0.0; 15],
        4,
        &[1.0; 4],
        &[0; 4],
        &mut [0; 15]
    ));
    err!(qk::quantize_reference(
        &[0.0; 16],
        1,
        &[],
        &[],
        &mut [0; 16]
    ));
    err!(qk::dequantize(&[0; 16], 0, 1.0, &mut [0.0; 15]));
    err!(qk::dequantize_reference(&[0; 16], 0, 1.0, &mut [0.0; 17]));
    err!(a16::quantize16(&[0.0; 16], 1.0, 100, &mut [0; 15]));
    err!(a16::dequantize16(&[0; 16], 1.0, &mut [0.0; 15]));
    err!(qk::lut_inplace(&mut [0; 16], &[0; 255]));

    let x = [0i8; 64];
    let mut y = [0i8; 64];
    for &n in &HUGE {
        for (h, w, c) in [
            (n, 1, 1),
            (1, n, 1),
            (1, 1, n),
            (n, n, n),
            (65536, 65536, 1),
            (n, 2, 8),
        ] {
            err!(qk::resize_bilinear(
                &x,
                h,
                w,
                c,
                &[0],
                &[1],
                0,
                0,
                &mut y,
                2,
                2
            ));
            err!(qk::resize_bilinear(
                &x,
                2,
                2,
                16,
                &[0],
                &[1],
                0,
                0,
                &mut y,
                h,
                w
            ));
            err!(qk::resize_bilinear_reference(
                &x,
                h,
                w,
                c,
                &[0],
                &[1],
                0,
                0,
                &mut y,
                2,
                2
            ));
            err!(qk::adaptive_avg_pool(&x, h, w, c, 0, &mut y, 1, 1));
            err!(qk::adaptive_avg_pool(&x, 2, 2, 16, 0, &mut y, h, w));
            err!(a16::avg_pool16(&[0i16; 64], h, w, c, &mut [0i16; 64], 1, 1));
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
            {
                // SAFETY: the CPU features were detected just above.
                err!(unsafe {
                    ldp_core::kernels::resize::x86::resize_bilinear_avx2(
                        &x,
                        h,
                        w,
                        c,
                        &[0],
                        &[1],
                        0,
                        0,
                        &mut y,
                        2,
                        2,
                    )
                });
            }
        }
        let nq = NormQ {
            gamma: &[1; 8],
            beta: &[0; 8],
            shift: 8,
            eps_q8: 1,
            out_zero: 0,
            lut: None,
        };
        err!(qk::layer_norm_inplace(&mut y, n, &nq));
        err!(qk::layer_norm_reference(&mut y, n, &nq));
        err!(qk::layer_norm_i16(&[0; 64], n, &nq, &mut y));
        err!(qk::layer_norm_i16_reference(&[0; 64], n, &nq, &mut y));
        let (w1, b1, m1) = ([1i8; 8], [0i16; 2], [1u8; 8]);
        let seq = SeQ {
            in_zero: 0,
            fc1: conv(&w1, &b1[..0], &m1[..2]),
            fc2: conv(&w1, &b1[..0], &m1[..4]),
            gate: &[0; 256],
            mult: 1,
            shift: 1,
            out_zero: 0,
        };
        err!(qk::squeeze_excite(&mut y, 4, n, &seq, &mut [0; 64]));
        err!(qk::squeeze_excite(&mut y, n, 2, &seq, &mut [0; 64]));
        err!(qk::se_gate_from_sums(
            &seq,
            &mut [0; 4],
            n,
            &mut [0; 2],
            &mut [0; 3]
        ));
        err!(qk::se_gate_from_sums(
            &seq,
            &mut [0; 4],
            n,
            &mut [0; 3],
            &mut [0; 4]
        ));
        let rq = ResizeQ {
            in_zero: &[0],
            mult: &[1],
            shift: 0,
            out_zero: 0,
        };
        err!(sk::resize_row_i8(
            [&x, &x],
            0,
            n,
            2,
            16,
            &rq,
            0,
            0,
            &mut y[..32]
        ));
        err!(sk::resize_row_i8(
            [&x, &x],
            0,
            2,
            n,
            16,
            &rq,
            0,
            usize::MAX,
            &mut y[..32]
        ));
        err!(sk::resize_row_float::<f32, f32>(
            [&[0.0; 64], &[0.0; 64]],
            0,
            2,
            n,
            16,
            0.0,
            usize::MAX,
            &mut [0.0; 32]
        ));
    }
    err!(qk::resize_bilinear(
        &x,
        2,
        2,
        16,
        &[0; 3],
        &[1],
        0,
        0,
        &mut y,
        2,
        2
    ));
    err!(qk::resize_bilinear(
        &x,
        2,
        2,
        16,
        &[0],
        &[1; 2],
        0,
        0,
        &mut y,
        2,
        2
    ));
    err!(qk::adaptive_avg_pool(&x[..63], 2, 2, 16, 0, &mut y, 2, 2));
    let nq = NormQ {
        gamma: &[1; 8],
        beta: &[0; 7],
        shift: 8,
        eps_q8: 1,
        out_zero: 0,
        lut: None,
    };
    err!(qk::layer_norm_inplace(&mut y, 8, &nq));
    let nq = NormQ {
        gamma: &[1; 8],
        beta: &[0; 8],
        shift: 8,
        eps_q8: 1,
        out_zero: 0,
        lut: Some(&[0; 255]),
    };
    err!(qk::layer_norm_inplace(&mut y, 8, &nq));
    let nq = NormQ { lut: None, ..nq };
    err!(qk::layer_norm_i16(&[0; 64], 8, &nq, &mut y[..56]));
    err!(qk::layer_norm_i16(&[0; 60], 8, &nq, &mut y[..60]));
    err!(qk::layer_norm_inplace(&mut y[..60], 8, &nq));
}

/// The other side of the contract: small valid calls of the same kernels succeed (and, under
/// Miri — `tools/miri.sh` — run the portable kernels without undefined behaviour).
#[test]
fn small_valid_calls_succeed() {
    let vals =
        |n: usize| -> Vec<f32> { (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.25).collect() };
    let i8s = |n: usize| -> Vec<i8> {
        (0..n)
            .map(|i| ((i * 37 % 251) as i32 - 125) as i8)
            .collect()
    };
    let (ci, co, px) = (5, 6, 7);
    let (x, w, b) = (vals(px * ci), vals(co * ci), vals(co));
    let mut y = vec![0.0f32; px * co];
    pointwise::pointwise(&x, ci, &w, Some(&b), co, Some(Activation::Gelu), &mut y).unwrap();
    pointwise::portable::pointwise(&x, ci, &w, None, co, None, &mut y).unwrap();
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    let mut yh = vec![f16::ZERO; px * co];
    pointwise::pointwise(&xh, ci, &w, Some(&b), co, None, &mut yh).unwrap();
    for stride in [1, 2] {
        let s = DwShape {
            h: 5,
            w: 4,
            c: 9,
            stride,
        };
        let out = s.ho() * s.wo() * s.c;
        let (xd, wd, bd, r) = (vals(5 * 4 * 9), vals(9 * 9), vals(9), vals(out));
        let mut yd = vec![0.0f32; out];
        depthwise::depthwise3x3(s, &xd, &wd, Some(&bd), Some(&r[..]), &mut yd).unwrap();
        depthwise::portable::depthwise3x3::<f32, f32, f32, f32>(s, &xd, &wd, None, None, &mut yd)
            .unwrap();
        let (xq, wq, bq, mq) = (i8s(5 * 4 * 9), i8s(81), vec![3i16; 9], vec![200u8; 9]);
        let q = ConvQ {
            in_zero: 2,
            ..conv(&wq, &bq, &mq)
        };
        let mut yq = vec![0i8; out];
        qk::depthwise(s, &xq, &q, &mut yq).unwrap();
        let mut y16 = vec![0i16; out];
        qk::depthwise_rows_i16(s, &xq, &q, 0, s.ho(), &mut y16).unwrap();
    }
    let (xr, mut yr) = (vals(4 * 6 * 3), vec![0.0f32; 2 * 3 * 3]);
    resize::bilinear(&xr, 4, 6, 3, &mut yr, 2, 3).unwrap();
    pool::adaptive_avg_pool(&xr, 4, 6, 3, &mut yr, 2, 3).unwrap();
    let mut xs = vals(4 * 8);
    // `libm::sqrtf` is inline assembly on x86-64, which Miri cannot run.
    if !cfg!(miri) {
        norm::layer_norm_inplace(&mut xs, 8, &vals(8), &vals(8)).unwrap();
    }
    let wts = SeWeights {
        fc1_w: &vals(16),
        fc1_b: &vals(2),
        fc2_w: &vals(16),
        fc2_b: &vals(8),
    };
    se::squeeze_excite(&mut xs, 8, 2, &wts, &mut [0.0; 18]).unwrap();

    let (xq, wq, bq, mq) = (i8s(px * 20), i8s(co * 20), vec![5i16; co], vec![180u8; co]);
    let q = conv(&wq, &bq, &mq);
    let mut yq = vec![0i8; px * co];
    qk::pointwise(&xq, 20, &q, co, &mut yq).unwrap();
    let lut: Vec<i8> = (0..256i32).map(|i| (i - 128).max(0) as i8).collect();
    qk::pointwise(
        &xq,
        20,
        &ConvQ {
            lut: Some(&lut),
            ..q
        },
        co,
        &mut yq,
    )
    .unwrap();
    let mut y16 = vec![0i16; px * co];
    qk::pointwise(&xq, 20, &q, co, &mut y16).unwrap();
    let nq = NormQ {
        gamma: &[300; 6],
        beta: &[7; 6],
        shift: 20,
        eps_q8: 1,
        out_zero: -3,
        lut: None,
    };
    qk::layer_norm_inplace(&mut yq, co, &nq).unwrap();
    qk::layer_norm_i16(&y16, co, &nq, &mut yq).unwrap();
    let add = AddQ {
        a_zero: 1,
        a_mult: 1 << 20,
        b_zero: -2,
        b_mult: 3 << 19,
        shift: 21,
        out_zero: 4,
    };
    let other = i8s(px * co);
    qk::add_inplace(&mut yq, &other, &add).unwrap();
    let xf = vals(px * co);
    qk::quantize(&xf, co, &[0.05], &[3], &mut yq).unwrap();
    let mut back = vec![0.0f32; px * co];
    qk::dequantize(&yq, 3, 0.05, &mut back).unwrap();
    let xr = i8s(4 * 6 * 9);
    let mut yr = vec![0i8; 2 * 3 * 9];
    qk::resize_bilinear(&xr, 4, 6, 9, &[1], &[3000], 12, 2, &mut yr, 2, 3).unwrap();
    qk::adaptive_avg_pool(&xr, 4, 6, 9, 1, &mut yr, 2, 3).unwrap();
}
