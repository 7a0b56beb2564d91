//! The float half of the NEON self-test (perf mode on AArch64, `qemu-a53`): the NEON pointwise
//! GEMM and depthwise kernels of `ldp_core::kernels` against their plain reference kernels on
//! deterministic pseudo-random shapes — channels 1..=67 (every remainder of the 8-wide GEMM
//! tile, the 4-lane and 16-channel depthwise blocks, 1 and > 64), pixels 1..=361 (every
//! remainder of the 8-pixel tile), grids 1..=19 including 1×1, both strides — in f32 and with
//! f16 storage in the combinations the f16 models use. The int8 half is
//! `perf::kernel_selftest`, which calls `ldp_core::kernels::pointwise::neon::int8::pointwise_neon` on AArch64;
//! this file adds the int8 pointwise convs with an `i16` output (`i16_pointwise`: the
//! dispatching `ldp_core::quant::kernels::pointwise::<i16>`, i.e. the NEON kernel's `i16`
//! store, against `pointwise_reference::<i16>`, bit for bit, with random shifts 1..=62, zero
//! points, multipliers of both signs and results saturating int16).
//!
//! * Pointwise: the NEON GEMM sums with FMA (one rounding per channel instead of two), so each
//!   output must be within `1e-5 · max|y_ref|` of the reference (plus one f16 ulp of the value
//!   when the output is stored as f16: an FMA difference can move the final rounding).
//! * Depthwise: designed to match the reference bit for bit (same order, separate multiply and
//!   add), so the outputs are compared exactly.
//!
//! Every output buffer is filled with NaN before the call (an output left unwritten fails the
//! check) and the 16 elements past the output must still hold a canary afterwards (a partial
//! tile must not store past the end).

use core::ptr::addr_of_mut;

use defmt::error;
use half::f16;
use ldp_core::kernels::activation::Activation;
use ldp_core::kernels::depthwise::{self, DwShape};
use ldp_core::kernels::pointwise;
use ldp_core::quant::kernels::{self as qk, ConvQ};
use ldp_core::Elem;

/// Largest channel count of the random shapes.
const C: usize = 67;
/// Largest grid side.
const G: usize = 19;
/// `c_in` of the cases that take the GEMM's `K > KC` (= 512) path.
const BIG_K: usize = 600;
/// Elements of the activation buffers (also holds `BIG_K` channels of 9 pixels).
const NX: usize = G * G * C;
/// Elements of the weight buffer.
const NW: usize = BIG_K * 12;
/// Canary elements past each output.
const GUARD: usize = 16;
/// The canary (exact in f16: `3 · 2^9`; no output of the random data comes near it).
const CANARY: f32 = 1536.0;

/// The buffers of one storage type.
struct Bufs<T> {
    x: [T; NX],
    w: [T; NW],
    r: [T; NX],
    y: [T; NX + GUARD],
    y_ref: [T; NX + GUARD],
}

struct All {
    f: Bufs<f32>,
    h: Bufs<f16>,
    bias: [f32; BIG_K],
}

static mut BUFS: All = All {
    f: Bufs {
        x: [0.0; NX],
        w: [0.0; NW],
        r: [0.0; NX],
        y: [0.0; NX + GUARD],
        y_ref: [0.0; NX + GUARD],
    },
    h: Bufs {
        x: [f16::ZERO; NX],
        w: [f16::ZERO; NW],
        r: [f16::ZERO; NX],
        y: [f16::ZERO; NX + GUARD],
        y_ref: [f16::ZERO; NX + GUARD],
    },
    bias: [0.0; BIG_K],
};

/// `c_in` of the wide int8 → i16 pointwise cases.
const I16_BIG_K: usize = 1024;

/// Buffers of the int8 pointwise cases with an `i16` output.
struct I16Bufs {
    x: [i8; NX],
    w: [i8; I16_BIG_K * 12],
    bias: [i16; C],
    mult: [u8; C],
    y: [i16; NX + GUARD],
    y_ref: [i16; NX + GUARD],
}

