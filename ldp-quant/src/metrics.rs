//! Error metrics between an output and its reference (accumulated in f64).

/// Relative L2 error, cosine similarity and max absolute error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// `‖y − r‖₂ / ‖r‖₂` (or `‖y − r‖₂` when `r = 0`).
    pub rel_l2: f64,
    /// `⟨y, r⟩ / (‖y‖₂ ‖r‖₂)` (1 when both are zero).
    pub cosine: f64,
    /// `max |y − r|`.
    pub max_abs: f64,
}

/// Compares `y` against the reference `r` (same length).
pub fn compare<A: Copy + Into<f64>, B: Copy + Into<f64>>(y: &[A], r: &[B]) -> Metrics {
    let (mut d2, mut r2, mut y2, mut dot, mut max_abs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in y.iter().zip(r) {
        let (a, b): (f64, f64) = (a.into(), b.into());
        let d = a - b;
        d2 += d * d;
        r2 += b * b;
        y2 += a * a;
        dot += a * b;
        // NaN-propagating max.
        if d.is_nan() || d.abs() > max_abs {
            max_abs = d.abs();
        }
    }
    let rel_l2 = if r2 > 0.0 {
        (d2 / r2).sqrt()
    } else {
        d2.sqrt()
    };
    let cosine = if y2 > 0.0 && r2 > 0.0 {
        dot / (y2.sqrt() * r2.sqrt())
    } else if y2 == 0.0 && r2 == 0.0 {
        1.0
    } else {
        0.0
    };
    Metrics {
        rel_l2,
        cosine,
        max_abs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let m = compare(&[1.0f32, 2.0], &[1.0f64, 2.0]);
        assert_eq!(m.rel_l2, 0.0);
        assert!((m.cosine - 1.0).abs() < 1e-12);
        let m = compare(&[1.0f32, 0.0], &[0.0f64, 1.0]);
        assert!((m.rel_l2 - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(m.cosine, 0.0);
        assert_eq!(m.max_abs, 1.0);
    }
}
