//! int8 pointwise convolution for Cortex-M with the DSP extension (SMLAD): tiles of 2 pixels ×
//! 3 output channels (see the module docs of `kernels::isa::arm_dsp` for the exactness rules).

#[cfg(ldp_arm_dsp)]
use crate::kernels::isa::arm_dsp::dsp_on;
use crate::kernels::isa::arm_dsp::*;
use crate::quant::fixed::requant;
use crate::quant::kernels::{ConvOut, ConvQ};

// ---------------------------------------------------------------------------------------------
// Pointwise
// ---------------------------------------------------------------------------------------------

/// Largest `c_in` (rounded up to 16) of the DSP pointwise kernel.
const PW_KMAX: usize = 1024;
/// Words of the staged weight block (8 KiB: ten tiles of 128 input channels).
const PW_W_WORDS: usize = 2048;
/// Outputs per tile.
const PW_TO: usize = 3;
/// Words before a staged tile's weights: the three biases twice (the initial accumulators of
/// both pixels, one `LDM`).
const PW_HEAD: usize = 2 * PW_TO;

/// Stages the tile of output channels `o..o + 3` (rows past `c_out` are zero): `dst` = the three
/// biases (twice), then per channel quad the three rows' `SXTB16` words (channels 0, 2) and their
/// `SXTB16 ROR 8` words (channels 1, 3), zero past `c_in`, then the three multipliers in the
/// form [`Rq::apply`] takes.
fn pw_stage_w(dst: &mut [u32], q: &ConvQ<'_>, rq: &Rq, c_in: usize, c_out: usize, o: usize) {
    let (head, rest) = dst.split_at_mut(PW_HEAD);
    let (body, tail) = rest.split_at_mut(rest.len() - PW_TO);
    for r in 0..PW_TO {
        let inside = o + r < c_out;
        head[r] = if inside { q.bias_at(o + r) as u32 } else { 0 };
        head[PW_TO + r] = head[r];
        tail[r] = if inside {
            rq.mult(q.mult[o + r]) as u32
        } else {
            0
        };
    }
    for (j, d) in body.chunks_exact_mut(6).enumerate() {
        for r in 0..PW_TO {
            let v = if o + r < c_out {
                word(&q.weight[(o + r) * c_in..(o + r + 1) * c_in], 4 * j)
            } else {
                0
            };
            d[r] = sxtb16(v);
            d[3 + r] = sxtb16_ror8(v);
        }
    }
}

/// Stages pixels `p` and `p + 1` (zeros if `two` is false): per channel quad
/// `[p0 (0,2), p1 (0,2), p0 (1,3), p1 (1,3)]`. Words past `c_in` are left as they are: the
/// staged weights are zero there.
fn pw_stage_x(dst: &mut [u32], x: &[i8], c_in: usize, p: usize, two: bool) {
    let r0 = &x[p * c_in..(p + 1) * c_in];
    let r1 = if two {
        &x[(p + 1) * c_in..(p + 2) * c_in]
    } else {
        &[]
    };
    #[cfg(ldp_arm_dsp)]
    if two && c_in % 4 == 0 {
        let d = &mut dst[..c_in];
        // SAFETY: reads c_in/4 words (unaligned `LDR`) from each of the two rows of c_in bytes
        // and writes c_in words to `d` (`STM` to a `u32` slice: aligned); loop bounds are the
        // end of `d`. No stack use.
        unsafe {
            core::arch::asm!(
                dsp_on!(),
                "2:",
                "ldr r4, [r0], #4",
                "ldr r5, [r1], #4",
                "sxtb16 r8, r4",
                "sxtb16 r9, r5",
                "sxtb16 r10, r4, ror #8",
                "sxtb16 r11, r5, ror #8",
                "stm r2!, {{r8, r9, r10, r11}}",
                "cmp r2, r3",
                "bne 2b",
                inout("r0") r0.as_ptr() => _,
                inout("r1") r1.as_ptr() => _,
                inout("r2") d.as_mut_ptr() => _,
                in("r3") d.as_mut_ptr_range().end,
                out("r4") _,
                out("r5") _,
                out("r8") _,
                out("r9") _,
                out("r10") _,
                out("r11") _,
                options(nostack),
            );
        }
        return;
    }
    for (j, d) in dst.chunks_exact_mut(4).enumerate().take(c_in.div_ceil(4)) {
        let (a, b) = (word(r0, 4 * j), word(r1, 4 * j));
        d[0] = sxtb16(a);
        d[1] = sxtb16(b);
        d[2] = sxtb16_ror8(a);
        d[3] = sxtb16_ror8(b);
    }
}

