//! AArch64 NEON pointwise kernel (a packed GEMM), f32 and f16 storage.
//!
//! The structure of the [x86](super) kernel with NEON's shapes: a panel of 8 output channels of
//! `w` is packed (converted to f32) into `[K][8]` in a 16 KiB stack buffer; an 8 × 8 register
//! tile (8 pixels × 8 outputs = 16 q-register accumulators) walks down the pixels. Four input
//! channels of a pixel are one vector load, and `vfmaq_laneq_f32` multiplies each lane into the
//! panel's row for that channel, so there are no broadcasts: per 4 channels, 8 loads of `x`,
//! 8 loads of the panel and 64 FMAs (16 MACs per 4 instructions).
//!
//! Summation order, per output: `acc = bias`, then one FMA per input channel in channel order;
//! it does not depend on the pixel count (the streaming executor stays bit-identical). For
//! `K > KC` the chain continues through `y` (f32 outputs; f16 outputs with `K > KC` use the
//! portable kernel). f16 values are widened with `fcvtl` and narrowed with `fcvtn` (round to
//! nearest even, like `half`) through `asm!`, as the f16 NEON intrinsics are not stable.

pub(crate) mod int16;
pub mod int8;
pub mod sdot;

use core::arch::aarch64::*;
use core::arch::asm;
use core::mem::MaybeUninit;

use half::f16;

use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::Activation;
use crate::DType;

/// Pixels per register tile.
const MR: usize = 8;
/// Outputs per register tile (two q registers).
const NR: usize = 8;
/// Input channels per packed panel: `KC·NR` f32 = 16 KiB of stack (and as much for f16 rows).
const KC: usize = 512;

/// Runs the NEON kernel (always available on AArch64 targets with the `neon` feature, which
/// every AArch64 target Rust supports enables by default). Shapes must already be validated.
pub(crate) fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> bool {
    if !cfg!(target_feature = "neon") {
        return false;
    }
    if pointwise_fp16(x, c_in, w, bias, c_out, act, &mut *y) {
        return true;
    }
    // SAFETY: NEON is enabled for this target (checked above).
    unsafe { pointwise_neon(x, c_in, w, bias, c_out, act, y) }.is_ok()
}

/// The NEON kernel with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support NEON (every AArch64 CPU with floating point does).
pub unsafe fn pointwise_neon<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::check_shapes(x, c_in, w, bias, c_out, y)?;
    if c_in > KC && Y::DTYPE != DType::F32 {
        super::portable::pointwise(x, c_in, w, bias, c_out, act, y)?;
    } else {
        // SAFETY: shapes validated just above; `Y` is f32 whenever `c_in > KC`; NEON per the
        // caller.
        unsafe { gemm(x, c_in, w, bias, c_out, act, y) };
    }
    Ok(())
}

/// Widens 4 f16 at `p` to f32.
///
/// # Safety
/// `p..p+4` readable.
#[inline(always)]
pub(crate) unsafe fn load4_f16(p: *const f16) -> float32x4_t {
    // SAFETY: 8 readable bytes per the contract; fcvtl reads the low half of the register.
    unsafe {
        let h = vreinterpretq_f32_u16(vcombine_u16(vld1_u16(p as *const u16), vdup_n_u16(0)));
        let out: float32x4_t;
        asm!("fcvtl {o:v}.4s, {i:v}.4h", o = lateout(vreg) out, i = in(vreg) h,
             options(pure, nomem, nostack));
        out
    }
}

/// Narrows 4 f32 to f16 (round to nearest even) and stores them at `p`.
///
/// # Safety
/// `p..p+4` writable.
#[inline(always)]
pub(crate) unsafe fn store4_f16(p: *mut f16, v: float32x4_t) {
    // SAFETY: fcvtn writes the low 64 bits; 8 writable bytes per the contract.
    unsafe {
        let h: float32x4_t;
        asm!("fcvtn {o:v}.4h, {i:v}.4s", o = lateout(vreg) h, i = in(vreg) v,
             options(pure, nomem, nostack));
        vst1_u16(p as *mut u16, vget_low_u16(vreinterpretq_u16_f32(h)));
    }
}

