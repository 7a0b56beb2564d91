//! int8 kernels for Cortex-M cores with the DSP extension: Armv7E-M (Cortex-M4, M7) and Armv8-M
//! Mainline with DSP (Cortex-M33, M55). `build.rs` selects them at compile time (cfg
//! `ldp_arm_dsp`, from the target triple); the portable kernels stay as the fallback for the
//! shapes these do not take. On the host this module is compiled for the unit tests only, with
//! the DSP instructions emulated in plain Rust (the same data flow, so the staging layouts, the
//! tiling and the tails are tested on the host; the `asm!` itself is tested on the target by the
//! firmware self-test, `cargo xtask perf`).
//!
//! **Bit-identity.** Every kernel here produces exactly the bytes of the reference kernel:
//! * Sums are wrapping `i32` sums of the same products in another order (SMLAD/SMLAxy wrap
//!   modulo 2³² like `wrapping_add`), which is exact in any order.
//! * Depthwise: the input zero point is folded into the bias (`bias − z·Σw`, wrapping), which is
//!   the same sum modulo 2³²; padded taps read the value `z` itself (a small patch around border
//!   pixels), so they contribute `(z − z)·w = 0` as in the reference (which skips them). This
//!   needs `z` in `-128..=127`; other zero points take the portable kernel.
//! * Requantization is [`fixed::requant`](super::fixed::requant) — `round(acc·m / 2^s)`, round
//!   half up, on the exact 64-bit product — computed with one high-half multiply where the shift
//!   allows (see [`Rq`]); shifts below 16 use `fixed::requant` itself (pointwise) or the portable
//!   kernel (depthwise).
//!
//! **Pointwise** (`[pixels][c_in]` × `[c_out][c_in]`): tiles of 2 pixels × 3 output channels
//! with six `i32` accumulators in registers. The weights of a block of output channels are
//! sign-extended once into a stack buffer (int16 pairs, the three rows of a tile interleaved), the
//! two pixels' inputs likewise (once per block); the inner loop is then `LDM` (2 input words) +
//! `LDM` (3 weight words) + 6 `SMLAD` per 2 channels: 0.67 instructions per MAC plus loop and
//! requantization (in the same `asm!` block per tile). Stack: 12 KiB. Takes `c_in ≤ 1024`.
//! Convs with an `i16` output ([`pointwise_i16`]) share the staging, the tiling and the inner
//! loop ([`pw_tile`]); their requantization (exact for every shift, see [`Rq`]), zero point and
//! int16 saturation are Rust after each tile.
//!
//! **Depthwise 3×3** (NHWC, stride 1 or 2, padding 1): 4 channels per 32-bit word. For each
//! output pixel and channel quad, tap pairs are formed with `PKHBT`/`PKHTB` + `SXTB16` (two
//! taps of the same channel in the two halves of a register) and accumulated with `SMLAD`; the
//! ninth tap with `SMLABB`/`SMLATT`; requantization, zero point and saturation follow in the
//! same loop. Interior pixels read the input directly without bounds checks; border pixels read a
//! 3×3 patch padded with the input zero point. Channels are processed in chunks of 128 (stack:
//! 4.5 KiB); a tail of `c % 4` channels is computed in plain Rust.
//!
//! **ADD, LayerNorm, bilinear resize**: the reference kernels' integer functions with the 64-bit
//! work narrowed where the operands provably fit 32 bits (bounds at each kernel), and the inner
//! loops of ADD and LayerNorm in `asm!` (see [`add_inplace`], [`layer_norm_inplace`],
//! [`resize_bilinear`]).

use super::fixed::{requant, sat_i8};
use super::kernels::{ConvOut, ConvQ};
use crate::kernels::depthwise::DwShape;

/// The first line of every `asm!` block: Armv7E-M has the DSP instructions; for Armv8-M
/// Mainline LLVM's assembler does not enable them by default and `.arch_extension dsp` is not
/// accepted, so the block selects the Cortex-M33 (v8-M Mainline with DSP). `build.rs` sets
/// `ldp_arm_v8m` for thumbv8m.main targets.
#[cfg(all(ldp_arm_dsp, ldp_arm_v8m))]
macro_rules! dsp_on {
    () => {
        ".cpu cortex-m33"
    };
}
#[cfg(all(ldp_arm_dsp, not(ldp_arm_v8m)))]
macro_rules! dsp_on {
    () => {
        ""
    };
}

/// The DSP instructions, as `asm!` on the target and emulated on the host (tests).
#[cfg(ldp_arm_dsp)]
mod prim {
    use core::arch::asm;

