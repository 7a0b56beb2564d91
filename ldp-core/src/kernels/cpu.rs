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