static mut I16_BUFS: I16Bufs = I16Bufs {
    x: [0; NX],
    w: [0; I16_BIG_K * 12],
    bias: [0; C],
    mult: [0; C],
    y: [0; NX + GUARD],
    y_ref: [0; NX + GUARD],
};

/// The canary after the `i16` outputs.
const I16_CANARY: i16 = 0x5a5a;

/// Case counts and failures of the float self-test.
#[derive(Default)]
pub struct Counts {
    pub f32_pointwise: usize,
    pub f32_depthwise: usize,
    pub f16_pointwise: usize,
    pub f16_depthwise: usize,
    /// Int8 pointwise convs with an `i16` output.
    pub i16_pointwise: usize,
    /// The CPU has FEAT_FP16 (`ldp_core::kernels::cpu::fp16_arith`).
    pub fp16: bool,
    /// f16 pointwise convs run with FEAT_FP16 arithmetic (0 without FEAT_FP16).
    pub fp16_pointwise: usize,
    /// The largest normwise error of those against the f32-arithmetic reference.
    pub fp16_worst: f32,
    pub failures: usize,
}

/// xorshift64 (its own stream: independent of the int8 cases).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() as usize) % (hi - lo + 1)
    }
    /// Uniform in `[-1, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
    fn fill<T: Elem>(&mut self, v: &mut [T], scale: f32) {
        for e in v {
            *e = T::from_f32(self.unit() * scale);
        }
    }
}

/// NaN in the first `n` elements, the canary in the `GUARD` after them.
fn poison<T: Elem>(y: &mut [T], n: usize) {
    y[..n].fill(T::from_f32(f32::NAN));
    y[n..n + GUARD].fill(T::from_f32(CANARY));
}

fn guard_ok<T: Elem>(y: &[T], n: usize) -> bool {
    y[n..n + GUARD].iter().all(|v| v.to_f32() == CANARY)
}

/// Unit roundoff of f16 (`2^-11`) times two: one f16 ulp relative to the value.
const F16_ULP: f32 = 1.0 / 1024.0;

/// `got` within `1e-5 · max|want|` of `want` (plus one f16 ulp of the value when `Y` is f16).
fn close<Y: Elem>(got: &[Y], want: &[Y]) -> bool {
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.to_f32().abs()));
    let half = Y::DTYPE == ldp_core::DType::F16;
    got.iter().zip(want).all(|(g, w)| {
        let (g, w) = (g.to_f32(), w.to_f32());
        let tol = 1e-5 * max + if half { F16_ULP * w.abs() } else { 0.0 };
        (g - w).abs() <= tol
    })
}

fn identical<Y: Elem>(got: &[Y], want: &[Y]) -> bool {
    got.iter()
        .zip(want)
        .all(|(g, w)| g.to_f32().to_bits() == w.to_f32().to_bits())
}

#[allow(clippy::too_many_arguments)]
fn pw_case<X: Elem, W: Elem, Y: Elem>(
    r: &mut Rng,
    x: &mut [X],
    w: &mut [W],
    bias: &mut [f32],
    y: &mut [Y],
    y_ref: &mut [Y],
    pixels: usize,
    c_in: usize,
    c_out: usize,
    act: Option<Activation>,
    with_bias: bool,
) -> bool {
    let (x, w, bias) = (
        &mut x[..pixels * c_in],
        &mut w[..c_in * c_out],
        &mut bias[..c_out],
    );
    r.fill(x, 2.0);
    r.fill(w, 1.0);
    r.fill(bias, 1.0);
    let bias = with_bias.then_some(&*bias);
    let n = pixels * c_out;
    poison(y, n);
    poison(y_ref, n);
    // SAFETY: the Cortex-A53 (and every AArch64 target this firmware builds for) has NEON.
    let fast =
        unsafe { pointwise::neon::pointwise_neon(x, c_in, w, bias, c_out, act, &mut y[..n]) };
    let reference = pointwise::reference::pointwise(x, c_in, w, bias, c_out, act, &mut y_ref[..n]);
    fast.is_ok()
        && reference.is_ok()
        && close(&y[..n], &y_ref[..n])
        && guard_ok(y, n)
        && guard_ok(y_ref, n)
}

