//! Quantizes one sweep case with the given options and prints its held-out error
//! (a tool for studying the int8 defaults on the tuning half; reports go in docs/ACCURACY.md).
//!
//! `cargo run --release -p host-tests --example sweep_probe -- CASE [mse|minmax|percentile] [auto|on|off] [per-tensor|per-channel] [auto|int8|int16]`

use host_tests::sweep;
use ldp_quant::int8::InputQuant;
use ldp_quant::quantize::{Activations, CalibMethod, Int8Options, RangeSearch};
use ldp_quant::AlignedBytes;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let name = a.first().expect("case name");
    let case = sweep::cases()
        .into_iter()
        .find(|c| &c.name == name)
        .expect("no such case");
    let mut o = Int8Options::default();
    if let Some(m) = a.get(1) {
        o.calib_method = match m.as_str() {
            "minmax" => CalibMethod::Minmax,
            "percentile" => CalibMethod::Percentile,
            _ => CalibMethod::Mse,
        };
    }
    if let Some(m) = a.get(2) {
        o.range_search = match m.as_str() {
            "on" => RangeSearch::On,
            "off" => RangeSearch::Off,
            _ => RangeSearch::Auto,
        };
    }
    if let Some(m) = a.get(3) {
        o.input_quant = if m == "per-channel" {
            InputQuant::PerChannel
        } else {
            InputQuant::PerTensor
        };
    }
    if let Some(m) = a.get(4) {
        o.activations = match m.as_str() {
            "int8" => Activations::Int8,
            "int16" => Activations::Int16,
            _ => Activations::Auto,
        };
    }
    let t = std::time::Instant::now();
    let l = sweep::load(&case);
    let cfg = l.model.config();
    let blob = ldp_quant::int8::quantize(&l.model, &l.calib, &o).expect("quantize");
    let secs = t.elapsed().as_secs_f64();
    let aligned = AlignedBytes::from_slice(&blob);
    let m = ldp_core::Model::parse(aligned.as_bytes()).expect("parse");
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let mut got = Vec::new();
    for x in &l.held {
        let mut shape = vec![1];
        if case.arch == "ldp" {
            shape.extend([case.c_in, case.h, case.w]);
        } else {
            shape.extend([case.h * case.w, case.c_in]);
        }
        let arr = ldp_quant::npy::Array {
            shape,
            data: x.clone(),
        };
        let xs = ldp_quant::layout::split_batch(&arr, &cfg, "x", false).expect("layout");
        let mut y = vec![0f32; m.output_len()];
        m.forward(&xs[0], &mut y, &mut scratch).expect("forward");
        let yt = ldp_quant::layout::join_batch(&[y], &cfg).expect("join");
        got.extend(yt.data.iter().map(|&v| v as f64));
    }
    println!(
        "{} {:?} rel_l2 {:.4} (bound {}) {:.1} s {}",
        case.name,
        o,
        host_tests::rel_l2(&got, &l.expected),
        case.bound(),
        secs,
        ldp_quant::int8::describe_blob(&m)
    );
}