    /// `SXTB16`: bytes 0 and 2, sign-extended into the two halfwords.
    #[inline(always)]
    pub fn sxtb16(x: u32) -> u32 {
        let r: u32;
        // SAFETY: a register-only instruction of the DSP extension, which every target this
        // module is compiled for has (build.rs); no memory, stack or flags involved.
        unsafe {
            asm!(
                dsp_on!(),
                "sxtb16 {r}, {x}",
                r = lateout(reg) r,
                x = in(reg) x,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        r
    }

    /// `SXTB16 …, ROR #8`: bytes 1 and 3, sign-extended.
    #[inline(always)]
    pub fn sxtb16_ror8(x: u32) -> u32 {
        let r: u32;
        // SAFETY: as in `sxtb16`.
        unsafe {
            asm!(
                dsp_on!(),
                "sxtb16 {r}, {x}, ror #8",
                r = lateout(reg) r,
                x = in(reg) x,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        r
    }

    /// `SMLAD`: `acc + lo(a)·lo(b) + hi(a)·hi(b)`, wrapping.
    #[inline(always)]
    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let r: i32;
        // SAFETY: as in `sxtb16`.
        unsafe {
            asm!(
                dsp_on!(),
                "smlad {r}, {a}, {b}, {c}",
                r = lateout(reg) r,
                a = in(reg) a,
                b = in(reg) b,
                c = in(reg) acc,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        r
    }

    /// `SMLALD`: `acc + lo(a)·lo(b) + hi(a)·hi(b)` in 64 bits, wrapping.
    #[inline(always)]
    pub fn smlald(a: u32, b: u32, acc: i64) -> i64 {
        let (mut lo, mut hi) = (acc as u32, (acc as u64 >> 32) as u32);
        // SAFETY: as in `sxtb16`.
        unsafe {
            asm!(
                dsp_on!(),
                "smlald {lo}, {hi}, {a}, {b}",
                lo = inout(reg) lo,
                hi = inout(reg) hi,
                a = in(reg) a,
                b = in(reg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        ((hi as u64) << 32 | lo as u64) as i64
    }

    /// `SMMULR`: `(a·b + 2³¹) >> 32`, the rounded high half of the 64-bit product.
    #[inline(always)]
    pub fn smmulr(a: i32, b: i32) -> i32 {
        let r: i32;
        // SAFETY: as in `sxtb16`.
        unsafe {
            asm!(
                dsp_on!(),
                "smmulr {r}, {a}, {b}",
                r = lateout(reg) r,
                a = in(reg) a,
                b = in(reg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        r
    }

    /// `SMMLA`: `(a·b + (c << 32)) >> 32`.
    #[inline(always)]
    pub fn smmla(a: i32, b: i32, c: i32) -> i32 {
        let r: i32;
        // SAFETY: as in `sxtb16`.
        unsafe {
            asm!(
                dsp_on!(),
                "smmla {r}, {a}, {b}, {c}",
                r = lateout(reg) r,
                a = in(reg) a,
                b = in(reg) b,
                c = in(reg) c,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        r
    }
}

/// Plain-Rust models of the DSP instructions (host tests).
#[cfg(not(ldp_arm_dsp))]
mod prim {
    #[inline(always)]
    fn half(v: i32) -> u32 {
        v as i16 as u16 as u32
    }
    /// `SXTB16`.
    pub fn sxtb16(x: u32) -> u32 {
        half(x as u8 as i8 as i32) | (half((x >> 16) as u8 as i8 as i32) << 16)
    }
    /// `SXTB16 …, ROR #8`.
    pub fn sxtb16_ror8(x: u32) -> u32 {
        sxtb16(x.rotate_right(8))
    }
    /// `SMMULR`.
    pub fn smmulr(a: i32, b: i32) -> i32 {
        ((a as i64 * b as i64 + (1 << 31)) >> 32) as i32
    }
    /// `SMMLA`.
    pub fn smmla(a: i32, b: i32, c: i32) -> i32 {
        ((a as i64 * b as i64).wrapping_add((c as i64) << 32) >> 32) as i32
    }
    /// `SMLAD`: `acc + lo(a)·lo(b) + hi(a)·hi(b)`, wrapping.
    pub fn smlad(a: u32, b: u32, acc: i32) -> i32 {
        let p0 = (a as i16 as i32) * (b as i16 as i32);
        let p1 = ((a >> 16) as i16 as i32) * ((b >> 16) as i16 as i32);
        acc.wrapping_add(p0).wrapping_add(p1)
    }
    /// `SMLALD`: `acc + lo(a)·lo(b) + hi(a)·hi(b)` in 64 bits, wrapping.
    pub fn smlald(a: u32, b: u32, acc: i64) -> i64 {
        let p0 = (a as i16 as i64) * (b as i16 as i64);
        let p1 = ((a >> 16) as i16 as i64) * ((b >> 16) as i16 as i64);
        acc.wrapping_add(p0).wrapping_add(p1)
    }
    /// `SMLABB`.
    pub fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
        acc.wrapping_add((a as i16 as i32) * (b as i16 as i32))
    }
    /// `SMLATT`.
    pub fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
        acc.wrapping_add(((a >> 16) as i16 as i32) * ((b >> 16) as i16 as i32))
    }
    /// `PKHBT d, a, b, LSL #16`: low half of `a`, low half of `b` on top.
    pub fn pkhbt16(a: u32, b: u32) -> u32 {
        (a & 0xFFFF) | (b << 16)
    }
    /// `PKHTB d, b, a, ASR #16`: high half of `a` at the bottom, high half of `b` on top.
    pub fn pkhtb16(b: u32, a: u32) -> u32 {
        (b & 0xFFFF_0000) | (a >> 16)
    }
}

use prim::{smmla, smmulr, sxtb16, sxtb16_ror8};

/// How the requantization `fixed::requant(acc, m, s)` is computed (`s` = the shift clamped to
/// `1..=62`, `p = acc·m` exact in 64 bits, `|p| < 2⁴⁰` since `m` is a `u8`):
///
/// * `Mulr`, `9 ≤ s ≤ 32`: with `m' = m·2^(32−s)` (fits an `i32`: `m ≤ 255 < 2⁸`, `32 − s ≤ 23`),
///   `SMMULR(acc, m') = ⌊(p·2^(32−s) + 2³¹) / 2³²⌋ = ⌊(p + 2^(s−1)) / 2^s⌋` — the same rational
///   number, so the same floor, and it fits 32 bits as `requant`'s result does.
/// * `Mla`, `33 ≤ s ≤ 62`: `SMMLA(acc, m, 2^(s−33)) = ⌊(p + 2^(s−1)) / 2³²⌋` (the rounding
///   term is a whole multiple of 2³²), then an arithmetic shift by `s − 32` divides by the rest
///   of `2^s`: `⌊⌊v / 2³²⌋ / 2^(s−32)⌋ = ⌊v / 2^s⌋`.
/// * `Generic`, `s < 9`: `fixed::requant` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RqMode {
    Mulr,
    Mla,
    Generic,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Rq {
    pub(crate) mode: RqMode,
    /// The layer's shift as given (for `Generic`: `fixed::requant` clamps it itself).
    shift: i32,
    /// `Mulr`: `32 − s`.
    up: u32,
    /// `Mla`: `2^(s−33)`.
    pub(crate) round_hi: i32,
    /// `Mla`: `s − 32`.
    pub(crate) down: u32,
}

impl Rq {
    pub(crate) fn new(shift: i32) -> Rq {
        let s = shift.clamp(1, 62);
        let mode = match s {
            9..=32 => RqMode::Mulr,
            33..=62 => RqMode::Mla,
            _ => RqMode::Generic,
        };
        Rq {
            mode,
            shift,
            up: (32 - s).max(0) as u32,
            round_hi: if s >= 33 { 1 << (s - 33) } else { 0 },
            down: (s - 32).max(0) as u32,
        }
    }

    /// The multiplier in the form [`Rq::apply`] takes.
    #[inline(always)]
    pub(crate) fn mult(&self, m: u8) -> i32 {
        match self.mode {
            RqMode::Mulr => (m as i32) << self.up,
            _ => m as i32,
        }
    }

    /// `fixed::requant(acc, m, shift)` with `mp = self.mult(m)`.
    #[inline(always)]
    pub(crate) fn apply(&self, acc: i32, mp: i32) -> i32 {
        match self.mode {
            RqMode::Mulr => smmulr(acc, mp),
            RqMode::Mla => smmla(acc, mp, self.round_hi) >> self.down,
            RqMode::Generic => requant(acc, mp, self.shift),
        }
    }
}

/// `sat(z_out + v)`, then the optional table.
#[inline(always)]
fn out_byte(v: i32, q: &ConvQ<'_>) -> i8 {
    let b = sat_i8(q.out_zero.wrapping_add(v));
    match q.lut {
        Some(t) => t[(b as i32 + 128) as usize],
        None => b,
    }
}

/// Four bytes `row[at..at + 4]` as a little-endian word, zeros past the end of `row`.
#[inline(always)]
fn word(row: &[i8], at: usize) -> u32 {
    match row.get(at..at + 4) {
        Some(b) => u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]),
        None => {
            let mut v = 0u32;
            for k in 0..4 {
                if let Some(&b) = row.get(at + k) {
                    v |= (b as u8 as u32) << (8 * k);
                }
            }
            v
        }
    }
}

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

/// DSP int8 pointwise conv with a 16-bit output ([`super::kernels::ConvOut`]); `false` (nothing
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

/// [`pointwise`] and [`pointwise_i16`].
fn pointwise_impl<Y: PwOut>(
    x: &[i8],
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
    if super::kernels::check_pw(x, c_in, q, c_out, y) != Ok(pixels) {
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
            pw_stage_x(xs, x, c_in, p, two);
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
    if super::kernels::check_dw(s, x, q, y).is_err() {
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

// ---------------------------------------------------------------------------------------------
// ADD, LayerNorm, bilinear resize
// ---------------------------------------------------------------------------------------------
//
// The same integer functions as the reference kernels (`quant::kernels`), with the 64-bit work
// narrowed where the operands provably fit 32 bits, the rounding term and the zero points
// folded into precomputed values, and the 64-bit variable shift of `requant64` split by the
// shift's range ([`Shr64`]). Exactness arguments are given at each kernel; the host tests
// compare them with the reference kernels on random data and edge cases.

/// `fixed::requant64(v, shift) as i32`: `((v + 2^(s−1)) >> s)`'s low 32 bits with
/// `s = shift.clamp(1, 62)`. `HI` must be `s >= 32`: then the low 32 bits of the shifted value
/// are the high word of `v + 2^(s−1)` shifted by `s − 32` (arithmetic); else they are
/// `lo >> s | hi << (32 − s)`. No 64-bit variable shift.
#[derive(Debug, Clone, Copy)]
struct Shr64 {
    s: u32,
    round: i64,
}

impl Shr64 {
    fn new(shift: i32) -> Shr64 {
        let s = shift.clamp(1, 62) as u32;
        Shr64 {
            s,
            round: 1i64 << (s - 1),
        }
    }
    fn hi(&self) -> bool {
        self.s >= 32
    }
    /// `requant64(v, s) as i32`.
    #[inline(always)]
    fn apply<const HI: bool>(&self, v: i64) -> i32 {
        self.shift::<HI>(v.wrapping_add(self.round))
    }
    /// The shift alone, for values `t` that already hold the rounding term.
    #[inline(always)]
    fn shift<const HI: bool>(&self, t: i64) -> i32 {
        if HI {
            ((t >> 32) as i32) >> (self.s - 32)
        } else {
            (((t as u64 as u32) >> self.s) | (((t as u64 >> 32) as u32) << (32 - self.s))) as i32
        }
    }
}

/// `a = a + b` (TFLite ADD, `AddQ::add` on every pair). Each operand's contribution takes one
/// of 256 values: two tables of `(v − z)·m` (`i64`, wrapping, the rounding term folded into the
/// first — the sum is the same modulo 2⁶⁴ in any order), kept as separate low and high words,
/// then one 64-bit add and the split shift per element. Stack: 4 KiB.
pub(crate) fn add_inplace(a: &mut [i8], b: &[i8], q: &super::kernels::AddQ) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let sh = Shr64::new(q.shift);
    let mut t = AddTables {
        a_lo: [0; 256],
        a_hi: [0; 256],
        b_lo: [0; 256],
        b_hi: [0; 256],
    };
    for i in 0..256 {
        let x = i as i64 - 128;
        let u = (x - q.a_zero as i64)
            .wrapping_mul(q.a_mult as i64)
            .wrapping_add(sh.round);
        let v = (x - q.b_zero as i64).wrapping_mul(q.b_mult as i64);
        t.a_lo[i] = u as u32;
        t.a_hi[i] = (u >> 32) as u32;
        t.b_lo[i] = v as u32;
        t.b_hi[i] = (v >> 32) as u32;
    }
    if sh.hi() {
        t.run::<true>(a, b, sh, q.out_zero);
    } else {
        t.run::<false>(a, b, sh, q.out_zero);
    }
    true
}

/// The operand tables of [`add_inplace`], indexed by `v + 128`.
struct AddTables {
    a_lo: [u32; 256],
    a_hi: [u32; 256],
    b_lo: [u32; 256],
    b_hi: [u32; 256],
}

/// One element of the ADD loop: operands at r0 (in place) and r1, tables at r3, r4, r5, r8
/// (entry 128), sum in r6:r7; the shift follows.
#[cfg(ldp_arm_dsp)]
macro_rules! add_elem_sum {
    () => {
        concat!(
            "ldrsb r12, [r0]\n",
            "ldrsb lr, [r1], #1\n",
            "ldr r6, [r3, r12, lsl #2]\n",
            "ldr r7, [r4, r12, lsl #2]\n",
            "ldr r12, [r5, lr, lsl #2]\n",
            "ldr lr, [r8, lr, lsl #2]\n",
            "adds r6, r6, r12\n",
            "adc r7, r7, lr\n",
        )
    };
}

impl AddTables {
    /// `run` over the whole slices: `asm!` on the target.
    #[cfg(ldp_arm_dsp)]
    fn run<const HI: bool>(&self, a: &mut [i8], b: &[i8], sh: Shr64, z: i32) {
        let n = a.len().min(b.len());
        if n == 0 {
            return;
        }
        let end = a[..n].as_mut_ptr_range().end;
        macro_rules! add_loop {
            ($($shift:expr),* $(,)?) => {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    add_elem_sum!(),
                    $($shift,)*
                    "add r6, r6, r11",
                    "ssat r6, #8, r6",
                    "strb r6, [r0], #1",
                    "cmp r0, r2",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") a.as_mut_ptr() => _,
                    inout("r1") b.as_ptr() => _,
                    in("r2") end,
                    in("r3") self.a_lo[128..].as_ptr(),
                    in("r4") self.a_hi[128..].as_ptr(),
                    in("r5") self.b_lo[128..].as_ptr(),
                    in("r8") self.b_hi[128..].as_ptr(),
                    in("r9") sh.s.wrapping_sub(if HI { 32 } else { 0 }),
                    in("r10") 32u32.wrapping_sub(sh.s),
                    in("r11") z,
                    out("r12") _,
                    out("lr") _,
                )
            };
        }
        // SAFETY: the loop reads a[i] and b[i] and writes a[i] for i < n (r0 runs from a to
        // a + n, r1 in step), and reads the four tables at entry 128 + v for a signed byte v,
        // inside their 256 entries. r6/r7 are saved and restored; every other register is
        // declared.
        unsafe {
            if HI {
                add_loop!("asr r6, r7, r9");
            } else {
                add_loop!("lsr r6, r6, r9", "lsl r7, r7, r10", "orr r6, r6, r7");
            }
        }
    }

    /// The same computation in plain Rust (host tests).
    #[cfg(not(ldp_arm_dsp))]
    fn run<const HI: bool>(&self, a: &mut [i8], b: &[i8], sh: Shr64, z: i32) {
        for (x, &y) in a.iter_mut().zip(b) {
            let (i, j) = ((*x as u8 ^ 0x80) as usize, (y as u8 ^ 0x80) as usize);
            let lo = self.a_lo[i] as u64 + self.b_lo[j] as u64;
            let hi = self.a_hi[i]
                .wrapping_add(self.b_hi[j])
                .wrapping_add((lo >> 32) as u32);
            let t = ((hi as u64) << 32 | (lo as u32) as u64) as i64;
            *x = sat_i8(z.wrapping_add(sh.shift::<HI>(t)));
        }
    }
}

/// Channels of the staged `β·2¹⁶ + rounding` table of [`layer_norm_inplace`] (2 KiB).
const LN_MAXC: usize = 256;

/// Integer LayerNorm (`kernels::layer_norm_inplace`), exactly: per pixel the sums `S1`, `S2`
/// (SMLAD on sign-extended pairs, `i32`: `S2 ≤ 2¹⁴·c` fits for `c ≤ 65536`), then the same
/// `i64` statistics, exact integer square root and division as the reference. Per element the
/// bounds make every intermediate fit without wrapping (so the reference's wrapping operations
/// are plain ones): `|C·q − S1| ≤ 2⁸·c ≤ 2²⁴`; `inv = 2⁶²/R ≤ 2³²` (`R ≥ 2³⁰` because
/// `(D+E)·4^k` has 61–62 bits, or `R ≥ 2³¹` when `D+E` has more), an unsigned 32-bit multiplier
/// except for `inv = 2³²` exactly (that pixel takes the `i64` formula); so `|num·inv| < 2⁵⁶`;
/// `|x̂·2¹⁶| ≤ √((c−1)·D)·2¹⁶/√D < 2²⁴` (Cauchy–Schwarz), so `|x̂·2¹⁶·γ| < 2³⁹`. The two
/// roundings use [`Shr64`]; `β·2¹⁶` plus the output rounding term is staged per channel.
/// Takes `c ≤ 256`.
pub(crate) fn layer_norm_inplace(buf: &mut [i8], c: usize, q: &super::kernels::NormQ<'_>) -> bool {
    use prim::smlad;
    if c > LN_MAXC || super::kernels::check_norm(buf, c, q).is_err() {
        return false;
    }
    let cc = c as i64;
    let e = ((cc * cc) as u64).saturating_mul(q.eps_q8.max(0) as u64) >> 8;
    let out = Shr64::new(q.shift);
    let gamma = &q.gamma[..c];
    let mut bt = [0i64; LN_MAXC];
    for (t, &b) in bt.iter_mut().zip(&q.beta[..c]) {
        *t = ((b as i64) << 16) + out.round;
    }
    let bt = &bt[..c];
    let lut: Option<&[i8; 256]> = q.lut.and_then(|t| t.try_into().ok());
    for px in buf.chunks_exact_mut(c) {
        let (mut s1, mut s2) = (0i32, 0i32);
        let mut words = px.chunks_exact(4);
        for wv in &mut words {
            let v = u32::from_le_bytes([wv[0] as u8, wv[1] as u8, wv[2] as u8, wv[3] as u8]);
            let (lo, hi) = (sxtb16(v), sxtb16_ror8(v));
            s1 = smlad(lo, 0x0001_0001, smlad(hi, 0x0001_0001, s1));
            s2 = smlad(lo, lo, smlad(hi, hi, s2));
        }
        for &v in words.remainder() {
            s1 += v as i32;
            s2 += v as i32 * v as i32;
        }
        let (s1, s2) = (s1 as i64, s2 as i64);
        let d = (cc * s2 - s1 * s1).max(0) as u64;
        let v = d.saturating_add(e).max(1);
        let bits = 64 - v.leading_zeros() as i32;
        let k = ((62 - bits) / 2).max(0);
        let r = super::fixed::isqrt_u64(v << (2 * k)).max(1);
        let inv = (1u64 << 62) / r;
        let xh = Shr64::new(46 - k);
        let Ok(inv32) = u32::try_from(inv) else {
            // inv = 2³² (R = 2³⁰): the reference's formula, term by term.
            for ((x, &g), &t) in px.iter_mut().zip(gamma).zip(bt) {
                let num = cc * (*x as i64) - s1;
                let xv = super::fixed::requant64(num.wrapping_mul(inv as i64), 46 - k);
                let acc = xv.wrapping_mul(g as i64).wrapping_add(t - out.round);
                let o = sat_i8(
                    q.out_zero
                        .wrapping_add(super::fixed::requant64(acc, q.shift) as i32),
                );
                *x = lut.map_or(o, |t| t[(o as u8 ^ 0x80) as usize]);
            }
            continue;
        };
        let p = LnPixel {
            c: c as i32,
            s1: s1 as i32,
            inv: inv32,
            xh,
            out,
            z: q.out_zero,
        };
        match (xh.hi(), out.hi()) {
            (false, false) => p.run::<false, false>(px, gamma, bt, lut),
            (false, true) => p.run::<false, true>(px, gamma, bt, lut),
            (true, false) => p.run::<true, false>(px, gamma, bt, lut),
            (true, true) => p.run::<true, true>(px, gamma, bt, lut),
        }
    }
    true
}

/// The per-pixel constants of [`layer_norm_inplace`] and [`layer_norm_i16`].
struct LnPixel {
    c: i32,
    s1: i32,
    inv: u32,
    xh: Shr64,
    out: Shr64,
    z: i32,
}

/// Pass 1 of [`LnPixel`] on the target: `x̂·2¹⁶` of every element of `$x` into `$xb` (`i32`).
/// `$load` reads one input into r12 and advances r0 (`LDRSB …, #1` or `LDRSH …, #2`); `$shift`
/// is the split shift of r6:lr into lr ([`Shr64`]: `HI` = `$hi`).
///
/// It computes `num·inv + 2^(sh−1)` as `SMLAL(num, inv − 2³¹)` plus `num·2³¹` (added as
/// `num << 31` to the low word and `num >> 1` to the high word) — `inv − 2³¹` fits an `i32`
/// because `2³⁰ < inv < 2³²` — with `num = S1 − C·q` negated (`MLS`), so the signs flip. `num`
/// must fit an `i32` (the callers' bounds), `num·inv` an `i64`.
#[cfg(ldp_arm_dsp)]
macro_rules! ln_xhat {
    ($p:expr, $x:expr, $xb:expr, $hi:expr, $load:expr, $($shift:expr),+ $(,)?) => {{
        let (p, x, xb): (&LnPixel, _, &mut [i32]) = ($p, $x, $xb);
        let n = x.len().min(xb.len());
        if n > 0 {
            let end = x[..n].as_ptr_range().end;
            let ninv = (1i64 << 31).wrapping_sub(p.inv as i64) as i32;
            let sh = p.xh.s;
            // SAFETY: reads x[..n] and writes xb[..n] (n i32s), r0 and r2 in step, no other
            // memory; r6/r7 saved and restored; every other register declared.
            unsafe {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    $load,
                    "mls r12, r12, r3, r4",
                    "mov lr, r8",
                    "mov r6, r9",
                    "smlal lr, r6, r12, r5",
                    "subs lr, lr, r12, lsl #31",
                    "sbc r6, r6, r12, asr #1",
                    $($shift,)+
                    "str lr, [r2], #4",
                    "cmp r0, r1",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") x.as_ptr() => _,
                    in("r1") end,
                    inout("r2") xb.as_mut_ptr() => _,
                    in("r3") p.c,
                    in("r4") p.s1,
                    in("r5") ninv,
                    in("r8") p.xh.round as u32,
                    in("r9") (p.xh.round >> 32) as u32,
                    in("r10") if $hi { sh.wrapping_sub(32) } else { sh },
                    in("r11") 32u32.wrapping_sub(sh),
                    out("r12") _,
                    out("lr") _,
                )
            }
        }
    }};
}

impl LnPixel {
    /// One pixel in place: [`LnPixel::xhat_i8`] into a stack buffer, then [`LnPixel::affine`].
    fn run<const XH: bool, const OUT: bool>(
        &self,
        px: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        lut: Option<&[i8; 256]>,
    ) {
        let mut xb = [0i32; LN_MAXC];
        let n = px.len().min(LN_MAXC);
        let xb = &mut xb[..n];
        self.xhat_i8::<XH>(&px[..n], xb);
        self.affine::<OUT>(xb, &mut px[..n], gamma, bt, lut);
    }

    /// Pass 1, int8 inputs: `xb[i] = x̂·2¹⁶` of `x[i]` (`asm!` on the target).
    #[cfg(ldp_arm_dsp)]
    fn xhat_i8<const XH: bool>(&self, x: &[i8], xb: &mut [i32]) {
        if XH {
            ln_xhat!(self, x, xb, XH, "ldrsb r12, [r0], #1", "asr lr, r6, r10");
        } else {
            ln_xhat!(
                self,
                x,
                xb,
                XH,
                "ldrsb r12, [r0], #1",
                "lsr lr, lr, r10",
                "lsl r6, r6, r11",
                "orr lr, lr, r6"
            );
        }
    }

    /// Pass 1, `i16` inputs: `xb[i] = x̂·2¹⁶` of `x[i]` (`asm!` on the target).
    #[cfg(ldp_arm_dsp)]
    fn xhat_i16<const XH: bool>(&self, x: &[i16], xb: &mut [i32]) {
        if XH {
            ln_xhat!(self, x, xb, XH, "ldrsh r12, [r0], #2", "asr lr, r6, r10");
        } else {
            ln_xhat!(
                self,
                x,
                xb,
                XH,
                "ldrsh r12, [r0], #2",
                "lsr lr, lr, r10",
                "lsl r6, r6, r11",
                "orr lr, lr, r6"
            );
        }
    }

    /// Pass 1 in plain Rust (host tests).
    #[cfg(not(ldp_arm_dsp))]
    fn xhat<const XH: bool, T: Copy + Into<i32>>(&self, x: &[T], xb: &mut [i32]) {
        for (b, &v) in xb.iter_mut().zip(x) {
            let num = self.c * v.into() - self.s1;
            *b = self.xh.apply::<XH>(num as i64 * self.inv as i64);
            debug_assert_eq!(
                *b as i64,
                super::fixed::requant64(num as i64 * self.inv as i64, self.xh.s as i32)
            );
        }
    }
    #[cfg(not(ldp_arm_dsp))]
    fn xhat_i8<const XH: bool>(&self, x: &[i8], xb: &mut [i32]) {
        self.xhat::<XH, i8>(x, xb);
    }
    #[cfg(not(ldp_arm_dsp))]
    fn xhat_i16<const XH: bool>(&self, x: &[i16], xb: &mut [i32]) {
        self.xhat::<XH, i16>(x, xb);
    }

    /// Pass 2: `y[i] = sat(z + (x̂·2¹⁶·γ + bt[i]) >> T)`, then the table (`asm!` on the target;
    /// `bt` holds `β·2¹⁶` plus the rounding term).
    #[cfg(ldp_arm_dsp)]
    fn affine<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        lut: Option<&[i8; 256]>,
    ) {
        let n = y.len().min(xb.len()).min(gamma.len()).min(bt.len());
        if n == 0 {
            return;
        }
        let end = y[..n].as_ptr_range().end;
        let lutp = lut.map_or(core::ptr::null(), |t| t[128..].as_ptr());
        let (o_sh, o_up) = (self.out.s, 32u32.wrapping_sub(self.out.s));
        macro_rules! pass2 {
            ($($tail:expr),* $(,)?) => {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    "ldr r11, [r0], #4",
                    "ldrd lr, r6, [r1], #8",
                    "ldrsh r12, [r2], #2",
                    "smlal lr, r6, r11, r12",
                    $($tail,)*
                    "strb lr, [r3], #1",
                    "cmp r3, r4",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") xb.as_ptr() => _,
                    inout("r1") bt.as_ptr() => _,
                    inout("r2") gamma.as_ptr() => _,
                    inout("r3") y.as_mut_ptr() => _,
                    in("r4") end,
                    in("r5") if OUT { o_sh.wrapping_sub(32) } else { o_sh },
                    in("r8") o_up,
                    in("r9") self.z,
                    in("r10") lutp,
                    out("r11") _,
                    out("r12") _,
                    out("lr") _,
                )
            };
        }
        // SAFETY: reads xb[..n], bt[..n] (i64, `LDRD` on 8-byte aligned data), gamma[..n] and
        // the table (if any) at entry 128 + v for v in -128..=127 after `SSAT`; writes y[..n];
        // all pointers in step with r3 up to `end`. r6/r7 saved and restored; every other
        // register declared.
        unsafe {
            match (OUT, lut.is_some()) {
                (true, true) => pass2!(
                    "asr lr, r6, r5",
                    "add lr, lr, r9",
                    "ssat lr, #8, lr",
                    "ldrb lr, [r10, lr]"
                ),
                (true, false) => pass2!("asr lr, r6, r5", "add lr, lr, r9", "ssat lr, #8, lr"),
                (false, true) => pass2!(
                    "lsr lr, lr, r5",
                    "lsl r6, r6, r8",
                    "orr lr, lr, r6",
                    "add lr, lr, r9",
                    "ssat lr, #8, lr",
                    "ldrb lr, [r10, lr]"
                ),
                (false, false) => pass2!(
                    "lsr lr, lr, r5",
                    "lsl r6, r6, r8",
                    "orr lr, lr, r6",
                    "add lr, lr, r9",
                    "ssat lr, #8, lr"
                ),
            }
        }
    }

    /// Pass 2 in plain Rust (host tests).
    #[cfg(not(ldp_arm_dsp))]
    fn affine<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        lut: Option<&[i8; 256]>,
    ) {
        for (((o, &xh), &g), &t) in y.iter_mut().zip(xb).zip(gamma).zip(bt) {
            let acc = xh as i64 * g as i64 + t;
            let v = sat_i8(self.z.wrapping_add(self.out.shift::<OUT>(acc)));
            *o = match lut {
                Some(t) => t[(v as u8 ^ 0x80) as usize],
                None => v,
            };
        }
    }

    /// Pass 2 with an interpolated table ([`layer_norm_i16`]): `u = (x̂·2¹⁶·γ + bt[i]) >> s'`
    /// (`+ z` when `OUT`; else `z` is folded into `bt`), `SSAT` to 16 bits, then
    /// `y = (a[j] + d[j]·u) >> 8` with `(a, d) = tab[j + 128]`, `j = u >> 8` (`asm!` on the
    /// target).
    #[cfg(ldp_arm_dsp)]
    fn lerp<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        tab: &[[i32; 2]; 256],
    ) {
        let n = y.len().min(xb.len()).min(gamma.len()).min(bt.len());
        if n == 0 {
            return;
        }
        let end = y[..n].as_ptr_range().end;
        let (o_sh, o_up) = (self.out.s, 32u32.wrapping_sub(self.out.s));
        macro_rules! pass2 {
            ($($shift:expr),* $(,)?) => {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    "ldr r11, [r0], #4",
                    "ldrd lr, r6, [r1], #8",
                    "ldrsh r12, [r2], #2",
                    "smlal lr, r6, r11, r12",
                    $($shift,)*
                    "ssat lr, #16, lr",
                    "asr r11, lr, #8",
                    "add r11, r10, r11, lsl #3",
                    "ldrd r12, r6, [r11]",
                    "smlabb r12, r6, lr, r12",
                    "asr r12, r12, #8",
                    "strb r12, [r3], #1",
                    "cmp r3, r4",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") xb.as_ptr() => _,
                    inout("r1") bt.as_ptr() => _,
                    inout("r2") gamma.as_ptr() => _,
                    inout("r3") y.as_mut_ptr() => _,
                    in("r4") end,
                    in("r5") if OUT { o_sh.wrapping_sub(32) } else { o_sh },
                    in("r8") o_up,
                    in("r9") self.z,
                    in("r10") tab[128..].as_ptr(),
                    out("r11") _,
                    out("r12") _,
                    out("lr") _,
                )
            };
        }
        // SAFETY: reads xb[..n], bt[..n] (i64, `LDRD` on 8-byte aligned data), gamma[..n] and
        // the table at entry 128 + j for j = u >> 8 in -128..=127 after `SSAT #16` (`LDRD` of
        // an 8-byte entry, 4-byte aligned); writes y[..n]; all pointers in step with r3 up to
        // `end`. r6/r7 saved and restored; every other register declared.
        unsafe {
            if OUT {
                pass2!("asr lr, r6, r5", "add lr, lr, r9");
            } else {
                pass2!("lsr lr, lr, r5", "lsl r6, r6, r8", "orr lr, lr, r6");
            }
        }
    }

    /// The same computation in plain Rust (host tests); the debug assertion checks that the
    /// 16-bit saturation sees the exact `u` (no 32-bit truncation in the split shift).
    #[cfg(not(ldp_arm_dsp))]
    fn lerp<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        tab: &[[i32; 2]; 256],
    ) {
        for (((o, &xh), &g), &t) in y.iter_mut().zip(xb).zip(gamma).zip(bt) {
            let acc = xh as i64 * g as i64 + t;
            let u = if OUT {
                self.out.shift::<true>(acc) + self.z
            } else {
                self.out.shift::<false>(acc)
            };
            debug_assert_eq!(
                u as i64,
                (acc >> self.out.s) + if OUT { self.z as i64 } else { 0 }
            );
            let u = u.clamp(-32768, 32767);
            let [a, d] = tab[((u >> 8) + 128) as usize];
            *o = ((a + d * u) >> 8) as i8;
        }
    }
}

/// `S1 = Σx` (`SMLAD` with `1, 1`, `i32`) and `S2 = Σx²` (`SMLALD`, `i64`) of one pixel of
/// `i16` inputs, two at a time.
#[inline(always)]
fn ln16_sums(px: &[i16]) -> (i32, i64) {
    use prim::{smlad, smlald};
    let (mut s1, mut s2) = (0i32, 0i64);
    let mut pairs = px.chunks_exact(2);
    for p in &mut pairs {
        let w = p[0] as u16 as u32 | (p[1] as u16 as u32) << 16;
        s1 = smlad(w, 0x0001_0001, s1);
        s2 = smlald(w, w, s2);
    }
    for &v in pairs.remainder() {
        s1 += v as i32;
        s2 += (v as i32 * v as i32) as i64;
    }
    (s1, s2)
}

/// Integer LayerNorm of `i16` inputs into int8 (`kernels::layer_norm_i16`), exactly, with the
/// structure of [`layer_norm_inplace`]: per pixel `S1` (`SMLAD`, `i32`: `|S1| ≤ 2¹⁵·c`) and
/// `S2` (`SMLALD`, `i64`: `x² ≤ 2³⁰`), the reference's `i64` statistics, exact integer square
/// root and division, then two passes over the pixel (`asm!` on the target).
///
/// Bounds (`c ≤ 256`): `|num| = |C·q − S1| ≤ 2¹⁶·c ≤ 2²⁴` (an `i32`); `2³⁰ ≤ inv ≤ 2³²` as in
/// [`layer_norm_inplace`], so `|num·inv| ≤ 2⁵⁶` (inv = 2³² exactly takes the `i64` formula in
/// Rust for pass 1); `|x̂·2¹⁶| ≤ √(c−1)·2¹⁶·(1 + 2⁻²⁹) + 1 < 2²⁰` (`Σ num² = C·D` and
/// `Σ num = 0`, so `num² ≤ (C−1)·D`), so `|x̂·2¹⁶·γ + β·2¹⁶| < 2³⁶`.
///
/// Without a table: pass 2 is [`layer_norm_inplace`]'s (`ln_out`). With a table
/// (`ln_out_lerp`): `u = z·256 + requant64(acc, T − 8)`, clamped to the table's range, and the
/// two entries around it interpolated. Taken for `T ≥ 16` and `|z| ≤ 2¹⁶` (else `false`, the
/// portable kernel): then `s' = clamp(T − 8, 1, 62) ≥ 8`, and for `s' < 32` `|u| < 2³⁶/2⁸ + 2²⁴
/// < 2³¹`, so the low word of the split shift is `u` itself (`z·2^(s'+8)`, a multiple of
/// `2^s'`, is folded into `β·2¹⁶` and the rounding term); for `s' ≥ 32` the high word's shift
/// is exact anyway and `z·256` is added after it. `SSAT #16` then clamps the low end exactly
/// (`−2¹⁵` is the table's first entry, `f = 0`); the high end needs no clamp because the
/// staged table has `d[255] = 0` (the reference's `t[min(j+1, 255)] − t[j]`), so every `u` in
/// `255·256..2¹⁵` gives `t[255]` as the clamped `u = 255·256 − 2¹⁵` does. With `j = u >> 8`,
/// `f = u mod 256`, `lo = t[j+128]`, `d = t[min(j+129, 255)] − lo`, the reference's
/// `lo + ⌊(d·f + 128)/256⌋ = ⌊(256·lo + 128 + d·(u − 256·j))/256⌋ = ⌊(a + d·u)/256⌋` with the
/// staged `a = 256·lo + 128 − 256·j·d` (`|a| < 2²⁴`, `|d·u| < 2²³`: one `SMLABB`, one shift).
/// Stack: 5 KiB. Takes `c ≤ 256`.
pub(crate) fn layer_norm_i16(
    x: &[i16],
    c: usize,
    q: &super::kernels::NormQ<'_>,
    y: &mut [i8],
) -> bool {
    if c > LN_MAXC || super::kernels::check_norm16(x, c, q, y).is_err() {
        return false;
    }
    let lerp: Option<&[i8; 256]> = match q.lut {
        None => None,
        Some(t) => match <&[i8; 256]>::try_from(t) {
            Ok(t) if q.shift >= 16 && (-(1 << 16)..=1 << 16).contains(&q.out_zero) => Some(t),
            _ => return false,
        },
    };
    let cc = c as i64;
    let e = ((cc * cc) as u64).saturating_mul(q.eps_q8.max(0) as u64) >> 8;
    let out = Shr64::new(if lerp.is_some() { q.shift - 8 } else { q.shift });
    // With the table and s' < 32, z·2^(s'+8) (|z·2^(s'+8)| ≤ 2⁵⁵) joins β·2¹⁶ + rounding.
    let fold_z = lerp.is_some() && !out.hi();
    let z_hi = if fold_z {
        (q.out_zero as i64) << (out.s + 8)
    } else {
        0
    };
    let z = match (lerp.is_some(), fold_z) {
        (false, _) => q.out_zero,
        (true, false) => q.out_zero << 8,
        (true, true) => 0,
    };
    let mut bt = [0i64; LN_MAXC];
    for (t, &b) in bt.iter_mut().zip(&q.beta[..c]) {
        *t = ((b as i64) << 16) + out.round + z_hi;
    }
    let bt = &bt[..c];
    let gamma = &q.gamma[..c];
    let mut tab = [[0i32; 2]; 256];
    if let Some(t) = lerp {
        for (j, a) in tab.iter_mut().enumerate() {
            let lo = t[j] as i32;
            let d = t[(j + 1).min(255)] as i32 - lo;
            *a = [256 * lo + 128 - 256 * (j as i32 - 128) * d, d];
        }
    }
    let mut xb = [0i32; LN_MAXC];
    let xb = &mut xb[..c];
    for (px, o) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let (s1, s2) = ln16_sums(px);
        let s1 = s1 as i64;
        let d = (cc * s2 - s1 * s1).max(0) as u64;
        let v = d.saturating_add(e).max(1);
        let bits = 64 - v.leading_zeros() as i32;
        let k = ((62 - bits) / 2).max(0);
        let r = super::fixed::isqrt_u64(v << (2 * k)).max(1);
        let inv = (1u64 << 62) / r;
        let xh = Shr64::new(46 - k);
        let mut p = LnPixel {
            c: c as i32,
            s1: s1 as i32,
            inv: 0,
            xh,
            out,
            z,
        };
        match u32::try_from(inv) {
            Ok(inv32) => {
                p.inv = inv32;
                if xh.hi() {
                    p.xhat_i16::<true>(px, xb);
                } else {
                    p.xhat_i16::<false>(px, xb);
                }
            }
            Err(_) => {
                // inv = 2³² (R = 2³⁰): the reference's formula; x̂·2¹⁶ fits an i32 all the same.
                for (b, &v) in xb.iter_mut().zip(px) {
                    let num = cc * v as i64 - s1;
                    *b = super::fixed::requant64(num * inv as i64, 46 - k) as i32;
                }
            }
        }
        match (lerp.is_some(), out.hi()) {
            (false, false) => p.affine::<false>(xb, o, gamma, bt, None),
            (false, true) => p.affine::<true>(xb, o, gamma, bt, None),
            (true, false) => p.lerp::<false>(xb, o, gamma, bt, &tab),
            (true, true) => p.lerp::<true>(xb, o, gamma, bt, &tab),
        }
    }
    true
}

/// Bilinear resize (`kernels::resize_bilinear`), exactly: the Q20 weights of a pixel sum to
/// `2²⁰` (`(1024−λy)(1024−λx) + … = 1024²`), so `Σ w·(x − z) = Σ w·x − z·2²⁰`, and
/// `|Σ w·x| ≤ 2⁷·2²⁰`, `|z·2²⁰| ≤ 2²⁷`: the sum fits an `i32`, its product with the `i16`
/// multiplier an `i64` (no wrapping), then the split shift by `shift + 20`.
pub(crate) fn resize_bilinear(
    x: &[i8],
    (h, w, c): (usize, usize, usize),
    in_zero: &[i8],
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    (ho, wo): (usize, usize),
) -> bool {
    use super::kernels::taps_q10;
    if super::kernels::check_resize(x, (h, w, c), in_zero, mult, y, (ho, wo)).is_err() {
        return false;
    }
    let sh = Shr64::new(shift.saturating_add(20));
    let per_ch = in_zero.len() != 1 || mult.len() != 1;
    for oy in 0..ho {
        let (y0, y1, ly) = taps_q10(oy, h, ho);
        for ox in 0..wo {
            let (x0, x1, lx) = taps_q10(ox, w, wo);
            let wts = [
                ((1024 - ly) * (1024 - lx)) as i32,
                ((1024 - ly) * lx) as i32,
                (ly * (1024 - lx)) as i32,
                (ly * lx) as i32,
            ];
            let at = |yy: usize, xx: usize| &x[(yy * w + xx) * c..(yy * w + xx + 1) * c];
            let src = [at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1)];
            let o = (oy * wo + ox) * c;
            let dst = &mut y[o..o + c];
            let px = RzPixel {
                wts,
                sh,
                z: out_zero,
            };
            match (per_ch, sh.hi()) {
                (false, false) => px.run::<false>(dst, src, |_| (in_zero[0], mult[0])),
                (false, true) => px.run::<true>(dst, src, |_| (in_zero[0], mult[0])),
                (true, false) => px.run::<false>(dst, src, |ch| {
                    (in_zero[ch % in_zero.len()], mult[ch % mult.len()])
                }),
                (true, true) => px.run::<true>(dst, src, |ch| {
                    (in_zero[ch % in_zero.len()], mult[ch % mult.len()])
                }),
            }
        }
    }
    true
}

/// One output pixel of [`resize_bilinear`].
struct RzPixel {
    wts: [i32; 4],
    sh: Shr64,
    z: i32,
}

impl RzPixel {
    #[inline(always)]
    fn run<const HI: bool>(
        &self,
        dst: &mut [i8],
        src: [&[i8]; 4],
        zm: impl Fn(usize) -> (i8, i16),
    ) {
        let [w0, w1, w2, w3] = self.wts;
        let it = dst
            .iter_mut()
            .zip(src[0])
            .zip(src[1])
            .zip(src[2])
            .zip(src[3]);
        for (ch, ((((o, &a), &b), &cc), &d)) in it.enumerate() {
            let (z, m) = zm(ch);
            let s =
                w0 * a as i32 + w1 * b as i32 + w2 * cc as i32 + w3 * d as i32 - ((z as i32) << 20);
            *o = sat_i8(
                self.z
                    .wrapping_add(self.sh.apply::<HI>(s as i64 * m as i64)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::kernels::{depthwise_reference, pointwise_reference};
    use super::*;
    use std::{vec, vec::Vec};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }
        fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() as i64) % (hi - lo + 1)
        }
        fn i8s(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.next() as u8 as i8).collect()
        }
    }