/// One 2 × 3 tile over the staged channels (`xs`: 2 words per channel pair, `body`: 3 words per
/// channel pair, a multiple of 16 channels): `[p0o0, p0o1, p0o2, p1o0, p1o1, p1o2]` from `acc`.
#[cfg(ldp_arm_dsp)]
#[inline(always)]
fn pw_tile(xs: &[u32], body: &[u32], acc: [i32; 6]) -> [i32; 6] {
    let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5] = acc;
    let wend = body.as_ptr_range().end;
    // SAFETY: the loop reads `body` from its start to `wend` (a whole number of 8-step
    // iterations: the length is a multiple of 24 words, 12 bytes per step) and `xs` in step (8
    // bytes per step; `xs` has at least 2/3 of `body`'s length), all inside the slices; both are
    // `u32` slices, so `LDM` sees aligned addresses. r6/r7 (reserved by LLVM) are saved and
    // restored on the stack, which is balanced at the end; every other register is declared.
    unsafe {
        core::arch::asm!(
            dsp_on!(),
            "push {{r6, r7}}",
            "mov r6, r8",
            "mov r7, r9",
            "2:",
            pw_step!(), pw_step!(), pw_step!(), pw_step!(),
            pw_step!(), pw_step!(), pw_step!(), pw_step!(),
            "cmp r6, r7",
            "bne 2b",
            "pop {{r6, r7}}",
            inout("r0") a0,
            inout("r1") a1,
            inout("r2") a2,
            inout("r3") a3,
            inout("r4") a4,
            inout("r5") a5,
            inout("lr") xs.as_ptr() => _,
            inout("r8") body.as_ptr() => _,
            inout("r9") wend => _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
        );
    }
    [a0, a1, a2, a3, a4, a5]
}

/// The same computation in plain Rust (host tests).
#[cfg(not(ldp_arm_dsp))]
fn pw_tile(xs: &[u32], body: &[u32], mut acc: [i32; 6]) -> [i32; 6] {
    use prim::smlad;
    for (x, w) in xs.chunks_exact(2).zip(body.chunks_exact(3)) {
        for o in 0..3 {
            acc[o] = smlad(x[0], w[o], acc[o]);
            acc[3 + o] = smlad(x[1], w[o], acc[3 + o]);
        }
    }
    acc
}

/// One channel pair of the pointwise inner loop: 2 input words (two pixels), 3 weight words
/// (three output channels), 6 `SMLAD`. Accumulators r0–r5, inputs at `lr`, weights at r6.
#[cfg(ldp_arm_dsp)]
macro_rules! pw_step {
    () => {
        concat!(
            "ldm lr!, {{r8, r9}}\n",
            "ldm r6!, {{r10, r11, r12}}\n",
            "smlad r0, r8, r10, r0\n",
            "smlad r1, r8, r11, r1\n",
            "smlad r2, r8, r12, r2\n",
            "smlad r3, r9, r10, r3\n",
            "smlad r4, r9, r11, r4\n",
            "smlad r5, r9, r12, r5\n",
        )
    };
}
#[cfg(ldp_arm_dsp)]
use pw_step;

