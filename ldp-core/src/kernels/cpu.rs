//! What the fast kernels need to pick a path: CPU feature detection (at run time with `std`,
//! else from the compile-time target features) and views of generic element slices as `f32`
//! or `f16`.

use crate::elem::Elem;
use crate::DType;
use half::f16;

/// `true` when AVX2, FMA and F16C can be used (every x86-64 CPU with AVX2 has the other two):
/// detected at run time with the `std` feature (`std` caches the answer), else known at compile
/// time (`-C target-feature=+avx2,+fma,+f16c` or `-C target-cpu=native`).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_avx2_fma() -> bool {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        true
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        #[cfg(feature = "std")]
        {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(feature = "std"))]
        {
            false
        }
    }
}

/// The slice as `&[f32]` when `A` is `f32`.
#[inline]
pub fn as_f32<A: Elem>(b: &[A]) -> Option<&[f32]> {
    (A::DTYPE == DType::F32).then(|| bytemuck::cast_slice(b))
}

/// The slice as `&mut [f32]` when `A` is `f32`.
#[inline]
pub fn as_f32_mut<A: Elem>(b: &mut [A]) -> Option<&mut [f32]> {
    if A::DTYPE == DType::F32 {
        Some(bytemuck::cast_slice_mut(b))
    } else {
        None
    }
}

/// The slice as `&[f16]` when `A` is `f16`.
#[inline]
pub fn as_f16<A: Elem>(b: &[A]) -> Option<&[f16]> {
    (A::DTYPE == DType::F16).then(|| bytemuck::cast_slice(b))
}

/// The slice as `&mut [f16]` when `A` is `f16`.
#[inline]
pub fn as_f16_mut<A: Elem>(b: &mut [A]) -> Option<&mut [f16]> {
    if A::DTYPE == DType::F16 {
        Some(bytemuck::cast_slice_mut(b))
    } else {
        None
    }
}

/// FP16 arithmetic on AArch64 (FEAT_FP16): 0 = not yet detected, 1 = unavailable or disallowed,
/// 2 = available.
#[cfg(target_arch = "aarch64")]
static FP16: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// `true` when the f16 kernels may use FEAT_FP16 arithmetic (half-precision FMLA, f16 products
/// summed in f16 over 16 channels and then in f32; see
/// [`crate::kernels::pointwise::neon`]). Known at compile time with `-C target-feature=+fp16`
/// (e.g. `-C target-cpu=cortex-a76`); else detected at run time: with the `std` feature through
/// the OS, on bare metal (`target_os = "none"`, running at EL1 or higher) from `ID_AA64PFR0_EL1`.
/// Always `false` after [`set_fp16_arith`]`(false)` and on other architectures.
#[inline]
pub fn fp16_arith() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        use core::sync::atomic::Ordering;
        match FP16.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = fp16_detect();
                FP16.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// Allows (`true`, the default where the CPU has it) or forbids FEAT_FP16 arithmetic in the f16
/// kernels. Forbidding it makes f16 results identical to CPUs without FEAT_FP16 (f16 storage,
/// f32 arithmetic); allowing it on a CPU without the feature changes nothing.
pub fn set_fp16_arith(allow: bool) {
    #[cfg(target_arch = "aarch64")]
    {
        let v = if allow && fp16_detect() { 2 } else { 1 };
        FP16.store(v, core::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = allow;
    }
}

#[cfg(target_arch = "aarch64")]
fn fp16_detect() -> bool {
    if cfg!(target_feature = "fp16") {
        return true;
    }
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("fp16")
    }
    #[cfg(all(not(feature = "std"), target_os = "none"))]
    {
        let pfr0: u64;
        // SAFETY: reading an ID register has no side effects; bare-metal code runs at EL1 or
        // higher, where ID_AA64PFR0_EL1 is readable.
        unsafe {
            core::arch::asm!("mrs {}, ID_AA64PFR0_EL1", out(reg) pfr0,
                             options(nomem, nostack, preserves_flags));
        }
        // FP (bits 19:16) and AdvSIMD (bits 23:20): 1 = implemented with half precision.
        (pfr0 >> 16) & 0xf == 1 && (pfr0 >> 20) & 0xf == 1
    }
    #[cfg(all(not(feature = "std"), not(target_os = "none")))]
    {
        false
    }
}

/// The int8 dot-product instructions on AArch64 (FEAT_DotProd, `SDOT`): 0 = not yet detected,
/// 1 = unavailable or disallowed, 2 = available.
#[cfg(target_arch = "aarch64")]
static DOTPROD: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// `true` when the int8 kernels may use FEAT_DotProd (`SDOT`, see `quant::sdot`). Known at
/// compile time with `-C target-feature=+dotprod`; else detected at run time: with the `std`
/// feature through the OS, on bare metal (`target_os = "none"`, running at EL1 or higher) from
/// `ID_AA64ISAR0_EL1.DP`. Always `false` after [`set_dotprod`]`(false)` and on other
/// architectures. The int8 results are the same bits either way.
#[inline]
pub fn dotprod() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        use core::sync::atomic::Ordering;
        match DOTPROD.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = dotprod_detect();
                DOTPROD.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// Allows (`true`, the default where the CPU has it) or forbids FEAT_DotProd in the int8
/// kernels (forbidding it selects the NEON `SMULL`/`SADALP` kernels, e.g. to compare both on
/// one CPU); allowing it on a CPU without the feature changes nothing.
pub fn set_dotprod(allow: bool) {
    #[cfg(target_arch = "aarch64")]
    {
        let v = if allow && dotprod_detect() { 2 } else { 1 };
        DOTPROD.store(v, core::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = allow;
    }
}

#[cfg(target_arch = "aarch64")]
fn dotprod_detect() -> bool {
    if cfg!(target_feature = "dotprod") {
        return true;
    }
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(all(not(feature = "std"), target_os = "none"))]
    {
        let isar0: u64;
        // SAFETY: reading an ID register has no side effects; bare-metal code runs at EL1 or
        // higher, where ID_AA64ISAR0_EL1 is readable.
        unsafe {
            core::arch::asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0,
                             options(nomem, nostack, preserves_flags));
        }
        // DP (bits 47:44): 1 = SDOT/UDOT implemented.
        (isar0 >> 44) & 0xf >= 1
    }
    #[cfg(all(not(feature = "std"), not(target_os = "none")))]
    {
        false
    }
}

/// Whether the Helium (MVE) int8 kernels may run (`true` unless [`set_mve`]`(false)`).
static MVE_ALLOWED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// `true` when this build has the Helium (MVE) int8 kernels (`quant::ARM_MVE_KERNELS`: the
/// cargo feature `mve` on a thumbv8m.main target) and they are allowed ([`set_mve`]).
#[inline]
pub fn mve() -> bool {
    crate::quant::ARM_MVE_KERNELS && MVE_ALLOWED.load(core::sync::atomic::Ordering::Relaxed)
}

/// Allows (`true`, the default) or forbids the Helium (MVE) int8 kernels: forbidding them
/// selects the DSP kernels (to compare both on one core). The int8 results are the same bits
/// either way.
pub fn set_mve(allow: bool) {
    MVE_ALLOWED.store(allow, core::sync::atomic::Ordering::Relaxed);
}
