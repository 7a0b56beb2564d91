//! Integer arithmetic shared by every int8 kernel. No floats.
//!
//! **Determinism rule.** Every int8 result is a pure function of integers: products and sums in
//! `i32`/`i64` (never overflowing for valid blobs, wrapping — not panicking — for hostile ones),
//! rounding by `+ 2^(s-1)` then an arithmetic right shift (round half up), integer division only
//! where written (`div_round`), and the integer square root [`isqrt_u64`]. Rust defines all of
//! these identically on every target, and no float, no target intrinsic with different rounding
//! and no reassociation is involved — so x86-64, thumbv7em, thumbv7m and aarch64 produce the
//! same bits. Fast kernels may reorder integer additions (exact), nothing else.

/// Requantizes an accumulator: `round(acc · mult / 2^shift)` (round half up), `shift` in `1..=62`.
///
/// The product of two `i32` fits `i64`, and so does the rounding term; out-of-range shifts (only
/// possible from a corrupted blob) are clamped instead of panicking.
#[inline(always)]
pub fn requant(acc: i32, mult: i32, shift: i32) -> i32 {
    let s = shift.clamp(1, 62) as u32;
    let p = (acc as i64).wrapping_mul(mult as i64);
    (p.wrapping_add(1i64 << (s - 1)) >> s) as i32
}

/// `requant` of an `i64` accumulator (for values that may exceed `i32`, e.g. LayerNorm sums).
#[inline(always)]
pub fn requant64(acc: i64, shift: i32) -> i64 {
    let s = shift.clamp(1, 62) as u32;
    acc.wrapping_add(1i64 << (s - 1)) >> s
}

/// Saturates to int8.
#[inline(always)]
pub fn sat_i8(v: i32) -> i8 {
    v.clamp(-128, 127) as i8
}

/// Integer division rounding half away from zero (TFLite's average-pool rounding); `d > 0`.
#[inline(always)]
pub fn div_round(n: i64, d: i64) -> i64 {
    let d = d.max(1);
    if n >= 0 {
        (n + d / 2) / d
    } else {
        (n - d / 2) / d
    }
}

/// `floor(sqrt(v))`, exactly, by the bitwise method (no floats, no division).
pub fn isqrt_u64(v: u64) -> u64 {
    let mut rem = v;
    let mut root = 0u64;
    let mut bit = 1u64 << 62;
    while bit > rem {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// Encodes a positive real multiplier `m` as `(mult, shift)` with `mult` in `[2^30, 2^31)` and
/// `m ≈ mult / 2^shift`, `shift` clamped to `1..=62`. Used by the quantizer (host side); kept
/// here so that encoder and decoder live together.
pub fn encode_multiplier(m: f64) -> (i32, i32) {
    if m <= 0.0 || !m.is_finite() {
        return (0, 31);
    }
    let mut shift = 0i32;
    let mut x = m;
    while x < 0.5 {
        x *= 2.0;
        shift += 1;
    }
    while x >= 1.0 {
        x /= 2.0;
        shift -= 1;
    }
    // m = x · 2^-shift, x in [0.5, 1)
    let mut mult = libm::round(x * (1u64 << 31) as f64) as i64;
    if mult == 1i64 << 31 {
        mult /= 2;
        shift -= 1;
    }
    let total = shift + 31;
    if total > 62 {
        // Too small to represent: shift the mantissa down.
        let extra = (total - 62) as u32;
        let m2 = if extra >= 63 { 0 } else { mult >> extra };
        return (m2 as i32, 62);
    }
    if total < 1 {
        return (i32::MAX, 1);
    }
    (mult as i32, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_exact() {
        for v in (0u64..100_000).chain([u64::MAX, (1 << 62) - 1, 1 << 62, 12345678987654321]) {
            let r = isqrt_u64(v);
            assert!(r * r <= v, "{v}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|s| s > v), "{v}");
        }
    }

    #[test]
    fn multiplier_roundtrip() {
        for &m in &[
            1e-9, 3.7e-5, 0.001, 0.25, 0.5, 0.9999, 1.0, 1.5, 37.0, 1000.0,
        ] {
            let (mult, shift) = encode_multiplier(m);
            let back = mult as f64 / (2f64).powi(shift);
            assert!(
                ((back - m) / m).abs() < 1e-8 || m < 1e-8,
                "{m}: {mult} {shift} -> {back}"
            );
        }
        assert_eq!(requant(1000, 1 << 30, 31), 500);
        assert_eq!(requant(-1000, 1 << 30, 31), -500);
        assert_eq!(requant(3, 1 << 30, 31), 2); // 1.5 rounds half up
        assert_eq!(requant(-3, 1 << 30, 31), -1); // -1.5 rounds half up
    }
}
