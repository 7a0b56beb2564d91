//! int8 depthwise 3×3 convolution with Helium (MVE) for the Cortex-M55 (and M85); the same
//! compile-time and run-time selection as `kernels::pointwise::mve`. The method and its
//! exactness: see [`depthwise`].

use core::arch::asm;

use crate::kernels::depthwise::DwShape;
use crate::kernels::isa::arm_dsp::{Rq, RqMode};
use crate::quant::kernels::ConvQ;

// ---------------------------------------------------------------------------------------------
// Depthwise 3×3
// ---------------------------------------------------------------------------------------------

/// What one depthwise `asm!` call reads besides the pointers (layout fixed by the `asm!`).
#[repr(C, align(16))]
struct DwCtx {
    /// Biases with the input zero point folded in (`bias − z·Σw`, wrapping): channels 0, 2, 4,
    /// 6 then 1, 3, 5, 7 (the even and odd 16-bit lanes of `VMULLB`/`VMULLT`).
    bias: [i32; 8],
    /// Multipliers (`Rq::mult`, `SMMULR` form), in the same order.
    mult: [i32; 8],
    /// Output zero point.
    zero: i32,
    /// The table, or null.
    lut: *const i8,
}

/// One output pixel of 8 channels: the 9 taps at `base + ky·row + kx·step` (8 bytes each),
/// weights `wst` (9 × 8 `i16`), then `VRMULH` (= `SMMULR`), zero point, saturating narrows,
/// the table (gather load) and an 8-byte store to `y`.
///
/// # Safety
/// MVE; the 9 taps readable (8 bytes each), `wst` 144 bytes, `y` 8 bytes, `ctx.lut` null or
/// 256 bytes.
#[inline(always)]
unsafe fn dw_pixel(
    base: *const i8,
    step: usize,
    row: usize,
    wst: *const i16,
    ctx: &DwCtx,
    y: *mut i8,
) {
    // SAFETY: reads per the contract; registers declared (q0–q7 = s0–s31); no stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "vldrw.32 q6, [r5]",
            "vldrw.32 q7, [r5, #16]",
            dw_row!(),
            dw_row!(),
            dw_row!(),
            "vldrw.32 q4, [r5, #32]",
            "vldrw.32 q5, [r5, #48]",
            "vrmulh.s32 q6, q6, q4",
            "vrmulh.s32 q7, q7, q5",
            "ldr r4, [r5, #64]",
            "vdup.32 q4, r4",
            "vadd.i32 q6, q6, q4",
            "vadd.i32 q7, q7, q4",
            "vqmovnb.s32 q0, q6",
            "vqmovnt.s32 q0, q7",
            "vqmovnb.s16 q0, q0",
            "mov r1, r8",
            "ldr r4, [r5, #68]",
            "cbz r4, 2f",
            "vmovlb.s8 q0, q0",
            "vmov.i16 q1, #128",
            "vadd.i16 q0, q0, q1",
            "vldrb.u16 q1, [r4, q0]",
            "vstrb.16 q1, [r1]",
            "b 3f",
            "2:",
            "vstrb.16 q0, [r1]",
            "3:",
            inout("r0") base => _,
            inout("r1") step => _,
            in("r2") row,
            inout("r3") wst => _,
            out("r4") _,
            in("r5") ctx as *const DwCtx,
            in("r8") y,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        );
    }
}

