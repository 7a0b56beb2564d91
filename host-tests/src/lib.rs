//! Shared helpers for the host test suite: loading the committed PyTorch golden cases.

use std::path::{Path, PathBuf};

pub mod sweep;

/// Root of the committed golden data.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Relative L2 error `‖a − b‖ / ‖b‖`, in f64.
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den.max(f64::MIN_POSITIVE)).sqrt()
}
