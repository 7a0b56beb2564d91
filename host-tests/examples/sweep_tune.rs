//! Quantizes one sweep case at the defaults and measures its int8 error on `N` *extra* inputs
//! drawn by the same generator after the committed ones (sample indices `n_calib + n_heldout`
//! onward), against the f32 model (which matches PyTorch float64 to ~1e-7, far below the int8
//! errors). Two committed held-out samples per case make a noisy estimate; this is the
//! lower-noise one used to choose defaults on the *tuning* half (docs/ACCURACY.md).
//!
//! `cargo run --release -p host-tests --example sweep_tune -- CASE [N]`

use host_tests::sweep;
use ldp_quant::quantize::Int8Options;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (case, n) = sweep::case_and_count(&a, "sweep_tune CASE [N]", 16)?;
    if case.split != "tuning" {
        anyhow::bail!(
            "{} is a held-out case: defaults are chosen on the tuning half only",
            case.name
        );
    }
    let l = sweep::load(&case);
    let committed = sweep::int8_error(&case, &l, &Int8Options::default())?;
    let fresh = sweep::fresh_error(&case, &l, n)?;
    println!(
        "{} split={} committed {:.4} extra{n} {:.4}",
        case.name, case.split, committed.rel_l2, fresh
    );
    Ok(())
}
