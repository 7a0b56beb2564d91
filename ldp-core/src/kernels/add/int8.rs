//! The int8 ADD's frame: dispatch ([`add_inplace`]) and reference ([`add_reference`]).

use crate::error::{check_len, Error};
use crate::quant::kernels::*;

/// `a = a + b` elementwise, in place (the Arm DSP, NEON or AVX2 kernel where the target has
/// one, else [`add_reference`]).
pub fn add_inplace(a: &mut [i8], b: &[i8], q: &AddQ) -> Result<(), Error> {
    check_len("int8 add operand", b, a.len())?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::add::arm_dsp::add_inplace(a, b, q) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::add::neon::add_inplace(a, b, q) {
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