#[allow(clippy::too_many_arguments)]
fn dw_case<X: Elem, W: Elem, Y: Elem, R: Elem>(
    r: &mut Rng,
    x: &mut [X],
    w: &mut [W],
    bias: &mut [f32],
    res: &mut [R],
    y: &mut [Y],
    y_ref: &mut [Y],
    s: DwShape,
    with_bias: bool,
    with_res: bool,
) -> bool {
    let n = s.ho() * s.wo() * s.c;
    let (x, w, bias, res) = (
        &mut x[..s.h * s.w * s.c],
        &mut w[..9 * s.c],
        &mut bias[..s.c],
        &mut res[..n],
    );
    r.fill(x, 2.0);
    r.fill(w, 1.0);
    r.fill(bias, 1.0);
    r.fill(res, 2.0);
    let bias = with_bias.then_some(&*bias);
    let res = with_res.then_some(&*res);
    poison(y, n);
    poison(y_ref, n);
    // SAFETY: NEON, as above.
    let fast = unsafe { depthwise::neon::depthwise3x3_neon(s, x, w, bias, res, &mut y[..n]) };
    let reference = depthwise::reference::depthwise3x3(s, x, w, bias, res, &mut y_ref[..n]);
    fast.is_ok()
        && reference.is_ok()
        && identical(&y[..n], &y_ref[..n])
        && guard_ok(y, n)
        && guard_ok(y_ref, n)
}

