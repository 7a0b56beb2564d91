//! The Arm DSP back end's shared pieces — the DSP instructions (`asm!` on the target, plain-Rust
//! models on the host), the exact requantization forms ([`Rq`], [`Shr64`]) and small helpers —
//! used by the int8 kernels for Cortex-M cores with the DSP extension (Armv7E-M: Cortex-M4, M7;
//! Armv8-M Mainline with DSP: Cortex-M33, M55), which live beside the other back ends of their
//! operation: `kernels/{pointwise, depthwise, norm, add, resize}/arm_dsp.rs`. `build.rs` selects them at compile time (cfg
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
//! * Requantization is [`fixed::requant`](crate::quant::fixed::requant) — `round(acc·m / 2^s)`, round
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

use crate::quant::fixed::{requant, sat_i8};
use crate::quant::kernels::ConvQ;

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
#[cfg(ldp_arm_dsp)]
pub(crate) use dsp_on;

/// The DSP instructions, as `asm!` on the target and emulated on the host (tests).
#[cfg(ldp_arm_dsp)]
pub(crate) mod prim {
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
pub(crate) mod prim {
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

pub(crate) use prim::{smmla, smmulr, sxtb16, sxtb16_ror8};

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
    pub(crate) shift: i32,
    /// `Mulr`: `32 − s`.
    pub(crate) up: u32,
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
pub(crate) fn out_byte(v: i32, q: &ConvQ<'_>) -> i8 {
    let b = sat_i8(q.out_zero.wrapping_add(v));
    match q.lut {
        Some(t) => t[(b as i32 + 128) as usize],
        None => b,
    }
}

/// Four bytes `row[at..at + 4]` as a little-endian word, zeros past the end of `row`.
#[inline(always)]
pub(crate) fn word(row: &[i8], at: usize) -> u32 {
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
pub(crate) struct Shr64 {
    pub(crate) s: u32,
    pub(crate) round: i64,
}

impl Shr64 {
    pub(crate) fn new(shift: i32) -> Shr64 {
        let s = shift.clamp(1, 62) as u32;
        Shr64 {
            s,
            round: 1i64 << (s - 1),
        }
    }
    pub(crate) fn hi(&self) -> bool {
        self.s >= 32
    }
    /// `requant64(v, s) as i32`.
    #[inline(always)]
    pub(crate) fn apply<const HI: bool>(&self, v: i64) -> i32 {
        self.shift::<HI>(v.wrapping_add(self.round))
    }
    /// The shift alone, for values `t` that already hold the rounding term.
    #[inline(always)]
    pub(crate) fn shift<const HI: bool>(&self, t: i64) -> i32 {
        if HI {
            ((t >> 32) as i32) >> (self.s - 32)
        } else {
            (((t as u64 as u32) >> self.s) | (((t as u64 >> 32) as u32) << (32 - self.s))) as i32
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Random data for the DSP kernels' host tests.
    extern crate std;
    use crate::quant::kernels::ConvQ;
    use std::vec::Vec;

    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }
        pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
            lo + (self.next() as i64) % (hi - lo + 1)
        }
        pub(crate) fn i8s(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.next() as u8 as i8).collect()
        }
    }

    pub(crate) struct Params {
        pub(crate) weight: Vec<i8>,
        pub(crate) bias: Vec<i16>,
        pub(crate) bias_shift: u32,
        pub(crate) mult: Vec<u8>,
        pub(crate) lut: Option<Vec<i8>>,
        pub(crate) shift: i32,
        pub(crate) in_zero: i32,
        pub(crate) out_zero: i32,
    }

    impl Params {
        pub(crate) fn new(r: &mut Rng, wlen: usize, c_out: usize) -> Params {
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
        pub(crate) fn conv(&self) -> ConvQ<'_> {
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
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::test_util::Rng;
    use super::*;

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
}
