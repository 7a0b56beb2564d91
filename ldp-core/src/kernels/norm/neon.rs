//! AArch64 NEON int8 LayerNorm of 16-bit inputs (`quant::kernels::layer_norm_i16`), exactly the
//! integers of `layer_norm_i16_reference`, with and without the interpolated table.
//!
//! - **Statistics**: per 8 channels (two independent sets of accumulators) `S1` by `SADALP` (pair sums into `i32` lanes, `|S1| ≤ 2^15·c`)
//!   and `S2` by `SMULL` + `SMLAL2` (two squares `≤ 2^30` each: their sum `≤ 2^31` is exact as a
//!   `u32`) then `UADALP` into `u64` lanes. The per-pixel square root and division are scalar, as
//!   the reference: `isqrt` by `FSQRT` with one exact correction step each way (the same value as
//!   `isqrt_u64`, see [`isqrt_fsqrt`]), one `UDIV`.
//! - **`x̂·2^16 = requant64(num·inv, 46 − k)`**: `num = C·x − S1` by `SMLAL` (`|num| ≤ 2^16·c`
//!   fits `i32`); for `c ≤ 1024`, `inv ∈ (2^31, 2^32]` always (the shifted argument of the square
//!   root has 61 or 62 bits, so `R ∈ [2^30, 2^31)`), written `inv = 2^32 − m` with `0 ≤ m < 2^31`:
//!   `num·inv = (num << 32) − num·m` by `SHLL` + `SMLSL` (exact in 64 bits), the rounding shift by
//!   `SRSHL` (the reference's `+ 2^(s−1)`, `>> s` never overflows here); the result fits `i32`
//!   (`< 2^16·√c + 1`). A pixel whose `inv` is outside that range (not reachable for `c ≤ 1024`,
//!   kept for safety) runs the reference's scalar code.
//! - **`acc = x̂·γ + β·2^16`** by `SMLAL` on staged `γ` (`i32`) and `β·2^16` (`i64`), exact.
//! - **Without a table**: `requant64(acc, T)` by `SRSHL`, truncation to `i32` (`XTN`, the
//!   reference's `as i32`), wrapping add of `z_out`, saturation by `SQXTN` twice.
//! - **With the table** (`ln_out_lerp`): `v8` by one `SRSHL` (rounding right shift by `T − 8`, or
//!   left shift by `8 − max(T, 0)`), then `u = clamp(z_out·2^8 + v8, −2^15, 127·2^8)` as
//!   `SQXTN` to `i32`, `SQADD` of `z_out·2^8`, `SQXTN` to `i16`, `SMIN` (saturation is monotone
//!   and the clamp range lies inside each saturated range, so the result is the exact clamp).
//!   The two table entries around `u` by `TBL`/`TBX` on two staged 256-byte tables indexed by
//!   the high byte of `u` (`t0[b] = t[b ^ 0x80]`, `t1[b] = t[min((b ^ 0x80) + 1, 255)]`), and
//!   `⌊(d·f + 128) / 256⌋` as `SQRDMULH(d·2^7, f)` (`(2·d·2^7·f + 2^15) >> 16`, no saturation
//!   with `|d| ≤ 255`, `0 ≤ f ≤ 255`).
//!
//! Takes `1 ≤ c ≤ 1024` (staging: 12 KiB of stack); `c % 8` tail channels run the reference's
//! scalar code (`ln_out`, `ln_out_lerp`).

use core::arch::aarch64::*;
use core::arch::asm;
use core::mem::MaybeUninit;

use crate::kernels::norm::int8::{check_norm16, ln_out, ln_out_lerp};
use crate::quant::kernels::NormQ;

/// Largest channel count the NEON LayerNorm takes.
const LN_MAX_C: usize = 1024;

