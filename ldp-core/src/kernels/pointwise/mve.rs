//! int8 kernels with Helium (the M-profile Vector Extension, MVE) for the Cortex-M55 (and
//! M85): the int8 pointwise convolution (the depthwise one is `kernels::depthwise::mve`). Compiled in by the cargo feature `mve` on thumbv8m.main
//! targets (cfg `ldp_arm_mve`, `build.rs`; the core must have MVE), used unless
//! [`crate::kernels::cpu::set_mve`]`(false)` (then the DSP kernels of `kernels::<op>::arm_dsp` run,
//! which is how one firmware compares both).
//!
//! **Pointwise tile.** 2 pixels × 3 output channels, six `i32` accumulators in general-purpose
//! registers (`VMLADAVA` accumulates into an even-numbered one: r0, r2, r4, r8, r10, r12). Per 16
//! input channels: 5 `VLDRB.8` (the two pixels' input rows read in place, the three weight rows
//! interleaved by 16 bytes in a stack buffer, all with post-increment) and 6 `VMLADAVA.S8` (16
//! MACs each), in a low-overhead loop (`WLS`/`LE`): 12 instructions per 96 MACs. The pixel-pair
//! loop, requantization included (the DSP kernels' `SMMULR`, or `SMMLA` + shift, exact, see
//! `kernels::isa::arm_dsp::Rq`), zero point, saturation and table, is one `asm!` block per tile.
//!
//! **Bit-identity.** `VMLADAVA.S8` adds the 16 exact `i8·i8` products to the accumulator modulo
//! 2³², like the reference's `wrapping_add`: the same sum in another order. The pointwise input
//! zero point is folded into the bias at convert time, so the raw inputs are multiplied as in the
//! reference. The `c_in % 16` last channels are summed in Rust; when `c_out % 3 ≠ 0` the last
//! tile overlaps the one before it (outputs computed twice, the same values), `c_out < 3` reads
//! row 0 in place of the missing rows and stores only the real ones; an odd last pixel reads its
//! own row as the second pixel and stores one.

use core::arch::asm;

use crate::kernels::isa::arm_dsp::{Rq, RqMode};
use crate::quant::fixed::requant;
use crate::quant::kernels::{ConvOut, ConvQ};

/// Outputs per tile.
const TO: usize = 3;

/// `acc + Σ x_p[16j..16j+16] · w_o[16j..16j+16]` for `j < n16`, pixels `p` = 0, 1 and outputs
/// `o` = 0, 1, 2: `[p0o0, p0o1, p0o2, p1o0, p1o1, p1o2]`.
///
/// # Safety
/// The core has MVE (enabled in CPACR, as the FPU); `x0`, `x1`, `w[0..3]` valid for `16·n16`
/// bytes each.
#[inline(always)]
unsafe fn dot6(
    x0: *const i8,
    x1: *const i8,
    w: [*const i8; 3],
    n16: usize,
    acc: [i32; 6],
) -> [i32; 6] {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5] = acc;
    // SAFETY: reads 16·n16 bytes from each of the five pointers (valid per the contract, any
    // alignment: VLDRB has none), registers declared (q0–q4 are s0–s19), no stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "wls lr, lr, 3f",
            "2:",
            "vldrb.8 q0, [r1], #16",
            "vldrb.8 q1, [r3], #16",
            "vldrb.8 q2, [r5], #16",
            "vmladava.s8 r0, q0, q2",
            "vmladava.s8 r8, q1, q2",
            "vldrb.8 q3, [r9], #16",
            "vmladava.s8 r2, q0, q3",
            "vmladava.s8 r10, q1, q3",
            "vldrb.8 q4, [r11], #16",
            "vmladava.s8 r4, q0, q4",
            "vmladava.s8 r12, q1, q4",
            "le lr, 2b",
            "3:",
            inout("r0") a0,
            inout("r2") a1,
            inout("r4") a2,
            inout("r8") a3,
            inout("r10") a4,
            inout("r12") a5,
            inout("r1") x0 => _,
            inout("r3") x1 => _,
            inout("r5") w[0] => _,
            inout("r9") w[1] => _,
            inout("r11") w[2] => _,
            inout("lr") n16 => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3, a4, a5]
}

