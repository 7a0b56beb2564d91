//! AArch64 NEON int8 depthwise 3×3 kernel (NHWC, stride 1 or 2, padding 1), for every AArch64
//! CPU (the dot-product instructions do not fit a depthwise conv: its 9 taps of a channel are
//! `c` bytes apart in NHWC).
//!
//! Channels in blocks of 16, the block loop outside the pixel loop so that the block's 9 taps
//! stay in registers as `i16` (18 vectors). Per output pixel and tap: one 16-byte load of the
//! input (`LD1`, byte elements: `aarch64-unknown-none` checks alignment), `SSUBL`/`SSUBL2` of
//! the input zero point into `i16` (exact: −255..=255), and four `SMLAL`/`SMLAL2` into the
//! block's four `i32` accumulators (exact products, `|(x − z)·w| ≤ 32640`, sums wrapping
//! modulo 2³² like the reference's `wrapping_add`): 7 instructions per 16 MACs. Padded taps are
//! skipped, as in the reference. Requantization is the reference's arithmetic on 4 lanes
//! ([`super::sdot`]'s `Requant`), then saturation, the table (`TBL`/`TBX`) and one 16-byte
//! store. The `c % 16` last channels take the portable per-channel loop. Bit-identical to
//! [`crate::quant::kernels::depthwise_reference`].

use core::arch::aarch64::*;
use core::arch::asm;

use crate::kernels::depthwise::DwShape;
use crate::kernels::pointwise::neon::sdot::{lut16, Requant};
use crate::quant::fixed::{requant, sat_i8};
use crate::quant::kernels::ConvQ;

/// Runs the NEON kernel; `false` (nothing written) when the input zero point is outside
/// `-128..=127` or there are fewer than 16 channels (the portable kernel runs then). Shapes
/// validated by the caller.
pub(crate) fn depthwise(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) -> bool {
    if !cfg!(target_feature = "neon") || !(-128..=127).contains(&q.in_zero) || s.c < 16 {
        return false;
    }
    let (Some(nx), Some(ny), Some(nw)) = (
        s.h.checked_mul(s.w).and_then(|v| v.checked_mul(s.c)),
        s.ho().checked_mul(s.wo()).and_then(|v| v.checked_mul(s.c)),
        s.c.checked_mul(9),
    ) else {
        return false;
    };
    if (s.stride != 1 && s.stride != 2)
        || x.len() < nx
        || y.len() < ny
        || q.weight.len() < nw
        || q.mult.len() < s.c
        || q.lut.is_some_and(|t| t.len() < 256)
    {
        return false;
    }
    // SAFETY: NEON (checked above); x, y, weight, mult and table lengths checked just above.
    unsafe { run(s, x, q, y) };
    true
}

