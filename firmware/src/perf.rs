//! Perf mode (cargo feature `perf`; `cargo xtask perf` builds and runs it): a self-test of the
//! int8 conv kernels against the reference kernels on random shapes, then every embedded int8
//! model run layer by layer with an instruction marker after each layer.
//!
//! Output (all `println!`, parsed by `xtask/src/perf.rs`):
//! * `SELFTEST board=… kernels=arm-mve|arm-dsp|portable pointwise=N depthwise=N norm_add=N
//!   i16_pointwise=N ln16=N resize=N ln16_mve=N add_mve=N failures=N` (`i16_pointwise`: int8
//!   pointwise convs with an `i16` output; `ln16`: LayerNorms of `i16` inputs, with and without
//!   the interpolated table; `resize`: int8 bilinear resizes; `ln16_mve`, `add_mve`: cases the
//!   Helium LayerNorm and ADD took when called directly, 0 without Helium); on AArch64
//!   (`qemu-a53`, `qemu-a76`) `SELFTEST board=… kernels=neon pointwise=N depthwise=N
//!   norm_add=N f32_pointwise=N f32_depthwise=N f16_pointwise=N f16_depthwise=N
//!   i16_pointwise=N … sdot_pointwise=N ln16=N resize=N failures=N`: the int8 pointwise cases
//!   call the NEON kernel (`kernels::pointwise::neon::int8::pointwise_neon`) directly, the
//!   LayerNorm, ADD and resize cases the dispatching kernels (the NEON ones), and
//!   `src/neon_selftest.rs` adds the f32/f16 NEON pointwise and depthwise kernels (`f16_*`:
//!   cases with f16 storage) and the int8 pointwise convs with an `i16` output
//!   (`i16_pointwise`). `failures` counts every case of the line.
//! * per int8 model: `PERFMODEL board=… arch=… dtype=int8 marks=K` (the model executes `K`
//!   markers: one before the forward pass, one after each layer, one after the return), then one
//!   `PERFSEG board=… arch=… index=i layer=<name> kind=<kind> macs=<n>` per segment between two
//!   consecutive markers (the last one, `layer=return`, is the return from the forward pass), then
//!   the usual `RESULT` line (the output compared bit for bit with the host's int8 output).
//!
//! The input is quantized before the first marker and the output dequantized after the last: the
//! segments cover exactly the integer forward pass (`ldp_core::quant::forward_i8_traced`).

use core::ptr::addr_of_mut;

use defmt::{error, info, println};
use ldp_core::kernels::depthwise::DwShape;
use ldp_core::quant::kernels::{add_inplace, layer_norm_inplace, layer_norm_reference, AddQ};
use ldp_core::quant::kernels::{depthwise, depthwise_reference, pointwise_reference};
use ldp_core::quant::kernels::{ConvQ, NormQ};
use ldp_core::{Model, ModelConfig};

use crate::board::{self, Board as _, Current};
use crate::check;
use crate::models::{self, Embedded, MODELS};
use crate::stack;

/// Largest channel count of the self-test's random shapes.
const ST_C: usize = 67;
/// Largest grid side of the self-test's random shapes.
const ST_G: usize = 19;
/// Bytes of the self-test's activation buffers.
const ST_X: usize = ST_G * ST_G * ST_C;
/// Bytes of the self-test's weight buffer.
const ST_W: usize = ST_C * ST_C;
/// Canary bytes past each output (a partial tile must not store past the end).
const ST_GUARD: usize = 16;
/// The canary pattern.
const CANARY: i8 = 0x5a;

struct SelfTestBufs {
    x: [i8; ST_X],
    y: [i8; ST_X + ST_GUARD],
    y_ref: [i8; ST_X + ST_GUARD],
    w: [i8; ST_W],
    bias: [i16; 256],
    mult: [u8; 256],
    lut: [i8; 256],
    gamma: [i16; 256],
    beta: [i16; 256],
}

static mut ST: SelfTestBufs = SelfTestBufs {
    x: [0; ST_X],
    y: [0; ST_X + ST_GUARD],
    y_ref: [0; ST_X + ST_GUARD],
    w: [0; ST_W],
    bias: [0; 256],
    mult: [0; 256],
    lut: [0; 256],
    gamma: [0; 256],
    beta: [0; 256],
};

/// Values of the `i16` buffers: outputs of the int8 → `i16` pointwise cases on Cortex-M (on
/// AArch64 they are in `neon_selftest`), inputs and parameters of the `i16` LayerNorm cases.
const ST_Y16: usize = 4096;

/// `(y, y_ref)` of the `i16` cases.
static mut ST_Y16_BUFS: ([i16; ST_Y16 + ST_GUARD], [i16; ST_Y16 + ST_GUARD]) =
    ([0; ST_Y16 + ST_GUARD], [0; ST_Y16 + ST_GUARD]);

/// xorshift64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next() % (hi - lo + 1) as u32) as i32
    }
    fn fill(&mut self, v: &mut [i8]) {
        for b in v {
            *b = self.next() as u8 as i8;
        }
    }
}

/// Random conv parameters for `c_out` output channels in `b`; returns `(shift, in_zero,
/// out_zero, lut?)`. Shifts cover the three requantization paths of the DSP kernels (below 9,
/// 9..=32, 33..=62), mostly realistic ones.
fn random_params(r: &mut Rng, b: &mut SelfTestBufs, c_out: usize) -> (i32, i32, i32, bool) {
    for o in 0..c_out {
        b.bias[o] = r.range(-32768, 32767) as i16;
        b.mult[o] = r.next() as u8;
    }
    r.fill(&mut b.lut);
    let shift = match r.next() % 8 {
        0 => r.range(1, 62),
        1 => r.range(33, 62),
        _ => r.range(14, 30),
    };
    (
        shift,
        r.range(-128, 127),
        r.range(-128, 127),
        r.next().is_multiple_of(4),
    )
}