/// Runs the NEON LayerNorm of 16-bit inputs if `1 ≤ c ≤ 1024`, the parameters are valid and,
/// with a table, `z_out` is in `i16` range (so `z_out·2^8` fits `i32`); else `false`, nothing
/// written.
pub(crate) fn layer_norm_i16(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> bool {
    if !cfg!(target_feature = "neon")
        || c == 0
        || c > LN_MAX_C
        || (q.lut.is_some() && !(-32768..=32767).contains(&q.out_zero))
        || check_norm16(x, c, q, y).is_err()
    {
        return false;
    }
    // SAFETY: NEON is enabled for this target (checked above); `check_norm16` just verified
    // gamma/beta = c, lut = 256, x.len() % c == 0 and y.len() == x.len(); 1 ≤ c ≤ 1024;
    // z_out·2^8 fits i32 when there is a table.
    unsafe { ln16_run(x, c, q, y) };
    true
}

/// `floor(sqrt(v))`, exactly — the value of [`crate::quant::fixed::isqrt_u64`] (the floor of the
/// square root is unique): the IEEE square root (`FSQRT`) of `v` rounded to f64 is within 1 of
/// the result, and one correction step each way makes it exact (as `isqrt_sse2` on x86-64).
#[inline(always)]
pub(crate) fn isqrt_fsqrt(v: u64) -> u64 {
    let f: f64;
    // SAFETY: a register-only floating-point instruction (FP is part of this target).
    unsafe {
        asm!(
            "fsqrt {r:d}, {a:d}",
            r = lateout(vreg) f,
            a = in(vreg) v as f64,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    let mut r = (f as u64).min((1 << 32) - 1);
    if (r as u128) * (r as u128) > v as u128 {
        r -= 1;
    }
    if ((r + 1) as u128) * ((r + 1) as u128) <= v as u128 {
        r += 1;
    }
    r
}

/// 8 `i16` at `p` (`LD1 {v.8h}`: element alignment only, which an `i16` pointer has).
///
/// # Safety
/// `p` valid for 8 `i16`.
#[inline(always)]
unsafe fn ld8h(p: *const i16) -> int16x8_t {
    let v: int16x8_t;
    // SAFETY: reads 16 bytes at `p` (valid and 2-byte aligned per the contract).
    unsafe {
        asm!(
            "ld1 {{{v:v}.8h}}, [{p}]",
            v = out(vreg) v,
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// Stores the 16 bytes of `v` at `p` (`ST1 {v.16b}`, no alignment requirement).
///
/// # Safety
/// `p` valid for 16 bytes.
#[inline(always)]
pub(crate) unsafe fn st16(p: *mut i8, v: int8x16_t) {
    // SAFETY: writes 16 bytes at `p` (valid per the contract), byte elements.
    unsafe {
        asm!(
            "st1 {{{v:v}.16b}}, [{p}]",
            v = in(vreg) v,
            p = in(reg) p,
            options(nostack, preserves_flags),
        );
    }
}

/// `(t0[i], t1[i])` for the 16 bytes of `i` (two 256-byte tables): `TBL` on the first 64
/// entries, `TBX` on the next three quarters with the index lowered by 64 each time (an index
/// out of a quarter's range leaves the byte as it is). Clobbers v24–v31.
///
/// # Safety
/// `t0`, `t1` valid for 256 bytes each.
#[inline(always)]
unsafe fn tbl2x256(
    i: uint8x16_t,
    k64: uint8x16_t,
    t0: *const u8,
    t1: *const u8,
) -> (int8x16_t, int8x16_t) {
    let (lo, hi): (int8x16_t, int8x16_t);
    // SAFETY: reads the 256 bytes at `t0` and at `t1` (valid per the contract, byte elements);
    // v24–v31 are declared clobbered.
    unsafe {
        asm!(
            "ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{t0}], #64",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t1}], #64",
            "tbl {lo:v}.16b, {{v24.16b, v25.16b, v26.16b, v27.16b}}, {i:v}.16b",
            "tbl {hi:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            "sub {i:v}.16b, {i:v}.16b, {k:v}.16b",
            "ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{t0}], #64",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t1}], #64",
            "tbx {lo:v}.16b, {{v24.16b, v25.16b, v26.16b, v27.16b}}, {i:v}.16b",
            "tbx {hi:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            "sub {i:v}.16b, {i:v}.16b, {k:v}.16b",
            "ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{t0}], #64",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t1}], #64",
            "tbx {lo:v}.16b, {{v24.16b, v25.16b, v26.16b, v27.16b}}, {i:v}.16b",
            "tbx {hi:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            "sub {i:v}.16b, {i:v}.16b, {k:v}.16b",
            "ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [{t0}]",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t1}]",
            "tbx {lo:v}.16b, {{v24.16b, v25.16b, v26.16b, v27.16b}}, {i:v}.16b",
            "tbx {hi:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            t0 = inout(reg) t0 => _,
            t1 = inout(reg) t1 => _,
            i = inout(vreg_low16) i => _,
            k = in(vreg_low16) k64,
            lo = out(vreg_low16) lo,
            hi = out(vreg_low16) hi,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    (lo, hi)
}

