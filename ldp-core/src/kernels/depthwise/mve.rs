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
    if depthwise_cm(s, x, q, y) {
        return true;
    }
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

// ---------------------------------------------------------------------------------------------
// Depthwise 3×3, channel-major (one weight scalar per tap, 4 output pixels per vector)
// ---------------------------------------------------------------------------------------------

/// Bytes of one transposed input row of one channel in [`depthwise_cm`]'s buffer (stride 1:
/// the row padded with `z` on both sides; stride 2: its even padded columns at 0, the odd ones
/// at [`CM_ODD`]). The taps' offsets from the middle row, `±CM_ROW + {0, 1, 2, CM_ODD}`, must
/// fit `VLDRB`'s 7-bit immediate.
const CM_ROW: usize = 84;
/// Where the odd padded columns start in a stride-2 row.
const CM_ODD: usize = 42;
/// One channel's three rows.
const CM_CH: usize = 3 * CM_ROW;
/// The widest input taken (stride 1: `w + 2 ≤ CM_ROW`; stride 2: `(w+1)/2 + 1 ≤ CM_ODD`).
const CM_MAX_W: usize = 80;

/// Where a stride-2 channel's tap pointer sits past its middle row's first byte, so that every
/// tap of 8 output pixels (`±CM_ROW + {0, 1, CM_ODD} + {0, 4}`) fits `VLDRB`'s 7-bit immediate.
const CM_SHIFT2: usize = CM_ODD;

/// Per rotation `r` of the three row slots: the weight index (`ky·3 + kx`) of register
/// position `p = slot·3 + kx` ([`CmCh`]: `w0`, then `w`), row `ky = (slot − r) mod 3`.
const CM_ROT: [[u8; 9]; 3] = {
    let mut t = [[0u8; 9]; 3];
    let mut r = 0;
    while r < 3 {
        let mut p = 0;
        while p < 9 {
            t[r][p] = (((p / 3 + 3 - r) % 3) * 3 + p % 3) as u8;
            p += 1;
        }
        r += 1;
    }
    t
};

/// What [`cm_block`] reads for one channel (layout fixed by the `asm!`: one `LDM` loads `mid`
/// to `groups` into r0, r2–r5, r8–r12, lr).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct CmCh {
    /// The tap pointer of the channel's first output pixel: its middle row in the buffer (plus
    /// [`CM_SHIFT2`] for stride 2).
    mid: *const i8,
    /// Bias with the input zero point folded in.
    bias: i32,
    /// Weights 1 to 8.
    w: [i32; 8],
    /// Groups of 8 output pixels (the 8-pixel loop; 0 when its 16-bit store offsets would not
    /// fit).
    groups: u32,
    /// Output pixels left after the groups (the 4-pixel loop).
    tail: u32,
    /// Weight 0, 4 times (`VMLAS`).
    w0: [i32; 4],
    /// Multiplier (`SMMULR` form), 4 times.
    mult: [i32; 4],
    /// Store offsets of 8 output pixels in the lane order of `VQMOVNB`/`VQMOVNT` (pixels 0–3
    /// in the even halfwords, 4–7 in the odd ones): `0, 4c, c, 5c, 2c, 6c, 3c, 7c`.
    off8: [u16; 8],
    /// Store offsets of the tail's first 4 pixels: `(8·groups + i)·c`.
    off4: [i32; 4],
    /// `4c`, 4 times.
    step4: [i32; 4],
}

// The `asm!` of [`cm_block`] steps by these.
const _: () = assert!(core::mem::size_of::<CmCh>() == 128 && CM_CH == 252);

/// What [`cm_block`] reads for all channels (layout fixed by the `asm!`).
#[repr(C, align(16))]
struct CmHead {
    /// Output zero point, 4 times.
    zero: [i32; 4],
    /// `8c`, 8 times (the 8-pixel loop's store offsets step).
    step8: [u16; 8],
}

