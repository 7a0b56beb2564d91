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
    let name = a
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: sweep_tune CASE [N]"))?;
    let n: usize = a.get(1).map_or(Ok(16), |s| s.parse())?;
    let case = sweep::cases()
        .into_iter()
        .find(|c| &c.name == name)
        .ok_or_else(|| anyhow::anyhow!("no sweep case {name}"))?;
    if case.split != "tuning" {
        anyhow::bail!("{name} is a held-out case: defaults are chosen on the tuning half only");
    }
    let l = sweep::load(&case);
    let committed = sweep::int8_error(&case, &l, &Int8Options::default())?;
    let cfg = l.model.config();
    let blob = ldp_quant::int8::quantize(&l.model, &l.calib, &Int8Options::default())?;
    let aligned = ldp_quant::AlignedBytes::from_slice(&blob);
    let m = ldp_core::Model::parse(aligned.as_bytes())
        .map_err(|e| anyhow::anyhow!("blob does not parse: {e}"))?;
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let (mut num, mut den) = (0f64, 0f64);
    let first = case.n_calib + case.n_heldout;
    for j in 0..n {
        let arr = ldp_quant::npy::Array {
            shape: sweep::batch_shape(&case, 1),
            data: sweep::input(&case, first + j),
        };
        let xs = ldp_quant::layout::split_batch(&arr, &cfg, "input", false)?;
        let want = l.model.forward(&xs[0])?;
        let mut y = vec![0f32; m.output_len()];
        m.forward(&xs[0], &mut y, &mut scratch)
            .map_err(|e| anyhow::anyhow!("forward: {e}"))?;
        for (a, b) in y.iter().zip(&want) {
            num += (*a as f64 - *b as f64).powi(2);
            den += (*b as f64).powi(2);
        }
    }
    println!(
        "{} split={} committed {:.4} extra{n} {:.4}",
        case.name,
        case.split,
        committed.rel_l2,
        (num / den.max(1e-300)).sqrt()
    );
    Ok(())
}