/// The fast int8 pointwise kernel under test: on AArch64 the NEON kernel itself, elsewhere the
/// dispatching kernel (the DSP kernel where this build has one).
fn fast_pointwise(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), ldp_core::Error> {
    // SAFETY: every AArch64 target this firmware builds for (Cortex-A53, -A72) has NEON.
    #[cfg(target_arch = "aarch64")]
    let r =
        unsafe { ldp_core::kernels::pointwise::neon::int8::pointwise_neon(x, c_in, q, c_out, y) };
    #[cfg(not(target_arch = "aarch64"))]
    let r = ldp_core::quant::kernels::pointwise(x, c_in, q, c_out, y);
    r
}

/// Prepares the outputs for `n` bytes: different fillers in the two (an output the kernel
/// leaves unwritten is very likely to differ) and the canary after them.
fn poison(y: &mut [i8], y_ref: &mut [i8], n: usize) {
    y[..n].fill(0);
    y_ref[..n].fill(1);
    y[n..n + ST_GUARD].fill(CANARY);
    y_ref[n..n + ST_GUARD].fill(CANARY);
}

/// Whether both outputs of `n` bytes are equal and their canaries intact.
fn same(y: &[i8], y_ref: &[i8], n: usize) -> bool {
    y[..n] == y_ref[..n]
        && y[n..n + ST_GUARD]
            .iter()
            .chain(&y_ref[n..n + ST_GUARD])
            .all(|&v| v == CANARY)
}