/// Runs the float cases.
pub fn run() -> Counts {
    // SAFETY: the only reference to `BUFS`, taken once per run (run once per boot).
    let b: &mut All = unsafe { &mut *addr_of_mut!(BUFS) };
    let mut r = Rng(0x0A53_F10A_7C0F_FEE5);
    let mut k = Counts::default();

    // Pointwise: (pixels, c_in, c_out), 5 storage combinations in turn.
    for case in 0..240usize {
        let (pixels, c_in, c_out) = match case {
            // The K > KC path (f32 partial sums through y; f16 outputs take the tiled kernel).
            0..=4 => (r.range(1, 9), BIG_K, r.range(1, 12)),
            5..=9 => (1, r.range(1, C), r.range(1, C)),
            _ if case % 6 == 0 => (r.range(1, 17), r.range(1, C), r.range(1, C)),
            _ => (r.range(1, G) * r.range(1, G), r.range(1, C), r.range(1, C)),
        };
        let act = match r.next() % 6 {
            0 => Some(Activation::Gelu),
            1 => Some(Activation::Hardswish),
            2 => Some(Activation::Hardsigmoid),
            3 => Some(Activation::Relu),
            _ => None,
        };
        let with_bias = !r.next().is_multiple_of(4);
        let bias = &mut b.bias[..];
        let (f, h) = (&mut b.f, &mut b.h);
        let combo = case % 5;
        let ok = match combo {
            0 => pw_case(
                &mut r,
                &mut f.x,
                &mut f.w,
                bias,
                &mut f.y,
                &mut f.y_ref,
                pixels,
                c_in,
                c_out,
                act,
                with_bias,
            ),
            1 => pw_case(
                &mut r,
                &mut f.x,
                &mut h.w,
                bias,
                &mut f.y,
                &mut f.y_ref,
                pixels,
                c_in,
                c_out,
                act,
                with_bias,
            ),
            2 => pw_case(
                &mut r,
                &mut f.x,
                &mut h.w,
                bias,
                &mut h.y,
                &mut h.y_ref,
                pixels,
                c_in,
                c_out,
                act,
                with_bias,
            ),
            3 => pw_case(
                &mut r,
                &mut h.x,
                &mut h.w,
                bias,
                &mut h.y,
                &mut h.y_ref,
                pixels,
                c_in,
                c_out,
                act,
                with_bias,
            ),
            _ => pw_case(
                &mut r,
                &mut h.x,
                &mut h.w,
                bias,
                &mut f.y,
                &mut f.y_ref,
                pixels,
                c_in,
                c_out,
                act,
                with_bias,
            ),
        };
        if combo == 0 {
            k.f32_pointwise += 1;
        } else {
            k.f16_pointwise += 1;
        }
        if !ok {
            k.failures += 1;
            error!(
                "self-test: NEON pointwise combo {=usize} ({=str}), {=usize} px, {=usize} -> {=usize}: differs from the reference",
                combo,
                ["f32", "f32 x, f16 w", "f32 x, f16 w, f16 y", "f16", "f16 x/w, f32 y"][combo],
                pixels,
                c_in,
                c_out
            );
        }
    }

    // Depthwise: 3 storage combinations in turn.
    for case in 0..240usize {
        let stride = 1 + case % 2;
        let (h, w, c) = match case {
            0..=7 => (1, 1, r.range(1, C)),
            _ if case % 7 == 0 => (r.range(1, 3), r.range(1, 3), r.range(1, C)),
            _ => (r.range(1, G), r.range(1, G), r.range(1, C)),
        };
        let s = DwShape { h, w, c, stride };
        let with_bias = !r.next().is_multiple_of(4);
        let with_res = r.next().is_multiple_of(2);
        let bias = &mut b.bias[..];
        let (f, hb) = (&mut b.f, &mut b.h);
        let combo = (case / 2) % 3;
        let ok = match combo {
            0 => dw_case(
                &mut r,
                &mut f.x,
                &mut f.w,
                bias,
                &mut f.r,
                &mut f.y,
                &mut f.y_ref,
                s,
                with_bias,
                with_res,
            ),
            1 => dw_case(
                &mut r,
                &mut hb.x,
                &mut hb.w,
                bias,
                &mut hb.r,
                &mut hb.y,
                &mut hb.y_ref,
                s,
                with_bias,
                with_res,
            ),
            _ => dw_case(
                &mut r,
                &mut hb.x,
                &mut hb.w,
                bias,
                &mut f.r,
                &mut f.y,
                &mut f.y_ref,
                s,
                with_bias,
                with_res,
            ),
        };
        if combo == 0 {
            k.f32_depthwise += 1;
        } else {
            k.f16_depthwise += 1;
        }
        if !ok {
            k.failures += 1;
            error!(
                "self-test: NEON depthwise combo {=usize} ({=str}), {=usize}x{=usize}x{=usize} stride {=usize}: differs from the reference",
                combo,
                ["f32", "f16", "f16 x/w, f32 y/residual"][combo],
                h,
                w,
                c,
                stride
            );
        }
    }

    i16_pointwise(&mut r, &mut k);
    fp16_pointwise(b, &mut r, &mut k);
    k
}

/// Bound of the FEAT_FP16 pointwise kernel: the normwise error of a dot product,
/// `‖got − want‖₂ / ‖Σ|x||w| + |b|‖₂` over a conv's outputs, against the reference (f32
/// arithmetic on the same f16 values). f16 sums of 16 products have errors of a few f16
/// roundings (2^-11) of their terms' magnitudes, whatever the cancellation in the output; the
/// whole f16 models are checked against PyTorch at 5e-3 on the same board (RESULT lines).
const FP16_BOUND: f32 = 2e-3;

/// `‖got − want‖₂ / ‖mag‖₂`.
fn normwise<Y: Elem>(got: &[Y], want: &[Y], mag: &[f32]) -> f32 {
    let (mut num, mut den) = (0f64, 0f64);
    for ((g, w), m) in got.iter().zip(want).zip(mag) {
        let (g, w) = (g.to_f32() as f64, w.to_f32() as f64);
        num += (g - w) * (g - w);
        den += (*m as f64) * (*m as f64);
    }
    libm::sqrt(num / den.max(1e-30)) as f32
}