/// Loads 4 consecutive elements as f32.
///
/// # Safety
/// `p..p+4` readable.
#[inline(always)]
pub(crate) unsafe fn load4<T: Elem>(p: *const T) -> float32x4_t {
    // SAFETY: per the contract; `T` is f32 or f16.
    unsafe {
        if T::DTYPE == DType::F16 {
            load4_f16(p as *const f16)
        } else {
            vld1q_f32(p as *const f32)
        }
    }
}

/// Stores 4 f32 as `T`.
///
/// # Safety
/// `p..p+4` writable.
#[inline(always)]
pub(crate) unsafe fn store4<T: Elem>(p: *mut T, v: float32x4_t) {
    // SAFETY: per the contract; `T` is f32 or f16.
    unsafe {
        if T::DTYPE == DType::F16 {
            store4_f16(p as *mut f16, v)
        } else {
            vst1q_f32(p as *mut f32, v)
        }
    }
}

/// Packs rows `n0..n0+nv` (`nv ≤ 8`), channels `k0..k0+kc` of `w` into `bp[kk·8 + l]`,
/// zero-filling rows past `nv`.
///
/// # Safety
/// The ranges lie inside `w`; `bp` holds `kc·8` values.
#[inline(always)]
unsafe fn pack_panel<W: Elem>(
    w: &[W],
    k: usize,
    n0: usize,
    nv: usize,
    k0: usize,
    kc: usize,
    bp: *mut f32,
) {
    for l in 0..NR {
        if l >= nv {
            for kk in 0..kc {
                // SAFETY: kk·8 + l < kc·8.
                unsafe { *bp.add(kk * NR + l) = 0.0 };
            }
            continue;
        }
        let row = &w[(n0 + l) * k + k0..(n0 + l) * k + k0 + kc];
        let mut kk = 0;
        while kk + 4 <= kc {
            // SAFETY: row[kk..kk+4] in bounds; (kk+3)·8 + l < kc·8.
            unsafe {
                let v = load4(row.as_ptr().add(kk));
                *bp.add(kk * NR + l) = vgetq_lane_f32::<0>(v);
                *bp.add((kk + 1) * NR + l) = vgetq_lane_f32::<1>(v);
                *bp.add((kk + 2) * NR + l) = vgetq_lane_f32::<2>(v);
                *bp.add((kk + 3) * NR + l) = vgetq_lane_f32::<3>(v);
            }
            kk += 4;
        }
        while kk < kc {
            // SAFETY: as above.
            unsafe { *bp.add(kk * NR + l) = row[kk].to_f32() };
            kk += 1;
        }
    }
}

/// Applies `act` to 8 values.
#[inline(always)]
fn activate(act: Option<Activation>, v: &mut [f32; NR]) {
    use crate::kernels::activation::{gelu, hardsigmoid, hardswish, relu};
    match act {
        None => {}
        Some(Activation::Gelu) => v.iter_mut().for_each(|e| *e = gelu(*e)),
        Some(Activation::Hardswish) => v.iter_mut().for_each(|e| *e = hardswish(*e)),
        Some(Activation::Hardsigmoid) => v.iter_mut().for_each(|e| *e = hardsigmoid(*e)),
        Some(Activation::Relu) => v.iter_mut().for_each(|e| *e = relu(*e)),
    }
}

/// One `M × 8` tile over `kc` channels.
///
/// # Safety
/// Each `a[m]` (`m < M`) points at `kc` readable f32; `bp` at `kc·8`.
#[inline(always)]
unsafe fn micro<const M: usize>(
    a: &[*const f32; MR],
    bp: *const f32,
    kc: usize,
    acc: &mut [[float32x4_t; 2]; MR],
) {
    // SAFETY (whole body): i + 3 < kc in the main loop, i < kc in the tail.
    unsafe {
        let mut i = 0;
        while i + 4 <= kc {
            let b = bp.add(i * NR);
            let bv: [float32x4_t; 8] = core::array::from_fn(|j| vld1q_f32(b.add(4 * j)));
            for m in 0..M {
                let av = vld1q_f32(a[m].add(i));
                let mut c0 = acc[m][0];
                let mut c1 = acc[m][1];
                c0 = vfmaq_laneq_f32::<0>(c0, bv[0], av);
                c1 = vfmaq_laneq_f32::<0>(c1, bv[1], av);
                c0 = vfmaq_laneq_f32::<1>(c0, bv[2], av);
                c1 = vfmaq_laneq_f32::<1>(c1, bv[3], av);
                c0 = vfmaq_laneq_f32::<2>(c0, bv[4], av);
                c1 = vfmaq_laneq_f32::<2>(c1, bv[5], av);
                c0 = vfmaq_laneq_f32::<3>(c0, bv[6], av);
                c1 = vfmaq_laneq_f32::<3>(c1, bv[7], av);
                acc[m] = [c0, c1];
            }
            i += 4;
        }
        while i < kc {
            let b = bp.add(i * NR);
            let b0 = vld1q_f32(b);
            let b1 = vld1q_f32(b.add(4));
            for m in 0..M {
                let av = *a[m].add(i);
                acc[m][0] = vfmaq_n_f32(acc[m][0], b0, av);
                acc[m][1] = vfmaq_n_f32(acc[m][1], b1, av);
            }
            i += 1;
        }
    }
}

