//! The int8 ADD's frame: dispatch ([`add_inplace`]) and reference ([`add_reference`]).

use crate::error::{check_len, Error};
use crate::quant::kernels::*;

/// `a = a + b` elementwise, in place: the Helium, Arm DSP, NEON or AVX2 kernel where the target
/// has one, else [`add_reference`].
pub fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    // With the `std` feature, bands of elements on the host's threads (elementwise: same bits).
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(a.len(), crate::kernels::threads::ELEM_COST);
        if n > 1 {
            return crate::kernels::threads::split_inplace_at(a, 1, n, |i0, ab| {
                let bb = b
                    .get(i0..i0 + ab.len())
                    .ok_or(Error::InvalidConfig("int8 add: band outside the operand"))?;
                add_one(ab, bb, q);
                Ok(())
            });
        }
    }
    add_one(a, b, q);
    Ok(())
}

/// [`add_inplace`] on one band (`b.len() = a.len()`).
fn add_one(a: &mut [i8], b: &[i8], q: &AddQ) {
    #[cfg(ldp_arm_mve)]
    if crate::kernels::add::mve::add_inplace(a, b, q) {
        return;
    }
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::add::arm_dsp::add_inplace(a, b, q) {
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::add::neon::add_inplace(a, b, q) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::add::x86::add_inplace(a, b, q) {
        return;
    }
    for (x, &y) in a.iter_mut().zip(b) {
        *x = q.add(*x, y);
    }
}

/// Reference of [`add_inplace`]: [`AddQ::add`] on every pair.
pub fn add_reference(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    for (x, &y) in a.iter_mut().zip(b) {
        *x = q.add(*x, y);
    }
    Ok(())
}

/// The Helium (MVE) back end of [`add_inplace`] alone, for self-tests: `Ok(true)` when it took
/// the call (the sum is then in `a`, equal to [`add_reference`]'s), `Ok(false)` when this build
/// has no Helium kernels, they are turned off (`kernels::cpu::set_mve`) or it does not take
/// these parameters (`a` unchanged).
pub fn add_inplace_mve(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<bool, Error> {
    check_len("int8 add operand", b, a.len())?;
    #[cfg(ldp_arm_mve)]
    let taken = crate::kernels::add::mve::add_inplace(a, b, q);
    #[cfg(not(ldp_arm_mve))]
    let taken = {
        let _ = q;
        false
    };
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane-by-lane model of the Helium ADD (`kernels/add/mve.rs`): the same constants and
    /// instruction semantics in plain Rust (`None` where the kernel returns `false`), checked
    /// against [`AddQ::add`] on many more cases than the firmware self-test runs (which checks
    /// the `asm!` itself).
    fn mve_model(a: i8, b: i8, q: &AddQ) -> Option<i8> {
        let s = q.shift;
        if !(-128..=127).contains(&q.a_zero)
            || !(-128..=127).contains(&q.b_zero)
            || !(17..=47).contains(&s)
        {
            return None;
        }
        let n = s - 16;
        let zn = (q.out_zero as i64) << n;
        if (1i64 << 25) + zn.abs() + (1i64 << (n - 1)) >= 1i64 << 31 {
            return None;
        }
        let (mah, mal) = (q.a_mult >> 16, q.a_mult & 0xffff);
        let (mbh, mbl) = (q.b_mult >> 16, q.b_mult & 0xffff);
        let k_l = -(q.a_zero * mal + q.b_zero * mbl);
        let k_h = (-(q.a_zero as i64 * mah as i64 + q.b_zero as i64 * mbh as i64) + zn) as i32;
        let (a, b) = (a as i32, b as i32);
        let h0 = a.wrapping_mul(mah);
        let l = a
            .wrapping_mul(mal)
            .wrapping_add(k_l)
            .wrapping_add(b.wrapping_mul(mbl));
        let h = b.wrapping_mul(mbh).wrapping_add(k_h).wrapping_add(h0);
        let f = (l >> 16).wrapping_add(h);
        let r = ((f as i64 + (1i64 << (n - 1))) >> n) as i32;
        let sat = ((r as i64) << 24).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        Some((sat >> 24) as i8)
    }

    #[test]
    fn mve_add_model_is_exact() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut taken = 0;
        for case in 0..4000 {
            let q = AddQ {
                a_zero: (next() % 256) as i32 - 128,
                a_mult: if case % 3 == 0 {
                    next() as i32
                } else {
                    (next() % (1 << 30)) as i32
                },
                b_zero: (next() % 256) as i32 - 128,
                b_mult: if case % 5 == 0 {
                    next() as i32
                } else {
                    (next() % (1 << 30)) as i32
                },
                shift: 14 + (next() % 37) as i32,
                out_zero: if case % 6 == 0 {
                    next() as i32 >> (next() % 32)
                } else {
                    (next() % 256) as i32 - 128
                },
            };
            if mve_model(0, 0, &q).is_none() {
                continue;
            }
            taken += 1;
            for a in [-128i8, -127, -1, 0, 1, 126, 127] {
                for b in [-128i8, -127, -1, 0, 1, 126, 127] {
                    assert_eq!(mve_model(a, b, &q), Some(q.add(a, b)), "{q:?} {a} {b}");
                }
            }
            for _ in 0..64 {
                let (a, b) = (next() as i8, next() as i8);
                assert_eq!(mve_model(a, b, &q), Some(q.add(a, b)), "{q:?} {a} {b}");
            }
        }
        assert!(taken > 2000, "{taken}");
    }
}