/// `n ≥ 1` consecutive interior output pixels of 8 channels: [`dw_pixel`]'s work in one `asm!`
/// loop, the input base advancing by `adv` bytes and the output by `c` bytes per pixel.
///
/// # Safety
/// MVE; for each of the `n` pixels, the 9 taps at `base + k·adv + ky·row + kx·c` readable (8
/// bytes each) and 8 bytes at `y + k·c` writable; `wst` 144 bytes; `ctx.lut` null or 256
/// bytes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn dw_run(
    base: *const i8,
    c: usize,
    row: usize,
    adv: usize,
    wst: *const i16,
    ctx: &DwCtx,
    y: *mut i8,
    n: usize,
) {
    // SAFETY: reads and writes per the contract; registers declared (q0–q7 = s0–s31); no
    // stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "2:",
            "mov r3, r9",
            "vldrw.32 q6, [r5]",
            "vldrw.32 q7, [r5, #16]",
            "mov r4, r0",
            dw_tap!(),
            "add r4, r11",
            dw_tap!(),
            "add r4, r11",
            dw_tap!(),
            "add r4, r0, r2",
            dw_tap!(),
            "add r4, r11",
            dw_tap!(),
            "add r4, r11",
            dw_tap!(),
            "add r4, r0, r2, lsl #1",
            dw_tap!(),
            "add r4, r11",
            dw_tap!(),
            "add r4, r11",
            dw_tap!(),
            "vldrw.32 q4, [r5, #32]",
            "vldrw.32 q5, [r5, #48]",
            "vrmulh.s32 q6, q6, q4",
            "vrmulh.s32 q7, q7, q5",
            "ldr r4, [r5, #64]",
            "vdup.32 q4, r4",
            "vadd.i32 q6, q6, q4",
            "vadd.i32 q7, q7, q4",
            "vqmovnb.s32 q0, q6",
            "vqmovnt.s32 q0, q7",
            "vqmovnb.s16 q0, q0",
            "ldr r4, [r5, #68]",
            "cbz r4, 3f",
            "vmovlb.s8 q0, q0",
            "vmov.i16 q1, #128",
            "vadd.i16 q0, q0, q1",
            "vldrb.u16 q1, [r4, q0]",
            "vstrb.16 q1, [r1]",
            "b 4f",
            "3:",
            "vstrb.16 q0, [r1]",
            "4:",
            "add r0, r10",
            "add r1, r11",
            "subs lr, #1",
            "bne 2b",
            inout("r0") base => _,
            inout("r1") y => _,
            in("r2") row,
            out("r3") _,
            out("r4") _,
            in("r5") ctx as *const DwCtx,
            in("r9") wst,
            in("r10") adv,
            in("r11") c,
            inout("lr") n => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
        );
    }
}