/// Pixels `p0..p0+M` against the packed panel of outputs `n0..n0+nv`, channels `k0..k0+kc`.
///
/// # Safety
/// As the x86 module's tile: indices in bounds, `bp` packed, `abuf` holds `MR·KC` f32.
#[inline(always)]
unsafe fn tile<X: Elem, Y: Elem, const M: usize>(
    x: &[X],
    k: usize,
    y: &mut [Y],
    n: usize,
    p0: usize,
    n0: usize,
    nv: usize,
    k0: usize,
    kc: usize,
    bp: *const f32,
    abuf: *mut f32,
    bias8: &[f32; NR],
    act: Option<Activation>,
) {
    let first = k0 == 0;
    let last = k0 + kc == k;
    // SAFETY (whole body): rows p0..p0+M of x/y, columns n0..n0+nv, channels k0..k0+kc are in
    // bounds per the contract.
    unsafe {
        let zero = vdupq_n_f32(0.0);
        let mut acc = [[zero; 2]; MR];
        for m in 0..M {
            if first {
                acc[m] = [vld1q_f32(bias8.as_ptr()), vld1q_f32(bias8.as_ptr().add(4))];
            } else {
                let yr = y.as_ptr().add((p0 + m) * n + n0) as *const f32;
                let mut t = [0.0f32; NR];
                core::ptr::copy_nonoverlapping(yr, t.as_mut_ptr(), nv);
                acc[m] = [vld1q_f32(t.as_ptr()), vld1q_f32(t.as_ptr().add(4))];
            }
        }
        let mut a = [core::ptr::null::<f32>(); MR];
        for m in 0..M {
            let row = x.as_ptr().add((p0 + m) * k + k0);
            if X::DTYPE == DType::F32 {
                a[m] = row as *const f32;
            } else {
                let dst = abuf.add(m * KC);
                let mut i = 0;
                while i + 4 <= kc {
                    vst1q_f32(dst.add(i), load4(row.add(i)));
                    i += 4;
                }
                while i < kc {
                    *dst.add(i) = (*row.add(i)).to_f32();
                    i += 1;
                }
                a[m] = dst;
            }
        }
        micro::<M>(&a, bp, kc, &mut acc);
        for m in 0..M {
            let yr = y.as_mut_ptr().add((p0 + m) * n + n0);
            // Full tiles without an activation (and f32 partial sums, K > KC) go straight out.
            if nv == NR && (act.is_none() || !last) {
                store4(yr, acc[m][0]);
                store4(yr.add(4), acc[m][1]);
                continue;
            }
            let mut t = [0.0f32; NR];
            vst1q_f32(t.as_mut_ptr(), acc[m][0]);
            vst1q_f32(t.as_mut_ptr().add(4), acc[m][1]);
            if last {
                activate(act, &mut t);
            }
            if nv == NR {
                store4(yr, vld1q_f32(t.as_ptr()));
                store4(yr.add(4), vld1q_f32(t.as_ptr().add(4)));
            } else if Y::DTYPE == DType::F16 {
                let mut hs = [f16::ZERO; NR];
                store4(hs.as_mut_ptr(), vld1q_f32(t.as_ptr()));
                store4(hs.as_mut_ptr().add(4), vld1q_f32(t.as_ptr().add(4)));
                core::ptr::copy_nonoverlapping(hs.as_ptr(), yr as *mut f16, nv);
            } else {
                core::ptr::copy_nonoverlapping(t.as_ptr(), yr as *mut f32, nv);
            }
        }
    }
}

