//! Quantizes one sweep case with the given options and prints its held-out error
//! (a tool for studying the int8 defaults on the tuning half; reports go in docs/ACCURACY.md).
//!
//! `cargo run --release -p host-tests --example sweep_probe -- CASE [mse|minmax|percentile] [auto|on|off] [auto|per-tensor|per-channel|int16] [auto|int8|int16]`

use host_tests::sweep;
use ldp_quant::int8::InputQuant;
use ldp_quant::quantize::{Activations, CalibMethod, Int8Options, RangeSearch};

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
        o.input_quant = match m.as_str() {
            "per-channel" => InputQuant::PerChannel,
            "per-tensor" => InputQuant::PerTensor,
            "int16" => InputQuant::Int16,
            _ => InputQuant::Auto,
        };
    }
    if let Some(m) = a.get(4) {
        o.activations = match m.as_str() {
            "int8" => Activations::Int8,
            "int16" => Activations::Int16,
            _ => Activations::Auto,
        };
    }
    let l = sweep::load(&case);
    let e = sweep::int8_error(&case, &l, &o).expect("quantize");
    println!(
        "{} {:?} rel_l2 {:.4} (bound {}) {:.1} s {}",
        case.name,
        o,
        e.rel_l2,
        case.bound(),
        e.quantize_s,
        e.scheme
    );
}
