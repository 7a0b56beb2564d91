//! Build script of `ldp-core`: selects the Arm DSP int8 kernels at compile time.
//!
//! `cfg(target_feature = "dsp")` does not exist on stable Rust for Arm targets, so the cfg
//! `ldp_arm_dsp` is derived from the target triple instead: `thumbv7em-*` (Cortex-M4/M7) and
//! `thumbv8m.main-*` (Cortex-M33/M35P/M55/M85, which have the DSP extension in the usual
//! configurations). The cargo feature `portable-int8` turns it off (the portable kernels are then
//! used, e.g. for a Cortex-M33 built without the DSP extension, or to benchmark both).
//!
//! On x86-64 it also sets `ldp_avx512` when the compiler is Rust 1.89 or newer (the AVX-512
//! intrinsics and target features are stable since then): the AVX-512 f32 and VNNI int8 kernels
//! exist only then, so the crate still builds with its declared minimum Rust version.

use std::env;
use std::process::Command;

/// The minor version of the compiler cargo uses (`rustc 1.95.0 (…)` → 95), 0 if unknown.
fn rustc_minor() -> u32 {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = match Command::new(rustc).arg("--version").output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(_) => return 0,
    };
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(ldp_arm_dsp)");
    println!("cargo:rustc-check-cfg=cfg(ldp_arm_v8m)");
    println!("cargo:rustc-check-cfg=cfg(ldp_avx512)");
    println!("cargo:rustc-check-cfg=cfg(ldp_arm_mve)");
    let target = env::var("TARGET").unwrap_or_default();
    if target.starts_with("x86_64") && rustc_minor() >= 89 {
        println!("cargo:rustc-cfg=ldp_avx512");
    }
    let has_dsp = target.starts_with("thumbv7em-") || target.starts_with("thumbv8m.main-");
    let portable = env::var_os("CARGO_FEATURE_PORTABLE_INT8").is_some();
    if has_dsp && !portable {
        println!("cargo:rustc-cfg=ldp_arm_dsp");
        if target.starts_with("thumbv8m.main-") {
            // The DSP `asm!` blocks need an assembler directive there (see kernels/isa/arm_dsp.rs).
            println!("cargo:rustc-cfg=ldp_arm_v8m");
            // Helium kernels (kernels/<op>/mve.rs) only when asked for: not every v8-M core has MVE.
            if env::var_os("CARGO_FEATURE_MVE").is_some() {
                println!("cargo:rustc-cfg=ldp_arm_mve");
            }
        }
    }
}