/// The packed GEMM. Not inlined, like [`gemm_fp16`]: their stack buffers are never live
/// together.
///
/// # Safety
/// Shapes validated; `Y` is f32 when `k > KC`.
#[inline(never)]
#[target_feature(enable = "neon")]
unsafe fn gemm<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    k: usize,
    w: &[W],
    bias: Option<&[f32]>,
    n: usize,
    act: Option<Activation>,
    y: &mut [Y],
) {
    let pixels = x.len() / k;
    let mut panel = MaybeUninit::<[f32; KC * NR]>::uninit();
    let bp = panel.as_mut_ptr() as *mut f32;
    let mut abuf_store = MaybeUninit::<[f32; MR * KC]>::uninit();
    let abuf = abuf_store.as_mut_ptr() as *mut f32;
    let mut n0 = 0;
    while n0 < n {
        let nv = NR.min(n - n0);
        let mut bias8 = [0.0f32; NR];
        if let Some(b) = bias {
            bias8[..nv].copy_from_slice(&b[n0..n0 + nv]);
        }
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            // SAFETY: rows n0..n0+nv, channels k0..k0+kc inside w; the panel holds KC·8 values
            // and is written before it is read.
            unsafe { pack_panel(w, k, n0, nv, k0, kc, bp) };
            let mut p0 = 0;
            while p0 < pixels {
                let m = MR.min(pixels - p0);
                // SAFETY: p0 + m ≤ pixels, n0 + nv ≤ n, k0 + kc ≤ k; bp packed; abuf holds
                // MR·KC floats.
                unsafe {
                    match m {
                        8 => tile::<X, Y, 8>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        7 => tile::<X, Y, 7>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        6 => tile::<X, Y, 6>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        5 => tile::<X, Y, 5>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        4 => tile::<X, Y, 4>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        3 => tile::<X, Y, 3>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        2 => tile::<X, Y, 2>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                        _ => tile::<X, Y, 1>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, &bias8, act),
                    }
                }
                p0 += m;
            }
            k0 += kc;
        }
        n0 += nv;
    }
}

// ---------------------------------------------------------------------------------------------
// FEAT_FP16 arithmetic (f16 activations and weights).
//
// The same 8-pixel × 8-output register tile, with f16 FMAs: the packed panel holds f16 weights
// `[K][8]`, one `fmla vA.8h, vW.8h, vX.h[j]` multiplies input channel `j` of a pixel into its 8
// outputs (8 MACs per instruction instead of 4, and no widening of `x` or `w`). Products are
// summed in f16 over [`HCHAIN`] channels, then widened (`fcvtl`/`fcvtl2`) and added to f32
// accumulators that start at the bias, so the f16 rounding error does not grow with `K`.
// Summation order per output: bias, then per chain of 16 channels the f16 sum of its products
// in channel order; independent of the pixel count (the streaming executor gives the same
// result as the whole-tensor pass on the same CPU). The result differs from the f32-arithmetic
// kernel by f16 rounding; `crate::kernels::cpu::set_fp16_arith(false)` turns this path off.

/// Channels summed in f16 before each f32 addition.
const HCHAIN: usize = 16;
/// Largest `K` of the FEAT_FP16 path: the panel `[K][8]` f16 is 32 KiB of stack.
pub(crate) const KC_FP16: usize = 2048;

/// The FEAT_FP16 kernel, when the CPU has it and `X`, `W` are f16 with `K ≤ 2048`; `false` when
/// the caller must use another kernel. Shapes must already be validated.
pub(crate) fn pointwise_fp16<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> bool {
    use crate::kernels::cpu::{as_f16, fp16_arith};
    // `as_f16` is `None` unless the element type is f16.
    let (Some(xh), Some(wh)) = (as_f16(x), as_f16(w)) else {
        return false;
    };
    if c_in > KC_FP16 || !fp16_arith() || super::check_shapes(x, c_in, w, bias, c_out, y).is_err() {
        return false;
    }
    // SAFETY: FEAT_FP16 detected just above; `check_shapes` just verified the lengths
    // (products without overflow); K ≤ KC_FP16.
    unsafe { gemm_fp16(xh, c_in, wh, bias, c_out, act, y) };
    true
}

