//! The int8 ADD's frame: dispatch ([`add_inplace`]) and reference ([`add_reference`]).

use crate::error::{check_len, Error};
use crate::quant::kernels::*;

/// `a = a + b` elementwise, in place: the Helium, Arm DSP or AVX2 kernel where the target has
/// one, else [`add_reference`].
pub fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    #[cfg(ldp_arm_mve)]
    if crate::kernels::add::mve::add_inplace(a, b, q) {
        return Ok(());
    }
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::add::arm_dsp::add_inplace(a, b, q) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::add::x86::add_inplace(a, b, q) {
        return Ok(());
    }
    add_reference(a, b, q)
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
