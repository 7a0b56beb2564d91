//! Storage element types of the float paths.

use half::f16;

/// A floating-point storage type for activations and weights: `f32` or `f16`.
///
/// All arithmetic is done in `f32`; an `Elem` only says how a value is stored.
pub trait Elem: Copy + Default + bytemuck::Pod + Send + Sync + 'static {
    /// The blob dtype tag of this storage type.
    const DTYPE: crate::DType;
    /// Widens to `f32` (exact for both types).
    fn to_f32(self) -> f32;
    /// Rounds an `f32` to this type (round to nearest even).
    fn from_f32(v: f32) -> Self;
}

impl Elem for f32 {
    const DTYPE: crate::DType = crate::DType::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Elem for f16 {
    const DTYPE: crate::DType = crate::DType::F16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}