/// The FEAT_FP16 kernel with its own shape checks, for tests and self-tests: `Ok(false)` when
/// the CPU lacks FEAT_FP16 (or it is switched off) or `K > 2048` (nothing written).
pub fn pointwise_fp16_checked<Y: Elem>(
    x: &[f16],
    c_in: usize,
    w: &[f16],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<bool, Error> {
    super::check_shapes(x, c_in, w, bias, c_out, y)?;
    Ok(pointwise_fp16(x, c_in, w, bias, c_out, act, y))
}

/// Eight f16 FMAs by element: `a += w[j] · x[j]` for the 8 channels in `x`.
///
/// # Safety
/// The CPU has FEAT_FP16.
#[inline]
#[target_feature(enable = "neon,fp16")]
unsafe fn fmla8(a: uint16x8_t, w: &[uint16x8_t; 8], x: uint16x8_t) -> uint16x8_t {
    let mut a = a;
    // SAFETY: register-only arithmetic; FEAT_FP16 per the contract.
    unsafe {
        asm!(
            "fmla {a:v}.8h, {w0:v}.8h, {x:v}.h[0]",
            "fmla {a:v}.8h, {w1:v}.8h, {x:v}.h[1]",
            "fmla {a:v}.8h, {w2:v}.8h, {x:v}.h[2]",
            "fmla {a:v}.8h, {w3:v}.8h, {x:v}.h[3]",
            "fmla {a:v}.8h, {w4:v}.8h, {x:v}.h[4]",
            "fmla {a:v}.8h, {w5:v}.8h, {x:v}.h[5]",
            "fmla {a:v}.8h, {w6:v}.8h, {x:v}.h[6]",
            "fmla {a:v}.8h, {w7:v}.8h, {x:v}.h[7]",
            a = inout(vreg) a,
            w0 = in(vreg) w[0], w1 = in(vreg) w[1], w2 = in(vreg) w[2], w3 = in(vreg) w[3],
            w4 = in(vreg) w[4], w5 = in(vreg) w[5], w6 = in(vreg) w[6], w7 = in(vreg) w[7],
            x = in(vreg_low16) x,
            options(pure, nomem, nostack),
        );
    }
    a
}

/// One f16 FMA with a scalar: `a += w · x[0]`.
///
/// # Safety
/// The CPU has FEAT_FP16.
#[inline]
#[target_feature(enable = "neon,fp16")]
unsafe fn fmla1(a: uint16x8_t, w: uint16x8_t, x: uint16x8_t) -> uint16x8_t {
    let mut a = a;
    // SAFETY: register-only arithmetic; FEAT_FP16 per the contract.
    unsafe {
        asm!("fmla {a:v}.8h, {w:v}.8h, {x:v}.h[0]", a = inout(vreg) a, w = in(vreg) w,
             x = in(vreg_low16) x, options(pure, nomem, nostack));
    }
    a
}

/// `acc += widen(h)`: 8 f16 sums added to two f32 accumulators.
#[inline(always)]
fn widen_add(acc: &mut [float32x4_t; 2], h: uint16x8_t) {
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: register-only conversions (base AArch64 FP).
    unsafe {
        asm!("fcvtl {l:v}.4s, {h:v}.4h", "fcvtl2 {u:v}.4s, {h:v}.8h",
             l = out(vreg) lo, u = lateout(vreg) hi, h = in(vreg) h,
             options(pure, nomem, nostack));
        acc[0] = vaddq_f32(acc[0], lo);
        acc[1] = vaddq_f32(acc[1], hi);
    }
}

/// Pixels `p0..p0+M` against the f16 panel of outputs `n0..n0+nv` over all `k` channels.
///
/// # Safety
/// FEAT_FP16; rows `p0..p0+M` of `x`/`y` and columns `n0..n0+nv` in bounds; `bp` holds the
/// packed `[k][8]` panel.
#[inline]
#[target_feature(enable = "neon,fp16")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_fp16<Y: Elem, const M: usize>(
    x: &[f16],
    k: usize,
    y: &mut [Y],
    n: usize,
    p0: usize,
    n0: usize,
    nv: usize,
    bp: *const u16,
    bias8: &[f32; NR],
    act: Option<Activation>,
) {
    // SAFETY (whole body): every pointer stays inside the rows, columns and panel above.
    unsafe {
        let b = [vld1q_f32(bias8.as_ptr()), vld1q_f32(bias8.as_ptr().add(4))];
        let mut acc = [b; MR];
        let xr: [*const u16; MR] =
            core::array::from_fn(|m| x.as_ptr().add((p0 + m.min(M - 1)) * k) as *const u16);
        let zero = vdupq_n_u16(0);
        let mut i = 0;
        while i < k {
            let end = (i + HCHAIN).min(k);
            let mut h = [zero; MR];
            while i + 8 <= end {
                let wv: [uint16x8_t; 8] = core::array::from_fn(|j| vld1q_u16(bp.add((i + j) * NR)));
                for m in 0..M {
                    h[m] = fmla8(h[m], &wv, vld1q_u16(xr[m].add(i)));
                }
                i += 8;
            }
            while i < end {
                let wv = vld1q_u16(bp.add(i * NR));
                for m in 0..M {
                    h[m] = fmla1(h[m], wv, vld1q_dup_u16(xr[m].add(i)));
                }
                i += 1;
            }
            for m in 0..M {
                widen_add(&mut acc[m], h[m]);
            }
        }
        for m in 0..M {
            let yr = y.as_mut_ptr().add((p0 + m) * n + n0);
            let mut t = [0.0f32; NR];
            vst1q_f32(t.as_mut_ptr(), acc[m][0]);
            vst1q_f32(t.as_mut_ptr().add(4), acc[m][1]);
            activate(act, &mut t);
            if nv == NR {
                store4(yr, vld1q_f32(t.as_ptr()));
                store4(yr.add(4), vld1q_f32(t.as_ptr().add(4)));
            } else if Y::DTYPE == DType::F16 {
                let mut hs = [f16::ZERO; NR];
                store4(hs.as_mut_ptr(), vld1q_f32(t.as_ptr()));
                store4(hs.as_mut_ptr().add(4), vld1q_f32(t.as_ptr().add(4)));
                core::ptr::copy_nonoverlapping(hs.as_ptr(), yr as *mut f16, nv);
            } else {
                core::ptr::copy_nonoverlapping(t.as_ptr(), yr as *mut f32, nv);
            }
        }
    }
}