/// What the pixel-pair loop [`pairs`] reads (one 3-output tile); the layout is the `asm!`'s.
#[repr(C)]
pub(crate) struct Ctx {
    /// The three biases (`LDM` into r0, r2, r4).
    bias: [i32; 3],
    /// The three multipliers (`Rq::mult`).
    mult: [i32; 3],
    /// Pixel `p`'s input row.
    x: *const i8,
    /// `c_in` (bytes per input row).
    c_in: usize,
    /// The three weight rows, interleaved by 16 bytes.
    w: *const i8,
    /// `c_in / 16`.
    n16: usize,
    /// Pixel `p`'s output `o0`.
    y: *mut u8,
    /// Bytes per output row (`c_out · size_of::<Y>()`).
    y_row: usize,
    /// Pixel pairs left.
    pairs: usize,
    /// The output zero point.
    zero: i32,
    /// The table + 128, or null.
    lut: *const i8,
    /// `Rq` `Mla`: `2^(s−33)`.
    round_hi: i32,
    /// `Rq` `Mla`: `s − 32`; 0 for `Mulr`.
    down: u32,
}

/// The pixel-pair loop of one tile in `asm!`: for each pair, the 5-load/6-`VMLADAVA` loop over
/// `c_in` (a multiple of 16), then `SMMULR` (or `SMMLA` + `ASR`), zero point, `SSAT` and the
/// table (or `SSAT #16` for `i16`), stored to both pixels' rows. `$sat`, `$st0..2` and `$n`
/// select the output type.
macro_rules! pairs_asm {
    ($ctx:expr, $sat:literal, $lut:literal, $st:literal) => {
        asm!(
            ".cpu cortex-m55",
            "2:",
            "ldm r9, {{r0, r2, r4}}",
            "mov r8, r0",
            "mov r10, r2",
            "mov r12, r4",
            "ldr r1, [r9, #24]",
            "ldr r3, [r9, #28]",
            "add r3, r1",
            "ldr r5, [r9, #32]",
            "ldr lr, [r9, #36]",
            "wls lr, lr, 4f",
            "3:",
            "vldrb.8 q0, [r1], #16",
            "vldrb.8 q1, [r3], #16",
            "vldrb.8 q2, [r5], #16",
            "vmladava.s8 r0, q0, q2",
            "vmladava.s8 r8, q1, q2",
            "vldrb.8 q3, [r5], #16",
            "vmladava.s8 r2, q0, q3",
            "vmladava.s8 r10, q1, q3",
            "vldrb.8 q4, [r5], #16",
            "vmladava.s8 r4, q0, q4",
            "vmladava.s8 r12, q1, q4",
            "le lr, 3b",
            "4:",
            "ldr r1, [r9, #12]",
            "ldr r3, [r9, #16]",
            "ldr r5, [r9, #20]",
            "ldr r11, [r9, #64]",
            "cmp r11, #0",
            "bne 5f",
            "smmulr r0, r0, r1",
            "smmulr r2, r2, r3",
            "smmulr r4, r4, r5",
            "smmulr r8, r8, r1",
            "smmulr r10, r10, r3",
            "smmulr r12, r12, r5",
            "b 6f",
            "5:",
            "ldr lr, [r9, #60]",
            "smmla r0, r0, r1, lr",
            "smmla r2, r2, r3, lr",
            "smmla r4, r4, r5, lr",
            "smmla r8, r8, r1, lr",
            "smmla r10, r10, r3, lr",
            "smmla r12, r12, r5, lr",
            "asr r0, r0, r11",
            "asr r2, r2, r11",
            "asr r4, r4, r11",
            "asr r8, r8, r11",
            "asr r10, r10, r11",
            "asr r12, r12, r11",
            "6:",
            "ldr r1, [r9, #52]",
            "add r0, r1",
            "add r2, r1",
            "add r4, r1",
            "add r8, r1",
            "add r10, r1",
            "add r12, r1",
            $sat,
            $lut,
            "ldr r1, [r9, #40]",
            "ldr r3, [r9, #44]",
            "add r5, r1, r3",
            $st,
            "add r1, r1, r3, lsl #1",
            "str r1, [r9, #40]",
            "ldr r1, [r9, #24]",
            "ldr r3, [r9, #28]",
            "add r1, r1, r3, lsl #1",
            "str r1, [r9, #24]",
            "ldr r1, [r9, #48]",
            "subs r1, #1",
            "str r1, [r9, #48]",
            "bne 2b",
            in("r9") $ctx,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("r8") _, out("r10") _, out("r11") _, out("r12") _, out("lr") _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            options(nostack),
        )
    };
}