/// Int8 depthwise 3×3 with Helium (`VMULLB`/`VMULLT.S16` on 8 channels, exact `i16` products
/// of raw inputs and weights summed in `i32`, the input zero point folded into the bias; border
/// pixels read a 3×3 patch padded with the zero point, so padded taps add `(z − z)·w = 0` as in
/// the reference); `false` (nothing written) unless MVE is allowed, `c % 8 == 0`, the zero
/// point is in `-128..=127` and the shift in `9..=32`: the DSP kernel runs then. Shapes
/// validated by the caller.
pub(crate) fn depthwise(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) -> bool {
    let rq = Rq::new(q.shift);
    let z = q.in_zero;
    if !crate::kernels::cpu::mve()
        || s.c == 0
        || s.c % 8 != 0
        || !(-128..=127).contains(&z)
        || rq.mode != RqMode::Mulr
        || (s.stride != 1 && s.stride != 2)
    {
        return false;
    }
    let (h, w, c, st) = (s.h, s.w, s.c, s.stride);
    let (ho, wo) = (s.ho(), s.wo());
    let (Some(nx), Some(ny)) = (
        h.checked_mul(w).and_then(|v| v.checked_mul(c)),
        ho.checked_mul(wo).and_then(|v| v.checked_mul(c)),
    ) else {
        return false;
    };
    if x.len() < nx
        || y.len() < ny
        || q.weight.len() < 9 * c
        || q.mult.len() < c
        || q.lut.is_some_and(|t| t.len() < 256)
    {
        return false;
    }
    let lut = q.lut.map_or(core::ptr::null(), |t| t.as_ptr());
    for cb in (0..c).step_by(8) {
        let mut wst = crate::Aligned([0i16; 72]);
        let mut ctx = DwCtx {
            bias: [0; 8],
            mult: [0; 8],
            zero: q.out_zero,
            lut,
        };
        for j in 0..8 {
            let wk = &q.weight[(cb + j) * 9..(cb + j) * 9 + 9];
            let mut b = q.bias_at(cb + j);
            for (t, &wv) in wk.iter().enumerate() {
                wst.0[t * 8 + j] = wv as i16;
                b = b.wrapping_sub(z.wrapping_mul(wv as i32));
            }
            let at = (j % 2) * 4 + j / 2;
            ctx.bias[at] = b;
            ctx.mult[at] = rq.mult(q.mult[cb + j]);
        }
        // Interior output columns: ox in ox0..ox1 (all 9 taps inside the map).
        let ox0 = 1usize.div_ceil(st);
        let ox1 = if w >= 2 { (w - 2) / st + 1 } else { 0 };
        for oy in 0..ho {
            let cy = oy * st;
            let rows_in = cy >= 1 && cy + 1 < h;
            let mut ox = 0;
            while ox < wo {
                let cx = ox * st;
                if rows_in && ox >= ox0 && ox < ox1 {
                    let n = ox1 - ox;
                    let at = ((cy - 1) * w + cx - 1) * c + cb;
                    let last = at + (n - 1) * st * c;
                    // Checked: the last pixel's last tap and its output are inside x and y.
                    let _ = &x[last + (2 * w + 2) * c..last + (2 * w + 2) * c + 8];
                    let yo = (oy * wo + ox) * c + cb;
                    let _ = &y[yo + (n - 1) * c..yo + (n - 1) * c + 8];
                    // SAFETY: MVE per the feature's contract; the taps of the n pixels are
                    // inside `x` (the last one checked above, every other lower), their
                    // outputs inside `y` (likewise); `wst` 144 bytes; table 256 bytes or null.
                    unsafe {
                        dw_run(
                            x[at..].as_ptr(),
                            c,
                            w * c,
                            st * c,
                            wst.0.as_ptr(),
                            &ctx,
                            y[yo..].as_mut_ptr(),
                            n,
                        )
                    };
                    ox = ox1;
                    continue;
                }
                let out = &mut y[(oy * wo + ox) * c + cb..(oy * wo + ox) * c + cb + 8];
                let mut patch = [z as i8; 72];
                for ky in 0..3 {
                    let Some(iy) = (cy + ky).checked_sub(1).filter(|&v| v < h) else {
                        continue;
                    };
                    for kx in 0..3 {
                        let Some(ix) = (cx + kx).checked_sub(1).filter(|&v| v < w) else {
                            continue;
                        };
                        let at = (iy * w + ix) * c + cb;
                        let t = (ky * 3 + kx) * 8;
                        patch[t..t + 8].copy_from_slice(&x[at..at + 8]);
                    }
                }
                // SAFETY: MVE; the taps in `patch` (72 bytes: step 8, row 24); `wst` 144 bytes;
                // `out` 8 bytes; table 256 bytes or null.
                unsafe {
                    dw_pixel(
                        patch.as_ptr(),
                        8,
                        24,
                        wst.0.as_ptr(),
                        &ctx,
                        out.as_mut_ptr(),
                    )
                };
                ox += 1;
            }
        }
    }
    true
}

/// One row of 3 taps of [`dw_pixel`]: per tap `VLDRB.S16` (8 input bytes), `VLDRH` (8
/// weights), `VMULLB`/`VMULLT.S16` and two `VADD.I32`; then the next row.
macro_rules! dw_row {
    () => {
        concat!(
            "mov r4, r0\n",
            dw_tap!(),
            "add r4, r1\n",
            dw_tap!(),
            "add r4, r1\n",
            dw_tap!(),
            "add r0, r2\n",
        )
    };
}
macro_rules! dw_tap {
    () => {
        concat!(
            "vldrb.s16 q0, [r4]\n",
            "vldrh.u16 q1, [r3], #16\n",
            "vmullb.s16 q2, q0, q1\n",
            "vmullt.s16 q3, q0, q1\n",
            "vadd.i32 q6, q6, q2\n",
            "vadd.i32 q7, q7, q3\n",
        )
    };
}
use {dw_row, dw_tap};
