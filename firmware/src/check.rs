//! Output comparison.

use crate::models::Tolerance;

/// The outcome of comparing an output with the expected output.
pub struct Verdict {
    /// The check passed.
    pub pass: bool,
    /// `‖y − e‖₂ / ‖e‖₂` (or `‖y − e‖₂` when `e` is all zeros).
    pub rel_l2: f64,
    /// Largest `|y − e|`.
    pub max_abs: f32,
    /// Elements whose bits differ.
    pub mismatches: usize,
}

/// Compares `y` with `e` under `tol`. Any non-finite output fails.
pub fn compare(y: &[f32], e: &[f32], tol: Tolerance) -> Verdict {
    let mut num = 0f64;
    let mut den = 0f64;
    let mut max_abs = 0f32;
    let mut mismatches = 0usize;
    let mut finite = y.len() == e.len();
    for (&a, &b) in y.iter().zip(e) {
        if a.to_bits() != b.to_bits() {
            mismatches += 1;
        }
        if !a.is_finite() {
            finite = false;
        }
        let d = a as f64 - b as f64;
        num += d * d;
        den += b as f64 * b as f64;
        let ad = (a - b).abs();
        if ad > max_abs || ad.is_nan() {
            max_abs = ad;
        }
    }
    let rel_l2 = if den > 0.0 {
        libm::sqrt(num) / libm::sqrt(den)
    } else {
        libm::sqrt(num)
    };
    let pass = finite
        && match tol {
            Tolerance::Exact => mismatches == 0,
            Tolerance::RelL2(bound) => rel_l2 <= bound,
        };
    Verdict {
        pass,
        rel_l2,
        max_abs,
        mismatches,
    }
}
