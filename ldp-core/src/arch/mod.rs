//! One module per architecture graph. Each defines a typed configuration (with `const fn`
//! sizes), a weights view over borrowed slices and a `forward` over caller-provided buffers.
//! The graphs say *what* is computed; the kernels say *how*.

pub mod ldp;
pub mod mobilevlm_v1;
pub mod mobilevlm_v2;
