//! Kernel families. Each has a plain reference implementation beside the fast one; callers use
//! the family's top-level function, which picks the fast path for the target.

pub mod activation;
pub mod add;
pub mod cpu;
pub mod depthwise;
pub(crate) mod isa;
pub mod norm;
pub mod pointwise;
pub mod pool;
pub mod quantize;
pub mod resize;
pub mod se;
#[cfg(feature = "std")]
pub mod threads;
#[cfg(target_arch = "x86_64")]
mod workspace;
