//! int8 depthwise 3×3 convolution for Cortex-M with the DSP extension (SMLAD on tap pairs, 4
//! channels per word; see `kernels::isa::arm_dsp` for the exactness rules).

use crate::kernels::depthwise::DwShape;
#[cfg(ldp_arm_dsp)]
use crate::kernels::isa::arm_dsp::dsp_on;
use crate::kernels::isa::arm_dsp::*;
use crate::quant::fixed::requant;
#[cfg(not(ldp_arm_dsp))]
use crate::quant::fixed::sat_i8;
use crate::quant::kernels::ConvQ;

// ---------------------------------------------------------------------------------------------
// Depthwise 3×3
// ---------------------------------------------------------------------------------------------

/// Channel quads per pass (128 channels).
const DW_CHUNK_QUADS: usize = 32;
/// Staged words per channel quad: bias (4), tap pairs (t2,t5), (t0,t1), (t3,t4) (4 each), tap
/// t8 (2), pair (t6,t7) (4), multipliers (4) — in the order the loop consumes them.
const DW_BLOCK_WORDS: usize = 26;

/// `(lo, hi)` as an int16 pair word.
#[inline(always)]
fn pair(lo: i8, hi: i8) -> u32 {
    (lo as i16 as u16 as u32) | ((hi as i16 as u16 as u32) << 16)
}

/// Stages channels `c0..c0 + 4·dst.len()/26` (whole quads).
fn dw_stage(dst: &mut [u32], q: &ConvQ<'_>, c0: usize, rq: &Rq) {
    let z = q.in_zero;
    for (j, d) in dst.chunks_exact_mut(DW_BLOCK_WORDS).enumerate() {
        for i in 0..4 {
            let c = c0 + 4 * j + i;
            let w = &q.weight[c * 9..c * 9 + 9];
            let sum: i32 = w.iter().map(|&v| v as i32).sum();
            d[i] = q.bias_at(c).wrapping_sub(z.wrapping_mul(sum)) as u32;
            d[4 + i] = pair(w[2], w[5]);
            d[8 + i] = pair(w[0], w[1]);
            d[12 + i] = pair(w[3], w[4]);
            d[18 + i] = pair(w[6], w[7]);
            d[22 + i] = rq.mult(q.mult[c]) as u32;
        }
        d[16] = pair(w8(q, c0 + 4 * j), w8(q, c0 + 4 * j + 2));
        d[17] = pair(w8(q, c0 + 4 * j + 1), w8(q, c0 + 4 * j + 3));
    }
}

#[inline(always)]
fn w8(q: &ConvQ<'_>, c: usize) -> i8 {
    q.weight[c * 9 + 8]
}

/// Row pointers of one output pixel: the top-left input pixel of its 3×3 window in each row
/// (channel `c0` of the pass), and the byte distance between neighbouring pixels.
#[derive(Clone, Copy)]
struct Win {
    rows: [*const i8; 3],
    stride: usize,
}