/// One FEAT_FP16 pointwise conv against the reference: (passed, normwise error against `mag`).
#[allow(clippy::too_many_arguments)]
fn fp16_run<Y: Elem>(
    x: &[f16],
    w: &[f16],
    bias: Option<&[f32]>,
    act: Option<Activation>,
    c_in: usize,
    c_out: usize,
    y: &mut [Y],
    y_ref: &mut [Y],
    mag: &[f32],
) -> (bool, f32) {
    let n = mag.len();
    poison(y, n);
    poison(y_ref, n);
    let fast = pointwise::neon::pointwise_fp16_checked(x, c_in, w, bias, c_out, act, &mut y[..n]);
    let rf = pointwise::reference::pointwise(x, c_in, w, bias, c_out, act, &mut y_ref[..n]);
    let e = normwise(&y[..n], &y_ref[..n], mag);
    (
        matches!(fast, Ok(true)) && rf.is_ok() && guard_ok(y, n) && e <= FP16_BOUND,
        e,
    )
}

/// f16 pointwise convs with FEAT_FP16 arithmetic (when the CPU has it): within [`FP16_BOUND`]
/// of the reference, on `c_in` 1..=600 (every remainder of the 8-channel step and the
/// 16-channel f16 chain), f16 and f32 outputs, every activation.
fn fp16_pointwise(b: &mut All, r: &mut Rng, k: &mut Counts) {
    k.fp16 = ldp_core::kernels::cpu::fp16_arith();
    if !k.fp16 {
        return;
    }
    for case in 0..120usize {
        let (pixels, c_in, c_out) = match case {
            0..=9 => (r.range(1, 9), r.range(BIG_K - 40, BIG_K), r.range(1, 12)),
            _ if case % 5 == 0 => (1, r.range(1, C), r.range(1, C)),
            _ => (r.range(1, G) * r.range(1, G), r.range(1, C), r.range(1, C)),
        };
        let act = match r.next() % 6 {
            0 => Some(Activation::Gelu),
            1 => Some(Activation::Hardswish),
            2 => Some(Activation::Relu),
            _ => None,
        };
        let with_bias = !r.next().is_multiple_of(4);
        let (f, h) = (&mut b.f, &mut b.h);
        let (x, w, bias) = (
            &mut h.x[..pixels * c_in],
            &mut h.w[..c_in * c_out],
            &mut b.bias[..c_out],
        );
        r.fill(x, 2.0);
        r.fill(w, 1.0);
        r.fill(bias, 1.0);
        let n = pixels * c_out;
        // Σ|x||w| + |b| per output (f32 arithmetic on the f16 values), in `f.r`.
        for (a, v) in f.x.iter_mut().zip(x.iter()) {
            *a = v.to_f32().abs();
        }
        for (a, v) in f.w.iter_mut().zip(w.iter()) {
            *a = v.to_f32().abs();
        }
        let babs: [f32; BIG_K] = core::array::from_fn(|i| bias[i.min(c_out - 1)].abs());
        let mag_ok = pointwise::reference::pointwise(
            &f.x[..pixels * c_in],
            c_in,
            &f.w[..c_in * c_out],
            with_bias.then_some(&babs[..c_out]),
            c_out,
            None,
            &mut f.r[..n],
        )
        .is_ok();
        let bias = with_bias.then_some(&*bias);
        let f16_out = case % 2 == 0;
        let (ok, err) = if f16_out {
            fp16_run(
                x,
                w,
                bias,
                act,
                c_in,
                c_out,
                &mut h.y,
                &mut h.y_ref,
                &f.r[..n],
            )
        } else {
            fp16_run(
                x,
                w,
                bias,
                act,
                c_in,
                c_out,
                &mut f.y,
                &mut f.y_ref,
                &f.r[..n],
            )
        };
        let ok = ok && mag_ok;
        k.fp16_pointwise += 1;
        if err > k.fp16_worst || err.is_nan() {
            k.fp16_worst = err;
        }
        if !ok {
            k.failures += 1;
            error!(
                "self-test: FEAT_FP16 pointwise ({=str} out), {=usize} px, {=usize} -> {=usize}: normwise error {=f32} against the reference (bound {=f32})",
                if f16_out { "f16" } else { "f32" },
                pixels,
                c_in,
                c_out,
                err,
                FP16_BOUND
            );
        }
    }
}