/// Compares the fast int8 kernels (the DSP kernels where this build has them, the NEON
/// pointwise kernel on AArch64) with the reference kernels, bit for bit, on random shapes: odd
/// channel counts 1..=67, grids 1..=19 (and 1×1), both strides, wide and many-channel special
/// cases. On AArch64 it then runs the float NEON cases of `neon_selftest`.
fn kernel_selftest() -> bool {
    // SAFETY: the only reference to `ST`, taken once.
    let b: &mut SelfTestBufs = unsafe { &mut *addr_of_mut!(ST) };
    let mut r = Rng(0x5DEE_CE66_D1CE_4E5B);
    let (mut n_pw, mut n_dw, mut failures) = (0usize, 0usize, 0usize);
    #[cfg(target_arch = "aarch64")]
    let mut n_sdot = 0usize;

    for case in 0..160usize {
        let (c_in, c_out, pixels) = match case {
            0 => (1024, 4, 5),
            1 => (1000, 3, 4),
            2 => (16, 16, 1),
            // Whole 16-channel blocks (the MVE kernel's pixel-pair loop), odd pixel counts
            // and every c_out remainder of its 3-output tile.
            3..=20 => (
                16 * r.range(1, 4) as usize,
                r.range(1, ST_C as i32) as usize,
                r.range(2, 61) as usize,
            ),
            _ => {
                let px = if case % 5 == 0 {
                    1
                } else {
                    (r.range(1, ST_G as i32) * r.range(1, ST_G as i32)) as usize
                };
                (
                    r.range(1, ST_C as i32) as usize,
                    r.range(1, ST_C as i32) as usize,
                    px,
                )
            }
        };
        let (shift, _, out_zero, use_lut) = random_params(&mut r, b, c_out);
        r.fill(&mut b.x[..pixels * c_in]);
        r.fill(&mut b.w[..c_in * c_out]);
        let q = ConvQ {
            weight: &b.w[..c_in * c_out],
            bias: &b.bias[..c_out],
            bias_shift: shift as u32 % 16,
            mult: &b.mult[..c_out],
            shift,
            in_zero: 0,
            out_zero,
            lut: use_lut.then_some(&b.lut[..]),
        };
        let n = pixels * c_out;
        let x = &b.x[..pixels * c_in];
        poison(&mut b.y, &mut b.y_ref, n);
        let ok = fast_pointwise(x, c_in, &q, c_out, &mut b.y[..n]).is_ok()
            && pointwise_reference(x, c_in, &q, c_out, &mut b.y_ref[..n]).is_ok()
            && same(&b.y, &b.y_ref, n);
        if !ok {
            failures += 1;
            error!(
                "self-test: pointwise {=usize} px, {=usize} -> {=usize}, shift {=i32}: differs from the reference",
                pixels, c_in, c_out, shift
            );
        }
        n_pw += 1;
        // AArch64 with FEAT_DotProd: the SDOT kernel itself against the same reference output.
        #[cfg(target_arch = "aarch64")]
        if ldp_core::kernels::cpu::dotprod() {
            b.y[..n].fill(0);
            let ok = ldp_core::kernels::pointwise::neon::sdot::pointwise_sdot(
                x,
                c_in,
                &q,
                c_out,
                &mut b.y[..n],
            ) == Ok(true)
                && same(&b.y, &b.y_ref, n);
            if !ok {
                failures += 1;
                error!(
                    "self-test: SDOT pointwise {=usize} px, {=usize} -> {=usize}, shift {=i32}: differs from the reference",
                    pixels, c_in, c_out, shift
                );
            }
            n_sdot += 1;
        }
    }

    // Widths of the channel-major Helium depthwise cases (240..): every remainder of the 8-pixel
    // groups in both strides, up to its widest map (80).
    const CM_W: [usize; 20] = [
        1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 47, 63, 64, 65, 80,
    ];
    // The cases from 240 draw from their own generator: the later self-tests see the same
    // numbers as before they were added.
    let mut r_cm = Rng(0x0C4A_77E1_5EED_D00D);
    for case in 0..280usize {
        let r = if case < 240 { &mut r } else { &mut r_cm };
        let stride = 1 + case % 2;
        let (h, w, c) = match case {
            // The channel-major Helium kernel (multiples of 8 channels, no table, wide maps).
            240.. => {
                let w = CM_W[(case / 2) % CM_W.len()];
                let c = 8 * r.range(1, 8) as usize;
                let hmax = (ST_X / (w * c)).min(ST_G);
                (r.range(1, hmax as i32) as usize, w, c)
            }
            0 | 1 => (5, 7, 200),
            2 | 3 => (3, 4, 129),
            // Multiples of 8 channels (the Helium depthwise kernel), interior pixels present.
            4..=19 => (
                r.range(3, ST_G as i32) as usize,
                r.range(3, ST_G as i32) as usize,
                8 * r.range(1, 8) as usize,
            ),
            _ if case % 7 == 0 => (1, 1, r.range(1, ST_C as i32) as usize),
            _ => (
                r.range(1, ST_G as i32) as usize,
                r.range(1, ST_G as i32) as usize,
                r.range(1, ST_C as i32) as usize,
            ),
        };
        let s = DwShape { h, w, c, stride };
        let (shift, in_zero, out_zero, use_lut) = random_params(r, b, c);
        let use_lut = use_lut && case < 240;
        r.fill(&mut b.x[..h * w * c]);
        r.fill(&mut b.w[..9 * c]);
        let q = ConvQ {
            weight: &b.w[..9 * c],
            bias: &b.bias[..c],
            bias_shift: shift as u32 % 16,
            mult: &b.mult[..c],
            shift,
            in_zero,
            out_zero,
            lut: use_lut.then_some(&b.lut[..]),
        };
        let n = s.ho() * s.wo() * c;
        let x = &b.x[..h * w * c];
        poison(&mut b.y, &mut b.y_ref, n);
        let ok = depthwise(s, x, &q, &mut b.y[..n]).is_ok()
            && depthwise_reference(s, x, &q, &mut b.y_ref[..n]).is_ok()
            && same(&b.y, &b.y_ref, n);
        if !ok {
            failures += 1;
            error!(
                "self-test: depthwise {=usize}x{=usize}x{=usize} stride {=usize}, shift {=i32}: differs from the reference",
                h, w, c, stride, shift
            );
        }
        n_dw += 1;
    }
    // LayerNorm and ADD (their inner loops are `asm!` too): against the reference formulas,
    // covering both ranges of both shifts, with and without the table.
    let mut n_other = 0usize;
    for case in 0..80usize {
        let c = r.range(1, 200) as usize;
        let n = c * r.range(1, 8) as usize;
        r.fill(&mut b.x[..n]);
        if case % 5 == 0 {
            b.x[..c].fill(r.next() as u8 as i8);
        }
        for i in 0..c {
            b.gamma[i] = r.next() as i16;
            b.beta[i] = r.next() as i16;
        }
        let q = NormQ {
            gamma: &b.gamma[..c],
            beta: &b.beta[..c],
            shift: if case % 2 == 0 {
                r.range(14, 31)
            } else {
                r.range(32, 50)
            },
            eps_q8: if case % 3 == 0 {
                0
            } else {
                r.range(0, 1 << 20)
            },
            out_zero: r.range(-128, 127),
            lut: (case % 4 < 2).then_some(&b.lut[..]),
        };
        b.y[..n].copy_from_slice(&b.x[..n]);
        b.y_ref[..n].copy_from_slice(&b.x[..n]);
        let ok = layer_norm_inplace(&mut b.y[..n], c, &q).is_ok()
            && layer_norm_reference(&mut b.y_ref[..n], c, &q).is_ok()
            && b.y[..n] == b.y_ref[..n];
        if !ok {
            failures += 1;
            error!(
                "self-test: layer norm c {=usize}, shift {=i32}: differs from the reference",
                c, q.shift
            );
        }
        n_other += 1;
    }
    for case in 0..80usize {
        let n = r.range(1, 3000) as usize;
        r.fill(&mut b.x[..n]);
        r.fill(&mut b.y_ref[..n]);
        let q = if case % 4 == 3 && cfg!(target_arch = "aarch64") {
            // Extreme parameters: multipliers of both signs and any size, every shift (small
            // shifts overflow the `i32` truncation of the reference). AArch64 only for now:
            // not yet run against the Cortex-M kernels.
            AddQ {
                a_zero: r.range(-128, 127),
                a_mult: r.next() as i32 ^ (r.next() << 16) as i32,
                b_zero: r.range(-128, 127),
                b_mult: r.next() as i32 ^ (r.next() << 16) as i32,
                shift: r.range(-2, 64),
                out_zero: r.range(-200, 200),
            }
        } else {
            AddQ {
                a_zero: r.range(-128, 127),
                a_mult: r.range(0, 1 << 30),
                b_zero: r.range(-128, 127),
                b_mult: r.range(0, 1 << 30),
                shift: if case % 2 == 0 {
                    r.range(20, 31)
                } else {
                    r.range(32, 45)
                },
                out_zero: r.range(-128, 127),
            }
        };
        b.y[..n].copy_from_slice(&b.x[..n]);
        let ok = add_inplace(&mut b.y[..n], &b.y_ref[..n], &q).is_ok()
            && b.y[..n]
                .iter()
                .zip(&b.x[..n])
                .zip(&b.y_ref[..n])
                .all(|((&got, &a), &bb)| got == q.add(a, bb));
        if !ok {
            failures += 1;
            error!(
                "self-test: add of {=usize}, shift {=i32}: differs from the reference",
                n, q.shift
            );
        }
        n_other += 1;
    }
    let (n_resize, fr) = resize_selftest(&mut r, b);
    failures += fr;
    // SAFETY: the only reference to `ST_Y16_BUFS`, taken once (the self-test runs once).
    let (y16, y16_ref) = unsafe { &mut *addr_of_mut!(ST_Y16_BUFS) };
    #[cfg(not(target_arch = "aarch64"))]
    {
        let (n_pw16, f16) = i16_pointwise_selftest(&mut r, b, y16, y16_ref);
        failures += f16;
        let (n_a16, fa) = a16_pointwise_selftest(&mut r, b, y16, y16_ref);
        failures += fa;
        let (n_ln16, fl) = ln16_selftest(&mut r, b, y16, y16_ref);
        failures += fl;
        let m = mve_selftest(&mut r, b, y16, y16_ref);
        failures += m.failures;
        println!(
            "SELFTEST board={=str} kernels={=str} pointwise={=usize} depthwise={=usize} norm_add={=usize} i16_pointwise={=usize} a16_pointwise={=usize} ln16={=usize} resize={=usize} ln16_mve={=usize} add_mve={=usize} failures={=usize}",
            models::BOARD,
            kernels_name(),
            n_pw,
            n_dw,
            n_other,
            n_pw16,
            n_a16,
            n_ln16,
            n_resize,
            m.ln16,
            m.add,
            failures
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        let (n_ln16, fl) = ln16_selftest(&mut r, b, y16, y16_ref);
        failures += fl;
        let (n_a16, fa) = a16_pointwise_selftest(&mut r, b, y16, y16_ref);
        failures += fa;
        let f = crate::neon_selftest::run();
        failures += f.failures;
        println!(
            "SELFTEST board={=str} kernels={=str} pointwise={=usize} depthwise={=usize} norm_add={=usize} f32_pointwise={=usize} f32_depthwise={=usize} f16_pointwise={=usize} f16_depthwise={=usize} i16_pointwise={=usize} a16_pointwise={=usize} fp16_arith={=bool} fp16_pointwise={=usize} fp16_worst_normwise={=f32} dotprod={=bool} sdot_pointwise={=usize} ln16={=usize} resize={=usize} failures={=usize}",
            models::BOARD,
            kernels_name(),
            n_pw,
            n_dw,
            n_other,
            f.f32_pointwise,
            f.f32_depthwise,
            f.f16_pointwise,
            f.f16_depthwise,
            f.i16_pointwise,
            n_a16,
            f.fp16,
            f.fp16_pointwise,
            f.fp16_worst,
            ldp_core::kernels::cpu::dotprod(),
            n_sdot,
            n_ln16,
            n_resize,
            failures
        );
    }
    failures == 0
}

/// 16-bit-activation pointwise convs (`quant::a16::pointwise16`, the dispatching kernel: the
/// DSP or NEON kernel where this build has one) against `pointwise16_reference`, bit for bit:
/// `c_in` 1..=67 and 1000, `c_out` 1..=67, odd and single pixels, inputs up to the 16-bit
/// path's saturation for that `c_in` (and its extremes), shifts 1..=62. Returns `(cases,
/// failures)`.
fn a16_pointwise_selftest(
    r: &mut Rng,
    b: &mut SelfTestBufs,
    y16: &mut [i16],
    y_ref: &mut [i16],
) -> (usize, usize) {
    use ldp_core::quant::a16::{pointwise16, pointwise16_reference, MAX16, PRODUCT_BUDGET};
    const HALF: usize = ST_Y16 / 2;
    let (x, y) = y16.split_at_mut(HALF);
    let (mut cases, mut failures) = (0usize, 0usize);
    for case in 0..120usize {
        let (c_in, c_out) = match case {
            0 => (1000, 3),
            1 => (1000, 2),
            2..=20 => (
                16 * r.range(1, 4) as usize,
                r.range(1, ST_C as i32) as usize,
            ),
            _ => (
                r.range(1, ST_C as i32) as usize,
                r.range(1, ST_C as i32) as usize,
            ),
        };
        let max_px = (HALF / c_in.max(c_out)).clamp(1, 61) as i32;
        let pixels = if case % 5 == 0 {
            1
        } else {
            r.range(1, max_px) as usize
        };
        let shift = match r.next() % 4 {
            0 => r.range(1, 62),
            1 => r.range(1, 15),
            _ => r.range(8, 24),
        };
        for o in 0..c_out {
            b.bias[o] = r.next() as i16;
            b.mult[o] = r.next() as u8;
        }
        let q_in = (PRODUCT_BUDGET / (127 * c_in as i64)).min(MAX16 as i64) as i32;
        for v in x[..pixels * c_in].iter_mut() {
            *v = r.range(-q_in, q_in) as i16;
        }
        if case % 8 == 1 {
            x[..c_in].fill(q_in as i16);
        }
        r.fill(&mut b.w[..c_in * c_out]);
        let q = ConvQ {
            weight: &b.w[..c_in * c_out],
            bias: &b.bias[..c_out],
            bias_shift: shift as u32 % 15,
            mult: &b.mult[..c_out],
            shift,
            in_zero: 0,
            out_zero: 0,
            lut: None,
        };
        let n = pixels * c_out;
        let x = &x[..pixels * c_in];
        y[..n].fill(0);
        y_ref[..n].fill(1);
        y[n..n + ST_GUARD].fill(0x5a5a);
        y_ref[n..n + ST_GUARD].fill(0x5a5a);
        let ok = pointwise16(x, c_in, &q, c_out, &mut y[..n]).is_ok()
            && pointwise16_reference(x, c_in, &q, c_out, &mut y_ref[..n]).is_ok()
            && y[..n] == y_ref[..n]
            && y[n..n + ST_GUARD]
                .iter()
                .chain(&y_ref[n..n + ST_GUARD])
                .all(|&v| v == 0x5a5a);
        if !ok {
            failures += 1;
            error!(
                "self-test: i16 -> i16 pointwise {=usize} px, {=usize} -> {=usize}, shift {=i32}: differs from the reference",
                pixels, c_in, c_out, shift
            );
        }
        cases += 1;
    }
    (cases, failures)
}

/// Int8 pointwise convs with an `i16` output (the dispatching kernel: the DSP kernel where this
/// build has one) against the reference, bit for bit: channels 1..=67, `c_in` 1000/1024, odd
/// and single pixels, shifts 1..=62, multipliers of both signs, results saturating int16.
/// Returns `(cases, failures)`.
#[cfg(not(target_arch = "aarch64"))]
fn i16_pointwise_selftest(
    r: &mut Rng,
    b: &mut SelfTestBufs,
    y: &mut [i16],
    y_ref: &mut [i16],
) -> (usize, usize) {
    use ldp_core::quant::kernels::pointwise;
    let (mut cases, mut failures) = (0usize, 0usize);
    for case in 0..120usize {
        let (c_in, c_out, pixels) = match case {
            0 => (1024, 4, 3),
            1 => (1000, 3, 4),
            2 => (ST_C, ST_C, 61),
            3..=14 => (
                16 * r.range(1, 4) as usize,
                r.range(1, ST_C as i32) as usize,
                r.range(2, 61) as usize,
            ),
            _ => {
                let c_out = r.range(1, ST_C as i32) as usize;
                let max_px = (ST_Y16 / c_out).min(ST_G * ST_G) as i32;
                let px = if case % 5 == 0 {
                    1
                } else {
                    r.range(1, max_px) as usize
                };
                (r.range(1, ST_C as i32) as usize, c_out, px)
            }
        };
        let shift = match r.next() % 4 {
            0 => r.range(1, 62),
            1 => r.range(1, 15),
            _ => r.range(8, 24),
        };
        let out_zero = match r.next() % 4 {
            0 => 0,
            1 => r.range(-40_000, 40_000),
            _ => r.range(-300, 300),
        };
        for o in 0..c_out {
            b.bias[o] = r.next() as i16;
            b.mult[o] = r.next() as u8;
        }
        r.fill(&mut b.x[..pixels * c_in]);
        r.fill(&mut b.w[..c_in * c_out]);
        if case % 8 == 1 {
            // Extreme inputs: int16 saturation at both ends.
            b.x[..c_in].fill(-128);
            b.w[..c_in].fill(-128);
        }
        let q = ConvQ {
            weight: &b.w[..c_in * c_out],
            bias: &b.bias[..c_out],
            bias_shift: shift as u32 % 16,
            mult: &b.mult[..c_out],
            shift,
            in_zero: 0,
            out_zero,
            lut: None,
        };
        let n = pixels * c_out;
        let x = &b.x[..pixels * c_in];
        y[..n].fill(0);
        y_ref[..n].fill(1);
        y[n..n + ST_GUARD].fill(0x5a5a);
        y_ref[n..n + ST_GUARD].fill(0x5a5a);
        let ok = pointwise::<i16>(x, c_in, &q, c_out, &mut y[..n]).is_ok()
            && pointwise_reference::<i16>(x, c_in, &q, c_out, &mut y_ref[..n]).is_ok()
            && y[..n] == y_ref[..n]
            && y[n..n + ST_GUARD]
                .iter()
                .chain(&y_ref[n..n + ST_GUARD])
                .all(|&v| v == 0x5a5a);
        if !ok {
            failures += 1;
            error!(
                "self-test: int8 -> i16 pointwise {=usize} px, {=usize} -> {=usize}, shift {=i32}: differs from the reference",
                pixels, c_in, c_out, shift
            );
        }
        cases += 1;
    }
    (cases, failures)
}

/// LayerNorm of `i16` inputs into int8 (`layer_norm_i16`, the dispatching kernel: the DSP or
/// NEON kernel where this build has one) against `layer_norm_i16_reference`, bit for bit:
/// channels 1..=67, 128, 129..=323 (past 256 the DSP kernel's portable fallback), 1000, 1024
/// and 1030 (past 1024 the NEON kernel's fallback), 1..=8 pixels, inputs of every
/// spread up to the i16 extremes, constant pixels and single spikes, shifts 1..=62 (both
/// halves of the split shifts, and the table's fallback below 16), eps, with and without the
/// interpolated table. `x16` holds the inputs, `p16` gamma and beta. Returns `(cases, failures)`.
fn ln16_selftest(
    r: &mut Rng,
    b: &mut SelfTestBufs,
    x16: &mut [i16],
    p16: &mut [i16],
) -> (usize, usize) {
    use ldp_core::quant::kernels::{layer_norm_i16, layer_norm_i16_reference};
    let (mut cases, mut failures) = (0usize, 0usize);
    for case in 0..120usize {
        let c = match case {
            0 => 128,
            1 => 1,
            2 => 256,
            3 => 300,
            4 => 1024,
            5 => 1000,
            6 => 1030,
            _ => {
                (match r.next() % 6 {
                    0 => 128,
                    1 => r.range(129, 323),
                    _ => r.range(1, ST_C as i32),
                }) as usize
            }
        };
        let pixels = r.range(1, 8).min((ST_Y16 / c) as i32) as usize;
        let n = c * pixels;
        let spread = r.range(0, 15) as u32;
        for v in &mut x16[..n] {
            *v = (r.next() as i16) >> spread;
        }
        match case % 5 {
            // Constant pixel (D = 0; with eps 0 that is inv = 2³²).
            0 => x16[..c].fill(r.next() as i16),
            1 => {
                for (i, v) in x16[..c].iter_mut().enumerate() {
                    *v = if i % 2 == 0 { i16::MAX } else { i16::MIN };
                }
            }
            // One spike: the largest |x̂| (√(c−1)).
            2 => {
                x16[..c].fill(1);
                x16[r.range(0, c as i32 - 1) as usize] = i16::MIN;
            }
            _ => {}
        }
        let (gamma, beta) = p16[..2 * c].split_at_mut(c);
        for (g, bb) in gamma.iter_mut().zip(beta.iter_mut()) {
            *g = r.next() as i16;
            *bb = r.next() as i16;
        }
        r.fill(&mut b.lut);
        let q = NormQ {
            gamma,
            beta,
            shift: match case % 4 {
                0 => r.range(1, 62),
                1 => r.range(40, 62),
                _ => r.range(16, 39),
            },
            eps_q8: match case % 3 {
                0 => 0,
                1 => r.range(0, 1 << 20),
                _ => r.next() as i32,
            },
            out_zero: if case % 11 == 7 {
                r.range(-40_000, 40_000)
            } else {
                r.range(-128, 127)
            },
            lut: (case % 2 == 0).then_some(&b.lut[..]),
        };
        poison(&mut b.y, &mut b.y_ref, n);
        let x = &x16[..n];
        let ok = layer_norm_i16(x, c, &q, &mut b.y[..n]).is_ok()
            && layer_norm_i16_reference(x, c, &q, &mut b.y_ref[..n]).is_ok()
            && same(&b.y, &b.y_ref, n);
        if !ok {
            failures += 1;
            error!(
                "self-test: i16 layer norm {=usize} px, c {=usize}, shift {=i32}, table {=bool}: differs from the reference",
                pixels, c, q.shift, q.lut.is_some()
            );
        }
        cases += 1;
    }
    (cases, failures)
}

/// Cases of [`mve_selftest`] the Helium kernels took, and its failures.
#[cfg(not(target_arch = "aarch64"))]
struct MveCounts {
    ln16: usize,
    add: usize,
    failures: usize,
}

/// The Helium (MVE) LayerNorm of `i16` inputs and ADD called directly
/// (`layer_norm_i16_mve`, `add_inplace_mve`) against the references, bit for bit, on parameters
/// in and around their range: channels 1..=67 (every remainder of the 4- and 8-lane loops),
/// 128, 129..=256, 1..=16 pixels, inputs of every spread, constant pixels and spikes, output
/// shifts 14..=50 (the kernel takes 17..=47), zero points up to 2¹⁶ with the table, eps (huge
/// ones included), with and without the interpolated table; ADD lengths 1..=3000 with shifts
/// 14..=50 and multipliers of both signs. A case the kernel does not take is not compared (the
/// dispatch self-tests cover the DSP kernel). On an MVE build with MVE on, fewer taken cases
/// than expected count as a failure; elsewhere nothing is taken.
#[cfg(not(target_arch = "aarch64"))]
fn mve_selftest(r: &mut Rng, b: &mut SelfTestBufs, x16: &mut [i16], p16: &mut [i16]) -> MveCounts {
    use ldp_core::kernels::add::int8::add_inplace_mve;
    use ldp_core::kernels::norm::int8::layer_norm_i16_mve;
    use ldp_core::quant::kernels::layer_norm_i16_reference;
    let mut m = MveCounts {
        ln16: 0,
        add: 0,
        failures: 0,
    };
    for case in 0..160usize {
        let c = match case {
            0 => 128,
            1 => 256,
            2..=9 => case - 1,
            _ => {
                (match r.next() % 4 {
                    0 => 128,
                    1 => r.range(129, 256),
                    _ => r.range(1, ST_C as i32),
                }) as usize
            }
        };
        let pixels = r.range(1, 16).min((ST_Y16 / c) as i32) as usize;
        let n = c * pixels;
        let spread = r.range(0, 15) as u32;
        for v in &mut x16[..n] {
            *v = (r.next() as i16) >> spread;
        }
        match case % 5 {
            0 => x16[..c].fill(r.next() as i16),
            1 => {
                for (i, v) in x16[..c].iter_mut().enumerate() {
                    *v = if i % 2 == 0 { i16::MAX } else { i16::MIN };
                }
            }
            2 => {
                x16[..c].fill(-1);
                x16[r.range(0, c as i32 - 1) as usize] = i16::MAX;
            }
            _ => {}
        }
        let (gamma, beta) = p16[..2 * c].split_at_mut(c);
        for (g, bb) in gamma.iter_mut().zip(beta.iter_mut()) {
            *g = r.next() as i16;
            *bb = r.next() as i16;
        }
        if case % 7 == 3 {
            gamma.fill(i16::MIN);
            beta.fill(i16::MAX);
        }
        r.fill(&mut b.lut);
        let lerp = case % 2 == 0;
        let q = NormQ {
            gamma,
            beta,
            shift: r.range(14, 50) + if lerp { 8 } else { 0 },
            eps_q8: match case % 4 {
                0 => 0,
                1 => r.range(0, 1 << 20),
                2 => r.range(0, 300),
                _ => r.next() as i32,
            },
            out_zero: match case % 9 {
                0 => r.range(-(1 << 16), 1 << 16),
                _ => r.range(-128, 127),
            },
            lut: lerp.then_some(&b.lut[..]),
        };
        poison(&mut b.y, &mut b.y_ref, n);
        let x = &x16[..n];
        let taken = layer_norm_i16_mve(x, c, &q, &mut b.y[..n]);
        let ok = match taken {
            Ok(true) => {
                m.ln16 += 1;
                layer_norm_i16_reference(x, c, &q, &mut b.y_ref[..n]).is_ok()
                    && same(&b.y, &b.y_ref, n)
            }
            Ok(false) => b.y[..n].iter().all(|&v| v == b.y[0]),
            Err(_) => false,
        };
        if !ok {
            m.failures += 1;
            error!(
                "self-test: MVE i16 layer norm {=usize} px, c {=usize}, shift {=i32}, z {=i32}, table {=bool}: differs from the reference",
                pixels, c, q.shift, q.out_zero, lerp
            );
        }
    }
    for case in 0..120usize {
        let n = match case {
            0..=7 => case + 1,
            _ => r.range(1, 3000) as usize,
        };
        r.fill(&mut b.x[..n]);
        r.fill(&mut b.y_ref[..n]);
        let q = AddQ {
            a_zero: r.range(-128, 127),
            a_mult: if case % 5 == 0 {
                r.next() as i32
            } else {
                r.range(0, 1 << 30)
            },
            b_zero: r.range(-128, 127),
            b_mult: if case % 7 == 0 {
                -r.range(0, 1 << 30)
            } else {
                r.range(0, 1 << 30)
            },
            shift: r.range(14, 50),
            out_zero: if case % 6 == 0 {
                r.range(-(1 << 20), 1 << 20)
            } else {
                r.range(-128, 127)
            },
        };
        b.y[..n].copy_from_slice(&b.x[..n]);
        let ok = match add_inplace_mve(&mut b.y[..n], &b.y_ref[..n], &q) {
            Ok(true) => {
                m.add += 1;
                b.y[..n]
                    .iter()
                    .zip(&b.x[..n])
                    .zip(&b.y_ref[..n])
                    .all(|((&got, &a), &bb)| got == q.add(a, bb))
            }
            Ok(false) => b.y[..n] == b.x[..n],
            Err(_) => false,
        };
        if !ok {
            m.failures += 1;
            error!(
                "self-test: MVE add of {=usize}, shift {=i32}: differs from the reference",
                n, q.shift
            );
        }
    }
    if ldp_core::quant::ARM_MVE_KERNELS
        && ldp_core::kernels::cpu::mve()
        && (m.ln16 < 80 || m.add < 60)
    {
        m.failures += 1;
        error!(
            "self-test: the Helium kernels took only {=usize} LayerNorm and {=usize} ADD cases",
            m.ln16, m.add
        );
    }
    m
}

/// The int8 bilinear resize (`resize_bilinear`, the dispatching kernel: the DSP or NEON kernel
/// where this build has one) against `resize_bilinear_reference`, bit for bit: grids 1..=19 in
/// and out (2× downscales, upscales, equal sizes, single rows and columns), channels 1..=67
/// (every remainder of 8 and 16), zero points and multipliers per channel or shared, shifts
/// −4..=40. Returns `(cases, failures)`.
fn resize_selftest(r: &mut Rng, b: &mut SelfTestBufs) -> (usize, usize) {
    use ldp_core::quant::kernels::{resize_bilinear, resize_bilinear_reference};
    let (mut cases, mut failures) = (0usize, 0usize);
    for case in 0..120usize {
        let c = match case {
            0 => ST_C,
            1 => 16,
            2 => 8,
            _ => r.range(1, ST_C as i32) as usize,
        };
        let (h, w, ho, wo) = match case % 4 {
            0 => {
                let (ho, wo) = (r.range(1, 9) as usize, r.range(1, 9) as usize);
                (2 * ho, 2 * wo, ho, wo)
            }
            _ => (
                r.range(1, ST_G as i32) as usize,
                r.range(1, ST_G as i32) as usize,
                r.range(1, ST_G as i32) as usize,
                r.range(1, ST_G as i32) as usize,
            ),
        };
        r.fill(&mut b.x[..h * w * c]);
        r.fill(&mut b.w[..c]);
        for m in &mut b.gamma[..c] {
            *m = r.next() as i16;
        }
        let zn = if case % 3 == 0 { 1 } else { c };
        let mn = if case % 5 == 0 { 1 } else { c };
        let shift = if case % 7 == 0 {
            r.range(-4, 40)
        } else {
            r.range(8, 20)
        };
        let out_zero = r.range(-128, 127);
        let n = ho * wo * c;
        poison(&mut b.y, &mut b.y_ref, n);
        let x = &b.x[..h * w * c];
        let (z, m) = (&b.w[..zn], &b.gamma[..mn]);
        let ok = resize_bilinear(x, h, w, c, z, m, shift, out_zero, &mut b.y[..n], ho, wo).is_ok()
            && resize_bilinear_reference(
                x,
                h,
                w,
                c,
                z,
                m,
                shift,
                out_zero,
                &mut b.y_ref[..n],
                ho,
                wo,
            )
            .is_ok()
            && same(&b.y, &b.y_ref, n);
        if !ok {
            failures += 1;
            error!(
                "self-test: resize {=usize}x{=usize}x{=usize} -> {=usize}x{=usize}, shift {=i32}: differs from the reference",
                h, w, c, ho, wo, shift
            );
        }
        cases += 1;
    }
    (cases, failures)
}

fn kernels_name() -> &'static str {
    if cfg!(target_arch = "aarch64") && ldp_core::kernels::cpu::dotprod() {
        "neon+sdot"
    } else if cfg!(target_arch = "aarch64") {
        "neon"
    } else if ldp_core::quant::ARM_MVE_KERNELS && ldp_core::kernels::cpu::mve() {
        "arm-mve"
    } else if ldp_core::quant::ARM_DSP_KERNELS {
        "arm-dsp"
    } else {
        "portable"
    }
}