/// Computes `nq = ws.len()/26` channel quads of one output pixel into `out[..4·nq]`.
///
/// # Safety
/// For every row pointer `r` and quad `j < nq`, the four bytes at `r + 4j`, `r + stride + 4j` and
/// `r + 2·stride + 4j` must be readable; `out` must have room for `4·nq` bytes.
#[cfg(ldp_arm_dsp)]
#[inline(always)]
unsafe fn dw_pixel(win: Win, ws: &[u32], rq: &Rq, out_zero: i32, out: *mut i8) {
    let wend = ws.as_ptr_range().end;
    macro_rules! pair {
        () => {
            concat!(
                "pkhbt r8, r4, r5, lsl #16\n",
                "pkhtb r4, r5, r4, asr #16\n",
                "ldm r7!, {{r9, r10}}\n",
                "sxtb16 r5, r8\n",
                "smlad r0, r5, r9, r0\n",
                "sxtb16 r5, r8, ror #8\n",
                "smlad r1, r5, r10, r1\n",
                "ldm r7!, {{r9, r10}}\n",
                "sxtb16 r5, r4\n",
                "smlad r2, r5, r9, r2\n",
                "sxtb16 r5, r4, ror #8\n",
                "smlad r3, r5, r10, r3\n",
            )
        };
    }
    macro_rules! dw_loop {
        ($($rq:expr),* $(,)?) => {
            core::arch::asm!(
                dsp_on!(),
                // [sp] wend, [sp+4] out_zero, [sp+8] r6, [sp+12] r7, [sp+16] out,
                // [sp+20] round_hi, [sp+24] down.
                "push {{r4, r5, r6, r7, r8, r9, r10}}",
                "mov r6, r0",
                "mov r7, r1",
                "2:",
                "ldm r7!, {{r0, r1, r2, r3}}",
                // (t2, t5)
                "ldr r4, [r11, r6, lsl #1]",
                "ldr r5, [r12, r6, lsl #1]",
                pair!(),
                // (t0, t1)
                "ldr r5, [r11, r6]",
                "ldr r4, [r11], #4",
                pair!(),
                // (t3, t4)
                "ldr r5, [r12, r6]",
                "ldr r4, [r12], #4",
                pair!(),
                // t8
                "ldr r4, [lr, r6, lsl #1]",
                "ldm r7!, {{r9, r10}}",
                "sxtb16 r5, r4",
                "smlabb r0, r5, r9, r0",
                "smlatt r2, r5, r9, r2",
                "sxtb16 r5, r4, ror #8",
                "smlabb r1, r5, r10, r1",
                "smlatt r3, r5, r10, r3",
                // (t6, t7)
                "ldr r5, [lr, r6]",
                "ldr r4, [lr], #4",
                pair!(),
                // requantize
                "ldm r7!, {{r4, r5, r8, r9}}",
                $($rq,)*
                "ldrd r4, r5, [sp]",
                "add r0, r0, r5",
                "ssat r0, #8, r0",
                "add r1, r1, r5",
                "ssat r1, #8, r1",
                "add r2, r2, r5",
                "ssat r2, #8, r2",
                "add r3, r3, r5",
                "ssat r3, #8, r3",
                "ldr r8, [sp, #16]",
                "strb r0, [r8], #1",
                "strb r1, [r8], #1",
                "strb r2, [r8], #1",
                "strb r3, [r8], #1",
                "str r8, [sp, #16]",
                "cmp r7, r4",
                "bne 2b",
                "pop {{r4, r5, r6, r7, r8, r9, r10}}",
                inout("r0") win.stride => _,
                inout("r1") ws.as_ptr() => _,
                out("r2") _,
                out("r3") _,
                inout("r4") wend => _,
                inout("r5") out_zero => _,
                inout("r8") out => _,
                inout("r9") rq.round_hi => _,
                inout("r10") rq.down => _,
                inout("r11") win.rows[0] => _,
                inout("r12") win.rows[1] => _,
                inout("lr") win.rows[2] => _,
            )
        };
    }
    // SAFETY: the caller guarantees the reads of the three rows (the loop reads quad j of each
    // row at offsets 0, stride and 2·stride, then advances the row by 4 bytes) and the 4·nq
    // output bytes; `ws` is read from start to end exactly (26 words per iteration), as `u32`s,
    // so `LDM` addresses are aligned. r6/r7 are saved on the stack with the spilled arguments
    // and restored; the stack is balanced; every other register is declared.
    unsafe {
        match rq.mode {
            RqMode::Mulr => dw_loop!(
                "smmulr r0, r0, r4",
                "smmulr r1, r1, r5",
                "smmulr r2, r2, r8",
                "smmulr r3, r3, r9",
            ),
            _ => dw_loop!(
                "ldr r10, [sp, #20]",
                "smmla r0, r0, r4, r10",
                "smmla r1, r1, r5, r10",
                "smmla r2, r2, r8, r10",
                "smmla r3, r3, r9, r10",
                "ldr r4, [sp, #24]",
                "asr r0, r0, r4",
                "asr r1, r1, r4",
                "asr r2, r2, r4",
                "asr r3, r3, r4",
            ),
        }
    }
}