/// The output types of the MVE kernel: which pixel-pair loop stores them.
pub(crate) trait MveOut: ConvOut {
    /// Runs [`pairs_asm`] for this type.
    ///
    /// # Safety
    /// MVE; `ctx` describes valid rows: `2·pairs` input rows of `c_in = 16·n16` bytes from
    /// `x`, `3·c_in` interleaved weight bytes at `w`, 3 outputs at `y + k·y_row` for each of
    /// the `2·pairs` pixels; `pairs ≥ 1`; `lut` null or 256 bytes around `lut − 128`.
    unsafe fn pairs(ctx: &mut Ctx);
}

impl MveOut for i8 {
    #[inline(always)]
    unsafe fn pairs(ctx: &mut Ctx) {
        let c: *mut Ctx = ctx;
        // SAFETY: per the contract: the loads stay inside the rows, the stores write 3
        // bytes per pixel at `y`; the table is read at `lut + v`, `v` in -128..=127 after
        // `SSAT`. Registers declared; the stack is not used.
        unsafe {
            pairs_asm!(
                c,
                "ssat r0, #8, r0\nssat r2, #8, r2\nssat r4, #8, r4\nssat r8, #8, r8\nssat r10, #8, r10\nssat r12, #8, r12",
                "ldr r3, [r9, #56]\ncbz r3, 7f\nldrb r0, [r3, r0]\nldrb r2, [r3, r2]\nldrb r4, [r3, r4]\nldrb r8, [r3, r8]\nldrb r10, [r3, r10]\nldrb r12, [r3, r12]\n7:",
                "strb r0, [r1]\nstrb r2, [r1, #1]\nstrb r4, [r1, #2]\nstrb r8, [r5]\nstrb r10, [r5, #1]\nstrb r12, [r5, #2]"
            )
        };
    }
}

impl MveOut for i16 {
    #[inline(always)]
    unsafe fn pairs(ctx: &mut Ctx) {
        let c: *mut Ctx = ctx;
        // SAFETY: as for `i8`, storing 3 halfwords per pixel (no table).
        unsafe {
            pairs_asm!(
                c,
                "ssat r0, #16, r0\nssat r2, #16, r2\nssat r4, #16, r4\nssat r8, #16, r8\nssat r10, #16, r10\nssat r12, #16, r12",
                "",
                "strh r0, [r1]\nstrh r2, [r1, #2]\nstrh r4, [r1, #4]\nstrh r8, [r5]\nstrh r10, [r5, #2]\nstrh r12, [r5, #4]"
            )
        };
    }
}

/// Largest `c_in` of the `asm!` pixel-pair loop (3 interleaved weight rows on the stack: 3 KiB).
const KMAX: usize = 1024;

/// Runs the MVE kernel unless disallowed ([`crate::kernels::cpu::mve`]); `false` (nothing
/// written) then. Shapes validated by the caller.
pub(crate) fn pointwise<Y: MveOut + crate::quant::kernels::ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) -> bool {
    if !crate::kernels::cpu::mve() {
        return false;
    }
    if pixels == 0 || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    let rq = Rq::new(q.shift);
    match rq.mode {
        RqMode::Mulr => run(x, c_in, q, c_out, y, pixels, &rq, |a, m| rq.apply(a, m)),
        RqMode::Mla => run(x, c_in, q, c_out, y, pixels, &rq, |a, m| rq.apply(a, m)),
        RqMode::Generic => {
            let s = q.shift;
            run(x, c_in, q, c_out, y, pixels, &rq, |a, m| requant(a, m, s))
        }
    }
    true
}