/// The FEAT_FP16 packed GEMM. Not inlined: its 32 KiB panel and the f32 kernel's buffers are
/// never on the stack together.
///
/// # Safety
/// FEAT_FP16; shapes validated; `k ≤ KC_FP16`.
#[inline(never)]
#[target_feature(enable = "neon,fp16")]
unsafe fn gemm_fp16<Y: Elem>(
    x: &[f16],
    k: usize,
    w: &[f16],
    bias: Option<&[f32]>,
    n: usize,
    act: Option<Activation>,
    y: &mut [Y],
) {
    let pixels = x.len() / k;
    let mut panel = MaybeUninit::<[u16; KC_FP16 * NR]>::uninit();
    let bp = panel.as_mut_ptr() as *mut u16;
    let mut n0 = 0;
    while n0 < n {
        let nv = NR.min(n - n0);
        let mut bias8 = [0.0f32; NR];
        if let Some(b) = bias {
            bias8[..nv].copy_from_slice(&b[n0..n0 + nv]);
        }
        for kk in 0..k {
            for l in 0..NR {
                let v = if l < nv {
                    w[(n0 + l) * k + kk].to_bits()
                } else {
                    0
                };
                // SAFETY: kk·8 + l < k·8 ≤ KC_FP16·8.
                unsafe { *bp.add(kk * NR + l) = v };
            }
        }
        let mut p0 = 0;
        while p0 < pixels {
            let m = MR.min(pixels - p0);
            // SAFETY: p0 + m ≤ pixels, n0 + nv ≤ n; bp packed for k channels; FEAT_FP16 per
            // the contract.
            unsafe {
                match m {
                    8 => tile_fp16::<Y, 8>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    7 => tile_fp16::<Y, 7>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    6 => tile_fp16::<Y, 6>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    5 => tile_fp16::<Y, 5>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    4 => tile_fp16::<Y, 4>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    3 => tile_fp16::<Y, 3>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    2 => tile_fp16::<Y, 2>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                    _ => tile_fp16::<Y, 1>(x, k, y, n, p0, n0, nv, bp, &bias8, act),
                }
            }
            p0 += m;
        }
        n0 += nv;
    }
}