/// The same computation in plain Rust (host tests), following the loop's data flow.
///
/// # Safety
/// As the target version.
#[cfg(not(ldp_arm_dsp))]
unsafe fn dw_pixel(win: Win, ws: &[u32], rq: &Rq, out_zero: i32, out: *mut i8) {
    use prim::{pkhbt16, pkhtb16, smlabb, smlad, smlatt};
    // SAFETY: the caller guarantees these reads (see above).
    let rd = |r: *const i8, off: usize| unsafe { (r.add(off) as *const u32).read_unaligned() };
    let s = win.stride;
    for (j, d) in ws.chunks_exact(DW_BLOCK_WORDS).enumerate() {
        let [ra, rm, rb] = win.rows.map(|r| r.wrapping_add(4 * j));
        let mut acc = [d[0] as i32, d[1] as i32, d[2] as i32, d[3] as i32];
        let mut pair_step = |a: u32, b: u32, w: &[u32]| {
            let t = pkhbt16(a, b);
            let u = pkhtb16(b, a);
            acc[0] = smlad(sxtb16(t), w[0], acc[0]);
            acc[1] = smlad(sxtb16_ror8(t), w[1], acc[1]);
            acc[2] = smlad(sxtb16(u), w[2], acc[2]);
            acc[3] = smlad(sxtb16_ror8(u), w[3], acc[3]);
        };
        pair_step(rd(ra, 2 * s), rd(rm, 2 * s), &d[4..8]);
        pair_step(rd(ra, 0), rd(ra, s), &d[8..12]);
        pair_step(rd(rm, 0), rd(rm, s), &d[12..16]);
        let a = rd(rb, 2 * s);
        let (lo, hi) = (sxtb16(a), sxtb16_ror8(a));
        acc[0] = smlabb(lo, d[16], acc[0]);
        acc[2] = smlatt(lo, d[16], acc[2]);
        acc[1] = smlabb(hi, d[17], acc[1]);
        acc[3] = smlatt(hi, d[17], acc[3]);
        let mut pair_step = |a: u32, b: u32, w: &[u32]| {
            let t = pkhbt16(a, b);
            let u = pkhtb16(b, a);
            acc[0] = smlad(sxtb16(t), w[0], acc[0]);
            acc[1] = smlad(sxtb16_ror8(t), w[1], acc[1]);
            acc[2] = smlad(sxtb16(u), w[2], acc[2]);
            acc[3] = smlad(sxtb16_ror8(u), w[3], acc[3]);
        };
        pair_step(rd(rb, 0), rd(rb, s), &d[18..22]);
        for i in 0..4 {
            let v = rq.apply(acc[i], d[22 + i] as i32);
            // SAFETY: the caller guarantees 4·nq output bytes.
            unsafe { *out.add(4 * j + i) = sat_i8(out_zero.wrapping_add(v)) };
        }
    }
}

