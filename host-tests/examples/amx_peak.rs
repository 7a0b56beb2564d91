//! AMX-INT8 throughput on this machine: `tdpbssd` alone, and with the tile loads the kernel
//! needs (`kernels::pointwise::x86::amx`), all data in L1. Prints ns per instruction and
//! GMAC/s (16·16·64 MACs per `tdpbssd`). Needs AMX-INT8 (`cpu::x86_detected() == Amx`, which
//! also asks Linux for the tile-data permission).
//!
//! ```sh
//! cargo run --release -p host-tests --example amx_peak
//! ```

#[cfg(target_arch = "x86_64")]
fn main() {
    use ldp_core::kernels::cpu;
    use std::arch::asm;
    if cpu::x86_detected() != cpu::X86Level::Amx {
        println!("no AMX-INT8 here");
        return;
    }
    // Palette 1, tiles 0..8 of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct Cfg([u8; 64]);
    let mut c = Cfg([0; 64]);
    c.0[0] = 1;
    for t in 0..8 {
        c.0[16 + 2 * t] = 64;
        c.0[48 + t] = 16;
    }
    let mut buf = vec![1i8; 8192];
    let p = buf.as_mut_ptr();
    // SAFETY: AMX usable with the permission (checked above); a valid palette-1 configuration.
    unsafe { asm!("ldtilecfg [{}]", in(reg) &c, options(nostack, readonly)) };
    let n: u64 = 1_000_000;
    for (name, per) in [
        ("4 tdpbssd (4 accumulators), no loads", 4.0),
        ("1 tdpbssd chain, no loads", 1.0),
        (
            "4 tileloadd + 4 tdpbssd (the kernel's step), per tdpbssd",
            4.0,
        ),
        ("4 tileloadd alone, per load", 4.0),
        ("4 tilestored alone, per store", 4.0),
    ] {
        let t0 = std::time::Instant::now();
        // SAFETY: the tiles are configured; loads read 4 KiB of `buf` (rows 64 bytes apart),
        // stores write 4 KiB of it; only tile registers, the loop counter and flags change.
        unsafe {
            match name.as_bytes()[2] {
                b't' if name.starts_with("4 tdp") => asm!(
                    "2:",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tdpbssd tmm3, tmm5, tmm7",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, options(nostack)),
                b't' if name.starts_with("1 tdp") => asm!(
                    "2:",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, options(nostack)),
                b't' if name.contains("tdpbssd (the") => asm!(
                    "2:",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tileloadd tmm6, [{p} + {s}*1 + 1024]",
                    "tileloadd tmm7, [{p} + {s}*1 + 2048]",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tileloadd tmm5, [{p} + {s}*1 + 3072]",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tdpbssd tmm3, tmm5, tmm7",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) p, s = in(reg) 64usize,
                    options(nostack)),
                b't' if name.contains("tileloadd alone") => asm!(
                    "2:",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tileloadd tmm5, [{p} + {s}*1 + 1024]",
                    "tileloadd tmm6, [{p} + {s}*1 + 2048]",
                    "tileloadd tmm7, [{p} + {s}*1 + 3072]",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) p, s = in(reg) 64usize,
                    options(nostack)),
                _ => asm!(
                    "2:",
                    "tilestored [{p} + {s}*1], tmm0",
                    "tilestored [{p} + {s}*1 + 1024], tmm1",
                    "tilestored [{p} + {s}*1 + 2048], tmm2",
                    "tilestored [{p} + {s}*1 + 3072], tmm3",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) p, s = in(reg) 64usize,
                    options(nostack)),
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        let ops = per * n as f64;
        println!(
            "{name:<58} {:5.1} ns  ({:5.0} GMAC/s)",
            dt / ops * 1e9,
            ops * 16384.0 / dt * 1e-9
        );
    }
    // SAFETY: releases this thread's tile state.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
    std::hint::black_box(&buf);
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("x86-64 only");
}
