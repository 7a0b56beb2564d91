//! Writes one sweep case to a directory as files the CLI reads — `weights.safetensors`,
//! `calib.npy` (the 4 calibration samples) and `heldout.npy` — so `ldp-quant convert`/`eval`
//! (and its per-layer report) can study it.
//!
//! `cargo run --release -p host-tests --example sweep_dump -- CASE DIR`

use host_tests::sweep;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (Some(name), Some(dir)) = (a.first(), a.get(1)) else {
        anyhow::bail!("usage: sweep_dump CASE DIR");
    };
    let case = sweep::case_named(name)?;
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("weights.safetensors"),
        sweep::weights_safetensors(&case),
    )?;
    let batch = |range: std::ops::Range<usize>| -> Vec<f32> {
        range.flat_map(|s| sweep::input(&case, s)).collect()
    };
    let nc = case.n_calib;
    ldp_quant::npy::write_f32(
        &dir.join("calib.npy"),
        &sweep::batch_shape(&case, nc),
        &batch(0..nc),
    )?;
    ldp_quant::npy::write_f32(
        &dir.join("heldout.npy"),
        &sweep::batch_shape(&case, case.n_heldout),
        &batch(nc..nc + case.n_heldout),
    )?;
    println!("{}: wrote {}", case.name, dir.display());
    Ok(())
}
