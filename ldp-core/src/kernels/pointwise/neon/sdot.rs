//! AArch64 int8 pointwise kernel with the dot-product instructions (FEAT_DotProd: `SDOT`),
//! selected at run time ([`crate::kernels::cpu::dotprod`]); CPUs without it (Cortex-A53, A72)
//! keep the NEON kernel of [`super::neon`].
//!
//! **Layout.** The weights of a block of 8 output channels are repacked once per block into a
//! stack buffer: per group of 4 input channels, two 16-byte vectors holding outputs 0–3 and
//! 4–7, 4 consecutive channels each (zeros past `c_in` and past `c_out`). A tile is 8 outputs ×
//! 8 pixels: 16 accumulators of 4 `i32` lanes, one lane per output channel. Per 16 input
//! channels it loads one 16-byte vector per pixel (the input row itself, no staging) and the 8
//! packed weight vectors, then runs 64 `SDOT Vd.4S, Vw.16B, Vx.4B[l]` (indexed form: the 4
//! channels `4l..4l+4` of the pixel against each output's 4 weights): 1024 MACs in about 80
//! instructions. The accumulators hold outputs directly (no horizontal reduction), start at the
//! biases, and are requantized 4 lanes at a time.
//!
//! **Bit-identity.** `SDOT` adds four exact `i8·i8` products to each `i32` lane, wrapping
//! modulo 2³² like the reference's `wrapping_add`: the same sum in another order. The input
//! zero point of a pointwise conv is folded into its bias at convert time (see
//! [`crate::quant::kernels::ConvQ::in_zero`]), so the raw `i8` inputs are multiplied as the reference
//! does. Requantization is the reference's arithmetic on 4 lanes (exact 64-bit product, `+
//! 2^(s−1)`, arithmetic shift, truncation to `i32`, wrapping zero point, saturation; the table
//! in scalar code). Channel tails (`c_in % 16`) read the last input bytes through a zero-padded
//! copy (their packed weights are zero past `c_in`), pixel tails take 1-pixel tiles, output
//! tails store only the outputs that exist.

use core::arch::aarch64::*;
use core::arch::asm;

use crate::error::{check_len, Error};
use crate::quant::kernels::{ConvOut, ConvQ};

/// Outputs per tile (two vectors of 4 lanes).
const TO: usize = 8;
/// Pixels per full tile.
const TP: usize = 8;
/// Largest `c_in` (rounded up to 16) this kernel takes: the packed block is `8 · KMAX` bytes
/// (16 KiB) of stack.
const KMAX: usize = 2048;

/// Runs the SDOT kernel when the CPU has FEAT_DotProd (and it is allowed,
/// [`crate::kernels::cpu::set_dotprod`]) and `c_in ≤ 2048`; `false` (nothing written)
/// otherwise. Shapes validated by the caller.
pub(crate) fn pointwise<Y: SdotOut + crate::quant::kernels::ConvOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) -> bool {
    if c_in.div_ceil(16) * 16 > KMAX || !crate::kernels::cpu::dotprod() {
        return false;
    }
    if crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    // SAFETY: FEAT_DotProd detected just above; `check_pw` just verified x = pixels·c_in,
    // weight = c_out·c_in, bias (empty or c_out), mult = c_out, y = pixels·c_out, without
    // overflow.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The SDOT kernel with its own shape checks, for tests and benchmarks: `Ok(false)` (nothing
/// written) when the CPU lacks FEAT_DotProd or `c_in > 2048`.
pub fn pointwise_sdot<Y: SdotOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
) -> Result<bool, Error> {
    if c_in == 0 || c_out == 0 || x.len() % c_in != 0 {
        return Err(Error::InvalidConfig("int8 pointwise: bad shape"));
    }
    let pixels = x.len() / c_in;
    let wlen = c_in
        .checked_mul(c_out)
        .ok_or(Error::InvalidConfig("int8 pointwise: bad shape"))?;
    check_len("int8 weight", q.weight, wlen)?;
    crate::quant::kernels::check_bias_mult(q, c_out)?;
    if let Some(t) = q.lut {
        if core::mem::size_of::<Y>() != 1 {
            return Err(Error::InvalidConfig(
                "int8 pointwise: a 16-bit output takes no table",
            ));
        }
        check_len("int8 lut", t, 256)?;
    }
    let n = pixels
        .checked_mul(c_out)
        .ok_or(Error::InvalidConfig("int8 pointwise: bad shape"))?;
    check_len("int8 pointwise output", y, n)?;
    Ok(pointwise(x, c_in, q, c_out, y, pixels))
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
}