/// Transposes `pairs ≥ 1` pairs of input pixels (8 channels each, `c` bytes apart) into the
/// buffer: pixel `2k` to `dst + k·inc + off0[ch]`, pixel `2k+1` to `dst + k·inc + off1[ch]`.
///
/// # Safety
/// MVE; `2·pairs` pixels of 8 bytes readable at `x + i·c`; every written byte inside the buffer.
#[inline(always)]
unsafe fn cm_transpose(
    x: *const i8,
    c: usize,
    dst: *mut i8,
    inc: usize,
    offs: &[[u16; 8]; 2],
    pairs: usize,
) {
    // SAFETY: per the contract; registers declared; no stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "vldrh.u16 q7, [r5]",
            "vldrh.u16 q6, [r5, #16]",
            "dls lr, lr",
            "2:",
            "vldrb.u16 q0, [r0]",
            "vldrb.u16 q1, [r2]",
            "add r0, r3",
            "add r2, r3",
            "vstrb.16 q0, [r1, q7]",
            "vstrb.16 q1, [r1, q6]",
            "add r1, r4",
            "le lr, 2b",
            inout("r0") x => _,
            inout("r1") dst => _,
            inout("r2") x.wrapping_add(c) => _,
            in("r3") 2 * c,
            in("r4") inc,
            in("r5") offs.as_ptr(),
            inout("lr") pairs => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        );
    }
}