/// The kernel with the requantization `req(acc, mult')` (monomorphized per mode).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run<Y: MveOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    rq: &Rq,
    req: impl Fn(i32, i32) -> i32,
) {
    let n16 = c_in / 16;
    let full = 16 * n16;
    let n_tiles = c_out.div_ceil(TO);
    let zero = q.out_zero;
    for t in 0..n_tiles {
        // Origin of the tile: 3t, or c_out − 3 for an overlapping last tile; rows past c_out
        // (only when c_out < 3) read row 0 and are not stored.
        let o0 = if c_out >= TO {
            (TO * t).min(c_out - TO)
        } else {
            0
        };
        let n_out = TO.min(c_out - o0);
        let rows: [usize; TO] = core::array::from_fn(|j| if j < n_out { o0 + j } else { o0 });
        let ws: [&[i8]; TO] = rows.map(|o| &q.weight[o * c_in..(o + 1) * c_in]);
        let bias: [i32; TO] = rows.map(|o| q.bias_at(o));
        let mp: [i32; TO] = rows.map(|o| rq.mult(q.mult[o]));
        let mut p = 0;
        if rq.mode != RqMode::Generic && full == c_in && c_in <= KMAX && n_out == TO && pixels >= 2
        {
            let mut wst = [0i8; 3 * KMAX];
            for (j, chunk) in wst[..3 * c_in].chunks_exact_mut(48).enumerate() {
                for r in 0..TO {
                    chunk[16 * r..16 * r + 16].copy_from_slice(&ws[r][16 * j..16 * j + 16]);
                }
            }
            let pairs = pixels / 2;
            let yb = y[o0..].as_mut_ptr().cast::<u8>();
            let mut ctx = Ctx {
                bias,
                mult: mp,
                x: x.as_ptr(),
                c_in,
                w: wst.as_ptr(),
                n16,
                y: yb,
                y_row: c_out * core::mem::size_of::<Y>(),
                pairs,
                zero,
                lut: match (core::mem::size_of::<Y>(), q.lut) {
                    (1, Some(t)) if t.len() >= 256 => t[128..].as_ptr(),
                    _ => core::ptr::null(),
                },
                round_hi: rq.round_hi,
                down: if rq.mode == RqMode::Mla { rq.down } else { 0 },
            };
            // Checked: the last pixel of the pairs has its 3 outputs inside y, its input row
            // inside x (the caller's lengths).
            let _ = &y[(2 * pairs - 1) * c_out + o0..(2 * pairs - 1) * c_out + o0 + TO];
            let _ = &x[..2 * pairs * c_in];
            // SAFETY: MVE per the feature's contract; the rows described by `ctx` are inside
            // `x`, `wst` and `y` (checked just above; c_in = 16·n16, pairs ≥ 1).
            unsafe { Y::pairs(&mut ctx) };
            p = 2 * pairs;
        }
        while p < pixels {
            let two = p + 1 < pixels;
            let r0 = &x[p * c_in..(p + 1) * c_in];
            let r1 = if two {
                &x[(p + 1) * c_in..(p + 2) * c_in]
            } else {
                r0
            };
            // SAFETY: MVE per the `mve` feature's contract (build.rs); the five rows have
            // c_in ≥ 16·n16 bytes each.
            let mut acc = unsafe {
                dot6(
                    r0.as_ptr(),
                    r1.as_ptr(),
                    [ws[0].as_ptr(), ws[1].as_ptr(), ws[2].as_ptr()],
                    n16,
                    [bias[0], bias[1], bias[2], bias[0], bias[1], bias[2]],
                )
            };
            if full < c_in {
                for j in 0..TO {
                    for i in full..c_in {
                        let w = ws[j][i] as i32;
                        acc[j] = acc[j].wrapping_add(r0[i] as i32 * w);
                        acc[TO + j] = acc[TO + j].wrapping_add(r1[i] as i32 * w);
                    }
                }
            }
            let row = &mut y[p * c_out + o0..p * c_out + o0 + n_out];
            for j in 0..n_out {
                row[j] = Y::finish(zero.wrapping_add(req(acc[j], mp[j])), q.lut);
            }
            if two {
                let row = &mut y[(p + 1) * c_out + o0..(p + 1) * c_out + o0 + n_out];
                for j in 0..n_out {
                    row[j] = Y::finish(zero.wrapping_add(req(acc[TO + j], mp[j])), q.lut);
                }
            }
            p += 2;
        }
    }
}