/// Full tiles (3 outputs, 2 pixels) of one pixel pair, requantized and stored: `tiles` is a run
/// of staged tiles of `tile_words` words, `y` points at output channel 0 of the first tile of
/// pixel `p` (pixel `p + 1` is `c_out` bytes further). `rq` is `Mulr` or `Mla`.
///
/// # Safety
/// `y` must have room for 3 bytes per tile at `y` and at `y + c_out`.
#[cfg(ldp_arm_dsp)]
unsafe fn pw_tiles(
    xs: &[u32],
    tiles: &[u32],
    tile_words: usize,
    y: *mut i8,
    c_out: usize,
    rq: &Rq,
    q: &ConvQ<'_>,
) {
    debug_assert!(rq.mode != RqMode::Generic && tiles.len() % tile_words == 0);
    let lut = q.lut.map_or(core::ptr::null(), |t| t[128..].as_ptr());
    let down = if rq.mode == RqMode::Mla { rq.down } else { 0 };
    // SAFETY: per tile, the loop reads 6 bias words, the body (`tile_words − 9` words, a
    // multiple of 24) and 3 multiplier words, ending at the end of `tiles`; `xs` in step with
    // the body as in `pw_tile`; all `u32` slices (aligned `LDM`). The table (if any) is read at
    // `lut + v` with `v` in -128..=127 (after `SSAT`), inside its 256 bytes. The caller
    // guarantees the 6 output bytes per tile. r6/r7 are saved and restored with the spilled
    // arguments; the stack is balanced; every other register is declared.
    unsafe {
        core::arch::asm!(
            dsp_on!(),
            // [sp] xs, [4] end, [8] body bytes, [12] y, [16] c_out, [20] r6, [24] r7,
            // [28] out_zero, [32] lut+128, [36] round_hi, [40] down (0: SMMULR).
            "push {{r0, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11}}",
            "mov r6, r1",
            "3:",
            "ldm r6!, {{r0, r1, r2, r3, r4, r5}}",
            "ldr lr, [sp]",
            "ldr r7, [sp, #8]",
            "add r7, r7, r6",
            "2:",
            pw_step!(), pw_step!(), pw_step!(), pw_step!(),
            pw_step!(), pw_step!(), pw_step!(), pw_step!(),
            "cmp r6, r7",
            "bne 2b",
            "ldm r6!, {{r8, r9, r10}}",
            "ldr r11, [sp, #40]",
            "cmp r11, #0",
            "bne 5f",
            "smmulr r0, r0, r8",
            "smmulr r1, r1, r9",
            "smmulr r2, r2, r10",
            "smmulr r3, r3, r8",
            "smmulr r4, r4, r9",
            "smmulr r5, r5, r10",
            "b 6f",
            "5:",
            "ldr r12, [sp, #36]",
            "smmla r0, r0, r8, r12",
            "smmla r1, r1, r9, r12",
            "smmla r2, r2, r10, r12",
            "smmla r3, r3, r8, r12",
            "smmla r4, r4, r9, r12",
            "smmla r5, r5, r10, r12",
            "asr r0, r0, r11",
            "asr r1, r1, r11",
            "asr r2, r2, r11",
            "asr r3, r3, r11",
            "asr r4, r4, r11",
            "asr r5, r5, r11",
            "6:",
            "ldr r8, [sp, #28]",
            "add r0, r0, r8",
            "ssat r0, #8, r0",
            "add r1, r1, r8",
            "ssat r1, #8, r1",
            "add r2, r2, r8",
            "ssat r2, #8, r2",
            "add r3, r3, r8",
            "ssat r3, #8, r3",
            "add r4, r4, r8",
            "ssat r4, #8, r4",
            "add r5, r5, r8",
            "ssat r5, #8, r5",
            "ldr r9, [sp, #32]",
            "cmp r9, #0",
            "beq 7f",
            "ldrb r0, [r9, r0]",
            "ldrb r1, [r9, r1]",
            "ldrb r2, [r9, r2]",
            "ldrb r3, [r9, r3]",
            "ldrb r4, [r9, r4]",
            "ldrb r5, [r9, r5]",
            "7:",
            "ldr r9, [sp, #12]",
            "ldr r10, [sp, #16]",
            "add r11, r9, r10",
            "strb r0, [r9]",
            "strb r1, [r9, #1]",
            "strb r2, [r9, #2]",
            "strb r3, [r11]",
            "strb r4, [r11, #1]",
            "strb r5, [r11, #2]",
            "add r9, r9, #3",
            "str r9, [sp, #12]",
            "ldr r8, [sp, #4]",
            "cmp r6, r8",
            "bne 3b",
            "pop {{r0, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11}}",
            inout("r0") xs.as_ptr() => _,
            inout("r1") tiles.as_ptr() => _,
            inout("r2") tiles.as_ptr_range().end => _,
            inout("r3") (tile_words - PW_HEAD - PW_TO) * 4 => _,
            inout("r4") y => _,
            inout("r5") c_out => _,
            inout("r8") q.out_zero => _,
            inout("r9") lut => _,
            inout("r10") rq.round_hi => _,
            inout("r11") down => _,
            out("r12") _,
            out("lr") _,
        );
    }
}