/// [`cm_transpose`] for `quads ≥ 1` times two pairs per iteration: pixels `4k`, `4k+1`, `4k+2`,
/// `4k+3` to `dst + k·2·inc + offs[0..4][ch]` (`offs[2] = offs[0] + inc`, `offs[3] = offs[1] +
/// inc`).
///
/// # Safety
/// MVE; `4·quads` pixels of 8 bytes readable at `x + i·c`; every written byte inside the buffer.
#[inline(always)]
unsafe fn cm_transpose4(
    x: *const i8,
    c: usize,
    dst: *mut i8,
    inc: usize,
    offs: &[[u16; 8]; 4],
    quads: usize,
) {
    // SAFETY: per the contract; registers declared; no stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "vldrh.u16 q7, [r5]",
            "vldrh.u16 q6, [r5, #16]",
            "vldrh.u16 q5, [r5, #32]",
            "vldrh.u16 q4, [r5, #48]",
            "add r5, r2, r3, lsr #1",
            "dls lr, lr",
            "2:",
            "vldrb.u16 q0, [r0]",
            "vldrb.u16 q1, [r2]",
            "vldrb.u16 q2, [r4]",
            "vldrb.u16 q3, [r5]",
            "add r0, r3",
            "add r2, r3",
            "add r4, r3",
            "add r5, r3",
            "vstrb.16 q0, [r1, q7]",
            "vstrb.16 q1, [r1, q6]",
            "vstrb.16 q2, [r1, q5]",
            "vstrb.16 q3, [r1, q4]",
            "add r1, r8",
            "le lr, 2b",
            inout("r0") x => _,
            inout("r1") dst => _,
            inout("r2") x.wrapping_add(c) => _,
            in("r3") 4 * c,
            inout("r4") x.wrapping_add(2 * c) => _,
            inout("r5") offs.as_ptr() => _,
            in("r8") 2 * inc,
            inout("lr") quads => _,
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

/// [`cm_transpose4`] with gathered loads, for `rows` (1 or 2) input rows: per row `quads ≥ 1`
/// iterations of 4 pixels, read by `VLDRB.U16` with the offset vectors `lds[i] = i·c +
/// (0..8)` from one pointer (one add per iteration instead of four), written to `dst + k·2·inc
/// + offs[0..2][ch]` (pixels `4k`, `4k+1`) and `dst + inc + k·2·inc + offs[0..2][ch]` (pixels
/// `4k+2`, `4k+3`); the first row from `x` to `dst`, the second from `x2` to `dst2`.
///
/// # Safety
/// MVE; `4·quads` pixels of 8 bytes readable at `x + i·c` (and at `x2 + i·c` if `rows = 2`);
/// `lds` as above (no 16-bit wrap: `3c + 7 ≤ 0xffff`); every written byte inside the buffer;
/// `rows` 1 or 2.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn cm_transpose4g(
    x: *const i8,
    x2: *const i8,
    c: usize,
    dst: *mut i8,
    dst2: *mut i8,
    inc: usize,
    lds: &[[u16; 8]; 4],
    offs: &[[u16; 8]; 2],
    quads: usize,
    rows: usize,
) {
    // SAFETY: per the contract; registers declared; no stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "vldrh.u16 q2, [r5]",
            "vldrh.u16 q3, [r5, #16]",
            "vldrh.u16 q4, [r5, #32]",
            "vldrh.u16 q5, [r5, #48]",
            "vldrh.u16 q6, [r4]",
            "vldrh.u16 q7, [r4, #16]",
            "3:",
            "add r2, r1, r8, lsr #1",
            "dls lr, r11",
            "2:",
            "vldrb.u16 q0, [r0, q2]",
            "vldrb.u16 q1, [r0, q3]",
            "vstrb.16 q0, [r1, q6]",
            "vstrb.16 q1, [r1, q7]",
            "vldrb.u16 q0, [r0, q4]",
            "vldrb.u16 q1, [r0, q5]",
            "vstrb.16 q0, [r2, q6]",
            "vstrb.16 q1, [r2, q7]",
            "add r0, r3",
            "add r1, r8",
            "add r2, r8",
            "le lr, 2b",
            "mov r0, r10",
            "mov r1, r9",
            "subs r12, #1",
            "bne 3b",
            inout("r0") x => _,
            inout("r1") dst => _,
            out("r2") _,
            in("r3") 4 * c,
            in("r4") offs.as_ptr(),
            in("r5") lds.as_ptr(),
            in("r8") 2 * inc,
            in("r9") dst2,
            in("r10") x2,
            in("r11") quads,
            inout("r12") rows => _,
            out("lr") _,
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

/// One tap over 8 output pixels: two `VLDRB.S32` (pixels 0–3 at `$o`, 4–7 at `$o4`) and two
/// `VMLA.I32` by the weight `$r` into q0 and q5.
macro_rules! cm_tap8 {
    ($o:literal, $o4:literal, $r:literal) => {
        concat!(
            "vldrb.s32 q1, [r0, #",
            $o,
            "]\n",
            "vmla.i32 q0, q1, ",
            $r,
            "\n",
            "vldrb.s32 q1, [r0, #",
            $o4,
            "]\n",
            "vmla.i32 q5, q1, ",
            $r,
            "\n",
        )
    };
}

/// The 9 taps of one channel over 8 output pixels (q0: pixels 0–3, q5: 4–7): tap 0 by
/// `VMLAS` (`x·w0 + bias`), seven taps by [`cm_tap8`], the last one (at offset 0) with the
/// pointer post-incremented by 8.
macro_rules! cm_taps8 {
    ($a:literal, $a4:literal, $($o:literal, $o4:literal, $r:literal,)* ; $p:literal) => {
        concat!(
            "vldrb.s32 q0, [r0, #", $a, "]\n",
            "vmlas.i32 q0, q2, r2\n",
            "vldrb.s32 q5, [r0, #", $a4, "]\n",
            "vmlas.i32 q5, q2, r2\n",
            $(cm_tap8!($o, $o4, $r),)*
            "vldrb.s32 q1, [r0, #4]\n",
            "vmla.i32 q5, q1, ", $p, "\n",
            "vldrb.s32 q1, [r0], #8\n",
            "vmla.i32 q0, q1, ", $p, "\n",
        )
    };
}

/// The 9 taps of one channel over 4 output pixels (q0), the last one post-incremented by 4.
macro_rules! cm_taps4 {
    ($a:literal, $a4:literal, $($o:literal, $o4:literal, $r:literal,)* ; $p:literal) => {
        concat!(
            "vldrb.s32 q0, [r0, #", $a, "]\n",
            "vmlas.i32 q0, q2, r2\n",
            $("vldrb.s32 q1, [r0, #", $o, "]\n", "vmla.i32 q0, q1, ", $r, "\n",)*
            "vldrb.s32 q1, [r0], #4\n",
            "vmla.i32 q0, q1, ", $p, "\n",
        )
    };
}

/// One output row of 8 channels: channel `k` from its record `chs[k]` (tap pointer, weights,
/// pixel counts), output pixel `ox` to `y + k + ox·c`. Per channel: `groups` iterations of 8
/// pixels (two accumulators; `VQMOVNB`/`VQMOVNT` interleave them into 16-bit lanes, one
/// `VSTRB.16` scatter stores all 8), then the `tail` pixels 4 at a time (tail-predicated). The
/// record pointer and its end live in r7 and r6 (saved on the stack: every other core
/// register holds a tap, a weight or a pointer).
///
/// # Safety
/// MVE; for every channel every tap of its `groups·8 + tail` pixels (`mid + ox + {−CM_ROW −
/// shift..=CM_ROW + CM_ODD + 1 − shift}`, `shift` = [`CM_SHIFT2`] for stride 2, else 0)
/// readable; `y + k + ox·c` writable for `ox < groups·8 + tail`, `k < 8`; the records' offsets
/// as documented on [`CmCh`].
#[inline(always)]
unsafe fn cm_block<const S2: bool>(y: *mut i8, head: &CmHead, chs: &[CmCh; 8]) {
    macro_rules! body {
        ($taps8:expr, $taps4:expr) => {
            // SAFETY: per the contract (the tail predication keeps the inactive lanes from
            // memory); registers declared (q0–q7 = s0–s31); r6 and r7 (not allocatable) saved
            // and restored on the stack, sp back where it was.
            unsafe {
                asm!(
                    ".cpu cortex-m55",
                    "push {{r6, r7}}",
                    "mov r7, lr",
                    "add r6, r7, #1024",
                    "vldrw.32 q4, [r2]",
                    "vldrw.32 q6, [r2, #16]",
                    "3:",
                    "vldrw.32 q2, [r7, #48]",
                    "vldrw.32 q3, [r7, #64]",
                    "vldrw.32 q7, [r7, #80]",
                    "ldm.w r7, {{r0, r2-r5, r8-r12, lr}}",
                    "wls lr, lr, 4f",
                    "2:",
                    $taps8,
                    "vrmulh.s32 q0, q0, q3",
                    "vrmulh.s32 q5, q5, q3",
                    "vadd.i32 q0, q0, q4",
                    "vadd.i32 q5, q5, q4",
                    "vqmovnb.s32 q0, q0",
                    "vqmovnt.s32 q0, q5",
                    "vqmovnb.s16 q0, q0",
                    "vstrb.16 q0, [r1, q7]",
                    "vadd.i16 q7, q7, q6",
                    "le lr, 2b",
                    "4:",
                    "ldr lr, [r7, #44]",
                    "cmp lr, #0",
                    "beq 5f",
                    "vldrw.32 q7, [r7, #96]",
                    "vldrw.32 q5, [r7, #112]",
                    "dlstp.32 lr, lr",
                    "6:",
                    $taps4,
                    "vrmulh.s32 q0, q0, q3",
                    "vadd.i32 q0, q0, q4",
                    "vqmovnb.s32 q0, q0",
                    "vqmovnb.s16 q0, q0",
                    "vstrb.32 q0, [r1, q7]",
                    "vadd.i32 q7, q7, q5",
                    "letp lr, 6b",
                    "5:",
                    "adds r1, #1",
                    "adds r7, #128",
                    "cmp r7, r6",
                    "bne 3b",
                    "pop {{r6, r7}}",
                    inout("r1") y => _,
                    inout("r2") head as *const CmHead => _,
                    out("r0") _,
                    out("r3") _,
                    out("r4") _,
                    out("r5") _,
                    out("r8") _,
                    out("r9") _,
                    out("r10") _,
                    out("r11") _,
                    out("r12") _,
                    inout("lr") chs.as_ptr() => _,
                    out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                    out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                    out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                    out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                    out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                    out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                    out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                    out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                )
            }
        };
    }
    // Weights: q2 (tap 0, with the bias in r2), r3, r4 (row 0), r5 (row 1, kx 0), r8, r9 (row
    // 1), r10, r11, r12 (row 2). Offsets of kx = 0, 1, 2 from the middle row: stride 1 `0, 1,
    // 2`; stride 2 `0, CM_ODD, 1`, less CM_SHIFT2 (the tap at offset 0, post-incremented, is
    // row 1 kx 0 for stride 1 and row 1 kx 1 for stride 2).
    if S2 {
        body!(
            cm_taps8!("-126", "-122",
                "-84", "-80", "r3", "-125", "-121", "r4", "-42", "-38", "r5",
                "-41", "-37", "r9", "42", "46", "r10", "84", "88", "r11", "43", "47", "r12",;
                "r8"),
            cm_taps4!("-126", "-122",
                "-84", "-80", "r3", "-125", "-121", "r4", "-42", "-38", "r5",
                "-41", "-37", "r9", "42", "46", "r10", "84", "88", "r11", "43", "47", "r12",;
                "r8")
        )
    } else {
        body!(
            cm_taps8!("-84", "-80",
                "-83", "-79", "r3", "-82", "-78", "r4", "1", "5", "r8",
                "2", "6", "r9", "84", "88", "r10", "85", "89", "r11", "86", "90", "r12",;
                "r5"),
            cm_taps4!("-84", "-80",
                "-83", "-79", "r3", "-82", "-78", "r4", "1", "5", "r8",
                "2", "6", "r9", "84", "88", "r10", "85", "89", "r11", "86", "90", "r12",;
                "r5")
        )
    }
}

/// [`depthwise`] in channel-major form: per block of 8 channels and output row, the three input
/// rows are transposed into a stack buffer (padded with `z`, stride 2 split into even and odd
/// columns), then per channel and 8 output pixels a tap is two `VLDRB.S32` (4 pixels each) +
/// two `VMLA.I32` by the weight scalar, the bias with `z·Σw` folded in (wrapping, exact mod
/// 2³²), `VRMULH` (= `SMMULR`), the zero point, saturating narrows and an 8-lane byte scatter
/// back to channels-last (the last `wo mod 8` pixels 4 at a time, tail-predicated). `false` (nothing
/// written) for shapes it does not take (`w > CM_MAX_W`, a table, or [`depthwise`]'s limits).
fn depthwise_cm(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) -> bool {
    let rq = Rq::new(q.shift);
    let z = q.in_zero;
    let (h, w, c, st) = (s.h, s.w, s.c, s.stride);
    if !crate::kernels::cpu::mve()
        || c == 0
        || c % 8 != 0
        || w == 0
        || h == 0
        || w > CM_MAX_W
        || q.lut.is_some()
        || !(-128..=127).contains(&z)
        || rq.mode != RqMode::Mulr
        || (st != 1 && st != 2)
        || c > (i32::MAX as usize) / 4
    {
        return false;
    }
    let (ho, wo) = (s.ho(), s.wo());
    let (Some(nx), Some(ny)) = (
        h.checked_mul(w).and_then(|v| v.checked_mul(c)),
        ho.checked_mul(wo).and_then(|v| v.checked_mul(c)),
    ) else {
        return false;
    };
    if x.len() < nx || y.len() < ny || q.weight.len() < 9 * c || q.mult.len() < c {
        return false;
    }
    // Where padded column p of a row lands.
    let pos = |p: usize| {
        if st == 1 {
            p
        } else if p % 2 == 0 {
            p / 2
        } else {
            CM_ODD + p / 2
        }
    };
    let mut offs = [[0u16; 8]; 2];
    for ch in 0..8 {
        let o = (ch * CM_CH) as u16;
        if st == 1 {
            offs[0][ch] = o;
            offs[1][ch] = o + 1;
        } else {
            offs[0][ch] = o + CM_ODD as u16;
            offs[1][ch] = o + 1;
        }
    }
    let (start, inc) = if st == 1 { (1, 2) } else { (0, 1) };
    let mut offs4 = [offs[0], offs[1], offs[0], offs[1]];
    for ch in 0..8 {
        offs4[2][ch] += inc as u16;
        offs4[3][ch] += inc as u16;
    }
    let ci = c as i32;
    // The 8-pixel loop's 16-bit store offsets reach `(8·groups − 1)·c`.
    let groups = if (wo / 8 * 8).checked_mul(c).is_some_and(|v| v <= 0xffff) {
        wo / 8
    } else {
        0
    };
    let p0 = groups * 8;
    let head = CmHead {
        zero: [q.out_zero; 4],
        // `8c ≤ 0xffff` when there are groups.
        step8: [if groups > 0 { (8 * c) as u16 } else { 0 }; 8],
    };
    // Padded columns never written by the transposes stay `z`. Every access below goes through
    // `bp` (the records keep pointers into the buffer).
    let mut buf = [z as i8; 8 * CM_CH];
    let bp = buf.as_mut_ptr();
    let shift = if st == 2 { CM_SHIFT2 } else { 0 };
    // Only used when `7c ≤ (8·groups − 1)·c ≤ 0xffff`.
    let off8 = core::array::from_fn(|i| ((i % 2) * 4 + i / 2).wrapping_mul(c) as u16);
    // Per rotation `r` of the three row slots (row `ky` in slot `(r + ky) % 3`).
    let proto = CmCh {
        mid: bp,
        bias: 0,
        w: [0; 8],
        groups: groups as u32,
        tail: (wo - p0) as u32,
        w0: [0; 4],
        mult: [0; 4],
        off8,
        off4: core::array::from_fn(|i| (p0 + i).wrapping_mul(c) as i32),
        step4: [4 * ci; 4],
    };
    let mut chs = [[proto; 8]; 3];
    for rot in chs.iter_mut() {
        for (k, cx) in rot.iter_mut().enumerate() {
            cx.mid = bp.wrapping_add(CM_ROW + k * CM_CH + shift);
        }
    }
    let (xp, yp, row_bytes) = (x.as_ptr(), y.as_mut_ptr(), w * c);
    let (pairs, quads) = (w / 2, w / 4);
    let odd_pair = pairs % 2 == 1;
    // The gathered loads' 16-bit offsets `i·c + ch` (i < 4, ch < 8) when they fit.
    let gather = c <= (0xffff - 7) / 3;
    let lds: [[u16; 8]; 4] =
        core::array::from_fn(|i| core::array::from_fn(|ch| (i * c + ch) as u16));
    // Checked once: the largest byte a row transpose writes (the last pair, the odd last pixel)
    // and the highest tap of channel 7 are inside the buffer.
    let slot_max = 2 * CM_ROW;
    if pairs > 0 {
        let last = slot_max + start + (pairs - 1) * inc + offs[0][7].max(offs[1][7]) as usize;
        assert!(last < 8 * CM_CH);
    }
    assert!(7 * CM_CH + slot_max + pos(w) < 8 * CM_CH);
    assert!(7 * CM_CH + CM_ROW + (wo - 1) + if st == 1 { 86 } else { 126 } < 8 * CM_CH);
    for cb in (0..c).step_by(8) {
        for j in 0..8 {
            let wk = &q.weight[(cb + j) * 9..(cb + j) * 9 + 9];
            let mut b = q.bias_at(cb + j);
            for &wv in wk {
                b = b.wrapping_sub(z.wrapping_mul(wv as i32));
            }
            let m = rq.mult(q.mult[cb + j]);
            for (rot, cx) in CM_ROT.iter().zip(chs.iter_mut()) {
                let cx = &mut cx[j];
                cx.w0 = [wk[rot[0] as usize] as i32; 4];
                for (v, &t) in cx.w.iter_mut().zip(&rot[1..]) {
                    *v = wk[t as usize] as i32;
                }
                cx.bias = b;
                cx.mult = [m; 4];
            }
        }
        // Padded input row `p` (input row `p − 1`; 0 and `h + 1` are the zero padding) goes to
        // slot `(p + 2) % 3`; the rows are loaded in order, `next` is the next one, `sl` its
        // slot. Output row `oy` reads padded rows `oy·st + ky` with the rotation `rot` =
        // `(oy·st + 2) % 3`.
        let (mut next, mut sl, mut rot) = (0usize, 2usize, 2usize);
        for oy in 0..ho {
            while next < oy * st + 3 {
                let slot = sl * CM_ROW;
                let sl2 = if sl == 2 { 0 } else { sl + 1 };
                if next == 0 || next > h {
                    for ch in 0..8 {
                        // SAFETY: `ch·CM_CH + slot + CM_ROW ≤ 8·CM_CH`: inside `buf`.
                        unsafe {
                            core::ptr::write_bytes(bp.add(ch * CM_CH + slot), z as u8, CM_ROW)
                        };
                    }
                    next += 1;
                    sl = sl2;
                    continue;
                }
                // Two input rows at once when the output row needs both and both are inside.
                let rows = if next + 1 < oy * st + 3 && next < h {
                    2
                } else {
                    1
                };
                // SAFETY: MVE; input rows `next − 1` (and `next` if `rows = 2`) `< h`: every
                // pixel read (`ix < w`, channels `cb..cb + 8 ≤ c`) is inside `x` (`x.len() ≥
                // h·w·c`); every byte written inside `buf` (the largest one checked above, any
                // slot).
                unsafe {
                    let src = xp.add((next - 1) * row_bytes + cb);
                    let dst = bp.add(slot + start);
                    let dst2 = bp.add(sl2 * CM_ROW + start);
                    if quads > 0 {
                        if gather {
                            let x2 = src.wrapping_add(row_bytes);
                            cm_transpose4g(src, x2, c, dst, dst2, inc, &lds, &offs, quads, rows);
                        } else {
                            cm_transpose4(src, c, dst, inc, &offs4, quads);
                            if rows == 2 {
                                cm_transpose4(src.add(row_bytes), c, dst2, inc, &offs4, quads);
                            }
                        }
                    }
                    if odd_pair || w % 2 == 1 {
                        for (i, sli) in [sl, sl2].into_iter().enumerate().take(rows) {
                            let src = src.add(i * row_bytes);
                            if odd_pair {
                                let k = 2 * quads;
                                let d = bp.add(sli * CM_ROW + start + k * inc);
                                cm_transpose(src.add(2 * k * c), c, d, inc, &offs, 1);
                            }
                            if w % 2 == 1 {
                                for ch in 0..8 {
                                    *bp.add(ch * CM_CH + sli * CM_ROW + pos(w)) =
                                        *src.add((w - 1) * c + ch);
                                }
                            }
                        }
                    }
                }
                next += rows;
                sl = if rows == 1 {
                    sl2
                } else if sl2 == 2 {
                    0
                } else {
                    sl2 + 1
                };
            }
            // SAFETY: MVE; the taps of channel k lie in `mid + ox + (−CM_ROW − shift ..=
            // CM_ROW + CM_ODD + 1 − shift)` for ox < wo (mid = buf + CM_ROW + k·CM_CH + shift):
            // inside channel k's CM_CH bytes of `buf` (checked above); the outputs
            // `y + oy·wo·c + cb + k + ox·c` (k < 8, ox < wo) inside `y` (`y.len() ≥ ho·wo·c`,
            // `cb + 8 ≤ c`); `groups·8 + tail = wo`, `off8` and `step8` (16-bit) do not wrap
            // for the grouped pixels, `off4`/`step4` (32-bit) are `(8·groups + i)·c` and `4c`.
            unsafe {
                let yo = yp.add(oy * wo * c + cb);
                if st == 2 {
                    cm_block::<true>(yo, &head, &chs[rot])
                } else {
                    cm_block::<false>(yo, &head, &chs[rot])
                }
            };
            rot += st;
            if rot >= 3 {
                rot -= 3;
            }
        }
    }
    true
}