/// The output types of the SDOT kernel (`i8` and `i16`, as [`ConvOut`]): how 8 requantized
/// lanes (zero point added, not yet saturated) are stored.
pub trait SdotOut: ConvOut + sealed::Sealed {
    /// Saturates `lo` (outputs 0–3) and `hi` (4–7) to the type, applies the table (`i8`
    /// only) and stores the first `n ≤ 8` of them at `dst`.
    ///
    /// # Safety
    /// NEON available; `dst` valid for `n` elements.
    #[doc(hidden)]
    unsafe fn store8(lo: int32x4_t, hi: int32x4_t, dst: *mut Self, n: usize, lut: *const i8);

    /// [`SdotOut::store8`] for two pixels (`a` to `dst0`, `b` to `dst1`).
    ///
    /// # Safety
    /// As [`SdotOut::store8`], for both.
    #[doc(hidden)]
    #[inline(always)]
    unsafe fn store8x2(
        a: (int32x4_t, int32x4_t),
        b: (int32x4_t, int32x4_t),
        dst0: *mut Self,
        dst1: *mut Self,
        n: usize,
        lut: *const i8,
    ) {
        // SAFETY: per the contract.
        unsafe {
            Self::store8(a.0, a.1, dst0, n, lut);
            Self::store8(b.0, b.1, dst1, n, lut);
        }
    }
}

/// `t[v + 128]` for the 16 bytes of `v` (`t`: the conv's 256-entry table): `TBL` on the first
/// 64 entries, `TBX` on the next three quarters with the index lowered by 64 each time
/// (an index out of a quarter's range leaves the byte as it is). Each quarter is loaded into
/// v28–v31 just before its lookup, so only 4 vector registers are clobbered.
///
/// # Safety
/// `t` valid for 256 bytes.
#[inline(always)]
pub(crate) unsafe fn lut16(v: int8x16_t, t: *const i8) -> int8x16_t {
    let r: int8x16_t;
    // SAFETY: reads the 256 bytes at `t` (valid per the contract, byte elements); v28–v31 are
    // declared clobbered.
    unsafe {
        asm!(
            "movi {k:v}.16b, #0x80",
            "eor {i:v}.16b, {v:v}.16b, {k:v}.16b",
            "movi {k:v}.16b, #64",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t}], #64",
            "tbl {r:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            "sub {i:v}.16b, {i:v}.16b, {k:v}.16b",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t}], #64",
            "tbx {r:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            "sub {i:v}.16b, {i:v}.16b, {k:v}.16b",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t}], #64",
            "tbx {r:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            "sub {i:v}.16b, {i:v}.16b, {k:v}.16b",
            "ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [{t}]",
            "tbx {r:v}.16b, {{v28.16b, v29.16b, v30.16b, v31.16b}}, {i:v}.16b",
            t = inout(reg) t => _,
            v = in(vreg_low16) v,
            k = out(vreg_low16) _,
            i = out(vreg_low16) _,
            r = out(vreg_low16) r,
            out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    r
}