/// Int8 pointwise convs with an `i16` output: the dispatching kernel (NEON) against the
/// reference, bit for bit, on shapes with channels 1..=67 (every remainder of the 4-output
/// tile and the 16-channel block), pixels 1..=361 and `c_in` 1024.
fn i16_pointwise(r: &mut Rng, k: &mut Counts) {
    // SAFETY: the only reference to `I16_BUFS`, taken once per run (run once per boot).
    let b: &mut I16Bufs = unsafe { &mut *addr_of_mut!(I16_BUFS) };
    for case in 0..160usize {
        let (pixels, c_in, c_out) = match case {
            0..=5 => (r.range(1, 9), I16_BIG_K, r.range(1, 12)),
            6..=11 => (1, r.range(1, C), r.range(1, C)),
            _ if case % 4 == 0 => (r.range(1, 17), r.range(1, C), r.range(1, C)),
            _ => (r.range(1, G) * r.range(1, G), r.range(1, C), r.range(1, C)),
        };
        let shift = match r.next() % 4 {
            0 => r.range(1, 62) as i32,
            1 => r.range(1, 15) as i32,
            _ => r.range(8, 24) as i32,
        };
        let out_zero = match r.next() % 4 {
            0 => 0,
            1 => r.range(0, 80_000) as i32 - 40_000,
            _ => r.range(0, 600) as i32 - 300,
        };
        let (x, w) = (&mut b.x[..pixels * c_in], &mut b.w[..c_in * c_out]);
        for v in x.iter_mut().chain(w.iter_mut()) {
            *v = r.next() as u8 as i8;
        }
        if case % 8 == 1 {
            // Extreme inputs: int16 saturation at both ends.
            x[..c_in].fill(-128);
            w[..c_in].fill(-128);
        }
        for o in 0..c_out {
            b.bias[o] = r.next() as i16;
            b.mult[o] = r.next() as u8;
        }
        let q = ConvQ {
            weight: w,
            bias: &b.bias[..c_out],
            bias_shift: shift as u32 % 16,
            mult: &b.mult[..c_out],
            shift,
            in_zero: 0,
            out_zero,
            lut: None,
        };
        let n = pixels * c_out;
        b.y[..n].fill(0);
        b.y_ref[..n].fill(1);
        b.y[n..n + GUARD].fill(I16_CANARY);
        b.y_ref[n..n + GUARD].fill(I16_CANARY);
        let fast = qk::pointwise::<i16>(x, c_in, &q, c_out, &mut b.y[..n]);
        let reference = qk::pointwise_reference::<i16>(x, c_in, &q, c_out, &mut b.y_ref[..n]);
        let ok = fast.is_ok()
            && reference.is_ok()
            && b.y[..n] == b.y_ref[..n]
            && b.y[n..n + GUARD]
                .iter()
                .chain(&b.y_ref[n..n + GUARD])
                .all(|&v| v == I16_CANARY);
        k.i16_pointwise += 1;
        if !ok {
            k.failures += 1;
            error!(
                "self-test: int8 -> i16 pointwise {=usize} px, {=usize} -> {=usize}, shift {=i32}, zero {=i32}: differs from the reference",
                pixels, c_in, c_out, shift, out_zero
            );
        }
    }
}
