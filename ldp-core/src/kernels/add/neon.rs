//! AArch64 NEON int8 ADD (`quant::kernels::add_inplace`), exactly the reference's integers
//! ([`AddQ::add`]): per 16 elements `a − z_a`, `b − z_b` by `SSUBL` (exact in `i16`: zero points
//! in `-128..=127`), widened to `i32`, both products and their sum in 64 bits (`SMULL` +
//! `SMLAL`, `|·| ≤ 2·255·2^31`), `requant64` by `SRSHL` (the reference's `+ 2^(s−1)`, `>> s`;
//! no overflow at this size), truncation to `i32` (`XTN`, the reference's `as i32`), wrapping
//! add of `z_out`, saturation by `SQXTN` twice. The `n % 16` tail runs [`AddQ::add`].

use core::arch::aarch64::*;

use crate::kernels::norm::neon::st16;
use crate::kernels::pointwise::neon::sdot::ld16;
use crate::quant::kernels::AddQ;

/// Runs the NEON ADD (`a = a + b`) if it takes `q` (zero points in `-128..=127`) and the
/// lengths are equal; else `false`, nothing written.
pub(crate) fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> bool {
    if !cfg!(target_feature = "neon")
        || !(-128..=127).contains(&q.a_zero)
        || !(-128..=127).contains(&q.b_zero)
        || a.len() != b.len()
    {
        return false;
    }
    // SAFETY: NEON enabled for this target, equal lengths, zero points in range.
    unsafe { add_run(a, b, q) };
    true
}

/// `(x − z)` of 8 lanes as two `int32x4_t`, the products with `m` added to `acc` (64-bit).
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn madd(acc: [int64x2_t; 4], d: int16x8_t, m: int32x4_t) -> [int64x2_t; 4] {
    // SAFETY: register-only NEON operations.
    unsafe {
        let (d0, d1) = (vmovl_s16(vget_low_s16(d)), vmovl_high_s16(d));
        [
            vmlal_s32(acc[0], vget_low_s32(d0), vget_low_s32(m)),
            vmlal_high_s32(acc[1], d0, m),
            vmlal_s32(acc[2], vget_low_s32(d1), vget_low_s32(m)),
            vmlal_high_s32(acc[3], d1, m),
        ]
    }
}

/// `(x − z)·m` of 8 lanes (64-bit).
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn mul(d: int16x8_t, m: int32x4_t) -> [int64x2_t; 4] {
    // SAFETY: register-only NEON operations.
    unsafe {
        let (d0, d1) = (vmovl_s16(vget_low_s16(d)), vmovl_high_s16(d));
        [
            vmull_s32(vget_low_s32(d0), vget_low_s32(m)),
            vmull_high_s32(d0, m),
            vmull_s32(vget_low_s32(d1), vget_low_s32(m)),
            vmull_high_s32(d1, m),
        ]
    }
}

/// `z_out + (requant64(acc, s) as i32)` of 8 lanes, saturated to `i16` (the int8 saturation of
/// an `i16` saturated value is the int8 saturation of the value).
///
/// # Safety
/// NEON available.
#[inline(always)]
unsafe fn finish(a: [int64x2_t; 4], sh: int64x2_t, oz: int32x4_t) -> int16x8_t {
    // SAFETY: register-only NEON operations.
    unsafe {
        let r0 = vmovn_high_s64(vmovn_s64(vrshlq_s64(a[0], sh)), vrshlq_s64(a[1], sh));
        let r1 = vmovn_high_s64(vmovn_s64(vrshlq_s64(a[2], sh)), vrshlq_s64(a[3], sh));
        vqmovn_high_s32(vqmovn_s32(vaddq_s32(r0, oz)), vaddq_s32(r1, oz))
    }
}

/// # Safety
/// `a.len() == b.len()`, zero points in `-128..=127`; NEON available.
unsafe fn add_run(a: &mut [i8], b: &[i8], q: &AddQ) {
    let n = a.len();
    let n16 = n / 16 * 16;
    // SAFETY (whole body): NEON available; 16-byte loads and stores at i + 16 ≤ n16 ≤ n in both
    // slices (equal lengths).
    unsafe {
        let (za, zb) = (vdupq_n_s8(q.a_zero as i8), vdupq_n_s8(q.b_zero as i8));
        let (ma, mb) = (vdupq_n_s32(q.a_mult), vdupq_n_s32(q.b_mult));
        let sh = vdupq_n_s64(-(q.shift.clamp(1, 62) as i64));
        let oz = vdupq_n_s32(q.out_zero);
        let (pa, pb) = (a.as_mut_ptr(), b.as_ptr());
        let mut i = 0;
        while i < n16 {
            let (av, bv) = (ld16(pa.add(i)), ld16(pb.add(i)));
            let lo = madd(
                mul(vsubl_s8(vget_low_s8(av), vget_low_s8(za)), ma),
                vsubl_s8(vget_low_s8(bv), vget_low_s8(zb)),
                mb,
            );
            let hi = madd(mul(vsubl_high_s8(av, za), ma), vsubl_high_s8(bv, zb), mb);
            let o = vqmovn_high_s16(vqmovn_s16(finish(lo, sh, oz)), finish(hi, sh, oz));
            st16(pa.add(i), o);
            i += 16;
        }
    }
    for (x, &y) in a[n16..].iter_mut().zip(&b[n16..]) {
        *x = q.add(*x, y);
    }
}