/// The same computation in plain Rust (host tests), reading bias and multipliers from the
/// staged tiles like the target version.
///
/// # Safety
/// As the target version.
#[cfg(not(ldp_arm_dsp))]
unsafe fn pw_tiles(
    xs: &[u32],
    tiles: &[u32],
    tile_words: usize,
    y: *mut i8,
    c_out: usize,
    rq: &Rq,
    q: &ConvQ<'_>,
) {
    for (t, tile) in tiles.chunks_exact(tile_words).enumerate() {
        let (head, rest) = tile.split_at(PW_HEAD);
        let (body, tail) = rest.split_at(rest.len() - PW_TO);
        let b = [head[0], head[1], head[2], head[3], head[4], head[5]].map(|v| v as i32);
        let acc = pw_tile(xs, body, b);
        for (i, &a) in acc.iter().enumerate() {
            let v = out_byte(rq.apply(a, tail[i % 3] as i32), q);
            let at = 3 * t + (i % 3) + (i / 3) * c_out;
            // SAFETY: the caller guarantees the output bytes.
            unsafe { *y.add(at) = v };
        }
    }
}

/// DSP int8 pointwise conv with a 16-bit output ([`crate::quant::kernels::ConvOut`]); `false` (nothing
/// written) when the shape is not taken (`c_in > 1024`): the caller runs the portable kernel.
/// Shapes validated by the caller.
///
/// The same staging and tiling as the int8 [`pointwise`]; each 2 × 3 tile is accumulated by
/// [`pw_tile`] (the same `SMLAD` inner loop), then requantized in Rust ([`Rq`], exact for every
/// shift), the output zero point added and saturated to int16 (`ConvOut::finish`).
pub(crate) fn pointwise_i16(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    pointwise_impl(x, c_in, q, c_out, y, pixels)
}

/// The output types of the DSP pointwise kernel.
trait PwOut: ConvOut {
    /// `y` as bytes when the type is `i8`: pixel pairs then take the `asm!` kernel
    /// [`pw_tiles`], which requantizes and stores bytes.
    fn bytes(y: &mut [Self]) -> Option<&mut [i8]>;
}

impl PwOut for i8 {
    #[inline(always)]
    fn bytes(y: &mut [i8]) -> Option<&mut [i8]> {
        Some(y)
    }
}

impl PwOut for i16 {
    #[inline(always)]
    fn bytes(_: &mut [i16]) -> Option<&mut [i8]> {
        None
    }
}

/// `sat(z_out + v)` in the output type (and the table, `i8` only).
#[inline(always)]
fn out_val<Y: ConvOut>(v: i32, q: &ConvQ<'_>) -> Y {
    Y::finish(q.out_zero.wrapping_add(v), q.lut)
}

/// Full tiles of one pixel pair in Rust after [`pw_tile`] (any output type): `tiles` as in
/// [`pw_tiles`], `y0`/`y1` the outputs of the two pixels starting at the first tile's channel
/// 0 (3 per tile). `req` is `Rq::apply` for one mode (monomorphized: no per-output dispatch).
#[inline(always)]
fn pw_tiles_rust<Y: ConvOut>(
    xs: &[u32],
    tiles: &[u32],
    tile_words: usize,
    y0: &mut [Y],
    y1: &mut [Y],
    q: &ConvQ<'_>,
    req: impl Fn(i32, i32) -> i32,
) {
    let it = tiles
        .chunks_exact(tile_words)
        .zip(y0.chunks_exact_mut(PW_TO))
        .zip(y1.chunks_exact_mut(PW_TO));
    for ((tile, r0), r1) in it {
        let (head, rest) = tile.split_at(PW_HEAD);
        let (body, tail) = rest.split_at(rest.len() - PW_TO);
        let b = [head[0], head[1], head[2], head[3], head[4], head[5]].map(|v| v as i32);
        let acc = pw_tile(xs, body, b);
        for j in 0..PW_TO {
            let m = tail[j] as i32;
            r0[j] = out_val(req(acc[j], m), q);
            r1[j] = out_val(req(acc[PW_TO + j], m), q);
        }
    }
}

