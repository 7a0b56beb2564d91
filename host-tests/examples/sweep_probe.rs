//! Quantizes one sweep case with the given options and prints its held-out error
//! (a tool for studying the int8 defaults on the tuning half; reports go in docs/ACCURACY.md).
//!
//! `cargo run --release -p host-tests --example sweep_probe -- CASE [mse|minmax|percentile] [auto|on|off] [auto|per-tensor|per-channel|int16] [auto|int8|int16]`

use host_tests::sweep;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let name = a.first().expect("case name");
    let case = sweep::case_named(name).expect("no such case");
    let o = sweep::int8_options(&a[1..]);
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