/// Name (PyTorch module) and kind of the layer whose output the int8 graph traces as `t`.
fn layer_of(arch: &str, t: &'static str) -> (&'static str, &'static str) {
    if arch == "ldp" {
        return match t {
            "a" => ("pointwise1", "pointwise"),
            "r" => ("skip_resize", "resize"),
            "d" => ("depthwise1", "depthwise"),
            "b" => ("add1", "add"),
            "q" => ("pointwise2", "pointwise"),
            "c" => ("norm1", "norm"),
            "e" => ("depthwise2", "depthwise"),
            "f" => ("add2", "add"),
            "g" => ("pointwise3", "pointwise"),
            "y" => ("norm2", "norm"),
            other => (other, "activation"),
        };
    }
    let kind = match t {
        "h1" | "z" | "m" => "pointwise",
        "pooled" => "resize",
        "d" | "b1.d" | "b2.d" => "depthwise",
        "b1.hs" | "b2.hs" | "b1.u" | "b2.u" => "norm",
        "y" | "z2" => "add",
        _ => "activation",
    };
    (t, kind)
}

/// Multiply-accumulates of the `ldp` layer traced as `t` (padded depthwise taps counted).
fn ldp_macs(cfg: &ModelConfig, t: &str) -> usize {
    let ModelConfig::Ldp(c) = cfg else { return 0 };
    let (hw, hw2, co) = (c.h * c.w, c.h2() * c.w2(), c.c_out);
    match t {
        "a" => hw * c.c_in * co,
        "d" => hw * 9 * co,
        "q" => hw * co * co,
        "e" => hw2 * 9 * co,
        "g" => hw2 * co * co,
        _ => 0,
    }
}