/// DSP int8 pointwise conv; shapes validated by the caller. `false` (nothing written) when
/// the shape is not taken (`c_in > 1024`): the caller runs the portable kernel.
pub(crate) fn pointwise(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    pointwise_impl(x, c_in, q, c_out, y, pixels)
}

/// DSP pointwise conv of a 16-bit model input (zero point 0) to int8
/// (`quant::a16::pointwise_in16`): the int8 kernel's tiles and inner loop, with the input
/// pairs packed from `i16` values instead of sign-extended bytes (`SMLAD` multiplies 16-bit
/// halves either way, and wraps mod 2³² like the reference's `wrapping_add`). `false` when not
/// taken (`c_in > 1024`). Never inlined: inlined into the executor beside the int8
/// instantiation, its 12 KiB staging frame would add to the int8 path's stack (measured:
/// 14.8 → 27.2 KiB on qemu-m4).
#[inline(never)]
pub(crate) fn pointwise_in16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    pointwise_impl(x, c_in, q, c_out, y, pixels)
}

/// The DSP kernel with a 16-bit input and a 16-bit output (`quant::a16::pointwise16`): the
/// tiles of [`pointwise_in16`] requantized in Rust to `i16` (saturated to the `i16` range; the
/// caller narrows `-32768` to the 16-bit path's `-32767`). `false` for shapes it does not take.
pub(crate) fn pointwise16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    pointwise_impl(x, c_in, q, c_out, y, pixels)
}

/// The input types of the DSP pointwise kernel: how a pixel pair is staged as 16-bit pairs.
trait PwIn: Copy + Into<i32> {
    /// [`pw_stage_x`] for this type.
    fn stage(dst: &mut [u32], x: &[Self], c_in: usize, p: usize, two: bool);
}

impl PwIn for i8 {
    #[inline(always)]
    fn stage(dst: &mut [u32], x: &[i8], c_in: usize, p: usize, two: bool) {
        pw_stage_x(dst, x, c_in, p, two)
    }
}

impl PwIn for i16 {
    /// The layout of [`pw_stage_x`] from `i16` values: per channel quad `(x0[0], x0[2])`,
    /// `(x1[0], x1[2])`, `(x0[1], x0[3])`, `(x1[1], x1[3])` as 16-bit pairs, zero past `c_in`
    /// (and for the second pixel when `two` is false).
    #[inline(always)]
    fn stage(dst: &mut [u32], x: &[i16], c_in: usize, p: usize, two: bool) {
        let r0 = &x[p * c_in..(p + 1) * c_in];
        let r1 = if two {
            &x[(p + 1) * c_in..(p + 2) * c_in]
        } else {
            &[]
        };
        let at = |r: &[i16], i: usize| r.get(i).copied().unwrap_or(0) as u16 as u32;
        for (j, d) in dst.chunks_exact_mut(4).enumerate().take(c_in.div_ceil(4)) {
            let i = 4 * j;
            d[0] = at(r0, i) | (at(r0, i + 2) << 16);
            d[1] = at(r1, i) | (at(r1, i + 2) << 16);
            d[2] = at(r0, i + 1) | (at(r0, i + 3) << 16);
            d[3] = at(r1, i + 1) | (at(r1, i + 3) << 16);
        }
    }
}