/// DSP int8 depthwise 3×3; shapes validated by the caller. `false` (nothing written) when the
/// layer is not taken (input zero point outside `-128..=127`, or a shift below 16): the caller
/// runs the portable kernel.
pub(crate) fn depthwise(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) -> bool {
    let rq = Rq::new(q.shift);
    if rq.mode == RqMode::Generic || !(-128..=127).contains(&q.in_zero) {
        return false;
    }
    // The unsafe windows below rely on the shapes: checked here (O(1), without overflow).
    if crate::kernels::depthwise::int8::check_dw(s, x, q, y).is_err() {
        return false;
    }
    let (h, w, c, st) = (s.h, s.w, s.c, s.stride);
    let (ho, wo) = (s.ho(), s.wo());
    assert!(x.len() >= h * w * c && y.len() >= ho * wo * c);
    let z = q.in_zero as i8;
    let mut wst = [0u32; DW_CHUNK_QUADS * DW_BLOCK_WORDS];
    let mut patch = [0i8; 9 * 4 * DW_CHUNK_QUADS];
    let quads = c / 4;
    let mut q0 = 0;
    while q0 < quads {
        let nq = DW_CHUNK_QUADS.min(quads - q0);
        let (c0, cc) = (4 * q0, 4 * nq);
        let ws = &mut wst[..nq * DW_BLOCK_WORDS];
        dw_stage(ws, q, c0, &rq);
        let ws = &wst[..nq * DW_BLOCK_WORDS];
        for oy in 0..ho {
            let iy = (oy * st) as isize - 1;
            let rows_inside = iy >= 0 && iy as usize + 2 < h;
            for ox in 0..wo {
                let ix = (ox * st) as isize - 1;
                let o = (oy * wo + ox) * c + c0;
                let out = y[o..o + cc].as_mut_ptr();
                if rows_inside && ix >= 0 && ix as usize + 2 < w {
                    let base = (iy as usize * w + ix as usize) * c + c0;
                    let row = w * c;
                    let win = Win {
                        rows: [
                            x[base..].as_ptr(),
                            x[base + row..].as_ptr(),
                            x[base + 2 * row..].as_ptr(),
                        ],
                        stride: c,
                    };
                    // SAFETY: the window lies inside the input (rows iy..iy+2 < h, columns
                    // ix..ix+2 < w, channels c0..c0+cc ≤ c, checked above and by the assert);
                    // `out` has cc bytes.
                    unsafe { dw_pixel(win, ws, &rq, q.out_zero, out) };
                } else {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let dst = &mut patch[(ky * 3 + kx) * cc..(ky * 3 + kx + 1) * cc];
                            let (yy, xx) = (iy + ky as isize, ix + kx as isize);
                            if yy >= 0 && (yy as usize) < h && xx >= 0 && (xx as usize) < w {
                                let at = (yy as usize * w + xx as usize) * c + c0;
                                dst.copy_from_slice(&x[at..at + cc]);
                            } else {
                                dst.fill(z);
                            }
                        }
                    }
                    let p = &patch[..9 * cc];
                    let win = Win {
                        rows: [p.as_ptr(), p[3 * cc..].as_ptr(), p[6 * cc..].as_ptr()],
                        stride: cc,
                    };
                    // SAFETY: the patch holds 3 rows of 3 pixels of cc channels; `out` has cc
                    // bytes.
                    unsafe { dw_pixel(win, ws, &rq, q.out_zero, out) };
                }
                if let Some(t) = q.lut {
                    for v in &mut y[o..o + cc] {
                        *v = t[(*v as i32 + 128) as usize];
                    }
                }
            }
        }
        q0 += nq;
    }
    // The last c % 4 channels.
    for ch in 4 * quads..c {
        let wk = &q.weight[ch * 9..ch * 9 + 9];
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = q.bias_at(ch);
                for ky in 0..3 {
                    let iy = (oy * st + ky) as isize - 1;
                    if iy < 0 || iy as usize >= h {
                        continue;
                    }
                    for kx in 0..3 {
                        let ix = (ox * st + kx) as isize - 1;
                        if ix < 0 || ix as usize >= w {
                            continue;
                        }
                        let xv = (x[(iy as usize * w + ix as usize) * c + ch] as i32)
                            .wrapping_sub(q.in_zero);
                        acc = acc.wrapping_add(xv.wrapping_mul(wk[ky * 3 + kx] as i32));
                    }
                }
                y[(oy * wo + ox) * c + ch] = out_byte(requant(acc, q.mult_at(ch), q.shift), q);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::isa::arm_dsp::test_util::*;
    use crate::quant::kernels::depthwise_reference;
    use std::vec;

    #[test]
    fn depthwise_matches_reference() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        let mut taken = 0;
        for case in 0..500 {
            let c = if case == 0 {
                200
            } else {
                r.range(1, 67) as usize
            };
            let (h, w) = if case % 7 == 0 {
                (1, 1)
            } else {
                (r.range(1, 19) as usize, r.range(1, 19) as usize)
            };
            let stride = 1 + (r.next() % 2) as usize;
            let s = DwShape { h, w, c, stride };
            let x = r.i8s(h * w * c);
            let p = Params::new(&mut r, 9 * c, c);
            let mut want = vec![0i8; s.ho() * s.wo() * c];
            let mut got = vec![0i8; s.ho() * s.wo() * c];
            depthwise_reference(s, &x, &p.conv(), &mut want).unwrap();
            if depthwise(s, &x, &p.conv(), &mut got) {
                taken += 1;
                assert_eq!(got, want, "case {case}: {s:?}");
            }
        }
        assert!(taken > 400, "{taken}");
    }
}