/// Most layers traced per model.
const MAX_SEGS: usize = 32;

fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// The quantized input of a traced run.
enum TracedInput<'a> {
    I8(&'a mut [i8]),
    I16(&'a mut [i16]),
}

/// Runs one int8 model layer by layer; `None` when skipped, else whether it passed.
fn run_traced(m: &Embedded, arena: &mut [u8], output: &mut [f32]) -> Option<bool> {
    let board = models::BOARD;
    if m.scratch_bytes > arena.len() || m.expected.len() > output.len() {
        println!(
            "SKIP board={=str} arch={=str} dtype={=str} reason=needs {=usize} bytes of scratch, the board's arena has {=usize}",
            board, m.arch, m.dtype, m.scratch_bytes, arena.len()
        );
        return None;
    }
    let model = match Model::parse(m.blob) {
        Ok(model) => model,
        Err(e) => {
            error!("{=str}/{=str}: {}", m.arch, m.dtype, e);
            return Some(false);
        }
    };
    if ldp_core::quant::a16::is_a16(&model) {
        println!(
            "SKIP board={=str} arch={=str} dtype={=str} reason=16-bit activations (the per-layer trace is int8-only)",
            board, m.arch, m.dtype
        );
        return None;
    }
    // A 16-bit input (the `mlp2x-gelu` default) is traced through `forward_x16_traced`.
    let x16 = ldp_core::quant::is_x16(&model);
    let cfg = model.config();
    let (n_in, n_out) = (cfg.input_len(), cfg.output_len());
    let in_bytes = if x16 { 2 * n_in } else { n_in };
    let work_len = r16(ldp_core::quant::scratch_bytes_i8(&cfg));
    if work_len + r16(in_bytes) + n_out > arena.len() {
        println!(
            "SKIP board={=str} arch={=str} dtype={=str} reason=the traced run needs {=usize} bytes, the board's arena has {=usize}",
            board, m.arch, m.dtype, work_len + r16(in_bytes) + n_out, arena.len()
        );
        return None;
    }
    let (work, rest) = arena.split_at_mut(work_len);
    let (xb, rest) = rest.split_at_mut(r16(in_bytes));
    // SAFETY: i8 and u8 have the same size, alignment and validity; `rest` holds ≥ n_out bytes
    // (checked above).
    let yq: &mut [i8] = unsafe { core::slice::from_raw_parts_mut(rest.as_mut_ptr().cast(), n_out) };
    let out = &mut output[..m.expected.len()];
    out.fill(f32::NAN);
    let input = if x16 {
        if !(xb.as_ptr() as usize).is_multiple_of(2) {
            error!(
                "{=str}/{=str}: the arena is not 2-byte aligned",
                m.arch, m.dtype
            );
            return Some(false);
        }
        // SAFETY: `xb` holds 2·n_in bytes (checked above) at a 2-byte aligned address (checked
        // just above); every bit pattern is a valid i16.
        let xq: &mut [i16] =
            unsafe { core::slice::from_raw_parts_mut(xb.as_mut_ptr().cast(), n_in) };
        if let Err(e) = ldp_core::quant::quantize_input16(&model, m.input, xq) {
            error!("{=str}/{=str}: quantize_input16: {}", m.arch, m.dtype, e);
            return Some(false);
        }
        TracedInput::I16(xq)
    } else {
        // SAFETY: i8 and u8 have the same size, alignment and validity; `xb` holds n_in bytes.
        let xq: &mut [i8] =
            unsafe { core::slice::from_raw_parts_mut(xb.as_mut_ptr().cast(), n_in) };
        if let Err(e) = ldp_core::quant::quantize_input(&model, m.input, xq) {
            error!("{=str}/{=str}: quantize_input: {}", m.arch, m.dtype, e);
            return Some(false);
        }
        TracedInput::I8(xq)
    };

    let mut names: [&'static str; MAX_SEGS] = [""; MAX_SEGS];
    let mut n = 0usize;
    let mut on_layer = |name: &'static str, _: ldp_core::quant::Traced<'_>, _: f32| {
        board::mark();
        if n < MAX_SEGS {
            names[n] = name;
        }
        n += 1;
    };
    stack::paint();
    board::mark();
    let result = match input {
        TracedInput::I8(xq) => {
            ldp_core::quant::forward_i8_traced(&model, xq, yq, work, Some(&mut on_layer))
        }
        TracedInput::I16(xq) => {
            ldp_core::quant::forward_x16_traced(&model, xq, yq, work, Some(&mut on_layer))
        }
    };
    board::mark();
    let stack_bytes = stack::high_water();

    let result = result.and_then(|_| ldp_core::quant::dequantize_output(&model, yq, out));
    let verdict = check::compare(out, m.expected, m.tolerance);
    let ok = result.is_ok() && verdict.pass && n <= MAX_SEGS;
    if let Err(e) = result {
        error!("{=str}/{=str}: forward failed: {}", m.arch, m.dtype, e);
    }
    println!(
        "PERFMODEL board={=str} arch={=str} dtype={=str} marks={=usize}",
        board,
        m.arch,
        m.dtype,
        n + 2
    );
    for (i, &t) in names[..n.min(MAX_SEGS)].iter().enumerate() {
        let (layer, kind) = layer_of(m.arch, t);
        println!(
            "PERFSEG board={=str} arch={=str} index={=usize} layer={=str} kind={=str} macs={=usize}",
            board,
            m.arch,
            i,
            layer,
            kind,
            ldp_macs(&cfg, t)
        );
    }
    println!(
        "PERFSEG board={=str} arch={=str} index={=usize} layer=return kind=return macs=0",
        board, m.arch, n
    );
    info!(
        "METRIC board={=str} arch={=str} dtype={=str} rel_l2={=f64} max_abs={=f32} mismatches={=usize} macs={=usize} params={=usize} blob_bytes={=usize}",
        board,
        m.arch,
        m.dtype,
        verdict.rel_l2,
        verdict.max_abs,
        verdict.mismatches,
        m.macs,
        m.params,
        m.blob.len()
    );
    println!(
        "RESULT board={=str} arch={=str} dtype={=str} ok={=bool} instructions={=u64} arena_bytes={=usize} stack_bytes={=usize} flash_bytes={=usize}",
        board,
        m.arch,
        m.dtype,
        ok,
        0u64,
        m.scratch_bytes,
        stack_bytes,
        board::code_bytes() + m.blob.len()
    );
    Some(ok)
}

/// The perf-mode main function (called by `app::run` with its arena and output buffer).
pub fn run(arena: &mut [u8], output: &mut [f32]) -> ! {
    if cfg!(feature = "perf-neon") {
        ldp_core::kernels::cpu::set_dotprod(false);
    }
    if cfg!(feature = "perf-dsp") {
        ldp_core::kernels::cpu::set_mve(false);
    }
    info!(
        "ldp firmware (perf): board {=str}, int8 kernels {=str}, {=usize} model(s) from {=str}",
        models::BOARD,
        kernels_name(),
        MODELS.len(),
        models::DATA_DIR
    );
    let selftest_ok = kernel_selftest();
    let (mut ran, mut failed) = (0usize, 0usize);
    for m in MODELS.iter().filter(|m| m.dtype == "int8") {
        match run_traced(m, arena, output) {
            Some(true) => ran += 1,
            Some(false) => {
                ran += 1;
                failed += 1;
            }
            None => {}
        }
    }
    let (streamed, stream_failed) = crate::stream_check::run(arena, output);
    let code = if !selftest_ok || failed > 0 || stream_failed > 0 {
        error!(
            "perf: kernel self-test {=str}, {=usize} of {=usize} model(s) failed, {=usize} of {=usize} streamed model(s) failed",
            if selftest_ok { "passed" } else { "FAILED" },
            failed,
            ran,
            stream_failed,
            streamed
        );
        1
    } else if ran == 0 {
        error!("perf: no int8 model ran");
        3
    } else {
        info!("perf: all {=usize} int8 model(s) passed", ran);
        0
    };
    Current::exit(code)
}