/// `v` unchanged (no instruction): hides the value from LLVM, which otherwise folds the exact
/// 64-bit product `(num << 32) − num·m` back into `num·inv` (a 64-bit multiply NEON lacks,
/// done lane by lane in general registers) and re-extends narrowed lanes by shifts.
#[inline(always)]
fn opaque(mut v: int32x4_t) -> int32x4_t {
    // SAFETY: an empty asm block that leaves its register operand unchanged.
    unsafe {
        asm!("/* {v:v} */", v = inout(vreg) v, options(pure, nomem, nostack, preserves_flags))
    };
    v
}

/// `ns1 + x·c` of the low and high 4 lanes (`SMLAL`, `SMLAL2`; LLVM otherwise widens `x` and
/// uses `MLA` on copies of `ns1`).
#[inline(always)]
fn num8(ns1: int32x4_t, x: int16x8_t, cv: int16x8_t) -> (int32x4_t, int32x4_t) {
    let (mut lo, mut hi) = (ns1, ns1);
    // SAFETY: register-only NEON instructions.
    unsafe {
        asm!(
            "smlal {lo:v}.4s, {x:v}.4h, {c:v}.4h",
            "smlal2 {hi:v}.4s, {x:v}.8h, {c:v}.8h",
            x = in(vreg) x,
            c = in(vreg) cv,
            lo = inout(vreg) lo,
            hi = inout(vreg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (lo, hi)
}

/// The 4 lanes of `v` as `i64` shifted left by 32 (`SHLL`, `SHLL2`), low and high halves.
#[inline(always)]
fn shll32(v: int32x4_t) -> (int64x2_t, int64x2_t) {
    let (lo, hi): (int64x2_t, int64x2_t);
    // SAFETY: register-only NEON instructions.
    unsafe {
        asm!(
            "shll {lo:v}.2d, {v:v}.2s, #32",
            "shll2 {hi:v}.2d, {v:v}.4s, #32",
            v = in(vreg) v,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (lo, hi)
}

/// Staged per-channel constants: `γ` as `i32`, `β·2^16` as `i64` (16-byte aligned, read as
/// vectors), and the two tables of [`tbl2x256`].
#[repr(C, align(16))]
struct Stage {
    g: [i32; LN_MAX_C],
    kb: [i64; LN_MAX_C],
    t0: [u8; 256],
    t1: [u8; 256],
}

/// Per-pixel values: `−S1` in every lane, `m = 2^32 − inv`, `−(46 − k)` for `SRSHL`.
struct Px {
    ns1: int32x4_t,
    m: int32x4_t,
    shx: int64x2_t,
}

/// `acc = x̂·γ + β·2^16` (64-bit) of 8 channels `x` at staged offset `i`: four `int64x2_t`.
///
/// # Safety
/// NEON available; `st.g`, `st.kb` initialized at `i..i + 8`, `i % 8 == 0`.
#[inline(always)]
unsafe fn acc8(x: int16x8_t, cv: int16x8_t, p: &Px, st: *const Stage, i: usize) -> [int64x2_t; 4] {
    // SAFETY: register operations; aligned reads of staged vectors (Stage is 16-byte aligned,
    // i % 8 == 0 so the offsets are multiples of 16 bytes) initialized per the contract.
    unsafe {
        let (num0, num1) = num8(p.ns1, x, cv);
        let m = p.m;
        let (h0, h1) = shll32(num0);
        let (h2, h3) = shll32(num1);
        let p0 = vmlsl_s32(h0, vget_low_s32(num0), vget_low_s32(m));
        let p1 = vmlsl_high_s32(h1, num0, m);
        let p2 = vmlsl_s32(h2, vget_low_s32(num1), vget_low_s32(m));
        let p3 = vmlsl_high_s32(h3, num1, m);
        let x0 = opaque(vmovn_high_s64(
            vmovn_s64(vrshlq_s64(p0, p.shx)),
            vrshlq_s64(p1, p.shx),
        ));
        let x1 = opaque(vmovn_high_s64(
            vmovn_s64(vrshlq_s64(p2, p.shx)),
            vrshlq_s64(p3, p.shx),
        ));
        let gp = (core::ptr::addr_of!((*st).g) as *const i32).add(i) as *const int32x4_t;
        let kp = (core::ptr::addr_of!((*st).kb) as *const i64).add(i) as *const int64x2_t;
        let (g0, g1) = (*gp, *gp.add(1));
        [
            vmlal_s32(*kp, vget_low_s32(x0), vget_low_s32(g0)),
            vmlal_high_s32(*kp.add(1), x0, g0),
            vmlal_s32(*kp.add(2), vget_low_s32(x1), vget_low_s32(g1)),
            vmlal_high_s32(*kp.add(3), x1, g1),
        ]
    }
}

/// Without a table: `sat8(z_out + (requant64(acc, T) as i32))` of 8 channels.
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn out_plain(a: [int64x2_t; 4], sht: int64x2_t, oz: int32x4_t) -> int8x8_t {
    // SAFETY: register-only NEON operations.
    unsafe {
        let r0 = vmovn_high_s64(vmovn_s64(vrshlq_s64(a[0], sht)), vrshlq_s64(a[1], sht));
        let r1 = vmovn_high_s64(vmovn_s64(vrshlq_s64(a[2], sht)), vrshlq_s64(a[3], sht));
        let o16 = vqmovn_high_s32(vqmovn_s32(vaddq_s32(r0, oz)), vaddq_s32(r1, oz));
        vqmovn_s16(o16)
    }
}

/// With a table: `u = clamp(z_out·2^8 + v8, −2^15, 127·2^8)` of 8 channels as `i16`.
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn out_u(a: [int64x2_t; 4], sh8: int64x2_t, oz8: int32x4_t, uhi: int16x8_t) -> int16x8_t {
    // SAFETY: register-only NEON operations.
    unsafe {
        let n0 = vqmovn_high_s64(vqmovn_s64(vrshlq_s64(a[0], sh8)), vrshlq_s64(a[1], sh8));
        let n1 = vqmovn_high_s64(vqmovn_s64(vrshlq_s64(a[2], sh8)), vrshlq_s64(a[3], sh8));
        let u = vqmovn_high_s32(vqmovn_s32(vqaddq_s32(n0, oz8)), vqaddq_s32(n1, oz8));
        vminq_s16(u, uhi)
    }
}

/// The interpolated table outputs of 16 channels `ua`, `ub` (see the module docs).
///
/// # Safety
/// NEON available; `st.t0`, `st.t1` initialized.
#[inline(always)]
unsafe fn lerp16(ua: int16x8_t, ub: int16x8_t, st: *const Stage, k64: uint8x16_t) -> int8x16_t {
    // SAFETY: register operations; the staged tables (256 bytes each) per the contract.
    unsafe {
        let hb = vshrn_high_n_s16::<8>(vshrn_n_s16::<8>(ua), ub);
        let (lo, hi) = tbl2x256(
            vreinterpretq_u8_s8(hb),
            k64,
            core::ptr::addr_of!((*st).t0) as *const u8,
            core::ptr::addr_of!((*st).t1) as *const u8,
        );
        let ff = vdupq_n_s16(255);
        let da = vshlq_n_s16::<7>(vsubl_s8(vget_low_s8(hi), vget_low_s8(lo)));
        let db = vshlq_n_s16::<7>(vsubl_high_s8(hi, lo));
        let oa = vaddw_s8(vqrdmulhq_s16(da, vandq_s16(ua, ff)), vget_low_s8(lo));
        let ob = vaddw_high_s8(vqrdmulhq_s16(db, vandq_s16(ub, ff)), lo);
        vmovn_high_s16(vmovn_s16(oa), ob)
    }
}

/// `E = C²·eps_q8 / 256` (as `ln_eps` of the frame).
fn ln_eps(c: usize, q: &NormQ<'_>) -> u64 {
    let cc = c as u64;
    (cc * cc).saturating_mul(q.eps_q8.max(0) as u64) >> 8
}

/// # Safety
/// Parameters validated (`check_norm16`), `1 ≤ c ≤ 1024`; NEON available.
unsafe fn ln16_run(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) {
    let cc = c as i64;
    let e = ln_eps(c, q);
    let c8 = c / 8 * 8;
    let c16 = c / 16 * 16;
    let mut stage = MaybeUninit::<Stage>::uninit();
    let sp = stage.as_mut_ptr();
    // SAFETY: writes through `sp` into the fields of the local `stage` at indices < c8 ≤ 1024
    // (γ, β·2^16) and < 256 (tables); only those are read below (channels < c8, the tables when
    // q.lut is Some).
    unsafe {
        let g = core::ptr::addr_of_mut!((*sp).g) as *mut i32;
        let kb = core::ptr::addr_of_mut!((*sp).kb) as *mut i64;
        for ch in 0..c8 {
            g.add(ch).write(q.gamma[ch] as i32);
            kb.add(ch).write((q.beta[ch] as i64) << 16);
        }
        if let Some(t) = q.lut {
            let t0 = core::ptr::addr_of_mut!((*sp).t0) as *mut u8;
            let t1 = core::ptr::addr_of_mut!((*sp).t1) as *mut u8;
            for b in 0..256usize {
                let j = b ^ 0x80;
                t0.add(b).write(t[j] as u8);
                t1.add(b).write(t[(j + 1).min(255)] as u8);
            }
        }
    }
    let st = sp as *const Stage;
    let t = q.shift.clamp(1, 62) as i64;
    let sh8 = if q.shift > 8 {
        -((q.shift - 8).clamp(1, 62) as i64)
    } else {
        (8 - q.shift.max(0)) as i64
    };
    // SAFETY (whole body): NEON available; 8-value loads of x at i + 8 ≤ c8 inside a pixel of c
    // values, 8- and 16-byte stores of y at i + 8 ≤ c8 (i + 16 ≤ c16) inside the same pixel of
    // y (y.len() == x.len()); staged reads at channels < c8 and the tables as initialized above.
    unsafe {
        let cv = vdupq_n_s16(c as i16);
        let sht = vdupq_n_s64(-t);
        let sh8v = vdupq_n_s64(sh8);
        let oz = vdupq_n_s32(q.out_zero);
        let oz8 = vdupq_n_s32(q.out_zero.wrapping_shl(8));
        let uhi = vdupq_n_s16(127 << 8);
        let k64 = vdupq_n_u8(64);
        for (xs, ys) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            let (p, o) = (xs.as_ptr(), ys.as_mut_ptr());
            let (mut s1v, mut s1w) = (vdupq_n_s32(0), vdupq_n_s32(0));
            let (mut s2v, mut s2w) = (vdupq_n_u64(0), vdupq_n_u64(0));
            let mut i = 0;
            while i < c16 {
                let (v, w) = (ld8h(p.add(i)), ld8h(p.add(i + 8)));
                s1v = vpadalq_s16(s1v, v);
                s1w = vpadalq_s16(s1w, w);
                let m = vmlal_high_s16(vmull_s16(vget_low_s16(v), vget_low_s16(v)), v, v);
                let n = vmlal_high_s16(vmull_s16(vget_low_s16(w), vget_low_s16(w)), w, w);
                s2v = vpadalq_u32(s2v, vreinterpretq_u32_s32(m));
                s2w = vpadalq_u32(s2w, vreinterpretq_u32_s32(n));
                i += 16;
            }
            if i < c8 {
                let v = ld8h(p.add(i));
                s1v = vpadalq_s16(s1v, v);
                let m = vmlal_high_s16(vmull_s16(vget_low_s16(v), vget_low_s16(v)), v, v);
                s2v = vpadalq_u32(s2v, vreinterpretq_u32_s32(m));
            }
            // |S1| ≤ 2^15·c < 2^31 in every pair sum and in total.
            let s1v = vaddq_s32(s1v, s1w);
            let s2v = vaddq_u64(s2v, s2w);
            let (mut s1, mut s2) = (vaddvq_s32(s1v) as i64, vaddvq_u64(s2v) as i64);
            for &v in &xs[c8..] {
                s1 += v as i64;
                s2 += (v as i64) * (v as i64);
            }
            // The reference's statistics (`ln_stats`).
            let d = (cc * s2 - s1 * s1).max(0) as u64;
            let v = d.saturating_add(e).max(1);
            let bits = 64 - v.leading_zeros() as i32;
            let k = ((62 - bits) / 2).max(0);
            let r = isqrt_fsqrt(v << (2 * k)).max(1);
            let inv = ((1u64 << 62) / r) as i64;
            if inv <= 1 << 31 || inv > 1 << 32 {
                // Not reached for c ≤ 1024 (see the module docs): the reference's code.
                for i in 0..c {
                    let num = cc * xs[i] as i64 - s1;
                    ys[i] = match q.lut {
                        None => ln_out(num, inv, k, i, q),
                        Some(t) => ln_out_lerp(num, inv, k, i, q, t),
                    };
                }
                continue;
            }
            let px = Px {
                ns1: vdupq_n_s32(-(s1 as i32)),
                m: vdupq_n_s32(((1i64 << 32) - inv) as i32),
                shx: vdupq_n_s64(-((46 - k) as i64)),
            };
            let mut i = 0;
            match q.lut {
                None => {
                    while i < c8 {
                        let a = acc8(ld8h(p.add(i)), cv, &px, st, i);
                        crate::kernels::pointwise::neon::sdot::st8(o.add(i), out_plain(a, sht, oz));
                        i += 8;
                    }
                }
                Some(_) => {
                    while i < c16 {
                        let ua = out_u(acc8(ld8h(p.add(i)), cv, &px, st, i), sh8v, oz8, uhi);
                        let ub =
                            out_u(acc8(ld8h(p.add(i + 8)), cv, &px, st, i + 8), sh8v, oz8, uhi);
                        st16(o.add(i), lerp16(ua, ub, st, k64));
                        i += 16;
                    }
                    if i < c8 {
                        let ua = out_u(acc8(ld8h(p.add(i)), cv, &px, st, i), sh8v, oz8, uhi);
                        let r = lerp16(ua, ua, st, k64);
                        crate::kernels::pointwise::neon::sdot::st8(o.add(i), vget_low_s8(r));
                    }
                }
            }
            for i in c8..c {
                let num = cc * xs[i] as i64 - s1;
                ys[i] = match q.lut {
                    None => ln_out(num, inv, k, i, q),
                    Some(t) => ln_out_lerp(num, inv, k, i, q, t),
                };
            }
        }
    }
}
