//! The per-sample error distribution of one sweep case (at the defaults, or with `sweep_probe`'s
//! options after `N`): quantizes it on its calibration samples, runs `N` *fresh* inputs (drawn
//! by the same generator after the committed ones) and prints the relative L2 error of each against the f32 model, sorted, with its
//! percentiles and how many are over the case's bound. The committed held-out error pools one or
//! two samples; this shows the tail a single new sample can land in.
//!
//! `cargo run --release -p host-tests --example sweep_tail -- CASE [N] [OPTIONS…]`
//! (`LDP_SWEEP_DIR` selects a directory of extra seeds, see `tools/golden/gen_sweep.py --seeds`).

use host_tests::sweep;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (case, n) = sweep::case_and_count(&a, "sweep_tail CASE [N] [OPTIONS…]", 32)?;
    if n == 0 {
        anyhow::bail!("N must be at least 1");
    }
    let o = sweep::int8_options(a.get(2..).unwrap_or_default());
    let l = sweep::load(&case);
    let mut e = sweep::fresh_stats(&case, &l, &o, n)?.each;
    e.sort_by(f64::total_cmp);
    let pct = |p: f64| e[((e.len() - 1) as f64 * p).round() as usize];
    let bound = case.bound();
    println!(
        "TAIL case={} split={} {}/{} n={n} p50={:.4} p90={:.4} p95={:.4} max={:.4} bound={bound} over={}",
        case.name,
        case.split,
        o.calib_method.name(),
        o.range_search.name(),
        pct(0.5),
        pct(0.9),
        pct(0.95),
        pct(1.0),
        e.iter().filter(|&&v| v > bound).count()
    );
    Ok(())
}