impl SdotOut for i8 {
    #[inline(always)]
    unsafe fn store8(lo: int32x4_t, hi: int32x4_t, dst: *mut i8, n: usize, lut: *const i8) {
        // SAFETY: register operations; `dst` valid for `n` bytes per the contract; the table
        // (when not null) has 256 entries and is read at `v + 128` with `v` in -128..=127.
        unsafe {
            let b = vqmovn_s16(vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi)));
            if lut.is_null() && n == 8 {
                st8(dst, b);
                return;
            }
            let mut o8 = [0i8; 8];
            st8(o8.as_mut_ptr(), b);
            if !lut.is_null() {
                for e in o8.iter_mut() {
                    *e = *lut.add((*e as i32 + 128) as usize);
                }
            }
            core::ptr::copy_nonoverlapping(o8.as_ptr(), dst, n);
        }
    }

    #[inline(always)]
    unsafe fn store8x2(
        a: (int32x4_t, int32x4_t),
        b: (int32x4_t, int32x4_t),
        dst0: *mut i8,
        dst1: *mut i8,
        n: usize,
        lut: *const i8,
    ) {
        // SAFETY: per the contract; register operations, the table read by `lut16`, the
        // stores of `n` bytes to each destination.
        unsafe {
            if lut.is_null() {
                Self::store8(a.0, a.1, dst0, n, lut);
                Self::store8(b.0, b.1, dst1, n, lut);
                return;
            }
            let va = vqmovn_s16(vcombine_s16(vqmovn_s32(a.0), vqmovn_s32(a.1)));
            let vb = vqmovn_s16(vcombine_s16(vqmovn_s32(b.0), vqmovn_s32(b.1)));
            let v = lut16(vcombine_s8(va, vb), lut);
            if n == 8 {
                st8(dst0, vget_low_s8(v));
                st8(dst1, vget_high_s8(v));
                return;
            }
            let mut o = [0i8; 16];
            st8(o.as_mut_ptr(), vget_low_s8(v));
            st8(o.as_mut_ptr().add(8), vget_high_s8(v));
            core::ptr::copy_nonoverlapping(o.as_ptr(), dst0, n);
            core::ptr::copy_nonoverlapping(o.as_ptr().add(8), dst1, n);
        }
    }
}

impl SdotOut for i16 {
    #[inline(always)]
    unsafe fn store8(lo: int32x4_t, hi: int32x4_t, dst: *mut i16, n: usize, _lut: *const i8) {
        // SAFETY: register operations; `dst` valid for `n` elements per the contract.
        // Saturation to i16 is `vqmovn_s32`, as the reference's clamp.
        unsafe {
            let h = vcombine_s16(vqmovn_s32(lo), vqmovn_s32(hi));
            if n == 8 {
                st8h(dst, h);
                return;
            }
            let mut o = [0i16; 8];
            st8h(o.as_mut_ptr(), h);
            core::ptr::copy_nonoverlapping(o.as_ptr(), dst, n);
        }
    }
}

