//! The conv shift word of int8 blobs. The tensor lists and the `quant.meta` / `quant.scales`
//! layouts of every architecture are derived from its graph ([`crate::graph::int8_specs`],
//! [`crate::graph::meta`], [`crate::graph::a16::appended`]); index `i` of `quant.scales` is the
//! real scale of the activation whose zero point is `quant.meta[i]` (0 elsewhere).
//!
//! A conv is `NAME.weight` (`i8`), `NAME.bias` (`i16`, absent for a depthwise conv PyTorch
//! defines without bias: its kernel subtracts the input zero point itself) and `NAME.mult`
//! (`u8`), and its shift entry of `quant.meta` is a shift word ([`conv_shifts`]): the
//! requantization shift and the bias shift.

/// The `quant.meta` word of a conv: `shift | bias_shift << 8` — the requantization shift
/// (`1..=62`) in bits 0–7, the left shift of the stored `i16` biases (`0..=15`,
/// [`crate::quant::kernels::MAX_BIAS_SHIFT`]) in bits 8–15, zero above.
pub const fn conv_shift_word(shift: i32, bias_shift: u32) -> i32 {
    (shift & 0xff) | (((bias_shift & 0xff) as i32) << 8)
}

/// `(shift, bias_shift)` of a conv's `quant.meta` word ([`conv_shift_word`]).
pub const fn conv_shifts(word: i32) -> (i32, u32) {
    (word & 0xff, ((word >> 8) & 0xff) as u32)
}