/// Stores the 16 bytes of `v` at `p` (`ST1 {v.16b}`, no alignment requirement).
///
/// # Safety
/// `p` valid for 16 bytes.
#[inline(always)]
unsafe fn st16(p: *mut i8, v: int8x16_t) {
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

/// One tap of a 16-channel block: `a += (x[p..p + 16] − z) · w` on 16 lanes, in one `asm!`
/// block (`LD1`, `SSUBL`/`SSUBL2`, `SMLAL`/`SMLAL2`: LLVM's own code for the intrinsics used
/// `EXT` for every high half).
///
/// # Safety
/// `p` valid for 16 bytes.
#[inline(always)]
unsafe fn tap(a: &mut [int32x4_t; 4], p: *const i8, z: int8x16_t, w: (int16x8_t, int16x8_t)) {
    // SAFETY: reads 16 bytes at `p` (valid per the contract, byte elements); the rest are
    // register operations.
    unsafe {
        asm!(
            "ld1 {{{t:v}.16b}}, [{p}]",
            "ssubl {d:v}.8h, {t:v}.8b, {z:v}.8b",
            "ssubl2 {e:v}.8h, {t:v}.16b, {z:v}.16b",
            "smlal {a0:v}.4s, {d:v}.4h, {w0:v}.4h",
            "smlal2 {a1:v}.4s, {d:v}.8h, {w0:v}.8h",
            "smlal {a2:v}.4s, {e:v}.4h, {w1:v}.4h",
            "smlal2 {a3:v}.4s, {e:v}.8h, {w1:v}.8h",
            p = in(reg) p,
            z = in(vreg) z,
            w0 = in(vreg) w.0,
            w1 = in(vreg) w.1,
            t = out(vreg) _,
            d = out(vreg) _,
            e = out(vreg) _,
            a0 = inout(vreg) a[0],
            a1 = inout(vreg) a[1],
            a2 = inout(vreg) a[2],
            a3 = inout(vreg) a[3],
            options(pure, readonly, nostack, preserves_flags),
        );
    }
}

/// # Safety
/// NEON; `x` ≥ `h·w·c`, `y` ≥ `ho·wo·c`, weight ≥ `9c`, mult ≥ `c`, table (if any) 256
/// entries, stride 1 or 2, `c ≥ 16`.
#[target_feature(enable = "neon")]
unsafe fn run(s: DwShape, x: &[i8], q: &ConvQ<'_>, y: &mut [i8]) {
    let (h, w, c, st) = (s.h, s.w, s.c, s.stride);
    let (ho, wo) = (s.ho(), s.wo());
    let sh = q.shift.clamp(1, 62) as i64;
    let lut = q.lut.map_or(core::ptr::null(), |t| t.as_ptr());
    let blocks = c / 16;
    // SAFETY (whole body): register operations; loads from local arrays; the input loads read
    // 16 bytes at channel `c0 ≤ c − 16` of an in-bounds pixel (interior pixels: all 9 taps
    // inside the map; border pixels: only taps inside it); the stores write 16 bytes at channel
    // `c0` of an output pixel `< ho·wo`.
    unsafe {
        let zv = vdupq_n_s8(q.in_zero as i8);
        let zero = vdupq_n_s32(0);
        let rq = Requant {
            bias_lo: zero,
            bias_hi: zero,
            mult_lo: zero,
            mult_hi: zero,
            neg: vdupq_n_s64(-sh),
            zero: vdupq_n_s32(q.out_zero),
            lut,
        };
        for b in 0..blocks {
            let c0 = 16 * b;
            let mut wl = crate::Aligned([0i16; 9 * 16]);
            for ch in 0..16 {
                for t in 0..9 {
                    wl.0[t * 16 + ch] = q.weight[(c0 + ch) * 9 + t] as i16;
                }
            }
            let wv: [(int16x8_t, int16x8_t); 9] = core::array::from_fn(|t| {
                (
                    vld1q_s16(wl.0.as_ptr().add(16 * t)),
                    vld1q_s16(wl.0.as_ptr().add(16 * t + 8)),
                )
            });
            let bm = crate::Aligned(core::array::from_fn::<i32, 32, _>(|i| {
                if i < 16 {
                    q.bias_at(c0 + i)
                } else {
                    q.mult_at(c0 + i - 16)
                }
            }));
            let bias: [int32x4_t; 4] =
                core::array::from_fn(|k| vld1q_s32(bm.0.as_ptr().add(4 * k)));
            let mult: [int32x4_t; 4] =
                core::array::from_fn(|k| vld1q_s32(bm.0.as_ptr().add(16 + 4 * k)));
            for oy in 0..ho {
                let cy = oy * st; // centre row + 1 (padded coordinates)
                for ox in 0..wo {
                    let cx = ox * st;
                    let mut a = bias;
                    if cy >= 1 && cy + 1 < h && cx >= 1 && cx + 1 < w {
                        let base = x.as_ptr().add(((cy - 1) * w + cx - 1) * c + c0);
                        let row = w * c;
                        for ky in 0..3 {
                            let r = base.add(ky * row);
                            tap(&mut a, r, zv, wv[ky * 3]);
                            tap(&mut a, r.add(c), zv, wv[ky * 3 + 1]);
                            tap(&mut a, r.add(2 * c), zv, wv[ky * 3 + 2]);
                        }
                    } else {
                        for ky in 0..3 {
                            let Some(iy) = (cy + ky).checked_sub(1).filter(|&v| v < h) else {
                                continue;
                            };
                            for kx in 0..3 {
                                let Some(ix) = (cx + kx).checked_sub(1).filter(|&v| v < w) else {
                                    continue;
                                };
                                let p = x.as_ptr().add((iy * w + ix) * c + c0);
                                tap(&mut a, p, zv, wv[ky * 3 + kx]);
                            }
                        }
                    }
                    let r: [int32x4_t; 4] = core::array::from_fn(|k| rq.apply(a[k], mult[k]));
                    let lo = vcombine_s16(vqmovn_s32(r[0]), vqmovn_s32(r[1]));
                    let hi = vcombine_s16(vqmovn_s32(r[2]), vqmovn_s32(r[3]));
                    let mut v = vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
                    if !lut.is_null() {
                        v = lut16(v, lut);
                    }
                    st16(y.as_mut_ptr().add((oy * wo + ox) * c + c0), v);
                }
            }
        }
    }
    // The last c % 16 channels: the reference's per-channel loop.
    for ch in 16 * blocks..c {
        let wk = &q.weight[ch * 9..ch * 9 + 9];
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = q.bias_at(ch);
                for ky in 0..3 {
                    let Some(iy) = (oy * st + ky).checked_sub(1).filter(|&v| v < h) else {
                        continue;
                    };
                    for kx in 0..3 {
                        let Some(ix) = (ox * st + kx).checked_sub(1).filter(|&v| v < w) else {
                            continue;
                        };
                        let xv = (x[(iy * w + ix) * c + ch] as i32).wrapping_sub(q.in_zero);
                        acc = acc.wrapping_add(xv.wrapping_mul(wk[ky * 3 + kx] as i32));
                    }
                }
                let v = sat_i8(
                    q.out_zero
                        .wrapping_add(requant(acc, q.mult_at(ch), q.shift)),
                );
                y[(oy * wo + ox) * c + ch] = match q.lut {
                    Some(t) => t[(v as i32 + 128) as usize],
                    None => v,
                };
            }
        }
    }
}