/// [`pointwise`], [`pointwise_i16`] and [`pointwise_in16`].
fn pointwise_impl<X: PwIn, Y: PwOut>(
    x: &[X],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) -> bool {
    let k = c_in.div_ceil(16) * 16;
    if k > PW_KMAX {
        return false;
    }
    // The unsafe tiles below rely on these lengths: checked here (O(1), products without
    // overflow), not only by the caller.
    if crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    let rq = Rq::new(q.shift);
    let body_words = k / 2 * PW_TO;
    let tile_words = PW_HEAD + body_words + PW_TO;
    let tiles_per_block = PW_W_WORDS / tile_words;
    let mut wst = [0u32; PW_W_WORDS];
    let mut xst = [0u32; PW_KMAX];
    let xs = &mut xst[..k];
    let n_tiles = c_out.div_ceil(PW_TO);
    // Tile t covers output channels origin(t)..origin(t)+3. When c_out is not a multiple of 3
    // the last tile overlaps the one before it (its first outputs are computed twice, with the
    // same result) so that every tile is full; only c_out < 3 leaves a partial tile.
    let origin = |t: usize| {
        if c_out >= PW_TO {
            (PW_TO * t).min(c_out - PW_TO)
        } else {
            0
        }
    };
    let last_overlaps = c_out >= PW_TO && c_out % PW_TO != 0;
    let mut t0 = 0;
    while t0 < n_tiles {
        let nt = tiles_per_block.min(n_tiles - t0);
        let block = &mut wst[..nt * tile_words];
        for (t, dst) in block.chunks_exact_mut(tile_words).enumerate() {
            pw_stage_w(dst, q, &rq, c_in, c_out, origin(t0 + t));
        }
        let block = &wst[..nt * tile_words];
        // Tiles of this block at origin 3·t (all but an overlapping last tile).
        let regular = if last_overlaps && t0 + nt == n_tiles {
            nt - 1
        } else {
            nt
        };
        let mut p = 0;
        while p < pixels {
            let two = p + 1 < pixels;
            X::stage(xs, x, c_in, p, two);
            // Only used when `c_out ≥ PW_TO` (so the second origin does not underflow).
            let runs = [
                (0, regular, p * c_out + PW_TO * t0),
                (regular, nt, (p * c_out + c_out).saturating_sub(PW_TO)),
            ];
            if two && c_out >= PW_TO && rq.mode != RqMode::Generic {
                if let Some(y) = Y::bytes(y) {
                    for (from, to, at) in runs {
                        if from == to {
                            continue;
                        }
                        // Checked: the 3 bytes per tile of both pixels are inside y.
                        let _ = &y[at + c_out..at + c_out + PW_TO * (to - from)];
                        // SAFETY: just checked.
                        unsafe {
                            pw_tiles(
                                xs,
                                &block[from * tile_words..to * tile_words],
                                tile_words,
                                y[at..].as_mut_ptr(),
                                c_out,
                                &rq,
                                q,
                            )
                        };
                    }
                    p += 2;
                    continue;
                }
            }
            if two && c_out >= PW_TO {
                // `i16` outputs (and `i8` with a shift below 16): the same tiles, each
                // accumulated by `pw_tile`, requantized in Rust.
                for (from, to, at) in runs {
                    if from == to {
                        continue;
                    }
                    let n = PW_TO * (to - from);
                    let (r0, r1) = y[at..].split_at_mut(c_out);
                    let (r0, r1) = (&mut r0[..n], &mut r1[..n]);
                    let tiles = &block[from * tile_words..to * tile_words];
                    match rq.mode {
                        RqMode::Mulr => {
                            pw_tiles_rust(xs, tiles, tile_words, r0, r1, q, smmulr);
                        }
                        RqMode::Mla => {
                            let (hi, down) = (rq.round_hi, rq.down);
                            pw_tiles_rust(xs, tiles, tile_words, r0, r1, q, |a, m| {
                                smmla(a, m, hi) >> down
                            });
                        }
                        RqMode::Generic => {
                            let s = rq.shift;
                            pw_tiles_rust(xs, tiles, tile_words, r0, r1, q, |a, m| {
                                requant(a, m, s)
                            });
                        }
                    }
                }
                p += 2;
                continue;
            }
            for (t, tile) in block.chunks_exact(tile_words).enumerate() {
                let o = origin(t0 + t);
                let n = PW_TO.min(c_out - o);
                let body = &tile[PW_HEAD..PW_HEAD + body_words];
                let mut bias = [0i32; PW_TO];
                let mut mp = [0i32; PW_TO];
                for j in 0..n {
                    bias[j] = q.bias_at(o + j);
                    mp[j] = rq.mult(q.mult[o + j]);
                }
                let acc = pw_tile(
                    xs,
                    body,
                    [bias[0], bias[1], bias[2], bias[0], bias[1], bias[2]],
                );
                let row = &mut y[p * c_out + o..p * c_out + o + n];
                for j in 0..n {
                    row[j] = out_val(rq.apply(acc[j], mp[j]), q);
                }
                if two {
                    let row = &mut y[(p + 1) * c_out + o..(p + 1) * c_out + o + n];
                    for j in 0..n {
                        row[j] = out_val(rq.apply(acc[3 + j], mp[j]), q);
                    }
                }
            }
            p += 2;
        }
        t0 += nt;
    }
    true
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::isa::arm_dsp::test_util::*;
    use crate::quant::kernels::pointwise_reference;
    use std::vec;

    #[test]
    fn pointwise_matches_reference() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..400 {
            let c_in = r.range(1, 67) as usize;
            let c_out = r.range(1, 67) as usize;
            let pixels = if case % 5 == 0 {
                1
            } else {
                r.range(1, 19 * 19) as usize
            };
            let x = r.i8s(pixels * c_in);
            let p = Params::new(&mut r, c_in * c_out, c_out);
            let mut want = vec![0i8; pixels * c_out];
            let mut got = vec![0i8; pixels * c_out];
            pointwise_reference(&x, c_in, &p.conv(), c_out, &mut want).unwrap();
            assert!(pointwise(&x, c_in, &p.conv(), c_out, &mut got, pixels));
            assert_eq!(got, want, "case {case}: {pixels} px, {c_in} -> {c_out}");
        }
        // Wide inputs: the staged block holds a single tile.
        for c_in in [500, 1024] {
            let (c_out, pixels) = (5, 3);
            let x = r.i8s(pixels * c_in);
            let p = Params::new(&mut r, c_in * c_out, c_out);
            let mut want = vec![0i8; pixels * c_out];
            let mut got = vec![0i8; pixels * c_out];
            pointwise_reference(&x, c_in, &p.conv(), c_out, &mut want).unwrap();
            assert!(pointwise(&x, c_in, &p.conv(), c_out, &mut got, pixels));
            assert_eq!(got, want);
        }
        assert!(!pointwise(
            &[0; 1025],
            1025,
            &Params::new(&mut r, 1025, 1).conv(),
            1,
            &mut [0],
            1
        ));
    }

    fn params_i16(r: &mut Rng, c_in: usize, c_out: usize) -> Params {
        let mut p = Params::new(r, c_in * c_out, c_out);
        p.lut = None;
        p.shift = match r.next() % 8 {
            0 => r.range(-3, 66) as i32,
            1 => r.range(1, 15) as i32,
            2 => r.range(33, 62) as i32,
            3 => r.range(1, 62) as i32,
            _ => r.range(8, 24) as i32,
        };
        if r.next() % 3 == 0 {
            p.mult = (0..c_out).map(|_| r.next() as u8).collect();
        }
        if r.next() % 4 == 0 {
            p.bias = (0..c_out).map(|_| r.next() as i16).collect();
            p.bias_shift = 15;
        }
        p.out_zero = match r.next() % 4 {
            0 => 0,
            1 => r.range(-40_000, 40_000) as i32,
            _ => r.range(-300, 300) as i32,
        };
        p
    }

    fn check_i16(x: &[i8], c_in: usize, p: &Params, c_out: usize, pixels: usize) -> usize {
        let mut want = vec![0i16; pixels * c_out];
        let mut got = vec![0x5a5ai16; pixels * c_out];
        pointwise_reference(x, c_in, &p.conv(), c_out, &mut want).unwrap();
        assert!(pointwise_i16(x, c_in, &p.conv(), c_out, &mut got, pixels));
        assert_eq!(
            got, want,
            "{pixels} px, {c_in} -> {c_out}, shift {}, z {}",
            p.shift, p.out_zero
        );
        want.iter()
            .filter(|&&v| v == i16::MIN || v == i16::MAX)
            .count()
    }

    #[test]
    fn pointwise_in16_matches_reference() {
        let mut r = Rng(0x2545_f491_4f6c_dd1d);
        for case in 0..300 {
            let c_in = r.range(1, 67) as usize;
            let c_out = r.range(1, 40) as usize;
            let pixels = r.range(1, 9) as usize;
            let lim = crate::quant::input16_limit(c_in) as i64;
            let x: std::vec::Vec<i16> = (0..pixels * c_in)
                .map(|_| r.range(-lim, lim) as i16)
                .collect();
            let mut p = Params::new(&mut r, c_in * c_out, c_out);
            p.in_zero = 0;
            p.bias_shift = p.bias_shift.min(14);
            let q = p.conv();
            let mut want = vec![0i8; pixels * c_out];
            let mut got = vec![0i8; pixels * c_out];
            crate::quant::a16::pointwise_in16_reference(&x, c_in, &q, c_out, &mut want).unwrap();
            assert!(pointwise_in16(&x, c_in, &q, c_out, &mut got, pixels));
            assert_eq!(
                got, want,
                "case {case}: c_in {c_in} c_out {c_out} px {pixels}"
            );
        }
    }

    /// The 16-bit-activation conv (`quant::a16::pointwise16`'s DSP path): 16-bit input at the
    /// path's saturation, output zero point 0, `-32768` narrowed as the caller does.
    #[test]
    fn pointwise16_matches_reference() {
        let mut r = Rng(0x6a09_e667_f3bc_c908);
        for case in 0..300 {
            let c_in = if case % 29 == 0 {
                r.range(100, 1000) as usize
            } else {
                r.range(1, 67) as usize
            };
            let c_out = r.range(1, 40) as usize;
            let pixels = r.range(1, 9) as usize;
            let lim = ((1i64 << 30) / (127 * c_in as i64)).min(32767);
            let x: std::vec::Vec<i16> = (0..pixels * c_in)
                .map(|_| r.range(-lim, lim) as i16)
                .collect();
            let mut p = Params::new(&mut r, c_in * c_out, c_out);
            p.in_zero = 0;
            p.out_zero = 0;
            p.lut = None;
            p.bias_shift = p.bias_shift.min(14);
            let q = p.conv();
            let mut want = vec![0i16; pixels * c_out];
            let mut got = vec![0x5a5ai16; pixels * c_out];
            crate::quant::a16::pointwise16_reference(&x, c_in, &q, c_out, &mut want).unwrap();
            assert!(pointwise16(&x, c_in, &q, c_out, &mut got, pixels));
            for v in got.iter_mut() {
                *v = (*v).max(-32767);
            }
            assert_eq!(
                got, want,
                "case {case}: c_in {c_in} c_out {c_out} px {pixels}"
            );
        }
    }

    #[test]
    fn pointwise_i16_matches_reference() {
        let mut r = Rng(0x51ed_2701_a5a5_0f0f);
        let mut saturated = 0;
        for case in 0..400 {
            let c_in = if case % 23 == 0 {
                r.range(100, 1024) as usize
            } else {
                r.range(1, 67) as usize
            };
            let c_out = match case % 7 {
                0 => r.range(1, 2) as usize,
                1 => 3 * r.range(1, 20) as usize + r.range(1, 2) as usize,
                _ => r.range(1, 67) as usize,
            };
            let pixels = match case % 5 {
                0 => 1,
                1 => 2 * r.range(1, 40) as usize + 1,
                _ => r.range(1, 19 * 19) as usize,
            };
            let pixels = if c_in > 67 { pixels.min(9) } else { pixels };
            let x = r.i8s(pixels * c_in);
            let p = params_i16(&mut r, c_in, c_out);
            saturated += check_i16(&x, c_in, &p, c_out, pixels);
        }
        assert!(saturated > 1000, "{saturated}");
        // Every shift, both requantization forms and `fixed::requant` (shift < 9).
        for shift in 1..=62 {
            let (c_in, c_out, pixels) = (40, 7, 5);
            let x = r.i8s(pixels * c_in);
            let mut p = params_i16(&mut r, c_in, c_out);
            p.shift = shift;
            p.mult = (0..c_out).map(|_| r.next() as u8).collect();
            p.mult[0] = 0;
            p.mult[1] = u8::MAX;
            check_i16(&x, c_in, &p, c_out, pixels);
        }
        // Wide inputs: the staged block holds a single tile; extreme inputs saturate.
        for c_in in [500, 1023, 1024] {
            let (c_out, pixels) = (5, 3);
            let mut x = r.i8s(pixels * c_in);
            x[..c_in].fill(-128);
            let mut p = params_i16(&mut r, c_in, c_out);
            p.weight[..c_in].fill(-128);
            p.shift = 10;
            check_i16(&x, c_in, &p, c_out, pixels);
        }
        assert!(!pointwise_i16(
            &[0; 1025],
            1025,
            &Params::new(&mut r, 1025, 1).conv(),
            1,
            &mut [0],
            1
        ));
    }
}
