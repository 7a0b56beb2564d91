//! int8 ADD (`kernels::add::int8::add_inplace`) with Helium (MVE) for the Cortex-M55 (and
//! M85); the same compile-time and run-time selection as `kernels::pointwise::mve` (cfg
//! `ldp_arm_mve`, [`crate::kernels::cpu::mve`]). The method and why it is exact: see
//! [`add_inplace`].

use core::arch::asm;

use crate::quant::kernels::AddQ;

/// `a = a + b` (TFLite ADD, `AddQ::add` on every pair) with Helium, 4 elements per vector
/// (32-bit lanes), exactly: `false` (nothing written) unless MVE is allowed, both zero points
/// are in `-128..=127`, the shift is in `17..=47` and the output zero point small enough (below).
///
/// The reference computes `acc = (a − z_a)·m_a + (b − z_b)·m_b` in `i64` (`|acc| < 2⁴⁰`, no
/// wrapping) and `z + requant64(acc, s)`. Split each multiplier `m = m_h·2¹⁶ + m_l`
/// (`m_h = m >> 16` in `[−2¹⁵, 2¹⁵)`, `m_l` in `[0, 2¹⁶)`): `acc = H·2¹⁶ + L` with
/// `H = (a − z_a)·m_{a,h} + (b − z_b)·m_{b,h}` (`|H| < 2·255·2¹⁵ < 2²⁴`) and
/// `L = (a − z_a)·m_{a,l} + (b − z_b)·m_{b,l}` (`|L| < 2²⁵`): both fit an `i32`, so the
/// wrapping vector arithmetic (`VMUL`, `VMLAS`, `VMLA` by scalars, zero points folded into
/// constants) gives them exactly. Since `s ≥ 17` the rounding term `2^(s−1)` is a multiple of
/// `2¹⁶`, so `requant64(acc, s) = ⌊(H + ⌊L/2¹⁶⌋ + 2^(n−1)) / 2ⁿ⌋` with `n = s − 16`: `VSHR.S32
/// #16`, `VADD`, then `VRSHL` by `−n` (round half up, as `requant64`); `z·2ⁿ` is added before
/// the shift (exact: a multiple of `2ⁿ`), taken only when `2²⁵ + |z|·2ⁿ + 2^(n−1) < 2³¹`, so
/// nothing wraps. Then `VQSHL #24` / `VSHR.S32 #24` saturate to int8 and `VSTRB.32` stores the
/// low bytes. 14 instructions per 4 elements; the `len % 4` last ones use `AddQ::add`.
pub(crate) fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> bool {
    let s = q.shift;
    if !crate::kernels::cpu::mve()
        || a.len() != b.len()
        || !(-128..=127).contains(&q.a_zero)
        || !(-128..=127).contains(&q.b_zero)
        || !(17..=47).contains(&s)
    {
        return false;
    }
    let n = s - 16;
    let zn = (q.out_zero as i64) << n;
    if (1i64 << 25) + zn.abs() + (1i64 << (n - 1)) >= 1i64 << 31 {
        return false;
    }
    let (mah, mal) = (q.a_mult >> 16, q.a_mult & 0xffff);
    let (mbh, mbl) = (q.b_mult >> 16, q.b_mult & 0xffff);
    let k_l = -(q.a_zero * mal + q.b_zero * mbl);
    let k_h = (-(q.a_zero as i64 * mah as i64 + q.b_zero as i64 * mbh as i64) + zn) as i32;
    let n4 = a.len() / 4;
    if n4 > 0 {
        // SAFETY: MVE present (checked above). Reads a[..4·n4] and b[..4·n4] (`VLDRB.S32`, no
        // alignment needed), writes a[..4·n4] (`VSTRB.32`, each group after it was read); r0
        // and r1 advance by 4 per group, `n4` groups. Registers declared (q0–q2, q6, q7);
        // no stack.
        unsafe {
            asm!(
                ".cpu cortex-m55",
                "vdup.32 q7, r4",
                "vdup.32 q6, r5",
                "wls lr, lr, 3f",
                "2:",
                "vldrb.s32 q0, [r0]",
                "vldrb.s32 q1, [r1], #4",
                "vmul.i32 q2, q0, r2",
                "vmlas.i32 q0, q7, r3",
                "vmla.i32 q0, q1, r8",
                "vmlas.i32 q1, q6, r9",
                "vadd.i32 q1, q1, q2",
                "vshr.s32 q0, q0, #16",
                "vadd.i32 q0, q0, q1",
                "vrshl.s32 q0, r10",
                "vqshl.s32 q0, q0, #24",
                "vshr.s32 q0, q0, #24",
                "vstrb.32 q0, [r0], #4",
                "le lr, 2b",
                "3:",
                inout("r0") a.as_mut_ptr() => _,
                inout("r1") b.as_ptr() => _,
                in("r2") mah,
                in("r3") k_l,
                in("r4") mal,
                in("r5") mbh,
                in("r8") mbl,
                in("r9") k_h,
                in("r10") -n,
                inout("lr") n4 => _,
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                out("s28") _, out("s29") _, out("s30") _, out("s31") _,
                options(nostack),
            );
        }
    }
    for (x, &y) in a[4 * n4..].iter_mut().zip(&b[4 * n4..]) {
        *x = q.add(*x, y);
    }
    true
}