    struct Params {
        weight: Vec<i8>,
        bias: Vec<i16>,
        bias_shift: u32,
        mult: Vec<u8>,
        lut: Option<Vec<i8>>,
        shift: i32,
        in_zero: i32,
        out_zero: i32,
    }

    impl Params {
        fn new(r: &mut Rng, wlen: usize, c_out: usize) -> Params {
            let lut = (r.next() % 4 == 0).then(|| r.i8s(256));
            let shift = match r.next() % 8 {
                0 => r.range(1, 62) as i32,
                1 => r.range(33, 62) as i32,
                _ => r.range(14, 30) as i32,
            };
            Params {
                weight: r.i8s(wlen),
                bias: if r.next() % 6 == 0 {
                    Vec::new()
                } else {
                    (0..c_out).map(|_| r.next() as i16).collect()
                },
                bias_shift: [0, 0, 0, 1, 2, 15][(r.next() % 6) as usize],
                mult: (0..c_out).map(|_| r.next() as u8).collect(),
                lut,
                shift,
                in_zero: r.range(-128, 127) as i32,
                out_zero: r.range(-128, 127) as i32,
            }
        }
        fn conv(&self) -> ConvQ<'_> {
            ConvQ {
                weight: &self.weight,
                bias: &self.bias,
                bias_shift: self.bias_shift,
                mult: &self.mult,
                shift: self.shift,
                in_zero: self.in_zero,
                out_zero: self.out_zero,
                lut: self.lut.as_deref(),
            }
        }
    }

    #[test]
    fn add_matches_reference() {
        use super::super::kernels::{add_inplace as add_ref, AddQ};
        let mut r = Rng(0x0dd_ba11);
        for case in 0..300 {
            let n = r.range(1, 700) as usize;
            let a = r.i8s(n);
            let b = r.i8s(n);
            let q = AddQ {
                a_zero: r.range(-128, 127) as i32,
                a_mult: if case % 9 == 0 {
                    r.next() as i32
                } else {
                    r.range(0, 1 << 30) as i32
                },
                b_zero: r.range(-128, 127) as i32,
                b_mult: r.range(0, 1 << 30) as i32,
                shift: if case % 5 == 0 {
                    r.range(-5, 70) as i32
                } else {
                    r.range(20, 40) as i32
                },
                out_zero: r.range(-128, 127) as i32,
            };
            let mut want = a.clone();
            add_ref(&mut want, &b, &q).unwrap();
            let mut got = a.clone();
            assert!(add_inplace(&mut got, &b, &q));
            assert_eq!(got, want, "case {case}: {q:?}");
        }
    }

    #[test]
    fn layer_norm_matches_reference() {
        use super::super::kernels::{layer_norm_inplace as ln_ref, NormQ};
        let mut r = Rng(0x1a7e_2a0f);
        for case in 0..300 {
            let c = match case {
                0 => 1,
                1 => 128,
                _ => r.range(1, 200) as usize,
            };
            let pixels = r.range(1, 12) as usize;
            let mut buf = r.i8s(c * pixels);
            if case % 4 == 0 {
                // Constant pixels (D = 0), small spreads, extremes.
                let v = r.next() as u8 as i8;
                buf[..c].fill(v);
                if pixels > 1 {
                    for (i, b) in buf[c..2 * c].iter_mut().enumerate() {
                        *b = if i % 2 == 0 { 127 } else { -128 };
                    }
                }
            }
            let gamma: Vec<i16> = (0..c).map(|_| r.next() as i16).collect();
            let beta: Vec<i16> = (0..c).map(|_| r.next() as i16).collect();
            let lut = r.i8s(256);
            let q = NormQ {
                gamma: &gamma,
                beta: &beta,
                shift: if case % 6 == 0 {
                    r.range(-2, 66) as i32
                } else {
                    r.range(14, 40) as i32
                },
                eps_q8: match case % 3 {
                    0 => 0,
                    1 => r.range(0, 1 << 20) as i32,
                    _ => r.next() as i32,
                },
                out_zero: r.range(-128, 127) as i32,
                lut: (case % 2 == 0).then_some(&lut[..]),
            };
            let mut want = buf.clone();
            ln_ref(&mut want, c, &q).unwrap();
            let mut got = buf.clone();
            assert!(layer_norm_inplace(&mut got, c, &q));
            assert_eq!(
                got, want,
                "case {case}: c {c}, shift {}, eps {}",
                q.shift, q.eps_q8
            );
        }
    }

    #[test]
    fn layer_norm_i16_matches_reference() {
        use super::super::kernels::{layer_norm_i16_reference as ln_ref, NormQ};
        let mut r = Rng(0x16_1a7e_2a0f);
        let (mut taken, mut lerp_taken, mut hi_lerp) = (0, 0, 0);
        for case in 0..1500 {
            let c = match case {
                0 => 1,
                1 => 128,
                2 => 256,
                3 => 2048,
                _ => {
                    (match r.next() % 10 {
                        0 | 1 => 128,
                        2 => r.range(257, 323),
                        3 => r.range(2040, 2056),
                        _ => r.range(1, 67),
                    }) as usize
                }
            };
            let pixels = r.range(1, 5) as usize;
            let spread = r.range(0, 15) as u32;
            let mut x: Vec<i16> = (0..c * pixels)
                .map(|_| match case % 3 {
                    0 => r.next() as i16,
                    1 => (r.next() as i16) >> spread,
                    _ => r.range(-300, 300) as i16,
                })
                .collect();
            // Edge pixels: constant (D = 0; with E = 0 that is inv = 2³²), alternating extremes,
            // all i16::MIN, one spike (the largest |x̂|, √(c−1)).
            match case % 6 {
                0 => x[..c].fill(r.next() as i16),
                1 => {
                    for (i, v) in x[..c].iter_mut().enumerate() {
                        *v = if i % 2 == 0 { i16::MAX } else { i16::MIN };
                    }
                }
                2 => x[..c].fill(i16::MIN),
                3 => {
                    let v = if r.next() % 2 == 0 {
                        i16::MIN
                    } else {
                        i16::MAX
                    };
                    x[..c].fill(-v.signum());
                    x[r.range(0, c as i64 - 1) as usize] = v;
                }
                _ => {}
            }
            let extreme = case % 7 == 0;
            let gamma: Vec<i16> = (0..c)
                .map(|_| match extreme {
                    true => [i16::MIN, i16::MAX][(r.next() % 2) as usize],
                    false => r.next() as i16,
                })
                .collect();
            let beta: Vec<i16> = (0..c)
                .map(|_| match extreme {
                    true => [i16::MIN, i16::MAX][(r.next() % 2) as usize],
                    false => r.next() as i16,
                })
                .collect();
            let lut = r.i8s(256);
            let q = NormQ {
                gamma: &gamma,
                beta: &beta,
                shift: match case % 5 {
                    0 => r.range(1, 62) as i32,
                    1 => r.range(-2, 72) as i32,
                    2 => r.range(38, 50) as i32,
                    _ => r.range(14, 34) as i32,
                },
                eps_q8: match case % 4 {
                    0 => 0,
                    1 => r.range(0, 1 << 20) as i32,
                    2 => r.range(0, 300) as i32,
                    _ => r.next() as i32,
                },
                out_zero: match case % 11 {
                    0 => r.next() as i32,
                    1 => [-(1 << 16), 1 << 16, (1 << 16) + 1][(r.next() % 3) as usize],
                    _ => r.range(-128, 127) as i32,
                },
                lut: (case % 2 == 0).then_some(&lut[..]),
            };
            let mut want = vec![0x55i8; x.len()];
            ln_ref(&x, c, &q, &mut want).unwrap();
            let mut got = vec![-0x56i8; x.len()];
            let took = layer_norm_i16(&x, c, &q, &mut got);
            let expect =
                c <= LN_MAXC && (q.lut.is_none() || (q.shift >= 16 && q.out_zero.abs() <= 1 << 16));
            assert_eq!(took, expect, "case {case}: c {c}, shift {}", q.shift);
            if took {
                taken += 1;
                if q.lut.is_some() {
                    lerp_taken += 1;
                    hi_lerp += (q.shift - 8 >= 32) as usize;
                }
                assert_eq!(
                    got,
                    want,
                    "case {case}: c {c}, pixels {pixels}, shift {}, eps {}, z {}, lut {}",
                    q.shift,
                    q.eps_q8,
                    q.out_zero,
                    q.lut.is_some()
                );
            }
        }
        assert!(
            taken > 600 && lerp_taken > 250 && hi_lerp > 30,
            "{taken} {lerp_taken} {hi_lerp}"
        );
    }

    #[test]
    fn resize_matches_reference() {
        use super::super::kernels::resize_bilinear as rz_ref;
        let mut r = Rng(0x5e51_2e00);
        for case in 0..200 {
            let (h, w, c) = (
                r.range(1, 13) as usize,
                r.range(1, 13) as usize,
                r.range(1, 40) as usize,
            );
            let (ho, wo) = (r.range(1, 13) as usize, r.range(1, 13) as usize);
            let x = r.i8s(h * w * c);
            let per_ch = case % 2 == 0;
            let nz = if per_ch { c } else { 1 };
            let zin = r.i8s(nz);
            let mult: Vec<i16> = (0..nz).map(|_| r.next() as i16).collect();
            let shift = if case % 5 == 0 {
                r.range(-30, 70) as i32
            } else {
                r.range(5, 25) as i32
            };
            let z = r.range(-128, 127) as i32;
            let mut want = vec![0i8; ho * wo * c];
            rz_ref(&x, h, w, c, &zin, &mult, shift, z, &mut want, ho, wo).unwrap();
            let mut got = vec![0i8; ho * wo * c];
            assert!(resize_bilinear(
                &x,
                (h, w, c),
                &zin,
                &mult,
                shift,
                z,
                &mut got,
                (ho, wo)
            ));
            assert_eq!(got, want, "case {case}");
        }
    }

    #[test]
    fn requant_forms_are_exact() {
        let mut r = Rng(0x1234_5678_9abc_def1);
        let edges = [
            0,
            1,
            -1,
            i32::MAX,
            i32::MIN,
            1 << 20,
            -(1 << 20),
            12345,
            -12345,
        ];
        for shift in -3..70 {
            let rq = Rq::new(shift);
            for m in [0u8, 1, 2, 127, 128, 181, 254, 255] {
                for &a in &edges {
                    assert_eq!(
                        rq.apply(a, rq.mult(m)),
                        requant(a, m as i32, shift),
                        "{a} {m} {shift}"
                    );
                }
                for _ in 0..200 {
                    let a = r.next() as i32 >> (r.next() % 32);
                    assert_eq!(rq.apply(a, rq.mult(m)), requant(a, m as i32, shift));
                }
            }
            for _ in 0..2000 {
                let (a, m) = (r.next() as i32, r.next() as u8);
                assert_eq!(rq.apply(a, rq.mult(m)), requant(a, m as i32, shift));
            }
        }
    }

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

    /// Int8 pointwise convs with an `i16` output: no table, any shift in `1..=62` (and
    /// out-of-range shifts, clamped), multipliers of either sign, large biases and zero points
    /// so that results saturate at both ends of int16.
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