/// 16 bytes at `p` (`LD1 {v.16b}`: byte elements, so no alignment requirement even with
/// strict alignment checking — `aarch64-unknown-none` has `+strict-align`, under which LLVM
/// splits `vld1q_s8` from an `i8` pointer into 16 byte loads).
///
/// # Safety
/// `p` valid for 16 bytes.
#[inline(always)]
pub(crate) unsafe fn ld16(p: *const i8) -> int8x16_t {
    let v: int8x16_t;
    // SAFETY: reads 16 bytes at `p` (valid per the contract), byte elements.
    unsafe {
        asm!(
            "ld1 {{{v:v}.16b}}, [{p}]",
            v = out(vreg) v,
            p = in(reg) p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// 16 bytes at `*p` (as [`ld16`]), then `*p += 16` (post-index addressing).
///
/// # Safety
/// `*p` valid for 16 bytes.
#[inline(always)]
unsafe fn ld16_post(p: &mut *const i8) -> int8x16_t {
    let v: int8x16_t;
    // SAFETY: reads 16 bytes at `*p` (valid per the contract), byte elements.
    unsafe {
        asm!(
            "ld1 {{{v:v}.16b}}, [{p}], #16",
            v = out(vreg) v,
            p = inout(reg) *p,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    v
}

/// The two 16-byte vectors at `p + OFF` (`LDP q, q`: `p + OFF` must be 16-byte aligned — the
/// packed weights are).
///
/// # Safety
/// `p + OFF` valid for 32 bytes and 16-byte aligned.
#[inline(always)]
unsafe fn ldp32<const OFF: i32>(p: *const i8) -> (int8x16_t, int8x16_t) {
    let (a, b): (int8x16_t, int8x16_t);
    // SAFETY: reads 32 aligned bytes at `p + OFF` (valid per the contract).
    unsafe {
        asm!(
            "ldp {a:q}, {b:q}, [{p}, #{off}]",
            a = out(vreg) a,
            b = out(vreg) b,
            p = in(reg) p,
            off = const OFF,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    (a, b)
}

/// Stores the 8 bytes of `v` at `p` (`ST1 {v.8b}`, no alignment requirement).
///
/// # Safety
/// `p` valid for 8 bytes.
#[inline(always)]
pub(crate) unsafe fn st8(p: *mut i8, v: int8x8_t) {
    // SAFETY: writes 8 bytes at `p` (valid per the contract), byte elements.
    unsafe {
        asm!(
            "st1 {{{v:v}.8b}}, [{p}]",
            v = in(vreg) v,
            p = in(reg) p,
            options(nostack, preserves_flags),
        );
    }
}

/// Stores the 8 halfwords of `v` at `p` (`ST1 {v.8h}`: halfword elements, `p` is an aligned
/// `i16` pointer).
///
/// # Safety
/// `p` valid for 8 `i16`.
#[inline(always)]
unsafe fn st8h(p: *mut i16, v: int16x8_t) {
    // SAFETY: writes 16 bytes at `p` (valid and 2-byte aligned per the contract).
    unsafe {
        asm!(
            "st1 {{{v:v}.8h}}, [{p}]",
            v = in(vreg) v,
            p = in(reg) p,
            options(nostack, preserves_flags),
        );
    }
}

/// `acc + Σ_{j<4} w.b[4i+j] · x.b[4L+j]` for each lane `i` (`SDOT` by element).
///
/// # Safety
/// FEAT_DotProd available.
#[inline(always)]
unsafe fn sdot<const L: i32>(acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    let mut a = acc;
    // SAFETY: a register-only instruction of FEAT_DotProd (available per the contract).
    unsafe {
        asm!(
            ".arch_extension dotprod",
            "sdot {a:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
            a = inout(vreg) a,
            w = in(vreg) w,
            x = in(vreg) x,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    a
}

/// Packs outputs `o0..o0+8` (zeros past `c_out`) for `k16` channels (zeros past `c_in`): group
/// `g` of 4 channels at `dst[32g..32g+32]`, byte `16·(o/4) + 4·(o%4) + (k%4)`.
fn pack(dst: &mut [i8], q: &ConvQ<'_>, c_in: usize, c_out: usize, o0: usize, k16: usize) {
    let dst = &mut dst[..k16 * TO];
    dst.fill(0);
    for o in 0..TO.min(c_out - o0) {
        let row = &q.weight[(o0 + o) * c_in..(o0 + o + 1) * c_in];
        let at = 16 * (o / 4) + 4 * (o % 4);
        for (g, quad) in row.chunks(4).enumerate() {
            dst[32 * g + at..32 * g + at + quad.len()].copy_from_slice(quad);
        }
    }
}

/// One tile: `NP` pixels from `p0`, outputs `o0..o0 + n_out` (`n_out ≤ 8`), weights packed in
/// `wp` (`k16 · 8` bytes).
///
/// # Safety
/// FEAT_DotProd; `p0 + NP ≤ pixels`, `o0 + n_out ≤ c_out`, `x` has `pixels · c_in` bytes and
/// `y` `pixels · c_out` elements.
#[allow(clippy::too_many_arguments, unused_assignments)]
#[inline(always)]
unsafe fn tile<Y: SdotOut, const NP: usize>(
    x: &[i8],
    c_in: usize,
    wp: &[i8],
    rq: &Requant,
    c_out: usize,
    y: &mut [Y],
    p0: usize,
    o0: usize,
    n_out: usize,
) {
    let full = c_in / 16;
    // SAFETY (whole body): every 16-byte input load starts at `16j ≤ c_in − 16` inside its
    // pixel's row (j < full); the packed weights are read at `32g..32g + 32` for
    // `g < 4·ceil(c_in/16) = k16/4` groups, inside `wp`; the stores write `n_out` elements of
    // pixel row `p0 + p` starting at output `o0`, inside `y` per the contract.
    unsafe {
        let mut lo = [rq.bias_lo; NP];
        let mut hi = [rq.bias_hi; NP];
        let mut xs: [*const i8; NP] = core::array::from_fn(|p| x.as_ptr().add((p0 + p) * c_in));
        let mut w = wp.as_ptr();
        macro_rules! step {
            ($xv:expr) => {{
                let xv: [int8x16_t; NP] = $xv;
                let (w0, w1) = ldp32::<0>(w);
                for p in 0..NP {
                    lo[p] = sdot::<0>(lo[p], w0, xv[p]);
                    hi[p] = sdot::<0>(hi[p], w1, xv[p]);
                }
                let (w0, w1) = ldp32::<32>(w);
                for p in 0..NP {
                    lo[p] = sdot::<1>(lo[p], w0, xv[p]);
                    hi[p] = sdot::<1>(hi[p], w1, xv[p]);
                }
                let (w0, w1) = ldp32::<64>(w);
                for p in 0..NP {
                    lo[p] = sdot::<2>(lo[p], w0, xv[p]);
                    hi[p] = sdot::<2>(hi[p], w1, xv[p]);
                }
                let (w0, w1) = ldp32::<96>(w);
                for p in 0..NP {
                    lo[p] = sdot::<3>(lo[p], w0, xv[p]);
                    hi[p] = sdot::<3>(hi[p], w1, xv[p]);
                }
                w = w.add(128);
            }};
        }
        for _ in 0..full {
            step!(core::array::from_fn(|p| ld16_post(&mut xs[p])));
        }
        let rest = c_in - 16 * full;
        if rest > 0 {
            step!(core::array::from_fn(|p| {
                let mut t = [0i8; 16];
                core::ptr::copy_nonoverlapping(xs[p], t.as_mut_ptr(), rest);
                ld16(t.as_ptr())
            }));
        }
        let mut p = 0;
        while p + 2 <= NP {
            let a = (rq.apply(lo[p], rq.mult_lo), rq.apply(hi[p], rq.mult_hi));
            let b = (
                rq.apply(lo[p + 1], rq.mult_lo),
                rq.apply(hi[p + 1], rq.mult_hi),
            );
            let dst0 = y.as_mut_ptr().add((p0 + p) * c_out + o0);
            let dst1 = y.as_mut_ptr().add((p0 + p + 1) * c_out + o0);
            Y::store8x2(a, b, dst0, dst1, n_out, rq.lut);
            p += 2;
        }
        if p < NP {
            let (a, b) = (rq.apply(lo[p], rq.mult_lo), rq.apply(hi[p], rq.mult_hi));
            let dst = y.as_mut_ptr().add((p0 + p) * c_out + o0);
            Y::store8(a, b, dst, n_out, rq.lut);
        }
    }
}

/// The per-block requantization constants.
pub(crate) struct Requant {
    pub(crate) bias_lo: int32x4_t,
    pub(crate) bias_hi: int32x4_t,
    pub(crate) mult_lo: int32x4_t,
    pub(crate) mult_hi: int32x4_t,
    pub(crate) neg: int64x2_t,
    pub(crate) zero: int32x4_t,
    pub(crate) lut: *const i8,
}

impl Requant {
    /// `out_zero + requant(acc, m, shift)` on 4 lanes (`acc` includes the bias), not yet
    /// saturated: the reference's i64 product, `+ 2^(s−1)`, arithmetic shift, truncation.
    ///
    /// # Safety
    /// NEON available.
    #[inline(always)]
    pub(crate) unsafe fn apply(&self, v: int32x4_t, mult: int32x4_t) -> int32x4_t {
        let r: int32x4_t;
        // SAFETY: register-only NEON instructions (in `asm!`: LLVM otherwise moves the 64-bit
        // lanes to general registers for the multiplies). SMULL/SMULL2: exact i64 products;
        // SRSHL by `−s`: rounding arithmetic right shift, `(p + 2^(s−1)) >> s` without
        // saturation (`|p| < 2⁴⁰`, so the sum cannot overflow); UZP1 of the 32-bit halves:
        // truncation to i32; ADD: the zero point, wrapping.
        unsafe {
            asm!(
                "smull {l:v}.2d, {v:v}.2s, {m:v}.2s",
                "smull2 {h:v}.2d, {v:v}.4s, {m:v}.4s",
                "srshl {l:v}.2d, {l:v}.2d, {ng:v}.2d",
                "srshl {h:v}.2d, {h:v}.2d, {ng:v}.2d",
                "uzp1 {r:v}.4s, {l:v}.4s, {h:v}.4s",
                "add {r:v}.4s, {r:v}.4s, {z:v}.4s",
                v = in(vreg) v,
                m = in(vreg) mult,
                ng = in(vreg) self.neg,
                z = in(vreg) self.zero,
                l = out(vreg) _,
                h = out(vreg) _,
                r = out(vreg) r,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        r
    }
}

/// # Safety
/// FEAT_DotProd available; `c_in ≤ KMAX`; weight = `c_out·c_in`, bias empty or `c_out`, mult
/// `c_out`, `x` ≥ `pixels·c_in`, `y` ≥ `pixels·c_out`, table (if any) 256 entries.
#[target_feature(enable = "neon,dotprod")]
unsafe fn run<Y: SdotOut>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    let k16 = c_in.div_ceil(16) * 16;
    let mut packed = crate::Aligned([0i8; KMAX * TO]);
    let packed = &mut packed.0;
    let sh = q.shift.clamp(1, 62) as i64;
    let lut = match (core::mem::size_of::<Y>(), q.lut) {
        (1, Some(t)) if t.len() >= 256 => t.as_ptr(),
        _ => core::ptr::null(),
    };
    let mut o0 = 0;
    while o0 < c_out {
        let n_out = TO.min(c_out - o0);
        pack(packed, q, c_in, c_out, o0, k16);
        let b: [i32; TO] = core::array::from_fn(|j| if j < n_out { q.bias_at(o0 + j) } else { 0 });
        let m: [i32; TO] = core::array::from_fn(|j| if j < n_out { q.mult_at(o0 + j) } else { 0 });
        // SAFETY: NEON (always on AArch64 targets with dotprod); loads from local arrays; the
        // tiles stay inside p < pixels and o < c_out (see `tile`), with FEAT_DotProd per the
        // contract.
        unsafe {
            let rq = Requant {
                bias_lo: vld1q_s32(b.as_ptr()),
                bias_hi: vld1q_s32(b.as_ptr().add(4)),
                mult_lo: vld1q_s32(m.as_ptr()),
                mult_hi: vld1q_s32(m.as_ptr().add(4)),
                neg: vdupq_n_s64(-sh),
                zero: vdupq_n_s32(q.out_zero),
                lut,
            };
            let wp = &packed[..k16 * TO];
            let mut p = 0;
            while p + TP <= pixels {
                tile::<Y, TP>(x, c_in, wp, &rq, c_out, y, p, o0, n_out);
                p += TP;
            }
            while p < pixels {
                tile::<Y, 1>(x, c_in, wp, &rq, c_out, y, p, o0, n_out);
                p += 1;
            }
        }
        o0 += TO;
    }
}
